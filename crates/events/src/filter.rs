//! `--filter key=value` for events, with podman's semantics.

use std::collections::BTreeMap;
use std::fmt;

use crate::{Event, EventType, EventsError, Status};

/// A filter key. `event` and `status` are one key (aliases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum FilterKey {
    /// `type=container|image|network|pod|system|volume|machine`.
    Type,
    /// `event=STATUS` or `status=STATUS`.
    Event,
    /// `container=NAME|ID-PREFIX`: container events of that container.
    Container,
    /// `pod=NAME|ID-PREFIX`: pod events of that pod, and container events of its containers.
    Pod,
    /// `volume=NAME-PREFIX`: volume events.
    Volume,
    /// `label=KEY` or `label=KEY=VALUE`: events whose attributes have the label.
    Label,
    /// `image=NAME|ID-PREFIX`: image events of that image, and events of containers using it.
    Image,
    /// `network=NAME|ID-PREFIX`: network events of that network.
    Network,
}

/// The filter keys accepted, for error messages.
pub const FILTER_KEYS: &str =
    "type, event (or status), container, pod, volume, label, image, network";

impl FilterKey {
    /// Parses a key, case-insensitively as podman does.
    pub fn parse(key: &str) -> Option<Self> {
        Some(match key.to_ascii_lowercase().as_str() {
            "type" => FilterKey::Type,
            "event" | "status" => FilterKey::Event,
            "container" => FilterKey::Container,
            "pod" => FilterKey::Pod,
            "volume" => FilterKey::Volume,
            "label" => FilterKey::Label,
            "image" => FilterKey::Image,
            "network" => FilterKey::Network,
            _ => return None,
        })
    }

    /// The canonical key name.
    pub fn as_str(self) -> &'static str {
        match self {
            FilterKey::Type => "type",
            FilterKey::Event => "event",
            FilterKey::Container => "container",
            FilterKey::Pod => "pod",
            FilterKey::Volume => "volume",
            FilterKey::Label => "label",
            FilterKey::Image => "image",
            FilterKey::Network => "network",
        }
    }
}

impl fmt::Display for FilterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of `key=value` filters: an event matches when, for every key given,
/// at least one of that key's values matches (values of one key OR, keys AND),
/// as in podman. The empty filter matches everything.
///
/// ```
/// use rpod_events::{Event, EventFilter, Status};
/// let f = EventFilter::parse(&["event=start", "event=died", "type=container"]).unwrap();
/// let e = Event::container(Status::Start, "abc123", "web", "busybox");
/// assert!(f.matches(&e));
/// assert!(!f.matches(&Event::container(Status::Create, "abc123", "web", "busybox")));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    clauses: BTreeMap<FilterKey, Vec<String>>,
}

fn id_or_name(e: &Event, v: &str) -> bool {
    e.name == v || (!v.is_empty() && e.id.starts_with(v))
}

impl EventFilter {
    /// No filter: matches every event.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses filters given as `key=value` strings.
    pub fn parse<S: AsRef<str>>(filters: &[S]) -> Result<Self, EventsError> {
        let mut f = EventFilter::new();
        for s in filters {
            f.add(s.as_ref())?;
        }
        Ok(f)
    }

    /// Adds one `key=value` filter.
    pub fn add(&mut self, filter: &str) -> Result<(), EventsError> {
        let bad = |reason: String| EventsError::BadFilter {
            filter: filter.to_string(),
            reason,
        };
        let Some((k, v)) = filter.split_once('=') else {
            return Err(bad(format!(
                "expected KEY=VALUE with KEY one of: {FILTER_KEYS}"
            )));
        };
        let key = FilterKey::parse(k.trim()).ok_or_else(|| {
            bad(format!(
                "unknown filter key {k:?}; expected one of: {FILTER_KEYS} (use --since/--until for times)"
            ))
        })?;
        if v.is_empty() {
            return Err(bad(format!("empty value for filter key {key}")));
        }
        match key {
            FilterKey::Type if EventType::known(v).is_none() => {
                return Err(bad(format!(
                    "unknown event type {v:?}; expected one of: {}",
                    EventType::known_list()
                )))
            }
            FilterKey::Event if Status::known(v).is_none() => {
                return Err(bad(format!(
                    "unknown event status {v:?}; expected one of: {}",
                    Status::known_list()
                )))
            }
            FilterKey::Label if v.starts_with('=') => {
                return Err(bad("expected label=KEY or label=KEY=VALUE".to_string()))
            }
            _ => {}
        }
        self.clauses.entry(key).or_default().push(v.to_string());
        Ok(())
    }

    /// Whether no filter is set.
    pub fn is_empty(&self) -> bool {
        self.clauses.is_empty()
    }

    /// The values given for `key`.
    pub fn values(&self, key: FilterKey) -> &[String] {
        self.clauses.get(&key).map_or(&[], Vec::as_slice)
    }

    /// Whether `e` passes every key (OR within a key, AND across keys).
    pub fn matches(&self, e: &Event) -> bool {
        self.clauses
            .iter()
            .all(|(key, values)| values.iter().any(|v| Self::one(*key, v, e)))
    }

    fn one(key: FilterKey, v: &str, e: &Event) -> bool {
        match key {
            FilterKey::Type => e.event_type.as_str() == v,
            FilterKey::Event => e.status.as_str() == v,
            FilterKey::Container => e.event_type == EventType::Container && id_or_name(e, v),
            FilterKey::Pod => match e.event_type {
                EventType::Pod => id_or_name(e, v),
                EventType::Container => !e.pod_id.is_empty() && e.pod_id.starts_with(v),
                _ => false,
            },
            FilterKey::Volume => e.event_type == EventType::Volume && e.name.starts_with(v),
            FilterKey::Image => match e.event_type {
                EventType::Image => id_or_name(e, v),
                _ => !e.image.is_empty() && e.image == v,
            },
            FilterKey::Network => {
                e.event_type == EventType::Network && (e.network == v || id_or_name(e, v))
            }
            FilterKey::Label => {
                let attrs = e.attributes();
                match v.split_once('=') {
                    Some((k, val)) => attrs.get(k).is_some_and(|x| x == val),
                    None => attrs.contains_key(v),
                }
            }
        }
    }
}
