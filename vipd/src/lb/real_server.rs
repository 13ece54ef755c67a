//! `vipd real-server`: prepares a Linux host as a direct-routing real server, and undoes
//! it on stop.
//!
//! A DR balancer forwards the client's packet unchanged (only the MAC is rewritten), so
//! the real server must accept packets for the VIP without claiming it on the network:
//!
//! - each VIP on `lo` as a /32 (/128), so the kernel accepts and answers from it;
//! - `arp_ignore=1` (answer ARP only for addresses on the interface asked) and
//!   `arp_announce=2` (never use the VIP as the source of our own ARP requests), on
//!   `all` and `lo`, so the server never answers or announces the VIP — otherwise
//!   clients and the router would send VIP traffic straight to it, past the balancer.
//!   IPv6 needs nothing: Linux answers neighbour solicitations only for addresses on the
//!   interface they arrive on.
//!
//! What was changed is remembered: at SIGTERM/SIGINT the addresses vipd added are
//! removed and each sysctl gets its previous value back.

use std::fmt;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};

use crate::io::netlink::Netlink;

/// The loopback interface the VIPs go on.
pub const LOOPBACK: &str = "lo";

/// The sysctls a DR real server needs, with their values (only when it has an IPv4 VIP).
pub const ARP_SYSCTLS: [(&str, &str); 4] = [
    ("net.ipv4.conf.all.arp_ignore", "1"),
    ("net.ipv4.conf.all.arp_announce", "2"),
    ("net.ipv4.conf.lo.arp_ignore", "1"),
    ("net.ipv4.conf.lo.arp_announce", "2"),
];

/// One change `vipd real-server` makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Add `address/prefix_len` to `lo`.
    AddAddress {
        /// The VIP.
        address: IpAddr,
        /// 32 or 128.
        prefix_len: u8,
    },
    /// Set a sysctl.
    Sysctl {
        /// Dotted name, `net.ipv4.conf.all.arp_ignore`.
        key: &'static str,
        /// The value to write.
        value: &'static str,
    },
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::AddAddress {
                address,
                prefix_len,
            } => write!(f, "ip address add {address}/{prefix_len} dev {LOOPBACK}"),
            Step::Sysctl { key, value } => write!(f, "sysctl -w {key}={value}"),
        }
    }
}

/// What preparing a real server for `vips` takes, in order (duplicates dropped).
pub fn plan(vips: &[IpAddr]) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for &address in vips {
        let prefix_len = if address.is_ipv4() { 32 } else { 128 };
        let step = Step::AddAddress {
            address,
            prefix_len,
        };
        if !steps.contains(&step) {
            steps.push(step);
        }
    }
    if vips.iter().any(IpAddr::is_ipv4) {
        steps.extend(
            ARP_SYSCTLS
                .iter()
                .map(|&(key, value)| Step::Sysctl { key, value }),
        );
    }
    steps
}

/// `/proc/sys/...` of a dotted sysctl name.
fn sysctl_path(key: &str) -> PathBuf {
    PathBuf::from("/proc/sys").join(key.replace('.', "/"))
}

/// What was changed, to undo it.
#[derive(Debug, Default)]
struct Undo {
    /// Addresses vipd added (ones already there are left alone).
    addresses: Vec<(IpAddr, u8)>,
    /// Sysctls vipd changed, with their previous values.
    sysctls: Vec<(&'static str, String)>,
}

/// `vipd real-server`: apply [`plan`], print `ready`, wait for SIGTERM/SIGINT, undo,
/// print `restored`. With `dry_run`, print the steps and return.
pub async fn run(vips: &[IpAddr], dry_run: bool) -> anyhow::Result<()> {
    let steps = plan(vips);
    if dry_run {
        let mut out = std::io::stdout().lock();
        for step in &steps {
            writeln!(out, "{step}")?;
        }
        writeln!(
            out,
            "(dry run: nothing changed; on stop, vipd undoes the above)"
        )?;
        return Ok(());
    }
    let mut sigterm = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let netlink = Netlink::connect()?;
    let lo = netlink
        .link_index(LOOPBACK)
        .await
        .context("finding the loopback interface")?;
    let mut undo = Undo::default();
    let applied = apply(&steps, &netlink, lo, &mut undo).await;
    if let Err(e) = applied {
        // Leave the host as it was, then say why.
        restore(&netlink, lo, &undo).await;
        return Err(e);
    }
    println!(
        "ready: {} VIP(s) on {LOOPBACK}, ARP sysctls set",
        vips.len()
    );
    tokio::select! {
        _ = sigterm.recv() => {}
        _ = sigint.recv() => {}
    }
    let ok = restore(&netlink, lo, &undo).await;
    println!("restored");
    anyhow::ensure!(ok, "some changes could not be undone (see the log)");
    Ok(())
}

async fn apply(steps: &[Step], netlink: &Netlink, lo: u32, undo: &mut Undo) -> anyhow::Result<()> {
    let present: Vec<IpAddr> = netlink
        .addresses(lo)
        .await?
        .iter()
        .map(|a| a.address)
        .collect();
    for step in steps {
        match *step {
            Step::AddAddress {
                address,
                prefix_len,
            } => {
                if present.contains(&address) {
                    tracing::info!(%address, "already on {LOOPBACK}; left as it is");
                    continue;
                }
                netlink
                    .add_address(lo, address, prefix_len, None)
                    .await
                    .with_context(|| format!("adding {address}/{prefix_len} to {LOOPBACK}"))?;
                undo.addresses.push((address, prefix_len));
                tracing::info!(%address, "added to {LOOPBACK}");
            }
            Step::Sysctl { key, value } => {
                let path = sysctl_path(key);
                let previous = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let previous = previous.trim().to_owned();
                if previous == value {
                    continue;
                }
                std::fs::write(&path, value).with_context(|| format!("setting {key} = {value}"))?;
                tracing::info!(key, value, previous = %previous, "sysctl set");
                undo.sysctls.push((key, previous));
            }
        }
    }
    Ok(())
}

/// Undoes what was done, in reverse order; `false` if something could not be undone
/// (logged).
async fn restore(netlink: &Netlink, lo: u32, undo: &Undo) -> bool {
    let mut ok = true;
    for (key, previous) in undo.sysctls.iter().rev() {
        if let Err(e) = std::fs::write(sysctl_path(key), previous) {
            tracing::error!(key, previous = %previous, error = %e, "cannot restore sysctl");
            ok = false;
        }
    }
    for &(address, prefix_len) in undo.addresses.iter().rev() {
        if let Err(e) = netlink.del_address(lo, address, prefix_len).await {
            tracing::error!(%address, error = %e, "cannot remove the VIP from {LOOPBACK}");
            ok = false;
        }
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ipv4_vips_get_host_routes_and_the_arp_sysctls() {
        let steps = plan(&[ip("192.0.2.100"), ip("2001:db8::100"), ip("192.0.2.100")]);
        let shown: Vec<String> = steps.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "ip address add 192.0.2.100/32 dev lo",
                "ip address add 2001:db8::100/128 dev lo",
                "sysctl -w net.ipv4.conf.all.arp_ignore=1",
                "sysctl -w net.ipv4.conf.all.arp_announce=2",
                "sysctl -w net.ipv4.conf.lo.arp_ignore=1",
                "sysctl -w net.ipv4.conf.lo.arp_announce=2",
            ]
        );
    }

    #[test]
    fn ipv6_only_needs_no_sysctl() {
        assert_eq!(
            plan(&[ip("2001:db8::100")]),
            [Step::AddAddress {
                address: ip("2001:db8::100"),
                prefix_len: 128
            }]
        );
        assert_eq!(
            sysctl_path("net.ipv4.conf.lo.arp_ignore"),
            PathBuf::from("/proc/sys/net/ipv4/conf/lo/arp_ignore")
        );
    }
}
