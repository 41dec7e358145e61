//! rmq-openmldb: stream RocketMQ into OpenMLDB, with user code in sandboxed
//! WebAssembly components.

pub mod cli;
pub mod connector;
pub mod openmldb;
pub mod plugin;
pub mod rocketmq;
