//! The APIServer's HTTP surface (openmldb.md §1): one handler for every
//! path, HTTP 200 with a `{"code","msg"}` envelope, routing errors, the ten
//! routes, PUT's validation order and messages. Plus `/__standin/*`, the
//! admin routes real OpenMLDB does not have (faults, stats, external DDL).

use crate::json::{self, Json};
use crate::sql;
use crate::store::{Catalog, ColType, Outcome, PutFaults, Table, Value, parse_date};
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Which APIServer release's error wording to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wording {
    /// v0.9.3, the latest release: "convertion failed on col …" (sic).
    V093,
    /// Unreleased main after v0.9.3: "conversion failed on col …".
    Current,
}

/// Faults to inject, set through `POST /__standin/faults`.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    /// The next N write requests fail: code 2001 `table is follower`.
    pub fail_next_writes: u32,
    /// The next N write requests fail: code 2001 `exceed max memory`.
    pub exceed_memory_writes: u32,
    /// Row indexes that fail in the next multi-row INSERT (others are stored).
    pub fail_rows: Vec<usize>,
    /// Rows holding one of these strings always fail: the tablet answers
    /// 116 (kPutFailed), which is not a passing state.
    pub refuse_strings: Vec<String>,
    /// This share of rows (0-100, picked at random) fails with 103, a
    /// passing state: the row goes in when sent again.
    pub fail_percent: u32,
    /// Added to every request.
    pub latency: Duration,
    /// Connections are refused until then.
    pub refuse_until: Option<Instant>,
}

#[derive(Debug, Default)]
pub struct Stats {
    pub requests: u64,
    pub write_requests: u64,
    pub rows_stored: u64,
}

pub struct State {
    pub catalog: Mutex<Catalog>,
    pub faults: Mutex<Faults>,
    pub stats: Mutex<Stats>,
    /// Tables created through `/__standin/external-sql` that the APIServer's
    /// catalog cache has not seen yet (until `POST /refresh`).
    pub unrefreshed: Mutex<HashSet<(String, String)>>,
    pub wording: Wording,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn envelope(code: i64, msg: &str) -> Json {
    Json::Object(vec![("code".into(), Json::Int(code)), ("msg".into(), Json::String(msg.into()))])
}

fn ok_with(key: &str, value: Json) -> Json {
    Json::Object(vec![("code".into(), Json::Int(0)), ("msg".into(), Json::String("ok".into())), (key.into(), value)])
}

/// The brpc URL check: no `.` or `%` in path segments (§1.2).
fn valid_url(path: &str, query: Option<&str>) -> bool {
    let segment_char = |c: char| c.is_ascii_alphanumeric() || "-_~!$&'()*+,;=:@".contains(c);
    let path_ok = path == "/"
        || (path.starts_with('/') && path[1..].split('/').all(|s| !s.is_empty() && s.chars().all(segment_char)));
    let word = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_');
    let query_ok = query.is_none_or(|q| {
        q.split(['&', ';']).all(|pair| match pair.split_once('=') {
            Some((k, v)) => word(k) && !v.is_empty() && v.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-'),
            None => false,
        })
    });
    path_ok && query_ok
}

impl State {
    pub fn new(tablets: u32, wording: Wording) -> Self {
        State {
            catalog: Mutex::new(Catalog::new(tablets)),
            faults: Mutex::new(Faults::default()),
            stats: Mutex::new(Stats::default()),
            unrefreshed: Mutex::new(HashSet::new()),
            wording,
        }
    }

    /// Handle one request; the reply is always HTTP 200 with this body.
    pub fn handle(&self, method: &str, path: &str, query: Option<&str>, body: &[u8]) -> Json {
        lock(&self.stats).requests += 1;
        if let Some(admin) = path.strip_prefix("/__standin/") {
            return self.admin(method, admin, body);
        }
        if !valid_url(path, query) {
            return envelope(-1, "invalid url");
        }
        if !matches!(method, "GET" | "PUT" | "POST") {
            return envelope(-1, "unsupported method");
        }
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (method, segments.as_slice()) {
            ("POST", ["dbs", db]) => self.query(db, body),
            ("PUT", ["dbs", db, "tables", table]) => self.put(db, table, body),
            ("POST", ["dbs", db, kind @ ("deployments" | "procedures"), name]) => {
                self.call_deployment(db, kind, name, body)
            }
            ("GET", ["dbs", db, "deployments" | "procedures", name]) => {
                envelope(-1, &format!("{name} does not exist in {db}"))
            }
            ("GET", ["dbs"]) => {
                let dbs = lock(&self.catalog).database_names().into_iter().map(Json::String).collect();
                ok_with("dbs", Json::Array(dbs))
            }
            ("GET", ["dbs", db, "tables"]) => {
                let catalog = lock(&self.catalog);
                let hidden = lock(&self.unrefreshed);
                match catalog.databases.get(*db) {
                    None => envelope(-1, "DB not found"),
                    Some(tables) => ok_with(
                        "tables",
                        Json::Array(
                            tables
                                .values()
                                .filter(|t| !hidden.contains(&(t.db.clone(), t.name.clone())))
                                .map(Table::info_json)
                                .collect(),
                        ),
                    ),
                }
            }
            ("GET", ["dbs", db, "tables", table]) => {
                let catalog = lock(&self.catalog);
                if !catalog.databases.contains_key(*db) {
                    return envelope(-1, "DB not found");
                }
                let hidden = lock(&self.unrefreshed).contains(&(db.to_string(), table.to_string()));
                match catalog.table(db, table) {
                    Some(t) if !hidden => ok_with("table", t.info_json()),
                    _ => envelope(-1, "Table not found"),
                }
            }
            ("POST", ["refresh"]) => {
                lock(&self.unrefreshed).clear();
                envelope(0, "ok")
            }
            _ => envelope(-1, "no match method"),
        }
    }

    fn call_deployment(&self, db: &str, _kind: &str, name: &str, body: &[u8]) -> Json {
        let Ok(request) = json::parse(body) else { return envelope(-1, "Request body json parse failed") };
        match request.get("input") {
            Some(Json::Array(rows)) if !rows.is_empty() => envelope(-1, &format!("{name} does not exist in {db}")),
            _ => envelope(-1, "Field input is invalid"),
        }
    }

    /// `POST /dbs/{db}` (§1.4.2).
    fn query(&self, db: &str, body: &[u8]) -> Json {
        let invalid = |reason: &str| envelope(-1, &format!("Json parse failed, INVALID_ARGUMENT: {reason}"));
        let request = match json::parse(body) {
            Ok(r @ Json::Object(_)) => r,
            _ => return invalid("req is not object"),
        };
        let Some(mode) = request.get("mode").and_then(Json::as_str) else { return invalid("mode parse failed") };
        let Some(sql_text) = request.get("sql").and_then(Json::as_str) else { return invalid("sql parse failed") };
        if request.get("timeout").is_some_and(|t| !t.is_int64()) {
            return invalid("timeout parse failed");
        }
        let nan_as_null = match request.get("write_nan_and_inf_null") {
            None => false,
            Some(Json::Bool(b)) => *b,
            Some(_) => return invalid("write_nan_and_inf_null parse failed"),
        };
        if request.get("input").is_some_and(|i| !matches!(i, Json::Object(_))) {
            return invalid("input parse failed");
        }
        let mode = mode.to_ascii_lowercase();
        if !["offsync", "offasync", "online", "onsync"].contains(&mode.as_str()) {
            return envelope(-1, &format!("Invalid mode {mode}"));
        }
        let statement = match sql::parse(sql_text) {
            Ok(s) => s,
            Err(e) => return envelope(1001, &format!("create logic plan tree failed--{}", e.0)),
        };
        let is_write = matches!(statement, sql::Statement::Insert { .. });
        if is_write && !mode.starts_with("on") {
            return envelope(2000, "the stand-in does not run offline jobs: INSERT needs mode online");
        }
        let outcome = {
            let mut catalog = lock(&self.catalog);
            if is_write {
                lock(&self.stats).write_requests += 1;
            }
            let mut faults = StatementFaults::take(&mut lock(&self.faults), is_write);
            let before = count_rows(&catalog);
            let outcome = catalog.execute(db, statement, &mut faults);
            let after = count_rows(&catalog);
            lock(&self.stats).rows_stored += after.saturating_sub(before);
            outcome
        };
        match outcome {
            Outcome::Ok => envelope(0, "ok"),
            Outcome::Error { code, msg } => envelope(code, &msg),
            Outcome::Rows { schema, rows } => {
                let data = Json::Object(vec![
                    ("schema".into(), Json::Array(schema.into_iter().map(|s| Json::String(s.into())).collect())),
                    (
                        "data".into(),
                        Json::Array(
                            rows.iter()
                                .map(|r| Json::Array(r.iter().map(|v| v.to_json(nan_as_null)).collect()))
                                .collect(),
                        ),
                    ),
                ]);
                ok_with("data", data)
            }
        }
    }

    /// `PUT /dbs/{db}/tables/{table}`, in the server's order (§1.4.1).
    fn put(&self, db: &str, table_name: &str, body: &[u8]) -> Json {
        let request = match json::parse(body) {
            Ok(r) => r,
            Err(code) => return envelope(-1, &format!("Json parse failed, error code: {}", code as i32)),
        };
        let values = match request.get("value") {
            Some(Json::Array(rows)) if rows.len() == 1 => match &rows[0] {
                Json::Array(values) => values.clone(),
                _ => return envelope(-1, "Invalid value in body, only support to put one row"),
            },
            _ => return envelope(-1, "Invalid value in body, only support to put one row"),
        };
        let mut catalog = lock(&self.catalog);
        lock(&self.stats).write_requests += 1;
        let placeholders = vec!["?"; values.len()].join(",");
        let Some(table) = catalog.table_mut(db, table_name) else {
            return envelope(
                2000,
                &format!("fail to get insert info--table with name {table_name} in db {db} does not exist"),
            );
        };
        if values.is_empty() {
            return envelope(
                2000,
                &format!(
                    "fail to get insert info--fail to get sql plan with sql insert into {table_name} values({placeholders});"
                ),
            );
        }
        if values.len() < table.columns.len() {
            return envelope(
                2000,
                &format!(
                    "fail to get insert info--get default value map of insert into {table_name} values({placeholders}); failed"
                ),
            );
        }
        if values.len() != table.columns.len() {
            return envelope(-1, "column size != schema size");
        }
        for (value, column) in values.iter().zip(&table.columns) {
            if column.ty == ColType::Varchar && !matches!(value, Json::Null | Json::String(_)) {
                return envelope(-1, &format!("value is not string for col {}", column.name));
            }
        }
        let mut row = Vec::with_capacity(values.len());
        for (position, value) in values.iter().enumerate() {
            match json_to_value(value, table, position, self.wording) {
                Some(v) => row.push(v),
                None => {
                    let column = &table.columns[position];
                    let shown = value.as_str().unwrap_or("");
                    let msg = match self.wording {
                        Wording::V093 => format!(
                            "convertion failed on col {}[{}] with value {shown}",
                            column.name,
                            column.ty.sdk_code()
                        ),
                        Wording::Current => {
                            format!(
                                "conversion failed on col {}[{}] with value {shown}",
                                column.name,
                                column.ty.sdk_code()
                            )
                        }
                    };
                    return envelope(-1, &msg);
                }
            }
        }
        let mut faults = StatementFaults::take(&mut lock(&self.faults), true);
        if let Some(tablet_msg) = faults.row_fault(0, &row, table) {
            return envelope(2001, &tablet_msg);
        }
        if table.put(row, false) {
            lock(&self.stats).rows_stored += 1;
        }
        envelope(0, "ok")
    }

    /// The latency to add before answering.
    pub fn latency(&self) -> Duration {
        lock(&self.faults).latency
    }

    /// `/__standin/faults` (GET shows, POST sets), `/__standin/stats`,
    /// `/__standin/reset`, `/__standin/external-sql`.
    fn admin(&self, method: &str, route: &str, body: &[u8]) -> Json {
        match (method, route) {
            ("POST", "faults") => {
                let Ok(request) = json::parse(body) else { return envelope(-1, "faults: body is not JSON") };
                let mut faults = lock(&self.faults);
                let count = |key: &str| {
                    request.get(key).and_then(|v| if let Json::Int(n) = v { Some(*n as u32) } else { None })
                };
                if request.get("clear") == Some(&Json::Bool(true)) {
                    *faults = Faults::default();
                }
                if let Some(n) = count("fail_next_writes") {
                    faults.fail_next_writes = n;
                }
                if let Some(n) = count("exceed_memory_writes") {
                    faults.exceed_memory_writes = n;
                }
                if let Some(Json::Array(rows)) = request.get("fail_rows") {
                    faults.fail_rows = rows
                        .iter()
                        .filter_map(|r| if let Json::Int(i) = r { Some(*i as usize) } else { None })
                        .collect();
                }
                if let Some(Json::Array(values)) = request.get("refuse_strings") {
                    faults.refuse_strings = values.iter().filter_map(|v| v.as_str().map(str::to_string)).collect();
                }
                if let Some(percent) = count("fail_percent") {
                    faults.fail_percent = percent.min(100);
                }
                if let Some(ms) = count("latency_ms") {
                    faults.latency = Duration::from_millis(ms as u64);
                }
                if let Some(ms) = count("refuse_connections_ms") {
                    faults.refuse_until = Some(Instant::now() + Duration::from_millis(ms as u64));
                }
                envelope(0, "ok")
            }
            ("GET", "faults") => {
                let f = lock(&self.faults).clone();
                ok_with(
                    "faults",
                    Json::Object(vec![
                        ("fail_next_writes".into(), Json::Int(f.fail_next_writes as i64)),
                        ("exceed_memory_writes".into(), Json::Int(f.exceed_memory_writes as i64)),
                        ("fail_rows".into(), Json::Array(f.fail_rows.iter().map(|r| Json::Int(*r as i64)).collect())),
                        ("latency_ms".into(), Json::Int(f.latency.as_millis() as i64)),
                        (
                            "refuse_strings".into(),
                            Json::Array(f.refuse_strings.iter().map(|v| Json::String(v.clone())).collect()),
                        ),
                        ("fail_percent".into(), Json::Int(f.fail_percent as i64)),
                    ]),
                )
            }
            ("GET", "stats") => {
                let s = lock(&self.stats);
                ok_with(
                    "stats",
                    Json::Object(vec![
                        ("requests".into(), Json::Int(s.requests as i64)),
                        ("write_requests".into(), Json::Int(s.write_requests as i64)),
                        ("rows_stored".into(), Json::Int(s.rows_stored as i64)),
                    ]),
                )
            }
            ("POST", "reset") => {
                let tablets = lock(&self.catalog).tablets;
                *lock(&self.catalog) = Catalog::new(tablets);
                *lock(&self.faults) = Faults::default();
                *lock(&self.stats) = Stats::default();
                lock(&self.unrefreshed).clear();
                envelope(0, "ok")
            }
            ("POST", "external-sql") => {
                // DDL from another client: this APIServer's cache misses new
                // tables until POST /refresh.
                let Ok(request) = json::parse(body) else { return envelope(-1, "external-sql: body is not JSON") };
                let (Some(db), Some(text)) =
                    (request.get("db").and_then(Json::as_str), request.get("sql").and_then(Json::as_str))
                else {
                    return envelope(-1, "external-sql: need \"db\" and \"sql\"");
                };
                let statement = match sql::parse(text) {
                    Ok(s) => s,
                    Err(e) => return envelope(1001, &e.0),
                };
                let created = match &statement {
                    sql::Statement::CreateTable { db: explicit, name, .. } => {
                        Some((explicit.clone().unwrap_or_else(|| db.to_string()), name.clone()))
                    }
                    _ => None,
                };
                let outcome = lock(&self.catalog).execute(db, statement, &mut NoFaults);
                if let (Outcome::Ok, Some(key)) = (&outcome, created) {
                    lock(&self.unrefreshed).insert(key);
                }
                match outcome {
                    Outcome::Error { code, msg } => envelope(code, &msg),
                    _ => envelope(0, "ok"),
                }
            }
            _ => envelope(-1, "no match method"),
        }
    }

    /// Until when connections must be refused, if at all.
    pub fn refusing_until(&self) -> Option<Instant> {
        let mut faults = lock(&self.faults);
        match faults.refuse_until {
            Some(t) if t > Instant::now() => Some(t),
            Some(_) => {
                faults.refuse_until = None;
                None
            }
            None => None,
        }
    }
}

fn count_rows(catalog: &Catalog) -> u64 {
    catalog.databases.values().flat_map(|t| t.values()).map(|t| t.rows.len() as u64).sum()
}

pub struct NoFaults;

impl PutFaults for NoFaults {
    fn row_fault(&mut self, _: usize, _: &[Value], _: &Table) -> Option<String> {
        None
    }
}

/// The faults one write statement is subject to, taken from the shared state.
struct StatementFaults {
    all_rows: Option<(u32, &'static str)>,
    rows: Vec<usize>,
    refuse_strings: Vec<String>,
    fail_percent: u32,
}

/// A cheap pseudo-random draw in 0..100 (faults need no quality).
fn percent_draw() -> u32 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    let mut x = STATE.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    (x % 100) as u32
}

impl StatementFaults {
    fn take(faults: &mut Faults, is_write: bool) -> Self {
        if !is_write {
            return StatementFaults { all_rows: None, rows: Vec::new(), refuse_strings: Vec::new(), fail_percent: 0 };
        }
        let all_rows = if faults.fail_next_writes > 0 {
            faults.fail_next_writes -= 1;
            Some((103, "table is follower"))
        } else if faults.exceed_memory_writes > 0 {
            faults.exceed_memory_writes -= 1;
            Some((160, "exceed max memory"))
        } else {
            None
        };
        StatementFaults {
            all_rows,
            rows: std::mem::take(&mut faults.fail_rows),
            refuse_strings: faults.refuse_strings.clone(),
            fail_percent: faults.fail_percent,
        }
    }
}

impl PutFaults for StatementFaults {
    fn row_fault(&mut self, index: usize, values: &[Value], table: &Table) -> Option<String> {
        let refused = values.iter().any(|v| matches!(v, Value::Str(s) if self.refuse_strings.contains(s)));
        let (rc, msg) = match self.all_rows {
            Some(fault) => fault,
            None if refused => {
                return Some(format!(
                    "put failed--ReturnCode[116]--{}.0: refused by the stand-in's fault injection--tid {}. RevertPut success.",
                    table.tid, table.tid
                ));
            }
            None if self.rows.contains(&index) => (103, "table is follower"),
            None if self.fail_percent > 0 && percent_draw() < self.fail_percent => (103, "table is follower"),
            None => return None,
        };
        Some(format!("put failed--ReturnCode[{rc}]--{msg}--tid {}. RevertPut success.", table.tid))
    }
}

/// PUT's type predicates (§1.5.1). `None` is a conversion failure.
fn json_to_value(value: &Json, table: &Table, position: usize, wording: Wording) -> Option<Value> {
    let column = &table.columns[position];
    if *value == Json::Null {
        return (!column.not_null && !table.is_ts_column(position)).then_some(Value::Null);
    }
    Some(match column.ty {
        ColType::Bool => match value {
            Json::Bool(b) => Value::Bool(*b),
            _ => return None,
        },
        ColType::SmallInt => match value {
            Json::Int(i) if value.is_int() => match wording {
                // v0.9.3 lexical_cast refuses what does not fit; later releases wrap.
                Wording::V093 => Value::SmallInt(i16::try_from(*i).ok()?),
                Wording::Current => Value::SmallInt(*i as i16),
            },
            _ => return None,
        },
        ColType::Int => match value {
            Json::Int(i) if value.is_int() => Value::Int(*i as i32),
            _ => return None,
        },
        ColType::BigInt => match value {
            Json::Int(i) if *i < 0 && table.is_ts_column(position) => return None,
            Json::Int(i) => Value::BigInt(*i),
            _ => return None,
        },
        ColType::Float => Value::Float(value.as_f64()? as f32),
        ColType::Double if value.is_lossless_double() => Value::Double(value.as_f64()?),
        ColType::Double => return None,
        ColType::Varchar => Value::Str(value.as_str()?.to_string()),
        ColType::Date => parse_date(value.as_str()?)?,
        ColType::Timestamp => match value {
            Json::Int(i) if *i >= 0 => Value::Timestamp(*i),
            _ => return None,
        },
    })
}
