//! The native path, for `jdbc:openmldb:///DB?zk=…&zkPath=…`: tables found
//! in ZooKeeper and rows written straight to the tablets with the
//! `openmldb-client` crate, as the official SDK writes them. This module
//! translates between the writer's model (the plugin contract's rows and
//! schemas, the connector's index keys) and the client crate's own types.
//! The retry and dead-letter rules are the writer's (`writer.rs`).

use super::config::{IndexConfig, ZooKeeperEndpoint, check_name};
use super::schema::TableInfo;
use crate::plugin::bindings::{Cell, Column, ColumnType, Row, TableSchema};
use openmldb_client::proto::openmldb::common::TtlSt;
use openmldb_client::proto::openmldb::r#type::TtlType;
use openmldb_client::proto::{ColumnDesc, ColumnKey};
use openmldb_client::{Client, ClientOptions, DataType, Date, Value};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

/// One client (one ZooKeeper session, one connection per tablet) per
/// cluster and user, shared by every writer of the process.
static CLIENTS: LazyLock<Mutex<HashMap<String, Weak<Client>>>> = LazyLock::new(Default::default);

/// The shared client for `endpoint`, connecting when none is alive.
pub async fn shared_client(endpoint: &ZooKeeperEndpoint, request_timeout: Duration) -> Result<Arc<Client>, String> {
    let key = format!("{}\u{0}{}\u{0}{}\u{0}{}", endpoint.zk, endpoint.zk_path, endpoint.user, endpoint.password);
    let cached = CLIENTS.lock().ok().and_then(|clients| clients.get(&key).and_then(Weak::upgrade));
    if let Some(client) = cached {
        return Ok(client);
    }
    let mut options = ClientOptions::new(endpoint.zk.clone(), endpoint.zk_path.clone());
    options.user = endpoint.user.clone();
    options.password = endpoint.password.clone();
    options.session_timeout = endpoint.session_timeout;
    options.request_timeout = endpoint.request_timeout.unwrap_or(request_timeout);
    let client = Arc::new(Client::connect(options).await.map_err(|e| e.to_string())?);
    if let Ok(mut clients) = CLIENTS.lock() {
        clients.retain(|_, weak| weak.strong_count() > 0);
        clients.insert(key, Arc::downgrade(&client));
    }
    Ok(client)
}

fn column_type(data_type: DataType) -> ColumnType {
    match data_type {
        DataType::Bool => ColumnType::Bool,
        DataType::SmallInt => ColumnType::Smallint,
        DataType::Int => ColumnType::Int,
        DataType::BigInt => ColumnType::Bigint,
        DataType::Float => ColumnType::Float,
        DataType::Double => ColumnType::Double,
        DataType::Date => ColumnType::Date,
        DataType::Timestamp => ColumnType::Timestamp,
        DataType::String => ColumnType::String,
    }
}

fn data_type(column_type: ColumnType) -> DataType {
    match column_type {
        ColumnType::Bool => DataType::Bool,
        ColumnType::Smallint => DataType::SmallInt,
        ColumnType::Int => DataType::Int,
        ColumnType::Bigint => DataType::BigInt,
        ColumnType::Float => DataType::Float,
        ColumnType::Double => DataType::Double,
        ColumnType::Date => DataType::Date,
        ColumnType::Timestamp => DataType::Timestamp,
        ColumnType::String => DataType::String,
    }
}

/// The writer's view of a table found in ZooKeeper.
pub fn table_info(table: &openmldb_client::Table) -> TableInfo {
    let columns = table
        .columns
        .iter()
        .map(|c| Column { name: c.name.clone(), type_: column_type(c.data_type), nullable: !c.not_null })
        .collect();
    let mut ts_columns: Vec<usize> = Vec::new();
    for index in &table.indexes {
        if let Some(ts) = index.ts_column
            && !ts_columns.contains(&ts)
        {
            ts_columns.push(ts);
        }
    }
    TableInfo { schema: TableSchema { database: table.db.clone(), table: table.name.clone(), columns }, ts_columns }
}

/// A row's cells as the client's values.
pub fn values(row: &Row) -> Vec<Value> {
    row.cells
        .iter()
        .map(|cell| match cell {
            Cell::Null => Value::Null,
            Cell::Bool(v) => Value::Bool(*v),
            Cell::Smallint(v) => Value::SmallInt(*v),
            Cell::Int(v) => Value::Int(*v),
            Cell::Bigint(v) => Value::BigInt(*v),
            Cell::Float(v) => Value::Float(*v),
            Cell::Double(v) => Value::Double(*v),
            Cell::String(v) => Value::String(v.clone()),
            Cell::Date(d) => Value::Date(Date { year: d.year, month: d.month, day: d.day }),
            Cell::Timestamp(v) => Value::Timestamp(*v),
        })
        .collect()
}

/// The `TableInfo` `auto.create` sends to the nameserver: the same table
/// the APIServer path's `CREATE TABLE` makes (`schema::create_table_sql`),
/// including OpenMLDB's default index when no key is configured (the SQL
/// compiler adds it there; here the writer must). Returns the warning for
/// the default index, which never expires.
pub fn create_table_info(
    database: &str,
    table: &str,
    columns: &[Column],
    index: &IndexConfig,
) -> Result<(openmldb_client::proto::TableInfo, Option<String>), String> {
    // The SQL text checks names, types and index columns; its errors are the ones users know.
    let (_, warning) = super::schema::create_table_sql(table, columns, index)?;
    let column_desc = columns
        .iter()
        .map(|c| ColumnDesc {
            name: c.name.clone(),
            data_type: Some(data_type(c.type_).to_proto()),
            not_null: Some(!c.nullable),
            ..Default::default()
        })
        .collect();
    let seconds = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let key = if index.key.is_empty() {
        let default = columns
            .iter()
            .find(|c| !matches!(c.type_, ColumnType::Float | ColumnType::Double))
            .ok_or_else(|| "every column is a float or double; OpenMLDB needs one it can index".to_string())?;
        ColumnKey {
            index_name: Some(format!("INDEX_0_{seconds}")),
            col_name: vec![default.name.clone()],
            ttl: Some(TtlSt { ttl_type: Some(TtlType::KAbsoluteTime as i32), abs_ttl: Some(0), lat_ttl: Some(0) }),
            ..Default::default()
        }
    } else {
        ColumnKey {
            index_name: Some(format!("INDEX_0_{seconds}")),
            col_name: index.key.clone(),
            ts_name: index.ts.clone(),
            ttl: Some(ttl(index)?),
            ..Default::default()
        }
    };
    check_name(database)?;
    let info = openmldb_client::proto::TableInfo {
        name: Some(table.to_string()),
        db: Some(database.to_string()),
        partition_num: index.partition_num,
        replica_num: index.replica_num,
        column_desc,
        column_key: vec![key],
        ..Default::default()
    };
    Ok((info, warning))
}

/// `openmldb.index.ttl.type` and `openmldb.index.ttl` as OpenMLDB's
/// `TTLSt`: absolute TTLs in minutes (`30d`, `12h`, `100m`, `0`), latest
/// as a count, both as `(30d, 100)`. The type defaults as in SQL: absolute,
/// or latest for a bare count.
pub fn ttl(index: &IndexConfig) -> Result<TtlSt, String> {
    let text = index.ttl.as_deref().unwrap_or("0").trim();
    let minutes = |part: &str| -> Result<u64, String> {
        let part = part.trim();
        let (number, unit) = part.split_at(part.find(|c: char| !c.is_ascii_digit()).unwrap_or(part.len()));
        let number: u64 =
            number.parse().map_err(|_| format!("openmldb.index.ttl: \"{part}\" is not e.g. 30d, 12h or 100m"))?;
        match unit {
            "m" => Ok(number),
            "h" => Ok(number * 60),
            "d" => Ok(number * 1440),
            "" if number == 0 => Ok(0),
            _ => Err(format!("openmldb.index.ttl: \"{part}\" needs a unit: m, h or d")),
        }
    };
    let count = |part: &str| -> Result<u64, String> {
        part.trim().parse().map_err(|_| format!("openmldb.index.ttl: \"{}\" is not a count of rows", part.trim()))
    };
    let kind = index.ttl_type.as_deref();
    let (ttl_type, abs, lat) = if let Some(pair) = text.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        let (a, l) = pair.split_once(',').ok_or_else(|| format!("openmldb.index.ttl: \"{text}\" is not (ABS, LAT)"))?;
        let ttl_type = match kind {
            Some("absorlat") => TtlType::KAbsOrLat,
            None | Some("absandlat") => TtlType::KAbsAndLat,
            Some(other) => {
                return Err(format!("openmldb.index.ttl: a pair needs ttl.type absandlat or absorlat, not {other}"));
            }
        };
        (ttl_type, minutes(a)?, count(l)?)
    } else {
        match kind {
            Some("latest") => (TtlType::KLatestTime, 0, count(text)?),
            Some("absolute") => (TtlType::KAbsoluteTime, minutes(text)?, 0),
            None if text.chars().all(|c| c.is_ascii_digit()) && text != "0" => (TtlType::KLatestTime, 0, count(text)?),
            None => (TtlType::KAbsoluteTime, minutes(text)?, 0),
            Some(other) => return Err(format!("openmldb.index.ttl: ttl.type {other} needs a pair (ABS, LAT)")),
        }
    };
    Ok(TtlSt { ttl_type: Some(ttl_type as i32), abs_ttl: Some(abs), lat_ttl: Some(lat) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(ttl: Option<&str>, ttl_type: Option<&str>) -> IndexConfig {
        IndexConfig {
            key: vec!["k".into()],
            ttl: ttl.map(str::to_string),
            ttl_type: ttl_type.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn ttls_read_as_sql_reads_them() {
        let t = |text: Option<&str>, kind: Option<&str>| {
            super::ttl(&index(text, kind)).map(|t| (t.ttl_type.unwrap(), t.abs_ttl.unwrap(), t.lat_ttl.unwrap()))
        };
        let abs = TtlType::KAbsoluteTime as i32;
        assert_eq!(t(Some("30d"), None).unwrap(), (abs, 30 * 1440, 0));
        assert_eq!(t(Some("12h"), Some("absolute")).unwrap(), (abs, 720, 0));
        assert_eq!(t(None, None).unwrap(), (abs, 0, 0));
        assert_eq!(t(Some("100"), Some("latest")).unwrap(), (TtlType::KLatestTime as i32, 0, 100));
        assert_eq!(t(Some("(30d, 100)"), Some("absorlat")).unwrap(), (TtlType::KAbsOrLat as i32, 43200, 100));
        assert!(t(Some("30x"), None).unwrap_err().contains("30x"));
        assert!(t(Some("(1d, 2)"), Some("latest")).is_err());
    }

    #[test]
    fn auto_create_without_a_key_adds_the_default_index_and_warns() {
        let columns = [
            Column { name: "m".into(), type_: ColumnType::Double, nullable: true },
            Column { name: "name".into(), type_: ColumnType::String, nullable: false },
        ];
        let (info, warning) = create_table_info("d", "t", &columns, &IndexConfig::default()).unwrap();
        assert_eq!(info.column_key[0].col_name, vec!["name".to_string()]);
        assert_eq!(info.column_desc[1].not_null, Some(true));
        assert!(warning.unwrap().contains("never expires"));
    }
}
