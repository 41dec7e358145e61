//! The `/v1/` API: resources and verbs with real HTTP status codes
//! (201 created, 202 accepted, 204 deleted, 400 invalid, 404 unknown,
//! 409 conflict), errors as `{"error": {"code", "message"}}`, described by
//! `/v1/openapi.json`.

use super::{ApiError, parse_config_body, plugin_entries};
use crate::connector::config::strip_json_comments;
use crate::worker::{Applied, ConnectorView, Worker};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::sync::Arc;

type Shared = State<Arc<Worker>>;

const OPENAPI: &str = include_str!("openapi.json");

pub fn routes() -> Router<Arc<Worker>> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/worker", get(worker_info))
        .route("/cluster", get(cluster))
        .route("/connectors", get(list).post(create))
        .route("/connectors/{name}", get(show).delete(delete))
        .route("/connectors/{name}/config", get(show_config).put(put_config))
        .route("/connectors/{name}/status", get(show))
        .route("/connectors/{name}/pause", post(pause))
        .route("/connectors/{name}/resume", post(resume))
        .route("/connectors/{name}/stop", post(stop))
        .route("/connectors/{name}/restart", post(restart))
        .route("/plugins", get(plugins))
}

async fn openapi() -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn worker_info(State(worker): Shared) -> axum::Json<Value> {
    let config = worker.config();
    axum::Json(json!({
        "worker_id": config.worker_id,
        "version": env!("CARGO_PKG_VERSION"),
        "namesrv_addr": config.namesrv_addr,
        "http_addr": config.http_addr.to_string(),
        "plugins_dir": config.plugins_dir.as_ref().map(|p| p.display().to_string()),
        "data_dir": config.data_dir.display().to_string(),
        "uptime_seconds": worker.uptime().as_secs(),
        "connectors": worker.connector_names().len(),
    }))
}

/// Every live worker of the cluster and what it runs (this worker alone
/// when standalone).
async fn cluster(State(worker): Shared) -> axum::Json<Value> {
    axum::Json(worker.cluster_view())
}

async fn list(State(worker): Shared) -> axum::Json<Vec<ConnectorView>> {
    axum::Json(worker.connectors())
}

fn bad_request(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
}

/// `POST /v1/connectors` with `{"name": …, "config": {…}}`.
async fn create(State(worker): Shared, body: Bytes) -> Result<Response, ApiError> {
    let request: Value =
        serde_json::from_slice(&strip_json_comments(&body)).map_err(|e| bad_request(format!("invalid JSON: {e}")))?;
    let name = request
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_request("\"name\" is required and must be a string".into()))?;
    let config = request.get("config").ok_or_else(|| bad_request("\"config\" is required".into()))?;
    let config = parse_config_body(config.to_string().as_bytes()).map_err(bad_request)?;
    worker.create_connector(name, config).await?;
    Ok((StatusCode::CREATED, axum::Json(worker.connector(name)?)).into_response())
}

async fn show(State(worker): Shared, Path(name): Path<String>) -> Result<axum::Json<ConnectorView>, ApiError> {
    Ok(axum::Json(worker.connector(&name)?))
}

async fn show_config(State(worker): Shared, Path(name): Path<String>) -> Result<Response, ApiError> {
    Ok(axum::Json(worker.connector(&name)?.config).into_response())
}

/// `PUT /v1/connectors/{name}/config`: create (201) or replace (200).
async fn put_config(State(worker): Shared, Path(name): Path<String>, body: Bytes) -> Result<Response, ApiError> {
    let config = parse_config_body(&body).map_err(bad_request)?;
    let status = match worker.put_connector(&name, config).await? {
        Applied::Created => StatusCode::CREATED,
        Applied::Updated | Applied::Unchanged => StatusCode::OK,
    };
    Ok((status, axum::Json(worker.connector(&name)?)).into_response())
}

async fn delete(State(worker): Shared, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    worker.delete_connector(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn accepted(worker: &Worker, name: &str) -> Result<Response, ApiError> {
    Ok((StatusCode::ACCEPTED, axum::Json(worker.connector(name)?)).into_response())
}

async fn pause(State(worker): Shared, Path(name): Path<String>) -> Result<Response, ApiError> {
    worker.pause_connector(&name).await?;
    accepted(&worker, &name)
}

async fn resume(State(worker): Shared, Path(name): Path<String>) -> Result<Response, ApiError> {
    worker.resume_connector(&name).await?;
    accepted(&worker, &name)
}

async fn stop(State(worker): Shared, Path(name): Path<String>) -> Result<Response, ApiError> {
    worker.stop_connector(&name).await?;
    accepted(&worker, &name)
}

async fn restart(State(worker): Shared, Path(name): Path<String>) -> Result<Response, ApiError> {
    worker.restart_connector(&name).await?;
    accepted(&worker, &name)
}

async fn plugins(State(worker): Shared) -> axum::Json<Value> {
    axum::Json(json!(plugin_entries(&worker)))
}
