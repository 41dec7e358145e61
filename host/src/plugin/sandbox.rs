//! What one plugin may use: its limits (memory, call deadlines, log rate)
//! and the capabilities its connector grants it (a folder, outbound TCP to
//! listed addresses, named environment variables). Everything is denied
//! unless granted. Parsed from connector config keys (`plugin.*` for every
//! plugin of the connector, `<stage>.plugin.*` for one stage), with errors
//! that name the key and the value.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

/// Defaults, documented in the README's "Plugin limits and grants".
pub const DEFAULT_MEMORY_MAX_BYTES: usize = 64 * 1024 * 1024;
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_CALL_MAX_WALL: Duration = Duration::from_secs(60);
pub const DEFAULT_LOG_LINES_PER_SECOND: u32 = 50;
/// Linear memories, tables and instances one store may create. Rust, C,
/// Go, Python and JavaScript components need one or two memories, a few
/// tables and a few dozen (core) instances; more is an attempt to multiply
/// the memory cap.
pub const MAX_MEMORIES: usize = 4;
pub const MAX_TABLES: usize = 16;
pub const MAX_INSTANCES: usize = 64;
/// Elements of any one table (function references).
pub const MAX_TABLE_ELEMENTS: usize = 1_000_000;

/// How long and how big one plugin's calls may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The sum of all linear memories of one instance.
    pub memory_max_bytes: usize,
    /// Compute time of one call; time blocked in the host's SQL import is
    /// given back (a slow database is not a runaway plugin), time asleep
    /// or polling is not.
    pub call_timeout: Duration,
    /// Wall time of one call, host waits included: nothing extends it.
    pub call_max_wall: Duration,
    /// `log` lines per second (bursts up to twice that); the rest are
    /// dropped and counted.
    pub log_lines_per_second: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_max_bytes: DEFAULT_MEMORY_MAX_BYTES,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            call_max_wall: DEFAULT_CALL_MAX_WALL,
            log_lines_per_second: DEFAULT_LOG_LINES_PER_SECOND,
        }
    }
}

/// A host folder the plugin sees as a WASI preopen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderGrant {
    pub host_path: PathBuf,
    /// Where the plugin finds it (`/data` unless configured).
    pub guest_path: String,
    pub writable: bool,
}

/// Capabilities beyond computing: none unless the connector grants them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    pub folder: Option<FolderGrant>,
    /// `host:port` entries as written, with the addresses they resolved to.
    pub tcp: Vec<(String, Vec<SocketAddr>)>,
    /// Environment variables passed from the worker's environment.
    pub env: Vec<(String, String)>,
}

impl Grants {
    pub fn tcp_addresses(&self) -> Vec<SocketAddr> {
        self.tcp.iter().flat_map(|(_, addrs)| addrs.iter().copied()).collect()
    }
}

/// Limits and grants of one plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sandbox {
    pub limits: Limits,
    pub grants: Grants,
}

/// A sandbox key with a value it cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: \"{value}\" is not accepted: {reason}")]
pub struct SandboxError {
    pub key: String,
    pub value: String,
    pub reason: String,
}

/// The keys, after the `plugin.` of their prefix.
const KEYS: &[&str] = &[
    "memory.max.bytes",
    "call.timeout.ms",
    "call.max.wall.ms",
    "log.max.lines.per.second",
    "grant.folder",
    "grant.folder.guest.path",
    "grant.folder.writable",
    "grant.tcp",
    "grant.env",
];

impl Sandbox {
    /// The sandbox of one stage: connector-wide `plugin.*` keys, overridden
    /// by the stage's own (`stage_prefix` + `plugin.*`, e.g.
    /// `transforms.mask.plugin.memory.max.bytes`).
    pub fn from_config(config: &BTreeMap<String, String>, stage_prefix: Option<&str>) -> Result<Sandbox, SandboxError> {
        let lookup = |key: &str| -> Option<(String, String)> {
            let stage = stage_prefix.map(|p| format!("{p}plugin.{key}"));
            if let Some(stage) = stage
                && let Some(value) = config.get(&stage)
            {
                return Some((stage, value.trim().to_string()));
            }
            let key = format!("plugin.{key}");
            config.get(&key).map(|value| (key, value.trim().to_string()))
        };
        for prefix in std::iter::once("plugin.".to_string()).chain(stage_prefix.map(|p| format!("{p}plugin."))) {
            if let Some(unknown) =
                config.keys().filter_map(|k| k.strip_prefix(&prefix).map(|r| (k, r))).find(|(_, r)| !KEYS.contains(r))
            {
                return Err(SandboxError {
                    key: unknown.0.clone(),
                    value: config[unknown.0].clone(),
                    reason: format!("not a plugin limit or grant; the keys are plugin.{}", KEYS.join(", plugin.")),
                });
            }
        }
        let bad = |(key, value): &(String, String), reason: &str| SandboxError {
            key: key.clone(),
            value: value.clone(),
            reason: reason.to_string(),
        };
        let number = |key: &str, min: u64, max: u64| -> Result<Option<u64>, SandboxError> {
            let Some(entry) = lookup(key) else { return Ok(None) };
            match entry.1.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(bad(&entry, &format!("expected a whole number from {min} to {max}"))),
            }
        };
        let defaults = Limits::default();
        let memory_max_bytes =
            number("memory.max.bytes", 1 << 20, 4 << 30)?.map(|n| n as usize).unwrap_or(defaults.memory_max_bytes);
        let call_timeout =
            number("call.timeout.ms", 10, 3_600_000)?.map(Duration::from_millis).unwrap_or(defaults.call_timeout);
        let call_max_wall = number("call.max.wall.ms", 10, 3_600_000)?
            .map(Duration::from_millis)
            .unwrap_or(defaults.call_max_wall.max(call_timeout));
        if call_max_wall < call_timeout {
            let entry = lookup("call.max.wall.ms").unwrap_or_default();
            return Err(bad(
                &entry,
                &format!("must be at least plugin.call.timeout.ms ({} ms)", call_timeout.as_millis()),
            ));
        }
        let log_lines_per_second =
            number("log.max.lines.per.second", 1, 100_000)?.map(|n| n as u32).unwrap_or(defaults.log_lines_per_second);
        let limits = Limits { memory_max_bytes, call_timeout, call_max_wall, log_lines_per_second };

        let folder = match lookup("grant.folder").filter(|(_, v)| !v.is_empty()) {
            None => None,
            Some(entry) => {
                let host_path = PathBuf::from(&entry.1);
                if !host_path.is_absolute() {
                    return Err(bad(&entry, "the granted folder must be an absolute path"));
                }
                if !host_path.is_dir() {
                    return Err(bad(&entry, "no such folder on this worker"));
                }
                let writable = match lookup("grant.folder.writable") {
                    None => false,
                    Some(entry) => match entry.1.to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(bad(&entry, "expected true or false")),
                    },
                };
                let guest_path = match lookup("grant.folder.guest.path") {
                    None => "/data".to_string(),
                    Some(entry) if entry.1.starts_with('/') && !entry.1.contains("..") => entry.1,
                    Some(entry) => return Err(bad(&entry, "expected an absolute path such as /data")),
                };
                Some(FolderGrant { host_path, guest_path, writable })
            }
        };
        let mut tcp = Vec::new();
        if let Some(entry) = lookup("grant.tcp") {
            for item in entry.1.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let resolved: Vec<SocketAddr> = match item.rsplit_once(':') {
                    Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
                        item.to_socket_addrs().map(|a| a.collect()).unwrap_or_default()
                    }
                    _ => return Err(bad(&entry, &format!("\"{item}\" is not host:port"))),
                };
                if resolved.is_empty() {
                    return Err(bad(&entry, &format!("\"{item}\" does not resolve on this worker")));
                }
                tcp.push((item.to_string(), resolved));
            }
        }
        let mut env = Vec::new();
        if let Some(entry) = lookup("grant.env") {
            for name in entry.1.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(bad(&entry, &format!("\"{name}\" is not an environment variable name")));
                }
                match std::env::var(name) {
                    Ok(value) => env.push((name.to_string(), value)),
                    Err(_) => return Err(bad(&entry, &format!("{name} is not set in this worker's environment"))),
                }
            }
        }
        Ok(Sandbox { limits, grants: Grants { folder, tcp, env } })
    }

    /// What `/v1` shows: limits and grants, without environment values.
    pub fn describe(&self) -> serde_json::Value {
        let l = &self.limits;
        serde_json::json!({
            "memory_max_bytes": l.memory_max_bytes,
            "call_timeout_ms": l.call_timeout.as_millis() as u64,
            "call_max_wall_ms": l.call_max_wall.as_millis() as u64,
            "log_max_lines_per_second": l.log_lines_per_second,
            "grants": {
                "folder": self.grants.folder.as_ref().map(|f| serde_json::json!({
                    "host_path": f.host_path.display().to_string(),
                    "guest_path": f.guest_path,
                    "writable": f.writable,
                })),
                "tcp": self.grants.tcp.iter().map(|(item, _)| item.clone()).collect::<Vec<_>>(),
                "env": self.grants.env.iter().map(|(name, _)| name.clone()).collect::<Vec<_>>(),
            },
        })
    }
}

/// Whether a key is a sandbox key (kept out of the plugin's own config).
pub fn is_sandbox_key(key: &str) -> bool {
    key.strip_prefix("plugin.").is_some_and(|rest| KEYS.contains(&rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_deny_everything() {
        let sandbox = Sandbox::from_config(&config(&[]), None).unwrap();
        assert_eq!(sandbox.limits, Limits::default());
        assert_eq!(sandbox.grants, Grants::default());
    }

    #[test]
    fn a_stage_overrides_the_connector_wide_limit() {
        let c =
            config(&[("plugin.memory.max.bytes", "33554432"), ("transforms.mask.plugin.memory.max.bytes", "8388608")]);
        assert_eq!(Sandbox::from_config(&c, None).unwrap().limits.memory_max_bytes, 32 << 20);
        assert_eq!(Sandbox::from_config(&c, Some("transforms.mask.")).unwrap().limits.memory_max_bytes, 8 << 20);
    }

    #[test]
    fn bad_values_name_the_key_and_the_value() {
        let e = Sandbox::from_config(&config(&[("plugin.call.timeout.ms", "soon")]), None).unwrap_err();
        assert_eq!((e.key.as_str(), e.value.as_str()), ("plugin.call.timeout.ms", "soon"));
        let e = Sandbox::from_config(&config(&[("plugin.memory.max.byte", "1")]), None).unwrap_err();
        assert_eq!(e.key, "plugin.memory.max.byte");
        assert!(e.reason.contains("plugin.memory.max.bytes"), "{e}");
        let e = Sandbox::from_config(&config(&[("plugin.grant.folder", "relative/dir")]), None).unwrap_err();
        assert!(e.to_string().contains("absolute"), "{e}");
        let e = Sandbox::from_config(&config(&[("plugin.grant.tcp", "nohostport")]), None).unwrap_err();
        assert!(e.to_string().contains("host:port"), "{e}");
        let e =
            Sandbox::from_config(&config(&[("plugin.grant.env", "RMQ_OPENMLDB_SURELY_UNSET_VAR")]), None).unwrap_err();
        assert!(e.to_string().contains("not set"), "{e}");
        let e = Sandbox::from_config(
            &config(&[("plugin.call.timeout.ms", "5000"), ("plugin.call.max.wall.ms", "1000")]),
            None,
        )
        .unwrap_err();
        assert_eq!(e.key, "plugin.call.max.wall.ms");
    }

    #[test]
    fn grants_parse() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(&[
            ("plugin.grant.folder", dir.path().to_str().unwrap()),
            ("plugin.grant.folder.writable", "true"),
            ("plugin.grant.tcp", "127.0.0.1:9, localhost:10"),
            ("plugin.grant.env", "HOME"),
        ]);
        let grants = Sandbox::from_config(&c, None).unwrap().grants;
        let folder = grants.folder.clone().unwrap();
        assert!(folder.writable);
        assert_eq!(folder.guest_path, "/data");
        assert!(grants.tcp_addresses().contains(&"127.0.0.1:9".parse().unwrap()));
        assert_eq!(grants.env[0].0, "HOME");
    }
}
