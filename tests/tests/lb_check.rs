//! The load balancer's health checkers (`vipd::lb::check::Supervisor`) against real
//! servers in a namespace: a stopped server fails within delay_loop plus its retries and
//! comes back, the sorry server and the quorum follow, notify commands run, status code
//! and digest mismatches fail with their reason, SSL_GET talks TLS to a self-signed
//! server, TCP_CHECK honours bindto, MISC_CHECK's exit status sets the weight, and
//! UDP_CHECK, PING_CHECK, DNS_CHECK and SMTP_CHECK pass and fail as keepalived's do.
//!
//! Lab: namespace `lb` (192.0.2.1/24, runs the supervisor on a tokio runtime in a thread
//! that entered it) and `rs` (192.0.2.11-13/24, Python HTTP and UDP servers), joined by a
//! veth.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use tokio::sync::watch;

use vipd::config::parse_toml;
use vipd::lb::check::Supervisor;
use vipd::lb::{HealthSnapshot, RealServerState};
use vipd_tests::vipd::Scratch;
use vipd_tests::{Netns, Proc, add_addr, in_netns, require_root, veth_between};

/// A small HTTPS server: address, port, directory, certificate, key.
const HTTPS_SERVER: &str = "\
import functools, http.server, ssl, sys
addr, port, root, cert, key = sys.argv[1:]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
server = http.server.ThreadingHTTPServer((addr, int(port)), handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
";

/// A UDP server: address, port, and `echo` (send each datagram back) or `rcode:N` (answer
/// each DNS query with its ID and question, QR set and RCODE N, no records).
const UDP_SERVER: &str = "\
import socket, sys
addr, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((addr, port))
while True:
    data, peer = s.recvfrom(4096)
    if mode == 'echo':
        s.sendto(data, peer)
    elif len(data) >= 12:
        rcode = int(mode.split(':')[1])
        flags = bytes([0x80 | (data[2] & 0x01), 0x80 | rcode])
        s.sendto(data[:2] + flags + data[4:6] + bytes(6) + data[12:], peer)
";

/// An SMTP server that knows HELO and QUIT: address, port, and `ok` (a two-line 220
/// greeting) or `busy` (554 at once).
const SMTP_SERVER: &str = "\
import socketserver, sys
addr, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        if mode == 'busy':
            self.wfile.write(b'554 rs.test no service\\r\\n')
            return
        self.wfile.write(b'220-rs.test ESMTP\\r\\n220 ready\\r\\n')
        for line in self.rfile:
            if line.upper().startswith(b'HELO '):
                self.wfile.write(b'250 rs.test\\r\\n')
            elif line.upper().startswith(b'QUIT'):
                self.wfile.write(b'221 bye\\r\\n')
                return
            else:
                self.wfile.write(b'500 what\\r\\n')
class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
Server((addr, port), Handler).serve_forever()
";

const PYTHON: &str = "/usr/bin/python3";
const PAGE: &str = "<html>vipd real server</html>\n";

struct Lab {
    lb: Netns,
    rs: Netns,
    scratch: Scratch,
}

fn lab(tag: &str) -> anyhow::Result<Lab> {
    let lb = Netns::new(&format!("{tag}_lb"))?;
    let rs = Netns::new(&format!("{tag}_rs"))?;
    veth_between(&lb, "eth0", &rs, "eth0")?;
    add_addr(&lb, "eth0", "192.0.2.1/24")?;
    for host in 11..=13 {
        add_addr(&rs, "eth0", &format!("192.0.2.{host}/24"))?;
    }
    let scratch = Scratch::new(tag)?;
    std::fs::write(scratch.path().join("index.html"), PAGE)?;
    Ok(Lab { lb, rs, scratch })
}

impl Lab {
    fn path(&self, name: &str) -> String {
        self.scratch.path().join(name).display().to_string()
    }

    /// `python3 -m http.server` on `address`:80, serving the scratch directory; returns
    /// once it accepts connections.
    fn http_server(&self, address: &str) -> anyhow::Result<Proc> {
        let root = self.scratch.path().display().to_string();
        let server = self.rs.spawn(&[
            PYTHON,
            "-m",
            "http.server",
            "--bind",
            address,
            "--directory",
            &root,
            "80",
        ])?;
        self.wait_listening(address, 80)?;
        Ok(server)
    }

    /// [`SMTP_SERVER`] on `address`:`port` in `mode`; returns once it listens.
    fn smtp_server(&self, address: &str, port: u16, mode: &str) -> anyhow::Result<Proc> {
        let server =
            self.rs
                .spawn(&[PYTHON, "-c", SMTP_SERVER, address, &port.to_string(), mode])?;
        self.wait_listening(address, port)?;
        Ok(server)
    }

    /// [`UDP_SERVER`] on `address`:`port` in `mode`; returns once it is bound.
    fn udp_server(&self, address: &str, port: u16, mode: &str) -> anyhow::Result<Proc> {
        let server =
            self.rs
                .spawn(&[PYTHON, "-c", UDP_SERVER, address, &port.to_string(), mode])?;
        self.wait_bound("-Huln", address, port)?;
        Ok(server)
    }

    fn wait_listening(&self, address: &str, port: u16) -> anyhow::Result<()> {
        self.wait_bound("-Hltn", address, port)
    }

    /// Waits until `ss FLAGS src ADDRESS:PORT` lists a socket.
    fn wait_bound(&self, flags: &str, address: &str, port: u16) -> anyhow::Result<()> {
        let target = format!("{address}:{port}");
        vipd_tests::poll_until(
            &format!("a server listening on {target}"),
            Duration::from_secs(10),
            Duration::from_millis(50),
            || {
                let out = self
                    .rs
                    .exec_ok(&["ss", flags, "src", &target])
                    .unwrap_or_default();
                if out.trim().is_empty() {
                    Err(out)
                } else {
                    Ok(())
                }
            },
        )
    }
}

/// The virtual servers of a TOML document (one VRRP instance so it validates).
fn services(virtual_servers: &str) -> anyhow::Result<Vec<vipd::config::lb::VirtualServer>> {
    let text = format!(
        "[instance.VI_1]\ninterface = \"eth0\"\nvirtual_router_id = 7\n\
         virtual_ipaddress = [\"192.0.2.100\"]\n\n{virtual_servers}"
    );
    let loaded = parse_toml(&text, "lb_check.toml").map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(loaded.config.virtual_servers)
}

/// Runs `body` on a current-thread runtime in a thread inside `ns`.
fn on_runtime_in<T: Send>(
    ns: &Netns,
    body: impl std::future::Future<Output = anyhow::Result<T>> + Send,
) -> anyhow::Result<T> {
    in_netns(ns, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("tokio runtime")?
            .block_on(body)
    })?
}

/// Waits until `ok` holds for the published snapshot, failing after `timeout` with the
/// last snapshot.
async fn wait_for(
    snapshots: &mut watch::Receiver<HealthSnapshot>,
    what: &str,
    timeout: Duration,
    ok: impl Fn(&HealthSnapshot) -> bool,
) -> anyhow::Result<HealthSnapshot> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        {
            let current = snapshots.borrow_and_update();
            if ok(&current) {
                return Ok(current.clone());
            }
        }
        if tokio::time::timeout_at(deadline, snapshots.changed())
            .await
            .is_err()
        {
            let last = snapshots.borrow().clone();
            bail!("timed out after {timeout:?} waiting for {what}; last snapshot: {last:#?}");
        }
    }
}

fn state(snapshot: &HealthSnapshot, service: usize, real: usize) -> Option<RealServerState> {
    Some(
        snapshot
            .services
            .get(service)?
            .real_servers
            .get(real)?
            .state,
    )
}

fn last_reason(snapshot: &HealthSnapshot, service: usize, real: usize) -> String {
    snapshot
        .services
        .get(service)
        .and_then(|s| s.real_servers.get(real))
        .and_then(|r| r.last_check.as_ref())
        .map(|c| c.reason.clone())
        .unwrap_or_default()
}

fn wait_file(path: &str, timeout: Duration) -> anyhow::Result<()> {
    vipd_tests::poll_until(path, timeout, Duration::from_millis(20), || {
        if Path::new(path).exists() {
            Ok(())
        } else {
            Err("missing")
        }
    })
}

/// Checks every 300 ms, retry 1 after 200 ms, 1 s to answer: a stopped server is failed
/// within 300 ms + 2 × 1 s + 200 ms; the waits allow three times that on a busy machine.
#[test]
fn a_stopped_server_fails_in_time_comes_back_and_the_sorry_server_and_quorum_follow() {
    require_root();
    let lab = lab("lbfail").unwrap();
    let mut rs11 = lab.http_server("192.0.2.11").unwrap();
    let mut rs12 = lab.http_server("192.0.2.12").unwrap();
    let toml = format!(
        r#"
[[virtual_server]]
address = "192.0.2.100"
port = 80
delay_loop = "300ms"
sorry_server = {{ address = "192.0.2.13", port = 80 }}
quorum_up = ["/usr/bin/touch", "{qup}"]
quorum_down = ["/usr/bin/touch", "{qdown}"]

[[virtual_server.real_server]]
address = "192.0.2.11"
port = 80
notify_up = ["/usr/bin/touch", "{up11}"]
notify_down = ["/usr/bin/touch", "{down11}"]

[[virtual_server.real_server.check]]
type = "HTTP_GET"
connect_timeout = "1s"
retry = 1
delay_before_retry = "200ms"
url = [{{ path = "/", status_code = [200] }}]

[[virtual_server.real_server]]
address = "192.0.2.12"
port = 80

[[virtual_server.real_server.check]]
type = "HTTP_GET"
connect_timeout = "1s"
retry = 1
delay_before_retry = "200ms"
url = [{{ path = "/index.html" }}]
"#,
        qup = lab.path("quorum_up"),
        qdown = lab.path("quorum_down"),
        up11 = lab.path("up11"),
        down11 = lab.path("down11"),
    );
    let services = services(&toml).unwrap();
    let fail_within = Duration::from_millis(3 * (300 + 2 * 1000 + 200));
    let result = on_runtime_in(&lab.lb, async {
        let (supervisor, mut snapshots) = Supervisor::start(services);
        let both_checked = |s: &HealthSnapshot| {
            s.services[0]
                .real_servers
                .iter()
                .all(|r| r.last_check.as_ref().is_some_and(|c| c.ok))
        };
        let first = wait_for(
            &mut snapshots,
            "both servers checked",
            fail_within,
            both_checked,
        )
        .await?;
        ensure!(last_reason(&first, 0, 0) == "HTTP 200", "{first:#?}");
        ensure!(first.services[0].quorum_up && !first.services[0].pool.use_sorry);

        rs11.terminate(Duration::from_secs(5))?;
        let failed = wait_for(&mut snapshots, ".11 failed", fail_within, |s| {
            state(s, 0, 0) == Some(RealServerState::Failed)
        })
        .await?;
        let reason = last_reason(&failed, 0, 0);
        ensure!(
            reason.contains("192.0.2.11:80") && reason.contains("refused"),
            "{reason}"
        );
        let pool = &failed.services[0].pool;
        ensure!(
            !pool.members[0].in_pool && pool.members[1].in_pool,
            "{pool:?}"
        );
        ensure!(!pool.use_sorry, "one server still serves");
        wait_file(&lab.path("down11"), Duration::from_secs(5))?;

        let mut rs11 = lab.http_server("192.0.2.11")?;
        wait_for(&mut snapshots, ".11 back", fail_within, |s| {
            state(s, 0, 0) == Some(RealServerState::Alive)
        })
        .await?;
        wait_file(&lab.path("up11"), Duration::from_secs(5))?;

        // Nothing alive: the quorum (1) is lost and the sorry server takes over.
        rs11.terminate(Duration::from_secs(5))?;
        rs12.terminate(Duration::from_secs(5))?;
        let down = wait_for(&mut snapshots, "both failed", fail_within, |s| {
            state(s, 0, 0) == Some(RealServerState::Failed)
                && state(s, 0, 1) == Some(RealServerState::Failed)
        })
        .await?;
        ensure!(
            !down.services[0].quorum_up && down.services[0].pool.use_sorry,
            "{down:#?}"
        );
        wait_file(&lab.path("quorum_down"), Duration::from_secs(5))?;
        ensure!(
            !Path::new(&lab.path("quorum_up")).exists(),
            "quorum_up ran without a change"
        );

        let _rs12 = lab.http_server("192.0.2.12")?;
        let up = wait_for(&mut snapshots, ".12 back", fail_within, |s| {
            s.services[0].quorum_up
        })
        .await?;
        ensure!(!up.services[0].pool.use_sorry, "{up:#?}");
        wait_file(&lab.path("quorum_up"), Duration::from_secs(5))?;
        supervisor.shutdown().await;
        Ok(())
    });
    result.unwrap();
}

/// Wrong status, wrong digest and an unbindable source fail with their reasons; the
/// right digest, SSL_GET against a self-signed server and TCP_CHECK pass.
#[test]
fn checks_report_status_digest_tls_and_bind_results() {
    require_root();
    let lab = lab("lbkinds").unwrap();
    let _rs11 = lab.http_server("192.0.2.11").unwrap();
    let (cert, key) = (lab.path("cert.pem"), lab.path("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args([
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=rs.test",
            "-keyout",
            &key,
            "-out",
            &cert,
        ])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let root = lab.scratch.path().display().to_string();
    let _tls = lab
        .rs
        .spawn(&[
            PYTHON,
            "-c",
            HTTPS_SERVER,
            "192.0.2.12",
            "443",
            &root,
            &cert,
            &key,
        ])
        .unwrap();
    lab.wait_listening("192.0.2.12", 443).unwrap();
    let md5 = std::process::Command::new("md5sum")
        .arg(lab.path("index.html"))
        .output()
        .unwrap();
    let digest = String::from_utf8_lossy(&md5.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let wrong = "0123456789abcdef0123456789abcdef";
    let check = |n: u8, address: &str, port: u16, body: &str| {
        one_check(&format!("192.0.2.{n}"), address, port, "", "2s", body)
    };
    let toml = [
        check(101, "192.0.2.11", 80, "type = \"HTTP_GET\"\nurl = [{ path = \"/missing\", status_code = [200] }]"),
        check(102, "192.0.2.11", 80, &format!("type = \"HTTP_GET\"\nurl = [{{ path = \"/index.html\", digest = \"{wrong}\" }}]")),
        check(103, "192.0.2.11", 80, &format!("type = \"HTTP_GET\"\nvirtualhost = \"www.test\"\nurl = [{{ path = \"/index.html\", digest = \"{digest}\" }}]")),
        check(104, "192.0.2.12", 443, "type = \"SSL_GET\"\nurl = [{ path = \"/index.html\", status_code = [200] }]"),
        check(105, "192.0.2.11", 80, "type = \"TCP_CHECK\"\nbindto = \"192.0.2.1\""),
        check(106, "192.0.2.11", 80, "type = \"TCP_CHECK\"\nbindto = \"198.51.100.1\""),
    ]
    .concat();
    let services = services(&toml).unwrap();
    let snapshot = first_results(&lab.lb, services).unwrap();
    let expect = |service: usize, state: RealServerState, reason: &str| {
        expect_result(&snapshot, service, state, reason)
    };
    expect(0, RealServerState::Failed, "HTTP status 404, expected 200");
    expect(
        1,
        RealServerState::Failed,
        &format!("digest mismatch: body MD5 {digest}, expected {wrong}"),
    );
    expect(2, RealServerState::Alive, "HTTP 200, digest ok");
    expect(3, RealServerState::Alive, "HTTP 200");
    expect(4, RealServerState::Alive, "connected");
    expect(5, RealServerState::Failed, "bind to 198.51.100.1");
}

/// UDP_CHECK (silence or a reply passes, port unreachable fails; a required reply's
/// pattern, with wildcards), PING_CHECK (a host that answers, one that is not there, an
/// IPv6 one), DNS_CHECK (NOERROR passes, SERVFAIL fails) and SMTP_CHECK (a multi-line
/// greeting and HELO pass, a 554 greeting fails), each with its reason.
#[test]
fn udp_ping_dns_and_smtp_checks_report_their_results() {
    require_root();
    let lab = lab("lbudp").unwrap();
    let _echo = lab.udp_server("192.0.2.11", 7, "echo").unwrap();
    let _dns = lab.udp_server("192.0.2.11", 53, "rcode:0").unwrap();
    let _servfail = lab.udp_server("192.0.2.12", 53, "rcode:2").unwrap();
    let _smtp = lab.smtp_server("192.0.2.11", 25, "ok").unwrap();
    let _busy = lab.smtp_server("192.0.2.12", 25, "busy").unwrap();
    for (ns, address) in [(&lab.lb, "2001:db8::1/64"), (&lab.rs, "2001:db8::11/64")] {
        ns.sysctl("net.ipv6.conf.eth0.accept_dad", "0").unwrap();
        add_addr(ns, "eth0", address).unwrap();
    }
    let udp = "protocol = \"UDP\"\n";
    let check = |n: u8, address: &str, port: u16, body: &str| {
        one_check(&format!("192.0.2.{n}"), address, port, udp, "1s", body)
    };
    let toml = [
        check(101, "192.0.2.11", 7, "type = \"UDP_CHECK\"\npayload = \"76697064\""),
        check(102, "192.0.2.11", 9, "type = \"UDP_CHECK\""),
        check(103, "192.0.2.11", 7, "type = \"UDP_CHECK\"\npayload = \"76697064\"\nreply = \"76 69 70 64\"\nmin_reply_length = 4"),
        check(104, "192.0.2.11", 7, "type = \"UDP_CHECK\"\npayload = \"76697064\"\nreply = \"7669xx65\""),
        check(105, "192.0.2.11", 7, "type = \"UDP_CHECK\"\npayload = \"76697064\"\nrequire_reply = true\nmax_reply_length = 3"),
        check(106, "192.0.2.11", 7, "type = \"PING_CHECK\""),
        check(107, "192.0.2.99", 7, "type = \"PING_CHECK\""),
        check(108, "192.0.2.11", 53, "type = \"DNS_CHECK\"\nquery_type = \"A\"\nquery_name = \"www.example\""),
        check(109, "192.0.2.12", 53, "type = \"DNS_CHECK\""),
        check(110, "192.0.2.11", 25, "type = \"SMTP_CHECK\"\nhelo_name = \"lb.test\""),
        check(111, "192.0.2.12", 25, "type = \"SMTP_CHECK\""),
    ]
    .concat()
        + &one_check(
            "2001:db8::100",
            "2001:db8::11",
            7,
            "",
            "2s",
            "type = \"PING_CHECK\"",
        );
    let services = services(&toml).unwrap();
    let snapshot = first_results(&lab.lb, services).unwrap();
    let expect = |service: usize, state: RealServerState, reason: &str| {
        expect_result(&snapshot, service, state, reason)
    };
    expect(0, RealServerState::Alive, "a 4-byte reply");
    expect(1, RealServerState::Failed, "refused");
    expect(2, RealServerState::Alive, "a 4-byte reply");
    expect(3, RealServerState::Failed, "does not match");
    expect(4, RealServerState::Failed, "not 0 to 3");
    expect(5, RealServerState::Alive, "echo reply");
    expect(6, RealServerState::Failed, "no echo reply");
    expect(7, RealServerState::Alive, "NOERROR");
    expect(8, RealServerState::Failed, "RCODE 2 (SERVFAIL)");
    expect(9, RealServerState::Alive, "SMTP 220, HELO 250");
    expect(
        10,
        RealServerState::Failed,
        "greeting \"554 rs.test no service\", expected 220",
    );
    expect(11, RealServerState::Alive, "echo reply");
}

/// A TOML virtual server on `vip`:`port` (plus `extra` service keys) with one real
/// server and one check of `body`, run every 300 ms without retries: one service per
/// check, so each has its own state.
fn one_check(
    vip: &str,
    address: &str,
    port: u16,
    extra: &str,
    timeout: &str,
    body: &str,
) -> String {
    format!(
        "\n[[virtual_server]]\naddress = \"{vip}\"\nport = {port}\n{extra}delay_loop = \"300ms\"\n\n\
         [[virtual_server.real_server]]\naddress = \"{address}\"\nport = {port}\n\n\
         [[virtual_server.real_server.check]]\nconnect_timeout = \"{timeout}\"\nretry = 0\n{body}\n"
    )
}

/// Runs the checks of `services` in `ns` until each real server has a first result.
fn first_results(
    ns: &Netns,
    services: Vec<vipd::config::lb::VirtualServer>,
) -> anyhow::Result<HealthSnapshot> {
    on_runtime_in(ns, async {
        let (supervisor, mut snapshots) = Supervisor::start(services);
        let all_checked = |s: &HealthSnapshot| {
            s.services
                .iter()
                .all(|s| s.real_servers.iter().all(|r| r.last_check.is_some()))
        };
        let snapshot = wait_for(
            &mut snapshots,
            "every check's first result",
            Duration::from_secs(10),
            all_checked,
        )
        .await?;
        supervisor.shutdown().await;
        Ok(snapshot)
    })
}

/// Service `service`'s (first) real server is in `state`, its last check's reason
/// containing `reason`.
fn expect_result(snapshot: &HealthSnapshot, service: usize, state: RealServerState, reason: &str) {
    let got = last_reason(snapshot, service, 0);
    assert_eq!(
        super_state(snapshot, service),
        Some(state),
        "service {service}: {got}"
    );
    assert!(
        got.contains(reason),
        "service {service}: {got:?} should contain {reason:?}"
    );
}

fn super_state(snapshot: &HealthSnapshot, service: usize) -> Option<RealServerState> {
    state(snapshot, service, 0)
}

/// misc_dynamic: exit 2..=255 sets the weight to status − 2, 0 keeps it, 1 fails.
#[test]
fn misc_check_exit_status_sets_the_weight() {
    require_root();
    let lab = lab("lbmisc").unwrap();
    let status = lab.path("status");
    std::fs::write(&status, "12").unwrap();
    let toml = format!(
        r#"
[[virtual_server]]
address = "192.0.2.100"
port = 80
delay_loop = "200ms"

[[virtual_server.real_server]]
address = "192.0.2.11"
port = 80
weight = 3

[[virtual_server.real_server.check]]
type = "MISC_CHECK"
misc_path = ["/bin/sh", "-c", "exit $(cat {status})"]
misc_timeout = "2s"
misc_dynamic = true
"#
    );
    let services = services(&toml).unwrap();
    on_runtime_in(&lab.lb, async {
        let (supervisor, mut snapshots) = Supervisor::start(services);
        let weight = |s: &HealthSnapshot| s.services[0].pool.members[0].weight;
        let timeout = Duration::from_secs(10);
        wait_for(&mut snapshots, "weight 10", timeout, |s| weight(s) == 10).await?;
        std::fs::write(&status, "0")?;
        let kept = wait_for(&mut snapshots, "a status-0 result", timeout, |s| {
            last_reason(s, 0, 0) == "exit status 0"
        })
        .await?;
        ensure!(weight(&kept) == 10, "status 0 keeps the weight: {kept:#?}");
        std::fs::write(&status, "1")?;
        let failed = wait_for(&mut snapshots, "failed", timeout, |s| {
            state(s, 0, 0) == Some(RealServerState::Failed)
        })
        .await?;
        ensure!(!failed.services[0].pool.members[0].in_pool, "{failed:#?}");
        std::fs::write(&status, "2")?;
        let drained = wait_for(&mut snapshots, "alive at weight 0", timeout, |s| {
            state(s, 0, 0) == Some(RealServerState::Alive)
        })
        .await?;
        ensure!(weight(&drained) == 0 && drained.services[0].pool.members[0].in_pool);
        ensure!(
            !drained.services[0].quorum_up,
            "weight 0 is below the quorum of 1"
        );
        supervisor.shutdown().await;
        Ok(())
    })
    .unwrap();
}

/// A reload keeps an unchanged real server's state and schedule and checks a new one at
/// once.
#[test]
fn reload_keeps_unchanged_servers_and_checks_new_ones() {
    require_root();
    let lab = lab("lbreload").unwrap();
    let _rs11 = lab.http_server("192.0.2.11").unwrap();
    let _rs12 = lab.http_server("192.0.2.12").unwrap();
    let real = |address: &str| {
        format!(
            "\n[[virtual_server.real_server]]\naddress = \"{address}\"\nport = 80\n\n\
             [[virtual_server.real_server.check]]\ntype = \"TCP_CHECK\"\n"
        )
    };
    // A long delay_loop: after its first check, .11 is not checked again in this test.
    let head = "[[virtual_server]]\naddress = \"192.0.2.100\"\nport = 80\ndelay_loop = \"1h\"\nalpha = true\n";
    let before = services(&format!("{head}{}", real("192.0.2.11"))).unwrap();
    let after = services(&format!(
        "{head}{}{}",
        real("192.0.2.11"),
        real("192.0.2.12")
    ))
    .unwrap();
    on_runtime_in(&lab.lb, async {
        let (supervisor, mut snapshots) = Supervisor::start(before);
        let timeout = Duration::from_secs(10);
        let first = wait_for(&mut snapshots, ".11 alive", timeout, |s| {
            state(s, 0, 0) == Some(RealServerState::Alive)
        })
        .await?;
        let checked_at = first.services[0].real_servers[0]
            .last_check
            .as_ref()
            .map(|c| c.at);
        supervisor.reload(after);
        let reloaded = wait_for(&mut snapshots, ".12 alive", timeout, |s| {
            state(s, 0, 1) == Some(RealServerState::Alive)
        })
        .await?;
        let kept = &reloaded.services[0].real_servers[0];
        ensure!(kept.state == RealServerState::Alive, "{reloaded:#?}");
        ensure!(
            kept.last_check.as_ref().map(|c| c.at) == checked_at,
            ".11 was checked again or reset: {reloaded:#?}"
        );
        supervisor.shutdown().await;
        Ok(())
    })
    .unwrap();
}
