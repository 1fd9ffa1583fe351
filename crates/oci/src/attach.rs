//! conmon's attach socket (`<bundle>/attach`, `SOCK_SEQPACKET`).
//!
//! Output packets are `<stream byte><up to 8192 bytes>` with 2 = stdout and
//! 3 = stderr; input is raw bytes, and `shutdown(SHUT_WR)` closes the
//! container's stdin (when conmon got `-i`). conmon broadcasts to every
//! client and never replays, so connect **before** `runtime start` to get all
//! output (podman's order: [`AttachSocket::connect`] → [`crate::OciRuntime::start`]
//! → [`AttachSocket::stream`]). The socket's path can exceed `sun_path`, so it
//! is reached through `/proc/self/fd/<O_PATH fd>`.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::sys::socket::{
    connect, recv, send, shutdown, socket, AddressFamily, MsgFlags, Shutdown, SockFlag, SockType,
    UnixAddr,
};
use nix::sys::stat::Mode;

use crate::OciError;

/// Stream id of stdin (unused by conmon on output).
pub const STREAM_STDIN: u8 = 1;
/// Stream id of stdout.
pub const STREAM_STDOUT: u8 = 2;
/// Stream id of stderr.
pub const STREAM_STDERR: u8 = 3;
/// Largest data part of an output packet.
pub const ATTACH_BUF_SIZE: usize = 8192;

/// A connection to a container's attach socket.
#[derive(Debug)]
pub struct AttachSocket {
    fd: OwnedFd,
    path: PathBuf,
}

/// Byte counts of a finished [`AttachSocket::stream`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttachStats {
    /// Bytes written to the stdout sink.
    pub stdout_bytes: u64,
    /// Bytes written to the stderr sink.
    pub stderr_bytes: u64,
}

fn io_err(path: &Path, e: nix::Error) -> OciError {
    OciError::io(path, std::io::Error::from(e))
}

/// `<bundle>/attach`.
pub fn attach_socket_path(bundle: &Path) -> PathBuf {
    bundle.join("attach")
}

impl AttachSocket {
    /// Connects to `<bundle>/attach`.
    pub fn connect(bundle: &Path) -> Result<AttachSocket, OciError> {
        Self::connect_path(&attach_socket_path(bundle))
    }

    /// Connects to an attach socket at any path length.
    pub fn connect_path(path: &Path) -> Result<AttachSocket, OciError> {
        let pfd = open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| io_err(path, e))?;
        // SAFETY: open returned a fresh fd that we now own.
        let pfd = unsafe { OwnedFd::from_raw_fd(pfd) };
        let proc_path = format!("/proc/self/fd/{}", pfd.as_raw_fd());
        let sock = socket(
            AddressFamily::Unix,
            SockType::SeqPacket,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(|e| io_err(path, e))?;
        let addr = UnixAddr::new(proc_path.as_str()).map_err(|e| io_err(path, e))?;
        connect(sock.as_raw_fd(), &addr).map_err(|e| io_err(path, e))?;
        Ok(AttachSocket {
            fd: sock,
            path: path.to_path_buf(),
        })
    }

    /// Receives one output packet: `Some((stream, data))`, `None` at EOF
    /// (the container exited and conmon closed the socket).
    pub fn recv_packet(&self, buf: &mut [u8]) -> Result<Option<(u8, usize)>, OciError> {
        loop {
            match recv(self.fd.as_raw_fd(), buf, MsgFlags::empty()) {
                Ok(0) => return Ok(None),
                Ok(n) => return Ok(Some((buf[0], n - 1))),
                Err(nix::Error::EINTR) => continue,
                Err(nix::Error::ECONNRESET) => return Ok(None),
                Err(e) => return Err(io_err(&self.path, e)),
            }
        }
    }

    /// Sends raw bytes to the container's stdin (or terminal).
    pub fn send_input(&self, data: &[u8]) -> Result<(), OciError> {
        let mut off = 0;
        while off < data.len() {
            let end = (off + 32768).min(data.len());
            match send(self.fd.as_raw_fd(), &data[off..end], MsgFlags::MSG_NOSIGNAL) {
                Ok(n) => off += n,
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(io_err(&self.path, e)),
            }
        }
        Ok(())
    }

    /// Stops receiving (`shutdown(SHUT_RD)`): a [`AttachSocket::recv_packet`]
    /// blocked in another thread returns `None` (used to detach).
    pub fn close_output(&self) -> Result<(), OciError> {
        match shutdown(self.fd.as_raw_fd(), Shutdown::Read) {
            Ok(()) | Err(nix::Error::ENOTCONN) => Ok(()),
            Err(e) => Err(io_err(&self.path, e)),
        }
    }

    /// Closes the container's stdin (`shutdown(SHUT_WR)`).
    pub fn close_input(&self) -> Result<(), OciError> {
        match shutdown(self.fd.as_raw_fd(), Shutdown::Write) {
            Ok(()) | Err(nix::Error::ENOTCONN) => Ok(()),
            Err(e) => Err(io_err(&self.path, e)),
        }
    }

    /// Forwards the container's stdout and stderr to the two sinks (each
    /// flushed after every packet) and, if given, `stdin` to the container
    /// (from a helper thread; its EOF closes the container's stdin). Returns
    /// when the container's output ends.
    pub fn stream(
        &self,
        stdin: Option<Box<dyn Read + Send>>,
        stdout: &mut dyn Write,
        stderr: &mut dyn Write,
    ) -> Result<AttachStats, OciError> {
        if let Some(mut input) = stdin {
            let dup = self
                .fd
                .try_clone()
                .map_err(|e| OciError::io(&self.path, e))?;
            let writer = AttachSocket {
                fd: dup,
                path: self.path.clone(),
            };
            // Detached on purpose: it may sit in a blocking read of the user's
            // stdin after the container is gone.
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 32768];
                loop {
                    match input.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            if writer.send_input(&buf[..n]).is_err() {
                                return;
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    }
                }
                let _ = writer.close_input();
            });
        }
        let mut stats = AttachStats::default();
        let mut buf = vec![0u8; ATTACH_BUF_SIZE + 1];
        while let Some((stream, n)) = self.recv_packet(&mut buf)? {
            let data = &buf[1..1 + n];
            let (sink, count): (&mut dyn Write, &mut u64) = match stream {
                STREAM_STDERR => (&mut *stderr, &mut stats.stderr_bytes),
                STREAM_STDOUT => (&mut *stdout, &mut stats.stdout_bytes),
                other => {
                    tracing::debug!(stream = other, "ignoring attach packet of unknown stream");
                    continue;
                }
            };
            let w = sink.write_all(data).and_then(|_| sink.flush());
            if let Err(e) = w {
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    break;
                }
                return Err(OciError::io(&self.path, e));
            }
            *count += n as u64;
        }
        Ok(stats)
    }
}

/// Resizes the container's terminal through conmon's `ctl` FIFO
/// (`1 <rows> <cols>`).
pub fn resize_terminal(bundle: &Path, rows: u16, cols: u16) -> Result<(), OciError> {
    write_ctl(bundle, &format!("1 {rows} {cols}\n"))
}

/// Asks conmon to reopen the container log (`2 0 0`), e.g. after rotation.
pub fn reopen_log(bundle: &Path) -> Result<(), OciError> {
    write_ctl(bundle, "2 0 0\n")
}

fn write_ctl(bundle: &Path, line: &str) -> Result<(), OciError> {
    let path = bundle.join("ctl");
    for _ in 0..100 {
        match open(
            &path,
            OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => {
                // SAFETY: open returned a fresh fd that we now own.
                let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
                return f
                    .write_all(line.as_bytes())
                    .map_err(|e| OciError::io(&path, e));
            }
            Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) | Err(nix::Error::ENXIO) => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => return Err(io_err(&path, e)),
        }
    }
    Err(OciError::Timeout {
        what: format!("opening {}", path.display()),
        millis: 1000,
    })
}
