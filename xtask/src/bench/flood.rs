//! Flood: false failovers while nothing fails, under a packet flood and a CPU hog.
//!
//! One lab, five router pairs side by side on one LAN, so all see the same flood and
//! the same CPU contention in the same run:
//!
//! | pair | runs | VRID | VIP | adverts |
//! |---|---|---|---|---|
//! | v1/v2 | vipd, XDP auto (generic on veth) | 11 | .101 | 10 ms |
//! | n1/n2 | vipd, XDP off | 12 | .102 | 10 ms |
//! | k1/k2 | keepalived 2.2.7 | 13 | .103 | 10 ms |
//! | j1/j2 | keepalived 2.2.7 | 14 | .104 | 100 ms |
//! | b1/b2 | vipd + BFD 3 ms × 3 (peer), XDP auto | 15 | .105 | 100 ms |
//!
//! Phases: idle (is the pair stable at all?), then each flood variant with one
//! busy-loop process pinned to each CPU (`taskset`, bounded by `timeout`):
//! - `udp+arp`: UDP to every master's address and ARP requests for every VIP, from the
//!   client;
//! - `vrrp`, and `vrrp, no hog` (the flood alone): valid VRRPv3 adverts for VRID 99 (nobody's) to 224.0.0.18: every VRRP raw
//!   socket on the LAN must read them, the way a busy shared segment floods keepalived's
//!   socket until real adverts are dropped.
//!
//! A false failover is a backup entering MASTER (vipd `became_master`, keepalived's
//! `Entering MASTER STATE`) while no router was stopped.
//!
//! To tell *why*, tcpdump on each master's switch port records the master's own
//! adverts on the wire: a gap longer than Master_Down_Interval there means the master
//! itself went silent (starved of CPU), and a takeover is what the RFC asks for; a
//! takeover without such a gap means the backup lost adverts that were sent.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};
use vipd_tests::stall::{StallWatch, Stalls};
use vipd_tests::topo::{Lan, add_addr, mac_of};
use vipd_tests::vipd::Scratch;

use super::Options;
use super::lab::{
    Inst, Kind, Node, advert_capture, capture_drops, finish_capture, packet_times, wait_listening,
};
use super::traffic::{CpuHogs, Flood, FloodSpec, udp_frame, vrrp_advert};

/// Flood rate, frames per second (every frame is delivered to all ten routers'
/// veths by the bridge, so the machine handles ten times this).
const RATE_PPS: u64 = 20_000;

struct Pair {
    label: &'static str,
    kind: Kind,
    interval_ms: u64,
}

const PAIRS: [Pair; 5] = [
    Pair {
        label: "vipd XDP on, 10 ms",
        kind: Kind::Vipd {
            xdp: true,
            bfd: false,
        },
        interval_ms: 10,
    },
    Pair {
        label: "vipd XDP off, 10 ms",
        kind: Kind::Vipd {
            xdp: false,
            bfd: false,
        },
        interval_ms: 10,
    },
    Pair {
        label: "keepalived, 10 ms",
        kind: Kind::Keepalived,
        interval_ms: 10,
    },
    Pair {
        label: "keepalived, 100 ms",
        kind: Kind::Keepalived,
        interval_ms: 100,
    },
    // Issue 15: BFD at 3 ms × 3 between the two, 100 ms adverts; a false BFD Down
    // would make the backup take over at once.
    Pair {
        label: "vipd + BFD 3 ms, 100 ms",
        kind: Kind::Vipd {
            xdp: true,
            bfd: true,
        },
        interval_ms: 100,
    },
];

/// Runs the idle phase and both flood variants, `secs` each (idle: a quarter).
pub fn run(bin: &Path, duration: Duration, _opts: Options) -> anyhow::Result<Value> {
    let n_routers = PAIRS.len() * 2;
    let lan = Lan::new("fl", n_routers + 1).context("building the flood lab (needs root)")?;
    let client = lan.member(n_routers);
    // Above the routers' 192.0.2.1 ..= 2 × PAIRS.
    let client_ip = Ipv4Addr::new(192, 0, 2, 50);
    add_addr(client, "eth0", "192.0.2.50/24")?;
    let scratch = Scratch::new("benchfl")?;
    let mut nodes: Vec<(Node<'_>, Node<'_>)> = Vec::new();
    for (i, pair) in PAIRS.iter().enumerate() {
        let vrid = 11 + i as u8;
        let vip = format!("192.0.2.{}/24", 101 + i);
        let interval = Duration::from_millis(pair.interval_ms);
        let make = |j: usize, priority: u8| -> anyhow::Result<Node<'_>> {
            let ns = lan.member(2 * i + j);
            add_addr(ns, "eth0", &format!("192.0.2.{}/24", 1 + 2 * i + j))?;
            // The other router of the pair, for BFD pairs.
            let other = Ipv4Addr::new(192, 0, 2, (1 + 2 * i + (1 - j)) as u8);
            let inst = Inst::new(vrid, priority, interval, &vip).with_bfd_peer(other);
            let mut node = Node::new(ns, &scratch, &format!("p{i}r{j}"), pair.kind, &[inst], bin)?;
            node.start()?;
            Ok(node)
        };
        let master = make(0, 150)?;
        let backup = make(1, 100)?;
        nodes.push((master, backup));
    }
    let settle = Duration::from_secs(10);
    for (master, backup) in &nodes {
        master.wait_master(0, true, settle)?;
        backup.wait_master(0, false, settle)?;
    }
    // Start-up churn (a backup that started before its master may flap once) is over
    // before anything is counted.
    std::thread::sleep(Duration::from_secs(1));

    // (backup takeovers, transitions, adverts the master sent late: vipd only, BFD
    // sessions that left Up on either router).
    let snapshot = |nodes: &[(Node<'_>, Node<'_>)]| -> Vec<(u64, u64, u64, u64)> {
        nodes
            .iter()
            .map(|(m, b)| {
                (
                    b.became_master(),
                    m.transitions() + b.transitions(),
                    m.counter_sum("adverts_late"),
                    bfd_downs(m) + bfd_downs(b),
                )
            })
            .collect()
    };

    // Frames: UDP to each master, ARP for each VIP; VRRP adverts for VRID 99.
    let client_mac = mac_of(client, "eth0")?;
    let mut udp_arp = Vec::new();
    for (i, (master, _)) in nodes.iter().enumerate() {
        let mac = mac_of(master.ns(), "eth0")?;
        let ip = Ipv4Addr::new(192, 0, 2, 1 + 2 * i as u8);
        udp_arp.push(udp_frame(mac, client_mac, client_ip, ip, 64));
        udp_arp.push(super::traffic::arp_request(
            client_mac,
            client_ip,
            Ipv4Addr::new(192, 0, 2, 101 + i as u8),
        ));
    }
    let vrrp = vec![vrrp_advert(
        client_mac,
        client_ip,
        99,
        100,
        Ipv4Addr::new(192, 0, 2, 199),
    )];

    let idle = (duration / 4).max(Duration::from_secs(2));
    let mut phases = Vec::new();
    for (name, frames, hog) in [
        ("idle", None, false),
        ("udp+arp", Some(udp_arp), true),
        ("vrrp", Some(vrrp.clone()), true),
        ("vrrp, no hog", Some(vrrp), false),
    ] {
        let captures: Vec<_> = nodes
            .iter()
            .enumerate()
            .map(|(i, _)| advert_capture(&lan, 2 * i))
            .collect::<anyhow::Result<_>>()?;
        wait_listening(&captures.iter().collect::<Vec<_>>());
        let before = snapshot(&nodes);
        let watch = StallWatch::start().context("starting the host-stall watch")?;
        let t = Instant::now();
        let mut sent = None;
        match frames {
            None => std::thread::sleep(idle),
            Some(frames) => {
                let secs = duration.as_secs().max(1);
                let placements = [(nodes[0].0.ns(), 0), (nodes[0].1.ns(), 1)];
                let hogs = CpuHogs::start(if hog { &placements } else { &[] }, secs + 1)?;
                let flood = Flood::start(
                    client,
                    "eth0",
                    FloodSpec {
                        frames,
                        rate_pps: RATE_PPS,
                        max_frames: RATE_PPS * secs,
                        max_time: duration,
                    },
                )?;
                let report = flood.join();
                hogs.stop();
                sent = Some(report);
            }
        }
        // Let a takeover that started at the very end show up in the counters.
        std::thread::sleep(Duration::from_millis(500));
        let stalls = watch.finish()?;
        let after = snapshot(&nodes);
        let secs = t.elapsed().as_secs_f64();
        let host = host_stalls(&stalls);
        let mut rows = Vec::new();
        for (i, (pair, capture)) in PAIRS.iter().zip(captures).enumerate() {
            let takeovers = after[i].0.saturating_sub(before[i].0);
            let transitions = after[i].1.saturating_sub(before[i].1);
            let late = after[i].2.saturating_sub(before[i].2);
            let downs = after[i].3.saturating_sub(before[i].3);
            let (text, stats) = finish_capture(capture);
            // A capture that lost packets would invent silent gaps: say so.
            let capture_dropped = capture_drops(&stats);
            // Master_Down_Interval at priority 100: 3 × interval + (256-100)/256 × interval.
            let master_down = pair.interval_ms as f64 * (3.0 + 156.0 / 256.0);
            let gaps = advert_gaps(&text);
            let silent = gaps.iter().filter(|g| **g > master_down).count();
            let max_gap = gaps.iter().copied().fold(0.0f64, f64::max);
            rows.push(json!({
                "pair": pair.label,
                "implementation": pair.kind.label(),
                "advert_interval_ms": pair.interval_ms,
                "false_takeovers": takeovers,
                "transitions": transitions,
                "master_adverts_sent_late": matches!(pair.kind, Kind::Vipd { .. }).then_some(late),
                "bfd_downs": matches!(pair.kind, Kind::Vipd { bfd: true, .. }).then_some(downs),
                "master_adverts_on_wire": gaps.len() + 1,
                "master_silent_gaps": silent,
                "master_max_gap_ms": max_gap,
                "capture_dropped": capture_dropped,
            }));
        }
        let sent_json = sent.map(|r| {
            json!({ "sent": r.sent, "send_failed": r.failed, "seconds": r.elapsed.as_secs_f64(),
                    "pps": r.sent as f64 / r.elapsed.as_secs_f64().max(1e-9) })
        });
        phases.push((
            name,
            secs,
            rows,
            sent_json.map(|mut j| {
                j["cpu_hog"] = json!(hog);
                j
            }),
            host,
        ));
        // Back to normal before the next phase (a pair may be mid-recovery).
        for (master, backup) in &nodes {
            let _ = master.wait_master(0, true, settle);
            let _ = backup.wait_master(0, false, settle);
        }
    }
    let xdp_rescues = nodes[0].1.counter_sum("xdp_rescued_adverts");
    let dropped: u64 = phases
        .iter()
        .flat_map(|p| p.2.iter())
        .map(|r| r["capture_dropped"].as_u64().unwrap_or(0))
        .sum();
    if std::env::var_os("VIPD_BENCH_DEBUG").is_some() {
        for (master, backup) in &nodes {
            for node in [master, backup] {
                println!("--- {} ({}):", node.name, node.kind.label());
                for line in node.log().lines().filter(|l| {
                    l.contains("MASTER") || l.contains("BACKUP") || l.contains("BFD session")
                }) {
                    println!("  {line}");
                }
            }
        }
    }

    println!(
        "{:<22} {:>24} {:>24} {:>24} {:>24}",
        "false takeovers", "idle", "udp+arp flood + hog", "vrrp flood + hog", "vrrp flood, no hog"
    );
    for (i, pair) in PAIRS.iter().enumerate() {
        let cell = |p: usize| {
            let row = &phases[p].2[i];
            format!(
                "{} (silent {}, max {:.0} ms)",
                row["false_takeovers"].as_u64().unwrap_or(0),
                row["master_silent_gaps"].as_u64().unwrap_or(0),
                row["master_max_gap_ms"].as_f64().unwrap_or(0.0),
            )
        };
        println!(
            "{:<22} {:>24} {:>24} {:>24} {:>24}",
            pair.label,
            cell(0),
            cell(1),
            cell(2),
            cell(3)
        );
    }
    for (name, secs, _, sent, host) in &phases {
        println!(
            "  {name}: host stalls (no work of the VM's run on a CPU): {} of 2 ms or more, longest {:.1} ms; {} long enough to silence a 3 ms × 3 BFD sender, {} a 10 ms VRRP master",
            host["at_least_2ms"],
            host["longest_ms"].as_f64().unwrap_or(0.0),
            host["silencing_bfd_3ms"],
            host["silencing_vrrp_10ms"]
        );
        match sent {
            Some(s) => println!(
                "  {name}: {secs:.0} s, {} frames sent at {:.0}/s (cap {RATE_PPS}/s){}",
                s["sent"],
                s["pps"].as_f64().unwrap_or(0.0),
                if s["cpu_hog"] == true {
                    ", a CPU hog on each CPU"
                } else {
                    ""
                }
            ),
            None => println!("  {name}: {secs:.0} s, no load"),
        }
    }
    println!(
        "  (backup entering MASTER while nothing failed; silent = gaps in the master's own adverts on the wire"
    );
    println!(
        "   longer than Master_Down_Interval, i.e. the master was starved, not the backup; max = longest gap)"
    );
    println!("  vipd XDP backup: adverts rescued by the XDP record: {xdp_rescues}");
    for (i, pair) in PAIRS.iter().enumerate() {
        if !matches!(pair.kind, Kind::Vipd { .. }) {
            continue;
        }
        let late: Vec<String> = phases
            .iter()
            .map(|p| {
                format!(
                    "{} {}",
                    p.0,
                    p.2[i]["master_adverts_sent_late"].as_u64().unwrap_or(0)
                )
            })
            .collect();
        println!(
            "  {}: master adverts sent > 1 interval late (vipd's own timer, so starvation of vipd itself): {}; latest {} us",
            pair.label,
            late.join(", "),
            nodes[i].0.counter_sum("advert_late_max_us")
        );
    }
    for (i, pair) in PAIRS.iter().enumerate() {
        if !matches!(pair.kind, Kind::Vipd { bfd: true, .. }) {
            continue;
        }
        let downs: Vec<String> = phases
            .iter()
            .map(|p| format!("{} {}", p.0, p.2[i]["bfd_downs"].as_u64().unwrap_or(0)))
            .collect();
        let late = |node: &Node<'_>| {
            node.status()
                .and_then(|s| s["bfd"][0]["timer_late_max_us"].as_u64())
                .unwrap_or(0)
        };
        println!(
            "  {}: BFD sessions that went Down (both routers; a false Down is a false takeover): {}; latest BFD timer {} / {} us",
            pair.label,
            downs.join(", "),
            late(&nodes[i].0),
            late(&nodes[i].1)
        );
    }
    if dropped > 0 {
        println!(
            "  WARNING: the advert captures lost {dropped} packets: some 'silent' gaps may be capture losses"
        );
    } else {
        println!("  (the advert captures lost no packets)");
    }

    for (master, backup) in &mut nodes {
        master.stop();
        backup.stop();
    }
    Ok(json!({
        "rate_pps": RATE_PPS,
        "phases": phases.iter().map(|(name, secs, rows, sent, host)| json!({
            "phase": name, "seconds": secs, "pairs": rows, "load": sent, "host_stalls": host,
        })).collect::<Vec<_>>(),
        "vipd_xdp_backup_rescued_adverts": xdp_rescues,
    }))
}

/// A phase's host stalls (`vipd_tests::stall`): how many, the longest, and how many
/// were long enough to silence a BFD sender at 3 ms × 3 (Detection Time 9 ms) or a
/// VRRP master at 10 ms adverts for a backup at priority 100 (Master_Down_Interval
/// 36.1 ms): a false Down or takeover needs one of those, or is vipd's.
fn host_stalls(stalls: &Stalls) -> Value {
    let bfd = Stalls::silencing(Duration::from_millis(9), Duration::from_millis(3));
    let vrrp = Stalls::silencing(Duration::from_micros(36_094), Duration::from_millis(10));
    json!({
        "at_least_2ms": stalls.0.len(),
        "longest_ms": stalls.longest().as_secs_f64() * 1e3,
        "silencing_bfd_3ms": stalls.at_least(bfd),
        "silencing_vrrp_10ms": stalls.at_least(vrrp),
    })
}

/// Transitions out of Up of `node`'s BFD sessions since it started (0 without BFD).
fn bfd_downs(node: &Node<'_>) -> u64 {
    node.status()
        .and_then(|s| {
            Some(
                s["bfd"]
                    .as_array()?
                    .iter()
                    .map(|b| b["down_count"].as_u64().unwrap_or(0))
                    .sum(),
            )
        })
        .unwrap_or(0)
}

/// Gaps (ms) between consecutive packets in tcpdump `-tt` output.
fn advert_gaps(text: &str) -> Vec<f64> {
    packet_times(text)
        .windows(2)
        .map(|w| (w[1] - w[0]) * 1e3)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_from_tcpdump_lines() {
        let text = "1764449000.000000 IP 192.0.2.1 > 224.0.0.18: VRRPv3, Advertisement, vrid 11\n\
                    1764449000.010000 IP 192.0.2.1 > 224.0.0.18: VRRPv3, Advertisement, vrid 11\n\
                    garbage line\n\
                    1764449000.060000 IP 192.0.2.1 > 224.0.0.18: VRRPv3, Advertisement, vrid 11\n";
        let gaps = advert_gaps(text);
        assert_eq!(gaps.len(), 2);
        assert_eq!(
            capture_drops(
                "12 packets captured\n12 packets received by filter\n3 packets dropped by kernel\n"
            ),
            3
        );
        assert!(
            (gaps[0] - 10.0).abs() < 0.01 && (gaps[1] - 50.0).abs() < 0.01,
            "{gaps:?}"
        );
    }
}
