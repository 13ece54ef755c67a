//! ARP and NDP: what answering ARP (IPv4) and neighbour solicitations (IPv6) for the
//! VIP costs, XDP vs the kernel.
//!
//! Lab: a responder namespace and a client. The client sends a bounded burst of ARP
//! requests for the VIP (as fast as it can, capped) and counts the replies. Three runs:
//! - `baseline`: requests for an address nobody has (no XDP): the cost of sending,
//!   bridging and receiving the requests, which the other two also pay;
//! - `kernel`: the VIP is on the responder's eth0, no XDP: the kernel's arp_rcv answers;
//! - `xdp`: `vipd arp-responder` (generic XDP on veth), the VIP not on the interface.
//!
//! Then the same three runs for IPv6 in a second lab ([`Lan::new_ipv6`], DAD off):
//! neighbour solicitations for 2001:db8::100 (with the client's link-layer address
//! option, to the solicited-node group), answered by the kernel's ndisc or by the
//! program's NDP responder; counted are the neighbour advertisements for the VIP.
//!
//! CPU is the machine's kernel time (system + irq + softirq from /proc/stat, all CPUs)
//! during the burst: packet processing on veth runs in softirq on the sending CPU, so
//! it cannot be charged to one namespace; user time (other work on the machine) is left
//! out. Responder cost = run − baseline, per 100 000 requests.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};
use vipd_tests::netns::Netns;
use vipd_tests::packet::neighbour_solicitation_frame;
use vipd_tests::topo::{Lan, add_addr, mac_of};

use super::Options;
use super::traffic::{Flood, FloodSpec, ReplyCounter, arp_request};

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const NOBODY: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 222);
const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
const NOBODY6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x222);
const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);
/// Send-rate cap: well above what one core pushes through veth + bridge.
const RATE_CAP_PPS: u64 = 1_000_000;

/// Kernel CPU seconds (system + irq + softirq, all CPUs) so far.
fn kernel_cpu_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .context("/proc/stat has no cpu line")?;
    let f: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let pick = |i: usize| f.get(i).copied().unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok((pick(2) + pick(5) + pick(6)) / hz)
}

struct RunResult {
    sent: u64,
    replies: u64,
    replies_per_sec: f64,
    kernel_cpu: f64,
    seconds: f64,
    xdp_counters: Option<String>,
}

/// Sends `requests` copies of `frame` from `client` as fast as the cap allows, and
/// counts what `counter` sees come back; kernel CPU over the burst.
fn burst(
    client: &Netns,
    frame: Vec<u8>,
    requests: u64,
    counter: ReplyCounter,
) -> anyhow::Result<RunResult> {
    let cpu0 = kernel_cpu_seconds()?;
    let t = Instant::now();
    let flood = Flood::start(
        client,
        "eth0",
        FloodSpec {
            frames: vec![frame],
            rate_pps: RATE_CAP_PPS,
            max_frames: requests,
            max_time: Duration::from_secs(30),
        },
    )?;
    let report = flood.join();
    // Replies still in flight: wait until the count stops moving (bounded).
    let mut last = counter.count();
    let settle_deadline = Instant::now() + Duration::from_secs(3);
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = counter.count();
        if now == last || Instant::now() >= settle_deadline {
            break;
        }
        last = now;
    }
    let seconds = t.elapsed().as_secs_f64();
    let cpu = kernel_cpu_seconds()? - cpu0;
    let (replies, span) = counter.finish();
    let replies_per_sec = match span {
        Some((_, last)) if replies > 0 => {
            replies as f64 / last.duration_since(t).as_secs_f64().max(1e-6)
        }
        _ => 0.0,
    };
    Ok(RunResult {
        sent: report.sent,
        replies,
        replies_per_sec,
        kernel_cpu: cpu,
        seconds,
        xdp_counters: None,
    })
}

/// Runs baseline, kernel and XDP with 200 000 requests each (20 000 with --quick), for
/// ARP and then for NDP.
pub fn run(bin: &Path, opts: Options) -> anyhow::Result<Value> {
    let requests: u64 = if opts.quick { 20_000 } else { 200_000 };
    let lan = Lan::new("arp", 2).context("building the ARP lab (needs root)")?;
    let responder = lan.member(0);
    let client = lan.member(1);
    add_addr(responder, "eth0", "192.0.2.1/24")?;
    add_addr(client, "eth0", "192.0.2.10/24")?;
    let client_mac = mac_of(client, "eth0")?;
    let bin = bin.to_string_lossy().into_owned();

    let arp_burst = |target: Ipv4Addr| -> anyhow::Result<RunResult> {
        let counter = ReplyCounter::start(client, "eth0", target, Duration::from_secs(60))?;
        burst(
            client,
            arp_request(client_mac, CLIENT, target),
            requests,
            counter,
        )
    };

    let baseline = arp_burst(NOBODY)?;
    add_addr(responder, "eth0", "192.0.2.100/24")?;
    let kernel = arp_burst(VIP)?;
    responder.ip(&["addr", "del", "192.0.2.100/24", "dev", "eth0"])?;
    let xdp = with_xdp_responder(responder, &bin, "192.0.2.100", || arp_burst(VIP))?;
    println!("ARP (IPv4)");
    let arp = report(&baseline, &kernel, &xdp);
    drop(lan);

    // NDP: the same three runs over IPv6.
    let lan = Lan::new_ipv6("ndp", 2).context("building the NDP lab (needs root)")?;
    let responder = lan.member(0);
    let client = lan.member(1);
    add_addr(client, "eth0", &format!("{CLIENT6}/64"))?;
    let client_mac = mac_of(client, "eth0")?;
    let ndp_burst = |target: Ipv6Addr| -> anyhow::Result<RunResult> {
        let counter = ReplyCounter::start_ndp(client, "eth0", target, Duration::from_secs(60))?;
        let frame = neighbour_solicitation_frame(client_mac, CLIENT6, target);
        burst(client, frame, requests, counter)
    };
    let baseline6 = ndp_burst(NOBODY6)?;
    add_addr(responder, "eth0", &format!("{VIP6}/64"))?;
    let kernel6 = ndp_burst(VIP6)?;
    responder.ip(&["addr", "del", &format!("{VIP6}/64"), "dev", "eth0"])?;
    let xdp6 = with_xdp_responder(responder, &bin, &VIP6.to_string(), || ndp_burst(VIP6))?;
    println!("NDP (IPv6)");
    let ndp = report(&baseline6, &kernel6, &xdp6);

    let mut out = arp;
    out["requests"] = json!(requests);
    out["ndp"] = ndp;
    Ok(out)
}

/// Runs `burst` while `vipd arp-responder` answers for `vip` on the responder's eth0;
/// the run carries the program's counters.
fn with_xdp_responder(
    responder: &Netns,
    bin: &str,
    vip: &str,
    burst: impl FnOnce() -> anyhow::Result<RunResult>,
) -> anyhow::Result<RunResult> {
    let mut xdp_proc = responder.spawn(&[
        bin,
        "arp-responder",
        "--interface",
        "eth0",
        "--vip",
        vip,
        "--xdp-mode",
        "generic",
    ])?;
    xdp_proc.wait_for_line(Duration::from_secs(10), |l| l.starts_with("ready"))?;
    let mut xdp = burst()?;
    let done = xdp_proc.terminate(Duration::from_secs(5))?;
    xdp.xdp_counters = done.stdout.lines().last().map(str::to_owned);
    Ok(xdp)
}

/// Prints the three runs as a table and returns them as JSON: the responders' CPU is
/// each run's kernel CPU less the baseline's for as many requests.
fn report(baseline: &RunResult, kernel: &RunResult, xdp: &RunResult) -> Value {
    let per_100k = |r: &RunResult| {
        (r.kernel_cpu - baseline.kernel_cpu * r.sent as f64 / baseline.sent.max(1) as f64).max(0.0)
            * 1e3
            * 100_000.0
            / r.sent.max(1) as f64
    };
    let cost_kernel = per_100k(kernel);
    let cost_xdp = per_100k(xdp);
    let ratio = if cost_kernel > 0.0 {
        Some(cost_xdp / cost_kernel)
    } else {
        None
    };
    println!(
        "{:<10} {:>9} {:>9} {:>12} {:>14} {:>20}",
        "mode", "sent", "replies", "replies/s", "kernel CPU ms", "responder ms/100k req"
    );
    for (name, r, cost) in [
        ("baseline", baseline, None),
        ("kernel", kernel, Some(cost_kernel)),
        ("xdp", xdp, Some(cost_xdp)),
    ] {
        println!(
            "{:<10} {:>9} {:>9} {:>12.0} {:>14.0} {:>20}",
            name,
            r.sent,
            r.replies,
            r.replies_per_sec,
            r.kernel_cpu * 1e3,
            cost.map_or("-".to_owned(), |c| format!("{c:.0}"))
        );
    }
    println!(
        "  XDP/kernel responder CPU: {}; replies/s XDP/kernel: {:.2}",
        ratio.map_or("n/a".to_owned(), |r| format!("{r:.2}")),
        xdp.replies_per_sec / kernel.replies_per_sec.max(1e-9)
    );
    if let Some(c) = &xdp.xdp_counters {
        println!("  XDP counters: {c}");
    }
    let to_json = |r: &RunResult| {
        json!({
            "sent": r.sent, "replies": r.replies, "replies_per_sec": r.replies_per_sec,
            "kernel_cpu_ms": r.kernel_cpu * 1e3, "seconds": r.seconds,
        })
    };
    json!({
        "baseline": to_json(baseline),
        "kernel": to_json(kernel),
        "xdp": to_json(xdp),
        "xdp_counters": xdp.xdp_counters,
        "responder_cpu_ms_per_100k": { "kernel": cost_kernel, "xdp": cost_xdp },
        "xdp_over_kernel_cpu": ratio,
        "xdp_over_kernel_replies_per_sec": xdp.replies_per_sec / kernel.replies_per_sec.max(1e-9),
    })
}
