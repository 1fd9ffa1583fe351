//! Spec generation: golden comparison with podman's spec, options, validation.

use std::collections::BTreeMap;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use rpod_oci::spec::{self, BindMount, NetworkMode, RlimitOption, SeccompMode, Spec, SpecOptions};
use rpod_oci::OciError;

const ID: &str = "b7738790d2f01775176d109d883f75808143d506a9ebebc2787019e08f8e72a5";

/// A rootfs with fake executables (no busybox needed).
fn fake_rootfs(dir: &Path) -> PathBuf {
    let r = dir.join("rootfs");
    for d in ["bin", "usr/bin", "etc", "home/app"] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    for (f, mode) in [
        ("bin/true", 0o755),
        ("bin/sh", 0o755),
        ("usr/bin/data.txt", 0o644),
    ] {
        std::fs::write(r.join(f), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(r.join(f), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    symlink("/bin/true", r.join("usr/bin/alias")).unwrap();
    // An absolute symlink that would point at the host's /bin/sh outside the rootfs.
    symlink("/bin/nothing-here", r.join("usr/bin/dangling")).unwrap();
    std::fs::write(
        r.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1234:2345:app:/home/app:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        r.join("etc/group"),
        "root:x:0:\napp:x:2345:\nextra:x:77:app\n",
    )
    .unwrap();
    r
}

fn opts(rootfs: &Path, args: &[&str]) -> SpecOptions {
    SpecOptions {
        id: ID.into(),
        rootfs: rootfs.to_path_buf(),
        args: args.iter().map(|s| s.to_string()).collect(),
        cgroups_path: format!("/libpod_parent/libpod-{ID}"),
        ..SpecOptions::default()
    }
}

fn podman_golden() -> Spec {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/podman-oci-config.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn matches_podmans_generated_spec() {
    let t = tempfile::tempdir().unwrap();
    let rootfs = fake_rootfs(t.path());
    let golden = podman_golden();
    let mut o = opts(&rootfs, &["/bin/true"]);
    // podman's run had a bridge network: a netns path.
    o.network = NetworkMode::Path("/run/netns/netns-7f4d79d5-3a4f-0d0c-5aec-4092d6527f3e".into());
    let ours = spec::generate_for_bundle(&o, &t.path().join("bundle")).unwrap();

    assert_eq!(ours.oci_version, golden.oci_version);
    assert_eq!(ours.hostname, golden.hostname);
    assert_eq!(ours.process.user, golden.process.user);
    assert_eq!(ours.process.args, golden.process.args);
    assert_eq!(ours.process.env, golden.process.env);
    assert_eq!(ours.process.cwd, golden.process.cwd);
    assert_eq!(ours.process.terminal, golden.process.terminal);
    assert_eq!(ours.process.capabilities, golden.process.capabilities);
    assert_eq!(ours.process.rlimits, golden.process.rlimits);
    assert_eq!(
        ours.process.no_new_privileges,
        golden.process.no_new_privileges
    );
    assert_eq!(ours.linux.namespaces, golden.linux.namespaces);
    assert_eq!(ours.linux.masked_paths, golden.linux.masked_paths);
    assert_eq!(ours.linux.readonly_paths, golden.linux.readonly_paths);
    assert_eq!(ours.linux.sysctl, golden.linux.sysctl);
    assert_eq!(ours.linux.resources, golden.linux.resources);
    assert_eq!(ours.linux.cgroups_path, golden.linux.cgroups_path);
    let keys = |m: &BTreeMap<String, String>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&ours.annotations), keys(&golden.annotations));
    for k in [
        "io.container.manager",
        "io.kubernetes.cri-o.TTY",
        "io.podman.annotations.init",
        "io.podman.annotations.privileged",
        "org.opencontainers.image.stopSignal",
    ] {
        assert_eq!(ours.annotations[k], golden.annotations[k], "{k}");
    }

    // Mounts: same destinations in the same order with the same types and
    // options, except /dev/shm, which rpod mounts as a tmpfs directly where
    // podman bind-mounts a tmpfs it mounted itself.
    let dests = |s: &Spec| {
        s.mounts
            .iter()
            .map(|m| m.destination.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(dests(&ours), dests(&golden));
    for (a, b) in ours.mounts.iter().zip(&golden.mounts) {
        if a.destination == "/dev/shm" {
            assert_eq!(a.kind, "tmpfs");
            continue;
        }
        assert_eq!(
            (&a.kind, &a.options),
            (&b.kind, &b.options),
            "{}",
            a.destination
        );
        if a.kind != "bind" {
            assert_eq!(a.source, b.source);
        }
    }

    // Seccomp: the same filtered profile from the same seccomp.json.
    if Path::new("/usr/share/containers/seccomp.json").is_file() {
        assert_eq!(ours.linux.seccomp, golden.linux.seccomp);
    } else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true but no seccomp.json"
        );
        eprintln!("seccomp comparison NOT RUN: /usr/share/containers/seccomp.json missing");
    }
}

#[test]
fn privileged_gets_all_caps_no_seccomp_no_masks() {
    let t = tempfile::tempdir().unwrap();
    let rootfs = fake_rootfs(t.path());
    let mut o = opts(&rootfs, &["true"]);
    o.privileged = true;
    o.cap_drop = vec!["mknod".into()];
    let s = spec::generate(&o).unwrap();
    let caps = s.process.capabilities.unwrap();
    assert!(caps.bounding.contains(&"CAP_SYS_ADMIN".to_string()));
    assert!(!caps.bounding.contains(&"CAP_MKNOD".to_string()));
    assert_eq!(caps.bounding.len(), spec::host_caps().len() - 1);
    assert!(s.linux.seccomp.is_none());
    assert!(s.linux.masked_paths.is_empty() && s.linux.readonly_paths.is_empty());
    let sys = s.mounts.iter().find(|m| m.destination == "/sys").unwrap();
    assert!(sys.options.contains(&"rw".to_string()));
    assert_eq!(s.annotations["io.podman.annotations.privileged"], "TRUE");
}

#[test]
fn capabilities_add_and_drop_and_bad_names() {
    let t = tempfile::tempdir().unwrap();
    let rootfs = fake_rootfs(t.path());
    let mut o = opts(&rootfs, &["true"]);
    o.cap_add = vec!["net_admin".into(), "CAP_sys_ptrace".into()];
    o.cap_drop = vec!["Chown".into()];
    let caps = spec::generate(&o).unwrap().process.capabilities.unwrap();
    assert!(caps.effective.contains(&"CAP_NET_ADMIN".to_string()));
    assert!(caps.permitted.contains(&"CAP_SYS_PTRACE".to_string()));
    assert!(!caps.bounding.contains(&"CAP_CHOWN".to_string()));
    assert!(caps.inheritable.is_empty());
    o.cap_add = vec!["CAP_FLY".into()];
    match spec::generate(&o).unwrap_err() {
        OciError::InvalidSpec {
            field,
            value,
            expected,
        } => {
            assert_eq!((field.as_str(), value.as_str()), ("cap_add", "CAP_FLY"));
            assert!(expected.contains("capability"));
        }
        e => panic!("unexpected {e:?}"),
    }
    // With SYS_PTRACE added, the seccomp profile allows ptrace-gated syscalls.
    if Path::new("/usr/share/containers/seccomp.json").is_file() {
        o.cap_add = vec!["sys_ptrace".into()];
        let sc = spec::generate(&o).unwrap().linux.seccomp.unwrap();
        let kcmp = |action: &str| {
            sc.syscalls
                .iter()
                .any(|r| r.action == action && r.names.contains(&"kcmp".to_string()))
        };
        assert!(kcmp("SCMP_ACT_ALLOW") && !kcmp("SCMP_ACT_ERRNO"));
        o.cap_add.clear();
        let sc = spec::generate(&o).unwrap().linux.seccomp.unwrap();
        assert!(sc
            .syscalls
            .iter()
            .any(|r| r.action == "SCMP_ACT_ERRNO" && r.names.contains(&"kcmp".to_string())));
    }
}

#[test]
fn non_root_user_gets_only_added_caps_and_supplementary_groups() {
    let t = tempfile::tempdir().unwrap();
    let rootfs = fake_rootfs(t.path());
    let mut o = opts(&rootfs, &["true"]);
    o.user = "app".into();
    o.cap_add = vec!["net_raw".into()];
    let s = spec::generate(&o).unwrap();
    assert_eq!((s.process.user.uid, s.process.user.gid), (1234, 2345));
    assert_eq!(s.process.user.additional_gids, vec![77]);
    assert!(
        !s.process.env.iter().any(|e| e.starts_with("HOME=")),
        "runc sets HOME"
    );
    let caps = s.process.capabilities.unwrap();
    assert_eq!(caps.effective, vec!["CAP_NET_RAW".to_string()]);
    assert_eq!(caps.bounding.len(), 12);
    o.user = "99:5".into();
    let u = spec::generate(&o).unwrap().process.user;
    assert_eq!((u.uid, u.gid), (99, 5));
    o.user = "ghost".into();
    let e = spec::generate(&o).unwrap_err().to_string();
    assert!(e.contains("ghost") && e.contains("/etc/passwd"), "{e}");
}

#[test]
fn command_lookup_follows_path_and_symlinks_inside_the_rootfs() {
    let t = tempfile::tempdir().unwrap();
    let rootfs = fake_rootfs(t.path());
    for ok in ["true", "/bin/true", "alias", "/usr/bin/alias", "sh"] {
        spec::generate(&opts(&rootfs, &[ok])).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    let e = spec::generate(&opts(&rootfs, &["nope"])).unwrap_err();
    assert!(matches!(e, OciError::CommandNotFound { ref cmd, .. } if cmd == "nope"));
    assert_eq!(e.exit_code(), 127);
    // A dangling absolute symlink is resolved inside the rootfs: not found,
    // even though nothing else could be at that host path.
    let e = spec::generate(&opts(&rootfs, &["/usr/bin/dangling"])).unwrap_err();
    assert_eq!(e.exit_code(), 127);
    // Not executable: by path 126; by PATH search it is skipped (127), as runc does.
    let e = spec::generate(&opts(&rootfs, &["/usr/bin/data.txt"])).unwrap_err();
    assert!(matches!(e, OciError::CommandNotExecutable { .. }), "{e}");
    assert_eq!(e.exit_code(), 126);
    assert_eq!(
        spec::generate(&opts(&rootfs, &["data.txt"]))
            .unwrap_err()
            .exit_code(),
        127
    );
    // A directory is not executable.
    assert_eq!(
        spec::generate(&opts(&rootfs, &["/bin"]))
            .unwrap_err()
            .exit_code(),
        126
    );
    // A custom PATH is honoured.
    let mut o = opts(&rootfs, &["alias"]);
    o.env = vec!["PATH=/nowhere".into()];
    assert_eq!(spec::generate(&o).unwrap_err().exit_code(), 127);
}

#[test]
fn validation_errors_name_the_value_and_write_nothing() {
    let t = tempfile::tempdir().unwrap();
    let rootfs = fake_rootfs(t.path());
    let bundle = t.path().join("bundle");
    let check = |o: SpecOptions, field: &str, needle: &str| {
        let e = spec::write_bundle(&o, &bundle).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(needle), "{field}: {msg}");
        if let OciError::InvalidSpec { field: f, .. } = &e {
            assert_eq!(f, field);
        }
        assert!(!bundle.exists(), "bundle written despite {msg}");
    };
    let mut o = opts(&t.path().join("missing"), &["true"]);
    check(o.clone(), "rootfs", "missing");
    o.rootfs = rootfs.join("etc/passwd");
    check(o.clone(), "rootfs", "an existing directory");
    o = opts(&rootfs, &["true"]);
    o.mounts = vec![BindMount {
        source: t.path().join("no-such-src"),
        destination: "/data".into(),
        read_only: false,
    }];
    check(o.clone(), "volume", "no-such-src");
    o.mounts = vec![BindMount {
        source: rootfs.clone(),
        destination: "data".into(),
        read_only: false,
    }];
    check(o.clone(), "volume", "absolute destination");
    o = opts(&rootfs, &["true"]);
    o.cwd = "relative".into();
    check(o.clone(), "workdir", "relative");
    o = opts(&rootfs, &["true"]);
    o.env = vec!["NOEQUALS".into()];
    check(o.clone(), "env", "NOEQUALS");
    o = opts(&rootfs, &["true"]);
    o.rlimits = Some(vec![RlimitOption {
        name: "bogus".into(),
        soft: 1,
        hard: 1,
    }]);
    check(o.clone(), "ulimit", "bogus");
    o.rlimits = Some(vec![RlimitOption {
        name: "nofile".into(),
        soft: 10,
        hard: 5,
    }]);
    check(o.clone(), "ulimit", "soft limit");
    o = opts(&rootfs, &[]);
    check(o.clone(), "command", "command");
    o = opts(&rootfs, &["true"]);
    o.init = Some(t.path().join("no-catatonit"));
    check(o, "init_path", "no-catatonit");
    assert!(BindMount::parse("/a:/b:ro").unwrap().read_only);
    assert!(BindMount::parse("relative:/b").is_err());
    assert!(BindMount::parse("/a:/b:zz").is_err());
}

#[test]
fn rlimits_are_clamped_to_the_callers_hard_limit() {
    let t = tempfile::tempdir().unwrap();
    let rootfs = fake_rootfs(t.path());
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    let mut o = opts(&rootfs, &["true"]);
    o.rlimits = Some(vec![
        RlimitOption {
            name: "NOFILE".into(),
            soft: u64::MAX - 1,
            hard: u64::MAX - 1,
        },
        RlimitOption {
            name: "RLIMIT_core".into(),
            soft: 0,
            hard: 0,
        },
    ]);
    let r = spec::generate(&o).unwrap().process.rlimits;
    assert_eq!(r[0].kind, "RLIMIT_NOFILE");
    assert_eq!((r[0].soft, r[0].hard), (hard, hard));
    assert_eq!((r[1].kind.as_str(), r[1].hard), ("RLIMIT_CORE", 0));
}

#[test]
fn init_network_readonly_and_seccomp_options() {
    let t = tempfile::tempdir().unwrap();
    let rootfs = fake_rootfs(t.path());
    let init = t.path().join("catatonit");
    std::fs::write(&init, "x").unwrap();
    let mut o = opts(&rootfs, &["true", "arg"]);
    o.init = Some(init.clone());
    o.network = NetworkMode::Host;
    o.read_only = true;
    o.seccomp = SeccompMode::Unconfined;
    o.terminal = true;
    let s = spec::generate(&o).unwrap();
    assert_eq!(
        s.process.args,
        vec!["/run/podman-init", "--", "true", "arg"]
    );
    let m = s
        .mounts
        .iter()
        .find(|m| m.destination == "/run/podman-init")
        .unwrap();
    assert_eq!(m.source, init.to_string_lossy());
    assert!(m.options.contains(&"ro".to_string()));
    assert!(!s.linux.namespaces.iter().any(|n| n.kind == "network"));
    assert!(s.linux.sysctl.is_empty());
    assert_eq!(
        s.mounts
            .iter()
            .find(|m| m.destination == "/sys")
            .unwrap()
            .kind,
        "bind"
    );
    assert!(s.mounts.iter().any(|m| m.destination == "/etc/resolv.conf"));
    assert!(s.root.readonly);
    assert!(s
        .mounts
        .iter()
        .any(|m| m.destination == "/tmp" && m.kind == "tmpfs"));
    assert!(s.linux.seccomp.is_none());
    assert!(s.process.terminal);
    assert_eq!(s.annotations["io.podman.annotations.init"], "TRUE");

    // network none: a fresh netns, no resolv.conf.
    let s = spec::generate(&opts(&rootfs, &["true"])).unwrap();
    assert!(s
        .linux
        .namespaces
        .iter()
        .any(|n| n.kind == "network" && n.path.is_none()));
    assert!(!s.mounts.iter().any(|m| m.destination == "/etc/resolv.conf"));

    // A custom profile in plain OCI form, and a broken one.
    let prof = t.path().join("p.json");
    std::fs::write(
        &prof,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
        "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
    )
    .unwrap();
    let mut o = opts(&rootfs, &["true"]);
    o.seccomp = SeccompMode::Path(prof.clone());
    let sc = spec::generate(&o).unwrap().linux.seccomp.unwrap();
    assert_eq!(sc.default_action, "SCMP_ACT_ALLOW");
    assert_eq!(sc.syscalls[0].errno_ret, Some(1));
    std::fs::write(&prof, "{not json").unwrap();
    let e = spec::generate(&o).unwrap_err();
    assert!(
        matches!(
            e,
            OciError::BadFile {
                what: "seccomp profile",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn hooks_are_selected_by_their_when_clause() {
    let t = tempfile::tempdir().unwrap();
    let rootfs = fake_rootfs(t.path());
    let (d1, d2) = (t.path().join("hooks1"), t.path().join("hooks2"));
    std::fs::create_dir_all(&d1).unwrap();
    std::fs::create_dir_all(&d2).unwrap();
    let hook = |dir: &Path, name: &str, path: &str, when: &str, stages: &str| {
        std::fs::write(
            dir.join(name),
            format!(r#"{{"version":"1.0.0","hook":{{"path":"{path}","args":["h","x"]}},"when":{when},"stages":{stages}}}"#),
        )
        .unwrap();
    };
    hook(
        &d1,
        "a.json",
        "/always",
        r#"{"always":true}"#,
        r#"["prestart","poststop"]"#,
    );
    hook(
        &d1,
        "b.json",
        "/by-annotation",
        r#"{"annotations":{"^com\\.example\\.gpu$":"^(yes|on)$"}}"#,
        r#"["createRuntime"]"#,
    );
    hook(
        &d1,
        "c.json",
        "/by-command",
        r#"{"commands":[".*/true$"]}"#,
        r#"["poststart"]"#,
    );
    hook(
        &d1,
        "d.json",
        "/never",
        r#"{"commands":["^/nope$"]}"#,
        r#"["prestart"]"#,
    );
    hook(
        &d1,
        "e.json",
        "/overridden",
        r#"{"always":true}"#,
        r#"["prestart"]"#,
    );
    hook(
        &d2,
        "e.json",
        "/override",
        r#"{"always":true}"#,
        r#"["startContainer"]"#,
    );
    std::fs::write(d1.join("ignored.txt"), "not a hook").unwrap();
    let mut o = opts(&rootfs, &["/bin/true"]);
    o.hooks_dirs = vec![d1.clone(), d2.clone(), t.path().join("missing-dir")];
    let h = spec::generate(&o).unwrap().hooks;
    let paths = |v: &[spec::Hook]| v.iter().map(|h| h.path.clone()).collect::<Vec<_>>();
    assert_eq!(paths(&h.prestart), vec!["/always"]);
    assert_eq!(paths(&h.poststop), vec!["/always"]);
    assert_eq!(paths(&h.poststart), vec!["/by-command"]);
    assert_eq!(paths(&h.start_container), vec!["/override"]);
    assert!(h.create_runtime.is_empty());
    assert_eq!(h.prestart[0].args, vec!["h", "x"]);
    o.annotations.insert("com.example.gpu".into(), "on".into());
    let h = spec::generate(&o).unwrap().hooks;
    assert_eq!(paths(&h.create_runtime), vec!["/by-annotation"]);
    // A malformed hook file is an error naming the file.
    hook(
        &d2,
        "z.json",
        "relative",
        r#"{"always":true}"#,
        r#"["prestart"]"#,
    );
    let e = spec::generate(&o).unwrap_err().to_string();
    assert!(e.contains("z.json") && e.contains("not absolute"), "{e}");
    hook(&d2, "z.json", "/x", r#"{"always":true}"#, r#"["sometime"]"#);
    let e = spec::generate(&o).unwrap_err().to_string();
    assert!(e.contains("z.json") && e.contains("sometime"), "{e}");
}

#[test]
fn write_bundle_writes_config_and_etc_files() {
    let t = tempfile::tempdir().unwrap();
    let rootfs = fake_rootfs(t.path());
    let bundle = t.path().join("bundle");
    let run = t.path().join("run");
    let mut o = opts(&rootfs, &["true"]);
    o.hostname = "web".into();
    o.env = vec!["TERM=dumb".into(), "A=b".into()];
    o.run_dir = Some(run.clone());
    o.hosts_entries = vec!["10.0.0.5 db".into()];
    o.network = NetworkMode::Path("/run/netns/x".into());
    o.resolv_conf = Some("nameserver 10.0.0.1\n".into());
    let s = spec::write_bundle(&o, &bundle).unwrap();
    let back: Spec =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(back, s);
    assert_eq!(
        s.process.env,
        vec![
            format!("PATH={}", spec::DEFAULT_PATH),
            "TERM=dumb".into(),
            "HOSTNAME=web".into(),
            "A=b".into()
        ]
    );
    assert_eq!(
        std::fs::read_to_string(run.join("hostname")).unwrap(),
        "web\n"
    );
    let hosts = std::fs::read_to_string(run.join("hosts")).unwrap();
    assert!(hosts.contains("localhost") && hosts.contains("10.0.0.5 db") && hosts.contains("web"));
    assert_eq!(
        std::fs::read_to_string(run.join("resolv.conf")).unwrap(),
        "nameserver 10.0.0.1\n"
    );
    assert!(run.join(".containerenv").exists());
    let hm = s
        .mounts
        .iter()
        .find(|m| m.destination == "/etc/hosts")
        .unwrap();
    assert_eq!(hm.source, run.join("hosts").to_string_lossy());
}

#[test]
fn cgroups_path_forms() {
    use rpod_config::CgroupManager::{Cgroupfs, Systemd};
    assert_eq!(spec::cgroups_path(Cgroupfs, "/rpod", "abc"), "/rpod/abc");
    assert_eq!(spec::cgroups_path(Cgroupfs, "", "abc"), "/rpod/abc");
    assert_eq!(
        spec::cgroups_path(Cgroupfs, "rpod-test/", "abc"),
        "/rpod-test/abc"
    );
    assert_eq!(
        spec::cgroups_path(Systemd, "machine.slice", "abc"),
        "machine.slice:rpod:abc"
    );
    assert_eq!(
        spec::cgroups_path(Systemd, "", "abc"),
        "machine.slice:rpod:abc"
    );
}
