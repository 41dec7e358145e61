//! Building rows against a schema: set cells by column name or index, and
//! get NULL for everything left unset (or an error for a NOT NULL column).

use crate::coerce::{CellError, CoerceOptions, Logical, cell_type, json_to_cell, null_cell};
use crate::{Cell, Column, FailureKind, Row};
use std::collections::HashMap;

/// Column lookup by name for one schema, built once per plugin instance.
#[derive(Debug, Clone)]
pub struct ColumnIndex {
    columns: Vec<Column>,
    by_name: HashMap<String, usize>,
}

impl ColumnIndex {
    pub fn new(columns: Vec<Column>) -> Self {
        let by_name = columns.iter().enumerate().map(|(i, c)| (c.name.clone(), i)).collect();
        ColumnIndex { columns, by_name }
    }

    pub fn position(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// A builder for one row of this schema.
    pub fn row(&self) -> RowBuilder<'_> {
        RowBuilder { index: self, cells: vec![None; self.columns.len()] }
    }
}

/// The position of column `name` in `columns`, or an `invalid-config`
/// error naming the config key, the column and the columns there are.
pub fn column_position(columns: &[Column], name: &str, key: &str) -> Result<usize, crate::PluginError> {
    columns.iter().position(|c| c.name == name).ok_or_else(|| {
        let known: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        crate::PluginError::invalid_config(format!(
            "config key \"{key}\": column \"{name}\" is not in the schema (columns: {})",
            known.join(", ")
        ))
    })
}

/// One row under construction.
#[derive(Debug)]
pub struct RowBuilder<'a> {
    index: &'a ColumnIndex,
    cells: Vec<Option<Cell>>,
}

impl RowBuilder<'_> {
    /// Set a cell by column position; the cell must have the column's type.
    pub fn set(&mut self, position: usize, cell: Cell) -> Result<&mut Self, CellError> {
        let column = self.index.columns.get(position).ok_or_else(|| CellError {
            kind: FailureKind::Rejected,
            message: format!("column position {position} is outside the schema"),
        })?;
        if let Some(ty) = cell_type(&cell).filter(|ty| *ty != column.type_) {
            return Err(CellError {
                kind: FailureKind::TypeMismatch,
                message: format!("field \"{}\": a {ty} value cannot go in a {} column", column.name, column.type_),
            });
        }
        self.cells[position] = Some(cell);
        Ok(self)
    }

    /// Set a cell by column name; unknown names are an error.
    pub fn set_named(&mut self, name: &str, cell: Cell) -> Result<&mut Self, CellError> {
        let position = self.index.position(name).ok_or_else(|| CellError {
            kind: FailureKind::Rejected,
            message: format!("field \"{name}\" is not a column of the table"),
        })?;
        self.set(position, cell)
    }

    /// Coerce a JSON value into the named column with the JSON rules.
    pub fn set_json(
        &mut self,
        name: &str,
        value: &serde_json::Value,
        opts: &CoerceOptions,
    ) -> Result<&mut Self, CellError> {
        let position = self.index.position(name).ok_or_else(|| CellError {
            kind: FailureKind::Rejected,
            message: format!("field \"{name}\" is not a column of the table"),
        })?;
        let cell = json_to_cell(value, &self.index.columns[position], Logical::None, opts)?;
        self.cells[position] = Some(cell);
        Ok(self)
    }

    /// The row; unset columns are NULL, or `missing-field` when NOT NULL.
    pub fn build(self, source_index: u32) -> Result<Row, CellError> {
        let cells = self
            .cells
            .into_iter()
            .zip(&self.index.columns)
            .map(|(cell, column)| match cell {
                Some(cell) => Ok(cell),
                None => null_cell(column),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Row { source_index, cells })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ColumnType;

    fn schema() -> ColumnIndex {
        ColumnIndex::new(vec![
            Column { name: "id".into(), type_: ColumnType::Bigint, nullable: false },
            Column { name: "name".into(), type_: ColumnType::String, nullable: true },
        ])
    }

    #[test]
    fn unset_nullable_columns_are_null() {
        let s = schema();
        let mut b = s.row();
        b.set_named("id", Cell::Bigint(7)).unwrap();
        assert_eq!(b.build(3).unwrap(), Row { source_index: 3, cells: vec![Cell::Bigint(7), Cell::Null] });
    }

    #[test]
    fn unset_not_null_columns_fail_with_the_column_name() {
        let s = schema();
        let err = s.row().build(0).unwrap_err();
        assert_eq!(err.kind, FailureKind::MissingField);
        assert!(err.message.contains("\"id\""), "{}", err.message);
    }

    #[test]
    fn cells_must_match_the_column_type() {
        let s = schema();
        let mut b = s.row();
        let err = b.set_named("id", Cell::String("x".into())).unwrap_err();
        assert_eq!(err.message, "field \"id\": a string value cannot go in a bigint column");
        assert!(b.set_named("nope", Cell::Null).is_err());
        b.set_json("id", &serde_json::json!("12"), &CoerceOptions::default()).unwrap();
        assert_eq!(b.build(0).unwrap().cells[0], Cell::Bigint(12));
    }
}
