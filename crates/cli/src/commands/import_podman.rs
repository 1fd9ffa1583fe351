//! `rpod system import-podman PATH`: copies podman's containers, pods and
//! volumes into rpod's own database (the engine's `import` module does the
//! work; this prints the per-object report).

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use rpod_runtime::import::{open_source, ImportOptions, ImportReport};

use crate::global::GlobalOpts;
use crate::output;

/// Arguments of `rpod system import-podman`.
#[derive(Debug, Args)]
pub struct ImportPodmanArgs {
    /// podman's database (e.g. /var/lib/containers/storage/libpod/bolt_state.db); only read
    pub path: PathBuf,
    /// Rewrite root filesystem paths: a rootfs under OLD is taken from NEW instead (repeatable)
    #[arg(long = "rootfs-map", value_name = "OLD=NEW")]
    pub rootfs_map: Vec<String>,
    /// State backend that reads the source database
    #[arg(long, default_value = "bolt", value_name = "NAME")]
    pub source_backend: String,
    /// Output format: json, or a human report
    #[arg(short, long)]
    pub format: Option<String>,
}

fn parse_map(s: &str) -> Result<(PathBuf, PathBuf)> {
    match s.split_once('=') {
        Some((old, new)) if old.starts_with('/') && new.starts_with('/') => {
            Ok((PathBuf::from(old), PathBuf::from(new)))
        }
        _ => bail!("invalid --rootfs-map {s:?}: expected OLD=NEW with two absolute paths"),
    }
}

/// Runs `rpod system import-podman`.
pub fn run(g: &GlobalOpts, a: ImportPodmanArgs) -> Result<()> {
    let json = output::is_json(a.format.as_deref());
    if let Some(f) = a.format.as_deref() {
        if !json {
            bail!("unsupported --format {f:?}: expected \"json\"");
        }
    }
    let opts = ImportOptions {
        rootfs_map: a
            .rootfs_map
            .iter()
            .map(|m| parse_map(m))
            .collect::<Result<_>>()?,
    };
    let source = open_source(&a.source_backend, &a.path)?;
    let rt = super::container::runtime(g)?;
    let report = rt.import_state(source.as_ref(), &a.path, &opts)?;
    if json {
        output::print_json(&report)?;
    } else {
        print_human(&report);
    }
    let failed = report.containers.iter().filter(|c| !c.imported).count()
        + report.pods.iter().filter(|c| !c.imported).count()
        + report.volumes.iter().filter(|c| !c.imported).count();
    if failed > 0 {
        bail!(
            "{failed} object(s) of {} could not be imported (see the report)",
            a.path.display()
        );
    }
    Ok(())
}

fn print_human(r: &ImportReport) {
    let (c, p, v) = r.imported();
    println!(
        "Imported {c} of {} containers, {p} of {} pods, {v} of {} volumes from {}",
        r.containers.len(),
        r.pods.len(),
        r.volumes.len(),
        r.source
    );
    let line = |kind: &str,
                id: &str,
                name: &str,
                imported: bool,
                extra: &str,
                err: &Option<String>,
                notes: &[String]| {
        // a volume's id is its name
        let who = if id == name {
            name.to_string()
        } else {
            format!("{} {name}", id.get(..12).unwrap_or(id))
        };
        match err {
            Some(e) => println!("{kind} {who}: NOT imported: {e}"),
            None if imported => println!("{kind} {who}: imported{extra}"),
            None => println!("{kind} {who}: NOT imported"),
        }
        for n in notes {
            println!("    not carried over: {n}");
        }
    };
    for x in &r.volumes {
        line(
            "volume",
            &x.id,
            &x.name,
            x.imported,
            "",
            &x.error,
            &x.not_carried_over,
        );
    }
    for x in &r.pods {
        line(
            "pod",
            &x.id,
            &x.name,
            x.imported,
            "",
            &x.error,
            &x.not_carried_over,
        );
    }
    for x in &r.containers {
        let extra = format!(
            " ({}{})",
            x.state,
            if x.runnable {
                ""
            } else {
                ", cannot be started as is"
            }
        );
        line(
            "container",
            &x.id,
            &x.name,
            x.imported,
            &extra,
            &x.error,
            &x.not_carried_over,
        );
    }
}
