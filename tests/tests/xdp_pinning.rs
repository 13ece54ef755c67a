//! Pinning and takeover of vipd's XDP link (docs/xdp.md, "Pinning"), on the real kernel.
//!
//! Lab: namespace p1 with a veth pair eth0/eth1 (both ends inside p1). The program is
//! attached in generic mode to eth0 with pins under a bpffs directory and a lock
//! directory unique to this test process, removed on every exit path.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use vipd::io::bpf::{
    AttachMode, AttachOptions, AttachedMode, BpfError, IpFamily, PinConfig, WatchSpec,
    XdpAttachment,
};
use vipd::proto::wire::{Auth, Version};
use vipd_common::map_names;
use vipd_tests::{Netns, in_netns, require_root};

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const OWNER_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x01, 0x07];

/// Pin and lock directories of this test; removes them (and so the pinned link and
/// maps, whatever the test left) when dropped.
struct PinDirs {
    config: PinConfig,
}

impl PinDirs {
    fn new() -> PinDirs {
        let unique = format!(
            "vipd-t-pin-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        PinDirs {
            config: PinConfig {
                bpffs_dir: Path::new("/sys/fs/bpf").join(&unique),
                lock_dir: std::env::temp_dir().join(unique),
            },
        }
    }
}

impl Drop for PinDirs {
    fn drop(&mut self) {
        // Unlinking the pins releases the link and maps once no fd holds them.
        let _ = std::fs::remove_dir_all(&self.config.bpffs_dir);
        let _ = std::fs::remove_dir_all(&self.config.lock_dir);
    }
}

fn options(pin: &PinConfig) -> AttachOptions {
    AttachOptions {
        mode: AttachMode::Generic,
        log: false,
        pin: Some(pin.clone()),
        lb: false,
    }
}

/// Whether `ip -d link show eth0` in `ns` shows an XDP program.
fn xdp_attached(ns: &Netns) -> anyhow::Result<bool> {
    let out = ns.ip(&["-d", "link", "show", "eth0"])?;
    Ok(out.contains("xdpgeneric") || out.contains("prog/xdp"))
}

/// The program id behind the pinned link, from bpftool.
fn linked_program_id(link_pin: &Path) -> anyhow::Result<u64> {
    let path = link_pin.to_str().context("pin path is not UTF-8")?;
    let out = std::process::Command::new("bpftool")
        .args(["--json", "link", "show", "pinned", path])
        .output()
        .context("running bpftool")?;
    ensure!(
        out.status.success(),
        "bpftool link show pinned {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    json["prog_id"]
        .as_u64()
        .with_context(|| format!("no prog_id in {json}"))
}

fn pin_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn pinned_link_outlives_its_owner_is_locked_taken_over_and_unpinned() -> anyhow::Result<()> {
    require_root();
    let dirs = PinDirs::new();
    let pin = dirs.config.clone();
    let ns = Netns::new("pin")?;
    ns.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "eth1",
    ])?;
    ns.ip(&["link", "set", "eth0", "up"])?;
    ns.ip(&["link", "set", "eth1", "up"])?;
    let if_dir = pin.interface_dir("eth0");
    let link_pin = if_dir.join("link");
    let spec = WatchSpec {
        version: Version::V3,
        auth: Auth::None,
        silence: Duration::from_secs(3),
    };

    // 1. First owner: attaches fresh, pins link and state maps.
    let first_program = in_netns(&ns, || -> anyhow::Result<u64> {
        let mut first = XdpAttachment::attach_with("eth0", &options(&pin))?;
        ensure!(!first.taken_over(), "nothing to take over yet");
        ensure!(first.mode() == AttachedMode::Generic);
        first.set_vip_lease(VIP, OWNER_MAC, 1)?; // long expired: ARP for it is dropped
        first.watch(7, IpFamily::Ipv4, &spec)?;
        let mut expected: Vec<PathBuf> = map_names::PINNED
            .iter()
            .map(|name| if_dir.join(name))
            .chain([link_pin.clone()])
            .collect();
        expected.sort();
        ensure!(
            pin_files(&if_dir) == expected,
            "pins: {:?}",
            pin_files(&if_dir)
        );

        // 2. A second attach while the first owner lives is refused, clearly.
        match XdpAttachment::attach_with("eth0", &options(&pin)) {
            Err(BpfError::InterfaceLocked { holder, .. }) => {
                ensure!(
                    holder.contains(&format!("pid={}", std::process::id())),
                    "lock holder: {holder:?}"
                );
            }
            Err(other) => bail!("expected InterfaceLocked, got: {other}"),
            Ok(_) => bail!("a second attach on a locked interface succeeded"),
        }
        let id = linked_program_id(&link_pin)?;
        // 3. The owner goes away without cleaning up (as after kill -9).
        drop(first);
        Ok(id)
    })??;
    ensure!(
        xdp_attached(&ns)?,
        "the pinned link must keep the program attached after its owner is gone"
    );
    ensure!(linked_program_id(&link_pin)? == first_program);

    // 4. The next owner takes over: new program in the same link, same maps.
    in_netns(&ns, || -> anyhow::Result<()> {
        let second = XdpAttachment::attach_with("eth0", &options(&pin))?;
        ensure!(second.taken_over(), "the pinned link must be taken over");
        ensure!(
            second.mode() == AttachedMode::Generic,
            "mode from the lock file"
        );
        let program = linked_program_id(&link_pin)?;
        ensure!(
            program != first_program,
            "the link must run the new program (still {program})"
        );
        let lease = second
            .vip_lease(VIP)?
            .context("the lease map must be inherited")?;
        ensure!(lease.owner_mac == OWNER_MAC && lease.lease_expires_ns == 1);
        ensure!(second.observed(7, IpFamily::Ipv4)?.is_none());

        // 5. Clean shutdown leaves nothing behind.
        second.detach_and_unpin()?;
        Ok(())
    })??;
    ensure!(!if_dir.exists(), "pins left: {:?}", pin_files(&if_dir));
    ensure!(
        !xdp_attached(&ns)?,
        "XDP still attached after detach_and_unpin"
    );

    // 6. And the interface is free again for a fresh, unpinned attach.
    in_netns(&ns, || -> anyhow::Result<()> {
        let fresh = XdpAttachment::attach("eth0", AttachMode::Generic)?;
        drop(fresh);
        Ok(())
    })??;
    ensure!(
        !xdp_attached(&ns)?,
        "an unpinned attachment detaches on drop"
    );
    Ok(())
}
