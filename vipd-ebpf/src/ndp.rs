//! Neighbour discovery responder: the IPv6 counterpart of the ARP responder.
//!
//! A Neighbour Solicitation (RFC 4861 §4.3) whose target is an IPv6 VIP present in
//! `VIP6_LEASES` for the receiving interface is checked as RFC 4861 §7.1.1 asks, then
//! rewritten in place into the Neighbour Advertisement (§7.2.4) and sent back with
//! XDP_TX while the lease is live. Once the lease has run out the solicitation is
//! dropped, so neither we nor the kernel (which may still hold the address after a
//! daemon crash) claim the VIP. Solicitations for other targets, and every other
//! ICMPv6 message, go on to the kernel.
//!
//! Only solicitations whose fixed IPv6 header is followed directly by ICMPv6 are
//! handled: neighbour discovery never carries extension headers in practice, and a
//! solicitation that does reaches the kernel as before.

use aya_ebpf::{
    bindings::xdp_action,
    helpers::{bpf_ktime_get_ns, bpf_xdp_adjust_tail},
    macros::map,
    maps::HashMap,
    programs::XdpContext,
};
use vipd_common::{MAX_VIPS, Stat, Vip6Key, VipLease};

use crate::{ETH_HLEN, bump, bytes_at, fold, ipv6, lease_expires_ns, read, read_u16, write};

// Stack frames are small in BPF (512 bytes for a whole call chain), and LLVM gives every
// copied address its own slots: so addresses are compared, copied and summed where
// they lie in the frame, through pointers, rather than copied out into arrays.

#[map(name = "VIP6_LEASES")]
static VIP6_LEASES: HashMap<Vip6Key, VipLease> = HashMap::with_max_entries(MAX_VIPS, 0);

/// IPv6 next header value of ICMPv6 (RFC 4443).
const IPPROTO_ICMPV6: u8 = 58;
/// RFC 4861 §7.1.1 / §7.1.2: neighbour discovery is only valid with hop limit 255, so
/// it cannot come from off-link.
const ND_HOP_LIMIT: u8 = 255;
/// ff02::1, where an answer to a duplicate address detection probe goes (RFC 4861
/// §7.2.4).
const ALL_NODES: [u8; 16] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
/// Its MAC address (RFC 2464 §7: 33:33 and the group's low 32 bits).
const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
/// The first 13 bytes of a solicited-node multicast address, ff02::1:ffXX:XXXX
/// (RFC 4291 §2.7.1); the last 3 are the target's.
const SOLICITED_NODE_PREFIX: [u8; 13] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff];
/// Longest solicitation (ICMPv6 message) the program checks and answers: the fixed part
/// and 40 bytes of options, where a real one has at most a source link-layer address
/// and a nonce (16 bytes). Longer ones go to the kernel (a constant bound keeps the
/// checksum loop small for the verifier).
const MAX_NS_LEN: usize = 64;
/// Options that fit in [`MAX_NS_LEN`] (8 bytes at least each).
const MAX_OPTIONS: usize = (MAX_NS_LEN - nd::FIXED_LEN) / 8;

/// Byte offsets inside the ICMPv6 neighbour solicitation / advertisement (RFC 4861 §4.3,
/// §4.4), and the option format (§4.6).
mod nd {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    /// NA: R, S, O flags, then 29 reserved bits. NS: 32 reserved bits.
    pub const FLAGS: usize = 4;
    pub const TARGET: usize = 8;
    /// Fixed part of both messages; options follow.
    pub const FIXED_LEN: usize = 24;
    /// The advertisement we send: the fixed part and one Target Link-Layer Address
    /// option (8 bytes).
    pub const NA_LEN: usize = 32;
    pub const TYPE_SOLICITATION: u8 = 135;
    pub const TYPE_ADVERTISEMENT: u8 = 136;
    pub const OPTION_SOURCE_LINK_ADDR: u8 = 1;
    pub const OPTION_TARGET_LINK_ADDR: u8 = 2;
    /// Router flag: RFC 9568 §6.4.2 / §8.2 ask a virtual router's advertisements to set it.
    pub const FLAG_ROUTER: u8 = 0x80;
    /// Solicited flag: an answer to a solicitation from a unicast source (§7.2.4).
    pub const FLAG_SOLICITED: u8 = 0x40;
    /// Override flag: the advertisement replaces cached link-layer addresses, which is
    /// what a takeover needs (§7.2.4; the VIP is not anycast).
    pub const FLAG_OVERRIDE: u8 = 0x20;
}

/// Frame length of the advertisement: Ethernet, IPv6, the NA with its option.
const NA_FRAME_LEN: usize = ETH_HLEN + ipv6::HLEN + nd::NA_LEN;

/// What [`handle`] decided about an IPv6 frame.
pub enum Outcome {
    /// Not a neighbour solicitation: the caller goes on with the frame.
    NotSolicitation,
    /// Done: this verdict.
    Verdict(u32),
    /// A valid solicitation for a live VIP: the caller answers it with [`advertise`].
    Answer {
        owner_mac: [u8; 6],
        duplicate_address_detection: bool,
    },
}

/// Looks at an IPv6 frame: is it a solicitation for a managed VIP, live, valid?
///
/// Neither this nor [`advertise`] is inlined, and the caller calls them one after the
/// other: each gets its own stack frame, and neither adds to the other's, which keeps
/// every call chain under the verifier's 512-byte limit. (The checks are inlined here:
/// as a function of their own, LLVM would pass them `data`/`data_end` as integers,
/// which the verifier refuses.)
#[inline(never)]
pub fn handle(ctx: &XdpContext) -> Outcome {
    let Some(ip) = bytes_at(ctx, ETH_HLEN, ipv6::HLEN + nd::FIXED_LEN) else {
        return Outcome::NotSolicitation;
    };
    // SAFETY (all `ip.add` below): offsets < HLEN + FIXED_LEN, checked above.
    let icmp = unsafe { ip.add(ipv6::HLEN) };
    if unsafe { *ip } >> 4 != 6
        || unsafe { *ip.add(ipv6::NEXT_HEADER) } != IPPROTO_ICMPV6
        || unsafe { *icmp.add(nd::TYPE) } != nd::TYPE_SOLICITATION
    {
        return Outcome::NotSolicitation;
    }
    let key = Vip6Key {
        ifindex: ctx.ingress_ifindex() as u32,
        addr: unsafe { read(icmp.add(nd::TARGET)) },
    };
    // SAFETY: copied out at once; a concurrent update gives the old or the new lease.
    let Some(lease) = (unsafe { VIP6_LEASES.get(&key) }).copied() else {
        bump(Stat::NdpPassed);
        return Outcome::Verdict(xdp_action::XDP_PASS);
    };
    // SAFETY: a BPF helper with no arguments.
    if unsafe { bpf_ktime_get_ns() } >= lease_expires_ns(&lease) {
        // Managed but not renewed: drop, so the kernel's own copy cannot answer either.
        bump(Stat::NdpDroppedExpired);
        return Outcome::Verdict(xdp_action::XDP_DROP);
    }
    match check_solicitation(ctx) {
        Check::Valid {
            duplicate_address_detection,
        } => Outcome::Answer {
            owner_mac: lease.owner_mac,
            duplicate_address_detection,
        },
        Check::TooLong => {
            bump(Stat::NdpPassed);
            Outcome::Verdict(xdp_action::XDP_PASS)
        }
        Check::Invalid => {
            // The kernel would discard it too (RFC 4861 §7.1.1).
            bump(Stat::NdpDroppedMalformed);
            Outcome::Verdict(xdp_action::XDP_DROP)
        }
    }
}

/// What [`check_solicitation`] found.
enum Check {
    /// Valid; a duplicate address detection probe if its source is unspecified.
    Valid { duplicate_address_detection: bool },
    /// Longer than [`MAX_NS_LEN`]: left to the kernel.
    TooLong,
    /// Fails an RFC 4861 §7.1.1 check.
    Invalid,
}

/// RFC 4861 §7.1.1 validity checks, in its order. The target is a VIP from the map, so
/// "target is not multicast" holds already.
#[inline(always)]
fn check_solicitation(ctx: &XdpContext) -> Check {
    let Some(ip) = bytes_at(ctx, ETH_HLEN, ipv6::HLEN + nd::FIXED_LEN) else {
        return Check::Invalid;
    };
    // SAFETY (all `ip.add`): offsets < HLEN + FIXED_LEN, checked above.
    // §7.1.1: the IP Hop Limit field has a value of 255.
    if unsafe { *ip.add(ipv6::HOP_LIMIT) } != ND_HOP_LIMIT {
        return Check::Invalid;
    }
    let icmp_offset = ETH_HLEN + ipv6::HLEN;
    let icmp_len = unsafe { read_u16(ip.add(ipv6::PAYLOAD_LEN)) } as usize;
    // §7.1.1: ICMP length (derived from the IP length) is 24 or more octets.
    if icmp_len < nd::FIXED_LEN || icmp_len % 2 != 0 {
        return Check::Invalid;
    }
    if icmp_len > MAX_NS_LEN {
        return Check::TooLong;
    }
    // §7.1.1: the ICMP checksum is valid (RFC 4443 §2.3: with the RFC 8200 §8.1
    // pseudo-header of source, destination, length and next header).
    let mut sum = unsafe { sum_at::<{ ipv6::ADDRS_LEN }>(ip.add(ipv6::SRC)) }
        + IPPROTO_ICMPV6 as u64
        + icmp_len as u64;
    let mut i = 0;
    while i < MAX_NS_LEN {
        if i >= icmp_len {
            break;
        }
        let Some(word) = bytes_at(ctx, icmp_offset + i, 2) else {
            // The IP length runs past the frame.
            return Check::Invalid;
        };
        // SAFETY: `bytes_at` just checked these 2 bytes.
        sum += unsafe { read_u16(word) } as u64;
        i += 2;
    }
    if fold(sum) != 0xffff {
        return Check::Invalid;
    }
    // §7.1.1: ICMP Code is 0.
    if unsafe { *ip.add(ipv6::HLEN + nd::CODE) } != 0 {
        return Check::Invalid;
    }
    // §7.1.1: all included options have a length that is greater than zero.
    let mut has_source_link_addr = false;
    let mut offset = nd::FIXED_LEN;
    let mut n = 0;
    while n < MAX_OPTIONS && offset < icmp_len {
        let Some(option) = bytes_at(ctx, icmp_offset + offset, 2) else {
            return Check::Invalid;
        };
        // SAFETY: `bytes_at` just checked these 2 bytes.
        let (kind, units) = unsafe { (*option, *option.add(1)) };
        if units == 0 {
            return Check::Invalid;
        }
        has_source_link_addr |= kind == nd::OPTION_SOURCE_LINK_ADDR;
        offset += units as usize * 8;
        n += 1;
    }
    if offset > icmp_len {
        // The last option runs past the message.
        return Check::Invalid;
    }
    let unspecified = unsafe { is_zero::<16>(ip.add(ipv6::SRC)) };
    // §7.1.1: with an unspecified source, the destination is a solicited-node
    // multicast address and there is no source link-layer address option.
    if unspecified
        && (has_source_link_addr
            || !unsafe { starts_with(ip.add(ipv6::DST), &SOLICITED_NODE_PREFIX) })
    {
        return Check::Invalid;
    }
    Check::Valid {
        duplicate_address_detection: unspecified,
    }
}

/// One's-complement sum of the `N` bytes (`N` even) at `p` as big-endian words,
/// unfolded.
///
/// # Safety
///
/// `p..p + N` must lie inside the frame, within a range [`bytes_at`] has checked.
#[inline(always)]
unsafe fn sum_at<const N: usize>(p: *const u8) -> u64 {
    let mut sum = 0u64;
    let mut i = 0;
    while i < N {
        // SAFETY: i + 2 <= N, and the caller guarantees all N bytes are in the frame.
        sum += unsafe { read_u16(p.add(i)) } as u64;
        i += 2;
    }
    sum
}

/// Whether the `N` bytes at `p` are all zero.
///
/// # Safety
///
/// As for [`sum_at`].
#[inline(always)]
unsafe fn is_zero<const N: usize>(p: *const u8) -> bool {
    let mut any = 0u8;
    let mut i = 0;
    while i < N {
        // SAFETY: i < N, inside the checked range.
        any |= unsafe { *p.add(i) };
        i += 1;
    }
    any == 0
}

/// Whether the bytes at `p` begin with `prefix`.
///
/// # Safety
///
/// `p..p + M` must lie inside the frame, within a range [`bytes_at`] has checked.
#[inline(always)]
unsafe fn starts_with<const M: usize>(p: *const u8, prefix: &[u8; M]) -> bool {
    let mut i = 0;
    while i < M {
        // SAFETY: i < M, inside the checked range.
        if unsafe { *p.add(i) } != prefix[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Copies `N` bytes from `src` to `dst` inside the frame (the ranges do not overlap).
///
/// # Safety
///
/// Both ranges must lie inside the frame, within ranges [`bytes_at`] has checked.
#[inline(always)]
unsafe fn copy<const N: usize>(dst: *mut u8, src: *const u8) {
    let mut i = 0;
    while i < N {
        // SAFETY: i < N, inside both checked ranges.
        unsafe { *dst.add(i) = *src.add(i) };
        i += 1;
    }
}

/// Rewrites the solicitation into the advertisement (RFC 4861 §7.2.4) and bounces it
/// out; passes it on if the frame cannot be resized.
#[inline(never)]
pub fn advertise(ctx: &XdpContext, owner_mac: [u8; 6], duplicate_address_detection: bool) -> u32 {
    // Addresses first, in place, while the solicitation's fields are there: resizing
    // moves only the end of the frame, not these.
    let Some(eth) = bytes_at(ctx, 0, ETH_HLEN + ipv6::HLEN + nd::FIXED_LEN) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY (every access in this block): all offsets end within the ETH_HLEN + HLEN +
    // FIXED_LEN bytes checked above.
    let solicited = unsafe {
        let ip = eth.add(ETH_HLEN);
        // §7.2.4: a probe from the unspecified address is answered to all-nodes,
        // unsolicited; any other solicitation to its source, with Solicited set.
        let solicited = if duplicate_address_detection {
            write(eth, ALL_NODES_MAC);
            write(ip.add(ipv6::DST), ALL_NODES);
            0
        } else {
            copy::<6>(eth, eth.add(6));
            copy::<16>(ip.add(ipv6::DST), ip.add(ipv6::SRC));
            nd::FLAG_SOLICITED
        };
        // §7.2.4: from the target address (an address of the interface it arrived on).
        copy::<16>(ip.add(ipv6::SRC), ip.add(ipv6::HLEN + nd::TARGET));
        solicited
    };

    // The advertisement always carries the Target Link-Layer Address option (§7.2.4:
    // required when answering a multicast solicitation), so the frame becomes exactly
    // NA_FRAME_LEN bytes: 8 more than a solicitation without options.
    let delta = NA_FRAME_LEN as i64 - (ctx.data_end() - ctx.data()) as i64;
    // SAFETY: the helper checks the new length against the buffer itself.
    if delta != 0 && unsafe { bpf_xdp_adjust_tail(ctx.ctx, delta as i32) } != 0 {
        bump(Stat::NdpNoRoom);
        return xdp_action::XDP_PASS;
    }
    let Some(eth) = bytes_at(ctx, 0, NA_FRAME_LEN) else {
        bump(Stat::NdpNoRoom);
        return xdp_action::XDP_PASS;
    };
    let flags = nd::FLAG_ROUTER | solicited | nd::FLAG_OVERRIDE;
    // SAFETY (every access): all offsets end within NA_FRAME_LEN, checked just above
    // (the resize invalidated every earlier pointer, so none of them is used here).
    unsafe {
        write(eth.add(6), owner_mac);
        let ip = eth.add(ETH_HLEN);
        // Version 6, traffic class and flow label 0.
        write(ip, [0x60, 0, 0, 0]);
        write(ip.add(ipv6::PAYLOAD_LEN), (nd::NA_LEN as u16).to_be_bytes());
        write(ip.add(ipv6::NEXT_HEADER), [IPPROTO_ICMPV6, ND_HOP_LIMIT]);
        let na = ip.add(ipv6::HLEN);
        // Type, code, checksum 0 for the sum below.
        write(na.add(nd::TYPE), [nd::TYPE_ADVERTISEMENT, 0, 0, 0]);
        write(na.add(nd::FLAGS), [flags, 0, 0, 0]);
        // The target stays where the solicitation had it.
        write(na.add(nd::FIXED_LEN), [nd::OPTION_TARGET_LINK_ADDR, 1]);
        write(na.add(nd::FIXED_LEN + 2), owner_mac);
        // RFC 4443 §2.3 over the RFC 8200 §8.1 pseudo-header and the message.
        let sum = sum_at::<{ ipv6::ADDRS_LEN }>(ip.add(ipv6::SRC))
            + IPPROTO_ICMPV6 as u64
            + nd::NA_LEN as u64
            + sum_at::<{ nd::NA_LEN }>(na);
        write(na.add(nd::CHECKSUM), (!fold(sum)).to_be_bytes());
    }
    bump(Stat::NdpReplies);
    xdp_action::XDP_TX
}
