//! The health checkers (keepalived's checker process, in tokio) and the [`Supervisor`]
//! that runs them on the schedule [`crate::proto::lb::health`] gives, performs its
//! actions (logs, notify commands) and publishes a [`HealthSnapshot`] on every change.
//!
//! - TCP_CHECK: a TCP connect (from `bindto`) within `connect_timeout`.
//! - HTTP_GET / SSL_GET: per `url`, a fresh connection, `GET path` with `Host:` (the
//!   url's, the checker's or the virtual server's `virtualhost`, else the address), the
//!   status against `status_code` (any 2xx when none is given) and the body's MD5
//!   against `digest`; connect, TLS handshake and response together within
//!   `connect_timeout`. SSL_GET accepts any certificate, as keepalived does (the check is
//!   of the service, not of its PKI), but still checks the handshake's signatures.
//! - MISC_CHECK: the command, killed after `misc_timeout`; exit status per
//!   [`misc_exit_status`].
//! - UDP_CHECK: the payload datagram; an ICMP port unreachable fails it, a required
//!   reply must have the allowed length and match.
//! - PING_CHECK: an ICMP / ICMPv6 echo answered.
//! - DNS_CHECK: a query answered with its ID and RCODE 0.
//! - SMTP_CHECK: greeting 220, HELO 250, QUIT.
//! - FILE_CHECK: a track file's value, re-read every `delay_loop` (default 1 s).
//! - BFD_CHECK: the named BFD session is Up. The daemon's BFD side publishes the
//!   sessions' states ([`BfdStates`]); each change re-checks every BFD_CHECK at once, so
//!   a real server leaves the pool within the session's detection time. Until a session
//!   has first come Up, its checks keep their initial state (passing; failing with
//!   `alpha`), as keepalived's, which only hears of changes. A reload that recreates the
//!   sessions does not reset that: a server whose session was down stays out until the
//!   new session comes Up.
//!
//! Sockets are opened in the caller's network namespace (the thread that built the
//! runtime), which is what the tests rely on.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use md5::{Digest as _, Md5};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{HealthSnapshot, RealServerState};
use crate::config::Command;
use crate::config::lb::{
    CheckKind, Checker, DnsCheck, FileCheck, HttpCheck, RealServer, SmtpCheck, UdpCheck, UrlCheck,
    VirtualServer,
};
use crate::notify::{NOTIFY_NICENESS, NOTIFY_TIMEOUT};
use crate::proto::lb::health::{CheckId, CheckResult, Health, LbAction, misc_exit_status};
use crate::track::{RunOutcome, run_once, run_once_niced};

/// Largest response body read for a `digest` (keepalived reads it all; a health page is
/// small, and a runaway one must not eat the daemon's memory).
const MAX_BODY: usize = 8 << 20;

/// The BFD sessions' states as the daemon's BFD side publishes them, by name: Up (true)
/// or no longer Up (false); a session whose state was never reported is absent. A
/// reload that recreates the sessions keeps the last state of each name that remains.
pub type BfdStates = watch::Receiver<BTreeMap<String, bool>>;

/// What the supervisor's task is asked to do.
enum Control {
    Reload(Vec<VirtualServer>),
    Shutdown(oneshot::Sender<()>),
}

/// Runs every real server's checks and publishes their health.
///
/// Dropping it without [`Supervisor::shutdown`] stops the checks without omega's
/// commands.
#[derive(Debug)]
pub struct Supervisor {
    control: mpsc::UnboundedSender<Control>,
    task: tokio::task::JoinHandle<()>,
}

impl Supervisor {
    /// Starts checking `services` (on the current tokio runtime), without BFD sessions
    /// (a BFD_CHECK keeps its initial state: no session ever reports). The receiver
    /// holds the current snapshot at once and sees every change.
    pub fn start(services: Vec<VirtualServer>) -> (Supervisor, watch::Receiver<HealthSnapshot>) {
        Self::start_with_bfd(services, watch::channel(BTreeMap::new()).1)
    }

    /// [`Supervisor::start`], with BFD_CHECKs following `bfd`.
    pub fn start_with_bfd(
        services: Vec<VirtualServer>,
        bfd: BfdStates,
    ) -> (Supervisor, watch::Receiver<HealthSnapshot>) {
        let health = Health::new(services, Instant::now().into_std(), &mut random_warmup);
        let (snapshots, receiver) = watch::channel(health.snapshot());
        let (control, requests) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(health, snapshots, requests, bfd));
        (Supervisor { control, task }, receiver)
    }

    /// A new configuration: unchanged real servers keep their state
    /// ([`Health::reload`]).
    pub fn reload(&self, services: Vec<VirtualServer>) {
        // The task only ends through `shutdown`, which consumes `self`.
        let _ = self.control.send(Control::Reload(services));
    }

    /// Stops checking, runs omega's notify_down / quorum_down commands and waits for
    /// them (each at most `NOTIFY_TIMEOUT`).
    pub async fn shutdown(mut self) {
        let (done, wait) = oneshot::channel();
        if self.control.send(Control::Shutdown(done)).is_ok() {
            let _ = wait.await;
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn random_warmup(max: Duration) -> Duration {
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(fastrand::u64(0..=nanos))
}

/// The supervisor's task: one loop over check results, the next deadline and control
/// requests, like the VRRP driver.
async fn run(
    mut health: Health,
    snapshots: watch::Sender<HealthSnapshot>,
    mut requests: mpsc::UnboundedReceiver<Control>,
    mut bfd: BfdStates,
) {
    let mut checks: JoinSet<(CheckId, CheckResult)> = JoinSet::new();
    let mut commands: JoinSet<()> = JoinSet::new();
    let mut bfd_open = true;
    loop {
        let now = Instant::now().into_std();
        let mut actions = Vec::new();
        for due in health.poll_due(now) {
            let Some((service, real, checker)) = health.check_config(due.id) else {
                continue;
            };
            if let CheckKind::Bfd(name) = &checker.kind {
                // The session's state is known now: no task, never in flight, so a
                // change cannot slip past a check that read the state before it.
                let result = bfd_check(name, bfd.borrow().get(name).copied(), !service.alpha);
                actions.extend(health.handle_result(now, due.id, result));
            } else {
                let (service, real, checker) = (service.clone(), real.clone(), checker.clone());
                checks.spawn(async move { (due.id, run_check(&service, &real, &checker).await) });
            }
        }
        if !actions.is_empty() {
            perform(actions, &mut commands);
            publish(&health, &snapshots);
        }
        let deadline = health.poll_timeout().map(Instant::from_std);
        let actions = tokio::select! {
            Some(done) = checks.join_next(), if !checks.is_empty() => match done {
                Ok((id, result)) => health.handle_result(Instant::now().into_std(), id, result),
                // Aborted (never, while running) or panicked: its next attempt never
                // comes, which the log says.
                Err(e) => {
                    tracing::error!(error = %e, "a health check task failed");
                    Vec::new()
                }
            },
            Some(_) = commands.join_next(), if !commands.is_empty() => Vec::new(),
            () = sleep_until(deadline) => Vec::new(),
            changed = bfd.changed(), if bfd_open => {
                match changed {
                    Ok(()) => health.due_now(Instant::now().into_std(), |checker| {
                        matches!(checker.kind, CheckKind::Bfd(_))
                    }),
                    // The daemon's BFD side is gone (shutdown): the last state stays.
                    Err(_) => bfd_open = false,
                }
                Vec::new()
            },
            request = requests.recv() => match request {
                Some(Control::Reload(services)) => {
                    health.reload(services, Instant::now().into_std(), &mut random_warmup)
                }
                Some(Control::Shutdown(done)) => {
                    checks.abort_all();
                    let actions = health.shutdown();
                    perform(actions, &mut commands);
                    snapshots.send_replace(health.snapshot());
                    while commands.join_next().await.is_some() {}
                    let _ = done.send(());
                    return;
                }
                None => return,
            },
        };
        perform(actions, &mut commands);
        publish(&health, &snapshots);
    }
}

/// Publishes `health`'s snapshot if it changed.
fn publish(health: &Health, snapshots: &watch::Sender<HealthSnapshot>) {
    let snapshot = health.snapshot();
    snapshots.send_if_modified(|current| {
        let changed = *current != snapshot;
        if changed {
            *current = snapshot;
        }
        changed
    });
}

/// A BFD_CHECK's result for session `name` in state `up` (see [`BfdStates`]); a session
/// not yet Up gives `initial`, the checker's starting state.
fn bfd_check(name: &str, up: Option<bool>, initial: bool) -> CheckResult {
    let (ok, state) = match up {
        Some(true) => (true, "is Up"),
        Some(false) => (false, "is no longer Up"),
        None => (initial, "has not been Up yet"),
    };
    CheckResult {
        ok,
        reason: format!("BFD session {name} {state}"),
        weight: None,
        at: SystemTime::now(),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Logs each transition (one line, with the reason) and starts its command.
fn perform(actions: Vec<LbAction>, commands: &mut JoinSet<()>) {
    for action in actions {
        let command = match action {
            LbAction::RealServerChanged {
                service,
                address,
                state,
                reason,
                command,
            } => {
                if state == RealServerState::Alive {
                    tracing::info!(%service, real_server = %address, %reason, "real server is alive");
                } else {
                    tracing::warn!(%service, real_server = %address, state = state.name(), %reason, "real server is down");
                }
                command
            }
            LbAction::QuorumChanged {
                service,
                up,
                alive_weight,
                command,
            } => {
                if up {
                    tracing::info!(%service, alive_weight, "quorum gained");
                } else {
                    tracing::warn!(%service, alive_weight, "quorum lost");
                }
                command
            }
        };
        if let Some(command) = command {
            commands.spawn(run_notify(command));
        }
    }
}

async fn run_notify(command: Command) {
    let outcome = run_once_niced(&command, NOTIFY_TIMEOUT, NOTIFY_NICENESS).await;
    if !outcome.ok() {
        tracing::warn!(command = ?command.argv, why = %describe(&outcome), "load balancer notify command failed");
    }
}

fn describe(outcome: &RunOutcome) -> String {
    match outcome {
        RunOutcome::Exited(Some(code)) => format!("exit status {code}"),
        RunOutcome::Exited(None) => "killed by a signal".to_owned(),
        RunOutcome::TimedOut => "timed out, killed".to_owned(),
        RunOutcome::SpawnFailed(e) => format!("could not start: {e}"),
    }
}

/// Where a check connects: `connect_ip` / `connect_port`, else the real server's.
fn target(real: &RealServer, checker: &Checker) -> SocketAddr {
    SocketAddr::new(
        checker.connect_ip.unwrap_or(real.address.ip()),
        checker.connect_port.unwrap_or(real.address.port()),
    )
}

/// Runs one attempt of `checker` against `real`.
pub async fn run_check(
    service: &VirtualServer,
    real: &RealServer,
    checker: &Checker,
) -> CheckResult {
    let passed = |result: Result<String, String>| match result {
        Ok(reason) => (true, reason, None),
        Err(reason) => (false, reason, None),
    };
    let to = target(real, checker);
    let (ok, reason, weight) = match &checker.kind {
        CheckKind::Tcp => passed(
            tcp_connect(to, checker)
                .await
                .map(|_| "connected".to_owned()),
        ),
        CheckKind::Http(http) => passed(http_check(service, real, checker, http).await),
        CheckKind::Udp(udp) => passed(udp_check(to, checker, udp).await),
        CheckKind::Ping => passed(ping(to.ip(), checker).await),
        CheckKind::Dns(dns) => passed(dns_check(to, checker, dns).await),
        CheckKind::Smtp(smtp) => {
            let exchange = smtp_check(to, checker, smtp);
            passed(
                tokio::time::timeout(checker.connect_timeout, exchange)
                    .await
                    .unwrap_or_else(|_| {
                        Err(format!(
                            "{to}: no complete SMTP exchange within {}",
                            humantime::format_duration(checker.connect_timeout)
                        ))
                    }),
            )
        }
        CheckKind::File(file) => file_check(file, real.weight),
        // The supervisor answers these from the sessions' state without a task.
        CheckKind::Bfd(name) => {
            let result = bfd_check(name, None, !service.alpha);
            (result.ok, result.reason, None)
        }
        CheckKind::Misc(misc) => {
            let outcome = run_once(&misc.command, misc.timeout).await;
            let status = match outcome {
                RunOutcome::Exited(status) => status,
                _ => None,
            };
            let (ok, weight) = misc_exit_status(status, misc.dynamic);
            let mut reason = describe(&outcome);
            if let Some(weight) = weight {
                reason.push_str(&format!(", weight {weight}"));
            }
            (ok, reason, weight)
        }
    };
    CheckResult {
        ok,
        reason,
        weight,
        at: SystemTime::now(),
    }
}

/// A TCP connection to `to` (from `bindto`) within the checker's `connect_timeout`.
async fn tcp_connect(to: SocketAddr, checker: &Checker) -> Result<TcpStream, String> {
    let socket = match to {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| format!("socket: {e}"))?;
    if let Some(source) = checker.bind_to {
        socket
            .bind(SocketAddr::new(source, 0))
            .map_err(|e| format!("bind to {source}: {e}"))?;
    }
    match tokio::time::timeout(checker.connect_timeout, socket.connect(to)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(format!("connect to {to}: {e}")),
        Err(_) => Err(format!(
            "connect to {to}: no answer within {}",
            humantime::format_duration(checker.connect_timeout)
        )),
    }
}

/// A UDP socket (from `bindto`) connected to `to`: only `to`'s datagrams, and its ICMP
/// errors, come back on it.
async fn udp_connected(to: SocketAddr, checker: &Checker) -> Result<UdpSocket, String> {
    let local = match (checker.bind_to, to) {
        (Some(source), _) => SocketAddr::new(source, 0),
        (None, SocketAddr::V4(_)) => SocketAddr::from(([0u8; 4], 0)),
        (None, SocketAddr::V6(_)) => SocketAddr::from(([0u16; 8], 0)),
    };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|e| format!("bind to {local}: {e}"))?;
    socket
        .connect(to)
        .await
        .map_err(|e| format!("connect to {to}: {e}"))?;
    Ok(socket)
}

/// UDP_CHECK, as keepalived: the payload goes out; an ICMP port unreachable (the
/// connected socket's ECONNREFUSED) fails the check, silence passes it unless a reply
/// is required, and a reply must have the allowed length and match the pattern.
async fn udp_check(to: SocketAddr, checker: &Checker, udp: &UdpCheck) -> Result<String, String> {
    let socket = udp_connected(to, checker).await?;
    socket
        .send(&udp.payload)
        .await
        .map_err(|e| format!("send to {to}: {e}"))?;
    // One byte over the longest reply allowed, to see a longer one.
    let mut buf = vec![0u8; usize::from(udp.max_reply_length) + 1];
    let waited = humantime::format_duration(checker.connect_timeout);
    let len = match tokio::time::timeout(checker.connect_timeout, socket.recv(&mut buf)).await {
        Err(_) if udp.require_reply => return Err(format!("{to}: no reply within {waited}")),
        Err(_) => return Ok(format!("no port unreachable within {waited}")),
        Ok(Err(e)) => return Err(format!("{to}: {e}")),
        Ok(Ok(len)) => len,
    };
    if !udp.require_reply {
        return Ok(format!("a {len}-byte reply"));
    }
    let (min, max) = (
        usize::from(udp.min_reply_length),
        usize::from(udp.max_reply_length),
    );
    if !(min..=max).contains(&len) {
        return Err(format!(
            "{to}: a reply of {} bytes, not {min} to {max}",
            if len > max {
                format!("over {max}")
            } else {
                len.to_string()
            }
        ));
    }
    let data = buf.get(..len).unwrap_or_default();
    if let Some(pattern) = &udp.reply
        && !pattern.matches(data)
    {
        return Err(format!("{to}: the {len}-byte reply does not match"));
    }
    Ok(format!("a {len}-byte reply"))
}

/// PING_CHECK: one ICMP (ICMPv6) echo request with a random identifier and sequence;
/// passes on the matching echo reply within `connect_timeout`. A raw socket (vipd has
/// CAP_NET_RAW), connected so that only the target's packets arrive on it.
async fn ping(to: IpAddr, checker: &Checker) -> Result<String, String> {
    use socket2::{Domain, Protocol, Socket, Type};
    let (domain, protocol) = match to {
        IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4),
        IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6),
    };
    let os = |what: &str, e: std::io::Error| format!("{what}: {e}");
    let socket =
        Socket::new(domain, Type::RAW, Some(protocol)).map_err(|e| os("raw ICMP socket", e))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| os("non-blocking", e))?;
    if let Some(source) = checker.bind_to {
        socket
            .bind(&SocketAddr::new(source, 0).into())
            .map_err(|e| os(&format!("bind to {source}"), e))?;
    }
    socket
        .connect(&SocketAddr::new(to, 0).into())
        .map_err(|e| os(&format!("connect to {to}"), e))?;
    // SAFETY: the AsyncFd owns the socket from here on, so its fd stays open and the
    // same for the AsyncFd's whole life.
    let socket = unsafe { tokio::io::unix::AsyncFd::register(socket) }
        .map_err(|e| os("registering", e.into()))?;
    let (id, seq) = (fastrand::u16(..), fastrand::u16(..));
    let echo = echo_request(to, id, seq);
    let sent = Instant::now();
    let exchange = async {
        loop {
            let mut guard = socket.writable().await.map_err(|e| os("wait", e))?;
            match guard.try_io(|s| s.get_ref().send(&echo)) {
                Ok(result) => {
                    break result
                        .map(|_| ())
                        .map_err(|e| os(&format!("send to {to}"), e))?;
                }
                Err(_would_block) => continue,
            }
        }
        let mut buf = [0u8; 1500];
        loop {
            let mut guard = socket.readable().await.map_err(|e| os("wait", e))?;
            let len = match guard.try_io(|s| std::io::Read::read(&mut s.get_ref(), &mut buf)) {
                Ok(result) => result.map_err(|e| os(&format!("receive from {to}"), e))?,
                Err(_would_block) => continue,
            };
            if is_echo_reply(to, buf.get(..len).unwrap_or_default(), id, seq) {
                return Ok::<_, String>(());
            }
        }
    };
    match tokio::time::timeout(checker.connect_timeout, exchange).await {
        Ok(Ok(())) => Ok(format!(
            "echo reply in {:.1} ms",
            sent.elapsed().as_secs_f64() * 1e3
        )),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!(
            "{to}: no echo reply within {}",
            humantime::format_duration(checker.connect_timeout)
        )),
    }
}

/// An ICMP (ICMPv6) echo request to `to` with `id` and `seq`, built with pnet_packet as
/// io::arp builds its packets. ICMPv6's checksum (pseudo-header included) is the
/// kernel's on a raw socket; ICMP's is ours.
fn echo_request(to: IpAddr, id: u16, seq: u16) -> Vec<u8> {
    use pnet_packet::Packet as _;
    const PAYLOAD: &[u8] = b"vipd PING_CHECK";
    let mut buf = vec![0u8; 8 + PAYLOAD.len()];
    match to {
        IpAddr::V4(_) => {
            use pnet_packet::icmp::{IcmpPacket, IcmpTypes, checksum, echo_request};
            if let Some(mut echo) = echo_request::MutableEchoRequestPacket::new(&mut buf) {
                echo.set_icmp_type(IcmpTypes::EchoRequest);
                echo.set_identifier(id);
                echo.set_sequence_number(seq);
                echo.set_payload(PAYLOAD);
                if let Some(sum) = IcmpPacket::new(echo.packet()).map(|p| checksum(&p)) {
                    echo.set_checksum(sum);
                }
            }
        }
        IpAddr::V6(_) => {
            use pnet_packet::icmpv6::{Icmpv6Types, echo_request};
            if let Some(mut echo) = echo_request::MutableEchoRequestPacket::new(&mut buf) {
                echo.set_icmpv6_type(Icmpv6Types::EchoRequest);
                echo.set_identifier(id);
                echo.set_sequence_number(seq);
                echo.set_payload(PAYLOAD);
            }
        }
    }
    buf
}

/// Whether `packet`, as a raw socket for `to`'s family hands it over (IPv4: with its IP
/// header; ICMPv6: without), is the echo reply to `id` and `seq`.
fn is_echo_reply(to: IpAddr, packet: &[u8], id: u16, seq: u16) -> bool {
    use pnet_packet::Packet as _;
    match to {
        IpAddr::V4(_) => {
            use pnet_packet::icmp::{IcmpTypes, echo_reply::EchoReplyPacket};
            let Some(ip) = pnet_packet::ipv4::Ipv4Packet::new(packet) else {
                return false;
            };
            EchoReplyPacket::new(ip.payload()).is_some_and(|reply| {
                reply.get_icmp_type() == IcmpTypes::EchoReply
                    && reply.get_identifier() == id
                    && reply.get_sequence_number() == seq
            })
        }
        IpAddr::V6(_) => {
            use pnet_packet::icmpv6::{Icmpv6Types, echo_reply::EchoReplyPacket};
            EchoReplyPacket::new(packet).is_some_and(|reply| {
                reply.get_icmpv6_type() == Icmpv6Types::EchoReply
                    && reply.get_identifier() == id
                    && reply.get_sequence_number() == seq
            })
        }
    }
}

/// The DNS query of a DNS_CHECK: header (`id`, RD set, one question) and the question
/// (RFC 1035 §4.1). Hand-written: a dozen bytes around the name, where a DNS crate would
/// bring a resolver's worth of code; the name was checked by the configuration.
fn dns_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut query = Vec::with_capacity(18 + name.len());
    query.extend_from_slice(&id.to_be_bytes());
    query.extend_from_slice(&0x0100u16.to_be_bytes());
    query.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        query.push(u8::try_from(label.len()).unwrap_or(63));
        query.extend_from_slice(label.as_bytes());
    }
    query.push(0);
    query.extend_from_slice(&qtype.to_be_bytes());
    query.extend_from_slice(&1u16.to_be_bytes());
    query
}

/// DNS_CHECK, as keepalived: the query, then a response with its ID must come within
/// `connect_timeout`, with RCODE 0. Datagrams with another ID, or not responses, are
/// skipped.
async fn dns_check(to: SocketAddr, checker: &Checker, dns: &DnsCheck) -> Result<String, String> {
    let socket = udp_connected(to, checker).await?;
    let id = fastrand::u16(..);
    socket
        .send(&dns_query(id, &dns.name, dns.query_type.code()))
        .await
        .map_err(|e| format!("send to {to}: {e}"))?;
    let exchange = async {
        let mut buf = [0u8; 4096];
        loop {
            let len = socket
                .recv(&mut buf)
                .await
                .map_err(|e| format!("{to}: {e}"))?;
            let Some(header) = buf.get(..len.min(12)).filter(|h| h.len() == 12) else {
                continue;
            };
            let is_response = header[2] & 0x80 != 0;
            if header[..2] != id.to_be_bytes() || !is_response {
                continue;
            }
            let rcode = header[3] & 0x0f;
            let answers = u16::from_be_bytes([header[6], header[7]]);
            return match rcode {
                0 => Ok(format!("NOERROR, {answers} answers")),
                code => Err(format!("{to}: RCODE {code} ({})", rcode_name(code))),
            };
        }
    };
    match tokio::time::timeout(checker.connect_timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "{to}: no response within {}",
            humantime::format_duration(checker.connect_timeout)
        )),
    }
}

/// SMTP_CHECK, as keepalived: the greeting must be 220, `HELO name` must get 250, then
/// `QUIT` (any answer). Unlike keepalived, a multi-line reply (`220-…` lines, RFC 5321
/// §4.2.1) is read to its last line before the next command.
async fn smtp_check(to: SocketAddr, checker: &Checker, smtp: &SmtpCheck) -> Result<String, String> {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
    let stream = tcp_connect(to, checker).await?;
    let mut stream = BufReader::new(stream);
    // The reply's code, from its last line; a line over 1000 octets (RFC 5321's limit)
    // or a closed connection is a failure.
    async fn reply(
        stream: &mut BufReader<TcpStream>,
        to: SocketAddr,
    ) -> Result<(u16, String), String> {
        let mut line = String::new();
        loop {
            line.clear();
            let read = (&mut *stream)
                .take(1001)
                .read_line(&mut line)
                .await
                .map_err(|e| format!("{to}: {e}"))?;
            if read == 0 {
                return Err(format!("{to}: connection closed"));
            }
            let code = line.get(..3).and_then(|c| c.parse::<u16>().ok());
            let Some(code) = code else {
                return Err(format!("{to}: not an SMTP reply: {:?}", line.trim_end()));
            };
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok((code, line.trim_end().to_owned()));
            }
        }
    }
    let (code, greeting) = reply(&mut stream, to).await?;
    if code != 220 {
        return Err(format!("{to}: greeting {greeting:?}, expected 220"));
    }
    let helo = format!("HELO {}\r\n", smtp.helo_name);
    stream
        .get_mut()
        .write_all(helo.as_bytes())
        .await
        .map_err(|e| format!("{to}: {e}"))?;
    let (code, answer) = reply(&mut stream, to).await?;
    if code != 250 {
        return Err(format!("{to}: HELO answered {answer:?}, expected 250"));
    }
    stream
        .get_mut()
        .write_all(b"QUIT\r\n")
        .await
        .map_err(|e| format!("{to}: {e}"))?;
    reply(&mut stream, to).await?;
    Ok("SMTP 220, HELO 250".into())
}

/// FILE_CHECK: the track file's value now (missing: 0, as keepalived), and what it
/// means for the server ([`FileCheck::effect`]). A value keepalived would ignore (out of
/// range) fails the attempt, since a check keeps no earlier value.
fn file_check(file: &FileCheck, weight: u32) -> (bool, String, Option<u32>) {
    let value = match std::fs::read(&file.path) {
        Ok(bytes) => match crate::config::TrackFile::parse_value(&bytes) {
            Some(value) => value,
            None => {
                return (
                    false,
                    format!("{}: a value out of range", file.path.display()),
                    None,
                );
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return (false, format!("{}: {e}", file.path.display()), None),
    };
    let (ok, weight) = file.effect(value, weight);
    let mut reason = format!("{} = {value}", file.name);
    if let Some(weight) = weight {
        reason.push_str(&format!(", weight {weight}"));
    }
    (ok, reason, weight)
}

/// RFC 1035 §4.1.1's response codes (and RFC 2136's first).
fn rcode_name(code: u8) -> &'static str {
    match code {
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => "error",
    }
}

/// Every url must pass; the first failure is the reason.
async fn http_check(
    service: &VirtualServer,
    real: &RealServer,
    checker: &Checker,
    http: &HttpCheck,
) -> Result<String, String> {
    let to = target(real, checker);
    let mut passed = Vec::new();
    for url in &http.urls {
        let host = url
            .virtualhost
            .as_deref()
            .or(http.virtualhost.as_deref())
            .or(service.virtualhost.as_deref());
        let attempt = http_get(to, host, url, http.tls, checker);
        let reason = match tokio::time::timeout(checker.connect_timeout, attempt).await {
            Ok(result) => result.map_err(|e| format!("{}: {e}", url.path))?,
            Err(_) => {
                return Err(format!(
                    "{}: no complete answer within {}",
                    url.path,
                    humantime::format_duration(checker.connect_timeout)
                ));
            }
        };
        passed.push(reason);
    }
    Ok(passed.join("; "))
}

/// One GET of `url` on a fresh connection; `Ok` says what passed.
async fn http_get(
    to: SocketAddr,
    host: Option<&str>,
    url: &UrlCheck,
    tls: bool,
    checker: &Checker,
) -> Result<String, String> {
    let stream = tcp_connect(to, checker).await?;
    // keepalived's Host when no virtualhost: the address (and a port other than the
    // scheme's default).
    let default_port = if tls { 443 } else { 80 };
    let host_header = match host {
        Some(host) => host.to_owned(),
        None if to.port() == default_port => host_of(to.ip()),
        None => format!("{}:{}", host_of(to.ip()), to.port()),
    };
    if tls {
        let name = host.unwrap_or_default();
        let server_name = rustls::pki_types::ServerName::try_from(name.to_owned())
            .unwrap_or_else(|_| rustls::pki_types::ServerName::IpAddress(to.ip().into()));
        let connector = tokio_rustls::TlsConnector::from(tls_config());
        let stream = connector
            .connect(server_name, stream)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))?;
        request(stream, &host_header, url).await
    } else {
        request(stream, &host_header, url).await
    }
}

fn host_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

async fn request<S>(stream: S, host: &str, url: &UrlCheck) -> Result<String, String>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    let connection = tokio::spawn(connection);
    let request = hyper::Request::get(url.path.as_str())
        .header(hyper::header::HOST, host)
        .header(hyper::header::USER_AGENT, "vipd-checker")
        .header(hyper::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("bad request: {e}"))?;
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        let status = response.status().as_u16();
        let status_ok = if url.status_codes.is_empty() {
            (200..300).contains(&status)
        } else {
            url.status_codes.contains(&status)
        };
        if !status_ok {
            let expected = if url.status_codes.is_empty() {
                "2xx".to_owned()
            } else {
                url.status_codes
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(format!("HTTP status {status}, expected {expected}"));
        }
        let Some(expected) = &url.digest else {
            return Ok(format!("HTTP {status}"));
        };
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("reading the body: {e}"))?
            .to_bytes();
        let digest: String = Md5::digest(&body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if digest == *expected {
            Ok(format!("HTTP {status}, digest ok"))
        } else {
            Err(format!(
                "digest mismatch: body MD5 {digest}, expected {expected}"
            ))
        }
    }
    .await;
    connection.abort();
    result
}

/// The SSL_GET client configuration: ring, any certificate.
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let verifier = Arc::new(AnyCertificate(provider.clone()));
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                // ring supports every default version; a failure here is a build bug.
                .unwrap_or_else(|e| panic!("rustls ring provider: {e}"))
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

/// keepalived's SSL_GET does not verify the server's certificate; the handshake's
/// signatures are still checked, so the peer holds the key of the certificate it shows.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ICMPv6 echo request turned into its reply (type 129) is recognised only with
    /// the same identifier and sequence; an IPv4 request's checksum verifies.
    #[test]
    fn echo_replies_are_matched_by_identifier_and_sequence() {
        let v6: IpAddr = "2001:db8::11".parse().unwrap();
        let mut reply = echo_request(v6, 7, 9);
        assert!(!is_echo_reply(v6, &reply, 7, 9), "a request is not a reply");
        reply[0] = 129;
        assert!(is_echo_reply(v6, &reply, 7, 9));
        assert!(!is_echo_reply(v6, &reply, 7, 10));
        assert!(!is_echo_reply(v6, &reply[..4], 7, 9), "cut short");
        let v4 = echo_request("192.0.2.11".parse().unwrap(), 7, 9);
        assert_eq!((v4[0], pnet_packet::util::checksum(&v4, 99)), (8, 0));
    }

    /// FILE_CHECK reads the file at each attempt: missing is 0, a value applies at once,
    /// one keepalived would ignore fails the attempt.
    #[test]
    fn file_check_reads_the_track_file_each_time() {
        let dir = std::env::temp_dir().join(format!("vipd-file-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let check = FileCheck {
            name: "maint".into(),
            path: dir.join("maint"),
            weight: 0,
            reverse: false,
        };
        let _ = std::fs::remove_file(&check.path);
        assert_eq!(file_check(&check, 1), (true, "maint = 0".into(), None));
        std::fs::write(&check.path, "1\n").unwrap();
        assert_eq!(file_check(&check, 1), (false, "maint = 1".into(), None));
        let weighted = FileCheck {
            weight: 5,
            ..check.clone()
        };
        std::fs::write(&check.path, "0x2").unwrap();
        assert_eq!(
            file_check(&weighted, 1),
            (true, "maint = 2, weight 11".into(), Some(11))
        );
        std::fs::write(&check.path, "99999999999").unwrap();
        assert!(!file_check(&check, 1).0, "out of range fails");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
