//! The table a sink plugin writes, as the database describes it: its
//! columns in the contract's types (what the converter and transforms
//! must produce), and `auto.create`'s CREATE TABLE when it is missing.

use super::SqlConnection;
use crate::plugin::bindings::sql::{SqlError, SqlValue};
use crate::plugin::bindings::{Column, ColumnType};

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("{0}")]
    Sql(String),
    #[error("table {table}: column \"{column}\" has type {sql_type}, which no row cell maps to; {hint}")]
    Unsupported { table: String, column: String, sql_type: String, hint: &'static str },
    #[error("table {table}: {reason}")]
    Create { table: String, reason: String },
}

impl From<SqlError> for SchemaError {
    fn from(e: SqlError) -> Self {
        SchemaError::Sql(e.message)
    }
}

/// The columns of `table` in the connection's database, in table order;
/// `None` when there is no such table.
pub fn describe_table(connection: &SqlConnection, table: &str) -> Result<Option<Vec<Column>>, SchemaError> {
    let result = connection.query(
        "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION"
            .into(),
        vec![SqlValue::Text(table.to_string())],
    )?;
    if result.rows.is_empty() {
        return Ok(None);
    }
    let text = |value: &SqlValue| match value {
        SqlValue::Text(s) => s.clone(),
        SqlValue::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    };
    let mut columns = Vec::with_capacity(result.rows.len());
    for row in &result.rows {
        let [name, data_type, column_type, nullable] = &row[..] else {
            return Err(SchemaError::Sql("information_schema.COLUMNS answered an unexpected shape".into()));
        };
        let (name, data_type, column_type) = (text(name), text(data_type).to_ascii_lowercase(), text(column_type));
        let type_ =
            column_type_of(&data_type, &column_type.to_ascii_lowercase()).ok_or_else(|| SchemaError::Unsupported {
                table: table.to_string(),
                column: name.clone(),
                sql_type: column_type.to_uppercase(),
                hint: "give it a default and leave it out with a transform, or change its type",
            })?;
        columns.push(Column { name, type_, nullable: text(nullable).eq_ignore_ascii_case("YES") });
    }
    Ok(Some(columns))
}

/// The contract type a MySQL column holds, or None for types no cell maps to.
fn column_type_of(data_type: &str, column_type: &str) -> Option<ColumnType> {
    let unsigned = column_type.contains("unsigned");
    Some(match data_type {
        "tinyint" if column_type.starts_with("tinyint(1)") && !unsigned => ColumnType::Bool,
        "bit" if column_type == "bit(1)" => ColumnType::Bool,
        "tinyint" => ColumnType::Smallint,
        "smallint" if unsigned => ColumnType::Int,
        "smallint" | "year" => ColumnType::Smallint,
        "mediumint" => ColumnType::Int,
        "int" | "integer" if unsigned => ColumnType::Bigint,
        "int" | "integer" => ColumnType::Int,
        "bigint" => ColumnType::Bigint,
        "float" => ColumnType::Float,
        "double" | "real" | "decimal" | "numeric" => ColumnType::Double,
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum" | "set" | "json" => {
            ColumnType::String
        }
        "date" => ColumnType::Date,
        "datetime" | "timestamp" => ColumnType::Timestamp,
        _ => return None,
    })
}

/// `auto.create`: CREATE TABLE `table` from the columns a message
/// declares, with `primary_key` (pk.fields) as its key.
pub fn create_table(
    connection: &SqlConnection,
    table: &str,
    columns: &[Column],
    primary_key: &[String],
) -> Result<(), SchemaError> {
    let fail = |reason: String| SchemaError::Create { table: table.to_string(), reason };
    for key in primary_key {
        if !columns.iter().any(|c| &c.name == key) {
            return Err(fail(format!("pk.fields names \"{key}\", which the messages do not have")));
        }
    }
    let mut definitions: Vec<String> = columns
        .iter()
        .map(|column| {
            let is_key = primary_key.contains(&column.name);
            let sql_type = match column.type_ {
                ColumnType::Bool => "BOOLEAN",
                ColumnType::Smallint => "SMALLINT",
                ColumnType::Int => "INT",
                ColumnType::Bigint => "BIGINT",
                ColumnType::Float => "FLOAT",
                ColumnType::Double => "DOUBLE",
                // A key must have a length; other text may be long.
                ColumnType::String if is_key => "VARCHAR(255)",
                ColumnType::String => "TEXT",
                ColumnType::Date => "DATE",
                ColumnType::Timestamp => "DATETIME(3)",
            };
            let null = if column.nullable && !is_key { "NULL" } else { "NOT NULL" };
            format!("{} {sql_type} {null}", quote_identifier(&column.name))
        })
        .collect();
    if !primary_key.is_empty() {
        let keys: Vec<String> = primary_key.iter().map(|k| quote_identifier(k)).collect();
        definitions.push(format!("PRIMARY KEY ({})", keys.join(", ")));
    }
    let statement = format!("CREATE TABLE IF NOT EXISTS {} ({})", quote_identifier(table), definitions.join(", "));
    tracing::info!(table, "auto.create: {statement}");
    connection.execute(statement, vec![vec![]]).map_err(|e| fail(e.message))?;
    Ok(())
}

/// A MySQL identifier in backquotes.
pub fn quote_identifier(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_types_map_to_the_contract_types() {
        assert_eq!(column_type_of("tinyint", "tinyint(1)"), Some(ColumnType::Bool));
        assert_eq!(column_type_of("tinyint", "tinyint(3) unsigned"), Some(ColumnType::Smallint));
        assert_eq!(column_type_of("int", "int(10) unsigned"), Some(ColumnType::Bigint));
        assert_eq!(column_type_of("int", "int(11)"), Some(ColumnType::Int));
        assert_eq!(column_type_of("decimal", "decimal(10,2)"), Some(ColumnType::Double));
        assert_eq!(column_type_of("varchar", "varchar(20)"), Some(ColumnType::String));
        assert_eq!(column_type_of("datetime", "datetime(3)"), Some(ColumnType::Timestamp));
        assert_eq!(column_type_of("blob", "blob"), None);
        assert_eq!(quote_identifier("a`b"), "`a``b`");
    }
}
