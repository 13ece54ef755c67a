//! Configuration: one validated model, fed by front ends.
//!
//! ```text
//!  vipd.toml ──► toml (serde, deny_unknown_fields) ──┐
//!                                                    ├─► Draft ──► validate ──► Config
//!  keepalived.conf ──► keepalived (hand-written) ────┘   (every error, with file:line:col)
//! ```
//!
//! A front end only turns syntax into a [`draft::Draft`]: loosely typed values (integers as
//! `i64`, addresses and durations as text), each with the place it was written. Every
//! semantic rule lives once, in [`validate`], and collects *all* errors rather than
//! stopping at the first, plus non-fatal warnings. The daemon consumes only [`Config`],
//! whose fields are typed and already checked.
//!
//! Entry points: [`load`] (a file of either format, detected by [`is_keepalived`]),
//! [`load_keepalived`], [`parse_toml`] and [`parse_keepalived`] (text). `vipd check` is
//! [`load`] plus printing; `vipd convert` is [`load`] plus [`render::to_toml`].

pub mod announce;
pub mod bfd;
pub mod draft;
pub mod duration;
pub mod frr;
pub mod host;
pub mod keepalived;
pub mod lb;
pub mod plan;
pub mod render;
pub mod toml;
pub mod validate;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use self::bfd::{BfdInstance, TrackedBfd};
pub use self::keepalived::parse_keepalived;
pub use self::toml::parse_toml;

/// Most virtual addresses one instance may hold.
pub const MAX_VIRTUAL_ADDRESSES: usize = 16384;

/// Default control socket path.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/vipd/vipd.sock";

/// A validated configuration, ready for the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Daemon-wide settings (keepalived `global_defs`).
    pub global: Global,
    /// Health-check scripts that instances can track (keepalived `vrrp_script`), in file
    /// order.
    pub scripts: Vec<TrackScript>,
    /// Files whose integer content adjusts the priority of the instances that track them
    /// (keepalived `track_file` / `vrrp_track_file`), in file order. A file no instance
    /// tracks is kept (with a warning) so `vipd convert` loses nothing; the daemon need
    /// neither watch it nor run its `init_file`, as keepalived does not.
    pub track_files: Vec<TrackFile>,
    /// Virtual router instances (keepalived `vrrp_instance`), in file order.
    pub instances: Vec<InstanceSpec>,
    /// Groups of instances that change state together (keepalived `vrrp_sync_group`), in
    /// file order. Every member names an instance of [`Self::instances`], and no instance
    /// is in two groups.
    pub sync_groups: Vec<SyncGroup>,
    /// Load-balanced services (keepalived `virtual_server`), in file order.
    pub virtual_servers: Vec<lb::VirtualServer>,
    /// BFD sessions (keepalived `bfd_instance`, TOML `[bfd.NAME]`), in file order.
    pub bfd_instances: Vec<BfdInstance>,
}

impl Config {
    /// The track file called `name`, if any (every [`TrackedFile::name`] resolves).
    pub fn track_file(&self, name: &str) -> Option<&TrackFile> {
        self.track_files.iter().find(|f| f.name == name)
    }

    /// The sync group `instance` belongs to, if any.
    pub fn sync_group_of(&self, instance: &str) -> Option<&SyncGroup> {
        self.sync_groups
            .iter()
            .find(|g| g.instances.iter().any(|i| i == instance))
    }
}

/// Daemon-wide settings (keepalived `global_defs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    /// Name of this node in logs, mails and status; `None` means the hostname, resolved by
    /// the daemon at start.
    pub router_id: Option<String>,
    /// Unix socket for `vipd status` and metrics.
    pub control_socket: PathBuf,
    /// State-change mail settings; `None` when no recipient is configured.
    pub mail: Option<MailSettings>,
    /// Whether instances and sync groups that do not say otherwise send state-change
    /// mail (keepalived `smtp_alert`; default off). Already applied to
    /// [`InstanceSpec::smtp_alert`] and [`SyncGroup::smtp_alert`]; kept so `vipd convert`
    /// can write it back.
    pub smtp_alert: bool,
    /// SCHED_RR priority (1–99) of the daemon's thread, so a busy CPU cannot delay its
    /// adverts past the peers' Master_Down_Interval; 0 runs it as an ordinary process.
    pub realtime_priority: u8,
    /// At shutdown, how long notify commands still running (the members' `notify_stop`,
    /// `notify … STOP`, or a late `notify_master`) may take before they are killed; zero
    /// kills them at once. keepalived has no such setting.
    pub notify_shutdown_timeout: Duration,
}

/// Where and how state-change mails are sent (keepalived `notification_email*`,
/// `smtp_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailSettings {
    /// Recipients.
    pub to: Vec<String>,
    /// Sender address.
    pub from: String,
    /// SMTP server host name or address.
    pub smtp_server: String,
    /// SMTP server port.
    pub smtp_port: u16,
    /// Give up connecting to the SMTP server after this long.
    pub smtp_connect_timeout: Duration,
}

/// A command run without a shell: `argv[0]` is the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Program and arguments; never empty.
    pub argv: Vec<String>,
}

/// A periodic health check (keepalived `vrrp_script`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackScript {
    /// Name that instances refer to in `track_script`.
    pub name: String,
    /// What to run; exit status 0 means healthy.
    pub command: Command,
    /// Time between runs.
    pub interval: Duration,
    /// A run that takes longer counts as a failure.
    pub timeout: Duration,
    /// Added to the priority while healthy (positive) or while failing (negative); 0
    /// means a failure puts the instance into FAULT. Range −253..=253.
    pub weight: i16,
    /// Consecutive successes before a failing script counts as healthy.
    pub rise: u32,
    /// Consecutive failures before a healthy script counts as failing.
    pub fall: u32,
}

/// VRRP protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VrrpVersion {
    /// RFC 3768: IPv4 only, whole-second intervals, optional PASS authentication.
    V2,
    /// RFC 5798: IPv4 or IPv6, centisecond intervals, no authentication.
    V3,
}

/// State an instance starts in (keepalived `state`). A hint: the election decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialState {
    /// Start as backup and wait Master_Down_Interval before taking over.
    Backup,
    /// Claim master at once (keepalived semantics); still yields to a higher priority.
    Master,
}

/// Address family of an instance: all its addresses share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    /// IPv4 (VRRP over IP protocol 112 to 224.0.0.18).
    V4,
    /// IPv6 (VRRP over next header 112 to ff02::12).
    V6,
}

impl AddressFamily {
    /// The family of `address`.
    pub fn of(address: IpAddr) -> Self {
        match address {
            IpAddr::V4(_) => Self::V4,
            IpAddr::V6(_) => Self::V6,
        }
    }

    /// Longest prefix length in this family.
    pub fn max_prefix_len(self) -> u8 {
        match self {
            Self::V4 => 32,
            Self::V6 => 128,
        }
    }
}

impl fmt::Display for AddressFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V4 => "IPv4",
            Self::V6 => "IPv6",
        })
    }
}

/// VRRPv2 authentication (RFC 3768 §5.3.6). Deprecated by RFC 5798; kept for keepalived
/// interoperation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    /// Simple text password, at most 8 bytes (longer ones are truncated, as keepalived
    /// does).
    Pass {
        /// The password bytes, 1..=8 long.
        password: Vec<u8>,
    },
}

pub use crate::proto::wire::Ipv4Checksum;

/// A virtual MAC interface for an instance (keepalived `use_vmac`): a macvlan on the
/// instance's interface with the RFC 9568 §7.3 virtual router MAC, which holds the VIPs,
/// so neighbours' ARP / neighbour caches map the VIPs to one MAC whichever router is
/// Active and a failover only moves the switches' MAC tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vmac {
    /// The macvlan's name (keepalived `use_vmac NAME`; default `vrrp.{VRID}`, or
    /// `vrrp6.{VRID}` for IPv6).
    pub name: String,
    /// Send and receive adverts on the instance's own interface rather than the macvlan
    /// (keepalived `vmac_xmit_base`); required with unicast peers.
    pub xmit_base: bool,
}

impl Vmac {
    /// The name vipd gives the macvlan when none is configured.
    pub fn default_name(family: AddressFamily, vrid: u8) -> String {
        match family {
            AddressFamily::V4 => format!("vrrp.{vrid}"),
            AddressFamily::V6 => format!("vrrp6.{vrid}"),
        }
    }
}

/// How the XDP fast path is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpMode {
    /// Native where the driver supports it, else generic, else off with a warning.
    Auto,
    /// Driver (native) mode only; failing to attach is an error.
    Native,
    /// Generic (skb) mode only.
    Generic,
    /// No XDP: adverts via the raw socket only, ARP answered by the kernel.
    Off,
}

/// One virtual IP address of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualAddress {
    /// The address.
    pub address: IpAddr,
    /// Prefix length added with it (default /32 or /128).
    pub prefix_len: u8,
    /// Interface the address is added to (default: the instance's interface).
    pub dev: String,
    /// IPv4 address label (`eth0:vip1`), if any.
    pub label: Option<String>,
}

/// Gratuitous ARP / unsolicited NA behaviour after becoming master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GarpSettings {
    /// Send a second burst this long after becoming master; zero means no second burst
    /// (keepalived `garp_master_delay`).
    pub master_delay: Duration,
    /// Messages per address in each burst (keepalived `garp_master_repeat`).
    pub master_repeat: u32,
    /// Gap between messages in a burst (keepalived `garp_interval`).
    pub interval: Duration,
    /// Re-announce this often while master; zero means never (keepalived
    /// `garp_master_refresh`).
    pub master_refresh: Duration,
    /// Gateways sent a directed ARP request (who-has GW tell VIP) after takeover, so
    /// neighbours that ignore gratuitous ARP learn the new MAC.
    pub gateways: Vec<IpAddr>,
    /// Directed requests per gateway and VIP.
    pub gateway_count: u32,
}

/// A script tracked by an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedScript {
    /// Name of a [`TrackScript`] in [`Config::scripts`].
    pub name: String,
    /// Weight for this instance, overriding the script's own.
    pub weight: i16,
}

/// An interface tracked by an instance (keepalived `track_interface { NAME [weight W] }`).
///
/// keepalived's rule, as for scripts: with weight 0 (the default) the link going down
/// puts the instance into FAULT; a positive weight is added to the priority while the
/// link is up, a negative one while it is down, and a weighted link never causes FAULT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedInterface {
    /// Interface name.
    pub name: String,
    /// Weight, −253..=253.
    pub weight: i16,
}

/// A file whose integer content adjusts the priority of the instances tracking it
/// (keepalived `track_file NAME { file …; weight …; init_file … }`, formerly
/// `vrrp_track_file`).
///
/// # What the daemon does with it (keepalived's rules)
///
/// * **Reading.** The file is (re)read at start and whenever it changes (keepalived uses
///   inotify on the directory: written and closed, moved in, deleted, moved away). Its
///   first 127 bytes are parsed with [`TrackFile::parse_value`] (C `strtol`, base 0). A
///   file that does not exist, cannot be opened, is empty, is deleted or holds no number
///   counts as **0**. A number that overflows or lies outside `-2^31..=2^31` is logged and
///   **ignored**: the previous value stays in force.
/// * **Effect** on one instance, with that instance's weight `w`
///   ([`TrackedFile::weight`] or else [`TrackFile::weight`]): [`track_file_effect`].
///   With `w = 0` the file is a health flag: value 0 is OK, anything else puts the
///   instance into FAULT. Otherwise `value × w` is added to the priority while it is above
///   −254 (capped at +253); at −254 or below the instance goes to FAULT. The sum of all
///   offsets (scripts and files) is added to the configured priority and the result
///   clamped to 1..=254 (never 255: only a configured 255 is the address owner).
/// * **Owners and sync groups.** Instances with priority 255 and members of a
///   [`SyncGroup`] without [`SyncGroup::tracking_weight`] must not float their priority:
///   validation has already turned an inherited or explicit weight of 1 into 0 and removed
///   other weighted entries (with warnings), so [`InstanceSpec::track_files`] is what the
///   daemon applies, as is.
/// * **`init_file`.** At daemon start (not on reload), if [`Self::init`] is set: when the
///   file does not exist, or always with `overwrite`, write `"{value}\n"` to it. Failing
///   to write is logged, not fatal. keepalived refuses to overwrite a path that exists and
///   is not a regular file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackFile {
    /// Name that instances refer to in `track_file`.
    pub name: String,
    /// The file to read; absolute. Its directory should exist (keepalived drops a track
    /// file whose directory is missing at start).
    pub path: PathBuf,
    /// Default weight of instances tracking it, −254..=254 (keepalived's range); default
    /// 1. 0 makes the file a health flag (non-zero = FAULT).
    pub weight: i32,
    /// Value to write at start (keepalived `init_file [VALUE] [overwrite]`); `None`
    /// leaves the file alone.
    pub init: Option<TrackFileInit>,
}

/// keepalived's `init_file [VALUE] [overwrite]` of a [`TrackFile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackFileInit {
    /// The value written, −2³¹..=2³¹−1 (default 0; outside −254..=254 is warned about, as
    /// in keepalived).
    pub value: i64,
    /// Write even if the file exists (keepalived `overwrite`); otherwise only create it.
    pub overwrite: bool,
}

// keepalived's track-file rule lives with the other tracker rules in the protocol core.
pub use crate::proto::health::{TrackFileEffect, track_file_effect};

impl TrackFile {
    /// The value of a track file's contents, as keepalived reads it: at most the first 127
    /// bytes, C `strtol(…, 0)` (leading whitespace, a sign, then `0x…` hex, `0…` octal or
    /// decimal, up to the first other character). Empty contents or no digits give
    /// `Some(0)`; a number beyond `i64`, or outside `-2^31..=2^31`, gives `None`, which
    /// means "ignore this read and keep the previous value".
    pub fn parse_value(contents: &[u8]) -> Option<i64> {
        let bytes = &contents[..contents.len().min(127)];
        let mut rest = bytes;
        while let [b, tail @ ..] = rest {
            if matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
                rest = tail;
            } else {
                break;
            }
        }
        let negative = match rest {
            [b'-', tail @ ..] => {
                rest = tail;
                true
            }
            [b'+', tail @ ..] => {
                rest = tail;
                false
            }
            _ => false,
        };
        let radix: u32 = match rest {
            [b'0', b'x' | b'X', d, ..] if d.is_ascii_hexdigit() => {
                rest = &rest[2..];
                16
            }
            [b'0', ..] => 8,
            _ => 10,
        };
        let mut magnitude: i128 = 0;
        for &b in rest {
            let Some(digit) = char::from(b).to_digit(radix) else {
                break;
            };
            magnitude = magnitude * i128::from(radix) + i128::from(digit);
            if magnitude > i128::from(i64::MAX) + 1 {
                return None; // strtol's ERANGE
            }
        }
        let value = if negative { -magnitude } else { magnitude };
        let value = i64::try_from(value).ok()?;
        (i64::from(i32::MIN)..=i64::from(i32::MAX) + 1)
            .contains(&value)
            .then_some(value)
    }
}

/// A track file tracked by an instance (keepalived `track_file { NAME [weight W] }` in a
/// `vrrp_instance`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedFile {
    /// Name of a [`TrackFile`] in [`Config::track_files`] (see [`Config::track_file`]).
    pub name: String,
    /// This instance's weight, −254..=254, overriding the file's; `None` means the file's
    /// [`TrackFile::weight`].
    pub weight: Option<i32>,
}

impl TrackedFile {
    /// The weight in force: this entry's, else `file`'s.
    pub fn weight_with(&self, file: &TrackFile) -> i32 {
        self.weight.unwrap_or(file.weight)
    }
}

/// Instances that change state together (keepalived `vrrp_sync_group`).
///
/// # What the daemon does with it (keepalived's rules; `proto::sync_group` decides)
///
/// * **FAULT wins.** When any member enters FAULT (link down, failed script or file), the
///   group goes FAULT and every other member leaves its state for FAULT: a master
///   releases its addresses and sends its priority-0 advert, and no member advertises.
///   The group stays FAULT until no member has a fault condition left; then all members
///   leave FAULT through the startup rules and elect as below.
/// * **MASTER together.** When one member becomes MASTER on its own (master-down timer
///   expired, preempting, or starting as MASTER), the others that are BACKUP transition to
///   MASTER at once without waiting for their own timers. (keepalived also holds a member
///   back until every member wants MASTER; vipd does not.)
/// * **BACKUP together.** When a master member drops to BACKUP (it hears a
///   higher-priority master, or a preempting peer), every other member leaves MASTER for
///   BACKUP too.
/// * **Group state and notify.** The group is FAULT while a member is, MASTER when every
///   member is, BACKUP once every member runs and they are neither, STOP when every member
///   has stopped (shutdown, or removed by a reload) or a reload removed the group. On each
///   change the group's [`Self::notify`] runs: `master`/`backup`/`fault`/`stop` for the new
///   state, then `any` with `GROUP NAME STATE 0` appended (priority is always 0 for a
///   group), after the members' own notifications. A reload that keeps the group (by
///   name) keeps its state, so it notifies nothing by itself.
/// * **No floating priority.** Unless [`Self::tracking_weight`], members' weighted
///   tracking is turned off by validation (see [`TrackFile`]; weighted `track_script`
///   entries are removed, `track_interface` weights become 0), so a member's priority is
///   its configured one and all members fail over together instead of splitting between
///   routers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroup {
    /// Group name, passed to its notify commands.
    pub name: String,
    /// Member instance names, in the order written; at least one (one is warned about),
    /// each naming an [`InstanceSpec`] in no other group.
    pub instances: Vec<String>,
    /// Commands run on the group's state changes (`any` gets `GROUP NAME STATE 0`
    /// appended).
    pub notify: NotifyCommands,
    /// Keep members' weighted trackers (keepalived `sync_group_tracking_weight`, or the
    /// deprecated `global_tracking`); default false. keepalived warns this "probably
    /// won't work" when members' weights differ.
    pub tracking_weight: bool,
    /// Mail on the group's state changes (keepalived `smtp_alert`): the group's own
    /// setting, else [`Global::smtp_alert`]. Members mail for their own transitions by
    /// their own [`InstanceSpec::smtp_alert`].
    pub smtp_alert: bool,
}

/// Commands run on state changes (keepalived `notify_*`), without a shell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyCommands {
    /// Run on becoming master.
    pub master: Option<Command>,
    /// Run on becoming backup.
    pub backup: Option<Command>,
    /// Run on entering fault.
    pub fault: Option<Command>,
    /// Run when the instance stops.
    pub stop: Option<Command>,
    /// Run on every change, with `INSTANCE name STATE priority` appended (keepalived
    /// `notify`).
    pub any: Option<Command>,
}

/// One validated virtual router instance (keepalived `vrrp_instance`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSpec {
    /// Instance name (the table key).
    pub name: String,
    /// Interface adverts are sent and received on.
    pub interface: String,
    /// VRID, 1..=255.
    pub virtual_router_id: u8,
    /// Priority, 1..=255; 255 means this router owns the addresses.
    pub priority: u8,
    /// Advertisement interval: whole centiseconds up to 40.95 s (v3) or whole seconds up
    /// to 255 s (v2).
    pub advert_interval: Duration,
    /// Protocol version.
    pub version: VrrpVersion,
    /// Initial state hint.
    pub initial_state: InitialState,
    /// Whether a higher-priority backup takes over from a lower-priority master.
    pub preempt: bool,
    /// Wait this long after start before preempting.
    pub preempt_delay: Duration,
    /// Whether the master accepts packets addressed to the VIPs (RFC 5798 Accept_Mode).
    pub accept_mode: bool,
    /// v2 authentication, if any.
    pub authentication: Option<Authentication>,
    /// Family shared by all addresses of this instance.
    pub family: AddressFamily,
    /// Virtual addresses, at least one, all of [`Self::family`].
    pub virtual_addresses: Vec<VirtualAddress>,
    /// Source address for unicast adverts.
    pub unicast_src_ip: Option<IpAddr>,
    /// Unicast peers; empty means multicast.
    pub unicast_peers: Vec<IpAddr>,
    /// Gratuitous ARP / NA settings.
    pub garp: GarpSettings,
    /// Scripts whose result adjusts priority or causes FAULT.
    pub track_scripts: Vec<TrackedScript>,
    /// Files whose value adjusts priority or causes FAULT ([`TrackFile`] has the rules).
    /// For an address owner or a sync-group member (without
    /// [`SyncGroup::tracking_weight`]) every weight in force here is 0.
    pub track_files: Vec<TrackedFile>,
    /// Further interfaces to watch (the instance's own interface is always watched, with
    /// weight 0): see [`TrackedInterface`]. For a sync-group member (without
    /// [`SyncGroup::tracking_weight`]) every weight here is 0.
    pub track_interfaces: Vec<TrackedInterface>,
    /// Commands run on state changes.
    pub notify: NotifyCommands,
    /// Mail [`Global::mail`]'s recipients on each state change (keepalived
    /// `smtp_alert`): the instance's own setting, else the global one, else off.
    pub smtp_alert: bool,
    /// XDP attach mode.
    pub xdp: XdpMode,
    /// BFD sessions this instance tracks (see [`TrackedBfd`]).
    pub track_bfd: Vec<TrackedBfd>,
    /// L3 mode: the addresses are announced over BGP instead of being added to the
    /// interface (docs/l3.md); `None`: the usual L2 VRRP.
    pub announce: Option<announce::Announce>,
    /// How VRRPv3 adverts over IPv4 sum their checksum (`v3_checksum`, keepalived
    /// `v3_checksum_as_v2`); received adverts are accepted in either form.
    pub v3_checksum: Ipv4Checksum,
    /// The virtual MAC interface, if any (`use_vmac`).
    pub vmac: Option<Vmac>,
}

/// A place in a configuration file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` in `text` (clamped to the text). Scans `text`: to
    /// locate many offsets in one text, use a [`LineIndex`].
    pub fn from_offset(text: &str, offset: usize) -> Self {
        LineIndex::new(text).locate(offset)
    }
}

/// Where each line of a text starts, to turn byte offsets into [`Location`]s in
/// O(log lines) each: a config with 10 000 VIPs has 10 000 located values, and
/// rescanning the file for each was most of the time it took to load.
#[derive(Debug)]
pub struct LineIndex<'t> {
    text: &'t str,
    /// Byte offset of the start of each line; the first is 0.
    starts: Vec<usize>,
}

impl<'t> LineIndex<'t> {
    /// Indexes `text`'s line starts (one pass).
    pub fn new(text: &'t str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self { text, starts }
    }

    /// The location of byte `offset` (clamped to the text, moved back to a character
    /// boundary); columns count characters.
    pub fn locate(&self, offset: usize) -> Location {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        // The last line starting at or before `offset`; `starts[0] == 0` so there is one.
        let line = self.starts.partition_point(|&start| start <= offset).max(1) - 1;
        let line_start = self.starts.get(line).copied().unwrap_or(0);
        Location {
            line: line + 1,
            column: self.text[line_start..offset].chars().count() + 1,
        }
    }
}

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// File name as given to the loader.
    pub file: String,
    /// Where, when known.
    pub location: Option<Location>,
    /// Key path such as `instance.VI_1.priority`; empty for file-level errors.
    pub key: String,
    /// What is wrong.
    pub kind: ErrorKind,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_prefix(f, &self.file, self.location, &self.key)?;
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for ConfigError {}

/// A non-fatal finding: the configuration works, but probably not as intended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// File name as given to the loader.
    pub file: String,
    /// Where, when known.
    pub location: Option<Location>,
    /// Key path such as `instance.VI_1.authentication`.
    pub key: String,
    /// What looks wrong.
    pub kind: WarningKind,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_prefix(f, &self.file, self.location, &self.key)?;
        write!(f, "warning: {}", self.kind)
    }
}

fn write_prefix(
    f: &mut fmt::Formatter<'_>,
    file: &str,
    location: Option<Location>,
    key: &str,
) -> fmt::Result {
    match location {
        Some(Location { line, column }) => write!(f, "{file}:{line}:{column}: ")?,
        None => write!(f, "{file}: ")?,
    }
    if !key.is_empty() {
        write!(f, "{key}: ")?;
    }
    Ok(())
}

/// What is wrong with a configuration. Messages name the rule and, where useful, the
/// fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// The file is not valid TOML, or a value has the wrong type or an unknown key.
    #[error("{message}")]
    Syntax {
        /// The parser's message.
        message: String,
    },
    /// A required key is missing.
    #[error("missing required key `{key}`")]
    Missing {
        /// The key.
        key: &'static str,
    },
    /// The file defines neither an instance nor a virtual server.
    #[error(
        "no instance defined; add an [instance.NAME] table (or a [[virtual_server]] for a \
         load balancer without VRRP)"
    )]
    NoInstances,
    /// `use_vmac` with unicast peers but adverts on the macvlan: unicast adverts leave
    /// from the instance's own interface address (keepalived has the same rule).
    #[error("use_vmac with unicast_peer needs vmac_xmit_base = true")]
    VmacUnicastNeedsXmitBase,
    /// An integer outside its allowed range.
    #[error("{value} is out of range {min}..={max}")]
    OutOfRange {
        /// The value as written.
        value: i64,
        /// Smallest allowed.
        min: i64,
        /// Largest allowed.
        max: i64,
    },
    /// A value that is not one of a fixed set of words.
    #[error("{value:?} is not one of {expected}")]
    NotOneOf {
        /// The value as written.
        value: String,
        /// The allowed values.
        expected: &'static str,
    },
    /// A duration that does not parse.
    #[error("{0}")]
    Duration(#[from] duration::DurationError),
    /// An advert interval of zero.
    #[error("advert_int must be greater than zero")]
    ZeroInterval,
    /// A VRRPv3 interval that is not a whole number of centiseconds.
    #[error(
        "{interval} is not a whole number of centiseconds (VRRPv3 sends the interval in \
         units of 10 ms); use e.g. \"10ms\", \"20ms\" or \"1s\""
    )]
    IntervalNotCentiseconds {
        /// The interval as formatted by vipd.
        interval: String,
    },
    /// A VRRPv3 interval above the 12-bit centisecond field.
    #[error("{interval} is longer than VRRPv3's maximum of 40.95s (4095 centiseconds)")]
    IntervalTooLongV3 {
        /// The interval as formatted by vipd.
        interval: String,
    },
    /// A VRRPv2 interval that is not whole seconds.
    #[error(
        "{interval} is not a whole number of seconds, which VRRPv2 requires; use version = 3 for sub-second intervals"
    )]
    IntervalNotSeconds {
        /// The interval as formatted by vipd.
        interval: String,
    },
    /// A VRRPv2 interval above 255 s.
    #[error("{interval} is longer than VRRPv2's maximum of 255s")]
    IntervalTooLongV2 {
        /// The interval as formatted by vipd.
        interval: String,
    },
    /// A duration above a sanity limit.
    #[error("{value} is longer than the maximum of {max}")]
    DurationTooLong {
        /// The value as formatted by vipd.
        value: String,
        /// The limit as formatted by vipd.
        max: String,
    },
    /// A duration of zero where a positive one is needed.
    #[error("must be greater than zero")]
    ZeroDuration,
    /// Both `preempt` and `nopreempt` are given and disagree.
    #[error("preempt = {preempt} contradicts nopreempt = {nopreempt}; keep only one")]
    PreemptConflict {
        /// `preempt` as written.
        preempt: bool,
        /// `nopreempt` as written.
        nopreempt: bool,
    },
    /// Authentication configured on a VRRPv3 instance.
    #[error(
        "authentication is a VRRPv2 feature (RFC 5798 removed it); remove it or set version = 2"
    )]
    AuthenticationWithV3,
    /// An empty password.
    #[error("auth_pass must not be empty")]
    EmptyPassword,
    /// `auth_type = "AH"`.
    #[error("auth_type AH is not supported (it never interoperated); use PASS or none")]
    AhNotSupported,
    /// Not an IP address.
    #[error("{text:?} is not an IP address")]
    BadAddress {
        /// The text as written.
        text: String,
    },
    /// A prefix length that is not a number or too long for the family.
    #[error("{text:?}: prefix length must be 0..={max}")]
    BadPrefix {
        /// The address text as written.
        text: String,
        /// Longest prefix allowed.
        max: u8,
    },
    /// No virtual addresses.
    #[error("virtual_ipaddress must list at least one address")]
    NoVirtualAddresses,
    /// More addresses than one instance can hold (the XDP lease map's size).
    #[error("{count} virtual addresses; an instance holds at most {max}")]
    TooManyAddresses {
        /// The limit.
        max: usize,
        /// How many were listed.
        count: usize,
    },
    /// Addresses of both families in one instance.
    #[error(
        "{address} is {found} but this instance's first address is {expected}; use one instance per address family"
    )]
    MixedFamilies {
        /// The offending address.
        address: IpAddr,
        /// Its family.
        found: AddressFamily,
        /// The instance's family.
        expected: AddressFamily,
    },
    /// IPv6 with VRRPv2.
    #[error("{address} is IPv6, which VRRPv2 cannot carry; set version = 3")]
    Ipv6WithV2 {
        /// The offending address.
        address: IpAddr,
    },
    /// The same VIP twice in one instance.
    #[error("{address} is listed twice")]
    DuplicateAddress {
        /// The address.
        address: IpAddr,
    },
    /// The same VIP in two instances.
    #[error(
        "{address} is also a virtual address of instance {other}; two routers would fight over it"
    )]
    AddressInTwoInstances {
        /// The address.
        address: IpAddr,
        /// The other instance.
        other: String,
    },
    /// A unicast address of the wrong family.
    #[error("{address} is {found} but the instance's virtual addresses are {expected}")]
    FamilyMismatch {
        /// The offending address.
        address: IpAddr,
        /// Its family.
        found: AddressFamily,
        /// The instance's family.
        expected: AddressFamily,
    },
    /// `unicast_src_ip` also listed as a peer.
    #[error("{address} is both unicast_src_ip and a unicast_peer")]
    PeerIsSelf {
        /// The address.
        address: IpAddr,
    },
    /// An invalid Linux interface name.
    #[error("{name:?} is not a valid interface name ({reason})")]
    BadInterfaceName {
        /// The name as written.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A label that the kernel would reject.
    #[error("label {label:?} {reason}")]
    BadLabel {
        /// The label as written.
        label: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// Two instances with the same interface, VRID and family.
    #[error(
        "interface {interface} VRID {vrid} {family} is also used by instance {other}; VRIDs must be unique per interface and family"
    )]
    DuplicateVrid {
        /// Interface.
        interface: String,
        /// VRID.
        vrid: u8,
        /// Family.
        family: AddressFamily,
        /// The other instance.
        other: String,
    },
    /// Two instances or scripts with the same name (possible in keepalived.conf).
    #[error("name {name:?} is defined twice")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// An empty name or command.
    #[error("must not be empty")]
    Empty,
    /// A quoted command line with an unterminated quote.
    #[error("unterminated quote in {text:?}")]
    UnterminatedQuote {
        /// The command line as written.
        text: String,
    },
    /// `track_script` names a script that is not defined.
    #[error("no script named {name:?}; define it as [script.{name}]")]
    UnknownScript {
        /// The name as written.
        name: String,
    },
    /// `track_file` names a track file that is not defined.
    #[error("no track file named {name:?}; define it as [track_file.{name}]")]
    UnknownTrackFile {
        /// The name as written.
        name: String,
    },
    /// A sync group lists an instance that is not defined.
    #[error("no instance named {name:?}; a sync group's `group` lists instance names")]
    UnknownGroupMember {
        /// The name as written.
        name: String,
    },
    /// An instance in two sync groups (keepalived ignores the second membership).
    #[error(
        "instance {instance:?} is already in sync group {other:?}; an instance can be in one sync group only"
    )]
    InstanceInTwoGroups {
        /// The instance.
        instance: String,
        /// The group it was listed in first.
        other: String,
    },
    /// A sync group with no member.
    #[error("a sync group needs at least one instance in `group`")]
    EmptyGroup,
    /// The same name twice in one list (a group's members, an instance's track files).
    #[error("{name:?} is listed twice")]
    ListedTwice {
        /// The name.
        name: String,
    },
    /// A relative control socket path.
    #[error("{path:?} must be an absolute path")]
    RelativePath {
        /// The path as written.
        path: String,
    },
    /// A keepalived.conf syntax, value-shape or include error.
    #[error(transparent)]
    Keepalived(#[from] keepalived::KeepalivedError),
    // ---- BFD (bfd_instance, track_bfd) ----
    /// `track_bfd` names a BFD session that is not defined.
    #[error(
        "no BFD session named {name:?}; define it as [bfd.{name}] (keepalived: bfd_instance {name})"
    )]
    UnknownBfd {
        /// The name as written.
        name: String,
    },
    /// A `track_bfd` entry marked `peer` with a weight.
    #[error(
        "a peer BFD session takes over as Master_Down and has no weight; remove `weight` or `peer`"
    )]
    BfdPeerWithWeight,
    /// `source_ip` and `neighbor_ip` of different families.
    #[error("source_ip {source_ip} is not of neighbor_ip {neighbor}'s family")]
    BfdSourceFamily {
        /// source_ip.
        source_ip: IpAddr,
        /// neighbor_ip.
        neighbor: IpAddr,
    },
    /// A BFD interval out of range.
    #[error("{value} is outside {min}..={max}")]
    BfdInterval {
        /// As written, formatted.
        value: String,
        /// Shortest.
        min: String,
        /// Longest.
        max: String,
    },
    /// Two BFD sessions to one neighbour: RFC 5881 §3 allows one per address pair.
    #[error("a BFD session to {neighbor} is already defined as {other:?}")]
    BfdDuplicateNeighbor {
        /// The neighbour.
        neighbor: IpAddr,
        /// The other session.
        other: String,
    },
    /// A virtual server, real server or checker rule.
    #[error(transparent)]
    Lb(#[from] validate::LbError),
    /// A BGP community that is not `ASN:VALUE` with both in 0..=65535.
    #[error("{text:?} is not a BGP community ASN:VALUE (each 0..=65535, RFC 1997)")]
    BadCommunity {
        /// As written.
        text: String,
    },
    /// An `announce_*` key without `announce = "bgp"`.
    #[error("{key} has no effect without announce = \"bgp\"")]
    AnnounceKeyWithoutAnnounce {
        /// The key written.
        key: &'static str,
    },
    /// A standby path in active-active mode, where every node announces the same.
    #[error(
        "{key} is for announce_mode = \"active-standby\" (in active-active every healthy \
         node announces the same path)"
    )]
    StandbyPathNotActiveStandby {
        /// The key written.
        key: &'static str,
    },
    /// A virtual server in active-standby: it has no VRRP election to follow.
    #[error(
        "a virtual_server has no VRRP state to follow: announce it active-active, or \
         announce its address from a vrrp_instance with announce_mode = \"active-standby\""
    )]
    VirtualServerActiveStandby,
}

/// What looks wrong but still works.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WarningKind {
    /// A v2 password longer than 8 bytes; only the first 8 go on the wire.
    #[error("auth_pass is {len} bytes; only the first 8 ({kept:?}) are used, as in keepalived")]
    PasswordTruncated {
        /// Length as written.
        len: usize,
        /// What is kept.
        kept: String,
    },
    /// More VIPs than an advert lists (IPv4: the 8-bit count field, 255; IPv6: 64, so the
    /// advert is not fragmented): the rest are held and announced but not listed
    /// (keepalived's `virtual_ipaddress_excluded`).
    #[error(
        "{count} virtual addresses; adverts list the first {listed}, the rest are held without being advertised, like keepalived's virtual_ipaddress_excluded"
    )]
    AddressesBeyondAdvert {
        /// How many were configured.
        count: usize,
        /// How many adverts list.
        listed: usize,
    },
    /// `preempt_delay` set while preemption is off.
    #[error("preempt_delay has no effect with preemption off")]
    PreemptDelayWithoutPreempt,
    /// `unicast_src_ip` without peers.
    #[error("unicast_src_ip is ignored without unicast_peer (adverts are multicast)")]
    UnicastSrcWithoutPeers,
    /// A `use_vmac` setting without `use_vmac` itself.
    #[error("ignored without use_vmac")]
    VmacSettingWithoutVmac,
    /// `v3_checksum` on a VRRPv2 or IPv6 instance, which have one checksum form.
    #[error("v3_checksum only applies to VRRPv3 over IPv4; ignored")]
    V3ChecksumIgnored,
    /// A peer listed twice.
    #[error("{address} is listed twice")]
    DuplicatePeer {
        /// The peer.
        address: IpAddr,
    },
    /// `garp_gateway_count` without gateways.
    #[error("garp_gateway_count has no effect without garp_gateways")]
    GatewayCountWithoutGateways,
    /// Priority 255 with `state = BACKUP`.
    #[error(
        "priority 255 makes this router the address owner, which always starts as MASTER (RFC 5798 §6.4.1); state = BACKUP is ignored"
    )]
    OwnerStartsAsMaster,
    /// A script defined but tracked by no instance.
    #[error("script {name:?} is not tracked by any instance")]
    UnusedScript {
        /// The script.
        name: String,
    },
    /// A track file defined but tracked by no instance.
    #[error("track file {name:?} is not tracked by any instance")]
    UnusedTrackFile {
        /// The track file.
        name: String,
    },
    /// A sync group of one instance (keepalived warns the same).
    #[error("sync group {name:?} has only one instance; this probably isn't what you want")]
    SingleMemberGroup {
        /// The group.
        name: String,
    },
    /// An `init_file` value a VRRP priority cannot use (keepalived warns the same).
    #[error("init_file value {value} is outside the sensible range -254..=254")]
    InitValueNotSensible {
        /// The value.
        value: i64,
    },
    /// A tracker weight of 1 (written or inherited) turned into 0, as keepalived does for
    /// sync-group members and address owners.
    #[error(
        "weight 1 of track_file {name:?} is treated as 0 (a non-zero value means FAULT) because {reason}; write weight 0"
    )]
    TrackerWeightZeroed {
        /// The track file.
        name: String,
        /// "this instance is in sync group G" or "this instance is the address owner".
        reason: String,
    },
    /// A tracked interface's weight set to 0, as keepalived does for sync-group members:
    /// their priority must not float.
    #[error(
        "weight {weight} of track_interface {name:?} is ignored because {reason}: the link going down puts the instance into FAULT"
    )]
    InterfaceWeightZeroed {
        /// The interface.
        name: String,
        /// The weight as configured.
        weight: i16,
        /// "this instance is in sync group G".
        reason: String,
    },
    /// A weighted tracker removed, as keepalived does for sync-group members and address
    /// owners: their priority must not float.
    #[error("{tracker} {name:?} with weight {weight} is ignored because {reason}")]
    TrackerIgnored {
        /// `track_script` or `track_file`.
        tracker: &'static str,
        /// The tracked script or file.
        name: String,
        /// Its weight in force.
        weight: i32,
        /// "this instance is in sync group G" or "this instance is the address owner".
        reason: String,
    },
    /// A command whose program is not an absolute path.
    #[error("{program:?} is not an absolute path; it is looked up in vipd's PATH")]
    RelativeProgram {
        /// The program as written.
        program: String,
    },
    /// Mail recipients without an SMTP server.
    #[error("notification_email is set but smtp_server is not; no mail will be sent")]
    MailWithoutSmtpServer,
    /// Something in a keepalived.conf that vipd ignores or runs differently.
    #[error(transparent)]
    Keepalived(#[from] keepalived::KeepalivedWarning),
    /// A virtual server that loads but probably does not do what was meant.
    #[error(transparent)]
    Lb(#[from] validate::LbWarning),
}

/// Every error found in a configuration, plus the warnings seen on the way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", display_lines(.errors))]
pub struct ConfigErrors {
    /// The errors, in file order where locations are known; never empty.
    pub errors: Vec<ConfigError>,
    /// Warnings found before giving up.
    pub warnings: Vec<ConfigWarning>,
}

fn display_lines(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A configuration that passed validation, with its warnings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The validated model.
    pub config: Config,
    /// Non-fatal findings, for the log or `vipd check`.
    pub warnings: Vec<ConfigWarning>,
}

/// Why [`load`] failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid configuration.
    #[error(transparent)]
    Invalid(#[from] ConfigErrors),
}

/// Reads and validates a configuration file, native TOML or keepalived.conf (see
/// [`is_keepalived`]).
pub fn load(path: &Path) -> Result<Loaded, LoadError> {
    let text = read(path)?;
    let name = path.display().to_string();
    if is_keepalived(path, &text) {
        Ok(parse_keepalived(
            &text,
            &name,
            keepalived::Includes::Follow,
        )?)
    } else {
        Ok(parse_toml(&text, &name)?)
    }
}

/// Files anyone on the host may rewrite, which vipd (as root) would read or run: the
/// configuration itself and every program it runs (track scripts, notify commands).
/// One line each, for a warning at `check` and at start: a world-writable script is a
/// root shell for every local user.
pub fn permission_warnings(path: &Path, config: &Config) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt as _;
    let world_writable = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o002 != 0)
            .unwrap_or(false)
    };
    let mut out = Vec::new();
    if world_writable(path) {
        out.push(format!(
            "{}: warning: the configuration file is world-writable; any local user could change what vipd (running as root) does: chmod o-w {}",
            path.display(),
            path.display()
        ));
    }
    let commands = config
        .scripts
        .iter()
        .map(|s| &s.command)
        .chain(config.instances.iter().flat_map(|i| {
            [
                &i.notify.master,
                &i.notify.backup,
                &i.notify.fault,
                &i.notify.stop,
                &i.notify.any,
            ]
            .into_iter()
            .flatten()
        }))
        .chain(config.sync_groups.iter().flat_map(|g| {
            [
                &g.notify.master,
                &g.notify.backup,
                &g.notify.fault,
                &g.notify.stop,
                &g.notify.any,
            ]
            .into_iter()
            .flatten()
        }));
    let mut seen = std::collections::HashSet::new();
    for command in commands {
        // For `bash -c LINE` the program is bash; the script file, if any, is the
        // first word of the line that names an existing file.
        let candidates: Vec<&str> = match command.argv.as_slice() {
            [shell, flag, line, ..] if shell.ends_with("bash") && flag == "-c" => {
                line.split_whitespace().collect()
            }
            argv => argv.first().map(String::as_str).into_iter().collect(),
        };
        for program in candidates {
            let program = Path::new(program);
            if program.is_absolute() && seen.insert(program.to_owned()) && world_writable(program) {
                out.push(format!(
                    "{}: warning: {} is world-writable and vipd runs it as root: chmod o-w {}",
                    path.display(),
                    program.display(),
                    program.display()
                ));
            }
        }
    }
    out
}

/// Reads and validates a keepalived.conf, following its `include`s
/// (`vipd run --keepalived-conf`).
pub fn load_keepalived(path: &Path) -> Result<Loaded, LoadError> {
    let text = read(path)?;
    let name = path.display().to_string();
    Ok(parse_keepalived(
        &text,
        &name,
        keepalived::Includes::Follow,
    )?)
}

/// Whether a file is keepalived.conf rather than TOML: its name ends in `.conf`, or a line
/// starts with a keepalived block keyword (`global_defs`, `vrrp_instance`, …).
pub fn is_keepalived(path: &Path, text: &str) -> bool {
    keepalived::looks_like_keepalived(path, text)
}

fn read(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod lb_tests;
