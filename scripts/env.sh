# Shared settings of the project's scripts (sourced, not run).

# Builds go to a folder outside the clone so a warm machine reuses them.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rmq-openmldb/target}"
RMQ_OPENMLDB_BIN="$CARGO_TARGET_DIR/release/rmq-openmldb"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf '\033[1;31merror: %s\033[0m\n' "$*" >&2; exit 1; }

# The status page test drives Debian's headless Chromium.
ensure_chromium() {
  if ! command -v chromium >/dev/null; then
    log "installing Chromium from Debian's packages (for the status page test)"
    apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q && apt-get install -y -q chromium >/dev/null; }
  fi
}

# The built-in plugins are compiled for wasm32-wasip2.
ensure_rust_targets() {
  if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    log "installing the wasm32-wasip2 Rust target"
    rustup target add wasm32-wasip2
  fi
}

build_host() {
  ensure_rust_targets
  log "building rmq-openmldb (first build compiles wasmtime: several minutes on 2 cores)"
  cargo build --release --locked -p rmq-openmldb
}

# schemathesis (PyPI) in a private venv, for the reliability suite's REST fuzzing.
SCHEMATHESIS_VERSION=4.32.5
SCHEMATHESIS_BIN="$HOME/.cache/rmq-openmldb/toolchains/schemathesis/bin/schemathesis"
ensure_schemathesis() {
  if ! "$SCHEMATHESIS_BIN" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    log "installing schemathesis $SCHEMATHESIS_VERSION from PyPI into ~/.cache/rmq-openmldb/toolchains/schemathesis"
    python3 -m venv "$HOME/.cache/rmq-openmldb/toolchains/schemathesis"
    "$HOME/.cache/rmq-openmldb/toolchains/schemathesis/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
  fi
}
