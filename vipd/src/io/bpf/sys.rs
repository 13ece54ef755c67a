//! The system calls aya does not wrap, each behind a safe function: bpf(2) for the
//! interface a pinned XDP link is attached to, bpffs detection and mounting, the mount
//! namespace trick that keeps the loader from reading the kernel's BTF, the clock the
//! program reads, and interface indexes.

use std::ffi::CString;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

use super::BpfError;

/// `statfs` magic of bpffs.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// Mounts a bpffs (mode 0700) on `target`.
pub(super) fn mount_bpffs(target: &Path) -> std::io::Result<()> {
    let target = c_path(target)?;
    // SAFETY: valid NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            c"bpf".as_ptr(),
            target.as_ptr(),
            c"bpf".as_ptr(),
            0,
            c"mode=0700".as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Gives the calling thread a mount namespace of its own in which an empty read-only
/// tmpfs covers `/sys/kernel/btf`; false if any step fails (no CAP_SYS_ADMIN, no such
/// directory). The rest of the process keeps the real mounts.
pub(super) fn hide_kernel_btf_on_this_thread() -> bool {
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
                c"/sys/kernel/btf".as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                std::ptr::null(),
            ) == 0
    }
}

/// Whether the nearest existing ancestor of `path` (itself included) is on bpffs.
pub(super) fn is_bpffs(path: &Path) -> bool {
    let Some(existing) = path.ancestors().find(|p| p.exists()) else {
        return false;
    };
    let Ok(cpath) = c_path(existing) else {
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
pub(super) fn pinned_link_ifindex(path: &Path) -> std::io::Result<Option<u32>> {
    if !path.exists() {
        return Ok(None);
    }
    let fd = bpf_obj_get(path)?;
    xdp_link_ifindex(&fd).map(Some)
}

/// The `bpf(2)` commands used directly (aya does not expose an XDP link's ifindex).
const BPF_OBJ_GET: libc::c_long = 7;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;

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

/// BPF_OBJ_GET: an fd for the object pinned at `path`.
fn bpf_obj_get(path: &Path) -> std::io::Result<OwnedFd> {
    let cpath = c_path(path)?;
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
    nix::net::if_::if_nametoindex(interface).map_err(|_| BpfError::UnknownInterface {
        interface: interface.to_owned(),
    })
}

/// `path` as a C string; a path with a NUL byte cannot name a file.
fn c_path(path: &Path) -> std::io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
}
