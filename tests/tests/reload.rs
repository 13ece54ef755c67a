//! SIGHUP reloads the configuration without dropping VIPs: unchanged instances are not
//! touched, a changed master stays master, removed instances stop, new ones start, and a
//! broken file changes nothing.
//!
//! Two routers on one LAN (192.0.2.1 priority 200, 192.0.2.2 priority 100), adverts
//! every 50 ms. While a reload happens a watcher thread polls the master's VIPs every
//! millisecond and records any moment a VIP was missing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use vipd_tests::stall::{StallWatch, Stalls};
use vipd_tests::vipd::{InstanceConf, Router, Scratch, has_addr, stop_all};
use vipd_tests::{Lan, Netns, require_root};

const VIP: &str = "192.0.2.100";
const VIP_CIDR: &str = "192.0.2.100/24";
const VIP2: &str = "192.0.2.101";
const ELECTION: Duration = Duration::from_secs(5);

fn lab(tag: &str) -> anyhow::Result<(Lan, Scratch)> {
    vipd_tests::vipd::router_lab(tag, 2, false)
}

/// Watches `vips` on `ns` until stopped; returns how many polls found one missing.
fn watch_vips(ns: &Netns, vips: &[&str], stop: &Arc<AtomicBool>) -> anyhow::Result<u32> {
    let mut missing = 0;
    let mut polls = 0u32;
    while !stop.load(Ordering::Relaxed) && polls < 20_000 {
        polls += 1;
        for vip in vips {
            if !has_addr(ns, "eth0", vip)? {
                missing += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(missing)
}

/// A changed master (new priority, one more VIP) is rebuilt in place: its VIP never
/// leaves, the new VIP arrives, the backup sees no change of master.
#[test]
fn changed_master_keeps_its_vip_through_a_reload() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = lab("rlchg")?;
    let mut routers = vipd_tests::vipd::started_pair(&lan, &scratch)?;
    let backup_transitions = routers[1].counter("VI_1", "transitions")?;

    routers[0].reconfigure(&[InstanceConf::new("VI_1", 7, 150, VIP_CIDR).set(
        "virtual_ipaddress",
        &format!("[\"{VIP_CIDR}\", \"{VIP2}/24\"]"),
    )])?;
    let stop = Arc::new(AtomicBool::new(false));
    let missing = std::thread::scope(|scope| -> anyhow::Result<u32> {
        let watcher = scope.spawn(|| watch_vips(lan.member(0), &[VIP], &stop));
        routers[0].signal(libc::SIGHUP)?;
        let reloaded =
            vipd_tests::poll_until("the new VIP", ELECTION, Duration::from_millis(5), || {
                match has_addr(lan.member(0), "eth0", VIP2) {
                    Ok(true) => Ok(()),
                    other => Err(other.map_err(|e| e.to_string())),
                }
            });
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::Relaxed);
        let missing = watcher
            .join()
            .map_err(|_| anyhow::anyhow!("watcher panicked"))??;
        reloaded?;
        Ok(missing)
    })?;
    assert_eq!(
        missing, 0,
        "the VIP was missing from the master during the reload"
    );
    let r1 = routers[0].instance("VI_1")?;
    assert_eq!(r1["state"], "MASTER");
    assert_eq!(r1["priority"], 150);
    assert_eq!(
        routers[1].counter("VI_1", "transitions")?,
        backup_transitions,
        "the backup changed state"
    );
    assert!(routers[0].logs().contains("configuration reloaded"));
    stop_all(&mut routers)
}

/// 100 SIGHUPs in a row with an unchanged file: nothing moves.
#[test]
fn a_hundred_sighups_lose_nothing() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = lab("rl100")?;
    let mut routers = vipd_tests::vipd::started_pair(&lan, &scratch)?;
    let before: Vec<u64> = routers
        .iter()
        .map(|r| r.counter("VI_1", "transitions"))
        .collect::<anyhow::Result<_>>()?;
    let stop = Arc::new(AtomicBool::new(false));
    let missing = std::thread::scope(|scope| -> anyhow::Result<u32> {
        let watcher = scope.spawn(|| watch_vips(lan.member(0), &[VIP], &stop));
        for _ in 0..100 {
            routers[0].signal(libc::SIGHUP)?;
            routers[1].signal(libc::SIGHUP)?;
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        watcher
            .join()
            .map_err(|_| anyhow::anyhow!("watcher panicked"))?
    })?;
    assert_eq!(missing, 0, "the VIP went missing during 100 reloads");
    for ((router, state), before) in routers.iter().zip(["MASTER", "BACKUP"]).zip(before) {
        let instance = router.instance("VI_1")?;
        assert_eq!(instance["state"], state, "{}", router.name());
        assert_eq!(
            instance["counters"]["transitions"],
            before,
            "{} changed state during the reloads",
            router.name()
        );
    }
    assert!(!has_addr(lan.member(1), "eth0", VIP)?);
    stop_all(&mut routers)
}

/// A broken file is refused: vipd keeps running on what it had and says why.
#[test]
fn a_broken_file_keeps_the_running_configuration() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = lab("rlbad")?;
    let mut routers = vipd_tests::vipd::started_pair(&lan, &scratch)?;
    std::fs::write(
        routers[0].config_path(),
        "[instance.VI_1]\ninterface = \"eth0\"\nprioirty = 1\n",
    )?;
    routers[0].signal(libc::SIGHUP)?;
    vipd_tests::poll_until(
        "the reload error in the log",
        ELECTION,
        Duration::from_millis(10),
        || {
            let logs = routers[0].logs();
            if logs.contains("reload failed") && logs.contains("prioirty") {
                Ok(())
            } else {
                Err("not yet")
            }
        },
    )?;
    routers[0].assert_state_holds("VI_1", "MASTER", Duration::from_millis(300))?;
    assert!(has_addr(lan.member(0), "eth0", VIP)?);
    // A good file afterwards applies.
    routers[0].reconfigure(&[InstanceConf::new("VI_1", 7, 190, VIP_CIDR)])?;
    routers[0].signal(libc::SIGHUP)?;
    vipd_tests::poll_until(
        "priority 190",
        ELECTION,
        Duration::from_millis(10),
        || match routers[0].instance("VI_1").map(|i| i["priority"].clone()) {
            Ok(p) if p == 190 => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )?;
    stop_all(&mut routers)
}

/// Removing an instance stops it (its VIP leaves); adding one starts it.
#[test]
fn instances_come_and_go_with_the_file() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = lab("rladd")?;
    let mut routers = vipd_tests::vipd::started_pair(&lan, &scratch)?;
    // r1: VI_1 replaced by VI_2 (VRID 8, another VIP).
    routers[0].reconfigure(&[InstanceConf::new("VI_2", 8, 200, &format!("{VIP2}/24"))])?;
    routers[0].signal(libc::SIGHUP)?;
    routers[0].wait_state("VI_2", "MASTER", ELECTION)?;
    // VI_1 left r1, so r2 takes it over.
    routers[1].wait_state("VI_1", "MASTER", ELECTION)?;
    assert!(!has_addr(lan.member(0), "eth0", VIP)?);
    assert!(has_addr(lan.member(0), "eth0", VIP2)?);
    let status = routers[0].status()?;
    let names: Vec<&str> = status["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert_eq!(names, vec!["VI_2"]);
    stop_all(&mut routers)
}

/// A pair whose election depends on its trackers, at 10 ms adverts: r1 is 100 + 30
/// (slow script, healthy) + 3 × 10 (track file) = 160; r2 is 185 − 20 (slow script,
/// failing) + 1 × −10 (track file) = 155. Losing any one tracker's result flips the
/// election. Then 100 SIGHUPs with the unchanged files, 20 ms apart, to each router:
/// the trackers must keep running with their results, so nothing moves.
#[test]
fn a_hundred_sighups_keep_tracked_priorities() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = lab("rltrk")?;
    // The scripts take 200 ms: a reload that restarted them would leave the result
    // missing for longer than a backup needs to take over (3 × 10 ms + skew).
    let routers_spec = [
        ("r1", 100u8, "exit 0", 30, "3", 10),
        ("r2", 185, "exit 1", -20, "1", -10),
    ];
    let mut routers = Vec::new();
    for (i, (name, priority, exit, script_weight, value, file_weight)) in
        routers_spec.into_iter().enumerate()
    {
        let file = scratch.path().join(format!("{name}-track"));
        std::fs::write(&file, format!("{value}\n"))?;
        let conf = InstanceConf::new("VI_1", 7, priority, VIP_CIDR)
            .set("advert_int", "\"10ms\"")
            .set("track_script", "[\"chk\"]")
            .set("track_file", "[\"load\"]");
        let router = Router::new(lan.member(i), &scratch, name, &[conf])?;
        let mut text = std::fs::read_to_string(router.config_path())?;
        text.push_str(&format!(
            "\n[script.chk]\nscript = [\"/bin/sh\", \"-c\", \"sleep 0.2; {exit}\"]\n\
             interval = \"300ms\"\ntimeout = \"1s\"\nweight = {script_weight}\n\
             \n[track_file.load]\nfile = {:?}\nweight = {file_weight}\n",
            file.display().to_string()
        ));
        std::fs::write(router.config_path(), text)?;
        routers.push(router);
    }
    for router in &mut routers {
        router.start()?;
    }
    routers[0].wait_instance("MASTER at 160", "VI_1", ELECTION, |i| {
        i["state"] == "MASTER" && i["effective_priority"] == 160
    })?;
    routers[1].wait_instance("BACKUP at 155 of r1", "VI_1", ELECTION, |i| {
        i["state"] == "BACKUP"
            && i["effective_priority"] == 155
            && i["master_address"] == "192.0.2.1"
    })?;
    let before: Vec<u64> = routers
        .iter()
        .map(|r| r.counter("VI_1", "transitions"))
        .collect::<anyhow::Result<_>>()?;
    let watch = StallWatch::start()?;
    for _ in 0..100 {
        routers[0].signal(libc::SIGHUP)?;
        routers[1].signal(libc::SIGHUP)?;
        std::thread::sleep(Duration::from_millis(20));
    }
    // Longer than a takeover and a script run, so a lost result would show.
    std::thread::sleep(Duration::from_millis(400));
    let stalls = watch.finish()?;
    // At 10 ms a master whose vCPU the host takes away for long enough loses its role
    // whatever the reloads do (Master_Down_Interval 3 × 10 ms + 3.75 ms of skew): each
    // such stall may cost a takeover and the preemption back, one transition each per
    // router. Nothing else may move, and the end state is checked either way.
    let silencing = stalls.at_least(Stalls::silencing(
        Duration::from_micros(33_750),
        Duration::from_millis(10),
    )) as u64;
    let late_max_us = routers[0].counter("VI_1", "advert_late_max_us")?;
    for ((router, (state, priority)), before) in routers
        .iter()
        .zip([("MASTER", 160), ("BACKUP", 155)])
        .zip(before)
    {
        let instance = router.instance("VI_1")?;
        assert_eq!(instance["state"], state, "{}", router.name());
        assert_eq!(
            instance["effective_priority"],
            priority,
            "{}",
            router.name()
        );
        let changes: Vec<String> = router
            .plain_logs()
            .lines()
            .filter(|l| l.contains("state change") || l.contains("priority changed"))
            .map(str::to_owned)
            .collect();
        let after = instance["counters"]["transitions"]
            .as_u64()
            .unwrap_or(u64::MAX);
        assert!(
            after.saturating_sub(before) <= 2 * silencing,
            "{} changed state during the reloads ({before} → {after} transitions; the master's \
             latest advert was {late_max_us} µs late; {silencing} host stalls long enough to \
             silence it: {}):\n{}",
            router.name(),
            stalls.summary(),
            changes.join("\n")
        );
        if after != before {
            eprintln!(
                "{}: {} transitions after host stalls ({})",
                router.name(),
                after.saturating_sub(before),
                stalls.summary()
            );
        }
    }
    assert!(routers[0].logs().contains("configuration reloaded"));
    stop_all(&mut routers)
}
