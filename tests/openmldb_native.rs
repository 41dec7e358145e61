//! The native OpenMLDB writer (`jdbc:openmldb:///DB?zk=…&zkPath=…`): a
//! real ZooKeeper, the stand-in's nameserver and tablets over baidu_std,
//! rows read back from the catalog the stand-in's APIServer side serves.

use openmldb_client::hash::partition_of;
use openmldb_standin::store::Value as Stored;
use openmldb_standin::{NativeSide, StandIn, StandInOptions, ZooKeeper};
use rmq_openmldb::openmldb::{ApiClient, ConnectorConfig, OpenMldbWriter, WriterConfig};
use rmq_openmldb::plugin::bindings::{Cell, Column, ColumnType, Date, Row};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

struct Fixture {
    standin: StandIn,
    native: NativeSide,
    _zookeeper: ZooKeeper,
}

impl Fixture {
    async fn new() -> Fixture {
        let zookeeper = ZooKeeper::start().unwrap();
        let standin = StandIn::start("127.0.0.1:0".parse().unwrap(), StandInOptions::default()).await.unwrap();
        let native = NativeSide::start(standin.state.clone(), &zookeeper.hosts(), "/openmldb_cluster").await.unwrap();
        Fixture { standin, native, _zookeeper: zookeeper }
    }

    fn config(&self, extra: &[(&str, &str)]) -> WriterConfig {
        let mut config: ConnectorConfig = [
            ("connection.url".to_string(), self.native.jdbc_url("demo")),
            ("retry.backoff.ms".to_string(), "20".to_string()),
            ("retry.backoff.max.ms".to_string(), "200".to_string()),
        ]
        .into_iter()
        .collect();
        config.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        WriterConfig::from_connector(&config).unwrap()
    }

    /// SQL through the stand-in's APIServer side (another client's DDL).
    async fn sql(&self, sql: &str) {
        let api = ApiClient::new(&self.standin.addr.to_string(), Duration::from_secs(5)).unwrap();
        let reply = api.execute("demo", sql).await.unwrap();
        assert!(reply.is_ok(), "{sql}: {} {}", reply.code, reply.msg);
        self.native.settle().await;
    }

    fn stored(&self, table: &str) -> Vec<Vec<Stored>> {
        self.standin.state.catalog.lock().unwrap().table("demo", table).unwrap().rows.clone()
    }
}

fn row(cells: Vec<Cell>) -> Row {
    Row { source_index: 0, cells }
}

fn columns() -> Vec<Column> {
    [
        ("k", ColumnType::String, false),
        ("b", ColumnType::Bool, true),
        ("s", ColumnType::Smallint, true),
        ("i", ColumnType::Int, true),
        ("l", ColumnType::Bigint, true),
        ("f", ColumnType::Float, true),
        ("d", ColumnType::Double, true),
        ("day", ColumnType::Date, true),
        ("ts", ColumnType::Timestamp, false),
    ]
    .iter()
    .map(|(n, t, nullable)| Column { name: n.to_string(), type_: *t, nullable: *nullable })
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_native_writer_creates_database_and_table_through_the_nameserver_and_stores_every_value_exactly() {
    let f = Fixture::new().await;
    let config = f.config(&[
        ("auto.create", "true"),
        ("openmldb.create.database", "true"),
        ("openmldb.index.key", "k"),
        ("openmldb.index.ts", "ts"),
        ("openmldb.index.ttl", "30d"),
        ("openmldb.partition.num", "4"),
    ]);
    let writer = OpenMldbWriter::connect(config, "every_type", Some(&columns())).await.unwrap();
    assert_eq!(writer.schema().columns, columns());
    {
        let catalog = f.standin.state.catalog.lock().unwrap();
        let table = catalog.table("demo", "every_type").unwrap();
        assert_eq!((table.partition_num, table.indexes.len()), (4, 1));
        assert_eq!((table.indexes[0].keys.clone(), table.indexes[0].ts), (vec![0], Some(8)));
    }
    let rows = vec![
        row(vec![
            Cell::String("a|b".into()),
            Cell::Bool(true),
            Cell::Smallint(i16::MIN),
            Cell::Int(i32::MAX),
            Cell::Bigint(i64::MIN),
            Cell::Float(f32::MIN_POSITIVE),
            Cell::Double(12.100000000000001),
            Cell::Date(Date { year: 1900, month: 1, day: 1 }),
            Cell::Timestamp(0),
        ]),
        row(vec![
            Cell::String(String::new()),
            Cell::Null,
            Cell::Null,
            Cell::Null,
            Cell::Null,
            Cell::Float(f32::NAN),
            Cell::Double(-0.0),
            Cell::Null,
            Cell::Timestamp(253_402_300_799_999),
        ]),
        row(vec![
            Cell::String("é".repeat(40_000)),
            Cell::Bool(false),
            Cell::Smallint(i16::MAX),
            Cell::Int(i32::MIN),
            Cell::Bigint(i64::MAX),
            Cell::Float(f32::INFINITY),
            Cell::Double(5e-324),
            Cell::Date(Date { year: 9999, month: 12, day: 31 }),
            Cell::Timestamp(1_700_000_000_123),
        ]),
    ];
    let report = writer.write(&rows, &CancellationToken::new()).await;
    assert_eq!((report.written, report.poison), (vec![0, 1, 2], vec![]));
    let stored = f.stored("every_type");
    assert_eq!(stored.len(), 3);
    let find = |key: &str| stored.iter().find(|r| r[0] == Stored::Str(key.into())).unwrap().clone();
    let first = find("a|b");
    assert_eq!(
        format!("{:?}", &first[1..]),
        format!(
            "{:?}",
            [
                Stored::Bool(true),
                Stored::SmallInt(i16::MIN),
                Stored::Int(i32::MAX),
                Stored::BigInt(i64::MIN),
                Stored::Float(f32::MIN_POSITIVE),
                Stored::Double(12.100000000000001),
                Stored::Date(1900, 1, 1),
                Stored::Timestamp(0),
            ]
        )
    );
    let second = find("");
    let (Stored::Float(nan), Stored::Double(zero)) = (&second[5], &second[6]) else { panic!("{second:?}") };
    assert_eq!((nan.to_bits(), zero.to_bits()), (f32::NAN.to_bits(), (-0.0f64).to_bits()), "NaN and -0.0 bit for bit");
    assert_eq!(second[1..5], [Stored::Null, Stored::Null, Stored::Null, Stored::Null]);
    assert_eq!(find(&"é".repeat(40_000))[6], Stored::Double(5e-324));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_is_refused_before_sending_tablet_refusals_are_bounded_and_a_moving_leader_is_waited_for() {
    let f = Fixture::new().await;
    f.sql("CREATE DATABASE demo").await;
    f.sql("CREATE TABLE kv (k string, v bigint, ts timestamp, INDEX(KEY=k, TS=ts))").await;
    // Made through the APIServer side: the writer finds it in ZooKeeper.
    let writer = OpenMldbWriter::connect(f.config(&[("max.refused.retries", "2")]), "kv", None).await.unwrap();
    let tid = f.standin.state.catalog.lock().unwrap().table("demo", "kv").unwrap().tid;
    let keyed = |k: &str, ts: Cell| row(vec![Cell::String(k.into()), Cell::Bigint(1), ts]);
    let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    let refusing = partition_of(&keys[0], 8);
    let moving = (0..8).find(|p| *p != refusing && keys.iter().any(|k| partition_of(k, 8) == *p)).unwrap();
    {
        let mut faults = f.native.faults.lock().unwrap();
        faults.fail_puts.insert((tid, refusing), (116, format!("{tid}.{refusing}: refused by fault injection"), 1000));
        faults.fail_puts.insert((tid, moving), (103, "table is follower".into(), 3));
    }
    let mut rows: Vec<Row> = keys.iter().enumerate().map(|(i, k)| keyed(k, Cell::Timestamp(1000 + i as i64))).collect();
    rows.push(keyed("neg", Cell::Timestamp(-1)));
    rows.push(keyed("null-ts", Cell::Null));
    let report = writer.write(&rows, &CancellationToken::new()).await;

    let refused: Vec<usize> = (0..keys.len()).filter(|i| partition_of(&keys[*i], 8) == refusing).collect();
    let mut poisoned: Vec<usize> = report.poison.iter().map(|p| p.index).collect();
    poisoned.sort();
    let mut expected_poison = refused.clone();
    expected_poison.extend([40, 41]);
    assert_eq!(poisoned, expected_poison, "{report:?}");
    for p in &report.poison {
        if p.index < 40 {
            assert!(p.reason.contains("refused the row 3 times") && p.reason.contains("code 116"), "{}", p.reason);
        }
    }
    let negative = report.poison.iter().find(|p| p.index == 40).unwrap();
    assert!(negative.reason.contains("ts") && negative.reason.contains("-1"), "{}", negative.reason);
    assert_eq!(report.written.len(), 40 - refused.len());
    assert!(report.retries > 0 && report.unresolved.is_empty(), "{report:?}");
    assert_eq!(f.stored("kv").len(), 40 - refused.len(), "every row of the moving partition arrived once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_or_ignore_adds_no_duplicate_when_the_same_rows_are_written_again() {
    let f = Fixture::new().await;
    f.sql("CREATE DATABASE demo").await;
    f.sql("CREATE TABLE kv (k string, v bigint, ts timestamp, INDEX(KEY=k, TS=ts), INDEX(KEY=v, TS=ts))").await;
    let writer = OpenMldbWriter::connect(f.config(&[("insert.mode", "INSERT_OR_IGNORE")]), "kv", None).await.unwrap();
    let rows: Vec<Row> = (0..500)
        .map(|i| row(vec![Cell::String(format!("k{i}")), Cell::Bigint(i % 7), Cell::Timestamp(1000 + i)]))
        .collect();
    for _ in 0..2 {
        let report = writer.write(&rows, &CancellationToken::new()).await;
        assert_eq!(report.written.len(), 500, "{report:?}");
    }
    assert_eq!(f.stored("kv").len(), 500);
    let appending = OpenMldbWriter::connect(f.config(&[]), "kv", None).await.unwrap();
    assert_eq!(appending.write(&rows[..10], &CancellationToken::new()).await.written.len(), 10);
    assert_eq!(f.stored("kv").len(), 510, "plain INSERT appends, as OpenMLDB does");
}
