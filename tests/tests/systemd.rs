//! systemd integration: `Type=notify` readiness over a real `NOTIFY_SOCKET`, and the
//! shipped unit's claims.
//!
//! vipd must say READY=1 only once its instances are initialised: sockets open, stale
//! VIPs removed, the control socket answering, the election running. It says
//! RELOADING=1 then READY=1 around a SIGHUP and STOPPING=1 when it shuts down.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use vipd_tests::vipd::{InstanceConf, Router, has_addr, router_lab};
use vipd_tests::{add_addr, require_root};

const VIP: &str = "192.0.2.100";

/// The next datagram on `socket` within `timeout`, as text.
fn next_message(socket: &UnixDatagram, timeout: Duration) -> anyhow::Result<String> {
    socket.set_read_timeout(Some(timeout))?;
    let mut buf = [0u8; 4096];
    let n = socket
        .recv(&mut buf)
        .map_err(|e| anyhow::anyhow!("no message from vipd within {timeout:?}: {e}"))?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn lines(message: &str) -> Vec<&str> {
    message.lines().collect()
}

#[test]
fn ready_only_once_initialised_then_reloading_and_stopping() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = router_lab("sdn", 1, false)?;
    let ns = lan.member(0);
    // A crashed run's VIP: READY=1 must come after it is gone.
    add_addr(ns, "eth0", &format!("{VIP}/24"))?;
    let notify_path = scratch.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path)?;
    let mut router = Router::new(
        ns,
        &scratch,
        "r1",
        // 1 s adverts: BACKUP for 3.6 s, so a VIP on eth0 at READY=1 can only be the
        // stale one.
        &[InstanceConf::new("VI_1", 7, 100, &format!("{VIP}/24")).set("advert_int", "\"1s\"")],
    )?
    .env("NOTIFY_SOCKET", &notify_path.to_string_lossy());

    let started = Instant::now();
    router.start()?;
    let ready = next_message(&notify, Duration::from_secs(10))?;
    assert!(
        lines(&ready).contains(&"READY=1"),
        "first message: {ready:?}"
    );
    assert!(
        lines(&ready).contains(&"STATUS=1 instances running"),
        "first message: {ready:?}"
    );
    // Initialised by now: stale VIP gone, the instance past Initialize.
    assert!(
        !has_addr(ns, "eth0", VIP)?,
        "READY=1 was sent with the stale VIP still on eth0\n{}",
        router.logs()
    );
    let state = router.state("VI_1")?;
    assert_eq!(state, "BACKUP", "READY=1 with VI_1 in {state}");
    eprintln!("READY=1 after {:?}", started.elapsed());

    router.signal(libc::SIGHUP)?;
    let reloading = next_message(&notify, Duration::from_secs(5))?;
    assert_eq!(lines(&reloading), ["RELOADING=1"]);
    let ready = next_message(&notify, Duration::from_secs(5))?;
    assert!(
        lines(&ready).contains(&"READY=1"),
        "after reload: {ready:?}"
    );

    router.signal(libc::SIGTERM)?;
    let stopping = next_message(&notify, Duration::from_secs(5))?;
    assert_eq!(lines(&stopping), ["STOPPING=1"]);
    let done = router.wait_exit(Duration::from_secs(3))?;
    assert!(done.status.success(), "vipd exited {}", done.status);
    Ok(())
}

/// The unit in contrib/ is what docs/operations.md says: Type=notify, restart on
/// failure, a config check before start, and only the capabilities vipd uses.
#[test]
fn shipped_unit_is_notify_with_the_documented_capabilities() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let unit = std::fs::read_to_string(root.join("contrib/vipd.service"))?;
    let ops = std::fs::read_to_string(root.join("docs/operations.md"))?;
    let value = |key: &str| -> Vec<String> {
        unit.lines()
            .filter_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(value("Type"), ["notify"]);
    assert_eq!(value("Restart"), ["on-failure"]);
    assert!(
        value("ExecStartPre")
            .iter()
            .any(|v| v.contains("vipd check -c"))
    );
    assert!(value("ExecReload").iter().any(|v| v.contains("-HUP")));
    let ambient = value("AmbientCapabilities").join(" ");
    for cap in ambient.split_whitespace() {
        assert!(
            ops.contains(&format!("`{cap}`")),
            "{cap} is granted by the unit but not explained in docs/operations.md"
        );
    }
    for needed in ["CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_BPF", "CAP_SYS_NICE"] {
        assert!(
            ambient.contains(needed),
            "the unit lacks {needed}: {ambient}"
        );
    }
    Ok(())
}
