//! BFD sessions in the validated model (keepalived `bfd_instance`, TOML `[bfd.NAME]`)
//! and their use by VRRP instances (`track_bfd`).
//!
//! Kept apart from the VRRP model in `mod.rs`: the two front ends, validation and
//! rendering each have one BFD section that reads and writes these types.

use std::net::IpAddr;
use std::time::Duration;

/// Defaults, as keepalived's `bfd_instance`.
pub mod defaults {
    use std::time::Duration;

    /// `min_rx`: 10 ms.
    pub const MIN_RX: Duration = Duration::from_millis(10);
    /// `min_tx`: 10 ms.
    pub const MIN_TX: Duration = Duration::from_millis(10);
    /// `idle_tx`: 1 s (RFC 5880 §6.8.3 allows no less).
    pub const IDLE_TX: Duration = Duration::from_secs(1);
    /// `multiplier`: 5.
    pub const MULTIPLIER: u8 = 5;
    /// `ttl`: 255 (RFC 5881 §5).
    pub const TTL: u8 = 255;
    /// `max_hops`: 0, single hop.
    pub const MAX_HOPS: u8 = 0;
    /// Shortest `min_rx` / `min_tx` accepted.
    pub const MIN_INTERVAL: Duration = Duration::from_micros(100);
    /// Longest `min_rx` / `min_tx` / `idle_tx` accepted.
    pub const MAX_INTERVAL: Duration = Duration::from_secs(60);
}

/// One BFD session (keepalived `bfd_instance NAME { … }`, TOML `[bfd.NAME]`): single-hop
/// RFC 5881 to `neighbor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BfdInstance {
    /// Name that instances refer to in `track_bfd`.
    pub name: String,
    /// The neighbour (`neighbor_ip`).
    pub neighbor: IpAddr,
    /// Our source address (`source_ip`); `None`: the kernel's choice. Same family as
    /// `neighbor`.
    pub source: Option<IpAddr>,
    /// Required Min RX Interval (`min_rx`): the fastest we accept packets.
    pub min_rx: Duration,
    /// Desired Min TX Interval once Up (`min_tx`).
    pub min_tx: Duration,
    /// Desired Min TX while not Up (`idle_tx`); the session uses at least 1 s (RFC 5880
    /// §6.8.3).
    pub idle_tx: Duration,
    /// Detect Mult (`multiplier`), 1..=255.
    pub multiplier: u8,
    /// Passive role (RFC 5880 §6.1): send only after hearing the neighbour.
    pub passive: bool,
    /// TTL / hop limit of sent packets (`ttl`); 255 for single hop.
    pub ttl: u8,
    /// Hops the neighbour may be away (`max_hops`): received packets need a TTL of at
    /// least `255 - max_hops`. 0 is RFC 5881's single-hop check.
    pub max_hops: u8,
    /// Default weight of `track_bfd` entries that name no weight, −253..=253.
    pub weight: i16,
}

/// A BFD session tracked by a VRRP instance (keepalived `track_bfd { NAME [weight W] }`,
/// plus vipd's `peer`).
///
/// Without `peer` it is keepalived's rule, as for `track_interface`: weight 0 puts the
/// instance into FAULT while the session is not Up; a positive weight is added while Up,
/// a negative one while not. With `peer` the neighbour is another router of this VRRP
/// instance: the session has no weight and never causes FAULT; when it goes Down while
/// its neighbour is our master, a Backup takes over at once (see
/// `proto::instance`, "BFD").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedBfd {
    /// Name of a [`BfdInstance`] in [`super::Config::bfd_instances`].
    pub name: String,
    /// The weight in force (this entry's, else the session's); 0 for a peer.
    pub weight: i16,
    /// The neighbour is a VRRP peer: its Down is Master_Down, not a fault.
    pub peer: bool,
}

impl BfdInstance {
    /// Whether a received packet's TTL / hop limit is acceptable (RFC 5881 §5 with
    /// `max_hops` 0: exactly 255).
    pub fn accepts_ttl(&self, ttl: u8) -> bool {
        u16::from(ttl) + u16::from(self.max_hops) >= 255
    }
}

#[cfg(test)]
#[path = "bfd_tests.rs"]
mod tests;
