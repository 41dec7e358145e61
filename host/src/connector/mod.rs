//! Connectors: their definitions (RocketMQ Connect's JSON) and the tasks
//! that move data: sinks from RocketMQ into OpenMLDB, sources from a
//! database into RocketMQ.

pub mod config;
pub mod destination;
mod plugin_sink;
pub mod positions;
pub mod sink;
pub mod source;
pub mod task;

pub use config::{
    ConnectorDefinition, ConnectorKind, DefinitionError, PluginSinkConfig, SinkSettings, SinkTarget, SourceSettings,
};
pub use positions::{PositionError, PositionLog, PositionStore};
pub use sink::{SinkError, SinkStats, run_sink_lane, run_sink_task};
pub use source::{SourceError, SourceStats, run_source_task};
pub use task::{Degraded, TableCounts, TaskControl, TaskProgress};
