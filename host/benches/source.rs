//! MySQL throughput, both ways. Source: rows per second from a MariaDB
//! table into a RocketMQ topic (read through the SQL capability by the
//! WASM `mysql-source` plugin, envelopes built, batches sent and
//! acknowledged, positions stored), for `batch.max.rows` 100 (RocketMQ
//! Connect's default) and 1000, in incrementing mode on the guide's
//! `employee_test` columns. Sink: those envelopes from the topic back into
//! a MariaDB table through the WASM `mysql-sink` plugin (auto.create,
//! converter, one multi-row statement per batch), with `insert.mode`
//! INSERT and UPSERT, and with `batch.size` 1 (one statement and one
//! transaction per row, the row-at-a-time baseline).
//!
//! Run: `scripts/rocketmq.sh start && scripts/mariadb.sh start && cargo
//! bench -p rmq-openmldb --bench source` (`-- --quick` for fewer rows).
//! `ROCKETMQ_NAMESRV` and `MARIADB_PORT`/`MARIADB_USER`/`MARIADB_PASSWORD`
//! point it elsewhere.

#[path = "common/cpu.rs"]
#[allow(dead_code)] // a worker's readings are for end_to_end
mod cpu;

use cpu::{CpuPerRow, CpuReading};
use mysql_async::prelude::Queryable;
use rmq_openmldb::connector::{
    ConnectorDefinition, PositionStore, SinkSettings, SourceSettings, TaskControl, run_sink_task, run_source_task,
};
use rmq_openmldb::plugin::{PluginCatalog, PluginEngine, RuntimeConfig};
use rmq_openmldb::rocketmq::RocketMqClient;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_string())
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rows: u64 = if quick { 50_000 } else { 200_000 };
    let namesrv = env_or("ROCKETMQ_NAMESRV", "127.0.0.1:9876");
    let (port, user, password) =
        (env_or("MARIADB_PORT", "3306"), env_or("MARIADB_USER", "rmq"), env_or("MARIADB_PASSWORD", "rmq-secret"));
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let database = format!("bench_source_{stamp}");
    let client = RocketMqClient::new().expect("RocketMQ client");
    let runtime = client.client();
    client.run(async move {
        let url = format!("mysql://{user}:{password}@127.0.0.1:{port}");
        let mut conn = mysql_async::Conn::from_url(&url).await.expect("MariaDB (scripts/mariadb.sh start)");
        conn.query_drop(format!("CREATE DATABASE {database}")).await.expect("create database");
        conn.query_drop(format!(
            "CREATE TABLE {database}.employee_test (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, name VARCHAR(128), \
             howold INT, male INT, company VARCHAR(128), money DOUBLE, begin_time DATETIME)"
        ))
        .await
        .expect("create table");
        let started = Instant::now();
        for chunk in (1..=rows).collect::<Vec<_>>().chunks(2000) {
            let values: Vec<String> = chunk
                .iter()
                .map(|id| format!("({id},'name-{id}',{},{},'company',{id}.25,'2022-02-08 19:06:39')", id % 60, id % 2))
                .collect();
            conn.query_drop(format!("INSERT INTO {database}.employee_test VALUES {}", values.join(",")))
                .await
                .expect("insert");
        }
        println!("MySQL source: {rows} rows of employee_test inserted in {:.1} s", started.elapsed().as_secs_f64());
        println!("{:<16} {:>12} {:>22}", "batch.max.rows", "rows/s", "plugin poll, mean");

        let engine = Arc::new(PluginEngine::new(RuntimeConfig::default()).expect("plugin engine"));
        for batch_rows in [100u32, 1000] {
            let connector = format!("bench-source-{stamp}-{batch_rows}");
            let config = [
                ("connector.class", "mysql-source".to_string()),
                ("connection.url", format!("jdbc:mysql://127.0.0.1:{port}")),
                ("connection.user", user.clone()),
                ("connection.password", password.clone()),
                ("table.whitelist", format!("{database}.employee_test")),
                ("mode", "incrementing".into()),
                ("incrementing.column.name", "id".into()),
                ("batch.max.rows", batch_rows.to_string()),
                ("connect.topicname", format!("bench_source_{stamp}_{batch_rows}")),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            let definition = ConnectorDefinition::parse(&connector, config, &namesrv).expect("connector definition");
            let settings = SourceSettings::for_tasks(&definition, &namesrv).expect("settings").remove(0);
            let data = tempfile::tempdir().expect("temp dir");
            let positions = PositionStore::open(data.path(), &connector).expect("position store");
            let cancel = CancellationToken::new();
            let control = TaskControl::unpaused(cancel.clone());
            let progress = control.progress.clone();
            let started = Instant::now();
            let task = tokio::spawn(run_source_task(
                settings,
                engine.clone(),
                PluginCatalog::new(None),
                runtime.clone(),
                positions,
                control,
            ));
            let deadline = Instant::now() + Duration::from_secs(600);
            while progress.messages() < rows && Instant::now() < deadline && !task.is_finished() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let elapsed = started.elapsed().as_secs_f64();
            let sent = progress.messages();
            cancel.cancel();
            match task.await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => panic!("source task failed: {e}"),
                Err(e) => panic!("source task panicked: {e}"),
            }
            assert_eq!(sent, rows, "the source sent {sent} of {rows} rows");
            let poll = progress.plugin_time.snapshot();
            let mean_poll_ms = if poll.count > 0 { poll.sum_seconds * 1e3 / poll.count as f64 } else { 0.0 };
            println!("{:<16} {:>12.0} {:>19.2} ms", batch_rows, rows as f64 / elapsed, mean_poll_ms);
        }

        // The sink direction: the last source run's topic back into MySQL.
        let topic = format!("bench_source_{stamp}_1000");
        println!("MySQL sink: {rows} envelopes from {topic} into MariaDB (mysql-sink plugin)");
        println!(
            "{:<26} {:>10} {:>12} {:>16} {}",
            "insert.mode / batch.size",
            "rows",
            "rows/s",
            "write per batch",
            CpuPerRow::headings()
        );
        for (mode, batch_size, limit) in
            [("INSERT", 3000u64, rows), ("UPSERT", 3000, rows), ("INSERT", 1, rows.min(5000))]
        {
            let connector = format!("bench-sink-{stamp}-{}-{batch_size}", mode.to_lowercase());
            let table = connector.replace('-', "_");
            let config = [
                ("connector.class", "org.apache.rocketmq.connect.jdbc.connector.JdbcSinkConnector".to_string()),
                ("connect.topicnames", topic.clone()),
                ("connection.url", format!("jdbc:mysql://127.0.0.1:{port}/{database}")),
                ("connection.user", user.clone()),
                ("connection.password", password.clone()),
                ("table.name.format", table),
                ("auto.create", "true".into()),
                ("pk.fields", "id".into()),
                ("insert.mode", mode.into()),
                ("batch.size", batch_size.to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            let settings = SinkSettings::from_config(&connector, &namesrv, &config).expect("sink settings");
            let cancel = CancellationToken::new();
            let control = TaskControl::unpaused(cancel.clone());
            let progress = control.progress.clone();
            let started = Instant::now();
            let task = tokio::spawn(run_sink_task(
                settings,
                engine.clone(),
                PluginCatalog::new(None),
                runtime.clone(),
                control,
            ));
            let deadline = Instant::now() + Duration::from_secs(600);
            // Measured from the first rows stored (plugins loaded, table
            // created) to the last; this process does nothing else meanwhile.
            let mut first: Option<(Instant, u64, CpuReading)> = None;
            while progress.rows_written() < limit && Instant::now() < deadline && !task.is_finished() {
                if first.is_none() && progress.rows_written() > 0 {
                    first = Some((Instant::now(), progress.rows_written(), CpuReading::here()));
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let end = CpuReading::here();
            let written = progress.rows_written();
            let (first_at, first_rows, cpu_start) = first.unwrap_or((started, 0, end));
            let elapsed = first_at.elapsed().as_secs_f64();
            let measured = written.saturating_sub(first_rows);
            let cpu = CpuPerRow::between(&cpu_start, &end, measured as usize);
            cancel.cancel();
            match task.await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => panic!("sink task failed: {e}"),
                Err(e) => panic!("sink task panicked: {e}"),
            }
            assert!(written >= limit, "the sink wrote {written} of {limit} rows");
            let write = progress.write_time.snapshot();
            let mean_write_ms = if write.count > 0 { write.sum_seconds * 1e3 / write.count as f64 } else { 0.0 };
            let label = format!("{mode} / {batch_size}");
            println!(
                "{label:<26} {written:>10} {:>12.0} {mean_write_ms:>13.2} ms {}",
                measured as f64 / elapsed,
                cpu.cells()
            );
        }
        conn.query_drop(format!("DROP DATABASE {database}")).await.expect("drop database");
        conn.disconnect().await.ok();
    });
}
