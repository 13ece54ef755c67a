//! FRR (8.4) vrrpd as a peer of vipd: zebra and vrrpd in one namespace, with their pid
//! files, vty sockets and zebra socket in a directory of the test's own (owned by the
//! `frr` user the daemons drop to), configured from a file and changed through vtysh.
//!
//! FRR's vrrpd does not add the VIP itself: it needs a macvlan device on the interface
//! (bridge mode) with the virtual MAC 00:00:5e:00:01:VRID carrying the VIP, named here
//! `vrrp4-<ifindex>-<vrid>` as FRR's documentation does, and it only switches that
//! device's protodown flag with the state. So "who holds the VIP" for an FRR node is
//! its state (`show vrrp json`), not the address list.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::netns::Netns;
use crate::proc::Proc;
use crate::topo::ifindex_of;
use crate::vipd::{POLL, Scratch};
use crate::wait::poll_until;

pub(crate) const ZEBRA: &str = "/usr/lib/frr/zebra";
const VRRPD: &str = "/usr/lib/frr/vrrpd";

/// One namespace's FRR home: a directory of the test's own (owned by the `frr` user the
/// daemons drop to) holding every daemon's config, pid file, vty socket and the zebra
/// socket, and zebra running there. [`Frr`] (vrrpd) and [`crate::bfdd::Bfdd`] add their
/// daemon to one.
#[derive(Debug)]
pub(crate) struct FrrHome<'a> {
    ns: &'a Netns,
    dir: PathBuf,
    zebra: Option<Proc>,
}

impl<'a> FrrHome<'a> {
    /// Writes an empty zebra.conf and `<daemon>.conf` with `config` into `dir`, hands
    /// the directory to `frr`, and starts zebra; returns once its socket exists.
    pub(crate) fn start(
        ns: &'a Netns,
        dir: PathBuf,
        daemon: &str,
        config: &str,
    ) -> anyhow::Result<FrrHome<'a>> {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("zebra.conf"), "")?;
        std::fs::write(dir.join(format!("{daemon}.conf")), config)?;
        let out = Command::new("chown")
            .args(["-R", "frr:frr"])
            .arg(&dir)
            .output()?;
        if !out.status.success() {
            bail!(
                "chown frr {}: {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut home = FrrHome {
            ns,
            dir,
            zebra: None,
        };
        home.zebra = Some(home.spawn(ZEBRA, "zebra", &[])?);
        // Connectable, not merely present: zebra binds the socket (creating the file)
        // before it listens, and a daemon whose first connect falls in between is
        // refused and retries only 10 s later (FRR's zclient), long after the test has
        // started waiting for the routes it would carry.
        let zserv = home.dir.join("zserv.api");
        poll_until(
            "zebra's socket to accept",
            Duration::from_secs(10),
            POLL,
            || {
                std::os::unix::net::UnixStream::connect(&zserv)
                    .map(drop)
                    .map_err(|e| e.to_string())
            },
        )
        .with_context(|| format!("zebra logged:\n{}", home.zebra_logs()))?;
        Ok(home)
    }

    /// Polls until zebra lists each of `clients` (`bgp`, `bfd`, `vrrp`: the names
    /// `show zebra client summary` prints) as connected: a daemon that answers vtysh
    /// may not have reached zebra yet, and without zebra it knows no interface,
    /// address or route.
    pub(crate) fn wait_clients(&self, clients: &[&str]) -> anyhow::Result<()> {
        poll_until(
            &format!("zebra to list {clients:?} as its clients"),
            Duration::from_secs(15),
            POLL,
            || {
                let text = self
                    .vtysh(&["show zebra client summary"])
                    .map_err(|e| format!("{e:#}"))?;
                let connected: Vec<&str> = text
                    .lines()
                    .filter_map(|l| l.split_whitespace().next())
                    .collect();
                if clients.iter().all(|c| connected.contains(c)) {
                    Ok(())
                } else {
                    Err(text)
                }
            },
        )
        .with_context(|| self.diagnose(&[]))
    }

    /// A file in the home directory.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Starts `bin` as `daemon` with this home's config, pid file, zebra and vty
    /// sockets, logging to stdout, plus `extra` arguments.
    pub(crate) fn spawn(&self, bin: &str, daemon: &str, extra: &[&str]) -> anyhow::Result<Proc> {
        let file = |suffix: &str| {
            self.dir
                .join(format!("{daemon}{suffix}"))
                .display()
                .to_string()
        };
        let (config, pid) = (file(".conf"), file(".pid"));
        let (zserv, vty) = (
            self.dir.join("zserv.api").display().to_string(),
            self.dir.display().to_string(),
        );
        let mut argv = vec![
            bin,
            "-f",
            &config,
            "-i",
            &pid,
            "-z",
            &zserv,
            "--vty_socket",
            &vty,
            "-P",
            "0",
            "--log",
            "stdout",
        ];
        argv.extend_from_slice(extra);
        self.ns.spawn(&argv)
    }

    /// Runs vtysh commands against this home's daemons.
    pub(crate) fn vtysh(&self, commands: &[&str]) -> anyhow::Result<String> {
        let vty = self.dir.display().to_string();
        let mut argv = vec!["vtysh", "--vty_socket", vty.as_str()];
        for c in commands {
            argv.push("-c");
            argv.push(c);
        }
        self.ns.exec_ok(&argv)
    }

    /// What zebra logged.
    pub(crate) fn zebra_logs(&self) -> String {
        self.zebra.as_ref().map(Proc::stdout).unwrap_or_default()
    }

    /// The namespace's addresses (`ip addr`) and what zebra knows (interfaces, RIB),
    /// then zebra's log: for the error of a wait that timed out.
    pub(crate) fn diagnose(&self, extra: &[&str]) -> String {
        let mut text = format!(
            "ip addr:\n{}\n",
            self.ns
                .ip(&["-br", "addr"])
                .unwrap_or_else(|e| format!("{e:#}"))
        );
        let mut commands = vec!["show interface brief", "show ip route", "show ipv6 route"];
        commands.extend_from_slice(extra);
        for c in commands {
            let out = self.vtysh(&[c]).unwrap_or_else(|e| format!("{e:#}"));
            text.push_str(&format!("{c}:\n{out}\n"));
        }
        text.push_str(&format!("zebra logged:\n{}", self.zebra_logs()));
        text
    }

    /// SIGTERM zebra.
    pub(crate) fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut zebra) = self.zebra.take() {
            zebra.terminate(Duration::from_secs(5))?;
        }
        Ok(())
    }
}

/// zebra + vrrpd on one namespace, one IPv4 virtual router on `eth0`. Dropping it
/// SIGKILLs both.
#[derive(Debug)]
pub struct Frr<'a> {
    vrid: u8,
    // vrrpd first: it is dropped (killed) before zebra.
    vrrpd: Option<Proc>,
    home: FrrHome<'a>,
}

impl<'a> Frr<'a> {
    /// Creates the macvlan for `vrid` with `vip_cidr` on it, writes the configs and
    /// starts zebra, then vrrpd (VRRPv3, `priority`, `interval_ms`).
    pub fn start(
        ns: &'a Netns,
        scratch: &Scratch,
        name: &str,
        vrid: u8,
        priority: u8,
        interval_ms: u32,
        vip_cidr: &str,
    ) -> anyhow::Result<Frr<'a>> {
        let ifindex = ifindex_of(ns, "eth0")?;
        let macvlan = format!("vrrp4-{ifindex}-{vrid}");
        ns.ip(&[
            "link", "add", &macvlan, "link", "eth0", "type", "macvlan", "mode", "bridge",
        ])?;
        ns.ip(&[
            "link",
            "set",
            &macvlan,
            "address",
            &format!("00:00:5e:00:01:{vrid:02x}"),
        ])?;
        ns.ip(&["addr", "add", vip_cidr, "dev", &macvlan])?;
        ns.ip(&["link", "set", &macvlan, "up"])?;
        let vip = vip_cidr.split('/').next().unwrap_or(vip_cidr);
        let config = format!(
            "interface eth0\n vrrp {vrid} version 3\n vrrp {vrid} priority {priority}\n \
             vrrp {vrid} advertisement-interval {interval_ms}\n vrrp {vrid} ip {vip}\n!\n"
        );
        let home = FrrHome::start(
            ns,
            scratch.path().join(format!("{name}-frr")),
            "vrrpd",
            &config,
        )?;
        let mut frr = Frr {
            vrid,
            vrrpd: None,
            home,
        };
        frr.vrrpd = Some(frr.home.spawn(VRRPD, "vrrpd", &[])?);
        poll_until(
            "vrrpd to answer vtysh",
            Duration::from_secs(10),
            POLL,
            || frr.router().map_err(|e| format!("{e:#}")),
        )?;
        frr.home.wait_clients(&["vrrp"])?;
        Ok(frr)
    }

    /// Runs vtysh commands against this vrrpd/zebra.
    pub fn vtysh(&self, commands: &[&str]) -> anyhow::Result<String> {
        self.home.vtysh(commands)
    }

    /// `show vrrp json` for this VRID.
    pub fn router(&self) -> anyhow::Result<Value> {
        let text = self.vtysh(&["show vrrp json"])?;
        let all: Value =
            serde_json::from_str(&text).with_context(|| format!("vtysh printed {text:?}"))?;
        all.as_array()
            .and_then(|a| a.iter().find(|r| r["vrid"] == self.vrid))
            .cloned()
            .with_context(|| format!("no VRID {} in {all}", self.vrid))
    }

    /// The IPv4 state: `Initialize`, `Backup` or `Master`.
    pub fn state(&self) -> anyhow::Result<String> {
        Ok(self.router()?["v4"]["status"]
            .as_str()
            .unwrap_or("?")
            .to_owned())
    }

    /// Polls until the IPv4 state is `state`.
    pub fn wait_state(&self, state: &str, timeout: Duration) -> anyhow::Result<()> {
        poll_until(
            &format!("FRR VRID {} to be {state}", self.vrid),
            timeout,
            POLL,
            || match self.state() {
                Ok(s) if s == state => Ok(()),
                Ok(s) => Err(s),
                Err(e) => Err(format!("{e:#}")),
            },
        )
        .with_context(|| format!("vrrpd logged:\n{}", self.logs()))
    }

    /// Sets the priority at run time (`vrrp VRID priority P` on eth0).
    pub fn set_priority(&self, priority: u8) -> anyhow::Result<()> {
        self.vtysh(&[
            "configure terminal",
            "interface eth0",
            &format!("vrrp {} priority {priority}", self.vrid),
        ])?;
        Ok(())
    }

    /// What vrrpd logged.
    pub fn logs(&self) -> String {
        self.vrrpd.as_ref().map(Proc::stdout).unwrap_or_default()
    }

    /// SIGTERM vrrpd, then zebra.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut vrrpd) = self.vrrpd.take() {
            vrrpd.terminate(Duration::from_secs(5))?;
        }
        self.home.stop()
    }
}

/// Whether FRR's zebra and vrrpd are installed.
pub fn available() -> bool {
    std::path::Path::new(ZEBRA).exists() && std::path::Path::new(VRRPD).exists()
}
