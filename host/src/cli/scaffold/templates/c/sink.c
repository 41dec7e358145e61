// @NAME@: an rmq-openmldb sink. It writes each batch into the table the
// connector names, in the database its `connection.url` grants, with one
// INSERT per row; the host holds one transaction around the batch. (The
// built-in `mysql-sink` does the same with multi-row INSERTs, upserts and
// refused-row isolation; start from this to write somewhere else or
// differently.) `rmq-openmldb plugin build` makes the component (bindings
// in gen/ are regenerated from wit/ by every build) and `rmq-openmldb
// plugin test` shows the statements it sends.
//
// Memory: arguments belong to the callee (free what you do not hand back);
// whatever is returned is freed by the generated post-return code, so it
// must come from malloc. An import only borrows what it is given.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink_plugin.h"

typedef rmq_openmldb_plugin_types_cell_t cell_t;
typedef rmq_openmldb_plugin_sql_sql_value_t sql_value_t;

// The INSERT statement for the table, set by `init`.
static sink_plugin_string_t statement;

// Append `name` quoted with backticks (doubled inside) to `out` at `*at`.
static void put_quoted(char *out, size_t *at, const uint8_t *name, size_t len) {
  out[(*at)++] = '`';
  for (size_t i = 0; i < len; i++) {
    if (name[i] == '`') out[(*at)++] = '`';
    out[(*at)++] = (char)name[i];
  }
  out[(*at)++] = '`';
}

static void insert_statement(const rmq_openmldb_plugin_types_table_schema_t *schema) {
  size_t room = 64 + 2 * schema->table.len + 1;
  for (size_t c = 0; c < schema->columns.len; c++) room += 2 * schema->columns.ptr[c].name.len + 8;
  char *text = malloc(room);
  size_t at = 0;
  memcpy(text + at, "INSERT INTO ", 12), at += 12;
  put_quoted(text, &at, schema->table.ptr, schema->table.len);
  memcpy(text + at, " (", 2), at += 2;
  for (size_t c = 0; c < schema->columns.len; c++) {
    if (c > 0) memcpy(text + at, ", ", 2), at += 2;
    put_quoted(text, &at, schema->columns.ptr[c].name.ptr, schema->columns.ptr[c].name.len);
  }
  memcpy(text + at, ") VALUES (", 10), at += 10;
  for (size_t c = 0; c < schema->columns.len; c++) {
    if (c > 0) memcpy(text + at, ", ", 2), at += 2;
    text[at++] = '?';
  }
  text[at++] = ')';
  sink_plugin_string_free(&statement);
  statement.ptr = (uint8_t *)text;
  statement.len = at;
}

// Epoch milliseconds as a UTC date-time (civil-from-days, proleptic
// Gregorian); false when the year does not fit.
static bool utc(int64_t ms, rmq_openmldb_plugin_sql_datetime_t *out) {
  int64_t days = ms / 86400000, in_day = ms % 86400000;
  if (in_day < 0) in_day += 86400000, days -= 1;
  int64_t z = days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t day = doy - (153 * mp + 2) / 5 + 1;
  int64_t month = mp < 10 ? mp + 3 : mp - 9;
  int64_t year = yoe + era * 400 + (month <= 2);
  if (year < INT32_MIN || year > INT32_MAX) return false;
  out->date.year = (int32_t)year, out->date.month = (uint8_t)month, out->date.day = (uint8_t)day;
  out->hour = (uint8_t)(in_day / 3600000), out->minute = (uint8_t)(in_day / 60000 % 60);
  out->second = (uint8_t)(in_day / 1000 % 60), out->microsecond = (uint32_t)(in_day % 1000 * 1000);
  return true;
}

// A cell as a statement parameter (strings borrowed from the cell); false
// when it cannot be one.
static bool sql_value(const cell_t *cell, sql_value_t *out) {
  switch (cell->tag) {
    case RMQ_OPENMLDB_PLUGIN_TYPES_CELL_NULL: out->tag = RMQ_OPENMLDB_PLUGIN_SQL_SQL_VALUE_NULL; return true;
    case RMQ_OPENMLDB_PLUGIN_TYPES_CELL_BOOL:
      out->tag = RMQ_OPENMLDB_PLUGIN_SQL_SQL_VALUE_INT, out->val.int_ = cell->val.bool_;
      return true;
    case RMQ_OPENMLDB_PLUGIN_TYPES_CELL_SMALLINT:
      out->tag = RMQ_OPENMLDB_PLUGIN_SQL_SQL_VALUE_INT, out->val.int_ = cell->val.smallint;
      return true;
    case RMQ_OPENMLDB_PLUGIN_TYPES_CELL_INT:
      out->tag = RMQ_OPENMLDB_PLUGIN_SQL_SQL_VALUE_INT, out->val.int_ = cell->val.int_;
      return true;
    case RMQ_OPENMLDB_PLUGIN_TYPES_CELL_BIGINT:
      out->tag = RMQ_OPENMLDB_PLUGIN_SQL_SQL_VALUE_INT, out->val.int_ = cell->val.bigint;
      return true;
    case RMQ_OPENMLDB_PLUGIN_TYPES_CELL_FLOAT:
      out->tag = RMQ_OPENMLDB_PLUGIN_SQL_SQL_VALUE_FLOAT, out->val.float_ = cell->val.float_;
      return true;
    case RMQ_OPENMLDB_PLUGIN_TYPES_CELL_DOUBLE:
      out->tag = RMQ_OPENMLDB_PLUGIN_SQL_SQL_VALUE_DOUBLE, out->val.double_ = cell->val.double_;
      return true;
    case RMQ_OPENMLDB_PLUGIN_TYPES_CELL_STRING:
      out->tag = RMQ_OPENMLDB_PLUGIN_SQL_SQL_VALUE_TEXT, out->val.text = cell->val.string;
      return true;
    case RMQ_OPENMLDB_PLUGIN_TYPES_CELL_DATE:
      out->tag = RMQ_OPENMLDB_PLUGIN_SQL_SQL_VALUE_DATE, out->val.date = cell->val.date;
      return true;
    case RMQ_OPENMLDB_PLUGIN_TYPES_CELL_TIMESTAMP:
      out->tag = RMQ_OPENMLDB_PLUGIN_SQL_SQL_VALUE_DATETIME;
      return utc(cell->val.timestamp, &out->val.datetime);
  }
  return false;
}

// `schema` is the table as the database describes it; rows arrive in its
// column order.
bool exports_rmq_openmldb_plugin_sink_init(exports_rmq_openmldb_plugin_sink_config_t *config,
                                           exports_rmq_openmldb_plugin_sink_table_schema_t *schema,
                                           exports_rmq_openmldb_plugin_sink_plugin_info_t *ret,
                                           exports_rmq_openmldb_plugin_sink_plugin_error_t *err) {
  (void)err;
  insert_statement(schema);
  rmq_openmldb_plugin_types_config_free(config);
  rmq_openmldb_plugin_types_table_schema_free(schema);
  sink_plugin_string_dup(&ret->name, "@NAME@");
  sink_plugin_string_dup(&ret->version, "0.1.0");
  ret->max_batch.is_some = false;
  ret->needs = 0;
  return true;
}

// Failures name rows that can never be written (the host dead-letters
// them); `false` means nothing of the batch counts as written, and the
// host retries it (retryable) or stops.
bool exports_rmq_openmldb_plugin_sink_write(exports_rmq_openmldb_plugin_sink_row_batch_t *batch,
                                            exports_rmq_openmldb_plugin_sink_list_record_failure_t *ret,
                                            exports_rmq_openmldb_plugin_sink_plugin_error_t *err) {
  size_t rows = batch->rows.len;
  rmq_openmldb_plugin_sql_list_list_sql_value_t params = {calloc(rows ? rows : 1, sizeof *params.ptr), 0};
  ret->ptr = calloc(rows ? rows : 1, sizeof *ret->ptr);
  ret->len = 0;
  for (size_t r = 0; r < rows; r++) {
    rmq_openmldb_plugin_types_list_cell_t *cells = &batch->rows.ptr[r].cells;
    sql_value_t *values = calloc(cells->len ? cells->len : 1, sizeof *values);
    bool ok = true;
    for (size_t c = 0; c < cells->len && ok; c++) ok = sql_value(&cells->ptr[c], &values[c]);
    if (!ok) {
      free(values);
      rmq_openmldb_plugin_types_record_failure_t *failure = &ret->ptr[ret->len++];
      failure->index = (uint32_t)r;
      failure->kind = RMQ_OPENMLDB_PLUGIN_TYPES_FAILURE_KIND_INVALID_VALUE;
      sink_plugin_string_dup(&failure->message, "a timestamp is out of range");
      continue;
    }
    params.ptr[params.len++] = (rmq_openmldb_plugin_sql_list_sql_value_t){values, cells->len};
  }
  bool stored = true;
  if (params.len > 0) {
    sink_plugin_list_u64_t affected;
    rmq_openmldb_plugin_sql_sql_error_t sql_error;
    if (rmq_openmldb_plugin_sql_execute(&statement, &params, &affected, &sql_error)) {
      sink_plugin_list_u64_free(&affected);
    } else {
      stored = false;
      switch (sql_error.kind) {
        case RMQ_OPENMLDB_PLUGIN_SQL_SQL_ERROR_KIND_CONNECTION:
        case RMQ_OPENMLDB_PLUGIN_SQL_SQL_ERROR_KIND_TIMEOUT: err->kind = RMQ_OPENMLDB_PLUGIN_TYPES_ERROR_KIND_RETRYABLE; break;
        case RMQ_OPENMLDB_PLUGIN_SQL_SQL_ERROR_KIND_NOT_GRANTED: err->kind = RMQ_OPENMLDB_PLUGIN_TYPES_ERROR_KIND_INVALID_CONFIG; break;
        default: err->kind = RMQ_OPENMLDB_PLUGIN_TYPES_ERROR_KIND_FATAL;
      }
      err->message = sql_error.message;  // handed on, freed after the call
    }
  }
  for (size_t p = 0; p < params.len; p++) free(params.ptr[p].ptr);  // the values borrowed the batch's strings
  free(params.ptr);
  rmq_openmldb_plugin_types_row_batch_free(batch);
  if (!stored) {
    for (size_t f = 0; f < ret->len; f++) sink_plugin_string_free(&ret->ptr[f].message);
    free(ret->ptr);
    ret->ptr = NULL, ret->len = 0;
  }
  return stored;
}

// `write`'s statements are already in the host's transaction; a sink that
// buffers would write here.
bool exports_rmq_openmldb_plugin_sink_flush(exports_rmq_openmldb_plugin_sink_plugin_error_t *err) {
  (void)err;
  return true;
}
