//! Scale: one instance with 1 .. 10 000 VIPs. Time from starting vipd to (a) MASTER,
//! (b) every VIP on the interface, (c) the first and the last VIP answering a client's
//! ping; and the daemon's peak RSS (VmHWM; keepalived: all its processes). keepalived
//! runs the rows it can (≤ 255 VIPs: it lists them all in its adverts).
//!
//! Addresses: the bench may only use the IPv4 TEST-NETs, which hold ~760 host
//! addresses, and the daemon does not run IPv6 instances yet. So the rows are 1, 100,
//! 255 (what one advert can list) and 700 (198.51.100.0/24, 203.0.113.0/24 and the
//! top of 192.0.2.0/24); 1 000 and 10 000 are reported as not measured, with why. The
//! advert carries the first 255 addresses; the rest are held by the master all the same.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use vipd_tests::netns::Netns;
use vipd_tests::topo::{Lan, add_addr};
use vipd_tests::vipd::Scratch;

use super::Options;
use super::lab::{Inst, Kind, Node};

/// Per row: at most this long for everything to come up.
const ROW_TIMEOUT: Duration = Duration::from_secs(30);

/// Most VIPs the TEST-NETs give us (the lab uses 192.0.2.1..=49).
const MAX_TESTNET_VIPS: usize = 254 + 254 + 200;

fn vips(n: usize) -> Vec<String> {
    (0..n.min(MAX_TESTNET_VIPS))
        .map(|i| match i {
            0..254 => format!("198.51.100.{}/24", i + 1),
            254..508 => format!("203.0.113.{}/24", i - 254 + 1),
            _ => format!("192.0.2.{}/24", i - 508 + 50),
        })
        .collect()
}

fn count_addrs(ns: &Netns) -> usize {
    ns.ip(&["-o", "addr", "show", "dev", "eth0"])
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

fn pings(ns: &Netns, target: &str) -> bool {
    let ip = target.split('/').next().unwrap_or(target);
    let family = if ip.contains(':') { "-6" } else { "-4" };
    ns.exec(&["ping", family, "-n", "-q", "-c", "1", "-W", "1", ip])
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Rows 1, 100, 255, 700, 1 000, 10 000 (--quick: 1, 255, 700, 1 000).
pub fn run(bin: &Path, opts: Options) -> anyhow::Result<Value> {
    let sizes: &[usize] = if opts.quick {
        &[1, 255, 700, 1000]
    } else {
        &[1, 100, 255, 700, 1000, 10_000]
    };
    println!(
        "{:<12} {:>6} {:>10} {:>12} {:>12} {:>12}",
        "impl", "VIPs", "MASTER ms", "all VIPs ms", "answered ms", "peak RSS MiB"
    );
    let mut rows = Vec::new();
    for kind in [Kind::Vipd { xdp: true }, Kind::Keepalived] {
        for &n in sizes {
            let label = kind.label();
            if kind == Kind::Keepalived && n > 255 {
                // keepalived lists every VIP in the advert: more than 255 is a config
                // error there (virtual_ipaddress_excluded is its way around).
                continue;
            }
            if n > MAX_TESTNET_VIPS {
                let why = "not measured: more VIPs than the IPv4 TEST-NETs hold (the bench uses no other addresses) and the daemon has no IPv6 instances yet";
                println!("{label:<12} {n:>6} {why}");
                rows.push(json!({ "implementation": label, "vips": n, "not_measured": why }));
                continue;
            }
            match row(bin, n, kind) {
                Ok((master, all, answered, rss)) => {
                    println!(
                        "{label:<12} {n:>6} {master:>10.0} {all:>12.0} {answered:>12.0} {:>12.1}",
                        rss as f64 / 1024.0
                    );
                    rows.push(json!({
                        "implementation": label, "vips": n, "master_ms": master,
                        "all_vips_ms": all, "answered_ms": answered, "peak_rss_kib": rss,
                    }));
                }
                Err(e) => {
                    println!(
                        "{label:<12} {n:>6} failed: {}",
                        super::first_line(&format!("{e:#}"))
                    );
                    rows.push(
                        json!({ "implementation": label, "vips": n, "error": format!("{e:#}") }),
                    );
                }
            }
        }
    }
    println!(
        "  (from spawning vipd; answered = the client's ping to the first and the last VIP succeeds)"
    );
    Ok(json!({ "rows": rows }))
}

fn row(bin: &Path, n: usize, kind: Kind) -> anyhow::Result<(f64, f64, f64, u64)> {
    let lan = Lan::new("sc", 2).context("building the scale lab (needs root)")?;
    let router = lan.member(0);
    let client = lan.member(1);
    add_addr(router, "eth0", "192.0.2.1/24")?;
    add_addr(client, "eth0", "192.0.2.10/24")?;
    let list = vips(n);
    // The client reaches the other IPv4 TEST-NETs on the link.
    client.ip(&["route", "add", "198.51.100.0/24", "dev", "eth0"])?;
    client.ip(&["route", "add", "203.0.113.0/24", "dev", "eth0"])?;
    let base = count_addrs(router);
    let scratch = Scratch::new("benchsc")?;
    let mut inst = Inst::new(7, 200, Duration::from_millis(100), "");
    inst.vips = list.clone();
    inst.start_master = true;
    let mut node = Node::new(router, &scratch, "r1", kind, &[inst], bin)?;
    let t0 = Instant::now();
    node.start()?;
    let deadline = t0 + ROW_TIMEOUT;
    let check = |what: &str| -> anyhow::Result<()> {
        if Instant::now() >= deadline {
            bail!("{what} not reached within {ROW_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
        Ok(())
    };
    while !node.is_master(0) {
        check("MASTER")?;
    }
    let master = t0.elapsed();
    while count_addrs(router) < base + n {
        check("all VIPs on eth0")?;
    }
    let all = t0.elapsed();
    let first = list.first().context("no VIPs")?;
    let last = list.last().context("no VIPs")?;
    while !(pings(client, last) && pings(client, first)) {
        check("the first and last VIP answering")?;
    }
    let answered = t0.elapsed();
    // keepalived: every process (parent and VRRP child).
    let rss = node
        .pids()
        .into_iter()
        .filter_map(super::peak_rss_kib)
        .sum();
    node.stop();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    Ok((ms(master), ms(all), ms(answered), rss))
}
