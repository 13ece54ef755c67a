//! Sync groups (keepalived's `vrrp_sync_group`; not in the RFC): instances that change
//! state together, so traffic never enters through one router and leaves through another.
//!
//! [`SyncGroup`] decides what the group does; the driver owns the members' cores and
//! feeds it their transitions and states:
//!
//! - **FAULT wins** ([`SyncGroup::member_faults`]): while any member has a fault of its
//!   own, every other member is faulted too.
//! - **MASTER / BACKUP together** ([`SyncGroup::on_member_changed`]): a member that
//!   becomes MASTER on its own takes the others to MASTER at once; a master that falls
//!   back to BACKUP takes the others' mastership with it. The members move through
//!   [`Input::Follow`], whose transitions carry [`Reason::SyncGroup`] and are not
//!   followed again.
//! - **Group state** ([`SyncGroup::update`]): FAULT if any member is in FAULT, MASTER when
//!   all are, BACKUP once all are running, STOP when all have stopped (shutdown, or the
//!   members removed by a reload; [`SyncGroup::stop`] for a group removed itself). Each
//!   change is returned once, for the group's notify commands.
//!
//! Pure: members are opaque indexes; no I/O, no clock.
//!
//! [`Input::Follow`]: super::instance::Input::Follow

use super::action::{FaultReason, Reason, State};
use super::instance::Follow;

/// A sync group's state, as its notify commands see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// Every member is master.
    Master,
    /// The members run, not all of them as master and none in fault.
    Backup,
    /// A member is in FAULT.
    Fault,
    /// Every member has stopped (after running).
    Stop,
}

/// One sync group: its members (by the driver's index) and the state last notified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncGroup {
    name: String,
    members: Vec<usize>,
    notified: Option<GroupState>,
}

impl SyncGroup {
    /// A group of `members` (the driver's instance indexes) that has notified nothing
    /// yet.
    pub fn new(name: impl Into<String>, members: Vec<usize>) -> Self {
        Self {
            name: name.into(),
            members,
            notified: None,
        }
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The members' indexes, in the order the slices of [`Self::member_faults`] and
    /// [`Self::update`] follow.
    pub fn members(&self) -> &[usize] {
        &self.members
    }

    /// Whether `member` belongs to the group.
    pub fn contains(&self, member: usize) -> bool {
        self.members.contains(&member)
    }

    /// The group state last returned by [`Self::update`] or [`Self::stop`].
    pub fn notified(&self) -> Option<GroupState> {
        self.notified
    }

    /// Takes over the notified state of the group this one replaces (a reload that
    /// keeps the group): its notify commands then run only on a real change.
    pub fn continue_from(&mut self, previous: &SyncGroup) {
        self.notified = previous.notified;
    }

    /// `member` moved `from` → `to` for `reason`: the other members that must follow,
    /// and where to. Transitions caused by the group itself are not followed again.
    #[must_use]
    pub fn on_member_changed(
        &self,
        member: usize,
        from: State,
        to: State,
        reason: &Reason,
    ) -> Vec<(usize, Follow)> {
        if !self.contains(member) || *reason == Reason::SyncGroup {
            return Vec::new();
        }
        let follow = match (from, to) {
            (_, State::Master) => Follow::Master,
            (State::Master, State::Backup) => Follow::Backup,
            // FAULT spreads through `member_faults`; stopping spreads nowhere.
            _ => return Vec::new(),
        };
        self.members
            .iter()
            .filter(|&&m| m != member)
            .map(|&m| (m, follow))
            .collect()
    }

    /// FAULT wins: given each member's own fault (in [`Self::members`] order), the
    /// fault each member must be in. A member without a fault of its own is faulted
    /// "by sync group NAME" while another member has one.
    #[must_use]
    pub fn member_faults(&self, own: &[Option<FaultReason>]) -> Vec<Option<FaultReason>> {
        (0..own.len())
            .map(|i| {
                own[i].clone().or_else(|| {
                    own.iter()
                        .enumerate()
                        .any(|(j, fault)| j != i && fault.is_some())
                        .then(|| FaultReason::Tracker {
                            name: format!("sync group {}", self.name),
                        })
                })
            })
            .collect()
    }

    /// The group state for the members' current `states` (in [`Self::members`] order),
    /// returned when it differs from the one last notified. While some members run and
    /// others have not started (or have stopped) the group keeps its state.
    #[must_use]
    pub fn update(&mut self, states: &[State]) -> Option<GroupState> {
        if states.is_empty() {
            return None;
        }
        let state = if states.contains(&State::Fault) {
            GroupState::Fault
        } else if states.iter().all(|s| *s == State::Master) {
            GroupState::Master
        } else if states.iter().all(|s| *s == State::Initialize) {
            // Only a group that ran can stop.
            self.notified?;
            GroupState::Stop
        } else if states.contains(&State::Initialize) {
            return None;
        } else {
            GroupState::Backup
        };
        self.set(state)
    }

    /// The group itself is gone (removed by a reload): STOP, when it ran and had not
    /// stopped yet.
    #[must_use]
    pub fn stop(&mut self) -> Option<GroupState> {
        self.notified?;
        self.set(GroupState::Stop)
    }

    fn set(&mut self, state: GroupState) -> Option<GroupState> {
        (self.notified != Some(state)).then(|| {
            self.notified = Some(state);
            state
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::proto::action::Action;
    use crate::proto::instance::{Input, Instance, InstanceConfig};

    fn group() -> SyncGroup {
        SyncGroup::new("G", vec![3, 5, 8])
    }

    fn by_group() -> Option<FaultReason> {
        Some(FaultReason::Tracker {
            name: "sync group G".into(),
        })
    }

    #[test]
    fn a_member_becoming_master_takes_the_others_along() {
        for from in [State::Backup, State::Initialize, State::Fault] {
            let follows = group().on_member_changed(5, from, State::Master, &Reason::MasterDown);
            assert_eq!(follows, vec![(3, Follow::Master), (8, Follow::Master)]);
        }
    }

    #[test]
    fn a_master_falling_back_takes_the_others_to_backup() {
        let follows = group().on_member_changed(
            3,
            State::Master,
            State::Backup,
            &Reason::HigherPriorityAdvert,
        );
        assert_eq!(follows, vec![(5, Follow::Backup), (8, Follow::Backup)]);
    }

    #[test]
    fn nothing_follows_group_moves_faults_stops_or_strangers() {
        let g = group();
        // A move the group caused is not followed again (no ping-pong).
        assert!(
            g.on_member_changed(3, State::Backup, State::Master, &Reason::SyncGroup)
                .is_empty()
        );
        let fault = Reason::Fault(FaultReason::LinkDown);
        assert!(
            g.on_member_changed(3, State::Master, State::Fault, &fault)
                .is_empty()
        );
        assert!(
            g.on_member_changed(3, State::Master, State::Initialize, &Reason::Shutdown)
                .is_empty()
        );
        assert!(
            g.on_member_changed(3, State::Fault, State::Backup, &Reason::FaultCleared)
                .is_empty()
        );
        assert!(
            g.on_member_changed(4, State::Backup, State::Master, &Reason::MasterDown)
                .is_empty()
        );
    }

    #[test]
    fn fault_wins() {
        let g = group();
        assert_eq!(g.member_faults(&[None, None, None]), vec![None, None, None]);
        let own = Some(FaultReason::LinkDown);
        assert_eq!(
            g.member_faults(&[None, own.clone(), None]),
            vec![by_group(), own.clone(), by_group()]
        );
        // A member's own fault is reported over the group's.
        let script = Some(FaultReason::Tracker { name: "chk".into() });
        assert_eq!(
            g.member_faults(&[script.clone(), own.clone(), None]),
            vec![script, own, by_group()]
        );
    }

    #[test]
    fn group_state_follows_its_members() {
        use State::{Backup, Fault, Initialize, Master};
        let mut g = group();
        // Not started yet: nothing to say.
        assert_eq!(g.update(&[Initialize, Initialize, Initialize]), None);
        assert_eq!(g.update(&[Backup, Initialize, Backup]), None);
        assert_eq!(
            g.update(&[Backup, Backup, Backup]),
            Some(GroupState::Backup)
        );
        assert_eq!(g.update(&[Backup, Backup, Backup]), None, "once per change");
        assert_eq!(g.update(&[Master, Backup, Backup]), None, "still BACKUP");
        assert_eq!(
            g.update(&[Master, Master, Master]),
            Some(GroupState::Master)
        );
        assert_eq!(g.update(&[Fault, Master, Master]), Some(GroupState::Fault));
        assert_eq!(g.update(&[Fault, Fault, Fault]), None);
        assert_eq!(
            g.update(&[Backup, Backup, Backup]),
            Some(GroupState::Backup)
        );
        assert_eq!(g.notified(), Some(GroupState::Backup));
        // Stopping one by one: STOP once all have stopped.
        assert_eq!(g.update(&[Initialize, Backup, Backup]), None);
        assert_eq!(
            g.update(&[Initialize, Initialize, Initialize]),
            Some(GroupState::Stop)
        );
        assert_eq!(g.update(&[Initialize, Initialize, Initialize]), None);
        // An empty group (members unresolved) says nothing.
        assert_eq!(SyncGroup::new("E", vec![]).update(&[]), None);
    }

    #[test]
    fn a_removed_group_stops_once_and_only_if_it_ran() {
        let mut g = group();
        assert_eq!(g.stop(), None, "never ran");
        let _ = g.update(&[State::Master; 3]);
        assert_eq!(g.stop(), Some(GroupState::Stop));
        assert_eq!(g.stop(), None);
    }

    #[test]
    fn a_kept_group_does_not_notify_again_after_a_reload() {
        let mut old = group();
        let _ = old.update(&[State::Master; 3]);
        let mut new = SyncGroup::new("G", vec![3, 5, 8]);
        new.continue_from(&old);
        assert_eq!(new.update(&[State::Master; 3]), None);
        assert_eq!(new.update(&[State::Backup; 3]), Some(GroupState::Backup));
    }

    /// Two real cores on a fake clock, with the group deciding who follows: member 0's
    /// master-down timer fires first, member 1 follows at once (its own timer still
    /// pending); then member 0 hears a better master and both go back to BACKUP; at
    /// shutdown the group stops.
    #[test]
    fn members_move_together_on_a_fake_clock() {
        fn core(address: u8, vip: u8) -> Instance {
            let primary = IpAddr::V4(Ipv4Addr::new(192, 0, 2, address));
            let vips = vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, vip))];
            let mut config = InstanceConfig::new(vip, primary, vips);
            config.priority = 100;
            Instance::new(config).expect("valid config")
        }
        fn changes(actions: &[Action]) -> Vec<(State, State, Reason)> {
            actions
                .iter()
                .filter_map(|a| match a {
                    Action::StateChanged { from, to, reason } => Some((*from, *to, reason.clone())),
                    _ => None,
                })
                .collect()
        }
        let base = Instant::now();
        let mut cores = [core(1, 100), core(1, 101)];
        let mut g = SyncGroup::new("G", vec![0, 1]);
        for c in &mut cores {
            let _ = c.handle(base, Input::Startup);
        }
        let states = |cores: &[Instance; 2]| [cores[0].state(), cores[1].state()];
        assert_eq!(g.update(&states(&cores)), Some(GroupState::Backup));

        // Member 0's Master_Down_Timer fires; member 1's has not yet.
        let due = cores[0].poll_timeout().expect("master-down armed");
        let actions = cores[0].handle(due, Input::Timeout);
        let mut follows = Vec::new();
        for (from, to, reason) in changes(&actions) {
            follows.extend(g.on_member_changed(0, from, to, &reason));
        }
        assert_eq!(follows, vec![(1, Follow::Master)]);
        let actions = cores[1].handle(due, Input::Follow(Follow::Master));
        for (from, to, reason) in changes(&actions) {
            assert!(g.on_member_changed(1, from, to, &reason).is_empty());
        }
        assert_eq!(g.update(&states(&cores)), Some(GroupState::Master));

        // A higher-priority master appears for member 0 only.
        let later = due + Duration::from_millis(100);
        let better = Input::Advert {
            src: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)),
            advert: cores[0].advert_repr(200),
        };
        let actions = cores[0].handle(later, better);
        let mut follows = Vec::new();
        for (from, to, reason) in changes(&actions) {
            follows.extend(g.on_member_changed(0, from, to, &reason));
        }
        assert_eq!(follows, vec![(1, Follow::Backup)]);
        let _ = cores[1].handle(later, Input::Follow(Follow::Backup));
        assert_eq!(states(&cores), [State::Backup, State::Backup]);
        assert_eq!(g.update(&states(&cores)), Some(GroupState::Backup));

        // Shutdown: no one follows, and the group stops once both have.
        let end = later + Duration::from_secs(1);
        let actions = cores[0].handle(end, Input::Shutdown);
        for (from, to, reason) in changes(&actions) {
            assert!(g.on_member_changed(0, from, to, &reason).is_empty());
        }
        assert_eq!(g.update(&states(&cores)), None);
        let _ = cores[1].handle(end, Input::Shutdown);
        assert_eq!(g.update(&states(&cores)), Some(GroupState::Stop));
    }
}
