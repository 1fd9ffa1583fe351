//! The `rpod` command.
//!
//! This crate only parses arguments, calls the engine (`rpod-runtime`) and
//! prints; it holds no engine logic. Errors print one line on stderr and exit
//! with podman's codes (125 for rpod's own errors).

mod backends;
mod commands;
mod global;
mod output;
mod template;

use std::process::ExitCode;

use clap::Parser;

/// Exit code for errors of rpod itself, as podman.
pub const EXIT_ENGINE: u8 = 125;

/// An error that carries its own exit code (a container's, or 126/127).
#[derive(Debug)]
pub struct ExitStatus(pub u8);

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for ExitStatus {}

fn main() -> ExitCode {
    // Like other Unix tools, end quietly when the reader of our output goes
    // away (`rpod ps | head`) instead of failing on every write.
    // SAFETY: setting a signal disposition to SIG_DFL at startup, before any
    // thread exists, has no memory-safety implications.
    unsafe {
        let _ = nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        );
    }
    backends::link();
    let cli = match commands::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_ENGINE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if let Err(e) = global::init_logging(&cli.global) {
        eprintln!("Error: {e:#}");
        return ExitCode::from(EXIT_ENGINE);
    }
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(ExitStatus(code)) = e.downcast_ref::<ExitStatus>() {
                return ExitCode::from(*code);
            }
            eprintln!("Error: {e:#}");
            let code = e
                .downcast_ref::<rpod_runtime::RuntimeError>()
                .map_or(EXIT_ENGINE, |re| re.exit_code());
            ExitCode::from(code)
        }
    }
}
