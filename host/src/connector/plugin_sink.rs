//! Rows into a sink plugin (the built-in `mysql-sink`, or any component
//! of the sink role) instead of OpenMLDB. The host owns what the plugin
//! must not: the granted connection, the table's schema (read from the
//! database, or made by `auto.create`), retries with backoff, and the rule
//! that a batch counts as stored only after `write` and `flush` both
//! returned `ok`. Rows the plugin names as failures go to the dead-letter
//! topic like rows OpenMLDB refuses.

use super::PluginSinkConfig;
use crate::openmldb::WriteReport;
use crate::plugin::bindings::{Column, ErrorKind, Row, RowBatch, TableSchema};
use crate::plugin::{CallError, PluginCatalog, PluginEngine, PluginServices, Role, SinkInstance};
use crate::sql::SqlConnection;
use crate::sql::schema::{create_table, describe_table};
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
        let services = PluginServices::with_sql(loaded.name.clone(), connector, connection);
        let instance = SinkInstance::new(engine, loaded, config.plugin_config.clone(), schema.clone(), services)
            .map_err(|e| setup(e.to_string()))?;
        tracing::info!(plugin = %config.plugin, table, "sink plugin ready");
        Ok(PluginSinkWriter { instance: Some(instance), plugin: config.plugin.clone(), config: config.clone(), schema })
    }

    pub fn schema(&self) -> &TableSchema {
        &self.schema
    }

    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// Write rows: `write` then `flush`, retried with backoff while the
    /// plugin says the problem is transient. Rows it refuses are `poison`;
    /// on any other error, or when retries run out, every row is
    /// `unresolved` (so nothing is committed).
    pub async fn write(&mut self, rows: &[Row], cancel: &CancellationToken) -> WriteReport {
        let mut report = WriteReport::default();
        let mut backoff = self.config.backoff;
        let mut attempts = 0u32;
        let batch = RowBatch { rows: rows.to_vec(), origins: Vec::new() };
        loop {
            let outcome = self.call(batch.clone()).await;
            let error = match outcome {
                Ok(failures) => {
                    let mut refused = vec![false; rows.len()];
                    for failure in failures {
                        refused[failure.index as usize] = true;
                        report.poison.push((failure.index as usize, failure.message));
                    }
                    report.written = (0..rows.len()).filter(|i| !refused[*i]).collect();
                    return report;
                }
                Err(error) => error,
            };
            let retryable =
                matches!(&error, CallError::Plugin { kind: ErrorKind::Retryable, .. }) || error.is_trap();
            report.last_error = Some(error.to_string());
            let out_of_retries = self.config.max_retries.is_some_and(|max| attempts >= max);
            if !retryable || out_of_retries || cancel.is_cancelled() {
                report.unresolved = (0..rows.len()).collect();
                return report;
            }
            attempts += 1;
            report.retries += 1;
            tracing::warn!(plugin = %self.plugin, attempt = attempts, "sink write failed, retrying in {backoff:?}: {error}");
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = cancel.cancelled() => {}
            }
            backoff = (backoff * 2).min(self.config.backoff_max).max(Duration::from_millis(1));
        }
    }

    /// One `write` + `flush` on a blocking thread (the plugin and the
    /// database calls block).
    async fn call(&mut self, batch: RowBatch) -> Result<Vec<crate::plugin::bindings::RecordFailure>, CallError> {
        let Some(mut instance) = self.instance.take() else {
            return Err(CallError::Instantiate {
                plugin: self.plugin.clone(),
                reason: "the previous call did not hand the instance back".into(),
            });
        };
        let job = tokio::task::spawn_blocking(move || {
            let result = instance.write(&batch).and_then(|failures| instance.flush().map(|()| failures));
            (instance, result)
        });
        match job.await {
            Ok((instance, result)) => {
                self.instance = Some(instance);
                result
            }
            Err(e) => Err(CallError::Instantiate { plugin: self.plugin.clone(), reason: format!("the call panicked: {e}") }),
        }
    }
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
