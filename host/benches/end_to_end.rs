//! End to end, on this machine: the real broker of scripts/rocketmq.sh, the
//! sink task the worker runs (consumer, built-in WASM JSON converter,
//! writer, acknowledgement), and the OpenMLDB APIServer stand-in, all in one
//! process sharing the machine's cores with the broker.
//!
//! It prints:
//! - the raw consume ceiling (poll and acknowledge only) on a preloaded
//!   topic of employee_test JsonConverter envelopes, and the sustained
//!   end-to-end rate on the same messages (first row stored to last), with
//!   their ratio;
//! - latency from send to row stored (the INSERT acknowledged, so visible
//!   to readers), p50/p99/max, at 1,000 and 10,000 messages/s.
//!
//! The pipeline runs in the `rmq-openmldb run` binary, one worker process
//! per scenario with the connector posted over HTTP, so the CPU figures are
//! the worker's alone: for the guide's pipeline (JsonConverter envelopes,
//! the built-in WASM converter) into the APIServer and through the native
//! writer, and with one and three WASM transforms, it prints rows/s, the
//! ratio to the consume ceiling of the same run, the worker's CPU
//! microseconds per row (user + system, from its own clock over the
//! measured span: first row stored to last) and their split over the
//! stages (from its per-stage CPU clock; "other" is the runtime, network
//! I/O and the clients' own tasks), and its peak RSS.
//!
//! The converter alone, natively and as WebAssembly, and the WASM
//! converter with three WASM transforms, each in a plain loop in this
//! process, give the WASM/native ratios and the plugins' CPU per row.
//!
//! Run: `scripts/bench.sh` (or `scripts/rocketmq.sh start && cargo bench -p
//! rmq-openmldb --bench end_to_end`, `-- --quick` for a shorter run).
//! `ROCKETMQ_NAMESRV` and `OPENMLDB_APISERVER` point it at a real RocketMQ
//! and OpenMLDB; `BENCH_MESSAGES` sets how many messages are preloaded.

#[path = "common/cpu.rs"]
mod cpu;

use cpu::{CpuPerRow, CpuReading};
use openmldb_standin::store::Value;
use openmldb_standin::{NativeSide, StandIn, StandInOptions, ZooKeeper};
use rmq_openmldb::connector::{SinkSettings, TaskControl, TaskProgress, run_sink_task};
use rmq_openmldb::openmldb::{ApiClient, ConnectorConfig};
use rmq_openmldb::openmldb::{OpenMldbWriter, WriterConfig};
use rmq_openmldb::plugin::bindings as host;
use rmq_openmldb::plugin::{
    ConverterInstance, PluginCatalog, PluginChain, PluginEngine, PluginServices, Role, RuntimeConfig,
};
use rmq_openmldb::rocketmq::{ConsumerConfig, OutgoingMessage, Producer, QueueConsumer, RocketMqClient};
use rmq_openmldb::telemetry::thread_cpu_time;
use rmq_openmldb_sdk as sdk;
use rocketmq_client_rust::ClientRuntime;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const QUEUES: i32 = 8;
const DATABASE: &str = "bench";

fn envelope(id: i64) -> Vec<u8> {
    format!(
        concat!(
            r#"{{"schema":{{"type":"struct","fields":[{{"type":"int64","optional":true,"field":"id"}},"#,
            r#"{{"type":"string","optional":true,"field":"name"}},{{"type":"int32","optional":true,"field":"howold"}},"#,
            r#"{{"type":"int32","optional":true,"field":"male"}},{{"type":"string","optional":true,"field":"company"}},"#,
            r#"{{"type":"double","optional":true,"field":"money"}},{{"type":"int64","optional":true,"#,
            r#""name":"io.openmessaging.connector.api.data.logical.Timestamp","version":1,"field":"begin_time"}}],"#,
            r#""optional":true,"name":"employee_test"}},"payload":{{"id":{},"name":"name-{}","howold":{},"male":{},"#,
            r#""company":"company","money":{}.5,"begin_time":{}}}}}"#
        ),
        id,
        id,
        id % 90,
        id % 2,
        id,
        1_640_764_800_000i64 + id
    )
    .into_bytes()
}

fn message(topic: &str, id: i64) -> OutgoingMessage {
    OutgoingMessage { topic: topic.to_string(), body: envelope(id), ..Default::default() }
}

/// Extra connector keys of a variant.
type ConnectorKeys = &'static [(&'static str, &'static str)];

/// Transforms of the variants: one, and three (all keep the schema).
const ONE_TRANSFORM: &[(&str, &str)] =
    &[("transforms", "hide"), ("transforms.hide.type", "mask"), ("transforms.hide.fields", "name")];
const THREE_TRANSFORMS: &[(&str, &str)] = &[
    ("transforms", "hide,adults,company"),
    ("transforms.hide.type", "mask"),
    ("transforms.hide.fields", "name"),
    ("transforms.adults.type", "filter"),
    ("transforms.adults.field", "howold"),
    ("transforms.adults.op", "ge"),
    ("transforms.adults.value", "0"),
    ("transforms.company.type", "mask"),
    ("transforms.company.fields", "company"),
    ("transforms.company.keep.last", "2"),
];

fn connector_config(topic: &str, apiserver: &str) -> ConnectorConfig {
    connector_config_at(topic, &format!("openmldb://{apiserver}/{DATABASE}"))
}

fn connector_config_at(topic: &str, url: &str) -> ConnectorConfig {
    [
        ("connector.class", "org.apache.rocketmq.connect.jdbc.connector.JdbcSinkConnector"),
        ("connect.topicnames", topic),
        ("connection.url", url),
        ("insert.mode", "INSERT"),
        ("auto.create", "true"),
        ("openmldb.index.key", "id"),
        ("consume.from.where", "CONSUME_FROM_FIRST_OFFSET"),
        ("value.converter", "org.apache.rocketmq.connect.runtime.converter.JsonConverter"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Where the rows go: the in-process stand-in, whose memory the bench reads
/// (so each row's arrival is seen within a millisecond), or a real
/// APIServer named by `OPENMLDB_APISERVER`, whose tables are counted with
/// `SELECT COUNT(*)` (latency then comes from the task's delivery-time
/// histogram, to its bucket bounds).
enum Backend {
    StandIn(StandIn),
    Remote { addr: String, api: ApiClient },
}

/// An id for rows whose ids a COUNT(*) does not tell.
const UNKNOWN_ID: i64 = i64::MIN;

impl Backend {
    fn addr(&self) -> String {
        match self {
            Backend::StandIn(standin) => standin.addr.to_string(),
            Backend::Remote { addr, .. } => addr.clone(),
        }
    }

    fn exact(&self) -> bool {
        matches!(self, Backend::StandIn(_))
    }

    /// Ids of the rows of `table` stored since `seen` rows.
    async fn new_rows(&self, table: &str, seen: &mut usize) -> Vec<i64> {
        match self {
            Backend::StandIn(standin) => {
                let catalog = standin.state.catalog.lock().unwrap_or_else(|e| e.into_inner());
                let Some(rows) = catalog.table(DATABASE, table).map(|t| &t.rows) else { return Vec::new() };
                let fresh: Vec<i64> =
                    rows[*seen..].iter().map(|r| if let Value::BigInt(id) = r[0] { id } else { -1 }).collect();
                *seen = rows.len();
                fresh
            }
            Backend::Remote { api, .. } => {
                let count = match api.execute(DATABASE, &format!("SELECT COUNT(*) FROM {table}")).await {
                    Ok(reply) => reply.body["data"]["data"][0][0].as_u64().unwrap_or(0) as usize,
                    Err(_) => 0,
                };
                let fresh = count.saturating_sub(*seen);
                *seen = (*seen).max(count);
                vec![UNKNOWN_ID; fresh]
            }
        }
    }
}

struct Bench {
    namesrv: String,
    runtime: Arc<ClientRuntime>,
    engine: Arc<PluginEngine>,
    backend: Backend,
    /// `connection.url` of the stand-in's native side, when ZooKeeper is
    /// installed (a real APIServer has none here).
    native_url: Option<String>,
    stamp: u128,
}

/// Where a scenario's rows go.
#[derive(Clone, Copy, PartialEq)]
enum Path {
    ApiServer,
    Native,
}

/// What one worker process did.
struct WorkerFigures {
    rate: f64,
    cpu: CpuPerRow,
    peak_rss: u64,
}

impl Bench {
    fn start_sink(
        &self,
        topic: &str,
        name: &str,
        extra: &[(&str, &str)],
    ) -> (CancellationToken, tokio::task::JoinHandle<()>, Arc<TaskProgress>) {
        let mut config = connector_config(topic, &self.backend.addr());
        config.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let settings = SinkSettings::from_config(name, &self.namesrv, &config).expect("settings");
        let cancel = CancellationToken::new();
        let control = TaskControl::unpaused(cancel.clone());
        let progress = control.progress.clone();
        let task = tokio::spawn(run_sink_task(
            settings,
            self.engine.clone(),
            PluginCatalog::default(),
            self.runtime.clone(),
            control,
        ));
        let handle = tokio::spawn(async move {
            match task.await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => eprintln!("sink task failed: {e}"),
                Err(e) => eprintln!("sink task panicked: {e}"),
            }
        });
        (cancel, handle, progress)
    }

    async fn producer(&self, topic: &str) -> Producer {
        let mut producer =
            Producer::start(self.runtime.clone(), &self.namesrv, &format!("e2e-producer-{}", self.stamp))
                .await
                .expect("producer");
        producer.create_topic(topic, QUEUES).await.expect("create topic");
        producer
    }

    /// Preload `count` messages into a new topic and measure the raw
    /// consume ceiling on them.
    async fn preload_and_ceiling(&self, count: i64) -> (String, f64, CpuPerRow) {
        let topic = format!("e2e_sustained_{}", self.stamp);
        let producer = self.producer(&topic).await;
        let mut id = 0;
        let mut next_report = count / 10;
        while id < count {
            for queue in 0..QUEUES {
                let batch: Vec<OutgoingMessage> = (id..(id + 256).min(count)).map(|i| message(&topic, i)).collect();
                id += batch.len() as i64;
                producer.send_batch_to_queue(&batch, "broker-a", queue).await.expect("preload");
            }
            if id >= next_report {
                eprintln!("preloaded {id}/{count} messages");
                next_report += count / 10;
            }
        }
        producer.shutdown().await;

        let consumer = QueueConsumer::start(
            self.runtime.clone(),
            ConsumerConfig::new(&self.namesrv, &format!("e2e-raw-{}", self.stamp), &[&topic]),
        )
        .await
        .expect("consumer");
        let mut consumed = 0i64;
        let mut started = None;
        let mut cpu_start = CpuReading::here();
        while consumed < count {
            let batch = consumer.poll(Duration::from_millis(500)).await;
            if !batch.is_empty() && started.is_none() {
                started = Some(Instant::now());
                cpu_start = CpuReading::here();
            }
            consumed += batch.len() as i64;
            consumer.ack(batch.iter().map(|m| (m.queue.clone(), m.queue_offset))).await;
        }
        let ceiling = count as f64 / started.map(|s| s.elapsed().as_secs_f64()).unwrap_or(f64::INFINITY);
        let cpu = CpuPerRow::between(&cpu_start, &CpuReading::here(), count as usize);
        consumer.shutdown().await;
        (topic, ceiling, cpu)
    }

    /// For the converter comparison: a plain sequential loop (poll,
    /// convert, write, acknowledge) over the preloaded topic, with the
    /// converter given; the table must exist.
    async fn sequential(
        &self,
        topic: &str,
        count: i64,
        variant: &str,
        mut convert: impl FnMut(&[rmq_openmldb::rocketmq::ConsumedMessage]) -> Vec<host::Row>,
    ) -> (f64, f64) {
        let table = format!("{topic}_{variant}");
        let config = connector_config(topic, &self.backend.addr());
        let columns = table_columns();
        let writer = OpenMldbWriter::connect(
            WriterConfig::from_connector(&config).expect("writer config"),
            &table,
            Some(&columns),
        )
        .await
        .expect("writer");
        let group = format!("e2e-{variant}-{}", self.stamp);
        let consumer = QueueConsumer::start(self.runtime.clone(), ConsumerConfig::new(&self.namesrv, &group, &[topic]))
            .await
            .expect("consumer");
        let cancel = CancellationToken::new();
        let mut written = 0usize;
        let mut started = None;
        let mut convert_cpu = Duration::ZERO;
        while written < count as usize {
            let batch = consumer.poll_lane(0, Duration::from_millis(500), 2048, 8 << 20).await;
            if batch.is_empty() {
                continue;
            }
            started.get_or_insert_with(Instant::now);
            let rows = tokio::task::block_in_place(|| {
                let before = thread_cpu_time();
                let rows = convert(&batch);
                convert_cpu += thread_cpu_time().saturating_sub(before);
                rows
            });
            written += writer.write(&rows, &cancel).await.written.len();
            consumer.ack(batch.iter().map(|m| (m.queue.clone(), m.queue_offset))).await;
        }
        let rate = count as f64 / started.map(|s| s.elapsed().as_secs_f64()).unwrap_or(f64::INFINITY);
        consumer.shutdown().await;
        (rate, convert_cpu.as_secs_f64() * 1e6 / count as f64)
    }

    /// The preloaded topic through an `rmq-openmldb run` worker of its own
    /// (connector posted over HTTP, its own consumer group and table): its
    /// rate and CPU per row from the first row stored to the last, and its
    /// peak RSS.
    async fn worker_process(
        &self,
        topic: &str,
        count: i64,
        variant: &str,
        path: Path,
        extra: ConnectorKeys,
    ) -> WorkerFigures {
        let dir = tempfile::tempdir().expect("temporary folder");
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let config = dir.path().join("worker.toml");
        let toml = format!(
            "namesrv_addr = \"{}\"\nhttp_addr = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n",
            self.namesrv,
            dir.path().join("data").display()
        );
        std::fs::write(&config, toml).expect("write worker.toml");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rmq-openmldb"))
            .args(["run", "--config"])
            .arg(&config)
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the worker");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        while http.get(format!("{base}/v1/worker")).send().await.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let table = format!("{topic}_{variant}");
        let url = match path {
            Path::ApiServer => format!("openmldb://{}/{DATABASE}", self.backend.addr()),
            Path::Native => self.native_url.clone().expect("the native side"),
        };
        let mut connector = connector_config_at(topic, &url);
        connector.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        connector.insert("table.name.format".into(), table.clone());
        let reply = http
            .post(format!("{base}/v1/connectors"))
            .json(&serde_json::json!({"name": format!("e2e-{variant}-{}", self.stamp), "config": connector}))
            .send()
            .await
            .expect("create the connector");
        assert_eq!(reply.status().as_u16(), 201, "{:?}", reply.text().await);

        let mut seen = 0usize;
        let mut first: Option<(Instant, usize, CpuReading)> = None;
        let deadline = Instant::now() + Duration::from_secs(600);
        while seen < count as usize && Instant::now() < deadline {
            let fresh = self.backend.new_rows(&table, &mut seen).await;
            if !fresh.is_empty() && first.is_none() {
                first = Some((Instant::now(), seen, CpuReading::of_worker(&http, &base).await));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let end = CpuReading::of_worker(&http, &base).await;
        let (rate, cpu) = match first {
            Some((at, rows, start)) if seen > rows => {
                ((seen - rows) as f64 / at.elapsed().as_secs_f64(), CpuPerRow::between(&start, &end, seen - rows))
            }
            _ => (0.0, CpuPerRow::default()),
        };
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
        let peak_kib: u64 = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let _ = child.kill();
        let _ = child.wait();
        WorkerFigures { rate, cpu, peak_rss: peak_kib * 1024 }
    }

    /// Send at `rate` messages/s for `duration` (batches every 10 ms, over
    /// the queues in turn) and time each from send to row stored.
    async fn latency(&self, rate: u64, duration: Duration) -> Latency {
        let topic = format!("e2e_latency_{rate}_{}", self.stamp);
        let producer = self.producer(&topic).await;
        let (cancel, handle, progress) = self.start_sink(&topic, &format!("e2e-latency-{rate}-{}", self.stamp), &[]);
        // Warm up: the first message creates the table and starts the pipeline.
        producer.send(&message(&topic, -1)).await.expect("warm-up");
        let mut seen = 0usize;
        let warm_deadline = Instant::now() + Duration::from_secs(60);
        while self.backend.new_rows(&topic, &mut seen).await.is_empty() && Instant::now() < warm_deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }

        let sent: Arc<std::sync::Mutex<HashMap<i64, Instant>>> = Arc::default();
        let per_tick = (rate / 100).max(1) as i64;
        let ticks = (duration.as_millis() / 10) as i64;
        let sender = {
            let sent = sent.clone();
            let topic = topic.clone();
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(Duration::from_millis(10));
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                for tick in 0..ticks {
                    interval.tick().await;
                    let ids = tick * per_tick..(tick + 1) * per_tick;
                    let batch: Vec<OutgoingMessage> = ids.clone().map(|i| message(&topic, i)).collect();
                    let now = Instant::now();
                    sent.lock().unwrap_or_else(|e| e.into_inner()).extend(ids.map(|i| (i, now)));
                    if let Err(e) =
                        producer.send_batch_to_queue(&batch, "broker-a", (tick % QUEUES as i64) as i32).await
                    {
                        eprintln!("send failed: {e}");
                    }
                }
                producer.shutdown().await;
            })
        };
        let expected = (ticks * per_tick) as usize;
        let mut arrived: HashMap<i64, Instant> = HashMap::with_capacity(expected);
        let deadline = Instant::now() + duration + Duration::from_secs(60);
        while arrived.len() < expected && Instant::now() < deadline {
            let fresh = self.backend.new_rows(&topic, &mut seen).await;
            let now = Instant::now();
            for id in fresh.into_iter().filter(|id| *id >= 0 || *id == UNKNOWN_ID) {
                let key = if id == UNKNOWN_ID { -(arrived.len() as i64) - 2 } else { id };
                arrived.insert(key, now);
            }
            tokio::time::sleep(Duration::from_millis(if self.backend.exact() { 1 } else { 50 })).await;
        }
        let _ = sender.await;
        cancel.cancel();
        let _ = handle.await;
        let sent = sent.lock().unwrap_or_else(|e| e.into_inner());
        if arrived.len() < expected {
            eprintln!("only {} of {expected} rows arrived", arrived.len());
        }
        if !self.backend.exact() {
            // The warm-up message is in the histogram too; one in thousands.
            let histogram = progress.delivery_time.snapshot();
            let bound = |p: f64| {
                let rank = (histogram.count as f64 * p).ceil() as u64;
                let seconds = histogram.buckets.iter().find(|(_, n)| *n >= rank).map_or(f64::INFINITY, |(b, _)| *b);
                Duration::from_secs_f64(seconds.min(3600.0))
            };
            return Latency { rows: arrived.len(), p50: bound(0.5), p99: bound(0.99), max: bound(1.0), exact: false };
        }
        let mut latencies: Vec<Duration> =
            arrived.iter().filter_map(|(id, at)| sent.get(id).map(|s| at.saturating_duration_since(*s))).collect();
        latencies.sort();
        Latency {
            rows: latencies.len(),
            p50: percentile(&latencies, 0.50),
            p99: percentile(&latencies, 0.99),
            max: latencies.last().copied().unwrap_or_default(),
            exact: true,
        }
    }
}

/// employee_test's columns, for the tables of the sequential loops.
fn table_columns() -> Vec<host::Column> {
    use host::ColumnType as T;
    [
        ("id", T::Bigint),
        ("name", T::String),
        ("howold", T::Int),
        ("male", T::Int),
        ("company", T::String),
        ("money", T::Double),
        ("begin_time", T::Timestamp),
    ]
    .into_iter()
    .map(|(name, type_)| host::Column { name: name.into(), type_, nullable: true })
    .collect()
}

fn sdk_message(m: &rmq_openmldb::rocketmq::ConsumedMessage) -> sdk::Message {
    sdk::Message {
        topic: m.queue.topic.clone(),
        queue_id: m.queue.queue_id as u32,
        queue_offset: m.queue_offset,
        born_timestamp: m.born_timestamp,
        store_timestamp: m.store_timestamp,
        message_id: None,
        keys: None,
        tags: None,
        properties: None,
        body: m.body.to_vec(),
    }
}

fn host_message(m: &rmq_openmldb::rocketmq::ConsumedMessage) -> host::Message {
    host::Message {
        topic: m.queue.topic.clone(),
        queue_id: m.queue.queue_id as u32,
        queue_offset: m.queue_offset,
        born_timestamp: m.born_timestamp,
        store_timestamp: m.store_timestamp,
        message_id: None,
        keys: None,
        tags: None,
        properties: None,
        body: m.body.to_vec(),
    }
}

/// A row of the natively compiled converter, in the host's types.
fn host_row(row: sdk::Row) -> host::Row {
    let cells = row
        .cells
        .into_iter()
        .map(|cell| match cell {
            sdk::Cell::Null => host::Cell::Null,
            sdk::Cell::Bool(v) => host::Cell::Bool(v),
            sdk::Cell::Smallint(v) => host::Cell::Smallint(v),
            sdk::Cell::Int(v) => host::Cell::Int(v),
            sdk::Cell::Bigint(v) => host::Cell::Bigint(v),
            sdk::Cell::Float(v) => host::Cell::Float(v),
            sdk::Cell::Double(v) => host::Cell::Double(v),
            sdk::Cell::String(v) => host::Cell::String(v),
            sdk::Cell::Date(d) => host::Cell::Date(host::Date { year: d.year, month: d.month, day: d.day }),
            sdk::Cell::Timestamp(v) => host::Cell::Timestamp(v),
        })
        .collect();
    host::Row { source_index: row.source_index, cells }
}

/// Latency figures at one rate; from the delivery histogram's bucket
/// bounds (`≤`) when the rows cannot be watched one by one.
struct Latency {
    rows: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
    exact: bool,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let namesrv = std::env::var("ROCKETMQ_NAMESRV").unwrap_or_else(|_| "127.0.0.1:9876".into());
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let (default_count, duration) =
        if quick { (50_000, Duration::from_secs(5)) } else { (200_000, Duration::from_secs(15)) };
    let count: i64 = std::env::var("BENCH_MESSAGES").ok().and_then(|n| n.parse().ok()).unwrap_or(default_count);
    let client = RocketMqClient::new().expect("RocketMQ client");
    let runtime = client.client();
    client.run(async move {
        // Kept until the end: the native side and its private ZooKeeper.
        let mut native_parts: Option<(ZooKeeper, NativeSide)> = None;
        let backend = match std::env::var("OPENMLDB_APISERVER") {
            Ok(addr) => {
                let api = ApiClient::new(&addr, Duration::from_secs(30)).expect("client");
                println!("writing into the OpenMLDB APIServer at {addr}, database {DATABASE}");
                Backend::Remote { addr, api }
            }
            Err(_) => {
                let standin = StandIn::start("127.0.0.1:0".parse().expect("address"), StandInOptions::default())
                    .await
                    .expect("stand-in");
                println!("writing into the OpenMLDB stand-in (in this process), database {DATABASE}");
                let port =
                    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
                match ZooKeeper::start_on(port) {
                    Ok(zk) => {
                        let native = NativeSide::start(standin.state.clone(), &zk.hosts(), "/openmldb_cluster")
                            .await
                            .expect("native side");
                        native_parts = Some((zk, native));
                    }
                    Err(e) => println!("no native path: {e}"),
                }
                Backend::StandIn(standin)
            }
        };
        let native_url = native_parts
            .as_ref()
            .map(|(zk, _)| format!("jdbc:openmldb:///{DATABASE}?zk={}&zkPath=/openmldb_cluster", zk.hosts()));
        let api = ApiClient::new(&backend.addr(), Duration::from_secs(30)).expect("client");
        // An existing database is fine.
        let _ = api.execute(DATABASE, &format!("CREATE DATABASE {DATABASE}")).await;
        let engine = Arc::new(PluginEngine::new(RuntimeConfig { cache_dir: None }).expect("engine"));
        let bench = Bench { namesrv: namesrv.clone(), runtime, engine, backend, native_url, stamp };

        println!("End to end: broker at {namesrv}, an rmq-openmldb worker process per scenario, the OpenMLDB stand-in");
        let (topic, ceiling, ceiling_cpu) = bench.preload_and_ceiling(count).await;
        println!("{count} preloaded employee_test envelopes over {QUEUES} queues:");
        println!(
            "  {:<40} {ceiling:>9.0} msg/s, {:.2} CPU µs/message (this process)",
            "raw consume ceiling (poll + ack)", ceiling_cpu.total
        );
        println!(
            "  {:<40} {:>9} {:>6} {} {:>8}",
            "worker process, JsonConverter envelopes",
            "rows/s",
            "of ceil",
            CpuPerRow::headings(),
            "peak RSS"
        );
        let mut scenarios: Vec<(&str, &str, Path, ConnectorKeys)> =
            vec![("api", "guide's pipeline, APIServer", Path::ApiServer, &[])];
        if bench.native_url.is_some() {
            scenarios.push(("native", "guide's pipeline, native writer", Path::Native, &[]));
        }
        scenarios.push(("one", "+ 1 WASM transform, APIServer", Path::ApiServer, ONE_TRANSFORM));
        scenarios.push(("three", "+ 3 WASM transforms (4 plugins), APIServer", Path::ApiServer, THREE_TRANSFORMS));
        for (variant, label, path, extra) in scenarios {
            let figures = bench.worker_process(&topic, count, variant, path, extra).await;
            println!(
                "  {label:<40} {:>9.0} {:>7.2} {} {:>6.1}MB",
                figures.rate,
                figures.rate / ceiling,
                figures.cpu.cells(),
                figures.peak_rss as f64 / 1e6
            );
        }

        // The plugins alone, in a plain loop in this process (poll, convert,
        // write, acknowledge, no overlap): the native converter against the
        // WASM one, and the WASM one with three WASM transforms.
        let host_schema =
            host::TableSchema { database: DATABASE.into(), table: "employee_test".into(), columns: table_columns() };
        let sdk_schema = sdk::TableSchema {
            database: DATABASE.into(),
            table: "employee_test".into(),
            columns: table_columns()
                .into_iter()
                .map(|c| sdk::Column {
                    name: c.name,
                    type_: match c.type_ {
                        host::ColumnType::Bigint => sdk::ColumnType::Bigint,
                        host::ColumnType::Int => sdk::ColumnType::Int,
                        host::ColumnType::Double => sdk::ColumnType::Double,
                        host::ColumnType::Timestamp => sdk::ColumnType::Timestamp,
                        _ => sdk::ColumnType::String,
                    },
                    nullable: true,
                })
                .collect(),
        };
        let mut native =
            json_converter::JsonConverter::new(&sdk::PluginConfig::default(), sdk_schema).expect("native converter");
        let (native_rate, native_cpu) = bench
            .sequential(&topic, count, "native", |batch| {
                let messages: Vec<sdk::Message> = batch.iter().map(sdk_message).collect();
                native.convert_batch(&messages).rows.into_iter().map(host_row).collect()
            })
            .await;
        let plugin = bench
            .engine
            .load(PluginCatalog::default().resolve("json-converter").expect("built-in"), Some(Role::Converter))
            .expect("load json-converter");
        let services = PluginServices::new("json-converter", "bench");
        let mut wasm =
            ConverterInstance::new(&bench.engine, plugin, vec![], host_schema.clone(), services).expect("instance");
        let (wasm_rate, wasm_cpu) = bench
            .sequential(&topic, count, "wasmloop", |batch| {
                let messages: Vec<host::Message> = batch.iter().map(host_message).collect();
                wasm.convert(&messages).expect("convert").rows
            })
            .await;
        let mut three_config = connector_config(&topic, &bench.backend.addr());
        three_config.extend(THREE_TRANSFORMS.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let three = SinkSettings::from_config("e2e-chain", &namesrv, &three_config).expect("settings");
        let mut chain = PluginChain::new(
            &bench.engine,
            &PluginCatalog::default(),
            &three.converter,
            &three.transforms,
            host_schema,
            "e2e-chain",
        )
        .expect("chain");
        let (chain_rate, chain_cpu) = bench
            .sequential(&topic, count, "chainloop", |batch| {
                let messages: Vec<host::Message> = batch.iter().map(host_message).collect();
                chain.run(&messages).expect("chain").rows
            })
            .await;
        println!(
            "  {:<40} {:>9} {:>7} {:>14} {:>10}",
            "plain loop in this process", "rows/s", "of ceil", "plugin µs/row", "of native"
        );
        for (label, rate, cpu) in [
            ("native converter (comparison)", native_rate, native_cpu),
            ("WASM converter", wasm_rate, wasm_cpu),
            ("WASM converter + 3 WASM transforms", chain_rate, chain_cpu),
        ] {
            println!("  {label:<40} {rate:>9.0} {:>7.2} {cpu:>14.2} {:>10.2}", rate / ceiling, rate / native_rate);
        }

        println!("latency, send to row stored ({} s per rate, the sink task in this process):", duration.as_secs());
        println!("  {:>12} {:>10} {:>10} {:>10} {:>10}", "msg/s", "rows", "p50", "p99", "max");
        for rate in [1_000u64, 10_000, 50_000] {
            let l = bench.latency(rate, duration).await;
            let at_most = if l.exact { "" } else { "≤" };
            println!(
                "  {:>12} {:>10} {at_most:>1}{:>7.1}ms {at_most:>1}{:>7.1}ms {at_most:>1}{:>7.1}ms",
                rate,
                l.rows,
                l.p50.as_secs_f64() * 1e3,
                l.p99.as_secs_f64() * 1e3,
                l.max.as_secs_f64() * 1e3,
            );
        }
        drop(native_parts);
    });
}
