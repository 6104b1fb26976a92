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
    /// The latest checkpoint of each (group, topic, partition).
    Checkpoints(CheckpointsArgs),
    /// Where group G, at its position on cluster A, should resume on cluster B.
    Translate(TranslateArgs),
    /// Move group G from cluster A to cluster B: a dry run (the plan) unless --execute.
    Failover(FailoverArgs),
}

impl Command {
    /// The options every command takes.
    pub fn common(&self) -> &Common {
        match self {
            Command::Run(a) => &a.common,
            Command::Validate(a) => &a.common,
            Command::Topics(a) => &a.common,
            Command::Status(a) => &a.common,
            Command::Checkpoints(a) => &a.common,
            Command::Translate(a) => &a.common,
            Command::Failover(a) => &a.common,
        }
    }
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

/// `hubmirror checkpoints`.
#[derive(Debug, Args)]
pub struct CheckpointsArgs {
    #[command(flatten)]
    pub common: Common,
    /// Only this consumer group.
    #[arg(long)]
    pub group: Option<String>,
    /// Print one JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The group and direction of `translate` and `failover`.
#[derive(Debug, Clone, Args)]
pub struct Move {
    /// The consumer group.
    #[arg(long)]
    pub group: String,
    /// The cluster alias the group is on now.
    #[arg(long)]
    pub from: String,
    /// The cluster alias the group moves to.
    #[arg(long)]
    pub to: String,
    /// Print one JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `hubmirror translate`.
#[derive(Debug, Args)]
pub struct TranslateArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub r#move: Move,
}

/// `hubmirror failover`.
#[derive(Debug, Args)]
pub struct FailoverArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub r#move: Move,
    /// Commit the plan for the group on the target (refused with exit 3 while the group has
    /// active members there). Without it, only the plan is printed.
    #[arg(long)]
    pub execute: bool,
}
