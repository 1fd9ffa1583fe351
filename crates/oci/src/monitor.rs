//! The container monitor: the process that runs `runtime create`, stays the
//! parent of the container, logs its output, serves the attach socket and
//! writes the exit file. [`ConmonMonitor`] drives the real conmon exactly as
//! podman 4.3.1 does (see `docs/conmon-protocol.md`).
//!
//! Another monitor (say, a built-in Rust one) implements [`Monitor`] and must
//! keep the same on-disk contract, which the rest of this crate relies on:
//! the attach socket at `<bundle>/attach` ([`crate::attach`]), the exit file
//! `<exit_dir>/<id>` ([`crate::exit`]), the k8s-file log ([`crate::logs`]).

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};

use crate::discovery::Conmon;
use crate::runtime::runtime_message;
use crate::{OciError, OciRuntime};

/// podman's `ContainerCreateTimeout`.
pub const DEFAULT_CREATE_TIMEOUT: Duration = Duration::from_secs(240);

/// Everything needed to create one container through a monitor.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    /// Container id (runtime container name, exit file name).
    pub id: String,
    /// Container name (conmon uses it for journald only).
    pub name: String,
    /// The bundle directory (holds `config.json`; the attach socket and
    /// `ctl`/`winsz` FIFOs are created here; the monitor's working directory).
    pub bundle: PathBuf,
    /// The runtime's `--pid-file` (container PID).
    pub pid_file: PathBuf,
    /// Where the monitor writes its own PID.
    pub conmon_pid_file: PathBuf,
    /// Directory of exit files (`<exit_dir>/<id>`).
    pub exit_dir: PathBuf,
    /// The k8s-file container log.
    pub log_path: PathBuf,
    /// The runtime's error log (`--log`, JSON when supported).
    pub oci_log: PathBuf,
    /// conmon's own log level (`error`, `warning`, `info`, `debug`).
    pub log_level: String,
    /// Rotate the container log past this many bytes; ≤ 0 for no limit.
    pub log_size_max: i64,
    /// Allocate a terminal (`-t`).
    pub terminal: bool,
    /// Keep a stdin pipe for the container (`-i`; ignored with a terminal, as podman).
    pub stdin: bool,
    /// Exit command argv (`[program, args…]`) conmon runs after the container exits.
    pub exit_command: Vec<String>,
    /// Seconds conmon sleeps before the exit command.
    pub exit_delay: Option<u32>,
    /// Pass `--no-pivot` to the runtime.
    pub no_pivot: bool,
    /// `--socket-dir-path` (unused with `--full-attach`, which rpod always passes).
    pub socket_dir: Option<PathBuf>,
    /// Extra `KEY=VALUE` environment for conmon (`conmon_env_vars`), put first.
    pub env: Vec<String>,
    /// How long to wait for the runtime's `create` to report.
    pub timeout: Duration,
}

impl CreateRequest {
    /// A request with podman's file layout inside `bundle` (`pidfile`,
    /// `conmon.pid`, `ctr.log`, `oci-log`) and defaults elsewhere.
    pub fn new(
        id: impl Into<String>,
        bundle: impl Into<PathBuf>,
        exit_dir: impl Into<PathBuf>,
    ) -> Self {
        let id = id.into();
        let bundle = bundle.into();
        CreateRequest {
            name: id.clone(),
            pid_file: bundle.join("pidfile"),
            conmon_pid_file: bundle.join("conmon.pid"),
            log_path: bundle.join("ctr.log"),
            oci_log: bundle.join("oci-log"),
            exit_dir: exit_dir.into(),
            log_level: "warning".into(),
            log_size_max: -1,
            terminal: false,
            stdin: false,
            exit_command: Vec::new(),
            exit_delay: None,
            no_pivot: false,
            socket_dir: None,
            env: Vec::new(),
            timeout: DEFAULT_CREATE_TIMEOUT,
            id,
            bundle,
        }
    }
}

/// What a successful create returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Created {
    /// The container's PID 1 (host PID namespace).
    pub pid: i32,
    /// The long-lived monitor process.
    pub monitor_pid: i32,
}

/// A container monitor. Object safe: the engine holds a `Box<dyn Monitor>`.
pub trait Monitor: Send + Sync + std::fmt::Debug {
    /// A short name (`conmon`).
    fn name(&self) -> &str;

    /// The monitor's version line.
    fn version(&self) -> Result<String, OciError>;

    /// Runs `runtime create` for the container under a new monitor process and
    /// returns once the container exists in the `created` state (not started:
    /// the caller runs [`OciRuntime::start`], after connecting to the attach
    /// socket if it wants the output). On failure nothing of the container is
    /// left in the runtime.
    fn create(&self, runtime: &OciRuntime, req: &CreateRequest) -> Result<Created, OciError>;
}

/// The real conmon.
#[derive(Debug, Clone)]
pub struct ConmonMonitor {
    conmon: Conmon,
}

impl ConmonMonitor {
    /// Uses the given conmon binary.
    pub fn new(conmon: Conmon) -> Self {
        ConmonMonitor { conmon }
    }

    /// The conmon binary in use.
    pub fn conmon(&self) -> &Conmon {
        &self.conmon
    }

    /// conmon's argv (without the program) for `req`, in podman's order.
    pub fn args(&self, runtime: &OciRuntime, req: &CreateRequest) -> Vec<String> {
        let s = |p: &Path| p.to_string_lossy().into_owned();
        let mut a: Vec<String> = vec![
            "--api-version".into(),
            "1".into(),
            "-c".into(),
            req.id.clone(),
            "-u".into(),
            req.id.clone(),
            "-r".into(),
            s(&runtime.path),
            "-b".into(),
            s(&req.bundle),
            "-p".into(),
            s(&req.pid_file),
            "-n".into(),
            req.name.clone(),
            "--exit-dir".into(),
            s(&req.exit_dir),
            "--full-attach".into(),
        ];
        if let Some(d) = &req.socket_dir {
            a.push("--socket-dir-path".into());
            a.push(s(d));
        }
        if runtime.systemd_cgroup {
            a.push("-s".into());
        }
        a.push("-l".into());
        a.push(format!("k8s-file:{}", s(&req.log_path)));
        a.push("--log-level".into());
        a.push(req.log_level.clone());
        if req.log_size_max > 0 {
            a.push("--log-size-max".into());
            a.push(req.log_size_max.to_string());
        }
        for g in runtime.global_args() {
            a.push(format!("--runtime-arg={g}"));
        }
        if runtime.supports_json && req.log_level != "debug" {
            a.push("--runtime-arg".into());
            a.push("--log-format=json".into());
            a.push("--runtime-arg".into());
            a.push("--log".into());
            a.push(format!("--runtime-arg={}", s(&req.oci_log)));
        }
        if req.no_pivot {
            a.push("--no-pivot".into());
        }
        if req.terminal {
            a.push("-t".into());
        } else if req.stdin {
            a.push("-i".into());
        }
        a.push("--conmon-pidfile".into());
        a.push(s(&req.conmon_pid_file));
        if let Some((cmd, args)) = req.exit_command.split_first() {
            a.push("--exit-command".into());
            a.push(cmd.clone());
            for x in args {
                a.push("--exit-command-arg".into());
                a.push(x.clone());
            }
            if let Some(d) = req.exit_delay {
                a.push("--exit-delay".into());
                a.push(d.to_string());
            }
        }
        a
    }

    /// conmon's environment: `conmon_env_vars`, then the pipe variables and
    /// podman's `configureConmonEnv` set.
    pub(crate) fn env(req: &CreateRequest) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = Vec::new();
        let mut set = |k: &str, v: String| {
            env.retain(|(x, _)| x != k);
            env.push((k.to_string(), v));
        };
        for kv in &req.env {
            if let Some((k, v)) = kv.split_once('=') {
                set(k, v.to_string());
            }
        }
        set("_OCI_SYNCPIPE", "3".into());
        set("_OCI_STARTPIPE", "4".into());
        for (k, v) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("LC_") {
                set(&k, v.to_string_lossy().into_owned());
            }
        }
        for k in ["PATH", "CONTAINERS_CONF", "CONTAINERS_HELPER_BINARY_DIR"] {
            if let Some(v) = std::env::var_os(k) {
                if !(k == "PATH" && req.env.iter().any(|e| e.starts_with("PATH="))) {
                    set(k, v.to_string_lossy().into_owned());
                }
            }
        }
        let rootless = !nix::unistd::geteuid().is_root();
        let xdg = if rootless {
            std::env::var("XDG_RUNTIME_DIR").unwrap_or_default()
        } else {
            String::new()
        };
        set("XDG_RUNTIME_DIR", xdg);
        set(
            "_CONTAINERS_USERNS_CONFIGURED",
            std::env::var("_CONTAINERS_USERNS_CONFIGURED").unwrap_or_default(),
        );
        set(
            "_CONTAINERS_ROOTLESS_UID",
            std::env::var("_CONTAINERS_ROOTLESS_UID").unwrap_or_default(),
        );
        if let Some(h) = std::env::var_os("HOME") {
            set("HOME", h.to_string_lossy().into_owned());
        }
        env
    }
}

/// The runtime's own error from its JSON (or text) `--log` file.
pub(crate) fn read_oci_log(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let msg = runtime_message(&text);
    (!msg.trim().is_empty()).then(|| msg.trim().to_string())
}

/// Parses one sync-pipe packet `{"data": N, "message": "…"}`.
pub(crate) fn parse_sync(packet: &[u8]) -> Option<(i64, Option<String>)> {
    #[derive(serde::Deserialize)]
    struct Sync {
        data: i64,
        #[serde(default)]
        message: Option<String>,
    }
    let text = String::from_utf8_lossy(packet);
    let s: Sync = match serde_json::from_str(text.trim()) {
        Ok(s) => s,
        // conmon leaves 0x1f (and non-UTF-8) unescaped: retry without them.
        Err(_) => {
            let cleaned: String = text
                .trim()
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            serde_json::from_str(&cleaned).ok()?
        }
    };
    Some((s.data, s.message))
}

pub(crate) fn wait_readable(fd: &OwnedFd, timeout: Duration) -> Result<bool, nix::Error> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let ms = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
            .unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

impl Monitor for ConmonMonitor {
    fn name(&self) -> &str {
        "conmon"
    }

    fn version(&self) -> Result<String, OciError> {
        self.conmon.version()
    }

    fn create(&self, runtime: &OciRuntime, req: &CreateRequest) -> Result<Created, OciError> {
        let conmon_err = |reason: String| OciError::Conmon {
            id: req.id.clone(),
            reason,
        };
        for d in [&req.bundle, &req.exit_dir, &runtime.state_root] {
            std::fs::create_dir_all(d).map_err(|e| OciError::io(d, e))?;
        }
        for p in [&req.pid_file, &req.conmon_pid_file, &req.oci_log] {
            let _ = std::fs::remove_file(p);
        }
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

        let stderr_path = req.bundle.join("conmon.stderr");
        let stderr_file =
            std::fs::File::create(&stderr_path).map_err(|e| OciError::io(&stderr_path, e))?;

        let mut cmd = Command::new(&self.conmon.path);
        cmd.args(self.args(runtime, req))
            .env_clear()
            .envs(Self::env(req))
            .current_dir(&req.bundle)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr_file))
            .process_group(0);
        let (sc, stc) = (sync_child.as_raw_fd(), start_child.as_raw_fd());
        // SAFETY: only async-signal-safe calls (fcntl, dup2, close) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // Move both fds above 4 first so dup2 onto 3/4 cannot clobber either.
                let a = libc::fcntl(sc, libc::F_DUPFD_CLOEXEC, 10);
                let b = libc::fcntl(stc, libc::F_DUPFD_CLOEXEC, 10);
                if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(a);
                libc::close(b);
                Ok(())
            });
        }
        tracing::debug!(id = %req.id, conmon = %self.conmon.path.display(), "spawning conmon");
        let mut child = cmd.spawn().map_err(|source| OciError::Spawn {
            program: self.conmon.path.clone(),
            source,
        })?;
        drop(sync_child);
        drop(start_child);

        // conmon is in place: let it go.
        send(start_parent.as_raw_fd(), &[0u8], MsgFlags::MSG_NOSIGNAL)
            .map_err(|e| conmon_err(format!("writing the start pipe: {e}")))?;
        let status = child
            .wait()
            .map_err(|e| conmon_err(format!("waiting for conmon: {e}")))?;
        if !status.success() {
            let mut text = String::new();
            let _ = std::fs::File::open(&stderr_path).and_then(|mut f| f.read_to_string(&mut text));
            let _ = runtime.delete(&req.id, true);
            return Err(conmon_err(format!(
                "conmon exited with {status}: {}",
                text.trim()
            )));
        }

        let fail = |message: String| -> OciError {
            let _ = runtime.delete(&req.id, true);
            OciError::RuntimeFailed {
                runtime: runtime.name.clone(),
                op: "create".into(),
                id: req.id.clone(),
                message,
            }
        };
        match wait_readable(&sync_parent, req.timeout) {
            Ok(true) => {}
            Ok(false) => {
                let _ = runtime.delete(&req.id, true);
                return Err(OciError::Timeout {
                    what: format!("{} create of container {}", runtime.name, req.id),
                    millis: req.timeout.as_millis(),
                });
            }
            Err(e) => return Err(conmon_err(format!("polling the sync pipe: {e}"))),
        }
        let mut buf = vec![0u8; 65536];
        let n = recv(sync_parent.as_raw_fd(), &mut buf, MsgFlags::empty())
            .map_err(|e| conmon_err(format!("reading the sync pipe: {e}")))?;
        let parsed = (n > 0).then(|| parse_sync(&buf[..n])).flatten();
        let pid = match parsed {
            None => {
                let why = if n == 0 {
                    "no reply from conmon (sync pipe closed)".to_string()
                } else {
                    format!(
                        "unparseable reply from conmon: {:?}",
                        String::from_utf8_lossy(&buf[..n])
                    )
                };
                return Err(match read_oci_log(&req.oci_log) {
                    Some(m) => fail(m),
                    None => fail(format!("container create failed ({why})")),
                });
            }
            Some((data, message)) if data < 0 => {
                let m = read_oci_log(&req.oci_log)
                    .or_else(|| {
                        message
                            .map(|m| m.trim().to_string())
                            .filter(|m| !m.is_empty())
                    })
                    .unwrap_or_else(|| {
                        "container create failed: no message from the runtime".into()
                    });
                return Err(fail(m));
            }
            Some((data, _)) => i32::try_from(data)
                .map_err(|_| conmon_err(format!("container PID {data} out of range")))?,
        };
        let monitor_pid = std::fs::read_to_string(&req.conmon_pid_file)
            .map_err(|e| OciError::io(&req.conmon_pid_file, e))?
            .trim()
            .parse::<i32>()
            .map_err(|e| OciError::BadFile {
                what: "conmon pid file",
                path: req.conmon_pid_file.clone(),
                reason: e.to_string(),
            })?;
        let _ = std::fs::remove_file(&stderr_path);
        tracing::debug!(id = %req.id, pid, monitor_pid, "container created");
        Ok(Created { pid, monitor_pid })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_packets_parse() {
        assert_eq!(parse_sync(b"{\"data\": 3778}\n"), Some((3778, None)));
        let (d, m) =
            parse_sync(b"{\"data\": -1, \"message\": \"runc create failed: x\\n\"}\n").unwrap();
        assert_eq!(d, -1);
        assert_eq!(m.unwrap(), "runc create failed: x\n");
        let (d, m) = parse_sync(b"{\"data\": -1, \"message\": \"bad \x1f byte\"}\n").unwrap();
        assert_eq!((d, m.unwrap().as_str()), (-1, "bad   byte"));
        assert_eq!(parse_sync(b"garbage"), None);
    }
}
