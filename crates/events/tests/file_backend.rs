//! The `file` backend in one process: round trip, filters, since/until,
//! corrupt lines, rotation, following with a stop flag, the registry, `none`.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use rpod_events::file::FileEventer;
use rpod_events::{
    print_events, Event, EventType, Eventer, EventsError, EventsOptions, OutputFormat, ReadOptions,
    Status, Timestamp,
};

fn t(secs: i64) -> Timestamp {
    Timestamp::from_unix(1_700_000_000 + secs, 123_456_789)
}

fn sample() -> Vec<Event> {
    vec![
        Event::system(Status::Refresh).at(t(0)),
        Event::container(Status::Create, "aaaa1111", "web", "busybox")
            .with_attribute("app", "shop")
            .with_attribute("tier", "front")
            .at(t(1)),
        Event::container(Status::Start, "aaaa1111", "web", "busybox")
            .with_attribute("app", "shop")
            .at(t(2)),
        Event::container(Status::Create, "bbbb2222", "db", "postgres")
            .with_attribute("app", "shop")
            .with_pod_id("pod9999")
            .at(t(3)),
        Event::died("aaaa1111", "web", "busybox", 137).at(t(4)),
        Event::pod(Status::Create, "pod9999", "shop-pod").at(t(5)),
        Event::volume(Status::Create, "data-vol").at(t(6)),
        Event::image(Status::Pull, "img777", "docker.io/library/busybox").at(t(7)),
        Event::system(Status::Renumber).at(t(8)),
        Event::system(Status::Migrate).at(t(9)),
        Event::system(Status::Reset).at(t(10)),
    ]
}

fn written(dir: &tempfile::TempDir) -> FileEventer {
    let ev = FileEventer::new(dir.path().join("events").join("events.log"), 0);
    for e in sample() {
        ev.write(&e).unwrap();
    }
    ev
}

fn names(ev: &FileEventer, filters: &[&str]) -> Vec<(String, String)> {
    let opts = ReadOptions::from_cli(None, None, filters, false).unwrap();
    ev.read_all(&opts)
        .unwrap()
        .into_iter()
        .map(|e| {
            (
                e.status.to_string(),
                if e.name.is_empty() {
                    e.event_type.to_string()
                } else {
                    e.name
                },
            )
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn write_read_round_trip_keeps_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let ev = written(&dir);
    let got = ev.read_all(&ReadOptions::default()).unwrap();
    assert_eq!(got, sample());
    let text = std::fs::read_to_string(ev.path()).unwrap();
    assert_eq!(text.lines().count(), sample().len());
    assert!(text.ends_with('\n'));
    assert_eq!(got[4].exit_code(), Some(137));
    assert_eq!(ev.backend(), "file");
}

#[test]
fn reading_a_missing_log_gives_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ev = FileEventer::new(dir.path().join("nope.log"), 0);
    assert!(ev.read_all(&ReadOptions::default()).unwrap().is_empty());
}

#[test]
fn filters_or_within_a_key_and_across_keys() {
    let dir = tempfile::tempdir().unwrap();
    let ev = written(&dir);
    // one key, two values: OR
    assert_eq!(
        names(&ev, &["event=start", "event=died"]),
        pairs(&[("start", "web"), ("died", "web")])
    );
    // `status` is an alias of `event`: still one key, OR
    assert_eq!(
        names(&ev, &["status=start", "event=died"]),
        pairs(&[("start", "web"), ("died", "web")])
    );
    // different keys: AND
    assert_eq!(
        names(&ev, &["event=create", "container=db"]),
        pairs(&[("create", "db")])
    );
    assert_eq!(
        names(
            &ev,
            &[
                "event=create",
                "event=start",
                "container=web",
                "container=db"
            ]
        ),
        pairs(&[("create", "web"), ("start", "web"), ("create", "db")])
    );
    assert!(names(&ev, &["event=died", "container=db"]).is_empty());
    // container by ID prefix or by exact name (a name prefix does not match)
    assert_eq!(names(&ev, &["container=bbbb"]), pairs(&[("create", "db")]));
    assert!(names(&ev, &["container=w"]).is_empty());
    // type
    assert_eq!(
        names(&ev, &["type=system"]),
        pairs(&[
            ("refresh", "system"),
            ("renumber", "system"),
            ("migrate", "system"),
            ("reset", "system")
        ])
    );
    assert_eq!(
        names(&ev, &["type=volume", "type=image"]),
        pairs(&[
            ("create", "data-vol"),
            ("pull", "docker.io/library/busybox")
        ])
    );
    // labels: key only, key=value, OR between two label filters
    assert_eq!(names(&ev, &["label=tier"]), pairs(&[("create", "web")]));
    assert_eq!(
        names(&ev, &["label=app=shop"]),
        pairs(&[("create", "web"), ("start", "web"), ("create", "db")])
    );
    assert!(names(&ev, &["label=app=other"]).is_empty());
    assert_eq!(
        names(&ev, &["label=tier=front", "label=nope", "event=create"]),
        pairs(&[("create", "web")])
    );
    // pod: the pod's events and its containers' events
    assert_eq!(
        names(&ev, &["pod=shop-pod", "pod=pod9"]),
        pairs(&[("create", "db"), ("create", "shop-pod")])
    );
    // volume by name prefix; image by name/ID and containers using it
    assert_eq!(
        names(&ev, &["volume=data"]),
        pairs(&[("create", "data-vol")])
    );
    assert_eq!(
        names(&ev, &["image=busybox"]),
        pairs(&[("create", "web"), ("start", "web"), ("died", "web")])
    );
    assert_eq!(
        names(&ev, &["image=img7"]),
        pairs(&[("pull", "docker.io/library/busybox")])
    );
    // keys are case-insensitive, as podman's
    assert_eq!(names(&ev, &["EVENT=reset"]), pairs(&[("reset", "system")]));
}

#[test]
fn bad_filters_name_the_input_and_what_is_expected() {
    let cases = [
        ("colour=red", "unknown filter key \"colour\""),
        ("event", "expected KEY=VALUE"),
        (
            "type=contaner",
            "unknown event type \"contaner\"; expected one of: container",
        ),
        (
            "event=die",
            "unknown event status \"die\"; expected one of: attach",
        ),
        ("container=", "empty value"),
        ("label==x", "label=KEY"),
    ];
    for (f, want) in cases {
        let err = ReadOptions::from_cli(None, None, &[f], false).unwrap_err();
        assert!(matches!(err, EventsError::BadFilter { .. }), "{f}: {err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("{f:?}")) && msg.contains(want),
            "{f}: {msg}"
        );
    }
}

#[test]
fn since_and_until_bound_the_events_strictly() {
    let dir = tempfile::tempdir().unwrap();
    let ev = written(&dir);
    let at = |s: i64| (1_700_000_000 + s).to_string() + ".123456789";
    let read = |since: Option<&str>, until: Option<&str>| {
        let opts = ReadOptions::from_cli(since, until, &[] as &[&str], false).unwrap();
        ev.read_all(&opts)
            .unwrap()
            .iter()
            .map(|e| e.time)
            .collect::<Vec<_>>()
    };
    // since is exclusive, until is exclusive (podman's After/Before)
    assert_eq!(read(Some(&at(8)), None), vec![t(9), t(10)]);
    assert_eq!(read(None, Some(&at(2))), vec![t(0), t(1)]);
    assert_eq!(read(Some(&at(3)), Some(&at(6))), vec![t(4), t(5)]);
    // RFC 3339 with a zone
    assert_eq!(read(Some("2023-11-14T23:13:29.5+01:00"), None), vec![t(10)]);
    // a duration: everything here is long ago
    assert!(read(Some("10m"), None).is_empty());
    assert_eq!(read(None, Some("1h30m")).len(), sample().len());
    // combined with a filter
    let opts = ReadOptions::from_cli(Some(&at(1)), None, &["type=container"], false).unwrap();
    let got: Vec<_> = ev
        .read_all(&opts)
        .unwrap()
        .into_iter()
        .map(|e| e.status)
        .collect();
    assert_eq!(got, vec![Status::Start, Status::Create, Status::Died]);
    for bad in ["tomorrow", "10 minutes", "2024-13-01", "1h-"] {
        let err = ReadOptions::from_cli(Some(bad), None, &[] as &[&str], false).unwrap_err();
        assert!(matches!(err, EventsError::BadTime { .. }), "{bad}");
        let msg = err.to_string();
        assert!(
            msg.contains(bad) && msg.contains("--since") && msg.contains("duration"),
            "{msg}"
        );
    }
    let err = ReadOptions::from_cli(None, Some("soon"), &[] as &[&str], false).unwrap_err();
    assert!(err.to_string().contains("--until"), "{err}");
}

#[test]
fn corrupt_lines_are_skipped_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let ev = FileEventer::new(dir.path().join("events.log"), 0);
    ev.write(&Event::system(Status::Refresh).at(t(0))).unwrap();
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(ev.path())
            .unwrap();
        f.write_all(b"this is not json\n{\"Status\":\"start\"}\n\xff\xfe garbage\n\n")
            .unwrap();
    }
    ev.write(&Event::system(Status::Reset).at(t(1))).unwrap();
    let got = ev.read_all(&ReadOptions::default()).unwrap();
    assert_eq!(
        got.iter().map(|e| e.status.clone()).collect::<Vec<_>>(),
        vec![Status::Refresh, Status::Reset]
    );
}

#[test]
fn an_unterminated_last_line_is_read_if_complete_and_ignored_if_partial() {
    let dir = tempfile::tempdir().unwrap();
    let ev = FileEventer::new(dir.path().join("events.log"), 0);
    ev.write(&Event::system(Status::Refresh).at(t(0))).unwrap();
    let full = Event::system(Status::Reset).at(t(1)).to_json();
    let mut text = std::fs::read_to_string(ev.path()).unwrap();
    std::fs::write(ev.path(), format!("{text}{full}")).unwrap();
    let got = ev.read_all(&ReadOptions::default()).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].status, Status::Reset);
    text.push_str(&full[..full.len() - 5]);
    std::fs::write(ev.path(), text).unwrap();
    assert_eq!(ev.read_all(&ReadOptions::default()).unwrap().len(), 1);
}

#[test]
fn rotation_keeps_the_newest_events_in_two_generations() {
    let dir = tempfile::tempdir().unwrap();
    let max = 4096;
    let ev = FileEventer::new(dir.path().join("events.log"), max);
    let n = 500;
    for i in 0..n {
        let e = Event::container(Status::Start, &format!("id-{i:05}"), "c", "img").at(t(i));
        ev.write(&e).unwrap();
    }
    let cur = std::fs::metadata(ev.path()).unwrap().len();
    let old = std::fs::metadata(ev.rotated_path()).unwrap().len();
    assert!(cur <= max && old <= max, "cur {cur} old {old}");
    assert!(
        cur + old > max,
        "keeps more than one generation's worth: {cur} + {old}"
    );
    let got = ev.read_all(&ReadOptions::default()).unwrap();
    let ids: Vec<String> = got.iter().map(|e| e.id.clone()).collect();
    // a contiguous run of the newest events, ending with the last one written
    let first: i64 = ids[0][3..].parse().unwrap();
    let expect: Vec<String> = (first..n).map(|i| format!("id-{i:05}")).collect();
    assert_eq!(ids, expect);
    assert!(ids.len() > 20 && ids.len() < n as usize);
}

#[test]
fn follow_delivers_new_events_and_stops_on_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.log");
    let ev = Arc::new(FileEventer::new(&path, 0));
    ev.write(&Event::system(Status::Refresh)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let reader = {
        let ev = Arc::clone(&ev);
        let mut opts = ReadOptions::from_cli(None, None, &["type=container"], true)
            .unwrap()
            .with_stop(Arc::clone(&stop));
        opts.poll_interval = Duration::from_millis(10);
        std::thread::spawn(move || {
            ev.read(&opts, &mut |e| {
                tx.send(e).unwrap();
                ControlFlow::Continue(())
            })
        })
    };
    let writer = FileEventer::new(&path, 0);
    writer
        .write(&Event::container(Status::Start, "f1", "follow-me", "img"))
        .unwrap();
    writer.write(&Event::system(Status::Reset)).unwrap();
    let got = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(got.name, "follow-me");
    let t0 = Instant::now();
    stop.store(true, Ordering::SeqCst);
    reader.join().unwrap().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert!(rx.try_recv().is_err(), "the system event was filtered out");
}

#[test]
fn follow_ends_when_the_sink_breaks_and_waits_for_a_log_to_appear() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("later").join("events.log");
    let ev = Arc::new(FileEventer::new(&path, 0));
    let reader = {
        let ev = Arc::clone(&ev);
        let mut opts = ReadOptions {
            stream: true,
            ..ReadOptions::default()
        };
        opts.poll_interval = Duration::from_millis(10);
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            ev.read(&opts, &mut |e| {
                seen.push(e.id);
                if seen.len() == 2 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .map(|_| seen)
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    for i in 0..3 {
        ev.write(&Event::container(
            Status::Create,
            &format!("late{i}"),
            "n",
            "i",
        ))
        .unwrap();
    }
    assert_eq!(reader.join().unwrap().unwrap(), vec!["late0", "late1"]);
}

#[test]
fn stream_with_until_in_the_past_ends() {
    let dir = tempfile::tempdir().unwrap();
    let ev = written(&dir);
    let opts = ReadOptions::from_cli(
        None,
        Some(&(1_700_000_005).to_string()),
        &[] as &[&str],
        true,
    )
    .unwrap();
    let mut n = 0;
    ev.read(&opts, &mut |_| {
        n += 1;
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(n, 5);
}

#[test]
fn open_from_config_uses_events_logger_and_log_path() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = rpod_config::RuntimeConfig::defaults(&rpod_config::UserDirs::current());
    cfg.tmp_dir = dir.path().join("tmp");
    cfg.events_logger = "file".into();
    cfg.events_logfile_max_size = 0;
    let ev = rpod_events::open(&cfg).unwrap();
    assert_eq!(ev.backend(), "file");
    ev.write(&Event::system(Status::Refresh)).unwrap();
    let log = dir.path().join("tmp/events/events.log");
    assert_eq!(cfg.events_log_file(), log);
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 1);

    cfg.events_logger = "none".into();
    let none = rpod_events::open(&cfg).unwrap();
    assert_eq!(none.backend(), "none");
    none.write(&Event::system(Status::Reset)).unwrap();
    assert!(none.read_all(&ReadOptions::default()).unwrap().is_empty());
    let streamed = ReadOptions {
        stream: true,
        ..ReadOptions::default()
    };
    none.read(&streamed, &mut |_| ControlFlow::Continue(()))
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(&log).unwrap().lines().count(),
        1,
        "none wrote nothing"
    );

    cfg.events_logger = "journald".into();
    assert_eq!(rpod_events::open(&cfg).unwrap().backend(), "journald");

    cfg.events_logger = "carrier-pigeon".into();
    let err = rpod_events::open(&cfg).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, EventsError::Backend { .. }));
    assert!(
        msg.contains("carrier-pigeon") && msg.contains("file, journald, none"),
        "{msg}"
    );

    let names = rpod_registry::names(rpod_registry::kinds::EVENTS);
    for n in ["file", "journald", "none"] {
        assert!(names.iter().any(|x| x == n), "{names:?}");
    }
}

#[test]
fn options_from_config_take_path_and_size() {
    let mut cfg = rpod_config::RuntimeConfig::defaults(&rpod_config::UserDirs::current());
    cfg.events_logfile_path = "/somewhere/ev.log".into();
    cfg.events_logfile_max_size = 12345;
    let o = EventsOptions::from_config(&cfg);
    assert_eq!(o.log_path, std::path::PathBuf::from("/somewhere/ev.log"));
    assert_eq!(o.max_size, 12345);
    assert_eq!(o.journal_identifier, "rpod");
}

#[test]
fn output_formats_and_print_events() {
    assert_eq!(OutputFormat::parse("").unwrap(), OutputFormat::Human);
    assert_eq!(OutputFormat::parse("json").unwrap(), OutputFormat::Json);
    assert_eq!(
        OutputFormat::parse("{{ json . }}").unwrap(),
        OutputFormat::Json
    );
    let err = OutputFormat::parse("{{.ID}}").unwrap_err();
    assert!(
        err.to_string().contains("Go templates are not supported"),
        "{err}"
    );
    let err = OutputFormat::parse("yaml").unwrap_err();
    assert!(
        err.to_string().contains("\"yaml\"") && err.to_string().contains("json"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let ev = written(&dir);
    let opts = ReadOptions::from_cli(None, None, &["type=volume"], false).unwrap();
    let mut out = Vec::new();
    print_events(&ev, &opts, OutputFormat::Json, &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "{\"Name\":\"data-vol\",\"Status\":\"create\",\"Time\":\"2023-11-14T22:13:26.123456789Z\",\"Type\":\"volume\",\"Attributes\":null}\n"
    );
    let mut out = Vec::new();
    print_events(&ev, &opts, OutputFormat::Human, &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "2023-11-14 22:13:26.123456789 +0000 UTC volume create data-vol\n"
    );
    let opts =
        ReadOptions::from_cli(None, None, &["container=web", "event=create"], false).unwrap();
    let mut out = Vec::new();
    print_events(&ev, &opts, OutputFormat::Human, &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "2023-11-14 22:13:21.123456789 +0000 UTC container create aaaa1111 (image=busybox, name=web, app=shop, tier=front)\n"
    );
    assert_eq!(
        EventType::known_list().split(", ").count(),
        EventType::KNOWN.len()
    );
}
