//! Connectors: the tasks that move data between RocketMQ and OpenMLDB.

pub mod sink;

pub use sink::{SinkError, SinkSettings, SinkStats, run_sink_task};
