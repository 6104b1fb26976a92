//! `hubmirror import FILE`: prints (or writes with `-o`) the topology equivalent to a Strimzi
//! MirrorMaker resource or a MirrorMaker 2 properties file; exit 2 with one line on bad input.

use std::process::ExitCode;

use crate::cli::opt::ImportArgs;
use crate::import::{self, Options};

/// Runs `import`.
pub fn execute(args: &ImportArgs) -> ExitCode {
    let options = Options {
        secrets_dir: args.secrets_dir.clone(),
    };
    let text = match import::import_file(&args.file, &options) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("hubmirror: {e}");
            return ExitCode::from(crate::cli::EXIT_CONFIG);
        }
    };
    match &args.output {
        None => print!("{text}"),
        Some(path) => {
            if let Err(e) = std::fs::write(path, text) {
                eprintln!(
                    "hubmirror: {}: cannot write: {e}; check the directory",
                    path.display()
                );
                return ExitCode::from(crate::cli::EXIT_FAILURE);
            }
        }
    }
    ExitCode::SUCCESS
}
