//! rpod's OCI layer: everything between the engine and the OCI runtime,
//! byte-compatible with how podman 4.3.1 drives conmon 2.x and runc.
//!
//! * **Discovery** — [`OciRuntime::find`], [`list_runtimes`], [`Conmon::find`]:
//!   find runc/crun and conmon from the configuration the way libpod does.
//! * **Spec generation** — [`spec::SpecOptions`] → [`spec::write_bundle`]
//!   validates the options (command present and executable in the rootfs,
//!   bind sources, capability names, …) and writes `config.json` plus the
//!   per-container `/etc` files, matching podman's generated spec.
//! * **Creating** — the [`Monitor`] trait, implemented by [`ConmonMonitor`]
//!   (conmon with the sync/start socketpairs on fds 3 and 4, podman's argv).
//! * **Runtime commands** — [`OciRuntime::start`], [`OciRuntime::kill`],
//!   [`OciRuntime::delete`], [`OciRuntime::pause`], [`OciRuntime::resume`],
//!   [`OciRuntime::state`]; all with `--root <state_root>`.
//! * **Exit, attach, logs** — [`exit`], [`attach`], [`logs`].
//! * **Test support** — [`rootfs::build_busybox_rootfs`].
//!
//! # Running a container
//!
//! ```no_run
//! use rpod_oci::{spec, AttachSocket, Conmon, ConmonMonitor, CreateRequest, Monitor, OciRuntime};
//! # fn main() -> Result<(), rpod_oci::OciError> {
//! let cfg = rpod_config::RuntimeConfig::defaults(&rpod_config::UserDirs::current());
//! let runtime = OciRuntime::find(&cfg, None)?;
//! let monitor = ConmonMonitor::new(Conmon::find(&cfg, None)?);
//! let id = "c0ffee";
//! let bundle = std::path::Path::new("/run/rpod/bundles/c0ffee");
//! spec::write_bundle(&spec::SpecOptions {
//!     id: id.into(),
//!     rootfs: "/srv/rootfs".into(),
//!     args: vec!["echo".into(), "hello".into()],
//!     cgroups_path: spec::cgroups_path(cfg.cgroup_manager, &cfg.cgroup_parent, id),
//!     ..Default::default()
//! }, bundle)?;
//! let created = monitor.create(&runtime, &CreateRequest::new(id, bundle, "/run/rpod/exits"))?;
//! let attach = AttachSocket::connect(bundle)?;      // before start: no output lost
//! runtime.start(id)?;
//! attach.stream(None, &mut std::io::stdout(), &mut std::io::stderr())?;
//! let outcome = rpod_oci::exit::wait_for_exit(
//!     "/run/rpod/exits".as_ref(), id, Some(created.monitor_pid), std::time::Duration::from_secs(5))?;
//! runtime.delete(id, true)?;
//! # let _ = outcome; Ok(()) }
//! ```
//!
//! # Another monitor
//!
//! Implement [`Monitor`] (object safe; the engine holds a `Box<dyn Monitor>`).
//! `create` must leave the container in the runtime's `created` state under a
//! process that outlives the caller, and keep conmon's on-disk contract:
//! attach socket `<bundle>/attach`, exit file `<exit_dir>/<id>`, the k8s-file
//! log at [`CreateRequest::log_path`], the monitor PID in
//! [`CreateRequest::conmon_pid_file`].
//!
//! The crate is stateless: the engine (`rpod-runtime`) owns container state
//! and locking, and passes every path in.

pub mod attach;
mod discovery;
mod error;
pub mod exec;
pub mod exit;
pub mod logs;
mod monitor;
pub mod rootfs;
mod runtime;
pub mod spec;

pub use attach::{AttachSocket, AttachStats};
pub use discovery::{list_runtimes, Conmon, OciRuntime, RuntimeCandidate, CONMON_MIN_VERSION};
pub use error::OciError;
pub use monitor::{ConmonMonitor, CreateRequest, Created, Monitor, DEFAULT_CREATE_TIMEOUT};
pub use runtime::RuntimeState;
