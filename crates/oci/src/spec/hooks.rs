//! OCI hooks from `hooks_dir` (the hooks JSON schema 1.0.0 of
//! `containers/common/pkg/hooks`, also read by podman and CRI-O).
//!
//! ```json
//! {"version": "1.0.0",
//!  "hook": {"path": "/usr/bin/my-hook", "args": ["my-hook", "prestart"], "timeout": 5},
//!  "when": {"always": true, "annotations": {"^com\\.example$": "^on$"},
//!           "commands": [".*/sleep$"], "hasBindMounts": true},
//!  "stages": ["prestart"]}
//! ```
//!
//! Every `*.json` file of every directory is read (a later directory's file
//! replaces an earlier one with the same name, as in podman); a hook is
//! included when *any* of its `when` conditions matches.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::types::{Hook, Hooks};
use crate::OciError;

/// The hook stages of the OCI runtime spec.
const STAGES: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

#[derive(Debug, Deserialize)]
struct HookFile {
    version: String,
    hook: Hook,
    #[serde(default)]
    when: When,
    stages: Vec<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct When {
    #[serde(default)]
    always: Option<bool>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    commands: Vec<String>,
    #[serde(default)]
    has_bind_mounts: Option<bool>,
}

/// What a hook's `when` is matched against.
#[derive(Debug, Clone, Copy)]
pub struct HookContext<'a> {
    /// The container's annotations.
    pub annotations: &'a BTreeMap<String, String>,
    /// `process.args[0]`.
    pub command: &'a str,
    /// Whether the container has user bind mounts.
    pub has_bind_mounts: bool,
}

fn regex(path: &Path, pattern: &str) -> Result<regex_lite::Regex, OciError> {
    regex_lite::Regex::new(pattern).map_err(|e| OciError::BadFile {
        what: "OCI hook",
        path: path.to_path_buf(),
        reason: format!("bad regular expression {pattern:?}: {e}"),
    })
}

fn matches(path: &Path, when: &When, ctx: &HookContext<'_>) -> Result<bool, OciError> {
    if when.always == Some(true) {
        return Ok(true);
    }
    if when.has_bind_mounts == Some(true) && ctx.has_bind_mounts {
        return Ok(true);
    }
    for (kre, vre) in &when.annotations {
        let (kre, vre) = (regex(path, kre)?, regex(path, vre)?);
        if ctx
            .annotations
            .iter()
            .any(|(k, v)| kre.is_match(k) && vre.is_match(v))
        {
            return Ok(true);
        }
    }
    for cre in &when.commands {
        if regex(path, cre)?.is_match(ctx.command) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Reads the hook files of `dirs` and returns the hooks that apply.
/// A missing directory is skipped; a malformed file is an error naming it.
pub fn load_hooks(dirs: &[PathBuf], ctx: &HookContext<'_>) -> Result<Hooks, OciError> {
    let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
    for dir in dirs {
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(OciError::io(dir, e)),
        };
        for ent in rd {
            let ent = ent.map_err(|e| OciError::io(dir, e))?;
            let name = ent.file_name().to_string_lossy().into_owned();
            if name.ends_with(".json") && ent.path().is_file() {
                files.insert(name, ent.path());
            }
        }
    }
    let mut hooks = Hooks::default();
    for path in files.values() {
        let bad = |reason: String| OciError::BadFile {
            what: "OCI hook",
            path: path.clone(),
            reason,
        };
        let text = std::fs::read(path).map_err(|e| OciError::io(path, e))?;
        let hf: HookFile = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
        if hf.version != "1.0.0" {
            return Err(bad(format!(
                "unsupported version {:?} (expected 1.0.0)",
                hf.version
            )));
        }
        if !hf.hook.path.starts_with('/') {
            return Err(bad(format!("hook.path {:?} is not absolute", hf.hook.path)));
        }
        if hf.stages.is_empty() {
            return Err(bad("no stages".into()));
        }
        for s in &hf.stages {
            if !STAGES.contains(&s.as_str()) {
                return Err(bad(format!("unknown stage {s:?}")));
            }
        }
        if !matches(path, &hf.when, ctx)? {
            continue;
        }
        for s in &hf.stages {
            if let Some(list) = hooks.stage_mut(s) {
                list.push(hf.hook.clone());
            }
        }
    }
    Ok(hooks)
}
