//! The event record, with podman's JSON shape and human line.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{EventsError, Timestamp};

macro_rules! string_enum {
    (
        $(#[$m:meta])* $vis:vis enum $name:ident { $( $(#[$vm:meta])* $var:ident = $s:literal ),* $(,)? }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        $vis enum $name {
            $( $(#[$vm])* $var, )*
            /// A value this version of rpod does not know (kept as written).
            Other(String),
        }

        impl $name {
            /// Every known value, in declaration order.
            pub const KNOWN: &'static [$name] = &[$($name::$var),*];

            /// The string podman writes.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$var => $s, )*
                    $name::Other(s) => s,
                }
            }

            /// The known value spelled `s`, if any (no `Other`).
            pub fn known(s: &str) -> Option<Self> {
                match s {
                    $( $s => Some($name::$var), )*
                    _ => None,
                }
            }

            /// The known spellings, comma-separated (for error messages).
            pub fn known_list() -> String {
                [$($s),*].join(", ")
            }
        }

        impl FromStr for $name {
            type Err = std::convert::Infallible;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(Self::known(s).unwrap_or_else(|| $name::Other(s.to_string())))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Ok(s.parse().unwrap_or_else(|e: std::convert::Infallible| match e {}))
            }
        }
    };
}

string_enum! {
    /// What kind of object an event is about (podman's `Type`).
    pub enum EventType {
        /// A container.
        Container = "container",
        /// An image.
        Image = "image",
        /// A network.
        Network = "network",
        /// A pod.
        Pod = "pod",
        /// The engine itself (refresh, renumber, migrate, reset).
        System = "system",
        /// A volume.
        Volume = "volume",
        /// A podman machine (kept for compatibility).
        Machine = "machine",
    }
}

string_enum! {
    /// What happened (podman's `Status`); the spellings are podman's.
    pub enum Status {
        /// Attached to a container.
        Attach = "attach",
        /// Automatic update of a container's image.
        AutoUpdate = "auto-update",
        /// An image was built.
        Build = "build",
        /// A container was checkpointed.
        Checkpoint = "checkpoint",
        /// A container was cleaned up after it stopped.
        Cleanup = "cleanup",
        /// An image was committed from a container.
        Commit = "commit",
        /// A container was connected to a network.
        NetworkConnect = "connect",
        /// Files were copied into or out of a container.
        Copy = "copy",
        /// Created.
        Create = "create",
        /// A container exited (podman's `Exited`; carries the exit code).
        Died = "died",
        /// A container was disconnected from a network.
        NetworkDisconnect = "disconnect",
        /// An exec session started.
        Exec = "exec",
        /// An exec session ended.
        ExecDied = "exec_died",
        /// A container was exported.
        Export = "export",
        /// A health check ran.
        HealthStatus = "health_status",
        /// An image's history was read.
        History = "history",
        /// An image was imported.
        Import = "import",
        /// A container was initialized (created in the OCI runtime).
        Init = "init",
        /// A signal was sent.
        Kill = "kill",
        /// An image was loaded from an archive.
        LoadFromArchive = "loadfromarchive",
        /// The events log was rotated.
        Rotate = "log-rotation",
        /// The engine's state was migrated to a new runtime.
        Migrate = "migrate",
        /// A container's root filesystem was mounted.
        Mount = "mount",
        /// Paused.
        Pause = "pause",
        /// Pruned.
        Prune = "prune",
        /// An image was pulled.
        Pull = "pull",
        /// An image was pushed.
        Push = "push",
        /// The engine refreshed its state after a reboot.
        Refresh = "refresh",
        /// Removed.
        Remove = "remove",
        /// A container was renamed.
        Rename = "rename",
        /// The engine renumbered its locks.
        Renumber = "renumber",
        /// Restarted.
        Restart = "restart",
        /// A container was restored from a checkpoint.
        Restore = "restore",
        /// The engine's storage was reset (`system reset`).
        Reset = "reset",
        /// An image was saved.
        Save = "save",
        /// Started.
        Start = "start",
        /// Stopped.
        Stop = "stop",
        /// A container's state was synchronized with the OCI runtime.
        Sync = "sync",
        /// An image was tagged.
        Tag = "tag",
        /// A container's root filesystem was unmounted.
        Unmount = "unmount",
        /// Unpaused.
        Unpause = "unpause",
        /// An image was untagged.
        Untag = "untag",
    }
}

fn is_empty(s: &str) -> bool {
    s.is_empty()
}

/// podman (4.3) declares `ContainerExitCode int` with `omitempty`: an exit code
/// of 0 is not written.
fn exit_code_omitted(c: &Option<i32>) -> bool {
    matches!(c, None | Some(0))
}

fn ser_time<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_nano())
}

fn de_time<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
    let s = String::deserialize(d)?;
    Timestamp::parse_rfc3339(&s)
        .ok_or_else(|| serde::de::Error::custom(format!("bad time {s:?}, expected RFC 3339")))
}

/// One event, with podman's fields.
///
/// The JSON form ([`Event::to_json`]) is podman's, field for field and in
/// podman's order, e.g.
/// `{"ID":"2a88…","Name":"c1","Status":"create","Time":"2026-12-04T20:17:43.092503396Z","Type":"container","Attributes":{"foo":"bar"}}`;
/// it is both what the `file` backend stores and what `rpod events --format json`
/// prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Event {
    /// The exit code of a `died` event (podman omits it from the JSON when 0;
    /// [`Event::from_json`] restores `Some(0)` for a `died` event without one).
    #[serde(
        rename = "ContainerExitCode",
        default,
        skip_serializing_if = "exit_code_omitted"
    )]
    pub container_exit_code: Option<i32>,
    /// ID of the container, pod, image…
    #[serde(rename = "ID", default, skip_serializing_if = "is_empty")]
    pub id: String,
    /// Image (or rootfs) of a container, where applicable.
    #[serde(rename = "Image", default, skip_serializing_if = "is_empty")]
    pub image: String,
    /// Name of the container, pod, volume…
    #[serde(rename = "Name", default, skip_serializing_if = "is_empty")]
    pub name: String,
    /// Network name of a network event.
    #[serde(rename = "network", default, skip_serializing_if = "is_empty")]
    pub network: String,
    /// What happened.
    #[serde(rename = "Status")]
    pub status: Status,
    /// When, with nanoseconds.
    #[serde(
        rename = "Time",
        serialize_with = "ser_time",
        deserialize_with = "de_time"
    )]
    pub time: Timestamp,
    /// What kind of object.
    #[serde(rename = "Type")]
    pub event_type: EventType,
    /// Health status of a `health_status` event.
    #[serde(rename = "health_status", default, skip_serializing_if = "is_empty")]
    pub health_status: String,
    /// The pod of a container event, if any (podman's `Details.PodID`).
    #[serde(rename = "PodID", default, skip_serializing_if = "is_empty")]
    pub pod_id: String,
    /// Attributes (a container's labels). `None` is written as `null`, as
    /// podman does for system and volume events; container events carry a map.
    #[serde(rename = "Attributes", default)]
    pub attributes: Option<BTreeMap<String, String>>,
}

impl Event {
    /// An event of `event_type`/`status` happening now, with no other field.
    pub fn new(event_type: EventType, status: Status) -> Self {
        Event {
            container_exit_code: None,
            id: String::new(),
            image: String::new(),
            name: String::new(),
            network: String::new(),
            status,
            time: Timestamp::now(),
            event_type,
            health_status: String::new(),
            pod_id: String::new(),
            attributes: None,
        }
    }

    /// A container event (attributes: an empty map, to be filled with labels).
    pub fn container(status: Status, id: &str, name: &str, image: &str) -> Self {
        let mut e = Event::new(EventType::Container, status);
        e.id = id.to_string();
        e.name = name.to_string();
        e.image = image.to_string();
        e.attributes = Some(BTreeMap::new());
        e
    }

    /// A container's `died` event with its exit code.
    pub fn died(id: &str, name: &str, image: &str, exit_code: i32) -> Self {
        let mut e = Event::container(Status::Died, id, name, image);
        e.container_exit_code = Some(exit_code);
        e
    }

    /// A pod event.
    pub fn pod(status: Status, id: &str, name: &str) -> Self {
        let mut e = Event::new(EventType::Pod, status);
        e.id = id.to_string();
        e.name = name.to_string();
        e
    }

    /// A volume event (podman records only the name).
    pub fn volume(status: Status, name: &str) -> Self {
        let mut e = Event::new(EventType::Volume, status);
        e.name = name.to_string();
        e
    }

    /// An image event.
    pub fn image(status: Status, id: &str, name: &str) -> Self {
        let mut e = Event::new(EventType::Image, status);
        e.id = id.to_string();
        e.name = name.to_string();
        e
    }

    /// A system event: `refresh`, `renumber`, `migrate`, `reset`.
    pub fn system(status: Status) -> Self {
        Event::new(EventType::System, status)
    }

    /// Sets the time.
    pub fn at(mut self, time: Timestamp) -> Self {
        self.time = time;
        self
    }

    /// Adds an attribute (a label), creating the map if needed.
    pub fn with_attribute(mut self, key: &str, value: &str) -> Self {
        self.attributes
            .get_or_insert_with(BTreeMap::new)
            .insert(key.to_string(), value.to_string());
        self
    }

    /// Sets the pod of a container event.
    pub fn with_pod_id(mut self, pod_id: &str) -> Self {
        self.pod_id = pod_id.to_string();
        self
    }

    /// The exit code of a `died` event.
    pub fn exit_code(&self) -> Option<i32> {
        self.container_exit_code
    }

    /// The attributes, or an empty map.
    pub fn attributes(&self) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.attributes.as_ref().unwrap_or(&EMPTY)
    }

    /// podman's JSON, one line, no newline.
    pub fn to_json(&self) -> String {
        // Serializing strings, integers and maps of strings cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses one JSON event (podman's or rpod's).
    pub fn from_json(line: &str) -> Result<Event, EventsError> {
        let mut e: Event = serde_json::from_str(line).map_err(|err| EventsError::Corrupt {
            path: Default::default(),
            line: 0,
            reason: err.to_string(),
        })?;
        if e.status == Status::Died && e.event_type == EventType::Container {
            e.container_exit_code.get_or_insert(0);
        }
        Ok(e)
    }

    /// The part of the human line after the time, e.g.
    /// `container create 2a88… (image=, name=c1, foo=bar)`.
    pub fn human_body(&self) -> String {
        self.human_body_opts(false)
    }

    /// [`Event::human_body`], with IDs cut to 12 characters when `truncate`
    /// (podman's `--no-trunc=false`).
    pub fn human_body_opts(&self, truncate: bool) -> String {
        let id = match self.id.char_indices().nth(12) {
            Some((i, _)) if truncate => &self.id[..i],
            _ => self.id.as_str(),
        };
        let mut s = format!("{} {}", self.event_type, self.status);
        match self.event_type {
            EventType::Container | EventType::Pod => {
                s += &format!(" {id} (image={}, name={}", self.image, self.name);
                if !self.pod_id.is_empty() {
                    s += &format!(", pod_id={}", self.pod_id);
                }
                if !self.health_status.is_empty() {
                    s += &format!(", health_status={}", self.health_status);
                }
                for (k, v) in self.attributes() {
                    s += &format!(", {k}={v}");
                }
                s.push(')');
            }
            EventType::Network => {
                s += &format!(" {id} (container={id}, name={})", self.network);
            }
            EventType::Image => s += &format!(" {id} {}", self.name),
            EventType::System if self.name.is_empty() => {}
            _ => s += &format!(" {}", self.name),
        }
        s
    }

    /// podman's default (human) line:
    /// `2024-01-02 15:04:05.123456789 +0000 UTC container start ID (image=…, name=…)`.
    pub fn to_human(&self) -> String {
        format!("{} {}", self.time.to_go_string(), self.human_body())
    }

    /// [`Event::to_human`] with IDs cut to 12 characters when `truncate`.
    pub fn to_human_opts(&self, truncate: bool) -> String {
        format!(
            "{} {}",
            self.time.to_go_string(),
            self.human_body_opts(truncate)
        )
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_human())
    }
}
