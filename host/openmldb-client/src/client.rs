//! The client: routes rows to the leaders of their partitions and writes
//! them with `TabletServer.Put`, exactly as the official SDK encodes them
//! (§3.6a of the reference), and creates databases and tables through the
//! nameserver.
//!
//! Failure rules, per reply class:
//! - content the SDK would refuse or narrow (a type mismatch, NULL in NOT
//!   NULL, a negative or NULL index TS, a float index key) is refused
//!   before anything is sent, naming the column and value;
//! - `100` table does not exist, `103` table is follower, `104` table is
//!   loading, and connection errors: discovery is re-read and the Put is
//!   sent once more to the (new) leader; if that fails too the row is
//!   [`PutError::Unavailable`], for the caller to retry later;
//! - `160` exceed max memory: unavailable (the caller waits);
//! - any other code: the tablet refused the row ([`PutError::Rejected`]).
//!
//! A row that goes to several partitions is one Put per partition. When a
//! later Put fails, the earlier ones are taken back as the SDK does
//! (RevertPut: a `Delete` of each dimension at the row's timestamp), so
//! that a retry does not store the row twice in those partitions; with
//! `put_if_absent` a retry is harmless and nothing is taken back.

use crate::codec::{CodecError, encode_row};
use crate::discovery::{Discovery, DiscoveryError, Table, View};
use crate::key::{KeyError, push_key_part};
use crate::proto::openmldb::api::{DeleteRequest, GeneralResponse as TabletGeneralResponse};
use crate::proto::openmldb::nameserver::{
    CreateDatabaseRequest, CreateTableRequest, GeneralRequest, GeneralResponse, ShowDatabaseResponse,
};
use crate::proto::{Dimension, PutRequest, PutResponse, TableInfo};
use crate::rpc::{Channel, RpcError, user_token};
use crate::types::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TABLET: &str = "openmldb.api.TabletServer";
const NAMESERVER: &str = "openmldb.nameserver.NameServer";

/// Tablet codes after which the route is re-read (`src/base/status.h`).
const TABLE_NOT_EXIST: i32 = 100;
const TABLE_IS_FOLLOWER: i32 = 103;
const TABLE_IS_LOADING: i32 = 104;
const EXCEED_MAX_MEMORY: i32 = 160;

/// How to reach the cluster (the JDBC URL's `zk`, `zkPath`, `user`,
/// `password`, `sessionTimeout`, `requestTimeout`).
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub zk: String,
    pub zk_path: String,
    pub user: String,
    pub password: String,
    pub session_timeout: Duration,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
}

impl ClientOptions {
    /// The SDK's defaults: user root, empty password, 10 s session, 60 s
    /// requests.
    pub fn new(zk: impl Into<String>, zk_path: impl Into<String>) -> ClientOptions {
        ClientOptions {
            zk: zk.into(),
            zk_path: zk_path.into(),
            user: "root".into(),
            password: String::new(),
            session_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Per-write settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// `INSERT OR IGNORE`: the tablet keeps the first of identical rows.
    pub put_if_absent: bool,
    /// `insert_memory_usage_limit` (1..=100, % of the tablet's memory); 0
    /// is unlimited and not sent.
    pub memory_limit: u32,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum PutError {
    #[error("table {db}.{table} does not exist")]
    NoTable { db: String, table: String },
    #[error("refused before sending: {0}")]
    Content(#[from] CodecError),
    #[error("refused before sending: {0}")]
    Key(#[from] KeyError),
    #[error("refused before sending: column {column} is the TS of index {index} and {problem}")]
    IndexTs { column: String, index: String, problem: String },
    #[error("tablet {endpoint} refused the row (tid {tid}, pid {pid}): code {code}: {message}")]
    Rejected { endpoint: String, tid: u32, pid: u32, code: i32, message: String },
    #[error("OpenMLDB unavailable: {0}")]
    Unavailable(String),
}

impl PutError {
    /// Whether sending the same row later may succeed (the cluster is
    /// down, moving or full), as opposed to a row that is refused for what
    /// it holds.
    pub fn is_retryable(&self) -> bool {
        matches!(self, PutError::Unavailable(_))
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error("nameserver {endpoint}: {what} failed: code {code}: {message}")]
    Refused { endpoint: String, what: String, code: i32, message: String },
    #[error("table {db}.{table} was created but did not appear in ZooKeeper within {within:?}")]
    NotVisible { db: String, table: String, within: Duration },
}

/// A connected client.
pub struct Client {
    options: ClientOptions,
    discovery: Discovery,
    channels: Mutex<HashMap<String, Arc<Channel>>>,
    connecting: tokio::sync::Mutex<()>,
    log_ids: Arc<AtomicI64>,
}

/// One row's Puts, ready to send.
struct Routed {
    /// The Put of each partition, in ascending pid.
    puts: BTreeMap<u32, PutRequest>,
    /// Per index number, the row's TS for RevertPut (`None`: use `time`).
    index_ts: HashMap<u32, Option<i64>>,
    /// The Puts' `time`: the client's clock when the row was routed.
    time: i64,
}

impl Client {
    pub async fn connect(options: ClientOptions) -> Result<Client, DiscoveryError> {
        let discovery = Discovery::connect(&options.zk, &options.zk_path, options.session_timeout).await?;
        Ok(Client {
            options,
            discovery,
            channels: Mutex::new(HashMap::new()),
            connecting: tokio::sync::Mutex::new(()),
            log_ids: Arc::new(AtomicI64::new(0)),
        })
    }

    pub fn view(&self) -> Arc<View> {
        self.discovery.view()
    }

    /// The table, from the current view.
    pub fn table(&self, db: &str, table: &str) -> Option<Arc<Table>> {
        self.discovery.view().table(db, table)
    }

    /// Re-reads ZooKeeper now (after a DDL elsewhere, say).
    pub async fn refresh(&self) -> Arc<View> {
        self.discovery.refresh(Duration::from_secs(5)).await
    }

    async fn channel(&self, endpoint: &str) -> Result<Arc<Channel>, RpcError> {
        if let Some(channel) = self.cached(endpoint) {
            return Ok(channel);
        }
        let _one_at_a_time = self.connecting.lock().await;
        if let Some(channel) = self.cached(endpoint) {
            return Ok(channel);
        }
        let channel = Arc::new(
            Channel::connect(
                endpoint,
                user_token(&self.options.user, &self.options.password),
                self.log_ids.clone(),
                self.options.connect_timeout,
                self.options.request_timeout,
            )
            .await?,
        );
        if let Ok(mut channels) = self.channels.lock() {
            channels.insert(endpoint.to_string(), channel.clone());
        }
        Ok(channel)
    }

    fn cached(&self, endpoint: &str) -> Option<Arc<Channel>> {
        let channels = self.channels.lock().ok()?;
        channels.get(endpoint).filter(|c| !c.is_closed()).cloned()
    }

    /// Writes one row (values in table column order).
    pub async fn put(&self, db: &str, table: &str, values: &[Value], options: WriteOptions) -> Result<(), PutError> {
        let mut results = self.put_rows(db, table, std::slice::from_ref(&values.to_vec()), options).await;
        results.pop().unwrap_or(Ok(()))
    }

    /// Writes rows, all on the wire at once (one pipelined batch per
    /// tablet); one result per row, in order. A row's Puts to different
    /// partitions go out together; a Put whose partition moved is sent
    /// once more after discovery is re-read, without re-sending the row's
    /// other Puts, so a plain INSERT is not stored twice there.
    pub async fn put_rows(
        &self,
        db: &str,
        table: &str,
        rows: &[Vec<Value>],
        options: WriteOptions,
    ) -> Vec<Result<(), PutError>> {
        let Some(mut found) = self.table(db, table) else {
            return rows.iter().map(|_| Err(PutError::NoTable { db: db.into(), table: table.into() })).collect();
        };
        let mut results: Vec<Result<(), PutError>> = Vec::with_capacity(rows.len());
        let mut routed: Vec<Option<Routed>> = Vec::with_capacity(rows.len());
        // (row, pid) of every Put still to send.
        let mut outstanding: Vec<(usize, u32)> = Vec::new();
        for (row, values) in rows.iter().enumerate() {
            match route(&found, values, options) {
                Ok(r) => {
                    outstanding.extend(r.puts.keys().map(|pid| (row, *pid)));
                    routed.push(Some(r));
                    results.push(Ok(()));
                }
                Err(e) => {
                    routed.push(None);
                    results.push(Err(e));
                }
            }
        }
        let mut stored: Vec<Vec<u32>> = vec![Vec::new(); rows.len()];
        let mut failed: Vec<Option<PartitionError>> = (0..rows.len()).map(|_| None).collect();
        for attempt in 0..2 {
            let mut by_leader: HashMap<Option<String>, Vec<(usize, u32)>> = HashMap::new();
            for (row, pid) in outstanding.drain(..) {
                let leader = found.leaders.get(pid as usize).cloned().flatten();
                by_leader.entry(leader).or_default().push((row, pid));
            }
            let sends = by_leader.into_iter().map(|(leader, puts)| {
                let found = &found;
                let routed = &routed;
                async move {
                    // Routed Puts carry the table's tid as routed; a moved
                    // table keeps its tid, so they are sent as they are.
                    let requests: Vec<&PutRequest> =
                        puts.iter().filter_map(|(row, pid)| routed[*row].as_ref()?.puts.get(pid)).collect();
                    let answers = self.put_batch(found, leader.as_deref(), &requests).await;
                    puts.into_iter().zip(answers).collect::<Vec<_>>()
                }
            });
            let answered = futures::future::join_all(sends).await;
            for ((row, pid), answer) in answered.into_iter().flatten() {
                match answer {
                    Ok(()) => stored[row].push(pid),
                    Err(PartitionError::Moved(m)) if attempt == 0 => {
                        outstanding.push((row, pid));
                        failed[row] = Some(PartitionError::Moved(m));
                    }
                    Err(e) => {
                        // The first failure that is not a move says why.
                        if !matches!(failed[row], Some(PartitionError::Busy(_) | PartitionError::Refused { .. })) {
                            failed[row] = Some(e);
                        }
                    }
                }
            }
            if outstanding.is_empty() {
                break;
            }
            let view = self.discovery.refresh(Duration::from_secs(2)).await;
            if let Some(fresh) = view.table(db, table) {
                found = fresh;
            }
        }
        for (row, failure) in failed.into_iter().enumerate() {
            let Some(failure) = failure else { continue };
            let Some(routed) = &routed[row] else { continue };
            let all_stored = routed.puts.keys().all(|pid| stored[row].contains(pid));
            if all_stored {
                // A moved partition that went in on the second try.
                continue;
            }
            if !options.put_if_absent && !stored[row].is_empty() {
                self.revert(&found, routed, &stored[row]).await;
            }
            let pid = routed.puts.keys().find(|pid| !stored[row].contains(pid)).copied().unwrap_or(0);
            results[row] = Err(failure.into_put_error(&found, pid));
        }
        results
    }

    /// Sends Puts to one leader as one pipelined batch.
    async fn put_batch(
        &self,
        table: &Table,
        leader: Option<&str>,
        requests: &[&PutRequest],
    ) -> Vec<Result<(), PartitionError>> {
        let Some(endpoint) = leader else {
            let message = format!("a partition of {}.{} has no live leader", table.db, table.name);
            return requests.iter().map(|_| Err(PartitionError::Moved(message.clone()))).collect();
        };
        let channel = match self.channel(endpoint).await {
            Ok(channel) => channel,
            Err(e) => return requests.iter().map(|_| Err(PartitionError::Moved(e.to_string()))).collect(),
        };
        let answers: Vec<Result<PutResponse, RpcError>> = channel.call_batch(TABLET, "Put", requests).await;
        answers
            .into_iter()
            .map(|answer| {
                let response = match answer {
                    Ok(response) => response,
                    Err(e) if e.is_transport() => return Err(PartitionError::Moved(e.to_string())),
                    Err(e) => {
                        return Err(PartitionError::Refused {
                            endpoint: endpoint.to_string(),
                            code: -1,
                            message: e.to_string(),
                        });
                    }
                };
                let code = response.code.unwrap_or(0);
                let message = || format!("{endpoint}: code {code}: {}", response.msg.clone().unwrap_or_default());
                match code {
                    0 => Ok(()),
                    TABLE_NOT_EXIST | TABLE_IS_FOLLOWER | TABLE_IS_LOADING => Err(PartitionError::Moved(message())),
                    EXCEED_MAX_MEMORY => Err(PartitionError::Busy(message())),
                    code => Err(PartitionError::Refused {
                        endpoint: endpoint.to_string(),
                        code,
                        message: response.msg.clone().unwrap_or_default(),
                    }),
                }
            })
            .collect()
    }

    /// RevertPut: deletes what the Puts to `stored` added (the SDK's rule).
    async fn revert(&self, table: &Table, routed: &Routed, stored: &[u32]) {
        let time = routed.time;
        for pid in stored {
            let Some(endpoint) = table.leaders.get(*pid as usize).cloned().flatten() else { continue };
            let Ok(channel) = self.channel(&endpoint).await else { continue };
            for dimension in routed.puts.get(pid).map(|put| put.dimensions.as_slice()).unwrap_or_default() {
                let index = dimension.idx.unwrap_or(0);
                let ts = routed.index_ts.get(&index).copied().flatten().unwrap_or(time) as u64;
                let delete = DeleteRequest {
                    tid: Some(table.tid),
                    pid: Some(*pid),
                    dimensions: vec![dimension.clone()],
                    ts: Some(ts),
                    end_ts: Some(ts.wrapping_sub(1)),
                    enable_decode_value: Some(false),
                    ..Default::default()
                };
                let reverted: Result<TabletGeneralResponse, _> = channel.call(TABLET, "Delete", &delete).await;
                match reverted {
                    Ok(r) if r.code.unwrap_or(0) == 0 => {}
                    Ok(r) => tracing::warn!(%endpoint, pid, code = r.code, msg = r.msg, "RevertPut refused"),
                    Err(e) => tracing::warn!(%endpoint, pid, error = %e, "RevertPut failed"),
                }
            }
        }
    }

    /// The databases the nameserver knows (`SHOW DATABASES`).
    pub async fn databases(&self) -> Result<Vec<String>, AdminError> {
        let endpoint = self.view().nameserver.clone();
        let channel = self.channel(&endpoint).await?;
        let response: ShowDatabaseResponse = channel.call(NAMESERVER, "ShowDatabase", &GeneralRequest {}).await?;
        match response.code.unwrap_or(0) {
            0 => Ok(response.db),
            code => Err(AdminError::Refused {
                endpoint,
                what: "ShowDatabase".into(),
                code,
                message: response.msg.unwrap_or_default(),
            }),
        }
    }

    /// `CREATE DATABASE IF NOT EXISTS` through the nameserver.
    pub async fn create_database(&self, db: &str) -> Result<(), AdminError> {
        let request =
            CreateDatabaseRequest { db: Some(db.to_string()), if_not_exists: Some(true), ..Default::default() };
        self.nameserver_call("CreateDatabase", "CreateDatabase", &request).await
    }

    /// Creates a table (partitions and replicas are the nameserver's to
    /// lay out when `info` leaves them unset) and waits until it appears
    /// in ZooKeeper.
    pub async fn create_table(&self, info: TableInfo, within: Duration) -> Result<Arc<Table>, AdminError> {
        let db = info.db.clone().unwrap_or_default();
        let name = info.name.clone().unwrap_or_default();
        let request = CreateTableRequest { table_info: info, create_if_not_exist: Some(true), ..Default::default() };
        self.nameserver_call("CreateTable", &format!("CreateTable {db}.{name}"), &request).await?;
        self.discovery.wait_for_table(&db, &name, within).await.ok_or(AdminError::NotVisible {
            db,
            table: name,
            within,
        })
    }

    async fn nameserver_call(
        &self,
        method: &'static str,
        what: &str,
        request: &impl prost::Message,
    ) -> Result<(), AdminError> {
        let endpoint = self.view().nameserver.clone();
        let channel = self.channel(&endpoint).await?;
        let response: GeneralResponse = channel.call(NAMESERVER, method, request).await?;
        match response.code {
            0 => Ok(()),
            code => Err(AdminError::Refused {
                endpoint,
                what: what.to_string(),
                code,
                message: response.msg.unwrap_or_default(),
            }),
        }
    }
}

enum PartitionError {
    /// The route is stale or the tablet unreachable.
    Moved(String),
    /// The tablet is out of memory.
    Busy(String),
    Refused {
        endpoint: String,
        code: i32,
        message: String,
    },
}

impl PartitionError {
    fn into_put_error(self, table: &Table, pid: u32) -> PutError {
        match self {
            PartitionError::Moved(m) | PartitionError::Busy(m) => PutError::Unavailable(m),
            PartitionError::Refused { endpoint, code, message } => {
                PutError::Rejected { endpoint, tid: table.tid, pid, code, message }
            }
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Encodes the row and works out its partitions and dimensions, refusing
/// what the SDK refuses before sending.
fn route(table: &Table, values: &[Value], options: WriteOptions) -> Result<Routed, PutError> {
    let value = encode_row(&table.columns, values)?;
    let partitions_count = table.leaders.len() as u32;
    let mut partitions: BTreeMap<u32, Vec<Dimension>> = BTreeMap::new();
    let mut index_ts = HashMap::new();
    for index in &table.indexes {
        let mut key = String::new();
        for &column in &index.key_columns {
            push_key_part(&mut key, &table.columns[column].name, &values[column])?;
        }
        let ts = match index.ts_column {
            None => None,
            Some(column) => {
                let problem = |problem: String| PutError::IndexTs {
                    column: table.columns[column].name.clone(),
                    index: index.name.clone(),
                    problem,
                };
                match &values[column] {
                    Value::Timestamp(ts) | Value::BigInt(ts) if *ts >= 0 => Some(*ts),
                    Value::Timestamp(ts) | Value::BigInt(ts) => return Err(problem(format!("is negative ({ts})"))),
                    Value::Null => return Err(problem("is NULL".into())),
                    other => return Err(problem(format!("holds {other}, not a timestamp or bigint"))),
                }
            }
        };
        index_ts.insert(index.position, ts);
        let pid = crate::hash::partition_of(&key, partitions_count);
        partitions.entry(pid).or_default().push(Dimension { key: Some(key), idx: Some(index.position) });
    }
    let time = now_ms();
    let last = partitions.keys().next_back().copied();
    let mut value = Some(value);
    let puts = partitions
        .into_iter()
        .map(|(pid, dimensions)| {
            // The row's bytes are moved into its last Put, copied for the others.
            let row = if Some(pid) == last { value.take() } else { value.clone() };
            let put = PutRequest {
                time: Some(time),
                value: row,
                tid: Some(table.tid),
                pid: Some(pid),
                dimensions,
                memory_limit: (options.memory_limit > 0).then_some(options.memory_limit),
                put_if_absent: Some(options.put_if_absent),
                check_exists: Some(false),
                ..Default::default()
            };
            (pid, put)
        })
        .collect();
    Ok(Routed { puts, index_ts, time })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{ColumnDesc, ColumnKey, PartitionMeta, TablePartition};
    use crate::types::DataType;
    use prost::Message;
    use std::collections::HashSet;

    fn table(partitions: u32) -> Table {
        let info = TableInfo {
            name: Some("t".into()),
            db: Some("d".into()),
            tid: Some(1),
            column_desc: ["c1", "c2", "c3"]
                .iter()
                .zip([DataType::String, DataType::Int, DataType::Timestamp])
                .map(|(n, t)| ColumnDesc { name: n.to_string(), data_type: Some(t.to_proto()), ..Default::default() })
                .collect(),
            column_key: vec![ColumnKey {
                index_name: Some("i".into()),
                col_name: vec!["c1".into()],
                ts_name: Some("c3".into()),
                ..Default::default()
            }],
            table_partition: (0..partitions)
                .map(|pid| TablePartition {
                    pid,
                    partition_meta: vec![PartitionMeta {
                        endpoint: "127.0.0.1:1".into(),
                        is_leader: true,
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let tablets: HashSet<String> = ["127.0.0.1:1".to_string()].into();
        let bytes = info.encode_to_vec();
        Table::from_info(TableInfo::decode(bytes.as_slice()).unwrap(), &tablets, &HashMap::new()).unwrap()
    }

    #[test]
    fn the_worked_put_of_the_reference_is_the_bytes_the_sdk_sends() {
        let t = table(8);
        let row = [Value::String("bb".into()), Value::Int(24), Value::Timestamp(1590738994000)];
        let routed = route(&t, &row, WriteOptions::default()).unwrap();
        assert_eq!(routed.puts.keys().copied().collect::<Vec<_>>(), vec![5]);
        let mut request = routed.puts[&5].clone();
        // The reference's worked example: time 1, pid 1.
        request.time = Some(1);
        request.pid = Some(1);
        let hex: Vec<String> = request.encode_to_vec().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex.join(" "),
            "10 01 1a 16 01 01 16 00 00 00 f8 18 00 00 00 50 c3 6e 5f 72 01 00 00 14 62 62 \
             20 01 28 01 32 06 0a 02 62 62 10 00 50 00 58 00"
        );
    }

    #[test]
    fn memory_limit_and_put_if_absent_reach_every_put_and_no_limit_is_not_sent() {
        let t = table(8);
        let row = [Value::String("bb".into()), Value::Int(24), Value::Timestamp(1590738994000)];
        let limited = route(&t, &row, WriteOptions { put_if_absent: true, memory_limit: 50 }).unwrap();
        let put = &limited.puts[&5];
        assert_eq!((put.memory_limit, put.put_if_absent), (Some(50), Some(true)));
        let unlimited = route(&t, &row, WriteOptions::default()).unwrap();
        assert_eq!(unlimited.puts[&5].memory_limit, None);
    }

    #[test]
    fn a_negative_or_null_index_ts_is_refused_before_sending() {
        let t = table(1);
        let null_ts = [Value::String("a".into()), Value::Int(1), Value::Null];
        assert!(matches!(route(&t, &null_ts, WriteOptions::default()), Err(PutError::IndexTs { .. })));
    }
}
