"""@NAME@: an rmq-openmldb transform. It upper-cases the string columns
named in its `fields` config key and passes every other column through.
Replace `process_row` with your own logic; `rmq-openmldb plugin build`
makes the component, `rmq-openmldb plugin test` runs it on sample data.
"""

import wit_world
from wit_world.exports import transform
from wit_world.imports.types import Cell_String, ColumnType, ErrorKind, Needs, PluginError, PluginInfo
from componentize_py_types import Err

# Indexes of the columns to upper-case, set by `init`.
_fields = []


def process_row(row, fields):
    """The transform itself: change `row.cells` in place, in column order."""
    for index in fields:
        cell = row.cells[index]
        if isinstance(cell, Cell_String):
            row.cells[index] = Cell_String(cell.value.upper())
    return row


class Transform(wit_world.exports.Transform):
    def init(self, config, output):
        """`output` is the schema this transform must produce; the answer is
        the schema it needs as input (here the same)."""
        global _fields
        names = [n.strip() for n in dict(config).get("fields", "").split(",") if n.strip()]
        indexes = []
        for name in names:
            found = [i for i, column in enumerate(output) if column.name == name]
            if not found:
                raise Err(PluginError(ErrorKind.INVALID_CONFIG, f"config key \"fields\": the table has no column \"{name}\""))
            if output[found[0]].type != ColumnType.STRING:
                raise Err(PluginError(ErrorKind.INVALID_CONFIG, f"config key \"fields\": column \"{name}\" is not a string column"))
            indexes.append(found[0])
        _fields = indexes
        info = PluginInfo(name="@NAME@", version="0.1.0", max_batch=None, needs=Needs(0))
        return transform.TransformInfo(info=info, input=output)

    def process(self, batch):
        rows = [process_row(row, _fields) for row in batch.rows]
        return transform.Transformed(rows=rows, failures=[])
