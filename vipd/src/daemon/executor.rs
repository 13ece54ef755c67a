//! The executor: performs the actions the core returns (adverts, VIP add/remove on the
//! VIP worker, gratuitous ARP / NA, XDP leases, notify scripts).

use super::*;

/// Gratuitous ARP schedule of one master (keepalived's garp_master_* semantics).
#[derive(Debug, Default)]
pub(super) struct GarpSchedule {
    /// Times at which one round of announcements (every VIP once) is due, earliest first.
    pub(super) rounds: Vec<Instant>,
    /// Next periodic refresh, when `garp_master_refresh` is set.
    pub(super) refresh_at: Option<Instant>,
    /// Announcements due but not sent yet: rounds are sent [`GARP_BUDGET`] frames per
    /// turn of the loop, so thousands of VIPs never hold up an advert.
    pub(super) backlog: usize,
    /// Index into the instance's VIPs of the next one to announce.
    pub(super) cursor: usize,
    /// When the backlog is to be worked on: the turn it was left in.
    pub(super) continue_at: Option<Instant>,
}

/// Most gratuitous ARPs / neighbour advertisements sent per turn of the main loop (a
/// millisecond or so), between which adverts and received packets are handled.
pub(super) const GARP_BUDGET: usize = 128;

impl GarpSchedule {
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.rounds
            .first()
            .copied()
            .into_iter()
            .chain(self.refresh_at)
            .chain(self.continue_at)
            .min()
    }
}

/// Address requests the VIP worker keeps in flight: enough to keep the kernel busy
/// while replies come back.
pub(super) const VIP_REQUESTS_IN_FLIGHT: usize = 64;

/// One batch of VIP changes for the [`vip_worker`]. A job with `done` set and no VIPs is a
/// barrier: its sender learns that everything queued before it is finished.
pub(super) struct VipJob {
    pub(super) index: usize,
    pub(super) generation: u64,
    pub(super) add: bool,
    pub(super) vips: Vec<(u32, config::VirtualAddress)>,
    pub(super) done: Option<tokio::sync::oneshot::Sender<()>>,
}

/// What a [`VipJob`] did, for the main loop.
pub(super) struct VipDone {
    pub(super) index: usize,
    pub(super) generation: u64,
    pub(super) add: bool,
    pub(super) failures: Vec<(IpAddr, String)>,
}

/// Starts the [`vip_worker`] on an OS thread of its own, with its own current-thread
/// runtime and its own rtnetlink connection; returns once the connection is open.
///
/// Why a thread: the kernel performs a netlink request inside the `sendmsg` that carries
/// it, under the RTNL lock, which every namespace's address changes share. One IPv6
/// add takes ~150 µs and more as an interface's multicast groups grow, and waits for
/// RTNL while another process (a peer's vipd releasing its VIPs, `ip`) holds it; the
/// rtnetlink connection sends every queued request in one poll. On the daemon's
/// thread that stalled the main loop for tens of milliseconds at a time, adverts
/// stopped and the backup took over. Here only this thread waits.
///
/// Its scheduling: one real-time priority below the main thread's `realtime_priority`
/// (which sends the adverts, and so always runs first), so a busy CPU cannot slow the
/// VIP changes down either (a stopping daemon hands its VIPs back within its stop
/// timeout; an ordinary thread behind two busy loops took seconds for 1 000 IPv6
/// VIPs). At `realtime_priority` 1 or 0 the worker is an ordinary thread: at the main
/// thread's own priority, SCHED_RR would share a CPU with it in 100 ms slices.
///
/// `realtime_priority` is the daemon's setting, shared so that a reload that changes it
/// moves the worker too (before its next job).
pub(super) fn spawn_vip_worker(
    realtime_priority: Arc<AtomicU8>,
    jobs: mpsc::UnboundedReceiver<VipJob>,
    done: mpsc::UnboundedSender<VipDone>,
) -> Result<std::thread::JoinHandle<()>, DaemonError> {
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Result<(), NetlinkError>>(1);
    let thread = std::thread::Builder::new()
        .name("vipd-vips".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready_tx.send(Err(NetlinkError::Connect(e)));
                    return;
                }
            };
            runtime.block_on(async move {
                match Netlink::connect() {
                    Ok(netlink) => {
                        let _ = ready_tx.send(Ok(()));
                        vip_worker(netlink, realtime_priority, jobs, done).await;
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            });
        })
        .map_err(|e| DaemonError::Netlink(NetlinkError::Connect(e)))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(thread),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(DaemonError::Netlink(NetlinkError::Connect(
            std::io::Error::other("the VIP worker thread stopped while starting"),
        ))),
    }
}

/// The VIP worker's SCHED_RR priority for the daemon's `realtime_priority`: one below
/// (0, an ordinary thread, where that would be 0 or share the main thread's priority).
pub(super) fn worker_priority(realtime_priority: u8) -> u8 {
    match realtime_priority {
        0 | 1 => 0,
        p => p - 1,
    }
}

/// Adds and removes VIPs over rtnetlink, one job after another so an instance's add and
/// a later removal can never swap; within a job many requests are in flight at once.
/// The main loop queues jobs and goes on sending adverts (see [`Daemon::queue_vips`]).
async fn vip_worker(
    netlink: Netlink,
    realtime_priority: Arc<AtomicU8>,
    mut jobs: mpsc::UnboundedReceiver<VipJob>,
    done: mpsc::UnboundedSender<VipDone>,
) {
    use futures_util::StreamExt as _;
    let mut applied = None;
    while let Some(job) = jobs.recv().await {
        let priority = worker_priority(realtime_priority.load(Ordering::Relaxed));
        if applied != Some(priority) {
            applied = Some(priority);
            if let Err(e) = crate::io::sched::set_realtime(priority) {
                tracing::debug!(priority, error = %e, "VIP worker: real-time scheduling refused");
            }
        }
        let add = job.add;
        let real = !job.vips.is_empty();
        let failures: Vec<(IpAddr, String)> = futures_util::stream::iter(job.vips)
            .map(|(dev_index, vip)| {
                let netlink = netlink.clone();
                async move {
                    let result = if add {
                        netlink
                            .add_address(
                                dev_index,
                                vip.address,
                                vip.prefix_len,
                                vip.label.as_deref(),
                            )
                            .await
                    } else {
                        netlink
                            .del_address(dev_index, vip.address, vip.prefix_len)
                            .await
                    };
                    result.err().map(|e| (vip.address, e.to_string()))
                }
            })
            .buffer_unordered(VIP_REQUESTS_IN_FLIGHT)
            .filter_map(std::future::ready)
            .collect()
            .await;
        if let Some(barrier) = job.done {
            let _ = barrier.send(());
        }
        if real {
            let _ = done.send(VipDone {
                index: job.index,
                generation: job.generation,
                add,
                failures,
            });
        }
    }
}

impl Daemon {
    /// Points the XDP program of each VIP's interface at this instance's lease clock
    /// (slot = instance index), answering ARP with that interface's MAC.
    pub(super) fn claim_leases(&mut self, index: usize) {
        let slot = &self.slots[index];
        for (dev_index, vip) in &slot.vips {
            let (Some(attachment), IpAddr::V4(vip)) = (self.xdp.get_mut(dev_index), vip.address)
            else {
                continue;
            };
            let mac = self.arp.get(dev_index).map(|a| a.mac()).unwrap_or_default();
            if let Err(e) = attachment.set_vip_clocked(vip, mac, index as u32) {
                tracing::warn!(instance = %slot.spec.name, %vip, error = %e, "writing the XDP ARP lease failed");
            }
        }
    }

    /// Renews (or, with `live` false, voids) the instance's lease clock: one map write
    /// per interface, however many VIPs. A void lease keeps the VIPs in the map, so the
    /// program drops ARP requests for them and this host's kernel cannot answer for a
    /// VIP it no longer owns.
    pub(super) fn set_lease_clock(&mut self, index: usize, live: bool) {
        let slot = &self.slots[index];
        let expires = if live {
            monotonic_now_ns().saturating_add(slot.lease_duration().as_nanos() as u64)
        } else {
            0
        };
        // Only IPv4 VIPs have leases (the XDP responder answers ARP; the kernel answers
        // neighbour solicitations for IPv6 VIPs once they are on the interface).
        let mut devices: Vec<u32> = slot
            .vips
            .iter()
            .filter(|(_, vip)| vip.address.is_ipv4())
            .map(|(dev, _)| *dev)
            .collect();
        devices.dedup();
        for dev_index in devices {
            if let Some(attachment) = self.xdp.get_mut(&dev_index)
                && let Err(e) = attachment.set_lease_clock(index as u32, expires)
                && let Verdict::Log { suppressed } = self.warnings.check(
                    Instant::now(),
                    (slot.spec.name.clone(), Repeated::LeaseRenewal),
                )
            {
                let what = Repeated::LeaseRenewal.message();
                tracing::warn!(instance = %slot.spec.name, error = %e, suppressed, "{what}");
            }
        }
    }

    /// Performs the core's actions in order.
    pub(super) async fn perform(&mut self, index: usize, now: Instant, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::SendAdvert(advert) => {
                    self.send_advert(index, &advert);
                    // Every advert a master sends renews its ARP leases.
                    let slot = &self.slots[index];
                    if advert.priority != 0 && slot.holds_vips && slot.acquiring.is_none() {
                        self.set_lease_clock(index, true);
                    }
                }
                Action::AcquireVips { accept } => {
                    if !accept {
                        tracing::debug!(instance = %self.slots[index].spec.name, "accept_mode off: traffic to the VIPs is not filtered (as keepalived without vrrp_strict)");
                    }
                    self.acquire_vips(index);
                }
                Action::ReleaseVips => self.release_vips(index),
                Action::Announce if self.slots[index].acquiring.is_some() => {
                    self.slots[index].announce_pending = true;
                }
                Action::Announce => self.start_garp(index, now),
                Action::StateChanged { from, to, reason } => {
                    let slot = &mut self.slots[index];
                    slot.last_change = Some(SystemTime::now());
                    *slot
                        .transitions_by_reason
                        .entry(reason_name(&reason))
                        .or_insert(0) += 1;
                    if to != State::Master {
                        slot.garp = GarpSchedule::default();
                    }
                    tracing::info!(
                        instance = %slot.spec.name,
                        interface = %slot.spec.interface,
                        vrid = slot.spec.virtual_router_id,
                        from = %state_name(from),
                        to = %state_name(to),
                        reason = ?reason,
                        priority = slot.core.effective_priority(),
                        "state change"
                    );
                    if from == State::Master
                        && to == State::Backup
                        && reason == crate::proto::action::Reason::HigherPriorityAdvert
                    {
                        // Beyond the RFC: one last advert at our priority as we yield.
                        // Neighbours may still send the VIPs' traffic to us (after a
                        // partition heals, say, our gratuitous ARPs are their latest
                        // news); the winner answers a lower-priority advert by
                        // announcing the VIPs again, so they come back to it at once.
                        let advert = self.slots[index]
                            .core
                            .advert_repr(self.slots[index].core.effective_priority());
                        self.send_advert(index, &advert);
                    }
                    if !self.reloading && reason != crate::proto::action::Reason::SyncGroup {
                        let follow = match (from, to) {
                            (_, State::Master) => Some(Follow::Master),
                            (State::Master, State::Backup) => Some(Follow::Backup),
                            _ => None,
                        };
                        if let (Some(follow), Some(group)) = (
                            follow,
                            self.groups.iter().find(|g| g.members.contains(&index)),
                        ) {
                            for &member in &group.members {
                                if member != index {
                                    self.follow_queue.push((member, follow));
                                }
                            }
                        }
                    }
                    let slot = &self.slots[index];
                    let notify_state = match to {
                        State::Master => Some(NotifyState::Master),
                        State::Backup => Some(NotifyState::Backup),
                        State::Fault => Some(NotifyState::Fault),
                        State::Initialize if from != State::Initialize => Some(NotifyState::Stop),
                        State::Initialize => None,
                    };
                    if let Some(state) = notify_state.filter(|_| !self.reloading) {
                        let tasks = notify::on_state(
                            &slot.spec,
                            state,
                            slot.core.effective_priority(),
                            self.mail.as_ref(),
                            &self.router_id,
                            &slot.notify,
                        );
                        self.notify_tasks.retain(|t| !t.is_finished());
                        self.notify_tasks.extend(tasks);
                    }
                }
            }
        }
    }

    pub(super) fn send_advert(&mut self, index: usize, advert: &AdvertRepr) {
        let slot = &mut self.slots[index];
        let mut buffer = vec![0u8; advert.buffer_len()];
        for destination in slot.destinations.clone() {
            let mut packet = Packet::new_unchecked(&mut buffer[..], slot.family());
            // The checksum covers the pseudo-header of this source and destination, which
            // the send socket uses as they are: the kernel need not compute it.
            let result = advert
                .emit(&mut packet, slot.primary, destination)
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|()| slot.tx.send(&buffer, destination));
            if let Err(e) = result {
                slot.send_errors += 1;
                if let Verdict::Log { suppressed } = self.warnings.check(
                    Instant::now(),
                    (slot.spec.name.clone(), Repeated::SendAdvert),
                ) {
                    let what = Repeated::SendAdvert.message();
                    tracing::warn!(instance = %slot.spec.name, %destination, error = %e, suppressed, "{what}");
                }
            }
        }
    }

    /// Queues adding (or removing) `vips` for slot `index` on the VIP worker; returns
    /// the job's generation. Never waits: a master with thousands of VIPs keeps sending
    /// adverts while the kernel adds them (IPv6 addresses cost the kernel ~150 µs each).
    pub(super) fn queue_vips(
        &mut self,
        index: usize,
        add: bool,
        vips: Vec<(u32, config::VirtualAddress)>,
    ) -> u64 {
        let slot = &mut self.slots[index];
        slot.vip_generation += 1;
        let job = VipJob {
            index,
            generation: slot.vip_generation,
            add,
            vips,
            done: None,
        };
        if self.vip_jobs.send(job).is_err() {
            tracing::error!(instance = %slot.spec.name, "the VIP worker has stopped; VIPs not changed");
        }
        slot.vip_generation
    }

    /// Waits until every VIP change queued so far is done.
    pub(super) async fn vips_settled(&self) {
        let (done, finished) = tokio::sync::oneshot::channel();
        let barrier = VipJob {
            index: usize::MAX,
            generation: 0,
            add: false,
            vips: Vec::new(),
            done: Some(done),
        };
        if self.vip_jobs.send(barrier).is_ok() {
            let _ = finished.await;
        }
    }

    /// A VIP job finished: count and log failures; a completed add claims the XDP
    /// leases and starts the announcements the core asked for meanwhile.
    pub(super) fn on_vips_changed(&mut self, now: Instant, done: VipDone) {
        let Some(slot) = self.slots.get_mut(done.index) else {
            return;
        };
        for (vip, error) in &done.failures {
            slot.vip_errors += 1;
            let what = if done.add {
                "adding VIP failed"
            } else {
                "removing VIP failed"
            };
            tracing::error!(instance = %slot.spec.name, %vip, error = %error, "{what}");
        }
        if !done.add || slot.acquiring != Some(done.generation) {
            return;
        }
        slot.acquiring = None;
        if !slot.holds_vips {
            return;
        }
        self.claim_leases(done.index);
        self.set_lease_clock(done.index, true);
        if std::mem::take(&mut self.slots[done.index].announce_pending)
            && self.slots[done.index].core.state() == State::Master
        {
            self.start_garp(done.index, now);
        }
    }

    pub(super) fn acquire_vips(&mut self, index: usize) {
        let vips = self.slots[index].vips.clone();
        let generation = self.queue_vips(index, true, vips);
        let slot = &mut self.slots[index];
        slot.holds_vips = true;
        slot.acquiring = Some(generation);
    }

    pub(super) fn release_vips(&mut self, index: usize) {
        let vips = self.slots[index].vips.clone();
        self.queue_vips(index, false, vips);
        let slot = &mut self.slots[index];
        slot.holds_vips = false;
        slot.acquiring = None;
        slot.announce_pending = false;
        self.set_lease_clock(index, false);
    }

    /// A new master announces its VIPs: a burst of `garp_master_repeat` rounds
    /// `garp_interval` apart now, the same again after `garp_master_delay`, and a round
    /// every `garp_master_refresh` while master.
    pub(super) fn start_garp(&mut self, index: usize, now: Instant) {
        let slot = &mut self.slots[index];
        let garp = &slot.spec.garp;
        let repeat = garp.master_repeat.max(1);
        let mut rounds = Vec::new();
        for burst_start in [
            Some(now),
            (!garp.master_delay.is_zero()).then(|| now + garp.master_delay),
        ]
        .into_iter()
        .flatten()
        {
            for i in 0..repeat {
                rounds.push(burst_start + garp.interval * i);
            }
        }
        rounds.sort();
        slot.garp = GarpSchedule {
            rounds,
            refresh_at: (!garp.master_refresh.is_zero()).then(|| now + garp.master_refresh),
            ..GarpSchedule::default()
        };
        // Directed ARP to the gateways (who-has GW tell VIP): for neighbours that ignore
        // gratuitous ARP, such as the upstream firewall in the seed setup.
        for _ in 0..garp.gateway_count {
            for gateway in &garp.gateways {
                let IpAddr::V4(gateway) = *gateway else {
                    continue;
                };
                for (dev_index, vip) in &slot.vips {
                    let (Some(sender), IpAddr::V4(vip)) = (self.arp.get(dev_index), vip.address)
                    else {
                        continue;
                    };
                    if let Err(e) = sender.directed(vip, gateway) {
                        tracing::warn!(instance = %slot.spec.name, %gateway, error = %e, "directed ARP failed");
                    }
                }
            }
        }
        self.run_garp(index, now);
    }

    pub(super) fn run_garp(&mut self, index: usize, now: Instant) {
        let slot = &mut self.slots[index];
        let mut due = 0;
        while slot.garp.rounds.first().is_some_and(|t| *t <= now) {
            slot.garp.rounds.remove(0);
            due += 1;
        }
        if let Some(refresh) = slot.garp.refresh_at.filter(|t| *t <= now) {
            due += 1;
            slot.garp.refresh_at = Some(refresh.max(now) + slot.spec.garp.master_refresh);
        }
        if slot.core.state() != State::Master || slot.vips.is_empty() {
            slot.garp.backlog = 0;
            slot.garp.continue_at = None;
            return;
        }
        slot.garp.backlog += due * slot.vips.len();
        let turn = slot.garp.backlog.min(GARP_BUDGET);
        for _ in 0..turn {
            let (dev_index, vip) = &slot.vips[slot.garp.cursor % slot.vips.len()];
            slot.garp.cursor = (slot.garp.cursor + 1) % slot.vips.len();
            let Some(sender) = self.arp.get(dev_index) else {
                continue;
            };
            // IPv4 VIPs get gratuitous ARP, IPv6 VIPs an unsolicited NA (RFC 5798 §8.2).
            let (result, sent, what) = match vip.address {
                IpAddr::V4(v4) => (
                    sender.gratuitous(v4),
                    &mut slot.garps_sent,
                    "gratuitous ARP",
                ),
                IpAddr::V6(v6) => (
                    sender.neighbour_advert(v6),
                    &mut slot.nas_sent,
                    "neighbour advertisement",
                ),
            };
            match result {
                Ok(()) => *sent += 1,
                Err(e) => {
                    if let Verdict::Log { suppressed } = self
                        .warnings
                        .check(now, (slot.spec.name.clone(), Repeated::Announcement))
                    {
                        tracing::warn!(instance = %slot.spec.name, vip = %vip.address, error = %e, suppressed, "{what} failed")
                    }
                }
            }
        }
        slot.garp.backlog -= turn;
        slot.garp.continue_at = (slot.garp.backlog > 0).then_some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::worker_priority;

    /// The VIP worker never runs at or above the thread that sends the adverts: below it,
    /// or an ordinary thread.
    #[test]
    fn vip_worker_runs_below_the_advert_thread() {
        for main in 0..=99u8 {
            let worker = worker_priority(main);
            assert!(worker == 0 || worker < main, "main {main}, worker {worker}");
        }
        assert_eq!(worker_priority(10), 9, "the default stays real-time");
    }
}
