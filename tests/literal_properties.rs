//! Property tests of the OpenMLDB writer's literal formatter: whatever row
//! it is given, the INSERT it writes parses (with the stand-in's parser,
//! which follows OpenMLDB's literal rules) back to exactly the values of
//! the row, and the PUT JSON it writes reads back to them too.

use openmldb_standin::sql::{Literal, Statement, parse};
use proptest::prelude::*;
use rmq_openmldb::openmldb::{put_values, sql_values};
use rmq_openmldb::plugin::bindings::{Cell, Date, Row};

fn cell() -> impl Strategy<Value = Cell> {
    prop_oneof![
        Just(Cell::Null),
        any::<bool>().prop_map(Cell::Bool),
        any::<i16>().prop_map(Cell::Smallint),
        any::<i32>().prop_map(Cell::Int),
        any::<i64>().prop_map(Cell::Bigint),
        // Every bit pattern, subnormals and -0.0 included; NaN and the
        // infinities have no SQL literal (the writer sends them by PUT).
        any::<u32>().prop_map(f32::from_bits).prop_filter("finite", |f| f.is_finite()).prop_map(Cell::Float),
        any::<u64>().prop_map(f64::from_bits).prop_filter("finite", |f| f.is_finite()).prop_map(Cell::Double),
        any::<String>().prop_map(Cell::String),
        (1900i32..=9999, 1u8..=12, 1u8..=31).prop_map(|(year, month, day)| Cell::Date(Date { year, month, day })),
        (0i64..=i64::MAX).prop_map(Cell::Timestamp),
    ]
}

/// The literal must stand for exactly this cell's value.
fn same(literal: &Literal, cell: &Cell) -> bool {
    match (literal, cell) {
        (Literal::Null, Cell::Null) => true,
        (Literal::Bool(a), Cell::Bool(b)) => a == b,
        (Literal::Int { value, .. }, Cell::Smallint(v)) => *value == i64::from(*v),
        (Literal::Int { value, .. }, Cell::Int(v)) => *value == i64::from(*v),
        (Literal::Int { value, .. }, Cell::Bigint(v) | Cell::Timestamp(v)) => value == v,
        // A float goes as its exact double; the server narrows it exactly.
        (Literal::Double(d), Cell::Float(f)) => (*d as f32).to_bits() == f.to_bits() && *d == f64::from(*f),
        (Literal::Double(d), Cell::Double(v)) => d.to_bits() == v.to_bits(),
        (Literal::Str(s), Cell::String(v)) => s == v,
        (Literal::Str(s), Cell::Date(d)) => *s == format!("{:04}-{:02}-{:02}", d.year, d.month, d.day),
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn an_insert_statement_parses_back_to_exactly_its_rows(rows in prop::collection::vec(prop::collection::vec(cell(), 1..12), 1..6)) {
        let mut sql = String::from("INSERT INTO `t` VALUES ");
        for (i, cells) in rows.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql_values(&Row { source_index: 0, cells: cells.clone() }, &mut sql);
        }
        let Ok(Statement::Insert { rows: parsed, .. }) = parse(&sql) else {
            return Err(TestCaseError::fail(format!("does not parse: {sql}")));
        };
        prop_assert_eq!(parsed.len(), rows.len());
        for (literals, cells) in parsed.iter().zip(&rows) {
            prop_assert_eq!(literals.len(), cells.len());
            for (literal, cell) in literals.iter().zip(cells) {
                prop_assert!(same(literal, cell), "{:?} is not {:?} in {}", literal, cell, sql);
            }
        }
    }

    #[test]
    fn put_json_reads_back_to_exactly_its_values(cells in prop::collection::vec(cell(), 1..12)) {
        let json = put_values(&Row { source_index: 0, cells: cells.clone() });
        let parsed: Vec<serde_json::Value> = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(format!("{e}: {json}")))?;
        for (value, cell) in parsed.iter().zip(&cells) {
            let ok = match cell {
                Cell::Null => value.is_null(),
                Cell::Bool(b) => value.as_bool() == Some(*b),
                Cell::Smallint(v) => value.as_i64() == Some(i64::from(*v)),
                Cell::Int(v) => value.as_i64() == Some(i64::from(*v)),
                Cell::Bigint(v) | Cell::Timestamp(v) => value.as_i64() == Some(*v),
                Cell::Float(f) => value.as_f64().map(|d| (d as f32).to_bits()) == Some(f.to_bits()),
                Cell::Double(d) => value.as_f64().map(f64::to_bits) == Some(d.to_bits()),
                Cell::String(s) => value.as_str() == Some(s.as_str()),
                Cell::Date(d) => value.as_str() == Some(format!("{}-{}-{}", d.year, d.month, d.day).as_str()),
            };
            prop_assert!(ok, "{} is not {:?} in {}", value, cell, json);
        }
    }
}
