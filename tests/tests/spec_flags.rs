//! `create`/`run` flags that shape the OCI spec, checked from inside real containers.

use rpod_e2e::{have_container_tools, Env};

fn run(env: &Env, args: &[&str]) -> rpod_e2e::Run {
    let rootfs = Env::rootfs_arg();
    let mut v: Vec<&str> = vec!["run", "--rm"];
    let (flags, cmd) = args.split_at(
        args.iter()
            .position(|a| *a == "--")
            .expect("-- separates the command"),
    );
    v.extend_from_slice(flags);
    v.extend(["--rootfs", rootfs.as_str()]);
    v.extend_from_slice(&cmd[1..]);
    env.rpod(&v)
}

#[test]
fn user_workdir_env_hostname_and_read_only() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let r = run(
        &env,
        &[
            "-u",
            "1000:1000",
            "-w",
            "/tmp",
            "-e",
            "A=1",
            "--hostname",
            "box",
            "--",
            "sh",
            "-c",
            "id -u; id -g; pwd; echo $A; hostname",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "1000\n1000\n/tmp\n1\nbox\n");
    let r = run(&env, &["--read-only", "--", "sh", "-c", "touch /newfile"]);
    assert_ne!(r.code, 0, "write to a read-only rootfs succeeded: {r:?}");
    assert!(r.stderr.contains("Read-only file system"), "{r:?}");
}

#[test]
fn bind_mounts_read_write_and_read_only() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let host = env.path("share");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("in.txt"), "from host\n").unwrap();
    let spec = format!("{}:/data", host.display());
    let r = run(
        &env,
        &[
            "-v",
            &spec,
            "--",
            "sh",
            "-c",
            "cat /data/in.txt; echo back > /data/out.txt",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "from host\n");
    assert_eq!(
        std::fs::read_to_string(host.join("out.txt")).unwrap(),
        "back\n"
    );
    let ro = format!("{}:/data:ro", host.display());
    let r = run(
        &env,
        &["-v", &ro, "--", "sh", "-c", "echo x > /data/out.txt"],
    );
    assert_ne!(r.code, 0, "{r:?}");
    let r = run(&env, &["-v", "/nonexistent-rpod-src:/data", "--", "true"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("/nonexistent-rpod-src"), "{r:?}");
}

fn cap_eff(env: &Env, flags: &[&str]) -> u64 {
    let mut args: Vec<&str> = flags.to_vec();
    args.extend(["--", "sh", "-c", "grep CapEff /proc/self/status"]);
    let r = run(env, &args);
    assert_eq!(r.code, 0, "{r:?}");
    u64::from_str_radix(r.stdout.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

#[test]
fn capabilities_follow_cap_add_cap_drop_and_privileged() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let default = cap_eff(&env, &[]);
    // podman's default set, as measured on podman 4.3.1
    assert_eq!(default, 0x0000_0000_8004_05fb, "{default:x}");
    let dropped = cap_eff(&env, &["--cap-drop", "CHOWN"]);
    assert_eq!(dropped, default & !1, "{dropped:x}");
    let added = cap_eff(&env, &["--cap-add", "net_admin"]);
    assert_eq!(added, default | (1 << 12), "{added:x}");
    let privileged = cap_eff(&env, &["--privileged"]);
    assert!(privileged.count_ones() > 35, "{privileged:x}");
    let r = run(&env, &["--cap-add", "NOT_A_CAP", "--", "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("NOT_A_CAP"), "{r:?}");
}

#[test]
fn security_opts_and_init() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let r = run(
        &env,
        &[
            "--",
            "sh",
            "-c",
            "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status",
        ],
    );
    assert!(
        r.stdout.contains("Seccomp:\t2"),
        "default seccomp filter missing: {r:?}"
    );
    let r = run(
        &env,
        &[
            "--security-opt",
            "seccomp=unconfined",
            "--security-opt",
            "no-new-privileges",
            "--",
            "sh",
            "-c",
            "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status",
        ],
    );
    assert!(
        r.stdout.contains("Seccomp:\t0") && r.stdout.contains("NoNewPrivs:\t1"),
        "{r:?}"
    );
    let r = run(&env, &["--security-opt", "apparmor=weird", "--", "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("--security-opt"), "{r:?}");
    if std::path::Path::new(&rpod_init_path()).exists() {
        let r = run(
            &env,
            &[
                "--init",
                "--",
                "sh",
                "-c",
                "cat /proc/1/cmdline | tr '\\0' ' '",
            ],
        );
        assert_eq!(r.code, 0, "{r:?}");
        assert!(
            r.stdout.starts_with("/run/podman-init"),
            "PID 1 is not the init: {r:?}"
        );
    } else if std::env::var("CI").as_deref() == Ok("true") {
        panic!("catatonit missing at {}", rpod_init_path());
    }
}

fn rpod_init_path() -> String {
    "/usr/libexec/podman/catatonit".to_string()
}

#[test]
fn stdin_reaches_the_container_with_i() {
    if !have_container_tools() {
        return;
    }
    use std::io::Write;
    use std::process::Stdio;
    let env = Env::new();
    let rootfs = Env::rootfs_arg();
    let mut child = env
        .cmd()
        .args([
            "run",
            "--rm",
            "-i",
            "--rootfs",
            &rootfs,
            "sh",
            "-c",
            "read line; echo got:$line",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got:hello\n");
}
