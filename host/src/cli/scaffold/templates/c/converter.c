// @NAME@: an rmq-openmldb converter. Each message body is one CSV line
// whose fields are the table's columns in order; an empty field is NULL.
// (No quoting: a field cannot hold a comma.) Replace `convert_body` with
// your own format; `rmq-openmldb plugin build` makes the component
// (bindings in gen/ are regenerated from wit/ by every build),
// `rmq-openmldb plugin test` runs it on sample data.
//
// Memory: arguments belong to the callee (free what you do not hand back);
// whatever is returned is freed by the generated post-return code, so it
// must come from malloc.

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "converter_plugin.h"

typedef rmq_openmldb_plugin_types_cell_t cell_t;
typedef rmq_openmldb_plugin_types_column_t column_t;

// The table's columns, kept from `init`.
static rmq_openmldb_plugin_types_list_column_t columns;

typedef struct {
  uint8_t kind;
  char message[256];
} rejection_t;

static bool reject(rejection_t *why, uint8_t kind, const column_t *column, const char *text, size_t len, const char *what) {
  why->kind = kind;
  snprintf(why->message, sizeof why->message, "field \"%.*s\": \"%.*s\" %s", (int)column->name.len,
           (const char *)column->name.ptr, (int)len, text, what);
  return false;
}

// One CSV field into the cell of `column`.
static bool convert_field(const column_t *column, const char *text, size_t len, cell_t *cell, rejection_t *why) {
  if (len == 0) {
    cell->tag = RMQ_OPENMLDB_PLUGIN_TYPES_CELL_NULL;
    if (column->nullable) return true;
    return reject(why, RMQ_OPENMLDB_PLUGIN_TYPES_FAILURE_KIND_MISSING_FIELD, column, text, len, "is empty in a NOT NULL column");
  }
  char buffer[64];
  if (column->type != RMQ_OPENMLDB_PLUGIN_TYPES_COLUMN_TYPE_STRING) {
    if (len >= sizeof buffer) return reject(why, RMQ_OPENMLDB_PLUGIN_TYPES_FAILURE_KIND_TYPE_MISMATCH, column, text, len, "is too long for a number");
    memcpy(buffer, text, len);
    buffer[len] = 0;
  }
  char *end = NULL;
  errno = 0;
  switch (column->type) {
    case RMQ_OPENMLDB_PLUGIN_TYPES_COLUMN_TYPE_STRING:
      cell->tag = RMQ_OPENMLDB_PLUGIN_TYPES_CELL_STRING;
      converter_plugin_string_dup_n(&cell->val.string, text, len);
      return true;
    case RMQ_OPENMLDB_PLUGIN_TYPES_COLUMN_TYPE_BOOL:
      cell->tag = RMQ_OPENMLDB_PLUGIN_TYPES_CELL_BOOL;
      if (strcmp(buffer, "true") == 0) { cell->val.bool_ = true; return true; }
      if (strcmp(buffer, "false") == 0) { cell->val.bool_ = false; return true; }
      return reject(why, RMQ_OPENMLDB_PLUGIN_TYPES_FAILURE_KIND_TYPE_MISMATCH, column, text, len, "is not true or false");
    case RMQ_OPENMLDB_PLUGIN_TYPES_COLUMN_TYPE_FLOAT:
    case RMQ_OPENMLDB_PLUGIN_TYPES_COLUMN_TYPE_DOUBLE: {
      double value = strtod(buffer, &end);
      if (*end != 0) return reject(why, RMQ_OPENMLDB_PLUGIN_TYPES_FAILURE_KIND_TYPE_MISMATCH, column, text, len, "is not a number");
      if (column->type == RMQ_OPENMLDB_PLUGIN_TYPES_COLUMN_TYPE_FLOAT) {
        cell->tag = RMQ_OPENMLDB_PLUGIN_TYPES_CELL_FLOAT;
        cell->val.float_ = (float)value;
      } else {
        cell->tag = RMQ_OPENMLDB_PLUGIN_TYPES_CELL_DOUBLE;
        cell->val.double_ = value;
      }
      return true;
    }
    case RMQ_OPENMLDB_PLUGIN_TYPES_COLUMN_TYPE_SMALLINT:
    case RMQ_OPENMLDB_PLUGIN_TYPES_COLUMN_TYPE_INT:
    case RMQ_OPENMLDB_PLUGIN_TYPES_COLUMN_TYPE_BIGINT:
    case RMQ_OPENMLDB_PLUGIN_TYPES_COLUMN_TYPE_TIMESTAMP: {
      long long value = strtoll(buffer, &end, 10);
      if (*end != 0) return reject(why, RMQ_OPENMLDB_PLUGIN_TYPES_FAILURE_KIND_TYPE_MISMATCH, column, text, len, "is not an integer");
      bool fits = errno != ERANGE;
      if (column->type == RMQ_OPENMLDB_PLUGIN_TYPES_COLUMN_TYPE_SMALLINT) {
        fits = fits && value >= INT16_MIN && value <= INT16_MAX;
        cell->tag = RMQ_OPENMLDB_PLUGIN_TYPES_CELL_SMALLINT;
        cell->val.smallint = (int16_t)value;
      } else if (column->type == RMQ_OPENMLDB_PLUGIN_TYPES_COLUMN_TYPE_INT) {
        fits = fits && value >= INT32_MIN && value <= INT32_MAX;
        cell->tag = RMQ_OPENMLDB_PLUGIN_TYPES_CELL_INT;
        cell->val.int_ = (int32_t)value;
      } else if (column->type == RMQ_OPENMLDB_PLUGIN_TYPES_COLUMN_TYPE_BIGINT) {
        cell->tag = RMQ_OPENMLDB_PLUGIN_TYPES_CELL_BIGINT;
        cell->val.bigint = value;
      } else {
        fits = fits && value >= 0;
        cell->tag = RMQ_OPENMLDB_PLUGIN_TYPES_CELL_TIMESTAMP;
        cell->val.timestamp = value;
      }
      if (!fits) return reject(why, RMQ_OPENMLDB_PLUGIN_TYPES_FAILURE_KIND_OUT_OF_RANGE, column, text, len, "is out of range");
      return true;
    }
    default:
      return reject(why, RMQ_OPENMLDB_PLUGIN_TYPES_FAILURE_KIND_TYPE_MISMATCH, column, text, len,
                    "cannot be read from CSV (date columns are not supported by this converter)");
  }
}

// One body into cells in column order (cells must hold columns.len).
static bool convert_body(const uint8_t *body, size_t len, cell_t *cells, rejection_t *why) {
  while (len > 0 && (body[len - 1] == '\n' || body[len - 1] == '\r')) len--;
  size_t start = 0;
  for (size_t c = 0; c < columns.len; c++) {
    size_t end = start;
    while (end < len && body[end] != ',') end++;
    // Fewer fields than columns: the missing ones are empty.
    const char *text = start <= len ? (const char *)body + start : "";
    if (!convert_field(&columns.ptr[c], text, end - start, &cells[c], why)) {
      for (size_t i = 0; i < c; i++) rmq_openmldb_plugin_types_cell_free(&cells[i]);
      return false;
    }
    start = end + 1;
  }
  if (start <= len) {
    why->kind = RMQ_OPENMLDB_PLUGIN_TYPES_FAILURE_KIND_DECODE;
    snprintf(why->message, sizeof why->message, "the line has more than %zu fields", columns.len);
    for (size_t i = 0; i < columns.len; i++) rmq_openmldb_plugin_types_cell_free(&cells[i]);
    return false;
  }
  return true;
}

bool exports_rmq_openmldb_plugin_converter_init(exports_rmq_openmldb_plugin_converter_config_t *config,
                                                exports_rmq_openmldb_plugin_converter_table_schema_t *target,
                                                exports_rmq_openmldb_plugin_converter_plugin_info_t *ret,
                                                exports_rmq_openmldb_plugin_converter_plugin_error_t *err) {
  (void)err;
  rmq_openmldb_plugin_types_config_free(config);
  rmq_openmldb_plugin_types_list_column_free(&columns);
  columns = target->columns;  // kept: the rest of the schema is freed
  converter_plugin_string_free(&target->database);
  converter_plugin_string_free(&target->table);
  converter_plugin_string_dup(&ret->name, "@NAME@");
  converter_plugin_string_dup(&ret->version, "0.1.0");
  ret->max_batch.is_some = false;
  ret->needs = 0;
  return true;
}

bool exports_rmq_openmldb_plugin_converter_convert(exports_rmq_openmldb_plugin_converter_list_message_t *batch,
                                                   exports_rmq_openmldb_plugin_converter_converted_t *ret,
                                                   exports_rmq_openmldb_plugin_converter_plugin_error_t *err) {
  (void)err;
  ret->rows.ptr = malloc(sizeof *ret->rows.ptr * (batch->len ? batch->len : 1));
  ret->failures.ptr = malloc(sizeof *ret->failures.ptr * (batch->len ? batch->len : 1));
  ret->rows.len = ret->failures.len = 0;
  for (size_t i = 0; i < batch->len; i++) {
    cell_t *cells = malloc(sizeof *cells * (columns.len ? columns.len : 1));
    rejection_t why;
    if (convert_body(batch->ptr[i].body.ptr, batch->ptr[i].body.len, cells, &why)) {
      ret->rows.ptr[ret->rows.len++] = (rmq_openmldb_plugin_types_row_t){(uint32_t)i, {cells, columns.len}};
    } else {
      free(cells);
      rmq_openmldb_plugin_types_record_failure_t *failure = &ret->failures.ptr[ret->failures.len++];
      failure->index = (uint32_t)i;
      failure->kind = why.kind;
      converter_plugin_string_dup(&failure->message, why.message);
    }
  }
  exports_rmq_openmldb_plugin_converter_list_message_free(batch);
  return true;
}

bool exports_rmq_openmldb_plugin_converter_infer_schema(exports_rmq_openmldb_plugin_converter_config_t *config,
                                                        exports_rmq_openmldb_plugin_converter_message_t *sample,
                                                        exports_rmq_openmldb_plugin_converter_list_column_t *ret,
                                                        exports_rmq_openmldb_plugin_converter_plugin_error_t *err) {
  (void)ret;
  rmq_openmldb_plugin_types_config_free(config);
  exports_rmq_openmldb_plugin_converter_message_free(sample);
  err->kind = RMQ_OPENMLDB_PLUGIN_TYPES_ERROR_KIND_SCHEMA_MISMATCH;
  converter_plugin_string_dup(&err->message, "CSV carries no schema: create the table first");
  return false;
}
