//! The in-memory catalog and rows, and the semantics of each statement:
//! append-only INSERT, INSERT OR IGNORE's byte-identical rule, the default
//! index, non-atomic multi-row inserts (openmldb.md §2).

use crate::json::Json;
use crate::sql::{CmpOp, ColumnSpec, Condition, IndexSpec, Literal, Projection, Statement, TableOptions};
use std::collections::{BTreeMap, HashSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    Bool,
    SmallInt,
    Int,
    BigInt,
    Float,
    Double,
    Varchar,
    Date,
    Timestamp,
}

impl ColType {
    pub fn from_sql(name: &str) -> Option<ColType> {
        Some(match name.to_ascii_lowercase().as_str() {
            "bool" | "boolean" => ColType::Bool,
            "smallint" | "int16" => ColType::SmallInt,
            "int" | "int32" | "integer" => ColType::Int,
            "bigint" | "int64" => ColType::BigInt,
            "float" => ColType::Float,
            "double" => ColType::Double,
            "string" | "varchar" => ColType::Varchar,
            "date" => ColType::Date,
            "timestamp" => ColType::Timestamp,
            _ => return None,
        })
    }

    /// The protobuf enum name in TableInfo (`kVarchar`).
    pub fn proto_name(self) -> &'static str {
        match self {
            ColType::Bool => "kBool",
            ColType::SmallInt => "kSmallInt",
            ColType::Int => "kInt",
            ColType::BigInt => "kBigInt",
            ColType::Float => "kFloat",
            ColType::Double => "kDouble",
            ColType::Varchar => "kVarchar",
            ColType::Date => "kDate",
            ColType::Timestamp => "kTimestamp",
        }
    }

    /// The result-set schema name (`Int32`).
    pub fn result_name(self) -> &'static str {
        match self {
            ColType::Bool => "Bool",
            ColType::SmallInt => "Int16",
            ColType::Int => "Int32",
            ColType::BigInt => "Int64",
            ColType::Float => "Float",
            ColType::Double => "Double",
            ColType::Varchar => "String",
            ColType::Date => "Date",
            ColType::Timestamp => "Timestamp",
        }
    }

    /// `hybridse::sdk::DataType` as an integer (for PUT error messages).
    pub fn sdk_code(self) -> u8 {
        match self {
            ColType::Bool => 0,
            ColType::SmallInt => 1,
            ColType::Int => 2,
            ColType::BigInt => 3,
            ColType::Float => 4,
            ColType::Double => 5,
            ColType::Varchar => 6,
            ColType::Date => 7,
            ColType::Timestamp => 8,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    SmallInt(i16),
    Int(i32),
    BigInt(i64),
    Float(f32),
    Double(f64),
    Str(String),
    /// year, month, day
    Date(i32, u32, u32),
    Timestamp(i64),
}

impl Value {
    /// The response encoding (§1.5.2): dates without zero padding, floats
    /// widened to double.
    pub fn to_json(&self, nan_as_null: bool) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::SmallInt(v) => Json::Int(*v as i64),
            Value::Int(v) => Json::Int(*v as i64),
            Value::BigInt(v) | Value::Timestamp(v) => Json::Int(*v),
            Value::Float(f) => double_json(*f as f64, nan_as_null),
            Value::Double(d) => double_json(*d, nan_as_null),
            Value::Str(s) => Json::String(s.clone()),
            Value::Date(y, m, d) => Json::String(format!("{y}-{m}-{d}")),
        }
    }

    /// Bytes that are equal exactly when OpenMLDB's encoded rows are.
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.push(0),
            Value::Bool(b) => out.extend([1, *b as u8]),
            Value::SmallInt(v) => out.extend(std::iter::once(2).chain(v.to_le_bytes())),
            Value::Int(v) => out.extend(std::iter::once(3).chain(v.to_le_bytes())),
            Value::BigInt(v) => out.extend(std::iter::once(4).chain(v.to_le_bytes())),
            Value::Float(v) => out.extend(std::iter::once(5).chain(v.to_bits().to_le_bytes())),
            Value::Double(v) => out.extend(std::iter::once(6).chain(v.to_bits().to_le_bytes())),
            Value::Str(s) => {
                out.push(7);
                out.extend((s.len() as u32).to_le_bytes());
                out.extend(s.as_bytes());
            }
            Value::Date(y, m, d) => {
                let packed = ((y - 1900) << 16) | ((*m as i32 - 1) << 8) | *d as i32;
                out.extend(std::iter::once(8).chain(packed.to_le_bytes()));
            }
            Value::Timestamp(v) => out.extend(std::iter::once(9).chain(v.to_le_bytes())),
        }
    }
}

fn double_json(d: f64, nan_as_null: bool) -> Json {
    if nan_as_null && !d.is_finite() { Json::Null } else { Json::Double(d) }
}

/// Year 1900–9999, month 1–12, day 1–31, no per-month check (`ConvertDate`).
pub fn parse_date(text: &str) -> Option<Value> {
    let parts: Vec<&str> = text.split('-').collect();
    let [y, m, d] = parts.as_slice() else { return None };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(y) || !all_digits(m) || !all_digits(d) {
        return None;
    }
    let (y, m, d) = (y.parse::<i32>().ok()?, m.parse::<u32>().ok()?, d.parse::<u32>().ok()?);
    ((1900..=9999).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&d)).then_some(Value::Date(y, m, d))
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub ty: ColType,
    pub not_null: bool,
    pub default: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct Index {
    pub name: String,
    pub keys: Vec<usize>,
    pub ts: Option<usize>,
    /// `None` for the default index (its TTL is unset).
    pub ttl: Option<(String, u64, u64)>,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub tid: u32,
    pub db: String,
    pub name: String,
    pub columns: Vec<Column>,
    pub indexes: Vec<Index>,
    pub partition_num: u32,
    pub replica_num: u32,
    pub compress: String,
    pub rows: Vec<Vec<Value>>,
    encoded: HashSet<Vec<u8>>,
}

impl Table {
    pub fn is_ts_column(&self, position: usize) -> bool {
        self.indexes.iter().any(|i| i.ts == Some(position))
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Append a row (INSERT), or skip it when `ignore_duplicates` and a
    /// byte-identical row exists (INSERT OR IGNORE). Returns whether stored.
    pub fn put(&mut self, row: Vec<Value>, ignore_duplicates: bool) -> bool {
        let mut key = Vec::new();
        for v in &row {
            v.encode(&mut key);
        }
        let fresh = self.encoded.insert(key);
        if ignore_duplicates && !fresh {
            return false;
        }
        self.rows.push(row);
        true
    }

    /// Removes the row at `at` (a native RevertPut).
    pub fn remove_row(&mut self, at: usize) {
        if at < self.rows.len() {
            self.rows.remove(at);
            self.rebuild_encoded();
        }
    }

    fn rebuild_encoded(&mut self) {
        self.encoded.clear();
        for row in &self.rows {
            let mut key = Vec::new();
            for v in row {
                v.encode(&mut key);
            }
            self.encoded.insert(key);
        }
    }

    /// TableInfo as `GET /dbs/{db}/tables/{t}` writes it (§1.4.7).
    pub fn info_json(&self) -> Json {
        let columns = self
            .columns
            .iter()
            .map(|c| {
                Json::Object(vec![
                    ("name".into(), Json::String(c.name.clone())),
                    ("data_type".into(), Json::String(c.ty.proto_name().into())),
                    ("not_null".into(), Json::Bool(c.not_null)),
                ])
            })
            .collect();
        let keys = self
            .indexes
            .iter()
            .map(|i| {
                let mut fields = vec![
                    ("index_name".into(), Json::String(i.name.clone())),
                    (
                        "col_name".into(),
                        Json::Array(i.keys.iter().map(|k| Json::String(self.columns[*k].name.clone())).collect()),
                    ),
                ];
                if let Some(ts) = i.ts {
                    fields.push(("ts_name".into(), Json::String(self.columns[ts].name.clone())));
                }
                let ttl = match &i.ttl {
                    None => Json::Object(vec![]),
                    Some((kind, abs, lat)) => {
                        let mut t = vec![("ttl_type".into(), Json::String(kind.clone()))];
                        if kind != "latest" {
                            t.push(("abs_ttl".into(), Json::Int(*abs as i64)));
                        }
                        if kind != "absolute" {
                            t.push(("lat_ttl".into(), Json::Int(*lat as i64)));
                        }
                        Json::Object(t)
                    }
                };
                fields.push(("ttl".into(), ttl));
                Json::Object(fields)
            })
            .collect();
        Json::Object(vec![
            ("name".into(), Json::String(self.name.clone())),
            ("table_partition_size".into(), Json::Int(self.partition_num as i64)),
            ("tid".into(), Json::Int(self.tid as i64)),
            ("partition_num".into(), Json::Int(self.partition_num as i64)),
            ("replica_num".into(), Json::Int(self.replica_num as i64)),
            ("compress_type".into(), Json::String(self.compress.clone())),
            ("column_desc".into(), Json::Array(columns)),
            ("column_key".into(), Json::Array(keys)),
            ("added_column_desc".into(), Json::Array(vec![])),
            ("db".into(), Json::String(self.db.clone())),
            ("partition_key".into(), Json::Array(vec![])),
            ("schema_versions".into(), Json::Array(vec![])),
        ])
    }
}

/// A statement's outcome: the `{"code","msg"}` envelope, plus an optional
/// result set (schema names and rows).
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Ok,
    Rows { schema: Vec<&'static str>, rows: Vec<Vec<Value>> },
    Error { code: i64, msg: String },
}

fn error(code: i64, msg: impl Into<String>) -> Outcome {
    Outcome::Error { code, msg: msg.into() }
}

/// Row indexes (within one INSERT) that the tablet refuses, and why.
pub trait PutFaults {
    /// `Some(tablet message)` when the put of row `index` (with `values`)
    /// must fail.
    fn row_fault(&mut self, index: usize, values: &[Value], table: &Table) -> Option<String>;
}

#[derive(Debug, Default)]
pub struct Catalog {
    pub databases: BTreeMap<String, BTreeMap<String, Table>>,
    next_tid: u32,
    /// How many tablets the pretend cluster has (default REPLICANUM).
    pub tablets: u32,
}

const HIDDEN_DBS: [&str; 3] = ["__INTERNAL_DB", "__PRE_AGG_DB", "INFORMATION_SCHEMA"];

impl Catalog {
    pub fn new(tablets: u32) -> Self {
        Catalog { tablets, next_tid: 1, ..Default::default() }
    }

    pub fn database_names(&self) -> Vec<String> {
        self.databases.keys().filter(|d| !HIDDEN_DBS.contains(&d.as_str())).cloned().collect()
    }

    pub fn table(&self, db: &str, table: &str) -> Option<&Table> {
        self.databases.get(db)?.get(table)
    }

    pub fn table_mut(&mut self, db: &str, table: &str) -> Option<&mut Table> {
        self.databases.get_mut(db)?.get_mut(table)
    }

    pub fn execute(&mut self, db: &str, statement: Statement, faults: &mut dyn PutFaults) -> Outcome {
        match statement {
            Statement::CreateDatabase { name, if_not_exists } => {
                if self.databases.contains_key(&name) {
                    return if if_not_exists {
                        Outcome::Ok
                    } else {
                        error(2000, "Create database failed for database already exists")
                    };
                }
                self.databases.insert(name, BTreeMap::new());
                Outcome::Ok
            }
            Statement::CreateTable { db: explicit_db, name, if_not_exists, columns, indexes, options } => {
                let db = explicit_db.unwrap_or_else(|| db.to_string());
                self.create_table(&db, name, if_not_exists, columns, indexes, options)
            }
            Statement::Insert { table, ignore, columns, rows } => {
                self.insert(db, &table, ignore, columns, rows, faults)
            }
            Statement::Select { table, projection, conditions, limit } => {
                let Some(t) = self.table(db, &table) else {
                    return error(2000, format!("table {table} does not exist in {db}"));
                };
                let matching = match filter_rows(t, &conditions) {
                    Ok(rows) => rows,
                    Err(e) => return e,
                };
                let positions: Vec<usize> = match projection {
                    Projection::Count => {
                        return Outcome::Rows {
                            schema: vec!["Int64"],
                            rows: vec![vec![Value::BigInt(matching.len() as i64)]],
                        };
                    }
                    Projection::All => (0..t.columns.len()).collect(),
                    Projection::Columns(names) => {
                        let mut positions = Vec::with_capacity(names.len());
                        for name in &names {
                            match t.column(name) {
                                Some(position) => positions.push(position),
                                None => return error(2000, format!("column {name} does not exist")),
                            }
                        }
                        positions
                    }
                };
                let rows = matching
                    .into_iter()
                    .take(limit.unwrap_or(usize::MAX))
                    .map(|row| positions.iter().map(|&p| row[p].clone()).collect())
                    .collect();
                Outcome::Rows { schema: positions.iter().map(|&p| t.columns[p].ty.result_name()).collect(), rows }
            }
            Statement::Delete { table, conditions } => {
                let Some(t) = self.table_mut(db, &table) else {
                    return error(2000, format!("table {table} does not exist"));
                };
                for c in &conditions {
                    let Some(position) = t.column(&c.column) else {
                        return error(2000, format!("column {} does not exist", c.column));
                    };
                    let is_key = t.indexes.iter().any(|i| i.keys.contains(&position));
                    let is_ts = t.is_ts_column(position);
                    if !(is_key && c.op == CmpOp::Eq || is_ts) {
                        return error(
                            2000,
                            format!("delete failed: {} is not an index key (=) or ts column", c.column),
                        );
                    }
                }
                let doomed: Vec<Vec<Value>> = match filter_rows(t, &conditions) {
                    Ok(rows) => rows.into_iter().cloned().collect(),
                    Err(e) => return e,
                };
                t.rows.retain(|r| !doomed.contains(r));
                t.rebuild_encoded();
                Outcome::Ok
            }
            Statement::DropTable { name, if_exists } => {
                let removed = self.databases.get_mut(db).and_then(|tables| tables.remove(&name)).is_some();
                if removed || if_exists {
                    Outcome::Ok
                } else {
                    error(2000, format!("table {name} does not exist in {db}"))
                }
            }
            Statement::DropDatabase { name } => match self.databases.get(&name) {
                None => error(2000, format!("database {name} does not exist")),
                Some(tables) if !tables.is_empty() => {
                    error(2000, format!("drop database failed, database {name} is not empty"))
                }
                Some(_) => {
                    self.databases.remove(&name);
                    Outcome::Ok
                }
            },
            Statement::Truncate { table } => match self.table_mut(db, &table) {
                Some(t) => {
                    t.rows.clear();
                    t.encoded.clear();
                    Outcome::Ok
                }
                None => error(2000, format!("table {table} does not exist in {db}")),
            },
            Statement::ShowTables => match self.databases.get(db) {
                Some(tables) => Outcome::Rows {
                    schema: vec!["String"],
                    rows: tables.keys().map(|t| vec![Value::Str(t.clone())]).collect(),
                },
                None => error(2000, "database not found"),
            },
            Statement::ShowDatabases => Outcome::Rows {
                schema: vec!["String"],
                rows: self.database_names().into_iter().map(|d| vec![Value::Str(d)]).collect(),
            },
            Statement::Desc { table } => match self.table(db, &table) {
                Some(t) => Outcome::Rows {
                    schema: vec!["String", "String", "String"],
                    rows: t
                        .columns
                        .iter()
                        .map(|c| {
                            vec![
                                Value::Str(c.name.clone()),
                                Value::Str(c.ty.proto_name().into()),
                                Value::Str(if c.not_null { "NO" } else { "YES" }.into()),
                            ]
                        })
                        .collect(),
                },
                None => error(2000, format!("table {table} does not exist in {db}")),
            },
        }
    }

    fn create_table(
        &mut self,
        db: &str,
        name: String,
        if_not_exists: bool,
        specs: Vec<ColumnSpec>,
        index_specs: Vec<IndexSpec>,
        options: TableOptions,
    ) -> Outcome {
        let Some(tables) = self.databases.get(db) else { return error(2000, "database not found") };
        if tables.contains_key(&name) {
            return if if_not_exists { Outcome::Ok } else { error(2000, "table already exists") };
        }
        let mut columns: Vec<Column> = Vec::with_capacity(specs.len());
        for spec in specs {
            if columns.iter().any(|c| c.name == spec.name) {
                return error(101, format!("column {} duplicate", spec.name));
            }
            let default = match &spec.default {
                None => None,
                Some(literal) => match coerce_literal(literal, spec.ty) {
                    Some(v) => Some(v),
                    None => return error(101, "default value type mismatch"),
                },
            };
            columns.push(Column { name: spec.name, ty: spec.ty, not_null: spec.not_null, default });
        }
        let position = |n: &str| columns.iter().position(|c| c.name == n);
        let seconds =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let mut indexes = Vec::new();
        for (n, spec) in index_specs.iter().enumerate() {
            let ts = match &spec.ts {
                None => None,
                Some(ts) => match position(ts) {
                    None => return error(101, format!("TS NAME {ts} not exists")),
                    Some(p) if !matches!(columns[p].ty, ColType::BigInt | ColType::Timestamp) => {
                        return error(101, format!("ts column type should be bigint or timestamp, column is: {ts}"));
                    }
                    Some(p) => Some(p),
                },
            };
            let mut keys = Vec::new();
            if spec.keys.is_empty() {
                // INDEX(TS=c) alone: the first non-float column that is not the ts.
                match columns.iter().position(|c| {
                    !matches!(c.ty, ColType::Float | ColType::Double) && Some(c.name.as_str()) != spec.ts.as_deref()
                }) {
                    Some(p) => keys.push(p),
                    None => return error(101, "INDEX KEY empty"),
                }
            }
            for key in &spec.keys {
                match position(key) {
                    None => return error(101, "can not found index col"),
                    Some(p) if matches!(columns[p].ty, ColType::Float | ColType::Double) => {
                        return error(101, format!("float or double type column can not be index, column is: {key}"));
                    }
                    Some(p) => keys.push(p),
                }
            }
            let ttl = match parse_ttl(spec) {
                Ok(ttl) => ttl,
                Err(e) => return e,
            };
            indexes.push(Index { name: format!("INDEX_{n}_{seconds}"), keys, ts, ttl: Some(ttl) });
        }
        if indexes.is_empty() {
            // The default index (§2.2): first non-float/double column, no TS,
            // TTL unset: it never expires.
            if let Some(p) = columns.iter().position(|c| !matches!(c.ty, ColType::Float | ColType::Double)) {
                indexes.push(Index { name: format!("INDEX_0_{seconds}"), keys: vec![p], ts: None, ttl: None });
            }
        }
        let partition_num = options.partition_num.unwrap_or(8);
        let replica_num = options.replica_num.unwrap_or(self.tablets.min(3) as i64);
        if partition_num <= 0 {
            return error(101, "partitionnum should be great than 0");
        }
        if replica_num <= 0 {
            return error(101, "replicanum should be great than 0");
        }
        let compress = match options.compress_type.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("nocompress") => "nocompress",
            Some("snappy") => "snappy",
            Some(other) => return error(101, format!("compress type {other} not support")),
        };
        let tid = self.next_tid;
        self.next_tid += 1;
        let table = Table {
            tid,
            db: db.to_string(),
            name: name.clone(),
            columns,
            indexes,
            partition_num: partition_num as u32,
            replica_num: replica_num as u32,
            compress: compress.into(),
            rows: Vec::new(),
            encoded: HashSet::new(),
        };
        if let Some(tables) = self.databases.get_mut(db) {
            tables.insert(name, table);
        }
        Outcome::Ok
    }

    fn insert(
        &mut self,
        db: &str,
        table_name: &str,
        ignore: bool,
        columns: Option<Vec<String>>,
        rows: Vec<Vec<Literal>>,
        faults: &mut dyn PutFaults,
    ) -> Outcome {
        let info_error = |inner: String| error(2000, format!("Fail to get insert info--{inner}"));
        let Some(table) = self.table_mut(db, table_name) else {
            return info_error(format!("{db}-{table_name} not exist"));
        };
        // Map the statement's columns onto the table's.
        let targets: Vec<usize> = match &columns {
            None => (0..table.columns.len()).collect(),
            Some(names) => {
                let mut targets = Vec::new();
                for name in names {
                    let Some(p) = table.column(name) else {
                        return info_error(format!("can't find column {name} in table {table_name}"));
                    };
                    if targets.contains(&p) {
                        return info_error(format!("duplicate column of {name}"));
                    }
                    targets.push(p);
                }
                targets
            }
        };
        // Every row is encoded before any is put: a bad literal fails the
        // whole statement and nothing is written.
        let mut encoded = Vec::with_capacity(rows.len());
        for (i, literals) in rows.iter().enumerate() {
            match build_row(table, &targets, literals) {
                Ok(row) => encoded.push(row),
                Err(expr) => return info_error(format!("fail to parse row[{i}]: {expr}")),
            }
        }
        // Then each row is put on its own: not atomic. A row the SDK refuses
        // before any RPC (a negative timestamp, a NULL or negative index TS)
        // fails alone and the statement goes on (§3.6a).
        let mut failed = Vec::new();
        for (i, row) in encoded.into_iter().enumerate() {
            if refused_before_put(table, &row) || faults.row_fault(i, &row, table).is_some() {
                failed.push(i);
                continue;
            }
            table.put(row, ignore);
        }
        if failed.is_empty() {
            Outcome::Ok
        } else {
            let peek: Vec<String> = failed.iter().take(10).map(|i| i.to_string()).collect();
            error(2000, format!("insert values {} failed, failed rows peek: {}", failed.len(), peek.join(",")))
        }
    }
}

/// A row of values in table order from an INSERT's literals, or the text of
/// the expression that cannot be used.
fn build_row(table: &Table, targets: &[usize], literals: &[Literal]) -> Result<Vec<Value>, String> {
    if literals.len() != targets.len() {
        return Err(format!("{} values for {} columns", literals.len(), targets.len()));
    }
    let mut row: Vec<Option<Value>> = vec![None; table.columns.len()];
    for (literal, &position) in literals.iter().zip(targets) {
        let column = &table.columns[position];
        let value = coerce_literal(literal, column.ty).ok_or_else(|| literal.to_string())?;
        row[position] = Some(value);
    }
    row.into_iter()
        .enumerate()
        .map(|(position, value)| {
            let column = &table.columns[position];
            let value = value.or_else(|| column.default.clone()).unwrap_or(Value::Null);
            match &value {
                Value::Null if column.not_null => Err(format!("NULL for column {}", column.name)),
                _ => Ok(value),
            }
        })
        .collect()
}

/// Whether the SDK refuses a parsed row before sending it: a negative
/// timestamp anywhere, or a NULL or negative value in an index's TS column
/// (`SQLInsertRow::AppendTimestamp`, `AppendInt64`).
fn refused_before_put(table: &Table, row: &[Value]) -> bool {
    row.iter().enumerate().any(|(position, value)| match value {
        Value::Timestamp(ts) if *ts < 0 => true,
        Value::BigInt(ts) if *ts < 0 => table.is_ts_column(position),
        Value::Null => table.is_ts_column(position),
        _ => false,
    })
}

/// SQL literal coercion (`NodeAdapter::TransformDataType`, §2.1).
pub fn coerce_literal(literal: &Literal, ty: ColType) -> Option<Value> {
    use Literal as L;
    Some(match (literal, ty) {
        (L::Null, _) => Value::Null,
        (L::Bool(b), ColType::Bool) => Value::Bool(*b),
        (L::Int { value, int32: true }, ColType::Bool) => Value::Bool(*value != 0),
        (L::Int { value, int32: true }, ColType::SmallInt) => Value::SmallInt(*value as i16),
        (L::Int { value, .. }, ColType::Int) => Value::Int(*value as i32),
        (L::Int { value, .. }, ColType::BigInt) => Value::BigInt(*value),
        (L::Int { value, int32: true }, ColType::Float) => Value::Float(*value as f32),
        (L::Double(d), ColType::Float) => Value::Float(*d as f32),
        (L::Float(f), ColType::Float) => Value::Float(*f),
        (L::Int { value, int32: true }, ColType::Double) => Value::Double(*value as f64),
        (L::Double(d), ColType::Double) => Value::Double(*d),
        (L::Float(f), ColType::Double) => Value::Double(*f as f64),
        (L::Str(s), ColType::Date) => return parse_date(s),
        (L::Int { value, .. }, ColType::Timestamp) => Value::Timestamp(*value),
        (L::Str(s), ColType::Varchar) => Value::Str(s.clone()),
        _ => return None,
    })
}

fn parse_ttl(spec: &IndexSpec) -> Result<(String, u64, u64), Outcome> {
    let kind = spec.ttl_type.as_deref().unwrap_or("absolute").to_ascii_lowercase();
    let parts = spec.ttl.clone().unwrap_or_else(|| vec!["0".into()]);
    let minutes = |text: &str| -> Result<u64, Outcome> {
        let lower = text.to_ascii_lowercase();
        let (number, factor) = match lower.chars().last() {
            Some('m') => (&lower[..lower.len() - 1], 1),
            Some('h') => (&lower[..lower.len() - 1], 60),
            Some('d') => (&lower[..lower.len() - 1], 1440),
            _ => (lower.as_str(), 1),
        };
        let value = number.parse::<u64>().map_err(|_| error(101, format!("ttl {text} is invalid")))? * factor;
        if value > 15_768_000 {
            return Err(error(101, format!("ttl {text} is too large, max is 15768000m")));
        }
        Ok(value)
    };
    let count = |text: &str| -> Result<u64, Outcome> {
        let value = text.parse::<u64>().map_err(|_| error(101, format!("ttl {text} is invalid")))?;
        if value > 1000 {
            return Err(error(101, format!("latest ttl {value} is too large, max is 1000")));
        }
        Ok(value)
    };
    match (kind.as_str(), parts.as_slice()) {
        ("absolute", [t]) => Ok(("absolute".into(), minutes(t)?, 0)),
        ("latest", [t]) => Ok(("latest".into(), 0, count(t)?)),
        ("absorlat", [a, l]) => Ok(("absorlat".into(), minutes(a)?, count(l)?)),
        ("absandlat", [a, l]) => Ok(("absandlat".into(), minutes(a)?, count(l)?)),
        (other, _) if !["absolute", "latest", "absorlat", "absandlat"].contains(&other) => {
            Err(error(101, format!("ttl_type {other} not support")))
        }
        _ => Err(error(
            101,
            format!("ttl for {kind} needs {} value(s)", if kind.starts_with("abs") && kind.len() > 8 { 2 } else { 1 }),
        )),
    }
}

fn filter_rows<'t>(table: &'t Table, conditions: &[Condition]) -> Result<Vec<&'t Vec<Value>>, Outcome> {
    let mut compiled = Vec::new();
    for c in conditions {
        let Some(position) = table.column(&c.column) else {
            return Err(error(1000, format!("Column Not found: {}", c.column)));
        };
        let Some(value) = coerce_literal(&c.value, table.columns[position].ty) else {
            return Err(error(1000, format!("Type mismatch for column {}", c.column)));
        };
        compiled.push((position, c.op, value));
    }
    Ok(table.rows.iter().filter(|row| compiled.iter().all(|(p, op, v)| matches_condition(&row[*p], *op, v))).collect())
}

fn matches_condition(cell: &Value, op: CmpOp, value: &Value) -> bool {
    use std::cmp::Ordering;
    let ordering = match (cell, value) {
        (Value::Bool(a), Value::Bool(b)) => a.partial_cmp(b),
        (Value::SmallInt(a), Value::SmallInt(b)) => a.partial_cmp(b),
        (Value::Int(a), Value::Int(b)) => a.partial_cmp(b),
        (Value::BigInt(a), Value::BigInt(b)) | (Value::Timestamp(a), Value::Timestamp(b)) => a.partial_cmp(b),
        (Value::Float(a), Value::Float(b)) => a.partial_cmp(b),
        (Value::Double(a), Value::Double(b)) => a.partial_cmp(b),
        (Value::Str(a), Value::Str(b)) => a.partial_cmp(b),
        (Value::Date(y1, m1, d1), Value::Date(y2, m2, d2)) => (y1, m1, d1).partial_cmp(&(y2, m2, d2)),
        _ => None,
    };
    match (ordering, op) {
        (None, _) => false,
        (Some(o), CmpOp::Eq) => o == Ordering::Equal,
        (Some(o), CmpOp::Ne) => o != Ordering::Equal,
        (Some(o), CmpOp::Lt) => o == Ordering::Less,
        (Some(o), CmpOp::Le) => o != Ordering::Greater,
        (Some(o), CmpOp::Gt) => o == Ordering::Greater,
        (Some(o), CmpOp::Ge) => o != Ordering::Less,
    }
}
