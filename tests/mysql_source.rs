//! The MySQL source as OpenMLDB's RocketMQ guide uses it: MariaDB (real,
//! from Debian's packages, `scripts/mariadb.sh`), the worker binary, the
//! guide's SQL and connector JSON posted over HTTP, the real broker, and
//! the OpenMLDB APIServer stand-in holding the rows at the end.

#![recursion_limit = "512"]

mod common;

use common::mysql::{db_password, db_port, db_user, fresh_database, mariadb, sql};
use common::{
    NAMESRV, OpenMldb, WorkerProcess, guide_cluster, guide_rows_in_openmldb, guide_sink_as_published, root, standin,
    table_rows, unique, with_broker,
};
use openmldb_standin::StandIn;
use rmq_openmldb::rocketmq::{ConsumerConfig, QueueConsumer};
use rocketmq_client_rust::ClientRuntime;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Rows `from..to` into an `orders` table (id, item, qty).
fn insert_orders(database: &str, table: &str, from: i64, to: i64) {
    let values: Vec<String> = (from..to).map(|i| format!("({i}, 'item-{i}', {})", i % 7)).collect();
    sql(Some(database), &format!("INSERT INTO `{table}` VALUES {};", values.join(",")));
}

/// The OpenMLDB guide's MySQL script, verbatim.
const GUIDE_SQL: &str = include_str!("../examples/mysql/employee_test.sql");

/// The guide's source connector JSON, verbatim (its comments included),
/// with the credentials `scripts/mariadb.sh` creates for its `*****`.
fn guide_source_json() -> String {
    include_str!("../examples/connectors/mysql-source.json")
        .replace("\"rmq\"", &format!("\"{}\"", db_user()))
        .replace("\"rmq-secret\"", &format!("\"{}\"", db_password()))
        .replace("127.0.0.1:3306", &format!("127.0.0.1:{}", db_port()))
}

/// A source connector of this test suite's own.
fn source(database: &str, table: &str, mode: &str, extra: Value) -> Value {
    let mut config = json!({
        "connector.class": "org.apache.rocketmq.connect.jdbc.connector.JdbcSourceConnector",
        "connection.url": format!("jdbc:mysql://127.0.0.1:{}/{database}", db_port()),
        "connection.user": db_user(),
        "connection.password": db_password(),
        "table.whitelist": format!("{database}.{table}"),
        "mode": mode,
    });
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    config
}

/// Messages the connector's tasks have sent so far.
async fn sent(worker: &WorkerProcess, connector: &str) -> u64 {
    let view = worker.connector_state(connector).await;
    view["tasks"].as_array().map(|t| t.iter().filter_map(|t| t["messages"].as_u64()).sum()).unwrap_or(0)
}

async fn wait_until_sent(worker: &WorkerProcess, connector: &str, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = sent(worker, connector).await;
        if n >= count {
            return;
        }
        let view = worker.connector_state(connector).await;
        assert!(Instant::now() < deadline, "{connector} sent {n} of {count}: {view}\n{}", worker.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait until `table` in the stand-in holds `count` rows (and no more
/// arrive for a moment); return them sorted by the first column.
async fn settled_rows(standin: &StandIn, table: &str, count: usize, worker: &WorkerProcess) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let rows = table_rows(standin, table).await;
        if rows.len() >= count {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            return table_rows(standin, table).await;
        }
        assert!(Instant::now() < deadline, "{} of {count} rows in {table}; log:\n{}", rows.len(), worker.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ids(rows: &[Value]) -> Vec<i64> {
    rows.iter().map(|r| r[0].as_i64().unwrap()).collect()
}

/// Start a source, wait for its first messages (so its topic exists before
/// the sink subscribes), then start the sink for the same topic.
async fn source_then_sink(
    worker: &WorkerProcess,
    standin: &OpenMldb,
    name: &str,
    source: &Value,
    topic: &str,
    first: u64,
) {
    let (status, reply) = worker.post(&format!("/connectors/{name}-source"), &source.to_string()).await;
    assert_eq!((status, &reply["status"]), (200, &json!(200)), "{reply}");
    wait_until_sent(worker, &format!("{name}-source"), first).await;
    let sink = standin.sink(topic);
    let (status, reply) = worker.post(&format!("/connectors/{name}-sink"), &sink.to_string()).await;
    assert_eq!((status, &reply["status"]), (200, &json!(200)), "{reply}");
}

#[test]
fn the_guides_mysql_to_openmldb_scenario_runs_as_written_and_new_rows_follow_within_two_seconds() {
    mariadb();
    with_broker(|_| async {
        // The guide's MySQL side, exactly.
        sql(None, "CREATE DATABASE IF NOT EXISTS test_database");
        sql(Some("test_database"), GUIDE_SQL);
        // The guide's topic is the table's name; start it empty, as on a
        // fresh RocketMQ (earlier runs on this broker used it).
        let _ = Command::new(root().join("scripts/rocketmq.sh"))
            .args(["admin", "deleteTopic", "-n", NAMESRV, "-c", "DefaultCluster", "-t", "employee_test"])
            .stdout(Stdio::null())
            .status();
        let dir = tempfile::tempdir().unwrap();
        // OpenMLDB where the guide's URL finds it (ZooKeeper on 2181): written natively.
        let cluster = guide_cluster().await;
        let standin = &cluster.standin;
        let worker = WorkerProcess::start(dir.path()).await;

        let (status, reply) = worker.post("/connectors/jdbc-mysql-source-test", &guide_source_json()).await;
        assert_eq!((status, &reply["status"]), (200, &json!(200)), "{reply}");
        assert_eq!(reply["body"]["connection.password"], "********", "secrets are never echoed");
        wait_until_sent(&worker, "jdbc-mysql-source-test", 4).await;
        let status = worker.compat_ok("/connectors/jdbc-mysql-source-test/status").await;
        assert_eq!((status["type"].as_str(), status["tasks"][0]["state"].as_str()), (Some("SOURCE"), Some("RUNNING")));

        // The guide's sink JSON, exactly as published.
        let sink = guide_sink_as_published("employee_test");
        let (status, _) = worker.post("/connectors/jdbc-openmldb-sink-test", &sink.to_string()).await;
        assert_eq!(status, 200);
        let rows = settled_rows(standin, "employee_test", 4, &worker).await;
        assert_eq!(rows, guide_rows_in_openmldb(), "the four rows exactly, row 12 keeping its NULLs");

        // 10,000 more rows in one statement; they follow within 2 s.
        let values: Vec<String> = (15..10_015)
            .map(|id| format!("({id}, 'name-{id}', {}, 1, 'company', {id}.5, '2022-03-01 10:00:00')", id % 60))
            .collect();
        sql(Some("test_database"), &format!("INSERT INTO employee_test VALUES {};", values.join(",")));
        let inserted = Instant::now();
        let deadline = inserted + Duration::from_secs(30);
        let mut rows = table_rows(standin, "employee_test").await;
        while rows.len() < 10_004 {
            assert!(Instant::now() < deadline, "{} of 10004 rows; log:\n{}", rows.len(), worker.log_text());
            tokio::time::sleep(Duration::from_millis(20)).await;
            rows = table_rows(standin, "employee_test").await;
        }
        let took = inserted.elapsed();
        println!("10,000 rows from MySQL into OpenMLDB in {took:?}");
        assert!(took <= Duration::from_secs(2), "10,000 rows took {took:?}, more than 2 s");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let rows = table_rows(standin, "employee_test").await;
        let expected: Vec<i64> = [2, 4, 12, 14].into_iter().chain(15..10_015).collect();
        assert_eq!(ids(&rows), expected, "every id once, none twice");
        assert_eq!(rows[4], json!([15, "name-15", 15, 1, "company", 15.5, 1646128800000i64]));
    });
}

#[test]
fn a_worker_restart_mid_stream_resumes_from_the_stored_position_without_loss_or_duplicates() {
    mariadb();
    with_broker(|_| async {
        let database = fresh_database("restart");
        let table = unique("orders");
        sql(
            Some(&database),
            &format!(
                "CREATE TABLE `{table}` (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, item VARCHAR(64), qty INT);"
            ),
        );
        let insert = |from: i64, to: i64| insert_orders(&database, &table, from, to);
        insert(1, 3_001);
        // Rows keep coming while the worker runs, stops and starts again:
        // ids up to 15,000 before the stop, the rest only after it.
        let (stopped, wait_for_stop) = std::sync::mpsc::channel::<()>();
        let stream = {
            let (database, table) = (database.clone(), table.clone());
            std::thread::spawn(move || {
                for chunk in 0..27 {
                    if chunk == 12 {
                        wait_for_stop.recv().unwrap();
                    }
                    let from = 3_001 + chunk * 1_000;
                    insert_orders(&database, &table, from, from + 1_000);
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
        };
        let dir = tempfile::tempdir().unwrap();
        let standin = standin().await;
        let mut worker = WorkerProcess::start(dir.path()).await;
        let source = source(&database, &table, "incrementing", json!({"incrementing.column.name": "id"}));
        source_then_sink(&worker, &standin, "restart", &source, &table, 1).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while sent(&worker, "restart-source").await < 3_000 {
            assert!(Instant::now() < deadline, "the source is not moving: {}", worker.log_text());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        worker.terminate();
        stopped.send(()).unwrap();
        let positions: Value = serde_json::from_slice(
            &std::fs::read(dir.path().join("store/source-positions/restart-source.json")).unwrap(),
        )
        .unwrap();
        let stored = positions[format!("{database}.{table}")].as_str().unwrap().to_string();
        let stored_id = serde_json::from_str::<Value>(&stored).unwrap()["incrementing"].as_i64().unwrap();
        assert!((3_000..=15_000).contains(&stored_id), "stopped mid-stream at {stored_id}");
        let stored_rows = table_rows(&standin, &table).await.len();
        println!("stopped at id {stored_id} with {stored_rows} rows in OpenMLDB");

        // Rows added while the worker is down, and after it is back.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let worker = WorkerProcess::start(dir.path()).await;
        stream.join().unwrap();
        insert(30_001, 35_001);
        let rows = settled_rows(&standin, &table, 35_000, &worker).await;
        assert_eq!(ids(&rows), (1..35_001).collect::<Vec<i64>>(), "every id exactly once across the restart");
    });
}

#[test]
fn each_mode_reads_what_it_promises() {
    mariadb();
    with_broker(|_| async {
        let database = fresh_database("modes");
        let dir = tempfile::tempdir().unwrap();
        let standin = standin().await;
        let worker = WorkerProcess::start(dir.path()).await;
        let columns = "id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, name VARCHAR(32), price DECIMAL(10,2), \
                       flag BIT(1), born DATE, small TINYINT UNSIGNED, note TEXT, \
                       updated DATETIME(3) NOT NULL DEFAULT '2024-01-01 00:00:00'";

        // bulk: the whole table on every interval; new rows come with the next read.
        let bulk = unique("bulk");
        sql(
            Some(&database),
            &format!(
                "CREATE TABLE `{bulk}` ({columns}); INSERT INTO `{bulk}` (id, name, price, flag, born, small, note) VALUES \
             (1, 'a', 12.50, b'1', '2024-02-29', 255, 'x'), (2, NULL, NULL, NULL, NULL, NULL, NULL), (3, 'c', -0.05, b'0', '1999-12-31', 0, '');"
            ),
        );
        let config = source(&database, &bulk, "bulk", json!({"poll.interval.ms": "700", "db.timezone": "UTC"}));
        source_then_sink(&worker, &standin, "bulk", &config, &bulk, 3).await;
        wait_until_sent(&worker, "bulk-source", 6).await;
        sql(Some(&database), &format!("INSERT INTO `{bulk}` (id, name) VALUES (4, 'd');"));
        wait_until_sent(&worker, "bulk-source", 13).await;
        let rows = settled_rows(&standin, &bulk, 13, &worker).await;
        // The sink appends each read (OpenMLDB tables append); every read holds every row.
        assert!(rows.len() >= 9, "{rows:?}");
        let first_read: Vec<&Value> = rows.iter().filter(|r| r[0] == json!(1)).collect();
        assert!(first_read.len() >= 3, "row 1 in every read: {rows:?}");
        assert_eq!(
            *first_read[0],
            json!([1, "a", 12.5, true, "2024-2-29", 255, "x", 1704067200000i64]),
            "DECIMAL, BIT(1), DATE, TINYINT UNSIGNED and DATETIME as OpenMLDB holds them"
        );
        assert!(
            rows.iter().any(|r| *r == json!([2, null, null, null, null, null, null, 1704067200000i64])),
            "NULLs stay NULL"
        );
        assert!(rows.iter().any(|r| r[0] == json!(4)), "a row added later comes with the next read");

        // incrementing: new ids only; an update of an old row is not read again.
        let inc = unique("inc");
        sql(
            Some(&database),
            &format!("CREATE TABLE `{inc}` ({columns}); INSERT INTO `{inc}` (id, name) VALUES (1, 'a'), (2, 'b');"),
        );
        let config = source(&database, &inc, "incrementing", json!({"incrementing.column.name": ""}));
        source_then_sink(&worker, &standin, "inc", &config, &inc, 2).await;
        sql(
            Some(&database),
            &format!(
                "UPDATE `{inc}` SET name = 'changed' WHERE id = 1; INSERT INTO `{inc}` (id, name) VALUES (3, 'c');"
            ),
        );
        let rows = settled_rows(&standin, &inc, 3, &worker).await;
        assert_eq!(
            rows.iter().map(|r| (r[0].as_i64().unwrap(), r[1].as_str().unwrap().to_string())).collect::<Vec<_>>(),
            [(1, "a".to_string()), (2, "b".into()), (3, "c".into())],
            "the AUTO_INCREMENT column is found when incrementing.column.name is empty"
        );

        // db.timezone: DATETIME is wall-clock time in that zone; TIMESTAMP is an instant.
        let tz = unique("tz");
        sql(
            Some(&database),
            &format!(
                "CREATE TABLE `{tz}` (id BIGINT NOT NULL PRIMARY KEY, local_time DATETIME, instant TIMESTAMP NULL, day DATE); \
                 SET time_zone = '+00:00'; \
                 INSERT INTO `{tz}` VALUES (1, '2024-01-01 08:00:00', '2024-01-01 08:00:00', '2024-01-01');"
            ),
        );
        let config = source(
            &database,
            &tz,
            "incrementing",
            json!({"incrementing.column.name": "id", "db.timezone": "Asia/Shanghai"}),
        );
        source_then_sink(&worker, &standin, "tz", &config, &tz, 1).await;
        let rows = settled_rows(&standin, &tz, 1, &worker).await;
        assert_eq!(
            rows,
            [json!([1, 1704067200000i64, 1704096000000i64, "2024-1-1"])],
            "08:00 in Shanghai is 00:00 UTC; the TIMESTAMP stays the instant it is"
        );

        // timestamp: inserts and updates, a group of 150 rows sharing one
        // timestamp read whole although batch.max.rows is 100.
        let ts = unique("ts");
        let same: Vec<String> = (1..=150).map(|i| format!("({i}, 'same-{i}', '2024-03-01 12:00:00')")).collect();
        sql(
            Some(&database),
            &format!(
                "CREATE TABLE `{ts}` ({columns}); INSERT INTO `{ts}` (id, name, updated) VALUES {};",
                same.join(",")
            ),
        );
        let config =
            source(&database, &ts, "timestamp", json!({"timestamp.column.name": "updated", "batch.max.rows": "100"}));
        source_then_sink(&worker, &standin, "ts", &config, &ts, 150).await;
        let rows = settled_rows(&standin, &ts, 150, &worker).await;
        assert_eq!(ids(&rows), (1..=150).collect::<Vec<i64>>(), "the whole group once");
        sql(
            Some(&database),
            &format!(
                "UPDATE `{ts}` SET name = 'updated', updated = NOW(3) WHERE id = 7; \
             INSERT INTO `{ts}` (id, name, updated) VALUES (151, 'new', NOW(3));"
            ),
        );
        let rows = settled_rows(&standin, &ts, 152, &worker).await;
        assert_eq!(rows.len(), 152, "the update and the insert, nothing else: {:?}", ids(&rows));
        assert!(rows.iter().any(|r| r[0] == json!(7) && r[1] == json!("updated")));

        // timestamp+incrementing: 250 rows sharing a timestamp, paged by id.
        let tsi = unique("tsi");
        let same: Vec<String> = (1..=250).map(|i| format!("({i}, 'same-{i}', '2024-03-01 12:00:00')")).collect();
        sql(
            Some(&database),
            &format!(
                "CREATE TABLE `{tsi}` ({columns}); INSERT INTO `{tsi}` (id, name, updated) VALUES {};",
                same.join(",")
            ),
        );
        let config = source(
            &database,
            &tsi,
            "timestamp+incrementing",
            json!({"timestamp.column.name": "updated", "incrementing.column.name": "id", "batch.max.rows": "100"}),
        );
        source_then_sink(&worker, &standin, "tsi", &config, &tsi, 250).await;
        sql(
            Some(&database),
            &format!(
                "INSERT INTO `{tsi}` (id, name, updated) VALUES (251, 'later', '2024-03-01 12:00:00'), (252, 'newer', NOW(3));"
            ),
        );
        let rows = settled_rows(&standin, &tsi, 251, &worker).await;
        // Row 251 shares the old timestamp but has a higher id: it is read too.
        assert_eq!(ids(&rows), (1..=252).collect::<Vec<i64>>());
    });
}

#[test]
fn a_source_with_bad_settings_is_refused_or_fails_with_the_reason() {
    mariadb();
    with_broker(|_| async {
        let database = fresh_database("bad");
        let table = unique("shapes");
        sql(Some(&database), &format!("CREATE TABLE `{table}` (id INT NOT NULL PRIMARY KEY, area POLYGON);"));
        let dir = tempfile::tempdir().unwrap();
        let worker = WorkerProcess::start(dir.path()).await;

        // Refused at once, naming key and value.
        let bad = source(&database, &table, "sometimes", json!({}));
        let (_, reply) = worker.post("/connectors/bad-mode", &bad.to_string()).await;
        assert_eq!(reply["errorCode"], 400);
        assert_eq!(
            reply["message"],
            "key \"mode\": invalid value \"sometimes\": expected bulk, incrementing, timestamp or timestamp+incrementing"
        );
        // A column type OpenMLDB cannot hold: the task fails with the reason, without retrying.
        let config = source(&database, &table, "incrementing", json!({"incrementing.column.name": "id"}));
        let (status, _) = worker.post("/connectors/bad-type", &config.to_string()).await;
        assert_eq!(status, 200);
        worker.wait_for_tasks("bad-type", "FAILED").await;
        let view = worker.connector_state("bad-type").await;
        let trace = view["tasks"][0]["trace"].as_str().unwrap();
        assert!(trace.contains("column \"area\" has type polygon"), "{trace}");
        // A wrong password: the connection error, as the trace says.
        let mut config = source(&database, &table, "bulk", json!({}));
        config["connection.password"] = json!("wrong");
        worker.post("/connectors/bad-password", &config.to_string()).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let view = worker.connector_state("bad-password").await;
            if let Some(trace) = view["tasks"][0]["trace"].as_str() {
                assert!(trace.contains("Access denied"), "{trace}");
                break;
            }
            assert!(Instant::now() < deadline, "no failure reported: {view}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

/// Where each task of source `name` runs, as `worker`'s `/v1/cluster`
/// shows the cluster: task id → worker id, once every task is RUNNING on
/// exactly one live worker (none of `gone`).
async fn placement(worker: &WorkerProcess, name: &str, tasks: u32, gone: &[&str]) -> BTreeMap<u32, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, view) = worker.get("/v1/cluster").await;
        let mut placed: Vec<(u32, String, String)> = Vec::new();
        for w in view["workers"].as_array().cloned().unwrap_or_default() {
            for task in w["connectors"][name]["tasks"].as_array().cloned().unwrap_or_default() {
                let id = task["id"].as_u64().unwrap() as u32;
                placed.push((id, w["worker_id"].as_str().unwrap().into(), task["state"].as_str().unwrap().into()));
            }
        }
        placed.sort();
        let ids: Vec<u32> = placed.iter().map(|(id, _, _)| *id).collect();
        let settled = ids == (0..tasks).collect::<Vec<_>>()
            && placed.iter().all(|(_, w, state)| state == "RUNNING" && !gone.contains(&w.as_str()));
        if settled {
            return placed.into_iter().map(|(id, w, _)| (id, w)).collect();
        }
        assert!(Instant::now() < deadline, "tasks not placed once each: {placed:?}\n{view}\n{}", worker.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every id the source sent to each topic, read back from the broker:
/// until `count` messages arrived, then for three seconds more (so a
/// duplicate would show).
async fn sent_ids(runtime: Arc<ClientRuntime>, topics: &[String], count: usize) -> BTreeMap<String, Vec<i64>> {
    let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    let consumer = QueueConsumer::start(runtime, ConsumerConfig::new(common::NAMESRV, &unique("reader"), &topic_refs))
        .await
        .unwrap();
    let mut ids: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut complete: Option<Instant> = None;
    while complete.is_none_or(|at| at.elapsed() < Duration::from_secs(3)) && Instant::now() < deadline {
        let got = consumer.poll(Duration::from_millis(300)).await;
        consumer.ack(got.iter().map(|m| (m.queue.clone(), m.queue_offset))).await;
        for message in got {
            let body: Value = serde_json::from_slice(&message.body).unwrap();
            ids.entry(message.queue.topic.clone()).or_default().push(body["payload"]["id"].as_i64().unwrap());
        }
        if complete.is_none() && ids.values().map(Vec::len).sum::<usize>() >= count {
            complete = Some(Instant::now());
        }
    }
    consumer.shutdown().await;
    ids.values_mut().for_each(|v| v.sort_unstable());
    ids
}

#[test]
fn a_source_in_a_three_worker_cluster_runs_once_and_a_survivor_resumes_it_where_its_killed_owner_left_off() {
    mariadb();
    with_broker(|runtime| async move {
        let database = fresh_database("clustered");
        let tables = [unique("orders"), unique("orders")];
        for table in &tables {
            sql(
                Some(&database),
                &format!("CREATE TABLE `{table}` (id BIGINT NOT NULL PRIMARY KEY, item VARCHAR(64), qty INT);"),
            );
            insert_orders(&database, table, 1, 5_001);
        }
        let dir = tempfile::tempdir().unwrap();
        let cluster = unique("sources");
        let mut workers = Vec::new();
        for id in ["worker-a", "worker-b", "worker-c"] {
            workers.push(WorkerProcess::start_in_cluster(&dir.path().join(id), &cluster, id).await);
        }
        let whitelist = tables.iter().map(|t| format!("{database}.{t}")).collect::<Vec<_>>().join(",");
        let config = source(
            &database,
            &tables[0],
            "incrementing",
            json!({"incrementing.column.name": "id", "max.tasks": "2", "table.whitelist": whitelist}),
        );
        // In a cluster, secrets travel by reference only.
        let secret = dir.path().join("db-password");
        std::fs::write(&secret, db_password()).unwrap();
        let mut config = config;
        config["connection.password"] = json!(format!("${{file:{}}}", secret.display()));
        let (status, reply) = workers[0].post("/connectors/clustered", &config.to_string()).await;
        assert_eq!((status, &reply["status"]), (200, &json!(200)), "{reply}");

        // Each task runs on exactly one of the three, and every row is sent once.
        let before = placement(&workers[1], "clustered", 2, &[]).await;
        let first = sent_ids(runtime.clone(), &tables, 10_000).await;
        for table in &tables {
            assert_eq!(first[table], (1..5_001).collect::<Vec<_>>(), "{table}: every id once, none twice");
        }

        // The owner of task 0 is killed; new rows arrive meanwhile; a
        // survivor takes the task over from its last published position.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let victim = before[&0].clone();
        let index = ["worker-a", "worker-b", "worker-c"].iter().position(|w| *w == victim).unwrap();
        let killed = Instant::now();
        workers[index].kill();
        for table in &tables {
            insert_orders(&database, table, 5_001, 8_001);
        }
        let survivor = &workers[(index + 1) % 3];
        let after = placement(survivor, "clustered", 2, &[&victim]).await;
        println!("source task 0 moved from {victim} to {} in {:?}", after[&0], killed.elapsed());
        if before[&1] != victim {
            assert_eq!(after[&1], before[&1], "a task of a live worker stays where it is");
        }
        let all = sent_ids(runtime.clone(), &tables, 16_000).await;
        for table in &tables {
            assert_eq!(all[table], (1..8_001).collect::<Vec<_>>(), "{table}: every id once across the failover");
        }
    });
}
