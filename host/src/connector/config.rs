//! A connector's definition: the JSON RocketMQ Connect users post, read
//! into what this host runs. It owns the legacy-key aliases, the mapping
//! from RocketMQ Connect's Java class names to our built-ins, validation
//! (every error names the key and the value) and secret masking.

use crate::openmldb::{ConfigError, ConnectorConfig, WriterConfig};
use crate::plugin::StageSpec;
use crate::rocketmq::ConsumerConfig;
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
];

/// The JDBC source connector's class names (the MySQL source plugin).
pub const SOURCE_CLASSES: &[&str] = &[
    "org.apache.rocketmq.connect.jdbc.connector.JdbcSourceConnector",
    "org.apache.rocketmq.connect.jdbc.source.JdbcSourceConnector",
    "org.apache.rocketmq.connect.jdbc.mysql.source.JdbcSourceConnector",
    "mysql-source",
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
        let config = rename_legacy_keys(&posted)?;
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
                format!("unknown connector class; this host runs {}", SINK_CLASSES.join(", ")),
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
                SinkSettings::from_definition(&definition, namesrv)?;
            }
            ConnectorKind::Source => {
                return Err(invalid(
                    "connector.class",
                    &class,
                    "source connectors (the MySQL source plugin) are not in this build yet; it runs sink connectors",
                ));
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
    DefinitionError::Config(ConfigError::Invalid { key: key.into(), value: value.into(), reason: reason.into() })
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
        .map(|(k, v)| (k.clone(), if is_secret_key(k) && !v.is_empty() { MASK.to_string() } else { v.clone() }))
        .collect()
}

/// Everything one sink task needs, parsed from the connector config.
#[derive(Debug, Clone)]
pub struct SinkSettings {
    pub connector: String,
    /// Which of the connector's `max.tasks` tasks this is.
    pub task: u32,
    pub consumer: ConsumerConfig,
    pub table: String,
    pub converter: StageSpec,
    pub transforms: Vec<StageSpec>,
    pub writer: WriterConfig,
    /// `errors.deadletterqueue.topic.name`
    pub dead_letter_topic: Option<String>,
    /// `errors.tolerance=all`: dead-letter bad messages and go on.
    pub tolerate_errors: bool,
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
        let mut converter_config = prefixed(&config, "value.converter.");
        if let Some(zone) = config.get("db.timezone") {
            converter_config.push(("timezone".into(), zone.clone()));
        }
        let converter = StageSpec { plugin: converter_plugin(converter_class.trim()), config: converter_config };
        let mut transforms = Vec::new();
        for alias in config.get("transforms").map(|l| l.split(',').map(str::trim).collect()).unwrap_or(Vec::new()) {
            if alias.is_empty() {
                continue;
            }
            let plugin = config.get(&format!("transforms.{alias}.type")).cloned().unwrap_or_else(|| alias.to_string());
            let options = prefixed(&config, &format!("transforms.{alias}.")).into_iter().filter(|(k, _)| k != "type");
            transforms.push(StageSpec { plugin, config: options.collect() });
        }
        let topic = consumer.topics.first().cloned().unwrap_or_default();
        let table = config.get("table.name.format").map(|f| f.replace("${topic}", &topic)).unwrap_or(topic);
        let tolerate_errors = match config.get("errors.tolerance").map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("none") => false,
            Some("all") => true,
            Some(_) => {
                let value = config.get("errors.tolerance").map(String::as_str).unwrap_or_default();
                return Err(invalid("errors.tolerance", value, "expected none or all"));
            }
        };
        Ok(SinkSettings {
            connector: connector.to_string(),
            task: 0,
            consumer,
            table,
            converter,
            transforms,
            writer: WriterConfig::from_connector(&config)?,
            dead_letter_topic: config.get("errors.deadletterqueue.topic.name").cloned(),
            tolerate_errors,
        })
    }

    pub fn from_definition(definition: &ConnectorDefinition, namesrv: &str) -> Result<Self, DefinitionError> {
        Self::from_config(&definition.name, namesrv, &definition.config)
    }
}

/// The task configs RocketMQ Connect shows under `/connectors/{name}/tasks`:
/// the connector's config plus the keys the runtime stamps on each task.
pub fn task_configs(definition: &ConnectorDefinition) -> Vec<BTreeMap<String, String>> {
    (0..definition.max_tasks)
        .map(|task| {
            let mut config = definition.masked();
            config.insert("task.id".into(), task.to_string());
            config
        })
        .collect()
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
        assert_eq!((s.table.as_str(), s.converter.plugin.as_str()), ("employee_test", "json-converter"));
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
             org.apache.rocketmq.connect.jdbc.mysql.sink.JdbcSinkConnector, openmldb-sink"
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
