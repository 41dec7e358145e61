//! The OpenMLDB writer: typed rows in, rows stored. Natively (Puts to the
//! tablets, for ZooKeeper URLs; see `write_native`) or through the
//! APIServer, as follows.
//!
//! Rows are written as multi-row `INSERT [OR IGNORE] INTO t VALUES …`
//! through `POST /dbs/{db}` in online mode, in statements bounded by rows
//! and bytes, several in flight at once (as OpenMLDB's Go SDK does). Such a
//! statement is not atomic, so every reply is read for what it says was
//! stored, and each reply class has its rule:
//! - `insert values N failed, failed rows peek: i,j,…` (every listed index
//!   inside the statement): the rows not listed were stored; the listed
//!   ones are retried. When N exceeds the listed rows, or the list cannot
//!   be trusted, OR IGNORE mode re-sends the statement (a byte-identical
//!   row is not added twice) and append mode writes every row alone.
//! - `fail to parse row[i]`: nothing was stored; row i is poison and the
//!   rest is sent again.
//! - the server is down or busy (transport errors, code 2001 tablet errors:
//!   follower, loading, memory): waited for, with capped exponential
//!   backoff, as long as `max.retries` allows (forever by default).
//! - a reply the writer does not recognise, or a row the server keeps
//!   refusing without saying why: retried `max.refused.retries` times,
//!   then written row by row, and a row still refused is poison with the
//!   server's message.
//!
//! A row is reported written only when the server said so; rows that can
//! never be written come back as poison with the reason, for the
//! dead-letter topic. Every retry is reported to the caller's
//! [`WriteObserver`] as it happens, so a stall is visible while it lasts.

use super::client::{ApiClient, Reply, TransportError};
use super::config::{Endpoint, InsertMode, WriterConfig, check_name};
use super::literal;
use super::native;
use super::schema::{TableInfo, create_table_sql, parse_table_info};
use crate::plugin::bindings::{Column, Row, TableSchema};
use crate::telemetry::thread_cpu_time;
use futures::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, thiserror::Error)]
pub enum WriterError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("OpenMLDB {target}: {message}")]
    Setup { target: String, message: String },
    /// `auto.create` is on but no record schema was given to create the table from.
    #[error(
        "OpenMLDB {target}: table {table} does not exist and auto.create has no record schema to build it from \
         (plain JSON carries none; send JsonConverter envelopes or create the table)"
    )]
    NoSchemaToCreate { target: String, table: String },
}

/// Told about every retry as it happens (the writer's caller shows stalls
/// with it: counters, a degraded state, warnings), and what building the
/// requests cost.
pub trait WriteObserver: Send + Sync {
    /// A request failed; it is sent again after `delay` (attempt counts
    /// from 1 for each request).
    fn retrying(&self, table: &str, attempt: u32, error: &str, delay: Duration);
    /// The CPU time this thread spent checking rows and turning them into
    /// requests for one `write` call.
    fn built(&self, _cpu: Duration) {}
}

/// An observer that ignores retries.
pub struct NoObserver;

impl WriteObserver for NoObserver {
    fn retrying(&self, _: &str, _: u32, _: &str, _: Duration) {}
}

/// A row that can never be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Poison {
    /// Index into the `write` input.
    pub index: usize,
    /// `rejected` (the destination refused it), or `trap` (a sink plugin
    /// traps on it alone).
    pub kind: &'static str,
    pub reason: String,
}

impl Poison {
    pub fn rejected(index: usize, reason: impl Into<String>) -> Poison {
        Poison { index, kind: "rejected", reason: reason.into() }
    }
}

/// What happened to the rows of one `write` call, by index into its input.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteReport {
    /// Rows the server stored.
    pub written: Vec<usize>,
    /// Rows that can never be stored, with the reason.
    pub poison: Vec<Poison>,
    /// Rows neither stored nor refused when the writer stopped trying
    /// (`max.retries` reached, or shutdown). They must not be committed.
    pub unresolved: Vec<usize>,
    /// The last error seen, if any.
    pub last_error: Option<String>,
    /// Requests that were retried.
    pub retries: u64,
}

impl WriteReport {
    fn merge(&mut self, other: WriteReport) {
        self.written.extend(other.written);
        self.poison.extend(other.poison);
        self.unresolved.extend(other.unresolved);
        if other.last_error.is_some() {
            self.last_error = other.last_error;
        }
        self.retries += other.retries;
    }
}

/// How one INSERT statement ended.
#[derive(Debug, PartialEq)]
enum InsertResult {
    Stored,
    /// `insert values N failed, failed rows peek: …`
    RowsFailed {
        count: usize,
        peek: Vec<usize>,
        message: String,
    },
    /// `fail to parse row[i]`: nothing stored; row i can never be.
    BadRow {
        index: usize,
        message: String,
    },
    /// The server is down or busy; wait for it.
    Transient(String),
    /// A reply not known to be transient; retried a bounded number of times.
    Unrecognised(String),
    /// The table is gone from the APIServer's catalog.
    TableMissing(String),
    /// Refused as a whole for a reason that is not transient.
    Rejected(String),
}

/// Tablet and router states that pass (openmldb.md §1.4.1, §3.3).
const TRANSIENT: [&str; 6] = [
    "table is follower",
    "table is loading",
    "exceed max memory",
    "fail to get tablet client",
    "fail to get table",
    "is follower cluster",
];

/// Tablet return codes that pass: 100 (table not there yet), 103
/// (follower), 104 (loading), 160 (memory).
fn transient_return_code(msg: &str) -> bool {
    ["ReturnCode[100]", "ReturnCode[103]", "ReturnCode[104]", "ReturnCode[160]"].iter().any(|c| msg.contains(c))
}

fn is_transient(code: i64, msg: &str) -> bool {
    TRANSIENT.iter().any(|t| msg.contains(t))
        || (code == 2001 && (transient_return_code(msg) || !msg.contains("ReturnCode[")))
}

fn classify_insert(reply: Result<Reply, TransportError>) -> InsertResult {
    let reply = match reply {
        Ok(reply) => reply,
        Err(e) => return InsertResult::Transient(e.to_string()),
    };
    let msg = reply.msg;
    if reply.code == 0 {
        // Some failures come back with code 0 and another message (§1.4.1).
        return if msg == "ok" { InsertResult::Stored } else { InsertResult::Transient(msg) };
    }
    if let Some(rest) = msg.strip_prefix("insert values ") {
        let count = rest.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(usize::MAX);
        let peek = rest
            .split_once("peek:")
            .map(|(_, list)| list.split([',', ' ']).filter_map(|i| i.trim().parse().ok()).collect())
            .unwrap_or_default();
        return InsertResult::RowsFailed { count, peek, message: msg };
    }
    if let Some(at) = msg.find("fail to parse row[") {
        let index = msg[at + 18..].split(']').next().and_then(|i| i.parse().ok());
        if let Some(index) = index {
            return InsertResult::BadRow { index, message: msg };
        }
    }
    if is_transient(reply.code, &msg) {
        return InsertResult::Transient(msg);
    }
    if msg.contains("not exist") {
        return InsertResult::TableMissing(msg);
    }
    if matches!(reply.code, -1 | 101 | 1000 | 1001) || msg.starts_with("create logic plan tree failed") {
        return InsertResult::Rejected(msg);
    }
    InsertResult::Unrecognised(msg)
}

/// The rows of a `RowsFailed` reply, when the list can be trusted: every
/// index inside the statement, none twice, and as many as the count says.
fn trusted_failures(count: usize, peek: &[usize], rows: usize) -> Option<Vec<usize>> {
    let mut listed = peek.to_vec();
    listed.sort_unstable();
    listed.dedup();
    let inside = listed.len() == peek.len() && listed.iter().all(|i| *i < rows);
    (inside && count == listed.len()).then_some(listed)
}

/// How a single-row write ended.
enum RowResult {
    Stored,
    Poison(String),
    Transient(String),
    Unrecognised(String),
    TableMissing(String),
}

fn classify_put(reply: Result<Reply, TransportError>) -> RowResult {
    match reply {
        Err(e) => RowResult::Transient(e.to_string()),
        Ok(r) if r.code == 0 && r.msg == "ok" => RowResult::Stored,
        Ok(r) if r.code == 0 => RowResult::Transient(r.msg),
        Ok(r) if r.code == -1 => RowResult::Poison(r.msg),
        Ok(r) if is_transient(r.code, &r.msg) => RowResult::Transient(r.msg),
        Ok(r) if r.msg.contains("does not exist") => RowResult::TableMissing(r.msg),
        Ok(r) if r.msg.contains("get default value map") || r.msg.contains("fail to get sql plan") => {
            RowResult::Poison(r.msg)
        }
        Ok(r) => RowResult::Unrecognised(r.msg),
    }
}

/// A row ready to send: its index in the `write` input and its SQL text.
struct Pending {
    index: usize,
    values: String,
}

/// How rows reach the table.
enum Backend {
    /// SQL text through an APIServer.
    Api(ApiClient),
    /// Puts straight to the tablets (the table found in ZooKeeper).
    Native { client: Arc<openmldb_client::Client>, database: String },
}

/// Writes rows into one OpenMLDB table.
pub struct OpenMldbWriter {
    backend: Backend,
    config: WriterConfig,
    table: String,
    info: TableInfo,
    retries: AtomicU64,
}

impl OpenMldbWriter {
    /// Find the table (refreshing the APIServer's catalog once if it is not
    /// there), creating the database and the table when the config allows.
    /// `record_columns` is the schema for `auto.create`.
    pub async fn connect(
        config: WriterConfig,
        table: &str,
        record_columns: Option<&[Column]>,
    ) -> Result<Self, WriterError> {
        let target = config.endpoint.describe();
        let setup = |message: String| WriterError::Setup { target: target.clone(), message };
        check_name(table).map_err(|e| setup(format!("table name {e}")))?;
        if config.upsert_requested {
            tracing::warn!(
                table,
                "insert.mode=UPSERT: OpenMLDB has no UPDATE or UPSERT; rows are written with INSERT OR IGNORE, \
                 which keeps the first copy of an identical row and never replaces a row"
            );
        }
        let (backend, info) = match &config.endpoint {
            Endpoint::ApiServer { apiserver, .. } => {
                let client = ApiClient::new(apiserver, config.request_timeout)?;
                let info = Self::open_api(&client, &config, table, record_columns).await?;
                (Backend::Api(client), info)
            }
            Endpoint::ZooKeeper(zk) => {
                let client = native::shared_client(zk, config.request_timeout).await.map_err(setup)?;
                let info = Self::open_native(&client, &config, table, record_columns).await?;
                (Backend::Native { client, database: zk.database.clone() }, info)
            }
        };
        tracing::debug!(table, target = %target, "writer connected");
        Ok(OpenMldbWriter { backend, config, table: table.to_string(), info, retries: AtomicU64::new(0) })
    }

    /// Finds the table in ZooKeeper, creating the database and the table
    /// through the nameserver when the config allows.
    async fn open_native(
        client: &openmldb_client::Client,
        config: &WriterConfig,
        table: &str,
        record_columns: Option<&[Column]>,
    ) -> Result<TableInfo, WriterError> {
        let target = config.endpoint.describe();
        let setup = |message: String| WriterError::Setup { target: target.clone(), message };
        let db = config.endpoint.database().to_string();
        let found = match client.table(&db, table) {
            Some(found) => Some(found),
            None => client.refresh().await.table(&db, table),
        };
        if let Some(found) = found {
            return Ok(native::table_info(&found));
        }
        let databases = client.databases().await.map_err(|e| setup(e.to_string()))?;
        if !databases.contains(&db) {
            if !config.create_database {
                return Err(setup(format!(
                    "database {db} does not exist; create it, or set \"openmldb.create.database\": \"true\""
                )));
            }
            client.create_database(&db).await.map_err(|e| setup(format!("CREATE DATABASE {db} failed: {e}")))?;
            tracing::info!(database = %db, "created the database");
        }
        if !config.auto_create {
            return Err(setup(format!(
                "table {db}.{table} does not exist; create it, or set \"auto.create\": \"true\""
            )));
        }
        let Some(columns) = record_columns else {
            return Err(WriterError::NoSchemaToCreate { target: target.clone(), table: format!("{db}.{table}") });
        };
        let (info, warning) = native::create_table_info(&db, table, columns, &config.index)
            .map_err(|e| setup(format!("auto.create: {e}")))?;
        if let Some(warning) = warning {
            tracing::warn!(table, "{warning}");
        }
        let created = client
            .create_table(info, Duration::from_secs(30))
            .await
            .map_err(|e| setup(format!("auto.create failed: {e}")))?;
        tracing::info!(table, "created the table through the nameserver");
        Ok(native::table_info(&created))
    }

    /// Finds the table through the APIServer (refreshing its catalog once
    /// if it is not there), creating the database and the table when the
    /// config allows.
    async fn open_api(
        client: &ApiClient,
        config: &WriterConfig,
        table: &str,
        record_columns: Option<&[Column]>,
    ) -> Result<TableInfo, WriterError> {
        let target = config.endpoint.describe();
        let setup = |message: String| WriterError::Setup { target: target.clone(), message };
        let db = config.endpoint.database().to_string();
        let mut info = Self::lookup(client, &db, table).await?;
        if info.is_none() {
            let databases = client.list_databases().await?;
            let exists =
                databases.body["dbs"].as_array().is_some_and(|dbs| dbs.iter().any(|d| d.as_str() == Some(db.as_str())));
            if !exists {
                if !config.create_database {
                    return Err(setup(format!(
                        "database {db} does not exist; create it, or set \"openmldb.create.database\": \"true\""
                    )));
                }
                let reply = client.execute(&db, &format!("CREATE DATABASE IF NOT EXISTS {db}")).await?;
                if !reply.is_ok() {
                    return Err(setup(format!("CREATE DATABASE {db} failed: {} (code {})", reply.msg, reply.code)));
                }
                tracing::info!(database = %db, "created the database");
            }
            if !config.auto_create {
                return Err(setup(format!(
                    "table {db}.{table} does not exist; create it, or set \"auto.create\": \"true\""
                )));
            }
            let Some(columns) = record_columns else {
                return Err(WriterError::NoSchemaToCreate { target: target.clone(), table: format!("{db}.{table}") });
            };
            let (ddl, warning) =
                create_table_sql(table, columns, &config.index).map_err(|e| setup(format!("auto.create: {e}")))?;
            if let Some(warning) = warning {
                tracing::warn!(table, "{warning}");
            }
            let reply = client.execute(&db, &ddl).await?;
            if !reply.is_ok() {
                return Err(setup(format!(
                    "auto.create failed: {} (code {}); statement: {ddl}",
                    reply.msg, reply.code
                )));
            }
            tracing::info!(table, ddl, "created the table");
            info = Self::lookup(client, &db, table).await?;
        }
        info.ok_or_else(|| setup(format!("table {db}.{table} is not visible after it was created")))
    }

    /// The table's schema, or `None` when it does not exist even after a
    /// catalog refresh.
    async fn lookup(client: &ApiClient, db: &str, table: &str) -> Result<Option<TableInfo>, WriterError> {
        for attempt in 0..2 {
            let reply = client.get_table(db, table).await?;
            if reply.is_ok() {
                let info = parse_table_info(db, table, &reply.body["table"])
                    .map_err(|e| WriterError::Setup { target: client.address().into(), message: e.to_string() })?;
                return Ok(Some(info));
            }
            if !matches!(reply.msg.as_str(), "Table not found" | "DB not found") {
                return Err(WriterError::Setup {
                    target: client.address().into(),
                    message: format!("GET table {db}.{table}: {} (code {})", reply.msg, reply.code),
                });
            }
            if attempt == 0 {
                // The APIServer caches its catalog; tables made by other
                // clients show up after a refresh (openmldb.md §1.4.8).
                client.refresh().await?;
            }
        }
        Ok(None)
    }

    pub fn schema(&self) -> &TableSchema {
        &self.info.schema
    }

    /// Requests retried since the writer was created.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Whether OpenMLDB can take `row` (types, NULLs, negative timestamps,
    /// index TS values, dates); `Err` names the column and the value.
    pub fn validate(&self, row: &Row) -> Result<(), String> {
        literal::check_row(row, &self.info.schema.columns, &self.info.ts_columns)
    }

    /// Write `rows` (cells in table column order). Returns what the server
    /// stored, what it never will, and what is left when retries ran out or
    /// `cancel` fired.
    pub async fn write(&self, rows: &[Row], cancel: &CancellationToken) -> WriteReport {
        self.write_observed(rows, cancel, &NoObserver).await
    }

    /// [`write`](Self::write), telling `observer` about every retry.
    pub async fn write_observed(
        &self,
        rows: &[Row],
        cancel: &CancellationToken,
        observer: &dyn WriteObserver,
    ) -> WriteReport {
        let client = match &self.backend {
            Backend::Api(client) => client,
            Backend::Native { client, database } => {
                let report = self.write_native(client, database, rows, cancel, observer).await;
                self.retries.fetch_add(report.retries, Ordering::Relaxed);
                return report;
            }
        };
        let building = thread_cpu_time();
        let mut report = WriteReport::default();
        let mut put_rows = Vec::new();
        let mut chunks: Vec<Vec<Pending>> = Vec::new();
        let mut current: Vec<Pending> = Vec::new();
        let mut current_bytes = 0usize;
        let budget = self.config.batch_bytes.saturating_sub(self.insert_prefix().len() + 16);
        for (index, row) in rows.iter().enumerate() {
            if let Err(reason) = self.validate(row) {
                report.poison.push(Poison::rejected(index, reason));
                continue;
            }
            if literal::needs_put(row) {
                put_rows.push(index);
                continue;
            }
            let mut values = String::new();
            literal::sql_values(row, &mut values);
            if !current.is_empty()
                && (current.len() >= self.config.batch_rows || current_bytes + values.len() + 1 > budget)
            {
                chunks.push(std::mem::take(&mut current));
                current_bytes = 0;
            }
            current_bytes += values.len() + 1;
            current.push(Pending { index, values });
        }
        if !current.is_empty() {
            chunks.push(current);
        }
        observer.built(thread_cpu_time().saturating_sub(building));
        let mut outcomes = futures::stream::iter(chunks)
            .map(|chunk| self.write_chunk(client, rows, chunk, cancel, observer))
            .buffer_unordered(self.config.max_inflight);
        while let Some(outcome) = outcomes.next().await {
            report.merge(outcome);
        }
        drop(outcomes);
        for index in put_rows {
            let outcome = self.write_one(client, index, &rows[index], cancel, observer).await;
            report.merge(outcome);
        }
        report.written.sort_unstable();
        report.poison.sort_unstable_by_key(|p| p.index);
        report.unresolved.sort_unstable();
        self.retries.fetch_add(report.retries, Ordering::Relaxed);
        report
    }

    fn insert_prefix(&self) -> String {
        let verb = match self.config.insert_mode {
            InsertMode::Insert => "INSERT",
            InsertMode::InsertOrIgnore => "INSERT OR IGNORE",
        };
        format!("{verb} INTO `{}` VALUES ", self.table)
    }

    fn insert_sql(&self, rows: &[Pending]) -> String {
        let prefix = self.insert_prefix();
        let mut sql = String::with_capacity(prefix.len() + rows.iter().map(|r| r.values.len() + 1).sum::<usize>());
        sql.push_str(&prefix);
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&row.values);
        }
        sql
    }

    /// Wait before retry number `attempt` (1-based), telling `observer`.
    /// False when retries are used up or the writer is cancelled.
    async fn backoff(
        &self,
        attempt: u32,
        error: &str,
        cancel: &CancellationToken,
        observer: &dyn WriteObserver,
    ) -> bool {
        if self.config.max_retries.is_some_and(|max| attempt > max) || cancel.is_cancelled() {
            return false;
        }
        let exponential = self.config.backoff.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let delay = exponential.min(self.config.backoff_max);
        // Up to 20% jitter, so writers that failed together do not retry together.
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let delay = delay.mul_f64(0.8 + (nanos % 1000) as f64 / 1000.0 * 0.4);
        observer.retrying(&self.table, attempt, error, delay);
        tokio::select! {
            _ = tokio::time::sleep(delay) => true,
            _ = cancel.cancelled() => false,
        }
    }

    async fn write_chunk(
        &self,
        client: &ApiClient,
        rows: &[Row],
        mut pending: Vec<Pending>,
        cancel: &CancellationToken,
        observer: &dyn WriteObserver,
    ) -> WriteReport {
        let mut report = WriteReport::default();
        let mut attempt = 0u32;
        // Replies that did not say the server is merely down or busy.
        let mut refusals = 0u32;
        while !pending.is_empty() {
            let sql = self.insert_sql(&pending);
            let result = classify_insert(client.execute(self.config.endpoint.database(), &sql).await);
            let error = match result {
                InsertResult::Stored => {
                    report.written.extend(pending.iter().map(|p| p.index));
                    return report;
                }
                InsertResult::BadRow { index, message } if index < pending.len() => {
                    // Nothing was stored; drop the bad row and send the rest now.
                    let bad = pending.remove(index);
                    report.poison.push(Poison::rejected(bad.index, message));
                    continue;
                }
                InsertResult::RowsFailed { count, peek, message }
                    if trusted_failures(count, &peek, pending.len()).is_some() =>
                {
                    // Exactly the listed rows failed; the others are stored.
                    let failed = trusted_failures(count, &peek, pending.len()).unwrap_or_default();
                    let mut still = Vec::with_capacity(failed.len());
                    for (position, row) in pending.into_iter().enumerate() {
                        if failed.binary_search(&position).is_ok() {
                            still.push(row);
                        } else {
                            report.written.push(row.index);
                        }
                    }
                    pending = still;
                    refusals += 1;
                    message
                }
                InsertResult::RowsFailed { message, .. } if self.config.insert_mode == InsertMode::InsertOrIgnore => {
                    // Unknown rows failed; sending them all again adds no duplicates.
                    refusals += 1;
                    message
                }
                InsertResult::RowsFailed { message, .. } | InsertResult::Rejected(message) => {
                    if message.starts_with("insert values ") {
                        tracing::warn!(
                            table = %self.table,
                            "{message}: the server does not say which rows were stored, so the batch is re-sent row \
                             by row; in insert.mode=INSERT rows already stored are stored again (INSERT_OR_IGNORE \
                             avoids that)"
                        );
                    }
                    return self.write_alone(client, rows, pending, report, cancel, observer).await;
                }
                InsertResult::Unrecognised(message) | InsertResult::BadRow { message, .. } => {
                    refusals += 1;
                    message
                }
                InsertResult::Transient(message) => message,
                InsertResult::TableMissing(message) => {
                    let _ = client.refresh().await;
                    refusals += 1;
                    message
                }
            };
            if refusals > self.config.max_refused_retries {
                tracing::warn!(
                    table = %self.table,
                    "{} rows refused {refusals} times ({error}); writing them one at a time",
                    pending.len()
                );
                report.last_error = Some(error);
                return self.write_alone(client, rows, pending, report, cancel, observer).await;
            }
            attempt += 1;
            if !self.backoff(attempt, &error, cancel, observer).await {
                report.last_error = Some(error);
                report.unresolved.extend(pending.iter().map(|p| p.index));
                return report;
            }
            report.last_error = Some(error);
            report.retries += 1;
        }
        report
    }

    /// Every pending row written on its own, after `report`.
    async fn write_alone(
        &self,
        client: &ApiClient,
        rows: &[Row],
        pending: Vec<Pending>,
        mut report: WriteReport,
        cancel: &CancellationToken,
        observer: &dyn WriteObserver,
    ) -> WriteReport {
        report.retries += 1;
        for row in pending {
            report.merge(self.write_one(client, row.index, &rows[row.index], cancel, observer).await);
        }
        report
    }

    /// Write one row alone until it is stored, refused, or retries run
    /// out: a one-row INSERT OR IGNORE in that mode, otherwise a PUT (PUT
    /// always appends, and is the only way to send NaN and infinities).
    async fn write_one(
        &self,
        client: &ApiClient,
        index: usize,
        row: &Row,
        cancel: &CancellationToken,
        observer: &dyn WriteObserver,
    ) -> WriteReport {
        let database = self.config.endpoint.database();
        let sql = (self.config.insert_mode == InsertMode::InsertOrIgnore && !literal::needs_put(row)).then(|| {
            let mut values = String::new();
            literal::sql_values(row, &mut values);
            self.insert_sql(&[Pending { index, values }])
        });
        let json = literal::put_values(row);
        let mut report = WriteReport::default();
        let mut attempt = 0u32;
        let mut refusals = 0u32;
        loop {
            let result = match &sql {
                Some(sql) => match classify_insert(client.execute(database, sql).await) {
                    InsertResult::Stored => RowResult::Stored,
                    InsertResult::BadRow { message, .. } | InsertResult::Rejected(message) => {
                        RowResult::Poison(message)
                    }
                    InsertResult::TableMissing(message) => RowResult::TableMissing(message),
                    InsertResult::Transient(message) => RowResult::Transient(message),
                    InsertResult::RowsFailed { message, .. } | InsertResult::Unrecognised(message) => {
                        RowResult::Unrecognised(message)
                    }
                },
                None => classify_put(client.put(database, &self.table, &json).await),
            };
            let error = match result {
                RowResult::Stored => {
                    report.written.push(index);
                    return report;
                }
                RowResult::Poison(message) => {
                    report.poison.push(Poison::rejected(index, message));
                    return report;
                }
                RowResult::Transient(message) => message,
                RowResult::Unrecognised(message) => {
                    refusals += 1;
                    message
                }
                RowResult::TableMissing(message) => {
                    let _ = client.refresh().await;
                    refusals += 1;
                    message
                }
            };
            if refusals > self.config.max_refused_retries {
                report.poison.push(Poison::rejected(
                    index,
                    format!("OpenMLDB refused the row {refusals} times without saying it is transient: {error}"),
                ));
                return report;
            }
            attempt += 1;
            if !self.backoff(attempt, &error, cancel, observer).await {
                report.last_error = Some(error);
                report.unresolved.push(index);
                return report;
            }
            report.last_error = Some(error);
            report.retries += 1;
        }
    }

    /// The native path: every row one Put per partition, all rows of the
    /// call on the wire at once (one pipelined batch per tablet). Per reply class (see
    /// `openmldb_client::client`): content the SDK would refuse is poison at
    /// once, with the column and value; a cluster that is down, moving or
    /// full is waited for with the writer's backoff (`max.retries`); a
    /// tablet that refuses a row, or a table that is gone, counts towards
    /// `max.refused.retries`, after which the row is poison with the
    /// tablet's message.
    async fn write_native(
        &self,
        client: &openmldb_client::Client,
        database: &str,
        rows: &[Row],
        cancel: &CancellationToken,
        observer: &dyn WriteObserver,
    ) -> WriteReport {
        let building = thread_cpu_time();
        let mut report = WriteReport::default();
        // Rows still to write: (index, refusals so far) and their values, side by side.
        let mut pending: Vec<(usize, u32)> = Vec::with_capacity(rows.len());
        let mut values: Vec<Vec<openmldb_client::Value>> = Vec::with_capacity(rows.len());
        for (index, row) in rows.iter().enumerate() {
            match self.validate(row) {
                Ok(()) => {
                    pending.push((index, 0));
                    values.push(native::values(row));
                }
                Err(reason) => report.poison.push(Poison::rejected(index, reason)),
            }
        }
        let options = openmldb_client::WriteOptions {
            put_if_absent: self.config.insert_mode == InsertMode::InsertOrIgnore,
            memory_limit: self.config.memory_limit,
        };
        observer.built(thread_cpu_time().saturating_sub(building));
        let mut attempt = 0u32;
        while !pending.is_empty() {
            let results = client.put_rows(database, &self.table, &values, options).await;
            let mut again = Vec::new();
            let mut again_values = Vec::new();
            let mut error = None;
            let mut table_missing = false;
            for (((index, refusals), row_values), result) in pending.into_iter().zip(values).zip(results) {
                let failure = match result {
                    Ok(()) => {
                        report.written.push(index);
                        continue;
                    }
                    Err(failure) => failure,
                };
                use openmldb_client::PutError;
                match &failure {
                    PutError::Content(_) | PutError::Key(_) | PutError::IndexTs { .. } => {
                        report.poison.push(Poison::rejected(index, failure.to_string()));
                    }
                    PutError::Unavailable(_) => {
                        error = Some(failure.to_string());
                        again.push((index, refusals));
                        again_values.push(row_values);
                    }
                    PutError::Rejected { .. } | PutError::NoTable { .. } => {
                        table_missing |= matches!(failure, PutError::NoTable { .. });
                        if refusals + 1 > self.config.max_refused_retries {
                            report.poison.push(Poison::rejected(
                                index,
                                format!("OpenMLDB refused the row {} times: {failure}", refusals + 1),
                            ));
                        } else {
                            error = Some(failure.to_string());
                            again.push((index, refusals + 1));
                            again_values.push(row_values);
                        }
                    }
                }
            }
            values = again_values;
            pending = again;
            let Some(error) = error else { continue };
            if table_missing {
                client.refresh().await;
            }
            attempt += 1;
            if !self.backoff(attempt, &error, cancel, observer).await {
                report.unresolved.extend(pending.iter().map(|(index, _)| *index));
                report.last_error = Some(error);
                break;
            }
            report.last_error = Some(error);
            report.retries += 1;
        }
        report.written.sort_unstable();
        report.poison.sort_unstable_by_key(|p| p.index);
        report.unresolved.sort_unstable();
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: i64, msg: &str) -> Result<Reply, TransportError> {
        Ok(Reply { code, msg: msg.into(), body: serde_json::Value::Null })
    }

    #[test]
    fn insert_replies_are_classified() {
        assert_eq!(classify_insert(reply(0, "ok")), InsertResult::Stored);
        assert_eq!(
            classify_insert(reply(2000, "insert values 2 failed, failed rows peek: 1,3")),
            InsertResult::RowsFailed {
                count: 2,
                peek: vec![1, 3],
                message: "insert values 2 failed, failed rows peek: 1,3".into()
            }
        );
        assert!(matches!(
            classify_insert(reply(2000, "Fail to get insert info--fail to parse row[4]: 'x'")),
            InsertResult::BadRow { index: 4, .. }
        ));
        assert!(matches!(
            classify_insert(reply(2001, "put failed--ReturnCode[103]--table is follower")),
            InsertResult::Transient(_)
        ));
        assert!(
            matches!(
                classify_insert(reply(
                    2001,
                    "put failed--ReturnCode[116]--1.0: empty dimension--tid 1. RevertPut success."
                )),
                InsertResult::Unrecognised(_)
            ),
            "a tablet refusal that is not a passing state is retried a bounded number of times"
        );
        assert!(matches!(classify_insert(reply(3, "something new")), InsertResult::Unrecognised(_)));
        assert!(matches!(
            classify_insert(reply(2000, "Fail to get insert info--demo-t not exist")),
            InsertResult::TableMissing(_)
        ));
        assert!(matches!(
            classify_insert(reply(1001, "create logic plan tree failed--Syntax error")),
            InsertResult::Rejected(_)
        ));
        assert!(matches!(classify_insert(reply(0, "fail to get table t tablet")), InsertResult::Transient(_)));
        let transport = Err(TransportError::Unreachable { addr: "x:1".into(), reason: "refused".into() });
        assert!(matches!(classify_insert(transport), InsertResult::Transient(_)));
    }

    #[test]
    fn a_failed_row_list_is_trusted_only_when_it_fits_the_statement() {
        assert_eq!(trusted_failures(2, &[3, 1], 5), Some(vec![1, 3]));
        assert_eq!(trusted_failures(2, &[1, 5], 5), None, "index 5 is outside a 5-row statement");
        assert_eq!(trusted_failures(2, &[1, 1], 5), None, "listed twice");
        assert_eq!(trusted_failures(12, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 20), None, "more failed than listed");
        assert_eq!(trusted_failures(1, &[], 5), None);
    }
}
