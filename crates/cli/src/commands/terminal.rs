//! Terminals: `run -it`, `start -ai` and `attach`.
//!
//! The container's pty is conmon's (it gets `-t`); its output and input go
//! through the attach socket. Here: the user's terminal in raw mode (always
//! restored: on return, on panic, and on SIGTERM/SIGHUP/SIGQUIT), window-size
//! changes forwarded through conmon's `ctl` FIFO, and the detach sequence
//! (`--detach-keys`, else the configured `detach_keys`, default
//! ctrl-p,ctrl-q) that leaves the container running.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use nix::libc;
use nix::sys::termios::{self, SetArg, Termios};
use rpod_oci::attach::STREAM_STDERR;
use rpod_oci::AttachSocket;
use rpod_runtime::Runtime;

use crate::commands::container::runtime;
use crate::global::GlobalOpts;
use crate::ExitStatus;

/// `rpod attach`.
#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Key sequence to detach (e.g. ctrl-p,ctrl-q; empty disables)
    #[arg(long)]
    pub detach_keys: Option<String>,
    /// Do not attach stdin
    #[arg(long)]
    pub no_stdin: bool,
    /// The container
    pub container: String,
}

/// How an attach ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachEnd {
    /// The container's output ended (it exited).
    Ended,
    /// The user typed the detach sequence.
    Detached,
}

static SAVED: OnceLock<libc::termios> = OnceLock::new();

extern "C" fn restore_and_reraise(sig: libc::c_int) {
    if let Some(t) = SAVED.get() {
        // SAFETY: tcsetattr is async-signal-safe; `t` is a valid termios.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, t) };
    }
    // SAFETY: resetting the disposition and re-raising are async-signal-safe.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// The user's terminal in raw mode; restored when dropped.
pub(crate) struct RawMode {
    orig: Termios,
}

impl RawMode {
    pub(crate) fn enter() -> Result<Option<RawMode>> {
        let stdin = std::io::stdin();
        let fd = stdin.as_fd();
        if !nix::unistd::isatty(fd.as_raw_fd()).unwrap_or(false) {
            return Ok(None);
        }
        let orig = termios::tcgetattr(fd).context("reading the terminal's settings")?;
        let _ = SAVED.set(libc::termios::from(orig.clone()));
        for sig in [libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
            // SAFETY: installs a handler that only calls async-signal-safe functions.
            unsafe { libc::signal(sig, restore_and_reraise as *const () as libc::sighandler_t) };
        }
        let mut raw = orig.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSANOW, &raw).context("setting raw mode")?;
        Ok(Some(RawMode { orig }))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.orig);
    }
}

/// The size of the user's terminal (rows, cols), if stdin or stdout is one.
fn window_size() -> Option<(u16, u16)> {
    nix::ioctl_read_bad!(tiocgwinsz, libc::TIOCGWINSZ, libc::winsize);
    for fd in [0, 1] {
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one winsize into `ws`.
        if unsafe { tiocgwinsz(fd, &mut ws) }.is_ok() && ws.ws_row > 0 {
            return Some((ws.ws_row, ws.ws_col));
        }
    }
    None
}

/// Matches the detach sequence in a byte stream split across reads.
struct DetachMatcher {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachMatcher {
    /// Feeds `data`; returns the bytes to forward and whether the whole
    /// sequence was typed. A partial match is held back until it completes
    /// or breaks (then it is forwarded).
    fn feed(&mut self, data: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(data.len());
        if self.keys.is_empty() {
            return (data.to_vec(), false);
        }
        for &b in data {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return (out, true);
                }
            } else {
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                if b == self.keys[0] {
                    self.matched = 1;
                } else {
                    out.push(b);
                }
            }
        }
        (out, false)
    }
}

/// Streams a container's terminal (or stdio) over `sock` until its output
/// ends or the user detaches.
pub fn attach_session(
    sock: AttachSocket,
    bundle: &Path,
    tty: bool,
    stdin: bool,
    detach_keys: &[u8],
) -> Result<AttachEnd> {
    let _raw = if tty && stdin {
        RawMode::enter()?
    } else {
        None
    };
    let sock = Arc::new(sock);
    let detached = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    if tty {
        let bundle: PathBuf = bundle.to_path_buf();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut last = None;
            while !done.load(Ordering::SeqCst) {
                let now = window_size();
                if now.is_some() && now != last {
                    if let Some((r, c)) = now {
                        if let Err(e) = rpod_oci::attach::resize_terminal(&bundle, r, c) {
                            tracing::debug!("resizing the container's terminal: {e}");
                        }
                    }
                    last = now;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
    }
    if stdin {
        let sock = sock.clone();
        let detached = detached.clone();
        let mut matcher = DetachMatcher {
            keys: detach_keys.to_vec(),
            matched: 0,
        };
        std::thread::spawn(move || {
            let mut input = std::io::stdin();
            let mut buf = [0u8; 8192];
            loop {
                let n = match input.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = sock.close_input();
                        return;
                    }
                    Ok(n) => n,
                };
                let (fwd, detach) = if tty {
                    matcher.feed(&buf[..n])
                } else {
                    (buf[..n].to_vec(), false)
                };
                if !fwd.is_empty() && sock.send_input(&fwd).is_err() {
                    return;
                }
                if detach {
                    detached.store(true, Ordering::SeqCst);
                    let _ = sock.close_output();
                    return;
                }
            }
        });
    }
    let mut buf = vec![0u8; rpod_oci::attach::ATTACH_BUF_SIZE + 1];
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    loop {
        match sock.recv_packet(&mut buf) {
            Ok(Some((stream, n))) => {
                let data = &buf[1..1 + n];
                let r = if stream == STREAM_STDERR && !tty {
                    let mut e = stderr.lock();
                    e.write_all(data).and_then(|_| e.flush())
                } else {
                    let mut o = stdout.lock();
                    o.write_all(data).and_then(|_| o.flush())
                };
                if r.is_err() {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                tracing::debug!("attach ended: {e}");
                break;
            }
        }
    }
    done.store(true, Ordering::SeqCst);
    Ok(if detached.load(Ordering::SeqCst) {
        AttachEnd::Detached
    } else {
        AttachEnd::Ended
    })
}

/// The detach sequence: the flag, else the configuration's `detach_keys`.
pub fn detach_keys(rt: &Runtime, flag: Option<&str>) -> Result<Vec<u8>> {
    let keys = flag.unwrap_or(&rt.config().detach_keys);
    rpod_config::parse_detach_keys(keys)
        .map_err(|e| anyhow::anyhow!("invalid --detach-keys {keys:?}: {e}"))
}

/// After an attach: the container's exit code as rpod's, or nothing when
/// the user detached.
pub fn finish(rt: &Runtime, id: &str, end: AttachEnd, autoremove: bool) -> Result<()> {
    if end == AttachEnd::Detached {
        eprintln!();
        return Ok(());
    }
    let code = rt.wait_container(id)?;
    if autoremove {
        match rt.lock_container(id) {
            Ok(c) => c.remove(true)?,
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    if code != 0 {
        return Err(ExitStatus(code.clamp(0, 255) as u8).into());
    }
    Ok(())
}

/// `rpod run -t` (attached): create, init, connect, start, stream.
pub fn run_tty(
    g: &GlobalOpts,
    opts: &rpod_runtime::CreateOptions,
    keys: Option<&str>,
) -> Result<()> {
    let rt = runtime(g)?;
    let keys = detach_keys(&rt, keys)?;
    let config = rt.create_container(opts)?;
    let id = config.id.clone();
    let bundle = rt.bundle_dir(&id);
    let started = rt.lock_container(&id).and_then(|mut c| {
        c.init()?;
        let sock = AttachSocket::connect(&bundle)?;
        c.start()?;
        Ok(sock)
    });
    let sock = match started {
        Ok(s) => s,
        Err(e) => {
            if let Ok(c) = rt.lock_container(&id) {
                let _ = c.remove(true);
            }
            return Err(e.into());
        }
    };
    let end = attach_session(sock, &bundle, opts.tty, opts.interactive, &keys)?;
    finish(&rt, &id, end, opts.autoremove)
}

/// `rpod start -a [-i]` of one container, with its terminal when it has one.
pub fn start_attached(
    g: &GlobalOpts,
    name: &str,
    interactive: bool,
    keys: Option<&str>,
) -> Result<()> {
    let rt = runtime(g)?;
    let keys = detach_keys(&rt, keys)?;
    let (id, tty) = {
        let mut c = rt.lock_container(name)?;
        if c.state().state != rpod_state::ContainerStatus::Created {
            c.init()?;
        }
        let tty = c.spec()["process"]["terminal"].as_bool().unwrap_or(false);
        (c.id().to_string(), tty)
    };
    let bundle = rt.bundle_dir(&id);
    let sock = AttachSocket::connect(&bundle)?;
    rt.lock_container(&id)?.start()?;
    let end = attach_session(sock, &bundle, tty, interactive, &keys)?;
    finish(&rt, &id, end, false)
}

/// `rpod attach`.
pub fn attach(g: &GlobalOpts, a: AttachArgs) -> Result<()> {
    let rt = runtime(g)?;
    let keys = detach_keys(&rt, a.detach_keys.as_deref())?;
    let (id, tty) = {
        let c = rt.lock_container(&a.container)?;
        if !c.is_running() {
            bail!(
                "container {} is {}: you can only attach to running containers",
                c.id(),
                c.state().state.as_str()
            );
        }
        let tty = c.spec()["process"]["terminal"].as_bool().unwrap_or(false);
        (c.id().to_string(), tty)
    };
    let bundle = rt.bundle_dir(&id);
    let sock = AttachSocket::connect(&bundle)?;
    let end = attach_session(sock, &bundle, tty, !a.no_stdin, &keys)?;
    finish(&rt, &id, end, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_sequence_is_held_back_and_matched_across_reads() {
        let mut m = DetachMatcher {
            keys: vec![16, 17],
            matched: 0,
        };
        assert_eq!(m.feed(b"ab"), (b"ab".to_vec(), false));
        assert_eq!(m.feed(&[b'x', 16]), (b"x".to_vec(), false));
        assert_eq!(m.feed(b"y"), (vec![16, b'y'], false));
        assert_eq!(m.feed(&[16]), (vec![], false));
        assert_eq!(m.feed(&[17, b'z']), (vec![], true));
        let mut none = DetachMatcher {
            keys: vec![],
            matched: 0,
        };
        assert_eq!(none.feed(&[16, 17]), (vec![16, 17], false));
    }
}
