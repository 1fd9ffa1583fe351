//! `rpod info`.

use anyhow::Result;
use clap::Args;
use rpod_runtime::info;

use crate::global::GlobalOpts;
use crate::output;

/// Arguments of `rpod info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Output format: json, a Go template ({{.Host.Arch}}), or the default listing
    #[arg(short, long)]
    pub format: Option<String>,
}

/// Runs `rpod info`.
pub fn run(g: &GlobalOpts, a: InfoArgs) -> Result<()> {
    let tpl = output::template(a.format.as_deref())?;
    let cfg = g.load_config()?;
    let mut info = info::gather(&cfg);
    match super::container::runtime(g).and_then(|rt| Ok(rt.store_counts()?)) {
        Ok(c) => info.store.counts = Some(c),
        Err(e) => tracing::warn!("counting containers and volumes: {e:#}"),
    }
    if output::is_json(a.format.as_deref()) {
        return output::print_json(&info);
    }
    if let Some(t) = tpl {
        return output::print_template(&t, &[&info], &output::upper_header);
    }
    let h = &info.host;
    println!("host:");
    println!("  os: {}", h.os);
    println!("  kernel: {}", h.kernel);
    println!("  arch: {}", h.arch);
    println!("  hostname: {}", h.hostname);
    println!("  cgroupVersion: {}", h.cgroup_version);
    println!("  cgroupManager: {}", h.cgroup_manager);
    println!("  eventLogger: {}", h.event_logger);
    println!("  rootless: {}", h.security.rootless);
    for (label, c) in [("ociRuntime", &h.oci_runtime), ("conmon", &h.conmon)] {
        println!("  {label}:");
        if !c.name.is_empty() {
            println!("    name: {}", c.name);
        }
        if !c.path.is_empty() {
            println!("    path: {}", c.path);
        }
        if !c.version.is_empty() {
            println!("    version: {}", c.version);
        }
        if !c.error.is_empty() {
            println!("    error: {}", c.error);
        }
    }
    let s = &info.store;
    println!("store:");
    println!("  graphRoot: {}", s.graph_root);
    println!("  runRoot: {}", s.run_root);
    println!("  volumePath: {}", s.volume_path);
    println!("  graphDriverName: {}", s.graph_driver_name);
    println!("  configFiles: [{}]", s.config_files.join(", "));
    if let Some(c) = &s.counts {
        let cs = &c.container_store;
        println!("  containerStore:");
        println!("    number: {}", cs.number);
        println!("    paused: {}", cs.paused);
        println!("    running: {}", cs.running);
        println!("    stopped: {}", cs.stopped);
        println!("  volumeCount: {}", c.volume_count);
    }
    let r = &info.rpod;
    println!("rpod:");
    println!("  version: {}", r.version);
    println!("  staticDir: {}", r.static_dir);
    println!("  tmpDir: {}", r.tmp_dir);
    println!("  databaseBackend: {}", r.database_backend);
    println!("  lockType: {}", r.lock_type);
    println!("  namespace: {:?}", r.namespace);
    println!("  backends:");
    for b in &r.backends {
        println!("    {} {}: {}", b.kind, b.name, b.summary);
    }
    for w in &r.config_warnings {
        println!("  warning: {w}");
    }
    Ok(())
}
