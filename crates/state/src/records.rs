//! The records a state stores: versioned serde structs, JSON-compatible with podman's.
//!
//! Field names follow podman 4.3.1's JSON (`lockID`, `createdTime`,
//! `namedVolumes`, `CreateCommand`, …) so a podman record decodes into these
//! types and back without loss: every config and state record carries an
//! `extra` map (`#[serde(flatten)]`) that keeps the fields rpod does not model.
//! Go writes `null` for an empty list or map; these types read `null` as empty.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::Timestamp;

/// The version of the record format, stored in every database with its schema.
pub const RECORD_VERSION: u32 = 1;

fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}
fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}
fn is_false(v: &bool) -> bool {
    !*v
}

/// A container's status, stored as podman's number.
///
/// `0` unknown, `1` configured, `2` created, `3` running, `4` stopped,
/// `5` paused, `6` exited, `7` removing, `8` stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ContainerStatus {
    /// Unknown (0).
    #[default]
    Unknown,
    /// Defined in the state, never created in the OCI runtime (1).
    Configured,
    /// Created in the OCI runtime, not started (2).
    Created,
    /// Running (3).
    Running,
    /// Stopped by the runtime, not yet cleaned up (4).
    Stopped,
    /// Paused (5).
    Paused,
    /// Exited and cleaned up (6).
    Exited,
    /// Being removed (7).
    Removing,
    /// Being stopped (8).
    Stopping,
}

impl ContainerStatus {
    /// Every status, in numeric order.
    pub const ALL: [ContainerStatus; 9] = [
        Self::Unknown,
        Self::Configured,
        Self::Created,
        Self::Running,
        Self::Stopped,
        Self::Paused,
        Self::Exited,
        Self::Removing,
        Self::Stopping,
    ];

    /// Podman's number for this status.
    pub fn number(self) -> u8 {
        match self {
            Self::Unknown => 0,
            Self::Configured => 1,
            Self::Created => 2,
            Self::Running => 3,
            Self::Stopped => 4,
            Self::Paused => 5,
            Self::Exited => 6,
            Self::Removing => 7,
            Self::Stopping => 8,
        }
    }

    /// The status with podman's number `n`.
    pub fn from_number(n: u64) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|s| u64::from(s.number()) == n)
    }

    /// Podman's name (`podman ps` shows configured as `created`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Configured => "configured",
            Self::Created => "created",
            Self::Running => "running",
            Self::Stopped => "stopped",
            Self::Paused => "paused",
            Self::Exited => "exited",
            Self::Removing => "removing",
            Self::Stopping => "stopping",
        }
    }
}

impl Serialize for ContainerStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.number())
    }
}

impl<'de> Deserialize<'de> for ContainerStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u64::deserialize(d)?;
        Self::from_number(n)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown container state number {n}")))
    }
}

/// A JSON value kept as its text until somebody asks for it.
///
/// Decoding checks that the text is well-formed JSON and keeps it in one
/// allocation instead of building a tree: listing ten thousand containers
/// should not build (and free) ten thousand OCI specs that nobody reads.
/// `null` is stored as nothing ([`is_null`](Self::is_null)).
#[derive(Clone, Default)]
pub struct RawJson(Option<Box<RawValue>>);

impl RawJson {
    /// JSON `null`.
    pub fn null() -> Self {
        RawJson(None)
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        self.0.is_none()
    }

    /// The text of a value.
    pub fn from_value(v: &Value) -> Self {
        if v.is_null() {
            return RawJson(None);
        }
        // Serialising a `Value` cannot fail: its map keys are strings.
        RawJson(serde_json::value::to_raw_value(v).ok())
    }

    /// The text of anything serialisable.
    pub fn encode<T: Serialize + ?Sized>(v: &T) -> Result<Self, serde_json::Error> {
        let raw = serde_json::value::to_raw_value(v)?;
        Ok(RawJson((raw.get() != "null").then_some(raw)))
    }

    /// The JSON text (`null` when null).
    pub fn text(&self) -> &str {
        self.0.as_deref().map_or("null", RawValue::get)
    }

    /// The value, parsed (`Value::Null` when null).
    pub fn to_value(&self) -> Value {
        self.parse().unwrap_or(Value::Null)
    }

    /// The value parsed into `T`.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.text())
    }
}

impl From<Value> for RawJson {
    fn from(v: Value) -> Self {
        RawJson::from_value(&v)
    }
}

impl PartialEq for RawJson {
    /// Equal when they hold the same JSON value (whatever the spacing or
    /// key order of the text).
    fn eq(&self, other: &Self) -> bool {
        self.text() == other.text() || self.to_value() == other.to_value()
    }
}

impl std::fmt::Debug for RawJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text())
    }
}

impl Serialize for RawJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Some(raw) => raw.serialize(s),
            None => s.serialize_unit(),
        }
    }
}

impl<'de> Deserialize<'de> for RawJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Option::<Box<RawValue>>::deserialize(d)?;
        Ok(RawJson(raw.filter(|r| r.get() != "null")))
    }
}

/// A named volume mounted into a container (podman's `ContainerNamedVolume`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct NamedVolume {
    /// The volume's name.
    #[serde(rename = "volumeName")]
    pub name: String,
    /// Where it is mounted in the container.
    #[serde(rename = "dest")]
    pub dest: String,
    /// Mount options.
    #[serde(default, deserialize_with = "null_default")]
    pub options: Vec<String>,
}

/// A container's immutable configuration (podman's `ContainerConfig`).
///
/// Only [`crate::ContainerStore::rewrite_container_config`] changes it, and
/// never its id or lock; the name changes only through a rename.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct ContainerConfig {
    /// Full id (64 hex digits in practice; any non-empty string without `/`).
    pub id: String,
    /// Unique name (across containers and pods).
    pub name: String,
    /// The pod the container belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// The namespace the container lives in; empty for none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// The id of its lock in the lock manager.
    #[serde(rename = "lockID", default)]
    pub lock_id: u32,
    /// When it was created.
    #[serde(rename = "createdTime", default)]
    pub created_time: Timestamp,
    /// The root filesystem (`--rootfs`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rootfs: String,
    /// The OCI runtime spec, kept as JSON text (see [`RawJson`]).
    #[serde(default, skip_serializing_if = "RawJson::is_null")]
    pub spec: RawJson,
    /// User labels.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    /// Ids of containers this one depends on.
    #[serde(rename = "Dependencies", default, deserialize_with = "null_default")]
    pub dependencies: Vec<String>,
    /// Named volumes it uses.
    #[serde(
        rename = "namedVolumes",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub named_volumes: Vec<NamedVolume>,
    /// OCI runtime name or path.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub runtime: String,
    /// Persistent per-container directory.
    #[serde(
        rename = "staticDir",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub static_dir: String,
    /// Container log file.
    #[serde(rename = "logPath", default, skip_serializing_if = "String::is_empty")]
    pub log_path: String,
    /// conmon's pid file.
    #[serde(
        rename = "conmonPidFile",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub conmon_pid_file: String,
    /// Signal that stops it.
    #[serde(rename = "stopSignal", default, skip_serializing_if = "is_zero_u32")]
    pub stop_signal: u32,
    /// Seconds to wait after the stop signal.
    #[serde(rename = "stopTimeout", default)]
    pub stop_timeout: u32,
    /// Restart policy (`no`, `on-failure`, `always`, `unless-stopped`); empty for none.
    #[serde(
        rename = "restart_policy",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub restart_policy: String,
    /// Retries for `on-failure`.
    #[serde(rename = "restart_tries", default, skip_serializing_if = "is_zero_u32")]
    pub restart_retries: u32,
    /// Command conmon runs when the container exits.
    #[serde(
        rename = "exitCommand",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub exit_command: Vec<String>,
    /// The command line that created it.
    #[serde(
        rename = "CreateCommand",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub create_command: Vec<String>,
    /// Network mode (`none`, `host`, `bridge`, …).
    #[serde(
        rename = "networkMode",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub network_mode: String,
    /// Host name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    /// Run an init process as PID 1 (`--init`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub init: bool,
    /// Remove the container when it exits (`--rm`). Podman keeps this in a spec
    /// annotation; rpod also records it here.
    #[serde(default, skip_serializing_if = "is_false")]
    pub autoremove: bool,
    /// Whether this is a pod's infra container.
    #[serde(rename = "isInfra", default, skip_serializing_if = "is_false")]
    pub is_infra: bool,
    /// Fields rpod does not model, kept as they were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A container's mutable runtime state (podman's `ContainerState`).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct ContainerState {
    /// The status.
    #[serde(rename = "state", default)]
    pub state: ContainerStatus,
    /// Path of the OCI config written for the runtime.
    #[serde(
        rename = "configPath",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub config_path: String,
    /// Per-boot directory of the container.
    #[serde(rename = "runDir", default, skip_serializing_if = "String::is_empty")]
    pub run_dir: String,
    /// Whether its root filesystem is mounted.
    #[serde(default, skip_serializing_if = "is_false")]
    pub mounted: bool,
    /// Where its root filesystem is mounted.
    #[serde(
        rename = "mountPoint",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub mount_point: String,
    /// When it last started.
    #[serde(rename = "startedTime", default)]
    pub started_time: Timestamp,
    /// When it last finished.
    #[serde(rename = "finishedTime", default)]
    pub finished_time: Timestamp,
    /// Exit code of the last run.
    #[serde(rename = "exitCode", default, skip_serializing_if = "is_zero_i32")]
    pub exit_code: i32,
    /// Whether the last run has exited.
    #[serde(default, skip_serializing_if = "is_false")]
    pub exited: bool,
    /// Whether the last run was OOM-killed.
    #[serde(rename = "oomKilled", default, skip_serializing_if = "is_false")]
    pub oom_killed: bool,
    /// PID of the container's init process.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub pid: i32,
    /// PID of conmon.
    #[serde(rename = "conmonPid", default, skip_serializing_if = "is_zero_i32")]
    pub conmon_pid: i32,
    /// Network namespace path. (Podman keeps it in a separate `netns` key.)
    #[serde(rename = "netNS", default, skip_serializing_if = "String::is_empty")]
    pub net_ns: String,
    /// Times restarted by its restart policy.
    #[serde(rename = "restartCount", default, skip_serializing_if = "is_zero_u32")]
    pub restart_count: u32,
    /// Whether the user stopped it (disables restart policy).
    #[serde(rename = "stoppedByUser", default, skip_serializing_if = "is_false")]
    pub stopped_by_user: bool,
    /// Whether the restart policy matched on the last exit.
    #[serde(
        rename = "restartPolicyMatch",
        default,
        skip_serializing_if = "is_false"
    )]
    pub restart_policy_match: bool,
    /// Exec sessions by id (opaque records).
    #[serde(
        rename = "newExecSessions",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub exec_sessions: BTreeMap<String, Value>,
    /// Bind mounts made for it (container path → host path).
    #[serde(
        rename = "bindMounts",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub bind_mounts: BTreeMap<String, String>,
    /// Network status from the network backend (opaque).
    #[serde(
        rename = "networkStatus",
        default,
        skip_serializing_if = "Value::is_null"
    )]
    pub network_status: Value,
    /// Fields rpod does not model, kept as they were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ContainerState {
    /// The state of a freshly defined container: configured, nothing running.
    pub fn configured() -> Self {
        ContainerState {
            state: ContainerStatus::Configured,
            ..Default::default()
        }
    }

    /// Resets the runtime fields after a reboot, as podman's `resetState`:
    /// anything not exited becomes configured; PIDs, mounts, exec sessions,
    /// bind mounts, network status and netns, restart bookkeeping and
    /// checkpoint times are cleared. Times, exit code and paths are kept.
    pub fn reset_after_reboot(&mut self) {
        if self.state != ContainerStatus::Exited {
            self.state = ContainerStatus::Configured;
        }
        self.pid = 0;
        self.conmon_pid = 0;
        self.mounted = false;
        self.mount_point.clear();
        self.net_ns.clear();
        self.exec_sessions.clear();
        self.bind_mounts.clear();
        self.network_status = Value::Null;
        self.stopped_by_user = false;
        self.restart_policy_match = false;
        self.restart_count = 0;
        for k in [
            "execSessions",
            "checkpointed",
            "restored",
            "checkpointPath",
            "checkpointLog",
            "restoreLog",
            "startupHCPassed",
            "startupHCSuccessCount",
            "startupHCFailureCount",
            "extensionStageHooks",
            "netInterfaceDescriptions",
        ] {
            self.extra.remove(k);
        }
        for k in ["checkpointedTime", "restoredTime"] {
            if let Some(v) = self.extra.get_mut(k) {
                *v = Value::String(Timestamp::ZERO.to_string());
            }
        }
    }
}

/// A container as stored: its config and its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// The configuration.
    pub config: ContainerConfig,
    /// The state.
    pub state: ContainerState,
}

/// A pod's configuration (podman's `PodConfig`).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct PodConfig {
    /// Full id.
    pub id: String,
    /// Unique name (across containers and pods).
    pub name: String,
    /// Namespace; empty for none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// User labels.
    #[serde(default, deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
    /// Parent cgroup of the pod.
    #[serde(
        rename = "cgroupParent",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub cgroup_parent: String,
    /// When it was created.
    #[serde(rename = "created", default)]
    pub created_time: Timestamp,
    /// The command line that created it.
    #[serde(
        rename = "CreateCommand",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub create_command: Vec<String>,
    /// Lock id.
    #[serde(rename = "lockID", default)]
    pub lock_id: u32,
    /// Fields rpod does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A pod's mutable state (podman's `podState`).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct PodState {
    /// The pod's cgroup path; cleared by a refresh.
    #[serde(rename = "cgroupPath", default)]
    pub cgroup_path: String,
    /// The infra container's id, if any.
    #[serde(rename = "InfraContainerID", default)]
    pub infra_container_id: String,
    /// Fields rpod does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A pod as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodRecord {
    /// The configuration.
    pub config: PodConfig,
    /// The state.
    pub state: PodState,
}

/// A volume's configuration (podman's `VolumeConfig`).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct VolumeConfig {
    /// Unique name among volumes.
    pub name: String,
    /// User labels.
    #[serde(default, deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
    /// Driver options.
    #[serde(
        rename = "volumeOptions",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub options: BTreeMap<String, String>,
    /// Driver (`local`).
    #[serde(rename = "volumeDriver", default)]
    pub driver: String,
    /// Where its data is.
    #[serde(rename = "mountPoint", default)]
    pub mount_point: String,
    /// When it was created.
    #[serde(rename = "createdAt", default)]
    pub created_time: Timestamp,
    /// Lock id.
    #[serde(rename = "lockID", default)]
    pub lock_id: u32,
    /// Namespace; empty for none. (Podman volumes have none.)
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Created implicitly for a container (`-v /path` without a name).
    #[serde(rename = "isAnon", default)]
    pub anonymous: bool,
    /// Fields rpod does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A volume's mutable state (podman's `VolumeState`).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct VolumeState {
    /// How many containers have it mounted; cleared by a refresh.
    #[serde(rename = "mountCount", default, skip_serializing_if = "is_zero_u32")]
    pub mount_count: u32,
    /// Fields rpod does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A volume as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeRecord {
    /// The configuration.
    pub config: VolumeConfig,
    /// The state.
    pub state: VolumeState,
}

/// The exit code of a finished container and when it was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitCode {
    /// The exit code.
    #[serde(rename = "exitCode")]
    pub code: i32,
    /// When it was recorded.
    #[serde(rename = "timestamp")]
    pub time: Timestamp,
}

/// The paths and driver a database was created with (podman's `DBConfig`,
/// stored in its `runtime-config` bucket). Compared on every start: running
/// rpod with different paths against one database is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DbConfig {
    /// `static_dir` (podman's `static-dir`).
    #[serde(rename = "static-dir")]
    pub static_dir: String,
    /// `tmp_dir` (`tmp-dir`).
    #[serde(rename = "tmp-dir")]
    pub tmp_dir: String,
    /// Storage root (`graph-root`).
    #[serde(rename = "graph-root")]
    pub graph_root: String,
    /// Run root (`run-root`).
    #[serde(rename = "run-root")]
    pub run_root: String,
    /// Graph driver (`graph-driver-name`).
    #[serde(rename = "graph-driver-name")]
    pub graph_driver: String,
    /// Volume path (`volume-path`).
    #[serde(rename = "volume-path")]
    pub volume_path: String,
}

impl DbConfig {
    /// The values of a runtime configuration.
    pub fn from_config(cfg: &rpod_config::RuntimeConfig) -> Self {
        let s = |p: &std::path::Path| p.to_string_lossy().into_owned();
        DbConfig {
            static_dir: s(&cfg.static_dir),
            tmp_dir: s(&cfg.tmp_dir),
            graph_root: s(&cfg.root),
            run_root: s(&cfg.runroot),
            graph_driver: cfg.graph_driver.clone(),
            volume_path: s(&cfg.volume_path),
        }
    }

    /// `(key, value)` pairs with podman's key names, in a fixed order.
    pub fn entries(&self) -> [(&'static str, &str); 6] {
        [
            ("static-dir", &self.static_dir),
            ("tmp-dir", &self.tmp_dir),
            ("graph-root", &self.graph_root),
            ("run-root", &self.run_root),
            ("graph-driver-name", &self.graph_driver),
            ("volume-path", &self.volume_path),
        ]
    }

    /// The first key whose value differs from `current`'s, as
    /// `(key, stored, current)`. An empty stored value matches anything
    /// (podman: an empty value falls back to the default).
    pub fn mismatch(&self, current: &DbConfig) -> Option<(&'static str, String, String)> {
        self.entries()
            .into_iter()
            .zip(current.entries())
            .find(|((_, db), (_, cur))| !db.is_empty() && db != cur)
            .map(|((k, db), (_, cur))| (k, db.to_string(), cur.to_string()))
    }
}

/// A map key, borrowed from the input when possible.
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// `Deserialize` for a record with an `extra` map: known fields are read
/// directly into their types (a JSON `null` reads as the default, as Go
/// writes `null` for empty lists and maps), every other field lands in
/// `extra`. Equivalent to `#[serde(flatten)]` on `extra`, without its cost
/// (flatten buffers every field before converting it).
macro_rules! deserialize_with_extra {
    ($ty:ident { $($field:ident : $json:literal),* $(,)? }) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(concat!("a ", stringify!($ty), " object"))
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<$ty, A::Error> {
                        let mut out = $ty::default();
                        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                            match &*key {
                                $( $json => out.$field = map.next_value::<Option<_>>()?.unwrap_or_default(), )*
                                _ => {
                                    let v: Value = map.next_value()?;
                                    out.extra.insert(key.into_owned(), v);
                                }
                            }
                        }
                        Ok(out)
                    }
                }
                d.deserialize_map(V)
            }
        }
    };
}

deserialize_with_extra!(ContainerConfig {
    id: "id",
    name: "name",
    pod: "pod",
    namespace: "namespace",
    lock_id: "lockID",
    created_time: "createdTime",
    rootfs: "rootfs",
    spec: "spec",
    labels: "labels",
    dependencies: "Dependencies",
    named_volumes: "namedVolumes",
    runtime: "runtime",
    static_dir: "staticDir",
    log_path: "logPath",
    conmon_pid_file: "conmonPidFile",
    stop_signal: "stopSignal",
    stop_timeout: "stopTimeout",
    restart_policy: "restart_policy",
    restart_retries: "restart_tries",
    exit_command: "exitCommand",
    create_command: "CreateCommand",
    network_mode: "networkMode",
    hostname: "hostname",
    init: "init",
    autoremove: "autoremove",
    is_infra: "isInfra"
});
deserialize_with_extra!(ContainerState {
    state: "state",
    config_path: "configPath",
    run_dir: "runDir",
    mounted: "mounted",
    mount_point: "mountPoint",
    started_time: "startedTime",
    finished_time: "finishedTime",
    exit_code: "exitCode",
    exited: "exited",
    oom_killed: "oomKilled",
    pid: "pid",
    conmon_pid: "conmonPid",
    net_ns: "netNS",
    restart_count: "restartCount",
    stopped_by_user: "stoppedByUser",
    restart_policy_match: "restartPolicyMatch",
    exec_sessions: "newExecSessions",
    bind_mounts: "bindMounts",
    network_status: "networkStatus"
});
deserialize_with_extra!(PodConfig {
    id: "id",
    name: "name",
    namespace: "namespace",
    labels: "labels",
    cgroup_parent: "cgroupParent",
    created_time: "created",
    create_command: "CreateCommand",
    lock_id: "lockID"
});
deserialize_with_extra!(PodState {
    cgroup_path: "cgroupPath",
    infra_container_id: "InfraContainerID"
});
deserialize_with_extra!(VolumeConfig {
    name: "name",
    labels: "labels",
    options: "volumeOptions",
    driver: "volumeDriver",
    mount_point: "mountPoint",
    created_time: "createdAt",
    lock_id: "lockID",
    namespace: "namespace",
    anonymous: "isAnon"
});
deserialize_with_extra!(VolumeState {
    mount_count: "mountCount"
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podman_state_numbers() {
        assert_eq!(
            serde_json::to_string(&ContainerStatus::Exited).unwrap(),
            "6"
        );
        assert_eq!(
            serde_json::from_str::<ContainerStatus>("3").unwrap(),
            ContainerStatus::Running
        );
        assert!(serde_json::from_str::<ContainerStatus>("42").is_err());
    }

    #[test]
    fn raw_json_keeps_text_and_compares_by_value() {
        let c: ContainerConfig =
            serde_json::from_str(r#"{"id":"a","name":"n","spec":{"b": 1, "a": [true, null]}}"#)
                .unwrap();
        assert_eq!(c.spec.text(), r#"{"b": 1, "a": [true, null]}"#);
        assert_eq!(c.spec.to_value()["a"][0], true);
        assert_eq!(
            c.spec,
            RawJson::from_value(&serde_json::json!({"a": [true, null], "b": 1}))
        );
        assert_ne!(
            c.spec,
            RawJson::from_value(&serde_json::json!({"a": [], "b": 1}))
        );
        // null is nothing, and is not written back
        let n: ContainerConfig =
            serde_json::from_str(r#"{"id":"a","name":"n","spec":null}"#).unwrap();
        assert!(n.spec.is_null() && n.spec == RawJson::null());
        assert!(!serde_json::to_string(&n).unwrap().contains("spec"));
        assert!(RawJson::encode(&()).unwrap().is_null());
        // garbage is refused, not kept
        assert!(serde_json::from_str::<ContainerConfig>(r#"{"id":"a","spec":{"x":}}"#).is_err());
        let back: ContainerConfig =
            serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back.spec.text(), c.spec.text());
    }

    #[test]
    fn go_nulls_read_as_empty_and_extra_survives() {
        let j = r#"{"id":"a","name":"n","lockID":3,"Dependencies":null,"labels":null,
                    "createdTime":"2026-12-04T19:58:24.081381928Z","shmSize":65536000,
                    "idMappingsOptions":{"HostUIDMapping":true}}"#;
        let c: ContainerConfig = serde_json::from_str(j).unwrap();
        assert!(c.dependencies.is_empty() && c.labels.is_empty());
        assert_eq!(c.lock_id, 3);
        assert_eq!(c.extra["shmSize"], 65536000);
        let back: Value = serde_json::to_value(&c).unwrap();
        assert_eq!(back["idMappingsOptions"]["HostUIDMapping"], true);
        assert_eq!(back["createdTime"], "2026-12-04T19:58:24.081381928Z");
    }
}
