//! The `file` backend: podman's JSON, one event per line.
//!
//! # Writing
//! Every write takes an exclusive `flock(2)` on `<log>.lock` (a file that is
//! never rotated), makes sure its descriptor still refers to the file at the
//! log path (re-opening after another process rotated it), rotates if needed,
//! and appends the line with a single `write(2)` on an `O_APPEND` descriptor.
//! Lines of concurrent writers, in any number of processes, therefore never
//! tear, interleave or get lost.
//!
//! # Rotation
//! When `max_size` is non-zero and appending a line would take the log past
//! it, the writer (still holding the lock) renames the log to `<log>.1`,
//! replacing the previous `<log>.1`, and starts a new log. The newest events
//! are kept: between `max_size` and `2 × max_size` bytes of them, across the
//! two files. Nothing is copied, so nothing written during or after the
//! rotation can be lost; readers read `<log>.1` then `<log>`.
//!
//! # Following
//! A follower reads to the end, then polls. It notices a rotation when the
//! log path no longer names the file it has open (device/inode change), reads
//! what is left of the old file through its open descriptor, reads `<log>.1`
//! too if that is a generation it never saw (two rotations within one poll),
//! and re-opens the log. It notices a truncation by someone else (size below
//! its offset) and starts again from the top. Events can only be missed if
//! the log rotates more than twice within one poll interval.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::ControlFlow;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::{Event, EventSink, Eventer, EventsError, EventsOptions, ReadOptions};

/// File identity: device and inode.
type FileId = (u64, u64);

fn file_id(m: &std::fs::Metadata) -> FileId {
    (m.dev(), m.ino())
}

/// The `file` events backend.
#[derive(Debug)]
pub struct FileEventer {
    path: PathBuf,
    rotated: PathBuf,
    lock_path: PathBuf,
    max_size: u64,
    writer: Mutex<WriterState>,
}

#[derive(Debug, Default)]
struct WriterState {
    lock: Option<File>,
    log: Option<(File, FileId)>,
}

struct FlockGuard<'a>(&'a File);

impl<'a> FlockGuard<'a> {
    fn lock(f: &'a File) -> io::Result<Self> {
        loop {
            // SAFETY: flock on a descriptor we own; no memory is involved.
            let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
            if r == 0 {
                return Ok(FlockGuard(f));
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

impl Drop for FlockGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

impl FileEventer {
    /// A backend writing to `path`, rotating past `max_size` bytes (0: never).
    pub fn new(path: impl Into<PathBuf>, max_size: u64) -> Self {
        let path = path.into();
        FileEventer {
            rotated: with_suffix(&path, ".1"),
            lock_path: with_suffix(&path, ".lock"),
            path,
            max_size,
            writer: Mutex::new(WriterState::default()),
        }
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The previous generation, `<log>.1`.
    pub fn rotated_path(&self) -> &Path {
        &self.rotated
    }

    /// The lock file, `<log>.lock`.
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    fn open_log(&self) -> Result<(File, FileId), EventsError> {
        let f = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(|e| EventsError::io(&self.path, "open", e))?;
        let m = f
            .metadata()
            .map_err(|e| EventsError::io(&self.path, "stat", e))?;
        Ok((f, file_id(&m)))
    }

    fn append(&self, line: &[u8]) -> Result<(), EventsError> {
        let mut st = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if st.lock.is_none() {
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| EventsError::io(dir, "create directory", e))?;
            }
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&self.lock_path)
                .map_err(|e| EventsError::io(&self.lock_path, "open lock file", e))?;
            st.lock = Some(f);
        }
        let WriterState { lock, log } = &mut *st;
        let lock = lock.as_ref().ok_or_else(|| {
            EventsError::io(
                &self.lock_path,
                "open lock file",
                io::ErrorKind::NotFound.into(),
            )
        })?;
        let _guard =
            FlockGuard::lock(lock).map_err(|e| EventsError::io(&self.lock_path, "lock", e))?;
        let on_disk = match std::fs::metadata(&self.path) {
            Ok(m) => Some(file_id(&m)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(EventsError::io(&self.path, "stat", e)),
        };
        if on_disk.is_none() || log.as_ref().map(|l| l.1) != on_disk {
            *log = Some(self.open_log()?);
        }
        if self.max_size > 0 {
            let size = match log.as_ref() {
                Some((f, _)) => f
                    .metadata()
                    .map_err(|e| EventsError::io(&self.path, "stat", e))?
                    .len(),
                None => 0,
            };
            if size > 0 && size + line.len() as u64 > self.max_size {
                std::fs::rename(&self.path, &self.rotated)
                    .map_err(|e| EventsError::io(&self.path, "rotate", e))?;
                tracing::debug!(log = %self.path.display(), size, "rotated events log");
                *log = Some(self.open_log()?);
            }
        }
        let (f, _) = log
            .as_mut()
            .ok_or_else(|| EventsError::io(&self.path, "open", io::ErrorKind::NotFound.into()))?;
        // One write(2) for the whole line on an O_APPEND descriptor.
        f.write_all(line)
            .map_err(|e| EventsError::io(&self.path, "append to", e))
    }
}

/// An open log file being read line by line.
struct Tail {
    path: PathBuf,
    file: File,
    id: FileId,
    offset: u64,
    partial: Vec<u8>,
    line_no: usize,
}

impl Tail {
    fn open(path: &Path) -> Result<Option<Tail>, EventsError> {
        match File::open(path) {
            Ok(file) => {
                let m = file
                    .metadata()
                    .map_err(|e| EventsError::io(path, "stat", e))?;
                Ok(Some(Tail {
                    path: path.to_path_buf(),
                    file,
                    id: file_id(&m),
                    offset: 0,
                    partial: Vec::new(),
                    line_no: 0,
                }))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(EventsError::io(path, "open", e)),
        }
    }

    /// Reads to the end of the file, handing complete lines to `emit`.
    /// With `last`, an unterminated final line is reported as corrupt.
    fn drain(
        &mut self,
        opts: &ReadOptions,
        sink: EventSink<'_>,
        last: bool,
    ) -> Result<ControlFlow<()>, EventsError> {
        let len = self
            .file
            .metadata()
            .map_err(|e| EventsError::io(&self.path, "stat", e))?
            .len();
        if len < self.offset {
            tracing::warn!(log = %self.path.display(), "events log was truncated; reading it again from the start");
            self.file
                .seek(SeekFrom::Start(0))
                .map_err(|e| EventsError::io(&self.path, "seek", e))?;
            self.offset = 0;
            self.partial.clear();
            self.line_no = 0;
        }
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match self.file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(EventsError::io(&self.path, "read", e)),
            };
            self.offset += n as u64;
            let mut chunk = &buf[..n];
            while let Some(pos) = chunk.iter().position(|b| *b == b'\n') {
                self.partial.extend_from_slice(&chunk[..pos]);
                chunk = &chunk[pos + 1..];
                let line = std::mem::take(&mut self.partial);
                self.line_no += 1;
                if self.emit(&line, opts, sink).is_break() {
                    return Ok(ControlFlow::Break(()));
                }
            }
            self.partial.extend_from_slice(chunk);
        }
        if last && !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line_no += 1;
            return Ok(self.emit(&line, opts, sink));
        }
        Ok(ControlFlow::Continue(()))
    }

    fn emit(&self, line: &[u8], opts: &ReadOptions, sink: EventSink<'_>) -> ControlFlow<()> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return ControlFlow::Continue(());
        }
        let parsed = std::str::from_utf8(line)
            .map_err(|e| e.to_string())
            .and_then(|s| {
                Event::from_json(s).map_err(|e| match e {
                    EventsError::Corrupt { reason, .. } => reason,
                    other => other.to_string(),
                })
            });
        match parsed {
            Ok(e) if opts.wants(&e) => sink(e),
            Ok(_) => ControlFlow::Continue(()),
            Err(reason) => {
                let err = EventsError::Corrupt {
                    path: self.path.clone(),
                    line: self.line_no,
                    reason,
                };
                tracing::warn!("skipping {err}");
                ControlFlow::Continue(())
            }
        }
    }
}

impl FileEventer {
    fn current_id(&self) -> Result<Option<FileId>, EventsError> {
        match std::fs::metadata(&self.path) {
            Ok(m) => Ok(Some(file_id(&m))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(EventsError::io(&self.path, "stat", e)),
        }
    }

    fn follow(&self, opts: &ReadOptions, sink: EventSink<'_>) -> Result<(), EventsError> {
        macro_rules! check {
            ($e:expr) => {
                if $e?.is_break() {
                    return Ok(());
                }
            };
        }
        let mut cur = Tail::open(&self.path)?;
        if let Some(mut old) = Tail::open(&self.rotated)? {
            if cur.as_ref().map(|c| c.id) != Some(old.id) {
                check!(old.drain(opts, sink, true));
            }
        }
        // The last generation drained, kept open so its inode cannot be reused.
        let mut prev: Option<Tail> = None;
        loop {
            if let Some(c) = cur.as_mut() {
                check!(c.drain(opts, sink, false));
            }
            if !opts.stream || opts.should_stop() {
                // An unterminated last line is either a complete event without its
                // newline (another tool wrote it) or one being written right now.
                if let Some(c) = cur.as_mut().filter(|c| !c.partial.is_empty()) {
                    let tail = std::mem::take(&mut c.partial);
                    match std::str::from_utf8(&tail).ok().map(Event::from_json) {
                        Some(Ok(e)) if opts.wants(&e) => {
                            let _ = sink(e); // the last event: nothing follows either way
                        }
                        Some(Ok(_)) => {}
                        _ => tracing::debug!(
                            "ignoring an incomplete last line of {}",
                            c.path.display()
                        ),
                    }
                }
                return Ok(());
            }
            let on_disk = self.current_id()?;
            if on_disk.is_some() && on_disk == cur.as_ref().map(|c| c.id) {
                std::thread::sleep(opts.poll_interval);
                continue;
            }
            if on_disk.is_none() && cur.is_none() {
                std::thread::sleep(opts.poll_interval);
                continue;
            }
            // Rotated (or created, or removed): finish the old generation.
            if let Some(mut c) = cur.take() {
                check!(c.drain(opts, sink, true));
                prev = Some(c);
            }
            let new = Tail::open(&self.path)?;
            if let Some(mut gen1) = Tail::open(&self.rotated)? {
                let seen = prev.as_ref().map(|p| p.id) == Some(gen1.id)
                    || new.as_ref().map(|n| n.id) == Some(gen1.id);
                if !seen {
                    tracing::debug!(
                        "events log rotated twice within one poll; reading {}",
                        gen1.path.display()
                    );
                    check!(gen1.drain(opts, sink, true));
                }
            }
            if new.is_some() {
                prev = None;
            }
            cur = new;
        }
    }
}

impl Eventer for FileEventer {
    fn backend(&self) -> &'static str {
        "file"
    }

    fn write(&self, event: &Event) -> Result<(), EventsError> {
        let mut line = event.to_json().into_bytes();
        line.push(b'\n');
        self.append(&line)
    }

    fn read(&self, opts: &ReadOptions, sink: EventSink<'_>) -> Result<(), EventsError> {
        self.follow(opts, sink)
    }
}

/// The registry factory of the `file` backend.
pub fn open_file(opts: &EventsOptions) -> Result<Box<dyn Eventer>, EventsError> {
    Ok(Box::new(FileEventer::new(&opts.log_path, opts.max_size)))
}
