//! FRR (8.4) bfdd as a BFD peer of vipd: zebra and bfdd in one namespace, their pid
//! files, vty sockets, zebra socket and bfdd's control socket in a directory of the
//! test's own (owned by the `frr` user the daemons drop to), one single-hop peer
//! configured from a file and read back through `vtysh -c "show bfd peers json"`.

use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use crate::frr::{FrrHome, ZEBRA};
use crate::netns::Netns;
use crate::proc::Proc;
use crate::vipd::{POLL, Scratch};
use crate::wait::poll_until;

const BFDD: &str = "/usr/lib/frr/bfdd";

/// The peer's timers as FRR takes them (milliseconds; FRR 8.4 accepts 10..=60000).
#[derive(Debug, Clone, Copy)]
pub struct BfddPeer<'p> {
    /// The neighbour's address (vipd's).
    pub peer: &'p str,
    /// `receive-interval`, ms.
    pub receive_ms: u32,
    /// `transmit-interval`, ms.
    pub transmit_ms: u32,
    /// `detect-multiplier`.
    pub multiplier: u8,
    /// `passive-mode`.
    pub passive: bool,
}

/// zebra + bfdd on one namespace. Dropping it SIGKILLs both.
#[derive(Debug)]
pub struct Bfdd<'a> {
    peer: String,
    // bfdd first: it is dropped (killed) before zebra.
    bfdd: Option<Proc>,
    home: FrrHome<'a>,
}

impl<'a> Bfdd<'a> {
    /// Writes the configs and starts zebra, then bfdd with one peer.
    pub fn start(
        ns: &'a Netns,
        scratch: &Scratch,
        name: &str,
        peer: BfddPeer<'_>,
    ) -> anyhow::Result<Bfdd<'a>> {
        let passive = if peer.passive { "  passive-mode\n" } else { "" };
        let config = format!(
            "bfd\n peer {}\n  receive-interval {}\n  transmit-interval {}\n  \
             detect-multiplier {}\n{passive}  no shutdown\n !\n!\n",
            peer.peer, peer.receive_ms, peer.transmit_ms, peer.multiplier
        );
        let home = FrrHome::start(
            ns,
            scratch.path().join(format!("{name}-bfdd")),
            "bfdd",
            &config,
        )?;
        let mut bfdd = Bfdd {
            peer: peer.peer.to_owned(),
            bfdd: None,
            home,
        };
        bfdd.start_bfdd()?;
        Ok(bfdd)
    }

    /// (Re)starts bfdd alone (after [`Bfdd::kill_bfdd`]).
    pub fn start_bfdd(&mut self) -> anyhow::Result<()> {
        let ctl = self.home.path("bfdd.sock").display().to_string();
        self.bfdd = Some(self.home.spawn(BFDD, "bfdd", &["--bfdctl", &ctl])?);
        poll_until(
            "bfdd to answer vtysh",
            Duration::from_secs(10),
            POLL,
            || self.peer_status().map_err(|e| format!("{e:#}")),
        )?;
        self.home.wait_clients(&["bfd"])
    }

    /// Runs vtysh commands against this bfdd/zebra.
    pub fn vtysh(&self, commands: &[&str]) -> anyhow::Result<String> {
        self.home.vtysh(commands)
    }

    /// `show bfd peers json`, the entry of our peer.
    pub fn peer_status(&self) -> anyhow::Result<Value> {
        let text = self.vtysh(&["show bfd peers json"])?;
        let all: Value =
            serde_json::from_str(&text).with_context(|| format!("vtysh printed {text:?}"))?;
        all.as_array()
            .and_then(|a| a.iter().find(|p| p["peer"] == self.peer.as_str()))
            .cloned()
            .with_context(|| format!("no peer {} in {all}", self.peer))
    }

    /// The peer's state: `up`, `down`, `init`, `shutdown`.
    pub fn state(&self) -> anyhow::Result<String> {
        Ok(self.peer_status()?["status"]
            .as_str()
            .unwrap_or("?")
            .to_owned())
    }

    /// Polls until the peer's state is `state`.
    pub fn wait_state(&self, state: &str, timeout: Duration) -> anyhow::Result<Value> {
        poll_until(
            &format!("bfdd peer {} to be {state}", self.peer),
            timeout,
            POLL,
            || match self.peer_status() {
                Ok(p) if p["status"] == state => Ok(p),
                Ok(p) => Err(p.to_string()),
                Err(e) => Err(format!("{e:#}")),
            },
        )
        .with_context(|| format!("bfdd logged:\n{}", self.logs()))
    }

    /// What bfdd logged.
    pub fn logs(&self) -> String {
        self.bfdd.as_ref().map(Proc::stdout).unwrap_or_default()
    }

    /// SIGKILLs bfdd (zebra stays): a crashed peer, which sends nothing more.
    pub fn kill_bfdd(&mut self) -> anyhow::Result<()> {
        if let Some(mut proc) = self.bfdd.take() {
            proc.signal(libc::SIGKILL)?;
            proc.wait_timeout(Duration::from_secs(5))?;
        }
        Ok(())
    }
}

/// Whether FRR's zebra and bfdd are installed.
pub fn available() -> bool {
    std::path::Path::new(ZEBRA).exists() && std::path::Path::new(BFDD).exists()
}
