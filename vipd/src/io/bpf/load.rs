//! The embedded XDP object and [`LoadedXdp`]: loading it (with or without pinned maps),
//! verifying the program, and running packet fixtures through it (BPF_PROG_TEST_RUN).
//! Map access is in [`maps`](super::maps), the readers in [`events`](super::events),
//! attaching in [`attach`](super::attach).

use std::path::PathBuf;

use aya::programs::Xdp;
use aya::{Ebpf, EbpfLoader, TestRun as _, TestRunOptions};
use vipd_common::{LOG_ENABLED_GLOBAL, XDP_PROGRAM, map_names};

use super::maps::check_pinned_maps;
use super::{BpfError, sys};

/// The XDP object, built from `vipd-ebpf` for bpfel-unknown-none by build.rs.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vipd"));

/// How [`LoadedXdp::load_with`] prepares the program.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Switch the program's aya-log output on (see [`LoadedXdp::take_logger`]).
    pub log: bool,
    /// Reuse (or create and pin) the state maps in this bpffs directory.
    pub map_pin_dir: Option<PathBuf>,
    /// Size the load balancer's maps for use (tens of MB of kernel memory). Off, each
    /// holds one entry: the program finds no service and passes everything on.
    pub lb: bool,
}

/// The load balancer's maps that are sized by [`LoadOptions::lb`].
const LB_SIZED_MAPS: [&str; 9] = [
    vipd_common::lb::map_names::LB_SERVICES,
    vipd_common::lb::map_names::LB_ADDRS,
    vipd_common::lb::map_names::LB_TABLES,
    vipd_common::lb::map_names::LB_BACKENDS,
    vipd_common::lb::map_names::LB_FLOWS,
    vipd_common::lb::map_names::LB_PERSIST,
    vipd_common::lb::map_names::LB_BACKEND_STATS,
    vipd_common::lb::map_names::LB_ACTIVE,
    vipd_common::lb::map_names::LB_CURSORS,
];

/// A loaded (verified) copy of vipd's XDP program with its own maps, not yet attached.
///
/// Tests run packet fixtures through it with BPF_PROG_TEST_RUN ([`LoadedXdp::test_run`]);
/// [`XdpAttachment`](super::XdpAttachment) attaches it to an interface.
pub struct LoadedXdp {
    pub(super) ebpf: Ebpf,
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
    let made = std::thread::Builder::new()
        .name("vipd-bpf-loader".into())
        .spawn(|| {
            if sys::hide_kernel_btf_on_this_thread() {
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
        if !options.lb {
            for name in LB_SIZED_MAPS {
                loader.map_max_entries(name, 1);
            }
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

    /// Runs `frame` through the program `repeat` times in the kernel (one
    /// BPF_PROG_TEST_RUN) and returns the last verdict and the kernel's mean time per
    /// run: the program's own cost per packet, without the driver or the stack.
    pub fn time_run(
        &mut self,
        frame: &[u8],
        repeat: u32,
    ) -> Result<(u32, std::time::Duration), BpfError> {
        let program = program_mut(&mut self.ebpf)?;
        let mut out = vec![0u8; frame.len() + 256];
        let result = program
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                repeat: repeat.max(1),
                ..TestRunOptions::default()
            })
            .map_err(|source| BpfError::TestRun { source })?;
        Ok((result.return_value, result.duration))
    }
}

/// The XDP program inside `ebpf`.
pub(super) fn program_mut(ebpf: &mut Ebpf) -> Result<&mut Xdp, BpfError> {
    ebpf.program_mut(XDP_PROGRAM)
        .ok_or(BpfError::Missing("program vipd_xdp"))?
        .try_into()
        .map_err(|source| BpfError::Verify { source })
}
