//! The OpenMLDB writer: finds (or creates) the table, in ZooKeeper (the
//! native path, through the `openmldb-client` crate) or through the
//! APIServer, writes rows exactly as OpenMLDB reads them, in batches with
//! failed-row isolation and retries.

mod client;
pub mod config;
mod literal;
mod native;
mod schema;
mod writer;

pub use client::{ApiClient, Reply, TransportError};
pub use config::{
    ConfigError, ConnectorConfig, Endpoint, IndexConfig, InsertMode, WriterConfig, ZooKeeperEndpoint, parse_endpoint,
};
pub use literal::{put_values, sql_values};
pub use schema::{TableInfo, create_table_sql, parse_table_info};
pub use writer::{NoObserver, OpenMldbWriter, Poison, WriteObserver, WriteReport, WriterError};
