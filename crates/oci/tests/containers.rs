//! Real containers driven through conmon + runc with rpod-oci's API.

mod common;

use std::io::Cursor;
use std::time::Duration;

use common::{have_container_deps, new_id, TestEnv};
use rpod_oci::exit::{self, ExitOutcome};
use rpod_oci::logs::{self, LogOptions, LogStream};
use rpod_oci::{AttachSocket, Monitor, OciError};

const WAIT: Duration = Duration::from_secs(20);

fn wait_exit(env: &TestEnv, id: &str, monitor_pid: i32) -> i32 {
    match exit::wait_for_exit(&env.exit_dir, id, Some(monitor_pid), WAIT).unwrap() {
        ExitOutcome::Exited(c) => c,
        ExitOutcome::MonitorGone => panic!("conmon died without an exit file"),
    }
}

#[test]
fn run_logs_output_and_records_exit_code() {
    if !have_container_deps() {
        return;
    }
    let env = TestEnv::new();
    let id = new_id();
    let opts = env.opts(
        &id,
        &["sh", "-c", "echo out; printf part; echo err >&2; exit 3"],
    );
    let req = env.prepare(&opts);
    let created = env.monitor.create(&env.runtime, &req).unwrap();
    assert!(created.pid > 0 && created.monitor_pid > 0);
    assert!(exit::process_alive(created.monitor_pid));
    assert_eq!(env.runtime.state(&id).unwrap().status, "created");
    // The container's process is in its own cgroup under the test parent.
    let cg = std::fs::read_to_string(format!("/proc/{}/cgroup", created.pid)).unwrap();
    assert!(
        cg.contains(&format!("{}/{}", env.cgroup_parent, id)),
        "cgroup of the container: {cg}"
    );
    env.runtime.start(&id).unwrap();
    assert_eq!(wait_exit(&env, &id, created.monitor_pid), 3);
    assert!(
        exit::wait_for_pid(created.monitor_pid, WAIT).unwrap(),
        "conmon did not exit"
    );
    let lines = logs::read_all(&req.log_path, &LogOptions::default()).unwrap();
    let mut out = Vec::new();
    let mut err = Vec::new();
    for l in &lines {
        l.write_to(&mut out, &mut err, false).unwrap();
    }
    assert_eq!(String::from_utf8_lossy(&out), "out\npart");
    assert_eq!(String::from_utf8_lossy(&err), "err\n");
    assert!(lines
        .iter()
        .any(|l| l.partial && l.stream == LogStream::Stdout));
    assert_eq!(env.runtime.state(&id).unwrap().status, "stopped");
    env.runtime.delete(&id, false).unwrap();
    let e = env.runtime.state(&id).unwrap_err();
    assert!(e.to_string().contains("does not exist"), "{e}");
}

#[test]
fn attach_before_start_streams_stdout_and_stderr_separately() {
    if !have_container_deps() {
        return;
    }
    let env = TestEnv::new();
    let id = new_id();
    let opts = env.opts(
        &id,
        &["sh", "-c", "echo hello; echo oops >&2; echo world; exit 0"],
    );
    let req = env.prepare(&opts);
    let created = env.monitor.create(&env.runtime, &req).unwrap();
    let attach = AttachSocket::connect(&req.bundle).unwrap();
    env.runtime.start(&id).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let stats = attach.stream(None, &mut out, &mut err).unwrap();
    assert_eq!(String::from_utf8_lossy(&out), "hello\nworld\n");
    assert_eq!(String::from_utf8_lossy(&err), "oops\n");
    assert_eq!((stats.stdout_bytes, stats.stderr_bytes), (12, 5));
    assert_eq!(wait_exit(&env, &id, created.monitor_pid), 0);
}

#[test]
fn stdin_reaches_the_container_and_eof_closes_it() {
    if !have_container_deps() {
        return;
    }
    let env = TestEnv::new();
    let id = new_id();
    let opts = env.opts(&id, &["sh", "-c", "cat; echo done-cat"]);
    let mut req = env.prepare(&opts);
    req.stdin = true;
    let created = env.monitor.create(&env.runtime, &req).unwrap();
    let attach = AttachSocket::connect(&req.bundle).unwrap();
    env.runtime.start(&id).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    attach
        .stream(
            Some(Box::new(Cursor::new(b"ping\npong\n".to_vec()))),
            &mut out,
            &mut err,
        )
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out), "ping\npong\ndone-cat\n");
    assert_eq!(wait_exit(&env, &id, created.monitor_pid), 0);
}

#[test]
fn terminal_output_arrives_on_stdout_with_crlf() {
    if !have_container_deps() {
        return;
    }
    let env = TestEnv::new();
    let id = new_id();
    let mut opts = env.opts(&id, &["sh", "-c", "echo tty-out; echo tty-err >&2"]);
    opts.terminal = true;
    let mut req = env.prepare(&opts);
    req.terminal = true;
    let created = env.monitor.create(&env.runtime, &req).unwrap();
    let attach = AttachSocket::connect(&req.bundle).unwrap();
    env.runtime.start(&id).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    attach.stream(None, &mut out, &mut err).unwrap();
    assert_eq!(String::from_utf8_lossy(&out), "tty-out\r\ntty-err\r\n");
    assert!(err.is_empty());
    assert_eq!(wait_exit(&env, &id, created.monitor_pid), 0);
}

#[test]
fn kill_pause_resume_and_signals_reach_the_container() {
    if !have_container_deps() {
        return;
    }
    let env = TestEnv::new();
    let id = new_id();
    let opts = env.opts(
        &id,
        &[
            "sh",
            "-c",
            "trap 'echo got-usr1; exit 42' USR1; echo ready; while true; do sleep 0.05; done",
        ],
    );
    let req = env.prepare(&opts);
    let created = env.monitor.create(&env.runtime, &req).unwrap();
    env.runtime.start(&id).unwrap();
    assert_eq!(env.runtime.state(&id).unwrap().status, "running");
    // Wait until the trap is installed.
    let deadline = std::time::Instant::now() + WAIT;
    while !std::fs::read_to_string(&req.log_path)
        .unwrap_or_default()
        .contains("ready")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "container never got ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    env.runtime.pause(&id).unwrap();
    assert_eq!(env.runtime.state(&id).unwrap().status, "paused");
    env.runtime.resume(&id).unwrap();
    assert_eq!(env.runtime.state(&id).unwrap().status, "running");
    env.runtime.kill(&id, libc::SIGUSR1, false).unwrap();
    assert_eq!(wait_exit(&env, &id, created.monitor_pid), 42);
    let log = std::fs::read_to_string(&req.log_path).unwrap();
    assert!(log.contains("stdout F got-usr1"), "{log}");
    // Killing a stopped container is the runtime's error, with its message.
    let e = env.runtime.kill(&id, 9, false).unwrap_err();
    match &e {
        OciError::RuntimeFailed {
            op,
            id: eid,
            message,
            ..
        } => {
            assert_eq!(op, "kill");
            assert_eq!(eid, &id);
            assert!(message.contains("not running"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn sigkill_gives_137_and_exit_command_runs() {
    if !have_container_deps() {
        return;
    }
    let env = TestEnv::new();
    let id = new_id();
    let marker = env.dir.path().join("cleanup-ran");
    let opts = env.opts(&id, &["sleep", "60"]);
    let mut req = env.prepare(&opts);
    req.exit_command = vec![
        "/bin/sh".into(),
        "-c".into(),
        format!("echo \"$0\" > {}", marker.display()),
        "cleanup-arg".into(),
    ];
    let created = env.monitor.create(&env.runtime, &req).unwrap();
    env.runtime.start(&id).unwrap();
    env.runtime.kill(&id, 9, false).unwrap();
    assert_eq!(wait_exit(&env, &id, created.monitor_pid), 137);
    // conmon waits for the exit command before exiting.
    assert!(exit::wait_for_pid(created.monitor_pid, WAIT).unwrap());
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap().trim(),
        "cleanup-arg"
    );
    env.runtime.delete(&id, true).unwrap();
    // Deleting again with force is fine.
    env.runtime.delete(&id, true).unwrap();
}

#[test]
fn failing_create_reports_runc_message_and_leaves_no_state() {
    if !have_container_deps() {
        return;
    }
    let env = TestEnv::new();
    let id = new_id();
    let opts = env.opts(&id, &["true"]);
    let req = env.prepare(&opts);
    // Bypass rpod's validation: the runtime itself must fail.
    let cfg_path = req.bundle.join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    v["process"]["args"] = serde_json::json!(["/nonexistent"]);
    std::fs::write(&cfg_path, serde_json::to_vec(&v).unwrap()).unwrap();
    let e = env.monitor.create(&env.runtime, &req).unwrap_err();
    match &e {
        OciError::RuntimeFailed {
            runtime,
            op,
            id: eid,
            message,
        } => {
            assert_eq!(
                (runtime.as_str(), op.as_str(), eid),
                ("runc", "create", &id)
            );
            assert!(message.contains("/nonexistent"), "{message}");
            assert!(message.contains("no such file or directory"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(e.exit_code(), 127);
    assert!(env.runtime.state(&id).is_err());
    assert!(!env.runtime.state_root.join(&id).exists());
    assert_eq!(exit::read_exit_code(&env.exit_dir, &id).unwrap(), None);
}

#[test]
fn spec_is_honoured_inside_the_container() {
    if !have_container_deps() {
        return;
    }
    let env = TestEnv::new();
    let id = new_id();
    let mut opts = env.opts(
        &id,
        &[
            "sh",
            "-c",
            "id -u; id -g; hostname; cat /etc/hostname; echo $FOO; pwd; \
             grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status; \
             cat /data/file; (echo x > /data/file) 2>/dev/null || echo ro-ok; ulimit -n",
        ],
    );
    let data = env.dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("file"), "from-host\n").unwrap();
    opts.env = vec!["FOO=bar".into()];
    opts.hostname = "box".into();
    opts.cwd = "/tmp".into();
    opts.no_new_privileges = true;
    opts.mounts =
        vec![rpod_oci::spec::BindMount::parse(&format!("{}:/data:ro", data.display())).unwrap()];
    let req = env.prepare(&opts);
    let created = env.monitor.create(&env.runtime, &req).unwrap();
    let attach = AttachSocket::connect(&req.bundle).unwrap();
    env.runtime.start(&id).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    attach.stream(None, &mut out, &mut err).unwrap();
    assert_eq!(
        wait_exit(&env, &id, created.monitor_pid),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&err)
    );
    let out = String::from_utf8_lossy(&out).into_owned();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        vec![
            "0",
            "0",
            "box",
            "box",
            "bar",
            "/tmp",
            // podman's 11 default capabilities (measured CapEff of podman 4.3.1).
            "CapEff:\t00000000800405fb",
            "NoNewPrivs:\t1",
            "Seccomp:\t2",
            "from-host",
            "ro-ok",
            "1024",
        ],
        "stderr: {}",
        String::from_utf8_lossy(&err)
    );
}

#[test]
fn named_user_and_init_run_inside_the_container() {
    if !have_container_deps() {
        return;
    }
    let init = ["/usr/libexec/podman/catatonit", "/usr/bin/catatonit"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.is_file());
    if init.is_none() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true but catatonit is not installed");
        }
        eprintln!("NOT RUN: catatonit missing");
        return;
    }
    let env = TestEnv::new();
    let id = new_id();
    let mut opts = env.opts(
        &id,
        &[
            "sh",
            "-c",
            "id -u; id -g; id -G; tr '\\0' ' ' < /proc/1/cmdline; echo; echo $HOME",
        ],
    );
    opts.user = "test".into();
    opts.init = init.clone();
    let req = env.prepare(&opts);
    let created = env.monitor.create(&env.runtime, &req).unwrap();
    let attach = AttachSocket::connect(&req.bundle).unwrap();
    env.runtime.start(&id).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    attach.stream(None, &mut out, &mut err).unwrap();
    assert_eq!(wait_exit(&env, &id, created.monitor_pid), 0);
    let out = String::from_utf8_lossy(&out).into_owned();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..3], &["1000", "1000", "1000 10"], "{out}");
    // PID 1 is catatonit at podman's path, running the command after `--`.
    assert!(lines[3].starts_with("/run/podman-init -- sh -c "), "{out}");
    assert_eq!(lines[4], "/home/test");
}

#[test]
fn cgroup_parent_is_removed_by_the_guard() {
    if !have_container_deps() {
        return;
    }
    let parent;
    {
        let env = TestEnv::new();
        parent = env.cgroup_parent.clone();
        let id = new_id();
        let opts = env.opts(&id, &["sleep", "30"]);
        let req = env.prepare(&opts);
        env.monitor.create(&env.runtime, &req).unwrap();
        env.runtime.start(&id).unwrap();
        assert!(common::cgroup_parent_exists(&parent));
        // Dropped while running: the guard kills, deletes and removes cgroups.
    }
    assert!(
        !common::cgroup_parent_exists(&parent),
        "cgroup {parent} left behind"
    );
}

#[test]
fn follow_reads_the_live_log_until_the_container_exits() {
    if !have_container_deps() {
        return;
    }
    let env = TestEnv::new();
    let id = new_id();
    let opts = env.opts(
        &id,
        &[
            "sh",
            "-c",
            "echo first; sleep 0.4; echo second >&2; sleep 0.2",
        ],
    );
    let mut req = env.prepare(&opts);
    req.log_size_max = 1 << 20;
    let created = env.monitor.create(&env.runtime, &req).unwrap();
    env.runtime.start(&id).unwrap();
    let mut got = Vec::new();
    let exit_dir = env.exit_dir.clone();
    let running = || exit::read_exit_code(&exit_dir, &id).unwrap().is_none();
    logs::read_log(
        &req.log_path,
        &LogOptions {
            follow: true,
            ..Default::default()
        },
        &running,
        &mut |l| {
            got.push((l.stream, String::from_utf8_lossy(&l.message).into_owned()));
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(
        got,
        vec![
            (LogStream::Stdout, "first".to_string()),
            (LogStream::Stderr, "second".to_string())
        ]
    );
    assert_eq!(wait_exit(&env, &id, created.monitor_pid), 0);
    let tail = logs::read_all(
        &req.log_path,
        &LogOptions {
            tail: Some(1),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(tail.len(), 1);
    assert_eq!(tail[0].message, b"second");
}

#[test]
fn conmon_gets_podmans_argv_env_fds_and_cwd() {
    if !have_container_deps() {
        return;
    }
    let env = TestEnv::new();
    let id = new_id();
    // A wrapper that records what it was given, then runs the real conmon.
    let rec = env.dir.path().join("conmon-record");
    let wrapper = env.dir.path().join("conmon");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n{{ printf '%s\\n' \"$@\"; echo ---; env | sort; echo ---; pwd; echo ---; \
             ls -l /proc/$$/fd/3 /proc/$$/fd/4; }} > {rec}\nexec {real} \"$@\"\n",
            rec = rec.display(),
            real = common::CONMON
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let monitor = rpod_oci::ConmonMonitor::new(rpod_oci::Conmon { path: wrapper });
    let opts = env.opts(&id, &["true"]);
    let mut req = env.prepare(&opts);
    req.name = "named".into();
    req.env = vec!["FROM_CONF=1".into()];
    req.exit_command = vec!["/bin/true".into(), "container".into(), "cleanup".into()];
    let created = monitor.create(&env.runtime, &req).unwrap();
    env.runtime.start(&id).unwrap();
    assert_eq!(wait_exit(&env, &id, created.monitor_pid), 0);

    let text = std::fs::read_to_string(&rec).unwrap();
    let parts: Vec<&str> = text.split("---\n").collect();
    let argv: Vec<&str> = parts[0].lines().collect();
    let b = req.bundle.display().to_string();
    let expected_head = [
        "--api-version",
        "1",
        "-c",
        &id,
        "-u",
        &id,
        "-r",
        common::RUNC,
        "-b",
        &b,
        "-p",
        &format!("{b}/pidfile"),
        "-n",
        "named",
        "--exit-dir",
        &env.exit_dir.display().to_string(),
        "--full-attach",
        "-l",
        &format!("k8s-file:{b}/ctr.log"),
        "--log-level",
        "warning",
    ]
    .map(|s| s.to_string());
    assert_eq!(&argv[..expected_head.len()], &expected_head[..], "{argv:?}");
    let joined = argv.join(" ");
    assert!(
        joined.contains(&format!(
            "--runtime-arg=--root --runtime-arg={}",
            env.runtime.state_root.display()
        )),
        "{joined}"
    );
    assert!(
        joined.contains(&format!(
            "--runtime-arg --log-format=json --runtime-arg --log --runtime-arg={b}/oci-log"
        )),
        "{joined}"
    );
    assert!(
        joined.contains(&format!("--conmon-pidfile {b}/conmon.pid")),
        "{joined}"
    );
    assert!(
        joined.ends_with(
            "--exit-command /bin/true --exit-command-arg container --exit-command-arg cleanup"
        ),
        "{joined}"
    );
    let envs: Vec<&str> = parts[1].lines().collect();
    for want in [
        "_OCI_SYNCPIPE=3",
        "_OCI_STARTPIPE=4",
        "XDG_RUNTIME_DIR=",
        "FROM_CONF=1",
        "_CONTAINERS_USERNS_CONFIGURED=",
        "_CONTAINERS_ROOTLESS_UID=",
    ] {
        assert!(envs.contains(&want), "{want} missing from {envs:?}");
    }
    assert!(envs.iter().any(|e| e.starts_with("PATH=")));
    assert_eq!(
        parts[2].trim(),
        b,
        "conmon's cwd must be the bundle (OOM file)"
    );
    let fds: Vec<&str> = parts[3].lines().collect();
    assert_eq!(fds.len(), 2, "{fds:?}");
    assert!(fds.iter().all(|l| l.contains("socket:")), "{fds:?}");
}

#[test]
fn terminal_resize_through_the_ctl_fifo() {
    if !have_container_deps() {
        return;
    }
    let env = TestEnv::new();
    let id = new_id();
    let mut opts = env.opts(&id, &["sh", "-c", "sleep 0.5; stty size"]);
    opts.terminal = true;
    let mut req = env.prepare(&opts);
    req.terminal = true;
    let created = env.monitor.create(&env.runtime, &req).unwrap();
    let attach = AttachSocket::connect(&req.bundle).unwrap();
    rpod_oci::attach::resize_terminal(&req.bundle, 40, 120).unwrap();
    env.runtime.start(&id).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    attach.stream(None, &mut out, &mut err).unwrap();
    assert_eq!(String::from_utf8_lossy(&out), "40 120\r\n");
    assert_eq!(wait_exit(&env, &id, created.monitor_pid), 0);
}
