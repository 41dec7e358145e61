//! Reading one table in its mode: the statement for the next batch, the
//! cursor it advances, and the position each record carries. A position is
//! stored by the host only after the broker acknowledged the record, and a
//! restart hands it back, so the cursor resumes exactly there.

use crate::table::{self, SourceColumn};
use chrono::NaiveDateTime;
use rmq_openmldb_sdk::PluginError;
use rmq_openmldb_sdk::sql::{self, ResultSet, SqlValue};
use rmq_openmldb_sdk::time::Zone;
use serde_json::{Value, json};

/// RocketMQ Connect's `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bulk,
    Incrementing,
    Timestamp,
    TimestampIncrementing,
}

impl Mode {
    pub fn parse(value: &str) -> Option<Mode> {
        Some(match value.trim().to_ascii_lowercase().as_str() {
            "bulk" => Mode::Bulk,
            "incrementing" => Mode::Incrementing,
            "timestamp" => Mode::Timestamp,
            "timestamp+incrementing" => Mode::TimestampIncrementing,
            _ => return None,
        })
    }
    pub fn uses_incrementing(self) -> bool {
        matches!(self, Mode::Incrementing | Mode::TimestampIncrementing)
    }
    pub fn uses_timestamp(self) -> bool {
        matches!(self, Mode::Timestamp | Mode::TimestampIncrementing)
    }
}

/// Where a table's reading has got to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cursor {
    /// The last timestamp value read, as the column holds it (wall clock).
    pub timestamp: Option<NaiveDateTime>,
    pub incrementing: Option<i128>,
}

impl Cursor {
    /// A stored position: `{"incrementing": 14}`,
    /// `{"timestamp": ms, "timestamp_local": "…", …}`.
    pub fn from_position(text: &str, utc: bool, zone: &Zone) -> Result<Cursor, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("position {text} is not JSON: {e}"))?;
        let mut cursor = Cursor::default();
        if let Some(inc) = value.get("incrementing") {
            let parsed = inc.as_i64().map(i128::from).or_else(|| inc.as_u64().map(i128::from));
            cursor.incrementing =
                Some(parsed.ok_or_else(|| format!("position {text}: \"incrementing\" is not an integer"))?);
        }
        if let Some(local) = value.get("timestamp_local").and_then(Value::as_str) {
            let parsed = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M:%S%.f")
                .map_err(|e| format!("position {text}: \"timestamp_local\": {e}"))?;
            cursor.timestamp = Some(parsed);
        } else if let Some(ms) = value.get("timestamp").and_then(Value::as_i64) {
            // RocketMQ Connect's own form: epoch ms (plus nanos of the second).
            let instant =
                chrono::DateTime::from_timestamp_millis(ms).ok_or_else(|| format!("position {text}: bad timestamp"))?;
            let nanos = value.get("timestamp_nanos").and_then(Value::as_u64).unwrap_or(0) as u32;
            let instant = chrono::Timelike::with_nanosecond(&instant, nanos).unwrap_or(instant);
            cursor.timestamp = Some(if utc {
                instant.naive_utc()
            } else {
                zone.epoch_ms_to_local(instant.timestamp_millis())
                    .map(|l| chrono::Timelike::with_nanosecond(&l, nanos).unwrap_or(l))
                    .ok_or_else(|| format!("position {text}: timestamp out of range"))?
            });
        }
        Ok(cursor)
    }

    /// The position stored for a record that brings the table to `self`.
    pub fn to_position(&self, utc: bool, zone: &Zone) -> String {
        let mut position = serde_json::Map::new();
        if let Some(ts) = &self.timestamp {
            let ms = if utc { Some(ts.and_utc().timestamp_millis()) } else { zone.local_to_epoch_ms(ts).ok() };
            if let Some(ms) = ms {
                position.insert("timestamp".into(), ms.into());
            }
            position.insert("timestamp_nanos".into(), chrono::Timelike::nanosecond(ts).into());
            position.insert("timestamp_local".into(), ts.format("%Y-%m-%d %H:%M:%S%.6f").to_string().into());
        }
        if let Some(inc) = self.incrementing {
            let number = i64::try_from(inc).map(Value::from).unwrap_or_else(|_| json!(inc as u64));
            position.insert("incrementing".into(), number);
        }
        Value::Object(position).to_string()
    }
}

/// A table being read.
pub struct TableReader {
    /// `db.table`: the partition its positions are stored under.
    pub partition: String,
    pub topic: String,
    pub columns: Vec<SourceColumn>,
    /// The envelope's `{"schema":…,"payload":` prefix.
    envelope_prefix: String,
    mode: Mode,
    /// `db`.`table`, quoted.
    from: String,
    select_list: String,
    /// Index of the incrementing column in `columns`.
    incrementing: Option<usize>,
    /// The timestamp expression (a column, or COALESCE of several).
    timestamp_expr: Option<String>,
    /// TIMESTAMP (UTC) rather than DATETIME (db zone).
    timestamp_utc: bool,
    pub cursor: Cursor,
    /// The cursor of the last record handed out (its position).
    initial_timestamp: Option<NaiveDateTime>,
    delay_micros: i64,
    batch_rows: u32,
    zone: Zone,
}

/// What the reader needs to know about its table and settings.
pub struct ReaderSpec {
    pub database: String,
    pub table: String,
    pub topic: String,
    pub columns: Vec<SourceColumn>,
    pub mode: Mode,
    pub incrementing: Option<usize>,
    pub timestamp_columns: Vec<usize>,
    pub initial_timestamp_ms: Option<i64>,
    pub delay_ms: i64,
    pub batch_rows: u32,
    pub zone: Zone,
}

/// One record ready to send.
pub struct Read {
    pub body: String,
    pub position: String,
}

pub fn quote(identifier: &str) -> String {
    format!("`{}`", identifier.replace('`', "``"))
}

impl TableReader {
    pub fn new(spec: ReaderSpec, stored: Option<&str>) -> Result<TableReader, PluginError> {
        let partition = format!("{}.{}", spec.database, spec.table);
        let timestamp_utc = spec
            .timestamp_columns
            .first()
            .is_some_and(|i| matches!(spec.columns[*i].kind, table::Kind::Timestamp { utc: true }));
        let timestamp_expr = match spec.timestamp_columns.as_slice() {
            [] => None,
            [one] => Some(quote(&spec.columns[*one].name)),
            many => Some(format!(
                "COALESCE({})",
                many.iter().map(|i| quote(&spec.columns[*i].name)).collect::<Vec<_>>().join(", ")
            )),
        };
        let mut select_list = spec.columns.iter().map(|c| quote(&c.name)).collect::<Vec<_>>().join(", ");
        if let Some(expr) = &timestamp_expr {
            // The cursor's timestamp rides along as the last column.
            select_list.push_str(&format!(", {expr}"));
        }
        let cursor = match stored {
            Some(text) => Cursor::from_position(text, timestamp_utc, &spec.zone)
                .map_err(|e| PluginError::invalid_config(format!("table {partition}: stored {e}")))?,
            None => Cursor::default(),
        };
        let initial_timestamp = spec.initial_timestamp_ms.and_then(|ms| {
            if timestamp_utc {
                chrono::DateTime::from_timestamp_millis(ms).map(|t| t.naive_utc())
            } else {
                spec.zone.epoch_ms_to_local(ms)
            }
        });
        Ok(TableReader {
            envelope_prefix: format!(
                "{{\"schema\":{},\"payload\":",
                table::envelope_schema(&spec.table, &spec.columns)
            ),
            from: format!("{}.{}", quote(&spec.database), quote(&spec.table)),
            partition,
            topic: spec.topic,
            columns: spec.columns,
            mode: spec.mode,
            select_list,
            incrementing: spec.incrementing,
            timestamp_expr,
            timestamp_utc,
            cursor,
            initial_timestamp,
            delay_micros: spec.delay_ms.saturating_mul(1000),
            batch_rows: spec.batch_rows,
            zone: spec.zone,
        })
    }

    /// Read the next batch: the records and whether the table may have
    /// more right away (a full batch).
    pub fn read(&mut self) -> Result<(Vec<Read>, bool), PluginError> {
        let upper = if self.mode.uses_timestamp() { Some(self.upper_bound()?) } else { None };
        let (statement, params) = self.statement(upper);
        let result = query(&self.partition, &statement, &params)?;
        let full = self.mode != Mode::Bulk && result.rows.len() as u32 >= self.batch_rows;
        let mut rows = result.rows;
        if self.mode == Mode::Timestamp && full {
            rows = self.complete_timestamp_groups(rows)?;
        }
        let mut reads = Vec::with_capacity(rows.len());
        let mut keys: Vec<Cursor> = Vec::with_capacity(rows.len());
        for row in &rows {
            keys.push(self.key_of(row)?);
        }
        for (i, row) in rows.iter().enumerate() {
            let body = self.envelope(row)?;
            let position = match self.mode {
                Mode::Bulk => "{}".to_string(),
                // Timestamp mode stores a timestamp only once every row
                // sharing it is in hand, so a restart never skips the rest
                // of a group (rows of a group may come again instead).
                Mode::Timestamp => {
                    let group_ends = keys.get(i + 1).is_none_or(|next| next.timestamp != keys[i].timestamp);
                    if group_ends {
                        self.cursor = keys[i].clone();
                    }
                    self.cursor.to_position(self.timestamp_utc, &self.zone)
                }
                _ => {
                    self.cursor = keys[i].clone();
                    self.cursor.to_position(self.timestamp_utc, &self.zone)
                }
            };
            reads.push(Read { body, position });
        }
        Ok((reads, full))
    }

    /// Rows sorted by timestamp, cut at a full batch: drop the trailing
    /// group (the next query starts at it), or when the whole batch is one
    /// timestamp, read that timestamp's rows completely.
    fn complete_timestamp_groups(&self, mut rows: Vec<Vec<SqlValue>>) -> Result<Vec<Vec<SqlValue>>, PluginError> {
        let ts_index = self.columns.len();
        let Some(last) = rows.last().map(|r| r[ts_index].clone()) else { return Ok(rows) };
        if rows.first().is_some_and(|r| r[ts_index] == last) {
            let statement = format!("SELECT {} FROM {} WHERE {} = ?", self.select_list, self.from, self.expr());
            return Ok(query(&self.partition, &statement, &[last])?.rows);
        }
        while rows.last().is_some_and(|r| r[ts_index] == last) {
            rows.pop();
        }
        Ok(rows)
    }

    fn expr(&self) -> &str {
        self.timestamp_expr.as_deref().unwrap_or("NULL")
    }

    /// The database's clock minus `timestamp.delay.interval.ms`, in the
    /// timestamp column's terms. Rows at or after it are left for later,
    /// so rows still being written with the current time are not skipped.
    fn upper_bound(&self) -> Result<NaiveDateTime, PluginError> {
        let now = query(&self.partition, "SELECT UTC_TIMESTAMP(6)", &[])?;
        let utc_now = match now.rows.first().and_then(|r| r.first()) {
            Some(SqlValue::Datetime(t)) => table::naive(t),
            _ => None,
        }
        .ok_or_else(|| {
            PluginError::new(rmq_openmldb_sdk::ErrorKind::Retryable, "the database did not tell its time")
        })?;
        let utc_bound = utc_now - chrono::Duration::microseconds(self.delay_micros);
        if self.timestamp_utc {
            return Ok(utc_bound);
        }
        let ms = utc_bound.and_utc().timestamp_millis();
        let local = self.zone.epoch_ms_to_local(ms).unwrap_or(utc_bound);
        Ok(chrono::Timelike::with_nanosecond(&local, chrono::Timelike::nanosecond(&utc_bound)).unwrap_or(local))
    }

    fn statement(&self, upper: Option<NaiveDateTime>) -> (String, Vec<SqlValue>) {
        let base = format!("SELECT {} FROM {}", self.select_list, self.from);
        let limit = self.batch_rows;
        let inc = self.incrementing.map(|i| quote(&self.columns[i].name)).unwrap_or_default();
        let ts = self.expr().to_string();
        let at = |t: &NaiveDateTime| SqlValue::Datetime(table::datetime(t));
        let inc_value = |v: i128| match i64::try_from(v) {
            Ok(v) => SqlValue::Int(v),
            Err(_) => SqlValue::Uint(v as u64),
        };
        match self.mode {
            Mode::Bulk => (base, vec![]),
            Mode::Incrementing => match self.cursor.incrementing {
                Some(last) => {
                    (format!("{base} WHERE {inc} > ? ORDER BY {inc} ASC LIMIT {limit}"), vec![inc_value(last)])
                }
                None => (format!("{base} ORDER BY {inc} ASC LIMIT {limit}"), vec![]),
            },
            Mode::Timestamp => {
                let upper = upper.map(|u| at(&u)).unwrap_or(SqlValue::Null);
                match (&self.cursor.timestamp, &self.initial_timestamp) {
                    (Some(last), _) => (
                        format!("{base} WHERE {ts} > ? AND {ts} < ? ORDER BY {ts} ASC LIMIT {limit}"),
                        vec![at(last), upper],
                    ),
                    (None, Some(initial)) => (
                        format!("{base} WHERE {ts} >= ? AND {ts} < ? ORDER BY {ts} ASC LIMIT {limit}"),
                        vec![at(initial), upper],
                    ),
                    (None, None) => (format!("{base} WHERE {ts} < ? ORDER BY {ts} ASC LIMIT {limit}"), vec![upper]),
                }
            }
            Mode::TimestampIncrementing => {
                let upper = upper.map(|u| at(&u)).unwrap_or(SqlValue::Null);
                let order = format!("ORDER BY {ts} ASC, {inc} ASC LIMIT {limit}");
                match (&self.cursor.timestamp, self.cursor.incrementing, &self.initial_timestamp) {
                    (Some(last_ts), Some(last_inc), _) => (
                        format!("{base} WHERE {ts} < ? AND (({ts} = ? AND {inc} > ?) OR {ts} > ?) {order}"),
                        vec![upper, at(last_ts), inc_value(last_inc), at(last_ts)],
                    ),
                    (_, _, Some(initial)) => {
                        (format!("{base} WHERE {ts} < ? AND {ts} >= ? {order}"), vec![upper, at(initial)])
                    }
                    _ => (format!("{base} WHERE {ts} < ? {order}"), vec![upper]),
                }
            }
        }
    }

    /// The cursor a row brings the table to.
    fn key_of(&self, row: &[SqlValue]) -> Result<Cursor, PluginError> {
        let mut key = Cursor::default();
        if self.mode.uses_incrementing() {
            let index = self.incrementing.unwrap_or(0);
            key.incrementing = Some(match &row[index] {
                SqlValue::Int(v) => *v as i128,
                SqlValue::Uint(v) => *v as i128,
                other => {
                    return Err(PluginError::fatal(format!(
                        "table {}: incrementing column \"{}\" holds {other:?}, not an integer",
                        self.partition, self.columns[index].name
                    )));
                }
            });
        }
        if self.mode.uses_timestamp() {
            key.timestamp = match row.get(self.columns.len()) {
                Some(SqlValue::Datetime(t)) => table::naive(t),
                Some(SqlValue::Date(d)) => table::naive(&rmq_openmldb_sdk::sql::Datetime {
                    date: *d,
                    hour: 0,
                    minute: 0,
                    second: 0,
                    microsecond: 0,
                }),
                _ => None,
            };
            if key.timestamp.is_none() {
                return Err(PluginError::fatal(format!(
                    "table {}: a row has no usable value in the timestamp column(s) ({})",
                    self.partition,
                    self.expr()
                )));
            }
        }
        Ok(key)
    }

    fn envelope(&self, row: &[SqlValue]) -> Result<String, PluginError> {
        let mut body = String::with_capacity(self.envelope_prefix.len() + 32 * self.columns.len());
        body.push_str(&self.envelope_prefix);
        body.push('{');
        for (i, column) in self.columns.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&serde_json::to_string(&column.name).unwrap_or_default());
            body.push(':');
            table::write_value(&mut body, column, &row[i], &self.zone).map_err(|e| {
                PluginError::fatal(format!("table {}: column \"{}\": {e}", self.partition, column.name))
            })?;
        }
        body.push_str("}}");
        Ok(body)
    }
}

/// A query through the granted connection, with its failure as a plugin
/// error: connection trouble is retryable, the rest is not.
pub fn query(partition: &str, statement: &str, params: &[SqlValue]) -> Result<ResultSet, PluginError> {
    sql::query(statement, params).map_err(|e| {
        let kind = match e.kind {
            sql::SqlErrorKind::Connection | sql::SqlErrorKind::Timeout => rmq_openmldb_sdk::ErrorKind::Retryable,
            sql::SqlErrorKind::NotGranted => rmq_openmldb_sdk::ErrorKind::InvalidConfig,
            sql::SqlErrorKind::Statement => rmq_openmldb_sdk::ErrorKind::Fatal,
        };
        PluginError::new(kind, format!("table {partition}: {}", e.message))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip() {
        let zone = Zone::parse("+08:00").unwrap();
        let ts = NaiveDateTime::parse_from_str("2022-02-08 19:06:39.250000", "%Y-%m-%d %H:%M:%S%.f").unwrap();
        let cursor = Cursor { timestamp: Some(ts), incrementing: Some(14) };
        let text = cursor.to_position(false, &zone);
        assert!(text.contains("\"incrementing\":14"), "{text}");
        assert_eq!(Cursor::from_position(&text, false, &zone).unwrap(), cursor);
        // RocketMQ Connect's own position form.
        let connect = r#"{"timestamp":1644318399250,"timestamp_nanos":250000000}"#;
        assert_eq!(Cursor::from_position(connect, false, &zone).unwrap().timestamp, Some(ts));
    }
}
