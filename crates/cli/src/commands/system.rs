//! `rpod system …`.

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::global::GlobalOpts;
use crate::output;

/// `rpod system` subcommands.
#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// List every registered backend by kind, name and summary
    Backends(BackendsArgs),
}

/// Arguments of `rpod system backends`.
#[derive(Debug, Args)]
pub struct BackendsArgs {
    /// Output format: json, or a table
    #[arg(short, long)]
    pub format: Option<String>,
}

/// Runs a `system` subcommand.
pub fn run(_g: &GlobalOpts, c: SystemCommand) -> Result<()> {
    match c {
        SystemCommand::Backends(a) => {
            let list = rpod_runtime::info::backends();
            if output::is_json(a.format.as_deref()) {
                return output::print_json(&list);
            }
            println!("{:<12} {:<10} SUMMARY", "KIND", "NAME");
            for b in list {
                println!("{:<12} {:<10} {}", b.kind, b.name, b.summary);
            }
            Ok(())
        }
    }
}
