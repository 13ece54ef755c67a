//! Scale: one instance with 1 .. 10 000 VIPs. Time from starting vipd to (a) MASTER,
//! (b) every VIP on the interface, (c) the first and the last VIP answering a client's
//! ping; and vipd's peak RSS (VmHWM).
//!
//! Addresses: the IPv4 TEST-NETs hold only ~760 host addresses, so rows up to 255 VIPs
//! use 198.51.100.0/24 and 203.0.113.0/24 (IPv4) and the 1 000 and 10 000 rows use the
//! IPv6 documentation prefix 2001:db8::/32 (RFC 3849). The advert carries the first
//! 255 addresses; the rest are held by the master all the same.

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
const ROW_TIMEOUT: Duration = Duration::from_secs(90);

fn vips(n: usize) -> Vec<String> {
    if n <= 255 {
        (0..n)
            .map(|i| {
                if i < 250 {
                    format!("198.51.100.{}/24", i + 1)
                } else {
                    format!("203.0.113.{}/24", i - 250 + 1)
                }
            })
            .collect()
    } else {
        (0..n)
            .map(|i| format!("2001:db8:1::{:x}:{:x}/64", i / 0x1000 + 1, i % 0x1000 + 1))
            .collect()
    }
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

/// Rows 1, 100, 255, 1 000, 10 000 (--quick: 1, 100, 1 000).
pub fn run(bin: &Path, opts: Options) -> anyhow::Result<Value> {
    let sizes: &[usize] = if opts.quick {
        &[1, 100, 1000]
    } else {
        &[1, 100, 255, 1000, 10_000]
    };
    println!(
        "{:>6} {:>6} {:>10} {:>12} {:>12} {:>12}",
        "VIPs", "family", "MASTER ms", "all VIPs ms", "answered ms", "peak RSS MiB"
    );
    let mut rows = Vec::new();
    for &n in sizes {
        let family = if n <= 255 { "IPv4" } else { "IPv6" };
        match row(bin, n) {
            Ok((master, all, answered, rss)) => {
                println!(
                    "{n:>6} {family:>6} {master:>10.0} {all:>12.0} {answered:>12.0} {:>12.1}",
                    rss as f64 / 1024.0
                );
                rows.push(json!({
                    "vips": n, "family": family, "master_ms": master, "all_vips_ms": all,
                    "answered_ms": answered, "peak_rss_kib": rss,
                }));
            }
            Err(e) => {
                println!("{n:>6} {family:>6} failed: {e:#}");
                rows.push(json!({ "vips": n, "family": family, "error": format!("{e:#}") }));
            }
        }
    }
    println!("  (from spawning vipd; answered = the client's ping to the first and the last VIP succeeds)");
    Ok(json!({ "rows": rows }))
}

fn row(bin: &Path, n: usize) -> anyhow::Result<(f64, f64, f64, u64)> {
    let lan = Lan::new("sc", 2).context("building the scale lab (needs root)")?;
    let router = lan.member(0);
    let client = lan.member(1);
    add_addr(router, "eth0", "192.0.2.1/24")?;
    add_addr(client, "eth0", "192.0.2.10/24")?;
    let list = vips(n);
    if n > 255 {
        client.ip(&["addr", "add", "2001:db8:1::ffff:1/64", "dev", "eth0", "nodad"])?;
    } else {
        // The client reaches the other IPv4 TEST-NETs on the link.
        client.ip(&["route", "add", "198.51.100.0/24", "dev", "eth0"])?;
        client.ip(&["route", "add", "203.0.113.0/24", "dev", "eth0"])?;
    }
    let base = count_addrs(router);
    let scratch = Scratch::new("benchsc")?;
    let mut inst = Inst::new(7, 200, Duration::from_millis(100), "");
    inst.vips = list.clone();
    inst.start_master = true;
    let mut node = Node::new(router, &scratch, "r1", Kind::Vipd { xdp: true }, &[inst], bin)?;
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
    let rss = node.pid().and_then(super::peak_rss_kib).unwrap_or(0);
    node.stop();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    Ok((ms(master), ms(all), ms(answered), rss))
}
