//! Helpers the end-to-end tests share: the broker and the worker process
//! as users run them, the OpenMLDB stand-in, unique names on a shared
//! broker, and `employee_test` rows as RocketMQ Connect's JDBC source
//! writes them.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

pub mod mysql;

use openmldb_standin::{StandIn, StandInOptions};
use rmq_openmldb::openmldb::ApiClient;
use rmq_openmldb::rocketmq::{ConsumedMessage, ConsumerConfig, QueueConsumer, RocketMqClient};
use rocketmq_client_rust::ClientRuntime;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const NAMESRV: &str = "127.0.0.1:9876";

/// The tests share one broker and two cores; one at a time.
pub static SERIAL: Mutex<()> = Mutex::new(());

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Start RocketMQ (if needed), then run `test` on the RocketMQ client's runtime.
pub fn with_broker<F: std::future::Future<Output = ()>>(test: impl FnOnce(Arc<ClientRuntime>) -> F) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let status = Command::new(root().join("scripts/rocketmq.sh")).arg("start").status().unwrap();
    assert!(status.success(), "scripts/rocketmq.sh start failed");
    let client = RocketMqClient::new().unwrap();
    let runtime = client.client();
    client.run(test(runtime));
}

/// A worker process on a free loopback port, killed when dropped.
pub struct WorkerProcess {
    pub child: Child,
    pub base: String,
    pub data: PathBuf,
    pub log: PathBuf,
}

impl WorkerProcess {
    pub async fn start(data: &Path) -> WorkerProcess {
        Self::start_with(data, "worker_id = \"test-worker\"\n").await
    }

    /// A worker of `cluster`.
    pub async fn start_in_cluster(data: &Path, cluster: &str, worker_id: &str) -> WorkerProcess {
        Self::start_with(data, &format!("worker_id = \"{worker_id}\"\ncluster = \"{cluster}\"\n")).await
    }

    pub async fn start_with(data: &Path, extra: &str) -> WorkerProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        std::fs::create_dir_all(data).unwrap();
        let config = data.join("worker.toml");
        std::fs::write(
            &config,
            format!(
                "namesrv_addr = \"{NAMESRV}\"\nhttp_addr = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n{extra}",
                data.join("store").display()
            ),
        )
        .unwrap();
        let log = data.join(format!("worker-{port}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_rmq-openmldb"))
            .args(["--log", "info", "run", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let worker = WorkerProcess { child, base: format!("http://127.0.0.1:{port}"), data: data.to_path_buf(), log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::get(format!("{}/v1/worker", worker.base)).await.is_err() {
            assert!(Instant::now() < deadline, "the worker did not start; log:\n{}", worker.log_text());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        worker
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for the graceful exit.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "worker exit status {status}; log:\n{}", self.log_text());
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = reqwest::get(format!("{}{path}", self.base)).await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: &str) -> (u16, Value) {
        let response = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: &str) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, body).await
    }

    /// The compat API's success body, or a panic with its error.
    pub async fn compat_ok(&self, path: &str) -> Value {
        let (status, reply) = self.get(path).await;
        assert_eq!((status, &reply["status"]), (200, &json!(200)), "GET {path}: {reply}");
        reply["body"].clone()
    }

    pub async fn connector_state(&self, name: &str) -> Value {
        self.get(&format!("/v1/connectors/{name}")).await.1
    }

    /// Wait until every task of `name` is in `state`.
    pub async fn wait_for_tasks(&self, name: &str, state: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let view = self.connector_state(name).await;
            // In a cluster the view lists every live worker's tasks: this
            // worker's own must be among them.
            let tasks = view["tasks"].as_array().cloned().unwrap_or_default();
            let own = tasks.iter().any(|t| t["worker_id"] == view["worker_id"]);
            if own && tasks.iter().all(|t| t["state"] == state) {
                return;
            }
            assert!(Instant::now() < deadline, "tasks of {name} never all {state}: {view}\n{}", self.log_text());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The OpenMLDB guide's sink connector JSON, pointed at the stand-in.
pub fn guide_sink(topic: &str, apiserver: &str) -> Value {
    json!({
        "connector-class": "org.apache.rocketmq.connect.jdbc.connector.JdbcSinkConnector",
        "max-task": "1",
        "connect-topicname": topic,
        "connection.url": "jdbc:openmldb:///rocketmq_test?zk=127.0.0.1:2181&zkPath=/openmldb_cluster",
        "openmldb.apiserver": apiserver,
        "insert.mode": "INSERT",
        "db.timezone": "UTC",
        "table.types": "TABLE",
        "auto.create": "true",
        "source-record-converter": "org.apache.rocketmq.connect.runtime.converter.JsonConverter"
    })
}

/// The OpenMLDB guide's sink connector JSON exactly as published: its
/// ZooKeeper URL and nothing else to find OpenMLDB.
pub fn guide_sink_as_published(topic: &str) -> Value {
    let mut connector = guide_sink(topic, "");
    connector.as_object_mut().unwrap().remove("openmldb.apiserver");
    connector
}

/// OpenMLDB where the guide's URL looks for it: a private ZooKeeper on
/// 127.0.0.1:2181 and the stand-in's nameserver and tablets under
/// `/openmldb_cluster`, with the guide's `rocketmq_test` database. One test
/// at a time can hold it (the port is the guide's).
pub struct GuideCluster {
    pub standin: StandIn,
    _native: openmldb_standin::NativeSide,
    _zookeeper: openmldb_standin::ZooKeeper,
}

pub async fn guide_cluster() -> GuideCluster {
    let zookeeper = openmldb_standin::ZooKeeper::start_on(2181).unwrap();
    let standin = standin_with(false).await.standin;
    let native = openmldb_standin::NativeSide::start(standin.state.clone(), &zookeeper.hosts(), "/openmldb_cluster")
        .await
        .unwrap();
    GuideCluster { standin, _native: native, _zookeeper: zookeeper }
}

/// The OpenMLDB stand-in a test writes to, with the guide's `rocketmq_test`
/// database. The sink connectors of [`OpenMldb::sink`] write through its
/// APIServer side, or natively through its nameserver and tablets behind a
/// private ZooKeeper when `RMQ_OPENMLDB_TEST_WRITER=native`: every test
/// that writes through `sink` runs either way.
pub struct OpenMldb {
    pub standin: StandIn,
    pub native: Option<(openmldb_standin::NativeSide, openmldb_standin::ZooKeeper)>,
}

impl std::ops::Deref for OpenMldb {
    type Target = StandIn;
    fn deref(&self) -> &StandIn {
        &self.standin
    }
}

/// Whether this run's sinks write natively (`RMQ_OPENMLDB_TEST_WRITER`).
pub fn native_writer() -> bool {
    match std::env::var("RMQ_OPENMLDB_TEST_WRITER").as_deref() {
        Ok("native") => true,
        Ok("api") | Ok("") | Err(_) => false,
        Ok(other) => panic!("RMQ_OPENMLDB_TEST_WRITER={other}: expected native or api"),
    }
}

impl OpenMldb {
    /// The guide's sink connector JSON for `topic`, pointed at this stand-in
    /// along this run's writer path.
    pub fn sink(&self, topic: &str) -> Value {
        let mut connector = guide_sink_as_published(topic);
        self.point(&mut connector);
        connector
    }

    /// Points a sink connector's JSON at this stand-in's `rocketmq_test`
    /// along this run's writer path.
    pub fn point(&self, connector: &mut Value) {
        let connector = connector.as_object_mut().expect("a connector is a JSON object");
        match &self.native {
            Some((native, _)) => {
                connector.insert("connection.url".into(), json!(native.jdbc_url("rocketmq_test")));
                connector.remove("openmldb.apiserver");
            }
            None => {
                connector.insert("connection.url".into(), json!("jdbc:openmldb:///rocketmq_test"));
                connector.insert("openmldb.apiserver".into(), json!(self.addr.to_string()));
            }
        }
    }

    /// The guide's sink connector JSON through the APIServer side whatever
    /// the run's path, for tests of APIServer-side faults.
    pub fn api_sink(&self, topic: &str) -> Value {
        guide_sink(topic, &self.addr.to_string())
    }

    /// Waits until tables made through the APIServer side are visible to
    /// native writers (a no-op on the APIServer path).
    pub async fn settle(&self) {
        if let Some((native, _)) = &self.native {
            native.settle().await;
        }
    }
}

pub async fn standin() -> OpenMldb {
    standin_with(native_writer()).await
}

/// A stand-in with its native side, whatever the run's path.
pub async fn native_standin() -> OpenMldb {
    standin_with(true).await
}

async fn standin_with(native: bool) -> OpenMldb {
    let standin = StandIn::start("127.0.0.1:0".parse().unwrap(), StandInOptions::default()).await.unwrap();
    // The guide's step 1: `create database rocketmq_test;`.
    let api = ApiClient::new(&standin.addr.to_string(), Duration::from_secs(5)).unwrap();
    assert!(api.execute("rocketmq_test", "CREATE DATABASE rocketmq_test").await.unwrap().is_ok());
    let native = match native {
        false => None,
        true => {
            let zookeeper = openmldb_standin::ZooKeeper::start().unwrap();
            let native =
                openmldb_standin::NativeSide::start(standin.state.clone(), &zookeeper.hosts(), "/openmldb_cluster")
                    .await
                    .unwrap();
            Some((native, zookeeper))
        }
    };
    OpenMldb { standin, native }
}

pub async fn table_rows(standin: &StandIn, table: &str) -> Vec<Value> {
    let api = ApiClient::new(&standin.addr.to_string(), Duration::from_secs(5)).unwrap();
    let reply = api.execute("rocketmq_test", &format!("SELECT * FROM {table}")).await.unwrap();
    let mut rows = reply.body["data"]["data"].as_array().cloned().unwrap_or_default();
    rows.sort_by_key(|r| r[0].as_i64());
    rows
}

/// Wait until `table` holds at least `count` rows; return them.
pub async fn wait_for_rows(standin: &StandIn, table: &str, count: usize, worker: &WorkerProcess) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let rows = table_rows(standin, table).await;
        if rows.len() >= count {
            return rows;
        }
        assert!(Instant::now() < deadline, "{} of {count} rows in {table}; log:\n{}", rows.len(), worker.log_text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Produce each body as one message, through the CLI as a user would,
/// over `queues` queues (one gives a total order).
pub fn produce_to(dir: &Path, topic: &str, bodies: &[String], queues: u32) {
    let file = dir.join(format!("{}.jsonl", unique("messages")));
    std::fs::write(&file, bodies.join("\n")).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_rmq-openmldb"))
        .args([
            "rocketmq",
            "produce",
            "--namesrv",
            NAMESRV,
            "--topic",
            topic,
            "--queues",
            &queues.to_string(),
            "--lines",
        ])
        .arg(file)
        .status()
        .unwrap();
    assert!(status.success(), "producing to {topic} failed");
}

/// A property of a consumed message.
pub fn property(message: &ConsumedMessage, key: &str) -> Option<String> {
    message.properties.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

/// A name no other test run uses (topics and groups outlive a test).
pub fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{name}_{}_{}", std::process::id(), nanos % 1_000_000_000)
}

/// An `employee_test` row in RocketMQ Connect's JsonConverter envelope.
pub fn envelope(payload: Value) -> String {
    let field = |name: &str, ty: &str| json!({"type": ty, "optional": true, "field": name});
    let mut begin_time = field("begin_time", "int64");
    begin_time["name"] = json!("io.openmessaging.connector.api.data.logical.Timestamp");
    begin_time["version"] = json!(1);
    json!({
        "schema": {
            "type": "struct",
            "fields": [field("id", "int64"), field("name", "string"), field("howold", "int32"), field("male", "int32"),
                       field("company", "string"), field("money", "double"), begin_time],
            "optional": true,
            "name": "employee_test"
        },
        "payload": payload
    })
    .to_string()
}

/// The OpenMLDB guide's four employee_test rows as the APIServer returns
/// them (`SELECT *`, sorted by id): row 12 keeps its NULLs.
pub fn guide_rows_in_openmldb() -> Vec<Value> {
    vec![
        json!([2, "name-02", 19, 7, "company", 32232.0, 1640764800000i64]),
        json!([4, "gjk", 25, 8, "company", 3232.0, 1640378616000i64]),
        json!([12, "name-06", 19, 3, null, null, null]),
        json!([14, "name-08", 25, 15, "company", 32255.0, 1644347199000i64]),
    ]
}

/// Read `count` messages of a dead-letter topic (a minute at most).
pub async fn read_dead_letters(runtime: Arc<ClientRuntime>, topic: &str, count: usize) -> Vec<ConsumedMessage> {
    let consumer =
        QueueConsumer::start(runtime, ConsumerConfig::new(NAMESRV, &unique("dlq-reader"), &[topic])).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut letters = Vec::new();
    while letters.len() < count && Instant::now() < deadline {
        let got = consumer.poll(Duration::from_millis(500)).await;
        consumer.ack(got.iter().map(|m| (m.queue.clone(), m.queue_offset))).await;
        letters.extend(got);
    }
    consumer.shutdown().await;
    letters
}
