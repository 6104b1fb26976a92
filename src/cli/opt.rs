//! Every clap type of the `hubmirror` command line, in one place. Doc comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Active-active replication between Kafka clusters and Azure Event Hubs namespaces.
#[derive(Debug, Parser)]
#[command(name = "hubmirror", version, about)]
pub struct Opt {
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// The topology file.
    #[arg(short, long, global = true, default_value = "./topology.yaml")]
    pub config: PathBuf,

    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per line.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every flow until SIGINT/SIGTERM; then drain in-flight records, commit, exit 0.
    Run(RunArgs),
    /// Check the topology offline; print clusters, flows and the naming of each flow.
    Validate(ValidateArgs),
    /// Per flow: the source topics that match now, and their remote names.
    Topics(TopicsArgs),
    /// Per flow: state, records/s, heartbeat age, replication latency, lag; upstream clusters and hops.
    Status(StatusArgs),
}

/// `hubmirror run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: Common,
}

/// `hubmirror validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub common: Common,
}

/// `hubmirror topics`.
#[derive(Debug, Args)]
pub struct TopicsArgs {
    #[command(flatten)]
    pub common: Common,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `hubmirror status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub common: Common,
    /// Print one JSON document instead of tables.
    #[arg(long)]
    pub json: bool,
}
