//! The load balancer's configuration model (keepalived `virtual_server`,
//! `virtual_server_group`, `real_server` and their checkers), after validation.
//!
//! Both front ends (keepalived.conf and TOML) produce these through the draft stage, as
//! they do for VRRP instances. The data plane (XDP, `io::bpf::lb`) reads
//! [`VirtualServer::addresses`], [`VirtualServer::protocol`], [`VirtualServer::algo`] and
//! the real servers' addresses; the checkers (`lb::check`) read the rest.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::Command;

/// Most virtual servers one daemon balances (the XDP service table's size).
pub const MAX_VIRTUAL_SERVERS: usize = 256;

/// Most real servers one virtual server has (the XDP program keeps 64 backend slots
/// per service, one of them for the sorry server).
pub const MAX_REAL_SERVERS_PER_SERVICE: usize = 63;

/// Transport protocol a virtual server balances (keepalived `protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LbProtocol {
    /// TCP (keepalived's default).
    #[default]
    Tcp,
    /// UDP.
    Udp,
}

/// Scheduler (keepalived `lb_algo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LbAlgo {
    /// Round robin: weights only decide 0 (drained) or not.
    Rr,
    /// Weighted round robin (keepalived's default).
    #[default]
    Wrr,
    /// Least connections, as far as a DR balancer sees them (client → server half).
    Lc,
    /// Weighted least connections.
    Wlc,
    /// Source hashing: a client address always maps to the same real server while the
    /// pool is unchanged.
    Sh,
    /// Maglev consistent hashing (IPVS `mh`): a pool change moves only the flows of the
    /// servers that changed, so both VRRP nodes agree on every flow.
    Mh,
}

/// Forwarding method (keepalived `lb_kind`). Validation refuses NAT (a DR/XDP balancer
/// never sees the replies it would have to rewrite).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LbKind {
    /// Direct routing: rewrite the destination MAC, keep the IP packet as it is.
    #[default]
    Dr,
    /// IP-in-IP tunnelling (RFC 2003) to the real server.
    Tun,
}

/// Hash flags of the `sh` and `mh` schedulers (keepalived `sh-port` / `mh-port`,
/// `sh-fallback` / `mh-fallback`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct HashFlags {
    /// Hash the client's source port as well as its address.
    pub port: bool,
    /// When the chosen server has weight 0 (drained/inhibited), pick another one.
    pub fallback: bool,
}

/// One virtual service: an address (or a group's addresses), a port, a protocol, and
/// the pool behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualServer {
    /// Display name: `192.0.2.100:80/tcp`, `[2001:db8::1]:80/udp` or `group NAME`.
    pub name: String,
    /// The (address, port) pairs this service answers on: one for a plain
    /// `virtual_server ADDR PORT`, every member for a `virtual_server group NAME`
    /// (port 0 means every port, as in keepalived for a persistent service).
    pub addresses: Vec<SocketAddr>,
    /// `protocol`.
    pub protocol: LbProtocol,
    /// `lb_algo`.
    pub algo: LbAlgo,
    /// `sh-*` / `mh-*` flags.
    pub hash: HashFlags,
    /// `lb_kind`.
    pub kind: LbKind,
    /// `delay_loop`: time between two checks of a real server (default 60 s, as
    /// keepalived). A checker may override it.
    pub delay_loop: Duration,
    /// `persistence_timeout`: keep a client on one real server while it keeps sending
    /// within this time. `None`: no persistence.
    pub persistence_timeout: Option<Duration>,
    /// `persistence_granularity` as a prefix length: clients in the same prefix share a
    /// real server (default /32, /128).
    pub persistence_prefix: Option<u8>,
    /// `sorry_server`: where traffic goes when no real server is alive (or quorum is
    /// lost).
    pub sorry_server: Option<SocketAddr>,
    /// `sorry_server_inhibit`: keep the sorry server in the pool with weight 0 instead
    /// of adding and removing it.
    pub sorry_server_inhibit: bool,
    /// `alpha`: real servers start failed and join after their first good check.
    pub alpha: bool,
    /// `omega`: run `notify_down` / `quorum_down` for every server still up when vipd
    /// stops or the service is removed.
    pub omega: bool,
    /// `quorum`: least total weight of alive real servers for the pool to serve
    /// (default 1).
    pub quorum: u32,
    /// `hysteresis`: the quorum is lost below `quorum - hysteresis` and regained at
    /// `quorum + hysteresis`.
    pub hysteresis: u32,
    /// `quorum_up`: run when the quorum is gained.
    pub quorum_up: Option<Command>,
    /// `quorum_down`: run when the quorum is lost.
    pub quorum_down: Option<Command>,
    /// `virtualhost`: default HTTP `Host:` for this service's HTTP_GET / SSL_GET checks.
    pub virtualhost: Option<String>,
    /// vipd extension: the interface the service's traffic arrives on. `None`: every
    /// interface vipd attaches XDP to (those of its VRRP instances).
    pub interface: Option<String>,
    /// L3 mode: the service's addresses are announced over BGP while its pool can serve
    /// (docs/l3.md); `None`: not announced.
    pub announce: Option<super::announce::Announce>,
    /// The pool, in file order.
    pub real_servers: Vec<RealServer>,
}

/// One real server of a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServer {
    /// Address and port. In DR mode the port must be the virtual server's (a DR balancer
    /// cannot rewrite it); validation says so.
    pub address: SocketAddr,
    /// `weight` (default 1). 0 drains: no new flows, existing flows go on.
    pub weight: u32,
    /// `inhibit_on_failure`: a failed server stays in the pool with weight 0 instead of
    /// leaving it (existing flows go on).
    pub inhibit_on_failure: bool,
    /// `notify_up`.
    pub notify_up: Option<Command>,
    /// `notify_down`.
    pub notify_down: Option<Command>,
    /// Health checks; the server is alive while all of them pass. No checker: always
    /// alive.
    pub checkers: Vec<Checker>,
}

/// One health check of a real server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checker {
    /// What is checked.
    pub kind: CheckKind,
    /// `connect_ip` (default: the real server's address).
    pub connect_ip: Option<IpAddr>,
    /// `connect_port` (default: the real server's port).
    pub connect_port: Option<u16>,
    /// `bindto`: source address of the check's connection.
    pub bind_to: Option<IpAddr>,
    /// `connect_timeout` (default 5 s): connect plus response, as keepalived.
    pub connect_timeout: Duration,
    /// `retry` / `nb_get_retry` (keepalived's defaults: 1, MISC_CHECK 0): how many times
    /// a failed attempt of a passing checker is retried (after `delay_before_retry`)
    /// before the checker fails, so `retry 3` fails on the fourth failure in a row.
    pub retry: u32,
    /// `delay_before_retry` (default 1 s): time between a failed attempt and its retry.
    pub delay_before_retry: Duration,
    /// Per-checker `delay_loop`; `None`: the virtual server's.
    pub delay_loop: Option<Duration>,
    /// `warmup`: a random delay up to this before the first check, so checks spread.
    pub warmup: Option<Duration>,
}

/// The kinds of health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// `HTTP_GET` (`tls: false`) or `SSL_GET` (`tls: true`).
    Http(HttpCheck),
    /// `TCP_CHECK`: a TCP connect succeeds within `connect_timeout`.
    Tcp,
    /// `MISC_CHECK`: a command.
    Misc(MiscCheck),
    /// `UDP_CHECK`: a datagram to the port.
    Udp(UdpCheck),
    /// `PING_CHECK`: an ICMP (ICMPv6) echo answered within `connect_timeout`.
    Ping,
    /// `DNS_CHECK`: a query answered without error within `connect_timeout`.
    Dns(DnsCheck),
    /// `SMTP_CHECK`: greeting 220, `HELO` answered 250, then `QUIT`, all within
    /// `connect_timeout`.
    Smtp(SmtpCheck),
    /// `FILE_CHECK`: a track file's value, as keepalived reads it.
    File(FileCheck),
    /// `BFD_CHECK`: the BFD session of this name (a `bfd_instance`) is Up.
    Bfd(String),
}

/// A FILE_CHECK, keepalived's rules: with `weight` 0 a non-zero value fails the server
/// (with `reverse`, a zero value does); with a weight W the server stays up and its
/// weight becomes its configured weight + value × W (− with `reverse`), kept within
/// 0..=65535. A missing file reads as 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCheck {
    /// The `track_file` block's name.
    pub name: String,
    /// Its file.
    pub path: std::path::PathBuf,
    /// `weight` (default: the track file's).
    pub weight: i32,
    /// `weight W reverse`.
    pub reverse: bool,
}

impl FileCheck {
    /// Whether the server is up, and its weight when this check sets one, for a file
    /// value `value` and the server's configured `weight`.
    pub fn effect(&self, value: i64, weight: u32) -> (bool, Option<u32>) {
        if self.weight == 0 {
            return ((value != 0) == self.reverse, None);
        }
        let sign = if self.reverse { -1 } else { 1 };
        let delta = value
            .saturating_mul(i64::from(self.weight))
            .saturating_mul(sign);
        let adjusted = i64::from(weight).saturating_add(delta).clamp(0, 65535);
        (true, Some(u32::try_from(adjusted).unwrap_or(0)))
    }
}

/// An SMTP_CHECK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpCheck {
    /// `helo_name` (default `localhost`).
    pub helo_name: String,
}

/// A UDP_CHECK, with keepalived's rules: the `payload` datagram (empty by default) goes
/// to the port. Without `require_reply` the check passes unless the host answers that
/// the port is unreachable (ICMP) within `connect_timeout`; with it, a reply must come
/// within that time, `min_reply_length..=max_reply_length` bytes long, whose first bytes
/// match `reply` where one is given (as far as the reply goes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpCheck {
    /// `payload`: what to send.
    pub payload: Vec<u8>,
    /// `require_reply`.
    pub require_reply: bool,
    /// The data after `require_reply` (vipd's TOML: `reply`).
    pub reply: Option<HexPattern>,
    /// `min_reply_length` (default 0).
    pub min_reply_length: u16,
    /// `max_reply_length` (default 255, as keepalived).
    pub max_reply_length: u16,
}

/// keepalived's hex strings (`payload`, `require_reply`): pairs of hex digits, spaces
/// between groups ignored, a lone digit before a space one byte; in a reply, `x`
/// matches any nibble.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HexPattern {
    /// The bytes (0 where a nibble is a wildcard).
    pub bytes: Vec<u8>,
    /// Per byte, the bits that match anything.
    pub wildcard: Vec<u8>,
}

impl HexPattern {
    /// Parses `text`; `wildcards` allows `x`. Hand-written: keepalived's own format
    /// (`read_hex_str`), which no hex crate reads (lone digits, wildcards).
    pub fn parse(text: &str, wildcards: bool) -> Result<HexPattern, String> {
        let mut pattern = HexPattern {
            bytes: Vec::new(),
            wildcard: Vec::new(),
        };
        for group in text.split_ascii_whitespace() {
            let digits: Vec<char> = group.chars().collect();
            for pair in digits.chunks(2) {
                let (mut byte, mut mask) = (0u8, 0u8);
                for &c in pair {
                    let (value, any) = match c.to_digit(16) {
                        Some(v) => (v as u8, 0),
                        None if wildcards && c.eq_ignore_ascii_case(&'x') => (0, 0x0f),
                        None => return Err(format!("{c:?} is not a hex digit")),
                    };
                    byte = byte << 4 | value;
                    mask = mask << 4 | any;
                }
                pattern.bytes.push(byte);
                pattern.wildcard.push(mask);
            }
        }
        if pattern.bytes.is_empty() {
            return Err("no hex digits".into());
        }
        if pattern.bytes.len() > usize::from(u16::MAX) {
            return Err("longer than 65535 bytes".into());
        }
        Ok(pattern)
    }

    /// Whether `data` matches, byte by byte, as far as both go (keepalived compares
    /// only the shorter length).
    pub fn matches(&self, data: &[u8]) -> bool {
        self.bytes
            .iter()
            .zip(&self.wildcard)
            .zip(data)
            .all(|((want, any), got)| (want ^ got) & !any == 0)
    }

    /// The pattern as keepalived and vipd write it: two digits a byte, `x` for a
    /// wildcard nibble.
    pub fn render(&self) -> String {
        let nibble = |value: u8, any: bool| {
            if any {
                'x'
            } else {
                char::from_digit(u32::from(value), 16).unwrap_or('0')
            }
        };
        self.bytes
            .iter()
            .zip(&self.wildcard)
            .flat_map(|(b, w)| [nibble(b >> 4, w >> 4 != 0), nibble(b & 0x0f, w & 0x0f != 0)])
            .collect()
    }
}

/// A DNS_CHECK: a recursive query for `name` (type `query_type`, class IN) to the
/// server's port over UDP; it passes on a response with the query's ID and RCODE 0
/// (NOERROR), as keepalived's. Any other RCODE fails it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsCheck {
    /// `type` (vipd's TOML: `query_type`; default SOA).
    pub query_type: DnsType,
    /// `name` (vipd's TOML: `query_name`; default `.`, the root).
    pub name: String,
}

/// The query types keepalived's DNS_CHECK knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsType {
    /// A (1).
    A,
    /// NS (2).
    Ns,
    /// CNAME (5).
    Cname,
    /// SOA (6).
    Soa,
    /// MX (15).
    Mx,
    /// TXT (16).
    Txt,
    /// AAAA (28).
    Aaaa,
}

impl DnsType {
    /// Every type, with its name and its number (RFC 1035 §3.2.2, RFC 3596).
    pub const ALL: [(DnsType, &'static str, u16); 7] = [
        (DnsType::A, "A", 1),
        (DnsType::Ns, "NS", 2),
        (DnsType::Cname, "CNAME", 5),
        (DnsType::Soa, "SOA", 6),
        (DnsType::Mx, "MX", 15),
        (DnsType::Txt, "TXT", 16),
        (DnsType::Aaaa, "AAAA", 28),
    ];

    /// The type named `text` (any case).
    pub fn from_name(text: &str) -> Option<DnsType> {
        Self::ALL
            .iter()
            .find(|(_, name, _)| name.eq_ignore_ascii_case(text))
            .map(|(t, _, _)| *t)
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(t, _, _)| *t == self)
            .map_or("SOA", |(_, name, _)| name)
    }

    /// Its number on the wire.
    pub fn code(self) -> u16 {
        Self::ALL
            .iter()
            .find(|(t, _, _)| *t == self)
            .map_or(6, |(_, _, code)| *code)
    }
}

/// An HTTP_GET / SSL_GET check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    /// SSL_GET: TLS (rustls), certificates not verified (as keepalived).
    pub tls: bool,
    /// Checker-level `virtualhost` (overrides the virtual server's).
    pub virtualhost: Option<String>,
    /// `url` blocks; every one must pass.
    pub urls: Vec<UrlCheck>,
}

/// One `url { … }` of an HTTP check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlCheck {
    /// `path`, e.g. `/` or `/health`.
    pub path: String,
    /// `status_code`: accepted statuses. Empty: any 2xx (keepalived's default).
    pub status_codes: Vec<u16>,
    /// `digest`: lower-case hex MD5 of the body.
    pub digest: Option<String>,
    /// URL-level `virtualhost`.
    pub virtualhost: Option<String>,
}

/// A MISC_CHECK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MiscCheck {
    /// `misc_path`.
    pub command: Command,
    /// `misc_timeout` (default: the `delay_loop` in force, as keepalived).
    pub timeout: Duration,
    /// `misc_dynamic`: exit status 0 = up, weight unchanged; 1 = down; 2..=255 = up with
    /// weight `status - 2` (keepalived's rules; `proto::lb::health::misc_exit_status`).
    pub dynamic: bool,
}

impl VirtualServer {
    /// A TCP direct-routing service on `address` over `real_servers` (weight 1, no
    /// checks), with keepalived's defaults for everything else: what a minimal
    /// `virtual_server ADDR PORT { lb_algo ALGO; real_server … }` block gives.
    pub fn direct_routing(address: SocketAddr, algo: LbAlgo, real_servers: &[SocketAddr]) -> Self {
        use super::validate::defaults;
        VirtualServer {
            name: format!("{address}/tcp"),
            addresses: vec![address],
            protocol: LbProtocol::Tcp,
            algo,
            hash: HashFlags::default(),
            kind: LbKind::Dr,
            delay_loop: defaults::LB_DELAY_LOOP,
            persistence_timeout: None,
            persistence_prefix: None,
            sorry_server: None,
            sorry_server_inhibit: false,
            alpha: false,
            omega: false,
            quorum: defaults::LB_QUORUM,
            hysteresis: 0,
            quorum_up: None,
            quorum_down: None,
            virtualhost: None,
            interface: None,
            announce: None,
            real_servers: real_servers
                .iter()
                .map(|&address| RealServer {
                    address,
                    weight: defaults::LB_WEIGHT,
                    inhibit_on_failure: false,
                    notify_up: None,
                    notify_down: None,
                    checkers: Vec::new(),
                })
                .collect(),
        }
    }
}
