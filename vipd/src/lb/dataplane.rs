//! The XDP data plane's driver: from the configured virtual servers, the checkers'
//! [`HealthSnapshot`] and each real server's next hop to the tables of every attached
//! program copy ([`LbMaps`]), and back from their counters to status.
//!
//! [`plan`] is a pure function (tested below); [`spawn`] runs the task that resolves next
//! hops, replans on every change and writes the maps.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use vipd_common::lb::{
    LB_BACKENDS_PER_SERVICE, LB_TABLE_SIZE, LbBackend, LbService, LbServiceKey, MAX_LB_SERVICES,
    NO_BACKEND, PROTO_TCP, PROTO_UDP, algo, backend_flags, service_flags,
};
use vipd_common::{FAMILY_IPV4, FAMILY_IPV6};

use super::HealthSnapshot;
use crate::config::lb::{LbAlgo, LbProtocol, VirtualServer};
use crate::io::bpf::{LbMaps, LbTables, ServiceTables, monotonic_now_ns};
use crate::io::netlink::{NeighbourEntry, Netlink};
use crate::proto::lb::table::{self, Member};
use crate::proto::lb::{PoolMember, ServicePool};

/// Where a real server's frames go: out of `ifindex`, to `mac`, from `src_mac`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHop {
    /// Interface towards the real server.
    pub ifindex: u32,
    /// The real server's MAC.
    pub mac: [u8; 6],
    /// Our MAC on `ifindex`.
    pub src_mac: [u8; 6],
}

/// How often next hops are re-resolved and the active-flow counts recounted.
pub const TICK: Duration = Duration::from_secs(1);

/// Ticks between two walks of the flow tables when no service uses lc/wlc.
pub const RECOUNT_TICKS: u64 = 10;

/// A flow idle this long no longer counts as active (IPVS's UDP timeout; its TCP
/// established timeout is longer, but an idle DR flow is invisible to us anyway).
pub const ACTIVE_IDLE: Duration = Duration::from_secs(300);

/// Backend id of real server `index` of service `service`.
pub fn backend_id(service: usize, index: usize) -> u32 {
    service as u32 * LB_BACKENDS_PER_SERVICE + index as u32
}

/// Backend id of service `service`'s sorry server.
pub fn sorry_id(service: usize) -> u32 {
    backend_id(service, LB_BACKENDS_PER_SERVICE as usize - 1)
}

/// Address bytes as the maps hold them (IPv4 in the first four) and the family.
fn address_bytes(address: IpAddr) -> ([u8; 16], u8) {
    match address {
        IpAddr::V4(v4) => {
            let mut out = [0u8; 16];
            out[..4].copy_from_slice(&v4.octets());
            (out, FAMILY_IPV4)
        }
        IpAddr::V6(v6) => (v6.octets(), FAMILY_IPV6),
    }
}

/// A `/prefix` mask over the map's address bytes (IPv4 in the first four).
fn prefix_mask(prefix: u8, family: u8) -> [u8; 16] {
    let bits = if family == FAMILY_IPV4 { 32 } else { 128 };
    let prefix = u32::from(prefix).min(bits);
    let mut mask = [0u8; 16];
    for (i, byte) in mask.iter_mut().enumerate() {
        let start = i as u32 * 8;
        *byte = if prefix >= start + 8 {
            0xff
        } else if prefix <= start {
            0
        } else {
            0xffu8 << (8 - (prefix - start))
        };
    }
    mask
}

/// The pool the data plane uses for service `index`: the checkers' view, or, before
/// they have published one, every real server in the pool at its configured weight
/// (keepalived also starts servers up unless `alpha` is set).
fn pool_of(vs: &VirtualServer, index: usize, health: &HealthSnapshot) -> ServicePool {
    match health.services.get(index) {
        Some(h) if h.pool.members.len() == vs.real_servers.len() => h.pool.clone(),
        _ => ServicePool {
            members: vs
                .real_servers
                .iter()
                .map(|rs| PoolMember {
                    in_pool: !vs.alpha,
                    weight: rs.weight,
                })
                .collect(),
            use_sorry: false,
        },
    }
}

fn backend(hop: &NextHop, address: IpAddr, weight: u32, in_pool: bool) -> LbBackend {
    let (addr, family) = address_bytes(address);
    LbBackend {
        mac: hop.mac,
        src_mac: hop.src_mac,
        ifindex: hop.ifindex,
        weight,
        flags: if in_pool { backend_flags::IN_POOL } else { 0 },
        family,
        _pad: [0; 2],
        addr,
        tunnel_src: [0; 16],
    }
}

/// The maps' desired contents. Real servers whose next hop is unknown are left out
/// (their slot is cleared), as are services beyond the maps' capacity (validation
/// refuses those configurations).
pub fn plan(
    services: &[VirtualServer],
    health: &HealthSnapshot,
    hops: &HashMap<IpAddr, NextHop>,
) -> LbTables {
    let mut out = LbTables::default();
    for (index, vs) in services.iter().enumerate().take(MAX_LB_SERVICES as usize) {
        let pool = pool_of(vs, index, health);
        let names: Vec<String> = vs
            .real_servers
            .iter()
            .map(|rs| rs.address.to_string())
            .collect();
        let mut members = Vec::with_capacity(vs.real_servers.len());
        for (ri, rs) in vs
            .real_servers
            .iter()
            .enumerate()
            .take(LB_BACKENDS_PER_SERVICE as usize - 1)
        {
            let state = pool.members[ri];
            let hop = hops.get(&rs.address.ip());
            if let Some(hop) = hop {
                out.backends.insert(
                    backend_id(index, ri),
                    backend(hop, rs.address.ip(), state.weight, state.in_pool),
                );
            }
            let usable = state.in_pool && hop.is_some() && !pool.use_sorry;
            members.push(Member {
                name: &names[ri],
                weight: if usable { state.weight } else { 0 },
            });
        }
        let size = LB_TABLE_SIZE as usize;
        let (algo, indices) = match vs.algo {
            LbAlgo::Rr => (algo::SEQUENCE, table::sequence(&members, false, size)),
            LbAlgo::Wrr => (algo::SEQUENCE, table::sequence(&members, true, size)),
            LbAlgo::Sh => (algo::HASH, table::source_hash(&members, size)),
            LbAlgo::Mh => (algo::HASH, table::maglev(&members, size)),
            // The scan picks; the sequence only says "someone can take a flow".
            LbAlgo::Lc | LbAlgo::Wlc => (algo::LEAST_CONN, table::sequence(&members, false, size)),
        };
        let sorry_backend = match vs
            .sorry_server
            .and_then(|s| hops.get(&s.ip()).map(|h| (s, h)))
        {
            Some((sorry, hop)) => {
                out.backends
                    .insert(sorry_id(index), backend(hop, sorry.ip(), 1, true));
                sorry_id(index)
            }
            None => NO_BACKEND,
        };
        let mut flags = 0;
        if matches!(vs.algo, LbAlgo::Sh | LbAlgo::Mh) && vs.hash.port {
            flags |= service_flags::HASH_PORT;
        }
        if vs.persistence_timeout.is_some() {
            flags |= service_flags::PERSIST;
        }
        if vs.algo == LbAlgo::Lc {
            flags |= service_flags::UNWEIGHTED;
        }
        let family = vs
            .addresses
            .first()
            .map(|a| address_bytes(a.ip()).1)
            .unwrap_or(FAMILY_IPV4);
        let proto = match vs.protocol {
            LbProtocol::Tcp => PROTO_TCP,
            LbProtocol::Udp => PROTO_UDP,
        };
        let keys = vs
            .addresses
            .iter()
            .map(|a: &SocketAddr| {
                let (addr, family) = address_bytes(a.ip());
                LbServiceKey {
                    addr,
                    port_be: a.port().to_be(),
                    proto,
                    family,
                }
            })
            .collect();
        let id = index as u32;
        out.services.push(ServiceTables {
            keys,
            service: LbService {
                id,
                table_base: 0,
                table_len: 0,
                backend_base: backend_id(index, 0),
                backend_count: members.len() as u32,
                sorry_backend,
                persist_timeout_ns: vs
                    .persistence_timeout
                    .map_or(0, |t| u64::try_from(t.as_nanos()).unwrap_or(u64::MAX)),
                persist_mask: prefix_mask(
                    vs.persistence_prefix
                        .unwrap_or(if family == FAMILY_IPV4 { 32 } else { 128 }),
                    family,
                ),
                algo,
                flags,
                _pad: [0; 6],
            },
            table: indices
                .iter()
                .map(|&i| backend_id(index, i as usize))
                .collect(),
        });
    }
    out
}

/// Per real server traffic, summed over every attached program copy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Frames forwarded.
    pub packets: u64,
    /// Bytes forwarded.
    pub bytes: u64,
    /// Open flows the balancer saw (see [`ACTIVE_IDLE`]).
    pub active_flows: u64,
}

/// What the data plane reports for status and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataplaneStatus {
    /// By backend id ([`backend_id`], [`sorry_id`]).
    pub traffic: BTreeMap<u32, Traffic>,
    /// The program's load-balancer counters, summed over the copies.
    pub counters: BTreeMap<&'static str, u64>,
    /// Real servers (and sorry servers) without a next hop yet, with why.
    pub unresolved: BTreeMap<IpAddr, String>,
    /// Program copies (interfaces) being programmed.
    pub attachments: usize,
    /// The last error writing the maps, if the last write failed.
    pub last_error: Option<String>,
}

/// Handle on the data-plane task.
#[derive(Debug, Clone)]
pub struct Dataplane {
    maps_tx: mpsc::UnboundedSender<LbMaps>,
    services_tx: watch::Sender<Arc<Vec<VirtualServer>>>,
    status: Arc<Mutex<DataplaneStatus>>,
}

impl Dataplane {
    /// Adds one more program copy (a newly attached interface) to keep programmed.
    pub fn add_maps(&self, maps: LbMaps) {
        // The task only ends with the runtime; a send error then is moot.
        let _ = self.maps_tx.send(maps);
    }

    /// Replaces the configured services (reload).
    pub fn set_services(&self, services: Vec<VirtualServer>) {
        self.services_tx.send_replace(Arc::new(services));
    }

    /// The latest status.
    pub fn status(&self) -> DataplaneStatus {
        match self.status.lock() {
            Ok(status) => status.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// Starts the data-plane task on the current tokio runtime.
pub fn spawn(
    services: Vec<VirtualServer>,
    health: watch::Receiver<HealthSnapshot>,
    netlink: Netlink,
) -> Dataplane {
    let (maps_tx, maps_rx) = mpsc::unbounded_channel();
    let (services_tx, services_rx) = watch::channel(Arc::new(services));
    let status = Arc::new(Mutex::new(DataplaneStatus::default()));
    let task = Task {
        maps: Vec::new(),
        hops: HashMap::new(),
        macs: HashMap::new(),
        status: status.clone(),
        netlink,
        tables: LbTables::default(),
        ticks: 0,
    };
    tokio::spawn(task.run(maps_rx, services_rx, health));
    Dataplane {
        maps_tx,
        services_tx,
        status,
    }
}

struct Task {
    maps: Vec<LbMaps>,
    hops: HashMap<IpAddr, NextHop>,
    /// Our MAC per ifindex.
    macs: HashMap<u32, [u8; 6]>,
    status: Arc<Mutex<DataplaneStatus>>,
    netlink: Netlink,
    tables: LbTables,
    /// Ticks so far (the recount cadence).
    ticks: u64,
}

impl Task {
    async fn run(
        mut self,
        mut maps_rx: mpsc::UnboundedReceiver<LbMaps>,
        mut services_rx: watch::Receiver<Arc<Vec<VirtualServer>>>,
        mut health_rx: watch::Receiver<HealthSnapshot>,
    ) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut health_open = true;
        loop {
            tokio::select! {
                maps = maps_rx.recv() => match maps {
                    Some(mut maps) => {
                        let result = maps.apply(&self.tables);
                        self.note(result.err().map(|e| e.to_string()));
                        self.maps.push(maps);
                    }
                    None => return,
                },
                changed = services_rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let services = services_rx.borrow().clone();
                    self.resolve(&services).await;
                    self.replan(&services_rx, &health_rx);
                }
                changed = health_rx.changed(), if health_open => {
                    if changed.is_err() {
                        health_open = false;
                        continue;
                    }
                    self.replan(&services_rx, &health_rx);
                }
                _ = tick.tick() => {
                    let services = services_rx.borrow().clone();
                    if self.resolve(&services).await {
                        self.replan(&services_rx, &health_rx);
                    }
                    let least_connections = services
                        .iter()
                        .any(|vs| matches!(vs.algo, LbAlgo::Lc | LbAlgo::Wlc));
                    self.collect(least_connections);
                }
            }
        }
    }

    fn note(&self, error: Option<String>) {
        if let Some(e) = &error {
            tracing::warn!(error = %e, "load balancer: writing the XDP maps failed");
        }
        if let Ok(mut status) = self.status.lock() {
            status.last_error = error;
            status.attachments = self.maps.len();
        }
    }

    fn replan(
        &mut self,
        services: &watch::Receiver<Arc<Vec<VirtualServer>>>,
        health: &watch::Receiver<HealthSnapshot>,
    ) {
        let tables = plan(&services.borrow(), &health.borrow(), &self.hops);
        if tables == self.tables {
            return;
        }
        self.tables = tables;
        let mut error = None;
        for maps in &mut self.maps {
            if let Err(e) = maps.apply(&self.tables) {
                error = Some(e.to_string());
            }
        }
        self.note(error);
    }

    /// Looks up every real and sorry server's next hop; true if any changed.
    async fn resolve(&mut self, services: &[VirtualServer]) -> bool {
        let mut wanted: Vec<IpAddr> = services
            .iter()
            .flat_map(|vs| {
                vs.real_servers
                    .iter()
                    .map(|rs| rs.address.ip())
                    .chain(vs.sorry_server.map(|s| s.ip()))
            })
            .collect();
        wanted.sort();
        wanted.dedup();
        let mut hops = HashMap::new();
        let mut unresolved = BTreeMap::new();
        for address in wanted {
            match self.next_hop(address).await {
                Ok(hop) => {
                    hops.insert(address, hop);
                }
                Err(why) => {
                    unresolved.insert(address, why);
                }
            }
        }
        if let Ok(mut status) = self.status.lock() {
            for (address, why) in &unresolved {
                if !status.unresolved.contains_key(address) {
                    tracing::warn!(%address, reason = %why, "load balancer: real server not reachable for direct routing yet");
                }
            }
            status.unresolved = unresolved;
        }
        let changed = hops != self.hops;
        self.hops = hops;
        changed
    }

    async fn next_hop(&mut self, address: IpAddr) -> Result<NextHop, String> {
        let route = match self.netlink.route_to(address).await {
            Ok(Some(route)) => route,
            Ok(None) => return Err("no route".into()),
            Err(e) => return Err(e.to_string()),
        };
        if let Some(gateway) = route.gateway {
            return Err(format!(
                "routed via {gateway}: direct routing needs the real server on a connected network"
            ));
        }
        // A real server stays in the pool while the kernel re-checks its address:
        // dropping it then would take every server out for the kernel's
        // delay_first_probe_time (5 s) whenever their entries go stale (every 15 to
        // 45 s), new flows finding no backend and established ones moving. It leaves
        // when the kernel's probes go unanswered.
        let known = self
            .hops
            .get(&address)
            .filter(|hop| hop.ifindex == route.ifindex)
            .map(|hop| hop.mac);
        let mac = match self.netlink.neighbour_recheck(route.ifindex, address).await {
            Ok(NeighbourEntry::Confirmed(mac) | NeighbourEntry::Unconfirmed(mac)) => mac,
            // The entry was garbage-collected (or is being asked again): the address
            // we had stands until an answer or a failure replaces it.
            Ok(NeighbourEntry::Unknown) => known.ok_or("neighbour not resolved yet")?,
            Ok(NeighbourEntry::Failed) => {
                return Err("no answer to ARP / neighbour solicitation".into());
            }
            Err(e) => return Err(e.to_string()),
        };
        let src_mac = match self.macs.get(&route.ifindex) {
            Some(mac) => *mac,
            None => {
                let name = interface_name(route.ifindex)
                    .ok_or_else(|| format!("interface {} vanished", route.ifindex))?;
                let mac = self
                    .netlink
                    .link_mac(&name)
                    .await
                    .map_err(|e| e.to_string())?;
                self.macs.insert(route.ifindex, mac);
                mac
            }
        };
        Ok(NextHop {
            ifindex: route.ifindex,
            mac,
            src_mac,
        })
    }

    /// Reads the counters of every copy, and recounts the active flows from the flow
    /// tables every tick when a service schedules by them (lc/wlc), else every
    /// [`RECOUNT_TICKS`]: walking a full table costs two system calls per flow.
    fn collect(&mut self, least_connections: bool) {
        let now_ns = monotonic_now_ns();
        let idle_ns = ACTIVE_IDLE.as_nanos() as u64;
        self.ticks = self.ticks.wrapping_add(1);
        let recount = least_connections || self.ticks % RECOUNT_TICKS == 1;
        let mut traffic: BTreeMap<u32, Traffic> = BTreeMap::new();
        let mut counters: BTreeMap<&'static str, u64> = BTreeMap::new();
        for maps in &mut self.maps {
            if recount {
                // A failed walk leaves the program's own counts in place.
                let _ = maps.recount_active(now_ns, idle_ns);
            }
            for &id in self.tables.backends.keys() {
                if let Ok(active) = maps.active(id) {
                    traffic.entry(id).or_default().active_flows += active;
                }
                if let Ok(c) = maps.backend_counters(id) {
                    let t = traffic.entry(id).or_default();
                    t.packets += c.packets;
                    t.bytes += c.bytes;
                }
            }
            if let Ok(stats) = maps.stats() {
                for (name, value) in stats {
                    *counters.entry(name).or_default() += value;
                }
            }
        }
        if let Ok(mut status) = self.status.lock() {
            status.traffic = traffic;
            status.counters = counters;
            status.attachments = self.maps.len();
        }
    }
}

/// The name of interface `ifindex`, if it exists.
pub(crate) fn interface_name(ifindex: u32) -> Option<String> {
    let mut buf = [0u8; libc::IF_NAMESIZE];
    // SAFETY: `buf` has IF_NAMESIZE bytes, as if_indextoname requires.
    let name = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr().cast()) };
    if name.is_null() {
        return None;
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8(buf[..len].to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lb::ServiceHealth;

    fn vs(algo: LbAlgo, servers: &[&str]) -> VirtualServer {
        let servers: Vec<SocketAddr> = servers.iter().map(|a| a.parse().unwrap()).collect();
        VirtualServer::direct_routing("192.0.2.100:80".parse().unwrap(), algo, &servers)
    }

    fn hops(addresses: &[&str]) -> HashMap<IpAddr, NextHop> {
        addresses
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let a: SocketAddr = a.parse().unwrap();
                (
                    a.ip(),
                    NextHop {
                        ifindex: 2,
                        mac: [2, 0, 0, 0, 0, i as u8 + 1],
                        src_mac: [2, 0, 0, 0, 0, 0xaa],
                    },
                )
            })
            .collect()
    }

    const RS: [&str; 3] = ["192.0.2.11:80", "192.0.2.12:80", "192.0.2.13:80"];

    #[test]
    fn every_resolved_server_gets_a_backend_and_a_share() {
        let tables = plan(
            &[vs(LbAlgo::Rr, &RS)],
            &HealthSnapshot::default(),
            &hops(&RS),
        );
        assert_eq!(tables.backends.len(), 3);
        let service = &tables.services[0];
        assert_eq!(service.table, vec![0, 1, 2]);
        assert_eq!(service.keys[0].port_be, 80u16.to_be());
        assert_eq!(&service.keys[0].addr[..4], &[192, 0, 2, 100]);
        assert_eq!(service.service.algo, algo::SEQUENCE);
        assert_eq!(service.service.sorry_backend, NO_BACKEND);
    }

    #[test]
    fn an_unresolved_server_takes_no_new_flows() {
        let tables = plan(
            &[vs(LbAlgo::Rr, &RS)],
            &HealthSnapshot::default(),
            &hops(&RS[..2]),
        );
        assert_eq!(tables.services[0].table, vec![0, 1]);
        assert!(!tables.backends.contains_key(&2));
    }

    #[test]
    fn failed_and_drained_servers_leave_the_table_but_drained_ones_keep_their_flows() {
        let health = HealthSnapshot {
            services: vec![ServiceHealth {
                pool: ServicePool {
                    members: vec![
                        PoolMember {
                            in_pool: true,
                            weight: 1,
                        },
                        PoolMember {
                            in_pool: false,
                            weight: 1,
                        },
                        PoolMember {
                            in_pool: true,
                            weight: 0,
                        },
                    ],
                    use_sorry: false,
                },
                ..ServiceHealth::default()
            }],
        };
        let tables = plan(&[vs(LbAlgo::Mh, &RS)], &health, &hops(&RS));
        assert!(tables.services[0].table.iter().all(|&b| b == 0));
        assert_eq!(tables.backends[&1].flags & backend_flags::IN_POOL, 0);
        assert_eq!(
            tables.backends[&2].flags & backend_flags::IN_POOL,
            backend_flags::IN_POOL
        );
        assert_eq!(tables.backends[&2].weight, 0);
    }

    #[test]
    fn sorry_server_takes_over_when_the_pool_says_so() {
        let mut service = vs(LbAlgo::Wrr, &RS);
        service.sorry_server = Some("192.0.2.50:80".parse().unwrap());
        let all = [RS[0], RS[1], RS[2], "192.0.2.50:80"];
        let health = HealthSnapshot {
            services: vec![ServiceHealth {
                pool: ServicePool {
                    members: vec![
                        PoolMember {
                            in_pool: false,
                            weight: 1
                        };
                        3
                    ],
                    use_sorry: true,
                },
                ..ServiceHealth::default()
            }],
        };
        let tables = plan(&[service], &health, &hops(&all));
        assert!(tables.services[0].table.is_empty());
        assert_eq!(tables.services[0].service.sorry_backend, sorry_id(0));
        assert_eq!(tables.backends[&sorry_id(0)].mac, [2, 0, 0, 0, 0, 4]);
    }

    #[test]
    fn persistence_granularity_becomes_a_mask() {
        let mut service = vs(LbAlgo::Rr, &RS);
        service.persistence_timeout = Some(Duration::from_secs(60));
        service.persistence_prefix = Some(24);
        let tables = plan(&[service], &HealthSnapshot::default(), &hops(&RS));
        let s = &tables.services[0].service;
        assert_ne!(s.flags & service_flags::PERSIST, 0);
        assert_eq!(s.persist_timeout_ns, 60_000_000_000);
        assert_eq!(&s.persist_mask[..5], &[0xff, 0xff, 0xff, 0, 0]);
        assert_eq!(prefix_mask(20, FAMILY_IPV4)[2], 0xf0);
        assert_eq!(prefix_mask(128, FAMILY_IPV6), [0xff; 16]);
    }

    #[test]
    fn alpha_starts_with_nobody_until_the_checkers_speak() {
        let mut service = vs(LbAlgo::Rr, &RS);
        service.alpha = true;
        let tables = plan(&[service], &HealthSnapshot::default(), &hops(&RS));
        assert!(tables.services[0].table.is_empty());
    }
}
