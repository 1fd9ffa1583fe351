//! podman 4.3.1 databases, read through the State trait: every fixture in
//! `shared/fixtures/podman-4.3.1/*/` must show what `podman ps -a`, `podman
//! pod ps` and `podman volume ls` printed, and must stay read-only.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rpod_state::*;
use rpod_state_bolt::{new_bolt, open_bolt, Layout};
use serde_json::Value;

fn load(dir: &Path, file: &str) -> Value {
    let text = std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}/{file}: {e}", dir.display()));
    serde_json::from_str(&text).unwrap()
}

fn labels(v: &Value) -> BTreeMap<String, String> {
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// Copies a fixture DB into a temp dir.
fn copy(dir: &Path) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("bolt_state.db");
    std::fs::copy(dir.join("bolt_state.db"), &db).unwrap();
    (tmp, db)
}

/// `podman ps` shows configured (1) as created.
fn ps_state(s: ContainerStatus) -> &'static str {
    match s {
        ContainerStatus::Configured => "created",
        other => other.as_str(),
    }
}

fn check_fixture(dir: &Path) {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let (_tmp, db) = copy(dir);
    let state = new_bolt(&StateOptions::at(&db)).unwrap_or_else(|e| panic!("{name}: open: {e}"));
    assert_eq!(
        state.store().layout(),
        Some(Layout::Podman),
        "{name}: detected as podman's"
    );
    assert_eq!(state.backend(), "bolt");

    let expected = load(dir, "expected.json");
    let ps = load(dir, "ps.json");
    let pod_ps = load(dir, "pod-ps.json");
    let vols = load(dir, "volumes.json");

    // containers: exactly those podman listed, with their names, states, exit codes, labels, pods
    let all = state.all_containers().unwrap();
    let ps = ps.as_array().unwrap();
    assert_eq!(all.len(), ps.len(), "{name}: container count");
    assert_eq!(
        all.len() as u64,
        expected["counts"]["containers"].as_u64().unwrap()
    );
    let by_id: BTreeMap<&str, &ContainerRecord> =
        all.iter().map(|r| (r.config.id.as_str(), r)).collect();
    for p in ps {
        let id = p["Id"].as_str().unwrap();
        let r = by_id
            .get(id)
            .unwrap_or_else(|| panic!("{name}: container {id} missing"));
        let cname = p["Names"][0].as_str().unwrap();
        assert_eq!(r.config.name, cname, "{name}: name of {id}");
        assert_eq!(
            ps_state(r.state.state),
            p["State"].as_str().unwrap(),
            "{name}: state of {cname}"
        );
        assert_eq!(
            r.state.exit_code as i64,
            p["ExitCode"].as_i64().unwrap(),
            "{name}: exit code of {cname}"
        );
        assert_eq!(
            r.state.exited,
            p["Exited"].as_bool().unwrap(),
            "{name}: exited flag of {cname}"
        );
        // podman ps adds the image's labels to the infra container's; the config has the pod's
        let want = labels(&p["Labels"]);
        if r.config.is_infra {
            for (k, v) in &r.config.labels {
                assert_eq!(want.get(k), Some(v), "{name}: label {k} of {cname}");
            }
        } else {
            assert_eq!(r.config.labels, want, "{name}: labels of {cname}");
        }
        assert_eq!(
            r.config.pod.clone().unwrap_or_default(),
            p["Pod"].as_str().unwrap(),
            "{name}: pod of {cname}"
        );
        assert_eq!(
            r.config.is_infra,
            p["IsInfra"].as_bool().unwrap(),
            "{name}: infra flag of {cname}"
        );
        // fields rpod does not model survive in `extra`
        let cmd = r
            .config
            .extra
            .get("command")
            .cloned()
            .unwrap_or(Value::Null);
        assert_eq!(cmd, p["Command"], "{name}: command of {cname}");
        assert!(
            r.config.spec.to_value().is_object(),
            "{name}: OCI spec of {cname} decoded"
        );
        assert!(
            r.config.extra.contains_key("shmSize"),
            "{name}: unmodelled config field kept"
        );
        // lookups through the registry: full id, name, unique prefix
        assert_eq!(state.lookup_container(cname).unwrap().config.id, id);
        assert_eq!(
            state.lookup_container(&id[..12]).unwrap().config.name,
            cname
        );
        assert!(state.has_container(id).unwrap());
    }
    for e in expected["containers"].as_array().unwrap() {
        let id = e["id"].as_str().unwrap();
        let r = by_id[id];
        assert_eq!(
            u64::from(r.config.lock_id),
            e["lock_id"].as_u64().unwrap(),
            "{name}: lock id of {id}"
        );
        assert_eq!(
            u64::from(r.state.state.number()),
            e["db_state"].as_u64().unwrap(),
            "{name}: db state of {id}"
        );
        assert_eq!(
            !r.state.net_ns.is_empty(),
            e["netns_key"].as_bool().unwrap(),
            "{name}: netns of {id}"
        );
        let vols: Vec<&str> = r
            .config
            .named_volumes
            .iter()
            .map(|v| v.name.as_str())
            .collect();
        let want_vols: Vec<&str> = e["named_volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(vols, want_vols, "{name}: named volumes of {id}");
        let dependents: BTreeSet<String> = state
            .container_dependents(id)
            .unwrap()
            .into_iter()
            .map(|d| state.container(&d).unwrap().config.name)
            .collect();
        let want: BTreeSet<String> = e["dependencies_bucket"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(dependents, want, "{name}: dependents of {id}");
    }
    let running = all
        .iter()
        .filter(|r| r.state.state == ContainerStatus::Running)
        .count();
    if name == "running" {
        assert_eq!(running, 1);
        let r = &all[0];
        assert!(
            r.state.pid > 0 && r.state.conmon_pid > 0,
            "running: pids kept"
        );
        assert_eq!(r.state.exec_sessions.len(), 1, "running: exec session kept");
        assert!(
            r.state.net_ns.starts_with("/run/netns/"),
            "running: netns {}",
            r.state.net_ns
        );
    }

    // exit codes
    let codes = expected["exit_codes"].as_object().unwrap();
    for (id, code) in codes {
        let x = state.exit_code(id).unwrap();
        assert_eq!(
            i64::from(x.code),
            code.as_i64().unwrap(),
            "{name}: exit code of {id}"
        );
        assert!(!x.time.is_zero(), "{name}: exit code time of {id}");
    }
    for r in &all {
        if !codes.contains_key(&r.config.id) {
            assert!(state.exit_code(&r.config.id).unwrap_err().is_not_found());
        }
    }

    // pods
    let pods = state.all_pods().unwrap();
    let pod_ps = pod_ps.as_array().unwrap();
    assert_eq!(pods.len(), pod_ps.len(), "{name}: pod count");
    for p in pod_ps {
        let id = p["Id"].as_str().unwrap();
        let pod = state.lookup_pod(p["Name"].as_str().unwrap()).unwrap();
        assert_eq!(pod.config.id, id);
        assert_eq!(
            pod.config.labels,
            labels(&p["Labels"]),
            "{name}: labels of pod {id}"
        );
        assert_eq!(
            pod.state.infra_container_id,
            p["InfraId"].as_str().unwrap(),
            "{name}: infra of pod {id}"
        );
        let members: BTreeSet<String> = state.pod_containers(id).unwrap().into_iter().collect();
        let want: BTreeSet<String> = p["Containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["Id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(members, want, "{name}: members of pod {id}");
        // a pod's id is not a container's
        assert!(state.lookup_container(id).unwrap_err().is_not_found());
    }

    // volumes
    let vols = vols.as_array().unwrap();
    let all_vols = state.all_volumes().unwrap();
    assert_eq!(all_vols.len(), vols.len(), "{name}: volume count");
    let exp_vols = expected["volumes"].as_array().unwrap();
    for v in vols {
        let vname = v["Name"].as_str().unwrap();
        let r = state.volume(vname).unwrap();
        assert_eq!(r.config.driver, v["Driver"].as_str().unwrap());
        assert_eq!(r.config.mount_point, v["Mountpoint"].as_str().unwrap());
        assert_eq!(r.config.labels, labels(&v["Labels"]));
        assert_eq!(
            u64::from(r.state.mount_count),
            v["MountCount"].as_u64().unwrap()
        );
        assert_eq!(
            r.config.created_time.to_string(),
            v["CreatedAt"].as_str().unwrap()
        );
        let e = exp_vols.iter().find(|e| e["name"] == vname).unwrap();
        let want: Vec<String> = e["used_by"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u.as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            state.volume_users(vname).unwrap(),
            want,
            "{name}: users of {vname}"
        );
    }

    // the database config is podman's runtime-config
    let dbc = state.db_config().unwrap().expect("runtime-config present");
    let rc = &expected["runtime_config"];
    assert_eq!(dbc.static_dir, rc["static-dir"].as_str().unwrap());
    assert_eq!(dbc.tmp_dir, rc["tmp-dir"].as_str().unwrap());
    assert_eq!(dbc.graph_root, rc["graph-root"].as_str().unwrap());
    assert_eq!(dbc.run_root, rc["run-root"].as_str().unwrap());
    assert_eq!(dbc.graph_driver, rc["graph-driver-name"].as_str().unwrap());
    assert_eq!(dbc.volume_path, rc["volume-path"].as_str().unwrap());
}

#[test]
fn every_podman_fixture_matches_what_podman_printed() {
    let dirs = common::fixture_dirs();
    for dir in &dirs {
        check_fixture(dir);
    }
}

fn assert_read_only(r: Result<(), StateError>, what: &str, db: &Path) {
    match r {
        Err(e @ StateError::ReadOnly { .. }) => {
            assert!(
                e.to_string().contains(&db.display().to_string()),
                "{what}: error names the path: {e}"
            );
        }
        other => panic!("{what}: expected a read-only error, got {other:?}"),
    }
}

#[test]
fn podman_databases_are_never_written() {
    for dir in common::fixture_dirs() {
        let (_tmp, db) = copy(&dir);
        let before = std::fs::read(&db).unwrap();
        let state = open_bolt(&StateOptions::at(&db)).unwrap();
        let c = rpod_state::conformance::ctr_cfg(&"e".repeat(64), "rpod-new");
        assert_read_only(
            state.add_container(&c, &ContainerState::configured()),
            "add_container",
            &db,
        );
        assert_read_only(
            state.add_volume(
                &rpod_state::conformance::vol_cfg("v-new"),
                &VolumeState::default(),
            ),
            "add_volume",
            &db,
        );
        assert_read_only(state.refresh(), "refresh", &db);
        assert_read_only(
            state.record_exit_code(
                &"e".repeat(64),
                ExitCode {
                    code: 1,
                    time: Timestamp::now(),
                },
            ),
            "record_exit_code",
            &db,
        );
        if let Some(r) = state.all_containers().unwrap().first() {
            assert_read_only(
                state.remove_container(&r.config.id),
                "remove_container",
                &db,
            );
            assert_read_only(
                state.save_container_state(&r.config.id, &ContainerState::configured()),
                "save state",
                &db,
            );
            assert!(state.has_container(&r.config.id).unwrap(), "still there");
        }
        // reads and failed writes left every byte as it was
        assert_eq!(
            std::fs::read(&db).unwrap(),
            before,
            "{} unchanged",
            dir.display()
        );
        common::assert_boltcheck_ok(&db);
    }
}

#[test]
fn podman_namespace_views_and_lookup_semantics() {
    let dir = common::shared_dir().join("fixtures/podman-4.3.1/pod");
    let (_tmp, db) = copy(&dir);
    let state = open_bolt(&StateOptions::at(&db)).unwrap();
    // no namespace in the fixtures: a namespaced view sees nothing
    let ns = state.with_namespace("other").unwrap();
    assert!(ns.all_containers().unwrap().is_empty());
    assert!(ns.all_pods().unwrap().is_empty());
    // the infra container and its pod
    let pod = state.lookup_pod("fxpod").unwrap();
    let infra = state.container(&pod.state.infra_container_id).unwrap();
    assert!(infra.config.is_infra);
    assert_eq!(infra.config.pod.as_deref(), Some(pod.config.id.as_str()));
    assert!(state
        .pod_has_container(&pod.config.id, &infra.config.id)
        .unwrap());
    // a name is a container or a pod, not both
    assert!(state.lookup_pod("fx-p1").unwrap_err().is_not_found());
    assert!(state.lookup_container("fxpod").unwrap_err().is_not_found());
}

#[test]
fn refreshed_fixture_differs_from_running_as_podman_refreshed_it() {
    let root = common::shared_dir().join("fixtures/podman-4.3.1");
    let (_t1, a) = copy(&root.join("running"));
    let (_t2, b) = copy(&root.join("running-refreshed"));
    let ra = open_bolt(&StateOptions::at(&a))
        .unwrap()
        .all_containers()
        .unwrap()
        .remove(0);
    let rb = open_bolt(&StateOptions::at(&b))
        .unwrap()
        .all_containers()
        .unwrap()
        .remove(0);
    assert_eq!(ra.config, rb.config);
    assert_eq!(ra.state.state, ContainerStatus::Running);
    assert_eq!(rb.state.state, ContainerStatus::Configured);
    // what podman's refresh did is what rpod's reset does
    let mut reset = ra.state.clone();
    reset.reset_after_reboot();
    assert_eq!(reset.state, rb.state.state);
    assert_eq!(reset.pid, rb.state.pid);
    assert_eq!(reset.net_ns, rb.state.net_ns);
    assert_eq!(reset.exec_sessions, rb.state.exec_sessions);
    assert_eq!(reset.started_time, rb.state.started_time);
}
