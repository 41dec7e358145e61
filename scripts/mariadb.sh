#!/usr/bin/env bash
# MariaDB on loopback, for the MySQL source's tests, its benchmark and the
# quickstart.
#
#   scripts/mariadb.sh start    install MariaDB from Debian's packages if missing, start a private server, wait for it
#   scripts/mariadb.sh stop     stop it (by PID) and delete its data
#   scripts/mariadb.sh status   PID and version
#   scripts/mariadb.sh sql      a client session as the test user (`scripts/mariadb.sh sql -e 'SHOW DATABASES'`)
#
# The server is our own process with its own data folder, never the
# system's service. It listens on 127.0.0.1 only and has one user for
# connectors and tests. Settings (environment): MARIADB_PORT (3306),
# MARIADB_USER (rmq), MARIADB_PASSWORD (rmq-secret), MARIADB_RUN_DIR (a
# folder under /tmp).
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${MARIADB_PORT:-3306}"
USER_NAME="${MARIADB_USER:-rmq}"
PASSWORD="${MARIADB_PASSWORD:-rmq-secret}"
RUN_DIR="${MARIADB_RUN_DIR:-${TMPDIR:-/tmp}/rmq-openmldb-mariadb-$PORT}"
SOCKET="$RUN_DIR/mariadb.sock"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'mariadb.sh: %s\n' "$*" >&2; exit 1; }

ensure_installed() {
  command -v mariadbd >/dev/null && command -v mariadb-install-db >/dev/null && command -v mariadb >/dev/null && return
  log "installing MariaDB from Debian's packages"
  # The package's own service is not wanted: policy-rc.d keeps it from starting.
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && created_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q mariadb-server mariadb-client >/dev/null 2>&1 \
    || { apt-get update -q && apt-get install -y -q mariadb-server mariadb-client >/dev/null; }
  [ "$created_policy" = 1 ] && rm -f "$policy"
  command -v mariadbd >/dev/null || die "mariadbd is not on PATH after installing mariadb-server"
}

pid_alive() { [ -f "$RUN_DIR/mariadb.pid" ] && kill -0 "$(cat "$RUN_DIR/mariadb.pid")" 2>/dev/null; }

root_sql() { mariadb --no-defaults -uroot --socket="$SOCKET" "$@"; }

start() {
  if pid_alive; then
    log "MariaDB already running on 127.0.0.1:$PORT (pid $(cat "$RUN_DIR/mariadb.pid"))"
    return
  fi
  ensure_installed
  mkdir -p "$RUN_DIR"
  if [ ! -d "$RUN_DIR/data/mysql" ]; then
    mariadb-install-db --no-defaults --user="$(id -un)" --datadir="$RUN_DIR/data" \
      --auth-root-authentication-method=normal --skip-test-db >"$RUN_DIR/install.log" 2>&1 \
      || die "mariadb-install-db failed; see $RUN_DIR/install.log"
  fi
  log "starting MariaDB on 127.0.0.1:$PORT (data in $RUN_DIR)"
  mariadbd --no-defaults --user="$(id -un)" --datadir="$RUN_DIR/data" --socket="$SOCKET" \
    --port="$PORT" --bind-address=127.0.0.1 --pid-file="$RUN_DIR/mariadb.pid" \
    --log-error="$RUN_DIR/error.log" --skip-name-resolve --character-set-server=utf8mb4 \
    --innodb-buffer-pool-size=128M --innodb-flush-log-at-trx-commit=2 --max-connections=200 \
    >/dev/null 2>&1 &
  for _ in $(seq 150); do
    if root_sql -e 'SELECT 1' >/dev/null 2>&1; then break; fi
    sleep 0.2
  done
  root_sql -e 'SELECT 1' >/dev/null 2>&1 || die "MariaDB did not come up within 30s; see $RUN_DIR/error.log"
  root_sql <<SQL
CREATE USER IF NOT EXISTS '$USER_NAME'@'127.0.0.1' IDENTIFIED BY '$PASSWORD';
CREATE USER IF NOT EXISTS '$USER_NAME'@'localhost' IDENTIFIED BY '$PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO '$USER_NAME'@'127.0.0.1';
GRANT ALL PRIVILEGES ON *.* TO '$USER_NAME'@'localhost';
SQL
  log "MariaDB is up: mysql://$USER_NAME@127.0.0.1:$PORT (password in MARIADB_PASSWORD, default rmq-secret)"
}

stop() {
  if pid_alive; then
    local pid
    pid=$(cat "$RUN_DIR/mariadb.pid")
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
    log "MariaDB stopped"
  fi
  rm -rf "$RUN_DIR"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status)
    if pid_alive; then
      echo "mariadb: running, pid $(cat "$RUN_DIR/mariadb.pid"), 127.0.0.1:$PORT"
      root_sql -N -e 'SELECT VERSION()'
    else
      echo "mariadb: not running"; exit 1
    fi ;;
  sql) shift; mariadb --no-defaults -h127.0.0.1 -P"$PORT" -u"$USER_NAME" -p"$PASSWORD" "$@" ;;
  *) die "usage: scripts/mariadb.sh start|stop|status|sql [ARGS...]" ;;
esac
