//! The runtime's own lifecycle end to end: database config, refresh after a
//! (simulated) reboot, `system renumber`, namespaces, `system reset`,
//! `system migrate`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use rpod_e2e::{json, ok, wait_until, Env};
use serde_json::Value;

fn status(env: &Env, name: &str) -> String {
    env.inspect(name)["State"]["Status"]
        .as_str()
        .unwrap()
        .to_string()
}

fn system_events(env: &Env, status: &str) -> usize {
    std::fs::read_to_string(env.path("events.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["Type"] == "system" && e["Status"] == status)
        .count()
}

fn alive(pid: i64) -> bool {
    pid > 0 && Path::new(&format!("/proc/{pid}")).exists() && {
        // a zombie is dead for our purpose
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.split(") ").nth(1).unwrap_or("").starts_with('Z'))
            .unwrap_or(false)
    }
}

fn runc() -> &'static str {
    ["/usr/sbin/runc", "/usr/bin/runc", "/usr/local/bin/runc"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("runc")
}

fn run_detached(env: &Env, args: &[&str]) -> String {
    let rootfs = Env::rootfs_arg();
    let mut v = vec!["run", "-d"];
    v.extend_from_slice(args);
    v.extend_from_slice(&["--rootfs", &rootfs, "sleep", "1000"]);
    ok(&env.rpod(&v)).stdout.trim().to_string()
}

/// What a reboot does to rpod's containers: every process gone, the OCI
/// runtime's state gone, the tmp dir (a tmpfs) and the SHM segment empty.
fn simulate_reboot(env: &Env, ids: &[&str]) {
    for id in ids {
        let st = &json(&env.rpod(&["inspect", id]))[0]["State"];
        for key in ["ConmonPid", "Pid"] {
            let pid = st[key].as_i64().unwrap();
            if pid > 0 {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                wait_until("process killed", 10, || !alive(pid));
            }
        }
        let root = env.path("run/runc");
        let s = Command::new(runc())
            .arg("--root")
            .arg(&root)
            .args(["delete", "--force", id])
            .status()
            .unwrap();
        assert!(s.success(), "runc delete {id}");
    }
    for e in std::fs::read_dir(env.path("tmp")).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            std::fs::remove_dir_all(&p).unwrap();
        } else {
            std::fs::remove_file(&p).unwrap();
        }
    }
    let _ = std::fs::remove_file(Path::new("/dev/shm").join(&env.lock_name));
}

#[test]
fn database_paths_come_from_the_database_unless_set_explicitly() {
    let env = Env::new();
    let vols1 = env.path("vols1");
    let vols2 = env.path("vols2");
    let v1 = vols1.to_str().unwrap();
    ok(&env.rpod(&["--volumepath", v1, "volume", "create", "first"]));
    // not set explicitly: the database's volume path is used
    ok(&env.rpod(&["volume", "create", "second"]));
    let d = &json(&env.rpod(&["volume", "inspect", "second"]))[0];
    assert_eq!(
        d["Mountpoint"],
        vols1.join("second/_data").display().to_string()
    );
    assert!(vols1.join("second/_data").is_dir());
    assert!(!env.path("root/volumes/second").exists());
    // set explicitly to something else: refused, naming both and the way out
    let r = env.rpod(&["--volumepath", vols2.to_str().unwrap(), "volume", "ls"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(
        r.stderr.contains(v1) && r.stderr.contains(vols2.to_str().unwrap()),
        "{r:?}"
    );
    assert!(
        r.stderr.contains("volume_path") && r.stderr.contains("system reset"),
        "{r:?}"
    );
    assert!(!vols2.exists(), "nothing created for the refused path");
    // the same explicit value is fine
    ok(&env.rpod(&["--volumepath", v1, "volume", "ls"]));
    // an explicit run root that differs from the database's is refused too
    let r = env.rpod(&["--runroot", env.path("other-run").to_str().unwrap(), "ps"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(
        r.stderr.contains("runroot") && r.stderr.contains(env.path("run").to_str().unwrap()),
        "{r:?}"
    );
}

#[test]
fn refresh_after_reboot_resets_state_and_restarts_always_containers() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let plain = run_detached(&env, &["--name", "plain"]);
    let always = run_detached(&env, &["--name", "always", "--restart", "always"]);
    ok(&env.rpod(&["volume", "create", "vol"]));
    let old_pid = env.inspect("always")["State"]["Pid"].as_i64().unwrap();
    assert_eq!(status(&env, "plain"), "running");
    let refreshes = system_events(&env, "refresh");
    assert_eq!(refreshes, 1, "the very first command refreshes");

    simulate_reboot(&env, &[&plain, &always]);

    // the first command after the reboot refreshes
    assert_eq!(status(&env, "plain"), "exited");
    assert_eq!(system_events(&env, "refresh"), 2);
    assert!(env.path("tmp/alive").exists());
    assert!(env.path("tmp/exits").is_dir());
    // --restart always: running again, as a new process
    let st = &env.inspect("always")["State"];
    assert_eq!(st["Status"], "running", "{st}");
    let new_pid = st["Pid"].as_i64().unwrap();
    assert!(new_pid != old_pid && alive(new_pid), "{st}");
    // no second refresh
    ok(&env.rpod(&["ps", "-a"]));
    assert_eq!(system_events(&env, "refresh"), 2);
    // the exited one starts again normally; locks still work
    ok(&env.rpod(&["start", "plain"]));
    assert_eq!(status(&env, "plain"), "running");
    ok(&env.rpod(&["stop", "-t", "1", "plain"]));
    assert_eq!(status(&env, "plain"), "exited");
    ok(&env.rpod(&["volume", "rm", "vol"]));
    ok(&env.rpod(&["rm", "-f", "plain", "always"]));

    // a new boot id also means a reboot, even with the tmp dir intact
    std::fs::write(env.path("tmp/boot_id"), "not-this-boot").unwrap();
    ok(&env.rpod(&["ps"]));
    assert_eq!(system_events(&env, "refresh"), 3);
}

#[test]
fn only_one_process_refreshes_while_others_wait() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let id = run_detached(&env, &["--name", "c"]);
    assert_eq!(system_events(&env, "refresh"), 1);
    simulate_reboot(&env, &[&id]);
    let children: Vec<_> = (0..4)
        .map(|_| {
            env.cmd()
                .args(["ps", "-a", "--format", "json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            v[0]["State"], "exited",
            "every process sees the refreshed state: {v}"
        );
    }
    assert_eq!(system_events(&env, "refresh"), 2, "exactly one refresh");
    ok(&env.rpod(&["start", "c"]));
    assert_eq!(status(&env, "c"), "running");
}

#[test]
fn renumber_after_num_locks_changed() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let rootfs = Env::rootfs_arg();
    run_detached(&env, &["--name", "up"]);
    ok(&env.rpod(&["create", "--name", "idle", "--rootfs", &rootfs, "true"]));
    ok(&env.rpod(&["volume", "create", "vol"]));
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&env.config)
        .unwrap();
    writeln!(f, "num_locks = 4096").unwrap();
    drop(f);
    let r = env.rpod(&["ps", "-a"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("rpod system renumber"), "{r:?}");
    ok(&env.rpod(&["system", "renumber"]));
    assert_eq!(system_events(&env, "renumber"), 1);
    let r = env.rpod(&["ps", "-a", "--format", "json"]);
    assert_eq!(json(&r).as_array().unwrap().len(), 2);
    assert_eq!(status(&env, "up"), "running");
    ok(&env.rpod(&["stop", "-t", "1", "up"]));
    ok(&env.rpod(&["start", "up"]));
    ok(&env.rpod(&["start", "idle"]));
    ok(&env.rpod(&["create", "--name", "new", "--rootfs", &rootfs, "true"]));
    ok(&env.rpod(&["rm", "-f", "up", "idle", "new"]));
    ok(&env.rpod(&["volume", "rm", "vol"]));
    // renumbering again with nothing changed is harmless
    ok(&env.rpod(&["system", "renumber"]));
    ok(&env.rpod(&["ps", "-a"]));
}

#[test]
fn namespaces_separate_containers_and_volumes() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let rootfs = Env::rootfs_arg();
    let ns = |n: &str, args: &[&str]| {
        let mut v = vec!["--namespace", n];
        v.extend_from_slice(args);
        env.rpod(&v)
    };
    ok(&ns(
        "a",
        &[
            "create", "--name", "ca", "-v", "auto:/x", "--rootfs", &rootfs, "true",
        ],
    ));
    ok(&ns("a", &["volume", "create", "va"]));
    ok(&ns(
        "b",
        &["create", "--name", "cb", "--rootfs", &rootfs, "true"],
    ));
    let v = json(&ns("b", &["ps", "-a", "--format", "json"]));
    let names: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Names"].to_string())
        .collect();
    assert!(names.len() == 1 && names[0].contains("cb"), "{names:?}");
    assert_eq!(ok(&ns("b", &["volume", "ls", "-q"])).stdout, "");
    let r = ns("a", &["volume", "ls", "-q"]);
    assert_eq!(ok(&r).stdout, "auto\nva\n");
    for args in [
        &["inspect", "ca"][..],
        &["rm", "ca"],
        &["start", "ca"],
        &["volume", "inspect", "va"],
        &["volume", "rm", "-f", "va"],
    ] {
        let r = ns("b", args);
        assert_eq!(r.code, 125, "{args:?} from namespace b: {r:?}");
    }
    // a volume name is still unique across namespaces
    let r = ns("b", &["volume", "create", "va"]);
    assert_eq!(r.code, 125, "{r:?}");
    // running in a namespace works (cleanup finds it in its namespace)
    let r = ns(
        "a",
        &[
            "run",
            "-v",
            "va:/va",
            "--rootfs",
            &rootfs,
            "sh",
            "-c",
            "echo in-a",
        ],
    );
    assert_eq!(ok(&r).stdout, "in-a\n");
    // the empty namespace sees everything
    let r = env.rpod(&["ps", "-a", "-q"]);
    assert_eq!(ok(&r).stdout.lines().count(), 3, "{r:?}");
    assert_eq!(ok(&env.rpod(&["volume", "ls", "-q"])).stdout, "auto\nva\n");
    let v = json(&env.rpod(&["info", "--format", "json"]));
    assert_eq!(v["store"]["containerStore"]["number"], 3);
    let v = json(&ns("b", &["info", "--format", "json"]));
    assert_eq!(v["store"]["containerStore"]["number"], 1);
    assert_eq!(v["store"]["volumeCount"], 0);
}

#[test]
fn reset_removes_everything_rpod_owns() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let rootfs = Env::rootfs_arg();
    let id = run_detached(&env, &["--name", "up", "-v", "vol:/v"]);
    ok(&env.rpod(&["create", "--name", "idle", "--rootfs", &rootfs, "true"]));
    let st = &env.inspect("up")["State"];
    let (pid, conmon) = (
        st["Pid"].as_i64().unwrap(),
        st["ConmonPid"].as_i64().unwrap(),
    );
    assert!(alive(pid) && alive(conmon));
    let shm = Path::new("/dev/shm").join(&env.lock_name);
    assert!(shm.exists());
    // no confirmation: nothing happens
    let mut child = env
        .cmd()
        .args(["system", "reset"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"no\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(alive(pid));
    assert_eq!(status(&env, "up"), "running");

    ok(&env.rpod(&["system", "reset", "--force"]));
    wait_until("container process gone", 10, || {
        !alive(pid) && !alive(conmon)
    });
    assert!(!shm.exists(), "lock segment removed");
    for d in ["root", "run", "tmp", "events.log"] {
        assert!(!env.path(d).exists(), "{d} left behind");
    }
    assert!(env.runc_states().is_empty());
    assert!(env.leftover_cgroups(&id).is_empty());
    // a fresh start afterwards
    let r = env.rpod(&["ps", "-a", "-q"]);
    assert_eq!(ok(&r).stdout, "");
    assert_eq!(ok(&env.rpod(&["volume", "ls", "-q"])).stdout, "");
}

#[test]
fn migrate_rewrites_records_and_moves_containers_to_a_new_runtime() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let rootfs = Env::rootfs_arg();
    run_detached(&env, &["--name", "m"]);
    ok(&env.rpod(&[
        "create", "--name", "idle", "-v", "vol:/v", "--rootfs", &rootfs, "true",
    ]));
    let r = env.rpod(&["system", "migrate"]);
    assert_eq!(ok(&r).stdout, "");
    assert_eq!(status(&env, "m"), "running");
    assert_eq!(system_events(&env, "migrate"), 1);
    // an unknown runtime: refused, nothing changed
    let r = env.rpod(&["system", "migrate", "--new-runtime", "nosuchruntime"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("nosuchruntime"), "{r:?}");
    assert_eq!(status(&env, "m"), "running");
    let runc = runc();
    let r = env.rpod(&["system", "migrate", "--new-runtime", runc]);
    ok(&r);
    assert!(
        r.stdout.contains("stopped container") && r.stdout.contains("(m)"),
        "{r:?}"
    );
    assert!(!r.stdout.contains("(idle)"), "{r:?}");
    assert_eq!(status(&env, "m"), "exited");
    for c in ["m", "idle"] {
        assert_eq!(env.inspect(c)["OCIRuntime"], runc);
    }
    ok(&env.rpod(&["start", "m"]));
    assert_eq!(status(&env, "m"), "running");
    assert_eq!(ok(&env.rpod(&["volume", "ls", "-q"])).stdout, "vol\n");
    assert_eq!(system_events(&env, "migrate"), 2);
}

#[test]
fn renumber_waits_for_running_rpod_processes() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let rootfs = Env::rootfs_arg();
    // an attached `run` is an rpod process for as long as its container runs
    let mut attached = env
        .cmd()
        .args(["run", "--name", "att", "--rootfs", &rootfs, "sleep", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("attached container running", 10, || {
        env.rpod(&["inspect", "att"]).code == 0 && status(&env, "att") == "running"
    });
    let r = env.rpod(&["system", "renumber"]);
    ok(&r);
    assert!(
        attached.try_wait().unwrap().is_some(),
        "renumber finished while another rpod process was still running"
    );
    assert!(
        r.stderr.contains("waiting for other rpod processes"),
        "{r:?}"
    );
    assert!(attached.wait().unwrap().success());
    assert_eq!(status(&env, "att"), "exited");
}
