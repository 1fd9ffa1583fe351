//! Nanosecond timestamps, formatted and parsed the way podman (Go) does.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::EventsError;

/// A point in time with nanosecond precision, in UTC.
///
/// Serialized in events as Go's RFC 3339 with nanoseconds
/// (`2024-01-02T15:04:05.123456789Z`, trailing zeros of the fraction dropped,
/// as Go's `time.RFC3339Nano` does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    nanos: i128,
}

const NANOS_PER_SEC: i128 = 1_000_000_000;

/// What `--since`/`--until` accept, for error messages.
pub const TIME_EXPECTED: &str =
    "an RFC 3339 timestamp (2006-01-02T15:04:05Z07:00, fraction optional), \
a date-time without zone (2006-01-02T15:04:05, UTC), a date (2006-01-02), \
unix seconds (1700000000 or 1700000000.5), or a duration before now (10m, 1h30m, 300ms)";

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    /// From nanoseconds since the unix epoch.
    pub const fn from_unix_nanos(nanos: i128) -> Self {
        Timestamp { nanos }
    }

    /// From seconds and nanoseconds since the unix epoch.
    pub const fn from_unix(secs: i64, nanos: u32) -> Self {
        Timestamp {
            nanos: secs as i128 * NANOS_PER_SEC + nanos as i128,
        }
    }

    /// Nanoseconds since the unix epoch.
    pub const fn unix_nanos(self) -> i128 {
        self.nanos
    }

    /// Whole seconds since the unix epoch (rounded down).
    pub fn unix_seconds(self) -> i64 {
        self.nanos.div_euclid(NANOS_PER_SEC) as i64
    }

    /// The nanoseconds within the second (0..1e9).
    pub fn subsec_nanos(self) -> u32 {
        self.nanos.rem_euclid(NANOS_PER_SEC) as u32
    }

    /// This time plus a signed number of nanoseconds.
    pub fn add_nanos(self, nanos: i128) -> Self {
        Timestamp {
            nanos: self.nanos.saturating_add(nanos),
        }
    }

    /// This time minus a duration.
    pub fn saturating_sub(self, d: Duration) -> Self {
        self.add_nanos(-(d.as_nanos() as i128))
    }

    fn civil(self) -> (i64, u32, u32, u32, u32, u32, u32) {
        let secs = self.unix_seconds();
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        (
            y,
            m,
            d,
            (sod / 3600) as u32,
            (sod % 3600 / 60) as u32,
            (sod % 60) as u32,
            self.subsec_nanos(),
        )
    }

    /// Go's `time.RFC3339Nano` in UTC: `2024-01-02T15:04:05.123456789Z`, with
    /// trailing zeros of the fraction (and a zero fraction) left out.
    pub fn to_rfc3339_nano(self) -> String {
        let (y, mo, d, h, mi, s, ns) = self.civil();
        format!(
            "{}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{}Z",
            year4(y),
            go_fraction(ns)
        )
    }

    /// Go's `time.Time.String()` in UTC, as podman's human event lines show it:
    /// `2024-01-02 15:04:05.123456789 +0000 UTC`.
    pub fn to_go_string(self) -> String {
        let (y, mo, d, h, mi, s, ns) = self.civil();
        format!(
            "{}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}{} +0000 UTC",
            year4(y),
            go_fraction(ns)
        )
    }

    /// Parses RFC 3339 (any number of fraction digits, `Z` or `±hh:mm`).
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        match parse_datetime(s)? {
            (t, true, true) => Some(t),
            _ => None,
        }
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp {
                nanos: d.as_nanos() as i128,
            },
            Err(e) => Timestamp {
                nanos: -(e.duration().as_nanos() as i128),
            },
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339_nano())
    }
}

fn year4(y: i64) -> String {
    if (0..=9999).contains(&y) {
        format!("{y:04}")
    } else {
        y.to_string()
    }
}

fn go_fraction(ns: u32) -> String {
    if ns == 0 {
        return String::new();
    }
    let s = format!(".{ns:09}");
    s.trim_end_matches('0').to_string()
}

/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Howard Hinnant's `days_from_civil`.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn digits(s: &str, n: usize) -> Option<u32> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
}

/// Parses `YYYY-MM-DD[THH:MM:SS[.frac]][Z|±hh:mm]`. Returns the time and
/// whether it had a time part and a zone.
fn parse_datetime(s: &str) -> Option<(Timestamp, bool, bool)> {
    if s.len() < 10 || !s.is_char_boundary(10) {
        return None;
    }
    let (date, mut rest) = s.split_at(10);
    let y = digits(&date[0..4], 4)? as i64;
    let mo = digits(&date[5..7], 2)?;
    let d = digits(&date[8..10], 2)?;
    if &date[4..5] != "-" || &date[7..8] != "-" || !(1..=12).contains(&mo) {
        return None;
    }
    if d == 0 || d > days_in_month(y, mo) {
        return None;
    }
    let mut secs = days_from_civil(y, mo, d) * 86_400;
    let mut nanos: u32 = 0;
    let mut has_time = false;
    if let Some(t) = rest.strip_prefix('T') {
        if t.len() < 8 || !t.is_char_boundary(8) {
            return None;
        }
        let (hms, r) = t.split_at(8);
        let h = digits(&hms[0..2], 2)?;
        let mi = digits(&hms[3..5], 2)?;
        let sec = digits(&hms[6..8], 2)?;
        if &hms[2..3] != ":" || &hms[5..6] != ":" || h > 23 || mi > 59 || sec > 59 {
            return None;
        }
        secs += i64::from(h * 3600 + mi * 60 + sec);
        rest = r;
        if let Some(r) = rest.strip_prefix('.') {
            let n = r.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 || n > 9 {
                return None;
            }
            let frac = &r[..n];
            nanos = format!("{frac:0<9}").parse().ok()?;
            rest = &r[n..];
        }
        has_time = true;
    }
    let mut has_zone = false;
    if rest == "Z" {
        has_zone = true;
    } else if !rest.is_empty() {
        let b = rest.as_bytes();
        if rest.len() != 6 || !(b[0] == b'+' || b[0] == b'-') || b[3] != b':' {
            return None;
        }
        let oh = digits(&rest[1..3], 2)?;
        let om = digits(&rest[4..6], 2)?;
        if oh > 23 || om > 59 {
            return None;
        }
        let off = i64::from(oh * 3600 + om * 60);
        secs -= if b[0] == b'+' { off } else { -off };
        has_zone = true;
    }
    Some((Timestamp::from_unix(secs, nanos), has_time, has_zone))
}

/// Parses a Go duration (`300ms`, `-1.5h`, `2h45m`, `0`) into signed nanoseconds.
pub fn parse_go_duration(s: &str) -> Option<i128> {
    let (neg, mut rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    let mut exact: i128 = 0;
    let mut all_exact = true;
    while !rest.is_empty() {
        let n = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        let num = &rest[..n];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return None;
        }
        rest = &rest[n..];
        let u = rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(rest.len(), |(i, _)| i);
        let unit: i128 = match &rest[..u] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => NANOS_PER_SEC,
            "m" => 60 * NANOS_PER_SEC,
            "h" => 3600 * NANOS_PER_SEC,
            _ => return None,
        };
        rest = &rest[u..];
        if num.contains('.') {
            all_exact = false;
            total += num.parse::<f64>().ok()? * unit as f64;
        } else {
            let v: i128 = num.parse().ok()?;
            exact = exact.checked_add(v.checked_mul(unit)?)?;
        }
    }
    let nanos = if all_exact {
        exact
    } else {
        exact + total.round() as i128
    };
    Some(if neg { -nanos } else { nanos })
}

/// Parses unix seconds with an optional fraction (`1700000000`, `1700000000.25`).
fn parse_unix(s: &str) -> Option<Timestamp> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) || (body.contains('.') && frac.is_empty()) {
        return None;
    }
    let secs: i128 = int.parse().ok()?;
    let frac9: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
    let nanos: i128 = frac9.parse().ok()?;
    let total = secs.checked_mul(NANOS_PER_SEC)? + nanos;
    Some(Timestamp::from_unix_nanos(if neg { -total } else { total }))
}

/// Parses a `--since`/`--until` value the way podman's `util.ParseInputTime` does:
/// an RFC 3339 timestamp, a zone-less date-time or date (UTC), unix seconds, or
/// a Go duration. A duration means `now - d` for `--since` and `now + d` for
/// `--until` (podman's rule), `now` being `now` here.
pub fn parse_input_time(
    input: &str,
    since: bool,
    now: Timestamp,
) -> Result<Timestamp, EventsError> {
    let flag = if since { "--since" } else { "--until" };
    let s = input.trim();
    if let Some((t, _, _)) = parse_datetime(s) {
        return Ok(t);
    }
    if let Some(t) = parse_unix(s) {
        return Ok(t);
    }
    if let Some(d) = parse_go_duration(s) {
        return Ok(if since {
            now.add_nanos(-d)
        } else {
            now.add_nanos(d)
        });
    }
    Err(EventsError::BadTime {
        flag: flag.to_string(),
        input: input.to_string(),
        expected: TIME_EXPECTED,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for days in [-800_000i64, -1, 0, 1, 11_016, 19_000, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn go_formats() {
        let t = Timestamp::parse_rfc3339("2026-12-04T20:17:43.079147637Z").unwrap();
        assert_eq!(t.to_rfc3339_nano(), "2026-12-04T20:17:43.079147637Z");
        assert_eq!(t.to_go_string(), "2026-12-04 20:17:43.079147637 +0000 UTC");
        let t = Timestamp::parse_rfc3339("2024-02-29T00:00:01.500+01:00").unwrap();
        assert_eq!(t.to_rfc3339_nano(), "2024-02-28T23:00:01.5Z");
        let t = Timestamp::from_unix(0, 0);
        assert_eq!(t.to_rfc3339_nano(), "1970-01-01T00:00:00Z");
        assert_eq!(t.to_go_string(), "1970-01-01 00:00:00 +0000 UTC");
    }

    #[test]
    fn rfc3339_rejects_garbage() {
        for bad in [
            "",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00.1234567891Z",
            "2024-01-01T00:00:00+0100",
            "2024-01-01 00:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00Zjunk",
            "2024-01-éé",
        ] {
            assert!(Timestamp::parse_rfc3339(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_go_duration("10m"), Some(600 * NANOS_PER_SEC));
        assert_eq!(parse_go_duration("1h30m"), Some(5400 * NANOS_PER_SEC));
        assert_eq!(parse_go_duration("300ms"), Some(300_000_000));
        assert_eq!(parse_go_duration("-1.5h"), Some(-5400 * NANOS_PER_SEC));
        assert_eq!(parse_go_duration("2µs"), Some(2_000));
        assert_eq!(parse_go_duration("0"), Some(0));
        for bad in ["", "m", "10", "10x", "1..5s", "h1", "-", "10 m"] {
            assert_eq!(parse_go_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn input_times() {
        let now = Timestamp::from_unix(1_700_000_000, 0);
        let p = |s: &str, since| parse_input_time(s, since, now).unwrap();
        assert_eq!(p("10m", true), Timestamp::from_unix(1_700_000_000 - 600, 0));
        assert_eq!(
            p("10m", false),
            Timestamp::from_unix(1_700_000_000 + 600, 0)
        );
        assert_eq!(
            p("1h30m", true),
            Timestamp::from_unix(1_700_000_000 - 5400, 0)
        );
        assert_eq!(
            p("1600000000", true),
            Timestamp::from_unix(1_600_000_000, 0)
        );
        assert_eq!(
            p("1600000000.25", true),
            Timestamp::from_unix(1_600_000_000, 250_000_000)
        );
        assert_eq!(
            p("2020-09-13T12:26:40Z", true),
            Timestamp::from_unix(1_600_000_000, 0)
        );
        assert_eq!(
            p("2020-09-13T14:26:40.5+02:00", true),
            Timestamp::from_unix(1_600_000_000, 500_000_000)
        );
        assert_eq!(
            p("2020-09-13T12:26:40", true),
            Timestamp::from_unix(1_600_000_000, 0)
        );
        assert_eq!(
            p("2020-09-13", true),
            Timestamp::from_unix(1_599_955_200, 0)
        );
        assert_eq!(
            p("2020-09-13Z", true),
            Timestamp::from_unix(1_599_955_200, 0)
        );
        let err = parse_input_time("yesterday", true, now).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("--since") && msg.contains("\"yesterday\"") && msg.contains("RFC 3339"),
            "{msg}"
        );
        let err = parse_input_time("5 minutes", false, now).unwrap_err();
        assert!(err.to_string().contains("--until"), "{err}");
    }
}
