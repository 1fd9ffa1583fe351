//! The runtime commands rpod runs itself (`start`, `kill`, `delete`, `pause`,
//! `resume`, `state`); `create` is run by the monitor (see [`crate::Monitor`]).

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};

use serde::Deserialize;

use crate::{OciError, OciRuntime};

/// `runc state` output.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeState {
    /// OCI version of the runtime.
    #[serde(default)]
    pub oci_version: String,
    /// Container id.
    pub id: String,
    /// PID of the container's process (0 once stopped).
    #[serde(default)]
    pub pid: i32,
    /// `created`, `running`, `paused`, `stopped`.
    pub status: String,
    /// Bundle path.
    #[serde(default)]
    pub bundle: String,
    /// Creation time (RFC 3339).
    #[serde(default)]
    pub created: String,
    /// Annotations from the spec.
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// Extracts the message from runc's logrus text (`time=… level=error msg="…"`)
/// or JSON (`{"level":"error","msg":"…"}`) output; otherwise the trimmed text.
pub(crate) fn runtime_message(stderr: &str) -> String {
    let mut msgs = Vec::new();
    for line in stderr.lines() {
        let line = line.trim();
        if line.starts_with('{') {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
                if let Some(m) = v.get("msg").and_then(|m| m.as_str()) {
                    msgs.push(m.to_string());
                    continue;
                }
            }
        }
        if let Some(pos) = line.find("msg=\"") {
            let rest = &line[pos + 5..];
            let mut out = String::new();
            let mut chars = rest.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some('n') => out.push('\n'),
                        Some('t') => out.push('\t'),
                        Some(o) => out.push(o),
                        None => {}
                    },
                    '"' => break,
                    c => out.push(c),
                }
            }
            msgs.push(out);
        } else if !line.is_empty() {
            msgs.push(line.to_string());
        }
    }
    msgs.join("\n")
}

impl OciRuntime {
    /// The global arguments every runtime command gets, before the subcommand:
    /// `--root <state_root>` and [`OciRuntime::extra_args`].
    pub fn global_args(&self) -> Vec<String> {
        let mut v = vec![
            "--root".to_string(),
            self.state_root.to_string_lossy().into_owned(),
        ];
        v.extend(self.extra_args.iter().cloned());
        v
    }

    /// A `Command` for the runtime with podman's environment (`XDG_RUNTIME_DIR=`
    /// and `PATH` only) and the global arguments.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.path);
        c.env_clear()
            .env("XDG_RUNTIME_DIR", "")
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| crate::spec::DEFAULT_PATH.into()),
            )
            .args(self.global_args())
            .stdin(Stdio::null());
        c
    }

    fn run(&self, op: &str, id: &str, args: &[&str]) -> Result<Output, OciError> {
        let out = self
            .command()
            .arg(op)
            .args(args)
            .arg(id)
            .output()
            .map_err(|source| OciError::Spawn {
                program: self.path.clone(),
                source,
            })?;
        if out.status.success() {
            return Ok(out);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let mut message = runtime_message(&stderr);
        if message.is_empty() {
            message = format!("{}", out.status);
        }
        Err(OciError::RuntimeFailed {
            runtime: self.name.clone(),
            op: op.into(),
            id: id.into(),
            message,
        })
    }

    /// `runc start <id>`.
    pub fn start(&self, id: &str) -> Result<(), OciError> {
        self.run("start", id, &[]).map(|_| ())
    }

    /// `runc kill [--all] <id> <signal>`. `--all` is only meaningful without a
    /// PID namespace.
    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), OciError> {
        let out = self
            .command()
            .arg("kill")
            .args(if all { &["--all"][..] } else { &[][..] })
            .arg(id)
            .arg(signal.to_string())
            .output()
            .map_err(|source| OciError::Spawn {
                program: self.path.clone(),
                source,
            })?;
        if out.status.success() {
            return Ok(());
        }
        Err(OciError::RuntimeFailed {
            runtime: self.name.clone(),
            op: "kill".into(),
            id: id.into(),
            message: runtime_message(&String::from_utf8_lossy(&out.stderr)),
        })
    }

    /// `runc delete [--force] <id>`; deleting a container the runtime does not
    /// know succeeds with `force`.
    pub fn delete(&self, id: &str, force: bool) -> Result<(), OciError> {
        let args: &[&str] = if force { &["--force"] } else { &[] };
        match self.run("delete", id, args) {
            Err(OciError::RuntimeFailed { message, .. })
                if force && message.contains("does not exist") =>
            {
                Ok(())
            }
            r => r.map(|_| ()),
        }
    }

    /// `runc pause <id>`.
    pub fn pause(&self, id: &str) -> Result<(), OciError> {
        self.run("pause", id, &[]).map(|_| ())
    }

    /// `runc resume <id>`.
    pub fn resume(&self, id: &str) -> Result<(), OciError> {
        self.run("resume", id, &[]).map(|_| ())
    }

    /// `runc state <id>`, parsed.
    pub fn state(&self, id: &str) -> Result<RuntimeState, OciError> {
        let out = self.run("state", id, &[])?;
        serde_json::from_slice(&out.stdout).map_err(|e| OciError::RuntimeFailed {
            runtime: self.name.clone(),
            op: "state".into(),
            id: id.into(),
            message: format!("unparseable state JSON: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_runc_messages() {
        assert_eq!(
            runtime_message(
                "time=\"2026-01-01T00:00:00Z\" level=error msg=\"container does not exist\"\n"
            ),
            "container does not exist"
        );
        assert_eq!(
            runtime_message(
                "{\"level\":\"error\",\"msg\":\"exec: \\\"/x\\\": no such file\",\"time\":\"t\"}\n"
            ),
            "exec: \"/x\": no such file"
        );
        assert_eq!(runtime_message("plain text\n"), "plain text");
    }
}
