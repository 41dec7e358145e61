//! Built-in transform `filter`: keep (or drop) the rows whose column
//! matches a predicate.
//!
//! Config: `field` (a column of the output), `op` = eq | ne | lt | le | gt |
//! ge | in | not-in | is-null | not-null | contains | starts-with |
//! ends-with (default eq), `value` (read as the column's type; a
//! comma-separated list for in/not-in), `action` = keep | drop (default
//! keep). As in SQL, NULL matches no comparison: only `is-null` sees it.

use rmq_openmldb_sdk::coerce::{CoerceOptions, Logical, compare_cells, json_to_cell};
use rmq_openmldb_sdk::prelude::*;
use rmq_openmldb_sdk::row::column_position;
use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq)]
enum Predicate {
    Compare(Vec<Ordering>, Cell),
    In(Vec<Cell>),
    NotIn(Vec<Cell>),
    IsNull,
    NotNull,
    Contains(String),
    StartsWith(String),
    EndsWith(String),
}

pub struct Filter {
    position: usize,
    predicate: Predicate,
    keep_matches: bool,
}

impl Filter {
    pub fn new(config: &PluginConfig, output: &[Column]) -> Result<Self, PluginError> {
        let field = config.require("field")?;
        let position = column_position(output, field, "field")?;
        let column = &output[position];
        let op = config.choice_or(
            "op",
            &[
                "eq",
                "ne",
                "lt",
                "le",
                "gt",
                "ge",
                "in",
                "not-in",
                "is-null",
                "not-null",
                "contains",
                "starts-with",
                "ends-with",
            ],
            "eq",
        )?;
        let parse = |text: &str| {
            json_to_cell(&serde_json::Value::String(text.to_string()), column, Logical::None, &CoerceOptions::default())
                .map_err(|e| PluginError::invalid_config(format!("config key \"value\": {}", e.message)))
        };
        let text = |op: &str| -> Result<String, PluginError> {
            if column.type_ != ColumnType::String {
                return Err(PluginError::invalid_config(format!(
                    "config key \"op\": \"{op}\" needs a string column, \"{field}\" is {}",
                    column.type_
                )));
            }
            Ok(config.require("value")?.to_string())
        };
        let predicate = match op {
            "is-null" => Predicate::IsNull,
            "not-null" => Predicate::NotNull,
            "in" | "not-in" => {
                let values =
                    config.require("value")?.split(',').map(|v| parse(v.trim())).collect::<Result<Vec<_>, _>>()?;
                if op == "in" { Predicate::In(values) } else { Predicate::NotIn(values) }
            }
            "contains" => Predicate::Contains(text(op)?),
            "starts-with" => Predicate::StartsWith(text(op)?),
            "ends-with" => Predicate::EndsWith(text(op)?),
            _ => {
                let orderings = match op {
                    "eq" => vec![Ordering::Equal],
                    "ne" => vec![Ordering::Less, Ordering::Greater],
                    "lt" => vec![Ordering::Less],
                    "le" => vec![Ordering::Less, Ordering::Equal],
                    "gt" => vec![Ordering::Greater],
                    _ => vec![Ordering::Greater, Ordering::Equal],
                };
                Predicate::Compare(orderings, parse(config.require("value")?)?)
            }
        };
        let keep_matches = config.choice_or("action", &["keep", "drop"], "keep")? == "keep";
        Ok(Filter { position, predicate, keep_matches })
    }

    pub fn matches(&self, cell: &Cell) -> bool {
        let equal = |v: &Cell| compare_cells(cell, v) == Some(Ordering::Equal);
        match (&self.predicate, cell) {
            (Predicate::IsNull, c) => *c == Cell::Null,
            (Predicate::NotNull, c) => *c != Cell::Null,
            (_, Cell::Null) => false,
            (Predicate::Compare(orderings, value), c) => {
                compare_cells(c, value).is_some_and(|o| orderings.contains(&o))
            }
            (Predicate::In(values), _) => values.iter().any(equal),
            (Predicate::NotIn(values), _) => !values.iter().any(equal),
            (Predicate::Contains(s), Cell::String(c)) => c.contains(s.as_str()),
            (Predicate::StartsWith(s), Cell::String(c)) => c.starts_with(s.as_str()),
            (Predicate::EndsWith(s), Cell::String(c)) => c.ends_with(s.as_str()),
            _ => false,
        }
    }
}

impl Transform for Filter {
    fn init(config: PluginConfig, output: Vec<Column>) -> Result<(Self, TransformInfo), PluginError> {
        let filter = Filter::new(&config, &output)?;
        Ok((filter, TransformInfo { info: plugin_info("filter", env!("CARGO_PKG_VERSION")), input: output }))
    }

    fn process(&mut self, batch: RowBatch) -> Result<Transformed, PluginError> {
        let rows = batch
            .rows
            .into_iter()
            .filter(|row| row.cells.get(self.position).is_some_and(|c| self.matches(c)) == self.keep_matches)
            .collect();
        Ok(Transformed { rows, failures: Vec::new() })
    }
}

rmq_openmldb_sdk::export_transform!(Filter);

#[cfg(test)]
mod tests {
    use super::*;

    fn columns() -> Vec<Column> {
        vec![
            Column { name: "company".into(), type_: ColumnType::String, nullable: true },
            Column { name: "howold".into(), type_: ColumnType::Int, nullable: true },
        ]
    }

    fn filter(pairs: &[(&str, &str)]) -> Result<Filter, PluginError> {
        Filter::new(&PluginConfig::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()), &columns())
    }

    fn ages(f: &mut Filter, ages: &[Option<i32>]) -> Vec<Option<i32>> {
        let rows = ages
            .iter()
            .enumerate()
            .map(|(i, a)| Row {
                source_index: i as u32,
                cells: vec![Cell::Null, a.map(Cell::Int).unwrap_or(Cell::Null)],
            })
            .collect();
        let out = f.process(RowBatch { rows, origins: vec![] }).unwrap();
        out.rows
            .iter()
            .map(|r| match r.cells[1] {
                Cell::Int(a) => Some(a),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn comparisons_keep_matching_rows_and_never_null() {
        let mut f = filter(&[("field", "howold"), ("op", "ge"), ("value", "20")]).unwrap();
        assert_eq!(ages(&mut f, &[Some(19), Some(20), None, Some(25)]), vec![Some(20), Some(25)]);
    }

    #[test]
    fn drop_action_inverts_and_in_lists_parse_per_type() {
        let mut f = filter(&[("field", "howold"), ("op", "in"), ("value", "19, 25"), ("action", "drop")]).unwrap();
        assert_eq!(ages(&mut f, &[Some(19), Some(20), None, Some(25)]), vec![Some(20), None]);
        let mut nulls = filter(&[("field", "howold"), ("op", "is-null")]).unwrap();
        assert_eq!(ages(&mut nulls, &[Some(1), None]), vec![None]);
    }

    #[test]
    fn string_predicates() {
        let f = filter(&[("field", "company"), ("op", "starts-with"), ("value", "com")]).unwrap();
        assert!(f.matches(&Cell::String("company".into())));
        assert!(!f.matches(&Cell::String("acme".into())));
        assert!(!f.matches(&Cell::Null));
    }

    #[test]
    fn config_errors_name_key_and_value() {
        let err = filter(&[("field", "salary")]).err().unwrap();
        assert_eq!(
            err.message,
            "config key \"field\": column \"salary\" is not in the schema (columns: company, howold)"
        );
        let err = filter(&[("field", "howold"), ("value", "old")]).err().unwrap();
        assert!(err.message.contains("\"value\"") && err.message.contains("\"old\""), "{}", err.message);
        let err = filter(&[("field", "howold"), ("op", "contains"), ("value", "1")]).err().unwrap();
        assert!(err.message.contains("needs a string column"), "{}", err.message);
        assert!(filter(&[("field", "howold"), ("op", "like"), ("value", "1")]).is_err());
    }
}
