//! The seed keepalived setup (vipd/tests/fixtures/keepalived/, copies of
//! shared/seed-keepalived/) run as operators run it: `vipd run -c node1-keepalived.conf`,
//! the file as it is, on a node whose interface is `eth0`.
//!
//! Two namespaces on a bridged LAN, node1 192.0.2.1/24 and node2 192.0.2.2/24 on `eth0`.
//! The seed's settings are what is under test: VRRPv2, VRID 7, advert_int 1, PASS auth
//! "1111", priorities 100/99, the `chk_mantaince_down` script (`[[ -f
//! /etc/keepalived/down ]] && exit 1 || exit 0`, weight −2) and notify_master/backup/fault
//! calling /etc/keepalived/notify.sh.
//!
//! **What the copies change, and only that:** a test must not touch the host's
//! /etc/keepalived, so each node runs a copy of its file in which the two paths under
//! /etc/keepalived are rewritten: `/etc/keepalived/down` becomes a per-test temp file
//! (`<scratch>/nodeN-down`) and `/etc/keepalived/notify.sh` a per-node recorder script
//! that appends its arguments to `<scratch>/notify-nodeN.log` (the seed's notify.sh mails
//! and starts nginx). [`seed_copy`] checks that undoing those two substitutions gives the
//! fixture back byte for byte. Everything else — global_defs with its SMTP server, the
//! `virtual_server` block (whose `nat_mask` vipd warns about), the bash one-liner — is unchanged; vipd runs
//! with XDP `auto` (the file does not say), so each vipd gets its own bpffs and run
//! directories.
//!
//! The scenario, per node pair: node1 becomes MASTER; touching node1's down file drops
//! its priority by 2 to 98 < 99 and node2 takes over; removing it gives node1 its 100
//! back and it preempts. Each node's notify calls must be exactly the transitions it
//! went through. With 1 s adverts a run takes about 10 s.
//!
//! Pairs: vipd + keepalived 2.2.7 (the migration's middle step) and vipd + vipd (the
//! end). keepalived plays node2 only: 2.2.7 exec's `script` strings without a shell and
//! disables the seed's check at start ("Cannot find script [[ in path - disabling"), so
//! as node1 it would never hand over — the seed's maintenance switch does not work under
//! keepalived 2.2.7 at all, while vipd runs the line via /bin/bash as documented.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, ensure};

use vipd_tests::keepalived::Keepalived;
use vipd_tests::vipd::{
    Router, Scratch, notify_recorder, recorded, stop_all, wait_only_holder, wait_recorded,
};
use vipd_tests::{Lan, add_addr, require_root};

const VIP: &str = "192.0.2.100";
const NODE1_ADDR: &str = "192.0.2.1";
const NODE2_ADDR: &str = "192.0.2.2";

/// Bound on a VRRPv2 (1 s adverts) election or handover, including the 1 s check
/// interval: Master_Down_Interval is about 3.6 s.
const ELECTION: Duration = Duration::from_secs(8);

/// The fixture directory.
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../vipd/tests/fixtures/keepalived")
}

/// A node's copy of its seed config, with `down` and `notify` in place of the two
/// /etc/keepalived paths; checks nothing else changed.
struct SeedNode {
    config: PathBuf,
    down: PathBuf,
    notify_log: PathBuf,
}

fn seed_copy(scratch: &Scratch, node: &str) -> anyhow::Result<SeedNode> {
    let original_path = fixtures().join(format!("{node}-keepalived.conf"));
    let original = std::fs::read_to_string(&original_path)
        .with_context(|| format!("reading {}", original_path.display()))?;
    let down = scratch.path().join(format!("{node}-down"));
    let (notify, notify_log) = notify_recorder(scratch, &format!("notify-{node}"))?;
    let (down_text, notify_text) = (down.display().to_string(), notify.display().to_string());
    let copy = original
        .replace("/etc/keepalived/down", &down_text)
        .replace("/etc/keepalived/notify.sh", &notify_text);
    ensure!(
        copy.replace(&down_text, "/etc/keepalived/down")
            .replace(&notify_text, "/etc/keepalived/notify.sh")
            == original,
        "the copy of {node}'s config differs in more than the two paths"
    );
    ensure!(copy.contains(&down_text) && copy.matches(&notify_text).count() == 3);
    // The name keeps `keepalived.conf`, as on a real node.
    let config = scratch.write(&format!("{node}-keepalived.conf"), &copy)?;
    Ok(SeedNode {
        config,
        down,
        notify_log,
    })
}

/// One node of the pair, vipd or keepalived.
enum Node<'a> {
    Vipd(Router<'a>),
    Keepalived(Keepalived<'a>),
}

impl Node<'_> {
    fn start(&mut self) -> anyhow::Result<()> {
        match self {
            Node::Vipd(r) => r.start(),
            Node::Keepalived(k) => k.start(),
        }
    }

    fn wait_state(&mut self, state: &str) -> anyhow::Result<()> {
        match self {
            Node::Vipd(r) => r.wait_state("VI_1", state, ELECTION).map(drop),
            Node::Keepalived(k) => k.wait_state("VI_1", state, ELECTION),
        }
    }

    fn finish(self) -> anyhow::Result<()> {
        match self {
            Node::Vipd(r) => stop_all(&mut [r]),
            Node::Keepalived(mut k) => {
                let done = k.stop(Duration::from_secs(5))?;
                ensure!(done.status.success(), "keepalived exited {}", done.status);
                Ok(())
            }
        }
    }
}

/// Polls until the VIP is on `lan.member(holder)`'s eth0 only.
fn wait_vip_only_on(lan: &Lan, holder: usize) -> anyhow::Result<()> {
    wait_only_holder(lan, VIP, holder, ELECTION)
}

/// The maintenance-file handover with node1 on vipd and node2 on vipd or keepalived.
fn seed_handover(tag: &str, node2_is_keepalived: bool) -> anyhow::Result<()> {
    require_root();
    let lan = Lan::new(tag, 2)?;
    add_addr(lan.member(0), "eth0", &format!("{NODE1_ADDR}/24"))?;
    add_addr(lan.member(1), "eth0", &format!("{NODE2_ADDR}/24"))?;
    let scratch = Scratch::new(tag)?;
    let seed1 = seed_copy(&scratch, "node1")?;
    let seed2 = seed_copy(&scratch, "node2")?;

    let mut node1 = Router::from_file(lan.member(0), &scratch, "node1", &seed1.config)?;
    let mut node2 = if node2_is_keepalived {
        Node::Keepalived(Keepalived::from_file(
            lan.member(1),
            &scratch,
            "node2",
            &seed2.config,
        ))
    } else {
        Node::Vipd(Router::from_file(
            lan.member(1),
            &scratch,
            "node2",
            &seed2.config,
        )?)
    };

    node1.start()?;
    node2.start()?;
    let status = node1.wait_state("VI_1", "MASTER", ELECTION)?;
    ensure!(
        status["version"] == 2 && status["priority"] == 100,
        "node1 did not read the seed's v2 / priority 100: {status}"
    );
    node2.wait_state("BACKUP")?;
    wait_vip_only_on(&lan, 0)?;
    // The check ran (bash, file absent → exit 0): no penalty.
    node1.assert_state_holds("VI_1", "MASTER", Duration::from_millis(1500))?;
    ensure!(node1.instance("VI_1")?["effective_priority"] == 100);

    // Maintenance: the operator touches the down file on node1.
    std::fs::write(&seed1.down, "")?;
    node1.wait_instance("effective priority 98", "VI_1", ELECTION, |i| {
        i["effective_priority"] == 98
    })?;
    node2.wait_state("MASTER")?;
    node1.wait_instance(&format!("BACKUP of {NODE2_ADDR}"), "VI_1", ELECTION, |i| {
        i["state"] == "BACKUP" && i["master_address"] == NODE2_ADDR
    })?;
    wait_vip_only_on(&lan, 1)?;

    // Maintenance over: node1 gets its 100 back and preempts (preempt is the default).
    std::fs::remove_file(&seed1.down)?;
    node1.wait_instance("MASTER at 100", "VI_1", ELECTION, |i| {
        i["state"] == "MASTER" && i["effective_priority"] == 100
    })?;
    node2.wait_state("BACKUP")?;
    wait_vip_only_on(&lan, 0)?;

    // Every transition ran its notify command, with the seed's argument, in order.
    wait_recorded(
        &seed1.notify_log,
        &["master", "backup", "master"],
        Duration::from_secs(3),
    )?;
    wait_recorded(
        &seed2.notify_log,
        &["backup", "master", "backup"],
        Duration::from_secs(3),
    )?;
    let counters = &node1.instance("VI_1")?["counters"];
    ensure!(
        counters["notify_commands_run"] == 3 && counters["notify_command_failures"] == 0,
        "node1 counters: {counters}"
    );
    ensure!(counters["rx_auth_data_mismatch"].as_u64().unwrap_or(0) == 0);

    node2.finish()?;
    stop_all(&mut [node1])?;
    // node1 stopped as BACKUP? No: as master; nothing more is notified (no notify_stop).
    ensure!(recorded(&seed1.notify_log).len() == 3);
    Ok(())
}

/// node1 on vipd, node2 on keepalived 2.2.7: the migration's middle step.
#[test]
fn seed_configs_vipd_node1_keepalived_node2() -> anyhow::Result<()> {
    seed_handover("seedka", true)
}

/// Both nodes on vipd, each from its unchanged seed keepalived.conf.
#[test]
fn seed_configs_vipd_both_nodes() -> anyhow::Result<()> {
    seed_handover("seedvv", false)
}

/// The seed's `virtual_server` balances: both nodes on vipd from their unchanged seed
/// files, the two real servers the seed names (192.0.2.11 and .12) with the VIP on lo
/// and an HTTP server (the seed's HTTP_GET checks `/` for 200), and a client. Requests
/// to the VIP are spread over both servers by node1; after node1 dies, node2 (which
/// programmed the same pool all along) serves them.
#[test]
fn seed_virtual_server_balances_over_its_real_servers_and_fails_over() -> anyhow::Result<()> {
    use vipd_tests::lb::{get_once, real_server_setup, server_script, start_http};
    require_root();
    let tag = "seedlb";
    // Members: node1, node2, rs .11, rs .12, client .50.
    let lan = Lan::new(tag, 5)?;
    add_addr(lan.member(0), "eth0", &format!("{NODE1_ADDR}/24"))?;
    add_addr(lan.member(1), "eth0", &format!("{NODE2_ADDR}/24"))?;
    add_addr(lan.member(4), "eth0", "192.0.2.50/24")?;
    let scratch = Scratch::new(tag)?;
    let script = server_script(&scratch)?;
    let mut servers = Vec::new();
    for (i, addr) in ["192.0.2.11", "192.0.2.12"].iter().enumerate() {
        let ns = lan.member(2 + i);
        add_addr(ns, "eth0", &format!("{addr}/24"))?;
        real_server_setup(ns, &[VIP])?;
        servers.push(start_http(ns, &script, addr, 80)?);
    }
    let seed1 = seed_copy(&scratch, "node1")?;
    let seed2 = seed_copy(&scratch, "node2")?;
    let mut node1 = Router::from_file(lan.member(0), &scratch, "node1", &seed1.config)?;
    let mut node2 = Router::from_file(lan.member(1), &scratch, "node2", &seed2.config)?;
    node1.start()?;
    node2.start()?;
    node1.wait_state("VI_1", "MASTER", ELECTION)?;
    node2.wait_state("VI_1", "BACKUP", ELECTION)?;
    let vs_ready = |router: &Router<'_>| {
        vipd_tests::poll_until(
            &format!("{}: both real servers alive and reachable", router.name()),
            Duration::from_secs(20),
            Duration::from_millis(200),
            || -> Result<(), String> {
                let status = router.status().map_err(|e| e.to_string())?;
                let vs = &status["virtual_servers"][0];
                let ok = vs["name"]
                    .as_str()
                    .is_some_and(|n| n.contains("192.0.2.100"))
                    && vs["real_servers"].as_array().is_some_and(|l| {
                        l.len() == 2
                            && l.iter()
                                .all(|r| r["state"] == "alive" && r["unreachable"].is_null())
                    });
                if ok { Ok(()) } else { Err(vs.to_string()) }
            },
        )
    };
    vs_ready(&node1)?;
    vs_ready(&node2)?;
    let vip: std::net::SocketAddr = format!("{VIP}:80").parse()?;
    let spread = |n: usize| -> anyhow::Result<std::collections::BTreeMap<String, usize>> {
        let mut counts = std::collections::BTreeMap::new();
        for _ in 0..n {
            let name = get_once(lan.member(4), vip, Duration::from_secs(3))?;
            *counts.entry(name).or_insert(0) += 1;
        }
        Ok(counts)
    };
    let counts = spread(20)?;
    ensure!(
        counts.len() == 2 && counts.values().all(|&c| c >= 5),
        "rr over the seed's two real servers: {counts:?}"
    );

    node1.kill()?;
    node2.wait_state("VI_1", "MASTER", ELECTION)?;
    // The client's ARP entry for the VIP follows node2's gratuitous ARP.
    let counts = vipd_tests::poll_until(
        "requests through node2",
        Duration::from_secs(10),
        Duration::from_millis(200),
        || spread(20).map_err(|e| e.to_string()),
    )?;
    ensure!(counts.len() == 2, "node2 balances too: {counts:?}");
    drop(servers);
    stop_all(&mut [node2])
}
