//! Everyday container commands end to end: exec, pause/unpause, restart,
//! rename, init, restart policies, top, stats, cp (real containers).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use rpod_e2e::{ok, wait_until, Env};

fn run_sleeper(env: &Env, name: &str) -> String {
    let rootfs = Env::rootfs_arg();
    let r = env.rpod(&[
        "run", "-d", "--name", name, "--rootfs", &rootfs, "sleep", "1000",
    ]);
    ok(&r).stdout.trim().to_string()
}

fn events(env: &Env) -> Vec<String> {
    let r = env.rpod(&["events", "--stream=false", "--format", "json"]);
    ok(&r);
    r.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["Status"].as_str().map(String::from))
        .collect()
}

#[test]
fn exec_passes_exit_codes_environment_and_options() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    run_sleeper(&env, "ex");
    let r = env.rpod(&[
        "exec",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        "ex",
        "sh",
        "-c",
        "echo $FOO; pwd; echo err >&2; exit 7",
    ]);
    assert_eq!(r.code, 7, "{r:?}");
    assert_eq!(r.stdout, "bar\n/tmp\n");
    assert!(r.stderr.contains("err"), "{r:?}");
    // the container's own environment is inherited, -e overrides
    let r = env.rpod(&["exec", "-e", "PATH=/bin", "ex", "sh", "-c", "echo $PATH"]);
    assert_eq!(ok(&r).stdout, "/bin\n");
    let r = env.rpod(&["exec", "-u", "1000:1000", "ex", "id", "-u"]);
    assert_eq!(ok(&r).stdout, "1000\n");
    // not found: 127; not executable: 126
    let r = env.rpod(&["exec", "ex", "no-such-command"]);
    assert_eq!(r.code, 127, "{r:?}");
    assert!(r.stderr.contains("no-such-command"), "{r:?}");
    let r = env.rpod(&["exec", "ex", "/etc/passwd"]);
    assert_eq!(r.code, 126, "{r:?}");
    // stdin with -i
    let mut child = env
        .cmd()
        .args(["exec", "-i", "ex", "cat"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"through stdin\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "through stdin\n");
    // a detached session shows in ExecIDs and blocks rm without -f
    let r = env.rpod(&["exec", "-d", "ex", "sleep", "1000"]);
    let session = ok(&r).stdout.trim().to_string();
    assert_eq!(session.len(), 64, "{r:?}");
    let ids = env.inspect("ex")["ExecIDs"].clone();
    assert_eq!(ids, serde_json::json!([session]));
    let r = env.rpod(&["rm", "ex"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("exec session"), "{r:?}");
    assert_eq!(env.inspect("ex")["State"]["Status"], "running");
    let evs = events(&env);
    // five sessions ran (the refused ones never started), four ended
    assert_eq!(evs.iter().filter(|s| *s == "exec").count(), 5, "{evs:?}");
    assert_eq!(
        evs.iter().filter(|s| *s == "exec_died").count(),
        4,
        "{evs:?}"
    );
    ok(&env.rpod(&["rm", "-f", "ex"]));
    let r = env.rpod(&["ps", "-a", "-q"]);
    assert_eq!(ok(&r).stdout, "");
}

#[test]
fn exec_into_a_stopped_container_is_refused() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let rootfs = Env::rootfs_arg();
    ok(&env.rpod(&["create", "--name", "st", "--rootfs", &rootfs, "true"]));
    let r = env.rpod(&["exec", "st", "true"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("not running"), "{r:?}");
    let r = env.rpod(&["exec", "nosuch", "true"]);
    assert_eq!(r.code, 125, "{r:?}");
}

#[test]
fn pause_unpause_then_kill_and_stop() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    run_sleeper(&env, "p1");
    run_sleeper(&env, "p2");
    ok(&env.rpod(&["pause", "p1"]));
    let doc = env.inspect("p1");
    assert_eq!(doc["State"]["Status"], "paused");
    assert_eq!(doc["State"]["Paused"], true);
    // the freezer really holds the process
    let pid = doc["State"]["Pid"].as_i64().unwrap();
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(st.contains("State:\tS") || st.contains("State:\tD"), "{st}");
    let r = env.rpod(&["pause", "p1"]);
    assert_eq!(r.code, 125, "{r:?}");
    let r = env.rpod(&["exec", "p1", "true"]);
    assert_eq!(r.code, 125, "{r:?}");
    ok(&env.rpod(&["unpause", "p1"]));
    assert_eq!(env.inspect("p1")["State"]["Status"], "running");
    let r = env.rpod(&["unpause", "p1"]);
    assert_eq!(r.code, 125, "{r:?}");
    // --all
    ok(&env.rpod(&["pause", "--all"]));
    let r = env.rpod(&["ps", "--filter", "status=paused", "-q"]);
    assert_eq!(ok(&r).stdout.lines().count(), 2, "{r:?}");
    // kill a paused container
    ok(&env.rpod(&["kill", "p1"]));
    wait_until("p1 to exit", 10, || {
        env.inspect("p1")["State"]["Status"] == "exited"
    });
    assert_eq!(env.inspect("p1")["State"]["ExitCode"], 137);
    // stop a paused container (it is resumed first)
    ok(&env.rpod(&["stop", "-t", "2", "p2"]));
    assert_eq!(env.inspect("p2")["State"]["Status"], "exited");
    let evs = events(&env);
    for e in ["pause", "unpause", "kill", "stop"] {
        assert!(evs.iter().any(|s| s == e), "{e} missing in {evs:?}");
    }
}

#[test]
fn restart_rename_and_init() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let rootfs = Env::rootfs_arg();
    ok(&env.rpod(&[
        "create", "--name", "r1", "--rootfs", &rootfs, "sleep", "1000",
    ]));
    ok(&env.rpod(&["init", "r1"]));
    assert_eq!(env.inspect("r1")["State"]["Status"], "created");
    let r = env.rpod(&["init", "r1"]);
    assert_eq!(r.code, 125, "{r:?}");
    ok(&env.rpod(&["start", "r1"]));
    let pid1 = env.inspect("r1")["State"]["Pid"].as_i64().unwrap();
    ok(&env.rpod(&["restart", "-t", "0", "r1"]));
    let doc = env.inspect("r1");
    assert_eq!(doc["State"]["Status"], "running");
    let pid2 = doc["State"]["Pid"].as_i64().unwrap();
    assert_ne!(pid1, pid2);
    assert!(events(&env).iter().any(|s| s == "restart"));
    // rename
    run_sleeper(&env, "other");
    ok(&env.rpod(&["rename", "r1", "renamed"]));
    assert_eq!(env.inspect("renamed")["Name"], "renamed");
    assert_eq!(env.rpod(&["inspect", "r1"]).code, 125);
    let r = env.rpod(&["rename", "renamed", "other"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("\"other\""), "{r:?}");
    let r = env.rpod(&["rename", "renamed", "bad/name"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("bad/name"), "{r:?}");
    assert_eq!(env.inspect("renamed")["Name"], "renamed");
    assert!(events(&env).iter().any(|s| s == "rename"));
    // the renamed container still works
    let r = env.rpod(&["exec", "renamed", "echo", "hi"]);
    assert_eq!(ok(&r).stdout, "hi\n");
}

#[test]
fn on_failure_restart_policy_counts_then_stays_exited() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let rootfs = Env::rootfs_arg();
    ok(&env.rpod(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "--rootfs",
        &rootfs,
        "sh",
        "-c",
        "sleep 0.2; exit 3",
    ]));
    wait_until("two restarts and a final exit", 30, || {
        let d = env.inspect("flaky");
        d["RestartCount"] == 2 && d["State"]["Status"] == "exited"
    });
    std::thread::sleep(Duration::from_millis(1500));
    let d = env.inspect("flaky");
    assert_eq!(d["RestartCount"], 2);
    assert_eq!(d["State"]["Status"], "exited");
    assert_eq!(d["State"]["ExitCode"], 3);
    assert_eq!(d["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(d["HostConfig"]["RestartPolicy"]["MaximumRetryCount"], 2);
    // `always` restarts after a clean exit, a user stop suppresses it
    ok(&env.rpod(&[
        "run",
        "-d",
        "--name",
        "loop",
        "--restart",
        "always",
        "--rootfs",
        &rootfs,
        "sh",
        "-c",
        "sleep 0.3",
    ]));
    wait_until("an always restart", 20, || {
        env.inspect("loop")["RestartCount"].as_u64().unwrap_or(0) >= 1
    });
    wait_until("loop running", 10, || {
        env.inspect("loop")["State"]["Status"] == "running"
    });
    ok(&env.rpod(&["stop", "-t", "1", "loop"]));
    let count = env.inspect("loop")["RestartCount"].clone();
    std::thread::sleep(Duration::from_millis(1500));
    let d = env.inspect("loop");
    assert_eq!(d["State"]["Status"], "exited");
    assert_eq!(d["RestartCount"], count);
}

#[test]
fn top_shows_podman_columns_and_descriptors() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let rootfs = Env::rootfs_arg();
    ok(&env.rpod(&[
        "run",
        "-d",
        "--name",
        "t",
        "--rootfs",
        &rootfs,
        "sh",
        "-c",
        "sleep 1000 & exec sleep 999",
    ]));
    wait_until("two processes", 10, || {
        env.rpod(&["top", "t"]).stdout.lines().count() == 3
    });
    let r = env.rpod(&["top", "t"]);
    let lines: Vec<&str> = ok(&r).stdout.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["USER", "PID", "PPID", "%CPU", "ELAPSED", "TTY", "TIME", "COMMAND"]
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("root") && l.ends_with("sleep 999")),
        "{r:?}"
    );
    let main: Vec<&str> = lines
        .iter()
        .find(|l| l.ends_with("sleep 999"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(main[1], "1", "container PID 1: {r:?}");
    let r = env.rpod(&["top", "t", "pid,comm"]);
    let lines: Vec<&str> = ok(&r).stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["PID", "COMMAND"]
    );
    assert!(lines[1..].iter().all(|l| l.ends_with("sleep")), "{r:?}");
    let r = env.rpod(&["top", "t", "pid", "bogus"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("bogus"), "{r:?}");
    ok(&env.rpod(&["kill", "t"]));
    wait_until("t exited", 10, || {
        env.inspect("t")["State"]["Status"] == "exited"
    });
    let r = env.rpod(&["top", "t"]);
    assert_eq!(r.code, 125, "{r:?}");
}

fn stats(env: &Env, name: &str) -> serde_json::Value {
    let r = env.rpod(&["stats", "--no-stream", "--format", "json", name]);
    serde_json::from_str::<serde_json::Value>(&ok(&r).stdout).unwrap()[0].clone()
}

fn secs(d: &str) -> f64 {
    if let Some(ms) = d.strip_suffix("ms") {
        return ms.parse::<f64>().unwrap() / 1000.0;
    }
    let mut total = 0.0;
    let mut num = String::new();
    for c in d.chars() {
        match c {
            'h' => total += num.parse::<f64>().unwrap() * 3600.0,
            'm' => total += num.parse::<f64>().unwrap() * 60.0,
            's' => total += num.parse::<f64>().unwrap(),
            _ => {
                num.push(c);
                continue;
            }
        }
        num.clear();
    }
    total
}

#[test]
fn stats_numbers_move_under_a_busy_loop() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let rootfs = Env::rootfs_arg();
    ok(&env.rpod(&[
        "run",
        "-d",
        "--name",
        "busy",
        "--rootfs",
        &rootfs,
        "sh",
        "-c",
        "while :; do :; done & exec sleep 1000",
    ]));
    let a = stats(&env, "busy");
    for k in [
        "id",
        "name",
        "cpu_time",
        "cpu_percent",
        "avg_cpu",
        "mem_usage",
        "mem_percent",
        "net_io",
        "block_io",
        "pids",
    ] {
        assert!(a.get(k).is_some(), "{k} missing in {a}");
    }
    assert_eq!(a["name"], "busy");
    assert_eq!(a["pids"], "2");
    assert!(a["mem_usage"].as_str().unwrap().contains(" / "), "{a}");
    std::thread::sleep(Duration::from_millis(1200));
    let b = stats(&env, "busy");
    let (ta, tb) = (
        secs(a["cpu_time"].as_str().unwrap()),
        secs(b["cpu_time"].as_str().unwrap()),
    );
    assert!(
        tb > ta + 0.3,
        "cpu time must grow under a busy loop: {a} then {b}"
    );
    let pct: f64 = b["cpu_percent"]
        .as_str()
        .unwrap()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    assert!(pct > 20.0, "{b}");
    // an idle container barely moves
    run_sleeper(&env, "idle");
    // the average since start includes runc's own start-up: let it settle
    std::thread::sleep(Duration::from_millis(1500));
    let i: f64 = stats(&env, "idle")["cpu_percent"]
        .as_str()
        .unwrap()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    assert!(i < 20.0, "idle at {i}%");
    ok(&env.rpod(&["kill", "idle"]));
    wait_until("idle exited", 10, || {
        env.inspect("idle")["State"]["Status"] == "exited"
    });
    let r = env.rpod(&["stats", "--no-stream", "idle"]);
    assert_eq!(r.code, 125, "{r:?}");
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn cp_round_trips_a_tree_with_modes() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    run_sleeper(&env, "cpc");
    let src = env.path("tree");
    std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
    std::fs::write(src.join("script"), "#!/bin/sh\necho from-script\n").unwrap();
    std::fs::set_permissions(src.join("script"), std::fs::Permissions::from_mode(0o751)).unwrap();
    std::fs::write(src.join("sub/secret"), "s3cret").unwrap();
    std::fs::set_permissions(
        src.join("sub/secret"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(src.join("sub/deeper/big"), vec![7u8; 300_000]).unwrap();
    std::os::unix::fs::symlink("../script", src.join("sub/link")).unwrap();
    std::fs::set_permissions(src.join("sub"), std::fs::Permissions::from_mode(0o710)).unwrap();
    // into a running container's existing directory
    ok(&env.rpod(&["cp", src.to_str().unwrap(), "cpc:/tmp"]));
    let r = env.rpod(&["exec", "cpc", "/tmp/tree/script"]);
    assert_eq!(ok(&r).stdout, "from-script\n");
    let r = env.rpod(&[
        "exec",
        "cpc",
        "stat",
        "-c",
        "%a %n",
        "/tmp/tree/script",
        "/tmp/tree/sub",
        "/tmp/tree/sub/secret",
    ]);
    assert_eq!(
        ok(&r).stdout,
        "751 /tmp/tree/script\n710 /tmp/tree/sub\n600 /tmp/tree/sub/secret\n"
    );
    // back out to a new host path
    let back = env.path("back");
    ok(&env.rpod(&["cp", "cpc:/tmp/tree", back.to_str().unwrap()]));
    for rel in [
        "script",
        "sub",
        "sub/secret",
        "sub/deeper",
        "sub/deeper/big",
    ] {
        assert_eq!(mode(&back.join(rel)), mode(&src.join(rel)), "{rel}");
    }
    assert_eq!(
        std::fs::read(back.join("sub/deeper/big")).unwrap(),
        vec![7u8; 300_000]
    );
    assert_eq!(
        std::fs::read_link(back.join("sub/link")).unwrap(),
        Path::new("../script")
    );
    // a single file to a new name, in a stopped container
    ok(&env.rpod(&["stop", "-t", "0", "cpc"]));
    ok(&env.rpod(&[
        "cp",
        src.join("sub/secret").to_str().unwrap(),
        "cpc:/tmp/renamed",
    ]));
    let out = env.path("out-file");
    ok(&env.rpod(&["cp", "cpc:/tmp/renamed", out.to_str().unwrap()]));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "s3cret");
    assert_eq!(mode(&out), 0o600);
    // clean the shared rootfs
    let root = Path::new(&env.inspect("cpc")["Rootfs"].as_str().unwrap().to_string()).to_path_buf();
    let _ = std::fs::remove_dir_all(root.join("tmp/tree"));
    let _ = std::fs::remove_file(root.join("tmp/renamed"));
    // bad arguments
    let r = env.rpod(&["cp", "/etc/hostname", "/tmp/x"]);
    assert_eq!(r.code, 125, "{r:?}");
    let r = env.rpod(&["cp", "cpc:/no/such", back.to_str().unwrap()]);
    assert_eq!(r.code, 125, "{r:?}");
}

#[test]
fn cp_through_hostile_symlinks_is_confined() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let root = env.path("hostile-root");
    rpod_oci::rootfs::build_busybox_rootfs(&root, None).unwrap();
    let secret = env.path("host-secret");
    std::fs::write(&secret, "host secret").unwrap();
    let rel_up = "/..".repeat(20) + &secret.display().to_string();
    std::os::unix::fs::symlink(&rel_up, root.join("etc/evil")).unwrap();
    std::os::unix::fs::symlink("/", root.join("dir")).unwrap();
    std::os::unix::fs::symlink(env.dir.path(), root.join("outside")).unwrap();
    ok(&env.rpod(&[
        "create",
        "--name",
        "h",
        "--rootfs",
        root.to_str().unwrap(),
        "true",
    ]));
    let out = env.path("stolen");
    // reading through the hostile links never reaches the host
    let r = env.rpod(&["cp", "h:/etc/evil", out.to_str().unwrap()]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(!out.exists());
    let r = env.rpod(&[
        "cp",
        &format!(
            "h:/outside/{}",
            secret.file_name().unwrap().to_str().unwrap()
        ),
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(!out.exists());
    // `..` beyond the root stays at the root: this is the container's passwd
    ok(&env.rpod(&["cp", "h:/dir/../../../../etc/passwd", out.to_str().unwrap()]));
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(root.join("etc/passwd")).unwrap()
    );
    // writing through the links lands inside the root
    let payload = env.path("payload");
    std::fs::write(&payload, "payload").unwrap();
    ok(&env.rpod(&["cp", payload.to_str().unwrap(), "h:/etc/evil"]));
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "host secret");
    assert_eq!(
        std::fs::read_to_string(root.join("etc/evil")).unwrap(),
        "payload"
    );
    ok(&env.rpod(&["cp", payload.to_str().unwrap(), "h:/dir/dropped"]));
    assert_eq!(
        std::fs::read_to_string(root.join("dropped")).unwrap(),
        "payload"
    );
    assert!(!Path::new("/dropped").exists());
    // a directory copied out keeps links as links (never followed)
    std::fs::create_dir_all(root.join("data")).unwrap();
    std::os::unix::fs::symlink("/", root.join("data/root-link")).unwrap();
    let dout = env.path("data-out");
    ok(&env.rpod(&["cp", "h:/data", dout.to_str().unwrap()]));
    assert_eq!(
        std::fs::read_link(dout.join("root-link")).unwrap(),
        Path::new("/")
    );
    assert_eq!(std::fs::read_dir(&dout).unwrap().count(), 1);
}

#[test]
fn cp_sees_volumes_and_a_running_containers_own_mounts() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let rootfs = Env::rootfs_arg();
    let vol = env.path("vol");
    let ro = env.path("ro");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::create_dir_all(&ro).unwrap();
    std::fs::write(vol.join("in-volume"), "from the host").unwrap();
    let payload = env.path("payload");
    std::fs::write(&payload, "payload").unwrap();
    let p = payload.to_str().unwrap();
    ok(&env.rpod(&[
        "run",
        "-d",
        "--name",
        "m",
        "-v",
        &format!("{}:/cpdata", vol.display()),
        "-v",
        &format!("{}:/cpro:ro", ro.display()),
        "--rootfs",
        &rootfs,
        "sleep",
        "1000",
    ]));
    // running: a file in the container's own tmpfs (only in its mount
    // namespace) is copied out
    ok(&env.rpod(&["exec", "m", "sh", "-c", "echo in-tmpfs > /dev/shm/t"]));
    let out = env.path("out-tmpfs");
    ok(&env.rpod(&["cp", "m:/dev/shm/t", out.to_str().unwrap()]));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "in-tmpfs\n");
    // volumes: in and out through the bind mount
    ok(&env.rpod(&["cp", p, "m:/cpdata/new"]));
    assert_eq!(std::fs::read_to_string(vol.join("new")).unwrap(), "payload");
    let out = env.path("out-vol");
    ok(&env.rpod(&["cp", "m:/cpdata/in-volume", out.to_str().unwrap()]));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "from the host");
    // a read-only volume is not written
    let r = env.rpod(&["cp", p, "m:/cpro/x"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(!ro.join("x").exists());
    // stopped: the volumes still resolve to their sources
    ok(&env.rpod(&["stop", "-t", "0", "m"]));
    let out = env.path("out-stopped");
    ok(&env.rpod(&["cp", "m:/cpdata/new", out.to_str().unwrap()]));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "payload");
    ok(&env.rpod(&["cp", p, "m:/cpdata/after-stop"]));
    assert_eq!(
        std::fs::read_to_string(vol.join("after-stop")).unwrap(),
        "payload"
    );
    let r = env.rpod(&["cp", p, "m:/cpro/y"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("read-only"), "{r:?}");
    assert!(!ro.join("y").exists());
    // nothing landed in the root filesystem under the mount points
    let shared = Env::rootfs();
    assert!(!shared.join("cpdata/new").exists() && !shared.join("cpdata/after-stop").exists());
}
