//! The routers a bench runs: vipd or keepalived 2.2.7 in a namespace, behind one
//! interface ([`Node`]) so every scenario treats both the same way.
//!
//! - vipd runs the release binary with its own bpffs and run directories (routers in
//!   namespaces share the host's bpffs); its state comes from the control socket, asked
//!   directly over the Unix socket (cheap enough to poll every millisecond).
//! - keepalived runs in the foreground (`-n -l`) with its own pid files; its state comes
//!   from its log lines (`(VI_1) Entering MASTER STATE`) on stderr, which is what an
//!   operator sees too.
//! - An instance can carry notify commands ([`Inst::notify`]), written the way the seed
//!   configuration does (`notify_master` / `notify_backup` / `notify_fault` with the
//!   state as argument) plus the generic `notify`, all calling one script, so the daemon
//!   spawns a process on every transition as it does for operators.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::Value;
use vipd_tests::netns::Netns;
use vipd_tests::proc::Proc;
use vipd_tests::topo::{Lan, link_down, link_up, mac_of};
use vipd_tests::vipd::{InstanceConf, Scratch, config_toml, ensure_bpffs, host_view};

/// Which implementation a node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// vipd; `xdp` = `"auto"` (generic on veth) or `"off"`; `bfd`: instances with an
    /// [`Inst::bfd_peer`] track a BFD session to it ([`bfd_interval`] × 3, `peer`).
    Vipd { xdp: bool, bfd: bool },
    /// keepalived 2.2.7, VRRPv3.
    Keepalived,
}

impl Kind {
    /// Short name for tables and JSON.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Vipd { bfd: true, .. } => "vipd + BFD",
            Kind::Vipd { xdp: true, .. } => "vipd",
            Kind::Vipd { xdp: false, .. } => "vipd (XDP off)",
            Kind::Keepalived => "keepalived",
        }
    }
}

/// One VRRP instance of a node.
#[derive(Clone, Debug)]
pub struct Inst {
    /// VRID.
    pub vrid: u8,
    /// Priority.
    pub priority: u8,
    /// Advert interval (a whole number of centiseconds).
    pub interval: Duration,
    /// VIPs in CIDR form.
    pub vips: Vec<String>,
    /// Start as MASTER (the state hint).
    pub start_master: bool,
    /// Notify script: `notify_master` / `notify_backup` / `notify_fault` call it with
    /// `master` / `backup` / `fault` (as the seed's notify.sh is called), `notify` with
    /// what the daemon appends (`INSTANCE NAME STATE PRIORITY`).
    pub notify: Option<PathBuf>,
    /// The other router, for a BFD session to it (used by [`Kind::Vipd`] with `bfd`).
    pub bfd_peer: Option<std::net::Ipv4Addr>,
    /// Further vipd instance keys (`key`, TOML value as written), e.g. `track_interface`;
    /// they replace what the lab would write for the same key (vipd only).
    pub extra: Vec<(String, String)>,
}

/// BFD's Desired Min TX and Required Min RX in the `bfd` labs: 3 ms (issue 15: 3 ms ×
/// 3), or `VIPD_BENCH_BFD_INTERVAL` (a vipd duration such as `2ms`) to see what another
/// Detection Time gives; the bench prints it when set.
pub fn bfd_interval() -> String {
    std::env::var("VIPD_BENCH_BFD_INTERVAL").unwrap_or_else(|_| "3ms".to_owned())
}

impl Inst {
    /// One VIP, BACKUP at start.
    pub fn new(vrid: u8, priority: u8, interval: Duration, vip: &str) -> Inst {
        Inst {
            vrid,
            priority,
            interval,
            vips: vec![vip.to_owned()],
            start_master: false,
            notify: None,
            bfd_peer: None,
            extra: Vec::new(),
        }
    }

    /// The same instance with `key = value` in its vipd table (see [`Inst::extra`]).
    pub fn with(mut self, key: &str, value: &str) -> Inst {
        self.extra.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The same instance with a BFD session to `peer` (see [`Inst::bfd_peer`]).
    pub fn with_bfd_peer(mut self, peer: std::net::Ipv4Addr) -> Inst {
        self.bfd_peer = Some(peer);
        self
    }

    /// The same instance with every notify command calling `script` (see
    /// [`Inst::notify`]).
    pub fn with_notify(mut self, script: &Path) -> Inst {
        self.notify = Some(script.to_owned());
        self
    }

    fn name(&self) -> String {
        format!("VI_{}", self.vrid)
    }
}

/// A router in a namespace running vipd or keepalived. Dropping it kills what runs and
/// removes its bpffs pins.
pub struct Node<'a> {
    /// Name in messages (`r1`).
    pub name: String,
    /// What it runs.
    pub kind: Kind,
    ns: &'a Netns,
    bin: PathBuf,
    config: PathBuf,
    socket: PathBuf,
    state_dir: PathBuf,
    bpffs: PathBuf,
    instances: Vec<Inst>,
    proc: Option<Proc>,
}

impl<'a> Node<'a> {
    /// Writes the config into `scratch`; does not start anything.
    pub fn new(
        ns: &'a Netns,
        scratch: &Scratch,
        name: &str,
        kind: Kind,
        instances: &[Inst],
        bin: &Path,
    ) -> anyhow::Result<Node<'a>> {
        if matches!(kind, Kind::Vipd { .. }) {
            ensure_bpffs()?;
        }
        let socket = scratch.path().join(format!("{name}.sock"));
        let state_dir = scratch.path().join(format!("{name}.d"));
        std::fs::create_dir_all(&state_dir)
            .with_context(|| format!("creating {}", state_dir.display()))?;
        let text = match kind {
            Kind::Vipd { xdp, bfd } => vipd_config(name, &socket, instances, xdp, bfd),
            Kind::Keepalived => keepalived_config(name, instances),
        };
        let ext = if kind == Kind::Keepalived {
            "conf"
        } else {
            "toml"
        };
        let config = scratch.write(&format!("{name}.{ext}"), &text)?;
        let bpffs = PathBuf::from(format!(
            "/sys/fs/bpf/vipd-bench-{}-{}-{name}",
            std::process::id(),
            scratch
                .path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        Ok(Node {
            name: name.to_owned(),
            kind,
            ns,
            bin: bin.to_owned(),
            config,
            socket,
            state_dir,
            bpffs,
            instances: instances.to_vec(),
            proc: None,
        })
    }

    /// Appends `text` (whole TOML tables, e.g. `[script.NAME]`) to a vipd config file
    /// before the node starts.
    pub fn append_config(&self, text: &str) -> anyhow::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.config)
            .with_context(|| format!("opening {}", self.config.display()))?;
        file.write_all(text.as_bytes())
            .with_context(|| format!("writing {}", self.config.display()))
    }

    /// The node's own bpffs directory (vipd's `--bpffs-dir`: its pins live below it).
    pub fn bpffs(&self) -> &Path {
        &self.bpffs
    }

    /// The daemon's main pid (None when it is not running).
    pub fn pid(&self) -> Option<i32> {
        self.proc.as_ref().map(Proc::pid)
    }

    /// Sends `signal` to the daemon (SIGHUP, SIGSTOP, SIGCONT).
    pub fn signal(&self, signal: i32) -> anyhow::Result<()> {
        self.proc
            .as_ref()
            .with_context(|| format!("{} is not running", self.name))?
            .signal(signal)
    }

    /// The namespace.
    pub fn ns(&self) -> &'a Netns {
        self.ns
    }

    /// Starts the daemon. vipd: returns once its control socket answers.
    pub fn start(&mut self) -> anyhow::Result<()> {
        if self.proc.is_some() {
            bail!("{}: already running", self.name);
        }
        let config = self.config.to_string_lossy().into_owned();
        let proc = match self.kind {
            Kind::Vipd { .. } => {
                let bin = self.bin.to_string_lossy().into_owned();
                // Through our root (`host_view`): `ip netns exec` gives vipd a fresh
                // /sys where /sys/fs/bpf is empty, and vipd would pin into a private
                // bpffs nobody else sees (the soak counted 0 pins before and after).
                let bpffs = host_view(&self.bpffs).to_string_lossy().into_owned();
                let run_dir = self.state_dir.to_string_lossy().into_owned();
                self.ns.spawn(&[
                    &bin,
                    "run",
                    "-c",
                    &config,
                    "--bpffs-dir",
                    &bpffs,
                    "--run-dir",
                    &run_dir,
                ])?
            }
            Kind::Keepalived => {
                // Nothing of ours runs: pid files left by a SIGKILLed keepalived are
                // stale, and keepalived refuses to start ("daemon is already running")
                // when one names a pid that exists again.
                for name in ["keepalived.pid", "vrrp.pid", "check.pid"] {
                    let _ = std::fs::remove_file(self.state_dir.join(name));
                }
                let pid = |n: &str| self.state_dir.join(n).to_string_lossy().into_owned();
                let (p1, p2, p3) = (pid("keepalived.pid"), pid("vrrp.pid"), pid("check.pid"));
                self.ns.spawn(&[
                    "keepalived",
                    "-n",
                    "-l",
                    "-D",
                    "-f",
                    &config,
                    "-p",
                    &p1,
                    "-r",
                    &p2,
                    "-c",
                    &p3,
                ])?
            }
        };
        self.proc = Some(proc);
        if let Kind::Vipd { .. } = self.kind {
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.status().is_none() {
                let proc = self.proc.as_mut().context("started above")?;
                if proc.has_exited()? {
                    let stderr = proc.stderr();
                    self.proc = None;
                    bail!("vipd on {} exited at start:\n{stderr}", self.name);
                }
                if Instant::now() >= deadline {
                    bail!(
                        "vipd on {} did not answer status within 10 s:\n{}",
                        self.name,
                        proc.stderr()
                    );
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        Ok(())
    }

    /// Whether the daemon was started and not crashed/stopped by the bench.
    pub fn is_running(&self) -> bool {
        self.proc.is_some()
    }

    /// Every pid of the daemon (keepalived forks a VRRP child).
    pub fn pids(&self) -> Vec<i32> {
        let comm = match self.kind {
            Kind::Vipd { .. } => "vipd",
            Kind::Keepalived => "keepalived",
        };
        self.ns
            .pids()
            .unwrap_or_default()
            .into_iter()
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .map(|c| c.trim() == comm)
                    .unwrap_or(false)
            })
            .collect()
    }

    /// vipd's status JSON (None for keepalived, or when it does not answer).
    pub fn status(&self) -> Option<Value> {
        if self.kind == Kind::Keepalived {
            return None;
        }
        let mut stream = UnixStream::connect(&self.socket).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        stream.write_all(b"status\n").ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Whether instance `i` is MASTER right now (false when the daemon is not running).
    pub fn is_master(&self, i: usize) -> bool {
        if self.proc.is_none() {
            return false;
        }
        let Some(inst) = self.instances.get(i) else {
            return false;
        };
        match self.kind {
            Kind::Vipd { .. } => self
                .status()
                .and_then(|s| {
                    s["instances"]
                        .as_array()?
                        .iter()
                        .find(|x| x["name"] == inst.name().as_str())
                        .map(|x| x["state"] == "MASTER")
                })
                .unwrap_or(false),
            Kind::Keepalived => {
                let log = self.log();
                let tag = format!("({}) Entering ", inst.name());
                log.lines()
                    .rev()
                    .find_map(|l| l.split_once(&tag).map(|(_, rest)| rest.to_owned()))
                    .is_some_and(|rest| rest.starts_with("MASTER"))
            }
        }
    }

    /// Whether every instance is MASTER.
    pub fn all_master(&self) -> bool {
        match self.kind {
            Kind::Vipd { .. } => self.status().is_some_and(|s| {
                s["instances"]
                    .as_array()
                    .is_some_and(|all| all.iter().all(|x| x["state"] == "MASTER"))
            }),
            Kind::Keepalived => (0..self.instances.len()).all(|i| self.is_master(i)),
        }
    }

    /// How often this router has entered MASTER since it (last) started, over all
    /// instances: vipd's `became_master` counters, keepalived's log lines.
    pub fn became_master(&self) -> u64 {
        match self.kind {
            Kind::Vipd { .. } => self.counter_sum("became_master"),
            Kind::Keepalived => self
                .log()
                .lines()
                .filter(|l| l.contains("Entering MASTER STATE"))
                .count() as u64,
        }
    }

    /// State transitions since start, over all instances (keepalived: `Entering` lines).
    pub fn transitions(&self) -> u64 {
        match self.kind {
            Kind::Vipd { .. } => self.counter_sum("transitions"),
            Kind::Keepalived => self
                .log()
                .lines()
                .filter(|l| l.contains(") Entering ") && l.contains(" STATE"))
                .count() as u64,
        }
    }

    /// The sum of vipd counter `name` over all instances.
    pub fn counter_sum(&self, name: &str) -> u64 {
        self.status()
            .and_then(|s| {
                Some(
                    s["instances"]
                        .as_array()?
                        .iter()
                        .map(|x| x["counters"][name].as_u64().unwrap_or(0))
                        .sum(),
                )
            })
            .unwrap_or(0)
    }

    /// What the daemon logged (stderr).
    pub fn log(&self) -> String {
        self.proc.as_ref().map(Proc::stderr).unwrap_or_default()
    }

    /// Waits until instance `i` is MASTER (or not), polling every millisecond.
    pub fn wait_master(&self, i: usize, master: bool, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while self.is_master(i) != master {
            if Instant::now() >= deadline {
                let alive = if self.pids().is_empty() {
                    "not running"
                } else {
                    "running"
                };
                bail!(
                    "{} ({}, {alive}) did not become {} within {timeout:?}; its log:\n{}",
                    self.name,
                    self.kind.label(),
                    if master { "MASTER" } else { "BACKUP" },
                    tail(&self.log(), 20)
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// A host crash, first half: the link goes quiet. The VIPs it held stay on the
    /// (now down) interface.
    pub fn cut_link(&self) -> anyhow::Result<()> {
        link_down(self.ns, "eth0")
    }

    /// A host crash, second half: SIGKILL to every process of the daemon.
    pub fn kill(&mut self) {
        // Dropping the guard SIGKILLs the process group (keepalived's children too).
        drop(self.proc.take());
        for pid in self.pids() {
            // SAFETY: kill has no memory preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }

    /// The crashed host comes back "rebooted": the VIPs a crash left are gone, the link
    /// is up; the daemon is not started yet.
    pub fn reboot(&mut self) -> anyhow::Result<()> {
        for inst in &self.instances {
            for vip in &inst.vips {
                let _ = self.ns.ip(&["addr", "del", vip, "dev", "eth0"]);
            }
        }
        link_up(self.ns, "eth0")
    }

    /// Sends SIGTERM (graceful stop) without waiting.
    pub fn signal_term(&self) -> anyhow::Result<()> {
        self.proc
            .as_ref()
            .with_context(|| format!("{} is not running", self.name))?
            .signal(libc::SIGTERM)
    }

    /// Waits up to `timeout` for the daemon to exit after [`Node::signal_term`].
    pub fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<()> {
        if let Some(mut proc) = self.proc.take() {
            proc.wait_timeout(timeout)
                .with_context(|| format!("{} did not exit after SIGTERM", self.name))?;
        }
        Ok(())
    }

    /// Stops the daemon (SIGTERM, bounded wait; SIGKILL on drop if it hangs).
    pub fn stop(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            let _ = proc.terminate(Duration::from_secs(5));
        }
    }
}

impl Drop for Node<'_> {
    fn drop(&mut self) {
        drop(self.proc.take());
        for pid in self.pids() {
            // SAFETY: kill has no memory preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if self.bpffs.exists() {
            let _ = std::fs::remove_dir_all(&self.bpffs);
        }
    }
}

/// tcpdump on the switch port of LAN member `member`, printing a line with a wall-clock
/// timestamp (`-tt`) per VRRP packet the member sends (bounded by `timeout`; stop it
/// with SIGINT). On the wire, so vipd and keepalived are counted the same way.
/// `--immediate-mode`: otherwise libpcap hands packets over a ring block at a time (up
/// to a second late), and the block still open at SIGINT is lost from the count.
pub fn advert_capture(lan: &Lan, member: usize) -> anyhow::Result<Proc> {
    let mac = mac_of(lan.member(member), "eth0")?;
    let mac = mac
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    let port = Lan::port_name(member);
    let filter = format!("ether src {mac} and ip proto 112");
    lan.switch().spawn(&[
        "timeout",
        "600",
        "tcpdump",
        "--immediate-mode",
        "-i",
        &port,
        "-n",
        "-tt",
        "-l",
        "-Q",
        "in",
        &filter,
    ])
}

/// Waits (at most 5 s) until every capture says it is listening.
pub fn wait_listening(captures: &[&Proc]) {
    let ready_by = Instant::now() + Duration::from_secs(5);
    while Instant::now() < ready_by && !captures.iter().all(|c| c.stderr().contains("listening on"))
    {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stops a capture (SIGINT) and returns what it printed: (packet lines, statistics).
pub fn finish_capture(mut capture: Proc) -> (String, String) {
    drop(capture.signal(libc::SIGINT));
    capture
        .wait_timeout(Duration::from_secs(3))
        .map(|f| (f.stdout, f.stderr))
        .unwrap_or_else(|_| (capture.stdout(), capture.stderr()))
}

/// Packets tcpdump says it lost: "N packets dropped by kernel" and "N packets dropped
/// by interface" (0 when it printed no statistics).
pub fn capture_drops(stderr: &str) -> u64 {
    stderr
        .lines()
        .filter(|l| l.contains("packets dropped by"))
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The timestamps (Unix seconds) of the packet lines in tcpdump `-tt` output.
pub fn packet_times(text: &str) -> Vec<f64> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        .collect()
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn vipd_config(name: &str, socket: &Path, instances: &[Inst], xdp: bool, bfd: bool) -> String {
    let mut sessions = String::new();
    let confs: Vec<InstanceConf> = instances
        .iter()
        .map(|inst| {
            let mut conf = InstanceConf::new(&inst.name(), inst.vrid, inst.priority, "");
            conf.vips = inst.vips.clone();
            conf.advert_int = format!("{}ms", inst.interval.as_millis());
            let mut conf = conf.set("xdp", if xdp { "\"auto\"" } else { "\"off\"" });
            if inst.start_master {
                conf = conf.set("state", "\"MASTER\"");
            }
            if let Some(script) = &inst.notify {
                let script = script.display().to_string();
                // TOML argv arrays; Debug quoting of a path is a valid TOML basic string.
                for state in ["master", "backup", "fault"] {
                    conf = conf.set(
                        &format!("notify_{state}"),
                        &format!("[{script:?}, {state:?}]"),
                    );
                }
                conf = conf.set("notify", &format!("[{script:?}]"));
            }
            for (key, value) in &inst.extra {
                conf = conf.set(key, value);
            }
            if let (true, Some(peer)) = (bfd, inst.bfd_peer) {
                let session = format!("peer{}", inst.vrid);
                conf = conf.set(
                    "track_bfd",
                    &format!("[{{ name = {session:?}, peer = true }}]"),
                );
                let interval = bfd_interval();
                sessions.push_str(&format!(
                    "\n[bfd.{session}]\nneighbor_ip = \"{peer}\"\nmin_tx = {interval:?}\n\
                     min_rx = {interval:?}\nmultiplier = 3\n"
                ));
            }
            conf
        })
        .collect();
    config_toml(name, socket, &confs) + &sessions
}

fn keepalived_config(name: &str, instances: &[Inst]) -> String {
    let mut text = format!("global_defs {{\n  router_id {name}\n  vrrp_version 3\n}}\n");
    for inst in instances {
        let vips: String = inst.vips.iter().map(|v| format!("    {v}\n")).collect();
        // The seed's lines (keepalived splits them into words and execs them).
        let notify: String = inst
            .notify
            .as_ref()
            .map(|script| {
                let s = script.display();
                format!(
                    "  notify_master \"{s} master\"\n  notify_backup \"{s} backup\"\n  notify_fault \"{s} fault\"\n  notify \"{s}\"\n"
                )
            })
            .unwrap_or_default();
        text.push_str(&format!(
            "vrrp_instance {} {{\n  state {}\n  interface eth0\n  virtual_router_id {}\n  priority {}\n  advert_int {}\n  garp_master_delay 0\n  virtual_ipaddress {{\n{vips}  }}\n{notify}}}\n",
            inst.name(),
            if inst.start_master { "MASTER" } else { "BACKUP" },
            inst.vrid,
            inst.priority,
            inst.interval.as_secs_f64(),
        ));
    }
    text
}
