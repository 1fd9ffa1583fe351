//! `rpod pause`, `unpause`, `restart`, `rename`, `init`.

use anyhow::{bail, Result};
use clap::Args;

use crate::commands::container::runtime;
use crate::global::GlobalOpts;

/// `rpod pause` / `rpod unpause`.
#[derive(Debug, Args)]
pub struct PauseArgs {
    /// All running (for pause) or paused (for unpause) containers
    #[arg(short, long)]
    pub all: bool,
    /// Containers
    pub containers: Vec<String>,
}

/// `rpod restart`.
#[derive(Debug, Args)]
pub struct RestartArgs {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time")]
    pub time: Option<u32>,
    /// Restart all containers
    #[arg(short, long)]
    pub all: bool,
    /// Containers to restart
    pub containers: Vec<String>,
}

/// `rpod rename`.
#[derive(Debug, Args)]
pub struct RenameArgs {
    /// The container (id or name)
    pub container: String,
    /// Its new name
    pub new_name: String,
}

/// `rpod init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Initialize all configured or exited containers
    #[arg(short, long)]
    pub all: bool,
    /// Containers to initialize
    pub containers: Vec<String>,
}

fn each(
    rt: &rpod_runtime::Runtime,
    names: &[String],
    all: bool,
    what: &str,
    select: impl Fn(&rpod_state::ContainerRecord) -> bool,
    mut op: impl FnMut(&str) -> rpod_runtime::Result<()>,
) -> Result<()> {
    let names: Vec<String> = if all {
        rt.list_containers()?
            .into_iter()
            .filter(|r| select(r))
            .map(|r| r.config.id)
            .collect()
    } else {
        if names.is_empty() {
            bail!("{what} requires at least one container name or id, or --all");
        }
        names.to_vec()
    };
    let mut last: Option<anyhow::Error> = None;
    for n in &names {
        match op(n) {
            Ok(()) => println!("{n}"),
            Err(e) => {
                if let Some(prev) = last.replace(e.into()) {
                    eprintln!("Error: {prev:#}");
                }
            }
        }
    }
    last.map_or(Ok(()), Err)
}

use rpod_state::ContainerStatus as S;

/// `rpod pause`.
pub fn pause(g: &GlobalOpts, a: PauseArgs) -> Result<()> {
    let rt = runtime(g)?;
    each(
        &rt,
        &a.containers,
        a.all,
        "pause",
        |r| r.state.state == S::Running,
        |n| rt.lock_container(n)?.pause(),
    )
}

/// `rpod unpause`.
pub fn unpause(g: &GlobalOpts, a: PauseArgs) -> Result<()> {
    let rt = runtime(g)?;
    each(
        &rt,
        &a.containers,
        a.all,
        "unpause",
        |r| r.state.state == S::Paused,
        |n| rt.lock_container(n)?.unpause(),
    )
}

/// `rpod restart`.
pub fn restart(g: &GlobalOpts, a: RestartArgs) -> Result<()> {
    let rt = runtime(g)?;
    each(
        &rt,
        &a.containers,
        a.all,
        "restart",
        |_| true,
        |n| rt.lock_container(n)?.restart(a.time),
    )
}

/// `rpod rename`.
pub fn rename(g: &GlobalOpts, a: RenameArgs) -> Result<()> {
    let rt = runtime(g)?;
    rt.rename_container(&a.container, &a.new_name)?;
    Ok(())
}

/// `rpod init`.
pub fn init(g: &GlobalOpts, a: InitArgs) -> Result<()> {
    let rt = runtime(g)?;
    each(
        &rt,
        &a.containers,
        a.all,
        "init",
        |r| matches!(r.state.state, S::Configured | S::Exited | S::Stopped),
        |n| rt.lock_container(n)?.init(),
    )
}
