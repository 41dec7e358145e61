//! rmq-openmldb: stream RocketMQ into OpenMLDB, with user code in sandboxed
//! WebAssembly components.

pub mod plugin;
