// @NAME@: an rmq-openmldb transform. It upper-cases the string columns
// named in its `fields` config key and passes every other column through.
// Replace `process_row` with your own logic; `rmq-openmldb plugin build`
// makes the component (bindings in gen/ are regenerated from wit/ by every
// build), `rmq-openmldb plugin test` runs it on sample data.
//
// Memory: arguments belong to the callee (free what you do not hand back);
// whatever is returned is freed by the generated post-return code, so it
// must come from malloc.

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transform_plugin.h"

typedef rmq_openmldb_plugin_types_cell_t cell_t;
typedef rmq_openmldb_plugin_types_row_t row_t;

#define MAX_FIELDS 64

// Indexes of the columns to upper-case, set by `init`.
static size_t fields[MAX_FIELDS];
static size_t field_count;

static bool fail(exports_rmq_openmldb_plugin_transform_plugin_error_t *err, uint8_t kind, const char *message) {
  err->kind = kind;
  transform_plugin_string_dup(&err->message, message);
  return false;
}

// The transform itself: change the row's cells in place, in column order.
static void process_row(row_t *row) {
  for (size_t f = 0; f < field_count; f++) {
    cell_t *cell = &row->cells.ptr[fields[f]];
    if (cell->tag != RMQ_OPENMLDB_PLUGIN_TYPES_CELL_STRING) continue;
    for (size_t i = 0; i < cell->val.string.len; i++) {
      cell->val.string.ptr[i] = (uint8_t)toupper(cell->val.string.ptr[i]);
    }
  }
}

// `output` is the schema this transform must produce; the answer is the
// schema it needs as input (here the same list, handed back).
bool exports_rmq_openmldb_plugin_transform_init(exports_rmq_openmldb_plugin_transform_config_t *config,
                                                exports_rmq_openmldb_plugin_transform_list_column_t *output,
                                                exports_rmq_openmldb_plugin_transform_transform_info_t *ret,
                                                exports_rmq_openmldb_plugin_transform_plugin_error_t *err) {
  char message[512];
  field_count = 0;
  for (size_t i = 0; i < config->len; i++) {
    if (config->ptr[i].f0.len != 6 || memcmp(config->ptr[i].f0.ptr, "fields", 6) != 0) continue;
    const uint8_t *value = config->ptr[i].f1.ptr;
    size_t len = config->ptr[i].f1.len, start = 0;
    while (start < len) {
      size_t end = start;
      while (end < len && value[end] != ',') end++;
      size_t a = start, b = end;
      while (a < b && value[a] == ' ') a++;
      while (b > a && value[b - 1] == ' ') b--;
      if (b > a) {
        size_t found = output->len;
        for (size_t c = 0; c < output->len; c++) {
          if (output->ptr[c].name.len == b - a && memcmp(output->ptr[c].name.ptr, value + a, b - a) == 0) found = c;
        }
        if (found == output->len || output->ptr[found].type != RMQ_OPENMLDB_PLUGIN_TYPES_COLUMN_TYPE_STRING ||
            field_count == MAX_FIELDS) {
          snprintf(message, sizeof message, "config key \"fields\": \"%.*s\" is not a string column of the table",
                   (int)(b - a), (const char *)value + a);
          rmq_openmldb_plugin_types_config_free(config);
          rmq_openmldb_plugin_types_list_column_free((rmq_openmldb_plugin_types_list_column_t *)output);
          return fail(err, RMQ_OPENMLDB_PLUGIN_TYPES_ERROR_KIND_INVALID_CONFIG, message);
        }
        fields[field_count++] = found;
      }
      start = end + 1;
    }
  }
  rmq_openmldb_plugin_types_config_free(config);
  transform_plugin_string_dup(&ret->info.name, "@NAME@");
  transform_plugin_string_dup(&ret->info.version, "0.1.0");
  ret->info.max_batch.is_some = false;
  ret->info.needs = 0;
  ret->input = *output;  // handed back: freed after the call returns
  return true;
}

bool exports_rmq_openmldb_plugin_transform_process(exports_rmq_openmldb_plugin_transform_row_batch_t *batch,
                                                   exports_rmq_openmldb_plugin_transform_transformed_t *ret,
                                                   exports_rmq_openmldb_plugin_transform_plugin_error_t *err) {
  (void)err;
  for (size_t i = 0; i < batch->rows.len; i++) process_row(&batch->rows.ptr[i]);
  // The rows go back as they are (moved, not copied); origins are not needed.
  ret->rows.ptr = batch->rows.ptr;
  ret->rows.len = batch->rows.len;
  ret->failures.ptr = NULL;
  ret->failures.len = 0;
  rmq_openmldb_plugin_types_list_origin_free(&batch->origins);
  return true;
}
