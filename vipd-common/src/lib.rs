//! Types shared by `vipd` (userspace) and `vipd-ebpf` (XDP program).
//!
//! Everything here is `#[repr(C)]` with explicit padding so both sides agree on the
//! layout byte for byte; flags are `u32`, never `bool`; units are in the field names.
//! No logic lives here. With feature `user`, the types implement `aya::Pod`.
#![no_std]

pub mod lb;

/// Names of the maps in the XDP object; the daemon opens them by these names.
pub mod map_names {
    /// `HashMap<VipKey, VipLease>`: VIPs this node manages on an interface.
    pub const VIP_LEASES: &str = "VIP_LEASES";
    /// `PerCpuArray<u64>` indexed by [`crate::Stat`].
    pub const STATS: &str = "STATS";
    /// `HashMap<WatchKey, WatchEntry>`: the (interface, VRID, family) triples whose
    /// adverts the program checks and records; written by the daemon only.
    pub const ADVERT_WATCHES: &str = "ADVERT_WATCHES";
    /// `HashMap<WatchKey, ObservedAdvert>`: the last accepted advert per watched triple;
    /// written by the program, read (and deleted on unwatch) by the daemon.
    pub const OBSERVED_ADVERTS: &str = "OBSERVED_ADVERTS";
    /// `Array<u64>` of lease expiries (CLOCK_MONOTONIC ns), one slot per instance, that
    /// [`crate::VipLease::lease_clock`] points into.
    pub const LEASE_CLOCKS: &str = "LEASE_CLOCKS";
    /// `RingBuf` of [`crate::AdvertEvent`] records: changes the election must act on.
    pub const ADVERT_EVENTS: &str = "ADVERT_EVENTS";
    /// `HashMap<Vip6Key, VipLease>`: IPv6 VIPs this node manages on an interface (the
    /// neighbour-discovery responder's counterpart of [`VIP_LEASES`]).
    pub const VIP6_LEASES: &str = "VIP6_LEASES";

    /// The maps that carry state across a daemon restart and are pinned in bpffs
    /// (the ring buffer is not: each program instance gets a fresh one).
    pub const PINNED: [&str; 6] = [
        VIP_LEASES,
        VIP6_LEASES,
        LEASE_CLOCKS,
        STATS,
        ADVERT_WATCHES,
        OBSERVED_ADVERTS,
    ];
}

/// Name of the load-time global (`u32`, 0 or 1) that switches aya-log output from the
/// program on. Off by default: the verifier then prunes every logging branch.
pub const LOG_ENABLED_GLOBAL: &str = "VIPD_LOG_ENABLED";

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

/// Key of the IPv6 VIP lease map ([`map_names::VIP6_LEASES`]): an IPv6 VIP on one
/// interface. 20 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Vip6Key {
    /// Interface index the neighbour solicitation arrives on.
    pub ifindex: u32,
    /// The VIP, in network byte order as it appears in the packet.
    pub addr: [u8; 16],
}

/// Value of the VIP lease maps (IPv4: ARP, IPv6: neighbour discovery).
///
/// A key present in the map means "vipd manages this VIP here". The XDP program answers
/// ARP requests for it while its lease is in the future, and drops them once the lease
/// has run out (so the kernel, which may still hold the address, cannot answer either:
/// only a live owner may claim a VIP).
///
/// The lease is either inline (`lease_clock` = [`NO_LEASE_CLOCK`]: `lease_expires_ns`
/// counts) or shared: slot `lease_clock` of the `LEASE_CLOCKS` array holds the expiry
/// for every VIP of one instance, so renewing thousands of VIPs at every advert is one
/// map write.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VipLease {
    /// MAC address the replies carry as sender hardware address.
    pub owner_mac: [u8; 6],
    /// Explicit padding; always zero.
    pub _pad: [u8; 2],
    /// Index into `LEASE_CLOCKS`, or [`NO_LEASE_CLOCK`].
    pub lease_clock: u32,
    /// Explicit padding; always zero.
    pub _pad2: [u8; 4],
    /// With no lease clock: `CLOCK_MONOTONIC` (bpf_ktime_get_ns) time in ns after which
    /// the lease is void; [`LEASE_FOREVER`] never expires. Ignored with a lease clock.
    pub lease_expires_ns: u64,
}

/// `VipLease::lease_clock` value for an inline lease.
pub const NO_LEASE_CLOCK: u32 = u32::MAX;

/// Slots in the `LEASE_CLOCKS` array (one per instance).
pub const MAX_LEASE_CLOCKS: u32 = 4096;

/// A lease that never expires (static ARP responder use).
pub const LEASE_FOREVER: u64 = u64::MAX;

/// Largest number of (interface, VRID, family) triples the advert maps hold.
pub const MAX_WATCHES: u32 = 4096;

/// Unwatched adverts (VRIDs nobody here runs) the XDP program passes to the kernel per
/// CPU and [`UNWATCHED_WINDOW_NS`]; beyond that it drops them
/// ([`Stat::AdvertsUnwatchedDropped`]). 100 per 100 ms is 1 000 a second per CPU: a
/// dozen other routers' VRIDs at 10 ms adverts on the same link pass whole, while a
/// flood of them no longer reaches the raw sockets (whose wake-ups, on a veth or a
/// busy NIC queue, run in whichever thread happens to send next: our adverts).
pub const UNWATCHED_ADVERTS_PER_WINDOW: u64 = 100;
/// The window of [`UNWATCHED_ADVERTS_PER_WINDOW`].
pub const UNWATCHED_WINDOW_NS: u64 = 100_000_000;

/// Per-CPU state of the unwatched-advert budget: when the current window started and
/// how many passed in it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateWindow {
    /// `bpf_ktime_get_ns` at the window's start.
    pub start_ns: u64,
    /// Adverts passed in the window.
    pub passed: u64,
}

/// Size of the advert event ring buffer in bytes (a power of two, a multiple of the page
/// size): room for about 3000 events between two reads of the daemon.
pub const ADVERT_EVENTS_BYTES: u32 = 256 * 1024;

/// Most addresses an IPv4 advert lists: the 8-bit count (RFC 5798 §5.2.5). 1 020 bytes
/// of addresses, so the advert still fits a 1 500-byte frame. An instance's further VIPs
/// are held, not listed (as keepalived's `virtual_ipaddress_excluded`).
pub const MAX_LISTED_IPV4: usize = 255;

/// Most addresses an IPv6 advert lists: 255 would make a 4 KB advert that the kernel
/// fragments and peers (and the XDP checks, up to [`MAX_CHECKED_ADVERT_LEN`]) cannot take
/// whole. 64 × 16 + 8 = 1 032 bytes: unfragmented on any IPv6 link (minimum MTU 1 280).
pub const MAX_LISTED_IPV6: usize = 64;

/// VRRP header length (RFC 5798 §5.1), and v2's authentication data after the addresses
/// (RFC 3768 §5.1).
const VRRP_HEADER_LEN: usize = 8;
const V2_AUTH_DATA_LEN: usize = 8;

/// Longest VRRP message (header + addresses + v2 auth data) whose checksum the program
/// verifies: the longest advert either family lists, i.e. IPv4 v2 with
/// [`MAX_LISTED_IPV4`] addresses (8 + 1020 + 8 = 1 036 bytes), which also covers IPv6
/// with [`MAX_LISTED_IPV6`] (8 + 1 024). Longer adverts are not recorded (counted as
/// [`Stat::AdvertDroppedTooLong`]); the daemon's socket still sees them.
pub const MAX_CHECKED_ADVERT_LEN: u32 = {
    let v4 = VRRP_HEADER_LEN + 4 * MAX_LISTED_IPV4 + V2_AUTH_DATA_LEN;
    let v6 = VRRP_HEADER_LEN + 16 * MAX_LISTED_IPV6;
    (if v4 > v6 { v4 } else { v6 }) as u32
};

/// `WatchKey::family` / `ObservedAdvert::family` / `AdvertEvent::family` for IPv4.
pub const FAMILY_IPV4: u8 = 4;
/// `WatchKey::family` / `ObservedAdvert::family` / `AdvertEvent::family` for IPv6.
pub const FAMILY_IPV6: u8 = 6;

/// `WatchEntry::auth_type`: no authentication (RFC 3768 §5.3.6.1; the only v3 value).
pub const AUTH_NONE: u8 = 0;
/// `WatchEntry::auth_type`: simple text password (RFC 3768 §5.3.6.2), v2 only.
pub const AUTH_SIMPLE_TEXT: u8 = 1;

/// Key of [`map_names::ADVERT_WATCHES`] and [`map_names::OBSERVED_ADVERTS`]: one virtual
/// router as seen on one interface. 8 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WatchKey {
    /// Interface index the adverts arrive on.
    pub ifindex: u32,
    /// Virtual router identifier, 1..=255.
    pub vrid: u8,
    /// [`FAMILY_IPV4`] or [`FAMILY_IPV6`]: IPv4 and IPv6 instances of one VRID are
    /// separate virtual routers (RFC 5798 §5.2.3).
    pub family: u8,
    /// Explicit padding; always zero.
    pub _pad: [u8; 2],
}

/// Value of [`map_names::ADVERT_WATCHES`]: what the daemon expects of adverts for the
/// key, and when it wants to hear about a master coming back. 24 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchEntry {
    /// Expected VRRP version, 2 or 3; adverts of the other version are not recorded
    /// (RFC 5798 §7.1 / RFC 3768 §7.1).
    pub version: u8,
    /// Expected v2 auth type ([`AUTH_NONE`] or [`AUTH_SIMPLE_TEXT`]); [`AUTH_NONE`]
    /// for v3 (the field does not exist there and is not checked).
    pub auth_type: u8,
    /// Explicit padding; always zero.
    pub _pad: [u8; 6],
    /// The 8-byte zero-padded password for [`AUTH_SIMPLE_TEXT`]; zero otherwise.
    pub auth_data: [u8; 8],
    /// Silence threshold in ns: an advert from the recorded master arriving more than
    /// this long after the previous one raises [`AdvertEventKind::MasterBack`].
    /// Typically Master_Down_Interval or 3 × Advertisement_Interval. 0 disables it.
    pub silence_ns: u64,
}

/// Value of [`map_names::OBSERVED_ADVERTS`]: the last advert that passed the checks for
/// the key. Written only by the program; a key is absent until the first accepted
/// advert. 40 bytes.
///
/// The record is updated in place without a lock; with adverts for one VRID arriving on
/// several CPUs at once, `count` may lose increments. Every other field comes from one
/// advert unless two CPUs race on the same key in the same microsecond.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObservedAdvert {
    /// `CLOCK_MONOTONIC` (bpf_ktime_get_ns) time in ns of the last accepted advert:
    /// the Backup's Master_Down_Timer restarts from here (RFC 5798 §6.4.2).
    pub last_seen_ns: u64,
    /// Number of accepted adverts since the key was first seen (all sources).
    pub count: u64,
    /// Source address of the last accepted advert: 4 bytes + 12 zero bytes for IPv4,
    /// 16 bytes for IPv6, as on the wire.
    pub src_addr: [u8; 16],
    /// [`FAMILY_IPV4`] or [`FAMILY_IPV6`].
    pub family: u8,
    /// The advert's priority (0 = the master is leaving, RFC 5798 §6.4.3).
    pub priority: u8,
    /// The advert's VRRP version, 2 or 3.
    pub version: u8,
    /// The advert's Count IPvX Addr field.
    pub address_count: u8,
    /// The advert's interval in centiseconds: v3 Max Advertise Interval, or the v2
    /// Adver Int (seconds) × 100.
    pub interval_cs: u16,
    /// Explicit padding; always zero.
    pub _pad: [u8; 2],
}

/// Why the program pushed an [`AdvertEvent`]; the `kind` field of the event, as `u32`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdvertEventKind {
    /// First accepted advert for the key, or one from a different source than the
    /// recorded master.
    NewMaster = 1,
    /// The recorded master changed its priority (to anything but 0).
    PriorityChanged = 2,
    /// The master sent priority 0: it is leaving, and a Backup should take over after
    /// Skew_Time instead of Master_Down_Interval (RFC 5798 §6.4.2). Raised when the
    /// priority becomes 0, not for every further priority-0 advert.
    PriorityZero = 3,
    /// The recorded master was heard again after more than `WatchEntry::silence_ns`.
    MasterBack = 4,
    /// The recorded master changed its advertisement interval (a v3 Backup adopts it as
    /// Master_Adver_Interval, RFC 5798 §6.4.2).
    IntervalChanged = 5,
}

impl AdvertEventKind {
    /// The kind for a raw `kind` value, or `None` for a value this build does not know.
    pub const fn from_u32(value: u32) -> Option<Self> {
        match value {
            1 => Some(Self::NewMaster),
            2 => Some(Self::PriorityChanged),
            3 => Some(Self::PriorityZero),
            4 => Some(Self::MasterBack),
            5 => Some(Self::IntervalChanged),
            _ => None,
        }
    }
}

/// One record in [`map_names::ADVERT_EVENTS`]: the advert that caused it and what was
/// recorded before it. 72 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdvertEvent {
    /// An [`AdvertEventKind`] as `u32`.
    pub kind: u32,
    /// Interface the advert arrived on.
    pub ifindex: u32,
    /// `CLOCK_MONOTONIC` time in ns the advert was seen (its `last_seen_ns`).
    pub seen_ns: u64,
    /// ns since the previous accepted advert for the key; 0 on first sight.
    pub gap_ns: u64,
    /// Source address of the advert (layout as in [`ObservedAdvert::src_addr`]).
    pub src_addr: [u8; 16],
    /// Source address recorded before this advert; zero on first sight.
    pub prev_src_addr: [u8; 16],
    /// Virtual router identifier.
    pub vrid: u8,
    /// [`FAMILY_IPV4`] or [`FAMILY_IPV6`].
    pub family: u8,
    /// The advert's priority.
    pub priority: u8,
    /// Priority recorded before this advert; 0 on first sight.
    pub prev_priority: u8,
    /// The advert's interval in centiseconds.
    pub interval_cs: u16,
    /// Interval recorded before this advert; 0 on first sight.
    pub prev_interval_cs: u16,
    /// 1 if there was a record before this advert (the `prev_*` and `gap_ns` fields are
    /// meaningful), 0 on first sight.
    pub has_previous: u32,
    /// Explicit padding; always zero.
    pub _pad: [u8; 4],
}

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
    /// IPv4 protocol 112 / IPv6 next header 112 frames (every advert candidate).
    AdvertsSeen = 6,
    /// Adverts that passed every check and were recorded in `OBSERVED_ADVERTS`.
    AdvertsAccepted = 7,
    /// Adverts for an (interface, VRID, family) nobody watches: passed untouched, up to
    /// [`UNWATCHED_ADVERTS_PER_WINDOW`] per CPU and window.
    AdvertsUnwatched = 8,
    /// Frame ends before the IP header, the VRRP fixed header, or the length the IP
    /// header claims.
    AdvertDroppedTruncated = 9,
    /// IPv4 TTL or IPv6 hop limit is not 255 (RFC 5798 §7.1: sent from off-link).
    AdvertDroppedTtl = 10,
    /// VRRP version differs from the watched one.
    AdvertDroppedVersion = 11,
    /// VRRP type is not 1 (Advertisement).
    AdvertDroppedType = 12,
    /// IP payload length differs from what the Count IPvX Addr field implies.
    AdvertDroppedLength = 13,
    /// v2 auth type differs from the watched one, or the simple-text password does not
    /// match (RFC 3768 §7.1).
    AdvertDroppedAuth = 14,
    /// VRRP checksum is wrong (v3: with the pseudo-header, RFC 5798 §5.2.8; v2: over the
    /// VRRP message, RFC 3768 §5.3.8).
    AdvertDroppedChecksum = 15,
    /// IPv4 fragment: the program cannot check a partial advert.
    AdvertDroppedFragment = 16,
    /// VRRP message longer than [`MAX_CHECKED_ADVERT_LEN`]: not checked, not recorded.
    AdvertDroppedTooLong = 17,
    /// Ring buffer full: an advert event was lost (the map record was still updated).
    AdvertEventsLost = 18,
    /// Advert events pushed to the ring buffer.
    AdvertEventsSent = 19,
    /// Neighbour solicitations for a managed IPv6 VIP answered with a neighbour
    /// advertisement (XDP_TX).
    NdpReplies = 20,
    /// Neighbour solicitations for a managed IPv6 VIP whose lease has expired, dropped.
    NdpDroppedExpired = 21,
    /// Neighbour solicitations for a managed IPv6 VIP that fail the RFC 4861 §7.1.1
    /// checks (hop limit, checksum, code, length, options, DAD addressing), dropped as
    /// the kernel would drop them.
    NdpDroppedMalformed = 22,
    /// Neighbour solicitations not for a managed VIP, passed to the kernel.
    NdpPassed = 23,
    /// Solicitations for a live VIP that the program could not turn into an
    /// advertisement in place (no tailroom to add the link-layer option): passed, so
    /// the kernel answers.
    NdpNoRoom = 24,
    /// Unwatched adverts beyond [`UNWATCHED_ADVERTS_PER_WINDOW`] in a window, dropped
    /// (a flood of VRIDs nobody here runs). Counted in `adverts_unwatched` as well.
    AdvertsUnwatchedDropped = 25,
}

impl Stat {
    /// Every counter, in index order.
    pub const ALL: [Stat; 26] = [
        Stat::Packets,
        Stat::ArpReplies,
        Stat::ArpDroppedExpired,
        Stat::ArpPassed,
        Stat::ArpMalformed,
        Stat::ArpGratuitousPassed,
        Stat::AdvertsSeen,
        Stat::AdvertsAccepted,
        Stat::AdvertsUnwatched,
        Stat::AdvertDroppedTruncated,
        Stat::AdvertDroppedTtl,
        Stat::AdvertDroppedVersion,
        Stat::AdvertDroppedType,
        Stat::AdvertDroppedLength,
        Stat::AdvertDroppedAuth,
        Stat::AdvertDroppedChecksum,
        Stat::AdvertDroppedFragment,
        Stat::AdvertDroppedTooLong,
        Stat::AdvertEventsLost,
        Stat::AdvertEventsSent,
        Stat::NdpReplies,
        Stat::NdpDroppedExpired,
        Stat::NdpDroppedMalformed,
        Stat::NdpPassed,
        Stat::NdpNoRoom,
        Stat::AdvertsUnwatchedDropped,
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
            Stat::AdvertsSeen => "adverts_seen",
            Stat::AdvertsAccepted => "adverts_accepted",
            Stat::AdvertsUnwatched => "adverts_unwatched",
            Stat::AdvertDroppedTruncated => "advert_dropped_truncated",
            Stat::AdvertDroppedTtl => "advert_dropped_ttl",
            Stat::AdvertDroppedVersion => "advert_dropped_version",
            Stat::AdvertDroppedType => "advert_dropped_type",
            Stat::AdvertDroppedLength => "advert_dropped_length",
            Stat::AdvertDroppedAuth => "advert_dropped_auth",
            Stat::AdvertDroppedChecksum => "advert_dropped_checksum",
            Stat::AdvertDroppedFragment => "advert_dropped_fragment",
            Stat::AdvertDroppedTooLong => "advert_dropped_too_long",
            Stat::AdvertEventsLost => "advert_events_lost",
            Stat::AdvertEventsSent => "advert_events_sent",
            Stat::NdpReplies => "ndp_replies",
            Stat::NdpDroppedExpired => "ndp_dropped_expired",
            Stat::NdpDroppedMalformed => "ndp_dropped_malformed",
            Stat::NdpPassed => "ndp_passed",
            Stat::NdpNoRoom => "ndp_no_room",
            Stat::AdvertsUnwatchedDropped => "adverts_unwatched_dropped",
        }
    }
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: both are #[repr(C)], contain only integers and byte arrays, and have
    // explicit padding, so every bit pattern is valid and there are no uninit bytes.
    unsafe impl aya::Pod for super::VipKey {}
    unsafe impl aya::Pod for super::Vip6Key {}
    unsafe impl aya::Pod for super::VipLease {}
    unsafe impl aya::Pod for super::WatchKey {}
    unsafe impl aya::Pod for super::WatchEntry {}
    unsafe impl aya::Pod for super::ObservedAdvert {}
    unsafe impl aya::Pod for super::AdvertEvent {}
}

// Layouts are part of the contract with pinned maps of an older daemon: a change here
// must be deliberate (and the loader refuses pinned maps whose sizes differ).
const _: () = {
    assert!(core::mem::size_of::<VipKey>() == 8);
    assert!(core::mem::size_of::<Vip6Key>() == 20);
    assert!(core::mem::size_of::<VipLease>() == 24);
    assert!(core::mem::size_of::<WatchKey>() == 8);
    assert!(core::mem::size_of::<WatchEntry>() == 24);
    assert!(core::mem::size_of::<ObservedAdvert>() == 40);
    assert!(core::mem::size_of::<AdvertEvent>() == 72);
    let mut i = 0;
    while i < Stat::ALL.len() {
        assert!(
            Stat::ALL[i] as usize == i,
            "Stat::ALL must list counters in index order"
        );
        i += 1;
    }
};

// ---- BFD (RFC 5880/5881): control packets recorded by the XDP program ----
//
// Kept apart from the VRRP types above. The daemon creates one `BFD_SESSIONS` entry per
// BFD session (key: its local discriminator, which is the Your Discriminator of the
// neighbour's packets), with the neighbour's address and the lowest TTL it accepts;
// the program only updates entries that exist, so a flood of made-up discriminators
// cannot fill the map. Not pinned: sessions start afresh with a daemon.

/// `HashMap<u32, BfdObserved>`: the last control packet from each session's neighbour.
pub const BFD_SESSIONS_MAP: &str = "BFD_SESSIONS";
/// UDP destination port of single-hop BFD control packets (RFC 5881 §4).
pub const BFD_CONTROL_PORT: u16 = 3784;
/// Bytes of a control packet the program records: the mandatory section (RFC 5880
/// §4.1); authentication, which vipd does not use, is not kept.
pub const BFD_CONTROL_LEN: usize = 24;
/// Largest number of BFD sessions the map holds.
pub const MAX_BFD_SESSIONS: u32 = 256;

/// Value of [`BFD_SESSIONS_MAP`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BfdObserved {
    /// When the program last recorded a packet (CLOCK_MONOTONIC ns, `bpf_ktime_get_ns`);
    /// 0 until the first.
    pub last_seen_ns: u64,
    /// Packets recorded.
    pub count: u64,
    /// The neighbour (set by the daemon): IPv4 in the first 4 bytes, network order.
    pub neighbor: [u8; 16],
    /// [`FAMILY_IPV4`] or [`FAMILY_IPV6`] (set by the daemon).
    pub family: u8,
    /// Lowest TTL / hop limit accepted, 255 for single hop (set by the daemon).
    pub min_ttl: u8,
    /// Explicit padding.
    pub _pad: [u8; 2],
    /// The last recorded packet's first [`BFD_CONTROL_LEN`] bytes.
    pub packet: [u8; BFD_CONTROL_LEN],
    /// Explicit padding to a multiple of 8.
    pub _pad2: [u8; 4],
}

#[cfg(feature = "user")]
mod bfd_pod {
    // SAFETY: #[repr(C)], only integers and byte arrays, explicit padding.
    unsafe impl aya::Pod for super::BfdObserved {}
}

const _: () = assert!(core::mem::size_of::<BfdObserved>() == 64);
