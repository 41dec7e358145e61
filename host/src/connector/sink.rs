//! A sink connector task, as the project design draws it:
//!
//! ```text
//! consume -> converter -> transforms -> OpenMLDB writer -> dead-letter topic -> acknowledge
//! ```
//!
//! A message is acknowledged (and so, once its queue prefix is complete,
//! committed) only after all its rows are stored, or it was sent to the
//! dead-letter topic with the reason in its properties. With
//! `errors.tolerance=none` the first bad message stops the task instead,
//! unacknowledged.

use super::SinkSettings;
use super::task::TaskControl;
use crate::openmldb::{OpenMldbWriter, WriterError};
use crate::plugin::bindings::{Column, Message, Needs, Property, failure_kind_name};
use crate::plugin::{
    ChainError, ConverterInstance, MessageFailure, PluginCatalog, PluginChain, PluginEngine, PluginServices, Role,
};
use crate::rocketmq::{ConsumedMessage, OutgoingMessage, Producer, QueueConsumer, QueueId, RocketMqError};
use rocketmq_client_rust::ClientRuntime;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Messages held, at most, waiting for one that declares the schema
/// `auto.create` needs.
const MAX_HELD_FOR_SCHEMA: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error(transparent)]
    RocketMq(#[from] RocketMqError),
    #[error(transparent)]
    Writer(#[from] WriterError),
    #[error(transparent)]
    Plugin(#[from] ChainError),
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
    let progress = &control.progress;
    let mut paused = control.paused.clone();
    let mut stats = SinkStats::default();
    let dead_letters = match &settings.dead_letter_topic {
        Some(topic) => {
            let mut producer = Producer::start(
                client,
                &settings.consumer.namesrv,
                &format!("connect-{connector}-dlq-{}", settings.task),
            )
            .await?;
            // The topic may exist already; creating it again is harmless.
            if let Err(e) = producer.create_topic(topic, 1).await {
                tracing::debug!(connector, "creating the dead-letter topic {topic}: {e}");
            }
            Some(producer)
        }
        None => None,
    };
    let mut pipeline: Option<(OpenMldbWriter, PluginChain)> = None;
    // Batches held while auto.create waits for a message that declares the
    // table's schema.
    let mut held: Vec<ConsumedMessage> = Vec::new();
    while !cancel.is_cancelled() {
        if *paused.borrow_and_update() {
            progress.set_paused(true);
            tracing::info!(connector, "paused");
            tokio::select! {
                _ = paused.wait_for(|p| !*p) => {}
                _ = cancel.cancelled() => break,
            }
            progress.set_paused(false);
            tracing::info!(connector, "resumed");
            continue;
        }
        let polled = tokio::select! {
            batch = consumer.poll(Duration::from_millis(200)) => batch,
            _ = cancel.cancelled() => break,
        };
        if polled.is_empty() {
            continue;
        }
        let batch = if pipeline.is_none() {
            held.extend(polled);
            match open_pipeline(settings, engine, catalog, &held).await {
                Ok(opened) => pipeline = Some(opened),
                Err(SinkError::Writer(WriterError::NoSchemaToCreate { .. })) if held.len() < MAX_HELD_FOR_SCHEMA => {
                    continue;
                }
                Err(e) => return Err(e),
            }
            std::mem::take(&mut held)
        } else {
            polled
        };
        let Some((writer, chain)) = pipeline.as_mut() else { continue };
        let needs = chain.converter_needs();
        let messages: Vec<Message> = batch.iter().map(|m| plugin_message(m, needs)).collect();
        let mut output = tokio::task::block_in_place(|| chain.run(&messages))?;
        let mut rejected: BTreeMap<u32, Rejection> = BTreeMap::new();
        for MessageFailure { source_index, stage, kind, message } in output.failures {
            rejected.entry(source_index).or_insert(Rejection { stage, kind: failure_kind_name(kind), reason: message });
        }
        // Without tolerance the task stops at the first bad message of each
        // queue: nothing after it in that queue is written.
        let cut =
            (!settings.tolerate_errors && !rejected.is_empty()).then(|| first_rejected_per_queue(&batch, &rejected));
        let stored_before_cut = |index: u32| match &cut {
            None => true,
            Some(cut) => {
                let message = &batch[index as usize];
                cut.get(&message.queue).is_none_or(|first| message.queue_offset < *first)
            }
        };
        output.rows.retain(|row| stored_before_cut(row.source_index));
        let report = writer.write(&output.rows, cancel).await;
        for (row, reason) in &report.poison {
            let source = output.rows[*row].source_index;
            rejected.entry(source).or_insert(Rejection {
                stage: "writer openmldb".into(),
                kind: "rejected",
                reason: reason.clone(),
            });
        }
        if !report.unresolved.is_empty() {
            // Only on shutdown or when max.retries ran out: these messages
            // stay unacknowledged and come back after a restart.
            let unresolved: std::collections::HashSet<u32> =
                report.unresolved.iter().map(|r| output.rows[*r].source_index).collect();
            acknowledge(consumer, &batch, |i| {
                !unresolved.contains(&i) && !rejected.contains_key(&i) && stored_before_cut(i)
            })
            .await;
            return if cancel.is_cancelled() {
                Ok(stats)
            } else {
                Err(SinkError::Other {
                    connector: connector.into(),
                    message: format!("OpenMLDB kept failing: {}", report.last_error.unwrap_or_default()),
                })
            };
        }
        stats.rows_written += report.written.len() as u64;
        progress.add_rows_written(report.written.len() as u64);
        for (index, rejection) in &rejected {
            let original = &batch[*index as usize];
            if !settings.tolerate_errors {
                // Stored messages are acknowledged; the commit stops at this
                // one, so it (and what follows it in its queue) comes back
                // after a restart.
                acknowledge(consumer, &batch, |i| !rejected.contains_key(&i) && stored_before_cut(i)).await;
                return Err(SinkError::Halted {
                    connector: connector.into(),
                    topic: original.queue.topic.clone(),
                    queue: original.queue.queue_id,
                    offset: original.queue_offset,
                    reason: format!("{} ({}): {}", rejection.stage, rejection.kind, rejection.reason),
                });
            }
            if let Some(producer) = &dead_letters {
                send_dead_letter(producer, settings, original, rejection).await?;
            } else {
                tracing::warn!(
                    connector,
                    "skipping message {}/{}: {}",
                    original.queue.queue_id,
                    original.queue_offset,
                    rejection.reason
                );
            }
            stats.dead_lettered += 1;
            progress.add_dead_lettered(1);
        }
        stats.messages += batch.len() as u64;
        progress.add_messages(batch.len() as u64);
        acknowledge(consumer, &batch, |_| true).await;
    }
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
) -> Result<(OpenMldbWriter, PluginChain), SinkError> {
    let connector = settings.connector.as_str();
    let record_columns: Option<Vec<Column>> = if settings.writer.auto_create {
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
    let writer = OpenMldbWriter::connect(settings.writer.clone(), &settings.table, record_columns.as_deref()).await?;
    let schema = writer.schema().clone();
    let chain = tokio::task::block_in_place(|| {
        PluginChain::new(engine, catalog, &settings.converter, &settings.transforms, schema, connector)
    })?;
    Ok((writer, chain))
}
