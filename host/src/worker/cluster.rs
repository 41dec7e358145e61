//! Cluster mode: workers that share a cluster name share their connectors
//! through one RocketMQ topic, `rmq-openmldb-<cluster>-config`, with exactly
//! one queue (checked at start), so every worker sees the changes in the
//! same order and a change's place in that order is its generation. A REST
//! call on any worker publishes a change; every worker, the caller
//! included, applies it when it reads it back, and the caller answers with
//! what applying it did (a create of a name that exists is refused on
//! every worker alike, as they all apply the same order).
//!
//! Each worker reads with its own consumer group (its worker id, unique:
//! a second live worker with the same id is refused at start) and
//! acknowledges a change after applying and storing it. A starting worker
//! runs no task until it has caught up: it replays what was published
//! since it last read, publishes a `Sync`, and once it reads its own `Sync`
//! back waits briefly for a `Snapshot` from a worker that is already up.
//! A snapshot is the full state as of that `Sync` (the answering worker
//! has applied exactly the changes before it): it replaces the local state
//! (connectors it lacks are deleted), and changes read after the `Sync`
//! are applied on top. So a worker that was away, or is new, or whose
//! changes fell out of the topic's retention, converges.
//!
//! Nothing else is coordinated here: every worker runs every sink
//! connector's tasks in the connector's consumer group, and RocketMQ's
//! rebalancing spreads the queues over the live workers and moves them off
//! a dead one. Source tasks are placed from the heartbeats (`membership`),
//! their positions shared through the broker (`connector::positions`).

use super::WorkerError;
use super::store::{StoredConnector, TargetState};
use crate::openmldb::ConnectorConfig;
use crate::rocketmq::{ConsumeFrom, ConsumerConfig, OutgoingMessage, Producer, RocketMqError};
use rocketmq_client_rust::ClientRuntime;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// One change to the cluster's connectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    Put {
        name: String,
        config: ConnectorConfig,
        /// A create: refused where the name exists with another config.
        #[serde(default)]
        create: bool,
        /// The exact plugins it runs (see `plugin_folder::PluginPins`).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pins: BTreeMap<String, String>,
    },
    Delete {
        name: String,
    },
    Target {
        name: String,
        target: TargetState,
    },
    Restart {
        name: String,
    },
    /// A worker started: the others answer with a snapshot.
    Sync,
    /// What a worker had when it read a `Sync`, for the worker that asked:
    /// the full state as of that `Sync`, which replaces the asker's.
    Snapshot {
        to: String,
        connectors: BTreeMap<String, StoredConnector>,
    },
}

/// A change as it travels on the config topic.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub version: u32,
    /// Unique per change: `<worker>-<start time>-<counter>`.
    pub id: String,
    pub origin: String,
    pub change: Change,
}

const RECORD_VERSION: u32 = 1;

/// How long a REST call waits for its own change to come back.
pub const APPLY_TIMEOUT: Duration = Duration::from_secs(30);

pub fn config_topic(cluster: &str) -> String {
    format!("rmq-openmldb-{cluster}-config")
}

/// The publishing side, and the calls waiting for their changes.
pub struct ClusterLog {
    topic: String,
    worker_id: String,
    producer: Producer,
    started: u128,
    counter: AtomicU64,
    waiting: Mutex<HashMap<String, oneshot::Sender<Result<(), WorkerError>>>>,
}

impl ClusterLog {
    pub async fn start(
        client: Arc<ClientRuntime>,
        namesrv: &str,
        cluster: &str,
        worker_id: &str,
    ) -> Result<ClusterLog, RocketMqError> {
        let topic = config_topic(cluster);
        let mut producer = Producer::start(client, namesrv, &format!("rmq-openmldb-{cluster}-{worker_id}")).await?;
        if let Err(e) = producer.create_topic(&topic, 1).await {
            tracing::debug!("creating {topic}: {e}");
        }
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        Ok(ClusterLog {
            topic,
            worker_id: worker_id.to_string(),
            producer,
            started,
            counter: AtomicU64::new(0),
            waiting: Mutex::new(HashMap::new()),
        })
    }

    /// The consumer that reads the changes back, in this worker's own group.
    pub fn consumer_config(&self, namesrv: &str, cluster: &str) -> ConsumerConfig {
        let group = format!("rmq-openmldb-{cluster}-{}", self.worker_id);
        let mut config = ConsumerConfig::new(namesrv, &group, &[&self.topic]);
        config.consume_from = ConsumeFrom::First;
        config
    }

    /// Publish a change; the receiver gets what applying it did here.
    pub async fn publish(
        &self,
        change: Change,
    ) -> Result<(String, oneshot::Receiver<Result<(), WorkerError>>), RocketMqError> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{}-{n}", self.worker_id, self.started);
        let record = Record { version: RECORD_VERSION, id: id.clone(), origin: self.worker_id.clone(), change };
        let body = serde_json::to_vec(&record).map_err(|e| RocketMqError::client("encode change", e))?;
        let (applied, receiver) = oneshot::channel();
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone(), applied);
        let message = OutgoingMessage { topic: self.topic.clone(), keys: Some(id.clone()), body, ..Default::default() };
        if let Err(e) = self.producer.send(&message).await {
            self.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
            return Err(e);
        }
        Ok((id, receiver))
    }

    /// Tell the caller waiting for `id`, if it is here, what applying it did.
    pub fn applied(&self, id: &str, result: Result<(), WorkerError>) {
        if let Some(waiting) = self.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(id) {
            let _ = waiting.send(result);
        } else if let Err(e) = result {
            tracing::error!(change = %id, "applying a cluster change from another worker: {e}");
        }
    }

    /// Whether this worker, in this run, published `record`.
    pub fn is_mine(&self, record: &Record) -> bool {
        record.id.starts_with(&format!("{}-{}-", self.worker_id, self.started))
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }
}

/// Read a record from the topic; a record from a newer release is skipped
/// with an error in the log rather than misread.
pub fn decode(body: &[u8]) -> Option<Record> {
    match serde_json::from_slice::<Record>(body) {
        Ok(record) if record.version == RECORD_VERSION => Some(record),
        Ok(record) => {
            tracing::error!(
                "skipping a cluster change of version {} (this release reads {RECORD_VERSION})",
                record.version
            );
            None
        }
        Err(e) => {
            tracing::error!("skipping an unreadable cluster change: {e}");
            None
        }
    }
}
