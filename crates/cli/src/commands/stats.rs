//! `rpod top` and `rpod stats`.

use std::io::Write;

use anyhow::{bail, Result};
use clap::Args;
use rpod_runtime::stats::ContainerStats;
use serde::Serialize;

use crate::commands::container::runtime;
use crate::global::GlobalOpts;
use crate::output;

/// `rpod top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// The container
    pub container: String,
    /// ps descriptors such as `pid,comm` or `user pid args`
    pub descriptors: Vec<String>,
}

/// `rpod stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Show all running containers (the default when none are named)
    #[arg(short, long)]
    pub all: bool,
    /// Print one sample and exit
    #[arg(long)]
    pub no_stream: bool,
    /// Output format: json, or the default table
    #[arg(long)]
    pub format: Option<String>,
    /// Seconds between samples when streaming
    #[arg(short, long, default_value_t = 5)]
    pub interval: u64,
    /// Containers
    pub containers: Vec<String>,
}

/// `rpod top`.
pub fn top(g: &GlobalOpts, a: TopArgs) -> Result<()> {
    let rt = runtime(g)?;
    let rows = rt.top(&a.container, &a.descriptors)?;
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0).max(2))
        .collect();
    let out = std::io::stdout();
    let mut out = out.lock();
    for r in &rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == cols {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}", w = widths[i] + 3));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// podman's `units.HumanSizeWithPrecision(n, 3)` (decimal units).
pub fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    let s = format!("{v:.3}");
    let s = if s.contains('.') {
        // 3 significant digits, as %.3g
        let digits = format!("{}", v.trunc() as u64).len();
        let prec = 3usize.saturating_sub(digits);
        let t = format!("{v:.prec$}");
        if t.contains('.') {
            t.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            t
        }
    } else {
        s
    };
    format!("{s}{}", units[i])
}

fn go_duration_ns(ns: u64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let secs = ns as f64 / 1e9;
    if secs < 1.0 {
        let ms = ns as f64 / 1e6;
        return format!("{}ms", trim(format!("{ms:.6}")));
    }
    let h = (secs / 3600.0).floor();
    let m = ((secs - h * 3600.0) / 60.0).floor();
    let s = secs - h * 3600.0 - m * 60.0;
    let sec = trim(format!("{s:.6}"));
    if h > 0.0 {
        format!("{h}h{m}m{sec}s")
    } else if m > 0.0 {
        format!("{m}m{sec}s")
    } else {
        format!("{sec}s")
    }
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// One line of `rpod stats --format json`, podman's field names.
#[derive(Debug, Serialize)]
struct StatsLine {
    id: String,
    name: String,
    cpu_time: String,
    cpu_percent: String,
    avg_cpu: String,
    mem_usage: String,
    mem_percent: String,
    net_io: String,
    block_io: String,
    pids: String,
}

fn line(s: &ContainerStats) -> StatsLine {
    StatsLine {
        id: s.ContainerID[..12.min(s.ContainerID.len())].to_string(),
        name: s.Name.clone(),
        cpu_time: go_duration_ns(s.CPUNano),
        cpu_percent: format!("{:.2}%", s.CPU),
        avg_cpu: format!("{:.2}%", s.AvgCPU),
        mem_usage: format!("{} / {}", human_size(s.MemUsage), human_size(s.MemLimit)),
        mem_percent: format!("{:.2}%", s.MemPerc),
        net_io: format!("{} / {}", human_size(s.NetInput), human_size(s.NetOutput)),
        block_io: format!(
            "{} / {}",
            human_size(s.BlockInput),
            human_size(s.BlockOutput)
        ),
        pids: s.PIDs.to_string(),
    }
}

/// `rpod stats`.
pub fn stats(g: &GlobalOpts, a: StatsArgs) -> Result<()> {
    let json = output::is_json(a.format.as_deref());
    if let (Some(f), false) = (a.format.as_deref(), json) {
        bail!("unsupported --format {f:?}: expected \"json\"");
    }
    if a.interval == 0 {
        bail!("invalid --interval 0: expected a number of seconds greater than 0");
    }
    let rt = runtime(g)?;
    let mut prev: Vec<ContainerStats> = Vec::new();
    loop {
        let names: Vec<String> = if a.all || a.containers.is_empty() {
            rt.list_containers()?
                .into_iter()
                .filter(|r| r.state.state == rpod_state::ContainerStatus::Running)
                .map(|r| r.config.id)
                .collect()
        } else {
            a.containers.clone()
        };
        let mut samples = Vec::new();
        for n in &names {
            let p = prev
                .iter()
                .find(|p| p.ContainerID.starts_with(n.as_str()) || p.Name == *n);
            samples.push(rt.container_stats(n, p)?);
        }
        let lines: Vec<StatsLine> = samples.iter().map(line).collect();
        if json {
            output::print_json(&lines)?;
        } else {
            let out = std::io::stdout();
            let mut out = out.lock();
            writeln!(
                out,
                "{:<14}{:<16}{:<10}{:<24}{:<10}{:<22}{:<22}{:<6}{:<14}AVG CPU %",
                "ID",
                "NAME",
                "CPU %",
                "MEM USAGE / LIMIT",
                "MEM %",
                "NET IO",
                "BLOCK IO",
                "PIDS",
                "CPU TIME"
            )?;
            for l in &lines {
                writeln!(
                    out,
                    "{:<14}{:<16}{:<10}{:<24}{:<10}{:<22}{:<22}{:<6}{:<14}{}",
                    l.id,
                    l.name,
                    l.cpu_percent,
                    l.mem_usage,
                    l.mem_percent,
                    l.net_io,
                    l.block_io,
                    l.pids,
                    l.cpu_time,
                    l.avg_cpu
                )?;
            }
            out.flush()?;
        }
        if a.no_stream {
            return Ok(());
        }
        prev = samples;
        std::thread::sleep(std::time::Duration::from_secs(a.interval));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_print_like_podman() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(1_180_000), "1.18MB");
        assert_eq!(human_size(33_580_000_000), "33.6GB");
        assert_eq!(go_duration_ns(1_500_000_000), "1.5s");
        assert_eq!(go_duration_ns(2_500_000), "2.5ms");
    }
}
