//! rpod's event JSON and human lines against lines captured from podman 4.3.1
//! (`podman events --format json` / `podman events`, events_logger = "file").

use rpod_events::{Event, EventType, Status, Timestamp};

/// Captured with podman 4.3.1 (private --root/--runroot/--tmpdir, file events
/// backend): `podman run --label foo=bar --rootfs R …`, `podman rename c3 c4`,
/// `podman volume create v1`, then `podman events --stream=false --format json`.
const PODMAN_JSON: &[&str] = &[
    r#"{"Status":"refresh","Time":"2026-12-04T20:17:43.079147637Z","Type":"system","Attributes":null}"#,
    r#"{"ID":"2a88f6259dc6c3a97d516c719bc4b7e7f6dc8c1f20a8f4117c9304fbef374138","Name":"c1","Status":"create","Time":"2026-12-04T20:17:43.092503396Z","Type":"container","Attributes":{"foo":"bar"}}"#,
    r#"{"ID":"375771b0b985db83babfbc8b23314e08bd8924932545253870d9bb71f38fa152","Name":"c4","Status":"rename","Time":"2026-12-04T20:17:54.588287952Z","Type":"container","Attributes":{}}"#,
    r#"{"Name":"v1","Status":"create","Time":"2026-12-04T20:17:54.686464305Z","Type":"volume","Attributes":null}"#,
];

/// The same events as `podman events --stream=false` printed them.
const PODMAN_HUMAN: &[&str] = &[
    "2026-12-04 20:17:43.079147637 +0000 UTC system refresh",
    "2026-12-04 20:17:43.092503396 +0000 UTC container create 2a88f6259dc6c3a97d516c719bc4b7e7f6dc8c1f20a8f4117c9304fbef374138 (image=, name=c1, foo=bar)",
    "2026-12-04 20:17:54.588287952 +0000 UTC container rename 375771b0b985db83babfbc8b23314e08bd8924932545253870d9bb71f38fa152 (image=, name=c4)",
    "2026-12-04 20:17:54.686464305 +0000 UTC volume create v1",
];

#[test]
fn podman_json_lines_round_trip_byte_for_byte() {
    for line in PODMAN_JSON {
        let e = Event::from_json(line).unwrap();
        assert_eq!(&e.to_json(), line);
    }
    let e = Event::from_json(PODMAN_JSON[1]).unwrap();
    assert_eq!(e.event_type, EventType::Container);
    assert_eq!(e.status, Status::Create);
    assert_eq!(e.name, "c1");
    assert_eq!(e.attributes().get("foo").map(String::as_str), Some("bar"));
    assert_eq!(e.time, Timestamp::from_unix(1_796_415_463, 92_503_396));
}

#[test]
fn podman_human_lines_match() {
    for (json, human) in PODMAN_JSON.iter().zip(PODMAN_HUMAN) {
        assert_eq!(&Event::from_json(json).unwrap().to_human(), human);
    }
}

#[test]
fn rpod_built_events_have_podmans_shape() {
    let t = Timestamp::parse_rfc3339("2026-12-04T20:17:43.092503396Z").unwrap();
    let e = Event::container(
        Status::Create,
        "2a88f6259dc6c3a97d516c719bc4b7e7f6dc8c1f20a8f4117c9304fbef374138",
        "c1",
        "",
    )
    .with_attribute("foo", "bar")
    .at(t);
    assert_eq!(e.to_json(), PODMAN_JSON[1]);
    let sys = Event::system(Status::Refresh)
        .at(Timestamp::parse_rfc3339("2026-12-04T20:17:43.079147637Z").unwrap());
    assert_eq!(sys.to_json(), PODMAN_JSON[0]);
    let vol = Event::volume(Status::Create, "v1")
        .at(Timestamp::parse_rfc3339("2026-12-04T20:17:54.686464305Z").unwrap());
    assert_eq!(vol.to_json(), PODMAN_JSON[3]);
}

#[test]
fn died_event_carries_exit_code_like_podman() {
    // podman 4.3.1's Event: `ContainerExitCode int json:",omitempty"` first,
    // then ID, Image, Name, Status, Time, Type, PodID (omitempty), Attributes.
    let t = Timestamp::from_unix(1_700_000_000, 120_000_000);
    let e = Event::died("abc", "c2", "docker.io/library/busybox:latest", 3)
        .with_pod_id("pod1")
        .at(t);
    let expected = r#"{"ContainerExitCode":3,"ID":"abc","Image":"docker.io/library/busybox:latest","Name":"c2","Status":"died","Time":"2023-11-14T22:13:20.12Z","Type":"container","PodID":"pod1","Attributes":{}}"#;
    assert_eq!(e.to_json(), expected);
    assert_eq!(Event::from_json(expected).unwrap(), e);
    assert_eq!(
        e.to_human(),
        "2023-11-14 22:13:20.12 +0000 UTC container died abc (image=docker.io/library/busybox:latest, name=c2, pod_id=pod1)"
    );
    // Exit code 0 is omitted, as podman's omitempty does, and restored on reading.
    let zero = Event::died("abc", "c2", "img", 0).at(t);
    assert!(
        !zero.to_json().contains("ContainerExitCode"),
        "{}",
        zero.to_json()
    );
    assert_eq!(
        Event::from_json(&zero.to_json()).unwrap().exit_code(),
        Some(0)
    );
}

#[test]
fn unknown_fields_statuses_and_types_are_kept_not_fatal() {
    let line = r#"{"ID":"x","Status":"frobnicate","Time":"2024-01-02T03:04:05+01:00","Type":"gizmo","Attributes":null,"Extra":1}"#;
    let e = Event::from_json(line).unwrap();
    assert_eq!(e.status, Status::Other("frobnicate".into()));
    assert_eq!(e.event_type, EventType::Other("gizmo".into()));
    assert_eq!(e.time.to_rfc3339_nano(), "2024-01-02T02:04:05Z");
    for bad in [
        "",
        "{}",
        "not json",
        r#"{"Status":"start","Type":"container","Time":"yesterday"}"#,
    ] {
        let err = Event::from_json(bad).unwrap_err();
        assert!(err.to_string().contains("corrupt event"), "{err}");
    }
}

#[test]
fn truncated_human_lines_cut_ids_to_12() {
    use rpod_events::OutputFormat;
    let e = Event::from_json(PODMAN_JSON[1]).unwrap();
    let f = OutputFormat::parse("").unwrap().no_trunc(false);
    assert_eq!(f, OutputFormat::HumanTruncated);
    assert_eq!(
        f.line(&e),
        "2026-12-04 20:17:43.092503396 +0000 UTC container create 2a88f6259dc6 (image=, name=c1, foo=bar)"
    );
    assert_eq!(f.no_trunc(true).line(&e), PODMAN_HUMAN[1]);
    assert_eq!(OutputFormat::Json.no_trunc(false), OutputFormat::Json);
}
