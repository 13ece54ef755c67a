//! Types shared by `vipd` (userspace) and `vipd-ebpf` (XDP program).
//!
//! Everything here is `#[repr(C)]` with explicit padding so both sides agree on the
//! layout byte for byte; flags are `u32`, never `bool`; units are in the field names.
//! No logic lives here. With feature `user`, the types implement `aya::Pod`.
#![no_std]

/// Names of the maps in the XDP object; the daemon opens them by these names.
pub mod map_names {
    /// `HashMap<VipKey, VipLease>`: VIPs this node manages on an interface.
    pub const VIP_LEASES: &str = "VIP_LEASES";
    /// `PerCpuArray<u64>` indexed by [`crate::Stat`].
    pub const STATS: &str = "STATS";
}

/// Name of the XDP program in the object.
pub const XDP_PROGRAM: &str = "vipd_xdp";

/// Largest number of (interface, VIP) pairs the lease map holds.
pub const MAX_VIPS: u32 = 16384;

/// Key of the VIP lease map: an IPv4 VIP on one interface.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VipKey {
    /// Interface index the ARP request arrives on.
    pub ifindex: u32,
    /// The VIP, in network byte order as it appears in the packet.
    pub addr_be: [u8; 4],
}

/// Value of the VIP lease map.
///
/// A key present in the map means "vipd manages this VIP here". The XDP program answers
/// ARP requests for it while `lease_expires_ns` is in the future, and drops them once the
/// lease has run out (so the kernel, which may still hold the address, cannot answer
/// either: only a live owner may claim a VIP).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VipLease {
    /// MAC address the replies carry as sender hardware address.
    pub owner_mac: [u8; 6],
    /// Explicit padding; always zero.
    pub _pad: [u8; 2],
    /// `CLOCK_MONOTONIC` (bpf_ktime_get_ns) time in ns after which the lease is void.
    /// [`LEASE_FOREVER`] never expires.
    pub lease_expires_ns: u64,
}

/// A lease that never expires (static ARP responder use).
pub const LEASE_FOREVER: u64 = u64::MAX;

/// Index of each counter in the per-CPU stats array.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    /// Every frame the program ran on.
    Packets = 0,
    /// ARP requests for a managed VIP answered with XDP_TX.
    ArpReplies = 1,
    /// ARP requests for a managed VIP whose lease has expired, dropped.
    ArpDroppedExpired = 2,
    /// ARP frames passed to the kernel (not a request for a managed VIP).
    ArpPassed = 3,
    /// ARP frames too short or not Ethernet/IPv4, passed to the kernel.
    ArpMalformed = 4,
    /// Gratuitous ARP (sender = target) for a managed VIP, passed to the kernel.
    ArpGratuitousPassed = 5,
}

impl Stat {
    /// Every counter, in index order.
    pub const ALL: [Stat; 6] = [
        Stat::Packets,
        Stat::ArpReplies,
        Stat::ArpDroppedExpired,
        Stat::ArpPassed,
        Stat::ArpMalformed,
        Stat::ArpGratuitousPassed,
    ];
    /// Number of slots in the stats array.
    pub const COUNT: u32 = Self::ALL.len() as u32;

    /// Stable snake_case name, used in status output and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            Stat::Packets => "packets",
            Stat::ArpReplies => "arp_replies",
            Stat::ArpDroppedExpired => "arp_dropped_expired",
            Stat::ArpPassed => "arp_passed",
            Stat::ArpMalformed => "arp_malformed",
            Stat::ArpGratuitousPassed => "arp_gratuitous_passed",
        }
    }
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: both are #[repr(C)], contain only integers and byte arrays, and have
    // explicit padding, so every bit pattern is valid and there are no uninit bytes.
    unsafe impl aya::Pod for super::VipKey {}
    unsafe impl aya::Pod for super::VipLease {}
}
