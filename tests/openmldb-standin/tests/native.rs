//! The stand-in's native side, judged by the official OpenMLDB SDK (PyPI
//! `openmldb`, the C++ SQLClusterRouter under the Java and Python clients),
//! and our native client against it: a real ZooKeeper, the nameserver and
//! tablets over baidu_std, rows read back from the same catalog the
//! APIServer side serves.

use openmldb_client::proto::{ColumnDesc, ColumnKey, PutRequest, TableInfo};
use openmldb_client::{Client, ClientOptions, DataType, Date, Value, WriteOptions};
use openmldb_standin::{NativeSide, StandIn, StandInOptions, ZooKeeper};
use prost::Message;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

struct Cluster {
    standin: StandIn,
    native: NativeSide,
    _zookeeper: ZooKeeper,
}

async fn cluster(tablets: u32) -> Cluster {
    let zookeeper = ZooKeeper::start().expect("ZooKeeper starts (scripts/zookeeper.sh install)");
    let standin =
        StandIn::start("127.0.0.1:0".parse().unwrap(), StandInOptions { tablets, ..Default::default() }).await.unwrap();
    let native = NativeSide::start(standin.state.clone(), &zookeeper.hosts(), "/openmldb_cluster").await.unwrap();
    Cluster { standin, native, _zookeeper: zookeeper }
}

async fn client(cluster: &Cluster) -> Client {
    Client::connect(ClientOptions::new(cluster.native.zk.clone(), cluster.native.root.clone())).await.unwrap()
}

const COLUMNS: [(&str, DataType, bool); 10] = [
    ("id", DataType::BigInt, true),
    ("name", DataType::String, false),
    ("flag", DataType::Bool, false),
    ("small", DataType::SmallInt, false),
    ("n", DataType::Int, false),
    ("f", DataType::Float, false),
    ("d", DataType::Double, false),
    ("day", DataType::Date, false),
    ("ts", DataType::Timestamp, true),
    ("note", DataType::String, false),
];

/// Eight partitions, two indexes: (name; TS ts) and (id, small).
fn table_info(db: &str, name: &str) -> TableInfo {
    TableInfo {
        name: Some(name.into()),
        db: Some(db.into()),
        partition_num: Some(8),
        replica_num: Some(1),
        column_desc: COLUMNS
            .iter()
            .map(|(n, t, not_null)| ColumnDesc {
                name: n.to_string(),
                data_type: Some(t.to_proto()),
                not_null: Some(*not_null),
                ..Default::default()
            })
            .collect(),
        column_key: vec![
            ColumnKey { col_name: vec!["name".into()], ts_name: Some("ts".into()), ..Default::default() },
            ColumnKey { col_name: vec!["id".into(), "small".into()], ..Default::default() },
        ],
        ..Default::default()
    }
}

/// Rows over every type: NULLs, empty and long strings (offset widths 1, 2
/// and 3), extremes, -0.0, a double that needs 17 digits.
fn rows() -> Vec<Vec<Value>> {
    let mut rows = Vec::new();
    for i in 0..24i64 {
        let name = match i % 6 {
            0 => Value::Null,
            1 => Value::String(String::new()),
            2 => Value::String(format!("k|{i}")),
            _ => Value::String(format!("name-{i}")),
        };
        let note = match i {
            5 => Value::String("n".repeat(300)),
            6 => Value::String("m".repeat(70_000)),
            7 => Value::Null,
            _ => Value::String(format!("note {i} é")),
        };
        rows.push(vec![
            Value::BigInt(if i == 1 { i64::MIN } else { i * 1_000_003 }),
            name,
            if i % 4 == 3 { Value::Null } else { Value::Bool(i % 2 == 0) },
            Value::SmallInt(if i == 2 { i16::MIN } else { (i as i16) * -7 }),
            Value::Int(if i == 3 { i32::MAX } else { i as i32 }),
            Value::Float([1.5f32, -0.25, 3.0e38, -0.0][(i % 4) as usize]),
            Value::Double([12.100000000000001, -0.0, 5e-324, 1.0 / 3.0][(i % 4) as usize]),
            Value::Date(Date { year: 1900 + (i as i32) * 4, month: (i % 12 + 1) as u8, day: (i % 28 + 1) as u8 }),
            Value::Timestamp(if i == 0 { 0 } else { 1_590_738_994_000 + i }),
            note,
        ]);
    }
    rows
}

fn stored_rows(standin: &StandIn, db: &str, table: &str) -> Vec<String> {
    let catalog = standin.state.catalog.lock().unwrap();
    catalog.table(db, table).unwrap().rows.iter().map(|r| format!("{r:?}")).collect()
}

fn expected(rows: &[Vec<Value>]) -> Vec<String> {
    use openmldb_standin::store::Value as S;
    rows.iter()
        .map(|row| {
            let converted: Vec<S> = row
                .iter()
                .map(|v| match v.clone() {
                    Value::Null => S::Null,
                    Value::Bool(b) => S::Bool(b),
                    Value::SmallInt(x) => S::SmallInt(x),
                    Value::Int(x) => S::Int(x),
                    Value::BigInt(x) => S::BigInt(x),
                    Value::Float(x) => S::Float(x),
                    Value::Double(x) => S::Double(x),
                    Value::Date(d) => S::Date(d.year, d.month.into(), d.day.into()),
                    Value::Timestamp(x) => S::Timestamp(x),
                    Value::String(s) => S::Str(s),
                })
                .collect();
            format!("{converted:?}")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_creates_a_table_through_the_nameserver_and_every_value_reads_back_exactly() {
    let cluster = cluster(3).await;
    let client = client(&cluster).await;
    client.create_database("native_db").await.unwrap();
    let table = client.create_table(table_info("native_db", "every_type"), Duration::from_secs(10)).await.unwrap();
    assert_eq!(table.leaders.len(), 8);
    assert_eq!(table.indexes.len(), 2);

    let rows = rows();
    let results = client.put_rows("native_db", "every_type", &rows, WriteOptions::default()).await;
    for (i, result) in results.iter().enumerate() {
        assert!(result.is_ok(), "row {i}: {result:?}");
    }
    let mut stored = stored_rows(&cluster.standin, "native_db", "every_type");
    let mut want = expected(&rows);
    stored.sort();
    want.sort();
    assert_eq!(stored, want);

    // The same rows again with put_if_absent: nothing is added.
    let options = WriteOptions { put_if_absent: true, memory_limit: 0 };
    let again = client.put_rows("native_db", "every_type", &rows, options).await;
    assert!(again.iter().all(Result::is_ok));
    assert_eq!(stored_rows(&cluster.standin, "native_db", "every_type").len(), rows.len());

    // Content the official client would narrow or store wrongly is refused before sending.
    let mut bad = rows[4].clone();
    bad[8] = Value::Timestamp(-5);
    let refused = client.put("native_db", "every_type", &bad, options).await.unwrap_err();
    assert_eq!(
        refused.to_string(),
        "refused before sending: column ts: timestamp -5 is negative; OpenMLDB refuses negative timestamps"
    );
    assert!(!refused.is_retryable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_leader_and_a_dropped_tablet_lose_nothing_and_with_put_if_absent_duplicate_nothing() {
    let cluster = cluster(3).await;
    let client = Arc::new(client(&cluster).await);
    client.create_database("failover").await.unwrap();
    let table = client.create_table(table_info("failover", "t"), Duration::from_secs(10)).await.unwrap();
    let tid = table.tid;
    let options = WriteOptions { put_if_absent: true, memory_limit: 0 };
    let all: Vec<Vec<Value>> = (0..600)
        .map(|i| {
            let mut row = rows()[(i % 24) as usize].clone();
            row[0] = Value::BigInt(i);
            row[6] = Value::Double(i as f64 * 1.1);
            row
        })
        .collect();

    // Writes rows until every one is stored, retrying what the client says may pass later.
    let write_all = |rows: Vec<Vec<Value>>| {
        let client = client.clone();
        async move {
            let mut pending = rows;
            for _round in 0..200 {
                let results = client.put_rows("failover", "t", &pending, options).await;
                let mut again = Vec::new();
                for (row, result) in pending.into_iter().zip(results) {
                    match result {
                        Ok(()) => {}
                        Err(e) if e.is_retryable() => again.push(row),
                        Err(e) => panic!("row refused: {e}"),
                    }
                }
                if again.is_empty() {
                    return;
                }
                pending = again;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("rows still pending after 200 rounds: {}", pending.len());
        }
    };
    write_all(all[..200].to_vec()).await;
    // Every leader moves; the client's view is stale until ZooKeeper says so.
    {
        let mut faults = cluster.native.faults.lock().unwrap();
        for pid in 0..8 {
            faults.leaders.insert((tid, pid), ((pid as usize) + 1) % 3);
        }
    }
    write_all(all[200..400].to_vec()).await;
    // A tablet goes away: its connections close, its partitions move on.
    cluster.native.faults.lock().unwrap().dropped.insert(1);
    write_all(all[400..].to_vec()).await;
    let refused = cluster.native.faults.lock().unwrap().refused_puts.clone();
    assert!(refused.get(&103).copied().unwrap_or(0) > 0, "the moved leaders answered 103 at least once: {refused:?}");

    let mut stored = stored_rows(&cluster.standin, "failover", "t");
    let mut want = expected(&all);
    stored.sort();
    want.sort();
    assert_eq!(stored.len(), want.len(), "every row once");
    assert_eq!(stored, want);
}

/// One statement for the official SDK: SQL text, or an INSERT with `?`
/// holes and its values by column name (the SDK's insert-row builder, the
/// path the Java client's PreparedStatement takes).
fn sql(statement: String) -> serde_json::Value {
    serde_json::json!({ "sql": statement })
}

fn with_holes(row: &[Value]) -> serde_json::Value {
    use serde_json::json;
    let holes = vec!["?"; row.len()].join(", ");
    let params: serde_json::Map<String, serde_json::Value> = COLUMNS
        .iter()
        .zip(row)
        .map(|((name, _, _), value)| {
            let value = match value {
                Value::Null => serde_json::Value::Null,
                Value::Bool(b) => json!(b),
                Value::SmallInt(x) => json!(x),
                Value::Int(x) => json!(x),
                Value::BigInt(x) => json!(x),
                Value::Timestamp(x) => json!(x),
                Value::Float(x) => json!(f64::from(*x)),
                Value::Double(x) => json!(x),
                Value::Date(d) => json!(d.to_string()),
                Value::String(s) => json!(s),
            };
            (name.to_string(), value)
        })
        .collect();
    json!({ "sql": format!("INSERT INTO t VALUES ({holes})"), "params": params })
}

/// The official SDK's Python binding, installed by `scripts/test.sh`
/// (`ensure_openmldb_sdk`), runs statements against the stand-in's native side.
fn official_sdk(native: &NativeSide, db: &str, statements: &[serde_json::Value]) {
    let python = std::env::var("OPENMLDB_SDK_PYTHON").unwrap_or_else(|_| {
        format!("{}/.cache/rmq-openmldb/toolchains/openmldb-sdk/bin/python", std::env::var("HOME").unwrap())
    });
    assert!(
        std::path::Path::new(&python).exists(),
        "the official OpenMLDB SDK is not installed at {python}: run scripts/test.sh (ensure_openmldb_sdk)"
    );
    let script = r#"
import sys, json, openmldb.dbapi
zk, path, db = sys.argv[1:4]
connection = openmldb.dbapi.connect(database=db, zk=zk, zkPath=path)
cursor = connection.cursor()
for line in sys.stdin:
    if line.strip():
        step = json.loads(line)
        if "params" in step:
            cursor.execute(step["sql"], step["params"])
        else:
            cursor.execute(step["sql"])
print("sdk done")
"#;
    let mut child = Command::new(python)
        .args(["-c", script, &native.zk, &native.root, db])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let lines: Vec<String> = statements.iter().map(|s| s.to_string()).collect();
    child.stdin.take().unwrap().write_all(lines.join("\n").as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("sdk done"),
        "the official SDK failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

fn sql_literal(value: &Value) -> String {
    match value {
        Value::Null => "NULL".into(),
        Value::String(s) => format!("'{s}'"),
        Value::Date(d) => format!("'{d}'"),
        Value::Float(f) => format!("{f:?}"),
        Value::Double(d) => format!("{d:?}"),
        other => other.to_string(),
    }
}

/// A Put's bytes without its `time` (field 2, the client's clock), which
/// leads every Put the SDK sends.
fn without_time(put: &[u8]) -> Vec<u8> {
    assert_eq!(put[0], 0x10, "time is the first field on the wire");
    let mut at = 1;
    while put[at] & 0x80 != 0 {
        at += 1;
    }
    put[at + 1..].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_puts_our_client_sends_are_byte_for_byte_the_official_sdks() {
    let cluster = cluster(3).await;
    let client = client(&cluster).await;
    client.create_database("judge").await.unwrap();
    client.create_table(table_info("judge", "t"), Duration::from_secs(10)).await.unwrap();

    // Every row of `rows()`: as SQL text where the SDK's parser gives
    // exactly these values, through the insert-row builder (`?` holes) for
    // the i64::MIN and i16::MIN extremes (no SQL literal parses to them) and
    // the 70,000-byte string (3-byte offsets). The builder sizes a row by
    // `len()` of a Python str, characters not bytes, so those rows' strings
    // are kept ASCII: the official client cannot send them otherwise.
    let through_builder = |row: &[Value]| {
        matches!(row[0], Value::BigInt(i64::MIN))
            || matches!(row[3], Value::SmallInt(i16::MIN))
            || matches!(&row[9], Value::String(s) if s.len() > 1000)
    };
    let rows: Vec<Vec<Value>> = rows()
        .into_iter()
        .map(|mut row| {
            if through_builder(&row) {
                for cell in row.iter_mut() {
                    if let Value::String(s) = cell {
                        *s = s.replace('é', "e");
                    }
                }
            }
            row
        })
        .collect();
    let mut statements: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| match through_builder(row) {
            true => with_holes(row),
            false => {
                sql(format!("INSERT INTO t VALUES ({})", row.iter().map(sql_literal).collect::<Vec<_>>().join(", ")))
            }
        })
        .collect();
    // And INSERT OR IGNORE of a row already there: put_if_absent on the
    // wire, nothing stored.
    let ignored = &rows[3];
    statements.push(sql(format!(
        "INSERT OR IGNORE INTO t VALUES ({})",
        ignored.iter().map(sql_literal).collect::<Vec<_>>().join(", ")
    )));
    cluster.native.faults.lock().unwrap().record = true;
    official_sdk(&cluster.native, "judge", &statements);
    let sdk_puts: Vec<Vec<u8>> = std::mem::take(&mut cluster.native.faults.lock().unwrap().puts);
    assert!(sdk_puts.len() > rows.len(), "the SDK sent {} Puts for {} rows", sdk_puts.len(), rows.len());

    for row in &rows {
        client.put("judge", "t", row, WriteOptions::default()).await.unwrap();
    }
    let ignoring = WriteOptions { put_if_absent: true, ..Default::default() };
    client.put("judge", "t", ignored, ignoring).await.unwrap();
    let our_puts: Vec<Vec<u8>> = std::mem::take(&mut cluster.native.faults.lock().unwrap().puts);
    assert_eq!(our_puts.len(), sdk_puts.len(), "one Put per distinct partition of each row, as the SDK");
    // Our client sends a row's Puts to its partitions' tablets at once, so
    // they arrive in another order: the same Puts, compared as sorted lists.
    let sorted = |puts: &[Vec<u8>]| {
        let mut puts = puts.to_vec();
        puts.sort_by_key(|p| without_time(p));
        puts
    };
    let (our_puts, sdk_puts) = (sorted(&our_puts), sorted(&sdk_puts));
    for (i, (ours, theirs)) in our_puts.iter().zip(&sdk_puts).enumerate() {
        assert_eq!(
            without_time(ours),
            without_time(theirs),
            "Put {i} differs:\n ours {:?}\n sdk  {:?}",
            PutRequest::decode(ours.as_slice()).unwrap(),
            PutRequest::decode(theirs.as_slice()).unwrap()
        );
    }
    // Both sets of rows are stored, and equal.
    let stored = stored_rows(&cluster.standin, "judge", "t");
    assert_eq!(stored.len(), 2 * rows.len());
    let (sdk_rows, our_rows) = stored.split_at(rows.len());
    assert_eq!(sdk_rows, our_rows);
    assert_eq!(sdk_rows, expected(&rows).as_slice());
}
