//! Rows into a sink plugin (the built-in `mysql-sink`, or any component
//! of the sink role) instead of OpenMLDB. The host owns what the plugin
//! must not: the granted connection, the table's schema (read from the
//! database, or made by `auto.create`), retries with backoff, and the rule
//! that a batch counts as stored only after `write` and `flush` both
//! returned `ok`: each attempt is one database transaction, begun by the
//! host before `write` and committed after `flush`, so a failed or retried
//! batch leaves nothing behind, however many statements the plugin used.
//! Rows the plugin names as failures go to the dead-letter topic like rows
//! OpenMLDB refuses; rows it traps on alone (found by halving the batch)
//! go there with kind `trap`.

use super::PluginSinkConfig;
use crate::openmldb::{Poison, WriteObserver, WriteReport};
use crate::plugin::bindings::{Column, ErrorKind, RecordFailure, Row, RowBatch, TableSchema};
use crate::plugin::{CallError, PluginCatalog, PluginEngine, PluginServices, Role, SinkInstance, TRAP_KIND, is_poison};
use crate::sql::SqlConnection;
use crate::sql::schema::{create_table, describe_table};
use crate::telemetry::{STAGE_CPU, Stage};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum PluginSinkError {
    /// `auto.create` needs a message that declares the table's columns.
    #[error(
        "table {table} does not exist in {database} and none of the messages so far declares its columns \
         (auto.create needs JsonConverter envelopes)"
    )]
    NoSchemaYet { database: String, table: String },
    #[error("sink plugin {plugin}: {reason}")]
    Setup { plugin: String, reason: String },
}

/// A warm sink plugin with its connection, ready for batches.
pub struct PluginSinkWriter {
    /// Taken while a call runs on a blocking thread.
    instance: Option<SinkInstance>,
    plugin: String,
    config: PluginSinkConfig,
    schema: TableSchema,
    /// The plugin's connection, for the host's transaction around a batch.
    connection: SqlConnection,
}

impl PluginSinkWriter {
    /// Connect, find (or create) the table and start the plugin with its
    /// schema. `record_columns` are the columns a message declared, for
    /// `auto.create`.
    pub fn open(
        config: &PluginSinkConfig,
        engine: &PluginEngine,
        catalog: &PluginCatalog,
        connector: &str,
        table: &str,
        record_columns: Option<&[Column]>,
    ) -> Result<PluginSinkWriter, PluginSinkError> {
        let setup = |reason: String| PluginSinkError::Setup { plugin: config.plugin.clone(), reason };
        let database = config.sql.url.database.clone().unwrap_or_default();
        let connection = SqlConnection::open(config.sql.clone())
            .map_err(|e| setup(format!("cannot start the database connection: {e}")))?;
        let mut columns = describe_table(&connection, table).map_err(|e| setup(e.to_string()))?;
        if columns.is_none() && config.auto_create {
            let Some(declared) = record_columns else {
                return Err(PluginSinkError::NoSchemaYet { database, table: table.to_string() });
            };
            create_table(&connection, table, declared, &config.primary_key).map_err(|e| setup(e.to_string()))?;
            columns = describe_table(&connection, table).map_err(|e| setup(e.to_string()))?;
        }
        let Some(columns) = columns else {
            return Err(setup(format!(
                "table {table} does not exist in database {database} (create it, or set auto.create=true)"
            )));
        };
        let schema = TableSchema { database, table: table.to_string(), columns };
        let origin = catalog.resolve(&config.plugin).map_err(|e| setup(e.to_string()))?;
        let loaded = engine.load(origin, Some(Role::Sink)).map_err(|e| setup(e.to_string()))?;
        let services =
            PluginServices::sandboxed(loaded.name.clone(), connector, config.sandbox.clone(), Some(connection.clone()));
        let instance = SinkInstance::new(engine, loaded, config.plugin_config.clone(), schema.clone(), services)
            .map_err(|e| setup(e.to_string()))?;
        tracing::info!(plugin = %config.plugin, table, "sink plugin ready");
        Ok(PluginSinkWriter {
            instance: Some(instance),
            plugin: config.plugin.clone(),
            config: config.clone(),
            schema,
            connection,
        })
    }

    pub fn schema(&self) -> &TableSchema {
        &self.schema
    }

    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// Write rows: `write` then `flush` in one transaction, retried with
    /// backoff while the plugin says the problem is transient (each retry
    /// told to `observer`). Rows it refuses are poison; a batch it traps on
    /// twice is halved until the rows that trap alone are found (poison of
    /// kind `trap`). On any other error, or when retries run out, the rows
    /// not yet stored are `unresolved` (so nothing of them is committed).
    pub async fn write(
        &mut self,
        rows: &[Row],
        cancel: &CancellationToken,
        observer: &dyn WriteObserver,
    ) -> WriteReport {
        let mut report = WriteReport::default();
        // Ranges still to write, the next one last.
        let mut ranges = Vec::new();
        ranges.push(0..rows.len());
        while let Some(range) = ranges.pop() {
            if range.is_empty() {
                continue;
            }
            let start = range.start;
            match self.attempt(&rows[range.clone()], cancel, observer, &mut report).await {
                Attempt::Stored(failures) => {
                    let mut refused = vec![false; range.len()];
                    for failure in failures {
                        refused[failure.index as usize] = true;
                        report.poison.push(Poison::rejected(start + failure.index as usize, failure.message));
                    }
                    report.written.extend(range.filter(|i| !refused[i - start]));
                }
                Attempt::Poisoned(error) if range.len() == 1 => {
                    tracing::warn!(plugin = %self.plugin, "a row makes the sink plugin fail; it is set aside: {error}");
                    report.poison.push(Poison { index: start, kind: TRAP_KIND, reason: error.to_string() });
                }
                Attempt::Poisoned(error) => {
                    tracing::warn!(plugin = %self.plugin, rows = range.len(), "bisecting a batch the sink plugin fails on: {error}");
                    let middle = start + range.len() / 2;
                    ranges.push(middle..range.end);
                    ranges.push(start..middle);
                }
                Attempt::GaveUp(error) => {
                    report.last_error = Some(error.to_string());
                    report.unresolved.extend(range);
                    for rest in ranges.drain(..) {
                        report.unresolved.extend(rest);
                    }
                }
            }
        }
        report.written.sort_unstable();
        report.poison.sort_unstable_by_key(|p| p.index);
        report.unresolved.sort_unstable();
        report
    }

    /// One batch until it is stored, poisons the plugin, or cannot be
    /// stored now.
    async fn attempt(
        &mut self,
        rows: &[Row],
        cancel: &CancellationToken,
        observer: &dyn WriteObserver,
        report: &mut WriteReport,
    ) -> Attempt {
        let mut backoff = self.config.backoff;
        let mut attempts = 0u32;
        let mut traps = 0u32;
        let batch = RowBatch { rows: rows.to_vec(), origins: Vec::new() };
        loop {
            let error = match self.call(batch.clone()).await {
                Ok(failures) => return Attempt::Stored(failures),
                Err(error) => error,
            };
            if is_poison(&error) {
                traps += 1;
                // A trap is retried once on a fresh instance, then bisected.
                if traps >= 2 || !error.is_trap() {
                    return Attempt::Poisoned(error);
                }
                continue;
            }
            let retryable = matches!(&error, CallError::Plugin { kind: ErrorKind::Retryable, .. });
            let out_of_retries = self.config.max_retries.is_some_and(|max| attempts >= max);
            if !retryable || out_of_retries || cancel.is_cancelled() {
                return Attempt::GaveUp(error);
            }
            attempts += 1;
            report.retries += 1;
            observer.retrying(&self.schema.table, attempts, &error.to_string(), backoff);
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = cancel.cancelled() => {}
            }
            backoff = (backoff * 2).min(self.config.backoff_max).max(Duration::from_millis(1));
        }
    }

    /// One `write` + `flush` in one transaction, on a blocking thread (the
    /// plugin and the database calls block). Rolled back unless both
    /// succeeded and the commit did.
    async fn call(&mut self, batch: RowBatch) -> Result<Vec<RecordFailure>, CallError> {
        let Some(mut instance) = self.instance.take() else {
            return Err(CallError::Instantiate {
                plugin: self.plugin.clone(),
                reason: "the previous call did not hand the instance back".into(),
            });
        };
        let connection = self.connection.clone();
        let plugin = self.plugin.clone();
        let job = tokio::task::spawn_blocking(move || {
            let database = |e: crate::plugin::bindings::sql::SqlError| CallError::Plugin {
                plugin: plugin.clone(),
                kind: ErrorKind::Retryable,
                message: format!("the batch's transaction: {}", e.message),
            };
            let result = STAGE_CPU.measure(Stage::Write, || {
                connection.begin().map_err(database).and_then(|()| {
                    let written = instance.write(&batch).and_then(|failures| instance.flush().map(|()| failures));
                    match written {
                        Ok(failures) => connection.commit().map(|()| failures).map_err(database),
                        Err(e) => {
                            let _ = connection.rollback();
                            Err(e)
                        }
                    }
                })
            });
            (instance, result)
        });
        match job.await {
            Ok((instance, result)) => {
                self.instance = Some(instance);
                result
            }
            Err(e) => {
                Err(CallError::Instantiate { plugin: self.plugin.clone(), reason: format!("the call panicked: {e}") })
            }
        }
    }
}

/// How one batch attempt ended.
enum Attempt {
    /// Stored, but for the rows the plugin refused.
    Stored(Vec<RecordFailure>),
    /// The plugin traps on it (twice), or broke the contract.
    Poisoned(CallError),
    /// It cannot be stored now (a plugin error, retries used up, shutdown).
    GaveUp(CallError),
}

/// Run `open` off the async runtime's workers.
pub async fn open_plugin_sink(
    config: &PluginSinkConfig,
    engine: &Arc<PluginEngine>,
    catalog: &PluginCatalog,
    connector: &str,
    table: &str,
    record_columns: Option<Vec<Column>>,
) -> Result<PluginSinkWriter, PluginSinkError> {
    let (config, engine, catalog) = (config.clone(), engine.clone(), catalog.clone());
    let (connector, table) = (connector.to_string(), table.to_string());
    let plugin = config.plugin.clone();
    tokio::task::spawn_blocking(move || {
        PluginSinkWriter::open(&config, &engine, &catalog, &connector, &table, record_columns.as_deref())
    })
    .await
    .unwrap_or_else(|e| Err(PluginSinkError::Setup { plugin, reason: format!("setup panicked: {e}") }))
}
