"""@NAME@: an rmq-openmldb sink. It writes each batch into the table the
connector names, in the database its `connection.url` grants, with one
INSERT per row; the host holds one transaction around the batch. (The
built-in `mysql-sink` does the same with multi-row INSERTs, upserts and
refused-row isolation; start from this to write somewhere else or
differently.) `rmq-openmldb plugin build` makes the component and
`rmq-openmldb plugin test` shows the statements it sends.
"""

import datetime


from wit_world import exports
from wit_world.imports import sql
from wit_world.imports.types import (
    Cell_Bigint, Cell_Bool, Cell_Date, Cell_Double, Cell_Float, Cell_Int, Cell_Null, Cell_Smallint, Cell_String,
    Cell_Timestamp, ErrorKind, FailureKind, Needs, PluginError, PluginInfo, RecordFailure, Date,
)
from componentize_py_types import Err

# The INSERT statement for the table, set by `init`.
_statement = ""

_EPOCH = datetime.datetime(1970, 1, 1)


def quote(name):
    return "`" + name.replace("`", "``") + "`"


def insert_statement(schema):
    names = ", ".join(quote(column.name) for column in schema.columns)
    marks = ", ".join("?" for _ in schema.columns)
    return f"INSERT INTO {quote(schema.table)} ({names}) VALUES ({marks})"


def utc(ms):
    """Epoch milliseconds as a UTC date-time (the session's time zone is UTC)."""
    at = _EPOCH + datetime.timedelta(milliseconds=ms)
    return sql.Datetime(date=Date(year=at.year, month=at.month, day=at.day),
                        hour=at.hour, minute=at.minute, second=at.second, microsecond=at.microsecond)


def sql_value(cell):
    """A cell as a statement parameter."""
    if isinstance(cell, Cell_Null):
        return sql.SqlValue_Null()
    if isinstance(cell, Cell_Bool):
        return sql.SqlValue_Int(1 if cell.value else 0)
    if isinstance(cell, (Cell_Smallint, Cell_Int, Cell_Bigint)):
        return sql.SqlValue_Int(cell.value)
    if isinstance(cell, Cell_Float):
        return sql.SqlValue_Float(cell.value)
    if isinstance(cell, Cell_Double):
        return sql.SqlValue_Double(cell.value)
    if isinstance(cell, Cell_String):
        return sql.SqlValue_Text(cell.value)
    if isinstance(cell, Cell_Date):
        return sql.SqlValue_Date(cell.value)
    if isinstance(cell, Cell_Timestamp):
        return sql.SqlValue_Datetime(utc(cell.value))
    raise ValueError(f"unknown cell {cell!r}")


class Sink(exports.Sink):
    def init(self, config, schema):
        """`schema` is the table as the database describes it; rows arrive
        in its column order."""
        global _statement
        _statement = insert_statement(schema)
        return PluginInfo(name="@NAME@", version="0.1.0", max_batch=None, needs=Needs(0))

    def write(self, batch):
        """Failures name rows that can never be written (the host
        dead-letters them); a raised error means nothing of the batch counts
        as written, and the host retries it (retryable) or stops."""
        failures, params = [], []
        for index, row in enumerate(batch.rows):
            try:
                params.append([sql_value(cell) for cell in row.cells])
            except (OverflowError, ValueError) as error:
                failures.append(RecordFailure(index=index, kind=FailureKind.INVALID_VALUE, message=str(error)))
        if params:
            try:
                sql.execute(_statement, params)
            except Err as error:
                failure = error.value
                kind = {
                    sql.SqlErrorKind.CONNECTION: ErrorKind.RETRYABLE,
                    sql.SqlErrorKind.TIMEOUT: ErrorKind.RETRYABLE,
                    sql.SqlErrorKind.NOT_GRANTED: ErrorKind.INVALID_CONFIG,
                }.get(failure.kind, ErrorKind.FATAL)
                raise Err(PluginError(kind, failure.message))
        return failures

    def flush(self):
        """`write`'s statements are already in the host's transaction; a
        sink that buffers would write here."""
        return None
