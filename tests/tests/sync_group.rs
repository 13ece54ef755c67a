//! Sync groups and track files: instances in a group move together, and a track file
//! (keepalived `vrrp_track_file`) moves priority or causes FAULT.
//!
//! Two routers on one LAN, each with two instances on eth0 (VRID 7 with 192.0.2.100,
//! VRID 8 with 192.0.2.101), r1 preferred for both. Adverts every 50 ms.

use std::path::{Path, PathBuf};
use std::time::Duration;

use vipd_tests::vipd::{InstanceConf, Router, Scratch, config_toml, has_addr, stop_all};
use vipd_tests::{Lan, require_root};

const ELECTION: Duration = Duration::from_secs(5);

fn lab(tag: &str) -> anyhow::Result<(Lan, Scratch)> {
    vipd_tests::vipd::router_lab(tag, 2, false)
}

/// Writes `<name>.toml`: two instances (`priority` each), VI_A tracking the file `down`
/// with weight 0 (non-zero value = FAULT) and VI_B tracking `bump` with weight 10, and
/// with `grouped` both in sync group G.
fn write_config(
    scratch: &Scratch,
    name: &str,
    priority: u8,
    grouped: bool,
    files: &Path,
) -> anyhow::Result<PathBuf> {
    let socket = scratch.path().join(format!("{name}.sock"));
    let mut text = config_toml(
        name,
        &socket,
        &[
            InstanceConf::new("VI_A", 7, priority, "192.0.2.100/24")
                .set("track_file", "[\"down\"]"),
            InstanceConf::new("VI_B", 8, priority, "192.0.2.101/24")
                .set("track_file", "[\"bump\"]"),
        ],
    );
    text.push_str(&format!(
        "\n[track_file.down]\nfile = \"{}\"\nweight = 0\n\n[track_file.bump]\nfile = \"{}\"\nweight = 10\n",
        files.join(format!("{name}-down")).display(),
        files.join(format!("{name}-bump")).display(),
    ));
    if grouped {
        text.push_str("\n[sync_group.G]\ngroup = [\"VI_A\", \"VI_B\"]\n");
    }
    scratch.write(&format!("{name}.toml"), &text)
}

fn routers<'a>(lan: &'a Lan, scratch: &Scratch, grouped: bool) -> anyhow::Result<Vec<Router<'a>>> {
    let mut routers = Vec::new();
    for (i, (name, priority)) in [("r1", 200), ("r2", 100)].into_iter().enumerate() {
        let config = write_config(scratch, name, priority, grouped, scratch.path())?;
        let mut router = Router::from_file(lan.member(i), scratch, name, &config)?;
        router.start()?;
        routers.push(router);
    }
    for vi in ["VI_A", "VI_B"] {
        routers[0].wait_state(vi, "MASTER", ELECTION)?;
        routers[1].wait_state(vi, "BACKUP", ELECTION)?;
    }
    Ok(routers)
}

/// One member's fault takes the whole group over to the other router; clearing it
/// brings both back.
#[test]
fn a_faulted_member_takes_the_whole_group_with_it() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = lab("syncf")?;
    let mut routers = routers(&lan, &scratch, true)?;
    std::fs::write(scratch.path().join("r1-down"), "1\n")?;
    routers[0].wait_state("VI_A", "FAULT", ELECTION)?;
    // VI_B has no fault of its own, but follows its group.
    routers[0].wait_state("VI_B", "FAULT", ELECTION)?;
    for vi in ["VI_A", "VI_B"] {
        routers[1].wait_state(vi, "MASTER", ELECTION)?;
    }
    assert!(!has_addr(lan.member(0), "eth0", "192.0.2.101")?);
    assert!(has_addr(lan.member(1), "eth0", "192.0.2.101")?);
    std::fs::write(scratch.path().join("r1-down"), "0\n")?;
    for vi in ["VI_A", "VI_B"] {
        routers[0].wait_state(vi, "MASTER", ELECTION)?;
        routers[1].wait_state(vi, "BACKUP", ELECTION)?;
    }
    stop_all(&mut routers)
}

/// Without the group only the faulted instance moves: the control for the test above.
#[test]
fn without_a_group_only_the_faulted_instance_moves() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = lab("syncn")?;
    let mut routers = routers(&lan, &scratch, false)?;
    std::fs::write(scratch.path().join("r1-down"), "1\n")?;
    routers[0].wait_state("VI_A", "FAULT", ELECTION)?;
    routers[1].wait_state("VI_A", "MASTER", ELECTION)?;
    routers[0].assert_state_holds("VI_B", "MASTER", Duration::from_millis(400))?;
    stop_all(&mut routers)
}

/// A track file's value × weight moves priority: r2's VI_B gains 10 × 15 = 150 and
/// preempts (keepalived's vrrp_track_file).
#[test]
fn track_file_value_times_weight_moves_priority() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = lab("syncw")?;
    let mut routers = routers(&lan, &scratch, false)?;
    std::fs::write(scratch.path().join("r2-bump"), "15\n")?;
    routers[1].wait_state("VI_B", "MASTER", ELECTION)?;
    let r2 = routers[1].instance("VI_B")?;
    assert_eq!(r2["effective_priority"], 250);
    // VI_A is not affected.
    routers[0].assert_state_holds("VI_A", "MASTER", Duration::from_millis(300))?;
    // Removing the file counts as 0: back to 100, r1 preempts.
    std::fs::remove_file(scratch.path().join("r2-bump"))?;
    routers[0].wait_state("VI_B", "MASTER", ELECTION)?;
    stop_all(&mut routers)
}
