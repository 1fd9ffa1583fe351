//! Exec sessions through conmon's exec mode, as podman 4.3.1 drives it
//! (`docs/conmon-protocol.md` §3.3).
//!
//! conmon gets three socketpairs: sync (fd 3), start (fd 4) and attach
//! (fd 5), and `-e --exec-attach --exec-process-spec FILE`. The protocol:
//!
//! 1. write start byte #1;
//! 2. conmon creates `<exec bundle>/attach` and sends `{"data": 0}` on the
//!    attach pipe;
//! 3. connect to the attach socket (when attaching);
//! 4. write start byte #2: conmon runs `runtime exec --process FILE --detach`;
//! 5. the sync pipe carries `{"data": <pid>}` and, when the process exits,
//!    `{"data": <exit status>}`; conmon also writes `<exit dir>/<ctr id>`
//!    and runs the exit command.
//!
//! ```no_run
//! # fn main() -> Result<(), rpod_oci::OciError> {
//! # let cfg = rpod_config::RuntimeConfig::defaults(&rpod_config::UserDirs::current());
//! use rpod_oci::exec::ExecRequest;
//! let runtime = rpod_oci::OciRuntime::find(&cfg, None)?;
//! let monitor = rpod_oci::ConmonMonitor::new(rpod_oci::Conmon::find(&cfg, None)?);
//! let process = serde_json::json!({"args": ["id"], "cwd": "/", "user": {"uid": 0, "gid": 0}});
//! let req = ExecRequest::new("ctr-id", "session-id", "/run/rpod/b/session-id", process);
//! let session = monitor.exec(&runtime, &req, true)?;
//! if let Some(a) = session.attach() {
//!     a.stream(None, &mut std::io::stdout(), &mut std::io::stderr())?;
//! }
//! let code = session.wait(None)?;
//! # let _ = code; Ok(()) }
//! ```

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};

use crate::monitor::{parse_sync, read_oci_log, wait_readable};
use crate::{AttachSocket, ConmonMonitor, CreateRequest, OciError, OciRuntime};

/// One exec session to start.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    /// The container's id (conmon `-c`, exit file name).
    pub container_id: String,
    /// The session id (conmon `-u`).
    pub session_id: String,
    /// The exec bundle: conmon's working directory, holds the process spec,
    /// `attach`, `ctl`, `winsz`, `exec_pid`, `oci-log` and `exit/`.
    pub bundle: PathBuf,
    /// The OCI `process` object (args, env, cwd, user, capabilities…).
    pub process: serde_json::Value,
    /// Allocate a terminal (`-t`).
    pub terminal: bool,
    /// Keep stdin open (`-i`).
    pub stdin: bool,
    /// Exit command argv conmon runs after the process exits.
    pub exit_command: Vec<String>,
    /// Extra `KEY=VALUE` environment for conmon.
    pub env: Vec<String>,
    /// conmon's log level.
    pub log_level: String,
    /// How long to wait for each protocol step.
    pub timeout: Duration,
}

impl ExecRequest {
    /// A request with defaults (no terminal, no stdin, no exit command).
    pub fn new(
        container_id: impl Into<String>,
        session_id: impl Into<String>,
        bundle: impl Into<PathBuf>,
        process: serde_json::Value,
    ) -> Self {
        ExecRequest {
            container_id: container_id.into(),
            session_id: session_id.into(),
            bundle: bundle.into(),
            process,
            terminal: false,
            stdin: false,
            exit_command: Vec::new(),
            env: Vec::new(),
            log_level: "warning".into(),
            timeout: crate::DEFAULT_CREATE_TIMEOUT,
        }
    }

    /// `<bundle>/exit`: where conmon writes the exit file of this session.
    pub fn exit_dir(&self) -> PathBuf {
        self.bundle.join("exit")
    }
}

/// A started exec session.
#[derive(Debug)]
pub struct ExecSession {
    /// The exec'd process (host PID).
    pub pid: i32,
    /// The conmon monitoring it.
    pub monitor_pid: i32,
    sync: OwnedFd,
    attach: Option<AttachSocket>,
    exit_dir: PathBuf,
    container_id: String,
}

impl ExecSession {
    /// The attach connection (when started attached).
    pub fn attach(&self) -> Option<&AttachSocket> {
        self.attach.as_ref()
    }

    /// Takes the attach connection out of the session (a caller that drives
    /// it itself, e.g. with a terminal). Waiting still works without it.
    pub fn take_attach(&mut self) -> Option<AttachSocket> {
        self.attach.take()
    }

    /// Waits for the process to exit and returns its exit status: the second
    /// sync-pipe packet, else the exit file. `None` waits forever.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<i32, OciError> {
        let t = timeout.unwrap_or(Duration::from_secs(u64::from(u32::MAX)));
        let conmon_err = |reason: String| OciError::Conmon {
            id: self.container_id.clone(),
            reason,
        };
        match wait_readable(&self.sync, t) {
            Ok(true) => {}
            Ok(false) => {
                return Err(OciError::Timeout {
                    what: format!("exec session of container {}", self.container_id),
                    millis: t.as_millis(),
                })
            }
            Err(e) => return Err(conmon_err(format!("polling the sync pipe: {e}"))),
        }
        let mut buf = vec![0u8; 65536];
        let n = loop {
            match recv(self.sync.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(nix::Error::EINTR) => continue,
                r => break r.map_err(|e| conmon_err(format!("reading the sync pipe: {e}")))?,
            }
        };
        if let Some((data, _)) = (n > 0).then(|| parse_sync(&buf[..n])).flatten() {
            return Ok(data as i32);
        }
        // conmon went away without a second packet: the exit file, if any.
        let code = crate::exit::wait_for_exit(
            &self.exit_dir,
            &self.container_id,
            None,
            Duration::from_secs(5),
        );
        match code {
            Ok(crate::exit::ExitOutcome::Exited(c)) => Ok(c),
            _ => Err(conmon_err(
                "the exec monitor exited without reporting an exit code".into(),
            )),
        }
    }
}

impl ConmonMonitor {
    /// conmon's argv for an exec session (podman's order).
    pub fn exec_args(
        &self,
        runtime: &OciRuntime,
        req: &ExecRequest,
        spec_file: &Path,
    ) -> Vec<String> {
        let mut base = CreateRequest::new(&req.container_id, &req.bundle, req.exit_dir());
        base.name = req.container_id.clone();
        base.pid_file = req.bundle.join("exec_pid");
        base.log_path = req.bundle.join("exec_log");
        base.oci_log = req.bundle.join("oci-log");
        base.terminal = req.terminal;
        base.stdin = req.stdin;
        base.log_level = req.log_level.clone();
        base.exit_command = req.exit_command.clone();
        let mut a = self.args(runtime, &base);
        if let Some(i) = a.iter().position(|x| x == "-u") {
            if let Some(v) = a.get_mut(i + 1) {
                *v = req.session_id.clone();
            }
        }
        a.extend([
            "-e".to_string(),
            "--exec-attach".to_string(),
            "--exec-process-spec".to_string(),
            spec_file.to_string_lossy().into_owned(),
        ]);
        a
    }

    /// Starts an exec session. With `attach`, the attach socket is connected
    /// before the process starts (no output lost). Returns once the process
    /// runs; errors of the runtime (`runc exec` failed) carry its message.
    pub fn exec(
        &self,
        runtime: &OciRuntime,
        req: &ExecRequest,
        attach: bool,
    ) -> Result<ExecSession, OciError> {
        let conmon_err = |reason: String| OciError::Conmon {
            id: req.container_id.clone(),
            reason,
        };
        let exit_dir = req.exit_dir();
        for d in [&req.bundle, &exit_dir] {
            std::fs::create_dir_all(d).map_err(|e| OciError::io(d, e))?;
        }
        let spec_file = req.bundle.join(format!("exec-process-{}", req.session_id));
        let text = serde_json::to_vec(&req.process).map_err(|e| OciError::BadFile {
            what: "exec process spec",
            path: spec_file.clone(),
            reason: e.to_string(),
        })?;
        std::fs::write(&spec_file, text).map_err(|e| OciError::io(&spec_file, e))?;
        let pair = || {
            socketpair(
                AddressFamily::Unix,
                SockType::SeqPacket,
                None,
                SockFlag::SOCK_CLOEXEC,
            )
            .map_err(|e| conmon_err(format!("socketpair: {e}")))
        };
        let (sync_parent, sync_child) = pair()?;
        let (start_parent, start_child) = pair()?;
        let (attach_parent, attach_child) = pair()?;
        let stderr_path = req.bundle.join("conmon.stderr");
        let stderr_file =
            std::fs::File::create(&stderr_path).map_err(|e| OciError::io(&stderr_path, e))?;
        let mut env_req = CreateRequest::new(&req.container_id, &req.bundle, &exit_dir);
        env_req.env = req.env.clone();
        let mut env = ConmonMonitor::env(&env_req);
        env.push(("_OCI_ATTACHPIPE".into(), "5".into()));
        let mut cmd = Command::new(&self.conmon().path);
        cmd.args(self.exec_args(runtime, req, &spec_file))
            .env_clear()
            .envs(env)
            .current_dir(&req.bundle)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr_file))
            .process_group(0);
        let fds = [
            sync_child.as_raw_fd(),
            start_child.as_raw_fd(),
            attach_child.as_raw_fd(),
        ];
        // SAFETY: only async-signal-safe calls (fcntl, dup2, close) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let mut high = [0; 3];
                for (i, fd) in fds.iter().enumerate() {
                    high[i] = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 10);
                    if high[i] < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                for (i, fd) in high.iter().enumerate() {
                    if libc::dup2(*fd, 3 + i as i32) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    libc::close(*fd);
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|source| OciError::Spawn {
            program: self.conmon().path.clone(),
            source,
        })?;
        drop((sync_child, start_child, attach_child));
        let read_err = |what: &str| {
            let mut text = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            if text.trim().is_empty() {
                text = "no message".into();
            }
            conmon_err(format!("{what}: {}", text.trim()))
        };
        send(start_parent.as_raw_fd(), &[0u8], MsgFlags::MSG_NOSIGNAL)
            .map_err(|e| conmon_err(format!("writing the start pipe: {e}")))?;
        let status = child
            .wait()
            .map_err(|e| conmon_err(format!("waiting for conmon: {e}")))?;
        if !status.success() {
            return Err(read_err(&format!("conmon exited with {status}")));
        }
        let mut buf = vec![0u8; 65536];
        let recv_packet = |fd: &OwnedFd,
                           buf: &mut [u8],
                           what: &str|
         -> Result<Option<(i64, Option<String>)>, OciError> {
            match wait_readable(fd, req.timeout) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(OciError::Timeout {
                        what: format!("conmon's {what} for exec in container {}", req.container_id),
                        millis: req.timeout.as_millis(),
                    })
                }
                Err(e) => return Err(conmon_err(format!("polling the {what}: {e}"))),
            }
            let n = recv(fd.as_raw_fd(), buf, MsgFlags::empty())
                .map_err(|e| conmon_err(format!("reading the {what}: {e}")))?;
            Ok((n > 0).then(|| parse_sync(&buf[..n])).flatten())
        };
        match recv_packet(&attach_parent, &mut buf, "attach pipe")? {
            Some((d, _)) if d >= 0 => {}
            Some((_, m)) => {
                return Err(conmon_err(format!(
                    "setting up the attach socket failed: {}",
                    m.unwrap_or_default()
                )))
            }
            None => return Err(read_err("no attach-pipe message from conmon")),
        }
        let sock = if attach {
            Some(AttachSocket::connect(&req.bundle)?)
        } else {
            None
        };
        send(start_parent.as_raw_fd(), &[0u8], MsgFlags::MSG_NOSIGNAL)
            .map_err(|e| conmon_err(format!("writing the start pipe: {e}")))?;
        let fail = |message: String| OciError::RuntimeFailed {
            runtime: runtime.name.clone(),
            op: "exec".into(),
            id: req.container_id.clone(),
            message,
        };
        let pid = match recv_packet(&sync_parent, &mut buf, "sync pipe")? {
            Some((d, _)) if d > 0 => d as i32,
            Some((_, m)) => {
                let m = read_oci_log(&base_oci_log(req))
                    .or_else(|| m.map(|m| m.trim().to_string()).filter(|m| !m.is_empty()))
                    .unwrap_or_else(|| "exec failed: no message from the runtime".into());
                return Err(fail(m));
            }
            None => {
                return Err(match read_oci_log(&base_oci_log(req)) {
                    Some(m) => fail(m),
                    None => read_err("exec failed (sync pipe closed)"),
                })
            }
        };
        let conmon_pid_file = req.bundle.join("conmon.pid");
        let monitor_pid = std::fs::read_to_string(&conmon_pid_file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        tracing::debug!(id = %req.container_id, session = %req.session_id, pid, "exec started");
        Ok(ExecSession {
            pid,
            monitor_pid,
            sync: sync_parent,
            attach: sock,
            exit_dir,
            container_id: req.container_id.clone(),
        })
    }
}

fn base_oci_log(req: &ExecRequest) -> PathBuf {
    req.bundle.join("oci-log")
}
