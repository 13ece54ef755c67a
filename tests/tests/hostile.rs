//! Hostile input: a third host on the LAN sends a barrage of broken VRRP adverts and
//! broken ARP frames at a running master/backup pair, once with `xdp = "off"` and once
//! with `xdp = "generic"`.
//!
//! Lab: a bridged [`Lan`]: r0 (192.0.2.1, priority 200, the master), r1 (192.0.2.2,
//! priority 100, the backup) and the attacker (192.0.2.50). Two instances on each
//! router: `VI_1` (VRID 7, VRRPv3, 100 ms adverts) and `VI_2` (VRID 8, VRRPv2 with PASS
//! authentication, 1 s adverts), so both the v3 checks and the v2 authentication check
//! are exercised.
//!
//! Every frame is a well-formed Ethernet + IPv4 packet (the kernel delivers it to the
//! VRRP raw socket) whose VRRP part fails exactly one RFC 5798 §7.1 check; many of them
//! claim priority 250, higher than the master's, so a check that let one through would
//! show up as a takeover. The attacker sends [`DEFAULT_PACKETS`] frames
//! (`VIPD_LONG=1`: [`LONG_PACKETS`]) at a bounded rate, for at most [`MAX_SEND_TIME`].
//!
//! Asserted: both vipds stay up; no transition on either router; the master is still
//! MASTER and holds the VIP; every VRRP frame is counted by the backup under the
//! discard reason it was built to fail (allowing only for frames the kernel or vipd's
//! own queue dropped, which are counted too); with XDP, the program counts each frame
//! under its own drop reason as well; neither vipd's RSS grows by 1 MiB or more.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};

use vipd_tests::packet::{
    ETH_P_ARP, ETH_P_IP, IPPROTO_VRRP, PacketSocket, VRRP_GROUP_V4, internet_checksum,
};
use vipd_tests::vipd::{InstanceConf, Router, Scratch, holders, stop_all};
use vipd_tests::{Lan, Netns, add_addr, in_netns, mac_of, require_root};

const VIP1: &str = "192.0.2.100";
const VIP1_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const VIP2: &str = "192.0.2.101";
const VIP2_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 101);
const ATTACKER_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 50);

/// Frames per run by default, and with `VIPD_LONG=1`.
const DEFAULT_PACKETS: u64 = 5_000;
const LONG_PACKETS: u64 = 100_000;
/// Frames per burst; a 1 ms pause follows each burst (≈ 10k frames/s at most).
const BURST: u64 = 10;
/// Hard bound on the sending time, whatever the count.
const MAX_SEND_TIME: Duration = Duration::from_secs(60);
/// Bound on the v2 instance's first election (1 s adverts: 3 s + skew).
const ELECTION: Duration = Duration::from_secs(8);
/// RSS growth allowed over the barrage.
const MAX_RSS_GROWTH_KB: u64 = 1024;

static SERIAL: Mutex<()> = Mutex::new(());

/// One barrage at a time: they share two CPUs with everything else.
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn packets() -> u64 {
    if std::env::var_os("VIPD_LONG").is_some_and(|v| v == "1") {
        LONG_PACKETS
    } else {
        DEFAULT_PACKETS
    }
}

/// What a frame of the barrage is built to fail, and where it must be counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// v3, VRID 7, priority 250, TTL 64.
    TtlNot255,
    /// v3, VRID 7, priority 250, checksum off by one.
    BadChecksum,
    /// v2 header for the v3 instance (VRID 7), priority 250.
    WrongVersion,
    /// Version 15 for VRID 7.
    BogusVersion,
    /// v3, VRID 7, type 2.
    WrongType,
    /// VRID 7, 4 bytes of VRRP.
    Truncated,
    /// v3, VRID 7, Count IPvX Addr 5 with one address.
    CountTooLarge,
    /// v2, VRID 8, PASS with the wrong password, priority 250, correct checksum.
    V2WrongAuth,
    /// v2, VRID 8, auth type 0 (none) where PASS is configured, priority 250.
    V2NoAuth,
    /// A valid v3 advert for VRID 99, which nobody runs.
    UnknownVrid,
    /// ARP request for the VIP with opcode 3, 0 or 0xffff.
    ArpOddOpcode,
    /// ARP for the VIP with hardware length 8 / protocol length 16 / htype 6.
    ArpBadLengths,
    /// An ARP header cut after 20 bytes.
    ArpTruncated,
}

const VRRP_KINDS: [Kind; 10] = [
    Kind::TtlNot255,
    Kind::BadChecksum,
    Kind::WrongVersion,
    Kind::BogusVersion,
    Kind::WrongType,
    Kind::Truncated,
    Kind::CountTooLarge,
    Kind::V2WrongAuth,
    Kind::V2NoAuth,
    Kind::UnknownVrid,
];
const ARP_KINDS: [Kind; 3] = [Kind::ArpOddOpcode, Kind::ArpBadLengths, Kind::ArpTruncated];

impl Kind {
    fn is_vrrp(self) -> bool {
        VRRP_KINDS.contains(&self)
    }

    /// The backup's counter for this kind: (instance, counter), or (None, daemon
    /// counter).
    fn daemon_counter(self) -> Option<(Option<&'static str>, &'static str)> {
        Some(match self {
            Kind::TtlNot255 => (Some("VI_1"), "rx_ttl_not_255"),
            Kind::BadChecksum => (Some("VI_1"), "rx_bad_checksum"),
            Kind::WrongVersion | Kind::BogusVersion => (Some("VI_1"), "rx_version_mismatch"),
            Kind::WrongType => (Some("VI_1"), "rx_not_advertisement"),
            Kind::Truncated => (Some("VI_1"), "rx_truncated"),
            Kind::CountTooLarge => (Some("VI_1"), "rx_address_count_mismatch"),
            Kind::V2WrongAuth => (Some("VI_2"), "rx_auth_data_mismatch"),
            Kind::V2NoAuth => (Some("VI_2"), "rx_auth_type_mismatch"),
            Kind::UnknownVrid => (None, "unconfigured_rx_vrid_not_configured"),
            _ => return None,
        })
    }

    /// The XDP program's counter for this kind on the backup.
    fn xdp_counter(self) -> &'static str {
        match self {
            Kind::TtlNot255 => "advert_dropped_ttl",
            Kind::BadChecksum => "advert_dropped_checksum",
            Kind::WrongVersion | Kind::BogusVersion => "advert_dropped_version",
            Kind::WrongType => "advert_dropped_type",
            Kind::Truncated => "advert_dropped_truncated",
            Kind::CountTooLarge => "advert_dropped_length",
            Kind::V2WrongAuth | Kind::V2NoAuth => "advert_dropped_auth",
            Kind::UnknownVrid => "adverts_unwatched",
            Kind::ArpOddOpcode => "arp_passed",
            Kind::ArpBadLengths | Kind::ArpTruncated => "arp_malformed",
        }
    }
}

/// An Ethernet + IPv4 frame to 224.0.0.18 carrying `payload` as protocol 112, with a
/// correct IPv4 header checksum.
fn ip_frame(src_mac: [u8; 6], ttl: u8, payload: &[u8]) -> Vec<u8> {
    let total_len = (20 + payload.len()) as u16;
    let mut ip = vec![0x45, 0xc0];
    ip.extend_from_slice(&total_len.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0, 0, ttl, IPPROTO_VRRP, 0, 0]);
    ip.extend_from_slice(&ATTACKER_IP.octets());
    ip.extend_from_slice(&VRRP_GROUP_V4.octets());
    let checksum = internet_checksum(&ip);
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());
    let mut frame = vec![0x01, 0x00, 0x5e, 0x00, 0x00, 0x12];
    frame.extend_from_slice(&src_mac);
    frame.extend_from_slice(&ETH_P_IP.to_be_bytes());
    frame.extend_from_slice(&ip);
    frame.extend_from_slice(payload);
    frame
}

/// A VRRPv3 message: `ver_type` byte, VRID, priority, `count` field, 100 ms interval,
/// `addresses`; the checksum is correct (RFC 5798 §5.2.8, with the pseudo-header) plus
/// `checksum_error`.
fn v3_payload(
    ver_type: u8,
    vrid: u8,
    priority: u8,
    count: u8,
    addresses: &[Ipv4Addr],
    checksum_error: u16,
) -> Vec<u8> {
    let mut vrrp = vec![ver_type, vrid, priority, count, 0x00, 10, 0, 0];
    for a in addresses {
        vrrp.extend_from_slice(&a.octets());
    }
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&ATTACKER_IP.octets());
    pseudo.extend_from_slice(&VRRP_GROUP_V4.octets());
    pseudo.extend_from_slice(&[0, IPPROTO_VRRP]);
    pseudo.extend_from_slice(&(vrrp.len() as u16).to_be_bytes());
    pseudo.extend_from_slice(&vrrp);
    let checksum = internet_checksum(&pseudo).wrapping_add(checksum_error);
    vrrp[6..8].copy_from_slice(&checksum.to_be_bytes());
    vrrp
}

/// A VRRPv2 message (RFC 3768 §5.1) for VRID 8 with a 1 s interval, one address,
/// `auth_type` and `auth`, correct checksum (over the message only).
fn v2_payload(vrid: u8, priority: u8, auth_type: u8, auth: &[u8; 8]) -> Vec<u8> {
    let mut vrrp = vec![0x21, vrid, priority, 1, auth_type, 1, 0, 0];
    vrrp.extend_from_slice(&VIP2_ADDR.octets());
    vrrp.extend_from_slice(auth);
    let checksum = internet_checksum(&vrrp);
    vrrp[6..8].copy_from_slice(&checksum.to_be_bytes());
    vrrp
}

/// An ARP frame (broadcast) from the attacker about the VIP: `htype`, `ptype`, `hlen`,
/// `plen`, `oper` as given, cut to `len` bytes of ARP.
fn arp_frame(src_mac: [u8; 6], fields: (u16, u16, u8, u8, u16), len: usize) -> Vec<u8> {
    let (htype, ptype, hlen, plen, oper) = fields;
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&ETH_P_ARP.to_be_bytes());
    let mut arp = Vec::new();
    arp.extend_from_slice(&htype.to_be_bytes());
    arp.extend_from_slice(&ptype.to_be_bytes());
    arp.extend_from_slice(&[hlen, plen]);
    arp.extend_from_slice(&oper.to_be_bytes());
    arp.extend_from_slice(&src_mac);
    arp.extend_from_slice(&ATTACKER_IP.octets());
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&VIP1_ADDR.octets());
    arp.truncate(len);
    f.extend_from_slice(&arp);
    f
}

/// The frames of one kind (a few variants each), all from the attacker.
fn frames(kind: Kind, mac: [u8; 6]) -> Vec<Vec<u8>> {
    let vip = [VIP1_ADDR];
    match kind {
        Kind::TtlNot255 => vec![
            ip_frame(mac, 64, &v3_payload(0x31, 7, 250, 1, &vip, 0)),
            ip_frame(mac, 1, &v3_payload(0x31, 7, 250, 1, &vip, 0)),
        ],
        Kind::BadChecksum => vec![ip_frame(mac, 255, &v3_payload(0x31, 7, 250, 1, &vip, 1))],
        Kind::WrongVersion => vec![ip_frame(mac, 255, &v3_payload(0x21, 7, 250, 1, &vip, 0))],
        Kind::BogusVersion => vec![ip_frame(mac, 255, &v3_payload(0xf1, 7, 250, 1, &vip, 0))],
        Kind::WrongType => vec![ip_frame(mac, 255, &v3_payload(0x32, 7, 250, 1, &vip, 0))],
        Kind::Truncated => vec![ip_frame(mac, 255, &[0x31, 7, 250, 1])],
        Kind::CountTooLarge => vec![
            ip_frame(mac, 255, &v3_payload(0x31, 7, 250, 5, &vip, 0)),
            ip_frame(mac, 255, &v3_payload(0x31, 7, 250, 255, &vip, 0)),
        ],
        Kind::V2WrongAuth => vec![ip_frame(mac, 255, &v2_payload(8, 250, 1, b"hunter2\0"))],
        Kind::V2NoAuth => vec![ip_frame(mac, 255, &v2_payload(8, 250, 0, &[0; 8]))],
        Kind::UnknownVrid => vec![ip_frame(mac, 255, &v3_payload(0x31, 99, 250, 1, &vip, 0))],
        Kind::ArpOddOpcode => [3u16, 0, 0xffff]
            .iter()
            .map(|&op| arp_frame(mac, (1, 0x0800, 6, 4, op), 28))
            .collect(),
        Kind::ArpBadLengths => vec![
            arp_frame(mac, (1, 0x0800, 8, 4, 1), 28),
            arp_frame(mac, (1, 0x0800, 6, 16, 1), 28),
            arp_frame(mac, (6, 0x86dd, 6, 4, 1), 28),
        ],
        Kind::ArpTruncated => vec![
            arp_frame(mac, (1, 0x0800, 6, 4, 1), 20),
            arp_frame(mac, (1, 0x0800, 6, 4, 1), 7),
        ],
    }
}

/// Sends `total` frames round-robin over every kind and variant, [`BURST`] per
/// millisecond, for at most [`MAX_SEND_TIME`]; returns how many of each kind went out.
fn barrage(socket: &PacketSocket, mac: [u8; 6], total: u64) -> BTreeMap<Kind, u64> {
    let all: Vec<(Kind, Vec<u8>)> = VRRP_KINDS
        .iter()
        .chain(ARP_KINDS.iter())
        .flat_map(|&k| frames(k, mac).into_iter().map(move |f| (k, f)))
        .collect();
    let mut sent: BTreeMap<Kind, u64> = BTreeMap::new();
    let end = Instant::now() + MAX_SEND_TIME;
    let mut n = 0u64;
    'outer: while n < total && Instant::now() < end {
        for _ in 0..BURST {
            let (kind, frame) = &all[(n % all.len() as u64) as usize];
            n += 1;
            // ENOBUFS under load just means this frame did not go out.
            if socket.send(frame).is_ok() {
                *sent.entry(*kind).or_default() += 1;
            }
            if n >= total {
                break 'outer;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    sent
}

/// `pid`'s resident set, KiB.
fn rss(pid: i32) -> anyhow::Result<u64> {
    vipd_tests::proc::rss_kib(pid).with_context(|| format!("no VmRSS for pid {pid}"))
}

/// Drops counted on the VRRP raw sockets (protocol 112) of `ns` (`/proc/net/raw`).
fn vrrp_socket_drops(ns: &Netns) -> anyhow::Result<u64> {
    let table = ns.exec_ok(&["cat", "/proc/net/raw"])?;
    let mut drops = 0;
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1).is_some_and(|l| l.ends_with(":0070")) {
            drops += fields
                .last()
                .and_then(|d| d.parse::<u64>().ok())
                .with_context(|| format!("no drops column in {line:?}"))?;
        }
    }
    Ok(drops)
}

/// Every counter the assertions look at, on one router.
#[derive(Debug, Default, Clone)]
struct Snapshot {
    instance: BTreeMap<(String, String), u64>,
    daemon: BTreeMap<String, u64>,
    xdp: BTreeMap<String, u64>,
    socket_drops: u64,
}

fn snapshot(r: &Router<'_>, xdp: bool) -> anyhow::Result<Snapshot> {
    let status = r.status()?;
    let mut snap = Snapshot::default();
    for inst in status["instances"].as_array().into_iter().flatten() {
        let name = inst["name"].as_str().unwrap_or_default().to_owned();
        for (k, v) in inst["counters"].as_object().into_iter().flatten() {
            snap.instance
                .insert((name.clone(), k.clone()), v.as_u64().unwrap_or(0));
        }
    }
    for (k, v) in status["counters"].as_object().into_iter().flatten() {
        snap.daemon.insert(k.clone(), v.as_u64().unwrap_or(0));
    }
    if xdp {
        for (k, v) in r.xdp("eth0")?["counters"].as_object().into_iter().flatten() {
            snap.xdp.insert(k.clone(), v.as_u64().unwrap_or(0));
        }
    }
    snap.socket_drops = vrrp_socket_drops(r.ns())?;
    Ok(snap)
}

impl Snapshot {
    fn inst(&self, instance: &str, counter: &str) -> u64 {
        self.instance
            .get(&(instance.to_owned(), counter.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// Sum over every instance of every `rx_*` counter but `rx_accepted`, plus the daemon-wide
    /// `unconfigured_rx_*` and `rx_malformed_ip`: every discard the daemon counted.
    fn discards(&self) -> u64 {
        let inst: u64 = self
            .instance
            .iter()
            .filter(|((_, k), _)| k.starts_with("rx_") && k != "rx_accepted")
            .map(|(_, v)| v)
            .sum();
        let daemon: u64 = self
            .daemon
            .iter()
            .filter(|(k, _)| k.starts_with("unconfigured_rx_") || *k == "rx_malformed_ip")
            .map(|(_, v)| v)
            .sum();
        inst + daemon
    }

    fn transitions(&self) -> u64 {
        self.inst("VI_1", "transitions") + self.inst("VI_2", "transitions")
    }
}

fn delta(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>, key: &str) -> u64 {
    after.get(key).copied().unwrap_or(0) - before.get(key).copied().unwrap_or(0)
}

fn confs(priority: u8, xdp: &str) -> Vec<InstanceConf> {
    let xdp = format!("{xdp:?}");
    vec![
        InstanceConf::new("VI_1", 7, priority, &format!("{VIP1}/24"))
            .set("advert_int", "\"100ms\"")
            .set("xdp", &xdp),
        InstanceConf::new("VI_2", 8, priority, &format!("{VIP2}/24"))
            .set("version", "2")
            .set("advert_int", "\"1s\"")
            .set(
                "authentication",
                "{ auth_type = \"PASS\", auth_pass = \"secret1\" }",
            )
            .set("xdp", &xdp),
    ]
}

/// The whole scenario for one XDP mode; returns a one-line report.
fn hostile_barrage(tag: &str, xdp_mode: &str) -> anyhow::Result<String> {
    let xdp = xdp_mode != "off";
    let lan = Lan::new(tag, 3)?;
    add_addr(lan.member(0), "eth0", "192.0.2.1/24")?;
    add_addr(lan.member(1), "eth0", "192.0.2.2/24")?;
    add_addr(lan.member(2), "eth0", &format!("{ATTACKER_IP}/24"))?;
    // With br_netfilter loaded on the host, the bridge hands ARP to arptables, which
    // drops ARP shorter than its header before the routers see it: a dumb switch would
    // forward it, so turn that off on our own switch (when the knob exists).
    if lan
        .switch()
        .sysctl("net.bridge.bridge-nf-call-arptables", "0")
        .is_ok()
    {
        lan.switch().ip(&[
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "nf_call_arptables",
            "0",
        ])?;
    }
    let scratch = Scratch::new(tag)?;
    let mut routers = vec![
        Router::new(lan.member(0), &scratch, "r0", &confs(200, xdp_mode))?,
        Router::new(lan.member(1), &scratch, "r1", &confs(100, xdp_mode))?,
    ];
    routers[0].start()?;
    routers[1].start()?;
    for name in ["VI_1", "VI_2"] {
        routers[0].wait_state(name, "MASTER", ELECTION)?;
        routers[1].wait_state(name, "BACKUP", ELECTION)?;
    }
    let attacker = lan.member(2);
    let mac = mac_of(attacker, "eth0")?;
    // Protocol 0: this socket only sends.
    let socket = in_netns(attacker, || PacketSocket::open("eth0", 0))??;

    let pids = [
        routers[0].pid().context("r0 runs")?,
        routers[1].pid().context("r1 runs")?,
    ];
    let before = [snapshot(&routers[0], xdp)?, snapshot(&routers[1], xdp)?];
    let rss0 = [rss(pids[0])?, rss(pids[1])?];
    let total = packets();
    let started = Instant::now();
    let sent = barrage(&socket, mac, total);
    let send_time = started.elapsed();
    // Let the last frames be read and a takeover they might cause happen (> 3 × 100 ms).
    routers[0].assert_state_holds("VI_1", "MASTER", Duration::from_millis(500))?;
    for r in &routers {
        // A vipd that died cannot answer (its pid may linger as our unreaped child).
        ensure!(
            r.status().is_ok(),
            "vipd on {} stopped answering during the barrage:\n{}",
            r.name(),
            r.logs()
        );
    }
    let after = [snapshot(&routers[0], xdp)?, snapshot(&routers[1], xdp)?];
    let rss1 = [rss(pids[0])?, rss(pids[1])?];

    let report = format!(
        "xdp={xdp_mode}: sent {} frames in {send_time:.2?}; rss kB r0 {}→{} r1 {}→{}",
        sent.values().sum::<u64>(),
        rss0[0],
        rss1[0],
        rss0[1],
        rss1[1]
    );
    eprintln!("{report}");
    eprintln!("sent by kind: {sent:?}");

    // No state change anywhere.
    for (i, r) in routers.iter().enumerate() {
        ensure!(
            after[i].transitions() == before[i].transitions(),
            "{} changed state during the barrage ({} → {} transitions)\n{}",
            r.name(),
            before[i].transitions(),
            after[i].transitions(),
            r.logs()
        );
    }
    for name in ["VI_1", "VI_2"] {
        ensure!(routers[0].state(name)? == "MASTER", "r0/{name} not MASTER");
        ensure!(routers[1].state(name)? == "BACKUP", "r1/{name} not BACKUP");
    }
    ensure!(holders(&[lan.member(0), lan.member(1)], VIP1)? == vec![0]);
    ensure!(holders(&[lan.member(0), lan.member(1)], VIP2)? == vec![0]);

    // Every VRRP frame the backup received is counted under a discard reason.
    let (b0, b1) = (&before[1], &after[1]);
    let vrrp_sent: u64 = sent
        .iter()
        .filter(|(k, _)| k.is_vrrp())
        .map(|(_, v)| v)
        .sum();
    let queue_drops = delta(&b1.daemon, &b0.daemon, "rx_queue_drops");
    let socket_drops = b1.socket_drops - b0.socket_drops;
    let counted = b1.discards() - b0.discards();
    eprintln!(
        "backup: {vrrp_sent} VRRP frames sent, {counted} counted as discards, \
         {queue_drops} rx_queue_drops, {socket_drops} socket drops"
    );
    ensure!(
        counted + queue_drops + socket_drops >= vrrp_sent,
        "backup counted {counted} discards (+{queue_drops} queue, +{socket_drops} socket \
         drops) for {vrrp_sent} hostile VRRP frames"
    );
    // And under the right reason (exact when nothing was dropped before vipd read it).
    let lost = queue_drops + socket_drops;
    let mut per_kind: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for (kind, n) in &sent {
        if let Some((instance, counter)) = kind.daemon_counter() {
            let got = match instance {
                Some(i) => b1.inst(i, counter) - b0.inst(i, counter),
                None => delta(&b1.daemon, &b0.daemon, counter),
            };
            let e = per_kind.entry(counter).or_insert((0, got));
            e.0 += n;
        }
    }
    eprintln!("backup per reason (sent, counted): {per_kind:?}");
    let others: Vec<String> = b1
        .instance
        .iter()
        .filter(|((_, k), _)| {
            k.starts_with("rx_") && k != "rx_accepted" && !per_kind.contains_key(k.as_str())
        })
        .filter_map(|((i, k), v)| {
            let d = v - b0.inst(i, k);
            (d > 0).then(|| format!("{i}/{k} +{d}"))
        })
        .collect();
    eprintln!("backup, other discards meanwhile: {others:?}");
    for (counter, (n, got)) in &per_kind {
        ensure!(
            got + lost >= *n,
            "backup: {counter} grew by {got} for {n} frames (lost {lost})"
        );
    }
    if xdp {
        let mut per_xdp: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for (kind, n) in &sent {
            let counter = kind.xdp_counter();
            let got = delta(&b1.xdp, &b0.xdp, counter);
            per_xdp.entry(counter).or_insert((0, got)).0 += n;
        }
        eprintln!("backup XDP per reason (sent, counted): {per_xdp:?}");
        for (counter, (n, got)) in &per_xdp {
            // The program sees every frame before any queue; the master's own adverts
            // and our nothing-else lab add nothing to these counters.
            ensure!(
                got >= n,
                "backup XDP {counter} grew by {got} for {n} frames"
            );
        }
        for (i, r) in routers.iter().enumerate() {
            let replies = delta(&after[i].xdp, &before[i].xdp, "arp_replies");
            ensure!(
                replies == 0,
                "{} answered {replies} hostile ARP frames",
                r.name()
            );
        }
    }
    // RFC 9568 §7.1: a failed check "SHOULD log the event (subject to rate-limiting)":
    // every reason the barrage hit is logged, one line per (instance, reason) per 10 s
    // plus the summary of what was held back.
    let logs = routers[1].plain_logs();
    let periods = started.elapsed().as_secs() / 10 + 1;
    for kind in VRRP_KINDS {
        let Some((_, counter)) = kind.daemon_counter() else {
            continue;
        };
        let Some(reason) = counter.strip_prefix("rx_") else {
            // A VRID nobody runs is routine on a shared segment: counted, not logged.
            continue;
        };
        let line = format!("advert discarded: {reason}");
        let lines = logs.lines().filter(|l| l.contains(&line)).count() as u64;
        ensure!(lines >= 1, "backup never logged {line:?}\n{logs}");
        ensure!(
            lines <= 2 * periods,
            "backup logged {line:?} {lines} times in {periods} periods of 10 s"
        );
    }
    for i in 0..2 {
        let growth = rss1[i].saturating_sub(rss0[i]);
        ensure!(
            growth < MAX_RSS_GROWTH_KB,
            "{}: RSS grew by {growth} kB over the barrage",
            routers[i].name()
        );
    }
    stop_all(&mut routers)?;
    Ok(report)
}

/// The barrage against socket-only vipds.
#[test]
fn hostile_barrage_xdp_off() -> anyhow::Result<()> {
    require_root();
    let _serial = serial();
    hostile_barrage("hb_off", "off").map(drop)
}

/// The barrage with the XDP program in front (generic mode on veth).
#[test]
fn hostile_barrage_xdp_generic() -> anyhow::Result<()> {
    require_root();
    let _serial = serial();
    hostile_barrage("hb_xdp", "generic").map(drop)
}
