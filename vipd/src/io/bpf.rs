//! Loading and attaching vipd's XDP program, and reading/writing its maps.
//!
//! The object is built by `build.rs` (aya-build) and embedded in the binary, so a vipd
//! binary is self-contained. One [`XdpAttachment`] is one copy of the program attached to
//! one interface with its own maps.
//!
//! - VIP leases ([`XdpAttachment::set_vip_lease`]) drive the ARP responder.
//! - Watches ([`XdpAttachment::watch`]) make the program check and record VRRP adverts
//!   for one (VRID, family); [`XdpAttachment::observed`] reads the record (the Backup's
//!   Master_Down_Timer runs from its `last_seen_ns`) and [`AdvertEvents`] yields the
//!   changes the election must act on at once.
//! - Without pinning, dropping the attachment detaches the program. With pinning
//!   ([`AttachOptions::pin`]) the link and the state maps live in bpffs and outlive the
//!   process; the next attach on the interface takes them over, and
//!   [`XdpAttachment::detach_and_unpin`] is the clean shutdown. See docs/xdp.md.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs::File;
use std::io::{Read as _, Seek as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aya::maps::{HashMap as BpfHashMap, MapData, MapInfo, MapType, PerCpuArray, RingBuf};
use aya::programs::links::{FdLink, PinnedLink};
use aya::programs::xdp::{XdpLink, XdpLinkId};
use aya::programs::{ProgramError, Xdp, XdpMode};
use aya::{Ebpf, EbpfLoader, TestRun as _, TestRunOptions};
use tokio::io::unix::AsyncFd;
use vipd_common::{
    AUTH_NONE, AUTH_SIMPLE_TEXT, AdvertEvent as RawAdvertEvent, AdvertEventKind, FAMILY_IPV4,
    FAMILY_IPV6, LOG_ENABLED_GLOBAL, MAX_LEASE_CLOCKS, MAX_VIPS, MAX_WATCHES, NO_LEASE_CLOCK,
    ObservedAdvert as RawObservedAdvert, Stat, VipKey, VipLease, WatchEntry, WatchKey, XDP_PROGRAM,
    map_names,
};

use crate::proto::wire::{Auth, Centiseconds, Version};

/// The XDP object, built from `vipd-ebpf` for bpfel-unknown-none by build.rs.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vipd"));

/// Name of the pinned link inside an interface's pin directory.
const LINK_PIN: &str = "link";

/// `statfs` magic of bpffs.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// How to attach the program to an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachMode {
    /// Native (driver) mode where it works, else generic; veth gets generic because its
    /// native XDP_TX needs a program on the peer too.
    Auto,
    /// Native (driver) XDP only.
    Native,
    /// Generic (skb) XDP only: works on every interface, slower.
    Generic,
}

/// The mode the program actually runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachedMode {
    /// XDP in the driver.
    Native,
    /// XDP in the generic network stack path.
    Generic,
}

impl std::fmt::Display for AttachedMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AttachedMode::Native => "native",
            AttachedMode::Generic => "generic",
        })
    }
}

impl AttachedMode {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "native" => Some(AttachedMode::Native),
            "generic" => Some(AttachedMode::Generic),
            _ => None,
        }
    }
}

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

    fn from_raw(raw: u8) -> Option<Self> {
        match raw {
            FAMILY_IPV4 => Some(IpFamily::Ipv4),
            FAMILY_IPV6 => Some(IpFamily::Ipv6),
            _ => None,
        }
    }

    fn address(self, raw: [u8; 16]) -> IpAddr {
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
    /// [`AdvertEventKind::MasterBack`]; typically Master_Down_Interval. Zero disables.
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
/// Times are `CLOCK_MONOTONIC` ns (what `bpf_ktime_get_ns` and [`monotonic_now_ns`]
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
    /// (`now`, and `now_ns` from [`monotonic_now_ns`]); for arming a tokio timer.
    pub fn last_seen_at(&self, now: Instant, now_ns: u64) -> Instant {
        now.checked_sub(self.age(now_ns)).unwrap_or(now)
    }
}

/// Something the election must act on, pushed by the program when it records an advert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdvertEvent {
    /// What changed.
    pub kind: AdvertEventKind,
    /// Interface the advert arrived on.
    pub ifindex: u32,
    /// Virtual router identifier.
    pub vrid: u8,
    /// Address family of the virtual router.
    pub family: IpFamily,
    /// The advert's source address.
    pub source: IpAddr,
    /// The advert's priority.
    pub priority: u8,
    /// The advert's interval.
    pub interval: Centiseconds,
    /// When the advert arrived, CLOCK_MONOTONIC ns.
    pub seen_ns: u64,
    /// The master recorded before this advert; `None` on first sight.
    pub previous: Option<PreviousAdvert>,
}

/// The record an [`AdvertEvent`] replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreviousAdvert {
    /// Its source address.
    pub source: IpAddr,
    /// Its priority.
    pub priority: u8,
    /// Its interval.
    pub interval: Centiseconds,
    /// Time between it and the advert of the event.
    pub gap: Duration,
}

impl AdvertEvent {
    fn from_raw(raw: &RawAdvertEvent) -> Option<Self> {
        let family = IpFamily::from_raw(raw.family)?;
        Some(AdvertEvent {
            kind: AdvertEventKind::from_u32(raw.kind)?,
            ifindex: raw.ifindex,
            vrid: raw.vrid,
            family,
            source: family.address(raw.src_addr),
            priority: raw.priority,
            interval: Centiseconds(raw.interval_cs),
            seen_ns: raw.seen_ns,
            previous: (raw.has_previous != 0).then(|| PreviousAdvert {
                source: family.address(raw.prev_src_addr),
                priority: raw.prev_priority,
                interval: Centiseconds(raw.prev_interval_cs),
                gap: Duration::from_nanos(raw.gap_ns),
            }),
        })
    }
}

/// Errors from loading, attaching or using the XDP program.
#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    /// This binary was built with `AYA_BUILD_SKIP`, so it carries no XDP object.
    #[error(
        "this vipd binary was built without its XDP program (AYA_BUILD_SKIP); rebuild with `cargo xtask build`"
    )]
    NoObject,
    /// The interface does not exist.
    #[error("interface {interface:?} not found")]
    UnknownInterface {
        /// The interface name asked for.
        interface: String,
    },
    /// The kernel refused to load the program or create its maps.
    #[error(
        "loading the XDP program failed (needs root or CAP_BPF + CAP_NET_ADMIN, and a kernel with BTF): {source}"
    )]
    Load {
        /// The loader's error.
        #[source]
        source: Box<aya::EbpfError>,
    },
    /// The program could not be attached in any allowed mode.
    #[error(
        "attaching XDP to {interface} failed ({mode:?} mode): {source}; is another XDP program (another vipd?) already attached? `ip -d link show {interface}` shows it"
    )]
    Attach {
        /// The interface.
        interface: String,
        /// The mode that was tried last.
        mode: AttachMode,
        /// The kernel's answer.
        #[source]
        source: ProgramError,
    },
    /// A map was missing from the object or had an unexpected type.
    #[error("XDP map {name}: {source}")]
    Map {
        /// Map name.
        name: &'static str,
        /// Underlying error.
        #[source]
        source: aya::maps::MapError,
    },
    /// The verifier rejected the program, or it is not an XDP program.
    #[error("the kernel rejected vipd's XDP program: {source}")]
    Verify {
        /// The kernel's answer.
        #[source]
        source: ProgramError,
    },
    /// BPF_PROG_TEST_RUN failed.
    #[error("BPF_PROG_TEST_RUN failed: {source}")]
    TestRun {
        /// The kernel's answer.
        #[source]
        source: ProgramError,
    },
    /// A lease clock index beyond the array.
    #[error(
        "lease clock {clock} is out of range (at most {} instances)",
        MAX_LEASE_CLOCKS
    )]
    LeaseClockOutOfRange {
        /// The index asked for.
        clock: u32,
    },
    /// The object has no map or program of that name (build mismatch).
    #[error("XDP object has no {0}; vipd and vipd-ebpf are out of step, rebuild")]
    Missing(&'static str),
    /// A watch was asked for that the program cannot check.
    #[error("invalid advert watch: {reason}")]
    InvalidWatch {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The event ring buffer or the log reader was already handed out.
    #[error("the XDP {0} reader was already taken; there is one per loaded program")]
    AlreadyTaken(&'static str),
    /// Waiting on the event ring buffer or the log ring buffer failed.
    #[error("reading XDP {what}: {source}")]
    Reader {
        /// Which reader.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// aya-log could not attach to the program's log ring buffer.
    #[error("starting the XDP log reader: {source}")]
    Logger {
        /// aya-log's error.
        #[source]
        source: aya_log::Error,
    },
    /// Another live process (normally another vipd) holds the interface's lock.
    #[error(
        "{interface} is already managed by another vipd ({holder}); lock {lock_path} is held. Stop that vipd first"
    )]
    InterfaceLocked {
        /// The interface.
        interface: String,
        /// The lock file.
        lock_path: PathBuf,
        /// What the holder wrote into the lock file (`pid=.. mode=..`), if anything.
        holder: String,
    },
    /// Creating, opening or locking the interface's lock file failed.
    #[error("interface lock {path}: {source}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The pin directory is not on a BPF filesystem and vipd will not mount one there.
    #[error(
        "{path} is not on a BPF filesystem; mount one (`mount -t bpf bpf /sys/fs/bpf`) or choose a pin directory under /sys/fs/bpf"
    )]
    NotBpffs {
        /// The directory.
        path: PathBuf,
    },
    /// A file-system operation on the pin directory failed (create, mount, unpin).
    #[error("pin directory {path}: {source}")]
    PinDir {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A pinned map from an earlier run does not have this build's layout.
    #[error(
        "pinned map {path} has {found}, this vipd needs {expected}; it was made by a different vipd version. Stop vipd and remove the pins (`rm -r {}`) to start fresh", path.parent().map(|p| p.display().to_string()).unwrap_or_default()
    )]
    PinnedMapMismatch {
        /// The pinned map.
        path: PathBuf,
        /// Its layout (type, key/value size, max entries).
        found: String,
        /// The layout this build needs.
        expected: String,
    },
    /// Pinning the link, reopening a pinned link or taking it over failed.
    #[error("pinned XDP link {path}: {detail}")]
    PinnedLink {
        /// The link's pin.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
}

/// How [`LoadedXdp::load_with`] prepares the program.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Switch the program's aya-log output on (see [`LoadedXdp::take_logger`]).
    pub log: bool,
    /// Reuse (or create and pin) the state maps in this bpffs directory.
    pub map_pin_dir: Option<PathBuf>,
}

/// A loaded (verified) copy of vipd's XDP program with its own maps, not yet attached.
///
/// Tests run packet fixtures through it with BPF_PROG_TEST_RUN ([`LoadedXdp::test_run`]);
/// [`XdpAttachment`] attaches it to an interface.
pub struct LoadedXdp {
    ebpf: Ebpf,
}

impl std::fmt::Debug for LoadedXdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedXdp").finish_non_exhaustive()
    }
}

/// The outcome of one BPF_PROG_TEST_RUN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestRunOutcome {
    /// The XDP action the program returned (`XDP_PASS` = 2, `XDP_TX` = 3, ...).
    pub action: u32,
    /// The frame as the program left it.
    pub frame: Vec<u8>,
}

/// The layout a pinned map must have to be reused: (name, type, key size, value size,
/// max entries).
fn pinned_map_layouts() -> [(&'static str, MapType, u32, u32, u32); 5] {
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
fn check_pinned_maps(dir: &Path) -> Result<(), BpfError> {
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

/// An `EbpfLoader` that has not read the kernel's BTF.
///
/// The program uses no CO-RE relocations, so it needs no kernel BTF. But aya 0.14's
/// `EbpfLoader::new()` always reads and parses `/sys/kernel/btf/vmlinux`: a transient of
/// about 15 MB, which was more than half of vipd's peak RSS. So the loader is made on a
/// short-lived thread with a mount namespace of its own in which an empty tmpfs hides
/// `/sys/kernel/btf`; the loader itself holds no file-system state and is used on the
/// caller's thread, with the real mounts (bpffs pins). Where that cannot be arranged
/// (no CAP_SYS_ADMIN, no /sys/kernel/btf) this is just `EbpfLoader::new()`.
fn loader_without_kernel_btf() -> EbpfLoader<'static> {
    fn hide_kernel_btf() -> bool {
        use std::ffi::CStr;
        const BTF_DIR: &CStr = c"/sys/kernel/btf";
        // SAFETY: unshare/mount on this thread only (CLONE_NEWNS implies CLONE_FS, so the
        // thread gets its own mount namespace and root/cwd); all strings are C literals.
        unsafe {
            libc::unshare(libc::CLONE_NEWNS) == 0
                && libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) == 0
                && libc::mount(
                    c"none".as_ptr(),
                    BTF_DIR.as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    std::ptr::null(),
                ) == 0
        }
    }
    let made = std::thread::Builder::new()
        .name("vipd-bpf-loader".into())
        .spawn(|| {
            if hide_kernel_btf() {
                Some(EbpfLoader::new())
            } else {
                None
            }
        })
        .ok()
        .and_then(|thread| thread.join().ok())
        .flatten();
    let mut loader = made.unwrap_or_default();
    // Also when the kernel's BTF was read after all: the program does not need it.
    loader.btf(None);
    loader
}

impl LoadedXdp {
    /// Loads the embedded object and verifies the program (logging off, maps unpinned).
    pub fn load() -> Result<Self, BpfError> {
        Self::load_with(&LoadOptions::default())
    }

    /// Loads the embedded object with `options` and verifies the program.
    pub fn load_with(options: &LoadOptions) -> Result<Self, BpfError> {
        if OBJECT.is_empty() {
            return Err(BpfError::NoObject);
        }
        let log_enabled = u32::from(options.log);
        let pin_paths: Vec<(&'static str, PathBuf)> = match &options.map_pin_dir {
            Some(dir) => {
                check_pinned_maps(dir)?;
                map_names::PINNED
                    .iter()
                    .map(|name| (*name, dir.join(name)))
                    .collect()
            }
            None => Vec::new(),
        };
        let mut loader = loader_without_kernel_btf();
        loader.override_global(LOG_ENABLED_GLOBAL, &log_enabled, true);
        for (name, path) in &pin_paths {
            loader.map_pin_path(name, path.as_path());
        }
        let mut ebpf = loader.load(OBJECT).map_err(|e| BpfError::Load {
            source: Box::new(e),
        })?;
        let program = program_mut(&mut ebpf)?;
        program
            .load()
            .map_err(|source| BpfError::Verify { source })?;
        Ok(Self { ebpf })
    }

    fn hash_map<K: aya::Pod, V: aya::Pod>(
        &mut self,
        name: &'static str,
    ) -> Result<BpfHashMap<&mut MapData, K, V>, BpfError> {
        let map = self.ebpf.map_mut(name).ok_or(BpfError::Missing(name))?;
        BpfHashMap::try_from(map).map_err(|source| BpfError::Map { name, source })
    }

    /// Makes the program answer ARP for `vip` arriving on `ifindex` with `owner_mac`
    /// until `lease_expires_ns` (CLOCK_MONOTONIC; [`vipd_common::LEASE_FOREVER`] for
    /// never).
    pub fn set_vip_lease(
        &mut self,
        ifindex: u32,
        vip: Ipv4Addr,
        owner_mac: [u8; 6],
        lease_expires_ns: u64,
    ) -> Result<(), BpfError> {
        let key = VipKey {
            ifindex,
            addr_be: vip.octets(),
        };
        let lease = VipLease {
            owner_mac,
            _pad: [0; 2],
            lease_clock: NO_LEASE_CLOCK,
            _pad2: [0; 4],
            lease_expires_ns,
        };
        let name = map_names::VIP_LEASES;
        self.hash_map(name)?
            .insert(key, lease, 0)
            .map_err(|source| BpfError::Map { name, source })
    }

    /// Like [`LoadedXdp::set_vip_lease`], but the lease is slot `clock` of the shared
    /// lease clocks ([`LoadedXdp::set_lease_clock`]): one write renews every VIP that
    /// points at it.
    pub fn set_vip_clocked(
        &mut self,
        ifindex: u32,
        vip: Ipv4Addr,
        owner_mac: [u8; 6],
        clock: u32,
    ) -> Result<(), BpfError> {
        if clock >= MAX_LEASE_CLOCKS {
            return Err(BpfError::LeaseClockOutOfRange { clock });
        }
        let key = VipKey {
            ifindex,
            addr_be: vip.octets(),
        };
        let lease = VipLease {
            owner_mac,
            _pad: [0; 2],
            lease_clock: clock,
            _pad2: [0; 4],
            lease_expires_ns: 0,
        };
        let name = map_names::VIP_LEASES;
        self.hash_map(name)?
            .insert(key, lease, 0)
            .map_err(|source| BpfError::Map { name, source })
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

    /// Stops managing `vip` on `ifindex`: ARP for it goes back to the kernel.
    pub fn remove_vip(&mut self, ifindex: u32, vip: Ipv4Addr) -> Result<(), BpfError> {
        let key = VipKey {
            ifindex,
            addr_be: vip.octets(),
        };
        let name = map_names::VIP_LEASES;
        let mut map = self.hash_map::<VipKey, VipLease>(name)?;
        ignore_missing(name, map.remove(&key))
    }

    /// The lease of `vip` on `ifindex`, if managed (e.g. inherited by a takeover).
    pub fn vip_lease(&self, ifindex: u32, vip: Ipv4Addr) -> Result<Option<VipLease>, BpfError> {
        let name = map_names::VIP_LEASES;
        let map = self.ebpf.map(name).ok_or(BpfError::Missing(name))?;
        let leases: BpfHashMap<&MapData, VipKey, VipLease> =
            BpfHashMap::try_from(map).map_err(|source| BpfError::Map { name, source })?;
        let key = VipKey {
            ifindex,
            addr_be: vip.octets(),
        };
        match leases.get(&key, 0) {
            Ok(lease) => Ok(Some(lease)),
            Err(aya::maps::MapError::KeyNotFound) => Ok(None),
            Err(source) => Err(BpfError::Map { name, source }),
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

    /// Takes the reader of the program's advert event ring buffer. One per program;
    /// must be called inside a tokio runtime (the reader registers with its reactor).
    pub fn take_events(&mut self) -> Result<AdvertEvents, BpfError> {
        let name = map_names::ADVERT_EVENTS;
        let map = self
            .ebpf
            .take_map(name)
            .ok_or(BpfError::AlreadyTaken("advert event"))?;
        let ring = RingBuf::try_from(map).map_err(|source| BpfError::Map { name, source })?;
        let ring = register_readable(ring).map_err(|source| BpfError::Reader {
            what: "advert events",
            source,
        })?;
        Ok(AdvertEvents { ring })
    }

    /// Takes the reader of the program's aya-log ring buffer, which forwards records to
    /// `tracing` (target `vipd::xdp`). Records only appear when the program was loaded
    /// with [`LoadOptions::log`]. One per program.
    pub fn take_logger(&mut self) -> Result<XdpLogger, BpfError> {
        if self.ebpf.map("AYA_LOGS").is_none() {
            return Err(BpfError::AlreadyTaken("log"));
        }
        let forwarded = Arc::new(AtomicU64::new(0));
        let logger = aya_log::EbpfLogger::init_with_logger(
            &mut self.ebpf,
            TracingLog {
                forwarded: Arc::clone(&forwarded),
            },
        )
        .map_err(|source| BpfError::Logger { source })?;
        Ok(XdpLogger { logger, forwarded })
    }

    /// Runs `frame` through the program once with BPF_PROG_TEST_RUN. The frame arrives
    /// on the loopback device of the caller's network namespace (ifindex 1). The run
    /// uses (and updates) this copy's maps.
    pub fn test_run(&mut self, frame: &[u8]) -> Result<TestRunOutcome, BpfError> {
        let program = program_mut(&mut self.ebpf)?;
        let mut out = vec![0u8; frame.len() + 256];
        let result = program
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ..TestRunOptions::default()
            })
            .map_err(|source| BpfError::TestRun { source })?;
        out.truncate(result.data_size_out as usize);
        Ok(TestRunOutcome {
            action: result.return_value,
            frame: out,
        })
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

fn program_mut(ebpf: &mut Ebpf) -> Result<&mut Xdp, BpfError> {
    ebpf.program_mut(XDP_PROGRAM)
        .ok_or(BpfError::Missing("program vipd_xdp"))?
        .try_into()
        .map_err(|source| BpfError::Verify { source })
}

/// Reader of the program's advert events ([`LoadedXdp::take_events`]), for a tokio
/// `select!` next to the VRRP socket.
pub struct AdvertEvents {
    ring: AsyncFd<RingBuf<MapData>>,
}

impl std::fmt::Debug for AdvertEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdvertEvents").finish_non_exhaustive()
    }
}

impl AdvertEvents {
    /// The next event already in the ring, without waiting.
    pub fn try_next(&mut self) -> Option<AdvertEvent> {
        next_event(self.ring.get_mut())
    }

    /// Waits for the next event. Cancel-safe: an event is only consumed when returned.
    pub async fn next(&mut self) -> Result<AdvertEvent, BpfError> {
        loop {
            if let Some(event) = next_event(self.ring.get_mut()) {
                return Ok(event);
            }
            let mut guard = self
                .ring
                .readable_mut()
                .await
                .map_err(|source| BpfError::Reader {
                    what: "advert events",
                    source,
                })?;
            match next_event(guard.get_inner_mut()) {
                Some(event) => return Ok(event),
                None => guard.clear_ready(),
            }
        }
    }
}

/// Pops records until one decodes; records of the wrong size or with unknown fields
/// (impossible unless the object and this build disagree) are skipped with a warning.
fn next_event(ring: &mut RingBuf<MapData>) -> Option<AdvertEvent> {
    loop {
        let item = ring.next()?;
        let bytes: &[u8] = &item;
        if bytes.len() != size_of::<RawAdvertEvent>() {
            tracing::warn!(
                len = bytes.len(),
                "skipping XDP advert event of unexpected size"
            );
            continue;
        }
        // SAFETY: the length matches, RawAdvertEvent is plain integers (every bit
        // pattern valid), and read_unaligned makes no alignment assumption.
        let raw: RawAdvertEvent = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
        drop(item);
        match AdvertEvent::from_raw(&raw) {
            Some(event) => return Some(event),
            None => tracing::warn!(
                kind = raw.kind,
                family = raw.family,
                "skipping unknown XDP advert event"
            ),
        }
    }
}

/// Registers a ring buffer reader with the current tokio reactor, for readability.
fn register_readable<T: std::os::fd::AsRawFd>(reader: T) -> std::io::Result<AsyncFd<T>> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(std::io::Error::other(
            "must be called inside a tokio runtime",
        ));
    }
    // SAFETY: `reader` (a RingBuf or EbpfLogger) owns its map fd for its whole life and
    // always returns that same fd; the AsyncFd owns the reader.
    unsafe { AsyncFd::register_with_interest(reader, tokio::io::Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}

/// Forwards aya-log records from the program to `tracing`, counting them.
struct TracingLog {
    forwarded: Arc<AtomicU64>,
}

impl log::Log for TracingLog {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        self.forwarded.fetch_add(1, Ordering::Relaxed);
        let message = record.args();
        match record.level() {
            log::Level::Error => tracing::error!(target: "vipd::xdp", "{message}"),
            log::Level::Warn => tracing::warn!(target: "vipd::xdp", "{message}"),
            log::Level::Info => tracing::info!(target: "vipd::xdp", "{message}"),
            log::Level::Debug => tracing::debug!(target: "vipd::xdp", "{message}"),
            log::Level::Trace => tracing::trace!(target: "vipd::xdp", "{message}"),
        }
    }

    fn flush(&self) {}
}

/// Reader of the program's aya-log output ([`LoadedXdp::take_logger`]).
pub struct XdpLogger {
    logger: aya_log::EbpfLogger<TracingLog>,
    forwarded: Arc<AtomicU64>,
}

impl std::fmt::Debug for XdpLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpLogger")
            .field("forwarded", &self.forwarded.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl XdpLogger {
    /// Forwards every pending record to `tracing`; returns how many there were.
    pub fn flush(&mut self) -> u64 {
        let before = self.forwarded.load(Ordering::Relaxed);
        self.logger.flush();
        self.forwarded.load(Ordering::Relaxed) - before
    }

    /// Forwards records as they arrive, until an error. Spawn it on the runtime.
    pub async fn run(self) -> Result<(), BpfError> {
        let mut fd = register_readable(self.logger).map_err(|source| BpfError::Reader {
            what: "log",
            source,
        })?;
        loop {
            let mut guard = fd.readable_mut().await.map_err(|source| BpfError::Reader {
                what: "log",
                source,
            })?;
            guard.get_inner_mut().flush();
            guard.clear_ready();
        }
    }
}

/// Where an attachment pins its link and maps, and where it takes its lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinConfig {
    /// bpffs directory; the interface's pins go to `<bpffs_dir>/<interface>/`. If it is
    /// under `/sys/fs/bpf` and nothing is mounted there, bpffs is mounted.
    pub bpffs_dir: PathBuf,
    /// Directory of the per-interface lock files `<lock_dir>/<interface>.lock`.
    pub lock_dir: PathBuf,
}

impl PinConfig {
    /// The production locations: `/sys/fs/bpf/vipd` and `/run/vipd`.
    pub fn system() -> Self {
        PinConfig {
            bpffs_dir: PathBuf::from("/sys/fs/bpf/vipd"),
            lock_dir: PathBuf::from("/run/vipd"),
        }
    }

    /// The pin directory of `interface`.
    pub fn interface_dir(&self, interface: &str) -> PathBuf {
        self.bpffs_dir.join(interface)
    }

    /// The lock file of `interface`.
    pub fn lock_path(&self, interface: &str) -> PathBuf {
        self.lock_dir.join(format!("{interface}.lock"))
    }
}

/// How [`XdpAttachment::attach_with`] attaches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachOptions {
    /// Attach mode for a fresh attach (a takeover keeps the pinned link's mode).
    pub mode: AttachMode,
    /// Switch the program's aya-log output on.
    pub log: bool,
    /// Pin the link and state maps so they outlive the process, and take over a pinned
    /// link left by an earlier run. `None`: dropping the attachment detaches.
    pub pin: Option<PinConfig>,
}

impl AttachOptions {
    /// Unpinned, logging off: the attachment lives as long as the value.
    pub fn new(mode: AttachMode) -> Self {
        AttachOptions {
            mode,
            log: false,
            pin: None,
        }
    }
}

/// Exclusive ownership of one interface among vipd processes: an `flock` on
/// `<lock_dir>/<interface>.lock`, released by the kernel when the process dies (even
/// by SIGKILL), so a crashed vipd never blocks its successor while a live one always
/// does. The file holds `pid=<pid> mode=<attached mode>` for diagnostics and for the
/// successor's takeover (the mode of a pinned link is not in its kernel info).
#[derive(Debug)]
struct InterfaceLock {
    file: File,
    path: PathBuf,
}

impl InterfaceLock {
    /// Takes the lock without waiting; returns it with the previous holder's contents.
    fn acquire(config: &PinConfig, interface: &str) -> Result<(Self, String), BpfError> {
        let path = config.lock_path(interface);
        let lock_err = |source| BpfError::Lock {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&config.lock_dir).map_err(lock_err)?;
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(lock_err)?;
        // SAFETY: a valid open fd.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(BpfError::InterfaceLocked {
                    interface: interface.to_owned(),
                    lock_path: path,
                    holder: holder.trim().to_owned(),
                });
            }
            return Err(lock_err(err));
        }
        let mut previous = String::new();
        file.read_to_string(&mut previous).map_err(lock_err)?;
        Ok((InterfaceLock { file, path }, previous))
    }

    /// Records who holds the lock and in which mode the link runs.
    fn record(&mut self, mode: AttachedMode) -> Result<(), BpfError> {
        let lock_err = |source| BpfError::Lock {
            path: self.path.clone(),
            source,
        };
        let text = format!("pid={} mode={mode}\n", std::process::id());
        self.file.set_len(0).map_err(lock_err)?;
        self.file.rewind().map_err(lock_err)?;
        self.file.write_all(text.as_bytes()).map_err(lock_err)
    }
}

/// The mode recorded in a lock file's contents.
fn recorded_mode(lock_contents: &str) -> Option<AttachedMode> {
    lock_contents
        .split_whitespace()
        .find_map(|field| field.strip_prefix("mode="))
        .and_then(AttachedMode::parse)
}

/// The pinned state of an attachment.
#[derive(Debug)]
struct Pinned {
    dir: PathBuf,
    link: PinnedLink,
    lock: InterfaceLock,
}

/// vipd's XDP program attached to one interface, with its maps.
///
/// Unpinned, dropping it detaches. Pinned, dropping it (or the process dying) leaves the
/// program attached with its maps, so ARP for managed VIPs with expired leases stays
/// dropped; [`XdpAttachment::detach_and_unpin`] detaches and removes the pins.
pub struct XdpAttachment {
    program: LoadedXdp,
    interface: String,
    ifindex: u32,
    mode: AttachedMode,
    taken_over: bool,
    pinned: Option<Pinned>,
}

impl std::fmt::Debug for XdpAttachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpAttachment")
            .field("interface", &self.interface)
            .field("ifindex", &self.ifindex)
            .field("mode", &self.mode)
            .field("taken_over", &self.taken_over)
            .field("pin_dir", &self.pinned.as_ref().map(|p| &p.dir))
            .finish()
    }
}

impl XdpAttachment {
    /// Loads a fresh copy of the program and attaches it to `interface`, unpinned.
    pub fn attach(interface: &str, mode: AttachMode) -> Result<Self, BpfError> {
        Self::attach_with(interface, &AttachOptions::new(mode))
    }

    /// Loads a fresh copy of the program and attaches it to `interface` as `options`
    /// say. With pinning: takes the interface lock (failing with
    /// [`BpfError::InterfaceLocked`] if another live process holds it), reuses pinned
    /// maps, and if a pinned link for this interface exists, atomically replaces its
    /// program with the new one (no moment without a program on the interface);
    /// otherwise attaches and pins the new link.
    pub fn attach_with(interface: &str, options: &AttachOptions) -> Result<Self, BpfError> {
        let ifindex = if_index(interface)?;
        let Some(pin) = &options.pin else {
            let mut loaded = LoadedXdp::load_with(&LoadOptions {
                log: options.log,
                map_pin_dir: None,
            })?;
            // The link stays in the program's list: dropping the program detaches it.
            let (mode, _) = attach_fresh(&mut loaded, interface, ifindex, options.mode)?;
            return Ok(Self {
                program: loaded,
                interface: interface.to_owned(),
                ifindex,
                mode,
                taken_over: false,
                pinned: None,
            });
        };

        let (mut lock, previous_holder) = InterfaceLock::acquire(pin, interface)?;
        ensure_bpffs(&pin.bpffs_dir)?;
        let dir = pin.interface_dir(interface);
        std::fs::create_dir_all(&dir).map_err(|source| BpfError::PinDir {
            path: dir.clone(),
            source,
        })?;
        let mut loaded = LoadedXdp::load_with(&LoadOptions {
            log: options.log,
            map_pin_dir: Some(dir.clone()),
        })?;
        let link_path = dir.join(LINK_PIN);
        let link_err = |detail: String| BpfError::PinnedLink {
            path: link_path.clone(),
            detail,
        };

        let existing = match pinned_link_ifindex(&link_path) {
            Ok(Some(linked)) if linked == ifindex => Some(()),
            Ok(Some(linked)) => {
                // The interface it was made for is gone (0) or was renamed/recreated:
                // that link no longer protects anything here.
                tracing::warn!(%interface, linked_ifindex = linked, ifindex, path = %link_path.display(), "removing stale pinned XDP link");
                std::fs::remove_file(&link_path).map_err(|e| link_err(e.to_string()))?;
                None
            }
            Ok(None) => None,
            Err(e) => return Err(link_err(format!("reading it: {e}"))),
        };

        let (mode, taken_over) = if existing.is_some() {
            let pinned = PinnedLink::from_pin(&link_path).map_err(|e| link_err(e.to_string()))?;
            let fd_link: FdLink = pinned.into();
            let xdp_link = XdpLink::try_from(fd_link).map_err(|e| link_err(e.to_string()))?;
            let program = program_mut(&mut loaded.ebpf)?;
            let id = program
                .attach_to_link(xdp_link)
                .map_err(|e| link_err(format!("replacing its program: {e}")))?;
            // Keep the link out of the program's own list: dropping the program must
            // not detach a pinned link.
            drop(program.take_link(id).map_err(|e| link_err(e.to_string()))?);
            let mode = recorded_mode(&previous_holder).unwrap_or_else(|| {
                tracing::warn!(%interface, "mode of the pinned XDP link unknown (lock file empty); reporting generic");
                AttachedMode::Generic
            });
            tracing::info!(%interface, %mode, path = %link_path.display(), "took over pinned XDP link");
            (mode, true)
        } else {
            let (mode, id) = attach_fresh(&mut loaded, interface, ifindex, options.mode)?;
            let link = program_mut(&mut loaded.ebpf)?
                .take_link(id)
                .map_err(|e| link_err(e.to_string()))?;
            let fd_link = FdLink::try_from(link).map_err(|e| {
                link_err(format!(
                    "the kernel attached through netlink, not a BPF link, which cannot be pinned: {e}"
                ))
            })?;
            fd_link
                .pin(&link_path)
                .map_err(|e| link_err(format!("pinning: {e}")))?;
            (mode, false)
        };
        let link = PinnedLink::from_pin(&link_path).map_err(|e| link_err(e.to_string()))?;
        lock.record(mode)?;
        Ok(Self {
            program: loaded,
            interface: interface.to_owned(),
            ifindex,
            mode,
            taken_over,
            pinned: Some(Pinned { dir, link, lock }),
        })
    }

    /// Detaches the program and removes its pins (link, maps, the interface's pin
    /// directory): the clean shutdown of a pinned attachment. ARP for the VIPs goes back
    /// to the kernel. Without pinning this is the same as dropping.
    pub fn detach_and_unpin(self) -> Result<(), BpfError> {
        let Self {
            program, pinned, ..
        } = self;
        let Some(Pinned { dir, link, lock }) = pinned else {
            drop(program);
            return Ok(());
        };
        let unpin_err = |path: PathBuf| {
            move |source| BpfError::PinDir {
                path: path.clone(),
                source,
            }
        };
        // Removing the last reference (pin) and closing the last fd detaches the link.
        let fd_link = link.unpin().map_err(unpin_err(dir.join(LINK_PIN)))?;
        drop(fd_link);
        drop(program);
        for name in map_names::PINNED {
            let path = dir.join(name);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(unpin_err(path)(e)),
            }
        }
        match std::fs::remove_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(unpin_err(dir)(e)),
        }
        // Unlocked last, so a successor never sees half-removed pins.
        drop(lock);
        Ok(())
    }

    /// The interface the program is attached to.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// Its index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The mode the program runs in.
    pub fn mode(&self) -> AttachedMode {
        self.mode
    }

    /// Whether this attachment took over a pinned link left by an earlier run (whose
    /// leases, watches, observed adverts and counters it inherited).
    pub fn taken_over(&self) -> bool {
        self.taken_over
    }

    /// The interface's pin directory, if pinned.
    pub fn pin_dir(&self) -> Option<&Path> {
        self.pinned.as_ref().map(|p| p.dir.as_path())
    }

    /// See [`LoadedXdp::set_vip_lease`]; for this interface.
    pub fn set_vip_lease(
        &mut self,
        vip: Ipv4Addr,
        owner_mac: [u8; 6],
        lease_expires_ns: u64,
    ) -> Result<(), BpfError> {
        self.program
            .set_vip_lease(self.ifindex, vip, owner_mac, lease_expires_ns)
    }

    /// See [`LoadedXdp::set_vip_clocked`]; for this interface.
    pub fn set_vip_clocked(
        &mut self,
        vip: Ipv4Addr,
        owner_mac: [u8; 6],
        clock: u32,
    ) -> Result<(), BpfError> {
        self.program
            .set_vip_clocked(self.ifindex, vip, owner_mac, clock)
    }

    /// See [`LoadedXdp::set_lease_clock`].
    pub fn set_lease_clock(&mut self, clock: u32, expires_ns: u64) -> Result<(), BpfError> {
        self.program.set_lease_clock(clock, expires_ns)
    }

    /// See [`LoadedXdp::remove_vip`]; for this interface.
    pub fn remove_vip(&mut self, vip: Ipv4Addr) -> Result<(), BpfError> {
        self.program.remove_vip(self.ifindex, vip)
    }

    /// See [`LoadedXdp::vip_lease`]; for this interface.
    pub fn vip_lease(&self, vip: Ipv4Addr) -> Result<Option<VipLease>, BpfError> {
        self.program.vip_lease(self.ifindex, vip)
    }

    /// See [`LoadedXdp::watch`]; for this interface.
    pub fn watch(&mut self, vrid: u8, family: IpFamily, spec: &WatchSpec) -> Result<(), BpfError> {
        self.program.watch(self.ifindex, vrid, family, spec)
    }

    /// See [`LoadedXdp::unwatch`]; for this interface.
    pub fn unwatch(&mut self, vrid: u8, family: IpFamily) -> Result<(), BpfError> {
        self.program.unwatch(self.ifindex, vrid, family)
    }

    /// See [`LoadedXdp::observed`]; for this interface.
    pub fn observed(&self, vrid: u8, family: IpFamily) -> Result<Option<ObservedAdvert>, BpfError> {
        self.program.observed(self.ifindex, vrid, family)
    }

    /// See [`LoadedXdp::take_events`].
    pub fn take_events(&mut self) -> Result<AdvertEvents, BpfError> {
        self.program.take_events()
    }

    /// See [`LoadedXdp::take_logger`].
    pub fn take_logger(&mut self) -> Result<XdpLogger, BpfError> {
        self.program.take_logger()
    }

    /// See [`LoadedXdp::stats`].
    pub fn stats(&self) -> Result<BTreeMap<&'static str, u64>, BpfError> {
        self.program.stats()
    }
}

/// Attaches `loaded` to `ifindex` as `mode` asks.
fn attach_fresh(
    loaded: &mut LoadedXdp,
    interface: &str,
    ifindex: u32,
    mode: AttachMode,
) -> Result<(AttachedMode, XdpLinkId), BpfError> {
    let program = program_mut(&mut loaded.ebpf)?;
    let attach = |program: &mut Xdp, how: XdpMode| program.attach_to_if_index(ifindex, how);
    let (attached, id) = match mode {
        AttachMode::Native => attach(program, XdpMode::Driver).map(|id| (AttachedMode::Native, id)),
        AttachMode::Generic => attach(program, XdpMode::Skb).map(|id| (AttachedMode::Generic, id)),
        AttachMode::Auto if is_veth(interface) => {
            attach(program, XdpMode::Skb).map(|id| (AttachedMode::Generic, id))
        }
        AttachMode::Auto => match attach(program, XdpMode::Driver) {
            Ok(id) => Ok((AttachedMode::Native, id)),
            Err(native_err) => {
                tracing::warn!(%interface, error = %native_err, "native XDP unavailable, using generic mode");
                attach(program, XdpMode::Skb).map(|id| (AttachedMode::Generic, id))
            }
        },
    }
    .map_err(|source| BpfError::Attach {
        interface: interface.to_owned(),
        mode,
        source,
    })?;
    Ok((attached, id))
}

/// Makes sure `dir` can hold pins: its nearest existing ancestor must be on bpffs. If
/// `dir` is under `/sys/fs/bpf` and nothing is mounted there, mounts bpffs (as systemd
/// does on most distributions anyway).
fn ensure_bpffs(dir: &Path) -> Result<(), BpfError> {
    let default_mount = Path::new("/sys/fs/bpf");
    if is_bpffs(dir) {
        return Ok(());
    }
    if dir.starts_with(default_mount) && !is_bpffs(default_mount) {
        let cstr = |s: &str| CString::new(s).unwrap_or_default();
        let (source, target, fstype) = (cstr("bpf"), cstr("/sys/fs/bpf"), cstr("bpf"));
        let data = cstr("mode=0700");
        // SAFETY: valid NUL-terminated strings.
        let rc = unsafe {
            libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                0,
                data.as_ptr().cast(),
            )
        };
        if rc != 0 {
            return Err(BpfError::PinDir {
                path: default_mount.to_owned(),
                source: std::io::Error::last_os_error(),
            });
        }
        // Under `ip netns exec` (or in a private mount namespace) this bpffs is the
        // process's own and dies with it: pins then cannot outlive a crash.
        tracing::warn!(
            "no bpffs was mounted at /sys/fs/bpf, so vipd mounted one; if vipd runs in a private mount namespace (e.g. under `ip netns exec`), pinned XDP state will not outlive a crash: mount bpffs on the host, or pass --bpffs-dir under the host's /sys/fs/bpf"
        );
    }
    if is_bpffs(dir) {
        Ok(())
    } else {
        Err(BpfError::NotBpffs {
            path: dir.to_owned(),
        })
    }
}

/// Whether the nearest existing ancestor of `path` (itself included) is on bpffs.
fn is_bpffs(path: &Path) -> bool {
    let Some(existing) = path.ancestors().find(|p| p.exists()) else {
        return false;
    };
    let Ok(cpath) = CString::new(existing.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: all-zero is a valid statfs; cpath is NUL-terminated.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(cpath.as_ptr(), &mut stat) } != 0 {
        return false;
    }
    stat.f_type as i64 == BPF_FS_MAGIC
}

/// The ifindex a pinned XDP link is attached to (0 if its device is gone), or `None` if
/// nothing is pinned at `path`.
fn pinned_link_ifindex(path: &Path) -> std::io::Result<Option<u32>> {
    if !path.exists() {
        return Ok(None);
    }
    let fd = bpf_obj_get(path)?;
    xdp_link_ifindex(&fd).map(Some)
}

/// The `bpf(2)` commands used directly (aya does not expose an XDP link's ifindex).
const BPF_OBJ_GET: libc::c_long = 7;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;

/// BPF_OBJ_GET: an fd for the object pinned at `path`.
/// bpf(2) with a zero-padded `union bpf_attr` (16 u64 words covers the commands used
/// here); the caller fills the words its command reads and keeps any pointed-to buffer
/// alive across the call.
fn bpf_syscall(cmd: libc::c_long, attr: &mut [u64; 16]) -> std::io::Result<libc::c_long> {
    // SAFETY: attr is a valid, writable bpf_attr of the size passed; pointers inside it
    // are the caller's, valid for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_mut_ptr(),
            size_of_val(attr) as libc::c_uint,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(rc)
}

fn bpf_obj_get(path: &Path) -> std::io::Result<OwnedFd> {
    let cpath = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // union bpf_attr, BPF_OBJ_GET: u64 pathname, u32 bpf_fd, u32 file_flags, ...
    let mut attr = [0u64; 16];
    attr[0] = cpath.as_ptr() as u64;
    // The path outlives the call.
    let fd = bpf_syscall(BPF_OBJ_GET, &mut attr)?;
    // SAFETY: the kernel returned a new fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// BPF_OBJ_GET_INFO_BY_FD on a link: `xdp.ifindex` of `struct bpf_link_info`.
fn xdp_link_ifindex(fd: &OwnedFd) -> std::io::Result<u32> {
    // struct bpf_link_info: u32 type, u32 id, u32 prog_id, then an 8-aligned union whose
    // xdp member starts with u32 ifindex (byte 16).
    const BPF_LINK_TYPE_XDP: u32 = 6;
    let mut info = [0u32; 64];
    let mut attr = [0u64; 16];
    // union bpf_attr, info: u32 bpf_fd, u32 info_len, u64 info.
    attr[0] = fd.as_raw_fd() as u32 as u64 | ((size_of_val(&info) as u64) << 32);
    attr[1] = info.as_mut_ptr() as u64;
    // info is a buffer of info_len bytes, alive across the call.
    bpf_syscall(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    if info[0] != BPF_LINK_TYPE_XDP {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("pinned object is not an XDP link (link type {})", info[0]),
        ));
    }
    Ok(info[4])
}

/// `CLOCK_MONOTONIC` now in ns: the clock `bpf_ktime_get_ns` reads, so lease deadlines
/// written from userspace compare correctly in the program.
pub fn monotonic_now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).saturating_mul(1_000_000_000) + ts.tv_nsec as u64
}

/// The index of `interface`, or a clear error.
pub fn if_index(interface: &str) -> Result<u32, BpfError> {
    let unknown = || BpfError::UnknownInterface {
        interface: interface.to_owned(),
    };
    let name = CString::new(interface).map_err(|_| unknown())?;
    // SAFETY: NUL-terminated string.
    match unsafe { libc::if_nametoindex(name.as_ptr()) } {
        0 => Err(unknown()),
        index => Ok(index),
    }
}

/// Whether `interface` is a veth, by its driver name (ethtool GDRVINFO).
fn is_veth(interface: &str) -> bool {
    driver_name(interface).as_deref() == Some("veth")
}

/// The kernel driver behind `interface` (SIOCETHTOOL / ETHTOOL_GDRVINFO), if it answers.
fn driver_name(interface: &str) -> Option<String> {
    // Hand-written because the one ioctl vipd needs does not justify an ethtool crate.
    #[repr(C)]
    struct DrvInfo {
        cmd: u32,
        driver: [u8; 32],
        version: [u8; 32],
        fw_version: [u8; 32],
        bus_info: [u8; 32],
        erom_version: [u8; 32],
        reserved2: [u8; 12],
        n_priv_flags: u32,
        n_stats: u32,
        testinfo_len: u32,
        eedump_len: u32,
        regdump_len: u32,
    }
    const ETHTOOL_GDRVINFO: u32 = 0x0000_0003;
    const SIOCETHTOOL: libc::c_ulong = 0x8946;

    let bytes = interface.as_bytes();
    if bytes.len() >= libc::IFNAMSIZ {
        return None;
    }
    // SAFETY: all-zero is a valid DrvInfo and ifreq.
    let mut info: DrvInfo = unsafe { std::mem::zeroed() };
    info.cmd = ETHTOOL_GDRVINFO;
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    ifr.ifr_ifru.ifru_data = (&mut info as *mut DrvInfo).cast();
    // SAFETY: a datagram socket only used for this ioctl, closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: ifr points to a valid ifreq whose data points to a valid DrvInfo.
    let rc = unsafe { libc::ioctl(fd, SIOCETHTOOL, &mut ifr) };
    unsafe { libc::close(fd) };
    if rc < 0 {
        return None;
    }
    let end = info.driver.iter().position(|&b| b == 0).unwrap_or(32);
    Some(String::from_utf8_lossy(&info.driver[..end]).into_owned())
}
