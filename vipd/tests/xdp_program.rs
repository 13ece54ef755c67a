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

mod common;
use common::{LOOPBACK, XDP_DROP, XDP_PASS, XDP_TX, delta, load, run};

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const OWNER_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x01, 0x07];
const CLIENT_MAC: [u8; 6] = [0x02, 0xc1, 0x1e, 0x47, 0x00, 0x0a];
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const BROADCAST: [u8; 6] = [0xff; 6];

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

// ---------------------------------------------------------------------------------------
// VRRP advert fast path.
//
// Fixtures are built here byte by byte (Ethernet, IPv4/IPv6, VRRP with an independent
// checksum implementation), so a bug in the program's checksum cannot hide behind the
// same bug in a shared encoder.
// ---------------------------------------------------------------------------------------

mod advert {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    pub const MASTER_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    pub const OTHER_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
    pub const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
    pub const VIP_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
    pub const MASTER_V6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
    pub const GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
    pub const VIP_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);

    /// One's-complement sum of 16-bit big-endian words (odd byte padded), folded.
    pub fn ones_complement_sum(chunks: &[&[u8]]) -> u16 {
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

    /// Fields of one VRRP message, before encoding.
    #[derive(Clone, Debug)]
    pub struct Vrrp {
        pub version: u8,
        pub kind: u8,
        pub vrid: u8,
        pub priority: u8,
        /// Overrides the Count field (default: the number of addresses).
        pub count: Option<u8>,
        /// v3: centiseconds; v2: seconds.
        pub interval: u16,
        pub addresses: Vec<IpAddr>,
        /// v2 only: (auth type, data).
        pub auth: (u8, [u8; 8]),
    }

    impl Vrrp {
        pub fn v3(vrid: u8, priority: u8, interval_cs: u16, addresses: Vec<IpAddr>) -> Self {
            Vrrp {
                version: 3,
                kind: 1,
                vrid,
                priority,
                count: None,
                interval: interval_cs,
                addresses,
                auth: (0, [0; 8]),
            }
        }

        pub fn v2(vrid: u8, priority: u8, interval_s: u8, password: &[u8]) -> Self {
            let mut data = [0u8; 8];
            data[..password.len()].copy_from_slice(password);
            Vrrp {
                version: 2,
                kind: 1,
                vrid,
                priority,
                count: None,
                interval: u16::from(interval_s),
                addresses: vec![IpAddr::V4(VIP_V4)],
                auth: (1, data),
            }
        }

        /// The message with its checksum field zero.
        fn encode_unchecked(&self) -> Vec<u8> {
            let count = self.count.unwrap_or(self.addresses.len() as u8);
            let mut m = vec![
                (self.version << 4) | self.kind,
                self.vrid,
                self.priority,
                count,
            ];
            if self.version == 2 {
                m.extend_from_slice(&[self.auth.0, self.interval as u8]);
            } else {
                m.extend_from_slice(&(self.interval & 0x0fff).to_be_bytes());
            }
            m.extend_from_slice(&[0, 0]);
            for address in &self.addresses {
                match address {
                    IpAddr::V4(a) => m.extend_from_slice(&a.octets()),
                    IpAddr::V6(a) => m.extend_from_slice(&a.octets()),
                }
            }
            if self.version == 2 {
                m.extend_from_slice(&self.auth.1);
            }
            m
        }

        /// The message with a correct checksum for a packet from `src` to `dst`
        /// (RFC 5798 §5.2.8 pseudo-header for v3, the message only for v2).
        pub fn encode(&self, src: IpAddr, dst: IpAddr) -> Vec<u8> {
            let mut m = self.encode_unchecked();
            let len = m.len();
            let checksum = !match (self.version, src, dst) {
                (2, _, _) => ones_complement_sum(&[&m]),
                (_, IpAddr::V4(s), IpAddr::V4(d)) => ones_complement_sum(&[
                    &s.octets(),
                    &d.octets(),
                    &[0, 112],
                    &(len as u16).to_be_bytes(),
                    &m,
                ]),
                (_, IpAddr::V6(s), IpAddr::V6(d)) => ones_complement_sum(&[
                    &s.octets(),
                    &d.octets(),
                    &(len as u32).to_be_bytes(),
                    &[0, 0, 0, 112],
                    &m,
                ]),
                _ => panic!("mixed address families"),
            };
            m[6..8].copy_from_slice(&checksum.to_be_bytes());
            m
        }

        /// The message with the checksum over the message alone: v2, or a v3 IPv4
        /// advert in the RFC 9568 §5.2.8 form (Cisco, Juniper, keepalived
        /// `v3_checksum_as_v2`).
        pub fn encode_message_only(&self) -> Vec<u8> {
            let mut m = self.encode_unchecked();
            let checksum = !ones_complement_sum(&[&m]);
            m[6..8].copy_from_slice(&checksum.to_be_bytes());
            m
        }
    }

    fn ethernet(dst: [u8; 6], ethertype: u16) -> Vec<u8> {
        let mut f = dst.to_vec();
        f.extend_from_slice(&[0x00, 0x00, 0x5e, 0x00, 0x01, 0x07]);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f
    }

    /// Ethernet + IPv4 (no options, header checksum filled) + `payload`, protocol 112.
    pub fn ipv4_frame(src: Ipv4Addr, ttl: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = ethernet([0x01, 0x00, 0x5e, 0x00, 0x00, 0x12], 0x0800);
        let total = (20 + payload.len()) as u16;
        let mut ip = vec![0x45, 0xc0];
        ip.extend_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&[0, 0, 0, 0, ttl, 112, 0, 0]);
        ip.extend_from_slice(&src.octets());
        ip.extend_from_slice(&GROUP_V4.octets());
        let checksum = !ones_complement_sum(&[&ip]);
        ip[10..12].copy_from_slice(&checksum.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(payload);
        f
    }

    /// Ethernet + IPv6 (next header 112, no extension headers) + `payload`.
    pub fn ipv6_frame(src: Ipv6Addr, hop_limit: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = ethernet([0x33, 0x33, 0, 0, 0, 0x12], 0x86dd);
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        f.extend_from_slice(&[112, hop_limit]);
        f.extend_from_slice(&src.octets());
        f.extend_from_slice(&GROUP_V6.octets());
        f.extend_from_slice(payload);
        f
    }

    /// A correct IPv4 frame for `vrrp` from `src`.
    pub fn v4(vrrp: &Vrrp, src: Ipv4Addr) -> Vec<u8> {
        ipv4_frame(src, 255, &vrrp.encode(src.into(), GROUP_V4.into()))
    }

    /// A correct IPv6 frame for `vrrp` from `src`.
    pub fn v6(vrrp: &Vrrp, src: Ipv6Addr) -> Vec<u8> {
        ipv6_frame(src, 255, &vrrp.encode(src.into(), GROUP_V6.into()))
    }
}

use std::net::IpAddr;
use std::time::Duration;

use advert::{MASTER_V4, MASTER_V6, OTHER_V4, VIP_V4, VIP_V6, Vrrp};
use vipd::io::bpf::{AdvertEvents, BpfError, IpFamily, LoadOptions, WatchSpec};
use vipd::proto::wire::{Auth, Centiseconds, Version};
use vipd_common::AdvertEventKind;

const VRID: u8 = 7;
const ONE_SECOND_NS: u64 = 1_000_000_000;

fn v3_spec() -> WatchSpec {
    WatchSpec {
        version: Version::V3,
        auth: Auth::None,
        silence: Duration::from_secs(3),
    }
}

fn v3_advert(priority: u8) -> Vrrp {
    Vrrp::v3(VRID, priority, 100, vec![VIP_V4.into()])
}

/// Loads the program with a v3 IPv4 watch on VRID 7 and takes its event reader.
fn watched_v3_ipv4() -> (LoadedXdp, AdvertEvents) {
    let mut xdp = load();
    xdp.watch(LOOPBACK, VRID, IpFamily::Ipv4, &v3_spec())
        .unwrap();
    let events = xdp.take_events().expect("event reader");
    (xdp, events)
}

fn counters(names: &[&'static str]) -> BTreeMap<&'static str, u64> {
    names.iter().map(|name| (*name, 1)).collect()
}

/// Runs an advert that must be recorded; checks it passed untouched and what moved.
fn run_accepted(xdp: &mut LoadedXdp, frame: &[u8], event_expected: bool) {
    let (action, out, moved) = run(xdp, frame);
    assert_eq!(action, XDP_PASS, "adverts always continue to the kernel");
    assert_eq!(out, frame, "adverts are never modified");
    let mut expected = counters(&["packets", "adverts_seen", "adverts_accepted"]);
    if event_expected {
        expected.insert("advert_events_sent", 1);
    }
    assert_eq!(moved, expected);
}

#[tokio::test]
async fn v3_ipv4_advert_is_recorded_and_new_master_announced_once() {
    let (mut xdp, mut events) = watched_v3_ipv4();
    assert_eq!(xdp.observed(LOOPBACK, VRID, IpFamily::Ipv4).unwrap(), None);

    let frame = advert::v4(&v3_advert(150), MASTER_V4);
    run_accepted(&mut xdp, &frame, true);
    let now_ns = monotonic_now_ns();
    let seen = xdp
        .observed(LOOPBACK, VRID, IpFamily::Ipv4)
        .unwrap()
        .expect("recorded");
    assert_eq!(seen.priority, 150);
    assert_eq!(seen.source, IpAddr::from(MASTER_V4));
    assert_eq!(seen.interval, Centiseconds(100));
    assert_eq!(seen.version, Version::V3);
    assert_eq!(seen.address_count, 1);
    assert_eq!(seen.count, 1);
    assert!(
        seen.last_seen_ns.abs_diff(now_ns) < ONE_SECOND_NS,
        "last_seen_ns {} is not within 1 s of now {now_ns}",
        seen.last_seen_ns
    );
    assert!(seen.age(now_ns) < Duration::from_secs(1));

    let event = tokio::time::timeout(Duration::from_secs(2), events.next())
        .await
        .expect("an event within 2 s")
        .unwrap();
    assert_eq!(event.kind, AdvertEventKind::NewMaster);
    assert_eq!(
        (event.ifindex, event.vrid, event.family),
        (LOOPBACK, VRID, IpFamily::Ipv4)
    );
    assert_eq!(event.source, IpAddr::from(MASTER_V4));
    assert_eq!(event.priority, 150);
    assert_eq!(event.seen_ns, seen.last_seen_ns);
    assert_eq!(event.previous, None);

    // The same advert again: recorded, counted, but nothing for the election.
    run_accepted(&mut xdp, &frame, false);
    assert_eq!(events.try_next(), None);
    let seen = xdp
        .observed(LOOPBACK, VRID, IpFamily::Ipv4)
        .unwrap()
        .unwrap();
    assert_eq!(seen.count, 2);
}

#[tokio::test]
async fn election_relevant_changes_raise_one_event_each() {
    let (mut xdp, mut events) = watched_v3_ipv4();
    run_accepted(&mut xdp, &advert::v4(&v3_advert(150), MASTER_V4), true);
    assert_eq!(events.try_next().unwrap().kind, AdvertEventKind::NewMaster);

    run_accepted(&mut xdp, &advert::v4(&v3_advert(120), MASTER_V4), true);
    let event = events.try_next().expect("priority change event");
    assert_eq!(event.kind, AdvertEventKind::PriorityChanged);
    assert_eq!(
        (event.priority, event.previous.unwrap().priority),
        (120, 150)
    );

    run_accepted(&mut xdp, &advert::v4(&v3_advert(0), MASTER_V4), true);
    let event = events.try_next().expect("priority 0 event");
    assert_eq!(event.kind, AdvertEventKind::PriorityZero);
    assert_eq!(event.priority, 0);
    // A second priority-0 advert from the same master tells nothing new.
    run_accepted(&mut xdp, &advert::v4(&v3_advert(0), MASTER_V4), false);
    assert_eq!(events.try_next(), None);

    // Another router takes over.
    run_accepted(&mut xdp, &advert::v4(&v3_advert(100), OTHER_V4), true);
    let event = events.try_next().expect("new master event");
    assert_eq!(event.kind, AdvertEventKind::NewMaster);
    assert_eq!(event.source, IpAddr::from(OTHER_V4));
    let previous = event.previous.expect("previous master");
    assert_eq!(previous.source, IpAddr::from(MASTER_V4));
    assert_eq!(previous.priority, 0);

    // It changes its interval (a v3 Backup adopts it).
    let slower = Vrrp::v3(VRID, 100, 200, vec![VIP_V4.into()]);
    run_accepted(&mut xdp, &advert::v4(&slower, OTHER_V4), true);
    let event = events.try_next().expect("interval change event");
    assert_eq!(event.kind, AdvertEventKind::IntervalChanged);
    assert_eq!(
        (event.interval, event.previous.unwrap().interval),
        (Centiseconds(200), Centiseconds(100))
    );
    assert_eq!(events.try_next(), None);
    let seen = xdp
        .observed(LOOPBACK, VRID, IpFamily::Ipv4)
        .unwrap()
        .unwrap();
    assert_eq!(seen.count, 6);
}

#[tokio::test]
async fn master_heard_again_after_silence_is_announced() {
    let mut xdp = load();
    let spec = WatchSpec {
        silence: Duration::from_millis(20),
        ..v3_spec()
    };
    xdp.watch(LOOPBACK, VRID, IpFamily::Ipv4, &spec).unwrap();
    let mut events = xdp.take_events().unwrap();
    let frame = advert::v4(&v3_advert(150), MASTER_V4);
    run_accepted(&mut xdp, &frame, true);
    assert_eq!(events.try_next().unwrap().kind, AdvertEventKind::NewMaster);
    run_accepted(&mut xdp, &frame, false);
    std::thread::sleep(Duration::from_millis(50));
    run_accepted(&mut xdp, &frame, true);
    let event = events.try_next().expect("master back event");
    assert_eq!(event.kind, AdvertEventKind::MasterBack);
    assert!(event.previous.unwrap().gap >= Duration::from_millis(20));
}

/// Runs `frame`, which must not be recorded, and returns the counters that moved
/// besides `packets` and `adverts_seen` (which must).
fn run_rejected(xdp: &mut LoadedXdp, frame: &[u8]) -> Vec<&'static str> {
    let (action, out, mut moved) = run(xdp, frame);
    assert_eq!(action, XDP_PASS, "adverts always continue to the kernel");
    assert_eq!(out, frame, "adverts are never modified");
    assert_eq!(moved.remove("packets"), Some(1));
    assert_eq!(moved.remove("adverts_seen"), Some(1));
    moved
        .into_iter()
        .map(|(name, delta)| {
            assert_eq!(delta, 1, "{name}");
            name
        })
        .collect()
}

#[tokio::test]
async fn each_failed_check_moves_exactly_its_own_counter() {
    let (mut xdp, mut events) = watched_v3_ipv4();
    let good = v3_advert(150);
    let src = IpAddr::from(MASTER_V4);
    let dst = IpAddr::from(advert::GROUP_V4);
    let frame_of = |vrrp: &Vrrp| advert::v4(vrrp, MASTER_V4);

    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "TTL 254",
            advert::ipv4_frame(MASTER_V4, 254, &good.encode(src, dst)),
            "advert_dropped_ttl",
        ),
        (
            "version 2 on a v3 watch",
            frame_of(&Vrrp {
                version: 2,
                ..good.clone()
            }),
            "advert_dropped_version",
        ),
        (
            "type 2",
            frame_of(&Vrrp {
                kind: 2,
                ..good.clone()
            }),
            "advert_dropped_type",
        ),
        (
            "count 2 with one address",
            frame_of(&Vrrp {
                count: Some(2),
                ..good.clone()
            }),
            "advert_dropped_length",
        ),
    ];
    let mut truncated = frame_of(&good);
    truncated.truncate(truncated.len() - 2);
    cases.push(("frame cut short", truncated, "advert_dropped_truncated"));
    let mut bad_checksum = frame_of(&good);
    let last = bad_checksum.len() - 1;
    bad_checksum[last] ^= 0x01; // an address byte: only the checksum can notice
    cases.push((
        "address byte flipped",
        bad_checksum,
        "advert_dropped_checksum",
    ));
    let wrong_pseudo_header = good.encode(IpAddr::from(OTHER_V4), dst);
    cases.push((
        "checksum for another source",
        advert::ipv4_frame(MASTER_V4, 255, &wrong_pseudo_header),
        "advert_dropped_checksum",
    ));
    let mut fragment = frame_of(&good);
    fragment[14 + 6] = 0x20; // more fragments
    cases.push(("IPv4 fragment", fragment, "advert_dropped_fragment"));
    cases.push((
        "unwatched VRID",
        frame_of(&Vrrp {
            vrid: VRID + 1,
            ..good.clone()
        }),
        "adverts_unwatched",
    ));

    for (what, frame, counter) in &cases {
        assert_eq!(run_rejected(&mut xdp, frame), vec![*counter], "{what}");
    }
    assert_eq!(xdp.observed(LOOPBACK, VRID, IpFamily::Ipv4).unwrap(), None);
    assert_eq!(events.try_next(), None);
    // And the unmodified advert is still accepted.
    run_accepted(&mut xdp, &frame_of(&good), true);
}

/// A flood of adverts for a VRID nobody here runs: each CPU passes its budget
/// (`UNWATCHED_ADVERTS_PER_WINDOW` per window: other routers' VRIDs on the link still
/// reach the kernel) and drops the rest, counted; the watched VRID is not affected, and
/// a new window passes unwatched adverts again.
#[tokio::test]
async fn unwatched_adverts_beyond_the_budget_are_dropped_and_counted() {
    use vipd_common::{UNWATCHED_ADVERTS_PER_WINDOW, UNWATCHED_WINDOW_NS};
    let (mut xdp, _events) = watched_v3_ipv4();
    let foreign = advert::v4(
        &Vrrp {
            vrid: VRID + 1,
            ..v3_advert(150)
        },
        MASTER_V4,
    );
    let before = xdp.stats().expect("stats");
    let started = std::time::Instant::now();
    let (mut passed, mut dropped) = (0u64, 0u64);
    // Until the budget shows, bounded: a slow machine spreads the frames over more
    // windows (and CPUs), each with a budget of its own.
    for _ in 0..200_000 {
        let out = xdp.test_run(&foreign).expect("test run");
        assert_eq!(out.frame, foreign, "adverts are never modified");
        match out.action {
            XDP_PASS => passed += 1,
            XDP_DROP => dropped += 1,
            other => panic!("verdict {other} for an unwatched advert"),
        }
        if dropped >= 1000 {
            break;
        }
    }
    let elapsed_ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let moved = delta(&before, &xdp.stats().expect("stats"));
    assert!(
        dropped >= 1000,
        "passed {passed}, dropped {dropped}: no budget"
    );
    assert_eq!(moved.get("adverts_unwatched_dropped"), Some(&dropped));
    assert_eq!(moved.get("adverts_unwatched"), Some(&(passed + dropped)));
    // At least one window's budget, at most one per CPU and window the loop spanned.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let windows = elapsed_ns / UNWATCHED_WINDOW_NS + 2;
    assert!(passed >= UNWATCHED_ADVERTS_PER_WINDOW, "passed {passed}");
    assert!(
        passed <= UNWATCHED_ADVERTS_PER_WINDOW * cpus * windows,
        "passed {passed} in {elapsed_ns} ns on {cpus} CPUs"
    );
    // The flood costs the watched VRID nothing.
    run_accepted(&mut xdp, &advert::v4(&v3_advert(150), MASTER_V4), true);
    // A new window: unwatched adverts pass again.
    std::thread::sleep(Duration::from_nanos(UNWATCHED_WINDOW_NS) + Duration::from_millis(10));
    assert_eq!(run_rejected(&mut xdp, &foreign), vec!["adverts_unwatched"]);
}

/// RFC 9568 §5.2.8 sums a v3 IPv4 advert's checksum over the message alone; RFC 5798
/// peers (keepalived, FRR by default) add the pseudo-header. Both are recorded, as the
/// daemon's socket path accepts both; IPv6 keeps its pseudo-header.
#[tokio::test]
async fn v3_ipv4_advert_is_recorded_in_either_checksum_form() {
    let (mut xdp, _events) = watched_v3_ipv4();
    let message_only = v3_advert(150).encode_message_only();
    let src = IpAddr::from(MASTER_V4);
    let dst = IpAddr::from(advert::GROUP_V4);
    assert_ne!(message_only, v3_advert(150).encode(src, dst));
    run_accepted(
        &mut xdp,
        &advert::ipv4_frame(MASTER_V4, 255, &message_only),
        true,
    );
    // The message-only form with a byte changed verifies in neither form.
    let mut broken = message_only.clone();
    let last = broken.len() - 1;
    broken[last] ^= 0x01;
    assert_eq!(
        run_rejected(&mut xdp, &advert::ipv4_frame(MASTER_V4, 255, &broken)),
        vec!["advert_dropped_checksum"]
    );
}

#[test]
fn v3_ipv6_advert_without_its_pseudo_header_is_dropped() {
    let mut xdp = load();
    xdp.watch(LOOPBACK, VRID, IpFamily::Ipv6, &v3_spec())
        .unwrap();
    let vrrp = Vrrp::v3(VRID, 150, 100, vec![IpAddr::V6(advert::VIP_V6)]);
    let frame = advert::ipv6_frame(advert::MASTER_V6, 255, &vrrp.encode_message_only());
    assert_eq!(
        run_rejected(&mut xdp, &frame),
        vec!["advert_dropped_checksum"]
    );
}

#[test]
fn v2_advert_with_simple_text_auth_is_checked_and_recorded() {
    let mut xdp = load();
    let mut password = [0u8; 8];
    password[..6].copy_from_slice(b"secret");
    let spec = WatchSpec {
        version: Version::V2,
        auth: Auth::SimpleText(password),
        silence: Duration::from_secs(3),
    };
    xdp.watch(LOOPBACK, VRID, IpFamily::Ipv4, &spec).unwrap();

    run_accepted(
        &mut xdp,
        &advert::v4(&Vrrp::v2(VRID, 100, 1, b"secret"), MASTER_V4),
        true,
    );
    let seen = xdp
        .observed(LOOPBACK, VRID, IpFamily::Ipv4)
        .unwrap()
        .unwrap();
    assert_eq!(seen.version, Version::V2);
    assert_eq!(
        seen.interval,
        Centiseconds(100),
        "v2 seconds become centiseconds"
    );
    assert_eq!(seen.priority, 100);

    let wrong_password = advert::v4(&Vrrp::v2(VRID, 100, 1, b"secreT"), MASTER_V4);
    let no_auth = advert::v4(
        &Vrrp {
            auth: (0, [0; 8]),
            ..Vrrp::v2(VRID, 100, 1, b"")
        },
        MASTER_V4,
    );
    let v3_on_v2_watch = advert::v4(&v3_advert(100), MASTER_V4);
    let mut bad_checksum = advert::v4(&Vrrp::v2(VRID, 100, 1, b"secret"), MASTER_V4);
    bad_checksum[14 + 20 + 8] ^= 0x80; // VIP byte
    for (what, frame, counter) in [
        ("wrong password", wrong_password, "advert_dropped_auth"),
        ("auth type 0", no_auth, "advert_dropped_auth"),
        ("v3 on a v2 watch", v3_on_v2_watch, "advert_dropped_version"),
        ("bad v2 checksum", bad_checksum, "advert_dropped_checksum"),
    ] {
        assert_eq!(run_rejected(&mut xdp, &frame), vec![counter], "{what}");
    }
    assert_eq!(
        xdp.observed(LOOPBACK, VRID, IpFamily::Ipv4)
            .unwrap()
            .unwrap()
            .count,
        1
    );
}

#[tokio::test]
async fn ipv6_advert_is_recorded_separately_from_ipv4() {
    let mut xdp = load();
    xdp.watch(LOOPBACK, VRID, IpFamily::Ipv6, &v3_spec())
        .unwrap();
    let mut events = xdp.take_events().unwrap();
    let vrrp = Vrrp::v3(VRID, 200, 50, vec![VIP_V6.into(), VIP_V6.into()]);
    run_accepted(&mut xdp, &advert::v6(&vrrp, MASTER_V6), true);
    let seen = xdp
        .observed(LOOPBACK, VRID, IpFamily::Ipv6)
        .unwrap()
        .unwrap();
    assert_eq!(seen.source, IpAddr::from(MASTER_V6));
    assert_eq!(
        (seen.priority, seen.interval, seen.address_count),
        (200, Centiseconds(50), 2)
    );
    let event = events.try_next().unwrap();
    assert_eq!(
        (event.kind, event.family),
        (AdvertEventKind::NewMaster, IpFamily::Ipv6)
    );
    assert_eq!(event.source, IpAddr::from(MASTER_V6));
    assert_eq!(xdp.observed(LOOPBACK, VRID, IpFamily::Ipv4).unwrap(), None);

    // The IPv4 instance of the same VRID is a different router, not watched here.
    assert_eq!(
        run_rejected(&mut xdp, &advert::v4(&v3_advert(100), MASTER_V4)),
        vec!["adverts_unwatched"]
    );
    let src = IpAddr::from(MASTER_V6);
    let dst = IpAddr::from(advert::GROUP_V6);
    let hop_limit_64 = advert::ipv6_frame(MASTER_V6, 64, &vrrp.encode(src, dst));
    let too_long = advert::v6(&Vrrp::v3(VRID, 200, 50, vec![VIP_V6.into(); 65]), MASTER_V6);
    let mut bad_checksum = advert::v6(&vrrp, MASTER_V6);
    bad_checksum[14 + 40 + 8] ^= 1;
    for (what, frame, counter) in [
        ("hop limit 64", hop_limit_64, "advert_dropped_ttl"),
        ("65 addresses", too_long, "advert_dropped_too_long"),
        ("bad checksum", bad_checksum, "advert_dropped_checksum"),
    ] {
        assert_eq!(run_rejected(&mut xdp, &frame), vec![counter], "{what}");
    }
}

#[test]
fn unwatch_forgets_the_record_and_stops_recording() {
    let mut xdp = load();
    xdp.watch(LOOPBACK, VRID, IpFamily::Ipv4, &v3_spec())
        .unwrap();
    let frame = advert::v4(&v3_advert(150), MASTER_V4);
    run_accepted(&mut xdp, &frame, true);
    xdp.unwatch(LOOPBACK, VRID, IpFamily::Ipv4).unwrap();
    xdp.unwatch(LOOPBACK, VRID, IpFamily::Ipv4)
        .expect("unwatching twice is fine");
    assert_eq!(xdp.observed(LOOPBACK, VRID, IpFamily::Ipv4).unwrap(), None);
    assert_eq!(run_rejected(&mut xdp, &frame), vec!["adverts_unwatched"]);
}

#[test]
fn watches_the_program_cannot_check_are_refused() {
    let mut xdp = load();
    let v2_over_ipv6 = WatchSpec {
        version: Version::V2,
        ..v3_spec()
    };
    let v3_with_password = WatchSpec {
        auth: Auth::SimpleText(*b"secret\0\0"),
        ..v3_spec()
    };
    for (spec, family) in [
        (v2_over_ipv6, IpFamily::Ipv6),
        (v3_with_password, IpFamily::Ipv4),
    ] {
        let err = xdp.watch(LOOPBACK, VRID, family, &spec).unwrap_err();
        assert!(matches!(err, BpfError::InvalidWatch { .. }), "{err}");
    }
}

#[tokio::test]
async fn program_logs_only_when_switched_on_at_load() {
    let frames = [
        advert::v4(&v3_advert(150), MASTER_V4),
        advert::ipv4_frame(
            MASTER_V4,
            1,
            &v3_advert(150).encode(IpAddr::from(MASTER_V4), IpAddr::from(advert::GROUP_V4)),
        ),
    ];
    for log in [false, true] {
        let mut xdp = LoadedXdp::load_with(&LoadOptions {
            log,
            ..LoadOptions::default()
        })
        .expect("load (the verifier must accept the logging branches too)");
        xdp.watch(LOOPBACK, VRID, IpFamily::Ipv4, &v3_spec())
            .unwrap();
        let mut logger = xdp.take_logger().expect("log reader");
        for frame in &frames {
            xdp.test_run(frame).unwrap();
        }
        let records = logger.flush();
        if log {
            assert_eq!(records, 2, "one event record and one rejection record");
        } else {
            assert_eq!(records, 0, "logging is off by default");
        }
    }
}

#[test]
fn clocked_leases_are_renewed_and_voided_by_one_write() {
    let mut xdp = load();
    let other_vip = Ipv4Addr::new(192, 0, 2, 101);
    for vip in [VIP, other_vip] {
        xdp.set_vip_clocked(LOOPBACK, vip, OWNER_MAC, 7).unwrap();
    }
    // A fresh clock slot reads 0: expired, so both VIPs are dropped, not answered.
    let (action, _, moved) = run(&mut xdp, &request_for(VIP));
    assert_eq!(action, XDP_DROP);
    assert_eq!(moved.get("arp_dropped_expired"), Some(&1));
    // One write renews both.
    xdp.set_lease_clock(7, monotonic_now_ns() + 60_000_000_000)
        .unwrap();
    for vip in [VIP, other_vip] {
        let (action, frame, _) = run(&mut xdp, &request_for(vip));
        assert_eq!(action, XDP_TX, "{vip}");
        assert_eq!(&frame[28..32], &vip.octets(), "the reply claims {vip}");
    }
    // Another instance's clock does not affect them.
    xdp.set_lease_clock(8, 0).unwrap();
    assert_eq!(run(&mut xdp, &request_for(VIP)).0, XDP_TX);
    // One write voids both.
    xdp.set_lease_clock(7, 0).unwrap();
    for vip in [VIP, other_vip] {
        assert_eq!(run(&mut xdp, &request_for(vip)).0, XDP_DROP, "{vip}");
    }
    // Out-of-range slots are refused before they reach the kernel.
    assert!(
        xdp.set_lease_clock(vipd_common::MAX_LEASE_CLOCKS, 1)
            .is_err()
    );
    assert!(
        xdp.set_vip_clocked(LOOPBACK, VIP, OWNER_MAC, vipd_common::MAX_LEASE_CLOCKS)
            .is_err()
    );
}
