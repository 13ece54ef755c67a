//! Scale: one instance with 1 .. 10 000 VIPs. Time from starting vipd to (a) MASTER,
//! (b) every VIP on the interface, (c) the first and the last VIP answering a client's
//! ping; and the daemon's peak RSS (VmHWM; keepalived: all its processes). keepalived
//! runs the rows it can (≤ 255 VIPs: it lists them all in its adverts).
//!
//! Addresses: the bench uses TEST-NETs and, for 10 000 IPv4 VIPs, the benchmarking range
//! 198.18.0.0/15 (RFC 2544 §C.2.2, made for exactly this), only inside its own
//! namespaces. The IPv4 TEST-NETs hold ~760 host addresses, so the small IPv4 rows are
//! 1, 100, 255 (what one advert can list) and 700 (198.51.100.0/24, 203.0.113.0/24 and
//! the top of 192.0.2.0/24); the 10 000-VIP IPv4 row is 198.18.0.1 onwards, /15. The
//! IPv6 rows (1 000, 10 000) are one /128 VIP per /64 of 2001:db8:1::/48 (documentation
//! prefix), `2001:db8:1:N::1`, announced with unsolicited neighbour advertisements. One
//! per /64 because every IPv6 address joins its solicited-node group (ff02::1:ffXX:XXXX,
//! the low 24 bits), and Linux walks all of an interface's groups on every address
//! added: 10 000 consecutive addresses in one /64 (10 000 groups) take the kernel itself
//! ~40 s to add, whoever asks (docs/benchmarks.md). Adverts list the first 255 (IPv4) or
//! 64 (IPv6) addresses; the rest are held by the master all the same, as keepalived's
//! `virtual_ipaddress_excluded` are.
//!
//! Each row has an `ip -batch` floor: the kernel adding the same addresses from one
//! process, with no election, announcements or process start.

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

/// One row: how many VIPs, of which family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Size {
    vips: usize,
    ipv6: bool,
}

impl Size {
    const fn v4(vips: usize) -> Self {
        Self { vips, ipv6: false }
    }

    const fn v6(vips: usize) -> Self {
        Self { vips, ipv6: true }
    }

    fn family(self) -> &'static str {
        if self.ipv6 { "IPv6" } else { "IPv4" }
    }

    /// The row's VIPs: IPv4 TEST-NET addresses while they suffice, else 198.18.0.0/15
    /// (RFC 2544 benchmarking); IPv6 one /128 per /64 of 2001:db8:1::/48.
    fn addresses(self) -> Vec<String> {
        let n = self.vips;
        if self.ipv6 {
            return (0..n)
                .map(|i| format!("2001:db8:1:{:x}::1/128", i + 1))
                .collect();
        }
        if n > MAX_TESTNET_VIPS {
            let base = u32::from(std::net::Ipv4Addr::new(198, 18, 0, 0));
            return (0..n as u32)
                .map(|i| format!("{}/15", std::net::Ipv4Addr::from(base + i + 1)))
                .collect();
        }
        (0..n)
            .map(|i| match i {
                0..254 => format!("198.51.100.{}/24", i + 1),
                254..508 => format!("203.0.113.{}/24", i - 254 + 1),
                _ => format!("192.0.2.{}/24", i - 508 + 50),
            })
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

/// Rows: IPv4 1, 100, 255, 700 and 10 000; IPv6 1 000 and 10 000 (--quick: IPv4 1, 255,
/// 700, 10 000 and IPv6 1 000).
pub fn run(bin: &Path, opts: Options) -> anyhow::Result<Value> {
    let sizes: &[Size] = if opts.quick {
        &[
            Size::v4(1),
            Size::v4(255),
            Size::v4(700),
            Size::v6(1000),
            Size::v4(10_000),
        ]
    } else {
        &[
            Size::v4(1),
            Size::v4(100),
            Size::v4(255),
            Size::v4(700),
            Size::v6(1000),
            Size::v4(10_000),
            Size::v6(10_000),
        ]
    };
    println!(
        "{:<12} {:>6} {:>10} {:>12} {:>12} {:>12} {:>14}",
        "impl", "VIPs", "MASTER ms", "all VIPs ms", "answered ms", "peak RSS MiB", "advert late ms"
    );
    let mut rows = Vec::new();
    for kind in [
        Kind::Vipd {
            xdp: true,
            bfd: false,
        },
        Kind::Keepalived,
    ] {
        for &size in sizes {
            let (n, family) = (size.vips, size.family());
            let label = kind.label();
            if kind == Kind::Keepalived && n > 255 {
                // keepalived lists every VIP in the advert: more than 255 is a config
                // error there (virtual_ipaddress_excluded is its way around).
                continue;
            }
            match row(bin, size, kind) {
                Ok((master, all, answered, rss, late)) => {
                    let late_text = late.map_or("-".to_owned(), |ms| format!("{ms:.1}"));
                    println!(
                        "{label:<12} {n:>6} {master:>10.0} {all:>12.0} {answered:>12.0} {:>12.1} {late_text:>14}  {family}",
                        rss as f64 / 1024.0
                    );
                    rows.push(json!({
                        "implementation": label, "vips": n, "family": family, "master_ms": master,
                        "all_vips_ms": all, "answered_ms": answered, "peak_rss_kib": rss,
                        "advert_late_max_ms": late,
                    }));
                }
                Err(e) => {
                    println!(
                        "{label:<12} {n:>6} failed: {}  {family}",
                        super::first_line(&format!("{e:#}"))
                    );
                    rows.push(json!({
                        "implementation": label, "vips": n, "family": family,
                        "error": format!("{e:#}"),
                    }));
                }
            }
        }
    }
    // The floor: the kernel adding the same addresses from one `ip -batch` (no
    // election, no announcements, no process start).
    for &size in sizes {
        let (n, family) = (size.vips, size.family());
        match kernel_floor(size) {
            Ok(all) => {
                println!(
                    "{:<12} {n:>6} {:>10} {all:>12.0} {:>12} {:>12}  {family}",
                    "ip -batch", "-", "", ""
                );
                rows.push(json!({
                    "implementation": "kernel (ip -batch)", "vips": n, "family": family,
                    "all_vips_ms": all,
                }));
            }
            Err(e) => println!("{:<12} {n:>6} failed: {e:#}  {family}", "ip -batch"),
        }
    }
    println!(
        "  (from spawning vipd; answered = the client's ping to the first and the last VIP succeeds;"
    );
    println!(
        "   advert late = the latest vipd sent an advert after it was due, VIPs being added meanwhile;"
    );
    println!("   ip -batch = the kernel adding the same addresses, the floor for 'all VIPs')");
    Ok(json!({ "rows": rows }))
}

/// Milliseconds for `ip -batch` to add the VIPs of a row to a fresh interface.
fn kernel_floor(size: Size) -> anyhow::Result<f64> {
    let n = size.vips;
    let lan = Lan::new_ipv6("scf", 1).context("building the floor lab (needs root)")?;
    let ns = lan.member(0);
    let scratch = Scratch::new("benchscf")?;
    // nodad (IPv6 only), as vipd adds its IPv6 VIPs.
    let batch: String = size
        .addresses()
        .iter()
        .map(|v| {
            let nodad = if v.contains(':') { " nodad" } else { "" };
            format!("address add {v} dev eth0{nodad}\n")
        })
        .collect();
    let file = scratch.write("batch", &batch)?;
    let file = file.to_string_lossy().into_owned();
    let t = Instant::now();
    ns.ip(&["-batch", &file])?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let added = count_addrs(ns);
    if added < n {
        bail!("ip -batch added {added} of {n} addresses");
    }
    Ok(ms)
}

/// (MASTER, all VIPs, answered) in ms, peak RSS in KiB, and for vipd the latest advert
/// (ms after it was due) while the VIPs were being added.
type RowResult = (f64, f64, f64, u64, Option<f64>);

fn row(bin: &Path, size: Size, kind: Kind) -> anyhow::Result<RowResult> {
    let (n, ipv6) = (size.vips, size.ipv6);
    let lan = if ipv6 {
        Lan::new_ipv6("sc", 2)
    } else {
        Lan::new("sc", 2)
    }
    .context("building the scale lab (needs root)")?;
    let router = lan.member(0);
    let client = lan.member(1);
    add_addr(router, "eth0", "192.0.2.1/24")?;
    add_addr(client, "eth0", "192.0.2.10/24")?;
    let list = size.addresses();
    if ipv6 {
        add_addr(client, "eth0", "2001:db8:0:1::10/64")?;
        client.ip(&["-6", "route", "add", "2001:db8:1::/48", "dev", "eth0"])?;
        // The router holds only /128 VIPs: the client's prefix is on the link too.
        router.ip(&["-6", "route", "add", "2001:db8:0:1::/64", "dev", "eth0"])?;
    } else {
        // The client reaches the other IPv4 TEST-NETs on the link.
        client.ip(&["route", "add", "198.51.100.0/24", "dev", "eth0"])?;
        client.ip(&["route", "add", "203.0.113.0/24", "dev", "eth0"])?;
        client.ip(&["route", "add", "198.18.0.0/15", "dev", "eth0"])?;
    }
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
    let late = matches!(kind, Kind::Vipd { .. })
        .then(|| node.counter_sum("advert_late_max_us") as f64 / 1e3);
    node.stop();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    Ok((ms(master), ms(all), ms(answered), rss, late))
}
