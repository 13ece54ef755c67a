//! Loading and attaching vipd's XDP program, and reading/writing its maps.
//!
//! The object is built by `build.rs` (aya-build) and embedded in the binary, so a vipd
//! binary is self-contained. One [`XdpAttachment`] is one copy of the program attached to
//! one interface with its own maps; dropping it detaches the program.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::net::Ipv4Addr;

use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuArray};
use aya::programs::{ProgramError, Xdp, XdpMode};
use aya::{Ebpf, EbpfLoader, TestRun as _, TestRunOptions};
use vipd_common::{Stat, VipKey, VipLease, XDP_PROGRAM, map_names};

/// The XDP object, built from `vipd-ebpf` for bpfel-unknown-none by build.rs.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vipd"));

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
    /// The object has no map or program of that name (build mismatch).
    #[error("XDP object has no {0}; vipd and vipd-ebpf are out of step, rebuild")]
    Missing(&'static str),
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

impl LoadedXdp {
    /// Loads the embedded object and verifies the program.
    pub fn load() -> Result<Self, BpfError> {
        if OBJECT.is_empty() {
            return Err(BpfError::NoObject);
        }
        let mut ebpf = EbpfLoader::new().load(OBJECT).map_err(|e| BpfError::Load {
            source: Box::new(e),
        })?;
        let program = program_mut(&mut ebpf)?;
        program
            .load()
            .map_err(|source| BpfError::Verify { source })?;
        Ok(Self { ebpf })
    }

    fn leases(&mut self) -> Result<BpfHashMap<&mut MapData, VipKey, VipLease>, BpfError> {
        let name = map_names::VIP_LEASES;
        let map = self
            .ebpf
            .map_mut(name)
            .ok_or(BpfError::Missing("map VIP_LEASES"))?;
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
            lease_expires_ns,
        };
        self.leases()?
            .insert(key, lease, 0)
            .map_err(|source| BpfError::Map {
                name: map_names::VIP_LEASES,
                source,
            })
    }

    /// Stops managing `vip` on `ifindex`: ARP for it goes back to the kernel.
    pub fn remove_vip(&mut self, ifindex: u32, vip: Ipv4Addr) -> Result<(), BpfError> {
        let key = VipKey {
            ifindex,
            addr_be: vip.octets(),
        };
        match self.leases()?.remove(&key) {
            Ok(()) | Err(aya::maps::MapError::KeyNotFound) => Ok(()),
            Err(aya::maps::MapError::SyscallError(e))
                if e.io_error.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(())
            }
            Err(source) => Err(BpfError::Map {
                name: map_names::VIP_LEASES,
                source,
            }),
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

fn program_mut(ebpf: &mut Ebpf) -> Result<&mut Xdp, BpfError> {
    ebpf.program_mut(XDP_PROGRAM)
        .ok_or(BpfError::Missing("program vipd_xdp"))?
        .try_into()
        .map_err(|source| BpfError::Verify { source })
}

/// vipd's XDP program attached to one interface, with its maps. Dropping it detaches.
pub struct XdpAttachment {
    program: LoadedXdp,
    interface: String,
    ifindex: u32,
    mode: AttachedMode,
}

impl std::fmt::Debug for XdpAttachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpAttachment")
            .field("interface", &self.interface)
            .field("ifindex", &self.ifindex)
            .field("mode", &self.mode)
            .finish()
    }
}

impl XdpAttachment {
    /// Loads a fresh copy of the program and attaches it to `interface`.
    pub fn attach(interface: &str, mode: AttachMode) -> Result<Self, BpfError> {
        let ifindex = if_index(interface)?;
        let mut loaded = LoadedXdp::load()?;
        let program = program_mut(&mut loaded.ebpf)?;
        let attach = |program: &mut Xdp, how: XdpMode| program.attach_to_if_index(ifindex, how);
        let attached = match mode {
            AttachMode::Native => attach(program, XdpMode::Driver).map(|_| AttachedMode::Native),
            AttachMode::Generic => attach(program, XdpMode::Skb).map(|_| AttachedMode::Generic),
            AttachMode::Auto if is_veth(interface) => {
                attach(program, XdpMode::Skb).map(|_| AttachedMode::Generic)
            }
            AttachMode::Auto => match attach(program, XdpMode::Driver) {
                Ok(_) => Ok(AttachedMode::Native),
                Err(native_err) => {
                    tracing::warn!(%interface, error = %native_err, "native XDP unavailable, using generic mode");
                    attach(program, XdpMode::Skb).map(|_| AttachedMode::Generic)
                }
            },
        }
        .map_err(|source| BpfError::Attach {
            interface: interface.to_owned(),
            mode,
            source,
        })?;

        Ok(Self {
            program: loaded,
            interface: interface.to_owned(),
            ifindex,
            mode: attached,
        })
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

    /// See [`LoadedXdp::remove_vip`]; for this interface.
    pub fn remove_vip(&mut self, vip: Ipv4Addr) -> Result<(), BpfError> {
        self.program.remove_vip(self.ifindex, vip)
    }

    /// See [`LoadedXdp::stats`].
    pub fn stats(&self) -> Result<BTreeMap<&'static str, u64>, BpfError> {
        self.program.stats()
    }
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
