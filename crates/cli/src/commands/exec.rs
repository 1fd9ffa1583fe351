//! `rpod exec`: run a process in a running container.

use anyhow::Result;
use clap::Args;
use rpod_runtime::exec::{ExecOptions, ExecOutcome};

use crate::commands::container::runtime;
use crate::commands::terminal::{self, AttachEnd};
use crate::global::GlobalOpts;
use crate::ExitStatus;

/// `rpod exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Run the process in the background and print the session id
    #[arg(short, long)]
    pub detach: bool,
    /// Key sequence to detach from a -it session (e.g. ctrl-p,ctrl-q; empty disables)
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// Set environment variables
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Keep STDIN open
    #[arg(short, long)]
    pub interactive: bool,
    /// Give the process extended privileges (every capability)
    #[arg(long)]
    pub privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Username or UID[:GID] to run as
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// CONTAINER followed by the command and its arguments
    #[arg(
        required = true,
        num_args = 2..,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CONTAINER COMMAND [ARG...]"
    )]
    pub args: Vec<String>,
}

/// Runs `rpod exec`; the process's exit code is rpod's.
pub fn exec(g: &GlobalOpts, a: ExecArgs) -> Result<()> {
    let (ctr, command) = a
        .args
        .split_first()
        .ok_or_else(|| anyhow::anyhow!("exec needs a container and a command"))?;
    let opts = ExecOptions {
        command: command.to_vec(),
        env: a.env,
        workdir: a.workdir,
        user: a.user,
        privileged: a.privileged,
        tty: a.tty,
        interactive: a.interactive,
        detach: a.detach,
    };
    let rt = runtime(g)?;
    if a.tty && !a.detach {
        // A terminal session: the user's terminal goes raw while attached (with
        // -i), its size follows the user's, and the detach sequence leaves
        // the process running.
        let keys = terminal::detach_keys(&rt, a.detach_keys.as_deref())?;
        let mut failed = None;
        let out = rt.exec_attached(
            ctr,
            &opts,
            &mut |sock, bundle| match terminal::attach_session(
                sock,
                bundle,
                true,
                a.interactive,
                &keys,
            ) {
                Ok(end) => end == AttachEnd::Detached,
                Err(e) => {
                    // do not wait on a session nobody is attached to: it
                    // goes on (conmon's exit command cleans it up) and the
                    // error is reported
                    failed = Some(e);
                    true
                }
            },
        )?;
        if let Some(e) = failed {
            return Err(e);
        }
        if let ExecOutcome::Detached { .. } = out {
            eprintln!();
            return Ok(());
        }
        return exited(out);
    }
    let stdin: Option<Box<dyn std::io::Read + Send>> = Some(Box::new(std::io::stdin()));
    let out = rt.exec(
        ctr,
        &opts,
        stdin,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    )?;
    if let ExecOutcome::Detached { session, .. } = &out {
        println!("{session}");
        return Ok(());
    }
    exited(out)
}

/// The exec'd process's exit code as rpod's.
fn exited(out: ExecOutcome) -> Result<()> {
    match out {
        ExecOutcome::Exited(code) if code != 0 => Err(ExitStatus(code.clamp(0, 255) as u8).into()),
        _ => Ok(()),
    }
}
