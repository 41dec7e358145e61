//! OpenMLDB writer throughput into the APIServer stand-in: rows/s for
//! batch sizes 1, 100 and 1000 with 1 to 8 statements in flight, and the
//! stand-in's own ingest ceiling (pre-built INSERT statements posted as
//! fast as it takes them), so a figure limited by the stand-in shows as
//! such.
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

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let budget = Duration::from_millis(if quick { 400 } else { 1500 });
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
}
