//! A queue consumer with at-least-once offsets: messages are handed out
//! per poll, the caller acknowledges each one when it is stored or
//! dead-lettered, and only the contiguous acknowledged prefix of a queue is
//! committed. Queues with too many unacknowledged messages are paused until
//! the pipeline catches up.

use super::client::RocketMqError;
use super::offsets::QueueProgress;
use crate::openmldb::{ConfigError, ConnectorConfig};
use rocketmq_client_rust::{ClientRuntime, DefaultLitePullConsumer};
use rocketmq_model::common::consumer::consume_from_where::ConsumeFromWhere;
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::message_queue::MessageQueue;
use rocketmq_model::common::message::{MessageTrait, STRING_HASH_SET};

/// The property the broker sets on pulled messages: the queue's end offset.
const MAX_OFFSET_PROPERTY: &str = "MAX_OFFSET";
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// `consume.from.where`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeFrom {
    First,
    Last,
}

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub namesrv: String,
    pub group: String,
    pub topics: Vec<String>,
    pub consume_from: ConsumeFrom,
    /// Unacknowledged messages per queue before the queue is paused.
    pub max_in_flight_per_queue: usize,
    /// Messages per pull request.
    pub pull_batch_size: i32,
    /// How often acknowledged offsets are persisted to the broker; zero
    /// persists on every acknowledgement, so a killed process redelivers
    /// only what it had not acknowledged.
    pub commit_interval: Duration,
    /// The client's instance name; consumers of one group in one process
    /// need distinct ones, or the broker sees one client and both get every
    /// queue.
    pub instance_name: Option<String>,
}

impl ConsumerConfig {
    /// The consumer of a sink connector, from RocketMQ Connect's keys: group
    /// `task.group.id` or `connect-<name>`; topics from `connect.topicnames`
    /// (split on `,` or `;`) or the legacy `connect-topicname(s)`; start
    /// position from `consume.from.where` (`CONSUME_FROM_LAST_OFFSET`, the
    /// default, or `CONSUME_FROM_FIRST_OFFSET`), used only by a new group.
    pub fn for_sink_connector(namesrv: &str, connector: &str, config: &ConnectorConfig) -> Result<Self, ConfigError> {
        let get = |key: &str| config.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
        let (topics_key, topics) =
            ["connect.topicnames", "connect-topicnames", "connect.topicname", "connect-topicname"]
                .iter()
                .find_map(|key| get(key).map(|v| (*key, v)))
                .ok_or(ConfigError::Missing("connect.topicnames"))?;
        let topics: Vec<String> =
            topics.split([',', ';']).map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect();
        if let Some(bad) = topics.iter().find(|t| !t.chars().all(|c| c.is_ascii_alphanumeric() || "_-%|".contains(c))) {
            return Err(ConfigError::Invalid {
                key: topics_key.to_string(),
                value: bad.clone(),
                reason: "a RocketMQ topic is letters, digits, '_', '-', '%' and '|'".into(),
            });
        }
        let consume_from = match get("consume.from.where").map(str::to_ascii_uppercase).as_deref() {
            None | Some("CONSUME_FROM_LAST_OFFSET") => ConsumeFrom::Last,
            Some("CONSUME_FROM_FIRST_OFFSET") => ConsumeFrom::First,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    key: "consume.from.where".into(),
                    value: other.to_string(),
                    reason: "expected CONSUME_FROM_LAST_OFFSET or CONSUME_FROM_FIRST_OFFSET".into(),
                });
            }
        };
        let group = get("task.group.id").map(String::from).unwrap_or_else(|| format!("connect-{connector}"));
        let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        let mut consumer = ConsumerConfig::new(namesrv, &group, &topic_refs);
        consumer.consume_from = consume_from;
        Ok(consumer)
    }

    pub fn new(namesrv: &str, group: &str, topics: &[&str]) -> Self {
        ConsumerConfig {
            namesrv: namesrv.to_string(),
            group: group.to_string(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            consume_from: ConsumeFrom::First,
            max_in_flight_per_queue: 4096,
            pull_batch_size: 256,
            commit_interval: Duration::ZERO,
            instance_name: None,
        }
    }
}

/// A queue of a topic on a broker.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId {
    pub topic: String,
    pub broker: String,
    pub queue_id: i32,
}

impl QueueId {
    fn of(message: &MessageExt) -> Self {
        QueueId {
            topic: message.topic().to_string(),
            broker: message.broker_name().to_string(),
            queue_id: message.queue_id(),
        }
    }

    fn message_queue(&self) -> MessageQueue {
        MessageQueue::from_parts(self.topic.as_str(), self.broker.as_str(), self.queue_id)
    }
}

/// A consumed message, in the host's terms.
#[derive(Debug, Clone)]
pub struct ConsumedMessage {
    pub queue: QueueId,
    pub queue_offset: i64,
    pub message_id: String,
    pub born_timestamp: i64,
    pub store_timestamp: i64,
    pub keys: Option<String>,
    pub tags: Option<String>,
    pub properties: Vec<(String, String)>,
    pub body: bytes::Bytes,
}

struct State {
    queues: HashMap<QueueId, QueueProgress>,
    paused: HashMap<QueueId, MessageQueue>,
    last_persist: Instant,
}

pub struct QueueConsumer {
    inner: DefaultLitePullConsumer,
    config: ConsumerConfig,
    state: Mutex<State>,
    /// Pulled messages past the last batch's bounds, handed out next.
    carry: Mutex<std::collections::VecDeque<ConsumedMessage>>,
}

impl QueueConsumer {
    /// Subscribe the group to its topics and start pulling.
    pub async fn start(client: Arc<ClientRuntime>, config: ConsumerConfig) -> Result<QueueConsumer, RocketMqError> {
        let consume_from = match config.consume_from {
            ConsumeFrom::First => ConsumeFromWhere::ConsumeFromFirstOffset,
            ConsumeFrom::Last => ConsumeFromWhere::ConsumeFromLastOffset,
        };
        let mut builder = DefaultLitePullConsumer::builder(client);
        if let Some(instance) = &config.instance_name {
            builder = builder.instance_name(instance.as_str());
        }
        let inner = builder
            .name_server_addr(config.namesrv.as_str())
            .consumer_group(config.group.as_str())
            .consume_from_where(consume_from)
            .auto_commit(false)
            .pull_batch_size(config.pull_batch_size)
            // An idle pull waits at the broker for this long. The client's
            // shutdown waits for pulls in flight, so the 20 s default made
            // every stop of an idle consumer take 15-25 s.
            .broker_suspend_max_time_millis(1_000)
            .consumer_timeout_millis_when_suspend(3_000)
            .build()
            .map_err(|e| RocketMqError::client("build consumer", e))?;
        for topic in &config.topics {
            inner.subscribe(topic).await.map_err(|e| RocketMqError::client(format!("subscribe {topic}"), e))?;
        }
        inner.start().await.map_err(|e| RocketMqError::client("start consumer", e))?;
        tracing::info!(group = %config.group, topics = ?config.topics, "consumer started");
        Ok(QueueConsumer {
            inner,
            config,
            state: Mutex::new(State { queues: HashMap::new(), paused: HashMap::new(), last_persist: Instant::now() }),
            carry: Mutex::new(Default::default()),
        })
    }

    /// What has arrived, up to about `max` messages and `max_bytes` of
    /// bodies (one pull result more at most): waits up to `timeout` for the
    /// first pull result, then takes the ones already waiting without
    /// waiting more. Larger batches make cheaper plugin calls and INSERTs;
    /// the latency cost is nil, as nothing waits for more.
    pub async fn poll_available(&self, timeout: Duration, max: usize, max_bytes: usize) -> Vec<ConsumedMessage> {
        let mut carried = std::mem::take(&mut *self.carry.lock().await);
        let mut batch = Vec::new();
        let mut bytes = 0usize;
        loop {
            if carried.is_empty() {
                let wait = if batch.is_empty() { timeout } else { Duration::ZERO };
                carried = self.poll(wait).await.into();
                if carried.is_empty() {
                    break;
                }
            }
            // At least one message, then up to the bounds; the rest of a
            // pull result waits for the next call, in order.
            while let Some(next) = carried.front() {
                let full = batch.len() >= max || bytes + next.body.len() > max_bytes;
                if !batch.is_empty() && full {
                    *self.carry.lock().await = carried;
                    return batch;
                }
                bytes += next.body.len();
                batch.extend(carried.pop_front());
            }
        }
        batch
    }

    /// Up to a pull batch of messages (empty after `timeout` with none).
    pub async fn poll(&self, timeout: Duration) -> Vec<ConsumedMessage> {
        let messages = self.inner.poll_with_timeout(timeout.as_millis() as u64).await;
        if messages.is_empty() {
            return Vec::new();
        }
        let mut state = self.state.lock().await;
        let mut to_pause = Vec::new();
        let consumed: Vec<ConsumedMessage> = messages
            .into_iter()
            .map(|m| {
                let queue = QueueId::of(&m);
                let progress = state.queues.entry(queue.clone()).or_default();
                progress.track(m.queue_offset());
                // The broker stamps each pulled message with the queue's end.
                if let Some(end) = m.property(&MAX_OFFSET_PROPERTY.into()).and_then(|v| v.parse().ok()) {
                    progress.saw_broker_end(end);
                }
                if progress.in_flight() >= self.config.max_in_flight_per_queue {
                    to_pause.push(queue.clone());
                }
                convert(m, queue)
            })
            .collect();
        let mut pause = Vec::new();
        for queue in to_pause {
            if let std::collections::hash_map::Entry::Vacant(slot) = state.paused.entry(queue) {
                let mq = slot.key().message_queue();
                slot.insert(mq.clone());
                pause.push(mq);
            }
        }
        drop(state);
        if !pause.is_empty() {
            tracing::debug!(queues = pause.len(), "pausing queues: too many unacknowledged messages");
            self.inner.pause(pause).await;
        }
        consumed
    }

    /// These messages are stored or dead-lettered. Commits the contiguous
    /// acknowledged prefix of their queues, and resumes paused queues that
    /// caught up.
    pub async fn ack(&self, acked: impl IntoIterator<Item = (QueueId, i64)>) {
        let mut state = self.state.lock().await;
        for (queue, offset) in acked {
            if let Some(progress) = state.queues.get_mut(&queue) {
                progress.ack(offset);
            }
        }
        let resume: Vec<QueueId> = state
            .paused
            .keys()
            .filter(|q| state.queues.get(*q).is_none_or(|p| p.in_flight() < self.config.max_in_flight_per_queue / 2))
            .cloned()
            .collect();
        let resume: Vec<MessageQueue> = resume.into_iter().filter_map(|q| state.paused.remove(&q)).collect();
        let persist = state.last_persist.elapsed() >= self.config.commit_interval;
        let offsets = take_commits(&mut state);
        if persist {
            state.last_persist = Instant::now();
        }
        drop(state);
        if !offsets.is_empty() {
            self.inner.commit_with_map(offsets, persist).await;
        }
        if !resume.is_empty() {
            self.inner.resume(resume).await;
        }
    }

    /// Messages behind the broker's end, per queue, as of the last pulls.
    pub async fn lag(&self) -> Vec<(QueueId, i64)> {
        let state = self.state.lock().await;
        state.queues.iter().filter_map(|(q, p)| p.lag().map(|lag| (q.clone(), lag))).collect()
    }

    /// Unacknowledged messages across all queues.
    pub async fn in_flight(&self) -> usize {
        self.state.lock().await.queues.values().map(QueueProgress::in_flight).sum()
    }

    /// Persist what is acknowledged, and nothing more, then stop.
    pub async fn shutdown(self) {
        let offsets = {
            let mut state = self.state.lock().await;
            let mut all = take_commits(&mut state);
            for (queue, progress) in &state.queues {
                if let Some(offset) = progress.committed() {
                    all.entry(queue.message_queue()).or_insert(offset);
                }
            }
            all
        };
        if !offsets.is_empty() {
            self.inner.commit_with_map(offsets, true).await;
        }
        self.inner.shutdown().await;
        tracing::info!(group = %self.config.group, "consumer stopped");
    }
}

fn take_commits(state: &mut State) -> HashMap<MessageQueue, i64> {
    let mut offsets = HashMap::new();
    for (queue, progress) in state.queues.iter_mut() {
        if let Some(offset) = progress.pending_commit() {
            progress.mark_committed(offset);
            offsets.insert(queue.message_queue(), offset);
        }
    }
    offsets
}

fn convert(message: MessageExt, queue: QueueId) -> ConsumedMessage {
    let properties = message
        .properties()
        .iter()
        // System properties (KEYS, TAGS, UNIQ_KEY, TRACE_ON, …) are not the
        // producer's; they cannot be set again on a dead letter either.
        .filter(|(k, _)| !STRING_HASH_SET.contains(k.as_str()))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ConsumedMessage {
        queue,
        queue_offset: message.queue_offset(),
        message_id: message.msg_id().to_string(),
        born_timestamp: message.born_timestamp(),
        store_timestamp: message.store_timestamp(),
        keys: message.get_keys().map(|k| k.to_string()),
        tags: message.get_tags().map(|t| t.to_string()),
        properties,
        body: message.body().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> ConnectorConfig {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn sink_connectors_get_their_group_topics_and_start_position() {
        let c = ConsumerConfig::for_sink_connector(
            "ns:9876",
            "jdbc-sink",
            &config(&[("connect-topicname", "employee_test")]),
        )
        .unwrap();
        assert_eq!(
            (c.group.as_str(), c.topics.clone(), c.consume_from),
            ("connect-jdbc-sink", vec!["employee_test".to_string()], ConsumeFrom::Last)
        );
        let c = ConsumerConfig::for_sink_connector(
            "ns:9876",
            "s",
            &config(&[
                ("connect.topicnames", "a;b, c"),
                ("task.group.id", "g1"),
                ("consume.from.where", "CONSUME_FROM_FIRST_OFFSET"),
            ]),
        )
        .unwrap();
        assert_eq!((c.group.as_str(), c.topics.len(), c.consume_from), ("g1", 3, ConsumeFrom::First));
    }

    #[test]
    fn bad_keys_are_named() {
        assert_eq!(
            ConsumerConfig::for_sink_connector("n", "s", &config(&[])).unwrap_err(),
            ConfigError::Missing("connect.topicnames")
        );
        let err = ConsumerConfig::for_sink_connector("n", "s", &config(&[("connect.topicnames", "a b")]))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("key \"connect.topicnames\": invalid value \"a b\""), "{err}");
        let err = ConsumerConfig::for_sink_connector(
            "n",
            "s",
            &config(&[("connect.topicnames", "a"), ("consume.from.where", "NOW")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("consume.from.where") && err.contains("\"NOW\""), "{err}");
    }
}
