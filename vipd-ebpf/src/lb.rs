//! The load balancer's data path: keepalived's `virtual_server` with `lb_kind DR`, in
//! XDP.
//!
//! A TCP or UDP packet to a configured (address, port, protocol) is given a backend and
//! sent on: direct routing rewrites the Ethernet addresses (the real server holds the
//! VIP on `lo` and answers the client itself), then XDP_TX, or a redirect when the
//! backend sits behind another interface. Everything that is not to a service address
//! costs one hash lookup and goes on with XDP_PASS.
//!
//! A flow's backend is remembered in `LB_FLOWS` (5-tuple, LRU), so established flows stay
//! put when the pool changes; only a SYN (or any UDP datagram) starts a new flow. A TCP
//! packet of a flow the table does not know is placed by the consistent hash when the
//! scheduler is one (mh, sh: this is what keeps a connection through a VRRP failover,
//! since the new master builds the same table) and dropped otherwise, because any other
//! choice would send it to a server that never saw its SYN.
//!
//! Packets to a service address that the program cannot classify (fragments, cut
//! headers) are counted and dropped, never forwarded on a guess; IPv6 with extension
//! headers is counted and passed to the kernel.

use aya_ebpf::{
    bindings::xdp_action,
    cty::c_void,
    helpers::generated::{bpf_ktime_get_coarse_ns, bpf_loop, bpf_redirect},
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray},
    programs::XdpContext,
};
use vipd_common::{
    FAMILY_IPV4, FAMILY_IPV6,
    lb::{
        LB_TABLE_SIZE, LbAddrKey, LbBackend, LbCounters, LbFlow, LbFlowKey, LbPersist,
        LbPersistKey, LbService, LbServiceKey, LbStat, MAX_LB_BACKENDS, MAX_LB_FLOWS,
        MAX_LB_PERSIST, MAX_LB_SCAN, MAX_LB_SERVICE_KEYS, MAX_LB_SERVICES, NO_BACKEND, PROTO_TCP,
        PROTO_UDP, algo, backend_flags, service_flags,
    },
};

use crate::{ETH_HLEN, bytes_at, read, read_u16, write};

#[map(name = "LB_SERVICES")]
static LB_SERVICES: HashMap<LbServiceKey, LbService> =
    HashMap::with_max_entries(MAX_LB_SERVICE_KEYS, 0);

#[map(name = "LB_ADDRS")]
static LB_ADDRS: HashMap<LbAddrKey, u32> = HashMap::with_max_entries(MAX_LB_SERVICE_KEYS, 0);

#[map(name = "LB_TABLES")]
static LB_TABLES: Array<u32> = Array::with_max_entries(MAX_LB_SERVICES * 2 * LB_TABLE_SIZE, 0);

#[map(name = "LB_BACKENDS")]
static LB_BACKENDS: Array<LbBackend> = Array::with_max_entries(MAX_LB_BACKENDS, 0);

/// `BPF_F_NO_COMMON_LRU`: each CPU evicts from its own LRU lists. With one common list,
/// every new flow into a full table takes the list's lock, which a connection-per-request
/// load does tens of thousands of times a second from every CPU.
const BPF_F_NO_COMMON_LRU: u32 = 1 << 1;

#[map(name = "LB_FLOWS")]
static LB_FLOWS: LruHashMap<LbFlowKey, LbFlow> =
    LruHashMap::with_max_entries(MAX_LB_FLOWS, BPF_F_NO_COMMON_LRU);

#[map(name = "LB_PERSIST")]
static LB_PERSIST: LruHashMap<LbPersistKey, LbPersist> =
    LruHashMap::with_max_entries(MAX_LB_PERSIST, BPF_F_NO_COMMON_LRU);

#[map(name = "LB_BACKEND_STATS")]
static LB_BACKEND_STATS: PerCpuArray<LbCounters> =
    PerCpuArray::with_max_entries(MAX_LB_BACKENDS, 0);

#[map(name = "LB_ACTIVE")]
static LB_ACTIVE: Array<u64> = Array::with_max_entries(MAX_LB_BACKENDS, 0);

#[map(name = "LB_CURSORS")]
static LB_CURSORS: PerCpuArray<u32> = PerCpuArray::with_max_entries(MAX_LB_SERVICES, 0);

#[map(name = "LB_STATS")]
static LB_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(LbStat::COUNT, 0);

const IPV4_MIN_HLEN: usize = 20;
const IPV6_HLEN: usize = 40;
const TCP_MIN_HLEN: usize = 20;
const UDP_HLEN: usize = 8;
const NEXT_HEADER_FRAGMENT: u8 = 44;
const NEXT_HEADER_ICMPV6: u8 = 58;
const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_ACK: u8 = 0x10;

#[inline(always)]
fn bump(stat: LbStat) {
    if let Some(counter) = LB_STATS.get_ptr_mut(stat as u32) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe { *counter += 1 };
    }
}

/// Per-CPU scratch space for the map keys of one packet. The BPF stack is 512 bytes for
/// the whole call chain and 16-byte addresses add up fast, so keys live here: the
/// 5-tuple is parsed straight into `flow`, and map lookups take these as keys.
#[repr(C)]
struct Scratch {
    flow: LbFlowKey,
    addr: LbAddrKey,
    service: LbServiceKey,
    persist: LbPersistKey,
}

#[map(name = "LB_SCRATCH")]
static LB_SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(1, 0);

/// This CPU's scratch space, with the address fields zeroed.
#[inline(always)]
fn scratch() -> Option<&'static mut Scratch> {
    let slot = LB_SCRATCH.get_ptr_mut(0)?;
    // SAFETY: a per-CPU map value; nothing else runs on this CPU during the program.
    let scratch = unsafe { &mut *slot };
    scratch.flow.src = [0; 16];
    scratch.flow.dst = [0; 16];
    scratch.flow._pad = [0; 2];
    scratch.addr._pad = [0; 3];
    scratch.persist._pad = [0; 3];
    Some(scratch)
}

/// An IPv4 frame: `None` when it is not for a service address (the caller passes it),
/// else the verdict. Not inlined: its stack frame must not add to the advert path's.
#[inline(never)]
pub fn ipv4(ctx: &XdpContext) -> Option<u32> {
    let ip = bytes_at(ctx, ETH_HLEN, IPV4_MIN_HLEN)?;
    // SAFETY (all `ip.add` reads): offsets < IPV4_MIN_HLEN, checked above.
    let version_ihl = unsafe { *ip };
    if version_ihl >> 4 != 4 {
        return None;
    }
    let proto = unsafe { *ip.add(9) };
    let scratch = scratch()?;
    let dst: [u8; 4] = unsafe { read(ip.add(16)) };
    scratch.flow.dst[..4].copy_from_slice(&dst);
    scratch.addr.addr = scratch.flow.dst;
    scratch.addr.family = FAMILY_IPV4;
    LB_ADDRS.get_ptr(&scratch.addr)?;
    if proto != PROTO_TCP && proto != PROTO_UDP {
        // ICMP, …: the kernel answers for the address it holds.
        return None;
    }
    let header_len = (version_ihl & 0x0f) as usize * 4;
    if header_len < IPV4_MIN_HLEN {
        bump(LbStat::DroppedTruncated);
        return Some(xdp_action::XDP_DROP);
    }
    // SAFETY: bytes 6..8 are inside the checked header.
    if unsafe { read_u16(ip.add(6)) } & 0x3fff != 0 {
        // RFC 791: a fragment; only the first has ports, none can be placed alone.
        bump(LbStat::DroppedFragment);
        return Some(xdp_action::XDP_DROP);
    }
    let src: [u8; 4] = unsafe { read(ip.add(12)) };
    scratch.flow.src[..4].copy_from_slice(&src);
    scratch.flow.family = FAMILY_IPV4;
    scratch.flow.proto = proto;
    // SAFETY: bytes 2..4 are inside the checked header.
    let total_len = unsafe { read_u16(ip.add(2)) } as usize;
    // A Total Length shorter than the header reads as 0 bytes after it: not whole.
    let l4_len = if total_len > header_len {
        total_len - header_len
    } else {
        0
    };
    transport(ctx, ETH_HLEN + (header_len & 0x3c), l4_len, scratch)
}

/// An IPv6 frame: as [`ipv4`]. Only a fixed header directly followed by TCP or UDP is
/// balanced.
#[inline(never)]
pub fn ipv6(ctx: &XdpContext) -> Option<u32> {
    let ip = bytes_at(ctx, ETH_HLEN, IPV6_HLEN)?;
    // SAFETY (all `ip.add` reads): offsets < IPV6_HLEN, checked above.
    if unsafe { *ip } >> 4 != 6 {
        return None;
    }
    let next_header = unsafe { *ip.add(6) };
    let scratch = scratch()?;
    copy16(&mut scratch.flow.dst, unsafe { ip.add(24) });
    scratch.addr.addr = scratch.flow.dst;
    scratch.addr.family = FAMILY_IPV6;
    LB_ADDRS.get_ptr(&scratch.addr)?;
    if next_header == NEXT_HEADER_FRAGMENT {
        bump(LbStat::DroppedFragment);
        return Some(xdp_action::XDP_DROP);
    }
    if next_header != PROTO_TCP && next_header != PROTO_UDP {
        // ICMPv6 (neighbour discovery!) must reach the kernel; so do extension
        // headers, which the program does not walk.
        if next_header != NEXT_HEADER_ICMPV6 {
            bump(LbStat::PassedExtensionHeaders);
        }
        return None;
    }
    copy16(&mut scratch.flow.src, unsafe { ip.add(8) });
    scratch.flow.family = FAMILY_IPV6;
    scratch.flow.proto = next_header;
    // SAFETY: bytes 4..6 are inside the checked header.
    let payload_len = unsafe { read_u16(ip.add(4)) } as usize;
    transport(ctx, ETH_HLEN + IPV6_HLEN, payload_len, scratch)
}

/// Copies 16 bytes at `p` into `out` without a stack temporary.
///
/// `p..p + 16` must have been checked against `data_end` by the caller.
#[inline(always)]
fn copy16(out: &mut [u8; 16], p: *const u8) {
    let mut i = 0;
    while i < 16 {
        // SAFETY: i < 16, and the caller checked all 16 bytes.
        out[i] = unsafe { *p.add(i) };
        i += 1;
    }
}

/// Reads the ports (and TCP flags) into the flow key, finds the service and forwards.
/// `l4_len` is what the IP header says follows it (Total Length − header, or Payload
/// Length).
#[inline(always)]
fn transport(
    ctx: &XdpContext,
    l4_offset: usize,
    l4_len: usize,
    scratch: &mut Scratch,
) -> Option<u32> {
    let key = &mut scratch.flow;
    let is_tcp = key.proto == PROTO_TCP;
    let need = if is_tcp { TCP_MIN_HLEN } else { UDP_HLEN };
    let Some(l4) = bytes_at(ctx, l4_offset, need) else {
        bump(LbStat::DroppedTruncated);
        return Some(xdp_action::XDP_DROP);
    };
    // SAFETY: ports at 0..4 and TCP flags at 13 are inside the `need` bytes checked.
    unsafe {
        key.sport_be = u16::from_ne_bytes(read::<2>(l4));
        key.dport_be = u16::from_ne_bytes(read::<2>(l4.add(2)));
    }
    let tcp_flags = if is_tcp { unsafe { *l4.add(13) } } else { 0 };
    let service_key = &mut scratch.service;
    service_key.addr = key.dst;
    service_key.port_be = key.dport_be;
    service_key.proto = key.proto;
    service_key.family = key.family;
    // SAFETY: the daemon replaces entries whole (a hash-map update swaps the element),
    // so the reference stays a consistent value for this run.
    let service = match unsafe { LB_SERVICES.get(&*service_key) } {
        Some(service) => service,
        None => {
            service_key.port_be = 0;
            // A service address, but not a balanced port: the kernel's (ssh to the VIP).
            unsafe { LB_SERVICES.get(&*service_key) }?
        }
    };
    // RFC 791 (Total Length) / RFC 8200 §3 (Payload Length): forward only a whole
    // datagram, whose length field covers the transport header and whose bytes all
    // arrived (Ethernet may pad a frame, never cut one). Found by xdp_fuzz: a length
    // field mutated below the headers or past the frame was forwarded, where the real
    // server's stack (ip_rcv / ipv6_rcv) would only drop it, as IPVS's host does before
    // balancing. Checked after the service lookup: other traffic to the address
    // is the kernel's, whatever its shape.
    if l4_len < need || bytes_at(ctx, l4_offset, l4_len).is_none() {
        bump(LbStat::DroppedTruncated);
        return Some(xdp_action::XDP_DROP);
    }
    Some(forward(ctx, scratch, tcp_flags, service))
}

#[inline(never)]
fn forward(ctx: &XdpContext, scratch: &mut Scratch, tcp_flags: u8, service: &LbService) -> u32 {
    let packet = &scratch.flow;
    // The coarse clock (CLOCK_MONOTONIC as of the last tick, kernel ≥ 5.11): what it
    // stamps (a flow's idleness, a client's persistence) counts in seconds, and it
    // costs a fraction of the precise clock's read of the clock source (a VM's kvm-clock).
    // SAFETY: a BPF helper with no arguments.
    let now_ns = unsafe { bpf_ktime_get_coarse_ns() };
    let is_tcp = packet.proto == PROTO_TCP;
    let closing = is_tcp && tcp_flags & (TCP_FIN | TCP_RST) != 0;
    let mut chosen = NO_BACKEND;
    let mut known = false;
    let opens = is_tcp && tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN;
    if let Some(flow) = LB_FLOWS.get_ptr_mut(packet) {
        known = true;
        // SAFETY: a valid map value pointer; this CPU's update races only with another
        // packet of the same flow, and either write is a valid flow.
        let (backend, closed) = unsafe { ((*flow).backend, (*flow).closing != 0) };
        // A SYN on a flow whose client already sent FIN or RST is a new connection
        // that reuses the client's port (a busy client reuses them all within a
        // minute), not a retransmission: it is scheduled anew, as IPVS does
        // (conn_reuse_mode), so a drained server stops getting new connections.
        if in_pool(backend) && !(opens && closed) {
            chosen = backend;
            unsafe {
                (*flow).last_ns = now_ns;
                if closing && (*flow).closing == 0 {
                    (*flow).closing = 1;
                    active_add(backend, u64::MAX); // wrapping −1
                }
            }
        }
    }
    if chosen == NO_BACKEND {
        let starts_flow = !is_tcp || opens;
        if !starts_flow && !known {
            if service.algo != algo::HASH {
                bump(LbStat::DroppedUnknownFlow);
                return xdp_action::XDP_DROP;
            }
            bump(LbStat::FlowsRecovered);
        }
        chosen = pick(scratch, service, now_ns);
        if chosen == NO_BACKEND {
            bump(LbStat::DroppedNoBackend);
            return xdp_action::XDP_DROP;
        }
        let flow = LbFlow {
            backend: chosen,
            service: service.id,
            last_ns: now_ns,
            closing: closing as u32,
            _pad: 0,
        };
        // A full LRU evicts its oldest flow; an error here only costs the memory of
        // this flow (the next packet schedules it again).
        let _ = LB_FLOWS.insert(&scratch.flow, &flow, 0);
        if !closing {
            active_add(chosen, 1);
        }
        bump(LbStat::NewFlows);
    }
    send(ctx, chosen)
}

/// Backend for a new flow: persistence first, then the scheduler, then the sorry server.
#[inline(never)]
fn pick(scratch: &mut Scratch, service: &LbService, now_ns: u64) -> u32 {
    let packet = &scratch.flow;
    if service.flags & service_flags::PERSIST == 0 {
        return schedule(packet, service);
    }
    let key = &mut scratch.persist;
    key.service = service.id;
    key.family = packet.family;
    let mut i = 0usize;
    while i < 16 {
        key.client[i] = packet.src[i] & service.persist_mask[i];
        i += 1;
    }
    if let Some(entry) = LB_PERSIST.get_ptr_mut(&*key) {
        // SAFETY: a valid map value pointer (see the flow table above).
        let (backend, last_ns) = unsafe { ((*entry).backend, (*entry).last_ns) };
        if now_ns.saturating_sub(last_ns) < service.persist_timeout_ns && usable(backend) {
            unsafe { (*entry).last_ns = now_ns };
            bump(LbStat::PersistHits);
            return backend;
        }
    }
    let backend = schedule(packet, service);
    if backend != NO_BACKEND {
        let entry = LbPersist {
            backend,
            _pad: 0,
            last_ns: now_ns,
        };
        let _ = LB_PERSIST.insert(&*key, &entry, 0);
    }
    backend
}

#[inline(never)]
fn schedule(packet: &LbFlowKey, service: &LbService) -> u32 {
    if service.table_len == 0 {
        if service.sorry_backend != NO_BACKEND {
            bump(LbStat::Sorry);
        }
        return service.sorry_backend;
    }
    let index = match service.algo {
        algo::SEQUENCE => {
            let Some(cursor) = LB_CURSORS.get_ptr_mut(service.id) else {
                return NO_BACKEND;
            };
            // SAFETY: per-CPU slot, no concurrent writer on this CPU.
            unsafe {
                let at = *cursor;
                *cursor = at.wrapping_add(1);
                at % service.table_len
            }
        }
        algo::HASH => {
            let port = if service.flags & service_flags::HASH_PORT != 0 {
                packet.sport_be as u32
            } else {
                0
            };
            client_hash(&packet.src, port) % service.table_len
        }
        _ => return least_connections(service),
    };
    if index >= LB_TABLE_SIZE {
        return NO_BACKEND;
    }
    match LB_TABLES.get(service.table_base + index) {
        Some(backend) => *backend,
        None => NO_BACKEND,
    }
}

/// State of the lc / wlc scan, shared with [`scan_one`] through `bpf_loop`.
#[repr(C)]
struct Scan {
    base: u32,
    unweighted: u32,
    best: u32,
    _pad: u32,
    best_load: u64,
    best_weight: u64,
}

/// lc / wlc: the in-pool backend with weight > 0 whose (active + 1) / weight is least
/// (IPVS compares overheads the same way, by cross-multiplying). The scan runs under
/// `bpf_loop` (kernel ≥ 5.17), so the verifier checks its body once, not once per
/// backend.
#[inline(never)]
fn least_connections(service: &LbService) -> u32 {
    let mut scan = Scan {
        base: service.backend_base,
        unweighted: (service.flags & service_flags::UNWEIGHTED != 0) as u32,
        best: NO_BACKEND,
        _pad: 0,
        best_load: 0,
        best_weight: 1,
    };
    let count = if service.backend_count > MAX_LB_SCAN {
        MAX_LB_SCAN
    } else {
        service.backend_count
    };
    // SAFETY: `scan_one` has the callback signature bpf_loop expects, and `scan` lives
    // until bpf_loop returns.
    unsafe {
        bpf_loop(
            count,
            scan_one as *mut c_void,
            &mut scan as *mut Scan as *mut c_void,
            0,
        )
    };
    scan.best
}

/// One backend of the lc / wlc scan.
#[inline(never)]
extern "C" fn scan_one(index: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: bpf_loop hands back the `Scan` that `least_connections` passed in.
    let scan = unsafe { &mut *(ctx as *mut Scan) };
    let id = scan.base + index as u32;
    let Some(backend) = LB_BACKENDS.get(id) else {
        return 0;
    };
    if backend.flags & backend_flags::IN_POOL == 0 || backend.weight == 0 {
        return 0;
    }
    let weight = if scan.unweighted != 0 {
        1
    } else {
        backend.weight as u64
    };
    let load = LB_ACTIVE.get(id).copied().unwrap_or(0).saturating_add(1);
    if scan.best == NO_BACKEND || load * scan.best_weight < scan.best_load * weight {
        scan.best = id;
        scan.best_load = load;
        scan.best_weight = weight;
    }
    0
}

/// A murmur3-style mix of the client address (and port): the same on every node, so
/// both VRRP routers send a client to the same backend.
#[inline(always)]
fn client_hash(addr: &[u8; 16], port: u32) -> u32 {
    let mut h = 0x9747_b28cu32;
    let mut i = 0usize;
    while i < 16 {
        let word = (addr[i] as u32)
            | (addr[i + 1] as u32) << 8
            | (addr[i + 2] as u32) << 16
            | (addr[i + 3] as u32) << 24;
        h = mix(h, word);
        i += 4;
    }
    h = mix(h, port);
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

#[inline(always)]
fn mix(h: u32, word: u32) -> u32 {
    let k = word
        .wrapping_mul(0xcc9e_2d51)
        .rotate_left(15)
        .wrapping_mul(0x1b87_3593);
    (h ^ k)
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xe654_6b64)
}

#[inline(always)]
fn in_pool(id: u32) -> bool {
    match LB_BACKENDS.get(id) {
        Some(backend) => backend.flags & backend_flags::IN_POOL != 0,
        None => false,
    }
}

/// In the pool with weight > 0: may take a new flow.
#[inline(always)]
fn usable(id: u32) -> bool {
    match LB_BACKENDS.get(id) {
        Some(backend) => backend.flags & backend_flags::IN_POOL != 0 && backend.weight != 0,
        None => false,
    }
}

#[inline(always)]
fn active_add(id: u32, delta: u64) {
    if let Some(slot) = LB_ACTIVE.get_ptr_mut(id) {
        // SAFETY: a valid, aligned map value. The add is not atomic (the bpfel target
        // has no atomic read-modify-write in core), so two CPUs opening flows to one
        // backend at the same instant can lose a count; the daemon recounts the slot
        // from the flow table every second, which bounds the error (docs/load-balancing.md).
        unsafe { *slot = (*slot).wrapping_add(delta) };
    }
}

/// Rewrites the frame for backend `id` and sends it.
#[inline(never)]
fn send(ctx: &XdpContext, id: u32) -> u32 {
    let Some(backend) = LB_BACKENDS.get(id) else {
        bump(LbStat::DroppedNoRoute);
        return xdp_action::XDP_DROP;
    };
    if backend.ifindex == 0 || backend.mac == [0u8; 6] {
        bump(LbStat::DroppedNoRoute);
        return xdp_action::XDP_DROP;
    }
    let len = (ctx.data_end() - ctx.data()) as u64;
    if let Some(counters) = LB_BACKEND_STATS.get_ptr_mut(id) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe {
            (*counters).packets += 1;
            (*counters).bytes += len;
        }
    }
    let Some(eth) = bytes_at(ctx, 0, ETH_HLEN) else {
        return xdp_action::XDP_DROP;
    };
    // SAFETY: the 12 address bytes are inside the ETH_HLEN bytes just checked.
    unsafe {
        write(eth, backend.mac);
        write(eth.add(6), backend.src_mac);
    }
    if backend.ifindex == ctx.ingress_ifindex() as u32 {
        bump(LbStat::Forwarded);
        return xdp_action::XDP_TX;
    }
    // SAFETY: a BPF helper taking plain integers.
    let action = unsafe { bpf_redirect(backend.ifindex, 0) } as u32;
    if action == xdp_action::XDP_REDIRECT {
        bump(LbStat::Redirected);
    } else {
        bump(LbStat::RedirectFailed);
    }
    action
}
