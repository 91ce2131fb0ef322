//! The `fmnist` command line: parses flags, calls the library, and turns any error into one line plus a
//! `hint:` line and a non-zero exit code.

mod commands;

use std::process::ExitCode;

use clap::Parser;
use fmnist::errln;

fn main() -> ExitCode {
    // `fmnist info | head` should end quietly like any Unix tool, not panic on the closed pipe (other
    // write failures go through `fmnist::console`, which never panics).
    #[cfg(unix)]
    // SAFETY: restoring the default action of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = commands::Cli::parse();
    let code = match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            errln!("error: {err:#}");
            if let Some(hint) = fmnist::error::hint_of(&err) {
                errln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    };
    // Output that could not be written never panics (the work is still done and saved), but it is said
    // on the stream that still works and turns a success into a failure.
    if fmnist::console::report_failures() && code == ExitCode::SUCCESS {
        return ExitCode::FAILURE;
    }
    code
}
