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

use crate::codec::{CodecError, encode_row_into};
use crate::discovery::{Discovery, DiscoveryError, Index, Table, View};
use crate::key::{KeyError, push_key_part};
use crate::proto::openmldb::api::{DeleteRequest, GeneralResponse as TabletGeneralResponse};
use crate::proto::openmldb::nameserver::{
    CreateDatabaseRequest, CreateTableRequest, GeneralRequest, GeneralResponse, ShowDatabaseResponse,
};
use crate::proto::{PutRequest, PutResponse, TableInfo};
use crate::rpc::{Channel, RpcError, user_token};
use crate::types::Value;
use prost::Message;
use std::collections::HashMap;
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

/// One row's Puts, encoded and ready to send.
struct Routed {
    /// (pid, the encoded `PutRequest`) in ascending pid.
    puts: Vec<(u32, Vec<u8>)>,
    /// The Puts' `time`: the client's clock when the row was routed.
    time: i64,
}

impl Routed {
    fn put(&self, pid: u32) -> Option<&[u8]> {
        self.puts.iter().find(|(p, _)| *p == pid).map(|(_, put)| put.as_slice())
    }

    fn pids(&self) -> impl Iterator<Item = u32> + '_ {
        self.puts.iter().map(|(pid, _)| *pid)
    }
}

/// Buffers one write reuses for all its rows, so routing a row allocates
/// only its Puts.
#[derive(Default)]
struct Scratch {
    row: Vec<u8>,
    key: String,
    keys: String,
    /// (pid, index number, the key's bytes in `keys`), one per index.
    dimensions: Vec<(u32, u32, std::ops::Range<usize>)>,
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
        let mut outstanding: Vec<(usize, u32)> = Vec::with_capacity(rows.len());
        let mut scratch = Scratch::default();
        for (row, values) in rows.iter().enumerate() {
            match route(&found, values, options, &mut scratch) {
                Ok(r) => {
                    outstanding.extend(r.pids().map(|pid| (row, pid)));
                    routed.push(Some(r));
                    results.push(Ok(()));
                }
                Err(e) => {
                    routed.push(None);
                    results.push(Err(e));
                }
            }
        }
        // The partitions each row is stored in so far (most rows have one).
        let mut stored: Vec<Vec<u32>> = vec![Vec::new(); rows.len()];
        let mut failed: Vec<Option<PartitionError>> = (0..rows.len()).map(|_| None).collect();
        for attempt in 0..2 {
            let answered = {
                let mut by_leader: HashMap<Option<&str>, Vec<(usize, u32)>> = HashMap::new();
                for (row, pid) in outstanding.drain(..) {
                    let leader = found.leaders.get(pid as usize).and_then(|l| l.as_deref());
                    by_leader.entry(leader).or_default().push((row, pid));
                }
                let sends = by_leader.into_iter().map(|(leader, puts)| {
                    let found = &found;
                    let routed = &routed;
                    async move {
                        // Routed Puts carry the table's tid as routed; a moved
                        // table keeps its tid, so they are sent as they are.
                        let requests: Vec<&[u8]> =
                            puts.iter().filter_map(|(row, pid)| routed[*row].as_ref()?.put(*pid)).collect();
                        let answers = self.put_batch(found, leader, &requests).await;
                        puts.into_iter().zip(answers).collect::<Vec<_>>()
                    }
                });
                futures::future::join_all(sends).await
            };
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
            let all_stored = routed.pids().all(|pid| stored[row].contains(&pid));
            if all_stored {
                // A moved partition that went in on the second try.
                continue;
            }
            if !options.put_if_absent && !stored[row].is_empty() {
                self.revert(&found, &rows[row], routed, &stored[row]).await;
            }
            let pid = routed.pids().find(|pid| !stored[row].contains(pid)).unwrap_or(0);
            results[row] = Err(failure.into_put_error(&found, pid));
        }
        results
    }

    /// Sends encoded Puts to one leader as one pipelined batch.
    async fn put_batch(
        &self,
        table: &Table,
        leader: Option<&str>,
        requests: &[&[u8]],
    ) -> Vec<Result<(), PartitionError>> {
        let Some(endpoint) = leader else {
            let message = format!("a partition of {}.{} has no live leader", table.db, table.name);
            return requests.iter().map(|_| Err(PartitionError::Moved(message.clone()))).collect();
        };
        let channel = match self.channel(endpoint).await {
            Ok(channel) => channel,
            Err(e) => return requests.iter().map(|_| Err(PartitionError::Moved(e.to_string()))).collect(),
        };
        let answers: Vec<Result<PutResponse, RpcError>> = channel.call_batch_encoded(TABLET, "Put", requests).await;
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
    async fn revert(&self, table: &Table, values: &[Value], routed: &Routed, stored: &[u32]) {
        let time = routed.time;
        for pid in stored {
            let Some(endpoint) = table.leaders.get(*pid as usize).cloned().flatten() else { continue };
            let Ok(channel) = self.channel(&endpoint).await else { continue };
            // The Put's dimensions, read back from its bytes (a rare path).
            let dimensions = routed.put(*pid).and_then(|put| PutRequest::decode(put).ok()).map(|p| p.dimensions);
            for dimension in dimensions.unwrap_or_default() {
                let number = dimension.idx.unwrap_or(0);
                let ts = table
                    .indexes
                    .iter()
                    .find(|index| index.position == number)
                    .and_then(|index| index_ts(table, index, values).ok().flatten())
                    .unwrap_or(time) as u64;
                let delete = DeleteRequest {
                    tid: Some(table.tid),
                    pid: Some(*pid),
                    dimensions: vec![dimension],
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

/// The row's value of `index`'s TS column (`None`: the index has none),
/// refused as the SDK refuses it when negative or NULL.
fn index_ts(table: &Table, index: &Index, values: &[Value]) -> Result<Option<i64>, PutError> {
    let Some(column) = index.ts_column else { return Ok(None) };
    let problem = |problem: String| PutError::IndexTs {
        column: table.columns[column].name.clone(),
        index: index.name.clone(),
        problem,
    };
    match &values[column] {
        Value::Timestamp(ts) | Value::BigInt(ts) if *ts >= 0 => Ok(Some(*ts)),
        Value::Timestamp(ts) | Value::BigInt(ts) => Err(problem(format!("is negative ({ts})"))),
        Value::Null => Err(problem("is NULL".into())),
        other => Err(problem(format!("holds {other}, not a timestamp or bigint"))),
    }
}

/// Encodes the row and works out its partitions and dimensions, refusing
/// what the SDK refuses before sending; then encodes one Put per partition.
fn route(table: &Table, values: &[Value], options: WriteOptions, scratch: &mut Scratch) -> Result<Routed, PutError> {
    scratch.row.clear();
    encode_row_into(&table.columns, values, &mut scratch.row)?;
    let partitions_count = table.leaders.len() as u32;
    scratch.keys.clear();
    scratch.dimensions.clear();
    for index in &table.indexes {
        scratch.key.clear();
        for &column in &index.key_columns {
            push_key_part(&mut scratch.key, &table.columns[column].name, &values[column])?;
        }
        index_ts(table, index, values)?;
        let pid = crate::hash::partition_of(&scratch.key, partitions_count);
        let start = scratch.keys.len();
        scratch.keys.push_str(&scratch.key);
        scratch.dimensions.push((pid, index.position, start..scratch.keys.len()));
    }
    // Ascending pid; within a partition, dimensions in index order (the
    // sort is stable).
    scratch.dimensions.sort_by_key(|(pid, _, _)| *pid);
    let time = now_ms();
    let mut puts = Vec::with_capacity(1);
    for group in scratch.dimensions.chunk_by(|a, b| a.0 == b.0) {
        let pid = group[0].0;
        let dimensions = group.iter().map(|(_, number, key)| (&scratch.keys[key.clone()], *number));
        puts.push((pid, encode_put(time, &scratch.row, table.tid, pid, dimensions, options)));
    }
    Ok(Routed { puts, time })
}

/// A `PutRequest`'s bytes, as prost (and the SDK) write them: `time`,
/// `value`, `tid`, `pid`, the dimensions (`key`, `idx`), `memory_limit`
/// when set, `put_if_absent`, `check_exists` (a unit test holds them equal
/// to prost's encoding of the message), without building the message and
/// a copy of the row for it.
fn encode_put<'k>(
    time: i64,
    row: &[u8],
    tid: u32,
    pid: u32,
    dimensions: impl Iterator<Item = (&'k str, u32)> + Clone,
    options: WriteOptions,
) -> Vec<u8> {
    use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};
    let dimension_len = |key: &str, number: u32| {
        2 + encoded_len_varint(key.len() as u64) + key.len() + encoded_len_varint(number.into())
    };
    let size = 32 + row.len() + dimensions.clone().map(|(key, number)| 6 + dimension_len(key, number)).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    encode_key(2, WireType::Varint, &mut out);
    encode_varint(time as u64, &mut out);
    encode_key(3, WireType::LengthDelimited, &mut out);
    encode_varint(row.len() as u64, &mut out);
    out.extend_from_slice(row);
    encode_key(4, WireType::Varint, &mut out);
    encode_varint(tid.into(), &mut out);
    encode_key(5, WireType::Varint, &mut out);
    encode_varint(pid.into(), &mut out);
    for (key, number) in dimensions {
        encode_key(6, WireType::LengthDelimited, &mut out);
        encode_varint(dimension_len(key, number) as u64, &mut out);
        encode_key(1, WireType::LengthDelimited, &mut out);
        encode_varint(key.len() as u64, &mut out);
        out.extend_from_slice(key.as_bytes());
        encode_key(2, WireType::Varint, &mut out);
        encode_varint(number.into(), &mut out);
    }
    if options.memory_limit > 0 {
        encode_key(9, WireType::Varint, &mut out);
        encode_varint(options.memory_limit.into(), &mut out);
    }
    encode_key(10, WireType::Varint, &mut out);
    encode_varint(options.put_if_absent.into(), &mut out);
    encode_key(11, WireType::Varint, &mut out);
    encode_varint(0, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{ColumnDesc, ColumnKey, PartitionMeta, TablePartition};
    use crate::types::DataType;
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

    fn decoded(routed: &Routed, pid: u32) -> PutRequest {
        PutRequest::decode(routed.put(pid).unwrap()).unwrap()
    }

    #[test]
    fn the_worked_put_of_the_reference_is_the_bytes_the_sdk_sends() {
        let t = table(8);
        let row = [Value::String("bb".into()), Value::Int(24), Value::Timestamp(1590738994000)];
        let routed = route(&t, &row, WriteOptions::default(), &mut Scratch::default()).unwrap();
        assert_eq!(routed.pids().collect::<Vec<_>>(), vec![5]);
        let mut request = decoded(&routed, 5);
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
    fn hand_encoded_puts_are_the_bytes_prost_writes_for_the_message() {
        let dimensions = [("bb", 0u32), ("", 3), ("x|y", 200)];
        for options in [
            WriteOptions::default(),
            WriteOptions { put_if_absent: true, memory_limit: 0 },
            WriteOptions { put_if_absent: false, memory_limit: 50 },
        ] {
            for count in 0..=dimensions.len() {
                for (time, tid, pid) in [(0i64, 1u32, 0u32), (1_590_738_994_000, 300, 7), (i64::MAX, u32::MAX, 1 << 20)]
                {
                    let row: Vec<u8> = (0..(time % 300) as u8).collect();
                    let ours = encode_put(time, &row, tid, pid, dimensions[..count].iter().copied(), options);
                    let theirs = PutRequest {
                        time: Some(time),
                        value: Some(row.clone()),
                        tid: Some(tid),
                        pid: Some(pid),
                        dimensions: dimensions[..count]
                            .iter()
                            .map(|(key, idx)| crate::proto::Dimension { key: Some(key.to_string()), idx: Some(*idx) })
                            .collect(),
                        memory_limit: (options.memory_limit > 0).then_some(options.memory_limit),
                        put_if_absent: Some(options.put_if_absent),
                        check_exists: Some(false),
                        ..Default::default()
                    }
                    .encode_to_vec();
                    assert_eq!(ours, theirs, "{options:?}, {count} dimensions, time {time}");
                }
            }
        }
    }

    #[test]
    fn memory_limit_and_put_if_absent_reach_every_put_and_no_limit_is_not_sent() {
        let t = table(8);
        let row = [Value::String("bb".into()), Value::Int(24), Value::Timestamp(1590738994000)];
        let options = WriteOptions { put_if_absent: true, memory_limit: 50 };
        let limited = decoded(&route(&t, &row, options, &mut Scratch::default()).unwrap(), 5);
        assert_eq!((limited.memory_limit, limited.put_if_absent), (Some(50), Some(true)));
        let unlimited = decoded(&route(&t, &row, WriteOptions::default(), &mut Scratch::default()).unwrap(), 5);
        assert_eq!(unlimited.memory_limit, None);
    }

    #[test]
    fn a_negative_or_null_index_ts_is_refused_before_sending() {
        let t = table(1);
        let null_ts = [Value::String("a".into()), Value::Int(1), Value::Null];
        let routed = route(&t, &null_ts, WriteOptions::default(), &mut Scratch::default());
        assert!(matches!(routed, Err(PutError::IndexTs { .. })));
    }
}
