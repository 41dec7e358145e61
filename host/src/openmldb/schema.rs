//! Table schemas as the APIServer describes them (`GET
//! /dbs/{db}/tables/{t}`, openmldb.md §1.4.7), and the CREATE TABLE that
//! `auto.create` sends.

use super::config::{IndexConfig, check_name, sql_type};
use crate::plugin::bindings::{Column, ColumnType, TableSchema};

/// A table's columns, plus which of them OpenMLDB indexes.
#[derive(Debug, Clone, PartialEq)]
pub struct TableInfo {
    pub schema: TableSchema,
    /// Positions of the columns used as an index TS (NULL and negative
    /// values are refused there).
    pub ts_columns: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("table {database}.{table}: {reason}")]
pub struct SchemaError {
    pub database: String,
    pub table: String,
    pub reason: String,
}

/// OpenMLDB's protobuf type names (`kVarchar`, …).
pub fn column_type_of(data_type: &str) -> Option<ColumnType> {
    Some(match data_type {
        "kBool" => ColumnType::Bool,
        "kSmallInt" => ColumnType::Smallint,
        "kInt" => ColumnType::Int,
        "kBigInt" => ColumnType::Bigint,
        "kFloat" => ColumnType::Float,
        "kDouble" => ColumnType::Double,
        "kVarchar" | "kString" => ColumnType::String,
        "kDate" => ColumnType::Date,
        "kTimestamp" => ColumnType::Timestamp,
        _ => return None,
    })
}

/// Read the `table` object of a GET reply.
pub fn parse_table_info(database: &str, table: &str, info: &serde_json::Value) -> Result<TableInfo, SchemaError> {
    let fail = |reason: String| SchemaError { database: database.into(), table: table.into(), reason };
    let columns = info["column_desc"].as_array().ok_or_else(|| fail("the APIServer sent no column_desc".into()))?;
    let mut parsed = Vec::with_capacity(columns.len());
    for column in columns {
        let name = column["name"].as_str().ok_or_else(|| fail("a column has no name".into()))?;
        let data_type = column["data_type"].as_str().unwrap_or("");
        let type_ = column_type_of(data_type)
            .ok_or_else(|| fail(format!("column {name} has type {data_type}, which this writer cannot fill")))?;
        let not_null = column["not_null"].as_bool().unwrap_or(false);
        parsed.push(Column { name: name.to_string(), type_, nullable: !not_null });
    }
    let mut ts_columns = Vec::new();
    for key in info["column_key"].as_array().into_iter().flatten() {
        if let Some(ts) = key["ts_name"].as_str()
            && let Some(position) = parsed.iter().position(|c| c.name == ts)
            && !ts_columns.contains(&position)
        {
            ts_columns.push(position);
        }
    }
    Ok(TableInfo {
        schema: TableSchema { database: database.into(), table: table.into(), columns: parsed },
        ts_columns,
    })
}

/// `CREATE TABLE IF NOT EXISTS` for `columns` with the configured index.
/// Returns the DDL and, when no index key is configured, the warning that
/// OpenMLDB's default index never expires.
pub fn create_table_sql(
    table: &str,
    columns: &[Column],
    index: &IndexConfig,
) -> Result<(String, Option<String>), String> {
    check_name(table)?;
    if columns.is_empty() {
        return Err("the record schema has no columns".into());
    }
    let find = |name: &str, key: &str| -> Result<&Column, String> {
        columns.iter().find(|c| c.name == name).ok_or_else(|| {
            let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
            format!("{key}: column \"{name}\" is not in the record schema ({})", names.join(", "))
        })
    };
    let mut parts: Vec<String> = Vec::with_capacity(columns.len() + 1);
    for column in columns {
        check_name(&column.name).map_err(|e| format!("column {e}"))?;
        let not_null = if column.nullable { "" } else { " NOT NULL" };
        parts.push(format!("`{}` {}{not_null}", column.name, sql_type(column.type_)));
    }
    let mut warning = None;
    if index.key.is_empty() {
        let default = columns.iter().find(|c| !matches!(c.type_, ColumnType::Float | ColumnType::Double));
        warning = Some(format!(
            "auto.create of table {table} without openmldb.index.key: OpenMLDB adds its default index{} with no TS and \
             no TTL, so its data never expires and memory grows without bound; set openmldb.index.key, \
             openmldb.index.ts and openmldb.index.ttl",
            default.map(|c| format!(" on column {}", c.name)).unwrap_or_default()
        ));
    } else {
        let mut options = Vec::new();
        let keys = index
            .key
            .iter()
            .map(|k| {
                let column = find(k, "openmldb.index.key")?;
                if matches!(column.type_, ColumnType::Float | ColumnType::Double) {
                    return Err(format!(
                        "openmldb.index.key: column \"{k}\" is a {}, which OpenMLDB cannot index",
                        sql_type(column.type_)
                    ));
                }
                Ok(format!("`{k}`"))
            })
            .collect::<Result<Vec<_>, String>>()?;
        options.push(if keys.len() == 1 { format!("KEY={}", keys[0]) } else { format!("KEY=({})", keys.join(",")) });
        if let Some(ts) = &index.ts {
            let column = find(ts, "openmldb.index.ts")?;
            if !matches!(column.type_, ColumnType::Bigint | ColumnType::Timestamp) {
                return Err(format!(
                    "openmldb.index.ts: column \"{ts}\" is a {}; it must be bigint or timestamp",
                    sql_type(column.type_)
                ));
            }
            options.push(format!("TS=`{ts}`"));
        }
        if let Some(ttl_type) = &index.ttl_type {
            options.push(format!("TTL_TYPE={ttl_type}"));
        }
        if let Some(ttl) = &index.ttl {
            options.push(format!("TTL={ttl}"));
        }
        parts.push(format!("INDEX({})", options.join(", ")));
    }
    let mut sql = format!("CREATE TABLE IF NOT EXISTS `{table}` ({})", parts.join(", "));
    let mut table_options = Vec::new();
    if let Some(n) = index.partition_num {
        table_options.push(format!("PARTITIONNUM={n}"));
    }
    if let Some(n) = index.replica_num {
        table_options.push(format!("REPLICANUM={n}"));
    }
    if !table_options.is_empty() {
        sql.push_str(&format!(" OPTIONS ({})", table_options.join(", ")));
    }
    Ok((sql, warning))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, type_: ColumnType, nullable: bool) -> Column {
        Column { name: name.into(), type_, nullable }
    }

    #[test]
    fn ddl_has_the_configured_index_and_options() {
        let columns = [
            col("id", ColumnType::Bigint, false),
            col("name", ColumnType::String, true),
            col("t", ColumnType::Timestamp, true),
        ];
        let index = IndexConfig {
            key: vec!["id".into()],
            ts: Some("t".into()),
            ttl: Some("30d".into()),
            ttl_type: Some("absolute".into()),
            partition_num: Some(4),
            replica_num: Some(1),
        };
        let (sql, warning) = create_table_sql("employee_test", &columns, &index).unwrap();
        assert_eq!(
            sql,
            "CREATE TABLE IF NOT EXISTS `employee_test` (`id` bigint NOT NULL, `name` string, `t` timestamp, \
             INDEX(KEY=`id`, TS=`t`, TTL_TYPE=absolute, TTL=30d)) OPTIONS (PARTITIONNUM=4, REPLICANUM=1)"
        );
        assert_eq!(warning, None);
    }

    #[test]
    fn no_index_key_warns_about_the_default_index() {
        let columns = [col("m", ColumnType::Double, true), col("name", ColumnType::String, true)];
        let (sql, warning) = create_table_sql("t", &columns, &IndexConfig::default()).unwrap();
        assert_eq!(sql, "CREATE TABLE IF NOT EXISTS `t` (`m` double, `name` string)");
        let warning = warning.unwrap();
        assert!(warning.contains("default index on column name") && warning.contains("never expires"), "{warning}");
    }

    #[test]
    fn bad_index_columns_are_named() {
        let columns = [col("m", ColumnType::Double, true), col("s", ColumnType::String, true)];
        let key = |k: &str| IndexConfig { key: vec![k.into()], ..Default::default() };
        assert!(create_table_sql("t", &columns, &key("m")).unwrap_err().contains("cannot index"));
        assert!(
            create_table_sql("t", &columns, &key("x"))
                .unwrap_err()
                .contains("column \"x\" is not in the record schema (m, s)")
        );
        let ts = IndexConfig { key: vec!["s".into()], ts: Some("s".into()), ..Default::default() };
        assert!(create_table_sql("t", &columns, &ts).unwrap_err().contains("must be bigint or timestamp"));
    }

    #[test]
    fn table_info_gives_columns_nullability_and_ts_columns() {
        let info = serde_json::json!({
            "name": "t",
            "column_desc": [
                {"name": "k", "data_type": "kVarchar", "not_null": false},
                {"name": "ts", "data_type": "kTimestamp", "not_null": true}
            ],
            "column_key": [{"index_name": "INDEX_0_1", "col_name": ["k"], "ts_name": "ts", "ttl": {}}]
        });
        let parsed = parse_table_info("d", "t", &info).unwrap();
        assert_eq!(
            parsed.schema.columns,
            vec![col("k", ColumnType::String, true), col("ts", ColumnType::Timestamp, false)]
        );
        assert_eq!(parsed.ts_columns, vec![1]);
        let map = serde_json::json!({"column_desc": [{"name": "m", "data_type": "kMap"}]});
        assert!(parse_table_info("d", "t", &map).unwrap_err().to_string().contains("kMap"));
    }
}
