//! The load balancer's maps: services, backends, scheduler tables, flows, persistence
//! and counters (keepalived `virtual_server` in XDP, direct routing).
//!
//! The daemon owns every map but the flow, persistence and counter maps, which the
//! program writes. A pool change is atomic for the program: the daemon writes the new
//! scheduler table into the half of a service's table slot the program is not reading,
//! then replaces the service entry (one hash-map update) to point at it.

/// Map names.
pub mod map_names {
    /// `HashMap<LbServiceKey, LbService>`: the (address, port, protocol) triples
    /// balanced here. Written by the daemon.
    pub const LB_SERVICES: &str = "LB_SERVICES";
    /// `HashMap<LbAddrKey, u32>`: every service address (any port), so fragments and
    /// malformed packets to a service address are counted and dropped, not passed.
    pub const LB_ADDRS: &str = "LB_ADDRS";
    /// `Array<u32>` of backend ids: two halves of [`crate::lb::LB_TABLE_SIZE`] entries
    /// per service id.
    pub const LB_TABLES: &str = "LB_TABLES";
    /// `Array<LbBackend>` by backend id.
    pub const LB_BACKENDS: &str = "LB_BACKENDS";
    /// `LruHashMap<LbFlowKey, LbFlow>`: established flows and their backend.
    pub const LB_FLOWS: &str = "LB_FLOWS";
    /// `LruHashMap<LbPersistKey, LbPersist>`: persistence_timeout's client → backend.
    pub const LB_PERSIST: &str = "LB_PERSIST";
    /// `PerCpuArray<LbCounters>` by backend id: packets and bytes forwarded.
    pub const LB_BACKEND_STATS: &str = "LB_BACKEND_STATS";
    /// `Array<u64>` by backend id: flows the balancer saw open and not yet close
    /// (lc/wlc input); atomically updated by the program, recounted by the daemon.
    pub const LB_ACTIVE: &str = "LB_ACTIVE";
    /// `PerCpuArray<u32>` by service id: the rr/wrr cursor.
    pub const LB_CURSORS: &str = "LB_CURSORS";
    /// `PerCpuArray<u64>` indexed by [`crate::lb::LbStat`].
    pub const LB_STATS: &str = "LB_STATS";
}

/// Scheduler table size per service: a prime (Maglev needs one) well above 100 × the
/// largest pool, so Maglev's spread stays within ~1 % (Maglev paper §3.4).
pub const LB_TABLE_SIZE: u32 = 4093;
/// Service ids (tables, cursors).
pub const MAX_LB_SERVICES: u32 = 256;
/// (address, port, protocol) keys: a `virtual_server_group` maps many keys to one id.
pub const MAX_LB_SERVICE_KEYS: u32 = 1024;
/// Backend ids per service: service `id` owns ids `id × this ..`; the last one is its
/// sorry server.
pub const LB_BACKENDS_PER_SERVICE: u32 = 64;
/// Backends (real servers, sorry servers included) over all services.
pub const MAX_LB_BACKENDS: u32 = MAX_LB_SERVICES * LB_BACKENDS_PER_SERVICE;
/// Flow table entries (LRU: the oldest flows are forgotten first).
pub const MAX_LB_FLOWS: u32 = 65536;
/// Persistence table entries (LRU).
pub const MAX_LB_PERSIST: u32 = 16384;
/// Largest backend count the lc/wlc scan visits per service.
pub const MAX_LB_SCAN: u32 = 64;
/// No backend (empty table slot, no sorry server).
pub const NO_BACKEND: u32 = u32::MAX;

/// IP protocol numbers.
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;

/// [`LbService::algo`] values.
pub mod algo {
    /// Round robin over the table's sequence (rr and wrr: the daemon bakes the weights
    /// into the sequence).
    pub const SEQUENCE: u8 = 0;
    /// Hash of the client (address, optionally port) into the table (sh, mh: the
    /// daemon builds source-hash buckets or a Maglev table).
    pub const HASH: u8 = 1;
    /// Least (weighted) connections: scan the service's backends.
    pub const LEAST_CONN: u8 = 2;
}

/// [`LbService::flags`] bits.
pub mod service_flags {
    /// Hash the client's source port too (sh-port / mh-port).
    pub const HASH_PORT: u8 = 1;
    /// persistence_timeout is set.
    pub const PERSIST: u8 = 2;
    /// lc: every weight counts as 1.
    pub const UNWEIGHTED: u8 = 4;
    /// IP-in-IP tunnel to the backends instead of direct routing.
    pub const TUNNEL: u8 = 8;
}

/// [`LbBackend::flags`] bits.
pub mod backend_flags {
    /// In the pool: its flows keep going to it (weight 0 = drain).
    pub const IN_POOL: u8 = 1;
}

/// Key of `LB_SERVICES`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LbServiceKey {
    /// Destination address, IPv4 in the first 4 bytes, rest zero.
    pub addr: [u8; 16],
    /// Destination port, network byte order; 0 matches every port.
    pub port_be: u16,
    /// [`PROTO_TCP`] or [`PROTO_UDP`].
    pub proto: u8,
    /// `crate::FAMILY_IPV4` / `crate::FAMILY_IPV6`.
    pub family: u8,
}

/// Key of `LB_ADDRS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LbAddrKey {
    /// The address, IPv4 in the first 4 bytes.
    pub addr: [u8; 16],
    /// Family.
    pub family: u8,
    /// Explicit padding; always zero.
    pub _pad: [u8; 3],
}

/// Value of `LB_SERVICES`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LbService {
    /// Service id: index into the cursors, and `table_base / (2 × LB_TABLE_SIZE)`.
    pub id: u32,
    /// First entry of the live table half in `LB_TABLES`.
    pub table_base: u32,
    /// Entries in use in the live half (0: no backend can take a new flow).
    pub table_len: u32,
    /// First backend id of this service (lc/wlc scan).
    pub backend_base: u32,
    /// Backends from `backend_base` (lc/wlc scan; at most [`MAX_LB_SCAN`]).
    pub backend_count: u32,
    /// Where every new flow goes while the pool is down ([`NO_BACKEND`]: nowhere).
    pub sorry_backend: u32,
    /// persistence_timeout in ns.
    pub persist_timeout_ns: u64,
    /// persistence_granularity as an address mask (all ones: the whole address); a
    /// mask rather than a prefix length keeps the program's masking branch-free.
    pub persist_mask: [u8; 16],
    /// One of [`algo`].
    pub algo: u8,
    /// [`service_flags`] bits.
    pub flags: u8,
    /// Explicit padding; always zero.
    pub _pad: [u8; 6],
}

/// Value of `LB_BACKENDS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LbBackend {
    /// The real server's MAC (next hop).
    pub mac: [u8; 6],
    /// Our MAC on `ifindex`: the rewritten frame's source.
    pub src_mac: [u8; 6],
    /// Interface towards the real server: XDP_TX when it is the ingress one, else a
    /// redirect.
    pub ifindex: u32,
    /// Effective weight (0: no new flows).
    pub weight: u32,
    /// [`backend_flags`] bits.
    pub flags: u8,
    /// Family of `addr` and `tunnel_src`.
    pub family: u8,
    /// Explicit padding; always zero.
    pub _pad: [u8; 2],
    /// Real server address (tunnel destination).
    pub addr: [u8; 16],
    /// Outer source address for the IP-in-IP tunnel.
    pub tunnel_src: [u8; 16],
}

/// Key of `LB_FLOWS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LbFlowKey {
    /// Client address.
    pub src: [u8; 16],
    /// Service address.
    pub dst: [u8; 16],
    /// Client port, network byte order.
    pub sport_be: u16,
    /// Service port, network byte order.
    pub dport_be: u16,
    /// Protocol.
    pub proto: u8,
    /// Family.
    pub family: u8,
    /// Explicit padding; always zero.
    pub _pad: [u8; 2],
}

/// Value of `LB_FLOWS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LbFlow {
    /// Backend id.
    pub backend: u32,
    /// Service id (status: flows per service).
    pub service: u32,
    /// Last packet, CLOCK_MONOTONIC ns.
    pub last_ns: u64,
    /// 1 once a FIN or RST from the client was seen (counted out of `LB_ACTIVE`).
    pub closing: u32,
    /// Explicit padding; always zero.
    pub _pad: u32,
}

/// Key of `LB_PERSIST`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LbPersistKey {
    /// Service id.
    pub service: u32,
    /// Family.
    pub family: u8,
    /// Explicit padding; always zero.
    pub _pad: [u8; 3],
    /// Client address masked to the persistence prefix.
    pub client: [u8; 16],
}

/// Value of `LB_PERSIST`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LbPersist {
    /// Backend id.
    pub backend: u32,
    /// Explicit padding; always zero.
    pub _pad: u32,
    /// Last packet from this client, CLOCK_MONOTONIC ns.
    pub last_ns: u64,
}

/// Value of `LB_BACKEND_STATS` (per CPU).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LbCounters {
    /// Frames forwarded to the backend.
    pub packets: u64,
    /// Bytes of those frames.
    pub bytes: u64,
}

/// Index of each counter in `LB_STATS`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LbStat {
    /// Frames to a service forwarded with XDP_TX.
    Forwarded = 0,
    /// Frames to a service forwarded with a redirect to another interface.
    Redirected = 1,
    /// New flows scheduled.
    NewFlows = 2,
    /// Packets of a TCP flow the table did not know, placed by the consistent hash
    /// (mh/sh: what keeps a connection across a failover).
    FlowsRecovered = 3,
    /// Non-SYN TCP packets of an unknown flow for a scheduler that cannot place them
    /// (rr/wrr/lc/wlc): dropped.
    DroppedUnknownFlow = 4,
    /// IPv4 fragments (or an IPv6 fragment header) to a service address: dropped.
    DroppedFragment = 5,
    /// Headers cut short (IP, TCP, UDP) to a service address, or (to a service) an IP
    /// length field that does not cover the headers or runs past the frame: dropped.
    DroppedTruncated = 6,
    /// No backend can take a new flow and there is no sorry server: dropped.
    DroppedNoBackend = 7,
    /// IPv6 with extension headers to a service address: passed to the kernel.
    PassedExtensionHeaders = 8,
    /// Sent to the sorry server.
    Sorry = 9,
    /// Packets of a persistent client sent to its remembered backend.
    PersistHits = 10,
    /// The backend entry was unusable (no MAC yet): dropped.
    DroppedNoRoute = 11,
    /// A redirect the kernel refused.
    RedirectFailed = 12,
}

impl LbStat {
    /// Every counter, in index order.
    pub const ALL: [LbStat; 13] = [
        LbStat::Forwarded,
        LbStat::Redirected,
        LbStat::NewFlows,
        LbStat::FlowsRecovered,
        LbStat::DroppedUnknownFlow,
        LbStat::DroppedFragment,
        LbStat::DroppedTruncated,
        LbStat::DroppedNoBackend,
        LbStat::PassedExtensionHeaders,
        LbStat::Sorry,
        LbStat::PersistHits,
        LbStat::DroppedNoRoute,
        LbStat::RedirectFailed,
    ];
    /// Number of slots.
    pub const COUNT: u32 = Self::ALL.len() as u32;

    /// Stable snake_case name (status output, metrics).
    pub const fn name(self) -> &'static str {
        match self {
            LbStat::Forwarded => "lb_forwarded",
            LbStat::Redirected => "lb_redirected",
            LbStat::NewFlows => "lb_new_flows",
            LbStat::FlowsRecovered => "lb_flows_recovered",
            LbStat::DroppedUnknownFlow => "lb_dropped_unknown_flow",
            LbStat::DroppedFragment => "lb_dropped_fragment",
            LbStat::DroppedTruncated => "lb_dropped_truncated",
            LbStat::DroppedNoBackend => "lb_dropped_no_backend",
            LbStat::PassedExtensionHeaders => "lb_passed_extension_headers",
            LbStat::Sorry => "lb_sorry",
            LbStat::PersistHits => "lb_persist_hits",
            LbStat::DroppedNoRoute => "lb_dropped_no_route",
            LbStat::RedirectFailed => "lb_redirect_failed",
        }
    }
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all are #[repr(C)], contain only integers and byte arrays, and have
    // explicit padding, so every bit pattern is valid and there are no uninit bytes.
    unsafe impl aya::Pod for super::LbServiceKey {}
    unsafe impl aya::Pod for super::LbAddrKey {}
    unsafe impl aya::Pod for super::LbService {}
    unsafe impl aya::Pod for super::LbBackend {}
    unsafe impl aya::Pod for super::LbFlowKey {}
    unsafe impl aya::Pod for super::LbFlow {}
    unsafe impl aya::Pod for super::LbPersistKey {}
    unsafe impl aya::Pod for super::LbPersist {}
    unsafe impl aya::Pod for super::LbCounters {}
}

// No implicit padding anywhere (the Pod impls rely on it).
const _: () = {
    assert!(core::mem::size_of::<LbServiceKey>() == 20);
    assert!(core::mem::size_of::<LbAddrKey>() == 20);
    assert!(core::mem::size_of::<LbService>() == 56);
    assert!(core::mem::size_of::<LbBackend>() == 56);
    assert!(core::mem::size_of::<LbFlowKey>() == 40);
    assert!(core::mem::size_of::<LbFlow>() == 24);
    assert!(core::mem::size_of::<LbPersistKey>() == 24);
    assert!(core::mem::size_of::<LbPersist>() == 16);
    let mut i = 0;
    while i < LbStat::ALL.len() {
        assert!(
            LbStat::ALL[i] as usize == i,
            "LbStat::ALL must be in index order"
        );
        i += 1;
    }
};
