#!/usr/bin/env bash
# The main job, end to end on this machine: Apache RocketMQ on loopback, an
# OpenMLDB APIServer (the project's stand-in unless OPENMLDB_APISERVER=host:port
# names a real one), the OpenMLDB guide's sink connector running in
# rmq-openmldb, the guide's employee_test rows (plus three bad ones) produced
# into the topic, and the resulting table printed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

build_host
cargo build --release --locked -p openmldb-standin
scripts/rocketmq.sh start

STANDIN_PID=
cleanup() {
  [ -n "$STANDIN_PID" ] && kill "$STANDIN_PID" 2>/dev/null || true
  scripts/rocketmq.sh stop
}
trap cleanup EXIT

APISERVER="${OPENMLDB_APISERVER:-}"
if [ -z "$APISERVER" ]; then
  APISERVER=127.0.0.1:9080
  log "no OPENMLDB_APISERVER given: starting the OpenMLDB APIServer STAND-IN (in memory, for trying things out; not OpenMLDB) on $APISERVER"
  "$CARGO_TARGET_DIR/release/openmldb-standin" --listen "$APISERVER" &
  STANDIN_PID=$!
  sleep 1
else
  log "writing into the real OpenMLDB APIServer at $APISERVER"
fi

TOPIC=employee_test
CONFIG=$(mktemp --suffix=.json)
sed "s/\"openmldb.apiserver\": \"[^\"]*\"/\"openmldb.apiserver\": \"$APISERVER\"/" examples/connectors/openmldb-sink.json > "$CONFIG"
log "the connector (OpenMLDB's guide, plus the APIServer address):"
cat "$CONFIG"

log "producing employee_test messages (JsonConverter envelopes, plain JSON, and three bad ones) into topic $TOPIC"
"$RMQ_OPENMLDB_BIN" rocketmq produce --topic "$TOPIC" --lines examples/plugin-test/employee_test.jsonl

log "running the sink connector for 15 s"
"$RMQ_OPENMLDB_BIN" connector sink --config "$CONFIG" --name jdbc-openmldb-sink-test --for-seconds 15

log "OpenMLDB table rocketmq_test.employee_test:"
curl -s -X POST "http://$APISERVER/dbs/rocketmq_test" -H 'Content-Type: application/json' \
  -d '{"mode":"online","sql":"select * from employee_test"}'
echo
log "dead-lettered messages are in topic employee_test_dlq, each with its reason in property connect.errors.reason"
