//! The writer's connector keys: where the APIServer is, how to create a
//! missing table, how rows are batched and retried. Every error names the
//! key and the value.

use crate::plugin::bindings::ColumnType;
use std::collections::BTreeMap;
use std::time::Duration;

/// A connector config: string keys and values, as in RocketMQ Connect's JSON.
pub type ConnectorConfig = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("missing required key \"{0}\"")]
    Missing(&'static str),
    #[error("key \"{key}\": invalid value \"{value}\": {reason}")]
    Invalid { key: String, value: String, reason: String },
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.to_string(), value: value.to_string(), reason: reason.into() }
}

/// `insert.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertMode {
    /// `INSERT`: append; a retried batch can add duplicate rows.
    Insert,
    /// `INSERT OR IGNORE`: a byte-identical row is not added twice.
    InsertOrIgnore,
}

/// Where rows go: an APIServer, or a cluster found in ZooKeeper whose
/// tablets are written natively (as the official SDK writes them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `openmldb://HOST:PORT/DB`, or any URL with `openmldb.apiserver`.
    ApiServer {
        /// `host:port` of the APIServer.
        apiserver: String,
        database: String,
    },
    /// `jdbc:openmldb:///DB?zk=…&zkPath=…`, the OpenMLDB guide's URL.
    ZooKeeper(ZooKeeperEndpoint),
}

/// A cluster found in ZooKeeper (the JDBC URL's parameters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZooKeeperEndpoint {
    /// `zk`: `host:port[,host:port…]`.
    pub zk: String,
    /// `zkPath`: the cluster's root node.
    pub zk_path: String,
    pub database: String,
    /// `user` (URL) or `connection.user`; root by default.
    pub user: String,
    /// `password` (URL) or `connection.password`; empty by default.
    pub password: String,
    /// `sessionTimeout` (ms; 10000 by default, as the JDBC driver).
    pub session_timeout: Duration,
    /// `requestTimeout` (ms), when the URL sets it.
    pub request_timeout: Option<Duration>,
}

impl Endpoint {
    pub fn database(&self) -> &str {
        match self {
            Endpoint::ApiServer { database, .. } => database,
            Endpoint::ZooKeeper(zk) => &zk.database,
        }
    }

    /// How errors and logs name the target.
    pub fn describe(&self) -> String {
        match self {
            Endpoint::ApiServer { apiserver, .. } => format!("APIServer {apiserver}"),
            Endpoint::ZooKeeper(zk) => format!("zk={} zkPath={}", zk.zk, zk.zk_path),
        }
    }
}

/// `connection.url` (+ `openmldb.apiserver`): `openmldb://HOST:PORT/DB`
/// (an APIServer), or the OpenMLDB guide's
/// `jdbc:openmldb:///DB?zk=…&zkPath=…` (ZooKeeper, written natively). With
/// `openmldb.apiserver` set, any of them goes through that APIServer.
pub fn parse_endpoint(url: &str, apiserver: Option<&str>) -> Result<Endpoint, ConfigError> {
    let key = "connection.url";
    let database_of = |rest: &str| -> Result<String, ConfigError> {
        let db = rest.split(['?', '#']).next().unwrap_or("").trim_matches('/');
        if db.is_empty() {
            return Err(invalid(key, url, "names no database: end it with /DATABASE"));
        }
        check_name(db).map_err(|reason| invalid(key, url, format!("database {reason}")))?;
        Ok(db.to_string())
    };
    let apiserver_override = apiserver.map(str::trim).filter(|a| !a.is_empty());
    if let Some(address) = apiserver_override {
        check_host_port(address).map_err(|reason| invalid("openmldb.apiserver", address, reason))?;
    }
    if let Some(rest) = url.strip_prefix("openmldb://") {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let database = database_of(path)?;
        let apiserver = match apiserver_override {
            Some(a) => a.to_string(),
            None => {
                check_host_port(authority).map_err(|reason| invalid(key, url, reason))?;
                authority.to_string()
            }
        };
        return Ok(Endpoint::ApiServer { apiserver, database });
    }
    if let Some(rest) = url.strip_prefix("jdbc:openmldb://") {
        // "host:port after // is useless" (the JDBC driver): only the path
        // and the parameters count.
        let path = rest.split_once('/').map_or("", |(_, path)| path);
        let database = database_of(path)?;
        if let Some(apiserver) = apiserver_override {
            return Ok(Endpoint::ApiServer { apiserver: apiserver.to_string(), database });
        }
        return parse_zookeeper(url, path, database).map(Endpoint::ZooKeeper);
    }
    Err(invalid(
        key,
        url,
        "expected jdbc:openmldb:///DATABASE?zk=HOST:PORT&zkPath=/ROOT or openmldb://APISERVER_HOST:PORT/DATABASE",
    ))
}

/// The JDBC URL's parameters (`SQLDriver.java`: `zk` and `zkPath` are
/// required; `user`, `password`, `sessionTimeout`, `requestTimeout` are
/// read; the driver's logging and cache options do not apply here).
fn parse_zookeeper(url: &str, path: &str, database: String) -> Result<ZooKeeperEndpoint, ConfigError> {
    let key = "connection.url";
    let query = path.split_once('?').map_or("", |(_, q)| q);
    let mut params = BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        params.insert(name.to_string(), value.to_string());
    }
    let required = |name: &str| -> Result<String, ConfigError> {
        match params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            Some(v) => Ok(v.to_string()),
            None => Err(invalid(
                key,
                url,
                format!("the JDBC URL needs {name}=…: jdbc:openmldb:///{database}?zk=HOST:PORT&zkPath=/ROOT"),
            )),
        }
    };
    let zk = required("zk")?;
    for host in zk.split(',') {
        check_host_port(host.trim()).map_err(|reason| invalid(key, url, format!("zk: {reason}")))?;
    }
    let zk_path = required("zkPath")?;
    if !zk_path.starts_with('/') {
        return Err(invalid(key, url, "zkPath must start with /"));
    }
    let millis = |name: &str, default: Option<u64>| -> Result<Option<Duration>, ConfigError> {
        match params.get(name) {
            None => Ok(default.map(Duration::from_millis)),
            Some(v) => match v.parse::<u64>() {
                Ok(ms) if ms > 0 => Ok(Some(Duration::from_millis(ms))),
                _ => Err(invalid(key, url, format!("{name} must be a positive number of milliseconds"))),
            },
        }
    };
    Ok(ZooKeeperEndpoint {
        zk,
        zk_path,
        database,
        user: params.get("user").cloned().unwrap_or_else(|| "root".into()),
        password: params.get("password").cloned().unwrap_or_default(),
        session_timeout: millis("sessionTimeout", Some(10_000))?.unwrap_or(Duration::from_secs(10)),
        request_timeout: millis("requestTimeout", None)?,
    })
}

fn check_host_port(address: &str) -> Result<(), String> {
    match address.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => Ok(()),
        _ => Err("expected HOST:PORT".into()),
    }
}

/// OpenMLDB names go unquoted into URLs and SQL; the APIServer's URL check
/// refuses `.` and `%` (openmldb.md §1.2, pitfall 17).
pub fn check_name(name: &str) -> Result<(), String> {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(format!("\"{name}\" must be letters, digits and underscores only"))
    }
}

/// The index `auto.create` gives a new table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IndexConfig {
    /// `openmldb.index.key`: one column or several, comma-separated.
    pub key: Vec<String>,
    /// `openmldb.index.ts`: a bigint or timestamp column.
    pub ts: Option<String>,
    /// `openmldb.index.ttl`: e.g. `30d`, `12h`, `100` (latest), `(30d, 100)`.
    pub ttl: Option<String>,
    /// `openmldb.index.ttl.type`: absolute, latest, absorlat, absandlat.
    pub ttl_type: Option<String>,
    /// `openmldb.partition.num`
    pub partition_num: Option<u32>,
    /// `openmldb.replica.num`
    pub replica_num: Option<u32>,
}

/// Everything the writer needs from the connector config.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    pub endpoint: Endpoint,
    pub auto_create: bool,
    pub create_database: bool,
    pub index: IndexConfig,
    pub insert_mode: InsertMode,
    /// `insert.mode=UPSERT` was asked for (written as INSERT OR IGNORE).
    pub upsert_requested: bool,
    /// Rows per INSERT statement (`batch.size`).
    pub batch_rows: usize,
    /// Bytes per INSERT statement (`openmldb.batch.max.bytes`).
    pub batch_bytes: usize,
    /// INSERT statements in flight per table (`openmldb.max.inflight`).
    pub max_inflight: usize,
    /// `retry.backoff.ms` / `retry.backoff.max.ms`
    pub backoff: Duration,
    pub backoff_max: Duration,
    /// `max.retries`; `None` retries until the server recovers.
    pub max_retries: Option<u32>,
    /// `max.refused.retries`: attempts for rows the server refuses without
    /// saying it is down or busy, before each row is tried alone and then
    /// dead-lettered.
    pub max_refused_retries: u32,
    /// `openmldb.request.timeout.ms`
    pub request_timeout: Duration,
    /// `openmldb.insert.memory.usage.limit`: the session variable
    /// `insert_memory_usage_limit` of OpenMLDB's clients (1..=100, % of a
    /// tablet's memory above which it refuses Puts); 0, the default, is no
    /// limit. Native path only.
    pub memory_limit: u32,
}

fn get<'a>(config: &'a ConnectorConfig, key: &str) -> Option<&'a str> {
    config.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn number<T>(config: &ConnectorConfig, key: &str, default: T, min: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    match get(config, key) {
        None => Ok(default),
        Some(raw) => match raw.parse::<T>() {
            Ok(v) if v >= min => Ok(v),
            Ok(_) => Err(invalid(key, raw, format!("must be at least {min}"))),
            Err(_) => Err(invalid(key, raw, "not a number")),
        },
    }
}

fn boolean(config: &ConnectorConfig, key: &str, default: bool) -> Result<bool, ConfigError> {
    match get(config, key).map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(_) => Err(invalid(key, get(config, key).unwrap_or(""), "expected true or false")),
    }
}

impl WriterConfig {
    pub fn from_connector(config: &ConnectorConfig) -> Result<WriterConfig, ConfigError> {
        let url = get(config, "connection.url").ok_or(ConfigError::Missing("connection.url"))?;
        let mut endpoint = parse_endpoint(url, get(config, "openmldb.apiserver"))?;
        if let Endpoint::ZooKeeper(zk) = &mut endpoint {
            // RocketMQ Connect's JDBC keys, when the URL does not say.
            if !url.contains("user=")
                && let Some(user) = get(config, "connection.user")
            {
                zk.user = user.to_string();
            }
            if !url.contains("password=")
                && let Some(password) = config.get("connection.password")
            {
                zk.password = password.clone();
            }
        }
        let (insert_mode, upsert_requested) = match get(config, "insert.mode").map(str::to_ascii_uppercase).as_deref() {
            None | Some("INSERT") => (InsertMode::Insert, false),
            Some("INSERT_OR_IGNORE") => (InsertMode::InsertOrIgnore, false),
            Some("UPSERT") => (InsertMode::InsertOrIgnore, true),
            Some(_) => {
                return Err(invalid(
                    "insert.mode",
                    get(config, "insert.mode").unwrap_or(""),
                    "expected INSERT, INSERT_OR_IGNORE or UPSERT",
                ));
            }
        };
        let key: Vec<String> = get(config, "openmldb.index.key")
            .map(|k| k.split(',').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect())
            .unwrap_or_default();
        for column in &key {
            check_name(column).map_err(|reason| invalid("openmldb.index.key", column, reason))?;
        }
        let ts = get(config, "openmldb.index.ts").map(str::to_string);
        if let Some(ts) = &ts {
            check_name(ts).map_err(|reason| invalid("openmldb.index.ts", ts, reason))?;
        }
        let ttl_type = get(config, "openmldb.index.ttl.type").map(str::to_ascii_lowercase);
        if let Some(t) = &ttl_type
            && !["absolute", "latest", "absorlat", "absandlat"].contains(&t.as_str())
        {
            return Err(invalid("openmldb.index.ttl.type", t, "expected absolute, latest, absorlat or absandlat"));
        }
        let ttl = get(config, "openmldb.index.ttl").map(str::to_string);
        if let Some(ttl) = &ttl
            && !ttl.chars().all(|c| c.is_ascii_alphanumeric() || " (),".contains(c))
        {
            return Err(invalid("openmldb.index.ttl", ttl, "expected e.g. 30d, 12h, 100m, 0, a count, or (30d, 100)"));
        }
        let max_retries = match number(config, "max.retries", -1i64, -1)? {
            -1 => None,
            n => Some(n as u32),
        };
        Ok(WriterConfig {
            endpoint,
            auto_create: boolean(config, "auto.create", false)?,
            create_database: boolean(config, "openmldb.create.database", false)?,
            index: IndexConfig {
                key,
                ts,
                ttl,
                ttl_type,
                partition_num: get(config, "openmldb.partition.num")
                    .map(|_| number(config, "openmldb.partition.num", 8u32, 1))
                    .transpose()?,
                replica_num: get(config, "openmldb.replica.num")
                    .map(|_| number(config, "openmldb.replica.num", 3u32, 1))
                    .transpose()?,
            },
            insert_mode,
            upsert_requested,
            batch_rows: number(config, "batch.size", 1000usize, 1)?,
            batch_bytes: number(config, "openmldb.batch.max.bytes", 4 * 1024 * 1024usize, 1024)?,
            max_inflight: number(config, "openmldb.max.inflight", 4usize, 1)?,
            backoff: Duration::from_millis(number(config, "retry.backoff.ms", 100u64, 1)?),
            backoff_max: Duration::from_millis(number(config, "retry.backoff.max.ms", 10_000u64, 1)?),
            max_retries,
            max_refused_retries: number(config, "max.refused.retries", 5u32, 0)?,
            request_timeout: Duration::from_millis(number(config, "openmldb.request.timeout.ms", 30_000u64, 100)?),
            memory_limit: match number(config, "openmldb.insert.memory.usage.limit", 0u32, 0)? {
                limit if limit <= 100 => limit,
                limit => {
                    return Err(invalid(
                        "openmldb.insert.memory.usage.limit",
                        &limit.to_string(),
                        "a share of memory in percent: 0 (no limit) to 100",
                    ));
                }
            },
        })
    }
}

/// The SQL type name of a column type.
pub fn sql_type(ty: ColumnType) -> &'static str {
    crate::plugin::column_type_name(ty)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> ConnectorConfig {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn openmldb_urls_name_the_apiserver_and_database() {
        assert_eq!(
            parse_endpoint("openmldb://127.0.0.1:9080/demo", None).unwrap(),
            Endpoint::ApiServer { apiserver: "127.0.0.1:9080".into(), database: "demo".into() }
        );
        assert_eq!(
            parse_endpoint("jdbc:openmldb:///test_db?zk=127.0.0.1:2181&zkPath=/openmldb", Some("10.0.0.5:9080"))
                .unwrap(),
            Endpoint::ApiServer { apiserver: "10.0.0.5:9080".into(), database: "test_db".into() }
        );
    }

    #[test]
    fn the_guides_zookeeper_url_is_written_natively_as_pasted() {
        let guide = "jdbc:openmldb:///rocketmq_test?zk=127.0.0.1:2181&zkPath=/openmldb_cluster";
        let Endpoint::ZooKeeper(zk) = parse_endpoint(guide, None).unwrap() else { panic!("not native") };
        assert_eq!(
            zk,
            ZooKeeperEndpoint {
                zk: "127.0.0.1:2181".into(),
                zk_path: "/openmldb_cluster".into(),
                database: "rocketmq_test".into(),
                user: "root".into(),
                password: String::new(),
                session_timeout: Duration::from_secs(10),
                request_timeout: None,
            }
        );
        let full =
            "jdbc:openmldb://ignored:1/d?zk=a:1,b:2&zkPath=/o&user=u&password=p&sessionTimeout=3000&requestTimeout=500";
        let Endpoint::ZooKeeper(zk) = parse_endpoint(full, None).unwrap() else { panic!("not native") };
        assert_eq!((zk.zk.as_str(), zk.user.as_str(), zk.password.as_str()), ("a:1,b:2", "u", "p"));
        assert_eq!(
            (zk.session_timeout, zk.request_timeout),
            (Duration::from_secs(3), Some(Duration::from_millis(500)))
        );
        let config = [("connection.url", guide), ("connection.user", "writer"), ("connection.password", "pw")];
        let config: ConnectorConfig = config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let Endpoint::ZooKeeper(zk) = WriterConfig::from_connector(&config).unwrap().endpoint else { panic!() };
        assert_eq!((zk.user.as_str(), zk.password.as_str()), ("writer", "pw"));
    }

    #[test]
    fn a_url_missing_what_it_needs_says_what_to_add() {
        let err = parse_endpoint("jdbc:openmldb:///test_db?zkPath=/openmldb", None).unwrap_err().to_string();
        assert_eq!(
            err,
            "key \"connection.url\": invalid value \"jdbc:openmldb:///test_db?zkPath=/openmldb\": the JDBC URL needs \
             zk=…: jdbc:openmldb:///test_db?zk=HOST:PORT&zkPath=/ROOT"
        );
        assert!(parse_endpoint("jdbc:openmldb:///d?zk=h:1", None).unwrap_err().to_string().contains("zkPath=…"));
        assert!(
            parse_endpoint("jdbc:openmldb:///d?zk=h&zkPath=/o", None)
                .unwrap_err()
                .to_string()
                .contains("zk: expected HOST:PORT")
        );
        assert!(parse_endpoint("mysql://x:1/db", None).is_err());
        assert!(parse_endpoint("openmldb://host/db", None).unwrap_err().to_string().contains("HOST:PORT"));
        assert!(parse_endpoint("openmldb://h:1/", None).unwrap_err().to_string().contains("names no database"));
        assert!(
            parse_endpoint("openmldb://h:1/my.db", None)
                .unwrap_err()
                .to_string()
                .contains("letters, digits and underscores")
        );
    }

    #[test]
    fn keys_are_validated_by_name_and_value() {
        let base = [("connection.url", "openmldb://h:1/d")];
        let with = |extra: &[(&str, &str)]| {
            let mut c = config(&base);
            c.extend(config(extra));
            WriterConfig::from_connector(&c)
        };
        let c = with(&[]).unwrap();
        assert_eq!((c.insert_mode, c.batch_rows, c.max_inflight, c.max_retries), (InsertMode::Insert, 1000, 4, None));
        let upsert = with(&[("insert.mode", "upsert")]).unwrap();
        assert_eq!((upsert.insert_mode, upsert.upsert_requested), (InsertMode::InsertOrIgnore, true));
        assert_eq!(
            with(&[("insert.mode", "merge")]).unwrap_err().to_string(),
            "key \"insert.mode\": invalid value \"merge\": expected INSERT, INSERT_OR_IGNORE or UPSERT"
        );
        assert_eq!(
            with(&[("batch.size", "0")]).unwrap_err().to_string(),
            "key \"batch.size\": invalid value \"0\": must be at least 1"
        );
        assert_eq!(
            with(&[("auto.create", "yes")]).unwrap_err().to_string(),
            "key \"auto.create\": invalid value \"yes\": expected true or false"
        );
        assert!(with(&[("openmldb.index.ttl.type", "forever")]).is_err());
        assert_eq!(with(&[("openmldb.insert.memory.usage.limit", "50")]).unwrap().memory_limit, 50);
        assert_eq!(
            with(&[("openmldb.insert.memory.usage.limit", "101")]).unwrap_err().to_string(),
            "key \"openmldb.insert.memory.usage.limit\": invalid value \"101\": a share of memory in percent: 0 (no limit) to 100"
        );
        assert_eq!(WriterConfig::from_connector(&config(&[])).unwrap_err(), ConfigError::Missing("connection.url"));
    }
}
