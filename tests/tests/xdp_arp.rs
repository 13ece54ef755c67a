//! The XDP ARP responder (`vipd arp-responder`) against the real kernel.
//!
//! Lab: namespaces r1 and c1 joined by a veth; r1 eth0 192.0.2.1/24, c1 eth0
//! 192.0.2.10/24. The VIP 192.0.2.100 is never configured in r1's kernel, so any reply
//! for it can only come from the XDP program; the negative control at the end proves it.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::Value;
use vipd_tests::packet::{ARP_FRAME_LEN, ARP_REPLY, ArpFrame, ETH_P_ARP, PacketSocket, format_mac};
use vipd_tests::{
    Finished, Netns, Proc, add_addr, addrs, ifindex_of, in_netns, mac_of, require_root,
    veth_between, vipd_bin,
};

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
/// In the same subnet, never in the responder's map.
const UNMANAGED: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 99);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

/// Attaching and loading may take a while on a busy 2-core box; still bounded.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long to wait for an ARP reply before calling it missing (local veth: < 1 ms).
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);
/// After a reply, how long to keep listening for a duplicate (a second answerer).
const DUPLICATE_WINDOW: Duration = Duration::from_millis(300);
/// How long a request for an unmanaged address must stay unanswered.
const SILENCE_WINDOW: Duration = Duration::from_secs(1);

/// r1 (runs the responder) and c1 (asks), with c1's AF_PACKET ARP socket.
struct Lab {
    r1: Netns,
    c1: Netns,
    r1_mac: [u8; 6],
    c1_mac: [u8; 6],
    /// Opened inside c1, bound to c1's eth0; receives ARP only.
    client_arp: PacketSocket,
}

impl Lab {
    fn new() -> anyhow::Result<Lab> {
        let r1 = Netns::new("r1")?;
        let c1 = Netns::new("c1")?;
        veth_between(&r1, "eth0", &c1, "eth0")?;
        add_addr(&r1, "eth0", "192.0.2.1/24")?;
        add_addr(&c1, "eth0", &format!("{CLIENT_IP}/24"))?;
        let r1_addrs = addrs(&r1, "eth0")?;
        ensure!(
            !r1_addrs.iter().any(|a| a.starts_with(&format!("{VIP}/"))),
            "the VIP must not be on r1's eth0, or the kernel could answer: {r1_addrs:?}"
        );
        let client_arp = in_netns(&c1, || PacketSocket::open("eth0", ETH_P_ARP))??;
        Ok(Lab {
            r1_mac: mac_of(&r1, "eth0")?,
            c1_mac: mac_of(&c1, "eth0")?,
            r1,
            c1,
            client_arp,
        })
    }

    /// Starts `vipd arp-responder` on r1's eth0 for the VIP (plus `extra` arguments)
    /// and waits for its `ready` line.
    fn start_responder(&self, extra: &[&str]) -> anyhow::Result<Proc> {
        let bin = vipd_bin();
        let vip = VIP.to_string();
        let mut argv = vec![
            bin.to_str().context("vipd path is not UTF-8")?,
            "arp-responder",
            "--interface",
            "eth0",
            "--vip",
            &vip,
            "--xdp-mode",
            "generic",
        ];
        argv.extend_from_slice(extra);
        let proc = self.r1.spawn(&argv)?;
        proc.wait_for_line(READY_TIMEOUT, |line| line.starts_with("ready"))?;
        Ok(proc)
    }

    /// Sends one broadcast who-has `target` from c1 and returns every reply for it that
    /// arrives: waits up to [`REPLY_TIMEOUT`] for the first, then [`DUPLICATE_WINDOW`]
    /// more so a second answerer would show up as a second entry.
    fn ask(&self, target: Ipv4Addr) -> anyhow::Result<Vec<Vec<u8>>> {
        self.client_arp
            .send(&ArpFrame::request(self.c1_mac, CLIENT_IP, target).to_bytes())?;
        let is_reply = |frame: &[u8]| {
            ArpFrame::parse(frame).is_some_and(|arp| arp.oper == ARP_REPLY && arp.spa == target)
        };
        let Some(first) = self.client_arp.recv_matching(REPLY_TIMEOUT, is_reply)? else {
            return Ok(Vec::new());
        };
        let mut replies = vec![first];
        replies.extend(
            self.client_arp
                .collect_until(Instant::now() + DUPLICATE_WINDOW, is_reply)?,
        );
        Ok(replies)
    }

    /// The exact bytes of the reply to c1's request for the VIP when `owner_mac` owns it.
    fn expected_reply(&self, owner_mac: [u8; 6]) -> [u8; ARP_FRAME_LEN] {
        ArpFrame {
            eth_dst: self.c1_mac,
            eth_src: owner_mac,
            oper: ARP_REPLY,
            sha: owner_mac,
            spa: VIP,
            tha: self.c1_mac,
            tpa: CLIENT_IP,
        }
        .to_bytes()
    }

    /// Runs `arping -c count -w deadline` for the VIP in c1; returns (exit success,
    /// probes sent, replies received) from its summary lines.
    fn arping(&self, count: u32, deadline_s: u32) -> anyhow::Result<(bool, u32, u32)> {
        let (count, deadline_s, vip) = (count.to_string(), deadline_s.to_string(), VIP.to_string());
        let out = self.c1.exec(&[
            "arping",
            "-c",
            &count,
            "-w",
            &deadline_s,
            "-I",
            "eth0",
            &vip,
        ])?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let number_after = |prefix: &str| -> anyhow::Result<u32> {
            let line = stdout
                .lines()
                .find_map(|l| l.trim().strip_prefix(prefix))
                .with_context(|| format!("arping printed no {prefix:?} line:\n{stdout}"))?;
            let number = line.split_whitespace().next().unwrap_or_default();
            number
                .parse()
                .with_context(|| format!("arping {prefix:?} line: {line:?}"))
        };
        Ok((
            out.status.success(),
            number_after("Sent ")?,
            number_after("Received ")?,
        ))
    }
}

/// Stops the responder with SIGTERM and returns its single JSON summary line, parsed.
fn stop_responder(mut proc: Proc) -> anyhow::Result<(Finished, Value)> {
    let done = proc.terminate(Duration::from_secs(10))?;
    ensure!(
        done.status.success(),
        "responder exited with {}; stderr:\n{}",
        done.status,
        done.stderr
    );
    let json_lines: Vec<&str> = done
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .collect();
    let [line] = json_lines[..] else {
        bail!(
            "expected exactly one JSON line on stdout, got:\n{}",
            done.stdout
        );
    };
    let summary: Value = serde_json::from_str(line).with_context(|| format!("parsing {line:?}"))?;
    Ok((done, summary))
}

fn stat(summary: &Value, name: &str) -> anyhow::Result<u64> {
    summary["stats"][name]
        .as_u64()
        .with_context(|| format!("no numeric stats.{name} in {summary}"))
}

fn xdp_line(ns: &Netns) -> anyhow::Result<String> {
    ns.exec_ok(&["ip", "-d", "link", "show", "dev", "eth0"])
}

#[test]
fn xdp_answers_arp_for_the_vip_and_only_while_attached() -> anyhow::Result<()> {
    require_root();
    let lab = Lab::new()?;
    let responder = lab.start_responder(&[])?;
    let link = xdp_line(&lab.r1)?;
    ensure!(
        link.contains("xdpgeneric"),
        "no generic XDP program on r1 eth0:\n{link}"
    );

    // (a) Three requests over a raw socket; each gets exactly one reply, right to the byte.
    let expected = lab.expected_reply(lab.r1_mac);
    let mut vip_requests = 0u64;
    for i in 0..3 {
        let replies = lab.ask(VIP)?;
        vip_requests += 1;
        ensure!(
            replies.len() == 1,
            "request {i}: expected one reply, got {}: {replies:02x?}",
            replies.len()
        );
        let reply = &replies[0];
        // The program rewrites the request in place, so the reply is as long as the
        // request was (42 bytes; veth does not pad).
        assert_eq!(
            reply[..],
            expected[..],
            "request {i}: reply bytes (left) differ from expected (right); \
             r1 eth0 {} c1 eth0 {}",
            format_mac(lab.r1_mac),
            format_mac(lab.c1_mac)
        );
    }

    // (b) arping, as an operator would check. With -w, -c counts replies: it keeps
    // sending (unicast after the first reply) until 3 came back or the deadline hits, so
    // count what it says it sent: the program must have answered every one of those.
    let (ok, sent, received) = lab.arping(3, 3)?;
    ensure!(
        ok && received == 3,
        "arping: success={ok} sent={sent} received={received}"
    );
    vip_requests += u64::from(sent);

    // (c) An address in the subnet that the map does not hold: no reply from anyone.
    let replies = lab.ask(UNMANAGED)?;
    ensure!(
        replies.is_empty(),
        "unexpected reply for {UNMANAGED}: {replies:02x?}"
    );
    // Let the program see the unanswered request before the counters are read (it
    // has, as soon as no reply came, but a SILENCE_WINDOW keeps the claim honest).
    let silence = lab
        .client_arp
        .collect_until(Instant::now() + SILENCE_WINDOW, |f| {
            ArpFrame::parse(f).is_some_and(|a| a.oper == ARP_REPLY && a.spa == UNMANAGED)
        })?;
    ensure!(
        silence.is_empty(),
        "late reply for {UNMANAGED}: {silence:02x?}"
    );

    // (d) SIGTERM: one JSON line with counters that match what we sent.
    let (_done, summary) = stop_responder(responder)?;
    assert_eq!(summary["interface"], "eth0", "{summary}");
    assert_eq!(summary["mode"], "generic", "{summary}");
    assert_eq!(
        summary["ifindex"].as_u64(),
        Some(u64::from(ifindex_of(&lab.r1, "eth0")?)),
        "{summary}"
    );
    let arp_replies = stat(&summary, "arp_replies")?;
    assert_eq!(
        arp_replies, vip_requests,
        "arp_replies vs requests for the VIP: {summary}"
    );
    assert!(stat(&summary, "packets")? >= arp_replies, "{summary}");
    assert!(
        stat(&summary, "arp_passed")? >= 1,
        "the request for {UNMANAGED} passes: {summary}"
    );
    assert_eq!(stat(&summary, "arp_dropped_expired")?, 0, "{summary}");
    assert_eq!(stat(&summary, "arp_malformed")?, 0, "{summary}");

    // (e) Negative control: with the program gone nobody answers, so the replies above
    // came from XDP and not from r1's kernel.
    let link = xdp_line(&lab.r1)?;
    ensure!(
        !link.contains("xdp"),
        "an XDP program is still attached to r1 eth0:\n{link}"
    );
    let (ok, sent, received) = lab.arping(2, 2)?;
    ensure!(
        !ok && received == 0,
        "after detach: arping success={ok} sent={sent} received={received}"
    );
    let replies = lab.ask(VIP)?;
    ensure!(
        replies.is_empty(),
        "reply for the VIP after detach: {replies:02x?}"
    );
    Ok(())
}

#[test]
fn xdp_reply_carries_the_mac_given_with_dash_dash_mac() -> anyhow::Result<()> {
    require_root();
    const OWNER: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
    let lab = Lab::new()?;
    let responder = lab.start_responder(&["--mac", "02:00:00:00:00:01"])?;

    let replies = lab.ask(VIP)?;
    ensure!(
        replies.len() == 1,
        "expected one reply, got {}: {replies:02x?}",
        replies.len()
    );
    // Sender hardware address and Ethernet source both carry the owner MAC: switches
    // learn the virtual MAC from the frame, hosts from the ARP payload (RFC 5798 §7.3).
    assert_eq!(
        replies[0][..],
        lab.expected_reply(OWNER)[..],
        "reply (left) vs expected (right)"
    );

    let (_done, summary) = stop_responder(responder)?;
    assert_eq!(stat(&summary, "arp_replies")?, 1, "{summary}");
    Ok(())
}

#[test]
fn second_responder_on_the_same_interface_fails_and_leaves_the_first_running() -> anyhow::Result<()>
{
    require_root();
    let lab = Lab::new()?;
    let first = lab.start_responder(&[])?;

    let bin = vipd_bin();
    let bin = bin.to_str().context("vipd path is not UTF-8")?;
    let mut second = lab.r1.spawn(&[
        bin,
        "arp-responder",
        "--interface",
        "eth0",
        "--vip",
        "192.0.2.101",
        "--xdp-mode",
        "generic",
    ])?;
    let done = second.wait_timeout(READY_TIMEOUT)?;
    ensure!(
        !done.status.success(),
        "second responder exited successfully: {done:?}"
    );
    ensure!(
        !done.stdout.lines().any(|l| l.starts_with("ready")),
        "second responder claimed to be ready:\n{}",
        done.stdout
    );
    ensure!(
        done.stderr.contains("eth0"),
        "stderr should name the interface:\n{}",
        done.stderr
    );

    // The failed attempt must not have disturbed the first responder.
    let replies = lab.ask(VIP)?;
    ensure!(
        replies.len() == 1,
        "first responder after the failed second: {replies:02x?}"
    );
    let (_done, summary) = stop_responder(first)?;
    assert_eq!(stat(&summary, "arp_replies")?, 1, "{summary}");
    Ok(())
}
