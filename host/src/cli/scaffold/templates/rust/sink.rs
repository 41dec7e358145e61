//! @NAME@: an rmq-openmldb sink. It writes each batch into the table the
//! connector names, in the database its `connection.url` grants, with one
//! INSERT per row, all of a batch in one transaction. (The built-in
//! `mysql-sink` does the same with multi-row INSERTs, upserts and
//! refused-row isolation; start from this to write somewhere else or
//! differently.) `rmq-openmldb plugin build` makes the component.

wit_bindgen::generate!({ path: "wit", world: "sink-plugin", additional_derives: [PartialEq] });

use exports::rmq_openmldb::plugin::sink::Guest;
use rmq_openmldb::plugin::sql::{self, Datetime, SqlErrorKind, SqlValue};
use rmq_openmldb::plugin::types::{
    Cell, Date, ErrorKind, FailureKind, Needs, PluginError, PluginInfo, RecordFailure, RowBatch, TableSchema,
};
use std::cell::RefCell;

thread_local! {
    /// The INSERT statement for the table, set by `init`.
    static STATEMENT: RefCell<String> = const { RefCell::new(String::new()) };
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Plugin;

impl Guest for Plugin {
    /// `schema` is the table as the database describes it; rows arrive in
    /// its column order.
    fn init(_config: Vec<(String, String)>, schema: TableSchema) -> Result<PluginInfo, PluginError> {
        STATEMENT.with(|s| *s.borrow_mut() = insert_statement(&schema));
        Ok(PluginInfo { name: "@NAME@".into(), version: env!("CARGO_PKG_VERSION").into(), max_batch: None, needs: Needs::empty() })
    }

    /// Failures name rows that can never be written (the host sends them
    /// to the dead-letter topic); `err` means nothing of the batch counts
    /// as written, and the host retries it (`retryable`) or stops.
    fn write(batch: RowBatch) -> Result<Vec<RecordFailure>, PluginError> {
        let mut failures = Vec::new();
        let mut params = Vec::with_capacity(batch.rows.len());
        for (index, row) in batch.rows.into_iter().enumerate() {
            match row.cells.into_iter().map(sql_value).collect::<Option<Vec<_>>>() {
                Some(values) => params.push(values),
                None => failures.push(RecordFailure {
                    index: index as u32,
                    kind: FailureKind::InvalidValue,
                    message: "a timestamp is out of range".into(),
                }),
            }
        }
        let statement = STATEMENT.with(|s| s.borrow().clone());
        sql::execute(&statement, &params).map_err(|e| {
            let kind = match e.kind {
                SqlErrorKind::Connection | SqlErrorKind::Timeout => ErrorKind::Retryable,
                SqlErrorKind::NotGranted => ErrorKind::InvalidConfig,
                SqlErrorKind::Statement => ErrorKind::Fatal,
            };
            PluginError { kind, message: e.message }
        })?;
        Ok(failures)
    }

    /// `execute` committed already; a sink that buffers would write here.
    fn flush() -> Result<(), PluginError> {
        Ok(())
    }
}

fn insert_statement(schema: &TableSchema) -> String {
    let quote = |name: &str| format!("`{}`", name.replace('`', "``"));
    let names: Vec<String> = schema.columns.iter().map(|c| quote(&c.name)).collect();
    let marks = vec!["?"; names.len()].join(", ");
    format!("INSERT INTO {} ({}) VALUES ({marks})", quote(&schema.table), names.join(", "))
}

/// A cell as a statement parameter; timestamps as UTC date-times (the
/// session's time zone is UTC).
fn sql_value(cell: Cell) -> Option<SqlValue> {
    Some(match cell {
        Cell::Null => SqlValue::Null,
        Cell::Bool(b) => SqlValue::Int(b.into()),
        Cell::Smallint(n) => SqlValue::Int(n.into()),
        Cell::Int(n) => SqlValue::Int(n.into()),
        Cell::Bigint(n) => SqlValue::Int(n),
        Cell::Float(f) => SqlValue::Float(f),
        Cell::Double(f) => SqlValue::Double(f),
        Cell::String(s) => SqlValue::Text(s),
        Cell::Date(d) => SqlValue::Date(d),
        Cell::Timestamp(ms) => SqlValue::Datetime(utc(ms)?),
    })
}

/// Epoch milliseconds as a UTC date-time (civil-from-days, proleptic Gregorian).
fn utc(ms: i64) -> Option<Datetime> {
    let (days, in_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = i32::try_from(yoe + era * 400 + i64::from(month <= 2)).ok()?;
    Some(Datetime {
        date: Date { year, month, day },
        hour: (in_day / 3_600_000) as u8,
        minute: (in_day / 60_000 % 60) as u8,
        second: (in_day / 1000 % 60) as u8,
        microsecond: (in_day % 1000 * 1000) as u32,
    })
}

// Exported only in the component; native builds (cargo test) skip it.
#[cfg(target_arch = "wasm32")]
export!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;
    use rmq_openmldb::plugin::types::{Column, ColumnType};

    #[test]
    fn the_statement_names_every_column_and_timestamps_are_utc() {
        let column = |name: &str| Column { name: name.into(), type_: ColumnType::Bigint, nullable: true };
        let schema = TableSchema { database: "d".into(), table: "t".into(), columns: vec![column("id"), column("v")] };
        assert_eq!(insert_statement(&schema), "INSERT INTO `t` (`id`, `v`) VALUES (?, ?)");
        let at = utc(1_700_000_001_250).unwrap();
        assert_eq!((at.date.year, at.date.month, at.date.day, at.hour, at.minute, at.second), (2023, 11, 14, 22, 13, 21));
        assert_eq!(at.microsecond, 250_000);
    }
}
