#!/usr/bin/env bash
# Apache RocketMQ (name server + broker) on loopback, for tests, benchmarks
# and the quickstart.
#
#   scripts/rocketmq.sh start          fetch RocketMQ if needed, start both, wait until the broker is registered
#   scripts/rocketmq.sh stop           stop both (by PID) and delete the store
#   scripts/rocketmq.sh status         PIDs and the cluster as the name server sees it
#   scripts/rocketmq.sh stop-broker    stop only the broker (its store is kept)
#   scripts/rocketmq.sh start-broker   start the broker again on the kept store
#   scripts/rocketmq.sh admin ARGS...  run mqadmin (e.g. `admin topicList -n 127.0.0.1:9876`)
#
# RocketMQ's jars come from Maven Central through a minimal Maven project
# and are cached in .cache/rocketmq (git-ignored). Settings (environment):
#   ROCKETMQ_VERSION (5.3.3), ROCKETMQ_NAMESRV_PORT (9876),
#   ROCKETMQ_BROKER_PORT (10911), ROCKETMQ_RUN_DIR (a folder under /tmp).
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="${ROCKETMQ_VERSION:-5.3.3}"
NAMESRV_PORT="${ROCKETMQ_NAMESRV_PORT:-9876}"
BROKER_PORT="${ROCKETMQ_BROKER_PORT:-10911}"
RUN_DIR="${ROCKETMQ_RUN_DIR:-${TMPDIR:-/tmp}/rmq-openmldb-rocketmq-$NAMESRV_PORT}"
DIST="$PWD/.cache/rocketmq/$VERSION"
NAMESRV="127.0.0.1:$NAMESRV_PORT"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'rocketmq.sh: %s\n' "$*" >&2; exit 1; }

ensure_java() {
  if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
    log "installing Java 17 and Maven from Debian's packages"
    apt-get update -q && apt-get install -y -q openjdk-17-jdk-headless maven >/dev/null
  fi
}

fetch() {
  [ -f "$DIST/.complete" ] && return
  ensure_java
  log "fetching Apache RocketMQ $VERSION from Maven Central into $DIST"
  mkdir -p "$DIST"
  cat > "$DIST/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.rmq-openmldb</groupId>
  <artifactId>rocketmq-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.rocketmq</groupId><artifactId>rocketmq-namesrv</artifactId><version>$VERSION</version></dependency>
    <dependency><groupId>org.apache.rocketmq</groupId><artifactId>rocketmq-broker</artifactId><version>$VERSION</version></dependency>
    <dependency><groupId>org.apache.rocketmq</groupId><artifactId>rocketmq-tools</artifactId><version>$VERSION</version></dependency>
  </dependencies>
</project>
POM
  (cd "$DIST" && mvn -q -B dependency:copy-dependencies -DoutputDirectory=lib) || die "Maven could not fetch RocketMQ $VERSION"
  touch "$DIST/.complete"
}

# user.home decides where RocketMQ writes its own logs; the class path is a
# wildcard Java expands itself.
JAVA=(java -Duser.home="$RUN_DIR" -XX:+UseG1GC -cp "$DIST/lib/*")

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pid_alive() { [ -f "$RUN_DIR/$1.pid" ] && kill -0 "$(cat "$RUN_DIR/$1.pid")" 2>/dev/null; }

wait_for() { # what timeout-seconds command...
  local what=$1 timeout=$2; shift 2
  for _ in $(seq $((timeout * 5))); do
    if "$@"; then return 0; fi
    sleep 0.2
  done
  die "$what did not come up within ${timeout}s; see $RUN_DIR/*.log"
}

admin() {
  "${JAVA[@]}" -Xmx128m org.apache.rocketmq.tools.command.MQAdminStartup "$@"
}

broker_registered() {
  admin clusterList -n "$NAMESRV" 2>/dev/null | grep -q "127.0.0.1:$BROKER_PORT"
}

start_namesrv() {
  pid_alive namesrv && return
  port_open "$NAMESRV_PORT" && die "port $NAMESRV_PORT is taken by another process"
  cat > "$RUN_DIR/namesrv.conf" <<CONF
listenPort=$NAMESRV_PORT
bindAddress=127.0.0.1
CONF
  log "starting the name server on $NAMESRV"
  ROCKETMQ_HOME="$RUN_DIR" nohup "${JAVA[@]}" -Xms128m -Xmx256m org.apache.rocketmq.namesrv.NamesrvStartup \
    -c "$RUN_DIR/namesrv.conf" > "$RUN_DIR/namesrv.log" 2>&1 &
  echo $! > "$RUN_DIR/namesrv.pid"
  wait_for "the name server" 60 port_open "$NAMESRV_PORT"
}

start_broker() {
  pid_alive broker && return
  port_open "$BROKER_PORT" && die "port $BROKER_PORT is taken by another process"
  mkdir -p "$RUN_DIR/store"
  cat > "$RUN_DIR/broker.conf" <<CONF
brokerClusterName=DefaultCluster
brokerName=broker-a
brokerId=0
brokerIP1=127.0.0.1
bindAddress=127.0.0.1
listenPort=$BROKER_PORT
haListenPort=$((BROKER_PORT + 1))
namesrvAddr=$NAMESRV
autoCreateTopicEnable=true
autoCreateSubscriptionGroup=true
defaultTopicQueueNums=8
storePathRootDir=$RUN_DIR/store
storePathCommitLog=$RUN_DIR/store/commitlog
mappedFileSizeCommitLog=134217728
flushDiskType=ASYNC_FLUSH
diskMaxUsedSpaceRatio=95
# A pull returns at most 32 messages by default, which caps a consumer at a
# few thousand messages/s; let one pull carry a consumer's whole batch.
maxTransferCountOnMessageInMemory=1024
maxTransferBytesOnMessageInMemory=4194304
maxTransferCountOnMessageInDisk=256
maxTransferBytesOnMessageInDisk=1048576
CONF
  log "starting the broker on 127.0.0.1:$BROKER_PORT"
  ROCKETMQ_HOME="$RUN_DIR" nohup "${JAVA[@]}" -Xms256m -Xmx512m -XX:MaxDirectMemorySize=256m \
    org.apache.rocketmq.broker.BrokerStartup -c "$RUN_DIR/broker.conf" > "$RUN_DIR/broker.log" 2>&1 &
  echo $! > "$RUN_DIR/broker.pid"
  wait_for "the broker" 90 port_open "$BROKER_PORT"
  wait_for "the broker's registration" 60 broker_registered
  log "RocketMQ $VERSION is up: name server $NAMESRV, broker 127.0.0.1:$BROKER_PORT"
}

stop_one() {
  local name=$1
  if pid_alive "$name"; then
    local pid; pid=$(cat "$RUN_DIR/$name.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
    log "stopped the $name (pid $pid)"
  fi
  rm -f "$RUN_DIR/$name.pid"
}

case "${1:-}" in
  start)
    fetch
    mkdir -p "$RUN_DIR"
    if ! pid_alive broker; then rm -rf "$RUN_DIR/store"; fi
    start_namesrv
    start_broker
    ;;
  start-broker) fetch; mkdir -p "$RUN_DIR"; start_broker ;;
  stop-broker) stop_one broker ;;
  stop)
    stop_one broker
    stop_one namesrv
    rm -rf "$RUN_DIR/store"
    ;;
  status)
    for name in namesrv broker; do
      if pid_alive "$name"; then echo "$name: running (pid $(cat "$RUN_DIR/$name.pid"))"; else echo "$name: stopped"; fi
    done
    if pid_alive namesrv; then admin clusterList -n "$NAMESRV" 2>/dev/null || true; fi
    ;;
  admin) shift; fetch; admin "$@" ;;
  *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
