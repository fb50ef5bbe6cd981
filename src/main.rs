//! The `tessera` binary: parse the command line, load the settings, run the command.
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = tessera::cli::Cli::parse();
    tessera::cli::run(cli)
}
