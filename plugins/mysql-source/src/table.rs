//! One source table: its columns as `information_schema` describes them,
//! how each maps to RocketMQ Connect's JsonConverter schema (the mapping
//! OpenMLDB's `auto.create` reads), and how a row becomes an envelope.

use base64::Engine as _;
use chrono::{NaiveDate, NaiveDateTime};
use rmq_openmldb_sdk::PluginError;
use rmq_openmldb_sdk::sql::{Datetime, SqlValue};
use rmq_openmldb_sdk::time::{Zone, epoch_days};

const LOGICAL: &str = "io.openmessaging.connector.api.data.logical";

/// How a column travels in the envelope.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Int8,
    Int16,
    Int32,
    Int64,
    /// BIT(1)
    Boolean,
    /// BIT(2..=63), as the number its bits spell.
    Bits,
    Float,
    Double,
    /// DECIMAL/NUMERIC up to 38 digits: logical Decimal, base64 of the
    /// unscaled two's-complement integer (JsonConverter's default).
    Decimal {
        scale: u32,
    },
    Text,
    /// TIME, which OpenMLDB has no type for: "[-]HH:MM:SS[.ffffff]".
    TimeText,
    Bytes,
    /// logical Date: days since 1970-01-01.
    Date,
    /// logical Timestamp: epoch ms. DATETIME is read in `db.timezone`,
    /// TIMESTAMP (an instant, returned in UTC) in UTC.
    Timestamp {
        utc: bool,
    },
}

#[derive(Debug, Clone)]
pub struct SourceColumn {
    pub name: String,
    pub kind: Kind,
    pub nullable: bool,
    pub auto_increment: bool,
    /// `information_schema.COLUMNS.DATA_TYPE`, lower case.
    pub data_type: String,
}

/// `information_schema` row → column, or a start-time error naming the
/// table, the column and its type.
pub fn column_from_schema(
    table: &str,
    name: &str,
    data_type: &str,
    column_type: &str,
    nullable: bool,
    precision: Option<u64>,
    scale: Option<u64>,
    extra: &str,
) -> Result<SourceColumn, PluginError> {
    let unsigned = column_type.to_ascii_lowercase().contains("unsigned");
    let data_type = data_type.to_ascii_lowercase();
    let refuse = |why: &str| {
        PluginError::invalid_config(format!(
            "table {table}: column \"{name}\" has type {column_type}, which OpenMLDB cannot hold: {why}"
        ))
    };
    let kind = match data_type.as_str() {
        "tinyint" => {
            if unsigned {
                Kind::Int16
            } else {
                Kind::Int8
            }
        }
        "smallint" => {
            if unsigned {
                Kind::Int32
            } else {
                Kind::Int16
            }
        }
        "mediumint" => Kind::Int32,
        "int" | "integer" => {
            if unsigned {
                Kind::Int64
            } else {
                Kind::Int32
            }
        }
        // BIGINT UNSIGNED above 2^63-1 fails the poll that reads it, naming the value.
        "bigint" => Kind::Int64,
        "float" => Kind::Float,
        "double" | "real" | "double precision" => Kind::Double,
        "decimal" | "numeric" | "fixed" | "dec" => {
            if precision.unwrap_or(10) > 38 {
                return Err(refuse("decimals wider than 38 digits do not fit OpenMLDB's numbers"));
            }
            Kind::Decimal { scale: scale.unwrap_or(0) as u32 }
        }
        "bit" => match precision.unwrap_or(1) {
            1 => Kind::Boolean,
            2..=63 => Kind::Bits,
            _ => return Err(refuse("BIT(64) does not fit a signed 64-bit column")),
        },
        "year" => Kind::Int16,
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum" | "set" | "json" | "uuid"
        | "inet4" | "inet6" => Kind::Text,
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => Kind::Bytes,
        "date" => Kind::Date,
        "datetime" => Kind::Timestamp { utc: false },
        "timestamp" => Kind::Timestamp { utc: true },
        "time" => Kind::TimeText,
        _ => return Err(refuse("spatial and other non-scalar types have no OpenMLDB column type; exclude the table")),
    };
    Ok(SourceColumn {
        name: name.to_string(),
        kind,
        nullable,
        auto_increment: extra.to_ascii_lowercase().contains("auto_increment"),
        data_type,
    })
}

/// The schema half of the envelope for a table: a struct named after the
/// table, fields in table order.
pub fn envelope_schema(table_name: &str, columns: &[SourceColumn]) -> String {
    let fields: Vec<serde_json::Value> = columns
        .iter()
        .map(|c| {
            let mut field = serde_json::Map::new();
            let (ty, logical) = match c.kind {
                Kind::Int8 => ("int8", None),
                Kind::Int16 => ("int16", None),
                Kind::Int32 => ("int32", None),
                Kind::Int64 | Kind::Bits => ("int64", None),
                Kind::Boolean => ("boolean", None),
                Kind::Float => ("float", None),
                Kind::Double => ("double", None),
                Kind::Decimal { .. } => ("bytes", Some("Decimal")),
                Kind::Text | Kind::TimeText => ("string", None),
                Kind::Bytes => ("bytes", None),
                Kind::Date => ("int32", Some("Date")),
                Kind::Timestamp { .. } => ("int64", Some("Timestamp")),
            };
            field.insert("type".into(), ty.into());
            field.insert("optional".into(), c.nullable.into());
            if let Some(logical) = logical {
                field.insert("name".into(), format!("{LOGICAL}.{logical}").into());
                field.insert("version".into(), 1.into());
            }
            if let Kind::Decimal { scale } = c.kind {
                field.insert("parameters".into(), serde_json::json!({ "scale": scale.to_string() }));
            }
            field.insert("field".into(), c.name.clone().into());
            serde_json::Value::Object(field)
        })
        .collect();
    serde_json::json!({ "type": "struct", "fields": fields, "optional": false, "name": table_name }).to_string()
}

/// Why one value could not be put in the envelope.
pub type ValueError = String;

/// Append `value` to `out` as the JSON the column's schema promises.
pub fn write_value(out: &mut String, column: &SourceColumn, value: &SqlValue, zone: &Zone) -> Result<(), ValueError> {
    use std::fmt::Write as _;
    let int_range = |v: i128| -> Result<i128, ValueError> {
        let (min, max) = match column.kind {
            Kind::Int8 => (i8::MIN as i128, i8::MAX as i128),
            Kind::Int16 => (i16::MIN as i128, i16::MAX as i128),
            Kind::Int32 => (i32::MIN as i128, i32::MAX as i128),
            _ => (i64::MIN as i128, i64::MAX as i128),
        };
        if v < min || v > max {
            Err(format!("value {v} does not fit OpenMLDB's {} column", kind_name(column.kind)))
        } else {
            Ok(v)
        }
    };
    let unexpected = || format!("unexpected value {value:?} for a {} column", column.data_type);
    match (column.kind, value) {
        (_, SqlValue::Null) => out.push_str("null"),
        (Kind::Int8 | Kind::Int16 | Kind::Int32 | Kind::Int64, SqlValue::Int(v)) => {
            let _ = write!(out, "{}", int_range(*v as i128)?);
        }
        (Kind::Int8 | Kind::Int16 | Kind::Int32 | Kind::Int64, SqlValue::Uint(v)) => {
            let _ = write!(out, "{}", int_range(*v as i128)?);
        }
        (Kind::Boolean, SqlValue::Bytes(b)) => out.push_str(if b.iter().any(|x| *x != 0) { "true" } else { "false" }),
        (Kind::Boolean, SqlValue::Int(v)) => out.push_str(if *v != 0 { "true" } else { "false" }),
        (Kind::Boolean, SqlValue::Uint(v)) => out.push_str(if *v != 0 { "true" } else { "false" }),
        (Kind::Bits, SqlValue::Bytes(b)) => {
            let v = b.iter().fold(0u64, |acc, x| (acc << 8) | *x as u64);
            let _ = write!(out, "{v}");
        }
        (Kind::Bits, SqlValue::Int(v)) => {
            let _ = write!(out, "{v}");
        }
        (Kind::Bits, SqlValue::Uint(v)) => {
            let _ = write!(out, "{v}");
        }
        (Kind::Float, SqlValue::Float(v)) => write_float(out, *v as f64, Some(*v))?,
        (Kind::Float, SqlValue::Double(v)) => write_float(out, *v, Some(*v as f32))?,
        (Kind::Double, SqlValue::Double(v)) => write_float(out, *v, None)?,
        (Kind::Double, SqlValue::Float(v)) => write_float(out, *v as f64, None)?,
        (Kind::Decimal { scale }, SqlValue::Decimal(text) | SqlValue::Text(text)) => {
            let bytes = unscaled_bytes(text, scale)?;
            out.push('"');
            out.push_str(&base64::engine::general_purpose::STANDARD.encode(bytes));
            out.push('"');
        }
        (Kind::Text, SqlValue::Text(s)) => write_string(out, s),
        (Kind::Text, SqlValue::Bytes(b)) => write_string(out, &String::from_utf8_lossy(b)),
        (Kind::Text, SqlValue::Int(v)) => write_string(out, &v.to_string()),
        (Kind::Bytes, SqlValue::Bytes(b)) => {
            out.push('"');
            out.push_str(&base64::engine::general_purpose::STANDARD.encode(b));
            out.push('"');
        }
        (Kind::Bytes, SqlValue::Text(s)) => {
            out.push('"');
            out.push_str(&base64::engine::general_purpose::STANDARD.encode(s.as_bytes()));
            out.push('"');
        }
        (Kind::TimeText, SqlValue::Time(micros)) => write_string(out, &time_text(*micros)),
        (Kind::Date, SqlValue::Date(d)) | (Kind::Date, SqlValue::Datetime(Datetime { date: d, .. })) => {
            match epoch_days(d) {
                Some(days) => {
                    let _ = write!(out, "{days}");
                }
                // MySQL's zero date '0000-00-00' is no day at all.
                None => out.push_str("null"),
            }
        }
        (Kind::Timestamp { utc }, SqlValue::Datetime(t)) => match naive(t) {
            Some(local) => {
                let ms = if utc { local.and_utc().timestamp_millis() } else { zone.local_to_epoch_ms(&local)? };
                let _ = write!(out, "{ms}");
            }
            None => out.push_str("null"),
        },
        _ => return Err(unexpected()),
    }
    Ok(())
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Int8 | Kind::Int16 => "smallint",
        Kind::Int32 => "int",
        _ => "bigint",
    }
}

fn write_float(out: &mut String, v: f64, as_f32: Option<f32>) -> Result<(), ValueError> {
    if !v.is_finite() {
        return Err(format!("value {v} is not a finite number"));
    }
    let text = match as_f32 {
        Some(f) => format!("{f:?}"),
        None => format!("{v:?}"),
    };
    out.push_str(&text);
    Ok(())
}

fn write_string(out: &mut String, s: &str) {
    // serde_json's escaping, without building a Value.
    match serde_json::to_string(s) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("null"),
    }
}

/// A DATETIME/TIMESTAMP wall-clock value; None for MySQL's zero date.
pub fn naive(t: &Datetime) -> Option<NaiveDateTime> {
    NaiveDate::from_ymd_opt(t.date.year, t.date.month.into(), t.date.day.into())?.and_hms_micro_opt(
        t.hour.into(),
        t.minute.into(),
        t.second.into(),
        t.microsecond,
    )
}

/// The WIT's datetime of a wall-clock value.
pub fn datetime(local: &NaiveDateTime) -> Datetime {
    use chrono::{Datelike, Timelike};
    Datetime {
        date: rmq_openmldb_sdk::Date { year: local.year(), month: local.month() as u8, day: local.day() as u8 },
        hour: local.hour() as u8,
        minute: local.minute() as u8,
        second: local.second() as u8,
        microsecond: local.nanosecond() / 1000,
    }
}

fn time_text(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let total = micros.unsigned_abs();
    let (seconds, fraction) = (total / 1_000_000, total % 1_000_000);
    let clock = format!("{sign}{:02}:{:02}:{:02}", seconds / 3600, (seconds / 60) % 60, seconds % 60);
    if fraction == 0 { clock } else { format!("{clock}.{fraction:06}") }
}

/// "-12.50" with scale 2 → the unscaled -1250 as minimal big-endian
/// two's-complement bytes (what JsonConverter's Decimal carries).
fn unscaled_bytes(text: &str, scale: u32) -> Result<Vec<u8>, ValueError> {
    let bad = || format!("value \"{text}\" is not a decimal with scale {scale}");
    let t = text.trim();
    let (negative, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if fraction.len() > scale as usize || !(whole.chars().chain(fraction.chars()).all(|c| c.is_ascii_digit())) {
        return Err(bad());
    }
    let mut unscaled: i128 = 0;
    let padded = format!("{whole}{fraction:0<width$}", width = scale as usize);
    for c in padded.chars() {
        unscaled = unscaled
            .checked_mul(10)
            .and_then(|u| u.checked_add((c as u8 - b'0') as i128))
            .ok_or_else(|| format!("value \"{text}\" is wider than 128 bits"))?;
    }
    if negative {
        unscaled = -unscaled;
    }
    let bytes = unscaled.to_be_bytes();
    // Drop leading bytes that only repeat the sign.
    let mut start = 0;
    while start < 15 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        let redundant = (b == 0x00 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0);
        if !redundant {
            break;
        }
        start += 1;
    }
    Ok(bytes[start..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(kind: Kind) -> SourceColumn {
        SourceColumn { name: "c".into(), kind, nullable: true, auto_increment: false, data_type: "x".into() }
    }

    fn encode(kind: Kind, value: SqlValue) -> Result<String, String> {
        let mut out = String::new();
        write_value(&mut out, &column(kind), &value, &Zone::parse("Asia/Shanghai").unwrap()).map(|_| out)
    }

    #[test]
    fn decimals_are_jsonconverter_bytes() {
        assert_eq!(unscaled_bytes("12.50", 2).unwrap(), vec![0x04, 0xe2]);
        assert_eq!(unscaled_bytes("-1", 0).unwrap(), vec![0xff]);
        assert_eq!(unscaled_bytes("128", 0).unwrap(), vec![0x00, 0x80]);
        assert_eq!(unscaled_bytes("0.5", 1).unwrap(), vec![0x05]);
        assert!(unscaled_bytes("1.234", 2).is_err());
        assert_eq!(encode(Kind::Decimal { scale: 2 }, SqlValue::Decimal("12.50".into())).unwrap(), "\"BOI=\"");
    }

    #[test]
    fn datetimes_use_the_db_zone_and_timestamps_utc() {
        let t = Datetime {
            date: rmq_openmldb_sdk::Date { year: 2021, month: 12, day: 29 },
            hour: 8,
            minute: 0,
            second: 0,
            microsecond: 0,
        };
        // 2021-12-29 08:00 in Shanghai is 00:00 UTC.
        assert_eq!(encode(Kind::Timestamp { utc: false }, SqlValue::Datetime(t)).unwrap(), "1640736000000");
        assert_eq!(encode(Kind::Timestamp { utc: true }, SqlValue::Datetime(t)).unwrap(), "1640764800000");
    }

    #[test]
    fn nulls_stay_null_and_ranges_are_checked() {
        for kind in [Kind::Int32, Kind::Double, Kind::Text, Kind::Date, Kind::Timestamp { utc: false }] {
            assert_eq!(encode(kind, SqlValue::Null).unwrap(), "null");
        }
        assert!(encode(Kind::Int64, SqlValue::Uint(u64::MAX)).unwrap_err().contains("18446744073709551615"));
        assert_eq!(encode(Kind::TimeText, SqlValue::Time(-(3600 * 1_000_000 + 5))).unwrap(), "\"-01:00:00.000005\"");
        assert_eq!(encode(Kind::Float, SqlValue::Float(1.1)).unwrap(), "1.1");
        assert_eq!(encode(Kind::Text, SqlValue::Text("a\"b".into())).unwrap(), "\"a\\\"b\"");
    }

    #[test]
    fn unsupported_types_are_refused_naming_the_column() {
        let e = column_from_schema("db.t", "shape", "geometry", "geometry", true, None, None, "").unwrap_err();
        assert!(e.message.contains("column \"shape\" has type geometry"), "{}", e.message);
        let wide = column_from_schema("db.t", "d", "decimal", "decimal(50,2)", true, Some(50), Some(2), "");
        assert!(wide.unwrap_err().message.contains("38 digits"));
    }
}
