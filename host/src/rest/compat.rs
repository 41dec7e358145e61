//! RocketMQ Connect's REST routes, as its runtime serves them: mostly GET,
//! HTTP 200 always, `{"status":200,"body":…}` on success and
//! `{"errorCode":400|500,"message":"…"}` on failure. `/connectors/{name}/stop`
//! deletes, as there; `/v1/` has the non-destructive stop.

use super::{parse_config_body, plugin_entries};
use crate::connector::config::{mask_secrets, task_configs};
use crate::openmldb::ConnectorConfig;
use crate::worker::{Applied, ConnectorView, TaskState, Worker, WorkerError};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

type Shared = State<Arc<Worker>>;

pub fn routes() -> Router<Arc<Worker>> {
    Router::new()
        .route("/connectors/list", get(list))
        .route("/connectors/pause/all", get(pause_all))
        .route("/connectors/resume/all", get(resume_all))
        .route("/connectors/stop/all", get(stop_all))
        .route("/connectors/{name}", get(create_from_query).post(create_from_body))
        .route("/connectors/{name}/config", get(config))
        .route("/connectors/{name}/status", get(status))
        .route("/connectors/{name}/tasks", get(tasks))
        .route("/connectors/{name}/tasks/{task}/status", get(task_status))
        .route("/connectors/{name}/pause", get(pause))
        .route("/connectors/{name}/resume", get(resume))
        .route("/connectors/{name}/stop", get(stop))
        .route("/getClusterInfo", get(cluster_info))
        .route("/allocated/connectors", get(allocated_connectors))
        .route("/allocated/tasks", get(allocated_tasks))
        .route("/plugin/reload", get(plugin_reload))
        .route("/plugin/list", get(plugin_list))
        .route("/plugin/list/connectors", get(plugin_list_connectors))
}

fn ok(body: impl Serialize) -> Response {
    axum::Json(json!({"status": 200, "body": body})).into_response()
}

fn error(code: u16, message: impl std::fmt::Display) -> Response {
    axum::Json(json!({"errorCode": code, "message": message.to_string()})).into_response()
}

fn worker_error(e: WorkerError) -> Response {
    let code = if matches!(e, WorkerError::Store(_) | WorkerError::Cluster(_)) { 500 } else { 400 };
    error(code, e)
}

async fn create(worker: &Worker, name: &str, config: ConnectorConfig) -> Response {
    // Connect echoes the posted config; secrets are masked here as on every route.
    let echo = mask_secrets(&config);
    match worker.put_connector(name, config).await {
        Ok(Applied::Unchanged) => error(400, "Connector with same config already exist."),
        Ok(_) => ok(echo),
        Err(e) => worker_error(e),
    }
}

async fn create_from_body(State(worker): Shared, Path(name): Path<String>, body: Bytes) -> Response {
    match parse_config_body(&body) {
        Ok(config) => create(&worker, &name, config).await,
        Err(message) => error(400, message),
    }
}

/// `GET /connectors/{name}?config=<url-encoded JSON>`.
async fn create_from_query(
    State(worker): Shared,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(text) = query.get("config") else {
        return error(400, "query parameter \"config\" is missing: pass the connector's JSON config");
    };
    match parse_config_body(text.as_bytes()) {
        Ok(config) => create(&worker, &name, config).await,
        Err(message) => error(400, message),
    }
}

fn state_info(view: &ConnectorView) -> Value {
    json!({
        "name": view.name,
        "connector": {"state": view.state, "trace": view.trace, "workerId": view.worker_id},
        "tasks": view.tasks.iter().map(task_state_info).collect::<Vec<_>>(),
        "type": view.kind,
    })
}

fn task_state_info(task: &crate::worker::TaskView) -> Value {
    json!({"id": task.id, "state": task.state, "trace": task.trace, "workerId": task.worker_id})
}

fn connector_info(view: &ConnectorView) -> Value {
    json!({
        "name": view.name,
        "config": view.config,
        "tasks": view.tasks.iter().map(|t| json!({"connector": view.name, "task": t.id})).collect::<Vec<_>>(),
        "type": view.kind,
    })
}

async fn list(State(worker): Shared) -> Response {
    let all: BTreeMap<String, Value> = worker
        .connectors()
        .iter()
        .map(|v| (v.name.clone(), json!({"status": state_info(v), "info": connector_info(v)})))
        .collect();
    ok(all)
}

async fn config(State(worker): Shared, Path(name): Path<String>) -> Response {
    match worker.connector(&name) {
        Ok(view) => ok(connector_info(&view)),
        Err(e) => worker_error(e),
    }
}

async fn status(State(worker): Shared, Path(name): Path<String>) -> Response {
    match worker.connector(&name) {
        Ok(view) => ok(state_info(&view)),
        Err(e) => worker_error(e),
    }
}

async fn tasks(State(worker): Shared, Path(name): Path<String>) -> Response {
    match worker.definition(&name) {
        Ok(definition) => {
            let tasks: Vec<Value> = task_configs(&definition)
                .into_iter()
                .enumerate()
                .map(|(task, config)| json!({"id": {"connector": name, "task": task}, "config": config}))
                .collect();
            ok(tasks)
        }
        Err(e) => worker_error(e),
    }
}

async fn task_status(State(worker): Shared, Path((name, task)): Path<(String, String)>) -> Response {
    let view = match worker.connector(&name) {
        Ok(view) => view,
        Err(e) => return worker_error(e),
    };
    match task.parse::<u32>().ok().and_then(|id| view.tasks.iter().find(|t| t.id == id)) {
        Some(task) => ok(task_state_info(task)),
        None => error(400, format!("connector \"{name}\" has no task \"{task}\"")),
    }
}

async fn pause(State(worker): Shared, Path(name): Path<String>) -> Response {
    match worker.pause_connector(&name).await {
        Ok(()) => ok(format!("Connector [{name}] paused successfully")),
        Err(e) => worker_error(e),
    }
}

async fn resume(State(worker): Shared, Path(name): Path<String>) -> Response {
    match worker.resume_connector(&name).await {
        Ok(()) => ok(format!("Connector [{name}] resumed successfully")),
        Err(e) => worker_error(e),
    }
}

/// RocketMQ Connect's stop deletes the connector.
async fn stop(State(worker): Shared, Path(name): Path<String>) -> Response {
    match worker.delete_connector(&name).await {
        Ok(()) => ok(format!("Connector [{name}] deleted successfully")),
        Err(e) => worker_error(e),
    }
}

async fn pause_all(State(worker): Shared) -> Response {
    ok(format!("{} connectors are suspended", set_all(&worker, true).await))
}

async fn resume_all(State(worker): Shared) -> Response {
    ok(format!("{} connectors are resumed", set_all(&worker, false).await))
}

/// Pause (or resume) every connector; how many it did.
async fn set_all(worker: &Worker, pause: bool) -> usize {
    let mut count = 0;
    for name in worker.connector_names() {
        let result = if pause { worker.pause_connector(&name).await } else { worker.resume_connector(&name).await };
        match result {
            Ok(()) => count += 1,
            Err(e) => tracing::warn!(connector = %name, "{} all: {e}", if pause { "pause" } else { "resume" }),
        }
    }
    count
}

async fn stop_all(State(worker): Shared) -> Response {
    let mut deleted = Vec::new();
    for name in worker.connector_names() {
        match worker.delete_connector(&name).await {
            Ok(()) => deleted.push(name),
            Err(e) => return worker_error(e),
        }
    }
    ok(format!("[{}] connectors are deleted", deleted.join(", ")))
}

/// The live workers: this one, then the peers heard from lately.
async fn cluster_info(State(worker): Shared) -> Response {
    ok(worker.live_worker_ids())
}

async fn allocated_connectors(State(worker): Shared) -> Response {
    let all: BTreeMap<String, ConnectorConfig> = worker
        .local_connectors()
        .into_iter()
        .filter(|v| v.state != TaskState::Stopped)
        .map(|v| (v.name, v.config))
        .collect();
    ok(all)
}

/// Tasks by RocketMQ Connect's worker-internal states.
async fn allocated_tasks(State(worker): Shared) -> Response {
    let mut groups: BTreeMap<&str, Vec<Value>> =
        ["pendingTasks", "runningTasks", "stoppingTasks", "stoppedTasks", "errorTasks"]
            .into_iter()
            .map(|g| (g, Vec::new()))
            .collect();
    for view in worker.local_connectors() {
        for task in &view.tasks {
            let (group, internal) = match task.state {
                TaskState::Unassigned | TaskState::Restarting => ("pendingTasks", "PENDING"),
                TaskState::Running | TaskState::Degraded | TaskState::Paused => ("runningTasks", "RUNNING"),
                TaskState::Stopped => ("stoppedTasks", "STOPPED"),
                TaskState::Failed => ("errorTasks", "ERROR"),
            };
            let mut config = view.config.clone();
            config.insert("task.id".into(), task.id.to_string());
            if let Some(tasks) = groups.get_mut(group) {
                tasks.push(json!({"connectorName": view.name, "config": config, "taskState": internal}));
            }
        }
    }
    ok(groups)
}

/// Rescan the plugins folder now (the worker also does every second):
/// changed plugins are swapped in, refused files reported.
async fn plugin_reload(State(worker): Shared) -> Response {
    worker.rescan_plugins().await;
    let refused = worker.refused_plugins();
    if refused.is_empty() {
        ok("Plugin reload succeeded")
    } else {
        let reasons: Vec<String> = refused.into_iter().map(|(name, e)| format!("{name}: {e}")).collect();
        error(500, format!("refused (the last good versions keep running): {}", reasons.join("; ")))
    }
}

fn plugin_list_body(worker: &Worker, connectors_only: bool) -> Vec<Value> {
    plugin_entries(worker)
        .into_iter()
        .filter(|p| p.error.is_none())
        .filter(|p| !connectors_only || p.kind == "SINK" || p.kind == "SOURCE")
        .map(|p| json!({"className": p.name, "type": p.kind, "version": p.version}))
        .collect()
}

async fn plugin_list(State(worker): Shared) -> Response {
    ok(plugin_list_body(&worker, false))
}

async fn plugin_list_connectors(State(worker): Shared) -> Response {
    ok(plugin_list_body(&worker, true))
}
