//! The worker: owns the connectors of this process. It validates and
//! stores their definitions, starts `max.tasks` tasks for each, pauses,
//! resumes, stops, restarts and deletes them, restarts failed tasks with
//! capped backoff, and reports their state. The REST API is a thin layer
//! over this.

pub mod config;
pub mod store;

pub use config::{WorkerConfig, WorkerConfigError};
pub use store::{ConnectorStore, StoreError, StoredConnector, TargetState};

use crate::connector::config::mask_secrets;
use crate::connector::{
    ConnectorDefinition, ConnectorKind, DefinitionError, SinkError, SinkSettings, TaskControl, TaskProgress,
    run_sink_task,
};
use crate::openmldb::ConnectorConfig;
use crate::plugin::{PluginCatalog, PluginEngine, Role};
use rocketmq_client_rust::ClientRuntime;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TaskState {
    Unassigned,
    Running,
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
#[derive(Debug, Clone, Serialize)]
pub struct TaskView {
    pub id: u32,
    pub state: TaskState,
    pub trace: Option<String>,
    pub worker_id: String,
    pub restarts: u32,
    pub messages: u64,
    pub rows_written: u64,
    pub dead_lettered: u64,
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
    cancel: CancellationToken,
    pause: watch::Sender<bool>,
    status: Arc<Mutex<TaskStatus>>,
    progress: Arc<TaskProgress>,
    handle: JoinHandle<()>,
}

struct Connector {
    definition: ConnectorDefinition,
    target: TargetState,
    /// Why a stored connector could not be read back after a restart.
    fault: Option<String>,
    tasks: Vec<TaskRunner>,
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
}

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
        let catalog = PluginCatalog::new(config.plugins_dir.clone());
        let worker = Arc::new(Worker {
            environment: TaskEnvironment { engine, catalog, client, policy },
            config,
            store,
            changes: tokio::sync::Mutex::new(()),
            connectors: Mutex::new(BTreeMap::new()),
            started: Instant::now(),
        });
        for (name, StoredConnector { config, target }) in stored {
            let (definition, fault) =
                match ConnectorDefinition::parse(&name, config.clone(), &worker.config.namesrv_addr) {
                    Ok(definition) => (definition, None),
                    Err(e) => {
                        tracing::error!(connector = %name, "stored connector is no longer valid: {e}");
                        let raw = ConnectorDefinition {
                            name: name.clone(),
                            kind: ConnectorKind::Sink,
                            max_tasks: 0,
                            posted: config.clone(),
                            config,
                        };
                        (raw, Some(e.to_string()))
                    }
                };
            let tasks = if fault.is_none() && target != TargetState::Stopped {
                worker.start_tasks(&definition, target)
            } else {
                Vec::new()
            };
            tracing::info!(connector = %name, target = ?target, "connector restored");
            lock(&worker.connectors).insert(name, Connector { definition, target, fault, tasks });
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
        let definition = ConnectorDefinition::parse(name, posted, &self.config.namesrv_addr)?;
        self.check_plugins(&definition)?;
        let _change = self.changes.lock().await;
        let existing = lock(&self.connectors).get(name).map(|c| (c.definition.posted.clone(), c.target));
        let (applied, target) = match existing {
            Some((posted, _)) if posted == definition.posted => return Ok(Applied::Unchanged),
            Some((_, target)) => (Applied::Updated, target),
            None => (Applied::Created, TargetState::Started),
        };
        self.save_with(|stored| {
            stored.insert(name.to_string(), StoredConnector { config: definition.posted.clone(), target });
        })?;
        let old_tasks = lock(&self.connectors).get_mut(name).map(|c| std::mem::take(&mut c.tasks)).unwrap_or_default();
        stop_tasks(old_tasks).await;
        let tasks = if target == TargetState::Stopped { Vec::new() } else { self.start_tasks(&definition, target) };
        tracing::info!(
            connector = name,
            "connector {}",
            if applied == Applied::Created { "created" } else { "updated" }
        );
        lock(&self.connectors).insert(name.to_string(), Connector { definition, target, fault: None, tasks });
        Ok(applied)
    }

    /// Create a connector that must not exist yet.
    pub async fn create_connector(&self, name: &str, posted: ConnectorConfig) -> Result<(), WorkerError> {
        if lock(&self.connectors).contains_key(name) {
            return Err(WorkerError::Exists(name.to_string()));
        }
        self.put_connector(name, posted).await.map(|_| ())
    }

    pub async fn delete_connector(&self, name: &str) -> Result<(), WorkerError> {
        let _change = self.changes.lock().await;
        self.require(name)?;
        self.save_with(|stored| {
            stored.remove(name);
        })?;
        let removed = lock(&self.connectors).remove(name);
        if let Some(connector) = removed {
            stop_tasks(connector.tasks).await;
        }
        tracing::info!(connector = name, "connector deleted");
        Ok(())
    }

    /// Tasks finish the batch in hand, then neither poll nor write.
    pub async fn pause_connector(&self, name: &str) -> Result<(), WorkerError> {
        let _change = self.changes.lock().await;
        if self.require(name)? == TargetState::Stopped {
            return Err(WorkerError::Conflict {
                name: name.into(),
                state: "STOPPED",
                hint: "resume or restart it to run it again",
            });
        }
        self.set_target(name, TargetState::Paused)?;
        for task in &lock(&self.connectors)[name].tasks {
            task.pause.send_replace(true);
        }
        tracing::info!(connector = name, "connector paused");
        Ok(())
    }

    /// A paused connector continues; a stopped one starts again.
    pub async fn resume_connector(&self, name: &str) -> Result<(), WorkerError> {
        let _change = self.changes.lock().await;
        let was = self.require(name)?;
        self.set_target(name, TargetState::Started)?;
        if was == TargetState::Stopped {
            self.replace_tasks(name, TargetState::Started).await;
        } else {
            for task in &lock(&self.connectors)[name].tasks {
                task.pause.send_replace(false);
            }
        }
        tracing::info!(connector = name, "connector resumed");
        Ok(())
    }

    /// Stop the tasks and keep the connector (RocketMQ Connect's stop
    /// deletes it).
    pub async fn stop_connector(&self, name: &str) -> Result<(), WorkerError> {
        let _change = self.changes.lock().await;
        self.require(name)?;
        self.set_target(name, TargetState::Stopped)?;
        let tasks = lock(&self.connectors).get_mut(name).map(|c| std::mem::take(&mut c.tasks)).unwrap_or_default();
        stop_tasks(tasks).await;
        tracing::info!(connector = name, "connector stopped");
        Ok(())
    }

    /// Stop and start every task afresh (clearing FAILED); a stopped
    /// connector starts.
    pub async fn restart_connector(&self, name: &str) -> Result<(), WorkerError> {
        let _change = self.changes.lock().await;
        let mut target = self.require(name)?;
        if target == TargetState::Stopped {
            target = TargetState::Started;
            self.set_target(name, target)?;
        }
        self.replace_tasks(name, target).await;
        tracing::info!(connector = name, "connector restarted");
        Ok(())
    }

    pub fn connector_names(&self) -> Vec<String> {
        lock(&self.connectors).keys().cloned().collect()
    }

    pub fn connector(&self, name: &str) -> Result<ConnectorView, WorkerError> {
        let connectors = lock(&self.connectors);
        let connector = connectors.get(name).ok_or_else(|| WorkerError::NotFound(name.to_string()))?;
        Ok(self.view(name, connector))
    }

    pub fn connectors(&self) -> Vec<ConnectorView> {
        lock(&self.connectors).iter().map(|(name, c)| self.view(name, c)).collect()
    }

    /// The connector's definition (secrets unmasked; for task configs).
    pub fn definition(&self, name: &str) -> Result<ConnectorDefinition, WorkerError> {
        let connectors = lock(&self.connectors);
        connectors.get(name).map(|c| c.definition.clone()).ok_or_else(|| WorkerError::NotFound(name.to_string()))
    }

    /// Stop every task (on shutdown); stored state is left as it is, so the
    /// next start resumes.
    pub async fn shutdown(&self) {
        let _change = self.changes.lock().await;
        let tasks: Vec<TaskRunner> =
            lock(&self.connectors).values_mut().flat_map(|c| std::mem::take(&mut c.tasks)).collect();
        stop_tasks(tasks).await;
    }

    fn view(&self, name: &str, connector: &Connector) -> ConnectorView {
        let tasks: Vec<TaskView> = connector
            .tasks
            .iter()
            .enumerate()
            .map(|(id, task)| {
                let status = lock(&task.status).clone();
                let state = match status.state {
                    TaskState::Running if task.progress.is_paused() => TaskState::Paused,
                    other => other,
                };
                TaskView {
                    id: id as u32,
                    state,
                    trace: status.trace,
                    worker_id: self.config.worker_id.clone(),
                    restarts: status.restarts,
                    messages: task.progress.messages(),
                    rows_written: task.progress.rows_written(),
                    dead_lettered: task.progress.dead_lettered(),
                }
            })
            .collect();
        let failed = tasks.iter().find(|t| t.state == TaskState::Failed);
        let (state, trace) = if let Some(fault) = &connector.fault {
            (TaskState::Failed, Some(fault.clone()))
        } else if let Some(task) = failed {
            (TaskState::Failed, task.trace.clone())
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
        let mut stored: BTreeMap<String, StoredConnector> = lock(&self.connectors)
            .iter()
            .map(|(name, c)| (name.clone(), StoredConnector { config: c.definition.posted.clone(), target: c.target }))
            .collect();
        change(&mut stored);
        self.store.save(&stored)
    }

    async fn replace_tasks(&self, name: &str, target: TargetState) {
        let (old, definition) = {
            let mut connectors = lock(&self.connectors);
            let Some(c) = connectors.get_mut(name) else { return };
            (std::mem::take(&mut c.tasks), c.definition.clone())
        };
        stop_tasks(old).await;
        let tasks = self.start_tasks(&definition, target);
        if let Some(c) = lock(&self.connectors).get_mut(name) {
            c.tasks = tasks;
        }
    }

    /// Every converter and transform the connector names exists and has
    /// the right role (this compiles user plugins, once).
    fn check_plugins(&self, definition: &ConnectorDefinition) -> Result<(), WorkerError> {
        let settings = SinkSettings::from_definition(definition, &self.config.namesrv_addr)?;
        let stages = std::iter::once((&settings.converter, Role::Converter))
            .chain(settings.transforms.iter().map(|t| (t, Role::Transform)));
        for (stage, role) in stages {
            let plugin = &stage.plugin;
            let load = || {
                let origin = self.environment.catalog.resolve(plugin)?;
                self.environment.engine.load(origin, Some(role))
            };
            tokio::task::block_in_place(load)
                .map_err(|e| WorkerError::Plugin(format!("{} plugin \"{plugin}\": {e}", role.name())))?;
        }
        Ok(())
    }

    fn start_tasks(&self, definition: &ConnectorDefinition, target: TargetState) -> Vec<TaskRunner> {
        (0..definition.max_tasks)
            .map(|task| {
                let cancel = CancellationToken::new();
                let (pause, paused) = watch::channel(target == TargetState::Paused);
                let progress = Arc::new(TaskProgress::default());
                let status =
                    Arc::new(Mutex::new(TaskStatus { state: TaskState::Unassigned, trace: None, restarts: 0 }));
                let control = TaskControl { cancel: cancel.clone(), paused, progress: progress.clone() };
                let settings = SinkSettings::from_definition(definition, &self.config.namesrv_addr).map(|mut s| {
                    s.task = task;
                    s.consumer.instance_name =
                        Some(format!("{}-{}-{}-{task}", self.config.worker_id, std::process::id(), definition.name));
                    s
                });
                let handle = tokio::spawn(supervise(settings, self.environment.clone(), control, status.clone()));
                TaskRunner { cancel, pause, status, progress, handle }
            })
            .collect()
    }
}

/// Cancel tasks and wait for them to persist their offsets and stop.
async fn stop_tasks(tasks: Vec<TaskRunner>) {
    for task in &tasks {
        task.cancel.cancel();
    }
    for task in tasks {
        let abort = task.handle.abort_handle();
        if tokio::time::timeout(STOP_TIMEOUT, task.handle).await.is_err() {
            tracing::warn!("a task did not stop within {STOP_TIMEOUT:?}; abandoning it");
            abort.abort();
        }
    }
}

fn set_status(status: &Mutex<TaskStatus>, state: TaskState, trace: Option<String>) {
    let mut status = lock(status);
    status.state = state;
    status.trace = trace;
}

/// Run one task; restart it after failures with capped exponential
/// backoff, unless it halted on a message it must not skip.
async fn supervise(
    settings: Result<SinkSettings, DefinitionError>,
    environment: TaskEnvironment,
    control: TaskControl,
    status: Arc<Mutex<TaskStatus>>,
) {
    let settings = match settings {
        Ok(settings) => settings,
        Err(e) => return set_status(&status, TaskState::Failed, Some(e.to_string())),
    };
    let policy = environment.policy;
    let mut attempts = 0u32;
    loop {
        set_status(&status, TaskState::Running, None);
        let started = Instant::now();
        // Its own tokio task, so a panic in it is a failure we can report.
        let run = tokio::spawn(run_sink_task(
            settings.clone(),
            environment.engine.clone(),
            environment.catalog.clone(),
            environment.client.clone(),
            control.clone(),
        ));
        let outcome = match run.await {
            Ok(result) => result.map(|_| ()),
            Err(e) => {
                Err(SinkError::Other { connector: settings.connector.clone(), message: format!("task panicked: {e}") })
            }
        };
        if control.cancel.is_cancelled() {
            return set_status(&status, TaskState::Stopped, None);
        }
        let error = match outcome {
            Ok(()) => return set_status(&status, TaskState::Stopped, None),
            Err(e @ SinkError::Halted { .. }) => return set_status(&status, TaskState::Failed, Some(e.to_string())),
            Err(e) => e,
        };
        if started.elapsed() >= HEALTHY_RUN {
            attempts = 0;
        }
        attempts += 1;
        if attempts > policy.max_attempts {
            let trace = format!("gave up after {} restarts: {error}", policy.max_attempts);
            tracing::error!(connector = %settings.connector, task = settings.task, "{trace}");
            return set_status(&status, TaskState::Failed, Some(trace));
        }
        let delay = Duration::from_secs(1u64 << (attempts - 1).min(16)).min(policy.max_backoff);
        tracing::warn!(connector = %settings.connector, task = settings.task, "task failed, restarting in {delay:?}: {error}");
        set_status(&status, TaskState::Restarting, Some(error.to_string()));
        lock(&status).restarts += 1;
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = control.cancel.cancelled() => return set_status(&status, TaskState::Stopped, None),
        }
    }
}
