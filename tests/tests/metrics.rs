//! Prometheus metrics over real HTTP: `vipd run --metrics-listen ADDR` answers
//! `GET /metrics` with values that follow the daemon's state.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use vipd_tests::vipd::{InstanceConf, Router, Scratch, config_toml, stop_all};
use vipd_tests::{Lan, Netns, Proc, add_addr, in_netns, poll_until, require_root, vipd_bin};

const VIP_CIDR: &str = "192.0.2.100/24";
const LISTEN: &str = "127.0.0.1:9641";

/// One HTTP GET from inside `ns`; returns (status line, body).
fn get(ns: &Netns, path: &str) -> anyhow::Result<(String, String)> {
    let path = path.to_owned();
    in_netns(ns, move || -> anyhow::Result<(String, String)> {
        let mut stream = TcpStream::connect(LISTEN)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(stream, "GET {path} HTTP/1.1\r\nHost: vipd\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let (head, body) = response
            .split_once("\r\n\r\n")
            .ok_or_else(|| anyhow::anyhow!("no header/body split in {response:?}"))?;
        let status = head.lines().next().unwrap_or_default().to_owned();
        Ok((status, body.to_owned()))
    })?
}

/// The value of the sample whose name and labels start with `prefix`.
fn sample(body: &str, prefix: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// r1 (VI_1, priority 200) in `ns`, started by hand to pass `--metrics-listen`; and its
/// control socket.
fn spawn_with_metrics(ns: &Netns, scratch: &Scratch) -> anyhow::Result<(Proc, PathBuf)> {
    let socket = scratch.path().join("r1.sock");
    let config = scratch.write(
        "r1.toml",
        &config_toml(
            "r1",
            &socket,
            &[InstanceConf::new("VI_1", 7, 200, VIP_CIDR)],
        ),
    )?;
    let bin = vipd_bin().to_string_lossy().into_owned();
    let config = config.to_string_lossy().into_owned();
    // Its own lock directory: other tests' routers also call their interface eth0, and
    // the default /run/vipd is shared by every namespace.
    let run_dir = scratch.path().join("r1.run").to_string_lossy().into_owned();
    let r1 = ns.spawn(&[
        &bin,
        "run",
        "-c",
        &config,
        "--metrics-listen",
        LISTEN,
        "--run-dir",
        &run_dir,
    ])?;
    Ok((r1, socket))
}

#[test]
fn metrics_follow_the_state_over_http() -> anyhow::Result<()> {
    require_root();
    let lan = Lan::new("metrics", 2)?;
    add_addr(lan.member(0), "eth0", "192.0.2.1/24")?;
    add_addr(lan.member(1), "eth0", "192.0.2.2/24")?;
    let scratch = Scratch::new("metrics")?;

    let (mut r1, _) = spawn_with_metrics(lan.member(0), &scratch)?;
    let master = poll_until(
        "r1 MASTER in the metrics",
        Duration::from_secs(5),
        Duration::from_millis(20),
        || match get(lan.member(0), "/metrics") {
            Ok((status, body))
                if status.contains("200")
                    && sample(
                        &body,
                        "vipd_instance_state{instance=\"VI_1\",state=\"MASTER\"}",
                    ) == Some(1.0) =>
            {
                Ok(body)
            }
            other => Err(format!("{other:?}")),
        },
    )?;
    assert_eq!(
        sample(&master, "vipd_priority{instance=\"VI_1\""),
        Some(200.0)
    );
    let sent = sample(&master, "vipd_adverts_sent_total{instance=\"VI_1\"").unwrap_or(0.0);
    assert!(sent >= 1.0, "no adverts counted:\n{master}");
    assert!(
        master.contains("# TYPE vipd_adverts_dropped counter")
            || master.contains("vipd_adverts_dropped")
    );

    // A higher-priority router arrives: r1 becomes BACKUP, and the metrics say why.
    let mut r2 = Router::new(
        lan.member(1),
        &scratch,
        "r2",
        &[InstanceConf::new("VI_1", 7, 250, VIP_CIDR)],
    )?;
    r2.start()?;
    let backup = poll_until(
        "r1 BACKUP in the metrics",
        Duration::from_secs(5),
        Duration::from_millis(20),
        || match get(lan.member(0), "/metrics") {
            Ok((_, body))
                if sample(
                    &body,
                    "vipd_instance_state{instance=\"VI_1\",state=\"BACKUP\"}",
                ) == Some(1.0) =>
            {
                Ok(body)
            }
            other => Err(format!("{other:?}")),
        },
    )?;
    assert_eq!(
        sample(
            &backup,
            "vipd_instance_state{instance=\"VI_1\",state=\"MASTER\"}"
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &backup,
            "vipd_transitions_by_reason_total{instance=\"VI_1\",reason=\"HigherPriorityAdvert\"}"
        ),
        Some(1.0)
    );
    let received = sample(&backup, "vipd_adverts_received_total{instance=\"VI_1\"").unwrap_or(0.0);
    assert!(received >= 1.0);

    // Anything but /metrics is a 404, not a crash.
    let (status, _) = get(lan.member(0), "/")?;
    assert!(status.contains("404"), "{status}");

    let done = r1.terminate(Duration::from_secs(3))?;
    assert!(done.status.success(), "{}", done.stderr);
    stop_all(std::slice::from_mut(&mut r2))
}

/// A master whose process is frozen (SIGSTOP: what a starved CPU looks like from inside)
/// sends its next advert late, and says so: `adverts_late` counts it and
/// `vipd_advert_late_max_seconds` shows how late.
#[test]
fn a_frozen_master_reports_its_late_adverts() -> anyhow::Result<()> {
    require_root();
    let lan = Lan::new("late", 1)?;
    add_addr(lan.member(0), "eth0", "192.0.2.1/24")?;
    let scratch = Scratch::new("late")?;
    let mut r1 = Router::new(
        lan.member(0),
        &scratch,
        "r1",
        &[InstanceConf::new("VI_1", 7, 200, VIP_CIDR).set("advert_int", "\"10ms\"")],
    )?
    .args(&["--metrics-listen", LISTEN]);
    r1.start()?;
    r1.wait_state("VI_1", "MASTER", Duration::from_secs(5))?;
    let late_before = r1.counter("VI_1", "adverts_late")?;

    r1.signal(libc::SIGSTOP)?;
    std::thread::sleep(Duration::from_millis(150));
    r1.signal(libc::SIGCONT)?;

    let late = poll_until(
        "a late advert counted",
        Duration::from_secs(5),
        Duration::from_millis(20),
        || match r1.counter("VI_1", "adverts_late") {
            Ok(n) if n > late_before => Ok(n),
            other => Err(format!("{other:?}")),
        },
    )?;
    assert!(late > late_before);
    let max_us = r1.counter("VI_1", "advert_late_max_us")?;
    assert!(
        max_us >= 100_000,
        "frozen 150 ms, latest advert {max_us} µs late"
    );
    let body = poll_until(
        "metrics over HTTP",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || match get(lan.member(0), "/metrics") {
            Ok((status, body)) if status.contains("200") => Ok(body),
            other => Err(format!("{other:?}")),
        },
    )?;
    let gauge = sample(&body, "vipd_advert_late_max_seconds{").unwrap_or(0.0);
    assert!(
        gauge >= 0.1,
        "vipd_advert_late_max_seconds = {gauge}\n{body}"
    );
    stop_all(&mut [r1])
}

/// The HTTP status API on the metrics listener: `GET /status` is the document
/// `vipd status --json` prints, `GET /healthz` says the daemon loop answers, and any
/// other path (or method) is a 404.
#[test]
fn status_api_serves_what_vipd_status_json_prints() -> anyhow::Result<()> {
    require_root();
    let lan = Lan::new("statusapi", 1)?;
    add_addr(lan.member(0), "eth0", "192.0.2.1/24")?;
    let scratch = Scratch::new("statusapi")?;
    let (mut r1, socket) = spawn_with_metrics(lan.member(0), &scratch)?;
    let bin = vipd_bin().to_string_lossy().into_owned();
    let over_http = poll_until(
        "VI_1 MASTER in GET /status",
        Duration::from_secs(5),
        Duration::from_millis(20),
        || match get(lan.member(0), "/status") {
            Ok((status, body)) if status.contains("200") => {
                match serde_json::from_str::<serde_json::Value>(&body) {
                    Ok(json) if json["instances"][0]["state"] == "MASTER" => Ok(json),
                    other => Err(format!("{other:?}")),
                }
            }
            other => Err(format!("{other:?}")),
        },
    );
    let over_http = match over_http {
        Ok(json) => json,
        Err(e) => {
            let done = r1.terminate(Duration::from_secs(3))?;
            anyhow::bail!("{e:#}; vipd said:\n{}", done.stderr);
        }
    };
    let socket = socket.to_string_lossy().into_owned();
    let cli: serde_json::Value = serde_json::from_str(
        &lan.member(0)
            .exec_ok(&[&bin, "status", "--json", "--socket", &socket])?,
    )?;
    // The same document, field for field, but for what moves with the clock.
    let without_clock = |mut json: serde_json::Value| {
        json["uptime_seconds"] = serde_json::Value::Null;
        // Timing maxima move with every status request: the request itself is a turn
        // of the BFD thread (CI once saw bfd_thread_turn_max_us 85 over HTTP, 103 from
        // the CLI). The names stay compared; the event counters keep their values.
        for (name, value) in json["counters"].as_object_mut().into_iter().flatten() {
            if name.ends_with("_max_us") {
                *value = serde_json::Value::Null;
            }
        }
        for instance in json["instances"].as_array_mut().into_iter().flatten() {
            instance["last_transition"]["seconds_ago"] = serde_json::Value::Null;
            // Counters move with every advert sent between the two requests.
            instance["counters"] = serde_json::Value::Null;
        }
        json
    };
    assert_eq!(without_clock(over_http.clone()), without_clock(cli));
    assert_eq!(over_http["instances"][0]["name"], "VI_1");
    assert!(
        over_http["pid"].as_u64().is_some_and(|pid| pid > 0),
        "{over_http}"
    );

    // `vipd status --watch` into a pipe: plain frames appended, each a fresh table.
    let watched = lan.member(0).exec(&[
        "timeout",
        "1.2",
        &bin,
        "status",
        "--watch",
        "--interval",
        "200ms",
        "--socket",
        &socket,
    ])?;
    let watched = String::from_utf8_lossy(&watched.stdout);
    let frames = watched.matches("Every 200ms: vipd status").count();
    assert!(frames >= 3, "{frames} frames in 1.2 s:\n{watched}");
    let master_rows = watched
        .lines()
        .filter(|l| l.starts_with("VI_1") && l.split_whitespace().nth(3) == Some("MASTER"))
        .count();
    assert_eq!(master_rows, frames, "{watched}");
    assert!(
        !watched.contains('\u{1b}'),
        "escape codes in a pipe: {watched:?}"
    );

    let (status, body) = get(lan.member(0), "/healthz")?;
    assert!(status.contains("200"), "{status}");
    assert_eq!(body, "ok\n");
    for path in ["/", "/status/x", "/healthzz"] {
        let (status, _) = get(lan.member(0), path)?;
        assert!(status.contains("404"), "{path}: {status}");
    }

    let done = r1.terminate(Duration::from_secs(3))?;
    assert!(done.status.success(), "{}", done.stderr);
    Ok(())
}
