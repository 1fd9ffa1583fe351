//! Container commands: create, start, run, stop, kill, wait, rm, ps, inspect,
//! logs, container cleanup. Flags and output follow podman.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use rpod_runtime::inspect;
use rpod_runtime::{CreateOptions, Runtime};

use crate::global::GlobalOpts;
use crate::{output, ExitStatus};

/// Flags shared by `create` and `run`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// The first argument is not an image but the rootfs of the container
    #[arg(long)]
    pub rootfs: bool,
    /// Set environment variables
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID[:GID] to run as
    #[arg(short, long)]
    pub user: Option<String>,
    /// Container host name
    #[arg(long)]
    pub hostname: Option<String>,
    /// Set metadata on the container
    #[arg(short, long = "label", value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Add an annotation to the container
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotation: Vec<String>,
    /// Bind mount a volume: /host:/ctr[:ro]
    #[arg(short, long = "volume", value_name = "SRC:DST[:OPTS]")]
    pub volume: Vec<String>,
    /// Add capabilities
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop capabilities
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to the container
    #[arg(long)]
    pub privileged: bool,
    /// Make the root filesystem read-only
    #[arg(long)]
    pub read_only: bool,
    /// Security options: seccomp=unconfined|PATH, no-new-privileges
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Network mode: none or host
    #[arg(long, alias = "net", default_value = "none")]
    pub network: String,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Keep STDIN open
    #[arg(short, long)]
    pub interactive: bool,
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// OCI runtime for this container: a configured name or a path
    #[arg(long = "runtime")]
    pub runtime: Option<String>,
    /// Signal to stop the container
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Seconds to wait before forcibly stopping the container
    #[arg(long)]
    pub stop_timeout: Option<u32>,
    /// Restart policy: no, on-failure[:N], always, unless-stopped
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// ROOTFS followed by the command and its arguments
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ROOTFS [COMMAND [ARG...]]"
    )]
    pub args: Vec<String>,
}

fn key_values(list: &[String], what: &str) -> Result<BTreeMap<String, String>> {
    list.iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
            if k.is_empty() {
                bail!("invalid {what} {kv:?}: expected KEY=VALUE");
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

/// Parses a signal name or number (`TERM`, `SIGTERM`, `15`).
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        bail!("invalid signal {s:?}: expected a number from 1 to 64 or a name such as TERM");
    }
    let name = s.to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    let n = match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "TRAP" => 5,
        "ABRT" | "IOT" => 6,
        "BUS" => 7,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "STKFLT" => 16,
        "CHLD" => 17,
        "CONT" => 18,
        "STOP" => 19,
        "TSTP" => 20,
        "TTIN" => 21,
        "TTOU" => 22,
        "URG" => 23,
        "XCPU" => 24,
        "XFSZ" => 25,
        "VTALRM" => 26,
        "PROF" => 27,
        "WINCH" => 28,
        "IO" | "POLL" => 29,
        "PWR" => 30,
        "SYS" => 31,
        _ => bail!("invalid signal {s:?}: expected a number from 1 to 64 or a name such as TERM"),
    };
    Ok(n)
}

impl CreateArgs {
    fn options(&self) -> Result<CreateOptions> {
        if !self.rootfs {
            bail!("rpod runs containers from a root filesystem only: pass --rootfs DIR (images are not supported)");
        }
        let (rootfs, command) = self.args.split_first().context("missing ROOTFS argument")?;
        Ok(CreateOptions {
            name: self.name.clone(),
            rootfs: PathBuf::from(rootfs),
            command: command.to_vec(),
            env: self.env.clone(),
            workdir: self.workdir.clone().unwrap_or_default(),
            user: self.user.clone().unwrap_or_default(),
            hostname: self.hostname.clone().unwrap_or_default(),
            labels: key_values(&self.label, "label")?,
            annotations: key_values(&self.annotation, "annotation")?,
            volumes: self.volume.clone(),
            cap_add: self.cap_add.clone(),
            cap_drop: self.cap_drop.clone(),
            privileged: self.privileged,
            read_only: self.read_only,
            security_opt: self.security_opt.clone(),
            network: self.network.clone(),
            init: self.init,
            tty: self.tty,
            interactive: self.interactive,
            autoremove: self.rm,
            runtime: self.runtime.clone(),
            stop_signal: self.stop_signal.as_deref().map(parse_signal).transpose()?,
            stop_timeout: self.stop_timeout,
            restart: self.restart.clone(),
            create_command: std::env::args().collect(),
        })
    }
}

/// `rpod run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run the container in the background and print its id
    #[arg(short, long)]
    pub detach: bool,
    /// Key sequence to detach from the container's terminal
    #[arg(long)]
    pub detach_keys: Option<String>,
    #[command(flatten)]
    pub create: CreateArgs,
}

/// `rpod start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach to the container's output and return its exit code
    #[arg(short, long)]
    pub attach: bool,
    /// Attach the container's stdin (with --attach)
    #[arg(short, long)]
    pub interactive: bool,
    /// Key sequence to detach from the container's terminal
    #[arg(long)]
    pub detach_keys: Option<String>,
    /// Containers to start
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `rpod stop`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time")]
    pub time: Option<u32>,
    /// Stop all containers
    #[arg(short, long)]
    pub all: bool,
    /// Containers to stop
    pub containers: Vec<String>,
}

/// `rpod kill`.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    /// Containers to signal
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `rpod wait`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Containers to wait for
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `rpod rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Remove running containers too (they are killed first)
    #[arg(short, long)]
    pub force: bool,
    /// Remove all containers
    #[arg(short, long)]
    pub all: bool,
    /// Remove the container's anonymous volumes too
    #[arg(short, long)]
    pub volumes: bool,
    /// Containers to remove
    pub containers: Vec<String>,
}

/// `rpod ps`.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers, not only running ones
    #[arg(short, long)]
    pub all: bool,
    /// Print only ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate ids
    #[arg(long)]
    pub no_trunc: bool,
    /// Filter: name=, id=, label=, status=
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Output format: json, a Go template ({{.ID}}, table ...), or the default table
    #[arg(long)]
    pub format: Option<String>,
}

/// `rpod inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Output format: json (the default) or a Go template ({{.State.Status}})
    #[arg(short, long)]
    pub format: Option<String>,
    /// Containers to inspect
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `rpod logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow the log until the container exits
    #[arg(short, long)]
    pub follow: bool,
    /// Show only the last N lines
    #[arg(long)]
    pub tail: Option<i64>,
    /// Show lines since a time (RFC 3339) or duration (10m)
    #[arg(long)]
    pub since: Option<String>,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// The container
    pub container: String,
}

/// `rpod container …`.
#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Clean up a container after it exited (run by conmon)
    Cleanup(CleanupArgs),
}

/// `rpod container cleanup`.
#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Remove the container after cleaning up
    #[arg(long)]
    pub rm: bool,
    /// Clean up this exec session instead of the container
    #[arg(long = "exec", value_name = "SESSION")]
    pub exec: Option<String>,
    /// The container
    pub container: String,
}

/// Opens the engine for the global flags.
pub fn runtime(g: &GlobalOpts) -> Result<Runtime> {
    let cfg = g.load_config()?;
    let exe = std::env::current_exe().context("cannot find the rpod executable")?;
    let exit_cmd = Runtime::exit_command_for(&exe, &cfg);
    Ok(Runtime::new(cfg, exit_cmd)?)
}

fn short(id: &str, no_trunc: bool) -> &str {
    if no_trunc {
        id
    } else {
        &id[..id.len().min(12)]
    }
}

/// `rpod create`.
pub fn create(g: &GlobalOpts, a: CreateArgs) -> Result<()> {
    let opts = a.options()?;
    let rt = runtime(g)?;
    let c = rt.create_container(&opts)?;
    println!("{}", c.id);
    Ok(())
}

/// `rpod run`.
pub fn run(g: &GlobalOpts, a: RunArgs) -> Result<()> {
    let opts = a.create.options()?;
    if opts.tty && !a.detach {
        return super::terminal::run_tty(g, &opts, a.detach_keys.as_deref());
    }
    if a.detach && opts.autoremove {
        // allowed: conmon's cleanup removes it
    }
    let rt = runtime(g)?;
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let stdin: Option<Box<dyn std::io::Read + Send>> = Some(Box::new(std::io::stdin()));
    let (config, code) = rt.run_container(
        &opts,
        a.detach,
        stdin,
        &mut stdout.lock(),
        &mut stderr.lock(),
    )?;
    match code {
        None => {
            println!("{}", config.id);
            Ok(())
        }
        Some(0) => Ok(()),
        Some(code) => Err(ExitStatus(code.clamp(0, 255) as u8).into()),
    }
}

/// `rpod start`.
pub fn start(g: &GlobalOpts, a: StartArgs) -> Result<()> {
    let rt = runtime(g)?;
    if a.attach {
        if a.containers.len() != 1 {
            bail!("you cannot start and attach multiple containers at once");
        }
        return super::terminal::start_attached(
            g,
            &a.containers[0],
            a.interactive,
            a.detach_keys.as_deref(),
        );
    }
    let mut failed = None;
    for name in &a.containers {
        match rt.lock_container(name).and_then(|mut c| c.start()) {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("Error: {e}");
                failed = Some(e);
            }
        }
    }
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

fn targets(rt: &Runtime, names: &[String], all: bool, what: &str) -> Result<Vec<String>> {
    if all {
        return Ok(rt
            .list_containers()?
            .into_iter()
            .map(|r| r.config.id)
            .collect());
    }
    if names.is_empty() {
        bail!("{what} requires at least one container name or id, or --all");
    }
    Ok(names.to_vec())
}

/// Runs `op` on each container, printing `name` for successes; the last error fails the command.
fn for_each(names: &[String], mut op: impl FnMut(&str) -> Result<()>) -> Result<()> {
    let mut last = None;
    for n in names {
        match op(n) {
            Ok(()) => println!("{n}"),
            Err(e) => {
                if let Some(prev) = last.replace(e) {
                    eprintln!("Error: {prev:#}");
                }
            }
        }
    }
    last.map_or(Ok(()), Err)
}

/// `rpod stop`.
pub fn stop(g: &GlobalOpts, a: StopArgs) -> Result<()> {
    let rt = runtime(g)?;
    let names = targets(&rt, &a.containers, a.all, "stop")?;
    for_each(&names, |n| {
        let mut c = rt.lock_container(n)?;
        if a.all && !c.is_running() {
            return Ok(());
        }
        Ok(c.stop(a.time)?)
    })
}

/// `rpod kill`.
pub fn kill(g: &GlobalOpts, a: KillArgs) -> Result<()> {
    let sig = parse_signal(&a.signal)?;
    let rt = runtime(g)?;
    for_each(&a.containers, |n| Ok(rt.lock_container(n)?.kill(sig)?))
}

/// `rpod wait`.
pub fn wait(g: &GlobalOpts, a: WaitArgs) -> Result<()> {
    let rt = runtime(g)?;
    for n in &a.containers {
        let code = rt.wait_container(n)?;
        println!("{code}");
    }
    Ok(())
}

/// `rpod rm`.
pub fn rm(g: &GlobalOpts, a: RmArgs) -> Result<()> {
    let rt = runtime(g)?;
    let names = targets(&rt, &a.containers, a.all, "rm")?;
    for_each(&names, |n| {
        Ok(rt
            .lock_container(n)?
            .remove_with_volumes(a.force, a.volumes)?)
    })
}

fn matches_filter(
    rec: &rpod_state::ContainerRecord,
    filters: &BTreeMap<String, Vec<String>>,
) -> bool {
    for (key, values) in filters {
        let any = values.iter().any(|v| match key.as_str() {
            "name" => rec.config.name.contains(v.as_str()),
            "id" => rec.config.id.starts_with(v.as_str()),
            "label" => match v.split_once('=') {
                Some((k, val)) => rec.config.labels.get(k).is_some_and(|x| x == val),
                None => rec.config.labels.contains_key(v.as_str()),
            },
            "status" => inspect::state_name(rec) == v,
            _ => false,
        });
        if !any {
            return false;
        }
    }
    true
}

/// `rpod ps`.
pub fn ps(g: &GlobalOpts, a: PsArgs) -> Result<()> {
    let mut filters: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in &a.filter {
        let (k, v) = f
            .split_once('=')
            .with_context(|| format!("invalid filter {f:?}: expected KEY=VALUE"))?;
        if !matches!(k, "name" | "id" | "label" | "status") {
            bail!("invalid filter {k:?}: expected one of name, id, label, status");
        }
        if k == "status"
            && !matches!(
                v,
                "created"
                    | "running"
                    | "paused"
                    | "exited"
                    | "stopped"
                    | "stopping"
                    | "removing"
                    | "unknown"
            )
        {
            bail!("invalid status filter {v:?}: expected created, running, paused, exited, stopping or removing");
        }
        filters
            .entry(k.to_string())
            .or_default()
            .push(v.to_string());
    }
    let tpl = output::template(a.format.as_deref())?;
    let rt = runtime(g)?;
    // one row per shown container, without keeping the records
    let mut kept = Vec::new();
    rt.for_each_container(|r| {
        let shown = a.all
            || r.state.state == rpod_state::ContainerStatus::Running
            || filters.contains_key("status");
        if shown && matches_filter(&r, &filters) {
            kept.push((r.config.created_time, inspect::ps_entry(&r)));
        }
        Ok(())
    })?;
    kept.sort_by_key(|(created, _)| std::cmp::Reverse(*created));
    let kept: Vec<_> = kept.into_iter().map(|(_, e)| e).collect();
    if output::is_json(a.format.as_deref()) {
        return output::print_json(&kept);
    }
    if let Some(t) = tpl {
        let rows: Vec<serde_json::Value> = kept
            .iter()
            .map(|e| ps_template_value(e, a.no_trunc))
            .collect();
        return output::print_template(&t, &rows, &ps_header);
    }
    let out = std::io::stdout();
    let mut out = out.lock();
    if a.quiet {
        for e in &kept {
            writeln!(out, "{}", short(&e.Id, a.no_trunc))?;
        }
        return Ok(());
    }
    writeln!(
        out,
        "{:<12}  {:<20}  {:<20}  {:<14}  {:<24}  {:<6}  NAMES",
        "CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS"
    )?;
    for e in &kept {
        let mut cmd = e.Command.join(" ");
        if !a.no_trunc && cmd.len() > 20 {
            cmd.truncate(17);
            cmd.push_str("...");
        }
        writeln!(
            out,
            "{:<12}  {:<20}  {:<20}  {:<14}  {:<24}  {:<6}  {}",
            short(&e.Id, a.no_trunc),
            e.Image,
            cmd,
            e.CreatedAt,
            e.Status,
            "",
            e.Names.join(",")
        )?;
    }
    Ok(())
}

/// A `ps` row as `--format` templates see it: podman's JSON fields plus
/// the template fields of `podman ps` (`.ID` short unless `--no-trunc`,
/// `.Names` and `.Command` as text, `.CreatedHuman`, `.RunningFor`).
fn ps_template_value(e: &inspect::PsEntry, no_trunc: bool) -> serde_json::Value {
    let mut v = serde_json::to_value(e).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.insert("ID".into(), short(&e.Id, no_trunc).into());
        m.insert("Names".into(), e.Names.join(",").into());
        m.insert("Command".into(), e.Command.join(" ").into());
        m.insert("CreatedHuman".into(), e.CreatedAt.clone().into());
        m.insert("RunningFor".into(), e.CreatedAt.clone().into());
        m.insert("Ports".into(), "".into());
    }
    v
}

/// Column headers of `ps --format "table ..."`, as podman names them.
fn ps_header(field: &str) -> String {
    match field {
        "ID" | "Id" => "CONTAINER ID",
        "CreatedHuman" | "CreatedAt" | "RunningFor" | "Created" => "CREATED",
        "Pod" => "POD ID",
        "ExitCode" => "EXIT CODE",
        other => return other.to_uppercase(),
    }
    .to_string()
}

/// `rpod inspect`.
pub fn inspect_cmd(g: &GlobalOpts, a: InspectArgs) -> Result<()> {
    let tpl = output::template(a.format.as_deref())?;
    let rt = runtime(g)?;
    let mut docs = Vec::new();
    for n in &a.containers {
        let rec = rt.inspect_container(n)?;
        docs.push(inspect::inspect(&rec));
    }
    match tpl {
        Some(t) => output::print_template(&t, &docs, &output::upper_header),
        None => output::print_json(&docs),
    }
}

/// `rpod logs`.
pub fn logs(g: &GlobalOpts, a: LogsArgs) -> Result<()> {
    let rt = runtime(g)?;
    let rec = rt.lookup_container(&a.container)?;
    let since = a
        .since
        .as_deref()
        .map(rpod_runtime::parse_since)
        .transpose()?;
    let opts = rpod_oci::logs::LogOptions {
        tail: match a.tail {
            Some(n) if n >= 0 => Some(n as usize),
            _ => None,
        },
        since,
        until: None,
        follow: a.follow,
    };
    let id = rec.config.id.clone();
    let running = || {
        rt.list_containers()
            .ok()
            .and_then(|l| l.into_iter().find(|r| r.config.id == id))
            .is_some_and(|r| {
                matches!(
                    r.state.state,
                    rpod_state::ContainerStatus::Running
                        | rpod_state::ContainerStatus::Paused
                        | rpod_state::ContainerStatus::Created
                )
            })
    };
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut out = stdout.lock();
    let mut err = stderr.lock();
    rpod_oci::logs::read_log(
        std::path::Path::new(&rec.config.log_path),
        &opts,
        &running,
        &mut |line| {
            line.write_to(&mut out, &mut err, a.timestamps)
                .map_err(|e| rpod_oci::OciError::Io {
                    path: PathBuf::from("<stdout>"),
                    source: e,
                })
        },
    )?;
    Ok(())
}

/// `rpod container …`.
pub fn container(g: &GlobalOpts, c: ContainerCommand) -> Result<()> {
    match c {
        ContainerCommand::Cleanup(a) => {
            let rt = runtime(g)?;
            if let Some(session) = &a.exec {
                rt.cleanup_exec(&a.container, session)?;
                return Ok(());
            }
            rt.cleanup_container(&a.container, a.rm)?;
            Ok(())
        }
    }
}
