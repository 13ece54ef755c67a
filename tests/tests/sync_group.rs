//! Sync groups and track files: instances in a group move together, and a track file
//! (keepalived `vrrp_track_file`) moves priority or causes FAULT.
//!
//! Two routers on one LAN, each with two instances on eth0 (VRID 7 with 192.0.2.100,
//! VRID 8 with 192.0.2.101), r1 preferred for both. Adverts every 50 ms.

use std::path::{Path, PathBuf};
use std::time::Duration;

use vipd_tests::vipd::{
    InstanceConf, Router, STOP_ALL_TIMEOUT, Scratch, config_toml, has_addr, notify_recorder,
    recorded, stop_all, wait_recorded,
};
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
    routers_with(lan, scratch, grouped, |_, _| Ok(()))
}

/// [`routers`], with `edit(name, config file)` run on each config before its router
/// starts.
fn routers_with<'a>(
    lan: &'a Lan,
    scratch: &Scratch,
    grouped: bool,
    edit: impl Fn(&str, &Path) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<Router<'a>>> {
    let mut routers = Vec::new();
    for (i, (name, priority)) in [("r1", 200), ("r2", 100)].into_iter().enumerate() {
        let config = write_config(scratch, name, priority, grouped, scratch.path())?;
        edit(name, &config)?;
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

/// Appends group G's notify commands to `config` (G's table is the file's last): the
/// specific ones run `specific` with the state's name, the generic one runs `generic`
/// (which gets `GROUP G STATE 0`).
fn add_group_notify(config: &Path, specific: &Path, generic: &Path) -> anyhow::Result<()> {
    let mut text = std::fs::read_to_string(config)?;
    for state in ["master", "backup", "fault", "stop"] {
        text.push_str(&format!(
            "notify_{state} = [{:?}, {state:?}]\n",
            specific.display().to_string()
        ));
    }
    text.push_str(&format!("notify = [{:?}]\n", generic.display().to_string()));
    std::fs::write(config, text)?;
    Ok(())
}

/// A group's notify commands run on each group state change, including STOP at
/// shutdown: r1's group goes BACKUP, MASTER, FAULT (a member's track file), BACKUP and
/// MASTER again (it preempts), then STOP; r2's follows the other way.
#[test]
fn group_notify_commands_run_on_every_group_change_and_at_stop() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = lab("syncn2")?;
    let mut logs = Vec::new();
    for name in ["r1", "r2"] {
        let (specific, specific_log) = notify_recorder(&scratch, &format!("{name}-group"))?;
        let (generic, generic_log) = notify_recorder(&scratch, &format!("{name}-generic"))?;
        logs.push((specific, specific_log, generic, generic_log));
    }
    let mut routers = routers_with(&lan, &scratch, true, |name, config| {
        let (specific, _, generic, _) = &logs[usize::from(name == "r2")];
        add_group_notify(config, specific, generic)
    })?;
    let wait = Duration::from_secs(3);
    wait_recorded(&logs[0].1, &["backup", "master"], wait)?;
    wait_recorded(&logs[1].1, &["backup"], wait)?;

    std::fs::write(scratch.path().join("r1-down"), "1\n")?;
    for vi in ["VI_A", "VI_B"] {
        routers[0].wait_state(vi, "FAULT", ELECTION)?;
        routers[1].wait_state(vi, "MASTER", ELECTION)?;
    }
    wait_recorded(&logs[0].1, &["backup", "master", "fault"], wait)?;
    wait_recorded(&logs[1].1, &["backup", "master"], wait)?;

    std::fs::write(scratch.path().join("r1-down"), "0\n")?;
    for vi in ["VI_A", "VI_B"] {
        routers[0].wait_state(vi, "MASTER", ELECTION)?;
        routers[1].wait_state(vi, "BACKUP", ELECTION)?;
    }
    let r1_running = ["backup", "master", "fault", "backup", "master"];
    wait_recorded(&logs[0].1, &r1_running, wait)?;
    wait_recorded(&logs[1].1, &["backup", "master", "backup"], wait)?;

    // Members' own transitions are not group changes: none of them ran a group command
    // twice in a row.
    for (_, log, _, _) in &logs {
        let lines = recorded(log);
        assert!(
            lines.windows(2).all(|w| w[0] != w[1]),
            "repeated group notify: {lines:?}"
        );
    }

    // r1 first, and r2 only once its takeover is on record: its MASTER and STOP notify
    // commands are separate processes, and spawned tens of milliseconds apart on a busy
    // host they could append to the log out of order.
    let done = routers[0].stop(STOP_ALL_TIMEOUT)?;
    assert!(
        done.status.success(),
        "r1 exited {} on SIGTERM\n{}",
        done.status,
        done.stderr
    );
    // r2 took the group over when r1 stopped, then stopped itself.
    wait_recorded(&logs[1].1, &["backup", "master", "backup", "master"], wait)?;
    stop_all(&mut routers)?;
    wait_recorded(
        &logs[0].1,
        &["backup", "master", "fault", "backup", "master", "stop"],
        wait,
    )?;
    wait_recorded(
        &logs[1].1,
        &["backup", "master", "backup", "master", "stop"],
        wait,
    )?;
    wait_recorded(
        &logs[0].3,
        &[
            "GROUP G BACKUP 0",
            "GROUP G MASTER 0",
            "GROUP G FAULT 0",
            "GROUP G BACKUP 0",
            "GROUP G MASTER 0",
            "GROUP G STOP 0",
        ],
        wait,
    )?;
    Ok(())
}

/// Reloads that keep the group run no group command; a reload that removes the group
/// runs its notify_stop (keepalived: the group stops).
#[test]
fn a_reload_runs_group_notify_only_when_it_removes_the_group() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = lab("syncrl")?;
    let (specific, log) = notify_recorder(&scratch, "r1-group")?;
    let (generic, generic_log) = notify_recorder(&scratch, "r1-generic")?;
    let mut routers = routers_with(&lan, &scratch, true, |name, config| {
        if name == "r1" {
            add_group_notify(config, &specific, &generic)?;
        }
        Ok(())
    })?;
    let wait = Duration::from_secs(3);
    wait_recorded(&log, &["backup", "master"], wait)?;
    for _ in 0..5 {
        routers[0].signal(libc::SIGHUP)?;
        std::thread::sleep(Duration::from_millis(100));
    }
    routers[0].assert_state_holds("VI_A", "MASTER", Duration::from_millis(300))?;
    assert_eq!(
        recorded(&log),
        ["backup", "master"],
        "an unchanged group notified"
    );

    // The same file without the group section.
    let config = routers[0].config_path().to_owned();
    let text = std::fs::read_to_string(&config)?;
    let without = text
        .split("\n[sync_group.G]")
        .next()
        .unwrap_or_default()
        .to_owned();
    anyhow::ensure!(without.len() < text.len(), "no group section in {text}");
    std::fs::write(&config, without)?;
    routers[0].signal(libc::SIGHUP)?;
    wait_recorded(&log, &["backup", "master", "stop"], wait)?;
    wait_recorded(
        &generic_log,
        &["GROUP G BACKUP 0", "GROUP G MASTER 0", "GROUP G STOP 0"],
        wait,
    )?;
    // The instances themselves run on.
    for vi in ["VI_A", "VI_B"] {
        routers[0].assert_state_holds(vi, "MASTER", Duration::from_millis(200))?;
    }
    stop_all(&mut routers)?;
    // Stopping later runs nothing more for a group that is gone.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(recorded(&log), ["backup", "master", "stop"]);
    Ok(())
}
