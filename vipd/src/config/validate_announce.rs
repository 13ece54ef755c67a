//! Validation of the L3 announcement keys (`announce*`) of instances and virtual
//! servers.

use super::super::announce::{Announce, AnnounceMode, Community, MAX_PREPEND, StandbyPath};
use super::super::draft::DraftAnnounce;
use super::super::{ErrorKind, Location};
use super::Checker;

/// Where an announcement is configured: a virtual server cannot follow an election.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AnnounceOwner {
    Instance,
    VirtualServer,
}

impl Checker {
    /// The announcement of an instance or virtual server; `Some(None)` when not
    /// announced, `None` after an error. `key` makes the key path of a field, `at` is
    /// where the owner's block starts.
    pub(super) fn announce(
        &mut self,
        draft: &DraftAnnounce,
        owner: AnnounceOwner,
        at: Option<Location>,
        key: &dyn Fn(&str) -> String,
    ) -> Option<Option<Announce>> {
        let errors_before = self.errors.len();
        let announced = match &draft.announce {
            None => false,
            Some(word) => self.keyword(
                Some(word),
                &key("announce"),
                &[("bgp", true), ("none", false)],
                "bgp, none",
                false,
            )?,
        };
        if !announced {
            let written = [
                ("announce_mode", draft.mode.as_ref().map(|m| m.at)),
                (
                    "announce_standby_med",
                    draft.standby_med.as_ref().map(|m| m.at),
                ),
                (
                    "announce_standby_prepend",
                    draft.standby_prepend.as_ref().map(|m| m.at),
                ),
                (
                    "announce_communities",
                    draft.communities.first().map(|c| c.at),
                ),
            ];
            for (name, place) in written {
                if let Some(place) = place {
                    self.error(
                        place,
                        &key(name),
                        ErrorKind::AnnounceKeyWithoutAnnounce { key: name },
                    );
                }
            }
            return (self.errors.len() == errors_before).then_some(None);
        }
        let mode = self.keyword(
            draft.mode.as_ref(),
            &key("announce_mode"),
            &[
                ("active-active", AnnounceMode::ActiveActive),
                ("active-standby", AnnounceMode::ActiveStandby),
            ],
            "active-active, active-standby",
            AnnounceMode::ActiveActive,
        );
        if owner == AnnounceOwner::VirtualServer && mode == Some(AnnounceMode::ActiveStandby) {
            let place = draft.mode.as_ref().and_then(|m| m.at).or(at);
            self.error(
                place,
                &key("announce_mode"),
                ErrorKind::VirtualServerActiveStandby,
            );
        }
        let med = self.int(
            draft.standby_med.as_ref(),
            &key("announce_standby_med"),
            (0, i64::from(u32::MAX)),
            None::<u32>,
        );
        let prepend = self.int(
            draft.standby_prepend.as_ref(),
            &key("announce_standby_prepend"),
            (0, i64::from(MAX_PREPEND)),
            None::<u8>,
        );
        if mode == Some(AnnounceMode::ActiveActive) {
            for (name, value) in [
                ("announce_standby_med", draft.standby_med.as_ref()),
                ("announce_standby_prepend", draft.standby_prepend.as_ref()),
            ] {
                if let Some(value) = value {
                    self.error(
                        value.at,
                        &key(name),
                        ErrorKind::StandbyPathNotActiveStandby { key: name },
                    );
                }
            }
        }
        let mut communities = Vec::new();
        for text in &draft.communities {
            match Community::parse(&text.value) {
                Some(c) if !communities.contains(&c) => communities.push(c),
                Some(_) => {}
                None => self.error(
                    text.at,
                    &key("announce_communities"),
                    ErrorKind::BadCommunity {
                        text: text.value.clone(),
                    },
                ),
            }
        }
        if self.errors.len() != errors_before {
            return None;
        }
        let standby =
            (draft.standby_med.is_some() || draft.standby_prepend.is_some()).then(|| StandbyPath {
                med: med.unwrap_or(0),
                prepend: prepend.unwrap_or(0),
            });
        Some(Some(Announce {
            mode: mode?,
            standby,
            communities,
        }))
    }
}
