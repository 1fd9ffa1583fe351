//! podman's databases through the rpod CLI: listed and inspected read-only
//! (`--db-backend bolt --db-path podman's bolt_state.db`), refused for every
//! change, and copied into rpod's own state by `rpod system import-podman`.
//! Every fixture of `shared/fixtures/podman-4.3.1` is copied to a temp dir
//! first and compared with what podman printed for it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rpod_e2e::{json, ok, wait_until, Env, Run};
use serde_json::Value;

fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/podman-4.3.1")
}

/// Every fixture directory (with its `bolt_state.db` and podman's JSON).
fn fixture_dirs() -> Vec<PathBuf> {
    let root = fixtures_root();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("podman fixtures missing at {}: {e}", root.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("bolt_state.db").is_file())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 4,
        "the 4 podman 4.3.1 fixtures in {}",
        root.display()
    );
    dirs
}

fn load(dir: &Path, file: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap()
}

/// Copies a fixture's database into the environment (writable copy).
fn copy_db(env: &Env, dir: &Path) -> PathBuf {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let db = env.path(&format!("podman-{name}.db"));
    std::fs::copy(dir.join("bolt_state.db"), &db).unwrap();
    let mut perms = std::fs::metadata(&db).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&db, perms).unwrap();
    db
}

/// rpod over a podman database: `--db-backend bolt --db-path DB ARGS`.
fn over(env: &Env, db: &Path, args: &[&str]) -> Run {
    let mut full = vec!["--db-backend", "bolt", "--db-path", db.to_str().unwrap()];
    full.extend_from_slice(args);
    env.rpod(&full)
}

fn labels(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Compares rpod's `ps -a --format json` entries with podman's: names, ids,
/// states, exit codes, exited flags, labels, pods, infra flags, commands.
fn assert_ps_matches(what: &str, rpod: &Value, podman: &Value, check_state: bool) {
    let rpod = rpod.as_array().unwrap();
    let podman = podman.as_array().unwrap();
    assert_eq!(rpod.len(), podman.len(), "{what}: container count");
    for p in podman {
        let id = p["Id"].as_str().unwrap();
        let r = rpod
            .iter()
            .find(|r| r["Id"] == id)
            .unwrap_or_else(|| panic!("{what}: container {id} missing from rpod ps"));
        let name = p["Names"][0].as_str().unwrap();
        assert_eq!(r["Names"], p["Names"], "{what}: names of {id}");
        if check_state {
            assert_eq!(r["State"], p["State"], "{what}: state of {name}");
            assert_eq!(r["Exited"], p["Exited"], "{what}: exited flag of {name}");
            assert_eq!(r["Pid"], p["Pid"], "{what}: pid of {name}");
        }
        assert_eq!(r["ExitCode"], p["ExitCode"], "{what}: exit code of {name}");
        assert_eq!(r["Pod"], p["Pod"], "{what}: pod of {name}");
        assert_eq!(r["IsInfra"], p["IsInfra"], "{what}: infra flag of {name}");
        let (rl, pl) = (labels(&r["Labels"]), labels(&p["Labels"]));
        if p["IsInfra"] == true {
            // podman adds the pause image's labels to the infra container's
            for (k, v) in &rl {
                assert_eq!(pl.get(k), Some(v), "{what}: label {k} of {name}");
            }
        } else {
            assert_eq!(rl, pl, "{what}: labels of {name}");
            assert_eq!(r["Command"], p["Command"], "{what}: command of {name}");
        }
        assert_eq!(
            r["Created"], p["Created"],
            "{what}: creation time of {name}"
        );
    }
}

#[test]
fn ps_and_inspect_show_what_podman_showed_for_every_fixture() {
    for dir in fixture_dirs() {
        let env = Env::new();
        let what = dir.file_name().unwrap().to_string_lossy().into_owned();
        let db = copy_db(&env, &dir);
        let before = std::fs::read(&db).unwrap();
        let podman_ps = load(&dir, "ps.json");
        let ps = json(&over(&env, &db, &["ps", "-a", "--format", "json"]));
        assert_ps_matches(&what, &ps, &podman_ps, true);

        // inspect by name and by short id
        for p in podman_ps.as_array().unwrap() {
            let id = p["Id"].as_str().unwrap();
            let name = p["Names"][0].as_str().unwrap();
            for key in [name, &id[..12]] {
                let doc = json(&over(&env, &db, &["inspect", key]));
                let doc = &doc[0];
                assert_eq!(doc["Id"], id, "{what}: inspect {key}");
                assert_eq!(doc["Name"], name, "{what}: inspect {key}");
                assert_eq!(
                    doc["State"]["Status"], p["State"],
                    "{what}: status of {key}"
                );
                assert_eq!(
                    doc["State"]["Running"],
                    p["State"] == "running",
                    "{what}: running flag of {key}"
                );
                assert_eq!(
                    doc["State"]["ExitCode"], p["ExitCode"],
                    "{what}: exit of {key}"
                );
                assert_eq!(doc["Pod"], p["Pod"], "{what}: pod of {key}");
                if p["IsInfra"] != true {
                    assert_eq!(
                        labels(&doc["Config"]["Labels"]),
                        labels(&p["Labels"]),
                        "{what}: labels of {key}"
                    );
                }
            }
        }
        // `ps` without -a shows the running ones only, as podman recorded them
        let running = json(&over(&env, &db, &["ps", "--format", "json"]));
        let want = podman_ps
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["State"] == "running")
            .count();
        assert_eq!(running.as_array().unwrap().len(), want, "{what}: ps");

        // volumes, as `podman volume ls` showed them
        let vols = json(&over(&env, &db, &["volume", "ls", "--format", "json"]));
        let want = load(&dir, "volumes.json");
        assert_eq!(
            vols.as_array().unwrap().len(),
            want.as_array().unwrap().len(),
            "{what}: volume count"
        );
        for w in want.as_array().unwrap() {
            let v = vols
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["Name"] == w["Name"])
                .unwrap_or_else(|| panic!("{what}: volume {} missing", w["Name"]));
            for k in ["Driver", "Mountpoint", "CreatedAt", "MountCount"] {
                assert_eq!(v[k], w[k], "{what}: {k} of volume {}", w["Name"]);
            }
            assert_eq!(labels(&v["Labels"]), labels(&w["Labels"]));
        }

        // nothing was written into podman's database
        assert_eq!(
            std::fs::read(&db).unwrap(),
            before,
            "{what}: database unchanged"
        );
    }
}

#[test]
fn changes_to_a_podman_database_are_refused_with_a_hint() {
    let dir = fixtures_root().join("running");
    let env = Env::new();
    let db = copy_db(&env, &dir);
    let before = std::fs::read(&db).unwrap();
    let rootfs = env.path("rootfs-unused");
    std::fs::create_dir_all(&rootfs).unwrap();
    let rootfs = rootfs.display().to_string();
    for args in [
        vec!["stop", "fx-run"],
        vec!["kill", "fx-run"],
        vec!["rm", "-f", "fx-run"],
        vec!["start", "fx-run"],
        vec!["container", "cleanup", "fx-run"],
        vec!["create", "--rootfs", &rootfs, "/bin/true"],
        vec!["run", "--rootfs", &rootfs, "/bin/true"],
    ] {
        let r = over(&env, &db, &args);
        assert_eq!(r.code, 125, "{args:?}: {r:?}");
        assert!(
            r.stderr.contains(&db.display().to_string())
                && r.stderr.contains("created by podman")
                && r.stderr.contains("read-only")
                && r.stderr.contains("rpod system import-podman"),
            "{args:?}: error names the database, why and what to do: {}",
            r.stderr
        );
    }
    // still running as podman recorded it, and not one byte changed
    let ps = json(&over(&env, &db, &["ps", "--format", "json"]));
    assert_eq!(ps[0]["State"], "running");
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

fn import(env: &Env, db: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["system", "import-podman", db.to_str().unwrap()];
    args.extend_from_slice(extra);
    env.rpod(&args)
}

#[test]
fn import_reports_what_is_not_carried_over() {
    let env = Env::new();
    // pod fixture: pods, an image-based infra, members joining its namespaces
    let pod_dir = fixtures_root().join("pod");
    let db = copy_db(&env, &pod_dir);
    let before = std::fs::read(&db).unwrap();
    let rep = json(&import(&env, &db, &["--format", "json"]));
    assert_eq!(rep["Source"], db.display().to_string());
    let pod_ps = load(&pod_dir, "pod-ps.json");
    let pods = rep["Pods"].as_array().unwrap();
    assert_eq!(pods.len(), pod_ps.as_array().unwrap().len());
    for p in pod_ps.as_array().unwrap() {
        let r = pods
            .iter()
            .find(|r| r["Id"] == p["Id"])
            .expect("pod reported");
        assert_eq!(r["Name"], p["Name"]);
        assert_eq!(r["Imported"], true, "{r}");
        let infra_note = r["NotCarriedOver"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("infra container"));
        assert_eq!(infra_note, p["InfraId"] != "", "pod {}: {r}", p["Name"]);
    }
    let ctrs = rep["Containers"].as_array().unwrap();
    assert_eq!(ctrs.len(), 4);
    for c in ctrs {
        assert_eq!(c["Imported"], true, "{c}");
        // /srv/rootfs (podman's --rootfs in the fixtures) does not exist here
        assert_eq!(c["Runnable"], false, "{c}");
        let notes: Vec<&str> = c["NotCarriedOver"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        let name = c["Name"].as_str().unwrap();
        if name.ends_with("-infra") {
            assert!(
                notes
                    .iter()
                    .any(|n| n.contains("image localhost/podman-pause")),
                "{c}"
            );
        } else {
            assert!(
                notes
                    .iter()
                    .any(|n| n.contains("rootfs /srv/rootfs does not exist")),
                "{c}"
            );
        }
        if name == "fx-p1" || name == "fx-p2" {
            assert!(
                notes.iter().any(|n| n.contains("namespaces of container")),
                "{c}"
            );
        }
    }
    // the source is untouched; rpod's ps shows every container with podman's ids and names
    assert_eq!(std::fs::read(&db).unwrap(), before);
    let ps = json(&env.rpod(&["ps", "-a", "--format", "json"]));
    assert_ps_matches("pod imported", &ps, &load(&pod_dir, "ps.json"), true);

    // importing again: everything is taken, nothing half-written, exit 125
    let r = import(&env, &db, &[]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(
        r.stdout.contains("already used in rpod's database"),
        "{r:?}"
    );
    assert!(r.stderr.contains("could not be imported"), "{r:?}");
    assert_eq!(
        json(&env.rpod(&["ps", "-a", "--format", "json"]))
            .as_array()
            .unwrap()
            .len(),
        4
    );

    // running: the exec session and the running process are reported; it becomes configured
    let run_dir = fixtures_root().join("running");
    let db = copy_db(&env, &run_dir);
    let r = import(&env, &db, &[]);
    ok(&r);
    assert!(r.stdout.contains("exec session 6c77904149e9"), "{r:?}");
    assert!(r.stdout.contains("was running in the source"), "{r:?}");
    assert!(r.stdout.contains("fx-run: imported (configured"), "{r:?}");
    let doc = json(&env.rpod(&["inspect", "fx-run"]));
    assert_eq!(doc[0]["State"]["Status"], "created");
    assert_eq!(doc[0]["State"]["Pid"], 0);
    assert_eq!(doc[0]["ExecIDs"], serde_json::json!([]));
    // as podman's own refresh left it
    let refreshed = load(&fixtures_root().join("running-refreshed"), "ps.json");
    assert_eq!(refreshed[0]["State"], "created");

    // bad input is named
    let r = import(&env, &env.path("nope.db"), &[]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("nope.db"), "{r:?}");
    let r = import(&env, &db, &["--rootfs-map", "relative=/x"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("--rootfs-map"), "{r:?}");
}

#[test]
fn imported_basic_fixture_lists_the_same_and_starts() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let dir = fixtures_root().join("basic");
    let db = copy_db(&env, &dir);
    let rootfs = Env::rootfs_arg();
    let map = format!("/srv/rootfs={rootfs}");
    let r = import(&env, &db, &["--rootfs-map", &map]);
    ok(&r);
    assert!(
        r.stdout
            .starts_with("Imported 4 of 4 containers, 0 of 0 pods, 1 of 1 volumes"),
        "{r:?}"
    );
    assert!(r.stdout.contains("network mode \"bridge\""), "{r:?}");
    assert!(!r.stdout.contains("cannot be started"), "{r:?}");

    // the same names, ids, states, exit codes and labels as podman showed
    let ps = json(&env.rpod(&["ps", "-a", "--format", "json"]));
    assert_ps_matches("basic imported", &ps, &load(&dir, "ps.json"), true);
    let x = json(&env.rpod(&["inspect", "fx-fail"]));
    assert_eq!(x[0]["Rootfs"], rootfs);

    // podman's containers now run under rpod
    let r = env.rpod(&["start", "fx-zero"]);
    ok(&r);
    let r = env.rpod(&["wait", "fx-zero"]);
    assert_eq!(ok(&r).stdout.trim(), "0");
    wait_until("fx-zero's output", 10, || {
        env.rpod(&["logs", "fx-zero"]).stdout == "fx-zero ran\n"
    });
    ok(&env.rpod(&["start", "fx-fail"]));
    assert_eq!(ok(&env.rpod(&["wait", "fx-fail"])).stdout.trim(), "42");
    // podman's env (A=1) is carried over
    let x = json(&env.rpod(&["inspect", "fx-fail"]));
    assert!(x[0]["Config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "A=1"));
    ok(&env.rpod(&["start", "fx-created"]));
    assert_eq!(ok(&env.rpod(&["wait", "fx-created"])).stdout.trim(), "0");
    let ps = json(&env.rpod(&["ps", "-a", "--format", "json"]));
    let st = |n: &str| {
        ps.as_array()
            .unwrap()
            .iter()
            .find(|p| p["Names"][0] == n)
            .map(|p| {
                (
                    p["State"].as_str().unwrap().to_string(),
                    p["ExitCode"].as_i64().unwrap(),
                )
            })
            .unwrap()
    };
    assert_eq!(st("fx-created"), ("exited".to_string(), 0));
    assert_eq!(st("fx-fail"), ("exited".to_string(), 42));
    // the named volume was imported and is mounted from rpod's copy
    let vols = json(&env.rpod(&["volume", "ls", "--format", "json"]));
    assert_eq!(vols[0]["Name"], "fxvol");
    assert_eq!(labels(&vols[0]["Labels"])["purpose"], "fixture");
    let data = PathBuf::from(vols[0]["Mountpoint"].as_str().unwrap());
    assert!(
        data.starts_with(env.path("")),
        "{data:?} is rpod's, in the test env"
    );
    std::fs::write(data.join("from-volume"), "x").unwrap();
    ok(&env.rpod(&["start", "fx-vol"]));
    assert_eq!(ok(&env.rpod(&["wait", "fx-vol"])).stdout.trim(), "0");
    wait_until("fx-vol's listing", 10, || {
        env.rpod(&["logs", "fx-vol"]).stdout == "from-volume\n"
    });

    // removal works and frees the name
    ok(&env.rpod(&["rm", "fx-zero"]));
    assert_eq!(env.rpod(&["inspect", "fx-zero"]).code, 125);
}

/// Runs the real podman with private directories (never podman's own store
/// or locks); `None` when podman is missing outside CI.
fn private_podman(env: &Env, args: &[&str]) -> Option<Run> {
    let conf = env.path("containers.conf");
    if !conf.exists() {
        std::fs::write(
            &conf,
            "[engine]\ncgroup_manager = \"cgroupfs\"\nruntime = \"runc\"\n\
             events_logger = \"file\"\nlock_type = \"file\"\n",
        )
        .unwrap();
    }
    let out = std::process::Command::new("podman")
        .args(["--root", env.path("podman-root").to_str().unwrap()])
        .args(["--runroot", env.path("podman-run").to_str().unwrap()])
        .args(["--tmpdir", env.path("podman-tmp").to_str().unwrap()])
        .args(args)
        .env("CONTAINERS_CONF", &conf)
        .output();
    match out {
        Ok(o) => Some(o.into()),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("podman is needed in CI: {e}")
        }
        Err(e) => {
            eprintln!("NOTICE: podman is missing ({e}); test skipped here");
            None
        }
    }
}

#[test]
fn import_copies_a_podman_volumes_data() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let env = Env::new();
    let Some(r) = private_podman(&env, &["volume", "create", "fx-data"]) else {
        return;
    };
    assert_eq!(r.code, 0, "{r:?}");
    let r = private_podman(&env, &["volume", "inspect", "fx-data"]).unwrap();
    let src = PathBuf::from(
        serde_json::from_str::<Value>(&r.stdout).expect("podman volume inspect")[0]["Mountpoint"]
            .as_str()
            .unwrap(),
    );
    assert!(
        src.starts_with(env.dir.path()),
        "podman used its own store: {src:?}"
    );
    std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
    std::fs::write(src.join("sub/deeper/file"), "volume data").unwrap();
    std::fs::set_permissions(
        src.join("sub/deeper/file"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    nix::unistd::chown(
        &src.join("sub/deeper/file"),
        Some(nix::unistd::Uid::from_raw(1234)),
        Some(nix::unistd::Gid::from_raw(5678)),
    )
    .unwrap();
    std::os::unix::fs::symlink("/etc/shadow", src.join("sub/link")).unwrap();
    let db = env.path("podman-root/libpod/bolt_state.db");
    let before = std::fs::read(&db).unwrap();

    let rep = json(&import(&env, &db, &["--format", "json"]));
    let v = &rep["Volumes"][0];
    assert_eq!(
        (v["Name"].as_str(), v["Imported"].as_bool()),
        (Some("fx-data"), Some(true)),
        "{rep}"
    );
    assert_eq!(v["NotCarriedOver"], serde_json::json!([]), "{rep}");
    let dst = PathBuf::from(
        json(&env.rpod(&["volume", "inspect", "fx-data"]))[0]["Mountpoint"]
            .as_str()
            .unwrap(),
    );
    assert_ne!(dst, src);
    let f = dst.join("sub/deeper/file");
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "volume data");
    let md = std::fs::metadata(&f).unwrap();
    assert_eq!(
        (md.mode() & 0o7777, md.uid(), md.gid()),
        (0o640, 1234, 5678)
    );
    assert_eq!(
        md.mtime(),
        std::fs::metadata(src.join("sub/deeper/file"))
            .unwrap()
            .mtime()
    );
    // a symlink stays a link (never followed to the host's file)
    assert_eq!(
        std::fs::read_link(dst.join("sub/link")).unwrap(),
        PathBuf::from("/etc/shadow")
    );
    // the source is only read
    assert_eq!(std::fs::read(&db).unwrap(), before);
    assert_eq!(
        std::fs::read_to_string(src.join("sub/deeper/file")).unwrap(),
        "volume data"
    );
    // nothing is left beside the copy
    let leftovers: Vec<_> = std::fs::read_dir(dst.parent().unwrap())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().contains("importing"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
