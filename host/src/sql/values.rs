//! MySQL's values and column descriptions in the WIT's terms, and back.

use crate::plugin::bindings::Date;
use crate::plugin::bindings::sql::{Datetime, SqlColumn, SqlValue};
use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::{Column, Params, Value};

/// MySQL's character set number for binary data.
const BINARY_CHARSET: u16 = 63;

/// Why a bound value cannot reach MySQL as it is (checked before sending,
/// so nothing is ever stored as another value): dates and date-times
/// outside the years MySQL's protocol carries (0..9999), or fields out of
/// their ranges.
pub fn check_params(values: &[SqlValue]) -> Result<(), String> {
    for (position, value) in values.iter().enumerate() {
        let date = match value {
            SqlValue::Date(d) => Some((d, None)),
            SqlValue::Datetime(t) => Some((&t.date, Some(t))),
            _ => None,
        };
        let Some((d, time)) = date else { continue };
        let fits = (0..=9999).contains(&d.year) && d.month <= 12 && d.day <= 31;
        let time_fits = time.is_none_or(|t| t.hour < 24 && t.minute < 60 && t.second < 60 && t.microsecond < 1_000_000);
        if !fits || !time_fits {
            return Err(format!(
                "parameter {}: {}-{}-{} is outside what MySQL can store (years 0 to 9999)",
                position + 1,
                d.year,
                d.month,
                d.day
            ));
        }
    }
    Ok(())
}

/// Values as statement parameters; [`check_params`] must have passed.
pub fn params(values: Vec<SqlValue>) -> Params {
    if values.is_empty() {
        return Params::Empty;
    }
    Params::Positional(values.into_iter().map(param).collect())
}

fn param(value: SqlValue) -> Value {
    match value {
        SqlValue::Null => Value::NULL,
        SqlValue::Int(v) => Value::Int(v),
        SqlValue::Uint(v) => Value::UInt(v),
        SqlValue::Float(v) => Value::Float(v),
        SqlValue::Double(v) => Value::Double(v),
        SqlValue::Decimal(text) | SqlValue::Text(text) => Value::Bytes(text.into_bytes()),
        SqlValue::Bytes(bytes) => Value::Bytes(bytes),
        SqlValue::Date(d) => Value::Date(d.year as u16, d.month, d.day, 0, 0, 0, 0),
        SqlValue::Datetime(t) => {
            Value::Date(t.date.year as u16, t.date.month, t.date.day, t.hour, t.minute, t.second, t.microsecond)
        }
        SqlValue::Time(micros) => {
            let negative = micros < 0;
            let total = micros.unsigned_abs();
            let seconds = total / 1_000_000;
            Value::Time(
                negative,
                (seconds / 86_400) as u32,
                ((seconds / 3600) % 24) as u8,
                ((seconds / 60) % 60) as u8,
                (seconds % 60) as u8,
                (total % 1_000_000) as u32,
            )
        }
    }
}

/// One cell, read the way its column says: DECIMAL as exact text,
/// binary strings as bytes, other strings as UTF-8.
pub fn value(column: &Column, value: Option<Value>) -> SqlValue {
    let Some(value) = value else { return SqlValue::Null };
    match value {
        Value::NULL => SqlValue::Null,
        Value::Int(v) => SqlValue::Int(v),
        Value::UInt(v) => SqlValue::Uint(v),
        Value::Float(v) => SqlValue::Float(v),
        Value::Double(v) => SqlValue::Double(v),
        Value::Bytes(bytes) => match column.column_type() {
            ColumnType::MYSQL_TYPE_DECIMAL | ColumnType::MYSQL_TYPE_NEWDECIMAL => {
                SqlValue::Decimal(String::from_utf8_lossy(&bytes).into_owned())
            }
            ColumnType::MYSQL_TYPE_BIT | ColumnType::MYSQL_TYPE_GEOMETRY => SqlValue::Bytes(bytes),
            _ if is_binary(column) => SqlValue::Bytes(bytes),
            _ => SqlValue::Text(
                String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            ),
        },
        Value::Date(year, month, day, hour, minute, second, microsecond) => {
            let date = Date { year: year as i32, month, day };
            if column.column_type() == ColumnType::MYSQL_TYPE_DATE {
                SqlValue::Date(date)
            } else {
                SqlValue::Datetime(Datetime { date, hour, minute, second, microsecond })
            }
        }
        Value::Time(negative, days, hours, minutes, seconds, micros) => {
            let total = ((days as i64 * 24 + hours as i64) * 3600 + minutes as i64 * 60 + seconds as i64) * 1_000_000
                + micros as i64;
            SqlValue::Time(if negative { -total } else { total })
        }
    }
}

fn is_binary(column: &Column) -> bool {
    column.character_set() == BINARY_CHARSET
}

pub fn column(column: &Column) -> SqlColumn {
    let flags = column.flags();
    SqlColumn {
        name: column.name_str().into_owned(),
        type_name: type_name(column).to_string(),
        nullable: !flags.contains(ColumnFlags::NOT_NULL_FLAG),
        unsigned: flags.contains(ColumnFlags::UNSIGNED_FLAG),
        auto_increment: flags.contains(ColumnFlags::AUTO_INCREMENT_FLAG),
        primary_key: flags.contains(ColumnFlags::PRI_KEY_FLAG),
        binary: is_binary(column),
        decimals: column.decimals(),
    }
}

/// The SQL type name a column was declared with, as far as the protocol
/// tells (TEXT and BLOB share a wire type and differ by character set).
fn type_name(column: &Column) -> &'static str {
    use ColumnType::*;
    let flags = column.flags();
    let binary = is_binary(column);
    match column.column_type() {
        MYSQL_TYPE_TINY => "TINYINT",
        MYSQL_TYPE_SHORT => "SMALLINT",
        MYSQL_TYPE_INT24 => "MEDIUMINT",
        MYSQL_TYPE_LONG => "INT",
        MYSQL_TYPE_LONGLONG => "BIGINT",
        MYSQL_TYPE_FLOAT => "FLOAT",
        MYSQL_TYPE_DOUBLE => "DOUBLE",
        MYSQL_TYPE_DECIMAL | MYSQL_TYPE_NEWDECIMAL => "DECIMAL",
        MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => "DATE",
        MYSQL_TYPE_DATETIME | MYSQL_TYPE_DATETIME2 => "DATETIME",
        MYSQL_TYPE_TIMESTAMP | MYSQL_TYPE_TIMESTAMP2 => "TIMESTAMP",
        MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2 => "TIME",
        MYSQL_TYPE_YEAR => "YEAR",
        MYSQL_TYPE_BIT => "BIT",
        MYSQL_TYPE_JSON => "JSON",
        MYSQL_TYPE_GEOMETRY => "GEOMETRY",
        MYSQL_TYPE_NULL => "NULL",
        MYSQL_TYPE_ENUM => "ENUM",
        MYSQL_TYPE_SET => "SET",
        MYSQL_TYPE_STRING if flags.contains(ColumnFlags::ENUM_FLAG) => "ENUM",
        MYSQL_TYPE_STRING if flags.contains(ColumnFlags::SET_FLAG) => "SET",
        MYSQL_TYPE_STRING => {
            if binary {
                "BINARY"
            } else {
                "CHAR"
            }
        }
        MYSQL_TYPE_VARCHAR | MYSQL_TYPE_VAR_STRING => {
            if binary {
                "VARBINARY"
            } else {
                "VARCHAR"
            }
        }
        MYSQL_TYPE_TINY_BLOB | MYSQL_TYPE_MEDIUM_BLOB | MYSQL_TYPE_LONG_BLOB | MYSQL_TYPE_BLOB => {
            if binary {
                "BLOB"
            } else {
                "TEXT"
            }
        }
        MYSQL_TYPE_VECTOR => "VECTOR",
        MYSQL_TYPE_TYPED_ARRAY | MYSQL_TYPE_UNKNOWN => "UNKNOWN",
    }
}
