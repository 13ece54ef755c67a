//! L3 mode: which of its addresses a node announces into the routing fabric, and how,
//! as pure functions of the instances' states and the services' health.
//!
//! No I/O, no clock. The driver describes each announcing instance or virtual server as
//! a [`Source`], asks [`desired`] for the routes that should be announced, and applies
//! [`RouteChanges::between`] the routes it has and those (docs/l3.md: each route is a
//! host address on a TAP device that FRR's bgpd redistributes, the primary and the
//! standby path on separate devices so a route-map can tell them apart).

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::action::State;
use crate::config::announce::{Announce, AnnounceMode};

/// Device whose host addresses are the primary path's routes (the FRR route-map matches
/// it by name).
pub const PRIMARY_DEVICE: &str = "vipd-l3";
/// Device whose host addresses are the standby path's routes.
pub const STANDBY_DEVICE: &str = "vipd-l3-standby";

/// Which path a route is announced as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RoutePath {
    /// The preferred path: every healthy node (active-active) or the master
    /// (active-standby).
    Primary,
    /// A backup's path in active-standby, made worse by MED and AS-path prepending
    /// (RFC 4271 §9.1.2.2) so the fabric uses it only once the master's is withdrawn.
    Standby,
}

/// What the driver knows of one announcing instance or virtual server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// A VRRP instance in `state`; `trackers_failing` when any of its tracked scripts,
    /// files or interfaces reports failure (a weighted one too: in active-active the
    /// weight has no election to lower, so failing is what withdraws the route).
    Instance {
        /// The instance's state.
        state: State,
        /// Whether a tracker reports failure.
        trackers_failing: bool,
    },
    /// A virtual server; `serving` when its pool can take traffic (quorum met).
    VirtualServer {
        /// Whether the pool meets its quorum.
        serving: bool,
    },
    /// Stopping (SIGTERM) or removed by a reload: nothing is announced.
    Stopped,
}

/// One announcing instance or virtual server.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// Its addresses (each announced as a /32 or /128).
    pub addresses: &'a [IpAddr],
    /// How it announces.
    pub announce: &'a Announce,
    /// Its current status.
    pub status: Status,
}

/// The path `source` announces its addresses as, if any.
pub fn path(announce: &Announce, status: Status) -> Option<RoutePath> {
    match (announce.mode, status) {
        (_, Status::Stopped) => None,
        (_, Status::VirtualServer { serving }) => serving.then_some(RoutePath::Primary),
        // A failing tracker withdraws in both modes: a node that knows it is unwell
        // must not attract traffic, not even as a standby.
        (
            _,
            Status::Instance {
                trackers_failing: true,
                ..
            },
        ) => None,
        // Active-active: the election decides nothing; running and healthy is enough.
        // Fault (link down, failed weight-0 tracker) and Initialize (not started,
        // stopped) withdraw.
        (AnnounceMode::ActiveActive, Status::Instance { state, .. }) => {
            matches!(state, State::Master | State::Backup).then_some(RoutePath::Primary)
        }
        // Active-standby: the master holds the addresses as in L2 VRRP (RFC 5798 §6.4.3),
        // so it announces them; a backup (§6.4.2) offers the standby path if configured.
        (AnnounceMode::ActiveStandby, Status::Instance { state, .. }) => match state {
            State::Master => Some(RoutePath::Primary),
            State::Backup => announce.standby.map(|_| RoutePath::Standby),
            State::Fault | State::Initialize => None,
        },
    }
}

/// The routes that should be announced: every address of every source that announces,
/// with its path. An address two sources announce is announced once, as the better
/// path (primary over standby).
pub fn desired<'a>(sources: impl IntoIterator<Item = Source<'a>>) -> BTreeMap<IpAddr, RoutePath> {
    let mut routes = BTreeMap::new();
    for source in sources {
        let Some(path) = path(source.announce, source.status) else {
            continue;
        };
        for &address in source.addresses {
            routes
                .entry(address)
                .and_modify(|p: &mut RoutePath| *p = (*p).min(path))
                .or_insert(path);
        }
    }
    routes
}

/// What to change to go from the routes announced to those desired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteChanges {
    /// Routes to withdraw, performed first.
    pub withdraw: Vec<(IpAddr, RoutePath)>,
    /// Routes to announce, performed after. An address that moves between the standby
    /// and the primary path is briefly on neither rather than on both: FRR 8.4's zebra,
    /// given one /32 on two interfaces and then one of them removed, kept the removed
    /// one as the route (and bgpd kept announcing the standby path).
    pub announce: Vec<(IpAddr, RoutePath)>,
}

impl RouteChanges {
    /// The changes from `current` to `desired`.
    pub fn between(
        current: &BTreeMap<IpAddr, RoutePath>,
        desired: &BTreeMap<IpAddr, RoutePath>,
    ) -> Self {
        let announce = desired
            .iter()
            .filter(|(address, path)| current.get(address) != Some(path))
            .map(|(&address, &path)| (address, path))
            .collect();
        let withdraw = current
            .iter()
            .filter(|(address, path)| desired.get(address) != Some(path))
            .map(|(&address, &path)| (address, path))
            .collect();
        Self { withdraw, announce }
    }

    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.announce.is_empty() && self.withdraw.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::announce::StandbyPath;

    fn announce(mode: AnnounceMode, standby: bool) -> Announce {
        Announce {
            mode,
            standby: standby.then_some(StandbyPath {
                med: 100,
                prepend: 2,
            }),
            communities: Vec::new(),
        }
    }

    fn instance(state: State) -> Status {
        Status::Instance {
            state,
            trackers_failing: false,
        }
    }

    #[test]
    fn active_active_announces_while_running_and_healthy() {
        let a = announce(AnnounceMode::ActiveActive, false);
        assert_eq!(path(&a, instance(State::Master)), Some(RoutePath::Primary));
        assert_eq!(path(&a, instance(State::Backup)), Some(RoutePath::Primary));
        assert_eq!(path(&a, instance(State::Fault)), None);
        assert_eq!(path(&a, instance(State::Initialize)), None);
        assert_eq!(path(&a, Status::Stopped), None);
        let failing = Status::Instance {
            state: State::Backup,
            trackers_failing: true,
        };
        assert_eq!(path(&a, failing), None);
    }

    #[test]
    fn active_standby_follows_the_election() {
        let plain = announce(AnnounceMode::ActiveStandby, false);
        assert_eq!(
            path(&plain, instance(State::Master)),
            Some(RoutePath::Primary)
        );
        assert_eq!(path(&plain, instance(State::Backup)), None);
        assert_eq!(path(&plain, instance(State::Fault)), None);
        let with_standby = announce(AnnounceMode::ActiveStandby, true);
        assert_eq!(
            path(&with_standby, instance(State::Backup)),
            Some(RoutePath::Standby)
        );
        assert_eq!(path(&with_standby, instance(State::Fault)), None);
        let failing = Status::Instance {
            state: State::Master,
            trackers_failing: true,
        };
        assert_eq!(path(&with_standby, failing), None);
    }

    #[test]
    fn virtual_server_announces_while_serving() {
        let a = announce(AnnounceMode::ActiveActive, false);
        assert_eq!(
            path(&a, Status::VirtualServer { serving: true }),
            Some(RoutePath::Primary)
        );
        assert_eq!(path(&a, Status::VirtualServer { serving: false }), None);
    }

    #[test]
    fn shared_address_takes_the_better_path() {
        let vip: IpAddr = "203.0.113.10".parse().expect("address");
        let other: IpAddr = "203.0.113.11".parse().expect("address");
        let standby = announce(AnnounceMode::ActiveStandby, true);
        let active = announce(AnnounceMode::ActiveActive, false);
        let routes = desired([
            Source {
                addresses: &[vip, other],
                announce: &standby,
                status: instance(State::Backup),
            },
            Source {
                addresses: &[vip],
                announce: &active,
                status: Status::VirtualServer { serving: true },
            },
        ]);
        assert_eq!(routes.get(&vip), Some(&RoutePath::Primary));
        assert_eq!(routes.get(&other), Some(&RoutePath::Standby));
        assert_eq!(routes.len(), 2);
    }

    #[test]
    fn changes_withdraw_then_announce() {
        let a: IpAddr = "203.0.113.1".parse().expect("address");
        let b: IpAddr = "203.0.113.2".parse().expect("address");
        let c: IpAddr = "2001:db8::3".parse().expect("address");
        let current = BTreeMap::from([(a, RoutePath::Standby), (b, RoutePath::Primary)]);
        let desired = BTreeMap::from([(a, RoutePath::Primary), (c, RoutePath::Primary)]);
        let changes = RouteChanges::between(&current, &desired);
        assert_eq!(
            changes.announce,
            vec![(a, RoutePath::Primary), (c, RoutePath::Primary)]
        );
        assert_eq!(
            changes.withdraw,
            vec![(a, RoutePath::Standby), (b, RoutePath::Primary)]
        );
        assert!(RouteChanges::between(&desired, &desired).is_empty());
    }
}
