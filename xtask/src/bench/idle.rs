//! Idle: the CPU a router spends on 16 instances at 10 ms adverts (1 600 adverts/s
//! sent by the master, as many received by the backup), from utime + stime in
//! /proc/PID/stat over the measuring window. vipd (XDP auto) and keepalived run at the
//! same time in two separate labs; keepalived's figure sums all its processes.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};
use vipd_tests::topo::{Lan, add_addr};
use vipd_tests::vipd::Scratch;

use super::Options;
use super::lab::{Inst, Kind, Node};

const INSTANCES: u8 = 16;

/// Measures for 30 s (5 s with --quick).
pub fn run(bin: &Path, opts: Options) -> anyhow::Result<Value> {
    let window = Duration::from_secs(if opts.quick { 5 } else { 30 });
    let kinds = [Kind::Vipd { xdp: true }, Kind::Keepalived];
    let labs: Vec<Lan> = kinds
        .iter()
        .enumerate()
        .map(|(i, _)| Lan::new(&format!("idle{i}"), 2))
        .collect::<anyhow::Result<_>>()
        .context("building the idle labs (needs root)")?;
    let scratch = Scratch::new("benchidle")?;
    let mut pairs = Vec::new();
    for (lan, kind) in labs.iter().zip(kinds) {
        add_addr(lan.member(0), "eth0", "192.0.2.1/24")?;
        add_addr(lan.member(1), "eth0", "192.0.2.2/24")?;
        let instances = |priority: u8| -> Vec<Inst> {
            (1..=INSTANCES)
                .map(|vrid| {
                    Inst::new(
                        vrid,
                        priority,
                        Duration::from_millis(10),
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
        pairs.push((master, backup));
    }
    // On a machine busy with other work 10 ms instances flap; measure anyway (the
    // takeover count and the other-work figure say so) rather than give up.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut settled = true;
    while !pairs.iter().all(|(m, _)| m.all_master()) {
        if Instant::now() >= deadline {
            println!(
                "  WARNING: the 16 instances were not all MASTER on the master after 20 s (a busy machine?)"
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
    let before: Vec<(f64, f64)> = pairs.iter().map(|(m, b)| (cpu(m), cpu(b))).collect();
    let takeovers_before: Vec<u64> = pairs.iter().map(|(_, b)| b.became_master()).collect();
    let machine_before = super::machine_cpu();
    let t = Instant::now();
    std::thread::sleep(window);
    let secs = t.elapsed().as_secs_f64();
    let after: Vec<(f64, f64)> = pairs.iter().map(|(m, b)| (cpu(m), cpu(b))).collect();
    let machine_after = super::machine_cpu();
    // What else ran: the machine's busy CPU time minus our four daemons', as a share
    // of all CPUs. On a quiet machine this is a few percent.
    let ours: f64 = before
        .iter()
        .zip(&after)
        .map(|(b, a)| (a.0 - b.0) + (a.1 - b.1))
        .sum();
    let machine_total = (machine_after.1 - machine_before.1).max(1e-9);
    let others = ((machine_after.0 - machine_before.0 - ours) / machine_total * 100.0).max(0.0);

    let mut rows = Vec::new();
    println!(
        "{:<12} {:>12} {:>12} {:>16}",
        "impl", "master CPU", "backup CPU", "backup takeovers"
    );
    for (i, (master, backup)) in pairs.iter().enumerate() {
        let m = (after[i].0 - before[i].0) / secs * 100.0;
        let b = (after[i].1 - before[i].1) / secs * 100.0;
        let takeovers = backup.became_master().saturating_sub(takeovers_before[i]);
        println!(
            "{:<12} {:>11.2}% {:>11.2}% {:>16}",
            master.kind.label(),
            m,
            b,
            takeovers
        );
        rows.push(json!({
            "implementation": master.kind.label(),
            "instances": INSTANCES,
            "advert_interval_ms": 10,
            "master_cpu_percent_of_one_core": m,
            "backup_cpu_percent_of_one_core": b,
            "backup_became_master": takeovers,
        }));
    }
    println!(
        "  ({INSTANCES} instances at 10 ms adverts, {secs:.0} s window, % of one core; both labs ran at the same time)"
    );
    println!("  other work on the machine meanwhile: {others:.0}% of all CPUs");
    if others > 20.0 {
        println!(
            "  WARNING: the machine was busy with other work; these numbers are disturbed, run `cargo xtask bench idle` again when it is quiet"
        );
    }
    for (m, b) in &mut pairs {
        m.stop();
        b.stop();
    }
    Ok(json!({
        "window_seconds": secs,
        "rows": rows,
        "other_work_percent_of_all_cpus": others,
        "machine_busy_cpu_seconds": machine_after.0 - machine_before.0,
        "machine_total_cpu_seconds": machine_total,
        "daemons_cpu_seconds": ours,
        "settled_before_window": settled,
    }))
}
