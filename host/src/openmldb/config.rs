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

/// An APIServer and the database to write to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host:port` of the APIServer.
    pub apiserver: String,
    pub database: String,
}

/// `connection.url` (+ `openmldb.apiserver`): either
/// `openmldb://HOST:PORT/DB`, or the OpenMLDB guide's
/// `jdbc:openmldb:///DB?zk=…&zkPath=…` with `openmldb.apiserver=HOST:PORT`
/// (the APIServer does not register in ZooKeeper, so it cannot be found
/// from the URL).
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
        return Ok(Endpoint { apiserver, database });
    }
    if let Some(rest) = url.strip_prefix("jdbc:openmldb://") {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let database = database_of(path)?;
        let apiserver = match apiserver_override {
            Some(a) => a.to_string(),
            None => {
                let found = if authority.is_empty() { "ZooKeeper (zk=…)" } else { "a host that is not an APIServer" };
                return Err(invalid(
                    key,
                    url,
                    format!(
                        "this JDBC URL reaches OpenMLDB through {found}, and the APIServer is not registered there: \
                         add \"openmldb.apiserver\": \"HOST:PORT\" (the APIServer's --endpoint, 9080 by default) \
                         or use connection.url \"openmldb://HOST:PORT/{database}\""
                    ),
                ));
            }
        };
        return Ok(Endpoint { apiserver, database });
    }
    Err(invalid(
        key,
        url,
        "expected openmldb://HOST:PORT/DATABASE or jdbc:openmldb:///DATABASE?zk=… with openmldb.apiserver",
    ))
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
        let endpoint = parse_endpoint(url, get(config, "openmldb.apiserver"))?;
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
            Endpoint { apiserver: "127.0.0.1:9080".into(), database: "demo".into() }
        );
        assert_eq!(
            parse_endpoint("jdbc:openmldb:///test_db?zk=127.0.0.1:2181&zkPath=/openmldb", Some("10.0.0.5:9080"))
                .unwrap(),
            Endpoint { apiserver: "10.0.0.5:9080".into(), database: "test_db".into() }
        );
    }

    #[test]
    fn a_zookeeper_url_without_an_apiserver_says_what_to_add() {
        let err = parse_endpoint("jdbc:openmldb:///test_db?zk=127.0.0.1:2181&zkPath=/openmldb", None)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "key \"connection.url\": invalid value \"jdbc:openmldb:///test_db?zk=127.0.0.1:2181&zkPath=/openmldb\""
            ),
            "{err}"
        );
        assert!(err.contains("add \"openmldb.apiserver\": \"HOST:PORT\""), "{err}");
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
        assert_eq!(WriterConfig::from_connector(&config(&[])).unwrap_err(), ConfigError::Missing("connection.url"));
    }
}
