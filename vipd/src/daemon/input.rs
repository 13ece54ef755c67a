//! Inputs: received adverts, XDP records and events, link changes, trackers, timers and
//! sync groups, each turned into `handle` calls on the instances' cores.

use super::*;

/// An advert rebuilt from what XDP recorded (it checked TTL, version, type, length,
/// VRID, auth and checksum); the address list is taken as configured.
pub(super) fn synthetic_advert(slot: &Slot, priority: u8, interval: Centiseconds) -> AdvertRepr {
    let cfg = slot.core.config();
    AdvertRepr {
        version: cfg.version,
        vrid: cfg.vrid,
        priority,
        max_advert_interval: interval,
        auth: cfg.auth,
        addresses: slot.core.listed_addresses().to_vec(),
    }
}

impl Daemon {
    pub(super) async fn on_packet(&mut self, now: Instant, packet: Received) {
        let (meta, payload) = match packet.datagram.split() {
            Ok(d) => d,
            Err(e) => {
                tracing::debug!(ifindex = packet.ifindex, error = %e, "not a usable IP datagram");
                self.malformed_ip += 1;
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
                let actions = slot.handle(
                    now,
                    Input::Advert {
                        src: accepted.sender,
                        advert: accepted.advert,
                    },
                );
                self.perform(index, now, actions).await;
            }
            Err(discard) => {
                tracing::debug!(instance = %slot.spec.name, from = %meta.src, reason = %discard, "advert discarded");
            }
        }
    }

    pub(super) async fn on_link(&mut self, now: Instant, event: LinkEvent) {
        for index in 0..self.slots.len() {
            let slot = &mut self.slots[index];
            if slot.retired {
                continue;
            }
            let Some(up) = slot.links.get_mut(&event.ifindex) else {
                continue;
            };
            if *up == event.up {
                continue;
            }
            *up = event.up;
            tracing::info!(instance = %slot.spec.name, ifindex = event.ifindex, name = ?event.name, up = event.up, "link state changed");
            self.refresh_fault(index, now).await;
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
            let offset = self.priority_offset(index);
            if offset != self.slots[index].core.priority_offset() {
                let actions = self.slots[index].handle(now, Input::PriorityOffset(offset));
                self.perform(index, now, actions).await;
                tracing::info!(instance = %self.slots[index].spec.name, tracker = %name, priority = self.slots[index].core.effective_priority(), "tracked priority changed");
            }
            self.refresh_fault(index, now).await;
        }
    }

    /// keepalived's weights: a positive weight is added while the script is healthy, a
    /// negative one while it fails; weight 0 scripts cause FAULT instead.
    pub(super) fn priority_offset(&self, index: usize) -> i32 {
        let spec = &self.slots[index].spec;
        let scripts: i32 = spec
            .track_scripts
            .iter()
            .filter_map(|t| {
                let healthy = *self.script_health.get(&t.name)?;
                let weight = i32::from(t.weight);
                match (weight > 0, weight < 0, healthy) {
                    (true, _, true) | (_, true, false) => Some(weight),
                    _ => None,
                }
            })
            .sum();
        // keepalived's track files: value × weight, capped by the config rules.
        let files: i32 = spec
            .track_files
            .iter()
            .filter_map(|t| {
                let file = self.track_files.iter().find(|f| f.name == t.name)?;
                let value = *self.file_values.get(&t.name)?;
                match config::track_file_effect(value, t.weight_with(file)) {
                    config::TrackFileEffect::Offset(offset) => Some(offset),
                    config::TrackFileEffect::Fault => None,
                }
            })
            .sum();
        scripts + files
    }

    /// Why the instance should be in FAULT now, if it should: a watched link is down, or
    /// a weight-0 track script fails.
    pub(super) fn fault_reason(&self, index: usize) -> Option<FaultReason> {
        if let Some(reason) = self.own_fault(index) {
            return Some(reason);
        }
        // Sync group: FAULT wins (a member's fault takes the whole group down).
        let group = self.groups.iter().find(|g| g.members.contains(&index))?;
        group
            .members
            .iter()
            .any(|&m| m != index && self.own_fault(m).is_some())
            .then(|| FaultReason::Tracker {
                name: format!("sync group {}", group.spec.name),
            })
    }

    /// The instance's own fault sources: its links, weight-0 scripts, track files.
    pub(super) fn own_fault(&self, index: usize) -> Option<FaultReason> {
        let slot = &self.slots[index];
        if slot.retired {
            return None;
        }
        if slot.links.values().any(|up| !up) {
            return Some(FaultReason::LinkDown);
        }
        let script = slot
            .spec
            .track_scripts
            .iter()
            .find(|t| t.weight == 0 && self.script_health.get(&t.name) == Some(&false))
            .map(|t| t.name.clone());
        let file = slot
            .spec
            .track_files
            .iter()
            .find(|t| {
                let Some(file) = self.track_files.iter().find(|f| f.name == t.name) else {
                    return false;
                };
                let value = self.file_values.get(&t.name).copied().unwrap_or(0);
                self.file_values.contains_key(&t.name)
                    && config::track_file_effect(value, t.weight_with(file))
                        == config::TrackFileEffect::Fault
            })
            .map(|t| t.name.clone());
        script.or(file).map(|name| FaultReason::Tracker { name })
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
        if slot.local_addresses.contains(&observed.source)
            || observed.priority == 0
            || seen_at <= slot.last_input
            || now.saturating_duration_since(seen_at) >= slot.core.master_down_interval()
        {
            return false;
        }
        let advert = synthetic_advert(slot, observed.priority, observed.interval);
        let slot = &mut self.slots[index];
        slot.xdp_rescues += 1;
        tracing::debug!(instance = %slot.spec.name, from = %observed.source, "master heard by XDP, not yet by the socket");
        let actions = slot.handle(
            seen_at,
            Input::Advert {
                src: observed.source,
                advert,
            },
        );
        self.perform(index, now, actions).await;
        true
    }

    /// A ring-buffer event: the election acts at once on what changed (priority 0, a
    /// new or re-prioritised master) instead of waiting for the socket.
    pub(super) async fn on_xdp_event(&mut self, now: Instant, event: AdvertEvent) {
        let Some(&index) = self.by_vrid.get(&(event.ifindex, event.vrid, event.family)) else {
            return;
        };
        let slot = &mut self.slots[index];
        if slot.local_addresses.contains(&event.source) {
            return;
        }
        slot.xdp_events += 1;
        let advert = synthetic_advert(slot, event.priority, event.interval);
        let seen_at = now
            .checked_sub(Duration::from_nanos(
                monotonic_now_ns().saturating_sub(event.seen_ns),
            ))
            .unwrap_or(now);
        let actions = slot.handle(
            seen_at,
            Input::Advert {
                src: event.source,
                advert,
            },
        );
        self.perform(index, now, actions).await;
    }

    /// Brings sync groups to agreement after whatever just happened: members follow a
    /// member that changed state (FAULT through [`Daemon::fault_reason`], MASTER and
    /// BACKUP through [`Input::Follow`]), and a group whose state changed runs its
    /// notify commands.
    pub(super) async fn settle_groups(&mut self, now: Instant) {
        if self.groups.is_empty() {
            return;
        }
        // Bounded: each round can only move members towards the group's state.
        for _ in 0..4 {
            let members: Vec<usize> = self.groups.iter().flat_map(|g| g.members.clone()).collect();
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
        for g in 0..self.groups.len() {
            let states: Vec<State> = self.groups[g]
                .members
                .iter()
                .map(|&m| self.slots[m].core.state())
                .collect();
            let state = if states.contains(&State::Fault) {
                NotifyState::Fault
            } else if !states.is_empty() && states.iter().all(|s| *s == State::Master) {
                NotifyState::Master
            } else if states.iter().all(|s| *s != State::Initialize) {
                NotifyState::Backup
            } else {
                continue;
            };
            if self.groups[g].state != Some(state) {
                self.groups[g].state = Some(state);
                tracing::info!(group = %self.groups[g].spec.name, state = state.name(), "sync group state");
                if !self.reloading {
                    let counters = Arc::new(NotifyCounters::default());
                    let tasks = notify::on_group_state(&self.groups[g].spec, state, &counters);
                    self.notify_tasks.extend(tasks);
                }
            }
        }
    }
}
