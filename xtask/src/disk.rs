//! Free-space check before a build: a full disk otherwise shows up as "No space left on
//! device" from rustc or the linker deep inside a long log, after minutes of work (a
//! CI run once failed that way 73 s in). Checking first turns it into one clear error
//! that names the directory, what it holds, and what is missing.

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use anyhow::{Context as _, bail};

const GIB: u64 = 1 << 30;

/// What `cargo xtask test` leaves under target/ on a fresh clone: 6.2 GB measured
/// (debug build with its incremental cache, the release eBPF object and the fuzz build,
/// the cached Debian root of the package test), plus room for the linker's temporaries.
pub const TEST_BUILD: u64 = 7 * GIB;

/// Fails unless the filesystem of `dir` can hold `need` bytes of build output, counting
/// what `dir` already holds (a warm target/ mostly rewrites files in place).
pub fn ensure_room(what: &str, dir: &Path, need: u64) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let used = allocated(dir);
    let free = free_space(dir)?;
    if let Some(missing) = shortfall(need, used, free) {
        bail!(
            "{what} needs about {} under {} (it holds {} now) but its filesystem has only {} free: \
             free {} more, or point CARGO_TARGET_DIR at a larger disk",
            gib(need),
            dir.display(),
            gib(used),
            gib(free),
            gib(missing),
        );
    }
    Ok(())
}

/// How many more bytes a build needing `need` in a directory holding `used` lacks
/// with `free` bytes available, or None if it fits.
fn shortfall(need: u64, used: u64, free: u64) -> Option<u64> {
    need.saturating_sub(used)
        .checked_sub(free)
        .filter(|&missing| missing > 0)
}

/// Bytes available to an unprivileged writer on the filesystem holding `dir` (root may
/// also use the reserved blocks, but the compiler should not have to).
fn free_space(dir: &Path) -> anyhow::Result<u64> {
    let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .with_context(|| format!("{} contains a NUL byte", dir.display()))?;
    // SAFETY: statvfs only writes into the zeroed struct we pass and reads the
    // NUL-terminated path, which outlives the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("statvfs {}", dir.display()));
    }
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Disk blocks allocated under `dir`, not following symlinks; unreadable entries count
/// as empty (this is an estimate for an error message, not an audit).
fn allocated(dir: &Path) -> u64 {
    let mut total = 0u64;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            total = total.saturating_add(meta.blocks().saturating_mul(512));
            if meta.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    total
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / GIB as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warm_target_needs_only_what_it_lacks() {
        // Fresh clone, plenty of room / too little.
        assert_eq!(shortfall(7 * GIB, 0, 70 * GIB), None);
        assert_eq!(shortfall(7 * GIB, 0, GIB), Some(6 * GIB));
        // A warm target/ that already holds the build fits in what is left.
        assert_eq!(shortfall(7 * GIB, 6 * GIB, GIB), None);
        assert_eq!(shortfall(7 * GIB, 9 * GIB, 0), None);
        assert_eq!(shortfall(7 * GIB, 5 * GIB, GIB), Some(GIB));
    }

    #[test]
    fn measures_this_filesystem_and_directory() {
        let dir = std::env::temp_dir().join(format!("xtask-disk-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).expect("temp dir");
        std::fs::write(dir.join("sub/file"), vec![1u8; 1 << 20]).expect("write 1 MiB");
        let used = allocated(&dir);
        let free = free_space(&dir).expect("statvfs");
        // Asking for more than the disk could ever hold is refused, with the numbers.
        let refused = ensure_room("the test", &dir, u64::MAX / 2);
        std::fs::remove_dir_all(&dir).expect("cleanup");
        assert!(used >= 1 << 20, "1 MiB file counted: {used}");
        assert!(free > 0, "a writable filesystem has free space");
        let err = refused.expect_err("no disk is that large").to_string();
        assert!(
            err.contains("free") && err.contains("CARGO_TARGET_DIR"),
            "{err}"
        );
    }
}
