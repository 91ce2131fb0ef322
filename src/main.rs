//! The `fmnist` command line: parses flags, calls the library, and turns any error into one line plus a
//! `hint:` line and a non-zero exit code.

mod commands;

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
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
    let cli = match commands::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return argument_error(e),
    };
    let code = match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            errln!("error: {}", fmnist::error::one_line(&err));
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

/// A flag the parser refused, as every other error: one `error:` line, a `hint:` line (clap's tip, or
/// where the flags are listed), exit code 2. `--help` and `--version` print as usual.
fn argument_error(e: clap::Error) -> ExitCode {
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // A message ending in ':' lists what it is about on the indented lines below (a missing flag):
    // they join the one line.
    let mut message = first.to_string();
    if first.ends_with(':') {
        let listed: Vec<&str> = text
            .lines()
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .map(str::trim)
            .collect();
        message = format!("{first} {}", listed.join(", "));
    }
    let tips: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("tip: "))
        .collect();
    // The subcommand whose flags apply: the first argument that names one.
    let cli = <commands::Cli as clap::CommandFactory>::command();
    let command = std::env::args()
        .skip(1)
        .find(|a| cli.get_subcommands().any(|s| s.get_name() == a))
        .map_or_else(|| "fmnist".to_string(), |s| format!("fmnist {s}"));
    errln!("error: {message}");
    if tips.is_empty() {
        errln!("hint: `{command} --help` lists the flags");
    } else {
        errln!("hint: {}", tips.join("; "));
    }
    fmnist::console::report_failures();
    ExitCode::from(2)
}
