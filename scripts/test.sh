#!/usr/bin/env bash
# Install what the tests need on a fresh machine, then run every test.
#   ./scripts/test.sh            all tests
#   ./scripts/test.sh -p NAME    extra arguments go to `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

ensure_rust_targets
cargo test --release --locked --workspace "$@"
