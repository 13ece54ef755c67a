//! Inputs: received adverts, XDP records and events, link changes, trackers, timers and
//! sync groups, each turned into `handle` calls on the instances' cores.

use super::*;

/// Where a discarded advert arrived: an instance's (by slot index), or an interface
/// where no instance runs its VRID.
#[derive(Clone, Copy, Debug)]
enum DiscardSource {
    Instance(usize),
    Interface(u32),
}

impl Daemon {
    pub(super) async fn on_packet(&mut self, now: Instant, packet: Received) {
        let (meta, payload) = match packet.datagram.split() {
            Ok(d) => d,
            Err(e) => {
                self.malformed_ip += 1;
                let key = (
                    format!("ifindex {}", packet.ifindex),
                    Repeated::MalformedDatagram,
                );
                if let Verdict::Log { suppressed } = self.warnings.check(now, key) {
                    let what = Repeated::MalformedDatagram.message();
                    tracing::warn!(ifindex = packet.ifindex, error = %e, suppressed, "{what}");
                }
                return;
            }
        };
        let family = ip_family(packet.datagram.family());
        let slot_index = validate::peek_vrid(payload)
            .and_then(|vrid| self.by_vrid.get(&(packet.ifindex, vrid, family)).copied());
        let Some(index) = slot_index else {
            let result = validate::validate(&meta, payload, &[], |_| None);
            self.unknown_vrid
                .entry(packet.ifindex)
                .or_default()
                .record(&result);
            if let Err(discard) = &result {
                self.log_discard(
                    now,
                    DiscardSource::Interface(packet.ifindex),
                    meta.src,
                    discard,
                );
            }
            return;
        };
        let slot = &mut self.slots[index];
        let result = validate::validate(&meta, payload, &slot.local_addresses, |_| {
            Some(slot.expected())
        });
        slot.rx.record(&result);
        match result {
            Ok(accepted) => {
                if accepted.address_list_mismatch
                    && let Verdict::Log { suppressed } = self
                        .warnings
                        .check(now, (slot.spec.name.clone(), Repeated::AddressListMismatch))
                {
                    let what = Repeated::AddressListMismatch.message();
                    tracing::warn!(instance = %slot.spec.name, from = %accepted.sender, suppressed, "{what}");
                }
                self.feed_advert(index, now, now, accepted).await;
            }
            Err(discard) => {
                self.log_discard(now, DiscardSource::Instance(index), meta.src, &discard);
            }
        }
    }

    /// Logs a discarded advert: at debug level always, and as a warning rate-limited
    /// per (instance or interface, reason) when the reason is worth an operator's
    /// attention. Nothing is allocated for a discard that is not logged: under a flood
    /// this runs for every datagram.
    fn log_discard(
        &mut self,
        now: Instant,
        source: DiscardSource,
        from: IpAddr,
        discard: &validate::Discard,
    ) {
        let reason = discard.reason();
        tracing::debug!(?source, %from, %discard, "advert discarded");
        if !reason.worth_logging() {
            return;
        }
        let source = match source {
            DiscardSource::Instance(index) => self.slots[index].spec.name.clone(),
            DiscardSource::Interface(ifindex) => format!("ifindex {ifindex}"),
        };
        let what = Repeated::Discarded(reason);
        if let Verdict::Log { suppressed } = self.warnings.check(now, (source.clone(), what)) {
            let what = what.message();
            tracing::warn!(instance = %source, %from, detail = %discard, suppressed, "{what}");
        }
    }

    /// Hands an advert that passed §7.1 (from the socket or an XDP record) to the core,
    /// as heard at `heard` (no earlier than the core's last input), and performs what it
    /// answers at `now`.
    async fn feed_advert(
        &mut self,
        index: usize,
        heard: Instant,
        now: Instant,
        accepted: validate::Accepted,
    ) {
        let actions = self.slots[index].handle(
            heard,
            Input::Advert {
                src: accepted.sender,
                advert: accepted.advert,
            },
        );
        self.perform(index, now, actions).await;
    }

    pub(super) async fn on_net_event(&mut self, now: Instant, event: NetEvent) {
        match event {
            NetEvent::Link(event) => self.on_link(now, event).await,
            NetEvent::LinkLocalReady { ifindex } => self.on_link_local(now, ifindex).await,
        }
    }

    /// An IPv6 link-local address became usable on `ifindex`: instances that waited in
    /// FAULT for one are prepared again (as a reload would), now with their real
    /// source address, and start.
    async fn on_link_local(&mut self, now: Instant, ifindex: u32) {
        for index in 0..self.slots.len() {
            let slot = &self.slots[index];
            if slot.retired || !slot.awaiting_link_local.contains(&ifindex) {
                continue;
            }
            let spec = slot.spec.clone();
            tracing::info!(instance = %spec.name, ifindex, "IPv6 link-local address ready, starting the instance");
            if let Err(e) = self.rebuild(index, &spec, now).await {
                tracing::error!(instance = %spec.name, error = %e, "starting the instance once its link-local address appeared failed");
            }
        }
    }

    pub(super) async fn on_link(&mut self, now: Instant, event: LinkEvent) {
        for index in 0..self.slots.len() {
            let slot = &mut self.slots[index];
            if slot.retired {
                continue;
            }
            let Some(link) = slot.links.get_mut(&event.ifindex) else {
                continue;
            };
            if link.up == event.up {
                continue;
            }
            link.up = event.up;
            tracing::info!(instance = %slot.spec.name, ifindex = event.ifindex, name = ?event.name, up = event.up, "link state changed");
            self.refresh_health(index, now).await;
        }
    }

    /// A script's health or a file's value changed: recompute the priority offset and
    /// fault state of every instance that tracks `name`.
    pub(super) async fn trackers_changed(&mut self, now: Instant, name: &str) {
        for index in 0..self.slots.len() {
            let spec = &self.slots[index].spec;
            let tracks = spec.track_scripts.iter().any(|t| t.name == name)
                || spec.track_files.iter().any(|t| t.name == name);
            if self.slots[index].retired || !tracks {
                continue;
            }
            self.refresh_health(index, now).await;
        }
    }

    /// What the instance's own trackers add up to ([`health::aggregate`]): its links,
    /// scripts and files, each with the weight in force.
    pub(super) fn own_health(&self, index: usize) -> Health {
        let slot = &self.slots[index];
        if slot.retired {
            return Health::default();
        }
        // Sorted by ifindex, so the fault reported is the same on every call.
        let mut ifindexes: Vec<&u32> = slot.links.keys().collect();
        ifindexes.sort();
        let mut links: Vec<health::LinkStatus> = ifindexes
            .into_iter()
            .filter_map(|i| slot.links.get(i).map(|link| (i, link)))
            .map(|(i, link)| health::LinkStatus {
                name: &link.name,
                // Without its link-local address an IPv6 instance cannot speak there.
                up: link.up && !slot.awaiting_link_local.contains(i),
                weight: link.weight,
            })
            .collect();
        // A VIP interface still without one counts as a link down too.
        for dev_index in &slot.awaiting_link_local {
            if slot.links.contains_key(dev_index) {
                continue;
            }
            if let Some((_, vip)) = slot.vips.iter().find(|(d, _)| d == dev_index) {
                links.push(health::LinkStatus {
                    name: &vip.dev,
                    up: false,
                    weight: 0,
                });
            }
        }
        let scripts: Vec<health::ScriptStatus> = slot
            .spec
            .track_scripts
            .iter()
            .map(|t| health::ScriptStatus {
                name: &t.name,
                healthy: self.script_health.get(&t.name).copied(),
                weight: i32::from(t.weight),
            })
            .collect();
        let files: Vec<health::FileStatus> = slot
            .spec
            .track_files
            .iter()
            .filter_map(|t| {
                let file = self.track_files.iter().find(|f| f.name == t.name)?;
                Some(health::FileStatus {
                    name: &t.name,
                    value: self.file_values.get(&t.name).copied(),
                    weight: t.weight_with(file),
                })
            })
            .collect();
        let mut health = health::aggregate(&links, &scripts, &files);
        self.bfd_health(index, &mut health);
        health
    }

    /// Why the instance should be in FAULT now, if it should: its own trackers, or
    /// (FAULT wins) another member of its sync group.
    pub(super) fn fault_reason(&self, index: usize) -> Option<FaultReason> {
        let own = self.own_health(index).fault;
        let Some(group) = self.groups.iter().find(|g| g.group.contains(index)) else {
            return own;
        };
        let members = group.group.members();
        let faults: Vec<Option<FaultReason>> =
            members.iter().map(|&m| self.own_health(m).fault).collect();
        let position = members.iter().position(|&m| m == index)?;
        group.group.member_faults(&faults).swap_remove(position)
    }

    /// Feeds the instance's tracker aggregate to the core: the priority offset, then
    /// the fault state.
    pub(super) async fn refresh_health(&mut self, index: usize, now: Instant) {
        let offset = self.own_health(index).priority_offset;
        if offset != self.slots[index].core.priority_offset() {
            let actions = self.slots[index].handle(now, Input::PriorityOffset(offset));
            self.perform(index, now, actions).await;
            tracing::info!(instance = %self.slots[index].spec.name, priority = self.slots[index].core.effective_priority(), "tracked priority changed");
        }
        self.refresh_fault(index, now).await;
    }

    /// Feeds the aggregate of all fault sources to the core.
    pub(super) async fn refresh_fault(&mut self, index: usize, now: Instant) {
        let reason = self.fault_reason(index);
        let core = &self.slots[index].core;
        let input = match reason {
            Some(reason) if core.fault() != Some(&reason) => Input::Fault { reason },
            None if core.state() == State::Fault => Input::FaultCleared,
            _ => return,
        };
        let actions = self.slots[index].handle(now, input);
        self.perform(index, now, actions).await;
    }

    pub(super) async fn on_timers(&mut self, now: Instant) {
        for ((instance, what), count) in self.warnings.poll_summaries(now) {
            let period = self.warnings.period();
            tracing::warn!(%instance, suppressed = count, "{} ({count} more in the last {}s)", what.message(), period.as_secs());
        }
        for index in 0..self.slots.len() {
            // The core may set a new deadline that is already due; bound the loop anyway.
            for _ in 0..8 {
                match self.slots[index].core.poll_timeout() {
                    Some(deadline) if deadline <= now => {
                        if self.rescue_from_xdp(index, now).await {
                            continue;
                        }
                        let slot = &mut self.slots[index];
                        if slot.core.state() == State::Master {
                            // A master's timer is its advert timer: how late is it?
                            let late = now.duration_since(deadline);
                            let late_us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
                            slot.advert_late_max_us = slot.advert_late_max_us.max(late_us);
                            if late > slot.spec.advert_interval {
                                slot.adverts_late += 1;
                            }
                        }
                        let actions = self.slots[index].handle(now, Input::Timeout);
                        self.perform(index, now, actions).await;
                    }
                    _ => break,
                }
            }
            self.run_garp(index, now);
            self.continue_announce_for(index, now);
        }
    }

    /// A Backup's Master_Down_Timer is due. If the XDP program heard the master more
    /// recently than the socket delivered (a full socket queue under a flood drops
    /// adverts after XDP has seen them), feed that advert instead of declaring the
    /// master dead. Returns whether it did.
    pub(super) async fn rescue_from_xdp(&mut self, index: usize, now: Instant) -> bool {
        let slot = &self.slots[index];
        if slot.core.state() != State::Backup {
            return false;
        }
        let Some(attachment) = self.xdp.get(&slot.ifindex) else {
            return false;
        };
        let Ok(Some(observed)) =
            attachment.observed(slot.spec.virtual_router_id, ip_family(slot.family()))
        else {
            return false;
        };
        let seen_at = observed.last_seen_at(now, monotonic_now_ns());
        // Only a record newer than anything fed, and recent enough to hold the master
        // up, is news; a priority-0 advert is no reason to stay Backup.
        if observed.priority == 0
            || seen_at <= slot.last_input
            || now.saturating_duration_since(seen_at) >= slot.core.master_down_interval()
        {
            return false;
        }
        let record = validate::ObservedAdvert {
            src: observed.source,
            vrid: slot.spec.virtual_router_id,
            version: Some(observed.version),
            priority: observed.priority,
            max_advert_interval: observed.interval,
        };
        let slot = &mut self.slots[index];
        let Some(accepted) = slot.accept_observed(&record) else {
            return false;
        };
        slot.xdp_rescues += 1;
        tracing::debug!(instance = %slot.spec.name, from = %observed.source, "master heard by XDP, not yet by the socket");
        self.feed_advert(index, seen_at, now, accepted).await;
        true
    }

    /// A ring-buffer event: the election acts at once on what changed (priority 0, a
    /// new or re-prioritised master) instead of waiting for the socket.
    pub(super) async fn on_xdp_event(&mut self, now: Instant, event: AdvertEvent) {
        let Some(&index) = self.by_vrid.get(&(event.ifindex, event.vrid, event.family)) else {
            return;
        };
        let slot = &mut self.slots[index];
        let record = validate::ObservedAdvert {
            src: event.source,
            vrid: event.vrid,
            version: None,
            priority: event.priority,
            max_advert_interval: event.interval,
        };
        let Some(accepted) = slot.accept_observed(&record) else {
            return;
        };
        slot.xdp_events += 1;
        let seen_at = now
            .checked_sub(Duration::from_nanos(
                monotonic_now_ns().saturating_sub(event.seen_ns),
            ))
            .unwrap_or(now);
        self.feed_advert(index, seen_at, now, accepted).await;
    }

    /// Brings sync groups to agreement after whatever just happened: members follow a
    /// member that changed state (FAULT through [`Daemon::fault_reason`], MASTER and
    /// BACKUP through the follows [`SyncGroup::on_member_changed`] queued), and a group
    /// whose state changed runs its notify commands.
    pub(super) async fn settle_groups(&mut self, now: Instant) {
        if self.groups.is_empty() {
            return;
        }
        // Bounded: each round can only move members towards the group's state.
        for _ in 0..4 {
            let members: Vec<usize> = self
                .groups
                .iter()
                .flat_map(|g| g.group.members().to_vec())
                .collect();
            for index in members {
                self.refresh_fault(index, now).await;
            }
            let queue = std::mem::take(&mut self.follow_queue);
            if queue.is_empty() {
                break;
            }
            for (index, follow) in queue {
                let actions = self.slots[index].handle(now, Input::Follow(follow));
                self.perform(index, now, actions).await;
            }
        }
        self.notify_groups();
    }

    /// Queues the follows of `index`'s sync group after its transition `from` → `to`.
    pub(super) fn queue_follows(
        &mut self,
        index: usize,
        from: State,
        to: State,
        reason: &crate::proto::action::Reason,
    ) {
        if let Some(group) = self.groups.iter().find(|g| g.group.contains(index)) {
            let follows = group.group.on_member_changed(index, from, to, reason);
            self.follow_queue.extend(follows);
        }
    }

    /// Runs the notify commands of every group whose state changed (including STOP
    /// once all its members have stopped).
    pub(super) fn notify_groups(&mut self) {
        for g in 0..self.groups.len() {
            let states: Vec<State> = self.groups[g]
                .group
                .members()
                .iter()
                .map(|&m| self.slots[m].core.state())
                .collect();
            if let Some(state) = self.groups[g].group.update(&states) {
                let spec = self.groups[g].spec.clone();
                self.run_group_notify(&spec, state);
            }
        }
    }

    /// Logs a group's new state and, unless a reload caused it, runs its notify
    /// commands.
    pub(super) fn run_group_notify(&mut self, spec: &config::SyncGroup, state: GroupState) {
        let state = match state {
            GroupState::Master => NotifyState::Master,
            GroupState::Backup => NotifyState::Backup,
            GroupState::Fault => NotifyState::Fault,
            GroupState::Stop => NotifyState::Stop,
        };
        tracing::info!(group = %spec.name, state = state.name(), "sync group state");
        if !self.reloading || state == NotifyState::Stop {
            let counters = Arc::new(NotifyCounters::default());
            let tasks =
                notify::on_group_state(spec, state, self.mail.as_ref(), &self.router_id, &counters);
            self.notify_tasks.retain(|t| !t.is_finished());
            self.notify_tasks.extend(tasks);
        }
    }
}
