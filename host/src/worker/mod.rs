//! The worker: owns the connectors of this process. It validates and
//! stores their definitions, starts `max.tasks` tasks for each, pauses,
//! resumes, stops, restarts and deletes them, restarts failed tasks with
//! capped backoff, and reports their state. The REST API is a thin layer
//! over this.

pub mod cluster;
pub mod config;
pub mod membership;
pub mod plugin_folder;
pub mod store;

pub use config::{WorkerConfig, WorkerConfigError};
pub use store::{ConnectorStore, StoreError, StoredConnector, TargetState};

use crate::connector::config::mask_secrets;
use crate::connector::{
    ConnectorDefinition, ConnectorKind, DefinitionError, PositionLog, PositionStore, SinkError, SinkSettings,
    SourceSettings, TaskControl, TaskProgress, run_sink_lane, run_source_task,
};
use crate::openmldb::ConnectorConfig;
use crate::plugin::{PluginCatalog, PluginEngine, Role};
use crate::rocketmq::{QueueConsumer, SharedConsumer};
use cluster::{Change, ClusterLog};
use membership::{ConnectorReport, Heartbeat, Membership};
use rocketmq_client_rust::ClientRuntime;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A task that ran this long without failing starts its backoff afresh.
const HEALTHY_RUN: Duration = Duration::from_secs(60);
/// How long a stopping task may take before it is abandoned.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A task's state, as RocketMQ Connect names them (plus STOPPED for a
/// connector the user stopped but kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TaskState {
    Unassigned,
    Running,
    /// Running, but not getting its batches stored (a destination that
    /// keeps failing); the trace says why.
    Degraded,
    Paused,
    Failed,
    Restarting,
    Stopped,
}

impl TaskState {
    pub fn name(self) -> &'static str {
        match self {
            TaskState::Unassigned => "UNASSIGNED",
            TaskState::Running => "RUNNING",
            TaskState::Degraded => "DEGRADED",
            TaskState::Paused => "PAUSED",
            TaskState::Failed => "FAILED",
            TaskState::Restarting => "RESTARTING",
            TaskState::Stopped => "STOPPED",
        }
    }
}

#[derive(Debug, Clone)]
struct TaskStatus {
    state: TaskState,
    trace: Option<String>,
    restarts: u32,
}

/// One task's status and counters, for the REST API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskView {
    pub id: u32,
    pub state: TaskState,
    pub trace: Option<String>,
    pub worker_id: String,
    pub restarts: u32,
    pub messages: u64,
    pub rows_written: u64,
    pub dead_lettered: u64,
    /// Messages behind the broker, summed over this task's queues.
    pub lag: i64,
    /// The queues it reads (`topic/broker/queue id`).
    #[serde(default)]
    pub queues: Vec<String>,
}

/// One task's live figures, for `/metrics`.
pub struct TaskMetrics {
    pub connector: String,
    pub task: u32,
    pub state: TaskState,
    pub restarts: u32,
    pub progress: Arc<TaskProgress>,
}

/// A connector as the REST API shows it; secrets masked.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectorView {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ConnectorKind,
    pub target: TargetState,
    pub state: TaskState,
    pub trace: Option<String>,
    pub worker_id: String,
    pub config: ConnectorConfig,
    pub tasks: Vec<TaskView>,
    /// Each plugin with its limits and grants.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<serde_json::Value>,
    /// Cluster mode: plugin name → the exact version every worker runs
    /// (`sha256:<hex>` of a plugins-folder file, or `builtin`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub pins: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Definition(#[from] DefinitionError),
    #[error("{0}")]
    Plugin(String),
    #[error("connector \"{0}\" not found")]
    NotFound(String),
    #[error("connector \"{0}\" already exists")]
    Exists(String),
    #[error("connector \"{name}\" is {state}: {hint}")]
    Conflict { name: String, state: &'static str, hint: &'static str },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cluster: {0}")]
    Cluster(String),
}

/// What `put_connector` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Created,
    Updated,
    Unchanged,
}

/// How a failed task is restarted: delay doubling from one second to
/// `max_backoff`, at most `max_attempts` times in a row.
#[derive(Debug, Clone, Copy)]
pub struct RestartPolicy {
    pub max_attempts: u32,
    pub max_backoff: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy { max_attempts: 10, max_backoff: Duration::from_secs(60) }
    }
}

struct TaskRunner {
    /// The task's number within its connector.
    id: u32,
    cancel: CancellationToken,
    pause: watch::Sender<bool>,
    status: Arc<Mutex<TaskStatus>>,
    progress: Arc<TaskProgress>,
    handle: JoinHandle<()>,
    /// A sink connector's consumer, shared by its tasks in this worker.
    consumer: Option<Arc<SharedConsumer>>,
}

struct Connector {
    definition: ConnectorDefinition,
    target: TargetState,
    /// Why a stored connector could not be read back after a restart.
    fault: Option<String>,
    /// Why the host paused it (a plugin it needs was removed).
    held: Option<String>,
    tasks: Vec<TaskRunner>,
    /// Its plugins with their limits and grants, as `/v1` shows them
    /// (worked out once: the definition does not change in place).
    plugins: Vec<serde_json::Value>,
    /// Cluster mode: the exact plugins it runs, pinned where it was put.
    pins: plugin_folder::PluginPins,
}

impl Connector {
    fn new(
        definition: ConnectorDefinition,
        target: TargetState,
        fault: Option<String>,
        tasks: Vec<TaskRunner>,
        namesrv: &str,
    ) -> Connector {
        let plugins = crate::connector::config::plugin_sandboxes(&definition, namesrv);
        Connector { definition, target, fault, held: None, tasks, plugins, pins: BTreeMap::new() }
    }
}

/// The parts a task needs from its worker.
#[derive(Clone)]
struct TaskEnvironment {
    engine: Arc<PluginEngine>,
    catalog: PluginCatalog,
    client: Arc<ClientRuntime>,
    policy: RestartPolicy,
}

pub struct Worker {
    config: WorkerConfig,
    environment: TaskEnvironment,
    store: ConnectorStore,
    /// Serialises changes (each saves the store, then starts or stops
    /// tasks); reads take only `connectors`.
    changes: tokio::sync::Mutex<()>,
    connectors: Mutex<BTreeMap<String, Connector>>,
    started: Instant,
    /// Cluster mode: where changes are published.
    cluster: OnceLock<ClusterLog>,
    /// Cluster mode: the tasks reading changes and heartbeats, and how to
    /// stop them.
    cluster_readers: Mutex<Vec<(CancellationToken, JoinHandle<()>)>>,
    /// Cluster mode: the live peers and this worker's heartbeats.
    membership: OnceLock<Arc<Membership>>,
    /// Cluster mode: the source positions every worker reads.
    position_log: OnceLock<Arc<PositionLog>>,
    /// Cluster mode: since when peers' heartbeats are read; source tasks
    /// are placed only once every live peer has been heard from.
    heartbeats_since: OnceLock<Instant>,
    plugin_folder: plugin_folder::FolderState,
    shutting_down: std::sync::atomic::AtomicBool,
    /// Whether tasks may start: in cluster mode, only once caught up.
    tasks_enabled: std::sync::atomic::AtomicBool,
    /// Cluster mode: how far joining has come.
    joining: Mutex<Joining>,
    /// Cluster mode: becomes true once this worker has caught up.
    ready: watch::Sender<bool>,
}

/// A cluster worker's way from its local store to the cluster's state.
enum Joining {
    /// Replaying what was published since this worker last read.
    Replaying,
    /// Its own `Sync` is read back: waiting for another worker's snapshot,
    /// holding the changes read meanwhile.
    AwaitingSnapshot { since: Instant, held: Vec<cluster::Record> },
    /// Caught up: changes apply as they are read.
    Ready,
}

/// How long a joining worker waits for a snapshot once its `Sync` is read
/// back (a live worker answers within a poll or two); alone, it goes on
/// with its local state.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(3);
/// How long a joining worker waits to be given the config queue, and to
/// catch up.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data; keep serving it.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Worker {
    /// Open the store and start every stored connector as it was left.
    pub async fn start(
        config: WorkerConfig,
        engine: Arc<PluginEngine>,
        client: Arc<ClientRuntime>,
        policy: RestartPolicy,
    ) -> Result<Arc<Worker>, WorkerError> {
        let store = ConnectorStore::open(&config.data_dir)?;
        let stored = store.load()?;
        let mut config = config;
        if config.cluster.is_some() && config.worker_id == config::DEFAULT_WORKER_ID {
            // Workers left at the default would share one config consumer
            // group: each gets an id of its own, kept in its data folder.
            config.worker_id = generated_worker_id(&config.data_dir)?;
        }
        let clustered = config.cluster.is_some();
        let catalog = PluginCatalog::new(config.plugins_dir.clone());
        let worker = Arc::new(Worker {
            environment: TaskEnvironment { engine, catalog, client, policy },
            config,
            store,
            changes: tokio::sync::Mutex::new(()),
            connectors: Mutex::new(BTreeMap::new()),
            started: Instant::now(),
            cluster: OnceLock::new(),
            cluster_readers: Mutex::new(Vec::new()),
            membership: OnceLock::new(),
            position_log: OnceLock::new(),
            heartbeats_since: OnceLock::new(),
            plugin_folder: Default::default(),
            shutting_down: std::sync::atomic::AtomicBool::new(false),
            tasks_enabled: std::sync::atomic::AtomicBool::new(!clustered),
            joining: Mutex::new(Joining::Replaying),
            ready: watch::Sender::new(!clustered),
        });
        // Pin the folder's valid plugins before any task loads one.
        if worker.config.plugins_dir.is_some() {
            worker.scan_folder();
        }
        for (name, StoredConnector { config, target, pins }) in stored {
            let (definition, fault) = worker.definition_or_fault(&name, config);
            let held = if fault.is_none() { worker.pin_mismatch(&definition, &pins) } else { None };
            let tasks = if fault.is_none() && held.is_none() && target != TargetState::Stopped {
                worker.start_tasks(&definition, target)
            } else {
                Vec::new()
            };
            tracing::info!(connector = %name, target = ?target, "connector restored");
            let mut connector = Connector::new(definition, target, fault, tasks, &worker.config.namesrv_addr);
            (connector.held, connector.pins) = (held, pins);
            lock(&worker.connectors).insert(name, connector);
        }
        if worker.config.plugins_dir.is_some() {
            plugin_folder::spawn_watcher(&worker);
        }
        if let Some(cluster) = worker.config.cluster.clone() {
            worker.join_cluster(&cluster).await?;
            worker.start_waiting_tasks().await;
        }
        Ok(worker)
    }

    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    pub fn catalog(&self) -> &PluginCatalog {
        &self.environment.catalog
    }

    pub fn engine(&self) -> &Arc<PluginEngine> {
        &self.environment.engine
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Validate a posted config and create the connector, or replace its
    /// config (tasks restart; the target state is kept). An identical
    /// config changes nothing.
    pub async fn put_connector(&self, name: &str, posted: ConnectorConfig) -> Result<Applied, WorkerError> {
        self.put(name, posted, false).await
    }

    /// Create a connector that must not exist yet (in cluster mode: on any
    /// worker; the first create published wins).
    pub async fn create_connector(&self, name: &str, posted: ConnectorConfig) -> Result<(), WorkerError> {
        if lock(&self.connectors).contains_key(name) {
            return Err(WorkerError::Exists(name.to_string()));
        }
        self.put(name, posted, true).await.map(|_| ())
    }

    async fn put(&self, name: &str, posted: ConnectorConfig, create: bool) -> Result<Applied, WorkerError> {
        if self.config.cluster.is_some() {
            crate::connector::config::check_secrets_are_references(&posted)?;
        }
        let definition = ConnectorDefinition::parse(name, posted, &self.config.namesrv_addr)?;
        self.check_plugins(&definition)?;
        // In a cluster, the plugins as this worker has them are the ones
        // every worker must run (putting the same config again re-pins).
        let pins = self.plugin_pins(&definition);
        let applied = match lock(&self.connectors).get(name) {
            Some(c) if c.definition.posted == definition.posted && c.fault.is_none() && c.pins == pins => {
                return Ok(Applied::Unchanged);
            }
            Some(_) => Applied::Updated,
            None => Applied::Created,
        };
        self.submit(Change::Put { name: name.to_string(), config: definition.posted, create, pins }).await?;
        Ok(applied)
    }

    pub async fn delete_connector(&self, name: &str) -> Result<(), WorkerError> {
        self.require(name)?;
        self.submit(Change::Delete { name: name.to_string() }).await
    }

    /// Tasks finish the batch in hand, then neither poll nor write.
    pub async fn pause_connector(&self, name: &str) -> Result<(), WorkerError> {
        if self.require(name)? == TargetState::Stopped {
            return Err(WorkerError::Conflict {
                name: name.into(),
                state: "STOPPED",
                hint: "resume or restart it to run it again",
            });
        }
        self.submit(Change::Target { name: name.to_string(), target: TargetState::Paused }).await
    }

    /// A paused connector continues; a stopped one starts again.
    pub async fn resume_connector(&self, name: &str) -> Result<(), WorkerError> {
        self.require(name)?;
        self.submit(Change::Target { name: name.to_string(), target: TargetState::Started }).await
    }

    /// Stop the tasks and keep the connector (RocketMQ Connect's stop
    /// deletes it).
    pub async fn stop_connector(&self, name: &str) -> Result<(), WorkerError> {
        self.require(name)?;
        self.submit(Change::Target { name: name.to_string(), target: TargetState::Stopped }).await
    }

    /// Stop and start every task afresh (clearing FAILED); a stopped
    /// connector starts.
    pub async fn restart_connector(&self, name: &str) -> Result<(), WorkerError> {
        self.require(name)?;
        self.submit(Change::Restart { name: name.to_string() }).await
    }

    /// Standalone: apply the change now. Cluster: publish it and wait
    /// until this worker has read it back and applied it, as every other
    /// worker will; the answer is what applying it did.
    async fn submit(&self, change: Change) -> Result<(), WorkerError> {
        let Some(cluster) = self.cluster.get() else {
            return self.apply(change).await;
        };
        let (_, applied) = cluster.publish(change).await.map_err(|e| WorkerError::Cluster(e.to_string()))?;
        match tokio::time::timeout(cluster::APPLY_TIMEOUT, applied).await {
            Ok(Ok(result)) => result,
            _ => Err(WorkerError::Cluster(format!(
                "the change was published but not read back within {:?}; it will apply when the config topic is read",
                cluster::APPLY_TIMEOUT
            ))),
        }
    }

    /// Make a change take effect here: store it, then start, pause or stop
    /// tasks. Idempotent, as a cluster change can be read twice.
    async fn apply(&self, change: Change) -> Result<(), WorkerError> {
        let _change = self.changes.lock().await;
        match change {
            Change::Put { name, config, create, pins } => {
                let (definition, fault) = self.definition_or_fault(&name, config);
                let target = match lock(&self.connectors).get(&name) {
                    Some(c) if c.definition.posted == definition.posted && c.fault == fault && c.pins == pins => {
                        return Ok(());
                    }
                    Some(_) if create => return Err(WorkerError::Exists(name)),
                    Some(c) => c.target,
                    None => TargetState::Started,
                };
                self.save_with(|stored| {
                    let config = definition.posted.clone();
                    stored.insert(name.clone(), StoredConnector { config, target, pins: pins.clone() });
                })?;
                let old =
                    lock(&self.connectors).get_mut(&name).map(|c| std::mem::take(&mut c.tasks)).unwrap_or_default();
                stop_tasks(old).await;
                let held = if fault.is_none() { self.pin_mismatch(&definition, &pins) } else { None };
                let tasks = if target == TargetState::Stopped || fault.is_some() || held.is_some() {
                    Vec::new()
                } else {
                    self.start_tasks(&definition, target)
                };
                if let Some(reason) = &held {
                    tracing::warn!(connector = %name, "{reason}");
                }
                tracing::info!(connector = %name, "connector stored");
                let mut connector = Connector::new(definition, target, fault, tasks, &self.config.namesrv_addr);
                (connector.held, connector.pins) = (held, pins);
                lock(&self.connectors).insert(name, connector);
            }
            Change::Delete { name } => {
                if !lock(&self.connectors).contains_key(&name) {
                    return Ok(());
                }
                self.save_with(|stored| {
                    stored.remove(&name);
                })?;
                let removed = lock(&self.connectors).remove(&name);
                if let Some(connector) = removed {
                    stop_tasks(connector.tasks).await;
                }
                tracing::info!(connector = %name, "connector deleted");
            }
            Change::Target { name, target } => {
                let Some(was) = lock(&self.connectors).get(&name).map(|c| c.target) else { return Ok(()) };
                self.set_target(&name, target)?;
                match target {
                    TargetState::Stopped => {
                        let tasks = lock(&self.connectors)
                            .get_mut(&name)
                            .map(|c| std::mem::take(&mut c.tasks))
                            .unwrap_or_default();
                        stop_tasks(tasks).await;
                    }
                    _ if was == TargetState::Stopped => self.replace_tasks(&name, target).await,
                    _ => {
                        for task in &lock(&self.connectors)[&name].tasks {
                            task.pause.send_replace(target == TargetState::Paused);
                        }
                    }
                }
                tracing::info!(connector = %name, "connector {}", target.name());
            }
            Change::Restart { name } => {
                let Some(mut target) = lock(&self.connectors).get(&name).map(|c| c.target) else { return Ok(()) };
                if target == TargetState::Stopped {
                    target = TargetState::Started;
                    self.set_target(&name, target)?;
                }
                self.replace_tasks(&name, target).await;
                tracing::info!(connector = %name, "connector restarted");
            }
            Change::Sync | Change::Snapshot { .. } => {}
        }
        Ok(())
    }

    /// Cluster mode: take the config queue, replay what was published
    /// since this worker last read, then converge on a live worker's
    /// snapshot (see `cluster`). Returns once caught up; no task runs before.
    async fn join_cluster(self: &Arc<Self>, cluster: &str) -> Result<(), WorkerError> {
        let failed = |e: crate::rocketmq::RocketMqError| WorkerError::Cluster(e.to_string());
        let client = self.environment.client.clone();
        let namesrv = self.config.namesrv_addr.as_str();
        let worker_id = self.config.worker_id.as_str();
        let log = ClusterLog::start(client.clone(), namesrv, cluster, worker_id).await.map_err(failed)?;
        let consumer = QueueConsumer::start(client, log.consumer_config(namesrv, cluster)).await.map_err(failed)?;
        let topic = log.topic().to_string();
        let given = Instant::now() + JOIN_TIMEOUT;
        while consumer.owned_queues() == 0 {
            if Instant::now() > given {
                consumer.shutdown().await;
                return Err(WorkerError::Cluster(format!(
                    "worker_id \"{worker_id}\": the config topic {topic} was not given to this worker within {JOIN_TIMEOUT:?}; \
                     another live worker of cluster \"{cluster}\" probably has the same worker_id (give each its own, \
                     or leave worker_id unset for a generated one)"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if let Some(queues) = consumer.topic_queue_count(&topic).filter(|n| *n != 1) {
            consumer.shutdown().await;
            return Err(WorkerError::Cluster(format!(
                "the config topic {topic} has {queues} queues; it must have exactly one, on one broker, so every \
                 worker reads changes in one order (recreate it: mqadmin updateTopic -t {topic} -r 1 -w 1 -b <one broker>)"
            )));
        }
        let _ = self.cluster.set(log);
        let cancel = CancellationToken::new();
        let reader = tokio::spawn(read_cluster_changes(self.clone(), consumer, cancel.clone()));
        lock(&self.cluster_readers).push((cancel, reader));
        self.start_heartbeats(cluster).await.map_err(failed)?;
        let cancel = CancellationToken::new();
        let (positions, reader) = PositionLog::start(
            self.environment.client.clone(),
            namesrv,
            cluster,
            worker_id,
            &self.config.data_dir,
            cancel.clone(),
        )
        .await
        .map_err(failed)?;
        let _ = self.position_log.set(positions);
        lock(&self.cluster_readers).push((cancel, reader));
        if let Some(log) = self.cluster.get() {
            log.publish(Change::Sync).await.map_err(failed)?;
        }
        let mut ready = self.ready.subscribe();
        match tokio::time::timeout(JOIN_TIMEOUT, ready.wait_for(|ready| *ready)).await {
            Ok(Ok(_)) => {}
            _ => {
                return Err(WorkerError::Cluster(format!(
                    "did not read its own Sync back from {topic} within {JOIN_TIMEOUT:?}"
                )));
            }
        }
        tracing::info!(cluster, worker_id, "joined the cluster and caught up");
        Ok(())
    }

    /// Start the tasks that waited for the worker to catch up.
    async fn start_waiting_tasks(&self) {
        let _change = self.changes.lock().await;
        self.tasks_enabled.store(true, std::sync::atomic::Ordering::Release);
        let waiting: Vec<(String, ConnectorDefinition, TargetState)> = lock(&self.connectors)
            .iter()
            .filter(|(_, c)| c.tasks.is_empty() && c.fault.is_none() && c.target != TargetState::Stopped)
            .map(|(name, c)| (name.clone(), c.definition.clone(), c.target))
            .collect();
        for (name, definition, target) in waiting {
            let tasks = self.start_tasks(&definition, target);
            if let Some(c) = lock(&self.connectors).get_mut(&name) {
                c.tasks = tasks;
            }
        }
    }

    /// One change read from the config topic, in the phase joining is in.
    async fn apply_cluster_change(&self, record: cluster::Record) {
        let Some(log) = self.cluster.get() else { return };
        let replaying = matches!(*lock(&self.joining), Joining::Replaying);
        if replaying {
            if matches!(record.change, Change::Sync) && log.is_mine(&record) {
                *lock(&self.joining) = Joining::AwaitingSnapshot { since: Instant::now(), held: Vec::new() };
                log.applied(&record.id, Ok(()));
                return;
            }
            // Not caught up: others' syncs are for ready workers to answer.
            let result = match record.change {
                Change::Sync | Change::Snapshot { .. } => Ok(()),
                change => self.apply(change).await,
            };
            log.applied(&record.id, result);
            return;
        }
        let for_me = matches!(&record.change, Change::Snapshot { to, .. } if to == log.worker_id());
        let snapshot = {
            let mut joining = lock(&self.joining);
            match &mut *joining {
                Joining::Ready => None,
                Joining::AwaitingSnapshot { .. } if for_me => match std::mem::replace(&mut *joining, Joining::Ready) {
                    Joining::AwaitingSnapshot { held, .. } => Some(held),
                    _ => None,
                },
                Joining::AwaitingSnapshot { held, .. } => {
                    held.push(record);
                    return;
                }
                Joining::Replaying => return,
            }
        };
        match (snapshot, record.change) {
            (Some(held), Change::Snapshot { connectors, .. }) => {
                tracing::info!(from = %record.origin, connectors = connectors.len(), "converging on a snapshot");
                let result = self.replace_state(connectors).await;
                log.applied(&record.id, result);
                for held in held {
                    self.apply_ready(log, held).await;
                }
                self.ready.send_replace(true);
            }
            (_, change) => self.apply_ready(log, cluster::Record { change, ..record }).await,
        }
    }

    /// A change read by a caught-up worker: answer others' syncs, apply
    /// the rest.
    async fn apply_ready(&self, log: &ClusterLog, record: cluster::Record) {
        let result = match record.change {
            Change::Sync if !log.is_mine(&record) => {
                let answer = Change::Snapshot { to: record.origin.clone(), connectors: self.snapshot() };
                log.publish(answer).await.map(|_| ()).map_err(|e| WorkerError::Cluster(e.to_string()))
            }
            Change::Sync | Change::Snapshot { .. } => Ok(()),
            change => self.apply(change).await,
        };
        log.applied(&record.id, result);
    }

    /// Joining alone: no snapshot came within the wait; go on with the
    /// local state and the changes held meanwhile.
    async fn stop_awaiting_snapshot(&self) {
        let held = {
            let mut joining = lock(&self.joining);
            match &*joining {
                Joining::AwaitingSnapshot { since, .. } if since.elapsed() >= SNAPSHOT_WAIT => {
                    match std::mem::replace(&mut *joining, Joining::Ready) {
                        Joining::AwaitingSnapshot { held, .. } => held,
                        _ => return,
                    }
                }
                _ => return,
            }
        };
        tracing::info!("no snapshot from another worker within {SNAPSHOT_WAIT:?}: going on with the local state");
        if let Some(log) = self.cluster.get() {
            for record in held {
                self.apply_ready(log, record).await;
            }
        }
        self.ready.send_replace(true);
    }

    /// Make the local state `connectors`: create or update each, delete
    /// the ones it lacks.
    async fn replace_state(&self, connectors: BTreeMap<String, StoredConnector>) -> Result<(), WorkerError> {
        let gone: Vec<String> =
            lock(&self.connectors).keys().filter(|n| !connectors.contains_key(*n)).cloned().collect();
        let mut result = Ok(());
        for name in gone {
            result = result.and(self.apply(Change::Delete { name }).await);
        }
        for (name, stored) in connectors {
            let put = Change::Put { name: name.clone(), config: stored.config, create: false, pins: stored.pins };
            result = result.and(self.apply(put).await);
            result = result.and(self.apply(Change::Target { name, target: stored.target }).await);
        }
        result
    }

    /// Every connector's config and target state, as stored.
    fn snapshot(&self) -> BTreeMap<String, StoredConnector> {
        lock(&self.connectors)
            .iter()
            .map(|(name, c)| {
                let stored =
                    StoredConnector { config: c.definition.posted.clone(), target: c.target, pins: c.pins.clone() };
                (name.clone(), stored)
            })
            .collect()
    }

    /// A stored or published config read back: its definition, or, if it
    /// is no longer valid here, the raw config and why.
    fn definition_or_fault(&self, name: &str, config: ConnectorConfig) -> (ConnectorDefinition, Option<String>) {
        let checked = ConnectorDefinition::parse(name, config.clone(), &self.config.namesrv_addr)
            .map_err(WorkerError::from)
            .and_then(|d| self.check_plugins(&d).map(|()| d));
        match checked {
            Ok(definition) => (definition, None),
            Err(e) => {
                tracing::error!(connector = %name, "connector cannot run here: {e}");
                let raw = ConnectorDefinition {
                    name: name.to_string(),
                    kind: ConnectorKind::Sink,
                    max_tasks: 0,
                    posted: config.clone(),
                    config,
                };
                (raw, Some(e.to_string()))
            }
        }
    }

    pub fn connector_names(&self) -> Vec<String> {
        lock(&self.connectors).keys().cloned().collect()
    }

    pub fn connector(&self, name: &str) -> Result<ConnectorView, WorkerError> {
        let connectors = lock(&self.connectors);
        let connector = connectors.get(name).ok_or_else(|| WorkerError::NotFound(name.to_string()))?;
        let view = self.view(name, connector);
        drop(connectors);
        Ok(self.with_peers(view, &self.live_peers()))
    }

    pub fn task_metrics(&self) -> Vec<TaskMetrics> {
        let connectors = lock(&self.connectors);
        let mut all = Vec::new();
        for (name, connector) in connectors.iter() {
            let view = self.view(name, connector);
            for (task, runner) in view.tasks.iter().zip(&connector.tasks) {
                all.push(TaskMetrics {
                    connector: name.clone(),
                    task: task.id,
                    state: task.state,
                    restarts: task.restarts,
                    progress: runner.progress.clone(),
                });
            }
        }
        all
    }

    /// Every connector with the tasks of every live worker.
    pub fn connectors(&self) -> Vec<ConnectorView> {
        let views = self.local_connectors();
        let peers = self.live_peers();
        views.into_iter().map(|view| self.with_peers(view, &peers)).collect()
    }

    /// The connectors as this worker alone runs them (RocketMQ Connect's
    /// `/allocated/…`).
    pub fn local_connectors(&self) -> Vec<ConnectorView> {
        lock(&self.connectors).iter().map(|(name, c)| self.view(name, c)).collect()
    }

    /// This worker's id, then the live peers'.
    pub fn live_worker_ids(&self) -> Vec<String> {
        let peers = self.live_peers().into_iter().map(|p| p.heartbeat.worker_id);
        std::iter::once(self.config.worker_id.clone()).chain(peers).collect()
    }

    /// Cluster mode: the peers heard from lately (none when standalone).
    fn live_peers(&self) -> Vec<membership::PeerView> {
        self.membership.get().map(|m| m.peers().live_peers()).unwrap_or_default()
    }

    /// A connector as the whole cluster runs it: this worker's tasks, then
    /// each live peer's; a connector failing or stalled on a peer shows so.
    fn with_peers(&self, mut view: ConnectorView, peers: &[membership::PeerView]) -> ConnectorView {
        for peer in peers {
            let Some(report) = peer.heartbeat.connectors.get(&view.name) else { continue };
            view.tasks.extend(report.tasks.iter().cloned());
            let worse = matches!(report.state, TaskState::Failed | TaskState::Degraded)
                && matches!(view.state, TaskState::Running | TaskState::Unassigned);
            if worse {
                view.state = report.state;
                view.trace = Some(format!(
                    "on worker {}: {}",
                    peer.heartbeat.worker_id,
                    report.trace.as_deref().unwrap_or("no reason given")
                ));
            }
        }
        view
    }

    /// What this worker's heartbeat says: each connector as it runs here.
    fn heartbeat(&self) -> Heartbeat {
        let connectors = lock(&self.connectors)
            .iter()
            .map(|(name, c)| {
                let view = self.view(name, c);
                (name.clone(), ConnectorReport { state: view.state, trace: view.trace, tasks: view.tasks })
            })
            .collect();
        let mut heartbeat = Heartbeat::new(&self.config.worker_id, &self.config.http_addr.to_string(), connectors);
        if let Some(membership) = self.membership.get() {
            heartbeat.consumers = membership.consumer_reports();
        }
        heartbeat
    }

    /// Every live worker and what it runs, this one first; `/v1/cluster`.
    pub fn cluster_view(&self) -> serde_json::Value {
        let own = self.heartbeat();
        let mut workers = vec![serde_json::json!({
            "worker_id": own.worker_id,
            "http_addr": own.http_addr,
            "this_worker": true,
            "seconds_since_heartbeat": 0.0,
            "connectors": own.connectors,
        })];
        for peer in self.live_peers() {
            workers.push(serde_json::json!({
                "worker_id": peer.heartbeat.worker_id,
                "http_addr": peer.heartbeat.http_addr,
                "this_worker": false,
                "seconds_since_heartbeat": peer.seconds_since_heartbeat,
                "connectors": peer.heartbeat.connectors,
            }));
        }
        serde_json::json!({"cluster": self.config.cluster, "workers": workers})
    }

    /// Cluster mode: publish heartbeats and read the peers'.
    async fn start_heartbeats(self: &Arc<Self>, cluster: &str) -> Result<(), crate::rocketmq::RocketMqError> {
        let client = self.environment.client.clone();
        let namesrv = self.config.namesrv_addr.as_str();
        let membership = Arc::new(Membership::start(client.clone(), namesrv, cluster, &self.config.worker_id).await?);
        let consumer = QueueConsumer::start(client, membership.consumer_config(namesrv, cluster)).await?;
        let _ = self.membership.set(membership.clone());
        let _ = self.heartbeats_since.set(Instant::now());
        let cancel = CancellationToken::new();
        let exchange = tokio::spawn(exchange_heartbeats(self.clone(), membership, consumer, cancel.clone()));
        lock(&self.cluster_readers).push((cancel, exchange));
        Ok(())
    }

    /// The connector's definition (secrets unmasked; for task configs).
    pub fn definition(&self, name: &str) -> Result<ConnectorDefinition, WorkerError> {
        let connectors = lock(&self.connectors);
        connectors.get(name).map(|c| c.definition.clone()).ok_or_else(|| WorkerError::NotFound(name.to_string()))
    }

    /// Stop every task (on shutdown); stored state is left as it is, so the
    /// next start resumes.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(std::sync::atomic::Ordering::Acquire)
    }

    pub async fn shutdown(&self) {
        self.shutting_down.store(true, std::sync::atomic::Ordering::Release);
        // Tasks first: in a cluster, a source task publishes its last
        // positions and is still reported until it has stopped, so no peer
        // takes it over before; the leaving heartbeat comes after.
        self.stop_all_tasks().await;
        let readers = std::mem::take(&mut *lock(&self.cluster_readers));
        for (cancel, reader) in readers {
            cancel.cancel();
            let _ = reader.await;
        }
        // Any a change read meanwhile started.
        self.stop_all_tasks().await;
    }

    async fn stop_all_tasks(&self) {
        let _change = self.changes.lock().await;
        let tasks: Vec<TaskRunner> =
            lock(&self.connectors).values_mut().flat_map(|c| std::mem::take(&mut c.tasks)).collect();
        stop_tasks(tasks).await;
    }

    fn view(&self, name: &str, connector: &Connector) -> ConnectorView {
        let tasks: Vec<TaskView> = connector
            .tasks
            .iter()
            .map(|task| {
                let status = lock(&task.status).clone();
                let degraded = task.progress.degraded();
                let (state, trace) = match (status.state, degraded) {
                    (TaskState::Running, _) if task.progress.is_paused() => (TaskState::Paused, status.trace),
                    (TaskState::Running, Some(degraded)) => (
                        TaskState::Degraded,
                        Some(format!("for {} s: {}", degraded.since.elapsed().as_secs(), degraded.reason)),
                    ),
                    (state, _) => (state, status.trace),
                };
                TaskView {
                    id: task.id,
                    state,
                    trace,
                    worker_id: self.config.worker_id.clone(),
                    restarts: status.restarts,
                    messages: task.progress.messages(),
                    rows_written: task.progress.rows_written(),
                    dead_lettered: task.progress.dead_lettered(),
                    lag: task.progress.lag().values().sum(),
                    queues: task.progress.lag().into_keys().collect(),
                }
            })
            .collect();
        let failed = tasks.iter().find(|t| t.state == TaskState::Failed);
        let degraded = tasks.iter().find(|t| t.state == TaskState::Degraded);
        let (state, trace) = if let Some(fault) = &connector.fault {
            (TaskState::Failed, Some(fault.clone()))
        } else if let Some(held) = &connector.held {
            (TaskState::Paused, Some(held.clone()))
        } else if let Some(task) = failed {
            (TaskState::Failed, task.trace.clone())
        } else if let Some(task) = degraded
            && connector.target == TargetState::Started
        {
            (TaskState::Degraded, task.trace.clone())
        } else {
            let state = match connector.target {
                TargetState::Started => TaskState::Running,
                TargetState::Paused => TaskState::Paused,
                TargetState::Stopped => TaskState::Stopped,
            };
            (state, None)
        };
        ConnectorView {
            name: name.to_string(),
            kind: connector.definition.kind,
            target: connector.target,
            state,
            trace,
            worker_id: self.config.worker_id.clone(),
            config: mask_secrets(&connector.definition.posted),
            tasks,
            plugins: connector.plugins.clone(),
            pins: connector.pins.clone(),
        }
    }

    /// The target state, or NotFound.
    fn require(&self, name: &str) -> Result<TargetState, WorkerError> {
        lock(&self.connectors).get(name).map(|c| c.target).ok_or_else(|| WorkerError::NotFound(name.to_string()))
    }

    fn set_target(&self, name: &str, target: TargetState) -> Result<(), WorkerError> {
        self.save_with(|stored| {
            if let Some(c) = stored.get_mut(name) {
                c.target = target;
            }
        })?;
        if let Some(c) = lock(&self.connectors).get_mut(name) {
            c.target = target;
        }
        Ok(())
    }

    /// Save the store as it would be after `change`; the caller applies
    /// the change in memory only if this succeeds.
    fn save_with(&self, change: impl FnOnce(&mut BTreeMap<String, StoredConnector>)) -> Result<(), StoreError> {
        let mut stored = self.snapshot();
        change(&mut stored);
        self.store.save(&stored)
    }

    async fn replace_tasks(&self, name: &str, target: TargetState) {
        let (old, definition, held) = {
            let mut connectors = lock(&self.connectors);
            let Some(c) = connectors.get_mut(name) else { return };
            (std::mem::take(&mut c.tasks), c.definition.clone(), c.held.is_some())
        };
        stop_tasks(old).await;
        // A held connector (a plugin missing or not the pinned one) runs
        // nothing here until the hold is lifted.
        let tasks = if held { Vec::new() } else { self.start_tasks(&definition, target) };
        if let Some(c) = lock(&self.connectors).get_mut(name) {
            c.tasks = tasks;
        }
    }

    /// Every converter and transform the connector names exists and has
    /// the right role (this compiles user plugins, once).
    fn check_plugins(&self, definition: &ConnectorDefinition) -> Result<(), WorkerError> {
        let plugins: Vec<(String, Role)> = match definition.kind {
            ConnectorKind::Sink => SinkSettings::from_definition(definition, &self.config.namesrv_addr)?.plugins(),
            ConnectorKind::Source => {
                let settings = SourceSettings::for_tasks(definition, &self.config.namesrv_addr)?;
                settings.into_iter().take(1).map(|s| (s.plugin, Role::Source)).collect()
            }
        };
        for (plugin, role) in plugins {
            let load = || {
                let origin = self.environment.catalog.resolve(&plugin)?;
                self.environment.engine.load(origin, Some(role))
            };
            tokio::task::block_in_place(load)
                .map_err(|e| WorkerError::Plugin(format!("{} plugin \"{plugin}\": {e}", role.name())))?;
        }
        Ok(())
    }

    fn start_tasks(&self, definition: &ConnectorDefinition, target: TargetState) -> Vec<TaskRunner> {
        if !self.tasks_enabled.load(std::sync::atomic::Ordering::Acquire) {
            // A cluster worker still catching up: started once it has.
            return Vec::new();
        }
        let namesrv = &self.config.namesrv_addr;
        let plans: Vec<Result<TaskPlan, String>> = match definition.kind {
            // One consumer for all the connector's tasks here: each task
            // reads its own lane of queues, so the tasks of one worker never
            // take queues from each other.
            ConnectorKind::Sink => match SinkSettings::from_definition(definition, namesrv) {
                Ok(settings) => {
                    let mut consumer = settings.consumer.clone();
                    consumer.lanes = definition.max_tasks as usize;
                    consumer.instance_name =
                        Some(format!("{}-{}-{}", self.config.worker_id, std::process::id(), definition.name));
                    // In a cluster, a gained queue waits for its previous
                    // holder's word that it let go.
                    consumer.peers = self.membership.get().map(|m| {
                        crate::rocketmq::consumer::Peers(m.clone() as Arc<dyn crate::rocketmq::consumer::PeerHandoff>)
                    });
                    let shared = SharedConsumer::new(self.environment.client.clone(), consumer);
                    (0..definition.max_tasks)
                        .map(|task| {
                            let mut settings = settings.clone();
                            settings.task = task;
                            Ok(TaskPlan::Sink(Box::new(settings), shared.clone()))
                        })
                        .collect()
                }
                Err(e) => vec![Err(e.to_string())],
            },
            ConnectorKind::Source => {
                let here = self.source_tasks_placed_here(&definition.name, definition, &self.live_peers());
                return self.start_source_tasks(definition, target, &here);
            }
        };
        plans.into_iter().enumerate().map(|(id, plan)| self.spawn_task(id as u32, plan, target)).collect()
    }

    /// A source connector's tasks numbered `ids` (in a cluster, the ones
    /// placed on this worker; standalone, all).
    fn start_source_tasks(
        &self,
        definition: &ConnectorDefinition,
        target: TargetState,
        ids: &[u32],
    ) -> Vec<TaskRunner> {
        let positions = match self.position_log.get() {
            Some(log) => PositionStore::shared(&self.config.data_dir, &definition.name, log.clone()),
            None => PositionStore::open(&self.config.data_dir, &definition.name),
        };
        match (SourceSettings::for_tasks(definition, &self.config.namesrv_addr), positions) {
            (Ok(all), Ok(positions)) => all
                .into_iter()
                .filter(|s| ids.contains(&s.task))
                .map(|s| self.spawn_task(s.task, Ok(TaskPlan::Source(s, positions.clone())), target))
                .collect(),
            (Err(e), _) => vec![self.spawn_task(0, Err(e.to_string()), target)],
            (_, Err(e)) => vec![self.spawn_task(0, Err(e.to_string()), target)],
        }
    }

    /// Which of a source connector's tasks run here. Standalone: all of
    /// them. Cluster: each task has one owner among the live workers that
    /// can run the connector (rendezvous hashing over their ids, so a
    /// worker that joins or leaves moves only its share); a task starts on
    /// its owner only once no live peer reports it any more (a previous
    /// owner finishes its batch and publishes its positions first), and
    /// only after this worker has heard every live peer's heartbeat.
    fn source_tasks_placed_here(
        &self,
        name: &str,
        definition: &ConnectorDefinition,
        peers: &[membership::PeerView],
    ) -> Vec<u32> {
        let count = SourceSettings::for_tasks(definition, &self.config.namesrv_addr).map(|t| t.len()).unwrap_or(1);
        let all = (0..count as u32).collect();
        if self.config.cluster.is_none() {
            return all;
        }
        let heard_everyone = self.heartbeats_since.get().is_some_and(|since| since.elapsed() >= membership::LIVENESS);
        if !heard_everyone {
            return Vec::new();
        }
        let candidates = membership::source_candidates(&self.config.worker_id, name, peers);
        all.into_iter()
            .filter(|task| {
                membership::source_owner(&candidates, name, *task) == Some(self.config.worker_id.as_str())
                    && !membership::peer_runs(peers, name, *task)
            })
            .collect()
    }

    /// Cluster mode, every heartbeat round: start the source tasks this
    /// worker now owns, and hand over those it no longer owns (cancelled
    /// here, reported until they have stopped, then dropped).
    async fn place_sources(&self) {
        let enabled = self.tasks_enabled.load(std::sync::atomic::Ordering::Acquire);
        if self.config.cluster.is_none() || !enabled || self.is_shutting_down() {
            return;
        }
        // A change in progress restarts tasks itself; place next round.
        let Ok(_change) = self.changes.try_lock() else { return };
        let peers = self.live_peers();
        let me = self.config.worker_id.clone();
        let mut starts = Vec::new();
        for (name, connector) in lock(&self.connectors).iter_mut() {
            if connector.definition.kind != ConnectorKind::Source {
                continue;
            }
            connector.tasks.retain(|t| !(t.cancel.is_cancelled() && t.handle.is_finished()));
            let runnable = connector.fault.is_none() && connector.held.is_none();
            if !runnable || connector.target == TargetState::Stopped {
                continue;
            }
            let candidates = membership::source_candidates(&me, name, &peers);
            for task in &connector.tasks {
                let owner = membership::source_owner(&candidates, name, task.id);
                if !task.cancel.is_cancelled() && owner != Some(me.as_str()) {
                    tracing::info!(connector = %name, task = task.id, to = ?owner, "handing a source task over");
                    task.cancel.cancel();
                }
            }
            // A task still here (running, or stopping after a hand-over) is
            // not started again.
            let here: Vec<u32> = connector.tasks.iter().map(|t| t.id).collect();
            let placed = self.source_tasks_placed_here(name, &connector.definition, &peers);
            let new: Vec<u32> = placed.into_iter().filter(|t| !here.contains(t)).collect();
            if !new.is_empty() {
                starts.push((name.clone(), connector.definition.clone(), connector.target, new));
            }
        }
        for (name, definition, target, ids) in starts {
            tracing::info!(connector = %name, tasks = ?ids, "taking source tasks over");
            let tasks = self.start_source_tasks(&definition, target, &ids);
            if let Some(c) = lock(&self.connectors).get_mut(&name) {
                c.tasks.extend(tasks);
                c.tasks.sort_by_key(|t| t.id);
            }
        }
    }

    /// Start one task under supervision.
    fn spawn_task(&self, id: u32, plan: Result<TaskPlan, String>, target: TargetState) -> TaskRunner {
        let cancel = CancellationToken::new();
        let (pause, paused) = watch::channel(target == TargetState::Paused);
        let progress = Arc::new(TaskProgress::default());
        let status = Arc::new(Mutex::new(TaskStatus { state: TaskState::Unassigned, trace: None, restarts: 0 }));
        let control = TaskControl { cancel: cancel.clone(), paused, progress: progress.clone() };
        let consumer = match &plan {
            Ok(TaskPlan::Sink(_, consumer)) => Some(consumer.clone()),
            _ => None,
        };
        let handle = tokio::spawn(supervise(plan, self.environment.clone(), control, status.clone()));
        TaskRunner { id, cancel, pause, status, progress, handle, consumer }
    }
}

/// Cluster mode: apply each change read from the config topic, then
/// acknowledge it (so a restart reads on from there).
async fn read_cluster_changes(worker: Arc<Worker>, consumer: Arc<QueueConsumer>, cancel: CancellationToken) {
    let mut lost_since: Option<Instant> = None;
    loop {
        let batch = tokio::select! {
            batch = consumer.poll(Duration::from_millis(500)) => batch,
            _ = cancel.cancelled() => break,
        };
        for message in batch {
            if let Some(record) = cluster::decode(&message.body) {
                worker.apply_cluster_change(record).await;
            }
            consumer.ack([(message.queue.clone(), message.queue_offset)]).await;
        }
        worker.stop_awaiting_snapshot().await;
        // The config queue taken by a newcomer with this worker's id.
        match (consumer.owned_queues(), lost_since) {
            (0, None) => lost_since = Some(Instant::now()),
            (0, Some(since)) if since.elapsed() > JOIN_TIMEOUT => {
                tracing::error!(
                    worker_id = %worker.config.worker_id,
                    "this worker no longer reads the cluster's config topic: another worker with the same worker_id \
                     took it; changes made elsewhere do not reach this worker until it is restarted with its own id"
                );
                lost_since = Some(Instant::now());
            }
            (0, Some(_)) => {}
            _ => lost_since = None,
        }
    }
    consumer.shutdown().await;
}

/// Cluster mode: say this worker is alive every heartbeat interval, and
/// record the peers' heartbeats; on stop, say it leaves.
async fn exchange_heartbeats(
    worker: Arc<Worker>,
    membership: Arc<Membership>,
    consumer: Arc<QueueConsumer>,
    cancel: CancellationToken,
) {
    let mut last_sent: Option<Instant> = None;
    loop {
        let due = last_sent.is_none_or(|sent| sent.elapsed() >= membership::HEARTBEAT_INTERVAL);
        if membership.take_heartbeat_soon() || due {
            if let Err(e) = membership.publish(&worker.heartbeat()).await {
                tracing::warn!("publishing this worker's heartbeat: {e}");
            }
            last_sent = Some(Instant::now());
        }
        let batch = tokio::select! {
            batch = consumer.poll(Duration::from_millis(500)) => batch,
            _ = cancel.cancelled() => break,
        };
        for message in batch {
            membership.peers().record(&message.body);
            consumer.ack([(message.queue.clone(), message.queue_offset)]).await;
        }
        worker.place_sources().await;
    }
    let mut last = worker.heartbeat();
    last.leaving = true;
    if let Err(e) = membership.publish(&last).await {
        tracing::warn!("publishing this worker's last heartbeat: {e}");
    }
    consumer.shutdown().await;
}

/// Cancel tasks, wait for them to stop (aborting those that do not within
/// the stop timeout), then commit and stop the consumers they shared.
async fn stop_tasks(tasks: Vec<TaskRunner>) {
    for task in &tasks {
        task.cancel.cancel();
    }
    let mut consumers: Vec<Arc<SharedConsumer>> = Vec::new();
    let stops = tasks.into_iter().map(|task| {
        if let Some(consumer) = &task.consumer
            && !consumers.iter().any(|c| Arc::ptr_eq(c, consumer))
        {
            consumers.push(consumer.clone());
        }
        async move {
            let abort = task.handle.abort_handle();
            if tokio::time::timeout(STOP_TIMEOUT, task.handle).await.is_err() {
                tracing::warn!("a task did not stop within {STOP_TIMEOUT:?}; aborting it");
                abort.abort();
            }
        }
    });
    // All at once: one stuck task costs one timeout, not one each.
    futures::future::join_all(stops.collect::<Vec<_>>()).await;
    for consumer in consumers {
        consumer.shutdown().await;
    }
}

/// A worker id of its own for a cluster worker left at the default, made
/// once and kept in `<data_dir>/worker-id`.
fn generated_worker_id(data_dir: &std::path::Path) -> Result<String, WorkerError> {
    use std::hash::{BuildHasher, Hasher};
    let path = data_dir.join("worker-id");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let id = text.trim();
        if !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Ok(id.to_string());
        }
    }
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher
        .write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    hasher.write_u32(std::process::id());
    let id = format!("worker-{:016x}", hasher.finish());
    std::fs::write(&path, format!("{id}\n"))
        .map_err(|e| WorkerError::Cluster(format!("cannot keep the generated worker id in {}: {e}", path.display())))?;
    tracing::info!(worker_id = %id, "generated a worker id for this cluster worker");
    Ok(id)
}

/// Aborts a spawned task when dropped, so aborting a supervisor also ends
/// the task it runs.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn set_status(status: &Mutex<TaskStatus>, state: TaskState, trace: Option<String>) {
    let mut status = lock(status);
    status.state = state;
    status.trace = trace;
}

/// What one task runs.
enum TaskPlan {
    /// A sink task on its lane (`settings.task`) of the connector's consumer.
    Sink(Box<SinkSettings>, Arc<SharedConsumer>),
    Source(SourceSettings, PositionStore),
}

impl TaskPlan {
    fn connector(&self) -> &str {
        match self {
            TaskPlan::Sink(s, _) => &s.connector,
            TaskPlan::Source(s, _) => &s.connector,
        }
    }

    fn task(&self) -> u32 {
        match self {
            TaskPlan::Sink(s, _) => s.task,
            TaskPlan::Source(s, _) => s.task,
        }
    }

    /// Run the task once; `Err((permanent, reason))` when it failed.
    async fn run(&self, environment: &TaskEnvironment, control: &TaskControl) -> Result<(), (bool, String)> {
        // Its own tokio task, so a panic in it is a failure we can report.
        let run = match self {
            TaskPlan::Sink(settings, consumer) => tokio::spawn({
                let (settings, consumer) = (settings.as_ref().clone(), consumer.clone());
                let (engine, catalog, client, control) = (
                    environment.engine.clone(),
                    environment.catalog.clone(),
                    environment.client.clone(),
                    control.clone(),
                );
                async move {
                    let consumer = consumer.get().await.map_err(|e| (false, e.to_string()))?;
                    let lane = settings.task as usize;
                    run_sink_lane(settings, engine, catalog, client, consumer, lane, control)
                        .await
                        .map(|_| ())
                        .map_err(|e| (matches!(e, SinkError::Halted { .. }), e.to_string()))
                }
            }),
            TaskPlan::Source(settings, positions) => tokio::spawn({
                let task = run_source_task(
                    settings.clone(),
                    environment.engine.clone(),
                    environment.catalog.clone(),
                    environment.client.clone(),
                    positions.clone(),
                    control.clone(),
                );
                async move { task.await.map(|_| ()).map_err(|e| (e.is_permanent(), e.to_string())) }
            }),
        };
        let mut run = AbortOnDrop(run);
        match (&mut run.0).await {
            Ok(result) => result,
            Err(e) => Err((false, format!("connector {}: task panicked: {e}", self.connector()))),
        }
    }
}

/// Run one task; restart it after failures with capped exponential
/// backoff, unless it failed in a way a restart cannot mend (a message
/// it must not skip, a configuration the plugin refuses).
async fn supervise(
    plan: Result<TaskPlan, String>,
    environment: TaskEnvironment,
    control: TaskControl,
    status: Arc<Mutex<TaskStatus>>,
) {
    let plan = match plan {
        Ok(plan) => plan,
        Err(e) => return set_status(&status, TaskState::Failed, Some(e)),
    };
    let policy = environment.policy;
    let mut attempts = 0u32;
    loop {
        set_status(&status, TaskState::Running, None);
        let started = Instant::now();
        let outcome = plan.run(&environment, &control).await;
        if control.cancel.is_cancelled() {
            return set_status(&status, TaskState::Stopped, None);
        }
        let error = match outcome {
            Ok(()) => return set_status(&status, TaskState::Stopped, None),
            Err((true, reason)) => return set_status(&status, TaskState::Failed, Some(reason)),
            Err((false, reason)) => reason,
        };
        if started.elapsed() >= HEALTHY_RUN {
            attempts = 0;
        }
        attempts += 1;
        if attempts > policy.max_attempts {
            let trace = format!("gave up after {} restarts: {error}", policy.max_attempts);
            tracing::error!(connector = %plan.connector(), task = plan.task(), "{trace}");
            return set_status(&status, TaskState::Failed, Some(trace));
        }
        let delay = Duration::from_secs(1u64 << (attempts - 1).min(16)).min(policy.max_backoff);
        tracing::warn!(connector = %plan.connector(), task = plan.task(), "task failed, restarting in {delay:?}: {error}");
        set_status(&status, TaskState::Restarting, Some(error));
        lock(&status).restarts += 1;
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = control.cancel.cancelled() => return set_status(&status, TaskState::Stopped, None),
        }
    }
}
