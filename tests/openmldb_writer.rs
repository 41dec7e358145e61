//! The OpenMLDB writer against the APIServer stand-in: every type and its
//! boundaries, escaping, auto.create, catalog refresh, tablet faults,
//! outages and partial failures.

use openmldb_standin::{StandIn, StandInOptions};
use rmq_openmldb::openmldb::{ApiClient, ConnectorConfig, OpenMldbWriter, Poison, WriteReport, WriterConfig};
use rmq_openmldb::plugin::bindings::{Cell, Column, ColumnType, Date, Row};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

struct Fixture {
    standin: StandIn,
    client: ApiClient,
    http: reqwest::Client,
}

impl Fixture {
    async fn new() -> Fixture {
        let standin = StandIn::start("127.0.0.1:0".parse().unwrap(), StandInOptions::default()).await.unwrap();
        let client = ApiClient::new(&standin.addr.to_string(), Duration::from_secs(10)).unwrap();
        Fixture { standin, client, http: reqwest::Client::new() }
    }

    fn config(&self, extra: &[(&str, &str)]) -> WriterConfig {
        let mut config: ConnectorConfig = [
            ("connection.url".to_string(), format!("openmldb://{}/demo", self.standin.addr)),
            ("retry.backoff.ms".to_string(), "20".to_string()),
            ("retry.backoff.max.ms".to_string(), "200".to_string()),
        ]
        .into_iter()
        .collect();
        config.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        WriterConfig::from_connector(&config).unwrap()
    }

    async fn sql(&self, sql: &str) -> Value {
        self.client.execute("demo", sql).await.unwrap().body
    }

    async fn ok(&self, sql: &str) {
        let reply = self.sql(sql).await;
        assert_eq!(reply["code"], 0, "{sql}: {reply}");
    }

    async fn count(&self, table: &str) -> i64 {
        self.sql(&format!("SELECT COUNT(*) FROM {table}")).await["data"]["data"][0][0].as_i64().unwrap()
    }

    /// POST a JSON body to the stand-in and return its JSON reply.
    async fn post(&self, path: &str, body: Value) -> Value {
        let url = format!("http://{}{path}", self.standin.addr);
        self.http.post(url).json(&body).send().await.unwrap().json().await.unwrap()
    }

    /// Rows as the APIServer returns them (NaN and infinities as null).
    async fn select(&self, table: &str) -> Vec<Value> {
        let body = json!({"mode": "online", "sql": format!("SELECT * FROM {table}"), "write_nan_and_inf_null": true});
        self.post("/dbs/demo", body).await["data"]["data"].as_array().unwrap().clone()
    }

    async fn faults(&self, faults: Value) {
        assert_eq!(self.post("/__standin/faults", faults).await["code"], 0);
    }
}

fn row(cells: Vec<Cell>) -> Row {
    Row { source_index: 0, cells }
}

fn keyed(n: usize) -> Vec<Row> {
    (0..n)
        .map(|i| row(vec![Cell::String(format!("k{i}")), Cell::Bigint(i as i64), Cell::Timestamp(1_000 + i as i64)]))
        .collect()
}

async fn with_keyed_table(f: &Fixture) {
    f.ok("CREATE DATABASE demo").await;
    f.ok("CREATE TABLE kv (k string, v bigint, ts timestamp, INDEX(KEY=k, TS=ts))").await;
}

fn all(n: usize) -> Vec<usize> {
    (0..n).collect()
}

#[tokio::test]
async fn every_type_and_its_boundaries_round_trips() {
    let f = Fixture::new().await;
    f.ok("CREATE DATABASE demo").await;
    f.ok("CREATE TABLE t (b bool, s smallint, i int, l bigint, fl float, d double, str string, dt date, ts timestamp, INDEX(KEY=str, TS=ts))")
        .await;
    let writer = OpenMldbWriter::connect(f.config(&[]), "t", None).await.unwrap();
    let date = |year, month, day| Cell::Date(Date { year, month, day });
    let rows = vec![
        row(vec![
            Cell::Bool(true),
            Cell::Smallint(i16::MIN),
            Cell::Int(i32::MIN),
            Cell::Bigint(i64::MIN),
            Cell::Float(1.1),
            Cell::Double(3_000_000_000.0),
            Cell::String("min".into()),
            date(1900, 1, 1),
            Cell::Timestamp(0),
        ]),
        row(vec![
            Cell::Bool(false),
            Cell::Smallint(i16::MAX),
            Cell::Int(i32::MAX),
            Cell::Bigint(i64::MAX),
            Cell::Float(-2.5),
            Cell::Double(9_007_199_254_740_993.0),
            Cell::String("max".into()),
            date(9999, 12, 31),
            Cell::Timestamp(1_640_764_800_000),
        ]),
        row(vec![
            Cell::Null,
            Cell::Null,
            Cell::Null,
            Cell::Null,
            Cell::Null,
            Cell::Null,
            Cell::String("nulls".into()),
            Cell::Null,
            Cell::Timestamp(5),
        ]),
        row(vec![
            Cell::Bool(true),
            Cell::Smallint(0),
            Cell::Int(0),
            Cell::Bigint(0),
            Cell::Float(f32::INFINITY),
            Cell::Double(f64::NAN),
            Cell::String("nan".into()),
            date(2021, 2, 3),
            Cell::Timestamp(6),
        ]),
        row(vec![
            Cell::Bool(true),
            Cell::Smallint(0),
            Cell::Int(0),
            Cell::Bigint(0),
            Cell::Float(0.0),
            Cell::Double(0.0),
            Cell::String("negative".into()),
            date(2021, 2, 3),
            Cell::Timestamp(-1),
        ]),
    ];
    let report = writer.write(&rows, &CancellationToken::new()).await;
    assert_eq!(report.written, vec![0, 1, 2, 3]);
    assert_eq!(
        report.poison,
        vec![Poison::rejected(4, "column \"ts\": timestamp -1 is negative; OpenMLDB refuses negative timestamps")]
    );
    assert!(report.unresolved.is_empty());
    let mut stored = f.select("t").await;
    stored.sort_by_key(|r| r[8].as_i64());
    assert_eq!(
        stored[0],
        json!([true, -32768, -2147483648, i64::MIN, 1.100000023841858, 3000000000.0, "min", "1900-1-1", 0])
    );
    assert_eq!(stored[1], json!([null, null, null, null, null, null, "nulls", null, 5]));
    assert_eq!(stored[2], json!([true, 0, 0, 0, null, null, "nan", "2021-2-3", 6]), "NaN/Inf went through PUT");
    assert_eq!(
        stored[3],
        json!([false, 32767, 2147483647, i64::MAX, -2.5, 9007199254740992.0, "max", "9999-12-31", 1640764800000i64])
    );
}

#[tokio::test]
async fn strings_survive_quotes_backslashes_newlines_and_unicode() {
    let f = Fixture::new().await;
    with_keyed_table(&f).await;
    let writer = OpenMldbWriter::connect(f.config(&[]), "kv", None).await.unwrap();
    let nasty = [
        "it's",
        "back\\slash",
        "\"double\"",
        "line\nbreak\r\ttab",
        "☃ 中文 🎉",
        "ctl\u{1}\u{7f}",
        "'); DROP TABLE kv; --",
        "",
    ];
    let rows: Vec<Row> = nasty
        .iter()
        .enumerate()
        .map(|(i, s)| row(vec![Cell::String(s.to_string()), Cell::Bigint(i as i64), Cell::Timestamp(1)]))
        .collect();
    let report = writer.write(&rows, &CancellationToken::new()).await;
    assert_eq!(report.written, all(nasty.len()));
    let stored = f.select("kv").await;
    let mut got: Vec<(i64, String)> =
        stored.iter().map(|r| (r[1].as_i64().unwrap(), r[0].as_str().unwrap().to_string())).collect();
    got.sort();
    let expected: Vec<(i64, String)> = nasty.iter().enumerate().map(|(i, s)| (i as i64, s.to_string())).collect();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn auto_create_builds_the_table_with_the_configured_index() {
    let f = Fixture::new().await;
    let columns = vec![
        Column { name: "id".into(), type_: ColumnType::Bigint, nullable: false },
        Column { name: "name".into(), type_: ColumnType::String, nullable: true },
        Column { name: "begin_time".into(), type_: ColumnType::Timestamp, nullable: true },
    ];
    let missing_db =
        OpenMldbWriter::connect(f.config(&[("auto.create", "true")]), "employee", Some(&columns)).await.err().unwrap();
    assert!(
        missing_db
            .to_string()
            .contains("database demo does not exist; create it, or set \"openmldb.create.database\": \"true\""),
        "{missing_db}"
    );
    let config = f.config(&[
        ("auto.create", "true"),
        ("openmldb.create.database", "true"),
        ("openmldb.index.key", "id"),
        ("openmldb.index.ts", "begin_time"),
        ("openmldb.index.ttl", "30d"),
        ("openmldb.index.ttl.type", "absolute"),
        ("openmldb.partition.num", "2"),
        ("openmldb.replica.num", "1"),
    ]);
    let writer = OpenMldbWriter::connect(config, "employee", Some(&columns)).await.unwrap();
    assert_eq!(writer.schema().columns, columns);
    let table = f.client.get_table("demo", "employee").await.unwrap().body["table"].clone();
    assert_eq!(table["partition_num"], 2);
    assert_eq!(table["replica_num"], 1);
    assert_eq!(table["column_key"][0]["col_name"], json!(["id"]));
    assert_eq!(table["column_key"][0]["ts_name"], "begin_time");
    assert_eq!(table["column_key"][0]["ttl"], json!({"ttl_type": "absolute", "abs_ttl": 43200}));
    assert_eq!(table["column_desc"][0], json!({"name": "id", "data_type": "kBigInt", "not_null": true}));

    // Without an index key OpenMLDB's default index is used (and warned about).
    let plain = OpenMldbWriter::connect(f.config(&[("auto.create", "true")]), "plain", Some(&columns)).await.unwrap();
    assert_eq!(plain.schema().columns.len(), 3);
    let default = f.client.get_table("demo", "plain").await.unwrap().body["table"]["column_key"][0].clone();
    assert_eq!((default["col_name"].clone(), default["ttl"].clone()), (json!(["id"]), json!({})));

    let no_create = OpenMldbWriter::connect(f.config(&[]), "absent", Some(&columns)).await.err().unwrap();
    assert!(
        no_create.to_string().contains("table demo.absent does not exist; create it, or set \"auto.create\": \"true\""),
        "{no_create}"
    );
    let bad_index = OpenMldbWriter::connect(
        f.config(&[("auto.create", "true"), ("openmldb.index.key", "salary")]),
        "x",
        Some(&columns),
    )
    .await;
    assert!(
        bad_index
            .err()
            .unwrap()
            .to_string()
            .contains("openmldb.index.key: column \"salary\" is not in the record schema")
    );
}

#[tokio::test]
async fn a_table_made_by_another_client_is_found_after_one_refresh() {
    let f = Fixture::new().await;
    f.ok("CREATE DATABASE demo").await;
    let external = f
        .post(
            "/__standin/external-sql",
            json!({"db": "demo", "sql": "CREATE TABLE late (k string, v bigint, ts timestamp)"}),
        )
        .await;
    assert_eq!(external["code"], 0);
    let writer = OpenMldbWriter::connect(f.config(&[]), "late", None).await.unwrap();
    assert_eq!(writer.schema().columns.len(), 3);
}

#[tokio::test]
async fn tablet_errors_are_retried_and_or_ignore_adds_no_duplicates() {
    let f = Fixture::new().await;
    with_keyed_table(&f).await;
    let writer =
        OpenMldbWriter::connect(f.config(&[("insert.mode", "INSERT_OR_IGNORE"), ("batch.size", "20")]), "kv", None)
            .await
            .unwrap();
    // Two statements fail whole (2001, follower), then one lists 12 failures of which only 10 are named.
    f.faults(json!({"fail_next_writes": 3})).await;
    let report = writer.write(&keyed(100), &CancellationToken::new()).await;
    assert_eq!(report.written, all(100));
    assert!(report.retries >= 3, "{report:?}");
    assert_eq!(f.count("kv").await, 100, "no duplicate rows");
    // The same batch redelivered (at-least-once) adds nothing.
    let again = writer.write(&keyed(100), &CancellationToken::new()).await;
    assert_eq!(again.written, all(100));
    assert_eq!(f.count("kv").await, 100);
}

#[tokio::test]
async fn only_the_rows_the_server_lists_are_retried() {
    let f = Fixture::new().await;
    with_keyed_table(&f).await;
    let writer = OpenMldbWriter::connect(f.config(&[]), "kv", None).await.unwrap();
    f.faults(json!({"fail_rows": [1, 3, 7]})).await;
    let report = writer.write(&keyed(10), &CancellationToken::new()).await;
    assert_eq!(report.written, all(10));
    assert_eq!(report.retries, 1);
    assert_eq!(f.count("kv").await, 10, "append mode, yet no duplicates: only failed rows were re-sent");
}

#[tokio::test]
async fn an_outage_is_waited_out_and_nothing_is_lost() {
    let f = Fixture::new().await;
    with_keyed_table(&f).await;
    let writer =
        OpenMldbWriter::connect(f.config(&[("insert.mode", "INSERT_OR_IGNORE"), ("batch.size", "50")]), "kv", None)
            .await
            .unwrap();
    f.faults(json!({"refuse_connections_ms": 1500})).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    let report = writer.write(&keyed(500), &CancellationToken::new()).await;
    assert!(started.elapsed() >= Duration::from_millis(1000), "the writer waited for the APIServer");
    assert_eq!(report.written, all(500));
    assert!(report.last_error.as_deref().unwrap_or("").contains("unreachable"), "{report:?}");
    assert_eq!(f.count("kv").await, 500);
}

#[tokio::test]
async fn bad_rows_come_back_as_poison_and_the_rest_is_stored() {
    let f = Fixture::new().await;
    f.ok("CREATE DATABASE demo").await;
    f.ok("CREATE TABLE kv (k string, v string, ts timestamp NOT NULL, INDEX(KEY=k, TS=ts))").await;
    let writer = OpenMldbWriter::connect(f.config(&[]), "kv", None).await.unwrap();
    // The table changes under the writer: v becomes a date, so text that
    // is not a date is refused by the server, not by the writer.
    f.ok("DROP TABLE kv").await;
    f.ok("CREATE TABLE kv (k string, v date, ts timestamp NOT NULL, INDEX(KEY=k, TS=ts))").await;
    let rows = vec![
        row(vec![Cell::String("a".into()), Cell::String("2021-01-01".into()), Cell::Timestamp(1)]),
        row(vec![Cell::String("b".into()), Cell::String("not a date".into()), Cell::Timestamp(2)]),
        row(vec![Cell::String("c".into()), Cell::Null, Cell::Null]),
        row(vec![Cell::String("d".into()), Cell::String("2021-13-01".into()), Cell::Timestamp(4)]),
        row(vec![Cell::String("e".into()), Cell::Null, Cell::Timestamp(5)]),
    ];
    let report = writer.write(&rows, &CancellationToken::new()).await;
    assert_eq!(report.written, vec![0, 4]);
    let poison: Vec<(usize, &str)> = report.poison.iter().map(|p| (p.index, p.reason.as_str())).collect();
    assert_eq!(poison[0].0, 1);
    assert!(poison[0].1.starts_with("Fail to get insert info--fail to parse row[1]"), "{poison:?}");
    assert_eq!(poison[1], (2, "column \"ts\" (timestamp NOT NULL) got NULL"));
    assert_eq!(poison[2].0, 3);
    assert!(poison[2].1.starts_with("Fail to get insert info--fail to parse row["), "{poison:?}");
    assert!(report.unresolved.is_empty());
    assert_eq!(f.count("kv").await, 2);
}

#[tokio::test]
async fn giving_up_leaves_rows_unresolved_not_written() {
    let f = Fixture::new().await;
    with_keyed_table(&f).await;
    let writer = OpenMldbWriter::connect(f.config(&[("max.retries", "2")]), "kv", None).await.unwrap();
    f.faults(json!({"fail_next_writes": 10})).await;
    let report: WriteReport = writer.write(&keyed(5), &CancellationToken::new()).await;
    assert_eq!(report.unresolved, all(5));
    assert!(report.written.is_empty());
    assert_eq!(report.last_error.as_deref(), Some("insert values 5 failed, failed rows peek: 0,1,2,3,4"));
    assert_eq!(f.count("kv").await, 0);
    // Shutdown stops retrying at once.
    let cancel = CancellationToken::new();
    cancel.cancel();
    let writer = OpenMldbWriter::connect(f.config(&[]), "kv", None).await.unwrap();
    let report = writer.write(&keyed(3), &cancel).await;
    assert_eq!(report.unresolved, all(3));
}
