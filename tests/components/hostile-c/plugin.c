// hostile-c: a transform for testing the host's defences, in C. The first
// cell of each row, when it is a string, says what to do:
// - "read:PATH": open PATH and pass the row on with its first cell replaced
//   by "allowed: N bytes" or "denied: <errno text>";
// - "sleep": sleep for an hour (a blocking wait in a host import);
// - "spin": loop forever;
// - "alloc": allocate and touch memory without bound;
// - "oversized": return 4096 rows whose strings all point at one 8 MiB
//   buffer (32 GiB once copied out, though it fits in 8 MiB here);
// - anything else: pass the row through.
// The tests copy wit/plugin.wit next to this file before building.

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transform_plugin.h"

typedef rmq_openmldb_plugin_types_cell_t cell_t;
typedef rmq_openmldb_plugin_types_row_t row_t;

// Where "alloc" keeps what it allocates.
static char *volatile hoard;

bool exports_rmq_openmldb_plugin_transform_init(exports_rmq_openmldb_plugin_transform_config_t *config,
                                                exports_rmq_openmldb_plugin_transform_list_column_t *output,
                                                exports_rmq_openmldb_plugin_transform_transform_info_t *ret,
                                                exports_rmq_openmldb_plugin_transform_plugin_error_t *err) {
  (void)err;
  rmq_openmldb_plugin_types_config_free(config);
  transform_plugin_string_dup(&ret->info.name, "hostile-c");
  transform_plugin_string_dup(&ret->info.version, "0.0.1");
  ret->info.max_batch.is_some = false;
  ret->info.needs = 0;
  ret->input = *output;  // needs what it produces
  return true;
}

static bool is(const transform_plugin_string_t *s, const char *text) {
  return s->len == strlen(text) && memcmp(s->ptr, text, s->len) == 0;
}

// Try to read the file named after "read:"; the outcome replaces the cell.
static void attempt_read(cell_t *cell) {
  char path[256];
  size_t len = cell->val.string.len - 5 < sizeof path - 1 ? cell->val.string.len - 5 : sizeof path - 1;
  memcpy(path, cell->val.string.ptr + 5, len);
  path[len] = 0;
  char outcome[320];
  FILE *file = fopen(path, "r");
  if (file == NULL) {
    snprintf(outcome, sizeof outcome, "denied: %s", strerror(errno));
  } else {
    size_t total = 0, n;
    char chunk[4096];
    while ((n = fread(chunk, 1, sizeof chunk, file)) > 0) total += n;
    fclose(file);
    snprintf(outcome, sizeof outcome, "allowed: %zu bytes", total);
  }
  free(cell->val.string.ptr);
  transform_plugin_string_dup(&cell->val.string, outcome);
}

// Rows that overlap: every string is the same 8 MiB of memory.
static void oversized(exports_rmq_openmldb_plugin_transform_transformed_t *ret, uint32_t source_index) {
  enum { ROWS = 4096, BYTES = 8 << 20 };
  uint8_t *shared = malloc(BYTES);
  memset(shared, 'x', BYTES);
  row_t *rows = malloc(ROWS * sizeof *rows);
  for (size_t r = 0; r < ROWS; r++) {
    cell_t *cells = malloc(2 * sizeof *cells);
    cells[0].tag = RMQ_OPENMLDB_PLUGIN_TYPES_CELL_STRING;
    cells[0].val.string.ptr = shared;
    cells[0].val.string.len = BYTES;
    cells[1].tag = RMQ_OPENMLDB_PLUGIN_TYPES_CELL_BIGINT;
    cells[1].val.bigint = (int64_t)r;
    rows[r].cells.ptr = cells;
    rows[r].cells.len = 2;
    rows[r].source_index = source_index;
  }
  ret->rows.ptr = rows;
  ret->rows.len = ROWS;
}

bool exports_rmq_openmldb_plugin_transform_process(exports_rmq_openmldb_plugin_transform_row_batch_t *batch,
                                                   exports_rmq_openmldb_plugin_transform_transformed_t *ret,
                                                   exports_rmq_openmldb_plugin_transform_plugin_error_t *err) {
  (void)err;
  ret->failures.ptr = NULL;
  ret->failures.len = 0;
  for (size_t r = 0; r < batch->rows.len; r++) {
    row_t *row = &batch->rows.ptr[r];
    if (row->cells.len == 0 || row->cells.ptr[0].tag != RMQ_OPENMLDB_PLUGIN_TYPES_CELL_STRING) continue;
    cell_t *command = &row->cells.ptr[0];
    if (command->val.string.len > 5 && memcmp(command->val.string.ptr, "read:", 5) == 0) {
      attempt_read(command);
    } else if (is(&command->val.string, "sleep")) {
      sleep(3600);
    } else if (is(&command->val.string, "spin")) {
      for (volatile uint64_t n = 0;; n++) {
      }
    } else if (is(&command->val.string, "alloc")) {
      for (;;) {
        char *block = malloc(8 << 20);
        if (block == NULL) abort();
        memset(block, 1, 8 << 20);
        hoard = block;  // escapes, so the compiler cannot elide the allocation
      }
    } else if (is(&command->val.string, "oversized")) {
      oversized(ret, row->source_index);
      return true;
    }
  }
  // Rows are moved into the answer; origins are not needed.
  ret->rows.ptr = batch->rows.ptr;
  ret->rows.len = batch->rows.len;
  rmq_openmldb_plugin_types_list_origin_free(&batch->origins);
  return true;
}
