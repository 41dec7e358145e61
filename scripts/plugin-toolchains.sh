#!/usr/bin/env bash
# Install the toolchains `rmq-openmldb plugin build` drives, from the package
# registries only, on a fresh Debian machine.
#
#   scripts/plugin-toolchains.sh [all|rust|python|js|c|go]...   (default: all)
#   scripts/plugin-toolchains.sh --print-dir                  where Python and JS tools go
#
#   rust     the wasm32-wasip2 target (rustup)
#   python   componentize-py, in a private virtualenv (PyPI)
#   js       @bytecodealliance/componentize-js, in a private npm folder (npm)
#   c        clang-19, lld-19, wasi-libc and clang's wasm32 runtime (Debian);
#            wit-bindgen's C generator and `component new` with the WASI
#            preview 1 adapter are built into rmq-openmldb itself
#   go       Go >= 1.25 (stock Go, GOOS=wasip1): the one on PATH if new
#            enough, else Go's own toolchain module from the Go module proxy
#            into $RMQ_OPENMLDB_TOOLCHAINS/go; the Go generator and its
#            support module are built into rmq-openmldb
#
# Python and JS tools go to $RMQ_OPENMLDB_TOOLCHAINS (default
# ~/.cache/rmq-openmldb/toolchains), where `plugin build` looks for them
# when they are not on PATH. Running it again is cheap: what is there stays.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLCHAINS="${RMQ_OPENMLDB_TOOLCHAINS:-$HOME/.cache/rmq-openmldb/toolchains}"
# Versions checked against wasmtime 48 (docs/plugins.md, "Toolchains").
COMPONENTIZE_PY_VERSION=0.25.1
COMPONENTIZE_JS_VERSION=0.23.0
CLANG_VERSION=19
GO_MINIMUM=1.25
GO_VERSION=1.26.8

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf '\033[1;31merror: %s\033[0m\n' "$*" >&2; exit 1; }

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "$@" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "$@" >/dev/null; }
}

install_rust() {
  rustup target list --installed | grep -qx wasm32-wasip2 && return
  log "installing the wasm32-wasip2 Rust target"
  rustup target add wasm32-wasip2
}

install_python() {
  local venv="$TOOLCHAINS/python"
  if [ -x "$venv/bin/componentize-py" ] \
     && "$venv/bin/pip" show componentize-py 2>/dev/null | grep -qx "Version: $COMPONENTIZE_PY_VERSION"; then
    return
  fi
  command -v python3 >/dev/null || apt_install python3 python3-venv
  log "installing componentize-py $COMPONENTIZE_PY_VERSION into $venv"
  python3 -m venv "$venv" || { apt_install python3-venv && python3 -m venv "$venv"; }
  "$venv/bin/pip" install -q --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION"
  "$venv/bin/componentize-py" --version >/dev/null || die "componentize-py does not run"
}

install_js() {
  local dir="$TOOLCHAINS/js"
  if [ -x "$dir/node_modules/.bin/componentize-js" ] \
     && grep -q "\"version\": \"$COMPONENTIZE_JS_VERSION\"" "$dir/node_modules/@bytecodealliance/componentize-js/package.json" 2>/dev/null; then
    return
  fi
  command -v npm >/dev/null || apt_install nodejs npm
  log "installing @bytecodealliance/componentize-js $COMPONENTIZE_JS_VERSION into $dir"
  mkdir -p "$dir"
  [ -f "$dir/package.json" ] || printf '{"name":"rmq-openmldb-js-toolchain","private":true}\n' > "$dir/package.json"
  (cd "$dir" && npm install --silent --no-audit --no-fund "@bytecodealliance/componentize-js@$COMPONENTIZE_JS_VERSION")
  [ -x "$dir/node_modules/.bin/componentize-js" ] || die "componentize-js was not installed"
}

install_c() {
  if command -v "clang-$CLANG_VERSION" >/dev/null && [ -f /usr/lib/wasm32-wasi/libc.a ] \
     && ls /usr/lib/llvm-$CLANG_VERSION/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a >/dev/null 2>&1 \
     && command -v "wasm-ld-$CLANG_VERSION" >/dev/null; then
    return
  fi
  log "installing clang-$CLANG_VERSION, lld-$CLANG_VERSION and wasi-libc from Debian's packages"
  apt_install "clang-$CLANG_VERSION" "lld-$CLANG_VERSION" wasi-libc "libclang-rt-$CLANG_VERSION-dev-wasm32"
}

# True when `$1 version` reports Go >= GO_MINIMUM.
go_is_recent() {
  local version
  version=$(GOTOOLCHAIN=local "$1" env GOVERSION 2>/dev/null) || return 1
  version=${version#go}
  [ "$(printf '%s\n%s\n' "$GO_MINIMUM" "$version" | sort -V | head -1)" = "$GO_MINIMUM" ]
}

install_go() {
  if command -v go >/dev/null && go_is_recent "$(command -v go)"; then return; fi
  local dir="$TOOLCHAINS/go"
  if [ -x "$dir/bin/go" ] && go_is_recent "$dir/bin/go"; then return; fi
  local arch
  case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) die "no Go toolchain for $(uname -m)" ;; esac
  local module="v0.0.1-go$GO_VERSION.linux-$arch"
  log "installing Go $GO_VERSION into $dir (golang.org/toolchain $module, from the Go module proxy)"
  command -v unzip >/dev/null || apt_install unzip
  local tmp
  tmp=$(mktemp -d)
  curl -fsSL -o "$tmp/go.zip" "https://proxy.golang.org/golang.org/toolchain/@v/$module.zip"
  unzip -q "$tmp/go.zip" -d "$tmp"
  rm -rf "$dir"
  mkdir -p "$TOOLCHAINS"
  mv "$tmp/golang.org/toolchain@$module" "$dir"
  chmod +x "$dir/bin/"* "$dir/pkg/tool/"*/* 2>/dev/null || true
  rm -rf "$tmp"
  go_is_recent "$dir/bin/go" || die "the Go in $dir does not run"
}

[ "${1:-}" = "--print-dir" ] && { echo "$TOOLCHAINS"; exit 0; }
languages=("$@")
[ ${#languages[@]} -eq 0 ] && languages=(all)
for language in "${languages[@]}"; do
  case "$language" in
    all) install_rust; install_python; install_js; install_c; install_go ;;
    rust) install_rust ;;
    python) install_python ;;
    js|javascript) install_js ;;
    c) install_c ;;
    go|golang) install_go ;;
    *) die "unknown language '$language' (expected all, rust, python, js, c or go)" ;;
  esac
done
log "plugin toolchains ready (Python, JS and, when PATH has none, Go tools in $TOOLCHAINS)"
