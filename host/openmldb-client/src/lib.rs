//! A native OpenMLDB client that writes straight to the tablets, as the
//! official SDK (the C++ `SQLClusterRouter` under the Java and Python
//! clients) does: it finds the cluster in ZooKeeper, speaks brpc's
//! baidu_std to the nameserver and the tablets, encodes rows in OpenMLDB's
//! row format and routes each row to the leaders of its partitions.
//!
//! The crate has its own value types ([`Value`], [`Column`]) so that it
//! stands alone: nothing here knows about RocketMQ or plugins.
//!
//! Modules, along a write: [`discovery`] (ZooKeeper: nameserver, tablets,
//! tables) → [`key`] and [`hash`] (which partition a row goes to) →
//! [`codec`] (the row's bytes) → [`rpc`] (baidu_std on one pipelined
//! connection per endpoint) → [`client`] (Put per partition, RevertPut,
//! failover, DDL through the nameserver).

pub mod client;
pub mod codec;
pub mod discovery;
pub mod hash;
pub mod key;
pub mod proto;
pub mod rpc;
mod types;

pub use client::{AdminError, Client, ClientOptions, PutError, WriteOptions};
pub use codec::{CodecError, decode_row, encode_row};
pub use discovery::{DiscoveryError, Table};
pub use types::{Column, DataType, Date, Value};
