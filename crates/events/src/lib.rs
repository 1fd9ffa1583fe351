//! rpod's events: what the engine records at each lifecycle step, and what
//! `rpod events` shows, like libpod's `events` package.
//!
//! * [`Event`] carries podman's fields and serializes to podman's JSON
//!   ([`Event::to_json`]) and human line ([`Event::to_human`]).
//! * [`Eventer`] is the backend trait: write an event, read events (filtered,
//!   bounded by `since`/`until`) and optionally follow new ones, written by any
//!   process, until a stop flag is set or the callback says stop.
//! * Backends are found through [`rpod_registry`] under
//!   [`rpod_registry::kinds::EVENTS`] by the config's `events_logger`:
//!   [`file`](file::FileEventer) (JSON lines at `cfg.events_log_file()`,
//!   locked appends, size-limited rotation), [`journald`](journald::JournaldEventer)
//!   (the systemd journal's native protocol), and `none` ([`NoneEventer`]).
//!   [`open`] does the lookup.
//! * [`ReadOptions::from_cli`], [`EventFilter`], [`parse_input_time`] and
//!   [`OutputFormat`] implement the flags of `rpod events`; [`print_events`]
//!   runs the whole command.
//!
//! ```
//! use rpod_events::{Event, Eventer, ReadOptions, Status};
//! let dir = tempfile::tempdir().unwrap();
//! let ev = rpod_events::file::FileEventer::new(dir.path().join("events.log"), 0);
//! ev.write(&Event::container(Status::Create, "abc", "web", "busybox")).unwrap();
//! ev.write(&Event::system(Status::Refresh)).unwrap();
//! let opts = ReadOptions::from_cli(None, None, &["type=container"], false).unwrap();
//! let got = ev.read_all(&opts).unwrap();
//! assert_eq!(got.len(), 1);
//! assert_eq!(got[0].name, "web");
//! ```
//!
//! # Writing a backend
//! Implement [`Eventer`] (`write` and `read`; honour [`ReadOptions::wants`]
//! for each event and, when `opts.stream` is set, keep delivering new events
//! until [`ReadOptions::should_stop`] or the sink returns
//! [`ControlFlow::Break`]). Provide a factory of type [`EventerFactory`] and
//! register it, statically from your crate:
//!
//! ```
//! use std::ops::ControlFlow;
//! use std::sync::Mutex;
//! use rpod_events::{Event, EventSink, Eventer, EventerFactory, EventsError, EventsOptions, ReadOptions, Status};
//!
//! /// Keeps events in memory (a real backend would store them somewhere shared).
//! #[derive(Debug, Default)]
//! struct Memory(Mutex<Vec<Event>>);
//!
//! impl Eventer for Memory {
//!     fn backend(&self) -> &'static str { "memory-doc" }
//!     fn write(&self, e: &Event) -> Result<(), EventsError> {
//!         self.0.lock().unwrap().push(e.clone());
//!         Ok(())
//!     }
//!     fn read(&self, opts: &ReadOptions, sink: EventSink<'_>) -> Result<(), EventsError> {
//!         for e in self.0.lock().unwrap().iter().filter(|e| opts.wants(e)) {
//!             if sink(e.clone()).is_break() { break; }
//!         }
//!         Ok(())
//!     }
//! }
//!
//! fn open_memory(_opts: &EventsOptions) -> Result<Box<dyn Eventer>, EventsError> {
//!     Ok(Box::new(Memory::default()))
//! }
//!
//! rpod_registry::register_backend! {
//!     kind: rpod_registry::kinds::EVENTS,
//!     name: "memory-doc",
//!     summary: "events in memory",
//!     factory: open_memory as EventerFactory,
//! }
//!
//! let ev = rpod_events::open_with("memory-doc", &EventsOptions::new("/unused")).unwrap();
//! ev.write(&Event::system(Status::Refresh)).unwrap();
//! assert_eq!(ev.read_all(&ReadOptions::default()).unwrap().len(), 1);
//! ```
//!
//! or at run time with [`rpod_registry::register`] (plugins). Users then set
//! `events_logger = "mine"`.

mod error;
mod event;
pub mod file;
mod filter;
pub mod journald;
mod time;

use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use error::EventsError;
pub use event::{Event, EventType, Status};
pub use filter::{EventFilter, FilterKey, FILTER_KEYS};
pub use time::{parse_go_duration, parse_input_time, Timestamp, TIME_EXPECTED};

/// Where read events go. Return [`ControlFlow::Break`] to stop reading.
pub type EventSink<'a> = &'a mut dyn FnMut(Event) -> ControlFlow<()>;

/// The factory type of events backends, as registered in [`rpod_registry`].
pub type EventerFactory = fn(&EventsOptions) -> Result<Box<dyn Eventer>, EventsError>;

/// An events backend.
pub trait Eventer: Send + Sync + std::fmt::Debug {
    /// The backend's registry name (`file`, `journald`, `none`, …).
    fn backend(&self) -> &'static str;

    /// Records one event. Safe to call from many threads and processes at once.
    fn write(&self, event: &Event) -> Result<(), EventsError>;

    /// Hands every recorded event that [`ReadOptions::wants`] to `sink`, oldest
    /// first. With `opts.stream`, then keeps waiting for and delivering new
    /// events (from any process) until [`ReadOptions::should_stop`] or the sink
    /// breaks.
    fn read(&self, opts: &ReadOptions, sink: EventSink<'_>) -> Result<(), EventsError>;

    /// The recorded events that `opts` wants, without streaming.
    fn read_all(&self, opts: &ReadOptions) -> Result<Vec<Event>, EventsError> {
        let mut opts = opts.clone();
        opts.stream = false;
        let mut out = Vec::new();
        self.read(&opts, &mut |e| {
            out.push(e);
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }
}

/// What a backend factory needs, taken from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventsOptions {
    /// The `file` backend's log (`cfg.events_log_file()`).
    pub log_path: PathBuf,
    /// Rotate the log past this many bytes; 0 for no limit.
    pub max_size: u64,
    /// The journal's native socket (`journald` backend).
    pub journal_socket: PathBuf,
    /// `SYSLOG_IDENTIFIER` of journal entries (`rpod`).
    pub journal_identifier: String,
    /// The `journalctl` binary used to read the journal.
    pub journalctl: PathBuf,
}

impl EventsOptions {
    /// Options for a log at `log_path` with no size limit and the default journal.
    pub fn new(log_path: impl Into<PathBuf>) -> Self {
        EventsOptions {
            log_path: log_path.into(),
            max_size: 0,
            journal_socket: journald::JOURNAL_SOCKET.into(),
            journal_identifier: "rpod".into(),
            journalctl: "journalctl".into(),
        }
    }

    /// The options of a runtime config: `events_log_file()` and `events_logfile_max_size`.
    pub fn from_config(cfg: &rpod_config::RuntimeConfig) -> Self {
        let mut o = EventsOptions::new(cfg.events_log_file());
        o.max_size = cfg.events_logfile_max_size;
        o
    }

    /// Sets the size limit.
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = bytes;
        self
    }

    /// Sets the journal socket.
    pub fn journal_socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.journal_socket = path.into();
        self
    }

    /// Sets the journal identifier.
    pub fn journal_identifier(mut self, id: &str) -> Self {
        self.journal_identifier = id.to_string();
        self
    }
}

/// Which events to read and whether to follow.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// `--filter`s.
    pub filter: EventFilter,
    /// Only events strictly after this time (`--since`).
    pub since: Option<Timestamp>,
    /// Only events strictly before this time (`--until`); streaming ends when it passes.
    pub until: Option<Timestamp>,
    /// Keep following new events (`--stream`).
    pub stream: bool,
    /// Set to stop streaming (checked at least every `poll_interval`).
    pub stop: Option<Arc<AtomicBool>>,
    /// How often a follower looks for new events.
    pub poll_interval: Duration,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            filter: EventFilter::new(),
            since: None,
            until: None,
            stream: false,
            stop: None,
            poll_interval: Duration::from_millis(50),
        }
    }
}

impl ReadOptions {
    /// The options of `rpod events --since S --until U --filter F… --stream=B`.
    pub fn from_cli<S: AsRef<str>>(
        since: Option<&str>,
        until: Option<&str>,
        filters: &[S],
        stream: bool,
    ) -> Result<Self, EventsError> {
        let now = Timestamp::now();
        Ok(ReadOptions {
            filter: EventFilter::parse(filters)?,
            since: since.map(|s| parse_input_time(s, true, now)).transpose()?,
            until: until.map(|s| parse_input_time(s, false, now)).transpose()?,
            stream,
            ..ReadOptions::default()
        })
    }

    /// Sets the stop flag.
    pub fn with_stop(mut self, stop: Arc<AtomicBool>) -> Self {
        self.stop = Some(stop);
        self
    }

    /// Whether `e` is within `since`/`until` and passes the filter.
    pub fn wants(&self, e: &Event) -> bool {
        self.since.is_none_or(|s| e.time > s)
            && self.until.is_none_or(|u| e.time < u)
            && self.filter.matches(e)
    }

    /// Whether a follower should stop: the stop flag is set or `until` has passed.
    pub fn should_stop(&self) -> bool {
        self.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst))
            || self.until.is_some_and(|u| Timestamp::now() >= u)
    }
}

/// How `rpod events` prints events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OutputFormat {
    /// podman's default line ([`Event::to_human`]).
    #[default]
    Human,
    /// podman's default line with IDs cut to 12 characters (`--no-trunc=false`).
    HumanTruncated,
    /// One JSON object per line ([`Event::to_json`]).
    Json,
}

impl OutputFormat {
    /// Parses `--format`: empty → human, `json` or `{{json .}}` → JSON; other
    /// Go templates are refused.
    pub fn parse(format: &str) -> Result<Self, EventsError> {
        let f = format.trim();
        let compact: String = f.chars().filter(|c| !c.is_whitespace()).collect();
        match compact.as_str() {
            "" => Ok(OutputFormat::Human),
            "json" | "{{json.}}" => Ok(OutputFormat::Json),
            _ if f.contains("{{") => Err(EventsError::BadFormat {
                format: format.to_string(),
                reason: "Go templates are not supported; use --format json (or omit --format for the default lines)",
            }),
            _ => Err(EventsError::BadFormat {
                format: format.to_string(),
                reason: "expected \"json\" (or no --format for the default lines)",
            }),
        }
    }

    /// This format, with IDs truncated unless `no_trunc` (podman's `--no-trunc`,
    /// default true). Only the human lines truncate.
    pub fn no_trunc(self, no_trunc: bool) -> Self {
        match self {
            OutputFormat::Human | OutputFormat::HumanTruncated if no_trunc => OutputFormat::Human,
            OutputFormat::Human | OutputFormat::HumanTruncated => OutputFormat::HumanTruncated,
            other => other,
        }
    }

    /// One event as a line (without newline).
    pub fn line(self, e: &Event) -> String {
        match self {
            OutputFormat::Human => e.to_human(),
            OutputFormat::HumanTruncated => e.to_human_opts(true),
            OutputFormat::Json => e.to_json(),
        }
    }
}

/// Runs `rpod events`: reads from `eventer` with `opts`, printing each event as
/// a line to `out` and flushing. Stops quietly when `out` is closed (broken pipe).
pub fn print_events(
    eventer: &dyn Eventer,
    opts: &ReadOptions,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), EventsError> {
    let mut write_err: Option<std::io::Error> = None;
    eventer.read(opts, &mut |e| {
        let mut line = format.line(&e);
        line.push('\n');
        match out.write_all(line.as_bytes()).and_then(|_| out.flush()) {
            Ok(()) => ControlFlow::Continue(()),
            Err(err) => {
                write_err = Some(err);
                ControlFlow::Break(())
            }
        }
    })?;
    match write_err {
        Some(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(EventsError::io("<stdout>", "write", e))
        }
        _ => Ok(()),
    }
}

/// The `none` backend: writes nothing, reads nothing (a stream ends at once).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoneEventer;

impl Eventer for NoneEventer {
    fn backend(&self) -> &'static str {
        "none"
    }
    fn write(&self, _event: &Event) -> Result<(), EventsError> {
        Ok(())
    }
    fn read(&self, _opts: &ReadOptions, _sink: EventSink<'_>) -> Result<(), EventsError> {
        Ok(())
    }
}

fn open_none(_opts: &EventsOptions) -> Result<Box<dyn Eventer>, EventsError> {
    Ok(Box::new(NoneEventer))
}

rpod_registry::register_backend! {
    kind: rpod_registry::kinds::EVENTS,
    name: "file",
    summary: "JSON lines in events_logfile_path (locked appends, rotation past events_logfile_max_size)",
    factory: file::open_file as EventerFactory,
}

rpod_registry::register_backend! {
    kind: rpod_registry::kinds::EVENTS,
    name: "journald",
    summary: "systemd journal (native protocol), read back with journalctl",
    factory: journald::open_journald as EventerFactory,
}

rpod_registry::register_backend! {
    kind: rpod_registry::kinds::EVENTS,
    name: "none",
    summary: "discard events",
    factory: open_none as EventerFactory,
}

/// Opens the events backend named by `cfg.events_logger`.
pub fn open(cfg: &rpod_config::RuntimeConfig) -> Result<Box<dyn Eventer>, EventsError> {
    open_with(&cfg.events_logger, &EventsOptions::from_config(cfg))
}

/// Opens the events backend `name` with explicit options.
pub fn open_with(name: &str, opts: &EventsOptions) -> Result<Box<dyn Eventer>, EventsError> {
    let backend_err = |source| EventsError::Backend {
        name: name.to_string(),
        source,
    };
    let reg = rpod_registry::lookup(rpod_registry::kinds::EVENTS, name).map_err(backend_err)?;
    let factory = reg.factory::<EventerFactory>().map_err(backend_err)?;
    factory(opts)
}
