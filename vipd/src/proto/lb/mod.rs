//! The load balancer's sans-IO core: what the pool of each virtual server is, given its
//! configuration and its checks' results, and the forwarding tables the XDP program
//! reads, given a pool.
//!
//! - [`health`]: per real server check state (retry, delay_before_retry, alpha), per
//!   virtual server quorum/hysteresis, sorry server, inhibit_on_failure, and the
//!   notify_up/down / quorum_up/down commands to run, all on a fake clock. Output: a
//!   [`ServicePool`] per virtual server.
//! - [`table`]: [`ServicePool`] → the scheduler table (Maglev for `mh`, weighted
//!   sequences for `rr`/`wrr`, weighted buckets for `sh`).
//!
//! The split is the VRRP core's: the driver (`lb::run`) owns sockets, processes and the
//! BPF maps, feeds results in and applies what comes out.

pub mod health;
pub mod table;

/// The data plane's view of one virtual server's pool at one moment.
///
/// `members` is indexed like `VirtualServer::real_servers` (config order), so a real
/// server keeps its slot, and so its flows, across pool changes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServicePool {
    /// One entry per configured real server, in config order.
    pub members: Vec<PoolMember>,
    /// Every real server is down or the quorum is lost and a sorry server is
    /// configured: send everything there.
    pub use_sorry: bool,
}

/// One real server as the data plane sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolMember {
    /// In the pool: established flows keep going to it. `false`: failed and not
    /// inhibited; its flows are rescheduled.
    pub in_pool: bool,
    /// Effective weight for new flows: the configured one, a `misc_dynamic` result, or
    /// 0 (drained, or failed with `inhibit_on_failure`).
    pub weight: u32,
}

impl ServicePool {
    /// Whether the pool can take a new flow at all.
    pub fn has_capacity(&self) -> bool {
        self.use_sorry || self.members.iter().any(|m| m.in_pool && m.weight > 0)
    }
}
