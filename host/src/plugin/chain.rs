//! A converter followed by a transform chain: the plugin half of a sink
//! connector's data path (messages -> rows), shared by the connector task
//! and `rmq-openmldb plugin test`.
//!
//! Schemas are negotiated from the table backwards: the last transform is
//! told to produce the table's columns and answers with what it needs; the
//! one before it is told to produce that; and so on, until the converter is
//! told which columns to build. Rows then flow front to back.

use super::bindings::{Column, FailureKind, Message, Needs, Origin, Row, RowBatch, TableSchema};
use super::catalog::PluginCatalog;
use super::engine::{PluginEngine, Role};
use super::error::{CallError, LoadError};
use super::instance::{ConverterInstance, PluginConfig, TransformInstance};
use super::state::PluginServices;
use std::collections::HashSet;

/// One plugin of a chain: what to load and its config.
#[derive(Debug, Clone)]
pub struct StageSpec {
    /// Built-in name, plugins-folder name, or path to a `.wasm` file.
    pub plugin: String,
    pub config: PluginConfig,
}

/// Why a chain could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("{stage}: {source}")]
    Call { stage: String, source: CallError },
}

/// A message that produced no row, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageFailure {
    /// Index of the message in the batch.
    pub source_index: u32,
    /// `converter <name>` or `transform <name>`.
    pub stage: String,
    pub kind: FailureKind,
    pub message: String,
}

/// The result of one batch.
#[derive(Debug, Default)]
pub struct ChainOutput {
    /// Rows in table column order; `source_index` is the message's index.
    pub rows: Vec<Row>,
    /// Messages that failed (they go to the dead-letter topic).
    pub failures: Vec<MessageFailure>,
    /// Plugin traps in this batch (each retried once on a fresh instance).
    pub traps: u32,
}

/// A loaded, initialised converter and transform chain for one table.
pub struct PluginChain {
    converter: ConverterInstance,
    transforms: Vec<TransformInstance>,
    table: TableSchema,
}

impl PluginChain {
    /// Load and init every stage, negotiating schemas from `table` backwards.
    pub fn new(
        engine: &PluginEngine,
        catalog: &PluginCatalog,
        converter: &StageSpec,
        transforms: &[StageSpec],
        table: TableSchema,
        connector: &str,
    ) -> Result<Self, ChainError> {
        let mut output: Vec<Column> = table.columns.clone();
        let mut built = Vec::with_capacity(transforms.len());
        for spec in transforms.iter().rev() {
            let plugin = engine.load(catalog.resolve(&spec.plugin)?, Some(Role::Transform))?;
            let services = PluginServices::new(plugin.name.clone(), connector);
            let stage = format!("transform {}", plugin.name);
            let instance = TransformInstance::new(engine, plugin, spec.config.clone(), output, services)
                .map_err(|source| ChainError::Call { stage, source })?;
            output = instance.input().to_vec();
            built.push(instance);
        }
        built.reverse();
        let plugin = engine.load(catalog.resolve(&converter.plugin)?, Some(Role::Converter))?;
        let services = PluginServices::new(plugin.name.clone(), connector);
        let stage = format!("converter {}", plugin.name);
        let target = TableSchema { columns: output, ..table.clone() };
        let converter = ConverterInstance::new(engine, plugin, converter.config.clone(), target, services)
            .map_err(|source| ChainError::Call { stage, source })?;
        Ok(PluginChain { converter, transforms: built, table })
    }

    /// The optional message fields the converter reads.
    pub fn converter_needs(&self) -> Needs {
        self.converter.info().needs
    }

    pub fn table(&self) -> &TableSchema {
        &self.table
    }

    /// The columns the converter was asked to build.
    pub fn converter_columns(&self) -> &[Column] {
        self.transforms.first().map(|t| t.input()).unwrap_or(&self.table.columns)
    }

    /// Names of the stages, front to back.
    pub fn stage_names(&self) -> Vec<String> {
        std::iter::once(format!("converter {}", self.converter.plugin().name))
            .chain(self.transforms.iter().map(|t| format!("transform {}", t.plugin().name)))
            .collect()
    }

    /// Run one batch through every stage. A trap is retried once on a fresh
    /// instance; a second trap, or a whole-batch plugin error, is `Err`.
    pub fn run(&mut self, messages: &[Message]) -> Result<ChainOutput, ChainError> {
        let stage = format!("converter {}", self.converter.plugin().name);
        let mut traps = 0;
        let converted = retry_trap_once(&mut traps, || self.converter.convert(messages))
            .map_err(|source| ChainError::Call { stage: stage.clone(), source })?;
        let mut failures: Vec<MessageFailure> = converted
            .failures
            .into_iter()
            .map(|f| MessageFailure { source_index: f.index, stage: stage.clone(), kind: f.kind, message: f.message })
            .collect();
        let mut rows = converted.rows;
        let mut origins: Option<Vec<Origin>> = None;
        for transform in &mut self.transforms {
            if rows.is_empty() {
                break;
            }
            let stage = format!("transform {}", transform.plugin().name);
            let origins = if transform.info().needs.contains(Needs::ORIGIN) {
                origins.get_or_insert_with(|| messages.iter().map(origin_of).collect()).clone()
            } else {
                Vec::new()
            };
            let batch = RowBatch { rows, origins };
            let transformed = retry_trap_once(&mut traps, || transform.process(&batch))
                .map_err(|source| ChainError::Call { stage: stage.clone(), source })?;
            failures.extend(transformed.failures.into_iter().map(|f| MessageFailure {
                source_index: batch.rows[f.index as usize].source_index,
                stage: stage.clone(),
                kind: f.kind,
                message: f.message,
            }));
            rows = transformed.rows;
        }
        // One failed row fails its whole message: a message is stored whole
        // or dead-lettered whole.
        let failed: HashSet<u32> = failures.iter().map(|f| f.source_index).collect();
        rows.retain(|r| !failed.contains(&r.source_index));
        Ok(ChainOutput { rows, failures, traps })
    }
}

fn origin_of(message: &Message) -> Origin {
    Origin {
        topic: message.topic.clone(),
        queue_id: message.queue_id,
        queue_offset: message.queue_offset,
        born_timestamp: message.born_timestamp,
        store_timestamp: message.store_timestamp,
    }
}

fn retry_trap_once<T>(traps: &mut u32, mut call: impl FnMut() -> Result<T, CallError>) -> Result<T, CallError> {
    match call() {
        Err(e) if e.is_trap() => {
            *traps += 1;
            tracing::warn!("retrying the batch once on a fresh instance after: {e}");
            call()
        }
        other => other,
    }
}
