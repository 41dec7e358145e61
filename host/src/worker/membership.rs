//! Cluster mode: which workers are alive and what each of them runs.
//!
//! Every worker publishes a heartbeat to `rmq-openmldb-<cluster>-status`
//! (one queue) every [`HEARTBEAT_INTERVAL`]: its id, its REST address, and
//! for each connector its state and its tasks with the queues they read.
//! Every worker reads everyone's heartbeats with a consumer group of its
//! own, so each sees the whole cluster. A peer is live while its heartbeats
//! keep coming (the last one within [`LIVENESS`]); one that stops cleanly
//! says so in a last heartbeat and drops out at once. This is what status
//! is made of; queue ownership itself stays with RocketMQ's rebalancing.

use super::{TaskState, TaskView};
use crate::rocketmq::{ConsumeFrom, ConsumerConfig, OutgoingMessage, Producer, RocketMqError};
use rocketmq_client_rust::ClientRuntime;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often a worker says it is alive.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(2);
/// A peer whose last heartbeat is older than this is taken for dead.
pub const LIVENESS: Duration = Duration::from_secs(7);

const HEARTBEAT_VERSION: u32 = 1;

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
}

/// The peers heard from, by worker id.
pub struct PeerTable {
    worker_id: String,
    peers: Mutex<BTreeMap<String, Peer>>,
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
        Ok(Membership { topic, worker_id: worker_id.to_string(), producer, peers: PeerTable::new(worker_id) })
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
}

impl PeerTable {
    pub fn new(worker_id: &str) -> PeerTable {
        PeerTable { worker_id: worker_id.to_string(), peers: Mutex::new(BTreeMap::new()) }
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
}
