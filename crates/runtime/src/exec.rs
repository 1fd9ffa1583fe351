//! Exec sessions: run another process in a running container through
//! conmon's exec mode (`rpod exec`).
//!
//! A session is recorded in the container's state (`execSessions`, id →
//! JSON with `id`, `pid`, `command`, `running`) while it runs, so `inspect`
//! shows it under `ExecIDs` and `rm` refuses to remove a container with live
//! sessions unless forced. conmon runs `rpod container cleanup --exec SID ID`
//! when the process exits; the attached CLI also removes the session itself.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use rpod_events::Status;
use rpod_oci::attach::AttachSocket;
use rpod_oci::exec::{ExecRequest, ExecSession};
use rpod_state::ContainerStatus;
use serde_json::{json, Value};

use crate::container::event;
use crate::{names, LockedContainer, Result, Runtime, RuntimeError};

/// What to run (`rpod exec` flags).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOptions {
    /// Command and arguments.
    pub command: Vec<String>,
    /// `-e KEY=VALUE`, added to (overriding) the container's environment.
    pub env: Vec<String>,
    /// `-w DIR`; the container's working directory when `None`.
    pub workdir: Option<String>,
    /// `-u user[:group]`; the container's user when `None`.
    pub user: Option<String>,
    /// `--privileged`: every capability.
    pub privileged: bool,
    /// `-t`.
    pub tty: bool,
    /// `-i`.
    pub interactive: bool,
    /// `-d`: start and return the session id.
    pub detach: bool,
}

/// How an exec ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecOutcome {
    /// The attached process exited with this code.
    Exited(i32),
    /// Detached: the session id and the process's PID.
    Detached {
        /// The session id.
        session: String,
        /// The process's host PID.
        pid: i32,
    },
}

fn set_env(env: &mut Vec<Value>, kv: &str) {
    let key = kv.split_once('=').map_or(kv, |(k, _)| k);
    env.retain(|e| {
        e.as_str()
            .is_none_or(|s| s.split_once('=').map_or(s, |(k, _)| k) != key)
    });
    env.push(Value::String(kv.to_string()));
}

impl LockedContainer<'_> {
    /// The OCI `process` object for an exec: the container's process with
    /// the exec's command, environment, directory, user and capabilities.
    /// Validates everything (the command must exist and be executable).
    pub fn exec_process(&self, opts: &ExecOptions) -> Result<Value> {
        let Some(cmd) = opts.command.first() else {
            return Err(RuntimeError::InvalidInput {
                what: "exec command",
                value: String::new(),
                expected: "a command to run in the container".into(),
            });
        };
        for kv in &opts.env {
            if kv.split_once('=').is_none_or(|(k, _)| k.is_empty()) {
                return Err(RuntimeError::InvalidInput {
                    what: "environment variable",
                    value: kv.clone(),
                    expected: "KEY=VALUE".into(),
                });
            }
        }
        let mut p = self.spec()["process"].take();
        if !p.is_object() {
            p = json!({"cwd": "/", "user": {"uid": 0, "gid": 0}});
        }
        let rootfs = PathBuf::from(&self.rec.config.rootfs);
        let mut env: Vec<Value> = p["env"].as_array().cloned().unwrap_or_default();
        for kv in &opts.env {
            set_env(&mut env, kv);
        }
        if let Some(w) = &opts.workdir {
            if !w.starts_with('/') {
                return Err(RuntimeError::InvalidInput {
                    what: "working directory",
                    value: w.clone(),
                    expected: "an absolute path inside the container".into(),
                });
            }
            p["cwd"] = json!(w);
        }
        if let Some(u) = &opts.user {
            let r = rpod_oci::spec::resolve_user(&rootfs, u)?;
            p["user"] = json!({
                "uid": r.uid,
                "gid": r.gid,
                "additionalGids": r.additional_gids,
                "umask": p["user"]["umask"].as_u64().unwrap_or(0o22),
            });
            if let Some(home) = r.home {
                set_env(&mut env, &format!("HOME={home}"));
            }
        }
        let path_env = env
            .iter()
            .filter_map(Value::as_str)
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(rpod_oci::spec::DEFAULT_PATH)
            .to_string();
        let cwd = p["cwd"].as_str().unwrap_or("/").to_string();
        rpod_oci::spec::find_command(&rootfs, cmd, &path_env, &cwd)?;
        p["env"] = Value::Array(env);
        p["args"] = json!(opts.command);
        p["terminal"] = json!(opts.tty);
        if opts.tty {
            p["consoleSize"] = json!({"height": 24, "width": 80});
        } else if let Some(o) = p.as_object_mut() {
            o.remove("consoleSize");
        }
        if opts.privileged {
            let all: Vec<&str> = rpod_oci::spec::ALL_CAPS.to_vec();
            p["capabilities"] = json!({
                "bounding": all, "effective": all, "permitted": all,
            });
        }
        Ok(p)
    }

    /// Live exec sessions (their process still exists).
    pub fn live_exec_sessions(&self) -> Vec<(String, i32)> {
        self.rec
            .state
            .exec_sessions
            .iter()
            .filter_map(|(id, v)| {
                let pid = v["pid"].as_i64().unwrap_or(0) as i32;
                (pid > 0 && rpod_oci::exit::process_alive(pid)).then(|| (id.clone(), pid))
            })
            .collect()
    }

    /// Before removing: refuses while exec sessions run, unless `force`,
    /// which kills them.
    pub(crate) fn check_exec_sessions(&mut self, force: bool) -> Result<()> {
        let live = self.live_exec_sessions();
        if live.is_empty() {
            return Ok(());
        }
        if !force {
            return Err(RuntimeError::InvalidState {
                id: self.id().to_string(),
                state: self.status().as_str().to_string(),
                op: "remove",
                hint: format!(
                    " (it has {} running exec session(s): {}; use --force to kill them)",
                    live.len(),
                    live.iter()
                        .map(|(s, _)| &s[..12.min(s.len())])
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        for (_, pid) in &live {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        self.rec.state.exec_sessions.clear();
        self.save()
    }

    fn exec_bundle(&self, session: &str) -> PathBuf {
        self.rt
            .bundle_dir(self.id())
            .join(&session[..12.min(session.len())])
    }

    /// Removes a finished session from the state and its bundle from disk;
    /// emits `exec_died` with `code` when known. Idempotent.
    pub fn finish_exec_session(&mut self, session: &str, code: Option<i32>) -> Result<()> {
        let bundle = self.exec_bundle(session);
        let code = code.or_else(|| {
            rpod_oci::exit::read_exit_code(&bundle.join("exit"), self.id())
                .ok()
                .flatten()
        });
        let had = self.rec.state.exec_sessions.remove(session).is_some();
        if had {
            self.save()?;
            let mut ev =
                event(Status::ExecDied, &self.rec.config).with_attribute("execID", session);
            if let Some(c) = code {
                ev = ev.with_attribute("exitCode", &c.to_string());
            }
            self.rt.emit(ev);
        }
        if let Err(e) = std::fs::remove_dir_all(&bundle) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("removing exec bundle {}: {e}", bundle.display());
            }
        }
        Ok(())
    }

    /// Starts an exec session in this (running) container and records it.
    /// The caller streams and waits, then calls
    /// [`LockedContainer::finish_exec_session`] (with the lock re-taken).
    pub fn start_exec(&mut self, opts: &ExecOptions) -> Result<(String, ExecSession)> {
        if self.status() != ContainerStatus::Running {
            let hint = if self.status() == ContainerStatus::Paused {
                " (it is paused: unpause it first)"
            } else {
                " (it is not running: start it first)"
            };
            return Err(self.invalid("exec in", hint));
        }
        let process = self.exec_process(opts)?;
        // forget sessions whose process is gone
        let live: Vec<String> = self
            .live_exec_sessions()
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        self.rec.state.exec_sessions.retain(|k, _| live.contains(k));
        let session = names::new_id();
        let id = self.id().to_string();
        let bundle = self.exec_bundle(&session);
        let oci = self.oci()?;
        let monitor = self.rt.monitor()?;
        let mut req = ExecRequest::new(&id, &session, &bundle, process);
        req.terminal = opts.tty;
        req.stdin = opts.interactive;
        req.env = self.rt.config().conmon_env_vars.clone();
        let mut exit_cmd = self.rt.exit_command.clone();
        exit_cmd.extend([
            "container".into(),
            "cleanup".into(),
            "--exec".into(),
            session.clone(),
            id.clone(),
        ]);
        req.exit_command = exit_cmd;
        let started = monitor.exec(&oci, &req, !opts.detach);
        let s = match started {
            Ok(s) => s,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&bundle);
                return Err(e.into());
            }
        };
        self.rec.state.exec_sessions.insert(
            session.clone(),
            json!({
                "id": session,
                "containerId": id,
                "pid": s.pid,
                "command": opts.command,
                "terminal": opts.tty,
                "running": true,
            }),
        );
        self.save()?;
        self.rt.emit(
            event(Status::Exec, &self.rec.config)
                .with_attribute("execID", &session)
                .with_attribute("command", &opts.command.join(" ")),
        );
        Ok((session, s))
    }
}

impl Runtime {
    /// `rpod exec`: runs `opts.command` in the running container
    /// `id_or_name`. Attached, streams its output and returns its exit code;
    /// detached, returns the session id. The container's lock is not held
    /// while the process runs.
    pub fn exec(
        &self,
        id_or_name: &str,
        opts: &ExecOptions,
        stdin: Option<Box<dyn Read + Send>>,
        stdout: &mut dyn Write,
        stderr: &mut dyn Write,
    ) -> Result<ExecOutcome> {
        let (id, session, s) = {
            let mut c = self.lock_container(id_or_name)?;
            let (session, s) = c.start_exec(opts)?;
            (c.id().to_string(), session, s)
        };
        if opts.detach {
            return Ok(ExecOutcome::Detached {
                session,
                pid: s.pid,
            });
        }
        if let Some(a) = s.attach() {
            let input = if opts.interactive { stdin } else { None };
            if let Err(e) = a.stream(input, stdout, stderr) {
                tracing::warn!("exec attach in {id} ended: {e}");
            }
        }
        self.finish_exec(&id, &session, &s)
    }

    /// Waits for an attached session's process, then removes the session
    /// (with the container's lock re-taken) and returns its exit code.
    fn finish_exec(&self, id: &str, session: &str, s: &ExecSession) -> Result<ExecOutcome> {
        let code = s.wait(None);
        match self.lock_container(id) {
            Ok(mut c) => c.finish_exec_session(session, code.as_ref().ok().copied())?,
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        Ok(ExecOutcome::Exited(code?))
    }

    /// `rpod exec` attached, with the caller driving the connection (e.g. a
    /// terminal with resizing and a detach sequence): `attach` gets the
    /// session's attach socket and its bundle (whose `ctl` FIFO resizes the
    /// session's terminal) and returns whether the user detached. A detached
    /// session keeps running (conmon's exit command cleans it up when it
    /// ends); otherwise its exit code is returned, as by [`Runtime::exec`].
    pub fn exec_attached(
        &self,
        id_or_name: &str,
        opts: &ExecOptions,
        attach: &mut dyn FnMut(AttachSocket, &Path) -> bool,
    ) -> Result<ExecOutcome> {
        let opts = ExecOptions {
            detach: false,
            ..opts.clone()
        };
        let (id, session, bundle, mut s) = {
            let mut c = self.lock_container(id_or_name)?;
            let (session, s) = c.start_exec(&opts)?;
            let bundle = c.exec_bundle(&session);
            (c.id().to_string(), session, bundle, s)
        };
        if let Some(sock) = s.take_attach() {
            if attach(sock, &bundle) {
                return Ok(ExecOutcome::Detached {
                    session,
                    pid: s.pid,
                });
            }
        }
        self.finish_exec(&id, &session, &s)
    }

    /// `rpod container cleanup --exec SESSION ID` (conmon's exit command of
    /// an exec session).
    pub fn cleanup_exec(&self, id_or_name: &str, session: &str) -> Result<()> {
        match self.lock_container(id_or_name) {
            Ok(mut c) => c.finish_exec_session(session, None),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }
}
