//! Real keepalived (2.2.7) as a peer of vipd: one `keepalived` per namespace, VRRP
//! subsystem only, its pid files and config in the test's scratch directory.
//!
//! keepalived runs in the foreground (`-n`) logging to the console (`-l`, stderr) in
//! detail (`-D`), VRRP only (`-P`: the seed config's `virtual_server` would otherwise
//! start the IPVS checker), and with its own pid files (`-p`, `-r`, `-c`), since every
//! namespace shares the host's /run. Its state is read from its log lines,
//! `(VI_1) Entering MASTER STATE`, which is also what operators grep for.
//!
//! Observed with 2.2.7 and worth knowing when writing configs for it: `script` and
//! `notify` strings are split into words and exec'd, not run by a shell, so a
//! `vrrp_script` whose first word is `[[` is disabled at start ("Cannot find script [[
//! in path - disabling"); and the generic `notify` also gets `INSTANCE VI_1 STOP prio`
//! on shutdown.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::netns::Netns;
use crate::proc::{Finished, Proc};
use crate::vipd::{POLL, Scratch};
use crate::wait::poll_until;

/// How long keepalived may take to say `Startup complete`.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// keepalived on one namespace. Dropping it SIGKILLs keepalived and its VRRP child
/// (one process group).
#[derive(Debug)]
pub struct Keepalived<'a> {
    name: String,
    ns: &'a Netns,
    config: PathBuf,
    pid_files: [PathBuf; 3],
    proc: Option<Proc>,
    /// Log text of earlier runs of this guard (so a restart does not lose history).
    earlier_logs: String,
}

impl<'a> Keepalived<'a> {
    /// Writes `config` to `<name>.conf` in `scratch`; does not start keepalived.
    pub fn new(
        ns: &'a Netns,
        scratch: &Scratch,
        name: &str,
        config: &str,
    ) -> anyhow::Result<Keepalived<'a>> {
        let path = scratch.write(&format!("{name}.conf"), config)?;
        Ok(Keepalived::from_file(ns, scratch, name, &path))
    }

    /// keepalived run from an existing config file (an absolute path: keepalived
    /// resolves a relative one against its own working directory).
    pub fn from_file(
        ns: &'a Netns,
        scratch: &Scratch,
        name: &str,
        config: &Path,
    ) -> Keepalived<'a> {
        let pid = |what: &str| scratch.path().join(format!("{name}-{what}.pid"));
        Keepalived {
            name: name.to_owned(),
            ns,
            config: config.to_owned(),
            pid_files: [pid("keepalived"), pid("vrrp"), pid("checkers")],
            proc: None,
            earlier_logs: String::new(),
        }
    }

    /// The namespace keepalived runs in.
    pub fn ns(&self) -> &'a Netns {
        self.ns
    }

    /// The name given at creation, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Starts keepalived and returns once it logged `Startup complete`; fails with its
    /// log if it exits first.
    pub fn start(&mut self) -> anyhow::Result<()> {
        if self.proc.is_some() {
            bail!("{}: keepalived is already running", self.name);
        }
        let config = self.config.display().to_string();
        let [main, vrrp, checkers] = self.pid_files.each_ref().map(|p| p.display().to_string());
        let argv = [
            "keepalived",
            "-n",
            "-l",
            "-D",
            "-P",
            "-f",
            &config,
            "-p",
            &main,
            "-r",
            &vrrp,
            "-c",
            &checkers,
        ];
        let proc = self
            .ns
            .spawn(&argv)
            .with_context(|| format!("starting keepalived on {}", self.name))?;
        self.proc = Some(proc);
        self.wait_log("Startup complete", START_TIMEOUT, |l| {
            l.contains("Startup complete")
        })?;
        Ok(())
    }

    /// Whether keepalived was started and not stopped by the test.
    pub fn is_running(&self) -> bool {
        self.proc.is_some()
    }

    /// SIGTERM (keepalived's masters send priority 0 and remove their VIPs) and wait
    /// up to `timeout` for it to exit; returns how it ended.
    pub fn stop(&mut self, timeout: Duration) -> anyhow::Result<Finished> {
        let mut proc = self
            .proc
            .take()
            .with_context(|| format!("{}: keepalived is not running", self.name))?;
        let done = proc.terminate(timeout);
        self.earlier_logs.push_str(&proc.stderr());
        self.earlier_logs.push_str(&proc.stdout());
        done
    }

    /// Everything keepalived logged, over all runs of this guard.
    pub fn logs(&self) -> String {
        let mut text = self.earlier_logs.clone();
        if let Some(proc) = &self.proc {
            text.push_str(&proc.stderr());
            text.push_str(&proc.stdout());
        }
        text
    }

    /// Lines of the current run only.
    fn current_lines(&self) -> Vec<String> {
        self.proc
            .as_ref()
            .map(|p| {
                let mut text = p.stderr();
                text.push_str(&p.stdout());
                text.lines().map(str::to_owned).collect()
            })
            .unwrap_or_default()
    }

    /// The state instance `instance` last logged entering in the current run
    /// (`MASTER`, `BACKUP`, `FAULT`), if any.
    pub fn state(&self, instance: &str) -> Option<String> {
        let marker = format!("({instance}) Entering ");
        self.current_lines().iter().rev().find_map(|line| {
            let rest = &line[line.find(&marker)? + marker.len()..];
            rest.split_whitespace().next().map(str::to_owned)
        })
    }

    /// Polls until instance `instance`'s last logged state is `state`.
    pub fn wait_state(
        &mut self,
        instance: &str,
        state: &str,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let name = self.name.clone();
        let result = poll_until(
            &format!("keepalived {name}/{instance} to be {state}"),
            timeout,
            POLL,
            || -> Result<(), String> {
                self.check_alive()?;
                match self.state(instance) {
                    Some(s) if s == state => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            },
        );
        result.with_context(|| format!("keepalived on {name} logged:\n{}", self.logs()))
    }

    /// Polls until a line of the current run satisfies `matches` and returns it.
    pub fn wait_log(
        &mut self,
        what: &str,
        timeout: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        let name = self.name.clone();
        let result = poll_until(
            &format!("keepalived {name} to log {what:?}"),
            timeout,
            POLL,
            || -> Result<String, String> {
                if let Some(line) = self.current_lines().into_iter().find(|l| matches(l)) {
                    return Ok(line);
                }
                self.check_alive()?;
                Err("not yet".to_owned())
            },
        );
        result.with_context(|| format!("keepalived on {name} logged:\n{}", self.logs()))
    }

    fn check_alive(&mut self) -> Result<(), String> {
        let Some(proc) = self.proc.as_mut() else {
            return Err("keepalived is not running".to_owned());
        };
        if proc.has_exited().unwrap_or(false) {
            return Err("keepalived has exited".to_owned());
        }
        Ok(())
    }
}

/// Whether a `keepalived` binary is on PATH (the interop tests need it).
pub fn available() -> bool {
    std::process::Command::new("keepalived")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success() || !o.stderr.is_empty())
}
