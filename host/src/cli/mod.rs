//! Command-line front ends. `main.rs` parses; these modules do the work,
//! so integration tests can reach the same code through the binary.

pub mod connector;
pub mod plugin;
pub mod rocketmq;
pub mod run;
pub mod scaffold;

use anyhow::{Context, Result};

/// Logs go to stderr, as text or JSON lines, filtered by `filter`.
pub fn init_logging(filter: &str, format: &str) -> Result<()> {
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).with_context(|| format!("invalid log filter \"{filter}\""))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = if format == "json" { builder.json().try_init() } else { builder.try_init() };
    result.map_err(|e| anyhow::anyhow!("cannot start logging: {e}"))
}
