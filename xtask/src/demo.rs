//! `cargo xtask demo`: vipd in a small lab of network namespaces, narrated.
//!
//! Three routers running vipd (priorities 150/100/50, adverts every 10 ms) and a client
//! share a bridge. The client pings the VIP every millisecond while the master is killed
//! (SIGKILL), comes back and preempts, and is stopped gracefully (SIGTERM); the outage
//! the client saw is printed for each. Then the XDP ARP responder answers arping for a
//! VIP the kernel does not hold. Everything is removed at the end, also on failure.
//!
//! As in the bench (see `bench::failover`), the routers run notify commands the way
//! the seed configuration does (a script in the demo's scratch directory that only logs
//! its arguments there), the VIP is inside the routers' subnet, and the crash and the
//! SIGTERM land at a random phase of the 10 ms advert cycle (seed printed;
//! `VIPD_BENCH_SEED` replays it).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use vipd_tests::netns::Netns;
use vipd_tests::pinger::{PingLog, PingRun};
use vipd_tests::poll_until;
use vipd_tests::proc::Proc;
use vipd_tests::topo::{Lan, add_addr, link_down, link_up};

use crate::bench::failover::{notify_script, phase_seed, random_phase};

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const ROUTERS: [(&str, u8, &str); 3] = [
    ("r1", 150, "192.0.2.1/24"),
    ("r2", 100, "192.0.2.2/24"),
    ("r3", 50, "192.0.2.3/24"),
];
const CLIENT_ADDR: &str = "192.0.2.10/24";
const ADVERT_INT: Duration = Duration::from_millis(10);

struct Router<'a> {
    name: &'static str,
    ns: &'a Netns,
    config: PathBuf,
    socket: PathBuf,
    proc: Option<Proc>,
}

impl Router<'_> {
    fn start(&mut self, bin: &Path) -> anyhow::Result<()> {
        let bin = bin.to_string_lossy().into_owned();
        let config = self.config.to_string_lossy().into_owned();
        // Routers in namespaces share the host's bpffs and /run: give each its own.
        let state = self.socket.with_extension("d");
        let bpffs = format!("/sys/fs/bpf/vipd-demo-{}-{}", std::process::id(), self.name);
        let run_dir = state.to_string_lossy().into_owned();
        let proc = self
            .ns
            .spawn(&[
                &bin,
                "run",
                "-c",
                &config,
                "--bpffs-dir",
                &bpffs,
                "--run-dir",
                &run_dir,
            ])
            .with_context(|| format!("starting vipd on {}", self.name))?;
        self.proc = Some(proc);
        Ok(())
    }

    fn state(&self, bin: &Path) -> Option<String> {
        let out = std::process::Command::new(bin)
            .args(["status", "--json", "--socket"])
            .arg(&self.socket)
            .output()
            .ok()?;
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        json["instances"][0]["state"].as_str().map(str::to_owned)
    }
}

fn say(text: &str) {
    println!("[demo] {text}");
}

pub fn demo(bin: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    say("lab: routers r1 (priority 150), r2 (100), r3 (50) and a client on one bridge");
    say("     VIP 192.0.2.100, VRRPv3, adverts every 10 ms, XDP in generic mode (veth)");
    say("     notify_master/backup/fault and notify call a script that logs to the demo's dir");
    let seed = phase_seed()?;
    let mut rng = fastrand::Rng::with_seed(seed);
    say(&format!(
        "     crash and SIGTERM at a random phase of the advert cycle (VIPD_BENCH_SEED={seed} replays it)"
    ));
    let lan = Lan::new("demo", 4).context("building the lab (needs root)")?;
    let dir = tempdir()?;
    let mut routers = Vec::new();
    let mut notify_logs = Vec::new();
    for (i, (name, priority, addr)) in ROUTERS.iter().enumerate() {
        let ns = lan.member(i);
        add_addr(ns, "eth0", addr)?;
        let socket = dir.join(format!("{name}.sock"));
        let config = dir.join(format!("{name}.toml"));
        let (script, log) = notify_script(&dir, &format!("notify-{name}"))?;
        notify_logs.push(log);
        std::fs::write(&config, router_config(name, *priority, &socket, &script))?;
        routers.push(Router {
            name,
            ns,
            config,
            socket,
            proc: None,
        });
    }
    let client = lan.member(3);
    add_addr(client, "eth0", CLIENT_ADDR)?;

    for router in &mut routers {
        router.start(bin)?;
    }
    let t0 = Instant::now();
    wait_for_master(bin, &routers, "r1")?;
    let elected = t0.elapsed();
    // The backups answer on their control sockets a moment later than r1 may win.
    let backup_states =
        || -> Vec<Option<String>> { routers[1..].iter().map(|r| r.state(bin)).collect() };
    let mut states = backup_states();
    while states.iter().any(Option::is_none) && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
        states = backup_states();
    }
    let shown: Vec<String> = states
        .into_iter()
        .map(|s| s.unwrap_or_else(|| "not answering on its control socket".to_owned()))
        .collect();
    say(&format!(
        "election: r1 is MASTER after {} ms (r2 {}, r3 {})",
        elected.as_millis(),
        shown[0],
        shown[1]
    ));

    // The client pings the VIP every millisecond for the rest of the demo, as the
    // bench's does: a pinger per CPU at SCHED_FIFO 1, all sending every millisecond (a
    // client with a CPU of its own does not wait for the lab's other processes, nor for
    // one stalled vCPU).
    let pings = PingRun::start_realtime(
        client,
        VIP,
        Duration::from_millis(1),
        Duration::from_secs(50),
    )
    .context("starting the client's pinger")?;
    std::thread::sleep(Duration::from_millis(500));

    // A crash is the master host dying: its vipd gets no chance to say goodbye and its
    // link goes quiet. (Killing only the process would leave the VIP on r1's kernel, still
    // answering the client, and measure nothing.)
    say("crash: r1 dies (its link goes down, its vipd gets SIGKILL)");
    std::thread::sleep(random_phase(&mut rng, ADVERT_INT));
    let crash_at = Instant::now();
    link_down(routers[0].ns, "eth0")?;
    if let Some(p) = routers[0].proc.as_ref() {
        p.signal(libc::SIGKILL)?;
    }
    wait_for_master(bin, &routers, "r2")?;
    let crash_settled = Instant::now();
    std::thread::sleep(Duration::from_millis(500));

    say("restart: r1 comes back; vipd removes the VIP the crash left behind and preempts");
    routers[0].proc = None;
    link_up(routers[0].ns, "eth0")?;
    routers[0].start(bin)?;
    let restart_at = Instant::now();
    wait_for_master(bin, &routers, "r1")?;
    let restart_settled = Instant::now();
    std::thread::sleep(Duration::from_millis(500));

    say("graceful: SIGTERM to vipd on r1 (priority 0; it keeps the VIP until r2 has announced it)");
    std::thread::sleep(random_phase(&mut rng, ADVERT_INT));
    let graceful_at = Instant::now();
    if let Some(p) = routers[0].proc.as_mut() {
        let done = p.terminate(Duration::from_secs(3))?;
        say(&format!("         vipd on r1 exited with {}", done.status));
    }
    wait_for_master(bin, &routers, "r2")?;
    let graceful_settled = Instant::now();
    std::thread::sleep(Duration::from_millis(500));

    let log: PingLog = pings.finish()?;
    // From the event until shortly after the new master showed in `vipd status`.
    // And how many of the client's requests got no answer: a make-before-break handover
    // loses none (the gap between replies also counts a client that was not scheduled).
    let show = |what: &str, at: Instant, settled: Instant| match log.outage_between(at, settled) {
        Some(outage) => say(&format!(
            "{what:<28} client-visible outage {:>6.1} ms, {} requests lost",
            ms(outage),
            log.loss_between(at, settled).0
        )),
        None => say(&format!(
            "{what:<28} the client did not get through after it"
        )),
    };
    println!();
    say(&format!(
        "client sent {} pings, got {} replies",
        log.sent,
        log.replies.len()
    ));
    show("crash failover (SIGKILL):", crash_at, crash_settled);
    show("preemption by restarted r1:", restart_at, restart_settled);
    show(
        "graceful failover (SIGTERM):",
        graceful_at,
        graceful_settled,
    );
    let calls: Vec<String> = ROUTERS
        .iter()
        .zip(&notify_logs)
        .map(|((name, _, _), log)| {
            let n = std::fs::read_to_string(log).map_or(0, |t| t.lines().count());
            format!("{name} {n}")
        })
        .collect();
    say(&format!("notify script runs: {}", calls.join(", ")));
    println!();

    for router in &mut routers {
        if let Some(mut p) = router.proc.take() {
            let _ = p.terminate(Duration::from_secs(3));
        }
    }
    drop(lan);
    drop(dir);
    for (name, _, _) in ROUTERS {
        let _ = std::fs::remove_dir_all(format!(
            "/sys/fs/bpf/vipd-demo-{}-{name}",
            std::process::id()
        ));
    }

    arp_demo(bin)?;
    say(&format!(
        "done in {:.1} s; namespaces and processes removed",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// The XDP ARP responder: answers arping for a VIP that is not on the kernel's interface.
fn arp_demo(bin: &Path) -> anyhow::Result<()> {
    say(
        "XDP: vipd's ARP responder on r1's eth0 in generic mode, VIP 192.0.2.100 NOT on the interface",
    );
    let lan = Lan::new("demoarp", 2)?;
    add_addr(lan.member(0), "eth0", "192.0.2.1/24")?;
    add_addr(lan.member(1), "eth0", CLIENT_ADDR)?;
    let bin = bin.to_string_lossy().into_owned();
    let mut responder = lan.member(0).spawn(&[
        &bin,
        "arp-responder",
        "--interface",
        "eth0",
        "--vip",
        "192.0.2.100",
        "--xdp-mode",
        "generic",
    ])?;
    responder.wait_for_line(Duration::from_secs(10), |l| l.starts_with("ready"))?;
    let arping =
        lan.member(1)
            .exec(&["arping", "-c", "3", "-w", "3", "-I", "eth0", "192.0.2.100"])?;
    for line in String::from_utf8_lossy(&arping.stdout).lines() {
        say(&format!("  client$ {line}"));
    }
    let done = responder.terminate(Duration::from_secs(3))?;
    let stats = done.stdout.lines().last().unwrap_or_default().to_owned();
    say(&format!("  XDP counters: {stats}"));
    if !arping.status.success() {
        bail!("arping got no reply from the XDP responder");
    }
    Ok(())
}

fn wait_for_master(bin: &Path, routers: &[Router<'_>], name: &str) -> anyhow::Result<()> {
    let router = routers
        .iter()
        .find(|r| r.name == name)
        .context("no such router")?;
    poll_until(
        &format!("{name} to become MASTER"),
        Duration::from_secs(10),
        Duration::from_millis(5),
        || match router.state(bin) {
            Some(state) if state == "MASTER" => Ok(()),
            other => Err(other),
        },
    )
}

fn router_config(name: &str, priority: u8, socket: &Path, notify: &Path) -> String {
    let notify = notify.display().to_string();
    format!(
        r#"[global]
router_id = "{name}"
control_socket = "{socket}"

[instance.VI_1]
interface = "eth0"
virtual_router_id = 7
priority = {priority}
advert_int = "10ms"
virtual_ipaddress = ["192.0.2.100/24"]
garp_master_delay = "0s"
xdp = "auto"
notify_master = [{notify:?}, "master"]
notify_backup = [{notify:?}, "backup"]
notify_fault = [{notify:?}, "fault"]
notify = [{notify:?}]
"#,
        socket = socket.display()
    )
}

/// A scratch directory removed on drop, also when the demo fails half way.
struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir() -> anyhow::Result<TempDir> {
    let dir = std::env::temp_dir().join(format!("vipd-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(TempDir(dir))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
