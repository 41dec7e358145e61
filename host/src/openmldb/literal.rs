//! Rows as OpenMLDB reads them: SQL literals for multi-row INSERT, and JSON
//! values for single-row PUT (openmldb.md §1.5.1, §2.1). Every value is
//! written so the server takes it as the column's own type: a double is
//! always a double literal (`3000000000.0`, never the int64 literal the
//! server refuses for double columns), dates are `'Y-M-D'`, timestamps are
//! epoch ms.

use crate::plugin::bindings::{Cell, Column, Row};
use std::fmt::Write;

/// Why a row cannot be written at all (it goes to the dead-letter topic):
/// it does not fit the schema, or it holds what OpenMLDB refuses (a NULL
/// or negative value in an index TS column, a negative timestamp, a date
/// outside 1900..9999).
pub fn check_row(row: &Row, columns: &[Column], ts_columns: &[usize]) -> Result<(), String> {
    crate::plugin::check_row(row, columns)?;
    for (position, (cell, column)) in row.cells.iter().zip(columns).enumerate() {
        let is_ts = ts_columns.contains(&position);
        match cell {
            Cell::Null if is_ts => return Err(format!("column \"{}\": NULL in an index TS column", column.name)),
            Cell::Timestamp(ms) if *ms < 0 => {
                return Err(format!(
                    "column \"{}\": timestamp {ms} is negative; OpenMLDB refuses negative timestamps",
                    column.name
                ));
            }
            Cell::Bigint(v) if *v < 0 && is_ts => {
                return Err(format!("column \"{}\": {v} is negative in an index TS column", column.name));
            }
            Cell::Date(d)
                if !(1900..=9999).contains(&d.year) || !(1..=12).contains(&d.month) || !(1..=31).contains(&d.day) =>
            {
                return Err(format!(
                    "column \"{}\": date {}-{}-{} is outside 1900-01-01..9999-12-31",
                    column.name, d.year, d.month, d.day
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// True when SQL cannot express the row (NaN and infinities have no
/// literal); such rows are written with PUT, whose JSON allows them.
pub fn needs_put(row: &Row) -> bool {
    row.cells.iter().any(|c| match c {
        Cell::Float(f) => !f.is_finite(),
        Cell::Double(d) => !d.is_finite(),
        _ => false,
    })
}

/// `(v1, v2, …)` for `INSERT … VALUES`.
pub fn sql_values(row: &Row, out: &mut String) {
    out.push('(');
    for (i, cell) in row.cells.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        sql_literal(cell, out);
    }
    out.push(')');
}

fn sql_literal(cell: &Cell, out: &mut String) {
    match cell {
        Cell::Null => out.push_str("NULL"),
        Cell::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Cell::Smallint(v) => push_display(out, v),
        Cell::Int(v) => push_display(out, v),
        Cell::Bigint(v) => push_display(out, v),
        // The float widened to a double, whose text the server reads back
        // to that double exactly; narrowing it is then exact too. (The
        // float's own shortest text would be rounded twice on the way.)
        Cell::Float(v) => float_text(*v as f64, out),
        Cell::Double(v) => float_text(*v, out),
        Cell::String(s) => sql_string(s, out),
        Cell::Date(d) => {
            let _ = write!(out, "'{:04}-{:02}-{:02}'", d.year, d.month, d.day);
        }
        Cell::Timestamp(ms) => push_display(out, ms),
    }
}

fn push_display(out: &mut String, v: impl std::fmt::Display) {
    let _ = write!(out, "{v}");
}

/// Shortest text that reads back as the same double (`-0.0` keeps its
/// sign), always with a `.` or an exponent so it is a floating-point
/// literal, never an integer one.
fn float_text(value: f64, out: &mut String) {
    let start = out.len();
    let _ = write!(out, "{value:?}");
    if !out[start..].contains(['.', 'e', 'E']) {
        out.push_str(".0");
    }
}

/// A single-quoted string with backslash escapes (ZetaSQL rules).
pub fn sql_string(s: &str, out: &mut String) {
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('\'');
}

/// `[v1, …]` for PUT: JSON with unquoted NaN/Infinity, as the APIServer
/// parses with `kParseNanAndInfFlag`.
pub fn put_values(row: &Row) -> String {
    let mut out = String::from("[");
    for (i, cell) in row.cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match cell {
            Cell::Null => out.push_str("null"),
            Cell::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Cell::Smallint(v) => push_display(&mut out, v),
            Cell::Int(v) => push_display(&mut out, v),
            Cell::Bigint(v) => push_display(&mut out, v),
            Cell::Float(v) => json_float(*v as f64, &mut out),
            Cell::Double(v) => json_float(*v, &mut out),
            Cell::String(s) => out.push_str(&serde_json::Value::String(s.clone()).to_string()),
            Cell::Date(d) => {
                let _ = write!(out, "\"{}-{}-{}\"", d.year, d.month, d.day);
            }
            Cell::Timestamp(ms) => push_display(&mut out, ms),
        }
    }
    out.push(']');
    out
}

fn json_float(value: f64, out: &mut String) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "Infinity" } else { "-Infinity" });
    } else {
        float_text(value, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::bindings::{ColumnType, Date};

    fn row(cells: Vec<Cell>) -> Row {
        Row { source_index: 0, cells }
    }

    fn sql(cells: Vec<Cell>) -> String {
        let mut out = String::new();
        sql_values(&row(cells), &mut out);
        out
    }

    #[test]
    fn every_type_as_a_sql_literal() {
        assert_eq!(
            sql(vec![
                Cell::Null,
                Cell::Bool(true),
                Cell::Smallint(-32768),
                Cell::Int(i32::MAX),
                Cell::Bigint(i64::MIN),
                Cell::Float(1.1),
                Cell::Double(3_000_000_000.0),
                Cell::Double(2.5e300),
                Cell::Date(Date { year: 1900, month: 1, day: 1 }),
                Cell::Date(Date { year: 9999, month: 12, day: 31 }),
                Cell::Timestamp(0),
            ]),
            "(NULL, true, -32768, 2147483647, -9223372036854775808, 1.100000023841858, 3000000000.0, 2.5e300, '1900-01-01', '9999-12-31', 0)"
        );
    }

    #[test]
    fn strings_are_escaped() {
        let mut out = String::new();
        sql_string("it's a \\ \"q\"\nline\ttab\u{1}☃", &mut out);
        assert_eq!(out, r#"'it\'s a \\ "q"\nline\ttab\x01☃'"#);
    }

    #[test]
    fn put_json_keeps_nan_and_infinities_unquoted() {
        let json = put_values(&row(vec![
            Cell::Double(f64::NAN),
            Cell::Float(f32::INFINITY),
            Cell::Double(f64::NEG_INFINITY),
            Cell::String("a\"b".into()),
            Cell::Date(Date { year: 2021, month: 4, day: 7 }),
            Cell::Double(4.0),
        ]));
        assert_eq!(json, r#"[NaN,Infinity,-Infinity,"a\"b","2021-4-7",4.0]"#);
        assert!(needs_put(&row(vec![Cell::Double(f64::NAN)])));
        assert!(!needs_put(&row(vec![Cell::Double(1.0)])));
    }

    #[test]
    fn rows_openmldb_refuses_are_caught_before_sending() {
        let columns = vec![
            Column { name: "k".into(), type_: ColumnType::String, nullable: false },
            Column { name: "t".into(), type_: ColumnType::Timestamp, nullable: true },
        ];
        assert!(check_row(&row(vec![Cell::String("a".into()), Cell::Timestamp(0)]), &columns, &[1]).is_ok());
        let negative = check_row(&row(vec![Cell::String("a".into()), Cell::Timestamp(-1)]), &columns, &[]).unwrap_err();
        assert_eq!(negative, "column \"t\": timestamp -1 is negative; OpenMLDB refuses negative timestamps");
        assert_eq!(
            check_row(&row(vec![Cell::Null, Cell::Timestamp(1)]), &columns, &[]).unwrap_err(),
            "column \"k\" (string NOT NULL) got NULL"
        );
        assert!(
            check_row(&row(vec![Cell::String("a".into()), Cell::Null]), &columns, &[1])
                .unwrap_err()
                .contains("index TS")
        );
        assert!(check_row(&row(vec![Cell::Int(1), Cell::Null]), &columns, &[]).is_err());
    }
}
