//! Fuzzing vipd's XDP program through BPF_PROG_TEST_RUN: random frames and frames
//! mutated from well-formed fixtures (VRRP v2/v3 adverts over IPv4 and IPv6, ARP for
//! owned, expired and unowned addresses, NDP, load-balanced TCP/UDP flows, BFD control
//! packets), run through one program with every feature configured: VIP leases, advert
//! watches, a BFD session and two load-balanced services.
//!
//! Each frame is judged by an oracle written here from the RFCs and the program's
//! documented behaviour (not from its code paths), which says what the program may do
//! with it:
//! - the verdict is PASS, DROP, TX or REDIRECT, nothing else;
//! - TX only for an ARP request for a VIP with a live lease (the output must be exactly
//!   the RFC 826 reply), for a neighbour solicitation for an IPv6 VIP with a live lease
//!   that passes the RFC 4861 §7.1.1 checks (the output must be exactly the §7.2.4
//!   advertisement), or for a whole TCP/UDP datagram to a configured service (its IP
//!   length field covers the headers and the frame holds what it declares; the output
//!   must be the input with only the Ethernet addresses rewritten to one of that
//!   service's real servers; the IPv4 header checksum is the receiving stack's to check,
//!   as a switch leaves it); REDIRECT only for the latter, to a real server behind another
//!   interface; a frame passed or dropped leaves the program unchanged;
//! - a new flow to a service with live real servers is forwarded, never dropped;
//! - a BFD control packet is recorded exactly when it is for the watched session from
//!   its neighbour with TTL 255.
//!
//! Counters: every frame counts once in `packets`, and at most once in one of the
//! outcome counters below, which the oracle predicts per class. The per-CPU counters do
//! not partition the frames by themselves: a frame the program has no business with
//! (not ARP, not an advert, not for a load-balanced address) is passed without any
//! outcome counter. The identity checked per batch is therefore
//!
//!   packets = Σ arp_{replies, dropped_expired, passed, malformed, gratuitous_passed}
//!           + Σ ndp_{replies, dropped_expired, dropped_malformed, passed, no_room}
//!           + adverts_seen
//!           + Σ lb_{forwarded, redirected, redirect_failed, dropped_*}
//!           + lb_passed_extension_headers
//!           + (frames the oracle calls "uncounted")
//!
//! with every ARP and NDP counter and `adverts_seen` exact against the oracle, the advert outcome
//! counters summing to `adverts_seen`, the adverts dropped (unwatched, over the per-CPU
//! budget) equal to `adverts_unwatched_dropped`, and the LB counters exact per verdict.
//!
//! Size: `VIPD_XDP_FUZZ_FRAMES` (default 600 000: 20–40 s on the 2-core development VM,
//! with its load);
//! `cargo xtask fuzz --xdp --runs 1000000` for the campaign. `VIPD_XDP_FUZZ_SEED` picks
//! another sequence. Needs root (CAP_BPF); frames arrive on loopback, ifindex 1.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use vipd::config::lb::{LbAlgo, LbProtocol, VirtualServer};
use vipd::io::bpf::{IpFamily, LbMaps, LoadOptions, LoadedXdp, WatchSpec, monotonic_now_ns};
use vipd::lb::HealthSnapshot;
use vipd::lb::dataplane::{NextHop, plan};
use vipd::proto::wire::{Auth, Version};
use vipd_common::LEASE_FOREVER;

mod common;
use common::{LOOPBACK, XDP_DROP, XDP_PASS, XDP_REDIRECT, XDP_TX, bfd_control};

/// A real server "behind another interface": reached with XDP_REDIRECT.
const OTHER_IFINDEX: u32 = 2;

const OWNER_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x01, 0x07];
const OUR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xaa];
const CLIENT_MAC: [u8; 6] = [0x02, 0xc1, 0x1e, 0x47, 0x00, 0x0a];
const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 7);

/// Leased, live: ARP requests for it are answered.
const VIP_LIVE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
/// Leased, expired: ARP requests for it are dropped.
const VIP_EXPIRED: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 101);
/// Not ours.
const UNOWNED: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 99);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
/// IPv6 VIP, leased, live: neighbour solicitations for it are answered.
const VIP6_LIVE: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x200);
/// IPv6 VIP, leased, expired: solicitations for it are dropped.
const VIP6_EXPIRED: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x201);

const MASTER_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
const MASTER_V6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
const GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

const BFD_OURS: u32 = 0x1234_5678;
const BFD_NEIGHBOR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

/// TCP service on VIP_LIVE:80, rr, real servers on loopback (XDP_TX).
const RS4: [&str; 3] = ["198.51.100.11:80", "198.51.100.12:80", "198.51.100.13:80"];
/// UDP service on [VIP6]:53, sh, real servers behind OTHER_IFINDEX (XDP_REDIRECT).
const RS6: [&str; 2] = ["[2001:db8::21]:53", "[2001:db8::22]:53"];

const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_VRRP: u8 = 112;

// ---------------------------------------------------------------------------------------
// A small deterministic PRNG (xorshift64*): the same seed gives the same frames.
// ---------------------------------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

// ---------------------------------------------------------------------------------------
// Fixtures, built byte by byte.
// ---------------------------------------------------------------------------------------

fn ones_complement_sum(chunks: &[&[u8]]) -> u16 {
    let bytes: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = ethernet(OUR_MAC, CLIENT_MAC, 0x0800);
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0x40, 0, ttl, proto, 0, 0]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let checksum = !ones_complement_sum(&[&ip]);
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(payload);
    f
}

fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, hop_limit: u8, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = ethernet(OUR_MAC, CLIENT_MAC, 0x86dd);
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    f.extend_from_slice(&[next, hop_limit]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(payload);
    f
}

/// A VRRP advert (RFC 5798 §5.1 / RFC 3768 §5.1) with its checksum.
fn vrrp(
    version: u8,
    vrid: u8,
    priority: u8,
    addrs: &[IpAddr],
    src: IpAddr,
    dst: IpAddr,
) -> Vec<u8> {
    let mut m = vec![(version << 4) | 1, vrid, priority, addrs.len() as u8];
    if version == 2 {
        m.extend_from_slice(&[1, 1, 0, 0]); // simple text auth, 1 s
    } else {
        m.extend_from_slice(&[0, 100, 0, 0]); // 100 cs
    }
    for a in addrs {
        match a {
            IpAddr::V4(a) => m.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => m.extend_from_slice(&a.octets()),
        }
    }
    if version == 2 {
        m.extend_from_slice(b"vipd-pw\0");
    }
    let len = (m.len() as u16).to_be_bytes();
    let sum = match (version, src, dst) {
        (2, _, _) => ones_complement_sum(&[&m]),
        (_, IpAddr::V4(s), IpAddr::V4(d)) => {
            ones_complement_sum(&[&s.octets(), &d.octets(), &[0, PROTO_VRRP], &len, &m])
        }
        (_, IpAddr::V6(s), IpAddr::V6(d)) => ones_complement_sum(&[
            &s.octets(),
            &d.octets(),
            &[0, 0],
            &len,
            &[0, 0, 0, PROTO_VRRP],
            &m,
        ]),
        _ => unreachable!("one family per advert"),
    };
    m[6..8].copy_from_slice(&(!sum).to_be_bytes());
    m
}

fn arp(oper: u16, spa: Ipv4Addr, tha: [u8; 6], tpa: Ipv4Addr) -> Vec<u8> {
    let mut f = ethernet([0xff; 6], CLIENT_MAC, 0x0806);
    f.extend_from_slice(&[0, 1, 0x08, 0, 6, 4]);
    f.extend_from_slice(&oper.to_be_bytes());
    f.extend_from_slice(&CLIENT_MAC);
    f.extend_from_slice(&spa.octets());
    f.extend_from_slice(&tha);
    f.extend_from_slice(&tpa.octets());
    f
}

fn tcp(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut t = sport.to_be_bytes().to_vec();
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(b"GET / HTTP/1.0\r\n\r\n");
    t
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = sport.to_be_bytes().to_vec();
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// NDP Neighbor Solicitation for `target` (RFC 4861 §4.3) from the client, with a Source
/// Link-Layer Address option, to the target's solicited-node group; checksum filled.
fn ndp_ns(target: Ipv6Addr) -> Vec<u8> {
    ndp_ns_from(CLIENT_V6, target, true)
}

/// [`ndp_ns`] from `source`; `slla`: with the Source Link-Layer Address option (a
/// duplicate address detection probe, from ::, has none).
fn ndp_ns_from(source: Ipv6Addr, target: Ipv6Addr, slla: bool) -> Vec<u8> {
    let mut icmp = vec![135, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&target.octets());
    if slla {
        icmp.extend_from_slice(&[1, 1]);
        icmp.extend_from_slice(&CLIENT_MAC);
    }
    let t = target.octets();
    let solicited = Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, t[13], t[14], t[15],
    ]);
    let checksum = !icmpv6_sum(&source.octets(), &solicited.octets(), &icmp);
    icmp[2..4].copy_from_slice(&checksum.to_be_bytes());
    ipv6(source, solicited, 255, 58, &icmp)
}

/// The RFC 4443 §2.3 sum over the RFC 8200 §8.1 pseudo-header and `message`.
fn icmpv6_sum(src: &[u8], dst: &[u8], message: &[u8]) -> u16 {
    let len = (message.len() as u32).to_be_bytes();
    ones_complement_sum(&[src, dst, &len, &[0, 0, 0, 58], message])
}

/// The well-formed frames mutations start from.
fn fixtures(rng: &mut Rng) -> Vec<Vec<u8>> {
    let sport = 1024 + rng.below(60000) as u16;
    let flags = [0x02, 0x10, 0x18, 0x11, 0x04, 0x12][rng.below(6)];
    let v4 = |a: Ipv4Addr| IpAddr::V4(a);
    vec![
        ipv4(
            MASTER_V4,
            GROUP_V4,
            255,
            PROTO_VRRP,
            &vrrp(3, 7, 150, &[v4(VIP_LIVE)], v4(MASTER_V4), v4(GROUP_V4)),
        ),
        ipv4(
            MASTER_V4,
            GROUP_V4,
            255,
            PROTO_VRRP,
            &vrrp(2, 8, 150, &[v4(VIP_LIVE)], v4(MASTER_V4), v4(GROUP_V4)),
        ),
        ipv6(
            MASTER_V6,
            GROUP_V6,
            255,
            PROTO_VRRP,
            &vrrp(
                3,
                7,
                150,
                &[IpAddr::V6(VIP6)],
                IpAddr::V6(MASTER_V6),
                IpAddr::V6(GROUP_V6),
            ),
        ),
        arp(1, CLIENT_V4, [0; 6], VIP_LIVE),
        arp(1, CLIENT_V4, [0; 6], VIP_EXPIRED),
        arp(1, CLIENT_V4, [0; 6], UNOWNED),
        arp(1, VIP_LIVE, [0; 6], VIP_LIVE),
        arp(2, CLIENT_V4, OWNER_MAC, VIP_LIVE),
        ndp_ns(VIP6),
        ipv4(CLIENT_V4, VIP_LIVE, 64, PROTO_TCP, &tcp(sport, 80, flags)),
        ipv4(CLIENT_V4, VIP_LIVE, 64, PROTO_TCP, &tcp(sport, 80, 0x02)),
        ipv4(CLIENT_V4, VIP_LIVE, 64, PROTO_UDP, &udp(sport, 80, b"x")),
        ipv6(
            CLIENT_V6,
            VIP6,
            64,
            PROTO_UDP,
            &udp(sport, 53, b"\x12\x34\x01\x00"),
        ),
        ipv6(CLIENT_V6, VIP6, 64, PROTO_TCP, &tcp(sport, 53, flags)),
        ipv4(
            BFD_NEIGHBOR,
            MASTER_V4,
            255,
            PROTO_UDP,
            &udp(49152, 3784, &bfd_control(BFD_OURS)),
        ),
        ipv4(
            BFD_NEIGHBOR,
            MASTER_V4,
            255,
            PROTO_UDP,
            &udp(49152, 3784, &bfd_control(7)),
        ),
        ndp_ns(VIP6_LIVE),
        ndp_ns_from(Ipv6Addr::UNSPECIFIED, VIP6_LIVE, false),
        ndp_ns(VIP6_EXPIRED),
    ]
}

/// One frame: random bytes, or a fixture with 1–4 mutations.
fn frame(rng: &mut Rng) -> Vec<u8> {
    if rng.chance(8) {
        let len = 14 + rng.below(120);
        let mut f = rng.bytes(len);
        // Random bytes rarely hit an interesting ethertype: give them one half the time.
        if rng.chance(2) {
            let ethertype: u16 = [0x0800, 0x86dd, 0x0806, 0x8100][rng.below(4)];
            f[12..14].copy_from_slice(&ethertype.to_be_bytes());
        }
        return f;
    }
    let all = fixtures(rng);
    let mut f = all[rng.below(all.len())].clone();
    // A tenth go through unchanged: the well-formed cases must keep their exact outcome.
    if rng.chance(10) {
        return f;
    }
    for _ in 0..1 + rng.below(4) {
        mutate(rng, &mut f);
    }
    if f.len() < 14 {
        f.resize(14, 0);
    }
    f
}

fn mutate(rng: &mut Rng, f: &mut Vec<u8>) {
    let at = |rng: &mut Rng, f: &Vec<u8>| rng.below(f.len());
    match rng.below(12) {
        // Bit flips.
        0 | 1 => {
            for _ in 0..1 + rng.below(8) {
                let i = at(rng, f);
                f[i] ^= 1 << rng.below(8);
            }
        }
        // A random byte.
        2 => {
            let i = at(rng, f);
            f[i] = rng.byte();
        }
        // Truncation.
        3 => {
            let len = 14 + rng.below(f.len().saturating_sub(13));
            f.truncate(len);
        }
        // Extension.
        4 => {
            let n = 1 + rng.below(64);
            let more = rng.bytes(n);
            f.extend_from_slice(&more);
        }
        // Ethertype.
        5 => {
            let ethertype: u16 =
                [0x0800, 0x86dd, 0x0806, 0x8100, 0x88a8, rng.next() as u16][rng.below(6)];
            f[12..14].copy_from_slice(&ethertype.to_be_bytes());
        }
        // An 802.1Q tag in front of the ethertype.
        6 => {
            let tci = (rng.next() as u16 & 0x0fff).to_be_bytes();
            f.splice(12..12, [0x81, 0x00, tci[0], tci[1]]);
        }
        // IPv4 IHL, or IPv6 version nibble.
        7 if f.len() > 14 => f[14] = (f[14] & 0xf0) | rng.below(16) as u8,
        // IP length fields (IPv4 total length, IPv6 payload length).
        8 if f.len() > 19 => {
            let field = if f[12..14] == [0x86, 0xdd] { 18 } else { 16 };
            let len = match rng.below(3) {
                0 => rng.next() as u16,
                1 => (f.len() - 14) as u16,
                _ => (f.len() as u16)
                    .wrapping_sub(14)
                    .wrapping_add(rng.below(9) as u16)
                    .wrapping_sub(4),
            };
            f[field..field + 2].copy_from_slice(&len.to_be_bytes());
        }
        // Fragments: IPv4 MF / offset; IPv6 next header "fragment".
        9 if f.len() > 21 => {
            if f[12..14] == [0x86, 0xdd] {
                f[20] = 44;
            } else {
                let frag = [0x2000u16, 0x0001, 0x1fff, 0x4000][rng.below(4)];
                f[20..22].copy_from_slice(&frag.to_be_bytes());
            }
        }
        // TTL / hop limit, protocol / next header.
        10 if f.len() > 23 => {
            let v6 = f[12..14] == [0x86, 0xdd];
            let (ttl, proto) = if v6 { (21, 20) } else { (22, 23) };
            if rng.chance(2) {
                f[ttl] = [255, 254, 1, 0, 64][rng.below(5)];
            } else {
                f[proto] = [PROTO_TCP, PROTO_UDP, PROTO_VRRP, 58, 44, 0, 1][rng.below(7)];
            }
        }
        // A field inside the payload: lengths, counts, ports, flags live there.
        _ => {
            let start = 14 + 20.min(f.len().saturating_sub(15));
            let i = start + rng.below(f.len().saturating_sub(start).min(32));
            if i < f.len() {
                f[i] = [0, 1, 2, 0xff, 0x7f, 0x80, 24, 26, 3][rng.below(9)];
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The oracle.
// ---------------------------------------------------------------------------------------

/// Which group of outcome counters a frame must move (exactly one counter of the group,
/// or none for `Uncounted`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    /// One of the ARP outcomes; the name says which.
    Arp(&'static str),
    /// `adverts_seen` and one advert outcome.
    Advert,
    /// A frame for a load-balanced address that the LB handles: one LB verdict counter.
    Lb(LbExpect),
    /// One of the neighbour solicitation outcomes; the name says which.
    Ndp(&'static str),
    /// `lb_passed_extension_headers`.
    LbExtensionHeaders,
    /// Passed with no outcome counter.
    Uncounted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum LbExpect {
    /// Dropped and counted under this name.
    Drop(&'static str),
    /// To a service: forwarded (TX/REDIRECT), or dropped as an unknown flow / with no
    /// backend; `new_flow` says it starts one, so it must be forwarded.
    Service { service: usize, new_flow: bool },
}

struct Expect {
    class: Class,
    /// The exact output for an ARP or NDP frame (None: unchanged).
    arp_reply: Option<Vec<u8>>,
    /// Whether the BFD record of the watched session must count this frame.
    bfd_recorded: bool,
}

fn be16(f: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*f.get(i)?, *f.get(i + 1)?]))
}

fn oracle(f: &[u8]) -> Expect {
    let mut e = Expect {
        class: Class::Uncounted,
        arp_reply: None,
        bfd_recorded: false,
    };
    match be16(f, 12) {
        Some(0x0806) => oracle_arp(f, &mut e),
        Some(0x0800) => oracle_ipv4(f, &mut e),
        Some(0x86dd) => oracle_ipv6(f, &mut e),
        // VLAN-tagged and other frames are not the program's: passed as they are.
        _ => {}
    }
    e
}

/// RFC 826 for Ethernet/IPv4: answered only for a request for a live-leased VIP that is
/// not a gratuitous announcement of it.
fn oracle_arp(f: &[u8], e: &mut Expect) {
    let Some(a) = f.get(14..42) else {
        e.class = Class::Arp("arp_malformed");
        return;
    };
    if a[0..2] != [0, 1] || a[2..4] != [8, 0] || a[4] != 6 || a[5] != 4 {
        e.class = Class::Arp("arp_malformed");
        return;
    }
    let oper = u16::from_be_bytes([a[6], a[7]]);
    let spa = Ipv4Addr::new(a[14], a[15], a[16], a[17]);
    let tpa = Ipv4Addr::new(a[24], a[25], a[26], a[27]);
    let leased = tpa == VIP_LIVE || tpa == VIP_EXPIRED;
    e.class = Class::Arp(if !leased || oper != 1 {
        "arp_passed"
    } else if spa == tpa {
        "arp_gratuitous_passed"
    } else if tpa == VIP_EXPIRED {
        "arp_dropped_expired"
    } else {
        "arp_replies"
    });
    if e.class == Class::Arp("arp_replies") {
        let sha = &a[8..14];
        let mut out = f.to_vec();
        out[0..6].copy_from_slice(sha);
        out[6..12].copy_from_slice(&OWNER_MAC);
        out[14 + 6..14 + 8].copy_from_slice(&2u16.to_be_bytes());
        out[14 + 8..14 + 14].copy_from_slice(&OWNER_MAC);
        out[14 + 14..14 + 18].copy_from_slice(&tpa.octets());
        out[14 + 18..14 + 24].copy_from_slice(sha);
        out[14 + 24..14 + 28].copy_from_slice(&spa.octets());
        e.arp_reply = Some(out);
    }
}

fn oracle_ipv4(f: &[u8], e: &mut Expect) {
    let Some(ip) = f.get(14..34) else { return };
    if ip[0] >> 4 != 4 {
        return;
    }
    let proto = ip[9];
    // Every IPv4 protocol-112 datagram is an advert candidate: checked and passed.
    if proto == PROTO_VRRP {
        e.class = Class::Advert;
        return;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    // RFC 5881 §5 (TTL 255), §4 (port 3784), RFC 5880 §6.8.6 (version, length), and the
    // session's discriminator and neighbour.
    if proto == PROTO_UDP && !fragment && ihl >= 20 {
        e.bfd_recorded = bfd_matches(f, 14 + ihl, IpAddr::V4(src), ip[8]);
    }
    if dst != VIP_LIVE || (proto != PROTO_TCP && proto != PROTO_UDP) {
        return;
    }
    e.class = Class::Lb(if ihl < 20 {
        LbExpect::Drop("lb_dropped_truncated")
    } else if fragment {
        LbExpect::Drop("lb_dropped_fragment")
    } else {
        let total_len = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        match transport(f, 14 + ihl, proto, total_len.checked_sub(ihl)) {
            None => LbExpect::Drop("lb_dropped_truncated"),
            // RFC 791: a datagram whose Total Length is shorter than its headers, or
            // longer than what arrived, is not forwarded.
            Some((80, _, false)) if proto == PROTO_TCP => LbExpect::Drop("lb_dropped_truncated"),
            Some((80, new_flow, true)) if proto == PROTO_TCP => LbExpect::Service {
                service: 0,
                new_flow,
            },
            Some(_) => {
                e.class = Class::Uncounted;
                return;
            }
        }
    });
}

fn oracle_ipv6(f: &[u8], e: &mut Expect) {
    let Some(ip) = f.get(14..54) else { return };
    if ip[0] >> 4 != 6 {
        return;
    }
    let next = ip[6];
    // Adverts without extension headers; others are the daemon's (RFC 5798 §5.1.2).
    if next == PROTO_VRRP {
        e.class = Class::Advert;
        return;
    }
    // Neighbour solicitations (the fixed part whole) are the NDP responder's.
    if next == 58 && f.get(54) == Some(&135) && f.len() >= 14 + 40 + 24 {
        oracle_ndp(f, e);
        return;
    }
    let mut src = [0u8; 16];
    src.copy_from_slice(&ip[8..24]);
    let mut dst = [0u8; 16];
    dst.copy_from_slice(&ip[24..40]);
    if next == PROTO_UDP {
        e.bfd_recorded = bfd_matches(f, 54, IpAddr::from(src), ip[7]);
    }
    if Ipv6Addr::from(dst) != VIP6 {
        return;
    }
    e.class = match next {
        44 => Class::Lb(LbExpect::Drop("lb_dropped_fragment")),
        PROTO_TCP | PROTO_UDP => match transport(
            f,
            54,
            next,
            Some(usize::from(u16::from_be_bytes([ip[4], ip[5]]))),
        ) {
            None => Class::Lb(LbExpect::Drop("lb_dropped_truncated")),
            // RFC 8200 §3: the same for the Payload Length.
            Some((53, _, false)) if next == PROTO_UDP => {
                Class::Lb(LbExpect::Drop("lb_dropped_truncated"))
            }
            Some((53, new_flow, true)) if next == PROTO_UDP => Class::Lb(LbExpect::Service {
                service: 1,
                new_flow,
            }),
            Some(_) => Class::Uncounted,
        },
        // ICMPv6 (NDP for the VIP among it) is the kernel's and not worth a counter.
        58 => Class::Uncounted,
        _ => Class::LbExtensionHeaders,
    };
}

/// RFC 4861: a solicitation for an IPv6 VIP with a live lease that passes the §7.1.1
/// checks is answered with the §7.2.4 advertisement (R and O set, S unless it was a
/// duplicate address detection probe, which is answered to all-nodes); an expired lease
/// drops it; one that fails a check is dropped (the kernel would discard it); one for
/// another target, or longer than the program checks (64 bytes of ICMPv6), is the
/// kernel's.
fn oracle_ndp(f: &[u8], e: &mut Expect) {
    let target: [u8; 16] = f[62..78].try_into().expect("16 bytes");
    let target = Ipv6Addr::from(target);
    if target == VIP6_EXPIRED {
        e.class = Class::Ndp("ndp_dropped_expired");
        return;
    }
    if target != VIP6_LIVE {
        e.class = Class::Ndp("ndp_passed");
        return;
    }
    let malformed = Class::Ndp("ndp_dropped_malformed");
    e.class = malformed;
    // §7.1.1, in order: hop limit 255; ICMP length 24 or more (and whole words, which
    // the sum below needs); valid checksum; code 0; options of nonzero length, inside the
    // message; from :: only to a solicited-node group and without a source link-layer
    // address option.
    if f[21] != 255 {
        return;
    }
    let icmp_len = usize::from(u16::from_be_bytes([f[18], f[19]]));
    if icmp_len < 24 || icmp_len % 2 != 0 {
        return;
    }
    if icmp_len > 64 {
        e.class = Class::Ndp("ndp_passed");
        return;
    }
    let Some(message) = f.get(54..54 + icmp_len) else {
        return;
    };
    if icmpv6_sum(&f[22..38], &f[38..54], message) != 0xffff || message[1] != 0 {
        return;
    }
    let (mut offset, mut options, mut slla) = (24, 0, false);
    while options < (64 - 24) / 8 && offset < icmp_len {
        let Some(&[kind, units]) = message.get(offset..offset + 2) else {
            return;
        };
        if units == 0 {
            return;
        }
        slla |= kind == 1;
        offset += usize::from(units) * 8;
        options += 1;
    }
    if offset > icmp_len {
        return;
    }
    let dad = f[22..38].iter().all(|b| *b == 0);
    if dad && (slla || f[38..51] != [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff]) {
        return;
    }
    e.class = Class::Ndp("ndp_replies");
    // The advertisement: Ethernet to the asker (all-nodes for a probe) from the VIP's
    // owner; IPv6 from the target to the asker's address (ff02::1 for a probe); ICMPv6
    // type 136 with R/S/O, the target, and a Target Link-Layer Address option.
    let mut out = Vec::with_capacity(86);
    out.extend_from_slice(if dad {
        &[0x33, 0x33, 0, 0, 0, 1][..]
    } else {
        &f[6..12]
    });
    out.extend_from_slice(&OWNER_MAC);
    out.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0, 0, 32, 58, 255]);
    let dst = if dad {
        Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1).octets()
    } else {
        f[22..38].try_into().expect("16 bytes")
    };
    out.extend_from_slice(&target.octets());
    out.extend_from_slice(&dst);
    let flags = 0x80 | 0x20 | if dad { 0 } else { 0x40 };
    let mut na = vec![136, 0, 0, 0, flags, 0, 0, 0];
    na.extend_from_slice(&target.octets());
    na.extend_from_slice(&[2, 1]);
    na.extend_from_slice(&OWNER_MAC);
    let checksum = !icmpv6_sum(&target.octets(), &dst, &na);
    na[2..4].copy_from_slice(&checksum.to_be_bytes());
    out.extend_from_slice(&na);
    e.arp_reply = Some(out);
}

/// A transport header at `at`, of a datagram whose IP header says `l4_len` bytes follow
/// it (None: its length field cannot even cover the IP header): the destination port,
/// whether the segment starts a flow (UDP; TCP SYN without ACK), and whether the datagram
/// is whole (its length covers the transport header and the frame holds all of it;
/// Ethernet may pad a frame, never cut one). None when the header is cut short.
fn transport(f: &[u8], at: usize, proto: u8, l4_len: Option<usize>) -> Option<(u16, bool, bool)> {
    let need = if proto == PROTO_TCP { 20 } else { 8 };
    let l4 = f.get(at..at + need)?;
    let dport = u16::from_be_bytes([l4[2], l4[3]]);
    let new_flow = proto == PROTO_UDP || l4[13] & 0x12 == 0x02;
    let whole = l4_len.is_some_and(|len| len >= need && at + len <= f.len());
    Some((dport, new_flow, whole))
}

fn bfd_matches(f: &[u8], udp_at: usize, src: IpAddr, ttl: u8) -> bool {
    let Some(udp) = f.get(udp_at..udp_at + 8) else {
        return false;
    };
    let Some(bfd) = f.get(udp_at + 8..udp_at + 32) else {
        return false;
    };
    u16::from_be_bytes([udp[2], udp[3]]) == 3784
        && bfd[0] >> 5 == 1
        && usize::from(bfd[3]) >= 24
        && u32::from_be_bytes([bfd[8], bfd[9], bfd[10], bfd[11]]) == BFD_OURS
        && src == IpAddr::V4(BFD_NEIGHBOR)
        && ttl == 255
}

// ---------------------------------------------------------------------------------------
// The program under test.
// ---------------------------------------------------------------------------------------

fn rs_mac(service: usize, i: usize) -> [u8; 6] {
    [0x02, 0, 0, service as u8, 1, i as u8 + 1]
}

struct Lab {
    xdp: LoadedXdp,
    lb: LbMaps,
    /// Per service: the real servers' MACs and the verdict that reaches them.
    services: [(Vec<[u8; 6]>, u32); 2],
}

fn lab() -> Lab {
    assert!(
        unsafe { libc::geteuid() } == 0,
        "XDP fuzzing needs root (CAP_BPF)"
    );
    let mut xdp = LoadedXdp::load_with(&LoadOptions {
        lb: true,
        ..LoadOptions::default()
    })
    .expect("load vipd's XDP program with the load balancer's maps");
    xdp.set_vip_lease(LOOPBACK, VIP_LIVE, OWNER_MAC, LEASE_FOREVER)
        .expect("lease");
    let a_second_ago = monotonic_now_ns().saturating_sub(1_000_000_000);
    xdp.set_vip_lease(LOOPBACK, VIP_EXPIRED, OWNER_MAC, a_second_ago)
        .expect("lease");
    xdp.set_vip_lease(LOOPBACK, VIP6_LIVE, OWNER_MAC, LEASE_FOREVER)
        .expect("lease");
    xdp.set_vip_lease(LOOPBACK, VIP6_EXPIRED, OWNER_MAC, a_second_ago)
        .expect("lease");
    let silence = Duration::from_secs(3);
    let v3 = WatchSpec {
        version: Version::V3,
        auth: Auth::None,
        silence,
    };
    let v2 = WatchSpec {
        version: Version::V2,
        auth: Auth::SimpleText(*b"vipd-pw\0"),
        silence,
    };
    xdp.watch(LOOPBACK, 7, IpFamily::Ipv4, &v3).expect("watch");
    xdp.watch(LOOPBACK, 8, IpFamily::Ipv4, &v2).expect("watch");
    xdp.watch(LOOPBACK, 7, IpFamily::Ipv6, &v3).expect("watch");
    xdp.watch_bfd(BFD_OURS, IpAddr::V4(BFD_NEIGHBOR), 255)
        .expect("watch BFD");

    let parse = |list: &[&str]| -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().expect("address")).collect()
    };
    let web = VirtualServer::direct_routing(
        SocketAddr::new(VIP_LIVE.into(), 80),
        LbAlgo::Rr,
        &parse(&RS4),
    );
    let mut dns =
        VirtualServer::direct_routing(SocketAddr::new(VIP6.into(), 53), LbAlgo::Sh, &parse(&RS6));
    dns.protocol = LbProtocol::Udp;
    dns.name = format!("[{VIP6}]:53/udp");
    let mut hops = HashMap::new();
    for (service, (list, ifindex)) in [(&RS4[..], LOOPBACK), (&RS6[..], OTHER_IFINDEX)]
        .into_iter()
        .enumerate()
    {
        for (i, a) in parse(list).into_iter().enumerate() {
            hops.insert(
                a.ip(),
                NextHop {
                    ifindex,
                    mac: rs_mac(service, i),
                    src_mac: OUR_MAC,
                },
            );
        }
    }
    let mut lb = xdp.take_lb_maps().expect("LB maps");
    lb.apply(&plan(&[web, dns], &HealthSnapshot::default(), &hops))
        .expect("apply LB tables");
    Lab {
        xdp,
        lb,
        services: [
            ((0..RS4.len()).map(|i| rs_mac(0, i)).collect(), XDP_TX),
            ((0..RS6.len()).map(|i| rs_mac(1, i)).collect(), XDP_REDIRECT),
        ],
    }
}

fn counters(lab: &Lab) -> BTreeMap<&'static str, u64> {
    let mut all = lab.xdp.stats().expect("stats");
    all.extend(lab.lb.stats().expect("LB stats"));
    all
}

const ARP_OUTCOMES: [&str; 5] = [
    "arp_replies",
    "arp_dropped_expired",
    "arp_passed",
    "arp_malformed",
    "arp_gratuitous_passed",
];
const NDP_OUTCOMES: [&str; 5] = [
    "ndp_replies",
    "ndp_dropped_expired",
    "ndp_dropped_malformed",
    "ndp_passed",
    "ndp_no_room",
];
const ADVERT_OUTCOMES: [&str; 11] = [
    "adverts_accepted",
    "adverts_unwatched",
    "advert_dropped_truncated",
    "advert_dropped_ttl",
    "advert_dropped_version",
    "advert_dropped_type",
    "advert_dropped_length",
    "advert_dropped_auth",
    "advert_dropped_checksum",
    "advert_dropped_fragment",
    "advert_dropped_too_long",
];
const LB_VERDICTS: [&str; 8] = [
    "lb_forwarded",
    "lb_redirected",
    "lb_redirect_failed",
    "lb_dropped_unknown_flow",
    "lb_dropped_fragment",
    "lb_dropped_truncated",
    "lb_dropped_no_backend",
    "lb_dropped_no_route",
];

/// What one batch of frames should have moved, from the oracle and the verdicts.
#[derive(Default)]
struct Tally {
    frames: u64,
    arp: BTreeMap<&'static str, u64>,
    ndp: BTreeMap<&'static str, u64>,
    adverts: u64,
    /// Adverts the program dropped (unwatched, over the budget).
    advert_drops: u64,
    lb_drops: BTreeMap<&'static str, u64>,
    /// Service frames the program dropped (as an unknown flow or for want of a backend).
    lb_service_drops: u64,
    lb_tx: u64,
    lb_redirect: u64,
    lb_extension_headers: u64,
    uncounted: u64,
}

fn check_batch(
    tally: &Tally,
    before: &BTreeMap<&'static str, u64>,
    after: &BTreeMap<&'static str, u64>,
) {
    let d =
        |name: &str| after.get(name).copied().unwrap_or(0) - before.get(name).copied().unwrap_or(0);
    let sum = |names: &[&str]| names.iter().map(|n| d(n)).sum::<u64>();
    assert_eq!(d("packets"), tally.frames, "packets counts every frame");
    for name in ARP_OUTCOMES {
        assert_eq!(d(name), tally.arp.get(name).copied().unwrap_or(0), "{name}");
    }
    for name in NDP_OUTCOMES {
        assert_eq!(d(name), tally.ndp.get(name).copied().unwrap_or(0), "{name}");
    }
    assert_eq!(d("adverts_seen"), tally.adverts, "adverts_seen");
    assert_eq!(
        sum(&ADVERT_OUTCOMES),
        tally.adverts,
        "one advert outcome per advert"
    );
    assert_eq!(
        d("adverts_unwatched_dropped"),
        tally.advert_drops,
        "every dropped advert is an unwatched one over the budget"
    );
    assert!(
        tally.advert_drops <= d("adverts_unwatched"),
        "dropped adverts are among the unwatched"
    );
    assert_eq!(d("lb_forwarded"), tally.lb_tx, "lb_forwarded");
    assert_eq!(d("lb_redirected"), tally.lb_redirect, "lb_redirected");
    assert_eq!(
        d("lb_redirect_failed") + d("lb_dropped_no_route"),
        0,
        "no failed sends"
    );
    for name in ["lb_dropped_fragment", "lb_dropped_truncated"] {
        assert_eq!(
            d(name),
            tally.lb_drops.get(name).copied().unwrap_or(0),
            "{name}"
        );
    }
    assert_eq!(
        d("lb_dropped_unknown_flow") + d("lb_dropped_no_backend"),
        tally.lb_service_drops,
        "service frames dropped"
    );
    assert_eq!(
        d("lb_passed_extension_headers"),
        tally.lb_extension_headers,
        "lb_passed_extension_headers"
    );
    // The identity in the module documentation.
    assert_eq!(
        d("packets"),
        sum(&ARP_OUTCOMES)
            + sum(&NDP_OUTCOMES)
            + d("adverts_seen")
            + sum(&LB_VERDICTS)
            + d("lb_passed_extension_headers")
            + tally.uncounted,
        "outcome counters + uncounted frames = packets"
    );
}

/// Runs `frame`, checks the verdict and the output against the oracle, and adds it to
/// `tally`. Returns the verdict.
fn judge(lab: &mut Lab, frame: &[u8], tally: &mut Tally, bfd_count: &mut u64) -> u32 {
    let e = oracle(frame);
    let out = lab.xdp.test_run(frame).expect("BPF_PROG_TEST_RUN");
    let shown = || {
        format!(
            "frame {frame:02x?} → verdict {} output {:02x?}",
            out.action, out.frame
        )
    };
    assert!(
        matches!(out.action, XDP_PASS | XDP_DROP | XDP_TX | XDP_REDIRECT),
        "verdict outside PASS/DROP/TX/REDIRECT: {}",
        shown()
    );
    tally.frames += 1;
    match e.class {
        Class::Arp(name) => {
            *tally.arp.entry(name).or_default() += 1;
            let (verdict, output) = match name {
                "arp_replies" => (XDP_TX, e.arp_reply.clone().expect("reply")),
                "arp_dropped_expired" => (XDP_DROP, frame.to_vec()),
                _ => (XDP_PASS, frame.to_vec()),
            };
            assert_eq!(
                (out.action, &out.frame),
                (verdict, &output),
                "ARP ({name}): {}",
                shown()
            );
        }
        Class::Ndp(name) => {
            *tally.ndp.entry(name).or_default() += 1;
            let (verdict, output) = match name {
                "ndp_replies" => (XDP_TX, e.arp_reply.clone().expect("advertisement")),
                "ndp_passed" => (XDP_PASS, frame.to_vec()),
                _ => (XDP_DROP, frame.to_vec()),
            };
            assert_eq!(
                (out.action, &out.frame),
                (verdict, &output),
                "NDP ({name}): {}",
                shown()
            );
        }
        Class::Advert => {
            tally.adverts += 1;
            // Passed unchanged, or dropped when it is for a VRID nobody watches and this
            // CPU's budget for those is spent (checked against the counter per batch).
            if out.action == XDP_DROP {
                tally.advert_drops += 1;
            }
            assert!(
                matches!(out.action, XDP_PASS | XDP_DROP) && out.frame == frame,
                "adverts pass (or drop) unchanged: {}",
                shown()
            );
        }
        Class::LbExtensionHeaders | Class::Uncounted => {
            if e.class == Class::Uncounted {
                tally.uncounted += 1;
            } else {
                tally.lb_extension_headers += 1;
            }
            assert_eq!(
                (out.action, &out.frame[..]),
                (XDP_PASS, frame),
                "not the program's: {}",
                shown()
            );
        }
        Class::Lb(LbExpect::Drop(name)) => {
            *tally.lb_drops.entry(name).or_default() += 1;
            assert_eq!(
                (out.action, &out.frame[..]),
                (XDP_DROP, frame),
                "{name}: {}",
                shown()
            );
        }
        Class::Lb(LbExpect::Service { service, new_flow }) => {
            let (macs, sent) = &lab.services[service];
            if out.action == XDP_DROP {
                assert!(
                    !new_flow,
                    "a new flow to a live service was dropped: {}",
                    shown()
                );
                assert_eq!(
                    out.frame,
                    frame,
                    "dropped frames are left as they were: {}",
                    shown()
                );
                tally.lb_service_drops += 1;
            } else {
                assert_eq!(
                    out.action,
                    *sent,
                    "service {service}'s real servers: {}",
                    shown()
                );
                let dst: [u8; 6] = out.frame[..6].try_into().expect("6 bytes");
                assert!(
                    macs.contains(&dst),
                    "sent to a MAC not of service {service}: {}",
                    shown()
                );
                assert_eq!(&out.frame[6..12], &OUR_MAC, "from our MAC: {}", shown());
                assert_eq!(
                    &out.frame[12..],
                    &frame[12..],
                    "only the Ethernet addresses change: {}",
                    shown()
                );
                if out.action == XDP_TX {
                    tally.lb_tx += 1;
                } else {
                    tally.lb_redirect += 1;
                }
            }
        }
    }
    if e.bfd_recorded {
        *bfd_count += 1;
    }
    // Read back for every UDP frame, so a wrong recording shows at the frame that did it.
    if e.bfd_recorded || frame.get(23) == Some(&PROTO_UDP) || frame.get(20) == Some(&PROTO_UDP) {
        let seen = lab
            .xdp
            .bfd_record(BFD_OURS)
            .expect("BFD record")
            .map_or(0, |r| r.count);
        assert_eq!(seen, *bfd_count, "BFD record count after {}", shown());
    }
    out.action
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

#[test]
fn random_and_mutated_frames_get_only_the_answers_they_deserve() {
    let frames = env_u64("VIPD_XDP_FUZZ_FRAMES", 600_000);
    let seed = env_u64("VIPD_XDP_FUZZ_SEED", 0x5eed_f00d_cafe_d00d).max(1);
    let mut lab = lab();
    let mut rng = Rng(seed);
    let mut verdicts: BTreeMap<u32, u64> = BTreeMap::new();
    let mut classes: BTreeMap<String, u64> = BTreeMap::new();
    let mut bfd_count = 0;
    let started = Instant::now();
    let mut done = 0;
    while done < frames {
        let batch = (frames - done).min(1000);
        let before = counters(&lab);
        let mut tally = Tally::default();
        for _ in 0..batch {
            let f = frame(&mut rng);
            let class = match oracle(&f).class {
                Class::Lb(LbExpect::Drop(name)) => name.to_owned(),
                Class::Lb(LbExpect::Service { service, .. }) => format!("lb_service_{service}"),
                Class::Arp(name) | Class::Ndp(name) => name.to_owned(),
                other => format!("{other:?}"),
            };
            *classes.entry(class).or_default() += 1;
            *verdicts
                .entry(judge(&mut lab, &f, &mut tally, &mut bfd_count))
                .or_default() += 1;
        }
        check_batch(&tally, &before, &counters(&lab));
        done += batch;
    }
    let elapsed = started.elapsed();
    let name = |v: u32| match v {
        XDP_DROP => "DROP",
        XDP_PASS => "PASS",
        XDP_TX => "TX",
        XDP_REDIRECT => "REDIRECT",
        _ => "?",
    };
    println!(
        "xdp_fuzz: {frames} frames (seed {seed:#x}) in {:.1} s ({:.0} frames/s)",
        elapsed.as_secs_f64(),
        frames as f64 / elapsed.as_secs_f64()
    );
    println!(
        "xdp_fuzz: verdicts {:?}",
        verdicts
            .iter()
            .map(|(v, n)| (name(*v), *n))
            .collect::<Vec<_>>()
    );
    println!("xdp_fuzz: oracle classes {classes:?}; BFD records {bfd_count}");
    println!(
        "xdp_fuzz: counters {:?}",
        counters(&lab)
            .into_iter()
            .filter(|(_, v)| *v > 0)
            .collect::<Vec<_>>()
    );
    // The fixtures must reach every outcome, or the fuzzing is not exercising the program.
    for v in [XDP_PASS, XDP_DROP, XDP_TX, XDP_REDIRECT] {
        assert!(
            verdicts.get(&v).copied().unwrap_or(0) > 0 || frames < 1000,
            "no {} verdict",
            name(v)
        );
    }
}

/// Regression and sanity frames: each well-formed fixture gets its exact outcome.
#[test]
fn fixtures_get_their_exact_outcomes() {
    let mut lab = lab();
    let mut rng = Rng(1);
    let mut tally = Tally::default();
    let mut bfd_count = 0;
    let before = counters(&lab);
    let expected = [
        XDP_PASS, XDP_PASS, XDP_PASS, XDP_TX, XDP_DROP, XDP_PASS, XDP_PASS, XDP_PASS, XDP_PASS,
    ];
    let all = fixtures(&mut rng);
    for (f, want) in all.iter().zip(expected) {
        assert_eq!(judge(&mut lab, f, &mut tally, &mut bfd_count), want);
    }
    for f in &all[expected.len()..] {
        judge(&mut lab, f, &mut tally, &mut bfd_count);
    }
    check_batch(&tally, &before, &counters(&lab));
    let c = counters(&lab);
    assert_eq!(c["adverts_accepted"], 3, "the three adverts are accepted");
    assert_eq!(
        (c["ndp_replies"], c["ndp_dropped_expired"], c["ndp_passed"]),
        (2, 1, 1),
        "solicitation and probe for the live VIP answered, the expired one dropped, the \
         unmanaged one passed"
    );
    assert_eq!(bfd_count, 1, "the BFD packet for our session is recorded");
}

/// Found by the random test: a UDP datagram to the IPv6 service whose Payload Length
/// (52) runs past the frame (12 bytes after the header) was redirected to a real server.
/// The same for IPv4 with a Total Length past the frame or short of the headers. Each
/// must be dropped and counted as truncated, while the same datagrams with honest
/// lengths are forwarded.
#[test]
fn datagrams_whose_length_field_lies_are_not_forwarded() {
    let mut lab = lab();
    let found: Vec<u8> = [
        "0200000000aa02c11e47000a86dd6500000000341140",
        "20010db8000c0000000000000000000720010db8000000000000000000000100",
        "cc850035000c000012348d00",
    ]
    .concat()
    .as_bytes()
    .chunks(2)
    .map(|h| u8::from_str_radix(std::str::from_utf8(h).expect("ascii"), 16).expect("hex"))
    .collect();
    let honest6 = {
        let mut f = found.clone();
        f[18..20].copy_from_slice(&12u16.to_be_bytes());
        f
    };
    let syn = ipv4(CLIENT_V4, VIP_LIVE, 64, PROTO_TCP, &tcp(40000, 80, 0x02));
    let long4 = {
        let mut f = syn.clone();
        f[16..18].copy_from_slice(&((syn.len() - 14 + 1) as u16).to_be_bytes());
        f
    };
    let short4 = {
        let mut f = syn.clone();
        f[16..18].copy_from_slice(&(20u16 + 19).to_be_bytes());
        f
    };
    let padded4 = {
        let mut f = syn.clone();
        f.extend_from_slice(&[0; 6]);
        f
    };
    let mut tally = Tally::default();
    let mut bfd_count = 0;
    let before = counters(&lab);
    for (frame, want) in [
        (&found, XDP_DROP),
        (&long4, XDP_DROP),
        (&short4, XDP_DROP),
        (&honest6, XDP_REDIRECT),
        (&padded4, XDP_TX),
        (&syn, XDP_TX),
    ] {
        assert_eq!(
            judge(&mut lab, frame, &mut tally, &mut bfd_count),
            want,
            "{frame:02x?}"
        );
    }
    check_batch(&tally, &before, &counters(&lab));
    let d = counters(&lab)["lb_dropped_truncated"]
        - before.get("lb_dropped_truncated").copied().unwrap_or(0);
    assert_eq!(d, 3);
}
