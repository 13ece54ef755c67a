//! Fault and priority aggregation: what an instance's tracked links, scripts and files
//! add up to (keepalived's `track_interface`, `track_script`, `track_file` rules).
//!
//! A pure function: the driver gathers the current status of every source an instance
//! tracks and feeds the result to the core as [`Input::PriorityOffset`] and
//! [`Input::Fault`] / [`Input::FaultCleared`]. Nothing here performs I/O or reads a
//! clock. Sync groups add their own rule on top ([`super::sync_group`]).
//!
//! [`Input::PriorityOffset`]: super::instance::Input::PriorityOffset
//! [`Input::Fault`]: super::instance::Input::Fault
//! [`Input::FaultCleared`]: super::instance::Input::FaultCleared

use super::action::FaultReason;

/// A watched interface: the instance's own (always weight 0) or a `track_interface`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkStatus<'a> {
    /// Interface name, for logs.
    pub name: &'a str,
    /// Whether the link is up (administratively and with carrier).
    pub up: bool,
    /// 0: down means FAULT. Positive: added while up. Negative: added while down.
    pub weight: i32,
}

/// A tracked script's settled status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScriptStatus<'a> {
    /// The script's name.
    pub name: &'a str,
    /// The settled result; `None` before the script's first result (it counts neither
    /// way).
    pub healthy: Option<bool>,
    /// 0: failing means FAULT. Positive: added while healthy. Negative: added while
    /// failing.
    pub weight: i32,
}

/// A tracked file's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStatus<'a> {
    /// The track file's name.
    pub name: &'a str,
    /// The value last read; `None` before the first read (it counts neither way).
    pub value: Option<i64>,
    /// The weight in force for this instance; see [`track_file_effect`].
    pub weight: i32,
}

/// What an instance's trackers add up to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Health {
    /// Sum of the weights in force, for [`Input::PriorityOffset`] (the core clamps the
    /// effective priority).
    ///
    /// [`Input::PriorityOffset`]: super::instance::Input::PriorityOffset
    pub priority_offset: i32,
    /// The first fault found, if any: links, then scripts, then files, each in the
    /// order given.
    pub fault: Option<FaultReason>,
}

/// What a tracked file's current value does to one instance: see [`track_file_effect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackFileEffect {
    /// Add this (−253..=253) to the instance's priority.
    Offset(i32),
    /// Put the instance into FAULT until the value changes.
    Fault,
}

/// keepalived's rule for a tracked file holding `value`, tracked with weight `weight`:
/// weight 0 → FAULT unless the value is 0; otherwise `value × weight`, FAULT when ≤ −254,
/// else an offset capped at +253.
pub fn track_file_effect(value: i64, weight: i32) -> TrackFileEffect {
    if weight == 0 {
        return if value == 0 {
            TrackFileEffect::Offset(0)
        } else {
            TrackFileEffect::Fault
        };
    }
    let product = value.saturating_mul(i64::from(weight));
    if product <= -254 {
        TrackFileEffect::Fault
    } else {
        // In −253..=253 after the cap, so the conversion cannot fail.
        TrackFileEffect::Offset(i32::try_from(product.min(253)).unwrap_or(253))
    }
}

/// keepalived's weight rule shared by interfaces and scripts: weight 0 makes the source a
/// health flag (bad = FAULT); a positive weight counts while the source is good, a
/// negative one while it is bad. Returns (offset, whether it is a fault).
fn weighted(good: bool, weight: i32) -> (i32, bool) {
    match (weight, good) {
        (0, good) => (0, !good),
        (w, true) if w > 0 => (w, false),
        (w, false) if w < 0 => (w, false),
        _ => (0, false),
    }
}

/// Aggregates an instance's tracked sources into a priority offset and a fault.
pub fn aggregate(links: &[LinkStatus], scripts: &[ScriptStatus], files: &[FileStatus]) -> Health {
    let mut health = Health::default();
    for link in links {
        let (offset, faulted) = weighted(link.up, link.weight);
        health.priority_offset += offset;
        if faulted {
            health.fault.get_or_insert(FaultReason::LinkDown);
        }
    }
    for script in scripts {
        let Some(healthy) = script.healthy else {
            continue;
        };
        let (offset, faulted) = weighted(healthy, script.weight);
        health.priority_offset += offset;
        if faulted {
            let name = script.name.to_owned();
            health.fault.get_or_insert(FaultReason::Tracker { name });
        }
    }
    for file in files {
        let Some(value) = file.value else {
            continue;
        };
        match track_file_effect(value, file.weight) {
            TrackFileEffect::Offset(offset) => health.priority_offset += offset,
            TrackFileEffect::Fault => {
                let name = file.name.to_owned();
                health.fault.get_or_insert(FaultReason::Tracker { name });
            }
        }
    }
    health
}

/// A BFD session tracked by an instance (`track_bfd`, not `peer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BfdStatus<'a> {
    /// The session's name.
    pub name: &'a str,
    /// Whether the session is Up (RFC 5880 §6.2); anything else, including a session
    /// that has not come up yet, counts as down.
    pub up: bool,
    /// 0: not Up means FAULT. Positive: added while Up. Negative: added while not.
    pub weight: i32,
}

/// Adds the instance's tracked BFD sessions to `health` by the rule links and scripts
/// follow (keepalived's `track_bfd`); a fault found earlier stays the one reported.
pub fn add_bfd(health: &mut Health, sessions: &[BfdStatus]) {
    for session in sessions {
        let (offset, faulted) = weighted(session.up, session.weight);
        health.priority_offset += offset;
        if faulted {
            let name = session.name.to_owned();
            health.fault.get_or_insert(FaultReason::Bfd { name });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(name: &str, up: bool, weight: i32) -> LinkStatus<'_> {
        LinkStatus { name, up, weight }
    }

    fn script(name: &str, healthy: Option<bool>, weight: i32) -> ScriptStatus<'_> {
        ScriptStatus {
            name,
            healthy,
            weight,
        }
    }

    fn file(name: &str, value: Option<i64>, weight: i32) -> FileStatus<'_> {
        FileStatus {
            name,
            value,
            weight,
        }
    }

    fn tracker(name: &str) -> Option<FaultReason> {
        Some(FaultReason::Tracker { name: name.into() })
    }

    #[test]
    fn nothing_tracked_is_healthy() {
        assert_eq!(aggregate(&[], &[], &[]), Health::default());
    }

    #[test]
    fn an_unweighted_link_down_is_a_fault() {
        let h = aggregate(&[link("eth0", true, 0), link("eth1", false, 0)], &[], &[]);
        assert_eq!(h.fault, Some(FaultReason::LinkDown));
        assert_eq!(h.priority_offset, 0);
        let h = aggregate(&[link("eth0", true, 0), link("eth1", true, 0)], &[], &[]);
        assert_eq!(h, Health::default());
    }

    #[test]
    fn a_positive_link_weight_counts_while_up() {
        let up = aggregate(&[link("eth1", true, 20)], &[], &[]);
        assert_eq!((up.priority_offset, up.fault), (20, None));
        let down = aggregate(&[link("eth1", false, 20)], &[], &[]);
        assert_eq!((down.priority_offset, down.fault), (0, None));
    }

    #[test]
    fn a_negative_link_weight_counts_while_down() {
        let up = aggregate(&[link("eth1", true, -30)], &[], &[]);
        assert_eq!((up.priority_offset, up.fault), (0, None));
        let down = aggregate(&[link("eth1", false, -30)], &[], &[]);
        assert_eq!((down.priority_offset, down.fault), (-30, None));
    }

    #[test]
    fn scripts_follow_the_same_weight_rule() {
        let cases = [
            (Some(true), 10, 10, None),
            (Some(false), 10, 0, None),
            (Some(true), -10, 0, None),
            (Some(false), -10, -10, None),
            (Some(true), 0, 0, None),
            (Some(false), 0, 0, tracker("chk")),
            // No result yet: neither way.
            (None, 10, 0, None),
            (None, -10, 0, None),
            (None, 0, 0, None),
        ];
        for (healthy, weight, offset, fault) in cases {
            let h = aggregate(&[], &[script("chk", healthy, weight)], &[]);
            assert_eq!(
                (h.priority_offset, h.fault),
                (offset, fault),
                "{healthy:?} weight {weight}"
            );
        }
    }

    #[test]
    fn files_add_value_times_weight_or_fault() {
        let h = aggregate(&[], &[], &[file("load", Some(3), 10)]);
        assert_eq!((h.priority_offset, h.fault), (30, None));
        let h = aggregate(&[], &[], &[file("load", Some(-26), 10)]);
        assert_eq!((h.priority_offset, h.fault), (0, tracker("load")));
        let h = aggregate(&[], &[], &[file("maint", Some(1), 0)]);
        assert_eq!(h.fault, tracker("maint"));
        let h = aggregate(&[], &[], &[file("maint", None, 0)]);
        assert_eq!(h, Health::default(), "no read yet counts neither way");
    }

    #[test]
    fn offsets_add_up_across_sources() {
        let h = aggregate(
            &[link("eth0", true, 0), link("eth1", false, -5)],
            &[script("a", Some(true), 20), script("b", Some(false), -7)],
            &[file("f", Some(2), 4)],
        );
        assert_eq!((h.priority_offset, h.fault), (-5 + 20 - 7 + 8, None));
    }

    #[test]
    fn links_fault_first_then_scripts_then_files() {
        let links = [link("eth1", false, 0)];
        let scripts = [script("s", Some(false), 0)];
        let files = [file("f", Some(1), 0)];
        assert_eq!(
            aggregate(&links, &scripts, &files).fault,
            Some(FaultReason::LinkDown)
        );
        assert_eq!(aggregate(&[], &scripts, &files).fault, tracker("s"));
        assert_eq!(aggregate(&[], &[], &files).fault, tracker("f"));
        // The first faulted script in order wins.
        let two = [script("x", Some(false), 0), script("y", Some(false), 0)];
        assert_eq!(aggregate(&[], &two, &[]).fault, tracker("x"));
    }

    #[test]
    fn weighted_sources_never_fault() {
        let h = aggregate(
            &[link("eth1", false, -253)],
            &[script("s", Some(false), -253)],
            &[],
        );
        assert_eq!((h.priority_offset, h.fault), (-506, None));
    }

    /// keepalived's track_bfd rule: weight 0 faults while not Up, a weight counts by its
    /// sign, and the first fault stays the reported one.
    #[test]
    fn bfd_sessions_weigh_or_fault_like_links() {
        let mut health = Health::default();
        add_bfd(
            &mut health,
            &[
                BfdStatus {
                    name: "up_plus",
                    up: true,
                    weight: 10,
                },
                BfdStatus {
                    name: "down_minus",
                    up: false,
                    weight: -20,
                },
                BfdStatus {
                    name: "down_plus",
                    up: false,
                    weight: 5,
                },
                BfdStatus {
                    name: "gw",
                    up: false,
                    weight: 0,
                },
                BfdStatus {
                    name: "gw2",
                    up: false,
                    weight: 0,
                },
            ],
        );
        assert_eq!(health.priority_offset, -10);
        assert_eq!(health.fault, Some(FaultReason::Bfd { name: "gw".into() }));
        let mut linked = aggregate(
            &[LinkStatus {
                name: "eth0",
                up: false,
                weight: 0,
            }],
            &[],
            &[],
        );
        add_bfd(
            &mut linked,
            &[BfdStatus {
                name: "gw",
                up: false,
                weight: 0,
            }],
        );
        assert_eq!(linked.fault, Some(FaultReason::LinkDown));
    }
}
