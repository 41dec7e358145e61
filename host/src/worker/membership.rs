//! Cluster mode: which workers are alive and what each of them runs.
//!
//! Every worker publishes a heartbeat to `rmq-openmldb-<cluster>-status`
//! (one queue) every [`HEARTBEAT_INTERVAL`]: its id, its REST address, and
//! for each connector its state and its tasks with the queues they read.
//! Every worker reads everyone's heartbeats with a consumer group of its
//! own, so each sees the whole cluster. A peer is live while its heartbeats
//! keep coming (the last one within [`LIVENESS`]); one that stops cleanly
//! says so in a last heartbeat and drops out at once. This is what status
//! is made of, and what places source tasks (sinks' queue ownership stays
//! with RocketMQ's rebalancing): each source task has one owner among the
//! live workers that can run its connector, by rendezvous hashing.
//!
//! Heartbeats also list, per consumer group, the queues each worker holds
//! (pending, read or being handed on). A worker that gains a queue reads it
//! only once every other live worker has said, in a heartbeat sent since,
//! that it does not hold the queue (its acknowledged prefix is committed by
//! then), or is gone: its client left the group and it fell silent. Sent
//! times are the peers' clocks: workers on several hosts need them in step
//! (NTP), as Kafka Connect's do.

use super::{TaskState, TaskView};
use crate::rocketmq::consumer::PeerHandoff;
use crate::rocketmq::{ConsumeFrom, ConsumerConfig, OutgoingMessage, Producer, QueueConsumer, RocketMqError};
use rocketmq_client_rust::ClientRuntime;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often a worker says it is alive.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(2);
/// A peer whose last heartbeat is older than this is taken for dead.
pub const LIVENESS: Duration = Duration::from_secs(7);

const HEARTBEAT_VERSION: u32 = 1;
/// Listening this long, a worker has heard every live peer at least once.
const HEARD_EVERYONE: Duration = Duration::from_secs(5);
/// A peer whose consumer left the group and who has been silent this long
/// (more than a heartbeat interval) is gone: it holds no queue.
const GONE_AND_SILENT: Duration = Duration::from_secs(3);

/// The queues one consumer of a worker holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsumerReport {
    pub group: String,
    /// Its client id as the broker lists it, once it has rebalanced.
    pub client_id: Option<String>,
    /// `topic/broker/queue id`, in any state short of let go.
    pub held: Vec<String>,
}

/// One connector as a worker runs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectorReport {
    pub state: TaskState,
    pub trace: Option<String>,
    pub tasks: Vec<TaskView>,
}

/// What a worker says about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Heartbeat {
    pub version: u32,
    pub worker_id: String,
    /// Where its REST API listens.
    pub http_addr: String,
    /// Milliseconds since the epoch, when sent.
    pub sent_ms: u64,
    /// Its last heartbeat: it is stopping.
    #[serde(default)]
    pub leaving: bool,
    pub connectors: BTreeMap<String, ConnectorReport>,
    /// Its sink consumers and the queues they hold.
    #[serde(default)]
    pub consumers: Vec<ConsumerReport>,
}

impl Heartbeat {
    pub fn new(worker_id: &str, http_addr: &str, connectors: BTreeMap<String, ConnectorReport>) -> Heartbeat {
        Heartbeat {
            version: HEARTBEAT_VERSION,
            worker_id: worker_id.to_string(),
            http_addr: http_addr.to_string(),
            sent_ms: now_ms(),
            leaving: false,
            connectors,
            consumers: Vec::new(),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}

pub fn status_topic(cluster: &str) -> String {
    format!("rmq-openmldb-{cluster}-status")
}

struct Peer {
    heartbeat: Heartbeat,
    seen: Instant,
}

/// A live peer, as the cluster view shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PeerView {
    #[serde(flatten)]
    pub heartbeat: Heartbeat,
    pub seconds_since_heartbeat: f64,
}

/// This worker's heartbeats out and its peers' in.
pub struct Membership {
    topic: String,
    worker_id: String,
    producer: Producer,
    peers: PeerTable,
    /// This worker's sink consumers, while they live.
    consumers: Mutex<Vec<Weak<QueueConsumer>>>,
    /// A queue was let go: the next heartbeat should not wait its turn.
    heartbeat_soon: AtomicBool,
}

/// The peers heard from, by worker id.
pub struct PeerTable {
    worker_id: String,
    peers: Mutex<BTreeMap<String, Peer>>,
    /// Since when heartbeats are read.
    listening_since: Instant,
}

impl Membership {
    pub async fn start(
        client: Arc<ClientRuntime>,
        namesrv: &str,
        cluster: &str,
        worker_id: &str,
    ) -> Result<Membership, RocketMqError> {
        let topic = status_topic(cluster);
        let mut producer =
            Producer::start(client, namesrv, &format!("rmq-openmldb-{cluster}-{worker_id}-status")).await?;
        if let Err(e) = producer.create_topic(&topic, 1).await {
            tracing::debug!("creating {topic}: {e}");
        }
        Ok(Membership {
            topic,
            worker_id: worker_id.to_string(),
            producer,
            peers: PeerTable::new(worker_id),
            consumers: Mutex::new(Vec::new()),
            heartbeat_soon: AtomicBool::new(false),
        })
    }

    /// Every worker reads every heartbeat: a group of its own, from now on.
    pub fn consumer_config(&self, namesrv: &str, cluster: &str) -> ConsumerConfig {
        let group = format!("rmq-openmldb-{cluster}-{}-status", self.worker_id);
        let mut config = ConsumerConfig::new(namesrv, &group, &[&self.topic]);
        config.consume_from = ConsumeFrom::Last;
        config
    }

    pub async fn publish(&self, heartbeat: &Heartbeat) -> Result<(), RocketMqError> {
        let body = serde_json::to_vec(heartbeat).map_err(|e| RocketMqError::client("encode heartbeat", e))?;
        let message = OutgoingMessage {
            topic: self.topic.clone(),
            keys: Some(heartbeat.worker_id.clone()),
            body,
            ..Default::default()
        };
        self.producer.send(&message).await
    }

    pub fn peers(&self) -> &PeerTable {
        &self.peers
    }

    /// What this worker's live sink consumers hold, for its heartbeat.
    pub fn consumer_reports(&self) -> Vec<ConsumerReport> {
        let mut consumers = super::lock(&self.consumers);
        consumers.retain(|c| c.strong_count() > 0);
        consumers
            .iter()
            .filter_map(Weak::upgrade)
            .map(|c| ConsumerReport { group: c.group().to_string(), client_id: c.client_id(), held: c.held_queues() })
            .collect()
    }

    /// Whether a heartbeat is due before its interval (and clear that).
    pub fn take_heartbeat_soon(&self) -> bool {
        self.heartbeat_soon.swap(false, Ordering::AcqRel)
    }
}

impl PeerHandoff for Membership {
    fn register(&self, consumer: Weak<QueueConsumer>) {
        super::lock(&self.consumers).push(consumer);
    }

    fn released(&self, group: &str, queue: &str, since: SystemTime, members: &[String], me: &str) -> bool {
        self.peers.released(group, queue, since, members, me)
    }

    fn let_go(&self) {
        self.heartbeat_soon.store(true, Ordering::Release);
    }
}

impl PeerTable {
    pub fn new(worker_id: &str) -> PeerTable {
        PeerTable {
            worker_id: worker_id.to_string(),
            peers: Mutex::new(BTreeMap::new()),
            listening_since: Instant::now(),
        }
    }

    /// Whether no other worker holds `queue` of `group`: see the module's
    /// top comment, and [`PeerHandoff::released`].
    pub fn released(&self, group: &str, queue: &str, since: SystemTime, members: &[String], me: &str) -> bool {
        if self.listening_since.elapsed() < HEARD_EVERYONE {
            return false;
        }
        let since_ms = since.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default();
        let peers = super::lock(&self.peers);
        peers.values().all(|peer| {
            let silent = peer.seen.elapsed();
            if silent > LIVENESS {
                return true;
            }
            let consumer = peer.heartbeat.consumers.iter().find(|c| c.group == group);
            let holds = consumer.is_some_and(|c| c.held.iter().any(|q| q == queue));
            if peer.heartbeat.sent_ms >= since_ms && !holds {
                return true;
            }
            let listed = consumer
                .and_then(|c| c.client_id.as_deref())
                .is_none_or(|client| client == me || members.iter().any(|m| m == client));
            !listed && silent >= GONE_AND_SILENT
        })
    }

    /// A heartbeat read from the topic. Old ones (a group that starts
    /// reading behind the end) and this worker's own are passed over.
    pub fn record(&self, body: &[u8]) {
        let heartbeat = match serde_json::from_slice::<Heartbeat>(body) {
            Ok(h) if h.version == HEARTBEAT_VERSION => h,
            Ok(h) => {
                tracing::debug!(worker = %h.worker_id, "passing over a heartbeat of version {}", h.version);
                return;
            }
            Err(e) => {
                tracing::warn!("passing over an unreadable heartbeat: {e}");
                return;
            }
        };
        if heartbeat.worker_id == self.worker_id
            || now_ms().saturating_sub(heartbeat.sent_ms) > LIVENESS.as_millis() as u64
        {
            return;
        }
        let mut peers = super::lock(&self.peers);
        if heartbeat.leaving {
            if peers.remove(&heartbeat.worker_id).is_some() {
                tracing::info!(worker = %heartbeat.worker_id, "a worker left the cluster");
            }
            return;
        }
        let newer = peers.get(&heartbeat.worker_id).is_none_or(|p| p.heartbeat.sent_ms <= heartbeat.sent_ms);
        if newer {
            if !peers.contains_key(&heartbeat.worker_id) {
                tracing::info!(worker = %heartbeat.worker_id, http_addr = %heartbeat.http_addr, "a worker joined the cluster");
            }
            peers.insert(heartbeat.worker_id.clone(), Peer { heartbeat, seen: Instant::now() });
        }
    }

    /// The peers heard from within [`LIVENESS`]; the others are forgotten.
    pub fn live_peers(&self) -> Vec<PeerView> {
        let mut peers = super::lock(&self.peers);
        peers.retain(|id, peer| {
            let live = peer.seen.elapsed() <= LIVENESS;
            if !live {
                tracing::warn!(worker = %id, "no heartbeat for {:?}: taken for dead", peer.seen.elapsed());
            }
            live
        });
        peers
            .values()
            .map(|p| PeerView {
                heartbeat: p.heartbeat.clone(),
                seconds_since_heartbeat: p.seen.elapsed().as_secs_f64(),
            })
            .collect()
    }
}

/// The workers that can run source connector `name`: this one, and each
/// live peer that reports the connector without a reason it cannot run it
/// (a plugin it lacks, a config it refuses: reported with no tasks).
pub fn source_candidates(this_worker: &str, name: &str, peers: &[PeerView]) -> Vec<String> {
    let able = peers.iter().filter(|peer| {
        peer.heartbeat.connectors.get(name).is_some_and(|report| report.trace.is_none() || !report.tasks.is_empty())
    });
    let mut candidates: Vec<String> =
        std::iter::once(this_worker.to_string()).chain(able.map(|p| p.heartbeat.worker_id.clone())).collect();
    candidates.sort();
    candidates.dedup();
    candidates
}

/// The owner of task `task` of source connector `name` among `candidates`:
/// the highest score of a stable hash of (worker, connector, task), so a
/// worker that joins takes only its share and one that leaves hands on
/// only its own tasks.
pub fn source_owner<'a>(candidates: &'a [String], name: &str, task: u32) -> Option<&'a str> {
    candidates.iter().max_by_key(|worker| (placement_score(worker, name, task), worker.as_str())).map(String::as_str)
}

/// FNV-1a over the parts, NUL-separated: the same on every worker and build.
fn placement_score(worker: &str, name: &str, task: u32) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in worker.bytes().chain([0]).chain(name.bytes()).chain([0]).chain(task.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    // FNV's low bits mix poorly for short inputs: finish with a mixer.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^ (hash >> 33)
}

/// Whether a live peer reports task `task` of connector `name` (running,
/// or still stopping after a hand-over).
pub fn peer_runs(peers: &[PeerView], name: &str, task: u32) -> bool {
    peers
        .iter()
        .any(|peer| peer.heartbeat.connectors.get(name).is_some_and(|report| report.tasks.iter().any(|t| t.id == task)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heartbeat(worker: &str, rows: u64) -> Heartbeat {
        let task = TaskView {
            id: 0,
            state: TaskState::Running,
            trace: None,
            worker_id: worker.into(),
            restarts: 0,
            messages: rows,
            rows_written: rows,
            dead_lettered: 0,
            lag: 3,
            queues: vec!["t/broker-a/0".into()],
        };
        let report = ConnectorReport { state: TaskState::Running, trace: None, tasks: vec![task] };
        Heartbeat::new(worker, "127.0.0.1:8083", [("c".to_string(), report)].into())
    }

    fn body(heartbeat: &Heartbeat) -> Vec<u8> {
        serde_json::to_vec(heartbeat).unwrap()
    }

    #[test]
    fn peers_are_the_others_heard_from_lately_with_their_newest_heartbeat() {
        let table = PeerTable::new("a");
        table.record(&body(&heartbeat("a", 1)));
        assert!(table.live_peers().is_empty(), "its own heartbeat is not a peer");

        let mut old = heartbeat("b", 1);
        old.sent_ms -= 60_000;
        table.record(&body(&old));
        assert!(table.live_peers().is_empty(), "a heartbeat from a minute ago is history, not a live peer");

        let (first, mut second) = (heartbeat("b", 5), heartbeat("b", 9));
        second.sent_ms = first.sent_ms + 1;
        table.record(&body(&second));
        table.record(&body(&first));
        let peers = table.live_peers();
        assert_eq!(peers.len(), 1);
        assert_eq!(peers[0].heartbeat.connectors["c"].tasks[0].rows_written, 9, "a late older heartbeat is ignored");

        let mut newer_version = heartbeat("c", 1);
        newer_version.version = HEARTBEAT_VERSION + 1;
        table.record(&body(&newer_version));
        table.record(b"{not json");
        assert_eq!(table.live_peers().len(), 1);

        let mut leaving = heartbeat("b", 9);
        leaving.leaving = true;
        table.record(&body(&leaving));
        assert!(table.live_peers().is_empty(), "a worker that says it leaves is gone at once");
    }

    #[test]
    fn a_gained_queue_is_read_once_every_peer_said_since_that_it_let_go_or_is_gone() {
        let queue = "t/broker-a/0";
        let holding = |held: &[&str], sent_ms: u64| {
            let mut h = heartbeat("b", 1);
            h.sent_ms = sent_ms;
            h.consumers = vec![ConsumerReport {
                group: "g".into(),
                client_id: Some("cid-b".into()),
                held: held.iter().map(|q| q.to_string()).collect(),
            }];
            body(&h)
        };
        let members = ["cid-a".to_string(), "cid-b".to_string()];
        let since = SystemTime::now() - Duration::from_millis(100);
        let since_ms = now_ms() - 50;
        let mut table = PeerTable::new("a");
        table.record(&holding(&[], since_ms));
        assert!(!table.released("g", queue, since, &members, "cid-a"), "not every peer may have been heard yet");

        table.listening_since = Instant::now() - HEARD_EVERYONE;
        assert!(table.released("g", queue, since, &members, "cid-a"), "b said since the gain that it holds nothing");
        let later = SystemTime::now() + Duration::from_secs(1);
        assert!(!table.released("g", queue, later, &members, "cid-a"), "a heartbeat from before the gain says nothing");

        table.record(&holding(&[queue], since_ms + 1));
        assert!(!table.released("g", queue, since, &members, "cid-a"), "b still holds it");
        assert!(table.released("other-group", queue, since, &members, "cid-a"), "b holds it for another group");
        assert!(!table.released("g", queue, since, &["cid-a".into()], "cid-a"), "b left the group but is not silent");

        super::super::lock(&table.peers).get_mut("b").unwrap().seen -= GONE_AND_SILENT;
        assert!(!table.released("g", queue, since, &members, "cid-a"), "silent but still in the group: may be writing");
        assert!(table.released("g", queue, since, &["cid-a".into()], "cid-a"), "out of the group and silent: gone");

        table.record(&holding(&[], since_ms + 2));
        assert!(table.released("g", queue, since, &members, "cid-a"), "b let go");
    }

    fn peer(worker: &str, report: Option<ConnectorReport>) -> PeerView {
        let connectors = report.map(|r| [("src".to_string(), r)].into()).unwrap_or_default();
        PeerView { heartbeat: Heartbeat::new(worker, "127.0.0.1:1", connectors), seconds_since_heartbeat: 0.0 }
    }

    #[test]
    fn each_source_task_has_one_owner_and_a_leaving_worker_moves_only_its_own() {
        let three: Vec<String> = ["a", "b", "c"].map(String::from).into();
        let owners: Vec<&str> = (0..30).map(|t| source_owner(&three, "src", t).unwrap()).collect();
        for worker in ["a", "b", "c"] {
            let share = owners.iter().filter(|o| **o == worker).count();
            assert!((4..=18).contains(&share), "{worker} owns {share} of 30: {owners:?}");
        }
        let two: Vec<String> = ["a", "c"].map(String::from).into();
        for (task, owner) in owners.iter().enumerate() {
            let now = source_owner(&two, "src", task as u32).unwrap();
            if *owner != "b" {
                assert_eq!(now, *owner, "task {task} did not belong to the leaver and stays");
            }
        }
        assert_eq!(source_owner(&[], "src", 0), None);
    }

    #[test]
    fn a_peer_that_cannot_run_the_connector_is_no_candidate_and_a_reported_task_is_taken() {
        let running = ConnectorReport { state: TaskState::Running, trace: None, tasks: Vec::new() };
        let faulted =
            ConnectorReport { state: TaskState::Failed, trace: Some("plugin missing".into()), tasks: Vec::new() };
        let mut with_task = heartbeat("d", 1).connectors.remove("c").unwrap();
        with_task.tasks[0].id = 2;
        let peers =
            vec![peer("b", Some(running)), peer("c", Some(faulted)), peer("d", Some(with_task)), peer("e", None)];
        assert_eq!(source_candidates("a", "src", &peers), ["a", "b", "d"]);
        assert!(peer_runs(&peers, "src", 2));
        assert!(!peer_runs(&peers, "src", 0));
    }
}
