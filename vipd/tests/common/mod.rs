//! What the XDP program tests share: the verdict numbers, the ifindex they run on, and
//! one run of a frame through `BPF_PROG_TEST_RUN` with the counters it moved.
//!
//! Each test binary includes this module and uses part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;

use vipd::io::bpf::LoadedXdp;
use vipd::proto::bfd::wire::{ControlRepr, Diagnostic, Flags, SessionState};

pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;
pub const XDP_REDIRECT: u32 = 4;
/// The ifindex test runs see (`BPF_PROG_TEST_RUN` uses the loopback device).
pub const LOOPBACK: u32 = 1;

/// vipd's XDP program, loaded (not attached): needs root.
pub fn load() -> LoadedXdp {
    assert!(
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() } == 0,
        "XDP program tests need root (CAP_BPF): run `cargo xtask test`"
    );
    LoadedXdp::load().expect("load vipd's XDP program")
}

/// A well-formed BFD Control packet (RFC 5880 §4.1), Up at 10 ms × 3, for Your
/// Discriminator `your`.
pub fn bfd_control(your: u32) -> [u8; 24] {
    ControlRepr {
        diagnostic: Diagnostic::None,
        state: SessionState::Up,
        flags: Flags::default(),
        detect_mult: 3,
        my_discriminator: 0x0bad_cafe,
        your_discriminator: your,
        desired_min_tx: 10_000,
        required_min_rx: 10_000,
        required_min_echo_rx: 0,
    }
    .to_bytes()
}

/// Counter changes between two snapshots, only the ones that moved.
pub fn delta(
    before: &BTreeMap<&'static str, u64>,
    after: &BTreeMap<&'static str, u64>,
) -> BTreeMap<&'static str, u64> {
    after
        .iter()
        .map(|(name, value)| {
            let was = before.get(name).copied().unwrap_or(0);
            (*name, value.saturating_sub(was))
        })
        .filter(|(_, d)| *d > 0)
        .collect()
}

/// Runs `frame` through the program: its verdict, the frame as it left, and the
/// counters that moved.
pub fn run(xdp: &mut LoadedXdp, frame: &[u8]) -> (u32, Vec<u8>, BTreeMap<&'static str, u64>) {
    let before = xdp.stats().expect("stats");
    let outcome = xdp.test_run(frame).expect("test run");
    let after = xdp.stats().expect("stats");
    (outcome.action, outcome.frame, delta(&before, &after))
}
