//! Track scripts (`[script.NAME]`, keepalived `vrrp_script`) in a running vipd: weights
//! move the effective priority and with it the election, weight 0 means FAULT, an
//! overrunning script is killed with its whole process group and counts as a failure,
//! and rise/fall hold back changes.
//!
//! Routers are members of a bridged LAN with 192.0.2.(i+1)/24 on `eth0`, adverts every
//! 50 ms, XDP off. Scripts are argv arrays around `/usr/bin/test -e FILE` on files in
//! the test's scratch directory, checked every 100 ms, so the test flips a check by
//! creating or removing a file.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use anyhow::ensure;

use vipd_tests::vipd::{InstanceConf, Router, Scratch, stop_all, wait_only_holder};
use vipd_tests::{Lan, poll_until, require_root};

const VIP: &str = "192.0.2.100";
const VIP_CIDR: &str = "192.0.2.100/24";
const ELECTION: Duration = Duration::from_secs(5);

fn lab(tag: &str, routers: usize) -> anyhow::Result<(Lan, Scratch)> {
    vipd_tests::vipd::router_lab(tag, routers, false)
}

/// A generous `timeout` for the `test -e` scripts of the tests that are not about
/// timeouts: it defaults to the interval (100 ms) and `fall` to 1, so a single run slowed
/// past 100 ms by a busy host would count as a failure the test did not cause (a false
/// FAULT, or a priority change). A timeout longer than the interval is allowed: the
/// next run waits for the current one.
const SCRIPT_TIMEOUT: &str = "\"2s\"";

/// A `[script.NAME]` table as extra TOML after the instances.
fn script_table(name: &str, argv: &[&str], settings: &[(&str, &str)]) -> String {
    let argv = argv
        .iter()
        .map(|a| format!("{a:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut text = format!("\n[script.{name}]\nscript = [{argv}]\n");
    for (key, value) in settings {
        text.push_str(&format!("{key} = {value}\n"));
    }
    text
}

/// Appends `tables` to router `router`'s config file (written by `Router::new`).
fn append_config(router: &Router<'_>, tables: &str) -> anyhow::Result<()> {
    let path = router.config_path();
    let mut text = std::fs::read_to_string(path)?;
    text.push_str(tables);
    std::fs::write(path, text)?;
    Ok(())
}

fn path_str(path: &Path) -> String {
    path.display().to_string()
}

fn wait_vip_only_on(lan: &Lan, holder: usize) -> anyhow::Result<()> {
    wait_only_holder(lan, VIP, holder, ELECTION)
}

/// A positive weight is added while the script is healthy: r1 (100, +20 while its file
/// exists) against r2 (110) is master exactly while the file exists.
#[test]
fn positive_weight_adds_priority_while_healthy() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = lab("trkplus", 2)?;
    let bonus = scratch.path().join("bonus");
    let r1_conf = InstanceConf::new("VI_1", 7, 100, VIP_CIDR).set("track_script", "[\"bonus\"]");
    let mut r1 = Router::new(lan.member(0), &scratch, "r1", &[r1_conf])?;
    append_config(
        &r1,
        &script_table(
            "bonus",
            &["/usr/bin/test", "-e", &path_str(&bonus)],
            &[
                ("interval", "\"100ms\""),
                ("timeout", SCRIPT_TIMEOUT),
                ("weight", "20"),
            ],
        ),
    )?;
    let mut r2 = Router::new(
        lan.member(1),
        &scratch,
        "r2",
        &[InstanceConf::new("VI_1", 7, 110, VIP_CIDR)],
    )?;
    r2.start()?;
    r1.start()?;
    r2.wait_state("VI_1", "MASTER", ELECTION)?;
    r1.wait_instance("BACKUP at 100", "VI_1", ELECTION, |i| {
        i["state"] == "BACKUP" && i["effective_priority"] == 100
    })?;
    wait_vip_only_on(&lan, 1)?;

    std::fs::write(&bonus, "")?;
    r1.wait_instance("MASTER at 120", "VI_1", ELECTION, |i| {
        i["state"] == "MASTER" && i["effective_priority"] == 120 && i["priority"] == 100
    })?;
    r2.wait_state("VI_1", "BACKUP", ELECTION)?;
    wait_vip_only_on(&lan, 0)?;

    std::fs::remove_file(&bonus)?;
    r1.wait_instance("BACKUP at 100", "VI_1", ELECTION, |i| {
        i["state"] == "BACKUP" && i["effective_priority"] == 100
    })?;
    r2.wait_state("VI_1", "MASTER", ELECTION)?;
    wait_vip_only_on(&lan, 1)?;
    stop_all(&mut [r1, r2])
}

/// Weight 0: a failing script puts the instance into FAULT (VIP released, the backup
/// takes over); healthy again, it rejoins and, being the higher priority, preempts.
#[test]
fn weight_zero_failure_is_fault() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = lab("trkfault", 2)?;
    let healthy = scratch.path().join("healthy");
    std::fs::write(&healthy, "")?;
    let r1_conf = InstanceConf::new("VI_1", 7, 200, VIP_CIDR).set("track_script", "[\"up\"]");
    let mut r1 = Router::new(lan.member(0), &scratch, "r1", &[r1_conf])?;
    append_config(
        &r1,
        &script_table(
            "up",
            &["/usr/bin/test", "-e", &path_str(&healthy)],
            &[
                ("interval", "\"100ms\""),
                ("timeout", SCRIPT_TIMEOUT),
                ("weight", "0"),
            ],
        ),
    )?;
    let mut r2 = Router::new(
        lan.member(1),
        &scratch,
        "r2",
        &[InstanceConf::new("VI_1", 7, 100, VIP_CIDR)],
    )?;
    r1.start()?;
    r2.start()?;
    r1.wait_state("VI_1", "MASTER", ELECTION)?;
    r2.wait_state("VI_1", "BACKUP", ELECTION)?;
    wait_vip_only_on(&lan, 0)?;

    std::fs::remove_file(&healthy)?;
    let fault = r1.wait_state("VI_1", "FAULT", ELECTION)?;
    ensure!(
        fault["effective_priority"] == 200,
        "weight 0 must not change the priority: {fault}"
    );
    r2.wait_state("VI_1", "MASTER", ELECTION)?;
    wait_vip_only_on(&lan, 1)?;
    r1.assert_state_holds("VI_1", "FAULT", Duration::from_millis(500))?;

    std::fs::write(&healthy, "")?;
    r1.wait_state("VI_1", "MASTER", ELECTION)?;
    r2.wait_state("VI_1", "BACKUP", ELECTION)?;
    wait_vip_only_on(&lan, 0)?;
    stop_all(&mut [r1, r2])
}

/// A script that overruns its timeout counts as failed (weight 0: FAULT) and is killed
/// with its process group: its background child, which would create a marker file
/// 1 s after the script started, never does, run after run. (The kill is due at 200 ms;
/// the 800 ms between are slack for a loaded machine, not part of what is checked.)
#[test]
fn overrunning_script_is_killed_with_its_group_and_fails() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = lab("trkslow", 1)?;
    let started = scratch.path().join("started");
    let marker = scratch.path().join("marker");
    let body = format!(
        "touch {}; (sleep 1; touch {}) & sleep 5; exit 0",
        path_str(&started),
        path_str(&marker)
    );
    let conf = InstanceConf::new("VI_1", 7, 100, VIP_CIDR).set("track_script", "[\"slow\"]");
    let mut r1 = Router::new(lan.member(0), &scratch, "r1", &[conf])?;
    append_config(
        &r1,
        &script_table(
            "slow",
            &["/bin/sh", "-c", &body],
            &[
                ("interval", "\"300ms\""),
                ("timeout", "\"200ms\""),
                ("weight", "0"),
            ],
        ),
    )?;
    let t0 = Instant::now();
    r1.start()?;
    // Had it waited for `sleep 5` (exit 0), the instance would not be FAULT this soon.
    r1.wait_state("VI_1", "FAULT", Duration::from_secs(3))?;
    ensure!(t0.elapsed() < Duration::from_secs(4));
    ensure!(started.exists(), "the script never ran");
    // Several runs, each killed at 200 ms, each child due at 1 s: the first run began at
    // least 200 ms before FAULT, so its child was due 800 ms after FAULT at the latest,
    // and the 1.5 s hold leaves it 700 ms more.
    r1.assert_state_holds("VI_1", "FAULT", Duration::from_millis(1500))?;
    ensure!(
        !marker.exists(),
        "a child of the timed-out script survived the kill and wrote {}",
        marker.display()
    );
    ensure!(!vipd_tests::vipd::has_addr(lan.member(0), "eth0", VIP)?);
    stop_all(&mut [r1])
}

/// How long the in-flight script's background child of
/// [`script_children_do_not_outlive_vipd`] sleeps before it writes its marker: longer
/// than vipd takes to start, elect itself and stop, even on a loaded machine.
const CHILD_DELAY: Duration = Duration::from_secs(3);
/// How long after the child was due the test looks for its marker.
const CHILD_MARGIN: Duration = Duration::from_millis(700);

/// The same overrunning script, but vipd stops (SIGTERM) while a run is in flight: the
/// run's process group must go with vipd, as it would at the timeout. A tokio `Child`
/// with `kill_on_drop` alone SIGKILLs the direct child only; the background
/// `(sleep 3; touch marker)` would survive vipd and write the marker.
///
/// The child is due [`CHILD_DELAY`] after the run started (the mtime of a file the
/// script touches first); vipd must have exited before then, or the test cannot tell a
/// surviving child from one that wrote while vipd was still legitimately running.
#[test]
fn script_children_do_not_outlive_vipd() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = lab("trkstop", 1)?;
    let started = scratch.path().join("started");
    let marker = scratch.path().join("marker");
    let body = format!(
        "touch {}; (sleep {}; touch {}) & sleep 10; exit 0",
        path_str(&started),
        CHILD_DELAY.as_secs_f64(),
        path_str(&marker)
    );
    let conf = InstanceConf::new("VI_1", 7, 100, VIP_CIDR).set("track_script", "[\"slow\"]");
    let mut r1 = Router::new(lan.member(0), &scratch, "r1", &[conf])?;
    append_config(
        &r1,
        &script_table(
            "slow",
            &["/bin/sh", "-c", &body],
            &[
                ("interval", "\"10s\""),
                ("timeout", "\"5s\""),
                ("weight", "-10"),
            ],
        ),
    )?;
    r1.start()?;
    // The first run starts at once and is in flight for 5 s (its timeout).
    r1.wait_state("VI_1", "MASTER", ELECTION)?;
    let run_started = poll_until(
        "the track script to start",
        ELECTION,
        Duration::from_millis(10),
        || {
            std::fs::metadata(&started)
                .and_then(|m| m.modified())
                .map_err(|e| e.to_string())
        },
    )?;
    let child_due = run_started + CHILD_DELAY;
    stop_all(&mut [r1])?;
    let stopped = SystemTime::now();
    ensure!(
        stopped < child_due,
        "inconclusive: vipd exited {:?} after the script started, later than its child's \
         {CHILD_DELAY:?}",
        stopped.duration_since(run_started).unwrap_or_default()
    );
    // A negative needs its time: wait until the child, had it survived, would have written.
    let check_at = child_due + CHILD_MARGIN;
    std::thread::sleep(
        check_at
            .duration_since(SystemTime::now())
            .unwrap_or_default(),
    );
    ensure!(
        !marker.exists(),
        "a child of the in-flight track script outlived vipd and wrote {}",
        marker.display()
    );
    Ok(())
}

/// rise 5 / fall 5 at 100 ms: a 150 ms failure blip changes nothing; a lasting failure
/// lowers the priority (weight −50) only after about five failing runs, and recovery
/// takes about five good runs. Coarse bounds (≥ 350 ms) for a loaded machine.
#[test]
fn rise_and_fall_hold_back_changes() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = lab("trkhyst", 1)?;
    let broken = scratch.path().join("broken");
    let conf = InstanceConf::new("VI_1", 7, 100, VIP_CIDR).set("track_script", "[\"hyst\"]");
    let mut r1 = Router::new(lan.member(0), &scratch, "r1", &[conf])?;
    append_config(
        &r1,
        &script_table(
            "hyst",
            &["/usr/bin/test", "!", "-e", &path_str(&broken)],
            &[
                ("interval", "\"100ms\""),
                ("timeout", SCRIPT_TIMEOUT),
                ("weight", "-50"),
                ("rise", "5"),
                ("fall", "5"),
            ],
        ),
    )?;
    r1.start()?;
    r1.wait_state("VI_1", "MASTER", ELECTION)?;
    ensure!(r1.instance("VI_1")?["effective_priority"] == 100);

    // A blip of at most two failing runs.
    std::fs::write(&broken, "")?;
    std::thread::sleep(Duration::from_millis(150));
    std::fs::remove_file(&broken)?;
    let end = Instant::now() + Duration::from_secs(1);
    while Instant::now() < end {
        let i = r1.instance("VI_1")?;
        ensure!(
            i["effective_priority"] == 100,
            "a blip shorter than fall moved the priority: {i}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let failing = Instant::now();
    std::fs::write(&broken, "")?;
    r1.wait_instance("priority 50", "VI_1", ELECTION, |i| {
        i["effective_priority"] == 50
    })?;
    let took = failing.elapsed();
    ensure!(
        took >= Duration::from_millis(350),
        "fall 5 at 100 ms, but the priority dropped after {took:?}"
    );

    let recovering = Instant::now();
    std::fs::remove_file(&broken)?;
    r1.wait_instance("priority 100", "VI_1", ELECTION, |i| {
        i["effective_priority"] == 100
    })?;
    let took = recovering.elapsed();
    ensure!(
        took >= Duration::from_millis(350),
        "rise 5 at 100 ms, but the priority came back after {took:?}"
    );
    stop_all(&mut [r1])
}

/// `track_interface` with a weight (keepalived `track_interface { IF weight W }`) moves
/// the priority instead of causing FAULT: r1 (150) tracks an interface with weight −60
/// (added while it is down) and one with +25 (added while up), against r2 (160).
/// Both up: 175, master. The −60 one down: 115, backup, not FAULT. Up again: master.
#[test]
fn weighted_track_interface_moves_priority_instead_of_fault() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = lab("trkif", 2)?;
    let ns = lan.member(0);
    // veth pairs inside r1's namespace (the dummy module may be missing).
    for link in ["trkneg", "trkpos"] {
        let peer = format!("{link}p");
        ns.ip(&["link", "add", link, "type", "veth", "peer", "name", &peer])?;
        ns.ip(&["link", "set", &peer, "up"])?;
        ns.ip(&["link", "set", link, "up"])?;
    }
    let r1_conf = InstanceConf::new("VI_1", 7, 150, VIP_CIDR).set(
        "track_interface",
        "[{ name = \"trkneg\", weight = -60 }, { name = \"trkpos\", weight = 25 }]",
    );
    let mut r1 = Router::new(ns, &scratch, "r1", &[r1_conf])?;
    let mut r2 = Router::new(
        lan.member(1),
        &scratch,
        "r2",
        &[InstanceConf::new("VI_1", 7, 160, VIP_CIDR)],
    )?;
    r1.start()?;
    r2.start()?;
    r1.wait_instance("MASTER at 175", "VI_1", ELECTION, |i| {
        i["state"] == "MASTER" && i["effective_priority"] == 175
    })?;
    r2.wait_state("VI_1", "BACKUP", ELECTION)?;
    wait_vip_only_on(&lan, 0)?;

    ns.ip(&["link", "set", "trkneg", "down"])?;
    r1.wait_instance("BACKUP at 115", "VI_1", ELECTION, |i| {
        i["state"] == "BACKUP" && i["effective_priority"] == 115
    })?;
    r2.wait_state("VI_1", "MASTER", ELECTION)?;
    wait_vip_only_on(&lan, 1)?;

    ns.ip(&["link", "set", "trkneg", "up"])?;
    r1.wait_instance("MASTER at 175", "VI_1", ELECTION, |i| {
        i["state"] == "MASTER" && i["effective_priority"] == 175
    })?;
    wait_vip_only_on(&lan, 0)?;
    // The +25 one down: 150 < 160, backup again, still no FAULT.
    ns.ip(&["link", "set", "trkpos", "down"])?;
    r1.wait_instance("BACKUP at 150", "VI_1", ELECTION, |i| {
        i["state"] == "BACKUP" && i["effective_priority"] == 150
    })?;
    stop_all(&mut [r1, r2])
}
