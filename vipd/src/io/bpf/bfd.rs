//! The BFD session map (`BFD_SESSIONS`): which sessions the program records control
//! packets for, and what it recorded. See `vipd-ebpf/src/bfd.rs` for the checks.

use std::net::IpAddr;

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
        match sessions.get(&local_discriminator, 0) {
            Ok(entry) if entry.last_seen_ns != 0 => Ok(Some(BfdRecord {
                last_seen_ns: entry.last_seen_ns,
                count: entry.count,
                packet: entry.packet,
            })),
            Ok(_) | Err(aya::maps::MapError::KeyNotFound) => Ok(None),
            Err(source) => Err(BpfError::Map { name, source }),
        }
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
}
