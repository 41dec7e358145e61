#!/usr/bin/env bash
# Build rmq-openmldb and run its built-in plugins over the OpenMLDB RocketMQ
# guide's employee_test rows: the JsonConverter envelope and plain JSON go
# through the WASM JSON converter and a filter + mask transform chain, and
# come out as typed OpenMLDB rows (and clear per-message failures).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

build_host
log "built-in plugins"
"$RMQ_OPENMLDB_BIN" plugin list
log "employee_test messages -> json-converter -> rows"
"$RMQ_OPENMLDB_BIN" plugin test json-converter \
  --input examples/plugin-test/employee_test.jsonl \
  --table-schema examples/plugin-test/employee_test.schema.json
log "the same, keeping people aged 20 or more and masking their names"
"$RMQ_OPENMLDB_BIN" plugin test json-converter \
  --input examples/plugin-test/employee_test.jsonl \
  --table-schema examples/plugin-test/employee_test.schema.json \
  --transform filter --config field=howold --config op=ge --config value=20 \
  --transform mask --config fields=name --config keep.last=2
