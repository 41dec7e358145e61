//! Cluster discovery in ZooKeeper, as the SDK reads it (§3.1 and §3.6a of
//! the reference): the nameserver leader (smallest child of `leader/`), the
//! live tablets (`nodes/`), endpoint overrides for SDKs
//! (`map/sdkendpoints/`) and every table (`table/db_table_data/<tid>`, a
//! serialized `TableInfo`). A background task re-reads the view whenever
//! `table/notify`, `nodes/` or `leader/` changes, and on request (a tablet
//! answered that it is not the leader, or went away).

use crate::proto::TableInfo;
use crate::types::{Column, DataType};
use prost::Message;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use zookeeper_client as zk;

/// Re-read this often even when no watch fires (a lost session, a missed
/// event).
const PERIODIC_RELOAD: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, thiserror::Error)]
pub enum DiscoveryError {
    #[error("ZooKeeper {zk}: {message}")]
    ZooKeeper { zk: String, message: String },
    #[error("ZooKeeper {zk}{root}: no nameserver exists (leader/ has no child)")]
    NoNameserver { zk: String, root: String },
    #[error("ZooKeeper {zk}{root}: fail to get tablets from zk (nodes/ is missing)")]
    NoTablets { zk: String, root: String },
    #[error("table {db}.{table} (tid {tid}): {message}")]
    Table { db: String, table: String, tid: u32, message: String },
}

/// One index of a table, as the writer routes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    /// The index number: its position in `TableInfo.column_key`.
    pub position: u32,
    pub name: String,
    /// Column positions whose values form the key, in key order.
    pub key_columns: Vec<usize>,
    /// The TS column's position, if the index has one.
    pub ts_column: Option<usize>,
}

/// A table as the writer needs it.
#[derive(Debug, Clone)]
pub struct Table {
    pub info: TableInfo,
    pub db: String,
    pub name: String,
    pub tid: u32,
    pub columns: Vec<Column>,
    /// Live indexes (deleted ones, `flag = 1`, are skipped), by number.
    pub indexes: Vec<Index>,
    /// The leader endpoint of each partition, by pid; `None` when the
    /// leader is not a live tablet.
    pub leaders: Vec<Option<String>>,
}

impl Table {
    /// Reads a `TableInfo`; leaders not among `tablets` are `None`.
    pub fn from_info(
        info: TableInfo,
        tablets: &HashSet<String>,
        sdk_endpoints: &HashMap<String, String>,
    ) -> Result<Table, DiscoveryError> {
        let db = info.db.clone().unwrap_or_default();
        let name = info.name.clone().unwrap_or_default();
        let tid = info.tid.unwrap_or(0);
        let error = |message: String| DiscoveryError::Table { db: db.clone(), table: name.clone(), tid, message };
        let mut columns = Vec::with_capacity(info.column_desc.len());
        for desc in &info.column_desc {
            let data_type = DataType::from_proto(desc.data_type.unwrap_or(0))
                .ok_or_else(|| error(format!("column {} has a type this client does not write", desc.name)))?;
            columns.push(Column { name: desc.name.clone(), data_type, not_null: desc.not_null.unwrap_or(false) });
        }
        let position_of = |col: &str| columns.iter().position(|c| c.name == col);
        let mut indexes = Vec::new();
        for (position, key) in info.column_key.iter().enumerate() {
            if key.flag.unwrap_or(0) != 0 {
                continue;
            }
            let key_columns = key
                .col_name
                .iter()
                .map(|c| position_of(c).ok_or_else(|| error(format!("index key column {c} is not a column"))))
                .collect::<Result<Vec<_>, _>>()?;
            let ts_column = match key.ts_name.as_deref().filter(|ts| !ts.is_empty()) {
                Some(ts) => {
                    Some(position_of(ts).ok_or_else(|| error(format!("index TS column {ts} is not a column")))?)
                }
                None => None,
            };
            indexes.push(Index {
                position: position as u32,
                name: key.index_name.clone().unwrap_or_default(),
                key_columns,
                ts_column,
            });
        }
        let mut leaders = Vec::with_capacity(info.table_partition.len());
        for (expected, partition) in info.table_partition.iter().enumerate() {
            if partition.pid as usize != expected {
                return Err(error(format!("partitions are not in pid order at {expected}")));
            }
            let leader = partition
                .partition_meta
                .iter()
                .find(|m| m.is_leader && m.is_alive.unwrap_or(true))
                .map(|m| m.endpoint.clone())
                .filter(|endpoint| tablets.contains(endpoint))
                .map(|endpoint| sdk_endpoints.get(&endpoint).cloned().unwrap_or(endpoint));
            leaders.push(leader);
        }
        Ok(Table { info, db, name, tid, columns, indexes, leaders })
    }
}

/// What ZooKeeper said, at one moment.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// The nameserver leader's endpoint (after `map/sdkendpoints`).
    pub nameserver: String,
    /// Live tablet endpoints, as registered.
    pub tablets: HashSet<String>,
    /// Tables by (database, name).
    pub tables: HashMap<(String, String), Arc<Table>>,
    /// Bumped by every reload.
    pub version: u64,
}

impl View {
    pub fn table(&self, db: &str, name: &str) -> Option<Arc<Table>> {
        self.tables.get(&(db.to_string(), name.to_string())).cloned()
    }
}

/// Keeps a [`View`] of the cluster current.
pub struct Discovery {
    view: watch::Receiver<Arc<View>>,
    reload: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Discovery {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Discovery {
    /// Connects to ZooKeeper (`zk`: `host:port[,host:port…]`) under `root`
    /// and reads the first view.
    pub async fn connect(zk_hosts: &str, root: &str, session_timeout: Duration) -> Result<Discovery, DiscoveryError> {
        let zk_error = |e: zk::Error| DiscoveryError::ZooKeeper { zk: zk_hosts.to_string(), message: e.to_string() };
        let client = zk::Client::connector()
            .with_session_timeout(session_timeout)
            .with_connection_timeout(session_timeout)
            .connect(zk_hosts)
            .await
            .map_err(zk_error)?;
        let root = format!("/{}", root.trim_matches('/'));
        let first = load(&client, zk_hosts, &root, 1).await?;
        let (publish, view) = watch::channel(Arc::new(first));
        let reload = Arc::new(Notify::new());
        let task = tokio::spawn(keep_current(client, zk_hosts.to_string(), root, publish, reload.clone()));
        Ok(Discovery { view, reload, task })
    }

    /// The current view.
    pub fn view(&self) -> Arc<View> {
        self.view.borrow().clone()
    }

    /// Re-reads ZooKeeper and waits (up to `within`) for a view newer than
    /// the current one.
    pub async fn refresh(&self, within: Duration) -> Arc<View> {
        let mut view = self.view.clone();
        let version = view.borrow_and_update().version;
        self.reload.notify_one();
        let _ = tokio::time::timeout(within, async {
            while view.borrow().version <= version {
                if view.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        self.view()
    }

    /// Waits (up to `within`) until `db.table` appears, as after a create.
    pub async fn wait_for_table(&self, db: &str, table: &str, within: Duration) -> Option<Arc<Table>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(found) = self.view().table(db, table) {
                return Some(found);
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return None;
            }
            self.refresh(left.min(Duration::from_millis(500))).await;
        }
    }
}

async fn keep_current(
    client: zk::Client,
    zk_hosts: String,
    root: String,
    publish: watch::Sender<Arc<View>>,
    reload: Arc<Notify>,
) {
    let mut version = 1u64;
    loop {
        // Watches are set before the read they guard, so no change between
        // the two is missed.
        let notify = client.get_and_watch_data(&format!("{root}/table/notify")).await.ok().map(|(_, _, w)| w);
        let nodes = client.list_and_watch_children(&format!("{root}/nodes")).await.ok().map(|(_, w)| w);
        let leader = client.list_and_watch_children(&format!("{root}/leader")).await.ok().map(|(_, w)| w);
        version += 1;
        match load(&client, &zk_hosts, &root, version).await {
            Ok(view) => {
                publish.send_replace(Arc::new(view));
            }
            Err(e) => tracing::warn!(error = %e, "OpenMLDB discovery: reload failed; keeping the last view"),
        }
        let changed = async move {
            tokio::select! {
                _ = async { match notify { Some(w) => { w.changed().await; } None => std::future::pending().await } } => {}
                _ = async { match nodes { Some(w) => { w.changed().await; } None => std::future::pending().await } } => {}
                _ = async { match leader { Some(w) => { w.changed().await; } None => std::future::pending().await } } => {}
            }
        };
        tokio::select! {
            _ = changed => {}
            _ = reload.notified() => {}
            _ = tokio::time::sleep(PERIODIC_RELOAD) => {}
        }
    }
}

async fn load(client: &zk::Client, zk_hosts: &str, root: &str, version: u64) -> Result<View, DiscoveryError> {
    let zk_error = |path: &str, e: zk::Error| DiscoveryError::ZooKeeper {
        zk: zk_hosts.to_string(),
        message: format!("{path}: {e}"),
    };
    let children = |path: String| async move {
        match client.list_children(&path).await {
            Ok(children) => Ok(Some(children)),
            Err(zk::Error::NoNode) => Ok(None),
            Err(e) => Err(zk_error(&path, e)),
        }
    };
    let data = |path: String| async move {
        match client.get_data(&path).await {
            Ok((data, _)) => Ok(Some(data)),
            Err(zk::Error::NoNode) => Ok(None),
            Err(e) => Err(zk_error(&path, e)),
        }
    };

    let mut sdk_endpoints = HashMap::new();
    for name in children(format!("{root}/map/sdkendpoints")).await?.unwrap_or_default() {
        if let Some(real) = data(format!("{root}/map/sdkendpoints/{name}")).await? {
            sdk_endpoints.insert(name, String::from_utf8_lossy(&real).into_owned());
        }
    }

    let mut candidates = children(format!("{root}/leader")).await?.unwrap_or_default();
    candidates.sort();
    let mut nameserver = None;
    for child in candidates {
        if let Some(endpoint) = data(format!("{root}/leader/{child}")).await? {
            let endpoint = String::from_utf8_lossy(&endpoint).into_owned();
            nameserver = Some(sdk_endpoints.get(&endpoint).cloned().unwrap_or(endpoint));
            break;
        }
    }
    let nameserver =
        nameserver.ok_or_else(|| DiscoveryError::NoNameserver { zk: zk_hosts.to_string(), root: root.to_string() })?;

    let tablets: HashSet<String> = children(format!("{root}/nodes"))
        .await?
        .ok_or_else(|| DiscoveryError::NoTablets { zk: zk_hosts.to_string(), root: root.to_string() })?
        .into_iter()
        .collect();

    let mut tables = HashMap::new();
    let mut tids: BTreeMap<u64, String> = BTreeMap::new();
    for child in children(format!("{root}/table/db_table_data")).await?.unwrap_or_default() {
        tids.insert(child.parse().unwrap_or(u64::MAX), child);
    }
    for child in tids.into_values() {
        let Some(bytes) = data(format!("{root}/table/db_table_data/{child}")).await? else { continue };
        let info = match TableInfo::decode(bytes.as_slice()) {
            Ok(info) => info,
            Err(e) => {
                tracing::warn!(tid = %child, error = %e, "OpenMLDB discovery: a TableInfo does not parse; skipped");
                continue;
            }
        };
        match Table::from_info(info, &tablets, &sdk_endpoints) {
            Ok(table) => {
                tables.insert((table.db.clone(), table.name.clone()), Arc::new(table));
            }
            Err(e) => tracing::warn!(error = %e, "OpenMLDB discovery: table skipped"),
        }
    }
    Ok(View { nameserver, tablets, tables, version })
}
