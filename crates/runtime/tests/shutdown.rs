//! `Runtime::shutdown` with real containers: force stops running ones, and
//! every later call fails with "runtime stopped".

use std::path::Path;

use rpod_config::{ConfigLoader, Options, UserDirs};
use rpod_runtime::volumes::VolumeCreateOptions;
use rpod_runtime::{CreateOptions, Runtime, RuntimeError};

fn have_container_tools() -> bool {
    let runc = ["/usr/sbin/runc", "/usr/bin/runc", "/usr/local/bin/runc"]
        .iter()
        .any(|p| Path::new(p).exists());
    let root = nix::unistd::geteuid().is_root();
    let ok =
        runc && root && Path::new("/usr/bin/conmon").exists() && Path::new("/bin/busybox").exists();
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "shutdown test needs runc, conmon, busybox-static and root in CI"
        );
        eprintln!("NOTICE: shutdown test cannot run here (needs runc, conmon, busybox and root)");
    }
    ok
}

fn runtime(tmp: &Path, tag: &str) -> Runtime {
    // keep the lock backend linked
    std::hint::black_box(rpod_lock_file::open_factory as *const ());
    let cfg = ConfigLoader {
        system_file: "/nonexistent".into(),
        override_file: "/nonexistent".into(),
        user: UserDirs::current(),
        config_file: None,
        options: Options::new()
            .root(tmp.join("root"))
            .runroot(tmp.join("run"))
            .database_backend("memory")
            .lock_type("file")
            .lock_path(&tmp.join("locks").display().to_string())
            .events_logger("none")
            .cgroup_parent(&format!("/rpod-rt-{tag}")),
    }
    .load()
    .unwrap();
    Runtime::new(cfg, vec!["/bin/true".into()]).unwrap()
}

fn is_stopped<T: std::fmt::Debug>(r: Result<T, RuntimeError>) -> bool {
    match r {
        Err(e @ RuntimeError::Stopped) => e.to_string().contains("runtime stopped"),
        _ => false,
    }
}

#[test]
fn forced_shutdown_stops_running_containers_and_ends_the_runtime() {
    if !have_container_tools() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = tmp.path().join("rootfs");
    rpod_oci::rootfs::build_busybox_rootfs(&rootfs, None).unwrap();
    let tag = format!("shutdown-{}", std::process::id());
    let rt = runtime(tmp.path(), &tag);
    let mut ids = Vec::new();
    for name in ["one", "two"] {
        let c = rt
            .create_container(&CreateOptions {
                name: Some(name.into()),
                rootfs: rootfs.clone(),
                command: vec!["sleep".into(), "1000".into()],
                stop_timeout: Some(2),
                ..CreateOptions::default()
            })
            .unwrap();
        rt.lock_container(&c.id).unwrap().start().unwrap();
        ids.push(c.id);
    }
    let pids: Vec<i32> = ids
        .iter()
        .map(|id| rt.lock_container(id).unwrap().state().pid)
        .collect();
    assert!(pids.iter().all(|&p| rpod_oci::exit::process_alive(p)));

    rt.shutdown(true).unwrap();
    for &p in &pids {
        assert!(!rpod_oci::exit::process_alive(p), "pid {p} still alive");
    }
    let st = rt.state().container_state(&ids[0]).unwrap();
    assert_eq!(st.state, rpod_state::ContainerStatus::Exited);
    assert!(is_stopped(rt.lock_container(&ids[0])));
    assert!(is_stopped(rt.list_containers()));
    assert!(is_stopped(rt.create_container(&CreateOptions {
        rootfs: rootfs.clone(),
        command: vec!["true".into()],
        ..CreateOptions::default()
    })));
    assert!(is_stopped(
        rt.create_volume(&VolumeCreateOptions::default())
    ));
    assert!(is_stopped(rt.shutdown(false)));
    let _ = std::fs::remove_dir(format!("/sys/fs/cgroup/memory/rpod-rt-{tag}"));
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let _ = std::fs::remove_dir(h.path().join(format!("rpod-rt-{tag}")));
    }
}

#[test]
fn shutdown_without_force_stops_the_runtime() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime(tmp.path(), &format!("plain-{}", std::process::id()));
    rt.shutdown(false).unwrap();
    assert!(is_stopped(rt.list_volumes()));
    assert!(is_stopped(rt.lookup_container("x")));
}
