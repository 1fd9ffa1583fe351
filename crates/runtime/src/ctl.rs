//! Everyday state changes: pause/unpause (the runtime's freezer), restart
//! and rename.

use rpod_events::Status;
use rpod_state::ContainerStatus;

use crate::container::event;
use crate::{names, LockedContainer, Result, Runtime, RuntimeError};

impl LockedContainer<'_> {
    /// Freezes a running container (`runc pause`): `paused`, event `pause`.
    pub fn pause(&mut self) -> Result<()> {
        match self.status() {
            ContainerStatus::Running => {}
            ContainerStatus::Paused => return Err(self.invalid("pause", " (it is already paused)")),
            _ => return Err(self.invalid("pause", " (it is not running)")),
        }
        self.oci()?.pause(self.id())?;
        self.rec.state.state = ContainerStatus::Paused;
        self.save()?;
        self.rt.emit(event(Status::Pause, &self.rec.config));
        Ok(())
    }

    /// Thaws a paused container (`runc resume`): `running`, event `unpause`.
    pub fn unpause(&mut self) -> Result<()> {
        if self.status() != ContainerStatus::Paused {
            return Err(self.invalid("unpause", " (it is not paused)"));
        }
        self.oci()?.resume(self.id())?;
        self.rec.state.state = ContainerStatus::Running;
        self.save()?;
        self.rt.emit(event(Status::Unpause, &self.rec.config));
        Ok(())
    }

    /// Stops the container if it runs (stop timeout `timeout`, the
    /// container's own when `None`), then starts it again; event `restart`.
    pub fn restart(&mut self, timeout: Option<u32>) -> Result<()> {
        if self.is_running() || self.status() == ContainerStatus::Created {
            self.stop(timeout)?;
        }
        self.start()?;
        self.rt.emit(event(Status::Restart, &self.rec.config));
        Ok(())
    }
}

impl Runtime {
    /// `rpod rename OLD NEW`: validates `new_name` (podman's name rule, free
    /// among containers and pods), rewrites the config; event `rename`.
    pub fn rename_container(&self, id_or_name: &str, new_name: &str) -> Result<String> {
        if !names::is_valid(new_name) {
            return Err(RuntimeError::InvalidName {
                what: "container",
                name: new_name.to_string(),
            });
        }
        let c = self.lock_container(id_or_name)?;
        if c.config().name == new_name {
            return Ok(c.id().to_string());
        }
        let taken_by_ctr = match self.state().lookup_container(new_name) {
            Ok(other) => other.config.name == new_name,
            Err(_) => false,
        };
        let taken_by_pod = self
            .state()
            .lookup_pod(new_name)
            .is_ok_and(|p| p.config.name == new_name);
        if taken_by_ctr || taken_by_pod {
            return Err(RuntimeError::InvalidInput {
                what: "new container name",
                value: new_name.to_string(),
                expected: format!(
                    "a name not in use (a {} is already called {new_name:?})",
                    if taken_by_ctr { "container" } else { "pod" }
                ),
            });
        }
        let mut cfg = c.config().clone();
        cfg.name = new_name.to_string();
        self.state().rewrite_container_config(&cfg)?;
        self.emit(event(Status::Rename, &cfg));
        Ok(cfg.id)
    }
}
