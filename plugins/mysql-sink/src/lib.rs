//! The built-in MySQL/MariaDB sink: rows into a table through the SQL
//! connection the connector grants, as RocketMQ Connect's JDBC sink does
//! for MySQL.
//!
//! A batch becomes one multi-row `INSERT` (`insert.mode` `INSERT`), or
//! `INSERT ... ON DUPLICATE KEY UPDATE` (`UPSERT`), or `INSERT IGNORE`
//! (`INSERT_OR_IGNORE`); a batch larger than MySQL's 65,535 placeholders
//! (or `batch.size` rows) is split into several statements. The host runs
//! the whole `write` in one transaction it commits after `flush`, so a
//! batch is stored whole or not at all, however many statements it took.
//!
//! When MySQL refuses the statement because of a row's data (NULL in a
//! NOT NULL column, a duplicate key, a value out of range or too long, a
//! failed constraint), the batch is split in halves until the refused
//! rows are found; they are reported as failures (the host dead-letters
//! them) and the rest is written. Any other refusal (no table, no
//! privilege) fails the call, and a lost connection asks the host to
//! retry: nothing of the batch is committed by the host in either case.
//!
//! Timestamps are written as UTC date-times (the session's time zone is
//! UTC): a TIMESTAMP column holds the instant, a DATETIME column its UTC
//! wall-clock time.

use rmq_openmldb_sdk::prelude::*;
use rmq_openmldb_sdk::sql::{self, Datetime, SqlErrorKind, SqlValue};

/// MySQL's limit on `?` placeholders in one prepared statement.
const MAX_PLACEHOLDERS: usize = 65_535;
/// Rows per statement unless `batch.size` says otherwise.
const DEFAULT_BATCH_ROWS: usize = 3000;

/// MySQL error numbers that mean "this row's data", not "this statement".
const ROW_ERRORS: &[u16] = &[
    1048, // Column cannot be null
    1062, // Duplicate entry
    1264, // Out of range value
    1265, // Data truncated
    1292, // Incorrect/truncated value
    1366, // Incorrect value for column
    1406, // Data too long
    1451, // Foreign key: cannot delete or update a parent row
    1452, // Foreign key: cannot add or update a child row
    1690, // Value out of range
    3819, // Check constraint violated (MySQL)
    4025, // CONSTRAINT failed (MariaDB)
];

pub struct MysqlSink {
    /// `INSERT [IGNORE] INTO `table` (`a`, `b`) VALUES `
    statement_head: String,
    /// `(?, ?)`: one row's placeholders.
    row_placeholders: String,
    /// ` ON DUPLICATE KEY UPDATE ...` for upserts; empty otherwise.
    statement_tail: String,
    rows_per_statement: usize,
    columns: Vec<Column>,
    table: String,
}

fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

impl Sink for MysqlSink {
    fn init(config: PluginConfig, schema: TableSchema) -> Result<(Self, PluginInfo), PluginError> {
        if schema.columns.is_empty() {
            return Err(PluginError::schema_mismatch(format!("table {} has no columns", schema.table)));
        }
        let mode = config.choice_or("insert.mode", &["INSERT", "UPSERT", "INSERT_OR_IGNORE"], "INSERT")?;
        let batch_rows: usize = config.parse_or("batch.size", DEFAULT_BATCH_ROWS)?;
        if batch_rows == 0 {
            return Err(PluginError::invalid_config("config key \"batch.size\": \"0\": must be at least 1"));
        }
        let names: Vec<String> = schema.columns.iter().map(|c| quote(&c.name)).collect();
        let ignore = if mode == "INSERT_OR_IGNORE" { "IGNORE " } else { "" };
        let statement_tail = if mode == "UPSERT" {
            let updates: Vec<String> = names.iter().map(|n| format!("{n} = VALUES({n})")).collect();
            format!(" ON DUPLICATE KEY UPDATE {}", updates.join(", "))
        } else {
            String::new()
        };
        let sink = MysqlSink {
            statement_head: format!("INSERT {ignore}INTO {} ({}) VALUES ", quote(&schema.table), names.join(", ")),
            row_placeholders: format!("({})", vec!["?"; names.len()].join(", ")),
            statement_tail,
            rows_per_statement: batch_rows.min(MAX_PLACEHOLDERS / names.len()).max(1),
            columns: schema.columns,
            table: schema.table,
        };
        Ok((sink, rmq_openmldb_sdk::plugin_info("mysql-sink", env!("CARGO_PKG_VERSION"))))
    }

    fn write(&mut self, batch: RowBatch) -> Result<Vec<RecordFailure>, PluginError> {
        let mut failures = Vec::new();
        let mut rows: Vec<(u32, Vec<SqlValue>)> = Vec::with_capacity(batch.rows.len());
        for (index, row) in batch.rows.into_iter().enumerate() {
            match self.values(row) {
                Ok(values) => rows.push((index as u32, values)),
                Err(message) => {
                    failures.push(RecordFailure { index: index as u32, kind: FailureKind::InvalidValue, message })
                }
            }
        }
        for chunk in rows.chunks(self.rows_per_statement) {
            self.insert_isolating(chunk, &mut failures)?;
        }
        failures.sort_by_key(|f| f.index);
        Ok(failures)
    }

    /// Every write is committed when `write` returns.
    fn flush(&mut self) -> Result<(), PluginError> {
        Ok(())
    }
}

impl MysqlSink {
    /// A row's cells as statement parameters, in column order.
    fn values(&self, row: Row) -> Result<Vec<SqlValue>, String> {
        if row.cells.len() != self.columns.len() {
            return Err(format!(
                "the row has {} cells, table {} has {} columns",
                row.cells.len(),
                self.table,
                self.columns.len()
            ));
        }
        row.cells
            .into_iter()
            .zip(&self.columns)
            .map(|(cell, column)| match cell {
                Cell::Null => Ok(SqlValue::Null),
                Cell::Bool(b) => Ok(SqlValue::Int(i64::from(b))),
                Cell::Smallint(n) => Ok(SqlValue::Int(n.into())),
                Cell::Int(n) => Ok(SqlValue::Int(n.into())),
                Cell::Bigint(n) => Ok(SqlValue::Int(n)),
                // MySQL keeps no sign on zero (it stores -0.0 as 0), and
                // a changed value is worse than a refused one.
                Cell::Float(f) if f == 0.0 && f.is_sign_negative() => Err(negative_zero(&column.name)),
                Cell::Double(f) if f == 0.0 && f.is_sign_negative() => Err(negative_zero(&column.name)),
                Cell::Float(f) if !f.is_finite() => Err(not_finite(&column.name, f as f64)),
                Cell::Double(f) if !f.is_finite() => Err(not_finite(&column.name, f)),
                Cell::Float(f) => Ok(SqlValue::Float(f)),
                Cell::Double(f) => Ok(SqlValue::Double(f)),
                Cell::String(s) => Ok(SqlValue::Text(s)),
                // MySQL's DATE and DATETIME hold the years 1000 to 9999;
                // anything else is refused here rather than changed there.
                Cell::Date(d) if !(1000..=9999).contains(&d.year) => Err(format!(
                    "column \"{}\": date {}-{}-{} is outside MySQL's 1000-01-01..9999-12-31",
                    column.name, d.year, d.month, d.day
                )),
                Cell::Date(d) => Ok(SqlValue::Date(d)),
                Cell::Timestamp(ms) => utc_datetime(ms)
                    .filter(|t| (1000..=9999).contains(&t.date.year))
                    .map(SqlValue::Datetime)
                    .ok_or_else(|| {
                        format!("column \"{}\": timestamp {ms} is outside MySQL's DATETIME range", column.name)
                    }),
            })
            .collect()
    }

    /// Insert rows in one statement; when MySQL refuses it for a row's
    /// data, halve until the refused rows are found (each half is its own
    /// statement, and a refused statement wrote nothing: each `execute` is
    /// all or nothing, inside the batch's transaction too).
    fn insert_isolating(
        &self,
        rows: &[(u32, Vec<SqlValue>)],
        failures: &mut Vec<RecordFailure>,
    ) -> Result<(), PluginError> {
        if rows.is_empty() {
            return Ok(());
        }
        let placeholders = vec![self.row_placeholders.as_str(); rows.len()].join(", ");
        let statement = format!("{}{placeholders}{}", self.statement_head, self.statement_tail);
        let params: Vec<SqlValue> = rows.iter().flat_map(|(_, values)| values.iter().cloned()).collect();
        let error = match sql::execute(&statement, &[params]) {
            Ok(_) => return Ok(()),
            Err(error) => error,
        };
        match error.kind {
            SqlErrorKind::Statement if error.code.is_some_and(|code| ROW_ERRORS.contains(&code)) => {
                if let [(index, _)] = rows {
                    failures.push(RecordFailure {
                        index: *index,
                        kind: FailureKind::Rejected,
                        message: format!("MySQL refused the row for table {}: {}", self.table, error.message),
                    });
                    return Ok(());
                }
                let (left, right) = rows.split_at(rows.len() / 2);
                self.insert_isolating(left, failures)?;
                self.insert_isolating(right, failures)
            }
            SqlErrorKind::Connection | SqlErrorKind::Timeout => {
                Err(PluginError::new(ErrorKind::Retryable, format!("table {}: {}", self.table, error.message)))
            }
            SqlErrorKind::NotGranted => Err(PluginError::invalid_config(error.message)),
            SqlErrorKind::Statement => Err(PluginError::fatal(format!("table {}: {}", self.table, error.message))),
        }
    }
}

fn negative_zero(column: &str) -> String {
    format!("column \"{column}\": -0.0 cannot be stored exactly: MySQL keeps no sign on zero")
}

fn not_finite(column: &str, value: f64) -> String {
    format!("column \"{column}\": {value} cannot be stored: MySQL has no NaN or infinities")
}

/// Epoch milliseconds as a UTC date-time.
fn utc_datetime(ms: i64) -> Option<Datetime> {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let date = rmq_openmldb_sdk::time::date_from_epoch_days(days).ok()?;
    Some(Datetime {
        date,
        hour: (in_day / 3_600_000) as u8,
        minute: (in_day / 60_000 % 60) as u8,
        second: (in_day / 1000 % 60) as u8,
        microsecond: (in_day % 1000 * 1000) as u32,
    })
}

rmq_openmldb_sdk::export_sink!(MysqlSink);

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> TableSchema {
        let column = |name: &str, type_| Column { name: name.into(), type_, nullable: true };
        TableSchema {
            database: "demo".into(),
            table: "orders".into(),
            columns: vec![column("id", ColumnType::Bigint), column("ts", ColumnType::Timestamp)],
        }
    }

    #[test]
    fn statements_follow_insert_mode() {
        let config = |mode: &str| PluginConfig::new(vec![("insert.mode".into(), mode.into())]);
        let (sink, _) = MysqlSink::init(config("UPSERT"), schema()).unwrap();
        assert_eq!(sink.statement_head, "INSERT INTO `orders` (`id`, `ts`) VALUES ");
        assert_eq!(sink.row_placeholders, "(?, ?)");
        assert_eq!(sink.statement_tail, " ON DUPLICATE KEY UPDATE `id` = VALUES(`id`), `ts` = VALUES(`ts`)");
        let (ignore, _) = MysqlSink::init(config("insert_or_ignore"), schema()).unwrap();
        assert!(ignore.statement_head.starts_with("INSERT IGNORE INTO"));
        let err = MysqlSink::init(config("MERGE"), schema()).err().unwrap();
        assert!(err.message.contains("insert.mode") && err.message.contains("MERGE"), "{}", err.message);
    }

    #[test]
    fn timestamps_become_utc_datetimes() {
        let t = utc_datetime(1_700_000_001_250).unwrap();
        assert_eq!((t.date.year, t.date.month, t.date.day), (2023, 11, 14));
        assert_eq!((t.hour, t.minute, t.second, t.microsecond), (22, 13, 21, 250_000));
        let before_epoch = utc_datetime(-1).unwrap();
        assert_eq!((before_epoch.date.year, before_epoch.hour, before_epoch.microsecond), (1969, 23, 999_000));
    }

    #[test]
    fn placeholders_stay_under_mysqls_limit() {
        let wide = TableSchema {
            columns: (0..100)
                .map(|i| Column { name: format!("c{i}"), type_: ColumnType::Int, nullable: true })
                .collect(),
            ..schema()
        };
        let (sink, _) = MysqlSink::init(PluginConfig::new(vec![]), wide).unwrap();
        assert_eq!(sink.rows_per_statement, 655);
    }
}
