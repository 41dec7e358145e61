//! Built-in transform `cast`: upstream produces some columns as another
//! type (e.g. a string), and this transform converts them to the table's
//! type, with range checks.
//!
//! Config: `fields` = `col:type,...` giving the type upstream produces;
//! `timezone` for strings and dates without an offset (default UTC). A
//! value that cannot be converted fails its row, naming field and value.

use rmq_openmldb_sdk::coerce::{CoerceOptions, cast_cell};
use rmq_openmldb_sdk::prelude::*;
use rmq_openmldb_sdk::row::column_position;
use rmq_openmldb_sdk::time::Zone;

pub struct Cast {
    /// (position, output column) of every cast column.
    casts: Vec<(usize, Column)>,
    opts: CoerceOptions,
}

impl Cast {
    pub fn new(config: &PluginConfig, output: &[Column]) -> Result<(Self, Vec<Column>), PluginError> {
        let fields = config.typed_columns("fields", ColumnType::String)?;
        if fields.is_empty() {
            return Err(PluginError::invalid_config("missing required config key \"fields\" (col:type,...)"));
        }
        let zone = match config.get("timezone") {
            Some(spec) => {
                Zone::parse(spec).map_err(|e| PluginError::invalid_config(format!("config key \"timezone\": {e}")))?
            }
            None => Zone::default(),
        };
        let mut input = output.to_vec();
        let mut casts = Vec::new();
        for (name, from) in fields {
            let position = column_position(output, &name, "fields")?;
            input[position].type_ = from;
            input[position].nullable = true;
            casts.push((position, output[position].clone()));
        }
        Ok((Cast { casts, opts: CoerceOptions { zone } }, input))
    }
}

impl Transform for Cast {
    fn init(config: PluginConfig, output: Vec<Column>) -> Result<(Self, TransformInfo), PluginError> {
        let (cast, input) = Cast::new(&config, &output)?;
        Ok((cast, TransformInfo { info: plugin_info("cast", env!("CARGO_PKG_VERSION")), input }))
    }

    fn process(&mut self, batch: RowBatch) -> Result<Transformed, PluginError> {
        let mut out = Transformed { rows: Vec::with_capacity(batch.rows.len()), failures: Vec::new() };
        'rows: for (index, mut row) in batch.rows.into_iter().enumerate() {
            for (position, column) in &self.casts {
                let Some(cell) = row.cells.get_mut(*position) else {
                    continue;
                };
                match cast_cell(cell, column, &self.opts) {
                    Ok(converted) => *cell = converted,
                    Err(e) => {
                        out.failures.push(e.into_failure(index as u32));
                        continue 'rows;
                    }
                }
            }
            out.rows.push(row);
        }
        Ok(out)
    }
}

rmq_openmldb_sdk::export_transform!(Cast);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_produces_the_declared_type_and_rows_get_the_table_type() {
        let output = vec![
            Column { name: "id".into(), type_: ColumnType::Bigint, nullable: false },
            Column { name: "howold".into(), type_: ColumnType::Smallint, nullable: true },
        ];
        let config = PluginConfig::new(vec![("fields".into(), "howold:string".into())]);
        let (mut cast, info) = Cast::init(config, output).unwrap();
        assert_eq!(info.input[1].type_, ColumnType::String);
        let rows = vec![
            Row { source_index: 0, cells: vec![Cell::Bigint(1), Cell::String("42".into())] },
            Row { source_index: 1, cells: vec![Cell::Bigint(2), Cell::String("70000".into())] },
            Row { source_index: 2, cells: vec![Cell::Bigint(3), Cell::Null] },
        ];
        let out = cast.process(RowBatch { rows, origins: vec![] }).unwrap();
        assert_eq!(out.rows.len(), 2);
        assert_eq!(out.rows[0].cells[1], Cell::Smallint(42));
        assert_eq!(out.rows[1].cells[1], Cell::Null);
        assert_eq!(out.failures.len(), 1);
        assert_eq!(out.failures[0].index, 1);
        assert_eq!(out.failures[0].kind, FailureKind::OutOfRange);
        assert!(out.failures[0].message.contains("\"howold\""), "{}", out.failures[0].message);
    }
}
