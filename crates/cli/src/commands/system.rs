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
    /// Copy podman's containers, pods and volumes into rpod's own database
    ImportPodman(super::import_podman::ImportPodmanArgs),
    /// Give every container, pod and volume a fresh lock (after num_locks changed)
    Renumber(super::system_lifecycle::RenumberArgs),
    /// Remove every container, pod and volume and all of rpod's storage
    Reset(super::system_lifecycle::ResetArgs),
    /// Rewrite stored records in the current schema; optionally change every container's runtime
    Migrate(super::system_lifecycle::MigrateArgs),
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
        SystemCommand::ImportPodman(a) => super::import_podman::run(_g, a),
        SystemCommand::Renumber(a) => super::system_lifecycle::renumber(_g, a),
        SystemCommand::Reset(a) => super::system_lifecycle::reset(_g, a),
        SystemCommand::Migrate(a) => super::system_lifecycle::migrate(_g, a),
        SystemCommand::Backends(a) => {
            // loads the plugins of `plugin_dirs` too
            _g.load_config()?.validate_backends()?;
            let list = rpod_runtime::info::backends();
            if output::is_json(a.format.as_deref()) {
                return output::print_json(&list);
            }
            println!("{:<12} {:<10} SUMMARY", "KIND", "NAME");
            for b in list {
                let from = b
                    .origin
                    .strip_prefix("plugin ")
                    .map(|p| format!(" (plugin {p})"))
                    .unwrap_or_default();
                println!("{:<12} {:<10} {}{from}", b.kind, b.name, b.summary);
            }
            Ok(())
        }
    }
}
