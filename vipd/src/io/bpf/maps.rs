//! Typed access to the program's state maps: VIP leases and lease clocks (the ARP and
//! neighbour discovery responders), advert watches and the adverts the program observed (the election),
//! per-CPU counters; and the layout a pinned map from an earlier run must have to be
//! reused.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use aya::maps::{HashMap as BpfHashMap, MapData, MapInfo, MapType, PerCpuArray};
use vipd_common::{
    AUTH_NONE, AUTH_SIMPLE_TEXT, FAMILY_IPV4, FAMILY_IPV6, MAX_LEASE_CLOCKS, MAX_VIPS, MAX_WATCHES,
    NO_LEASE_CLOCK, ObservedAdvert as RawObservedAdvert, Stat, Vip6Key, VipKey, VipLease,
    WatchEntry, WatchKey, map_names,
};

use super::{BpfError, LoadedXdp};
use crate::proto::wire::{Auth, Centiseconds, Version};

/// The address family of a virtual router (RFC 5798 §5.2.3: IPv4 and IPv6 instances of
/// one VRID are separate routers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IpFamily {
    /// VRRP over IPv4 (v2 or v3).
    Ipv4,
    /// VRRP over IPv6 (v3 only).
    Ipv6,
}

impl IpFamily {
    /// The value in the maps' `family` fields.
    pub const fn to_raw(self) -> u8 {
        match self {
            IpFamily::Ipv4 => FAMILY_IPV4,
            IpFamily::Ipv6 => FAMILY_IPV6,
        }
    }

    pub(super) fn from_raw(raw: u8) -> Option<Self> {
        match raw {
            FAMILY_IPV4 => Some(IpFamily::Ipv4),
            FAMILY_IPV6 => Some(IpFamily::Ipv6),
            _ => None,
        }
    }

    pub(super) fn address(self, raw: [u8; 16]) -> IpAddr {
        match self {
            IpFamily::Ipv4 => IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3])),
            IpFamily::Ipv6 => IpAddr::V6(Ipv6Addr::from(raw)),
        }
    }
}

/// What the program expects of adverts for one watched (interface, VRID, family).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchSpec {
    /// The configured VRRP version; adverts of the other version are not recorded.
    pub version: Version,
    /// v2 authentication to require; must be [`Auth::None`] for v3.
    pub auth: Auth,
    /// After this much silence from the recorded master, its next advert raises
    /// [`AdvertEventKind::MasterBack`](vipd_common::AdvertEventKind::MasterBack); typically Master_Down_Interval. Zero disables.
    pub silence: Duration,
}

impl WatchSpec {
    fn to_entry(self, family: IpFamily) -> Result<WatchEntry, BpfError> {
        let invalid = |reason| Err(BpfError::InvalidWatch { reason });
        if self.version == Version::V2 && family == IpFamily::Ipv6 {
            return invalid("VRRPv2 (RFC 3768) is IPv4 only");
        }
        let (auth_type, auth_data) = match (self.version, self.auth) {
            (_, Auth::None) => (AUTH_NONE, [0; 8]),
            (Version::V3, _) => return invalid("VRRPv3 adverts carry no authentication"),
            (Version::V2, Auth::SimpleText(password)) => (AUTH_SIMPLE_TEXT, password),
            // The program checks only the type of other schemes (IP AH is deprecated).
            (Version::V2, Auth::Other { auth_type, .. }) => (auth_type, [0; 8]),
        };
        Ok(WatchEntry {
            version: self.version.number(),
            auth_type,
            _pad: [0; 6],
            auth_data,
            silence_ns: u64::try_from(self.silence.as_nanos()).unwrap_or(u64::MAX),
        })
    }
}

/// The last advert the program accepted for a watched (interface, VRID, family).
///
/// Times are `CLOCK_MONOTONIC` ns (what `bpf_ktime_get_ns` and [`monotonic_now_ns`](super::monotonic_now_ns)
/// read), not `Instant`s, so the record stays plain data; [`ObservedAdvert::age`] and
/// [`ObservedAdvert::last_seen_at`] convert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObservedAdvert {
    /// When the last accepted advert arrived, CLOCK_MONOTONIC ns.
    pub last_seen_ns: u64,
    /// Accepted adverts since the first (from any source).
    pub count: u64,
    /// Its source address: the current master.
    pub source: IpAddr,
    /// Its priority.
    pub priority: u8,
    /// Its VRRP version.
    pub version: Version,
    /// Its Count IPvX Addr field.
    pub address_count: u8,
    /// Its advertisement interval (v2 seconds converted to centiseconds).
    pub interval: Centiseconds,
}

impl ObservedAdvert {
    fn from_raw(raw: &RawObservedAdvert) -> Option<Self> {
        let family = IpFamily::from_raw(raw.family)?;
        Some(ObservedAdvert {
            last_seen_ns: raw.last_seen_ns,
            count: raw.count,
            source: family.address(raw.src_addr),
            priority: raw.priority,
            version: if raw.version == 2 {
                Version::V2
            } else {
                Version::V3
            },
            address_count: raw.address_count,
            interval: Centiseconds(raw.interval_cs),
        })
    }

    /// How long ago the last advert arrived, given CLOCK_MONOTONIC `now_ns`.
    pub fn age(&self, now_ns: u64) -> Duration {
        Duration::from_nanos(now_ns.saturating_sub(self.last_seen_ns))
    }

    /// The `Instant` of the last advert, given one simultaneous reading of both clocks
    /// (`now`, and `now_ns` from [`monotonic_now_ns`](super::monotonic_now_ns)); for arming a tokio timer.
    pub fn last_seen_at(&self, now: Instant, now_ns: u64) -> Instant {
        now.checked_sub(self.age(now_ns)).unwrap_or(now)
    }
}

/// The layout a pinned map must have to be reused: (name, type, key size, value size,
/// max entries).
fn pinned_map_layouts() -> [(&'static str, MapType, u32, u32, u32); 6] {
    let size = |n: usize| n as u32;
    [
        (
            map_names::LEASE_CLOCKS,
            MapType::Array,
            4,
            size(size_of::<u64>()),
            MAX_LEASE_CLOCKS,
        ),
        (
            map_names::VIP_LEASES,
            MapType::Hash,
            size(size_of::<VipKey>()),
            size(size_of::<VipLease>()),
            MAX_VIPS,
        ),
        (
            map_names::VIP6_LEASES,
            MapType::Hash,
            size(size_of::<Vip6Key>()),
            size(size_of::<VipLease>()),
            MAX_VIPS,
        ),
        (
            map_names::STATS,
            MapType::PerCpuArray,
            4,
            size(size_of::<u64>()),
            Stat::COUNT,
        ),
        (
            map_names::ADVERT_WATCHES,
            MapType::Hash,
            size(size_of::<WatchKey>()),
            size(size_of::<WatchEntry>()),
            MAX_WATCHES,
        ),
        (
            map_names::OBSERVED_ADVERTS,
            MapType::Hash,
            size(size_of::<WatchKey>()),
            size(size_of::<RawObservedAdvert>()),
            MAX_WATCHES,
        ),
    ]
}

/// Refuses pinned maps whose layout differs from this build's: aya would reuse them
/// blindly, and the program would then read garbage or be rejected by the verifier.
pub(super) fn check_pinned_maps(dir: &Path) -> Result<(), BpfError> {
    for (name, map_type, key_size, value_size, max_entries) in pinned_map_layouts() {
        let path = dir.join(name);
        if !path.exists() {
            continue;
        }
        let info = MapInfo::from_pin(&path).map_err(|source| BpfError::Map { name, source })?;
        let found_type = info.map_type().ok();
        let describe = |t: Option<MapType>, k: u32, v: u32, m: u32| {
            format!("type {t:?}, key {k} B, value {v} B, {m} entries")
        };
        if found_type != Some(map_type)
            || info.key_size() != key_size
            || info.value_size() != value_size
            || info.max_entries() != max_entries
        {
            return Err(BpfError::PinnedMapMismatch {
                path,
                found: describe(
                    found_type,
                    info.key_size(),
                    info.value_size(),
                    info.max_entries(),
                ),
                expected: describe(Some(map_type), key_size, value_size, max_entries),
            });
        }
    }
    Ok(())
}

impl LoadedXdp {
    fn hash_map<K: aya::Pod, V: aya::Pod>(
        &mut self,
        name: &'static str,
    ) -> Result<BpfHashMap<&mut MapData, K, V>, BpfError> {
        let map = self.ebpf.map_mut(name).ok_or(BpfError::Missing(name))?;
        BpfHashMap::try_from(map).map_err(|source| BpfError::Map { name, source })
    }

    /// Makes the program answer ARP (IPv4) or neighbour solicitations (IPv6) for `vip`
    /// arriving on `ifindex` with `owner_mac` until `lease_expires_ns`
    /// (CLOCK_MONOTONIC; [`vipd_common::LEASE_FOREVER`] for never).
    pub fn set_vip_lease(
        &mut self,
        ifindex: u32,
        vip: impl Into<IpAddr>,
        owner_mac: [u8; 6],
        lease_expires_ns: u64,
    ) -> Result<(), BpfError> {
        let lease = VipLease {
            owner_mac,
            _pad: [0; 2],
            lease_clock: NO_LEASE_CLOCK,
            _pad2: [0; 4],
            lease_expires_ns,
        };
        self.insert_lease(ifindex, vip.into(), lease)
    }

    /// Like [`LoadedXdp::set_vip_lease`], but the lease is slot `clock` of the shared
    /// lease clocks ([`LoadedXdp::set_lease_clock`]): one write renews every VIP that
    /// points at it, of either family.
    pub fn set_vip_clocked(
        &mut self,
        ifindex: u32,
        vip: impl Into<IpAddr>,
        owner_mac: [u8; 6],
        clock: u32,
    ) -> Result<(), BpfError> {
        if clock >= MAX_LEASE_CLOCKS {
            return Err(BpfError::LeaseClockOutOfRange { clock });
        }
        let lease = VipLease {
            owner_mac,
            _pad: [0; 2],
            lease_clock: clock,
            _pad2: [0; 4],
            lease_expires_ns: 0,
        };
        self.insert_lease(ifindex, vip.into(), lease)
    }

    /// Writes `lease` into the lease map of `vip`'s family.
    fn insert_lease(&mut self, ifindex: u32, vip: IpAddr, lease: VipLease) -> Result<(), BpfError> {
        match vip {
            IpAddr::V4(vip) => {
                let name = map_names::VIP_LEASES;
                self.hash_map(name)?
                    .insert(vip_key(ifindex, vip), lease, 0)
                    .map_err(|source| BpfError::Map { name, source })
            }
            IpAddr::V6(vip) => {
                let name = map_names::VIP6_LEASES;
                self.hash_map(name)?
                    .insert(vip6_key(ifindex, vip), lease, 0)
                    .map_err(|source| BpfError::Map { name, source })
            }
        }
    }

    /// Sets lease clock `clock` to expire at `expires_ns` (CLOCK_MONOTONIC; 0 voids it).
    pub fn set_lease_clock(&mut self, clock: u32, expires_ns: u64) -> Result<(), BpfError> {
        let name = map_names::LEASE_CLOCKS;
        let map = self.ebpf.map_mut(name).ok_or(BpfError::Missing(name))?;
        let mut clocks: aya::maps::Array<&mut MapData, u64> =
            aya::maps::Array::try_from(map).map_err(|source| BpfError::Map { name, source })?;
        if clock >= MAX_LEASE_CLOCKS {
            return Err(BpfError::LeaseClockOutOfRange { clock });
        }
        clocks
            .set(clock, expires_ns, 0)
            .map_err(|source| BpfError::Map { name, source })
    }

    /// Stops managing `vip` on `ifindex`: ARP or neighbour discovery for it goes back
    /// to the kernel.
    pub fn remove_vip(&mut self, ifindex: u32, vip: impl Into<IpAddr>) -> Result<(), BpfError> {
        match vip.into() {
            IpAddr::V4(vip) => {
                let name = map_names::VIP_LEASES;
                let mut map = self.hash_map::<VipKey, VipLease>(name)?;
                ignore_missing(name, map.remove(&vip_key(ifindex, vip)))
            }
            IpAddr::V6(vip) => {
                let name = map_names::VIP6_LEASES;
                let mut map = self.hash_map::<Vip6Key, VipLease>(name)?;
                ignore_missing(name, map.remove(&vip6_key(ifindex, vip)))
            }
        }
    }

    /// The lease of `vip` on `ifindex`, if managed (e.g. inherited by a takeover).
    pub fn vip_lease(
        &self,
        ifindex: u32,
        vip: impl Into<IpAddr>,
    ) -> Result<Option<VipLease>, BpfError> {
        fn get<K: aya::Pod>(
            xdp: &LoadedXdp,
            name: &'static str,
            key: &K,
        ) -> Result<Option<VipLease>, BpfError> {
            let map = xdp.ebpf.map(name).ok_or(BpfError::Missing(name))?;
            let leases: BpfHashMap<&MapData, K, VipLease> =
                BpfHashMap::try_from(map).map_err(|source| BpfError::Map { name, source })?;
            match leases.get(key, 0) {
                Ok(lease) => Ok(Some(lease)),
                Err(aya::maps::MapError::KeyNotFound) => Ok(None),
                Err(source) => Err(BpfError::Map { name, source }),
            }
        }
        match vip.into() {
            IpAddr::V4(vip) => get(self, map_names::VIP_LEASES, &vip_key(ifindex, vip)),
            IpAddr::V6(vip) => get(self, map_names::VIP6_LEASES, &vip6_key(ifindex, vip)),
        }
    }

    /// Makes the program check and record adverts for `vrid` over `family` arriving on
    /// `ifindex`. Replaces an existing watch; keeps what was observed so far.
    pub fn watch(
        &mut self,
        ifindex: u32,
        vrid: u8,
        family: IpFamily,
        spec: &WatchSpec,
    ) -> Result<(), BpfError> {
        let entry = spec.to_entry(family)?;
        let name = map_names::ADVERT_WATCHES;
        self.hash_map(name)?
            .insert(watch_key(ifindex, vrid, family), entry, 0)
            .map_err(|source| BpfError::Map { name, source })
    }

    /// Stops watching `vrid`/`family` on `ifindex` and forgets what was observed; its
    /// adverts then pass untouched. Unwatching twice is fine.
    pub fn unwatch(&mut self, ifindex: u32, vrid: u8, family: IpFamily) -> Result<(), BpfError> {
        let key = watch_key(ifindex, vrid, family);
        let name = map_names::ADVERT_WATCHES;
        let mut watches = self.hash_map::<WatchKey, WatchEntry>(name)?;
        ignore_missing(name, watches.remove(&key))?;
        // After the watch is gone the program cannot re-create the record.
        let name = map_names::OBSERVED_ADVERTS;
        let mut observed = self.hash_map::<WatchKey, RawObservedAdvert>(name)?;
        ignore_missing(name, observed.remove(&key))
    }

    /// The last advert accepted for `vrid`/`family` on `ifindex`, if any since the watch
    /// began.
    pub fn observed(
        &self,
        ifindex: u32,
        vrid: u8,
        family: IpFamily,
    ) -> Result<Option<ObservedAdvert>, BpfError> {
        let name = map_names::OBSERVED_ADVERTS;
        let map = self.ebpf.map(name).ok_or(BpfError::Missing(name))?;
        let observed: BpfHashMap<&MapData, WatchKey, RawObservedAdvert> =
            BpfHashMap::try_from(map).map_err(|source| BpfError::Map { name, source })?;
        match observed.get(&watch_key(ifindex, vrid, family), 0) {
            Ok(raw) => Ok(ObservedAdvert::from_raw(&raw)),
            Err(aya::maps::MapError::KeyNotFound) => Ok(None),
            Err(source) => Err(BpfError::Map { name, source }),
        }
    }

    /// The program's counters, summed across CPUs, by stable name.
    pub fn stats(&self) -> Result<BTreeMap<&'static str, u64>, BpfError> {
        let name = map_names::STATS;
        let map = self.ebpf.map(name).ok_or(BpfError::Missing("map STATS"))?;
        let array: PerCpuArray<&MapData, u64> =
            PerCpuArray::try_from(map).map_err(|source| BpfError::Map { name, source })?;
        let mut out = BTreeMap::new();
        for stat in Stat::ALL {
            let values = array
                .get(&(stat as u32), 0)
                .map_err(|source| BpfError::Map { name, source })?;
            out.insert(stat.name(), values.iter().sum());
        }
        Ok(out)
    }
}

fn vip_key(ifindex: u32, vip: Ipv4Addr) -> VipKey {
    VipKey {
        ifindex,
        addr_be: vip.octets(),
    }
}

fn vip6_key(ifindex: u32, vip: Ipv6Addr) -> Vip6Key {
    Vip6Key {
        ifindex,
        addr: vip.octets(),
    }
}

fn watch_key(ifindex: u32, vrid: u8, family: IpFamily) -> WatchKey {
    WatchKey {
        ifindex,
        vrid,
        family: family.to_raw(),
        _pad: [0; 2],
    }
}

/// A map delete that treats "not there" as done.
fn ignore_missing(
    name: &'static str,
    result: Result<(), aya::maps::MapError>,
) -> Result<(), BpfError> {
    match result {
        Ok(()) | Err(aya::maps::MapError::KeyNotFound) => Ok(()),
        Err(aya::maps::MapError::SyscallError(e))
            if e.io_error.kind() == std::io::ErrorKind::NotFound =>
        {
            Ok(())
        }
        Err(source) => Err(BpfError::Map { name, source }),
    }
}
