//! VMAC (keepalived `use_vmac`): the VIPs live on a macvlan with the virtual router MAC
//! 00:00:5e:00:01:{VRID} (RFC 9568 §7.3), so a client's neighbour entry for a VIP
//! names that MAC whichever router is Active, and a failover only moves the switch's
//! MAC table.
//!
//! Lab: a bridged LAN whose bridge (`br0` in the switch namespace) is the switch whose
//! MAC table (`bridge fdb`) the tests read; routers on members 0 and 1 (192.0.2.1,
//! 192.0.2.2), a client on member 2 (192.0.2.10); VRID 7, VIP 192.0.2.100/24, 100 ms
//! adverts. Peers: a second vipd, keepalived 2.2.7 (`use_vmac`), FRR 8.4 vrrpd (which
//! always puts its VIP on a macvlan), each against vipd with and without VMAC; and the
//! two IPv4 checksum forms (RFC 5798 with the pseudo-header, RFC 9568 without) against
//! both.

use std::time::Duration;

use anyhow::{Context, ensure};

use vipd_tests::frr::Frr;
use vipd_tests::keepalived::Keepalived;
use vipd_tests::vipd::{InstanceConf, Router, has_addr, router_lab, stop_all, wait_addr};
use vipd_tests::wait::poll_until;
use vipd_tests::{Lan, Netns, require_root};

const VIP: &str = "192.0.2.100";
const VIP_CIDR: &str = "192.0.2.100/24";
const VRID: u8 = 7;
const VMAC: &str = "00:00:5e:00:01:07";
/// vipd's and keepalived's default VMAC name for VRID 7.
const VMAC_DEV: &str = "vrrp.7";
const CLIENT: usize = 2;
const ELECTION: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(20);

fn vipd_conf(priority: u8, vmac: bool) -> InstanceConf {
    let conf = InstanceConf::new("VI_1", VRID, priority, VIP_CIDR).set("advert_int", "\"100ms\"");
    if vmac {
        conf.set("use_vmac", "true")
    } else {
        conf
    }
}

/// The MAC `client` has for `ip` on eth0, if it has an entry with an address.
fn neighbour_mac(client: &Netns, ip: &str) -> anyhow::Result<Option<String>> {
    let out = client.ip(&["neigh", "show", ip, "dev", "eth0"])?;
    Ok(out
        .split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .map(str::to_owned))
}

/// One ping from the client to the VIP (answered: the VIP is reachable).
fn ping(client: &Netns, ip: &str) -> anyhow::Result<()> {
    client
        .exec_ok(&["ping", "-c", "1", "-W", "1", ip])
        .with_context(|| format!("pinging {ip}"))?;
    Ok(())
}

/// Pings the VIP until it answers (an election may just have moved it).
fn wait_ping(client: &Netns, ip: &str) -> anyhow::Result<()> {
    poll_until(&format!("{ip} to answer ping"), ELECTION, POLL, || {
        ping(client, ip).map_err(|e| format!("{e:#}"))
    })
}

/// The MACs that answer an ARP request for `ip` from the client (iputils arping, two
/// requests), lower case, sorted, without repeats.
fn arp_answers(client: &Netns, ip: &str) -> anyhow::Result<Vec<String>> {
    let out = client.exec(&["arping", "-c", "2", "-w", "2", "-I", "eth0", ip])?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut macs: Vec<String> = text
        .lines()
        .filter(|line| line.contains("reply from"))
        .filter_map(|line| {
            let start = line.find('[')? + 1;
            let end = line.find(']')?;
            line.get(start..end).map(str::to_ascii_lowercase)
        })
        .collect();
    macs.sort();
    macs.dedup();
    Ok(macs)
}

/// Polls until exactly `expected` answer ARP for `ip`.
fn wait_arp_answers(client: &Netns, ip: &str, expected: &[&str]) -> anyhow::Result<()> {
    poll_until(
        &format!("{expected:?} to answer ARP for {ip}"),
        ELECTION,
        POLL,
        || match arp_answers(client, ip) {
            Ok(macs) if macs == expected => Ok(()),
            Ok(macs) => Err(format!("{macs:?}")),
            Err(e) => Err(format!("{e:#}")),
        },
    )
}

/// The switch port the bridge last learned `mac` on (`p0` is member 0).
fn fdb_port(lan: &Lan, mac: &str) -> anyhow::Result<Option<String>> {
    let out = lan
        .switch()
        .exec_ok(&["bridge", "fdb", "show", "br", "br0"])?;
    Ok(out
        .lines()
        .filter(|line| line.starts_with(mac) && !line.contains("permanent"))
        .find_map(|line| {
            line.split_whitespace()
                .skip_while(|w| *w != "dev")
                .nth(1)
                .map(str::to_owned)
        }))
}

fn wait_fdb_port(lan: &Lan, mac: &str, port: &str) -> anyhow::Result<()> {
    poll_until(
        &format!("{mac} learned on {port}"),
        ELECTION,
        POLL,
        || match fdb_port(lan, mac) {
            Ok(Some(p)) if p == port => Ok(()),
            Ok(other) => Err(format!("{other:?}")),
            Err(e) => Err(format!("{e:#}")),
        },
    )
}

/// Polls until instance VI_1's counter `counter` reaches `at_least`.
fn wait_counter(router: &Router<'_>, counter: &str, at_least: u64) -> anyhow::Result<()> {
    poll_until(
        &format!("{counter} ≥ {at_least}"),
        ELECTION,
        POLL,
        || match router.counter("VI_1", counter) {
            Ok(n) if n >= at_least => Ok(()),
            Ok(n) => Err(format!("{n}")),
            Err(e) => Err(format!("{e:#}")),
        },
    )
    .with_context(|| format!("{}", router.status().unwrap_or_default()))
}

fn sysctl(ns: &Netns, path: &str) -> anyhow::Result<String> {
    Ok(ns
        .exec_ok(&["cat", &format!("/proc/sys/net/{path}")])?
        .trim()
        .to_owned())
}

fn link_exists(ns: &Netns, dev: &str) -> bool {
    ns.ip(&["link", "show", dev]).is_ok()
}

fn link_mac(ns: &Netns, dev: &str) -> anyhow::Result<String> {
    let out = ns.ip(&["-br", "link", "show", dev])?;
    out.split_whitespace()
        .nth(2)
        .map(str::to_owned)
        .context("no MAC in `ip -br link`")
}

/// Two vipd with `use_vmac` (XDP off or generic): the master's VIP is on its VMAC, not
/// on eth0; the client resolves the VIP to the virtual MAC; after the master stops the
/// other takes over and the client's entry is unchanged, while the switch learned the
/// virtual MAC on the new master's port. The stopped router's VMAC is gone and its
/// eth0 sysctls are back.
fn vipd_pair(tag: &str, xdp: &str) -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = router_lab(tag, 2, true)?;
    let arp_ignore_before = sysctl(lan.member(0), "ipv4/conf/eth0/arp_ignore")?;
    let xdp_value = format!("{xdp:?}");
    let mut routers = vec![
        Router::new(
            lan.member(0),
            &scratch,
            "r1",
            &[vipd_conf(200, true).set("xdp", &xdp_value)],
        )?,
        Router::new(
            lan.member(1),
            &scratch,
            "r2",
            &[vipd_conf(100, true).set("xdp", &xdp_value)],
        )?,
    ];
    for router in &mut routers {
        router.start()?;
    }
    routers[0].wait_state("VI_1", "MASTER", ELECTION)?;
    routers[1].wait_state("VI_1", "BACKUP", ELECTION)?;
    for member in 0..2 {
        let ns = lan.member(member);
        ensure!(link_mac(ns, VMAC_DEV)? == VMAC, "member {member}'s VMAC");
        ensure!(sysctl(ns, "ipv4/conf/eth0/arp_ignore")? == "1");
        ensure!(sysctl(ns, &format!("ipv4/conf/{VMAC_DEV}/arp_ignore"))? == "1");
        ensure!(sysctl(ns, &format!("ipv6/conf/{VMAC_DEV}/disable_ipv6"))? == "1");
        ensure!(!has_addr(ns, "eth0", VIP)?, "member {member}: VIP on eth0");
    }
    wait_addr(lan.member(0), VMAC_DEV, VIP, true, ELECTION)?;
    ensure!(!has_addr(lan.member(1), VMAC_DEV, VIP)?);

    let client = lan.member(CLIENT);
    wait_ping(client, VIP)?;
    let before = neighbour_mac(client, VIP)?;
    ensure!(
        before.as_deref() == Some(VMAC),
        "client resolved the VIP to {before:?}"
    );
    // The master's adverts and gratuitous ARPs leave from the virtual MAC.
    wait_fdb_port(&lan, VMAC, &Lan::port_name(0))?;

    routers[0].stop(Duration::from_secs(5))?;
    routers[1].wait_state("VI_1", "MASTER", ELECTION)?;
    wait_addr(lan.member(1), VMAC_DEV, VIP, true, ELECTION)?;
    wait_fdb_port(&lan, VMAC, &Lan::port_name(1))?;
    wait_ping(client, VIP)?;
    let after = neighbour_mac(client, VIP)?;
    ensure!(
        after == before,
        "the client's neighbour entry changed from {before:?} to {after:?}"
    );
    // The stopped router removed its VMAC and restored eth0's ARP sysctls.
    ensure!(!link_exists(lan.member(0), VMAC_DEV), "r1 left {VMAC_DEV}");
    ensure!(sysctl(lan.member(0), "ipv4/conf/eth0/arp_ignore")? == arp_ignore_before);
    stop_all(&mut routers)
}

#[test]
fn vipd_pair_with_vmac_keeps_the_client_neighbour_entry() -> anyhow::Result<()> {
    vipd_pair("vmac", "off")
}

#[test]
fn vipd_pair_with_vmac_and_xdp_on_the_vmac() -> anyhow::Result<()> {
    vipd_pair("vmacx", "generic")
}

/// `vmac_xmit_base`: adverts leave from eth0's own MAC, the VIP is still on the VMAC and
/// the gratuitous ARPs come from the virtual MAC.
#[test]
fn vmac_xmit_base_sends_adverts_from_the_parent() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = router_lab("vmacb", 2, true)?;
    let conf = |priority| vipd_conf(priority, true).set("vmac_xmit_base", "true");
    let mut routers = vec![
        Router::new(lan.member(0), &scratch, "r1", &[conf(200)])?,
        Router::new(lan.member(1), &scratch, "r2", &[conf(100)])?,
    ];
    for router in &mut routers {
        router.start()?;
    }
    routers[0].wait_state("VI_1", "MASTER", ELECTION)?;
    routers[1].wait_instance("BACKUP of 192.0.2.1", "VI_1", ELECTION, |i| {
        i["state"] == "BACKUP" && i["master_address"] == "192.0.2.1"
    })?;
    wait_addr(lan.member(0), VMAC_DEV, VIP, true, ELECTION)?;
    let client = lan.member(CLIENT);
    wait_ping(client, VIP)?;
    ensure!(neighbour_mac(client, VIP)?.as_deref() == Some(VMAC));
    // The backup hears the master's adverts, which came from eth0.
    let eth0_mac = link_mac(lan.member(0), "eth0")?;
    wait_fdb_port(&lan, &eth0_mac, &Lan::port_name(0))?;
    wait_counter(&routers[1], "adverts_received", 3)?;
    routers[1].assert_state_holds("VI_1", "BACKUP", Duration::from_millis(300))?;
    stop_all(&mut routers)
}

// ---- keepalived 2.2.7 ----

fn keepalived_conf(priority: u8, vmac: bool) -> String {
    let vmac = if vmac { "  use_vmac\n" } else { "" };
    format!(
        "global_defs {{\n  router_id ka\n}}\n\
         vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n{vmac}  \
         virtual_router_id {VRID}\n  priority {priority}\n  version 3\n  advert_int 0.1\n  \
         virtual_ipaddress {{\n    {VIP_CIDR}\n  }}\n}}\n"
    )
}

/// keepalived (member 0) and vipd (member 1), either with or without VMAC: keepalived
/// (150) is master, vipd follows; keepalived stops and vipd takes over; the client's
/// neighbour entry moves to the new holder's MAC only when the two disagree.
fn keepalived_interop(tag: &str, ka_vmac: bool, vipd_vmac: bool) -> anyhow::Result<()> {
    require_root();
    if !vipd_tests::keepalived::available() {
        eprintln!("keepalived not installed; skipping");
        return Ok(());
    }
    let (lan, scratch) = router_lab(tag, 2, true)?;
    let mut ka = Keepalived::new(
        lan.member(0),
        &scratch,
        "ka",
        &keepalived_conf(150, ka_vmac),
    )?;
    let mut vipd = Router::new(
        lan.member(1),
        &scratch,
        "vipd",
        &[vipd_conf(100, vipd_vmac)],
    )?;
    ka.start()?;
    ka.wait_state("VI_1", "MASTER", ELECTION)?;
    vipd.start()?;
    vipd.wait_instance("BACKUP of 192.0.2.1", "VI_1", ELECTION, |i| {
        i["state"] == "BACKUP" && i["master_address"] == "192.0.2.1"
    })?;
    vipd.assert_state_holds("VI_1", "BACKUP", Duration::from_millis(500))?;
    let ka_dev = if ka_vmac { VMAC_DEV } else { "eth0" };
    let vipd_dev = if vipd_vmac { VMAC_DEV } else { "eth0" };
    wait_addr(lan.member(0), ka_dev, VIP, true, ELECTION)?;
    let client = lan.member(CLIENT);
    let ka_mac = if ka_vmac {
        VMAC.to_owned()
    } else {
        link_mac(lan.member(0), "eth0")?
    };
    // Who answers ARP for the VIP (arping: the client's own neighbour entry would
    // follow keepalived's ARP requests, which name the VIP from eth0's MAC).
    wait_arp_answers(client, VIP, &[ka_mac.as_str()])?;
    wait_ping(client, VIP)?;
    // keepalived sums the RFC 5798 pseudo-header into its IPv4 VRRPv3 checksum.
    wait_counter(&vipd, "rx_checksum_ipv4_pseudo_header", 3)?;

    ka.stop(Duration::from_secs(5))?;
    vipd.wait_state("VI_1", "MASTER", ELECTION)?;
    wait_addr(lan.member(1), vipd_dev, VIP, true, ELECTION)?;
    wait_ping(client, VIP)?;
    let vipd_mac = if vipd_vmac {
        VMAC.to_owned()
    } else {
        link_mac(lan.member(1), "eth0")?
    };
    // The new holder's gratuitous ARPs moved the client's entry to its MAC (with a VMAC
    // on keepalived's side too it had to move back from keepalived's eth0, above).
    poll_until(
        "the client's entry to name the new holder",
        ELECTION,
        POLL,
        || match neighbour_mac(client, VIP) {
            Ok(Some(mac)) if mac == vipd_mac => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )?;
    stop_all(&mut [vipd])
}

#[test]
fn keepalived_vmac_and_vipd_vmac() -> anyhow::Result<()> {
    keepalived_interop("vmka1", true, true)
}

#[test]
fn keepalived_vmac_and_vipd_without() -> anyhow::Result<()> {
    keepalived_interop("vmka2", true, false)
}

#[test]
fn keepalived_without_and_vipd_vmac() -> anyhow::Result<()> {
    keepalived_interop("vmka3", false, true)
}

/// vipd sending the RFC 9568 checksum (message only) against keepalived 2.2.7, which
/// knows only the RFC 5798 form (`v3_checksum_as_v2` came in 2.2.8). vipd accepts both:
/// as keepalived's backup it follows keepalived and counts the pseudo-header form. As
/// master it is not heard: a keepalived of lower priority logs the bad checksum and
/// takes over too (and, as observed, stops advertising while our adverts keep arriving),
/// so the segment has two masters. This is why vipd's default is the pseudo-header.
#[test]
fn keepalived_rejects_the_rfc_9568_checksum_vipd_accepts_both() -> anyhow::Result<()> {
    require_root();
    if !vipd_tests::keepalived::available() {
        eprintln!("keepalived not installed; skipping");
        return Ok(());
    }
    let (lan, scratch) = router_lab("vmkac", 2, false)?;
    let conf = vipd_conf(100, true).set("v3_checksum", "\"message_only\"");
    let mut vipd = Router::new(lan.member(1), &scratch, "vipd", &[conf])?;
    let mut ka = Keepalived::new(lan.member(0), &scratch, "ka", &keepalived_conf(150, true))?;
    ka.start()?;
    ka.wait_state("VI_1", "MASTER", ELECTION)?;
    vipd.start()?;
    vipd.wait_instance("BACKUP of 192.0.2.1", "VI_1", ELECTION, |i| {
        i["state"] == "BACKUP" && i["master_address"] == "192.0.2.1"
    })?;
    wait_counter(&vipd, "rx_checksum_ipv4_pseudo_header", 3)?;
    vipd.assert_state_holds("VI_1", "BACKUP", Duration::from_millis(500))?;

    // keepalived's priority-0 advert (SIGTERM) hands over to vipd; a keepalived of
    // lower priority started then cannot verify vipd's adverts.
    ka.stop(Duration::from_secs(5))?;
    vipd.wait_state("VI_1", "MASTER", ELECTION)?;
    let mut low = Keepalived::new(
        lan.member(0),
        &scratch,
        "ka-low",
        &keepalived_conf(50, true),
    )?;
    low.start()?;
    low.wait_log("a checksum complaint", ELECTION, |line| {
        line.contains("Invalid VRRPv3 checksum")
    })?;
    low.wait_state("VI_1", "MASTER", ELECTION)?;
    ensure!(vipd.state("VI_1")? == "MASTER");
    stop_all(&mut [vipd])
}

// ---- FRR 8.4 vrrpd (its VIP always lives on a macvlan with the virtual MAC) ----

/// FRR (150) is master, vipd (100, with or without VMAC) follows; FRR lowered to 50 →
/// vipd takes over; the client reaches the VIP throughout, and with VMAC on vipd's
/// side its neighbour entry never changes.
fn frr_interop(tag: &str, vipd_vmac: bool) -> anyhow::Result<()> {
    require_root();
    if !vipd_tests::frr::available() {
        eprintln!("FRR not installed; skipping");
        return Ok(());
    }
    let (lan, scratch) = router_lab(tag, 2, true)?;
    // FRR leaves the ARP sysctls to the operator (vipd and keepalived set them for a
    // VMAC): without them FRR's eth0 answers ARP for the VIP too, in every state, since
    // its VIP stays on the (protodown) macvlan.
    lan.member(0).sysctl("net.ipv4.conf.eth0.arp_ignore", "1")?;
    lan.member(0)
        .sysctl("net.ipv4.conf.eth0.arp_announce", "2")?;
    let frr = Frr::start(lan.member(0), &scratch, "frr", VRID, 150, 100, VIP_CIDR)?;
    frr.wait_state("Master", ELECTION)?;
    let mut vipd = Router::new(
        lan.member(1),
        &scratch,
        "vipd",
        &[vipd_conf(100, vipd_vmac)],
    )?;
    vipd.start()?;
    vipd.wait_instance("BACKUP of 192.0.2.1", "VI_1", ELECTION, |i| {
        i["state"] == "BACKUP" && i["master_address"] == "192.0.2.1"
    })?;
    let client = lan.member(CLIENT);
    // FRR's macvlan answers ARP (arping: FRR's own ARP requests from eth0 would name
    // the VIP with eth0's MAC in the client's table, as keepalived's do).
    wait_arp_answers(client, VIP, &[VMAC])?;
    wait_ping(client, VIP)?;
    // FRR 8.4 sums the pseudo-header too (it has no switch for it).
    wait_counter(&vipd, "rx_checksum_ipv4_pseudo_header", 3)?;

    frr.set_priority(50)?;
    vipd.wait_state("VI_1", "MASTER", ELECTION)?;
    frr.wait_state("Backup", ELECTION)?;
    let dev = if vipd_vmac { VMAC_DEV } else { "eth0" };
    wait_addr(lan.member(1), dev, VIP, true, ELECTION)?;
    wait_ping(client, VIP)?;
    let vipd_mac = if vipd_vmac {
        VMAC.to_owned()
    } else {
        link_mac(lan.member(1), "eth0")?
    };
    wait_arp_answers(client, VIP, &[vipd_mac.as_str()])?;
    poll_until(
        "the client's entry to name vipd",
        ELECTION,
        POLL,
        || match neighbour_mac(client, VIP) {
            Ok(Some(mac)) if mac == vipd_mac => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )?;
    if vipd_vmac {
        wait_fdb_port(&lan, VMAC, &Lan::port_name(1))?;
    }
    stop_all(&mut [vipd])?;
    frr.wait_state("Master", ELECTION)
}

#[test]
fn frr_and_vipd_with_vmac() -> anyhow::Result<()> {
    frr_interop("vmfr1", true)
}

#[test]
fn frr_and_vipd_without_vmac() -> anyhow::Result<()> {
    frr_interop("vmfr2", false)
}

/// vipd with the RFC 9568 checksum as master: FRR 8.4 (no checksum switch) discards
/// its adverts and takes over too, while vipd keeps hearing FRR (pseudo-header form).
#[test]
fn frr_rejects_the_rfc_9568_checksum_vipd_accepts_both() -> anyhow::Result<()> {
    require_root();
    if !vipd_tests::frr::available() {
        eprintln!("FRR not installed; skipping");
        return Ok(());
    }
    let (lan, scratch) = router_lab("vmfrc", 2, false)?;
    let conf = vipd_conf(200, true).set("v3_checksum", "\"message_only\"");
    let mut vipd = Router::new(lan.member(1), &scratch, "vipd", &[conf])?;
    vipd.start()?;
    vipd.wait_state("VI_1", "MASTER", ELECTION)?;
    let frr = Frr::start(lan.member(0), &scratch, "frr", VRID, 100, 100, VIP_CIDR)?;
    frr.wait_state("Master", ELECTION)?;
    wait_counter(&vipd, "rx_checksum_ipv4_pseudo_header", 3)?;
    // FRR discards vipd's adverts (it logs why only with `debug vrrp protocol`), so it
    // stays Master beside vipd; with the pseudo-header form it yields (above).
    vipd.assert_state_holds("VI_1", "MASTER", Duration::from_millis(500))?;
    ensure!(frr.state()? == "Master", "{}", frr.logs());
    stop_all(&mut [vipd])
}

// ---- IPv6: 00:00:5e:00:02:{VRID} ----

/// Two vipd with `use_vmac` on IPv6 (2001:db8::100/64, routers with link-local
/// addresses only): the VMAC `vrrp6.7` has the IPv6 virtual MAC and no link-local
/// address of its own (the routers' would be identical), the VIP lives on it, the client
/// resolves the VIP to the virtual MAC, and the entry survives a failover.
#[test]
fn vipd_pair_with_ipv6_vmac() -> anyhow::Result<()> {
    const VIP6: &str = "2001:db8::100";
    const VMAC6: &str = "00:00:5e:00:02:07";
    const VMAC6_DEV: &str = "vrrp6.7";
    require_root();
    let lan = Lan::new_ipv6("vmac6", 3)?;
    vipd_tests::add_addr(lan.member(CLIENT), "eth0", "2001:db8::10/64")?;
    let scratch = vipd_tests::vipd::Scratch::new("vmac6")?;
    let conf = |priority| {
        InstanceConf::new("VI_1", VRID, priority, "2001:db8::100/64")
            .set("advert_int", "\"100ms\"")
            .set("use_vmac", "true")
    };
    let mut routers = vec![
        Router::new(lan.member(0), &scratch, "r1", &[conf(200)])?,
        Router::new(lan.member(1), &scratch, "r2", &[conf(100)])?,
    ];
    for router in &mut routers {
        router.start()?;
    }
    routers[0].wait_state("VI_1", "MASTER", ELECTION)?;
    routers[1].wait_state("VI_1", "BACKUP", ELECTION)?;
    for member in 0..2 {
        let ns = lan.member(member);
        ensure!(link_mac(ns, VMAC6_DEV)? == VMAC6, "member {member}'s VMAC");
        let link_locals = ns.ip(&["-6", "addr", "show", "dev", VMAC6_DEV, "scope", "link"])?;
        ensure!(
            link_locals.trim().is_empty(),
            "member {member}: {link_locals}"
        );
    }
    wait_addr(lan.member(0), VMAC6_DEV, VIP6, true, ELECTION)?;
    let client = lan.member(CLIENT);
    let ping6 = || -> anyhow::Result<()> {
        poll_until(&format!("{VIP6} to answer ping"), ELECTION, POLL, || {
            client
                .exec_ok(&["ping", "-6", "-c", "1", "-W", "1", VIP6])
                .map(drop)
                .map_err(|e| format!("{e:#}"))
        })
    };
    ping6()?;
    let before = neighbour_mac(client, VIP6)?;
    ensure!(
        before.as_deref() == Some(VMAC6),
        "client resolved the VIP to {before:?}"
    );
    wait_fdb_port(&lan, VMAC6, &Lan::port_name(0))?;
    routers[1].assert_state_holds("VI_1", "BACKUP", Duration::from_millis(300))?;

    routers[0].stop(Duration::from_secs(5))?;
    routers[1].wait_state("VI_1", "MASTER", ELECTION)?;
    wait_addr(lan.member(1), VMAC6_DEV, VIP6, true, ELECTION)?;
    wait_fdb_port(&lan, VMAC6, &Lan::port_name(1))?;
    // The master's adverts themselves come from the virtual MAC (RFC 9568 §7.2), so the
    // switch relearns it within an advert interval however it lost it (on a real LAN:
    // the old master's MLD leave as it dropped the VIP, last seen from its port). With
    // adverts from the parent's MAC only the announcements taught it, and a switch that
    // heard the old master last kept sending clients there.
    let adverts = client.exec_ok(&[
        "timeout", "5", "tcpdump", "-i", "eth0", "-e", "-nn", "-c", "3", "ip6", "proto", "112",
    ])?;
    let lines: Vec<&str> = adverts.lines().filter(|l| l.contains(" > ")).collect();
    ensure!(
        lines.len() == 3
            && lines
                .iter()
                .all(|l| l.contains(&format!("{VMAC6} > 33:33:00:00:00:12"))),
        "the master's adverts must come from the virtual MAC:\n{adverts}"
    );
    ping6()?;
    let after = neighbour_mac(client, VIP6)?;
    ensure!(
        after == before,
        "the client's entry changed from {before:?} to {after:?}"
    );
    ensure!(
        !link_exists(lan.member(0), VMAC6_DEV),
        "r1 left {VMAC6_DEV}"
    );
    stop_all(&mut routers)
}

/// A vipd killed with SIGKILL leaves its VMAC (and the VIP on it); the next start adopts
/// the VMAC, clears the stale VIP, wins the election again, and a clean stop removes
/// the VMAC.
#[test]
fn vmac_left_by_a_killed_vipd_is_adopted() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = router_lab("vmack", 1, false)?;
    let mut router = Router::new(
        lan.member(0),
        &scratch,
        "r1",
        &[vipd_conf(200, true).set("xdp", "\"generic\"")],
    )?;
    router.start()?;
    router.wait_state("VI_1", "MASTER", ELECTION)?;
    wait_addr(lan.member(0), VMAC_DEV, VIP, true, ELECTION)?;
    router.kill()?;
    ensure!(
        link_exists(lan.member(0), VMAC_DEV),
        "the VMAC went with vipd"
    );
    router.start()?;
    router.wait_state("VI_1", "MASTER", ELECTION)?;
    wait_addr(lan.member(0), VMAC_DEV, VIP, true, ELECTION)?;
    let logs = router.plain_logs();
    ensure!(logs.contains("adopting the VMAC"), "{logs}");
    ensure!(link_mac(lan.member(0), VMAC_DEV)? == VMAC);
    stop_all(std::slice::from_mut(&mut router))?;
    ensure!(
        !link_exists(lan.member(0), VMAC_DEV),
        "the VMAC outlived vipd"
    );
    Ok(())
}
