//! The command tree. One module per command or command group; each has an
//! `Args` struct (clap) and a `run` function that calls the engine and prints.

mod container;
mod cp;
mod ctl;
mod events;
mod exec;
mod import_podman;
mod info;
mod stats;
mod system;
mod system_lifecycle;
mod terminal;
mod volume;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::global::GlobalOpts;

/// rpod: a daemonless container engine with podman's habits.
#[derive(Debug, Parser)]
#[command(name = "rpod", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

/// Every top-level command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show rpod events
    Events(events::EventsArgs),
    /// Display rpod's view of the host, its configuration and backends
    Info(info::InfoArgs),
    /// Manage rpod itself
    #[command(subcommand)]
    System(system::SystemCommand),
    /// Create a container (from --rootfs DIR)
    Create(container::CreateArgs),
    /// Run a command in a new container
    Run(container::RunArgs),
    /// Start containers
    Start(container::StartArgs),
    /// Stop containers
    Stop(container::StopArgs),
    /// Send a signal to containers
    Kill(container::KillArgs),
    /// Wait for containers to exit and print their exit codes
    Wait(container::WaitArgs),
    /// Remove containers
    Rm(container::RmArgs),
    /// List containers
    Ps(container::PsArgs),
    /// Display a container's configuration and state
    Inspect(container::InspectArgs),
    /// Show a container's output
    Logs(container::LogsArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(container::ContainerCommand),
    /// Run a process in a running container
    Exec(exec::ExecArgs),
    /// Pause containers (freeze their processes)
    Pause(ctl::PauseArgs),
    /// Unpause paused containers
    Unpause(ctl::PauseArgs),
    /// Restart containers
    Restart(ctl::RestartArgs),
    /// Rename a container
    Rename(ctl::RenameArgs),
    /// Initialize containers (create them in the OCI runtime without starting)
    Init(ctl::InitArgs),
    /// Display the running processes of a container
    Top(stats::TopArgs),
    /// Display the resource usage of containers
    Stats(stats::StatsArgs),
    /// Copy files between the host and a container
    Cp(cp::CpArgs),
    /// Attach to a running container's terminal or output
    Attach(terminal::AttachArgs),
    /// Manage named volumes
    #[command(subcommand)]
    Volume(volume::VolumeCommand),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<()> {
    let g = &cli.global;
    match cli.command {
        Command::Events(a) => events::run(g, a),
        Command::Info(a) => info::run(g, a),
        Command::System(c) => system::run(g, c),
        Command::Create(a) => container::create(g, a),
        Command::Run(a) => container::run(g, a),
        Command::Start(a) => container::start(g, a),
        Command::Stop(a) => container::stop(g, a),
        Command::Kill(a) => container::kill(g, a),
        Command::Wait(a) => container::wait(g, a),
        Command::Rm(a) => container::rm(g, a),
        Command::Ps(a) => container::ps(g, a),
        Command::Inspect(a) => container::inspect_cmd(g, a),
        Command::Logs(a) => container::logs(g, a),
        Command::Container(c) => container::container(g, c),
        Command::Exec(a) => exec::exec(g, a),
        Command::Pause(a) => ctl::pause(g, a),
        Command::Unpause(a) => ctl::unpause(g, a),
        Command::Restart(a) => ctl::restart(g, a),
        Command::Rename(a) => ctl::rename(g, a),
        Command::Init(a) => ctl::init(g, a),
        Command::Top(a) => stats::top(g, a),
        Command::Stats(a) => stats::stats(g, a),
        Command::Cp(a) => cp::cp(g, a),
        Command::Attach(a) => terminal::attach(g, a),
        Command::Volume(c) => volume::run(g, c),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_tree_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
