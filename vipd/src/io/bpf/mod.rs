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
//!
//! The parts:
//! - `load`: the embedded object, [`LoadedXdp`] (load, verify, BPF_PROG_TEST_RUN);
//! - `maps`: typed access to the state maps (leases, watches, observed adverts,
//!   counters) and the layout pinned maps must have;
//! - `events`: the advert event ring buffer and the aya-log forwarder;
//! - `attach`: [`XdpAttachment`]: attach modes, pinning, takeover of a pinned link, the
//!   per-interface lock;
//! - `bfd`: the BFD session map (control packets the program recorded per session);
//! - `sys`: the few system calls aya does not wrap (bpf(2) link info, bpffs, clocks,
//!   interface index).

use std::path::PathBuf;

use aya::programs::ProgramError;
use vipd_common::MAX_LEASE_CLOCKS;

mod attach;
mod bfd;
mod events;
mod lb;
mod load;
mod maps;
mod sys;

pub use attach::{AttachMode, AttachOptions, AttachedMode, PinConfig, XdpAttachment};
pub use bfd::{BfdRecord, BfdRecords};
pub use events::{AdvertEvent, AdvertEvents, PreviousAdvert, XdpLogger};
pub use lb::{LbMaps, LbTables, ServiceTables};
pub use load::{LoadOptions, LoadedXdp, TestRunOutcome};
pub use maps::{IpFamily, ObservedAdvert, WatchSpec};
pub use sys::{if_index, monotonic_now_ns};

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
    /// A load-balancer table would not fit its map.
    #[error("load balancer: {what} {value} is beyond what the XDP maps hold")]
    LbCapacity {
        /// What overflowed.
        what: &'static str,
        /// The offending id.
        value: u32,
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
