"""orders-python: the orders example transform, in Python.

- masks the `card` column: every character but the last `keep` becomes '*';
- derives `total` = `quantity` * `unit_price` (NULL when either is NULL);
- drops orders whose `quantity` is zero or negative.

Config: `keep` (default 4), the number of card characters left visible.
Build with `rmq-openmldb plugin build`; the same transform exists in Rust,
JavaScript and C next to this folder, and CI checks all four write
identical rows.
"""

import wit_world
from wit_world.exports import transform
from wit_world.imports.types import (
    Cell_Double, Cell_Int, Cell_Null, Cell_String, ColumnType, ErrorKind, Needs, PluginError, PluginInfo,
)
from componentize_py_types import Err

# Column positions, found by `init` (the schema is negotiated once per instance).
_layout = None


class Layout:
    def __init__(self, output, keep):
        def find(name, column_type):
            for index, column in enumerate(output):
                if column.name == name:
                    if column.type != column_type:
                        raise _error(ErrorKind.SCHEMA_MISMATCH,
                                     f"column \"{name}\" must be {column_type.name.lower()}, the table has {column.type.name.lower()}")
                    return index
            raise _error(ErrorKind.SCHEMA_MISMATCH, f"the table has no column \"{name}\" ({column_type.name.lower()})")

        self.keep = keep
        self.total = find("total", ColumnType.DOUBLE)
        # Input columns are the output's without `total`: indexes after it shift by one.
        shift = lambda i: i if i < self.total else i - 1
        self.card = shift(find("card", ColumnType.STRING))
        self.quantity = shift(find("quantity", ColumnType.INT))
        self.unit_price = shift(find("unit_price", ColumnType.DOUBLE))
        self.input = [c for i, c in enumerate(output) if i != self.total]


def _error(kind, message):
    return Err(PluginError(kind=kind, message=message))


def mask(text, keep):
    hidden = max(len(text) - keep, 0)
    return "*" * hidden + text[hidden:]


class Transform(wit_world.exports.Transform):
    def init(self, config, output):
        global _layout
        settings = dict(config)
        raw = settings.get("keep", "4")
        if not (raw.isascii() and raw.isdigit()):
            raise _error(ErrorKind.INVALID_CONFIG, f"config key \"keep\": \"{raw}\" is not a non-negative integer")
        _layout = Layout(output, int(raw))
        info = PluginInfo(name="orders-python", version="0.1.0", max_batch=None, needs=Needs(0))
        return transform.TransformInfo(info=info, input=_layout.input)

    def process(self, batch):
        layout = _layout
        rows = []
        for row in batch.rows:
            cells = row.cells
            quantity, price = cells[layout.quantity], cells[layout.unit_price]
            if isinstance(quantity, Cell_Int) and quantity.value <= 0:
                continue
            card = cells[layout.card]
            if isinstance(card, Cell_String):
                cells[layout.card] = Cell_String(mask(card.value, layout.keep))
            if isinstance(quantity, Cell_Int) and isinstance(price, Cell_Double):
                total = Cell_Double(quantity.value * price.value)
            else:
                total = Cell_Null()
            cells.insert(layout.total, total)
            rows.append(row)
        return transform.Transformed(rows=rows, failures=[])
