//! podman-shaped views of containers: `ps` entries and `inspect` documents.

use std::collections::BTreeMap;

use rpod_state::{ContainerRecord, ContainerStatus, Timestamp};
use serde::Serialize;
use serde_json::{json, Value};

/// One line of `rpod ps --format json`, with podman's field names.
#[derive(Debug, Clone, Serialize)]
#[allow(non_snake_case)]
pub struct PsEntry {
    pub AutoRemove: bool,
    pub Command: Vec<String>,
    pub CreatedAt: String,
    pub Exited: bool,
    pub ExitedAt: i64,
    pub ExitCode: i32,
    pub Id: String,
    pub Image: String,
    pub ImageID: String,
    pub IsInfra: bool,
    pub Labels: BTreeMap<String, String>,
    pub Mounts: Vec<String>,
    pub Names: Vec<String>,
    pub Namespaces: BTreeMap<String, String>,
    pub Networks: Vec<String>,
    pub Pid: i32,
    pub Pod: String,
    pub PodName: String,
    pub Ports: Option<Vec<Value>>,
    pub Size: Option<Value>,
    pub StartedAt: i64,
    pub State: String,
    pub Status: String,
    pub Created: i64,
}

fn rfc3339(t: Timestamp) -> String {
    t.datetime()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Human duration as podman/docker print it ("2 seconds", "About a minute").
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        _ if s < 3600 => format!("{} minutes", s / 60),
        _ if s < 7200 => "About an hour".into(),
        _ if s < 48 * 3600 => format!("{} hours", s / 3600),
        _ if s < 14 * 86400 => format!("{} days", s / 86400),
        _ if s < 60 * 86400 => format!("{} weeks", s / (7 * 86400)),
        _ if s < 730 * 86400 => format!("{} months", s / (30 * 86400)),
        _ => format!("{} years", s / (365 * 86400)),
    }
}

/// podman's `Status` column: "Up 3 seconds", "Exited (0) 2 minutes ago", "Created".
pub fn status_text(rec: &ContainerRecord) -> String {
    let now = Timestamp::now().unix_seconds();
    let s = &rec.state;
    match s.state {
        ContainerStatus::Running => {
            format!("Up {}", human_duration(now - s.started_time.unix_seconds()))
        }
        ContainerStatus::Paused => format!(
            "Up {} (Paused)",
            human_duration(now - s.started_time.unix_seconds())
        ),
        ContainerStatus::Exited | ContainerStatus::Stopped => format!(
            "Exited ({}) {} ago",
            s.exit_code,
            human_duration(now - s.finished_time.unix_seconds())
        ),
        ContainerStatus::Configured if s.exited => format!(
            "Exited ({}) {} ago",
            s.exit_code,
            human_duration(now - s.finished_time.unix_seconds())
        ),
        ContainerStatus::Configured | ContainerStatus::Created => "Created".into(),
        ContainerStatus::Stopping => "Stopping".into(),
        ContainerStatus::Removing => "Removing".into(),
        _ => "Unknown".into(),
    }
}

/// podman's lower-case state name as `ps` shows it.
pub fn state_name(rec: &ContainerRecord) -> &'static str {
    match rec.state.state {
        ContainerStatus::Configured => "created",
        ContainerStatus::Stopped => "exited",
        other => other.as_str(),
    }
}

fn command_of(rec: &ContainerRecord) -> Vec<String> {
    crate::Runtime::container_command(rec)
}

/// The `ps` entry of a container.
pub fn ps_entry(rec: &ContainerRecord) -> PsEntry {
    let s = &rec.state;
    let zero_or = |t: Timestamp| if t.is_zero() { 0 } else { t.unix_seconds() };
    PsEntry {
        AutoRemove: rec.config.autoremove,
        Command: command_of(rec),
        CreatedAt: human_duration(
            Timestamp::now().unix_seconds() - rec.config.created_time.unix_seconds(),
        ) + " ago",
        Exited: s.exited || matches!(s.state, ContainerStatus::Exited | ContainerStatus::Stopped),
        ExitedAt: zero_or(s.finished_time),
        ExitCode: s.exit_code,
        Id: rec.config.id.clone(),
        Image: rec.config.rootfs.clone(),
        ImageID: String::new(),
        IsInfra: rec.config.is_infra,
        Labels: rec.config.labels.clone(),
        Mounts: rec.config.spec.to_value()["mounts"]
            .as_array()
            .map(|m| {
                m.iter()
                    .filter(|x| {
                        x["type"] == "bind"
                            && !x["source"]
                                .as_str()
                                .unwrap_or("")
                                .starts_with(&rec.state.run_dir)
                    })
                    .filter_map(|x| x["destination"].as_str().map(String::from))
                    .filter(|d| {
                        !matches!(
                            d.as_str(),
                            "/etc/hosts"
                                | "/etc/hostname"
                                | "/etc/resolv.conf"
                                | "/run/.containerenv"
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        Names: vec![rec.config.name.clone()],
        Namespaces: BTreeMap::new(),
        Networks: Vec::new(),
        Pid: s.pid,
        Pod: rec.config.pod.clone().unwrap_or_default(),
        PodName: String::new(),
        Ports: None,
        Size: None,
        StartedAt: zero_or(s.started_time),
        State: state_name(rec).to_string(),
        Status: status_text(rec),
        Created: rec.config.created_time.unix_seconds(),
    }
}

/// The `inspect` document of a container, in podman's shape for the fields
/// rpod has.
pub fn inspect(rec: &ContainerRecord) -> Value {
    let c = &rec.config;
    let s = &rec.state;
    let spec = &c.spec.to_value();
    let args = command_of(rec);
    let run_dir = if s.run_dir.is_empty() {
        String::new()
    } else {
        s.run_dir.clone()
    };
    let in_run = |f: &str| {
        if run_dir.is_empty() {
            String::new()
        } else {
            format!("{run_dir}/{f}")
        }
    };
    let mounts: Vec<Value> = spec["mounts"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter(|x| x["type"] == "bind")
                .filter(|x| {
                    !matches!(
                        x["destination"].as_str().unwrap_or(""),
                        "/etc/hosts" | "/etc/hostname" | "/etc/resolv.conf" | "/run/.containerenv"
                    )
                })
                .map(|x| {
                    let opts: Vec<&str> = x["options"]
                        .as_array()
                        .map(|o| o.iter().filter_map(|v| v.as_str()).collect())
                        .unwrap_or_default();
                    json!({
                        "Type": "bind",
                        "Source": x["source"],
                        "Destination": x["destination"],
                        "Driver": "",
                        "Mode": "",
                        "Options": opts.iter().filter(|o| !matches!(**o, "ro" | "rw")).collect::<Vec<_>>(),
                        "RW": !opts.contains(&"ro"),
                        "Propagation": opts.iter().find(|o| o.ends_with("private") || o.ends_with("shared") || o.ends_with("slave")).copied().unwrap_or(""),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let caps = spec["process"]["capabilities"]["effective"].clone();
    let restart_name = c.restart_policy.clone();
    json!({
        "Id": c.id,
        "Created": rfc3339(c.created_time),
        "Path": args.first().cloned().unwrap_or_default(),
        "Args": args.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "OciVersion": spec["ociVersion"],
            "Status": state_name(rec),
            "Running": s.state == ContainerStatus::Running,
            "Paused": s.state == ContainerStatus::Paused,
            "Restarting": false,
            "OOMKilled": s.oom_killed,
            "Dead": false,
            "Pid": s.pid,
            "ConmonPid": s.conmon_pid,
            "ExitCode": s.exit_code,
            "Error": "",
            "StartedAt": rfc3339(s.started_time),
            "FinishedAt": rfc3339(s.finished_time),
            "CheckpointedAt": "0001-01-01T00:00:00Z",
            "RestoredAt": "0001-01-01T00:00:00Z",
        },
        "Image": "",
        "ImageName": "",
        "Rootfs": c.rootfs,
        "Pod": c.pod.clone().unwrap_or_default(),
        "ResolvConfPath": if c.network_mode == "none" { String::new() } else { in_run("resolv.conf") },
        "HostnamePath": in_run("hostname"),
        "HostsPath": in_run("hosts"),
        "StaticDir": c.static_dir,
        "OCIConfigPath": s.config_path,
        "OCIRuntime": c.runtime,
        "ConmonPidFile": c.conmon_pid_file,
        "PidFile": in_run("pidfile"),
        "Name": c.name,
        "RestartCount": s.restart_count,
        "Driver": "",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "EffectiveCaps": caps,
        "BoundingCaps": spec["process"]["capabilities"]["bounding"],
        "ExecIDs": s.exec_sessions.keys().collect::<Vec<_>>(),
        "Mounts": mounts,
        "Dependencies": c.dependencies,
        "NetworkSettings": {
            "SandboxKey": s.net_ns,
            "Ports": {},
        },
        "Namespace": c.namespace,
        "IsInfra": c.is_infra,
        "Config": {
            "Hostname": c.hostname,
            "Domainname": "",
            "User": spec["process"]["user"]["uid"].as_u64().map(|u| {
                let g = spec["process"]["user"]["gid"].as_u64().unwrap_or(0);
                if u == 0 && g == 0 { String::new() } else { format!("{u}:{g}") }
            }).unwrap_or_default(),
            "AttachStdin": false,
            "AttachStdout": false,
            "AttachStderr": false,
            "Tty": spec["process"]["terminal"].as_bool().unwrap_or(false),
            "OpenStdin": false,
            "StdinOnce": false,
            "Env": spec["process"]["env"],
            "Cmd": args,
            "Image": "",
            "Volumes": null,
            "WorkingDir": spec["process"]["cwd"],
            "Entrypoint": "",
            "OnBuild": null,
            "Labels": c.labels,
            "Annotations": spec["annotations"],
            "StopSignal": c.stop_signal,
            "StopTimeout": c.stop_timeout,
            "CreateCommand": c.create_command,
            "Umask": "0022",
        },
        "HostConfig": {
            "Binds": [],
            "CgroupManager": "cgroupfs",
            "CgroupParent": spec["linux"]["cgroupsPath"],
            "NetworkMode": c.network_mode,
            "RestartPolicy": {
                "Name": restart_name,
                "MaximumRetryCount": c.restart_retries,
            },
            "AutoRemove": c.autoremove,
            "CapAdd": [],
            "CapDrop": [],
            "Privileged": c.extra.get("rpodCreate").and_then(|o| o.get("privileged")).and_then(Value::as_bool).unwrap_or(false),
            "ReadonlyRootfs": spec["root"]["readonly"].as_bool().unwrap_or(false),
            "Init": c.init,
            "Runtime": "oci",
        },
    })
}
