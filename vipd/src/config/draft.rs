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
    /// `[[virtual_server]]` / keepalived `virtual_server`, in file order.
    pub virtual_servers: Vec<DraftVirtualServer>,
    /// `[virtual_server_group.NAME]` / keepalived `virtual_server_group NAME`.
    pub virtual_server_groups: Vec<DraftVsGroup>,
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
    pub announce: DraftAnnounce,
    pub v3_checksum: Option<Sourced<String>>,
    pub use_vmac: Option<Sourced<bool>>,
    pub vmac_name: Option<Sourced<String>>,
    pub vmac_xmit_base: Option<Sourced<bool>>,
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
            announce: DraftAnnounce::default(),
            v3_checksum: None,
            use_vmac: None,
            vmac_name: None,
            vmac_xmit_base: None,
        }
    }
}

/// L3 announcement keys of an instance or a virtual server as written (the same keys in
/// both front ends; see [`super::announce`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[allow(missing_docs)] // Each field is the key `announce_<field>` (`announce` itself).
pub struct DraftAnnounce {
    pub announce: Option<Sourced<String>>,
    pub mode: Option<Sourced<String>>,
    pub standby_med: Option<Sourced<i64>>,
    pub standby_prepend: Option<Sourced<i64>>,
    pub communities: Vec<Sourced<String>>,
}

impl DraftAnnounce {
    /// Whether any announcement key was written.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// An `ADDRESS PORT` pair as written (a sorry server, a group member).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftEndpoint {
    /// The address; in a group member also a range, `192.0.2.10-20`.
    pub address: Sourced<String>,
    /// The port; `None` when not written (0).
    pub port: Option<Sourced<i64>>,
}

/// A `virtual_server_group` / `[virtual_server_group.NAME]` as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftVsGroup {
    /// Its name.
    pub name: Sourced<String>,
    /// Members, in file order.
    pub members: Vec<DraftEndpoint>,
}

/// What a virtual server balances: one address and port, or a group's members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DraftVsTarget {
    /// `virtual_server ADDRESS PORT`.
    Endpoint(DraftEndpoint),
    /// `virtual_server group NAME`.
    Group(Sourced<String>),
}

/// A `virtual_server` / `[[virtual_server]]` as written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // Each field is the key of the same name; docs/configuration.md.
pub struct DraftVirtualServer {
    /// Where the block starts, for errors about the block as a whole.
    pub at: Option<Location>,
    /// `None` when the front end could not read it (already reported).
    pub target: Option<DraftVsTarget>,
    pub delay_loop: Option<Sourced<String>>,
    pub lb_algo: Option<Sourced<String>>,
    pub lb_kind: Option<Sourced<String>>,
    pub persistence_timeout: Option<Sourced<String>>,
    /// A netmask (`255.255.255.0`) or a prefix length (`24`).
    pub persistence_granularity: Option<Sourced<String>>,
    pub protocol: Option<Sourced<String>>,
    pub sorry_server: Option<DraftEndpoint>,
    pub sorry_server_inhibit: Option<Sourced<bool>>,
    pub alpha: Option<Sourced<bool>>,
    pub omega: Option<Sourced<bool>>,
    pub quorum: Option<Sourced<i64>>,
    pub hysteresis: Option<Sourced<i64>>,
    pub quorum_up: Option<Sourced<DraftCommand>>,
    pub quorum_down: Option<Sourced<DraftCommand>>,
    pub virtualhost: Option<Sourced<String>>,
    /// `sh-port` / `mh-port` (keepalived `flag-2`).
    pub hash_port: Option<Sourced<bool>>,
    /// `sh-fallback` / `mh-fallback` (keepalived `flag-1`).
    pub hash_fallback: Option<Sourced<bool>>,
    pub interface: Option<Sourced<String>>,
    pub announce: DraftAnnounce,
    pub real_servers: Vec<DraftRealServer>,
}

impl DraftVirtualServer {
    /// A virtual server with only a target; every key absent.
    pub fn new(at: Option<Location>, target: Option<DraftVsTarget>) -> Self {
        Self {
            at,
            target,
            delay_loop: None,
            lb_algo: None,
            lb_kind: None,
            persistence_timeout: None,
            persistence_granularity: None,
            protocol: None,
            sorry_server: None,
            sorry_server_inhibit: None,
            alpha: None,
            omega: None,
            quorum: None,
            hysteresis: None,
            quorum_up: None,
            quorum_down: None,
            virtualhost: None,
            hash_port: None,
            hash_fallback: None,
            interface: None,
            announce: DraftAnnounce::default(),
            real_servers: Vec::new(),
        }
    }
}

/// A `real_server` as written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // Each field is the key of the same name; docs/configuration.md.
pub struct DraftRealServer {
    pub endpoint: DraftEndpoint,
    pub weight: Option<Sourced<i64>>,
    pub inhibit_on_failure: Option<Sourced<bool>>,
    pub notify_up: Option<Sourced<DraftCommand>>,
    pub notify_down: Option<Sourced<DraftCommand>>,
    pub checkers: Vec<DraftChecker>,
}

/// A checker (`HTTP_GET`, `SSL_GET`, `TCP_CHECK`, `MISC_CHECK`, `UDP_CHECK`,
/// `PING_CHECK`, `DNS_CHECK`, `SMTP_CHECK`, `FILE_CHECK`, `BFD_CHECK`) as written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // Each field is the key of the same name; docs/configuration.md.
pub struct DraftChecker {
    /// The kind, as keepalived spells it (`HTTP_GET`, …); case-insensitive.
    pub kind: Sourced<String>,
    pub connect_ip: Option<Sourced<String>>,
    pub connect_port: Option<Sourced<i64>>,
    pub bindto: Option<Sourced<String>>,
    pub connect_timeout: Option<Sourced<String>>,
    /// `retry` or keepalived's older `nb_get_retry`.
    pub retry: Option<Sourced<i64>>,
    pub delay_before_retry: Option<Sourced<String>>,
    pub delay_loop: Option<Sourced<String>>,
    pub warmup: Option<Sourced<String>>,
    pub virtualhost: Option<Sourced<String>>,
    pub urls: Vec<DraftUrl>,
    pub misc_path: Option<Sourced<DraftCommand>>,
    pub misc_timeout: Option<Sourced<String>>,
    pub misc_dynamic: Option<Sourced<bool>>,
    pub payload: Option<Sourced<String>>,
    pub require_reply: Option<Sourced<bool>>,
    /// The data of keepalived's `require_reply HEX`; vipd's `reply`.
    pub reply: Option<Sourced<String>>,
    pub min_reply_length: Option<Sourced<i64>>,
    pub max_reply_length: Option<Sourced<i64>>,
    /// DNS_CHECK `type`; vipd's `query_type`.
    pub query_type: Option<Sourced<String>>,
    /// DNS_CHECK `name`; vipd's `query_name`.
    pub query_name: Option<Sourced<String>>,
    pub helo_name: Option<Sourced<String>>,
    /// FILE_CHECK `track_file NAME`.
    pub track_file: Option<Sourced<String>>,
    /// FILE_CHECK `weight W`.
    pub file_weight: Option<Sourced<i64>>,
    /// FILE_CHECK `weight W reverse`.
    pub file_reverse: Option<Sourced<bool>>,
    /// BFD_CHECK `name NAME`; vipd's `bfd`.
    pub bfd: Option<Sourced<String>>,
}

impl DraftChecker {
    /// A checker with only a kind; every key absent.
    pub fn new(kind: Sourced<String>) -> Self {
        Self {
            kind,
            connect_ip: None,
            connect_port: None,
            bindto: None,
            connect_timeout: None,
            retry: None,
            delay_before_retry: None,
            delay_loop: None,
            warmup: None,
            virtualhost: None,
            urls: Vec::new(),
            misc_path: None,
            misc_timeout: None,
            misc_dynamic: None,
            payload: None,
            require_reply: None,
            reply: None,
            min_reply_length: None,
            max_reply_length: None,
            query_type: None,
            query_name: None,
            helo_name: None,
            track_file: None,
            file_weight: None,
            file_reverse: None,
            bfd: None,
        }
    }
}

/// A `url { … }` of an HTTP check as written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // Each field is the key of the same name; docs/configuration.md.
pub struct DraftUrl {
    /// Where the block starts.
    pub at: Option<Location>,
    pub path: Option<Sourced<String>>,
    /// Each `200` or a range `200-299`.
    pub status_codes: Vec<Sourced<String>>,
    pub digest: Option<Sourced<String>>,
    pub virtualhost: Option<Sourced<String>>,
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
