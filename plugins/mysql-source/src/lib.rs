//! The built-in MySQL/MariaDB source: RocketMQ Connect's JDBC source keys
//! and modes, reading through the SQL connection the connector grants.
//!
//! Each table of `table.whitelist` is read in `mode` (`bulk`,
//! `incrementing`, `timestamp`, `timestamp+incrementing`) at most every
//! `poll.interval.ms`, `batch.max.rows` rows per query (a full batch is
//! followed by the next at once). Every row becomes a JsonConverter
//! envelope (`{"schema":…,"payload":…}`, schema named after the table) on
//! the topic `connect.topicname`, or `topic.prefix` + table name. NULL
//! stays null for every type (RocketMQ Connect's source turns NULL numbers
//! into 0). Columns OpenMLDB cannot hold are refused at start.

mod reader;
mod table;

use reader::{Mode, ReaderSpec, TableReader};
use rmq_openmldb_sdk::prelude::*;
use rmq_openmldb_sdk::time::Zone;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// RocketMQ Connect polls every 5 s; tables read by a cursor are polled
/// faster by default, for the second-level latency the OpenMLDB guide
/// promises (an indexed `WHERE id > ?` every half second is cheap).
/// Bulk mode re-reads whole tables and keeps Connect's 5 s.
const DEFAULT_POLL_MS: u64 = 500;
const DEFAULT_BULK_POLL_MS: u64 = 5000;
/// RocketMQ Connect's `batch.max.rows` default.
const DEFAULT_BATCH_ROWS: u32 = 100;

struct Scheduled {
    reader: TableReader,
    next_due: Instant,
}

pub struct MysqlSource {
    tables: Vec<Scheduled>,
    /// Which table the next poll looks at first (round robin).
    next_table: usize,
    poll_interval: Duration,
    pending: VecDeque<SourceRecord>,
}

/// `db` of `jdbc:mysql://host:port/db?...`, if any.
fn url_database(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let path = rest.split_once('/')?.1;
    let db = path.split(['?', '/']).next()?;
    (!db.is_empty()).then(|| db.to_string())
}

impl MysqlSource {
    fn describe_table(database: &str, table: &str) -> Result<Vec<table::SourceColumn>, PluginError> {
        let partition = format!("{database}.{table}");
        let result = reader::query(
            &partition,
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, NUMERIC_PRECISION, NUMERIC_SCALE, EXTRA \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            &[
                rmq_openmldb_sdk::sql::SqlValue::Text(database.into()),
                rmq_openmldb_sdk::sql::SqlValue::Text(table.into()),
            ],
        )?;
        if result.rows.is_empty() {
            return Err(PluginError::invalid_config(format!(
                "config key \"table.whitelist\": table {partition} does not exist, or the connection's user cannot see it"
            )));
        }
        use rmq_openmldb_sdk::sql::SqlValue as V;
        let text = |v: &V| match v {
            V::Text(s) => s.clone(),
            V::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            _ => String::new(),
        };
        let number = |v: &V| match v {
            V::Int(n) => Some(*n as u64),
            V::Uint(n) => Some(*n),
            V::Decimal(s) | V::Text(s) => s.parse().ok(),
            _ => None,
        };
        result
            .rows
            .iter()
            .map(|r| {
                table::column_from_schema(
                    &partition,
                    &text(&r[0]),
                    &text(&r[1]),
                    &text(&r[2]),
                    text(&r[3]).eq_ignore_ascii_case("YES"),
                    number(&r[4]),
                    number(&r[5]),
                    &text(&r[6]),
                )
            })
            .collect()
    }
}

impl Source for MysqlSource {
    fn init(config: PluginConfig, positions: Vec<SourcePosition>) -> Result<(Self, PluginInfo), PluginError> {
        if config.get("query").is_some_and(|q| !q.trim().is_empty()) {
            return Err(PluginError::invalid_config(
                "config key \"query\": custom query mode is not supported; list tables in \"table.whitelist\"",
            ));
        }
        let mode_text = config.require("mode")?;
        let mode = Mode::parse(mode_text).ok_or_else(|| {
            PluginError::invalid_config(format!(
                "config key \"mode\": invalid value \"{mode_text}\": expected bulk, incrementing, timestamp or timestamp+incrementing"
            ))
        })?;
        // A task's share of the tables (`tables`), or all of them.
        let tables = match config.list("tables") {
            t if !t.is_empty() => t,
            _ => config.list("table.whitelist"),
        };
        if tables.is_empty() {
            return Err(PluginError::invalid_config(
                "missing required config key \"table.whitelist\" (db.table,db.table2)",
            ));
        }
        let zone_text = config.get("db.timezone").unwrap_or("UTC");
        let zone = Zone::parse(zone_text)
            .map_err(|e| PluginError::invalid_config(format!("config key \"db.timezone\": {e}")))?;
        let default_poll = if mode == Mode::Bulk { DEFAULT_BULK_POLL_MS } else { DEFAULT_POLL_MS };
        let poll_interval = Duration::from_millis(config.parse_or("poll.interval.ms", default_poll)?);
        let batch_rows: u32 = config.parse_or("batch.max.rows", DEFAULT_BATCH_ROWS)?;
        if batch_rows == 0 {
            return Err(PluginError::invalid_config(
                "config key \"batch.max.rows\": invalid value \"0\": must be at least 1",
            ));
        }
        let delay_ms: i64 = config.parse_or("timestamp.delay.interval.ms", 0)?;
        let validate_non_null = config.bool_or("validate.non.null", true)?;
        let initial_timestamp_ms = match config.parse_or::<i64>("timestamp.initial", i64::MIN)? {
            i64::MIN => None,
            // -1: from the database's current time on (RocketMQ Connect's meaning).
            -1 => Some(epoch_ms_now()),
            ms => Some(ms),
        };
        let default_database = config.get("connection.url").and_then(url_database);
        let fixed_topic = config.get("connect.topicname").map(str::trim).filter(|t| !t.is_empty());
        let prefix = config.get("topic.prefix").unwrap_or("");

        let mut scheduled = Vec::new();
        let now = Instant::now();
        for entry in &tables {
            let (database, table_name) = match entry.split_once('.') {
                Some((db, t)) => (db.to_string(), t.to_string()),
                None => (
                    default_database.clone().ok_or_else(|| {
                        PluginError::invalid_config(format!(
                            "config key \"table.whitelist\": table \"{entry}\" names no database and connection.url has none; write db.table"
                        ))
                    })?,
                    entry.clone(),
                ),
            };
            let columns = Self::describe_table(&database, &table_name)?;
            let partition = format!("{database}.{table_name}");
            let find = |key: &str, name: &str| {
                columns.iter().position(|c| c.name.eq_ignore_ascii_case(name)).ok_or_else(|| {
                    PluginError::invalid_config(format!(
                        "config key \"{key}\": table {partition} has no column \"{name}\""
                    ))
                })
            };
            let incrementing = if mode.uses_incrementing() {
                let named = config.get("incrementing.column.name").map(str::trim).unwrap_or("");
                Some(if named.is_empty() {
                    columns.iter().position(|c| c.auto_increment).ok_or_else(|| {
                        PluginError::invalid_config(format!(
                            "config key \"incrementing.column.name\" is empty and table {partition} has no AUTO_INCREMENT column to use"
                        ))
                    })?
                } else {
                    find("incrementing.column.name", named)?
                })
            } else {
                None
            };
            let timestamp_columns = if mode.uses_timestamp() {
                let names = config.list("timestamp.column.name");
                if names.is_empty() {
                    return Err(PluginError::invalid_config(format!(
                        "missing required config key \"timestamp.column.name\" (mode {mode_text})"
                    )));
                }
                let mut found = Vec::new();
                for name in &names {
                    let index = find("timestamp.column.name", name)?;
                    if !matches!(columns[index].kind, table::Kind::Timestamp { .. } | table::Kind::Date) {
                        return Err(PluginError::invalid_config(format!(
                            "config key \"timestamp.column.name\": column \"{name}\" of {partition} is {}, not a DATETIME, TIMESTAMP or DATE",
                            columns[index].data_type
                        )));
                    }
                    found.push(index);
                }
                found
            } else {
                Vec::new()
            };
            if validate_non_null {
                for index in incrementing.iter().chain(&timestamp_columns) {
                    if columns[*index].nullable {
                        return Err(PluginError::invalid_config(format!(
                            "table {partition}: column \"{}\" is nullable, so rows with NULL there would never be read; \
                             make it NOT NULL, or set validate.non.null=false to accept that",
                            columns[*index].name
                        )));
                    }
                }
            }
            if let Some(index) = incrementing
                && !matches!(
                    columns[index].kind,
                    table::Kind::Int8 | table::Kind::Int16 | table::Kind::Int32 | table::Kind::Int64
                )
            {
                return Err(PluginError::invalid_config(format!(
                    "config key \"incrementing.column.name\": column \"{}\" of {partition} is {}, not an integer",
                    columns[index].name, columns[index].data_type
                )));
            }
            let topic = fixed_topic.map(str::to_string).unwrap_or_else(|| format!("{prefix}{table_name}"));
            let stored = positions.iter().rev().find(|p| p.partition == partition).map(|p| p.position.as_str());
            let spec = ReaderSpec {
                database,
                table: table_name,
                topic,
                columns,
                mode,
                incrementing,
                timestamp_columns,
                initial_timestamp_ms,
                delay_ms,
                batch_rows,
                zone,
            };
            scheduled.push(Scheduled { reader: TableReader::new(spec, stored)?, next_due: now });
        }
        let info = PluginInfo { max_batch: Some(batch_rows), ..plugin_info("mysql-source", env!("CARGO_PKG_VERSION")) };
        Ok((MysqlSource { tables: scheduled, next_table: 0, poll_interval, pending: VecDeque::new() }, info))
    }

    fn poll(&mut self, max: u32) -> Result<Vec<SourceRecord>, PluginError> {
        let max = max.max(1) as usize;
        if self.pending.len() < max {
            self.read_due_tables(max)?;
        }
        let take = max.min(self.pending.len());
        Ok(self.pending.drain(..take).collect())
    }
}

impl MysqlSource {
    /// Query the tables that are due, round robin, until `max` records
    /// are in hand or no table is due. A table whose query filled a batch
    /// is queried again at once.
    fn read_due_tables(&mut self, max: usize) -> Result<(), PluginError> {
        let count = self.tables.len();
        for step in 0..count {
            let index = (self.next_table + step) % count;
            let table = &mut self.tables[index];
            while self.pending.len() < max && table.next_due <= Instant::now() {
                let now = Instant::now();
                let (reads, full) = table.reader.read()?;
                table.next_due = if full { now } else { now + self.poll_interval };
                let reader = &table.reader;
                self.pending.extend(reads.into_iter().map(|read| SourceRecord {
                    topic: reader.topic.clone(),
                    keys: None,
                    tags: None,
                    properties: Vec::new(),
                    body: read.body.into_bytes(),
                    partition: reader.partition.clone(),
                    position: read.position,
                }));
            }
            if self.pending.len() >= max {
                self.next_table = (index + 1) % count;
                return Ok(());
            }
        }
        Ok(())
    }
}

fn epoch_ms_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

rmq_openmldb_sdk::export_source!(MysqlSource);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_comes_from_the_url_when_the_table_has_none() {
        assert_eq!(url_database("jdbc:mysql://127.0.0.1:3306"), None);
        assert_eq!(url_database("jdbc:mysql://127.0.0.1:3306/shop?useSSL=false"), Some("shop".into()));
        assert_eq!(url_database("jdbc:mysql://h/"), None);
    }
}
