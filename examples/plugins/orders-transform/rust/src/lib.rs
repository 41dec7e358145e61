//! orders-rust: the orders example transform, in Rust.
//!
//! - masks the `card` column: every character but the last `keep` becomes '*';
//! - derives `total` = `quantity` * `unit_price` (NULL when either is NULL);
//! - drops orders whose `quantity` is zero or negative.
//!
//! Config: `keep` (default 4), the number of card characters left visible.
//! Build with `rmq-openmldb plugin build`; the same transform exists in
//! Python, JavaScript and C next to this folder, and CI checks all four
//! write identical rows.

wit_bindgen::generate!({ path: "wit", world: "transform-plugin", additional_derives: [PartialEq] });

use exports::rmq_openmldb::plugin::transform::{Guest, TransformInfo, Transformed};
use rmq_openmldb::plugin::types::{Cell, Column, ColumnType, ErrorKind, Needs, PluginError, PluginInfo, Row, RowBatch};
use std::cell::Cell as Slot;

/// Column positions in the input rows, and the config, set by `init`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Layout {
    keep: usize,
    total: usize,
    card: usize,
    quantity: usize,
    unit_price: usize,
}

thread_local! {
    static LAYOUT: Slot<Option<Layout>> = const { Slot::new(None) };
}

impl Layout {
    fn negotiate(config: &[(String, String)], output: &[Column]) -> Result<Layout, PluginError> {
        let keep = match config.iter().find(|(key, _)| key == "keep") {
            None => 4,
            Some((_, raw)) => raw.parse::<usize>().ok().filter(|_| raw.bytes().all(|b| b.is_ascii_digit())).ok_or_else(
                || error(ErrorKind::InvalidConfig, format!("config key \"keep\": \"{raw}\" is not a non-negative integer")),
            )?,
        };
        let find = |name: &str, type_: ColumnType, type_name: &str| -> Result<usize, PluginError> {
            let index = output.iter().position(|c| c.name == name).ok_or_else(|| {
                error(ErrorKind::SchemaMismatch, format!("the table has no column \"{name}\" ({type_name})"))
            })?;
            if output[index].type_ != type_ {
                return Err(error(ErrorKind::SchemaMismatch, format!("column \"{name}\" must be {type_name}")));
            }
            Ok(index)
        };
        let total = find("total", ColumnType::Double, "double")?;
        // Input columns are the output's without `total`: indexes after it shift by one.
        let shift = |i: usize| if i < total { i } else { i - 1 };
        Ok(Layout {
            keep,
            total,
            card: shift(find("card", ColumnType::String, "string")?),
            quantity: shift(find("quantity", ColumnType::Int, "int")?),
            unit_price: shift(find("unit_price", ColumnType::Double, "double")?),
        })
    }

    /// The row to write, or None when the order is dropped.
    fn apply(&self, mut row: Row) -> Option<Row> {
        let quantity = match row.cells[self.quantity] {
            Cell::Int(q) if q <= 0 => return None,
            Cell::Int(q) => Some(q),
            _ => None,
        };
        if let Cell::String(card) = &mut row.cells[self.card] {
            *card = mask(card, self.keep);
        }
        let total = match (quantity, &row.cells[self.unit_price]) {
            (Some(q), Cell::Double(price)) => Cell::Double(f64::from(q) * price),
            _ => Cell::Null,
        };
        row.cells.insert(self.total, total);
        Some(row)
    }
}

/// Every character but the last `keep` becomes '*'.
fn mask(text: &str, keep: usize) -> String {
    let count = text.chars().count();
    let hidden = count.saturating_sub(keep);
    "*".repeat(hidden) + &text.chars().skip(hidden).collect::<String>()
}

fn error(kind: ErrorKind, message: String) -> PluginError {
    PluginError { kind, message }
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Plugin;

impl Guest for Plugin {
    fn init(config: Vec<(String, String)>, output: Vec<Column>) -> Result<TransformInfo, PluginError> {
        let layout = Layout::negotiate(&config, &output)?;
        LAYOUT.with(|slot| slot.set(Some(layout)));
        let mut input = output;
        input.remove(layout.total);
        let info = PluginInfo { name: "orders-rust".into(), version: env!("CARGO_PKG_VERSION").into(), max_batch: None, needs: Needs::empty() };
        Ok(TransformInfo { info, input })
    }

    fn process(batch: RowBatch) -> Result<Transformed, PluginError> {
        let layout = LAYOUT
            .with(Slot::get)
            .ok_or_else(|| error(ErrorKind::Fatal, "process called before init".into()))?;
        let rows = batch.rows.into_iter().filter_map(|row| layout.apply(row)).collect();
        Ok(Transformed { rows, failures: Vec::new() })
    }
}

// Exported only in the component; native builds (cargo test) skip it.
#[cfg(target_arch = "wasm32")]
export!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, type_: ColumnType) -> Column {
        Column { name: name.into(), type_, nullable: true }
    }

    #[test]
    fn masks_derives_and_drops() {
        let output = [
            column("card", ColumnType::String),
            column("total", ColumnType::Double),
            column("quantity", ColumnType::Int),
            column("unit_price", ColumnType::Double),
        ];
        let layout = Layout::negotiate(&[("keep".into(), "2".into())], &output).unwrap();
        let row = |quantity: Cell| Row { source_index: 0, cells: vec![Cell::String("çard-12".into()), quantity, Cell::Double(1.5)] };
        let kept = layout.apply(row(Cell::Int(3))).unwrap();
        assert_eq!(kept.cells, vec![Cell::String("*****12".into()), Cell::Double(4.5), Cell::Int(3), Cell::Double(1.5)]);
        assert_eq!(layout.apply(row(Cell::Int(0))), None);
        assert_eq!(layout.apply(row(Cell::Null)).unwrap().cells[1], Cell::Null);
    }

    #[test]
    fn a_bad_keep_or_a_missing_column_is_named() {
        let output = [column("card", ColumnType::String)];
        let err = Layout::negotiate(&[("keep".into(), "-1".into())], &output).unwrap_err();
        assert!(err.message.contains("\"keep\": \"-1\""), "{}", err.message);
        let err = Layout::negotiate(&[], &output).unwrap_err();
        assert!(err.message.contains("no column \"total\""), "{}", err.message);
    }
}
