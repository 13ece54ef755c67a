//! VRRPv3 over IPv6 (RFC 5798 §5.1.2, §8.2) end to end: vipd pairs and vipd with
//! keepalived 2.2.7, on a bridged LAN whose namespaces have IPv6 on and DAD off
//! ([`Lan::new_ipv6`]).
//!
//! Routers have no global addresses: adverts go from each `eth0`'s link-local address to
//! ff02::12, which is also what `master_address` shows. The VIP is 2001:db8::100/64; the
//! client (the last member, 2001:db8::10/64) pings it over ICMPv6 and, after a takeover,
//! can only reach the new master quickly if its unsolicited neighbour advertisement
//! (Override set) replaced the old MAC in the client's neighbour cache.

use std::io::{Read as _, Write as _};
use std::net::Ipv6Addr;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};

use vipd_tests::keepalived::{self, Keepalived};
use vipd_tests::pinger::PingRun;
use vipd_tests::vipd::{
    InstanceConf, Router, STOP_ALL_TIMEOUT, Scratch, has_addr, holders, stop_all, wait_addr,
    wait_only_holder,
};
use vipd_tests::{
    Lan, Netns, add_addr, addrs, link_down, link_local, link_up, mac_of, poll_until, require_root,
};

const VIP: &str = "2001:db8::100";
const VIP_CIDR: &str = "2001:db8::100/64";
const VIP_ADDR: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
const CLIENT_CIDR: &str = "2001:db8::10/64";
const INSTANCE: &str = "VI_6";
const VRID: u8 = 7;

/// Bound on any election or takeover (they take well under a second at 50 ms).
const ELECTION: Duration = Duration::from_secs(5);

/// A LAN of `routers` routers plus, if `client`, a client as the last member.
fn lab(tag: &str, routers: usize, client: bool) -> anyhow::Result<(Lan, Scratch)> {
    let lan = Lan::new_ipv6(tag, routers + usize::from(client))?;
    if client {
        add_addr(lan.member(routers), "eth0", CLIENT_CIDR)?;
    }
    Ok((lan, Scratch::new(tag)?))
}

fn conf(priority: u8) -> InstanceConf {
    InstanceConf::new(INSTANCE, VRID, priority, VIP_CIDR)
}

/// Polls until the VIP is on `lan.member(holder)`'s eth0 and on no other member's.
fn wait_vip_only_on(lan: &Lan, holder: usize) -> anyhow::Result<()> {
    wait_only_holder(lan, VIP, holder, ELECTION)
}

/// r1 (priority 200) and r2 (100) on the LAN's first two members, started; returned
/// once r1 is MASTER and r2 its BACKUP, with r1's and r2's link-local addresses.
fn started_pair<'a>(
    lan: &'a Lan,
    scratch: &Scratch,
) -> anyhow::Result<(Vec<Router<'a>>, [String; 2])> {
    let lls = [
        link_local(lan.member(0), "eth0")?,
        link_local(lan.member(1), "eth0")?,
    ];
    let mut routers = vec![
        Router::new(lan.member(0), scratch, "r1", &[conf(200)])?,
        Router::new(lan.member(1), scratch, "r2", &[conf(100)])?,
    ];
    for router in &mut routers {
        router.start()?;
    }
    let master = routers[0].wait_state(INSTANCE, "MASTER", ELECTION)?;
    ensure!(master["family"] == "ipv6", "family: {master}");
    ensure!(
        master["primary_address"] == lls[0].as_str(),
        "adverts must leave from the link-local address {}: {master}",
        lls[0]
    );
    let r1_ll = lls[0].clone();
    routers[1].wait_instance(&format!("BACKUP of {r1_ll}"), INSTANCE, ELECTION, |i| {
        i["state"] == "BACKUP" && i["master_address"] == r1_ll.as_str()
    })?;
    wait_vip_only_on(lan, 0)?;
    Ok((routers, lls))
}

/// A client pinging the VIP every 5 ms, returned once it got 3 replies.
fn pinging(client: &Netns) -> anyhow::Result<PingRun> {
    let pings = PingRun::start(
        client,
        VIP_ADDR,
        Duration::from_millis(5),
        Duration::from_secs(20),
    )?;
    pings.wait_for_more(3, ELECTION, "before the failover")?;
    Ok(pings)
}

/// The MAC address the client's neighbour cache holds for the VIP, if any.
fn client_neighbour_mac(client: &Netns) -> anyhow::Result<Option<String>> {
    let text = client.ip(&["-j", "-6", "neigh", "show", VIP, "dev", "eth0"])?;
    let entries: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("ip neigh printed {text:?}"))?;
    Ok(entries
        .as_array()
        .and_then(|all| all.iter().find_map(|e| e["lladdr"].as_str()))
        .map(str::to_owned))
}

fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Two vipd routers elect the higher priority over IPv6 (adverts from link-local, the
/// VIP on the master only, reachable by a client). The master host dies (SIGKILL, link
/// down): the backup takes over after Master_Down_Interval, announces the VIP with an
/// unsolicited NA that moves the client's neighbour entry to its MAC, and the client
/// reaches the VIP again.
#[test]
fn v6_crashed_master_is_replaced() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = lab("v6crash", 2, true)?;
    let client = lan.member(2);
    let (mut routers, _) = started_pair(&lan, &scratch)?;
    let pings = pinging(client)?;
    let r1_mac = format_mac(mac_of(lan.member(0), "eth0")?);
    let r2_mac = format_mac(mac_of(lan.member(1), "eth0")?);
    ensure!(
        client_neighbour_mac(client)?.as_deref() == Some(r1_mac.as_str()),
        "the client reaches the VIP at r1's MAC {r1_mac} first"
    );

    routers[0].kill()?;
    link_down(lan.member(0), "eth0")?;
    routers[1].wait_state(INSTANCE, "MASTER", ELECTION)?;
    wait_addr(lan.member(1), "eth0", VIP, true, ELECTION)?;
    let took_over = Instant::now();
    ensure!(routers[1].counter(INSTANCE, "priority_zero_received")? == 0);
    poll_until(
        "the client's neighbour entry for the VIP to move to r2",
        ELECTION,
        Duration::from_millis(20),
        || match client_neighbour_mac(client) {
            Ok(Some(mac)) if mac == r2_mac => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )?;
    ensure!(routers[1].counter(INSTANCE, "neighbour_adverts_sent")? >= 1);
    ensure!(routers[1].counter(INSTANCE, "garps_sent")? == 0);
    pings.wait_for_more(10, ELECTION, "after the takeover")?;
    let log = pings.finish()?;
    ensure!(
        log.replies_after(took_over) >= 10,
        "the client does not reach the VIP on r2"
    );
    stop_all(&mut routers)
}

/// SIGTERM to the IPv6 master: it exits 0 having removed the VIP and sent priority 0;
/// the backup takes over at once (priority 0 heard) and the client's pings go on.
#[test]
fn v6_sigterm_hands_over_gracefully() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = lab("v6term", 2, true)?;
    let (mut routers, lls) = started_pair(&lan, &scratch)?;
    let pings = pinging(lan.member(2))?;

    // The exit includes the whole graceful handover (priority 0, keeping the VIP until
    // r2 has announced it, removing it), which a busy host can stretch past a second;
    // what matters here is how it ends, so wait as long as stop_all does.
    let done = routers[0].stop(STOP_ALL_TIMEOUT)?;
    ensure!(
        done.status.success(),
        "vipd exited {}\n{}",
        done.status,
        done.stderr
    );
    ensure!(
        holders(&[lan.member(0)], VIP)?.is_empty(),
        "r1 exited still holding the VIP"
    );
    routers[1].wait_state(INSTANCE, "MASTER", ELECTION)?;
    wait_vip_only_on(&lan, 1)?;
    ensure!(routers[1].counter(INSTANCE, "priority_zero_received")? >= 1);
    let status = routers[1].instance(INSTANCE)?;
    ensure!(status["master_address"] == lls[1].as_str(), "{status}");
    pings.wait_for_more(20, ELECTION, "after r2 took over")?;
    stop_all(&mut routers)
}

/// A master that cannot add its VIP goes to FAULT, and the peer keeps the VIP. r1
/// (priority 200) has its VIP on `vdis`, one end of a veth pair in its namespace, whose
/// IPv6 is disabled (`net.ipv6.conf.vdis.disable_ipv6 = 1`) once r1 has started (it
/// needs the link-local address at start, to send neighbour advertisements from), so
/// the kernel refuses the address every time; r2 (100) holds the VIP on eth0. r1 preempts, its add fails, it sends
/// priority 0 and goes to FAULT, and r2 is master again at once. After its retry delay
/// r1 is BACKUP, and it does not preempt the working r2 again (which would only repeat
/// the failure).
#[test]
fn v6_master_that_cannot_add_its_vip_goes_to_fault_and_the_peer_takes_over() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = lab("v6vipfail", 2, false)?;
    let (ns1, ns2) = (lan.member(0), lan.member(1));
    ns1.ip(&[
        "link",
        "add",
        "vdis",
        "type",
        "veth",
        "peer",
        "name",
        "vdis_peer",
    ])?;
    ns1.ip(&["link", "set", "vdis_peer", "up"])?;
    ns1.ip(&["link", "set", "vdis", "up"])?;
    // 500 ms adverts: r1 preempts, and its FAULT lasts, one Master_Down_Interval
    // (≈ 1.6 s): time to disable IPv6 under it, and to see the FAULT by polling.
    let slow = |conf: InstanceConf| conf.set("advert_int", "\"500ms\"");
    let mut r2 = Router::new(ns2, &scratch, "r2", &[slow(conf(100))])?;
    r2.start()?;
    r2.wait_state(INSTANCE, "MASTER", ELECTION)?;
    wait_addr(ns2, "eth0", VIP, true, ELECTION)?;
    let mut r1 = Router::new(
        ns1,
        &scratch,
        "r1",
        &[slow(conf(200)).set(
            "virtual_ipaddress",
            &format!("[{{ address = \"{VIP_CIDR}\", dev = \"vdis\" }}]"),
        )],
    )?;
    r1.start()?;
    r1.wait_state(INSTANCE, "BACKUP", ELECTION)?;
    ns1.sysctl("net.ipv6.conf.vdis.disable_ipv6", "1")?;

    let fault = r1.wait_state(INSTANCE, "FAULT", ELECTION)?;
    ensure!(
        fault["last_transition"]["reason"] == "Fault(VipAdd)",
        "r1 went to FAULT for {}",
        fault["last_transition"]["reason"]
    );
    ensure!(
        r1.counter(INSTANCE, "vip_errors")? >= 1,
        "no VIP error counted"
    );
    ensure!(
        r1.counter(INSTANCE, "became_master")? == 1,
        "r1 preempted once before failing"
    );
    r2.wait_state(INSTANCE, "MASTER", ELECTION)?;
    wait_addr(ns2, "eth0", VIP, true, ELECTION)?;
    // The retry: back to BACKUP, and no second preemption of the working r2 (r1 would
    // preempt one Master_Down_Interval, ≈ 1.6 s, after hearing it).
    r1.wait_state(INSTANCE, "BACKUP", ELECTION)?;
    r2.assert_state_holds(INSTANCE, "MASTER", Duration::from_secs(3))?;
    ensure!(
        r1.state(INSTANCE)? == "BACKUP" && r1.counter(INSTANCE, "became_master")? == 1,
        "r1 preempted again after failing"
    );
    ensure!(
        holders(&[ns1, ns2], VIP)? == vec![1],
        "the VIP is on r2 alone"
    );
    stop_all(&mut [r1, r2])
}

/// Drops VRRP to and from ff02::12 in `ns` (nftables), counting it as `mcast`, and
/// counts VRRP arriving by unicast as `unicast_in`.
fn block_vrrp_multicast_v6(ns: &Netns, scratch: &Scratch, name: &str) -> anyhow::Result<()> {
    let rules = "table ip6 vipdtest6 {
        counter mcast { }
        counter unicast_in { }
        chain out { type filter hook output priority 0;
            meta l4proto 112 ip6 daddr ff02::12 counter name mcast drop; }
        chain in { type filter hook input priority 0;
            meta l4proto 112 ip6 daddr ff02::12 counter name mcast drop;
            meta l4proto 112 counter name unicast_in; }
    }";
    let file = scratch.write(&format!("{name}.nft"), rules)?;
    ns.exec_ok(&["nft", "-f", &file.display().to_string()])?;
    Ok(())
}

fn nft_packets(ns: &Netns, counter: &str) -> anyhow::Result<u64> {
    ns.nft_counter("ip6", "vipdtest6", counter)
}

/// Unicast over IPv6 with multicast VRRP blocked both ways: each router sends to the
/// other's link-local address (scope: its own interface) from its own link-local
/// address; they elect, nothing goes to ff02::12, and a graceful stop fails over.
#[test]
fn v6_unicast_peers_elect_without_multicast() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = lab("v6ucast", 2, false)?;
    let lls = [
        link_local(lan.member(0), "eth0")?,
        link_local(lan.member(1), "eth0")?,
    ];
    for i in 0..2 {
        block_vrrp_multicast_v6(lan.member(i), &scratch, &format!("r{i}"))?;
    }
    let unicast = |priority: u8, peer: usize| {
        conf(priority).set("unicast_peer", &format!("[{:?}]", lls[peer]))
    };
    let mut routers = vec![
        Router::new(lan.member(0), &scratch, "r1", &[unicast(200, 1)])?,
        Router::new(lan.member(1), &scratch, "r2", &[unicast(100, 0)])?,
    ];
    for router in &mut routers {
        router.start()?;
    }
    routers[0].wait_state(INSTANCE, "MASTER", ELECTION)?;
    let r1_ll = lls[0].clone();
    routers[1].wait_instance(&format!("BACKUP of {r1_ll}"), INSTANCE, ELECTION, |i| {
        i["state"] == "BACKUP" && i["master_address"] == r1_ll.as_str()
    })?;
    // Without working unicast adverts r2 would have become master too.
    routers[1].assert_state_holds(INSTANCE, "BACKUP", Duration::from_millis(500))?;
    wait_vip_only_on(&lan, 0)?;
    ensure!(nft_packets(lan.member(1), "unicast_in")? >= 5);
    for router in &routers {
        ensure!(
            nft_packets(router.ns(), "mcast")? == 0,
            "{} sent or received VRRP multicast in unicast mode",
            router.name()
        );
    }
    // The exit includes the whole graceful handover; this test is about the priority-0
    // advert going out by unicast, not about how fast, so wait as long as stop_all does.
    let done = routers[0].stop(STOP_ALL_TIMEOUT)?;
    ensure!(done.status.success(), "{}", done.stderr);
    routers[1].wait_state(INSTANCE, "MASTER", ELECTION)?;
    wait_vip_only_on(&lan, 1)?;
    ensure!(routers[1].counter(INSTANCE, "priority_zero_received")? >= 1);
    stop_all(&mut routers)
}

/// RFC 5798 §5.2.3: an IPv4 and an IPv6 virtual router may share a VRID on one
/// interface. Each router runs both; the priorities are crossed, so r1 masters the
/// IPv4 one and r2 the IPv6 one, and neither family's adverts disturb the other. XDP
/// (generic) watches both (interface, VRID, family) keys.
#[test]
fn v4_and_v6_instances_share_a_vrid() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = lab("v46", 2, false)?;
    for i in 0..2 {
        add_addr(lan.member(i), "eth0", &format!("192.0.2.{}/24", i + 1))?;
    }
    let both = |p4: u8, p6: u8| {
        [
            InstanceConf::new("VI_4", VRID, p4, "192.0.2.100/24").set("xdp", "\"generic\""),
            conf(p6).set("xdp", "\"generic\""),
        ]
    };
    let mut routers = vec![
        Router::new(lan.member(0), &scratch, "r1", &both(200, 100))?,
        Router::new(lan.member(1), &scratch, "r2", &both(100, 200))?,
    ];
    for router in &mut routers {
        router.start()?;
    }
    let r2_ll = link_local(lan.member(1), "eth0")?;
    routers[0].wait_state("VI_4", "MASTER", ELECTION)?;
    routers[1].wait_state(INSTANCE, "MASTER", ELECTION)?;
    routers[1].wait_instance("BACKUP of 192.0.2.1", "VI_4", ELECTION, |i| {
        i["state"] == "BACKUP" && i["master_address"] == "192.0.2.1"
    })?;
    routers[0].wait_instance(&format!("BACKUP of {r2_ll}"), INSTANCE, ELECTION, |i| {
        i["state"] == "BACKUP" && i["master_address"] == r2_ll.as_str()
    })?;
    wait_vip_only_on(&lan, 1)?;
    let namespaces: Vec<&Netns> = lan.members().iter().collect();
    ensure!(holders(&namespaces, "192.0.2.100")? == vec![0]);
    // Settled: nobody flaps for a while, and the IPv6 backup hears the IPv6 master.
    routers[0].assert_state_holds(INSTANCE, "BACKUP", Duration::from_millis(500))?;
    routers[1].assert_state_holds("VI_4", "BACKUP", Duration::from_millis(300))?;
    ensure!(routers[0].counter(INSTANCE, "adverts_received")? >= 3);
    ensure!(routers[0].counter("VI_4", "rx_version_mismatch")? == 0);
    // r1's XDP program checked r2's IPv6 adverts (hop limit, checksum over the IPv6
    // pseudo-header) with its own code, and r2's checked r1's IPv4 ones.
    // And r1's daemon took the IPv6 master's advert events from the ring buffer, keyed
    // by family like its watch.
    ensure!(routers[0].counter(INSTANCE, "xdp_events")? >= 1);
    for router in &routers {
        ensure!(router.xdp_counter("eth0", "adverts_accepted")? > 0);
        ensure!(router.xdp_counter("eth0", "advert_dropped_checksum")? == 0);
        ensure!(router.xdp_counter("eth0", "advert_dropped_ttl")? == 0);
    }
    stop_all(&mut routers)
}

/// SIGHUP with an instance that keeps its name, interface and VRID but changes family
/// (IPv4 VIP → IPv6 VIP): the IPv4 router stops (its VIP leaves) and the IPv6 one
/// starts with its own receive socket, so it hears r2, the IPv6 master, and follows it.
#[test]
fn reload_switches_an_instance_to_ipv6() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = lab("v6rl", 2, false)?;
    add_addr(lan.member(0), "eth0", "192.0.2.1/24")?;
    let v4 = InstanceConf::new(INSTANCE, VRID, 200, "192.0.2.100/24");
    let mut r1 = Router::new(lan.member(0), &scratch, "r1", &[v4])?;
    let mut r2 = Router::new(lan.member(1), &scratch, "r2", &[conf(250)])?;
    r1.start()?;
    r2.start()?;
    r1.wait_state(INSTANCE, "MASTER", ELECTION)?;
    r2.wait_state(INSTANCE, "MASTER", ELECTION)?;
    wait_addr(lan.member(0), "eth0", "192.0.2.100", true, ELECTION)?;

    r1.reconfigure(&[conf(200)])?;
    r1.signal(libc::SIGHUP)?;
    let r2_ll = link_local(lan.member(1), "eth0")?;
    r1.wait_instance(
        &format!("IPv6 BACKUP of {r2_ll}"),
        INSTANCE,
        ELECTION,
        |i| {
            i["family"] == "ipv6" && i["state"] == "BACKUP" && i["master_address"] == r2_ll.as_str()
        },
    )?;
    wait_addr(lan.member(0), "eth0", "192.0.2.100", false, ELECTION)?;
    wait_vip_only_on(&lan, 1)?;
    stop_all(&mut [r1, r2])
}

/// keepalived.conf for an IPv6 VRRPv3 instance at 100 ms.
fn keepalived_v6(priority: u8) -> String {
    format!(
        "global_defs {{\n  router_id ka\n}}\n\
         vrrp_instance {INSTANCE} {{\n  state BACKUP\n  interface eth0\n  \
         virtual_router_id {VRID}\n  priority {priority}\n  version 3\n  advert_int 0.1\n  \
         native_ipv6\n  virtual_ipaddress {{\n    {VIP_CIDR}\n  }}\n}}\n"
    )
}

fn vipd_v6(priority: u8) -> InstanceConf {
    conf(priority).set("advert_int", "\"100ms\"")
}

/// The lab of a keepalived interop test (keepalived on member 0, vipd on member 1), or
/// `None` when keepalived is not installed (the test is then skipped, loudly).
fn keepalived_lab(tag: &str) -> anyhow::Result<Option<(Lan, Scratch)>> {
    require_root();
    if !keepalived::available() {
        eprintln!("keepalived is not installed: skipping");
        return Ok(None);
    }
    lab(tag, 2, false).map(Some)
}

/// keepalived (150) and vipd (100) over IPv6: keepalived is master, vipd follows it
/// (master_address = keepalived's link-local), the VIP is on keepalived's side only.
/// keepalived's SIGTERM hands over to vipd.
#[test]
fn v6_keepalived_master_vipd_backup() -> anyhow::Result<()> {
    let Some((lan, scratch)) = keepalived_lab("v6ka1")? else {
        return Ok(());
    };
    let ka_ll = link_local(lan.member(0), "eth0")?;
    let mut ka = Keepalived::new(lan.member(0), &scratch, "ka", &keepalived_v6(150))?;
    let mut vipd = Router::new(lan.member(1), &scratch, "vipd", &[vipd_v6(100)])?;
    ka.start()?;
    ka.wait_state(INSTANCE, "MASTER", ELECTION)?;
    vipd.start()?;
    vipd.wait_instance(&format!("BACKUP of {ka_ll}"), INSTANCE, ELECTION, |i| {
        i["state"] == "BACKUP" && i["master_address"] == ka_ll.as_str()
    })?;
    wait_vip_only_on(&lan, 0)?;
    vipd.assert_state_holds(INSTANCE, "BACKUP", Duration::from_millis(500))?;
    ensure!(vipd.counter(INSTANCE, "adverts_received")? >= 3);

    ka.stop(Duration::from_secs(5))?;
    vipd.wait_state(INSTANCE, "MASTER", ELECTION)?;
    wait_vip_only_on(&lan, 1)?;
    ensure!(vipd.counter(INSTANCE, "priority_zero_received")? >= 1);
    stop_all(&mut [vipd])
}

/// vipd (150) and keepalived (100) over IPv6: vipd is master and keepalived follows it
/// (its adverts verify there: checksum over the IPv6 pseudo-header, hop limit 255).
#[test]
fn v6_vipd_master_keepalived_backup() -> anyhow::Result<()> {
    let Some((lan, scratch)) = keepalived_lab("v6ka2")? else {
        return Ok(());
    };
    let mut vipd = Router::new(lan.member(1), &scratch, "vipd", &[vipd_v6(150)])?;
    let mut ka = Keepalived::new(lan.member(0), &scratch, "ka", &keepalived_v6(100))?;
    vipd.start()?;
    vipd.wait_state(INSTANCE, "MASTER", ELECTION)?;
    ka.start()?;
    ka.wait_state(INSTANCE, "BACKUP", ELECTION)?;
    wait_vip_only_on(&lan, 1)?;
    // keepalived stays backup: it hears (and accepts) vipd's adverts.
    std::thread::sleep(Duration::from_millis(500));
    ensure!(
        ka.state(INSTANCE).as_deref() == Some("BACKUP"),
        "keepalived left BACKUP:\n{}",
        ka.logs()
    );
    vipd.assert_state_holds(INSTANCE, "MASTER", Duration::from_millis(200))?;
    stop_all(&mut [vipd])
}

/// Status straight from the control socket at `socket` (as `vipd status --json` prints
/// it), without starting a `vipd status` process.
fn socket_status(socket: &Path) -> anyhow::Result<serde_json::Value> {
    let mut stream = UnixStream::connect(socket)
        .with_context(|| format!("connecting to {}", socket.display()))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"status\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    serde_json::from_str(&text).with_context(|| format!("status printed {text:?}"))
}

/// VIPs on `ns`'s eth0 within 2001:db8:5::/64.
fn many_vips_held(ns: &Netns) -> anyhow::Result<usize> {
    let text = ns.ip(&["-6", "-o", "addr", "show", "dev", "eth0"])?;
    Ok(text.lines().filter(|l| l.contains("2001:db8:5::")).count())
}

/// A thousand consecutive IPv6 VIPs take the kernel most of a second to add (each joins
/// its own solicited-node group, and Linux walks all of an interface's groups on every
/// add). A new master keeps advertising every 10 ms meanwhile, so its backup, which
/// times out after 36 ms, never takes over; and `vipd status` keeps answering.
#[test]
fn master_keeps_advertising_while_a_thousand_vips_are_added() -> anyhow::Result<()> {
    require_root();
    const N: usize = 1000;
    let (lan, scratch) = lab("v6many", 2, false)?;
    let many = |priority: u8| {
        let mut conf = conf(priority).set("advert_int", "\"10ms\"");
        conf.vips = (0..N)
            .map(|i| format!("2001:db8:5::{:x}/64", i + 1))
            .collect();
        conf
    };
    // r2 first: MASTER alone, with every VIP.
    let mut r2 = Router::new(lan.member(1), &scratch, "r2", &[many(100)])?;
    r2.start()?;
    r2.wait_state(INSTANCE, "MASTER", ELECTION)?;
    poll_until(
        "r2 holds every VIP",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || match many_vips_held(lan.member(1)) {
            Ok(held) if held == N => Ok(()),
            Ok(held) => Err(format!("{held} of {N}")),
            Err(e) => Err(format!("{e:#}")),
        },
    )?;
    let r2_masterships = r2.counter(INSTANCE, "became_master")?;

    // r1 (higher priority) preempts and adds its thousand VIPs.
    let mut r1 = Router::new(lan.member(0), &scratch, "r1", &[many(200)])?;
    // Status must keep answering (the daemon's loop is not stuck in netlink) while
    // r1 becomes MASTER and the kernel adds its VIPs. Asked over the control socket
    // directly and timed: a `vipd status` process would add its own start-up (fork,
    // exec, a runtime) to every answer, which a busy host can stretch to hundreds of
    // milliseconds although the daemon answered at once. A loop stuck in netlink would
    // hold the answer for about as long as the kernel takes to add the VIPs.
    let r1_socket = scratch.path().join("r1.sock");
    r1.start()?;
    let started = Instant::now();
    let mut slowest_status = Duration::ZERO;
    let mut master_seen = false;
    while !master_seen || many_vips_held(lan.member(0))? < N {
        ensure!(
            started.elapsed() < Duration::from_secs(30),
            "r1 never held all {N} VIPs"
        );
        let asked = Instant::now();
        let status = socket_status(&r1_socket)?;
        slowest_status = slowest_status.max(asked.elapsed());
        master_seen |= status["instances"]
            .as_array()
            .and_then(|all| all.iter().find(|i| i["name"] == INSTANCE))
            .with_context(|| format!("no instance {INSTANCE} in r1's status {status}"))?["state"]
            == "MASTER";
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!(
        "r1 MASTER with {N} VIPs {:?} after answering status; slowest status answer meanwhile {slowest_status:?}",
        started.elapsed()
    );
    std::thread::sleep(Duration::from_millis(200));
    ensure!(
        r2.counter(INSTANCE, "became_master")? == r2_masterships,
        "r2 took over while r1 was adding its VIPs: r1 stopped advertising\n--- r2:\n{}\n--- r1:\n{}",
        r2.plain_logs(),
        r1.plain_logs()
    );
    // r2, now BACKUP with 1 000 VIPs, compares r1's adverts (64 addresses listed) with
    // the same 64 of its own: no mismatch warning.
    let r2_logs = r2.plain_logs();
    ensure!(
        !r2_logs.contains("address list differs"),
        "r2 warned of an address-list mismatch with the same VIPs configured:\n{r2_logs}"
    );
    let r2_state = r2.instance(INSTANCE)?;
    ensure!(
        r2_state["state"] == "BACKUP",
        "r2 is not BACKUP: {r2_state}"
    );
    ensure!(
        slowest_status < Duration::from_millis(500),
        "r1's control socket took {slowest_status:?} to answer status while VIPs were being \
         added"
    );
    stop_all(&mut [r1, r2])
}

/// An interface whose link is down when vipd starts has no IPv6 link-local address (the
/// kernel removes it with the link). The instance starts in FAULT instead of refusing to
/// start; once the link is up and the kernel has added the address (a netlink address
/// event), it is prepared again and elected: MASTER, the VIP added, adverts from the
/// link-local address.
#[test]
fn v6_instance_waits_in_fault_for_the_link_local_address_of_a_link_down_at_boot()
-> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = lab("v6boot", 1, false)?;
    let ns = lan.member(0);
    link_down(ns, "eth0")?;
    poll_until(
        "the link-local address to go with the link",
        ELECTION,
        Duration::from_millis(20),
        || match addrs(ns, "eth0") {
            Ok(all) if !all.iter().any(|a| a.starts_with("fe80")) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )?;
    let mut routers = vec![Router::new(ns, &scratch, "r1", &[conf(200)])?];
    routers[0].start()?;
    routers[0].wait_state(INSTANCE, "FAULT", ELECTION)?;
    routers[0].assert_state_holds(INSTANCE, "FAULT", Duration::from_millis(300))?;
    ensure!(!has_addr(ns, "eth0", VIP)?, "a FAULT instance holds no VIP");

    link_up(ns, "eth0")?;
    let ll = link_local(ns, "eth0")?;
    let master = routers[0].wait_state(INSTANCE, "MASTER", ELECTION)?;
    ensure!(
        master["primary_address"] == ll.as_str(),
        "adverts must leave from the new link-local address {ll}: {master}"
    );
    wait_addr(ns, "eth0", VIP, true, ELECTION)?;
    stop_all(&mut routers)
}

/// `garp_gateways` for IPv6: a new master sends each gateway a neighbour solicitation
/// from the VIP with its MAC, which creates the gateway's neighbour entry for the VIP
/// (RFC 4861 §7.2.3), where the unsolicited advertisements cannot (they only update an
/// entry that exists, §7.2.5). The gateway here is the client: without the setting it
/// has no entry for the VIP after the takeover; with it, one at the master's MAC.
#[test]
fn v6_garp_gateways_get_directed_neighbour_solicitations() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = lab("v6gw", 1, true)?;
    let client = lan.member(1);
    let master_mac = format_mac(mac_of(lan.member(0), "eth0")?);
    for with_gateway in [false, true] {
        client.ip(&["-6", "neigh", "flush", "dev", "eth0"])?;
        let mut conf = conf(200);
        if with_gateway {
            conf = conf.set("garp_gateways", "[\"2001:db8::10\"]");
        }
        let mut routers = vec![Router::new(lan.member(0), &scratch, "r1", &[conf])?];
        routers[0].start()?;
        routers[0].wait_state(INSTANCE, "MASTER", ELECTION)?;
        wait_addr(lan.member(0), "eth0", VIP, true, ELECTION)?;
        if with_gateway {
            poll_until(
                "the gateway's neighbour entry for the VIP",
                ELECTION,
                Duration::from_millis(20),
                || match client_neighbour_mac(client) {
                    Ok(Some(mac)) if mac == master_mac => Ok(()),
                    other => Err(format!("{other:?}")),
                },
            )?;
        } else {
            std::thread::sleep(Duration::from_millis(500));
            let entry = client_neighbour_mac(client)?;
            ensure!(
                entry.is_none(),
                "without garp_gateways the client should have no entry for the VIP (the \
                 control for the case with it): {entry:?}"
            );
        }
        stop_all(&mut routers)?;
    }
    Ok(())
}
