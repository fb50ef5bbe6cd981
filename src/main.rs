//! The `tessera` binary: parse the command line, load the settings, run the command.
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    bound_malloc_arenas();
    let cli = tessera::cli::Cli::parse();
    tessera::cli::run(cli)
}

/// glibc's malloc gives every thread that allocates while others do an arena of its own (up to
/// eight per core) and keeps in each what it once held: under c = 64 the server's blocking
/// threads grew 16 arenas and RSS with them (docs/performance.md, "Allocator"). glibc reads
/// `MALLOC_ARENA_MAX` before `main`, so the process starts itself again with it set, unless
/// the environment already names a value (which is then the operator's choice).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn bound_malloc_arenas() {
    use std::os::unix::process::CommandExt;

    const VARIABLE: &str = "MALLOC_ARENA_MAX";
    if std::env::var_os(VARIABLE).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(exe);
    if let Some(name) = args.next() {
        command.arg0(name);
    }
    let error = command.args(args).env(VARIABLE, "2").exec();
    // `exec` returns only when it failed: run as we are, with glibc's default arenas.
    drop(error);
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn bound_malloc_arenas() {}
