//! The MySQL sink plugin (`mysql-sink`, the sink role of the plugin
//! contract) as a RocketMQ Connect JDBC sink user would run it: the
//! worker binary, connector JSON over HTTP with a `jdbc:mysql://` URL, the
//! real broker, and real MariaDB (`scripts/mariadb.sh`) holding the rows.

mod common;

use common::mysql::{db_password, db_port, db_user, fresh_database, mariadb, sql};
use common::{NAMESRV, WorkerProcess, envelope, read_dead_letters, unique, with_broker};
use rmq_openmldb::plugin::bindings::sql::SqlValue;
use rmq_openmldb::rocketmq::ConsumedMessage;
use rmq_openmldb::sql::{SqlConnection, SqlGrantConfig};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Produce each body as one message, through the CLI.
fn produce(dir: &Path, topic: &str, bodies: &[String]) {
    let file = dir.join(format!("{}.jsonl", unique("messages")));
    std::fs::write(&file, bodies.join("\n")).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_rmq-openmldb"))
        .args(["rocketmq", "produce", "--namesrv", NAMESRV, "--topic", topic, "--lines"])
        .arg(file)
        .status()
        .unwrap();
    assert!(status.success());
}

/// The OpenMLDB guide's sink JSON with its URL pointed at MySQL, as a
/// RocketMQ Connect JDBC sink user writes it.
fn mysql_sink(topic: &str, database: &str, extra: Value) -> Value {
    let mut config = json!({
        "connector.class": "org.apache.rocketmq.connect.jdbc.connector.JdbcSinkConnector",
        "max.tasks": "1",
        "connect.topicnames": topic,
        "connection.url": format!("jdbc:mysql://127.0.0.1:{}/{database}", db_port()),
        "connection.user": db_user(),
        "connection.password": db_password(),
        "insert.mode": "INSERT",
        "auto.create": "true",
        "value.converter": "org.apache.rocketmq.connect.runtime.converter.JsonConverter"
    });
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    config
}

fn numbered_row(id: i64) -> String {
    envelope(json!({"id": id, "name": format!("name-{id}"), "howold": id % 90, "male": id % 2, "company": "c",
                    "money": id as f64 / 4.0, "begin_time": 1640764800000i64 + id}))
}

/// A connection of the test's own, for quick looks at the server.
fn admin_connection(database: &str) -> SqlConnection {
    let config = [
        ("connection.url".to_string(), format!("jdbc:mysql://127.0.0.1:{}/{database}", db_port())),
        ("connection.user".to_string(), db_user()),
        ("connection.password".to_string(), db_password()),
    ]
    .into();
    SqlConnection::open(SqlGrantConfig::from_connector(&config).unwrap().unwrap()).unwrap()
}

/// `SELECT` as tab-separated lines.
fn select(database: &str, query: &str) -> Vec<String> {
    sql(Some(database), query).lines().map(str::to_string).collect()
}

/// Wait until `SELECT COUNT(*)` of the table reaches `count` and stays.
async fn wait_for_count(database: &str, table: &str, expected: u64, worker: &WorkerProcess) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let have = count(database, table);
        if have >= expected {
            tokio::time::sleep(Duration::from_millis(1000)).await;
            return;
        }
        assert!(Instant::now() < deadline, "{have} of {expected} rows in {table}; log:\n{}", worker.log_text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn table_exists(database: &str, table: &str) -> bool {
    !select(database, &format!("SHOW TABLES LIKE '{table}'")).is_empty()
}

/// Rows in the table; 0 while `auto.create` has not made it yet.
fn count(database: &str, table: &str) -> u64 {
    if !table_exists(database, table) {
        return 0;
    }
    select(database, &format!("SELECT COUNT(*) FROM `{table}`"))[0].parse().unwrap()
}

#[test]
fn envelopes_auto_create_the_mysql_table_and_every_row_arrives_exactly() {
    mariadb();
    with_broker(|_| async {
        let dir = tempfile::tempdir().unwrap();
        let database = fresh_database("sink_auto");
        let topic = unique("employee_test");
        let mut bodies = vec![
            envelope(json!({"id": 12, "name": "name-06", "howold": 19, "male": 3, "company": null, "money": null,
                            "begin_time": null})),
            envelope(json!({"id": 2, "name": "name-02", "howold": 19, "male": 7, "company": "company",
                            "money": 32232.0, "begin_time": 1640764800000i64})),
        ];
        bodies.extend((100..2100).map(numbered_row));
        produce(dir.path(), &topic, &bodies);
        let worker = WorkerProcess::start(dir.path()).await;
        let connector = mysql_sink(&topic, &database, json!({"pk.fields": "id", "insert.mode": "UPSERT"}));
        let (status, reply) = worker.post("/connectors/mysql-sink", &connector.to_string()).await;
        assert_eq!((status, &reply["status"]), (200, &json!(200)), "{reply}");

        wait_for_count(&database, &topic, 2002, &worker).await;
        let columns = select(
            &database,
            &format!(
                "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = '{database}' AND TABLE_NAME = '{topic}' ORDER BY ORDINAL_POSITION"
            ),
        );
        assert_eq!(
            columns,
            [
                "id\tbigint(20)\tNO\tPRI",
                "name\ttext\tYES\t",
                "howold\tint(11)\tYES\t",
                "male\tint(11)\tYES\t",
                "company\ttext\tYES\t",
                "money\tdouble\tYES\t",
                "begin_time\tdatetime(3)\tYES\t",
            ],
            "auto.create made the table from the envelope's schema, pk.fields as its key"
        );
        assert_eq!(
            select(&database, &format!("SELECT * FROM `{topic}` WHERE id IN (2, 12) ORDER BY id")),
            ["2\tname-02\t19\t7\tcompany\t32232\t2021-12-29 08:00:00.000", "12\tname-06\t19\t3\tNULL\tNULL\tNULL",],
            "values and NULLs as sent; timestamps as UTC"
        );
        assert_eq!(
            select(&database, &format!("SELECT COUNT(*), COUNT(DISTINCT id), MIN(id), MAX(id) FROM `{topic}`")),
            ["2002\t2002\t2\t2099"]
        );
        let view = worker.connector_state("mysql-sink").await;
        assert_eq!(view["state"], "RUNNING", "{view}");
        assert_eq!(view["tasks"][0]["rows_written"].as_u64(), Some(2002), "{view}");
    });
}

#[test]
fn rows_mysql_refuses_are_dead_lettered_and_the_rest_of_their_batch_is_written() {
    mariadb();
    with_broker(|runtime| async move {
        let dir = tempfile::tempdir().unwrap();
        let database = fresh_database("sink_refused");
        let table = unique("orders");
        let dead_letters = unique("mysql_dlq");
        sql(
            Some(&database),
            &format!(
                "CREATE TABLE `{table}` (id BIGINT PRIMARY KEY, item VARCHAR(8) NOT NULL, qty INT, \
                 CONSTRAINT positive CHECK (qty > 0))"
            ),
        );
        let mut bodies: Vec<String> =
            (1..=300).map(|i| json!({"id": i, "item": format!("i{i}"), "qty": 1 + i % 5}).to_string()).collect();
        bodies[49] = json!({"id": 50, "item": "far-too-long-for-eight", "qty": 1}).to_string();
        bodies[149] = json!({"id": 150, "item": "neg", "qty": -3}).to_string();
        bodies[249] = json!({"id": 1, "item": "dup", "qty": 2}).to_string();
        produce(dir.path(), &table, &bodies);
        let worker = WorkerProcess::start(dir.path()).await;
        let connector = mysql_sink(
            &table,
            &database,
            json!({"auto.create": "false", "value.converter": "json-converter", "errors.tolerance": "all",
                   "errors.deadletterqueue.topic.name": dead_letters}),
        );
        let (status, reply) = worker.post("/connectors/refusing", &connector.to_string()).await;
        assert_eq!((status, &reply["status"]), (200, &json!(200)), "{reply}");

        wait_for_count(&database, &table, 297, &worker).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        let view = loop {
            let view = worker.connector_state("refusing").await;
            if view["tasks"][0]["dead_lettered"].as_u64() == Some(3) || Instant::now() > deadline {
                break view;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(view["tasks"][0]["dead_lettered"].as_u64(), Some(3), "{view}");
        assert_eq!(view["state"], "RUNNING", "{view}");
        assert_eq!(
            select(&database, &format!("SELECT COUNT(*), SUM(id IN (50, 150, 250)), MIN(qty) FROM `{table}`")),
            ["297\t0\t1"],
            "everything but the three refused rows, each once"
        );
        // Of the two messages with id 1 (in different queues, so in no set
        // order), the one stored first wins; the other is refused.
        let kept = select(&database, &format!("SELECT item FROM `{table}` WHERE id = 1"));
        assert!(kept == ["i1"] || kept == ["dup"], "{kept:?}");
        let letters = read_dead_letters(runtime, &dead_letters, 3).await;
        let property = |m: &ConsumedMessage, key: &str| {
            m.properties.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_default()
        };
        assert_eq!(letters.len(), 3);
        for letter in &letters {
            let (body, reason) = (String::from_utf8_lossy(&letter.body), property(letter, "connect.errors.reason"));
            assert_eq!(property(letter, "connect.errors.stage"), "sink mysql-sink");
            let why = if body.contains("far-too-long") {
                "Data too long for column 'item'"
            } else if body.contains("neg") {
                "CONSTRAINT `positive` failed"
            } else {
                assert!(body.contains(if kept == ["i1"] { "dup" } else { "\"i1\"" }), "{body}");
                "Duplicate entry '1'"
            };
            assert!(reason.contains(why), "{body}: {reason}");
        }
    });
}

#[test]
fn a_killed_worker_and_lost_connections_lose_nothing_and_upsert_writes_each_row_once() {
    mariadb();
    with_broker(|_| async {
        let dir = tempfile::tempdir().unwrap();
        let database = fresh_database("sink_crash");
        let topic = unique("crash");
        produce(dir.path(), &topic, &(1..=20_000).map(numbered_row).collect::<Vec<_>>());
        let mut worker = WorkerProcess::start(dir.path()).await;
        let connector =
            mysql_sink(&topic, &database, json!({"pk.fields": "id", "insert.mode": "UPSERT", "max.tasks": "2"}));
        let (status, reply) = worker.post("/connectors/crash", &connector.to_string()).await;
        assert_eq!((status, &reply["status"]), (200, &json!(200)), "{reply}");

        // Mid-stream, MySQL drops the sink's connections (as a failover or
        // a DBA's KILL would); the plugin asks for a retry and the host
        // retries the batch on a new connection.
        let deadline = Instant::now() + Duration::from_secs(60);
        while count(&database, &topic) < 2000 {
            assert!(Instant::now() < deadline, "no rows; log:\n{}", worker.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let sessions = select(
            &database,
            &format!(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = '{}' AND DB = '{database}' AND ID <> CONNECTION_ID()",
                db_user()
            ),
        );
        for id in &sessions {
            // A session may have ended on its own meanwhile.
            let _ = Command::new(common::root().join("scripts/mariadb.sh"))
                .args(["sql", "-e", &format!("KILL {id}")])
                .output();
        }

        // Then the worker dies without a goodbye.
        while count(&database, &topic) < 8000 {
            assert!(Instant::now() < deadline, "stalled; log:\n{}", worker.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        worker.kill();
        let written = count(&database, &topic);
        assert!(written < 20_000, "the kill landed mid-stream ({written} rows)");

        let worker = WorkerProcess::start(dir.path()).await;
        wait_for_count(&database, &topic, 20_000, &worker).await;
        assert_eq!(
            select(&database, &format!("SELECT COUNT(*), COUNT(DISTINCT id), MIN(id), MAX(id) FROM `{topic}`")),
            ["20000\t20000\t1\t20000"],
            "every id exactly once"
        );
        assert!(!sessions.is_empty(), "the test killed the sink's sessions");
    });
}

#[test]
fn a_batch_is_one_transaction_so_killing_the_sinks_session_mid_batch_neither_loses_nor_duplicates() {
    mariadb();
    with_broker(|_| async {
        let dir = tempfile::tempdir().unwrap();
        let database = fresh_database("sink_tx");
        let topic = unique("tx");
        const ROWS: i64 = 30_000;
        produce(dir.path(), &topic, &(1..=ROWS).map(numbered_row).collect::<Vec<_>>());
        let worker = WorkerProcess::start(dir.path()).await;
        // Plain INSERT, no primary key: a batch written twice would show.
        // batch.size 50: a batch of 2048 messages is 41 statements.
        let connector = mysql_sink(&topic, &database, json!({"batch.size": "50", "retry.backoff.ms": "50"}));
        let (status, reply) = worker.post("/connectors/tx", &connector.to_string()).await;
        assert_eq!((status, &reply["status"]), (200, &json!(200)), "{reply}");

        // KILL the sink's session while it is inside a batch, running one
        // of the batch's 41 statements: the kill lands mid-transaction, not
        // on its commit.
        let admin = admin_connection(&database);
        let in_batch = format!(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = '{}' AND DB = '{database}' \
             AND (INFO LIKE 'INSERT%' OR INFO LIKE 'SAVEPOINT%')",
            db_user()
        );
        let mut kills = 0;
        let deadline = Instant::now() + Duration::from_secs(120);
        let rows = format!("SELECT COUNT(*) FROM `{topic}`");
        let written = || match admin.query(rows.clone(), vec![]).map(|r| r.rows) {
            Ok(rows) => match rows.first().and_then(|r| r.first()) {
                Some(SqlValue::Int(n)) => *n,
                _ => 0,
            },
            Err(_) => 0,
        };
        while kills < 5 && written() < ROWS * 9 / 10 {
            assert!(Instant::now() < deadline, "could not catch a batch mid-way; log:\n{}", worker.log_text());
            let sessions = admin.query(in_batch.clone(), vec![]).map(|r| r.rows).unwrap_or_default();
            for session in sessions {
                let id = match session[0] {
                    SqlValue::Uint(id) => id as i64,
                    SqlValue::Int(id) => id,
                    _ => continue,
                };
                if admin.execute(format!("KILL {id}"), vec![vec![]]).is_ok() {
                    kills += 1;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        eprintln!("killed the sink's session {kills} times mid-batch");
        assert!(kills >= 2, "the sink's session was caught mid-batch {kills} times");
        wait_for_count(&database, &topic, ROWS as u64, &worker).await;
        assert_eq!(
            select(&database, &format!("SELECT COUNT(*), COUNT(DISTINCT id), MIN(id), MAX(id) FROM `{topic}`")),
            [format!("{ROWS}\t{ROWS}\t1\t{ROWS}")],
            "after {kills} kills mid-batch, every id exactly once"
        );
        let (_, view) = worker.get("/v1/connectors/tx").await;
        assert_eq!(view["state"], "RUNNING", "{view}");
    });
}
