//! L3 mode in the driver: after each turn of the main loop, the routes that should be
//! announced ([`crate::proto::l3::desired`]) are compared with those that are, and the
//! difference is applied to the announcement devices ([`crate::io::l3::Announcer`]).

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::*;
use crate::config::announce::Announce;
use crate::io::l3::{Announcer, L3Error};
use crate::proto::l3::{self, RouteChanges, RoutePath, Source, Status};

/// The announcement devices and what is announced on them.
pub(super) struct L3Runtime {
    announcer: Announcer,
    announced: BTreeMap<IpAddr, RoutePath>,
    /// Set at shutdown: everything is withdrawn whatever the states.
    stopping: bool,
}

impl L3Runtime {
    /// Creates the devices when `config` announces anything; `None` otherwise.
    pub(super) async fn start(
        config: &Config,
        netlink: &Netlink,
    ) -> Result<Option<L3Runtime>, L3Error> {
        let announces = config.instances.iter().any(|i| i.announce.is_some())
            || config.virtual_servers.iter().any(|v| v.announce.is_some());
        if !announces {
            return Ok(None);
        }
        let announcer = Announcer::open(netlink.clone()).await?;
        tracing::info!(
            primary = crate::io::l3::PRIMARY_DEVICE,
            standby = crate::io::l3::STANDBY_DEVICE,
            "L3 mode: announcing over BGP through the addresses of these devices"
        );
        Ok(Some(L3Runtime {
            announcer,
            announced: BTreeMap::new(),
            stopping: false,
        }))
    }

    /// The routes announced now, for status output.
    pub(super) fn announced(&self) -> &BTreeMap<IpAddr, RoutePath> {
        &self.announced
    }
}

impl Daemon {
    /// Whether any tracker of the instance reports failure (a weighted one too).
    fn trackers_failing(&self, index: usize) -> bool {
        let slot = &self.slots[index];
        let script_failing = slot
            .spec
            .track_scripts
            .iter()
            .any(|t| self.script_health.get(&t.name) == Some(&false));
        let link_down = slot.links.values().any(|link| !link.up);
        script_failing || link_down || self.own_health(index).fault.is_some()
    }

    /// Brings the announced routes in line with the instances' states and the virtual
    /// servers' health.
    pub(super) async fn sync_l3(&mut self) {
        let Some(l3) = &self.l3 else {
            return;
        };
        let stopping = l3.stopping;
        let mut owned: Vec<(Vec<IpAddr>, Announce, Status)> = Vec::new();
        for (index, slot) in self.slots.iter().enumerate() {
            let Some(announce) = &slot.spec.announce else {
                continue;
            };
            let status = if stopping || slot.retired {
                Status::Stopped
            } else {
                Status::Instance {
                    state: slot.core.state(),
                    trackers_failing: self.trackers_failing(index),
                }
            };
            let addresses = slot.spec.virtual_addresses.iter().map(|v| v.address);
            owned.push((addresses.collect(), announce.clone(), status));
        }
        if let Some(lb) = &self.lb {
            let health = lb.health();
            for (vs, service) in lb.services().iter().zip(health.services.iter()) {
                let Some(announce) = &vs.announce else {
                    continue;
                };
                let status = if stopping {
                    Status::Stopped
                } else {
                    Status::VirtualServer {
                        serving: service.quorum_up,
                    }
                };
                let mut addresses: Vec<IpAddr> = vs.addresses.iter().map(|a| a.ip()).collect();
                addresses.dedup();
                owned.push((addresses, announce.clone(), status));
            }
        }
        let desired = l3::desired(owned.iter().map(|(addresses, announce, status)| Source {
            addresses,
            announce,
            status: *status,
        }));
        let Some(l3) = &mut self.l3 else {
            return;
        };
        let changes = RouteChanges::between(&l3.announced, &desired);
        if changes.is_empty() {
            return;
        }
        // A failed change is retried at the next turn: logged at a limited rate.
        let mut failures: Vec<(IpAddr, RoutePath, &str, L3Error)> = Vec::new();
        for (address, path) in changes.withdraw {
            match l3.announcer.withdraw(address, path).await {
                Ok(()) => {
                    tracing::info!(%address, path = ?path, "L3: withdrawn");
                    l3.announced.remove(&address);
                }
                Err(e) => failures.push((address, path, "withdraw", e)),
            }
        }
        for (address, path) in changes.announce {
            match l3.announcer.announce(address, path).await {
                Ok(()) => {
                    tracing::info!(%address, path = ?path, "L3: announced");
                    l3.announced.insert(address, path);
                }
                Err(e) => failures.push((address, path, "announce", e)),
            }
        }
        for (address, path, change, error) in failures {
            let key = (address.to_string(), Repeated::L3Route);
            if let Verdict::Log { suppressed } = self.warnings.check(Instant::now(), key) {
                let what = Repeated::L3Route.message();
                tracing::error!(%address, path = ?path, change, %error, suppressed, "{what}");
            }
        }
    }

    /// Shutdown: withdraws every route now, before the hand-over.
    pub(super) async fn withdraw_l3(&mut self) {
        if let Some(l3) = &mut self.l3 {
            l3.stopping = true;
        }
        self.sync_l3().await;
    }
}
