//! `openmldb-standin --listen 127.0.0.1:PORT [--start-zookeeper 2181]`: a
//! stand-in for OpenMLDB's APIServer and, with a ZooKeeper, its native side,
//! for tests and the quickstart (see lib.rs).

use anyhow::Context;
use clap::Parser;
use openmldb_standin::{NativeSide, StandIn, StandInOptions, Wording, ZooKeeper};
use std::net::SocketAddr;

#[derive(Parser)]
#[command(about = "A stand-in for OpenMLDB's APIServer (in memory, for tests)")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9080")]
    listen: SocketAddr,
    /// Error wording: v0.9.3 (the latest release) or current (unreleased main).
    #[arg(long, default_value = "v0.9.3", value_parser = ["v0.9.3", "current"])]
    wording: String,
    /// Tablets of the pretend cluster (REPLICANUM defaults to min(tablets, 3)).
    #[arg(long, default_value_t = 3)]
    tablets: u32,
    /// Also serve the native side (nameserver and tablets over baidu_std),
    /// registered in the ZooKeeper at HOST:PORT.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "start_zookeeper")]
    zookeeper: Option<String>,
    /// Start a private ZooKeeper (Debian's package) on 127.0.0.1:PORT and
    /// serve the native side there.
    #[arg(long, value_name = "PORT")]
    start_zookeeper: Option<u16>,
    /// The cluster's root node in ZooKeeper.
    #[arg(long, default_value = "/openmldb_cluster")]
    zk_path: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let wording = if args.wording == "current" { Wording::Current } else { Wording::V093 };
    let standin = StandIn::start(args.listen, StandInOptions { wording, tablets: args.tablets })
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    eprintln!("openmldb-standin: OpenMLDB APIServer stand-in listening on http://{}", standin.addr);
    let private = args.start_zookeeper.map(ZooKeeper::start_on).transpose()?;
    let zk = private.as_ref().map(ZooKeeper::hosts).or(args.zookeeper);
    let _native = match zk {
        Some(zk) => {
            let native = NativeSide::start(standin.state.clone(), &zk, &args.zk_path).await?;
            eprintln!(
                "openmldb-standin: native side (nameserver {}, tablets {:?}) registered in ZooKeeper {zk} under {}",
                native.nameserver, native.tablets, args.zk_path
            );
            Some(native)
        }
        None => None,
    };
    // SIGINT or SIGTERM: return, so the private ZooKeeper is stopped on drop.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        signal = tokio::signal::ctrl_c() => signal?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
