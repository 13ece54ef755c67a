//! [`XdpAttachment`]: vipd's program attached to one interface. Attach modes (auto →
//! native → generic, veth → generic), pinning the link and maps in bpffs, taking over a
//! pinned link left by an earlier run, the clean detach, and the per-interface lock that
//! keeps two vipd processes off one interface.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use aya::programs::links::{FdLink, PinnedLink};
use aya::programs::xdp::{XdpLink, XdpLinkId};
use aya::programs::{Xdp, XdpMode};
use vipd_common::{VipLease, map_names};

use super::events::{AdvertEvents, XdpLogger};
use super::load::{LoadOptions, LoadedXdp, program_mut};
use super::maps::{IpFamily, ObservedAdvert, WatchSpec};
use super::{BpfError, sys};
use crate::io::lock::{LockAttempt, LockFile};
use crate::io::netlink::link_details_blocking;

/// Name of the pinned link inside an interface's pin directory.
const LINK_PIN: &str = "link";

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

    /// The pin directory of `interface`. bpffs refuses names with a dot (reserved for
    /// its own files: EPERM), which VLANs (`eth0.100`) and VMACs (`vrrp.7`) have, so a
    /// dot becomes a colon, which no interface name can contain.
    pub fn interface_dir(&self, interface: &str) -> PathBuf {
        self.bpffs_dir.join(interface.replace('.', ":"))
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
    /// Size the load balancer's maps (see [`super::LoadOptions::lb`]).
    pub lb: bool,
}

impl AttachOptions {
    /// Unpinned, logging off: the attachment lives as long as the value.
    pub fn new(mode: AttachMode) -> Self {
        AttachOptions {
            mode,
            log: false,
            pin: None,
            lb: false,
        }
    }
}

/// Exclusive ownership of one interface among vipd processes: a [`LockFile`] at
/// `<lock_dir>/<interface>.lock`, released by the kernel when the process dies (even by
/// SIGKILL), so a crashed vipd never blocks its successor while a live one always does.
/// The file holds `pid=<pid> mode=<attached mode>` for diagnostics and for the
/// successor's takeover (the mode of a pinned link is not in its kernel info).
#[derive(Debug)]
struct InterfaceLock(LockFile);

impl InterfaceLock {
    /// Takes the lock without waiting; returns it with the previous holder's contents.
    fn acquire(config: &PinConfig, interface: &str) -> Result<(Self, String), BpfError> {
        let path = config.lock_path(interface);
        match LockFile::try_acquire(&path) {
            Ok(LockAttempt::Acquired { lock, previous }) => Ok((InterfaceLock(lock), previous)),
            Ok(LockAttempt::Held { holder }) => Err(BpfError::InterfaceLocked {
                interface: interface.to_owned(),
                lock_path: path,
                holder,
            }),
            Err(source) => Err(BpfError::Lock { path, source }),
        }
    }

    /// Records who holds the lock and in which mode the link runs.
    fn record(&mut self, mode: AttachedMode) -> Result<(), BpfError> {
        let text = format!("pid={} mode={mode}\n", std::process::id());
        self.0.record(&text).map_err(|source| BpfError::Lock {
            path: self.0.path().to_owned(),
            source,
        })
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
    pub(super) program: LoadedXdp,
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
        let ifindex = sys::if_index(interface)?;
        let Some(pin) = &options.pin else {
            let mut loaded = LoadedXdp::load_with(&LoadOptions {
                log: options.log,
                map_pin_dir: None,
                lb: options.lb,
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
            lb: options.lb,
        })?;
        let link_path = dir.join(LINK_PIN);
        let link_err = |detail: String| BpfError::PinnedLink {
            path: link_path.clone(),
            detail,
        };

        let existing = match sys::pinned_link_ifindex(&link_path) {
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
        vip: impl Into<IpAddr>,
        owner_mac: [u8; 6],
        lease_expires_ns: u64,
    ) -> Result<(), BpfError> {
        self.program
            .set_vip_lease(self.ifindex, vip, owner_mac, lease_expires_ns)
    }

    /// See [`LoadedXdp::set_vip_clocked`]; for this interface.
    pub fn set_vip_clocked(
        &mut self,
        vip: impl Into<IpAddr>,
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
    pub fn remove_vip(&mut self, vip: impl Into<IpAddr>) -> Result<(), BpfError> {
        self.program.remove_vip(self.ifindex, vip)
    }

    /// See [`LoadedXdp::vip_lease`]; for this interface.
    pub fn vip_lease(&self, vip: impl Into<IpAddr>) -> Result<Option<VipLease>, BpfError> {
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

    /// See [`LoadedXdp::take_lb_maps`].
    pub fn take_lb_maps(&mut self) -> Result<super::LbMaps, BpfError> {
        self.program.take_lb_maps()
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
    if sys::is_bpffs(dir) {
        return Ok(());
    }
    if dir.starts_with(default_mount) && !sys::is_bpffs(default_mount) {
        sys::mount_bpffs(default_mount).map_err(|source| BpfError::PinDir {
            path: default_mount.to_owned(),
            source,
        })?;
        // Under `ip netns exec` (or in a private mount namespace) this bpffs is the
        // process's own and dies with it: pins then cannot outlive a crash.
        tracing::warn!(
            "no bpffs was mounted at /sys/fs/bpf, so vipd mounted one; if vipd runs in a private mount namespace (e.g. under `ip netns exec`), pinned XDP state will not outlive a crash: mount bpffs on the host, or pass --bpffs-dir under the host's /sys/fs/bpf"
        );
    }
    if sys::is_bpffs(dir) {
        Ok(())
    } else {
        Err(BpfError::NotBpffs {
            path: dir.to_owned(),
        })
    }
}

/// Whether `interface` is a veth, from its rtnetlink link kind. `auto` attaches a veth in
/// generic mode; if the kernel cannot be asked, native is tried first as for any link.
fn is_veth(interface: &str) -> bool {
    match link_details_blocking(interface) {
        Ok(details) => details.is_veth(),
        Err(error) => {
            tracing::warn!(%interface, %error, "cannot read the link kind; trying native XDP first");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_directories_of_dotted_interfaces_have_no_dot() {
        let pin = PinConfig {
            bpffs_dir: PathBuf::from("/sys/fs/bpf/vipd"),
            lock_dir: PathBuf::from("/run/vipd"),
        };
        assert_eq!(
            pin.interface_dir("vrrp.7"),
            PathBuf::from("/sys/fs/bpf/vipd/vrrp:7")
        );
        assert_eq!(
            pin.interface_dir("eth0"),
            PathBuf::from("/sys/fs/bpf/vipd/eth0")
        );
        // Distinct names stay distinct: no interface name has a colon.
        assert_ne!(pin.interface_dir("a.b"), pin.interface_dir("a_b"));
    }
}
