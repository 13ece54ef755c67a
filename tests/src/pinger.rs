//! A client that pings an address (IPv4 or IPv6) every millisecond or so and records when replies came
//! back, to measure the outage a client sees during a failover.
//!
//! Open the socket inside the client's namespace with [`crate::in_netns`]; it keeps that
//! namespace, so [`Pinger::run`] can then go on any thread.

use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const ICMP_ECHO_REQUEST: u8 = 8;
const ICMP_ECHO_REPLY: u8 = 0;
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;

/// A raw ICMP (or ICMPv6) socket aimed at one address.
#[derive(Debug)]
pub struct Pinger {
    socket: libc::c_int,
    target: IpAddr,
    ident: u16,
}

impl Drop for Pinger {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.socket) };
    }
}

/// What a ping run saw.
#[derive(Clone, Debug, Default)]
pub struct PingLog {
    /// When the run started.
    pub start: Option<Instant>,
    /// Echo requests sent.
    pub sent: u64,
    /// Arrival time of each reply (duplicates dropped), in order.
    pub replies: Vec<Instant>,
    /// Each request: when it was sent and whether a reply to it came back.
    pub requests: Vec<(Instant, bool)>,
}

impl PingLog {
    /// One log of several pingers' runs at the same target (each with its own ident):
    /// what one client sending all their requests saw.
    pub fn merged(logs: Vec<PingLog>) -> PingLog {
        let mut all = PingLog::default();
        for log in logs {
            all.start = match (all.start, log.start) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            all.sent += log.sent;
            all.replies.extend(log.replies);
            all.requests.extend(log.requests);
        }
        all.replies.sort_unstable();
        all.requests.sort_by_key(|(at, _)| *at);
        all
    }

    /// The outage around `event`: from the last reply at or before it to the first reply
    /// after it. `None` if there was no reply on one side.
    pub fn outage_around(&self, event: Instant) -> Option<Duration> {
        let before = self.replies.iter().rev().find(|t| **t <= event)?;
        let after = self.replies.iter().find(|t| **t > event)?;
        Some(after.duration_since(*before))
    }

    /// The outage of an event that starts at `event` and whose effects are over by
    /// `settled`: the longest gap between consecutive replies from the last reply at or
    /// before `event` to the first reply at or after `settled`. `None` when there is no
    /// reply on one side (the client never recovered, or never had service).
    pub fn outage_between(&self, event: Instant, settled: Instant) -> Option<Duration> {
        self.gap_between(event, settled).map(|(_, gap)| gap)
    }

    /// [`PingLog::outage_between`], with where that longest gap began (the reply before
    /// it): what overlapped the outage is what overlapped that gap, not the time after
    /// the event.
    pub fn gap_between(&self, event: Instant, settled: Instant) -> Option<(Instant, Duration)> {
        let first = self.replies.iter().rposition(|t| *t <= event)?;
        let last = self.replies.iter().position(|t| *t >= settled)?;
        self.replies
            .get(first..=last)?
            .windows(2)
            .map(|w| (w[0], w[1].duration_since(w[0])))
            .max_by_key(|(_, gap)| *gap)
    }

    /// When the requests sent in `[from, to]` that never got a reply were sent: what a
    /// client lost, whatever the pinger's own pace (a reply gap also counts a pinger
    /// that was not scheduled).
    pub fn unanswered_between(&self, from: Instant, to: Instant) -> Vec<Instant> {
        self.requests
            .iter()
            .filter(|(at, answered)| !answered && *at >= from && *at <= to)
            .map(|(at, _)| *at)
            .collect()
    }

    /// The requests lost around an event that starts at `event` and is over by
    /// `settled`: how many requests sent in between got no reply, and the longest loss
    /// span (from the last answered request before a run of unanswered ones to the
    /// first answered after it, by send time; zero when none was lost).
    ///
    /// Unlike the gap between replies, this does not count a client that did not send:
    /// on a shared machine the pinger itself can wait for a CPU for milliseconds, and
    /// the reply gap then grows with no request lost.
    pub fn loss_between(&self, event: Instant, settled: Instant) -> (usize, Duration) {
        // From the last answered request sent at or before the event to the first one
        // sent at or after `settled` (later requests may still have been in flight).
        let first = self
            .requests
            .iter()
            .rposition(|(at, answered)| *answered && *at <= event)
            .unwrap_or(0);
        let last = self
            .requests
            .iter()
            .position(|(at, answered)| *answered && *at >= settled)
            .map_or(self.requests.len(), |i| i + 1);
        let mut lost = 0;
        let mut span = Duration::ZERO;
        let mut last_answered: Option<Instant> = None;
        let mut in_run = false;
        for (at, answered) in self.requests.get(first..last).unwrap_or_default() {
            if *answered {
                if let (true, Some(before)) = (in_run, last_answered) {
                    span = span.max(at.duration_since(before));
                }
                in_run = false;
                last_answered = Some(*at);
            } else {
                lost += 1;
                in_run = true;
            }
        }
        (lost, span)
    }

    /// How many replies arrived after `t`.
    pub fn replies_after(&self, t: Instant) -> usize {
        self.replies.iter().filter(|r| **r > t).count()
    }

    /// The longest gap between consecutive replies.
    pub fn longest_gap(&self) -> Duration {
        self.replies
            .windows(2)
            .map(|w| w[1].duration_since(w[0]))
            .max()
            .unwrap_or_default()
    }
}

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum = 0u32;
    for chunk in bytes.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

impl Pinger {
    /// Opens a raw ICMP socket, or ICMPv6 for an IPv6 target (call inside the client's
    /// namespace).
    pub fn open(target: impl Into<IpAddr>) -> io::Result<Self> {
        let target = target.into();
        let (domain, protocol) = match target {
            IpAddr::V4(_) => (libc::AF_INET, libc::IPPROTO_ICMP),
            IpAddr::V6(_) => (libc::AF_INET6, libc::IPPROTO_ICMPV6),
        };
        // SAFETY: plain socket(2).
        let socket = unsafe {
            libc::socket(
                domain,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                protocol,
            )
        };
        if socket < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            socket,
            target,
            ident: (std::process::id() & 0xffff) as u16,
        })
    }

    /// [`Pinger::open`] with its own ICMP identifier, so several pingers in one process
    /// each see their own replies (every raw ICMP socket gets a copy of each).
    pub fn open_with_ident(target: impl Into<IpAddr>, ident: u16) -> io::Result<Self> {
        // Not `..Self::open(target)?`: that copies the descriptor out of a temporary
        // whose Drop then closes it.
        let mut pinger = Self::open(target)?;
        pinger.ident = ident;
        Ok(pinger)
    }

    fn send(&self, seq: u16) -> io::Result<()> {
        let mut packet = [0u8; 16];
        packet[4..6].copy_from_slice(&self.ident.to_be_bytes());
        packet[6..8].copy_from_slice(&seq.to_be_bytes());
        match self.target {
            IpAddr::V4(_) => {
                packet[0] = ICMP_ECHO_REQUEST;
                let sum = checksum(&packet);
                packet[2..4].copy_from_slice(&sum.to_be_bytes());
            }
            // The kernel fills in the ICMPv6 checksum (pseudo-header and all).
            IpAddr::V6(_) => packet[0] = ICMPV6_ECHO_REQUEST,
        }
        let (addr, addr_len) = socket_addr(self.target);
        // SAFETY: valid buffer, and a sockaddr of the length given.
        let n = unsafe {
            libc::sendto(
                self.socket,
                packet.as_ptr().cast(),
                packet.len(),
                0,
                (&addr as *const libc::sockaddr_storage).cast(),
                addr_len,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Drains pending replies; returns the sequence numbers of echo replies for us.
    fn drain(&self, seqs: &mut Vec<u16>) {
        let mut buf = [MaybeUninit::<u8>::uninit(); 1500];
        loop {
            // SAFETY: all-zero is a valid sockaddr_in6.
            let mut from: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            let mut from_len = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            // SAFETY: valid buffer and address buffer of the length given.
            let n = unsafe {
                libc::recvfrom(
                    self.socket,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    (&mut from as *mut libc::sockaddr_in6).cast(),
                    &mut from_len,
                )
            };
            if n <= 0 {
                return;
            }
            // SAFETY: recv initialised the first n bytes.
            let bytes: &[u8] =
                unsafe { std::slice::from_raw_parts(buf.as_ptr().cast(), n as usize) };
            if let IpAddr::V6(target) = self.target {
                // Raw ICMPv6 sockets deliver no IP header; the source is the address.
                if Ipv6Addr::from(from.sin6_addr.s6_addr) == target
                    && bytes.len() >= 8
                    && bytes[0] == ICMPV6_ECHO_REPLY
                    && u16::from_be_bytes([bytes[4], bytes[5]]) == self.ident
                {
                    seqs.push(u16::from_be_bytes([bytes[6], bytes[7]]));
                }
                continue;
            }
            let Some(ihl) = bytes.first().map(|b| usize::from(b & 0x0f) * 4) else {
                continue;
            };
            let Some(icmp) = bytes.get(ihl..ihl + 8) else {
                continue;
            };
            let src = Ipv4Addr::new(bytes[12], bytes[13], bytes[14], bytes[15]);
            if icmp[0] == ICMP_ECHO_REPLY
                && IpAddr::V4(src) == self.target
                && u16::from_be_bytes([icmp[4], icmp[5]]) == self.ident
            {
                seqs.push(u16::from_be_bytes([icmp[6], icmp[7]]));
            }
        }
    }

    /// Pings every `interval` until `stop` is set or `limit` has passed (a hard bound),
    /// recording reply arrival times.
    pub fn run(&self, interval: Duration, limit: Duration, stop: &Arc<AtomicBool>) -> PingLog {
        self.run_counting(interval, limit, stop, &AtomicU64::new(0))
    }

    /// [`Pinger::run`], also counting replies in `replies` as they arrive, so another
    /// thread can wait for the client to be reached.
    pub fn run_counting(
        &self,
        interval: Duration,
        limit: Duration,
        stop: &Arc<AtomicBool>,
        replies: &AtomicU64,
    ) -> PingLog {
        self.run_from(Instant::now(), interval, limit, stop, replies)
    }

    /// [`Pinger::run_counting`], sending first at `start` and then every `interval`:
    /// pingers sharing `start` send at the same instants.
    pub fn run_from(
        &self,
        start: Instant,
        interval: Duration,
        limit: Duration,
        stop: &Arc<AtomicBool>,
        replies: &AtomicU64,
    ) -> PingLog {
        let mut log = PingLog {
            start: Some(start),
            ..PingLog::default()
        };
        let mut seen = std::collections::HashSet::new();
        // Index into `log.requests` of each sequence number's request.
        let mut request_of = std::collections::HashMap::new();
        let mut seqs = Vec::new();
        let mut next_send = start;
        let mut seq: u16 = 0;
        let mut receive =
            |pinger: &Pinger,
             log: &mut PingLog,
             request_of: &std::collections::HashMap<u16, usize>| {
                seqs.clear();
                pinger.drain(&mut seqs);
                let arrived = Instant::now();
                for s in &seqs {
                    if seen.insert(*s) {
                        log.replies.push(arrived);
                        replies.fetch_add(1, Ordering::Relaxed);
                        if let Some((_, answered)) =
                            request_of.get(s).and_then(|&i| log.requests.get_mut(i))
                        {
                            *answered = true;
                        }
                    }
                }
            };
        while !stop.load(Ordering::Relaxed) && start.elapsed() < limit {
            // Empty the socket before sending: it gets a copy of every ICMP packet in
            // the namespace (the other pingers' replies too), so after this thread was
            // held off its CPU for a while the queue is full, and the reply to the
            // request sent next would be dropped there and count as lost.
            receive(self, &mut log, &request_of);
            let now = Instant::now();
            if now >= next_send {
                if self.send(seq).is_ok() {
                    log.sent += 1;
                    request_of.insert(seq, log.requests.len());
                    log.requests.push((now, false));
                }
                seq = seq.wrapping_add(1);
                next_send += interval;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        // Replies to the last requests.
        std::thread::sleep(Duration::from_millis(1));
        receive(self, &mut log, &request_of);
        log
    }
}

/// A [`Pinger`] running on its own thread from a client namespace until
/// [`PingRun::finish`] (or drop) stops it; or, from [`PingRun::start_realtime`], one
/// pinger per CPU, all sending at the same instants.
#[derive(Debug)]
pub struct PingRun {
    stop: Arc<AtomicBool>,
    replies: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<PingLog>>,
}

/// How the pinger threads of a [`PingRun`] are scheduled.
#[derive(Clone, Copy, Debug)]
enum Sched {
    /// One thread, ordinary priority.
    Ordinary,
    /// One thread per allowed CPU, pinned there, at SCHED_FIFO 1.
    RealtimePerCpu,
}

impl PingRun {
    /// Opens the ICMP socket in `client` and pings `target` every `interval`, for at
    /// most `limit` (a hard bound in case the test forgets to stop it).
    pub fn start(
        client: &crate::Netns,
        target: impl Into<IpAddr>,
        interval: Duration,
        limit: Duration,
    ) -> anyhow::Result<PingRun> {
        Self::start_with(client, target, interval, limit, Sched::Ordinary)
    }

    /// [`PingRun::start`] as a client with a CPU of its own: one pinger per CPU, each
    /// pinned to its CPU at SCHED_FIFO 1 (above every ordinary process, below vipd's own
    /// real-time threads, SCHED_RR 10 by default), each sending a request every
    /// `interval` at the same instants as the others: one client at the same 1 ms
    /// resolution, sent from every CPU, so the merged log's reply gap is what the
    /// best-placed of them saw.
    ///
    /// In a lab on two CPUs, an ordinary pinger waits behind whatever else is runnable
    /// (tcpdump, two daemons' notify scripts): the bench saw 3–5 ms gaps with the client
    /// sending a single request in them, while the router answered every request it got.
    /// Real-time priority 1 takes away that wait. A single pinger still stops sending
    /// when the hypervisor takes its vCPU away, or while interrupt work holds that CPU
    /// (3.2 ms once, with 1 s adverts, in the old master's Skew_Time wait when nothing
    /// changes hands); so did pingers taking turns (2.2 ms once, one request in the gap,
    /// answered). With every pinger sending every `interval`, its twin on the other CPU
    /// keeps the requests going at full rate. A router that keeps every CPU busy at
    /// real-time priority still delays them all, and that delay still counts. Each
    /// request is counted: a lost interval loses one request per pinger.
    pub fn start_realtime(
        client: &crate::Netns,
        target: impl Into<IpAddr>,
        interval: Duration,
        limit: Duration,
    ) -> anyhow::Result<PingRun> {
        Self::start_with(client, target, interval, limit, Sched::RealtimePerCpu)
    }

    fn start_with(
        client: &crate::Netns,
        target: impl Into<IpAddr>,
        interval: Duration,
        limit: Duration,
        sched: Sched,
    ) -> anyhow::Result<PingRun> {
        let target = target.into();
        let cpus: Vec<Option<usize>> = match sched {
            Sched::Ordinary => vec![None],
            Sched::RealtimePerCpu => crate::stall::allowed_cpus()?
                .into_iter()
                .map(Some)
                .collect(),
        };
        let turns = u32::try_from(cpus.len().max(1)).unwrap_or(1);
        let base = (std::process::id() & 0xffff) as u16;
        let mut pingers = Vec::new();
        for i in 0..turns {
            let ident = base.wrapping_add(i as u16);
            pingers.push(crate::in_netns(client, || {
                Pinger::open_with_ident(target, ident)
            })??);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let replies = Arc::new(AtomicU64::new(0));
        let mut run = PingRun {
            stop: stop.clone(),
            replies: replies.clone(),
            threads: Vec::new(),
        };
        let start = Instant::now();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        for (turn, (pinger, cpu)) in pingers.into_iter().zip(cpus).enumerate() {
            let stop = stop.clone();
            let replies = replies.clone();
            let ready = ready_tx.clone();
            let thread = std::thread::Builder::new()
                .name(format!("pinger-{turn}"))
                .spawn(move || {
                    let set = match cpu {
                        None => Ok(()),
                        Some(cpu) => crate::stall::pin(cpu)
                            .map_err(|e| format!("pinning the pinger to cpu{cpu}: {e}"))
                            .and_then(|()| {
                                crate::stall::fifo(1)
                                    .map_err(|e| format!("making the pinger SCHED_FIFO: {e}"))
                            }),
                    };
                    let failed = set.is_err();
                    let _ = ready.send(set);
                    if failed {
                        return PingLog::default();
                    }
                    pinger.run_from(start, interval, limit, &stop, &replies)
                })?;
            // Pushed at once: a failure below stops and joins it (Drop).
            run.threads.push(thread);
        }
        drop(ready_tx);
        for _ in 0..turns {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => anyhow::bail!("{e}"),
                Err(_) => anyhow::bail!("a pinger thread exited before it started"),
            }
        }
        Ok(run)
    }

    /// Replies received so far.
    pub fn replies(&self) -> u64 {
        self.replies.load(Ordering::Relaxed)
    }

    /// Waits up to `timeout` until `more` replies have arrived beyond those counted so
    /// far; `when` says in the error at which point of the test they were awaited.
    pub fn wait_for_more(&self, more: u64, timeout: Duration, when: &str) -> anyhow::Result<()> {
        let target = self.replies() + more;
        crate::poll_until(
            &format!("{more} more ping replies {when}"),
            timeout,
            Duration::from_millis(5),
            || {
                let got = self.replies();
                if got >= target { Ok(()) } else { Err(got) }
            },
        )
    }

    /// Stops pinging and returns what was seen (every pinger's requests and replies in
    /// one log).
    pub fn finish(mut self) -> anyhow::Result<PingLog> {
        self.stop.store(true, Ordering::Relaxed);
        let threads = std::mem::take(&mut self.threads);
        if threads.is_empty() {
            anyhow::bail!("finished twice");
        }
        let logs = threads
            .into_iter()
            .map(|t| {
                t.join()
                    .map_err(|_| anyhow::anyhow!("a pinger thread panicked"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(PingLog::merged(logs))
    }
}

impl Drop for PingRun {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// `ip` as a `sockaddr_in` or `sockaddr_in6` (port 0), and its length.
fn socket_addr(ip: IpAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage, sockaddr_in and sockaddr_in6.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match ip {
        IpAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is large and aligned enough for a sockaddr_in.
            let addr = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in) };
            addr.sin_family = libc::AF_INET as u16;
            addr.sin_addr.s_addr = u32::from_ne_bytes(v4.octets());
            std::mem::size_of::<libc::sockaddr_in>()
        }
        IpAddr::V6(v6) => {
            // SAFETY: sockaddr_storage is large and aligned enough for a sockaddr_in6.
            let addr = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6) };
            addr.sin6_family = libc::AF_INET6 as u16;
            addr.sin6_addr.s6_addr = v6.octets();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icmp_checksum_of_known_packet() {
        // Echo request id 1 seq 1, no payload: checksum 0xf7fd.
        let packet = [8, 0, 0, 0, 0, 1, 0, 1];
        assert_eq!(checksum(&packet), 0xf7fd);
    }

    /// A pinger held off its CPU while another one kept going finds its socket full of
    /// the other's traffic (a raw ICMP socket gets a copy of every ICMP packet); the
    /// reply to the first request it sends afterwards must still count.
    #[test]
    fn a_pinger_whose_socket_filled_while_it_waited_counts_its_next_reply() {
        crate::require_root();
        let ns = crate::Netns::new("pinger_backlog").expect("a namespace");
        ns.ip(&["link", "set", "lo", "up"]).expect("lo up");
        let log = crate::in_netns(&ns, || {
            let target = Ipv4Addr::LOCALHOST;
            let waited = Pinger::open_with_ident(target, 0x7001).expect("raw socket");
            let other = Pinger::open_with_ident(target, 0x7002).expect("raw socket");
            // Far more than a default receive buffer holds: every request and reply
            // of the other pinger lands in `waited`'s queue too.
            for seq in 0..4000u16 {
                let _ = other.send(seq);
            }
            let stop = Arc::new(AtomicBool::new(false));
            waited.run(Duration::from_millis(1), Duration::from_millis(5), &stop)
        })
        .expect("ran in the namespace");
        assert!(log.sent >= 1, "{log:?}");
        let lost: Vec<_> = log
            .requests
            .iter()
            .filter(|(_, answered)| !answered)
            .collect();
        assert!(lost.is_empty(), "unanswered: {lost:?} of {}", log.sent);
    }

    #[test]
    fn merged_logs_interleave_two_pingers_by_time() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // Pinger 0 sends at 0, 2, 4; pinger 1 at 1, 3 and its vCPU stalls until 9.
        let zero = PingLog {
            start: Some(t0),
            sent: 3,
            replies: vec![t0 + ms(0), t0 + ms(2), t0 + ms(4)],
            requests: vec![(t0, true), (t0 + ms(2), true), (t0 + ms(4), true)],
        };
        let one = PingLog {
            start: Some(t0 + ms(1)),
            sent: 3,
            replies: vec![t0 + ms(1), t0 + ms(3), t0 + ms(9)],
            requests: vec![(t0 + ms(1), true), (t0 + ms(3), true), (t0 + ms(9), false)],
        };
        assert_eq!(one.longest_gap(), ms(6));
        let both = PingLog::merged(vec![zero, one]);
        assert_eq!(both.start, Some(t0));
        assert_eq!(both.sent, 6);
        assert_eq!(both.replies.len(), 6);
        assert!(both.replies.windows(2).all(|w| w[0] <= w[1]));
        assert!(both.requests.windows(2).all(|w| w[0].0 <= w[1].0));
        // The other pinger's replies fill the stalled one's gap, but not past its end.
        assert_eq!(both.longest_gap(), ms(5));
        assert_eq!(both.unanswered_between(t0, t0 + ms(10)), vec![t0 + ms(9)]);
    }

    #[test]
    fn outage_is_measured_across_the_event() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let log = PingLog {
            start: Some(t0),
            sent: 5,
            replies: vec![t0 + ms(1), t0 + ms(2), t0 + ms(40), t0 + ms(41)],
            requests: vec![
                (t0, true),
                (t0 + ms(1), true),
                (t0 + ms(10), false),
                (t0 + ms(20), false),
                (t0 + ms(39), true),
            ],
        };
        assert_eq!(
            log.unanswered_between(t0 + ms(5), t0 + ms(50)),
            vec![t0 + ms(10), t0 + ms(20)]
        );
        assert!(log.unanswered_between(t0 + ms(21), t0 + ms(50)).is_empty());
        // Requests at 10 and 20 lost, between answered ones sent at 1 and 39.
        assert_eq!(log.loss_between(t0 + ms(5), t0 + ms(39)), (2, ms(38)));
        assert_eq!(log.loss_between(t0 + ms(39), t0 + ms(41)), (0, ms(0)));
        assert_eq!(log.outage_around(t0 + ms(10)), Some(ms(38)));
        assert_eq!(log.longest_gap(), ms(38));
        assert_eq!(log.outage_around(t0 + ms(50)), None);
        assert_eq!(log.outage_between(t0 + ms(1), t0 + ms(30)), Some(ms(38)));
        assert_eq!(
            log.gap_between(t0 + ms(1), t0 + ms(30)),
            Some((t0 + ms(2), ms(38))),
            "the gap starts at the reply before it"
        );
        assert_eq!(log.outage_between(t0 + ms(40), t0 + ms(41)), Some(ms(1)));
        assert_eq!(log.outage_between(t0, t0 + ms(41)), None, "no reply before");
        assert_eq!(
            log.outage_between(t0 + ms(2), t0 + ms(45)),
            None,
            "never recovered"
        );
    }
}
