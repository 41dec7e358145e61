//! The plugin runtime: loads WebAssembly components that implement the WIT
//! contract, checks their role and version, compiles them once (cached on
//! disk), and runs them in warm, sandboxed instances with per-plugin
//! limits (memory, call deadlines, log rate) and grants.

pub mod bindings;
mod cache;
mod catalog;
mod chain;
mod engine;
mod error;
mod instance;
mod lift_budget;
pub mod sandbox;
mod state;
mod wasi;

pub use cache::{CacheOutcome, CompileCache};
pub use catalog::{Builtin, PluginCatalog};
pub use chain::{ChainError, ChainOutput, MessageFailure, PluginChain, StageSpec, TRAP_KIND, is_poison};
pub use engine::{EPOCH_TICK, LoadedPlugin, PluginEngine, PluginOrigin, Role, RuntimeConfig, default_cache_dir};
pub use error::{CallError, LoadError, TrapKind};
pub use instance::{
    ConverterInstance, PluginConfig, SinkInstance, SourceInstance, TransformInstance, check_row, column_type_name,
};
pub use sandbox::{Grants, Limits, Sandbox, SandboxError};
pub use state::{CallFigures, HistogramSummary, PluginMetrics, PluginServices, live_plugins};
