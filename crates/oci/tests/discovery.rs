//! Runtime and conmon discovery: precedence and error messages.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rpod_config::{RuntimeConfig, UserDirs};
use rpod_oci::{list_runtimes, Conmon, OciError, OciRuntime};

fn fake_exe(path: &Path, version_line: &str) -> PathBuf {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        path,
        format!("#!/bin/sh\necho '{version_line}'\necho second line\n"),
    )
    .unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_path_buf()
}

fn cfg(dir: &Path) -> RuntimeConfig {
    let mut c = RuntimeConfig::defaults(&UserDirs::current());
    c.runroot = dir.join("run");
    c.runtimes.clear();
    c
}

#[test]
fn named_runtime_first_existing_regular_file_wins() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    std::fs::create_dir_all(d.join("is-a-dir")).unwrap();
    let a = fake_exe(&d.join("a/runc"), "runc version 9.9.9");
    let b = fake_exe(&d.join("b/runc"), "runc version 1.0.0");
    let mut c = cfg(d);
    c.runtimes.insert(
        "runc".into(),
        vec![d.join("missing/runc"), d.join("is-a-dir"), a.clone(), b],
    );
    let rt = OciRuntime::find(&c, None).unwrap();
    assert_eq!(rt.name, "runc");
    assert_eq!(rt.path, a);
    assert!(rt.supports_json);
    assert_eq!(rt.state_root, d.join("run/runc"));
    assert_eq!(rt.version().unwrap(), "runc version 9.9.9");
}

#[test]
fn missing_default_runtime_names_every_path_tried() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let mut c = cfg(d);
    c.runtimes
        .insert("runc".into(), vec![d.join("x/runc"), d.join("y/runc")]);
    let e = OciRuntime::find(&c, None).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, OciError::RuntimeNotFound { ref name, ref tried } if name == "runc" && tried.len() == 2)
    );
    assert!(msg.contains("x/runc") && msg.contains("y/runc"), "{msg}");
    // A default that is not configured at all is also an error.
    c.runtime = "kata".into();
    let e = OciRuntime::find(&c, None).unwrap_err();
    assert!(e.to_string().contains("kata"), "{e}");
}

#[test]
fn requested_name_or_path_overrides_the_default() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let runc = fake_exe(&d.join("runc"), "runc version 1");
    let crun = fake_exe(&d.join("crun"), "crun version 2");
    let other = fake_exe(&d.join("bin/my-runtime"), "mine 3");
    let mut c = cfg(d);
    c.runtimes.insert("runc".into(), vec![runc]);
    c.runtimes.insert("crun".into(), vec![crun.clone()]);
    let rt = OciRuntime::find(&c, Some("crun")).unwrap();
    assert_eq!(
        (rt.name.as_str(), rt.path.as_path()),
        ("crun", crun.as_path())
    );
    let rt = OciRuntime::find(&c, Some(other.to_str().unwrap())).unwrap();
    assert_eq!(rt.name, "my-runtime");
    assert_eq!(rt.path, other);
    assert!(
        !rt.supports_json,
        "my-runtime is not in runtime_supports_json"
    );
    // Unknown name, relative path, missing absolute path.
    assert!(matches!(
        OciRuntime::find(&c, Some("youki")),
        Err(OciError::RuntimeNotFound { .. })
    ));
    assert!(matches!(
        OciRuntime::find(&c, Some("bin/my-runtime")),
        Err(OciError::InvalidSpec { .. })
    ));
    let e = OciRuntime::find(&c, Some("/nonexistent/runc")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/runc"), "{e}");
    // The default given as an absolute path.
    c.runtime = other.to_string_lossy().into_owned();
    assert_eq!(OciRuntime::find(&c, None).unwrap().path, other);
}

#[test]
fn deprecated_runtime_path_wins_for_the_default() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let runc = fake_exe(&d.join("runc"), "runc version 1");
    let legacy = fake_exe(&d.join("legacy/crun"), "crun version 0");
    let mut c = cfg(d);
    c.runtimes.insert("runc".into(), vec![runc.clone()]);
    c.runtime_path = vec![d.join("legacy/missing"), legacy.clone()];
    let rt = OciRuntime::find(&c, None).unwrap();
    assert_eq!(rt.path, legacy);
    // A per-container request is not affected.
    assert_eq!(OciRuntime::find(&c, Some("runc")).unwrap().path, runc);
}

#[test]
fn listing_warns_about_missing_optional_runtimes() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let runc = fake_exe(&d.join("runc"), "runc version 1");
    let mut c = cfg(d);
    c.runtimes.insert("runc".into(), vec![runc.clone()]);
    c.runtimes.insert("kata".into(), vec![d.join("no/kata")]);
    let list = list_runtimes(&c);
    assert_eq!(list.len(), 2);
    let kata = list.iter().find(|r| r.name == "kata").unwrap();
    assert!(!kata.is_default && kata.path.is_none());
    assert!(kata.warning.as_deref().unwrap().contains("no/kata"));
    let r = list.iter().find(|r| r.name == "runc").unwrap();
    assert!(r.is_default && r.warning.is_none());
    assert_eq!(r.path.as_deref(), Some(runc.as_path()));
    // The default still resolves even though kata is missing.
    assert_eq!(OciRuntime::find(&c, None).unwrap().path, runc);
}

#[test]
fn conmon_first_existing_non_directory_wins() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    std::fs::create_dir_all(d.join("dir/conmon")).unwrap();
    let good = fake_exe(&d.join("good/conmon"), "conmon version 2.1.6");
    let old = fake_exe(&d.join("old/conmon"), "conmon version 1.0.0");
    let mut c = cfg(d);
    c.conmon_path = vec![d.join("missing"), d.join("dir/conmon"), good.clone()];
    let cm = Conmon::find(&c, None).unwrap();
    assert_eq!(cm.path, good);
    assert_eq!(cm.version().unwrap(), "conmon version 2.1.6");
    assert_eq!(cm.check_version().unwrap(), (2, 1, 6));
    // --conmon overrides the configured list.
    let cm = Conmon::find(&c, Some(&old)).unwrap();
    assert_eq!(cm.path, old);
    let e = cm.check_version().unwrap_err().to_string();
    assert!(e.contains("2.0.1"), "{e}");
    c.conmon_path = vec![d.join("a"), d.join("b")];
    let e = Conmon::find(&c, None).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, OciError::ConmonNotFound { ref tried } if tried.len() == 2));
    assert!(
        msg.contains(&d.join("a").display().to_string())
            && msg.contains(&d.join("b").display().to_string())
    );
}

#[test]
fn real_runc_and_conmon_report_versions() {
    let runc = Path::new("/usr/sbin/runc");
    let conmon = Path::new("/usr/bin/conmon");
    if !runc.is_file() || !conmon.is_file() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true but runc/conmon missing"
        );
        eprintln!("NOT RUN: runc/conmon missing");
        return;
    }
    let c = RuntimeConfig::defaults(&UserDirs::current());
    let rt = OciRuntime::find(&c, Some("runc")).unwrap();
    assert!(rt.version().unwrap().starts_with("runc version "));
    let cm = Conmon::find(&c, None).unwrap();
    assert!(cm.version().unwrap().starts_with("conmon version "));
    assert!(cm.check_version().unwrap() >= (2, 0, 1));
}
