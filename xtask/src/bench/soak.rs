//! `cargo xtask soak --minutes N`: a pair of vipd under a fixed schedule of disturbances
//! for N minutes, checked against what the design says each disturbance does.
//!
//! Lab: r1 (priority 150) and r2 (priority 100) on one LAN with a client, 16 instances
//! each (VRID 1..=16, VIP 192.0.2.101..=116, 10 ms adverts, `xdp = "generic"`). Every
//! instance tracks a secondary interface `trk0` (a veth pair inside the router's
//! namespace, weight 0: down means FAULT) and a track script (weight −20, healthy while
//! a flag file is absent).
//!
//! Schedule (seconds from the start of the measured run; no two events share a second,
//! see [`schedule`]):
//!
//! | every | at | what | the design's effect |
//! |---|---|---|---|
//! | 10 s | 5 + 10k | SIGHUP to both (unchanged file) | none: every instance is kept (`reloads` counter moves) |
//! | 20 s | 13 + 20k | the track script flips (flag file created / removed) | priorities 150 ↔ 130 and 100 ↔ 80: never cross, no transition |
//! | 30 s | 22 + 30k | r2 (the backup) SIGSTOPped for 80 ms | none: XDP keeps `last_seen` of the master's adverts while the process is stopped |
//! | 60 s | 28 + 60k | 2 s VRRP flood (20 000 adverts/s for VRID 99, nobody's) from the client | none |
//! | 120 s | 40 + 120k | `trk0` down for 3 s, alternately on r1 (even k) and r2 (odd k) | r1: MASTER→FAULT, FAULT→BACKUP (fault cleared, RFC 5798 §6.4.1), BACKUP→MASTER (preemption); r2 meanwhile BACKUP→MASTER, MASTER→BACKUP. On r2: BACKUP→FAULT, FAULT→BACKUP, r1 untouched |
//!
//! Report: per instance the state changes each router logged against the expected list
//! (an exact match, in order), counters against the log, RSS / fds / BPF maps / CPU
//! sampled every second, adverts sent against run time / interval, log lines per minute.
//! Table on stdout, JSON in `target/soak/soak.json` (both logs beside it), PNG (RSS, fds, transitions over
//! time). Any mismatch fails the run (non-zero exit) after the report is written.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use plotters::prelude::*;
use serde_json::{Value, json};
use vipd_tests::proc::{fd_census, files_below, rss_kib};
use vipd_tests::stall::{StallWatch, Stalls};
use vipd_tests::topo::{Lan, add_addr, link_down, link_up, mac_of};
use vipd_tests::vipd::{Scratch, strip_ansi};

use super::lab::{Inst, Kind, Node};
use super::plot::{PALETTE, err, font, legend, present};
use super::traffic::{Flood, FloodSpec, vrrp_advert};

const INSTANCES: u8 = 16;
const INTERVAL: Duration = Duration::from_millis(10);
const MASTER_PRIORITY: u8 = 150;
const BACKUP_PRIORITY: u8 = 100;
/// The track script's weight: 150 − 20 = 130 stays above 100 and 100 − 20 = 80 below
/// 150, whichever of the two routers' scripts fail, so it never moves mastership.
const SCRIPT_WEIGHT: i32 = -20;
/// The lowest priority a backup here runs at (its script failing): the longest
/// Master_Down_Interval, so the window before a takeover where its cause can lie.
const LOWEST_PRIORITY: u8 = (BACKUP_PRIORITY as i32 + SCRIPT_WEIGHT) as u8;
/// The tracked secondary interface (weight 0: down = FAULT).
const TRACKED: &str = "trk0";
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
const STALL: Duration = Duration::from_millis(80);
const LINK_DOWN_FOR: Duration = Duration::from_secs(3);
const FLOOD_FOR: Duration = Duration::from_secs(2);
const FLOOD_PPS: u64 = 20_000;
/// RFC 5798 §6.1: Master_Down_Interval of a backup at `priority` with 10 ms adverts.
fn master_down(priority: u8) -> Duration {
    3 * INTERVAL + INTERVAL * (256 - u32::from(priority)) / 256
}

/// The shortest host stall (the hypervisor running none of the VM's CPUs' work; see
/// `vipd_tests::stall`) that can silence a master for a backup's Master_Down_Interval:
/// the highest backup priority here (150, when r2 is master during a flap) has the
/// shortest interval, and the master's last advert before the stall went out at most one
/// interval earlier. A takeover after such a stall is what the RFC asks for.
fn silencing_stall() -> Duration {
    Stalls::silencing(master_down(MASTER_PRIORITY), INTERVAL)
}

/// RSS growth allowed between the first and the last window (see [`check_growth`]).
const RSS_SLACK_KIB: u64 = 512;

/// Which router.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    R1,
    R2,
}

impl Side {
    fn index(self) -> usize {
        match self {
            Side::R1 => 0,
            Side::R2 => 1,
        }
    }
}

/// One scheduled disturbance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    Reload,
    TrackFlip,
    StallBackup,
    Flood,
    LinkDown(Side),
    LinkUp(Side),
}

impl Event {
    fn label(self) -> String {
        match self {
            Event::Reload => "sighup".into(),
            Event::TrackFlip => "track_flip".into(),
            Event::StallBackup => "stall_backup".into(),
            Event::Flood => "flood".into(),
            Event::LinkDown(s) => format!("link_down_r{}", s.index() + 1),
            Event::LinkUp(s) => format!("link_up_r{}", s.index() + 1),
        }
    }
}

/// The disturbances of a run of `total`, in time order. Each periodic event has its own
/// offset so no two fall within the same second; an event is left out when its effects
/// (a link flap: down, up and the preemption after it) would not be over 5 s before the
/// end, so the last sample sees a settled pair.
fn schedule(total: Duration) -> Vec<(Duration, Event)> {
    let mut out = Vec::new();
    let last = total.saturating_sub(Duration::from_secs(5));
    let mut periodic = |period: u64, offset: u64, event: Event| {
        let mut t = offset;
        while Duration::from_secs(t) <= last {
            out.push((Duration::from_secs(t), event));
            t += period;
        }
    };
    periodic(10, 5, Event::Reload);
    periodic(20, 13, Event::TrackFlip);
    periodic(30, 22, Event::StallBackup);
    periodic(60, 28, Event::Flood);
    let mut k = 0u64;
    loop {
        let down = Duration::from_secs(40 + 120 * k);
        if down + LINK_DOWN_FOR > last {
            break;
        }
        let side = if k.is_multiple_of(2) {
            Side::R1
        } else {
            Side::R2
        };
        out.push((down, Event::LinkDown(side)));
        out.push((down + LINK_DOWN_FOR, Event::LinkUp(side)));
        k += 1;
    }
    out.sort_by_key(|(t, _)| *t);
    out
}

/// The state changes (from, to) every instance of each router must log over the
/// schedule, in order. Only a link flap moves anything (see the module doc).
fn expected_changes(schedule: &[(Duration, Event)]) -> [Vec<Expected>; 2] {
    let mut out: [Vec<Expected>; 2] = [Vec::new(), Vec::new()];
    for (at, event) in schedule {
        let at = at.as_secs_f64();
        let mut push = |r: usize, from: &'static str, to: &'static str| {
            out[r].push(Expected { at, from, to });
        };
        match event {
            // RFC 5798 §6.4.1 on leaving Fault: Backup; r1 then preempts r2 (§6.4.2,
            // higher priority, preempt on) after Master_Down_Interval; r2 took over at
            // Skew_Time after r1's priority-0 advert (§6.4.3) and yields at r1's first
            // advert.
            Event::LinkDown(Side::R1) => {
                push(0, "MASTER", "FAULT");
                push(1, "BACKUP", "MASTER");
            }
            Event::LinkUp(Side::R1) => {
                push(0, "FAULT", "BACKUP");
                push(0, "BACKUP", "MASTER");
                push(1, "MASTER", "BACKUP");
            }
            Event::LinkDown(Side::R2) => push(1, "BACKUP", "FAULT"),
            Event::LinkUp(Side::R2) => push(1, "FAULT", "BACKUP"),
            _ => {}
        }
    }
    out
}

/// A state change the schedule causes: `from` → `to`, soon after the event at `at`
/// (seconds since the start of the run).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Expected {
    at: f64,
    from: &'static str,
    to: &'static str,
}

/// How long after its event an expected change may come: a flap's preemption follows
/// the link's return by Master_Down_Interval (≈ 36 ms); a loaded machine may delay the
/// netlink event and the daemon by far more, but not by seconds.
const EXPECTED_WITHIN: f64 = 2.0;

/// A state change vipd logged.
#[derive(Clone, Debug, PartialEq)]
struct Change {
    /// Seconds since the start of the run (from the log's UTC time of day).
    t: f64,
    from: String,
    to: String,
    reason: String,
}

/// One sample of both daemons.
#[derive(Clone, Debug, Default)]
struct Sample {
    /// Seconds since the start of the measured run.
    t: f64,
    rss_kib: [u64; 2],
    fds: [u64; 2],
    bpf_maps: [u64; 2],
    cpu_seconds: [f64; 2],
    /// Sum over the instances of `transitions` since the start of the measured run.
    transitions: [u64; 2],
    /// Lines vipd has logged since it started.
    log_lines: [usize; 2],
    /// Per instance (VI_1 first): `adverts_late` since the daemon started.
    late: [Vec<u64>; 2],
    /// Frames the kernel dropped from a full backlog (all CPUs, /proc/net/softnet_stat):
    /// adverts lost there never reach XDP or the socket.
    backlog_drops: u64,
    /// CPU time the hypervisor ran something else on our virtual CPUs, all CPUs, in
    /// clock ticks (`steal` in /proc/stat): a real-time thread waits through it too.
    steal_ticks: u64,
}

impl Sample {
    fn to_json(&self) -> Value {
        json!({
            "t": self.t,
            "rss_kib": self.rss_kib,
            "fds": self.fds,
            "bpf_maps": self.bpf_maps,
            "cpu_seconds": self.cpu_seconds,
            "transitions": self.transitions,
            "log_lines": self.log_lines,
            "adverts_late": self.late,
            "backlog_drops": self.backlog_drops,
            "steal_ticks": self.steal_ticks,
        })
    }
}

/// Per instance name: the counters of `names` from one status answer.
fn instance_counters(node: &Node<'_>, names: &[&str]) -> BTreeMap<String, Vec<u64>> {
    let mut out = BTreeMap::new();
    let Some(status) = node.status() else {
        return out;
    };
    for inst in status["instances"].as_array().into_iter().flatten() {
        let Some(name) = inst["name"].as_str() else {
            continue;
        };
        let values = names
            .iter()
            .map(|n| inst["counters"][*n].as_u64().unwrap_or(0))
            .collect();
        out.insert(name.to_owned(), values);
    }
    out
}

/// The state changes vipd logged (`TIME ... state change ... instance=NAME from=X to=Y
/// reason=R`) in `log`, per instance, in order; `t` relative to `start_of_day`, the
/// run's start in UTC seconds of the day (a run may cross midnight).
fn logged_changes(log: &str, start_of_day: f64) -> BTreeMap<String, Vec<Change>> {
    let mut out: BTreeMap<String, Vec<Change>> = BTreeMap::new();
    for line in log.lines().filter(|l| l.contains("state change")) {
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .map(|v| v.trim_matches('"').to_owned())
        };
        let t = line
            .split_whitespace()
            .next()
            .and_then(seconds_of_day)
            .map_or(f64::NAN, |t| (t - start_of_day).rem_euclid(86_400.0));
        if let (Some(name), Some(from), Some(to)) =
            (field("instance="), field("from="), field("to="))
        {
            let reason = field("reason=").unwrap_or_default();
            out.entry(name).or_default().push(Change {
                t,
                from,
                to,
                reason,
            });
        }
    }
    out
}

/// UTC seconds of the day of an RFC 3339 time (`2026-12-03T14:58:06.857713Z`).
fn seconds_of_day(stamp: &str) -> Option<f64> {
    let time = stamp.split_once('T')?.1.trim_end_matches('Z');
    let mut parts = time.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// The wall clock's UTC seconds of the day now.
fn now_seconds_of_day() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64().rem_euclid(86_400.0))
}

/// What became of one instance's logged changes on one router.
#[derive(Debug, Default)]
struct Verdict {
    /// Expected changes seen in order, each within [`EXPECTED_WITHIN`] of its event.
    matched: usize,
    /// Expected changes not seen.
    missing: Vec<Expected>,
    /// A takeover by the backup and its yield at the master's next advert, the pair
    /// logged outside any scheduled cause: (time, what explains it, if anything).
    false_takeovers: Vec<(f64, Option<String>)>,
    /// Anything else logged that the schedule does not cause.
    unexpected: Vec<Change>,
}

/// Walks `got` against `want`: an expected change matches the next logged one with
/// the same states within its window; a logged BACKUP→MASTER (MasterDown) followed by
/// MASTER→BACKUP within a second is a false takeover, explained by `explain(t)`.
fn judge(want: &[Expected], got: &[Change], explain: &dyn Fn(f64) -> Option<String>) -> Verdict {
    let mut verdict = Verdict::default();
    let mut w = 0;
    let mut i = 0;
    while i < got.len() {
        let change = &got[i];
        if let Some(e) = want.get(w)
            && change.from == e.from
            && change.to == e.to
            && change.t >= e.at - 0.5
            && change.t <= e.at + EXPECTED_WITHIN
        {
            verdict.matched += 1;
            w += 1;
            i += 1;
            continue;
        }
        if let Some(next) = got.get(i + 1)
            && change.from == "BACKUP"
            && change.to == "MASTER"
            && change.reason == "MasterDown"
            && next.from == "MASTER"
            && next.to == "BACKUP"
            && next.t - change.t < 1.0
        {
            verdict.false_takeovers.push((change.t, explain(change.t)));
            i += 2;
            continue;
        }
        verdict.unexpected.push(change.clone());
        i += 1;
    }
    verdict.missing = want[w..].to_vec();
    verdict
}

/// Runs the soak for `minutes`, writes `out_dir/soak.json` and the PNG at `png`, prints
/// a table. Fails (after writing the report) when anything differs from the design.
pub fn run(bin: &Path, minutes: u64, out_dir: &Path, png: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let total = Duration::from_secs(minutes * 60);
    let lan = Lan::new("sk", 3).context("building the soak lab (needs root)")?;
    let client = lan.member(2);
    let client_ip = Ipv4Addr::new(192, 0, 2, 50);
    add_addr(client, "eth0", "192.0.2.50/24")?;
    let scratch = Scratch::new("soak")?;
    let flag = scratch.path().join("track-script-fails");
    let flag_text = flag.display().to_string();
    let script = format!(
        "\n[script.chk]\nscript = [\"/usr/bin/test\", \"!\", \"-e\", {flag_text:?}]\n\
         interval = \"200ms\"\nweight = {SCRIPT_WEIGHT}\n"
    );
    let mut nodes = Vec::new();
    for (i, priority) in [MASTER_PRIORITY, BACKUP_PRIORITY].into_iter().enumerate() {
        let ns = lan.member(i);
        add_addr(ns, "eth0", &format!("192.0.2.{}/24", i + 1))?;
        ns.ip(&[
            "link", "add", TRACKED, "type", "veth", "peer", "name", "trk0p",
        ])
        .context("adding the tracked veth pair")?;
        link_up(ns, "trk0p")?;
        link_up(ns, TRACKED)?;
        let instances: Vec<Inst> = (1..=INSTANCES)
            .map(|vrid| {
                Inst::new(
                    vrid,
                    priority,
                    INTERVAL,
                    &format!("192.0.2.{}/24", 100 + vrid),
                )
                .with("xdp", "\"generic\"")
                .with("track_interface", &format!("[{TRACKED:?}]"))
                .with("track_script", "[\"chk\"]")
            })
            .collect();
        let kind = Kind::Vipd {
            xdp: true,
            bfd: false,
        };
        let node = Node::new(ns, &scratch, &format!("r{}", i + 1), kind, &instances, bin)?;
        node.append_config(&script)?;
        nodes.push(node);
    }
    for node in &mut nodes {
        node.start()?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !nodes[0].all_master() || states(&nodes[1]).iter().any(|s| s != "BACKUP") {
        if Instant::now() >= deadline {
            bail!("r1 did not become MASTER of all 16 instances within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Warm-up: start-up churn (a backup that heard its master late) and the first
    // allocations are over before anything is counted.
    std::thread::sleep(Duration::from_secs(5));
    let pids: Vec<i32> = nodes
        .iter()
        .map(|n| n.pid().context("running"))
        .collect::<anyhow::Result<_>>()?;
    let pins_before: Vec<u64> = nodes.iter().map(|n| files_below(n.bpffs())).collect();

    let vrrp = vec![vrrp_advert(
        mac_of(client, "eth0")?,
        client_ip,
        99,
        100,
        Ipv4Addr::new(192, 0, 2, 199),
    )];
    let plan = schedule(total);
    let expected = expected_changes(&plan);
    const COUNTERS: [&str; 4] = [
        "transitions",
        "became_master",
        "adverts_sent",
        "adverts_late",
    ];
    let counters_before: Vec<_> = nodes
        .iter()
        .map(|n| instance_counters(n, &COUNTERS))
        .collect();
    let reloads_before: Vec<u64> = nodes.iter().map(|n| daemon_counter(n, "reloads")).collect();
    let log_before: Vec<usize> = nodes.iter().map(|n| n.log().lines().count()).collect();
    let transitions_before: Vec<u64> = nodes.iter().map(|n| n.transitions()).collect();
    let watch = StallWatch::start().context("starting the host-stall watch")?;
    // The log's clock and `start` must agree to a millisecond: takeovers (from the log)
    // are matched against stalls (from `start`) within a 37 ms window.
    let start_of_day = now_seconds_of_day();
    let start = Instant::now();
    let sample = |t0: Instant| -> Sample {
        let mut s = Sample {
            t: t0.elapsed().as_secs_f64(),
            ..Sample::default()
        };
        for (i, (node, pid)) in nodes.iter().zip(&pids).enumerate() {
            s.rss_kib[i] = rss_kib(*pid).unwrap_or(0);
            let census = fd_census(*pid).unwrap_or_default();
            (s.fds[i], s.bpf_maps[i]) = (census.fds, census.bpf_maps);
            s.cpu_seconds[i] = super::cpu_seconds(*pid).unwrap_or(0.0);
            let counters = instance_counters(node, &["transitions", "adverts_late"]);
            let transitions: u64 = counters.values().map(|v| v[0]).sum();
            s.transitions[i] = transitions.saturating_sub(transitions_before[i]);
            s.late[i] = (1..=INSTANCES)
                .map(|v| counters.get(&format!("VI_{v}")).map_or(0, |c| c[1]))
                .collect();
            s.log_lines[i] = node.log().lines().count();
        }
        s.backlog_drops = backlog_drops();
        s.steal_ticks = steal_ticks();
        s
    };

    println!(
        "soak: {minutes} min, {} scheduled events; r1 pid {}, r2 pid {}",
        plan.len(),
        pids[0],
        pids[1]
    );
    let mut samples = vec![sample(start)];
    let mut next_sample = start + SAMPLE_EVERY;
    let mut done: Vec<(f64, Event)> = Vec::new();
    let mut flood: Option<Flood> = None;
    let mut flood_sent = 0u64;
    let mut stalls_ms: Vec<f64> = Vec::new();
    let mut events = plan.iter().copied().peekable();
    let mut failures: Vec<String> = Vec::new();
    while start.elapsed() < total {
        if let Some(&(at, event)) = events.peek()
            && start.elapsed() >= at
        {
            events.next();
            done.push((start.elapsed().as_secs_f64(), event));
            match event {
                Event::Reload => {
                    for node in &nodes {
                        node.signal(libc::SIGHUP)?;
                    }
                }
                Event::TrackFlip => {
                    if flag.exists() {
                        std::fs::remove_file(&flag)?;
                    } else {
                        std::fs::write(&flag, b"")?;
                    }
                }
                Event::StallBackup => {
                    let t = Instant::now();
                    nodes[1].signal(libc::SIGSTOP)?;
                    std::thread::sleep(STALL);
                    nodes[1].signal(libc::SIGCONT)?;
                    stalls_ms.push(t.elapsed().as_secs_f64() * 1e3);
                }
                Event::Flood => {
                    if let Some(previous) = flood.take() {
                        flood_sent += previous.join().sent;
                    }
                    flood = Some(Flood::start(
                        client,
                        "eth0",
                        FloodSpec {
                            frames: vrrp.clone(),
                            rate_pps: FLOOD_PPS,
                            max_frames: FLOOD_PPS * FLOOD_FOR.as_secs(),
                            max_time: FLOOD_FOR,
                        },
                    )?);
                }
                Event::LinkDown(side) => link_down(nodes[side.index()].ns(), TRACKED)?,
                Event::LinkUp(side) => link_up(nodes[side.index()].ns(), TRACKED)?,
            }
            continue;
        }
        let now = Instant::now();
        if now >= next_sample {
            samples.push(sample(start));
            if samples.len() % 60 == 1 {
                let s = samples.last().cloned().unwrap_or_default();
                println!(
                    "  {:>5.0} s: RSS {} / {} KiB, fds {} / {}, transitions {} / {}",
                    s.t,
                    s.rss_kib[0],
                    s.rss_kib[1],
                    s.fds[0],
                    s.fds[1],
                    s.transitions[0],
                    s.transitions[1]
                );
            }
            next_sample += SAMPLE_EVERY;
            continue;
        }
        let next_event = events.peek().map(|(at, _)| start + *at);
        let wake = [Some(next_sample), next_event, Some(start + total)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now);
        std::thread::sleep(wake.saturating_duration_since(now));
    }
    if let Some(previous) = flood.take() {
        flood_sent += previous.join().sent;
    }
    samples.push(sample(start));
    let elapsed = start.elapsed().as_secs_f64();
    let host_stalls = watch.finish()?;
    let counters_after: Vec<_> = nodes
        .iter()
        .map(|n| instance_counters(n, &COUNTERS))
        .collect();
    let reloads_after: Vec<u64> = nodes.iter().map(|n| daemon_counter(n, "reloads")).collect();
    let pins_after: Vec<u64> = nodes.iter().map(|n| files_below(n.bpffs())).collect();
    let logs: Vec<String> = nodes.iter().map(|n| strip_ansi(&n.log())).collect();
    for (r, log) in logs.iter().enumerate() {
        let path = out_dir.join(format!("r{}.log", r + 1));
        std::fs::write(&path, log).with_context(|| format!("writing {}", path.display()))?;
    }
    for node in &mut nodes {
        node.stop();
    }

    // Transitions: per instance and router, the expected list in order, each change
    // soon after its event; the counters agree with the log.
    let names: Vec<String> = (1..=INSTANCES).map(|v| format!("VI_{v}")).collect();
    // What grew in the samples around `t` (2 s before to 1 s after).
    let grew = |t: f64, f: &dyn Fn(&Sample) -> u64| -> u64 {
        let before = samples
            .iter()
            .rev()
            .find(|s| s.t <= t - 2.0)
            .or(samples.first());
        let after = samples.iter().find(|s| s.t >= t + 1.0).or(samples.last());
        match (before, after) {
            (Some(b), Some(a)) => f(a).saturating_sub(f(b)),
            _ => 0,
        }
    };
    let mut per_instance = Vec::new();
    let mut matched = 0;
    let mut false_takeovers = Vec::new();
    for (r, log) in logs.iter().enumerate() {
        let seen = logged_changes(
            &log.lines()
                .skip(log_before[r])
                .collect::<Vec<_>>()
                .join("\n"),
            start_of_day,
        );
        let other = 1 - r;
        for (k, name) in names.iter().enumerate() {
            let got = seen.get(name).cloned().unwrap_or_default();
            // RFC 5798 §6.4.2: a backup that hears nothing for Master_Down_Interval
            // takes over. Explained only when the host silenced a CPU long enough for
            // that (the stall watch saw it), or the kernel dropped frames before XDP;
            // late adverts alone are the daemon's own fault.
            let late_near =
                |t: f64| grew(t, &|s: &Sample| s.late[other].get(k).copied().unwrap_or(0));
            let explain = |t: f64| -> Option<String> {
                let late = late_near(t);
                let at = start + Duration::from_secs_f64(t.max(0.0));
                let window = at
                    .checked_sub(master_down(LOWEST_PRIORITY))
                    .unwrap_or(start);
                if let Some(stall) = host_stalls.overlapping(window, at, silencing_stall()) {
                    return Some(format!(
                        "host stall {:.1} ms on cpu{} (r{} counted {late} adverts late)",
                        stall.length.as_secs_f64() * 1e3,
                        stall.cpu,
                        other + 1
                    ));
                }
                let drops = grew(t, &|s: &Sample| s.backlog_drops);
                (drops > 0).then(|| format!("kernel backlog dropped {drops} frames"))
            };
            let verdict = judge(&expected[r], &got, &explain);
            let delta = |i: usize| {
                let after = counters_after[r].get(name).map_or(0, |v| v[i]);
                let before = counters_before[r].get(name).map_or(0, |v| v[i]);
                after.saturating_sub(before)
            };
            let to_master = got.iter().filter(|c| c.to == "MASTER").count() as u64;
            let counters_agree = delta(0) == got.len() as u64 && delta(1) == to_master;
            let unexplained: Vec<f64> = verdict
                .false_takeovers
                .iter()
                .filter(|(_, why)| why.is_none())
                .map(|(t, _)| *t)
                .collect();
            let exact = verdict.missing.is_empty()
                && verdict.unexpected.is_empty()
                && verdict.false_takeovers.is_empty()
                && counters_agree;
            if exact {
                matched += 1;
            }
            let router = format!("r{}", r + 1);
            if !verdict.missing.is_empty() || !verdict.unexpected.is_empty() || !counters_agree {
                failures.push(format!(
                    "{router} {name}: missing {:?}, unexpected {:?}; counters {} transitions / {} to MASTER, log {} / {to_master}",
                    verdict.missing,
                    verdict.unexpected,
                    delta(0),
                    delta(1),
                    got.len()
                ));
            }
            if !unexplained.is_empty() {
                let late: Vec<u64> = unexplained.iter().map(|t| late_near(*t)).collect();
                failures.push(format!(
                    "{router} {name}: takeovers at {unexplained:?} s with no host stall of {:.1} ms or more and no kernel drops (the master counted {late:?} adverts late around them)",
                    silencing_stall().as_secs_f64() * 1e3
                ));
            }
            for (t, why) in &verdict.false_takeovers {
                // Every stall in the 300 ms before (ms before the takeover, cpu,
                // length): what an unexplained one came after, for the next analysis.
                let at = start + Duration::from_secs_f64(t.max(0.0));
                let before: Vec<Value> = host_stalls
                    .all_overlapping(
                        at.checked_sub(Duration::from_millis(300)).unwrap_or(start),
                        at,
                    )
                    .iter()
                    .map(|s| {
                        let ago = at.saturating_duration_since(s.ended).as_secs_f64() * 1e3;
                        json!([ago, s.cpu, s.length.as_secs_f64() * 1e3])
                    })
                    .collect();
                false_takeovers.push(json!({"router": router, "instance": name, "t": t,
                    "explained_by": why, "stalls_300ms_before": before}));
            }
            per_instance.push(json!({
                "router": router,
                "instance": name,
                "expected": expected[r].len(),
                "matched": verdict.matched,
                "logged": got.len(),
                "false_takeovers": verdict.false_takeovers.len(),
                "unexpected": verdict.unexpected.len(),
                "transitions_counter": delta(0),
                "became_master_counter": delta(1),
                "adverts_late": delta(3),
                "exact": exact,
            }));
        }
    }

    // Adverts: exactly one master per instance at any time, so both routers' adverts
    // together come to run time / interval (less the takeover gaps, some tens of ms).
    let mut advert_ratios = Vec::new();
    for name in &names {
        let sent: u64 = (0..2)
            .map(|r| {
                let after = counters_after[r].get(name).map_or(0, |v| v[2]);
                let before = counters_before[r].get(name).map_or(0, |v| v[2]);
                after.saturating_sub(before)
            })
            .sum();
        advert_ratios.push(sent as f64 / (elapsed / INTERVAL.as_secs_f64()));
    }
    let ratio_min = advert_ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let ratio_max = advert_ratios.iter().copied().fold(0.0f64, f64::max);
    // A master sends late only when starved of CPU, and a late advert shifts the ones
    // after it (no catch-up burst, RFC 5798 §6.4.3); 1 % is 36 s worth of adverts an
    // hour, far beyond the takeover gaps of the flaps (< 0.1 s each).
    if !(0.99..=1.01).contains(&ratio_min) || !(0.99..=1.01).contains(&ratio_max) {
        failures.push(format!(
            "adverts sent / expected per instance between {ratio_min:.4} and {ratio_max:.4}, outside 0.99..=1.01"
        ));
    }

    // Every SIGHUP was a reload.
    let sighups = done.iter().filter(|(_, e)| *e == Event::Reload).count() as u64;
    for r in 0..2 {
        let reloads = reloads_after[r].saturating_sub(reloads_before[r]);
        if reloads != sighups {
            failures.push(format!(
                "r{}: {sighups} SIGHUPs but {reloads} reloads",
                r + 1
            ));
        }
    }

    // Resources: no growth from the first window after warm-up to the last.
    let window = (elapsed / 6.0).max(SAMPLE_EVERY.as_secs_f64() * 5.0);
    let growth = check_growth(&samples, elapsed, window, &mut failures);
    for r in 0..2 {
        if pins_after[r] != pins_before[r] {
            failures.push(format!(
                "r{}: {} pins in bpffs at the start, {} at the end",
                r + 1,
                pins_before[r],
                pins_after[r]
            ));
        }
    }

    // Log lines per minute, and the bound the schedule allows.
    let log_per_minute = per_minute(&samples, minutes, |s, r| s.log_lines[r] as f64);
    let log_bound = log_budget_per_minute();
    for (r, lines) in log_per_minute.iter().enumerate() {
        if let Some((m, worst)) = lines
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .filter(|(_, w)| **w > log_bound as f64)
        {
            failures.push(format!(
                "r{}: {worst} log lines in minute {m}, above the bound of {log_bound}",
                r + 1
            ));
        }
    }
    let first = samples.first().cloned().unwrap_or_default();
    let last = samples.last().cloned().unwrap_or_default();
    let cpu_percent: Vec<f64> = (0..2)
        .map(|r| (last.cpu_seconds[r] - first.cpu_seconds[r]) / elapsed.max(1e-9) * 100.0)
        .collect();

    println!("\nsoak: {elapsed:.0} s, {} events done", done.len());
    println!(
        "| router | transitions (expected/instance) | exact instances | RSS start→end KiB | fds | BPF maps | CPU % of a core | log lines/min max |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in 0..2 {
        let exact = per_instance
            .iter()
            .filter(|p| p["router"] == format!("r{}", r + 1) && p["exact"] == true)
            .count();
        println!(
            "| r{} | {} ({} × 16) | {exact}/16 | {}→{} | {}→{} | {}→{} | {:.1} | {:.0} |",
            r + 1,
            last.transitions[r],
            expected[r].len(),
            first.rss_kib[r],
            last.rss_kib[r],
            first.fds[r],
            last.fds[r],
            first.bpf_maps[r],
            last.bpf_maps[r],
            cpu_percent[r],
            log_per_minute[r].iter().copied().fold(0.0, f64::max),
        );
    }
    let explained = false_takeovers
        .iter()
        .filter(|f| !f["explained_by"].is_null())
        .count();
    println!(
        "takeovers outside the schedule: {} ({explained} explained by a host stall of {:.1} ms or more, or kernel drops)",
        false_takeovers.len(),
        silencing_stall().as_secs_f64() * 1e3
    );
    println!(
        "host: {}; {} of them {:.1} ms or longer",
        host_stalls.summary(),
        host_stalls.at_least(silencing_stall()),
        silencing_stall().as_secs_f64() * 1e3
    );
    for f in &false_takeovers {
        println!(
            "  {} {} at {:.1} s: {}",
            f["router"].as_str().unwrap_or("?"),
            f["instance"].as_str().unwrap_or("?"),
            f["t"].as_f64().unwrap_or(0.0),
            f["explained_by"].as_str().unwrap_or("UNEXPLAINED")
        );
    }
    let steal_seconds = match (samples.first(), samples.last()) {
        (Some(a), Some(b)) => {
            b.steal_ticks.saturating_sub(a.steal_ticks) as f64 / clock_ticks() as f64
        }
        _ => 0.0,
    };
    println!(
        "adverts sent / expected per instance: {ratio_min:.4} .. {ratio_max:.4}; SIGHUPs {sighups}, reloads r1 {} r2 {}; flood frames {flood_sent}; stalls {} (longest {:.1} ms); hypervisor steal {steal_seconds:.1} s of CPU",
        reloads_after[0].saturating_sub(reloads_before[0]),
        reloads_after[1].saturating_sub(reloads_before[1]),
        stalls_ms.len(),
        stalls_ms.iter().copied().fold(0.0, f64::max)
    );

    let report = json!({
        "minutes": minutes,
        "elapsed_seconds": elapsed,
        "steal_seconds": steal_seconds,
        "machine": super::machine(),
        "instances": INSTANCES,
        "advert_interval_ms": INTERVAL.as_millis() as u64,
        "events": done.iter().map(|(t, e)| json!({"t": t, "event": e.label()})).collect::<Vec<_>>(),
        "expected_changes_per_instance": expected.iter().map(|list| list.iter().map(|e| format!("{:.0}s {}->{}", e.at, e.from, e.to)).collect::<Vec<_>>()).collect::<Vec<_>>(),
        "instances_exact": matched,
        "false_takeovers": false_takeovers,
        "per_instance": per_instance,
        "advert_ratio_min": ratio_min,
        "advert_ratio_max": ratio_max,
        "sighups": sighups,
        "reloads": [reloads_after[0].saturating_sub(reloads_before[0]), reloads_after[1].saturating_sub(reloads_before[1])],
        "flood_frames_sent": flood_sent,
        "stalls_ms": stalls_ms,
        "host_stalls": {
            "at_least_2ms": host_stalls.0.len(),
            "silencing_ms": silencing_stall().as_secs_f64() * 1e3,
            "silencing": host_stalls.at_least(silencing_stall()),
            "longest_ms": host_stalls.longest().as_secs_f64() * 1e3,
            "longest": host_stalls.0.iter().take(20).map(|s| json!({"t": s.ended.saturating_duration_since(start).as_secs_f64(), "cpu": s.cpu, "ms": s.length.as_secs_f64() * 1e3})).collect::<Vec<_>>(),
        },
        "cpu_percent_of_one_core": cpu_percent,
        "growth": growth,
        "pins": {"before": pins_before, "after": pins_after},
        "log_lines_per_minute": log_per_minute,
        "log_lines_bound_per_minute": log_bound,
        "samples": samples.iter().map(Sample::to_json).collect::<Vec<_>>(),
        "failures": failures,
    });
    let json_path = out_dir.join("soak.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    println!("wrote {}", json_path.display());
    let marks: Vec<(f64, Side)> = done
        .iter()
        .filter_map(|(t, e)| match e {
            Event::LinkDown(side) => Some((*t, *side)),
            _ => None,
        })
        .collect();
    match draw(png, &samples, &marks) {
        Ok(path) => println!("wrote {}", path.display()),
        Err(e) => println!("no plot: {e:#}"),
    }
    if !failures.is_empty() {
        bail!(
            "the soak found {} problem(s):\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
    println!("soak passed");
    Ok(())
}

/// The state of every instance of `node` (empty when it does not answer).
fn states(node: &Node<'_>) -> Vec<String> {
    node.status()
        .and_then(|s| {
            Some(
                s["instances"]
                    .as_array()?
                    .iter()
                    .map(|i| i["state"].as_str().unwrap_or("?").to_owned())
                    .collect(),
            )
        })
        .unwrap_or_else(|| vec!["no answer".to_owned()])
}

/// Frames dropped from a full backlog so far, all CPUs (second column of
/// /proc/net/softnet_stat, hex).
fn backlog_drops() -> u64 {
    std::fs::read_to_string("/proc/net/softnet_stat")
        .map(|text| {
            text.lines()
                .filter_map(|l| u64::from_str_radix(l.split_whitespace().nth(1)?, 16).ok())
                .sum()
        })
        .unwrap_or(0)
}

/// Steal time so far, all CPUs, in clock ticks (eighth value of /proc/stat's `cpu` line).
fn steal_ticks() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|text| {
            let line = text.lines().next()?;
            line.split_whitespace().nth(8)?.parse().ok()
        })
        .unwrap_or(0)
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

fn daemon_counter(node: &Node<'_>, name: &str) -> u64 {
    node.status()
        .and_then(|s| s["counters"][name].as_u64())
        .unwrap_or(0)
}

/// Log lines a router may write in one minute of the schedule, by what it logs per
/// event, plus what the rate limiter lets through.
///
/// - 6 SIGHUPs: one `configuration reloaded` line each;
/// - a link flap (both edges in one minute at worst): one `link state changed` line
///   per instance and edge (2 × 16), at most 3 state changes per instance (3 × 16), and
///   a yielding master's `announcing the VIPs at the new master's MAC` (16);
/// - 3 track-script flips: one line for the script and one `tracked priority changed`
///   per instance each (3 × 17);
/// - the flood's VRID 99 adverts and anything else repeated: the rate limiter allows one
///   line per (instance, reason) key per period; allow 60 such lines a minute.
fn log_budget_per_minute() -> u64 {
    let instances = u64::from(INSTANCES);
    6 + 2 * instances + 3 * instances + instances + 3 * (1 + instances) + 60
}

/// Per router and whole minute: how much `value` grew in that minute (from the samples
/// nearest the minute's edges).
fn per_minute(
    samples: &[Sample],
    minutes: u64,
    value: impl Fn(&Sample, usize) -> f64,
) -> Vec<Vec<f64>> {
    let at = |t: f64, r: usize| -> f64 {
        samples
            .iter()
            .min_by(|a, b| (a.t - t).abs().total_cmp(&(b.t - t).abs()))
            .map_or(0.0, |s| value(s, r))
    };
    (0..2)
        .map(|r| {
            (0..minutes)
                .map(|m| at((m + 1) as f64 * 60.0, r) - at(m as f64 * 60.0, r))
                .collect()
        })
        .collect()
}

/// RSS, fds and BPF maps of the first window (right after warm-up) against the last:
/// the maxima are compared, so a transient fd (a track script's pipe) or a page touched
/// once in each window counts the same on both sides.
///
/// fds (the least of each window) and maps must not grow at all. RSS may grow by [`RSS_SLACK_KIB`]: glibc's malloc
/// grows and trims its heaps in 128 KiB steps (M_TRIM_THRESHOLD) per arena, and tokio's
/// worker threads each have their own arena, so a few such steps are allocator noise;
/// a leak per reload or per advert would be far above it over an hour (360 reloads and
/// 360 000 adverts per instance: one byte per advert alone is 5.6 MiB).
fn check_growth(
    samples: &[Sample],
    elapsed: f64,
    window: f64,
    failures: &mut Vec<String>,
) -> Value {
    let first: Vec<&Sample> = samples.iter().filter(|s| s.t <= window).collect();
    let last: Vec<&Sample> = samples.iter().filter(|s| s.t >= elapsed - window).collect();
    let max =
        |set: &[&Sample], f: &dyn Fn(&Sample) -> u64| set.iter().map(|s| f(s)).max().unwrap_or(0);
    // fds and BPF maps: the floor of each window. A track script being run, a notify
    // command or a status connection holds an fd or two for a moment, a reload opens a
    // map of the program's for a moment, and a sample that lands on one is no leak (a
    // 5-minute run failed on such an fd, a 2-minute one on such a map: 24 then 23); a
    // leaked one raises the floor.
    let min =
        |set: &[&Sample], f: &dyn Fn(&Sample) -> u64| set.iter().map(|s| f(s)).min().unwrap_or(0);
    let mut out = Vec::new();
    for r in 0..2 {
        let rss = (
            max(&first, &|s| s.rss_kib[r]),
            max(&last, &|s| s.rss_kib[r]),
        );
        let fds = (min(&first, &|s| s.fds[r]), min(&last, &|s| s.fds[r]));
        let maps = (
            min(&first, &|s| s.bpf_maps[r]),
            min(&last, &|s| s.bpf_maps[r]),
        );
        if rss.1 > rss.0 + RSS_SLACK_KIB {
            failures.push(format!(
                "r{}: RSS grew from {} KiB (max of the first {window:.0} s) to {} KiB (max of the last), more than {RSS_SLACK_KIB} KiB",
                r + 1,
                rss.0,
                rss.1
            ));
        }
        if fds.1 > fds.0 {
            failures.push(format!("r{}: fds grew from {} to {}", r + 1, fds.0, fds.1));
        }
        if maps.1 > maps.0 {
            failures.push(format!(
                "r{}: BPF maps grew from {} to {}",
                r + 1,
                maps.0,
                maps.1
            ));
        }
        out.push(json!({
            "router": format!("r{}", r + 1),
            "window_seconds": window,
            "rss_kib_max_first": rss.0, "rss_kib_max_last": rss.1,
            "fds_min_first": fds.0, "fds_min_last": fds.1,
            "bpf_maps_min_first": maps.0, "bpf_maps_min_last": maps.1,
        }));
    }
    Value::Array(out)
}

/// Three panels over minutes: RSS (MiB), fds, transitions since the start; link flaps
/// marked.
fn draw(path: &Path, samples: &[Sample], flaps: &[(f64, Side)]) -> anyhow::Result<PathBuf> {
    font()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let root = BitMapBackend::new(path, (1100, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let panels = root.split_evenly((3, 1));
    let x_max = samples.last().map_or(1.0, |s| s.t / 60.0).max(1.0 / 60.0);
    type Pick = fn(&Sample, usize) -> f64;
    let series: [(&str, &str, Pick); 3] = [
        ("RSS", "MiB", |s, r| s.rss_kib[r] as f64 / 1024.0),
        ("open file descriptors", "fds", |s, r| s.fds[r] as f64),
        (
            "state changes since the start (16 instances)",
            "transitions",
            |s, r| s.transitions[r] as f64,
        ),
    ];
    for (panel, (title, unit, pick)) in panels.iter().zip(series) {
        let values = samples.iter().flat_map(|s| [pick(s, 0), pick(s, 1)]);
        let (lo, hi) = values.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        let lo = if lo.is_finite() { lo } else { 0.0 };
        let (y_min, y_max) = if unit == "transitions" {
            (0.0, hi.max(1.0) * 1.05)
        } else {
            let pad = ((hi - lo) * 0.2).max(hi * 0.02).max(1.0);
            ((lo - pad).max(0.0), hi + pad)
        };
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("soak: {title}"), ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..x_max, y_min..y_max)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("minutes")
            .y_desc(unit)
            .draw()
            .map_err(err)?;
        chart
            .draw_series(flaps.iter().map(|(t, side)| {
                let color = PALETTE[2 + side.index()].mix(0.35);
                PathElement::new(vec![(t / 60.0, y_min), (t / 60.0, y_max)], color)
            }))
            .map_err(err)?;
        for (r, color) in PALETTE.iter().take(2).enumerate() {
            chart
                .draw_series(LineSeries::new(
                    samples.iter().map(|s| (s.t / 60.0, pick(s, r))),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(format!("r{}", r + 1))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], *color));
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    }
    present(&root, path)?;
    Ok(path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_never_share_a_second_and_flaps_alternate() {
        let plan = schedule(Duration::from_secs(3600));
        let mut seconds: Vec<u64> = plan.iter().map(|(t, _)| t.as_secs()).collect();
        let n = seconds.len();
        seconds.dedup();
        assert_eq!(seconds.len(), n, "two events in one second");
        let downs: Vec<Side> = plan
            .iter()
            .filter_map(|(_, e)| match e {
                Event::LinkDown(s) => Some(*s),
                _ => None,
            })
            .collect();
        assert_eq!(downs.len(), 30);
        assert!(downs.windows(2).all(|w| w[0] != w[1]));
        let [r1, r2] = expected_changes(&plan);
        assert_eq!(r1.len(), 15 * 3);
        assert_eq!(r2.len(), 15 * 2 + 15 * 2);
    }

    #[test]
    fn state_changes_are_read_per_instance_in_order() {
        let log = "2026-12-03T15:00:00.000Z  INFO vipd::daemon: state change instance=VI_2 interface=eth0 vrid=2 from=MASTER to=FAULT reason=Fault(Interface) priority=0\n\
                   2026-12-03T15:00:00.5Z  INFO vipd::daemon: configuration reloaded kept=16\n\
                   2026-12-03T15:00:01Z  INFO vipd::daemon: state change instance=VI_2 interface=eth0 vrid=2 from=FAULT to=BACKUP reason=FaultCleared priority=150\n";
        let seen = logged_changes(log, 14.0 * 3600.0 + 59.0 * 60.0);
        let brief: Vec<(f64, &str, &str, &str)> = seen["VI_2"]
            .iter()
            .map(|c| (c.t, c.from.as_str(), c.to.as_str(), c.reason.as_str()))
            .collect();
        assert_eq!(
            brief,
            vec![
                (60.0, "MASTER", "FAULT", "Fault(Interface)"),
                (61.0, "FAULT", "BACKUP", "FaultCleared")
            ]
        );
        assert_eq!(seen.len(), 1);
    }

    #[test]
    fn a_takeover_pair_outside_the_schedule_is_told_apart_from_the_flap() {
        let change = |t: f64, from: &str, to: &str, reason: &str| Change {
            t,
            from: from.into(),
            to: to.into(),
            reason: reason.into(),
        };
        let plan = vec![
            (Duration::from_secs(40), Event::LinkDown(Side::R1)),
            (Duration::from_secs(43), Event::LinkUp(Side::R1)),
        ];
        let [_, r2] = expected_changes(&plan);
        let got = vec![
            change(20.0, "BACKUP", "MASTER", "MasterDown"),
            change(20.001, "MASTER", "BACKUP", "HigherPriorityAdvert"),
            change(40.01, "BACKUP", "MASTER", "PriorityZeroReceived"),
            change(43.05, "MASTER", "BACKUP", "HigherPriorityAdvert"),
        ];
        let verdict = judge(&r2, &got, &|t| (t < 30.0).then(|| "late".to_owned()));
        assert_eq!(verdict.matched, 2);
        assert_eq!(
            verdict.false_takeovers,
            vec![(20.0, Some("late".to_owned()))]
        );
        assert!(verdict.missing.is_empty() && verdict.unexpected.is_empty());
        // The flap's own pair, an hour late, is not the flap's.
        let late = vec![
            change(3600.0, "BACKUP", "MASTER", "PriorityZeroReceived"),
            change(3600.1, "MASTER", "BACKUP", "HigherPriorityAdvert"),
        ];
        let verdict = judge(&r2, &late, &|_| None);
        assert_eq!(verdict.matched, 0);
        assert_eq!(verdict.missing.len(), 2);
        assert_eq!(verdict.unexpected.len(), 2);
    }
}
