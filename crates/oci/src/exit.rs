//! Exit files and waiting for a container or its monitor to end.
//!
//! conmon writes `<exit_dir>/<id>` atomically (temp file + rename) with the
//! exit status in decimal, no newline: `0`, `3`, `137` (128 + SIGKILL), `-1`
//! on its `--timeout`. It then runs the exit command and waits for it, so
//! "the monitor is gone" implies "cleanup has run".

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::OciError;

/// Polling interval while waiting for an exit file (podman's 25 ms).
pub const EXIT_POLL_INTERVAL: Duration = Duration::from_millis(25);

/// `<exit_dir>/<id>`.
pub fn exit_file(exit_dir: &Path, id: &str) -> PathBuf {
    exit_dir.join(id)
}

/// Reads the exit code if the exit file exists.
pub fn read_exit_code(exit_dir: &Path, id: &str) -> Result<Option<i32>, OciError> {
    let path = exit_file(exit_dir, id);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(OciError::io(&path, e)),
    };
    text.trim()
        .parse::<i32>()
        .map(Some)
        .map_err(|e| OciError::BadFile {
            what: "exit file",
            path,
            reason: format!("{:?}: {e}", text.chars().take(32).collect::<String>()),
        })
}

/// Whether `<bundle>/oom` exists (conmon's best-effort OOM marker; it is
/// created in conmon's working directory, which rpod sets to the bundle).
pub fn oom_killed(bundle: &Path) -> bool {
    bundle.join("oom").exists()
}

/// Whether a process exists (`kill(pid, 0)`; EPERM counts as alive).
pub fn process_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(nix::Error::EPERM) => true,
        Err(_) => false,
    }
}

fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: plain syscall; a non-negative result is a new fd we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel just returned this fd to us.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Waits until process `pid` (not necessarily our child) is gone. Uses
/// `pidfd_open` + `poll` when available, else polls `kill(pid, 0)`.
/// `Ok(true)` when it ended, `Ok(false)` on timeout.
pub fn wait_for_pid(pid: i32, timeout: Duration) -> Result<bool, OciError> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let deadline = Instant::now() + timeout;
    if let Some(fd) = pidfd_open(pid) {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = left.as_millis().min(i32::MAX as u128) as i32;
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
            match poll(
                &mut fds,
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
            ) {
                Ok(0) => return Ok(!process_alive(pid)),
                Ok(_) => return Ok(true),
                Err(nix::Error::EINTR) => continue,
                Err(_) => break,
            }
        }
    }
    while process_alive(pid) {
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(true)
}

/// How a wait for a container's exit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitOutcome {
    /// The exit file appeared with this code.
    Exited(i32),
    /// The monitor died without writing an exit file (SIGKILLed conmon, reboot…).
    MonitorGone,
}

/// Waits for `<exit_dir>/<id>`, looking at first every millisecond and then
/// less often, up to every [`EXIT_POLL_INTERVAL`] (an exit that is about to
/// happen, as after the attach stream ended, is seen at once; a long wait
/// costs little); stops early when `monitor_pid` is given and that process is
/// gone without an exit file.
pub fn wait_for_exit(
    exit_dir: &Path,
    id: &str,
    monitor_pid: Option<i32>,
    timeout: Duration,
) -> Result<ExitOutcome, OciError> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(code) = read_exit_code(exit_dir, id)? {
            return Ok(ExitOutcome::Exited(code));
        }
        if let Some(pid) = monitor_pid {
            if !process_alive(pid) {
                // The file is written before conmon exits: one last look.
                return Ok(match read_exit_code(exit_dir, id)? {
                    Some(code) => ExitOutcome::Exited(code),
                    None => ExitOutcome::MonitorGone,
                });
            }
        }
        if Instant::now() >= deadline {
            return Err(OciError::Timeout {
                what: format!("the exit file of container {id} in {}", exit_dir.display()),
                millis: timeout.as_millis(),
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(EXIT_POLL_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_files_parse() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(read_exit_code(t.path(), "c").unwrap(), None);
        std::fs::write(t.path().join("c"), "137").unwrap();
        assert_eq!(read_exit_code(t.path(), "c").unwrap(), Some(137));
        std::fs::write(t.path().join("c"), "-1").unwrap();
        assert_eq!(read_exit_code(t.path(), "c").unwrap(), Some(-1));
        std::fs::write(t.path().join("c"), "junk").unwrap();
        let e = read_exit_code(t.path(), "c").unwrap_err().to_string();
        assert!(e.contains("exit file") && e.contains("junk"), "{e}");
    }

    #[test]
    fn waits_for_processes() {
        let mut child = std::process::Command::new("/bin/sleep")
            .arg("0.2")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        assert!(process_alive(pid));
        assert!(!wait_for_pid(pid, Duration::from_millis(20)).unwrap());
        let reaper = std::thread::spawn(move || child.wait());
        assert!(wait_for_pid(pid, Duration::from_secs(5)).unwrap());
        reaper.join().unwrap().unwrap();
    }
}
