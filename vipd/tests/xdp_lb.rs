//! The XDP load balancer run on packet fixtures with BPF_PROG_TEST_RUN, on the real
//! kernel and verifier: direct-routing rewrite, each scheduler, flow stickiness through
//! pool changes, persistence, the sorry server, and every malformed case counted and
//! never forwarded. The tables come from the daemon's own planner
//! (`vipd::lb::dataplane::plan`), so this is the path a running vipd takes.
//!
//! Needs root (or CAP_BPF + CAP_NET_ADMIN); frames arrive on loopback (ifindex 1), so a
//! backend "behind" ifindex 1 is sent with XDP_TX.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use vipd::config::lb::{LbAlgo, VirtualServer};
use vipd::io::bpf::{LbMaps, LoadOptions, LoadedXdp};
use vipd::lb::dataplane::{NextHop, backend_id, plan};
use vipd::lb::{HealthSnapshot, ServiceHealth};
use vipd::proto::lb::{PoolMember, ServicePool};

mod common;
use common::{LOOPBACK, XDP_DROP, XDP_PASS, XDP_TX};

const OUR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xaa];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xcc];
const RS: [&str; 3] = ["198.51.100.11:80", "198.51.100.12:80", "198.51.100.13:80"];
const VIP: &str = "192.0.2.100:80";

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const FIN_ACK: u8 = 0x11;

fn rs_mac(i: usize) -> [u8; 6] {
    [0x02, 0, 0, 0, 1, i as u8 + 1]
}

fn service(algo: LbAlgo, vip: &str, servers: &[&str]) -> VirtualServer {
    let servers: Vec<SocketAddr> = servers.iter().map(|a| a.parse().unwrap()).collect();
    VirtualServer::direct_routing(vip.parse().unwrap(), algo, &servers)
}

fn hops(servers: &[&str]) -> HashMap<IpAddr, NextHop> {
    servers
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let a: SocketAddr = a.parse().unwrap();
            (
                a.ip(),
                NextHop {
                    ifindex: LOOPBACK,
                    mac: rs_mac(i),
                    src_mac: OUR_MAC,
                },
            )
        })
        .collect()
}

fn pool(members: &[(bool, u32)]) -> HealthSnapshot {
    HealthSnapshot {
        services: vec![ServiceHealth {
            pool: ServicePool {
                members: members
                    .iter()
                    .map(|&(in_pool, weight)| PoolMember { in_pool, weight })
                    .collect(),
                use_sorry: false,
            },
            ..ServiceHealth::default()
        }],
    }
}

struct Lb {
    xdp: LoadedXdp,
    maps: LbMaps,
    services: Vec<VirtualServer>,
    hops: HashMap<IpAddr, NextHop>,
}

impl Lb {
    fn new(services: Vec<VirtualServer>, servers: &[&str]) -> Self {
        let mut xdp = LoadedXdp::load_with(&LoadOptions {
            lb: true,
            ..LoadOptions::default()
        })
        .expect("load vipd's XDP program with the load balancer's maps");
        let maps = xdp.take_lb_maps().expect("LB maps");
        let mut lb = Lb {
            xdp,
            maps,
            services,
            hops: hops(servers),
        };
        lb.set_health(&HealthSnapshot::default());
        lb
    }

    fn set_health(&mut self, health: &HealthSnapshot) {
        let tables = plan(&self.services, health, &self.hops);
        self.maps.apply(&tables).expect("apply tables");
    }

    /// Runs a frame; returns the verdict and, for XDP_TX, the index of the real server
    /// whose MAC it was sent to.
    fn run(&mut self, frame: &[u8]) -> (u32, Option<usize>) {
        let out = self.xdp.test_run(frame).expect("test run");
        if out.action != XDP_TX {
            assert_eq!(out.frame, frame, "a frame not sent must be left as it was");
            return (out.action, None);
        }
        assert_eq!(&out.frame[6..12], &OUR_MAC, "source MAC is ours");
        assert_eq!(
            &out.frame[12..],
            &frame[12..],
            "direct routing changes nothing beyond the Ethernet addresses"
        );
        let dst: [u8; 6] = out.frame[..6].try_into().unwrap();
        let index = (0..8).find(|&i| rs_mac(i) == dst);
        assert!(index.is_some(), "sent to an unknown MAC {dst:02x?}");
        (out.action, index)
    }

    fn counters(&self) -> BTreeMap<&'static str, u64> {
        self.maps.stats().expect("stats")
    }
}

fn ipv4_tcp(src: &str, sport: u16, dst: &str, dport: u16, flags: u8) -> Vec<u8> {
    let src: std::net::Ipv4Addr = src.parse().unwrap();
    let dst: std::net::Ipv4Addr = dst.parse().unwrap();
    let mut f = Vec::new();
    f.extend_from_slice(&OUR_MAC);
    f.extend_from_slice(&CLIENT_MAC);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let total = 20 + 20 + 4;
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&(total as u16).to_be_bytes());
    f.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    f.extend_from_slice(b"GET ");
    f
}

fn ipv6_tcp(src: &str, sport: u16, dst: &str, dport: u16, flags: u8) -> Vec<u8> {
    let src: std::net::Ipv6Addr = src.parse().unwrap();
    let dst: std::net::Ipv6Addr = dst.parse().unwrap();
    let mut f = Vec::new();
    f.extend_from_slice(&OUR_MAC);
    f.extend_from_slice(&CLIENT_MAC);
    f.extend_from_slice(&0x86ddu16.to_be_bytes());
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&20u16.to_be_bytes());
    f.extend_from_slice(&[6, 64]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    f
}

fn syn(sport: u16) -> Vec<u8> {
    ipv4_tcp("203.0.113.7", sport, "192.0.2.100", 80, SYN)
}

fn spread(lb: &mut Lb, frames: impl Iterator<Item = Vec<u8>>) -> [usize; 3] {
    let mut counts = [0; 3];
    for frame in frames {
        let (action, index) = lb.run(&frame);
        assert_eq!(action, XDP_TX);
        counts[index.unwrap()] += 1;
    }
    counts
}

#[test]
fn syn_to_the_service_is_rewritten_to_a_real_server_and_sent_back_out() {
    let mut lb = Lb::new(vec![service(LbAlgo::Rr, VIP, &RS)], &RS);
    let (action, index) = lb.run(&syn(40000));
    assert_eq!(action, XDP_TX);
    assert!(index.is_some());
    let c = lb.counters();
    assert_eq!((c["lb_forwarded"], c["lb_new_flows"]), (1, 1));
    let traffic = lb
        .maps
        .backend_counters(backend_id(0, index.unwrap()))
        .unwrap();
    assert_eq!(traffic.packets, 1);
    assert_eq!(traffic.bytes, syn(40000).len() as u64);
}

#[test]
fn everything_else_passes_untouched() {
    let mut lb = Lb::new(vec![service(LbAlgo::Rr, VIP, &RS)], &RS);
    // Another port of the VIP (ssh to the router), another address, UDP to port 80.
    for frame in [
        ipv4_tcp("203.0.113.7", 40000, "192.0.2.100", 22, SYN),
        ipv4_tcp("203.0.113.7", 40000, "192.0.2.1", 80, SYN),
    ] {
        assert_eq!(lb.run(&frame), (XDP_PASS, None));
    }
    let mut udp = syn(40000);
    udp[23] = 17;
    assert_eq!(lb.run(&udp), (XDP_PASS, None));
    assert_eq!(lb.counters()["lb_forwarded"], 0);
}

#[test]
fn rr_and_wrr_spread_new_flows_by_weight() {
    let mut lb = Lb::new(vec![service(LbAlgo::Rr, VIP, &RS)], &RS);
    assert_eq!(
        spread(&mut lb, (0..30).map(|i| syn(41000 + i))),
        [10, 10, 10]
    );

    let mut wrr = service(LbAlgo::Wrr, VIP, &RS);
    wrr.real_servers[0].weight = 3;
    let mut lb = Lb::new(vec![wrr], &RS);
    assert_eq!(
        spread(&mut lb, (0..50).map(|i| syn(42000 + i))),
        [30, 10, 10]
    );
}

#[test]
fn an_established_flow_stays_on_its_server_through_a_drain_and_new_flows_avoid_it() {
    let mut lb = Lb::new(vec![service(LbAlgo::Rr, VIP, &RS)], &RS);
    let (_, first) = lb.run(&syn(43000));
    let first = first.unwrap();
    let mut members = vec![(true, 1); 3];
    members[first].1 = 0; // weight 0: drain
    lb.set_health(&pool(&members));
    for _ in 0..5 {
        let ack = ipv4_tcp("203.0.113.7", 43000, "192.0.2.100", 80, ACK);
        assert_eq!(
            lb.run(&ack),
            (XDP_TX, Some(first)),
            "the drained server keeps its flow"
        );
    }
    let counts = spread(&mut lb, (0..20).map(|i| syn(44000 + i)));
    assert_eq!(
        counts[first], 0,
        "no new flow to a drained server: {counts:?}"
    );
}

#[test]
fn a_new_connection_on_a_closed_flows_ports_is_scheduled_anew() {
    let mut lb = Lb::new(vec![service(LbAlgo::Rr, VIP, &RS)], &RS);
    let frame = |flags| ipv4_tcp("203.0.113.7", 43100, "192.0.2.100", 80, flags);
    let (_, first) = lb.run(&frame(SYN));
    let first = first.unwrap();
    assert_eq!(
        lb.run(&frame(SYN)),
        (XDP_TX, Some(first)),
        "a retransmitted SYN stays with its server"
    );
    let mut members = vec![(true, 1); 3];
    members[first].1 = 0; // weight 0: drain
    lb.set_health(&pool(&members));
    assert_eq!(lb.run(&frame(ACK)), (XDP_TX, Some(first)));
    assert_eq!(lb.run(&frame(FIN_ACK)), (XDP_TX, Some(first)));
    // The client reuses the port for its next connection (as a busy one does).
    let (action, next) = lb.run(&frame(SYN));
    assert_eq!(action, XDP_TX);
    assert_ne!(
        next,
        Some(first),
        "a new connection went to the drained server"
    );
    assert_eq!(
        lb.run(&frame(ACK)),
        (XDP_TX, next),
        "the new connection's packets follow it"
    );
    assert_eq!(lb.counters()["lb_new_flows"], 2);
}

#[test]
fn a_failed_servers_flows_are_rescheduled() {
    let mut lb = Lb::new(vec![service(LbAlgo::Mh, VIP, &RS)], &RS);
    let (_, first) = lb.run(&syn(45000));
    let first = first.unwrap();
    let mut members = vec![(true, 1); 3];
    members[first] = (false, 1);
    lb.set_health(&pool(&members));
    let ack = ipv4_tcp("203.0.113.7", 45000, "192.0.2.100", 80, ACK);
    let (action, now) = lb.run(&ack);
    assert_eq!(action, XDP_TX);
    assert_ne!(now, Some(first));
}

#[test]
fn unknown_non_syn_is_dropped_by_rr_but_placed_by_maglev_the_same_on_both_nodes() {
    let ack = ipv4_tcp("203.0.113.9", 46000, "192.0.2.100", 80, ACK);
    let mut rr = Lb::new(vec![service(LbAlgo::Rr, VIP, &RS)], &RS);
    assert_eq!(rr.run(&ack), (XDP_DROP, None));
    assert_eq!(rr.counters()["lb_dropped_unknown_flow"], 1);

    // Node A sees the SYN; node B (another program copy, same config) only sees the
    // connection's later packets, as after a VRRP failover.
    let mut node_a = Lb::new(vec![service(LbAlgo::Mh, VIP, &RS)], &RS);
    let mut node_b = Lb::new(vec![service(LbAlgo::Mh, VIP, &RS)], &RS);
    for port in 46000..46040 {
        let (_, a) = node_a.run(&ipv4_tcp("203.0.113.9", port, "192.0.2.100", 80, SYN));
        let (action, b) = node_b.run(&ipv4_tcp("203.0.113.9", port, "192.0.2.100", 80, ACK));
        assert_eq!(action, XDP_TX);
        assert_eq!(a, b, "port {port}: both nodes pick the same server");
    }
    assert_eq!(node_b.counters()["lb_flows_recovered"], 40);
}

#[test]
fn mh_hashes_the_client_address_unless_told_to_hash_the_port() {
    let mut lb = Lb::new(vec![service(LbAlgo::Mh, VIP, &RS)], &RS);
    let one_client = spread(&mut lb, (0..20).map(|i| syn(47000 + i)));
    assert!(
        one_client.contains(&20),
        "one client, one server: {one_client:?}"
    );
    let many = spread(
        &mut lb,
        (1..=90).map(|i| ipv4_tcp(&format!("203.0.113.{i}"), 47100, "192.0.2.100", 80, SYN)),
    );
    assert!(
        many.iter().all(|&c| c >= 15),
        "90 clients over 3 servers: {many:?}"
    );

    let mut with_port = service(LbAlgo::Mh, VIP, &RS);
    with_port.hash.port = true;
    let mut lb = Lb::new(vec![with_port], &RS);
    let ports = spread(&mut lb, (0..90).map(|i| syn(47200 + i)));
    assert!(
        ports.iter().all(|&c| c >= 15),
        "mh-port spreads one client: {ports:?}"
    );
}

#[test]
fn persistence_keeps_a_client_on_one_server_with_rr() {
    let mut persistent = service(LbAlgo::Rr, VIP, &RS);
    persistent.persistence_timeout = Some(Duration::from_secs(300));
    let mut lb = Lb::new(vec![persistent], &RS);
    let counts = spread(&mut lb, (0..12).map(|i| syn(48000 + i)));
    assert!(counts.contains(&12), "{counts:?}");
    assert_eq!(lb.counters()["lb_persist_hits"], 11);
    // Another client is scheduled on its own.
    let other = ipv4_tcp("203.0.113.8", 48000, "192.0.2.100", 80, SYN);
    assert_eq!(lb.run(&other).0, XDP_TX);
}

#[test]
fn least_connections_prefers_the_server_with_fewest_open_flows() {
    let mut lb = Lb::new(vec![service(LbAlgo::Lc, VIP, &RS)], &RS);
    // Three flows open; then the first one closes: the next flow goes to its server.
    let mut servers = Vec::new();
    for port in 49000..49003 {
        servers.push(lb.run(&syn(port)).1.unwrap());
    }
    servers.sort();
    assert_eq!(servers, vec![0, 1, 2], "lc spreads while counts are equal");
    let (_, closed) = lb.run(&ipv4_tcp("203.0.113.7", 49000, "192.0.2.100", 80, FIN_ACK));
    let (_, next) = lb.run(&syn(49010));
    assert_eq!(next, closed, "the server whose flow closed has the fewest");
}

#[test]
fn sorry_server_takes_new_flows_when_the_pool_is_empty() {
    let mut svc = service(LbAlgo::Wrr, VIP, &RS);
    svc.sorry_server = Some("198.51.100.50:80".parse().unwrap());
    let all = [RS[0], RS[1], RS[2], "198.51.100.50:80"];
    let mut lb = Lb::new(vec![svc], &all);
    let mut down = pool(&[(false, 1); 3]);
    down.services[0].pool.use_sorry = true;
    lb.set_health(&down);
    assert_eq!(lb.run(&syn(50000)), (XDP_TX, Some(3)));
    assert_eq!(lb.counters()["lb_sorry"], 1);
}

#[test]
fn no_backend_and_no_sorry_server_drops_and_counts() {
    let mut lb = Lb::new(vec![service(LbAlgo::Wrr, VIP, &RS)], &RS);
    lb.set_health(&pool(&[(false, 1); 3]));
    assert_eq!(lb.run(&syn(50100)), (XDP_DROP, None));
    assert_eq!(lb.counters()["lb_dropped_no_backend"], 1);
}

#[test]
fn fragments_and_cut_headers_to_a_service_address_are_dropped_and_counted() {
    let mut lb = Lb::new(vec![service(LbAlgo::Mh, VIP, &RS)], &RS);
    let mut fragment = syn(51000);
    fragment[20] = 0x20; // more fragments
    assert_eq!(lb.run(&fragment), (XDP_DROP, None));
    let mut later_fragment = syn(51000);
    later_fragment[20] = 0x00;
    later_fragment[21] = 0x10; // offset 128
    assert_eq!(lb.run(&later_fragment), (XDP_DROP, None));
    let cut = syn(51000)[..14 + 20 + 10].to_vec();
    assert_eq!(lb.run(&cut), (XDP_DROP, None));
    let mut bad_ihl = syn(51000);
    bad_ihl[14] = 0x44;
    assert_eq!(lb.run(&bad_ihl), (XDP_DROP, None));
    let c = lb.counters();
    assert_eq!(c["lb_dropped_fragment"], 2);
    assert_eq!(c["lb_dropped_truncated"], 2);
    assert_eq!(c["lb_forwarded"], 0);
    // ICMP to the VIP is the kernel's (ping the router).
    let mut icmp = syn(51000);
    icmp[23] = 1;
    assert_eq!(lb.run(&icmp), (XDP_PASS, None));
}

#[test]
fn ipv6_services_are_balanced_and_their_fragments_dropped() {
    let rs6 = [
        "[2001:db8:1::11]:80",
        "[2001:db8:1::12]:80",
        "[2001:db8:1::13]:80",
    ];
    let mut lb = Lb::new(vec![service(LbAlgo::Rr, "[2001:db8::100]:80", &rs6)], &rs6);
    let counts = spread(
        &mut lb,
        (0..9).map(|i| ipv6_tcp("2001:db8:2::7", 52000 + i, "2001:db8::100", 80, SYN)),
    );
    assert_eq!(counts, [3, 3, 3]);
    let mut fragment = ipv6_tcp("2001:db8:2::7", 52100, "2001:db8::100", 80, SYN);
    fragment[20] = 44;
    assert_eq!(lb.run(&fragment), (XDP_DROP, None));
    let mut icmp6 = ipv6_tcp("2001:db8:2::7", 52100, "2001:db8::100", 80, SYN);
    icmp6[20] = 58;
    assert_eq!(
        lb.run(&icmp6),
        (XDP_PASS, None),
        "neighbour discovery must reach the kernel"
    );
    assert_eq!(lb.counters()["lb_dropped_fragment"], 1);
}

#[test]
fn random_frames_get_a_defined_verdict_and_never_go_to_an_unknown_server() {
    let mut lb = Lb::new(vec![service(LbAlgo::Mh, VIP, &RS)], &RS);
    let base = syn(53000);
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..5000 {
        let mut frame = base.clone();
        let len = 14 + (next() as usize % (frame.len() - 13));
        frame.truncate(len);
        for _ in 0..(next() % 4) {
            let at = 14 + next() as usize % (frame.len() - 14).max(1);
            if at < frame.len() {
                frame[at] = next() as u8;
            }
        }
        let (action, _) = lb.run(&frame);
        assert!(matches!(action, XDP_DROP | XDP_PASS | XDP_TX), "{action}");
    }
}

#[test]
fn sh_sends_each_client_to_one_server_and_spreads_clients_by_weight() {
    let mut sh = service(LbAlgo::Sh, VIP, &RS);
    sh.real_servers[0].weight = 2;
    let mut lb = Lb::new(vec![sh], &RS);
    let one_client = spread(&mut lb, (0..10).map(|i| syn(54000 + i)));
    assert!(
        one_client.contains(&10),
        "one client, one server: {one_client:?}"
    );
    let clients = spread(
        &mut lb,
        (0..200).map(|i| {
            ipv4_tcp(
                &format!("203.0.{}.{}", 100 + i / 250, 1 + i % 250),
                54100,
                "192.0.2.100",
                80,
                SYN,
            )
        }),
    );
    // Weight 2:1:1 → about 100:50:50 of 200 clients.
    assert!(
        (70..=130).contains(&clients[0]) && clients[1] >= 25 && clients[2] >= 25,
        "{clients:?}"
    );
}

#[test]
fn udp_services_are_balanced_per_datagram_flow() {
    let servers: Vec<SocketAddr> = RS.iter().map(|a| a.parse().unwrap()).collect();
    let mut dns =
        VirtualServer::direct_routing("192.0.2.100:53".parse().unwrap(), LbAlgo::Rr, &servers);
    dns.protocol = vipd::config::lb::LbProtocol::Udp;
    let mut lb = Lb::new(vec![dns], &RS);
    let datagram = |sport: u16| {
        let mut f = ipv4_tcp("203.0.113.7", sport, "192.0.2.100", 53, 0);
        f[23] = 17; // protocol UDP; the 8 bytes after the IP header are the UDP header
        f
    };
    // Every datagram of one flow goes to one server; new flows rotate.
    let (_, first) = lb.run(&datagram(55000));
    for _ in 0..3 {
        assert_eq!(lb.run(&datagram(55000)), (XDP_TX, first));
    }
    let counts = spread(&mut lb, (1..=9).map(|i| datagram(55000 + i)));
    assert_eq!(counts.iter().sum::<usize>(), 9);
    assert!(counts.iter().all(|&c| c >= 2), "{counts:?}");
    // TCP to the UDP service's port is not balanced.
    assert_eq!(
        lb.run(&ipv4_tcp("203.0.113.7", 55000, "192.0.2.100", 53, SYN)),
        (XDP_PASS, None)
    );
}

#[test]
fn a_real_server_behind_another_interface_is_reached_by_redirect() {
    let mut lb = Lb::new(vec![service(LbAlgo::Rr, VIP, &RS)], &RS);
    for hop in lb.hops.values_mut() {
        hop.ifindex = 4242; // not the loopback the test frame arrives on
    }
    lb.set_health(&HealthSnapshot::default());
    let out = lb.xdp.test_run(&syn(56000)).expect("test run");
    const XDP_REDIRECT: u32 = 4;
    assert_eq!(out.action, XDP_REDIRECT);
    assert_eq!(lb.counters()["lb_redirected"], 1);
    assert_eq!(lb.counters()["lb_forwarded"], 0);
}
