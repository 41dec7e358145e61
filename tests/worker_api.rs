//! The worker as users run it: `rmq-openmldb run --config worker.toml`,
//! connectors posted over HTTP (RocketMQ Connect's routes and `/v1/`),
//! messages produced with the CLI into the real broker, rows read back from
//! the OpenMLDB APIServer stand-in.

#![recursion_limit = "512"]

mod common;

use common::{
    NAMESRV, WorkerProcess, envelope, guide_cluster, guide_rows_in_openmldb, guide_sink_as_published, native_standin,
    read_dead_letters, standin, table_rows, unique, wait_for_rows, with_broker,
};
use rmq_openmldb::rocketmq::ConsumedMessage;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn guide_rows() -> Vec<String> {
    vec![
        envelope(
            json!({"id": 2, "name": "name-02", "howold": 19, "male": 7, "company": "company", "money": 32232.0, "begin_time": 1640764800000i64}),
        ),
        envelope(
            json!({"id": 4, "name": "gjk", "howold": 25, "male": 8, "company": "company", "money": 3232.0, "begin_time": 1640378616000i64}),
        ),
        envelope(
            json!({"id": 12, "name": "name-06", "howold": 19, "male": 3, "company": null, "money": null, "begin_time": null}),
        ),
        envelope(
            json!({"id": 14, "name": "name-08", "howold": 25, "male": 15, "company": "company", "money": 32255.0, "begin_time": 1644347199000i64}),
        ),
    ]
}

fn numbered_row(id: i64) -> String {
    envelope(
        json!({"id": id, "name": format!("name-{id}"), "howold": id % 90, "male": id % 2, "company": "c", "money": id as f64 / 4.0, "begin_time": 1640764800000i64 + id}),
    )
}

/// Produce each body as one message, through the CLI, over 8 queues.
fn produce(dir: &Path, topic: &str, bodies: &[String]) {
    produce_command(dir, topic, bodies).status().map(|s| assert!(s.success())).unwrap();
}

/// Produce into a topic of one queue, so the order is total.
fn produce_in_order(dir: &Path, topic: &str, bodies: &[String]) {
    let status = produce_command(dir, topic, bodies).args(["--queues", "1"]).status().unwrap();
    assert!(status.success());
}

fn produce_command(dir: &Path, topic: &str, bodies: &[String]) -> Command {
    let file = dir.join(format!("{}.jsonl", unique("messages")));
    std::fs::write(&file, bodies.join("\n")).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_rmq-openmldb"));
    command.args(["rocketmq", "produce", "--namesrv", NAMESRV, "--topic", topic, "--lines"]).arg(file);
    command
}

#[test]
fn the_guides_sink_connector_json_posted_over_http_writes_every_row_exactly() {
    with_broker(|_| async {
        let dir = tempfile::tempdir().unwrap();
        // The guide's URL names only ZooKeeper: rows go natively to the tablets.
        let cluster = guide_cluster().await;
        let standin = &cluster.standin;
        let topic = unique("employee_test");
        let table = topic.clone();
        produce(dir.path(), &topic, &guide_rows());
        let worker = WorkerProcess::start(dir.path()).await;

        let connector = guide_sink_as_published(&topic);
        assert!(connector.get("openmldb.apiserver").is_none());
        let (status, reply) = worker.post("/connectors/jdbc-openmldb-sink-test", &connector.to_string()).await;
        assert_eq!(status, 200);
        assert_eq!(reply, json!({"status": 200, "body": connector}), "RocketMQ Connect echoes the config");

        let rows = wait_for_rows(standin, &table, 4, &worker).await;
        assert_eq!(rows, guide_rows_in_openmldb());
        let status = worker.compat_ok("/connectors/jdbc-openmldb-sink-test/status").await;
        assert_eq!(status["connector"]["state"], "RUNNING");
        assert_eq!(status["tasks"], json!([{"id": 0, "state": "RUNNING", "trace": null, "workerId": "test-worker"}]));
        assert_eq!(status["type"], "SINK");
        let list = worker.compat_ok("/connectors/list").await;
        assert_eq!(list["jdbc-openmldb-sink-test"]["info"]["config"], connector);
        let tasks = worker.compat_ok("/connectors/jdbc-openmldb-sink-test/tasks").await;
        assert_eq!(tasks[0]["id"], json!({"connector": "jdbc-openmldb-sink-test", "task": 0}));
        assert_eq!(worker.compat_ok("/getClusterInfo").await, json!(["test-worker"]));
        let plugins = worker.compat_ok("/plugin/list/connectors").await;
        assert!(
            plugins
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["className"] == "org.apache.rocketmq.connect.jdbc.connector.JdbcSinkConnector"
                    && p["type"] == "SINK")
        );
        let view = worker.connector_state("jdbc-openmldb-sink-test").await;
        assert_eq!(
            (view["tasks"][0]["rows_written"].as_u64(), view["tasks"][0]["messages"].as_u64()),
            (Some(4), Some(4))
        );
    });
}

/// The native path through the worker while OpenMLDB fails over: every
/// leader moves, then a tablet dies, each time with ZooKeeper held stale
/// for a while (the nameserver slow to publish), so the worker meets the old
/// leaders' 103 and the dead tablet's closed port mid-stream.
#[test]
fn leaders_that_move_and_a_tablet_that_dies_mid_stream_lose_no_row_and_duplicate_none() {
    with_broker(|_| async {
        let dir = tempfile::tempdir().unwrap();
        let standin = native_standin().await;
        let native = &standin.native.as_ref().unwrap().0;
        let topic = unique("failover");
        let worker = WorkerProcess::start(dir.path()).await;
        let mut connector = standin.sink(&topic);
        connector["insert.mode"] = json!("INSERT_OR_IGNORE");
        connector["openmldb.partition.num"] = json!("8");
        connector["retry.backoff.ms"] = json!("20");
        connector["retry.backoff.max.ms"] = json!("200");
        let (status, reply) = worker.post("/connectors/failover", &connector.to_string()).await;
        assert_eq!(status, 200, "{reply}");
        let phase = |from: i64| (from..from + 3000).map(numbered_row).collect::<Vec<_>>();

        produce(dir.path(), &topic, &phase(0));
        wait_for_rows(&standin, &topic, 3000, &worker).await;
        let tid = standin.state.catalog.lock().unwrap().table("rocketmq_test", &topic).unwrap().tid;

        // Every leader moves; ZooKeeper still names the old ones.
        {
            let mut faults = native.faults.lock().unwrap();
            faults.hold_publication = true;
            for pid in 0..8 {
                faults.leaders.insert((tid, pid), (pid as usize + 1) % 3);
            }
        }
        produce(dir.path(), &topic, &phase(3000));
        tokio::time::sleep(Duration::from_secs(2)).await;
        let refused = native.faults.lock().unwrap().refused_puts.get(&103).copied().unwrap_or(0);
        assert!(refused > 0, "the old leaders answered 103");
        assert_eq!(table_rows(&standin, &topic).await.len(), 3000, "nothing stored while every leader is stale");
        native.faults.lock().unwrap().hold_publication = false;
        wait_for_rows(&standin, &topic, 6000, &worker).await;

        // A tablet dies; ZooKeeper still lists it.
        {
            let mut faults = native.faults.lock().unwrap();
            faults.hold_publication = true;
            faults.dropped.insert(1);
        }
        produce(dir.path(), &topic, &phase(6000));
        tokio::time::sleep(Duration::from_secs(2)).await;
        native.faults.lock().unwrap().hold_publication = false;
        let rows = wait_for_rows(&standin, &topic, 9000, &worker).await;
        tokio::time::sleep(Duration::from_millis(500)).await;

        let rows_after = table_rows(&standin, &topic).await;
        assert_eq!(rows_after.len(), 9000, "every row once");
        assert_eq!(rows, rows_after);
        let expected: Vec<Value> = (0..9000i64)
            .map(|id| json!([id, format!("name-{id}"), id % 90, id % 2, "c", id as f64 / 4.0, 1640764800000i64 + id]))
            .collect();
        assert_eq!(rows, expected, "every value exact");
        let view = worker.connector_state("failover").await;
        assert_eq!(view["tasks"][0]["state"], "RUNNING", "{view}");
        assert_eq!(view["tasks"][0]["dead_lettered"], json!(0), "{view}");
    });
}

#[test]
fn pause_stops_writes_resume_continues_and_stop_restart_delete_behave_as_documented() {
    with_broker(|_| async {
        let dir = tempfile::tempdir().unwrap();
        let standin = standin().await;
        let topic = unique("lifecycle");
        let worker = WorkerProcess::start(dir.path()).await;
        let mut connector = standin.sink(&topic);
        connector["consume.from.where"] = json!("CONSUME_FROM_FIRST_OFFSET");
        connector["connection.password"] = json!("hunter2");
        produce(dir.path(), &topic, &(1..=10).map(numbered_row).collect::<Vec<_>>());
        let (status, created) =
            worker.post("/v1/connectors", &json!({"name": "life", "config": connector}).to_string()).await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["config"]["connection.password"], "********", "secrets are masked when read back");
        assert_eq!(worker.get("/v1/connectors/life/config").await.1["connection.password"], "********");
        assert_eq!(worker.compat_ok("/connectors/life/config").await["config"]["connection.password"], "********");
        wait_for_rows(&standin, &topic, 10, &worker).await;

        // Pause: once the task reports PAUSED, nothing more is written.
        assert_eq!(worker.compat_ok("/connectors/life/pause").await, "Connector [life] paused successfully");
        worker.wait_for_tasks("life", "PAUSED").await;
        assert_eq!(worker.connector_state("life").await["state"], "PAUSED");
        produce(dir.path(), &topic, &(11..=20).map(numbered_row).collect::<Vec<_>>());
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(table_rows(&standin, &topic).await.len(), 10, "a paused connector writes nothing");

        // Resume: the held messages arrive.
        assert_eq!(worker.compat_ok("/connectors/life/resume").await, "Connector [life] resumed successfully");
        wait_for_rows(&standin, &topic, 20, &worker).await;
        assert_eq!(worker.connector_state("life").await["state"], "RUNNING");

        // Stop keeps the connector; nothing is written while stopped.
        let (status, stopped) = worker.post("/v1/connectors/life/stop", "").await;
        assert_eq!((status, &stopped["state"], &stopped["target"]), (202, &json!("STOPPED"), &json!("STOPPED")));
        assert!(stopped["tasks"].as_array().unwrap().is_empty());
        produce(dir.path(), &topic, &(21..=30).map(numbered_row).collect::<Vec<_>>());
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(table_rows(&standin, &topic).await.len(), 20, "a stopped connector writes nothing");
        assert_eq!(worker.get("/v1/connectors/life").await.0, 200, "a stopped connector is kept");
        assert_eq!(worker.post("/v1/connectors/life/pause", "").await.0, 409, "a stopped connector cannot be paused");

        // Restart runs it again from where it stopped.
        let (status, restarted) = worker.post("/v1/connectors/life/restart", "").await;
        assert_eq!((status, &restarted["state"]), (202, &json!("RUNNING")));
        let rows = wait_for_rows(&standin, &topic, 30, &worker).await;
        assert_eq!(rows.iter().map(|r| r[0].as_i64().unwrap()).collect::<Vec<_>>(), (1..=30).collect::<Vec<_>>());

        // v1 DELETE answers 204 and the connector is gone; so are its tasks.
        assert_eq!(worker.send(reqwest::Method::DELETE, "/v1/connectors/life", "").await.0, 204);
        assert_eq!(worker.get("/v1/connectors/life").await.0, 404);
        assert_eq!(worker.send(reqwest::Method::DELETE, "/v1/connectors/life", "").await.0, 404);

        // Created with RocketMQ Connect's GET form; its stop deletes, as it does there.
        let encoded: String = connector
            .to_string()
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
            .collect();
        let created = worker.compat_ok(&format!("/connectors/again?config={encoded}")).await;
        let mut echoed = connector.clone();
        echoed["connection.password"] = json!("********");
        assert_eq!(created, echoed, "the config is echoed with its secrets masked");
        assert_eq!(worker.compat_ok("/connectors/again/stop").await, "Connector [again] deleted successfully");
        assert_eq!(worker.compat_ok("/connectors/list").await, json!({}));
    });
}

#[test]
fn malformed_messages_go_to_the_dead_letter_topic_and_the_rows_around_them_are_written() {
    with_broker(|runtime| async move {
        let dir = tempfile::tempdir().unwrap();
        let standin = standin().await;
        let topic = unique("with_bad");
        let dead_letters = unique("dlq");
        let mut bodies: Vec<String> = (1..=50).map(numbered_row).collect();
        bodies.insert(10, "{not json".into());
        bodies.insert(30, envelope(json!({"id": 1000, "name": "too-old", "howold": 3000000000i64, "male": 1, "company": "c", "money": 1.0, "begin_time": 1})));
        produce(dir.path(), &topic, &bodies);
        let worker = WorkerProcess::start(dir.path()).await;
        let mut connector = standin.sink(&topic);
        connector["errors.tolerance"] = json!("all");
        connector["errors.deadletterqueue.topic.name"] = json!(dead_letters);
        let (_, reply) = worker.post("/connectors/tolerant", &connector.to_string()).await;
        assert_eq!(reply["status"], 200, "{reply}");

        let rows = wait_for_rows(&standin, &topic, 50, &worker).await;
        assert_eq!(rows.iter().map(|r| r[0].as_i64().unwrap()).collect::<Vec<_>>(), (1..=50).collect::<Vec<_>>());
        let letters = read_dead_letters(runtime, &dead_letters, 2).await;
        let property = |m: &ConsumedMessage, key: &str| {
            m.properties.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_default()
        };
        let mut reasons: Vec<String> = letters.iter().map(|m| property(m, "connect.errors.reason")).collect();
        reasons.sort();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(reasons[0].starts_with("body is not valid JSON"), "{reasons:?}");
        assert_eq!(reasons[1], "field \"howold\": value 3000000000 does not fit int (-2147483648..2147483647)");
        assert!(letters.iter().all(|m| property(m, "connect.errors.connector") == "tolerant"));
        assert!(letters.iter().all(|m| property(m, "connect.errors.topic") == topic));
        let view = worker.connector_state("tolerant").await;
        assert_eq!((view["state"].as_str(), view["tasks"][0]["dead_lettered"].as_u64()), (Some("RUNNING"), Some(2)));

        // errors.tolerance=none: the same input halts the connector, FAILED
        // with the reason, after storing what came before the bad message
        // and nothing after it.
        let strict_topic = unique("strict");
        produce_in_order(dir.path(), &strict_topic, &bodies[..12]);
        let strict = standin.sink(&strict_topic);
        let (_, reply) = worker.post("/connectors/strict", &strict.to_string()).await;
        assert_eq!(reply["status"], 200, "{reply}");
        worker.wait_for_tasks("strict", "FAILED").await;
        let status = worker.compat_ok("/connectors/strict/status").await;
        assert_eq!(status["connector"]["state"], "FAILED");
        let trace = status["connector"]["trace"].as_str().unwrap();
        assert!(trace.contains("cannot be stored") && trace.contains("body is not valid JSON"), "{trace}");
        let stored: Vec<i64> =
            table_rows(&standin, &strict_topic).await.iter().map(|r| r[0].as_i64().unwrap()).collect();
        assert_eq!(stored, (1..=10).collect::<Vec<_>>(), "the ten rows before it are stored, the one after it not");
    });
}

#[test]
fn a_killed_worker_restarts_with_its_connectors_and_loses_or_duplicates_nothing() {
    with_broker(|_| async {
        let dir = tempfile::tempdir().unwrap();
        let standin = standin().await;
        let topic = unique("restart");
        const FIRST: i64 = 10_000;
        const TOTAL: i64 = 30_000;
        produce(dir.path(), &topic, &(1..=FIRST).map(numbered_row).collect::<Vec<_>>());
        let mut worker = WorkerProcess::start(dir.path()).await;
        let mut connector = standin.sink(&topic);
        connector["insert.mode"] = json!("INSERT_OR_IGNORE");
        connector["max-task"] = json!("2");
        connector["batch.size"] = json!("200");
        let (_, reply) = worker.post("/connectors/durable", &connector.to_string()).await;
        assert_eq!(reply["status"], 200, "{reply}");
        wait_for_rows(&standin, &topic, 1, &worker).await;

        // More messages flow while the worker is killed without warning.
        let mut producer =
            produce_command(dir.path(), &topic, &(FIRST + 1..=TOTAL).map(numbered_row).collect::<Vec<_>>())
                .spawn()
                .unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        worker.kill();
        let before_restart = table_rows(&standin, &topic).await.len();
        let mut worker = WorkerProcess::start(&worker.data.clone()).await;
        let restored = worker.connector_state("durable").await;
        assert_eq!(restored["tasks"].as_array().map(Vec::len), Some(2), "the connector came back: {restored}");
        assert!(producer.wait().unwrap().success());

        let rows = wait_for_rows(&standin, &topic, TOTAL as usize, &worker).await;
        let ids: Vec<i64> = rows.iter().map(|r| r[0].as_i64().unwrap()).collect();
        assert_eq!(ids, (1..=TOTAL).collect::<Vec<_>>(), "every row once ({before_restart} before the restart)");
        // A graceful stop and start keeps it too, and writes nothing twice.
        worker.terminate();
        let worker = WorkerProcess::start(dir.path()).await;
        worker.wait_for_tasks("durable", "RUNNING").await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(table_rows(&standin, &topic).await.len(), TOTAL as usize);
    });
}

#[test]
fn bad_rest_input_gets_a_clear_error_and_changes_nothing() {
    with_broker(|_| async {
        let dir = tempfile::tempdir().unwrap();
        let standin = standin().await;
        let worker = WorkerProcess::start(dir.path()).await;
        let good = standin.sink("bad_input_topic");
        let with = |key: &str, value: Value| {
            let mut c = good.clone();
            if value.is_null() {
                c.as_object_mut().unwrap().remove(key);
            } else {
                c[key] = value;
            }
            c.to_string()
        };
        let cases = [
            ("{\"connector-class\": ", "invalid JSON: EOF while parsing a value at line 1 column 20".to_string()),
            (
                &with("connector-class", json!("org.example.NoSuchConnector")) as &str,
                "key \"connector.class\": invalid value \"org.example.NoSuchConnector\": unknown connector class; this host runs org.apache.rocketmq.connect.jdbc.connector.JdbcSinkConnector, org.apache.rocketmq.connect.jdbc.sink.JdbcSinkConnector, org.apache.rocketmq.connect.jdbc.mysql.sink.JdbcSinkConnector, openmldb-sink, plugin-sink, org.apache.rocketmq.connect.jdbc.connector.JdbcSourceConnector, org.apache.rocketmq.connect.jdbc.source.JdbcSourceConnector, org.apache.rocketmq.connect.jdbc.mysql.source.JdbcSourceConnector, mysql-source, plugin-source".to_string(),
            ),
            (&with("connect-topicname", Value::Null), "missing required key \"connect.topicnames\"".to_string()),
            (
                &with("connect-topicname", json!(["a", "b"])),
                "key \"connect-topicname\": expected a string, number or boolean, got an array".to_string(),
            ),
            (&with("max-task", json!("two")), "key \"max.tasks\": invalid value \"two\": expected a whole number from 1 to 64".to_string()),
            (
                &with("insert.mode", json!("MERGE")),
                "key \"insert.mode\": invalid value \"MERGE\": expected INSERT, INSERT_OR_IGNORE or UPSERT".to_string(),
            ),
            (
                &with("transforms", json!("nope")),
                "transform plugin \"nope\": ".to_string(),
            ),
        ];
        for (body, expected) in &cases {
            let (status, reply) = worker.post("/connectors/bad", body).await;
            assert_eq!(status, 200, "RocketMQ Connect's routes always answer 200");
            assert_eq!(reply["errorCode"], 400, "{body}: {reply}");
            let message = reply["message"].as_str().unwrap();
            assert!(message.starts_with(expected.as_str()), "{body}:\n  got      {message}\n  expected {expected}");
            let (status, reply) = worker.send(reqwest::Method::PUT, "/v1/connectors/bad/config", body).await;
            assert_eq!(status, 400, "{reply}");
            assert!(reply["error"]["message"].as_str().unwrap().starts_with(expected.as_str()), "{reply}");
        }
        assert_eq!(worker.compat_ok("/connectors/list").await, json!({}), "nothing was created");
        assert!(!dir.path().join("store/connectors.json").exists(), "nothing was stored");
        let (status, reply) = worker.post("/v1/connectors", &json!({"config": good}).to_string()).await;
        assert_eq!(
            (status, reply["error"]["message"].as_str()),
            (400, Some("\"name\" is required and must be a string"))
        );
        assert_eq!(worker.get("/connectors/nope/status").await.1["message"], "connector \"nope\" not found");
        assert_eq!(worker.get("/v1/connectors/nope").await.0, 404);

        // The same config twice: RocketMQ Connect's error, and no change.
        let (_, reply) = worker.post("/connectors/ok", &good.to_string()).await;
        assert_eq!(reply["status"], 200, "{reply}");
        let (_, reply) = worker.post("/connectors/ok", &good.to_string()).await;
        assert_eq!(reply, json!({"errorCode": 400, "message": "Connector with same config already exist."}));
        let (status, _) = worker.post("/v1/connectors", &json!({"name": "ok", "config": good}).to_string()).await;
        assert_eq!(status, 409);
        let (status, openapi) = worker.get("/v1/openapi.json").await;
        assert_eq!((status, openapi["openapi"].as_str()), (200, Some("3.0.3")));
    });
}

#[test]
fn workers_of_a_cluster_share_connectors_split_the_queues_and_take_over_from_a_dead_one() {
    with_broker(|_| async {
        let dir = tempfile::tempdir().unwrap();
        let standin = standin().await;
        let cluster = unique("cluster");
        let topic = unique("shared");
        // The topic exists before the connector, as in the guide's step 2.
        produce(dir.path(), &topic, &(1..=1000).map(numbered_row).collect::<Vec<_>>());
        let mut a = WorkerProcess::start_in_cluster(&dir.path().join("a"), &cluster, "worker-a").await;
        let b = WorkerProcess::start_in_cluster(&dir.path().join("b"), &cluster, "worker-b").await;
        let mut connector = standin.sink(&topic);
        connector["insert.mode"] = json!("INSERT_OR_IGNORE");
        connector["consume.from.where"] = json!("CONSUME_FROM_FIRST_OFFSET");
        let (_, reply) = a.post("/connectors/shared", &connector.to_string()).await;
        assert_eq!(reply["status"], 200, "{reply}");
        // Created on one worker, running on both.
        b.wait_for_tasks("shared", "RUNNING").await;
        a.wait_for_tasks("shared", "RUNNING").await;
        assert_eq!(b.compat_ok("/connectors/shared/config").await["config"], connector);

        // Both take part: the consumer group spreads the queues over them.
        const FIRST: i64 = 20_000;
        const TOTAL: i64 = 40_000;
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut produced = 1000;
        let written = |view: &Value| view["tasks"][0]["rows_written"].as_u64().unwrap_or(0);
        loop {
            let batch: Vec<String> = (produced + 1..=produced + 1000).map(numbered_row).collect();
            produce(dir.path(), &topic, &batch);
            produced += 1000;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let (on_a, on_b) =
                (written(&a.connector_state("shared").await), written(&b.connector_state("shared").await));
            if (on_a > 0 && on_b > 0) || produced >= FIRST {
                assert!(on_a > 0 && on_b > 0, "both workers write: a {on_a}, b {on_b}");
                break;
            }
            assert!(Instant::now() < deadline);
        }

        // Either worker shows the whole cluster: both workers, each queue
        // read by exactly one task, and the status of every task.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, cluster_view) = b.get("/v1/cluster").await;
            assert_eq!(status, 200);
            let workers = cluster_view["workers"].as_array().cloned().unwrap_or_default();
            let ids: Vec<&str> = workers.iter().filter_map(|w| w["worker_id"].as_str()).collect();
            let mut queues: Vec<String> = workers
                .iter()
                .flat_map(|w| w["connectors"]["shared"]["tasks"].as_array().cloned().unwrap_or_default())
                .flat_map(|t| t["queues"].as_array().cloned().unwrap_or_default())
                .filter_map(|q| q.as_str().map(str::to_string))
                .collect();
            queues.sort();
            let distinct = queues.iter().collect::<std::collections::BTreeSet<_>>().len();
            if ids == ["worker-b", "worker-a"] && queues.len() == 8 && distinct == 8 {
                assert_eq!(cluster_view["cluster"], json!(cluster));
                assert_eq!(workers[0]["this_worker"], json!(true), "{cluster_view}");
                break;
            }
            assert!(Instant::now() < deadline, "no cluster view with both workers and 8 queues once: {cluster_view}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let status = a.compat_ok("/connectors/shared/status").await;
        let task_workers: Vec<&str> =
            status["tasks"].as_array().unwrap().iter().filter_map(|t| t["workerId"].as_str()).collect();
        assert_eq!(task_workers, ["worker-a", "worker-b"], "the status lists every live worker's tasks: {status}");

        // Worker a dies while messages flow; b takes all the queues over.
        let mut producer =
            produce_command(dir.path(), &topic, &(produced + 1..=TOTAL).map(numbered_row).collect::<Vec<_>>())
                .spawn()
                .unwrap();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        a.kill();
        assert!(producer.wait().unwrap().success());
        let rows = wait_for_rows(&standin, &topic, TOTAL as usize, &b).await;
        let ids: Vec<i64> = rows.iter().map(|r| r[0].as_i64().unwrap()).collect();
        assert_eq!(ids, (1..=TOTAL).collect::<Vec<_>>(), "every row once");
        // Its heartbeats stopped: a is no longer shown.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, cluster_view) = b.get("/v1/cluster").await;
            if cluster_view["workers"].as_array().is_some_and(|w| w.len() == 1) {
                let view = b.connector_state("shared").await;
                let tasks = view["tasks"].as_array().unwrap();
                assert!(tasks.iter().all(|t| t["worker_id"] == "worker-b"), "{view}");
                break;
            }
            assert!(Instant::now() < deadline, "the dead worker is still shown: {cluster_view}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }

        // Changes made on the survivor apply there.
        assert_eq!(b.compat_ok("/connectors/shared/pause").await, "Connector [shared] paused successfully");
        b.wait_for_tasks("shared", "PAUSED").await;
        assert_eq!(b.send(reqwest::Method::DELETE, "/v1/connectors/shared", "").await.0, 204);
        assert_eq!(b.get("/v1/connectors/shared").await.0, 404);
    });
}

#[test]
fn a_cluster_refuses_a_second_create_and_a_worker_that_was_away_converges_before_it_runs_anything() {
    with_broker(|_| async {
        let dir = tempfile::tempdir().unwrap();
        let standin = standin().await;
        let cluster = unique("converge");
        let topic = unique("converge");
        produce(dir.path(), &topic, &(1..=100).map(numbered_row).collect::<Vec<_>>());
        let a = WorkerProcess::start_in_cluster(&dir.path().join("a"), &cluster, "worker-a").await;
        // B and C are left at the default worker id: each gets its own.
        let in_cluster = format!("cluster = \"{cluster}\"\n");
        let mut b = WorkerProcess::start_with(&dir.path().join("b"), &in_cluster).await;
        let c = WorkerProcess::start_with(&dir.path().join("c"), &in_cluster).await;
        let id_of = |view: Value| view["worker_id"].as_str().unwrap().to_string();
        let (b_id, c_id) = (id_of(b.get("/v1/worker").await.1), id_of(c.get("/v1/worker").await.1));
        assert!(b_id.starts_with("worker-") && c_id.starts_with("worker-") && b_id != c_id, "{b_id} {c_id}");
        let mut connector = standin.sink(&topic);
        connector["insert.mode"] = json!("INSERT_OR_IGNORE");
        connector["consume.from.where"] = json!("CONSUME_FROM_FIRST_OFFSET");
        let mut other = connector.clone();
        other["max-task"] = json!("2");

        // The same name created on two workers at once: the create
        // published first wins on every worker, the other is refused.
        let create = |config: &Value| json!({"name": "conv", "config": config}).to_string();
        let (first, second) = (create(&connector), create(&other));
        let (on_a, on_b) = tokio::join!(a.post("/v1/connectors", &first), b.post("/v1/connectors", &second));
        let mut statuses = [on_a.0, on_b.0];
        statuses.sort();
        assert_eq!(statuses, [201, 409], "a: {on_a:?}, b: {on_b:?}");
        let winner = if on_a.0 == 201 { &connector } else { &other };
        for worker in [&a, &b, &c] {
            worker.wait_for_tasks("conv", "RUNNING").await;
            assert_eq!(&worker.get("/v1/connectors/conv/config").await.1, winner, "every worker has the winner");
        }
        wait_for_rows(&standin, &topic, 100, &c).await;

        // B goes away; the connector is deleted on C meanwhile, and a new
        // one is created on A.
        b.terminate();
        assert_eq!(c.send(reqwest::Method::DELETE, "/v1/connectors/conv", "").await.0, 204);
        let (status, _) = a.post("/v1/connectors", &json!({"name": "later", "config": connector}).to_string()).await;
        assert_eq!(status, 201);
        assert_eq!(a.get("/v1/connectors/conv").await.0, 404);

        // B comes back: by the time it serves, it has caught up; it never
        // ran the deleted connector's tasks, and it runs the new one.
        let b = WorkerProcess::start_with(&dir.path().join("b"), &in_cluster).await;
        assert_eq!(id_of(b.get("/v1/worker").await.1), b_id, "the generated id is kept");
        assert_eq!(b.get("/v1/connectors/conv").await.0, 404, "{}", b.log_text());
        assert_eq!(b.get("/v1/connectors/later").await.0, 200, "{}", b.log_text());
        b.wait_for_tasks("later", "RUNNING").await;
        let log = b.log_text();
        let restart = log.rfind("joined the cluster").expect("joined");
        assert!(!log[restart..].contains("connector=conv"), "nothing of conv after the restart:\n{log}");
    });
}

/// A worker of `cluster` whose plugins folder holds `plugin` as
/// `house-style.wasm`; returns it and its plugins folder.
async fn worker_with_house_style(dir: &Path, cluster: &str, name: &str, plugin: &[u8]) -> (WorkerProcess, PathBuf) {
    let data = dir.join(name);
    let plugins = data.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::write(plugins.join("house-style.wasm"), plugin).unwrap();
    let extra = format!("worker_id = \"{name}\"\ncluster = \"{cluster}\"\nplugins_dir = \"{}\"\n", plugins.display());
    (WorkerProcess::start_with(&data, &extra).await, plugins)
}

/// A sink of `topic` through the `house-style` transform (masking `name`).
fn house_style_sink(standin: &common::OpenMldb, topic: &str) -> Value {
    let mut connector = standin.sink(topic);
    for (key, value) in [
        ("insert.mode", "INSERT_OR_IGNORE"),
        ("consume.from.where", "CONSUME_FROM_FIRST_OFFSET"),
        ("transforms", "style"),
        ("transforms.style.type", "house-style"),
        ("transforms.style.fields", "name"),
    ] {
        connector[key] = json!(value);
    }
    connector
}

#[test]
fn a_cluster_worker_that_loses_a_plugin_hands_its_queues_to_a_worker_that_has_it() {
    with_broker(|_| async {
        let dir = tempfile::tempdir().unwrap();
        let standin = standin().await;
        let cluster = unique("held");
        let topic = unique("held");
        produce(dir.path(), &topic, &(1..=1000).map(numbered_row).collect::<Vec<_>>());
        let mask = Path::new(env!("RMQ_OPENMLDB_TEST_COMPONENTS")).join("mask.wasm");
        let plugin = std::fs::read(&mask).unwrap();
        let (a, _) = worker_with_house_style(dir.path(), &cluster, "worker-a", &plugin).await;
        let (b, b_plugins) = worker_with_house_style(dir.path(), &cluster, "worker-b", &plugin).await;
        let connector = house_style_sink(&standin, &topic);
        let (_, reply) = a.post("/connectors/held", &connector.to_string()).await;
        assert_eq!(reply["status"], 200, "{reply}");
        a.wait_for_tasks("held", "RUNNING").await;
        b.wait_for_tasks("held", "RUNNING").await;
        wait_for_rows(&standin, &topic, 1000, &a).await;

        // B loses the plugin: its tasks leave the group, A takes every queue.
        std::fs::remove_file(b_plugins.join("house-style.wasm")).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let view = b.connector_state("held").await;
            if view["trace"].as_str().is_some_and(|t| t.contains("left the consumer group")) {
                let own: Vec<&Value> =
                    view["tasks"].as_array().unwrap().iter().filter(|t| t["worker_id"] == "worker-b").collect();
                assert!(own.is_empty(), "{view}");
                break;
            }
            assert!(Instant::now() < deadline, "b never held the connector: {view}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        produce(dir.path(), &topic, &(1001..=3000).map(numbered_row).collect::<Vec<_>>());
        let rows = wait_for_rows(&standin, &topic, 3000, &a).await;
        let ids: Vec<i64> = rows.iter().map(|r| r[0].as_i64().unwrap()).collect();
        assert_eq!(ids, (1..=3000).collect::<Vec<_>>(), "every row arrives through the worker that has the plugin");

        // Put back, B runs its share again.
        std::fs::copy(&mask, b_plugins.join("house-style.wasm")).unwrap();
        b.wait_for_tasks("held", "RUNNING").await;
        let view = b.connector_state("held").await;
        assert!(view["tasks"].as_array().unwrap().iter().any(|t| t["worker_id"] == "worker-b"), "{view}");
        assert!(b.connector_state("held").await["trace"].is_null());

        // Failover: B is killed with nothing in flight; new messages on every
        // queue are then written by A. From the kill to the last of them is
        // the failover time (the broker tells A's consumer group at once).
        let written = |view: Value| {
            let tasks = view["tasks"].as_array().cloned().unwrap_or_default();
            tasks
                .iter()
                .filter(|t| t["worker_id"] == "worker-b")
                .filter_map(|t| t["rows_written"].as_u64())
                .sum::<u64>()
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while written(b.connector_state("held").await) == 0 {
            produce(dir.path(), &topic, &(1..=16).map(numbered_row).collect::<Vec<_>>());
            assert!(Instant::now() < deadline, "b never wrote after the plugin came back");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let mut b = b;
        b.kill();
        let killed = Instant::now();
        produce(dir.path(), &topic, &(3001..=3032).map(numbered_row).collect::<Vec<_>>());
        wait_for_rows(&standin, &topic, 3032, &a).await;
        eprintln!(
            "failover: the last of 32 rows over every queue was written {:.1} s after SIGKILL",
            killed.elapsed().as_secs_f64()
        );
    });
}

/// `component` with a custom section appended: the same plugin, other bytes.
fn another_build_of(component: &[u8]) -> Vec<u8> {
    let (name, payload) = (b"build-note", b"a second build of the same source");
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.extend_from_slice(payload);
    let mut bytes = component.to_vec();
    bytes.push(0);
    bytes.push(section.len() as u8);
    bytes.extend(section);
    bytes
}

#[test]
fn a_cluster_connector_runs_only_the_exact_plugin_it_was_put_with() {
    with_broker(|_| async {
        let dir = tempfile::tempdir().unwrap();
        let standin = standin().await;
        let cluster = unique("pinned");
        let topic = unique("pinned");
        produce(dir.path(), &topic, &(1..=1000).map(numbered_row).collect::<Vec<_>>());
        let first = std::fs::read(Path::new(env!("RMQ_OPENMLDB_TEST_COMPONENTS")).join("mask.wasm")).unwrap();
        let second = another_build_of(&first);
        let (a, a_plugins) = worker_with_house_style(dir.path(), &cluster, "worker-a", &first).await;
        let (b, b_plugins) = worker_with_house_style(dir.path(), &cluster, "worker-b", &second).await;
        let connector = house_style_sink(&standin, &topic);
        let (_, reply) = a.post("/connectors/pinned", &connector.to_string()).await;
        assert_eq!(reply["status"], 200, "{reply}");
        let pin = a.get("/v1/connectors/pinned").await.1["pins"]["house-style"].as_str().unwrap().to_string();
        assert!(pin.starts_with("sha256:"), "{pin}");

        // B has another build of the plugin: it holds the connector, saying
        // which version it has and which one runs, and A writes everything.
        let held_on_b = |reason: &str| {
            reason.contains("held: plugin \"house-style\" on this worker is sha256:") && reason.contains(&pin[..19])
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let view = b.get("/v1/connectors/pinned").await.1;
            if view["trace"].as_str().is_some_and(held_on_b) {
                assert!(view["tasks"].as_array().unwrap().iter().all(|t| t["worker_id"] != "worker-b"), "{view}");
                break;
            }
            assert!(Instant::now() < deadline, "b never held the connector: {view}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        a.wait_for_tasks("pinned", "RUNNING").await;
        let rows = wait_for_rows(&standin, &topic, 1000, &a).await;
        assert_eq!(rows.len(), 1000);

        // The exact file on B: it runs its share.
        std::fs::write(b_plugins.join("house-style.wasm"), &first).unwrap();
        b.wait_for_tasks("pinned", "RUNNING").await;
        assert!(b.get("/v1/connectors/pinned").await.1["trace"].is_null());

        // A new build on both: held everywhere until the config is put
        // again, which pins the new build.
        std::fs::write(a_plugins.join("house-style.wasm"), &second).unwrap();
        std::fs::write(b_plugins.join("house-style.wasm"), &second).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !a.get("/v1/connectors/pinned").await.1["trace"].as_str().is_some_and(|t| t.contains("held: plugin")) {
            assert!(Instant::now() < deadline, "a never held the connector after its file changed");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (status, _) = a.send(reqwest::Method::PUT, "/v1/connectors/pinned/config", &connector.to_string()).await;
        assert_eq!(status, 200);
        a.wait_for_tasks("pinned", "RUNNING").await;
        b.wait_for_tasks("pinned", "RUNNING").await;
        let repinned = b.get("/v1/connectors/pinned").await.1["pins"]["house-style"].as_str().unwrap().to_string();
        assert_ne!(repinned, pin, "putting the config again pins the build now in the folders");
        produce(dir.path(), &topic, &(1001..=2000).map(numbered_row).collect::<Vec<_>>());
        let rows = wait_for_rows(&standin, &topic, 2000, &a).await;
        let ids: Vec<i64> = rows.iter().map(|r| r[0].as_i64().unwrap()).collect();
        assert_eq!(ids, (1..=2000).collect::<Vec<_>>());
    });
}

/// Run headless Chromium on `url`, letting the page's timers run for a few
/// seconds, with extra arguments (`--dump-dom`, `--screenshot=…`).
fn chromium(url: &str, args: &[&str]) -> String {
    let output = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=7000"])
        .args(["--window-size=1280,900"])
        .args(args)
        .arg(url)
        .output()
        .expect("chromium (scripts/test.sh installs Debian's chromium package)");
    assert!(output.status.success(), "chromium failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn metrics_and_the_live_status_page_show_each_connector() {
    with_broker(|_| async {
        let dir = tempfile::tempdir().unwrap();
        let standin = standin().await;
        let topic = unique("watched");
        let mut bodies: Vec<String> = (1..=200).map(numbered_row).collect();
        bodies.insert(50, "{not json".into());
        bodies.insert(150, r#"{"id": "not a number"}"#.into());
        produce(dir.path(), &topic, &bodies);
        let worker = WorkerProcess::start(dir.path()).await;
        let mut connector = standin.sink(&topic);
        connector["errors.tolerance"] = json!("all");
        connector["errors.deadletterqueue.topic.name"] = json!(unique("watched_dlq"));
        worker.post("/connectors/watched", &connector.to_string()).await;
        wait_for_rows(&standin, &topic, 200, &worker).await;

        // A message is counted once acknowledged, a moment after its row is
        // visible: read the figures once every message is counted.
        let task = "connector=\"watched\",task=\"0\"";
        let counted = format!("rmq_openmldb_messages_total{{{task}}} 202");
        let deadline = Instant::now() + Duration::from_secs(30);
        let metrics = loop {
            let metrics = reqwest::get(format!("{}/metrics", worker.base)).await.unwrap().text().await.unwrap();
            if metrics.contains(&counted) || Instant::now() > deadline {
                break metrics;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        for expected in [
            "rmq_openmldb_connector_state{connector=\"watched\",state=\"RUNNING\"} 1".to_string(),
            format!("rmq_openmldb_rows_written_total{{{task}}} 200"),
            format!("rmq_openmldb_dead_lettered_total{{{task}}} 2"),
            format!("rmq_openmldb_messages_total{{{task}}} 202"),
            format!("rmq_openmldb_plugin_traps_total{{{task}}} 0"),
            "# TYPE rmq_openmldb_batch_seconds histogram".to_string(),
            "# TYPE rmq_openmldb_process_resident_memory_bytes gauge".to_string(),
        ] {
            assert!(metrics.contains(&expected), "/metrics lacks {expected}:\n{metrics}");
        }
        let lags: Vec<&str> =
            metrics.lines().filter(|l| l.starts_with("rmq_openmldb_consumer_lag_messages{")).collect();
        assert_eq!(lags.len(), 8, "one lag per queue: {lags:?}");
        assert!(lags.iter().all(|l| l.ends_with(" 0")), "all caught up: {lags:?}");
        assert!(metrics.contains(&format!("rmq_openmldb_write_seconds_bucket{{{task},le=\"+Inf\"}}")));
        // Every stage's CPU time is counted; the ones that ran cost some.
        let stage_cpu = |stage: &str| -> f64 {
            let prefix = format!("rmq_openmldb_stage_cpu_seconds_total{{stage=\"{stage}\"}} ");
            let line = metrics.lines().find(|l| l.starts_with(&prefix));
            line.and_then(|l| l[prefix.len()..].parse().ok()).unwrap_or_else(|| panic!("no {prefix}in\n{metrics}"))
        };
        for stage in ["consume", "convert", "write", "acknowledge"] {
            assert!(stage_cpu(stage) > 0.0, "{stage} cost no CPU:\n{metrics}");
        }
        assert!(stage_cpu("transform") >= 0.0);

        // The status page, as a browser renders it after a few refreshes.
        let page = format!("{}/", worker.base);
        let dom = chromium(&page, &["--dump-dom"]);
        assert!(dom.contains("worker test-worker"), "{dom}");
        assert!(dom.contains("<td>watched</td>") && dom.contains("class=\"state RUNNING\""), "{dom}");
        assert!(dom.contains("<td class=\"num\">200</td>"), "rows written are shown: {dom}");
        assert!(dom.contains("data-chart=\"rows\"") && dom.contains("data-chart=\"lag\""), "{dom}");
        assert!(dom.contains("data-now=\"lag\">0</span>"), "the charts were refreshed in place: {dom}");
        let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
        chromium(&page, &[&format!("--screenshot={}", shot.display())]);
        let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
        assert!(size > 10_000, "screenshot {} is {size} bytes", shot.display());
        println!("status page screenshot: {}", shot.display());
    });
}

#[test]
fn an_api_token_guards_every_route() {
    with_broker(|_| async {
        let dir = tempfile::tempdir().unwrap();
        let worker = WorkerProcess::start_with(dir.path(), "worker_id = \"guarded\"\napi_token = \"s3cret\"\n").await;
        for path in ["/v1/worker", "/connectors/list", "/metrics", "/"] {
            let response = reqwest::get(format!("{}{path}", worker.base)).await.unwrap();
            assert_eq!(response.status().as_u16(), 401, "{path} without the token");
            let response = reqwest::Client::new()
                .get(format!("{}{path}", worker.base))
                .bearer_auth("s3cret")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 200, "{path} with the token");
        }
    });
}

/// A row as the `house-style` transform left it: v1 (the mask plugin)
/// masks `name`; v2 (the insert-field plugin) sets `company` to "v2".
fn house_style_version(row: &Value) -> Option<u8> {
    let id = row[0].as_i64()?;
    let (name, company) = (row[1].as_str()?, row[4].as_str()?);
    if name.chars().all(|c| c == '*') && company == "c" {
        Some(1)
    } else if name == format!("name-{id}") && company == "v2" {
        Some(2)
    } else {
        None
    }
}

#[test]
fn plugins_dropped_into_the_folder_are_swapped_in_under_load_and_bad_ones_refused() {
    with_broker(|_| async {
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        let components = Path::new(env!("RMQ_OPENMLDB_TEST_COMPONENTS"));
        let (v1, v2) = (components.join("mask.wasm"), components.join("insert_field.wasm"));
        let installed = plugins.join("house-style.wasm");
        std::fs::copy(&v1, &installed).unwrap();
        let standin = standin().await;
        let topic = unique("hot");
        produce(dir.path(), &topic, &(1..=100).map(numbered_row).collect::<Vec<_>>());
        let worker = WorkerProcess::start_with(
            dir.path(),
            &format!("worker_id = \"test-worker\"\nplugins_dir = \"{}\"\n", plugins.display()),
        )
        .await;
        assert_eq!(worker.compat_ok("/plugin/reload").await, "Plugin reload succeeded");
        let listed = worker.compat_ok("/plugin/list").await;
        assert!(
            listed.as_array().unwrap().iter().any(|p| p["className"] == "house-style" && p["type"] == "TRANSFORMATION"),
            "{listed}"
        );

        let mut connector = standin.sink(&topic);
        for (key, value) in [
            ("transforms", "style"),
            ("transforms.style.type", "house-style"),
            ("transforms.style.fields", "name"),
            ("transforms.style.static.field", "company"),
            ("transforms.style.static.value", "v2"),
        ] {
            connector[key] = json!(value);
        }
        let (status, reply) = worker.post("/connectors/hot", &connector.to_string()).await;
        assert_eq!((status, &reply["status"]), (200, &json!(200)), "{reply}");
        let rows = wait_for_rows(&standin, &topic, 100, &worker).await;
        assert!(rows.iter().all(|r| house_style_version(r) == Some(1)), "v1 masks names: {:?}", rows[0]);

        // Replace the plugin while messages flow.
        let producer = {
            let (dir, topic) = (dir.path().to_path_buf(), topic.clone());
            std::thread::spawn(move || {
                for chunk in 0..10 {
                    let ids = 101 + chunk * 100..=200 + chunk * 100;
                    produce(&dir, &topic, &ids.map(numbered_row).collect::<Vec<_>>());
                    std::thread::sleep(Duration::from_millis(300));
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(900)).await;
        std::fs::copy(&v2, &installed).unwrap();
        producer.join().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !worker.log_text().contains("restarting the connector's tasks with the new plugin version") {
            assert!(Instant::now() < deadline, "the new version was not picked up: {}", worker.log_text());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        worker.wait_for_tasks("hot", "RUNNING").await;
        produce(dir.path(), &topic, &(1101..=1200).map(numbered_row).collect::<Vec<_>>());
        let rows = wait_for_rows(&standin, &topic, 1200, &worker).await;
        assert_eq!(rows.iter().map(|r| r[0].as_i64().unwrap()).collect::<Vec<_>>(), (1..=1200).collect::<Vec<_>>());
        assert!(
            rows.iter().all(|r| house_style_version(r).is_some()),
            "every row is wholly v1 or wholly v2: {:?}",
            rows.iter().find(|r| house_style_version(r).is_none())
        );
        assert!(rows[1100..].iter().all(|r| house_style_version(r) == Some(2)), "rows after the swap are v2");

        // A broken drop-in is refused; the last good version keeps running.
        std::fs::write(&installed, b"not a component").unwrap();
        let (_, reply) = worker.get("/plugin/reload").await;
        assert_eq!(reply["errorCode"], 500, "{reply}");
        let message = reply["message"].as_str().unwrap();
        assert!(message.contains("house-style") && message.contains("last good versions keep running"), "{message}");
        produce(dir.path(), &topic, &(1201..=1300).map(numbered_row).collect::<Vec<_>>());
        let rows = wait_for_rows(&standin, &topic, 1300, &worker).await;
        assert!(rows[1200..].iter().all(|r| house_style_version(r) == Some(2)));
        assert_eq!(worker.connector_state("hot").await["state"], "RUNNING");

        // Removed: the connector pauses and says why; back: it resumes.
        std::fs::remove_file(&installed).unwrap();
        worker.get("/plugin/reload").await;
        let view = worker.connector_state("hot").await;
        assert_eq!(view["state"], "PAUSED", "{view}");
        assert!(view["trace"].as_str().unwrap().contains("plugin \"house-style\" was removed from the plugins folder"));
        worker.wait_for_tasks("hot", "PAUSED").await;
        produce(dir.path(), &topic, &(1301..=1400).map(numbered_row).collect::<Vec<_>>());
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(table_rows(&standin, &topic).await.len(), 1300, "nothing is written while the plugin is missing");
        std::fs::copy(&v2, &installed).unwrap();
        let rows = wait_for_rows(&standin, &topic, 1400, &worker).await;
        assert_eq!(rows.len(), 1400);
        assert!(rows[1300..].iter().all(|r| house_style_version(r) == Some(2)));
        assert_eq!(worker.connector_state("hot").await["state"], "RUNNING");
    });
}
