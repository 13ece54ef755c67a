//! The BFD session map (`BFD_SESSIONS`): which sessions the program records control
//! packets for, and what it recorded. See `vipd-ebpf/src/bfd.rs` for the checks.

use std::net::IpAddr;
use std::os::fd::AsFd as _;

use aya::maps::{HashMap as BpfHashMap, MapData};
use vipd_common::{BFD_CONTROL_LEN, BFD_SESSIONS_MAP, BfdObserved, FAMILY_IPV4, FAMILY_IPV6};

use super::{BpfError, LoadedXdp, XdpAttachment};

/// What the program recorded for one session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BfdRecord {
    /// When (CLOCK_MONOTONIC ns).
    pub last_seen_ns: u64,
    /// Packets recorded.
    pub count: u64,
    /// The last packet's mandatory section.
    pub packet: [u8; BFD_CONTROL_LEN],
}

/// An owned handle on one program's BFD record map (a duplicate of its fd), so the BFD
/// thread can read records while the daemon thread keeps the program.
pub struct BfdRecords {
    map: BpfHashMap<MapData, u32, BfdObserved>,
}

impl std::fmt::Debug for BfdRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BfdRecords").finish_non_exhaustive()
    }
}

impl BfdRecords {
    /// The record of `local_discriminator`'s session, once a packet was recorded.
    pub fn get(&self, local_discriminator: u32) -> Result<Option<BfdRecord>, BpfError> {
        record_of(&self.map, local_discriminator)
    }
}

fn record_of<T: std::borrow::Borrow<MapData>>(
    sessions: &BpfHashMap<T, u32, BfdObserved>,
    local_discriminator: u32,
) -> Result<Option<BfdRecord>, BpfError> {
    match sessions.get(&local_discriminator, 0) {
        Ok(entry) if entry.last_seen_ns != 0 => Ok(Some(BfdRecord {
            last_seen_ns: entry.last_seen_ns,
            count: entry.count,
            packet: entry.packet,
        })),
        Ok(_) | Err(aya::maps::MapError::KeyNotFound) => Ok(None),
        Err(source) => Err(BpfError::Map {
            name: BFD_SESSIONS_MAP,
            source,
        }),
    }
}

impl LoadedXdp {
    fn bfd_map(&mut self) -> Result<BpfHashMap<&mut MapData, u32, BfdObserved>, BpfError> {
        let name = BFD_SESSIONS_MAP;
        let map = self.ebpf.map_mut(name).ok_or(BpfError::Missing(name))?;
        BpfHashMap::try_from(map).map_err(|source| BpfError::Map { name, source })
    }

    /// Records control packets to `local_discriminator` from `neighbor` with a TTL /
    /// hop limit of at least `min_ttl` (replacing any earlier registration and record).
    pub fn watch_bfd(
        &mut self,
        local_discriminator: u32,
        neighbor: IpAddr,
        min_ttl: u8,
    ) -> Result<(), BpfError> {
        let (family, address) = match neighbor {
            IpAddr::V4(v4) => {
                let mut address = [0u8; 16];
                address[..4].copy_from_slice(&v4.octets());
                (FAMILY_IPV4, address)
            }
            IpAddr::V6(v6) => (FAMILY_IPV6, v6.octets()),
        };
        let entry = BfdObserved {
            last_seen_ns: 0,
            count: 0,
            neighbor: address,
            family,
            min_ttl,
            _pad: [0; 2],
            packet: [0; BFD_CONTROL_LEN],
            _pad2: [0; 4],
        };
        self.bfd_map()?
            .insert(local_discriminator, entry, 0)
            .map_err(|source| BpfError::Map {
                name: BFD_SESSIONS_MAP,
                source,
            })
    }

    /// Forgets every session (before a new set is registered).
    pub fn unwatch_all_bfd(&mut self) -> Result<(), BpfError> {
        let mut map = self.bfd_map()?;
        let keys: Vec<u32> = map.keys().filter_map(Result::ok).collect();
        for key in keys {
            let _ = map.remove(&key);
        }
        Ok(())
    }

    /// The record of `local_discriminator`'s session, once a packet was recorded.
    pub fn bfd_record(&self, local_discriminator: u32) -> Result<Option<BfdRecord>, BpfError> {
        let name = BFD_SESSIONS_MAP;
        let map = self.ebpf.map(name).ok_or(BpfError::Missing(name))?;
        let sessions: BpfHashMap<&MapData, u32, BfdObserved> =
            BpfHashMap::try_from(map).map_err(|source| BpfError::Map { name, source })?;
        record_of(&sessions, local_discriminator)
    }

    /// An owned handle on the record map for another thread.
    pub fn bfd_records(&self) -> Result<BfdRecords, BpfError> {
        let name = BFD_SESSIONS_MAP;
        let map = self.ebpf.map(name).ok_or(BpfError::Missing(name))?;
        let aya::maps::Map::HashMap(data) = map else {
            return Err(BpfError::Missing(name));
        };
        let fd = data
            .fd()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| BpfError::Map {
                name,
                source: aya::maps::MapError::SyscallError(aya::sys::SyscallError {
                    call: "dup",
                    io_error: e,
                }),
            })?;
        let data = MapData::from_fd(fd).map_err(|source| BpfError::Map { name, source })?;
        let map = BpfHashMap::try_from(aya::maps::Map::HashMap(data))
            .map_err(|source| BpfError::Map { name, source })?;
        Ok(BfdRecords { map })
    }
}

impl XdpAttachment {
    /// See [`LoadedXdp::watch_bfd`].
    pub fn watch_bfd(
        &mut self,
        local_discriminator: u32,
        neighbor: IpAddr,
        min_ttl: u8,
    ) -> Result<(), BpfError> {
        self.program
            .watch_bfd(local_discriminator, neighbor, min_ttl)
    }

    /// See [`LoadedXdp::unwatch_all_bfd`].
    pub fn unwatch_all_bfd(&mut self) -> Result<(), BpfError> {
        self.program.unwatch_all_bfd()
    }

    /// See [`LoadedXdp::bfd_record`].
    pub fn bfd_record(&self, local_discriminator: u32) -> Result<Option<BfdRecord>, BpfError> {
        self.program.bfd_record(local_discriminator)
    }

    /// See [`LoadedXdp::bfd_records`].
    pub fn bfd_records(&self) -> Result<BfdRecords, BpfError> {
        self.program.bfd_records()
    }
}
