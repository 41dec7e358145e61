//! `rmq-openmldb run --config worker.toml`: the worker. Restores stored
//! connectors, serves the REST API, and on Ctrl-C or SIGTERM stops every
//! task (offsets of stored rows persisted) before exiting.

use crate::plugin::{PluginEngine, RuntimeConfig};
use crate::rest;
use crate::rocketmq::RocketMqClient;
use crate::worker::{RestartPolicy, Worker, WorkerConfig};
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Worker config: `worker.toml`, or RocketMQ Connect's
    /// `connect-standalone.conf`.
    #[arg(long, short = 'c')]
    pub config: PathBuf,
}

/// The client's rebalance period: a worker that dies unannounced (the
/// broker only announces joins) loses its queues to the others at their
/// next rebalance, so that is how long a failover waits. The client's
/// default is 20 s.
const REBALANCE_INTERVAL_MS: &str = "1000";

pub fn run(args: RunArgs) -> Result<()> {
    let config = WorkerConfig::load(&args.config)?;
    if std::env::var_os("rocketmq.client.rebalance.waitInterval").is_none() {
        // SAFETY: no other thread runs yet (the plugin engine's ticker and
        // the RocketMQ runtime start below), so nothing reads the
        // environment while it changes.
        unsafe { std::env::set_var("rocketmq.client.rebalance.waitInterval", REBALANCE_INTERVAL_MS) };
    }
    let cache_dir = Some(config.data_dir.join("compiled"));
    let engine = Arc::new(PluginEngine::new(RuntimeConfig { cache_dir })?);
    let client = RocketMqClient::new()?;
    let runtime = client.client();
    client.run(async move {
        let listener = tokio::net::TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("cannot listen on {} (http_addr)", config.http_addr))?;
        let worker = Worker::start(config, engine, runtime, RestartPolicy::default()).await?;
        let address = listener.local_addr()?;
        tracing::info!(%address, worker = %worker.config().worker_id, "worker listening");
        eprintln!("rmq-openmldb worker {} listening on http://{address}", worker.config().worker_id);
        let app = rest::router(worker.clone());
        axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await.context("HTTP server")?;
        eprintln!("stopping connectors");
        worker.shutdown().await;
        eprintln!("stopped");
        Ok::<(), anyhow::Error>(())
    })
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}
