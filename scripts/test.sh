#!/usr/bin/env bash
# Install what the tests need on a fresh machine (wasm32-wasip2, the plugin
# toolchains for Python, JavaScript, C and Go, Java and Maven, Chromium,
# MariaDB, ZooKeeper, the official OpenMLDB SDK from PyPI), start Apache RocketMQ and MariaDB on loopback, run every test,
# and stop both again.
#   ./scripts/test.sh            all tests
#   ./scripts/test.sh -p NAME    extra arguments go to `cargo test` (and no native rerun)
#   RMQ_OPENMLDB_TEST_WRITER=native ./scripts/test.sh   every sink writes natively
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

ensure_rust_targets
scripts/plugin-toolchains.sh
ensure_chromium
ensure_zookeeper
ensure_openmldb_sdk
scripts/rocketmq.sh start
scripts/mariadb.sh start
trap 'scripts/rocketmq.sh stop; scripts/mariadb.sh stop' EXIT
cargo test --release --locked --workspace "$@"
# The end-to-end suites again, every sink writing natively (ZooKeeper and
# the stand-in's nameserver and tablets) instead of through its APIServer
# side; RMQ_OPENMLDB_TEST_WRITER=native runs everything that way.
if [ $# -eq 0 ] && [ "${RMQ_OPENMLDB_TEST_WRITER:-api}" != native ]; then
  log "the worker, sink and sandbox suites again, writing natively"
  RMQ_OPENMLDB_TEST_WRITER=native cargo test --release --locked --workspace \
    --test worker_api --test sink_exactness --test sink_task --test sandbox --test rebalancing
fi
