//! Built-in transform `mask`: hide the values of sensitive columns.
//!
//! Config: `fields` (columns of the output), `mask.char` (default `*`),
//! `keep.last` (string columns keep their last N characters, default 0),
//! `replacement` (a value used instead, read as each column's type).
//! Without a replacement, strings keep their length, numbers become 0,
//! booleans false, dates 1970-01-01 and timestamps 0. NULL stays NULL.

use rmq_openmldb_sdk::coerce::{CoerceOptions, Logical, json_to_cell};
use rmq_openmldb_sdk::prelude::*;
use rmq_openmldb_sdk::row::column_position;

pub struct Mask {
    /// (position, replacement cell if configured)
    fields: Vec<(usize, Option<Cell>)>,
    mask_char: char,
    keep_last: usize,
}

impl Mask {
    pub fn new(config: &PluginConfig, output: &[Column]) -> Result<Self, PluginError> {
        let names = config.list("fields");
        if names.is_empty() {
            return Err(PluginError::invalid_config("missing required config key \"fields\""));
        }
        let mut chars = config.get("mask.char").unwrap_or("*").chars();
        let mask_char = match (chars.next(), chars.next()) {
            (Some(c), None) => c,
            _ => {
                return Err(PluginError::invalid_config("config key \"mask.char\": expected exactly one character"));
            }
        };
        let keep_last = config.parse_or("keep.last", 0usize)?;
        let fields = names
            .iter()
            .map(|name| {
                let position = column_position(output, name, "fields")?;
                let replacement = match config.get("replacement") {
                    None => None,
                    Some(raw) => Some(
                        json_to_cell(
                            &serde_json::Value::String(raw.to_string()),
                            &output[position],
                            Logical::None,
                            &CoerceOptions::default(),
                        )
                        .map_err(|e| {
                            PluginError::invalid_config(format!("config key \"replacement\": {}", e.message))
                        })?,
                    ),
                };
                Ok((position, replacement))
            })
            .collect::<Result<Vec<_>, PluginError>>()?;
        Ok(Mask { fields, mask_char, keep_last })
    }

    fn mask(&self, cell: &Cell) -> Cell {
        match cell {
            Cell::Null => Cell::Null,
            Cell::String(s) => {
                let count = s.chars().count();
                let hidden = count.saturating_sub(self.keep_last);
                let mut masked: String = std::iter::repeat_n(self.mask_char, hidden).collect();
                masked.extend(s.chars().skip(hidden));
                Cell::String(masked)
            }
            Cell::Bool(_) => Cell::Bool(false),
            Cell::Smallint(_) => Cell::Smallint(0),
            Cell::Int(_) => Cell::Int(0),
            Cell::Bigint(_) => Cell::Bigint(0),
            Cell::Float(_) => Cell::Float(0.0),
            Cell::Double(_) => Cell::Double(0.0),
            Cell::Date(_) => Cell::Date(Date { year: 1970, month: 1, day: 1 }),
            Cell::Timestamp(_) => Cell::Timestamp(0),
        }
    }
}

impl Transform for Mask {
    fn init(config: PluginConfig, output: Vec<Column>) -> Result<(Self, TransformInfo), PluginError> {
        let mask = Mask::new(&config, &output)?;
        Ok((mask, TransformInfo { info: plugin_info("mask", env!("CARGO_PKG_VERSION")), input: output }))
    }

    fn process(&mut self, batch: RowBatch) -> Result<Transformed, PluginError> {
        let mut rows = batch.rows;
        for row in &mut rows {
            for (position, replacement) in &self.fields {
                if let Some(cell) = row.cells.get_mut(*position) {
                    *cell = match (replacement, &*cell) {
                        (_, Cell::Null) => Cell::Null,
                        (Some(r), _) => r.clone(),
                        (None, c) => self.mask(c),
                    };
                }
            }
        }
        Ok(Transformed { rows, failures: Vec::new() })
    }
}

rmq_openmldb_sdk::export_transform!(Mask);

#[cfg(test)]
mod tests {
    use super::*;

    fn columns() -> Vec<Column> {
        vec![
            Column { name: "card".into(), type_: ColumnType::String, nullable: true },
            Column { name: "money".into(), type_: ColumnType::Double, nullable: true },
        ]
    }

    fn run(pairs: &[(&str, &str)], cells: Vec<Cell>) -> Vec<Cell> {
        let config = PluginConfig::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        let (mut mask, _) = Mask::init(config, columns()).unwrap();
        mask.process(RowBatch { rows: vec![Row { source_index: 0, cells }], origins: vec![] })
            .unwrap()
            .rows
            .remove(0)
            .cells
    }

    #[test]
    fn strings_keep_length_and_optionally_their_tail() {
        let out = run(
            &[("fields", "card,money"), ("keep.last", "4")],
            vec![Cell::String("4111111111111111".into()), Cell::Double(3.5)],
        );
        assert_eq!(out, vec![Cell::String("************1111".into()), Cell::Double(0.0)]);
    }

    #[test]
    fn replacements_are_typed_and_null_stays_null() {
        let out = run(&[("fields", "money"), ("replacement", "-1")], vec![Cell::Null, Cell::Double(3.5)]);
        assert_eq!(out, vec![Cell::Null, Cell::Double(-1.0)]);
        let out = run(&[("fields", "money"), ("replacement", "-1")], vec![Cell::Null, Cell::Null]);
        assert_eq!(out[1], Cell::Null);
    }

    #[test]
    fn bad_config_is_named() {
        let config = PluginConfig::new(vec![("fields".into(), "money".into()), ("replacement".into(), "lots".into())]);
        let err = Mask::init(config, columns()).err().unwrap();
        assert!(err.message.contains("replacement") && err.message.contains("\"lots\""), "{}", err.message);
    }
}
