//! Reading conmon's k8s-file container log.
//!
//! Each line is `<RFC3339Nano time> <stdout|stderr> <F|P> <message>`: `F` is a
//! complete line, `P` a partial chunk (conmon adds an artificial newline that
//! is not part of the output). `podman logs` prints `P` messages without and
//! `F` messages with a newline, to stdout or stderr by stream.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::OciError;

/// Which stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    /// stdout.
    Stdout,
    /// stderr.
    Stderr,
}

/// One parsed log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// When conmon read the chunk.
    pub time: OffsetDateTime,
    /// The time as written in the file.
    pub time_text: String,
    /// The stream.
    pub stream: LogStream,
    /// `P`: a partial line (no newline in the output).
    pub partial: bool,
    /// The message, without the line's trailing newline.
    pub message: Vec<u8>,
}

impl LogLine {
    /// Parses one line (with or without its trailing `\n`).
    pub fn parse(line: &[u8]) -> Result<LogLine, String> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let mut parts = line.splitn(4, |b| *b == b' ');
        let (t, s, f) = (parts.next(), parts.next(), parts.next());
        let (Some(t), Some(s), Some(f)) = (t, s, f) else {
            return Err("fewer than 3 fields".into());
        };
        let message = parts.next().unwrap_or(b"").to_vec();
        let time_text = String::from_utf8_lossy(t).into_owned();
        let time = OffsetDateTime::parse(&time_text, &Rfc3339)
            .map_err(|e| format!("bad time {time_text:?}: {e}"))?;
        let stream = match s {
            b"stdout" => LogStream::Stdout,
            b"stderr" => LogStream::Stderr,
            other => return Err(format!("bad stream {:?}", String::from_utf8_lossy(other))),
        };
        let partial = match f {
            b"P" => true,
            b"F" => false,
            other => return Err(format!("bad tag {:?}", String::from_utf8_lossy(other))),
        };
        Ok(LogLine {
            time,
            time_text,
            stream,
            partial,
            message,
        })
    }

    /// Writes the line as `podman logs` does: to `out` or `err` by stream,
    /// `P` without newline, optionally prefixed by the timestamp.
    pub fn write_to(
        &self,
        out: &mut dyn Write,
        err: &mut dyn Write,
        timestamps: bool,
    ) -> std::io::Result<()> {
        let w: &mut dyn Write = match self.stream {
            LogStream::Stdout => out,
            LogStream::Stderr => err,
        };
        if timestamps {
            w.write_all(self.time_text.as_bytes())?;
            w.write_all(b" ")?;
        }
        w.write_all(&self.message)?;
        if !self.partial {
            w.write_all(b"\n")?;
        }
        Ok(())
    }
}

/// What to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Only the last N complete lines (partial chunks before them included).
    pub tail: Option<usize>,
    /// Only lines at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only lines before this time.
    pub until: Option<OffsetDateTime>,
    /// Keep reading new lines while the container runs.
    pub follow: bool,
}

/// Interval between looks at the file when following.
pub const FOLLOW_POLL_INTERVAL: Duration = Duration::from_millis(100);

fn wanted(line: &LogLine, opts: &LogOptions) -> bool {
    opts.since.is_none_or(|s| line.time >= s) && opts.until.is_none_or(|u| line.time < u)
}

/// Parses a whole buffer of complete lines; malformed lines are skipped with a warning.
fn parse_lines(path: &Path, data: &[u8]) -> Vec<LogLine> {
    data.split_inclusive(|b| *b == b'\n')
        .filter(|l| !l.is_empty() && *l != b"\n")
        .filter_map(|l| match LogLine::parse(l) {
            Ok(x) => Some(x),
            Err(e) => {
                tracing::warn!("skipping malformed line in {}: {e}", path.display());
                None
            }
        })
        .collect()
}

/// Reads the log at `path` and hands every selected line to `sink`, in
/// order. With `follow`, keeps polling for new lines until `running()`
/// returns false (then drains what is left). A missing file is an empty log.
pub fn read_log(
    path: &Path,
    opts: &LogOptions,
    running: &dyn Fn() -> bool,
    sink: &mut dyn FnMut(&LogLine) -> Result<(), OciError>,
) -> Result<(), OciError> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(OciError::io(path, e)),
    };
    let mut data = Vec::new();
    if let Some(f) = file.as_mut() {
        f.read_to_end(&mut data)
            .map_err(|e| OciError::io(path, e))?;
    }
    let mut pos = data.len() as u64;
    // Keep an unterminated last line for later.
    let complete = data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let mut pending = data.split_off(complete);
    let lines = parse_lines(path, &data);
    let start = match opts.tail {
        None => 0,
        Some(n) => {
            let full: Vec<usize> = lines
                .iter()
                .enumerate()
                .filter(|(_, l)| !l.partial)
                .map(|(i, _)| i)
                .collect();
            if n == 0 {
                lines.len()
            } else if full.len() > n {
                full[full.len() - n - 1] + 1
            } else {
                0
            }
        }
    };
    for l in lines[start..].iter().filter(|l| wanted(l, opts)) {
        sink(l)?;
    }
    if !opts.follow {
        return Ok(());
    }
    loop {
        let alive = running();
        if file.is_none() {
            file = std::fs::File::open(path).ok();
            pos = 0;
        }
        if let Some(f) = file.as_mut() {
            let len = f.metadata().map_err(|e| OciError::io(path, e))?.len();
            let replaced = std::fs::metadata(path)
                .map(|m| {
                    use std::os::unix::fs::MetadataExt;
                    let cur = f.metadata().map(|c| (c.dev(), c.ino())).ok();
                    cur != Some((m.dev(), m.ino()))
                })
                .unwrap_or(false);
            if replaced || len < pos {
                // Rotated (conmon renames a new file over the log): start over.
                file = std::fs::File::open(path).ok();
                pos = 0;
                pending.clear();
                continue;
            }
            if len > pos {
                f.seek(SeekFrom::Start(pos))
                    .map_err(|e| OciError::io(path, e))?;
                let mut more = Vec::new();
                f.read_to_end(&mut more)
                    .map_err(|e| OciError::io(path, e))?;
                pos += more.len() as u64;
                pending.extend_from_slice(&more);
                let complete = pending
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map_or(0, |i| i + 1);
                let rest = pending.split_off(complete);
                for l in parse_lines(path, &pending)
                    .iter()
                    .filter(|l| wanted(l, opts))
                {
                    sink(l)?;
                }
                pending = rest;
                continue;
            }
        }
        if !alive {
            return Ok(());
        }
        std::thread::sleep(FOLLOW_POLL_INTERVAL);
    }
}

/// Reads the whole log (no follow) into a vector.
pub fn read_all(path: &Path, opts: &LogOptions) -> Result<Vec<LogLine>, OciError> {
    let mut v = Vec::new();
    let o = LogOptions {
        follow: false,
        ..opts.clone()
    };
    read_log(path, &o, &|| false, &mut |l| {
        v.push(l.clone());
        Ok(())
    })?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "2026-12-04T19:38:10.792245231+00:00 stdout F hello\n\
2026-12-04T19:38:10.792245231+00:00 stdout P partial\n\
2026-12-04T19:38:10.792317011+00:00 stderr F err\n\
2026-12-04T19:38:11.000000000+01:00 stdout F  two  spaces \n";

    #[test]
    fn parses_and_prints_like_podman() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("ctr.log");
        std::fs::write(&p, SAMPLE).unwrap();
        let lines = read_all(&p, &LogOptions::default()).unwrap();
        assert_eq!(lines.len(), 4);
        assert!(lines[1].partial);
        assert_eq!(lines[2].stream, LogStream::Stderr);
        assert_eq!(lines[3].message, b" two  spaces ");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        for l in &lines {
            l.write_to(&mut out, &mut err, false).unwrap();
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "hello\npartial two  spaces \n"
        );
        assert_eq!(String::from_utf8(err).unwrap(), "err\n");
        let mut out = Vec::new();
        lines[0].write_to(&mut out, &mut Vec::new(), true).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2026-12-04T19:38:10.792245231+00:00 hello\n"
        );
    }

    #[test]
    fn tail_and_since() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("ctr.log");
        std::fs::write(&p, SAMPLE).unwrap();
        let tail = |n| {
            read_all(
                &p,
                &LogOptions {
                    tail: Some(n),
                    ..Default::default()
                },
            )
            .unwrap()
        };
        assert_eq!(tail(1).len(), 1);
        // The partial chunk belongs to the line completed by "err".
        assert_eq!(tail(2).len(), 3);
        assert_eq!(tail(0).len(), 0);
        assert_eq!(tail(10).len(), 4);
        let since = OffsetDateTime::parse("2026-12-04T19:38:10.7923Z", &Rfc3339).unwrap();
        let s = read_all(
            &p,
            &LogOptions {
                since: Some(since),
                ..Default::default()
            },
        )
        .unwrap();
        // 19:38:11+01:00 is 18:38:11Z, before `since`.
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].message, b"err");
    }

    #[test]
    fn malformed_lines_are_skipped_not_fatal() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("ctr.log");
        std::fs::write(&p, format!("garbage\n\n{SAMPLE}not a time stdout F x\n")).unwrap();
        assert_eq!(read_all(&p, &LogOptions::default()).unwrap().len(), 4);
        assert!(read_all(&t.path().join("missing"), &LogOptions::default())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn follow_sees_appended_lines_until_stopped() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("ctr.log");
        std::fs::write(&p, "2026-12-04T19:38:10.000000000+00:00 stdout F first\n").unwrap();
        let running = Arc::new(AtomicBool::new(true));
        let (p2, r2) = (p.clone(), running.clone());
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            let mut f = std::fs::OpenOptions::new().append(true).open(&p2).unwrap();
            f.write_all(b"2026-12-04T19:38:11.000000000+00:00 stdout F sec")
                .unwrap();
            f.flush().unwrap();
            std::thread::sleep(Duration::from_millis(150));
            f.write_all(b"ond\n").unwrap();
            std::thread::sleep(Duration::from_millis(50));
            r2.store(false, Ordering::SeqCst);
        });
        let mut got = Vec::new();
        read_log(
            &p,
            &LogOptions {
                follow: true,
                ..Default::default()
            },
            &|| running.load(Ordering::SeqCst),
            &mut |l| {
                got.push(String::from_utf8_lossy(&l.message).into_owned());
                Ok(())
            },
        )
        .unwrap();
        writer.join().unwrap();
        assert_eq!(got, vec!["first".to_string(), "second".to_string()]);
    }
}
