//! A converter followed by a transform chain: the plugin half of a sink
//! connector's data path (messages -> rows), shared by the connector task
//! and `rmq-openmldb plugin test`.
//!
//! Schemas are negotiated from the table backwards: the last transform is
//! told to produce the table's columns and answers with what it needs; the
//! one before it is told to produce that; and so on, until the converter is
//! told which columns to build. Rows then flow front to back.

use super::bindings::{Column, Message, Needs, Origin, Row, RowBatch, TableSchema, failure_kind_name};
use super::catalog::PluginCatalog;
use super::engine::{PluginEngine, Role};
use super::error::{CallError, LoadError};
use super::instance::{ConverterInstance, PluginConfig, TransformInstance};
use super::state::PluginServices;
use crate::telemetry::{STAGE_CPU, Stage};
use std::collections::HashSet;

/// One plugin of a chain: what to load and its config.
#[derive(Debug, Clone)]
pub struct StageSpec {
    /// Built-in name, plugins-folder name, or path to a `.wasm` file.
    pub plugin: String,
    pub config: PluginConfig,
    /// Its limits and grants.
    pub sandbox: super::sandbox::Sandbox,
}

/// Why a chain could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("{stage}: {source}")]
    Call { stage: String, source: CallError },
    /// The task is stopping: the batch was left part-way (nothing of it
    /// is acknowledged, so it comes back).
    #[error("stopped while the batch was in the plugins")]
    Stopped,
}

/// A message that produced no row, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageFailure {
    /// Index of the message in the batch.
    pub source_index: u32,
    /// `converter <name>` or `transform <name>`.
    pub stage: String,
    /// The WIT failure kind (`decode`, `out-of-range`, …), or `trap` when
    /// the plugin trapped on this message alone (twice).
    pub kind: &'static str,
    pub message: String,
}

/// The kind of a failure made by a message the plugin traps on.
pub const TRAP_KIND: &str = "trap";

/// The result of one batch.
#[derive(Debug, Default)]
pub struct ChainOutput {
    /// Rows in table column order; `source_index` is the message's index.
    pub rows: Vec<Row>,
    /// Messages that failed (they go to the dead-letter topic).
    pub failures: Vec<MessageFailure>,
    /// Plugin traps in this batch (retries and bisection included).
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
            let services = PluginServices::sandboxed(plugin.name.clone(), connector, spec.sandbox.clone(), None);
            let stage = format!("transform {}", plugin.name);
            let instance = TransformInstance::new(engine, plugin, spec.config.clone(), output, services)
                .map_err(|source| ChainError::Call { stage, source })?;
            output = instance.input().to_vec();
            built.push(instance);
        }
        built.reverse();
        let plugin = engine.load(catalog.resolve(&converter.plugin)?, Some(Role::Converter))?;
        let services = PluginServices::sandboxed(plugin.name.clone(), connector, converter.sandbox.clone(), None);
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

    /// Run one batch through every stage, `max-batch` messages (or rows)
    /// per call when a plugin asks for fewer.
    ///
    /// Poison isolation: a call that traps is retried once on a fresh
    /// instance; when it traps again the batch is split in halves, and so
    /// on, until exactly the messages that trap alone are left. Those fail
    /// with kind `trap` and the trap's reason; every other message goes on.
    /// A whole-batch plugin error (`Err`) stops the batch: nothing of it is
    /// stored.
    pub fn run(&mut self, messages: &[Message]) -> Result<ChainOutput, ChainError> {
        self.run_until(messages, &|| false)
    }

    /// [`run`](Self::run), given up between two calls once `stop` says so:
    /// isolating poison can take many calls, each up to its deadline, and
    /// a stopping task must not wait for all of them.
    pub fn run_until(&mut self, messages: &[Message], stop: &dyn Fn() -> bool) -> Result<ChainOutput, ChainError> {
        let mut output = ChainOutput::default();
        self.run_isolating(messages, 0, &mut output, stop)?;
        // One failed row fails its whole message: a message is stored whole
        // or dead-lettered whole.
        let failed: HashSet<u32> = output.failures.iter().map(|f| f.source_index).collect();
        output.rows.retain(|r| !failed.contains(&r.source_index));
        Ok(output)
    }

    /// `messages` are the batch's `offset..offset+len`; rows and failures
    /// go to `output` with batch-wide indexes.
    fn run_isolating(
        &mut self,
        messages: &[Message],
        offset: u32,
        output: &mut ChainOutput,
        stop: &dyn Fn() -> bool,
    ) -> Result<(), ChainError> {
        if stop() {
            return Err(ChainError::Stopped);
        }
        match self.run_once(messages, &mut output.traps) {
            Ok((rows, failures)) => {
                output.rows.extend(rows.into_iter().map(|mut row| {
                    row.source_index += offset;
                    row
                }));
                output.failures.extend(failures.into_iter().map(|mut failure| {
                    failure.source_index += offset;
                    failure
                }));
                Ok(())
            }
            Err(Poisoned { stage, error }) if is_poison(&error) && messages.len() == 1 => {
                tracing::warn!(stage, "a message makes the plugin fail; it is set aside: {error}");
                let kind = if error.is_trap() { TRAP_KIND } else { "contract" };
                output.failures.push(MessageFailure { source_index: offset, stage, kind, message: error.to_string() });
                Ok(())
            }
            Err(Poisoned { stage, error }) if is_poison(&error) && messages.len() > 1 => {
                tracing::warn!(stage, messages = messages.len(), "bisecting a batch the plugin fails on: {error}");
                let half = messages.len() / 2;
                self.run_isolating(&messages[..half], offset, output, stop)?;
                self.run_isolating(&messages[half..], offset + half as u32, output, stop)
            }
            Err(Poisoned { stage, error }) => Err(ChainError::Call { stage, source: error }),
        }
    }

    /// One pass of the whole chain over `messages` (indexes local to
    /// them), chunked by each plugin's `max-batch`. A second trap in a row,
    /// or an error of a whole call, is `Poisoned` with its stage.
    fn run_once(&mut self, messages: &[Message], traps: &mut u32) -> Result<(Vec<Row>, Vec<MessageFailure>), Poisoned> {
        let stage = format!("converter {}", self.converter.plugin().name);
        let converter_limit = batch_limit(self.converter.info().max_batch);
        let mut rows = Vec::with_capacity(messages.len());
        let mut failures = Vec::new();
        for (chunk_number, chunk) in messages.chunks(converter_limit).enumerate() {
            let base = (chunk_number * converter_limit) as u32;
            let converted = STAGE_CPU
                .measure(Stage::Convert, || retry_trap_once(traps, || self.converter.convert(chunk)))
                .map_err(|error| Poisoned { stage: stage.clone(), error })?;
            failures.extend(converted.failures.into_iter().map(|f| MessageFailure {
                source_index: base + f.index,
                stage: stage.clone(),
                kind: failure_kind_name(f.kind),
                message: f.message,
            }));
            rows.extend(converted.rows.into_iter().map(|mut row| {
                row.source_index += base;
                row
            }));
        }
        let mut origins: Option<Vec<Origin>> = None;
        for transform in &mut self.transforms {
            if rows.is_empty() {
                break;
            }
            let stage = format!("transform {}", transform.plugin().name);
            let limit = batch_limit(transform.info().max_batch);
            let wants_origins = transform.info().needs.contains(Needs::ORIGIN);
            let mut out = Vec::with_capacity(rows.len());
            let mut pending = rows.into_iter().peekable();
            while pending.peek().is_some() {
                let chunk: Vec<Row> = pending.by_ref().take(limit).collect();
                let origins = if wants_origins {
                    origins.get_or_insert_with(|| messages.iter().map(origin_of).collect()).clone()
                } else {
                    Vec::new()
                };
                let batch = RowBatch { rows: chunk, origins };
                let transformed = STAGE_CPU
                    .measure(Stage::Transform, || retry_trap_once(traps, || transform.process(&batch)))
                    .map_err(|error| Poisoned { stage: stage.clone(), error })?;
                failures.extend(transformed.failures.into_iter().map(|f| MessageFailure {
                    source_index: batch.rows[f.index as usize].source_index,
                    stage: stage.clone(),
                    kind: failure_kind_name(f.kind),
                    message: f.message,
                }));
                out.extend(transformed.rows);
            }
            rows = out;
        }
        Ok((rows, failures))
    }
}

/// Whether an error may be caused by the batch's content, so bisecting it
/// finds the messages to set aside: traps (panics, deadlines, memory) and
/// contract violations. A plugin's own whole-call error is not: it may be
/// the plugin's state (a lost resource), and setting the batch aside would
/// send good messages to the dead-letter topic; the task fails instead and
/// its restart policy applies.
pub fn is_poison(error: &CallError) -> bool {
    matches!(error, CallError::Trap { .. } | CallError::Contract { .. })
}

/// A call failed twice in a row (or as a whole): which stage, and why.
struct Poisoned {
    stage: String,
    error: CallError,
}

/// Messages or rows per call: what the plugin asked for, else all.
fn batch_limit(max_batch: Option<u32>) -> usize {
    match max_batch {
        Some(n) if n > 0 => n as usize,
        _ => usize::MAX,
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
            let again = call();
            if again.as_ref().is_err_and(CallError::is_trap) {
                *traps += 1;
            }
            again
        }
        other => other,
    }
}
