//! The wire check: what the client's interface saw during a failover, from a packet
//! capture, so that a bug in the bench's own pinger cannot hide (or invent) an outage.
//!
//! [`Capture`] runs tcpdump in the client's namespace on its `eth0` (not promiscuous,
//! bounded by `timeout`), writing ARP and ICMP frames to a pcap file in the bench's
//! scratch directory. Afterwards `tcpdump -r -n -e -tt` decodes the file; [`parse`]
//! keeps, per frame, the capture time, the Ethernet source and whether it is an echo
//! reply from the VIP or an ARP frame sent for the VIP (gratuitous request or reply).
//! [`outage`] then measures the outage on the wire the way the pinger measures it.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use vipd_tests::netns::Netns;
use vipd_tests::proc::Proc;

/// A MAC address.
pub type Mac = [u8; 6];

/// What a captured frame is, as far as the wire check cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    /// ICMP echo reply with the VIP as source.
    EchoReply,
    /// ICMP echo request to the VIP, from the client: a gap in these is the client
    /// (the bench's pinger) not sending, not the routers not answering.
    EchoRequest,
    /// ARP with the VIP as sender: a gratuitous request ("who-has VIP tell VIP") or a
    /// reply ("VIP is-at MAC", gratuitous or answering the client).
    ArpForVip,
}

/// One frame of interest.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Frame {
    /// Capture time, seconds since the Unix epoch (tcpdump's clock is the wall clock).
    pub t: f64,
    /// Ethernet source.
    pub src: Mac,
    /// Ethernet destination (all ones for a broadcast).
    pub dst: Mac,
    /// What it is.
    pub what: What,
    /// An echo request's or reply's (id, seq): which reply answers which request.
    pub echo: Option<(u16, u16)>,
}

/// tcpdump writing `arp or icmp` on the client's `eth0` to a pcap file.
pub struct Capture {
    proc: Proc,
    file: PathBuf,
}

impl Capture {
    /// Starts tcpdump in `ns` writing to `dir/name.pcap`, for at most `limit`, and
    /// returns once it is listening (bounded wait).
    pub fn start(ns: &Netns, dir: &Path, name: &str, limit: Duration) -> anyhow::Result<Capture> {
        let file = dir.join(format!("{name}.pcap"));
        let path = file.to_string_lossy().into_owned();
        let secs = limit.as_secs().max(1).to_string();
        // --immediate-mode: without it packets wait in the kernel's capture ring for a
        // block to fill or time out, and a capture stopped soon after the event held
        // none of them (seen: "8 packets received by filter, 0 captured"). -U: every
        // packet is flushed to the file as it comes. -Z root: tcpdump would otherwise
        // drop to its own user and could not write in the root-owned scratch
        // directory. -p: the client's interface stays as it was (not promiscuous): the
        // capture sees what the client's stack sees.
        let proc = ns.spawn(&[
            "timeout",
            "-s",
            "INT",
            &secs,
            "tcpdump",
            "-i",
            "eth0",
            "-p",
            "-n",
            "-U",
            "--immediate-mode",
            "-Z",
            "root",
            "-s",
            "128",
            "-w",
            &path,
            "arp or icmp",
        ])?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while !proc.stderr().contains("listening on") {
            if Instant::now() >= deadline {
                bail!(
                    "tcpdump in the client did not start listening within 5 s:\n{}",
                    proc.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(Capture { proc, file })
    }

    /// Stops the capture (SIGINT, which `timeout` passes on) and decodes the frames
    /// about `vip`. With `keep`, the pcap is also copied to `keep` (a directory).
    pub fn finish(mut self, vip: Ipv4Addr, keep: Option<&Path>) -> anyhow::Result<Vec<Frame>> {
        self.proc.signal(libc::SIGINT)?;
        let done = self
            .proc
            .wait_timeout(Duration::from_secs(5))
            .context("stopping tcpdump in the client")?;
        // A capture that lost frames could show a gap that was not on the wire.
        let dropped: u64 = done
            .stderr
            .lines()
            .filter(|l| l.contains("packets dropped by"))
            .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
            .sum();
        if dropped > 0 {
            bail!("tcpdump in the client dropped {dropped} packets");
        }
        let out = std::process::Command::new("tcpdump")
            .args(["-r"])
            .arg(&self.file)
            .args(["-n", "-e", "-tt"])
            .output()
            .context("running tcpdump -r")?;
        if !out.status.success() {
            bail!(
                "tcpdump -r {} failed: {}",
                self.file.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        // VIPD_BENCH_KEEP_PCAP=DIR keeps every capture there, to read a rep frame by
        // frame; `keep` keeps this one.
        let keep = keep
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("VIPD_BENCH_KEEP_PCAP").map(PathBuf::from));
        if let Some(dir) = keep
            && let Some(name) = self.file.file_name()
        {
            std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::copy(&self.file, dir.join(name)))
                .with_context(|| format!("keeping the capture in {}", dir.display()))?;
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let frames = parse(&text, vip);
        if frames.is_empty() {
            bail!(
                "no frame about {vip} in {} ({} lines decoded); tcpdump said: {}",
                self.file.display(),
                text.lines().count(),
                done.stderr.trim().replace('\n', "; ")
            );
        }
        Ok(frames)
    }
}

/// The frames about `vip` in `tcpdump -n -e -tt` output; other lines are skipped.
pub fn parse(text: &str, vip: Ipv4Addr) -> Vec<Frame> {
    let echo_reply = format!(": {vip} > ");
    let echo_request = format!(" > {vip}: ");
    let garp = format!("Request who-has {vip} ");
    let garp_tell = format!(" tell {vip},");
    let reply = format!("Reply {vip} is-at ");
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let t: f64 = words.next()?.parse().ok()?;
            let src = parse_mac(words.next()?)?;
            // "SRC > DST," as tcpdump -e prints it.
            words.next().filter(|w| *w == ">")?;
            let dst = parse_mac(words.next()?.trim_end_matches(','))?;
            let what = if line.contains("ICMP echo reply") && line.contains(&echo_reply) {
                What::EchoReply
            } else if line.contains("ICMP echo request") && line.contains(&echo_request) {
                What::EchoRequest
            } else if line.contains("ethertype ARP")
                && ((line.contains(&garp) && line.contains(&garp_tell)) || line.contains(&reply))
            {
                What::ArpForVip
            } else {
                return None;
            };
            let echo = match what {
                What::EchoRequest | What::EchoReply => echo_id_seq(line),
                What::ArpForVip => None,
            };
            Some(Frame {
                t,
                src,
                dst,
                what,
                echo,
            })
        })
        .collect()
}

/// "id 3346, seq 1," in an ICMP echo line.
fn echo_id_seq(line: &str) -> Option<(u16, u16)> {
    let field = |name: &str| -> Option<u16> {
        let rest = &line[line.find(name)? + name.len()..];
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    Some((field(", id ")?, field(", seq ")?))
}

fn parse_mac(text: &str) -> Option<Mac> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// A failover as the client's interface saw it; times in ms relative to the event.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WireOutage {
    /// The longest gap between consecutive echo replies (from any MAC), from the last
    /// reply from the old master at or before the event to the first reply from the new
    /// master after it: the pinger's measure, taken on the wire.
    pub outage_ms: f64,
    /// The old master's last echo reply (after the event for a graceful handover, as
    /// long as it keeps answering).
    pub old_last_reply_ms: f64,
    /// The new master's first ARP frame for the VIP after the event, if any.
    pub new_first_arp_ms: Option<f64>,
    /// The new master's first echo reply after the event.
    pub new_first_reply_ms: f64,
    /// Where the longest gap between replies began.
    pub gap_at_ms: f64,
    /// Echo requests the client sent inside that gap: about one per ms when the routers
    /// failed to answer; none when the client itself was not sending (a pinger that did
    /// not run, which no router can fix).
    pub requests_in_gap: usize,
    /// Of those, the ones sent to the old master's MAC (the rest went to the new one's):
    /// which router failed to answer.
    pub requests_in_gap_to_old: usize,
    /// Of those, the ones no reply on the capture answers: zero means the gap was the
    /// client not sending (each request in it was answered, just late or at its end).
    pub requests_in_gap_unanswered: usize,
}

impl WireOutage {
    /// As JSON.
    pub fn to_json(self) -> Value {
        json!({
            "outage_ms": self.outage_ms,
            "old_last_reply_ms": self.old_last_reply_ms,
            "new_first_arp_ms": self.new_first_arp_ms,
            "new_first_reply_ms": self.new_first_reply_ms,
            "gap_at_ms": self.gap_at_ms,
            "requests_in_gap": self.requests_in_gap,
            "requests_in_gap_to_old": self.requests_in_gap_to_old,
            "requests_in_gap_unanswered": self.requests_in_gap_unanswered,
        })
    }
}

/// The outage on the wire around an event at `event` (Unix seconds), handing over from
/// `old` to `new`. `None` when the capture has no reply from `old` before the event or
/// none from `new` after it.
pub fn outage(frames: &[Frame], event: f64, old: Mac, new: Mac) -> Option<WireOutage> {
    let replies: Vec<&Frame> = frames
        .iter()
        .filter(|f| f.what == What::EchoReply)
        .collect();
    let start = replies.iter().rposition(|f| f.t <= event && f.src == old)?;
    let end = replies.iter().position(|f| f.t > event && f.src == new)?;
    if end <= start {
        return None;
    }
    let (gap_from, gap_to) = replies[start..=end]
        .windows(2)
        .map(|w| (w[0].t, w[1].t))
        .fold((0.0f64, 0.0f64), |best, (a, b)| {
            if b - a > best.1 - best.0 {
                (a, b)
            } else {
                best
            }
        });
    // Strictly inside: the requests answered by the gap's bounding replies went out
    // before them.
    let in_gap: Vec<&Frame> = frames
        .iter()
        .filter(|f| f.what == What::EchoRequest && f.t > gap_from && f.t < gap_to)
        .collect();
    let requests_in_gap = in_gap.len();
    let requests_in_gap_to_old = in_gap.iter().filter(|f| f.dst == old).count();
    let answered: std::collections::HashSet<(u16, u16)> =
        replies.iter().filter_map(|f| f.echo).collect();
    let requests_in_gap_unanswered = in_gap
        .iter()
        .filter(|f| f.echo.is_none_or(|e| !answered.contains(&e)))
        .count();
    let old_last = replies[..end].iter().rev().find(|f| f.src == old)?.t;
    let rel = |t: f64| (t - event) * 1e3;
    Some(WireOutage {
        outage_ms: (gap_to - gap_from) * 1e3,
        old_last_reply_ms: rel(old_last),
        new_first_arp_ms: frames
            .iter()
            .find(|f| f.t > event && f.src == new && f.what == What::ArpForVip)
            .map(|f| rel(f.t)),
        new_first_reply_ms: rel(replies[end].t),
        gap_at_ms: rel(gap_from),
        requests_in_gap,
        requests_in_gap_to_old,
        requests_in_gap_unanswered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
    const R1: Mac = [0x92, 0x33, 0x56, 0x83, 0x09, 0x62];
    const R2: Mac = [0x02, 0, 0, 0, 0, 0x02];
    const CLIENT: Mac = [0x26, 0xe7, 0x8a, 0x1a, 0xaf, 0xb5];

    // Lines as tcpdump 4.99 prints them (captured in a namespace lab).
    const TEXT: &str = "\
1000.000000 26:e7:8a:1a:af:b5 > 92:33:56:83:09:62, ethertype IPv4 (0x0800), length 58: 192.0.2.10 > 192.0.2.100: ICMP echo request, id 3346, seq 1, length 24
1000.000100 92:33:56:83:09:62 > 26:e7:8a:1a:af:b5, ethertype IPv4 (0x0800), length 58: 192.0.2.100 > 192.0.2.10: ICMP echo reply, id 3346, seq 1, length 24
1000.001100 92:33:56:83:09:62 > 26:e7:8a:1a:af:b5, ethertype IPv4 (0x0800), length 58: 192.0.2.100 > 192.0.2.10: ICMP echo reply, id 3346, seq 2, length 24
1000.002100 92:33:56:83:09:62 > 26:e7:8a:1a:af:b5, ethertype IPv4 (0x0800), length 58: 192.0.2.100 > 192.0.2.10: ICMP echo reply, id 3346, seq 3, length 24
1000.002500 26:e7:8a:1a:af:b5 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has 192.0.2.100 tell 192.0.2.10, length 28
1000.005000 26:e7:8a:1a:af:b5 > 92:33:56:83:09:62, ethertype IPv4 (0x0800), length 58: 192.0.2.10 > 192.0.2.100: ICMP echo request, id 3346, seq 5, length 24
1000.010000 26:e7:8a:1a:af:b5 > 92:33:56:83:09:62, ethertype IPv4 (0x0800), length 58: 192.0.2.10 > 192.0.2.100: ICMP echo request, id 3346, seq 10, length 24
1000.015000 02:00:00:00:00:02 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has 192.0.2.100 (ff:ff:ff:ff:ff:ff) tell 192.0.2.100, length 28
1000.015200 02:00:00:00:00:02 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Reply 192.0.2.100 is-at 02:00:00:00:00:02, length 28
1000.016100 02:00:00:00:00:02 > 26:e7:8a:1a:af:b5, ethertype IPv4 (0x0800), length 58: 192.0.2.100 > 192.0.2.10: ICMP echo reply, id 3346, seq 16, length 24
1000.017100 02:00:00:00:00:02 > 26:e7:8a:1a:af:b5, ethertype IPv4 (0x0800), length 58: 192.0.2.100 > 192.0.2.10: ICMP echo reply, id 3346, seq 17, length 24
not a frame
";

    #[test]
    fn parses_replies_and_announcements_only() {
        let frames = parse(TEXT, VIP);
        let kinds: Vec<(Mac, What)> = frames.iter().map(|f| (f.src, f.what)).collect();
        assert_eq!(
            kinds,
            vec![
                (CLIENT, What::EchoRequest),
                (R1, What::EchoReply),
                (R1, What::EchoReply),
                (R1, What::EchoReply),
                (CLIENT, What::EchoRequest),
                (CLIENT, What::EchoRequest),
                (R2, What::ArpForVip),
                (R2, What::ArpForVip),
                (R2, What::EchoReply),
                (R2, What::EchoReply),
            ],
            "the client's own ARP is left out"
        );
        assert_eq!(frames[1].t, 1000.0001);
        assert_eq!(frames[0].echo, Some((3346, 1)));
        assert_eq!(frames[1].echo, Some((3346, 1)));
        assert_eq!(frames[6].echo, None);
    }

    #[test]
    fn outage_spans_old_masters_last_reply_to_new_masters_first() {
        let frames = parse(TEXT, VIP);
        // Event at 1000.0015: the old master still answers once after it.
        let w = outage(&frames, 1000.0015, R1, R2).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
        assert!(close(w.outage_ms, 14.0), "{w:?}");
        assert!(close(w.old_last_reply_ms, 0.6), "{w:?}");
        assert!(close(w.new_first_arp_ms.unwrap(), 13.5), "{w:?}");
        assert!(close(w.new_first_reply_ms, 14.6), "{w:?}");
        assert!(close(w.gap_at_ms, 0.6), "{w:?}");
        assert_eq!(w.requests_in_gap, 2, "{w:?}");
        assert_eq!(w.requests_in_gap_to_old, 2, "{w:?}");
        assert_eq!(w.requests_in_gap_unanswered, 2, "{w:?}");
        // No reply from the new master after the event: no figure.
        assert_eq!(outage(&frames, 1000.0015, R1, [9; 6]), None);
        // No reply from the old master before the event: no figure.
        assert_eq!(outage(&frames, 999.0, R1, R2), None);
    }

    #[test]
    fn a_request_answered_at_the_gaps_end_is_not_unanswered() {
        // The new master's first reply answers a request sent just before it, inside
        // the gap: three requests in the gap, two never answered.
        let late = "1000.016000 26:e7:8a:1a:af:b5 > 02:00:00:00:00:02, ethertype IPv4 (0x0800), length 58: 192.0.2.10 > 192.0.2.100: ICMP echo request, id 3346, seq 16, length 24\n";
        let text = TEXT.replacen("1000.016100", &format!("{late}1000.016100"), 1);
        let w = outage(&parse(&text, VIP), 1000.0015, R1, R2).unwrap();
        assert_eq!(w.requests_in_gap, 3, "{w:?}");
        assert_eq!(w.requests_in_gap_unanswered, 2, "{w:?}");
    }
}
