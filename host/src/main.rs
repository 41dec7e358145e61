//! The `rmq-openmldb` command line.

use anyhow::Result;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use rmq_openmldb::cli::connector::ConnectorCommand;
use rmq_openmldb::cli::plugin::PluginCommand;
use rmq_openmldb::cli::rocketmq::RocketMqCommand;

#[derive(Parser)]
#[command(name = "rmq-openmldb", version, about = "Stream RocketMQ into OpenMLDB, with plugins in WebAssembly")]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_parser = ["text", "json"], default_value = "text")]
    log_format: String,
    /// Log filter (tracing's EnvFilter syntax), e.g. `info` or `rmq_openmldb=debug`.
    #[arg(long, global = true, env = "RMQ_OPENMLDB_LOG", default_value = "warn")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the worker: connectors managed over the REST API
    /// (RocketMQ Connect's routes and /v1/).
    Run(rmq_openmldb::cli::run::RunArgs),
    /// List, inspect and try out plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Run a connector in the foreground from its JSON config.
    #[command(subcommand)]
    Connector(ConnectorCommand),
    /// Produce and consume RocketMQ messages (setup checks, tests).
    #[command(subcommand)]
    Rocketmq(RocketMqCommand),
}

fn main() -> Result<()> {
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches)?;
    // `plugin test` attaches each --config to the plugin named before it,
    // which needs the argument positions clap's derive API does not keep.
    if let (Command::Plugin(PluginCommand::Test(args)), Some(("plugin", plugin))) =
        (&mut cli.command, matches.subcommand())
        && let Some(("test", test)) = plugin.subcommand()
    {
        args.assign_configs(test);
    }
    rmq_openmldb::cli::init_logging(&cli.log, &cli.log_format)?;
    match cli.command {
        Command::Run(args) => rmq_openmldb::cli::run::run(args),
        Command::Plugin(command) => rmq_openmldb::cli::plugin::run(command),
        Command::Rocketmq(command) => rmq_openmldb::cli::rocketmq::run(command),
        Command::Connector(command) => rmq_openmldb::cli::connector::run(command),
    }
}
