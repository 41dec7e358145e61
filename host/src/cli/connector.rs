//! `rmq-openmldb connector sink --config CONNECTOR.json`: run one sink
//! connector in the foreground, from RocketMQ Connect's connector JSON (the
//! keys OpenMLDB's guide uses). The worker and its REST API will run the
//! same task; this is the way to try a connector without them.

use crate::connector::{SinkSettings, run_sink_task};
use crate::openmldb::{ConnectorConfig, WriterConfig};
use crate::plugin::{PluginCatalog, PluginEngine, RuntimeConfig, StageSpec, default_cache_dir};
use crate::rocketmq::{ConsumerConfig, RocketMqClient};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Subcommand, Debug)]
pub enum ConnectorCommand {
    /// Run a sink connector until Ctrl-C (or `--for-seconds`).
    Sink(SinkArgs),
}

#[derive(Args, Debug)]
pub struct SinkArgs {
    /// The connector's JSON config, as posted to RocketMQ Connect.
    #[arg(long)]
    pub config: PathBuf,
    /// The connector's name (its consumer group is `connect-<name>`).
    #[arg(long, default_value = "openmldb-sink")]
    pub name: String,
    #[arg(long, default_value = "127.0.0.1:9876")]
    pub namesrv: String,
    /// Folder of user plugins.
    #[arg(long, env = "RMQ_OPENMLDB_PLUGINS_DIR")]
    pub plugins_dir: Option<PathBuf>,
    /// Stop after this long.
    #[arg(long)]
    pub for_seconds: Option<u64>,
}

/// The built-in plugin a RocketMQ Connect converter class stands for.
fn converter_plugin(class: &str) -> String {
    match class {
        "org.apache.rocketmq.connect.runtime.converter.JsonConverter"
        | "org.apache.rocketmq.connect.runtime.converter.record.json.JsonConverter" => "json-converter".into(),
        other => other.to_string(),
    }
}

/// The keys of `config` under `prefix`, with the prefix removed.
fn prefixed(config: &ConnectorConfig, prefix: &str) -> Vec<(String, String)> {
    config.iter().filter_map(|(k, v)| k.strip_prefix(prefix).map(|rest| (rest.to_string(), v.clone()))).collect()
}

pub fn settings_from(name: &str, namesrv: &str, config: &ConnectorConfig) -> Result<SinkSettings> {
    let consumer = ConsumerConfig::for_sink_connector(namesrv, name, config)?;
    let converter_class = ["value.converter", "source-record-converter", "value-converter"]
        .iter()
        .find_map(|k| config.get(*k))
        .map(String::as_str)
        .unwrap_or("org.apache.rocketmq.connect.runtime.converter.JsonConverter");
    let mut converter_config = prefixed(config, "value.converter.");
    if let Some(zone) = config.get("db.timezone") {
        converter_config.push(("timezone".into(), zone.clone()));
    }
    let converter = StageSpec { plugin: converter_plugin(converter_class), config: converter_config };
    let transforms = config
        .get("transforms")
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| StageSpec {
                    plugin: config.get(&format!("transforms.{t}.type")).cloned().unwrap_or_else(|| t.to_string()),
                    config: prefixed(config, &format!("transforms.{t}."))
                        .into_iter()
                        .filter(|(k, _)| k != "type")
                        .collect(),
                })
                .collect()
        })
        .unwrap_or_default();
    let topic = consumer.topics.first().cloned().unwrap_or_default();
    let table = config.get("table.name.format").map(|f| f.replace("${topic}", &topic)).unwrap_or(topic);
    let tolerate_errors = match config.get("errors.tolerance").map(|v| v.to_ascii_lowercase()).as_deref() {
        None | Some("none") => false,
        Some("all") => true,
        Some(other) => bail!("key \"errors.tolerance\": invalid value \"{other}\": expected none or all"),
    };
    Ok(SinkSettings {
        connector: name.to_string(),
        consumer,
        table,
        converter,
        transforms,
        writer: WriterConfig::from_connector(config)?,
        dead_letter_topic: config.get("errors.deadletterqueue.topic.name").cloned(),
        tolerate_errors,
    })
}

pub fn run(command: ConnectorCommand) -> Result<()> {
    let ConnectorCommand::Sink(args) = command;
    let text =
        std::fs::read_to_string(&args.config).with_context(|| format!("cannot read {}", args.config.display()))?;
    let json: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&text).with_context(|| format!("{}: not a JSON object", args.config.display()))?;
    let config: ConnectorConfig = json
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                },
            )
        })
        .collect();
    let settings = settings_from(&args.name, &args.namesrv, &config)?;
    let engine =
        Arc::new(PluginEngine::new(RuntimeConfig { cache_dir: default_cache_dir(), ..RuntimeConfig::default() })?);
    let catalog = PluginCatalog::new(args.plugins_dir.clone());
    let client = RocketMqClient::new()?;
    let runtime = client.client();
    let cancel = CancellationToken::new();
    let stats = client.run(async move {
        let stopper = cancel.clone();
        let for_seconds = args.for_seconds;
        tokio::spawn(async move {
            match for_seconds {
                Some(seconds) => tokio::time::sleep(Duration::from_secs(seconds)).await,
                None => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
            stopper.cancel();
        });
        eprintln!(
            "connector {}: topics {:?} -> table {}",
            settings.connector, settings.consumer.topics, settings.table
        );
        run_sink_task(settings, engine, catalog, runtime, cancel).await
    })?;
    eprintln!(
        "connector {}: {} messages, {} rows written, {} dead-lettered",
        args.name, stats.messages, stats.rows_written, stats.dead_lettered
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> ConnectorConfig {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_guides_keys_map_to_a_sink_task() {
        let c = config(&[
            ("connector-class", "org.apache.rocketmq.connect.jdbc.connector.JdbcSinkConnector"),
            ("connect-topicname", "employee_test"),
            ("connection.url", "jdbc:openmldb:///rocketmq_test?zk=127.0.0.1:2181&zkPath=/openmldb_cluster"),
            ("openmldb.apiserver", "127.0.0.1:9080"),
            ("db.timezone", "Asia/Shanghai"),
            ("source-record-converter", "org.apache.rocketmq.connect.runtime.converter.JsonConverter"),
            ("transforms", "adults, hide"),
            ("transforms.adults.type", "filter"),
            ("transforms.adults.field", "howold"),
            ("transforms.hide.type", "mask"),
            ("transforms.hide.fields", "name"),
            ("errors.tolerance", "all"),
            ("errors.deadletterqueue.topic.name", "dlq"),
        ]);
        let s = settings_from("jdbc-openmldb-sink-test", "127.0.0.1:9876", &c).unwrap();
        assert_eq!(s.consumer.group, "connect-jdbc-openmldb-sink-test");
        assert_eq!(s.table, "employee_test");
        assert_eq!(s.converter.plugin, "json-converter");
        assert_eq!(s.converter.config, vec![("timezone".to_string(), "Asia/Shanghai".to_string())]);
        assert_eq!(s.transforms.iter().map(|t| t.plugin.as_str()).collect::<Vec<_>>(), ["filter", "mask"]);
        assert_eq!(s.transforms[0].config, vec![("field".to_string(), "howold".to_string())]);
        assert_eq!((s.tolerate_errors, s.dead_letter_topic.as_deref()), (true, Some("dlq")));
        assert_eq!(s.writer.endpoint.database, "rocketmq_test");
    }

    #[test]
    fn bad_error_tolerance_is_named() {
        let c = config(&[
            ("connect.topicnames", "t"),
            ("connection.url", "openmldb://h:1/d"),
            ("errors.tolerance", "some"),
        ]);
        let err = settings_from("s", "n:1", &c).unwrap_err().to_string();
        assert_eq!(err, "key \"errors.tolerance\": invalid value \"some\": expected none or all");
    }
}
