//! Built-in transform `rename`: the table's column `new` is fed by the
//! upstream column `old`.
//!
//! Config: `renames` = `old:new,old2:new2`. Each `new` must be a column of
//! the output. Rows pass through untouched: cells are positional, so a
//! rename only changes the schema upstream sees.

use rmq_openmldb_sdk::prelude::*;
use rmq_openmldb_sdk::row::column_position;

pub struct Rename;

/// The input schema: `output` with each `new` name replaced by its `old`.
pub fn input_schema(config: &PluginConfig, output: &[Column]) -> Result<Vec<Column>, PluginError> {
    let renames = config.pairs("renames")?;
    if renames.is_empty() {
        return Err(PluginError::invalid_config("missing required config key \"renames\" (old:new,...)"));
    }
    let mut input = output.to_vec();
    for (old, new) in renames {
        let position = column_position(output, &new, "renames")?;
        if input.iter().enumerate().any(|(i, c)| i != position && c.name == old) {
            return Err(PluginError::invalid_config(format!(
                "config key \"renames\": \"{old}:{new}\" would give two input columns named \"{old}\""
            )));
        }
        input[position].name = old;
    }
    Ok(input)
}

impl Transform for Rename {
    fn init(config: PluginConfig, output: Vec<Column>) -> Result<(Self, TransformInfo), PluginError> {
        let input = input_schema(&config, &output)?;
        Ok((Rename, TransformInfo { info: plugin_info("rename", env!("CARGO_PKG_VERSION")), input }))
    }

    fn process(&mut self, batch: RowBatch) -> Result<Transformed, PluginError> {
        Ok(Transformed { rows: batch.rows, failures: Vec::new() })
    }
}

rmq_openmldb_sdk::export_transform!(Rename);

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(names: &[&str]) -> Vec<Column> {
        names.iter().map(|n| Column { name: n.to_string(), type_: ColumnType::String, nullable: true }).collect()
    }

    fn config(renames: &str) -> PluginConfig {
        PluginConfig::new(vec![("renames".into(), renames.into())])
    }

    #[test]
    fn upstream_sees_the_old_names() {
        let input = input_schema(&config("emp_name:name, age:howold"), &columns(&["id", "name", "howold"])).unwrap();
        let names: Vec<&str> = input.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec!["id", "emp_name", "age"]);
    }

    #[test]
    fn unknown_targets_and_clashes_are_config_errors() {
        let err = input_schema(&config("a:nope"), &columns(&["id"])).unwrap_err();
        assert!(err.message.contains("\"nope\""), "{}", err.message);
        let err = input_schema(&config("id:name"), &columns(&["id", "name"])).unwrap_err();
        assert!(err.message.contains("two input columns named \"id\""), "{}", err.message);
        assert!(input_schema(&config("broken"), &columns(&["id"])).is_err());
    }
}
