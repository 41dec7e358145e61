#!/usr/bin/env bash
# The benchmark table in one command: starts Apache RocketMQ on loopback
# (unless ROCKETMQ_NAMESRV names a running one), then runs the end-to-end
# benchmark, one table: the raw consume ceiling, then a worker process per
# scenario (the guide's pipeline into the APIServer and through the native
# writer, with 1 and 3 WASM transforms) with rows/s, the ratio to the
# ceiling of the same run, the worker's CPU µs per row split over the
# stages (consume, convert, transform, write, acknowledge, other) and its
# peak RSS; native vs WASM converter in a plain loop; latency percentiles
# at 1,000, 10,000 and 50,000 msg/s. Then the MySQL source's rate from a
# MariaDB table into a topic and the MySQL sink's back with its CPU per row
# (MariaDB started here too); then what a plugin costs in each language
# (the plugin toolchains are installed here when missing).
#   scripts/bench.sh            full run (200,000 messages, 15 s per rate)
#   scripts/bench.sh --quick    a shorter run (50,000 messages, 5 s per rate)
# OPENMLDB_APISERVER=host:port writes into a real APIServer instead of the
# in-process stand-in; BENCH_MESSAGES=N preloads N messages.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

ensure_rust_targets
ensure_zookeeper  # the native writer scenario
scripts/plugin-toolchains.sh
if [ -z "${ROCKETMQ_NAMESRV:-}" ]; then
  scripts/rocketmq.sh start
  trap 'scripts/rocketmq.sh stop' EXIT
fi
scripts/mariadb.sh start
trap 'scripts/mariadb.sh stop; [ -n "${ROCKETMQ_NAMESRV:-}" ] || scripts/rocketmq.sh stop' EXIT
log "building (the first build takes several minutes)"
cargo bench --locked -p rmq-openmldb --bench end_to_end --bench source --bench plugin_languages --no-run
cargo bench --locked -p rmq-openmldb --bench end_to_end -- "$@"
cargo bench --locked -p rmq-openmldb --bench source -- "$@"
cargo bench --locked -p rmq-openmldb --bench plugin_languages -- "$@"
