//! The rules that turn JSON values (and cells of another type) into cells of
//! a column's type. Every refusal is a [`CellError`] whose message names the
//! field, the value and the reason, ready for the dead-letter topic.
//!
//! Rules, per target type:
//! - any column: JSON `null` is NULL; NULL in a NOT NULL column is `missing-field`.
//! - bool: `true`/`false`, or the strings "true"/"false" (any case).
//! - smallint/int/bigint: integers, integral floats (`3.0`) and integer
//!   strings, range-checked (`out-of-range`).
//! - float/double: numbers and numeric strings, including "NaN", "Infinity",
//!   "-Infinity"; a float column refuses finite values beyond f32's range.
//! - string: strings as they are; numbers and booleans as their JSON text;
//!   objects and arrays as compact JSON.
//! - date: "yyyy-MM-dd", or an integer number of days since 1970-01-01;
//!   checked against the calendar and 1900..9999.
//! - timestamp: integer epoch milliseconds as is, or a date-time string in
//!   the formats of [`crate::time::parse_timestamp_ms`]; negative is refused.
//!
//! A [`Logical`] hint (from a JsonConverter schema) changes how a number is
//! read: a logical Date is days, a logical Time is ms of the day, a logical
//! Decimal is base64 of an unscaled big-endian integer.

use crate::time::{self, Zone};
use crate::{Cell, Column, ColumnType, FailureKind, RecordFailure};
use base64::Engine as _;
use serde_json::Value;

/// Why a value could not become a cell.
#[derive(Debug, Clone, PartialEq)]
pub struct CellError {
    pub kind: FailureKind,
    pub message: String,
}

impl CellError {
    fn new(kind: FailureKind, message: String) -> Self {
        CellError { kind, message }
    }

    /// The failure of record `index`.
    pub fn into_failure(self, index: u32) -> RecordFailure {
        RecordFailure { index, kind: self.kind, message: self.message }
    }
}

/// Options of the coercion rules.
#[derive(Debug, Clone, Default)]
pub struct CoerceOptions {
    /// Zone for date-time strings without an offset.
    pub zone: Zone,
}

/// How the producer's schema says a value is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Logical {
    #[default]
    None,
    /// int64 epoch ms.
    Timestamp,
    /// int32 days since 1970-01-01.
    Date,
    /// int32 ms of the day.
    Time,
    /// Unscaled integer with this scale: base64 bytes, or a JSON number.
    Decimal { scale: u32 },
    /// Base64 bytes (kept as the base64 text in string columns).
    Bytes,
}

/// Shorten a value for an error message.
pub fn describe(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 120 {
        let mut end = 117;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &text[..end])
    } else {
        text
    }
}

fn mismatch(column: &Column, value: &Value, why: &str) -> CellError {
    CellError::new(FailureKind::TypeMismatch, format!("field \"{}\": value {} {why}", column.name, describe(value)))
}

fn out_of_range(column: &Column, value: &Value, why: &str) -> CellError {
    CellError::new(FailureKind::OutOfRange, format!("field \"{}\": value {} {why}", column.name, describe(value)))
}

fn invalid(column: &Column, value: &Value, why: &str) -> CellError {
    CellError::new(FailureKind::InvalidValue, format!("field \"{}\": value {} {why}", column.name, describe(value)))
}

/// NULL for a nullable column, `missing-field` otherwise.
pub fn null_cell(column: &Column) -> Result<Cell, CellError> {
    if column.nullable {
        Ok(Cell::Null)
    } else {
        Err(CellError::new(
            FailureKind::MissingField,
            format!("field \"{}\": no value for a NOT NULL {} column", column.name, column.type_),
        ))
    }
}

/// Convert a JSON value to a cell of `column`'s type.
pub fn json_to_cell(value: &Value, column: &Column, logical: Logical, opts: &CoerceOptions) -> Result<Cell, CellError> {
    if value.is_null() {
        return null_cell(column);
    }
    match logical {
        Logical::None | Logical::Bytes => {}
        Logical::Timestamp => return timestamp_number_to_cell(value, column, opts),
        Logical::Date => return date_days_to_cell(value, column),
        Logical::Time => return time_of_day_to_cell(value, column),
        Logical::Decimal { scale } => return decimal_to_cell(value, column, scale),
    }
    match column.type_ {
        ColumnType::Bool => match value {
            Value::Bool(b) => Ok(Cell::Bool(*b)),
            Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Ok(Cell::Bool(true)),
            Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Ok(Cell::Bool(false)),
            _ => Err(mismatch(column, value, "is not a boolean")),
        },
        ColumnType::Smallint => {
            let n = json_integer(value, column)?;
            i16::try_from(n)
                .map(Cell::Smallint)
                .map_err(|_| out_of_range(column, value, "does not fit smallint (-32768..32767)"))
        }
        ColumnType::Int => {
            let n = json_integer(value, column)?;
            i32::try_from(n)
                .map(Cell::Int)
                .map_err(|_| out_of_range(column, value, "does not fit int (-2147483648..2147483647)"))
        }
        ColumnType::Bigint => json_integer(value, column).map(Cell::Bigint),
        ColumnType::Float => match value {
            // Text is rounded once, straight to 32 bits (through f64 it
            // would be rounded twice, and can land one unit off).
            Value::String(s) => match parse_f32_text(s) {
                Some(f) if f.is_infinite() && !is_infinity_word(s) => {
                    Err(out_of_range(column, value, "does not fit float (32-bit)"))
                }
                Some(f) => Ok(Cell::Float(f)),
                None => Err(mismatch(column, value, "is not a number")),
            },
            _ => {
                let f = json_float(value, column)?;
                if f.is_finite() && f.abs() > f32::MAX as f64 {
                    return Err(out_of_range(column, value, "does not fit float (32-bit)"));
                }
                Ok(Cell::Float(f as f32))
            }
        },
        ColumnType::Double => {
            if let Value::Number(n) = value
                && let Some(exact) = lossless_integer_as_double(n)
            {
                return exact.map(Cell::Double).ok_or_else(|| {
                    out_of_range(column, value, "is an integer a double cannot hold exactly (beyond 2^53)")
                });
            }
            json_float(value, column).map(Cell::Double)
        }
        ColumnType::String => Ok(Cell::String(match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })),
        ColumnType::Date => match value {
            Value::String(s) => time::parse_date(s).map(Cell::Date).map_err(|why| date_error(column, value, why)),
            Value::Number(_) => date_days_to_cell(value, column),
            _ => Err(mismatch(column, value, "is not a date (\"yyyy-MM-dd\")")),
        },
        ColumnType::Timestamp => match value {
            Value::Number(_) => timestamp_number_to_cell(value, column, opts),
            Value::String(s) => {
                let ms = match s.trim().parse::<i64>() {
                    Ok(ms) => ms,
                    Err(_) => time::parse_timestamp_ms(s, &opts.zone).map_err(|why| mismatch(column, value, &why))?,
                };
                checked_timestamp(ms, column, value)
            }
            _ => Err(mismatch(column, value, "is not a timestamp")),
        },
    }
}

fn date_error(column: &Column, value: &Value, why: String) -> CellError {
    if why.contains("range") {
        out_of_range(column, value, &why)
    } else if why.contains("calendar") {
        invalid(column, value, "is not a calendar date")
    } else {
        mismatch(column, value, &why)
    }
}

fn json_integer(value: &Value, column: &Column) -> Result<i64, CellError> {
    match value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(i)
            } else if n.is_u64() {
                Err(out_of_range(column, value, "does not fit bigint"))
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                integral_float(f).ok_or_else(|| mismatch(column, value, "is not an integer"))
            }
        }
        Value::String(s) => match s.trim().parse::<i64>() {
            Ok(i) => Ok(i),
            Err(_) if s.trim().parse::<i128>().is_ok() => Err(out_of_range(column, value, "does not fit bigint")),
            Err(_) => Err(mismatch(column, value, "is not an integer")),
        },
        _ => Err(mismatch(column, value, "is not an integer")),
    }
}

/// `f` as i64 when it is integral and within i64.
fn integral_float(f: f64) -> Option<i64> {
    (f.is_finite() && f.fract() == 0.0 && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f))
        .then_some(f as i64)
}

fn json_float(value: &Value, column: &Column) -> Result<f64, CellError> {
    match value {
        Value::Number(n) => n.as_f64().ok_or_else(|| mismatch(column, value, "is not a number")),
        Value::String(s) => parse_float_text(s).ok_or_else(|| mismatch(column, value, "is not a number")),
        _ => Err(mismatch(column, value, "is not a number")),
    }
}

/// An integer JSON number as a double: `Some(Some(d))` when `d` is
/// exactly that integer, `Some(None)` when no double is, `None` when the
/// number is not an integer. (OpenMLDB's APIServer refuses such integers
/// for double columns too.)
fn lossless_integer_as_double(n: &serde_json::Number) -> Option<Option<f64>> {
    if let Some(i) = n.as_i64() {
        let d = i as f64;
        // i64::MAX rounds up to 2^63, which does not convert back.
        return Some((d != 9.223_372_036_854_776e18 && d as i64 == i).then_some(d));
    }
    let u = n.as_u64()?;
    let d = u as f64;
    Some((d != 1.844_674_407_370_955_2e19 && d as u64 == u).then_some(d))
}

fn is_infinity_word(s: &str) -> bool {
    matches!(s.trim(), "Infinity" | "Inf" | "inf" | "+Infinity" | "-Infinity" | "-Inf" | "-inf")
}

/// A 32-bit float from text, rounded once (never through f64), accepting
/// OpenMLDB's NaN/Inf spellings. Finite text beyond f32's range gives an
/// infinity; callers refuse it.
pub fn parse_f32_text(s: &str) -> Option<f32> {
    match s.trim() {
        "NaN" | "nan" => Some(f32::NAN),
        "Infinity" | "Inf" | "inf" | "+Infinity" => Some(f32::INFINITY),
        "-Infinity" | "-Inf" | "-inf" => Some(f32::NEG_INFINITY),
        t if t.is_empty() || t.contains(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E') => None,
        t => t.parse::<f32>().ok(),
    }
}

/// The cell of a float column from the JSON text of a number (a
/// converter that keeps the raw text calls this instead of going
/// through `Value`, whose f64 would round the value a second time).
pub fn float_cell_from_number_text(text: &str, column: &Column) -> Result<Cell, CellError> {
    let refuse = |kind, why| CellError::new(kind, format!("field \"{}\": value {text} {why}", column.name));
    match text.parse::<f32>() {
        Ok(f) if f.is_finite() => Ok(Cell::Float(f)),
        Ok(_) => Err(refuse(FailureKind::OutOfRange, "does not fit float (32-bit)")),
        Err(_) => Err(refuse(FailureKind::TypeMismatch, "is not a number")),
    }
}

/// A float from text, accepting OpenMLDB's NaN/Inf spellings.
pub fn parse_float_text(s: &str) -> Option<f64> {
    match s.trim() {
        "NaN" | "nan" => Some(f64::NAN),
        "Infinity" | "Inf" | "inf" | "+Infinity" => Some(f64::INFINITY),
        "-Infinity" | "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        t => t.parse::<f64>().ok().filter(|f| f.is_finite()),
    }
}

fn checked_timestamp(ms: i64, column: &Column, value: &Value) -> Result<Cell, CellError> {
    if ms < 0 {
        Err(invalid(column, value, "is a negative timestamp, which OpenMLDB refuses"))
    } else {
        Ok(Cell::Timestamp(ms))
    }
}

/// An epoch-ms number into a timestamp (or bigint/date/string) column.
fn timestamp_number_to_cell(value: &Value, column: &Column, opts: &CoerceOptions) -> Result<Cell, CellError> {
    let ms = json_integer(value, column)?;
    match column.type_ {
        ColumnType::Timestamp => checked_timestamp(ms, column, value),
        ColumnType::Bigint => Ok(Cell::Bigint(ms)),
        ColumnType::Date => {
            time::date_of_timestamp(ms, &opts.zone).map(Cell::Date).map_err(|why| out_of_range(column, value, &why))
        }
        ColumnType::String => time::format_timestamp(ms, &opts.zone)
            .map(Cell::String)
            .ok_or_else(|| out_of_range(column, value, "is not a representable timestamp")),
        other => Err(mismatch(column, value, &format!("is a timestamp and cannot be stored in a {other} column"))),
    }
}

/// Days since the epoch into a date (or timestamp/int/string) column.
fn date_days_to_cell(value: &Value, column: &Column) -> Result<Cell, CellError> {
    let days = json_integer(value, column)?;
    let date = || time::date_from_epoch_days(days).map_err(|why| out_of_range(column, value, &why));
    match column.type_ {
        ColumnType::Date => date().map(Cell::Date),
        ColumnType::Timestamp => checked_timestamp(days.saturating_mul(86_400_000), column, value),
        ColumnType::Int => {
            i32::try_from(days).map(Cell::Int).map_err(|_| out_of_range(column, value, "does not fit int"))
        }
        ColumnType::Bigint => Ok(Cell::Bigint(days)),
        ColumnType::String => date().map(|d| Cell::String(time::format_date(&d))),
        other => Err(mismatch(column, value, &format!("is a date and cannot be stored in a {other} column"))),
    }
}

/// Milliseconds of the day (OpenMLDB has no TIME type).
fn time_of_day_to_cell(value: &Value, column: &Column) -> Result<Cell, CellError> {
    let ms = json_integer(value, column)?;
    if !(0..86_400_000).contains(&ms) {
        return Err(out_of_range(column, value, "is not a time of day (0..86399999 ms)"));
    }
    match column.type_ {
        ColumnType::Int => Ok(Cell::Int(ms as i32)),
        ColumnType::Bigint => Ok(Cell::Bigint(ms)),
        ColumnType::String => Ok(Cell::String(format!(
            "{:02}:{:02}:{:02}.{:03}",
            ms / 3_600_000,
            ms / 60_000 % 60,
            ms / 1000 % 60,
            ms % 1000
        ))),
        other => Err(mismatch(column, value, &format!("is a time of day and cannot be stored in a {other} column"))),
    }
}

/// A decimal (base64 unscaled bytes or a JSON number) into a numeric or string column.
fn decimal_to_cell(value: &Value, column: &Column, scale: u32) -> Result<Cell, CellError> {
    let (unscaled, text) = match value {
        Value::String(b64) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| mismatch(column, value, "is not base64 decimal bytes"))?;
            if bytes.is_empty() || bytes.len() > 16 {
                return Err(out_of_range(column, value, "is a decimal wider than 128 bits"));
            }
            let fill = if bytes[0] & 0x80 != 0 { 0xff } else { 0 };
            let mut wide = [fill; 16];
            wide[16 - bytes.len()..].copy_from_slice(&bytes);
            let unscaled = i128::from_be_bytes(wide);
            (Some(unscaled), decimal_text(unscaled, scale))
        }
        Value::Number(n) => (None, n.to_string()),
        _ => return Err(mismatch(column, value, "is not a decimal")),
    };
    match column.type_ {
        ColumnType::String => Ok(Cell::String(text)),
        ColumnType::Double => {
            text.parse::<f64>().map(Cell::Double).map_err(|_| mismatch(column, value, "is not a decimal"))
        }
        ColumnType::Float => {
            text.parse::<f32>().map(Cell::Float).map_err(|_| mismatch(column, value, "is not a decimal"))
        }
        ColumnType::Smallint | ColumnType::Int | ColumnType::Bigint => {
            let whole = match unscaled {
                Some(u) if scale == 0 => Some(u),
                Some(u) => {
                    let divisor = 10i128
                        .checked_pow(scale)
                        .ok_or_else(|| out_of_range(column, value, "has too large a scale"))?;
                    (u % divisor == 0).then_some(u / divisor)
                }
                None => text.parse::<f64>().ok().and_then(integral_float).map(i128::from),
            }
            .ok_or_else(|| mismatch(column, value, &format!("is the decimal {text}, which is not an integer")))?;
            let (min, max) = match column.type_ {
                ColumnType::Smallint => (i16::MIN as i128, i16::MAX as i128),
                ColumnType::Int => (i32::MIN as i128, i32::MAX as i128),
                _ => (i64::MIN as i128, i64::MAX as i128),
            };
            if whole < min || whole > max {
                return Err(out_of_range(
                    column,
                    value,
                    &format!("is the decimal {text}, which does not fit {}", column.type_),
                ));
            }
            Ok(match column.type_ {
                ColumnType::Smallint => Cell::Smallint(whole as i16),
                ColumnType::Int => Cell::Int(whole as i32),
                _ => Cell::Bigint(whole as i64),
            })
        }
        other => Err(mismatch(column, value, &format!("is a decimal and cannot be stored in a {other} column"))),
    }
}

/// The exact decimal text of `unscaled * 10^-scale`.
pub fn decimal_text(unscaled: i128, scale: u32) -> String {
    let digits = unscaled.unsigned_abs().to_string();
    let sign = if unscaled < 0 { "-" } else { "" };
    let scale = scale as usize;
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int_part, frac_part) = padded.split_at(padded.len() - scale);
    format!("{sign}{int_part}.{frac_part}")
}

/// The column type of a cell; `None` for NULL.
pub fn cell_type(cell: &Cell) -> Option<ColumnType> {
    Some(match cell {
        Cell::Null => return None,
        Cell::Bool(_) => ColumnType::Bool,
        Cell::Smallint(_) => ColumnType::Smallint,
        Cell::Int(_) => ColumnType::Int,
        Cell::Bigint(_) => ColumnType::Bigint,
        Cell::Float(_) => ColumnType::Float,
        Cell::Double(_) => ColumnType::Double,
        Cell::String(_) => ColumnType::String,
        Cell::Date(_) => ColumnType::Date,
        Cell::Timestamp(_) => ColumnType::Timestamp,
    })
}

/// The cell as a JSON value: numbers as numbers (NaN/Inf as strings), dates
/// as "yyyy-MM-dd", timestamps as epoch ms.
pub fn cell_to_json(cell: &Cell) -> Value {
    match cell {
        Cell::Null => Value::Null,
        Cell::Bool(b) => Value::Bool(*b),
        Cell::Smallint(n) => Value::from(*n),
        Cell::Int(n) => Value::from(*n),
        Cell::Bigint(n) => Value::from(*n),
        Cell::Float(f) => float_json(*f as f64),
        Cell::Double(f) => float_json(*f),
        Cell::String(s) => Value::String(s.clone()),
        Cell::Date(d) => Value::String(time::format_date(d)),
        Cell::Timestamp(ms) => Value::from(*ms),
    }
}

fn float_json(f: f64) -> Value {
    serde_json::Number::from_f64(f).map(Value::Number).unwrap_or_else(|| {
        Value::String(
            if f.is_nan() {
                "NaN"
            } else if f > 0.0 {
                "Infinity"
            } else {
                "-Infinity"
            }
            .into(),
        )
    })
}

/// Convert a cell to `column`'s type (the `cast` transform). Numbers convert
/// with range checks; strings parse with the JSON rules; dates, timestamps
/// and numbers format as text; timestamps and bigints convert as epoch ms.
pub fn cast_cell(cell: &Cell, column: &Column, opts: &CoerceOptions) -> Result<Cell, CellError> {
    let Some(from) = cell_type(cell) else {
        return null_cell(column);
    };
    if from == column.type_ {
        return Ok(cell.clone());
    }
    let value = cell_to_json(cell);
    match (cell, column.type_) {
        (Cell::Date(d), ColumnType::Timestamp) => {
            let days = time::epoch_days(d).ok_or_else(|| invalid(column, &value, "is not a date"))?;
            checked_timestamp(days * 86_400_000, column, &value)
        }
        (Cell::Date(d), ColumnType::String) => Ok(Cell::String(time::format_date(d))),
        (Cell::Date(_), _) => {
            Err(mismatch(column, &value, &format!("is a date and cannot be cast to {}", column.type_)))
        }
        (Cell::Timestamp(ms), ColumnType::String) => time::format_timestamp(*ms, &opts.zone)
            .map(Cell::String)
            .ok_or_else(|| out_of_range(column, &value, "is not a representable timestamp")),
        (Cell::Timestamp(ms), ColumnType::Date) => {
            time::date_of_timestamp(*ms, &opts.zone).map(Cell::Date).map_err(|why| out_of_range(column, &value, &why))
        }
        (Cell::Bool(b), ColumnType::Smallint) => Ok(Cell::Smallint(*b as i16)),
        (Cell::Bool(b), ColumnType::Int) => Ok(Cell::Int(*b as i32)),
        (Cell::Bool(b), ColumnType::Bigint) => Ok(Cell::Bigint(*b as i64)),
        (Cell::Smallint(_) | Cell::Int(_) | Cell::Bigint(_), ColumnType::Bool) => {
            Ok(Cell::Bool(value.as_i64().unwrap_or(0) != 0))
        }
        (Cell::Float(_) | Cell::Double(_), ColumnType::Smallint | ColumnType::Int | ColumnType::Bigint) => {
            let f = match cell {
                Cell::Float(f) => *f as f64,
                Cell::Double(f) => *f,
                _ => f64::NAN,
            };
            let whole = integral_float(f).ok_or_else(|| mismatch(column, &value, "is not an integer"))?;
            json_to_cell(&Value::from(whole), column, Logical::None, opts).map_err(|e| CellError {
                message: e.message.replace(&Value::from(whole).to_string(), &value.to_string()),
                ..e
            })
        }
        _ => json_to_cell(&value, column, Logical::None, opts),
    }
}

/// Order two cells of the same type; `None` when either is NULL, the types
/// differ, or a float is NaN (SQL semantics: NULL matches no comparison).
pub fn compare_cells(a: &Cell, b: &Cell) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Cell::Bool(x), Cell::Bool(y)) => Some(x.cmp(y)),
        (Cell::Smallint(x), Cell::Smallint(y)) => Some(x.cmp(y)),
        (Cell::Int(x), Cell::Int(y)) => Some(x.cmp(y)),
        (Cell::Bigint(x), Cell::Bigint(y)) => Some(x.cmp(y)),
        (Cell::Float(x), Cell::Float(y)) => x.partial_cmp(y),
        (Cell::Double(x), Cell::Double(y)) => x.partial_cmp(y),
        (Cell::String(x), Cell::String(y)) => Some(x.cmp(y)),
        (Cell::Date(x), Cell::Date(y)) => Some((x.year, x.month, x.day).cmp(&(y.year, y.month, y.day))),
        (Cell::Timestamp(x), Cell::Timestamp(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Date;
    use serde_json::json;

    fn col(name: &str, ty: ColumnType) -> Column {
        Column { name: name.into(), type_: ty, nullable: true }
    }

    fn cell(value: Value, ty: ColumnType) -> Result<Cell, CellError> {
        json_to_cell(&value, &col("f", ty), Logical::None, &CoerceOptions::default())
    }

    fn kind(value: Value, ty: ColumnType) -> FailureKind {
        cell(value, ty).unwrap_err().kind
    }

    #[test]
    fn null_stays_null_and_not_null_columns_refuse_it() {
        for ty in [ColumnType::Bool, ColumnType::Int, ColumnType::Double, ColumnType::String, ColumnType::Timestamp] {
            assert_eq!(cell(Value::Null, ty).unwrap(), Cell::Null);
        }
        let strict = Column { name: "id".into(), type_: ColumnType::Bigint, nullable: false };
        let err = json_to_cell(&Value::Null, &strict, Logical::None, &CoerceOptions::default()).unwrap_err();
        assert_eq!(err.kind, FailureKind::MissingField);
        assert_eq!(err.message, "field \"id\": no value for a NOT NULL bigint column");
    }

    #[test]
    fn booleans_from_bools_and_their_strings() {
        assert_eq!(cell(json!(true), ColumnType::Bool).unwrap(), Cell::Bool(true));
        assert_eq!(cell(json!("FALSE"), ColumnType::Bool).unwrap(), Cell::Bool(false));
        assert_eq!(kind(json!(1), ColumnType::Bool), FailureKind::TypeMismatch);
    }

    #[test]
    fn smallint_and_int_are_range_checked() {
        assert_eq!(cell(json!(32767), ColumnType::Smallint).unwrap(), Cell::Smallint(32767));
        assert_eq!(cell(json!(-32768), ColumnType::Smallint).unwrap(), Cell::Smallint(-32768));
        let err = cell(json!(32768), ColumnType::Smallint).unwrap_err();
        assert_eq!(err.kind, FailureKind::OutOfRange);
        assert_eq!(err.message, "field \"f\": value 32768 does not fit smallint (-32768..32767)");
        assert_eq!(cell(json!(2147483647), ColumnType::Int).unwrap(), Cell::Int(i32::MAX));
        assert_eq!(kind(json!(2147483648i64), ColumnType::Int), FailureKind::OutOfRange);
        assert_eq!(kind(json!(u64::MAX), ColumnType::Bigint), FailureKind::OutOfRange);
        assert_eq!(cell(json!(i64::MIN), ColumnType::Bigint).unwrap(), Cell::Bigint(i64::MIN));
    }

    #[test]
    fn integers_accept_integral_floats_and_integer_strings_only() {
        assert_eq!(cell(json!(32232.0), ColumnType::Bigint).unwrap(), Cell::Bigint(32232));
        assert_eq!(cell(json!(" 42 "), ColumnType::Int).unwrap(), Cell::Int(42));
        assert_eq!(kind(json!(1.5), ColumnType::Int), FailureKind::TypeMismatch);
        assert_eq!(kind(json!("4x"), ColumnType::Int), FailureKind::TypeMismatch);
        assert_eq!(kind(json!("99999999999999999999"), ColumnType::Bigint), FailureKind::OutOfRange);
        assert_eq!(kind(json!([1]), ColumnType::Int), FailureKind::TypeMismatch);
    }

    #[test]
    fn floats_accept_numbers_strings_and_nan_inf() {
        assert_eq!(cell(json!(1), ColumnType::Double).unwrap(), Cell::Double(1.0));
        assert_eq!(cell(json!("2.5"), ColumnType::Float).unwrap(), Cell::Float(2.5));
        assert!(matches!(cell(json!("NaN"), ColumnType::Double).unwrap(), Cell::Double(f) if f.is_nan()));
        assert_eq!(cell(json!("-Infinity"), ColumnType::Double).unwrap(), Cell::Double(f64::NEG_INFINITY));
        assert_eq!(cell(json!("Inf"), ColumnType::Float).unwrap(), Cell::Float(f32::INFINITY));
        assert_eq!(kind(json!(1e39), ColumnType::Float), FailureKind::OutOfRange);
        assert_eq!(kind(json!("abc"), ColumnType::Double), FailureKind::TypeMismatch);
    }

    #[test]
    fn strings_keep_text_and_render_other_json() {
        assert_eq!(cell(json!("a\"b\\c\n☃"), ColumnType::String).unwrap(), Cell::String("a\"b\\c\n☃".into()));
        assert_eq!(cell(json!(42), ColumnType::String).unwrap(), Cell::String("42".into()));
        assert_eq!(cell(json!({"a": [1, 2]}), ColumnType::String).unwrap(), Cell::String("{\"a\":[1,2]}".into()));
    }

    #[test]
    fn dates_from_strings_and_epoch_days() {
        assert_eq!(
            cell(json!("2021-12-29"), ColumnType::Date).unwrap(),
            Cell::Date(Date { year: 2021, month: 12, day: 29 })
        );
        assert_eq!(cell(json!(18990), ColumnType::Date).unwrap(), Cell::Date(Date { year: 2021, month: 12, day: 29 }));
        assert_eq!(kind(json!("2021-02-30"), ColumnType::Date), FailureKind::InvalidValue);
        assert_eq!(kind(json!("1800-01-01"), ColumnType::Date), FailureKind::OutOfRange);
        assert_eq!(kind(json!("yesterday"), ColumnType::Date), FailureKind::TypeMismatch);
    }

    #[test]
    fn timestamps_from_epoch_ms_and_strings_in_the_zone() {
        assert_eq!(cell(json!(1640764800000i64), ColumnType::Timestamp).unwrap(), Cell::Timestamp(1640764800000));
        assert_eq!(cell(json!(0), ColumnType::Timestamp).unwrap(), Cell::Timestamp(0));
        assert_eq!(cell(json!("1640764800000"), ColumnType::Timestamp).unwrap(), Cell::Timestamp(1640764800000));
        assert_eq!(cell(json!("2021-12-29 08:00:00"), ColumnType::Timestamp).unwrap(), Cell::Timestamp(1640764800000));
        let shanghai = CoerceOptions { zone: Zone::parse("Asia/Shanghai").unwrap() };
        let c = json_to_cell(&json!("2021-12-29 16:00:00"), &col("t", ColumnType::Timestamp), Logical::None, &shanghai);
        assert_eq!(c.unwrap(), Cell::Timestamp(1640764800000));
        let err = cell(json!(-1), ColumnType::Timestamp).unwrap_err();
        assert_eq!(err.kind, FailureKind::InvalidValue);
        assert!(err.message.contains("negative"), "{}", err.message);
        // A whole float is a whole number of ms; the writer formats it as an integer.
        assert_eq!(cell(json!(1.6e12), ColumnType::Timestamp).unwrap(), Cell::Timestamp(1_600_000_000_000));
        assert_eq!(kind(json!(true), ColumnType::Timestamp), FailureKind::TypeMismatch);
    }

    #[test]
    fn logical_types_follow_the_envelope() {
        let opts = CoerceOptions::default();
        let ts = json_to_cell(&json!(1640764800000i64), &col("t", ColumnType::Timestamp), Logical::Timestamp, &opts);
        assert_eq!(ts.unwrap(), Cell::Timestamp(1640764800000));
        let as_string =
            json_to_cell(&json!(1640764800000i64), &col("t", ColumnType::String), Logical::Timestamp, &opts);
        assert_eq!(as_string.unwrap(), Cell::String("2021-12-29 08:00:00".into()));
        let date = json_to_cell(&json!(18990), &col("d", ColumnType::Date), Logical::Date, &opts);
        assert_eq!(date.unwrap(), Cell::Date(Date { year: 2021, month: 12, day: 29 }));
        let date_ts = json_to_cell(&json!(18990), &col("d", ColumnType::Timestamp), Logical::Date, &opts);
        assert_eq!(date_ts.unwrap(), Cell::Timestamp(1640736000000));
        let time = json_to_cell(&json!(3_723_004), &col("t", ColumnType::String), Logical::Time, &opts);
        assert_eq!(time.unwrap(), Cell::String("01:02:03.004".into()));
        assert_eq!(
            json_to_cell(&json!(86_400_000), &col("t", ColumnType::Int), Logical::Time, &opts).unwrap_err().kind,
            FailureKind::OutOfRange
        );
    }

    #[test]
    fn decimals_from_base64_and_numbers() {
        let opts = CoerceOptions::default();
        // 12345 unscaled = 0x3039 -> "MDk=", scale 2 -> 123.45
        let dec = Logical::Decimal { scale: 2 };
        assert_eq!(
            json_to_cell(&json!("MDk="), &col("m", ColumnType::String), dec, &opts).unwrap(),
            Cell::String("123.45".into())
        );
        assert_eq!(
            json_to_cell(&json!("MDk="), &col("m", ColumnType::Double), dec, &opts).unwrap(),
            Cell::Double(123.45)
        );
        // -1 unscaled = 0xff, scale 3 -> -0.001
        assert_eq!(
            json_to_cell(&json!("/w=="), &col("m", ColumnType::String), Logical::Decimal { scale: 3 }, &opts).unwrap(),
            Cell::String("-0.001".into())
        );
        assert_eq!(
            json_to_cell(&json!("MDk="), &col("m", ColumnType::Int), Logical::Decimal { scale: 0 }, &opts).unwrap(),
            Cell::Int(12345)
        );
        assert_eq!(
            json_to_cell(&json!("MDk="), &col("m", ColumnType::Int), dec, &opts).unwrap_err().kind,
            FailureKind::TypeMismatch
        );
        assert_eq!(
            json_to_cell(&json!(123.45), &col("m", ColumnType::Double), dec, &opts).unwrap(),
            Cell::Double(123.45)
        );
        assert_eq!(
            json_to_cell(&json!("***"), &col("m", ColumnType::Double), dec, &opts).unwrap_err().kind,
            FailureKind::TypeMismatch
        );
    }

    #[test]
    fn decimal_text_is_exact() {
        assert_eq!(decimal_text(5, 3), "0.005");
        assert_eq!(decimal_text(-12345, 2), "-123.45");
        assert_eq!(decimal_text(7, 0), "7");
    }

    #[test]
    fn comparisons_are_typed_and_null_matches_nothing() {
        use std::cmp::Ordering;
        assert_eq!(compare_cells(&Cell::Int(1), &Cell::Int(2)), Some(Ordering::Less));
        assert_eq!(compare_cells(&Cell::String("b".into()), &Cell::String("a".into())), Some(Ordering::Greater));
        let d = |day| Cell::Date(Date { year: 2021, month: 1, day });
        assert_eq!(compare_cells(&d(2), &d(2)), Some(Ordering::Equal));
        assert_eq!(compare_cells(&Cell::Null, &Cell::Int(1)), None);
        assert_eq!(compare_cells(&Cell::Int(1), &Cell::Bigint(1)), None);
        assert_eq!(compare_cells(&Cell::Double(f64::NAN), &Cell::Double(1.0)), None);
    }

    #[test]
    fn casts_convert_between_types_with_checks() {
        let opts = CoerceOptions::default();
        let c = |cell: Cell, ty| cast_cell(&cell, &col("x", ty), &opts);
        assert_eq!(c(Cell::String("42".into()), ColumnType::Int).unwrap(), Cell::Int(42));
        assert_eq!(c(Cell::Int(42), ColumnType::String).unwrap(), Cell::String("42".into()));
        assert_eq!(c(Cell::Bigint(70000), ColumnType::Smallint).unwrap_err().kind, FailureKind::OutOfRange);
        assert_eq!(c(Cell::Double(3.0), ColumnType::Int).unwrap(), Cell::Int(3));
        assert_eq!(c(Cell::Double(3.5), ColumnType::Int).unwrap_err().kind, FailureKind::TypeMismatch);
        assert_eq!(c(Cell::Timestamp(1640764800000), ColumnType::Bigint).unwrap(), Cell::Bigint(1640764800000));
        assert_eq!(c(Cell::Bigint(1640764800000), ColumnType::Timestamp).unwrap(), Cell::Timestamp(1640764800000));
        assert_eq!(
            c(Cell::Timestamp(1640764800000), ColumnType::String).unwrap(),
            Cell::String("2021-12-29 08:00:00".into())
        );
        assert_eq!(
            c(Cell::Timestamp(1640764800000), ColumnType::Date).unwrap(),
            Cell::Date(Date { year: 2021, month: 12, day: 29 })
        );
        assert_eq!(
            c(Cell::Date(Date { year: 2021, month: 12, day: 29 }), ColumnType::Timestamp).unwrap(),
            Cell::Timestamp(1640736000000)
        );
        assert_eq!(
            c(Cell::Date(Date { year: 2021, month: 12, day: 29 }), ColumnType::String).unwrap(),
            Cell::String("2021-12-29".into())
        );
        assert_eq!(c(Cell::Bool(true), ColumnType::Int).unwrap(), Cell::Int(1));
        assert_eq!(c(Cell::Null, ColumnType::Int).unwrap(), Cell::Null);
        assert_eq!(c(Cell::Double(f64::NAN), ColumnType::String).unwrap(), Cell::String("NaN".into()));
    }
}
