//! The XDP program's BFD record (`vipd-ebpf/src/bfd.rs`) on packet fixtures with
//! BPF_PROG_TEST_RUN: a control packet for a registered session from its neighbour with
//! TTL 255 is recorded (bytes and time) and passed on; every other packet is passed on
//! without touching the record. Needs root (CAP_BPF).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use vipd::io::bpf::monotonic_now_ns;
use vipd::proto::bfd::wire::ControlRepr;

mod common;
use common::{XDP_PASS, bfd_control, load};

const OURS: u32 = 0x1234_5678;
const NEIGHBOR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const NEIGHBOR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

/// Ethernet + IPv4 (no options) + UDP to `dst_port` with `payload`.
fn udp4(src: Ipv4Addr, ttl: u8, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
    let total = 20 + 8 + payload.len();
    f.extend_from_slice(&[0x45, 0xc0]);
    f.extend_from_slice(&(total as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x40, 0, ttl, 17, 0, 0]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&[192, 0, 2, 1]);
    f.extend_from_slice(&49152u16.to_be_bytes());
    f.extend_from_slice(&dst_port.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

/// Ethernet + IPv6 + UDP to port 3784 with `payload`.
fn udp6(src: Ipv6Addr, hop_limit: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x33, 0x33, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x86, 0xdd];
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[17, hop_limit]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets());
    f.extend_from_slice(&49152u16.to_be_bytes());
    f.extend_from_slice(&3784u16.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

#[test]
fn packet_for_a_registered_session_is_recorded_and_passed() {
    let mut xdp = load();
    xdp.watch_bfd(OURS, IpAddr::V4(NEIGHBOR), 255)
        .expect("watch");
    assert_eq!(xdp.bfd_record(OURS).expect("read"), None, "nothing yet");
    let before = monotonic_now_ns();
    let packet = bfd_control(OURS);
    let outcome = xdp
        .test_run(&udp4(NEIGHBOR, 255, 3784, &packet))
        .expect("run");
    assert_eq!(outcome.action, XDP_PASS);
    let record = xdp.bfd_record(OURS).expect("read").expect("recorded");
    assert_eq!(record.packet, packet);
    assert_eq!(record.count, 1);
    assert!(record.last_seen_ns >= before && record.last_seen_ns <= monotonic_now_ns());
    // The daemon's parser reads the recorded bytes back as the packet.
    let repr = ControlRepr::parse_bytes(&record.packet).expect("parses");
    assert_eq!(repr.your_discriminator, OURS);
}

#[test]
fn ipv6_packet_is_recorded() {
    let mut xdp = load();
    xdp.watch_bfd(OURS, IpAddr::V6(NEIGHBOR6), 255)
        .expect("watch");
    let packet = bfd_control(OURS);
    let outcome = xdp.test_run(&udp6(NEIGHBOR6, 255, &packet)).expect("run");
    assert_eq!(outcome.action, XDP_PASS);
    assert_eq!(
        xdp.bfd_record(OURS).expect("read").map(|r| r.packet),
        Some(packet)
    );
    // Hop limit 254: from beyond the link (RFC 5881 §5), not recorded.
    let mut xdp = load();
    xdp.watch_bfd(OURS, IpAddr::V6(NEIGHBOR6), 255)
        .expect("watch");
    xdp.test_run(&udp6(NEIGHBOR6, 254, &packet)).expect("run");
    assert_eq!(xdp.bfd_record(OURS).expect("read"), None);
}

/// Each check keeps a packet out of the record, and the packet still passes.
#[test]
fn packets_failing_a_check_are_passed_and_not_recorded() {
    let mut xdp = load();
    xdp.watch_bfd(OURS, IpAddr::V4(NEIGHBOR), 255)
        .expect("watch");
    let good = bfd_control(OURS);
    let mut bad_version = good;
    bad_version[0] = 0x40;
    let mut short_length = good;
    short_length[3] = 20;
    let stranger = Ipv4Addr::new(192, 0, 2, 66);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("TTL 254", udp4(NEIGHBOR, 254, 3784, &good)),
        ("other neighbour", udp4(stranger, 255, 3784, &good)),
        ("other port", udp4(NEIGHBOR, 255, 4784, &good)),
        (
            "unknown discriminator",
            udp4(NEIGHBOR, 255, 3784, &bfd_control(7)),
        ),
        (
            "discriminator 0",
            udp4(NEIGHBOR, 255, 3784, &bfd_control(0)),
        ),
        ("version 2", udp4(NEIGHBOR, 255, 3784, &bad_version)),
        ("length 20", udp4(NEIGHBOR, 255, 3784, &short_length)),
        ("truncated", udp4(NEIGHBOR, 255, 3784, &good[..20])),
    ];
    for (what, frame) in cases {
        let outcome = xdp.test_run(&frame).expect("run");
        assert_eq!(outcome.action, XDP_PASS, "{what}");
        assert_eq!(
            xdp.bfd_record(OURS).expect("read"),
            None,
            "{what} was recorded"
        );
    }
    // A session registered with max_hops 1 takes TTL 254.
    xdp.watch_bfd(OURS, IpAddr::V4(NEIGHBOR), 254)
        .expect("watch");
    xdp.test_run(&udp4(NEIGHBOR, 254, 3784, &good))
        .expect("run");
    assert!(xdp.bfd_record(OURS).expect("read").is_some());
    xdp.unwatch_all_bfd().expect("unwatch");
    assert_eq!(xdp.bfd_record(OURS).expect("read"), None);
}
