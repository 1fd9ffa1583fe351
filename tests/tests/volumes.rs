//! Named and anonymous volumes end to end: `rpod volume …` and `run -v`.

use std::io::Write;
use std::process::Stdio;

use rpod_e2e::{json, ok, Env};
use serde_json::Value;

fn volume_names(env: &Env) -> Vec<String> {
    let r = env.rpod(&["volume", "ls", "-q"]);
    ok(&r);
    r.stdout.lines().map(String::from).collect()
}

fn events(env: &Env) -> Vec<Value> {
    std::fs::read_to_string(env.path("events.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn volume_events(env: &Env, status: &str) -> Vec<String> {
    events(env)
        .into_iter()
        .filter(|e| e["Type"] == "volume" && e["Status"] == status)
        .map(|e| e["Name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn named_volume_create_inspect_ls_and_share_data() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let rootfs = Env::rootfs_arg();
    let r = env.rpod(&[
        "volume", "create", "--label", "app=web", "--label", "tier", "--opt", "uid=1000", "data",
    ]);
    assert_eq!(ok(&r).stdout, "data\n");
    let v = json(&env.rpod(&["volume", "inspect", "data"]));
    let d = &v[0];
    assert_eq!(d["Name"], "data");
    assert_eq!(d["Driver"], "local");
    assert_eq!(d["Scope"], "local");
    assert_eq!(d["Labels"]["app"], "web");
    assert_eq!(d["Labels"]["tier"], "");
    assert_eq!(d["Options"]["uid"], "1000");
    assert_eq!(d["UID"], 1000);
    assert_eq!(d["MountCount"], 0);
    assert_eq!(d["NeedsCopyUp"], true);
    assert!(d["CreatedAt"].as_str().unwrap().starts_with("20"), "{d}");
    let data = env.path("root/volumes/data/_data");
    assert_eq!(d["Mountpoint"], data.display().to_string());
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&data).unwrap().uid(), 1000);
    // a name that is taken
    let r = env.rpod(&["volume", "create", "data"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("data"), "{r:?}");
    // generated name
    let r = env.rpod(&["volume", "create"]);
    let gen = ok(&r).stdout.trim().to_string();
    assert_eq!(gen.len(), 64, "{r:?}");

    // ls and its filters
    let r = env.rpod(&["volume", "ls"]);
    assert!(ok(&r).stdout.starts_with("DRIVER"), "{r:?}");
    assert!(r.stdout.contains("data") && r.stdout.contains(&gen));
    let r = env.rpod(&["volume", "ls", "-q", "--filter", "label=app=web"]);
    assert_eq!(ok(&r).stdout, "data\n");
    let r = env.rpod(&["volume", "ls", "-q", "--filter", "label=tier"]);
    assert_eq!(ok(&r).stdout, "data\n");
    let r = env.rpod(&["volume", "ls", "-q", "--filter", "name=dat"]);
    assert_eq!(ok(&r).stdout, "data\n");
    let r = env.rpod(&["volume", "ls", "-q", "--filter", "driver=local"]);
    assert_eq!(ok(&r).stdout.lines().count(), 2);
    let r = env.rpod(&["volume", "ls", "-q", "--filter", "driver=nfs"]);
    assert_eq!(ok(&r).stdout, "");
    let r = env.rpod(&["volume", "ls", "--filter", "bogus=1"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("bogus"), "{r:?}");
    let v = json(&env.rpod(&["volume", "ls", "--format", "json"]));
    assert_eq!(v.as_array().unwrap().len(), 2);

    // a container writes, another reads it read-only
    let r = env.rpod(&[
        "run",
        "--name",
        "writer",
        "-v",
        "data:/data",
        "--rootfs",
        &rootfs,
        "sh",
        "-c",
        "echo hello > /data/f",
    ]);
    ok(&r);
    assert_eq!(std::fs::read_to_string(data.join("f")).unwrap(), "hello\n");
    let r = env.rpod(&[
        "run",
        "--name",
        "reader",
        "-v",
        "data:/in:ro",
        "--rootfs",
        &rootfs,
        "sh",
        "-c",
        "cat /in/f; echo x > /in/g || echo readonly",
    ]);
    assert_eq!(ok(&r).stdout, "hello\nreadonly\n", "{r:?}");
    let d = &json(&env.rpod(&["volume", "inspect", "data"]))[0];
    let users: Vec<&str> = d["Containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(users.len(), 2, "{d}");
    assert_eq!(d["NeedsCopyUp"], false);
    // both exited: unmounted once conmon's cleanup ran
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let d = &json(&env.rpod(&["volume", "inspect", "data"]))[0];
        if d["MountCount"] == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{d}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // a running user counts as a mount until it stops
    let r = env.rpod(&[
        "run",
        "-d",
        "--name",
        "long",
        "-v",
        "data:/data",
        "--rootfs",
        &rootfs,
        "sleep",
        "100",
    ]);
    ok(&r);
    let d = &json(&env.rpod(&["volume", "inspect", "data"]))[0];
    assert_eq!(d["MountCount"], 1, "{d}");
    ok(&env.rpod(&["stop", "-t", "0", "long"]));
    let d = &json(&env.rpod(&["volume", "inspect", "data"]))[0];
    assert_eq!(d["MountCount"], 0, "{d}");

    // in use: refused; -f removes the users first
    let r = env.rpod(&["volume", "rm", "data"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("in use"), "{r:?}");
    assert!(data.join("f").exists());
    let r = env.rpod(&["volume", "rm", "-f", "data"]);
    assert_eq!(ok(&r).stdout, "data\n");
    assert!(!env.path("root/volumes/data").exists());
    let r = env.rpod(&["ps", "-a", "-q"]);
    assert_eq!(ok(&r).stdout, "", "users removed: {r:?}");
    assert_eq!(volume_names(&env), vec![gen.clone()]);
    let r = env.rpod(&["volume", "inspect", "data"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("data"), "{r:?}");

    assert_eq!(volume_events(&env, "create"), vec!["data".to_string(), gen]);
    assert_eq!(volume_events(&env, "remove"), vec!["data".to_string()]);
}

#[test]
fn run_creates_missing_volumes_and_anonymous_ones_go_with_the_container() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let rootfs = Env::rootfs_arg();
    // a missing named volume is created on the fly
    let r = env.rpod(&[
        "run",
        "--name",
        "c1",
        "-v",
        "auto:/a",
        "-v",
        "/scratch",
        "--rootfs",
        &rootfs,
        "sh",
        "-c",
        "echo 1 > /a/x; echo 2 > /scratch/y",
    ]);
    ok(&r);
    let names = volume_names(&env);
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"auto".to_string()));
    let anon = names.iter().find(|n| *n != "auto").unwrap().clone();
    assert_eq!(anon.len(), 64);
    let d = &json(&env.rpod(&["volume", "inspect", &anon]))[0];
    assert_eq!(d["Anonymous"], true);
    assert_eq!(
        std::fs::read_to_string(env.path(&format!("root/volumes/{anon}/_data/y"))).unwrap(),
        "2\n"
    );
    let d = &json(&env.rpod(&["volume", "inspect", "auto"]))[0];
    assert_eq!(d["Anonymous"], false);
    // the container is recorded as the volumes' user
    let d = &json(&env.rpod(&["volume", "inspect", &anon]))[0];
    let id = ok(&env.rpod(&["ps", "-a", "-q", "--no-trunc"]))
        .stdout
        .trim()
        .to_string();
    assert_eq!(d["Containers"][0], id.as_str());

    // rm without -v keeps the anonymous volume; a second container, rm -v
    let r = env.rpod(&[
        "create", "--name", "c2", "-v", "/other", "--rootfs", &rootfs, "true",
    ]);
    ok(&r);
    ok(&env.rpod(&["rm", "c1"]));
    assert_eq!(volume_names(&env).len(), 3);
    ok(&env.rpod(&["rm", "-v", "c2"]));
    let names = volume_names(&env);
    assert_eq!(
        names.len(),
        2,
        "the anonymous volume of c2 is gone: {names:?}"
    );
    assert!(names.contains(&anon) && names.contains(&"auto".to_string()));

    // run --rm removes its anonymous volume but never a named one
    let r = env.rpod(&[
        "run", "--rm", "-v", "/tmpvol", "-v", "auto:/a", "--rootfs", &rootfs, "cat", "/a/x",
    ]);
    assert_eq!(ok(&r).stdout, "1\n");
    let names = volume_names(&env);
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(
        std::fs::read_dir(env.path("root/volumes")).unwrap().count(),
        2
    );
    // detached --rm: conmon's cleanup removes the container and its volume
    let r = env.rpod(&[
        "run", "-d", "--rm", "-v", "/tmpvol2", "--rootfs", &rootfs, "true",
    ]);
    ok(&r);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while volume_names(&env).len() != 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "anonymous volume of a detached --rm container not removed"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn bad_volume_names_and_specs_are_refused_without_leftovers() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let rootfs = Env::rootfs_arg();
    let long = "a".repeat(300);
    for bad in ["../x", "a/b", ".", "..", "_x", long.as_str()] {
        let r = env.rpod(&["volume", "create", bad]);
        assert_eq!(r.code, 125, "{bad}: {r:?}");
        assert!(r.stderr.contains("invalid volume name"), "{bad}: {r:?}");
        let spec = format!("{bad}:/d");
        let r = env.rpod(&["run", "-v", &spec, "--rootfs", &rootfs, "true"]);
        assert_eq!(r.code, 125, "{bad}: {r:?}");
    }
    for bad in ["rel", "v:rel", "v:/d:bogus"] {
        let r = env.rpod(&["run", "-v", bad, "--rootfs", &rootfs, "true"]);
        assert_eq!(r.code, 125, "{bad}: {r:?}");
        assert!(r.stderr.contains(bad), "{bad}: {r:?}");
    }
    let r = env.rpod(&["volume", "create", "--opt", "device=/dev/sda", "v"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("device=/dev/sda"), "{r:?}");
    // a container that fails validation leaves no volume it would have created
    let r = env.rpod(&[
        "run",
        "-v",
        "fresh:/f",
        "-v",
        "/anon",
        "--rootfs",
        &rootfs,
        "no-such-command",
    ]);
    assert_eq!(r.code, 127, "{r:?}");
    assert!(volume_names(&env).is_empty());
    let r = env.rpod(&["ps", "-a", "-q"]);
    assert_eq!(ok(&r).stdout, "");
    let left: Vec<_> = std::fs::read_dir(env.path("root/volumes"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    // nothing was created outside the volume path either
    assert!(!env.path("root/x").exists() && !env.path("x").exists());
}

#[test]
fn prune_removes_only_unused_volumes() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let rootfs = Env::rootfs_arg();
    ok(&env.rpod(&["volume", "create", "unused1"]));
    ok(&env.rpod(&["volume", "create", "unused2"]));
    ok(&env.rpod(&[
        "create", "--name", "user", "-v", "kept:/k", "--rootfs", &rootfs, "true",
    ]));
    // without -f it asks; "n" keeps everything
    let mut child = env
        .cmd()
        .args(["volume", "prune"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"n\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Are you sure"));
    assert_eq!(volume_names(&env).len(), 3);
    let r = env.rpod(&["volume", "prune", "-f"]);
    let mut pruned: Vec<&str> = ok(&r).stdout.lines().collect();
    pruned.sort();
    assert_eq!(pruned, vec!["unused1", "unused2"]);
    assert_eq!(volume_names(&env), vec!["kept".to_string()]);
    let mut ev = volume_events(&env, "prune");
    ev.sort();
    assert_eq!(ev, vec!["unused1".to_string(), "unused2".to_string()]);
    // info counts volumes and containers
    let v = json(&env.rpod(&["info", "--format", "json"]));
    assert_eq!(v["store"]["volumeCount"], 1, "{}", v["store"]);
    assert_eq!(v["store"]["containerStore"]["number"], 1);
    assert_eq!(v["store"]["containerStore"]["stopped"], 1);
    assert_eq!(v["store"]["containerStore"]["running"], 0);
}
