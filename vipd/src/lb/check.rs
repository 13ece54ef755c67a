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
//!
//! Sockets are opened in the caller's network namespace (the thread that built the
//! runtime), which is what the tests rely on.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use md5::{Digest as _, Md5};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{HealthSnapshot, RealServerState};
use crate::config::Command;
use crate::config::lb::{CheckKind, Checker, HttpCheck, RealServer, UrlCheck, VirtualServer};
use crate::notify::{NOTIFY_NICENESS, NOTIFY_TIMEOUT};
use crate::proto::lb::health::{CheckId, CheckResult, Health, LbAction, misc_exit_status};
use crate::track::{RunOutcome, run_once, run_once_niced};

/// Largest response body read for a `digest` (keepalived reads it all; a health page is
/// small, and a runaway one must not eat the daemon's memory).
const MAX_BODY: usize = 8 << 20;

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
    /// Starts checking `services` (on the current tokio runtime). The receiver holds the
    /// current snapshot at once and sees every change.
    pub fn start(services: Vec<VirtualServer>) -> (Supervisor, watch::Receiver<HealthSnapshot>) {
        let health = Health::new(services, Instant::now().into_std(), &mut random_warmup);
        let (snapshots, receiver) = watch::channel(health.snapshot());
        let (control, requests) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(health, snapshots, requests));
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
) {
    let mut checks: JoinSet<(CheckId, CheckResult)> = JoinSet::new();
    let mut commands: JoinSet<()> = JoinSet::new();
    loop {
        for due in health.poll_due(Instant::now().into_std()) {
            if let Some((service, real, checker)) = health.check_config(due.id) {
                let (service, real, checker) = (service.clone(), real.clone(), checker.clone());
                checks.spawn(async move { (due.id, run_check(&service, &real, &checker).await) });
            }
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
        let snapshot = health.snapshot();
        snapshots.send_if_modified(|current| {
            let changed = *current != snapshot;
            if changed {
                *current = snapshot;
            }
            changed
        });
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
    let (ok, reason, weight) = match &checker.kind {
        CheckKind::Tcp => match tcp_connect(target(real, checker), checker).await {
            Ok(_) => (true, "connected".to_owned(), None),
            Err(reason) => (false, reason, None),
        },
        CheckKind::Http(http) => match http_check(service, real, checker, http).await {
            Ok(reason) => (true, reason, None),
            Err(reason) => (false, reason, None),
        },
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
