//! The load-balancer lab: real servers with the VIP on `lo` and a small HTTP server,
//! and a client that talks HTTP/1.1 to the VIP.
//!
//! The HTTP server is a few lines of Python's standard library (`http.server`,
//! HTTP/1.1 keep-alive, threads): each answers `GET` with its own name, so a client sees
//! which real server served it, and a kept-alive connection shows whether it stayed on
//! its server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::vipd::Scratch;
use crate::{Netns, Proc, add_addr, in_netns};

const SERVER: &str = r#"
import http.server, socket, socketserver, sys
name, port = sys.argv[1], int(sys.argv[2])
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = (name + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Dual stack: "::" with IPV6_V6ONLY off takes IPv4 too.
    address_family = socket.AF_INET6
    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()
server = Server(("::", port), Handler)
print("ready", flush=True)
server.serve_forever()
"#;

/// Writes the HTTP server script into `scratch`.
pub fn server_script(scratch: &Scratch) -> anyhow::Result<PathBuf> {
    scratch.write("lb-http-server.py", SERVER)
}

/// Makes `ns` a direct-routing real server for `vips`: each VIP on `lo` (/32 or /128),
/// `arp_ignore=1` and `arp_announce=2` so it never answers ARP for them (what `vipd
/// real-server` automates; IPv6 needs nothing more: Linux answers neighbour
/// solicitations only for addresses on the interface they arrive on).
pub fn real_server_setup(ns: &Netns, vips: &[&str]) -> anyhow::Result<()> {
    for vip in vips {
        let cidr = if vip.contains(':') {
            format!("{vip}/128")
        } else {
            format!("{vip}/32")
        };
        add_addr(ns, "lo", &cidr)?;
    }
    for conf in ["all", "eth0"] {
        ns.sysctl(&format!("net.ipv4.conf.{conf}.arp_ignore"), "1")?;
        ns.sysctl(&format!("net.ipv4.conf.{conf}.arp_announce"), "2")?;
    }
    Ok(())
}

/// Starts the HTTP server named `name` on `port` in `ns`; returns once it listens.
pub fn start_http(
    ns: &Netns,
    script: &std::path::Path,
    name: &str,
    port: u16,
) -> anyhow::Result<Proc> {
    let port = port.to_string();
    let proc = ns.spawn(&[
        "/usr/bin/python3",
        &script.display().to_string(),
        name,
        &port,
    ])?;
    proc.wait_for_line(Duration::from_secs(10), |l| l.contains("ready"))
        .with_context(|| format!("HTTP server {name} did not start"))?;
    Ok(proc)
}

/// A client connection (made inside the client's namespace).
pub struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    /// Connects from `ns` to `to` within `timeout`.
    pub fn connect(ns: &Netns, to: SocketAddr, timeout: Duration) -> anyhow::Result<Client> {
        let stream = in_netns(ns, move || TcpStream::connect_timeout(&to, timeout))?
            .with_context(|| format!("connecting to {to}"))?;
        Client::over(stream, timeout)
    }

    /// Connects from `ns` to `to` with source address `from` (one of the namespace's
    /// own IPv4 addresses), as one of many clients would: what source hashing sees.
    pub fn connect_from(
        ns: &Netns,
        from: Ipv4Addr,
        to: SocketAddrV4,
        timeout: Duration,
    ) -> anyhow::Result<Client> {
        let stream = in_netns(ns, move || connect_bound(from, to, timeout))?
            .with_context(|| format!("connecting from {from} to {to}"))?;
        Client::over(stream, timeout)
    }

    /// `n` requests on this connection, `pause` apart, each answered by `server`.
    pub fn stays_on(&mut self, server: &str, n: usize, pause: Duration) -> anyhow::Result<()> {
        for i in 0..n {
            let answer = self
                .get()
                .with_context(|| format!("request {i} of {n} on the open connection"))?;
            if answer != server {
                bail!("the open connection moved from {server} to {answer} (request {i})");
            }
            std::thread::sleep(pause);
        }
        Ok(())
    }

    /// A client on a connected `stream`, each read and write bounded by `timeout`.
    fn over(stream: TcpStream, timeout: Duration) -> anyhow::Result<Client> {
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(Client {
            reader: BufReader::new(stream),
        })
    }

    /// One `GET /` on this connection; the body's first line (the server's name).
    pub fn get(&mut self) -> anyhow::Result<String> {
        self.reader
            .get_mut()
            .write_all(b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n")
            .context("sending the request")?;
        let mut status = String::new();
        self.reader
            .read_line(&mut status)
            .context("reading the status line")?;
        if !status.starts_with("HTTP/1.1 200") {
            bail!("unexpected status line {status:?}");
        }
        let mut length = None;
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                bail!("connection closed in the headers");
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(value) = line
                .split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .map(|(_, v)| v.trim().to_owned())
            {
                length = Some(value.parse::<usize>()?);
            }
        }
        let mut body = vec![0u8; length.context("no Content-Length")?];
        self.reader.read_exact(&mut body)?;
        Ok(String::from_utf8_lossy(&body).trim().to_owned())
    }
}

/// A TCP connection from `from` (bound before connecting, which std's `TcpStream`
/// cannot do) to `to`; the connect waits at most `timeout` (SO_SNDTIMEO).
fn connect_bound(
    from: Ipv4Addr,
    to: SocketAddrV4,
    timeout: Duration,
) -> std::io::Result<TcpStream> {
    let sockaddr = |addr: SocketAddrV4| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(addr.ip().octets()),
        },
        sin_zero: [0; 8],
    };
    let check = |rc: libc::c_int| {
        if rc < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(rc)
        }
    };
    // SAFETY: plain socket(2); the fd is owned by `stream` from here on, which closes
    // it on every return.
    let fd =
        check(unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
    let stream = unsafe { <TcpStream as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    let len = |size: usize| size as libc::socklen_t;
    // SAFETY: each pointer is to a live value of the size passed with it.
    unsafe {
        check(libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&tv as *const libc::timeval).cast(),
            len(std::mem::size_of::<libc::timeval>()),
        ))?;
        let local = sockaddr(SocketAddrV4::new(from, 0));
        check(libc::bind(
            fd,
            (&local as *const libc::sockaddr_in).cast(),
            len(std::mem::size_of::<libc::sockaddr_in>()),
        ))?;
        let remote = sockaddr(to);
        check(libc::connect(
            fd,
            (&remote as *const libc::sockaddr_in).cast(),
            len(std::mem::size_of::<libc::sockaddr_in>()),
        ))?;
    }
    Ok(stream)
}

/// One request on a fresh connection: the serving real server's name.
pub fn get_once(ns: &Netns, to: SocketAddr, timeout: Duration) -> anyhow::Result<String> {
    Client::connect(ns, to, timeout)?.get()
}
