//! vipd's XDP program.
//!
//! Advert fast path: IPv4 protocol 112 and IPv6 next header 112 (no extension headers)
//! for a watched (interface, VRID, family) go through the cheap RFC 5798 §7.1 checks and,
//! if they pass, are recorded in `OBSERVED_ADVERTS`; a change the election must act on
//! (new master, priority change, priority 0, master back after silence, interval change)
//! is pushed to the `ADVERT_EVENTS` ring buffer. Watched adverts always continue with
//! XDP_PASS so the daemon's raw socket still receives them; the map is what keeps a
//! Backup's Master_Down_Timer honest when that socket's queue overflows under a flood.
//! Unwatched adverts pass up to a per-CPU budget (`UNWATCHED_BUDGET`) and are dropped
//! beyond it.
//!
//! ARP responder: an ARP request for a VIP present in `VIP_LEASES` for the receiving
//! interface is rewritten in place into the reply and bounced out with XDP_TX while the
//! lease is live; once the lease has expired the request is dropped, so neither we nor
//! the kernel (which may still hold the address after a daemon crash) claim the VIP.
//! NDP responder (module `ndp`): the same for IPv6 neighbour solicitations, answered
//! with a neighbour advertisement from `VIP6_LEASES`.
//! BFD: control packets for the daemon's sessions are recorded in `BFD_SESSIONS`
//! (module `bfd`) and passed on.
//!
//! Everything else goes on to the kernel with XDP_PASS.
//!
//! Every read is bounds-checked against `data_end` before it happens (the verifier
//! insists, and untrusted frames deserve it anyway).
#![no_std]
#![no_main]

mod bfd;
mod lb;
mod ndp;

use aya_ebpf::{
    Global,
    bindings::xdp_action,
    helpers::bpf_ktime_get_ns,
    macros::{map, xdp},
    maps::{Array, HashMap, PerCpuArray, RingBuf},
    programs::XdpContext,
};
use vipd_common::{
    ADVERT_EVENTS_BYTES, AUTH_SIMPLE_TEXT, AdvertEvent, AdvertEventKind, FAMILY_IPV4, FAMILY_IPV6,
    MAX_CHECKED_ADVERT_LEN, MAX_LEASE_CLOCKS, MAX_VIPS, MAX_WATCHES, NO_LEASE_CLOCK,
    ObservedAdvert, RateWindow, Stat, UNWATCHED_ADVERTS_PER_WINDOW, UNWATCHED_WINDOW_NS, VipKey,
    VipLease, WatchEntry, WatchKey,
};

#[map(name = "VIP_LEASES")]
static VIP_LEASES: HashMap<VipKey, VipLease> = HashMap::with_max_entries(MAX_VIPS, 0);

#[map(name = "LEASE_CLOCKS")]
static LEASE_CLOCKS: Array<u64> = Array::with_max_entries(MAX_LEASE_CLOCKS, 0);

#[map(name = "STATS")]
static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(Stat::COUNT, 0);

#[map(name = "ADVERT_WATCHES")]
static ADVERT_WATCHES: HashMap<WatchKey, WatchEntry> = HashMap::with_max_entries(MAX_WATCHES, 0);

#[map(name = "OBSERVED_ADVERTS")]
static OBSERVED_ADVERTS: HashMap<WatchKey, ObservedAdvert> =
    HashMap::with_max_entries(MAX_WATCHES, 0);

#[map(name = "UNWATCHED_BUDGET")]
static UNWATCHED_BUDGET: PerCpuArray<RateWindow> = PerCpuArray::with_max_entries(1, 0);

#[map(name = "ADVERT_EVENTS")]
static ADVERT_EVENTS: RingBuf = RingBuf::with_byte_size(ADVERT_EVENTS_BYTES, 0);

/// Set to 1 by the loader (`vipd_common::LOG_ENABLED_GLOBAL`) to switch aya-log output
/// on. A frozen read-only global: with 0 the verifier removes every logging branch.
#[unsafe(no_mangle)]
static VIPD_LOG_ENABLED: Global<u32> = Global::new(0);

#[inline(always)]
fn log_enabled() -> bool {
    VIPD_LOG_ENABLED.load() != 0
}

const ETH_HLEN: usize = 14;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ARP_HLEN: usize = 28;
const IPPROTO_VRRP: u8 = 112;

/// Byte offsets inside the IPv4 header (RFC 791).
mod ipv4 {
    pub const MIN_HLEN: usize = 20;
    pub const VERSION_IHL: usize = 0;
    pub const TOTAL_LEN: usize = 2;
    pub const FLAGS_FRAG: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const SRC: usize = 12;
    /// Source then destination: the 8 address bytes of the v3 pseudo-header.
    pub const ADDRS_LEN: usize = 8;
    /// More-fragments flag and fragment offset.
    pub const FRAG_MASK: u16 = 0x3fff;
}

/// Byte offsets inside the IPv6 fixed header (RFC 8200).
mod ipv6 {
    pub const HLEN: usize = 40;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: usize = 8;
    pub const DST: usize = 24;
    /// Source then destination: the 32 address bytes of the pseudo-header.
    pub const ADDRS_LEN: usize = 32;
}

/// Byte offsets inside the VRRP header (RFC 5798 §5.1, RFC 3768 §5.1).
mod vrrp {
    pub const HLEN: usize = 8;
    pub const VERSION_TYPE: usize = 0;
    pub const VRID: usize = 1;
    pub const PRIORITY: usize = 2;
    pub const COUNT: usize = 3;
    /// v2: Auth Type; v3: 4 reserved bits + 12-bit Max Advertise Interval (with byte 5).
    pub const AUTH_TYPE_OR_INTERVAL: usize = 4;
    /// v2: Adver Int in seconds.
    pub const V2_INTERVAL: usize = 5;
    pub const V2_AUTH_DATA_LEN: usize = 8;
    pub const TYPE_ADVERTISEMENT: u8 = 1;
    pub const TTL: u8 = 255;
    pub const V3_INTERVAL_MASK: u16 = 0x0fff;
}

/// Byte offsets inside the ARP header (RFC 826, Ethernet/IPv4 only).
mod arp {
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const SHA: usize = 8;
    pub const SPA: usize = 14;
    pub const THA: usize = 18;
    pub const TPA: usize = 24;
    pub const OP_REQUEST: u16 = 1;
    pub const OP_REPLY: u16 = 2;
}

#[xdp]
pub fn vipd_xdp(ctx: XdpContext) -> u32 {
    bump(Stat::Packets);
    match try_vipd_xdp(&ctx) {
        Some(action) => action,
        None => xdp_action::XDP_PASS,
    }
}

#[inline(always)]
fn bump(stat: Stat) {
    if let Some(counter) = STATS.get_ptr_mut(stat as u32) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe { *counter += 1 };
    }
}

/// Pointer to `len` bytes at `offset`, or `None` when the frame is shorter.
#[inline(always)]
fn bytes_at(ctx: &XdpContext, offset: usize, len: usize) -> Option<*mut u8> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + offset + len > end {
        return None;
    }
    Some((start + offset) as *mut u8)
}

/// The big-endian `u16` at `p`.
///
/// # Safety
///
/// `p..p + 2` must lie inside the frame, within a range [`bytes_at`] has checked against
/// `data_end`.
#[inline(always)]
unsafe fn read_u16(p: *const u8) -> u16 {
    // SAFETY: the caller guarantees both bytes are inside the checked frame.
    unsafe { u16::from_be_bytes([*p, *p.add(1)]) }
}

/// The `N` bytes at `p`.
///
/// # Safety
///
/// `p..p + N` must lie inside the frame, within a range [`bytes_at`] has checked against
/// `data_end`.
#[inline(always)]
unsafe fn read<const N: usize>(p: *const u8) -> [u8; N] {
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        // SAFETY: i < N, and the caller guarantees all N bytes are inside the frame.
        out[i] = unsafe { *p.add(i) };
        i += 1;
    }
    out
}

/// Writes `bytes` at `p`.
///
/// # Safety
///
/// `p..p + N` must lie inside the frame, within a range [`bytes_at`] has checked against
/// `data_end`; the frame is the program's to rewrite (XDP owns the packet buffer).
#[inline(always)]
unsafe fn write<const N: usize>(p: *mut u8, bytes: [u8; N]) {
    let mut i = 0;
    while i < N {
        // SAFETY: i < N, and the caller guarantees all N bytes are inside the frame.
        unsafe { *p.add(i) = bytes[i] };
        i += 1;
    }
}

fn try_vipd_xdp(ctx: &XdpContext) -> Option<u32> {
    let eth = bytes_at(ctx, 0, ETH_HLEN)?;
    // SAFETY: bytes 12..14 are inside the ETH_HLEN bytes `bytes_at` just checked.
    let ethertype = unsafe { read_u16(eth.add(12)) };
    match ethertype {
        ETH_P_ARP => Some(handle_arp(ctx, eth)),
        ETH_P_IP => {
            if let Some(outcome) = ipv4_advert(ctx) {
                bump(Stat::AdvertsSeen);
                bump(outcome);
                log_outcome(ctx, outcome);
                // The daemon's socket must still see every advert for its VRIDs.
                return Some(advert_verdict(outcome));
            }
            // Recorded, then passed: BFD goes to the routers' own addresses, never a VIP.
            bfd::record_ipv4(ctx);
            Some(lb::ipv4(ctx).unwrap_or(xdp_action::XDP_PASS))
        }
        ETH_P_IPV6 => {
            if let Some(outcome) = ipv6_advert(ctx) {
                bump(Stat::AdvertsSeen);
                bump(outcome);
                log_outcome(ctx, outcome);
                return Some(advert_verdict(outcome));
            }
            match ndp::handle(ctx) {
                ndp::Outcome::NotSolicitation => {}
                ndp::Outcome::Verdict(action) => return Some(action),
                ndp::Outcome::Answer {
                    owner_mac,
                    duplicate_address_detection,
                } => return Some(ndp::advertise(ctx, owner_mac, duplicate_address_detection)),
            }
            bfd::record_ipv6(ctx);
            Some(lb::ipv6(ctx).unwrap_or(xdp_action::XDP_PASS))
        }
        _ => Some(xdp_action::XDP_PASS),
    }
}

/// What happens to an advert after its checks: every advert for a watched VRID goes on
/// to the daemon's socket (its own checks and counters decide); an unwatched one too,
/// while this CPU's budget for the window lasts (`UNWATCHED_ADVERTS_PER_WINDOW`), and is
/// dropped beyond it, so a flood of VRIDs nobody here runs never reaches a socket.
#[inline(always)]
fn advert_verdict(outcome: Stat) -> u32 {
    if outcome as u32 != Stat::AdvertsUnwatched as u32 {
        return xdp_action::XDP_PASS;
    }
    let Some(window) = UNWATCHED_BUDGET.get_ptr_mut(0) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: bpf_ktime_get_ns has no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    // SAFETY: this CPU's slot; nothing else runs on this CPU while the program does.
    let window = unsafe { &mut *window };
    if now.wrapping_sub(window.start_ns) >= UNWATCHED_WINDOW_NS {
        window.start_ns = now;
        window.passed = 0;
    }
    if window.passed < UNWATCHED_ADVERTS_PER_WINDOW {
        window.passed += 1;
        return xdp_action::XDP_PASS;
    }
    bump(Stat::AdvertsUnwatchedDropped);
    xdp_action::XDP_DROP
}

#[inline(always)]
fn log_outcome(ctx: &XdpContext, outcome: Stat) {
    if log_enabled() && outcome as u32 != Stat::AdvertsAccepted as u32 {
        aya_log_ebpf::debug!(ctx, "vrrp advert not recorded: counter {}", outcome as u32);
    }
}

/// Where the VRRP message of a candidate advert sits and what the IP header said.
struct AdvertFrame {
    /// Offset of the VRRP header from the start of the frame.
    vrrp_offset: usize,
    /// VRRP message length according to the IP header.
    vrrp_len: usize,
    /// One's-complement sum of the pseudo-header (RFC 5798 §5.2.8), unfolded.
    pseudo_header_sum: u64,
    family: u8,
    /// Bytes per address in the advert: 4 or 16.
    address_len: usize,
    hop_limit: u8,
    src_addr: [u8; 16],
}

/// An IPv4 frame: `None` if it is not protocol 112, else the counter for its outcome.
fn ipv4_advert(ctx: &XdpContext) -> Option<Stat> {
    let ip = bytes_at(ctx, ETH_HLEN, ipv4::MIN_HLEN)?;
    // SAFETY (all `ip.add`): offsets < MIN_HLEN, checked above.
    let version_ihl = unsafe { *ip.add(ipv4::VERSION_IHL) };
    if version_ihl >> 4 != 4 || unsafe { *ip.add(ipv4::PROTOCOL) } != IPPROTO_VRRP {
        return None;
    }
    let header_len = (version_ihl & 0x0f) as usize * 4;
    // SAFETY: TOTAL_LEN + 2 <= MIN_HLEN, checked by `bytes_at` above.
    let total_len = unsafe { read_u16(ip.add(ipv4::TOTAL_LEN)) } as usize;
    if header_len < ipv4::MIN_HLEN || total_len < header_len + vrrp::HLEN {
        return Some(Stat::AdvertDroppedTruncated);
    }
    // SAFETY: FLAGS_FRAG + 2 <= MIN_HLEN, checked by `bytes_at` above.
    if unsafe { read_u16(ip.add(ipv4::FLAGS_FRAG)) } & ipv4::FRAG_MASK != 0 {
        return Some(Stat::AdvertDroppedFragment);
    }
    let vrrp_len = total_len - header_len;
    // SAFETY: SRC + 4 <= MIN_HLEN, checked by `bytes_at` above.
    let src: [u8; 4] = unsafe { read(ip.add(ipv4::SRC)) };
    let mut src_addr = [0u8; 16];
    src_addr[0] = src[0];
    src_addr[1] = src[1];
    src_addr[2] = src[2];
    src_addr[3] = src[3];
    // RFC 5798 §5.2.8: src, dst, zero, protocol, VRRP length.
    let pseudo_header_sum = sum_words(ctx, ETH_HLEN + ipv4::SRC, ipv4::ADDRS_LEN)?
        + IPPROTO_VRRP as u64
        + vrrp_len as u64;
    Some(check_and_record(
        ctx,
        &AdvertFrame {
            vrrp_offset: ETH_HLEN + header_len,
            vrrp_len,
            pseudo_header_sum,
            family: FAMILY_IPV4,
            address_len: 4,
            hop_limit: unsafe { *ip.add(ipv4::TTL) },
            src_addr,
        },
    ))
}

/// An IPv6 frame: `None` unless the fixed header's next header is 112 (adverts with
/// extension headers are left to the daemon), else the counter for its outcome.
fn ipv6_advert(ctx: &XdpContext) -> Option<Stat> {
    let ip = bytes_at(ctx, ETH_HLEN, ipv6::HLEN)?;
    // SAFETY (all `ip.add`): offsets < HLEN, checked above.
    if unsafe { *ip } >> 4 != 6 || unsafe { *ip.add(ipv6::NEXT_HEADER) } != IPPROTO_VRRP {
        return None;
    }
    // SAFETY: PAYLOAD_LEN + 2 <= HLEN, checked by `bytes_at` above.
    let vrrp_len = unsafe { read_u16(ip.add(ipv6::PAYLOAD_LEN)) } as usize;
    if vrrp_len < vrrp::HLEN {
        return Some(Stat::AdvertDroppedTruncated);
    }
    // RFC 8200 §8.1: src, dst, 32-bit length, 24 zero bits, next header.
    let pseudo_header_sum = sum_words(ctx, ETH_HLEN + ipv6::SRC, ipv6::ADDRS_LEN)?
        + IPPROTO_VRRP as u64
        + vrrp_len as u64;
    Some(check_and_record(
        ctx,
        &AdvertFrame {
            vrrp_offset: ETH_HLEN + ipv6::HLEN,
            vrrp_len,
            pseudo_header_sum,
            family: FAMILY_IPV6,
            address_len: 16,
            hop_limit: unsafe { *ip.add(ipv6::HOP_LIMIT) },
            // SAFETY: SRC + 16 <= HLEN, checked by `bytes_at` above.
            src_addr: unsafe { read(ip.add(ipv6::SRC)) },
        },
    ))
}

/// The RFC 5798 §7.1 / RFC 3768 §7.1 receive checks the program can afford, in order;
/// the VRID lookup comes first so that adverts nobody watches cost one map lookup. Then
/// records the advert and pushes an event if the election must hear about it.
fn check_and_record(ctx: &XdpContext, frame: &AdvertFrame) -> Stat {
    let Some(hdr) = bytes_at(ctx, frame.vrrp_offset, vrrp::HLEN) else {
        return Stat::AdvertDroppedTruncated;
    };
    // SAFETY (all `hdr.add`): offsets < vrrp::HLEN, checked above.
    let key = WatchKey {
        ifindex: ctx.ingress_ifindex() as u32,
        vrid: unsafe { *hdr.add(vrrp::VRID) },
        family: frame.family,
        _pad: [0; 2],
    };
    // SAFETY: copied out at once; the daemon replaces entries whole.
    let Some(watch) = (unsafe { ADVERT_WATCHES.get(&key) }).copied() else {
        return Stat::AdvertsUnwatched;
    };
    // RFC 5798 §7.1: TTL / Hop Limit 255, else the advert came from off-link.
    if frame.hop_limit != vrrp::TTL {
        return Stat::AdvertDroppedTtl;
    }
    // RFC 5798 §7.1: the whole VRRP packet must be there.
    if bytes_at(ctx, frame.vrrp_offset, frame.vrrp_len).is_none() {
        return Stat::AdvertDroppedTruncated;
    }
    let version_type = unsafe { *hdr.add(vrrp::VERSION_TYPE) };
    let version = version_type >> 4;
    // RFC 5798 §7.1: version must match the configured one.
    if version != watch.version {
        return Stat::AdvertDroppedVersion;
    }
    // RFC 5798 §5.2.2: only type 1 (ADVERTISEMENT) is defined.
    if version_type & 0x0f != vrrp::TYPE_ADVERTISEMENT {
        return Stat::AdvertDroppedType;
    }
    let address_count = unsafe { *hdr.add(vrrp::COUNT) };
    let is_v2 = version == 2;
    let addresses_len = address_count as usize * frame.address_len;
    let expected_len = vrrp::HLEN + addresses_len + if is_v2 { vrrp::V2_AUTH_DATA_LEN } else { 0 };
    // RFC 5798 §7.1: the packet must hold exactly the fixed fields and Count addresses.
    if frame.vrrp_len != expected_len {
        return Stat::AdvertDroppedLength;
    }
    if frame.vrrp_len > MAX_CHECKED_ADVERT_LEN as usize {
        return Stat::AdvertDroppedTooLong;
    }
    let interval_cs = if is_v2 {
        // RFC 3768 §7.1: the Auth Type must match the configured one; for simple text,
        // so must the 8 bytes of Authentication Data.
        if unsafe { *hdr.add(vrrp::AUTH_TYPE_OR_INTERVAL) } != watch.auth_type {
            return Stat::AdvertDroppedAuth;
        }
        if watch.auth_type == AUTH_SIMPLE_TEXT {
            let auth_offset = frame.vrrp_offset + vrrp::HLEN + addresses_len;
            let Some(auth) = bytes_at(ctx, auth_offset, vrrp::V2_AUTH_DATA_LEN) else {
                return Stat::AdvertDroppedTruncated;
            };
            // SAFETY: `bytes_at` just checked these V2_AUTH_DATA_LEN (8) bytes.
            let data: [u8; 8] = unsafe { read(auth) };
            if data != watch.auth_data {
                return Stat::AdvertDroppedAuth;
            }
        }
        // RFC 3768 §5.3.7: Adver Int is in seconds.
        (unsafe { *hdr.add(vrrp::V2_INTERVAL) }) as u16 * 100
    } else {
        // RFC 5798 §5.2.7: 12-bit Max Advertise Interval in centiseconds.
        // SAFETY: AUTH_TYPE_OR_INTERVAL + 2 <= vrrp::HLEN, checked by `bytes_at` above.
        (unsafe { read_u16(hdr.add(vrrp::AUTH_TYPE_OR_INTERVAL)) }) & vrrp::V3_INTERVAL_MASK
    };
    // RFC 3768 §5.3.8 (v2, the VRRP message only) / RFC 9568 §5.2.8 (v3: IPv6 with the
    // pseudo-header; IPv4 the message only, which RFC 5798 was read to include the
    // pseudo-header in): the sum over everything including the checksum field is all
    // ones. v3 over IPv4 passes in either form, as in the daemon's
    // `Packet::checksum_form`.
    let Some(message_sum) = sum_words(ctx, frame.vrrp_offset, frame.vrrp_len) else {
        return Stat::AdvertDroppedTruncated;
    };
    let message_only = fold(message_sum) == 0xffff;
    let with_pseudo_header = fold(frame.pseudo_header_sum + message_sum) == 0xffff;
    let verifies = if is_v2 {
        message_only
    } else {
        with_pseudo_header || (frame.family == FAMILY_IPV4 && message_only)
    };
    if !verifies {
        return Stat::AdvertDroppedChecksum;
    }

    record(
        ctx,
        &key,
        &watch,
        ObservedAdvert {
            // SAFETY: a BPF helper with no arguments.
            last_seen_ns: unsafe { bpf_ktime_get_ns() },
            count: 1,
            src_addr: frame.src_addr,
            family: frame.family,
            priority: unsafe { *hdr.add(vrrp::PRIORITY) },
            version,
            address_count,
            interval_cs,
            _pad: [0; 2],
        },
    );
    Stat::AdvertsAccepted
}

/// Stores `advert` for `key` and pushes an event if the election cares about the change.
fn record(ctx: &XdpContext, key: &WatchKey, watch: &WatchEntry, mut advert: ObservedAdvert) {
    let previous = match OBSERVED_ADVERTS.get_ptr_mut(key) {
        // SAFETY: a valid map value pointer; copied out before we write it back.
        Some(slot) => Some((slot, unsafe { *slot })),
        None => None,
    };
    let kind = match &previous {
        None => Some(if advert.priority == 0 {
            AdvertEventKind::PriorityZero
        } else {
            AdvertEventKind::NewMaster
        }),
        Some((_, prev)) => {
            let same_source = prev.src_addr == advert.src_addr;
            let silent = watch.silence_ns != 0
                && advert.last_seen_ns.saturating_sub(prev.last_seen_ns) > watch.silence_ns;
            // RFC 5798 §6.4.2: priority 0 means "take over after Skew_Time"; say so once
            // per transition, not for every further priority-0 advert.
            if advert.priority == 0 && (prev.priority != 0 || !same_source || silent) {
                Some(AdvertEventKind::PriorityZero)
            } else if !same_source {
                Some(AdvertEventKind::NewMaster)
            } else if advert.priority != prev.priority {
                Some(AdvertEventKind::PriorityChanged)
            } else if silent {
                Some(AdvertEventKind::MasterBack)
            } else if advert.interval_cs != prev.interval_cs {
                Some(AdvertEventKind::IntervalChanged)
            } else {
                None
            }
        }
    };
    let has_previous = previous.is_some();
    let (prev_src_addr, prev_priority, prev_interval_cs, gap_ns) = match &previous {
        Some((_, prev)) => (
            prev.src_addr,
            prev.priority,
            prev.interval_cs,
            advert.last_seen_ns.saturating_sub(prev.last_seen_ns),
        ),
        None => ([0u8; 16], 0, 0, 0),
    };
    match previous {
        Some((slot, prev)) => {
            advert.count = prev.count.wrapping_add(1);
            // SAFETY: a valid map value pointer; a torn read by the daemon can at worst
            // mix two adverts' fields, each valid.
            unsafe { *slot = advert };
        }
        None => {
            // A full map (more watches than MAX_WATCHES) cannot happen: the daemon's
            // watch map has the same size and observed keys are a subset of it.
            let _ = OBSERVED_ADVERTS.insert(key, &advert, 0);
        }
    }
    let Some(kind) = kind else { return };
    let event = AdvertEvent {
        kind: kind as u32,
        ifindex: key.ifindex,
        seen_ns: advert.last_seen_ns,
        gap_ns,
        src_addr: advert.src_addr,
        prev_src_addr,
        vrid: key.vrid,
        family: key.family,
        priority: advert.priority,
        prev_priority,
        interval_cs: advert.interval_cs,
        prev_interval_cs,
        has_previous: has_previous as u32,
        _pad: [0; 4],
    };
    match ADVERT_EVENTS.output::<AdvertEvent>(&event, 0) {
        Ok(()) => bump(Stat::AdvertEventsSent),
        Err(_) => bump(Stat::AdvertEventsLost),
    }
    if log_enabled() {
        aya_log_ebpf::info!(
            ctx,
            "vrrp advert event kind={} ifindex={} vrid={} priority={} prev_priority={}",
            kind as u32,
            key.ifindex,
            key.vrid,
            advert.priority,
            prev_priority
        );
    }
}

/// One's-complement sum of the big-endian 16-bit words of `len` bytes at `offset`
/// (`len` even, at most [`MAX_CHECKED_ADVERT_LEN`]), unfolded; `None` if the frame is
/// shorter. A bounded loop with a bounds check per word, which the verifier accepts.
#[inline(never)]
fn sum_words(ctx: &XdpContext, offset: usize, len: usize) -> Option<u64> {
    let mut sum = 0u64;
    let mut i = 0usize;
    while i < MAX_CHECKED_ADVERT_LEN as usize {
        if i >= len {
            break;
        }
        let word = bytes_at(ctx, offset + i, 2)?;
        // SAFETY: `bytes_at` just checked these 2 bytes.
        sum += unsafe { read_u16(word) } as u64;
        i += 2;
    }
    Some(sum)
}

/// Folds a one's-complement sum into 16 bits.
#[inline(always)]
fn fold(mut sum: u64) -> u16 {
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// When `lease` ends (CLOCK_MONOTONIC ns): inline, or its instance's lease clock.
#[inline(always)]
fn lease_expires_ns(lease: &VipLease) -> u64 {
    if lease.lease_clock == NO_LEASE_CLOCK {
        lease.lease_expires_ns
    } else {
        // One clock per instance, renewed at each of its adverts; a slot out of range
        // reads as expired.
        LEASE_CLOCKS.get(lease.lease_clock).copied().unwrap_or(0)
    }
}

/// `eth` points at the frame's Ethernet header, whose ETH_HLEN bytes the caller has
/// checked with [`bytes_at`].
fn handle_arp(ctx: &XdpContext, eth: *mut u8) -> u32 {
    let Some(hdr) = bytes_at(ctx, ETH_HLEN, ARP_HLEN) else {
        bump(Stat::ArpMalformed);
        return xdp_action::XDP_PASS;
    };
    // SAFETY (all `hdr.add` and the reads and writes through them below): every field
    // ends within ARP_HLEN bytes, which `bytes_at` checked above.
    let well_formed = unsafe {
        read_u16(hdr.add(arp::HTYPE)) == 1
            && read_u16(hdr.add(arp::PTYPE)) == 0x0800
            && *hdr.add(arp::HLEN) == 6
            && *hdr.add(arp::PLEN) == 4
    };
    if !well_formed {
        bump(Stat::ArpMalformed);
        return xdp_action::XDP_PASS;
    }
    // SAFETY: OPER + 2, SPA + 4 and TPA + 4 are <= ARP_HLEN, checked above.
    let (oper, sender_ip, target_ip): (u16, [u8; 4], [u8; 4]) = unsafe {
        (
            read_u16(hdr.add(arp::OPER)),
            read(hdr.add(arp::SPA)),
            read(hdr.add(arp::TPA)),
        )
    };
    let key = VipKey {
        ifindex: ctx.ingress_ifindex() as u32,
        addr_be: target_ip,
    };
    // SAFETY: the value is copied out at once; a concurrent update can at worst give us
    // the old or the new lease, both valid.
    let Some(lease) = (unsafe { VIP_LEASES.get(&key) }).copied() else {
        bump(Stat::ArpPassed);
        return xdp_action::XDP_PASS;
    };
    if oper != arp::OP_REQUEST {
        bump(Stat::ArpPassed);
        return xdp_action::XDP_PASS;
    }
    if sender_ip == target_ip {
        // Someone announcing the VIP (a gratuitous ARP from another router taking over):
        // the kernel must see it to update its neighbour table; never answer it.
        bump(Stat::ArpGratuitousPassed);
        return xdp_action::XDP_PASS;
    }
    // SAFETY: a BPF helper with no arguments.
    if unsafe { bpf_ktime_get_ns() } >= lease_expires_ns(&lease) {
        // Managed but not renewed: the daemon is gone or no longer master. Drop, so
        // the kernel's own copy of the address cannot answer either.
        bump(Stat::ArpDroppedExpired);
        return xdp_action::XDP_DROP;
    }

    // Rewrite the request into the reply in place (RFC 826 "swap fields").
    // SAFETY: the Ethernet addresses (0..12) are inside the ETH_HLEN bytes the caller
    // checked before passing `eth`; every ARP field ends within the ARP_HLEN bytes
    // checked above.
    unsafe {
        let requester_mac: [u8; 6] = read(hdr.add(arp::SHA));
        write(eth, requester_mac);
        write(eth.add(6), lease.owner_mac);
        write(hdr.add(arp::OPER), arp::OP_REPLY.to_be_bytes());
        write(hdr.add(arp::SHA), lease.owner_mac);
        write(hdr.add(arp::SPA), target_ip);
        write(hdr.add(arp::THA), requester_mac);
        write(hdr.add(arp::TPA), sender_ip);
    }
    bump(Stat::ArpReplies);
    xdp_action::XDP_TX
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
