//! The conformance kit (feature `conformance`): every behaviour of a [`State`]
//! as a named test function taking a factory of fresh states, and macros that
//! expand into one `#[test]` per behaviour.
//!
//! ```text
//! fn fresh() -> rpod_state::conformance::Fresh {
//!     let dir = tempfile::tempdir().unwrap();
//!     let state = my_backend::open(&rpod_state::StateOptions::at(dir.path().join("db"))).unwrap();
//!     rpod_state::conformance::Fresh::new(state, dir)
//! }
//! rpod_state::conformance_tests!(fresh);
//! rpod_state::model_test!(fresh);
//! ```
//!
//! Each test gets its own fresh, empty state (the factory is called once or
//! more per test). Views in other namespaces come from
//! [`State::with_namespace`]. The list of tests is [`ALL`].
#![allow(missing_docs)]

use std::any::Any;
use std::collections::BTreeMap;
use std::ops::Deref;

use serde_json::json;

use crate::*;

pub mod crash;
pub mod model;

/// A fresh, empty state and whatever must live as long as it (a temp dir).
pub struct Fresh {
    state: Box<dyn State>,
    _guard: Box<dyn Any>,
}

impl std::fmt::Debug for Fresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fresh")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Fresh {
    /// Wraps a state and a guard dropped after it.
    pub fn new(state: Box<dyn State>, guard: impl Any) -> Self {
        Fresh {
            state,
            _guard: Box::new(guard),
        }
    }

    /// A fresh memory state.
    pub fn memory() -> Self {
        Fresh::new(
            open_memory(&StateOptions::at("/nonexistent/memory")).expect("memory state"),
            (),
        )
    }

    /// The state.
    pub fn state(&self) -> &(dyn State + 'static) {
        &*self.state
    }
}

impl Deref for Fresh {
    type Target = dyn State + 'static;
    fn deref(&self) -> &(dyn State + 'static) {
        &*self.state
    }
}

/// A factory of fresh states, as the test functions take it.
pub type Factory<'a> = &'a dyn Fn() -> Fresh;

/// One conformance test.
pub type TestFn = fn(Factory<'_>);

// ---------------------------------------------------------------- fixtures

/// A 64-character id made of `c`.
pub fn id_of(c: char) -> String {
    c.to_string().repeat(64)
}

/// A fixed time, so records compare equal everywhere.
pub fn fixed_time() -> Timestamp {
    Timestamp::parse("2026-12-04T19:58:24.081381928Z").expect("valid time")
}

/// A container config with id `id` and name `name`, a small spec and labels.
pub fn ctr_cfg(id: &str, name: &str) -> ContainerConfig {
    let mut extra = serde_json::Map::new();
    extra.insert("shmSize".into(), json!(65536000));
    ContainerConfig {
        id: id.into(),
        name: name.into(),
        lock_id: 1,
        created_time: fixed_time(),
        rootfs: "/srv/rootfs".into(),
        spec: json!({"ociVersion": "1.0.2-dev", "process": {"args": ["/bin/true"], "cwd": "/"}, "root": {"path": "rootfs"}}).into(),
        labels: BTreeMap::from([("team".to_string(), "a".to_string())]),
        runtime: "runc".into(),
        stop_signal: 15,
        stop_timeout: 10,
        network_mode: "none".into(),
        create_command: vec!["rpod".into(), "create".into(), name.into()],
        extra,
        ..Default::default()
    }
}

/// A container config in `ns`.
pub fn ctr_ns(id: &str, name: &str, ns: &str) -> ContainerConfig {
    ContainerConfig {
        namespace: ns.into(),
        ..ctr_cfg(id, name)
    }
}

/// A running container state with pids, netns, exec sessions and mounts.
pub fn running_state() -> ContainerState {
    let mut extra = serde_json::Map::new();
    extra.insert("checkpointedTime".into(), json!("2026-12-04T19:58:30Z"));
    extra.insert("Service".into(), json!({"servicePods": null}));
    ContainerState {
        state: ContainerStatus::Running,
        config_path: "/run/x/config.json".into(),
        run_dir: "/run/x".into(),
        mounted: true,
        mount_point: "/srv/rootfs".into(),
        started_time: fixed_time(),
        pid: 1234,
        conmon_pid: 1200,
        net_ns: "/run/netns/netns-1".into(),
        restart_count: 2,
        stopped_by_user: true,
        exec_sessions: BTreeMap::from([("e1".to_string(), json!({"id": "e1", "pid": 99}))]),
        bind_mounts: BTreeMap::from([("/etc/hosts".to_string(), "/run/x/hosts".to_string())]),
        network_status: json!({"podman": {"interfaces": {}}}),
        extra,
        ..Default::default()
    }
}

/// A pod config.
pub fn pod_cfg(id: &str, name: &str) -> PodConfig {
    PodConfig {
        id: id.into(),
        name: name.into(),
        labels: BTreeMap::from([("kind".to_string(), "pod".to_string())]),
        cgroup_parent: "/rpod".into(),
        created_time: fixed_time(),
        lock_id: 7,
        ..Default::default()
    }
}

/// A pod config in `ns`.
pub fn pod_ns(id: &str, name: &str, ns: &str) -> PodConfig {
    PodConfig {
        namespace: ns.into(),
        ..pod_cfg(id, name)
    }
}

/// A pod state with a cgroup path.
pub fn pod_state() -> PodState {
    PodState {
        cgroup_path: "/rpod/pod".into(),
        ..Default::default()
    }
}

/// A volume config.
pub fn vol_cfg(name: &str) -> VolumeConfig {
    VolumeConfig {
        name: name.into(),
        labels: BTreeMap::from([("purpose".to_string(), "test".to_string())]),
        driver: "local".into(),
        mount_point: format!("/var/lib/rpod/volumes/{name}/_data"),
        created_time: fixed_time(),
        lock_id: 3,
        ..Default::default()
    }
}

fn in_pod(mut c: ContainerConfig, pod: &str) -> ContainerConfig {
    c.pod = Some(pod.into());
    c
}

fn with_deps(mut c: ContainerConfig, deps: &[&str]) -> ContainerConfig {
    c.dependencies = deps.iter().map(|d| d.to_string()).collect();
    c
}

fn with_vols(mut c: ContainerConfig, vols: &[&str]) -> ContainerConfig {
    c.named_volumes = vols
        .iter()
        .map(|v| NamedVolume {
            name: v.to_string(),
            dest: format!("/{v}"),
            options: vec!["rw".into()],
        })
        .collect();
    c
}

fn add(s: &dyn State, c: &ContainerConfig) {
    s.add_container(c, &ContainerState::configured())
        .unwrap_or_else(|e| panic!("adding container {}: {e}", c.name));
}

fn add_pod(s: &dyn State, p: &PodConfig) {
    s.add_pod(p, &pod_state())
        .unwrap_or_else(|e| panic!("adding pod {}: {e}", p.name));
}

fn add_vol(s: &dyn State, name: &str) {
    s.add_volume(&vol_cfg(name), &VolumeState::default())
        .unwrap_or_else(|e| panic!("adding volume {name}: {e}"));
}

#[track_caller]
fn not_found<T: std::fmt::Debug>(r: Result<T, StateError>, kind: ObjectKind, what: &str) {
    match r {
        Err(StateError::NotFound { what: w, kind: k }) => {
            assert_eq!(k, kind, "wrong kind in NotFound");
            assert_eq!(w, what, "NotFound should name what was looked up");
            let msg = StateError::NotFound { what: w, kind: k }.to_string();
            assert!(msg.contains(what), "message {msg:?} should name {what:?}");
        }
        other => panic!("expected NotFound {kind} {what:?}, got {other:?}"),
    }
}

#[track_caller]
fn invalid<T: std::fmt::Debug>(r: Result<T, StateError>) {
    match r {
        Err(StateError::Invalid { .. }) => {}
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[track_caller]
fn in_use<T: std::fmt::Debug>(r: Result<T, StateError>, what: InUseBy, by: &[&str]) {
    match r {
        Err(StateError::InUse { by: b, what: w, .. }) => {
            assert_eq!(w, what);
            let mut b = b;
            b.sort();
            let mut want: Vec<String> = by.iter().map(|s| s.to_string()).collect();
            want.sort();
            assert_eq!(b, want, "InUse should list the users");
        }
        other => panic!("expected InUse {what:?}, got {other:?}"),
    }
}

fn names(v: &[ContainerRecord]) -> Vec<String> {
    v.iter().map(|r| r.config.name.clone()).collect()
}

// ------------------------------------------------------------- the list

/// Calls `$m!` with the given leading tokens, `;`, and every test name.
#[doc(hidden)]
#[macro_export]
macro_rules! __rpod_state_conformance_names {
    ($m:ident, $($pre:tt)*) => {
        $crate::$m! { $($pre)* ;
            // basics
            fresh_state_is_empty, backend_is_registered, fresh_namespace_is_empty,
            with_namespace_reports_namespace, views_share_data, schema_version_is_current,
            threads_share_one_state,
            // add / get containers
            add_and_get_container, add_two_containers_get_each, get_missing_container_not_found,
            get_container_empty_id_invalid, get_container_with_pod_id_not_found,
            has_container_true_and_false, has_container_pod_id_false, has_container_empty_id_errors,
            add_duplicate_id_fails, add_duplicate_name_fails, add_container_with_pod_id_fails,
            add_container_with_pod_name_fails, add_container_empty_id_fails,
            add_container_empty_name_fails, add_container_nul_name_fails, failed_add_leaves_no_trace,
            extra_fields_round_trip, podman_record_round_trips, timestamps_keep_go_format,
            status_numbers_are_podmans,
            // state
            container_state_returns_stored, save_container_state_round_trips,
            save_state_missing_container_fails, container_state_missing_fails,
            save_state_leaves_config_unchanged, save_state_empty_id_invalid,
            // listing
            all_containers_empty, all_containers_one, all_containers_ordered_by_id,
            all_containers_include_states, all_containers_include_pod_members,
            for_each_container_matches_all_containers, for_each_container_sees_only_its_namespace,
            for_each_container_stops_at_an_error,
            // lookup
            lookup_by_full_id, lookup_by_name, lookup_by_unique_prefix, lookup_one_char_prefix,
            lookup_ambiguous_prefix_counts, lookup_missing_names_input, lookup_empty_invalid,
            lookup_full_id_beats_name, lookup_name_beats_prefix, lookup_pod_name_not_container,
            lookup_prefix_ignores_pods, lookup_pod_only_prefix_not_found,
            lookup_after_remove_not_found, lookup_after_rename,
            // dependencies
            dependency_recorded, two_dependents, no_dependents, dependents_of_missing_fails,
            dependency_must_exist, dependency_on_self_invalid, dependency_on_pod_invalid,
            duplicate_dependency_listed_once, cannot_remove_with_dependents,
            can_remove_after_dependent_removed, removing_dependent_clears_edge,
            dependency_chain_removal, dependency_other_namespace_invalid,
            dependency_in_pod_for_podless_invalid, dependency_outside_pod_invalid,
            dependency_in_same_pod_ok, dependents_deduplicated,
            // remove
            remove_container_then_gone, remove_missing_container_fails,
            remove_frees_name_and_id, remove_empty_id_invalid, remove_twice_fails,
            remove_keeps_other_containers,
            // rewrite
            rewrite_changes_unindexed_fields, rewrite_missing_fails, rewrite_rename,
            rewrite_rename_to_taken_container_name_fails, rewrite_rename_to_pod_name_fails,
            rewrite_cannot_change_pod, rewrite_cannot_change_dependencies,
            rewrite_cannot_change_namespace, rewrite_cannot_change_volumes, rewrite_keeps_state,
            // pods
            add_and_get_pod, get_missing_pod_not_found, get_pod_empty_id_invalid,
            get_pod_with_container_id_not_found, has_pod_true_and_false, has_pod_container_id_false,
            add_pod_duplicate_id_fails, add_pod_duplicate_name_fails, add_pod_with_container_id_fails,
            add_pod_with_container_name_fails, add_pod_empty_name_fails, lookup_pod_by_id,
            lookup_pod_by_name, lookup_pod_by_prefix, lookup_pod_ambiguous_prefix,
            lookup_pod_container_name_fails, lookup_pod_missing, remove_pod_then_gone,
            remove_missing_pod_fails, remove_nonempty_pod_fails, remove_pod_after_members_removed,
            remove_pod_frees_name, all_pods_empty, all_pods_ordered, save_pod_state_round_trips,
            save_pod_state_missing_fails, rewrite_pod_config, rewrite_pod_rename,
            rewrite_pod_rename_taken_fails, rewrite_pod_missing_fails,
            // pod membership
            add_container_to_pod, pod_containers_empty, pod_containers_many_sorted,
            pod_containers_missing_pod_fails, pod_has_container_false_for_other,
            pod_has_container_missing_pod_fails, add_to_missing_pod_fails,
            add_to_container_as_pod_fails, add_to_pod_other_namespace_fails,
            removing_member_leaves_pod, remove_pod_containers_removes_all,
            remove_pod_containers_empty_pod, remove_pod_containers_preserves_outside,
            remove_pod_containers_internal_deps_ok, outside_container_cannot_depend_on_member,
            remove_pod_containers_missing_pod_fails, remove_pod_containers_frees_names,
            // volumes
            add_and_get_volume, get_missing_volume_not_found, get_volume_empty_invalid,
            has_volume_true_and_false, add_volume_duplicate_fails, volume_names_separate_from_containers,
            lookup_volume_exact, lookup_volume_prefix, lookup_volume_ambiguous, lookup_volume_missing,
            remove_volume_then_gone, remove_missing_volume_fails, remove_volume_in_use_fails,
            remove_volume_after_user_removed, volume_users_sorted, volume_users_missing_fails,
            container_with_missing_volume_fails, all_volumes_ordered, save_volume_state_round_trips,
            save_volume_state_missing_fails, rewrite_volume_config, rewrite_volume_missing_fails,
            volume_used_twice_listed_once, volume_users_cleared_by_pod_removal,
            // exit codes
            exit_code_round_trips, exit_code_missing_not_found, exit_code_outlives_container,
            exit_code_replaced, prune_removes_old_keeps_new, prune_nothing_returns_zero,
            add_exit_code_is_timestamped_now, exit_code_extremes, exit_code_empty_id_invalid,
            remove_with_exit_code_records_and_removes, remove_with_exit_code_missing_fails,
            remove_with_exit_code_in_use_keeps_both,
            // db config
            db_config_none_initially, validate_stores_on_first_use, validate_same_ok,
            validate_mismatch_names_key_and_values, validate_checks_every_key,
            validate_fills_empty_stored_values, validate_mismatch_keeps_stored,
            db_config_shared_by_views,
            // namespaces
            ns_rejects_other_namespace_container, ns_accepts_own_namespace, empty_ns_sees_all,
            ns_lists_only_own, ns_get_other_not_found, ns_lookup_other_name_not_found,
            ns_prefix_ignores_other_namespaces, ns_has_container_other_false,
            ns_remove_other_not_found, ns_names_are_global, ns_ids_are_global, ns_pods_filtered,
            ns_pod_lookup_filtered, ns_volumes_filtered, ns_save_state_other_not_found,
            ns_dependents_other_not_found, ns_rejects_other_namespace_pod,
            ns_rejects_other_namespace_volume,
            // refresh
            refresh_running_becomes_configured, refresh_keeps_exited, refresh_keeps_configs,
            refresh_clears_runtime_fields, refresh_clears_pod_cgroup, refresh_clears_volume_mounts,
            refresh_covers_all_namespaces, refresh_empty_ok, refresh_resets_podman_extras,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __rpod_state_conformance_emit {
    ($factory:expr ; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::conformance::$name(&$factory)
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __rpod_state_conformance_all {
    ( ; $($name:ident),* $(,)?) => {
        /// Every conformance test, by name.
        pub const ALL: &[(&str, TestFn)] = &[ $( (stringify!($name), $name as TestFn) ),* ];
    };
}

/// Expands into one `#[test]` per conformance behaviour, each calling the
/// factory (`fn() -> Fresh`) for fresh states.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::__rpod_state_conformance_names!(__rpod_state_conformance_emit, $factory);
    };
}

/// Expands into a `#[test]` running the model test (random operation
/// sequences against the backend and the memory reference).
#[macro_export]
macro_rules! model_test {
    ($factory:expr) => {
        #[test]
        fn model_matches_memory_reference() {
            $crate::conformance::model::run(&$factory, 48);
        }
    };
}

__rpod_state_conformance_names!(__rpod_state_conformance_all,);

// ------------------------------------------------------------ basics

pub fn fresh_state_is_empty(f: Factory<'_>) {
    let s = f();
    assert!(s.all_containers().unwrap().is_empty());
    assert!(s.all_pods().unwrap().is_empty());
    assert!(s.all_volumes().unwrap().is_empty());
    assert_eq!(s.db_config().unwrap(), None);
}

pub fn backend_is_registered(f: Factory<'_>) {
    let s = f();
    let reg = rpod_registry::lookup(rpod_registry::kinds::STATE, s.backend())
        .unwrap_or_else(|e| panic!("backend {} is not registered: {e}", s.backend()));
    reg.factory::<StateFactory>()
        .expect("factory has the StateFactory type");
}

pub fn fresh_namespace_is_empty(f: Factory<'_>) {
    assert_eq!(f().namespace(), "");
}

pub fn with_namespace_reports_namespace(f: Factory<'_>) {
    let s = f();
    let v = s.with_namespace("ns1").unwrap();
    assert_eq!(v.namespace(), "ns1");
    assert_eq!(v.backend(), s.backend());
    assert_eq!(v.path(), s.path());
}

pub fn views_share_data(f: Factory<'_>) {
    let s = f();
    let v = s.with_namespace("").unwrap();
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    assert_eq!(v.container(&id_of('a')).unwrap().config.name, "a");
    v.remove_container(&id_of('a')).unwrap();
    assert!(!s.has_container(&id_of('a')).unwrap());
}

pub fn schema_version_is_current(f: Factory<'_>) {
    assert_eq!(f().schema_version(), SCHEMA_VERSION);
}

pub fn threads_share_one_state(f: Factory<'_>) {
    let s = f();
    let st: &dyn State = &*s;
    std::thread::scope(|sc| {
        for t in 0..4 {
            sc.spawn(move || {
                for i in 0..8 {
                    let id = format!("{t}{i}{}", "0".repeat(62));
                    // names clash across threads: each name is won exactly once
                    let _ = st.add_container(
                        &ctr_cfg(&id, &format!("n{i}")),
                        &ContainerState::configured(),
                    );
                }
            });
        }
    });
    let all = s.all_containers().unwrap();
    assert_eq!(all.len(), 8, "each of the 8 names is taken exactly once");
    let mut n = names(&all);
    n.sort();
    n.dedup();
    assert_eq!(n.len(), 8);
}

// ------------------------------------------------- add / get containers

pub fn add_and_get_container(f: Factory<'_>) {
    let s = f();
    let c = ctr_cfg(&id_of('a'), "test1");
    let st = running_state();
    s.add_container(&c, &st).unwrap();
    let got = s.container(&c.id).unwrap();
    assert_eq!(got.config, c);
    assert_eq!(got.state, st);
}

pub fn add_two_containers_get_each(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    add(&*s, &ctr_cfg(&id_of('b'), "b"));
    assert_eq!(s.container(&id_of('a')).unwrap().config.name, "a");
    assert_eq!(s.container(&id_of('b')).unwrap().config.name, "b");
}

pub fn get_missing_container_not_found(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    not_found(s.container(&id_of('b')), ObjectKind::Container, &id_of('b'));
}

pub fn get_container_empty_id_invalid(f: Factory<'_>) {
    invalid(f().container(""));
}

pub fn get_container_with_pod_id_not_found(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "pod"));
    not_found(s.container(&id_of('p')), ObjectKind::Container, &id_of('p'));
}

pub fn has_container_true_and_false(f: Factory<'_>) {
    let s = f();
    assert!(!s.has_container(&id_of('a')).unwrap());
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    assert!(s.has_container(&id_of('a')).unwrap());
}

pub fn has_container_pod_id_false(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "pod"));
    assert!(!s.has_container(&id_of('p')).unwrap());
}

pub fn has_container_empty_id_errors(f: Factory<'_>) {
    invalid(f().has_container(""));
}

pub fn add_duplicate_id_fails(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    match s.add_container(
        &ctr_cfg(&id_of('a'), "other"),
        &ContainerState::configured(),
    ) {
        Err(StateError::IdInUse { id, kind }) => {
            assert_eq!(id, id_of('a'));
            assert_eq!(kind, ObjectKind::Container);
        }
        other => panic!("expected IdInUse, got {other:?}"),
    }
    assert!(s.lookup_container("other").is_err());
}

pub fn add_duplicate_name_fails(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    match s.add_container(&ctr_cfg(&id_of('b'), "a"), &ContainerState::configured()) {
        Err(StateError::NameInUse { name, holder, kind }) => {
            assert_eq!(name, "a");
            assert_eq!(holder, id_of('a'));
            assert_eq!(kind, ObjectKind::Container);
        }
        other => panic!("expected NameInUse, got {other:?}"),
    }
    assert!(!s.has_container(&id_of('b')).unwrap());
}

pub fn add_container_with_pod_id_fails(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "pod"));
    match s.add_container(&ctr_cfg(&id_of('p'), "c"), &ContainerState::configured()) {
        Err(StateError::IdInUse { kind, .. }) => assert_eq!(kind, ObjectKind::Pod),
        other => panic!("expected IdInUse, got {other:?}"),
    }
}

pub fn add_container_with_pod_name_fails(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "pod"));
    match s.add_container(&ctr_cfg(&id_of('a'), "pod"), &ContainerState::configured()) {
        Err(StateError::NameInUse { kind, holder, .. }) => {
            assert_eq!(kind, ObjectKind::Pod);
            assert_eq!(holder, id_of('p'));
        }
        other => panic!("expected NameInUse, got {other:?}"),
    }
}

pub fn add_container_empty_id_fails(f: Factory<'_>) {
    invalid(f().add_container(&ctr_cfg("", "a"), &ContainerState::configured()));
}

pub fn add_container_empty_name_fails(f: Factory<'_>) {
    invalid(f().add_container(&ctr_cfg(&id_of('a'), ""), &ContainerState::configured()));
}

pub fn add_container_nul_name_fails(f: Factory<'_>) {
    let s = f();
    invalid(s.add_container(&ctr_cfg(&id_of('a'), "a\0b"), &ContainerState::configured()));
    invalid(s.add_container(&ctr_cfg("a\0b", "a"), &ContainerState::configured()));
    assert!(s.all_containers().unwrap().is_empty());
}

pub fn failed_add_leaves_no_trace(f: Factory<'_>) {
    let s = f();
    let bad = with_deps(ctr_cfg(&id_of('a'), "a"), &[&id_of('z')]);
    assert!(s
        .add_container(&bad, &ContainerState::configured())
        .is_err());
    not_found(s.lookup_container("a"), ObjectKind::Container, "a");
    assert!(!s.has_container(&id_of('a')).unwrap());
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    assert!(s.container_dependents(&id_of('a')).unwrap().is_empty());
}

pub fn extra_fields_round_trip(f: Factory<'_>) {
    let s = f();
    let mut c = ctr_cfg(&id_of('a'), "a");
    c.extra
        .insert("future".into(), json!({"nested": [1, 2, 3]}));
    let mut st = running_state();
    st.extra.insert("someNewField".into(), json!("kept"));
    s.add_container(&c, &st).unwrap();
    let got = s.container(&c.id).unwrap();
    assert_eq!(got.config.extra["future"], json!({"nested": [1, 2, 3]}));
    assert_eq!(got.state.extra["someNewField"], json!("kept"));
}

/// A container config/state pair as podman 4.3.1 writes them (abridged).
pub const PODMAN_CONFIG: &str = r#"{"spec":{"ociVersion":"1.0.2-dev","root":{"path":"rootfs"}},
 "id":"14ef730b65db5cede52a0e583e8a9635f4d84dfca4662f259eaee64361fa266c","name":"fx-fail","lockID":3,
 "CreateCommand":["podman","run","--name","fx-fail"],"idMappingsOptions":{"HostUIDMapping":true,"UIDMap":null},
 "Dependencies":null,"rootfs":"/srv/rootfs","shmSize":65536000,"staticDir":"/var/lib/containers/storage/x/userdata",
 "namedVolumes":[{"volumeName":"fxvol","dest":"/data","options":["rw","rprivate"]}],
 "networkMode":"bridge","command":["/bin/sh","-c","exit 42"],"stopSignal":15,"stopTimeout":10,
 "createdTime":"2026-12-04T19:58:24.081381928Z","cgroupManager":"cgroupfs","logPath":"/x/ctr.log",
 "conmonPidFile":"/run/x/conmon.pid","runtime":"runc","healthcheck":null,"umask":"0022"}"#;

/// The state that goes with [`PODMAN_CONFIG`].
pub const PODMAN_STATE: &str = r#"{"state":6,"configPath":"/x/config.json","runDir":"/run/x",
 "startedTime":"2026-12-04T19:58:24.208662763Z","finishedTime":"2026-12-04T19:58:24.209055426Z",
 "exitCode":42,"exited":true,"bindMounts":{"/dev/shm":"/x/shm"},"Service":{"servicePods":null},
 "checkpointedTime":"0001-01-01T00:00:00Z","restoredTime":"0001-01-01T00:00:00Z"}"#;

pub fn podman_record_round_trips(f: Factory<'_>) {
    let s = f();
    add_vol(&*s, "fxvol");
    let c: ContainerConfig = serde_json::from_str(PODMAN_CONFIG).unwrap();
    let st: ContainerState = serde_json::from_str(PODMAN_STATE).unwrap();
    assert_eq!(st.state, ContainerStatus::Exited);
    assert_eq!(st.exit_code, 42);
    assert_eq!(c.named_volumes[0].name, "fxvol");
    s.add_container(&c, &st).unwrap();
    let got = s.lookup_container("fx-fail").unwrap();
    let mut want_c: serde_json::Value = serde_json::from_str(PODMAN_CONFIG).unwrap();
    // Go writes null for an empty list; rpod writes [] — the only difference.
    want_c["Dependencies"] = json!([]);
    assert_eq!(serde_json::to_value(&got.config).unwrap(), want_c);
    let want_s: serde_json::Value = serde_json::from_str(PODMAN_STATE).unwrap();
    assert_eq!(serde_json::to_value(&got.state).unwrap(), want_s);
    assert_eq!(s.volume_users("fxvol").unwrap(), vec![c.id.clone()]);
}

pub fn timestamps_keep_go_format(f: Factory<'_>) {
    let s = f();
    let mut st = ContainerState::configured();
    st.started_time = Timestamp::parse("2026-12-04T19:58:24.2086627Z").unwrap();
    s.add_container(&ctr_cfg(&id_of('a'), "a"), &st).unwrap();
    let got = serde_json::to_value(s.container_state(&id_of('a')).unwrap()).unwrap();
    assert_eq!(got["startedTime"], "2026-12-04T19:58:24.2086627Z");
    assert_eq!(got["finishedTime"], "0001-01-01T00:00:00Z");
}

pub fn status_numbers_are_podmans(f: Factory<'_>) {
    let s = f();
    for (i, st) in ContainerStatus::ALL.iter().enumerate() {
        let id = format!("{i}{}", "f".repeat(63));
        let state = ContainerState {
            state: *st,
            ..Default::default()
        };
        s.add_container(&ctr_cfg(&id, &format!("s{i}")), &state)
            .unwrap();
        assert_eq!(s.container_state(&id).unwrap().state, *st);
        assert_eq!(serde_json::to_value(&state).unwrap()["state"], json!(i));
    }
}

// ------------------------------------------------------------- state

pub fn container_state_returns_stored(f: Factory<'_>) {
    let s = f();
    s.add_container(&ctr_cfg(&id_of('a'), "a"), &running_state())
        .unwrap();
    assert_eq!(s.container_state(&id_of('a')).unwrap(), running_state());
}

pub fn save_container_state_round_trips(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    let st = ContainerState {
        state: ContainerStatus::Stopped,
        exit_code: 127,
        exited: true,
        finished_time: fixed_time(),
        ..Default::default()
    };
    s.save_container_state(&id_of('a'), &st).unwrap();
    assert_eq!(s.container_state(&id_of('a')).unwrap(), st);
    assert_eq!(s.container(&id_of('a')).unwrap().state, st);
}

pub fn save_state_missing_container_fails(f: Factory<'_>) {
    not_found(
        f().save_container_state(&id_of('a'), &running_state()),
        ObjectKind::Container,
        &id_of('a'),
    );
}

pub fn container_state_missing_fails(f: Factory<'_>) {
    not_found(
        f().container_state(&id_of('a')),
        ObjectKind::Container,
        &id_of('a'),
    );
}

pub fn save_state_leaves_config_unchanged(f: Factory<'_>) {
    let s = f();
    let c = ctr_cfg(&id_of('a'), "a");
    add(&*s, &c);
    s.save_container_state(&id_of('a'), &running_state())
        .unwrap();
    assert_eq!(s.container(&id_of('a')).unwrap().config, c);
}

pub fn save_state_empty_id_invalid(f: Factory<'_>) {
    invalid(f().save_container_state("", &running_state()));
}

// ------------------------------------------------------------- listing

pub fn all_containers_empty(f: Factory<'_>) {
    assert!(f().all_containers().unwrap().is_empty());
}

pub fn all_containers_one(f: Factory<'_>) {
    let s = f();
    let c = ctr_cfg(&id_of('a'), "a");
    add(&*s, &c);
    let all = s.all_containers().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].config, c);
}

pub fn all_containers_ordered_by_id(f: Factory<'_>) {
    let s = f();
    for c in ['c', 'a', 'b'] {
        add(&*s, &ctr_cfg(&id_of(c), &format!("n{c}")));
    }
    assert_eq!(names(&s.all_containers().unwrap()), ["na", "nb", "nc"]);
}

pub fn all_containers_include_states(f: Factory<'_>) {
    let s = f();
    s.add_container(&ctr_cfg(&id_of('a'), "a"), &running_state())
        .unwrap();
    add(&*s, &ctr_cfg(&id_of('b'), "b"));
    let all = s.all_containers().unwrap();
    assert_eq!(all[0].state, running_state());
    assert_eq!(all[1].state.state, ContainerStatus::Configured);
}

pub fn all_containers_include_pod_members(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "pod"));
    add(&*s, &in_pod(ctr_cfg(&id_of('a'), "a"), &id_of('p')));
    add(&*s, &ctr_cfg(&id_of('b'), "b"));
    assert_eq!(names(&s.all_containers().unwrap()), ["a", "b"]);
}

// ------------------------------------------------------------- lookup

pub fn lookup_by_full_id(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    assert_eq!(s.lookup_container(&id_of('a')).unwrap().config.name, "a");
}

pub fn lookup_by_name(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "web"));
    assert_eq!(s.lookup_container("web").unwrap().config.id, id_of('a'));
}

pub fn lookup_by_unique_prefix(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    add(&*s, &ctr_cfg(&id_of('b'), "b"));
    assert_eq!(s.lookup_container("aaaaaaaa").unwrap().config.name, "a");
}

pub fn lookup_one_char_prefix(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "x"));
    add(&*s, &ctr_cfg(&id_of('b'), "y"));
    assert_eq!(s.lookup_container("b").unwrap().config.name, "y");
}

pub fn lookup_ambiguous_prefix_counts(f: Factory<'_>) {
    let s = f();
    let zero = "0".repeat(64);
    add(&*s, &ctr_cfg(&zero, "a"));
    add(&*s, &ctr_cfg(&format!("{}1", "0".repeat(63)), "b"));
    add(&*s, &ctr_cfg(&format!("{}2", "0".repeat(63)), "c"));
    match s.lookup_container("00000000") {
        Err(e @ StateError::Ambiguous { .. }) => {
            let StateError::Ambiguous {
                count, ref prefix, ..
            } = e
            else {
                unreachable!()
            };
            assert_eq!(count, 3);
            assert_eq!(prefix, "00000000");
            assert!(e.to_string().contains('3'), "{e}");
        }
        other => panic!("expected Ambiguous, got {other:?}"),
    }
    // the full id still resolves exactly
    assert_eq!(s.lookup_container(&zero).unwrap().config.name, "a");
}

pub fn lookup_missing_names_input(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    not_found(
        s.lookup_container("nothing-here"),
        ObjectKind::Container,
        "nothing-here",
    );
}

pub fn lookup_empty_invalid(f: Factory<'_>) {
    invalid(f().lookup_container(""));
}

pub fn lookup_full_id_beats_name(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('b'), "b"));
    add(&*s, &ctr_cfg(&id_of('a'), &id_of('b')));
    assert_eq!(s.lookup_container(&id_of('b')).unwrap().config.name, "b");
}

pub fn lookup_name_beats_prefix(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "first"));
    add(&*s, &ctr_cfg(&id_of('b'), "aaa"));
    assert_eq!(s.lookup_container("aaa").unwrap().config.id, id_of('b'));
}

pub fn lookup_pod_name_not_container(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "mypod"));
    not_found(s.lookup_container("mypod"), ObjectKind::Container, "mypod");
}

pub fn lookup_prefix_ignores_pods(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&format!("ab{}", "1".repeat(62)), "c"));
    add_pod(&*s, &pod_cfg(&format!("ab{}", "2".repeat(62)), "p"));
    assert_eq!(s.lookup_container("ab").unwrap().config.name, "c");
    assert_eq!(s.lookup_pod("ab").unwrap().config.name, "p");
}

pub fn lookup_pod_only_prefix_not_found(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "p"));
    not_found(s.lookup_container("ppp"), ObjectKind::Container, "ppp");
}

pub fn lookup_after_remove_not_found(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    s.remove_container(&id_of('a')).unwrap();
    not_found(s.lookup_container("a"), ObjectKind::Container, "a");
    not_found(s.lookup_container("aaaa"), ObjectKind::Container, "aaaa");
}

pub fn lookup_after_rename(f: Factory<'_>) {
    let s = f();
    let mut c = ctr_cfg(&id_of('a'), "old");
    add(&*s, &c);
    c.name = "new".into();
    s.rewrite_container_config(&c).unwrap();
    assert_eq!(s.lookup_container("new").unwrap().config.id, id_of('a'));
    not_found(s.lookup_container("old"), ObjectKind::Container, "old");
}

// ------------------------------------------------------------- dependencies

pub fn dependency_recorded(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    add(&*s, &with_deps(ctr_cfg(&id_of('b'), "b"), &[&id_of('a')]));
    assert_eq!(
        s.container_dependents(&id_of('a')).unwrap(),
        vec![id_of('b')]
    );
    assert_eq!(
        s.container(&id_of('b')).unwrap().config.dependencies,
        vec![id_of('a')]
    );
}

pub fn two_dependents(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    add(&*s, &with_deps(ctr_cfg(&id_of('c'), "c"), &[&id_of('a')]));
    add(&*s, &with_deps(ctr_cfg(&id_of('b'), "b"), &[&id_of('a')]));
    assert_eq!(
        s.container_dependents(&id_of('a')).unwrap(),
        vec![id_of('b'), id_of('c')]
    );
}

pub fn no_dependents(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    assert!(s.container_dependents(&id_of('a')).unwrap().is_empty());
}

pub fn dependents_of_missing_fails(f: Factory<'_>) {
    not_found(
        f().container_dependents(&id_of('a')),
        ObjectKind::Container,
        &id_of('a'),
    );
}

pub fn dependency_must_exist(f: Factory<'_>) {
    let s = f();
    not_found(
        s.add_container(
            &with_deps(ctr_cfg(&id_of('b'), "b"), &[&id_of('a')]),
            &ContainerState::configured(),
        ),
        ObjectKind::Container,
        &id_of('a'),
    );
}

pub fn dependency_on_self_invalid(f: Factory<'_>) {
    invalid(f().add_container(
        &with_deps(ctr_cfg(&id_of('a'), "a"), &[&id_of('a')]),
        &ContainerState::configured(),
    ));
}

pub fn dependency_on_pod_invalid(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "p"));
    invalid(s.add_container(
        &with_deps(ctr_cfg(&id_of('a'), "a"), &[&id_of('p')]),
        &ContainerState::configured(),
    ));
}

pub fn duplicate_dependency_listed_once(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    add(
        &*s,
        &with_deps(ctr_cfg(&id_of('b'), "b"), &[&id_of('a'), &id_of('a')]),
    );
    assert_eq!(
        s.container_dependents(&id_of('a')).unwrap(),
        vec![id_of('b')]
    );
    s.remove_container(&id_of('b')).unwrap();
    s.remove_container(&id_of('a')).unwrap();
}

pub fn cannot_remove_with_dependents(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    add(&*s, &with_deps(ctr_cfg(&id_of('b'), "b"), &[&id_of('a')]));
    in_use(
        s.remove_container(&id_of('a')),
        InUseBy::Dependents,
        &[&id_of('b')],
    );
    assert!(s.has_container(&id_of('a')).unwrap());
}

pub fn can_remove_after_dependent_removed(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    add(&*s, &with_deps(ctr_cfg(&id_of('b'), "b"), &[&id_of('a')]));
    s.remove_container(&id_of('b')).unwrap();
    s.remove_container(&id_of('a')).unwrap();
    assert!(s.all_containers().unwrap().is_empty());
}

pub fn removing_dependent_clears_edge(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    add(&*s, &with_deps(ctr_cfg(&id_of('b'), "b"), &[&id_of('a')]));
    s.remove_container(&id_of('b')).unwrap();
    assert!(s.container_dependents(&id_of('a')).unwrap().is_empty());
}

pub fn dependency_chain_removal(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    add(&*s, &with_deps(ctr_cfg(&id_of('b'), "b"), &[&id_of('a')]));
    add(&*s, &with_deps(ctr_cfg(&id_of('c'), "c"), &[&id_of('b')]));
    in_use(
        s.remove_container(&id_of('b')),
        InUseBy::Dependents,
        &[&id_of('c')],
    );
    s.remove_container(&id_of('c')).unwrap();
    in_use(
        s.remove_container(&id_of('a')),
        InUseBy::Dependents,
        &[&id_of('b')],
    );
    s.remove_container(&id_of('b')).unwrap();
    s.remove_container(&id_of('a')).unwrap();
}

pub fn dependency_other_namespace_invalid(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_ns(&id_of('a'), "a", "ns1"));
    invalid(s.add_container(
        &with_deps(ctr_ns(&id_of('b'), "b", "ns2"), &[&id_of('a')]),
        &ContainerState::configured(),
    ));
}

pub fn dependency_in_pod_for_podless_invalid(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "p"));
    add(&*s, &in_pod(ctr_cfg(&id_of('a'), "a"), &id_of('p')));
    invalid(s.add_container(
        &with_deps(ctr_cfg(&id_of('b'), "b"), &[&id_of('a')]),
        &ContainerState::configured(),
    ));
}

pub fn dependency_outside_pod_invalid(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "p"));
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    invalid(s.add_container(
        &in_pod(
            with_deps(ctr_cfg(&id_of('b'), "b"), &[&id_of('a')]),
            &id_of('p'),
        ),
        &ContainerState::configured(),
    ));
    assert!(s.pod_containers(&id_of('p')).unwrap().is_empty());
}

pub fn dependency_in_same_pod_ok(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "p"));
    add(&*s, &in_pod(ctr_cfg(&id_of('a'), "a"), &id_of('p')));
    add(
        &*s,
        &in_pod(
            with_deps(ctr_cfg(&id_of('b'), "b"), &[&id_of('a')]),
            &id_of('p'),
        ),
    );
    assert_eq!(
        s.container_dependents(&id_of('a')).unwrap(),
        vec![id_of('b')]
    );
}

pub fn dependents_deduplicated(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    add(&*s, &ctr_cfg(&id_of('b'), "b"));
    add(
        &*s,
        &with_deps(
            ctr_cfg(&id_of('c'), "c"),
            &[&id_of('a'), &id_of('b'), &id_of('a')],
        ),
    );
    assert_eq!(
        s.container_dependents(&id_of('a')).unwrap(),
        vec![id_of('c')]
    );
    assert_eq!(
        s.container_dependents(&id_of('b')).unwrap(),
        vec![id_of('c')]
    );
}

// ------------------------------------------------------------- remove

pub fn remove_container_then_gone(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    s.remove_container(&id_of('a')).unwrap();
    not_found(s.container(&id_of('a')), ObjectKind::Container, &id_of('a'));
    assert!(s.all_containers().unwrap().is_empty());
}

pub fn remove_missing_container_fails(f: Factory<'_>) {
    not_found(
        f().remove_container(&id_of('a')),
        ObjectKind::Container,
        &id_of('a'),
    );
}

pub fn remove_frees_name_and_id(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    s.remove_container(&id_of('a')).unwrap();
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    add_pod(&*s, &pod_cfg(&id_of('b'), "b"));
    s.remove_pod(&id_of('b')).unwrap();
    add(&*s, &ctr_cfg(&id_of('b'), "b"));
}

pub fn remove_empty_id_invalid(f: Factory<'_>) {
    invalid(f().remove_container(""));
}

pub fn remove_twice_fails(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    s.remove_container(&id_of('a')).unwrap();
    not_found(
        s.remove_container(&id_of('a')),
        ObjectKind::Container,
        &id_of('a'),
    );
}

pub fn remove_keeps_other_containers(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    add(&*s, &ctr_cfg(&id_of('b'), "b"));
    s.remove_container(&id_of('a')).unwrap();
    assert_eq!(names(&s.all_containers().unwrap()), ["b"]);
    assert_eq!(s.lookup_container("b").unwrap().config.id, id_of('b'));
}

// ------------------------------------------------------------- rewrite

pub fn rewrite_changes_unindexed_fields(f: Factory<'_>) {
    let s = f();
    let mut c = ctr_cfg(&id_of('a'), "a");
    add(&*s, &c);
    c.lock_id = 99;
    c.labels.insert("new".into(), "label".into());
    c.conmon_pid_file = "/static/conmon.pid".into();
    s.rewrite_container_config(&c).unwrap();
    assert_eq!(s.container(&id_of('a')).unwrap().config, c);
}

pub fn rewrite_missing_fails(f: Factory<'_>) {
    not_found(
        f().rewrite_container_config(&ctr_cfg(&id_of('a'), "a")),
        ObjectKind::Container,
        &id_of('a'),
    );
}

pub fn rewrite_rename(f: Factory<'_>) {
    let s = f();
    let mut c = ctr_cfg(&id_of('a'), "old");
    add(&*s, &c);
    c.name = "new".into();
    s.rewrite_container_config(&c).unwrap();
    assert_eq!(s.container(&id_of('a')).unwrap().config.name, "new");
    add(&*s, &ctr_cfg(&id_of('b'), "old"));
    match s.add_container(&ctr_cfg(&id_of('c'), "new"), &ContainerState::configured()) {
        Err(StateError::NameInUse { .. }) => {}
        other => panic!("expected NameInUse, got {other:?}"),
    }
}

pub fn rewrite_rename_to_taken_container_name_fails(f: Factory<'_>) {
    let s = f();
    let mut c = ctr_cfg(&id_of('a'), "a");
    add(&*s, &c);
    add(&*s, &ctr_cfg(&id_of('b'), "b"));
    c.name = "b".into();
    assert!(matches!(
        s.rewrite_container_config(&c),
        Err(StateError::NameInUse { .. })
    ));
    assert_eq!(s.lookup_container("a").unwrap().config.id, id_of('a'));
}

pub fn rewrite_rename_to_pod_name_fails(f: Factory<'_>) {
    let s = f();
    let mut c = ctr_cfg(&id_of('a'), "a");
    add(&*s, &c);
    add_pod(&*s, &pod_cfg(&id_of('p'), "p"));
    c.name = "p".into();
    assert!(matches!(
        s.rewrite_container_config(&c),
        Err(StateError::NameInUse { .. })
    ));
}

pub fn rewrite_cannot_change_pod(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "p"));
    let c = ctr_cfg(&id_of('a'), "a");
    add(&*s, &c);
    invalid(s.rewrite_container_config(&in_pod(c, &id_of('p'))));
    assert!(s.pod_containers(&id_of('p')).unwrap().is_empty());
}

pub fn rewrite_cannot_change_dependencies(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    let c = ctr_cfg(&id_of('b'), "b");
    add(&*s, &c);
    invalid(s.rewrite_container_config(&with_deps(c, &[&id_of('a')])));
    assert!(s.container_dependents(&id_of('a')).unwrap().is_empty());
}

pub fn rewrite_cannot_change_namespace(f: Factory<'_>) {
    let s = f();
    let c = ctr_ns(&id_of('a'), "a", "ns1");
    add(&*s, &c);
    invalid(s.rewrite_container_config(&ContainerConfig {
        namespace: "ns2".into(),
        ..c
    }));
}

pub fn rewrite_cannot_change_volumes(f: Factory<'_>) {
    let s = f();
    add_vol(&*s, "v");
    let c = ctr_cfg(&id_of('a'), "a");
    add(&*s, &c);
    invalid(s.rewrite_container_config(&with_vols(c, &["v"])));
    assert!(s.volume_users("v").unwrap().is_empty());
}

pub fn rewrite_keeps_state(f: Factory<'_>) {
    let s = f();
    let mut c = ctr_cfg(&id_of('a'), "a");
    s.add_container(&c, &running_state()).unwrap();
    c.lock_id = 5;
    s.rewrite_container_config(&c).unwrap();
    assert_eq!(s.container_state(&id_of('a')).unwrap(), running_state());
}

// ------------------------------------------------------------- pods

pub fn add_and_get_pod(f: Factory<'_>) {
    let s = f();
    let p = pod_cfg(&id_of('p'), "pod");
    s.add_pod(&p, &pod_state()).unwrap();
    let got = s.pod(&id_of('p')).unwrap();
    assert_eq!(got.config, p);
    assert_eq!(got.state, pod_state());
}

pub fn get_missing_pod_not_found(f: Factory<'_>) {
    not_found(f().pod(&id_of('p')), ObjectKind::Pod, &id_of('p'));
}

pub fn get_pod_empty_id_invalid(f: Factory<'_>) {
    invalid(f().pod(""));
}

pub fn get_pod_with_container_id_not_found(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    not_found(s.pod(&id_of('a')), ObjectKind::Pod, &id_of('a'));
}

pub fn has_pod_true_and_false(f: Factory<'_>) {
    let s = f();
    assert!(!s.has_pod(&id_of('p')).unwrap());
    add_pod(&*s, &pod_cfg(&id_of('p'), "p"));
    assert!(s.has_pod(&id_of('p')).unwrap());
}

pub fn has_pod_container_id_false(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    assert!(!s.has_pod(&id_of('a')).unwrap());
}

pub fn add_pod_duplicate_id_fails(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "p"));
    assert!(matches!(
        s.add_pod(&pod_cfg(&id_of('p'), "q"), &pod_state()),
        Err(StateError::IdInUse {
            kind: ObjectKind::Pod,
            ..
        })
    ));
}

pub fn add_pod_duplicate_name_fails(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "p"));
    assert!(matches!(
        s.add_pod(&pod_cfg(&id_of('q'), "p"), &pod_state()),
        Err(StateError::NameInUse {
            kind: ObjectKind::Pod,
            ..
        })
    ));
    assert!(!s.has_pod(&id_of('q')).unwrap());
}

pub fn add_pod_with_container_id_fails(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    assert!(matches!(
        s.add_pod(&pod_cfg(&id_of('a'), "p"), &pod_state()),
        Err(StateError::IdInUse {
            kind: ObjectKind::Container,
            ..
        })
    ));
}

pub fn add_pod_with_container_name_fails(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    assert!(matches!(
        s.add_pod(&pod_cfg(&id_of('p'), "a"), &pod_state()),
        Err(StateError::NameInUse {
            kind: ObjectKind::Container,
            ..
        })
    ));
}

pub fn add_pod_empty_name_fails(f: Factory<'_>) {
    let s = f();
    invalid(s.add_pod(&pod_cfg(&id_of('p'), ""), &pod_state()));
    invalid(s.add_pod(&pod_cfg("", "p"), &pod_state()));
}

pub fn lookup_pod_by_id(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "p"));
    assert_eq!(s.lookup_pod(&id_of('p')).unwrap().config.name, "p");
}

pub fn lookup_pod_by_name(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "mypod"));
    assert_eq!(s.lookup_pod("mypod").unwrap().config.id, id_of('p'));
}

pub fn lookup_pod_by_prefix(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "p"));
    add_pod(&*s, &pod_cfg(&id_of('q'), "q"));
    assert_eq!(s.lookup_pod("qq").unwrap().config.name, "q");
}

pub fn lookup_pod_ambiguous_prefix(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&format!("{}1", "0".repeat(63)), "p"));
    add_pod(&*s, &pod_cfg(&format!("{}2", "0".repeat(63)), "q"));
    assert!(matches!(
        s.lookup_pod("000"),
        Err(StateError::Ambiguous {
            count: 2,
            kind: ObjectKind::Pod,
            ..
        })
    ));
}

pub fn lookup_pod_container_name_fails(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "ctr"));
    not_found(s.lookup_pod("ctr"), ObjectKind::Pod, "ctr");
}

pub fn lookup_pod_missing(f: Factory<'_>) {
    not_found(f().lookup_pod("nopod"), ObjectKind::Pod, "nopod");
}

pub fn remove_pod_then_gone(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "p"));
    s.remove_pod(&id_of('p')).unwrap();
    not_found(s.pod(&id_of('p')), ObjectKind::Pod, &id_of('p'));
    assert!(s.all_pods().unwrap().is_empty());
}

pub fn remove_missing_pod_fails(f: Factory<'_>) {
    not_found(f().remove_pod(&id_of('p')), ObjectKind::Pod, &id_of('p'));
}

pub fn remove_nonempty_pod_fails(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "p"));
    add(&*s, &in_pod(ctr_cfg(&id_of('a'), "a"), &id_of('p')));
    in_use(
        s.remove_pod(&id_of('p')),
        InUseBy::PodMembers,
        &[&id_of('a')],
    );
    assert!(s.has_pod(&id_of('p')).unwrap());
}

pub fn remove_pod_after_members_removed(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "p"));
    add(&*s, &in_pod(ctr_cfg(&id_of('a'), "a"), &id_of('p')));
    s.remove_container(&id_of('a')).unwrap();
    s.remove_pod(&id_of('p')).unwrap();
}

pub fn remove_pod_frees_name(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "p"));
    s.remove_pod(&id_of('p')).unwrap();
    add(&*s, &ctr_cfg(&id_of('a'), "p"));
}

pub fn all_pods_empty(f: Factory<'_>) {
    assert!(f().all_pods().unwrap().is_empty());
}

pub fn all_pods_ordered(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('q'), "q"));
    add_pod(&*s, &pod_cfg(&id_of('p'), "p"));
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    let pods: Vec<String> = s
        .all_pods()
        .unwrap()
        .into_iter()
        .map(|p| p.config.name)
        .collect();
    assert_eq!(pods, ["p", "q"]);
}

pub fn save_pod_state_round_trips(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "p"));
    let st = PodState {
        cgroup_path: "/x".into(),
        infra_container_id: id_of('i'),
        ..Default::default()
    };
    s.save_pod_state(&id_of('p'), &st).unwrap();
    assert_eq!(s.pod(&id_of('p')).unwrap().state, st);
}

pub fn save_pod_state_missing_fails(f: Factory<'_>) {
    not_found(
        f().save_pod_state(&id_of('p'), &pod_state()),
        ObjectKind::Pod,
        &id_of('p'),
    );
}

pub fn rewrite_pod_config(f: Factory<'_>) {
    let s = f();
    let mut p = pod_cfg(&id_of('p'), "p");
    add_pod(&*s, &p);
    p.lock_id = 42;
    s.rewrite_pod_config(&p).unwrap();
    assert_eq!(s.pod(&id_of('p')).unwrap().config.lock_id, 42);
}

pub fn rewrite_pod_rename(f: Factory<'_>) {
    let s = f();
    let mut p = pod_cfg(&id_of('p'), "before");
    add_pod(&*s, &p);
    p.name = "renamed".into();
    s.rewrite_pod_config(&p).unwrap();
    assert_eq!(s.lookup_pod("renamed").unwrap().config.id, id_of('p'));
    not_found(s.lookup_pod("before"), ObjectKind::Pod, "before");
    add(&*s, &ctr_cfg(&id_of('a'), "before"));
}

pub fn rewrite_pod_rename_taken_fails(f: Factory<'_>) {
    let s = f();
    let mut p = pod_cfg(&id_of('p'), "p");
    add_pod(&*s, &p);
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    p.name = "a".into();
    assert!(matches!(
        s.rewrite_pod_config(&p),
        Err(StateError::NameInUse { .. })
    ));
}

pub fn rewrite_pod_missing_fails(f: Factory<'_>) {
    not_found(
        f().rewrite_pod_config(&pod_cfg(&id_of('p'), "p")),
        ObjectKind::Pod,
        &id_of('p'),
    );
}

// ------------------------------------------------------------- pod membership

pub fn add_container_to_pod(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "p"));
    add(&*s, &in_pod(ctr_cfg(&id_of('a'), "a"), &id_of('p')));
    assert_eq!(s.pod_containers(&id_of('p')).unwrap(), vec![id_of('a')]);
    assert!(s.pod_has_container(&id_of('p'), &id_of('a')).unwrap());
    assert_eq!(
        s.container(&id_of('a')).unwrap().config.pod,
        Some(id_of('p'))
    );
}

pub fn pod_containers_empty(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "p"));
    assert!(s.pod_containers(&id_of('p')).unwrap().is_empty());
}

pub fn pod_containers_many_sorted(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "p"));
    for c in ['c', 'a', 'b'] {
        add(
            &*s,
            &in_pod(ctr_cfg(&id_of(c), &format!("n{c}")), &id_of('p')),
        );
    }
    add(&*s, &ctr_cfg(&id_of('d'), "outside"));
    assert_eq!(
        s.pod_containers(&id_of('p')).unwrap(),
        vec![id_of('a'), id_of('b'), id_of('c')]
    );
}

pub fn pod_containers_missing_pod_fails(f: Factory<'_>) {
    not_found(
        f().pod_containers(&id_of('p')),
        ObjectKind::Pod,
        &id_of('p'),
    );
}

pub fn pod_has_container_false_for_other(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "p"));
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    assert!(!s.pod_has_container(&id_of('p'), &id_of('a')).unwrap());
    assert!(!s.pod_has_container(&id_of('p'), &id_of('z')).unwrap());
}

pub fn pod_has_container_missing_pod_fails(f: Factory<'_>) {
    not_found(
        f().pod_has_container(&id_of('p'), &id_of('a')),
        ObjectKind::Pod,
        &id_of('p'),
    );
}

pub fn add_to_missing_pod_fails(f: Factory<'_>) {
    let s = f();
    not_found(
        s.add_container(
            &in_pod(ctr_cfg(&id_of('a'), "a"), &id_of('p')),
            &ContainerState::configured(),
        ),
        ObjectKind::Pod,
        &id_of('p'),
    );
    assert!(s.all_containers().unwrap().is_empty());
}

pub fn add_to_container_as_pod_fails(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('b'), "b"));
    not_found(
        s.add_container(
            &in_pod(ctr_cfg(&id_of('a'), "a"), &id_of('b')),
            &ContainerState::configured(),
        ),
        ObjectKind::Pod,
        &id_of('b'),
    );
}

pub fn add_to_pod_other_namespace_fails(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_ns(&id_of('p'), "p", "ns1"));
    invalid(s.add_container(
        &in_pod(ctr_ns(&id_of('a'), "a", "ns2"), &id_of('p')),
        &ContainerState::configured(),
    ));
    add(&*s, &in_pod(ctr_ns(&id_of('a'), "a", "ns1"), &id_of('p')));
}

pub fn removing_member_leaves_pod(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "p"));
    add(&*s, &in_pod(ctr_cfg(&id_of('a'), "a"), &id_of('p')));
    add(&*s, &in_pod(ctr_cfg(&id_of('b'), "b"), &id_of('p')));
    s.remove_container(&id_of('a')).unwrap();
    assert_eq!(s.pod_containers(&id_of('p')).unwrap(), vec![id_of('b')]);
    assert!(!s.pod_has_container(&id_of('p'), &id_of('a')).unwrap());
}

pub fn remove_pod_containers_removes_all(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "p"));
    add(&*s, &in_pod(ctr_cfg(&id_of('a'), "a"), &id_of('p')));
    add(&*s, &in_pod(ctr_cfg(&id_of('b'), "b"), &id_of('p')));
    assert_eq!(
        s.remove_pod_containers(&id_of('p')).unwrap(),
        vec![id_of('a'), id_of('b')]
    );
    assert!(s.pod_containers(&id_of('p')).unwrap().is_empty());
    assert!(s.all_containers().unwrap().is_empty());
    s.remove_pod(&id_of('p')).unwrap();
}

pub fn remove_pod_containers_empty_pod(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "p"));
    assert!(s.remove_pod_containers(&id_of('p')).unwrap().is_empty());
}

pub fn remove_pod_containers_preserves_outside(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "p"));
    add(&*s, &in_pod(ctr_cfg(&id_of('a'), "a"), &id_of('p')));
    add(&*s, &ctr_cfg(&id_of('b'), "b"));
    s.remove_pod_containers(&id_of('p')).unwrap();
    assert_eq!(names(&s.all_containers().unwrap()), ["b"]);
}

pub fn remove_pod_containers_internal_deps_ok(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "p"));
    add(&*s, &in_pod(ctr_cfg(&id_of('a'), "a"), &id_of('p')));
    add(
        &*s,
        &in_pod(
            with_deps(ctr_cfg(&id_of('b'), "b"), &[&id_of('a')]),
            &id_of('p'),
        ),
    );
    s.remove_pod_containers(&id_of('p')).unwrap();
    assert!(s.all_containers().unwrap().is_empty());
    // ids reusable, no stale dependency edges
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    assert!(s.container_dependents(&id_of('a')).unwrap().is_empty());
}

pub fn outside_container_cannot_depend_on_member(f: Factory<'_>) {
    // libpod's RemovePodContainers refuses when a container outside the pod
    // depends on a member; rpod prevents that situation at add time, so
    // removing all members never leaves a dangling dependency.
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "p"));
    add(&*s, &in_pod(ctr_cfg(&id_of('a'), "a"), &id_of('p')));
    add(
        &*s,
        &in_pod(
            with_deps(ctr_cfg(&id_of('b'), "b"), &[&id_of('a')]),
            &id_of('p'),
        ),
    );
    invalid(s.add_container(
        &with_deps(ctr_cfg(&id_of('c'), "c"), &[&id_of('a')]),
        &ContainerState::configured(),
    ));
    assert_eq!(s.remove_pod_containers(&id_of('p')).unwrap().len(), 2);
}

pub fn remove_pod_containers_missing_pod_fails(f: Factory<'_>) {
    not_found(
        f().remove_pod_containers(&id_of('p')),
        ObjectKind::Pod,
        &id_of('p'),
    );
}

pub fn remove_pod_containers_frees_names(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_cfg(&id_of('p'), "p"));
    add(&*s, &in_pod(ctr_cfg(&id_of('a'), "a"), &id_of('p')));
    s.remove_pod_containers(&id_of('p')).unwrap();
    add(&*s, &ctr_cfg(&id_of('b'), "a"));
}

// ------------------------------------------------------------- volumes

pub fn add_and_get_volume(f: Factory<'_>) {
    let s = f();
    let v = vol_cfg("data");
    let st = VolumeState {
        mount_count: 1,
        ..Default::default()
    };
    s.add_volume(&v, &st).unwrap();
    let got = s.volume("data").unwrap();
    assert_eq!(got.config, v);
    assert_eq!(got.state, st);
}

pub fn get_missing_volume_not_found(f: Factory<'_>) {
    not_found(f().volume("data"), ObjectKind::Volume, "data");
}

pub fn get_volume_empty_invalid(f: Factory<'_>) {
    invalid(f().volume(""));
}

pub fn has_volume_true_and_false(f: Factory<'_>) {
    let s = f();
    assert!(!s.has_volume("v").unwrap());
    add_vol(&*s, "v");
    assert!(s.has_volume("v").unwrap());
}

pub fn add_volume_duplicate_fails(f: Factory<'_>) {
    let s = f();
    add_vol(&*s, "v");
    assert!(matches!(
        s.add_volume(&vol_cfg("v"), &VolumeState::default()),
        Err(StateError::NameInUse {
            kind: ObjectKind::Volume,
            ..
        })
    ));
}

pub fn volume_names_separate_from_containers(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "shared"));
    add_pod(&*s, &pod_cfg(&id_of('p'), "podname"));
    add_vol(&*s, "shared");
    add_vol(&*s, "podname");
    add(&*s, &ctr_cfg(&id_of('b'), "volname"));
    add_vol(&*s, "volname");
}

pub fn lookup_volume_exact(f: Factory<'_>) {
    let s = f();
    add_vol(&*s, "data");
    add_vol(&*s, "data2");
    assert_eq!(s.lookup_volume("data").unwrap().config.name, "data");
}

pub fn lookup_volume_prefix(f: Factory<'_>) {
    let s = f();
    add_vol(&*s, "alpha");
    add_vol(&*s, "beta");
    assert_eq!(s.lookup_volume("al").unwrap().config.name, "alpha");
}

pub fn lookup_volume_ambiguous(f: Factory<'_>) {
    let s = f();
    add_vol(&*s, "data1");
    add_vol(&*s, "data2");
    assert!(matches!(
        s.lookup_volume("dat"),
        Err(StateError::Ambiguous {
            count: 2,
            kind: ObjectKind::Volume,
            ..
        })
    ));
}

pub fn lookup_volume_missing(f: Factory<'_>) {
    let s = f();
    add_vol(&*s, "data");
    not_found(s.lookup_volume("x"), ObjectKind::Volume, "x");
}

pub fn remove_volume_then_gone(f: Factory<'_>) {
    let s = f();
    add_vol(&*s, "v");
    s.remove_volume("v").unwrap();
    assert!(!s.has_volume("v").unwrap());
    assert!(s.all_volumes().unwrap().is_empty());
    add_vol(&*s, "v");
}

pub fn remove_missing_volume_fails(f: Factory<'_>) {
    not_found(f().remove_volume("v"), ObjectKind::Volume, "v");
}

pub fn remove_volume_in_use_fails(f: Factory<'_>) {
    let s = f();
    add_vol(&*s, "v");
    add(&*s, &with_vols(ctr_cfg(&id_of('a'), "a"), &["v"]));
    in_use(s.remove_volume("v"), InUseBy::VolumeUsers, &[&id_of('a')]);
    assert!(s.has_volume("v").unwrap());
}

pub fn remove_volume_after_user_removed(f: Factory<'_>) {
    let s = f();
    add_vol(&*s, "v");
    add(&*s, &with_vols(ctr_cfg(&id_of('a'), "a"), &["v"]));
    s.remove_container(&id_of('a')).unwrap();
    assert!(s.volume_users("v").unwrap().is_empty());
    s.remove_volume("v").unwrap();
}

pub fn volume_users_sorted(f: Factory<'_>) {
    let s = f();
    add_vol(&*s, "v");
    add_vol(&*s, "w");
    add(&*s, &with_vols(ctr_cfg(&id_of('b'), "b"), &["v", "w"]));
    add(&*s, &with_vols(ctr_cfg(&id_of('a'), "a"), &["v"]));
    assert_eq!(s.volume_users("v").unwrap(), vec![id_of('a'), id_of('b')]);
    assert_eq!(s.volume_users("w").unwrap(), vec![id_of('b')]);
}

pub fn volume_users_missing_fails(f: Factory<'_>) {
    not_found(f().volume_users("v"), ObjectKind::Volume, "v");
}

pub fn container_with_missing_volume_fails(f: Factory<'_>) {
    let s = f();
    not_found(
        s.add_container(
            &with_vols(ctr_cfg(&id_of('a'), "a"), &["nope"]),
            &ContainerState::configured(),
        ),
        ObjectKind::Volume,
        "nope",
    );
    assert!(!s.has_container(&id_of('a')).unwrap());
}

pub fn all_volumes_ordered(f: Factory<'_>) {
    let s = f();
    for v in ["c", "a", "b"] {
        add_vol(&*s, v);
    }
    let got: Vec<String> = s
        .all_volumes()
        .unwrap()
        .into_iter()
        .map(|v| v.config.name)
        .collect();
    assert_eq!(got, ["a", "b", "c"]);
}

pub fn save_volume_state_round_trips(f: Factory<'_>) {
    let s = f();
    add_vol(&*s, "v");
    let st = VolumeState {
        mount_count: 3,
        ..Default::default()
    };
    s.save_volume_state("v", &st).unwrap();
    assert_eq!(s.volume("v").unwrap().state, st);
}

pub fn save_volume_state_missing_fails(f: Factory<'_>) {
    not_found(
        f().save_volume_state("v", &VolumeState::default()),
        ObjectKind::Volume,
        "v",
    );
}

pub fn rewrite_volume_config(f: Factory<'_>) {
    let s = f();
    let mut v = vol_cfg("v");
    add_vol(&*s, "v");
    v.lock_id = 77;
    v.options.insert("o".into(), "bind".into());
    s.rewrite_volume_config(&v).unwrap();
    assert_eq!(s.volume("v").unwrap().config, v);
}

pub fn rewrite_volume_missing_fails(f: Factory<'_>) {
    not_found(
        f().rewrite_volume_config(&vol_cfg("v")),
        ObjectKind::Volume,
        "v",
    );
}

pub fn volume_used_twice_listed_once(f: Factory<'_>) {
    let s = f();
    add_vol(&*s, "v");
    add(&*s, &with_vols(ctr_cfg(&id_of('a'), "a"), &["v", "v"]));
    assert_eq!(s.volume_users("v").unwrap(), vec![id_of('a')]);
    s.remove_container(&id_of('a')).unwrap();
    s.remove_volume("v").unwrap();
}

pub fn volume_users_cleared_by_pod_removal(f: Factory<'_>) {
    let s = f();
    add_vol(&*s, "v");
    add_pod(&*s, &pod_cfg(&id_of('p'), "p"));
    add(
        &*s,
        &in_pod(with_vols(ctr_cfg(&id_of('a'), "a"), &["v"]), &id_of('p')),
    );
    s.remove_pod_containers(&id_of('p')).unwrap();
    assert!(s.volume_users("v").unwrap().is_empty());
    s.remove_volume("v").unwrap();
}

// ------------------------------------------------------------- exit codes

pub fn exit_code_round_trips(f: Factory<'_>) {
    let s = f();
    let e = ExitCode {
        code: 42,
        time: fixed_time(),
    };
    s.record_exit_code(&id_of('a'), e).unwrap();
    assert_eq!(s.exit_code(&id_of('a')).unwrap(), e);
}

pub fn exit_code_missing_not_found(f: Factory<'_>) {
    not_found(
        f().exit_code(&id_of('a')),
        ObjectKind::ExitCode,
        &id_of('a'),
    );
}

pub fn exit_code_outlives_container(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    s.add_exit_code(&id_of('a'), 3).unwrap();
    s.remove_container(&id_of('a')).unwrap();
    assert_eq!(s.exit_code(&id_of('a')).unwrap().code, 3);
}

pub fn remove_with_exit_code_records_and_removes(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    let e = ExitCode {
        code: 7,
        time: Timestamp::now(),
    };
    s.remove_container_with_exit_code(&id_of('a'), e).unwrap();
    assert!(!s.has_container(&id_of('a')).unwrap());
    assert_eq!(s.exit_code(&id_of('a')).unwrap(), e);
}

pub fn remove_with_exit_code_missing_fails(f: Factory<'_>) {
    let s = f();
    let e = ExitCode {
        code: 1,
        time: Timestamp::now(),
    };
    assert!(s.remove_container_with_exit_code(&id_of('a'), e).is_err());
    assert!(!s.has_container(&id_of('a')).unwrap());
}

pub fn remove_with_exit_code_in_use_keeps_both(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_cfg(&id_of('a'), "a"));
    add(&*s, &with_deps(ctr_cfg(&id_of('b'), "b"), &[&id_of('a')]));
    let e = ExitCode {
        code: 2,
        time: Timestamp::now(),
    };
    in_use(
        s.remove_container_with_exit_code(&id_of('a'), e),
        InUseBy::Dependents,
        &[&id_of('b')],
    );
    assert!(s.has_container(&id_of('a')).unwrap());
}

pub fn exit_code_replaced(f: Factory<'_>) {
    let s = f();
    s.add_exit_code(&id_of('a'), 1).unwrap();
    s.add_exit_code(&id_of('a'), 2).unwrap();
    assert_eq!(s.exit_code(&id_of('a')).unwrap().code, 2);
}

pub fn prune_removes_old_keeps_new(f: Factory<'_>) {
    let s = f();
    let now = Timestamp::now();
    let old = now - std::time::Duration::from_secs(600);
    s.record_exit_code(&id_of('a'), ExitCode { code: 1, time: old })
        .unwrap();
    s.record_exit_code(&id_of('b'), ExitCode { code: 2, time: old })
        .unwrap();
    s.record_exit_code(&id_of('c'), ExitCode { code: 3, time: now })
        .unwrap();
    let n = s
        .prune_exit_codes(now - std::time::Duration::from_secs(300))
        .unwrap();
    assert_eq!(n, 2);
    assert!(s.exit_code(&id_of('a')).unwrap_err().is_not_found());
    assert!(s.exit_code(&id_of('b')).unwrap_err().is_not_found());
    assert_eq!(s.exit_code(&id_of('c')).unwrap().code, 3);
}

pub fn prune_nothing_returns_zero(f: Factory<'_>) {
    let s = f();
    assert_eq!(s.prune_exit_codes(Timestamp::now()).unwrap(), 0);
    s.add_exit_code(&id_of('a'), 0).unwrap();
    assert_eq!(s.prune_exit_codes(fixed_time()).unwrap(), 0);
    assert_eq!(s.exit_code(&id_of('a')).unwrap().code, 0);
}

pub fn add_exit_code_is_timestamped_now(f: Factory<'_>) {
    let s = f();
    let before = Timestamp::now();
    s.add_exit_code(&id_of('a'), 9).unwrap();
    let after = Timestamp::now();
    let t = s.exit_code(&id_of('a')).unwrap().time;
    assert!(before <= t && t <= after, "{before} <= {t} <= {after}");
}

pub fn exit_code_extremes(f: Factory<'_>) {
    let s = f();
    for (i, code) in [-1, 0, 1, 127, 255, i32::MAX, i32::MIN]
        .into_iter()
        .enumerate()
    {
        let id = format!("{i}{}", "e".repeat(63));
        s.add_exit_code(&id, code).unwrap();
        assert_eq!(s.exit_code(&id).unwrap().code, code);
    }
}

pub fn exit_code_empty_id_invalid(f: Factory<'_>) {
    let s = f();
    invalid(s.add_exit_code("", 1));
    invalid(s.exit_code(""));
}

// ------------------------------------------------------------- db config

fn dbc(prefix: &str) -> DbConfig {
    DbConfig {
        static_dir: format!("{prefix}/root/static"),
        tmp_dir: format!("{prefix}/run/tmp"),
        graph_root: format!("{prefix}/root"),
        run_root: format!("{prefix}/run"),
        graph_driver: "vfs".into(),
        volume_path: format!("{prefix}/root/volumes"),
    }
}

pub fn db_config_none_initially(f: Factory<'_>) {
    assert_eq!(f().db_config().unwrap(), None);
}

pub fn validate_stores_on_first_use(f: Factory<'_>) {
    let s = f();
    assert_eq!(s.validate_db_config(&dbc("/a")).unwrap(), dbc("/a"));
    assert_eq!(s.db_config().unwrap(), Some(dbc("/a")));
}

pub fn validate_same_ok(f: Factory<'_>) {
    let s = f();
    s.validate_db_config(&dbc("/a")).unwrap();
    assert_eq!(s.validate_db_config(&dbc("/a")).unwrap(), dbc("/a"));
}

pub fn validate_mismatch_names_key_and_values(f: Factory<'_>) {
    let s = f();
    s.validate_db_config(&dbc("/a")).unwrap();
    match s.validate_db_config(&dbc("/b")) {
        Err(e @ StateError::DbConfigMismatch { .. }) => {
            let msg = e.to_string();
            let StateError::DbConfigMismatch { key, db, current } = e else {
                unreachable!()
            };
            assert_eq!(key, "static-dir");
            assert_eq!(db, "/a/root/static");
            assert_eq!(current, "/b/root/static");
            assert!(
                msg.contains("/a/root/static") && msg.contains("/b/root/static"),
                "{msg}"
            );
        }
        other => panic!("expected DbConfigMismatch, got {other:?}"),
    }
}

pub fn validate_checks_every_key(f: Factory<'_>) {
    let s = f();
    let base = dbc("/a");
    s.validate_db_config(&base).unwrap();
    type Change = fn(&mut DbConfig);
    let variants: [(&str, Change); 6] = [
        ("static-dir", |d| d.static_dir.push('x')),
        ("tmp-dir", |d| d.tmp_dir.push('x')),
        ("graph-root", |d| d.graph_root.push('x')),
        ("run-root", |d| d.run_root.push('x')),
        ("graph-driver-name", |d| d.graph_driver = "overlay".into()),
        ("volume-path", |d| d.volume_path.push('x')),
    ];
    for (want, change) in variants {
        let mut cur = base.clone();
        change(&mut cur);
        match s.validate_db_config(&cur) {
            Err(StateError::DbConfigMismatch { key, .. }) => assert_eq!(key, want),
            other => panic!("changing {want}: expected DbConfigMismatch, got {other:?}"),
        }
    }
}

pub fn validate_fills_empty_stored_values(f: Factory<'_>) {
    let s = f();
    let mut partial = dbc("/a");
    partial.graph_driver.clear();
    s.validate_db_config(&partial).unwrap();
    assert_eq!(s.validate_db_config(&dbc("/a")).unwrap(), dbc("/a"));
    assert_eq!(s.db_config().unwrap(), Some(dbc("/a")));
}

pub fn validate_mismatch_keeps_stored(f: Factory<'_>) {
    let s = f();
    s.validate_db_config(&dbc("/a")).unwrap();
    assert!(s.validate_db_config(&dbc("/b")).is_err());
    assert_eq!(s.db_config().unwrap(), Some(dbc("/a")));
}

pub fn db_config_shared_by_views(f: Factory<'_>) {
    let s = f();
    s.validate_db_config(&dbc("/a")).unwrap();
    let v = s.with_namespace("ns1").unwrap();
    assert_eq!(v.db_config().unwrap(), Some(dbc("/a")));
    assert!(v.validate_db_config(&dbc("/b")).is_err());
}

pub fn for_each_container_matches_all_containers(f: Factory<'_>) {
    let s = f();
    for c in ['c', 'a', 'b'] {
        add(&*s, &ctr_cfg(&id_of(c), &format!("n{c}")));
    }
    s.save_container_state(&id_of('b'), &running_state())
        .unwrap();
    let mut seen = Vec::new();
    s.for_each_container(&mut |r| {
        seen.push(r);
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, s.all_containers().unwrap());
    assert_eq!(names(&seen), ["na", "nb", "nc"]);
}

pub fn for_each_container_sees_only_its_namespace(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_ns(&id_of('a'), "a", "ns1"));
    add(&*s, &ctr_ns(&id_of('b'), "b", "ns2"));
    let n1 = s.with_namespace("ns1").unwrap();
    let mut seen = Vec::new();
    n1.for_each_container(&mut |r| {
        seen.push(r);
        Ok(())
    })
    .unwrap();
    assert_eq!(names(&seen), ["a"]);
}

pub fn for_each_container_stops_at_an_error(f: Factory<'_>) {
    let s = f();
    for c in ['a', 'b', 'c'] {
        add(&*s, &ctr_cfg(&id_of(c), &format!("n{c}")));
    }
    let mut calls = 0;
    let err = s
        .for_each_container(&mut |_| {
            calls += 1;
            Err(StateError::invalid("stop here"))
        })
        .unwrap_err();
    assert_eq!(calls, 1);
    assert!(err.to_string().contains("stop here"), "{err}");
    // and the database is usable afterwards
    assert_eq!(s.all_containers().unwrap().len(), 3);
}

// ------------------------------------------------------------- namespaces

pub fn ns_rejects_other_namespace_container(f: Factory<'_>) {
    let s = f();
    let n1 = s.with_namespace("ns1").unwrap();
    invalid(n1.add_container(
        &ctr_ns(&id_of('a'), "a", "ns2"),
        &ContainerState::configured(),
    ));
    invalid(n1.add_container(&ctr_cfg(&id_of('a'), "a"), &ContainerState::configured()));
    assert!(s.all_containers().unwrap().is_empty());
}

pub fn ns_accepts_own_namespace(f: Factory<'_>) {
    let s = f();
    let n1 = s.with_namespace("ns1").unwrap();
    add(&*n1, &ctr_ns(&id_of('a'), "a", "ns1"));
    assert_eq!(n1.container(&id_of('a')).unwrap().config.namespace, "ns1");
}

pub fn empty_ns_sees_all(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_ns(&id_of('a'), "a", "ns1"));
    add(&*s, &ctr_ns(&id_of('b'), "b", "ns2"));
    add(&*s, &ctr_cfg(&id_of('c'), "c"));
    assert_eq!(s.all_containers().unwrap().len(), 3);
    assert_eq!(s.lookup_container("b").unwrap().config.namespace, "ns2");
}

pub fn ns_lists_only_own(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_ns(&id_of('a'), "a", "ns1"));
    add(&*s, &ctr_ns(&id_of('b'), "b", "ns2"));
    add(&*s, &ctr_cfg(&id_of('c'), "c"));
    let n1 = s.with_namespace("ns1").unwrap();
    assert_eq!(names(&n1.all_containers().unwrap()), ["a"]);
}

pub fn ns_get_other_not_found(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_ns(&id_of('a'), "a", "ns1"));
    let n2 = s.with_namespace("ns2").unwrap();
    not_found(
        n2.container(&id_of('a')),
        ObjectKind::Container,
        &id_of('a'),
    );
    not_found(
        n2.container_state(&id_of('a')),
        ObjectKind::Container,
        &id_of('a'),
    );
}

pub fn ns_lookup_other_name_not_found(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_ns(&id_of('a'), "a", "ns1"));
    let n2 = s.with_namespace("ns2").unwrap();
    not_found(n2.lookup_container("a"), ObjectKind::Container, "a");
    not_found(
        n2.lookup_container(&id_of('a')),
        ObjectKind::Container,
        &id_of('a'),
    );
}

pub fn ns_prefix_ignores_other_namespaces(f: Factory<'_>) {
    let s = f();
    add(
        &*s,
        &ctr_ns(&format!("000{}", "1".repeat(61)), "a", "test1"),
    );
    add(
        &*s,
        &ctr_ns(&format!("000{}", "2".repeat(61)), "b", "test2"),
    );
    assert!(matches!(
        s.lookup_container("000"),
        Err(StateError::Ambiguous { count: 2, .. })
    ));
    let t1 = s.with_namespace("test1").unwrap();
    assert_eq!(t1.lookup_container("000").unwrap().config.name, "a");
}

pub fn ns_has_container_other_false(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_ns(&id_of('a'), "a", "ns1"));
    assert!(!s
        .with_namespace("ns2")
        .unwrap()
        .has_container(&id_of('a'))
        .unwrap());
    assert!(s
        .with_namespace("ns1")
        .unwrap()
        .has_container(&id_of('a'))
        .unwrap());
}

pub fn ns_remove_other_not_found(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_ns(&id_of('a'), "a", "ns1"));
    not_found(
        s.with_namespace("ns2")
            .unwrap()
            .remove_container(&id_of('a')),
        ObjectKind::Container,
        &id_of('a'),
    );
    assert!(s.has_container(&id_of('a')).unwrap());
}

pub fn ns_names_are_global(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_ns(&id_of('a'), "same", "ns1"));
    let n2 = s.with_namespace("ns2").unwrap();
    assert!(matches!(
        n2.add_container(
            &ctr_ns(&id_of('b'), "same", "ns2"),
            &ContainerState::configured()
        ),
        Err(StateError::NameInUse { .. })
    ));
}

pub fn ns_ids_are_global(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_ns(&id_of('a'), "a", "ns1"));
    let n2 = s.with_namespace("ns2").unwrap();
    assert!(matches!(
        n2.add_pod(&pod_ns(&id_of('a'), "p", "ns2"), &pod_state()),
        Err(StateError::IdInUse { .. })
    ));
}

pub fn ns_pods_filtered(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_ns(&id_of('p'), "p", "ns1"));
    add_pod(&*s, &pod_ns(&id_of('q'), "q", "ns2"));
    let n1 = s.with_namespace("ns1").unwrap();
    let got: Vec<String> = n1
        .all_pods()
        .unwrap()
        .into_iter()
        .map(|p| p.config.name)
        .collect();
    assert_eq!(got, ["p"]);
    not_found(n1.pod(&id_of('q')), ObjectKind::Pod, &id_of('q'));
    assert!(!n1.has_pod(&id_of('q')).unwrap());
    assert_eq!(s.all_pods().unwrap().len(), 2);
}

pub fn ns_pod_lookup_filtered(f: Factory<'_>) {
    let s = f();
    add_pod(&*s, &pod_ns(&id_of('p'), "p", "ns1"));
    let n2 = s.with_namespace("ns2").unwrap();
    not_found(n2.lookup_pod("p"), ObjectKind::Pod, "p");
    not_found(n2.remove_pod(&id_of('p')), ObjectKind::Pod, &id_of('p'));
    not_found(n2.pod_containers(&id_of('p')), ObjectKind::Pod, &id_of('p'));
}

pub fn ns_volumes_filtered(f: Factory<'_>) {
    let s = f();
    let mut v = vol_cfg("v1");
    v.namespace = "ns1".into();
    s.add_volume(&v, &VolumeState::default()).unwrap();
    add_vol(&*s, "v0");
    let n2 = s.with_namespace("ns2").unwrap();
    assert!(n2.all_volumes().unwrap().is_empty());
    not_found(n2.volume("v1"), ObjectKind::Volume, "v1");
    assert!(!n2.has_volume("v1").unwrap());
    let n1 = s.with_namespace("ns1").unwrap();
    assert_eq!(n1.all_volumes().unwrap().len(), 1);
    assert_eq!(s.all_volumes().unwrap().len(), 2);
}

pub fn ns_save_state_other_not_found(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_ns(&id_of('a'), "a", "ns1"));
    not_found(
        s.with_namespace("ns2")
            .unwrap()
            .save_container_state(&id_of('a'), &running_state()),
        ObjectKind::Container,
        &id_of('a'),
    );
    assert_eq!(
        s.container_state(&id_of('a')).unwrap().state,
        ContainerStatus::Configured
    );
}

pub fn ns_dependents_other_not_found(f: Factory<'_>) {
    let s = f();
    add(&*s, &ctr_ns(&id_of('a'), "a", "ns1"));
    not_found(
        s.with_namespace("ns2")
            .unwrap()
            .container_dependents(&id_of('a')),
        ObjectKind::Container,
        &id_of('a'),
    );
}

pub fn ns_rejects_other_namespace_pod(f: Factory<'_>) {
    let s = f();
    let n1 = s.with_namespace("ns1").unwrap();
    invalid(n1.add_pod(&pod_ns(&id_of('p'), "p", "ns2"), &pod_state()));
    n1.add_pod(&pod_ns(&id_of('p'), "p", "ns1"), &pod_state())
        .unwrap();
}

pub fn ns_rejects_other_namespace_volume(f: Factory<'_>) {
    let s = f();
    let n1 = s.with_namespace("ns1").unwrap();
    invalid(n1.add_volume(&vol_cfg("v"), &VolumeState::default()));
    assert!(!s.has_volume("v").unwrap());
}

// ------------------------------------------------------------- refresh

pub fn refresh_running_becomes_configured(f: Factory<'_>) {
    let s = f();
    for (i, st) in [
        ContainerStatus::Running,
        ContainerStatus::Paused,
        ContainerStatus::Created,
        ContainerStatus::Stopped,
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("{i}{}", "r".repeat(63));
        let state = ContainerState {
            state: st,
            ..running_state()
        };
        s.add_container(&ctr_cfg(&id, &format!("r{i}")), &state)
            .unwrap();
    }
    s.refresh().unwrap();
    for r in s.all_containers().unwrap() {
        assert_eq!(
            r.state.state,
            ContainerStatus::Configured,
            "{}",
            r.config.name
        );
    }
}

pub fn refresh_keeps_exited(f: Factory<'_>) {
    let s = f();
    let st = ContainerState {
        state: ContainerStatus::Exited,
        exit_code: 42,
        exited: true,
        finished_time: fixed_time(),
        ..Default::default()
    };
    s.add_container(&ctr_cfg(&id_of('a'), "a"), &st).unwrap();
    s.refresh().unwrap();
    assert_eq!(s.container_state(&id_of('a')).unwrap(), st);
}

pub fn refresh_keeps_configs(f: Factory<'_>) {
    let s = f();
    let c = ctr_cfg(&id_of('a'), "a");
    s.add_container(&c, &running_state()).unwrap();
    add_pod(&*s, &pod_cfg(&id_of('p'), "p"));
    add_vol(&*s, "v");
    s.refresh().unwrap();
    assert_eq!(s.container(&id_of('a')).unwrap().config, c);
    assert_eq!(
        s.pod(&id_of('p')).unwrap().config,
        pod_cfg(&id_of('p'), "p")
    );
    assert_eq!(s.volume("v").unwrap().config, vol_cfg("v"));
}

pub fn refresh_clears_runtime_fields(f: Factory<'_>) {
    let s = f();
    s.add_container(&ctr_cfg(&id_of('a'), "a"), &running_state())
        .unwrap();
    s.refresh().unwrap();
    let st = s.container_state(&id_of('a')).unwrap();
    assert_eq!((st.pid, st.conmon_pid), (0, 0));
    assert!(!st.mounted && st.mount_point.is_empty());
    assert!(st.net_ns.is_empty());
    assert!(st.exec_sessions.is_empty() && st.bind_mounts.is_empty());
    assert!(st.network_status.is_null());
    assert!(!st.stopped_by_user);
    assert_eq!(st.restart_count, 0);
    // kept
    assert_eq!(st.started_time, fixed_time());
    assert_eq!(st.run_dir, "/run/x");
}

pub fn refresh_clears_pod_cgroup(f: Factory<'_>) {
    let s = f();
    let st = PodState {
        cgroup_path: "/rpod/x".into(),
        infra_container_id: id_of('i'),
        ..Default::default()
    };
    s.add_pod(&pod_cfg(&id_of('p'), "p"), &st).unwrap();
    s.refresh().unwrap();
    let got = s.pod(&id_of('p')).unwrap().state;
    assert!(got.cgroup_path.is_empty());
    assert_eq!(got.infra_container_id, id_of('i'));
}

pub fn refresh_clears_volume_mounts(f: Factory<'_>) {
    let s = f();
    s.add_volume(
        &vol_cfg("v"),
        &VolumeState {
            mount_count: 4,
            ..Default::default()
        },
    )
    .unwrap();
    s.refresh().unwrap();
    assert_eq!(s.volume("v").unwrap().state.mount_count, 0);
}

pub fn refresh_covers_all_namespaces(f: Factory<'_>) {
    let s = f();
    s.add_container(&ctr_ns(&id_of('a'), "a", "ns1"), &running_state())
        .unwrap();
    s.add_container(&ctr_ns(&id_of('b'), "b", "ns2"), &running_state())
        .unwrap();
    s.with_namespace("ns1").unwrap().refresh().unwrap();
    for r in s.all_containers().unwrap() {
        assert_eq!(r.state.state, ContainerStatus::Configured);
    }
}

pub fn refresh_empty_ok(f: Factory<'_>) {
    let s = f();
    s.refresh().unwrap();
    s.refresh().unwrap();
    assert!(s.all_containers().unwrap().is_empty());
}

pub fn refresh_resets_podman_extras(f: Factory<'_>) {
    let s = f();
    s.add_container(&ctr_cfg(&id_of('a'), "a"), &running_state())
        .unwrap();
    s.refresh().unwrap();
    let st = s.container_state(&id_of('a')).unwrap();
    assert_eq!(st.extra["checkpointedTime"], json!("0001-01-01T00:00:00Z"));
    assert_eq!(st.extra["Service"], json!({"servicePods": null}));
}
