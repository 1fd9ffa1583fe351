//! `rpod system renumber`, `reset` and `migrate`.

use anyhow::{Context, Result};
use clap::Args;
use rpod_runtime::Runtime;

use super::container::runtime;
use crate::global::GlobalOpts;

/// `rpod system renumber`.
#[derive(Debug, Args)]
pub struct RenumberArgs {}

/// `rpod system reset`.
#[derive(Debug, Args)]
pub struct ResetArgs {
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,
}

/// `rpod system migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Move every container to this OCI runtime (a configured name or a path)
    #[arg(long, value_name = "NAME")]
    pub new_runtime: Option<String>,
}

/// Runs `rpod system renumber`.
pub fn renumber(g: &GlobalOpts, _a: RenumberArgs) -> Result<()> {
    let cfg = g.load_config()?;
    let n = Runtime::renumber(cfg)?;
    tracing::info!("renumbered the locks of {n} objects");
    Ok(())
}

/// Runs `rpod system reset`.
pub fn reset(g: &GlobalOpts, a: ResetArgs) -> Result<()> {
    if !a.force
        && !super::volume::confirm(
            "WARNING! This will remove all rpod containers, pods and volumes, the state \
             database, the locks and the events log.\nAre you sure you want to continue?",
        )
        .context("reading the confirmation")?
    {
        return Ok(());
    }
    let rt = runtime(g)?;
    let r = rt.reset()?;
    tracing::info!(
        "removed {} containers, {} pods, {} volumes",
        r.containers,
        r.pods,
        r.volumes
    );
    Ok(())
}

/// Runs `rpod system migrate`.
pub fn migrate(g: &GlobalOpts, a: MigrateArgs) -> Result<()> {
    let rt = runtime(g)?;
    let stdout = std::io::stdout();
    rt.migrate(a.new_runtime.as_deref(), &mut stdout.lock())?;
    Ok(())
}
