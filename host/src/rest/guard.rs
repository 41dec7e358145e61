//! Who may drive the REST API. Every request passes, in this order:
//! - the `Host` check: an IP address, `localhost`, or a name in
//!   `allowed_hosts`; a page served from another name that resolves to
//!   this machine (DNS rebinding) is refused;
//! - the `Origin` check on requests that change something: a browser
//!   page of another origin (cross-site request forgery) is refused;
//! - RocketMQ Connect's GET routes that change something are served to
//!   scripts only: a browser (it sends `Origin`, `Referer` or
//!   `Sec-Fetch-*`) cannot trigger them with an image or a link, and
//!   `compat_get_mutations = false` refuses them altogether;
//! - the bearer token, when the worker has one, compared in constant time.

use crate::worker::{Worker, WorkerConfig};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// RocketMQ Connect's GET routes that change connectors or plugins.
fn is_mutating_get(path: &str, query: Option<&str>) -> bool {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["connectors", "pause" | "resume" | "stop", "all"] => true,
        ["connectors", _, "pause" | "resume" | "stop"] => true,
        ["connectors", name] if !["list"].contains(name) => {
            query.is_some_and(|q| q.split('&').any(|pair| pair.starts_with("config=")))
        }
        ["plugin", "reload"] => true,
        _ => false,
    }
}

fn refuse(status: StatusCode, code: &str, message: String) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    (status, axum::Json(body)).into_response()
}

/// The host part of a `Host` header (`name`, `1.2.3.4`, `[::1]`), lower case.
fn host_name(host: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default().to_string();
    }
    host.rsplit_once(':')
        .map(|(name, port)| if port.chars().all(|c| c.is_ascii_digit()) { name } else { host.as_str() })
        .unwrap_or(&host)
        .to_string()
}

/// Whether a `Host` header names this API: an IP address (no DNS, so no
/// rebinding), `localhost`, or a configured name.
pub fn host_allowed(config: &WorkerConfig, host: &str) -> bool {
    let name = host_name(host);
    name.parse::<std::net::IpAddr>().is_ok()
        || name == "localhost"
        || config.allowed_hosts.iter().any(|allowed| allowed.eq_ignore_ascii_case(&name))
}

/// Whether a browser's `Origin` may change things here: the API's own
/// origin (same host as the request), or a configured one.
fn origin_allowed(config: &WorkerConfig, origin: &str, host: Option<&str>) -> bool {
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    let same = host.is_some_and(|host| origin == format!("http://{}", host.trim().to_ascii_lowercase()));
    same || config.allowed_origins.iter().any(|allowed| allowed.trim_end_matches('/').eq_ignore_ascii_case(&origin))
}

/// A request a browser made: browsers add these headers, scripts do not.
fn from_browser(headers: &HeaderMap) -> bool {
    headers.contains_key(header::ORIGIN)
        || headers.contains_key(header::REFERER)
        || headers.get("sec-fetch-site").is_some_and(|v| v.as_bytes() != b"none")
        || headers.contains_key("sec-fetch-mode")
}

/// Equal tokens, compared without leaking where they differ (the digests
/// have the same length whatever the tokens' lengths).
pub fn token_matches(presented: &str, expected: &str) -> bool {
    let (a, b) = (Sha256::digest(presented.as_bytes()), Sha256::digest(expected.as_bytes()));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub async fn guard(State(worker): State<Arc<Worker>>, request: Request, next: Next) -> Response {
    let config = worker.config();
    let headers = request.headers();
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if let Some(host) = host
        && !host_allowed(config, host)
    {
        return refuse(
            StatusCode::FORBIDDEN,
            "forbidden_host",
            format!("Host \"{host}\" is not this API's; add it to allowed_hosts in the worker config to serve it"),
        );
    }
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let mutating_get = method == Method::GET && is_mutating_get(&path, request.uri().query());
    let mutating = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS) || mutating_get;
    if mutating
        && let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
        && !origin_allowed(config, origin, host)
    {
        return refuse(
            StatusCode::FORBIDDEN,
            "forbidden_origin",
            format!("requests from the page at {origin} may not change this worker (allowed_origins)"),
        );
    }
    if mutating_get {
        if !config.compat_get_mutations {
            return refuse(
                StatusCode::FORBIDDEN,
                "mutating_get_disabled",
                format!("GET {path} changes things and compat_get_mutations = false; use /v1 (POST, PUT, DELETE)"),
            );
        }
        if from_browser(headers) {
            return refuse(
                StatusCode::FORBIDDEN,
                "mutating_get_from_browser",
                format!("GET {path} changes things and is served to scripts only, not to browser pages; use /v1"),
            );
        }
    }
    if let Some(token) = &config.api_token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !token_matches(presented, token) {
            return refuse(StatusCode::UNAUTHORIZED, "unauthorized", "missing or wrong bearer token".into());
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> WorkerConfig {
        WorkerConfig::from_toml(
            "namesrv_addr = \"127.0.0.1:9876\"\ndata_dir = \"d\"\nallowed_hosts = [\"worker.internal\"]\n",
            "w.toml",
            std::path::Path::new("/"),
        )
        .unwrap()
    }

    #[test]
    fn only_ip_addresses_localhost_and_configured_names_are_this_api() {
        let c = config();
        for ok in ["127.0.0.1:8082", "localhost:8082", "LOCALHOST", "[::1]:8082", "10.0.0.7", "worker.internal:8082"] {
            assert!(host_allowed(&c, ok), "{ok}");
        }
        for refused in ["evil.example:8082", "127.0.0.1.nip.io:8082", "localhost.evil.example"] {
            assert!(!host_allowed(&c, refused), "{refused}");
        }
    }

    #[test]
    fn mutating_get_routes_are_known() {
        assert!(is_mutating_get("/connectors/x", Some("config=%7B%7D")));
        assert!(!is_mutating_get("/connectors/x", None));
        assert!(!is_mutating_get("/connectors/list", None));
        assert!(is_mutating_get("/connectors/x/stop", None));
        assert!(is_mutating_get("/connectors/stop/all", None));
        assert!(!is_mutating_get("/connectors/x/status", None));
        assert!(is_mutating_get("/plugin/reload", None));
        assert!(!is_mutating_get("/plugin/list", None));
    }

    #[test]
    fn tokens_compare_equal_only_when_equal() {
        assert!(token_matches("s3cret", "s3cret"));
        assert!(!token_matches("s3cre", "s3cret"));
        assert!(!token_matches("", "s3cret"));
    }

    #[test]
    fn a_page_may_change_things_only_from_the_apis_own_origin() {
        let c = config();
        assert!(origin_allowed(&c, "http://127.0.0.1:8082", Some("127.0.0.1:8082")));
        assert!(!origin_allowed(&c, "http://evil.example", Some("127.0.0.1:8082")));
        assert!(!origin_allowed(&c, "null", Some("127.0.0.1:8082")));
    }
}
