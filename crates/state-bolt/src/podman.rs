//! Reading podman 4.x's `bolt_state.db`: its buckets translated into the
//! key-value view [`rpod_state::kv::KvState`] works on.
//!
//! | podman | rpod key |
//! |---|---|
//! | `ctr/<id>/config` (+ `pod-id`, `namespace`) | `c\0<id>\0c` (the JSON as is; `pod`/`namespace` filled from the keys when the JSON lacks them; `isInfra` when `pause` is true and the container is in a pod) |
//! | `ctr/<id>/state` (+ `netns`) | `c\0<id>\0s` (`netNS` set from the `netns` key) |
//! | `ctr/<id>/dependencies/<dependent>` | `d\0<id>\0<dependent>` |
//! | `pod/<id>/config`, `state` | `p\0<id>\0c`, `p\0<id>\0s` |
//! | `pod/<id>/containers/<ctr>` | `pm\0<id>\0<ctr>` |
//! | `vol/<name>/config`, `state` | `v\0<name>\0c`, `v\0<name>\0s` (`{}` when a legacy DB lacks it) |
//! | `vol/<name>/vol-dependencies/<ctr>` | `vu\0<name>\0<ctr>`, **only for containers that still exist** (podman leaves stale entries) |
//! | `exit-code/<id>` + `exit-code-time-stamp/<id>` | `x\0<id>` ([`ExitCode`]) |
//! | `runtime-config` | `m\0dbconfig` ([`DbConfig`]) |
//! | (every container and pod) | `i\0<id>` and `n\0<name>` (id and name registry) |
//!
//! The translation is rebuilt from the file for every operation (the file is
//! opened per operation, as podman does), so it always reflects what podman
//! last wrote.
//!
//! # Versions covered
//!
//! [`PodmanSchema`] tells the eras apart by their top-level buckets:
//! * **podman 1.5 to 1.9** (the seed era, 10 buckets: no `exec`, no exit-code
//!   buckets): volume configs use `driver`, `options` and `ctrSpecific`
//!   (renamed here to 4.x's `volumeDriver`, `volumeOptions`, `isAnon`), have
//!   no `lockID` (read as 0) and no `state` key (read as `{}`); pod configs
//!   have `infraConfig.makeInfraContainer` (mirrored as `hasInfra`); exit codes
//!   exist only in the containers' states; exec sessions are the old
//!   `execSessions` state field (kept in `extra`, cleared by a reset).
//! * **podman 2.0 to 4.1** (`exec` bucket, no exit-code buckets): as 4.x,
//!   without recorded exit codes. Older `networks` values (a ctr ID instead
//!   of options JSON) are not read: networks are not part of rpod's records.
//! * **podman 4.2 to 4.3** (14 buckets): everything above, tested against
//!   real podman 4.3.1 databases.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rpod_bolt::{Bucket, Tx};
use rpod_state::kv::schema_marker;
use rpod_state::{DbConfig, ExitCode, StateError, Timestamp};
use serde_json::{Map, Value};

use crate::bolt_err;

/// Top-level buckets whose presence identifies a podman database.
pub const REQUIRED_BUCKETS: [&[u8]; 3] = [b"ctr", b"id-registry", b"name-registry"];

/// Which era of podman's schema a database has, told by its top-level buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PodmanSchema {
    /// podman 1.5 to 1.9: 10 buckets, no `exec` nor exit-code buckets.
    Seed,
    /// podman 2.0 to 4.1: an `exec` bucket, no exit-code buckets.
    V2,
    /// podman 4.2 and later: `exit-code` and `exit-code-time-stamp` buckets.
    V4,
}

impl PodmanSchema {
    /// The era of a database with these top-level bucket names.
    pub fn of(bucket_names: &[Vec<u8>]) -> Self {
        let has = |n: &[u8]| bucket_names.iter().any(|x| x == n);
        if has(b"exit-code") {
            PodmanSchema::V4
        } else if has(b"exec") {
            PodmanSchema::V2
        } else {
            PodmanSchema::Seed
        }
    }

    /// The podman versions of this era, for messages.
    pub fn versions(self) -> &'static str {
        match self {
            PodmanSchema::Seed => "podman 1.5 to 1.9",
            PodmanSchema::V2 => "podman 2.0 to 4.1",
            PodmanSchema::V4 => "podman 4.2 or later",
        }
    }
}

/// Renames a seed-era key to its 4.x name when only the old one is present.
fn rename(m: &mut Map<String, Value>, old: &str, new: &str) {
    if !m.contains_key(new) {
        if let Some(v) = m.remove(old) {
            m.insert(new.to_string(), v);
        }
    }
}

/// `(key, value or None for a sub-bucket)` of a bucket.
type Entries = Vec<(String, Option<Vec<u8>>)>;

struct Cx<'a> {
    path: &'a Path,
    out: BTreeMap<Vec<u8>, Vec<u8>>,
}

fn key(parts: &[&str]) -> Vec<u8> {
    parts.join("\0").into_bytes()
}

impl Cx<'_> {
    fn corrupt(&self, reason: String) -> StateError {
        StateError::Corrupt {
            path: self.path.to_path_buf(),
            reason,
        }
    }

    fn get(&self, b: &Bucket<'_>, k: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        b.get(k).map_err(|e| bolt_err("reading", self.path, e))
    }

    fn sub<'t>(&self, b: &Bucket<'t>, k: &[u8]) -> Result<Option<Bucket<'t>>, StateError> {
        b.bucket(k).map_err(|e| bolt_err("reading", self.path, e))
    }

    /// `(key, is_bucket)` of every entry of `b`, keys as UTF-8 ids.
    fn entries(&self, b: &Bucket<'_>, what: &str) -> Result<Entries, StateError> {
        let mut out = Vec::new();
        for item in b.iter() {
            let (k, v) = item.map_err(|e| bolt_err("reading", self.path, e))?;
            let k = String::from_utf8(k).map_err(|e| {
                self.corrupt(format!("{what}: key is not UTF-8: {:?}", e.as_bytes()))
            })?;
            if k.contains('\0') {
                return Err(self.corrupt(format!("{what}: key {k:?} contains a NUL byte")));
            }
            out.push((k, v));
        }
        Ok(out)
    }

    fn json_obj(&self, bytes: &[u8], what: &str) -> Result<Map<String, Value>, StateError> {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(other) => {
                Err(self.corrupt(format!("{what}: expected a JSON object, found {other}")))
            }
            Err(e) => Err(self.corrupt(format!("{what}: {e}"))),
        }
    }

    fn put_json(&mut self, k: Vec<u8>, v: &impl serde::Serialize) -> Result<(), StateError> {
        let bytes = serde_json::to_vec(v)
            .map_err(|e| self.corrupt(format!("re-encoding a record: {e}")))?;
        self.out.insert(k, bytes);
        Ok(())
    }

    fn text(&self, b: &Bucket<'_>, k: &[u8], what: &str) -> Result<Option<String>, StateError> {
        match self.get(b, k)? {
            None => Ok(None),
            Some(v) => String::from_utf8(v).map(Some).map_err(|_| {
                self.corrupt(format!(
                    "{what}: value of {:?} is not UTF-8",
                    String::from_utf8_lossy(k)
                ))
            }),
        }
    }
}

fn str_field<'m>(m: &'m Map<String, Value>, k: &str) -> &'m str {
    m.get(k).and_then(Value::as_str).unwrap_or("")
}

/// Translates the podman database open in `tx` (at `path`) into rpod's
/// key-value view.
pub fn translate(tx: &Tx<'_>, path: &Path) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, StateError> {
    let mut cx = Cx {
        path,
        out: BTreeMap::new(),
    };
    let err = |e| bolt_err("reading", path, e);
    cx.out.insert(b"m\0schema".to_vec(), schema_marker());

    // runtime-config → database config
    if let Some(rc) = tx.bucket(b"runtime-config").map_err(err)? {
        let t = |k: &str| -> Result<String, StateError> {
            Ok(cx
                .text(&rc, k.as_bytes(), "runtime-config")?
                .unwrap_or_default())
        };
        let db = DbConfig {
            static_dir: t("static-dir")?,
            tmp_dir: t("tmp-dir")?,
            graph_root: t("graph-root")?,
            run_root: t("run-root")?,
            graph_driver: t("graph-driver-name")?,
            volume_path: t("volume-path")?,
        };
        cx.put_json(b"m\0dbconfig".to_vec(), &db)?;
    }

    // containers
    let mut ctr_ids = BTreeSet::new();
    if let Some(ctrs) = tx.bucket(b"ctr").map_err(err)? {
        for (id, v) in cx.entries(&ctrs, "bucket ctr")? {
            if v.is_some() {
                return Err(cx.corrupt(format!("ctr/{id} is a value, not a container bucket")));
            }
            let Some(b) = cx.sub(&ctrs, id.as_bytes())? else {
                continue;
            };
            let what = format!("container {id}");
            let cfg_bytes = cx
                .get(&b, b"config")?
                .ok_or_else(|| cx.corrupt(format!("{what} has no config")))?;
            let mut cfg = cx.json_obj(&cfg_bytes, &format!("{what} config"))?;
            let st_bytes = cx
                .get(&b, b"state")?
                .ok_or_else(|| cx.corrupt(format!("{what} has no state")))?;
            let mut st = cx.json_obj(&st_bytes, &format!("{what} state"))?;
            if str_field(&cfg, "id") != id {
                return Err(cx.corrupt(format!(
                    "{what}: config id {:?} differs from its bucket",
                    str_field(&cfg, "id")
                )));
            }
            let name = str_field(&cfg, "name").to_string();
            if name.is_empty() || name.contains('\0') {
                return Err(cx.corrupt(format!("{what}: bad name {name:?}")));
            }
            if str_field(&cfg, "pod").is_empty() {
                if let Some(pod) = cx.text(&b, b"pod-id", &what)?.filter(|p| !p.is_empty()) {
                    cfg.insert("pod".into(), Value::String(pod));
                } else {
                    cfg.remove("pod");
                }
            }
            if str_field(&cfg, "namespace").is_empty() {
                if let Some(ns) = cx.text(&b, b"namespace", &what)?.filter(|p| !p.is_empty()) {
                    cfg.insert("namespace".into(), Value::String(ns));
                }
            }
            let pod = str_field(&cfg, "pod").to_string();
            if !pod.is_empty() && cfg.get("pause").and_then(Value::as_bool) == Some(true) {
                cfg.insert("isInfra".into(), Value::Bool(true));
            }
            if let Some(netns) = cx.text(&b, b"netns", &what)?.filter(|p| !p.is_empty()) {
                st.insert("netNS".into(), Value::String(netns));
            }
            let ns = str_field(&cfg, "namespace").to_string();
            let mut entry = Map::new();
            entry.insert("k".into(), Value::String("c".into()));
            entry.insert("n".into(), Value::String(name.clone()));
            if !ns.is_empty() {
                entry.insert("ns".into(), Value::String(ns));
            }
            if !pod.is_empty() {
                entry.insert("pod".into(), Value::String(pod));
            }
            cx.put_json(key(&["i", &id]), &entry)?;
            cx.out.insert(key(&["n", &name]), id.clone().into_bytes());
            cx.put_json(key(&["c", &id]), &(&cfg, &st))?;
            if let Some(deps) = cx.sub(&b, b"dependencies")? {
                for (dependent, _) in cx.entries(&deps, &format!("{what} dependencies"))? {
                    cx.out.insert(key(&["d", &id, &dependent]), Vec::new());
                }
            }
            ctr_ids.insert(id);
        }
    }

    // pods
    if let Some(pods) = tx.bucket(b"pod").map_err(err)? {
        for (id, v) in cx.entries(&pods, "bucket pod")? {
            if v.is_some() {
                return Err(cx.corrupt(format!("pod/{id} is a value, not a pod bucket")));
            }
            let Some(b) = cx.sub(&pods, id.as_bytes())? else {
                continue;
            };
            let what = format!("pod {id}");
            let cfg_bytes = cx
                .get(&b, b"config")?
                .ok_or_else(|| cx.corrupt(format!("{what} has no config")))?;
            let mut cfg = cx.json_obj(&cfg_bytes, &format!("{what} config"))?;
            let st = match cx.get(&b, b"state")? {
                Some(s) => cx.json_obj(&s, &format!("{what} state"))?,
                None => Map::new(),
            };
            let name = str_field(&cfg, "name").to_string();
            if name.is_empty() || name.contains('\0') {
                return Err(cx.corrupt(format!("{what}: bad name {name:?}")));
            }
            if str_field(&cfg, "namespace").is_empty() {
                if let Some(ns) = cx.text(&b, b"namespace", &what)?.filter(|p| !p.is_empty()) {
                    cfg.insert("namespace".into(), Value::String(ns));
                }
            }
            // seed era: infraConfig.makeInfraContainer instead of hasInfra
            if !cfg.contains_key("hasInfra") {
                let make = cfg
                    .get("infraConfig")
                    .and_then(|i| i.get("makeInfraContainer"))
                    .and_then(Value::as_bool);
                if let Some(true) = make {
                    cfg.insert("hasInfra".into(), Value::Bool(true));
                }
            }
            let ns = str_field(&cfg, "namespace").to_string();
            let mut entry = Map::new();
            entry.insert("k".into(), Value::String("p".into()));
            entry.insert("n".into(), Value::String(name.clone()));
            if !ns.is_empty() {
                entry.insert("ns".into(), Value::String(ns));
            }
            cx.put_json(key(&["i", &id]), &entry)?;
            cx.out.insert(key(&["n", &name]), id.clone().into_bytes());
            cx.put_json(key(&["p", &id]), &(&cfg, &st))?;
            if let Some(members) = cx.sub(&b, b"containers")? {
                for (ctr, _) in cx.entries(&members, &format!("{what} containers"))? {
                    cx.out.insert(key(&["pm", &id, &ctr]), Vec::new());
                }
            }
        }
    }

    // volumes
    if let Some(vols) = tx.bucket(b"vol").map_err(err)? {
        for (name, v) in cx.entries(&vols, "bucket vol")? {
            if v.is_some() {
                return Err(cx.corrupt(format!("vol/{name} is a value, not a volume bucket")));
            }
            let Some(b) = cx.sub(&vols, name.as_bytes())? else {
                continue;
            };
            let what = format!("volume {name}");
            let cfg_bytes = cx
                .get(&b, b"config")?
                .ok_or_else(|| cx.corrupt(format!("{what} has no config")))?;
            let mut cfg = cx.json_obj(&cfg_bytes, &format!("{what} config"))?;
            // seed era (podman 1.5): driver/options/ctrSpecific, no lockID
            rename(&mut cfg, "driver", "volumeDriver");
            rename(&mut cfg, "options", "volumeOptions");
            rename(&mut cfg, "ctrSpecific", "isAnon");
            if str_field(&cfg, "name") != name {
                return Err(cx.corrupt(format!(
                    "{what}: config name {:?} differs from its bucket",
                    str_field(&cfg, "name")
                )));
            }
            let st = match cx.get(&b, b"state")? {
                Some(s) => cx.json_obj(&s, &format!("{what} state"))?,
                None => Map::new(),
            };
            cx.put_json(key(&["v", &name]), &(&cfg, &st))?;
            if let Some(users) = cx.sub(&b, b"vol-dependencies")? {
                for (ctr, _) in cx.entries(&users, &format!("{what} vol-dependencies"))? {
                    // podman leaves entries of removed containers behind
                    if ctr_ids.contains(&ctr) {
                        cx.out.insert(key(&["vu", &name, &ctr]), Vec::new());
                    }
                }
            }
        }
    }

    // exit codes
    if let Some(codes) = tx.bucket(b"exit-code").map_err(err)? {
        let stamps = tx.bucket(b"exit-code-time-stamp").map_err(err)?;
        for (id, v) in cx.entries(&codes, "bucket exit-code")? {
            let Some(v) = v else { continue };
            let code: i32 = std::str::from_utf8(&v)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or_else(|| {
                    cx.corrupt(format!(
                        "exit code of {id}: {:?} is not a number",
                        String::from_utf8_lossy(&v)
                    ))
                })?;
            let time = match &stamps {
                Some(s) => match cx.text(s, id.as_bytes(), "exit-code-time-stamp")? {
                    Some(t) => Timestamp::parse(t.trim())
                        .map_err(|e| cx.corrupt(format!("exit code time stamp of {id}: {e}")))?,
                    None => Timestamp::ZERO,
                },
                None => Timestamp::ZERO,
            };
            cx.put_json(key(&["x", &id]), &ExitCode { code, time })?;
        }
    }
    Ok(cx.out)
}
