"""@NAME@: an rmq-openmldb converter. It reads each message body as a plain
JSON object and maps its fields to the table's columns by name (missing or
null fields become NULL). Replace `convert_body` with your own format;
`rmq-openmldb plugin build` makes the component, `rmq-openmldb plugin test`
runs it on sample data.
"""

import json

import wit_world
from wit_world.exports import converter
from wit_world.imports.types import (
    Cell_Bigint, Cell_Bool, Cell_Double, Cell_Float, Cell_Int, Cell_Null, Cell_Smallint, Cell_String,
    Cell_Timestamp, ColumnType, ErrorKind, FailureKind, Needs, PluginError, PluginInfo, RecordFailure, Row,
)
from componentize_py_types import Err

# The table's columns, set by `init`.
_columns = []

_INTEGERS = {
    ColumnType.SMALLINT: (Cell_Smallint, -(1 << 15), (1 << 15) - 1),
    ColumnType.INT: (Cell_Int, -(1 << 31), (1 << 31) - 1),
    ColumnType.BIGINT: (Cell_Bigint, -(1 << 63), (1 << 63) - 1),
    ColumnType.TIMESTAMP: (Cell_Timestamp, 0, (1 << 63) - 1),
}


class Rejected(Exception):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


def convert_value(column, value):
    """One JSON value into the cell of `column`, or Rejected naming field and value."""
    if value is None:
        if not column.nullable:
            raise Rejected(FailureKind.MISSING_FIELD, f"field \"{column.name}\" is missing")
        return Cell_Null()
    mismatch = Rejected(FailureKind.TYPE_MISMATCH,
                        f"field \"{column.name}\": value {json.dumps(value)} does not fit a {column.type.name.lower()} column")
    if column.type == ColumnType.BOOL:
        if isinstance(value, bool):
            return Cell_Bool(value)
        raise mismatch
    if column.type in _INTEGERS:
        cell, low, high = _INTEGERS[column.type]
        if isinstance(value, bool) or not isinstance(value, int):
            raise mismatch
        if not low <= value <= high:
            raise Rejected(FailureKind.OUT_OF_RANGE, f"field \"{column.name}\": {value} is out of range")
        return cell(value)
    if column.type in (ColumnType.FLOAT, ColumnType.DOUBLE):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise mismatch
        return (Cell_Float if column.type == ColumnType.FLOAT else Cell_Double)(float(value))
    if column.type == ColumnType.STRING and isinstance(value, str):
        return Cell_String(value)
    raise mismatch


def convert_body(body, columns):
    try:
        value = json.loads(body)
    except ValueError as error:
        raise Rejected(FailureKind.DECODE, f"the body is not JSON: {error}")
    if not isinstance(value, dict):
        raise Rejected(FailureKind.DECODE, "the body is not a JSON object")
    return [convert_value(column, value.get(column.name)) for column in columns]


class Converter(wit_world.exports.Converter):
    def init(self, config, target):
        global _columns
        _columns = target.columns
        return PluginInfo(name="@NAME@", version="0.1.0", max_batch=None, needs=Needs(0))

    def convert(self, batch):
        rows, failures = [], []
        for index, message in enumerate(batch):
            try:
                rows.append(Row(source_index=index, cells=convert_body(message.body, _columns)))
            except Rejected as rejected:
                failures.append(RecordFailure(index=index, kind=rejected.kind, message=str(rejected)))
        return converter.Converted(rows=rows, failures=failures)

    def infer_schema(self, config, sample):
        raise Err(PluginError(ErrorKind.SCHEMA_MISMATCH, "plain JSON carries no schema: create the table first"))
