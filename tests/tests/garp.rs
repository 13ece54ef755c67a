//! Gratuitous ARP on becoming master, as a client on the LAN sees it: the
//! `garp_master_repeat` burst `garp_interval` apart, the second burst after
//! `garp_master_delay`, the directed requests to `garp_gateways`, and the
//! `garp_master_refresh` rounds, which must stop when the master steps down.
//!
//! Routers are members 0.. of a [`Lan`] with 192.0.2.(i+1)/24 on `eth0`; the client that
//! captures ARP is the last member, 192.0.2.10/24. The capture runs on its own thread from
//! before the first vipd starts and timestamps each frame as it arrives, so the timing
//! checks are coarse (user-space receive times, a few ms of jitter).

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::ensure;

use vipd_tests::packet::{ARP_FRAME_LEN, ArpFrame, ETH_P_ARP, PacketSocket, format_mac};
use vipd_tests::vipd::{InstanceConf, Router, Scratch, stop_all};
use vipd_tests::{Lan, Netns, in_netns, mac_of, poll_until, require_root};

const VIP_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const VIP_B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 101);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 254);

/// Bound on any election or takeover (they take well under a second).
const ELECTION: Duration = Duration::from_secs(5);

/// `garp_master_refresh` of [`refresh_repeats_while_master_and_stops_on_backup`], and how
/// long at least that test watches the refreshes.
const REFRESH: Duration = Duration::from_millis(200);
const WATCH: Duration = Duration::from_millis(1000);

/// A LAN of `routers` routers (192.0.2.1, .2, ...) plus a client (192.0.2.10) as the
/// last member, and a scratch directory.
fn lab(tag: &str, routers: usize) -> anyhow::Result<(Lan, Scratch)> {
    vipd_tests::vipd::router_lab(tag, routers, true)
}

/// The instance of these tests: VRID 7, both VIPs, 50 ms adverts (the default).
fn instance(priority: u8) -> InstanceConf {
    let mut conf = InstanceConf::new("VI_1", 7, priority, "192.0.2.100/24");
    conf.vips.push("192.0.2.101/24".to_owned());
    conf
}

/// One ARP frame as the client received it.
#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    bytes: Vec<u8>,
    arp: ArpFrame,
}

impl Seen {
    fn describe(&self, origin: Instant) -> String {
        format!(
            "+{:>4} ms op={} {} > {} who-has {} tell {} ({})",
            self.at.saturating_duration_since(origin).as_millis(),
            self.arp.oper,
            format_mac(self.arp.eth_src),
            format_mac(self.arp.eth_dst),
            self.arp.tpa,
            self.arp.spa,
            format_mac(self.arp.sha),
        )
    }
}

/// ARP capture on the client's `eth0`, on a thread of its own; stopped and joined on
/// [`Capture::finish`] or drop.
struct Capture {
    origin: Instant,
    frames: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Capture {
    fn start(client: &Netns) -> anyhow::Result<Capture> {
        let socket = in_netns(client, || PacketSocket::open("eth0", ETH_P_ARP))??;
        let frames = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let frames = Arc::clone(&frames);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || -> anyhow::Result<()> {
                while !stop.load(Ordering::Relaxed) {
                    let deadline = Instant::now() + Duration::from_millis(20);
                    while let Some(bytes) = socket.recv_until(deadline)? {
                        let at = Instant::now();
                        if let Some(arp) = ArpFrame::parse(&bytes) {
                            frames
                                .lock()
                                .map_err(|_| anyhow::anyhow!("capture lock poisoned"))?
                                .push(Seen { at, bytes, arp });
                        }
                    }
                }
                Ok(())
            })
        };
        Ok(Capture {
            origin: Instant::now(),
            frames,
            stop,
            thread: Some(thread),
        })
    }

    /// Everything captured so far.
    fn snapshot(&self) -> Vec<Seen> {
        self.frames.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// Stops the capture thread and returns every frame it saw.
    fn finish(mut self) -> anyhow::Result<Vec<Seen>> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread
                .join()
                .map_err(|_| anyhow::anyhow!("capture thread panicked"))??;
        }
        Ok(self.snapshot())
    }

    fn dump(&self, frames: &[Seen]) -> String {
        frames
            .iter()
            .map(|f| f.describe(self.origin))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Gratuitous ARPs for `vip` (target IP = `vip`) among `frames`, whoever sent them.
fn gratuitous_for(frames: &[Seen], vip: Ipv4Addr) -> Vec<&Seen> {
    frames.iter().filter(|f| f.arp.tpa == vip).collect()
}

/// Checks `seen` is, byte for byte, the request "who-has `target` tell `sender_ip`" from
/// `mac`: broadcast, source `mac`, ARP request, sender (`mac`, `sender_ip`), target MAC
/// zero, target IP `target` (42 bytes; Ethernet padding after them is ignored).
fn assert_request_bytes(
    seen: &Seen,
    mac: [u8; 6],
    sender_ip: Ipv4Addr,
    target: Ipv4Addr,
    origin: Instant,
) -> anyhow::Result<()> {
    let expected = ArpFrame::request(mac, sender_ip, target).to_bytes();
    ensure!(
        seen.bytes.len() >= ARP_FRAME_LEN && seen.bytes[..ARP_FRAME_LEN] == expected,
        "frame {} is not the expected who-has {target} tell {sender_ip} from {}:\n got  {:02x?}\n want {:02x?}",
        seen.describe(origin),
        format_mac(mac),
        &seen.bytes[..seen.bytes.len().min(ARP_FRAME_LEN)],
        expected
    );
    Ok(())
}

// 1.
/// Two VIPs, `garp_master_repeat = 3` every 20 ms, a second burst 300 ms later, no
/// refresh, and 2 directed requests to one gateway: the client sees exactly 3 + 3
/// byte-correct gratuitous ARPs per VIP, timed as configured, exactly 2 directed
/// requests per VIP, and `garps_sent` counts the 12 gratuitous ones.
#[test]
fn master_sends_bursts_and_directed_requests() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = lab("garpb", 1)?;
    let router_mac = mac_of(lan.member(0), "eth0")?;
    let conf = instance(200)
        .set("garp_master_repeat", "3")
        .set("garp_interval", "\"20ms\"")
        .set("garp_master_delay", "\"300ms\"")
        .set("garp_master_refresh", "\"0s\"")
        .set("garp_gateways", "[\"192.0.2.254\"]")
        .set("garp_gateway_count", "2");
    let mut routers = vec![Router::new(lan.member(0), &scratch, "r1", &[conf])?];

    let capture = Capture::start(lan.member(1))?;
    routers[0].start()?;
    routers[0].wait_state("VI_1", "MASTER", ELECTION)?;
    // The second burst is due 300 ms + 40 ms after takeover; leave as much again.
    std::thread::sleep(Duration::from_millis(700));
    let origin = capture.origin;
    let all = capture.finish()?;
    let garps_sent = routers[0].counter("VI_1", "garps_sent")?;
    let dump = || {
        all.iter()
            .map(|f| f.describe(origin))
            .collect::<Vec<_>>()
            .join("\n")
    };

    // Nothing but the VIPs' announcements: every frame is a GARP or a directed request.
    for seen in &all {
        ensure!(
            (seen.arp.tpa == seen.arp.spa && [VIP_A, VIP_B].contains(&seen.arp.tpa))
                || seen.arp.tpa == GATEWAY,
            "unexpected ARP frame {}; all frames:\n{}",
            seen.describe(origin),
            dump()
        );
    }

    for vip in [VIP_A, VIP_B] {
        let garps = gratuitous_for(&all, vip);
        ensure!(
            garps.len() == 6,
            "expected 3 + 3 gratuitous ARPs for {vip}, saw {}; all frames:\n{}",
            garps.len(),
            dump()
        );
        for seen in &garps {
            assert_request_bytes(seen, router_mac, vip, vip, origin)?;
        }
        // First burst: 3 rounds 20 ms apart. vipd schedules the rounds at fixed times
        // from takeover, so one late wake-up (or a late receive here) shortens one gap
        // and lengthens the next; the span of the burst is what survives that jitter
        // (nominally 40 ms; without garp_interval it would be ~0).
        let span = garps[2].at - garps[0].at;
        ensure!(
            span >= Duration::from_millis(25),
            "first burst for {vip} spans only {span:?} (3 rounds, garp_interval 20ms: ~40ms); all frames:\n{}",
            dump()
        );
        // Second burst: garp_master_delay (300 ms) after the first.
        let delay = garps[3].at - garps[0].at;
        ensure!(
            delay >= Duration::from_millis(250) && delay <= Duration::from_millis(600),
            "second burst for {vip} started {delay:?} after the first (garp_master_delay 300ms); all frames:\n{}",
            dump()
        );
        let span = garps[5].at - garps[3].at;
        ensure!(
            span >= Duration::from_millis(25),
            "second burst for {vip} spans only {span:?} (~40ms expected); all frames:\n{}",
            dump()
        );

        let directed: Vec<&Seen> = all
            .iter()
            .filter(|f| f.arp.tpa == GATEWAY && f.arp.spa == vip)
            .collect();
        ensure!(
            directed.len() == 2,
            "expected 2 directed requests who-has {GATEWAY} tell {vip}, saw {}; all frames:\n{}",
            directed.len(),
            dump()
        );
        for seen in directed {
            assert_request_bytes(seen, router_mac, vip, GATEWAY, origin)?;
        }
    }
    let directed_total = all.iter().filter(|f| f.arp.tpa == GATEWAY).count();
    ensure!(
        directed_total == 4,
        "expected 4 directed requests in all (2 per VIP), saw {directed_total}; all frames:\n{}",
        dump()
    );
    ensure!(
        garps_sent == 12,
        "status garps_sent is {garps_sent}, the client saw 12 gratuitous ARPs"
    );
    stop_all(&mut routers)
}

// 2.
/// `garp_master_refresh = "200ms"` (one GARP per burst, no second burst): over at least a
/// second of mastership the client sees the takeover round plus one refresh round per
/// 200 ms of the time it actually watched (measured, so a slow machine that stretches
/// the window stretches the expectation with it); once a higher-priority router has
/// taken over, the old master's refreshes stop.
#[test]
fn refresh_repeats_while_master_and_stops_on_backup() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = lab("garpr", 2)?;
    let old_mac = mac_of(lan.member(0), "eth0")?;
    let conf = instance(100)
        .set("garp_master_repeat", "1")
        .set("garp_master_delay", "\"0s\"")
        .set(
            "garp_master_refresh",
            &format!("\"{}ms\"", REFRESH.as_millis()),
        );
    let mut routers = vec![
        Router::new(lan.member(0), &scratch, "r1", std::slice::from_ref(&conf))?,
        Router::new(lan.member(1), &scratch, "r2", &[conf.priority(200)])?,
    ];

    let capture = Capture::start(lan.member(2))?;
    let origin = capture.origin;
    routers[0].start()?;
    routers[0].wait_state("VI_1", "MASTER", ELECTION)?;
    // Watch for a second from the takeover round as the client saw it.
    let takeover = poll_until(
        "the takeover GARP",
        ELECTION,
        Duration::from_millis(10),
        || {
            gratuitous_for(&capture.snapshot(), VIP_A)
                .first()
                .map(|f| f.at)
                .ok_or("none yet")
        },
    )?;
    std::thread::sleep((takeover + WATCH).saturating_duration_since(Instant::now()));
    let watched_until = Instant::now();
    let while_master = capture.snapshot();

    for vip in [VIP_A, VIP_B] {
        let garps = gratuitous_for(&while_master, vip);
        for seen in &garps {
            assert_request_bytes(seen, old_mac, vip, vip, origin)?;
        }
        // How many refreshes fit between this VIP's takeover GARP and the end of the
        // capture read above (over a second, longer when the test thread was late).
        // vipd schedules each refresh from the previous one, so late wake-ups can only
        // lose rounds, never add them: two fewer (a late round, a frame not yet read by
        // the capture) to one more (a takeover frame read late) are tolerated.
        let watched = garps.first().map_or(Duration::ZERO, |f| {
            watched_until.saturating_duration_since(f.at)
        });
        let due = u32::try_from(watched.as_millis() / REFRESH.as_millis()).unwrap_or(u32::MAX);
        let refreshes = u32::try_from(garps.len().saturating_sub(1)).unwrap_or(u32::MAX);
        ensure!(
            refreshes + 2 >= due && refreshes <= due + 1,
            "expected the takeover round plus ~{due} refreshes ({}..={} GARPs) for {vip} in \
             the {watched:?} watched as master, saw {}:\n{}",
            due.saturating_sub(2) + 1,
            due + 2,
            garps.len(),
            capture.dump(&while_master)
        );
        // Refreshes, not a burst: the rounds are garp_master_refresh apart (coarsely).
        for pair in garps.windows(2) {
            let gap = pair[1].at - pair[0].at;
            ensure!(
                gap >= Duration::from_millis(150),
                "GARPs for {vip} only {gap:?} apart (garp_master_refresh 200ms):\n{}",
                capture.dump(&while_master)
            );
        }
    }

    // A higher priority takes over; the old master steps down and must stop refreshing.
    routers[1].start()?;
    routers[1].wait_state("VI_1", "MASTER", ELECTION)?;
    routers[0].wait_state("VI_1", "BACKUP", ELECTION)?;
    let stepped_down = Instant::now();
    std::thread::sleep(Duration::from_millis(500));
    routers[0].wait_state("VI_1", "BACKUP", Duration::from_millis(100))?;
    let all = capture.finish()?;
    // What counts is an announcement binding a VIP to the old master's MAC. Stepping
    // down it may still send (from its own port) announcements binding the VIPs to the
    // new master's MAC, once that one answers for them (`AnnounceFor`), and the ARP
    // request that finds that out: neither points anyone at the old master.
    let late: Vec<&Seen> = all
        .iter()
        .filter(|f| {
            f.at > stepped_down
                && f.arp.sha == old_mac
                && f.arp.spa == f.arp.tpa
                && [VIP_A, VIP_B].contains(&f.arp.tpa)
        })
        .collect();
    ensure!(
        late.is_empty(),
        "the old master still announced the VIPs after stepping down:\n{}\nall frames:\n{}",
        late.iter()
            .map(|f| f.describe(origin))
            .collect::<Vec<_>>()
            .join("\n"),
        all.iter()
            .map(|f| f.describe(origin))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // And the new master did announce them (the capture was still listening).
    let new_mac = mac_of(lan.member(1), "eth0")?;
    for vip in [VIP_A, VIP_B] {
        ensure!(
            all.iter()
                .any(|f| f.arp.tpa == vip && f.arp.eth_src == new_mac),
            "the new master sent no gratuitous ARP for {vip}"
        );
    }
    stop_all(&mut routers)
}
