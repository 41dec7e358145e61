#!/usr/bin/env bash
# The main job, end to end on this machine: Apache RocketMQ and MariaDB on
# loopback, OpenMLDB (the project's stand-in, found through a private
# ZooKeeper on 127.0.0.1:2181 as the guide's connection.url says, unless
# OPENMLDB_ZK=host:port and OPENMLDB_APISERVER=host:port name a real
# cluster and its APIServer, used to read the table back), the rmq-openmldb worker,
# the OpenMLDB guide's sink connector created over its REST API,
# employee_test messages (plus three bad ones) produced into the topic, then
# the guide's MySQL side: its SQL, its source connector, and a row inserted
# in MySQL arriving in OpenMLDB. The resulting table is printed.
# KEEP_RUNNING=1 leaves everything running afterwards (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

build_host
cargo build --release --locked -p openmldb-standin
scripts/rocketmq.sh start
scripts/mariadb.sh start

WORK="$PWD/.cache/quickstart"
rm -rf "$WORK"
mkdir -p "$WORK/plugins"
STANDIN_PID=
WORKER_PID=
cleanup() {
  [ -n "$WORKER_PID" ] && kill "$WORKER_PID" 2>/dev/null && wait "$WORKER_PID" 2>/dev/null || true
  [ -n "$STANDIN_PID" ] && kill "$STANDIN_PID" 2>/dev/null || true
  scripts/rocketmq.sh stop
  scripts/mariadb.sh stop
}
trap cleanup EXIT

ensure_zookeeper
ZK="${OPENMLDB_ZK:-127.0.0.1:2181}"
APISERVER="${OPENMLDB_APISERVER:-}"
if [ -z "${OPENMLDB_ZK:-}" ]; then
  APISERVER=127.0.0.1:9080
  log "no OPENMLDB_ZK given: starting the OpenMLDB STAND-IN (in memory, for trying things out; it is not OpenMLDB): a private ZooKeeper on $ZK, its nameserver and tablets registered under /openmldb_cluster, and its APIServer side on $APISERVER"
  "$CARGO_TARGET_DIR/release/openmldb-standin" --listen "$APISERVER" --start-zookeeper "${ZK##*:}" &
  STANDIN_PID=$!
  # Ready when ZooKeeper holds the nameserver's registration.
  for _ in $(seq 1 300); do
    kill -0 "$STANDIN_PID" 2>/dev/null || die "the stand-in exited"
    if (exec 3<>"/dev/tcp/${ZK%:*}/${ZK##*:}" && printf ruok >&3 && read -r -t 1 -n 4 answer <&3 && [ "$answer" = imok ]) 2>/dev/null; then
      sleep 1
      break
    fi
    sleep 0.2
  done
else
  [ -n "$APISERVER" ] || die "OPENMLDB_ZK names a real cluster: set OPENMLDB_APISERVER too, to read the table back"
  log "writing into the real OpenMLDB cluster at zk=$ZK (reading back through its APIServer $APISERVER)"
fi

HTTP=127.0.0.1:8082
cat > "$WORK/worker.toml" <<TOML
namesrv_addr = "127.0.0.1:9876"
http_addr = "$HTTP"
data_dir = "$WORK/data"
plugins_dir = "$WORK/plugins"
worker_id = "quickstart"
TOML
log "starting the worker: rmq-openmldb run --config $WORK/worker.toml"
RMQ_OPENMLDB_LOG=info "$RMQ_OPENMLDB_BIN" run --config "$WORK/worker.toml" 2> "$WORK/worker.log" &
WORKER_PID=$!
for _ in $(seq 1 100); do
  curl -sf "http://$HTTP/v1/worker" > /dev/null && break
  kill -0 "$WORKER_PID" 2>/dev/null || { cat "$WORK/worker.log"; die "the worker exited"; }
  sleep 0.2
done

TOPIC=employee_test
log "producing employee_test messages (JsonConverter envelopes, plain JSON, and three bad ones) into topic $TOPIC"
"$RMQ_OPENMLDB_BIN" rocketmq produce --topic "$TOPIC" --lines examples/plugin-test/employee_test.jsonl

CONNECTOR=$(sed "s/zk=127.0.0.1:2181/zk=$ZK/" examples/connectors/openmldb-sink.json)
log "creating the OpenMLDB guide's sink connector (its connection.url as published, plus auto.create's index and a dead-letter topic):"
echo "curl -X POST -H 'Content-Type: application/json' http://$HTTP/connectors/jdbc-openmldb-sink-test -d '$CONNECTOR'"
curl -s -X POST -H 'Content-Type: application/json' "http://$HTTP/connectors/jdbc-openmldb-sink-test" -d "$CONNECTOR"
echo

sql() {
  curl -s -X POST "http://$APISERVER/dbs/rocketmq_test" -H 'Content-Type: application/json' \
    -d "{\"mode\":\"online\",\"sql\":\"$1\"}"
}
log "waiting for the rows"
for _ in $(seq 1 150); do
  sql "select count(*) from employee_test" | grep -q '"data":\[\[5\]\]' && break
  sleep 0.2
done

log "the guide's MySQL side: examples/mysql/employee_test.sql into MariaDB database test_database"
scripts/mariadb.sh sql -e "CREATE DATABASE IF NOT EXISTS test_database"
scripts/mariadb.sh sql test_database < examples/mysql/employee_test.sql
log "creating the guide's MySQL source connector (examples/connectors/mysql-source.json, comments and all):"
echo "curl -X POST -H 'Content-Type: application/json' http://$HTTP/connectors/jdbc-mysql-source-test -d @examples/connectors/mysql-source.json"
curl -s -X POST -H 'Content-Type: application/json' "http://$HTTP/connectors/jdbc-mysql-source-test" \
  --data-binary @examples/connectors/mysql-source.json | sed 's/"connection.password":"[^"]*"/"connection.password":"********"/'
echo
log "its four rows match the ones produced above (INSERT_OR_IGNORE keeps one copy); inserting a new row in MySQL:"
echo "INSERT INTO employee_test VALUES (16, 'name-16', 31, 1, 'company', 4500, '2022-03-01 09:30:00');"
scripts/mariadb.sh sql test_database -e "INSERT INTO employee_test VALUES (16, 'name-16', 31, 1, 'company', 4500, '2022-03-01 09:30:00')"
for _ in $(seq 1 150); do
  sql "select count(*) from employee_test" | grep -q '"data":\[\[6\]\]' && break
  sleep 0.2
done

log "source connector status (GET /connectors/jdbc-mysql-source-test/status):"
curl -s "http://$HTTP/connectors/jdbc-mysql-source-test/status"
echo
log "sink connector status (GET /connectors/jdbc-openmldb-sink-test/status):"
curl -s "http://$HTTP/connectors/jdbc-openmldb-sink-test/status"
echo
log "OpenMLDB table rocketmq_test.employee_test (select * from employee_test):"
sql "select * from employee_test"
echo
log "dead-lettered messages are in topic employee_test_dlq, each with its reason in property connect.errors.reason"
log "per-task counters: curl http://$HTTP/v1/connectors/jdbc-openmldb-sink-test ; worker log: $WORK/worker.log"
if [ "${KEEP_RUNNING:-0}" = 1 ]; then
  log "KEEP_RUNNING=1: the worker listens on http://$HTTP; Ctrl-C stops everything"
  wait "$WORKER_PID"
fi
