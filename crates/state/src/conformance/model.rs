//! The model test: random operation sequences run against a backend and the
//! memory reference, comparing every result.
//!
//! Ids, names and namespaces come from small pools so that clashes, shared
//! prefixes, dependencies, pod membership and volume use happen often.
//! Results are compared as [`outcome`] strings: values by their `Debug`
//! form, errors by variant and the fields callers branch on (not by message,
//! which names backend-specific paths).

use std::fmt::Debug;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use super::{ctr_ns, fixed_time, pod_ns, vol_cfg, Factory, Fresh};
use crate::*;

const IDS: [&str; 6] = ["aa0", "aa1", "ab0", "b00", "b01", "c00"];
const NAMES: [&str; 5] = ["n0", "n1", "n2", "aa", "b"];
const NAMESPACES: [&str; 3] = ["", "x", "y"];
const VOLS: [&str; 3] = ["v0", "v1", "w0"];
const QUERIES: [&str; 9] = ["a", "aa", "aa0", "b", "b0", "n0", "aa", "zz", "v"];

fn full_id(i: usize) -> String {
    let p = IDS[i % IDS.len()];
    format!("{p}{}", "0".repeat(64 - p.len()))
}

/// One operation of the model test.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub enum Op {
    AddCtr {
        id: usize,
        name: usize,
        ns: usize,
        pod: Option<usize>,
        dep: Option<usize>,
        vol: Option<usize>,
    },
    RemoveCtr(usize),
    Get(usize),
    SaveState(usize, u8),
    Rename(usize, usize),
    Lookup(usize),
    Dependents(usize),
    AddPod {
        id: usize,
        name: usize,
        ns: usize,
    },
    RemovePod(usize),
    RemovePodCtrs(usize),
    LookupPod(usize),
    PodCtrs(usize),
    AddVol(usize, usize),
    RemoveVol(usize),
    LookupVol(usize),
    VolUsers(usize),
    AllCtrs,
    AllPods,
    AllVols,
    ExitCode(usize, i32, i64),
    GetExit(usize),
    Prune(i64),
    Refresh,
    ValidateDb(usize),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let i = || 0..IDS.len();
    prop_oneof![
        4 => (i(), 0..NAMES.len(), 0..NAMESPACES.len(), proptest::option::of(i()), proptest::option::of(i()), proptest::option::of(0..VOLS.len()))
            .prop_map(|(id, name, ns, pod, dep, vol)| Op::AddCtr { id, name, ns, pod, dep, vol }),
        2 => i().prop_map(Op::RemoveCtr),
        1 => i().prop_map(Op::Get),
        1 => (i(), 0u8..9).prop_map(|(a, b)| Op::SaveState(a, b)),
        1 => (i(), 0..NAMES.len()).prop_map(|(a, b)| Op::Rename(a, b)),
        2 => (0..QUERIES.len() + IDS.len()).prop_map(Op::Lookup),
        1 => i().prop_map(Op::Dependents),
        2 => (i(), 0..NAMES.len(), 0..NAMESPACES.len()).prop_map(|(id, name, ns)| Op::AddPod { id, name, ns }),
        1 => i().prop_map(Op::RemovePod),
        1 => i().prop_map(Op::RemovePodCtrs),
        1 => (0..QUERIES.len()).prop_map(Op::LookupPod),
        1 => i().prop_map(Op::PodCtrs),
        2 => (0..VOLS.len(), 0..NAMESPACES.len()).prop_map(|(a, b)| Op::AddVol(a, b)),
        1 => (0..VOLS.len()).prop_map(Op::RemoveVol),
        1 => (0..QUERIES.len()).prop_map(Op::LookupVol),
        1 => (0..VOLS.len()).prop_map(Op::VolUsers),
        1 => Just(Op::AllCtrs),
        1 => Just(Op::AllPods),
        1 => Just(Op::AllVols),
        1 => (i(), -1i32..256, 0i64..100).prop_map(|(a, b, c)| Op::ExitCode(a, b, c)),
        1 => i().prop_map(Op::GetExit),
        1 => (0i64..100).prop_map(Op::Prune),
        1 => Just(Op::Refresh),
        1 => (0usize..2).prop_map(Op::ValidateDb),
    ]
}

/// An operation and the namespace view it runs through.
pub fn step_strategy() -> impl Strategy<Value = (usize, Op)> {
    (0..NAMESPACES.len(), op_strategy())
}

/// A comparable rendering of a result.
pub fn outcome<T: Debug>(r: Result<T, StateError>) -> String {
    match r {
        Ok(v) => format!("ok {v:?}"),
        Err(e) => match e {
            StateError::NotFound { what, kind } => format!("NotFound {kind} {what}"),
            StateError::Ambiguous {
                prefix,
                kind,
                count,
            } => format!("Ambiguous {kind} {prefix} {count}"),
            StateError::NameInUse { name, kind, holder } => {
                format!("NameInUse {name} {kind} {holder}")
            }
            StateError::IdInUse { id, kind } => format!("IdInUse {id} {kind}"),
            StateError::Invalid { .. } => "Invalid".to_string(),
            StateError::InUse { id, kind, by, what } => {
                format!("InUse {id} {kind} {by:?} {what:?}")
            }
            StateError::DbConfigMismatch { key, db, current } => {
                format!("DbConfigMismatch {key} {db} {current}")
            }
            other => format!("unexpected error: {other}"),
        },
    }
}

fn secs(t: i64) -> Timestamp {
    Timestamp::from_datetime(fixed_time().datetime() + time::Duration::seconds(t))
}

/// Runs one operation; returns its outcome.
pub fn apply(s: &dyn State, ns: &str, op: &Op) -> String {
    match op {
        Op::AddCtr {
            id,
            name,
            ns: cns,
            pod,
            dep,
            vol,
        } => {
            let mut c = ctr_ns(&full_id(*id), NAMES[*name], NAMESPACES[*cns]);
            if c.namespace.is_empty() && !ns.is_empty() {
                c.namespace = ns.to_string();
            }
            c.pod = pod.map(full_id);
            c.dependencies = dep.map(full_id).into_iter().collect();
            c.named_volumes = vol
                .map(|v| NamedVolume {
                    name: VOLS[v].to_string(),
                    dest: "/v".into(),
                    options: vec![],
                })
                .into_iter()
                .collect();
            outcome(s.add_container(&c, &ContainerState::configured()))
        }
        Op::RemoveCtr(i) => outcome(s.remove_container(&full_id(*i))),
        Op::Get(i) => outcome(s.container(&full_id(*i))),
        Op::SaveState(i, st) => {
            let state = ContainerState {
                state: ContainerStatus::ALL[*st as usize % ContainerStatus::ALL.len()],
                pid: i32::from(*st) * 100,
                started_time: fixed_time(),
                ..Default::default()
            };
            outcome(s.save_container_state(&full_id(*i), &state))
        }
        Op::Rename(i, n) => match s.container(&full_id(*i)) {
            Ok(mut r) => {
                r.config.name = NAMES[*n].to_string();
                outcome(s.rewrite_container_config(&r.config))
            }
            Err(e) => outcome::<()>(Err(e)),
        },
        Op::Lookup(q) => {
            let q = if *q < QUERIES.len() {
                QUERIES[*q].to_string()
            } else {
                full_id(*q - QUERIES.len())
            };
            outcome(s.lookup_container(&q))
        }
        Op::Dependents(i) => outcome(s.container_dependents(&full_id(*i))),
        Op::AddPod { id, name, ns: pns } => {
            let mut p = pod_ns(&full_id(*id), NAMES[*name], NAMESPACES[*pns]);
            if p.namespace.is_empty() && !ns.is_empty() {
                p.namespace = ns.to_string();
            }
            outcome(s.add_pod(&p, &PodState::default()))
        }
        Op::RemovePod(i) => outcome(s.remove_pod(&full_id(*i))),
        Op::RemovePodCtrs(i) => outcome(s.remove_pod_containers(&full_id(*i))),
        Op::LookupPod(q) => outcome(s.lookup_pod(QUERIES[*q])),
        Op::PodCtrs(i) => outcome(s.pod_containers(&full_id(*i))),
        Op::AddVol(v, vns) => {
            let mut c = vol_cfg(VOLS[*v]);
            c.namespace = if ns.is_empty() {
                NAMESPACES[*vns].to_string()
            } else {
                ns.to_string()
            };
            outcome(s.add_volume(&c, &VolumeState::default()))
        }
        Op::RemoveVol(v) => outcome(s.remove_volume(VOLS[*v])),
        Op::LookupVol(q) => outcome(s.lookup_volume(QUERIES[*q])),
        Op::VolUsers(v) => outcome(s.volume_users(VOLS[*v])),
        Op::AllCtrs => outcome(s.all_containers()),
        Op::AllPods => outcome(s.all_pods()),
        Op::AllVols => outcome(s.all_volumes()),
        Op::ExitCode(i, code, t) => outcome(s.record_exit_code(
            &full_id(*i),
            ExitCode {
                code: *code,
                time: secs(*t),
            },
        )),
        Op::GetExit(i) => outcome(s.exit_code(&full_id(*i))),
        Op::Prune(t) => outcome(s.prune_exit_codes(secs(*t))),
        Op::Refresh => outcome(s.refresh()),
        Op::ValidateDb(i) => {
            let d = DbConfig {
                static_dir: format!("/s{i}"),
                tmp_dir: "/t".into(),
                graph_root: "/g".into(),
                run_root: "/r".into(),
                graph_driver: "vfs".into(),
                volume_path: "/v".into(),
            };
            outcome(s.validate_db_config(&d))
        }
    }
}

/// Runs `steps` against a fresh backend state and a fresh memory state;
/// fails at the first differing outcome, then compares full listings.
pub fn check(factory: Factory<'_>, steps: &[(usize, Op)]) -> Result<(), TestCaseError> {
    let sut = factory();
    let reference = Fresh::memory();
    let views = |s: &dyn State| -> Vec<Box<dyn State>> {
        NAMESPACES
            .iter()
            .map(|ns| s.with_namespace(ns).expect("namespace view"))
            .collect()
    };
    let sut_views = views(&*sut);
    let ref_views = views(&*reference);
    for (n, (view, op)) in steps.iter().enumerate() {
        let ns = NAMESPACES[*view];
        let got = apply(&*sut_views[*view], ns, op);
        let want = apply(&*ref_views[*view], ns, op);
        prop_assert_eq!(&got, &want, "step {} in namespace {:?}: {:?}", n, ns, op);
    }
    for op in [Op::AllCtrs, Op::AllPods, Op::AllVols] {
        prop_assert_eq!(apply(&*sut, "", &op), apply(&*reference, "", &op));
    }
    Ok(())
}

/// Runs `cases` random sequences of up to 40 operations.
pub fn run(factory: Factory<'_>, cases: u32) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = proptest::collection::vec(step_strategy(), 1..40);
    if let Err(e) = runner.run(&strategy, |steps| check(factory, &steps)) {
        panic!("model test failed: {e}");
    }
}
