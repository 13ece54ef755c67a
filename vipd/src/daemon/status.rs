//! `vipd status` and metrics: the daemon's state as plain values.

use super::*;

pub(super) fn slot_status(slot: &Slot, now: Instant, wall: SystemTime) -> InstanceStatus {
    let core = &slot.core;
    let mut counters: std::collections::BTreeMap<String, u64> = slot
        .rx
        .iter()
        .map(|(name, value)| (format!("rx_{name}"), value))
        .collect();
    let c = core.counters();
    for (name, value) in [
        ("adverts_sent", c.adverts_sent),
        ("adverts_received", c.adverts_received),
        ("adverts_discarded_lower_priority", c.adverts_discarded),
        ("priority_zero_sent", c.priority_zero_sent),
        ("priority_zero_received", c.priority_zero_received),
        ("transitions", c.transitions),
        ("became_master", c.became_master),
        ("reassertions", c.reassertions),
        ("assert_adverts", c.assert_adverts),
        ("send_errors", slot.send_errors),
        ("adverts_late", slot.adverts_late),
        ("advert_late_max_us", slot.advert_late_max_us),
        ("vip_errors", slot.vip_errors),
        ("garps_sent", slot.garps_sent),
        ("neighbour_adverts_sent", slot.nas_sent),
        ("announced_for_master", slot.announced_for_master),
        ("xdp_rescued_adverts", slot.xdp_rescues),
        ("xdp_events", slot.xdp_events),
        (
            "notify_commands_run",
            slot.notify.commands_run.load(Ordering::Relaxed),
        ),
        (
            "notify_command_failures",
            slot.notify.command_failures.load(Ordering::Relaxed),
        ),
        ("mails_sent", slot.notify.mails_sent.load(Ordering::Relaxed)),
        (
            "mail_failures",
            slot.notify.mail_failures.load(Ordering::Relaxed),
        ),
    ] {
        counters.insert(name.to_owned(), value);
    }
    let master_address = match core.state() {
        State::Master => Some(slot.primary.to_string()),
        _ => core.master_address().map(|a| a.to_string()),
    };
    InstanceStatus {
        name: slot.spec.name.clone(),
        interface: slot.spec.interface.clone(),
        vrid: slot.spec.virtual_router_id,
        family: match slot.family() {
            wire::AddressFamily::Ipv4 => "ipv4",
            wire::AddressFamily::Ipv6 => "ipv6",
        }
        .into(),
        version: core.config().version.number(),
        state: state_name(core.state()).to_owned(),
        priority: core.priority(),
        effective_priority: core.effective_priority(),
        master_address,
        primary_address: slot.primary.to_string(),
        virtual_addresses: slot
            .spec
            .virtual_addresses
            .iter()
            .map(|v| format!("{}/{}", v.address, v.prefix_len))
            .collect(),
        advert_interval_ms: core.master_adver_interval().as_duration().as_millis() as u64,
        last_transition: core.last_transition().map(|t| {
            let ago = now.saturating_duration_since(t.at);
            TransitionStatus {
                from: state_name(t.from).to_owned(),
                to: state_name(t.to).to_owned(),
                reason: format!("{:?}", t.reason),
                seconds_ago: ago.as_secs_f64(),
                at: humantime::format_rfc3339_millis(slot.last_change.unwrap_or(wall - ago))
                    .to_string(),
            }
        }),
        counters,
        transitions_by_reason: slot.transitions_by_reason.clone(),
    }
}

/// A transition reason as a short label (`MasterDown`, `Fault`, ...).
pub(super) fn reason_name(reason: &crate::proto::action::Reason) -> String {
    let debug = format!("{reason:?}");
    debug
        .split(['(', ' ', '{'])
        .next()
        .unwrap_or_default()
        .to_owned()
}

impl Daemon {
    /// Counters not tied to one instance: datagrams for VRIDs nobody here runs (by
    /// reason), malformed IP, and receive-queue overflow between socket and daemon loop.
    pub(super) fn counters(&self) -> std::collections::BTreeMap<String, u64> {
        let mut out = std::collections::BTreeMap::new();
        for counters in self.unknown_vrid.values() {
            for (name, value) in counters.iter() {
                *out.entry(format!("unconfigured_rx_{name}")).or_insert(0) += value;
            }
        }
        out.insert("rx_malformed_ip".into(), self.malformed_ip);
        out.insert("reloads".into(), self.reloads);
        out.insert("reload_failures".into(), self.reload_failures);
        out.insert("log_lines_dropped".into(), crate::logging::dropped_lines());
        out.insert(
            "rx_queue_drops".into(),
            self.rx_queue_drops
                .load(std::sync::atomic::Ordering::Relaxed),
        );
        out
    }

    pub(super) fn status(&self) -> DaemonStatus {
        let now = Instant::now();
        let wall = SystemTime::now();
        let (bfd, bfd_counters) = self.bfd.status();
        let mut counters = self.counters();
        counters.extend(bfd_counters);
        let (virtual_servers, lb_counters) = match &self.lb {
            Some(lb) => lb.status(),
            None => Default::default(),
        };
        DaemonStatus {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pid: std::process::id(),
            uptime_seconds: now.duration_since(self.started).as_secs_f64(),
            // A slot freed by a reload stays in `slots` for reuse; the instance it
            // held is gone and must not be reported (nor exported as metrics).
            instances: self
                .slots
                .iter()
                .filter(|s| !s.retired)
                .map(|s| slot_status(s, now, wall))
                .collect(),
            xdp: self
                .xdp
                .values()
                .map(|a| control::XdpStatus {
                    interface: a.interface().to_owned(),
                    mode: a.mode().to_string(),
                    counters: a
                        .stats()
                        .map(|m| m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                        .unwrap_or_default(),
                })
                .collect(),
            counters,
            virtual_servers,
            lb_counters,
            bfd,
            announced: self
                .l3
                .iter()
                .flat_map(|l3| l3.announced())
                .map(|(address, path)| control::AnnouncedRoute {
                    address: address.to_string(),
                    path: match path {
                        crate::proto::l3::RoutePath::Primary => "primary",
                        crate::proto::l3::RoutePath::Standby => "standby",
                    }
                    .to_owned(),
                })
                .collect(),
        }
    }
}
