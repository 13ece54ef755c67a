//! The XDP neighbour discovery responder run on packet fixtures with BPF_PROG_TEST_RUN
//! (as `xdp_program.rs` does for ARP): solicitations for a leased IPv6 VIP become the
//! advertisement in place, expired leases drop, RFC 4861 §7.1.1 failures are counted
//! drops, everything else passes. Needs root (CAP_BPF).
//!
//! Frames enter on the loopback device of the test's network namespace, ifindex 1.
//! Checksums of the fixtures and of the expected answers come from `pnet_packet`, not
//! from the program.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;

use pnet_packet::icmpv6::{self, Icmpv6Packet};
use vipd::io::bpf::{LoadedXdp, monotonic_now_ns};
use vipd_common::LEASE_FOREVER;

mod common;
use common::{LOOPBACK, XDP_DROP, XDP_PASS, XDP_TX, load, run};

const VIP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
const OWNER_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x02, 0x07];
const CLIENT_MAC: [u8; 6] = [0x02, 0xc1, 0x1e, 0x47, 0x00, 0x0a];
const CLIENT_IP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

const ETH_HLEN: usize = 14;
const IP_HLEN: usize = 40;
const ICMP: usize = ETH_HLEN + IP_HLEN;

/// ff02::1:ffXX:XXXX for `target` (RFC 4291 §2.7.1).
fn solicited_node(target: Ipv6Addr) -> Ipv6Addr {
    let t = target.octets();
    let mut a = [0u8; 16];
    a[..2].copy_from_slice(&[0xff, 0x02]);
    a[11] = 1;
    a[12] = 0xff;
    a[13..].copy_from_slice(&t[13..]);
    Ipv6Addr::from(a)
}

/// The ICMPv6 checksum of `message` between `src` and `dst`.
fn checksum(src: Ipv6Addr, dst: Ipv6Addr, message: &[u8]) -> u16 {
    let packet = Icmpv6Packet::new(message).expect("an ICMPv6 message");
    icmpv6::checksum(&packet, &src, &dst)
}

/// Ethernet + IPv6 + `icmp` (checksum filled in unless `keep_checksum`).
fn frame(
    eth_dst: [u8; 6],
    eth_src: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    mut icmp: Vec<u8>,
) -> Vec<u8> {
    let sum = checksum(src, dst, &icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut f = Vec::with_capacity(ICMP + icmp.len());
    f.extend_from_slice(&eth_dst);
    f.extend_from_slice(&eth_src);
    f.extend_from_slice(&0x86ddu16.to_be_bytes());
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    f.extend_from_slice(&[58, hop_limit]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&icmp);
    f
}

/// A neighbour solicitation (RFC 4861 §4.3) for `target` with `options` appended.
fn solicitation(target: Ipv6Addr, options: &[u8]) -> Vec<u8> {
    let mut m = vec![135, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&target.octets());
    m.extend_from_slice(options);
    m
}

/// A source link-layer address option (RFC 4861 §4.6.1).
fn source_link_addr(mac: [u8; 6]) -> Vec<u8> {
    let mut o = vec![1, 1];
    o.extend_from_slice(&mac);
    o
}

/// The client's address resolution for `target`: to the solicited-node group, with its
/// link-layer address.
fn ns_from_client(target: Ipv6Addr) -> Vec<u8> {
    let group = solicited_node(target);
    let mut mac = [0x33, 0x33, 0xff, 0, 0, 0];
    mac[3..].copy_from_slice(&group.octets()[13..]);
    frame(
        mac,
        CLIENT_MAC,
        CLIENT_IP,
        group,
        255,
        solicitation(target, &source_link_addr(CLIENT_MAC)),
    )
}

/// A duplicate address detection probe for `target` (unspecified source, no options).
fn dad_probe(target: Ipv6Addr) -> Vec<u8> {
    frame(
        [0x33, 0x33, 0xff, 0, 1, 0],
        CLIENT_MAC,
        Ipv6Addr::UNSPECIFIED,
        solicited_node(target),
        255,
        solicitation(target, &[]),
    )
}

/// The advertisement the program must send: from the VIP and the owner, flags as given,
/// with the target link-layer address option.
fn expected_na(eth_dst: [u8; 6], dst: Ipv6Addr, flags: u8) -> Vec<u8> {
    let mut m = vec![136, 0, 0, 0, flags, 0, 0, 0];
    m.extend_from_slice(&VIP.octets());
    m.extend_from_slice(&[2, 1]);
    m.extend_from_slice(&OWNER_MAC);
    frame(eth_dst, OWNER_MAC, VIP, dst, 255, m)
}

fn leased() -> LoadedXdp {
    let mut xdp = load();
    xdp.set_vip_lease(LOOPBACK, VIP, OWNER_MAC, LEASE_FOREVER)
        .expect("lease");
    xdp
}

/// RFC 4861 §7.2.4: a solicitation from a unicast source is answered to that source
/// with Solicited set; RFC 9568 §6.4.2/§8.2: Router set; Override set (a takeover must
/// replace the cached MAC).
#[test]
fn solicitation_for_leased_vip_becomes_the_advertisement_in_place() {
    let mut xdp = leased();
    let (action, out, moved) = run(&mut xdp, &ns_from_client(VIP));
    assert_eq!(action, XDP_TX);
    assert_eq!(out, expected_na(CLIENT_MAC, CLIENT_IP, 0xe0), "NA bytes");
    assert_eq!(
        checksum(VIP, CLIENT_IP, &out[ICMP..]),
        u16::from_be_bytes([out[ICMP + 2], out[ICMP + 3]]),
        "the NA's checksum verifies"
    );
    assert_eq!(moved, BTreeMap::from([("ndp_replies", 1), ("packets", 1)]));
}

/// RFC 4861 §7.2.4: a probe from the unspecified address is answered to all-nodes with
/// Solicited clear; the frame grows by the link-layer option the probe did not have.
#[test]
fn duplicate_address_probe_is_answered_to_all_nodes() {
    let mut xdp = leased();
    let probe = dad_probe(VIP);
    let (action, out, moved) = run(&mut xdp, &probe);
    assert_eq!(action, XDP_TX);
    assert_eq!(out.len(), probe.len() + 8);
    assert_eq!(out, expected_na([0x33, 0x33, 0, 0, 0, 1], ALL_NODES, 0xa0));
    assert_eq!(moved, BTreeMap::from([("ndp_replies", 1), ("packets", 1)]));
}

/// A unicast solicitation without options (RFC 4861 §7.2.2 allows it) and one with a
/// trailing nonce (RFC 7527): either way the answer is the same 86-byte advertisement.
#[test]
fn solicitations_of_other_lengths_get_the_same_answer() {
    let mut xdp = leased();
    let bare = frame(
        OWNER_MAC,
        CLIENT_MAC,
        CLIENT_IP,
        VIP,
        255,
        solicitation(VIP, &[]),
    );
    let mut options = source_link_addr(CLIENT_MAC);
    options.extend_from_slice(&[14, 1, 1, 2, 3, 4, 5, 6]);
    let with_nonce = frame(
        OWNER_MAC,
        CLIENT_MAC,
        CLIENT_IP,
        VIP,
        255,
        solicitation(VIP, &options),
    );
    for ns in [bare, with_nonce] {
        let (action, out, _) = run(&mut xdp, &ns);
        assert_eq!(action, XDP_TX);
        assert_eq!(out, expected_na(CLIENT_MAC, CLIENT_IP, 0xe0));
    }
}

#[test]
fn expired_lease_drops_the_solicitation_so_the_kernel_cannot_answer() {
    let mut xdp = load();
    let a_second_ago = monotonic_now_ns().saturating_sub(1_000_000_000);
    xdp.set_vip_lease(LOOPBACK, VIP, OWNER_MAC, a_second_ago)
        .expect("lease");
    let ns = ns_from_client(VIP);
    let (action, out, moved) = run(&mut xdp, &ns);
    assert_eq!(action, XDP_DROP);
    assert_eq!(out, ns, "a dropped frame is not rewritten");
    assert_eq!(
        moved,
        BTreeMap::from([("ndp_dropped_expired", 1), ("packets", 1)])
    );
}

#[test]
fn clocked_lease_answers_while_live_and_drops_once_voided() {
    let mut xdp = load();
    xdp.set_vip_clocked(LOOPBACK, VIP, OWNER_MAC, 3)
        .expect("lease");
    xdp.set_lease_clock(3, monotonic_now_ns() + 60_000_000_000)
        .expect("clock");
    assert_eq!(run(&mut xdp, &ns_from_client(VIP)).0, XDP_TX);
    xdp.set_lease_clock(3, 0).expect("clock");
    assert_eq!(run(&mut xdp, &ns_from_client(VIP)).0, XDP_DROP);
}

#[test]
fn unmanaged_target_and_removed_vip_pass_untouched() {
    let mut xdp = leased();
    let other = ns_from_client(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x99));
    let (action, out, moved) = run(&mut xdp, &other);
    assert_eq!(action, XDP_PASS);
    assert_eq!(out, other);
    assert_eq!(moved, BTreeMap::from([("ndp_passed", 1), ("packets", 1)]));
    assert!(
        xdp.vip_lease(LOOPBACK, VIP).expect("read").is_some(),
        "the lease is readable back"
    );
    xdp.remove_vip(LOOPBACK, VIP).expect("remove");
    xdp.remove_vip(LOOPBACK, VIP)
        .expect("removing twice is fine");
    assert_eq!(run(&mut xdp, &ns_from_client(VIP)).0, XDP_PASS);
}

/// Another router's advertisement for the VIP (a takeover) must reach the kernel.
#[test]
fn advertisement_for_the_vip_passes() {
    let mut xdp = leased();
    let mut m = vec![136, 0, 0, 0, 0xa0, 0, 0, 0];
    m.extend_from_slice(&VIP.octets());
    m.extend_from_slice(&[2, 1]);
    m.extend_from_slice(&CLIENT_MAC);
    let na = frame(
        [0x33, 0x33, 0, 0, 0, 1],
        CLIENT_MAC,
        CLIENT_IP,
        ALL_NODES,
        255,
        m,
    );
    let (action, out, moved) = run(&mut xdp, &na);
    assert_eq!(action, XDP_PASS);
    assert_eq!(out, na);
    assert_eq!(moved, BTreeMap::from([("packets", 1)]));
}

/// Each RFC 4861 §7.1.1 check, failed once: dropped (the kernel would discard it too,
/// and passing it would let an expired VIP's kernel answer) and counted.
#[test]
fn invalid_solicitations_are_counted_drops() {
    let mut xdp = leased();
    let good = ns_from_client(VIP);
    let mut hop_limit = good.clone();
    hop_limit[ETH_HLEN + 7] = 254;
    let mut bad_checksum = good.clone();
    bad_checksum[ICMP + 2] ^= 0xff;
    let code = {
        let mut m = solicitation(VIP, &source_link_addr(CLIENT_MAC));
        m[1] = 1;
        frame(OWNER_MAC, CLIENT_MAC, CLIENT_IP, VIP, 255, m)
    };
    let zero_length_option = frame(
        OWNER_MAC,
        CLIENT_MAC,
        CLIENT_IP,
        VIP,
        255,
        solicitation(VIP, &[1, 0, 0, 0, 0, 0, 0, 0]),
    );
    let option_past_the_end = frame(
        OWNER_MAC,
        CLIENT_MAC,
        CLIENT_IP,
        VIP,
        255,
        solicitation(VIP, &[1, 2, 0, 0, 0, 0, 0, 0]),
    );
    let dad_with_source_link_addr = frame(
        [0x33, 0x33, 0xff, 0, 1, 0],
        CLIENT_MAC,
        Ipv6Addr::UNSPECIFIED,
        solicited_node(VIP),
        255,
        solicitation(VIP, &source_link_addr(CLIENT_MAC)),
    );
    let dad_not_to_solicited_node = frame(
        OWNER_MAC,
        CLIENT_MAC,
        Ipv6Addr::UNSPECIFIED,
        VIP,
        255,
        solicitation(VIP, &[]),
    );
    let mut truncated = good.clone();
    truncated.truncate(good.len() - 4);
    for (what, ns) in [
        ("hop limit 254", hop_limit),
        ("bad checksum", bad_checksum),
        ("code 1", code),
        ("zero-length option", zero_length_option),
        ("option past the end", option_past_the_end),
        (
            "DAD with a source link-layer option",
            dad_with_source_link_addr,
        ),
        (
            "DAD not to the solicited-node group",
            dad_not_to_solicited_node,
        ),
        ("IPv6 length past the frame", truncated),
    ] {
        let (action, out, moved) = run(&mut xdp, &ns);
        assert_eq!(action, XDP_DROP, "{what}");
        assert_eq!(out, ns, "{what}: not rewritten");
        assert_eq!(
            moved,
            BTreeMap::from([("ndp_dropped_malformed", 1), ("packets", 1)]),
            "{what}"
        );
    }
}
