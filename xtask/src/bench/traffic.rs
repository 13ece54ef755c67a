//! Bounded load: frames sent from a namespace at a capped rate, for a capped count and a
//! capped time, whichever ends first; and a counter for the replies.
//!
//! Frames are built here (UDP, ARP requests, VRRPv3 adverts), sent on an AF_PACKET
//! socket opened inside the sending namespace, so nothing leaves it but the veth it is
//! bound to, and every address is from TEST-NET-1 (192.0.2.0/24) or the VRRP group.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use vipd_tests::netns::{Netns, in_netns};

const ETH_P_ALL: u16 = 0x0003;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;

/// A raw packet socket bound to one interface (all protocols).
#[derive(Debug)]
pub struct RawSocket {
    fd: OwnedFd,
}

impl RawSocket {
    /// Opens it on `ifname` in `ns`, with a large receive buffer.
    pub fn open(ns: &Netns, ifname: &str, protocol: u16) -> anyhow::Result<RawSocket> {
        let ifname = ifname.to_owned();
        in_netns(ns, move || RawSocket::open_here(&ifname, protocol))?
    }

    fn open_here(ifname: &str, protocol: u16) -> anyhow::Result<RawSocket> {
        let c_name = std::ffi::CString::new(ifname)?;
        // SAFETY: a valid NUL-terminated string.
        let ifindex = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
        if ifindex == 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("no interface {ifname}"));
        }
        // SAFETY: plain socket(2); checked below.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                i32::from(protocol.to_be()),
            )
        };
        if raw < 0 {
            return Err(std::io::Error::last_os_error()).context("socket(AF_PACKET)");
        }
        // SAFETY: a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: zeroed sockaddr_ll is valid; fields set below.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = protocol.to_be();
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: valid sockaddr_ll of the size passed.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error()).context("bind AF_PACKET");
        }
        let size: libc::c_int = 16 << 20;
        for opt in [libc::SO_RCVBUFFORCE, libc::SO_SNDBUFFORCE] {
            // SAFETY: a valid int option.
            unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    opt,
                    (&raw const size).cast(),
                    size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
        }
        let timeout = libc::timeval {
            tv_sec: 0,
            tv_usec: 50_000,
        };
        // SAFETY: a valid timeval option.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const timeout).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        Ok(RawSocket { fd })
    }

    fn send(&self, frame: &[u8]) -> bool {
        // SAFETY: valid buffer of frame.len() bytes; the socket is bound.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        n == frame.len() as isize
    }

    /// One incoming frame into `buf` (outgoing ones skipped); None on timeout.
    fn recv(&self, buf: &mut [u8]) -> Option<usize> {
        loop {
            // SAFETY: zeroed sockaddr_ll is valid.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: valid buffers and lengths.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    (&raw mut from).cast(),
                    &mut len,
                )
            };
            if n < 0 {
                return None;
            }
            if from.sll_pkttype != libc::PACKET_OUTGOING {
                return Some(n as usize);
            }
        }
    }
}

/// What to send, how fast, for how long.
#[derive(Clone, Debug)]
pub struct FloodSpec {
    /// Frames sent round robin.
    pub frames: Vec<Vec<u8>>,
    /// Rate cap, frames per second.
    pub rate_pps: u64,
    /// At most this many frames.
    pub max_frames: u64,
    /// At most this long.
    pub max_time: Duration,
}

/// What a flood did.
#[derive(Clone, Copy, Debug, Default)]
pub struct FloodReport {
    /// Frames sent.
    pub sent: u64,
    /// Sends that failed (queue full).
    pub failed: u64,
    /// From first to last send.
    pub elapsed: Duration,
}

/// A flood running on its own thread; stops by itself at its bounds, or on drop.
pub struct Flood {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<FloodReport>>,
}

impl Flood {
    /// Opens a socket on `ifname` in `ns` and starts sending.
    pub fn start(ns: &Netns, ifname: &str, spec: FloodSpec) -> anyhow::Result<Flood> {
        if spec.frames.is_empty() || spec.rate_pps == 0 {
            bail!("a flood needs frames and a rate");
        }
        let socket = RawSocket::open(ns, ifname, ETH_P_ALL)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || send_loop(&socket, &spec, &stop))
        };
        Ok(Flood {
            stop,
            thread: Some(thread),
        })
    }

    /// Waits for the flood to end at its bounds and returns what it did.
    pub fn join(mut self) -> FloodReport {
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn send_loop(socket: &RawSocket, spec: &FloodSpec, stop: &AtomicBool) -> FloodReport {
    const BATCH: u64 = 32;
    let start = Instant::now();
    let mut report = FloodReport::default();
    let mut i = 0usize;
    while report.sent + report.failed < spec.max_frames
        && start.elapsed() < spec.max_time
        && !stop.load(Ordering::Relaxed)
    {
        for _ in 0..BATCH {
            if socket.send(&spec.frames[i % spec.frames.len()]) {
                report.sent += 1;
            } else {
                report.failed += 1;
            }
            i += 1;
        }
        // Pace: never ahead of rate_pps.
        let due =
            Duration::from_secs_f64((report.sent + report.failed) as f64 / spec.rate_pps as f64);
        let elapsed = start.elapsed();
        if due > elapsed {
            std::thread::sleep(due - elapsed);
        }
    }
    report.elapsed = start.elapsed();
    report
}

/// Counts ARP replies from `from_ip` arriving in a namespace, until stopped (or a hard
/// time bound), noting the first and last arrival.
pub struct ReplyCounter {
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
    thread: Option<JoinHandle<Option<(Instant, Instant)>>>,
}

impl ReplyCounter {
    /// Starts counting ARP replies from `from_ip` on `ifname` in `ns`.
    pub fn start(
        ns: &Netns,
        ifname: &str,
        from_ip: Ipv4Addr,
        limit: Duration,
    ) -> anyhow::Result<ReplyCounter> {
        let octets = from_ip.octets();
        ReplyCounter::start_matching(ns, ifname, ETH_P_ARP, limit, move |frame| {
            frame.len() >= 42
                && frame[12..14] == ETH_P_ARP.to_be_bytes()
                && frame[20..22] == 2u16.to_be_bytes()
                && frame[28..32] == octets
        })
    }

    /// Starts counting neighbour advertisements (RFC 4861 §4.4) for `target` on
    /// `ifname` in `ns` (fixed IPv6 header, then ICMPv6 type 136).
    pub fn start_ndp(
        ns: &Netns,
        ifname: &str,
        target: Ipv6Addr,
        limit: Duration,
    ) -> anyhow::Result<ReplyCounter> {
        let octets = target.octets();
        ReplyCounter::start_matching(ns, ifname, ETH_P_IPV6, limit, move |frame| {
            frame.len() >= 78
                && frame[12..14] == ETH_P_IPV6.to_be_bytes()
                && frame[20] == 58
                && frame[54] == 136
                && frame[62..78] == octets
        })
    }

    /// Starts counting frames of `ethertype` on `ifname` in `ns` for which `matches`
    /// holds.
    fn start_matching(
        ns: &Netns,
        ifname: &str,
        ethertype: u16,
        limit: Duration,
        matches: impl Fn(&[u8]) -> bool + Send + 'static,
    ) -> anyhow::Result<ReplyCounter> {
        let socket = RawSocket::open(ns, ifname, ethertype)?;
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, count) = (stop.clone(), count.clone());
            std::thread::spawn(move || {
                let start = Instant::now();
                let mut buf = [0u8; 2048];
                let mut span: Option<(Instant, Instant)> = None;
                while !stop.load(Ordering::Relaxed) && start.elapsed() < limit {
                    let Some(n) = socket.recv(&mut buf) else {
                        continue;
                    };
                    if matches(&buf[..n]) {
                        let now = Instant::now();
                        span = Some((span.map_or(now, |s| s.0), now));
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
                span
            })
        };
        Ok(ReplyCounter {
            stop,
            count,
            thread: Some(thread),
        })
    }

    /// Replies so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Stops; the count and the first..last arrival.
    pub fn finish(mut self) -> (u64, Option<(Instant, Instant)>) {
        self.stop.store(true, Ordering::Relaxed);
        let span = self.thread.take().and_then(|t| t.join().ok()).flatten();
        (self.count(), span)
    }
}

impl Drop for ReplyCounter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A broadcast ARP request "who has `target`, tell `ip`".
pub fn arp_request(mac: [u8; 6], ip: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ETH_P_ARP.to_be_bytes());
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ip.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target.octets());
    f.resize(60, 0);
    f
}

/// An IPv4 frame around `payload` (header checksum filled in).
fn ipv4_frame(
    eth_dst: [u8; 6],
    eth_src: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    ttl: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(34 + payload.len());
    f.extend_from_slice(&eth_dst);
    f.extend_from_slice(&eth_src);
    f.extend_from_slice(&ETH_P_IP.to_be_bytes());
    let total = (20 + payload.len()) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[8] = ttl;
    ip[9] = protocol;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let sum = checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(payload);
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

/// A UDP datagram (checksum 0: none) to port 9 (discard).
pub fn udp_frame(
    eth_dst: [u8; 6],
    eth_src: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    payload_len: usize,
) -> Vec<u8> {
    let mut udp = vec![0u8; 8 + payload_len];
    udp[0..2].copy_from_slice(&40000u16.to_be_bytes());
    udp[2..4].copy_from_slice(&9u16.to_be_bytes());
    let len = udp.len() as u16;
    udp[4..6].copy_from_slice(&len.to_be_bytes());
    ipv4_frame(eth_dst, eth_src, src, dst, 17, 64, &udp)
}

/// A valid VRRPv3 advert (RFC 5798 §5) for `vrid` to 224.0.0.18, TTL 255.
pub fn vrrp_advert(
    eth_src: [u8; 6],
    src: Ipv4Addr,
    vrid: u8,
    priority: u8,
    vip: Ipv4Addr,
) -> Vec<u8> {
    let group = Ipv4Addr::new(224, 0, 0, 18);
    let mut vrrp = vec![0u8; 12];
    vrrp[0] = 0x31; // version 3, type 1 (advertisement)
    vrrp[1] = vrid;
    vrrp[2] = priority;
    vrrp[3] = 1; // one address
    vrrp[4..6].copy_from_slice(&100u16.to_be_bytes()); // max advert interval: 1 s (cs)
    vrrp[8..12].copy_from_slice(&vip.octets());
    // RFC 5798 §5.2.8: checksum over the IPv4 pseudo-header and the message.
    let mut pseudo = Vec::with_capacity(12 + vrrp.len());
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&group.octets());
    pseudo.extend_from_slice(&[0, 112]);
    pseudo.extend_from_slice(&(vrrp.len() as u16).to_be_bytes());
    pseudo.extend_from_slice(&vrrp);
    let sum = checksum(&pseudo);
    vrrp[6..8].copy_from_slice(&sum.to_be_bytes());
    let mac = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12];
    ipv4_frame(mac, eth_src, src, group, 112, 255, &vrrp)
}

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum = 0u32;
    for chunk in bytes.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], chunk.get(1).copied().unwrap_or(0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Busy-loop processes pinned to each CPU, started in `ns` and bounded by `timeout(1)`.
pub struct CpuHogs {
    procs: Vec<vipd_tests::Proc>,
}

impl CpuHogs {
    /// One `taskset -c CPU timeout SECS sh -c 'while :; do :; done'` per (ns, cpu).
    pub fn start(placements: &[(&Netns, usize)], secs: u64) -> anyhow::Result<CpuHogs> {
        let mut procs = Vec::new();
        let secs = secs.to_string();
        for (ns, cpu) in placements {
            let cpu = cpu.to_string();
            procs.push(ns.spawn(&[
                "taskset",
                "-c",
                &cpu,
                "timeout",
                &secs,
                "sh",
                "-c",
                "while :; do :; done",
            ])?);
        }
        Ok(CpuHogs { procs })
    }

    /// Stops them now (dropping does too).
    pub fn stop(self) {
        drop(self.procs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_well_formed() {
        let mac = [2, 0, 0, 0, 0, 1];
        let ip = Ipv4Addr::new(192, 0, 2, 10);
        let arp = arp_request(mac, ip, Ipv4Addr::new(192, 0, 2, 100));
        assert_eq!(arp.len(), 60);
        assert_eq!(&arp[38..42], &[192, 0, 2, 100]);
        let advert = vrrp_advert(mac, ip, 99, 100, Ipv4Addr::new(192, 0, 2, 199));
        // IPv4 header checksum verifies (sums to 0xffff, i.e. checksum() == 0).
        assert_eq!(checksum(&advert[14..34]), 0);
        assert_eq!(advert[14 + 8], 255, "TTL");
        assert_eq!(advert[14 + 9], 112, "protocol");
        let udp = udp_frame(mac, mac, ip, Ipv4Addr::new(192, 0, 2, 1), 18);
        assert_eq!(checksum(&udp[14..34]), 0);
    }
}
