//! The sink path's promises, tried as a user would (the worker binary,
//! connector JSON over HTTP, the real broker, the OpenMLDB stand-in and real
//! MariaDB): every value arrives bit for bit; every topic lands in its own
//! table; a message that makes a plugin trap is set aside alone; without
//! error tolerance nothing after a refused message of its queue is
//! written; a row the server keeps refusing is dead-lettered saying which
//! rows of its message were stored; and a stall shows at once.

#![recursion_limit = "512"]

mod common;

use common::mysql::{db_password, db_port, db_user, fresh_database, mariadb};
use common::{
    NAMESRV, WorkerProcess, produce_to, property, read_dead_letters, standin, table_rows, unique, wait_for_rows,
    with_broker,
};
use rmq_openmldb::plugin::bindings::sql::SqlValue;
use rmq_openmldb::sql::{SqlConnection, SqlGrantConfig};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// Doubles that need all 17 digits, subnormals, extremes, -0.0, and the
/// `id * 1.1` family where a fast parser is one unit off in one in five.
fn doubles() -> Vec<f64> {
    let mut values: Vec<f64> = (1..=1000).map(|i| i as f64 * 1.1).collect();
    values.extend([
        0.1,
        -0.0,
        5e-324,
        2.225_073_858_507_201_4e-308,
        // The largest subnormal.
        f64::from_bits(0x000f_ffff_ffff_ffff),
        f64::MAX,
        f64::MIN,
        12.100_000_000_000_001,
        1e-300,
        123_456_789.123_456_79,
        std::f64::consts::PI,
        1.0 / 3.0,
        9_007_199_254_740_992.0,
        0.300_000_000_000_000_04,
    ]);
    values
}

/// Floats whose text rounds differently through f64, extremes, -0.0.
fn floats() -> Vec<f32> {
    vec![
        1.1,
        f32::MAX,
        f32::MIN,
        1e-45,
        f32::MIN_POSITIVE,
        -0.0,
        16_777_216.0,
        0.1,
        std::f32::consts::PI,
        7.038_531e-26,
    ]
}

const STRINGS: &[&str] = &["", "it's", "back\\slash \"quoted\"", "中文 ☃ 🎉", "line\nbreak\ttab", "NULL"];
const TIMESTAMPS: &[i64] = &[0, 1, 253_402_300_799_999, 1_640_764_800_000];
/// Days since 1970-01-01: 1900-01-01, 9999-12-31, 2024-02-29.
const DATES: &[(i64, &str)] = &[(-25_567, "1900-1-1"), (2_932_896, "9999-12-31"), (19_782, "2024-2-29")];

/// Row `i` of the exactness table, as a JsonConverter envelope.
fn exact_row(i: usize) -> String {
    let (doubles, floats) = (doubles(), floats());
    let field = |name: &str, ty: &str| json!({"type": ty, "optional": true, "field": name});
    let mut ts = field("ts", "int64");
    ts["name"] = json!("io.openmessaging.connector.api.data.logical.Timestamp");
    let mut dt = field("dt", "int32");
    dt["name"] = json!("io.openmessaging.connector.api.data.logical.Date");
    let ints = [i32::MIN, i32::MAX, 0, -1];
    let smalls = [i16::MIN, i16::MAX, 0, 7];
    let bigs = [i64::MIN, i64::MAX, 0, -9_007_199_254_740_993];
    let payload = json!({
        "id": i as i64,
        "d": doubles[i % doubles.len()],
        "f": floats[i % floats.len()],
        "i": ints[i % ints.len()],
        "s": smalls[i % smalls.len()],
        "b": bigs[i % bigs.len()],
        "ts": TIMESTAMPS[i % TIMESTAMPS.len()],
        "dt": DATES[i % DATES.len()].0,
        "str": if i % 7 == 6 { Value::Null } else { json!(STRINGS[i % STRINGS.len()]) },
        "flag": i.is_multiple_of(2),
    });
    json!({
        "schema": {
            "type": "struct", "optional": true, "name": "exact",
            "fields": [field("id", "int64"), field("d", "double"), field("f", "float"), field("i", "int32"),
                       field("s", "int16"), field("b", "int64"), ts, dt, field("str", "string"), field("flag", "boolean")]
        },
        "payload": payload
    })
    .to_string()
}

const ROWS: usize = 1200;

/// The same filter and rename a user might chain: every cell crosses into
/// two WebAssembly transforms and back.
fn with_transforms(mut connector: Value) -> Value {
    for (key, value) in [
        ("transforms", "keep, same"),
        ("transforms.keep.type", "filter"),
        ("transforms.keep.field", "id"),
        ("transforms.keep.op", "ge"),
        ("transforms.keep.value", "0"),
        ("transforms.same.type", "rename"),
        ("transforms.same.renames", "flag:flag"),
    ] {
        connector[key] = json!(value);
    }
    connector
}

fn assert_same_double(id: usize, got: f64) {
    let want = doubles()[id % doubles().len()];
    assert_eq!(got.to_bits(), want.to_bits(), "row {id}: double {got:e} is not {want:e}");
}

fn assert_same_float(id: usize, got: f32) {
    let want = floats()[id % floats().len()];
    assert_eq!(got.to_bits(), want.to_bits(), "row {id}: float {got:e} is not {want:e}");
}

#[test]
fn every_value_arrives_bit_for_bit_in_openmldb_and_in_mysql() {
    mariadb();
    with_broker(|runtime| async move {
        let dir = tempfile::tempdir().unwrap();
        let mysql_refused = unique("exact_mysql_dlq");
        let standin = standin().await;
        let topic = unique("exact");
        let database = fresh_database("exact");
        produce_to(dir.path(), &topic, &(0..ROWS).map(exact_row).collect::<Vec<_>>(), 8);
        let worker = WorkerProcess::start(dir.path()).await;

        let mut openmldb = with_transforms(standin.sink(&topic));
        openmldb["openmldb.index.key"] = json!("id");
        openmldb["consume.from.where"] = json!("CONSUME_FROM_FIRST_OFFSET");
        let (_, reply) = worker.post("/connectors/exact-openmldb", &openmldb.to_string()).await;
        assert_eq!(reply["status"], 200, "{reply}");
        let mysql = with_transforms(json!({
            "connector.class": "org.apache.rocketmq.connect.jdbc.connector.JdbcSinkConnector",
            "connect.topicnames": topic,
            "connection.url": format!("jdbc:mysql://127.0.0.1:{}/{database}", db_port()),
            "connection.user": db_user(),
            "connection.password": db_password(),
            "auto.create": "true",
            "consume.from.where": "CONSUME_FROM_FIRST_OFFSET",
            "value.converter": "org.apache.rocketmq.connect.runtime.converter.JsonConverter",
            "errors.tolerance": "all",
            "errors.deadletterqueue.topic.name": mysql_refused
        }));
        let (_, reply) = worker.post("/connectors/exact-mysql", &mysql.to_string()).await;
        assert_eq!(reply["status"], 200, "{reply}");

        // OpenMLDB, read back through the APIServer as its clients read it.
        let rows = wait_for_rows(&standin, &topic, ROWS, &worker).await;
        assert_eq!(rows.len(), ROWS);
        for row in &rows {
            let id = row[0].as_i64().unwrap() as usize;
            assert_same_double(id, row[1].as_f64().unwrap());
            // The APIServer writes a float widened to a double.
            assert_same_float(id, row[2].as_f64().unwrap() as f32);
            assert_eq!(row[3], json!([i32::MIN, i32::MAX, 0, -1][id % 4]), "row {id}: int");
            assert_eq!(row[4], json!([i16::MIN, i16::MAX, 0, 7][id % 4]), "row {id}: smallint");
            assert_eq!(row[5], json!([i64::MIN, i64::MAX, 0, -9_007_199_254_740_993i64][id % 4]), "row {id}: bigint");
            assert_eq!(row[6], json!(TIMESTAMPS[id % TIMESTAMPS.len()]), "row {id}: timestamp");
            assert_eq!(row[7], json!(DATES[id % DATES.len()].1), "row {id}: date");
            let string = if id % 7 == 6 { Value::Null } else { json!(STRINGS[id % STRINGS.len()]) };
            assert_eq!(row[8], string, "row {id}: string");
            assert_eq!(row[9], json!(id.is_multiple_of(2)), "row {id}: bool");
        }

        // MySQL, read back over the binary protocol (no text rounding).
        // MySQL keeps no sign on zero: rows with -0.0 are refused, not changed.
        let negative_zero = |id: usize| {
            let (d, f) = (doubles()[id % doubles().len()], floats()[id % floats().len()]);
            (d == 0.0 && d.is_sign_negative()) || (f == 0.0 && f.is_sign_negative())
        };
        let refused = (0..ROWS).filter(|id| negative_zero(*id)).count();
        let letters = read_dead_letters(runtime, &mysql_refused, refused).await;
        assert_eq!(letters.len(), refused);
        for letter in &letters {
            let reason = property(letter, "connect.errors.reason").unwrap_or_default();
            assert!(reason.contains("-0.0 cannot be stored exactly: MySQL keeps no sign on zero"), "{reason}");
        }
        let grant = SqlGrantConfig::from_connector(
            &[
                ("connection.url".to_string(), format!("jdbc:mysql://127.0.0.1:{}/{database}", db_port())),
                ("connection.user".to_string(), db_user()),
                ("connection.password".to_string(), db_password()),
            ]
            .into(),
        )
        .unwrap()
        .unwrap();
        let connection = SqlConnection::open(grant).unwrap();
        let query = format!("SELECT id, d, f, i, s, b, ts, dt, str, flag FROM `{topic}` ORDER BY id");
        let deadline = Instant::now() + Duration::from_secs(90);
        let result = loop {
            match connection.query(query.clone(), vec![]) {
                Ok(result) if result.rows.len() >= ROWS - refused => break result,
                other => {
                    let seen = other.map(|r| r.rows.len().to_string()).unwrap_or_else(|e| e.message);
                    assert!(Instant::now() < deadline, "MySQL has {seen}; log:\n{}", worker.log_text());
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        assert_eq!(result.rows.len(), ROWS - refused);
        for cells in &result.rows {
            let SqlValue::Int(id) = cells[0] else { panic!("id {:?}", cells[0]) };
            let id = id as usize;
            let SqlValue::Double(d) = cells[1] else { panic!("row {id}: d {:?}", cells[1]) };
            assert_same_double(id, d);
            let SqlValue::Float(f) = cells[2] else { panic!("row {id}: f {:?}", cells[2]) };
            assert_same_float(id, f);
            assert_eq!(cells[5], SqlValue::Int([i64::MIN, i64::MAX, 0, -9_007_199_254_740_993][id % 4]), "row {id}");
            let string = if id % 7 == 6 { SqlValue::Null } else { SqlValue::Text(STRINGS[id % STRINGS.len()].into()) };
            assert_eq!(cells[8], string, "row {id}: string");
        }
        let (_, view) = worker.get("/v1/connectors/exact-mysql").await;
        assert_eq!(view["state"], "RUNNING", "{view}");
    });
}

#[test]
fn numbers_that_cannot_be_stored_exactly_are_refused_naming_the_field_and_value() {
    with_broker(|runtime| async move {
        let dir = tempfile::tempdir().unwrap();
        let standin = standin().await;
        let topic = unique("inexact");
        let dead_letters = unique("inexact_dlq");
        let field = |name: &str, ty: &str| json!({"type": ty, "optional": true, "field": name});
        let envelope = |payload: Value| {
            json!({"schema": {"type": "struct", "name": "inexact",
                "fields": [field("id", "int64"), field("d", "double"), field("f", "float"), field("s", "int16")]},
                "payload": payload})
            .to_string()
        };
        let bodies = vec![
            envelope(json!({"id": 1, "d": 1.5, "f": 1.5, "s": 1})),
            // 2^53 + 1 has no double.
            r#"{"schema": {"type": "struct", "name": "inexact", "fields": [{"type": "int64", "optional": true, "field": "id"}, {"type": "double", "optional": true, "field": "d"}, {"type": "float", "optional": true, "field": "f"}, {"type": "int16", "optional": true, "field": "s"}]}, "payload": {"id": 2, "d": 9007199254740993, "f": 1.0, "s": 1}}"#.to_string(),
            envelope(json!({"id": 3, "d": 1.0, "f": 1e39, "s": 1})),
            envelope(json!({"id": 4, "d": 1.0, "f": 1.0, "s": 70000})),
            envelope(json!({"id": 5, "d": 2.5, "f": 2.5, "s": 2})),
        ];
        produce_to(dir.path(), &topic, &bodies, 1);
        let worker = WorkerProcess::start(dir.path()).await;
        let mut connector = standin.sink(&topic);
        connector["errors.tolerance"] = json!("all");
        connector["errors.deadletterqueue.topic.name"] = json!(dead_letters);
        let (_, reply) = worker.post("/connectors/inexact", &connector.to_string()).await;
        assert_eq!(reply["status"], 200, "{reply}");
        let rows = wait_for_rows(&standin, &topic, 2, &worker).await;
        assert_eq!(rows.iter().map(|r| r[0].as_i64().unwrap()).collect::<Vec<_>>(), [1, 5]);
        let mut reasons: Vec<String> = read_dead_letters(runtime, &dead_letters, 3)
            .await
            .iter()
            .map(|m| property(m, "connect.errors.reason").unwrap_or_default())
            .collect();
        reasons.sort();
        assert_eq!(
            reasons,
            [
                "field \"d\": value 9007199254740993 is an integer a double cannot hold exactly (beyond 2^53)",
                "field \"f\": value 1e+39 does not fit float (32-bit)",
                "field \"s\": value 70000 does not fit smallint (-32768..32767)",
            ]
        );
    });
}

#[test]
fn each_topic_is_written_into_its_own_table() {
    with_broker(|_| async {
        let dir = tempfile::tempdir().unwrap();
        let standin = standin().await;
        let (people, orders) = (unique("people"), unique("orders"));
        let field = |name: &str, ty: &str| json!({"type": ty, "optional": true, "field": name});
        let person = |id: i64| {
            json!({"schema": {"type": "struct", "name": "people", "fields": [field("id", "int64"), field("name", "string")]},
                   "payload": {"id": id, "name": format!("person-{id}")}})
            .to_string()
        };
        let order = |id: i64| {
            json!({"schema": {"type": "struct", "name": "orders",
                              "fields": [field("order_id", "int64"), field("total", "double"), field("paid", "boolean")]},
                   "payload": {"order_id": id, "total": id as f64 * 1.1, "paid": id % 2 == 0}})
            .to_string()
        };
        produce_to(dir.path(), &people, &(1..=50).map(person).collect::<Vec<_>>(), 4);
        produce_to(dir.path(), &orders, &(1..=70).map(order).collect::<Vec<_>>(), 4);
        let worker = WorkerProcess::start(dir.path()).await;
        let mut connector = standin.sink(&people);
        connector["connect-topicname"] = json!(format!("{people},{orders}"));
        let (_, reply) = worker.post("/connectors/two-topics", &connector.to_string()).await;
        assert_eq!(reply["status"], 200, "{reply}");
        let people_rows = wait_for_rows(&standin, &people, 50, &worker).await;
        let order_rows = wait_for_rows(&standin, &orders, 70, &worker).await;
        assert_eq!(people_rows[0], json!([1, "person-1"]));
        assert_eq!(order_rows.len(), 70);
        assert!(order_rows.iter().all(|r| r.as_array().unwrap().len() == 3), "{:?}", order_rows[0]);
        let metrics = reqwest::get(format!("{}/metrics", worker.base)).await.unwrap().text().await.unwrap();
        for (table, rows) in [(&people, 50), (&orders, 70)] {
            let line = format!(
                "rmq_openmldb_table_rows_written_total{{connector=\"two-topics\",task=\"0\",table=\"{table}\"}} {rows}"
            );
            assert!(metrics.contains(&line), "{line} not in\n{metrics}");
        }
    });
}

#[test]
fn a_message_that_makes_a_plugin_trap_is_set_aside_and_every_other_row_is_written() {
    with_broker(|runtime| async move {
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        let components = Path::new(env!("RMQ_OPENMLDB_TEST_COMPONENTS"));
        std::fs::copy(components.join("hostile.wasm"), plugins.join("hostile.wasm")).unwrap();
        let standin = standin().await;
        let topic = unique("poison");
        let dead_letters = unique("poison_dlq");
        let api = rmq_openmldb::openmldb::ApiClient::new(&standin.addr.to_string(), Duration::from_secs(5)).unwrap();
        let ddl = format!("CREATE TABLE {topic} (cmd string, id bigint, INDEX(KEY=id))");
        assert!(api.execute("rocketmq_test", &ddl).await.unwrap().is_ok());
        let mut bodies: Vec<String> = (0..300).map(|id| json!({"cmd": "pass", "id": id}).to_string()).collect();
        bodies[77] = json!({"cmd": "panic", "id": 77}).to_string();
        bodies[201] = json!({"cmd": "trap", "id": 201}).to_string();
        produce_to(dir.path(), &topic, &bodies, 2);
        let worker = WorkerProcess::start_with(
            dir.path(),
            &format!("worker_id = \"test-worker\"\nplugins_dir = \"{}\"\n", plugins.display()),
        )
        .await;
        let mut connector = standin.sink(&topic);
        for (key, value) in [
            ("transforms", "hostile"),
            ("errors.tolerance", "all"),
            ("errors.deadletterqueue.topic.name", dead_letters.as_str()),
        ] {
            connector[key] = json!(value);
        }
        let (_, reply) = worker.post("/connectors/poison", &connector.to_string()).await;
        assert_eq!(reply["status"], 200, "{reply}");
        let rows = wait_for_rows(&standin, &topic, 298, &worker).await;
        let ids: Vec<i64> = rows.iter().map(|r| r[1].as_i64().unwrap()).collect();
        let mut expected: Vec<i64> = (0..300).filter(|i| *i != 77 && *i != 201).collect();
        let mut ids_sorted = ids.clone();
        ids_sorted.sort();
        expected.sort();
        assert_eq!(ids_sorted, expected, "every other row once");
        let mut letters = read_dead_letters(runtime, &dead_letters, 2).await;
        letters.sort_by_key(|m| property(m, "connect.errors.queue.offset"));
        assert_eq!(letters.len(), 2);
        for letter in &letters {
            assert_eq!(property(letter, "connect.errors.kind").as_deref(), Some("trap"));
            assert_eq!(property(letter, "connect.errors.stage").as_deref(), Some("transform hostile"));
        }
        let reasons: Vec<String> = letters.iter().map(|m| property(m, "connect.errors.reason").unwrap()).collect();
        assert!(
            reasons.iter().any(|r| r.contains("panic") && r.contains("hostile plugin was asked to panic")),
            "{reasons:?}"
        );
        assert!(reasons.iter().any(|r| r.contains("unreachable")), "{reasons:?}");
        let (_, view) = worker.get("/v1/connectors/poison").await;
        assert_eq!(view["state"], "RUNNING", "{view}");
        assert_eq!(view["tasks"][0]["restarts"], 0, "the task never failed: {view}");
    });
}

#[test]
fn without_error_tolerance_nothing_after_the_first_refused_message_of_a_queue_is_written() {
    with_broker(|_| async {
        let dir = tempfile::tempdir().unwrap();
        let standin = standin().await;
        let topic = unique("strict");
        let api = rmq_openmldb::openmldb::ApiClient::new(&standin.addr.to_string(), Duration::from_secs(5)).unwrap();
        let ddl = format!("CREATE TABLE {topic} (id bigint, at timestamp, INDEX(KEY=id, TS=at))");
        assert!(api.execute("rocketmq_test", &ddl).await.unwrap().is_ok());
        // Message 8 has no timestamp: the converter takes it (the column is
        // nullable), the writer's check refuses NULL in the index's TS
        // column before anything of the batch is sent.
        let bodies: Vec<String> = (1..=20)
            .map(|id| json!({"id": id, "at": if id == 8 { Value::Null } else { json!(1000 + id) }}).to_string())
            .collect();
        produce_to(dir.path(), &topic, &bodies, 1);
        let worker = WorkerProcess::start(dir.path()).await;
        let connector = standin.sink(&topic);
        let (_, reply) = worker.post("/connectors/strict", &connector.to_string()).await;
        assert_eq!(reply["status"], 200, "{reply}");
        worker.wait_for_tasks("strict", "FAILED").await;
        let rows = table_rows(&standin, &topic).await;
        assert_eq!(rows.iter().map(|r| r[0].as_i64().unwrap()).collect::<Vec<_>>(), (1..=7).collect::<Vec<_>>());
        let (_, view) = worker.get("/v1/connectors/strict").await;
        let trace = view["trace"].as_str().unwrap_or_default().to_string();
        assert!(trace.contains(&format!("message {topic}/0/7 cannot be stored")), "{trace}");
        assert!(trace.contains("writer openmldb (rejected): column \"at\": NULL in an index TS column"), "{trace}");
    });
}

#[test]
fn a_row_the_server_keeps_refusing_is_dead_lettered_saying_which_rows_of_its_message_were_stored() {
    with_broker(|runtime| async move {
        let dir = tempfile::tempdir().unwrap();
        let standin = standin().await;
        let topic = unique("refused");
        let dead_letters = unique("refused_dlq");
        let api = rmq_openmldb::openmldb::ApiClient::new(&standin.addr.to_string(), Duration::from_secs(5)).unwrap();
        let ddl = format!("CREATE TABLE {topic} (id bigint, tag string, INDEX(KEY=id))");
        assert!(api.execute("rocketmq_test", &ddl).await.unwrap().is_ok());
        reqwest::Client::new()
            .post(format!("http://{}/__standin/faults", standin.addr))
            .body(json!({"refuse_strings": ["poison"]}).to_string())
            .send()
            .await
            .unwrap();
        // One message, three rows; the tablet refuses the middle one for good.
        let bodies = vec![
            json!({"id": 1, "tag": "before"}).to_string(),
            json!([{"id": 2, "tag": "a"}, {"id": 3, "tag": "poison"}, {"id": 4, "tag": "c"}]).to_string(),
            json!({"id": 5, "tag": "after"}).to_string(),
        ];
        produce_to(dir.path(), &topic, &bodies, 1);
        let worker = WorkerProcess::start(dir.path()).await;
        // The refusal is the APIServer side's fault injection; the native
        // side's is in tests/openmldb_native.rs.
        let mut connector = standin.api_sink(&topic);
        for (key, value) in [
            ("errors.tolerance", "all"),
            ("errors.deadletterqueue.topic.name", dead_letters.as_str()),
            ("max.refused.retries", "2"),
            ("retry.backoff.ms", "10"),
        ] {
            connector[key] = json!(value);
        }
        let (_, reply) = worker.post("/connectors/refused", &connector.to_string()).await;
        assert_eq!(reply["status"], 200, "{reply}");
        let letters = read_dead_letters(runtime, &dead_letters, 1).await;
        assert_eq!(letters.len(), 1);
        let letter = &letters[0];
        assert_eq!(property(letter, "connect.errors.rows.stored").as_deref(), Some("0,2"));
        assert_eq!(property(letter, "connect.errors.rows.total").as_deref(), Some("3"));
        assert_eq!(property(letter, "connect.errors.stage").as_deref(), Some("writer openmldb"));
        let reason = property(letter, "connect.errors.reason").unwrap();
        assert!(reason.contains("refused the row 3 times") && reason.contains("ReturnCode[116]"), "{reason}");
        let rows = wait_for_rows(&standin, &topic, 4, &worker).await;
        assert_eq!(rows.iter().map(|r| r[0].as_i64().unwrap()).collect::<Vec<_>>(), [1, 2, 4, 5]);
    });
}

#[test]
fn a_stall_shows_at_once_as_degraded_with_its_reason_and_clears_when_the_server_is_back() {
    with_broker(|_| async {
        let dir = tempfile::tempdir().unwrap();
        let standin = standin().await;
        let topic = unique("stalled");
        let api = rmq_openmldb::openmldb::ApiClient::new(&standin.addr.to_string(), Duration::from_secs(5)).unwrap();
        assert!(
            api.execute("rocketmq_test", &format!("CREATE TABLE {topic} (id bigint, INDEX(KEY=id))"))
                .await
                .unwrap()
                .is_ok()
        );
        let worker = WorkerProcess::start(dir.path()).await;
        // The stall is the APIServer side's fault injection.
        let mut connector = standin.api_sink(&topic);
        connector["retry.backoff.max.ms"] = json!("300");
        let (_, reply) = worker.post("/connectors/stalled", &connector.to_string()).await;
        assert_eq!(reply["status"], 200, "{reply}");
        worker.wait_for_tasks("stalled", "RUNNING").await;
        let faults = format!("http://{}/__standin/faults", standin.addr);
        let client = reqwest::Client::new();
        client.post(&faults).body(json!({"fail_next_writes": 1000}).to_string()).send().await.unwrap();
        produce_to(dir.path(), &topic, &[json!({"id": 1}).to_string()], 1);
        worker.wait_for_tasks("stalled", "DEGRADED").await;
        let (_, view) = worker.get("/v1/connectors/stalled").await;
        assert_eq!(view["state"], "DEGRADED", "{view}");
        let trace = view["tasks"][0]["trace"].as_str().unwrap_or_default().to_string();
        assert!(trace.contains(&format!("writing to {topic}: attempt")) && trace.contains("failed"), "{trace}");
        let metrics = reqwest::get(format!("{}/metrics", worker.base)).await.unwrap().text().await.unwrap();
        let task = "connector=\"stalled\",task=\"0\"";
        assert!(metrics.contains(&format!("rmq_openmldb_task_degraded{{{task}}} 1")), "{metrics}");
        let retries = |text: &str| -> u64 {
            let prefix = format!("rmq_openmldb_writer_retries_total{{{task}}} ");
            text.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.parse().ok()).unwrap_or(0)
        };
        assert!(retries(&metrics) >= 1, "retries count while they happen:\n{metrics}");
        let stalled = |text: &str| -> f64 {
            let prefix = format!("rmq_openmldb_task_seconds_since_commit{{{task}}} ");
            text.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        };
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let later = reqwest::get(format!("{}/metrics", worker.base)).await.unwrap().text().await.unwrap();
        assert!(stalled(&later) >= 1.0, "the commit age grows while stalled:\n{later}");
        assert!(retries(&later) > retries(&metrics), "still retrying, and counted");
        assert!(worker.log_text().contains("not making progress, retrying"), "a warning is logged");
        client.post(&faults).body(json!({"clear": true}).to_string()).send().await.unwrap();
        wait_for_rows(&standin, &topic, 1, &worker).await;
        worker.wait_for_tasks("stalled", "RUNNING").await;
        let after = reqwest::get(format!("{}/metrics", worker.base)).await.unwrap().text().await.unwrap();
        assert!(after.contains(&format!("rmq_openmldb_task_degraded{{{task}}} 0")), "{after}");
        assert_eq!(stalled(&after), 0.0, "nothing waits once committed");
        let _ = NAMESRV;
    });
}
