// @NAME@: an rmq-openmldb source. It produces the records 1..`count` as
// JSON (`{"seq": N}`) on the topic `topic`, at most `records.per.poll` per
// poll, and resumes after the last record the broker acknowledged when the
// connector restarts. Replace `next_records` with your own reading (the
// `sql` import reaches the database a connector's `connection.url`
// grants); `rmq-openmldb plugin build` makes the component (bindings in
// gen/ are regenerated from wit/ by every build) and `rmq-openmldb plugin
// test` shows the records it produces.
//
// Memory: arguments belong to the callee (free what you do not hand back);
// whatever is returned is freed by the generated post-return code, so it
// must come from malloc.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source_plugin.h"

typedef exports_rmq_openmldb_plugin_source_source_record_t record_t;

// The stream's name in stored positions.
static const char PARTITION[] = "sequence";

// What `init` configured, and the last record handed to the host.
static char topic[256];
static uint64_t count, per_poll, last;

static bool fail(exports_rmq_openmldb_plugin_source_plugin_error_t *err, const char *message) {
  err->kind = RMQ_OPENMLDB_PLUGIN_TYPES_ERROR_KIND_INVALID_CONFIG;
  source_plugin_string_dup(&err->message, message);
  return false;
}

static bool equals(const source_plugin_string_t *s, const char *text) {
  return s->len == strlen(text) && memcmp(s->ptr, text, s->len) == 0;
}

// `text` as a whole number into `*out`; false if it is not one.
static bool whole_number(const source_plugin_string_t *text, uint64_t *out) {
  if (text->len == 0 || text->len > 19) return false;
  uint64_t n = 0;
  for (size_t i = 0; i < text->len; i++) {
    if (text->ptr[i] < '0' || text->ptr[i] > '9') return false;
    n = n * 10 + (uint64_t)(text->ptr[i] - '0');
  }
  *out = n;
  return true;
}

// `positions` are those the host stored for records the broker
// acknowledged: start after them.
bool exports_rmq_openmldb_plugin_source_init(exports_rmq_openmldb_plugin_source_config_t *config,
                                             exports_rmq_openmldb_plugin_source_list_source_position_t *positions,
                                             exports_rmq_openmldb_plugin_source_plugin_info_t *ret,
                                             exports_rmq_openmldb_plugin_source_plugin_error_t *err) {
  char message[512] = "";
  topic[0] = '\0', count = 1000, per_poll = 10, last = 0;
  for (size_t i = 0; i < config->len && !message[0]; i++) {
    source_plugin_string_t *key = &config->ptr[i].f0, *value = &config->ptr[i].f1;
    if (equals(key, "topic") && value->len >= sizeof topic) {
      snprintf(message, sizeof message, "config key \"topic\": longer than %zu bytes", sizeof topic - 1);
    } else if (equals(key, "topic")) {
      memcpy(topic, value->ptr, value->len), topic[value->len] = '\0';
    } else if ((equals(key, "count") && !whole_number(value, &count)) ||
               (equals(key, "records.per.poll") && !whole_number(value, &per_poll))) {
      snprintf(message, sizeof message, "config key \"%.*s\": \"%.*s\" is not a whole number", (int)key->len,
               (const char *)key->ptr, (int)value->len, (const char *)value->ptr);
    }
  }
  for (size_t i = 0; i < positions->len && !message[0]; i++) {
    exports_rmq_openmldb_plugin_source_source_position_t *stored = &positions->ptr[i];
    if (equals(&stored->partition, PARTITION) && !whole_number(&stored->position, &last)) {
      snprintf(message, sizeof message, "stored position \"%.*s\" is not a number", (int)stored->position.len,
               (const char *)stored->position.ptr);
    }
  }
  if (!message[0] && topic[0] == '\0') snprintf(message, sizeof message, "config key \"topic\" is missing");
  rmq_openmldb_plugin_types_config_free(config);
  exports_rmq_openmldb_plugin_source_list_source_position_free(positions);
  if (message[0]) return fail(err, message);
  source_plugin_string_dup(&ret->name, "@NAME@");
  source_plugin_string_dup(&ret->version, "0.1.0");
  ret->max_batch.is_some = false;
  ret->needs = 0;
  return true;
}

// The source itself: the next records and the position each reaches.
static void next_records(uint64_t limit, exports_rmq_openmldb_plugin_source_list_source_record_t *out) {
  uint64_t end = last + (per_poll < limit ? per_poll : limit);
  if (end > count) end = count;
  out->len = end > last ? (size_t)(end - last) : 0;
  out->ptr = calloc(out->len ? out->len : 1, sizeof *out->ptr);
  char text[64];
  for (size_t i = 0; i < out->len; i++) {
    uint64_t seq = last + 1 + i;
    record_t *record = &out->ptr[i];
    source_plugin_string_dup(&record->topic, topic);
    snprintf(text, sizeof text, "%llu", (unsigned long long)seq);
    record->keys.is_some = true;
    source_plugin_string_dup(&record->keys.val, text);
    source_plugin_string_dup(&record->position, text);
    source_plugin_string_dup(&record->partition, PARTITION);
    record->tags.is_some = false;
    record->properties.ptr = NULL, record->properties.len = 0;
    int len = snprintf(text, sizeof text, "{\"seq\": %llu}", (unsigned long long)seq);
    record->body.ptr = malloc((size_t)len);
    memcpy(record->body.ptr, text, (size_t)len);
    record->body.len = (size_t)len;
  }
  if (end > last) last = end;
}

// Up to `max` records; none means nothing new (the host waits a poll
// interval before asking again).
bool exports_rmq_openmldb_plugin_source_poll(uint32_t max, exports_rmq_openmldb_plugin_source_list_source_record_t *ret,
                                             exports_rmq_openmldb_plugin_source_plugin_error_t *err) {
  (void)err;
  next_records(max, ret);
  return true;
}
