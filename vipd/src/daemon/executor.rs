//! The executor: performs the actions the core returns (adverts, VIP add/remove on the
//! VIP worker, gratuitous ARP / NA, XDP leases, notify scripts).

use super::*;
use crate::proto::announce::AnnouncePolicy;

/// The announcement policy of an instance's settings.
pub(super) fn announce_policy(garp: &config::GarpSettings) -> AnnouncePolicy {
    AnnouncePolicy {
        repeat: garp.master_repeat,
        interval: garp.interval,
        delay: garp.master_delay,
        refresh: garp.master_refresh,
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

/// The link-layer address that answers for the VIPs of a master we yielded to (its
/// MAC), resolved for [`Daemon::announce_for`].
pub(super) struct ResolvedMaster {
    pub(super) index: usize,
    pub(super) master: IpAddr,
    pub(super) mac: Option<[u8; 6]>,
}

/// Announcements for the master an instance yielded to, still to send.
#[derive(Debug)]
pub(super) struct AnnounceForBacklog {
    /// The master they are for; dropped if the instance stops following it.
    master: IpAddr,
    /// The MAC that answered for its VIP.
    mac: [u8; 6],
    /// Frames still to send, over the VIPs on the instance's interface.
    frames: Backlog,
    /// When to continue: the turn of the loop it was left in.
    pub(super) due: Instant,
}

/// How long resolving who holds a VIP now may take: the kernel's default three probes a
/// second apart (a winner that has just preempted answers once its own add is done).
const RESOLVE_MASTER_TIMEOUT: Duration = Duration::from_secs(3);

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
    /// (slot = instance index), answering ARP (IPv4) and neighbour solicitations (IPv6)
    /// with that interface's MAC.
    pub(super) fn claim_leases(&mut self, index: usize) {
        let slot = &self.slots[index];
        for (dev_index, vip) in &slot.vips {
            let Some(attachment) = self.xdp.get_mut(dev_index) else {
                continue;
            };
            let vip = vip.address;
            let mac = self.arp.get(dev_index).map(|a| a.mac()).unwrap_or_default();
            if let Err(e) = attachment.set_vip_clocked(vip, mac, index as u32) {
                tracing::warn!(instance = %slot.spec.name, %vip, error = %e, "writing the XDP VIP lease failed");
            }
        }
    }

    /// Renews (or, with `live` false, voids) the instance's lease clock: one map write
    /// per interface, however many VIPs. A void lease keeps the VIPs in the map, so the
    /// program drops ARP requests for them and this host's kernel cannot answer for a
    /// VIP it no longer owns.
    pub(super) fn set_lease_clock(&mut self, index: usize, live: bool) {
        let expires = if live {
            let lease = self.slots[index].lease_duration().as_nanos();
            monotonic_now_ns().saturating_add(u64::try_from(lease).unwrap_or(u64::MAX))
        } else {
            0
        };
        self.write_lease_clock(index, expires);
    }

    /// A former master handing over keeps answering ARP for its VIPs until the core's
    /// release deadline (plus one lease, so the release, which voids the lease, is what
    /// ends it), though it sends no adverts that would renew the lease meanwhile.
    fn hold_lease_until(&mut self, index: usize, until: Instant) {
        let left =
            until.saturating_duration_since(Instant::now()) + self.slots[index].lease_duration();
        let expires =
            monotonic_now_ns().saturating_add(u64::try_from(left.as_nanos()).unwrap_or(u64::MAX));
        self.write_lease_clock(index, expires);
    }

    /// Writes the instance's lease clock (expiry in CLOCK_MONOTONIC ns; 0 = void) on
    /// every interface holding one of its VIPs (both families share it).
    fn write_lease_clock(&mut self, index: usize, expires: u64) {
        let slot = &self.slots[index];
        let mut devices: Vec<u32> = slot.vips.iter().map(|(dev, _)| *dev).collect();
        devices.sort_unstable();
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

    /// Performs the core's actions in order, then reports back what the core must hear
    /// of them (adverts sent or not), performing what that brings, until nothing is left.
    pub(super) async fn perform(&mut self, index: usize, now: Instant, actions: Vec<Action>) {
        let acted = !actions.is_empty();
        let mut reports = self.perform_actions(index, now, actions).await;
        // Bounded: a report yields at most a Fault, whose priority-0 advert reports nothing.
        while !reports.is_empty() {
            let mut next = Vec::new();
            for report in reports {
                let actions = self.slots[index].handle(now, report);
                next.extend(self.perform_actions(index, now, actions).await);
            }
            reports = next;
        }
        // Leaving Master (stopping or yielding), the core keeps the VIPs for the
        // successor until a deadline: so does the ARP lease.
        if acted
            && self.slots[index].holds_vips
            && !self.slots[index].core.successor_answers()
            && let Some(until) = self.slots[index].core.release_deadline()
        {
            self.hold_lease_until(index, until);
        }
    }

    /// Performs the core's actions in order; returns the reports on them for the core.
    async fn perform_actions(
        &mut self,
        index: usize,
        now: Instant,
        actions: Vec<Action>,
    ) -> Vec<Input> {
        let mut reports = Vec::new();
        for action in actions {
            match action {
                Action::SendAdvert(advert) => {
                    let ok = self.send_advert(index, &advert);
                    // The core faults a master whose adverts do not leave.
                    if advert.priority != 0 {
                        reports.push(Input::AdvertSent { ok });
                    }
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
                Action::ReleaseVips => {
                    self.release_vips(index);
                    self.flush_notify(index);
                }
                // The core announces only once the VIPs are added (Input::VipsAdded).
                Action::Announce => {
                    self.start_garp(index, now);
                    self.flush_notify(index);
                }
                Action::AnnounceFor { master } => self.resolve_for_announcement(index, master),
                Action::StateChanged { from, to, reason } => {
                    let slot = &mut self.slots[index];
                    slot.last_change = Some(SystemTime::now());
                    *slot
                        .transitions_by_reason
                        .entry(reason_name(&reason))
                        .or_insert(0) += 1;
                    if to != State::Master {
                        slot.garp.stop();
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
                    if !self.reloading {
                        self.queue_follows(index, from, to, &reason);
                    }
                    // Scripts see every transition, in order: one held back is run
                    // before the next.
                    self.flush_notify(index);
                    let notify_state = match to {
                        State::Master => Some(NotifyState::Master),
                        State::Backup => Some(NotifyState::Backup),
                        State::Fault => Some(NotifyState::Fault),
                        State::Initialize if from != State::Initialize => Some(NotifyState::Stop),
                        State::Initialize => None,
                    };
                    if let Some(state) = notify_state.filter(|_| !self.reloading) {
                        let slot = &mut self.slots[index];
                        slot.pending_notify = Some((state, slot.core.effective_priority()));
                        // Held back while the VIPs are being added (a new master) or
                        // handed over (a stopping one); see `Slot::pending_notify`.
                        let holding = match state {
                            NotifyState::Master => slot.core.awaiting_vips(),
                            NotifyState::Stop => slot.core.release_deadline().is_some(),
                            _ => false,
                        };
                        if !holding {
                            self.flush_notify(index);
                        }
                    }
                }
            }
        }
        reports
    }

    /// Runs the notify commands (and mail) held back for the instance, if any.
    pub(super) fn flush_notify(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        let Some((state, priority)) = slot.pending_notify.take() else {
            return;
        };
        let tasks = notify::on_state(
            &slot.spec,
            state,
            priority,
            self.mail.as_ref(),
            &self.router_id,
            &slot.notify,
        );
        self.notify_tasks.retain(|t| !t.is_finished());
        self.notify_tasks.extend(tasks);
    }

    /// Sends `advert` to each destination; whether it reached at least one (a unicast
    /// peer that cannot be reached must not fault a master the others hear).
    pub(super) fn send_advert(&mut self, index: usize, advert: &AdvertRepr) -> bool {
        let slot = &mut self.slots[index];
        let mut sent = false;
        let mut buffer = vec![0u8; advert.buffer_len()];
        for destination in slot.destinations.clone() {
            let mut packet = Packet::new_unchecked(&mut buffer[..], slot.family());
            // The checksum covers the pseudo-header of this source and destination (for
            // IPv4 only if configured: RFC 9568 §5.2.8 left it out), which the send
            // socket uses as they are: the kernel need not compute it.
            let result = advert
                .emit_as(
                    &mut packet,
                    slot.primary,
                    destination,
                    slot.spec.v3_checksum,
                )
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|()| match (slot.advert_via, slot.primary, destination) {
                    (Some(via), IpAddr::V6(source), IpAddr::V6(group)) => self
                        .arp
                        .get(&via)
                        .ok_or_else(|| std::io::Error::other("the VMAC has no packet socket"))
                        .and_then(|sender| {
                            sender.ipv6_multicast(source, group, wire::IP_PROTOCOL, &buffer)
                        }),
                    _ => slot.tx.send(&buffer, destination),
                });
            match result {
                Ok(()) => sent = true,
                Err(e) => {
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
        sent
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

    /// A VIP job finished: count and log failures; a completed add is reported to the
    /// core (a master that could not add its VIPs goes to FAULT; one that could
    /// announces them now), and if it succeeded claims the XDP leases.
    pub(super) async fn on_vips_changed(&mut self, now: Instant, done: VipDone) {
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
        let ok = done.failures.is_empty();
        if ok {
            // Leases first: the core answers with the announcement.
            self.claim_leases(done.index);
            self.set_lease_clock(done.index, true);
        }
        let actions = self.slots[done.index].handle(now, Input::VipsAdded { ok });
        self.perform(done.index, now, actions).await;
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
        self.set_lease_clock(index, false);
    }

    /// The core yielded to `master` and asks to announce the VIPs for it. Resolve, in
    /// the background, the link-layer address that answers for the instance's first VIP
    /// on its interface (the kernel ARPs or solicits it): that is the winner's MAC (or
    /// its virtual MAC, for a peer that uses one), and it answers only once the winner
    /// holds the VIP, so neighbours are never sent to a router still adding it. Then
    /// [`Daemon::announce_for`].
    pub(super) fn resolve_for_announcement(&mut self, index: usize, master: IpAddr) {
        let netlink = self.netlink.clone();
        let slot = &self.slots[index];
        let ifindex = slot.ifindex;
        let Some(vip) = slot
            .vips
            .iter()
            .find(|(dev_index, _)| *dev_index == ifindex)
            .map(|(_, vip)| vip.address)
        else {
            return;
        };
        let resolved = self.resolved_tx.clone();
        tokio::spawn(async move {
            let mac = match netlink
                .resolve_neighbour(ifindex, vip, RESOLVE_MASTER_TIMEOUT)
                .await
            {
                Ok(mac) => mac,
                Err(e) => {
                    tracing::warn!(%master, %vip, error = %e, "resolving who holds the VIP failed");
                    None
                }
            };
            let _ = resolved.send(ResolvedMaster { index, master, mac });
        });
    }

    /// Starts announcing the instance's VIPs on its own interface as being at the
    /// resolved MAC, if the instance still follows that master. VIPs on other interfaces
    /// are left alone: the MAC is the one on this link. Sent [`FRAMES_PER_TURN`](crate::proto::announce::FRAMES_PER_TURN) frames per
    /// turn of the loop ([`Daemon::continue_announce_for`]), as a master's own rounds.
    ///
    /// That the master answers for the VIPs is what a former master still keeping them for
    /// it waits for: the core hears it ([`Input::SuccessorHolds`]) and lets them go.
    pub(super) async fn announce_for(&mut self, now: Instant, resolved: ResolvedMaster) {
        let Some(slot) = self.slots.get_mut(resolved.index) else {
            return;
        };
        if slot.retired || !announces_for(slot, resolved.master) {
            return;
        }
        let Some(mac) = resolved.mac else {
            tracing::warn!(instance = %slot.spec.name, master = %resolved.master, "nobody answered for the VIP; neighbours keep our MAC until they re-probe");
            return;
        };
        let on_link = slot
            .vips
            .iter()
            .filter(|(dev_index, _)| *dev_index == slot.ifindex)
            .count();
        tracing::info!(instance = %slot.spec.name, master = %resolved.master, mac = %crate::cli::format_mac(mac), "announcing the VIPs at the new master's MAC");
        slot.announce_for = Some(AnnounceForBacklog {
            master: resolved.master,
            mac,
            frames: Backlog::new(on_link * slot.spec.garp.master_repeat.max(1) as usize),
            due: now,
        });
        self.continue_announce_for(resolved.index, now);
        let actions = self.slots[resolved.index].handle(
            now,
            Input::SuccessorHolds {
                master: resolved.master,
            },
        );
        // The successor answers ARP for the VIPs now; so must nobody else, or a
        // neighbour asking during the linger could take our MAC, and after the release
        // find nobody there. The kernel addresses stay (traffic still on its way to us is
        // answered); the void lease makes the XDP program drop ARP requests for them.
        if self.slots[resolved.index].core.successor_answers()
            && self.slots[resolved.index].holds_vips
        {
            self.set_lease_clock(resolved.index, false);
        }
        self.perform(resolved.index, now, actions).await;
    }

    /// Sends the next [`FRAMES_PER_TURN`](crate::proto::announce::FRAMES_PER_TURN) announcements of [`Daemon::announce_for`], unless
    /// the instance no longer follows that master.
    pub(super) fn continue_announce_for(&mut self, index: usize, now: Instant) {
        let slot = &mut self.slots[index];
        let Some(master) = slot.announce_for.as_ref().map(|b| b.master) else {
            return;
        };
        let Some(sender) = self.arp.get(&slot.ifindex) else {
            slot.announce_for = None;
            return;
        };
        if !announces_for(slot, master) {
            slot.announce_for = None;
            return;
        }
        let Some(backlog) = slot.announce_for.as_mut() else {
            return;
        };
        let on_link: Vec<IpAddr> = slot
            .vips
            .iter()
            .filter(|(dev_index, _)| *dev_index == slot.ifindex)
            .map(|(_, vip)| vip.address)
            .collect();
        for vip in backlog.frames.take_turn(on_link.len()) {
            let Some(vip) = on_link.get(vip) else {
                break;
            };
            let result = match *vip {
                IpAddr::V4(v4) => sender.gratuitous_for(v4, backlog.mac),
                IpAddr::V6(v6) => sender.neighbour_advert_for(v6, backlog.mac),
            };
            match result {
                Ok(()) => slot.announced_for_master += 1,
                Err(e) => {
                    tracing::warn!(instance = %slot.spec.name, %vip, error = %e, "announcing for the new master failed")
                }
            }
        }
        backlog.due = now;
        if backlog.frames.is_empty() {
            slot.announce_for = None;
        }
    }

    /// A new master announces its VIPs (the schedule is [`AnnounceSchedule`]'s), and
    /// asks its gateways directly (who-has GW tell VIP, or for IPv6 a neighbour
    /// solicitation for GW from VIP, `garp_gateway_count` times): for
    /// neighbours that ignore gratuitous ARP, such as the upstream firewall in the seed
    /// setup.
    pub(super) fn start_garp(&mut self, index: usize, now: Instant) {
        let slot = &mut self.slots[index];
        let garp = &slot.spec.garp;
        slot.garp = AnnounceSchedule::start(now, &announce_policy(garp));
        for _ in 0..garp.gateway_count {
            for gateway in &garp.gateways {
                for (dev_index, vip) in &slot.vips {
                    let Some(sender) = self.arp.get(dev_index) else {
                        continue;
                    };
                    // IPv6: a neighbour solicitation from the VIP with our link-layer
                    // address, which the gateway takes in (RFC 4861 §7.2.3).
                    let result = match (vip.address, *gateway) {
                        (IpAddr::V4(vip), IpAddr::V4(gateway)) => sender.directed(vip, gateway),
                        (IpAddr::V6(vip), IpAddr::V6(gateway)) => {
                            sender.directed_solicitation(vip, gateway)
                        }
                        _ => continue,
                    };
                    if let Err(e) = result {
                        tracing::warn!(instance = %slot.spec.name, %gateway, error = %e, "directed ARP / neighbour solicitation failed");
                    }
                }
            }
        }
        self.run_garp(index, now);
    }

    /// Sends the announcements due now (a turn's worth at most).
    pub(super) fn run_garp(&mut self, index: usize, now: Instant) {
        let slot = &mut self.slots[index];
        if slot.core.state() != State::Master {
            slot.garp.stop();
            return;
        }
        let policy = announce_policy(&slot.spec.garp);
        for vip in slot.garp.due(now, &policy, slot.vips.len()) {
            let (dev_index, vip) = &slot.vips[vip];
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
    }
}

/// Whether `slot` still speaks for `master`: it follows it as a Backup, or it is still
/// handing its VIPs over (stopping, or yielding) to it.
fn announces_for(slot: &Slot, master: IpAddr) -> bool {
    let core = &slot.core;
    core.release_deadline().is_some()
        || (core.state() == State::Backup && core.master_address() == Some(master))
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
