//! The reliability suite: the worker binary under faults, against the real
//! broker of scripts/rocketmq.sh and the OpenMLDB stand-in (in this
//! process, with its fault injection). It prints one table, scenario by
//! scenario: messages sent, rows written, dead-lettered, duplicates, lost,
//! recovery seconds and the worker's peak RSS, and exits non-zero when a
//! message is lost, a duplicate appears where none may, or a check fails.
//!
//! Scenarios:
//! - the worker SIGKILLed under load, restarted each time: with
//!   INSERT_OR_IGNORE every id exactly once; with plain INSERT the
//!   duplicates are counted and must stay within the in-flight window;
//! - OpenMLDB refusing connections, then answering in 500 ms, then failing
//!   10% of rows with a passing code: nothing lost, no duplicate, recovery
//!   without intervention;
//! - the broker stopped and restarted under load;
//! - three workers of one cluster (8 queues, 8 tasks, plain INSERT): one
//!   SIGKILLed under load (duplicates at most one batch per queue, the time
//!   until its queues are written again), and a rolling restart of all
//!   three (nothing lost, nothing duplicated);
//! - 1% malformed messages and one that makes the converter trap: exactly
//!   those dead-lettered, every good row written, the connector RUNNING;
//! - REST fuzzing of `/v1/openapi.json` with schemathesis: no 5xx, the
//!   worker alive, and a connector made before unchanged.
//!
//! Run: `scripts/reliability.sh [--quick|--long]` (quick: 3 kills and short
//! outages, in CI; long: 20 kills, a 60 s outage, more fuzzing).

use openmldb_standin::store::Value;
use openmldb_standin::{NativeSide, StandIn, StandInOptions, ZooKeeper};
use rmq_openmldb::openmldb::ApiClient;
use rmq_openmldb::rocketmq::{OutgoingMessage, Producer, RocketMqClient};
use rocketmq_client_rust::ClientRuntime;
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tempfile::TempDir;

const NAMESRV: &str = "127.0.0.1:9876";
const DATABASE: &str = "rocketmq_test";
const QUEUES: i32 = 8;

/// How hard each scenario pushes.
#[derive(Clone, Copy)]
struct Plan {
    kills: usize,
    kill_messages: u64,
    rate: u64,
    refuse: Duration,
    slow: Duration,
    flaky: Duration,
    broker_down: Duration,
    fuzz_examples: u32,
}

const QUICK: Plan = Plan {
    kills: 3,
    kill_messages: 30_000,
    rate: 3_000,
    refuse: Duration::from_secs(10),
    slow: Duration::from_secs(5),
    flaky: Duration::from_secs(5),
    broker_down: Duration::from_secs(5),
    fuzz_examples: 25,
};

const LONG: Plan = Plan {
    kills: 20,
    kill_messages: 200_000,
    rate: 5_000,
    refuse: Duration::from_secs(60),
    slow: Duration::from_secs(30),
    flaky: Duration::from_secs(30),
    broker_down: Duration::from_secs(20),
    fuzz_examples: 200,
};

/// One line of the table.
#[derive(Default)]
struct Outcome {
    scenario: String,
    sent: u64,
    written: u64,
    dead_lettered: u64,
    duplicates: u64,
    /// Rows stored twice because the producer sent their batch again (a
    /// send that failed on its side after the broker stored it): in the
    /// topic twice, so not the worker's duplicates.
    resent: u64,
    lost: u64,
    recovery_seconds: Option<f64>,
    peak_rss_mb: f64,
    /// Why the scenario failed, if it did.
    failure: Option<String>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let plan = if args.iter().any(|a| a == "--long") { LONG } else { QUICK };
    let client = RocketMqClient::new().expect("RocketMQ client runtime");
    let runtime = client.client();
    let outcomes = client.run(async move {
        let args = args;
        let standin = StandIn::start("127.0.0.1:0".parse().unwrap(), StandInOptions::default()).await.unwrap();
        let api = ApiClient::new(&standin.addr.to_string(), Duration::from_secs(10)).unwrap();
        assert!(api.execute(DATABASE, &format!("CREATE DATABASE {DATABASE}")).await.unwrap().is_ok());
        let mut producer = Producer::start(runtime.clone(), NAMESRV, &unique("reliability")).await.unwrap();
        let zookeeper = ZooKeeper::start().expect("ZooKeeper starts (scripts/zookeeper.sh install)");
        let native = NativeSide::start(standin.state.clone(), &zookeeper.hosts(), "/openmldb_cluster").await.unwrap();
        let harness = Harness { standin, native, _zookeeper: zookeeper, api, runtime, plan };
        let mut outcomes = Vec::new();
        // `--only NAME`: the scenarios of one group (kill, outage, broker,
        // cluster, poison, fuzz).
        let only = args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1)).cloned();
        let runs = |group: &str| only.as_deref().is_none_or(|o| o == group);
        if runs("kill") {
            for (mode, path) in [
                ("INSERT_OR_IGNORE", WritePath::Api),
                ("INSERT", WritePath::Api),
                ("INSERT_OR_IGNORE", WritePath::Native),
            ] {
                outcomes.push(harness.killed_under_load(&mut producer, mode, path).await);
            }
        }
        if runs("outage") {
            outcomes.push(harness.openmldb_outage(&mut producer).await);
        }
        if runs("broker") {
            outcomes.push(harness.broker_restart(&mut producer).await);
        }
        if runs("cluster") {
            outcomes.push(harness.cluster_worker_killed(&mut producer).await);
            outcomes.push(harness.cluster_rolling_restart(&mut producer).await);
        }
        if runs("poison") {
            outcomes.push(harness.poison(&mut producer).await);
        }
        if runs("fuzz") {
            outcomes.push(harness.rest_fuzzing().await);
        }
        producer.shutdown().await;
        outcomes
    });
    print_table(&outcomes);
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.failure.is_some()).collect();
    for outcome in &failed {
        eprintln!("FAILED {}: {}", outcome.scenario, outcome.failure.as_deref().unwrap_or_default());
    }
    if !failed.is_empty() {
        std::process::exit(1);
    }
}

fn print_table(outcomes: &[Outcome]) {
    println!();
    println!(
        "| scenario | sent | written | dead-lettered | duplicates | resent by producer | lost | recovery s | peak RSS MB | result |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for o in outcomes {
        let recovery = o.recovery_seconds.map(|s| format!("{s:.1}")).unwrap_or_else(|| "-".into());
        let result = if o.failure.is_some() { "FAILED" } else { "ok" };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {recovery} | {:.0} | {result} |",
            o.scenario, o.sent, o.written, o.dead_lettered, o.duplicates, o.resent, o.lost, o.peak_rss_mb
        );
    }
    println!();
}

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{name}_{}_{}", std::process::id(), nanos % 1_000_000_000)
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A worker process as users run it.
struct Worker {
    child: Child,
    base: String,
    config: PathBuf,
    log: PathBuf,
}

impl Worker {
    async fn start(dir: &Path, extra: &str) -> Worker {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        std::fs::create_dir_all(dir).unwrap();
        let config = dir.join("worker.toml");
        std::fs::write(
            &config,
            format!(
                "namesrv_addr = \"{NAMESRV}\"\nhttp_addr = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n{extra}",
                dir.join("store").display()
            ),
        )
        .unwrap();
        let log = dir.join("worker.log");
        let mut worker = Worker { child: spawn(&config, &log), base: format!("http://127.0.0.1:{port}"), config, log };
        worker.wait_ready().await;
        worker
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::get(format!("{}/v1/worker", self.base)).await.is_err() {
            assert!(Instant::now() < deadline, "the worker did not start; log:\n{}", self.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    async fn restart(&mut self) {
        self.kill();
        self.child = spawn(&self.config, &self.log);
        self.wait_ready().await;
    }

    /// SIGTERM, wait for the graceful exit, start again.
    async fn restart_gracefully(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
        self.child = spawn(&self.config, &self.log);
        self.wait_ready().await;
    }

    async fn get(&self, path: &str) -> Json {
        match reqwest::get(format!("{}{path}", self.base)).await {
            Ok(response) => response.json().await.unwrap_or(Json::Null),
            Err(_) => Json::Null,
        }
    }

    /// Resident memory now, from /proc.
    fn rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn post(&self, name: &str, config: &Json) -> Json {
        let response = reqwest::Client::new()
            .post(format!("{}/connectors/{name}", self.base))
            .header("Content-Type", "application/json")
            .body(config.to_string())
            .send()
            .await
            .unwrap();
        response.json().await.unwrap_or(Json::Null)
    }

    async fn view(&self, name: &str) -> Json {
        match reqwest::get(format!("{}/v1/connectors/{name}", self.base)).await {
            Ok(response) => response.json().await.unwrap_or(Json::Null),
            Err(_) => Json::Null,
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(config: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_rmq-openmldb"))
        .args(["--log", "info", "run", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// How the sink reaches OpenMLDB.
#[derive(Clone, Copy, PartialEq)]
enum WritePath {
    /// Through the APIServer side (`openmldb.apiserver`).
    Api,
    /// Straight to the tablets (the guide's ZooKeeper URL).
    Native,
}

impl WritePath {
    fn name(self) -> &'static str {
        match self {
            WritePath::Api => "APIServer",
            WritePath::Native => "native",
        }
    }
}

struct Harness {
    standin: StandIn,
    /// The stand-in's nameserver and tablets behind a private ZooKeeper,
    /// for the scenarios that write natively.
    native: NativeSide,
    _zookeeper: ZooKeeper,
    api: ApiClient,
    runtime: Arc<ClientRuntime>,
    plan: Plan,
}

/// Ids whose batch `produce` sent again, with how many times: a send that
/// failed on the producer's side may still have been stored.
static RESENT: std::sync::Mutex<BTreeMap<(String, u64), u64>> = std::sync::Mutex::new(BTreeMap::new());

fn resends(topic: &str, id: u64) -> u64 {
    RESENT.lock().unwrap_or_else(|e| e.into_inner()).get(&(topic.to_string(), id)).copied().unwrap_or(0)
}

/// Messages `{"id": i, "tag": "…"}` for ids `0..count`, at `rate` per
/// second, in batches to each queue in turn; a failed send is sent again
/// (the broker may be down), so every id reaches the topic at least once
/// (and those of a resent batch perhaps twice: see `RESENT`).
async fn produce(producer: &Producer, topic: &str, count: u64, rate: u64, body: impl Fn(u64) -> String) -> u64 {
    const BATCH: u64 = 100;
    let started = Instant::now();
    let mut id = 0;
    let mut queue = 0;
    while id < count {
        let batch: Vec<OutgoingMessage> = (id..(id + BATCH).min(count))
            .map(|i| OutgoingMessage { topic: topic.to_string(), body: body(i).into_bytes(), ..Default::default() })
            .collect();
        while producer.send_batch_to_queue(&batch, "broker-a", queue).await.is_err() {
            let mut resent = RESENT.lock().unwrap_or_else(|e| e.into_inner());
            for i in id..id + batch.len() as u64 {
                *resent.entry((topic.to_string(), i)).or_default() += 1;
            }
            drop(resent);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        id += batch.len() as u64;
        queue = (queue + 1) % QUEUES;
        let due = Duration::from_secs_f64(id as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    count
}

fn plain(id: u64) -> String {
    json!({"id": id, "tag": format!("row-{id}")}).to_string()
}

impl Harness {
    async fn table(&self, name: &str) -> String {
        let table = unique(name);
        let ddl = format!("CREATE TABLE {table} (id bigint, tag string, INDEX(KEY=id))");
        assert!(self.api.execute(DATABASE, &ddl).await.unwrap().is_ok());
        table
    }

    async fn topic(&self, producer: &mut Producer, name: &str) -> String {
        let topic = unique(name);
        producer.create_topic(&topic, QUEUES).await.unwrap();
        topic
    }

    /// Stored rows per id.
    fn counts(&self, table: &str) -> BTreeMap<i64, u64> {
        let catalog = self.standin.state.catalog.lock().unwrap_or_else(|e| e.into_inner());
        let mut counts = BTreeMap::new();
        if let Some(t) = catalog.databases.get(DATABASE).and_then(|d| d.get(table)) {
            for row in &t.rows {
                if let Some(Value::BigInt(id)) = row.first() {
                    *counts.entry(*id).or_default() += 1;
                }
            }
        }
        counts
    }

    fn rows(&self, table: &str) -> u64 {
        self.counts(table).values().sum()
    }

    /// Wait until ids `0..count` are all stored (or `timeout`); the outcome's
    /// counts from what is stored then. A row stored once more for each time
    /// the producer resent its batch counts as `resent`, not as a duplicate.
    async fn settle(&self, topic: &str, table: &str, count: u64, timeout: Duration, outcome: &mut Outcome) {
        let deadline = Instant::now() + timeout;
        let counts = loop {
            let counts = self.counts(table);
            let present = (0..count as i64).filter(|id| counts.contains_key(id)).count() as u64;
            if present == count || Instant::now() > deadline {
                break counts;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let distinct = (0..count as i64).filter(|id| counts.contains_key(id)).count() as u64;
        outcome.written = counts.values().sum();
        for (id, n) in &counts {
            let extra = n.saturating_sub(1);
            let resent = extra.min(resends(topic, *id as u64));
            outcome.resent += resent;
            outcome.duplicates += extra - resent;
        }
        outcome.lost = count - distinct;
    }

    fn connector(&self, topic: &str, mode: &str) -> Json {
        self.connector_on(topic, mode, WritePath::Api)
    }

    fn connector_on(&self, topic: &str, mode: &str, path: WritePath) -> Json {
        let mut config = json!({
            "connector-class": "org.apache.rocketmq.connect.jdbc.connector.JdbcSinkConnector",
            "max-task": "2",
            "connect-topicname": topic,
            "connection.url": format!("jdbc:openmldb:///{DATABASE}?zk=127.0.0.1:2181&zkPath=/openmldb_cluster"),
            "openmldb.apiserver": self.standin.addr.to_string(),
            "insert.mode": mode,
            "consume.from.where": "CONSUME_FROM_FIRST_OFFSET",
            "retry.backoff.max.ms": "1000",
            "source-record-converter": "org.apache.rocketmq.connect.runtime.converter.JsonConverter"
        });
        if path == WritePath::Native {
            config["connection.url"] = json!(self.native.jdbc_url(DATABASE));
            config.as_object_mut().unwrap().remove("openmldb.apiserver");
        }
        config
    }

    /// SIGKILL the worker `kills` times while messages flow.
    async fn killed_under_load(&self, producer: &mut Producer, mode: &str, path: WritePath) -> Outcome {
        let plan = self.plan;
        let mut outcome = Outcome {
            scenario: format!("SIGKILL x{} under load, {mode}, {}", plan.kills, path.name()),
            ..Default::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let topic = self.topic(producer, "killed").await;
        let table = self.table("killed").await;
        let mut worker = Worker::start(dir.path(), "worker_id = \"killed\"\n").await;
        let mut config = self.connector_on(&topic, mode, path);
        config["table.name.format"] = json!(table);
        if path == WritePath::Native {
            self.native.settle().await;
        }
        worker.post("killed", &config).await;
        let load = produce(producer, &topic, plan.kill_messages, plan.rate, plain);
        let kills = async {
            let span = Duration::from_secs_f64(plan.kill_messages as f64 / plan.rate as f64);
            let mut recovery: f64 = 0.0;
            for _ in 0..plan.kills {
                tokio::time::sleep(span / (plan.kills as u32 + 1)).await;
                outcome.peak_rss_mb = outcome.peak_rss_mb.max(worker.rss_mb());
                let before = self.rows(&table);
                let killed = Instant::now();
                worker.restart().await;
                // Recovery: from the kill to the restarted worker's first
                // row (not counted for a kill after every row was written).
                if before >= plan.kill_messages {
                    continue;
                }
                let deadline = Instant::now() + Duration::from_secs(60);
                while self.rows(&table) == before && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                recovery = recovery.max(killed.elapsed().as_secs_f64());
            }
            recovery
        };
        let (sent, recovery) = tokio::join!(load, kills);
        outcome.sent = sent;
        outcome.recovery_seconds = Some(recovery);
        self.settle(&topic, &table, sent, Duration::from_secs(120), &mut outcome).await;
        outcome.peak_rss_mb = outcome.peak_rss_mb.max(worker.rss_mb());
        // Redelivered after a kill: what was written and not yet committed,
        // at most the batches in hand of each task (two tasks, two batches
        // of up to 2,048 messages each).
        let window = plan.kills as u64 * 2 * 2 * 2048;
        outcome.failure = if outcome.lost > 0 {
            Some(format!("{} ids lost; log {}", outcome.lost, worker.log.display()))
        } else if mode == "INSERT_OR_IGNORE" && outcome.duplicates > 0 {
            Some(format!("{} duplicates with INSERT_OR_IGNORE", outcome.duplicates))
        } else if outcome.duplicates > window {
            Some(format!("{} duplicates, more than the in-flight window of {window}", outcome.duplicates))
        } else {
            None
        };
        outcome
    }

    /// OpenMLDB refusing connections, then slow, then failing rows.
    async fn openmldb_outage(&self, producer: &mut Producer) -> Outcome {
        let plan = self.plan;
        let mut outcome = Outcome {
            scenario: format!(
                "OpenMLDB down {} s, slow (500 ms) {} s, 10% rows failing {} s, INSERT_OR_IGNORE",
                plan.refuse.as_secs(),
                plan.slow.as_secs(),
                plan.flaky.as_secs()
            ),
            ..Default::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let topic = self.topic(producer, "outage").await;
        let table = self.table("outage").await;
        let worker = Worker::start(dir.path(), "worker_id = \"outage\"\n").await;
        // A connection cut after the server stored a statement, or more
        // failed rows than the APIServer lists, make the APIServer path
        // re-send stored rows; INSERT OR IGNORE keeps them single.
        let mut config = self.connector(&topic, "INSERT_OR_IGNORE");
        config["table.name.format"] = json!(table);
        worker.post("outage", &config).await;
        let total = Duration::from_secs(2) + plan.refuse + plan.slow + plan.flaky + Duration::from_secs(2);
        let rate = 1000;
        let count = total.as_secs() * rate;
        let faults = format!("http://{}/__standin/faults", self.standin.addr);
        let sampling = AtomicBool::new(true);
        let peak = AtomicU64::new(0);
        let sample_rss = async {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(worker.rss_mb() as u64, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        let faults_over_time = async {
            let http = reqwest::Client::new();
            // The stand-in opens its port again when the refusal window
            // ends, on its own timer: a call made at that moment may still
            // be refused, so it is tried again for a while.
            let set = |body: Json| {
                let (http, faults) = (http.clone(), faults.clone());
                async move {
                    let given_up = Instant::now() + Duration::from_secs(5);
                    loop {
                        match http.post(&faults).body(body.to_string()).send().await {
                            Ok(reply) => return reply,
                            Err(e) if e.is_connect() && Instant::now() < given_up => {
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                            Err(e) => panic!("setting the stand-in's faults to {body}: {e}"),
                        }
                    }
                }
            };
            tokio::time::sleep(Duration::from_secs(2)).await;
            set(json!({"refuse_connections_ms": plan.refuse.as_millis() as u64})).await;
            tokio::time::sleep(plan.refuse).await;
            set(json!({"latency_ms": 500})).await;
            tokio::time::sleep(plan.slow).await;
            set(json!({"clear": true, "fail_percent": 10})).await;
            tokio::time::sleep(plan.flaky).await;
            set(json!({"clear": true})).await;
            Instant::now()
        };
        let load = produce(producer, &topic, count, rate, plain);
        let work = async {
            let (sent, cleared) = tokio::join!(load, faults_over_time);
            self.settle(&topic, &table, sent, Duration::from_secs(180), &mut outcome).await;
            sampling.store(false, Ordering::Relaxed);
            (sent, cleared)
        };
        let ((sent, cleared), ()) = tokio::join!(work, sample_rss);
        outcome.sent = sent;
        outcome.recovery_seconds = Some(cleared.elapsed().as_secs_f64());
        outcome.peak_rss_mb = peak.load(Ordering::Relaxed) as f64;
        outcome.failure = if outcome.lost > 0 {
            Some(format!("{} ids lost; log {}", outcome.lost, worker.log.display()))
        } else if outcome.duplicates > 0 {
            Some(format!("{} duplicates with INSERT_OR_IGNORE", outcome.duplicates))
        } else if outcome.peak_rss_mb > 300.0 {
            Some(format!("the worker grew to {:.0} MB during the outage", outcome.peak_rss_mb))
        } else {
            None
        };
        outcome
    }

    /// The broker stopped and started again while messages flow.
    async fn broker_restart(&self, producer: &mut Producer) -> Outcome {
        let plan = self.plan;
        let mut outcome = Outcome {
            scenario: format!(
                "broker stopped {} s and restarted under load, INSERT_OR_IGNORE",
                plan.broker_down.as_secs()
            ),
            ..Default::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let topic = self.topic(producer, "broker").await;
        let table = self.table("broker").await;
        let worker = Worker::start(dir.path(), "worker_id = \"broker\"\n").await;
        let mut config = self.connector(&topic, "INSERT_OR_IGNORE");
        config["table.name.format"] = json!(table);
        worker.post("broker", &config).await;
        let count = 20_000;
        let load = produce(producer, &topic, count, 1000, plain);
        let restart = async {
            tokio::time::sleep(Duration::from_secs(4)).await;
            let script = root().join("scripts/rocketmq.sh");
            let quiet = |arg: &str| {
                Command::new(&script).arg(arg).stdout(Stdio::null()).stderr(Stdio::null()).status().map(|s| s.success())
            };
            assert!(quiet("stop-broker").unwrap_or(false), "stop-broker failed");
            tokio::time::sleep(plan.broker_down).await;
            assert!(quiet("start-broker").unwrap_or(false), "start-broker failed");
            let started = Instant::now();
            let before = self.rows(&table);
            let deadline = Instant::now() + Duration::from_secs(120);
            while self.rows(&table) == before && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            started.elapsed().as_secs_f64()
        };
        let (sent, recovery) = tokio::join!(load, restart);
        outcome.sent = sent;
        outcome.recovery_seconds = Some(recovery);
        self.settle(&topic, &table, sent, Duration::from_secs(180), &mut outcome).await;
        outcome.peak_rss_mb = worker.rss_mb();
        outcome.failure = if outcome.lost > 0 {
            Some(format!("{} ids lost; log {}", outcome.lost, worker.log.display()))
        } else if outcome.duplicates > 0 {
            Some(format!("{} duplicates with INSERT_OR_IGNORE", outcome.duplicates))
        } else {
            None
        };
        outcome
    }

    /// Three workers of one cluster with a plain-INSERT connector of 8
    /// tasks over 8 queues, running: every queue read by exactly one task.
    async fn cluster_of_three(&self, producer: &mut Producer, name: &str) -> (Vec<Worker>, String, String, TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let topic = self.topic(producer, name).await;
        let table = self.table(name).await;
        let cluster = unique(name);
        let mut workers = Vec::new();
        for i in 0..3 {
            let extra = format!("worker_id = \"{name}-{i}\"\ncluster = \"{cluster}\"\n");
            workers.push(Worker::start(&dir.path().join(format!("w{i}")), &extra).await);
        }
        let mut config = self.connector(&topic, "INSERT");
        config["table.name.format"] = json!(table);
        config["max-task"] = json!("8");
        workers[0].post(name, &config).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while queue_owners(&workers[0].get("/v1/cluster").await, name).len() < QUEUES as usize
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        (workers, topic, table, dir)
    }

    /// One of three cluster workers SIGKILLed under load.
    async fn cluster_worker_killed(&self, producer: &mut Producer) -> Outcome {
        let plan = self.plan;
        let mut outcome = Outcome {
            scenario: "3 workers, 1 SIGKILLed under load, INSERT, 8 tasks (recovery = its queues written again)".into(),
            ..Default::default()
        };
        let (mut workers, topic, table, _dir) = self.cluster_of_three(producer, "clkill").await;
        let load = produce(producer, &topic, plan.kill_messages, plan.rate, plain);
        let kill = async {
            let span = Duration::from_secs_f64(plan.kill_messages as f64 / plan.rate as f64);
            tokio::time::sleep(span / 2).await;
            let owners = queue_owners(&workers[0].get("/v1/cluster").await, "clkill");
            let victim: Vec<i32> = owners.iter().filter(|(_, w)| w.as_str() == "clkill-2").map(|(q, _)| *q).collect();
            let written_before = self.max_id_of_queues(&table, &victim);
            outcome.peak_rss_mb = workers.iter().map(Worker::rss_mb).fold(0.0, f64::max);
            let killed = Instant::now();
            workers[2].kill();
            let deadline = Instant::now() + Duration::from_secs(60);
            while self.max_id_of_queues(&table, &victim) == written_before && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (killed.elapsed().as_secs_f64(), victim.len())
        };
        let (sent, (recovery, victim_queues)) = tokio::join!(load, kill);
        outcome.sent = sent;
        outcome.recovery_seconds = Some(recovery);
        self.settle(&topic, &table, sent, Duration::from_secs(120), &mut outcome).await;
        outcome.peak_rss_mb = workers[..2].iter().map(Worker::rss_mb).fold(outcome.peak_rss_mb, f64::max);
        // What the dead worker wrote and had not committed is read again:
        // at most one batch (2,048 messages) per queue it held.
        let window = victim_queues.max(1) as u64 * 2048;
        outcome.failure = if outcome.lost > 0 {
            Some(format!("{} ids lost; logs under {}", outcome.lost, workers[0].log.display()))
        } else if victim_queues == 0 {
            Some("the killed worker held no queue".into())
        } else if outcome.duplicates > window {
            Some(format!("{} duplicates, more than one batch per queue it held ({window})", outcome.duplicates))
        } else {
            None
        };
        outcome
    }

    /// Each of three cluster workers stopped and started again in turn
    /// while messages flow.
    async fn cluster_rolling_restart(&self, producer: &mut Producer) -> Outcome {
        let plan = self.plan;
        let mut outcome = Outcome {
            scenario: "3 workers restarted one by one under load, INSERT, 8 tasks".into(),
            ..Default::default()
        };
        let (mut workers, topic, table, _dir) = self.cluster_of_three(producer, "clroll").await;
        let rate = (plan.rate / 2).max(500);
        let load = produce(producer, &topic, rate * 30, rate, plain);
        let restarts = async {
            let mut longest: f64 = 0.0;
            for worker in workers.iter_mut() {
                tokio::time::sleep(Duration::from_secs(4)).await;
                outcome.peak_rss_mb = outcome.peak_rss_mb.max(worker.rss_mb());
                let started = Instant::now();
                worker.restart_gracefully().await;
                longest = longest.max(started.elapsed().as_secs_f64());
            }
            longest
        };
        let (sent, longest) = tokio::join!(load, restarts);
        outcome.sent = sent;
        outcome.recovery_seconds = Some(longest);
        self.settle(&topic, &table, sent, Duration::from_secs(120), &mut outcome).await;
        outcome.peak_rss_mb = workers.iter().map(Worker::rss_mb).fold(outcome.peak_rss_mb, f64::max);
        if outcome.duplicates > 0 {
            let kept = std::env::temp_dir().join(unique("rolling-restart-logs"));
            let _ = std::fs::create_dir_all(&kept);
            for (i, worker) in workers.iter().enumerate() {
                let _ = std::fs::copy(&worker.log, kept.join(format!("worker-{i}.log")));
            }
            eprintln!("rolling restart: {} duplicates; worker logs in {}", outcome.duplicates, kept.display());
        }
        // A graceful restart hands every queue over with its offsets
        // committed: exact, no duplicate allowed.
        outcome.failure = if outcome.lost > 0 {
            Some(format!("{} ids lost; logs under {}", outcome.lost, workers[0].log.display()))
        } else if outcome.duplicates > 0 {
            Some(format!("{} duplicates in a rolling restart", outcome.duplicates))
        } else {
            None
        };
        outcome
    }

    /// The highest id stored from `queues` (see `produce`: ids go to the
    /// queues in runs of 100).
    fn max_id_of_queues(&self, table: &str, queues: &[i32]) -> i64 {
        let counts = self.counts(table);
        counts.keys().rev().find(|id| queues.contains(&(((**id / 100) % QUEUES as i64) as i32))).copied().unwrap_or(-1)
    }

    /// 1% malformed messages and one that makes the converter trap.
    async fn poison(&self, producer: &mut Producer) -> Outcome {
        let mut outcome =
            Outcome { scenario: "1% malformed + 1 converter trap, errors.tolerance=all".into(), ..Default::default() };
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        let components = Path::new(env!("RMQ_OPENMLDB_TEST_COMPONENTS"));
        std::fs::copy(components.join("trap_converter.wasm"), plugins.join("trap-converter.wasm")).unwrap();
        let topic = self.topic(producer, "poison").await;
        let table = self.table("poison").await;
        let dead_letters = unique("poison_dlq");
        let worker =
            Worker::start(dir.path(), &format!("worker_id = \"poison\"\nplugins_dir = \"{}\"\n", plugins.display()))
                .await;
        let mut config = self.connector(&topic, "INSERT");
        for (key, value) in [
            ("table.name.format", table.as_str()),
            ("source-record-converter", "trap-converter"),
            ("errors.tolerance", "all"),
            ("errors.deadletterqueue.topic.name", dead_letters.as_str()),
        ] {
            config[key] = json!(value);
        }
        let reply = worker.post("poison", &config).await;
        if reply["status"] != 200 {
            outcome.failure = Some(format!("create refused: {reply}"));
            return outcome;
        }
        let count = 10_000u64;
        let bad = |id: u64| id % 100 == 37;
        let trap = 5_555u64;
        let body = |id: u64| {
            if bad(id) {
                "{not json".to_string()
            } else if id == trap {
                json!({"id": id, "tag": "__trap__"}).to_string()
            } else {
                plain(id)
            }
        };
        outcome.sent = produce(producer, &topic, count, 5_000, body).await;
        let good = (0..count).filter(|id| !bad(*id) && *id != trap).count() as u64;
        let expected_letters = count - good;
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.rows(&table) < good && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let counts = self.counts(&table);
        outcome.written = counts.values().sum();
        outcome.duplicates = counts.values().map(|n| n.saturating_sub(1)).sum();
        outcome.lost =
            (0..count).filter(|id| !bad(*id) && *id != trap && !counts.contains_key(&(*id as i64))).count() as u64;
        let letters = rmq_openmldb_read_dead_letters(self.runtime.clone(), &dead_letters, expected_letters).await;
        outcome.dead_lettered = letters.len() as u64;
        let traps = letters.iter().filter(|kind| kind.as_str() == "trap").count();
        let view = worker.view("poison").await;
        outcome.peak_rss_mb = worker.rss_mb();
        outcome.failure = if outcome.lost > 0 {
            Some(format!("{} good rows missing", outcome.lost))
        } else if outcome.dead_lettered != expected_letters || traps != 1 {
            Some(format!(
                "{} dead letters ({traps} traps), expected {expected_letters} (1 trap)",
                outcome.dead_lettered
            ))
        } else if counts.keys().any(|id| bad(*id as u64) || *id as u64 == trap) {
            Some("a bad message was written".into())
        } else if view["state"] != "RUNNING" || view["tasks"][0]["restarts"] != 0 {
            Some(format!("the connector did not stay RUNNING: {view}"))
        } else {
            None
        };
        outcome
    }

    /// schemathesis against the worker's own OpenAPI document.
    async fn rest_fuzzing(&self) -> Outcome {
        let plan = self.plan;
        let mut outcome = Outcome {
            scenario: "REST fuzzing of /v1/openapi.json (schemathesis; sent = requests)".into(),
            ..Default::default()
        };
        let Some(schemathesis) = std::env::var_os("SCHEMATHESIS").map(PathBuf::from) else {
            outcome.failure = Some("SCHEMATHESIS is not set (scripts/reliability.sh installs it)".into());
            return outcome;
        };
        let dir = tempfile::tempdir().unwrap();
        let worker = Worker::start(dir.path(), "worker_id = \"fuzzed\"\n").await;
        let topic = unique("fuzzed");
        let config = self.connector(&topic, "INSERT");
        worker.post("kept", &config).await;
        let before = worker.view("kept").await["config"].clone();
        let har = dir.path().join("fuzz.har");
        let run = Command::new(&schemathesis)
            .args(["run", &format!("{}/v1/openapi.json", worker.base), "--checks", "not_a_server_error"])
            .args(["--max-examples", &plan.fuzz_examples.to_string(), "--phases", "examples,coverage,fuzzing"])
            .args(["--report", "har", "--report-har-path"])
            .arg(&har)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        // Every request and its answer. schemathesis finds the connector by
        // listing and tries its routes; only an accepted request may change it.
        let entries: Vec<Json> = std::fs::read_to_string(&har)
            .ok()
            .and_then(|text| serde_json::from_str::<Json>(&text).ok())
            .and_then(|h| h["log"]["entries"].as_array().cloned())
            .unwrap_or_default();
        let status = |e: &Json| e["response"]["status"].as_u64().unwrap_or(0);
        let server_errors = entries.iter().filter(|e| status(e) >= 500).count();
        let accepted_changes = entries
            .iter()
            .filter(|e| e["request"]["method"] != "GET" && (200..300).contains(&status(e)))
            .filter(|e| e["request"]["url"].as_str().is_some_and(|u| u.contains("/connectors/kept")))
            .count();
        let text = String::from_utf8_lossy(&run.stdout).to_string();
        outcome.sent = entries.len() as u64;
        let alive = reqwest::get(format!("{}/v1/worker", worker.base)).await.is_ok();
        let after = worker.view("kept").await["config"].clone();
        outcome.peak_rss_mb = worker.rss_mb();
        outcome.failure = if !run.status.success() {
            Some(format!(
                "schemathesis found failures:\n{}",
                text.lines().rev().take(40).collect::<Vec<_>>().join("\n")
            ))
        } else if server_errors > 0 {
            Some(format!("{server_errors} answers were 5xx"))
        } else if !alive {
            Some("the worker stopped answering".into())
        } else if before != after && accepted_changes == 0 {
            Some(format!("the connector changed though no request to it was accepted: {before} -> {after}"))
        } else {
            None
        };
        outcome
    }
}

/// The `connect.errors.kind` of up to `count` dead letters (two minutes at most).
/// Queue id → worker id for connector `name`, from a `/v1/cluster` view.
fn queue_owners(view: &Json, name: &str) -> BTreeMap<i32, String> {
    let mut owners = BTreeMap::new();
    for worker in view["workers"].as_array().cloned().unwrap_or_default() {
        for task in worker["connectors"][name]["tasks"].as_array().cloned().unwrap_or_default() {
            for queue in task["queues"].as_array().cloned().unwrap_or_default() {
                let id = queue.as_str().and_then(|q| q.rsplit('/').next()).and_then(|q| q.parse().ok());
                if let (Some(id), Some(w)) = (id, worker["worker_id"].as_str()) {
                    owners.insert(id, w.to_string());
                }
            }
        }
    }
    owners
}

async fn rmq_openmldb_read_dead_letters(runtime: Arc<ClientRuntime>, topic: &str, count: u64) -> Vec<String> {
    use rmq_openmldb::rocketmq::{ConsumerConfig, QueueConsumer};
    let consumer =
        QueueConsumer::start(runtime, ConsumerConfig::new(NAMESRV, &unique("dlq-reader"), &[topic])).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut kinds = Vec::new();
    while (kinds.len() as u64) < count && Instant::now() < deadline {
        let got = consumer.poll(Duration::from_millis(500)).await;
        consumer.ack(got.iter().map(|m| (m.queue.clone(), m.queue_offset))).await;
        for message in got {
            let kind = message.properties.iter().find(|(k, _)| k == "connect.errors.kind").map(|(_, v)| v.clone());
            kinds.push(kind.unwrap_or_default());
        }
    }
    // A moment more, to see any extra letter.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let extra = consumer.poll(Duration::from_millis(500)).await;
    kinds.extend(extra.iter().map(|_| String::from("extra")));
    consumer.shutdown().await;
    kinds
}
