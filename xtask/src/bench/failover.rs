//! Failover: the outage a client sees when the master crashes or stops.
//!
//! Per configuration (implementation × advert interval × notify or not) one lab: r1
//! (priority 150), r2 (priority 100), a client pinging the VIP every millisecond. Each
//! repetition starts a fresh pinger, waits for steady replies, waits a random phase,
//! then crashes r1 (link down + SIGKILL) or stops it (SIGTERM), waits for r2 to be
//! MASTER and the client to get replies again, and takes the longest gap between
//! replies from the last one before the event to the first one after r2 became MASTER.
//! Then r1 comes back (after a crash "rebooted": its VIP gone, link up) and the bench
//! waits until it is MASTER again before the next rep. Crash and graceful repetitions
//! alternate, so both see the same conditions.
//!
//! Measured the way an independent harness measures (issue 13), so it cannot miss what
//! an operator would see:
//!
//! - **Addresses**: the VIP 192.0.2.100/24 is inside the routers' own subnet (r1
//!   192.0.2.1/24, r2 192.0.2.2/24, client 192.0.2.10/24), as in the seed setup: the
//!   client reaches the VIP on-link, through its ARP entry, so a late gratuitous ARP or
//!   an old master that stops answering too early shows as outage.
//! - **Notify**: by default both routers run notify commands as the seed configuration
//!   does (`notify_master` / `notify_backup` / `notify_fault` and the generic `notify`)
//!   calling a script in the bench's scratch directory that only appends its arguments
//!   to a log there; [`Plan::notify`] = false measures without (vipd at 10 ms only), to
//!   show what the notify costs. Spawning that process must not delay an advert or an
//!   announcement; the bench checks the scripts did run.
//! - **Phase**: before each event the bench sleeps a uniformly random time in
//!   [0, advert interval) from the moment the client's steady replies were confirmed,
//!   so the event lands at a random point of the master's advert cycle. The PRNG is
//!   seeded (printed; `VIPD_BENCH_SEED` replays it).
//! - **Wire check**: the first [`wire_reps`] graceful repetitions of each configuration
//!   also run tcpdump in the client's namespace ([`super::wire`]) and measure the same
//!   outage from the captured echo replies, so a bug in the pinger cannot hide a real
//!   outage; both figures go into the JSON and the table. For each captured rep over the
//!   target it also says where the longest gap was and how many echo requests the
//!   client sent inside it, to which router, and how many of them were never
//!   answered: a gap whose requests were all answered is a client that did not send,
//!   not a router that did not answer.
//! - **The client's CPU**: the client is one pinger per CPU, each pinned to its CPU at
//!   SCHED_FIFO 1, each sending a request every millisecond at the same instants
//!   ([`PingRun::start_realtime`]), as a client with a CPU of its own would: above the
//!   lab's ordinary processes (tcpdump, notify scripts), below vipd's real-time threads,
//!   so a router that keeps the CPUs busy still shows. The outage is the longest gap in
//!   their merged replies: the same 1 ms resolution as one pinger, without one vCPU's
//!   stall counting as the router's. (With an ordinary pinger, 100 ms adverts: gaps of
//!   2–5 ms during the old master's 60 ms of Skew_Time, each with a single request in
//!   it; with one real-time pinger, gaps of 2.7–3.2 ms when its vCPU stalled, 1 s
//!   adverts included; with pingers taking turns, each every 2 ms, 2.2 ms once with
//!   one request in it, answered.) Lost requests count every pinger's: one lost
//!   millisecond is one request per CPU.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use serde_json::{Value, json};
use vipd_tests::netns::Netns;
use vipd_tests::pinger::PingRun;
use vipd_tests::stall::StallWatch;
use vipd_tests::topo::{Lan, add_addr, mac_of};
use vipd_tests::vipd::Scratch;

use super::lab::{Inst, Kind, Node};
use super::stats::Summary;
use super::wire::{Capture, Mac, WireOutage};

/// The VIP, inside the routers' 192.0.2.0/24 (see the module doc).
pub const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);

/// Graceful repetitions per configuration that are also captured on the client: every
/// one (a rare rep that loses requests must leave its capture behind), or the first
/// `VIPD_BENCH_WIRE_REPS`.
pub fn wire_reps() -> usize {
    std::env::var("VIPD_BENCH_WIRE_REPS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(usize::MAX)
}

/// The seed of the phase PRNG: `VIPD_BENCH_SEED` if set (a decimal u64), else random.
pub fn phase_seed() -> anyhow::Result<u64> {
    match std::env::var("VIPD_BENCH_SEED") {
        Ok(text) => text
            .trim()
            .parse()
            .with_context(|| format!("VIPD_BENCH_SEED={text:?} is not a decimal u64")),
        Err(_) => Ok(fastrand::u64(..)),
    }
}

/// A uniformly random phase in [0, `interval`).
pub fn random_phase(rng: &mut fastrand::Rng, interval: Duration) -> Duration {
    interval.mul_f64(rng.f64())
}

/// Writes a notify script `dir/name.sh` that does what the seed's notify.sh does short
/// of mail and services (look up this host's address, record the transition), writing
/// only to `dir/name.log`; returns (script, log).
pub fn notify_script(dir: &Path, name: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    use std::os::unix::fs::PermissionsExt as _;
    let log = dir.join(format!("{name}.log"));
    let script = dir.join(format!("{name}.sh"));
    let text = format!(
        "#!/bin/bash\n\
         # Stand-in for the seed's notify.sh: the same shape of work without mail or\n\
         # services. Writes only to its log in the scratch directory.\n\
         thisip=$(ip -4 -o addr show dev eth0 | awk '{{print $4}}' | cut -d/ -f1 | head -1)\n\
         echo \"$(date +%s.%N) $thisip $*\" >> '{}'\n",
        log.display()
    );
    std::fs::write(&script, text).with_context(|| format!("writing {}", script.display()))?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod 755 {}", script.display()))?;
    Ok((script, log))
}

/// One configuration to measure.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Implementation.
    pub kind: Kind,
    /// Advert interval.
    pub interval: Duration,
    /// Repetitions of each of crash and graceful.
    pub reps: usize,
    /// Both routers run notify commands, as the seed configures them (the default an
    /// operator has).
    pub notify: bool,
}

impl Plan {
    /// Implementation, and "no notify" when the routers run none.
    pub fn label(&self) -> String {
        if self.notify {
            self.kind.label().to_owned()
        } else {
            format!("{}, no notify", self.kind.label())
        }
    }
}

/// A crash or a graceful stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Link down + SIGKILL.
    Crash,
    /// SIGTERM.
    Graceful,
}

/// Who was master, sampled around one failover, and when the client got replies;
/// milliseconds relative to the event.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    /// What the plot calls it.
    pub label: String,
    /// (ms, r1 MASTER, r2 MASTER).
    pub states: Vec<(f64, bool, bool)>,
    /// Reply arrival times.
    pub replies: Vec<f64>,
}

/// One graceful repetition measured by the pinger and on the wire.
#[derive(Clone, Debug)]
pub struct WireRep {
    /// Repetition number.
    pub rep: usize,
    /// The pinger's outage (ms).
    pub pinger_ms: f64,
    /// The longest host stall that overlapped the pinger's outage (ms, 0 for none).
    pub host_stall_ms: f64,
    /// The capture's figures, or why there are none.
    pub wire: Result<WireOutage, String>,
    /// Index of this rep's sample in [`Outcome::graceful`].
    sample: usize,
}

impl WireRep {
    /// As JSON.
    pub fn to_json(&self) -> Value {
        match &self.wire {
            Ok(w) => json!({
                "rep": self.rep,
                "pinger_ms": self.pinger_ms,
                "host_stall_ms": self.host_stall_ms,
                "wire": w.to_json(),
            }),
            Err(e) => json!({
                "rep": self.rep,
                "pinger_ms": self.pinger_ms,
                "host_stall_ms": self.host_stall_ms,
                "wire_error": e,
            }),
        }
    }
}

/// Outcome of one configuration.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The plan.
    pub plan: Plan,
    /// Seed of this configuration's phase PRNG.
    pub seed: u64,
    /// Crash outages (ms), one per successful rep.
    pub crash: Vec<f64>,
    /// Graceful outages (ms).
    pub graceful: Vec<f64>,
    /// The phase (ms after the steady replies were confirmed) of each crash sample.
    pub crash_phase: Vec<f64>,
    /// The phase of each graceful sample.
    pub graceful_phase: Vec<f64>,
    /// The graceful reps also captured on the client.
    pub wire: Vec<WireRep>,
    /// Lines the notify scripts logged (r1, r2); None without notify.
    pub notify_calls: Option<(usize, usize)>,
    /// Reps where the client did not recover (or the lab failed), with why.
    pub failures: Vec<String>,
    /// The first crash rep's timeline.
    pub timeline: Option<Timeline>,
    /// Why r2 took over in the crash reps, by reason (vipd only).
    pub crash_reasons: std::collections::BTreeMap<String, usize>,
    /// Per crash / graceful sample, the longest host stall (ms; 0 for none of 2 ms or
    /// more) that overlapped its outage: the hypervisor running none of a CPU's work
    /// (`vipd_tests::stall`). Tells a tail the host made from one vipd made.
    pub crash_stall_ms: Vec<f64>,
    pub graceful_stall_ms: Vec<f64>,
    /// Per crash / graceful sample, the requests the client sent that were never
    /// answered, and the longest loss span (ms; 0 for none): the outage without the
    /// client's own scheduling in it ([`vipd_tests::pinger::PingLog::loss_between`]).
    pub crash_lost: Vec<(usize, f64)>,
    pub graceful_lost: Vec<(usize, f64)>,
    /// Wall time the configuration took.
    pub seconds: f64,
}

/// The samples no host stall overlapped (`stalls[i]`: the longest stall over sample
/// `i`, 0 for none).
pub fn without_host_stalls(samples: &[f64], stalls: &[f64]) -> Vec<f64> {
    samples
        .iter()
        .zip(stalls)
        .filter(|(_, s)| **s == 0.0)
        .map(|(v, _)| *v)
        .collect()
}

/// Whether a configuration met a target ([`Outcome::graceful_verdict`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Met,
    MetWithoutHostStalls,
    NotMet,
}

impl Verdict {
    /// As the bench's table prints it.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::MetWithoutHostStalls => "met*",
            Verdict::NotMet => "NOT met",
        }
    }
}

impl Outcome {
    /// An outcome with no samples yet.
    pub fn empty(plan: Plan, seed: u64) -> Outcome {
        Outcome {
            plan,
            seed,
            crash: Vec::new(),
            graceful: Vec::new(),
            crash_phase: Vec::new(),
            graceful_phase: Vec::new(),
            wire: Vec::new(),
            notify_calls: None,
            failures: Vec::new(),
            timeline: None,
            crash_reasons: std::collections::BTreeMap::new(),
            crash_stall_ms: Vec::new(),
            graceful_stall_ms: Vec::new(),
            crash_lost: Vec::new(),
            graceful_lost: Vec::new(),
            seconds: 0.0,
        }
    }

    /// The graceful target (p99 ≤ `target_ms`) for this configuration:
    /// - `Met` when the p99 of every rep is within it;
    /// - `MetWithoutHostStalls` when it is not, but every rep over it overlapped a host
    ///   stall and lost no request (the client sent nothing while the hypervisor ran
    ///   none of its work), and the p99 of the reps no stall overlapped is within it;
    /// - `NotMet` otherwise; None without graceful samples.
    pub fn graceful_verdict(&self, target_ms: f64) -> Option<Verdict> {
        let all = Summary::of(&self.graceful)?;
        if all.p99 <= target_ms {
            return Some(Verdict::Met);
        }
        let stall = |i: usize| self.graceful_stall_ms.get(i).copied().unwrap_or(0.0);
        let lost = |i: usize| self.graceful_lost.get(i).map_or(0, |(n, _)| *n);
        let over_explained = self
            .graceful
            .iter()
            .enumerate()
            .filter(|(_, v)| **v > target_ms)
            .all(|(i, _)| stall(i) > 0.0 && lost(i) == 0);
        let clean = without_host_stalls(&self.graceful, &self.graceful_stall_ms);
        let clean_met = Summary::of(&clean).is_some_and(|s| s.p99 <= target_ms);
        Some(if over_explained && clean_met {
            Verdict::MetWithoutHostStalls
        } else {
            Verdict::NotMet
        })
    }

    /// The wire outages of the captured reps that have one.
    pub fn wire_outages(&self) -> Vec<f64> {
        self.wire
            .iter()
            .filter_map(|w| w.wire.as_ref().ok().map(|w| w.outage_ms))
            .collect()
    }

    /// As JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "implementation": self.plan.kind.label(),
            "label": self.plan.label(),
            "notify": self.plan.notify,
            "advert_interval_ms": self.plan.interval.as_millis() as u64,
            "reps": self.plan.reps,
            "phase_seed": self.seed,
            "crash": Summary::of(&self.crash).map(Summary::to_json),
            "graceful": Summary::of(&self.graceful).map(Summary::to_json),
            "graceful_wire": Summary::of(&self.wire_outages()).map(Summary::to_json),
            "crash_samples_ms": self.crash,
            "graceful_samples_ms": self.graceful,
            "crash_phase_ms": self.crash_phase,
            "graceful_phase_ms": self.graceful_phase,
            "graceful_wire_check": self.wire.iter().map(WireRep::to_json).collect::<Vec<_>>(),
            "notify_calls": self.notify_calls.map(|(a, b)| json!({ "r1": a, "r2": b })),
            "failures": self.failures,
            "crash_takeover_reasons": self.crash_reasons,
            "crash_host_stall_ms": self.crash_stall_ms,
            "graceful_host_stall_ms": self.graceful_stall_ms,
            "crash_lost_requests_and_span_ms": self.crash_lost,
            "graceful_lost_requests_and_span_ms": self.graceful_lost,
            "seconds": self.seconds,
        })
    }
}

/// Runs one configuration in its own lab, with phases drawn from a PRNG seeded with
/// `seed`. Errors building the lab are returned; a rep that fails is recorded in
/// `failures` and the next one goes on (after up to three failures in a row the
/// configuration is abandoned).
pub fn measure(bin: &Path, plan: Plan, seed: u64) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let mut rng = fastrand::Rng::with_seed(seed);
    let lan = Lan::new("fo", 3).context("building the failover lab (needs root)")?;
    add_addr(lan.member(0), "eth0", "192.0.2.1/24")?;
    add_addr(lan.member(1), "eth0", "192.0.2.2/24")?;
    add_addr(lan.member(2), "eth0", "192.0.2.10/24")?;
    let client = lan.member(2);
    let scratch = Scratch::new("bench")?;
    let vip = format!("{VIP}/24");
    let mut logs = Vec::new();
    let mut inst = |priority: u8, name: &str| -> anyhow::Result<Inst> {
        let mut inst = Inst::new(7, priority, plan.interval, &vip);
        if let Kind::Vipd { bfd: true, .. } = plan.kind {
            // A session to the other router: r1 is .1, r2 is .2.
            let peer = if name == "r1" {
                [192, 0, 2, 2]
            } else {
                [192, 0, 2, 1]
            };
            inst = inst.with_bfd_peer(Ipv4Addr::from(peer));
        }
        if !plan.notify {
            return Ok(inst);
        }
        let (script, log) = notify_script(scratch.path(), &format!("notify-{name}"))?;
        logs.push(log);
        Ok(inst.with_notify(&script))
    };
    let (i1, i2) = (inst(150, "r1")?, inst(100, "r2")?);
    let mut r1 = Node::new(lan.member(0), &scratch, "r1", plan.kind, &[i1], bin)?;
    let mut r2 = Node::new(lan.member(1), &scratch, "r2", plan.kind, &[i2], bin)?;
    let macs = (
        mac_of(lan.member(0), "eth0")?,
        mac_of(lan.member(1), "eth0")?,
    );
    let settle = settle_timeout(plan.interval);
    r1.start()?;
    r2.start()?;
    r1.wait_master(0, true, settle)?;
    r2.wait_master(0, false, settle)?;
    if let Kind::Vipd { bfd: true, .. } = plan.kind {
        wait_bfd_up(&r2, settle)?;
    }

    let mut outcome = Outcome::empty(plan, seed);
    let watch = StallWatch::start().context("starting the host-stall watch")?;
    // (start, length) of the longest reply gap of each crash and graceful sample, for the
    // stall watch.
    let mut windows: [Vec<(Instant, Duration)>; 2] = [Vec::new(), Vec::new()];
    let mut failed_in_a_row = 0;
    let wire_reps = wire_reps();
    'reps: for rep in 0..plan.reps {
        for event in [Event::Crash, Event::Graceful] {
            let want_timeline = rep == 0 && event == Event::Crash && plan.notify;
            let capture = event == Event::Graceful && rep < wire_reps;
            let setup = RepSetup {
                client,
                scratch: &scratch,
                interval: plan.interval,
                macs,
                phase: random_phase(&mut rng, plan.interval),
                capture: capture.then(|| {
                    format!(
                        "graceful-{}-{}ms{}-{rep}",
                        plan.label().replace([' ', '+'], ""),
                        plan.interval.as_millis(),
                        if plan.notify { "" } else { "-nonotify" }
                    )
                }),
                want_timeline,
            };
            let phase_ms = setup.phase.as_secs_f64() * 1e3;
            match one_rep(&mut r1, &r2, event, &setup) {
                Ok(done) => {
                    failed_in_a_row = 0;
                    match event {
                        Event::Crash => {
                            windows[0].push((done.gap_at, done.outage));
                            outcome.crash.push(done.outage_ms);
                            outcome.crash_lost.push(done.lost);
                            outcome.crash_phase.push(phase_ms);
                            if let Some(reason) = &done.reason {
                                *outcome.crash_reasons.entry(reason.clone()).or_default() += 1;
                            }
                        }
                        Event::Graceful => {
                            windows[1].push((done.gap_at, done.outage));
                            outcome.graceful.push(done.outage_ms);
                            outcome.graceful_lost.push(done.lost);
                            outcome.graceful_phase.push(phase_ms);
                        }
                    }
                    if let Some(wire) = done.wire {
                        outcome.wire.push(WireRep {
                            rep,
                            pinger_ms: done.outage_ms,
                            host_stall_ms: 0.0,
                            wire,
                            sample: outcome.graceful.len().saturating_sub(1),
                        });
                    }
                    if let Some(mut timeline) = done.timeline {
                        timeline.label = format!(
                            "{} crash, {} ms adverts",
                            plan.label(),
                            plan.interval.as_millis()
                        );
                        outcome.timeline = Some(timeline);
                    }
                }
                Err(e) => {
                    failed_in_a_row += 1;
                    outcome.failures.push(format!("rep {rep} {event:?}: {e:#}"));
                    if failed_in_a_row >= 3 {
                        outcome
                            .failures
                            .push("three failures in a row: configuration abandoned".into());
                        break 'reps;
                    }
                }
            }
            // Back to the starting point: r1 MASTER, r2 BACKUP. A rep that failed
            // half way may have left r1 down; this brings it back either way.
            if let Err(e) = restore(&mut r1, &r2, settle) {
                outcome
                    .failures
                    .push(format!("rep {rep}: restoring r1: {e:#}"));
                break 'reps;
            }
        }
    }
    r1.stop();
    r2.stop();
    let stalls = watch.finish()?;
    // The longest stall that overlapped the gap itself (where the replies stopped, not
    // the event: at 100 ms adverts a graceful gap comes ~60 ms after the SIGTERM).
    let longest = |(from, gap): &(Instant, Duration)| {
        stalls
            .all_overlapping(*from, *from + *gap)
            .iter()
            .map(|s| s.length.as_secs_f64() * 1e3)
            .fold(0.0, f64::max)
    };
    outcome.crash_stall_ms = windows[0].iter().map(longest).collect();
    outcome.graceful_stall_ms = windows[1].iter().map(longest).collect();
    for w in &mut outcome.wire {
        w.host_stall_ms = outcome
            .graceful_stall_ms
            .get(w.sample)
            .copied()
            .unwrap_or_default();
    }
    if plan.notify {
        let lines = |log: &PathBuf| {
            std::fs::read_to_string(log)
                .map(|t| t.lines().count())
                .unwrap_or(0)
        };
        let calls = (logs.first().map_or(0, lines), logs.get(1).map_or(0, lines));
        // Every rep makes r1 leave and take MASTER again and r2 the opposite: a
        // configuration that ran reps without a single notify call measured nothing
        // of what it claims.
        if calls.0 == 0 || calls.1 == 0 {
            outcome.failures.push(format!(
                "the notify scripts did not run (r1 {} calls, r2 {})",
                calls.0, calls.1
            ));
        }
        outcome.notify_calls = Some(calls);
    }
    outcome.seconds = started.elapsed().as_secs_f64();
    Ok(outcome)
}

/// Long enough for an election at `interval` on a busy machine.
fn settle_timeout(interval: Duration) -> Duration {
    interval * 12 + Duration::from_secs(5)
}

fn restore(r1: &mut Node<'_>, r2: &Node<'_>, settle: Duration) -> anyhow::Result<()> {
    if !r1.is_running() {
        r1.reboot()?;
        r1.start()?;
    }
    r1.wait_master(0, true, settle)?;
    r2.wait_master(0, false, settle)?;
    if let Kind::Vipd { bfd: true, .. } = r2.kind {
        // The next crash is to be found by BFD: its session must be Up again first.
        wait_bfd_up(r2, settle)?;
    }
    Ok(())
}

/// Waits until every BFD session of `node` is Up.
fn wait_bfd_up(node: &Node<'_>, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let up = node.status().is_some_and(|s| {
            s["bfd"]
                .as_array()
                .is_some_and(|all| !all.is_empty() && all.iter().all(|b| b["state"] == "Up"))
        });
        if up {
            return Ok(());
        }
        if Instant::now() >= deadline {
            anyhow::bail!("{}: BFD session not Up within {timeout:?}", node.name);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What one repetition needs besides the routers.
struct RepSetup<'a> {
    client: &'a Netns,
    scratch: &'a Scratch,
    interval: Duration,
    /// r1's and r2's MACs.
    macs: (Mac, Mac),
    /// Wait this long after the steady replies are confirmed before the event.
    phase: Duration,
    /// Capture on the client, into a file of this name.
    capture: Option<String>,
    want_timeline: bool,
}

/// What one repetition measured.
struct RepDone {
    /// The outage after the event (the longest gap between replies) and where it began.
    outage: Duration,
    gap_at: Instant,
    /// Requests lost and the longest loss span (ms).
    lost: (usize, f64),
    outage_ms: f64,
    /// r2's takeover reason (vipd only).
    reason: Option<String>,
    timeline: Option<Timeline>,
    wire: Option<Result<WireOutage, String>>,
}

/// Seconds since the Unix epoch: the clock of tcpdump's timestamps.
fn wall_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// One failover.
fn one_rep(
    r1: &mut Node<'_>,
    r2: &Node<'_>,
    event: Event,
    setup: &RepSetup<'_>,
) -> anyhow::Result<RepDone> {
    let interval = setup.interval;
    let want_timeline = setup.want_timeline;
    let settle = settle_timeout(interval);
    let limit = settle * 3 + Duration::from_secs(10);
    // The capture starts first, so it holds the steady replies before the event. A
    // capture that cannot start costs the wire figure, not the rep.
    let capture = setup.capture.as_ref().map(|name| {
        Capture::start(
            setup.client,
            setup.scratch.path(),
            name,
            limit + Duration::from_secs(5),
        )
        .map_err(|e| format!("{e:#}"))
    });
    let ping = PingRun::start_realtime(setup.client, VIP, Duration::from_millis(1), limit)?;
    ping.wait_for_more(30, Duration::from_secs(5), "before the event")?;
    let confirmed = Instant::now();
    let mut states = Vec::new();
    // The timeline rep samples a little of the steady state first, for the plot.
    let steady = if want_timeline {
        (interval * 2).max(Duration::from_millis(20))
    } else {
        Duration::ZERO
    };
    let until = confirmed + steady + setup.phase;
    if want_timeline {
        while Instant::now() < until {
            states.push((Instant::now(), r1.is_master(0), r2.is_master(0)));
            std::thread::sleep(Duration::from_micros(500));
        }
    } else {
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
    }
    let at = Instant::now();
    let at_wall = wall_now();
    if want_timeline {
        states.push((at, r1.is_master(0), r2.is_master(0)));
    }
    match event {
        Event::Crash => {
            r1.cut_link()?;
            if want_timeline {
                // From here r1 cannot serve, whatever its daemon still thinks.
                states.push((Instant::now(), false, r2.is_master(0)));
            }
            r1.kill();
        }
        Event::Graceful => r1.signal_term()?,
    }
    let deadline = at + settle;
    let took_over = loop {
        let r2_master = r2.is_master(0);
        if want_timeline {
            states.push((Instant::now(), r1.is_master(0), r2_master));
        }
        if r2_master {
            break Instant::now();
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "r2 did not take over within {settle:?}; its log:\n{}",
                super::lab::tail(&r2.log(), 20)
            );
        }
        std::thread::sleep(Duration::from_micros(500));
    };
    // Why r2 took over (vipd: `PeerDown` when BFD found r1 dead, `MasterDown` when
    // its Master_Down_Timer ran out).
    let reason = r2.status().and_then(|s| {
        s["instances"][0]["last_transition"]["reason"]
            .as_str()
            .map(str::to_owned)
    });
    let recovered = ping.wait_for_more(20, settle, "after the takeover");
    if want_timeline {
        let until = Instant::now() + (interval * 2).max(Duration::from_millis(20));
        while Instant::now() < until {
            states.push((Instant::now(), r1.is_master(0), r2.is_master(0)));
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    let log = ping.finish()?;
    // A graceful rep that lost requests keeps its capture in target/bench/pcap/, to be
    // read frame by frame (make-before-break should lose none).
    let (lost, span) = log.loss_between(at, took_over);
    let keep = (event == Event::Graceful && lost > 0)
        .then(|| crate::workspace_root().join("target/bench/pcap"));
    let wire = capture.map(|capture| {
        let frames = capture?
            .finish(VIP, keep.as_deref())
            .map_err(|e| format!("{e:#}"))?;
        super::wire::outage(&frames, at_wall, setup.macs.0, setup.macs.1).ok_or_else(|| {
            format!(
                "the capture ({} frames) has no echo reply from r1 before the event or none from r2 after it",
                frames.len()
            )
        })
    });
    recovered?;
    if event == Event::Graceful {
        r1.wait_exit(Duration::from_secs(10))?;
    }
    let (gap_at, outage) = log
        .gap_between(at, took_over)
        .context("the client got no reply after the takeover")?;
    let timeline = want_timeline.then(|| {
        let rel = |t: Instant| {
            if t >= at {
                t.duration_since(at).as_secs_f64() * 1e3
            } else {
                -(at.duration_since(t).as_secs_f64() * 1e3)
            }
        };
        Timeline {
            label: String::new(),
            states: states.iter().map(|(t, a, b)| (rel(*t), *a, *b)).collect(),
            replies: log
                .replies
                .iter()
                .filter(|t| **t >= confirmed)
                .map(|t| rel(*t))
                .collect(),
        }
    });
    Ok(RepDone {
        outage,
        gap_at,
        lost: (lost, span.as_secs_f64() * 1e3),
        outage_ms: outage.as_secs_f64() * 1e3,
        timeline,
        wire,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(graceful: &[f64], stalls: &[f64], lost: &[usize]) -> Outcome {
        let plan = Plan {
            kind: Kind::Keepalived,
            interval: Duration::from_millis(100),
            reps: graceful.len(),
            notify: true,
        };
        let mut o = Outcome::empty(plan, 0);
        o.graceful = graceful.to_vec();
        o.graceful_stall_ms = stalls.to_vec();
        o.graceful_lost = lost.iter().map(|n| (*n, 0.0)).collect();
        o
    }

    #[test]
    fn a_tail_only_host_stalls_made_is_told_apart_from_one_the_routers_made() {
        let ok = [1.0, 1.1, 1.2, 1.0];
        assert_eq!(
            outcome(&ok, &[0.0; 4], &[0; 4]).graceful_verdict(2.0),
            Some(Verdict::Met)
        );
        // One rep over the target, a host stall over it, nothing lost: met*.
        let tail = [1.0, 4.5, 1.2, 1.0];
        let stall = [0.0, 4.5, 0.0, 0.0];
        assert_eq!(
            outcome(&tail, &stall, &[0; 4]).graceful_verdict(2.0),
            Some(Verdict::MetWithoutHostStalls)
        );
        // The same rep lost requests: the routers' outage, whatever the host did.
        assert_eq!(
            outcome(&tail, &stall, &[0, 3, 0, 0]).graceful_verdict(2.0),
            Some(Verdict::NotMet)
        );
        // Over the target with no stall.
        assert_eq!(
            outcome(&tail, &[0.0; 4], &[0; 4]).graceful_verdict(2.0),
            Some(Verdict::NotMet)
        );
        // The stall-free reps miss it too.
        assert_eq!(
            outcome(&[3.0, 4.5, 3.0], &[0.0, 4.5, 0.0], &[0; 3]).graceful_verdict(2.0),
            Some(Verdict::NotMet)
        );
        assert_eq!(outcome(&[], &[], &[]).graceful_verdict(2.0), None);
    }
}
