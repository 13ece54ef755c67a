//! vipd's XDP program run on packet fixtures with BPF_PROG_TEST_RUN, on the real kernel
//! verifier and JIT, without attaching it anywhere. Needs root (CAP_BPF); run through
//! `cargo xtask test`.
//!
//! Frames enter on the loopback device of the test's network namespace, ifindex 1, so
//! VIP leases in these tests are keyed on ifindex 1.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use vipd::io::bpf::{LoadedXdp, monotonic_now_ns};
use vipd_common::LEASE_FOREVER;

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;
const LOOPBACK: u32 = 1;

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const OWNER_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x01, 0x07];
const CLIENT_MAC: [u8; 6] = [0x02, 0xc1, 0x1e, 0x47, 0x00, 0x0a];
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const BROADCAST: [u8; 6] = [0xff; 6];

fn load() -> LoadedXdp {
    assert!(
        unsafe { libc::geteuid() } == 0,
        "XDP program tests need root (CAP_BPF): run `cargo xtask test`"
    );
    LoadedXdp::load().expect("load vipd's XDP program")
}

/// An Ethernet + ARP frame (RFC 826) with the given fields.
fn arp_frame(oper: u16, sha: [u8; 6], spa: Ipv4Addr, tha: [u8; 6], tpa: Ipv4Addr) -> Vec<u8> {
    let eth_dst = if oper == 1 { BROADCAST } else { tha };
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&eth_dst);
    f.extend_from_slice(&sha);
    f.extend_from_slice(&0x0806u16.to_be_bytes());
    f.extend_from_slice(&1u16.to_be_bytes()); // htype Ethernet
    f.extend_from_slice(&0x0800u16.to_be_bytes()); // ptype IPv4
    f.extend_from_slice(&[6, 4]);
    f.extend_from_slice(&oper.to_be_bytes());
    f.extend_from_slice(&sha);
    f.extend_from_slice(&spa.octets());
    f.extend_from_slice(&tha);
    f.extend_from_slice(&tpa.octets());
    f
}

fn request_for(target: Ipv4Addr) -> Vec<u8> {
    arp_frame(1, CLIENT_MAC, CLIENT_IP, [0; 6], target)
}

/// Counter changes between two snapshots, only the ones that moved.
fn delta(
    before: &BTreeMap<&'static str, u64>,
    after: &BTreeMap<&'static str, u64>,
) -> BTreeMap<&'static str, u64> {
    after
        .iter()
        .map(|(name, value)| (*name, value - before.get(name).copied().unwrap_or(0)))
        .filter(|(_, d)| *d > 0)
        .collect()
}

fn run(xdp: &mut LoadedXdp, frame: &[u8]) -> (u32, Vec<u8>, BTreeMap<&'static str, u64>) {
    let before = xdp.stats().expect("stats");
    let outcome = xdp.test_run(frame).expect("test run");
    let after = xdp.stats().expect("stats");
    (outcome.action, outcome.frame, delta(&before, &after))
}

#[test]
fn request_for_leased_vip_becomes_the_reply_in_place() {
    let mut xdp = load();
    xdp.set_vip_lease(LOOPBACK, VIP, OWNER_MAC, LEASE_FOREVER)
        .unwrap();
    let (action, frame, moved) = run(&mut xdp, &request_for(VIP));
    assert_eq!(action, XDP_TX);
    let expected = {
        let mut f = arp_frame(2, OWNER_MAC, VIP, CLIENT_MAC, CLIENT_IP);
        // Ethernet: to the requester, from the owner.
        f[..6].copy_from_slice(&CLIENT_MAC);
        f[6..12].copy_from_slice(&OWNER_MAC);
        f
    };
    assert_eq!(frame, expected, "reply bytes");
    assert_eq!(moved, BTreeMap::from([("arp_replies", 1), ("packets", 1)]));
}

#[test]
fn live_lease_in_the_future_is_answered() {
    let mut xdp = load();
    let in_one_minute = monotonic_now_ns() + 60_000_000_000;
    xdp.set_vip_lease(LOOPBACK, VIP, OWNER_MAC, in_one_minute)
        .unwrap();
    let (action, _, moved) = run(&mut xdp, &request_for(VIP));
    assert_eq!(action, XDP_TX);
    assert_eq!(moved.get("arp_replies"), Some(&1));
}

#[test]
fn expired_lease_drops_the_request_so_the_kernel_cannot_answer() {
    let mut xdp = load();
    let a_second_ago = monotonic_now_ns().saturating_sub(1_000_000_000);
    xdp.set_vip_lease(LOOPBACK, VIP, OWNER_MAC, a_second_ago)
        .unwrap();
    let request = request_for(VIP);
    let (action, frame, moved) = run(&mut xdp, &request);
    assert_eq!(action, XDP_DROP);
    assert_eq!(frame, request, "a dropped frame is not rewritten");
    assert_eq!(
        moved,
        BTreeMap::from([("arp_dropped_expired", 1), ("packets", 1)])
    );
}

#[test]
fn unmanaged_address_passes_to_the_kernel_untouched() {
    let mut xdp = load();
    xdp.set_vip_lease(LOOPBACK, VIP, OWNER_MAC, LEASE_FOREVER)
        .unwrap();
    let request = request_for(Ipv4Addr::new(192, 0, 2, 99));
    let (action, frame, moved) = run(&mut xdp, &request);
    assert_eq!(action, XDP_PASS);
    assert_eq!(frame, request);
    assert_eq!(moved, BTreeMap::from([("arp_passed", 1), ("packets", 1)]));
}

#[test]
fn lease_on_another_interface_does_not_answer_here() {
    let mut xdp = load();
    xdp.set_vip_lease(LOOPBACK + 1000, VIP, OWNER_MAC, LEASE_FOREVER)
        .unwrap();
    let (action, _, moved) = run(&mut xdp, &request_for(VIP));
    assert_eq!(action, XDP_PASS);
    assert_eq!(moved.get("arp_passed"), Some(&1));
}

#[test]
fn removed_vip_is_no_longer_answered() {
    let mut xdp = load();
    xdp.set_vip_lease(LOOPBACK, VIP, OWNER_MAC, LEASE_FOREVER)
        .unwrap();
    xdp.remove_vip(LOOPBACK, VIP).unwrap();
    xdp.remove_vip(LOOPBACK, VIP)
        .expect("removing twice is fine");
    let (action, _, _) = run(&mut xdp, &request_for(VIP));
    assert_eq!(action, XDP_PASS);
}

#[test]
fn gratuitous_arp_for_the_vip_passes_so_the_kernel_learns_the_new_owner() {
    let mut xdp = load();
    xdp.set_vip_lease(LOOPBACK, VIP, OWNER_MAC, LEASE_FOREVER)
        .unwrap();
    let garp = arp_frame(1, CLIENT_MAC, VIP, [0; 6], VIP);
    let (action, frame, moved) = run(&mut xdp, &garp);
    assert_eq!(action, XDP_PASS);
    assert_eq!(frame, garp);
    assert_eq!(
        moved,
        BTreeMap::from([("arp_gratuitous_passed", 1), ("packets", 1)])
    );
}

#[test]
fn arp_reply_for_the_vip_passes() {
    let mut xdp = load();
    xdp.set_vip_lease(LOOPBACK, VIP, OWNER_MAC, LEASE_FOREVER)
        .unwrap();
    let reply = arp_frame(2, CLIENT_MAC, CLIENT_IP, OWNER_MAC, VIP);
    let (action, _, moved) = run(&mut xdp, &reply);
    assert_eq!(action, XDP_PASS);
    assert_eq!(moved.get("arp_passed"), Some(&1));
}

#[test]
fn malformed_arp_is_counted_and_passed() {
    let mut xdp = load();
    xdp.set_vip_lease(LOOPBACK, VIP, OWNER_MAC, LEASE_FOREVER)
        .unwrap();
    let request = request_for(VIP);
    let truncated = &request[..request.len() - 1];
    let mut bad_hlen = request.clone();
    bad_hlen[14 + 4] = 8;
    let mut not_ipv4 = request.clone();
    not_ipv4[14 + 2..14 + 4].copy_from_slice(&0x86ddu16.to_be_bytes());
    let mut not_ethernet = request.clone();
    not_ethernet[14..16].copy_from_slice(&6u16.to_be_bytes());
    let header_only = &request[..14];
    for frame in [truncated, header_only, &bad_hlen, &not_ipv4, &not_ethernet] {
        let (action, out, moved) = run(&mut xdp, frame);
        assert_eq!(action, XDP_PASS);
        assert_eq!(out, frame);
        assert_eq!(
            moved,
            BTreeMap::from([("arp_malformed", 1), ("packets", 1)])
        );
    }
}

#[test]
fn other_traffic_passes_untouched() {
    let mut xdp = load();
    // An IPv4 frame (ICMP echo to the VIP), and an IPv6 frame cut after its Ethernet header.
    // (BPF_PROG_TEST_RUN refuses frames shorter than an Ethernet header.)
    let mut ipv4 = Vec::new();
    ipv4.extend_from_slice(&OWNER_MAC);
    ipv4.extend_from_slice(&CLIENT_MAC);
    ipv4.extend_from_slice(&0x0800u16.to_be_bytes());
    ipv4.extend_from_slice(&[0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 1, 0, 0]);
    ipv4.extend_from_slice(&CLIENT_IP.octets());
    ipv4.extend_from_slice(&VIP.octets());
    ipv4.extend_from_slice(&[8, 0, 0, 0, 0, 0, 0, 0]);
    let mut ipv6_header_only = ipv4[..14].to_vec();
    ipv6_header_only[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    for frame in [&ipv4[..], &ipv6_header_only[..]] {
        let (action, out, moved) = run(&mut xdp, frame);
        assert_eq!(action, XDP_PASS);
        assert_eq!(out, frame);
        assert_eq!(moved, BTreeMap::from([("packets", 1)]));
    }
}
