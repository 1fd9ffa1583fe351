//! Precedence, explicit-set tracking and validation of the config loader.

use std::path::{Path, PathBuf};

use rpod_config::{CgroupManager, ConfigError, ConfigLoader, Options, Origin, UserDirs};

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }
    fn user(&self, uid: u32) -> UserDirs {
        UserDirs {
            uid,
            data_home: self.path("home/.local/share"),
            runtime_dir: self.path("xdg-run"),
            config_home: self.path("home/.config"),
        }
    }
    fn loader(&self, uid: u32) -> ConfigLoader {
        ConfigLoader {
            system_file: self.path("usr/share/rpod/rpod.conf"),
            override_file: self.path("etc/rpod/rpod.conf"),
            user: self.user(uid),
            config_file: None,
            options: Options::new(),
        }
    }
}

#[test]
fn defaults_for_root_use_rpods_own_paths() {
    let env = Env::new();
    let cfg = env.loader(0).load().unwrap();
    assert_eq!(cfg.root, Path::new("/var/lib/rpod"));
    assert_eq!(cfg.runroot, Path::new("/run/rpod"));
    assert_eq!(cfg.static_dir, Path::new("/var/lib/rpod/static"));
    assert_eq!(cfg.volume_path, Path::new("/var/lib/rpod/volumes"));
    assert_eq!(cfg.tmp_dir, Path::new("/run/rpod/tmp"));
    assert_eq!(cfg.num_locks, 2048);
    assert_eq!(cfg.detach_keys, "ctrl-p,ctrl-q");
    assert_eq!(cfg.max_log_size, -1);
    assert_eq!(cfg.runtime, "runc");
    assert_eq!(cfg.database_backend, "bolt");
    assert_eq!(cfg.lock_type, "shm");
    assert!(cfg.runtimes["runc"].contains(&PathBuf::from("/usr/sbin/runc")));
    assert!(cfg.conmon_path.contains(&PathBuf::from("/usr/bin/conmon")));
    assert!(cfg.files_read().is_empty());
    assert!(cfg.explicit_keys().next().is_none());
    // never podman's store
    for p in [
        &cfg.root,
        &cfg.runroot,
        &cfg.static_dir,
        &cfg.tmp_dir,
        &cfg.volume_path,
    ] {
        assert!(!p.starts_with("/var/lib/containers") && !p.starts_with("/run/libpod"));
    }
}

#[test]
fn defaults_for_non_root_use_xdg_dirs() {
    let env = Env::new();
    let cfg = env.loader(1000).load().unwrap();
    assert_eq!(cfg.root, env.path("home/.local/share/rpod"));
    assert_eq!(cfg.runroot, env.path("xdg-run/rpod"));
    assert_eq!(cfg.static_dir, env.path("home/.local/share/rpod/static"));
}

#[test]
fn system_file_is_read_when_no_override() {
    let env = Env::new();
    let sys = env.write(
        "usr/share/rpod/rpod.conf",
        "num_locks = 100\nnamespace = \"sys\"\n",
    );
    let cfg = env.loader(0).load().unwrap();
    assert_eq!(cfg.num_locks, 100);
    assert_eq!(cfg.namespace, "sys");
    assert_eq!(cfg.files_read(), std::slice::from_ref(&sys));
    assert_eq!(cfg.origin("num_locks"), Origin::File(sys));
}

#[test]
fn override_file_replaces_system_file_entirely() {
    let env = Env::new();
    env.write(
        "usr/share/rpod/rpod.conf",
        "num_locks = 100\nnamespace = \"sys\"\n",
    );
    let ovr = env.write("etc/rpod/rpod.conf", "num_locks = 200\n");
    let cfg = env.loader(0).load().unwrap();
    assert_eq!(cfg.num_locks, 200);
    // not merged: the system file's namespace is not applied
    assert_eq!(cfg.namespace, "");
    assert!(!cfg.is_explicit("namespace"));
    assert_eq!(cfg.files_read(), &[ovr]);
}

#[test]
fn non_root_user_file_replaces_global_file() {
    let env = Env::new();
    env.write(
        "etc/rpod/rpod.conf",
        "num_locks = 200\ninit_path = \"/global/init\"\n",
    );
    let user = env.write("home/.config/rpod/rpod.conf", "num_locks = 300\n");
    let cfg = env.loader(1000).load().unwrap();
    assert_eq!(cfg.num_locks, 300);
    assert_eq!(cfg.init_path, Path::new("/usr/libexec/podman/catatonit"));
    assert_eq!(cfg.files_read(), &[user]);
}

#[test]
fn non_root_without_user_file_inherits_only_cherry_picked_keys() {
    let env = Env::new();
    env.write(
        "etc/rpod/rpod.conf",
        r#"
num_locks = 200
namespace = "global"
init_path = "/global/init"
conmon_path = ["/global/conmon"]
conmon_env_vars = ["A=b"]
no_pivot_root = true
cni_plugin_dir = ["/global/cni"]
runtime_path = ["/global/runc"]
[runtimes]
runc = ["/global/bin/runc"]
"#,
    );
    let cfg = env.loader(1000).load().unwrap();
    assert_eq!(cfg.num_locks, 2048, "num_locks is not inherited");
    assert_eq!(cfg.namespace, "", "namespace is not inherited");
    assert_eq!(cfg.init_path, Path::new("/global/init"));
    assert_eq!(cfg.conmon_path, vec![PathBuf::from("/global/conmon")]);
    assert_eq!(cfg.conmon_env_vars, vec!["A=b".to_string()]);
    assert!(cfg.no_pivot_root);
    assert_eq!(cfg.cni_plugin_dir, vec![PathBuf::from("/global/cni")]);
    assert_eq!(cfg.runtime_path, vec![PathBuf::from("/global/runc")]);
    assert_eq!(
        cfg.runtimes["runc"],
        vec![PathBuf::from("/global/bin/runc")]
    );
    assert!(cfg.is_explicit("init_path"));
    assert!(!cfg.is_explicit("num_locks"));
}

#[test]
fn root_user_ignores_user_file() {
    let env = Env::new();
    env.write("home/.config/rpod/rpod.conf", "num_locks = 300\n");
    let cfg = env.loader(0).load().unwrap();
    assert_eq!(cfg.num_locks, 2048);
}

#[test]
fn config_flag_file_overrides_global_and_options_override_both() {
    let env = Env::new();
    env.write(
        "etc/rpod/rpod.conf",
        "num_locks = 200\nnamespace = \"g\"\nlock_type = \"file\"\n",
    );
    let extra = env.write("extra.conf", "num_locks = 400\nnamespace = \"x\"\n");
    let mut loader = env.loader(0).config_file(&extra);
    loader.options = Options::new().num_locks(64);
    let cfg = loader.load().unwrap();
    assert_eq!(cfg.num_locks, 64);
    assert_eq!(cfg.origin("num_locks"), Origin::Option);
    assert_eq!(cfg.namespace, "x");
    assert_eq!(cfg.origin("namespace"), Origin::File(extra.clone()));
    assert_eq!(cfg.lock_type, "file");
    assert_eq!(cfg.files_read().len(), 2);
    assert_eq!(cfg.files_read()[1], extra);
}

#[test]
fn missing_config_flag_file_cannot_stat() {
    let env = Env::new();
    let err = env
        .loader(0)
        .config_file(env.path("nope.conf"))
        .load()
        .unwrap_err();
    assert!(matches!(err, ConfigError::CannotStat { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("cannot stat") && msg.contains("nope.conf"),
        "{msg}"
    );
}

#[test]
fn explicit_tracking_distinguishes_defaults_files_and_options() {
    let env = Env::new();
    let sys = env.write("usr/share/rpod/rpod.conf", "tmp_dir = \"/tmp/rpod-x\"\n");
    let mut loader = env.loader(0);
    loader.options = Options::new().root("/srv/rpod");
    let cfg = loader.load().unwrap();
    assert_eq!(cfg.origin("tmp_dir"), Origin::File(sys));
    assert_eq!(cfg.origin("root"), Origin::Option);
    assert!(!cfg.is_explicit("static_dir"));
    // derived defaults follow explicit roots
    assert_eq!(cfg.static_dir, Path::new("/srv/rpod/static"));
    assert_eq!(cfg.volume_path, Path::new("/srv/rpod/volumes"));
    let keys: Vec<&str> = cfg.explicit_keys().map(|(k, _)| k).collect();
    assert_eq!(keys, vec!["root", "tmp_dir"]);
}

#[test]
fn set_default_from_never_replaces_explicit_values() {
    let env = Env::new();
    let mut loader = env.loader(0);
    loader.options = Options::new().static_dir("/explicit/static");
    let mut cfg = loader.load().unwrap();
    assert!(!cfg
        .set_default_from("static_dir", "/from/db".into())
        .unwrap());
    assert_eq!(cfg.static_dir, Path::new("/explicit/static"));
    assert!(cfg
        .set_default_from("tmp_dir", "/from/db/tmp".into())
        .unwrap());
    assert_eq!(cfg.tmp_dir, Path::new("/from/db/tmp"));
    assert!(!cfg.is_explicit("tmp_dir"));
}

#[test]
fn copies_are_independent() {
    let env = Env::new();
    let cfg = env.loader(0).load().unwrap();
    let mut copy = cfg.clone();
    copy.set_default_from("namespace", "other".into()).unwrap();
    assert_eq!(cfg.namespace, "");
    assert_eq!(copy.namespace, "other");
}

#[test]
fn unknown_keys_are_warned_not_fatal() {
    let env = Env::new();
    let p = env.write("etc/rpod/rpod.conf", "num_locks = 10\nfrobnicate = true\n");
    let cfg = env.loader(0).load().unwrap();
    assert_eq!(cfg.num_locks, 10);
    assert_eq!(cfg.warnings().len(), 1);
    let w = &cfg.warnings()[0];
    assert!(
        w.contains("frobnicate") && w.contains(&p.display().to_string()),
        "{w}"
    );
}

#[test]
fn runtime_path_is_accepted_with_a_deprecation_warning() {
    let env = Env::new();
    env.write("etc/rpod/rpod.conf", "runtime_path = [\"/opt/runc\"]\n");
    let cfg = env.loader(0).load().unwrap();
    assert_eq!(cfg.runtime_path, vec![PathBuf::from("/opt/runc")]);
    assert!(cfg.warnings().iter().any(|w| w.contains("deprecated")));
}

fn load_err(text: &str) -> (String, ConfigError) {
    let env = Env::new();
    let p = env.write("etc/rpod/rpod.conf", text);
    let err = env.loader(0).load().unwrap_err();
    (p.display().to_string(), err)
}

#[test]
fn syntax_errors_give_line_and_column() {
    let (p, err) = load_err("num_locks = 10\nruntime = \n");
    let msg = err.to_string();
    assert!(matches!(err, ConfigError::Syntax { line: 2, .. }), "{msg}");
    assert!(msg.starts_with(&format!("{p}:2:")), "{msg}");
}

#[test]
fn bad_cgroup_manager_names_key_value_and_choices() {
    let (p, err) = load_err("cgroup_manager = \"cgroupfsx\"\n");
    let msg = err.to_string();
    assert!(msg.contains(&p), "{msg}");
    assert!(
        msg.contains("`cgroup_manager`") && msg.contains("cgroupfsx"),
        "{msg}"
    );
    assert!(msg.contains("\"cgroupfs\" or \"systemd\""), "{msg}");
}

#[test]
fn wrong_type_is_rejected() {
    let (_, err) = load_err("num_locks = \"many\"\n");
    let msg = err.to_string();
    assert!(msg.contains("`num_locks`") && msg.contains("many"), "{msg}");
    let (_, err) = load_err("num_locks = -5\n");
    assert!(err.to_string().contains("`num_locks`"), "{err}");
}

#[test]
fn zero_locks_is_rejected() {
    let (p, err) = load_err("num_locks = 0\n");
    let msg = err.to_string();
    assert!(
        msg.contains(&p) && msg.contains("num_locks") && msg.contains("at least 1"),
        "{msg}"
    );
}

#[test]
fn empty_runtime_path_list_is_rejected() {
    let (_, err) = load_err("[runtimes]\nmyrt = []\n");
    let msg = err.to_string();
    assert!(
        msg.contains("runtimes") && msg.contains("myrt") && msg.contains("at least one"),
        "{msg}"
    );
}

#[test]
fn default_runtime_must_be_configured_or_absolute() {
    let (_, err) = load_err("runtime = \"kata\"\n");
    let msg = err.to_string();
    assert!(msg.contains("`runtime`") && msg.contains("kata"), "{msg}");
    assert!(
        msg.contains("crun, runc") && msg.contains("absolute path"),
        "{msg}"
    );
    let env = Env::new();
    env.write("etc/rpod/rpod.conf", "runtime = \"/opt/bin/myruntime\"\n");
    assert_eq!(env.loader(0).load().unwrap().runtime, "/opt/bin/myruntime");
    env.write(
        "etc/rpod/rpod.conf",
        "runtime = \"kata\"\n[runtimes]\nkata = [\"/opt/kata\"]\n",
    );
    assert_eq!(env.loader(0).load().unwrap().runtime, "kata");
}

#[test]
fn relative_paths_are_rejected_where_absolute_needed() {
    for (text, key) in [
        ("static_dir = \"rel/dir\"\n", "static_dir"),
        ("tmp_dir = \"tmp\"\n", "tmp_dir"),
        ("volume_path = \"v\"\n", "volume_path"),
        ("root = \"r\"\n", "root"),
        ("conmon_path = [\"conmon\"]\n", "conmon_path"),
        ("hooks_dir = [\"hooks\"]\n", "hooks_dir"),
        ("[runtimes]\nrunc = [\"runc\"]\n", "runtimes"),
    ] {
        let (_, err) = load_err(text);
        let msg = err.to_string();
        assert!(
            msg.contains(key) && msg.contains("absolute"),
            "{key}: {msg}"
        );
    }
}

#[test]
fn bad_detach_keys_and_log_size_are_rejected() {
    let (_, err) = load_err("detach_keys = \"ctrl-pp\"\n");
    assert!(err.to_string().contains("detach_keys"), "{err}");
    let (_, err) = load_err("max_log_size = 0\n");
    assert!(err.to_string().contains("-1 for unlimited"), "{err}");
    assert_eq!(
        rpod_config::parse_detach_keys("ctrl-p,ctrl-q").unwrap(),
        vec![16, 17]
    );
    assert_eq!(
        rpod_config::parse_detach_keys("ctrl-@,a").unwrap(),
        vec![0, b'a']
    );
    assert!(rpod_config::parse_detach_keys("").unwrap().is_empty());
}

#[test]
fn bad_option_is_attributed_to_the_option() {
    let env = Env::new();
    let mut loader = env.loader(0);
    loader.options = Options::new().cgroup_manager("nope");
    let err = loader.load().unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("command-line option"), "{msg}");
}

#[test]
fn cgroup_parent_follows_manager() {
    let env = Env::new();
    env.write("etc/rpod/rpod.conf", "cgroup_manager = \"systemd\"\n");
    let cfg = env.loader(0).load().unwrap();
    assert_eq!(cfg.cgroup_manager, CgroupManager::Systemd);
    assert_eq!(cfg.cgroup_parent, "machine.slice");
}

#[test]
fn unknown_backend_names_list_registered_ones() {
    fn f() {}
    let _ = rpod_registry::register(rpod_registry::Registration {
        kind: rpod_registry::kinds::STATE,
        name: "teststate",
        summary: "test",
        origin: "config-test",
        factory: &(f as fn()),
    });
    for (k, v) in [("lock", "lock_type"), ("events", "events_logger")] {
        let _ = rpod_registry::register(rpod_registry::Registration {
            kind: if k == "lock" {
                rpod_registry::kinds::LOCK
            } else {
                rpod_registry::kinds::EVENTS
            },
            name: "testbackend",
            summary: v,
            origin: "config-test",
            factory: &(f as fn()),
        });
    }
    let env = Env::new();
    let p = env.write(
        "etc/rpod/rpod.conf",
        "database_backend = \"teststate\"\nlock_type = \"testbackend\"\nevents_logger = \"testbackend\"\n",
    );
    let cfg = env.loader(0).load().unwrap();
    cfg.validate_backends().unwrap();
    let mut loader = env.loader(0);
    loader.options = Options::new().database_backend("nosuch");
    let err = loader.load().unwrap().validate_backends().unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("nosuch") && msg.contains("teststate") && msg.contains("database_backend"),
        "{msg}"
    );
    assert!(msg.starts_with("command-line option"), "{msg}");
    env.write(
        "etc/rpod/rpod.conf",
        "lock_type = \"nolock\"\ndatabase_backend = \"teststate\"\n",
    );
    let err = env
        .loader(0)
        .load()
        .unwrap()
        .validate_backends()
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&p.display().to_string()) && msg.contains("nolock") && msg.contains("lock.v1"),
        "{msg}"
    );
}

#[test]
fn a_full_libpod_conf_loads_unchanged() {
    let env = Env::new();
    env.write(
        "etc/rpod/rpod.conf",
        r#"
volume_path = "/var/lib/containers/storage/volumes"
image_default_transport = "docker://"
runtime = "runc"
runtime_supports_json = ["crun", "runc"]
conmon_path = ["/usr/libexec/podman/conmon", "/usr/bin/conmon"]
conmon_env_vars = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
cgroup_manager = "systemd"
init_path = "/usr/libexec/podman/catatonit"
static_dir = "/var/lib/containers/storage/libpod"
tmp_dir = "/var/run/libpod"
max_log_size = -1
no_pivot_root = false
cni_config_dir = "/etc/cni/net.d/"
cni_plugin_dir = ["/usr/libexec/cni", "/usr/lib/cni"]
cni_default_network = "podman"
hooks_dir = ["/usr/share/containers/oci/hooks.d"]
namespace = ""
infra_image = "k8s.gcr.io/pause:3.1"
infra_command = "/pause"
enable_port_reservation = true
label = true
network_cmd_path = ""
num_locks = 2048
lock_type = "shm"
events_logger = "journald"
detach_keys = "ctrl-p,ctrl-q"
signature_policy_path = "/etc/containers/policy.json"

[runtimes]
runc = ["/usr/bin/runc", "/usr/sbin/runc"]
crun = ["/usr/bin/crun"]
"#,
    );
    let cfg = env.loader(0).load().unwrap();
    assert!(cfg.warnings().is_empty(), "{:?}", cfg.warnings());
    assert_eq!(cfg.tmp_dir, Path::new("/var/run/libpod"));
    assert_eq!(cfg.events_logger, "journald");
    assert_eq!(cfg.cgroup_manager, CgroupManager::Systemd);
}
