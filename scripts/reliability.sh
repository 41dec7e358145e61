#!/usr/bin/env bash
# The reliability suite in one command: starts Apache RocketMQ on loopback,
# installs schemathesis (PyPI, a private venv) for the REST fuzzing, and
# runs `cargo bench --bench reliability`: the worker binary SIGKILLed under
# load (through the APIServer and natively to the tablets), OpenMLDB (the
# stand-in) down, slow and failing rows, the broker
# restarted, malformed and trapping messages, REST fuzzing. It prints one
# table and fails on any lost message.
#   scripts/reliability.sh           the quick form (as in CI): 3 kills, a 10 s outage
#   scripts/reliability.sh --long    20 kills, a 60 s outage, more fuzzing
#   scripts/reliability.sh --quick --only cluster    one group of scenarios
#     (kill, outage, broker, cluster, poison, fuzz)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

ensure_rust_targets
ensure_schemathesis
ensure_zookeeper
scripts/rocketmq.sh start
trap 'scripts/rocketmq.sh stop' EXIT
mode="--quick"
case "${1:-}" in
  --long) mode="--long"; shift ;;
  --quick) shift ;;
esac
log "building (the first build takes several minutes)"
cargo bench --locked -p rmq-openmldb --bench reliability --no-run
SCHEMATHESIS="$SCHEMATHESIS_BIN" cargo bench --locked -p rmq-openmldb --bench reliability -- "$mode" "$@"
