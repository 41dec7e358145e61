//! A stand-in for OpenMLDB's APIServer and (in `native`) its nameserver and
//! tablets, for tests and benchmarks: OpenMLDB
//! itself cannot be installed on the project's machines. It follows
//! OpenMLDB's APIServer as its source and docs describe it (v0.8–v0.9.3; the
//! project's reference notes cite files and lines): the same routes, JSON shapes, type
//! rules, error codes and messages, non-atomic multi-row INSERT, append
//! semantics and INSERT OR IGNORE, with data kept in memory. Admin routes
//! under `/__standin/` inject faults. Product code never depends on it.

pub mod api;
pub mod json;
pub mod native;
mod server;
pub mod sql;
pub mod store;
pub mod zookeeper;

pub use api::Wording;
pub use native::{NativeFaults, NativeSide};
pub use server::{StandIn, StandInOptions};
pub use zookeeper::ZooKeeper;
