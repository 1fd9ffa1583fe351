//! The `journald` backend: events as structured journal entries.
//!
//! Writing uses the journal's documented native protocol: one datagram to
//! `/run/systemd/journal/socket` holding `KEY=VALUE\n` lines; a value that
//! contains a newline is written as `KEY\n`, its length as a little-endian
//! 64-bit integer, the bytes, and `\n`. A message too large for a datagram is
//! written to a sealed memfd whose descriptor is sent instead (`SCM_RIGHTS`),
//! as `sd_journal_sendv` does.
//!
//! Fields: `MESSAGE` (the human line without the time), `SYSLOG_IDENTIFIER`
//! (`rpod` unless configured), `PRIORITY=6`, `RPOD_EVENT_TYPE`,
//! `RPOD_EVENT_STATUS`, `RPOD_TIME_NANOS` (unix nanoseconds), `RPOD_ATTRIBUTES`
//! (JSON, `null` when absent), and when set `RPOD_ID`, `RPOD_NAME`,
//! `RPOD_IMAGE`, `RPOD_EXIT_CODE`, `RPOD_POD_ID`, `RPOD_NETWORK`,
//! `RPOD_HEALTH_STATUS`.
//!
//! Reading runs `journalctl -o json --all SYSLOG_IDENTIFIER=<identifier>`
//! (with `--follow` when streaming) and rebuilds events from those fields.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, IoSlice, Write};
use std::ops::ControlFlow;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::{
    Event, EventSink, EventType, Eventer, EventsError, EventsOptions, ReadOptions, Status,
    Timestamp,
};

/// The journal's native socket.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// The `journald` events backend.
#[derive(Debug)]
pub struct JournaldEventer {
    socket: PathBuf,
    identifier: String,
    journalctl: PathBuf,
}

/// Checks a journal field name: `A-Z`, `0-9`, `_`, not starting with `_`
/// or a digit, at most 64 bytes.
fn valid_field_name(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 64
        && !k.starts_with('_')
        && !k.as_bytes()[0].is_ascii_digit()
        && k.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// Encodes fields in the journal's native protocol.
///
/// ```
/// let msg = rpod_events::journald::encode_fields(&[("MESSAGE", b"a\nb".as_slice()), ("X", b"y")]).unwrap();
/// assert_eq!(msg, b"MESSAGE\n\x03\0\0\0\0\0\0\0a\nb\nX=y\n");
/// ```
pub fn encode_fields<K: AsRef<str>, V: AsRef<[u8]>>(
    fields: &[(K, V)],
) -> Result<Vec<u8>, EventsError> {
    let mut out = Vec::new();
    for (k, v) in fields {
        let (k, v) = (k.as_ref(), v.as_ref());
        if !valid_field_name(k) {
            return Err(EventsError::Encode {
                reason: format!(
                    "journal field name {k:?} must be 1-64 characters of A-Z, 0-9 and _, not starting with _ or a digit"
                ),
            });
        }
        out.extend_from_slice(k.as_bytes());
        if v.contains(&b'\n') {
            out.push(b'\n');
            out.extend_from_slice(&(v.len() as u64).to_le_bytes());
            out.extend_from_slice(v);
        } else {
            out.push(b'=');
            out.extend_from_slice(v);
        }
        out.push(b'\n');
    }
    Ok(out)
}

/// The journal fields of an event, in the order they are sent.
pub fn event_fields(event: &Event, identifier: &str) -> Vec<(&'static str, String)> {
    let mut f = vec![
        ("MESSAGE", event.human_body()),
        ("SYSLOG_IDENTIFIER", identifier.to_string()),
        ("PRIORITY", "6".to_string()),
        ("RPOD_EVENT_TYPE", event.event_type.to_string()),
        ("RPOD_EVENT_STATUS", event.status.to_string()),
        ("RPOD_TIME_NANOS", event.time.unix_nanos().to_string()),
    ];
    for (k, v) in [
        ("RPOD_ID", &event.id),
        ("RPOD_NAME", &event.name),
        ("RPOD_IMAGE", &event.image),
        ("RPOD_POD_ID", &event.pod_id),
        ("RPOD_NETWORK", &event.network),
        ("RPOD_HEALTH_STATUS", &event.health_status),
    ] {
        if !v.is_empty() {
            f.push((k, v.clone()));
        }
    }
    if let Some(code) = event.container_exit_code {
        f.push(("RPOD_EXIT_CODE", code.to_string()));
    }
    let attrs = serde_json::to_string(&event.attributes).unwrap_or_else(|_| "null".into());
    f.push(("RPOD_ATTRIBUTES", attrs));
    f
}

/// Rebuilds an event from a `journalctl -o json` record (`None` if it is not
/// an rpod event).
pub fn event_from_journal_json(record: &serde_json::Value) -> Option<Event> {
    let obj = record.as_object()?;
    let field = |k: &str| -> Option<String> {
        let v = obj.get(k)?;
        let one = match v {
            // A field given several times: take the first value.
            serde_json::Value::Array(a) if a.first().is_some_and(|x| !x.is_number()) => {
                a.first()?
            }
            other => other,
        };
        match one {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Array(bytes) => {
                let b: Vec<u8> = bytes
                    .iter()
                    .filter_map(|x| x.as_u64().map(|n| n as u8))
                    .collect();
                Some(String::from_utf8_lossy(&b).into_owned())
            }
            _ => None,
        }
    };
    let event_type: EventType = field("RPOD_EVENT_TYPE")?.parse().ok()?;
    let status: Status = field("RPOD_EVENT_STATUS")?.parse().ok()?;
    let mut e = Event::new(event_type, status);
    e.time = match field("RPOD_TIME_NANOS").and_then(|s| s.parse::<i128>().ok()) {
        Some(n) => Timestamp::from_unix_nanos(n),
        None => {
            let us: i128 = field("__REALTIME_TIMESTAMP")?.parse().ok()?;
            Timestamp::from_unix_nanos(us * 1000)
        }
    };
    let s = |k: &str| field(k).unwrap_or_default();
    e.id = s("RPOD_ID");
    e.name = s("RPOD_NAME");
    e.image = s("RPOD_IMAGE");
    e.pod_id = s("RPOD_POD_ID");
    e.network = s("RPOD_NETWORK");
    e.health_status = s("RPOD_HEALTH_STATUS");
    e.container_exit_code = field("RPOD_EXIT_CODE").and_then(|c| c.parse().ok());
    e.attributes = field("RPOD_ATTRIBUTES")
        .and_then(|a| serde_json::from_str::<Option<BTreeMap<String, String>>>(&a).ok())
        .flatten();
    Some(e)
}

fn memfd_with(data: &[u8]) -> io::Result<OwnedFd> {
    // SAFETY: the name is a valid NUL-terminated C string.
    let fd = unsafe {
        libc::memfd_create(
            c"rpod-journal".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by memfd_create and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut f = std::fs::File::from(fd);
    f.write_all(data)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on a descriptor we own.
    if unsafe { libc::fcntl(f.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(OwnedFd::from(f))
}

impl JournaldEventer {
    /// A backend sending to `socket`, tagging entries with `identifier`, and
    /// reading with the `journalctl` binary given.
    pub fn new(
        socket: impl Into<PathBuf>,
        identifier: &str,
        journalctl: impl Into<PathBuf>,
    ) -> Self {
        JournaldEventer {
            socket: socket.into(),
            identifier: identifier.to_string(),
            journalctl: journalctl.into(),
        }
    }

    fn send(&self, msg: &[u8]) -> Result<(), EventsError> {
        let no_journal = |source| EventsError::NoJournal {
            socket: self.socket.clone(),
            source,
        };
        let sock = UnixDatagram::unbound().map_err(|e| EventsError::Journal {
            reason: format!("cannot create a datagram socket: {e}"),
        })?;
        match sock.send_to(msg, &self.socket) {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMSGSIZE) | Some(libc::ENOBUFS)) => {
                let fd = memfd_with(msg).map_err(|e| EventsError::Journal {
                    reason: format!("cannot put a large event in a memfd: {e}"),
                })?;
                let addr = nix::sys::socket::UnixAddr::new(&self.socket).map_err(|e| {
                    EventsError::Journal {
                        reason: format!("bad journal socket path {}: {e}", self.socket.display()),
                    }
                })?;
                let fds = [fd.as_raw_fd()];
                let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
                let iov: [IoSlice<'_>; 0] = [];
                nix::sys::socket::sendmsg(
                    sock.as_raw_fd(),
                    &iov,
                    &cmsg,
                    nix::sys::socket::MsgFlags::empty(),
                    Some(&addr),
                )
                .map(|_| ())
                .map_err(|e| no_journal(io::Error::from(e)))
            }
            Err(e) => Err(no_journal(e)),
        }
    }

    fn journalctl_args(&self, opts: &ReadOptions) -> Vec<String> {
        let mut args = vec![
            "--no-pager".to_string(),
            "--quiet".to_string(),
            "--output=json".to_string(),
            "--all".to_string(),
        ];
        if let Some(since) = opts.since {
            args.push(format!("--since=@{}", since.unix_seconds()));
        }
        if opts.stream {
            args.push("--follow".to_string());
            args.push("--lines=all".to_string());
        }
        args.push(format!("SYSLOG_IDENTIFIER={}", self.identifier));
        args
    }

    fn handle_line(line: &str, opts: &ReadOptions, sink: EventSink<'_>) -> ControlFlow<()> {
        let line = line.trim();
        if !line.starts_with('{') {
            return ControlFlow::Continue(());
        }
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(v) => match event_from_journal_json(&v) {
                Some(e) if opts.wants(&e) => sink(e),
                Some(_) => ControlFlow::Continue(()),
                None => {
                    tracing::warn!("skipping a journal entry that is not an rpod event");
                    ControlFlow::Continue(())
                }
            },
            Err(e) => {
                tracing::warn!("skipping unparsable journalctl output: {e}");
                ControlFlow::Continue(())
            }
        }
    }
}

impl Eventer for JournaldEventer {
    fn backend(&self) -> &'static str {
        "journald"
    }

    fn write(&self, event: &Event) -> Result<(), EventsError> {
        let msg = encode_fields(&event_fields(event, &self.identifier))?;
        self.send(&msg)
    }

    fn read(&self, opts: &ReadOptions, sink: EventSink<'_>) -> Result<(), EventsError> {
        let mut child = Command::new(&self.journalctl)
            .args(self.journalctl_args(opts))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| EventsError::Journal {
                reason: format!("cannot run {}: {e}", self.journalctl.display()),
            })?;
        let stdout = child.stdout.take().ok_or_else(|| EventsError::Journal {
            reason: "journalctl has no stdout".into(),
        })?;
        let stderr = child.stderr.take();
        let (tx, rx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(l) => {
                        if tx.send(l).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        });
        let mut stopped = false;
        loop {
            match rx.recv_timeout(opts.poll_interval.max(Duration::from_millis(1))) {
                Ok(line) => {
                    if Self::handle_line(&line, opts, sink).is_break() {
                        stopped = true;
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if opts.stream && opts.should_stop() {
                        stopped = true;
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        if stopped {
            // Our own child: stop it so the reader thread sees end of file.
            let _ = child.kill();
        }
        let status = child.wait().map_err(|e| EventsError::Journal {
            reason: format!("waiting for journalctl: {e}"),
        })?;
        drop(rx);
        let _ = reader.join();
        if !stopped && !status.success() {
            let mut msg = String::new();
            if let Some(mut e) = stderr {
                let _ = io::Read::read_to_string(&mut e, &mut msg);
            }
            return Err(EventsError::Journal {
                reason: format!(
                    "{} failed ({status}): {}",
                    self.journalctl.display(),
                    msg.trim()
                ),
            });
        }
        Ok(())
    }
}

/// The registry factory of the `journald` backend.
pub fn open_journald(opts: &EventsOptions) -> Result<Box<dyn Eventer>, EventsError> {
    Ok(Box::new(JournaldEventer::new(
        &opts.journal_socket,
        &opts.journal_identifier,
        &opts.journalctl,
    )))
}
