//! The command tree. One module per command or command group; each has an
//! `Args` struct (clap) and a `run` function that calls the engine and prints.

mod info;
mod system;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::global::GlobalOpts;

/// rpod: a daemonless container engine with podman's habits.
#[derive(Debug, Parser)]
#[command(name = "rpod", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

/// Every top-level command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Display rpod's view of the host, its configuration and backends
    Info(info::InfoArgs),
    /// Manage rpod itself
    #[command(subcommand)]
    System(system::SystemCommand),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<()> {
    let g = &cli.global;
    match cli.command {
        Command::Info(a) => info::run(g, a),
        Command::System(c) => system::run(g, c),
    }
}
