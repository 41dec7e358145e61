//! A connector's definition: the JSON RocketMQ Connect users post, read
//! into what this host runs. It owns the legacy-key aliases, the mapping
//! from RocketMQ Connect's Java class names to our built-ins, validation
//! (every error names the key and the value) and secret masking.

use super::destination::TableNameFormat;
use crate::openmldb::{ConfigError, ConnectorConfig, WriterConfig};
use crate::plugin::sandbox::{Sandbox, is_sandbox_key};
use crate::plugin::{Role, StageSpec};
use crate::rocketmq::ConsumerConfig;
use crate::sql::SqlGrantConfig;
use std::collections::BTreeMap;

/// The most tasks one connector may ask for.
pub const MAX_TASKS_LIMIT: u32 = 64;

/// What replaces a secret's value when a config is read back.
pub const MASK: &str = "********";

/// The sink connector class names RocketMQ Connect users have in their
/// JSON: the OpenMLDB guide's, the current one and the shipped examples'.
pub const SINK_CLASSES: &[&str] = &[
    "org.apache.rocketmq.connect.jdbc.connector.JdbcSinkConnector",
    "org.apache.rocketmq.connect.jdbc.sink.JdbcSinkConnector",
    "org.apache.rocketmq.connect.jdbc.mysql.sink.JdbcSinkConnector",
    "openmldb-sink",
    // Rows into the sink plugin `sink.plugin` names.
    "plugin-sink",
];

/// The JDBC source connector's class names (the MySQL source plugin).
pub const SOURCE_CLASSES: &[&str] = &[
    "org.apache.rocketmq.connect.jdbc.connector.JdbcSourceConnector",
    "org.apache.rocketmq.connect.jdbc.source.JdbcSourceConnector",
    "org.apache.rocketmq.connect.jdbc.mysql.source.JdbcSourceConnector",
    "mysql-source",
    // Records from the source plugin `source.plugin` names.
    "plugin-source",
];

/// RocketMQ Connect's JSON converter, in both of its packages.
const JSON_CONVERTER_CLASSES: &[&str] = &[
    "org.apache.rocketmq.connect.runtime.converter.JsonConverter",
    "org.apache.rocketmq.connect.runtime.converter.record.json.JsonConverter",
];

/// Hyphenated keys from before RocketMQ Connect's 2022 renaming, which
/// OpenMLDB's guide still uses, and the keys that replaced them.
const LEGACY_KEYS: &[(&str, &str)] = &[
    ("connector-class", "connector.class"),
    ("max-task", "max.tasks"),
    ("connect-topicname", "connect.topicname"),
    ("connect-topicnames", "connect.topicnames"),
    ("source-record-converter", "value.converter"),
    ("value-converter", "value.converter"),
    ("key-converter", "key.converter"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ConnectorKind {
    Sink,
    Source,
}

/// A connector definition as posted: the original keys (what is echoed
/// back), and the same config with legacy keys renamed (what runs).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorDefinition {
    pub name: String,
    pub kind: ConnectorKind,
    pub max_tasks: u32,
    /// As posted, every value a string.
    pub posted: ConnectorConfig,
    /// With legacy keys renamed to the current dotted ones.
    pub config: ConnectorConfig,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DefinitionError {
    #[error("connector name \"{0}\" is invalid: use 1 to 128 letters, digits, '.', '_' or '-'")]
    Name(String),
    #[error("the connector config must be a JSON object of keys and values: {0}")]
    NotAnObject(String),
    #[error("key \"{key}\": expected a string, number or boolean, got {got}")]
    WrongType { key: String, got: &'static str },
    #[error(
        "keys \"{legacy}\" and \"{current}\" are both set, to \"{legacy_value}\" and \"{current_value}\"; keep one"
    )]
    Conflict { legacy: String, current: String, legacy_value: String, current_value: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Connector names become consumer groups and file keys; keep them plain.
pub fn check_name(name: &str) -> Result<(), DefinitionError> {
    let ok =
        !name.is_empty() && name.len() <= 128 && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok { Ok(()) } else { Err(DefinitionError::Name(name.to_string())) }
}

/// A posted JSON object as RocketMQ Connect stores it: every value a string
/// (numbers and booleans as written); null, arrays and objects refused.
pub fn config_from_json(value: &serde_json::Value) -> Result<ConnectorConfig, DefinitionError> {
    let serde_json::Value::Object(map) = value else {
        return Err(DefinitionError::NotAnObject(format!("got {}", json_type(value))));
    };
    let mut config = ConnectorConfig::new();
    for (key, value) in map {
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            other => return Err(DefinitionError::WrongType { key: key.clone(), got: json_type(other) }),
        };
        config.insert(key.clone(), text);
    }
    Ok(config)
}

/// A posted body with `//` and `/* */` comments blanked out (outside
/// strings). RocketMQ Connect parses bodies with fastjson, which allows
/// comments, and OpenMLDB's guide posts its source connector with them.
pub fn strip_json_comments(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let (mut i, mut in_string) = (0, false);
    while i < body.len() {
        let c = body[i];
        if in_string {
            out.push(c);
            if c == b'\\' && i + 1 < body.len() {
                out.push(body[i + 1]);
                i += 1;
            } else if c == b'"' {
                in_string = false;
            }
        } else if c == b'"' {
            in_string = true;
            out.push(c);
        } else if c == b'/' && body.get(i + 1) == Some(&b'/') {
            while i < body.len() && body[i] != b'\n' {
                i += 1;
            }
            continue;
        } else if c == b'/' && body.get(i + 1) == Some(&b'*') {
            i += 2;
            while i < body.len() && !(body[i] == b'*' && body.get(i + 1) == Some(&b'/')) {
                i += 1;
            }
            i += 2;
            out.push(b' ');
            continue;
        } else {
            out.push(c);
        }
        i += 1;
    }
    out
}

fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

impl ConnectorDefinition {
    /// Read and check a posted config. Everything a task will need is
    /// parsed here, so a bad config is refused before anything changes.
    pub fn parse(name: &str, posted: ConnectorConfig, namesrv: &str) -> Result<Self, DefinitionError> {
        check_name(name)?;
        let mut config = rename_legacy_keys(&posted)?;
        resolve_references(&mut config)?;
        let class = config.get("connector.class").map(|c| c.trim()).filter(|c| !c.is_empty());
        let class = class.ok_or(ConfigError::Missing("connector.class"))?.to_string();
        let kind = if SINK_CLASSES.contains(&class.as_str()) {
            ConnectorKind::Sink
        } else if SOURCE_CLASSES.contains(&class.as_str()) {
            ConnectorKind::Source
        } else {
            return Err(invalid(
                "connector.class",
                &class,
                format!(
                    "unknown connector class; this host runs {}",
                    SINK_CLASSES.iter().chain(SOURCE_CLASSES).copied().collect::<Vec<_>>().join(", ")
                ),
            ));
        };
        let max_tasks = match config.get("max.tasks").map(|v| v.trim()) {
            None => 1,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=MAX_TASKS_LIMIT).contains(&n) => n,
                _ => {
                    return Err(invalid(
                        "max.tasks",
                        v,
                        format!("expected a whole number from 1 to {MAX_TASKS_LIMIT}"),
                    ));
                }
            },
        };
        let definition = ConnectorDefinition { name: name.to_string(), kind, max_tasks, posted, config };
        match kind {
            ConnectorKind::Sink => {
                let settings = SinkSettings::from_definition(&definition, namesrv)?;
                check_plugin_name("value.converter", &settings.converter.plugin)?;
                for (alias, transform) in transform_aliases(&definition.config).iter().zip(&settings.transforms) {
                    check_plugin_name(&format!("transforms.{alias}.type"), &transform.plugin)?;
                }
                if let SinkTarget::Plugin(sink) = &settings.target {
                    check_plugin_name("sink.plugin", &sink.plugin)?;
                }
            }
            ConnectorKind::Source => {
                for task in SourceSettings::for_tasks(&definition, namesrv)?.iter().take(1) {
                    check_plugin_name("source.plugin", &task.plugin)?;
                }
            }
        }
        Ok(definition)
    }

    /// The config as it may be shown: secrets replaced by [`MASK`].
    pub fn masked(&self) -> ConnectorConfig {
        mask_secrets(&self.posted)
    }
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> DefinitionError {
    let value = if is_url_key(key) { mask_url_credentials(value) } else { value.to_string() };
    DefinitionError::Config(ConfigError::Invalid { key: key.into(), value, reason: reason.into() })
}

/// A plugin a connector names: built-in or plugins-folder names only; a
/// file path would let a connector load any file on the host.
pub fn check_plugin_name(key: &str, name: &str) -> Result<(), DefinitionError> {
    let plain = !name.is_empty()
        && name.len() <= 128
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && !name.ends_with(".wasm")
        && !name.starts_with('.');
    if plain {
        Ok(())
    } else {
        Err(invalid(
            key,
            name,
            "name a built-in plugin or one in the worker's plugins folder (its file name without .wasm); paths are not allowed",
        ))
    }
}

/// The config with legacy keys renamed; both spellings with different
/// values is an error rather than a guess.
fn rename_legacy_keys(posted: &ConnectorConfig) -> Result<ConnectorConfig, DefinitionError> {
    let mut config = posted.clone();
    for (legacy, current) in LEGACY_KEYS {
        let Some(value) = config.remove(*legacy) else { continue };
        match config.get(*current) {
            Some(existing) if existing != &value => {
                return Err(DefinitionError::Conflict {
                    legacy: legacy.to_string(),
                    current: current.to_string(),
                    legacy_value: value,
                    current_value: existing.clone(),
                });
            }
            _ => {
                config.insert(current.to_string(), value);
            }
        }
    }
    Ok(config)
}

/// Whether a key holds a secret: passwords, secret and access keys, tokens.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "token", "credential", "accesskey", "access.key", "access_key"]
        .iter()
        .any(|word| key.contains(word))
}

pub fn mask_secrets(config: &ConnectorConfig) -> ConnectorConfig {
    config
        .iter()
        .map(|(k, v)| {
            let shown = if is_secret_key(k) && !v.is_empty() {
                MASK.to_string()
            } else if is_url_key(k) {
                mask_url_credentials(v)
            } else {
                v.clone()
            };
            (k.clone(), shown)
        })
        .collect()
}

/// Replace `${env:NAME}` and `${file:PATH}` in every value by the worker's
/// environment variable or the file's content (trailing newline removed),
/// so that a secret can be named in a config instead of written in it: the
/// posted config (stored, shown, and sent to a cluster's other workers)
/// keeps the reference, each worker resolves it itself.
fn resolve_references(config: &mut ConnectorConfig) -> Result<(), DefinitionError> {
    for (key, value) in config.iter_mut() {
        let mut resolved = String::with_capacity(value.len());
        let mut rest = value.as_str();
        while let Some(start) = rest.find("${") {
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else { break };
            let reference = &after[..end];
            let replacement = if let Some(name) = reference.strip_prefix("env:") {
                std::env::var(name).map_err(|_| {
                    invalid(key, value, format!("${{env:{name}}}: {name} is not set in this worker's environment"))
                })?
            } else if let Some(path) = reference.strip_prefix("file:") {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    invalid(key, value, format!("${{file:{path}}}: cannot read it on this worker: {e}"))
                })?;
                text.trim_end_matches(['\r', '\n']).to_string()
            } else {
                // Not a reference (e.g. `${topic}` in table.name.format).
                resolved.push_str(&rest[..start + 2 + end + 1]);
                rest = &after[end + 1..];
                continue;
            };
            resolved.push_str(&rest[..start]);
            resolved.push_str(&replacement);
            rest = &after[end + 1..];
        }
        resolved.push_str(rest);
        *value = resolved;
    }
    Ok(())
}

/// Whether a value names its secret (`${env:…}`, `${file:…}`) rather than
/// holding it.
fn is_reference(value: &str) -> bool {
    value.contains("${env:") || value.contains("${file:")
}

/// In cluster mode a posted config travels on the config topic and into
/// every worker's store: a secret written in it would travel in clear, so
/// it must be a reference each worker resolves.
pub fn check_secrets_are_references(posted: &ConnectorConfig) -> Result<(), DefinitionError> {
    for (key, value) in posted {
        let literal = if is_url_key(key) {
            mask_url_credentials(value) != *value && !is_reference(value)
        } else {
            is_secret_key(key) && !value.trim().is_empty() && !is_reference(value)
        };
        if literal {
            return Err(invalid(
                key,
                if is_url_key(key) { value } else { MASK },
                "in cluster mode a config travels to every worker over the config topic; write the secret as \
                 ${env:NAME} or ${file:/path/on/each/worker} instead of its value",
            ));
        }
    }
    Ok(())
}

/// Keys that hold a URL, which may carry a password.
fn is_url_key(key: &str) -> bool {
    key.to_ascii_lowercase().ends_with("url")
}

/// A URL with its password masked: `user:secret@` in the authority, and
/// `password=`, `secret=`, `token=` … parameters of the query.
pub fn mask_url_credentials(url: &str) -> String {
    let (before_query, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let mut masked = match before_query.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').map(|(a, p)| (a, Some(p))).unwrap_or((rest, None));
            let authority = match authority.rsplit_once('@') {
                Some((userinfo, host)) => match userinfo.split_once(':') {
                    Some((user, _)) => format!("{user}:{MASK}@{host}"),
                    None => format!("{userinfo}@{host}"),
                },
                None => authority.to_string(),
            };
            match path {
                Some(path) => format!("{scheme}://{authority}/{path}"),
                None => format!("{scheme}://{authority}"),
            }
        }
        None => before_query.to_string(),
    };
    if let Some(query) = query {
        let parameters: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, value)) if is_secret_key(key) && !value.is_empty() => format!("{key}={MASK}"),
                _ => pair.to_string(),
            })
            .collect();
        masked.push('?');
        masked.push_str(&parameters.join("&"));
    }
    masked
}

/// Everything one sink task needs, parsed from the connector config.
#[derive(Debug, Clone)]
pub struct SinkSettings {
    pub connector: String,
    /// Which of the connector's `max.tasks` tasks this is.
    pub task: u32,
    pub consumer: ConsumerConfig,
    /// The table of each message (`table.name.format`, `${topic}` by default).
    pub tables: TableNameFormat,
    /// Messages and body bytes taken into one pass of the pipeline, at most
    /// (`poll.max.messages`, `poll.max.bytes`).
    pub max_batch_messages: usize,
    pub max_batch_bytes: usize,
    pub converter: StageSpec,
    pub transforms: Vec<StageSpec>,
    /// Where rows go: OpenMLDB, or a sink plugin.
    pub target: SinkTarget,
    /// `errors.deadletterqueue.topic.name`
    pub dead_letter_topic: Option<String>,
    /// `errors.tolerance=all`: dead-letter bad messages and go on.
    pub tolerate_errors: bool,
}

/// Where a sink connector's rows go.
#[derive(Debug, Clone)]
pub enum SinkTarget {
    /// OpenMLDB, through the native writer (`connection.url` names OpenMLDB).
    OpenMldb(WriterConfig),
    /// A sink plugin writing through the SQL connection the connector grants.
    Plugin(PluginSinkConfig),
}

/// A sink plugin and what the host does around it.
#[derive(Debug, Clone)]
pub struct PluginSinkConfig {
    /// `sink.plugin`, or the built-in `mysql-sink` for a MySQL/MariaDB
    /// `connection.url`.
    pub plugin: String,
    /// The connector's keys, credentials left out.
    pub plugin_config: Vec<(String, String)>,
    /// The database connection the plugin writes through.
    pub sql: SqlGrantConfig,
    /// Its limits and grants (`plugin.*`).
    pub sandbox: Sandbox,
    /// `auto.create`: create the table from the first message that
    /// declares a schema.
    pub auto_create: bool,
    /// `pk.fields`: the primary key of a table `auto.create` makes.
    pub primary_key: Vec<String>,
    /// `max.retries` (None: until the database recovers), `retry.backoff.ms`,
    /// `retry.backoff.max.ms`.
    pub max_retries: Option<u32>,
    pub backoff: std::time::Duration,
    pub backoff_max: std::time::Duration,
}

impl SinkTarget {
    /// The target a sink connector's keys name.
    fn from_config(config: &ConnectorConfig) -> Result<SinkTarget, DefinitionError> {
        let url = config.get("connection.url").map(|u| u.trim().to_ascii_lowercase()).unwrap_or_default();
        let is_mysql = ["jdbc:mysql:", "jdbc:mariadb:", "mysql:", "mariadb:"].iter().any(|s| url.starts_with(s));
        let plugin = config.get("sink.plugin").map(|p| p.trim().to_string()).filter(|p| !p.is_empty());
        if plugin.is_none() && !is_mysql {
            return Ok(SinkTarget::OpenMldb(WriterConfig::from_connector(config)?));
        }
        let plugin = plugin.unwrap_or_else(|| "mysql-sink".to_string());
        let sql = match SqlGrantConfig::from_connector(config) {
            Ok(Some(sql)) => sql,
            Ok(None) => {
                return Err(invalid(
                    "sink.plugin",
                    &plugin,
                    "a sink plugin writes through the database its connector grants: add connection.url                      (jdbc:mysql://HOST:PORT/DATABASE), connection.user and connection.password",
                ));
            }
            Err(e) => return Err(invalid("connection.url", &e.url, e.reason)),
        };
        if sql.url.database.is_none() {
            let raw = config.get("connection.url").map(String::as_str).unwrap_or_default();
            return Err(invalid(
                "connection.url",
                raw,
                "name the database the table is in (jdbc:mysql://HOST:PORT/DATABASE)",
            ));
        }
        let number = |key: &str, default: u64| -> Result<u64, DefinitionError> {
            match config.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(raw) => raw
                    .parse::<u64>()
                    .ok()
                    .filter(|v| *v >= 1)
                    .ok_or_else(|| invalid(key, raw, "expected a whole number of at least 1")),
            }
        };
        let max_retries = match config.get("max.retries").map(|v| v.trim()).filter(|v| !v.is_empty()) {
            None | Some("-1") => None,
            Some(raw) => {
                Some(raw.parse::<u32>().map_err(|_| invalid("max.retries", raw, "expected -1 (forever) or a count"))?)
            }
        };
        let auto_create = match config.get("auto.create").map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("false") | Some("") => false,
            Some("true") => true,
            Some(_) => {
                let raw = config.get("auto.create").map(String::as_str).unwrap_or_default();
                return Err(invalid("auto.create", raw, "expected true or false"));
            }
        };
        let primary_key = config
            .get("pk.fields")
            .map(|f| f.split(',').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect())
            .unwrap_or_default();
        Ok(SinkTarget::Plugin(PluginSinkConfig {
            plugin,
            plugin_config: config
                .iter()
                .filter(|(k, _)| !is_credential(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            sql,
            sandbox: sandbox(config, None)?,
            auto_create,
            primary_key,
            max_retries,
            backoff: std::time::Duration::from_millis(number("retry.backoff.ms", 100)?),
            backoff_max: std::time::Duration::from_millis(number("retry.backoff.max.ms", 10_000)?),
        }))
    }

    /// `auto.create` was asked for.
    pub fn auto_create(&self) -> bool {
        match self {
            SinkTarget::OpenMldb(writer) => writer.auto_create,
            SinkTarget::Plugin(plugin) => plugin.auto_create,
        }
    }
}

/// The aliases of `transforms`, in order.
fn transform_aliases(config: &ConnectorConfig) -> Vec<String> {
    config
        .get("transforms")
        .map(|list| list.split(',').map(str::trim).filter(|a| !a.is_empty()).map(String::from).collect())
        .unwrap_or_default()
}

/// The built-in plugin a RocketMQ Connect converter class stands for; any
/// other value names a plugin (built-in or in the plugins folder).
fn converter_plugin(class: &str) -> String {
    if JSON_CONVERTER_CLASSES.contains(&class) { "json-converter".into() } else { class.to_string() }
}

/// The keys of `config` under `prefix`, with the prefix removed.
fn prefixed(config: &ConnectorConfig, prefix: &str) -> Vec<(String, String)> {
    config.iter().filter_map(|(k, v)| k.strip_prefix(prefix).map(|rest| (rest.to_string(), v.clone()))).collect()
}

/// Messages taken into one pass of a sink task, at most, unless
/// `poll.max.messages` says otherwise.
pub const DEFAULT_MAX_BATCH_MESSAGES: usize = 2048;
/// Body bytes taken into one pass, at most (`poll.max.bytes`): well under
/// a plugin's 64 MiB memory cap, which must hold the batch and its rows.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// A whole number of at least 1, or the default.
fn positive(config: &ConnectorConfig, key: &str, default: usize) -> Result<usize, DefinitionError> {
    match config.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|v| *v >= 1)
            .ok_or_else(|| invalid(key, raw, "expected a whole number of at least 1")),
    }
}

/// `table.name.format` and `table.name.from.header`, checked against the
/// connector's topics where the table depends only on the topic.
fn table_name_format(config: &ConnectorConfig, topics: &[String]) -> Result<TableNameFormat, DefinitionError> {
    let template = config.get("table.name.format").map(|f| f.trim()).filter(|f| !f.is_empty()).unwrap_or("${topic}");
    let unknown = template.replace("${topic}", "").replace("${schema}", "");
    if unknown.contains("${") {
        return Err(invalid("table.name.format", template, "the placeholders are ${topic} and ${schema}"));
    }
    let from_header = match config.get("table.name.from.header").map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            let raw = config.get("table.name.from.header").map(String::as_str).unwrap_or_default();
            return Err(invalid("table.name.from.header", raw, "expected true or false"));
        }
    };
    if !template.contains("${schema}") {
        for topic in topics {
            let table = template.replace("${topic}", topic);
            if table.is_empty() || !table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(invalid(
                    "table.name.format",
                    template,
                    format!(
                        "topic {topic} gives the table name \"{table}\": use letters, digits and '_', or set a table name"
                    ),
                ));
            }
        }
    }
    Ok(TableNameFormat::new(template, from_header))
}

impl SinkSettings {
    /// A sink task's settings from RocketMQ Connect's keys (legacy or
    /// current spelling).
    pub fn from_config(connector: &str, namesrv: &str, posted: &ConnectorConfig) -> Result<Self, DefinitionError> {
        let config = rename_legacy_keys(posted)?;
        let consumer = ConsumerConfig::for_sink_connector(namesrv, connector, &config)?;
        let converter_class = config
            .get("value.converter")
            .map(String::as_str)
            .unwrap_or("org.apache.rocketmq.connect.runtime.converter.JsonConverter");
        let mut converter_config = stage_config(&config, "value.converter.");
        if let Some(zone) = config.get("db.timezone") {
            converter_config.push(("timezone".into(), zone.clone()));
        }
        let converter = StageSpec {
            plugin: converter_plugin(converter_class.trim()),
            config: converter_config,
            sandbox: sandbox(&config, Some("value.converter."))?,
        };
        let mut transforms = Vec::new();
        for alias in transform_aliases(&config) {
            let plugin = config.get(&format!("transforms.{alias}.type")).cloned().unwrap_or_else(|| alias.clone());
            let prefix = format!("transforms.{alias}.");
            let options = stage_config(&config, &prefix).into_iter().filter(|(k, _)| k != "type");
            transforms.push(StageSpec { plugin, config: options.collect(), sandbox: sandbox(&config, Some(&prefix))? });
        }
        let tables = table_name_format(&config, &consumer.topics)?;
        let tolerate_errors = match config.get("errors.tolerance").map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("none") => false,
            Some("all") => true,
            Some(_) => {
                let value = config.get("errors.tolerance").map(String::as_str).unwrap_or_default();
                return Err(invalid("errors.tolerance", value, "expected none or all"));
            }
        };
        let dead_letter_topic =
            config.get("errors.deadletterqueue.topic.name").map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
        if tolerate_errors && dead_letter_topic.is_none() {
            let value = config.get("errors.tolerance").map(String::as_str).unwrap_or_default();
            return Err(invalid(
                "errors.tolerance",
                value,
                "\"all\" sends the messages that cannot be stored to the dead-letter topic, and none is set: \
                 add errors.deadletterqueue.topic.name (without it they would be lost)",
            ));
        }
        Ok(SinkSettings {
            connector: connector.to_string(),
            task: 0,
            consumer,
            tables,
            max_batch_messages: positive(&config, "poll.max.messages", DEFAULT_MAX_BATCH_MESSAGES)?,
            max_batch_bytes: positive(&config, "poll.max.bytes", DEFAULT_MAX_BATCH_BYTES)?,
            converter,
            transforms,
            target: SinkTarget::from_config(&config)?,
            dead_letter_topic,
            tolerate_errors,
        })
    }

    pub fn from_definition(definition: &ConnectorDefinition, namesrv: &str) -> Result<Self, DefinitionError> {
        Self::from_config(&definition.name, namesrv, &definition.config)
    }

    /// Every plugin the task loads, with the role it must have.
    pub fn plugins(&self) -> Vec<(String, Role)> {
        let mut plugins = vec![(self.converter.plugin.clone(), Role::Converter)];
        plugins.extend(self.transforms.iter().map(|t| (t.plugin.clone(), Role::Transform)));
        if let SinkTarget::Plugin(sink) = &self.target {
            plugins.push((sink.plugin.clone(), Role::Sink));
        }
        plugins
    }
}

/// Everything one source task needs, parsed from the connector config.
#[derive(Debug, Clone)]
pub struct SourceSettings {
    pub connector: String,
    /// Which of the connector's tasks this is.
    pub task: u32,
    pub namesrv: String,
    /// The source plugin (built-in `mysql-source` for the JDBC classes).
    pub plugin: String,
    /// The connector's keys for the plugin, credentials left out, plus
    /// `tables`: this task's share of `table.whitelist`.
    pub plugin_config: Vec<(String, String)>,
    /// The database connection the connector grants its plugin, if any.
    pub sql: Option<SqlGrantConfig>,
    /// Its limits and grants (`plugin.*`).
    pub sandbox: Sandbox,
}

/// Keys a plugin never sees: the credentials, and its own limits and
/// grants, stay in the host.
fn is_credential(key: &str) -> bool {
    key == "connection.user" || is_secret_key(key) || is_sandbox_key(key)
}

/// A stage's limits and grants (`plugin.*`, overridden by
/// `<stage_prefix>plugin.*`).
fn sandbox(config: &ConnectorConfig, stage_prefix: Option<&str>) -> Result<Sandbox, DefinitionError> {
    Sandbox::from_config(config, stage_prefix).map_err(|e| invalid(&e.key, &e.value, e.reason))
}

/// The keys of `config` under `prefix` a stage's plugin sees: prefix
/// removed, its limits and grants left out.
fn stage_config(config: &ConnectorConfig, prefix: &str) -> Vec<(String, String)> {
    prefixed(config, prefix).into_iter().filter(|(k, _)| !is_sandbox_key(k)).collect()
}

impl SourceSettings {
    /// One settings per task: the tables of `table.whitelist` dealt out
    /// over `min(max.tasks, tables)` tasks, as RocketMQ Connect does.
    pub fn for_tasks(definition: &ConnectorDefinition, namesrv: &str) -> Result<Vec<SourceSettings>, DefinitionError> {
        let config = &definition.config;
        if is_plugin_source(definition) {
            let plugin = config.get("source.plugin").map(|p| p.trim()).unwrap_or_default();
            return Self::for_plugin(definition, namesrv, plugin);
        }
        let sql = SqlGrantConfig::from_connector(config)
            .map_err(|e| invalid("connection.url", &e.url, e.reason))?
            .ok_or(ConfigError::Missing("connection.url"))?;
        if config.get("query").is_some_and(|q| !q.trim().is_empty()) {
            let query = config.get("query").map(String::as_str).unwrap_or_default();
            return Err(invalid("query", query, "custom query mode is not supported; list tables in table.whitelist"));
        }
        let mode = config.get("mode").map(|m| m.trim().to_ascii_lowercase()).ok_or(ConfigError::Missing("mode"))?;
        if !["bulk", "incrementing", "timestamp", "timestamp+incrementing"].contains(&mode.as_str()) {
            let raw = config.get("mode").map(String::as_str).unwrap_or_default();
            return Err(invalid("mode", raw, "expected bulk, incrementing, timestamp or timestamp+incrementing"));
        }
        if mode.contains("timestamp") && config.get("timestamp.column.name").is_none_or(|c| c.trim().is_empty()) {
            return Err(ConfigError::Missing("timestamp.column.name").into());
        }
        if mode.contains("incrementing") && !config.contains_key("incrementing.column.name") {
            return Err(ConfigError::Missing("incrementing.column.name").into());
        }
        for key in ["poll.interval.ms", "batch.max.rows", "timestamp.delay.interval.ms"] {
            if let Some(value) = config.get(key)
                && value.trim().parse::<u64>().is_err()
            {
                return Err(invalid(key, value, "expected a whole number"));
            }
        }
        let shares = table_shares(definition);
        if shares.is_empty() {
            return Err(ConfigError::Missing("table.whitelist").into());
        }
        let base: Vec<(String, String)> =
            config.iter().filter(|(k, _)| !is_credential(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
        let sandbox = sandbox(config, None)?;
        Ok(shares
            .into_iter()
            .enumerate()
            .map(|(task, share)| {
                let mut plugin_config = base.clone();
                plugin_config.push(("tables".into(), share));
                SourceSettings {
                    connector: definition.name.clone(),
                    task: task as u32,
                    namesrv: namesrv.to_string(),
                    plugin: "mysql-source".into(),
                    plugin_config,
                    sql: Some(sql.clone()),
                    sandbox: sandbox.clone(),
                }
            })
            .collect())
    }

    /// A user's source plugin (`source.plugin`): one task, whatever
    /// `max.tasks` says (the host cannot know how to split its stream),
    /// with every key but the credentials, and the connection if
    /// `connection.url` grants one.
    fn for_plugin(
        definition: &ConnectorDefinition,
        namesrv: &str,
        plugin: &str,
    ) -> Result<Vec<SourceSettings>, DefinitionError> {
        let config = &definition.config;
        let sql = SqlGrantConfig::from_connector(config).map_err(|e| invalid("connection.url", &e.url, e.reason))?;
        Ok(vec![SourceSettings {
            connector: definition.name.clone(),
            task: 0,
            namesrv: namesrv.to_string(),
            plugin: plugin.to_string(),
            plugin_config: config
                .iter()
                .filter(|(k, _)| !is_credential(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            sql,
            sandbox: sandbox(config, None)?,
        }])
    }
}

/// Each plugin of a connector with its limits and grants, as `/v1` shows
/// them: `[{"stage", "plugin", "sandbox"}]`.
pub fn plugin_sandboxes(definition: &ConnectorDefinition, namesrv: &str) -> Vec<serde_json::Value> {
    let entry = |stage: &str, plugin: &str, sandbox: &Sandbox| serde_json::json!({"stage": stage, "plugin": plugin, "sandbox": sandbox.describe()});
    match definition.kind {
        ConnectorKind::Sink => {
            let Ok(settings) = SinkSettings::from_definition(definition, namesrv) else { return Vec::new() };
            let mut out = vec![entry("converter", &settings.converter.plugin, &settings.converter.sandbox)];
            out.extend(settings.transforms.iter().map(|t| entry("transform", &t.plugin, &t.sandbox)));
            if let SinkTarget::Plugin(sink) = &settings.target {
                out.push(entry("sink", &sink.plugin, &sink.sandbox));
            }
            out
        }
        ConnectorKind::Source => SourceSettings::for_tasks(definition, namesrv)
            .ok()
            .and_then(|tasks| tasks.into_iter().next())
            .map(|task| vec![entry("source", &task.plugin, &task.sandbox)])
            .unwrap_or_default(),
    }
}

/// A source connector naming a user's source plugin (`source.plugin`)
/// instead of the built-in MySQL source.
fn is_plugin_source(definition: &ConnectorDefinition) -> bool {
    definition.config.get("source.plugin").map(|p| p.trim()).is_some_and(|p| !p.is_empty() && p != "mysql-source")
}

/// A source's tables dealt round robin over `min(max.tasks, tables)`
/// tasks (RocketMQ Connect's `JdbcSourceConnector.taskConfigs`), each
/// share as a comma list.
fn table_shares(definition: &ConnectorDefinition) -> Vec<String> {
    let tables: Vec<&str> = definition
        .config
        .get("table.whitelist")
        .map(|list| list.split(',').map(str::trim).filter(|t| !t.is_empty()).collect())
        .unwrap_or_default();
    let tasks = (definition.max_tasks as usize).min(tables.len());
    (0..tasks).map(|task| tables.iter().skip(task).step_by(tasks).copied().collect::<Vec<_>>().join(",")).collect()
}

/// The task configs RocketMQ Connect shows under `/connectors/{name}/tasks`:
/// the connector's config plus the keys the runtime stamps on each task
/// (a source task's `tables` too).
pub fn task_configs(definition: &ConnectorDefinition) -> Vec<BTreeMap<String, String>> {
    let stamp = |task: usize| {
        let mut config = definition.masked();
        config.insert("task.id".into(), task.to_string());
        config
    };
    match definition.kind {
        ConnectorKind::Sink => (0..definition.max_tasks as usize).map(stamp).collect(),
        ConnectorKind::Source if is_plugin_source(definition) => vec![stamp(0)],
        ConnectorKind::Source => table_shares(definition)
            .into_iter()
            .enumerate()
            .map(|(task, tables)| {
                let mut config = stamp(task);
                config.insert("tables".into(), tables);
                config
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(pairs: &[(&str, &str)]) -> ConnectorConfig {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn guide_sink() -> ConnectorConfig {
        config(&[
            ("connector-class", "org.apache.rocketmq.connect.jdbc.connector.JdbcSinkConnector"),
            ("max-task", "1"),
            ("connect-topicname", "employee_test"),
            ("connection.url", "jdbc:openmldb:///rocketmq_test?zk=127.0.0.1:2181&zkPath=/openmldb_cluster"),
            ("openmldb.apiserver", "127.0.0.1:9080"),
            ("insert.mode", "INSERT"),
            ("db.timezone", "UTC"),
            ("table.types", "TABLE"),
            ("auto.create", "true"),
            ("source-record-converter", "org.apache.rocketmq.connect.runtime.converter.JsonConverter"),
        ])
    }

    #[test]
    fn the_guides_sink_json_is_a_sink_with_one_task() {
        let d = ConnectorDefinition::parse("jdbc-openmldb-sink-test", guide_sink(), "127.0.0.1:9876").unwrap();
        assert_eq!((d.kind, d.max_tasks), (ConnectorKind::Sink, 1));
        assert_eq!(d.config["connect.topicname"], "employee_test");
        assert_eq!(d.posted["connect-topicname"], "employee_test");
        let s = SinkSettings::from_definition(&d, "127.0.0.1:9876").unwrap();
        assert_eq!((s.tables.fixed(), s.converter.plugin.as_str()), (None, "json-converter"));
        assert_eq!(s.tables.describe(), "${topic}");
        assert_eq!(s.consumer.group, "connect-jdbc-openmldb-sink-test");
    }

    #[test]
    fn transforms_and_error_keys_map_to_the_task() {
        let mut c = guide_sink();
        c.extend(config(&[
            ("transforms", "adults, hide"),
            ("transforms.adults.type", "filter"),
            ("transforms.adults.field", "howold"),
            ("transforms.hide.type", "mask"),
            ("transforms.hide.fields", "name"),
            ("errors.tolerance", "ALL"),
            ("errors.deadletterqueue.topic.name", "dlq"),
        ]));
        let s = SinkSettings::from_config("s", "n:1", &c).unwrap();
        assert_eq!(s.transforms.iter().map(|t| t.plugin.as_str()).collect::<Vec<_>>(), ["filter", "mask"]);
        assert_eq!(s.transforms[0].config, vec![("field".to_string(), "howold".to_string())]);
        assert_eq!(s.converter.config, vec![("timezone".to_string(), "UTC".to_string())]);
        assert_eq!((s.tolerate_errors, s.dead_letter_topic.as_deref()), (true, Some("dlq")));
    }

    #[test]
    fn errors_name_the_key_and_the_value() {
        let err = |pairs: &[(&str, &str)]| {
            let mut c = guide_sink();
            for (k, v) in pairs {
                c.insert(k.to_string(), v.to_string());
            }
            ConnectorDefinition::parse("s", c, "n:1").unwrap_err().to_string()
        };
        assert_eq!(
            err(&[("connector-class", "com.example.Nope")]),
            "key \"connector.class\": invalid value \"com.example.Nope\": unknown connector class; this host runs \
             org.apache.rocketmq.connect.jdbc.connector.JdbcSinkConnector, \
             org.apache.rocketmq.connect.jdbc.sink.JdbcSinkConnector, \
             org.apache.rocketmq.connect.jdbc.mysql.sink.JdbcSinkConnector, openmldb-sink, plugin-sink, \
             org.apache.rocketmq.connect.jdbc.connector.JdbcSourceConnector, \
             org.apache.rocketmq.connect.jdbc.source.JdbcSourceConnector, \
             org.apache.rocketmq.connect.jdbc.mysql.source.JdbcSourceConnector, mysql-source, plugin-source"
        );
        assert_eq!(
            err(&[("max-task", "lots")]),
            "key \"max.tasks\": invalid value \"lots\": expected a whole number from 1 to 64"
        );
        assert_eq!(
            err(&[("errors.tolerance", "some")]),
            "key \"errors.tolerance\": invalid value \"some\": expected none or all"
        );
        assert_eq!(
            err(&[("max.tasks", "2")]),
            "keys \"max-task\" and \"max.tasks\" are both set, to \"1\" and \"2\"; keep one"
        );
        let mut c = guide_sink();
        c.remove("connect-topicname");
        assert_eq!(
            ConnectorDefinition::parse("s", c, "n:1").unwrap_err().to_string(),
            "missing required key \"connect.topicnames\""
        );
        let mut c = guide_sink();
        c.remove("connector-class");
        assert_eq!(
            ConnectorDefinition::parse("s", c, "n:1").unwrap_err().to_string(),
            "missing required key \"connector.class\""
        );
        assert!(matches!(ConnectorDefinition::parse("a b", guide_sink(), "n:1"), Err(DefinitionError::Name(_))));
    }

    #[test]
    fn json_values_are_stringified_and_structures_refused() {
        let c = config_from_json(&json!({"max.tasks": 2, "auto.create": true, "name": "x"})).unwrap();
        assert_eq!((c["max.tasks"].as_str(), c["auto.create"].as_str()), ("2", "true"));
        assert_eq!(
            config_from_json(&json!({"connect.topicnames": ["a"]})).unwrap_err().to_string(),
            "key \"connect.topicnames\": expected a string, number or boolean, got an array"
        );
        assert_eq!(
            config_from_json(&json!([1])).unwrap_err().to_string(),
            "the connector config must be a JSON object of keys and values: got an array"
        );
    }

    fn guide_source() -> ConnectorConfig {
        config(&[
            ("connector-class", "org.apache.rocketmq.connect.jdbc.connector.JdbcSourceConnector"),
            ("max-task", "1"),
            ("connection.url", "jdbc:mysql://127.0.0.1:3306"),
            ("connection.user", "reader"),
            ("connection.password", "secret"),
            ("table.whitelist", "test_database.employee_test"),
            ("mode", "incrementing"),
            ("incrementing.column.name", "id"),
            ("source-record-converter", "org.apache.rocketmq.connect.runtime.converter.JsonConverter"),
        ])
    }

    #[test]
    fn the_guides_source_json_is_a_source_whose_plugin_never_sees_credentials() {
        let d = ConnectorDefinition::parse("jdbc-mysql-source-test", guide_source(), "n:1").unwrap();
        assert_eq!((d.kind, d.max_tasks), (ConnectorKind::Source, 1));
        let tasks = SourceSettings::for_tasks(&d, "n:1").unwrap();
        assert_eq!(tasks.len(), 1);
        let keys: Vec<&str> = tasks[0].plugin_config.iter().map(|(k, _)| k.as_str()).collect();
        assert!(!keys.contains(&"connection.password") && !keys.contains(&"connection.user"), "{keys:?}");
        assert!(tasks[0].plugin_config.contains(&("tables".into(), "test_database.employee_test".into())));
        let sql = tasks[0].sql.as_ref().unwrap();
        assert_eq!((sql.user.as_str(), sql.password.as_str()), ("reader", "secret"));
    }

    #[test]
    fn source_tables_are_dealt_over_the_tasks() {
        let mut c = guide_source();
        c.insert("max-task".into(), "2".into());
        c.insert("table.whitelist".into(), "db.a, db.b, db.c".into());
        let d = ConnectorDefinition::parse("s", c, "n:1").unwrap();
        let shares: Vec<String> = task_configs(&d).into_iter().map(|t| t["tables"].clone()).collect();
        assert_eq!(shares, ["db.a,db.c", "db.b"]);
    }

    #[test]
    fn source_errors_name_the_key_and_the_value() {
        let err = |key: &str, value: Option<&str>| {
            let mut c = guide_source();
            match value {
                Some(v) => c.insert(key.to_string(), v.to_string()),
                None => c.remove(key),
            };
            ConnectorDefinition::parse("s", c, "n:1").unwrap_err().to_string()
        };
        assert_eq!(
            err("mode", Some("sometimes")),
            "key \"mode\": invalid value \"sometimes\": expected bulk, incrementing, timestamp or timestamp+incrementing"
        );
        assert_eq!(err("table.whitelist", None), "missing required key \"table.whitelist\"");
        assert_eq!(err("connection.url", None), "missing required key \"connection.url\"");
        assert!(err("connection.url", Some("jdbc:mysql://h:x")).starts_with("key \"connection.url\": invalid value"));
        assert_eq!(
            err("poll.interval.ms", Some("soon")),
            "key \"poll.interval.ms\": invalid value \"soon\": expected a whole number"
        );
    }

    #[test]
    fn comments_are_allowed_as_fastjson_allows_them() {
        let body = br#"{
            "mode": "incrementing",     // Incremental pull method
            "url": "jdbc:mysql://h:1/db", /* a block */ "x": "a//b"
        }"#;
        let value: serde_json::Value = serde_json::from_slice(&strip_json_comments(body)).unwrap();
        assert_eq!(value, json!({"mode": "incrementing", "url": "jdbc:mysql://h:1/db", "x": "a//b"}));
    }

    #[test]
    fn a_plugin_is_named_never_a_path() {
        for (key, value) in [
            ("value.converter", "/tmp/evil.wasm"),
            ("value.converter", "../plugins/x"),
            ("transforms.t.type", "evil.wasm"),
        ] {
            let mut c = guide_sink();
            c.remove("source-record-converter");
            c.insert(key.to_string(), value.to_string());
            if key.starts_with("transforms") {
                c.insert("transforms".into(), "t".into());
            }
            let err = ConnectorDefinition::parse("s", c, "n:1").unwrap_err().to_string();
            assert!(
                err.contains(&format!("key \"{key}\": invalid value \"{value}\""))
                    && err.contains("paths are not allowed"),
                "{err}"
            );
        }
    }

    #[test]
    fn secrets_can_be_named_and_each_worker_resolves_them() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db-password");
        std::fs::write(&file, "from-a-file\n").unwrap();
        let mut c = guide_sink();
        c.insert("connection.password".into(), format!("${{file:{}}}", file.display()));
        c.insert("connection.user".into(), "${env:HOME}".into());
        c.insert("table.name.format".into(), "t_${topic}".into());
        let d = ConnectorDefinition::parse("s", c.clone(), "n:1").unwrap();
        assert_eq!(d.config["connection.password"], "from-a-file");
        assert_eq!(d.config["connection.user"], std::env::var("HOME").unwrap());
        assert_eq!(d.config["table.name.format"], "t_${topic}", "other placeholders are left alone");
        assert!(d.posted["connection.password"].starts_with("${file:"), "the posted config keeps the reference");
        assert!(check_secrets_are_references(&d.posted).is_ok());

        c.insert("connection.password".into(), "${env:RMQ_OPENMLDB_SURELY_UNSET}".into());
        let e = ConnectorDefinition::parse("s", c.clone(), "n:1").unwrap_err().to_string();
        assert!(e.contains("connection.password") && e.contains("RMQ_OPENMLDB_SURELY_UNSET is not set"), "{e}");

        c.insert("connection.password".into(), "literal".into());
        let e = check_secrets_are_references(&c).unwrap_err().to_string();
        assert!(e.contains("connection.password") && e.contains("${env:NAME}") && !e.contains("literal"), "{e}");
        c.remove("connection.password");
        c.insert("connection.url".into(), "jdbc:mysql://u:pw@h:3306/db".into());
        let e = check_secrets_are_references(&c).unwrap_err().to_string();
        assert!(e.contains("connection.url") && !e.contains(":pw@"), "{e}");
    }

    #[test]
    fn passwords_inside_urls_are_masked_too() {
        assert_eq!(
            mask_url_credentials("jdbc:mysql://writer:hunter2@db:3306/shop?useSSL=false&password=hunter2"),
            "jdbc:mysql://writer:********@db:3306/shop?useSSL=false&password=********"
        );
        assert_eq!(mask_url_credentials("openmldb://127.0.0.1:9080/db"), "openmldb://127.0.0.1:9080/db");
        let mut c = guide_sink();
        c.insert("connection.url".into(), "jdbc:mysql://u:pw@h:1/db".into());
        let d = ConnectorDefinition::parse("s", c, "n:1").unwrap();
        assert_eq!(d.masked()["connection.url"], "jdbc:mysql://u:********@h:1/db");
        let mut bad = guide_sink();
        bad.insert("connection.url".into(), "jdbc:mysql://u:pw@h:x/db".into());
        let err = ConnectorDefinition::parse("s", bad, "n:1").unwrap_err().to_string();
        assert!(!err.contains("pw@") && err.contains("u:********@"), "{err}");
    }

    #[test]
    fn secrets_are_masked_when_read_back() {
        let mut c = guide_sink();
        c.insert("connection.password".into(), "hunter2".into());
        c.insert("accessKey".into(), "AK".into());
        let d = ConnectorDefinition::parse("s", c, "n:1").unwrap();
        let masked = d.masked();
        assert_eq!((masked["connection.password"].as_str(), masked["accessKey"].as_str()), (MASK, MASK));
        assert_eq!(masked["connection.url"], d.posted["connection.url"]);
        assert_eq!(d.config["connection.password"], "hunter2");
    }
}
