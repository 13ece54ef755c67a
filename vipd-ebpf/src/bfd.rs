//! BFD control packets (RFC 5880/5881) seen on the wire, recorded for the daemon.
//!
//! The daemon's Detection Time must not run out because its UDP socket's queue
//! overflowed under a flood while the neighbour's packets were arriving. So for each
//! session the daemon registered in `BFD_SESSIONS` (key: our discriminator), the
//! program records the neighbour's last control packet and when it arrived; before
//! declaring a session Down, the daemon reads the record and feeds a newer packet to the
//! session as if the socket had delivered it. The checks here are the cheap ones that
//! make a record trustworthy: UDP to port 3784, TTL / hop limit at least the session's
//! minimum (255 single hop, RFC 5881 §5), version 1 and a Length of at least 24 (RFC
//! 5880 §6.8.6), a Your Discriminator we registered, from that session's neighbour.
//! Everything else about the packet is checked by the daemon when it reads it.
//! Packets always continue with XDP_PASS.

use aya_ebpf::{helpers::bpf_ktime_get_ns, macros::map, maps::HashMap, programs::XdpContext};
use vipd_common::{
    BFD_CONTROL_LEN, BFD_CONTROL_PORT, BfdObserved, FAMILY_IPV4, FAMILY_IPV6, MAX_BFD_SESSIONS,
};

use crate::{ETH_HLEN, bytes_at, read, read_u16};

#[map(name = "BFD_SESSIONS")]
static BFD_SESSIONS: HashMap<u32, BfdObserved> = HashMap::with_max_entries(MAX_BFD_SESSIONS, 0);

const IPPROTO_UDP: u8 = 17;
const UDP_HLEN: usize = 8;
/// Byte offsets in the control packet (RFC 5880 §4.1).
const BFD_VERS_DIAG: usize = 0;
const BFD_LENGTH: usize = 3;
const BFD_YOUR_DISCRIMINATOR: usize = 8;
const BFD_VERSION: u8 = 1;

/// An IPv4 frame: records it if it is a control packet for a registered session.
#[inline(always)]
pub fn record_ipv4(ctx: &XdpContext) {
    let Some(ip) = bytes_at(ctx, ETH_HLEN, 20) else {
        return;
    };
    // SAFETY (all `ip.add`): offsets < 20, checked above.
    let version_ihl = unsafe { *ip };
    if version_ihl >> 4 != 4 || unsafe { *ip.add(9) } != IPPROTO_UDP {
        return;
    }
    // Fragments carry no (or not the whole) UDP header where we read it.
    // SAFETY: bytes 6..8 are inside the checked 20.
    if unsafe { read_u16(ip.add(6)) } & 0x3fff != 0 {
        return;
    }
    let header_len = (version_ihl & 0x0f) as usize * 4;
    if header_len < 20 {
        return;
    }
    let mut src = [0u8; 16];
    // SAFETY: bytes 12..16 are inside the checked 20.
    let v4: [u8; 4] = unsafe { read(ip.add(12)) };
    src[0] = v4[0];
    src[1] = v4[1];
    src[2] = v4[2];
    src[3] = v4[3];
    // SAFETY: byte 8 is inside the checked 20.
    let ttl = unsafe { *ip.add(8) };
    record(ctx, ETH_HLEN + header_len, FAMILY_IPV4, ttl, src);
}

/// An IPv6 frame without extension headers: as [`record_ipv4`].
#[inline(always)]
pub fn record_ipv6(ctx: &XdpContext) {
    let Some(ip) = bytes_at(ctx, ETH_HLEN, 40) else {
        return;
    };
    // SAFETY (all `ip.add`): offsets < 40, checked above.
    if unsafe { *ip } >> 4 != 6 || unsafe { *ip.add(6) } != IPPROTO_UDP {
        return;
    }
    let hop_limit = unsafe { *ip.add(7) };
    // SAFETY: bytes 8..24 are inside the checked 40.
    let src: [u8; 16] = unsafe { read(ip.add(8)) };
    record(ctx, ETH_HLEN + 40, FAMILY_IPV6, hop_limit, src);
}

#[inline(always)]
fn record(ctx: &XdpContext, udp_offset: usize, family: u8, ttl: u8, src: [u8; 16]) {
    let Some(udp) = bytes_at(ctx, udp_offset, UDP_HLEN) else {
        return;
    };
    // SAFETY: bytes 2..4 of the checked UDP header.
    if unsafe { read_u16(udp.add(2)) } != BFD_CONTROL_PORT {
        return;
    }
    let Some(bfd) = bytes_at(ctx, udp_offset + UDP_HLEN, BFD_CONTROL_LEN) else {
        return;
    };
    // SAFETY (all `bfd.add`): offsets < BFD_CONTROL_LEN, checked above.
    // RFC 5880 §6.8.6: version 1, Length at least the mandatory section.
    if unsafe { *bfd.add(BFD_VERS_DIAG) } >> 5 != BFD_VERSION
        || (unsafe { *bfd.add(BFD_LENGTH) } as usize) < BFD_CONTROL_LEN
    {
        return;
    }
    // SAFETY: bytes 8..12 of the checked control packet.
    let your: [u8; 4] = unsafe { read(bfd.add(BFD_YOUR_DISCRIMINATOR)) };
    let key = u32::from_be_bytes(your);
    if key == 0 {
        return;
    }
    let Some(entry) = BFD_SESSIONS.get_ptr_mut(&key) else {
        return;
    };
    // SAFETY: a valid map value pointer; the daemon writes these fields only when it
    // creates the entry.
    let (neighbor, want_family, min_ttl) =
        unsafe { ((*entry).neighbor, (*entry).family, (*entry).min_ttl) };
    // RFC 5881 §5 (GTSM) and the session's neighbour: anything else is not its packet.
    if family != want_family || ttl < min_ttl || neighbor != src {
        return;
    }
    // SAFETY: as above; a torn read by the daemon can at worst mix two packets' bytes,
    // which its own checks then refuse.
    unsafe {
        (*entry).packet = read(bfd);
        (*entry).count = (*entry).count.wrapping_add(1);
        (*entry).last_seen_ns = bpf_ktime_get_ns();
    }
}
