//! A network-namespace harness for vipd's integration tests.
//!
//! Every test builds its own little network out of namespaces, veth pairs and bridges,
//! runs real binaries (vipd, keepalived, arping, ...) inside it, and tears it all down
//! again, also when the test fails or panics. Nothing here ever touches the host's own
//! interfaces: veth pairs are created directly inside the namespaces (`ip -n A link add
//! .. peer .. netns B`), so not even a temporary interface appears in the host namespace,
//! and addresses come from the TEST-NET ranges only (192.0.2.0/24, 198.51.100.0/24,
//! 203.0.113.0/24, 2001:db8::/32).
//!
//! The pieces:
//! - [`Netns`]: a namespace guard; runs commands inside ([`Netns::exec`],
//!   [`Netns::exec_ok`]) and spawns long-running ones as [`Proc`] guards.
//! - [`in_netns`]: run a closure on a thread inside a namespace, e.g. to open an
//!   AF_PACKET socket there ([`packet::PacketSocket`]). Sockets keep their namespace, so
//!   the socket can be used from the test thread afterwards.
//! - [`topo`]: [`veth_between`], [`Lan`] (a bridge "switch" with members), and helpers
//!   to add addresses, read MACs and ifindexes, and pull links up or down.
//! - [`wait_until`] / [`poll_until`]: bounded polling instead of blind sleeps.
//! - [`vipd`]: vipd under test: scratch dirs, configs, [`vipd::Router`] guards, status JSON.
//! - [`keepalived`]: real keepalived as a peer ([`keepalived::Keepalived`] guards).
//! - [`frr`]: FRR zebra + vrrpd as a peer ([`frr::Frr`]).
//! - [`bfdd`]: FRR zebra + bfdd as a BFD peer ([`bfdd::Bfdd`]).
//! - [`bgp`]: FRR zebra + bgpd (+ bfdd) for L3-mode labs ([`bgp::Bgpd`]), FIB nexthops,
//!   and UDP anycast flows ([`bgp::Flows`]).
//! - [`pinger::PingRun`]: a client pinging a VIP across a failover.
//! - [`sockets`]: another process's raw sockets (queue, drops, `SO_RCVBUF`) and whether
//!   it is stopped.
//! - [`stall::StallWatch`]: how long the hypervisor took each CPU away, to tell a
//!   host stall from a daemon fault in timing-sensitive tests.
//! - [`vipd_bin`], [`require_root`], [`cleanup_stale`].
//!
//! # Running
//!
//! As root, after building vipd (the XDP tests run the real binary):
//! `cargo build -p vipd && cargo test -p vipd-tests` (or `VIPD_BIN=/path/to/vipd`).
//! Namespaces are named `vipd-t-<tag>-<pid>-<n>`; a run that was SIGKILLed leaves
//! them behind, and the next run (or [`cleanup_stale`]) removes them.
//!
//! Fallible helpers return [`anyhow::Result`] with errors that name the command, its
//! exit status and its stderr, so test functions can be `-> anyhow::Result<()>` and `?`
//! their way through a scenario.

pub mod bfdd;
pub mod bgp;
pub mod frr;
pub mod keepalived;
pub mod lb;
pub mod netns;
pub mod packet;
pub mod pinger;
pub mod proc;
pub mod sockets;
pub mod stall;
pub mod topo;
pub mod vipd;
pub mod wait;

use std::path::PathBuf;

pub use netns::{Netns, cleanup_owned_by, cleanup_stale, in_netns};
pub use proc::{Finished, Proc};
pub use topo::{
    Lan, add_addr, addrs, ifindex_of, link_down, link_local, link_up, mac_of, parse_mac,
    veth_between, xdp_prog_id,
};
pub use wait::{poll_until, wait_until};

/// Panics unless the process runs as root.
///
/// Call it first in every integration test: without CAP_NET_ADMIN nothing else here can
/// work, and a clear message beats a confusing `ip` error three calls later.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert!(
        euid == 0,
        "integration tests need root (CAP_NET_ADMIN, CAP_BPF): run `cargo xtask test` as root"
    );
}

/// Path of the vipd binary under test.
///
/// `VIPD_BIN` if set; otherwise `<target dir>/debug/vipd`, where the target dir is
/// `CARGO_TARGET_DIR` (relative paths taken from the workspace root) or
/// `<workspace root>/target`. Panics if the file does not exist, saying how to build it.
pub fn vipd_bin() -> PathBuf {
    let path = match std::env::var_os("VIPD_BIN") {
        Some(bin) => PathBuf::from(bin),
        None => {
            let workspace_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
            let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
                Some(dir) => workspace_root.join(dir), // join keeps an absolute `dir` as is
                None => workspace_root.join("target"),
            };
            target_dir.join("debug").join("vipd")
        }
    };
    assert!(
        path.is_file(),
        "vipd binary not found at {}: build it first: `cargo xtask test` does \
         (or set VIPD_BIN)",
        path.display()
    );
    path
}
