//! `cargo xtask bench`: rpod and podman side by side on the same rootfs.
//!
//! Each operation is timed as a whole command (fork, exec, work, exit),
//! alternating rpod and podman so both see the same machine noise. Results
//! are medians with the rpod/podman ratio. The floor is the same container
//! as `rpod run --rm` (same spec) driven through conmon + runc directly by
//! rpod-oci, without any engine (see [`Floor`]), timed alternately with rpod.
//! rpod's create cost at 100 and 1,000 containers is measured alone, after
//! the fill (see `create at N`).
//!
//! podman runs with a private root, runroot, tmpdir, file locks and a private
//! `containers.conf` (cgroupfs, runc, low default ulimits); rpod with its own
//! private directories. Nothing of either's default store is touched.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

struct Engine {
    name: &'static str,
    argv: Vec<String>,
    env: Vec<(String, String)>,
}

impl Engine {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.argv[0]);
        c.args(&self.argv[1..]).args(args);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.stdin(Stdio::null());
        c
    }

    /// Runs a command, returns its wall time and peak RSS in KiB.
    fn time(&self, args: &[&str]) -> Result<(Duration, u64)> {
        let mut c = self.cmd(args);
        c.stdout(Stdio::null()).stderr(Stdio::piped());
        let t = Instant::now();
        let child = c
            .spawn()
            .with_context(|| format!("spawn {} {args:?}", self.name))?;
        let pid = child.id() as libc::pid_t;
        let mut status = 0;
        // SAFETY: rusage is plain data filled by the kernel; pid is our child.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        let elapsed = t.elapsed();
        if r != pid || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
            let mut err = String::new();
            if let Some(mut e) = child.stderr {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            bail!("{} {args:?} failed (status {status}): {err}", self.name);
        }
        Ok((elapsed, ru.ru_maxrss as u64))
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

struct Row {
    op: String,
    rpod: Duration,
    podman: Option<Duration>,
    note: String,
}

fn print_table(rows: &[Row], floor: Option<Duration>) {
    println!();
    println!("| operation | rpod median (ms) | podman median (ms) | rpod/podman | note |");
    println!("|---|---|---|---|---|");
    for r in rows {
        let (p, ratio) = match r.podman {
            Some(p) => (
                ms(p),
                format!("{:.2}", r.rpod.as_secs_f64() / p.as_secs_f64()),
            ),
            None => ("-".into(), "-".into()),
        };
        println!(
            "| {} | {} | {} | {} | {} |",
            r.op,
            ms(r.rpod),
            p,
            ratio,
            r.note
        );
    }
    if let Some(f) = floor {
        println!("| floor: the same container through conmon+runc, no engine (create, start, exit, delete) | {} | - | - | run --rm / floor = {:.2} |", ms(f), rows[0].rpod.as_secs_f64() / f.as_secs_f64());
    }
}

/// The floor: the container `rpod run --rm --network none --rootfs ROOTFS
/// /bin/true` runs, without the engine. Its OCI spec comes from the same
/// configuration file and the same code as rpod's (rpod-runtime's
/// `CreateOptions::spec_options_with`: podman's default seccomp profile,
/// capabilities, mounts, masked and read-only paths, rlimits, pids limit,
/// cgroup parent, hooks directories, a 64-hex id), and conmon gets the
/// arguments rpod gives it (log file, log size, runtime `--root`), except the
/// exit command. Timed ([`Floor::once`]): writing the bundle, conmon + `runc
/// create`, `runc start`, waiting for the exit file, `runc delete`. Not done:
/// state database, locks, events, name generation, the exit command, the CLI
/// process. Each repetition runs next to one of rpod's `run --rm` (before
/// and after it in turn), so that both see the same machine noise.
struct Floor {
    cfg: rpod_config::RuntimeConfig,
    rt: rpod_oci::OciRuntime,
    monitor: rpod_oci::ConmonMonitor,
    exit_dir: PathBuf,
    static_root: PathBuf,
    create: rpod_runtime::CreateOptions,
}

impl Floor {
    fn new(rootfs: &Path, dir: &Path, conf: &Path) -> Result<Floor> {
        use rpod_oci::{Conmon, ConmonMonitor, OciRuntime};
        let loaded = rpod_config::ConfigLoader::new().config_file(conf).load()?;
        let mut cfg = loaded.values().clone();
        // the engine's own directories are left alone
        cfg.runroot = dir.join("floor-run");
        cfg.cgroup_parent = FLOOR_CGROUP.into();
        let rt = OciRuntime::find(&cfg, None)?;
        let monitor = ConmonMonitor::new(Conmon::find(&cfg, None)?);
        let exit_dir = dir.join("floor-exits");
        std::fs::create_dir_all(&exit_dir)?;
        let create = rpod_runtime::CreateOptions {
            rootfs: std::fs::canonicalize(rootfs)?,
            command: vec!["/bin/true".into()],
            network: "none".into(),
            autoremove: true,
            ..Default::default()
        };
        Ok(Floor {
            cfg,
            rt,
            monitor,
            exit_dir,
            static_root: dir.join("floor-static"),
            create,
        })
    }

    /// One container, created, started, waited for and deleted.
    fn once(&self, i: usize) -> Result<Duration> {
        use rpod_oci::spec::write_bundle;
        use rpod_oci::{CreateRequest, Monitor};
        let cfg = &self.cfg;
        let id = format!("{:032x}{:032x}", std::process::id(), i);
        let bundle = cfg.runroot.join("containers").join(&id);
        let static_dir = self.static_root.join(&id);
        let opts = self
            .create
            .spec_options_with(cfg, &id, &id[..12], Vec::new())?;
        let t = Instant::now();
        std::fs::create_dir_all(&static_dir)?;
        write_bundle(&opts, &bundle)?;
        let mut req = CreateRequest::new(&id, &bundle, &self.exit_dir);
        req.log_path = static_dir.join("ctr.log");
        req.log_size_max = cfg.max_log_size;
        req.no_pivot = cfg.no_pivot_root;
        req.env = cfg.conmon_env_vars.clone();
        let created = self.monitor.create(&self.rt, &req)?;
        self.rt.start(&id)?;
        rpod_oci::exit::wait_for_exit(
            &self.exit_dir,
            &id,
            Some(created.monitor_pid),
            Duration::from_secs(30),
        )?;
        self.rt.delete(&id, true)?;
        let elapsed = t.elapsed();
        let _ = std::fs::remove_dir_all(&bundle);
        let _ = std::fs::remove_dir_all(&static_dir);
        Ok(elapsed)
    }
}

const FLOOR_CGROUP: &str = "/rpod-bench-floor";

fn cleanup_cgroup(parent: &str) {
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for h in rd.flatten() {
            let p = h.path().join(parent);
            if let Ok(children) = std::fs::read_dir(&p) {
                for c in children.flatten() {
                    let _ = std::fs::remove_dir(c.path());
                }
            }
            let _ = std::fs::remove_dir(&p);
        }
    }
}

/// Runs the benchmark. `n` repetitions per operation; `big` is the largest
/// container count for `ps -a`.
pub fn run(rpod: &Path, n: usize, big: usize) -> Result<()> {
    let tmp = std::env::temp_dir().join(format!("rpod-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let rootfs = tmp.join("rootfs");
    crate::rootfs::build(&rootfs)?;
    let r = rootfs.display().to_string();
    let pid = std::process::id();
    let conf = tmp.join("rpod.conf");
    std::fs::write(
        &conf,
        format!(
            "root = \"{t}/rpod-root\"\nrunroot = \"{t}/rpod-run\"\ntmp_dir = \"{t}/rpod-tmp\"\n\
             lock_path = \"rpod_bench_{pid}\"\ncgroup_parent = \"/rpod-bench-{pid}\"\nevents_logger = \"file\"\n",
            t = tmp.display()
        ),
    )?;
    let rpod_e = Engine {
        name: "rpod",
        argv: vec![
            rpod.display().to_string(),
            "--config".into(),
            conf.display().to_string(),
        ],
        env: Vec::new(),
    };
    let podman_conf = tmp.join("containers.conf");
    std::fs::write(
        &podman_conf,
        "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\
         [engine]\ncgroup_manager = \"cgroupfs\"\nruntime = \"runc\"\nevents_logger = \"file\"\nlock_type = \"file\"\n",
    )?;
    let have_podman = Command::new("podman")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let podman_e = Engine {
        name: "podman",
        argv: vec![
            "podman".into(),
            "--root".into(),
            tmp.join("podman-root").display().to_string(),
            "--runroot".into(),
            tmp.join("podman-run").display().to_string(),
            "--tmpdir".into(),
            tmp.join("podman-tmp").display().to_string(),
            "--cgroup-manager".into(),
            "cgroupfs".into(),
        ],
        env: vec![("CONTAINERS_CONF".into(), podman_conf.display().to_string())],
    };
    if !have_podman {
        eprintln!(
            "xtask bench: podman not found; rpod figures only (cargo xtask deps installs it)"
        );
    }
    let engines: Vec<&Engine> = if have_podman {
        vec![&rpod_e, &podman_e]
    } else {
        vec![&rpod_e]
    };
    let mut rows = Vec::new();
    let mut floor = match Floor::new(&rootfs, &tmp, &conf) {
        Ok(f) => Some(f),
        Err(e) => {
            eprintln!("xtask bench: no floor: {e:#}");
            None
        }
    };
    let mut floor_times = Vec::new();
    let result = (|| -> Result<()> {
        // warm up both (first-use database creation, page cache) and the floor
        if let Some(f) = &floor {
            f.once(usize::MAX)?;
        }
        for e in &engines {
            e.time(&[
                "run",
                "--rm",
                "--network",
                "none",
                "--rootfs",
                &r,
                "/bin/true",
            ])?;
        }
        let mut per: Vec<[Vec<Duration>; 4]> = engines.iter().map(|_| Default::default()).collect();
        for i in 0..n {
            for (k, e) in engines.iter().enumerate() {
                // the floor runs next to rpod's `run --rm`, before it in even
                // and after it in odd repetitions (neither always follows
                // podman's or the other's leftover processes)
                let floor_now = |floor: &mut Option<Floor>, times: &mut Vec<Duration>| {
                    if let Some(f) = floor {
                        match f.once(i) {
                            Ok(d) => times.push(d),
                            Err(err) => {
                                eprintln!("xtask bench: floor failed: {err:#}");
                                *floor = None;
                                times.clear();
                            }
                        }
                    }
                };
                if k == 0 && i % 2 == 0 {
                    floor_now(&mut floor, &mut floor_times);
                }
                per[k][0].push(
                    e.time(&[
                        "run",
                        "--rm",
                        "--network",
                        "none",
                        "--rootfs",
                        &r,
                        "/bin/true",
                    ])?
                    .0,
                );
                if k == 0 && i % 2 == 1 {
                    floor_now(&mut floor, &mut floor_times);
                }
                let name = format!("bench-{i}");
                per[k][1].push(
                    e.time(&[
                        "create",
                        "--name",
                        &name,
                        "--network",
                        "none",
                        "--rootfs",
                        &r,
                        "sleep",
                        "100",
                    ])?
                    .0,
                );
                per[k][2].push(e.time(&["start", &name])?.0);
                per[k][3].push(e.time(&["stop", "-t", "0", &name])?.0);
                e.time(&["rm", "-f", &name])?;
            }
        }
        let labels = [
            "run --rm --network none /bin/true",
            "create",
            "start",
            "stop -t 0",
        ];
        let taken: Vec<[Vec<Duration>; 4]> = std::mem::take(&mut per);
        let mut medians: Vec<Vec<Duration>> = taken
            .into_iter()
            .map(|a| a.into_iter().map(median).collect())
            .collect();
        for (j, label) in labels.iter().enumerate() {
            rows.push(Row {
                op: label.to_string(),
                rpod: medians[0][j],
                podman: medians.get_mut(1).map(|m| m[j]),
                note: String::new(),
            });
        }
        // ps -a at 100 and `big` containers; create cost at those sizes
        let mut have = 0usize;
        for target in [100usize, big] {
            let create = |e: &Engine, name: &str| {
                e.time(&[
                    "create",
                    "--name",
                    name,
                    "--network",
                    "none",
                    "--rootfs",
                    &r,
                    "true",
                ])
            };
            for i in have..target {
                let name = format!("many-{i}");
                for e in &engines {
                    create(e, &name)?;
                }
            }
            have = target;
            // rpod's create cost at this size, measured alone (not right
            // after one of podman's creates, whose writeback at 1,000
            // containers would be timed with it): `n` creates after a
            // `sync`, each removed again untimed.
            let _ = Command::new("sync").status();
            let mut create_rpod = Vec::new();
            for j in 0..n {
                let name = format!("probe-{target}-{j}");
                let (d, _) = create(engines[0], &name)?;
                create_rpod.push(d);
                engines[0].time(&["rm", &name])?;
            }
            let mut ps: Vec<Vec<Duration>> = engines.iter().map(|_| Vec::new()).collect();
            let mut rss = 0u64;
            for _ in 0..n {
                for (k, e) in engines.iter().enumerate() {
                    let (d, m) = e.time(&["ps", "-a"])?;
                    ps[k].push(d);
                    if k == 0 {
                        rss = rss.max(m);
                    }
                }
            }
            let mut ps_m: Vec<Duration> = ps.into_iter().map(median).collect();
            rows.push(Row {
                op: format!("ps -a ({target} containers)"),
                rpod: ps_m[0],
                podman: ps_m.get_mut(1).map(|d| *d),
                note: format!("rpod peak RSS {:.1} MiB", rss as f64 / 1024.0),
            });
            rows.push(Row {
                op: format!("create at {target} containers (rpod alone, median of {n})"),
                rpod: median(create_rpod),
                podman: None,
                note: String::new(),
            });
        }
        Ok(())
    })();
    let floor_t = (!floor_times.is_empty()).then(|| median(floor_times));
    cleanup_cgroup(FLOOR_CGROUP.trim_start_matches('/'));
    for e in &engines {
        let _ = e
            .cmd(&["rm", "-f", "--all"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let _ = std::fs::remove_file(format!("/dev/shm/rpod_bench_{pid}"));
    cleanup_cgroup(&format!("rpod-bench-{pid}"));
    cleanup_cgroup("libpod_parent");
    let _ = std::fs::remove_dir_all(&tmp);
    result?;
    print_table(&rows, floor_t);
    Ok(())
}

/// The rpod binary built in release mode.
pub fn release_rpod(root: &Path) -> PathBuf {
    root.join("target/release/rpod")
}
