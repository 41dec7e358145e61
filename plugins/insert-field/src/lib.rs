//! Built-in transform `insert-field`: fill table columns from where a row
//! came from, or with a constant (like Kafka Connect's InsertField).
//!
//! Config (each names a column of the output; set any of them):
//! `topic.field`, `queue.id.field`, `queue.offset.field`,
//! `born.timestamp.field`, `store.timestamp.field`, and `static.field` with
//! `static.value`. Values are converted to the column's type (a born
//! timestamp can fill a timestamp, bigint, date or string column).

use rmq_openmldb_sdk::coerce::{CoerceOptions, Logical, json_to_cell};
use rmq_openmldb_sdk::prelude::*;
use rmq_openmldb_sdk::row::column_position;
use serde_json::Value;

#[derive(Debug, Clone)]
enum Slot {
    /// The next cell of the input row.
    Input,
    Topic,
    QueueId,
    QueueOffset,
    BornTimestamp,
    StoreTimestamp,
    Static(Cell),
}

pub struct InsertField {
    slots: Vec<Slot>,
    output: Vec<Column>,
    opts: CoerceOptions,
}

impl InsertField {
    pub fn new(config: &PluginConfig, output: &[Column]) -> Result<(Self, Vec<Column>), PluginError> {
        let mut slots = vec![Slot::Input; output.len()];
        let mut any = false;
        for (key, slot) in [
            ("topic.field", Slot::Topic),
            ("queue.id.field", Slot::QueueId),
            ("queue.offset.field", Slot::QueueOffset),
            ("born.timestamp.field", Slot::BornTimestamp),
            ("store.timestamp.field", Slot::StoreTimestamp),
        ] {
            if let Some(name) = config.get(key) {
                place(&mut slots, column_position(output, name.trim(), key)?, slot, key)?;
                any = true;
            }
        }
        if let Some(name) = config.get("static.field") {
            let position = column_position(output, name.trim(), "static.field")?;
            let raw = config.require("static.value")?;
            let cell = json_to_cell(
                &Value::String(raw.to_string()),
                &output[position],
                Logical::None,
                &CoerceOptions::default(),
            )
            .map_err(|e| PluginError::invalid_config(format!("config key \"static.value\": {}", e.message)))?;
            place(&mut slots, position, Slot::Static(cell), "static.field")?;
            any = true;
        }
        if !any {
            return Err(PluginError::invalid_config(
                "set at least one of topic.field, queue.id.field, queue.offset.field, born.timestamp.field, store.timestamp.field, static.field",
            ));
        }
        let input =
            output.iter().zip(&slots).filter(|(_, slot)| matches!(slot, Slot::Input)).map(|(c, _)| c.clone()).collect();
        Ok((InsertField { slots, output: output.to_vec(), opts: CoerceOptions::default() }, input))
    }
}

fn place(slots: &mut [Slot], position: usize, slot: Slot, key: &str) -> Result<(), PluginError> {
    if !matches!(slots[position], Slot::Input) {
        return Err(PluginError::invalid_config(format!(
            "config key \"{key}\": that column is already filled by another key"
        )));
    }
    slots[position] = slot;
    Ok(())
}

impl Transform for InsertField {
    fn init(config: PluginConfig, output: Vec<Column>) -> Result<(Self, TransformInfo), PluginError> {
        let (insert, input) = InsertField::new(&config, &output)?;
        let mut info = plugin_info("insert-field", env!("CARGO_PKG_VERSION"));
        info.needs = Needs::ORIGIN;
        Ok((insert, TransformInfo { info, input }))
    }

    fn process(&mut self, batch: RowBatch) -> Result<Transformed, PluginError> {
        let mut out = Transformed { rows: Vec::with_capacity(batch.rows.len()), failures: Vec::new() };
        'rows: for (index, row) in batch.rows.into_iter().enumerate() {
            let origin = batch.origins.get(row.source_index as usize);
            let mut input = row.cells.into_iter();
            let mut cells = Vec::with_capacity(self.slots.len());
            for (slot, column) in self.slots.iter().zip(&self.output) {
                let value = match (slot, origin) {
                    (Slot::Input, _) => {
                        cells.push(input.next().unwrap_or(Cell::Null));
                        continue;
                    }
                    (Slot::Static(cell), _) => {
                        cells.push(cell.clone());
                        continue;
                    }
                    (_, None) => {
                        return Err(PluginError::fatal(
                            "the host sent no origin for a row; insert-field needs origins",
                        ));
                    }
                    (Slot::Topic, Some(o)) => Value::String(o.topic.clone()),
                    (Slot::QueueId, Some(o)) => Value::from(o.queue_id),
                    (Slot::QueueOffset, Some(o)) => Value::from(o.queue_offset),
                    (Slot::BornTimestamp, Some(o)) => Value::from(o.born_timestamp),
                    (Slot::StoreTimestamp, Some(o)) => Value::from(o.store_timestamp),
                };
                let logical = match slot {
                    Slot::BornTimestamp | Slot::StoreTimestamp => Logical::Timestamp,
                    _ => Logical::None,
                };
                match json_to_cell(&value, column, logical, &self.opts) {
                    Ok(cell) => cells.push(cell),
                    Err(e) => {
                        out.failures.push(e.into_failure(index as u32));
                        continue 'rows;
                    }
                }
            }
            out.rows.push(Row { source_index: row.source_index, cells });
        }
        Ok(out)
    }
}

rmq_openmldb_sdk::export_transform!(InsertField);

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, type_: ColumnType) -> Column {
        Column { name: name.into(), type_, nullable: true }
    }

    #[test]
    fn origin_fields_and_constants_fill_their_columns() {
        let output = vec![
            col("id", ColumnType::Bigint),
            col("src_topic", ColumnType::String),
            col("src_offset", ColumnType::Bigint),
            col("ingested", ColumnType::Timestamp),
            col("region", ColumnType::String),
        ];
        let config = PluginConfig::new(
            [
                ("topic.field", "src_topic"),
                ("queue.offset.field", "src_offset"),
                ("born.timestamp.field", "ingested"),
                ("static.field", "region"),
                ("static.value", "eu"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        );
        let (mut insert, info) = InsertField::init(config, output).unwrap();
        assert_eq!(info.input.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), vec!["id"]);
        assert!(info.info.needs.contains(Needs::ORIGIN));
        let origins = vec![Origin {
            topic: "t".into(),
            queue_id: 3,
            queue_offset: 77,
            born_timestamp: 1000,
            store_timestamp: 2000,
        }];
        let out = insert
            .process(RowBatch { rows: vec![Row { source_index: 0, cells: vec![Cell::Bigint(9)] }], origins })
            .unwrap();
        assert_eq!(
            out.rows[0].cells,
            vec![
                Cell::Bigint(9),
                Cell::String("t".into()),
                Cell::Bigint(77),
                Cell::Timestamp(1000),
                Cell::String("eu".into())
            ]
        );
    }

    #[test]
    fn bad_config_is_named() {
        let output = vec![col("n", ColumnType::Int)];
        let config = PluginConfig::new(vec![("static.field".into(), "n".into()), ("static.value".into(), "x".into())]);
        let err = InsertField::init(config, output.clone()).err().unwrap();
        assert!(err.message.contains("static.value") && err.message.contains("\"x\""), "{}", err.message);
        assert!(InsertField::init(PluginConfig::default(), output).is_err());
    }
}
