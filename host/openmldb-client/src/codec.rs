//! OpenMLDB's row format (`src/codec/codec.cc`, `RowBuilder`), written
//! byte for byte as the official SDK writes it:
//!
//! ```text
//! [0] FVersion = 1   [1] SVersion = 1   [2..6) total size, u32 LE
//! null bitmap, ceil(ncol / 8) bytes: bit i set = column i NULL (unused bits stay 1)
//! fixed area: the non-string columns in schema order (bool 1, smallint 2, int 4,
//!             bigint 8, float 4, double 8, date 4, timestamp 8), LE; NULL = zeros
//! string offset table: one slot per string column, 1/2/3/4 bytes by total size
//!             (3 bytes big-endian); slot k = start of string k
//! string data
//! ```
//! Slot 0 is written only when the first string column is not NULL, and
//! slot k+1 after string column k, NULL or not (as the SDK does).

use crate::types::{Column, DataType, Date, Value};

const HEADER_LENGTH: usize = 6;
const UINT24_MAX: usize = (1 << 24) - 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("the row has {values} values but the table has {columns} columns")]
    Arity { values: usize, columns: usize },
    #[error("column {column} is {expected}, but the value is {value}")]
    Type { column: String, expected: DataType, value: String },
    #[error("column {column} is NOT NULL, but the value is NULL")]
    NullInNotNull { column: String },
    #[error("column {column}: date {value} does not exist (OpenMLDB stores 1900-01-01..9999-12-31)")]
    InvalidDate { column: String, value: String },
    #[error("column {column}: timestamp {value} is negative; OpenMLDB refuses negative timestamps")]
    NegativeTimestamp { column: String, value: i64 },
    #[error("the row is {size} bytes; OpenMLDB's row format ends at 4 GiB")]
    TooLarge { size: u64 },
    #[error("row bytes are malformed: {0}")]
    Malformed(String),
}

fn addr_length(size: usize) -> usize {
    if size <= u8::MAX as usize {
        1
    } else if size <= u16::MAX as usize {
        2
    } else if size <= UINT24_MAX {
        3
    } else {
        4
    }
}

fn bitmap_size(columns: usize) -> usize {
    columns.div_ceil(8)
}

/// Checks the row against the schema (types, NOT NULL, dates, non-negative
/// timestamps) and encodes it.
pub fn encode_row(columns: &[Column], values: &[Value]) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    encode_row_into(columns, values, &mut out)?;
    Ok(out)
}

/// [`encode_row`], appending to `out` (a writer reuses one buffer for
/// every row of a batch). On an error `out` is left as it was.
pub fn encode_row_into(columns: &[Column], values: &[Value], out: &mut Vec<u8>) -> Result<(), CodecError> {
    if values.len() != columns.len() {
        return Err(CodecError::Arity { values: values.len(), columns: columns.len() });
    }
    let mut fixed_size = 0usize;
    let mut string_count = 0usize;
    let mut string_bytes = 0u64;
    for (column, value) in columns.iter().zip(values) {
        check(column, value)?;
        match column.data_type.fixed_width() {
            Some(width) => fixed_size += width,
            None => {
                string_count += 1;
                if let Value::String(s) = value {
                    string_bytes += s.len() as u64;
                }
            }
        }
    }
    let string_table_start = HEADER_LENGTH + bitmap_size(columns.len()) + fixed_size;
    let base = string_table_start as u64 + string_bytes;
    let count = string_count as u64;
    let total = [(1u64, u8::MAX as u64), (2, u16::MAX as u64), (3, UINT24_MAX as u64), (4, u32::MAX as u64)]
        .into_iter()
        .map(|(width, limit)| (base + count * width, limit))
        .find(|(total, limit)| total <= limit)
        .map(|(total, _)| total)
        .ok_or(CodecError::TooLarge { size: base + count * 4 })? as usize;
    let addr = addr_length(total);

    let start = out.len();
    out.resize(start + total, 0);
    let buf = &mut out[start..];
    buf[0] = 1;
    buf[1] = 1;
    buf[2..6].copy_from_slice(&(total as u32).to_le_bytes());
    let bitmap = HEADER_LENGTH..HEADER_LENGTH + bitmap_size(columns.len());
    buf[bitmap].fill(0xff);

    let mut fixed_at = HEADER_LENGTH + bitmap_size(columns.len());
    let mut string_index = 0usize;
    let mut data_at = string_table_start + addr * string_count;
    for (i, (column, value)) in columns.iter().zip(values).enumerate() {
        if !matches!(value, Value::Null) {
            buf[HEADER_LENGTH + i / 8] &= !(1 << (i % 8));
        }
        if column.data_type == DataType::String {
            if let Value::String(s) = value {
                if string_index == 0 {
                    set_offset(buf, string_table_start, addr, 0, data_at);
                }
                buf[data_at..data_at + s.len()].copy_from_slice(s.as_bytes());
                data_at += s.len();
            }
            if string_index + 1 < string_count {
                set_offset(buf, string_table_start, addr, string_index + 1, data_at);
            }
            string_index += 1;
            continue;
        }
        let width = column.data_type.fixed_width().unwrap_or(0);
        let slot = &mut buf[fixed_at..fixed_at + width];
        match value {
            Value::Bool(v) => slot[0] = u8::from(*v),
            Value::SmallInt(v) => slot.copy_from_slice(&v.to_le_bytes()),
            Value::Int(v) => slot.copy_from_slice(&v.to_le_bytes()),
            Value::BigInt(v) | Value::Timestamp(v) => slot.copy_from_slice(&v.to_le_bytes()),
            Value::Float(v) => slot.copy_from_slice(&v.to_bits().to_le_bytes()),
            Value::Double(v) => slot.copy_from_slice(&v.to_bits().to_le_bytes()),
            Value::Date(d) => slot.copy_from_slice(&d.to_codec().to_le_bytes()),
            Value::Null | Value::String(_) => {}
        }
        fixed_at += width;
    }
    Ok(())
}

fn check(column: &Column, value: &Value) -> Result<(), CodecError> {
    match (column.data_type, value) {
        (_, Value::Null) if column.not_null => Err(CodecError::NullInNotNull { column: column.name.clone() }),
        (_, Value::Null) => Ok(()),
        (DataType::Date, Value::Date(d)) if !d.is_valid() => {
            Err(CodecError::InvalidDate { column: column.name.clone(), value: d.to_string() })
        }
        (DataType::Timestamp, Value::Timestamp(ts)) if *ts < 0 => {
            Err(CodecError::NegativeTimestamp { column: column.name.clone(), value: *ts })
        }
        (expected, value) if value.data_type() == Some(expected) => Ok(()),
        (expected, value) => Err(CodecError::Type { column: column.name.clone(), expected, value: value.to_string() }),
    }
}

fn set_offset(buf: &mut [u8], table_start: usize, addr: usize, slot: usize, offset: usize) {
    let at = table_start + addr * slot;
    match addr {
        1 => buf[at] = offset as u8,
        2 => buf[at..at + 2].copy_from_slice(&(offset as u16).to_le_bytes()),
        3 => buf[at..at + 3].copy_from_slice(&(offset as u32).to_be_bytes()[1..]),
        _ => buf[at..at + 4].copy_from_slice(&(offset as u32).to_le_bytes()),
    }
}

fn get_offset(buf: &[u8], table_start: usize, addr: usize, slot: usize) -> Option<usize> {
    let at = table_start + addr * slot;
    let bytes = buf.get(at..at + addr)?;
    Some(match addr {
        1 => bytes[0] as usize,
        2 => u16::from_le_bytes([bytes[0], bytes[1]]) as usize,
        3 => u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]) as usize,
        _ => u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize,
    })
}

/// Decodes a row written for `columns` (any schema version whose first
/// `columns.len()` columns are these).
pub fn decode_row(columns: &[Column], buf: &[u8]) -> Result<Vec<Value>, CodecError> {
    let malformed = |what: &str| CodecError::Malformed(what.to_string());
    if buf.len() < HEADER_LENGTH || buf[0] != 1 {
        return Err(malformed("no FVersion 1 header"));
    }
    let total = u32::from_le_bytes([buf[2], buf[3], buf[4], buf[5]]) as usize;
    if total != buf.len() {
        return Err(CodecError::Malformed(format!("header says {total} bytes, the row has {}", buf.len())));
    }
    let addr = addr_length(total);
    let bitmap_at = HEADER_LENGTH;
    let fixed_start = bitmap_at + bitmap_size(columns.len());
    let fixed_size: usize = columns.iter().filter_map(|c| c.data_type.fixed_width()).sum();
    let table_start = fixed_start + fixed_size;
    let string_count = columns.iter().filter(|c| c.data_type == DataType::String).count();
    let data_start = table_start + addr * string_count;
    if data_start > total {
        return Err(malformed("shorter than its schema"));
    }
    let mut values = Vec::with_capacity(columns.len());
    let mut fixed_at = fixed_start;
    let mut string_index = 0usize;
    for (i, column) in columns.iter().enumerate() {
        let null = buf[bitmap_at + i / 8] & (1 << (i % 8)) != 0;
        if column.data_type == DataType::String {
            let k = string_index;
            string_index += 1;
            if null {
                values.push(Value::Null);
                continue;
            }
            let start = get_offset(buf, table_start, addr, k).ok_or_else(|| malformed("string offset"))?;
            let end = if k + 1 < string_count {
                get_offset(buf, table_start, addr, k + 1).ok_or_else(|| malformed("string offset"))?
            } else {
                total
            };
            let bytes =
                buf.get(start..end).filter(|_| start >= data_start).ok_or_else(|| malformed("string bounds"))?;
            let text = std::str::from_utf8(bytes).map_err(|_| malformed("string is not UTF-8"))?;
            values.push(Value::String(text.to_string()));
            continue;
        }
        let width = column.data_type.fixed_width().unwrap_or(0);
        let field = buf.get(fixed_at..fixed_at + width).ok_or_else(|| malformed("fixed area"))?;
        fixed_at += width;
        if null {
            values.push(Value::Null);
            continue;
        }
        values.push(fixed_value(column.data_type, field).ok_or_else(|| malformed("fixed field"))?);
    }
    Ok(values)
}

/// A fixed-width field's value; `None` for strings (not fixed) or a short field.
fn fixed_value(data_type: DataType, field: &[u8]) -> Option<Value> {
    let mut b8 = [0u8; 8];
    b8.get_mut(..field.len())?.copy_from_slice(field);
    let b4 = [b8[0], b8[1], b8[2], b8[3]];
    Some(match data_type {
        DataType::Bool => Value::Bool(b8[0] != 0),
        DataType::SmallInt => Value::SmallInt(i16::from_le_bytes([b8[0], b8[1]])),
        DataType::Int => Value::Int(i32::from_le_bytes(b4)),
        DataType::Float => Value::Float(f32::from_bits(u32::from_le_bytes(b4))),
        DataType::Date => Value::Date(Date::from_codec(i32::from_le_bytes(b4))),
        DataType::BigInt => Value::BigInt(i64::from_le_bytes(b8)),
        DataType::Timestamp => Value::Timestamp(i64::from_le_bytes(b8)),
        DataType::Double => Value::Double(f64::from_bits(u64::from_le_bytes(b8))),
        DataType::String => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, data_type: DataType) -> Column {
        Column { name: name.into(), data_type, not_null: false }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn the_worked_example_of_the_reference_encodes_to_its_22_bytes() {
        let columns = [col("c1", DataType::String), col("c2", DataType::Int), col("c3", DataType::Timestamp)];
        let row = [Value::String("bb".into()), Value::Int(24), Value::Timestamp(1590738994000)];
        let bytes = encode_row(&columns, &row).unwrap();
        assert_eq!(hex(&bytes), "01 01 16 00 00 00 f8 18 00 00 00 50 c3 6e 5f 72 01 00 00 14 62 62");
        assert_eq!(decode_row(&columns, &bytes).unwrap(), row);
    }

    #[test]
    fn a_null_first_string_leaves_slot_zero_unwritten_and_writes_the_next_slot() {
        let columns = [
            col("c1", DataType::String),
            col("c2", DataType::Int),
            col("c3", DataType::Timestamp),
            col("c4", DataType::String),
        ];
        let row = [Value::Null, Value::Int(24), Value::Timestamp(1590738994000), Value::String("x".into())];
        let bytes = encode_row(&columns, &row).unwrap();
        assert_eq!(hex(&bytes), "01 01 16 00 00 00 f1 18 00 00 00 50 c3 6e 5f 72 01 00 00 00 15 78");
        assert_eq!(decode_row(&columns, &bytes).unwrap(), row);
    }

    #[test]
    fn offsets_widen_to_two_and_three_bytes_big_endian_with_the_row() {
        let columns = [col("a", DataType::String), col("b", DataType::String)];
        for (len, addr) in [(100usize, 1usize), (300, 2), (70_000, 3)] {
            let row = [Value::String("x".repeat(len)), Value::String("yz".into())];
            let bytes = encode_row(&columns, &row).unwrap();
            let table = HEADER_LENGTH + 1;
            assert_eq!(addr_length(bytes.len()), addr, "row of {} bytes", bytes.len());
            assert_eq!(bytes.len(), table + 2 * addr + len + 2);
            let first = table + 2 * addr;
            let second = first + len;
            assert_eq!(get_offset(&bytes, table, addr, 0), Some(first));
            assert_eq!(get_offset(&bytes, table, addr, 1), Some(second));
            if addr == 3 {
                assert_eq!(&bytes[table..table + 3], &(first as u32).to_be_bytes()[1..]);
            }
            assert_eq!(decode_row(&columns, &bytes).unwrap(), row);
        }
    }

    #[test]
    fn every_type_round_trips_bit_for_bit_and_nulls_are_zero_bytes() {
        let types = [
            DataType::Bool,
            DataType::SmallInt,
            DataType::Int,
            DataType::BigInt,
            DataType::Float,
            DataType::Double,
            DataType::Date,
            DataType::Timestamp,
            DataType::String,
        ];
        let columns: Vec<Column> = types.iter().enumerate().map(|(i, t)| col(&format!("c{i}"), *t)).collect();
        let row = vec![
            Value::Bool(true),
            Value::SmallInt(i16::MIN),
            Value::Int(i32::MAX),
            Value::BigInt(i64::MIN),
            Value::Float(f32::from_bits(0x7fc0_0000)),
            Value::Double(-0.0),
            Value::Date(Date { year: 2021, month: 4, day: 27 }),
            Value::Timestamp(0),
            Value::String(String::new()),
        ];
        let bytes = encode_row(&columns, &row).unwrap();
        let decoded = decode_row(&columns, &bytes).unwrap();
        assert_eq!(format!("{decoded:?}"), format!("{row:?}"));
        assert_eq!(&bytes[6..8], &[0x00, 0xfe], "nine columns: two bitmap bytes, unused bits set");
        let Value::Double(d) = decoded[5] else { panic!() };
        assert!(d.is_sign_negative());
        // Float NaN bytes as the SDK writes them.
        assert_eq!(&bytes[8 + 1 + 2 + 4 + 8..8 + 1 + 2 + 4 + 8 + 4], &[0x00, 0x00, 0xc0, 0x7f]);

        let nulls = vec![Value::Null; 9];
        let bytes = encode_row(&columns, &nulls).unwrap();
        assert_eq!(&bytes[6..8], &[0xff, 0xff]);
        assert!(bytes[8..8 + 39].iter().all(|b| *b == 0), "NULL fixed fields are zeros: {}", hex(&bytes));
        assert_eq!(decode_row(&columns, &bytes).unwrap(), nulls);
    }

    #[test]
    fn content_the_official_client_would_narrow_or_refuse_is_refused_with_the_column() {
        let mut ts = col("ts", DataType::Timestamp);
        assert_eq!(
            encode_row(std::slice::from_ref(&ts), &[Value::Timestamp(-1)]).unwrap_err().to_string(),
            "column ts: timestamp -1 is negative; OpenMLDB refuses negative timestamps"
        );
        ts.not_null = true;
        assert!(matches!(encode_row(&[ts], &[Value::Null]), Err(CodecError::NullInNotNull { .. })));
        let small = col("s", DataType::SmallInt);
        assert_eq!(
            encode_row(&[small], &[Value::Int(70000)]).unwrap_err().to_string(),
            "column s is smallint, but the value is 70000"
        );
        let date = col("d", DataType::Date);
        assert!(matches!(
            encode_row(&[date], &[Value::Date(Date { year: 2023, month: 2, day: 29 })]),
            Err(CodecError::InvalidDate { .. })
        ));
    }

    #[test]
    fn dates_use_the_codec_int_of_the_reference() {
        assert_eq!(Date { year: 2021, month: 4, day: 27 }.to_codec(), 7930651);
        assert_eq!(Date::from_codec(7930651), Date { year: 2021, month: 4, day: 27 });
    }
}
