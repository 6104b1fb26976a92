//! Every clap type of the `hubmirror` command line, in one place. Doc comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Active-active replication between Kafka clusters and Azure Event Hubs namespaces.
#[derive(Debug, Parser)]
#[command(name = "hubmirror", version, about)]
pub struct Opt {
    /// `-c` and `--log-format`: accepted before the command and after it.
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub command: Command,
}

impl Opt {
    /// The command, its [`Common`] options filled from wherever they were given.
    pub fn into_command(self) -> Command {
        let mut command = self.command;
        *command.common_mut() = self.common;
        command
    }
}

/// Options every command takes, before or after the command's name (`hubmirror -c t.yaml
/// status` and `hubmirror status -c t.yaml`). Parsed once, on [`Opt`]; the copy each command's
/// arguments carry is filled by [`Opt::into_command`].
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
    ///
    /// The topology file is read once, at start: changes to clusters, flows or settings take
    /// effect after a restart (there is no reload on SIGHUP). New source topics that a flow's
    /// patterns match are picked up while running: within seconds of a start, then every
    /// replication.refresh_topics_interval.
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
    /// Print the topology equivalent to a Strimzi KafkaMirrorMaker / KafkaMirrorMaker2 resource
    /// or a MirrorMaker 2 properties file.
    ///
    /// Secrets are never copied: a Kubernetes Secret becomes a file path
    /// (<secrets-dir>/<secret name>/<key>), a properties password a ${VAR} reference. Every
    /// setting that cannot be carried over is a comment saying why.
    Import(ImportArgs),
}

impl Default for Common {
    fn default() -> Self {
        Common {
            config: PathBuf::from("./topology.yaml"),
            log_format: LogFormat::Human,
        }
    }
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
            Command::Import(a) => &a.common,
        }
    }

    /// [`Self::common`], to fill.
    pub fn common_mut(&mut self) -> &mut Common {
        match self {
            Command::Run(a) => &mut a.common,
            Command::Validate(a) => &mut a.common,
            Command::Topics(a) => &mut a.common,
            Command::Status(a) => &mut a.common,
            Command::Checkpoints(a) => &mut a.common,
            Command::Translate(a) => &mut a.common,
            Command::Failover(a) => &mut a.common,
            Command::Import(a) => &mut a.common,
        }
    }
}

/// `hubmirror run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[arg(skip)]
    pub common: Common,
    /// This instance's name in the flows' consumer groups (static membership): stable across
    /// restarts, unique among the instances running one topology. Default: an id kept in the
    /// store. The Kubernetes manifests set it to the pod name.
    #[arg(long, env = "HUBMIRROR_INSTANCE", value_name = "NAME")]
    pub instance: Option<String>,
}

/// `hubmirror validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[arg(skip)]
    pub common: Common,
}

/// `hubmirror topics`.
#[derive(Debug, Args)]
pub struct TopicsArgs {
    #[arg(skip)]
    pub common: Common,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `hubmirror status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[arg(skip)]
    pub common: Common,
    /// Print one JSON document instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// `hubmirror checkpoints`.
#[derive(Debug, Args)]
pub struct CheckpointsArgs {
    #[arg(skip)]
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
    #[arg(skip)]
    pub common: Common,
    #[command(flatten)]
    pub r#move: Move,
}

/// `hubmirror failover`.
#[derive(Debug, Args)]
pub struct FailoverArgs {
    #[arg(skip)]
    pub common: Common,
    #[command(flatten)]
    pub r#move: Move,
    /// Commit the plan for the group on the target (refused with exit 3 while the group has
    /// active members there). Without it, only the plan is printed.
    #[arg(long)]
    pub execute: bool,
}

/// `hubmirror import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    #[arg(skip)]
    pub common: Common,
    /// The Strimzi resource (YAML, may hold several documents and the Secrets) or the
    /// `.properties` file.
    pub file: PathBuf,
    /// Write the topology to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Where each Kubernetes Secret is mounted: `*_file` keys read <DIR>/<secret name>/<key>.
    #[arg(long, value_name = "DIR", default_value = crate::import::DEFAULT_SECRETS_DIR)]
    pub secrets_dir: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn config_of(args: &[&str]) -> PathBuf {
        let opt = Opt::try_parse_from(args).expect("parses");
        opt.into_command().common().config.clone()
    }

    #[test]
    fn common_options_go_before_or_after_the_command() {
        let want = PathBuf::from("t.yaml");
        assert_eq!(config_of(&["hubmirror", "-c", "t.yaml", "validate"]), want);
        assert_eq!(config_of(&["hubmirror", "validate", "-c", "t.yaml"]), want);
        assert_eq!(
            config_of(&["hubmirror", "topics", "--json"]),
            PathBuf::from("./topology.yaml")
        );
        let opt = Opt::try_parse_from(["hubmirror", "--log-format", "json", "status"]);
        let command = opt.expect("parses").into_command();
        assert_eq!(command.common().log_format, LogFormat::Json);
    }

    #[test]
    fn run_help_says_topology_changes_need_a_restart() {
        let mut cmd = Opt::command();
        let run = cmd.find_subcommand_mut("run").expect("run");
        let help = run.render_long_help().to_string();
        assert!(help.contains("take effect after a restart"), "{help}");
    }
}
