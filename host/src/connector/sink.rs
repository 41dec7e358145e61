//! A sink connector task, as the project design draws it:
//!
//! ```text
//! consume -> converter -> transforms -> OpenMLDB writer (or a sink plugin) -> dead-letter topic -> acknowledge
//! ```
//!
//! A message is acknowledged (and so, once its queue prefix is complete,
//! committed) only after all its rows are stored, or it was sent to the
//! dead-letter topic with the reason in its properties. With
//! `errors.tolerance=none` the first bad message stops the task instead,
//! unacknowledged.

use super::plugin_sink::{PluginSinkError, PluginSinkWriter, open_plugin_sink};
use super::task::{TaskControl, TaskProgress};
use super::{SinkSettings, SinkTarget};
use crate::openmldb::{OpenMldbWriter, WriteReport, WriterError};
use crate::plugin::bindings::TableSchema;
use crate::plugin::bindings::{Column, Message, Needs, Property, Row, failure_kind_name};
use crate::plugin::{
    ChainError, ChainOutput, ConverterInstance, MessageFailure, PluginCatalog, PluginChain, PluginEngine,
    PluginServices, Role,
};
use crate::rocketmq::{ConsumedMessage, OutgoingMessage, Producer, QueueConsumer, QueueId, RocketMqError};
use rocketmq_client_rust::ClientRuntime;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Messages held, at most, waiting for one that declares the schema
/// `auto.create` needs.
const MAX_HELD_FOR_SCHEMA: usize = 10_000;

/// Messages taken into one pass of the pipeline, at most (about): what has
/// arrived is processed together, never waiting for more.
const MAX_MESSAGES_PER_BATCH: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error(transparent)]
    RocketMq(#[from] RocketMqError),
    #[error(transparent)]
    Writer(#[from] WriterError),
    #[error(transparent)]
    Plugin(#[from] ChainError),
    #[error(transparent)]
    PluginSink(#[from] PluginSinkError),
    /// `errors.tolerance=none` and a message could not be stored.
    #[error("connector {connector} stopped: message {topic}/{queue}/{offset} cannot be stored: {reason}")]
    Halted { connector: String, topic: String, queue: i32, offset: i64, reason: String },
    #[error("connector {connector}: {message}")]
    Other { connector: String, message: String },
}

/// What a task did before it stopped.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SinkStats {
    pub messages: u64,
    pub rows_written: u64,
    pub dead_lettered: u64,
}

/// Why one message is not stored.
struct Rejection {
    stage: String,
    kind: &'static str,
    reason: String,
}

fn plugin_message(m: &ConsumedMessage, needs: Needs) -> Message {
    Message {
        topic: m.queue.topic.clone(),
        queue_id: m.queue.queue_id as u32,
        queue_offset: m.queue_offset,
        born_timestamp: m.born_timestamp,
        store_timestamp: m.store_timestamp,
        message_id: needs.contains(Needs::MESSAGE_ID).then(|| m.message_id.clone()),
        keys: if needs.contains(Needs::KEYS) { m.keys.clone() } else { None },
        tags: if needs.contains(Needs::TAGS) { m.tags.clone() } else { None },
        properties: needs
            .contains(Needs::PROPERTIES)
            .then(|| m.properties.iter().map(|(k, v)| Property { key: k.clone(), value: v.clone() }).collect()),
        body: m.body.to_vec(),
    }
}

/// Run one sink task until its control cancels it or it halts. While the
/// control says paused it finishes the batch in hand and then neither
/// polls nor writes.
pub async fn run_sink_task(
    settings: SinkSettings,
    engine: Arc<PluginEngine>,
    catalog: PluginCatalog,
    client: Arc<ClientRuntime>,
    control: TaskControl,
) -> Result<SinkStats, SinkError> {
    let connector = settings.connector.clone();
    let consumer = QueueConsumer::start(client.clone(), settings.consumer.clone()).await?;
    let result = run_with_consumer(&settings, &engine, &catalog, client, &consumer, &control).await;
    consumer.shutdown().await;
    if let Err(e) = &result {
        tracing::error!(connector = %connector, "{e}");
    }
    result
}

/// A batch after the plugins ran: the rows to store, and why the other
/// messages cannot be stored.
struct Converted {
    /// When the batch was taken from the consumer.
    taken: Instant,
    batch: Vec<ConsumedMessage>,
    rows: Vec<Row>,
    rejected: BTreeMap<u32, Rejection>,
    /// Without error tolerance: the first rejected offset of each queue;
    /// nothing from there on is written, and the task halts.
    cut: Option<HashMap<QueueId, i64>>,
}

impl Converted {
    fn new(taken: Instant, batch: Vec<ConsumedMessage>, output: ChainOutput, tolerate_errors: bool) -> Converted {
        let mut rejected: BTreeMap<u32, Rejection> = BTreeMap::new();
        for MessageFailure { source_index, stage, kind, message } in output.failures {
            rejected.entry(source_index).or_insert(Rejection { stage, kind: failure_kind_name(kind), reason: message });
        }
        let cut = (!tolerate_errors && !rejected.is_empty()).then(|| first_rejected_per_queue(&batch, &rejected));
        let mut converted = Converted { taken, batch, rows: output.rows, rejected, cut };
        let mut rows = std::mem::take(&mut converted.rows);
        rows.retain(|row| converted.before_cut(row.source_index));
        converted.rows = rows;
        converted
    }

    /// Whether message `index` comes before its queue's first rejection.
    fn before_cut(&self, index: u32) -> bool {
        let Some(cut) = &self.cut else { return true };
        let message = &self.batch[index as usize];
        cut.get(&message.queue).is_none_or(|first| message.queue_offset < *first)
    }
}

/// Where rows are written.
enum RowWriter {
    OpenMldb(OpenMldbWriter),
    Plugin(PluginSinkWriter),
}

impl RowWriter {
    fn schema(&self) -> &TableSchema {
        match self {
            RowWriter::OpenMldb(writer) => writer.schema(),
            RowWriter::Plugin(writer) => writer.schema(),
        }
    }

    async fn write(&mut self, rows: &[Row], cancel: &tokio_util::sync::CancellationToken) -> WriteReport {
        match self {
            RowWriter::OpenMldb(writer) => writer.write(rows, cancel).await,
            RowWriter::Plugin(writer) => writer.write(rows, cancel).await,
        }
    }

    /// The stage named in dead letters of rows the destination refused.
    fn stage(&self) -> String {
        match self {
            RowWriter::OpenMldb(_) => "writer openmldb".into(),
            RowWriter::Plugin(writer) => format!("sink {}", writer.plugin()),
        }
    }

    fn destination(&self) -> String {
        match self {
            RowWriter::OpenMldb(_) => "OpenMLDB".into(),
            RowWriter::Plugin(writer) => format!("sink plugin {}", writer.plugin()),
        }
    }
}

/// The second half of the pipeline: write, dead-letter, acknowledge.
struct Store<'a> {
    settings: &'a SinkSettings,
    consumer: &'a QueueConsumer,
    writer: RowWriter,
    dead_letters: Option<Producer>,
    control: &'a TaskControl,
    stats: SinkStats,
}

/// How storing a batch ended, when it did not fail.
enum Stored {
    All,
    /// Cancelled while rows were still being retried; they stay
    /// unacknowledged and come back.
    Interrupted,
}

impl Store<'_> {
    async fn store(&mut self, mut converted: Converted) -> Result<Stored, SinkError> {
        let connector = self.settings.connector.as_str();
        let progress = &self.control.progress;
        let started = Instant::now();
        let report = self.writer.write(&converted.rows, &self.control.cancel).await;
        progress.write_time.observe(started.elapsed());
        progress.add_writer_retries(report.retries);
        for (row, reason) in &report.poison {
            let source = converted.rows[*row].source_index;
            let rejection = Rejection { stage: self.writer.stage(), kind: "rejected", reason: reason.clone() };
            converted.rejected.entry(source).or_insert(rejection);
        }
        let Converted { batch, rows, rejected, .. } = &converted;
        if !report.unresolved.is_empty() {
            // Only on shutdown or when max.retries ran out: these messages
            // stay unacknowledged and come back after a restart.
            let unresolved: HashSet<u32> = report.unresolved.iter().map(|r| rows[*r].source_index).collect();
            let stored = |i: u32| !unresolved.contains(&i) && !rejected.contains_key(&i) && converted.before_cut(i);
            acknowledge(self.consumer, batch, stored).await;
            if self.control.cancel.is_cancelled() {
                return Ok(Stored::Interrupted);
            }
            let last_error = report.last_error.unwrap_or_default();
            return Err(SinkError::Other {
                connector: connector.into(),
                message: format!("{} did not store the batch: {last_error}", self.writer.destination()),
            });
        }
        self.stats.rows_written += report.written.len() as u64;
        progress.add_rows_written(report.written.len() as u64);
        for (index, rejection) in rejected {
            let original = &batch[*index as usize];
            if !self.settings.tolerate_errors {
                // Stored messages are acknowledged; the commit stops at this
                // one, so it (and what follows it in its queue) comes back
                // after a restart.
                acknowledge(self.consumer, batch, |i| !rejected.contains_key(&i) && converted.before_cut(i)).await;
                return Err(SinkError::Halted {
                    connector: connector.into(),
                    topic: original.queue.topic.clone(),
                    queue: original.queue.queue_id,
                    offset: original.queue_offset,
                    reason: format!("{} ({}): {}", rejection.stage, rejection.kind, rejection.reason),
                });
            }
            if let Some(producer) = &self.dead_letters {
                send_dead_letter(producer, self.settings, original, rejection).await?;
            } else {
                let (queue, offset) = (original.queue.queue_id, original.queue_offset);
                tracing::warn!(connector, "skipping message {queue}/{offset}: {}", rejection.reason);
            }
            self.stats.dead_lettered += 1;
            progress.add_dead_lettered(1);
        }
        self.stats.messages += batch.len() as u64;
        progress.add_messages(batch.len() as u64);
        acknowledge(self.consumer, batch, |_| true).await;
        progress.add_batch();
        progress.batch_time.observe(converted.taken.elapsed());
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default();
        for message in batch {
            let delay_ms = (now_ms - message.born_timestamp).max(0) as u64;
            progress.delivery_time.observe(Duration::from_millis(delay_ms));
        }
        let lag = self.consumer.lag().await;
        progress
            .set_lag(lag.into_iter().map(|(q, n)| (format!("{}/{}/{}", q.topic, q.broker, q.queue_id), n)).collect());
        Ok(Stored::All)
    }
}

/// Run the plugins over a batch on a blocking thread (they are CPU work),
/// handing the chain back for the next batch.
async fn convert(
    mut chain: PluginChain,
    batch: Vec<ConsumedMessage>,
    settings: &SinkSettings,
    progress: &TaskProgress,
) -> Result<(PluginChain, Converted), SinkError> {
    let taken = Instant::now();
    let needs = chain.converter_needs();
    let messages: Vec<Message> = batch.iter().map(|m| plugin_message(m, needs)).collect();
    let job = tokio::task::spawn_blocking(move || {
        let output = chain.run(&messages);
        (chain, output)
    });
    let (chain, output) = job.await.map_err(|e| SinkError::Other {
        connector: settings.connector.clone(),
        message: format!("the plugin thread failed: {e}"),
    })?;
    progress.plugin_time.observe(taken.elapsed());
    let output = match output {
        Ok(output) => output,
        Err(e) => {
            if let ChainError::Call { source, .. } = &e
                && source.is_trap()
            {
                // Trapped, and trapped again on the fresh instance.
                progress.add_plugin_traps(2);
            }
            return Err(e.into());
        }
    };
    progress.add_plugin_traps(output.traps.into());
    Ok((chain, Converted::new(taken, batch, output, settings.tolerate_errors)))
}

/// Wait until the task is resumed or cancelled; false if cancelled.
async fn wait_while_paused(control: &TaskControl, paused: &mut tokio::sync::watch::Receiver<bool>) -> bool {
    control.progress.set_paused(true);
    tracing::info!("paused");
    let resumed = tokio::select! {
        _ = paused.wait_for(|p| !*p) => true,
        _ = control.cancel.cancelled() => false,
    };
    control.progress.set_paused(false);
    if resumed {
        tracing::info!("resumed");
    }
    resumed
}

async fn run_with_consumer(
    settings: &SinkSettings,
    engine: &Arc<PluginEngine>,
    catalog: &PluginCatalog,
    client: Arc<ClientRuntime>,
    consumer: &QueueConsumer,
    control: &TaskControl,
) -> Result<SinkStats, SinkError> {
    let connector = settings.connector.as_str();
    let cancel = &control.cancel;
    let mut paused = control.paused.clone();
    let dead_letters = match &settings.dead_letter_topic {
        Some(topic) => {
            let group = format!("connect-{connector}-dlq-{}", settings.task);
            let mut producer = Producer::start(client, &settings.consumer.namesrv, &group).await?;
            // The topic may exist already; creating it again is harmless.
            if let Err(e) = producer.create_topic(topic, 1).await {
                tracing::debug!(connector, "creating the dead-letter topic {topic}: {e}");
            }
            Some(producer)
        }
        None => None,
    };

    // Until the table's schema is known (auto.create may need a message
    // that declares it), batches are held.
    let mut held: Vec<ConsumedMessage> = Vec::new();
    let (writer, mut chain, first) = loop {
        if cancel.is_cancelled() {
            return Ok(SinkStats::default());
        }
        if *paused.borrow_and_update() {
            if !wait_while_paused(control, &mut paused).await {
                return Ok(SinkStats::default());
            }
            continue;
        }
        let polled = tokio::select! {
            batch = consumer.poll_available(Duration::from_millis(200), MAX_MESSAGES_PER_BATCH) => batch,
            _ = cancel.cancelled() => return Ok(SinkStats::default()),
        };
        if polled.is_empty() {
            continue;
        }
        held.extend(polled);
        match open_pipeline(settings, engine, catalog, &held).await {
            Ok((writer, chain)) => break (writer, chain, std::mem::take(&mut held)),
            Err(SinkError::Writer(WriterError::NoSchemaToCreate { .. }))
            | Err(SinkError::PluginSink(PluginSinkError::NoSchemaYet { .. }))
                if held.len() < MAX_HELD_FOR_SCHEMA => {}
            Err(e) => return Err(e),
        }
    };
    let mut store = Store { settings, consumer, writer, dead_letters, control, stats: SinkStats::default() };

    // Two stages overlap: while batch N is written, batch N+1 is converted.
    // Writes stay in order, one batch at a time.
    let converted;
    (chain, converted) = convert(chain, first, settings, &control.progress).await?;
    let mut pending = Some(converted);
    loop {
        if cancel.is_cancelled() {
            break;
        }
        if *paused.borrow_and_update() {
            // Finish the batch in hand, then wait.
            if let Some(batch) = pending.take()
                && let Stored::Interrupted = store.store(batch).await?
            {
                break;
            }
            if !wait_while_paused(control, &mut paused).await {
                break;
            }
            continue;
        }
        // With a batch waiting to be stored, take only what has already arrived.
        let timeout = if pending.is_some() { Duration::ZERO } else { Duration::from_millis(200) };
        let polled = tokio::select! {
            batch = consumer.poll_available(timeout, MAX_MESSAGES_PER_BATCH) => batch,
            _ = cancel.cancelled() => break,
        };
        let halting = pending.as_ref().is_some_and(|p| p.cut.is_some());
        let storing = async {
            match pending.take() {
                Some(batch) => store.store(batch).await.map(Some),
                None => Ok(None),
            }
        };
        if polled.is_empty() || halting {
            if let Some(Stored::Interrupted) = storing.await? {
                break;
            }
            continue;
        }
        let (stored, converted) = tokio::join!(storing, convert(chain, polled, settings, &control.progress));
        if let Some(Stored::Interrupted) = stored? {
            break;
        }
        let converted_batch;
        (chain, converted_batch) = converted?;
        pending = Some(converted_batch);
    }
    // Messages converted but not stored stay unacknowledged: they come back.
    let Store { dead_letters, stats, .. } = store;
    if let Some(producer) = dead_letters {
        producer.shutdown().await;
    }
    Ok(stats)
}

/// The offset of the first rejected message in each queue of the batch.
fn first_rejected_per_queue(
    batch: &[ConsumedMessage],
    rejected: &BTreeMap<u32, Rejection>,
) -> std::collections::HashMap<QueueId, i64> {
    let mut first = std::collections::HashMap::new();
    for index in rejected.keys() {
        let message = &batch[*index as usize];
        let offset = first.entry(message.queue.clone()).or_insert(message.queue_offset);
        *offset = (*offset).min(message.queue_offset);
    }
    first
}

async fn acknowledge(consumer: &QueueConsumer, batch: &[ConsumedMessage], keep: impl Fn(u32) -> bool) {
    consumer
        .ack(batch.iter().enumerate().filter(|(i, _)| keep(*i as u32)).map(|(_, m)| (m.queue.clone(), m.queue_offset)))
        .await;
}

async fn send_dead_letter(
    producer: &Producer,
    settings: &SinkSettings,
    original: &ConsumedMessage,
    rejection: &Rejection,
) -> Result<(), SinkError> {
    let Some(topic) = &settings.dead_letter_topic else { return Ok(()) };
    let mut properties = original.properties.clone();
    properties.extend([
        ("connect.errors.connector".to_string(), settings.connector.clone()),
        ("connect.errors.topic".to_string(), original.queue.topic.clone()),
        ("connect.errors.queue.id".to_string(), original.queue.queue_id.to_string()),
        ("connect.errors.queue.offset".to_string(), original.queue_offset.to_string()),
        ("connect.errors.message.id".to_string(), original.message_id.clone()),
        ("connect.errors.stage".to_string(), rejection.stage.clone()),
        ("connect.errors.kind".to_string(), rejection.kind.to_string()),
        ("connect.errors.reason".to_string(), rejection.reason.clone()),
    ]);
    let message = OutgoingMessage {
        topic: topic.clone(),
        keys: original.keys.clone(),
        tags: original.tags.clone(),
        properties,
        body: original.body.to_vec(),
    };
    producer.send(&message).await?;
    Ok(())
}

/// Connect the writer (creating the table from the first message of the
/// batch that declares a schema, when `auto.create` asks) and build the
/// plugin chain for the table's schema.
async fn open_pipeline(
    settings: &SinkSettings,
    engine: &Arc<PluginEngine>,
    catalog: &PluginCatalog,
    batch: &[ConsumedMessage],
) -> Result<(RowWriter, PluginChain), SinkError> {
    let connector = settings.connector.as_str();
    let record_columns: Option<Vec<Column>> = if settings.target.auto_create() {
        let plugin = engine
            .load(catalog.resolve(&settings.converter.plugin).map_err(ChainError::from)?, Some(Role::Converter))
            .map_err(ChainError::from)?;
        let mut found = None;
        for message in batch {
            let sample = plugin_message(message, Needs::all());
            let services = PluginServices::new(plugin.name.clone(), connector);
            let inferred = tokio::task::block_in_place(|| {
                ConverterInstance::infer_schema(engine, plugin.clone(), &settings.converter.config, &sample, services)
            });
            match inferred {
                Ok(columns) => {
                    found = Some(columns);
                    break;
                }
                Err(e) => {
                    tracing::debug!(connector, "auto.create: message {} declares no schema: {e}", message.queue_offset)
                }
            }
        }
        if found.is_none() {
            tracing::debug!(
                connector,
                "auto.create: none of the {} messages so far declares a schema; waiting for more",
                batch.len()
            );
        }
        found
    } else {
        None
    };
    let writer = match &settings.target {
        SinkTarget::OpenMldb(config) => RowWriter::OpenMldb(
            OpenMldbWriter::connect(config.clone(), &settings.table, record_columns.as_deref()).await?,
        ),
        SinkTarget::Plugin(config) => RowWriter::Plugin(
            open_plugin_sink(config, engine, catalog, connector, &settings.table, record_columns).await?,
        ),
    };
    let schema = writer.schema().clone();
    let chain = tokio::task::block_in_place(|| {
        PluginChain::new(engine, catalog, &settings.converter, &settings.transforms, schema, connector)
    })?;
    Ok((writer, chain))
}
