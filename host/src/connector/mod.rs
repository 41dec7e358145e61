//! Connectors: their definitions (RocketMQ Connect's JSON) and the tasks
//! that move data between RocketMQ and OpenMLDB.

pub mod config;
pub mod sink;
pub mod task;

pub use config::{ConnectorDefinition, ConnectorKind, DefinitionError, SinkSettings};
pub use sink::{SinkError, SinkStats, run_sink_task};
pub use task::{TaskControl, TaskProgress};
