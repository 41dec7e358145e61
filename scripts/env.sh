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

# ZooKeeper from Debian's packages, for the OpenMLDB stand-in's native side
# (tests start their own private servers from its jar).
ensure_zookeeper() {
  [ -f /usr/share/java/zookeeper.jar ] && return
  log "installing ZooKeeper from Debian's packages"
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && created_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q zookeeper >/dev/null 2>&1 || { apt-get update -q && apt-get install -y -q zookeeper >/dev/null; }
  [ "$created_policy" = 1 ] && rm -f "$policy"
  [ -f /usr/share/java/zookeeper.jar ] || die "/usr/share/java/zookeeper.jar is missing after installing zookeeper"
}

# The official OpenMLDB SDK (PyPI openmldb, the C++ SQLClusterRouter the Java
# and Python clients wrap) in a private venv: the judge of the stand-in's
# native side and of our native writer.
OPENMLDB_SDK_VERSION=0.9.2
OPENMLDB_SDK_PYTHON="$HOME/.cache/rmq-openmldb/toolchains/openmldb-sdk/bin/python"
export OPENMLDB_SDK_PYTHON
ensure_openmldb_sdk() {
  if ! "$OPENMLDB_SDK_PYTHON" -c "import openmldb, importlib.metadata as m; assert m.version('openmldb') == '$OPENMLDB_SDK_VERSION'" 2>/dev/null; then
    log "installing openmldb $OPENMLDB_SDK_VERSION from PyPI into ~/.cache/rmq-openmldb/toolchains/openmldb-sdk"
    python3 -m venv "$HOME/.cache/rmq-openmldb/toolchains/openmldb-sdk"
    "$HOME/.cache/rmq-openmldb/toolchains/openmldb-sdk/bin/pip" install -q "openmldb==$OPENMLDB_SDK_VERSION"
  fi
}
