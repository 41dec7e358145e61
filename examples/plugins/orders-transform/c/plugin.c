// orders-c: the orders example transform, in C.
//
// - masks the `card` column: every character but the last `keep` becomes '*';
// - derives `total` = `quantity` * `unit_price` (NULL when either is NULL);
// - drops orders whose `quantity` is zero or negative.
//
// Config: `keep` (default 4), the number of card characters left visible.
// Build with `rmq-openmldb plugin build`; the same transform exists in Rust,
// Python and JavaScript next to this folder, and CI checks all four write
// identical rows.
//
// Memory: arguments belong to the callee; what is returned is freed by the
// generated post-return code, so it comes from malloc.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transform_plugin.h"

typedef rmq_openmldb_plugin_types_cell_t cell_t;
typedef rmq_openmldb_plugin_types_row_t row_t;
typedef exports_rmq_openmldb_plugin_transform_list_column_t columns_t;
typedef exports_rmq_openmldb_plugin_transform_plugin_error_t error_t;

// Column positions in the input rows, and the config, set by `init`.
static struct {
  size_t keep, total, card, quantity, unit_price;
} layout;

static bool fail(error_t *err, uint8_t kind, const char *message) {
  err->kind = kind;
  transform_plugin_string_dup(&err->message, message);
  return false;
}

static bool find_column(const columns_t *output, const char *name, uint8_t type, const char *type_name, size_t *index,
                        error_t *err) {
  char message[128];
  for (size_t i = 0; i < output->len; i++) {
    if (output->ptr[i].name.len != strlen(name) || memcmp(output->ptr[i].name.ptr, name, strlen(name)) != 0) continue;
    if (output->ptr[i].type != type) {
      snprintf(message, sizeof message, "column \"%s\" must be %s", name, type_name);
      return fail(err, RMQ_OPENMLDB_PLUGIN_TYPES_ERROR_KIND_SCHEMA_MISMATCH, message);
    }
    *index = i;
    return true;
  }
  snprintf(message, sizeof message, "the table has no column \"%s\" (%s)", name, type_name);
  return fail(err, RMQ_OPENMLDB_PLUGIN_TYPES_ERROR_KIND_SCHEMA_MISMATCH, message);
}

// `keep` as a non-negative integer; false when it is anything else.
static bool parse_keep(const transform_plugin_string_t *value, size_t *keep) {
  if (value->len == 0 || value->len > 9) return false;
  size_t n = 0;
  for (size_t i = 0; i < value->len; i++) {
    if (value->ptr[i] < '0' || value->ptr[i] > '9') return false;
    n = n * 10 + (value->ptr[i] - '0');
  }
  *keep = n;
  return true;
}

bool exports_rmq_openmldb_plugin_transform_init(exports_rmq_openmldb_plugin_transform_config_t *config,
                                                columns_t *output,
                                                exports_rmq_openmldb_plugin_transform_transform_info_t *ret,
                                                error_t *err) {
  bool ok = true;
  layout.keep = 4;
  for (size_t i = 0; ok && i < config->len; i++) {
    const transform_plugin_string_t *key = &config->ptr[i].f0, *value = &config->ptr[i].f1;
    if (key->len == 4 && memcmp(key->ptr, "keep", 4) == 0 && !parse_keep(value, &layout.keep)) {
      char message[128];
      snprintf(message, sizeof message, "config key \"keep\": \"%.*s\" is not a non-negative integer",
               (int)(value->len > 32 ? 32 : value->len), (const char *)value->ptr);
      ok = fail(err, RMQ_OPENMLDB_PLUGIN_TYPES_ERROR_KIND_INVALID_CONFIG, message);
    }
  }
  rmq_openmldb_plugin_types_config_free(config);
  size_t card, quantity, unit_price;
  ok = ok && find_column(output, "total", RMQ_OPENMLDB_PLUGIN_TYPES_COLUMN_TYPE_DOUBLE, "double", &layout.total, err) &&
       find_column(output, "card", RMQ_OPENMLDB_PLUGIN_TYPES_COLUMN_TYPE_STRING, "string", &card, err) &&
       find_column(output, "quantity", RMQ_OPENMLDB_PLUGIN_TYPES_COLUMN_TYPE_INT, "int", &quantity, err) &&
       find_column(output, "unit_price", RMQ_OPENMLDB_PLUGIN_TYPES_COLUMN_TYPE_DOUBLE, "double", &unit_price, err);
  if (!ok) {
    exports_rmq_openmldb_plugin_transform_list_column_free(output);
    return false;
  }
  // Input columns are the output's without `total`: indexes after it shift by one.
  layout.card = card < layout.total ? card : card - 1;
  layout.quantity = quantity < layout.total ? quantity : quantity - 1;
  layout.unit_price = unit_price < layout.total ? unit_price : unit_price - 1;
  exports_rmq_openmldb_plugin_transform_column_free(&output->ptr[layout.total]);
  memmove(&output->ptr[layout.total], &output->ptr[layout.total + 1],
          (output->len - layout.total - 1) * sizeof output->ptr[0]);
  output->len--;

  transform_plugin_string_dup(&ret->info.name, "orders-c");
  transform_plugin_string_dup(&ret->info.version, "0.1.0");
  ret->info.max_batch.is_some = false;
  ret->info.needs = 0;
  ret->input = *output;  // handed back: freed after the call returns
  return true;
}

// Every code point but the last `keep` becomes '*' (UTF-8 aware).
static void mask(transform_plugin_string_t *text, size_t keep) {
  size_t points = 0;
  for (size_t i = 0; i < text->len; i++) points += (text->ptr[i] & 0xC0) != 0x80;
  if (points <= keep) return;
  size_t hidden = points - keep, at = 0, seen = 0;
  for (; at < text->len; at++) {
    if ((text->ptr[at] & 0xC0) != 0x80 && seen++ == hidden) break;
  }
  size_t tail = text->len - at;
  uint8_t *masked = malloc(hidden + tail);
  memset(masked, '*', hidden);
  memcpy(masked + hidden, text->ptr + at, tail);
  free(text->ptr);
  text->ptr = masked;
  text->len = hidden + tail;
}

bool exports_rmq_openmldb_plugin_transform_process(exports_rmq_openmldb_plugin_transform_row_batch_t *batch,
                                                   exports_rmq_openmldb_plugin_transform_transformed_t *ret,
                                                   error_t *err) {
  (void)err;
  size_t kept = 0;
  for (size_t r = 0; r < batch->rows.len; r++) {
    row_t row = batch->rows.ptr[r];
    cell_t *cells = row.cells.ptr;
    const cell_t *quantity = &cells[layout.quantity], *price = &cells[layout.unit_price];
    if (quantity->tag == RMQ_OPENMLDB_PLUGIN_TYPES_CELL_INT && quantity->val.int_ <= 0) {
      rmq_openmldb_plugin_types_row_free(&row);
      continue;
    }
    if (cells[layout.card].tag == RMQ_OPENMLDB_PLUGIN_TYPES_CELL_STRING) mask(&cells[layout.card].val.string, layout.keep);
    cell_t total = {.tag = RMQ_OPENMLDB_PLUGIN_TYPES_CELL_NULL};
    if (quantity->tag == RMQ_OPENMLDB_PLUGIN_TYPES_CELL_INT && price->tag == RMQ_OPENMLDB_PLUGIN_TYPES_CELL_DOUBLE) {
      total.tag = RMQ_OPENMLDB_PLUGIN_TYPES_CELL_DOUBLE;
      total.val.double_ = (double)quantity->val.int_ * price->val.double_;
    }
    cells = realloc(cells, (row.cells.len + 1) * sizeof *cells);
    memmove(&cells[layout.total + 1], &cells[layout.total], (row.cells.len - layout.total) * sizeof *cells);
    cells[layout.total] = total;
    row.cells.ptr = cells;
    row.cells.len++;
    batch->rows.ptr[kept++] = row;
  }
  // Rows are moved into the answer, not copied; origins are not needed.
  ret->rows.ptr = batch->rows.ptr;
  ret->rows.len = kept;
  ret->failures.ptr = NULL;
  ret->failures.len = 0;
  rmq_openmldb_plugin_types_list_origin_free(&batch->origins);
  return true;
}
