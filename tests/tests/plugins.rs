//! Backends loaded from shared libraries (`plugin_dirs`), with the example
//! plugin of `crates/plugin-example` (built by `cargo build --workspace`,
//! as `cargo xtask ci` does, in the same build as the rpod binary).

use std::path::PathBuf;

use rpod_e2e::{json, ok, rpod_bin, Env};

/// The example plugin's library, next to the rpod binary under test.
fn example_plugin() -> PathBuf {
    if let Some(p) = std::env::var_os("RPOD_PLUGIN_EXAMPLE") {
        return PathBuf::from(p);
    }
    let lib = rpod_bin()
        .parent()
        .expect("target/<profile>")
        .join("librpod_plugin_example.so");
    assert!(
        lib.exists(),
        "{} not found: build it with the rpod binary (cargo build --workspace), as `cargo xtask ci` does",
        lib.display()
    );
    lib
}

/// Rewrites the environment's config with `extra` settings (replacing keys it sets).
fn configure(env: &Env, extra: &[(&str, String)]) {
    let text = std::fs::read_to_string(&env.config).unwrap();
    let mut out: Vec<String> = text
        .lines()
        .filter(|l| !extra.iter().any(|(k, _)| l.starts_with(&format!("{k} ="))))
        .map(String::from)
        .collect();
    for (k, v) in extra {
        out.push(format!("{k} = {v}"));
    }
    std::fs::write(&env.config, out.join("\n") + "\n").unwrap();
}

#[test]
fn a_container_runs_on_state_and_lock_backends_from_a_plugin() {
    let Some(env) = Env::for_containers() else {
        return;
    };
    let plugins = env.path("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(example_plugin(), plugins.join("example.so")).unwrap();
    let db = env.path("plugin-state");
    let locks = env.path("plugin-locks");
    configure(
        &env,
        &[
            ("plugin_dirs", format!("[{:?}]", plugins)),
            ("database_backend", "\"example-sled\"".into()),
            ("lock_type", "\"example-file\"".into()),
            ("db_path", format!("{db:?}")),
            ("lock_path", format!("{locks:?}")),
        ],
    );

    let list = json(&env.rpod(&["system", "backends", "--format", "json"]));
    let plugin_backends: Vec<(String, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["origin"].as_str().unwrap().contains("example.so"))
        .map(|b| {
            (
                b["kind"].as_str().unwrap().to_string(),
                b["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        plugin_backends,
        [
            ("lock.v1".to_string(), "example-file".to_string()),
            ("state.v1".to_string(), "example-sled".to_string())
        ],
        "{list}"
    );

    let rootfs = Env::rootfs_arg();
    let r = env.rpod(&[
        "run",
        "--rm",
        "--rootfs",
        &rootfs,
        "/bin/echo",
        "hello from a plugin",
    ]);
    assert_eq!(ok(&r).stdout, "hello from a plugin\n");
    ok(&env.rpod(&["create", "--name", "kept", "--rootfs", &rootfs, "/bin/true"]));
    // a later process finds it: the state is the plugin's sled database
    let ps = json(&env.rpod(&["ps", "-a", "--format", "json"]));
    let names: Vec<&str> = ps
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Names"][0].as_str().unwrap())
        .collect();
    assert_eq!(names, ["kept"]);
    assert!(
        db.join("conf").is_file() && db.join("db").is_file(),
        "no sled database at {db:?}"
    );
    assert!(!env.path("root/static/bolt_state.db").exists());
    assert!(
        std::fs::read_dir(&locks).unwrap().next().is_some(),
        "no lock files in {locks:?}"
    );
    ok(&env.rpod(&["rm", "kept"]));
    assert!(json(&env.rpod(&["ps", "-a", "--format", "json"]))
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn a_broken_plugin_is_refused_with_its_path_and_exit_125() {
    let env = Env::new();
    let plugins = env.path("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::write(plugins.join("broken.so"), b"not a shared library").unwrap();
    configure(&env, &[("plugin_dirs", format!("[{:?}]", plugins))]);
    let r = env.rpod(&["ps", "-a"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(
        r.stderr.contains("broken.so") && r.stderr.contains("cannot load"),
        "{r:?}"
    );
    assert!(r.stderr.contains("plugin_dirs"), "{r:?}");
    // nothing was created on the way
    assert!(!env.path("root/static/bolt_state.db").exists());
}

#[test]
fn a_missing_plugin_directory_is_skipped() {
    let env = Env::new();
    configure(
        &env,
        &[("plugin_dirs", format!("[{:?}]", env.path("no-such-dir")))],
    );
    ok(&env.rpod(&["ps", "-a"]));
}
