//! Preparing instances: interface and address look-ups, stale-VIP clean-up, send and
//! receive sockets, XDP attachment, interface locks, trackers and sync groups.

use super::*;

pub(super) fn spawn_xdp_events(mut reader: AdvertEvents, queue: mpsc::Sender<AdvertEvent>) {
    tokio::spawn(async move {
        loop {
            match reader.next().await {
                Ok(event) => {
                    if queue.send(event).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading XDP advert events failed");
                    return;
                }
            }
        }
    });
}

pub(super) fn spawn_receiver(
    socket: RxSocket,
    ifindex: u32,
    queue: mpsc::Sender<Received>,
    drops: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        loop {
            match socket.recv(&mut buf).await {
                Ok(datagram) => {
                    let packet = Received { ifindex, datagram };
                    if queue.try_send(packet).is_err() {
                        drops.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    tracing::warn!(ifindex, error = %e, "VRRP receive failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
}

impl Daemon {
    /// Resolves an instance's interface and addresses, opens its send socket and removes
    /// VIPs a crashed earlier run left behind.
    pub(super) async fn prepare(
        &mut self,
        spec: &InstanceSpec,
        cleanup_stale: bool,
    ) -> Result<Slot, DaemonError> {
        let setup = |message: String| DaemonError::Setup {
            instance: spec.name.clone(),
            message,
        };
        self.lock_interface(&spec.interface)?;
        for vip in &spec.virtual_addresses {
            self.lock_interface(&vip.dev)?;
        }
        let ifindex = self.netlink.link_index(&spec.interface).await?;
        // The VIPs' interface (config validation made it their `dev`), created before
        // the VIPs are looked up on it.
        let vmac_index = match &spec.vmac {
            Some(vmac) => {
                let vmac_spec = crate::io::vmac::VmacSpec {
                    name: &vmac.name,
                    parent: &spec.interface,
                    parent_index: ifindex,
                    mac: wire::virtual_router_mac(wire_family(spec.family), spec.virtual_router_id),
                    ipv4: spec.family == AddressFamily::V4,
                };
                let index = self
                    .vmacs
                    .ensure(&self.netlink, vmac_spec)
                    .await
                    .map_err(|e| setup(format!("setting up VMAC {}: {e}", vmac.name)))?;
                tracing::info!(instance = %spec.name, vmac = %vmac.name, xmit_base = vmac.xmit_base, "VMAC up");
                Some(index)
            }
            None => None,
        };
        let mut links = HashMap::new();
        for tracked in &spec.track_interfaces {
            let index = self.netlink.link_index(&tracked.name).await?;
            let link = TrackedLink {
                name: tracked.name.clone(),
                up: self.netlink.link_is_up(&tracked.name).await?,
                weight: i32::from(tracked.weight),
            };
            links.insert(index, link);
        }
        // The instance's own interface always counts with weight 0 (down = FAULT), even
        // when track_interface lists it with a weight.
        let own = TrackedLink {
            name: spec.interface.clone(),
            up: self.netlink.link_is_up(&spec.interface).await?,
            weight: 0,
        };
        links.insert(ifindex, own);
        let vip_addresses: Vec<IpAddr> = spec.virtual_addresses.iter().map(|v| v.address).collect();
        let existing = self.netlink.addresses(ifindex).await?;
        let local_addresses: Vec<IpAddr> = existing
            .iter()
            .map(|a| a.address)
            .filter(|a| !vip_addresses.contains(a))
            .collect();
        // Interfaces still without the IPv6 link-local address the instance sends from.
        let mut awaiting_link_local = Vec::new();
        // Config validation keeps unicast_src_ip in the instance's family.
        let primary = match (spec.unicast_src_ip, spec.family) {
            (Some(address), _) => address,
            (None, AddressFamily::V4) => local_addresses
                .iter()
                .copied()
                .find(|a| a.is_ipv4() && !a.is_loopback())
                .ok_or_else(|| {
                    setup(format!(
                        "{} has no IPv4 address to send adverts from: add one, or set unicast_src_ip",
                        spec.interface
                    ))
                })?,
            // RFC 5798 §5.1.2.1: IPv6 adverts come from the link-local address.
            (None, AddressFamily::V6) => match link_local(&existing) {
                Some(address) => IpAddr::V6(address),
                None => {
                    // The kernel adds it once the link is up with carrier (a link down
                    // at boot): wait in FAULT for it rather than refuse to start. Until
                    // then the address it will most likely get stands in.
                    awaiting_link_local.push(ifindex);
                    let mac = self.netlink.link_mac(&spec.interface).await?;
                    tracing::warn!(instance = %spec.name, interface = %spec.interface, "no IPv6 link-local address yet to send adverts from: the instance waits in FAULT until the kernel adds one (link up, with carrier and IPv6 enabled)");
                    IpAddr::V6(eui64_link_local(mac))
                }
            },
        };

        // Each VIP interface once (10 000 VIPs usually share one or two).
        let mut dev_indexes: HashMap<&str, u32> =
            HashMap::from([(spec.interface.as_str(), ifindex)]);
        let mut vips = Vec::with_capacity(spec.virtual_addresses.len());
        // L3 mode: the addresses are announced over BGP (`daemon::l3`), never added to
        // the interface, so the VRRP side has none to add, lease or announce by ARP.
        let l2_addresses = spec
            .virtual_addresses
            .iter()
            .filter(|_| spec.announce.is_none());
        for vip in l2_addresses {
            let dev_index = match dev_indexes.get(vip.dev.as_str()) {
                Some(&index) => index,
                None => {
                    let index = self.netlink.link_index(&vip.dev).await?;
                    dev_indexes.insert(&vip.dev, index);
                    index
                }
            };
            vips.push((dev_index, vip.clone()));
        }
        // Each VIP interface's addresses, listed once, and its announcement socket.
        let mut present: HashMap<(u32, IpAddr), Vec<u8>> = HashMap::new();
        for (&dev, &dev_index) in &dev_indexes {
            let addresses = if dev_index == ifindex {
                existing.clone()
            } else {
                self.netlink.addresses(dev_index).await?
            };
            let needs_v6 = vips
                .iter()
                .any(|(index, vip)| *index == dev_index && vip.address.is_ipv6());
            let needs_arp = vips.iter().any(|(index, _)| *index == dev_index);
            if needs_arp
                && let std::collections::hash_map::Entry::Vacant(e) = self.arp.entry(dev_index)
            {
                let mac = self.netlink.link_mac(dev).await?;
                let sender =
                    ArpSender::open(dev_index, mac).map_err(|source| DaemonError::Socket {
                        instance: spec.name.clone(),
                        what: format!("opening an ARP socket on {dev}"),
                        source,
                    })?;
                e.insert(sender);
            }
            // Neighbour advertisements leave from the VIP interface's link-local address;
            // a VMAC has none of its own (`io::vmac`) and uses its parent's.
            if let (true, Some(sender)) = (needs_v6, self.arp.get_mut(&dev_index)) {
                let parent_link_local = (Some(dev_index) == vmac_index)
                    .then(|| link_local(&existing))
                    .flatten();
                match link_local(&addresses).or(parent_link_local) {
                    Some(source) => sender.set_link_local(source),
                    // As for the advert source above: wait in FAULT for it.
                    None if !awaiting_link_local.contains(&dev_index) => {
                        tracing::warn!(instance = %spec.name, %dev, "no IPv6 link-local address yet to send neighbour advertisements from: the instance waits in FAULT until the kernel adds one");
                        awaiting_link_local.push(dev_index);
                    }
                    None => {}
                }
            }
            for address in addresses {
                present
                    .entry((dev_index, address.address))
                    .or_default()
                    .push(address.prefix_len);
            }
        }
        // A crashed earlier run may have left our VIPs on the interface. We are not master
        // yet (the election below decides), so none of them should be there now. Delete
        // with the prefix the kernel has: the address may have been added with another
        // one (by hand, or by an earlier config), and the kernel matches both. Many
        // requests in flight, as the VIP worker adds them.
        if cleanup_stale {
            let stale: Vec<(u32, &config::VirtualAddress, u8)> = vips
                .iter()
                .flat_map(|(dev_index, vip)| {
                    present
                        .get(&(*dev_index, vip.address))
                        .into_iter()
                        .flatten()
                        .map(move |&prefix_len| (*dev_index, vip, prefix_len))
                })
                .collect();
            use futures_util::StreamExt as _;
            let netlink = self.netlink.clone();
            let results: Vec<Result<(), NetlinkError>> = futures_util::stream::iter(stale)
                .map(|(dev_index, vip, prefix_len)| {
                    tracing::warn!(instance = %spec.name, vip = %vip.address, prefix_len, dev = %vip.dev, "removing stale VIP left by an earlier run");
                    let netlink = netlink.clone();
                    async move { netlink.del_address(dev_index, vip.address, prefix_len).await }
                })
                .buffer_unordered(VIP_REQUESTS_IN_FLIGHT)
                .collect()
                .await;
            results.into_iter().collect::<Result<(), _>>()?;
        }

        // RFC 9568 §7.2: "Set the source MAC address to the Virtual Router MAC Address":
        // with a VMAC, adverts leave from it, unless vmac_xmit_base keeps them on the
        // parent (keepalived's option, for unicast peers and switches that must not see
        // the virtual MAC before a failover). Received adverts are read on the parent
        // either way: multicast reaches it whichever MAC sent it.
        // IPv6 adverts need a link-local source (RFC 9568 §5.1.2.1), which only the
        // parent has, and the kernel sends a link-local source only from the interface
        // holding it: they are written whole (Ethernet, IPv6, VRRP) to the VMAC's packet
        // socket instead (`advert_via`). Without that the virtual MAC appeared on the
        // wire only in announcements, and a switch that last saw it from the old master
        // (its MLD leave as it dropped the VIP) kept sending clients there.
        let advert_via = match (&spec.vmac, vmac_index) {
            (Some(vmac), Some(index)) if !vmac.xmit_base && spec.family == AddressFamily::V6 => {
                Some(index)
            }
            _ => None,
        };
        let (tx_interface, tx_index) = match (&spec.vmac, vmac_index) {
            (Some(vmac), Some(index)) if !vmac.xmit_base && spec.family == AddressFamily::V4 => {
                (vmac.name.as_str(), index)
            }
            _ => (spec.interface.as_str(), ifindex),
        };
        let tx = TxSocket::open(tx_interface, tx_index, primary).map_err(|source| {
            DaemonError::Socket {
                instance: spec.name.clone(),
                what: format!("opening the VRRP send socket on {tx_interface} from {primary}"),
                source,
            }
        })?;
        let family = wire::AddressFamily::of(primary);
        let destinations = if spec.unicast_peers.is_empty() {
            vec![vrrp_group(family)]
        } else {
            spec.unicast_peers
                .iter()
                .copied()
                .filter(|p| wire::AddressFamily::of(*p) == family)
                .collect()
        };

        let core_config = core_config(spec, primary);
        let core = Instance::new(core_config).map_err(|source| DaemonError::Core {
            instance: spec.name.clone(),
            source,
        })?;
        let mut local_addresses = local_addresses;
        if !local_addresses.contains(&primary) {
            local_addresses.push(primary);
        }
        Ok(Slot {
            spec: spec.clone(),
            core,
            ifindex,
            primary,
            tx,
            destinations,
            advert_via,
            vips,
            local_addresses,
            rx: RxCounters::default(),
            garp: AnnounceSchedule::default(),
            holds_vips: false,
            vip_generation: 0,
            acquiring: None,
            last_change: None,
            send_errors: 0,
            adverts_late: 0,
            advert_late_max_us: 0,
            vip_errors: 0,
            garps_sent: 0,
            nas_sent: 0,
            announced_for_master: 0,
            announce_for: None,
            links,
            notify: Arc::new(NotifyCounters::default()),
            last_input: Instant::now(),
            xdp_rescues: 0,
            xdp_events: 0,
            retired: false,
            transitions_by_reason: Default::default(),
            pending_notify: None,
            awaiting_link_local,
        })
    }

    /// Attaches XDP to every interface an instance wants it on, and watches each
    /// instance's VRID there. `auto` falls back to no XDP with one warning.
    pub(super) async fn attach_xdp(&mut self, indexes: &[usize]) -> Result<(), DaemonError> {
        let (pin, log, events) = (self.pin.clone(), self.xdp_log, self.xdp_tx.clone());
        for &index in indexes {
            let (ifindex, interface, mode) = {
                let slot = &self.slots[index];
                (slot.ifindex, slot.spec.interface.clone(), slot.spec.xdp)
            };
            let mode = match mode {
                config::XdpMode::Off => continue,
                config::XdpMode::Auto => AttachMode::Auto,
                config::XdpMode::Native => AttachMode::Native,
                config::XdpMode::Generic => AttachMode::Generic,
            };
            if let std::collections::hash_map::Entry::Vacant(entry) = self.xdp.entry(ifindex) {
                let options = AttachOptions {
                    mode,
                    log,
                    pin: Some(pin.clone()),
                    lb: self.lb.is_some(),
                };
                match XdpAttachment::attach_with(&interface, &options) {
                    Ok(mut attachment) => {
                        tracing::info!(%interface, mode = %attachment.mode(), taken_over = attachment.taken_over(), "XDP attached");
                        match attachment.take_events() {
                            Ok(reader) => spawn_xdp_events(reader, events.clone()),
                            Err(e) => {
                                tracing::warn!(%interface, error = %e, "no XDP advert events")
                            }
                        }
                        if log {
                            match attachment.take_logger() {
                                Ok(logger) => {
                                    tokio::spawn(logger.run());
                                }
                                Err(e) => tracing::warn!(%interface, error = %e, "no XDP log"),
                            }
                        }
                        if let Some(lb) = &self.lb {
                            match attachment.take_lb_maps() {
                                Ok(maps) => lb.dataplane().add_maps(maps),
                                Err(e) => {
                                    tracing::warn!(%interface, error = %e, "load balancer maps unavailable here")
                                }
                            }
                        }
                        entry.insert(attachment);
                    }
                    Err(e) => {
                        let e = unless_busy(e)?;
                        if mode == AttachMode::Auto {
                            tracing::warn!(%interface, error = %e, "XDP unavailable, running without it (adverts from the socket only, ARP answered by the kernel)");
                            continue;
                        }
                        return Err(DaemonError::Xdp {
                            interface,
                            source: Box::new(e),
                        });
                    }
                }
            }
            self.attach_vmac_xdp(index, mode)?;
            let slot = &self.slots[index];
            let cfg = slot.core.config();
            let spec = WatchSpec {
                version: cfg.version,
                auth: cfg.auth,
                silence: slot.core.master_down_interval(),
            };
            if let Some(attachment) = self.xdp.get_mut(&ifindex)
                && let Err(source) = attachment.watch(cfg.vrid, ip_family(slot.family()), &spec)
            {
                return Err(DaemonError::Xdp {
                    interface,
                    source: Box::new(source),
                });
            }
        }
        Ok(())
    }

    /// The load balancer's own attachments, after the instances' (which carry it too):
    /// XDP on each virtual server's `interface`, and, when no instance runs XDP anywhere
    /// (keepalived's LVS-only director), on the interfaces the real servers are reached
    /// through, where a one-armed direct-routing director also receives its clients.
    /// Interfaces already attached are left as they are. The first failure is returned
    /// (the caller decides whether it stops the daemon).
    pub(super) async fn attach_lb(
        &mut self,
        services: &[crate::config::lb::VirtualServer],
    ) -> Result<(), DaemonError> {
        if self.lb.is_none() {
            return Ok(());
        }
        // (name, index) of each interface, once; a route gives the index, a name needs
        // a lookup.
        let mut wanted: Vec<(String, u32)> = Vec::new();
        for name in services.iter().filter_map(|vs| vs.interface.as_deref()) {
            if !wanted.iter().any(|(n, _)| n == name) {
                let ifindex = self.netlink.link_index(name).await?;
                wanted.push((name.to_owned(), ifindex));
            }
        }
        if wanted.is_empty() && self.xdp.is_empty() {
            let servers = services.iter().flat_map(|vs| {
                vs.real_servers
                    .iter()
                    .map(|r| r.address.ip())
                    .chain(vs.sorry_server.map(|s| s.ip()))
            });
            for address in servers {
                let route = match self.netlink.route_to(address).await {
                    Ok(Some(route)) => route,
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(%address, error = %e, "load balancer: no route to the real server");
                        continue;
                    }
                };
                if !wanted.iter().any(|(_, i)| *i == route.ifindex)
                    && let Some(name) = crate::lb::dataplane::interface_name(route.ifindex)
                {
                    wanted.push((name, route.ifindex));
                }
            }
            if wanted.is_empty() {
                return Err(DaemonError::LoadBalancer {
                    message: "no vrrp_instance runs XDP and no real server has a route, so \
                              there is no interface to run the data plane on: connect the \
                              real servers' network, or name it with `interface` in the \
                              virtual server"
                        .into(),
                });
            }
        }
        for (interface, ifindex) in wanted {
            if self.xdp.contains_key(&ifindex) {
                continue;
            }
            let options = AttachOptions {
                mode: AttachMode::Auto,
                log: self.xdp_log,
                pin: Some(self.pin.clone()),
                lb: true,
            };
            let mut attachment =
                XdpAttachment::attach_with(&interface, &options).map_err(
                    |e| match unless_busy(e) {
                        Err(busy) => busy,
                        Ok(e) => DaemonError::LoadBalancer {
                            message: format!("attaching XDP to {interface}: {e}"),
                        },
                    },
                )?;
            tracing::info!(%interface, mode = %attachment.mode(), "XDP attached for the load balancer");
            let maps = attachment
                .take_lb_maps()
                .map_err(|e| DaemonError::LoadBalancer {
                    message: format!("the program's maps on {interface}: {e}"),
                })?;
            if let Some(lb) = &self.lb {
                lb.dataplane().add_maps(maps);
            }
            self.xdp.insert(ifindex, attachment);
        }
        Ok(())
    }

    /// Attaches XDP to the instance's VMAC, if it has one: the VIPs live there, so their
    /// ARP leases are looked up by the program that sees requests arrive on it (the
    /// parent's passes them on, as they are not its VIPs). A macvlan has no driver
    /// XDP, so generic mode, whatever `xdp` says; `auto` falls back to none.
    fn attach_vmac_xdp(&mut self, index: usize, mode: AttachMode) -> Result<(), DaemonError> {
        let Some(vmac) = self.slots[index].spec.vmac.clone() else {
            return Ok(());
        };
        let Some(vmac_index) = self.vmacs.index(&vmac.name) else {
            return Ok(());
        };
        if self.xdp.contains_key(&vmac_index) {
            return Ok(());
        }
        let options = AttachOptions {
            mode: AttachMode::Generic,
            log: self.xdp_log,
            pin: Some(self.pin.clone()),
            lb: false,
        };
        match XdpAttachment::attach_with(&vmac.name, &options) {
            Ok(attachment) => {
                tracing::info!(interface = %vmac.name, mode = %attachment.mode(), "XDP attached to the VMAC");
                self.xdp.insert(vmac_index, attachment);
                Ok(())
            }
            Err(e) if mode == AttachMode::Auto => {
                tracing::warn!(interface = %vmac.name, error = %e, "XDP unavailable on the VMAC, running without it there (ARP for its VIPs answered by the kernel)");
                Ok(())
            }
            Err(source) => Err(DaemonError::Xdp {
                interface: vmac.name,
                source: Box::new(source),
            }),
        }
    }

    /// Takes this daemon's lock on `interface` (once; kept for the daemon's life):
    /// `<run dir>/<interface>.daemon.lock`, flock'ed, holding our pid. The kernel drops
    /// it when we die, however we die.
    pub(super) fn lock_interface(&mut self, interface: &str) -> Result<(), DaemonError> {
        use crate::io::lock::{LockAttempt, LockFile};
        if self.interface_locks.contains_key(interface) {
            return Ok(());
        }
        let lock = self.pin.lock_dir.join(format!("{interface}.daemon.lock"));
        let io_err = |source| DaemonError::Socket {
            instance: interface.to_owned(),
            what: format!("taking the interface lock {}", lock.display()),
            source,
        };
        match LockFile::try_acquire(&lock).map_err(io_err)? {
            LockAttempt::Held { holder } => Err(DaemonError::InterfaceBusy {
                interface: interface.to_owned(),
                holder,
                lock,
            }),
            LockAttempt::Acquired { lock: mut file, .. } => {
                // Only for the message a second vipd prints; the lock is what counts.
                let _ = file.record(&format!("pid={}", std::process::id()));
                self.interface_locks.insert(interface.to_owned(), file);
                Ok(())
            }
        }
    }

    /// Prepares `specs` as new slots (reusing retired ones), attaches XDP and opens
    /// receive sockets where needed. Returns the slots' indexes, ready for
    /// [`Daemon::start_instances`].
    pub(super) async fn prepare_all(
        &mut self,
        specs: &[InstanceSpec],
        cleanup_stale: bool,
    ) -> Result<Vec<usize>, DaemonError> {
        let mut indexes = Vec::new();
        for spec in specs {
            let slot = self.prepare(spec, cleanup_stale).await?;
            let index = match self.slots.iter().position(|s| s.retired) {
                Some(free) => {
                    self.slots[free] = slot;
                    free
                }
                None => {
                    self.slots.push(slot);
                    self.slots.len() - 1
                }
            };
            self.by_vrid.insert(self.slots[index].key(), index);
            indexes.push(index);
        }
        self.attach_xdp(&indexes).await?;
        for &index in &indexes {
            let (ifindex, interface, family) = (
                self.slots[index].ifindex,
                self.slots[index].spec.interface.clone(),
                self.slots[index].family(),
            );
            if self.rx_sockets.contains(&(ifindex, family)) {
                continue;
            }
            let socket = RxSocket::open(&interface, ifindex, family).map_err(|source| {
                DaemonError::Socket {
                    instance: self.slots[index].spec.name.clone(),
                    what: format!("opening the {family} VRRP receive socket on {interface}"),
                    source,
                }
            })?;
            spawn_receiver(
                socket,
                ifindex,
                self.rx_tx.clone(),
                self.rx_queue_drops.clone(),
            );
            self.rx_sockets.insert((ifindex, family));
        }
        Ok(indexes)
    }

    /// RFC 5798 §6.4.1: leaves Initialize at the priority its trackers give it (their
    /// results survive a reload), into FAULT where a fault is already known (the core
    /// remembers it, and a later FaultCleared runs the startup rules).
    pub(super) async fn start_instances(&mut self, indexes: &[usize], now: Instant) {
        for &index in indexes {
            let offset = self.own_health(index).priority_offset;
            if offset != 0 {
                let actions = self.slots[index].handle(now, Input::PriorityOffset(offset));
                self.perform(index, now, actions).await;
            }
            if let Some(reason) = self.fault_reason(index) {
                let actions = self.slots[index].handle(now, Input::Fault { reason });
                self.perform(index, now, actions).await;
            }
            let actions = self.slots[index].handle(now, Input::Startup);
            self.perform(index, now, actions).await;
        }
    }

    /// Runs one task per script and per track file that some instance of `config`
    /// tracks. On a reload ([`config::plan`]) a task whose definition did not change
    /// keeps running and its last result stays in force, so an unchanged configuration
    /// never moves a priority; a changed one is restarted, keeping its last result until
    /// the new task's first; one no longer tracked stops and its result is forgotten.
    pub(super) fn start_trackers(&mut self, config: &Config) {
        let running_scripts: Vec<&config::TrackScript> = self
            .trackers
            .iter()
            .filter_map(|t| match &t.definition {
                TrackerDefinition::Script(script) => Some(script),
                TrackerDefinition::File(_) => None,
            })
            .collect();
        let scripts = config::plan::scripts(&running_scripts, config);
        let running_files: Vec<&config::TrackFile> = self
            .trackers
            .iter()
            .filter_map(|t| match &t.definition {
                TrackerDefinition::File(file) => Some(file),
                TrackerDefinition::Script(_) => None,
            })
            .collect();
        let files = config::plan::files(&running_files, config);
        let ended = |t: &Tracker, plan: &config::plan::TrackerPlan| {
            plan.stop.iter().chain(&plan.restart).any(|n| n == t.name())
        };
        let (ending, running): (Vec<Tracker>, Vec<Tracker>) = std::mem::take(&mut self.trackers)
            .into_iter()
            .partition(|t| match t.definition {
                TrackerDefinition::Script(_) => ended(t, &scripts),
                TrackerDefinition::File(_) => ended(t, &files),
            });
        for tracker in ending {
            tracker.abort();
        }
        self.trackers = running;
        for name in &scripts.stop {
            self.script_health.remove(name);
        }
        for name in &files.stop {
            self.file_values.remove(name);
        }
        for name in scripts.restart.iter().chain(&scripts.start) {
            if let Some(script) = config.scripts.iter().find(|s| &s.name == name) {
                self.trackers.push(Tracker {
                    definition: TrackerDefinition::Script(script.clone()),
                    task: track::spawn_script(script.clone(), self.track_tx.clone()),
                });
            }
        }
        for name in files.restart.iter().chain(&files.start) {
            if let Some(file) = config.track_files.iter().find(|f| &f.name == name) {
                self.trackers.push(Tracker {
                    definition: TrackerDefinition::File(file.clone()),
                    task: track::spawn_file(file.clone(), self.file_tx.clone()),
                });
            }
        }
        self.track_files = config.track_files.clone();
        if !scripts.restart.is_empty() || !files.restart.is_empty() {
            tracing::info!(scripts = ?scripts.restart, files = ?files.restart, "trackers restarted with new settings");
        }
    }

    /// Maps each sync group's member names to slots. A group that stays (by name) keeps
    /// its notified state, so a reload runs no group notify by itself; a group that is
    /// gone stops (its notify_stop runs).
    pub(super) fn build_groups(&mut self, config: &Config) {
        let old = std::mem::take(&mut self.groups);
        self.groups = config
            .sync_groups
            .iter()
            .map(|g| {
                let members = g
                    .instances
                    .iter()
                    .filter_map(|name| {
                        self.slots
                            .iter()
                            .position(|s| !s.retired && &s.spec.name == name)
                    })
                    .collect();
                let mut group = SyncGroup::new(g.name.clone(), members);
                if let Some(previous) = old.iter().find(|o| o.spec.name == g.name) {
                    group.continue_from(&previous.group);
                }
                GroupRuntime {
                    spec: g.clone(),
                    group,
                }
            })
            .collect();
        self.follow_queue.clear();
        for mut gone in old
            .into_iter()
            .filter(|o| !config.sync_groups.iter().any(|g| g.name == o.spec.name))
        {
            if let Some(state) = gone.group.stop() {
                self.run_group_notify(&gone.spec, state);
            }
        }
    }
}

/// Another live vipd's lock on the interface is an error of its own, never papered over
/// by `xdp = "auto"`; any other attach error is handed back for the caller to judge.
fn unless_busy(error: BpfError) -> Result<BpfError, DaemonError> {
    match error {
        BpfError::InterfaceLocked {
            interface,
            lock_path,
            holder,
        } => Err(DaemonError::InterfaceBusy {
            interface,
            holder,
            lock: lock_path,
        }),
        other => Ok(other),
    }
}
