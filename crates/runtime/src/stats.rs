//! `top` and `stats`: processes and resource usage of running containers,
//! read from the container's cgroups (v1 or v2) and `/proc`.
//!
//! The container's cgroups are found from `/proc/<pid>/cgroup` of its main
//! process, so cgroupfs and systemd parents, v1, hybrid and v2 hosts all work.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rpod_state::{ContainerRecord, ContainerStatus};
use serde::Serialize;

use crate::{Result, Runtime, RuntimeError};

/// The cgroup directories of a process: controller → directory
/// (`""` is the unified v2 hierarchy).
pub fn cgroup_dirs(pid: i32) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), Some(c)) => (a, b, c),
            _ => continue,
        };
        let rel = path.trim_start_matches('/');
        if ctrls.is_empty() {
            let base = if Path::new("/sys/fs/cgroup/unified").is_dir() {
                "/sys/fs/cgroup/unified"
            } else {
                "/sys/fs/cgroup"
            };
            out.insert(String::new(), Path::new(base).join(rel));
            continue;
        }
        let mount = Path::new("/sys/fs/cgroup").join(ctrls.trim_start_matches("name="));
        for c in ctrls.split(',') {
            out.insert(c.to_string(), mount.join(rel));
        }
    }
    out
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn read_kv(p: &Path, key: &str) -> Option<u64> {
    std::fs::read_to_string(p)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
}

/// One sample of a container's resource usage, with podman's
/// `define.ContainerStats` field names.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[allow(non_snake_case)]
pub struct ContainerStats {
    pub ContainerID: String,
    pub Name: String,
    /// CPU percentage since the previous sample (since start for the first).
    pub CPU: f64,
    /// Total CPU time used, nanoseconds.
    pub CPUNano: u64,
    /// Average CPU percentage since the container started.
    pub AvgCPU: f64,
    /// Wall clock of the sample, unix nanoseconds.
    pub SystemNano: u64,
    pub MemUsage: u64,
    pub MemLimit: u64,
    pub MemPerc: f64,
    pub NetInput: u64,
    pub NetOutput: u64,
    pub BlockInput: u64,
    pub BlockOutput: u64,
    pub PIDs: u64,
    /// Nanoseconds since the container started.
    pub UpTime: u64,
}

fn host_mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(u64::MAX, |k| k * 1024)
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn running_pid(rt: &Runtime, rec: &ContainerRecord, op: &'static str) -> Result<i32> {
    let _ = rt;
    if !matches!(
        rec.state.state,
        ContainerStatus::Running | ContainerStatus::Paused
    ) || rec.state.pid <= 0
    {
        return Err(RuntimeError::InvalidState {
            id: rec.config.id.clone(),
            state: crate::inspect::state_name(rec).to_string(),
            op,
            hint: " (it is not running)".into(),
        });
    }
    Ok(rec.state.pid)
}

impl Runtime {
    fn running_record(&self, id_or_name: &str, op: &'static str) -> Result<(ContainerRecord, i32)> {
        let rec = self.lookup_container(id_or_name)?;
        let rec = self
            .list_containers()?
            .into_iter()
            .find(|r| r.config.id == rec.config.id)
            .unwrap_or(rec);
        let pid = running_pid(self, &rec, op)?;
        Ok((rec, pid))
    }

    /// One stats sample of a running container. `previous` (an earlier
    /// sample) makes `CPU` the percentage over the interval between them.
    pub fn container_stats(
        &self,
        id_or_name: &str,
        previous: Option<&ContainerStats>,
    ) -> Result<ContainerStats> {
        let (rec, pid) = self.running_record(id_or_name, "get stats of")?;
        let dirs = cgroup_dirs(pid);
        let v2 = dirs.get("");
        let v1 = |c: &str| dirs.get(c).filter(|d| d.is_dir());
        let mut s = ContainerStats {
            ContainerID: rec.config.id.clone(),
            Name: rec.config.name.clone(),
            SystemNano: now_nanos(),
            ..Default::default()
        };
        if let Some(d) = v1("cpuacct") {
            s.CPUNano = read_u64(&d.join("cpuacct.usage")).unwrap_or(0);
        } else if let Some(d) = v2 {
            s.CPUNano = read_kv(&d.join("cpu.stat"), "usage_usec").unwrap_or(0) * 1000;
        }
        if let Some(d) = v1("memory") {
            let usage = read_u64(&d.join("memory.usage_in_bytes")).unwrap_or(0);
            let inactive = read_kv(&d.join("memory.stat"), "total_inactive_file ").unwrap_or(0);
            s.MemUsage = usage.saturating_sub(inactive);
            s.MemLimit = read_u64(&d.join("memory.limit_in_bytes")).unwrap_or(u64::MAX);
        } else if let Some(d) = v2 {
            let usage = read_u64(&d.join("memory.current")).unwrap_or(0);
            let inactive = read_kv(&d.join("memory.stat"), "inactive_file ").unwrap_or(0);
            s.MemUsage = usage.saturating_sub(inactive);
            s.MemLimit = read_u64(&d.join("memory.max")).unwrap_or(u64::MAX);
        }
        s.MemLimit = s.MemLimit.min(host_mem_total());
        if s.MemLimit > 0 {
            s.MemPerc = s.MemUsage as f64 * 100.0 / s.MemLimit as f64;
        }
        if let Some(d) = v1("pids") {
            s.PIDs = read_u64(&d.join("pids.current")).unwrap_or(0);
        } else if let Some(d) = v2 {
            s.PIDs = read_u64(&d.join("pids.current")).unwrap_or(0);
        }
        if let Some(d) = v1("blkio") {
            let text = std::fs::read_to_string(d.join("blkio.throttle.io_service_bytes"))
                .unwrap_or_default();
            for l in text.lines() {
                let f: Vec<&str> = l.split_whitespace().collect();
                if f.len() == 3 {
                    let n: u64 = f[2].parse().unwrap_or(0);
                    match f[1] {
                        "Read" => s.BlockInput += n,
                        "Write" => s.BlockOutput += n,
                        _ => {}
                    }
                }
            }
        } else if let Some(d) = v2 {
            let text = std::fs::read_to_string(d.join("io.stat")).unwrap_or_default();
            for kv in text.split_whitespace() {
                if let Some(n) = kv.strip_prefix("rbytes=") {
                    s.BlockInput += n.parse::<u64>().unwrap_or(0);
                } else if let Some(n) = kv.strip_prefix("wbytes=") {
                    s.BlockOutput += n.parse::<u64>().unwrap_or(0);
                }
            }
        }
        let net = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default();
        for l in net.lines().skip(2) {
            let Some((iface, rest)) = l.split_once(':') else {
                continue;
            };
            if iface.trim() == "lo" {
                continue;
            }
            let f: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            if f.len() >= 9 {
                s.NetInput += f[0];
                s.NetOutput += f[8];
            }
        }
        let started = rec
            .state
            .started_time
            .datetime()
            .unix_timestamp_nanos()
            .max(0) as u64;
        s.UpTime = s.SystemNano.saturating_sub(started);
        let pct = |cpu: u64, wall: u64| {
            if wall == 0 {
                0.0
            } else {
                cpu as f64 * 100.0 / wall as f64
            }
        };
        s.AvgCPU = pct(s.CPUNano, s.UpTime);
        s.CPU = match previous {
            Some(p) if p.ContainerID == s.ContainerID && p.SystemNano < s.SystemNano => pct(
                s.CPUNano.saturating_sub(p.CPUNano),
                s.SystemNano - p.SystemNano,
            ),
            _ => s.AvgCPU,
        };
        Ok(s)
    }

    /// `rpod top`: the processes of a running container with podman's
    /// descriptors (`user,pid,ppid,pcpu,etime,tty,time,args` by default).
    /// Returns the header row, then one row per process.
    pub fn top(&self, id_or_name: &str, descriptors: &[String]) -> Result<Vec<Vec<String>>> {
        let (rec, pid) = self.running_record(id_or_name, "list processes of")?;
        let mut descs: Vec<String> = descriptors
            .iter()
            .flat_map(|d| d.split([',', ' ']))
            .filter(|d| !d.is_empty())
            .map(str::to_string)
            .collect();
        if descs.is_empty() {
            descs = DEFAULT_TOP.iter().map(|s| s.to_string()).collect();
        }
        let header = descs
            .iter()
            .map(|d| {
                top_header(d)
                    .map(str::to_string)
                    .ok_or_else(|| RuntimeError::InvalidInput {
                        what: "top descriptor",
                        value: d.clone(),
                        expected: format!(
                            "one of {}",
                            TOP_DESCRIPTORS
                                .iter()
                                .map(|(d, _)| *d)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let dirs = cgroup_dirs(pid);
        let procs_file = ["pids", "memory", "cpuacct", "devices", ""]
            .iter()
            .filter_map(|c| dirs.get(*c))
            .map(|d| d.join("cgroup.procs"))
            .find(|p| p.exists());
        let mut pids: Vec<i32> = match procs_file {
            Some(p) => std::fs::read_to_string(&p)
                .map_err(|e| RuntimeError::io("read", &p, e))?
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect(),
            None => vec![pid],
        };
        pids.sort_unstable();
        let procs: Vec<ProcInfo> = pids.iter().filter_map(|p| ProcInfo::read(*p)).collect();
        let ns_of: BTreeMap<i32, i32> = procs.iter().map(|p| (p.pid, p.ns_pid)).collect();
        let rootfs = Path::new(&rec.config.rootfs);
        let users = id_names(&rootfs.join("etc/passwd"));
        let groups = id_names(&rootfs.join("etc/group"));
        let mut rows = vec![header];
        for p in &procs {
            rows.push(
                descs
                    .iter()
                    .map(|d| p.field(d, &ns_of, &users, &groups))
                    .collect(),
            );
        }
        Ok(rows)
    }
}

/// podman's default `top` descriptors.
pub const DEFAULT_TOP: &[&str] = &[
    "user", "pid", "ppid", "pcpu", "etime", "tty", "time", "args",
];

/// Every supported descriptor and its header (podman/psgo names).
pub const TOP_DESCRIPTORS: &[(&str, &str)] = &[
    ("args", "COMMAND"),
    ("comm", "COMMAND"),
    ("etime", "ELAPSED"),
    ("group", "GROUP"),
    ("hgroup", "HGROUP"),
    ("hpid", "HPID"),
    ("huser", "HUSER"),
    ("nice", "NI"),
    ("pcpu", "%CPU"),
    ("pgid", "PGID"),
    ("pid", "PID"),
    ("ppid", "PPID"),
    ("rgroup", "RGROUP"),
    ("ruser", "RUSER"),
    ("state", "STATE"),
    ("time", "TIME"),
    ("tty", "TTY"),
    ("user", "USER"),
    ("vsz", "VSZ"),
];

fn top_header(d: &str) -> Option<&'static str> {
    TOP_DESCRIPTORS
        .iter()
        .find(|(n, _)| *n == d)
        .map(|(_, h)| *h)
}

fn id_names(file: &Path) -> BTreeMap<u32, String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((f.get(2)?.parse().ok()?, f[0].to_string()))
        })
        .collect()
}

#[derive(Debug)]
struct ProcInfo {
    pid: i32,
    ns_pid: i32,
    ppid: i32,
    pgid: i32,
    state: String,
    comm: String,
    args: String,
    tty_nr: u64,
    cpu_ticks: u64,
    start_ticks: u64,
    nice: i64,
    vsz: u64,
    ruid: u32,
    euid: u32,
    rgid: u32,
    egid: u32,
}

fn clk_tck() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100, |v| v.max(1) as u64)
}

fn boot_time() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Go's `time.Duration` text, as psgo prints it ("1.5s", "2m3.25s", "0s").
fn go_duration(secs: f64) -> String {
    if secs <= 0.0 {
        return "0s".into();
    }
    let total = (secs * 1000.0).round() / 1000.0;
    let h = (total / 3600.0).floor();
    let m = ((total - h * 3600.0) / 60.0).floor();
    let s = total - h * 3600.0 - m * 60.0;
    let sec = format!("{s:.3}");
    let sec = sec.trim_end_matches('0').trim_end_matches('.');
    let sec = if sec.is_empty() { "0" } else { sec };
    if h > 0.0 {
        format!("{h}h{m}m{sec}s")
    } else if m > 0.0 {
        format!("{m}m{sec}s")
    } else {
        format!("{sec}s")
    }
}

impl ProcInfo {
    fn read(pid: i32) -> Option<ProcInfo> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let comm = stat[open + 1..close].to_string();
        let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let n = |i: usize| f.get(i).and_then(|x| x.parse::<i64>().ok()).unwrap_or(0);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let ids = |key: &str| -> Vec<u32> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| {
                    v.split_whitespace()
                        .filter_map(|x| x.parse().ok())
                        .collect()
                })
                .unwrap_or_default()
        };
        let uids = ids("Uid:");
        let gids = ids("Gid:");
        let ns_pid = ids("NSpid:").last().map_or(pid, |p| *p as i32);
        let args = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                b.split(|c| *c == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        // fields after "(comm) ": 0 state, 1 ppid, 2 pgrp, 4 tty_nr, 11 utime,
        // 12 stime, 16 nice, 19 starttime, 20 vsize
        Some(ProcInfo {
            pid,
            ns_pid,
            ppid: n(1) as i32,
            pgid: n(2) as i32,
            state: f.first().map_or(String::new(), |s| s.to_string()),
            args: if args.is_empty() {
                format!("[{comm}]")
            } else {
                args
            },
            comm,
            tty_nr: n(4) as u64,
            cpu_ticks: (n(11) + n(12)).max(0) as u64,
            start_ticks: n(19).max(0) as u64,
            nice: n(16),
            vsz: n(20).max(0) as u64 / 1024,
            ruid: uids.first().copied().unwrap_or(0),
            euid: uids.get(1).copied().unwrap_or(0),
            rgid: gids.first().copied().unwrap_or(0),
            egid: gids.get(1).copied().unwrap_or(0),
        })
    }

    fn elapsed_secs(&self) -> f64 {
        let start = boot_time() as f64 + self.start_ticks as f64 / clk_tck() as f64;
        (now_nanos() as f64 / 1e9 - start).max(0.0)
    }

    fn tty(&self) -> String {
        if self.tty_nr == 0 {
            return "?".into();
        }
        let major = (self.tty_nr >> 8) & 0xfff;
        let minor = (self.tty_nr & 0xff) | ((self.tty_nr >> 12) & 0xfff00);
        match major {
            136..=143 => format!("pts/{}", minor + (major - 136) * 256),
            4 if minor < 64 => format!("tty{minor}"),
            4 => format!("ttyS{}", minor - 64),
            _ => "?".into(),
        }
    }

    fn field(
        &self,
        d: &str,
        ns_of: &BTreeMap<i32, i32>,
        users: &BTreeMap<u32, String>,
        groups: &BTreeMap<u32, String>,
    ) -> String {
        let name = |m: &BTreeMap<u32, String>, id: u32| {
            m.get(&id).cloned().unwrap_or_else(|| id.to_string())
        };
        let host_name = |file: &str, id: u32| name(&id_names(Path::new(file)), id);
        match d {
            "args" => self.args.clone(),
            "comm" => self.comm.clone(),
            "etime" => go_duration(self.elapsed_secs()),
            "group" => name(groups, self.egid),
            "hgroup" => host_name("/etc/group", self.egid),
            "hpid" => self.pid.to_string(),
            "huser" => host_name("/etc/passwd", self.euid),
            "nice" => self.nice.to_string(),
            "pcpu" => {
                let e = self.elapsed_secs();
                let cpu = self.cpu_ticks as f64 / clk_tck() as f64;
                format!("{:.3}", if e > 0.0 { cpu * 100.0 / e } else { 0.0 })
            }
            "pgid" => ns_of.get(&self.pgid).copied().unwrap_or(0).to_string(),
            "pid" => self.ns_pid.to_string(),
            "ppid" => ns_of.get(&self.ppid).copied().unwrap_or(0).to_string(),
            "rgroup" => name(groups, self.rgid),
            "ruser" => name(users, self.ruid),
            "state" => self.state.clone(),
            "time" => go_duration(self.cpu_ticks as f64 / clk_tck() as f64),
            "tty" => self.tty(),
            "user" => name(users, self.euid),
            "vsz" => self.vsz.to_string(),
            _ => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        assert_eq!(go_duration(0.0), "0s");
        assert_eq!(go_duration(1.5), "1.5s");
        assert_eq!(go_duration(61.25), "1m1.25s");
        assert_eq!(go_duration(3723.0), "1h2m3s");
    }

    #[test]
    fn own_process_reads() {
        let me = std::process::id() as i32;
        let p = ProcInfo::read(me).unwrap();
        assert_eq!(p.pid, me);
        assert!(!p.comm.is_empty());
        assert!(!cgroup_dirs(me).is_empty());
        assert_eq!(top_header("pcpu"), Some("%CPU"));
        assert_eq!(top_header("bogus"), None);
    }
}
