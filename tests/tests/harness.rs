//! Self-tests of the netns harness: if these fail, no integration test result means
//! anything.

use std::path::Path;
use std::time::Duration;

use vipd_tests::{
    Lan, Netns, add_addr, addrs, ifindex_of, in_netns, link_down, link_up, mac_of, poll_until,
    require_root, veth_between, wait_until,
};

/// Pings `to` from `ns` until one echo comes back (the first may race neighbour
/// resolution), bounded to a few seconds.
fn ping(ns: &Netns, to: &str) -> anyhow::Result<()> {
    poll_until(
        &format!("{} to ping {to}", ns.name()),
        Duration::from_secs(5),
        Duration::from_millis(100),
        || {
            let out = ns
                .exec(&["ping", "-c", "1", "-W", "1", "-n", "-q", to])
                .map_err(|e| format!("{e:#}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&out.stdout).into_owned())
            }
        },
    )
}

fn netns_exists(name: &str) -> bool {
    Path::new("/var/run/netns").join(name).exists()
}

fn process_exists(pid: i32) -> bool {
    // A zombie that init has not reaped yet has no namespaces any more; count it as gone.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => false,
    }
}

#[test]
fn veth_pair_connects_two_namespaces() -> anyhow::Result<()> {
    require_root();
    let a = Netns::new("a")?;
    let b = Netns::new("b")?;
    veth_between(&a, "eth0", &b, "eth0")?;
    add_addr(&a, "eth0", "192.0.2.1/24")?;
    add_addr(&b, "eth0", "192.0.2.2/24")?;
    assert_eq!(
        addrs(&a, "eth0")?.first().map(String::as_str),
        Some("192.0.2.1/24")
    );
    assert_ne!(mac_of(&a, "eth0")?, mac_of(&b, "eth0")?);
    ping(&a, "192.0.2.2")?;
    ping(&b, "192.0.2.1")?;

    // Pulling one end down must cut the link, and bringing it up must restore it: tests
    // of FAULT on link down depend on both.
    link_down(&b, "eth0")?;
    let out = a.exec(&["ping", "-c", "1", "-W", "1", "-n", "-q", "192.0.2.2"])?;
    assert!(
        !out.status.success(),
        "ping must fail with the peer's link down"
    );
    link_up(&b, "eth0")?;
    ping(&a, "192.0.2.2")?;
    Ok(())
}

#[test]
fn lan_of_three_members_all_reach_each_other() -> anyhow::Result<()> {
    require_root();
    let lan = Lan::new("lan", 3)?;
    for (i, member) in lan.members().iter().enumerate() {
        add_addr(member, "eth0", &format!("198.51.100.{}/24", i + 1))?;
    }
    for (i, member) in lan.members().iter().enumerate() {
        for j in 0..lan.members().len() {
            if i != j {
                ping(member, &format!("198.51.100.{}", j + 1))?;
            }
        }
    }
    // Unplugging member 2's cable at the switch isolates it.
    link_down(lan.switch(), &Lan::port_name(2))?;
    let out = lan
        .member(0)
        .exec(&["ping", "-c", "1", "-W", "1", "-n", "-q", "198.51.100.3"])?;
    assert!(
        !out.status.success(),
        "member 2 must be unreachable with its port down"
    );
    Ok(())
}

#[test]
fn namespace_and_its_processes_are_gone_after_drop() -> anyhow::Result<()> {
    require_root();
    let ns = Netns::new("drop")?;
    let name = ns.name().to_owned();
    assert!(netns_exists(&name));
    // A daemon that double-forked away from us: only `ip netns pids` can find it.
    ns.exec_ok(&["sh", "-c", "sleep 300 >/dev/null 2>&1 </dev/null &"])?;
    let orphans = ns.pids()?;
    assert_eq!(orphans.len(), 1, "the background sleep: {orphans:?}");
    drop(ns);
    assert!(!netns_exists(&name), "{name} still exists");
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
            !process_exists(orphans[0])
        }),
        "process {} left behind in the deleted namespace",
        orphans[0]
    );
    Ok(())
}

#[test]
fn namespace_and_processes_are_gone_after_a_panicking_test_body() -> anyhow::Result<()> {
    require_root();
    let mut seen = None;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let ns = Netns::new("panic").expect("create namespace");
        let a = Netns::new("panic").expect("create namespace");
        veth_between(&ns, "eth0", &a, "eth0").expect("veth");
        let proc = ns.spawn(&["sleep", "300"]).expect("spawn sleep");
        seen = Some((ns.name().to_owned(), a.name().to_owned(), proc.pid()));
        panic!("test body fails");
    }));
    assert!(result.is_err(), "the body must have panicked");
    let (name, other, pid) = seen.expect("body ran up to the panic");
    assert!(!netns_exists(&name), "{name} survived the panic");
    assert!(!netns_exists(&other), "{other} survived the panic");
    assert!(
        !process_exists(pid),
        "spawned process {pid} survived the panic"
    );
    Ok(())
}

#[test]
fn names_are_unique_within_one_process() -> anyhow::Result<()> {
    require_root();
    let first = Netns::new("same")?;
    let second = Netns::new("same")?;
    assert_ne!(first.name(), second.name());
    assert!(
        first
            .name()
            .starts_with(&format!("vipd-t-same-{}-", std::process::id()))
    );
    Ok(())
}

#[test]
fn in_netns_sees_the_namespace_interfaces_not_the_hosts() -> anyhow::Result<()> {
    require_root();
    let a = Netns::new("inns")?;
    let b = Netns::new("inns")?;
    veth_between(&a, "eth0", &b, "vipdpeer")?;
    let host_before = interface_names();

    let inside = in_netns(&b, interface_names)?;
    assert_eq!(inside, vec!["lo".to_owned(), "vipdpeer".to_owned()]);
    let index_inside = in_netns(&b, || {
        // SAFETY: a NUL-terminated literal.
        unsafe { libc::if_nametoindex(c"vipdpeer".as_ptr()) }
    })?;
    assert_eq!(index_inside, ifindex_of(&b, "vipdpeer")?);

    // The calling thread never moved.
    assert_eq!(interface_names(), host_before);
    assert!(!host_before.contains(&"vipdpeer".to_owned()));

    // A panic inside is the caller's panic.
    let caught = std::panic::catch_unwind(|| in_netns(&b, || panic!("inside")));
    assert!(caught.is_err());
    Ok(())
}

#[test]
fn proc_reports_a_process_that_dies_before_its_ready_line() -> anyhow::Result<()> {
    require_root();
    let ns = Netns::new("proc")?;
    let mut proc = ns.spawn(&[
        "sh",
        "-c",
        "echo starting; echo 'no such thing' >&2; exit 3",
    ])?;
    let err = proc
        .wait_for_line(Duration::from_secs(10), |l| l.starts_with("ready"))
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("stdout closed") && msg.contains("no such thing"),
        "{msg}"
    );
    let done = proc.wait_timeout(Duration::from_secs(5))?;
    assert_eq!(done.status.code(), Some(3));
    assert_eq!(done.stdout, "starting\n");

    let mut proc = ns.spawn(&[
        "sh",
        "-c",
        "trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 0.05; done",
    ])?;
    proc.wait_for_line(Duration::from_secs(10), |l| l == "ready")?;
    let done = proc.terminate(Duration::from_secs(5))?;
    assert!(done.status.success(), "{done:?}");
    assert_eq!(done.stdout, "ready\nbye\n");
    Ok(())
}

/// Interface names in the calling thread's network namespace, sorted.
fn interface_names() -> Vec<String> {
    let mut names = Vec::new();
    // SAFETY: if_nameindex returns an array terminated by a zero entry (or NULL on
    // error), freed below with if_freenameindex.
    unsafe {
        let list = libc::if_nameindex();
        assert!(!list.is_null(), "if_nameindex failed");
        let mut entry = list;
        while (*entry).if_index != 0 {
            names.push(
                std::ffi::CStr::from_ptr((*entry).if_name)
                    .to_string_lossy()
                    .into_owned(),
            );
            entry = entry.add(1);
        }
        libc::if_freenameindex(list);
    }
    names.sort();
    names
}

#[test]
fn cleanup_stale_removes_namespaces_of_dead_runs_only() -> anyhow::Result<()> {
    require_root();
    // First, so that the sweep the process's first `Netns::new` does is over before the
    // stale namespace exists.
    let live = Netns::new("live")?;
    // A pid that certainly belonged to a process that is gone now: one we reaped.
    let mut child = std::process::Command::new("true").spawn()?;
    child.wait()?;
    let dead_pid = child.id();
    let stale = format!("vipd-t-stale-{dead_pid}-0");
    std::process::Command::new("ip")
        .args(["netns", "add", &stale])
        .status()?;
    // Like a vipd left behind by a crashed run; cleanup must kill it too.
    let leftover = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &stale,
            "sh",
            "-c",
            "sleep 300 >/dev/null 2>&1 </dev/null & echo $!",
        ])
        .output()?;
    let leftover_pid: i32 = String::from_utf8_lossy(&leftover.stdout).trim().parse()?;

    let deleted = vipd_tests::cleanup_stale()?;
    assert!(
        deleted.contains(&stale),
        "{stale} not cleaned up; deleted {deleted:?}"
    );
    assert!(!netns_exists(&stale));
    assert!(
        netns_exists(live.name()),
        "a live run's namespace was deleted"
    );
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
            !process_exists(leftover_pid)
        }),
        "process {leftover_pid} in the stale namespace survived"
    );
    Ok(())
}
