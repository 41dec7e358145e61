//! A source connector task, as the project design draws it:
//!
//! ```text
//! source plugin poll() -> producer -> topic -> broker acknowledges -> position stored
//! ```
//!
//! The plugin reads through the SQL connection the connector grants. A
//! record's position (e.g. the MySQL incrementing id it reached) is stored
//! only after the broker acknowledged the record and everything before it;
//! a restart hands the stored positions back to the plugin's `init`, so it
//! resumes exactly there. A failed send fails the task: the supervisor
//! restarts it from the stored positions, so nothing is skipped.

use super::config::SourceSettings;
use super::positions::{PositionError, PositionStore, Positions};
use super::task::TaskControl;
use crate::plugin::bindings::{ErrorKind, SourcePosition, SourceRecord};
use crate::plugin::{CallError, LoadError, PluginCatalog, PluginEngine, PluginServices, Role, SourceInstance};
use crate::rocketmq::{OutgoingMessage, Producer, RocketMqError};
use crate::sql::SqlConnection;
use rocketmq_client_rust::ClientRuntime;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Records asked of the plugin per poll.
const MAX_RECORDS_PER_POLL: u32 = 2048;
/// A batch send carries at most this many messages or bytes (the broker
/// refuses batches over 4 MiB).
const MAX_BATCH_MESSAGES: usize = 512;
const MAX_BATCH_BYTES: usize = 1024 * 1024;
/// How long to wait after a poll that found nothing new. The plugin keeps
/// its own `poll.interval.ms` per table; this only bounds how late a due
/// table is noticed.
const IDLE_WAIT: Duration = Duration::from_millis(50);
/// Pause after a retryable plugin error (the database is unreachable).
const RETRY_WAIT: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    RocketMq(#[from] RocketMqError),
    #[error(transparent)]
    Positions(#[from] PositionError),
    #[error("connector {connector}: source plugin \"{plugin}\": {error}")]
    Load { connector: String, plugin: String, error: LoadError },
    #[error("connector {connector}: {error}")]
    Plugin { connector: String, error: CallError },
    /// The plugin refused its configuration: restarting cannot help.
    #[error("connector {connector}: {error}")]
    Config { connector: String, error: CallError },
    #[error("connector {connector}: {message}")]
    Other { connector: String, message: String },
}

impl SourceError {
    /// Whether restarting the task could help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, SourceError::Config { .. } | SourceError::Load { .. })
    }
}

/// What a task did before it stopped.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SourceStats {
    pub records: u64,
    pub batches: u64,
}

fn plugin_error(connector: &str, error: CallError) -> SourceError {
    match &error {
        CallError::Plugin { kind: ErrorKind::InvalidConfig | ErrorKind::SchemaMismatch, .. } => {
            SourceError::Config { connector: connector.to_string(), error }
        }
        _ => SourceError::Plugin { connector: connector.to_string(), error },
    }
}

fn is_retryable(error: &CallError) -> bool {
    matches!(error, CallError::Plugin { kind: ErrorKind::Retryable, .. })
}

/// Run one source task until cancelled.
#[tracing::instrument(name = "source_task", skip_all, fields(connector = %settings.connector, task = settings.task))]
pub async fn run_source_task(
    settings: SourceSettings,
    engine: Arc<PluginEngine>,
    catalog: PluginCatalog,
    client: Arc<ClientRuntime>,
    positions: PositionStore,
    control: TaskControl,
) -> Result<SourceStats, SourceError> {
    let connector = settings.connector.clone();
    let plugin_name = settings.plugin.clone();
    let load_error = |error| SourceError::Load { connector: connector.clone(), plugin: plugin_name.clone(), error };
    let origin = catalog.resolve(&settings.plugin).map_err(load_error)?;
    let plugin = {
        let engine = engine.clone();
        tokio::task::spawn_blocking(move || engine.load(origin, Some(Role::Source)))
            .await
            .map_err(|e| SourceError::Other { connector: connector.clone(), message: format!("plugin load: {e}") })?
            .map_err(load_error)?
    };
    let services = match &settings.sql {
        Some(grant) => {
            let sql = SqlConnection::open(grant.clone()).map_err(|e| SourceError::Other {
                connector: connector.clone(),
                message: format!("SQL connection thread: {e}"),
            })?;
            PluginServices::sandboxed(plugin.name.clone(), connector.clone(), settings.sandbox.clone(), Some(sql))
        }
        None => PluginServices::sandboxed(plugin.name.clone(), connector.clone(), settings.sandbox.clone(), None),
    };
    let stored = positions.load().await?;
    let mut instance = {
        let (engine, config) = (engine.clone(), settings.plugin_config.clone());
        let initial = as_wit(&stored);
        tokio::task::spawn_blocking(move || SourceInstance::new(&engine, plugin, config, initial, services))
            .await
            .map_err(|e| SourceError::Other { connector: connector.clone(), message: format!("plugin init: {e}") })?
            .map_err(|e| plugin_error(&connector, e))?
    };
    tracing::info!(positions = stored.len(), "source task started");
    let producer =
        Producer::start(client, &settings.namesrv, &format!("rmq-openmldb-source-{}", settings.connector)).await?;
    let result = pump(&settings, &mut instance, &producer, &positions, stored, &control).await;
    producer.shutdown().await;
    result
}

/// Poll, send, store positions, until cancelled.
async fn pump(
    settings: &SourceSettings,
    instance: &mut SourceInstance,
    producer: &Producer,
    positions: &PositionStore,
    mut stored: Positions,
    control: &TaskControl,
) -> Result<SourceStats, SourceError> {
    let connector = settings.connector.as_str();
    let mut stats = SourceStats::default();
    let mut paused = control.paused.clone();
    loop {
        if control.cancel.is_cancelled() {
            return Ok(stats);
        }
        if *paused.borrow() {
            control.progress.set_paused(true);
            tokio::select! {
                _ = paused.wait_for(|p| !*p) => {}
                _ = control.cancel.cancelled() => return Ok(stats),
            }
            control.progress.set_paused(false);
            continue;
        }
        let started = Instant::now();
        // The plugin may block on the database; keep it off the runtime's workers.
        let polled = tokio::task::block_in_place(|| instance.poll(MAX_RECORDS_PER_POLL));
        control.progress.plugin_time.observe(started.elapsed());
        let records = match polled {
            Ok(records) => records,
            Err(error) if is_retryable(&error) || error.is_trap() => {
                tracing::warn!("source poll failed, retrying in {RETRY_WAIT:?}: {error}");
                if error.is_trap() {
                    control.progress.add_plugin_traps(1);
                }
                sleep_or_cancel(RETRY_WAIT, control).await;
                continue;
            }
            Err(error) => return Err(plugin_error(connector, error)),
        };
        if records.is_empty() {
            positions.keep_fresh(&stored).await?;
            sleep_or_cancel(IDLE_WAIT, control).await;
            continue;
        }
        let count = records.len() as u64;
        let (reached, failed) = send_all(producer, &records).await;
        stored = positions.save(&reached).await?;
        if let Some(error) = failed {
            return Err(error.into());
        }
        instance.set_positions(as_wit(&stored));
        stats.records += count;
        stats.batches += 1;
        control.progress.add_messages(count);
        control.progress.add_rows_written(count);
        control.progress.add_batch();
        control.progress.batch_time.observe(started.elapsed());
        tracing::debug!(records = count, "source batch sent and positions stored");
    }
}

/// Send the records in order (consecutive records of one topic go in one
/// batch) and return the position each partition reached with the
/// acknowledged batches, and the error that stopped the sending, if any.
async fn send_all(producer: &Producer, records: &[SourceRecord]) -> (Positions, Option<RocketMqError>) {
    let mut reached = BTreeMap::new();
    let mut in_batch = BTreeMap::new();
    let mut batch: Vec<OutgoingMessage> = Vec::new();
    let mut batch_bytes = 0;
    for (i, record) in records.iter().enumerate() {
        batch_bytes += record.body.len();
        batch.push(OutgoingMessage {
            topic: record.topic.clone(),
            keys: record.keys.clone(),
            tags: record.tags.clone(),
            properties: record.properties.iter().map(|p| (p.key.clone(), p.value.clone())).collect(),
            body: record.body.clone(),
        });
        let next_differs = records.get(i + 1).is_none_or(|next| next.topic != record.topic);
        in_batch.insert(record.partition.clone(), record.position.clone());
        if next_differs || batch.len() >= MAX_BATCH_MESSAGES || batch_bytes >= MAX_BATCH_BYTES {
            if let Err(e) = producer.send_batch(&batch).await {
                return (reached, Some(e));
            }
            reached.append(&mut in_batch);
            batch.clear();
            batch_bytes = 0;
        }
    }
    (reached, None)
}

fn as_wit(positions: &Positions) -> Vec<SourcePosition> {
    positions
        .iter()
        .map(|(partition, position)| SourcePosition { partition: partition.clone(), position: position.clone() })
        .collect()
}

async fn sleep_or_cancel(wait: Duration, control: &TaskControl) {
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = control.cancel.cancelled() => {}
    }
}
