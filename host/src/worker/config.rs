//! The worker's own settings: `worker.toml`, or RocketMQ Connect's
//! `connect-standalone.conf` (Java properties) for users who migrate.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8082";
pub const DEFAULT_WORKER_ID: &str = "DefaultWorker";

#[derive(Debug, Clone, PartialEq)]
pub struct WorkerConfig {
    pub namesrv_addr: String,
    pub http_addr: SocketAddr,
    /// User plugins (`.wasm`); built-ins need none.
    pub plugins_dir: Option<PathBuf>,
    /// Connector definitions and states, kept across restarts.
    pub data_dir: PathBuf,
    pub worker_id: String,
    /// If set, every REST call must carry `Authorization: Bearer <token>`.
    pub api_token: Option<String>,
    /// Workers with the same cluster name share their connectors through a
    /// RocketMQ topic; each runs every connector's tasks, and the consumer
    /// groups spread the queues over the live workers.
    pub cluster: Option<String>,
    /// Host names (besides IP addresses and `localhost`) the REST API
    /// answers to; any other `Host` header is refused (DNS rebinding).
    pub allowed_hosts: Vec<String>,
    /// Origins (`http://host:port`) allowed to send mutating requests from
    /// a browser, besides the API's own.
    pub allowed_origins: Vec<String>,
    /// RocketMQ Connect's GET routes that change things (`?config=`,
    /// `/pause`, `/stop`, …) are served to scripts only; `false` refuses
    /// them altogether.
    pub compat_get_mutations: bool,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WorkerConfigError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path}: {reason}")]
    Syntax { path: String, reason: String },
    #[error("{path}: missing required key \"{key}\"")]
    Missing { path: String, key: &'static str },
    #[error("{path}: key \"{key}\": invalid value \"{value}\": {reason}")]
    Invalid { path: String, key: String, value: String, reason: String },
}

/// `worker.toml`'s keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlFile {
    namesrv_addr: Option<String>,
    http_addr: Option<String>,
    plugins_dir: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    worker_id: Option<String>,
    cluster: Option<String>,
    api_token: Option<String>,
    allowed_hosts: Option<Vec<String>>,
    allowed_origins: Option<Vec<String>>,
    compat_get_mutations: Option<bool>,
}

/// RocketMQ Connect worker keys that have no meaning here; accepted with a
/// warning so a migrated file loads.
const IGNORED_CONNECT_KEYS: &[&str] = &[
    "aclEnable",
    "accessKey",
    "secretKey",
    "autoCreateGroupEnable",
    "clusterName",
    "connectClusterId",
    "keyConverter",
    "valueConverter",
    "maxMessageSize",
    "operationTimeout",
    "offsetCommitIntervalMsConfig",
    "offsetCommitTimeoutMsConfig",
];

impl WorkerConfig {
    /// Read a worker config: TOML when the file name ends in `.toml`,
    /// otherwise RocketMQ Connect's properties format. Relative paths are
    /// relative to the file's folder.
    pub fn load(path: &Path) -> Result<WorkerConfig, WorkerConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| WorkerConfigError::Read { path: shown.clone(), reason: e.to_string() })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        if path.extension().is_some_and(|e| e == "toml") {
            Self::from_toml(&text, &shown, &base)
        } else {
            Self::from_properties(&text, &shown, &base)
        }
    }

    pub fn from_toml(text: &str, path: &str, base: &Path) -> Result<WorkerConfig, WorkerConfigError> {
        let file: TomlFile =
            toml::from_str(text).map_err(|e| WorkerConfigError::Syntax { path: path.into(), reason: e.to_string() })?;
        let namesrv_addr = file
            .namesrv_addr
            .or_else(|| std::env::var("NAMESRV_ADDR").ok())
            .ok_or(WorkerConfigError::Missing { path: path.into(), key: "namesrv_addr" })?;
        let http = file.http_addr.unwrap_or_else(|| DEFAULT_HTTP_ADDR.to_string());
        let data_dir = file.data_dir.ok_or(WorkerConfigError::Missing { path: path.into(), key: "data_dir" })?;
        WorkerConfig {
            namesrv_addr,
            http_addr: parse_addr(path, "http_addr", &http)?,
            plugins_dir: file.plugins_dir.map(|p| resolve(base, &p)),
            data_dir: resolve(base, &data_dir),
            worker_id: file.worker_id.unwrap_or_else(|| DEFAULT_WORKER_ID.to_string()),
            api_token: file.api_token,
            cluster: file.cluster,
            allowed_hosts: file.allowed_hosts.unwrap_or_default(),
            allowed_origins: file.allowed_origins.unwrap_or_default(),
            compat_get_mutations: file.compat_get_mutations.unwrap_or(true),
        }
        .checked(path)
    }

    /// RocketMQ Connect's `connect-standalone.conf`: `workerId`, `httpPort`
    /// (served on 127.0.0.1), `storePathRootDir`, `namesrvAddr`,
    /// `pluginPaths` (one folder).
    pub fn from_properties(text: &str, path: &str, base: &Path) -> Result<WorkerConfig, WorkerConfigError> {
        let properties = parse_properties(text);
        let mut config = WorkerConfig {
            namesrv_addr: String::new(),
            http_addr: parse_addr(path, "httpPort", DEFAULT_HTTP_ADDR)?,
            plugins_dir: None,
            data_dir: PathBuf::new(),
            worker_id: DEFAULT_WORKER_ID.to_string(),
            api_token: None,
            cluster: None,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            compat_get_mutations: true,
        };
        for (key, value) in &properties {
            match key.as_str() {
                "workerId" => config.worker_id = value.clone(),
                "namesrvAddr" => config.namesrv_addr = value.clone(),
                "httpPort" => {
                    let port: u16 = value
                        .parse()
                        .map_err(|_| invalid(path, key, value, "expected a port number from 1 to 65535"))?;
                    config.http_addr = SocketAddr::from(([127, 0, 0, 1], port));
                }
                "storePathRootDir" => config.data_dir = resolve(base, &expand_home(value)),
                "pluginPaths" => {
                    let folders: Vec<&str> = value.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
                    match folders.as_slice() {
                        [] => {}
                        [one] => config.plugins_dir = Some(resolve(base, &expand_home(one))),
                        _ => return Err(invalid(path, key, value, "this host reads plugins from one folder")),
                    }
                }
                "clusterStoreTopic" | "configStoreTopic" | "positionStoreTopic" | "connectStatusTopic" => {
                    return Err(invalid(path, key, value, "distributed mode is not in this build yet"));
                }
                other if IGNORED_CONNECT_KEYS.contains(&other) => {
                    tracing::warn!("{path}: key \"{other}\" has no effect here; ignored");
                }
                other => tracing::warn!("{path}: unknown key \"{other}\"; ignored"),
            }
        }
        if config.namesrv_addr.is_empty() {
            config.namesrv_addr = std::env::var("NAMESRV_ADDR")
                .map_err(|_| WorkerConfigError::Missing { path: path.into(), key: "namesrvAddr" })?;
        }
        if config.data_dir.as_os_str().is_empty() {
            config.data_dir = resolve(base, &expand_home("~/connectorStore"));
        }
        config.checked(path)
    }

    fn checked(self, path: &str) -> Result<WorkerConfig, WorkerConfigError> {
        for addr in self.namesrv_addr.split(';') {
            let ok = addr.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !ok {
                return Err(invalid(path, "namesrv_addr", &self.namesrv_addr, "expected HOST:PORT[;HOST:PORT...]"));
            }
        }
        let plain = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "_-".contains(c));
        if !plain(&self.worker_id) {
            return Err(invalid(path, "worker_id", &self.worker_id, "use letters, digits, '_' or '-'"));
        }
        if let Some(cluster) = &self.cluster
            && !plain(cluster)
        {
            return Err(invalid(
                path,
                "cluster",
                cluster,
                "use letters, digits, '_' or '-' (it names a RocketMQ topic)",
            ));
        }
        Ok(self)
    }
}

fn invalid(path: &str, key: &str, value: &str, reason: &str) -> WorkerConfigError {
    WorkerConfigError::Invalid { path: path.into(), key: key.into(), value: value.into(), reason: reason.into() }
}

fn parse_addr(path: &str, key: &str, value: &str) -> Result<SocketAddr, WorkerConfigError> {
    value.parse().map_err(|_| invalid(path, key, value, "expected IP:PORT, e.g. 127.0.0.1:8082"))
}

fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() { path.to_path_buf() } else { base.join(path) }
}

/// `~` (ASCII or the full-width `～` OpenMLDB's guide prints) at the start
/// of a path is the home folder.
fn expand_home(value: &str) -> PathBuf {
    let rest = value.strip_prefix('~').or_else(|| value.strip_prefix('～'));
    match (rest, std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest.trim_start_matches('/')),
        _ => PathBuf::from(value),
    }
}

/// Java properties: `key=value`, `key: value` or `key value`; `#` and `!`
/// comments; a trailing `\` continues the line.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut properties = BTreeMap::new();
    let mut pending = String::new();
    for line in text.lines() {
        let line = line.trim_start();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!')) {
            continue;
        }
        if let Some(continued) = line.strip_suffix('\\') {
            pending.push_str(continued);
            continue;
        }
        pending.push_str(line);
        let entry = std::mem::take(&mut pending);
        let split = entry.find(['=', ':', ' ', '\t']).unwrap_or(entry.len());
        let (key, rest) = entry.split_at(split);
        let value = rest.trim_start().strip_prefix(['=', ':']).unwrap_or(rest.trim_start()).trim();
        properties.insert(key.trim().to_string(), value.to_string());
    }
    properties
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_keys_with_defaults() {
        let c = WorkerConfig::from_toml(
            "namesrv_addr = \"127.0.0.1:9876\"\ndata_dir = \"data\"\nplugins_dir = \"/opt/plugins\"\n",
            "w.toml",
            Path::new("/etc/rmq"),
        )
        .unwrap();
        assert_eq!(c.http_addr, "127.0.0.1:8082".parse().unwrap());
        assert_eq!(c.data_dir, PathBuf::from("/etc/rmq/data"));
        assert_eq!(c.plugins_dir, Some(PathBuf::from("/opt/plugins")));
        assert_eq!(c.worker_id, "DefaultWorker");
    }

    #[test]
    fn toml_errors_name_the_key() {
        let err = |text: &str| WorkerConfig::from_toml(text, "w.toml", Path::new("/")).unwrap_err().to_string();
        assert!(err("namesrv_addr = \"a:1\"\ndata_dir = \"d\"\nhttp_port = 1\n").contains("unknown field `http_port`"));
        assert_eq!(
            err("namesrv_addr = \"a:1\"\ndata_dir = \"d\"\nhttp_addr = \"localhost\"\n"),
            "w.toml: key \"http_addr\": invalid value \"localhost\": expected IP:PORT, e.g. 127.0.0.1:8082"
        );
        assert_eq!(
            err("namesrv_addr = \"nameserver\"\ndata_dir = \"d\"\n"),
            "w.toml: key \"namesrv_addr\": invalid value \"nameserver\": expected HOST:PORT[;HOST:PORT...]"
        );
        assert_eq!(err("namesrv_addr = \"a:1\"\n"), "w.toml: missing required key \"data_dir\"");
        assert_eq!(
            err("namesrv_addr = \"a:1\"\ndata_dir = \"d\"\ncluster = \"my cluster\"\n"),
            "w.toml: key \"cluster\": invalid value \"my cluster\": use letters, digits, '_' or '-' (it names a RocketMQ topic)"
        );
    }

    #[test]
    fn the_guides_connect_standalone_conf_migrates() {
        let text = "# Unique Id of the current node\nworkerId=DEFAULT_WORKER_1\n\n# The port address of the REST API\n\
                    httpPort=8081\n\n# Local storage path\nstorePathRootDir=～/storeRoot\n\n\
                    namesrvAddr=127.0.0.1:9876  \n\npluginPaths=/usr/local/connector-plugins/\nclusterName=DefaultCluster\n";
        let c = WorkerConfig::from_properties(text, "connect-standalone.conf", Path::new("/x")).unwrap();
        assert_eq!(c.worker_id, "DEFAULT_WORKER_1");
        assert_eq!(c.http_addr, "127.0.0.1:8081".parse().unwrap());
        assert_eq!(c.namesrv_addr, "127.0.0.1:9876");
        assert_eq!(c.plugins_dir, Some(PathBuf::from("/usr/local/connector-plugins/")));
        assert!(c.data_dir.ends_with("storeRoot") && c.data_dir.is_absolute());
        let err = WorkerConfig::from_properties("namesrvAddr=a:1\nhttpPort=eighty\n", "c.conf", Path::new("/"));
        assert_eq!(
            err.unwrap_err().to_string(),
            "c.conf: key \"httpPort\": invalid value \"eighty\": expected a port number from 1 to 65535"
        );
    }

    #[test]
    fn properties_syntax() {
        let p = parse_properties("a=1\nb : two\nc three\n! note\nd=x\\\n  y\n");
        assert_eq!(p["a"], "1");
        assert_eq!(p["b"], "two");
        assert_eq!(p["c"], "three");
        assert_eq!(p["d"], "xy");
    }
}
