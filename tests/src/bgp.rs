//! FRR (8.4) bgpd for L3-mode labs: zebra + bgpd (+ bfdd for BFD on the sessions) in
//! one namespace's [`FrrHome`], configured from text and read back through vtysh; and
//! an anycast probe: UDP flows from a client to a VIP, answered by a responder on each
//! node with the node's name, to see where ECMP sends each flow and how long a flow
//! goes unanswered across a failure.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;

use crate::frr::{FrrHome, ZEBRA};
use crate::netns::Netns;
use crate::proc::Proc;
use crate::vipd::{POLL, Router, Scratch};
use crate::wait::poll_until;
use crate::{Lan, add_addr, in_netns, link_down, link_up, veth_between};

const BGPD: &str = "/usr/lib/frr/bgpd";
const BFDD: &str = "/usr/lib/frr/bfdd";

/// BFD timers of the `fast` profile the labs use: 100 ms × 3.
pub const BFD_PROFILE: &str = "bfd\n profile fast\n  receive-interval 100\n  \
                               transmit-interval 100\n  detect-multiplier 3\n !\n!\n";

/// zebra + bgpd (+ bfdd) on one namespace. Dropping it SIGKILLs them.
#[derive(Debug)]
pub struct Bgpd<'a> {
    // Daemons first: dropped (killed) before zebra.
    bgpd: Option<Proc>,
    bfdd: Option<Proc>,
    home: Option<FrrHome<'a>>,
}

impl<'a> Bgpd<'a> {
    /// Starts zebra, bfdd when `bfd` (with [`BFD_PROFILE`]) and bgpd with `config`, in
    /// `<scratch>/<name>-bgp`; returns once bgpd answers vtysh.
    pub fn start(
        ns: &'a Netns,
        scratch: &Scratch,
        name: &str,
        config: &str,
        bfd: bool,
    ) -> anyhow::Result<Bgpd<'a>> {
        let dir = scratch.path().join(format!("{name}-bgp"));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("bfdd.conf"), BFD_PROFILE)?;
        let home = FrrHome::start(ns, dir, "bgpd", config)?;
        let bfdd = if bfd {
            let ctl = home.path("bfdd.sock").display().to_string();
            Some(home.spawn(BFDD, "bfdd", &["--bfdctl", &ctl])?)
        } else {
            None
        };
        let bgpd = Some(home.spawn(BGPD, "bgpd", &[])?);
        let bgp = Bgpd {
            bgpd,
            bfdd,
            home: Some(home),
        };
        poll_until(
            &format!("{name}'s bgpd to answer vtysh"),
            Duration::from_secs(10),
            POLL,
            || bgp.summary().map_err(|e| format!("{e:#}")),
        )
        .with_context(|| format!("bgpd logged:\n{}", bgp.logs()))?;
        bgp.home()?
            .wait_clients(if bfd { &["bgp", "bfd"] } else { &["bgp"] })?;
        Ok(bgp)
    }

    fn home(&self) -> anyhow::Result<&FrrHome<'a>> {
        self.home.as_ref().context("FRR was killed")
    }

    /// Runs vtysh commands.
    pub fn vtysh(&self, commands: &[&str]) -> anyhow::Result<String> {
        self.home()?.vtysh(commands)
    }

    /// `show bgp ipv4 unicast summary json`.
    pub fn summary(&self) -> anyhow::Result<Value> {
        let text = self.vtysh(&["show bgp ipv4 unicast summary json"])?;
        serde_json::from_str(&text).with_context(|| format!("vtysh printed {text:?}"))
    }

    /// Polls until `n` IPv4 sessions are Established.
    pub fn wait_established(&self, n: usize, timeout: Duration) -> anyhow::Result<()> {
        poll_until(
            &format!("{n} BGP sessions to be Established"),
            timeout,
            POLL,
            || {
                let summary = self.summary().map_err(|e| format!("{e:#}"))?;
                let up = summary["peers"]
                    .as_object()
                    .map(|peers| {
                        peers
                            .values()
                            .filter(|p| p["state"] == "Established")
                            .count()
                    })
                    .unwrap_or(0);
                if up >= n {
                    Ok(())
                } else {
                    Err(summary.to_string())
                }
            },
        )
        .with_context(|| format!("bgpd logged:\n{}", self.logs()))
    }

    /// `show bgp ipv4 unicast PREFIX json`: every path to `prefix` (empty when none).
    pub fn paths(&self, prefix: &str) -> anyhow::Result<Vec<Value>> {
        let text = self.vtysh(&[&format!("show bgp ipv4 unicast {prefix} json")])?;
        let json: Value =
            serde_json::from_str(&text).with_context(|| format!("vtysh printed {text:?}"))?;
        Ok(json["paths"].as_array().cloned().unwrap_or_default())
    }

    /// What bgpd logged.
    pub fn logs(&self) -> String {
        self.bgpd.as_ref().map(Proc::stdout).unwrap_or_default()
    }

    /// Everything that says why a route is missing: the namespace's addresses, zebra's
    /// interfaces and RIB, bgpd's sessions and tables, and both daemons' logs.
    pub fn diagnose(&self) -> String {
        let Some(home) = self.home.as_ref() else {
            return "FRR was killed".to_owned();
        };
        format!(
            "{}\nbgpd logged:\n{}",
            home.diagnose(&[
                "show bgp summary",
                "show bgp ipv4 unicast",
                "show bgp ipv6 unicast",
            ]),
            self.logs()
        )
    }

    /// SIGKILLs every daemon (bgpd, bfdd, zebra): part of a crashed node.
    pub fn kill(&mut self) {
        self.bgpd.take();
        self.bfdd.take();
        self.home.take();
    }
}

/// Whether FRR's zebra, bgpd and bfdd are installed.
pub fn available() -> bool {
    [ZEBRA, BGPD, BFDD]
        .iter()
        .all(|p| std::path::Path::new(p).exists())
}

/// The nexthops of `prefix` in `ns`'s kernel FIB (`ip -j route show PREFIX`), sorted:
/// one for a plain route, several for an ECMP (multipath) route, none without a route.
pub fn fib_nexthops(ns: &Netns, prefix: &str) -> anyhow::Result<Vec<String>> {
    let text = ns.ip(&["-j", "route", "show", prefix])?;
    let routes: Value =
        serde_json::from_str(&text).with_context(|| format!("ip printed {text:?}"))?;
    let mut hops = Vec::new();
    for route in routes.as_array().into_iter().flatten() {
        match route["nexthops"].as_array() {
            Some(list) => hops.extend(
                list.iter()
                    .filter_map(|h| h["gateway"].as_str().map(str::to_owned)),
            ),
            None => hops.extend(route["gateway"].as_str().map(str::to_owned)),
        }
    }
    hops.sort();
    Ok(hops)
}

/// Polls until `prefix`'s FIB nexthops in `ns` are exactly `expected` (any order).
pub fn wait_nexthops(
    ns: &Netns,
    prefix: &str,
    expected: &[&str],
    timeout: Duration,
) -> anyhow::Result<()> {
    let mut want: Vec<String> = expected.iter().map(|s| (*s).to_owned()).collect();
    want.sort();
    poll_until(
        &format!("{prefix} via {want:?}"),
        timeout,
        POLL,
        || match fib_nexthops(ns, prefix) {
            Ok(hops) if hops == want => Ok(()),
            Ok(hops) => Err(format!("{hops:?}")),
            Err(e) => Err(format!("{e:#}")),
        },
    )
}

const RESPONDER: &str = r#"
import socket, sys
name, vip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
# IP_FREEBIND: the VIP is local only while vipd announces it.
s.setsockopt(socket.SOL_IP, 15, 1)
s.bind((vip, port))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(64)
    s.sendto(name.encode(), peer)
"#;

/// Starts a UDP responder in `ns` answering on `vip:port` with `name`.
pub fn start_responder(
    ns: &Netns,
    scratch: &Scratch,
    name: &str,
    vip: &str,
    port: u16,
) -> anyhow::Result<Proc> {
    let script = scratch.write("l3-responder.py", RESPONDER)?;
    let port = port.to_string();
    let proc = ns.spawn(&[
        "/usr/bin/python3",
        &script.display().to_string(),
        name,
        vip,
        &port,
    ])?;
    proc.wait_for_line(Duration::from_secs(10), |l| l.contains("ready"))
        .with_context(|| format!("responder {name} did not start"))?;
    Ok(proc)
}

/// UDP flows from a client to one VIP: one socket (source port) per flow, each asking
/// once per round and recording who answered.
pub struct Flows {
    sockets: Vec<UdpSocket>,
}

/// One round's answers: per flow, the responder's name or `None` (no answer in time).
pub type Round = (Instant, Vec<Option<String>>);

impl Flows {
    /// Opens `n` sockets in `ns` connected to `to`.
    pub fn open(ns: &Netns, to: SocketAddr, n: usize) -> anyhow::Result<Flows> {
        let sockets = in_netns(ns, move || {
            (0..n)
                .map(|_| {
                    let s = UdpSocket::bind("0.0.0.0:0")?;
                    s.connect(to)?;
                    Ok(s)
                })
                .collect::<std::io::Result<Vec<UdpSocket>>>()
        })??;
        Ok(Flows { sockets })
    }

    /// One round: every flow asks, then each waits up to `wait` for its answer.
    pub fn round(&self, wait: Duration) -> anyhow::Result<Round> {
        let at = Instant::now();
        for s in &self.sockets {
            // A send refused (no route yet: ICMP unreachable earlier) is an unanswered flow.
            let _ = s.send(b"?");
        }
        let deadline = at + wait;
        let mut answers = Vec::with_capacity(self.sockets.len());
        for s in &self.sockets {
            let mut buf = [0u8; 64];
            let left = deadline.saturating_duration_since(Instant::now());
            s.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
            // Only the latest answer counts: drain late ones from earlier rounds.
            let mut last = None;
            while let Ok(n) = s.recv(&mut buf) {
                last = Some(String::from_utf8_lossy(&buf[..n]).into_owned());
                s.set_read_timeout(Some(Duration::from_millis(1)))?;
            }
            answers.push(last);
        }
        Ok((at, answers))
    }

    /// Polls rounds until every flow is answered; returns that round.
    pub fn wait_all_answered(&self, timeout: Duration, poll: Duration) -> anyhow::Result<Round> {
        poll_until("every flow answered", timeout, poll, || {
            let round = self
                .round(Duration::from_millis(200))
                .map_err(|e| format!("{e:#}"))?;
            if round.1.iter().all(Option::is_some) {
                Ok(round)
            } else {
                Err(format!("{:?}", round.1))
            }
        })
    }

    /// Runs rounds every `period` for `duration`.
    pub fn run(&self, period: Duration, duration: Duration) -> anyhow::Result<Vec<Round>> {
        let end = Instant::now() + duration;
        let mut rounds = Vec::new();
        while Instant::now() < end {
            let started = Instant::now();
            rounds.push(self.round(period)?);
            std::thread::sleep(period.saturating_sub(started.elapsed()));
        }
        Ok(rounds)
    }
}

/// The longest time any flow went unanswered in `rounds` (from the first round it got
/// no answer to the next round it got one).
pub fn longest_outage(rounds: &[Round]) -> Duration {
    let flows = rounds.first().map_or(0, |(_, a)| a.len());
    let mut worst = Duration::ZERO;
    for flow in 0..flows {
        let mut since: Option<Instant> = None;
        for (at, answers) in rounds {
            match (&answers[flow], since) {
                (None, None) => since = Some(*at),
                (Some(_), Some(start)) => {
                    worst = worst.max(at.duration_since(start));
                    since = None;
                }
                _ => {}
            }
        }
        if let (Some(start), Some((at, _))) = (since, rounds.last()) {
            worst = worst.max(at.duration_since(start));
        }
    }
    worst
}

/// The anycast VIP of the L3 labs.
pub const VIP: &str = "203.0.113.10";
/// The upstream router's LAN address.
pub const UPSTREAM: &str = "198.51.100.1";
/// The responders' UDP port.
pub const PORT: u16 = 5353;

/// Node (or real server) `i`'s LAN address: `198.51.100.(10 + i)`.
pub fn node_addr(i: usize) -> String {
    format!("198.51.100.{}", 10 + i)
}

/// Node `i`'s AS number (`64510 + i`).
pub fn node_asn(i: usize) -> u32 {
    64510 + i as u32
}

/// Nodes 1..=n of an [`L3Lab`], each running FRR and vipd (and a responder on the VIP),
/// as [`L3Lab::start_nodes`] starts them; index i − 1 is node i.
pub struct L3Nodes<'a> {
    /// vipd on each node.
    pub routers: Vec<Router<'a>>,
    /// FRR on each node.
    pub bgps: Vec<Bgpd<'a>>,
    /// The UDP responders on the VIP (empty when not asked for).
    pub responders: Vec<Proc>,
    /// Each node's vipd configuration.
    pub configs: Vec<PathBuf>,
}

/// Each node's FRR state and logs and its vipd's log (`bgps[i]` and `routers[i]` are
/// node i + 1): the context of a wait for a route that timed out.
pub fn diagnose(bgps: &[Bgpd<'_>], routers: &[Router<'_>]) -> String {
    let mut text = String::new();
    for (i, bgp) in bgps.iter().enumerate() {
        text.push_str(&format!("=== n{}\n{}\n", i + 1, bgp.diagnose()));
        if let Some(router) = routers.get(i) {
            text.push_str(&format!("vipd logged:\n{}\n", router.logs()));
        }
    }
    text
}

/// The L3 lab: LAN member 0 is the upstream router, 1..=`nodes` the vipd nodes, then
/// `extra` more hosts (real servers), all on 198.51.100.0/24 with a route to the
/// client's 192.0.2.0/24 via the upstream; the client (192.0.2.2) hangs off the
/// upstream on its own link. The upstream forwards and hashes ECMP flows by ports.
pub struct L3Lab {
    /// The LAN (member 0: upstream).
    pub lan: Lan,
    /// The client behind the upstream.
    pub client: Netns,
    /// Configs, FRR homes, scripts.
    pub scratch: Scratch,
    nodes: usize,
    vipd: PathBuf,
}

impl L3Lab {
    /// Builds the namespaces, addresses and routes; `vipd` is the binary that the
    /// nodes run (and that prints their FRR configuration).
    pub fn new(tag: &str, nodes: usize, extra: usize, vipd: PathBuf) -> anyhow::Result<L3Lab> {
        let lan = Lan::new(tag, 1 + nodes + extra)?;
        let client = Netns::new(&format!("{tag}_cl"))?;
        let scratch = Scratch::new(tag)?;
        let up = lan.member(0);
        add_addr(up, "eth0", &format!("{UPSTREAM}/24"))?;
        veth_between(up, "cl0", &client, "eth0")?;
        add_addr(up, "cl0", "192.0.2.1/24")?;
        add_addr(&client, "eth0", "192.0.2.2/24")?;
        client.ip(&["route", "add", "default", "via", "192.0.2.1"])?;
        up.sysctl("net.ipv4.ip_forward", "1")?;
        // Hash flows by ports too, so one client's flows spread over the ECMP paths.
        up.sysctl("net.ipv4.fib_multipath_hash_policy", "1")?;
        for i in 1..=nodes + extra {
            let ns = lan.member(i);
            add_addr(ns, "eth0", &format!("{}/24", node_addr(i)))?;
            ns.ip(&["route", "add", "192.0.2.0/24", "via", UPSTREAM])?;
        }
        Ok(L3Lab {
            lan,
            client,
            scratch,
            nodes,
            vipd,
        })
    }

    /// The upstream router's namespace.
    pub fn up(&self) -> &Netns {
        self.lan.member(0)
    }

    /// Node (or extra host) `i`'s namespace, from 1.
    pub fn node(&self, i: usize) -> &Netns {
        self.lan.member(i)
    }

    /// The upstream's bgpd: an eBGP session to every node, ECMP over up to 8 paths even
    /// from different ASes (multipath-relax), BGP timers 1 s / 3 s; BFD (100 ms × 3) on
    /// every session when `bfd`.
    pub fn start_upstream(&self, bfd: bool) -> anyhow::Result<Bgpd<'_>> {
        let mut config = format!(
            "router bgp 64500\n bgp router-id {UPSTREAM}\n no bgp ebgp-requires-policy\n \
             bgp bestpath as-path multipath-relax\n timers bgp 1 3\n"
        );
        for i in 1..=self.nodes {
            config.push_str(&neighbor(&node_addr(i), node_asn(i), bfd));
        }
        config
            .push_str(" address-family ipv4 unicast\n  maximum-paths 8\n exit-address-family\n!\n");
        Bgpd::start(self.up(), &self.scratch, "upstream", &config, bfd)
    }

    /// Node `i`'s bgpd: one session to the upstream, plus what `vipd frr-config` makes
    /// of the node's vipd configuration `vipd_config`.
    pub fn start_node_bgp(
        &self,
        i: usize,
        vipd_config: &Path,
        bfd: bool,
    ) -> anyhow::Result<Bgpd<'_>> {
        let asn = node_asn(i);
        let generated = self.node(i).exec_ok(&[
            &self.vipd.display().to_string(),
            "frr-config",
            "--asn",
            &asn.to_string(),
            &vipd_config.display().to_string(),
        ])?;
        let config = format!(
            "router bgp {asn}\n bgp router-id {}\n no bgp ebgp-requires-policy\n \
             timers bgp 1 3\n{}!\n{generated}",
            node_addr(i),
            neighbor(UPSTREAM, 64500, bfd)
        );
        Bgpd::start(self.node(i), &self.scratch, &format!("n{i}"), &config, bfd)
    }

    /// vipd's config for node `i`: instance `web` on the LAN (VRID 10, 100 ms adverts,
    /// XDP off) holding [`VIP`], announced over BGP, with `extra` lines in the instance
    /// table (e.g. `announce_mode = "active-standby"`) and `tables` after it.
    pub fn vipd_config(
        &self,
        i: usize,
        priority: u8,
        extra: &str,
        tables: &str,
    ) -> anyhow::Result<PathBuf> {
        let socket = self.scratch.path().join(format!("n{i}.sock"));
        let text = format!(
            "[global]\nrouter_id = \"n{i}\"\ncontrol_socket = {:?}\n\n\
             [instance.web]\ninterface = \"eth0\"\nvirtual_router_id = 10\npriority = {priority}\n\
             advert_int = \"100ms\"\nvirtual_ipaddress = [\"{VIP}/32\"]\nxdp = \"off\"\n\
             announce = \"bgp\"\n{extra}\n{tables}",
            socket.display().to_string()
        );
        self.scratch.write(&format!("n{i}.toml"), &text)
    }

    /// Starts nodes 1..=`n`: vipd at priority 100 with `extra` in its instance table,
    /// FRR (with BFD to the upstream when `bfd`), and with `responders` a UDP responder
    /// on [`VIP`]:[`PORT`] named `n<i>`.
    pub fn start_nodes(
        &self,
        n: usize,
        extra: &str,
        bfd: bool,
        responders: bool,
    ) -> anyhow::Result<L3Nodes<'_>> {
        let mut nodes = L3Nodes {
            routers: Vec::new(),
            bgps: Vec::new(),
            responders: Vec::new(),
            configs: Vec::new(),
        };
        for i in 1..=n {
            let config = self.vipd_config(i, 100, extra, "")?;
            nodes.bgps.push(self.start_node_bgp(i, &config, bfd)?);
            let mut router = self.router(i, &config)?;
            router.start()?;
            nodes.routers.push(router);
            if responders {
                nodes.responders.push(start_responder(
                    self.node(i),
                    &self.scratch,
                    &format!("n{i}"),
                    VIP,
                    PORT,
                )?);
            }
            nodes.configs.push(config);
        }
        Ok(nodes)
    }

    /// A vipd guard for node `i` running `config` (not started).
    pub fn router(&self, i: usize, config: &Path) -> anyhow::Result<Router<'_>> {
        Ok(
            Router::from_file(self.node(i), &self.scratch, &format!("n{i}"), config)?
                .bin(&self.vipd),
        )
    }

    /// Makes node `i` silent, as a crashed node is to the upstream: its switch port
    /// goes down (the node's own link stays up, so it notices nothing either).
    pub fn silence(&self, i: usize) -> anyhow::Result<()> {
        link_down(self.lan.switch(), &Lan::port_name(i))
    }

    /// Undoes [`L3Lab::silence`].
    pub fn unsilence(&self, i: usize) -> anyhow::Result<()> {
        link_up(self.lan.switch(), &Lan::port_name(i))
    }
}

/// One `neighbor` block of a bgpd config: eBGP to `address` in `asn`, connect retry
/// 1 s, updates sent at once, BFD with the `fast` profile when `bfd`.
fn neighbor(address: &str, asn: u32, bfd: bool) -> String {
    let bfd = if bfd {
        format!(" neighbor {address} bfd profile fast\n")
    } else {
        String::new()
    };
    format!(
        " neighbor {address} remote-as {asn}\n neighbor {address} timers connect 1\n \
         neighbor {address} advertisement-interval 0\n{bfd}"
    )
}
