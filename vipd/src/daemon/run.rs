//! `run`: start-up, the main loop that selects over every input, and the graceful
//! shutdown (priority 0, hand-over, release).

use super::*;

/// Puts the daemon's thread at the configured real-time priority; a refusal (no
/// CAP_SYS_NICE, a container's RT budget of 0) is logged and the daemon runs on as an
/// ordinary process.
pub(super) fn apply_scheduling(priority: u8) {
    use crate::io::sched::{Scheduling, current, set_realtime};
    let wanted = match priority {
        0 => Scheduling::Normal,
        p => Scheduling::RoundRobin(p),
    };
    // A reload that keeps the setting changes (and logs) nothing.
    if current().ok() == Some(wanted) {
        return;
    }
    match set_realtime(priority) {
        Ok(Scheduling::RoundRobin(p)) => {
            tracing::info!(priority = p, "running at real-time priority (SCHED_RR)");
        }
        Ok(Scheduling::Normal) => {
            tracing::info!("running as an ordinary process (realtime_priority = 0)")
        }
        Err(e) => tracing::warn!(
            priority,
            error = %e,
            "cannot switch to real-time scheduling (needs CAP_SYS_NICE and an RT budget); a busy CPU may delay adverts"
        ),
    }
}

/// Tells systemd (`Type=notify`) how the daemon is doing; nothing happens when vipd was
/// not started by a service manager (no `NOTIFY_SOCKET`).
pub(super) fn notify_systemd(states: &[SdState<'_>]) {
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::warn!(error = %e, "cannot notify the service manager");
    }
}

/// Most queued datagrams (and, separately, XDP events) handled between the main loop's
/// wake-up and its timers.
const QUEUED_BEFORE_TIMERS: usize = 64;

/// Runs the daemon until SIGTERM/SIGINT.
pub async fn run(config: Config, options: RunOptions) -> Result<(), DaemonError> {
    let mut sigterm = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;

    apply_scheduling(config.global.realtime_priority);
    let netlink = Netlink::connect()?;
    let mut links = Netlink::watch_links()?;
    let rx_queue_drops = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (rx_tx, mut rx_rx) = mpsc::channel::<Received>(4096);
    let config_path = options.config_path.clone();

    let (xdp_tx, mut xdp_rx) = mpsc::channel::<AdvertEvent>(1024);
    let (track_tx, mut track_rx) = mpsc::channel::<TrackEvent>(64);
    let (file_tx, mut file_rx) = mpsc::channel::<FileEvent>(64);
    let (vip_jobs, vip_jobs_rx) = mpsc::unbounded_channel::<VipJob>();
    let (vip_done_tx, mut vip_done_rx) = mpsc::unbounded_channel::<VipDone>();
    let (resolved_tx, mut resolved_rx) = mpsc::unbounded_channel::<ResolvedMaster>();
    let (bfd_tx, mut bfd_rx) = mpsc::unbounded_channel::<bfd_engine::BfdEvent>();
    let realtime_priority = Arc::new(AtomicU8::new(config.global.realtime_priority));
    let bfd_engine =
        bfd_engine::BfdEngine::spawn(realtime_priority.clone(), bfd_tx).map_err(|e| {
            DaemonError::Socket {
                instance: "bfd".into(),
                what: "starting the BFD thread".into(),
                source: e,
            }
        })?;
    let vip_worker_thread = spawn_vip_worker(realtime_priority.clone(), vip_jobs_rx, vip_done_tx)?;
    // The load balancer (virtual_server): its data plane follows the checkers' health.
    // BFD sessions Up, for the VRRP instances and the load balancer's BFD_CHECKs.
    let (bfd_up, bfd_up_rx) = tokio::sync::watch::channel(std::collections::BTreeMap::new());
    let lb = (!config.virtual_servers.is_empty()).then(|| {
        crate::lb::LbRuntime::start(config.virtual_servers.clone(), netlink.clone(), bfd_up_rx)
    });
    let mut lb_health = lb.as_ref().map(crate::lb::LbRuntime::health_changes);
    let l3 = l3::L3Runtime::start(&config, &netlink).await?;
    let mut daemon = Daemon {
        vip_jobs,
        realtime_priority,
        slots: Vec::new(),
        by_vrid: HashMap::new(),
        arp: HashMap::new(),
        netlink,
        vmacs: Default::default(),
        started: Instant::now(),
        unknown_vrid: HashMap::new(),
        malformed_ip: 0,
        reloads: 0,
        reload_failures: 0,
        rx_queue_drops: rx_queue_drops.clone(),
        script_health: HashMap::new(),
        mail: config.global.mail.clone(),
        router_id: config.global.router_id.clone().unwrap_or_else(hostname),
        notify_tasks: Vec::new(),
        notify_shutdown_timeout: config.global.notify_shutdown_timeout,
        xdp: HashMap::new(),
        lb,
        pin: options.pin.clone().unwrap_or_else(PinConfig::system),
        xdp_log: options.xdp_log,
        xdp_tx,
        rx_sockets: std::collections::HashSet::new(),
        rx_tx,
        trackers: Vec::new(),
        track_tx,
        reloading: false,
        interface_locks: HashMap::new(),
        track_files: Vec::new(),
        file_values: HashMap::new(),
        file_tx,
        groups: Vec::new(),
        follow_queue: Vec::new(),
        resolved_tx,
        warnings: LogLimiter::new(REPEATED_WARNING_PERIOD),
        bfd: bfd::BfdRuntime::new(bfd_engine, bfd_up),
        l3,
    };
    let prepared = daemon.prepare_all(&config.instances, true).await?;
    // Without its program the balancer forwards nothing: fatal for a director without
    // VRRP, while a VRRP router goes on holding its addresses (and says so).
    if let Err(e) = daemon.attach_lb(&config.virtual_servers).await {
        if config.instances.is_empty() {
            return Err(e);
        }
        tracing::error!(error = %e, "the load balancer has no data plane; VRRP runs on without it");
    }
    for file in &config.track_files {
        track::init_track_file(file);
    }
    daemon.bfd.start(&config.bfd_instances, Instant::now())?;
    daemon.bfd_watch_xdp();
    daemon.start_trackers(&config);
    daemon.build_groups(&config);

    let socket_path = options
        .control_socket
        .unwrap_or_else(|| config.global.control_socket.clone());
    let (control_tx, mut control_rx) = mpsc::channel::<ControlRequest>(16);
    let metrics_task = match options.metrics_listen {
        Some(listen) => Some(
            crate::metrics::serve(listen, control_tx.clone())
                .await
                .map_err(|source| DaemonError::Socket {
                    instance: "metrics".into(),
                    what: format!("listening on {listen} for metrics"),
                    source,
                })?,
        ),
        None => None,
    };
    let control_task = control::serve(&socket_path, control_tx).await?;

    daemon.start_instances(&prepared, Instant::now()).await;
    tracing::info!(
        instances = daemon.slots.len(),
        control_socket = %socket_path.display(),
        "vipd running"
    );
    daemon.notify_ready();

    // Adverts are due on a grid of deadlines (`timer::next_advert_deadline`). tokio's
    // timer wakes us up to a millisecond after each, never earlier, and the grid keeps
    // that from adding up. (A timerfd woke us on time when idle, but under heavy VIP
    // installs it let the real-time thread stall for hundreds of milliseconds: the
    // thousand-VIP test failed 3 runs in 6 with it, none without.)
    loop {
        let deadline = daemon
            .next_deadline()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = sighup.recv() => {
                notify_systemd(&[SdState::Reloading]);
                daemon.reload(config_path.as_deref(), &socket_path).await;
                daemon.notify_ready();
            }
            Some(packet) = rx_rx.recv() => {
                daemon.on_packet(Instant::now(), packet).await;
            }
            Some(event) = links.recv() => {
                daemon.on_net_event(Instant::now(), event).await;
            }
            Some(event) = xdp_rx.recv() => {
                daemon.on_xdp_event(Instant::now(), event).await;
            }
            Some(event) = track_rx.recv() => {
                daemon.script_health.insert(event.name.clone(), event.healthy);
                daemon.trackers_changed(Instant::now(), &event.name).await;
            }
            Some(event) = file_rx.recv() => {
                daemon.file_values.insert(event.name.clone(), event.value);
                daemon.trackers_changed(Instant::now(), &event.name).await;
            }
            Some(request) = control_rx.recv() => {
                let _ = request.reply.send(daemon.status());
            }
            Some(done) = vip_done_rx.recv() => {
                daemon.on_vips_changed(Instant::now(), done).await;
            }
            Some(resolved) = resolved_rx.recv() => daemon.announce_for(Instant::now(), resolved).await,
            Some(event) = bfd_rx.recv() => daemon.on_bfd_event(Instant::now(), event).await,
            // The checkers changed a pool: an announced service may have to be withdrawn
            // (or announced again); `sync_l3` below reads the new health.
            true = health_changed(&mut lb_health) => {}
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {}
        }
        // Adverts that queued up while the loop was busy are read before the timers
        // run: `select!` picks among ready branches at random, and a Backup that ran its
        // due Master_Down_Timer first would take over from a master whose advert is
        // waiting in the queue (RFC 5798 §6.4.2). Bounded, so a flood cannot hold up
        // our own adverts.
        for _ in 0..QUEUED_BEFORE_TIMERS {
            let Ok(packet) = rx_rx.try_recv() else { break };
            daemon.on_packet(Instant::now(), packet).await;
        }
        for _ in 0..QUEUED_BEFORE_TIMERS {
            let Ok(event) = xdp_rx.try_recv() else { break };
            daemon.on_xdp_event(Instant::now(), event).await;
        }
        daemon.on_timers(Instant::now()).await;
        daemon.settle_groups(Instant::now()).await;
        daemon.sync_l3().await;
    }

    tracing::info!("shutting down: priority-0 adverts, handing the VIPs over");
    notify_systemd(&[SdState::Stopping]);
    // L3 routes go first: the fabric moves flows to the other nodes while this one
    // still answers the ones in flight.
    daemon.withdraw_l3().await;
    let now = Instant::now();
    daemon.bfd.admin_down();
    for index in 0..daemon.slots.len() {
        let actions = daemon.slots[index].handle(now, Input::Shutdown);
        daemon.perform(index, now, actions).await;
    }
    // Every member has stopped: the sync groups' notify_stop.
    daemon.notify_groups();
    // A master keeps its VIPs until its successor has announced them (the core's
    // release deadline), so clients are answered throughout the handover.
    daemon
        .hand_over(
            &mut rx_rx,
            &mut xdp_rx,
            &mut resolved_rx,
            &mut sigterm,
            &mut sigint,
        )
        .await;
    // Every queued VIP change (the removals above last) is done before vipd exits.
    daemon.vips_settled().await;
    for (_, attachment) in daemon.xdp.drain() {
        let interface = attachment.interface().to_owned();
        if let Err(e) = attachment.detach_and_unpin() {
            tracing::warn!(%interface, error = %e, "detaching XDP failed");
        }
    }
    // The VIPs are gone from them (above); the VMACs go, and their parents' sysctls
    // return to what they were.
    daemon.vmacs.remove_all(&daemon.netlink).await;
    control_task.abort();
    if let Some(task) = metrics_task {
        task.abort();
    }
    for tracker in daemon.trackers.drain(..) {
        tracker.abort();
    }
    let _ = std::fs::remove_file(&socket_path);
    // The checkers stop; with `omega`, their notify_down / quorum_down commands run
    // (bounded like the other notify commands below).
    if let Some(lb) = daemon.lb.take() {
        let _ = tokio::time::timeout(daemon.notify_shutdown_timeout, lb.shutdown()).await;
    }
    // Let notify_stop scripts and mails finish, up to notify_shutdown_timeout (a script
    // still running then is killed with its process group).
    let deadline = tokio::time::Instant::now() + daemon.notify_shutdown_timeout;
    for task in std::mem::take(&mut daemon.notify_tasks) {
        let _ = tokio::time::timeout_at(deadline, task).await;
    }
    // Closing the job queue ends the worker; it has nothing left to do (settled above).
    drop(daemon);
    let _ = vip_worker_thread.join();
    tracing::info!("vipd stopped");
    Ok(())
}

/// Resolves to `true` when the load balancer's health changed; never, without one
/// (or once its checkers stopped).
async fn health_changed(
    health: &mut Option<tokio::sync::watch::Receiver<crate::lb::HealthSnapshot>>,
) -> bool {
    if let Some(receiver) = health
        && receiver.changed().await.is_ok()
    {
        return true;
    }
    std::future::pending().await
}

impl Daemon {
    /// READY=1 to systemd, with how many instances run (after start and each reload).
    pub(super) fn notify_ready(&self) {
        let active = self.slots.iter().filter(|s| !s.retired).count();
        let status = format!("{active} instances running");
        notify_systemd(&[SdState::Ready, SdState::Status(&status)]);
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.slots
            .iter()
            .flat_map(|s| {
                s.core
                    .poll_timeout()
                    .into_iter()
                    .chain(s.garp.poll_timeout())
                    .chain(s.announce_for.as_ref().map(|backlog| backlog.due))
            })
            .chain(self.warnings.next_deadline())
            .min()
    }

    /// After the priority-0 adverts: runs the inputs that end a handover (the
    /// successor's adverts, XDP events, the cores' release deadlines) until no instance
    /// holds VIPs any more. A second SIGTERM or SIGINT lets go at once.
    pub(super) async fn hand_over(
        &mut self,
        packets: &mut mpsc::Receiver<Received>,
        events: &mut mpsc::Receiver<AdvertEvent>,
        resolved: &mut mpsc::UnboundedReceiver<ResolvedMaster>,
        sigterm: &mut tokio::signal::unix::Signal,
        sigint: &mut tokio::signal::unix::Signal,
    ) {
        let holding = |daemon: &Daemon| {
            daemon
                .slots
                .iter()
                .any(|s| s.holds_vips && s.core.release_deadline().is_some())
        };
        while holding(self) {
            let deadline = self
                .next_deadline()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
            tokio::select! {
                _ = sigterm.recv() => break,
                _ = sigint.recv() => break,
                Some(packet) = packets.recv() => self.on_packet(Instant::now(), packet).await,
                Some(event) = events.recv() => self.on_xdp_event(Instant::now(), event).await,
                Some(master) = resolved.recv() => self.announce_for(Instant::now(), master).await,
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {}
            }
            self.on_timers(Instant::now()).await;
        }
        for index in 0..self.slots.len() {
            if self.slots[index].holds_vips {
                tracing::info!(instance = %self.slots[index].spec.name, "releasing the VIPs without a successor");
                self.release_vips(index);
            }
            // Whatever notify is still held back (a STOP) runs now.
            self.flush_notify(index);
        }
    }
}
