//! rmq-openmldb: stream RocketMQ into OpenMLDB, with user code in sandboxed
//! WebAssembly components.

// Spawned task futures (consumer, plugins, writer) nest deeply.
#![recursion_limit = "512"]

pub mod cli;
pub mod connector;
pub mod openmldb;
pub mod plugin;
pub mod rest;
pub mod rocketmq;
pub mod sql;
pub mod telemetry;
pub mod worker;
