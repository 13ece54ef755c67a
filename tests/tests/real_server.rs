//! `vipd real-server` in a namespace: the VIPs go on `lo` and the ARP sysctls are set
//! while it runs; SIGTERM removes what it added (not what was there before) and restores
//! each sysctl's previous value.

use std::time::Duration;

use vipd_tests::{Netns, require_root, vipd_bin};

fn sysctl(ns: &Netns, key: &str) -> String {
    ns.exec_ok(&["sysctl", "-n", key])
        .unwrap()
        .trim()
        .to_owned()
}

fn lo_addresses(ns: &Netns) -> String {
    ns.ip(&["-o", "address", "show", "dev", "lo"]).unwrap()
}

#[test]
fn real_server_sets_up_lo_and_the_arp_sysctls_and_undoes_them() {
    require_root();
    let ns = Netns::new("rsrv").unwrap();
    // A value other than the default, to see it restored rather than reset; and an
    // address already on lo, which must stay.
    ns.sysctl("net.ipv4.conf.all.arp_announce", "1").unwrap();
    ns.ip(&["address", "add", "192.0.2.101/32", "dev", "lo"])
        .unwrap();
    let before: Vec<String> = [
        "all.arp_ignore",
        "all.arp_announce",
        "lo.arp_ignore",
        "lo.arp_announce",
    ]
    .iter()
    .map(|k| sysctl(&ns, &format!("net.ipv4.conf.{k}")))
    .collect();
    assert_eq!(before, ["0", "1", "0", "0"]);

    let bin = vipd_bin().display().to_string();
    let mut proc = ns
        .spawn(&[
            &bin,
            "real-server",
            "--vip",
            "192.0.2.100",
            "--vip",
            "192.0.2.101",
            "--vip",
            "2001:db8::100",
        ])
        .unwrap();
    proc.wait_for_line(Duration::from_secs(10), |l| l.starts_with("ready"))
        .unwrap();
    let lo = lo_addresses(&ns);
    for expected in ["192.0.2.100/32", "192.0.2.101/32", "2001:db8::100/128"] {
        assert!(lo.contains(expected), "{expected} not on lo:\n{lo}");
    }
    let during: Vec<String> = [
        "all.arp_ignore",
        "all.arp_announce",
        "lo.arp_ignore",
        "lo.arp_announce",
    ]
    .iter()
    .map(|k| sysctl(&ns, &format!("net.ipv4.conf.{k}")))
    .collect();
    assert_eq!(during, ["1", "2", "1", "2"]);

    let finished = proc.terminate(Duration::from_secs(10)).unwrap();
    assert!(finished.status.success(), "{finished:?}");
    assert!(finished.stdout.contains("restored"), "{finished:?}");
    let lo = lo_addresses(&ns);
    assert!(
        !lo.contains("192.0.2.100/32"),
        "added VIP left behind:\n{lo}"
    );
    assert!(
        !lo.contains("2001:db8::100/128"),
        "added VIP left behind:\n{lo}"
    );
    assert!(
        lo.contains("192.0.2.101/32"),
        "pre-existing address removed:\n{lo}"
    );
    let after: Vec<String> = [
        "all.arp_ignore",
        "all.arp_announce",
        "lo.arp_ignore",
        "lo.arp_announce",
    ]
    .iter()
    .map(|k| sysctl(&ns, &format!("net.ipv4.conf.{k}")))
    .collect();
    assert_eq!(after, before);
}

#[test]
fn dry_run_changes_nothing() {
    require_root();
    let ns = Netns::new("rsdry").unwrap();
    let bin = vipd_bin().display().to_string();
    let out = ns
        .exec_ok(&[&bin, "real-server", "--vip", "192.0.2.100", "--dry-run"])
        .unwrap();
    assert!(
        out.contains("ip address add 192.0.2.100/32 dev lo"),
        "{out}"
    );
    assert!(
        out.contains("sysctl -w net.ipv4.conf.all.arp_ignore=1"),
        "{out}"
    );
    assert!(!lo_addresses(&ns).contains("192.0.2.100"));
    assert_eq!(sysctl(&ns, "net.ipv4.conf.all.arp_ignore"), "0");
}
