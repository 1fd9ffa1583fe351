//! Timestamps in podman's JSON format.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// A point in time, serialized exactly as Go's `time.Time` marshals to JSON
/// (RFC 3339 with up to nine fractional digits, trailing zeros trimmed, `Z` for
/// UTC), which is what podman writes in its records.
///
/// The Go zero time (`0001-01-01T00:00:00Z`, [`Timestamp::ZERO`]) means "never".
///
/// ```
/// use rpod_state::Timestamp;
/// let t: Timestamp = serde_json::from_str("\"2026-12-04T19:58:24.0813819Z\"").unwrap();
/// assert_eq!(serde_json::to_string(&t).unwrap(), "\"2026-12-04T19:58:24.0813819Z\"");
/// assert!(Timestamp::ZERO.is_zero());
/// assert_eq!(Timestamp::ZERO.to_string(), "0001-01-01T00:00:00Z");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    /// Go's zero time: "never".
    pub const ZERO: Timestamp = Timestamp(
        PrimitiveDateTime::new(
            match Date::from_calendar_date(1, Month::January, 1) {
                Ok(d) => d,
                Err(_) => panic!("valid date"),
            },
            Time::MIDNIGHT,
        )
        .assume_utc(),
    );

    /// The current time (UTC).
    pub fn now() -> Self {
        Timestamp(OffsetDateTime::now_utc())
    }

    /// Wraps a `time` value.
    pub fn from_datetime(t: OffsetDateTime) -> Self {
        Timestamp(t)
    }

    /// The `time` value.
    pub fn datetime(self) -> OffsetDateTime {
        self.0
    }

    /// Whether this is Go's zero time.
    pub fn is_zero(&self) -> bool {
        *self == Self::ZERO
    }

    /// Seconds since the Unix epoch (negative before 1970).
    pub fn unix_seconds(self) -> i64 {
        self.0.unix_timestamp()
    }

    /// Parses RFC 3339 (any number of fractional digits, any offset).
    pub fn parse(s: &str) -> Result<Self, String> {
        OffsetDateTime::parse(s, &Rfc3339)
            .map(Timestamp)
            .map_err(|e| format!("invalid RFC 3339 time {s:?}: {e}"))
    }
}

impl Default for Timestamp {
    fn default() -> Self {
        Self::ZERO
    }
}

impl fmt::Display for Timestamp {
    /// Go's `time.RFC3339Nano` layout.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )?;
        let ns = t.nanosecond();
        if ns != 0 {
            let digits = format!("{ns:09}");
            write!(f, ".{}", digits.trim_end_matches('0'))?;
        }
        let off = t.offset();
        if off == UtcOffset::UTC {
            f.write_str("Z")
        } else {
            let secs = off.whole_seconds();
            let sign = if secs < 0 { '-' } else { '+' };
            let a = secs.unsigned_abs();
            write!(f, "{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60)
        }
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 time")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Timestamp, E> {
                if s == "0001-01-01T00:00:00Z" {
                    return Ok(Timestamp::ZERO);
                }
                Timestamp::parse(s).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

impl From<OffsetDateTime> for Timestamp {
    fn from(t: OffsetDateTime) -> Self {
        Timestamp(t)
    }
}

impl std::ops::Sub for Timestamp {
    type Output = time::Duration;
    fn sub(self, rhs: Self) -> time::Duration {
        self.0 - rhs.0
    }
}

impl std::ops::Sub<std::time::Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, rhs: std::time::Duration) -> Timestamp {
        Timestamp(self.0 - rhs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_format_round_trips() {
        for s in [
            "2026-12-04T19:58:24.081381928Z",
            "2026-12-04T19:58:24Z",
            "2026-12-04T19:58:24.5+01:00",
            "0001-01-01T00:00:00Z",
            "2019-07-01T10:00:00.000001-05:30",
        ] {
            let t = Timestamp::parse(s).unwrap();
            assert_eq!(t.to_string(), s);
        }
        assert!(Timestamp::parse("yesterday").is_err());
        assert!(Timestamp::parse("0001-01-01T00:00:00Z").unwrap().is_zero());
    }
}
