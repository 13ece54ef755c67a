//! SIGHUP: re-reading the configuration and applying the difference.

use super::*;

impl Daemon {
    /// Stops an instance for good (priority 0 if master, VIPs released) and frees its
    /// slot for reuse.
    pub(super) async fn retire(&mut self, index: usize, now: Instant) {
        let actions = self.slots[index].handle(now, Input::Shutdown);
        self.perform(index, now, actions).await;
        if self.slots[index].holds_vips {
            self.release_vips(index);
        }
        let slot = &mut self.slots[index];
        if let Some(attachment) = self.xdp.get_mut(&slot.ifindex) {
            let _ = attachment.unwatch(slot.spec.virtual_router_id, ip_family(slot.family()));
        }
        self.by_vrid.remove(&slot.key());
        slot.retired = true;
        slot.garp = GarpSchedule::default();
    }

    /// SIGHUP: re-reads the configuration and applies the difference. Instances whose
    /// settings did not change are not touched; a changed instance is rebuilt in place
    /// (a master stays master without a gap and keeps the VIPs that stay configured);
    /// removed ones stop, new ones start. A configuration that does not load changes
    /// nothing: vipd goes on with the old one and says why.
    pub(super) async fn reload(
        &mut self,
        path: Option<&std::path::Path>,
        socket: &std::path::Path,
    ) {
        let Some(path) = path else {
            tracing::warn!("SIGHUP ignored: vipd was not started from a configuration file");
            return;
        };
        let loaded = match config::load(path) {
            Ok(loaded) => loaded,
            Err(e) => {
                tracing::error!(file = %path.display(), "reload failed, keeping the running configuration:\n{e}");
                return;
            }
        };
        for warning in &loaded.warnings {
            tracing::warn!("{warning}");
        }
        let new = loaded.config;
        if new.global.control_socket != socket {
            tracing::warn!(new = %new.global.control_socket.display(), current = %socket.display(), "control_socket changes take effect at restart");
        }
        apply_scheduling(new.global.realtime_priority);
        self.realtime_priority
            .store(new.global.realtime_priority, Ordering::Relaxed);
        self.mail = new.global.mail.clone();
        self.router_id = new.global.router_id.clone().unwrap_or_else(hostname);
        self.reloading = true;
        let now = Instant::now();
        let mut kept = 0;
        let mut rebuilt = Vec::new();
        let mut added = Vec::new();
        let active: Vec<usize> = (0..self.slots.len())
            .filter(|&i| !self.slots[i].retired)
            .collect();
        for index in active {
            let old = self.slots[index].spec.clone();
            match new.instances.iter().find(|i| i.name == old.name) {
                Some(spec) if *spec == old => kept += 1,
                // A changed family is another virtual router (own key, sockets, XDP
                // watch): that one stops and the new one starts.
                Some(spec)
                    if spec.interface == old.interface
                        && spec.virtual_router_id == old.virtual_router_id
                        && spec.family == old.family =>
                {
                    rebuilt.push((index, spec.clone()))
                }
                _ => {
                    tracing::info!(instance = %old.name, "reload: instance removed or moved, stopping it");
                    self.retire(index, now).await;
                }
            }
        }
        for spec in &new.instances {
            let known = self
                .slots
                .iter()
                .any(|s| !s.retired && s.spec.name == spec.name);
            if !known {
                added.push(spec.clone());
            }
        }
        for (index, spec) in &rebuilt {
            if let Err(e) = self.rebuild(*index, spec, now).await {
                tracing::error!(instance = %spec.name, error = %e, "reload: rebuilding the instance failed; it keeps its old settings");
            }
        }
        match self.prepare_all(&added, true).await {
            Ok(indexes) => self.start_instances(&indexes, now).await,
            Err(e) => tracing::error!(error = %e, "reload: starting new instances failed"),
        }
        self.start_trackers(&new);
        self.build_groups(&new);
        self.reloading = false;
        tracing::info!(
            kept,
            rebuilt = rebuilt.len(),
            added = added.len(),
            "configuration reloaded"
        );
    }

    /// Replaces an instance's settings in place. The new core starts as master when the
    /// old one was master (so the VIPs never leave), otherwise by the RFC's startup rules.
    pub(super) async fn rebuild(
        &mut self,
        index: usize,
        spec: &InstanceSpec,
        now: Instant,
    ) -> Result<(), DaemonError> {
        let was_master = self.slots[index].core.state() == State::Master;
        let old_vips: Vec<(u32, config::VirtualAddress)> = self.slots[index].vips.clone();
        let mut spec = spec.clone();
        let mut slot = self.prepare(&spec, false).await?;
        // Dropped VIPs leave now; the ones that stay are re-added idempotently.
        if self.slots[index].holds_vips {
            // Through the worker, after any add still queued for the old list.
            let dropped: Vec<_> = old_vips
                .into_iter()
                .filter(|(_, vip)| !slot.vips.iter().any(|(_, v)| v.address == vip.address))
                .collect();
            if !dropped.is_empty() {
                self.queue_vips(index, false, dropped);
            }
        }
        if was_master {
            spec.initial_state = config::InitialState::Master;
            let mut cfg = core_config(&spec, slot.primary);
            cfg.initial_state = core::InitialState::Master;
            slot.core = Instance::new(cfg).map_err(|source| DaemonError::Core {
                instance: spec.name.clone(),
                source,
            })?;
        }
        let old = std::mem::replace(&mut self.slots[index], slot);
        let slot = &mut self.slots[index];
        slot.rx = old.rx;
        slot.notify = old.notify;
        slot.transitions_by_reason = old.transitions_by_reason;
        slot.last_input = old.last_input;
        slot.holds_vips = old.holds_vips;
        // Completions of the old slot's jobs must not match the new slot's.
        slot.vip_generation = old.vip_generation;
        self.attach_xdp(&[index]).await?;
        self.start_instances(&[index], now).await;
        Ok(())
    }
}
