//! What vipd does around a state change: notify commands (`notify_master` / `_backup` /
//! `_fault`, and the generic `notify` with `INSTANCE NAME STATE PRIORITY` appended) and
//! state-change mail through a real SMTP server (aiosmtpd) — and that neither a failing
//! script nor an unreachable mail server delays the election.
//!
//! Routers are members of a bridged LAN with 192.0.2.(i+1)/24 on `eth0`, adverts every
//! 50 ms, XDP off. Notify commands are recorder scripts that append their arguments to a
//! file in the scratch directory. SMTP servers listen on 127.0.0.1 inside the router's
//! own namespace, so no mail traffic leaves it.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, ensure};

use vipd_tests::vipd::{
    InstanceConf, Router, Scratch, has_addr, notify_recorder, recorded, stop_all, wait_recorded,
};
use vipd_tests::{Lan, Netns, Proc, poll_until, require_root};

const VIP: &str = "192.0.2.100";
const VIP_CIDR: &str = "192.0.2.100/24";
const ELECTION: Duration = Duration::from_secs(5);
/// A single router's first election: Master_Down_Interval (3 × 50 ms + skew) plus
/// start-up; a second or more would mean something blocked it.
const QUICK_ELECTION: Duration = Duration::from_millis(1500);

fn lab(tag: &str, routers: usize) -> anyhow::Result<(Lan, Scratch)> {
    vipd_tests::vipd::router_lab(tag, routers, false)
}

/// A TOML argv array.
fn argv(words: &[&str]) -> String {
    let words: Vec<String> = words.iter().map(|w| format!("{w:?}")).collect();
    format!("[{}]", words.join(", "))
}

fn path_str(path: &Path) -> String {
    path.display().to_string()
}

/// Each specific notify command and the generic one run on the right transitions, in
/// order, with the right arguments: r2 (100) starts alone, r1 (200) preempts, r1's
/// weight-0 check fails (FAULT) and recovers, then both stop (generic notify: STOP).
#[test]
fn notify_commands_get_the_right_arguments() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = lab("ntfargs", 2)?;
    let healthy = scratch.path().join("healthy");
    std::fs::write(&healthy, "")?;
    let mut logs = Vec::new();
    let mut routers = Vec::new();
    for (i, priority) in [200u8, 100].into_iter().enumerate() {
        let name = format!("r{}", i + 1);
        let (specific, specific_log) = notify_recorder(&scratch, &format!("{name}-specific"))?;
        let (generic, generic_log) = notify_recorder(&scratch, &format!("{name}-generic"))?;
        let specific = path_str(&specific);
        let mut conf = InstanceConf::new("VI_1", 7, priority, VIP_CIDR)
            .set("notify_master", &argv(&[&specific, "master"]))
            .set("notify_backup", &argv(&[&specific, "backup"]))
            .set("notify_fault", &argv(&[&specific, "fault"]))
            .set("notify", &argv(&[&path_str(&generic)]));
        if i == 0 {
            conf = conf.set("track_script", "[\"up\"]");
        }
        let router = Router::new(lan.member(i), &scratch, &name, &[conf])?;
        if i == 0 {
            let path = router.config_path().to_owned();
            let mut text = std::fs::read_to_string(&path)?;
            // The timeout defaults to the interval and fall to 1: one `test` run slowed
            // past 100 ms by a busy host would be a FAULT the test did not cause, and an
            // extra line in the logs checked below. Timeouts are not what this test is
            // about, so give the runs plenty.
            text.push_str(&format!(
                "\n[script.up]\nscript = {}\ninterval = \"100ms\"\ntimeout = \"2s\"\n\
                 weight = 0\n",
                argv(&["/usr/bin/test", "-e", &path_str(&healthy)])
            ));
            std::fs::write(&path, text)?;
        }
        routers.push(router);
        logs.push((specific_log, generic_log));
    }
    routers[1].start()?;
    routers[1].wait_state("VI_1", "MASTER", ELECTION)?;
    routers[0].start()?;
    routers[0].wait_state("VI_1", "MASTER", ELECTION)?;
    routers[1].wait_state("VI_1", "BACKUP", ELECTION)?;

    std::fs::remove_file(&healthy)?;
    routers[0].wait_state("VI_1", "FAULT", ELECTION)?;
    routers[1].wait_state("VI_1", "MASTER", ELECTION)?;
    std::fs::write(&healthy, "")?;
    routers[0].wait_state("VI_1", "MASTER", ELECTION)?;
    routers[1].wait_state("VI_1", "BACKUP", ELECTION)?;

    let wait = Duration::from_secs(3);
    wait_recorded(
        &logs[0].0,
        &["backup", "master", "fault", "backup", "master"],
        wait,
    )?;
    wait_recorded(
        &logs[0].1,
        &[
            "INSTANCE VI_1 BACKUP 200",
            "INSTANCE VI_1 MASTER 200",
            "INSTANCE VI_1 FAULT 200",
            "INSTANCE VI_1 BACKUP 200",
            "INSTANCE VI_1 MASTER 200",
        ],
        wait,
    )?;
    wait_recorded(
        &logs[1].0,
        &["backup", "master", "backup", "master", "backup"],
        wait,
    )?;
    wait_recorded(
        &logs[1].1,
        &[
            "INSTANCE VI_1 BACKUP 100",
            "INSTANCE VI_1 MASTER 100",
            "INSTANCE VI_1 BACKUP 100",
            "INSTANCE VI_1 MASTER 100",
            "INSTANCE VI_1 BACKUP 100",
        ],
        wait,
    )?;
    let counters = &routers[0].instance("VI_1")?["counters"];
    ensure!(
        counters["notify_commands_run"] == 10 && counters["notify_command_failures"] == 0,
        "r1: {counters}"
    );

    // Stopping: the generic command hears STOP (as keepalived's does); the specific
    // ones have no stop counterpart here. The backup first, so it does not take over.
    routers.reverse();
    stop_all(&mut routers)?;
    for (i, priority) in [(0, 200), (1, 100)] {
        let generic = recorded(&logs[i].1);
        ensure!(
            generic.last().map(String::as_str) == Some(&*format!("INSTANCE VI_1 STOP {priority}")),
            "r{}'s generic notify after stopping: {generic:?}",
            i + 1
        );
        ensure!(
            recorded(&logs[i].0).len() == 5,
            "{:?} / {generic:?}",
            recorded(&logs[i].0)
        );
    }
    Ok(())
}

/// A failing notify script is counted and does not hold up the election: r1's
/// notify_backup exits 3 at once, its notify_master runs until the test lets it exit 1; r1 still
/// becomes master within Master_Down_Interval, keeps advertising (r2 stays backup)
/// while the script runs, and both failures end up in `notify_command_failures`.
#[test]
fn failing_notify_is_counted_and_does_not_delay() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = lab("ntffail", 2)?;
    // notify_master runs until the test opens the gate (at most 20 s), however slow the
    // machine: the check below must see it still running.
    let gate = scratch.path().join("gate");
    let wait_for_gate = format!(
        "for i in $(seq 400); do [ -e '{}' ] && exit 1; sleep 0.05; done; exit 1",
        gate.display()
    );
    let conf = InstanceConf::new("VI_1", 7, 200, VIP_CIDR)
        .set("notify_backup", &argv(&["/bin/sh", "-c", "exit 3"]))
        .set("notify_master", &argv(&["/bin/sh", "-c", &wait_for_gate]));
    let mut r1 = Router::new(lan.member(0), &scratch, "r1", &[conf])?;
    let mut r2 = Router::new(
        lan.member(1),
        &scratch,
        "r2",
        &[InstanceConf::new("VI_1", 7, 100, VIP_CIDR)],
    )?;
    r1.start()?;
    r1.wait_state("VI_1", "MASTER", QUICK_ELECTION)?;
    ensure!(has_addr(lan.member(0), "eth0", VIP)?);
    r1.wait_instance("1 notify failure", "VI_1", ELECTION, |i| {
        i["counters"]["notify_command_failures"] == 1
    })?;
    // notify_master is still sleeping; r1 must be advertising all the same.
    r2.start()?;
    r2.wait_state("VI_1", "BACKUP", ELECTION)?;
    r2.assert_state_holds("VI_1", "BACKUP", Duration::from_millis(500))?;
    ensure!(
        r1.counter("VI_1", "notify_command_failures")? == 1,
        "notify_master finished before r2's check: the test proved nothing"
    );
    std::fs::write(&gate, "")?;
    let status = r1.wait_instance("2 notify failures", "VI_1", ELECTION, |i| {
        i["counters"]["notify_command_failures"] == 2
    })?;
    ensure!(status["counters"]["notify_commands_run"] == 2, "{status}");
    ensure!(status["state"] == "MASTER");
    stop_all(&mut [r1, r2])
}

/// `[global]` mail keys pointing at `127.0.0.1:port`, as the seed's global_defs (no
/// `smtp_alert`: like keepalived, vipd then sends no mail).
fn mail_globals(port: &str, timeout: &str) -> Vec<(&'static str, String)> {
    vec![
        ("notification_email", "[\"root@localhost\"]".to_owned()),
        (
            "notification_email_from",
            "\"kaadmin@localhost\"".to_owned(),
        ),
        ("smtp_server", "\"127.0.0.1\"".to_owned()),
        ("smtp_port", port.to_owned()),
        ("smtp_connect_timeout", format!("{timeout:?}")),
    ]
}

/// Polls until something listens on 127.0.0.1:`port` inside `ns`.
fn wait_listening(ns: &Netns, port: u16) -> anyhow::Result<()> {
    let filter = format!("sport = :{port}");
    poll_until(
        &format!("a listener on 127.0.0.1:{port} in {}", ns.name()),
        Duration::from_secs(10),
        Duration::from_millis(50),
        || match ns.exec_ok(&["ss", "-Hltn", &filter]) {
            Ok(out) if out.contains("127.0.0.1") => Ok(()),
            Ok(out) => Err(out),
            Err(e) => Err(format!("{e:#}")),
        },
    )
}

/// The mails aiosmtpd's Debugging handler printed, one text block each.
/// Router `LVS_DEVEL` with the mail globals for `port` and two instances, VI_1 and VI_2,
/// each with `smtp_alert` as given.
fn two_instance_router<'a>(
    ns: &'a Netns,
    scratch: &Scratch,
    port: u16,
    vi_1_alert: bool,
    vi_2_alert: bool,
) -> anyhow::Result<Router<'a>> {
    let globals = mail_globals(&port.to_string(), "5s");
    let globals: Vec<(&str, &str)> = globals.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let alert = |on: bool| if on { "true" } else { "false" };
    Router::with_global(
        ns,
        scratch,
        "LVS_DEVEL",
        &globals,
        &[
            InstanceConf::new("VI_1", 7, 100, VIP_CIDR).set("smtp_alert", alert(vi_1_alert)),
            InstanceConf::new("VI_2", 8, 100, "192.0.2.101/24")
                .set("smtp_alert", alert(vi_2_alert)),
        ],
    )
}

/// A real SMTP server (aiosmtpd, printing what it receives) on `127.0.0.1:port` in `ns`,
/// once it listens.
fn smtp_server(ns: &Netns, port: u16) -> anyhow::Result<Proc> {
    let listen = format!("127.0.0.1:{port}");
    let server = ns.spawn(&[
        "/usr/bin/python3",
        "-u",
        "-m",
        "aiosmtpd",
        "-d",
        "-n",
        "-l",
        &listen,
        "-c",
        "aiosmtpd.handlers.Debugging",
    ])?;
    wait_listening(ns, port).context("is python3-aiosmtpd installed? (cargo xtask setup)")?;
    Ok(server)
}

fn printed_mails(server: &Proc) -> Vec<String> {
    server
        .stdout()
        .split("---------- MESSAGE FOLLOWS ----------")
        .skip(1)
        .map(|m| {
            m.split("------------ END MESSAGE ------------")
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// With `smtp_alert` on (globally), a real SMTP server (aiosmtpd) in the router's
/// namespace receives one mail per state change with the configured sender and recipient and keepalived's subject,
/// `[router_id] VRRP Instance VI_1 - Entering MASTER state`.
#[test]
fn state_change_mail_reaches_the_smtp_server() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = lab("mailok", 1)?;
    let ns = lan.member(0);
    let server = smtp_server(ns, 2525)?;
    let mut globals = mail_globals("2525", "5s");
    globals.push(("smtp_alert", "true".to_owned()));
    let globals: Vec<(&str, &str)> = globals.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut r1 = Router::with_global(
        ns,
        &scratch,
        "LVS_DEVEL",
        &globals,
        &[InstanceConf::new("VI_1", 7, 100, VIP_CIDR)],
    )?;
    r1.start()?;
    r1.wait_state("VI_1", "MASTER", QUICK_ELECTION)?;
    let subject = "Subject: [LVS_DEVEL] VRRP Instance VI_1 - Entering MASTER state";
    server.wait_for_line(ELECTION, |l| l.trim() == subject)?;
    // aiosmtpd prints a mail over several writes: wait until the MASTER mail is complete.
    vipd_tests::poll_until(
        "the whole MASTER mail",
        ELECTION,
        Duration::from_millis(10),
        || {
            let out = server.stdout();
            match out.find(subject) {
                Some(at) if out[at..].contains("------------ END MESSAGE ------------") => Ok(()),
                _ => Err("not yet"),
            }
        },
    )?;
    let mails = printed_mails(&server);
    let mail = mails
        .iter()
        .find(|m| m.contains(subject))
        .with_context(|| format!("no complete MASTER mail in {mails:?}"))?;
    for header in ["From: kaadmin@localhost", "To: root@localhost"] {
        ensure!(
            mail.lines().any(|l| l.trim() == header),
            "{header:?} missing in\n{mail}"
        );
    }
    ensure!(
        mail.contains(VIP),
        "the body does not name the VIP:\n{mail}"
    );
    // The BACKUP state it started in was mailed too, first.
    ensure!(
        mails[0].contains("Subject: [LVS_DEVEL] VRRP Instance VI_1 - Entering BACKUP state"),
        "{mails:?}"
    );
    r1.wait_instance("2 mails sent", "VI_1", ELECTION, |i| {
        i["counters"]["mails_sent"] == 2 && i["counters"]["mail_failures"] == 0
    })?;
    stop_all(&mut [r1])
}

/// keepalived's default: no `smtp_alert`, no mail, however complete the mail settings.
/// Two instances share the SMTP server; only VI_2 sets `smtp_alert`. Once VI_2's MASTER
/// mail has arrived (the server works, and VI_1 went MASTER before VI_2's mail was
/// sent), VI_1 has sent nothing.
#[test]
fn no_mail_without_smtp_alert() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = lab("mailoff", 1)?;
    let ns = lan.member(0);
    let server = smtp_server(ns, 2527)?;
    let mut r1 = two_instance_router(ns, &scratch, 2527, false, true)?;
    r1.start()?;
    r1.wait_state("VI_1", "MASTER", QUICK_ELECTION)?;
    r1.wait_state("VI_2", "MASTER", QUICK_ELECTION)?;
    let subject = "Subject: [LVS_DEVEL] VRRP Instance VI_2 - Entering MASTER state";
    server.wait_for_line(ELECTION, |l| l.trim() == subject)?;
    r1.wait_instance("VI_2's 2 mails sent", "VI_2", ELECTION, |i| {
        i["counters"]["mails_sent"] == 2
    })?;
    let vi_1 = r1.instance("VI_1")?;
    ensure!(
        vi_1["counters"]["mails_sent"] == 0 && vi_1["counters"]["mail_failures"] == 0,
        "VI_1 has no smtp_alert but mailed: {vi_1}"
    );
    let stdout = server.stdout();
    ensure!(
        !stdout.contains("VRRP Instance VI_1"),
        "the server got a mail for VI_1:\n{stdout}"
    );
    stop_all(&mut [r1])
}

/// A sync group with `smtp_alert` mails its own transitions (keepalived's `VRRP Group`
/// subject) while its members, without `smtp_alert`, mail nothing.
#[test]
fn sync_group_with_smtp_alert_mails_its_transitions() -> anyhow::Result<()> {
    require_root();
    let (lan, scratch) = lab("mailgrp", 1)?;
    let ns = lan.member(0);
    let server = smtp_server(ns, 2528)?;
    let mut r1 = two_instance_router(ns, &scratch, 2528, false, false)?;
    let mut text = std::fs::read_to_string(r1.config_path())?;
    text.push_str("\n[sync_group.VG_1]\ngroup = [\"VI_1\", \"VI_2\"]\nsmtp_alert = true\n");
    std::fs::write(r1.config_path(), text)?;
    r1.start()?;
    r1.wait_state("VI_1", "MASTER", QUICK_ELECTION)?;
    r1.wait_state("VI_2", "MASTER", QUICK_ELECTION)?;
    let subject = "Subject: [LVS_DEVEL] VRRP Group VG_1 - Entering MASTER state";
    server.wait_for_line(ELECTION, |l| l.trim() == subject)?;
    for name in ["VI_1", "VI_2"] {
        let instance = r1.instance(name)?;
        ensure!(
            instance["counters"]["mails_sent"] == 0,
            "{name} has no smtp_alert but mailed: {instance}"
        );
    }
    ensure!(
        !server.stdout().contains("VRRP Instance"),
        "an instance mail arrived:\n{}",
        server.stdout()
    );
    stop_all(&mut [r1])
}

/// An SMTP server that accepts the connection and never speaks (a listening socket
/// nobody accepts on): the election is not delayed, the master keeps advertising while
/// the mails hang, and each mail ends up in `mail_failures` after
/// `smtp_connect_timeout`.
#[test]
fn unreachable_smtp_server_does_not_delay_the_election() -> anyhow::Result<()> {
    // Both mails fail 5 s (the smtp_connect_timeout below) after they were sent, at the
    // latest 10 s (the bound on the whole exchange); plus slack.
    const MAIL_FAILURES: Duration = Duration::from_secs(15);
    require_root();
    let (lan, scratch) = lab("mailbad", 2)?;
    let ns = lan.member(0);
    let silent = ns.spawn(&[
        "/usr/bin/python3",
        "-c",
        "import socket, time\n\
         s = socket.socket()\n\
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('127.0.0.1', 2526))\n\
         s.listen(16)\n\
         print('ready', flush=True)\n\
         time.sleep(120)\n",
    ])?;
    silent.wait_for_line(Duration::from_secs(10), |l| l == "ready")?;
    // The mails must still be hanging when r1 is seen MASTER (else the check below
    // proves nothing), and the BACKUP mail has been hanging since start-up: give them a
    // timeout no slow start or status poll on a busy host comes near. Each mail fails
    // after it (at the latest after twice it, the bound on the whole exchange); the
    // test waits for both failures below.
    let mut globals = mail_globals("2526", "5s");
    // The STOP mail to the silent server would take its 10 s limit at shutdown; this
    // test is about the election, so shutdown waits for notifications only briefly.
    globals.push(("notify_shutdown_timeout", "\"300ms\"".to_owned()));
    let globals: Vec<(&str, &str)> = globals.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut r1 = Router::with_global(
        ns,
        &scratch,
        "r1",
        &globals,
        &[InstanceConf::new("VI_1", 7, 200, VIP_CIDR).set("smtp_alert", "true")],
    )?;
    let mut r2 = Router::new(
        lan.member(1),
        &scratch,
        "r2",
        &[InstanceConf::new("VI_1", 7, 100, VIP_CIDR)],
    )?;
    r1.start()?;
    r1.wait_state("VI_1", "MASTER", QUICK_ELECTION)?;
    ensure!(
        r1.counter("VI_1", "mail_failures")? == 0,
        "mails failed too fast to prove anything"
    );
    r2.start()?;
    r2.wait_state("VI_1", "BACKUP", ELECTION)?;
    r2.assert_state_holds("VI_1", "BACKUP", Duration::from_millis(500))?;
    let status = r1.wait_instance("2 mail failures", "VI_1", MAIL_FAILURES, |i| {
        i["counters"]["mail_failures"] == 2
    })?;
    ensure!(status["counters"]["mails_sent"] == 0, "{status}");
    ensure!(status["state"] == "MASTER", "{status}");
    stop_all(&mut [r1, r2])
}
