//! `open` through the registry, options from the config, read-only states.

use rpod_config::{RuntimeConfig, UserDirs};
use rpod_state::*;

fn config(tmp: &std::path::Path) -> RuntimeConfig {
    let mut c = RuntimeConfig::defaults(&UserDirs::current());
    c.root = tmp.join("root");
    c.runroot = tmp.join("run");
    c.static_dir = tmp.join("root/static");
    c.tmp_dir = tmp.join("run/tmp");
    c
}

#[test]
fn open_memory_through_registry() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.database_backend = "memory".into();
    cfg.namespace = "ns1".into();
    let s = open(&cfg).unwrap();
    assert_eq!(s.backend(), "memory");
    assert_eq!(s.namespace(), "ns1");
    assert!(s.path().is_none());
}

#[test]
fn unknown_backend_lists_known_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.database_backend = "nosuchdb".into();
    let err = open(&cfg).unwrap_err();
    assert!(matches!(err, StateError::Registry(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("nosuchdb") && msg.contains("memory"), "{msg}");
}

#[test]
fn memory_summary_says_state_vanishes() {
    let reg = rpod_registry::lookup(rpod_registry::kinds::STATE, "memory").unwrap();
    assert!(reg.summary.contains("vanish"), "{}", reg.summary);
}

#[test]
fn options_from_config() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    let o = StateOptions::from_config(&cfg);
    assert_eq!(o.path, None);
    assert_eq!(
        o.path_or_default("x.db"),
        tmp.path().join("root/static/x.db")
    );
    assert_eq!(o.busy_timeout, DEFAULT_BUSY_TIMEOUT);
    assert!(!o.read_only);
    cfg.db_path = tmp.path().join("elsewhere.db");
    cfg.namespace = "n".into();
    let o = StateOptions::from_config(&cfg);
    assert_eq!(o.path_or_default("x.db"), tmp.path().join("elsewhere.db"));
    assert_eq!(o.namespace, "n");
}

#[test]
fn db_config_from_runtime_config() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let d = DbConfig::from_config(&cfg);
    assert_eq!(d.graph_root, tmp.path().join("root").to_string_lossy());
    assert_eq!(d.run_root, tmp.path().join("run").to_string_lossy());
    assert_eq!(d.static_dir, cfg.static_dir.to_string_lossy());
    assert_eq!(d.graph_driver, "vfs");
    assert_eq!(d.volume_path, cfg.volume_path.to_string_lossy());
}

#[test]
fn read_only_memory_refuses_writes() {
    let s = open_memory(&StateOptions::at("/nonexistent/x").read_only(true)).unwrap();
    let c = ContainerConfig {
        id: "a".repeat(64),
        name: "a".into(),
        ..Default::default()
    };
    let err = s
        .add_container(&c, &ContainerState::configured())
        .unwrap_err();
    assert!(matches!(err, StateError::ReadOnly { .. }), "{err:?}");
    assert!(s.all_containers().unwrap().is_empty());
}
