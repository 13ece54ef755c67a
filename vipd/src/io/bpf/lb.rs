//! The load balancer's maps, from userspace: [`LbMaps`] takes them out of one loaded
//! program and writes a whole desired state ([`LbTables`]) into them so that no packet
//! ever sees a half-written pool (see `vipd_common::lb`).

use std::collections::{BTreeMap, HashMap as StdHashMap, HashSet};

use aya::maps::{Array, HashMap as BpfHashMap, Map, MapData, PerCpuArray};
use vipd_common::lb::{
    LB_TABLE_SIZE, LbAddrKey, LbBackend, LbCounters, LbFlow, LbFlowKey, LbService, LbServiceKey,
    LbStat, MAX_LB_BACKENDS, MAX_LB_SERVICES, map_names,
};

use super::BpfError;
use super::load::LoadedXdp;

/// One service as the program should see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTables {
    /// Every (address, port, protocol) that leads to it.
    pub keys: Vec<LbServiceKey>,
    /// The service entry; [`LbMaps::apply`] fills `table_base` and `table_len`.
    pub service: LbService,
    /// Backend ids, as the scheduler indexes them (≤ [`LB_TABLE_SIZE`] entries).
    pub table: Vec<u32>,
}

/// The whole desired state of the load balancer's maps.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LbTables {
    /// Services, by id (`service.id`).
    pub services: Vec<ServiceTables>,
    /// Backends by id.
    pub backends: BTreeMap<u32, LbBackend>,
}

/// What was last written for one service id.
#[derive(Debug, Default)]
struct Written {
    /// The half the program reads (0 or 1).
    live: u32,
    /// The contents of each half, as last written.
    halves: [Vec<u32>; 2],
}

/// The load balancer's maps of one program copy.
pub struct LbMaps {
    services: BpfHashMap<MapData, LbServiceKey, LbService>,
    addrs: BpfHashMap<MapData, LbAddrKey, u32>,
    tables: Array<MapData, u32>,
    backends: Array<MapData, LbBackend>,
    flows: BpfHashMap<MapData, LbFlowKey, LbFlow>,
    backend_stats: PerCpuArray<MapData, LbCounters>,
    active: Array<MapData, u64>,
    stats: PerCpuArray<MapData, u64>,
    written: StdHashMap<u32, Written>,
    keys: HashSet<LbServiceKey>,
    addr_keys: HashSet<LbAddrKey>,
    backend_ids: HashSet<u32>,
}

impl std::fmt::Debug for LbMaps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LbMaps")
            .field("services", &self.keys.len())
            .field("backends", &self.backend_ids.len())
            .finish_non_exhaustive()
    }
}

fn take(loaded: &mut LoadedXdp, name: &'static str) -> Result<Map, BpfError> {
    loaded.ebpf.take_map(name).ok_or(BpfError::Missing(name))
}

fn map_err(name: &'static str) -> impl Fn(aya::maps::MapError) -> BpfError {
    move |source| BpfError::Map { name, source }
}

impl LoadedXdp {
    /// Takes the load balancer's maps out of this program copy (once). Load the copy
    /// with [`super::LoadOptions::lb`] set, or the maps hold one entry each.
    pub fn take_lb_maps(&mut self) -> Result<LbMaps, BpfError> {
        use map_names as n;
        Ok(LbMaps {
            services: BpfHashMap::try_from(take(self, n::LB_SERVICES)?)
                .map_err(map_err(n::LB_SERVICES))?,
            addrs: BpfHashMap::try_from(take(self, n::LB_ADDRS)?).map_err(map_err(n::LB_ADDRS))?,
            tables: Array::try_from(take(self, n::LB_TABLES)?).map_err(map_err(n::LB_TABLES))?,
            backends: Array::try_from(take(self, n::LB_BACKENDS)?)
                .map_err(map_err(n::LB_BACKENDS))?,
            flows: BpfHashMap::try_from(take(self, n::LB_FLOWS)?).map_err(map_err(n::LB_FLOWS))?,
            backend_stats: PerCpuArray::try_from(take(self, n::LB_BACKEND_STATS)?)
                .map_err(map_err(n::LB_BACKEND_STATS))?,
            active: Array::try_from(take(self, n::LB_ACTIVE)?).map_err(map_err(n::LB_ACTIVE))?,
            stats: PerCpuArray::try_from(take(self, n::LB_STATS)?).map_err(map_err(n::LB_STATS))?,
            written: StdHashMap::new(),
            keys: HashSet::new(),
            addr_keys: HashSet::new(),
            backend_ids: HashSet::new(),
        })
    }
}

/// The `LB_ADDRS` key of a service key.
fn addr_key(key: &LbServiceKey) -> LbAddrKey {
    LbAddrKey {
        addr: key.addr,
        family: key.family,
        _pad: [0; 3],
    }
}

impl LbMaps {
    /// Makes the maps say what `tables` says. Order matters for the packets in flight:
    /// backends first (a table may only name a written backend), then each service's
    /// table into its idle half, then the service entries (the switch), and only then
    /// the removal of what is gone.
    pub fn apply(&mut self, tables: &LbTables) -> Result<(), BpfError> {
        for (&id, backend) in &tables.backends {
            if id >= MAX_LB_BACKENDS {
                return Err(BpfError::LbCapacity {
                    what: "backend id",
                    value: id,
                });
            }
            if self.backends.get(&id, 0).ok() != Some(*backend) {
                self.backends
                    .set(id, *backend, 0)
                    .map_err(map_err(map_names::LB_BACKENDS))?;
            }
        }
        let mut keys = HashSet::new();
        let mut addr_keys = HashSet::new();
        for entry in &tables.services {
            let id = entry.service.id;
            if id >= MAX_LB_SERVICES || entry.table.len() > LB_TABLE_SIZE as usize {
                return Err(BpfError::LbCapacity {
                    what: "service id or table",
                    value: id,
                });
            }
            let written = self.written.entry(id).or_default();
            let unchanged = written.halves[written.live as usize] == entry.table;
            let half = if unchanged {
                written.live
            } else {
                1 - written.live
            };
            let base = (id * 2 + half) * LB_TABLE_SIZE;
            if !unchanged {
                let previous = &written.halves[half as usize];
                for (i, &backend) in entry.table.iter().enumerate() {
                    if previous.get(i) != Some(&backend) {
                        self.tables
                            .set(base + i as u32, backend, 0)
                            .map_err(map_err(map_names::LB_TABLES))?;
                    }
                }
                written.halves[half as usize] = entry.table.clone();
            }
            let mut service = entry.service;
            service.table_base = base;
            service.table_len = entry.table.len() as u32;
            for key in &entry.keys {
                if self.services.get(key, 0).ok() != Some(service) {
                    self.services
                        .insert(key, service, 0)
                        .map_err(map_err(map_names::LB_SERVICES))?;
                }
                keys.insert(*key);
                let addr = addr_key(key);
                if !self.addr_keys.contains(&addr) {
                    self.addrs
                        .insert(addr, 0, 0)
                        .map_err(map_err(map_names::LB_ADDRS))?;
                }
                addr_keys.insert(addr);
            }
            written.live = half;
        }
        for gone in self.keys.difference(&keys) {
            // Already absent is fine: the goal is "not there".
            let _ = self.services.remove(gone);
        }
        for gone in self.addr_keys.difference(&addr_keys) {
            let _ = self.addrs.remove(gone);
        }
        let live_ids: HashSet<u32> = tables.services.iter().map(|s| s.service.id).collect();
        self.written.retain(|id, _| live_ids.contains(id));
        let backend_ids: HashSet<u32> = tables.backends.keys().copied().collect();
        for gone in self.backend_ids.difference(&backend_ids) {
            // Out of the pool: a flow still naming it is scheduled afresh.
            let _ = self.backends.set(*gone, zeroed_backend(), 0);
        }
        self.keys = keys;
        self.addr_keys = addr_keys;
        self.backend_ids = backend_ids;
        Ok(())
    }

    /// Packets and bytes forwarded to backend `id`, summed across CPUs.
    pub fn backend_counters(&self, id: u32) -> Result<LbCounters, BpfError> {
        let values = self
            .backend_stats
            .get(&id, 0)
            .map_err(map_err(map_names::LB_BACKEND_STATS))?;
        Ok(values
            .iter()
            .fold(LbCounters::default(), |sum, c| LbCounters {
                packets: sum.packets + c.packets,
                bytes: sum.bytes + c.bytes,
            }))
    }

    /// The data path's counters, summed across CPUs, by stable name.
    pub fn stats(&self) -> Result<BTreeMap<&'static str, u64>, BpfError> {
        let mut out = BTreeMap::new();
        for stat in LbStat::ALL {
            let values = self
                .stats
                .get(&(stat as u32), 0)
                .map_err(map_err(map_names::LB_STATS))?;
            out.insert(stat.name(), values.iter().sum());
        }
        Ok(out)
    }

    /// Counts the open flows per backend (not closing, seen within `idle_ns` of
    /// `now_ns`), writes the counts into `LB_ACTIVE` (the lc/wlc input, correcting
    /// what the program's unsynchronised increments and LRU evictions got wrong) and
    /// returns them.
    pub fn recount_active(
        &mut self,
        now_ns: u64,
        idle_ns: u64,
    ) -> Result<StdHashMap<u32, u64>, BpfError> {
        let mut counts: StdHashMap<u32, u64> = StdHashMap::new();
        for item in self.flows.iter() {
            // A flow evicted between the key walk and the lookup is simply not counted.
            let Ok((_, flow)) = item else { continue };
            if flow.closing == 0 && now_ns.saturating_sub(flow.last_ns) < idle_ns {
                *counts.entry(flow.backend).or_default() += 1;
            }
        }
        for &id in &self.backend_ids {
            let count = counts.get(&id).copied().unwrap_or(0);
            self.active
                .set(id, count, 0)
                .map_err(map_err(map_names::LB_ACTIVE))?;
        }
        Ok(counts)
    }

    /// Open flows of backend `id` as `LB_ACTIVE` holds them: the last recount plus what
    /// the program counted since.
    pub fn active(&self, id: u32) -> Result<u64, BpfError> {
        self.active
            .get(&id, 0)
            .map_err(map_err(map_names::LB_ACTIVE))
    }

    /// Number of entries in the flow table (every age).
    pub fn flow_count(&self) -> usize {
        self.flows.keys().filter(Result::is_ok).count()
    }
}

fn zeroed_backend() -> LbBackend {
    LbBackend {
        mac: [0; 6],
        src_mac: [0; 6],
        ifindex: 0,
        weight: 0,
        flags: 0,
        family: 0,
        _pad: [0; 2],
        addr: [0; 16],
        tunnel_src: [0; 16],
    }
}
