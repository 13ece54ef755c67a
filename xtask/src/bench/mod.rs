//! `cargo xtask bench`: vipd against keepalived 2.2.7, in the same run, on the same lab.
//!
//! Every scenario builds its own network namespaces (TEST-NET addresses only) and tears
//! them down on the way out, also on failure (guards). Every load loop is bounded in
//! packets and in time. Results: a table on stdout, `target/bench/results.json`, PNG
//! plots under `target/bench/`. See docs/benchmarks.md for what each number means.

pub mod arp;
pub mod failover;
pub mod flood;
pub mod idle;
pub mod l3;
pub mod lab;
pub mod lb;
pub mod plot;
pub mod scale;
pub mod soak;
pub mod stats;
pub mod traffic;
pub mod wire;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Map, Value, json};

use self::failover::Plan;
use self::lab::Kind;
use self::stats::Summary;

/// Which part of the bench to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    /// Client-visible outage on crash and graceful failover.
    Failover,
    /// False failovers under a packet flood and a CPU hog.
    Flood,
    /// Cost of answering ARP for the VIP: XDP vs the kernel.
    Arp,
    /// Time to bring up 1 .. 10 000 VIPs, and peak memory.
    Scale,
    /// CPU of 16 idle instances at 10 ms adverts.
    Idle,
    /// The XDP load balancer against HAProxy and nginx stream.
    Lb,
    /// L3 mode: the client's outage when an anycast node fails (BGP, with and without
    /// BFD).
    L3,
    /// Everything (within 10 minutes on 2 cores).
    All,
}

/// Options shared by all parts.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Few repetitions and short runs (a smoke test, not numbers to publish).
    pub quick: bool,
    /// Failover repetitions per configuration at 10 ms and 100 ms (1 s gets a fifth).
    pub reps: Option<usize>,
    /// Seconds of each flood variant.
    pub flood_secs: Option<u64>,
}

/// Runs the bench and writes the results.
pub fn bench(bin: &Path, out_dir: &Path, which: Which, opts: Options) -> anyhow::Result<()> {
    let started = Instant::now();
    sweep_stale_bpffs();
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let all = which == Which::All;
    let mut results = Map::new();
    results.insert("machine".into(), machine());
    results.insert(
        "options".into(),
        json!({ "which": format!("{which:?}").to_lowercase(), "quick": opts.quick, "reps": opts.reps }),
    );
    let mut errors = Vec::new();
    let mut plots = Vec::new();

    let mut section = |name: &str, f: &mut dyn FnMut() -> anyhow::Result<Value>| {
        let t = Instant::now();
        let cpu_before = machine_cpu();
        println!("\n== {name} ==");
        match f() {
            Ok(mut value) => {
                let busy = machine_busy_percent(cpu_before, machine_cpu());
                println!(
                    "  (machine: {busy:.0}% of all CPUs busy during this part, bench included; load average {})",
                    loadavg()
                );
                if let Value::Object(map) = &mut value {
                    map.insert("seconds".into(), json!(t.elapsed().as_secs_f64()));
                    map.insert("machine_busy_percent".into(), json!(busy));
                    map.insert("loadavg_after".into(), json!(loadavg()));
                }
                results.insert(name.into(), value);
            }
            Err(e) => {
                println!("{name} FAILED: {e:#}");
                results.insert(name.into(), json!({ "error": format!("{e:#}") }));
                errors.push(name.to_owned());
            }
        }
        vipd_tests::cleanup_stale().ok();
    };

    if all || which == Which::Failover {
        section("failover", &mut || {
            let (value, mut made) = run_failover(bin, out_dir, opts)?;
            plots.append(&mut made);
            Ok(value)
        });
    }
    if all || which == Which::Flood {
        let secs = opts.flood_secs.unwrap_or(if opts.quick {
            5
        } else if all {
            45
        } else {
            60
        });
        section("flood", &mut || {
            flood::run(bin, Duration::from_secs(secs), opts)
        });
    }
    if all || which == Which::Arp {
        section("arp", &mut || arp::run(bin, opts));
    }
    if all || which == Which::Idle {
        section("idle", &mut || idle::run(bin, opts));
    }
    if all || which == Which::Lb {
        section("lb", &mut || lb::run(bin, opts));
    }
    if all || which == Which::L3 {
        section("l3", &mut || l3::run(bin, opts));
    }
    // Last: tearing down 10 000 IPv6 VIPs keeps the kernel busy for a while after.
    if all || which == Which::Scale {
        section("scale", &mut || scale::run(bin, opts));
    }

    results.insert(
        "total_seconds".into(),
        json!(started.elapsed().as_secs_f64()),
    );
    let file = out_dir.join("results.json");
    std::fs::write(
        &file,
        serde_json::to_string_pretty(&Value::Object(results))?,
    )
    .with_context(|| format!("writing {}", file.display()))?;
    println!(
        "\nbench took {:.0} s; results in {}",
        started.elapsed().as_secs_f64(),
        file.display()
    );
    for plot in plots {
        println!("plot: {}", plot.display());
    }
    if !errors.is_empty() {
        anyhow::bail!("bench parts failed: {}", errors.join(", "));
    }
    Ok(())
}

/// The failover plans.
fn failover_plans(opts: Options) -> Vec<Plan> {
    let reps = opts.reps.unwrap_or(if opts.quick { 3 } else { 20 }).max(1);
    // 1 s adverts: a crash rep waits ~3.6 s for the takeover and as long again for r1
    // to preempt; a fifth of the reps keeps `all` within 10 minutes. --quick skips them.
    let slow_reps = (reps / 5).max(2);
    // vipd without notify, 10 ms only: the comparison that shows what spawning the
    // notify command costs; fewer reps keep `all` within 10 minutes.
    let no_notify_reps = (reps / 2).max(3).min(reps);
    let ms = Duration::from_millis;
    let mut plans = Vec::new();
    for kind in [
        Kind::Vipd {
            xdp: true,
            bfd: false,
        },
        Kind::Keepalived,
    ] {
        for interval in [ms(10), ms(100), ms(1000)] {
            let reps = if interval >= ms(1000) {
                if opts.quick {
                    continue;
                }
                slow_reps
            } else {
                reps
            };
            plans.push(Plan {
                kind,
                interval,
                reps,
                notify: true,
            });
            if kind != Kind::Keepalived && interval == ms(10) {
                plans.push(Plan {
                    kind,
                    interval,
                    reps: no_notify_reps,
                    notify: false,
                });
            }
            // Issue 15: vipd with BFD (3 ms × 3) at 100 ms adverts, in the same run.
            if kind != Kind::Keepalived && interval == ms(100) {
                plans.push(Plan {
                    kind: Kind::Vipd {
                        xdp: true,
                        bfd: true,
                    },
                    interval,
                    reps,
                    notify: true,
                });
            }
        }
    }
    plans.retain(selected);
    plans
}

/// `VIPD_BENCH_PLANS`: comma-separated `LABEL@MS` (e.g. `vipd + BFD@100,keepalived@100`)
/// limits the failover part to those configurations, for a quick look at a few rows;
/// unset runs them all.
fn selected(plan: &Plan) -> bool {
    let Ok(wanted) = std::env::var("VIPD_BENCH_PLANS") else {
        return true;
    };
    let me = format!("{}@{}", plan.label(), plan.interval.as_millis());
    wanted.split(',').any(|w| w.trim() == me)
}

/// Issue 13's target for a graceful handover, at every advert interval.
const GRACEFUL_P99_TARGET_MS: f64 = 2.0;

fn run_failover(
    bin: &Path,
    out_dir: &Path,
    opts: Options,
) -> anyhow::Result<(Value, Vec<PathBuf>)> {
    let plans = failover_plans(opts);
    let seed = failover::phase_seed()?;
    println!(
        "phase seed {seed} (VIPD_BENCH_SEED={seed} replays the same phases); notify scripts on unless the row says otherwise"
    );
    if std::env::var_os("VIPD_BENCH_BFD_INTERVAL").is_some() {
        println!(
            "BFD rows at {} × 3 (VIPD_BENCH_BFD_INTERVAL), not the issue's 3 ms",
            lab::bfd_interval()
        );
    }
    println!("reps per configuration (each of crash and graceful):");
    for p in &plans {
        println!(
            "  {:<18} {:>5} ms adverts: {}",
            p.label(),
            p.interval.as_millis(),
            p.reps
        );
    }
    // One seed per configuration, drawn from the printed one: a configuration's phases
    // do not depend on which others ran before it.
    let mut seeds = fastrand::Rng::with_seed(seed);
    let mut outcomes = Vec::new();
    for plan in plans {
        let plan_seed = seeds.u64(..);
        print!(
            "  {} at {} ms ... ",
            plan.label(),
            plan.interval.as_millis()
        );
        let _ = std::io::Write::flush(&mut std::io::stdout());
        match failover::measure(bin, plan, plan_seed) {
            Ok(outcome) => {
                let notify = outcome
                    .notify_calls
                    .map(|(a, b)| format!(", notify ran {a} + {b} times"))
                    .unwrap_or_default();
                println!(
                    "{:.0} s, {} failures{notify}",
                    outcome.seconds,
                    outcome.failures.len()
                );
                for f in &outcome.failures {
                    println!("    ! {}", first_line(f));
                }
                outcomes.push(outcome);
            }
            Err(e) => {
                println!("lab failed: {e:#}");
                let mut outcome = failover::Outcome::empty(plan, plan_seed);
                outcome.failures.push(format!("{e:#}"));
                outcomes.push(outcome);
            }
        }
    }

    println!();
    println!(
        "{:<18} {:>8} {:>9} | {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} | {:>9} | {:>9} {:>9}",
        "impl",
        "advert",
        "n",
        "crash50",
        "crash99",
        "crashmax",
        "grace50",
        "grace99",
        "gracemax",
        "g99<=2ms",
        "crash v/k",
        "grace v/k"
    );
    let mut rows = Vec::new();
    for o in &outcomes {
        let crash = Summary::of(&o.crash);
        let grace = Summary::of(&o.graceful);
        let peer = outcomes.iter().find(|p| {
            p.plan.kind == Kind::Keepalived
                && p.plan.interval == o.plan.interval
                && p.plan.notify == o.plan.notify
        });
        let ratio = |mine: Option<Summary>, theirs: Option<Summary>| match (mine, theirs) {
            (Some(a), Some(b)) if b.p50 > 0.0 => Some(a.p50 / b.p50),
            _ => None,
        };
        let (crash_ratio, grace_ratio) = match (o.plan.kind, peer) {
            (Kind::Vipd { .. }, Some(k)) => (
                ratio(crash, Summary::of(&k.crash)),
                ratio(grace, Summary::of(&k.graceful)),
            ),
            _ => (None, None),
        };
        let verdict = o.graceful_verdict(GRACEFUL_P99_TARGET_MS);
        let target_met = verdict.map(|v| v == failover::Verdict::Met);
        let f = |x: Option<f64>| x.map_or("-".to_owned(), |v| format!("{v:.1}"));
        let r = |x: Option<f64>| x.map_or("".to_owned(), |v| format!("{v:.2}"));
        println!(
            "{:<18} {:>5} ms {:>4}/{:<4} | {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} | {:>9} | {:>9} {:>9}",
            o.plan.label(),
            o.plan.interval.as_millis(),
            o.crash.len(),
            o.graceful.len(),
            f(crash.map(|s| s.p50)),
            f(crash.map(|s| s.p99)),
            f(crash.map(|s| s.max)),
            f(grace.map(|s| s.p50)),
            f(grace.map(|s| s.p99)),
            f(grace.map(|s| s.max)),
            verdict.map_or("-", failover::Verdict::label),
            r(crash_ratio),
            r(grace_ratio),
        );
        let mut row = o.to_json();
        if let Value::Object(map) = &mut row {
            map.insert("crash_p50_ratio_vs_keepalived".into(), json!(crash_ratio));
            map.insert(
                "graceful_p50_ratio_vs_keepalived".into(),
                json!(grace_ratio),
            );
            map.insert(
                "graceful_p99_target_ms".into(),
                json!(GRACEFUL_P99_TARGET_MS),
            );
            map.insert("graceful_p99_target_met".into(), json!(target_met));
            map.insert(
                "graceful_p99_target_met_without_host_stalls".into(),
                json!(verdict.map(|v| v != failover::Verdict::NotMet)),
            );
        }
        rows.push(row);
    }
    println!(
        "(ms, client-visible outage, event at a random phase of the advert cycle; n = crash/graceful reps measured;\n \
         target graceful p99 <= {GRACEFUL_P99_TARGET_MS} ms at every interval, met / NOT met per row; met*: met once the reps a host stall\n \
         overlapped are left out, and every rep over the target was one of them and lost no request (both listed below);\n \
         v/k = vipd p50 / keepalived p50 at the same interval)"
    );
    print_wire_check(&outcomes);
    print_host_stalls(&outcomes);
    print_lost_requests(&outcomes);
    for o in outcomes.iter().filter(|o| !o.crash_reasons.is_empty()) {
        if let Kind::Vipd { bfd: true, .. } = o.plan.kind {
            println!(
                "  {} at {} ms: crash takeovers by reason {:?} (PeerDown = BFD found the master dead)",
                o.plan.label(),
                o.plan.interval.as_millis(),
                o.crash_reasons
            );
        }
    }

    let mut plots = Vec::new();
    match plot::failover_cdf(out_dir, &outcomes) {
        Ok(mut made) => plots.append(&mut made),
        Err(e) => println!("failover plots not drawn: {e:#}"),
    }
    let timelines: Vec<_> = outcomes
        .iter()
        .filter(|o| o.plan.interval == Duration::from_millis(10))
        .filter_map(|o| o.timeline.clone())
        .collect();
    if !timelines.is_empty() {
        match plot::timeline(&out_dir.join("timeline.png"), &timelines) {
            Ok(path) => plots.push(path),
            Err(e) => println!("timeline plot not drawn: {e:#}"),
        }
    }
    let timelines_json: Vec<Value> = timelines
        .iter()
        .map(|t| json!({ "label": t.label, "states": t.states, "replies_ms": t.replies }))
        .collect();
    Ok((
        json!({ "phase_seed": seed, "wire_check_reps": failover::wire_reps().min(u32::MAX as usize), "configurations": rows, "timelines": timelines_json }),
        plots,
    ))
}

/// Per configuration, the requests the client sent and never got an answer to: the
/// outage without the client's own waits for a CPU in it.
fn print_lost_requests(outcomes: &[failover::Outcome]) {
    println!(
        "requests lost (sent by the client, never answered): reps with a loss / reps, requests lost in all; p99 / max loss span (ms, 0 when none)"
    );
    for o in outcomes {
        let line = |lost: &[(usize, f64)]| {
            let hit = lost.iter().filter(|(n, _)| *n > 0).count();
            let total: usize = lost.iter().map(|(n, _)| n).sum();
            let spans: Vec<f64> = lost.iter().map(|(_, s)| *s).collect();
            let s = Summary::of(&spans)
                .map_or("-".to_owned(), |s| format!("{:.1} / {:.1}", s.p99, s.max));
            format!("{hit}/{}, {total}; {s}", lost.len())
        };
        println!(
            "  {} at {} ms: crash {} | graceful {}",
            o.plan.label(),
            o.plan.interval.as_millis(),
            line(&o.crash_lost),
            line(&o.graceful_lost)
        );
        if o.graceful_lost.iter().any(|(n, _)| *n > 0) {
            println!(
                "    graceful reps that lost requests keep their capture in target/bench/pcap/ (when captured)"
            );
        }
    }
}

/// Per configuration, how many outages a host stall overlapped, and the p99 of those it
/// did not: the headline stays the p99 of all, this tells which tail the host made.
fn print_host_stalls(outcomes: &[failover::Outcome]) {
    println!(
        "host stalls (the hypervisor ran none of a CPU's work for 2 ms or more) overlapping an outage: reps with one / reps, longest (ms); p99 of the reps without"
    );
    for o in outcomes {
        let line = |samples: &[f64], stalls: &[f64]| {
            let hit = stalls.iter().filter(|s| **s > 0.0).count();
            let longest = stalls.iter().copied().fold(0.0, f64::max);
            let clean = failover::without_host_stalls(samples, stalls);
            let p99 = Summary::of(&clean).map_or("-".to_owned(), |s| format!("{:.1}", s.p99));
            format!("{hit}/{}, {longest:.1}; {p99}", stalls.len())
        };
        println!(
            "  {} at {} ms: crash {} | graceful {}",
            o.plan.label(),
            o.plan.interval.as_millis(),
            line(&o.crash, &o.crash_stall_ms),
            line(&o.graceful, &o.graceful_stall_ms)
        );
    }
}

/// The wire check: per configuration, the captured graceful reps measured by the
/// pinger and from the capture, and when the old and new master's frames came.
fn print_wire_check(outcomes: &[failover::Outcome]) {
    println!();
    let reps = failover::wire_reps();
    println!(
        "wire check, graceful (tcpdump on the client, {}): outage p50 / max (ms), pinger vs wire",
        if reps == usize::MAX {
            "every rep".to_owned()
        } else {
            format!("first {reps} reps per configuration")
        }
    );
    for o in outcomes {
        if o.wire.is_empty() {
            continue;
        }
        let pinger: Vec<f64> = o.wire.iter().map(|w| w.pinger_ms).collect();
        let wire = o.wire_outages();
        let ok: Vec<_> = o.wire.iter().filter_map(|w| w.wire.as_ref().ok()).collect();
        let diff = o
            .wire
            .iter()
            .filter_map(|w| Some((w.pinger_ms - w.wire.as_ref().ok()?.outage_ms).abs()))
            .reduce(f64::max);
        let median = |v: Vec<f64>| Summary::of(&v).map(|s| s.p50);
        let f = |x: Option<f64>| x.map_or("-".to_owned(), |v| format!("{v:.1}"));
        let signed = |x: Option<f64>| x.map_or("-".to_owned(), |v| format!("{v:+.1}"));
        let (p, w) = (Summary::of(&pinger), Summary::of(&wire));
        let errors = o.wire.len() - ok.len();
        println!(
            "  {:<18} {:>5} ms  n={}  pinger {:>6} / {:<6} wire {:>6} / {:<6} max |diff| {}{}  medians: old master's last reply {}, new master's first ARP {}, first reply {}{}",
            o.plan.label(),
            o.plan.interval.as_millis(),
            o.wire.len(),
            f(p.map(|s| s.p50)),
            f(p.map(|s| s.max)),
            f(w.map(|s| s.p50)),
            f(w.map(|s| s.max)),
            f(diff),
            // The pinger polls every 0.1 ms; more than a millisecond apart means one of
            // the two measures something else.
            if diff.is_some_and(|d| d > 1.0) {
                " DISAGREE"
            } else {
                ""
            },
            signed(median(ok.iter().map(|w| w.old_last_reply_ms).collect())),
            signed(median(
                ok.iter().filter_map(|w| w.new_first_arp_ms).collect()
            )),
            signed(median(ok.iter().map(|w| w.new_first_reply_ms).collect())),
            if errors > 0 {
                format!("  ({errors} without a wire figure: see the JSON)")
            } else {
                String::new()
            },
        );
        // The handover itself, from the old master's last reply to the new master's
        // first. The outage above is the longest gap anywhere from the event to the new
        // master's first reply, client pauses included: a window of ~7 ms at 10 ms
        // adverts and ~62 ms at 100 ms (Skew_Time, then the yield), so slower adverts
        // catch more of the client's own pauses.
        let handover: Vec<f64> = ok
            .iter()
            .map(|w| w.new_first_reply_ms - w.old_last_reply_ms)
            .collect();
        if let Some(h) = Summary::of(&handover) {
            println!(
                "      handover gap (old master's last reply to the new master's first): p50 / p99 / max {:.1} / {:.1} / {:.1}",
                h.p50, h.p99, h.max
            );
        }
        // Where each rep over the target lost its replies, and whether the client was
        // sending then: a gap whose requests were all answered is the pinger not
        // running.
        for w in &o.wire {
            let Ok(x) = &w.wire else { continue };
            if x.outage_ms > GRACEFUL_P99_TARGET_MS {
                println!(
                    "      rep {:>2}: gap {:.1} ms from {:+.1}, {} echo requests from the client inside it, {} to the old master's MAC, {} never answered; host stall {}{}",
                    w.rep,
                    x.outage_ms,
                    x.gap_at_ms,
                    x.requests_in_gap,
                    x.requests_in_gap_to_old,
                    x.requests_in_gap_unanswered,
                    if w.host_stall_ms > 0.0 {
                        format!("{:.1} ms", w.host_stall_ms)
                    } else {
                        "none".to_owned()
                    },
                    // Every request in the gap answered: the routers answered all
                    // they were asked; the gap is the client's.
                    if x.requests_in_gap_unanswered == 0 {
                        " (no request lost: the client was not sending)"
                    } else {
                        ""
                    }
                );
            }
        }
    }
    println!(
        "(times after the event, ms; the wire outage is the longest gap between echo replies on the client's interface from r1's last before the event to r2's first)"
    );
}

pub fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// nproc, kernel, CPU model.
pub fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let keepalived = std::process::Command::new("keepalived")
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .chain(String::from_utf8_lossy(&o.stdout).lines())
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .unwrap_or_default();
    println!("machine: {nproc} CPUs, {model}, kernel {kernel}; {keepalived}");
    json!({ "nproc": nproc, "cpu_model": model, "kernel": kernel, "keepalived": keepalived })
}

/// CPU time (user + system) of `pid` in seconds, from /proc/PID/stat.
pub fn cpu_seconds(pid: i32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields follow the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')' field 0 is state (field 3 of stat); utime is stat field 14, stime 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

/// Peak RSS (VmHWM) of `pid` in KiB.
pub fn peak_rss_kib(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

pub fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// (busy, total) CPU seconds of the whole machine so far, from /proc/stat.
pub fn machine_cpu() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let (busy, total) = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .map(cpu_ticks)
        .unwrap_or_default();
    let hz = clock_ticks();
    (busy / hz, total / hz)
}

/// (busy, total) ticks of a /proc/stat `cpu` line (user nice system idle iowait irq
/// softirq steal guest guest_nice; guest time is already inside user and nice). Idle and
/// iowait are not busy. Steal is left out of both: it is time the hypervisor ran
/// something else while this VM wanted the CPU, which no run here spent, and on a shared
/// VM it comes in bursts that would be charged to whichever run they hit.
fn cpu_ticks(line: &str) -> (f64, f64) {
    let fields: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .take(7)
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    let total: f64 = fields.iter().sum();
    let idle = fields.get(3).copied().unwrap_or(0.0) + fields.get(4).copied().unwrap_or(0.0);
    (total - idle, total)
}

/// Busy share of all CPUs between two [`machine_cpu`] readings, in percent.
pub fn machine_busy_percent(before: (f64, f64), after: (f64, f64)) -> f64 {
    let total = after.1 - before.1;
    if total <= 0.0 {
        return 0.0;
    }
    (after.0 - before.0) / total * 100.0
}

/// The 1, 5 and 15 minute load averages.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Removes `/sys/fs/bpf/vipd-bench-<pid>-*` pin directories of bench runs that died
/// without cleaning up (SIGKILL, Ctrl-C); their namespaces are swept by
/// `vipd_tests::cleanup_stale`.
fn sweep_stale_bpffs() {
    let Ok(entries) = std::fs::read_dir("/sys/fs/bpf") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("vipd-bench-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: signal 0 only checks whether the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        if !alive {
            println!("bench: removing stale {}", entry.path().display());
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cpu_ticks;

    #[test]
    fn steal_is_neither_busy_nor_total_and_idle_is_not_busy() {
        // user nice system idle iowait irq softirq steal guest guest_nice
        let line = "cpu  100 10 50 800 20 0 30 400 5 0";
        assert_eq!(cpu_ticks(line), (190.0, 1010.0));
        assert_eq!(cpu_ticks("cpu"), (0.0, 0.0));
    }
}
