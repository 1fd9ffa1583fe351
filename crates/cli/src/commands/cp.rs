//! `rpod cp`: copy between the host and a container.

use anyhow::Result;
use clap::Args;
use rpod_runtime::cp::CopyPath;

use crate::commands::container::runtime;
use crate::global::GlobalOpts;

/// `rpod cp`.
#[derive(Debug, Args)]
pub struct CpArgs {
    /// Source: a host path or CONTAINER:PATH
    pub src: String,
    /// Destination: a host path or CONTAINER:PATH
    pub dst: String,
}

/// `rpod cp`.
pub fn cp(g: &GlobalOpts, a: CpArgs) -> Result<()> {
    let rt = runtime(g)?;
    rt.copy(&CopyPath::parse(&a.src), &CopyPath::parse(&a.dst))?;
    Ok(())
}
