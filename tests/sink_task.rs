//! A sink connector task end to end: real RocketMQ, the built-in JSON
//! converter, the OpenMLDB writer and the APIServer stand-in. The OpenMLDB
//! guide's employee_test rows arrive with exact values (NULLs stay NULL);
//! malformed messages go to the dead-letter topic with the reason.

#![recursion_limit = "512"]

mod common;

use common::{envelope, guide_rows_in_openmldb, unique};

use openmldb_standin::{NativeSide, StandIn, StandInOptions, ZooKeeper};
use rmq_openmldb::connector::{SinkSettings, TaskControl, run_sink_task};
use rmq_openmldb::openmldb::{ApiClient, ConnectorConfig};
use rmq_openmldb::plugin::{PluginCatalog, PluginEngine, RuntimeConfig};
use rmq_openmldb::rocketmq::{ConsumerConfig, OutgoingMessage, Producer, QueueConsumer, RocketMqClient};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const NAMESRV: &str = "127.0.0.1:9876";

#[test]
fn the_guides_rows_arrive_exactly_and_bad_messages_are_dead_lettered() {
    let status = std::process::Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/rocketmq.sh"))
        .arg("start")
        .status()
        .unwrap();
    assert!(status.success());
    let topic = unique("employee_test");
    let dead_letters = unique("dlq");
    let client = RocketMqClient::new().unwrap();
    let runtime = client.client();
    let (rows, letters) = client.run(async move {
        let standin = StandIn::start("127.0.0.1:0".parse().unwrap(), StandInOptions::default()).await.unwrap();
        // The guide's ZooKeeper URL, or the APIServer side (RMQ_OPENMLDB_TEST_WRITER).
        let native = match common::native_writer() {
            true => {
                let zookeeper = ZooKeeper::start().unwrap();
                let native = NativeSide::start(standin.state.clone(), &zookeeper.hosts(), "/openmldb_cluster").await.unwrap();
                Some((native, zookeeper))
            }
            false => None,
        };
        let endpoint: Vec<(String, String)> = match &native {
            Some((native, _)) => vec![("connection.url".into(), native.jdbc_url("rocketmq_test"))],
            None => vec![
                ("connection.url".into(), "jdbc:openmldb:///rocketmq_test?zk=127.0.0.1:2181&zkPath=/openmldb_cluster".into()),
                ("openmldb.apiserver".into(), standin.addr.to_string()),
            ],
        };
        let mut producer = Producer::start(runtime.clone(), NAMESRV, &unique("p")).await.unwrap();
        producer.create_topic(&topic, 8).await.unwrap();
        let bodies = [
            envelope(json!({"id": 2, "name": "name-02", "howold": 19, "male": 7, "company": "company", "money": 32232.0, "begin_time": 1640764800000i64})),
            envelope(json!({"id": 4, "name": "gjk", "howold": 25, "male": 8, "company": "company", "money": 3232.0, "begin_time": 1640378616000i64})),
            "{not json".to_string(),
            envelope(json!({"id": 12, "name": "name-06", "howold": 19, "male": 3, "company": null, "money": null, "begin_time": null})),
            envelope(json!({"id": 13, "name": "too-old", "howold": 3000000000i64, "male": 1, "company": "c", "money": 1.0, "begin_time": 1})),
            envelope(json!({"id": 14, "name": "name-08", "howold": 25, "male": 15, "company": "company", "money": 32255.0, "begin_time": 1644347199000i64})),
        ];
        for body in &bodies {
            let message = OutgoingMessage { topic: topic.clone(), keys: Some("employee".into()), body: body.clone().into_bytes(), ..Default::default() };
            producer.send(&message).await.unwrap();
        }
        producer.shutdown().await;

        // The OpenMLDB guide's sink connector JSON, pointed at the stand-in.
        let connector: ConnectorConfig = [
            ("connect-topicname", topic.as_str()),
            ("insert.mode", "INSERT_OR_IGNORE"),
            ("db.timezone", "UTC"),
            ("auto.create", "true"),
            ("openmldb.create.database", "true"),
            ("consume.from.where", "CONSUME_FROM_FIRST_OFFSET"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain(endpoint)
        .collect();
        let name = unique("jdbc-openmldb-sink-test");
        let mut connector = connector;
        connector.insert("table.name.format".into(), "employee_test".into());
        connector.insert("errors.tolerance".into(), "all".into());
        connector.insert("errors.deadletterqueue.topic.name".into(), dead_letters.clone());
        let settings = SinkSettings::from_config(&name, NAMESRV, &connector).unwrap();
        assert_eq!((settings.tables.fixed(), settings.converter.plugin.as_str()), (Some("employee_test"), "json-converter"));
        let engine = Arc::new(PluginEngine::new(RuntimeConfig { cache_dir: None }).unwrap());
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run_sink_task(settings, engine, PluginCatalog::default(), runtime.clone(), TaskControl::unpaused(cancel.clone())));

        let api = ApiClient::new(&standin.addr.to_string(), Duration::from_secs(5)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut rows = Vec::new();
        while Instant::now() < deadline {
            let reply = api.execute("rocketmq_test", "SELECT * FROM employee_test").await.unwrap();
            rows = reply.body["data"]["data"].as_array().cloned().unwrap_or_default();
            if rows.len() >= 4 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let dlq = QueueConsumer::start(runtime.clone(), ConsumerConfig::new(NAMESRV, &unique("dlq-reader"), &[&dead_letters])).await.unwrap();
        let mut letters = Vec::new();
        while letters.len() < 2 && Instant::now() < deadline {
            let got = dlq.poll(Duration::from_millis(500)).await;
            dlq.ack(got.iter().map(|m| (m.queue.clone(), m.queue_offset))).await;
            letters.extend(got);
        }
        dlq.shutdown().await;
        cancel.cancel();
        let stats = task.await.unwrap().unwrap();
        eprintln!("sink task: {stats:?}");
        (rows, letters)
    });

    let mut rows = rows;
    rows.sort_by_key(|r| r[0].as_i64());
    assert_eq!(rows, guide_rows_in_openmldb());
    assert_eq!(letters.len(), 2, "the two bad messages were dead-lettered");
    let reason = |m: &rmq_openmldb::rocketmq::ConsumedMessage| {
        m.properties.iter().find(|(k, _)| k == "connect.errors.reason").map(|(_, v)| v.clone()).unwrap_or_default()
    };
    let mut reasons: Vec<String> = letters.iter().map(reason).collect();
    reasons.sort();
    assert!(reasons[0].starts_with("body is not valid JSON"), "{reasons:?}");
    assert_eq!(reasons[1], "field \"howold\": value 3000000000 does not fit int (-2147483648..2147483647)");
    assert!(letters.iter().any(|m| &m.body[..] == b"{not json"), "the original body is kept");
}
