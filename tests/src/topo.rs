//! Topology builders (veth pairs, a bridged LAN) and interface helpers.
//!
//! Everything is done with `ip -n NAME`, as an operator would, and only ever inside the
//! namespaces given: veth pairs are created in their namespaces directly, so no
//! interface, not even a temporary one, appears in the host's namespace.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::netns::Netns;
use crate::wait::poll_until;

/// How long a freshly set-up veth may take to report carrier.
const LINK_UP_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects `a` and `b` with a veth pair: `a_if` in `a`, `b_if` in `b`, both up, and
/// returns once both ends report `operstate UP`. Interface names are at most 15 bytes.
pub fn veth_between(a: &Netns, a_if: &str, b: &Netns, b_if: &str) -> anyhow::Result<()> {
    check_ifname(a_if)?;
    check_ifname(b_if)?;
    a.ip(&[
        "link",
        "add",
        a_if,
        "type",
        "veth",
        "peer",
        "name",
        b_if,
        "netns",
        b.name(),
    ])
    .with_context(|| format!("veth {}:{a_if} <-> {}:{b_if}", a.name(), b.name()))?;
    link_up(a, a_if)?;
    link_up(b, b_if)?;
    wait_operstate_up(a, a_if)?;
    wait_operstate_up(b, b_if)?;
    Ok(())
}

/// A LAN: a "switch" namespace holding bridge `br0`, and member namespaces whose `eth0`
/// is plugged into it (switch side `p<i>`). Everything is up; no addresses are set.
///
/// STP is off (ports forward at once) and multicast snooping is off (VRRP adverts to
/// 224.0.0.18 / ff02::12 reach every member, like on a dumb switch).
#[derive(Debug)]
pub struct Lan {
    // Members first: fields drop in declaration order, and unplugging the members before
    // the switch goes away keeps teardown tidy (either order is safe).
    members: Vec<Netns>,
    switch: Netns,
}

/// Name of the bridge inside a [`Lan`]'s switch namespace.
pub const LAN_BRIDGE: &str = "br0";

impl Lan {
    /// Builds a LAN of `n_members` members; namespaces are tagged `<tag>_sw` and
    /// `<tag><i>` (i from 0).
    pub fn new(tag: &str, n_members: usize) -> anyhow::Result<Lan> {
        Lan::build(tag, n_members, false)
    }

    /// [`Lan::new`] for IPv6 tests: IPv6 is on and duplicate address detection off in
    /// every namespace before its interfaces exist, so link-local (and test) addresses
    /// are usable at once; returns once every member's `eth0` has its link-local
    /// address ([`link_local`]).
    pub fn new_ipv6(tag: &str, n_members: usize) -> anyhow::Result<Lan> {
        let lan = Lan::build(tag, n_members, true)?;
        for member in &lan.members {
            link_local(member, "eth0")?;
        }
        Ok(lan)
    }

    fn build(tag: &str, n_members: usize, ipv6: bool) -> anyhow::Result<Lan> {
        let prepare = |ns: &Netns| -> anyhow::Result<()> {
            if ipv6 {
                for conf in ["all", "default"] {
                    ns.sysctl(&format!("net.ipv6.conf.{conf}.disable_ipv6"), "0")?;
                    ns.sysctl(&format!("net.ipv6.conf.{conf}.accept_dad"), "0")?;
                }
            }
            Ok(())
        };
        let switch = Netns::new(&format!("{tag}_sw"))?;
        prepare(&switch)?;
        // The lab's switch forwards frames as a switch does. With br_netfilter loaded
        // (as on this machine and on Docker hosts) a bridge hands every IPv4, IPv6 and
        // ARP frame to netfilter: that drops the malformed IP packets a test sends on
        // purpose, and costs CPU per frame that `bench lb` would charge to whichever
        // balancer adds bridge passes (direct routing adds one per client packet).
        if std::path::Path::new("/proc/sys/net/bridge").exists() {
            for table in ["iptables", "ip6tables", "arptables"] {
                switch.sysctl(&format!("net.bridge.bridge-nf-call-{table}"), "0")?;
            }
        }
        switch.ip(&[
            "link",
            "add",
            LAN_BRIDGE,
            "type",
            "bridge",
            "stp_state",
            "0",
            "mcast_snooping",
            "0",
        ])?;
        link_up(&switch, LAN_BRIDGE)?;
        let mut lan = Lan {
            members: Vec::with_capacity(n_members),
            switch,
        };
        for i in 0..n_members {
            let member = Netns::new(&format!("{tag}{i}"))?;
            prepare(&member)?;
            let port = Lan::port_name(i);
            veth_between(&member, "eth0", &lan.switch, &port)?;
            lan.switch
                .ip(&["link", "set", &port, "master", LAN_BRIDGE])?;
            lan.members.push(member);
        }
        wait_operstate_up(&lan.switch, LAN_BRIDGE)?;
        Ok(lan)
    }

    /// The switch namespace (holds the bridge and the ports).
    pub fn switch(&self) -> &Netns {
        &self.switch
    }

    /// Member `i`. Panics if out of range.
    pub fn member(&self, i: usize) -> &Netns {
        &self.members[i]
    }

    /// All members, in order.
    pub fn members(&self) -> &[Netns] {
        &self.members
    }

    /// Switch-side port of member `i`; pull it down to "unplug the cable" while the
    /// member's own `eth0` stays administratively up.
    pub fn port_name(i: usize) -> String {
        format!("p{i}")
    }
}

/// Adds an address in CIDR form (`192.0.2.1/24`, `2001:db8::1/64`) to `dev`.
pub fn add_addr(ns: &Netns, dev: &str, cidr: &str) -> anyhow::Result<()> {
    ns.ip(&["addr", "add", cidr, "dev", dev])?;
    Ok(())
}

/// Addresses on `dev` in CIDR form, in the kernel's order (IPv4 and IPv6, all scopes).
pub fn addrs(ns: &Netns, dev: &str) -> anyhow::Result<Vec<String>> {
    let info = ip_json(ns, &["addr", "show", "dev", dev])?;
    let mut out = Vec::new();
    for a in info["addr_info"].as_array().into_iter().flatten() {
        let (Some(local), Some(len)) = (a["local"].as_str(), a["prefixlen"].as_u64()) else {
            continue;
        };
        out.push(format!("{local}/{len}"));
    }
    Ok(out)
}

/// The IPv6 link-local address of `dev` (no scope suffix), waiting up to
/// [`LINK_UP_TIMEOUT`] until it exists and duplicate address detection is over.
pub fn link_local(ns: &Netns, dev: &str) -> anyhow::Result<String> {
    poll_until(
        &format!(
            "a non-tentative link-local address on {dev} in {}",
            ns.name()
        ),
        LINK_UP_TIMEOUT,
        Duration::from_millis(20),
        || -> Result<String, String> {
            let info = ip_json(ns, &["-6", "addr", "show", "dev", dev, "scope", "link"])
                .map_err(|e| format!("{e:#}"))?;
            info["addr_info"]
                .as_array()
                .into_iter()
                .flatten()
                // `ip -j` leaves an empty object for each filtered-out address.
                .filter(|a| a["tentative"].as_bool() != Some(true))
                .find_map(|a| a["local"].as_str())
                .map(str::to_owned)
                .ok_or_else(|| format!("{}", info["addr_info"]))
        },
    )
}

/// The MAC address of `dev`.
pub fn mac_of(ns: &Netns, dev: &str) -> anyhow::Result<[u8; 6]> {
    let info = ip_json(ns, &["link", "show", "dev", dev])?;
    let text = info["address"]
        .as_str()
        .with_context(|| format!("{dev} has no address"))?;
    parse_mac(text)
}

/// The interface index of `dev` inside `ns`.
pub fn ifindex_of(ns: &Netns, dev: &str) -> anyhow::Result<u32> {
    let info = ip_json(ns, &["link", "show", "dev", dev])?;
    let index = info["ifindex"]
        .as_u64()
        .with_context(|| format!("{dev} has no ifindex"))?;
    Ok(u32::try_from(index)?)
}

/// `ip link set dev up`.
pub fn link_up(ns: &Netns, dev: &str) -> anyhow::Result<()> {
    ns.ip(&["link", "set", "dev", dev, "up"])?;
    Ok(())
}

/// `ip link set dev down`.
pub fn link_down(ns: &Netns, dev: &str) -> anyhow::Result<()> {
    ns.ip(&["link", "set", "dev", dev, "down"])?;
    Ok(())
}

/// The kernel's operstate of `dev` (`UP`, `DOWN`, `LOWERLAYERDOWN`, ...).
pub fn operstate(ns: &Netns, dev: &str) -> anyhow::Result<String> {
    let info = ip_json(ns, &["link", "show", "dev", dev])?;
    Ok(info["operstate"].as_str().unwrap_or("UNKNOWN").to_owned())
}

/// The id of the XDP program attached to `dev` (`ip -d link show`), if any.
pub fn xdp_prog_id(ns: &Netns, dev: &str) -> anyhow::Result<Option<u64>> {
    let info = ip_json(ns, &["-d", "link", "show", "dev", dev])?;
    let xdp = &info["xdp"];
    // One program: {"mode": .., "prog": {"id": ..}}; several modes: {"attached": [..]}.
    let single = xdp["prog"]["id"].as_u64();
    let multi = xdp["attached"]
        .as_array()
        .and_then(|all| all.iter().find_map(|a| a["prog"]["id"].as_u64()));
    Ok(single.or(multi))
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(text: &str) -> anyhow::Result<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let part = parts
            .next()
            .with_context(|| format!("MAC {text:?} too short"))?;
        *byte = u8::from_str_radix(part, 16).with_context(|| format!("bad MAC {text:?}"))?;
    }
    if parts.next().is_some() {
        bail!("MAC {text:?} too long");
    }
    Ok(mac)
}

fn wait_operstate_up(ns: &Netns, dev: &str) -> anyhow::Result<()> {
    poll_until(
        &format!("{dev} in {} to be UP", ns.name()),
        LINK_UP_TIMEOUT,
        Duration::from_millis(20),
        || match operstate(ns, dev) {
            Ok(state) if state == "UP" => Ok(()),
            Ok(state) => Err(state),
            Err(e) => Err(format!("{e:#}")),
        },
    )
}

/// The single object `ip -j <args>` prints for one device.
fn ip_json(ns: &Netns, args: &[&str]) -> anyhow::Result<Value> {
    let mut full = vec!["-j"];
    full.extend_from_slice(args);
    let text = ns.ip(&full)?;
    let value: Value =
        serde_json::from_str(&text).with_context(|| format!("ip -j {args:?} printed {text:?}"))?;
    match value {
        Value::Array(mut items) if items.len() == 1 => Ok(items.remove(0)),
        other => bail!("ip -j {args:?}: expected one device, got {other}"),
    }
}

fn check_ifname(name: &str) -> anyhow::Result<()> {
    // IFNAMSIZ is 16 including the NUL.
    if name.is_empty() || name.len() > 15 {
        bail!("interface name {name:?} must be 1 to 15 bytes");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_mac_roundtrip_and_errors() {
        assert_eq!(parse_mac("02:00:00:00:00:01").unwrap(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(
            parse_mac("AA:bb:cc:dd:ee:ff").unwrap(),
            [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]
        );
        assert!(parse_mac("02:00:00:00:00").is_err());
        assert!(parse_mac("02:00:00:00:00:01:02").is_err());
        assert!(parse_mac("02:00:00:00:00:zz").is_err());
    }
}
