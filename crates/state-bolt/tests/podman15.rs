//! podman 1.5's (seed-era) schema: a synthetic database with the 10
//! top-level buckets and the record shapes of podman v1.5.0
//! (`libpod/boltdb_state.go`, see `shared/docs/bolt-format.md` §2.8), written
//! with rpod-bolt, read through the State trait.

mod common;

use std::path::Path;

use rpod_bolt::{Db, OpenOptions};
use rpod_state::*;
use rpod_state_bolt::podman::PodmanSchema;
use rpod_state_bolt::{new_bolt, Layout};
use serde_json::{json, Value};

const EXITED: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const MEMBER: &str = "2222222222222222222222222222222222222222222222222222222222222222";
const INFRA: &str = "3333333333333333333333333333333333333333333333333333333333333333";
const POD: &str = "4444444444444444444444444444444444444444444444444444444444444444";
const STALE: &str = "5555555555555555555555555555555555555555555555555555555555555555";

fn spec(args: &[&str]) -> Value {
    json!({
        "ociVersion": "1.0.1-dev",
        "process": {"user": {"uid": 0, "gid": 0}, "args": args, "env": ["PATH=/bin"], "cwd": "/"},
        "root": {"path": "/srv/rootfs"},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}]
    })
}

/// A podman 1.5 container config: `exitCommand`, `networks` as a list, no
/// `CreateCommand`.
fn ctr_config(id: &str, name: &str, lock: u32, pod: Option<&str>, pause: bool) -> Value {
    let mut c = json!({
        "id": id, "name": name, "lockID": lock, "spec": spec(&["/bin/sh", "-c", "exit 3"]),
        "rootfs": "/srv/rootfs", "labels": {"era": "seed"}, "createdTime": "2019-08-01T10:00:00.123456789Z",
        "exitCommand": ["/usr/bin/podman", "container", "cleanup", id], "networks": ["podman"],
        "imageVolumes": false, "staticIP": "", "pause": pause, "stopSignal": 15, "stopTimeout": 10,
        "Dependencies": null, "namedVolumes": [{"volumeName": "oldvol", "dest": "/data", "options": null}]
    });
    if let Some(p) = pod {
        c["pod"] = json!(p);
        c["namedVolumes"] = json!(null);
    }
    c
}

fn put_json(b: &rpod_bolt::Bucket<'_>, k: &str, v: &Value) -> rpod_bolt::Result<()> {
    b.put(k.as_bytes(), &serde_json::to_vec(v).unwrap())
}

/// Writes a podman 1.5-style database at `path`.
fn write_seed_db(path: &Path) {
    let db = Db::open(path, &OpenOptions::new().page_size(4096)).unwrap();
    db.update(|tx| {
        for b in [
            "id-registry",
            "name-registry",
            "ns-registry",
            "ctr",
            "all-ctrs",
            "pod",
            "allPods",
            "vol",
            "allVolumes",
            "runtime-config",
        ] {
            tx.create_bucket(b.as_bytes())?;
        }
        let rc = tx.bucket(b"runtime-config")?.unwrap();
        for (k, v) in [
            ("os", "linux"),
            ("static-dir", "/var/lib/containers/storage/libpod"),
            ("tmp-dir", "/var/run/libpod"),
            ("run-root", "/var/run/containers/storage"),
            ("graph-root", "/var/lib/containers/storage"),
            ("graph-driver-name", "overlay"),
            ("volume-path", "/var/lib/containers/storage/volumes"),
        ] {
            rc.put(k.as_bytes(), v.as_bytes())?;
        }
        let ids = tx.bucket(b"id-registry")?.unwrap();
        let names = tx.bucket(b"name-registry")?.unwrap();
        let all = tx.bucket(b"all-ctrs")?.unwrap();
        let ctrs = tx.bucket(b"ctr")?.unwrap();
        let states = [
            (
                EXITED,
                "seed-exited",
                1,
                None,
                false,
                json!({"state": 6, "exitCode": 3, "exited": true,
                       "startedTime": "2019-08-01T10:00:01Z", "finishedTime": "2019-08-01T10:00:02Z",
                       "networkResults": null}),
            ),
            (
                MEMBER,
                "seed-member",
                2,
                Some(POD),
                false,
                json!({"state": 3, "pid": 4242, "conmonPid": 4241, "mounted": true, "mountPoint": "/srv/rootfs",
                       "startedTime": "2019-08-01T10:00:03Z", "finishedTime": "0001-01-01T00:00:00Z",
                       "execSessions": {"e1": {"id": "e1", "command": ["/bin/sh"], "pid": 4300}}}),
            ),
            (
                INFRA,
                "444444444444-infra",
                3,
                Some(POD),
                true,
                json!({"state": 1, "startedTime": "0001-01-01T00:00:00Z", "finishedTime": "0001-01-01T00:00:00Z"}),
            ),
        ];
        for (id, name, lock, pod, pause, st) in states {
            ids.put(id.as_bytes(), name.as_bytes())?;
            names.put(name.as_bytes(), id.as_bytes())?;
            all.put(id.as_bytes(), name.as_bytes())?;
            let b = ctrs.create_bucket(id.as_bytes())?;
            put_json(&b, "config", &ctr_config(id, name, lock, pod, pause))?;
            put_json(&b, "state", &st)?;
            let deps = b.create_bucket(b"dependencies")?;
            if id == INFRA {
                deps.put(MEMBER.as_bytes(), b"seed-member")?;
            }
            if let Some(p) = pod {
                b.put(b"pod-id", p.as_bytes())?;
            }
            if id == MEMBER {
                b.put(b"netns", b"/var/run/netns/cni-1234")?;
            }
        }
        // the member joins the infra's namespaces
        let member = ctrs.bucket(MEMBER.as_bytes())?.unwrap();
        let mut mc = ctr_config(MEMBER, "seed-member", 2, Some(POD), false);
        mc["Dependencies"] = json!([INFRA]);
        mc["netNsCtr"] = json!(INFRA);
        put_json(&member, "config", &mc)?;

        ids.put(POD.as_bytes(), b"seedpod")?;
        names.put(b"seedpod", POD.as_bytes())?;
        tx.bucket(b"allPods")?
            .unwrap()
            .put(POD.as_bytes(), b"seedpod")?;
        let p = tx.bucket(b"pod")?.unwrap().create_bucket(POD.as_bytes())?;
        put_json(
            &p,
            "config",
            &json!({"id": POD, "name": "seedpod", "labels": {"app": "old"}, "cgroupParent": "/libpod_parent",
                    "sharesNet": true, "infraConfig": {"makeInfraContainer": true, "infraPortBindings": null},
                    "created": "2019-08-01T09:59:00Z", "lockID": 0}),
        )?;
        put_json(
            &p,
            "state",
            &json!({"cgroupPath": format!("/libpod_parent/{POD}"), "InfraContainerID": INFRA}),
        )?;
        let members = p.create_bucket(b"containers")?;
        members.put(MEMBER.as_bytes(), b"seed-member")?;
        members.put(INFRA.as_bytes(), b"444444444444-infra")?;

        tx.bucket(b"allVolumes")?
            .unwrap()
            .put(b"oldvol", b"oldvol")?;
        let v = tx.bucket(b"vol")?.unwrap().create_bucket(b"oldvol")?;
        // 1.5: driver/options/scope/ctrSpecific, no lockID, no state key
        put_json(
            &v,
            "config",
            &json!({"name": "oldvol", "labels": {"k": "v"}, "mountPoint": "/var/lib/containers/storage/volumes/oldvol/_data",
                    "driver": "local", "options": {"o": "size=1m"}, "scope": "local", "ctrSpecific": true,
                    "uid": 0, "gid": 0}),
        )?;
        let users = v.create_bucket(b"vol-dependencies")?;
        users.put(EXITED.as_bytes(), EXITED.as_bytes())?;
        // podman's stale entry of a removed container
        users.put(STALE.as_bytes(), STALE.as_bytes())?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn podman_1_5_database_reads_through_the_state() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("bolt_state.db");
    write_seed_db(&db);
    let before = std::fs::read(&db).unwrap();
    let state = new_bolt(&StateOptions::at(&db)).unwrap();
    assert_eq!(state.store().layout(), Some(Layout::Podman));
    assert_eq!(state.store().podman_schema(), Some(PodmanSchema::Seed));
    let why = state
        .read_only_reason()
        .expect("a podman database is read-only");
    assert!(why.contains("podman 1.5"), "{why}");
    assert!(why.contains("import-podman"), "{why}");

    // containers: names, states, exit codes, labels, pods, infra
    let all = state.all_containers().unwrap();
    assert_eq!(all.len(), 3);
    let exited = state.lookup_container("seed-exited").unwrap();
    assert_eq!(exited.state.state, ContainerStatus::Exited);
    assert_eq!(exited.state.exit_code, 3);
    assert!(exited.state.exited);
    assert_eq!(exited.config.labels["era"], "seed");
    assert_eq!(
        exited.config.exit_command.len(),
        4,
        "1.5's exitCommand read"
    );
    assert_eq!(exited.config.named_volumes[0].name, "oldvol");
    assert_eq!(exited.config.extra["networks"], json!(["podman"]));
    // no exit-code bucket in 1.5: nothing recorded outside the state
    assert!(state.exit_code(EXITED).unwrap_err().is_not_found());

    let member = state.lookup_container("seed-member").unwrap();
    assert_eq!(member.state.state, ContainerStatus::Running);
    assert_eq!(member.state.net_ns, "/var/run/netns/cni-1234");
    assert_eq!(member.config.pod.as_deref(), Some(POD));
    assert!(!member.config.is_infra);
    assert!(member.state.extra.contains_key("execSessions"));
    let mut reset = member.state.clone();
    reset.reset_after_reboot();
    assert_eq!(reset.state, ContainerStatus::Configured);
    assert!(
        !reset.extra.contains_key("execSessions"),
        "old exec sessions cleared"
    );
    assert!(reset.net_ns.is_empty());

    let infra = state.container(INFRA).unwrap();
    assert!(infra.config.is_infra, "pause + pod = infra");
    assert_eq!(state.container_dependents(INFRA).unwrap(), vec![MEMBER]);

    // pod: infraConfig.makeInfraContainer mirrored as hasInfra
    let pod = state.lookup_pod("seedpod").unwrap();
    assert_eq!(pod.config.labels["app"], "old");
    assert_eq!(pod.config.extra["hasInfra"], json!(true));
    assert_eq!(pod.state.infra_container_id, INFRA);
    assert_eq!(state.pod_containers(POD).unwrap(), vec![MEMBER, INFRA]);

    // volume: 1.5's field names renamed, lock 0, state absent, stale user dropped
    let v = state.volume("oldvol").unwrap();
    assert_eq!(v.config.driver, "local");
    assert_eq!(v.config.options["o"], "size=1m");
    assert!(v.config.anonymous, "ctrSpecific became isAnon");
    assert_eq!(v.config.lock_id, 0);
    assert_eq!(v.state, VolumeState::default());
    assert_eq!(state.volume_users("oldvol").unwrap(), vec![EXITED]);

    // runtime-config
    let dbc = state.db_config().unwrap().unwrap();
    assert_eq!(dbc.tmp_dir, "/var/run/libpod");
    assert_eq!(dbc.graph_driver, "overlay");

    // read-only: a write is refused and the file is untouched
    assert!(matches!(state.refresh(), Err(StateError::ReadOnly { .. })));
    assert!(matches!(
        state.remove_volume("oldvol"),
        Err(StateError::ReadOnly { .. })
    ));
    assert_eq!(std::fs::read(&db).unwrap(), before);
    common::assert_boltcheck_ok(&db);
}

#[test]
fn podman_schema_eras_by_buckets() {
    let names = |l: &[&str]| -> Vec<Vec<u8>> { l.iter().map(|n| n.as_bytes().to_vec()).collect() };
    assert_eq!(
        PodmanSchema::of(&names(&["ctr", "id-registry", "name-registry"])),
        PodmanSchema::Seed
    );
    assert_eq!(
        PodmanSchema::of(&names(&["ctr", "exec", "id-registry"])),
        PodmanSchema::V2
    );
    assert_eq!(
        PodmanSchema::of(&names(&["ctr", "exec", "exit-code"])),
        PodmanSchema::V4
    );
    // the 4.3.1 fixtures are the 4.2+ era
    for dir in common::fixture_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("bolt_state.db");
        std::fs::copy(dir.join("bolt_state.db"), &db).unwrap();
        let state = new_bolt(&StateOptions::at(&db)).unwrap();
        assert_eq!(state.store().podman_schema(), Some(PodmanSchema::V4));
        assert!(state.read_only_reason().unwrap().contains("podman 4.2"));
    }
    // rpod's own database is writable and says so
    let tmp = tempfile::tempdir().unwrap();
    let own = new_bolt(&StateOptions::at(tmp.path().join("own.db"))).unwrap();
    assert_eq!(own.read_only_reason(), None);
    assert_eq!(own.store().podman_schema(), None);
    let ro = new_bolt(&StateOptions::at(tmp.path().join("own.db")).read_only(true)).unwrap();
    assert_eq!(
        ro.read_only_reason().as_deref(),
        Some("is opened read-only")
    );
}
