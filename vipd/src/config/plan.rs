//! What a reload changes: pure functions from what runs now and the new configuration to
//! the steps the daemon performs (keep, rebuild, stop, start for instances; keep,
//! restart, start, stop for trackers).
//!
//! No I/O: the daemon applies the plan. Keeping everything that did not change is what
//! lets a SIGHUP with an unchanged file change nothing at all.

use std::collections::HashSet;

use super::{Config, InstanceSpec, TrackFile, TrackScript};

/// What a reload does to the instances.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstancePlan {
    /// Running instances whose settings did not change: not touched.
    pub keep: Vec<usize>,
    /// Running instances rebuilt in place with new settings (same interface, VRID and
    /// family: the same virtual router).
    pub rebuild: Vec<(usize, InstanceSpec)>,
    /// Running instances to stop: removed, or moved to another virtual router.
    pub stop: Vec<usize>,
    /// Instances to start: new ones, and moved ones under their new key.
    pub start: Vec<InstanceSpec>,
}

/// Plans the instances of a reload. `running` are the running instances as
/// (the daemon's index, their settings); instances are matched by name.
///
/// A changed interface, VRID or address family is another virtual router (RFC 5798
/// §5.2.3 keeps the IPv4 and IPv6 routers of one VRID apart; each has its own sockets
/// and XDP watch): the old one stops and the new one starts.
pub fn instances<'a>(
    running: impl IntoIterator<Item = (usize, &'a InstanceSpec)>,
    new: &[InstanceSpec],
) -> InstancePlan {
    let mut plan = InstancePlan::default();
    let mut carried = HashSet::new();
    for (index, old) in running {
        match new.iter().find(|spec| spec.name == old.name) {
            Some(spec) if spec == old => {
                plan.keep.push(index);
                carried.insert(spec.name.as_str());
            }
            Some(spec)
                if spec.interface == old.interface
                    && spec.virtual_router_id == old.virtual_router_id
                    && spec.family == old.family =>
            {
                plan.rebuild.push((index, spec.clone()));
                carried.insert(spec.name.as_str());
            }
            _ => plan.stop.push(index),
        }
    }
    plan.start = new
        .iter()
        .filter(|spec| !carried.contains(spec.name.as_str()))
        .cloned()
        .collect();
    plan
}

/// What a reload does to one kind of tracker (scripts or files), by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackerPlan {
    /// Unchanged and still tracked: the task keeps running and its last result stays.
    pub keep: Vec<String>,
    /// Changed definition: the old task stops and a new one starts; the last result
    /// stays in force until the new task's first one (which it always reports).
    pub restart: Vec<String>,
    /// Newly tracked: start a task.
    pub start: Vec<String>,
    /// No longer defined or tracked by any instance: stop the task, forget its result.
    pub stop: Vec<String>,
}

/// Whether a running script task can go on for `new`: the weight is applied per
/// instance, everything else shapes the task.
fn same_script(old: &TrackScript, new: &TrackScript) -> bool {
    old.command == new.command
        && old.interval == new.interval
        && old.timeout == new.timeout
        && old.rise == new.rise
        && old.fall == new.fall
}

/// Whether a running file watcher can go on for `new`: it reads `path`; the weight is
/// applied per instance and `init_file` only at start.
fn same_file(old: &TrackFile, new: &TrackFile) -> bool {
    old.path == new.path
}

fn trackers<T>(
    running: &[&T],
    wanted: &[&T],
    name: impl Fn(&T) -> &str,
    same: impl Fn(&T, &T) -> bool,
) -> TrackerPlan {
    let mut plan = TrackerPlan::default();
    for new in wanted {
        match running.iter().find(|old| name(old) == name(new)) {
            Some(old) if same(old, new) => plan.keep.push(name(new).to_owned()),
            Some(_) => plan.restart.push(name(new).to_owned()),
            None => plan.start.push(name(new).to_owned()),
        }
    }
    for old in running {
        if !wanted.iter().any(|new| name(new) == name(old)) {
            plan.stop.push(name(old).to_owned());
        }
    }
    plan
}

/// Plans the track-script tasks: `running` are the definitions of the tasks running
/// now; a script runs while some instance of `new` tracks it.
pub fn scripts(running: &[&TrackScript], new: &Config) -> TrackerPlan {
    let tracked: HashSet<&str> = new
        .instances
        .iter()
        .flat_map(|i| i.track_scripts.iter().map(|t| t.name.as_str()))
        .collect();
    let wanted: Vec<&TrackScript> = new
        .scripts
        .iter()
        .filter(|s| tracked.contains(s.name.as_str()))
        .collect();
    trackers(running, &wanted, |s| &s.name, same_script)
}

/// Plans the track-file watchers, as [`scripts`] does the scripts.
pub fn files(running: &[&TrackFile], new: &Config) -> TrackerPlan {
    let tracked: HashSet<&str> = new
        .instances
        .iter()
        .flat_map(|i| i.track_files.iter().map(|t| t.name.as_str()))
        .collect();
    let wanted: Vec<&TrackFile> = new
        .track_files
        .iter()
        .filter(|f| tracked.contains(f.name.as_str()))
        .collect();
    trackers(running, &wanted, |f| &f.name, same_file)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::config::{AddressFamily, Command, TrackedFile, TrackedScript, parse_toml};

    fn config(text: &str) -> Config {
        match parse_toml(text, "test.toml") {
            Ok(loaded) => loaded.config,
            Err(e) => panic!("{e}"),
        }
    }

    fn instance(name: &str, vrid: u8, priority: u8) -> String {
        format!(
            "[instance.{name}]\ninterface = \"eth0\"\nvirtual_router_id = {vrid}\npriority = {priority}\nvirtual_ipaddress = [\"192.0.2.{vrid}\"]\n\n"
        )
    }

    fn running(config: &Config) -> Vec<(usize, &InstanceSpec)> {
        config.instances.iter().enumerate().collect()
    }

    #[test]
    fn an_unchanged_file_keeps_everything() {
        let old = config(&(instance("A", 1, 100) + &instance("B", 2, 100)));
        let plan = instances(running(&old), &old.instances);
        assert_eq!(
            plan,
            InstancePlan {
                keep: vec![0, 1],
                ..InstancePlan::default()
            }
        );
    }

    #[test]
    fn changed_settings_rebuild_in_place() {
        let old = config(&(instance("A", 1, 100) + &instance("B", 2, 100)));
        let new = config(&(instance("A", 1, 150) + &instance("B", 2, 100)));
        let plan = instances(running(&old), &new.instances);
        assert_eq!(plan.keep, [1]);
        assert_eq!(plan.rebuild.len(), 1);
        assert_eq!(plan.rebuild[0].0, 0);
        assert_eq!(plan.rebuild[0].1.priority, 150);
        assert!(plan.stop.is_empty() && plan.start.is_empty());
    }

    #[test]
    fn removed_instances_stop_and_new_ones_start() {
        let old = config(&(instance("A", 1, 100) + &instance("B", 2, 100)));
        let new = config(&(instance("B", 2, 100) + &instance("C", 3, 100)));
        let plan = instances(running(&old), &new.instances);
        assert_eq!(plan.keep, [1]);
        assert_eq!(plan.stop, [0]);
        let started: Vec<&str> = plan.start.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(started, ["C"]);
    }

    #[test]
    fn another_interface_vrid_or_family_is_another_router() {
        let old = config(&instance("A", 1, 100));
        let mut moved = old.instances[0].clone();
        moved.virtual_router_id = 9;
        let mut other_if = old.instances[0].clone();
        other_if.interface = "eth1".into();
        let mut other_family = old.instances[0].clone();
        other_family.family = AddressFamily::V6;
        for new in [moved, other_if, other_family] {
            let plan = instances(running(&old), std::slice::from_ref(&new));
            assert_eq!(plan.stop, [0]);
            assert_eq!(plan.start, [new]);
            assert!(plan.keep.is_empty() && plan.rebuild.is_empty());
        }
    }

    #[test]
    fn retired_slots_are_not_running() {
        // The daemon passes only running instances; indexes are its own.
        let old = config(&instance("A", 1, 100));
        let plan = instances([(7, &old.instances[0])], &old.instances);
        assert_eq!(plan.keep, [7]);
    }

    fn script(name: &str, argv: &str) -> TrackScript {
        TrackScript {
            name: name.into(),
            command: Command {
                argv: vec![argv.into()],
            },
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            weight: 0,
            rise: 1,
            fall: 1,
        }
    }

    fn tracking(scripts: Vec<TrackScript>, files: Vec<TrackFile>) -> Config {
        let mut config = config(&instance("A", 1, 100));
        config.instances[0].track_scripts = scripts
            .iter()
            .map(|s| TrackedScript {
                name: s.name.clone(),
                weight: 0,
            })
            .collect();
        config.instances[0].track_files = files
            .iter()
            .map(|f| TrackedFile {
                name: f.name.clone(),
                weight: None,
            })
            .collect();
        config.scripts = scripts;
        config.track_files = files;
        config
    }

    #[test]
    fn unchanged_scripts_keep_running_and_changed_ones_restart() {
        let (a, b, c) = (script("a", "/a"), script("b", "/b"), script("c", "/c"));
        let mut b2 = script("b", "/b2");
        let mut a_weighted = a.clone();
        a_weighted.weight = 30;
        let new = tracking(vec![a_weighted, b2.clone(), script("d", "/d")], vec![]);
        let plan = scripts(&[&a, &b, &c], &new);
        assert_eq!(
            plan,
            TrackerPlan {
                keep: vec!["a".into()],
                restart: vec!["b".into()],
                start: vec!["d".into()],
                stop: vec!["c".into()],
            }
        );
        // Any setting that shapes the task restarts it.
        b2.interval = Duration::from_secs(2);
        let plan = scripts(&[&script("b", "/b2")], &tracking(vec![b2], vec![]));
        assert_eq!(plan.restart, ["b"]);
    }

    #[test]
    fn a_script_nobody_tracks_any_more_stops() {
        let a = script("a", "/a");
        let mut new = tracking(vec![a.clone()], vec![]);
        new.instances[0].track_scripts.clear();
        let plan = scripts(&[&a], &new);
        assert_eq!(plan.stop, ["a"]);
        assert!(plan.keep.is_empty());
    }

    #[test]
    fn files_restart_only_for_another_path() {
        let file = |name: &str, path: &str, weight: i32| TrackFile {
            name: name.into(),
            path: PathBuf::from(path),
            weight,
            init: None,
        };
        let (f, g) = (file("f", "/f", 1), file("g", "/g", 1));
        let new = tracking(vec![], vec![file("f", "/f", 10), file("g", "/g2", 1)]);
        let plan = files(&[&f, &g], &new);
        assert_eq!(plan.keep, ["f"]);
        assert_eq!(plan.restart, ["g"]);
        assert!(plan.start.is_empty() && plan.stop.is_empty());
    }
}
