//! Built-in transform `drop`: remove columns that upstream produces but
//! the table does not hold (typically after a `filter` used them).
//!
//! Config: `fields` = `col[:type],...` (type defaults to string). The
//! columns are added to the input schema, after the output's columns, so
//! upstream produces them; this transform cuts them off.

use rmq_openmldb_sdk::prelude::*;

pub struct Drop {
    keep: usize,
}

pub fn input_schema(config: &PluginConfig, output: &[Column]) -> Result<Vec<Column>, PluginError> {
    let fields = config.typed_columns("fields", ColumnType::String)?;
    if fields.is_empty() {
        return Err(PluginError::invalid_config("missing required config key \"fields\" (col[:type],...)"));
    }
    let mut input = output.to_vec();
    for (name, type_) in fields {
        if input.iter().any(|c| c.name == name) {
            return Err(PluginError::invalid_config(format!(
                "config key \"fields\": column \"{name}\" is kept downstream (or listed twice); it cannot be dropped"
            )));
        }
        input.push(Column { name, type_, nullable: true });
    }
    Ok(input)
}

impl Transform for Drop {
    fn init(config: PluginConfig, output: Vec<Column>) -> Result<(Self, TransformInfo), PluginError> {
        let input = input_schema(&config, &output)?;
        let info = TransformInfo { info: plugin_info("drop", env!("CARGO_PKG_VERSION")), input };
        Ok((Drop { keep: output.len() }, info))
    }

    fn process(&mut self, batch: RowBatch) -> Result<Transformed, PluginError> {
        let mut rows = batch.rows;
        for row in &mut rows {
            row.cells.truncate(self.keep);
        }
        Ok(Transformed { rows, failures: Vec::new() })
    }
}

rmq_openmldb_sdk::export_transform!(Drop);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_columns_are_appended_to_the_input_and_cut_from_rows() {
        let output = vec![Column { name: "id".into(), type_: ColumnType::Bigint, nullable: false }];
        let config = PluginConfig::new(vec![("fields".into(), "status, score:double".into())]);
        let (mut drop, info) = Drop::init(config, output).unwrap();
        let input: Vec<(&str, ColumnType)> = info.input.iter().map(|c| (c.name.as_str(), c.type_)).collect();
        assert_eq!(
            input,
            vec![("id", ColumnType::Bigint), ("status", ColumnType::String), ("score", ColumnType::Double)]
        );
        let row = Row { source_index: 3, cells: vec![Cell::Bigint(1), Cell::String("x".into()), Cell::Double(1.0)] };
        let out = drop.process(RowBatch { rows: vec![row], origins: vec![] }).unwrap();
        assert_eq!(out.rows, vec![Row { source_index: 3, cells: vec![Cell::Bigint(1)] }]);
    }

    #[test]
    fn a_kept_column_cannot_be_dropped() {
        let output = vec![Column { name: "id".into(), type_: ColumnType::Bigint, nullable: false }];
        let err = input_schema(&PluginConfig::new(vec![("fields".into(), "id".into())]), &output).unwrap_err();
        assert!(err.message.contains("\"id\" is kept downstream"), "{}", err.message);
    }
}
