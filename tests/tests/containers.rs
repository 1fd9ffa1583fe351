//! Real containers end to end: runc under conmon, driven through the rpod CLI.

use std::path::Path;
use std::time::{Duration, Instant};

use rpod_e2e::{have_container_tools, json, ok, wait_until, Env, Run};

fn ps_json(env: &Env) -> Vec<serde_json::Value> {
    let r = env.rpod(&["ps", "-a", "--format", "json"]);
    ok(&r);
    serde_json::from_str::<serde_json::Value>(&r.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn run_passes_output_and_exit_code_through() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let rootfs = Env::rootfs_arg();
    let r = env.rpod(&[
        "run",
        "--rootfs",
        &rootfs,
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(r.code, 3, "{r:?}");
    assert_eq!(r.stdout, "out\n");
    assert!(r.stderr.contains("err\n"), "{r:?}");
    let r = env.rpod(&["run", "--rootfs", &rootfs, "true"]);
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn detached_run_logs_and_stop() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let rootfs = Env::rootfs_arg();
    let r = env.rpod(&[
        "run",
        "-d",
        "--name",
        "web",
        "--rootfs",
        &rootfs,
        "sh",
        "-c",
        "echo ready; exec sleep 100",
    ]);
    ok(&r);
    let id = r.stdout.trim().to_string();
    assert_eq!(id.len(), 64, "{r:?}");
    wait_until("log line", 10, || {
        env.rpod(&["logs", "web"]).stdout == "ready\n"
    });
    let ps = ps_json(&env);
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0]["State"], "running");
    assert!(ps[0]["Pid"].as_i64().unwrap() > 0);
    let t = Instant::now();
    ok(&env.rpod(&["stop", "-t", "5", "web"]));
    // sleep as PID 1 honours SIGTERM's default action only with a handler; either way it stops
    assert!(t.elapsed() < Duration::from_secs(15));
    let ps = ps_json(&env);
    assert_eq!(ps[0]["State"], "exited", "{ps:?}");
    assert!(
        env.runc_states().is_empty(),
        "runc state left: {:?}",
        env.runc_states()
    );
    let ts = env.rpod(&["logs", "-t", "web"]);
    assert!(
        ts.stdout.ends_with(" ready\n") && ts.stdout.len() > 20,
        "{ts:?}"
    );
}

#[test]
fn kill_signal_reaches_the_process_and_wait_returns_code() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let rootfs = Env::rootfs_arg();
    ok(&env.rpod(&[
        "run",
        "-d",
        "--name",
        "trap",
        "--rootfs",
        &rootfs,
        "sh",
        "-c",
        "trap 'echo got-usr1; exit 42' USR1; echo armed; while true; do sleep 0.1; done",
    ]));
    wait_until("trap armed", 10, || {
        env.rpod(&["logs", "trap"]).stdout.contains("armed")
    });
    ok(&env.rpod(&["kill", "-s", "USR1", "trap"]));
    let w = env.rpod(&["wait", "trap"]);
    ok(&w);
    assert_eq!(w.stdout.trim(), "42");
    assert!(env.rpod(&["logs", "trap"]).stdout.contains("got-usr1"));
    let bad = env.rpod(&["kill", "-s", "NOPE", "trap"]);
    assert_eq!(bad.code, 125);
    assert!(bad.stderr.contains("invalid signal"), "{bad:?}");
}

#[test]
fn rm_force_removes_a_running_container() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let rootfs = Env::rootfs_arg();
    let id = ok(&env.rpod(&["run", "-d", "--rootfs", &rootfs, "sleep", "100"]))
        .stdout
        .trim()
        .to_string();
    let r = env.rpod(&["rm", &id]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("without force"), "{r:?}");
    ok(&env.rpod(&["rm", "-f", &id[..12]]));
    assert!(ps_json(&env).is_empty());
    assert!(
        env.leftover_cgroups(&id).is_empty(),
        "{:?}",
        env.leftover_cgroups(&id)
    );
    assert!(env.runc_states().is_empty());
}

fn assert_nothing_left(env: &Env, id: &str) {
    assert!(ps_json(env).is_empty(), "record left");
    assert!(
        env.runc_states().is_empty(),
        "runc state left: {:?}",
        env.runc_states()
    );
    assert!(
        env.leftover_cgroups(id).is_empty(),
        "cgroup left: {:?}",
        env.leftover_cgroups(id)
    );
    assert!(
        env.leftover_mounts().is_empty(),
        "mounts left: {:?}",
        env.leftover_mounts()
    );
    if !id.is_empty() {
        assert!(
            !env.path(&format!("run/containers/{id}")).exists(),
            "bundle left"
        );
        assert!(
            !env.path(&format!("root/containers/{id}")).exists(),
            "container dir left"
        );
    }
    for dir in ["run/containers", "root/containers"] {
        let left: Vec<_> = std::fs::read_dir(env.path(dir))
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{dir} not empty: {left:?}");
    }
    // the lock was freed: a fresh shm segment of 2048 locks has all but none in use
    let shm = Path::new("/dev/shm").join(&env.lock_name);
    assert!(shm.exists(), "lock segment missing");
}

#[test]
fn run_rm_leaves_nothing_behind() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let rootfs = Env::rootfs_arg();
    let r = env.rpod(&[
        "run",
        "--rm",
        "--name",
        "ephemeral",
        "--rootfs",
        &rootfs,
        "echo",
        "bye",
    ]);
    ok(&r);
    assert_eq!(r.stdout, "bye\n");
    assert_nothing_left(&env, "");
    // the name is free again, which also proves the record is gone
    ok(&env.rpod(&[
        "run",
        "--rm",
        "--name",
        "ephemeral",
        "--rootfs",
        &rootfs,
        "true",
    ]));
    // detached --rm is removed by conmon's exit command
    let id = ok(&env.rpod(&["run", "-d", "--rm", "--rootfs", &rootfs, "true"]))
        .stdout
        .trim()
        .to_string();
    wait_until("detached --rm container removed", 15, || {
        ps_json(&env).is_empty()
    });
    assert_nothing_left(&env, &id);
}

#[test]
fn detached_container_that_exits_is_cleaned_up_by_exit_command() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let rootfs = Env::rootfs_arg();
    let id = ok(&env.rpod(&[
        "run", "-d", "--name", "short", "--rootfs", &rootfs, "sh", "-c", "exit 9",
    ]))
    .stdout
    .trim()
    .to_string();
    // The CLI that started it is gone; conmon runs `rpod container cleanup`.
    wait_until("runc state removed by cleanup", 15, || {
        env.runc_states().is_empty()
    });
    let ps = ps_json(&env);
    assert_eq!(ps[0]["State"], "exited");
    assert_eq!(ps[0]["ExitCode"], 9);
    assert_eq!(ps[0]["Exited"], true);
    let insp = ok(&env.rpod(&["inspect", "short"])).stdout.clone();
    let v: serde_json::Value = serde_json::from_str(&insp).unwrap();
    assert_eq!(v[0]["Id"], id);
    assert_eq!(v[0]["State"]["Status"], "exited");
    assert_eq!(v[0]["State"]["ExitCode"], 9);
    assert_eq!(v[0]["State"]["ConmonPid"], 0);
    assert_eq!(ok(&env.rpod(&["wait", "short"])).stdout.trim(), "9");
}

#[test]
fn ps_and_inspect_json_fields() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let rootfs = Env::rootfs_arg();
    let id = ok(&env.rpod(&[
        "create",
        "--name",
        "fields",
        "--label",
        "app=web",
        "--label",
        "tier=1",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        "--hostname",
        "myhost",
        "--rootfs",
        &rootfs,
        "sh",
        "-c",
        "echo $FOO; pwd; hostname",
    ]))
    .stdout
    .trim()
    .to_string();
    let ps = ps_json(&env);
    let e = &ps[0];
    for key in [
        "AutoRemove",
        "Command",
        "CreatedAt",
        "Exited",
        "ExitedAt",
        "ExitCode",
        "Id",
        "Image",
        "IsInfra",
        "Labels",
        "Mounts",
        "Names",
        "Pid",
        "Pod",
        "StartedAt",
        "State",
        "Status",
        "Created",
    ] {
        assert!(e.get(key).is_some(), "ps JSON lacks {key}: {e}");
    }
    assert_eq!(e["Id"], id);
    assert_eq!(e["Names"][0], "fields");
    assert_eq!(e["State"], "created");
    assert_eq!(e["Labels"]["app"], "web");
    assert_eq!(e["Command"][0], "sh");
    let v: serde_json::Value =
        serde_json::from_str(&ok(&env.rpod(&["inspect", "fields"])).stdout).unwrap();
    let d = &v[0];
    assert_eq!(d["Name"], "fields");
    assert_eq!(d["Path"], "sh");
    assert_eq!(d["Config"]["Hostname"], "myhost");
    assert_eq!(d["Config"]["WorkingDir"], "/tmp");
    assert!(d["Config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x == "FOO=bar"));
    assert_eq!(d["Config"]["Labels"]["tier"], "1");
    assert!(d["EffectiveCaps"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "CAP_CHOWN"));
    // start -a attaches and returns the exit code
    let r = env.rpod(&["start", "-a", "fields"]);
    ok(&r);
    assert_eq!(r.stdout, "bar\n/tmp\nmyhost\n");
    let filtered = env.rpod(&[
        "ps",
        "-a",
        "-q",
        "--filter",
        "label=app=web",
        "--filter",
        "status=exited",
    ]);
    assert_eq!(ok(&filtered).stdout.trim(), &id[..12]);
    let none = env.rpod(&["ps", "-a", "-q", "--filter", "name=nomatch"]);
    assert_eq!(ok(&none).stdout.trim(), "");
    let bad = env.rpod(&["ps", "--filter", "colour=red"]);
    assert_eq!(bad.code, 125);
}

#[test]
fn bad_input_gives_clear_errors_and_no_leftovers() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let rootfs = Env::rootfs_arg();
    let check = |args: &[&str], code: i32, needle: &str| {
        let r = env.rpod(args);
        assert_eq!(r.code, code, "{args:?}: {r:?}");
        assert!(
            r.stderr.contains(needle),
            "{args:?}: expected {needle:?} in {:?}",
            r.stderr
        );
        assert!(
            ps_json(&env).iter().all(|c| c["Names"][0] == "taken"),
            "leftover after {args:?}"
        );
    };
    check(
        &["run", "--rootfs", "/nonexistent/rootfs", "true"],
        125,
        "--rootfs",
    );
    check(
        &["run", "--name", "bad name!", "--rootfs", &rootfs, "true"],
        125,
        "invalid container name",
    );
    check(
        &["run", "--rootfs", &rootfs, "/bin/does-not-exist"],
        127,
        "does-not-exist",
    );
    check(
        &[
            "run",
            "--runtime",
            "/nonexistent/runc",
            "--rootfs",
            &rootfs,
            "true",
        ],
        125,
        "/nonexistent/runc",
    );
    check(
        &[
            "--conmon",
            "/nonexistent/conmon",
            "run",
            "--rootfs",
            &rootfs,
            "true",
        ],
        125,
        "conmon",
    );
    ok(&env.rpod(&["create", "--name", "taken", "--rootfs", &rootfs, "true"]));
    check(
        &["create", "--name", "taken", "--rootfs", &rootfs, "true"],
        125,
        "taken",
    );
    // a file that is not executable gives 126
    let r = env.rpod(&["run", "--rootfs", &rootfs, "/etc/passwd"]);
    assert_eq!(r.code, 126, "{r:?}");
    assert!(env.runc_states().is_empty());
}

#[test]
fn twenty_parallel_runs_succeed_and_leak_nothing() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let rootfs = Env::rootfs_arg();
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let mut cmd = env.cmd();
            cmd.args([
                "run",
                "--rm",
                "--rootfs",
                &rootfs,
                "sh",
                "-c",
                &format!("echo run-{i}"),
            ]);
            std::thread::spawn(move || -> Run { cmd.output().expect("spawn rpod").into() })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let r = h.join().unwrap();
        assert_eq!(r.code, 0, "run {i}: {r:?}");
        assert_eq!(r.stdout, format!("run-{i}\n"));
    }
    assert_nothing_left(&env, "");
    assert!(env
        .path("run/containers")
        .read_dir()
        .unwrap()
        .next()
        .is_none());
}

#[test]
fn every_state_and_lock_backend_runs_containers() {
    if !have_container_tools() {
        return;
    }
    let rootfs = Env::rootfs_arg();
    for db in ["sled", "bolt"] {
        for lock in ["shm", "file"] {
            let env = Env::new();
            let lock_dir = env.path("locks").display().to_string();
            let mut base = vec!["--db-backend", db, "--lock-type", lock];
            if lock == "file" {
                base.extend(["--lock-path", lock_dir.as_str()]);
            }
            let with = |args: &[&str]| {
                let mut v = base.clone();
                v.extend_from_slice(args);
                env.rpod(&v)
            };
            let r = with(&[
                "run",
                "--name",
                "combo",
                "--rootfs",
                &rootfs,
                "sh",
                "-c",
                "echo $0-ok; exit 5",
                db,
            ]);
            assert_eq!(r.code, 5, "{db}/{lock}: {r:?}");
            assert_eq!(r.stdout, format!("{db}-ok\n"));
            let ps = with(&["ps", "-a", "--format", "json"]);
            let v: serde_json::Value = serde_json::from_str(&ps.stdout).unwrap();
            assert_eq!(v[0]["ExitCode"], 5, "{db}/{lock}");
            ok(&with(&["rm", "combo"]));
            let db_file = env.path(&format!("root/static/{db}_state.db"));
            assert!(
                db_file.exists(),
                "{db}/{lock}: no database at {}",
                db_file.display()
            );
            if lock == "file" {
                ok(&with(&["rm", "-f", "--all"]));
            }
        }
    }
}

#[test]
fn lifecycle_actions_leave_events() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let rootfs = Env::rootfs_arg();
    let r = env.rpod(&[
        "run",
        "--name",
        "evented",
        "--label",
        "team=core",
        "--rootfs",
        &rootfs,
        "sh",
        "-c",
        "exit 6",
    ]);
    assert_eq!(r.code, 6, "{r:?}");
    ok(&env.rpod(&["rm", "evented"]));
    let ev = env.rpod(&[
        "events",
        "--stream=false",
        "--format",
        "json",
        "--filter",
        "container=evented",
    ]);
    ok(&ev);
    let events: Vec<serde_json::Value> = ev
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let statuses: Vec<&str> = events
        .iter()
        .map(|e| e["Status"].as_str().unwrap())
        .collect();
    for s in ["create", "init", "start", "died", "cleanup", "remove"] {
        assert!(statuses.contains(&s), "no {s} event in {statuses:?}");
    }
    let died = events.iter().find(|e| e["Status"] == "died").unwrap();
    assert_eq!(died["ContainerExitCode"], 6);
    assert_eq!(died["Attributes"]["team"], "core");
    assert_eq!(died["Name"], "evented");
}

#[test]
fn go_templates_format_inspect_ps_volumes_and_info() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let rootfs = Env::rootfs_arg();
    let id = ok(&env.rpod(&[
        "create",
        "--name",
        "tpl",
        "--label",
        "team=core",
        "--rootfs",
        &rootfs,
        "sh",
        "-c",
        "true",
    ]))
    .stdout
    .trim()
    .to_string();
    let out = |args: &[&str]| ok(&env.rpod(args)).stdout.clone();
    assert_eq!(
        out(&[
            "inspect",
            "--format",
            r#"{{.State.Status}} {{.Name}} {{index .Config.Labels "team"}} {{json .Config.Cmd}}"#,
            "tpl"
        ]),
        "created tpl core [\"sh\",\"-c\",\"true\"]\n"
    );
    assert_eq!(
        out(&["inspect", "--format", "{{.Id}}", "tpl"]),
        format!("{id}\n")
    );
    assert_eq!(
        out(&[
            "ps",
            "-a",
            "--format",
            "{{.ID}} {{.Names}} {{.Status}} {{.Command}}"
        ]),
        format!("{} tpl Created sh -c true\n", &id[..12])
    );
    assert_eq!(
        out(&["ps", "-a", "--no-trunc", "--format", "{{.ID}}"]),
        format!("{id}\n")
    );
    assert_eq!(
        out(&["ps", "-a", "--format", "table {{.ID}}\\t{{.Names}}"]),
        format!("CONTAINER ID  NAMES\n{}  tpl\n", &id[..12])
    );
    ok(&env.rpod(&["volume", "create", "tv"]));
    assert_eq!(
        out(&[
            "volume",
            "inspect",
            "--format",
            "{{.Name}} {{.Driver}}",
            "tv"
        ]),
        "tv local\n"
    );
    let info = json(&env.rpod(&["info", "--format", "json"]));
    assert_eq!(
        out(&["info", "--format", "{{.Host.Arch}}"]),
        format!("{}\n", info["host"]["arch"].as_str().unwrap())
    );
    // an unsupported template is refused before anything is read
    let r = env.rpod(&["inspect", "--format", "{{range .Mounts}}", "tpl"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("expected {{.Field.Path}}"), "{r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");
}
