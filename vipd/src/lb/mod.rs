//! The load balancer's driver (keepalived's checker half): health checkers and the XDP
//! data plane's tables, around the sans-IO core in [`crate::proto::lb`].
//!
//! - `check`: tokio health checkers (HTTP_GET, SSL_GET, TCP_CHECK, MISC_CHECK) and the
//!   supervisor that feeds their results to `proto::lb::health` and publishes a
//!   [`HealthSnapshot`] on a `tokio::sync::watch` channel.
//! - `dataplane`: turns each snapshot's pools into the XDP program's service, backend
//!   and scheduler maps (`io::bpf::lb`), resolving each real server's MAC.
//!
//! - [`real_server`]: `vipd real-server`, the other end: VIPs on `lo` and the ARP
//!   sysctls a direct-routing real server needs.
//!
//! Both VRRP nodes run both halves whatever their VRRP state: a backup's tables are
//! ready, and identical (Maglev), when the VIP moves to it.

pub mod check;
pub mod real_server;

use std::net::SocketAddr;
use std::time::SystemTime;

use crate::proto::lb::ServicePool;

pub mod dataplane;

/// Everything the checkers know at one moment, one entry per configured virtual server
/// (config order).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HealthSnapshot {
    /// Per virtual server, in config order.
    pub services: Vec<ServiceHealth>,
}

/// One virtual server's health.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceHealth {
    /// `VirtualServer::name`.
    pub name: String,
    /// What the data plane should forward to.
    pub pool: ServicePool,
    /// The quorum (total weight of alive real servers, with hysteresis) is met.
    pub quorum_up: bool,
    /// Per real server, in config order (same index as `pool.members`).
    pub real_servers: Vec<RealServerHealth>,
}

/// One real server's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServerHealth {
    /// Configured address.
    pub address: SocketAddr,
    /// Alive / failed / inhibited.
    pub state: RealServerState,
    /// Effective weight (see `PoolMember::weight`).
    pub weight: u32,
    /// The most recent check attempt's outcome, if one has finished.
    pub last_check: Option<CheckOutcome>,
}

/// A real server's state, as `vipd status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RealServerState {
    /// Passing its checks (or has none).
    Alive,
    /// Failed and out of the pool.
    Failed,
    /// Failed, kept in the pool at weight 0 (`inhibit_on_failure`).
    Inhibited,
}

impl RealServerState {
    /// Lower-case name for status output and metrics labels.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Alive => "alive",
            Self::Failed => "failed",
            Self::Inhibited => "inhibited",
        }
    }
}

/// The outcome of one check attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    /// Passed.
    pub ok: bool,
    /// Why, for people: `HTTP 200`, `connect timeout after 3s`, `digest mismatch`,
    /// `exit status 1`, ….
    pub reason: String,
    /// Wall-clock time it finished (for status output only).
    pub at: SystemTime,
}

/// The load balancer of a running daemon: the configured services, the health checkers
/// and the data plane.
#[derive(Debug)]
pub struct LbRuntime {
    services: Vec<crate::config::lb::VirtualServer>,
    health: tokio::sync::watch::Receiver<HealthSnapshot>,
    checkers: check::Supervisor,
    dataplane: dataplane::Dataplane,
}

impl LbRuntime {
    /// Starts the health checkers and the data plane for `services` (on the current
    /// tokio runtime).
    pub fn start(
        services: Vec<crate::config::lb::VirtualServer>,
        netlink: crate::io::netlink::Netlink,
        bfd: check::BfdStates,
    ) -> Self {
        let (checkers, health) = check::Supervisor::start_with_bfd(services.clone(), bfd);
        let dataplane = dataplane::spawn(services.clone(), health.clone(), netlink);
        LbRuntime {
            services,
            health,
            checkers,
            dataplane,
        }
    }

    /// Stops the checkers, running `omega`'s notify_down / quorum_down commands (the
    /// data plane's maps stay as they are until the program goes).
    pub async fn shutdown(self) {
        self.checkers.shutdown().await;
    }

    /// The configured services, in config order (as [`HealthSnapshot::services`]).
    pub fn services(&self) -> &[crate::config::lb::VirtualServer] {
        &self.services
    }

    /// What the checkers know now.
    pub fn health(&self) -> HealthSnapshot {
        self.health.borrow().clone()
    }

    /// A receiver that wakes on every health change.
    pub fn health_changes(&self) -> tokio::sync::watch::Receiver<HealthSnapshot> {
        self.health.clone()
    }

    /// The data plane, to hand it each attached program copy's maps.
    pub fn dataplane(&self) -> &dataplane::Dataplane {
        &self.dataplane
    }

    /// Applies a reloaded configuration's services.
    pub fn reload(&mut self, services: Vec<crate::config::lb::VirtualServer>) {
        if services != self.services {
            self.services = services.clone();
            self.checkers.reload(services.clone());
            self.dataplane.set_services(services);
        }
    }

    /// Status of every virtual server, and the data path's counters.
    pub fn status(
        &self,
    ) -> (
        Vec<crate::control::VirtualServerStatus>,
        std::collections::BTreeMap<String, u64>,
    ) {
        let health = self.health.borrow().clone();
        let plane = self.dataplane.status();
        let counters = plane
            .counters
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect();
        (status(&self.services, &health, &plane), counters)
    }
}

fn algo_name(algo: crate::config::lb::LbAlgo) -> &'static str {
    use crate::config::lb::LbAlgo;
    match algo {
        LbAlgo::Rr => "rr",
        LbAlgo::Wrr => "wrr",
        LbAlgo::Lc => "lc",
        LbAlgo::Wlc => "wlc",
        LbAlgo::Sh => "sh",
        LbAlgo::Mh => "mh",
    }
}

/// The status view of each virtual server, from configuration, health and traffic.
pub fn status(
    services: &[crate::config::lb::VirtualServer],
    health: &HealthSnapshot,
    plane: &dataplane::DataplaneStatus,
) -> Vec<crate::control::VirtualServerStatus> {
    use crate::control::{RealServerStatus, VirtualServerStatus};
    services
        .iter()
        .enumerate()
        .map(|(si, vs)| {
            let h = health.services.get(si);
            let mut real_servers: Vec<RealServerStatus> = vs
                .real_servers
                .iter()
                .enumerate()
                .map(|(ri, rs)| {
                    let rh = h.and_then(|h| h.real_servers.get(ri));
                    let traffic = plane
                        .traffic
                        .get(&dataplane::backend_id(si, ri))
                        .copied()
                        .unwrap_or_default();
                    RealServerStatus {
                        address: rs.address.to_string(),
                        state: rh
                            .map_or(if vs.alpha { "failed" } else { "alive" }, |r| {
                                r.state.name()
                            })
                            .to_owned(),
                        weight: rh.map_or(rs.weight, |r| r.weight),
                        sorry: false,
                        active_flows: traffic.active_flows,
                        packets: traffic.packets,
                        bytes: traffic.bytes,
                        last_check_ok: rh.and_then(|r| r.last_check.as_ref().map(|c| c.ok)),
                        last_check: rh
                            .and_then(|r| r.last_check.as_ref().map(|c| c.reason.clone())),
                        unreachable: plane.unresolved.get(&rs.address.ip()).cloned(),
                    }
                })
                .collect();
            let using_sorry = h.is_some_and(|h| h.pool.use_sorry);
            if let Some(sorry) = vs.sorry_server {
                let traffic = plane
                    .traffic
                    .get(&dataplane::sorry_id(si))
                    .copied()
                    .unwrap_or_default();
                real_servers.push(RealServerStatus {
                    address: sorry.to_string(),
                    state: "alive".into(),
                    weight: 1,
                    sorry: true,
                    active_flows: traffic.active_flows,
                    packets: traffic.packets,
                    bytes: traffic.bytes,
                    last_check_ok: None,
                    last_check: None,
                    unreachable: plane.unresolved.get(&sorry.ip()).cloned(),
                });
            }
            VirtualServerStatus {
                name: vs.name.clone(),
                algo: algo_name(vs.algo).into(),
                quorum_up: h.is_none_or(|h| h.quorum_up),
                using_sorry_server: using_sorry,
                active_flows: real_servers.iter().map(|r| r.active_flows).sum(),
                packets: real_servers.iter().map(|r| r.packets).sum(),
                bytes: real_servers.iter().map(|r| r.bytes).sum(),
                real_servers,
            }
        })
        .collect()
}
