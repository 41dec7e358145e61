//! The worker's HTTP API: RocketMQ Connect's routes (same paths and
//! envelopes, for existing scripts and OpenMLDB's guide) and a clean
//! `/v1/` surface with real status codes and an OpenAPI document.

mod compat;
pub mod guard;
mod metrics;
mod v1;

use crate::connector::config::{SINK_CLASSES, SOURCE_CLASSES, config_from_json, strip_json_comments};
use crate::openmldb::ConnectorConfig;
use crate::plugin::{PluginCatalog, Role};
use crate::worker::Worker;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::sync::Arc;

/// Every route, behind the guard (Host and Origin checks, browser-driven
/// GETs refused, the bearer token when the worker has one).
pub fn router(worker: Arc<Worker>) -> Router {
    Router::new()
        .route("/", axum::routing::get(status_page))
        .route("/metrics", axum::routing::get(metrics::metrics))
        .merge(compat::routes())
        .nest("/v1", v1::routes())
        .layer(axum::middleware::from_fn_with_state(worker.clone(), guard::guard))
        .with_state(worker)
}

/// The live status page: connectors, states, errors, and charts of
/// throughput, lag and dead letters, refreshed from `/v1/connectors`.
async fn status_page() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("status.html"))
}

/// A posted connector config from a request body.
fn parse_config_body(body: &[u8]) -> Result<ConnectorConfig, String> {
    let json: serde_json::Value =
        serde_json::from_slice(&strip_json_comments(body)).map_err(|e| format!("invalid JSON: {e}"))?;
    config_from_json(&json).map_err(|e| e.to_string())
}

/// A plugin as the plugin routes list it.
#[derive(Debug, Clone, Serialize)]
pub struct PluginEntry {
    pub name: String,
    /// SOURCE, SINK, CONVERTER or TRANSFORMATION (RocketMQ Connect's types).
    pub kind: &'static str,
    /// `builtin`, `connector` or the file in the plugins folder.
    pub origin: String,
    pub version: String,
    /// Why a file in the plugins folder cannot be used.
    pub error: Option<String>,
}

fn plugin_kind(role: Role) -> &'static str {
    match role {
        Role::Converter => "CONVERTER",
        Role::Transform => "TRANSFORMATION",
        Role::Sink => "SINK",
        Role::Source => "SOURCE",
    }
}

/// The connector classes, built-in plugins and the plugin folder's files
/// (each loaded, so an invalid one shows its error).
pub fn plugin_entries(worker: &Worker) -> Vec<PluginEntry> {
    let version = env!("CARGO_PKG_VERSION").to_string();
    let classes = SINK_CLASSES.iter().map(|c| (c, "SINK")).chain(SOURCE_CLASSES.iter().map(|c| (c, "SOURCE")));
    let mut entries: Vec<PluginEntry> = classes
        .map(|(class, kind)| PluginEntry {
            name: class.to_string(),
            kind,
            origin: "connector".into(),
            version: version.clone(),
            error: None,
        })
        .collect();
    for builtin in PluginCatalog::builtins() {
        let kind = match builtin.role {
            "converter" => "CONVERTER",
            "transform" => "TRANSFORMATION",
            "sink" => "SINK",
            _ => "SOURCE",
        };
        entries.push(PluginEntry {
            name: builtin.name.to_string(),
            kind,
            origin: "builtin".into(),
            version: version.clone(),
            error: None,
        });
    }
    let files = match worker.catalog().folder_files() {
        Ok(files) => files,
        Err(e) => {
            tracing::warn!("cannot list the plugins folder: {e}");
            Vec::new()
        }
    };
    for file in files {
        let name = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let loaded = tokio::task::block_in_place(|| {
            worker.catalog().resolve(&file.display().to_string()).and_then(|origin| worker.engine().load(origin, None))
        });
        let (kind, error) = match loaded {
            Ok(plugin) => (plugin_kind(plugin.role), None),
            Err(e) => ("INVALID", Some(e.to_string())),
        };
        entries.push(PluginEntry { name, kind, origin: file.display().to_string(), version: version.clone(), error });
    }
    entries
}

/// Errors of the `/v1/` surface: a status code and `{"error": {code, message}}`.
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<crate::worker::WorkerError> for ApiError {
    fn from(e: crate::worker::WorkerError) -> ApiError {
        use crate::worker::WorkerError as E;
        let (status, code) = match &e {
            E::Definition(_) => (StatusCode::BAD_REQUEST, "invalid_config"),
            E::Plugin(_) => (StatusCode::BAD_REQUEST, "invalid_plugin"),
            E::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            E::Exists(_) => (StatusCode::CONFLICT, "already_exists"),
            E::Conflict { .. } => (StatusCode::CONFLICT, "conflict"),
            E::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store_failed"),
            E::Cluster(_) => (StatusCode::SERVICE_UNAVAILABLE, "cluster_unavailable"),
        };
        ApiError::new(status, code, e.to_string())
    }
}
