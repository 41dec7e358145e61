//! OpenMLDB writer throughput into the APIServer stand-in: rows/s for
//! batch sizes 1, 100 and 1000 with 1 to 8 statements in flight, and the
//! stand-in's own ingest ceiling (pre-built INSERT statements posted as
//! fast as it takes them), so a figure limited by the stand-in shows as
//! such.
//!
//! Then the native path (ZooKeeper + Puts to the tablets) against the
//! APIServer path, both into one stand-in run as its own process (with a
//! private ZooKeeper), so this process's CPU is the writer's alone: rows/s
//! and CPU microseconds per row for write() calls of 1, 100 and 1000 rows.
//!
//! Run: `cargo bench -p rmq-openmldb --bench writer` (`-- --quick` for a
//! shorter run).

use openmldb_standin::{StandIn, StandInOptions};
use rmq_openmldb::openmldb::{ApiClient, ConnectorConfig, OpenMldbWriter, WriterConfig, sql_values};
use rmq_openmldb::plugin::bindings::{Cell, Row};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn employee_rows(count: usize, offset: usize) -> Vec<Row> {
    (offset..offset + count)
        .map(|i| Row {
            source_index: 0,
            cells: vec![
                Cell::Bigint(i as i64),
                Cell::String(format!("name-{i:06}")),
                Cell::Int(18 + (i % 50) as i32),
                Cell::Int((i % 2) as i32),
                Cell::String("company".into()),
                Cell::Double(30000.5 + (i % 7000) as f64),
                Cell::Timestamp(1_640_764_800_000 + i as i64),
            ],
        })
        .collect()
}

async fn reset(client: &ApiClient) {
    let reply = client.execute("demo", "TRUNCATE TABLE employee_test").await.expect("truncate");
    assert!(reply.is_ok(), "{reply:?}");
}

/// Rows/s of the stand-in alone: `clients` connections posting pre-built
/// 1000-row INSERTs.
async fn standin_ceiling(addr: &str, clients: usize, budget: Duration) -> f64 {
    let rows = employee_rows(1000, 0);
    let mut sql = String::from("INSERT INTO employee_test VALUES ");
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            sql.push(',');
        }
        sql_values(row, &mut sql);
    }
    let body = serde_json::json!({"mode": "online", "sql": sql}).to_string();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (body, url) = (body.clone(), format!("http://{addr}/dbs/demo"));
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut rows = 0usize;
            while started.elapsed() < budget {
                let reply = http.post(&url).header("Content-Type", "application/json").body(body.clone()).send().await;
                if reply.is_ok_and(|r| r.status().is_success()) {
                    rows += 1000;
                }
            }
            rows
        }));
    }
    let mut rows = 0;
    for task in tasks {
        rows += task.await.unwrap_or(0);
    }
    rows as f64 / started.elapsed().as_secs_f64()
}

/// This process's CPU time (user + system) so far, from /proc/self/stat.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ") ".
    let fields: Vec<&str> = stat.rsplit_once(") ").map(|(_, rest)| rest.split(' ').collect()).unwrap_or_default();
    let ticks: u64 = fields.get(11..13).map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum());
    let per_second = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<u64>().ok())
        .unwrap_or(100);
    Duration::from_secs_f64(ticks as f64 / per_second as f64)
}

/// The stand-in binary next to this bench (built by `cargo build --release --workspace`).
fn standin_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let binary = dir.join("openmldb-standin");
    assert!(binary.exists(), "{} is missing: run cargo build --release -p openmldb-standin", binary.display());
    binary
}

struct ExternalStandIn {
    child: std::process::Child,
    api: String,
    zk: String,
}

impl ExternalStandIn {
    fn native_url(&self) -> String {
        format!("jdbc:openmldb:///demo?zk={}&zkPath=/openmldb_cluster", self.zk)
    }
}

impl Drop for ExternalStandIn {
    fn drop(&mut self) {
        // SIGTERM, so it stops its private ZooKeeper.
        let _ = std::process::Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn external_standin() -> ExternalStandIn {
    let (api_port, zk_port) = (free_port(), free_port());
    let child = std::process::Command::new(standin_binary())
        .args(["--listen", &format!("127.0.0.1:{api_port}"), "--start-zookeeper", &zk_port.to_string()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("stand-in starts");
    let standin = ExternalStandIn { child, api: format!("127.0.0.1:{api_port}"), zk: format!("127.0.0.1:{zk_port}") };
    let client = ApiClient::new(&standin.api, Duration::from_secs(30)).expect("client");
    let deadline = Instant::now() + Duration::from_secs(60);
    while client.execute("demo", "CREATE DATABASE demo").await.is_err() {
        assert!(Instant::now() < deadline, "the stand-in did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ddl = "CREATE TABLE employee_test (id bigint, name string, howold int, male int, company string, \
               money double, begin_time timestamp, INDEX(KEY=id, TS=begin_time))";
    assert!(client.execute("demo", ddl).await.unwrap().is_ok());
    // The native side publishes the nameserver, tablets and tables to
    // ZooKeeper on its own schedule: wait until a native writer can find them.
    let config: ConnectorConfig = [("connection.url".to_string(), standin.native_url())].into_iter().collect();
    let writer_config = WriterConfig::from_connector(&config).expect("native config");
    while let Err(error) = OpenMldbWriter::connect(writer_config.clone(), "employee_test", None).await {
        assert!(Instant::now() < deadline, "the stand-in's native side did not publish: {error:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    standin
}

/// Native against APIServer, one run, one external stand-in.
async fn native_against_apiserver(budget: Duration) {
    let standin = external_standin().await;
    let client = ApiClient::new(&standin.api, Duration::from_secs(30)).expect("client");
    println!();
    println!("native path against APIServer path, stand-in in its own process, this process's CPU only");
    println!("{:>6} {:>10} {:>12} {:>12} {:>14}", "rows", "path", "rows/s", "CPU µs/row", "native/API");
    for batch in [1usize, 100, 1000] {
        let mut figures = Vec::new();
        for (path, url) in [("APIServer", format!("openmldb://{}/demo", standin.api)), ("native", standin.native_url())]
        {
            reset(&client).await;
            let config: ConnectorConfig = [("connection.url", url), ("batch.size", batch.max(1).to_string())]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            let writer = OpenMldbWriter::connect(WriterConfig::from_connector(&config).unwrap(), "employee_test", None)
                .await
                .expect("writer");
            let cancel = CancellationToken::new();
            let rows_per_call = batch;
            let (started, cpu) = (Instant::now(), process_cpu());
            let mut written = 0usize;
            while started.elapsed() < budget {
                let report = writer.write(&employee_rows(rows_per_call, written), &cancel).await;
                assert_eq!(report.written.len(), rows_per_call, "{path}: {:?}", report.last_error);
                written += rows_per_call;
            }
            let (elapsed, cpu) = (started.elapsed(), process_cpu().saturating_sub(cpu));
            let rate = written as f64 / elapsed.as_secs_f64();
            let cpu_per_row = cpu.as_secs_f64() * 1e6 / written as f64;
            figures.push((rate, cpu_per_row));
            let ratio = if path == "native" {
                format!("{:.2}x rows/s, {:.2}x CPU", rate / figures[0].0, cpu_per_row / figures[0].1)
            } else {
                String::new()
            };
            println!("{:>6} {path:>10} {rate:>12.0} {cpu_per_row:>12.1} {ratio:>14}", rows_per_call);
        }
    }
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let budget = Duration::from_millis(if quick { 400 } else { 1500 });
    if std::env::args().any(|a| a == "--native-only") {
        // For profiling the native path alone.
        native_against_apiserver(budget).await;
        return;
    }
    let standin = StandIn::start("127.0.0.1:0".parse().unwrap(), StandInOptions::default()).await.expect("stand-in");
    let addr = standin.addr.to_string();
    let client = ApiClient::new(&addr, Duration::from_secs(30)).expect("client");
    for sql in [
        "CREATE DATABASE demo",
        "CREATE TABLE employee_test (id bigint, name string, howold int, male int, company string, money double, \
         begin_time timestamp, INDEX(KEY=id, TS=begin_time))",
    ] {
        assert!(client.execute("demo", sql).await.unwrap().is_ok());
    }

    println!("OpenMLDB writer into the APIServer stand-in, employee_test rows ({} ms per figure)", budget.as_millis());
    let mut ceiling = 0f64;
    for clients in [1, 4] {
        reset(&client).await;
        let rate = standin_ceiling(&addr, clients, budget).await;
        ceiling = ceiling.max(rate);
        println!("stand-in ceiling, {clients} connection(s), 1000-row INSERTs: {rate:>10.0} rows/s");
    }
    println!("{:>6} {:>9} {:>14} {:>16}", "batch", "inflight", "rows/s", "of the ceiling");
    for batch in [1usize, 100, 1000] {
        for inflight in [1usize, 2, 4, 8] {
            reset(&client).await;
            let config: ConnectorConfig = [
                ("connection.url", format!("openmldb://{addr}/demo")),
                ("batch.size", batch.to_string()),
                ("openmldb.max.inflight", inflight.to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            let writer = OpenMldbWriter::connect(WriterConfig::from_connector(&config).unwrap(), "employee_test", None)
                .await
                .expect("writer");
            // Each write() call hands the writer enough rows for every
            // statement in flight.
            let per_call = batch * inflight * 4;
            let cancel = CancellationToken::new();
            let started = Instant::now();
            let mut written = 0usize;
            while started.elapsed() < budget {
                let report = writer.write(&employee_rows(per_call, written), &cancel).await;
                assert_eq!(report.written.len(), per_call, "{:?}", report.last_error);
                written += per_call;
            }
            let rate = written as f64 / started.elapsed().as_secs_f64();
            println!("{batch:>6} {inflight:>9} {rate:>14.0} {:>15.0}%", rate / ceiling * 100.0);
        }
    }
    native_against_apiserver(budget).await;
}
