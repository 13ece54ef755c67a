//! Native journald logging: under systemd (`JOURNAL_STREAM` naming vipd's stderr) log
//! events go to the journal socket as native entries with a priority and fields; with a
//! `JOURNAL_STREAM` that names another stream (stderr redirected by a wrapper) they stay
//! plain text on stderr.
//!
//! No journald runs here, so the test plays its receiving end: vipd runs in its own
//! mount and network namespaces (`unshare`), where a tmpfs over /run carries the test's
//! datagram socket at journald's fixed path, /run/systemd/journal/socket. The network
//! namespace holds only a veth pair (`eth0`), so nothing reaches the host's interfaces.

use std::collections::BTreeMap;
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vipd_tests::require_root;
use vipd_tests::vipd::Scratch;

/// A config whose v2 password is too long (a warning at start) for an instance that
/// becomes master on its own.
const CONFIG: &str = r#"
[instance.VI_J]
interface = "eth0"
virtual_router_id = 42
priority = 150
advert_int = "100ms"
virtual_ipaddress = ["192.0.2.100/24"]
xdp = "off"
garp_master_delay = "0s"
"#;

/// Starts vipd in fresh namespaces with the test socket as the journal, and stderr to
/// `stderr_file`; `journal_stream` is `JOURNAL_STREAM` (`None`: that of `stderr_file`).
fn start(scratch: &Scratch, journal_stream: Option<&str>) -> anyhow::Result<Child> {
    let config = scratch.write("vipd.toml", CONFIG)?;
    let dir = scratch.path();
    let script = format!(
        r#"set -e
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd/journal /run/vipd
touch /run/systemd/journal/socket
mount --bind {dir}/journal.sock /run/systemd/journal/socket
ip link add eth0 type veth peer name eth1
ip link set eth1 up
ip link set eth0 up
ip addr add 192.0.2.1/24 dev eth0
exec 2>{dir}/stderr
export JOURNAL_STREAM="${{STREAM:-$(stat -c %d:%i {dir}/stderr)}}"
exec {vipd} run -c {config} --bpffs-dir {bpffs} --run-dir /run/vipd
"#,
        dir = dir.display(),
        vipd = vipd_tests::vipd_bin().display(),
        config = config.display(),
        bpffs = scratch.bpffs_dir().join("vipd").display(),
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--net", "--mount", "--propagation", "private", "sh", "-c"])
        .arg(script)
        .env_remove("JOURNAL_STREAM")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    if let Some(stream) = journal_stream {
        cmd.env("STREAM", stream);
    }
    Ok(cmd.spawn()?)
}

/// journald's native protocol: `KEY=VALUE` lines (a value with a newline is sent as
/// `KEY\n` + 64-bit little-endian length + bytes + `\n`).
fn parse_entry(datagram: &[u8]) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    let mut rest = datagram;
    while !rest.is_empty() {
        let line_end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let line = &rest[..line_end];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            fields.insert(
                String::from_utf8_lossy(&line[..eq]).into_owned(),
                String::from_utf8_lossy(&line[eq + 1..]).into_owned(),
            );
            rest = rest.get(line_end + 1..).unwrap_or(&[]);
        } else {
            let key = String::from_utf8_lossy(line).into_owned();
            let after = rest.get(line_end + 1..).unwrap_or(&[]);
            let Some(len) = after.get(..8) else { break };
            let len = u64::from_le_bytes(len.try_into().unwrap_or([0; 8])) as usize;
            let value = after.get(8..8 + len).unwrap_or(&[]);
            fields.insert(key, String::from_utf8_lossy(value).into_owned());
            rest = after.get(8 + len + 1..).unwrap_or(&[]);
        }
    }
    fields
}

/// Entries received within `within`, until `done` says enough.
fn collect(
    socket: &UnixDatagram,
    within: Duration,
    done: impl Fn(&[BTreeMap<String, String>]) -> bool,
) -> Vec<BTreeMap<String, String>> {
    let deadline = Instant::now() + within;
    let mut entries = Vec::new();
    let mut buf = vec![0u8; 65536];
    while !done(&entries) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let _ = socket.set_read_timeout(Some(left.min(Duration::from_millis(200))));
        // An empty datagram is the logger probing the socket when it starts.
        if let Ok(n) = socket.recv(&mut buf)
            && n > 0
        {
            entries.push(parse_entry(&buf[..n]));
        }
    }
    entries
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn under_systemd_events_go_to_journald_with_priority_and_fields() -> anyhow::Result<()> {
    require_root();
    let scratch = Scratch::new("journald")?;
    let socket = UnixDatagram::bind(scratch.path().join("journal.sock"))?;
    let child = start(&scratch, None)?;
    // The state change's fields are journal fields of their own (VIPD_TO=MASTER), which
    // `journalctl VIPD_TO=MASTER` can match.
    let is_master = |e: &BTreeMap<String, String>| {
        e.get("VIPD_TO").is_some_and(|to| to == "MASTER")
            && e.get("MESSAGE").is_some_and(|m| m.contains("state change"))
    };
    let entries = collect(&socket, Duration::from_secs(15), |entries| {
        entries.iter().any(is_master)
    });
    stop(child);
    let stderr = std::fs::read_to_string(scratch.path().join("stderr")).unwrap_or_default();
    assert!(
        entries.iter().any(is_master),
        "no journal entry about becoming master; entries {entries:#?}; stderr:\n{stderr}"
    );
    for entry in &entries {
        assert_eq!(
            entry.get("SYSLOG_IDENTIFIER").map(String::as_str),
            Some("vipd"),
            "{entry:?}"
        );
        let priority: u8 = entry
            .get("PRIORITY")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no PRIORITY in {entry:?}"));
        assert!(priority <= 7, "{entry:?}");
    }
    // The state change is an info-level event (syslog priority 6) and carries the
    // instance as a field; its own `priority` field did not replace the entry's.
    let master = entries
        .iter()
        .find(|e| is_master(e))
        .expect("checked above");
    assert_eq!(
        master.get("PRIORITY").map(String::as_str),
        Some("6"),
        "{master:?}"
    );
    assert_eq!(
        master.get("VIPD_INSTANCE").map(String::as_str),
        Some("VI_J"),
        "{master:?}"
    );
    assert_eq!(
        master.get("VIPD_PRIORITY").map(String::as_str),
        Some("150"),
        "{master:?}"
    );
    // Native entries replace the text lines: nothing was logged twice on stderr.
    assert!(
        !stderr.contains("state change"),
        "stderr still has text log lines:\n{stderr}"
    );
    Ok(())
}

#[test]
fn a_journal_stream_that_is_not_our_stderr_keeps_plain_text() -> anyhow::Result<()> {
    require_root();
    let scratch = Scratch::new("journald-redirected")?;
    let socket = UnixDatagram::bind(scratch.path().join("journal.sock"))?;
    // A JOURNAL_STREAM inherited from a unit whose child redirected stderr elsewhere.
    let child = start(&scratch, Some("1:1"))?;
    let stderr_path = scratch.path().join("stderr");
    let logged = vipd_tests::poll_until(
        "a text log line about becoming MASTER on stderr",
        Duration::from_secs(15),
        Duration::from_millis(100),
        || {
            let text = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            if text.contains("to=MASTER") {
                Ok(text)
            } else {
                Err(text)
            }
        },
    );
    let entries = collect(&socket, Duration::from_millis(300), |_| false);
    stop(child);
    let text = logged?;
    assert!(
        entries.is_empty(),
        "journal entries despite a foreign stream: {entries:?}"
    );
    assert!(!text.contains('\u{1b}'), "colour codes in a file:\n{text}");
    Ok(())
}
