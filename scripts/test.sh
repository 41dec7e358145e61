#!/usr/bin/env bash
# Install what the tests need on a fresh machine (wasm32-wasip2, the plugin
# toolchains for Python, JavaScript and C, Java and Maven, Chromium,
# MariaDB, ZooKeeper, the official OpenMLDB SDK from PyPI), start Apache RocketMQ and MariaDB on loopback, run every test,
# and stop both again.
#   ./scripts/test.sh            all tests
#   ./scripts/test.sh -p NAME    extra arguments go to `cargo test`
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
