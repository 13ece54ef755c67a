//! L3 mode (docs/l3.md): the client's outage when an anycast node fails, with the VIP
//! announced over BGP through FRR.
//!
//! Lab (`vipd_tests::bgp::L3Lab`): an upstream FRR router (AS 64500, ECMP), two vipd
//! nodes each with FRR zebra + bgpd (eBGP, timers 1 s / 3 s), active-active, a UDP
//! responder on each node bound to the VIP, and a client behind the upstream running
//! 16 UDP flows (a request per flow every 10 ms). Per repetition, after a random phase
//! (so the failure lands anywhere in the keepalive / BFD cycle), node 2 fails:
//! - `vipd_kill`: its vipd is SIGKILLed (the kernel deletes the TAP device, zebra
//!   withdraws the route);
//! - `node_silent`: its switch port goes down (a crashed node: nothing more comes from
//!   it), without BFD (the BGP hold time, 3 s, detects it) and with BFD (100 ms × 3).
//!
//! The outage is the longest time a flow went unanswered; the detection time is from
//! the failure to the upstream's FIB losing node 2's nexthop.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};
use vipd_tests::bgp::{Flows, L3Lab, PORT, VIP, longest_outage, node_addr, wait_nexthops};

use super::Options;
use super::failover::{phase_seed, random_phase};
use super::stats::Summary;

const CONVERGE: Duration = Duration::from_secs(30);
const FLOWS: usize = 16;
const PERIOD: Duration = Duration::from_millis(10);

/// How node 2 fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    VipdKill,
    Silent,
}

/// Runs every variant; returns the JSON for results.json.
pub fn run(bin: &Path, opts: Options) -> anyhow::Result<Value> {
    let reps = opts.reps.unwrap_or(if opts.quick { 3 } else { 10 }).max(1);
    let seed = phase_seed()?;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = serde_json::Map::new();
    out.insert("seed".into(), json!(seed));
    out.insert("reps".into(), json!(reps));
    println!(
        "  {:<28} {:>5} {:>10} {:>10} {:>10} {:>14}",
        "L3 failure", "n", "p50 ms", "p99 ms", "max ms", "detect p50 ms"
    );
    for (name, failure, bfd) in [
        ("vipd_kill", Failure::VipdKill, false),
        ("node_silent_no_bfd", Failure::Silent, false),
        ("node_silent_bfd", Failure::Silent, true),
    ] {
        let (outages, detections) = variant(bin, name, failure, bfd, reps, &mut rng)
            .with_context(|| format!("L3 bench {name}"))?;
        let outage = Summary::of(&outages).context("no samples")?;
        let detect = Summary::of(&detections).context("no samples")?;
        println!(
            "  {name:<28} {:>5} {:>10.0} {:>10.0} {:>10.0} {:>14.0}",
            outage.n, outage.p50, outage.p99, outage.max, detect.p50
        );
        out.insert(
            name.into(),
            json!({ "outage": outage.to_json(), "detection": detect.to_json(), "bfd": bfd }),
        );
    }
    Ok(Value::Object(out))
}

/// One lab, `reps` failures of node 2; (outages, detection times) in milliseconds.
fn variant(
    bin: &Path,
    tag: &str,
    failure: Failure,
    bfd: bool,
    reps: usize,
    rng: &mut fastrand::Rng,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let tag: String = tag
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(8)
        .collect();
    let lab = L3Lab::new(&format!("b{tag}"), 2, 0, bin.to_owned())?;
    let upstream = lab.start_upstream(bfd)?;
    let nodes = lab.start_nodes(2, "", bfd, true)?;
    let (mut routers, bgps, responders) = (nodes.routers, nodes.bgps, nodes.responders);
    let (n1, n2) = (node_addr(1), node_addr(2));
    let to: SocketAddr = format!("{VIP}:{PORT}").parse()?;
    let flows = Flows::open(&lab.client, to, FLOWS)?;
    let mut outages = Vec::new();
    let mut detections = Vec::new();
    for _ in 0..reps {
        // Both nodes announce and answer (after a silence the session comes back).
        upstream.wait_established(2, CONVERGE)?;
        wait_nexthops(lab.up(), VIP, &[&n1, &n2], CONVERGE)?;
        flows.wait_all_answered(CONVERGE, Duration::from_millis(50))?;
        let phase = random_phase(rng, Duration::from_secs(1));
        let run_for = match failure {
            Failure::Silent if !bfd => Duration::from_secs(6),
            _ => Duration::from_secs(3),
        } + phase;
        let (rounds, detection) = std::thread::scope(|s| -> anyhow::Result<_> {
            let runner = s.spawn(|| flows.run(PERIOD, run_for));
            std::thread::sleep(Duration::from_millis(300) + phase);
            let failed = Instant::now();
            match failure {
                Failure::VipdKill => {
                    routers[1].kill()?;
                }
                Failure::Silent => lab.silence(2)?,
            }
            wait_nexthops(lab.up(), VIP, &[&n1], Duration::from_secs(10))?;
            let detection = failed.elapsed();
            let rounds = runner
                .join()
                .map_err(|_| anyhow::anyhow!("flow thread panicked"))??;
            Ok((rounds, detection))
        })?;
        outages.push(longest_outage(&rounds).as_secs_f64() * 1000.0);
        detections.push(detection.as_secs_f64() * 1000.0);
        match failure {
            Failure::VipdKill => routers[1].start()?,
            Failure::Silent => lab.unsilence(2)?,
        }
    }
    for router in &mut routers {
        if router.is_running() {
            router.stop(Duration::from_secs(5))?;
        }
    }
    drop(responders);
    drop(bgps);
    drop(upstream);
    Ok((outages, detections))
}
