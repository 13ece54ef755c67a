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
