//! The XDP neighbour discovery responder through the daemon: `vipd run` with
//! `xdp = "generic"` on an IPv6 instance, a client that sends neighbour solicitations for
//! the VIP over a packet socket and reads the advertisements that come back.
//!
//! Lab: [`Lan::new_ipv6`] (DAD off); member 0 is the router, member 1 the client
//! (2001:db8::10/64). The kernel of a host without forwarding answers with the Router
//! flag clear; the program sets it (RFC 9568 §6.4.2), which tells the two answerers apart.

use std::net::Ipv6Addr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};

use vipd_tests::packet::{
    ETH_P_IPV6, NeighbourAdvert, PacketSocket, format_mac, neighbour_solicitation_frame,
};
use vipd_tests::vipd::{InstanceConf, Router, Scratch, has_addr, wait_addr};
use vipd_tests::{Lan, Netns, add_addr, in_netns, mac_of, poll_until, require_root, xdp_prog_id};

const VIP: &str = "2001:db8::100";
const VIP_CIDR: &str = "2001:db8::100/64";
const VIP_ADDR: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
const CLIENT_IP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);
const INSTANCE: &str = "VI_6";
const VRID: u8 = 7;
const ELECTION: Duration = Duration::from_secs(5);

static SERIAL: Mutex<()> = Mutex::new(());

/// One scenario at a time: they time leases of a few advert intervals.
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The client's packet socket and MAC.
struct NdpClient {
    socket: PacketSocket,
    mac: [u8; 6],
}

impl NdpClient {
    fn open(ns: &Netns) -> anyhow::Result<NdpClient> {
        Ok(NdpClient {
            socket: in_netns(ns, || PacketSocket::open("eth0", ETH_P_IPV6))??,
            mac: mac_of(ns, "eth0")?,
        })
    }

    /// Solicits the VIP every 20 ms for `duration`; returns the solicited
    /// advertisements for it that came back.
    fn answers_for_vip(&self, duration: Duration) -> anyhow::Result<Vec<NeighbourAdvert>> {
        let request = neighbour_solicitation_frame(self.mac, CLIENT_IP, VIP_ADDR);
        let end = Instant::now() + duration;
        let mut answers = Vec::new();
        while Instant::now() < end {
            self.socket.send(&request)?;
            let round = (Instant::now() + Duration::from_millis(20)).min(end);
            for frame in self.socket.collect_until(round, |_| true)? {
                if let Some(na) = NeighbourAdvert::parse(&frame)
                    && na.target == VIP_ADDR
                    && na.solicited
                {
                    answers.push(na);
                }
            }
        }
        Ok(answers)
    }
}

fn senders(answers: &[NeighbourAdvert]) -> Vec<String> {
    let mut macs: Vec<String> = answers.iter().map(|a| format_mac(a.eth_src)).collect();
    macs.sort();
    macs.dedup();
    macs
}

/// While the daemon runs, the master's program answers the client's solicitations
/// (Router, Solicited and Override set, its MAC in the option, a valid checksum) and
/// counts them. After SIGKILL the kernel still holds the VIP and the program stays
/// attached (pinned link); once the lease has run out, nobody answers: the program drops
/// the solicitations, so the dead node's kernel cannot claim the VIP.
#[test]
fn xdp_answers_solicitations_until_a_killed_daemons_lease_runs_out() -> anyhow::Result<()> {
    require_root();
    let _serial = serial();
    let lan = Lan::new_ipv6("ndp_kill", 2)?;
    let scratch = Scratch::new("ndp_kill")?;
    add_addr(lan.member(1), "eth0", &format!("{CLIENT_IP}/64"))?;
    let client = NdpClient::open(lan.member(1))?;
    let conf = InstanceConf::new(INSTANCE, VRID, 200, VIP_CIDR).set("xdp", "\"generic\"");
    let mut router = Router::new(lan.member(0), &scratch, "r0", &[conf])?;
    router.start()?;
    router.wait_state(INSTANCE, "MASTER", ELECTION)?;
    wait_addr(lan.member(0), "eth0", VIP, true, ELECTION)?;
    let owner_mac = mac_of(lan.member(0), "eth0")?;
    let replies_before = router.xdp_counter("eth0", "ndp_replies")?;

    let answers = client.answers_for_vip(Duration::from_millis(300))?;
    ensure!(
        !answers.is_empty(),
        "nobody answered the solicitations for {VIP}"
    );
    for na in &answers {
        ensure!(
            na.eth_src == owner_mac && na.target_mac == Some(owner_mac) && na.src == VIP_ADDR,
            "answer not from the master {}: {na:?}",
            format_mac(owner_mac)
        );
        ensure!(
            na.router && na.override_flag && na.checksum_ok,
            "the program's answer has R and O set and a valid checksum (the kernel's \
             has R clear): {na:?}"
        );
    }
    poll_until(
        "the master's ndp_replies counter to count the answers",
        ELECTION,
        Duration::from_millis(20),
        || match router.xdp_counter("eth0", "ndp_replies") {
            Ok(v) if v >= replies_before + answers.len() as u64 => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )?;

    router.kill()?;
    let dead = lan.member(0);
    ensure!(
        has_addr(dead, "eth0", VIP)?,
        "SIGKILL must leave the VIP on the kernel (the case under test)"
    );
    xdp_prog_id(dead, "eth0")?
        .context("the XDP program must stay attached after SIGKILL (pinned link)")?;
    // The lease is three advert intervals (150 ms at the tests' 50 ms).
    std::thread::sleep(Duration::from_millis(300));
    let after = client.answers_for_vip(Duration::from_millis(500))?;
    ensure!(
        after.is_empty(),
        "after the daemon's death and its lease, the VIP was still claimed by {:?}",
        senders(&after)
    );
    ensure!(
        has_addr(dead, "eth0", VIP)?,
        "the dead node's kernel still holds the VIP (so its silence is XDP's doing)"
    );
    Ok(())
}

/// Control for the test above: with `xdp = "off"` the dead node's kernel goes on
/// answering for the VIP after SIGKILL (keepalived's behaviour), with the Router flag
/// clear.
#[test]
fn without_xdp_a_killed_daemons_kernel_keeps_answering() -> anyhow::Result<()> {
    require_root();
    let _serial = serial();
    let lan = Lan::new_ipv6("ndp_off", 2)?;
    let scratch = Scratch::new("ndp_off")?;
    add_addr(lan.member(1), "eth0", &format!("{CLIENT_IP}/64"))?;
    let client = NdpClient::open(lan.member(1))?;
    let conf = InstanceConf::new(INSTANCE, VRID, 200, VIP_CIDR);
    let mut router = Router::new(lan.member(0), &scratch, "r0", &[conf])?;
    router.start()?;
    router.wait_state(INSTANCE, "MASTER", ELECTION)?;
    wait_addr(lan.member(0), "eth0", VIP, true, ELECTION)?;
    router.kill()?;
    std::thread::sleep(Duration::from_millis(300));
    let after = client.answers_for_vip(Duration::from_millis(500))?;
    ensure!(
        !after.is_empty() && after.iter().all(|na| !na.router),
        "without XDP the dead node's kernel should answer (R clear): {after:?}"
    );
    Ok(())
}
