//! Idle: the CPU a router spends on 16 instances at 10 ms adverts (1 600 adverts/s
//! sent by the master, as many received by the backup), from utime + stime in
//! /proc/PID/stat over the measuring window. vipd (XDP auto) and keepalived run one
//! after the other, each in a lab of its own; keepalived's figure sums all its processes.
//!
//! Also whether the master keeps the rate: its adverts counted on the wire (tcpdump on
//! its switch port, packets stamped inside the window) against window / interval × 16.
//! A master whose intervals run long (a timer that rounds up, re-arming from "now")
//! sends fewer, and eats its backups' margin. For vipd the `adverts_sent` counters over
//! the window are recorded too.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use serde_json::{Value, json};
use vipd_tests::topo::{Lan, add_addr};
use vipd_tests::vipd::Scratch;

use super::Options;
use super::lab::{
    Inst, Kind, Node, advert_capture, capture_drops, finish_capture, packet_times, wait_listening,
};

const INSTANCES: u8 = 16;
/// Every instance's advert interval.
const INTERVAL: Duration = Duration::from_millis(10);

/// Measures for 30 s (5 s with --quick), vipd first, then keepalived: one lab at a
/// time, so 32 instances at 10 ms on 2 CPUs do not disturb each other's timers.
pub fn run(bin: &Path, opts: Options) -> anyhow::Result<Value> {
    let window = Duration::from_secs(if opts.quick { 5 } else { 30 });
    println!(
        "{:<12} {:>12} {:>12} {:>16} {:>12} {:>26}",
        "impl",
        "master CPU",
        "backup CPU",
        "backup takeovers",
        "other work",
        "adverts sent / expected"
    );
    let mut rows = Vec::new();
    for kind in [
        Kind::Vipd {
            xdp: true,
            bfd: false,
        },
        Kind::Keepalived,
    ] {
        let row = measure(bin, kind, window)?;
        let adverts = format!(
            "{} / {:.0} ({:.1}%)",
            row["master_adverts_on_wire"].as_u64().unwrap_or(0),
            row["master_adverts_expected"].as_f64().unwrap_or(0.0),
            row["master_adverts_percent_of_expected"]
                .as_f64()
                .unwrap_or(0.0),
        );
        println!(
            "{:<12} {:>11.2}% {:>11.2}% {:>16} {:>11.0}% {adverts:>26}",
            kind.label(),
            row["master_cpu_percent_of_one_core"]
                .as_f64()
                .unwrap_or(0.0),
            row["backup_cpu_percent_of_one_core"]
                .as_f64()
                .unwrap_or(0.0),
            row["backup_became_master"].as_u64().unwrap_or(0),
            row["other_work_percent_of_all_cpus"]
                .as_f64()
                .unwrap_or(0.0),
        );
        if let Some(sent) = row["master_adverts_sent_counter"].as_u64() {
            println!(
                "  {}: adverts_sent counters between two status reads around the window: {sent} / {:.0}",
                kind.label(),
                row["master_adverts_sent_counter_expected"]
                    .as_f64()
                    .unwrap_or(0.0)
            );
        }
        if row["capture_dropped"].as_u64().unwrap_or(0) > 0 {
            println!(
                "  WARNING: the {} advert capture lost {} packets: the wire count is low by as many",
                kind.label(),
                row["capture_dropped"]
            );
        }
        if row["other_work_percent_of_all_cpus"]
            .as_f64()
            .unwrap_or(0.0)
            > 20.0
        {
            println!(
                "  WARNING: the machine was busy with other work during the {} window; run `cargo xtask bench idle` again when it is quiet",
                kind.label()
            );
        }
        rows.push(row);
    }
    println!(
        "  ({INSTANCES} instances at 10 ms adverts, {} s window each, % of one core; one lab at a time; other work = the rest of the machine's busy CPU, % of all CPUs;",
        window.as_secs()
    );
    println!(
        "   adverts = the master's VRRP packets on the wire (tcpdump on its switch port) in the window, against window / 10 ms × {INSTANCES})"
    );
    Ok(json!({ "window_seconds": window.as_secs_f64(), "rows": rows }))
}

/// One lab: a master and a backup running `kind` with 16 instances; their CPU over
/// `window` once every instance is MASTER on the master.
fn measure(bin: &Path, kind: Kind, window: Duration) -> anyhow::Result<Value> {
    let lan = Lan::new("idle", 2).context("building the idle lab (needs root)")?;
    let scratch = Scratch::new("benchidle")?;
    add_addr(lan.member(0), "eth0", "192.0.2.1/24")?;
    add_addr(lan.member(1), "eth0", "192.0.2.2/24")?;
    let instances = |priority: u8| -> Vec<Inst> {
        (1..=INSTANCES)
            .map(|vrid| {
                Inst::new(
                    vrid,
                    priority,
                    INTERVAL,
                    &format!("192.0.2.{}/24", 100 + vrid),
                )
            })
            .collect()
    };
    let tag = if kind == Kind::Keepalived { "k" } else { "v" };
    let mut master = Node::new(
        lan.member(0),
        &scratch,
        &format!("{tag}m"),
        kind,
        &instances(150),
        bin,
    )?;
    let mut backup = Node::new(
        lan.member(1),
        &scratch,
        &format!("{tag}b"),
        kind,
        &instances(100),
        bin,
    )?;
    master.start()?;
    backup.start()?;
    // On a machine busy with other work 10 ms instances flap; measure anyway (the
    // takeover count and the other-work figure say so) rather than give up.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut settled = true;
    while !master.all_master() {
        if Instant::now() >= deadline {
            println!(
                "  WARNING: the 16 instances were not all MASTER on the {} master after 20 s (a busy machine?)",
                kind.label()
            );
            settled = false;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Past the start-up work (VIPs, GARPs).
    std::thread::sleep(Duration::from_secs(1));

    let cpu = |node: &Node<'_>| -> f64 {
        node.pids()
            .iter()
            .filter_map(|pid| super::cpu_seconds(*pid))
            .sum()
    };
    // The master's adverts on the wire; the capture's own CPU is not "other work".
    let capture = advert_capture(&lan, 0)?;
    wait_listening(&[&capture]);
    let capture_cpu = || -> f64 {
        lan.switch()
            .pids()
            .unwrap_or_default()
            .into_iter()
            .filter_map(super::cpu_seconds)
            .sum()
    };
    let vipd = kind != Kind::Keepalived;
    // The counters, and when they were read (the middle of the status round trip,
    // which takes milliseconds on a busy machine).
    let sent_now = |node: &Node<'_>| {
        let asked = Instant::now();
        let sent = node.counter_sum("adverts_sent");
        (sent, asked + asked.elapsed() / 2)
    };
    let sent_before = vipd.then(|| sent_now(&master));
    let before = (cpu(&master), cpu(&backup), capture_cpu());
    let takeovers_before = backup.became_master();
    let machine_before = super::machine_cpu();
    let wall_start = unix_seconds();
    let t = Instant::now();
    std::thread::sleep(window);
    let secs = t.elapsed().as_secs_f64();
    let wall_end = unix_seconds();
    let after = (cpu(&master), cpu(&backup), capture_cpu());
    let machine_after = super::machine_cpu();
    let sent = sent_before.map(|(before, at)| {
        let (after, until) = sent_now(&master);
        let secs = until.duration_since(at).as_secs_f64();
        (
            after.saturating_sub(before),
            secs / INTERVAL.as_secs_f64() * f64::from(INSTANCES),
        )
    });
    // What else ran: the machine's busy CPU time minus our two daemons' and the
    // capture's, as a share of all CPUs. On a quiet machine this is a few percent.
    let ours = (after.0 - before.0) + (after.1 - before.1) + (after.2 - before.2);
    let machine_total = (machine_after.1 - machine_before.1).max(1e-9);
    let others = ((machine_after.0 - machine_before.0 - ours) / machine_total * 100.0).max(0.0);
    let takeovers = backup.became_master().saturating_sub(takeovers_before);
    let (text, stats) = finish_capture(capture);
    let on_wire = packet_times(&text)
        .into_iter()
        .filter(|&t| wall_start <= t && t < wall_end)
        .count();
    let expected = secs / INTERVAL.as_secs_f64() * f64::from(INSTANCES);
    master.stop();
    backup.stop();
    Ok(json!({
        "implementation": kind.label(),
        "instances": INSTANCES,
        "advert_interval_ms": 10,
        "window_seconds": secs,
        "master_cpu_percent_of_one_core": (after.0 - before.0) / secs * 100.0,
        "backup_cpu_percent_of_one_core": (after.1 - before.1) / secs * 100.0,
        "backup_became_master": takeovers,
        "other_work_percent_of_all_cpus": others,
        "settled_before_window": settled,
        "master_adverts_on_wire": on_wire,
        "master_adverts_expected": expected,
        "master_adverts_percent_of_expected": on_wire as f64 / expected.max(1.0) * 100.0,
        "master_adverts_sent_counter": sent.map(|s| s.0),
        "master_adverts_sent_counter_expected": sent.map(|s| s.1),
        "capture_dropped": capture_drops(&stats),
        "capture_stderr": stats.trim(),
    }))
}

/// Wall-clock seconds since the Unix epoch, tcpdump's `-tt` time base.
fn unix_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
