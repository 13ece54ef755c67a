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
        slot.garp.stop();
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
        let started = Instant::now();
        let loaded = match config::load(path) {
            Ok(loaded) => loaded,
            Err(e) => {
                tracing::error!(file = %path.display(), "reload failed, keeping the running configuration:\n{e}");
                self.reload_failures += 1;
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
        self.notify_shutdown_timeout = new.global.notify_shutdown_timeout;
        self.router_id = new.global.router_id.clone().unwrap_or_else(hostname);
        match (&mut self.lb, new.virtual_servers.is_empty()) {
            (Some(lb), _) => lb.reload(new.virtual_servers.clone()),
            (None, false) => tracing::warn!(
                "reload: virtual_server blocks were added to a daemon started without any; the load balancer starts at the next restart (its XDP maps are sized at start)"
            ),
            (None, true) => {}
        }
        let announces = new.instances.iter().any(|i| i.announce.is_some())
            || new.virtual_servers.iter().any(|v| v.announce.is_some());
        if announces && self.l3.is_none() {
            tracing::warn!(
                "reload: announce = \"bgp\" was added to a daemon started without it; the announcement devices are created at the next restart"
            );
        }
        self.reloading = true;
        let now = Instant::now();
        let running = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.retired)
            .map(|(i, s)| (i, &s.spec));
        let plan = config::plan::instances(running, &new.instances);
        // Trackers first: rebuilt and new instances start at the priority they give
        // (with the new track-file weights).
        self.start_trackers(&new);
        // BFD: sessions restart only when their definitions changed; a session's state
        // is not carried over (its neighbour sees a new discriminator and restarts too).
        if self.bfd.specs() != new.bfd_instances {
            tracing::info!("reload: BFD sessions changed, restarting them");
            if let Err(e) = self.bfd.restart(&new.bfd_instances, now) {
                tracing::error!(error = %e, "reload: starting BFD sessions failed");
            }
        }
        for &index in &plan.stop {
            tracing::info!(instance = %self.slots[index].spec.name, "reload: instance removed or moved, stopping it");
            self.retire(index, now).await;
        }
        for (index, spec) in &plan.rebuild {
            if let Err(e) = self.rebuild(*index, spec, now).await {
                tracing::error!(instance = %spec.name, error = %e, "reload: rebuilding the instance failed; it keeps its old settings");
            }
        }
        // Groups without the stopped instances before new ones take their slots, so no
        // group counts a reused slot as its old member; again once the new ones run.
        self.build_groups(&new);
        match self.prepare_all(&plan.start, true).await {
            Ok(indexes) => self.start_instances(&indexes, now).await,
            Err(e) => tracing::error!(error = %e, "reload: starting new instances failed"),
        }
        self.build_groups(&new);
        // A virtual server's new `interface` (or a director's first): the program there.
        if let Err(e) = self.attach_lb(&new.virtual_servers).await {
            tracing::error!(error = %e, "reload: attaching the load balancer failed");
        }
        // A kept instance's settings are unchanged, but a track file's default weight
        // it uses may not be.
        for &index in &plan.keep {
            self.refresh_health(index, now).await;
        }
        // New sessions or new XDP attachments: register the sessions again.
        self.bfd_watch_xdp();
        self.reloading = false;
        self.reloads += 1;
        tracing::info!(
            kept = plan.keep.len(),
            rebuilt = plan.rebuild.len(),
            stopped = plan.stop.len(),
            added = plan.start.len(),
            elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
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
