//! Source positions: per connector, the position each partition (e.g.
//! `db.table`) reached, stored only after the broker acknowledged the
//! records up to it. The tasks of one connector share one store (each owns
//! different partitions). Positions outlive a deleted connector, as
//! RocketMQ Connect's do: a connector created again under the same name
//! resumes.
//!
//! - Standalone: `<data_dir>/source-positions/<connector>.json`, rewritten
//!   atomically after every acknowledged batch.
//! - Cluster: published to `rmq-openmldb-<cluster>-positions` (one queue, so
//!   one order) after every acknowledged batch, and read by every worker
//!   ([`PositionLog`]); the latest position of a partition wins. A task that
//!   starts on a worker first reads the topic up to a marker it publishes
//!   itself, so a source moved from a dead or departing worker resumes
//!   exactly where the last acknowledged send left it. Each worker keeps
//!   what it has read in `<data_dir>/cluster-positions.json`, so a restart
//!   reads only what is new; a running task republishes its positions every
//!   [`REFRESH_INTERVAL`], so they never age out of the topic's retention.

use crate::rocketmq::{ConsumeFrom, ConsumerConfig, OutgoingMessage, Producer, QueueConsumer, RocketMqError};
use crate::worker::store::write_atomically;
use rocketmq_client_rust::ClientRuntime;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// How long a starting task waits to read the positions topic to its end.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);
/// A running task republishes its positions this often, so a partition
/// whose position has not moved for days is still in the topic.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(600);
const MESSAGE_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
#[error("source positions {path}: {reason}")]
pub struct PositionError {
    pub path: String,
    pub reason: String,
}

/// Partition → position.
pub type Positions = BTreeMap<String, String>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The positions of one connector, in this worker's file or in the
/// cluster's topic.
#[derive(Clone)]
pub struct PositionStore {
    local: LocalPositions,
    shared: Option<Arc<PositionLog>>,
    connector: String,
    /// When this connector's positions were last published from here.
    published: Arc<Mutex<Option<Instant>>>,
}

impl std::fmt::Debug for PositionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PositionStore")
            .field("connector", &self.connector)
            .field("file", &self.local.path)
            .field("cluster", &self.shared.as_ref().map(|log| log.topic.clone()))
            .finish()
    }
}

impl PositionStore {
    /// Standalone: the connector's file under `data_dir`.
    pub fn open(data_dir: &Path, connector: &str) -> Result<PositionStore, PositionError> {
        Ok(PositionStore {
            local: LocalPositions::open(data_dir, connector)?,
            shared: None,
            connector: connector.to_string(),
            published: Arc::default(),
        })
    }

    /// Cluster: the cluster's topic; this worker's file is read only when
    /// the topic knows nothing of the connector (it ran standalone before).
    pub fn shared(data_dir: &Path, connector: &str, log: Arc<PositionLog>) -> Result<PositionStore, PositionError> {
        Ok(PositionStore { shared: Some(log), ..PositionStore::open(data_dir, connector)? })
    }

    /// Every partition's position; empty before the first acknowledged
    /// record. In a cluster, once everything published before this call
    /// has been read.
    pub async fn load(&self) -> Result<Positions, PositionError> {
        let Some(log) = &self.shared else { return self.local.load() };
        log.catch_up().await?;
        match log.positions(&self.connector) {
            Some(positions) => Ok(positions),
            None => self.local.load(),
        }
    }

    /// Store `reached` (merged into what is stored); returns them all.
    pub async fn save(&self, reached: &Positions) -> Result<Positions, PositionError> {
        let Some(log) = &self.shared else { return self.local.save(reached) };
        let mut all = log.positions(&self.connector).unwrap_or_default();
        if reached.is_empty() {
            return Ok(all);
        }
        log.publish(&self.connector, reached).await?;
        *lock(&self.published) = Some(Instant::now());
        all.extend(reached.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(all)
    }

    /// In a cluster, republish `positions` if they were not published
    /// within [`REFRESH_INTERVAL`] (a task that starts, or one idle for
    /// long), so they stay within the topic's retention.
    pub async fn keep_fresh(&self, positions: &Positions) -> Result<(), PositionError> {
        let due = lock(&self.published).is_none_or(|at| at.elapsed() >= REFRESH_INTERVAL);
        if self.shared.is_none() || positions.is_empty() || !due {
            return Ok(());
        }
        self.save(positions).await.map(|_| ())
    }
}

/// One connector's positions in `<data_dir>/source-positions/<connector>.json`.
#[derive(Debug, Clone)]
struct LocalPositions {
    path: PathBuf,
    /// Serialises read-merge-write among the connector's tasks.
    lock: Arc<Mutex<()>>,
}

impl LocalPositions {
    fn open(data_dir: &Path, connector: &str) -> Result<LocalPositions, PositionError> {
        let folder = data_dir.join("source-positions");
        std::fs::create_dir_all(&folder).map_err(|e| PositionError {
            path: folder.display().to_string(),
            reason: format!("cannot create the folder: {e}"),
        })?;
        Ok(LocalPositions { path: folder.join(format!("{connector}.json")), lock: Arc::new(Mutex::new(())) })
    }

    fn error(&self, reason: impl Into<String>) -> PositionError {
        PositionError { path: self.path.display().to_string(), reason: reason.into() }
    }

    fn load(&self) -> Result<Positions, PositionError> {
        let _guard = lock(&self.lock);
        self.read()
    }

    fn read(&self) -> Result<Positions, PositionError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| self.error(format!("unreadable: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(self.error(e.to_string())),
        }
    }

    /// Merge `reached` into the stored positions (durably); returns them all.
    fn save(&self, reached: &Positions) -> Result<Positions, PositionError> {
        let _guard = lock(&self.lock);
        let mut all = self.read()?;
        if reached.is_empty() {
            return Ok(all);
        }
        all.extend(reached.iter().map(|(k, v)| (k.clone(), v.clone())));
        let text = serde_json::to_vec_pretty(&all).map_err(|e| self.error(e.to_string()))?;
        write_atomically(&self.path, &text).map_err(|e| self.error(e.to_string()))?;
        Ok(all)
    }
}

pub fn positions_topic(cluster: &str) -> String {
    format!("rmq-openmldb-{cluster}-positions")
}

/// A message on the positions topic.
#[derive(Debug, Serialize, Deserialize)]
struct PositionMessage {
    version: u32,
    /// Who published it.
    worker: String,
    /// Positions a connector's task reached...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connector: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    positions: Positions,
    /// ...or a marker a worker waits to read back (everything published
    /// before it has then been read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    marker: Option<String>,
}

/// What a worker has read from the positions topic, as kept in its data
/// folder. The consumer group's name carries `epoch`, so a worker whose
/// file is gone reads the topic from its start again under a new group.
#[derive(Debug, Default, Serialize, Deserialize)]
struct PositionCache {
    epoch: String,
    connectors: BTreeMap<String, Positions>,
}

/// The cluster's source positions: published by the tasks of this worker,
/// read from every worker.
pub struct PositionLog {
    topic: String,
    worker_id: String,
    producer: Producer,
    cache_path: PathBuf,
    state: Mutex<PositionCache>,
    /// Markers published and not yet read back.
    markers: Mutex<HashMap<String, oneshot::Sender<()>>>,
    next_marker: AtomicU64,
}

impl PositionLog {
    /// Create the topic if needed, and start reading it into memory.
    /// Returns the log and the reader (stopped with `cancel`).
    pub async fn start(
        client: Arc<ClientRuntime>,
        namesrv: &str,
        cluster: &str,
        worker_id: &str,
        data_dir: &Path,
        cancel: CancellationToken,
    ) -> Result<(Arc<PositionLog>, tokio::task::JoinHandle<()>), RocketMqError> {
        let topic = positions_topic(cluster);
        let mut producer =
            Producer::start(client.clone(), namesrv, &format!("rmq-openmldb-{cluster}-{worker_id}-positions")).await?;
        if let Err(e) = producer.create_topic(&topic, 1).await {
            tracing::debug!("creating {topic}: {e}");
        }
        let cache_path = data_dir.join("cluster-positions.json");
        let kept = std::fs::read(&cache_path).ok().and_then(|b| serde_json::from_slice::<PositionCache>(&b).ok());
        let (cache, new) = match kept {
            Some(cache) if !cache.epoch.is_empty() => (cache, false),
            _ => (PositionCache { epoch: new_epoch(), connectors: BTreeMap::new() }, true),
        };
        let group = format!("rmq-openmldb-{cluster}-{worker_id}-positions-{}", cache.epoch);
        let mut config = ConsumerConfig::new(namesrv, &group, &[&topic]);
        config.consume_from = ConsumeFrom::First;
        let consumer = QueueConsumer::start(client, config).await?;
        let log = Arc::new(PositionLog {
            topic,
            worker_id: worker_id.to_string(),
            producer,
            cache_path,
            state: Mutex::new(cache),
            markers: Mutex::new(HashMap::new()),
            next_marker: AtomicU64::new(0),
        });
        if new {
            // Kept at once, so the next start reads on in the same group
            // (a worker with no source would otherwise make a group a start).
            log.save_cache();
        }
        let reader = tokio::spawn(read_positions(log.clone(), consumer, cancel));
        Ok((log, reader))
    }

    fn error(&self, reason: impl Into<String>) -> PositionError {
        PositionError { path: self.topic.clone(), reason: reason.into() }
    }

    /// The connector's positions as read so far, if any were published.
    pub fn positions(&self, connector: &str) -> Option<Positions> {
        lock(&self.state).connectors.get(connector).cloned()
    }

    /// Publish positions a task reached; returns once the broker has them.
    pub async fn publish(&self, connector: &str, positions: &Positions) -> Result<(), PositionError> {
        let message = PositionMessage {
            version: MESSAGE_VERSION,
            worker: self.worker_id.clone(),
            connector: Some(connector.to_string()),
            positions: positions.clone(),
            marker: None,
        };
        self.send(&message).await
    }

    async fn send(&self, message: &PositionMessage) -> Result<(), PositionError> {
        let body = serde_json::to_vec(message).map_err(|e| self.error(e.to_string()))?;
        let outgoing = OutgoingMessage { topic: self.topic.clone(), body, ..Default::default() };
        self.producer.send(&outgoing).await.map_err(|e| self.error(format!("publishing: {e}")))
    }

    /// Returns once everything published before the call has been read.
    pub async fn catch_up(&self) -> Result<(), PositionError> {
        let marker =
            format!("{}-{}-{}", self.worker_id, std::process::id(), self.next_marker.fetch_add(1, Ordering::Relaxed));
        let (read, reached) = oneshot::channel();
        lock(&self.markers).insert(marker.clone(), read);
        let message = PositionMessage {
            version: MESSAGE_VERSION,
            worker: self.worker_id.clone(),
            connector: None,
            positions: BTreeMap::new(),
            marker: Some(marker.clone()),
        };
        let sent = self.send(&message).await;
        let outcome = match sent {
            Ok(()) => tokio::time::timeout(CATCH_UP_TIMEOUT, reached).await.map_err(|_| {
                self.error(format!(
                    "a marker was not read back within {CATCH_UP_TIMEOUT:?}; the topic is not being read"
                ))
            }),
            Err(e) => Err(e),
        };
        lock(&self.markers).remove(&marker);
        outcome.map(|_| ())
    }

    /// One message read from the topic, in the topic's order; whether it
    /// moved a position.
    fn record(&self, body: &[u8]) -> bool {
        let message = match serde_json::from_slice::<PositionMessage>(body) {
            Ok(m) if m.version == MESSAGE_VERSION => m,
            Ok(m) => {
                tracing::warn!(worker = %m.worker, "passing over positions of version {}", m.version);
                return false;
            }
            Err(e) => {
                tracing::warn!("passing over unreadable positions: {e}");
                return false;
            }
        };
        if let Some(marker) = &message.marker {
            if let Some(read) = lock(&self.markers).remove(marker) {
                let _ = read.send(());
            }
            return false;
        }
        let Some(connector) = message.connector else { return false };
        lock(&self.state).connectors.entry(connector).or_default().extend(message.positions);
        true
    }

    fn save_cache(&self) {
        let text = serde_json::to_vec_pretty(&*lock(&self.state));
        let written = text.map_err(std::io::Error::other).and_then(|t| write_atomically(&self.cache_path, &t));
        if let Err(e) = written {
            tracing::warn!(path = %self.cache_path.display(), "keeping the positions read: {e}");
        }
    }
}

/// A name part no earlier group of this worker had.
fn new_epoch() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher
        .write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    format!("{:012x}", hasher.finish() & 0xffff_ffff_ffff)
}

/// Read the positions topic until cancelled; what is read is kept in the
/// data folder before it is acknowledged, so a restart misses nothing.
async fn read_positions(log: Arc<PositionLog>, consumer: Arc<QueueConsumer>, cancel: CancellationToken) {
    loop {
        let batch = tokio::select! {
            batch = consumer.poll(Duration::from_millis(500)) => batch,
            _ = cancel.cancelled() => break,
        };
        if batch.is_empty() {
            continue;
        }
        let mut acked = Vec::with_capacity(batch.len());
        let mut positions = false;
        for message in batch {
            positions |= log.record(&message.body);
            acked.push((message.queue.clone(), message.queue_offset));
        }
        if positions {
            log.save_cache();
        }
        consumer.ack(acked).await;
    }
    consumer.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn positions_merge_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = PositionStore::open(dir.path(), "src").unwrap();
        assert!(store.load().await.unwrap().is_empty());
        store.save(&[("db.a".to_string(), "{\"incrementing\":3}".to_string())].into()).await.unwrap();
        store.save(&[("db.b".to_string(), "{\"incrementing\":9}".to_string())].into()).await.unwrap();
        store.save(&[("db.a".to_string(), "{\"incrementing\":4}".to_string())].into()).await.unwrap();
        let again = PositionStore::open(dir.path(), "src").unwrap().load().await.unwrap();
        assert_eq!(again["db.a"], "{\"incrementing\":4}");
        assert_eq!(again["db.b"], "{\"incrementing\":9}");
    }

    #[test]
    fn position_messages_read_back_as_published() {
        let message = PositionMessage {
            version: MESSAGE_VERSION,
            worker: "w".into(),
            connector: Some("c".into()),
            positions: [("db.t".to_string(), "{\"incrementing\":7}".to_string())].into(),
            marker: None,
        };
        let text = serde_json::to_string(&message).unwrap();
        assert_eq!(text, r#"{"version":1,"worker":"w","connector":"c","positions":{"db.t":"{\"incrementing\":7}"}}"#);
        let marker: PositionMessage = serde_json::from_str(r#"{"version":1,"worker":"w","marker":"m-1"}"#).unwrap();
        assert_eq!((marker.marker.as_deref(), marker.connector, marker.positions.len()), (Some("m-1"), None, 0));
    }
}
