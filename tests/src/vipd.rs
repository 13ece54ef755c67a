//! Running vipd itself in a lab: a per-test scratch directory, TOML configs built from
//! [`InstanceConf`], [`Router`] guards around `vipd run`, and typed-enough access to
//! `vipd status --json`.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use vipd_tests::vipd::{InstanceConf, Router, Scratch};
//! let lan = vipd_tests::Lan::new("doc", 2)?;
//! vipd_tests::add_addr(lan.member(0), "eth0", "192.0.2.1/24")?;
//! let scratch = Scratch::new("doc")?;
//! let mut r1 = Router::new(
//!     lan.member(0),
//!     &scratch,
//!     "r1",
//!     &[InstanceConf::new("VI_1", 7, 200, "192.0.2.100/24")],
//! )?;
//! r1.start()?;
//! r1.wait_state("VI_1", "MASTER", std::time::Duration::from_secs(5))?;
//! vipd_tests::vipd::stop_all(&mut [r1])?;
//! # Ok(())
//! # }
//! ```
//!
//! The status socket is a file in the scratch directory, so `vipd status` runs from the
//! host namespace. Every wait is bounded; a router that dies while a test waits on it
//! makes the wait fail at once with its stderr.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::netns::Netns;
use crate::proc::{Finished, Proc};
use crate::topo::{Lan, add_addr, addrs};
use crate::vipd_bin;
use crate::wait::poll_until;

/// Advert interval of [`InstanceConf::new`]: short enough that a scenario takes well
/// under a second per election (Master_Down_Interval ≈ 3 × 50 ms + skew), long enough
/// that a busy 2-core machine does not cause false failovers.
pub const DEFAULT_ADVERT_INT: &str = "50ms";

/// How often the status helpers poll the control socket.
pub const POLL: Duration = Duration::from_millis(20);

/// How long `vipd run` may take to open its control socket.
const START_TIMEOUT: Duration = Duration::from_secs(10);

static NEXT_SCRATCH: AtomicU32 = AtomicU32::new(0);

/// Where the XDP pins of test routers go: `<BPFFS_ROOT>/<scratch dir name>/<router>`.
/// bpffs is host-wide (namespaces do not separate it), so every router gets its own
/// directory, named like the scratch directory so [`crate::cleanup_stale`] can sweep it.
pub const BPFFS_ROOT: &str = "/sys/fs/bpf";

/// Mounts a bpffs on [`BPFFS_ROOT`] unless one is there (systemd mounts it at boot;
/// minimal machines and containers may not). Test routers run in namespaces entered with
/// `ip netns exec`, which gives each a private /sys: their pins only land in the host's
/// bpffs (through `/proc/<pid>/root`) when the host has one. Idempotent.
pub fn ensure_bpffs() -> anyhow::Result<()> {
    let mounts =
        std::fs::read_to_string("/proc/self/mounts").context("reading /proc/self/mounts")?;
    let mounted = mounts.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        matches!(fields.as_slice(), [_, at, "bpf", ..] if *at == BPFFS_ROOT)
    });
    if mounted {
        return Ok(());
    }
    let out = std::process::Command::new("mount")
        .args(["-t", "bpf", "bpf", BPFFS_ROOT])
        .output()
        .context("running mount")?;
    // Two tests racing to mount: the loser's EBUSY is fine if a bpffs is there now.
    if !out.status.success() {
        let again = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        if !again.contains(&format!(" {BPFFS_ROOT} bpf ")) {
            bail!(
                "cannot mount a bpffs on {BPFFS_ROOT}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    Ok(())
}

/// A scratch directory for one test (configs, control sockets, lock files), removed on
/// drop together with the test's bpffs directory ([`Scratch::bpffs_dir`]).
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
    bpffs: PathBuf,
}

impl Scratch {
    /// Creates `$TMPDIR/vipd-t-<tag>-<pid>-<n>` (and mounts a bpffs on
    /// [`BPFFS_ROOT`] if the host has none: see [`ensure_bpffs`]).
    pub fn new(tag: &str) -> anyhow::Result<Scratch> {
        ensure_bpffs()?;
        let n = NEXT_SCRATCH.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("vipd-t-{tag}-{}-{n}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("removing stale {}", path.display()))?;
        }
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        let name = path.file_name().context("scratch path has a name")?;
        let bpffs = Path::new(BPFFS_ROOT).join(name);
        Ok(Scratch { path, bpffs })
    }

    /// `/sys/fs/bpf/vipd-t-<tag>-<pid>-<n>`: the parent of this test's routers' bpffs
    /// directories (created by vipd when it pins; removed, pins and all, on drop).
    pub fn bpffs_dir(&self) -> &Path {
        &self.bpffs
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `text` to `name` inside the directory and returns the file's path.
    pub fn write(&self, name: &str, text: &str) -> anyhow::Result<PathBuf> {
        let file = self.path.join(name);
        std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
        Ok(file)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
        // Unpinning a link whose owner is gone detaches its program.
        let _ = std::fs::remove_dir_all(&self.bpffs);
    }
}

/// One `[instance.NAME]` table of a test config.
///
/// Defaults chosen for tests: `interface = "eth0"`, `advert_int =`
/// [`DEFAULT_ADVERT_INT`], `garp_master_delay = "0s"` (no second burst seconds later),
/// `xdp = "off"`. Anything else goes in with [`InstanceConf::set`].
#[derive(Clone, Debug)]
pub struct InstanceConf {
    /// Instance name (the table key, and `name` in status).
    pub name: String,
    /// `interface`.
    pub interface: String,
    /// `virtual_router_id`.
    pub vrid: u8,
    /// `priority`.
    pub priority: u8,
    /// `advert_int`, as written in TOML (without quotes).
    pub advert_int: String,
    /// `virtual_ipaddress` entries in CIDR form.
    pub vips: Vec<String>,
    /// Further `key = value` lines, TOML values as written.
    pub extra: Vec<(String, String)>,
}

impl InstanceConf {
    /// An instance on `eth0` with one VIP.
    pub fn new(name: &str, vrid: u8, priority: u8, vip: &str) -> InstanceConf {
        InstanceConf {
            name: name.to_owned(),
            interface: "eth0".to_owned(),
            vrid,
            priority,
            advert_int: DEFAULT_ADVERT_INT.to_owned(),
            vips: vec![vip.to_owned()],
            extra: Vec::new(),
        }
    }

    /// Sets `key = value` (`value` is TOML as written: `"1s"`, `true`, `["192.0.2.2"]`),
    /// replacing an earlier value of the same key, including the defaults above
    /// (`set("advert_int", "\"1s\"")`, `set("garp_master_delay", "\"5s\"")`).
    pub fn set(mut self, key: &str, value: &str) -> InstanceConf {
        self.extra.retain(|(k, _)| k != key);
        self.extra.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The same instance with another priority.
    pub fn priority(mut self, priority: u8) -> InstanceConf {
        self.priority = priority;
        self
    }

    /// The `[instance.NAME]` table: the fields and defaults, each unless [`set`] gave
    /// the key another value, then the [`set`] keys.
    ///
    /// [`set`]: InstanceConf::set
    pub fn to_toml(&self) -> String {
        let vips = self
            .vips
            .iter()
            .map(|v| format!("{v:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let defaults = [
            ("interface", format!("{:?}", self.interface)),
            ("virtual_router_id", self.vrid.to_string()),
            ("priority", self.priority.to_string()),
            ("advert_int", format!("{:?}", self.advert_int)),
            ("virtual_ipaddress", format!("[{vips}]")),
            ("garp_master_delay", "\"0s\"".to_owned()),
            ("xdp", "\"off\"".to_owned()),
        ];
        let mut text = format!("[instance.{}]\n", self.name);
        for (key, value) in &defaults {
            if !self.extra.iter().any(|(k, _)| k == key) {
                text.push_str(&format!("{key} = {value}\n"));
            }
        }
        for (key, value) in &self.extra {
            text.push_str(&format!("{key} = {value}\n"));
        }
        text
    }
}

/// A whole config file: `[global]` with `router_id` and `control_socket`, then the
/// instances.
pub fn config_toml(router_id: &str, control_socket: &Path, instances: &[InstanceConf]) -> String {
    config_toml_with_global(router_id, control_socket, &[], instances)
}

/// [`config_toml`] with further `[global]` lines (`key = value`, TOML values as
/// written, e.g. `("smtp_port", "2525")`).
pub fn config_toml_with_global(
    router_id: &str,
    control_socket: &Path,
    global: &[(String, String)],
    instances: &[InstanceConf],
) -> String {
    let mut text = format!(
        "[global]\nrouter_id = {router_id:?}\ncontrol_socket = {:?}\n",
        control_socket.display().to_string()
    );
    for (key, value) in global {
        text.push_str(&format!("{key} = {value}\n"));
    }
    for instance in instances {
        text.push('\n');
        text.push_str(&instance.to_toml());
    }
    text
}

/// vipd on one namespace: its config file and control socket in the test's scratch
/// directory, and the running process (if started).
///
/// Every start passes `--bpffs-dir <scratch bpffs>/<name>` (through [`host_view`]) and
/// `--run-dir <scratch>/<name>.run`, so routers in different namespaces (which share the host's
/// bpffs and /run, and all call their interface `eth0`) never see each other's pins or
/// interface locks. Dropping the router SIGKILLs vipd, then removes its bpffs directory
/// (which detaches an XDP program a killed vipd left pinned).
#[derive(Debug)]
pub struct Router<'a> {
    name: String,
    ns: &'a Netns,
    config: PathBuf,
    socket: PathBuf,
    bpffs_dir: PathBuf,
    run_dir: PathBuf,
    /// Whether Drop removes `bpffs_dir` (not when borrowed with [`Router::share_pin_dirs`]).
    owns_bpffs_dir: bool,
    extra_args: Vec<String>,
    /// `[global]` lines besides router_id and control_socket (TOML configs only).
    global: Vec<(String, String)>,
    /// Arguments after `vipd run -c CONFIG`.
    args: Vec<String>,
    /// Environment variables vipd gets besides the test's own.
    env: Vec<String>,
    /// The binary to run instead of [`vipd_bin`] (the bench's release build).
    bin: Option<PathBuf>,
    proc: Option<Proc>,
}

impl<'a> Router<'a> {
    /// Writes `<name>.toml` for `instances` into `scratch`; does not start vipd.
    pub fn new(
        ns: &'a Netns,
        scratch: &Scratch,
        name: &str,
        instances: &[InstanceConf],
    ) -> anyhow::Result<Router<'a>> {
        Router::with_global(ns, scratch, name, &[], instances)
    }

    /// [`Router::new`] with further `[global]` keys (`("smtp_port", "2525")`, TOML
    /// values as written).
    pub fn with_global(
        ns: &'a Netns,
        scratch: &Scratch,
        name: &str,
        global: &[(&str, &str)],
        instances: &[InstanceConf],
    ) -> anyhow::Result<Router<'a>> {
        let socket = scratch.path().join(format!("{name}.sock"));
        let global: Vec<(String, String)> = global
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let config = scratch.write(
            &format!("{name}.toml"),
            &config_toml_with_global(name, &socket, &global, instances),
        )?;
        Ok(Router {
            name: name.to_owned(),
            ns,
            config,
            socket,
            bpffs_dir: scratch.bpffs_dir().join(name),
            run_dir: scratch.path().join(format!("{name}.run")),
            owns_bpffs_dir: true,
            extra_args: Vec::new(),
            global,
            args: Vec::new(),
            env: Vec::new(),
            bin: None,
            proc: None,
        })
    }

    /// `--bpffs-dir` of this router: its pins are in `<dir>/<interface>/`.
    pub fn bpffs_dir(&self) -> &Path {
        &self.bpffs_dir
    }

    /// `--run-dir` of this router: its interface locks are `<dir>/<interface>.lock`.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// Uses `other`'s `--bpffs-dir` and `--run-dir` from the next start on, as a second
    /// vipd on the same host would (the default directories); `other` keeps owning the
    /// bpffs directory's cleanup.
    pub fn share_pin_dirs(&mut self, other: &Router<'_>) {
        self.bpffs_dir = other.bpffs_dir.clone();
        self.run_dir = other.run_dir.clone();
        self.owns_bpffs_dir = false;
    }

    /// Further `vipd run` arguments from the next start on, e.g. `--xdp-log`.
    pub fn set_extra_args(&mut self, args: &[&str]) {
        self.extra_args = args.iter().map(|a| (*a).to_owned()).collect();
    }

    /// vipd run from an existing config file (`vipd run -c FILE`: TOML or keepalived.conf,
    /// as vipd detects it), e.g. a copy of the seed keepalived.conf. The control socket
    /// (`--socket`) is this router's own in `scratch` (such a file names none), as are
    /// the bpffs and lock directories every start passes.
    pub fn from_file(
        ns: &'a Netns,
        scratch: &Scratch,
        name: &str,
        config: &Path,
    ) -> anyhow::Result<Router<'a>> {
        let socket = scratch.path().join(format!("{name}.sock"));
        Ok(Router {
            name: name.to_owned(),
            ns,
            config: config.to_owned(),
            socket: socket.clone(),
            bpffs_dir: scratch.bpffs_dir().join(name),
            run_dir: scratch.path().join(format!("{name}.run")),
            owns_bpffs_dir: true,
            extra_args: vec!["--socket".to_owned(), socket.display().to_string()],
            global: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            bin: None,
            proc: None,
        })
    }

    /// Adds arguments after `vipd run -c CONFIG` (taking effect at the next
    /// [`Router::start`]).
    pub fn args(mut self, args: &[&str]) -> Router<'a> {
        self.args.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    /// Runs `bin` instead of [`vipd_bin`] (taking effect at the next [`Router::start`]).
    pub fn bin(mut self, bin: &Path) -> Router<'a> {
        self.bin = Some(bin.to_owned());
        self
    }

    fn program(&self) -> PathBuf {
        self.bin.clone().unwrap_or_else(vipd_bin)
    }

    /// Sets an environment variable for vipd (taking effect at the next
    /// [`Router::start`]), e.g. `NOTIFY_SOCKET`.
    pub fn env(mut self, key: &str, value: &str) -> Router<'a> {
        self.env.push(format!("{key}={value}"));
        self
    }

    /// The router's name (also its `router_id`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace vipd runs in.
    pub fn ns(&self) -> &'a Netns {
        self.ns
    }

    /// Path of the config file.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Rewrites the config file (takes effect at the next [`Router::start`]).
    pub fn reconfigure(&mut self, instances: &[InstanceConf]) -> anyhow::Result<()> {
        std::fs::write(
            &self.config,
            config_toml_with_global(&self.name, &self.socket, &self.global, instances),
        )
        .with_context(|| format!("writing {}", self.config.display()))
    }

    /// Starts `vipd run -c CONFIG` in the namespace and returns once its control socket
    /// answers; fails with vipd's stderr if it exits first.
    pub fn start(&mut self) -> anyhow::Result<()> {
        if self.proc.is_some() {
            bail!("{}: vipd is already running", self.name);
        }
        let proc = self.spawn()?;
        self.proc = Some(proc);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.status().is_ok() {
                return Ok(());
            }
            let proc = self.proc.as_mut().context("started above")?;
            if proc.has_exited()? {
                let done = proc.wait_timeout(Duration::from_secs(2))?;
                self.proc = None;
                bail!(
                    "vipd on {} exited ({}) before answering status\n--- stderr:\n{}",
                    self.name,
                    done.status,
                    done.stderr
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "vipd on {} did not answer status within {START_TIMEOUT:?}\n--- stderr:\n{}",
                    self.name,
                    proc.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts `vipd run` and waits up to `timeout` for it to exit on its own, for a
    /// start that must fail (e.g. the interface is locked by another vipd). Fails if it
    /// is still running then (and kills it).
    pub fn run_to_exit(&mut self, timeout: Duration) -> anyhow::Result<Finished> {
        if self.proc.is_some() {
            bail!("{}: vipd is already running", self.name);
        }
        let mut proc = self.spawn()?;
        proc.wait_timeout(timeout)
            .with_context(|| format!("vipd on {} was expected to exit", self.name))
    }

    fn spawn(&self) -> anyhow::Result<Proc> {
        // `env K=V vipd ...` execs vipd, so the pid is still vipd's.
        let mut argv: Vec<String> = if self.env.is_empty() {
            Vec::new()
        } else {
            std::iter::once("env".to_owned())
                .chain(self.env.iter().cloned())
                .collect()
        };
        argv.extend([
            self.program().to_string_lossy().into_owned(),
            "run".into(),
            "-c".into(),
            self.config.to_string_lossy().into_owned(),
            "--bpffs-dir".into(),
            host_view(&self.bpffs_dir).to_string_lossy().into_owned(),
            "--run-dir".into(),
            self.run_dir.to_string_lossy().into_owned(),
        ]);
        argv.extend(self.extra_args.iter().cloned());
        argv.extend(self.args.iter().cloned());
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        self.ns
            .spawn(&argv)
            .with_context(|| format!("starting vipd on {}", self.name))
    }

    /// Whether vipd was started and has not been stopped or killed by the test.
    pub fn is_running(&self) -> bool {
        self.proc.is_some()
    }

    /// The pid of the running vipd.
    pub fn pid(&self) -> Option<i32> {
        self.proc.as_ref().map(Proc::pid)
    }

    /// Sends `signal` to the running vipd.
    pub fn signal(&self, signal: i32) -> anyhow::Result<()> {
        self.proc
            .as_ref()
            .with_context(|| format!("{}: vipd is not running", self.name))?
            .signal(signal)
    }

    /// SIGKILL (a crash: no priority-0 advert, VIPs stay where they are) and reap.
    pub fn kill(&mut self) -> anyhow::Result<Finished> {
        let mut proc = self
            .proc
            .take()
            .with_context(|| format!("{}: vipd is not running", self.name))?;
        proc.signal(libc::SIGKILL)?;
        proc.wait_timeout(Duration::from_secs(5))
    }

    /// SIGTERM, and wait up to `timeout` for vipd to exit; returns how it ended (the
    /// caller checks the status).
    pub fn stop(&mut self, timeout: Duration) -> anyhow::Result<Finished> {
        let mut proc = self
            .proc
            .take()
            .with_context(|| format!("{}: vipd is not running", self.name))?;
        proc.terminate(timeout)
    }

    /// Waits up to `timeout` for vipd to exit on its own (after a signal the test sent)
    /// and returns how it ended.
    pub fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<Finished> {
        let mut proc = self
            .proc
            .take()
            .with_context(|| format!("{}: vipd is not running", self.name))?;
        let result = proc.wait_timeout(timeout);
        if result.is_err() {
            // Still running: keep the guard so the process is killed with the router.
            self.proc = Some(proc);
        }
        result
    }

    /// What vipd has logged so far (stderr), for failure messages.
    pub fn logs(&self) -> String {
        self.proc.as_ref().map(Proc::stderr).unwrap_or_default()
    }

    /// [`Router::logs`] without terminal colours, for matching `key=value` fields.
    pub fn plain_logs(&self) -> String {
        strip_ansi(&self.logs())
    }

    /// `vipd status --json` of this router.
    pub fn status(&self) -> anyhow::Result<Value> {
        let out = Command::new(self.program())
            .args(["status", "--json", "--socket"])
            .arg(&self.socket)
            .output()
            .context("running vipd status")?;
        if !out.status.success() {
            bail!(
                "vipd status on {} failed ({}): {}",
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        serde_json::from_slice(&out.stdout)
            .with_context(|| format!("vipd status on {} printed bad JSON", self.name))
    }

    /// The status object of instance `name`.
    pub fn instance(&self, name: &str) -> anyhow::Result<Value> {
        let status = self.status()?;
        status["instances"]
            .as_array()
            .and_then(|all| all.iter().find(|i| i["name"] == name))
            .cloned()
            .with_context(|| format!("{}: no instance {name} in status {status}", self.name))
    }

    /// The state (`INIT`, `BACKUP`, `MASTER`, `FAULT`) of instance `name`.
    pub fn state(&self, name: &str) -> anyhow::Result<String> {
        let instance = self.instance(name)?;
        instance["state"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("{}: instance {name} has no state: {instance}", self.name))
    }

    /// Polls until instance `name` is in `state`; returns its status object. Fails at
    /// once if vipd has exited.
    pub fn wait_state(
        &mut self,
        name: &str,
        state: &str,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        self.wait_instance(state, name, timeout, |i| i["state"] == state)
    }

    /// Polls until `condition` holds for instance `name`'s status object, and returns
    /// it; `what` names the condition in the error.
    pub fn wait_instance(
        &mut self,
        what: &str,
        name: &str,
        timeout: Duration,
        condition: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let router = self.name.clone();
        let result = poll_until(
            &format!("{router}/{name} to be {what}"),
            timeout,
            POLL,
            || -> Result<Value, String> {
                if let Some(proc) = self.proc.as_mut()
                    && proc.has_exited().unwrap_or(false)
                {
                    return Err("vipd has exited".to_owned());
                }
                match self.instance(name) {
                    Ok(instance) if condition(&instance) => Ok(instance),
                    Ok(instance) => Err(brief(&instance)),
                    Err(e) => Err(format!("{e:#}")),
                }
            },
        );
        result.with_context(|| format!("vipd on {router} logged:\n{}", self.logs()))
    }

    /// Checks instance `name` stays in `state` for `duration` (polling), e.g. that a
    /// nopreempt backup does not take over.
    pub fn assert_state_holds(
        &self,
        name: &str,
        state: &str,
        duration: Duration,
    ) -> anyhow::Result<()> {
        let end = Instant::now() + duration;
        loop {
            let instance = self.instance(name)?;
            if instance["state"] != state {
                bail!(
                    "{}/{name} left {state}: {}\n--- vipd logged:\n{}",
                    self.name,
                    brief(&instance),
                    self.logs()
                );
            }
            if Instant::now() >= end {
                return Ok(());
            }
            std::thread::sleep(POLL);
        }
    }

    /// Counter `counter` of instance `name` (0 if absent).
    pub fn counter(&self, name: &str, counter: &str) -> anyhow::Result<u64> {
        Ok(self.instance(name)?["counters"][counter]
            .as_u64()
            .unwrap_or(0))
    }

    /// Daemon-wide counter `counter` (`counters` at the top of status; 0 if absent).
    pub fn daemon_counter(&self, counter: &str) -> anyhow::Result<u64> {
        Ok(self.status()?["counters"][counter].as_u64().unwrap_or(0))
    }

    /// The status object of the XDP attachment on `interface` (`mode`, `counters`).
    pub fn xdp(&self, interface: &str) -> anyhow::Result<Value> {
        let status = self.status()?;
        status["xdp"]
            .as_array()
            .and_then(|all| all.iter().find(|x| x["interface"] == interface))
            .cloned()
            .with_context(|| {
                format!(
                    "{}: no XDP attachment on {interface} in status {}",
                    self.name, status["xdp"]
                )
            })
    }

    /// XDP program counter `counter` on `interface` (0 if absent).
    pub fn xdp_counter(&self, interface: &str, counter: &str) -> anyhow::Result<u64> {
        Ok(self.xdp(interface)?["counters"][counter]
            .as_u64()
            .unwrap_or(0))
    }
}

impl Drop for Router<'_> {
    fn drop(&mut self) {
        // vipd first: it holds the pins it may still be writing.
        drop(self.proc.take());
        if self.owns_bpffs_dir {
            let _ = std::fs::remove_dir_all(&self.bpffs_dir);
        }
    }
}

/// `path` as this (the test) process sees it, reachable from vipd's mount namespace:
/// `/proc/<our pid>/root<path>`.
///
/// `ip netns exec` runs vipd in a fresh mount namespace with a new sysfs on /sys, where
/// /sys/fs/bpf is empty; vipd would then mount a bpffs of its own there, a private
/// instance whose pins vanish with that namespace when vipd dies (so nothing outlives a
/// crash, the opposite of what the pinning tests need). Going through our root keeps
/// vipd's pins in the host's bpffs, where the test (and vipd's successor) sees them.
pub fn host_view(path: &Path) -> PathBuf {
    let relative = path.strip_prefix("/").unwrap_or(path);
    PathBuf::from(format!("/proc/{}/root", std::process::id())).join(relative)
}

/// `text` without ANSI escape sequences (`ESC [ ... letter`), which vipd's log lines
/// carry around field names.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `state=.. master=.. prio=..` of an instance status, for error messages.
pub fn brief(instance: &Value) -> String {
    format!(
        "state={} master={} prio={}/{} last={}",
        instance["state"],
        instance["master_address"],
        instance["priority"],
        instance["effective_priority"],
        instance["last_transition"]
    )
}

/// Whether `ip` (no prefix) is on `dev` in `ns`.
pub fn has_addr(ns: &Netns, dev: &str, ip: &str) -> anyhow::Result<bool> {
    Ok(addrs(ns, dev)?
        .iter()
        .any(|a| a.split('/').next() == Some(ip)))
}

/// Polls until `ip` is on `dev` in `ns` (`present`) or not (`!present`).
pub fn wait_addr(
    ns: &Netns,
    dev: &str,
    ip: &str,
    present: bool,
    timeout: Duration,
) -> anyhow::Result<()> {
    let what = if present { "present" } else { "absent" };
    poll_until(
        &format!("{ip} to be {what} on {dev} in {}", ns.name()),
        timeout,
        POLL,
        || match addrs(ns, dev) {
            Ok(list) if list.iter().any(|a| a.split('/').next() == Some(ip)) == present => Ok(()),
            Ok(list) => Err(list.join(" ")),
            Err(e) => Err(format!("{e:#}")),
        },
    )
}

/// Which of `namespaces` hold `ip` on `eth0`, by index.
pub fn holders(namespaces: &[&Netns], ip: &str) -> anyhow::Result<Vec<usize>> {
    let mut out = Vec::new();
    for (i, ns) in namespaces.iter().enumerate() {
        if has_addr(ns, "eth0", ip)? {
            out.push(i);
        }
    }
    Ok(out)
}

/// Polls until `ip` is on `eth0` of `lan.member(holder)` and of no other member (an old
/// holder's removal and a new one's addition are not simultaneous).
pub fn wait_only_holder(
    lan: &Lan,
    ip: &str,
    holder: usize,
    timeout: Duration,
) -> anyhow::Result<()> {
    let namespaces: Vec<&Netns> = lan.members().iter().collect();
    poll_until(
        &format!("{ip} on member {holder} only"),
        timeout,
        POLL,
        || match holders(&namespaces, ip) {
            Ok(held) if held == vec![holder] => Ok(()),
            Ok(held) => Err(format!("held by {held:?}")),
            Err(e) => Err(format!("{e:#}")),
        },
    )
}

/// Pids of vipd processes (by `/proc/PID/comm`) in `ns`.
pub fn vipd_pids(ns: &Netns) -> anyhow::Result<Vec<i32>> {
    let mut out = Vec::new();
    for pid in ns.pids()? {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "vipd" {
            out.push(pid);
        }
    }
    Ok(out)
}

/// How long [`stop_all`] waits for each vipd to exit after SIGTERM.
pub const STOP_ALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The end of a test: SIGTERMs every router still running, requires each to exit 0
/// within [`STOP_ALL_TIMEOUT`], then requires that no vipd process is left in any
/// router's namespace (also ones the test stopped or killed itself).
pub fn stop_all(routers: &mut [Router<'_>]) -> anyhow::Result<()> {
    for router in routers.iter_mut() {
        if router.is_running() {
            let name = router.name.clone();
            // A yielding master keeps its VIPs until its successor has announced them,
            // for at most Master_Down_Interval: 3.2 s at the 1 s adverts the slowest
            // tests use. 2 s failed once (hostile_barrage_xdp_off, in a full run).
            let done = router
                .stop(STOP_ALL_TIMEOUT)
                .with_context(|| format!("stopping vipd on {name}"))?;
            if !done.status.success() {
                bail!(
                    "vipd on {name} exited with {} on SIGTERM\n--- stderr:\n{}",
                    done.status,
                    done.stderr
                );
            }
        }
    }
    for router in routers.iter() {
        let left = vipd_pids(router.ns)?;
        if !left.is_empty() {
            bail!(
                "vipd processes {left:?} left in {}'s namespace",
                router.name
            );
        }
    }
    Ok(())
}

/// A recorder for notify calls: writes `<name>.sh` into `scratch`, a bash script that
/// appends its arguments as one line to `<name>.log`, and returns both paths.
pub fn notify_recorder(scratch: &Scratch, name: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    let log = scratch.path().join(format!("{name}.log"));
    let script = scratch.write(
        &format!("{name}.sh"),
        &format!("#!/bin/bash\necho \"$*\" >> '{}'\n", log.display()),
    )?;
    make_executable(&script)?;
    Ok((script, log))
}

/// `chmod 755`.
pub fn make_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod 755 {}", path.display()))
}

/// The lines a [`notify_recorder`] logged so far (none if it never ran).
pub fn recorded(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Polls until the recorder log `log` holds exactly `expected` (in order); fails with
/// what it holds.
pub fn wait_recorded(log: &Path, expected: &[&str], timeout: Duration) -> anyhow::Result<()> {
    poll_until(
        &format!("{} to read {expected:?}", log.display()),
        timeout,
        POLL,
        || {
            let lines = recorded(log);
            if lines == expected {
                Ok(())
            } else {
                Err(lines)
            }
        },
    )
}

/// The usual lab: a [`Lan`] of `routers` routers with `192.0.2.(i+1)/24` on `eth0`,
/// then, if `client`, one more member with `192.0.2.10/24`; and a [`Scratch`]
/// directory, both named after `tag`.
pub fn router_lab(tag: &str, routers: usize, client: bool) -> anyhow::Result<(Lan, Scratch)> {
    let lan = Lan::new(tag, routers + usize::from(client))?;
    for i in 0..routers {
        add_addr(lan.member(i), "eth0", &format!("192.0.2.{}/24", i + 1))?;
    }
    if client {
        add_addr(lan.member(routers), "eth0", "192.0.2.10/24")?;
    }
    Ok((lan, Scratch::new(tag)?))
}

/// The common pair on a [`router_lab`]: r1 (192.0.2.1, priority 200) and r2
/// (192.0.2.2, priority 100) on VRID 7 with `vip_cidr`, both started, returned once r1
/// is MASTER and r2 its BACKUP (`master_address` 192.0.2.1).
pub fn started_pair<'a>(lan: &'a Lan, scratch: &Scratch) -> anyhow::Result<Vec<Router<'a>>> {
    const VIP_CIDR: &str = "192.0.2.100/24";
    let mut routers = vec![
        Router::new(
            lan.member(0),
            scratch,
            "r1",
            &[InstanceConf::new("VI_1", 7, 200, VIP_CIDR)],
        )?,
        Router::new(
            lan.member(1),
            scratch,
            "r2",
            &[InstanceConf::new("VI_1", 7, 100, VIP_CIDR)],
        )?,
    ];
    for router in &mut routers {
        router.start()?;
    }
    let election = Duration::from_secs(5);
    routers[0].wait_state("VI_1", "MASTER", election)?;
    routers[1].wait_instance("BACKUP of 192.0.2.1", "VI_1", election, |i| {
        i["state"] == "BACKUP" && i["master_address"] == "192.0.2.1"
    })?;
    Ok(routers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_ansi_keeps_the_text() {
        let line = "\u{1b}[2mvipd\u{1b}[0m: XDP attached \u{1b}[3mtaken_over\u{1b}[0m\u{1b}[2m=\u{1b}[0mtrue";
        assert_eq!(strip_ansi(line), "vipd: XDP attached taken_over=true");
    }

    #[test]
    fn host_view_goes_through_our_root() {
        let path = host_view(Path::new("/sys/fs/bpf/x"));
        assert_eq!(
            path,
            PathBuf::from(format!("/proc/{}/root/sys/fs/bpf/x", std::process::id()))
        );
    }
}
