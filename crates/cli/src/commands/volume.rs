//! `rpod volume …`: create, ls, inspect, rm, prune (podman's flags and output).

use std::collections::BTreeMap;
use std::io::BufRead;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use rpod_runtime::volumes::{VolumeCreateOptions, LOCAL_DRIVER};

use super::container::runtime;
use crate::global::GlobalOpts;
use crate::output;

/// `rpod volume` subcommands.
#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a named volume
    Create(CreateArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display volumes' configuration
    Inspect(InspectArgs),
    /// Remove volumes
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove every volume no container uses
    Prune(PruneArgs),
}

/// `rpod volume create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Volume driver (only local)
    #[arg(short, long, default_value = LOCAL_DRIVER)]
    pub driver: String,
    /// Set a label: KEY=VALUE
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Set a driver option: KEY=VALUE (uid, gid)
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub opt: Vec<String>,
    /// The volume's name; generated when absent
    pub name: Option<String>,
}

/// `rpod volume ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Filter: name=, label=KEY[=VALUE], driver=
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// Output format: json, or a table
    #[arg(long)]
    pub format: Option<String>,
    /// Print only the names
    #[arg(short, long)]
    pub quiet: bool,
}

/// `rpod volume inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Inspect every volume
    #[arg(short, long)]
    pub all: bool,
    /// Output format: json (the default) or a Go template ({{.Mountpoint}})
    #[arg(short, long)]
    pub format: Option<String>,
    /// Volumes
    pub volumes: Vec<String>,
}

/// `rpod volume rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Remove the containers using the volume first
    #[arg(short, long)]
    pub force: bool,
    /// Remove every volume
    #[arg(short, long)]
    pub all: bool,
    /// Volumes
    pub volumes: Vec<String>,
}

/// `rpod volume prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,
}

fn key_values(list: &[String], what: &str) -> Result<BTreeMap<String, String>> {
    list.iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
            if k.is_empty() {
                bail!("invalid {what} {kv:?}: expected KEY=VALUE");
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

/// Asks `question` on stderr and reads y/N from stdin.
pub fn confirm(question: &str) -> Result<bool> {
    eprint!("{question} [y/N] ");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "Yes"))
}

/// Runs a `volume` subcommand.
pub fn run(g: &GlobalOpts, c: VolumeCommand) -> Result<()> {
    match c {
        VolumeCommand::Create(a) => {
            if a.driver != LOCAL_DRIVER {
                bail!(
                    "invalid volume driver {:?}: expected {LOCAL_DRIVER}",
                    a.driver
                );
            }
            let opts = VolumeCreateOptions {
                name: a.name,
                labels: key_values(&a.label, "label")?,
                options: key_values(&a.opt, "volume option")?,
            };
            let rt = runtime(g)?;
            let v = rt.create_volume(&opts)?;
            println!("{}", v.name);
            Ok(())
        }
        VolumeCommand::Ls(a) => ls(g, a),
        VolumeCommand::Inspect(a) => {
            if !a.all && a.volumes.is_empty() {
                bail!("volume inspect requires at least one volume name, or --all");
            }
            let tpl = output::template(a.format.as_deref())?;
            let rt = runtime(g)?;
            let recs = if a.all {
                rt.list_volumes()?
            } else {
                a.volumes
                    .iter()
                    .map(|n| rt.lookup_volume(n))
                    .collect::<Result<Vec<_>, _>>()?
            };
            let docs = recs
                .iter()
                .map(|r| rt.inspect_volume(r))
                .collect::<Result<Vec<_>, _>>()?;
            match tpl {
                Some(t) => output::print_template(&t, &docs, &output::upper_header),
                None => output::print_json(&docs),
            }
        }
        VolumeCommand::Rm(a) => {
            let rt = runtime(g)?;
            let names = if a.all {
                rt.list_volumes()?
                    .into_iter()
                    .map(|r| r.config.name)
                    .collect()
            } else {
                if a.volumes.is_empty() {
                    bail!("volume rm requires at least one volume name, or --all");
                }
                a.volumes.clone()
            };
            let mut last = None;
            for n in &names {
                match rt.remove_volume(n, a.force) {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        if let Some(prev) = last.replace(e) {
                            eprintln!("Error: {prev:#}");
                        }
                    }
                }
            }
            last.map_or(Ok(()), |e| Err(e.into()))
        }
        VolumeCommand::Prune(a) => {
            if !a.force
                && !confirm(
                    "WARNING! This will remove all volumes not used by at least one container.\n\
                     Are you sure you want to continue?",
                )?
            {
                return Ok(());
            }
            let rt = runtime(g)?;
            for n in rt.prune_volumes()? {
                println!("{n}");
            }
            Ok(())
        }
    }
}

fn ls(g: &GlobalOpts, a: LsArgs) -> Result<()> {
    let mut filters: Vec<(String, String)> = Vec::new();
    for f in &a.filter {
        let Some((k, v)) = f.split_once('=') else {
            bail!("invalid filter {f:?}: expected KEY=VALUE");
        };
        if !matches!(k, "name" | "label" | "driver") {
            bail!("invalid volume filter {k:?}: expected one of name, label, driver");
        }
        filters.push((k.to_string(), v.to_string()));
    }
    if let Some(f) = a.format.as_deref() {
        if !output::is_json(Some(f)) {
            bail!("unsupported --format {f:?}: expected \"json\" or no format");
        }
    }
    let rt = runtime(g)?;
    let mut kept = Vec::new();
    for r in rt.list_volumes()? {
        let c = &r.config;
        // podman: filters of one key are ORed, different keys ANDed
        let ok = ["name", "label", "driver"].iter().all(|key| {
            let vals: Vec<&String> = filters
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v)
                .collect();
            vals.is_empty()
                || vals.iter().any(|v| match *key {
                    "name" => c.name.contains(v.as_str()),
                    "driver" => c.driver == **v,
                    _ => match v.split_once('=') {
                        Some((k, val)) => c.labels.get(k).is_some_and(|x| x == val),
                        None => c.labels.contains_key(v.as_str()),
                    },
                })
        });
        if ok {
            kept.push(r);
        }
    }
    if a.quiet {
        for r in &kept {
            println!("{}", r.config.name);
        }
        return Ok(());
    }
    if output::is_json(a.format.as_deref()) {
        let docs = kept
            .iter()
            .map(|r| rt.inspect_volume(r))
            .collect::<Result<Vec<_>, _>>()?;
        return output::print_json(&docs);
    }
    println!("{:<12} VOLUME NAME", "DRIVER");
    for r in &kept {
        println!("{:<12} {}", r.config.driver, r.config.name);
    }
    Ok(())
}
