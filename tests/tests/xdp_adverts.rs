//! The XDP advert fast path against real VRRPv3 adverts from keepalived.
//!
//! Lab: namespaces r1 (XDP program, generic mode, unpinned) and k1 (keepalived, VRRPv3,
//! VRID 51, priority 150, advert_int 0.1) joined by a veth; 192.0.2.1/24 and
//! 192.0.2.2/24. keepalived's pid files live in a temp dir removed on exit.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use anyhow::{Context, ensure};
use vipd::io::bpf::{AttachMode, IpFamily, WatchSpec, XdpAttachment};
use vipd::proto::wire::{Auth, Centiseconds, Version};
use vipd_tests::{Netns, add_addr, in_netns, poll_until, require_root, veth_between};

const VRID: u8 = 51;
const KEEPALIVED_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

/// A temp directory removed on drop.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn keepalived_adverts_are_recorded_in_the_map() -> anyhow::Result<()> {
    require_root();
    let r1 = Netns::new("adv_r1")?;
    let k1 = Netns::new("adv_k1")?;
    veth_between(&r1, "eth0", &k1, "eth0")?;
    add_addr(&r1, "eth0", "192.0.2.1/24")?;
    add_addr(&k1, "eth0", &format!("{KEEPALIVED_IP}/24"))?;

    let tmp = TempDir(std::env::temp_dir().join(format!("vipd-t-adv-{}", std::process::id())));
    std::fs::create_dir_all(&tmp.0)?;
    let conf = tmp.0.join("keepalived.conf");
    std::fs::write(
        &conf,
        format!(
            "global_defs {{\n  vrrp_version 3\n  script_user root\n}}\n\
             vrrp_instance VI_1 {{\n  state MASTER\n  interface eth0\n  virtual_router_id {VRID}\n  \
             priority 150\n  advert_int 0.1\n  virtual_ipaddress {{\n    192.0.2.100/24\n  }}\n}}\n"
        ),
    )?;
    let path = |name: &str| tmp.0.join(name).to_string_lossy().into_owned();
    let (conf, p1, p2, p3) = (
        path("keepalived.conf"),
        path("keepalived.pid"),
        path("vrrp.pid"),
        path("checkers.pid"),
    );

    // Attach and watch before keepalived starts, so the first advert is seen.
    let mut xdp = in_netns(&r1, || XdpAttachment::attach("eth0", AttachMode::Generic))??;
    xdp.watch(
        VRID,
        IpFamily::Ipv4,
        &WatchSpec {
            version: Version::V3,
            auth: Auth::None,
            silence: Duration::from_secs(1),
        },
    )?;
    let _keepalived = k1.spawn(&[
        "keepalived",
        "-n",
        "-l",
        "-D",
        "-f",
        &conf,
        "-p",
        &p1,
        "-r",
        &p2,
        "-c",
        &p3,
    ])?;

    let seen = poll_until(
        "5 adverts from keepalived in OBSERVED_ADVERTS",
        Duration::from_secs(15),
        Duration::from_millis(50),
        || match xdp.observed(VRID, IpFamily::Ipv4) {
            Ok(Some(seen)) if seen.count >= 5 => Ok(seen),
            other => Err(format!("{other:?}")),
        },
    )?;
    ensure!(seen.source == IpAddr::from(KEEPALIVED_IP), "{seen:?}");
    ensure!(seen.priority == 150, "{seen:?}");
    ensure!(seen.interval == Centiseconds(10), "{seen:?}");
    ensure!(
        seen.version == Version::V3 && seen.address_count == 1,
        "{seen:?}"
    );
    let stats = xdp.stats()?;
    let dropped: u64 = stats
        .iter()
        .filter(|(name, _)| name.starts_with("advert_dropped"))
        .map(|(_, v)| *v)
        .sum();
    ensure!(dropped == 0, "real adverts were rejected: {stats:?}");
    ensure!(
        *stats.get("advert_events_sent").context("counter")? >= 1,
        "first sight raises NewMaster: {stats:?}"
    );
    Ok(())
}
