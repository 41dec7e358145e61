//! A client for OpenMLDB's APIServer REST protocol (openmldb.md §1). Every
//! reply is HTTP 200 with `{"code","msg"}`; the code decides. Connections
//! are kept alive and shared by all requests to one APIServer.

use std::time::Duration;

/// What the APIServer answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub code: i64,
    pub msg: String,
    /// The whole body, for routes that return data (`table`, `dbs`, `data`).
    pub body: serde_json::Value,
}

impl Reply {
    pub fn is_ok(&self) -> bool {
        self.code == 0
    }
}

/// The APIServer could not be reached or answered something unreadable.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    #[error("APIServer {addr} unreachable: {reason}")]
    Unreachable { addr: String, reason: String },
    #[error("APIServer {addr} answered HTTP {status}, not an APIServer reply: {body}")]
    NotApiServer { addr: String, status: u16, body: String },
}

#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    addr: String,
}

impl ApiClient {
    pub fn new(apiserver: &str, timeout: Duration) -> Result<ApiClient, TransportError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| TransportError::Unreachable { addr: apiserver.to_string(), reason: e.to_string() })?;
        Ok(ApiClient { http, base: format!("http://{apiserver}"), addr: apiserver.to_string() })
    }

    pub fn address(&self) -> &str {
        &self.addr
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: String) -> Result<Reply, TransportError> {
        let unreachable =
            |e: reqwest::Error| TransportError::Unreachable { addr: self.addr.clone(), reason: error_chain(&e) };
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(unreachable)?;
        let not_api =
            || TransportError::NotApiServer { addr: self.addr.clone(), status, body: text.chars().take(200).collect() };
        // Result sets may hold unquoted NaN; the writer never reads those, so
        // an unparsable body is only accepted for its envelope.
        let body: serde_json::Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(_) => return envelope_only(&text).ok_or_else(not_api),
        };
        let (Some(code), Some(msg)) =
            (body.get("code").and_then(|c| c.as_i64()), body.get("msg").and_then(|m| m.as_str()))
        else {
            return Err(not_api());
        };
        Ok(Reply { code, msg: msg.to_string(), body })
    }

    /// `POST /dbs/{db}` in online mode.
    pub async fn execute(&self, db: &str, sql: &str) -> Result<Reply, TransportError> {
        let body = serde_json::json!({"mode": "online", "sql": sql}).to_string();
        self.send(reqwest::Method::POST, &format!("/dbs/{db}"), body).await
    }

    /// `PUT /dbs/{db}/tables/{table}` with one row, already JSON-encoded as
    /// an array (`[v1, …, vN]`).
    pub async fn put(&self, db: &str, table: &str, row_json: &str) -> Result<Reply, TransportError> {
        self.send(reqwest::Method::PUT, &format!("/dbs/{db}/tables/{table}"), format!("{{\"value\":[{row_json}]}}"))
            .await
    }

    pub async fn get_table(&self, db: &str, table: &str) -> Result<Reply, TransportError> {
        self.send(reqwest::Method::GET, &format!("/dbs/{db}/tables/{table}"), String::new()).await
    }

    pub async fn list_databases(&self) -> Result<Reply, TransportError> {
        self.send(reqwest::Method::GET, "/dbs", String::new()).await
    }

    pub async fn refresh(&self) -> Result<Reply, TransportError> {
        self.send(reqwest::Method::POST, "/refresh", String::new()).await
    }
}

/// `{"code":N,"msg":"…"` from the front of a body that is not strict JSON.
fn envelope_only(text: &str) -> Option<Reply> {
    let rest = text.strip_prefix("{\"code\":")?;
    let end = rest.find(',')?;
    let code: i64 = rest[..end].parse().ok()?;
    let msg_start = rest[end..].strip_prefix(",\"msg\":")?;
    let mut de = serde_json::Deserializer::from_str(msg_start).into_iter::<String>();
    let msg = de.next()?.ok()?;
    Some(Reply { code, msg, body: serde_json::Value::Null })
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
