//! Validation of the load balancer's configuration: [`DraftVirtualServer`] →
//! [`VirtualServer`], with keepalived's defaults, the rules a DR/XDP balancer imposes
//! (ports, address families, table sizes) and warnings about the DR pitfalls a config
//! shows (a virtual address this node does not own, a real server that is a VIP).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::super::draft::{
    DraftChecker, DraftEndpoint, DraftRealServer, DraftUrl, DraftVirtualServer, DraftVsGroup,
    DraftVsTarget, Sourced,
};
use super::super::lb::{
    CheckKind, Checker as HealthChecker, DnsCheck, DnsType, FileCheck, HashFlags, HexPattern,
    HttpCheck, LbAlgo, LbKind, LbProtocol, MAX_REAL_SERVERS_PER_SERVICE, MAX_VIRTUAL_SERVERS,
    MiscCheck, RealServer, SmtpCheck, UdpCheck, UrlCheck, VirtualServer,
};
use super::super::{AddressFamily, ErrorKind, InstanceSpec, WarningKind};
use super::{Checker, MAX_TIMER, defaults};

/// Longest `persistence_timeout` accepted (a day; IPVS takes longer, nobody needs it).
const MAX_PERSISTENCE: Duration = Duration::from_secs(24 * 3600);

/// keepalived's (and IPVS's) range of real server weights.
const WEIGHT_RANGE: (i64, i64) = (0, 65535);

/// Most retries a checker may make (a sanity bound).
const RETRY_RANGE: (i64, i64) = (0, 1000);

/// Most addresses one `virtual_server_group` range may expand to.
const MAX_RANGE_LEN: u32 = 256;

/// What is wrong with a virtual server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LbError {
    /// `lb_kind NAT`.
    #[error(
        "lb_kind NAT is not supported: a direct-routing (XDP) balancer only sees the \
         client's packets, the real servers answer the client directly, so there are no \
         replies to rewrite; use DR (with `vipd real-server` on each real server)"
    )]
    NatNotSupported,
    /// Virtual servers, but XDP is off everywhere.
    #[error(
        "virtual_server needs vipd's XDP program, which forwards the traffic, but every \
         vrrp_instance has `xdp off`: set `xdp` to auto, native or generic on the instance \
         that holds the virtual address, or name the interface the service's traffic \
         arrives on (`interface`)"
    )]
    NoXdp,
    /// `lb_kind TUN`.
    #[error(
        "lb_kind TUN is not supported yet: vipd's XDP data plane forwards by direct routing \
         only (no IP-in-IP encapsulation); use DR, with the real servers on a network this \
         balancer is connected to"
    )]
    TunNotSupported,
    /// An IPVS scheduler vipd does not implement, or an unknown one.
    #[error("lb_algo {value:?} is not supported; vipd schedules with rr, wrr, lc, wlc, sh or mh")]
    UnsupportedAlgo {
        /// The value as written.
        value: String,
    },
    /// `protocol SCTP`.
    #[error("protocol SCTP is not supported; use TCP or UDP")]
    SctpNotSupported,
    /// A `virtual_server` with neither or both of an address and a group.
    #[error("a virtual_server needs `address` and `port`, or `group` (not both)")]
    NoTarget,
    /// `group NAME` names no `virtual_server_group`.
    #[error("no virtual_server_group named {name:?}")]
    UnknownGroup {
        /// The name as written.
        name: String,
    },
    /// A group with no usable member.
    #[error("virtual_server_group {name:?} has no address")]
    EmptyGroup {
        /// The group.
        name: String,
    },
    /// A group range that does not parse.
    #[error("{text:?} is not an address range like 192.0.2.10-20 or 2001:db8::10-1f ({reason})")]
    BadRange {
        /// The text as written.
        text: String,
        /// Why.
        reason: &'static str,
    },
    /// A real server or sorry server port a DR/TUN balancer cannot reach.
    #[error(
        "port {real} differs from the virtual server's port {virtual_port}: a DR or TUN \
         balancer forwards the packet unchanged and cannot rewrite the port; use port \
         {virtual_port} (or 0 and connect_port for the checks)"
    )]
    PortMismatch {
        /// The real server's port.
        real: u16,
        /// The virtual server's.
        virtual_port: u16,
    },
    /// Port 0 without persistence.
    #[error("port 0 (every port) needs persistence_timeout, as in IPVS")]
    PortZeroWithoutPersistence,
    /// The same address, port and protocol in two virtual servers.
    #[error("{address} {protocol} is also balanced by virtual_server {other}")]
    DuplicateService {
        /// The service address.
        address: SocketAddr,
        /// `TCP` or `UDP`.
        protocol: &'static str,
        /// The other virtual server's name.
        other: String,
    },
    /// The same real server twice in one virtual server.
    #[error("real server {address} is listed twice")]
    DuplicateRealServer {
        /// The address.
        address: SocketAddr,
    },
    /// More services than the XDP service table holds.
    #[error(
        "{count} virtual services (every address and port, groups expanded); vipd balances \
         at most {max}"
    )]
    TooManyServices {
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// More real servers than one pool holds.
    #[error("{count} real servers; a virtual server holds at most {max} (and a sorry server)")]
    TooManyRealServers {
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A real server, sorry server or group member of another family.
    #[error(
        "{address} is {found} but the virtual server is {expected}: a DR balancer forwards \
         the packet unchanged, so every address of a service is of one family"
    )]
    MixedFamilies {
        /// The offending address.
        address: IpAddr,
        /// Its family.
        found: AddressFamily,
        /// The service's family.
        expected: AddressFamily,
    },
    /// A checker kind that is not one of the four.
    #[error(
        "{kind:?} is not a checker vipd runs; use HTTP_GET, SSL_GET, TCP_CHECK, MISC_CHECK, \
         UDP_CHECK, PING_CHECK, DNS_CHECK, SMTP_CHECK, FILE_CHECK or BFD_CHECK"
    )]
    UnknownChecker {
        /// The kind as written.
        kind: String,
    },
    /// A BFD_CHECK without the session's name.
    #[error(
        "BFD_CHECK names no BFD session: add `name NAME` (keepalived.conf) or `bfd = \"NAME\"` \
         (TOML), NAME a bfd_instance / [bfd.NAME]"
    )]
    BfdCheckWithoutSession,
    /// A key of one checker kind in another.
    #[error("`{key}` does not apply to {kind}")]
    KeyNotForChecker {
        /// The key.
        key: &'static str,
        /// The checker kind.
        kind: &'static str,
    },
    /// An HTTP check without a url.
    #[error("{kind} needs at least one url {{ path … }}")]
    NoUrl {
        /// `HTTP_GET` or `SSL_GET`.
        kind: &'static str,
    },
    /// A bad `status_code`.
    #[error("{text:?} is not an HTTP status code or range of codes (100-599)")]
    BadStatusCode {
        /// The text as written.
        text: String,
    },
    /// A bad `digest`.
    #[error("{text:?} is not an MD5 digest (32 hexadecimal digits)")]
    BadDigest {
        /// The text as written.
        text: String,
    },
    /// A bad `persistence_granularity`.
    #[error("{text:?} is not a netmask (255.255.255.0) or a prefix length of at most {max}")]
    BadGranularity {
        /// The text as written.
        text: String,
        /// Longest prefix of the family.
        max: u8,
    },
    /// An HTTP path that does not start with `/`.
    #[error("{path:?} must start with /")]
    BadPath {
        /// The path as written.
        path: String,
    },
    /// A bad UDP_CHECK hex string.
    #[error("{text:?} is not a hex string ({why}){}", if *.wildcards { "; x matches any digit" } else { "" })]
    BadHex {
        /// The text as written.
        text: String,
        /// What is wrong.
        why: String,
        /// Whether `x` wildcards are allowed here.
        wildcards: bool,
    },
    /// `min_reply_length` above `max_reply_length`.
    #[error("min_reply_length {min} is above max_reply_length {max}: no reply could pass")]
    ReplyLengths {
        /// `min_reply_length`.
        min: u16,
        /// `max_reply_length`.
        max: u16,
    },
    /// A DNS_CHECK type vipd does not know.
    #[error("DNS query type {text:?} is not one of A, NS, CNAME, SOA, MX, TXT, AAAA")]
    BadDnsType {
        /// The text as written.
        text: String,
    },
    /// An empty SMTP_CHECK `helo_name`, or one with a line break.
    #[error("{name:?} is not a HELO name: one line, not empty")]
    BadHeloName {
        /// The name as written.
        name: String,
    },
    /// A DNS_CHECK name that cannot be put in a query.
    #[error("{name:?} is not a DNS name: {why}")]
    BadDnsName {
        /// The name as written.
        name: String,
        /// What is wrong.
        why: &'static str,
    },
}

/// What looks wrong in a virtual server but still loads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LbWarning {
    /// A DR/TUN virtual address that no VRRP instance holds.
    #[error(
        "{address} is not a virtual_ipaddress of any vrrp_instance: the balancer only \
         receives traffic for addresses it owns (add it to an instance, unless it reaches \
         this host another way)"
    )]
    VipNotOwned {
        /// The address.
        address: IpAddr,
    },
    /// A real server whose address is one of our VIPs.
    #[error(
        "real server {address} is a virtual address of instance {instance}: traffic sent \
         to it comes back to the balancer"
    )]
    RealServerIsVip {
        /// The address.
        address: IpAddr,
        /// The instance holding it.
        instance: String,
    },
    /// `persistence_timeout` with `mh` (without `mh-port`).
    #[error(
        "persistence_timeout with lb_algo mh is redundant: Maglev already sends every \
         connection of a client to the same real server while the pool is unchanged"
    )]
    PersistenceWithMh,
    /// `sh-*` / `mh-*` flags with another scheduler.
    #[error("sh-port/mh-port and sh-fallback/mh-fallback only affect lb_algo sh and mh")]
    HashFlagsUnused,
    /// A hysteresis so large the quorum can never be lost.
    #[error("hysteresis {hysteresis} is not below quorum {quorum}: the quorum is then never lost")]
    HysteresisTooLarge {
        /// `hysteresis`.
        hysteresis: u32,
        /// `quorum`.
        quorum: u32,
    },
    /// A virtual server with no real server and no sorry server.
    #[error("no real_server and no sorry_server: the service drops every packet")]
    NoRealServers,
}

/// Why `name` cannot be a query's QNAME (RFC 1035 §2.3.4: labels of 1 to 63 octets, 255
/// octets in all), if it cannot. `.` is the root; a final dot is optional.
fn dns_name_problem(name: &str) -> Option<&'static str> {
    if name == "." {
        return None;
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Some("empty");
    }
    if name.len() > 253 {
        return Some("longer than 255 octets on the wire");
    }
    if name
        .split('.')
        .any(|label| label.is_empty() || label.len() > 63)
    {
        return Some("each label (between dots) is 1 to 63 characters");
    }
    if !name.is_ascii() {
        return Some("not ASCII (write an IDN in its xn-- form)");
    }
    None
}

/// keepalived's checker keywords, as written, → (kind name, what it is).
fn checker_kind(text: &str) -> Option<(&'static str, Kind)> {
    [
        ("HTTP_GET", Kind::Http { tls: false }),
        ("SSL_GET", Kind::Http { tls: true }),
        ("TCP_CHECK", Kind::Tcp),
        ("MISC_CHECK", Kind::Misc),
        ("UDP_CHECK", Kind::Udp),
        ("PING_CHECK", Kind::Ping),
        ("DNS_CHECK", Kind::Dns),
        ("SMTP_CHECK", Kind::Smtp),
        ("FILE_CHECK", Kind::File),
        ("BFD_CHECK", Kind::Bfd),
    ]
    .into_iter()
    .find(|(name, _)| name.eq_ignore_ascii_case(text.trim()))
}

#[derive(Clone, Copy)]
enum Kind {
    Http { tls: bool },
    Tcp,
    Misc,
    Udp,
    Ping,
    Dns,
    Smtp,
    File,
    Bfd,
}

impl Checker {
    fn lb_error(&mut self, at: Option<super::super::Location>, key: &str, error: LbError) {
        self.error(at, key, ErrorKind::Lb(error));
    }

    fn lb_warn(&mut self, at: Option<super::super::Location>, key: &str, warning: LbWarning) {
        self.warn(at, key, WarningKind::Lb(warning));
    }

    /// Every virtual server, then the rules between them and the VRRP instances.
    pub(super) fn virtual_servers(
        &mut self,
        servers: &[DraftVirtualServer],
        groups: &[DraftVsGroup],
        instances: &[InstanceSpec],
    ) -> Option<Vec<VirtualServer>> {
        let errors_before = self.errors.len();
        let groups = self.groups(groups);
        let mut out = Vec::new();
        for (index, draft) in servers.iter().enumerate() {
            let key = format!("virtual_server[{index}]");
            if let Some(vs) = self.virtual_server(draft, &groups, &key) {
                out.push((vs, draft, key));
            }
        }
        let mut services: HashMap<(SocketAddr, LbProtocol), String> = HashMap::new();
        let mut count = 0;
        for (vs, draft, key) in &out {
            for address in &vs.addresses {
                count += 1;
                if let Some(other) = services.insert((*address, vs.protocol), vs.name.clone()) {
                    self.lb_error(
                        draft.at,
                        key,
                        LbError::DuplicateService {
                            address: *address,
                            protocol: protocol_name(vs.protocol),
                            other,
                        },
                    );
                }
            }
        }
        if count > MAX_VIRTUAL_SERVERS {
            let at = out.get(MAX_VIRTUAL_SERVERS.min(out.len().saturating_sub(1)));
            self.lb_error(
                at.and_then(|(_, d, _)| d.at),
                "virtual_server",
                LbError::TooManyServices {
                    count,
                    max: MAX_VIRTUAL_SERVERS,
                },
            );
        }
        let vips: HashMap<IpAddr, &str> = instances
            .iter()
            .flat_map(|i| {
                i.virtual_addresses
                    .iter()
                    .map(|v| (v.address, i.name.as_str()))
            })
            .collect();
        let xdp_interfaces: HashSet<&str> = instances
            .iter()
            .filter(|i| i.xdp != crate::config::XdpMode::Off)
            .map(|i| i.interface.as_str())
            .collect();
        // Where the program runs: the instances' XDP interfaces and every service's
        // `interface`; with neither, the daemon attaches it where the real servers are
        // (a director without VRRP). Instances that all turned XDP off, with no service
        // naming an interface, are a contradiction to point out.
        let named = out.iter().any(|(vs, _, _)| vs.interface.is_some());
        if xdp_interfaces.is_empty()
            && !instances.is_empty()
            && !named
            && let Some((_, draft, key)) = out.first()
        {
            self.lb_error(draft.at, key, LbError::NoXdp);
        }
        for (vs, draft, key) in &out {
            let mut warned = HashSet::new();
            // An announced service's addresses reach this host by routing (L3 mode), as
            // every address of a director without VRRP does (a static address or route,
            // ECMP from a router upstream).
            let owned_elsewhere = vs.announce.is_some() || instances.is_empty();
            for address in &vs.addresses {
                if !owned_elsewhere
                    && !vips.contains_key(&address.ip())
                    && warned.insert(address.ip())
                {
                    self.lb_warn(
                        draft.at,
                        key,
                        LbWarning::VipNotOwned {
                            address: address.ip(),
                        },
                    );
                }
            }
            for (real, real_draft) in vs.real_servers.iter().zip(&draft.real_servers) {
                if let Some(instance) = vips.get(&real.address.ip()) {
                    self.lb_warn(
                        real_draft.endpoint.address.at,
                        key,
                        LbWarning::RealServerIsVip {
                            address: real.address.ip(),
                            instance: (*instance).to_owned(),
                        },
                    );
                }
            }
        }
        (self.errors.len() == errors_before).then(|| out.into_iter().map(|(vs, ..)| vs).collect())
    }

    /// Group name → its expanded addresses (`None` for a group with errors, which were
    /// reported).
    fn groups(&mut self, groups: &[DraftVsGroup]) -> HashMap<String, Option<Vec<SocketAddr>>> {
        let mut out = HashMap::new();
        for group in groups {
            let key = format!("virtual_server_group.{}", group.name.value);
            if out.contains_key(&group.name.value) {
                self.error(
                    group.name.at,
                    &key,
                    ErrorKind::DuplicateName {
                        name: group.name.value.clone(),
                    },
                );
                continue;
            }
            let errors_before = self.errors.len();
            let mut addresses = Vec::new();
            for member in &group.members {
                let port = self.port(member.port.as_ref(), &key).unwrap_or(0);
                for ip in self.range(&member.address, &key) {
                    addresses.push(SocketAddr::new(ip, port));
                }
            }
            if addresses.is_empty() && self.errors.len() == errors_before {
                self.lb_error(
                    group.name.at,
                    &key,
                    LbError::EmptyGroup {
                        name: group.name.value.clone(),
                    },
                );
            }
            let ok = self.errors.len() == errors_before;
            out.insert(group.name.value.clone(), ok.then_some(addresses));
        }
        out
    }

    /// `192.0.2.10`, `192.0.2.10-20` (last octet) or `2001:db8::10-1f` (last group, hex).
    fn range(&mut self, text: &Sourced<String>, key: &str) -> Vec<IpAddr> {
        let Some((first, last)) = text.value.trim().rsplit_once('-') else {
            return self.address(text, key).into_iter().collect();
        };
        let bad = |this: &mut Self, reason| {
            this.lb_error(
                text.at,
                key,
                LbError::BadRange {
                    text: text.value.clone(),
                    reason,
                },
            );
            Vec::new()
        };
        let Ok(first) = first.parse::<IpAddr>() else {
            return bad(self, "the first address does not parse");
        };
        match first {
            IpAddr::V4(v4) => {
                let [a, b, c, d] = v4.octets();
                let Ok(end) = last.parse::<u8>() else {
                    return bad(self, "the end is not a last octet 0-255");
                };
                if end < d {
                    return bad(self, "the end is below the start");
                }
                (d..=end)
                    .map(|o| IpAddr::V4(Ipv4Addr::new(a, b, c, o)))
                    .collect()
            }
            IpAddr::V6(v6) => {
                let mut segments = v6.segments();
                let start = segments[7];
                let Ok(end) = u16::from_str_radix(last, 16) else {
                    return bad(self, "the end is not a last group 0-ffff");
                };
                if end < start {
                    return bad(self, "the end is below the start");
                }
                if u32::from(end - start) >= MAX_RANGE_LEN {
                    return bad(self, "more than 256 addresses");
                }
                (start..=end)
                    .map(|s| {
                        segments[7] = s;
                        IpAddr::V6(Ipv6Addr::from(segments))
                    })
                    .collect()
            }
        }
    }

    fn port(&mut self, value: Option<&Sourced<i64>>, key: &str) -> Option<u16> {
        self.int(value, key, (0, 65535), Some(0))
    }

    fn endpoint(&mut self, endpoint: &DraftEndpoint, key: &str) -> Option<SocketAddr> {
        let ip = self.address(&endpoint.address, key);
        let port = self.port(endpoint.port.as_ref(), key);
        Some(SocketAddr::new(ip?, port?))
    }

    fn virtual_server(
        &mut self,
        draft: &DraftVirtualServer,
        groups: &HashMap<String, Option<Vec<SocketAddr>>>,
        key: &str,
    ) -> Option<VirtualServer> {
        let errors_before = self.errors.len();
        let protocol = self.protocol(draft.protocol.as_ref(), key);
        let (name, addresses) = match &draft.target {
            Some(DraftVsTarget::Endpoint(endpoint)) => {
                let address = self.endpoint(endpoint, key);
                let name = match (address, protocol) {
                    (Some(address), Some(protocol)) => {
                        format!("{address}/{}", protocol_name(protocol).to_lowercase())
                    }
                    _ => String::new(),
                };
                (name, address.map(|a| vec![a]))
            }
            Some(DraftVsTarget::Group(name)) => {
                let addresses = match groups.get(&name.value) {
                    Some(addresses) => addresses.clone(),
                    None => {
                        self.lb_error(
                            name.at,
                            key,
                            LbError::UnknownGroup {
                                name: name.value.clone(),
                            },
                        );
                        None
                    }
                };
                (format!("group {}", name.value), addresses)
            }
            None => {
                self.lb_error(draft.at, key, LbError::NoTarget);
                (String::new(), None)
            }
        };
        let key = if name.is_empty() {
            key.to_owned()
        } else {
            format!("virtual_server.{name:?}")
        };
        let key = key.as_str();
        let family = addresses
            .as_ref()
            .and_then(|a| a.first())
            .map(|a| AddressFamily::of(a.ip()));
        if let (Some(addresses), Some(family)) = (&addresses, family) {
            for address in addresses {
                self.service_family(address.ip(), family, draft.at, key);
            }
        }
        let delay_loop = self.positive_duration(
            draft.delay_loop.as_ref(),
            &format!("{key}.delay_loop"),
            defaults::LB_DELAY_LOOP,
        );
        let algo = self.algo(draft.lb_algo.as_ref(), &format!("{key}.lb_algo"));
        let kind = self.lb_kind(draft.lb_kind.as_ref(), &format!("{key}.lb_kind"));
        let persistence_timeout = self
            .duration(
                draft.persistence_timeout.as_ref(),
                &format!("{key}.persistence_timeout"),
                MAX_PERSISTENCE,
                Duration::ZERO,
            )
            .map(|d| (!d.is_zero()).then_some(d));
        let persistence_prefix = match (&draft.persistence_granularity, family) {
            (Some(text), Some(family)) => self.granularity(text, family, key).map(Some),
            _ => Some(None),
        };
        let sorry_server = match &draft.sorry_server {
            Some(endpoint) => self
                .endpoint(endpoint, &format!("{key}.sorry_server"))
                .map(Some),
            None => Some(None),
        };
        let quorum = self.int(
            draft.quorum.as_ref(),
            &format!("{key}.quorum"),
            (1, i64::from(u32::MAX)),
            Some(defaults::LB_QUORUM),
        );
        let hysteresis = self.int(
            draft.hysteresis.as_ref(),
            &format!("{key}.hysteresis"),
            (0, i64::from(u32::MAX)),
            Some(0u32),
        );
        let quorum_up =
            self.optional_command(draft.quorum_up.as_ref(), &format!("{key}.quorum_up"));
        let quorum_down =
            self.optional_command(draft.quorum_down.as_ref(), &format!("{key}.quorum_down"));
        let interface = draft
            .interface
            .as_ref()
            .map(|i| self.interface_name(i, &format!("{key}.interface")));
        let virtualhost = self.virtualhost(draft.virtualhost.as_ref(), key);
        let announce = self.announce(
            &draft.announce,
            super::announce::AnnounceOwner::VirtualServer,
            draft.at,
            &|k: &str| format!("{key}.{k}"),
        );
        let hash = HashFlags {
            port: draft.hash_port.as_ref().is_some_and(|f| f.value),
            fallback: draft.hash_fallback.as_ref().is_some_and(|f| f.value),
        };
        let mut real_servers = Vec::new();
        let mut seen = HashSet::new();
        for real in &draft.real_servers {
            if let Some(real_server) = self.real_server(real, delay_loop, key) {
                if !seen.insert(real_server.address) {
                    self.lb_error(
                        real.endpoint.address.at,
                        key,
                        LbError::DuplicateRealServer {
                            address: real_server.address,
                        },
                    );
                }
                real_servers.push(real_server);
            }
        }
        let ports: Vec<u16> = addresses.iter().flatten().map(SocketAddr::port).collect();
        let endpoints = draft
            .real_servers
            .iter()
            .map(|r| &r.endpoint)
            .zip(real_servers.iter().map(|r| r.address))
            .chain(
                draft
                    .sorry_server
                    .iter()
                    .zip(sorry_server.iter().flatten().copied()),
            );
        let endpoints: Vec<(&DraftEndpoint, SocketAddr)> = endpoints.collect();
        for (endpoint, address) in endpoints {
            if let Some(family) = family {
                self.service_family(address.ip(), family, endpoint.address.at, key);
            }
            // A virtual port 0 takes every port: the real server's is then only the
            // checks' default.
            if let Some(&virtual_port) = ports
                .iter()
                .find(|&&p| p != 0 && address.port() != 0 && p != address.port())
            {
                self.lb_error(
                    endpoint.port.as_ref().and_then(|p| p.at),
                    key,
                    LbError::PortMismatch {
                        real: address.port(),
                        virtual_port,
                    },
                );
            }
        }
        // The sorry server has a slot of its own.
        let count = draft.real_servers.len();
        if count > MAX_REAL_SERVERS_PER_SERVICE {
            self.lb_error(
                draft.at,
                key,
                LbError::TooManyRealServers {
                    count,
                    max: MAX_REAL_SERVERS_PER_SERVICE,
                },
            );
        }
        if ports.contains(&0) && persistence_timeout.flatten().is_none() {
            self.lb_error(draft.at, key, LbError::PortZeroWithoutPersistence);
        }
        // Warnings about combinations that work but are not what was meant.
        if algo == Some(LbAlgo::Mh) && !hash.port && persistence_timeout.flatten().is_some() {
            let at = draft.persistence_timeout.as_ref().and_then(|p| p.at);
            self.lb_warn(at, key, LbWarning::PersistenceWithMh);
        }
        if (hash.port || hash.fallback) && !matches!(algo, Some(LbAlgo::Sh | LbAlgo::Mh) | None) {
            let at = draft
                .hash_port
                .as_ref()
                .or(draft.hash_fallback.as_ref())
                .and_then(|f| f.at);
            self.lb_warn(at, key, LbWarning::HashFlagsUnused);
        }
        if let (Some(quorum), Some(hysteresis)) = (quorum, hysteresis)
            && hysteresis >= quorum
            && hysteresis > 0
        {
            let at = draft.hysteresis.as_ref().and_then(|h| h.at);
            self.lb_warn(
                at,
                key,
                LbWarning::HysteresisTooLarge { hysteresis, quorum },
            );
        }
        if draft.real_servers.is_empty() && draft.sorry_server.is_none() {
            self.lb_warn(draft.at, key, LbWarning::NoRealServers);
        }
        if self.errors.len() != errors_before {
            return None;
        }
        Some(VirtualServer {
            name,
            addresses: addresses?,
            protocol: protocol?,
            algo: algo?,
            hash,
            kind: kind?,
            delay_loop: delay_loop?,
            persistence_timeout: persistence_timeout?,
            persistence_prefix: persistence_prefix?,
            sorry_server: sorry_server?,
            sorry_server_inhibit: draft.sorry_server_inhibit.as_ref().is_some_and(|f| f.value),
            alpha: draft.alpha.as_ref().is_some_and(|f| f.value),
            omega: draft.omega.as_ref().is_some_and(|f| f.value),
            quorum: quorum?,
            hysteresis: hysteresis?,
            quorum_up,
            quorum_down,
            virtualhost: virtualhost?,
            interface: interface.flatten(),
            announce: announce?,
            real_servers,
        })
    }

    fn service_family(
        &mut self,
        address: IpAddr,
        expected: AddressFamily,
        at: Option<super::super::Location>,
        key: &str,
    ) {
        let found = AddressFamily::of(address);
        if found != expected {
            self.lb_error(
                at,
                key,
                LbError::MixedFamilies {
                    address,
                    found,
                    expected,
                },
            );
        }
    }

    fn protocol(&mut self, value: Option<&Sourced<String>>, key: &str) -> Option<LbProtocol> {
        let key = format!("{key}.protocol");
        if value.is_some_and(|v| v.value.trim().eq_ignore_ascii_case("SCTP")) {
            self.lb_error(value.and_then(|v| v.at), &key, LbError::SctpNotSupported);
            return None;
        }
        self.keyword(
            value,
            &key,
            &[("TCP", LbProtocol::Tcp), ("UDP", LbProtocol::Udp)],
            "TCP, UDP",
            LbProtocol::Tcp,
        )
    }

    fn algo(&mut self, value: Option<&Sourced<String>>, key: &str) -> Option<LbAlgo> {
        let Some(value) = value else {
            return Some(LbAlgo::default());
        };
        let algo = match value.value.trim().to_ascii_lowercase().as_str() {
            "rr" => LbAlgo::Rr,
            "wrr" => LbAlgo::Wrr,
            "lc" => LbAlgo::Lc,
            "wlc" => LbAlgo::Wlc,
            "sh" => LbAlgo::Sh,
            "mh" => LbAlgo::Mh,
            _ => {
                self.lb_error(
                    value.at,
                    key,
                    LbError::UnsupportedAlgo {
                        value: value.value.clone(),
                    },
                );
                return None;
            }
        };
        Some(algo)
    }

    fn lb_kind(&mut self, value: Option<&Sourced<String>>, key: &str) -> Option<LbKind> {
        if value.is_some_and(|v| v.value.trim().eq_ignore_ascii_case("NAT")) {
            self.lb_error(value.and_then(|v| v.at), key, LbError::NatNotSupported);
            return None;
        }
        // The model keeps TUN (keepalived's value) so the day the data plane encapsulates
        // only this check goes; until then a TUN pool must not be run as DR.
        if value.is_some_and(|v| v.value.trim().eq_ignore_ascii_case("TUN")) {
            self.lb_error(value.and_then(|v| v.at), key, LbError::TunNotSupported);
            return None;
        }
        self.keyword(
            value,
            key,
            &[("DR", LbKind::Dr), ("TUN", LbKind::Tun)],
            "DR, TUN",
            LbKind::Dr,
        )
    }

    /// A netmask (IPv4) or a prefix length → a prefix length.
    fn granularity(
        &mut self,
        text: &Sourced<String>,
        family: AddressFamily,
        key: &str,
    ) -> Option<u8> {
        let max = family.max_prefix_len();
        let trimmed = text.value.trim();
        let prefix = match (trimmed.parse::<u8>(), trimmed.parse::<Ipv4Addr>(), family) {
            (Ok(prefix), _, _) if prefix <= max => Some(prefix),
            (_, Ok(mask), AddressFamily::V4) => {
                let bits = u32::from(mask);
                // A netmask is ones then zeros.
                (bits.leading_ones() + bits.trailing_zeros() == 32)
                    .then(|| u8::try_from(bits.leading_ones()).ok())
                    .flatten()
            }
            _ => None,
        };
        if prefix.is_none() {
            self.lb_error(
                text.at,
                &format!("{key}.persistence_granularity"),
                LbError::BadGranularity {
                    text: text.value.clone(),
                    max,
                },
            );
        }
        prefix
    }

    /// `Some(None)` when absent, `None` after an error.
    fn virtualhost(
        &mut self,
        value: Option<&Sourced<String>>,
        key: &str,
    ) -> Option<Option<String>> {
        match value {
            None => Some(None),
            Some(v) if v.value.trim().is_empty() || v.value.contains(char::is_whitespace) => {
                self.error(v.at, &format!("{key}.virtualhost"), ErrorKind::Empty);
                None
            }
            Some(v) => Some(Some(v.value.clone())),
        }
    }

    fn real_server(
        &mut self,
        draft: &DraftRealServer,
        delay_loop: Option<Duration>,
        key: &str,
    ) -> Option<RealServer> {
        let address = self.endpoint(&draft.endpoint, &format!("{key}.real_server"))?;
        let key = format!("{key}.real_server.{:?}", address.to_string());
        let weight = self.int(
            draft.weight.as_ref(),
            &format!("{key}.weight"),
            WEIGHT_RANGE,
            Some(defaults::LB_WEIGHT),
        );
        let notify_up =
            self.optional_command(draft.notify_up.as_ref(), &format!("{key}.notify_up"));
        let notify_down =
            self.optional_command(draft.notify_down.as_ref(), &format!("{key}.notify_down"));
        let errors_before = self.errors.len();
        let checkers: Vec<HealthChecker> = draft
            .checkers
            .iter()
            .filter_map(|c| self.checker(c, delay_loop, &key))
            .collect();
        if self.errors.len() != errors_before {
            return None;
        }
        Some(RealServer {
            address,
            weight: weight?,
            inhibit_on_failure: draft.inhibit_on_failure.as_ref().is_some_and(|f| f.value),
            notify_up,
            notify_down,
            checkers,
        })
    }

    fn checker(
        &mut self,
        draft: &DraftChecker,
        delay_loop: Option<Duration>,
        key: &str,
    ) -> Option<HealthChecker> {
        let Some((name, kind)) = checker_kind(&draft.kind.value) else {
            self.lb_error(
                draft.kind.at,
                key,
                LbError::UnknownChecker {
                    kind: draft.kind.value.clone(),
                },
            );
            return None;
        };
        let key = format!("{key}.{name}");
        let sub = |k: &str| format!("{key}.{k}");
        let errors_before = self.errors.len();
        let connect_ip = draft
            .connect_ip
            .as_ref()
            .map(|a| self.address(a, &sub("connect_ip")));
        let connect_port = draft
            .connect_port
            .as_ref()
            .map(|p| self.int::<u16>(Some(p), &sub("connect_port"), (1, 65535), None));
        let bind_to = draft
            .bindto
            .as_ref()
            .map(|a| self.address(a, &sub("bindto")));
        let connect_timeout = self.positive_duration(
            draft.connect_timeout.as_ref(),
            &sub("connect_timeout"),
            defaults::LB_CONNECT_TIMEOUT,
        );
        let default_retry = match kind {
            Kind::Misc => defaults::LB_MISC_RETRY,
            Kind::Dns => defaults::LB_DNS_RETRY,
            // A file's value and a session's state are read, not probed: nothing to
            // retry (a session's own Detection Time is its retry).
            Kind::File | Kind::Bfd => 0,
            _ => defaults::LB_RETRY,
        };
        let retry = self.int(
            draft.retry.as_ref(),
            &sub("retry"),
            RETRY_RANGE,
            Some(default_retry),
        );
        let delay_before_retry = self.duration(
            draft.delay_before_retry.as_ref(),
            &sub("delay_before_retry"),
            MAX_TIMER,
            defaults::LB_DELAY_BEFORE_RETRY,
        );
        let own_delay_loop = match &draft.delay_loop {
            Some(value) => self
                .positive_duration(Some(value), &sub("delay_loop"), defaults::LB_DELAY_LOOP)
                .map(Some),
            // keepalived sees a track file change at once (inotify); vipd re-reads it.
            None if matches!(kind, Kind::File) => Some(Some(defaults::LB_FILE_CHECK_LOOP)),
            // A session's change is applied at once; the loop only re-reads its state.
            None if matches!(kind, Kind::Bfd) => Some(Some(defaults::LB_BFD_CHECK_LOOP)),
            None => Some(None),
        };
        let warmup = self
            .duration(
                draft.warmup.as_ref(),
                &sub("warmup"),
                MAX_TIMER,
                Duration::ZERO,
            )
            .map(|d| (!d.is_zero()).then_some(d));
        let virtualhost = self.virtualhost(draft.virtualhost.as_ref(), &key);
        // Keys of one kind written in another: say so rather than ignore them.
        let udp = matches!(kind, Kind::Udp);
        let dns = matches!(kind, Kind::Dns);
        let file = matches!(kind, Kind::File);
        let misplaced: [(&'static str, bool); 17] = [
            ("bfd", draft.bfd.is_some() && !matches!(kind, Kind::Bfd)),
            ("track_file", draft.track_file.is_some() && !file),
            ("weight", draft.file_weight.is_some() && !file),
            ("reverse", draft.file_reverse.is_some() && !file),
            (
                "helo_name",
                draft.helo_name.is_some() && !matches!(kind, Kind::Smtp),
            ),
            ("payload", draft.payload.is_some() && !udp),
            ("require_reply", draft.require_reply.is_some() && !udp),
            ("reply", draft.reply.is_some() && !udp),
            ("min_reply_length", draft.min_reply_length.is_some() && !udp),
            ("max_reply_length", draft.max_reply_length.is_some() && !udp),
            ("type", draft.query_type.is_some() && !dns),
            ("name", draft.query_name.is_some() && !dns),
            (
                "url",
                !draft.urls.is_empty() && !matches!(kind, Kind::Http { .. }),
            ),
            (
                "virtualhost",
                draft.virtualhost.is_some() && !matches!(kind, Kind::Http { .. }),
            ),
            (
                "misc_path",
                draft.misc_path.is_some() && !matches!(kind, Kind::Misc),
            ),
            (
                "misc_timeout",
                draft.misc_timeout.is_some() && !matches!(kind, Kind::Misc),
            ),
            (
                "misc_dynamic",
                draft.misc_dynamic.is_some() && !matches!(kind, Kind::Misc),
            ),
        ];
        for (misplaced_key, wrong) in misplaced {
            if wrong {
                self.lb_error(
                    draft.kind.at,
                    &key,
                    LbError::KeyNotForChecker {
                        key: misplaced_key,
                        kind: name,
                    },
                );
            }
        }
        let check_kind = match kind {
            Kind::Http { tls } => {
                if draft.urls.is_empty() {
                    self.lb_error(draft.kind.at, &key, LbError::NoUrl { kind: name });
                }
                let urls: Vec<UrlCheck> = draft
                    .urls
                    .iter()
                    .filter_map(|u| self.url(u, &sub("url")))
                    .collect();
                Some(CheckKind::Http(HttpCheck {
                    tls,
                    virtualhost: virtualhost.clone().flatten(),
                    urls,
                }))
            }
            Kind::Tcp => Some(CheckKind::Tcp),
            Kind::Ping => Some(CheckKind::Ping),
            Kind::Udp => self.udp_check(draft, &key).map(CheckKind::Udp),
            Kind::Dns => self.dns_check(draft, &key).map(CheckKind::Dns),
            Kind::File => self.file_check(draft, &key).map(CheckKind::File),
            Kind::Bfd => self.bfd_check(draft, &key).map(CheckKind::Bfd),
            Kind::Smtp => {
                let helo_name = match &draft.helo_name {
                    None => Some(defaults::LB_SMTP_HELO.to_owned()),
                    Some(name)
                        if name.value.trim().is_empty() || name.value.contains(['\r', '\n']) =>
                    {
                        self.lb_error(
                            name.at,
                            &sub("helo_name"),
                            LbError::BadHeloName {
                                name: name.value.clone(),
                            },
                        );
                        None
                    }
                    Some(name) => Some(name.value.clone()),
                };
                helo_name.map(|helo_name| CheckKind::Smtp(SmtpCheck { helo_name }))
            }
            Kind::Misc => {
                let command = match &draft.misc_path {
                    Some(command) => self.command(command, &sub("misc_path")),
                    None => {
                        self.error(draft.kind.at, &key, ErrorKind::Missing { key: "misc_path" });
                        None
                    }
                };
                let effective_loop = own_delay_loop
                    .flatten()
                    .or(delay_loop)
                    .unwrap_or(defaults::LB_DELAY_LOOP);
                let timeout = self.positive_duration(
                    draft.misc_timeout.as_ref(),
                    &sub("misc_timeout"),
                    effective_loop,
                );
                command.zip(timeout).map(|(command, timeout)| {
                    CheckKind::Misc(MiscCheck {
                        command,
                        timeout,
                        dynamic: draft.misc_dynamic.as_ref().is_some_and(|f| f.value),
                    })
                })
            }
        };
        if self.errors.len() != errors_before {
            return None;
        }
        Some(HealthChecker {
            kind: check_kind?,
            connect_ip: connect_ip.flatten(),
            connect_port: connect_port.flatten(),
            bind_to: bind_to.flatten(),
            connect_timeout: connect_timeout?,
            retry: retry?,
            delay_before_retry: delay_before_retry?,
            delay_loop: own_delay_loop?,
            warmup: warmup?,
        })
    }

    fn udp_check(&mut self, draft: &DraftChecker, key: &str) -> Option<UdpCheck> {
        let mut hex = |value: &Option<Sourced<String>>, name: &str, wildcards: bool| match value {
            None => Some(None),
            Some(text) => match HexPattern::parse(&text.value, wildcards) {
                Ok(pattern) => Some(Some(pattern)),
                Err(why) => {
                    self.lb_error(
                        text.at,
                        &format!("{key}.{name}"),
                        LbError::BadHex {
                            text: text.value.clone(),
                            why,
                            wildcards,
                        },
                    );
                    None
                }
            },
        };
        let payload = hex(&draft.payload, "payload", false);
        let reply = hex(&draft.reply, "reply", true);
        let min = self.int::<u16>(
            draft.min_reply_length.as_ref(),
            &format!("{key}.min_reply_length"),
            (0, 65535),
            Some(0),
        );
        let max = self.int::<u16>(
            draft.max_reply_length.as_ref(),
            &format!("{key}.max_reply_length"),
            (0, 65535),
            Some(defaults::LB_UDP_MAX_REPLY),
        );
        if let (Some(min), Some(max)) = (min, max)
            && min > max
        {
            let at = draft.min_reply_length.as_ref().and_then(|m| m.at);
            self.lb_error(at, key, LbError::ReplyLengths { min, max });
            return None;
        }
        // A reply to match implies waiting for one (vipd's TOML writes both).
        let require_reply =
            draft.require_reply.as_ref().is_some_and(|r| r.value) || draft.reply.is_some();
        Some(UdpCheck {
            payload: payload?.map(|p| p.bytes).unwrap_or_default(),
            require_reply,
            reply: reply?,
            min_reply_length: min?,
            max_reply_length: max?,
        })
    }

    fn file_check(&mut self, draft: &DraftChecker, key: &str) -> Option<FileCheck> {
        let Some(name) = &draft.track_file else {
            self.error(draft.kind.at, key, ErrorKind::Missing { key: "track_file" });
            return None;
        };
        let Some(file) = self
            .track_files
            .iter()
            .find(|f| f.name == name.value)
            .cloned()
        else {
            self.error(
                name.at,
                &format!("{key}.track_file"),
                ErrorKind::UnknownTrackFile {
                    name: name.value.clone(),
                },
            );
            return None;
        };
        // keepalived's range for a real server's track-file weight.
        let weight = self.int::<i32>(
            draft.file_weight.as_ref(),
            &format!("{key}.weight"),
            (-65535, 65535),
            Some(file.weight),
        )?;
        Some(FileCheck {
            name: file.name,
            path: file.path,
            weight,
            reverse: draft.file_reverse.as_ref().is_some_and(|r| r.value),
        })
    }

    /// BFD_CHECK: the name of a BFD session (keepalived `bfd_instance`, TOML `[bfd.NAME]`).
    fn bfd_check(&mut self, draft: &DraftChecker, key: &str) -> Option<String> {
        let Some(name) = &draft.bfd else {
            self.lb_error(draft.kind.at, key, LbError::BfdCheckWithoutSession);
            return None;
        };
        if !self.bfd_names.contains(&name.value) {
            self.error(
                name.at,
                &format!("{key}.bfd"),
                ErrorKind::UnknownBfd {
                    name: name.value.clone(),
                },
            );
            return None;
        }
        Some(name.value.clone())
    }

    fn dns_check(&mut self, draft: &DraftChecker, key: &str) -> Option<DnsCheck> {
        let query_type = match &draft.query_type {
            None => Some(DnsType::Soa),
            Some(text) => {
                let found = DnsType::from_name(text.value.trim());
                if found.is_none() {
                    self.lb_error(
                        text.at,
                        &format!("{key}.type"),
                        LbError::BadDnsType {
                            text: text.value.clone(),
                        },
                    );
                }
                found
            }
        };
        let name = match &draft.query_name {
            None => Some(".".to_owned()),
            Some(text) => match dns_name_problem(&text.value) {
                None => Some(text.value.clone()),
                Some(why) => {
                    self.lb_error(
                        text.at,
                        &format!("{key}.name"),
                        LbError::BadDnsName {
                            name: text.value.clone(),
                            why,
                        },
                    );
                    None
                }
            },
        };
        Some(DnsCheck {
            query_type: query_type?,
            name: name?,
        })
    }

    fn url(&mut self, draft: &DraftUrl, key: &str) -> Option<UrlCheck> {
        let errors_before = self.errors.len();
        let path = match &draft.path {
            Some(path) if path.value.starts_with('/') => Some(path.value.clone()),
            Some(path) => {
                self.lb_error(
                    path.at,
                    &format!("{key}.path"),
                    LbError::BadPath {
                        path: path.value.clone(),
                    },
                );
                None
            }
            None => {
                self.error(draft.at, key, ErrorKind::Missing { key: "path" });
                None
            }
        };
        let mut status_codes = Vec::new();
        for code in &draft.status_codes {
            match parse_status_codes(&code.value) {
                Some(codes) => {
                    for c in codes {
                        if !status_codes.contains(&c) {
                            status_codes.push(c);
                        }
                    }
                }
                None => self.lb_error(
                    code.at,
                    &format!("{key}.status_code"),
                    LbError::BadStatusCode {
                        text: code.value.clone(),
                    },
                ),
            }
        }
        let digest = match &draft.digest {
            Some(digest)
                if digest.value.len() == 32
                    && digest.value.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                Some(digest.value.to_ascii_lowercase())
            }
            Some(digest) => {
                self.lb_error(
                    digest.at,
                    &format!("{key}.digest"),
                    LbError::BadDigest {
                        text: digest.value.clone(),
                    },
                );
                None
            }
            None => None,
        };
        let virtualhost = self.virtualhost(draft.virtualhost.as_ref(), key);
        if self.errors.len() != errors_before {
            return None;
        }
        Some(UrlCheck {
            path: path?,
            status_codes,
            digest,
            virtualhost: virtualhost?,
        })
    }
}

/// `200` or `200-299` → the codes, each in 100..=599.
fn parse_status_codes(text: &str) -> Option<Vec<u16>> {
    let (first, last) = match text.trim().split_once('-') {
        Some((first, last)) => (first.trim().parse().ok()?, last.trim().parse().ok()?),
        None => {
            let code = text.trim().parse().ok()?;
            (code, code)
        }
    };
    let valid = 100..=599u16;
    (valid.contains(&first) && valid.contains(&last) && first <= last)
        .then(|| (first..=last).collect())
}

/// `TCP` / `UDP`.
pub fn protocol_name(protocol: LbProtocol) -> &'static str {
    match protocol {
        LbProtocol::Tcp => "TCP",
        LbProtocol::Udp => "UDP",
    }
}
