//! What a front end hands to [`super::validate`]: values as written, loosely typed, each
//! with the place it was written.
//!
//! Integers are `i64` and addresses, durations and keywords are text so that range,
//! syntax and cross-field rules are checked in one place for every front end, and all
//! problems are reported together. Absent keys are `None` (or empty lists); defaults are
//! applied by validation, so they too live in one place.

use super::Location;

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    /// The value.
    pub value: T,
    /// Where it was written, when the front end knows.
    pub at: Option<Location>,
}

impl<T> Sourced<T> {
    /// A value with a location.
    pub fn new(value: T, at: Option<Location>) -> Self {
        Self { value, at }
    }
}

/// A whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Draft {
    /// File name for messages.
    pub file: String,
    /// `[global]` / keepalived `global_defs`.
    pub global: DraftGlobal,
    /// `[script.NAME]` / keepalived `vrrp_script NAME`.
    pub scripts: Vec<DraftScript>,
    /// `[track_file.NAME]` / keepalived `track_file NAME` (`vrrp_track_file NAME`).
    pub track_files: Vec<DraftTrackFile>,
    /// `[instance.NAME]` / keepalived `vrrp_instance NAME`.
    pub instances: Vec<DraftInstance>,
    /// `[sync_group.NAME]` / keepalived `vrrp_sync_group NAME`.
    pub sync_groups: Vec<DraftSyncGroup>,
    /// `[bfd.NAME]` / keepalived `bfd_instance NAME`.
    pub bfd_instances: Vec<DraftBfd>,
    /// Where the file ends, for "missing" errors with nowhere better to point.
    pub end: Option<Location>,
}

/// Daemon-wide settings as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DraftGlobal {
    /// `router_id`.
    pub router_id: Option<Sourced<String>>,
    /// `control_socket`.
    pub control_socket: Option<Sourced<String>>,
    /// `notification_email`.
    pub notification_email: Vec<Sourced<String>>,
    /// `notification_email_from`.
    pub notification_email_from: Option<Sourced<String>>,
    /// `smtp_server`.
    pub smtp_server: Option<Sourced<String>>,
    /// `smtp_port`.
    pub smtp_port: Option<Sourced<i64>>,
    /// `smtp_connect_timeout`.
    pub smtp_connect_timeout: Option<Sourced<String>>,
    /// `realtime_priority` / keepalived `vrrp_rt_priority`.
    pub realtime_priority: Option<Sourced<i64>>,
    /// `notify_shutdown_timeout` (TOML only; keepalived has no such setting).
    pub notify_shutdown_timeout: Option<Sourced<String>>,
    /// `smtp_alert` (keepalived `smtp_alert_vrrp`, else `smtp_alert`): the default for
    /// instances and sync groups that do not set their own.
    pub smtp_alert: Option<Sourced<bool>>,
}

/// A command as written: one line (split like a shell would, without running one) or an
/// argument vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DraftCommand {
    /// `"/usr/bin/foo --bar 'a b'"`.
    Line(String),
    /// `["/usr/bin/foo", "--bar", "a b"]`.
    Argv(Vec<String>),
}

/// A health-check script as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftScript {
    /// Its name.
    pub name: Sourced<String>,
    /// `script`.
    pub script: Option<Sourced<DraftCommand>>,
    /// `interval`.
    pub interval: Option<Sourced<String>>,
    /// `timeout`.
    pub timeout: Option<Sourced<String>>,
    /// `weight`.
    pub weight: Option<Sourced<i64>>,
    /// `rise`.
    pub rise: Option<Sourced<i64>>,
    /// `fall`.
    pub fall: Option<Sourced<i64>>,
}

/// A track file as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftTrackFile {
    /// Its name.
    pub name: Sourced<String>,
    /// `file`.
    pub file: Option<Sourced<String>>,
    /// `weight`.
    pub weight: Option<Sourced<i64>>,
    /// `init_file`.
    pub init_file: Option<Sourced<DraftInitFile>>,
}

/// `init_file` as written: keepalived `init_file [VALUE] [overwrite]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftInitFile {
    /// The value (default 0).
    pub value: Option<Sourced<i64>>,
    /// `overwrite`.
    pub overwrite: Option<Sourced<bool>>,
}

/// A sync group as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftSyncGroup {
    /// Its name.
    pub name: Sourced<String>,
    /// `group`: member instance names; the outer location is the list's.
    pub group: Option<Sourced<Vec<Sourced<String>>>>,
    /// `notify_master`.
    pub notify_master: Option<Sourced<DraftCommand>>,
    /// `notify_backup`.
    pub notify_backup: Option<Sourced<DraftCommand>>,
    /// `notify_fault`.
    pub notify_fault: Option<Sourced<DraftCommand>>,
    /// `notify_stop`.
    pub notify_stop: Option<Sourced<DraftCommand>>,
    /// `notify`.
    pub notify: Option<Sourced<DraftCommand>>,
    /// `tracking_weight` (keepalived `sync_group_tracking_weight`, `global_tracking`).
    pub tracking_weight: Option<Sourced<bool>>,
    /// `smtp_alert`.
    pub smtp_alert: Option<Sourced<bool>>,
}

impl DraftSyncGroup {
    /// A group with only a name; every key absent.
    pub fn named(name: Sourced<String>) -> Self {
        Self {
            name,
            group: None,
            notify_master: None,
            notify_backup: None,
            notify_fault: None,
            notify_stop: None,
            notify: None,
            tracking_weight: None,
            smtp_alert: None,
        }
    }
}

/// `authentication` as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftAuthentication {
    /// `auth_type`.
    pub auth_type: Option<Sourced<String>>,
    /// `auth_pass`.
    pub auth_pass: Option<Sourced<String>>,
}

/// One `virtual_ipaddress` entry as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftVip {
    /// `address` (`"192.0.2.1"` or `"192.0.2.1/24"`).
    pub address: Sourced<String>,
    /// `dev`.
    pub dev: Option<Sourced<String>>,
    /// `label`.
    pub label: Option<Sourced<String>>,
}

/// One `track_script` entry as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftTrackedScript {
    /// The script's name.
    pub name: Sourced<String>,
    /// Per-instance weight override.
    pub weight: Option<Sourced<i64>>,
}

/// One `track_file` entry of an instance as written: the same shape as a
/// `track_script` entry.
pub type DraftTrackedFile = DraftTrackedScript;

/// One `track_interface` entry of an instance as written: the same shape as a
/// `track_script` entry.
pub type DraftTrackedInterface = DraftTrackedScript;

/// An instance as written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // Each field is the key of the same name; docs/configuration.md.
pub struct DraftInstance {
    /// The instance name.
    pub name: Sourced<String>,
    pub interface: Option<Sourced<String>>,
    pub virtual_router_id: Option<Sourced<i64>>,
    pub priority: Option<Sourced<i64>>,
    pub advert_int: Option<Sourced<String>>,
    pub version: Option<Sourced<i64>>,
    pub state: Option<Sourced<String>>,
    pub preempt: Option<Sourced<bool>>,
    pub nopreempt: Option<Sourced<bool>>,
    pub preempt_delay: Option<Sourced<String>>,
    pub accept_mode: Option<Sourced<bool>>,
    pub authentication: Option<Sourced<DraftAuthentication>>,
    pub virtual_ipaddress: Option<Sourced<Vec<DraftVip>>>,
    pub unicast_src_ip: Option<Sourced<String>>,
    pub unicast_peer: Vec<Sourced<String>>,
    pub garp_master_delay: Option<Sourced<String>>,
    pub garp_master_repeat: Option<Sourced<i64>>,
    pub garp_interval: Option<Sourced<String>>,
    pub garp_master_refresh: Option<Sourced<String>>,
    pub garp_gateways: Vec<Sourced<String>>,
    pub garp_gateway_count: Option<Sourced<i64>>,
    pub track_script: Vec<DraftTrackedScript>,
    pub track_file: Vec<DraftTrackedFile>,
    pub track_interface: Vec<DraftTrackedInterface>,
    pub notify_master: Option<Sourced<DraftCommand>>,
    pub notify_backup: Option<Sourced<DraftCommand>>,
    pub notify_fault: Option<Sourced<DraftCommand>>,
    pub notify_stop: Option<Sourced<DraftCommand>>,
    pub notify: Option<Sourced<DraftCommand>>,
    pub smtp_alert: Option<Sourced<bool>>,
    pub xdp: Option<Sourced<String>>,
    pub track_bfd: Vec<DraftTrackedBfd>,
}

impl DraftInstance {
    /// An instance with only a name; every key absent.
    pub fn named(name: Sourced<String>) -> Self {
        Self {
            name,
            interface: None,
            virtual_router_id: None,
            priority: None,
            advert_int: None,
            version: None,
            state: None,
            preempt: None,
            nopreempt: None,
            preempt_delay: None,
            accept_mode: None,
            authentication: None,
            virtual_ipaddress: None,
            unicast_src_ip: None,
            unicast_peer: Vec::new(),
            garp_master_delay: None,
            garp_master_repeat: None,
            garp_interval: None,
            garp_master_refresh: None,
            garp_gateways: Vec::new(),
            garp_gateway_count: None,
            track_script: Vec::new(),
            track_file: Vec::new(),
            track_interface: Vec::new(),
            notify_master: None,
            notify_backup: None,
            notify_fault: None,
            notify_stop: None,
            notify: None,
            smtp_alert: None,
            xdp: None,
            track_bfd: Vec::new(),
        }
    }
}

// ---- BFD (bfd_instance, track_bfd) ----

/// A BFD session as written (`[bfd.NAME]` / keepalived `bfd_instance NAME`). Intervals
/// are duration text: the keepalived front end adds the `ms` its bare numbers mean.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // Each field is the key of the same name; docs/bfd.md.
pub struct DraftBfd {
    /// The session name.
    pub name: Sourced<String>,
    pub neighbor_ip: Option<Sourced<String>>,
    pub source_ip: Option<Sourced<String>>,
    pub min_rx: Option<Sourced<String>>,
    pub min_tx: Option<Sourced<String>>,
    pub idle_tx: Option<Sourced<String>>,
    pub multiplier: Option<Sourced<i64>>,
    pub passive: Option<Sourced<bool>>,
    pub ttl: Option<Sourced<i64>>,
    pub max_hops: Option<Sourced<i64>>,
    pub weight: Option<Sourced<i64>>,
}

impl DraftBfd {
    /// A session with only a name.
    pub fn named(name: Sourced<String>) -> Self {
        Self {
            name,
            neighbor_ip: None,
            source_ip: None,
            min_rx: None,
            min_tx: None,
            idle_tx: None,
            multiplier: None,
            passive: None,
            ttl: None,
            max_hops: None,
            weight: None,
        }
    }
}

/// One `track_bfd` entry as written: `NAME [weight W] [peer]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftTrackedBfd {
    /// The session's name.
    pub name: Sourced<String>,
    /// Per-instance weight override.
    pub weight: Option<Sourced<i64>>,
    /// The neighbour is a VRRP peer (vipd's extension).
    pub peer: Option<Sourced<bool>>,
}
