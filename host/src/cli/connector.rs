//! `rmq-openmldb connector sink --config CONNECTOR.json`: run one sink
//! connector in the foreground, from RocketMQ Connect's connector JSON (the
//! keys OpenMLDB's guide uses). The worker and its REST API will run the
//! same task; this is the way to try a connector without them.

use crate::connector::config::config_from_json;
use crate::connector::{SinkSettings, TaskControl, run_sink_task};
use crate::plugin::{PluginCatalog, PluginEngine, RuntimeConfig, default_cache_dir};
use crate::rocketmq::RocketMqClient;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Subcommand, Debug)]
pub enum ConnectorCommand {
    /// Run a sink connector until Ctrl-C (or `--for-seconds`).
    Sink(SinkArgs),
}

#[derive(Args, Debug)]
pub struct SinkArgs {
    /// The connector's JSON config, as posted to RocketMQ Connect.
    #[arg(long)]
    pub config: PathBuf,
    /// The connector's name (its consumer group is `connect-<name>`).
    #[arg(long, default_value = "openmldb-sink")]
    pub name: String,
    #[arg(long, default_value = "127.0.0.1:9876")]
    pub namesrv: String,
    /// Folder of user plugins.
    #[arg(long, env = "RMQ_OPENMLDB_PLUGINS_DIR")]
    pub plugins_dir: Option<PathBuf>,
    /// Stop after this long.
    #[arg(long)]
    pub for_seconds: Option<u64>,
}

pub fn run(command: ConnectorCommand) -> Result<()> {
    let ConnectorCommand::Sink(args) = command;
    let text =
        std::fs::read_to_string(&args.config).with_context(|| format!("cannot read {}", args.config.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: invalid JSON", args.config.display()))?;
    let config = config_from_json(&json).with_context(|| args.config.display().to_string())?;
    let settings = SinkSettings::from_config(&args.name, &args.namesrv, &config)?;
    let engine = Arc::new(PluginEngine::new(RuntimeConfig { cache_dir: default_cache_dir() })?);
    let catalog = PluginCatalog::new(args.plugins_dir.clone());
    let client = RocketMqClient::new()?;
    let runtime = client.client();
    let cancel = CancellationToken::new();
    let stats = client.run(async move {
        let stopper = cancel.clone();
        let for_seconds = args.for_seconds;
        tokio::spawn(async move {
            match for_seconds {
                Some(seconds) => tokio::time::sleep(Duration::from_secs(seconds)).await,
                None => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
            stopper.cancel();
        });
        eprintln!(
            "connector {}: topics {:?} -> table {}",
            settings.connector,
            settings.consumer.topics,
            settings.tables.describe()
        );
        run_sink_task(settings, engine, catalog, runtime, TaskControl::unpaused(cancel)).await
    })?;
    eprintln!(
        "connector {}: {} messages, {} rows written, {} dead-lettered",
        args.name, stats.messages, stats.rows_written, stats.dead_lettered
    );
    Ok(())
}
