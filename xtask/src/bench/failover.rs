//! Failover: the outage a client sees when the master crashes or stops.
//!
//! Per configuration (implementation × advert interval) one lab: r1 (priority 150), r2
//! (priority 100), a client pinging the VIP every millisecond. Each repetition starts a
//! fresh pinger, waits for steady replies, then crashes r1 (link down + SIGKILL) or
//! stops it (SIGTERM), waits for r2 to be MASTER and the client to get replies again,
//! and takes the longest gap between replies from the last one before the event to the
//! first one after r2 became MASTER. Then r1 comes back (after a crash "rebooted": its
//! VIP gone, link up) and the bench waits until it is MASTER again before the next rep.
//! Crash and graceful repetitions alternate, so both see the same conditions.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};
use vipd_tests::pinger::PingRun;
use vipd_tests::topo::{Lan, add_addr};
use vipd_tests::vipd::Scratch;

use super::lab::{Inst, Kind, Node};
use super::stats::Summary;

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);

/// One configuration to measure.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Implementation.
    pub kind: Kind,
    /// Advert interval.
    pub interval: Duration,
    /// Repetitions of each of crash and graceful.
    pub reps: usize,
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

/// Outcome of one configuration.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The plan.
    pub plan: Plan,
    /// Crash outages (ms), one per successful rep.
    pub crash: Vec<f64>,
    /// Graceful outages (ms).
    pub graceful: Vec<f64>,
    /// Reps where the client did not recover (or the lab failed), with why.
    pub failures: Vec<String>,
    /// The first crash rep's timeline.
    pub timeline: Option<Timeline>,
    /// Wall time the configuration took.
    pub seconds: f64,
}

impl Outcome {
    /// As JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "implementation": self.plan.kind.label(),
            "advert_interval_ms": self.plan.interval.as_millis() as u64,
            "reps": self.plan.reps,
            "crash": Summary::of(&self.crash).map(Summary::to_json),
            "graceful": Summary::of(&self.graceful).map(Summary::to_json),
            "crash_samples_ms": self.crash,
            "graceful_samples_ms": self.graceful,
            "failures": self.failures,
            "seconds": self.seconds,
        })
    }
}

/// Runs one configuration in its own lab. Errors building the lab are returned; a rep
/// that fails is recorded in `failures` and the next one goes on (after up to three
/// failures in a row the configuration is abandoned).
pub fn measure(bin: &Path, plan: Plan) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let lan = Lan::new("fo", 3).context("building the failover lab (needs root)")?;
    add_addr(lan.member(0), "eth0", "192.0.2.1/24")?;
    add_addr(lan.member(1), "eth0", "192.0.2.2/24")?;
    add_addr(lan.member(2), "eth0", "192.0.2.10/24")?;
    let client = lan.member(2);
    let scratch = Scratch::new("bench")?;
    let vip = format!("{VIP}/24");
    let mut r1 = Node::new(
        lan.member(0),
        &scratch,
        "r1",
        plan.kind,
        &[Inst::new(7, 150, plan.interval, &vip)],
        bin,
    )?;
    let mut r2 = Node::new(
        lan.member(1),
        &scratch,
        "r2",
        plan.kind,
        &[Inst::new(7, 100, plan.interval, &vip)],
        bin,
    )?;
    let settle = settle_timeout(plan.interval);
    r1.start()?;
    r2.start()?;
    r1.wait_master(0, true, settle)?;
    r2.wait_master(0, false, settle)?;

    let mut outcome = Outcome {
        plan,
        crash: Vec::new(),
        graceful: Vec::new(),
        failures: Vec::new(),
        timeline: None,
        seconds: 0.0,
    };
    let mut failed_in_a_row = 0;
    'reps: for rep in 0..plan.reps {
        for event in [Event::Crash, Event::Graceful] {
            let want_timeline = rep == 0 && event == Event::Crash;
            match one_rep(&mut r1, &r2, client, event, plan.interval, want_timeline) {
                Ok((outage, timeline)) => {
                    failed_in_a_row = 0;
                    match event {
                        Event::Crash => outcome.crash.push(outage),
                        Event::Graceful => outcome.graceful.push(outage),
                    }
                    if let Some(mut timeline) = timeline {
                        timeline.label = format!(
                            "{} crash, {} ms adverts",
                            plan.kind.label(),
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
    Ok(())
}

/// One failover; the outage in ms and, if asked, the timeline.
fn one_rep(
    r1: &mut Node<'_>,
    r2: &Node<'_>,
    client: &vipd_tests::Netns,
    event: Event,
    interval: Duration,
    want_timeline: bool,
) -> anyhow::Result<(f64, Option<Timeline>)> {
    let settle = settle_timeout(interval);
    let ping = PingRun::start(
        client,
        VIP,
        Duration::from_millis(1),
        settle * 3 + Duration::from_secs(10),
    )?;
    ping.wait_for_more(30, Duration::from_secs(5), "before the event")?;
    let mut states = Vec::new();
    let t0 = Instant::now();
    if want_timeline {
        // A little of the steady state before the event, for the plot.
        let until = t0 + (interval * 2).max(Duration::from_millis(20));
        while Instant::now() < until {
            states.push((Instant::now(), r1.is_master(0), r2.is_master(0)));
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    let at = Instant::now();
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
    let recovered = ping.wait_for_more(20, settle, "after the takeover");
    if want_timeline {
        let until = Instant::now() + (interval * 2).max(Duration::from_millis(20));
        while Instant::now() < until {
            states.push((Instant::now(), r1.is_master(0), r2.is_master(0)));
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    let log = ping.finish()?;
    recovered?;
    if event == Event::Graceful {
        r1.wait_exit(Duration::from_secs(10))?;
    }
    let outage = log
        .outage_between(at, took_over)
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
                .filter(|t| **t >= t0)
                .map(|t| rel(*t))
                .collect(),
        }
    });
    Ok((outage.as_secs_f64() * 1e3, timeline))
}
