//! `openmldb-standin --listen 127.0.0.1:PORT`: a stand-in for OpenMLDB's
//! APIServer, for tests (see lib.rs).

use anyhow::Context;
use clap::Parser;
use openmldb_standin::{StandIn, StandInOptions, Wording};
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let wording = if args.wording == "current" { Wording::Current } else { Wording::V093 };
    let standin = StandIn::start(args.listen, StandInOptions { wording, tablets: args.tablets })
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    eprintln!("openmldb-standin: OpenMLDB APIServer stand-in listening on http://{}", standin.addr);
    tokio::signal::ctrl_c().await?;
    Ok(())
}
