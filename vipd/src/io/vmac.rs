//! Virtual MAC interfaces (keepalived `use_vmac`): a macvlan on an instance's interface
//! with the virtual router MAC of RFC 9568 §7.3, which carries the VIPs.
//!
//! Clients then resolve a VIP to the same MAC whichever router is Active, so a failover
//! moves only the switches' MAC tables (the new Active router's gratuitous ARP, sent from
//! the virtual MAC, teaches them) and no client's ARP cache goes stale.
//!
//! The macvlan is created when the instance is prepared, up from then on, and deleted
//! when vipd stops. It is in bridge mode, not keepalived's private mode: in private
//! mode the kernel delivers a multicast frame whose source MAC is a local macvlan's to
//! that macvlan alone, and the other router's adverts come from the very same virtual
//! MAC, so the parent, where vipd listens for adverts, would not hear them. Per-interface sysctls of the daemon's network namespace make the
//! kernel answer for the VIPs from the macvlan only, as keepalived's do
//! (`vrrp_if_config.c`):
//!
//! | where | sysctl | why |
//! |---|---|---|
//! | macvlan | `ipv4 arp_ignore=1` | answer ARP only for addresses on the macvlan (the VIPs), never for the parent's own |
//! | macvlan | `ipv4 accept_local=1` | accept packets from an address of this host: the parent's adverts and another instance's VMAC traffic |
//! | macvlan | `ipv4 rp_filter=0` | the macvlan holds no address of the sources it hears |
//! | macvlan | `ipv6 disable_ipv6=1` (IPv4 instances) | no link-local address: both routers' macvlans share one MAC, so its DAD, MLD and router solicitations would make the backup claim the MAC on the switch |
//! | macvlan | `ipv6 addr_gen_mode=1` (IPv6 instances) | IPv6 on for the VIPs, but no link-local address of its own, for the same reason; the parent's link-local address is the source of adverts and neighbour advertisements |
//! | parent | `ipv4 arp_ignore=1` | the parent no longer answers ARP for the VIPs with its own MAC (Linux answers for any local address by default) |
//! | parent | `ipv4 arp_filter=1` | the parent answers only where the reply would be routed out of it |
//! | parent | `ipv4 arp_announce=2` | the parent's own ARP requests (for a client the VIP answers) name the parent's address, not the VIP: Linux takes the packet's source by default, and a client asked "who has me? tell VIP" from the parent's MAC files the VIP under that MAC (vipd's addition; keepalived leaves it) |
//!
//! The parent's previous values are restored when its last macvlan goes. The global
//! `all.rp_filter` is left alone (keepalived lowers it): the effective value is the
//! higher of `all` and the interface's, so a host with `all.rp_filter=1` keeps strict
//! reverse-path filtering and may drop what the macvlan receives; vipd logs a warning.

use std::collections::HashMap;
use std::path::PathBuf;

use super::netlink::{LinkDetails, Netlink, NetlinkError};

/// Errors creating or configuring a virtual MAC interface.
#[derive(Debug, thiserror::Error)]
pub enum VmacError {
    /// A netlink request failed.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// An interface of that name exists and is not our macvlan.
    #[error(
        "interface {name:?} exists and is not a macvlan on {parent} with MAC {mac}: rename the VMAC (use_vmac NAME) or remove the interface"
    )]
    Occupied {
        /// The VMAC name.
        name: String,
        /// The parent it should sit on.
        parent: String,
        /// The MAC it should have.
        mac: String,
    },
    /// A sysctl could not be read or written.
    #[error("sysctl {}: {source}", path.display())]
    Sysctl {
        /// The /proc/sys file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// What a VMAC is to be.
#[derive(Debug, Clone, Copy)]
pub struct VmacSpec<'a> {
    /// The macvlan's name.
    pub name: &'a str,
    /// The instance's interface (the macvlan's parent).
    pub parent: &'a str,
    /// Its index.
    pub parent_index: u32,
    /// The virtual router MAC.
    pub mac: [u8; 6],
    /// Whether the instance is IPv4 (the macvlan then runs without IPv6).
    pub ipv4: bool,
}

/// One VMAC this daemon set up.
#[derive(Debug)]
struct VmacLink {
    index: u32,
    parent: String,
}

/// A parent's sysctls as they were before its first VMAC, and how many VMACs it has.
#[derive(Debug)]
struct ParentState {
    users: usize,
    saved: Vec<(PathBuf, String)>,
}

/// The VMACs this daemon manages, by name.
#[derive(Debug, Default)]
pub struct Vmacs {
    links: HashMap<String, VmacLink>,
    parents: HashMap<String, ParentState>,
}

fn sysctl_path(family: &str, interface: &str, key: &str) -> PathBuf {
    // /proc/sys takes the interface name as it is (a dot in `vrrp.51` is not a
    // separator there, unlike in sysctl(8) arguments).
    ["/proc/sys/net", family, "conf", interface, key]
        .iter()
        .collect()
}

/// Writes `value` to the sysctl file at `path`; returns what it held.
fn write_sysctl(path: PathBuf, value: &str) -> Result<String, VmacError> {
    let previous = std::fs::read_to_string(&path)
        .map_err(|source| VmacError::Sysctl {
            path: path.clone(),
            source,
        })?
        .trim()
        .to_owned();
    if previous != value {
        std::fs::write(&path, value).map_err(|source| VmacError::Sysctl { path, source })?;
    }
    Ok(previous)
}

fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|octet| format!("{octet:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Whether an existing link is the VMAC we would create (left by a run that died).
fn is_ours(details: &LinkDetails, spec: &VmacSpec<'_>) -> bool {
    details.kind.as_deref() == Some("macvlan")
        && details.parent == Some(spec.parent_index)
        && details.address.as_deref() == Some(&spec.mac[..])
}

impl Vmacs {
    /// Creates (or, left by an earlier run, adopts) the VMAC, sets its and its parent's
    /// sysctls and brings it up; returns its index. Asking again for a VMAC already
    /// set up returns its index.
    pub async fn ensure(
        &mut self,
        netlink: &Netlink,
        spec: VmacSpec<'_>,
    ) -> Result<u32, VmacError> {
        if let Some(link) = self.links.get(spec.name) {
            return Ok(link.index);
        }
        let occupied = || VmacError::Occupied {
            name: spec.name.to_owned(),
            parent: spec.parent.to_owned(),
            mac: mac_text(spec.mac),
        };
        let index = match netlink.link_details(spec.name).await {
            Ok(details) if is_ours(&details, &spec) => {
                tracing::warn!(
                    vmac = spec.name,
                    "adopting the VMAC an earlier run left behind"
                );
                details.index
            }
            Ok(_) => return Err(occupied()),
            Err(NetlinkError::NoSuchInterface(_)) => {
                netlink
                    .add_macvlan(spec.name, spec.parent_index, spec.mac)
                    .await?
            }
            Err(e) => return Err(e.into()),
        };
        // Recorded before the sysctls, so a failure below still deletes it on stop.
        self.links.insert(
            spec.name.to_owned(),
            VmacLink {
                index,
                parent: spec.parent.to_owned(),
            },
        );
        // Before the link goes up, so no link-local address is ever configured.
        if spec.ipv4 {
            write_sysctl(sysctl_path("ipv6", spec.name, "disable_ipv6"), "1")?;
        } else {
            // IPv6 on, but no address of its own (IN6_ADDR_GEN_MODE_NONE): the EUI-64
            // link-local of the shared MAC would be the same on every router. Adverts
            // and neighbour advertisements use the parent's link-local address.
            write_sysctl(sysctl_path("ipv6", spec.name, "addr_gen_mode"), "1")?;
        }
        for (key, value) in [
            ("arp_ignore", "1"),
            ("accept_local", "1"),
            ("rp_filter", "0"),
        ] {
            write_sysctl(sysctl_path("ipv4", spec.name, key), value)?;
        }
        self.configure_parent(spec.parent)?;
        netlink.set_link_up(index).await?;
        if std::fs::read_to_string(sysctl_path("ipv4", "all", "rp_filter"))
            .is_ok_and(|value| value.trim() != "0")
        {
            tracing::warn!(
                vmac = spec.name,
                "net.ipv4.conf.all.rp_filter is on: it overrides the VMAC's rp_filter=0, and the VMAC may drop what it receives"
            );
        }
        Ok(index)
    }

    fn configure_parent(&mut self, parent: &str) -> Result<(), VmacError> {
        if let Some(state) = self.parents.get_mut(parent) {
            state.users += 1;
            return Ok(());
        }
        let mut saved = Vec::new();
        for (key, value) in [
            ("arp_ignore", "1"),
            ("arp_filter", "1"),
            ("arp_announce", "2"),
        ] {
            let path = sysctl_path("ipv4", parent, key);
            let previous = write_sysctl(path.clone(), value)?;
            saved.push((path, previous));
        }
        self.parents
            .insert(parent.to_owned(), ParentState { users: 1, saved });
        Ok(())
    }

    /// The index of the VMAC called `name`, if this daemon set it up.
    pub fn index(&self, name: &str) -> Option<u32> {
        self.links.get(name).map(|link| link.index)
    }

    /// Deletes the VMAC called `name` and, when it was its parent's last, restores the
    /// parent's sysctls. Errors are logged: a stopping daemon has no one to tell.
    pub async fn remove(&mut self, netlink: &Netlink, name: &str) {
        let Some(link) = self.links.remove(name) else {
            return;
        };
        if let Err(e) = netlink.del_link(link.index).await {
            tracing::warn!(vmac = name, error = %e, "deleting the VMAC failed");
        }
        let last = self.parents.get_mut(&link.parent).is_some_and(|state| {
            state.users -= 1;
            state.users == 0
        });
        if last && let Some(state) = self.parents.remove(&link.parent) {
            for (path, previous) in state.saved {
                if let Err(e) = std::fs::write(&path, &previous) {
                    tracing::warn!(path = %path.display(), error = %e, "restoring a sysctl failed");
                }
            }
        }
    }

    /// Deletes every VMAC (see [`Vmacs::remove`]).
    pub async fn remove_all(&mut self, netlink: &Netlink) {
        let names: Vec<String> = self.links.keys().cloned().collect();
        for name in names {
            self.remove(netlink, &name).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_paths_keep_dotted_names_whole() {
        assert_eq!(
            sysctl_path("ipv4", "vrrp.51", "arp_ignore"),
            PathBuf::from("/proc/sys/net/ipv4/conf/vrrp.51/arp_ignore")
        );
    }

    #[test]
    fn only_a_macvlan_on_the_parent_with_the_mac_is_adopted() {
        let spec = VmacSpec {
            name: "vrrp.51",
            parent: "eth0",
            parent_index: 2,
            mac: [0, 0, 0x5e, 0, 1, 51],
            ipv4: true,
        };
        let ours = LinkDetails {
            name: "vrrp.51".into(),
            index: 9,
            kind: Some("macvlan".into()),
            address: Some(spec.mac.to_vec()),
            parent: Some(2),
        };
        assert!(is_ours(&ours, &spec));
        for other in [
            LinkDetails {
                kind: Some("veth".into()),
                ..ours.clone()
            },
            LinkDetails {
                parent: Some(3),
                ..ours.clone()
            },
            LinkDetails {
                address: Some(vec![0, 0, 0x5e, 0, 1, 52]),
                ..ours.clone()
            },
        ] {
            assert!(!is_ours(&other, &spec), "{other:?}");
        }
    }
}
