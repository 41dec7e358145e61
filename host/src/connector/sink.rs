//! A sink connector task, as the project design draws it:
//!
//! ```text
//! consume -> destination (table per message) -> converter -> transforms
//!         -> validate -> write (OpenMLDB, or a sink plugin) -> dead-letter -> acknowledge
//! ```
//!
//! Each message gets one [`Disposition`], computed once after the write:
//! stored (all its rows are), dead-lettered (with the stage, kind and
//! reason, and which of its rows were stored), or held (not stored yet: it
//! stays unacknowledged and comes back). Dead letters are sent, then the
//! stored and dead-lettered messages are acknowledged; only the contiguous
//! acknowledged prefix of a queue is committed. With `errors.tolerance=none`
//! the first message of a queue that cannot be stored halts the task, and
//! nothing after it in that queue is written.
//!
//! Two batches overlap: while batch N is written, batch N+1 is converted.

use super::SinkSettings;
use super::destination::{self, OpenOutcome, RowWriter};
use super::plugin_sink::PluginSinkError;
use super::task::{TaskControl, TaskProgress};
use crate::openmldb::{WriteReport, WriterError};
use crate::plugin::bindings::{ErrorKind, Message, Needs, Property, Row};
use crate::plugin::{CallError, ChainError, ChainOutput, PluginCatalog, PluginChain, PluginEngine};
use crate::rocketmq::{ConsumedMessage, OutgoingMessage, Producer, QueueConsumer, QueueId, RocketMqError};
use crate::telemetry::{STAGE_CPU, Stage, thread_cpu_time};
use rocketmq_client_rust::ClientRuntime;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Messages held, at most, waiting for one that declares the schema
/// `auto.create` needs.
const MAX_HELD_FOR_SCHEMA: usize = 10_000;

/// How long a converter that says its trouble is transient is given
/// before the batch is tried again (doubling up to the maximum).
const PLUGIN_RETRY: Duration = Duration::from_millis(200);
const PLUGIN_RETRY_MAX: Duration = Duration::from_secs(10);

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
#[derive(Debug, Clone)]
struct Rejection {
    stage: String,
    kind: &'static str,
    reason: String,
}

/// What becomes of one message of a batch.
#[derive(Debug)]
enum Disposition {
    /// Every row it gave is stored (or it gave none, on purpose).
    Stored,
    /// It goes to the dead-letter topic; `stored_rows` are the positions
    /// (among its rows) of the rows that were stored anyway.
    DeadLetter { rejection: Rejection, stored_rows: Vec<usize>, rows: usize },
    /// `errors.tolerance=none`: the first message of its queue that cannot
    /// be stored; the task halts on it.
    Halt(Rejection),
    /// Not stored yet (retries ran out, shutdown, or after a halt in its
    /// queue): unacknowledged, it comes back.
    Held,
    /// Its queue was moved to another consumer before it was written: the
    /// new owner reads it from the committed offset.
    Relinquished,
}

pub(super) fn plugin_message(m: &ConsumedMessage, needs: Needs) -> Message {
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

/// Run one sink task with a consumer of its own until its control cancels
/// it or it halts. While the control says paused it finishes the batch in
/// hand and then neither polls nor writes.
pub async fn run_sink_task(
    settings: SinkSettings,
    engine: Arc<PluginEngine>,
    catalog: PluginCatalog,
    client: Arc<ClientRuntime>,
    control: TaskControl,
) -> Result<SinkStats, SinkError> {
    let mut consumer_config = settings.consumer.clone();
    consumer_config.lanes = 1;
    let consumer = QueueConsumer::start(client.clone(), consumer_config).await?;
    let result = run_sink_lane(settings, engine, catalog, client, consumer.clone(), 0, control).await;
    consumer.shutdown().await;
    result
}

/// Run one sink task on `lane` of the connector's consumer (shared by the
/// connector's tasks in this process; the caller shuts it down).
pub async fn run_sink_lane(
    settings: SinkSettings,
    engine: Arc<PluginEngine>,
    catalog: PluginCatalog,
    client: Arc<ClientRuntime>,
    consumer: Arc<QueueConsumer>,
    lane: usize,
    control: TaskControl,
) -> Result<SinkStats, SinkError> {
    let connector = settings.connector.clone();
    // What an earlier run of this task took and did not acknowledge comes back.
    consumer.rewind_lane(lane).await;
    let result = run_with_consumer(&settings, &engine, &catalog, client, &consumer, lane, &control).await;
    if let Err(e) = &result {
        tracing::error!(connector = %connector, "{e}");
    }
    result
}

/// A batch after the plugins ran: the rows of each table to store, and
/// why the other messages cannot be stored.
struct Converted {
    /// When the batch was taken from the consumer.
    taken: Instant,
    batch: Vec<ConsumedMessage>,
    /// Rows per destination table; `source_index` indexes `batch`.
    rows: Vec<(String, Vec<Row>)>,
    rejected: BTreeMap<u32, Rejection>,
    /// Tables opened for this batch; their writers go to the store half.
    opened: Vec<(String, RowWriter)>,
}

/// The first half of the pipeline: destinations and plugins.
struct Intake<'a> {
    settings: &'a SinkSettings,
    engine: &'a Arc<PluginEngine>,
    catalog: &'a PluginCatalog,
    /// One converter chain per open table.
    chains: HashMap<String, PluginChain>,
    /// Messages whose table cannot be opened yet (`auto.create` waits for
    /// a message that declares its columns), oldest first.
    held: Vec<ConsumedMessage>,
}

impl Intake<'_> {
    /// Route `polled` (after the messages held from earlier) to their
    /// tables, open the tables seen for the first time, and run each
    /// table's chain over its messages.
    async fn convert(&mut self, polled: Vec<ConsumedMessage>, control: &TaskControl) -> Result<Converted, SinkError> {
        let progress = &control.progress;
        let taken = Instant::now();
        let mut incoming = std::mem::take(&mut self.held);
        incoming.extend(polled);
        let tables = &self.settings.tables;
        let resolved: Vec<Result<String, String>> =
            incoming.iter().map(|m| tables.resolve(m).map(|t| t.into_owned())).collect();
        let opened = self.open_new_tables(&incoming, &resolved).await?;
        // Messages of tables that could not be opened wait for the next batch.
        let mut batch = Vec::with_capacity(incoming.len());
        let mut routes = Vec::with_capacity(incoming.len());
        for (message, route) in incoming.into_iter().zip(resolved) {
            match &route {
                Ok(table) if !self.chains.contains_key(table) => self.held.push(message),
                _ => {
                    batch.push(message);
                    routes.push(route);
                }
            }
        }
        if self.held.len() > MAX_HELD_FOR_SCHEMA {
            return Err(SinkError::Other {
                connector: self.settings.connector.clone(),
                message: format!(
                    "auto.create: {} messages arrived for tables that do not exist, and none declares its columns \
                     (plain JSON carries none; send JsonConverter envelopes or create the tables)",
                    self.held.len()
                ),
            });
        }
        let mut rejected = BTreeMap::new();
        let mut groups: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for (index, route) in routes.into_iter().enumerate() {
            match route {
                Ok(table) => groups.entry(table).or_default().push(index as u32),
                Err(reason) => {
                    rejected
                        .insert(index as u32, Rejection { stage: "destination".into(), kind: "invalid-value", reason });
                }
            }
        }
        let started = Instant::now();
        let Some(outputs) = self.run_chains(&batch, groups, control).await? else {
            // Stopped while a converter was failing: nothing is acknowledged.
            return Ok(Converted { taken, batch: Vec::new(), rows: Vec::new(), rejected, opened });
        };
        progress.plugin_time.observe(started.elapsed());
        let mut rows = Vec::with_capacity(outputs.len());
        for (table, indices, output) in outputs {
            progress.add_plugin_traps(output.traps.into());
            for failure in output.failures {
                let index = indices[failure.source_index as usize];
                let rejection = Rejection { stage: failure.stage, kind: failure.kind, reason: failure.message };
                rejected.entry(index).or_insert(rejection);
            }
            let table_rows: Vec<Row> = output
                .rows
                .into_iter()
                .map(|mut row| {
                    row.source_index = indices[row.source_index as usize];
                    row
                })
                .collect();
            rows.push((table, table_rows));
        }
        Ok(Converted { taken, batch, rows, rejected, opened })
    }

    /// Open the tables of `incoming` that have no chain yet.
    async fn open_new_tables(
        &mut self,
        incoming: &[ConsumedMessage],
        resolved: &[Result<String, String>],
    ) -> Result<Vec<(String, RowWriter)>, SinkError> {
        let mut new: BTreeMap<&str, Vec<&ConsumedMessage>> = BTreeMap::new();
        for (message, route) in incoming.iter().zip(resolved) {
            if let Ok(table) = route
                && !self.chains.contains_key(table)
            {
                new.entry(table.as_str()).or_default().push(message);
            }
        }
        let mut opened = Vec::new();
        for (table, messages) in new {
            match destination::open(self.settings, self.engine, self.catalog, table, &messages).await? {
                OpenOutcome::Opened(destination) => {
                    self.chains.insert(table.to_string(), destination.chain);
                    opened.push((table.to_string(), destination.writer));
                }
                OpenOutcome::NeedsSchema => {
                    tracing::debug!(connector = %self.settings.connector, table, "holding {} messages until one declares the table's columns", messages.len());
                }
            }
        }
        Ok(opened)
    }

    /// Run every table's chain over its messages on a blocking thread
    /// (plugins are CPU work), retrying tables whose converter says its
    /// trouble is transient.
    async fn run_chains(
        &mut self,
        batch: &[ConsumedMessage],
        groups: BTreeMap<String, Vec<u32>>,
        control: &TaskControl,
    ) -> Result<Option<Vec<(String, Vec<u32>, ChainOutput)>>, SinkError> {
        let (progress, cancel) = (&control.progress, &control.cancel);
        let connector = self.settings.connector.clone();
        let mut pending: Vec<(String, Vec<u32>, Vec<Message>)> = STAGE_CPU.measure(Stage::Convert, || {
            groups
                .into_iter()
                .map(|(table, indices)| {
                    let needs = self.chains.get(&table).map(PluginChain::converter_needs).unwrap_or(Needs::empty());
                    let messages = indices.iter().map(|i| plugin_message(&batch[*i as usize], needs)).collect();
                    (table, indices, messages)
                })
                .collect()
        });
        let mut done = Vec::with_capacity(pending.len());
        let mut delay = PLUGIN_RETRY;
        while !pending.is_empty() {
            let mut chains = std::mem::take(&mut self.chains);
            let stopping = cancel.clone();
            let job = tokio::task::spawn_blocking(move || {
                let stop = || stopping.is_cancelled();
                let results: Vec<_> = pending
                    .into_iter()
                    .map(|(table, indices, messages)| {
                        let result = match chains.get_mut(&table) {
                            Some(chain) => chain.run_until(&messages, &stop),
                            None => Ok(ChainOutput::default()),
                        };
                        (table, indices, messages, result)
                    })
                    .collect();
                (chains, results)
            });
            let (chains, results) = job.await.map_err(|e| SinkError::Other {
                connector: connector.clone(),
                message: format!("the plugin thread failed: {e}"),
            })?;
            self.chains = chains;
            pending = Vec::new();
            for (table, indices, messages, result) in results {
                match result {
                    Ok(output) => done.push((table, indices, output)),
                    Err(ChainError::Call {
                        stage,
                        source: CallError::Plugin { kind: ErrorKind::Retryable, message, .. },
                    }) => {
                        progress.degrade(format!("{stage} for table {table}: {message}"));
                        pending.push((table, indices, messages));
                    }
                    Err(ChainError::Stopped) => return Ok(None),
                    Err(e) => return Err(e.into()),
                }
            }
            if !pending.is_empty() {
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    // Stopping: nothing of the batch is acknowledged.
                    _ = cancel.cancelled() => return Ok(None),
                }
                delay = (delay * 2).min(PLUGIN_RETRY_MAX);
            }
        }
        Ok(Some(done))
    }
}

/// The second half of the pipeline: validate, write, dead-letter, acknowledge.
struct Store<'a> {
    settings: &'a SinkSettings,
    consumer: &'a Arc<QueueConsumer>,
    lane: usize,
    /// One writer per open table.
    writers: HashMap<String, RowWriter>,
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
    async fn store(&mut self, converted: Converted) -> Result<Stored, SinkError> {
        let Converted { taken, batch, rows, mut rejected, opened } = converted;
        self.writers.extend(opened);
        let progress = &self.control.progress;
        // Only queues still ours are written; the guard holds their hand-over
        // until this batch is acknowledged.
        let ownership = self.consumer.begin_write(batch.iter().map(|m| m.queue.clone()));
        let owned = |index: u32| ownership.owns(&batch[index as usize].queue);
        // Everything the destination would refuse is found before anything
        // is written, so errors.tolerance=none can stop in front of it.
        let mut to_write: Vec<(String, Vec<Row>)> = Vec::with_capacity(rows.len());
        let mut unresolved: HashSet<u32> = HashSet::new();
        let checking = thread_cpu_time();
        for (table, table_rows) in rows {
            let Some(writer) = self.writers.get(&table) else {
                // Cannot happen (a chain exists only with its writer); if it
                // did, these messages must not count as stored.
                tracing::error!(connector = %self.settings.connector, table, "no writer for the table; its rows are held");
                unresolved.extend(table_rows.iter().map(|r| r.source_index));
                continue;
            };
            for row in &table_rows {
                if let Err(reason) = writer.validate(row) {
                    let rejection = Rejection { stage: writer.stage(), kind: "rejected", reason };
                    rejected.entry(row.source_index).or_insert(rejection);
                }
            }
            to_write.push((table, table_rows));
        }
        let cut = (!self.settings.tolerate_errors).then(|| first_rejected_per_queue(&batch, &rejected));
        let before_cut = |index: u32| {
            let message = &batch[index as usize];
            cut.as_ref().and_then(|c| c.get(&message.queue)).is_none_or(|first| message.queue_offset < *first)
        };
        // A message is stored whole or not at all.
        for (_, table_rows) in &mut to_write {
            table_rows.retain(|row| {
                !rejected.contains_key(&row.source_index) && before_cut(row.source_index) && owned(row.source_index)
            });
        }
        STAGE_CPU.add(Stage::Write, thread_cpu_time().saturating_sub(checking));
        let started = Instant::now();
        let reports = self.write_all(&to_write).await;
        progress.write_time.observe(started.elapsed());

        let settling = thread_cpu_time();
        let mut last_error = None;
        // Per message: rows it gave, and the positions of those stored.
        let mut row_counts: HashMap<u32, (usize, Vec<usize>)> = HashMap::new();
        for ((table, table_rows), report) in to_write.iter().zip(&reports) {
            let stage = self.writers.get(table).map(RowWriter::stage).unwrap_or_default();
            let mut position: HashMap<u32, usize> = HashMap::new();
            let positions: Vec<usize> = table_rows
                .iter()
                .map(|row| {
                    let next = position.entry(row.source_index).or_default();
                    *next += 1;
                    *next - 1
                })
                .collect();
            for (row, count) in &position {
                row_counts.entry(*row).or_default().0 += count;
            }
            for &written in &report.written {
                let source = table_rows[written].source_index;
                row_counts.entry(source).or_default().1.push(positions[written]);
            }
            for poison in &report.poison {
                let source = table_rows[poison.index].source_index;
                let rejection = Rejection { stage: stage.clone(), kind: poison.kind, reason: poison.reason.clone() };
                rejected.entry(source).or_insert(rejection);
            }
            unresolved.extend(report.unresolved.iter().map(|r| table_rows[*r].source_index));
            if let Some(error) = &report.last_error
                && !report.unresolved.is_empty()
            {
                last_error = Some(format!("{table}: {error}"));
            }
            let written = report.written.len() as u64;
            self.stats.rows_written += written;
            progress.add_rows_written(written);
            progress.add_table(table, written, 0);
        }

        // Without error tolerance, the first message of each queue that
        // cannot be stored (found before or during the write) halts the
        // task, and what follows it in its queue is held.
        let halt_at = (!self.settings.tolerate_errors).then(|| first_rejected_per_queue(&batch, &rejected));
        let dispositions: Vec<Disposition> = (0..batch.len() as u32)
            .map(|index| {
                let message = &batch[index as usize];
                if !owned(index) {
                    return Disposition::Relinquished;
                }
                let first_bad = halt_at.as_ref().and_then(|h| h.get(&message.queue)).copied();
                match (rejected.get(&index), first_bad) {
                    (Some(rejection), None) => {
                        let (rows, stored_rows) = row_counts.remove(&index).unwrap_or_default();
                        Disposition::DeadLetter { rejection: rejection.clone(), stored_rows, rows }
                    }
                    (Some(rejection), Some(first)) if message.queue_offset == first => {
                        Disposition::Halt(rejection.clone())
                    }
                    (_, Some(first)) if message.queue_offset > first => Disposition::Held,
                    _ if unresolved.contains(&index) => Disposition::Held,
                    _ => Disposition::Stored,
                }
            })
            .collect();
        STAGE_CPU.add(Stage::Acknowledge, thread_cpu_time().saturating_sub(settling));
        let settled = self.settle(&batch, dispositions, taken, &to_write, last_error).await;
        drop(ownership);
        settled
    }

    /// Every table's rows, written concurrently; reports in `to_write` order.
    async fn write_all(&mut self, to_write: &[(String, Vec<Row>)]) -> Vec<WriteReport> {
        let cancel = &self.control.cancel;
        let observer: &TaskProgress = &self.control.progress;
        let wanted: HashSet<&str> = to_write.iter().map(|(t, _)| t.as_str()).collect();
        let mut writers: HashMap<&str, &mut RowWriter> = self
            .writers
            .iter_mut()
            .filter(|(t, _)| wanted.contains(t.as_str()))
            .map(|(t, w)| (t.as_str(), w))
            .collect();
        let writes = to_write.iter().map(|(table, rows)| {
            let writer = writers.remove(table.as_str());
            async move {
                match writer {
                    Some(writer) if !rows.is_empty() => writer.write(rows, cancel, observer).await,
                    _ => WriteReport::default(),
                }
            }
        });
        futures::future::join_all(writes).await
    }

    /// Act on each message's disposition: dead letters out, then the
    /// stored and dead-lettered messages acknowledged; a halt or rows left
    /// unstored end the task (those messages come back).
    async fn settle(
        &mut self,
        batch: &[ConsumedMessage],
        dispositions: Vec<Disposition>,
        taken: Instant,
        to_write: &[(String, Vec<Row>)],
        last_error: Option<String>,
    ) -> Result<Stored, SinkError> {
        let connector = self.settings.connector.as_str();
        let progress = self.control.progress.clone();
        let mut sent = vec![false; batch.len()];
        let mut failure = None;
        for (index, disposition) in dispositions.iter().enumerate() {
            let Disposition::DeadLetter { rejection, stored_rows, rows } = disposition else { continue };
            let original = &batch[index];
            let result = match &self.dead_letters {
                Some(producer) => {
                    send_dead_letter(producer, self.settings, original, rejection, stored_rows, *rows).await
                }
                None => Err(SinkError::Other {
                    connector: connector.into(),
                    message: "a message must be dead-lettered and no dead-letter topic is set".into(),
                }),
            };
            match result {
                Ok(()) => {
                    sent[index] = true;
                    self.stats.dead_lettered += 1;
                    progress.add_dead_lettered(1);
                    if let Ok(table) = self.settings.tables.resolve(original) {
                        progress.add_table(&table, 0, 1);
                    }
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let acknowledged = |i: usize| match &dispositions[i] {
            Disposition::Stored => true,
            Disposition::DeadLetter { .. } => sent[i],
            _ => false,
        };
        let acked = (0..batch.len()).filter(|i| acknowledged(*i)).count();
        acknowledge(self.consumer, batch, |i| acknowledged(i as usize)).await;
        self.stats.messages += acked as u64;
        progress.add_messages(acked as u64);
        progress.committed(self.consumer.in_flight(self.lane).await > 0);
        if let Some(e) = failure {
            return Err(e);
        }
        if let Some((index, rejection)) = dispositions
            .iter()
            .enumerate()
            .find_map(|(i, d)| if let Disposition::Halt(r) = d { Some((i, r)) } else { None })
        {
            let original = &batch[index];
            return Err(SinkError::Halted {
                connector: connector.into(),
                topic: original.queue.topic.clone(),
                queue: original.queue.queue_id,
                offset: original.queue_offset,
                reason: format!("{} ({}): {}", rejection.stage, rejection.kind, rejection.reason),
            });
        }
        if dispositions.iter().any(|d| matches!(d, Disposition::Held)) {
            // Only on shutdown or when max.retries ran out: these messages
            // stay unacknowledged and come back after a restart.
            if self.control.cancel.is_cancelled() {
                return Ok(Stored::Interrupted);
            }
            let destinations: Vec<String> =
                to_write.iter().filter_map(|(t, _)| self.writers.get(t).map(RowWriter::destination)).collect();
            return Err(SinkError::Other {
                connector: connector.into(),
                message: format!(
                    "{} did not store the batch: {}",
                    destinations.join(", "),
                    last_error.unwrap_or_else(|| "retries ran out".into())
                ),
            });
        }
        progress.recovered();
        progress.add_batch();
        progress.batch_time.observe(taken.elapsed());
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
    consumer: &Arc<QueueConsumer>,
    lane: usize,
    control: &TaskControl,
) -> Result<SinkStats, SinkError> {
    let connector = settings.connector.as_str();
    let cancel = &control.cancel;
    let progress = &control.progress;
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
    let mut intake = Intake { settings, engine, catalog, chains: HashMap::new(), held: Vec::new() };
    let mut store =
        Store { settings, consumer, lane, writers: HashMap::new(), dead_letters, control, stats: SinkStats::default() };
    let poll = |timeout| consumer.poll_lane(lane, timeout, settings.max_batch_messages, settings.max_batch_bytes);

    // While batch N is written, batch N+1 is converted. Writes stay in
    // order, one batch at a time.
    let mut pending: Option<Converted> = None;
    let result = loop {
        if cancel.is_cancelled() {
            break Ok(());
        }
        if *paused.borrow_and_update() {
            // Finish the batch in hand, then wait.
            if let Some(batch) = pending.take() {
                match store.store(batch).await {
                    Ok(Stored::All) => {}
                    Ok(Stored::Interrupted) => break Ok(()),
                    Err(e) => break Err(e),
                }
            }
            if !wait_while_paused(control, &mut paused).await {
                break Ok(());
            }
            continue;
        }
        // With a batch waiting to be stored, take only what has already
        // arrived; with messages held for a schema, do not wait long.
        let timeout = if pending.is_some() { Duration::ZERO } else { Duration::from_millis(200) };
        let polled = tokio::select! {
            batch = poll(timeout) => batch,
            _ = cancel.cancelled() => break Ok(()),
        };
        if !polled.is_empty() {
            progress.work_taken();
        }
        let halting = pending.as_ref().is_some_and(|p| !settings.tolerate_errors && !p.rejected.is_empty());
        let storing = async {
            match pending.take() {
                Some(batch) => store.store(batch).await.map(Some),
                None => Ok(None),
            }
        };
        if (polled.is_empty() && intake.held.is_empty()) || halting {
            match storing.await {
                Ok(Some(Stored::Interrupted)) => break Ok(()),
                Ok(_) => continue,
                Err(e) => break Err(e),
            }
        }
        let (stored, converted) = tokio::join!(storing, intake.convert(polled, control));
        match stored {
            Ok(Some(Stored::Interrupted)) => break Ok(()),
            Ok(_) => {}
            Err(e) => break Err(e),
        }
        match converted {
            // Nothing to store, but tables it opened keep their writers.
            Ok(converted) if converted.batch.is_empty() => store.writers.extend(converted.opened),
            Ok(converted) => pending = Some(converted),
            Err(e) => break Err(e),
        }
    };
    // Messages converted but not stored stay unacknowledged: they come back.
    let Store { dead_letters, stats, .. } = store;
    if let Some(producer) = dead_letters {
        producer.shutdown().await;
    }
    result.map(|()| stats)
}

/// The offset of the first rejected message in each queue of the batch.
fn first_rejected_per_queue(batch: &[ConsumedMessage], rejected: &BTreeMap<u32, Rejection>) -> HashMap<QueueId, i64> {
    let mut first = HashMap::new();
    for index in rejected.keys() {
        let message = &batch[*index as usize];
        let offset = first.entry(message.queue.clone()).or_insert(message.queue_offset);
        *offset = (*offset).min(message.queue_offset);
    }
    first
}

async fn acknowledge(consumer: &Arc<QueueConsumer>, batch: &[ConsumedMessage], keep: impl Fn(u32) -> bool) {
    consumer
        .ack(batch.iter().enumerate().filter(|(i, _)| keep(*i as u32)).map(|(_, m)| (m.queue.clone(), m.queue_offset)))
        .await;
}

/// The message as it was, with RocketMQ Connect's `connect.errors.*`
/// properties saying why; and `connect.errors.rows.stored` when some of
/// its rows were stored anyway. Counts as sent only on the broker's SEND_OK.
async fn send_dead_letter(
    producer: &Producer,
    settings: &SinkSettings,
    original: &ConsumedMessage,
    rejection: &Rejection,
    stored_rows: &[usize],
    rows: usize,
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
    if !stored_rows.is_empty() {
        let mut positions = stored_rows.to_vec();
        positions.sort_unstable();
        let list: Vec<String> = positions.iter().map(usize::to_string).collect();
        properties.push(("connect.errors.rows.stored".to_string(), list.join(",")));
        properties.push(("connect.errors.rows.total".to_string(), rows.to_string()));
    }
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
