//! The SQL capability a connector grants its plugin: one MySQL/MariaDB
//! connection, named by the connector's `connection.url`, `connection.user`
//! and `connection.password`. It owns the JDBC URL's parsing, the
//! connection (on its own thread, so a plugin call may block on it from
//! any thread) and the translation between MySQL's values and the WIT's.
//! The plugin sees results, never the credentials.

pub mod schema;
mod url;
mod values;

pub use url::{MysqlUrl, UrlError};

use crate::openmldb::ConnectorConfig;
use crate::plugin::bindings::sql::{ResultSet, SqlError, SqlErrorKind, SqlValue};
use mysql_async::prelude::Queryable;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// Longest one query or execute may take before the plugin gets `timeout`.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Where and as whom to connect.
#[derive(Clone)]
pub struct SqlGrantConfig {
    pub url: MysqlUrl,
    pub user: String,
    pub password: String,
    pub call_timeout: Duration,
}

impl std::fmt::Debug for SqlGrantConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlGrantConfig").field("url", &self.url).field("user", &self.user).finish_non_exhaustive()
    }
}

impl SqlGrantConfig {
    /// The grant a connector config makes: `connection.url` (a
    /// `jdbc:mysql://` URL), `connection.user`, `connection.password`.
    /// `None` when the config has no `connection.url`.
    pub fn from_connector(config: &ConnectorConfig) -> Result<Option<Self>, UrlError> {
        let Some(raw) = config.get("connection.url") else { return Ok(None) };
        let url = MysqlUrl::parse(raw)?;
        let user = config.get("connection.user").cloned().or_else(|| url.user.clone()).unwrap_or_default();
        let password = config.get("connection.password").cloned().or_else(|| url.password.clone()).unwrap_or_default();
        Ok(Some(SqlGrantConfig { url, user, password, call_timeout: DEFAULT_CALL_TIMEOUT }))
    }

    fn opts(&self) -> mysql_async::Opts {
        mysql_async::OptsBuilder::default()
            .ip_or_hostname(self.url.host.clone())
            .tcp_port(self.url.port)
            .user((!self.user.is_empty()).then(|| self.user.clone()))
            .pass((!self.password.is_empty()).then(|| self.password.clone()))
            .db_name(self.url.database.clone())
            .prefer_socket(false)
            // TIMESTAMP columns read and compare as UTC wall-clock times,
            // whatever the server's zone (documented in the WIT).
            .init(vec!["SET time_zone = '+00:00'", "SET NAMES utf8mb4"])
            .into()
    }
}

enum Request {
    Query {
        statement: String,
        params: Vec<SqlValue>,
        reply: mpsc::SyncSender<Result<ResultSet, SqlError>>,
    },
    Execute {
        statement: String,
        params: Vec<Vec<SqlValue>>,
        reply: mpsc::SyncSender<Result<Vec<u64>, SqlError>>,
    },
    /// The host's transaction around one sink batch.
    Transaction {
        step: Step,
        reply: mpsc::SyncSender<Result<(), SqlError>>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    Begin,
    Commit,
    Rollback,
}

/// A granted connection. Calls block the calling thread; the connection
/// lives on a thread of its own and reconnects after a failure.
///
/// The host may wrap a sink plugin's whole batch in one transaction
/// ([`begin`](Self::begin) … [`commit`](Self::commit)): every `execute`
/// of the plugin then joins it (each call still all-or-nothing, through a
/// savepoint), so a batch is stored whole or not at all, however many
/// statements the plugin splits it into. A connection lost inside the
/// transaction loses the transaction: every later call of it fails until
/// the host rolls back and retries the batch.
#[derive(Clone)]
pub struct SqlConnection {
    requests: mpsc::Sender<Request>,
    call_timeout: Duration,
    describe: String,
}

impl std::fmt::Debug for SqlConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlConnection").field("to", &self.describe).finish()
    }
}

impl SqlConnection {
    /// Start the connection's thread. Connecting happens on first use, so
    /// a database that is down shows up as a `connection` error the plugin
    /// can retry, not as a failure here.
    pub fn open(config: SqlGrantConfig) -> std::io::Result<SqlConnection> {
        let (requests, incoming) = mpsc::channel();
        let describe = format!("mysql://{}@{}", config.user, config.url.address());
        let call_timeout = config.call_timeout;
        let thread_name = format!("sql-{}", config.url.address());
        std::thread::Builder::new().name(thread_name).spawn(move || serve(config, incoming))?;
        Ok(SqlConnection { requests, call_timeout, describe })
    }

    pub fn query(&self, statement: String, params: Vec<SqlValue>) -> Result<ResultSet, SqlError> {
        self.query_by(statement, params, None)
    }

    /// A query answered by `deadline` (when sooner than the call timeout)
    /// or ended with `timeout`: a plugin's call deadline bounds its SQL.
    pub fn query_by(
        &self,
        statement: String,
        params: Vec<SqlValue>,
        deadline: Option<Instant>,
    ) -> Result<ResultSet, SqlError> {
        values::check_params(&params).map_err(|reason| error(SqlErrorKind::Statement, None, reason))?;
        let (reply, answer) = mpsc::sync_channel(1);
        self.call_by(Request::Query { statement, params, reply }, answer, deadline)
    }

    pub fn execute(&self, statement: String, params: Vec<Vec<SqlValue>>) -> Result<Vec<u64>, SqlError> {
        self.execute_by(statement, params, None)
    }

    /// [`execute`](Self::execute), answered by `deadline` like [`query_by`](Self::query_by).
    pub fn execute_by(
        &self,
        statement: String,
        params: Vec<Vec<SqlValue>>,
        deadline: Option<Instant>,
    ) -> Result<Vec<u64>, SqlError> {
        for row in &params {
            values::check_params(row).map_err(|reason| error(SqlErrorKind::Statement, None, reason))?;
        }
        let (reply, answer) = mpsc::sync_channel(1);
        self.call_by(Request::Execute { statement, params, reply }, answer, deadline)
    }

    /// Start the host's transaction around a batch.
    pub fn begin(&self) -> Result<(), SqlError> {
        self.transaction(Step::Begin)
    }

    /// Commit the batch's transaction. An error means it may not be stored.
    pub fn commit(&self) -> Result<(), SqlError> {
        self.transaction(Step::Commit)
    }

    /// Roll the batch's transaction back (nothing of it stays).
    pub fn rollback(&self) -> Result<(), SqlError> {
        self.transaction(Step::Rollback)
    }

    fn transaction(&self, step: Step) -> Result<(), SqlError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.call(Request::Transaction { step, reply }, answer)
    }

    fn call<T>(&self, request: Request, answer: mpsc::Receiver<Result<T, SqlError>>) -> Result<T, SqlError> {
        self.call_by(request, answer, None)
    }

    fn call_by<T>(
        &self,
        request: Request,
        answer: mpsc::Receiver<Result<T, SqlError>>,
        deadline: Option<Instant>,
    ) -> Result<T, SqlError> {
        let timeout = deadline
            .map(|d| d.saturating_duration_since(Instant::now()).min(self.call_timeout))
            .unwrap_or(self.call_timeout);
        if self.requests.send(request).is_err() {
            return Err(error(
                SqlErrorKind::Connection,
                None,
                format!("the connection to {} is closed", self.describe),
            ));
        }
        match answer.recv_timeout(timeout) {
            Ok(result) => result,
            Err(mpsc::RecvTimeoutError::Timeout) => Err(error(
                SqlErrorKind::Timeout,
                None,
                format!("no answer from {} within {timeout:?} (the call's deadline or the SQL timeout)", self.describe),
            )),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(error(SqlErrorKind::Connection, None, format!("the connection to {} is closed", self.describe)))
            }
        }
    }
}

/// A statement a plugin sent to a [`SqlConnection::recording`] connection.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordedCall {
    Query { statement: String, params: Vec<SqlValue> },
    Execute { statement: String, params: Vec<Vec<SqlValue>> },
}

impl SqlConnection {
    /// A connection to no database, for `plugin test`: every statement
    /// succeeds (a query with no rows, an execute with one row affected per
    /// parameter set) and is recorded in `calls`, in order. Parameters are
    /// checked as a real connection checks them.
    pub fn recording(calls: Arc<Mutex<Vec<RecordedCall>>>) -> std::io::Result<SqlConnection> {
        let (requests, incoming) = mpsc::channel::<Request>();
        std::thread::Builder::new().name("sql-recording".into()).spawn(move || {
            let record = |call: RecordedCall| calls.lock().unwrap_or_else(|p| p.into_inner()).push(call);
            while let Ok(request) = incoming.recv() {
                match request {
                    Request::Query { statement, params, reply } => {
                        record(RecordedCall::Query { statement, params });
                        let _ = reply.send(Ok(ResultSet { columns: Vec::new(), rows: Vec::new() }));
                    }
                    Request::Execute { statement, params, reply } => {
                        let affected = vec![1; params.len()];
                        record(RecordedCall::Execute { statement, params });
                        let _ = reply.send(Ok(affected));
                    }
                    Request::Transaction { reply, .. } => {
                        let _ = reply.send(Ok(()));
                    }
                }
            }
        })?;
        Ok(SqlConnection {
            requests,
            call_timeout: Duration::from_secs(30),
            describe: "a recording (no database)".into(),
        })
    }
}

fn error(kind: SqlErrorKind, code: Option<u16>, message: String) -> SqlError {
    SqlError { kind, code, message }
}

/// The host's transaction on the connection thread.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Transaction {
    None,
    Open,
    /// The connection broke inside it: the server rolled it back.
    Lost,
}

/// The connection thread: one request at a time, in order.
fn serve(config: SqlGrantConfig, incoming: mpsc::Receiver<Request>) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("cannot start the SQL connection's runtime: {e}");
            return;
        }
    };
    let opts = config.opts();
    let mut conn: Option<mysql_async::Conn> = None;
    let mut transaction = Transaction::None;
    let lost = || {
        error(
            SqlErrorKind::Connection,
            None,
            format!(
                "{}: the connection broke inside the batch's transaction, which is rolled back",
                config.url.address()
            ),
        )
    };
    while let Ok(request) = incoming.recv() {
        runtime.block_on(async {
            if transaction == Transaction::Lost {
                match request {
                    Request::Transaction { step: Step::Rollback, reply } => {
                        transaction = Transaction::None;
                        let _ = reply.send(Ok(()));
                    }
                    other => reply_error(other, lost()),
                }
                return;
            }
            let live = match conn.take() {
                Some(live) => Ok(live),
                None => mysql_async::Conn::new(opts.clone()).await.map_err(|e| translate(&config, e)),
            };
            let mut live = match live {
                Ok(live) => live,
                Err(e) => {
                    if transaction == Transaction::Open {
                        transaction = Transaction::Lost;
                    }
                    return reply_error(request, e);
                }
            };
            let in_transaction = transaction == Transaction::Open;
            let healthy = match request {
                Request::Query { statement, params, reply } => {
                    let result = run_query(&mut live, &statement, params).await.map_err(|e| translate(&config, e));
                    let healthy = !matches!(&result, Err(e) if e.kind == SqlErrorKind::Connection);
                    let _ = reply.send(result);
                    healthy
                }
                Request::Execute { statement, params, reply } => {
                    let result = match run_execute(&mut live, &statement, params, in_transaction).await {
                        Ok(affected) => Ok(affected),
                        Err(ExecuteError::Statement(e)) => Err(translate(&config, e)),
                        Err(ExecuteError::Lost(e)) => {
                            transaction = Transaction::Lost;
                            let mut e = translate(&config, e);
                            e.kind = SqlErrorKind::Connection;
                            Err(e)
                        }
                    };
                    let healthy = !matches!(&result, Err(e) if e.kind == SqlErrorKind::Connection);
                    let _ = reply.send(result);
                    healthy
                }
                Request::Transaction { step, reply } => {
                    let statement = match step {
                        Step::Begin => "START TRANSACTION",
                        Step::Commit => "COMMIT",
                        Step::Rollback => "ROLLBACK",
                    };
                    let result = live.query_drop(statement).await.map_err(|e| translate(&config, e));
                    let healthy = !matches!(&result, Err(e) if e.kind == SqlErrorKind::Connection);
                    transaction = match (step, &result) {
                        (Step::Begin, Ok(())) => Transaction::Open,
                        _ => Transaction::None,
                    };
                    let _ = reply.send(result);
                    healthy
                }
            };
            // A broken connection is dropped; the next request reconnects,
            // outside the transaction it lost.
            if healthy {
                conn = Some(live);
            } else if transaction == Transaction::Open {
                transaction = Transaction::Lost;
            }
        });
    }
    if let Some(live) = conn {
        let _ = runtime.block_on(live.disconnect());
    }
}

fn reply_error(request: Request, e: SqlError) {
    match request {
        Request::Query { reply, .. } => {
            let _ = reply.send(Err(e));
        }
        Request::Execute { reply, .. } => {
            let _ = reply.send(Err(e));
        }
        Request::Transaction { reply, .. } => {
            let _ = reply.send(Err(e));
        }
    }
}

async fn run_query(
    conn: &mut mysql_async::Conn,
    statement: &str,
    params: Vec<SqlValue>,
) -> Result<ResultSet, mysql_async::Error> {
    let params = values::params(params);
    let mut result = conn.exec_iter(statement, params).await?;
    let columns = result.columns_ref().iter().map(values::column).collect();
    let rows = result
        .reduce(Vec::new(), |mut rows, row: mysql_async::Row| {
            let columns = row.columns();
            rows.push(columns.iter().zip(row.unwrap_raw()).map(|(column, cell)| values::value(column, cell)).collect());
            rows
        })
        .await?;
    // Statements with several result sets: the rest are read and dropped.
    result.drop_result().await?;
    Ok(ResultSet { columns, rows })
}

/// One `execute` call, all of it or nothing: its own transaction, or,
/// inside the host's, a savepoint rolled back when a statement fails.
async fn run_execute(
    conn: &mut mysql_async::Conn,
    statement: &str,
    params: Vec<Vec<SqlValue>>,
    in_transaction: bool,
) -> Result<Vec<u64>, ExecuteError> {
    if !in_transaction {
        let mut tx = conn.start_transaction(mysql_async::TxOpts::default()).await?;
        let mut affected = Vec::with_capacity(params.len());
        for row in params {
            tx.exec_drop(statement, values::params(row)).await?;
            affected.push(tx.affected_rows());
        }
        tx.commit().await?;
        return Ok(affected);
    }
    conn.query_drop("SAVEPOINT rmq_openmldb_call").await.map_err(ExecuteError::Lost)?;
    let mut affected = Vec::with_capacity(params.len());
    for row in params {
        if let Err(e) = conn.exec_drop(statement, values::params(row)).await {
            // Undo this call's earlier statements; the batch's stay. When
            // the savepoint is gone (a deadlock rolled the whole
            // transaction back), so is the transaction.
            return match conn.query_drop("ROLLBACK TO SAVEPOINT rmq_openmldb_call").await {
                Ok(()) => Err(ExecuteError::Statement(e)),
                Err(_) => Err(ExecuteError::Lost(e)),
            };
        }
        affected.push(conn.affected_rows());
    }
    conn.query_drop("RELEASE SAVEPOINT rmq_openmldb_call").await.map_err(ExecuteError::Lost)?;
    Ok(affected)
}

/// How an `execute` inside the host's transaction failed.
enum ExecuteError {
    /// The call's statements are undone; the transaction goes on.
    Statement(mysql_async::Error),
    /// The transaction is gone with this error.
    Lost(mysql_async::Error),
}

impl From<mysql_async::Error> for ExecuteError {
    fn from(e: mysql_async::Error) -> Self {
        ExecuteError::Statement(e)
    }
}

/// A driver error as the plugin sees it: what kind, the server's code,
/// and a message that says which database.
fn translate(config: &SqlGrantConfig, e: mysql_async::Error) -> SqlError {
    let at = config.url.address();
    match e {
        mysql_async::Error::Server(server) => {
            // Access denied and unknown database: the grant itself is wrong.
            let kind = match server.code {
                1040 | 1053 | 1205 | 1213 | 2006 | 2013 => SqlErrorKind::Connection,
                _ => SqlErrorKind::Statement,
            };
            error(kind, Some(server.code), format!("{at}: {} (MySQL error {})", server.message, server.code))
        }
        mysql_async::Error::Io(io) => error(SqlErrorKind::Connection, None, format!("cannot reach {at}: {io}")),
        mysql_async::Error::Driver(driver) => {
            let text = driver.to_string();
            let kind = if text.contains("onnection") { SqlErrorKind::Connection } else { SqlErrorKind::Statement };
            error(kind, None, format!("{at}: {text}"))
        }
        other => error(SqlErrorKind::Connection, None, format!("{at}: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grant_comes_from_the_connection_keys() {
        let config: ConnectorConfig = [
            ("connection.url", "jdbc:mysql://127.0.0.1:3307/shop?useSSL=false"),
            ("connection.user", "reader"),
            ("connection.password", "pw"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let grant = SqlGrantConfig::from_connector(&config).unwrap().unwrap();
        assert_eq!((grant.url.host.as_str(), grant.url.port), ("127.0.0.1", 3307));
        assert_eq!((grant.user.as_str(), grant.password.as_str()), ("reader", "pw"));
        assert!(!format!("{grant:?}").contains("pw"), "Debug must not print the password");
        assert!(SqlGrantConfig::from_connector(&ConnectorConfig::new()).unwrap().is_none());
    }

    #[test]
    fn an_unreachable_database_is_a_connection_error_naming_it() {
        let url = MysqlUrl::parse("jdbc:mysql://127.0.0.1:9").unwrap();
        let grant =
            SqlGrantConfig { url, user: "u".into(), password: "p".into(), call_timeout: Duration::from_secs(10) };
        let conn = SqlConnection::open(grant).unwrap();
        let e = conn.query("SELECT 1".into(), vec![]).unwrap_err();
        assert_eq!(e.kind, SqlErrorKind::Connection);
        assert!(e.message.contains("127.0.0.1:9"), "{}", e.message);
    }
}
