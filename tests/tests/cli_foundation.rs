//! The CLI skeleton: config errors, `info`, `system backends`.

use rpod_e2e::{rpod_raw, Env};

#[test]
fn missing_config_file_exits_125_with_cannot_stat() {
    let r = rpod_raw(&["--config", "/nonexistent/rpod.conf", "info"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("cannot stat"), "{}", r.stderr);
    assert!(r.stderr.contains("/nonexistent/rpod.conf"), "{}", r.stderr);
    assert_eq!(r.stderr.trim().lines().count(), 1, "one line: {}", r.stderr);
}

#[test]
fn bad_config_value_exits_125_naming_key() {
    let env = Env::new();
    let bad = env.path("bad.conf");
    std::fs::write(&bad, "num_locks = 0\n").unwrap();
    let r = rpod_raw(&["--config", bad.to_str().unwrap(), "info"]);
    assert_eq!(r.code, 125);
    assert!(
        r.stderr.contains("num_locks") && r.stderr.contains("bad.conf"),
        "{}",
        r.stderr
    );
}

#[test]
fn unknown_flag_exits_125() {
    let r = rpod_raw(&["--no-such-flag", "info"]);
    assert_eq!(r.code, 125, "{r:?}");
}

#[test]
fn bad_log_level_exits_125() {
    let r = rpod_raw(&["--log-level", "loud", "system", "backends"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("--log-level"), "{}", r.stderr);
}

#[test]
fn unknown_backend_exits_125_listing_known() {
    let env = Env::new();
    let r = env.rpod(&["--db-backend", "nosuchdb", "info"]);
    assert_eq!(r.code, 125);
    assert!(
        r.stderr.contains("nosuchdb") && r.stderr.contains("registered backends"),
        "{}",
        r.stderr
    );
}

#[test]
fn info_json_shows_every_configured_key() {
    let env = Env::new();
    let b = env.dir.path().display().to_string();
    let conf = env.path("full.conf");
    std::fs::write(
        &conf,
        format!(
            r#"
volume_path = "{b}/vols"
image_default_transport = "oci:"
signature_policy_path = "{b}/policy.json"
runtime = "myrt"
runtime_supports_json = ["myrt"]
conmon_path = ["{b}/conmon"]
conmon_env_vars = ["PATH=/bin", "X=1"]
cgroup_manager = "cgroupfs"
init_path = "{b}/catatonit"
static_dir = "{b}/static"
tmp_dir = "{b}/tmp"
max_log_size = 4096
no_pivot_root = true
cni_config_dir = "{b}/cni"
cni_plugin_dir = ["{b}/cni-bin"]
cni_default_network = "mynet"
hooks_dir = ["{b}/hooks"]
namespace = "ns1"
infra_image = "example/pause:1"
infra_command = "/catatonit"
enable_port_reservation = false
label = false
network_cmd_path = "{b}/slirp"
num_locks = 96
lock_type = "file"
events_logger = "none"
detach_keys = "ctrl-a,d"
database_backend = "memory"
root = "{b}/root"
runroot = "{b}/run"
graph_driver = "overlay"
db_path = "{b}/db"
lock_path = "{b}/locks"
plugin_dirs = ["{b}/plugins"]
events_logfile_path = "{b}/ev.log"
events_logfile_max_size = 12345
cgroup_parent = "/rpod-info-test"
stop_timeout = 7
[runtimes]
myrt = ["{b}/bin/myrt"]
"#
        ),
    )
    .unwrap();
    let r = rpod_raw(&[
        "--config",
        conf.to_str().unwrap(),
        "info",
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("info JSON");
    let c = &v["rpod"]["config"];
    assert_eq!(c["volume_path"], format!("{b}/vols"));
    assert_eq!(c["image_default_transport"], "oci:");
    assert_eq!(c["runtime"], "myrt");
    assert_eq!(c["runtimes"]["myrt"][0], format!("{b}/bin/myrt"));
    assert_eq!(c["conmon_env_vars"][1], "X=1");
    assert_eq!(c["max_log_size"], 4096);
    assert_eq!(c["no_pivot_root"], true);
    assert_eq!(c["cni_default_network"], "mynet");
    assert_eq!(c["namespace"], "ns1");
    assert_eq!(c["infra_image"], "example/pause:1");
    assert_eq!(c["enable_port_reservation"], false);
    assert_eq!(c["label"], false);
    assert_eq!(c["num_locks"], 96);
    assert_eq!(c["lock_type"], "file");
    assert_eq!(c["events_logger"], "none");
    assert_eq!(c["detach_keys"], "ctrl-a,d");
    assert_eq!(c["database_backend"], "memory");
    assert_eq!(c["graph_driver"], "overlay");
    assert_eq!(c["plugin_dirs"][0], format!("{b}/plugins"));
    assert_eq!(c["events_logfile_max_size"], 12345);
    assert_eq!(c["stop_timeout"], 7);
    assert_eq!(v["store"]["graphRoot"], format!("{b}/root"));
    assert_eq!(v["store"]["runRoot"], format!("{b}/run"));
    assert_eq!(v["store"]["volumePath"], format!("{b}/vols"));
    assert_eq!(v["store"]["graphDriverName"], "overlay");
    assert_eq!(v["host"]["cgroupManager"], "cgroupfs");
    assert_eq!(v["host"]["eventLogger"], "none");
    assert_eq!(v["rpod"]["staticDir"], format!("{b}/static"));
    assert_eq!(v["rpod"]["namespace"], "ns1");
    assert!(v["store"]["configFiles"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == conf.to_str().unwrap()));
    // the runtime named in the config does not exist: info says why
    let rt = &v["host"]["ociRuntime"];
    assert!(rt["error"].as_str().unwrap_or("").contains("myrt"), "{rt}");
    assert_eq!(v["host"]["os"], "linux");
    assert!(!v["host"]["kernel"].as_str().unwrap().is_empty());
}

#[test]
fn system_backends_lists_builtin_backends() {
    let r = rpod_raw(&["system", "backends", "--format", "json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let names: Vec<(String, String)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["kind"].as_str().unwrap().to_string(),
                b["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (kind, name) in [
        ("state.v1", "memory"),
        ("state.v1", "sled"),
        ("lock.v1", "shm"),
        ("lock.v1", "file"),
        ("events.v1", "file"),
        ("events.v1", "none"),
    ] {
        assert!(
            names.contains(&(kind.to_string(), name.to_string())),
            "{kind} {name} missing from {names:?}"
        );
    }
    let human = rpod_raw(&["system", "backends"]);
    assert!(
        human.stdout.contains("state.v1") && human.stdout.contains("vanish"),
        "{}",
        human.stdout
    );
}
