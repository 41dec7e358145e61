//! The stand-in's native side (reference §3.1, §3.3, §3.6a): a nameserver
//! and tablets speaking brpc's baidu_std, registered in a real ZooKeeper the
//! way OpenMLDB registers them, over the same catalog the APIServer side
//! serves. So the official SDK (and our native writer) can connect with
//! `zk` + `zkPath`, find tables, and `Put` rows that `SELECT` then shows.
//!
//! Model: a table's rows live with its first index, as `SELECT *` reads
//! them; a row is stored by the Put that carries that index's dimension.
//! Every other dimension is checked (its key string and partition must be
//! the ones the row hashes to). Partition `p`'s leader is tablet
//! `p % tablets` unless fault injection moved it; a dropped tablet leaves
//! `nodes/`, and its partitions move to the next live tablet, as the
//! nameserver's auto-failover does.

use crate::api::State;
use crate::sql::{ColumnSpec, IndexSpec, Statement, TableOptions};
use crate::store::{ColType, Outcome, Table, Value};
use openmldb_client::proto::brpc::policy::RpcMeta;
use openmldb_client::proto::openmldb::api::{DeleteRequest, GeneralResponse as TabletResponse};
use openmldb_client::proto::openmldb::nameserver::{
    CreateDatabaseRequest, CreateTableRequest, DropTableRequest, GeneralResponse, ShowDatabaseResponse,
    ShowFunctionResponse, ShowTableRequest, ShowTableResponse, UseDatabaseRequest,
};
use openmldb_client::proto::{
    ColumnDesc, ColumnKey, PartitionMeta, PutRequest, PutResponse, TableInfo, TablePartition,
};
use openmldb_client::rpc::{encode_frame, read_frame, response_meta};
use openmldb_client::{Column as CodecColumn, DataType, Date, Value as CodecValue, decode_row, hash, key};
use prost::Message;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use zookeeper_client as zk;

/// Fault injection and recording for the native side.
#[derive(Debug, Default)]
pub struct NativeFaults {
    /// Puts to (tid, pid) fail with (code, message) while the count lasts.
    pub fail_puts: HashMap<(u32, u32), (i32, String, u32)>,
    /// (tid, pid) → tablet index, overriding `pid % tablets`.
    pub leaders: HashMap<(u32, u32), usize>,
    /// Tablets taken out (closed listener, gone from `nodes/`).
    pub dropped: HashSet<usize>,
    /// ZooKeeper is not updated while set, as when the nameserver is slow
    /// to publish a failover: clients keep a stale view and meet the moved
    /// leaders' 103 and the dropped tablets' closed ports.
    pub hold_publication: bool,
    /// Record every `PutRequest` received in `puts` (off by default: a
    /// benchmark sends millions).
    pub record: bool,
    /// The `PutRequest`s received while `record` is on, as bytes, in
    /// arrival order.
    pub puts: Vec<Vec<u8>>,
    /// Every `DeleteRequest` received (RevertPut).
    pub deletes: Vec<DeleteRequest>,
    /// Puts answered with a non-zero code, by code.
    pub refused_puts: BTreeMap<i32, u64>,
}

/// A running native side; dropping it deregisters everything.
pub struct NativeSide {
    pub nameserver: SocketAddr,
    pub tablets: Vec<SocketAddr>,
    pub zk: String,
    pub root: String,
    pub faults: Arc<Mutex<NativeFaults>>,
    /// Rounds the ZooKeeper publisher has completed.
    published_rounds: Arc<std::sync::atomic::AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for NativeSide {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl NativeSide {
    /// Starts a nameserver and `state`'s tablets on loopback and registers
    /// them under `root` in the ZooKeeper at `zk_hosts`.
    pub async fn start(state: Arc<State>, zk_hosts: &str, root: &str) -> anyhow::Result<NativeSide> {
        let root = format!("/{}", root.trim_matches('/'));
        let tablet_count = lock(&state.catalog).tablets.max(1) as usize;
        let faults: Arc<Mutex<NativeFaults>> = Arc::default();
        let ns_listener = TcpListener::bind("127.0.0.1:0").await?;
        let nameserver = ns_listener.local_addr()?;
        let mut tablet_listeners = Vec::new();
        for _ in 0..tablet_count {
            tablet_listeners.push(TcpListener::bind("127.0.0.1:0").await?);
        }
        let tablets: Vec<SocketAddr> = tablet_listeners.iter().map(|l| l.local_addr()).collect::<Result<_, _>>()?;
        let endpoints: Arc<Vec<String>> = Arc::new(tablets.iter().map(|a| a.to_string()).collect());

        let client = zk::Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(zk_hosts)
            .await
            .map_err(|e| anyhow::anyhow!("ZooKeeper {zk_hosts}: {e}"))?;
        let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        let ephemeral = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
        for dir in ["", "/leader", "/nodes", "/table", "/table/db_table_data", "/db", "/map", "/map/names"] {
            ensure(&client, &format!("{root}{dir}"), b"", &persistent).await?;
        }
        ensure(&client, &format!("{root}/table/notify"), b"0", &persistent).await?;
        client
            .create(
                &format!("{root}/leader/lock_request"),
                nameserver.to_string().as_bytes(),
                &zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all()),
            )
            .await
            .map_err(|e| anyhow::anyhow!("registering the nameserver: {e}"))?;
        for endpoint in endpoints.iter() {
            client
                .create(&format!("{root}/nodes/{endpoint}"), endpoint.as_bytes(), &ephemeral)
                .await
                .map_err(|e| anyhow::anyhow!("registering tablet {endpoint}: {e}"))?;
        }

        let mut tasks = Vec::new();
        let server = Arc::new(Server { state: state.clone(), faults: faults.clone(), endpoints: endpoints.clone() });
        tasks.push(tokio::spawn(serve(ns_listener, server.clone(), Role::Nameserver)));
        for (index, listener) in tablet_listeners.into_iter().enumerate() {
            tasks.push(tokio::spawn(serve(listener, server.clone(), Role::Tablet(index))));
        }
        let published_rounds = Arc::new(std::sync::atomic::AtomicU64::new(0));
        tasks.push(tokio::spawn(publish_tables(client, root.clone(), server, published_rounds.clone())));
        Ok(NativeSide { nameserver, tablets, zk: zk_hosts.to_string(), root, faults, published_rounds, tasks })
    }

    /// Waits until ZooKeeper shows the catalog as it is now (tables made
    /// through the APIServer side are published within a round, ~50 ms).
    pub async fn settle(&self) {
        use std::sync::atomic::Ordering;
        let start = self.published_rounds.load(Ordering::Acquire);
        while self.published_rounds.load(Ordering::Acquire) < start + 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The JDBC-style URL of this cluster, for `db`.
    pub fn jdbc_url(&self, db: &str) -> String {
        format!("jdbc:openmldb:///{db}?zk={}&zkPath={}", self.zk, self.root)
    }
}

async fn ensure(client: &zk::Client, path: &str, data: &[u8], options: &zk::CreateOptions<'_>) -> anyhow::Result<()> {
    match client.create(path, data, options).await {
        Ok(_) | Err(zk::Error::NodeExists) => Ok(()),
        Err(e) => Err(anyhow::anyhow!("ZooKeeper create {path}: {e}")),
    }
}

struct Server {
    state: Arc<State>,
    faults: Arc<Mutex<NativeFaults>>,
    endpoints: Arc<Vec<String>>,
}

#[derive(Clone, Copy)]
enum Role {
    Nameserver,
    Tablet(usize),
}

impl Server {
    /// The tablet leading (tid, pid), after faults.
    fn leader(&self, faults: &NativeFaults, tid: u32, pid: u32) -> Option<usize> {
        let count = self.endpoints.len();
        let first = faults.leaders.get(&(tid, pid)).copied().unwrap_or(pid as usize % count);
        (0..count).map(|step| (first + step) % count).find(|t| !faults.dropped.contains(t))
    }

    fn table_info(&self, table: &Table, faults: &NativeFaults) -> TableInfo {
        let partitions = (0..table.partition_num)
            .map(|pid| TablePartition {
                pid,
                partition_meta: self
                    .leader(faults, table.tid, pid)
                    .map(|t| PartitionMeta {
                        endpoint: self.endpoints[t].clone(),
                        is_leader: true,
                        is_alive: Some(true),
                        ..Default::default()
                    })
                    .into_iter()
                    .collect(),
                ..Default::default()
            })
            .collect();
        TableInfo {
            name: Some(table.name.clone()),
            db: Some(table.db.clone()),
            tid: Some(table.tid),
            partition_num: Some(table.partition_num),
            replica_num: Some(table.replica_num),
            table_partition: partitions,
            column_desc: table
                .columns
                .iter()
                .map(|c| ColumnDesc {
                    name: c.name.clone(),
                    data_type: Some(codec_type(c.ty).to_proto()),
                    not_null: Some(c.not_null),
                    ..Default::default()
                })
                .collect(),
            column_key: table
                .indexes
                .iter()
                .map(|i| ColumnKey {
                    index_name: Some(i.name.clone()),
                    col_name: i.keys.iter().map(|k| table.columns[*k].name.clone()).collect(),
                    ts_name: i.ts.map(|t| table.columns[t].name.clone()),
                    flag: Some(0),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn find_tid(&self, tid: u32) -> Option<(String, String)> {
        let catalog = lock(&self.state.catalog);
        catalog
            .databases
            .iter()
            .flat_map(|(db, tables)| tables.values().map(move |t| (db, t)))
            .find(|(_, t)| t.tid == tid)
            .map(|(db, t)| (db.clone(), t.name.clone()))
    }

    fn answer(&self, role: Role, meta: &RpcMeta, payload: &[u8]) -> Result<Vec<u8>, (i32, String)> {
        let request = meta.request.as_ref().ok_or((1001, "no request meta".to_string()))?;
        let bad = |e: prost::DecodeError| (1003, format!("Fail to parse request: {e}"));
        match (role, request.service_name.as_str(), request.method_name.as_str()) {
            (Role::Nameserver, "openmldb.nameserver.NameServer", method) => match method {
                "ShowFunction" => {
                    Ok(ShowFunctionResponse { code: Some(0), msg: Some("ok".into()), fun: vec![] }.encode_to_vec())
                }
                "UseDatabase" => {
                    let request = UseDatabaseRequest::decode(payload).map_err(bad)?;
                    let db = request.db.unwrap_or_default();
                    let exists = lock(&self.state.catalog).databases.contains_key(&db);
                    Ok(general(if exists { 0 } else { 501 }, if exists { "ok" } else { "database not found" }))
                }
                "ShowDatabase" => {
                    let db = lock(&self.state.catalog).database_names();
                    Ok(ShowDatabaseResponse { code: Some(0), msg: Some("ok".into()), db }.encode_to_vec())
                }
                "CreateDatabase" => {
                    let request = CreateDatabaseRequest::decode(payload).map_err(bad)?;
                    let statement = Statement::CreateDatabase {
                        name: request.db.unwrap_or_default(),
                        if_not_exists: request.if_not_exists.unwrap_or(false),
                    };
                    Ok(self.execute("", statement))
                }
                "CreateTable" => {
                    let request = CreateTableRequest::decode(payload).map_err(bad)?;
                    let info = request.table_info;
                    let db = info.db.clone().unwrap_or_default();
                    match create_statement(info, request.create_if_not_exist.unwrap_or(false)) {
                        Ok(statement) => Ok(self.execute(&db, statement)),
                        Err(message) => Ok(general(101, &message)),
                    }
                }
                "DropTable" => {
                    let request = DropTableRequest::decode(payload).map_err(bad)?;
                    let db = request.db.unwrap_or_default();
                    Ok(self.execute(&db, Statement::DropTable { name: request.name, if_exists: false }))
                }
                "ShowTable" => {
                    let request = ShowTableRequest::decode(payload).map_err(bad)?;
                    let faults = lock(&self.faults);
                    let catalog = lock(&self.state.catalog);
                    let db = request.db.unwrap_or_default();
                    let table_info = catalog
                        .databases
                        .iter()
                        .filter(|(d, _)| request.show_all.unwrap_or(false) || **d == db)
                        .flat_map(|(_, tables)| tables.values())
                        .filter(|t| request.name.as_ref().is_none_or(|n| n.is_empty() || *n == t.name))
                        .map(|t| self.table_info(t, &faults))
                        .collect();
                    Ok(ShowTableResponse { table_info, code: 0, msg: Some("ok".into()) }.encode_to_vec())
                }
                other => Err((1002, format!("Fail to find method={other}"))),
            },
            (Role::Tablet(me), "openmldb.api.TabletServer", "Put") => {
                {
                    let mut faults = lock(&self.faults);
                    if faults.record {
                        faults.puts.push(payload.to_vec());
                    }
                }
                let request = PutRequest::decode(payload).map_err(bad)?;
                let (code, msg) = self.put(me, request);
                if code != 0 {
                    *lock(&self.faults).refused_puts.entry(code).or_default() += 1;
                }
                Ok(PutResponse { code: Some(code), msg: Some(msg) }.encode_to_vec())
            }
            (Role::Tablet(_), "openmldb.api.TabletServer", "Delete") => {
                let request = DeleteRequest::decode(payload).map_err(bad)?;
                lock(&self.faults).deletes.push(request.clone());
                let (code, msg) = self.delete(request);
                Ok(TabletResponse { code: Some(code), msg: Some(msg), ..Default::default() }.encode_to_vec())
            }
            (_, service, method) => Err((1002, format!("Fail to find service={service} method={method}"))),
        }
    }

    fn execute(&self, db: &str, statement: Statement) -> Vec<u8> {
        let outcome = lock(&self.state.catalog).execute(db, statement, &mut crate::api::NoFaults);
        match outcome {
            Outcome::Error { code, msg } => general(code as i32, &msg),
            _ => general(0, "ok"),
        }
    }

    fn put(&self, me: usize, request: PutRequest) -> (i32, String) {
        let tid = request.tid.unwrap_or(0);
        let pid = request.pid.unwrap_or(0);
        {
            let mut faults = lock(&self.faults);
            if let Some((code, msg, left)) = faults.fail_puts.get_mut(&(tid, pid))
                && *left > 0
            {
                *left -= 1;
                return (*code, msg.clone());
            }
        }
        let Some((db, name)) = self.find_tid(tid) else { return (100, "table does not exist".into()) };
        let leader = {
            let faults = lock(&self.faults);
            self.leader(&faults, tid, pid)
        };
        let mut catalog = lock(&self.state.catalog);
        let Some(table) = catalog.table_mut(&db, &name) else { return (100, "table does not exist".into()) };
        if pid >= table.partition_num {
            return (100, "table does not exist".into());
        }
        if leader != Some(me) {
            return (103, "table is follower".into());
        }
        if request.dimensions.is_empty() {
            return (116, format!("{tid}.{pid}: empty dimension"));
        }
        let columns: Vec<CodecColumn> = table
            .columns
            .iter()
            .map(|c| CodecColumn { name: c.name.clone(), data_type: codec_type(c.ty), not_null: c.not_null })
            .collect();
        let values = match decode_row(&columns, request.value.as_deref().unwrap_or_default()) {
            Ok(values) => values,
            Err(e) => return (116, format!("{tid}.{pid}: the stand-in cannot decode the row: {e}")),
        };
        let mut stores = false;
        for dimension in &request.dimensions {
            let idx = dimension.idx.unwrap_or(0) as usize;
            let Some(index) = table.indexes.get(idx) else {
                return (134, "invalid dimension parameter".into());
            };
            let mut expected = String::new();
            for &k in &index.keys {
                if key::push_key_part(&mut expected, &columns[k].name, &values[k]).is_err() {
                    return (134, "invalid dimension parameter".into());
                }
            }
            let got = dimension.key.clone().unwrap_or_default();
            if got != expected || hash::partition_of(&expected, table.partition_num) != pid {
                return (
                    116,
                    format!(
                        "{tid}.{pid}: stand-in check: dimension {idx} key {got:?} is not the row's key {expected:?} for this pid"
                    ),
                );
            }
            if let Some(ts) = index.ts {
                match &values[ts] {
                    CodecValue::Timestamp(t) | CodecValue::BigInt(t) if *t < 0 => {
                        return (116, format!("{tid}.{pid}: ts is negative {t}"));
                    }
                    CodecValue::Null => return (116, format!("{tid}.{pid}: ts is null")),
                    _ => {}
                }
            }
            stores |= idx == 0;
        }
        if !stores {
            return (0, "ok".into());
        }
        let row: Vec<Value> = values.into_iter().map(standin_value).collect();
        let put_if_absent = request.put_if_absent.unwrap_or(false);
        if table.put(row, put_if_absent) {
            drop(catalog);
            lock(&self.state.stats).rows_stored += 1;
            (0, "ok".into())
        } else {
            (0, "exists but ignore".into())
        }
    }

    /// RevertPut: removes the newest row of the first index's key at `ts`
    /// (or the newest row of that key when the index has no TS column).
    fn delete(&self, request: DeleteRequest) -> (i32, String) {
        let tid = request.tid.unwrap_or(0);
        let Some((db, name)) = self.find_tid(tid) else { return (100, "table does not exist".into()) };
        let mut catalog = lock(&self.state.catalog);
        let Some(table) = catalog.table_mut(&db, &name) else { return (100, "table does not exist".into()) };
        for dimension in request.dimensions.iter().filter(|d| d.idx.unwrap_or(0) == 0) {
            let Some(index) = table.indexes.first().cloned() else { continue };
            let key = dimension.key.clone().unwrap_or_default();
            let ts = request.ts.unwrap_or(0) as i64;
            let found = table.rows.iter().rposition(|row| {
                let mut row_key = String::new();
                for &k in &index.keys {
                    let _ = key::push_key_part(&mut row_key, "", &codec_value(&row[k]));
                }
                row_key == key
                    && index.ts.is_none_or(|t| matches!(row[t], Value::Timestamp(v) | Value::BigInt(v) if v == ts))
            });
            if let Some(at) = found {
                table.remove_row(at);
            }
        }
        (0, "ok".into())
    }
}

fn general(code: i32, msg: &str) -> Vec<u8> {
    GeneralResponse { code, msg: Some(msg.to_string()) }.encode_to_vec()
}

fn codec_type(ty: ColType) -> DataType {
    match ty {
        ColType::Bool => DataType::Bool,
        ColType::SmallInt => DataType::SmallInt,
        ColType::Int => DataType::Int,
        ColType::BigInt => DataType::BigInt,
        ColType::Float => DataType::Float,
        ColType::Double => DataType::Double,
        ColType::Varchar => DataType::String,
        ColType::Date => DataType::Date,
        ColType::Timestamp => DataType::Timestamp,
    }
}

fn standin_type(ty: DataType) -> ColType {
    match ty {
        DataType::Bool => ColType::Bool,
        DataType::SmallInt => ColType::SmallInt,
        DataType::Int => ColType::Int,
        DataType::BigInt => ColType::BigInt,
        DataType::Float => ColType::Float,
        DataType::Double => ColType::Double,
        DataType::String => ColType::Varchar,
        DataType::Date => ColType::Date,
        DataType::Timestamp => ColType::Timestamp,
    }
}

fn standin_value(value: CodecValue) -> Value {
    match value {
        CodecValue::Null => Value::Null,
        CodecValue::Bool(v) => Value::Bool(v),
        CodecValue::SmallInt(v) => Value::SmallInt(v),
        CodecValue::Int(v) => Value::Int(v),
        CodecValue::BigInt(v) => Value::BigInt(v),
        CodecValue::Float(v) => Value::Float(v),
        CodecValue::Double(v) => Value::Double(v),
        CodecValue::Date(d) => Value::Date(d.year, u32::from(d.month), u32::from(d.day)),
        CodecValue::Timestamp(v) => Value::Timestamp(v),
        CodecValue::String(v) => Value::Str(v),
    }
}

fn codec_value(value: &Value) -> CodecValue {
    match value {
        Value::Null => CodecValue::Null,
        Value::Bool(v) => CodecValue::Bool(*v),
        Value::SmallInt(v) => CodecValue::SmallInt(*v),
        Value::Int(v) => CodecValue::Int(*v),
        Value::BigInt(v) => CodecValue::BigInt(*v),
        Value::Float(v) => CodecValue::Float(*v),
        Value::Double(v) => CodecValue::Double(*v),
        Value::Date(y, m, d) => CodecValue::Date(Date { year: *y, month: *m as u8, day: *d as u8 }),
        Value::Timestamp(v) => CodecValue::Timestamp(*v),
        Value::Str(v) => CodecValue::String(v.clone()),
    }
}

/// The `CREATE TABLE` a `TableInfo` stands for (columns, indexes with key
/// and TS, partitions and replicas; TTLs are left to the default).
fn create_statement(info: TableInfo, if_not_exists: bool) -> Result<Statement, String> {
    let columns = info
        .column_desc
        .iter()
        .map(|c| {
            let ty = DataType::from_proto(c.data_type.unwrap_or(0))
                .ok_or_else(|| format!("column {}: unsupported type {:?}", c.name, c.data_type))?;
            Ok(ColumnSpec {
                name: c.name.clone(),
                ty: standin_type(ty),
                not_null: c.not_null.unwrap_or(false),
                default: None,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let indexes = info
        .column_key
        .iter()
        .map(|k| IndexSpec {
            keys: k.col_name.clone(),
            ts: k.ts_name.clone().filter(|t| !t.is_empty()),
            ttl_type: None,
            ttl: None,
        })
        .collect();
    let options = TableOptions {
        partition_num: info.partition_num.map(i64::from),
        replica_num: info.replica_num.map(i64::from),
        ..Default::default()
    };
    Ok(Statement::CreateTable {
        db: info.db.clone(),
        name: info.name.clone().unwrap_or_default(),
        if_not_exists,
        columns,
        indexes,
        options,
    })
}

/// Keeps `table/db_table_data/<tid>` equal to the catalog (tables made
/// through either side), bumping `table/notify` on every change.
async fn publish_tables(
    client: zk::Client,
    root: String,
    server: Arc<Server>,
    rounds: Arc<std::sync::atomic::AtomicU64>,
) {
    let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    let mut published: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    let mut notify = 0u64;
    let mut nodes_dropped: HashSet<usize> = HashSet::new();
    loop {
        if lock(&server.faults).hold_publication {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let (current, dropped) = {
            let faults = lock(&server.faults);
            let catalog = lock(&server.state.catalog);
            let current: BTreeMap<u32, Vec<u8>> = catalog
                .databases
                .values()
                .flat_map(|tables| tables.values())
                .map(|t| (t.tid, server.table_info(t, &faults).encode_to_vec()))
                .collect();
            (current, faults.dropped.clone())
        };
        for gone in dropped.difference(&nodes_dropped) {
            let _ = client.delete(&format!("{root}/nodes/{}", server.endpoints[*gone]), None).await;
        }
        nodes_dropped = dropped;
        let mut changed = false;
        for (tid, bytes) in &current {
            if published.get(tid) == Some(bytes) {
                continue;
            }
            let path = format!("{root}/table/db_table_data/{tid}");
            let written = match client.set_data(&path, bytes, None).await {
                Err(zk::Error::NoNode) => client.create(&path, bytes, &persistent).await.map(|_| ()),
                other => other.map(|_| ()),
            };
            if written.is_ok() {
                changed = true;
            }
        }
        for tid in published.keys().filter(|tid| !current.contains_key(tid)) {
            let _ = client.delete(&format!("{root}/table/db_table_data/{tid}"), None).await;
            changed = true;
        }
        if changed {
            notify += 1;
            let _ = client.set_data(&format!("{root}/table/notify"), notify.to_string().as_bytes(), None).await;
        }
        published = current;
        rounds.fetch_add(1, std::sync::atomic::Ordering::Release);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn serve(listener: TcpListener, server: Arc<Server>, role: Role) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        if let Role::Tablet(me) = role
            && lock(&server.faults).dropped.contains(&me)
        {
            // A dropped tablet is gone: the connection closes at once.
            continue;
        }
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(stream, server.clone(), role));
    }
}

async fn connection(stream: TcpStream, server: Arc<Server>, role: Role) {
    let (read, write) = stream.into_split();
    let mut read = tokio::io::BufReader::with_capacity(256 << 10, read);
    // Answers are flushed when no further request is already buffered, so
    // a pipelined batch is answered with few writes, as brpc does.
    let mut write = tokio::io::BufWriter::with_capacity(256 << 10, write);
    let mut out = Vec::new();
    while let Ok(Some(frame)) = read_frame(&mut read).await {
        if let Role::Tablet(me) = role
            && lock(&server.faults).dropped.contains(&me)
        {
            return;
        }
        let (meta, payload) = match server.answer(role, &frame.meta, &frame.payload) {
            Ok(payload) => (response_meta(&frame.meta, None), payload),
            Err(error) => (response_meta(&frame.meta, Some(error)), Vec::new()),
        };
        out.clear();
        encode_frame(&meta, &payload, &mut out);
        if write.write_all(&out).await.is_err() {
            return;
        }
        if read.buffer().is_empty() && write.flush().await.is_err() {
            return;
        }
    }
}
