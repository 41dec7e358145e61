//! A queue consumer with at-least-once offsets and fenced queue ownership.
//!
//! One consumer serves all the tasks of a connector in a process: each task
//! reads its own *lane* (a queue belongs to exactly one lane, by its id), so
//! the tasks of one worker never take queues from each other and a single
//! worker rebalances nothing. Messages are handed out per poll; the caller
//! acknowledges each one when it is stored or dead-lettered; the contiguous
//! acknowledged prefix of a queue is committed to the broker synchronously
//! (the broker has confirmed it when `ack` returns). Queues with too many
//! unacknowledged messages are paused until the pipeline catches up.
//!
//! When RocketMQ's rebalancing moves a queue to another worker, the queue is
//! *revoked* here: nothing more of it is handed out or written, the batch
//! being written finishes, its acknowledged prefix is committed, and only
//! then is the queue let go. A queue gained from elsewhere is *pending*: it
//! is paused until the previous owner has let it go, then read from the
//! offset the broker has durably, never from the client's earlier guess.
//! In a cluster the peers say so in their heartbeats ([`PeerHandoff`]);
//! otherwise a hand-off grace (the time a previous owner that is still
//! alive needs to finish and commit) stands in for their word.
//!
//! The client keeps an offset table of its own and writes it to the broker
//! by itself (on a timer, at shutdown, when a rebalance removes a queue).
//! This consumer keeps that table empty, so only its own synchronous
//! commits reach the broker.

use super::client::RocketMqError;
use super::offsets::{Admission, QueueProgress};
use crate::openmldb::{ConfigError, ConnectorConfig};
use crate::telemetry::{STAGE_CPU, Stage, thread_cpu_time};
use cheetah_string::CheetahString;
use rocketmq_client_rust::{ClientRuntime, DefaultLitePullConsumer, MessageQueueListener, OffsetStore, ReadOffsetType};
use rocketmq_model::allocation::{AllocateMessageQueueAveragely, AllocateMessageQueueStrategy};
use rocketmq_model::common::consumer::consume_from_where::ConsumeFromWhere;
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::message_queue::MessageQueue;
use rocketmq_model::common::message::{MessageTrait, STRING_HASH_SET};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{Notify, mpsc};

/// The property the broker sets on pulled messages: the queue's end offset.
const MAX_OFFSET_PROPERTY: &str = "MAX_OFFSET";

/// How long a previous owner that is still alive gets to finish the batch
/// it is writing and commit, before a gained queue is read.
pub const DEFAULT_HANDOFF_GRACE: Duration = Duration::from_secs(2);
/// The longest a gained queue waits for a previous owner whose commits
/// keep moving.
const MAX_HANDOFF_WAIT: Duration = Duration::from_secs(10);
/// The longest a gained queue waits for the peers to say its previous
/// holder let it go (past this, the grace decides, as without peers).
const MAX_PEER_WAIT: Duration = Duration::from_secs(30);
/// How often a gained queue asks the peers again.
const PEER_POLL: Duration = Duration::from_millis(100);
/// Backoff of a gained queue's broker calls that failed.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// Commits a revoked queue tries before it is let go regardless.
const REVOKE_COMMIT_TRIES: usize = 5;

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
    /// The client's instance name; consumers of one group in one process
    /// need distinct ones, or the broker sees one client and both get every
    /// queue.
    pub instance_name: Option<String>,
    /// Lanes (tasks) the queues are dealt over.
    pub lanes: usize,
    /// `rebalance.handoff.grace.ms`: see [`DEFAULT_HANDOFF_GRACE`]. Zero for
    /// a group no other process reads.
    pub handoff_grace: Duration,
    /// In a cluster: the other workers' word on who holds which queue.
    pub peers: Option<Peers>,
}

/// The other workers of a cluster, as far as queue hand-offs go.
pub trait PeerHandoff: Send + Sync {
    /// A consumer of this worker started: its held queues go into this
    /// worker's heartbeats until it is dropped.
    fn register(&self, consumer: std::sync::Weak<QueueConsumer>);
    /// Whether every other worker has let `queue` (a [`QueueId::key`]) of
    /// `group` go, as heard since `since`, when it was gained here.
    /// `members` are the group's client ids as the broker listed them at
    /// the last rebalance and `me` this consumer's: a worker whose client
    /// is no longer listed and who has fallen silent is gone, and holds
    /// nothing.
    fn released(&self, group: &str, queue: &str, since: SystemTime, members: &[String], me: &str) -> bool;
    /// A queue was let go here (committed and dropped): say so soon.
    fn let_go(&self);
}

/// A shared [`PeerHandoff`].
#[derive(Clone)]
pub struct Peers(pub Arc<dyn PeerHandoff>);

impl std::fmt::Debug for Peers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Peers")
    }
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
        let handoff_grace = match get("rebalance.handoff.grace.ms") {
            None => DEFAULT_HANDOFF_GRACE,
            Some(raw) => Duration::from_millis(raw.parse().map_err(|_| ConfigError::Invalid {
                key: "rebalance.handoff.grace.ms".into(),
                value: raw.to_string(),
                reason: "expected a whole number of milliseconds".into(),
            })?),
        };
        let group = get("task.group.id").map(String::from).unwrap_or_else(|| format!("connect-{connector}"));
        let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        let mut consumer = ConsumerConfig::new(namesrv, &group, &topic_refs);
        consumer.consume_from = consume_from;
        consumer.handoff_grace = handoff_grace;
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
            instance_name: None,
            lanes: 1,
            handoff_grace: Duration::ZERO,
            peers: None,
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

    fn from_queue(queue: &MessageQueue) -> Self {
        QueueId {
            topic: queue.topic().to_string(),
            broker: queue.broker_name().to_string(),
            queue_id: queue.queue_id(),
        }
    }

    fn message_queue(&self) -> MessageQueue {
        MessageQueue::from_parts(self.topic.as_str(), self.broker.as_str(), self.queue_id)
    }

    /// `topic/broker/queue id`, as status and heartbeats name a queue.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.topic, self.broker, self.queue_id)
    }

    /// The lane this queue belongs to: queue ids of one topic spread evenly,
    /// the same in every process and whatever else is assigned.
    pub fn lane(&self, lanes: usize) -> usize {
        let topic: u32 = self.topic.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        (topic.wrapping_add(self.queue_id as u32) as usize) % lanes.max(1)
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

/// Whose a queue is, as this consumer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ownership {
    /// Gained; paused until the hand-off is over.
    Pending,
    /// Read, written and committed here.
    Owned,
    /// Lost to another consumer: the batch in hand finishes, then it goes.
    Revoking,
}

#[derive(Debug)]
struct Slot {
    ownership: Ownership,
    progress: QueueProgress,
    /// Batches being written with rows of this queue.
    writing: usize,
    /// Paused for having too many unacknowledged messages.
    backpressure: bool,
    /// Assigned again while being revoked: taken over once let go.
    regain: bool,
}

impl Slot {
    fn pending() -> Slot {
        Slot {
            ownership: Ownership::Pending,
            progress: QueueProgress::default(),
            writing: 0,
            backpressure: false,
            regain: false,
        }
    }
}

#[derive(Default)]
struct State {
    queues: HashMap<QueueId, Slot>,
    /// Messages handed to each lane's next poll.
    lanes: Vec<VecDeque<ConsumedMessage>>,
    /// Queues each subscribed topic has, as the last rebalance saw them.
    topic_queues: HashMap<String, usize>,
}

/// Tells the consumer when the client's rebalancing moves queues.
struct AssignmentListener {
    changes: mpsc::UnboundedSender<Assignment>,
}

/// A rebalance's outcome for one topic.
struct Assignment {
    topic: String,
    /// Queues the topic has over all its brokers.
    all: usize,
    assigned: HashSet<MessageQueue>,
}

/// The group as the broker listed it at the last rebalance.
#[derive(Debug, Default, Clone)]
struct GroupMembers {
    /// This consumer's client id.
    me: String,
    all: Vec<String>,
}

/// RocketMQ's default allocation (averagely), remembering the group's
/// members it was given.
struct RecordingAverage {
    members: Arc<Mutex<GroupMembers>>,
}

impl AllocateMessageQueueStrategy for RecordingAverage {
    fn allocate(
        &self,
        consumer_group: &CheetahString,
        current_cid: &CheetahString,
        mq_all: &[MessageQueue],
        cid_all: &[CheetahString],
    ) -> rocketmq_error::Result<Vec<MessageQueue>> {
        *lock(&self.members) =
            GroupMembers { me: current_cid.to_string(), all: cid_all.iter().map(|c| c.to_string()).collect() };
        AllocateMessageQueueAveragely.allocate(consumer_group, current_cid, mq_all, cid_all)
    }

    fn get_name(&self) -> &'static str {
        AllocateMessageQueueAveragely.get_name()
    }
}

impl MessageQueueListener for AssignmentListener {
    fn message_queue_changed(&self, topic: &str, all: &HashSet<MessageQueue>, assigned: &HashSet<MessageQueue>) {
        let _ = self.changes.send(Assignment { topic: topic.to_string(), all: all.len(), assigned: assigned.clone() });
    }
}

pub struct QueueConsumer {
    inner: DefaultLitePullConsumer,
    config: ConsumerConfig,
    state: Mutex<State>,
    offsets: Option<Arc<OffsetStore>>,
    /// Serialises pulls from the client; lanes take turns pulling for all.
    pulling: tokio::sync::Mutex<()>,
    /// Serialises commits, so a queue's commits reach the broker in order
    /// (two in flight at once could land the older one last).
    committing: tokio::sync::Mutex<()>,
    /// Fires when messages reach a lane, or a write finishes.
    changed: Notify,
    rebalancer: Mutex<Option<tokio::task::JoinHandle<()>>>,
    members: Arc<Mutex<GroupMembers>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl QueueConsumer {
    /// Subscribe the group to its topics and start pulling.
    pub async fn start(
        client: Arc<ClientRuntime>,
        config: ConsumerConfig,
    ) -> Result<Arc<QueueConsumer>, RocketMqError> {
        let consume_from = match config.consume_from {
            ConsumeFrom::First => ConsumeFromWhere::ConsumeFromFirstOffset,
            ConsumeFrom::Last => ConsumeFromWhere::ConsumeFromLastOffset,
        };
        let members = Arc::new(Mutex::new(GroupMembers::default()));
        let mut builder = DefaultLitePullConsumer::builder(client)
            .allocate_message_queue_strategy(Arc::new(RecordingAverage { members: members.clone() }));
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
            // A suspended pull must outlive the broker's hold plus its
            // long-poll check (5 s): a pull that times out first drops the
            // connection, and the broker then drops the consumer from the
            // group, which moves its queues back and forth.
            .consumer_timeout_millis_when_suspend(10_000)
            .build()
            .map_err(|e| RocketMqError::client("build consumer", e))?;
        let (changes, incoming) = mpsc::unbounded_channel();
        for topic in &config.topics {
            let listener = AssignmentListener { changes: changes.clone() };
            inner
                .subscribe_with_listener(topic, "*", listener)
                .await
                .map_err(|e| RocketMqError::client(format!("subscribe {topic}"), e))?;
        }
        inner.start().await.map_err(|e| RocketMqError::client("start consumer", e))?;
        let offsets = inner.offset_store().await;
        let lanes = config.lanes.max(1);
        let state = State { lanes: (0..lanes).map(|_| VecDeque::new()).collect(), ..State::default() };
        tracing::info!(group = %config.group, topics = ?config.topics, lanes, "consumer started");
        let consumer = Arc::new(QueueConsumer {
            inner,
            config,
            state: Mutex::new(state),
            offsets,
            pulling: tokio::sync::Mutex::new(()),
            committing: tokio::sync::Mutex::new(()),
            changed: Notify::new(),
            rebalancer: Mutex::new(None),
            members,
        });
        if let Some(peers) = &consumer.config.peers {
            peers.0.register(Arc::downgrade(&consumer));
        }
        let rebalancer = tokio::spawn(rebalance(Arc::downgrade(&consumer), incoming));
        *lock(&consumer.rebalancer) = Some(rebalancer);
        Ok(consumer)
    }

    pub fn lanes(&self) -> usize {
        self.config.lanes.max(1)
    }

    pub fn group(&self) -> &str {
        &self.config.group
    }

    /// This consumer's client id, once the group has rebalanced.
    pub fn client_id(&self) -> Option<String> {
        Some(lock(&self.members).me.clone()).filter(|me| !me.is_empty())
    }

    /// Every queue this consumer has a claim on: pending, read, or being
    /// handed on ([`QueueId::key`]s). A queue leaves this list only once
    /// its acknowledged prefix is committed.
    pub fn held_queues(&self) -> Vec<String> {
        let mut held: Vec<String> = lock(&self.state).queues.keys().map(QueueId::key).collect();
        held.sort();
        held
    }

    /// Queues this consumer reads now (taken over, not being handed on).
    pub fn owned_queues(&self) -> usize {
        lock(&self.state).queues.values().filter(|s| s.ownership == Ownership::Owned).count()
    }

    /// How many queues `topic` has over all brokers, once a rebalance ran.
    pub fn topic_queue_count(&self, topic: &str) -> Option<usize> {
        lock(&self.state).topic_queues.get(topic).copied()
    }

    /// What has arrived for `lane`, up to about `max` messages and
    /// `max_bytes` of bodies: waits up to `timeout` for the first, then
    /// takes what is already there without waiting more. Larger batches
    /// make cheaper plugin calls and INSERTs; the latency cost is nil, as
    /// nothing waits for more.
    pub async fn poll_lane(
        &self,
        lane: usize,
        timeout: Duration,
        max: usize,
        max_bytes: usize,
    ) -> Vec<ConsumedMessage> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut batch = Vec::new();
        let mut bytes = 0usize;
        // After the first messages, pulls that wait for nothing, until one
        // brings nothing.
        let mut more = true;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.take(lane, max, max_bytes, &mut batch, &mut bytes) || (!batch.is_empty() && !more) {
                return batch;
            }
            let now = tokio::time::Instant::now();
            if batch.is_empty() && now >= deadline {
                return batch;
            }
            let wait = if batch.is_empty() { (deadline - now).min(Duration::from_millis(500)) } else { Duration::ZERO };
            // Pull for every lane, or wait for the lane pulling now.
            tokio::select! {
                guard = self.pulling.lock() => {
                    if self.take(lane, max, max_bytes, &mut batch, &mut bytes) {
                        return batch;
                    }
                    let messages = self.inner.poll_with_timeout(wait.as_millis() as u64).await;
                    drop(guard);
                    if messages.is_empty() && !batch.is_empty() {
                        more = false;
                    }
                    self.dispatch(messages).await;
                }
                _ = &mut notified, if batch.is_empty() => {}
                _ = tokio::time::sleep_until(deadline), if batch.is_empty() => {}
            }
        }
    }

    /// Up to a pull batch of messages for a one-lane consumer (empty after
    /// `timeout` with none).
    pub async fn poll(&self, timeout: Duration) -> Vec<ConsumedMessage> {
        self.poll_lane(0, timeout, self.config.pull_batch_size.max(1) as usize, usize::MAX).await
    }

    /// Move messages from `lane`'s buffer to `batch` within the bounds; true
    /// when the batch is full.
    fn take(
        &self,
        lane: usize,
        max: usize,
        max_bytes: usize,
        batch: &mut Vec<ConsumedMessage>,
        bytes: &mut usize,
    ) -> bool {
        STAGE_CPU.measure(Stage::Consume, || {
            let mut state = lock(&self.state);
            let State { lanes, queues, .. } = &mut *state;
            let Some(buffer) = lanes.get_mut(lane) else { return true };
            while let Some(next) = buffer.front() {
                // A queue revoked since its messages arrived: they stay unread here.
                if queues.get(&next.queue).is_none_or(|s| s.ownership != Ownership::Owned) {
                    buffer.pop_front();
                    continue;
                }
                if !batch.is_empty() && (batch.len() >= max || *bytes + next.body.len() > max_bytes) {
                    return true;
                }
                *bytes += next.body.len();
                batch.extend(buffer.pop_front());
            }
            false
        })
    }

    /// Track pulled messages and hand them to their lanes.
    async fn dispatch(&self, messages: Vec<MessageExt>) {
        if messages.is_empty() {
            return;
        }
        let lanes = self.lanes();
        let mut to_pause = Vec::new();
        let bookkeeping = thread_cpu_time();
        {
            let mut state = lock(&self.state);
            for m in messages {
                let queue = QueueId::of(&m);
                let State { queues, lanes: buffers, .. } = &mut *state;
                // Not ours (yet): the client starts pulling a gained queue
                // before it tells us; it is read again from the committed
                // offset once it is ours.
                let Some(slot) = queues.get_mut(&queue).filter(|s| s.ownership == Ownership::Owned) else {
                    continue;
                };
                // Handed out already (a batch the client delivered twice).
                if slot.progress.admit(m.queue_offset()) == Admission::Stale {
                    continue;
                }
                // The broker stamps each pulled message with the queue's end.
                if let Some(end) = m.property(&MAX_OFFSET_PROPERTY.into()).and_then(|v| v.parse().ok()) {
                    slot.progress.saw_broker_end(end);
                }
                if slot.progress.in_flight() >= self.config.max_in_flight_per_queue && !slot.backpressure {
                    slot.backpressure = true;
                    to_pause.push(queue.message_queue());
                }
                let lane = queue.lane(lanes);
                buffers[lane].push_back(convert(m, queue));
            }
        }
        STAGE_CPU.add(Stage::Consume, thread_cpu_time().saturating_sub(bookkeeping));
        self.changed.notify_waiters();
        if !to_pause.is_empty() {
            tracing::debug!(queues = to_pause.len(), "pausing queues: too many unacknowledged messages");
            self.inner.pause(to_pause).await;
        }
    }

    /// The queues of `queues` this consumer may still write, marked as
    /// being written until the guard is dropped; a revoked queue is let go
    /// only after its guards are.
    pub fn begin_write(self: &Arc<Self>, queues: impl IntoIterator<Item = QueueId>) -> WriteGuard {
        let mut owned = HashSet::new();
        let mut state = lock(&self.state);
        for queue in queues {
            if let Some(slot) = state.queues.get_mut(&queue)
                && slot.ownership == Ownership::Owned
                && owned.insert(queue)
            {
                slot.writing += 1;
            }
        }
        WriteGuard { consumer: self.clone(), queues: owned }
    }

    /// These messages are stored or dead-lettered. Commits the contiguous
    /// acknowledged prefix of their queues to the broker (confirmed when
    /// this returns), and resumes paused queues that caught up. Queues no
    /// longer this consumer's are left to their new owner.
    pub async fn ack(&self, acked: impl IntoIterator<Item = (QueueId, i64)>) {
        let mut resume = Vec::new();
        let bookkeeping = thread_cpu_time();
        {
            let mut state = lock(&self.state);
            for (queue, offset) in acked {
                if let Some(slot) = state.queues.get_mut(&queue) {
                    slot.progress.ack(offset);
                }
            }
            for (queue, slot) in state.queues.iter_mut() {
                if slot.backpressure && slot.progress.in_flight() < self.config.max_in_flight_per_queue / 2 {
                    slot.backpressure = false;
                    if slot.ownership == Ownership::Owned {
                        resume.push(queue.message_queue());
                    }
                }
            }
        }
        STAGE_CPU.add(Stage::Acknowledge, thread_cpu_time().saturating_sub(bookkeeping));
        self.commit_pending(None).await;
        if !resume.is_empty() {
            self.inner.resume(resume).await;
        }
    }

    /// Send the acknowledged prefixes not yet committed (of every queue, or
    /// of `only`) to the broker and wait for its answers; a commit that
    /// fails is sent again with the next acknowledgement. What to send is
    /// read under the commit lock, so no older offset can follow a newer.
    /// True when every commit was confirmed.
    async fn commit_pending(&self, only: Option<&QueueId>) -> bool {
        let _in_order = self.committing.lock().await;
        let commits: Vec<(QueueId, i64)> = {
            let state = lock(&self.state);
            pending_commits(&state).into_iter().filter(|(q, _)| only.is_none_or(|only| only == q)).collect()
        };
        if commits.is_empty() {
            return true;
        }
        let sends = commits.iter().map(|(queue, offset)| self.commit_one(queue, *offset));
        let results = futures::future::join_all(sends).await;
        let mut state = lock(&self.state);
        let mut all_done = true;
        for ((queue, offset), done) in commits.into_iter().zip(results) {
            all_done &= done;
            if done && let Some(slot) = state.queues.get_mut(&queue) {
                slot.progress.mark_committed(offset);
            }
        }
        all_done
    }

    /// One synchronous commit. The client's own offset table is left
    /// alone: the client persists that table by itself (on a timer, at
    /// shutdown and when a rebalance removes a queue), and an entry there
    /// would be written over another worker's later commits.
    async fn commit_one(&self, queue: &QueueId, offset: i64) -> bool {
        let Some(store) = &self.offsets else { return false };
        let mq = queue.message_queue();
        match store.update_consume_offset_to_broker(&mq, offset, false).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(group = %self.config.group, queue = ?queue, offset, "commit not confirmed, will retry: {e}");
                false
            }
        }
    }

    /// Messages behind the broker's end, per queue, as of the last pulls.
    pub async fn lag(&self) -> Vec<(QueueId, i64)> {
        let state = lock(&self.state);
        state.queues.iter().filter_map(|(q, s)| s.progress.lag().map(|lag| (q.clone(), lag))).collect()
    }

    /// Unacknowledged messages of `lane`'s queues.
    pub async fn in_flight(&self, lane: usize) -> usize {
        let lanes = self.lanes();
        let state = lock(&self.state);
        state.queues.iter().filter(|(q, _)| q.lane(lanes) == lane).map(|(_, s)| s.progress.in_flight()).sum()
    }

    /// A restarted task reads its lane again from the last acknowledged
    /// message: what it had taken and not acknowledged comes back.
    pub async fn rewind_lane(&self, lane: usize) {
        let lanes = self.lanes();
        let rewind: Vec<(QueueId, i64)> = {
            let mut state = lock(&self.state);
            state.lanes[lane].clear();
            state
                .queues
                .iter_mut()
                .filter(|(q, s)| q.lane(lanes) == lane && s.ownership == Ownership::Owned && s.progress.in_flight() > 0)
                .filter_map(|(q, s)| {
                    let from = s.progress.rewind()?;
                    Some((q.clone(), from))
                })
                .collect()
        };
        for (queue, offset) in rewind {
            if let Err(e) = self.inner.seek(&queue.message_queue(), offset).await {
                tracing::warn!(queue = ?queue, offset, "rewinding a restarted task's queue: {e}");
            }
        }
    }

    /// Commit what is acknowledged, and nothing more, then stop.
    pub async fn shutdown(&self) {
        if let Some(rebalancer) = lock(&self.rebalancer).take() {
            rebalancer.abort();
        }
        self.commit_pending(None).await;
        // Nothing is held here any more: heartbeats say so from now on.
        lock(&self.state).queues.clear();
        self.inner.shutdown().await;
        tracing::info!(group = %self.config.group, "consumer stopped");
    }

    /// Queues moved by a rebalance: revoke the lost ones, take over the
    /// gained ones. Each goes on in its own task.
    async fn reassign(self: &Arc<Self>, topic: &str, assigned: HashSet<MessageQueue>) {
        let assigned: HashSet<QueueId> = assigned.iter().map(QueueId::from_queue).collect();
        let (lost, gained) = {
            let mut state = lock(&self.state);
            let lost: Vec<QueueId> = state
                .queues
                .iter()
                .filter(|(q, s)| q.topic == topic && !assigned.contains(q) && s.ownership != Ownership::Revoking)
                .map(|(q, _)| q.clone())
                .collect();
            for queue in &lost {
                if let Some(slot) = state.queues.get_mut(queue) {
                    slot.ownership = Ownership::Revoking;
                }
            }
            for queue in &assigned {
                if let Some(slot) = state.queues.get_mut(queue) {
                    slot.regain = slot.ownership == Ownership::Revoking;
                }
            }
            let gained: Vec<QueueId> = assigned.iter().filter(|q| !state.queues.contains_key(*q)).cloned().collect();
            for queue in &gained {
                state.queues.insert(queue.clone(), Slot::pending());
            }
            (lost, gained)
        };
        if !gained.is_empty() {
            self.inner.pause(gained.iter().map(QueueId::message_queue).collect()).await;
        }
        for queue in lost {
            tokio::spawn(self.clone().revoke(queue));
        }
        for queue in gained {
            tokio::spawn(self.clone().take_over(queue));
        }
    }

    /// Let a lost queue go once the batch being written with it is done
    /// and its acknowledged prefix is committed.
    async fn revoke(self: Arc<Self>, queue: QueueId) {
        loop {
            let notified = self.changed.notified();
            let writing = lock(&self.state).queues.get(&queue).map_or(0, |s| s.writing);
            if writing == 0 {
                break;
            }
            notified.await;
        }
        // What the next owner reads from: worth a few tries (a prefix left
        // uncommitted is written twice, once here and once there).
        let mut backoff = RETRY_FIRST;
        for _ in 0..REVOKE_COMMIT_TRIES {
            if self.commit_pending(Some(&queue)).await {
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(RETRY_MAX);
        }
        let regain = {
            let mut state = lock(&self.state);
            match state.queues.get(&queue).map(|s| (s.ownership, s.regain)) {
                Some((Ownership::Revoking, true)) => {
                    state.queues.insert(queue.clone(), Slot::pending());
                    true
                }
                Some((Ownership::Revoking, false)) => {
                    state.queues.remove(&queue);
                    false
                }
                _ => false,
            }
        };
        if regain {
            self.inner.pause(vec![queue.message_queue()]).await;
            tokio::spawn(self.clone().take_over(queue));
        } else {
            tracing::info!(group = %self.config.group, queue = ?queue, "queue handed over");
            if let Some(peers) = &self.config.peers {
                peers.0.let_go();
            }
        }
    }

    /// Read a gained queue from the offset the broker holds durably, after
    /// the previous owner (if it is still alive) had time to commit.
    async fn take_over(self: Arc<Self>, queue: QueueId) {
        let mq = queue.message_queue();
        // The client seeded its offset table when it began pulling the
        // queue; left there, its own persisting would write it back later.
        self.forget_client_offset(&mq).await;
        // In a cluster, the peers say when the previous holder has let the
        // queue go (its prefix committed): its offset is final then.
        let released = match &self.config.peers {
            Some(peers) => match self.wait_for_release(&queue, peers).await {
                Some(released) => released,
                None => return,
            },
            None => false,
        };
        let Some(mut committed) = self.committed_offset(&queue).await else { return };
        // Otherwise a previous owner may still be finishing. Wait out the
        // grace; while the committed offset still moves over a grace, it
        // has not let go yet (it may not have seen the rebalance): wait
        // again, up to MAX_HANDOFF_WAIT. A group with nothing committed
        // waits too: its first owner may commit for the first time now.
        if !released && !self.config.handoff_grace.is_zero() {
            let given_up = std::time::Instant::now() + MAX_HANDOFF_WAIT;
            loop {
                tokio::time::sleep(self.config.handoff_grace).await;
                let Some(now) = self.committed_offset(&queue).await else { return };
                let settled = now == committed;
                committed = now;
                if settled || std::time::Instant::now() >= given_up {
                    break;
                }
                tracing::debug!(queue = ?queue, offset = ?now, "the previous owner still commits; waiting");
            }
        }
        if !self.is_pending(&queue) {
            return;
        }
        let start = match committed {
            Some(offset) => offset,
            // A new group: where consume.from.where says.
            None => {
                let from = self.config.consume_from;
                let bound = self
                    .retry_while_pending(&queue, "reading the queue's bounds", || async {
                        match from {
                            ConsumeFrom::First => self.inner.min_offset(&mq).await,
                            ConsumeFrom::Last => self.inner.max_offset(&mq).await,
                        }
                    })
                    .await;
                let Some(bound) = bound else { return };
                bound
            }
        };
        let seek = self.retry_while_pending(&queue, "seeking a gained queue", || self.inner.seek(&mq, start)).await;
        if seek.is_none() {
            return;
        }
        self.forget_client_offset(&mq).await;
        let owned = {
            let mut state = lock(&self.state);
            match state.queues.get_mut(&queue) {
                Some(slot) if slot.ownership == Ownership::Pending => {
                    slot.ownership = Ownership::Owned;
                    slot.progress = QueueProgress::starting_at(start);
                    true
                }
                _ => false,
            }
        };
        if !owned {
            return;
        }
        self.inner.resume(vec![mq]).await;
        tracing::info!(group = %self.config.group, queue = ?queue, from = start, "queue taken over");
    }

    /// Wait until the peers say no one else holds `queue` (true), or
    /// MAX_PEER_WAIT passed (false); `None` once it is no longer pending.
    async fn wait_for_release(&self, queue: &QueueId, peers: &Peers) -> Option<bool> {
        let since = SystemTime::now();
        let given_up = Instant::now() + MAX_PEER_WAIT;
        let key = queue.key();
        loop {
            if !self.is_pending(queue) {
                return None;
            }
            let members = lock(&self.members).clone();
            if peers.0.released(&self.config.group, &key, since, &members.all, &members.me) {
                return Some(true);
            }
            if Instant::now() >= given_up {
                tracing::warn!(
                    group = %self.config.group, queue = %key,
                    "no word from the peers that the previous holder let go within {MAX_PEER_WAIT:?}; taking it over on the grace"
                );
                return Some(false);
            }
            tokio::time::sleep(PEER_POLL).await;
        }
    }

    /// The offset the broker holds for a gained queue: `Some(None)` when
    /// this group never committed one. A failed read is tried again, never
    /// taken for "never committed" (that would start the queue where
    /// `consume.from.where` says, skipping or repeating messages); `None`
    /// once the queue is no longer pending here.
    async fn committed_offset(&self, queue: &QueueId) -> Option<Option<i64>> {
        let Some(store) = &self.offsets else { return Some(None) };
        let mq = queue.message_queue();
        let mut backoff = RETRY_FIRST;
        loop {
            let offset = store.read_offset(&mq, ReadOffsetType::ReadFromStore).await;
            // The read put the offset in the client's table: see take_over.
            store.remove_offset(&mq).await;
            match offset {
                -1 => return Some(None),
                offset if offset >= 0 => return Some(Some(offset)),
                _ => {}
            }
            if !self.is_pending(queue) {
                return None;
            }
            tracing::warn!(group = %self.config.group, queue = ?queue, "reading the committed offset failed; trying again");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(RETRY_MAX);
        }
    }

    /// `attempt` until it succeeds, while `queue` is still pending here.
    async fn retry_while_pending<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
        &self,
        queue: &QueueId,
        what: &str,
        mut attempt: impl FnMut() -> F,
    ) -> Option<T> {
        let mut backoff = RETRY_FIRST;
        loop {
            match attempt().await {
                Ok(value) => return Some(value),
                Err(e) if self.is_pending(queue) => {
                    tracing::warn!(group = %self.config.group, queue = ?queue, "{what}: {e}; trying again");
                }
                Err(e) => {
                    tracing::info!(group = %self.config.group, queue = ?queue, "{what}: {e}; the queue moved on");
                    return None;
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(RETRY_MAX);
        }
    }

    fn is_pending(&self, queue: &QueueId) -> bool {
        lock(&self.state).queues.get(queue).is_some_and(|s| s.ownership == Ownership::Pending)
    }

    async fn forget_client_offset(&self, mq: &MessageQueue) {
        if let Some(store) = &self.offsets {
            store.remove_offset(mq).await;
        }
    }
}

/// The rebalancer: applies the client's assignment changes in order.
async fn rebalance(consumer: std::sync::Weak<QueueConsumer>, mut changes: mpsc::UnboundedReceiver<Assignment>) {
    while let Some(Assignment { topic, all, assigned }) = changes.recv().await {
        let Some(consumer) = consumer.upgrade() else { return };
        lock(&consumer.state).topic_queues.insert(topic.clone(), all);
        consumer.reassign(&topic, assigned).await;
    }
}

/// Queues being written in one batch; dropping it lets revoked queues go.
pub struct WriteGuard {
    consumer: Arc<QueueConsumer>,
    queues: HashSet<QueueId>,
}

impl WriteGuard {
    /// Whether rows of `queue` may be written in this batch.
    pub fn owns(&self, queue: &QueueId) -> bool {
        self.queues.contains(queue)
    }
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        let mut state = lock(&self.consumer.state);
        for queue in &self.queues {
            if let Some(slot) = state.queues.get_mut(queue) {
                slot.writing = slot.writing.saturating_sub(1);
            }
        }
        drop(state);
        self.consumer.changed.notify_waiters();
    }
}

fn pending_commits(state: &State) -> Vec<(QueueId, i64)> {
    state
        .queues
        .iter()
        .filter(|(_, s)| s.ownership != Ownership::Pending)
        .filter_map(|(q, s)| s.progress.pending_commit().map(|o| (q.clone(), o)))
        .collect()
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
        assert_eq!(c.handoff_grace, DEFAULT_HANDOFF_GRACE);
        let c = ConsumerConfig::for_sink_connector(
            "ns:9876",
            "s",
            &config(&[
                ("connect.topicnames", "a;b, c"),
                ("task.group.id", "g1"),
                ("consume.from.where", "CONSUME_FROM_FIRST_OFFSET"),
                ("rebalance.handoff.grace.ms", "500"),
            ]),
        )
        .unwrap();
        assert_eq!((c.group.as_str(), c.topics.len(), c.consume_from), ("g1", 3, ConsumeFrom::First));
        assert_eq!(c.handoff_grace, Duration::from_millis(500));
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

    #[test]
    fn queues_of_a_topic_are_dealt_evenly_over_the_lanes() {
        let lanes: Vec<usize> =
            (0..8).map(|q| QueueId { topic: "t".into(), broker: "b".into(), queue_id: q }.lane(8)).collect();
        let mut sorted = lanes.clone();
        sorted.sort();
        assert_eq!(sorted, (0..8).collect::<Vec<_>>(), "one queue per lane");
        let again: Vec<usize> =
            (0..8).map(|q| QueueId { topic: "t".into(), broker: "b".into(), queue_id: q }.lane(8)).collect();
        assert_eq!(lanes, again, "the same in every process");
        assert_eq!(QueueId { topic: "t".into(), broker: "b".into(), queue_id: 5 }.lane(1), 0);
    }
}

/// The consumer the tasks of one connector share in this process, started
/// by the first task that runs (the broker may be down when the connector
/// is created) and stopped after the last one.
pub struct SharedConsumer {
    client: Arc<ClientRuntime>,
    config: ConsumerConfig,
    started: tokio::sync::OnceCell<Arc<QueueConsumer>>,
}

impl SharedConsumer {
    pub fn new(client: Arc<ClientRuntime>, config: ConsumerConfig) -> Arc<SharedConsumer> {
        Arc::new(SharedConsumer { client, config, started: tokio::sync::OnceCell::new() })
    }

    /// The consumer, started on first use.
    pub async fn get(&self) -> Result<Arc<QueueConsumer>, RocketMqError> {
        self.started.get_or_try_init(|| QueueConsumer::start(self.client.clone(), self.config.clone())).await.cloned()
    }

    /// The consumer, if it has started.
    pub fn current(&self) -> Option<Arc<QueueConsumer>> {
        self.started.get().cloned()
    }

    /// Commit what is acknowledged and stop, if it was started.
    pub async fn shutdown(&self) {
        if let Some(consumer) = self.started.get() {
            consumer.shutdown().await;
        }
    }
}
