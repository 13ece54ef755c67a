//! Semantic validation: [`Draft`] in, [`Loaded`] or every error out.
//!
//! Each rule reports through [`Checker`], which keeps going after an error so that one
//! `vipd check` run shows everything that needs fixing. Defaults are applied here and
//! nowhere else.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::Ipv4Checksum;
use super::bfd::defaults as bfd_defaults;
use super::draft::DraftBfd;
use super::draft::{
    Draft, DraftCommand, DraftGlobal, DraftInstance, DraftScript, DraftSyncGroup, DraftTrackFile,
    Sourced,
};
use super::duration;
use super::{
    AddressFamily, Authentication, Command, Config, ConfigError, ConfigErrors, ConfigWarning,
    DEFAULT_CONTROL_SOCKET, ErrorKind, GarpSettings, Global, InitialState, InstanceSpec, Loaded,
    Location, MailSettings, NotifyCommands, SyncGroup, TrackFile, TrackFileInit, TrackScript,
    TrackedFile, TrackedInterface, TrackedScript, VirtualAddress, Vmac, VrrpVersion, WarningKind,
    XdpMode,
};
use super::{BfdInstance, TrackedBfd};

/// Defaults, named so docs/configuration.md and the code can be checked against each other.
pub mod defaults {
    use std::time::Duration;

    /// `priority`.
    pub const PRIORITY: u8 = 100;
    /// `advert_int`.
    pub const ADVERT_INT: Duration = Duration::from_secs(1);
    /// `garp_master_delay` (keepalived's default).
    pub const GARP_MASTER_DELAY: Duration = Duration::from_secs(5);
    /// `garp_master_repeat` (keepalived's default).
    pub const GARP_MASTER_REPEAT: u32 = 5;
    /// `garp_gateway_count`: what `arping -c 3` did in the seed article.
    pub const GARP_GATEWAY_COUNT: u32 = 3;
    /// `script.*.interval`.
    pub const SCRIPT_INTERVAL: Duration = Duration::from_secs(1);
    /// `smtp_port`.
    pub const SMTP_PORT: u16 = 25;
    /// `realtime_priority`: above ordinary processes, below the kernel's threaded
    /// interrupt handlers (priority 50), which must keep delivering our packets.
    pub const REALTIME_PRIORITY: u8 = 10;
    /// `notify_shutdown_timeout`: long enough for a stop script that tells a load
    /// balancer or a peer, well inside systemd's default TimeoutStopSec (90 s).
    pub const NOTIFY_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
    /// `smtp_connect_timeout` (keepalived's default).
    pub const SMTP_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
    /// `notification_email_from`.
    pub const MAIL_FROM: &str = "vipd@localhost";
    /// `track_file.*.weight` (keepalived's default).
    pub const TRACK_FILE_WEIGHT: i32 = 1;
    /// `track_file.*.init_file` value when only `overwrite` is given (keepalived's).
    pub const TRACK_FILE_INIT_VALUE: i64 = 0;
    /// `virtual_server.delay_loop` (keepalived's default).
    pub const LB_DELAY_LOOP: Duration = Duration::from_secs(60);
    /// Checkers' `connect_timeout` (keepalived's default).
    pub const LB_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    /// `retry` of HTTP_GET, SSL_GET and TCP_CHECK (keepalived's default).
    pub const LB_RETRY: u32 = 1;
    /// `retry` of MISC_CHECK (keepalived's default).
    pub const LB_MISC_RETRY: u32 = 0;
    /// `retry` of DNS_CHECK (keepalived's default).
    pub const LB_DNS_RETRY: u32 = 3;
    /// FILE_CHECK's `delay_loop`: how often the track file is re-read.
    pub const LB_FILE_CHECK_LOOP: Duration = Duration::from_secs(1);
    /// BFD_CHECK's `delay_loop`: how often the session's state is re-read (a change
    /// is applied when it happens).
    pub const LB_BFD_CHECK_LOOP: Duration = Duration::from_secs(1);
    /// SMTP_CHECK `helo_name` (keepalived's is its own domain's name).
    pub const LB_SMTP_HELO: &str = "localhost";
    /// UDP_CHECK `max_reply_length` (keepalived's default).
    pub const LB_UDP_MAX_REPLY: u16 = 255;
    /// Checkers' `delay_before_retry` (keepalived's default).
    pub const LB_DELAY_BEFORE_RETRY: Duration = Duration::from_secs(1);
    /// `real_server.weight` (keepalived's default).
    pub const LB_WEIGHT: u32 = 1;
    /// `virtual_server.quorum` (keepalived's default).
    pub const LB_QUORUM: u32 = 1;
}

#[path = "validate_lb.rs"]
mod lb;

#[path = "validate_announce.rs"]
mod announce;

pub use self::lb::{LbError, LbWarning, protocol_name};

/// keepalived's range for track file weights, in declarations and in instances.
const TRACK_FILE_WEIGHT_RANGE: (i64, i64) = (-254, 254);

/// Longest `preempt_delay` (keepalived's limit).
const MAX_PREEMPT_DELAY: Duration = Duration::from_secs(1000);
/// Longest GARP timing or script interval/timeout: an hour is already absurd.
const MAX_TIMER: Duration = Duration::from_secs(3600);
/// RFC 5798 §5.2.7: 12-bit field in centiseconds.
const MAX_INTERVAL_CS: u128 = 4095;
/// RFC 3768 §5.3.7: 8-bit field in seconds.
const MAX_INTERVAL_V2_SECS: u128 = 255;
/// IFNAMSIZ − 1.
const MAX_IFNAME_LEN: usize = 15;

/// Validates a draft, applying defaults.
pub fn validate(draft: &Draft) -> Result<Loaded, ConfigErrors> {
    let mut checker = Checker {
        file: draft.file.clone(),
        errors: Vec::new(),
        warnings: Vec::new(),
        track_files: Vec::new(),
        bfd_names: Vec::new(),
    };
    let config = checker.config(draft);
    match config {
        Some(config) if checker.errors.is_empty() => Ok(Loaded {
            config,
            warnings: checker.warnings,
        }),
        _ => {
            checker.errors.sort_by_key(|e| e.location);
            Err(ConfigErrors {
                errors: checker.errors,
                warnings: checker.warnings,
            })
        }
    }
}

/// Formats `section.name.key`, quoting `name` as TOML would when it is not a bare key.
fn key_path(section: &str, name: &str, key: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let name = if bare {
        name.to_owned()
    } else {
        format!("{name:?}")
    };
    if key.is_empty() {
        format!("{section}.{name}")
    } else {
        format!("{section}.{name}.{key}")
    }
}

/// keepalived's `smtp_alert` rule for an instance or a sync group: its own setting, else
/// the global one, else off.
fn smtp_alert(own: Option<&Sourced<bool>>, global: &DraftGlobal) -> bool {
    own.or(global.smtp_alert.as_ref()).is_some_and(|s| s.value)
}

/// Collects errors and warnings; every check returns `None` after reporting.
struct Checker {
    file: String,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigWarning>,
    /// The valid `track_file` blocks, for the virtual servers' FILE_CHECKs.
    track_files: Vec<TrackFile>,
    /// The names of the BFD sessions, for the virtual servers' BFD_CHECKs (those that
    /// failed validation too: their own errors say why).
    bfd_names: Vec<String>,
}

impl Checker {
    fn error(&mut self, at: Option<Location>, key: &str, kind: ErrorKind) {
        self.errors.push(ConfigError {
            file: self.file.clone(),
            location: at,
            key: key.to_owned(),
            kind,
        });
    }

    fn warn(&mut self, at: Option<Location>, key: &str, kind: WarningKind) {
        self.warnings.push(ConfigWarning {
            file: self.file.clone(),
            location: at,
            key: key.to_owned(),
            kind,
        });
    }

    /// An integer in `min..=max`, or `default` when absent.
    fn int<T: TryFrom<i64>>(
        &mut self,
        value: Option<&Sourced<i64>>,
        key: &str,
        (min, max): (i64, i64),
        default: Option<T>,
    ) -> Option<T> {
        let Some(value) = value else {
            return default;
        };
        if (min..=max).contains(&value.value)
            && let Ok(converted) = T::try_from(value.value)
        {
            return Some(converted);
        }
        self.error(
            value.at,
            key,
            ErrorKind::OutOfRange {
                value: value.value,
                min,
                max,
            },
        );
        None
    }

    /// A duration no longer than `max`, or `default` when absent.
    fn duration(
        &mut self,
        value: Option<&Sourced<String>>,
        key: &str,
        max: Duration,
        default: Duration,
    ) -> Option<Duration> {
        let Some(value) = value else {
            return Some(default);
        };
        match duration::parse(&value.value) {
            Ok(parsed) if parsed <= max => Some(parsed),
            Ok(parsed) => {
                self.error(
                    value.at,
                    key,
                    ErrorKind::DurationTooLong {
                        value: duration::format(parsed),
                        max: duration::format(max),
                    },
                );
                None
            }
            Err(err) => {
                self.error(value.at, key, err.into());
                None
            }
        }
    }

    fn address(&mut self, value: &Sourced<String>, key: &str) -> Option<IpAddr> {
        match value.value.trim().parse() {
            Ok(address) => Some(address),
            Err(_) => {
                self.error(
                    value.at,
                    key,
                    ErrorKind::BadAddress {
                        text: value.value.clone(),
                    },
                );
                None
            }
        }
    }

    /// `address` or `address/prefix`; the prefix defaults to the family's full length.
    fn address_with_prefix(&mut self, value: &Sourced<String>, key: &str) -> Option<(IpAddr, u8)> {
        let text = value.value.trim();
        let (address_text, prefix_text) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address = self.address(&Sourced::new(address_text.to_owned(), value.at), key)?;
        let max = AddressFamily::of(address).max_prefix_len();
        let Some(prefix_text) = prefix_text else {
            return Some((address, max));
        };
        match prefix_text.parse::<u8>() {
            Ok(prefix) if prefix <= max => Some((address, prefix)),
            _ => {
                self.error(
                    value.at,
                    key,
                    ErrorKind::BadPrefix {
                        text: value.value.clone(),
                        max,
                    },
                );
                None
            }
        }
    }

    /// A word from a fixed set, case-insensitive.
    fn keyword<T: Copy>(
        &mut self,
        value: Option<&Sourced<String>>,
        key: &str,
        choices: &[(&str, T)],
        expected: &'static str,
        default: T,
    ) -> Option<T> {
        let Some(value) = value else {
            return Some(default);
        };
        let found = choices
            .iter()
            .find(|(word, _)| word.eq_ignore_ascii_case(value.value.trim()));
        match found {
            Some((_, choice)) => Some(*choice),
            None => {
                self.error(
                    value.at,
                    key,
                    ErrorKind::NotOneOf {
                        value: value.value.clone(),
                        expected,
                    },
                );
                None
            }
        }
    }

    /// Linux `dev_valid_name`: 1..=15 bytes, not `.`/`..`, no `/`, `:` or whitespace.
    fn interface_name(&mut self, value: &Sourced<String>, key: &str) -> Option<String> {
        let name = &value.value;
        let reason = if name.is_empty() {
            Some("empty")
        } else if name.len() > MAX_IFNAME_LEN {
            Some("longer than 15 bytes")
        } else if name == "." || name == ".." {
            Some("reserved")
        } else if name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
        {
            Some("contains '/', ':' or whitespace")
        } else {
            None
        };
        match reason {
            None => Some(name.clone()),
            Some(reason) => {
                self.error(
                    value.at,
                    key,
                    ErrorKind::BadInterfaceName {
                        name: name.clone(),
                        reason,
                    },
                );
                None
            }
        }
    }

    fn command(&mut self, value: &Sourced<DraftCommand>, key: &str) -> Option<Command> {
        let argv = match &value.value {
            DraftCommand::Argv(argv) => argv.clone(),
            DraftCommand::Line(line) => match split_command_line(line) {
                Some(argv) => argv,
                None => {
                    self.error(
                        value.at,
                        key,
                        ErrorKind::UnterminatedQuote { text: line.clone() },
                    );
                    return None;
                }
            },
        };
        let Some(program) = argv.first().filter(|p| !p.is_empty()) else {
            self.error(value.at, key, ErrorKind::Empty);
            return None;
        };
        if !program.starts_with('/') {
            self.warn(
                value.at,
                key,
                WarningKind::RelativeProgram {
                    program: program.clone(),
                },
            );
        }
        Some(Command { argv })
    }

    fn config(&mut self, draft: &Draft) -> Option<Config> {
        let global = self.global(&draft.global);
        let scripts = self.scripts(&draft.scripts);
        // A load balancer alone (keepalived's LVS-only director) needs no instance.
        if draft.instances.is_empty() && draft.virtual_servers.is_empty() {
            self.error(draft.end, "", ErrorKind::NoInstances);
        }
        // Out-of-range weights were reported above; 0 keeps the lookup total.
        let script_weights: HashMap<&str, i16> = draft
            .scripts
            .iter()
            .map(|s| {
                let weight = s
                    .weight
                    .as_ref()
                    .map_or(0, |w| i16::try_from(w.value).unwrap_or(0));
                (s.name.value.as_str(), weight)
            })
            .collect();
        let track_files = self.track_files(&draft.track_files);
        // Out-of-range weights were reported above; the default keeps the lookup total.
        let file_weights: HashMap<&str, i32> = draft
            .track_files
            .iter()
            .map(|f| {
                let weight = f.weight.as_ref().map_or(defaults::TRACK_FILE_WEIGHT, |w| {
                    i32::try_from(w.value).unwrap_or(defaults::TRACK_FILE_WEIGHT)
                });
                (f.name.value.as_str(), weight)
            })
            .collect();
        let mut instances = Vec::new();
        let mut seen_names = HashSet::new();
        for instance in &draft.instances {
            if !seen_names.insert(instance.name.value.as_str()) {
                self.error(
                    instance.name.at,
                    &key_path("instance", &instance.name.value, ""),
                    ErrorKind::DuplicateName {
                        name: instance.name.value.clone(),
                    },
                );
            }
            if let Some(mut spec) = self.instance(instance, &script_weights, &file_weights) {
                spec.smtp_alert = smtp_alert(instance.smtp_alert.as_ref(), &draft.global);
                instances.push((spec, instance));
            }
        }
        self.cross_instance(&instances);
        let bfd_instances = self.bfd(&draft.bfd_instances, &mut instances);
        let specs: Vec<InstanceSpec> = instances.iter().map(|(spec, _)| spec.clone()).collect();
        self.track_files = track_files.clone().unwrap_or_default();
        self.bfd_names = draft
            .bfd_instances
            .iter()
            .map(|b| b.name.value.clone())
            .collect();
        let virtual_servers =
            self.virtual_servers(&draft.virtual_servers, &draft.virtual_server_groups, &specs);
        let sync_groups = self.sync_groups(&draft.sync_groups, &draft.instances, &draft.global);
        if let Some(groups) = &sync_groups {
            self.fixed_priorities(&mut instances, groups, &file_weights);
        }
        let tracked: HashSet<&str> = draft
            .instances
            .iter()
            .flat_map(|i| i.track_script.iter().map(|t| t.name.value.as_str()))
            .collect();
        for script in &draft.scripts {
            if !tracked.contains(script.name.value.as_str()) {
                self.warn(
                    script.name.at,
                    &key_path("script", &script.name.value, ""),
                    WarningKind::UnusedScript {
                        name: script.name.value.clone(),
                    },
                );
            }
        }
        let tracked_files: HashSet<&str> = draft
            .instances
            .iter()
            .flat_map(|i| i.track_file.iter().map(|t| t.name.value.as_str()))
            .chain(
                draft
                    .virtual_servers
                    .iter()
                    .flat_map(|vs| &vs.real_servers)
                    .flat_map(|rs| &rs.checkers)
                    .filter_map(|c| c.track_file.as_ref().map(|t| t.value.as_str())),
            )
            .collect();
        for file in &draft.track_files {
            if !tracked_files.contains(file.name.value.as_str()) {
                self.warn(
                    file.name.at,
                    &key_path("track_file", &file.name.value, ""),
                    WarningKind::UnusedTrackFile {
                        name: file.name.value.clone(),
                    },
                );
            }
        }
        Some(Config {
            global: global?,
            scripts: scripts?,
            track_files: track_files?,
            instances: instances.into_iter().map(|(spec, _)| spec).collect(),
            sync_groups: sync_groups?,
            virtual_servers: virtual_servers?,
            bfd_instances: bfd_instances?,
        })
    }

    fn global(&mut self, global: &DraftGlobal) -> Option<Global> {
        let errors_before = self.errors.len();
        let router_id = match &global.router_id {
            Some(id) if id.value.trim().is_empty() => {
                self.error(id.at, "global.router_id", ErrorKind::Empty);
                None
            }
            Some(id) => Some(id.value.clone()),
            None => None,
        };
        let control_socket = match &global.control_socket {
            Some(path) if !path.value.starts_with('/') => {
                self.error(
                    path.at,
                    "global.control_socket",
                    ErrorKind::RelativePath {
                        path: path.value.clone(),
                    },
                );
                PathBuf::new()
            }
            Some(path) => PathBuf::from(&path.value),
            None => PathBuf::from(DEFAULT_CONTROL_SOCKET),
        };
        let smtp_port = self.int(
            global.smtp_port.as_ref(),
            "global.smtp_port",
            (1, 65535),
            Some(defaults::SMTP_PORT),
        );
        let timeout = self.positive_duration(
            global.smtp_connect_timeout.as_ref(),
            "global.smtp_connect_timeout",
            defaults::SMTP_CONNECT_TIMEOUT,
        );
        let realtime_priority = self.int(
            global.realtime_priority.as_ref(),
            "global.realtime_priority",
            (0, 99),
            Some(defaults::REALTIME_PRIORITY),
        );
        let notify_shutdown_timeout = self.duration(
            global.notify_shutdown_timeout.as_ref(),
            "global.notify_shutdown_timeout",
            MAX_TIMER,
            defaults::NOTIFY_SHUTDOWN_TIMEOUT,
        );
        for address in &global.notification_email {
            if address.value.trim().is_empty() {
                self.error(address.at, "global.notification_email", ErrorKind::Empty);
            }
        }
        let mail = match (&global.smtp_server, global.notification_email.first()) {
            (_, None) => None,
            (None, Some(first)) => {
                self.warn(
                    first.at,
                    "global.notification_email",
                    WarningKind::MailWithoutSmtpServer,
                );
                None
            }
            (Some(server), Some(_)) => Some(MailSettings {
                to: global
                    .notification_email
                    .iter()
                    .map(|a| a.value.clone())
                    .collect(),
                from: global
                    .notification_email_from
                    .as_ref()
                    .map_or_else(|| defaults::MAIL_FROM.to_owned(), |f| f.value.clone()),
                smtp_server: server.value.clone(),
                smtp_port: smtp_port?,
                smtp_connect_timeout: timeout?,
            }),
        };
        (self.errors.len() == errors_before).then_some(Global {
            router_id,
            control_socket,
            mail,
            smtp_alert: global.smtp_alert.as_ref().is_some_and(|s| s.value),
            realtime_priority: realtime_priority?,
            notify_shutdown_timeout: notify_shutdown_timeout?,
        })
    }

    /// A duration in `(0, MAX_TIMER]`.
    fn positive_duration(
        &mut self,
        value: Option<&Sourced<String>>,
        key: &str,
        default: Duration,
    ) -> Option<Duration> {
        let parsed = self.duration(value, key, MAX_TIMER, default)?;
        if parsed.is_zero() {
            self.error(value.and_then(|v| v.at), key, ErrorKind::ZeroDuration);
            return None;
        }
        Some(parsed)
    }

    fn scripts(&mut self, scripts: &[DraftScript]) -> Option<Vec<TrackScript>> {
        let errors_before = self.errors.len();
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for script in scripts {
            let name = &script.name.value;
            let key = |k: &str| key_path("script", name, k);
            if !seen.insert(name.as_str()) {
                self.error(
                    script.name.at,
                    &key(""),
                    ErrorKind::DuplicateName { name: name.clone() },
                );
            }
            let command = match &script.script {
                Some(command) => self.command(command, &key("script")),
                None => {
                    self.error(
                        script.name.at,
                        &key(""),
                        ErrorKind::Missing { key: "script" },
                    );
                    None
                }
            };
            let interval = self.positive_duration(
                script.interval.as_ref(),
                &key("interval"),
                defaults::SCRIPT_INTERVAL,
            );
            let timeout = match interval {
                Some(interval) => {
                    self.positive_duration(script.timeout.as_ref(), &key("timeout"), interval)
                }
                None => None,
            };
            let weight = self.int(script.weight.as_ref(), &key("weight"), (-253, 253), Some(0));
            let rise = self.int(script.rise.as_ref(), &key("rise"), (1, 1000), Some(1));
            let fall = self.int(script.fall.as_ref(), &key("fall"), (1, 1000), Some(1));
            if let (
                Some(command),
                Some(interval),
                Some(timeout),
                Some(weight),
                Some(rise),
                Some(fall),
            ) = (command, interval, timeout, weight, rise, fall)
            {
                out.push(TrackScript {
                    name: name.clone(),
                    command,
                    interval,
                    timeout,
                    weight,
                    rise,
                    fall,
                });
            }
        }
        (self.errors.len() == errors_before).then_some(out)
    }

    fn instance(
        &mut self,
        draft: &DraftInstance,
        script_weights: &HashMap<&str, i16>,
        file_weights: &HashMap<&str, i32>,
    ) -> Option<InstanceSpec> {
        let errors_before = self.errors.len();
        let name = &draft.name.value;
        let key = |k: &str| key_path("instance", name, k);
        let missing = |checker: &mut Self, k: &'static str| {
            checker.error(draft.name.at, &key(""), ErrorKind::Missing { key: k });
        };

        let interface = match &draft.interface {
            Some(interface) => self.interface_name(interface, &key("interface")),
            None => {
                missing(self, "interface");
                None
            }
        };
        let virtual_router_id = match &draft.virtual_router_id {
            Some(vrid) => self.int(Some(vrid), &key("virtual_router_id"), (1, 255), None),
            None => {
                missing(self, "virtual_router_id");
                None
            }
        };
        let priority = self.int(
            draft.priority.as_ref(),
            &key("priority"),
            (1, 255),
            Some(defaults::PRIORITY),
        );
        let version = match &draft.version {
            None => Some(VrrpVersion::V3),
            Some(Sourced { value: 2, .. }) => Some(VrrpVersion::V2),
            Some(Sourced { value: 3, .. }) => Some(VrrpVersion::V3),
            Some(other) => {
                self.error(
                    other.at,
                    &key("version"),
                    ErrorKind::OutOfRange {
                        value: other.value,
                        min: 2,
                        max: 3,
                    },
                );
                None
            }
        };
        let advert_interval =
            version.and_then(|v| self.advert_interval(draft, v, &key("advert_int")));
        let initial_state = self.keyword(
            draft.state.as_ref(),
            &key("state"),
            &[
                ("BACKUP", InitialState::Backup),
                ("MASTER", InitialState::Master),
            ],
            "MASTER, BACKUP",
            InitialState::Backup,
        );
        let preempt = self.preempt(draft, &key);
        let preempt_delay = self.duration(
            draft.preempt_delay.as_ref(),
            &key("preempt_delay"),
            MAX_PREEMPT_DELAY,
            Duration::ZERO,
        );
        if let (Some(false), Some(delay)) = (preempt, &draft.preempt_delay)
            && preempt_delay.is_some_and(|d| !d.is_zero())
        {
            self.warn(
                delay.at,
                &key("preempt_delay"),
                WarningKind::PreemptDelayWithoutPreempt,
            );
        }
        let accept_mode = draft.accept_mode.as_ref().is_some_and(|a| a.value);
        let authentication = self.authentication(draft, version, &key("authentication"));

        // The first address that parses sets the family, even when a later entry is bad,
        // so family errors elsewhere are still found in the same run.
        let family = draft.virtual_ipaddress.as_ref().and_then(|list| {
            list.value.iter().find_map(|vip| {
                let text = vip.address.value.trim();
                let address = text.split_once('/').map_or(text, |(a, _)| a);
                address.parse().ok().map(AddressFamily::of)
            })
        });
        let vmac_name = self.vmac_name(draft, family, virtual_router_id, &key);
        // keepalived: with use_vmac, VIPs that name no other interface live on the VMAC.
        let vip_default_dev = match &vmac_name {
            Some(Some(name)) => Some(name.as_str()),
            _ => interface.as_deref(),
        };
        let vips = self.virtual_addresses(draft, vip_default_dev, version, &key);
        let unicast_src_ip = draft.unicast_src_ip.as_ref().and_then(|src| {
            let address = self.address(src, &key("unicast_src_ip"))?;
            self.same_family(address, family, src.at, &key("unicast_src_ip"))
        });
        let unicast_peers = self.unicast_peers(draft, family, unicast_src_ip, &key);
        if let (Some(src), true) = (&draft.unicast_src_ip, draft.unicast_peer.is_empty()) {
            self.warn(
                src.at,
                &key("unicast_src_ip"),
                WarningKind::UnicastSrcWithoutPeers,
            );
        }
        let garp = self.garp(draft, family, &key);
        let track_scripts = self.tracked_scripts(draft, script_weights, &key);
        let track_files = self.tracked_files(draft, file_weights, &key);
        let track_interfaces = self.tracked_interfaces(draft, &key);
        let notify = NotifyCommands {
            master: self.optional_command(draft.notify_master.as_ref(), &key("notify_master")),
            backup: self.optional_command(draft.notify_backup.as_ref(), &key("notify_backup")),
            fault: self.optional_command(draft.notify_fault.as_ref(), &key("notify_fault")),
            stop: self.optional_command(draft.notify_stop.as_ref(), &key("notify_stop")),
            any: self.optional_command(draft.notify.as_ref(), &key("notify")),
        };
        let xdp = self.keyword(
            draft.xdp.as_ref(),
            &key("xdp"),
            &[
                ("auto", XdpMode::Auto),
                ("native", XdpMode::Native),
                ("generic", XdpMode::Generic),
                ("off", XdpMode::Off),
            ],
            "auto, native, generic, off",
            XdpMode::Auto,
        );
        let announce = self.announce(
            &draft.announce,
            announce::AnnounceOwner::Instance,
            draft.name.at,
            &key,
        );
        let v3_checksum = self.keyword(
            draft.v3_checksum.as_ref(),
            &key("v3_checksum"),
            &[
                ("pseudo_header", Ipv4Checksum::PseudoHeader),
                ("message_only", Ipv4Checksum::MessageOnly),
            ],
            "pseudo_header, message_only",
            Ipv4Checksum::PseudoHeader,
        );
        if let Some(written) = &draft.v3_checksum
            && (version == Some(VrrpVersion::V2) || family == Some(AddressFamily::V6))
        {
            self.warn(
                written.at,
                &key("v3_checksum"),
                WarningKind::V3ChecksumIgnored,
            );
        }
        let vmac = self.vmac(draft, vmac_name, &unicast_peers, &key);
        if let (Some(255), Some(InitialState::Backup), Some(state)) =
            (priority, initial_state, &draft.state)
        {
            self.warn(state.at, &key("state"), WarningKind::OwnerStartsAsMaster);
        }

        if self.errors.len() != errors_before {
            return None;
        }
        Some(InstanceSpec {
            name: name.clone(),
            interface: interface?,
            virtual_router_id: virtual_router_id?,
            priority: priority?,
            advert_interval: advert_interval?,
            version: version?,
            initial_state: initial_state?,
            preempt: preempt?,
            preempt_delay: preempt_delay?,
            accept_mode,
            authentication: authentication?,
            family: family?,
            virtual_addresses: vips?,
            unicast_src_ip,
            unicast_peers: unicast_peers?,
            garp: garp?,
            track_scripts: track_scripts?,
            track_files: track_files?,
            track_interfaces: track_interfaces?,
            notify,
            // Resolved against the global default by the caller.
            smtp_alert: false,
            xdp: xdp?,
            // Resolved by the BFD section (`Checker::bfd`).
            track_bfd: Vec::new(),
            announce: announce?,
            v3_checksum: v3_checksum?,
            vmac: vmac?,
        })
    }

    /// The VMAC's name when `use_vmac` is on (`Some(None)` when off, `None` after an
    /// error): `vmac_name`, else `vrrp.{VRID}`.
    fn vmac_name(
        &mut self,
        draft: &DraftInstance,
        family: Option<AddressFamily>,
        virtual_router_id: Option<u8>,
        key: &dyn Fn(&str) -> String,
    ) -> Option<Option<String>> {
        if !draft.use_vmac.as_ref().is_some_and(|v| v.value) {
            return Some(None);
        }
        match &draft.vmac_name {
            Some(name) => self.interface_name(name, &key("vmac_name")).map(Some),
            None => Some(Some(Vmac::default_name(family?, virtual_router_id?))),
        }
    }

    /// `use_vmac`, `vmac_name`, `vmac_xmit_base`, given the name [`Checker::vmac_name`]
    /// found; `Some(None)` without a VMAC.
    fn vmac(
        &mut self,
        draft: &DraftInstance,
        name: Option<Option<String>>,
        unicast_peers: &Option<Vec<IpAddr>>,
        key: &dyn Fn(&str) -> String,
    ) -> Option<Option<Vmac>> {
        let Some(name) = name? else {
            if let Some(name) = &draft.vmac_name {
                self.warn(
                    name.at,
                    &key("vmac_name"),
                    WarningKind::VmacSettingWithoutVmac,
                );
            }
            if let Some(xmit_base) = &draft.vmac_xmit_base {
                let kind = WarningKind::VmacSettingWithoutVmac;
                self.warn(xmit_base.at, &key("vmac_xmit_base"), kind);
            }
            return Some(None);
        };
        let xmit_base = draft.vmac_xmit_base.as_ref().is_some_and(|x| x.value);
        if unicast_peers
            .as_ref()
            .is_some_and(|peers| !peers.is_empty())
            && !xmit_base
        {
            let at = draft.use_vmac.as_ref().and_then(|v| v.at);
            self.error(at, &key("use_vmac"), ErrorKind::VmacUnicastNeedsXmitBase);
            return None;
        }
        Some(Some(Vmac { name, xmit_base }))
    }

    /// RFC 5798 §5.2.7 (centiseconds, 12 bits) / RFC 3768 §5.3.7 (seconds, 8 bits).
    fn advert_interval(
        &mut self,
        draft: &DraftInstance,
        version: VrrpVersion,
        key: &str,
    ) -> Option<Duration> {
        let at = draft.advert_int.as_ref().and_then(|a| a.at);
        let interval = self.duration(
            draft.advert_int.as_ref(),
            key,
            Duration::MAX,
            defaults::ADVERT_INT,
        )?;
        let shown = duration::format(interval);
        let kind = if interval.is_zero() {
            Some(ErrorKind::ZeroInterval)
        } else {
            let nanos = interval.as_nanos();
            match version {
                VrrpVersion::V3 if !nanos.is_multiple_of(10_000_000) => {
                    Some(ErrorKind::IntervalNotCentiseconds { interval: shown })
                }
                VrrpVersion::V3 if nanos / 10_000_000 > MAX_INTERVAL_CS => {
                    Some(ErrorKind::IntervalTooLongV3 { interval: shown })
                }
                VrrpVersion::V2 if !nanos.is_multiple_of(1_000_000_000) => {
                    Some(ErrorKind::IntervalNotSeconds { interval: shown })
                }
                VrrpVersion::V2 if nanos / 1_000_000_000 > MAX_INTERVAL_V2_SECS => {
                    Some(ErrorKind::IntervalTooLongV2 { interval: shown })
                }
                _ => None,
            }
        };
        match kind {
            Some(kind) => {
                self.error(at, key, kind);
                None
            }
            None => Some(interval),
        }
    }

    /// `preempt` (default true) and keepalived's `nopreempt`; both given must agree.
    fn preempt(&mut self, draft: &DraftInstance, key: &dyn Fn(&str) -> String) -> Option<bool> {
        match (&draft.preempt, &draft.nopreempt) {
            (None, None) => Some(true),
            (Some(preempt), None) => Some(preempt.value),
            (None, Some(nopreempt)) => Some(!nopreempt.value),
            (Some(preempt), Some(nopreempt)) if preempt.value != nopreempt.value => {
                Some(preempt.value)
            }
            (Some(preempt), Some(nopreempt)) => {
                self.error(
                    nopreempt.at.max(preempt.at),
                    &key("nopreempt"),
                    ErrorKind::PreemptConflict {
                        preempt: preempt.value,
                        nopreempt: nopreempt.value,
                    },
                );
                None
            }
        }
    }

    /// RFC 3768 §5.3.6; RFC 5798 §9 removed authentication.
    fn authentication(
        &mut self,
        draft: &DraftInstance,
        version: Option<VrrpVersion>,
        key: &str,
    ) -> Option<Option<Authentication>> {
        let Some(auth) = &draft.authentication else {
            return Some(None);
        };
        if version == Some(VrrpVersion::V3) {
            self.error(auth.at, key, ErrorKind::AuthenticationWithV3);
            return None;
        }
        let auth_type = self.keyword(
            auth.value.auth_type.as_ref(),
            &format!("{key}.auth_type"),
            &[("PASS", true), ("AH", false)],
            "PASS",
            true,
        )?;
        if !auth_type {
            let at = auth.value.auth_type.as_ref().and_then(|t| t.at);
            self.error(at, &format!("{key}.auth_type"), ErrorKind::AhNotSupported);
            return None;
        }
        let Some(pass) = &auth.value.auth_pass else {
            self.error(auth.at, key, ErrorKind::Missing { key: "auth_pass" });
            return None;
        };
        let bytes = pass.value.as_bytes();
        if bytes.is_empty() {
            self.error(
                pass.at,
                &format!("{key}.auth_pass"),
                ErrorKind::EmptyPassword,
            );
            return None;
        }
        let kept = &bytes[..bytes.len().min(8)];
        if bytes.len() > 8 {
            self.warn(
                pass.at,
                &format!("{key}.auth_pass"),
                WarningKind::PasswordTruncated {
                    len: bytes.len(),
                    kept: String::from_utf8_lossy(kept).into_owned(),
                },
            );
        }
        Some(Some(Authentication::Pass {
            password: kept.to_vec(),
        }))
    }

    fn virtual_addresses(
        &mut self,
        draft: &DraftInstance,
        interface: Option<&str>,
        version: Option<VrrpVersion>,
        key: &dyn Fn(&str) -> String,
    ) -> Option<Vec<VirtualAddress>> {
        let key = key("virtual_ipaddress");
        let Some(list) = &draft.virtual_ipaddress else {
            self.error(
                draft.name.at,
                &key_path("instance", &draft.name.value, ""),
                ErrorKind::Missing {
                    key: "virtual_ipaddress",
                },
            );
            return None;
        };
        if list.value.is_empty() {
            self.error(list.at, &key, ErrorKind::NoVirtualAddresses);
            return None;
        }
        if list.value.len() > super::MAX_VIRTUAL_ADDRESSES {
            self.error(
                list.at,
                &key,
                ErrorKind::TooManyAddresses {
                    max: super::MAX_VIRTUAL_ADDRESSES,
                    count: list.value.len(),
                },
            );
        }
        let errors_before = self.errors.len();
        let mut family = None;
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for vip in &list.value {
            let at = vip.address.at;
            let parsed = self.address_with_prefix(&vip.address, &key);
            let dev = match &vip.dev {
                Some(dev) => self.interface_name(dev, &format!("{key}.dev")),
                None => interface.map(str::to_owned),
            };
            let Some((address, prefix_len)) = parsed else {
                continue;
            };
            let this_family = AddressFamily::of(address);
            let expected = *family.get_or_insert(this_family);
            if this_family != expected {
                self.error(
                    at,
                    &key,
                    ErrorKind::MixedFamilies {
                        address,
                        found: this_family,
                        expected,
                    },
                );
            }
            // RFC 3768 is IPv4 only.
            if version == Some(VrrpVersion::V2) && this_family == AddressFamily::V6 {
                self.error(at, &key, ErrorKind::Ipv6WithV2 { address });
            }
            if !seen.insert(address) {
                self.error(at, &key, ErrorKind::DuplicateAddress { address });
            }
            // Check the label against the device as written even if that name is bad.
            let dev_as_written = vip
                .dev
                .as_ref()
                .or(draft.interface.as_ref())
                .map(|d| d.value.as_str());
            let label = match (&vip.label, dev_as_written) {
                (Some(label), Some(dev)) => {
                    self.label(label, dev, this_family, &format!("{key}.label"))
                }
                _ => None,
            };
            if let Some(dev) = dev {
                out.push(VirtualAddress {
                    address,
                    prefix_len,
                    dev,
                    label,
                });
            }
        }
        let listed = match family {
            Some(AddressFamily::V6) => crate::proto::instance::MAX_LISTED_IPV6,
            _ => crate::proto::instance::MAX_LISTED_IPV4,
        };
        if list.value.len() > listed && list.value.len() <= super::MAX_VIRTUAL_ADDRESSES {
            self.warn(
                list.at,
                &key,
                WarningKind::AddressesBeyondAdvert {
                    count: list.value.len(),
                    listed,
                },
            );
        }
        (self.errors.len() == errors_before).then_some(out)
    }

    /// The kernel keeps labels in IFNAMSIZ and requires them to start with the device
    /// name (`eth0:vip1`); IPv6 addresses have no labels.
    fn label(
        &mut self,
        label: &Sourced<String>,
        dev: &str,
        family: AddressFamily,
        key: &str,
    ) -> Option<String> {
        let text = &label.value;
        let reason = if family == AddressFamily::V6 {
            Some("cannot be set on an IPv6 address (the kernel has no IPv6 labels)".to_owned())
        } else if text.len() > MAX_IFNAME_LEN {
            Some(format!(
                "is {} bytes; the kernel allows at most 15",
                text.len()
            ))
        } else if text
            .strip_prefix(dev)
            .and_then(|rest| rest.strip_prefix(':'))
            .is_none_or(str::is_empty)
        {
            Some(format!(
                "must be the device name, a colon and a suffix, e.g. \"{dev}:vip1\""
            ))
        } else {
            None
        };
        match reason {
            None => Some(text.clone()),
            Some(reason) => {
                self.error(
                    label.at,
                    key,
                    ErrorKind::BadLabel {
                        label: text.clone(),
                        reason,
                    },
                );
                None
            }
        }
    }

    fn same_family(
        &mut self,
        address: IpAddr,
        family: Option<AddressFamily>,
        at: Option<Location>,
        key: &str,
    ) -> Option<IpAddr> {
        let found = AddressFamily::of(address);
        match family {
            Some(expected) if expected != found => {
                self.error(
                    at,
                    key,
                    ErrorKind::FamilyMismatch {
                        address,
                        found,
                        expected,
                    },
                );
                None
            }
            _ => Some(address),
        }
    }

    fn unicast_peers(
        &mut self,
        draft: &DraftInstance,
        family: Option<AddressFamily>,
        src: Option<IpAddr>,
        key: &dyn Fn(&str) -> String,
    ) -> Option<Vec<IpAddr>> {
        let key = key("unicast_peer");
        let errors_before = self.errors.len();
        let mut seen = HashSet::new();
        let mut peers = Vec::new();
        for peer in &draft.unicast_peer {
            let Some(address) = self
                .address(peer, &key)
                .and_then(|a| self.same_family(a, family, peer.at, &key))
            else {
                continue;
            };
            if Some(address) == src {
                self.error(peer.at, &key, ErrorKind::PeerIsSelf { address });
            } else if !seen.insert(address) {
                self.warn(peer.at, &key, WarningKind::DuplicatePeer { address });
            } else {
                peers.push(address);
            }
        }
        (self.errors.len() == errors_before).then_some(peers)
    }

    fn garp(
        &mut self,
        draft: &DraftInstance,
        family: Option<AddressFamily>,
        key: &dyn Fn(&str) -> String,
    ) -> Option<GarpSettings> {
        let errors_before = self.errors.len();
        let master_delay = self.duration(
            draft.garp_master_delay.as_ref(),
            &key("garp_master_delay"),
            MAX_TIMER,
            defaults::GARP_MASTER_DELAY,
        );
        let master_repeat = self.int(
            draft.garp_master_repeat.as_ref(),
            &key("garp_master_repeat"),
            (1, 255),
            Some(defaults::GARP_MASTER_REPEAT),
        );
        let interval = self.duration(
            draft.garp_interval.as_ref(),
            &key("garp_interval"),
            MAX_TIMER,
            Duration::ZERO,
        );
        let master_refresh = self.duration(
            draft.garp_master_refresh.as_ref(),
            &key("garp_master_refresh"),
            MAX_TIMER,
            Duration::ZERO,
        );
        let gateways: Vec<IpAddr> = draft
            .garp_gateways
            .iter()
            .filter_map(|gw| {
                let address = self.address(gw, &key("garp_gateways"))?;
                self.same_family(address, family, gw.at, &key("garp_gateways"))
            })
            .collect();
        let gateway_count = self.int(
            draft.garp_gateway_count.as_ref(),
            &key("garp_gateway_count"),
            (1, 255),
            Some(defaults::GARP_GATEWAY_COUNT),
        );
        if let (Some(count), true) = (&draft.garp_gateway_count, draft.garp_gateways.is_empty()) {
            self.warn(
                count.at,
                &key("garp_gateway_count"),
                WarningKind::GatewayCountWithoutGateways,
            );
        }
        if self.errors.len() != errors_before {
            return None;
        }
        Some(GarpSettings {
            master_delay: master_delay?,
            master_repeat: master_repeat?,
            interval: interval?,
            master_refresh: master_refresh?,
            gateways,
            gateway_count: gateway_count?,
        })
    }

    fn tracked_scripts(
        &mut self,
        draft: &DraftInstance,
        script_weights: &HashMap<&str, i16>,
        key: &dyn Fn(&str) -> String,
    ) -> Option<Vec<TrackedScript>> {
        let key = key("track_script");
        let errors_before = self.errors.len();
        let mut out = Vec::new();
        for tracked in &draft.track_script {
            let Some(&script_weight) = script_weights.get(tracked.name.value.as_str()) else {
                self.error(
                    tracked.name.at,
                    &key,
                    ErrorKind::UnknownScript {
                        name: tracked.name.value.clone(),
                    },
                );
                continue;
            };
            let weight = self.int(
                tracked.weight.as_ref(),
                &format!("{key}.weight"),
                (-253, 253),
                Some(script_weight),
            );
            if let Some(weight) = weight {
                out.push(TrackedScript {
                    name: tracked.name.value.clone(),
                    weight,
                });
            }
        }
        (self.errors.len() == errors_before).then_some(out)
    }

    /// `track_interface` entries: a valid interface name, weight −253..=253 (default 0,
    /// keepalived's range).
    fn tracked_interfaces(
        &mut self,
        draft: &DraftInstance,
        key: &dyn Fn(&str) -> String,
    ) -> Option<Vec<TrackedInterface>> {
        let key = key("track_interface");
        let errors_before = self.errors.len();
        let mut out = Vec::new();
        for tracked in &draft.track_interface {
            let name = self.interface_name(&tracked.name, &key);
            let weight = self.int(
                tracked.weight.as_ref(),
                &format!("{key}.weight"),
                (-253, 253),
                Some(0),
            );
            if let (Some(name), Some(weight)) = (name, weight) {
                out.push(TrackedInterface { name, weight });
            }
        }
        (self.errors.len() == errors_before).then_some(out)
    }

    fn track_files(&mut self, files: &[DraftTrackFile]) -> Option<Vec<TrackFile>> {
        let errors_before = self.errors.len();
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for file in files {
            let name = &file.name.value;
            let key = |k: &str| key_path("track_file", name, k);
            if !seen.insert(name.as_str()) {
                self.error(
                    file.name.at,
                    &key(""),
                    ErrorKind::DuplicateName { name: name.clone() },
                );
            }
            if name.trim().is_empty() {
                self.error(file.name.at, &key(""), ErrorKind::Empty);
            }
            let path = match &file.file {
                None => {
                    self.error(file.name.at, &key(""), ErrorKind::Missing { key: "file" });
                    None
                }
                Some(path) if path.value.is_empty() => {
                    self.error(path.at, &key("file"), ErrorKind::Empty);
                    None
                }
                Some(path) if !path.value.starts_with('/') => {
                    self.error(
                        path.at,
                        &key("file"),
                        ErrorKind::RelativePath {
                            path: path.value.clone(),
                        },
                    );
                    None
                }
                Some(path) => Some(PathBuf::from(&path.value)),
            };
            let weight = self.int(
                file.weight.as_ref(),
                &key("weight"),
                TRACK_FILE_WEIGHT_RANGE,
                Some(defaults::TRACK_FILE_WEIGHT),
            );
            let init = match &file.init_file {
                None => Some(None),
                Some(init) => {
                    let value = self.int(
                        init.value.value.as_ref(),
                        &key("init_file"),
                        (i64::from(i32::MIN), i64::from(i32::MAX)),
                        Some(defaults::TRACK_FILE_INIT_VALUE),
                    );
                    if let (Some(value), Some(written)) = (value, &init.value.value)
                        && !(-254..=254).contains(&value)
                    {
                        self.warn(
                            written.at,
                            &key("init_file"),
                            WarningKind::InitValueNotSensible { value },
                        );
                    }
                    value.map(|value| {
                        Some(TrackFileInit {
                            value,
                            overwrite: init.value.overwrite.as_ref().is_some_and(|o| o.value),
                        })
                    })
                }
            };
            if let (Some(path), Some(weight), Some(init)) = (path, weight, init) {
                out.push(TrackFile {
                    name: name.clone(),
                    path,
                    weight,
                    init,
                });
            }
        }
        (self.errors.len() == errors_before).then_some(out)
    }

    fn tracked_files(
        &mut self,
        draft: &DraftInstance,
        file_weights: &HashMap<&str, i32>,
        key: &dyn Fn(&str) -> String,
    ) -> Option<Vec<TrackedFile>> {
        let key = key("track_file");
        let errors_before = self.errors.len();
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for tracked in &draft.track_file {
            let name = &tracked.name.value;
            if !file_weights.contains_key(name.as_str()) {
                self.error(
                    tracked.name.at,
                    &key,
                    ErrorKind::UnknownTrackFile { name: name.clone() },
                );
                continue;
            }
            if !seen.insert(name.as_str()) {
                self.error(
                    tracked.name.at,
                    &key,
                    ErrorKind::ListedTwice { name: name.clone() },
                );
                continue;
            }
            let weight = match &tracked.weight {
                None => Some(None),
                Some(weight) => self
                    .int(
                        Some(weight),
                        &format!("{key}.weight"),
                        TRACK_FILE_WEIGHT_RANGE,
                        None,
                    )
                    .map(Some),
            };
            if let Some(weight) = weight {
                out.push(TrackedFile {
                    name: name.clone(),
                    weight,
                });
            }
        }
        (self.errors.len() == errors_before).then_some(out)
    }

    /// Sync groups: members exist, are in one group only, and are listed once.
    fn sync_groups(
        &mut self,
        groups: &[DraftSyncGroup],
        instances: &[DraftInstance],
        global: &DraftGlobal,
    ) -> Option<Vec<SyncGroup>> {
        let errors_before = self.errors.len();
        let defined: HashSet<&str> = instances.iter().map(|i| i.name.value.as_str()).collect();
        let mut seen_names = HashSet::new();
        let mut member_of: HashMap<&str, &str> = HashMap::new();
        let mut out = Vec::new();
        for group in groups {
            let name = &group.name.value;
            let key = |k: &str| key_path("sync_group", name, k);
            if !seen_names.insert(name.as_str()) {
                self.error(
                    group.name.at,
                    &key(""),
                    ErrorKind::DuplicateName { name: name.clone() },
                );
            }
            let mut members = Vec::new();
            match &group.group {
                None => self.error(group.name.at, &key(""), ErrorKind::Missing { key: "group" }),
                Some(list) if list.value.is_empty() => {
                    self.error(list.at, &key("group"), ErrorKind::EmptyGroup);
                }
                Some(list) => {
                    let mut in_this = HashSet::new();
                    for member in &list.value {
                        let instance = member.value.as_str();
                        let kind = if !defined.contains(instance) {
                            Some(ErrorKind::UnknownGroupMember {
                                name: instance.to_owned(),
                            })
                        } else if !in_this.insert(instance) {
                            Some(ErrorKind::ListedTwice {
                                name: instance.to_owned(),
                            })
                        } else if let Some(other) = member_of.get(instance) {
                            Some(ErrorKind::InstanceInTwoGroups {
                                instance: instance.to_owned(),
                                other: (*other).to_owned(),
                            })
                        } else {
                            member_of.insert(instance, name);
                            None
                        };
                        match kind {
                            Some(kind) => self.error(member.at, &key("group"), kind),
                            None => members.push(instance.to_owned()),
                        }
                    }
                    if list.value.len() == 1 {
                        self.warn(
                            list.at,
                            &key("group"),
                            WarningKind::SingleMemberGroup { name: name.clone() },
                        );
                    }
                }
            }
            let notify = NotifyCommands {
                master: self.optional_command(group.notify_master.as_ref(), &key("notify_master")),
                backup: self.optional_command(group.notify_backup.as_ref(), &key("notify_backup")),
                fault: self.optional_command(group.notify_fault.as_ref(), &key("notify_fault")),
                stop: self.optional_command(group.notify_stop.as_ref(), &key("notify_stop")),
                any: self.optional_command(group.notify.as_ref(), &key("notify")),
            };
            out.push(SyncGroup {
                name: name.clone(),
                instances: members,
                notify,
                tracking_weight: group.tracking_weight.as_ref().is_some_and(|t| t.value),
                smtp_alert: smtp_alert(group.smtp_alert.as_ref(), global),
            });
        }
        (self.errors.len() == errors_before).then_some(out)
    }

    /// keepalived's rule that sync-group members (unless the group has
    /// `tracking_weight`) and address owners keep a fixed priority: a track file weight of
    /// 1 becomes 0 (a health flag), other weighted track files are dropped, and (for
    /// members) weighted track scripts are dropped and tracked interfaces' weights become
    /// 0 (link down = FAULT, as keepalived does); each with a warning. An owner's weighted
    /// scripts and interfaces need no change: its priority never floats.
    fn fixed_priorities(
        &mut self,
        instances: &mut [(InstanceSpec, &DraftInstance)],
        groups: &[SyncGroup],
        file_weights: &HashMap<&str, i32>,
    ) {
        for (spec, draft) in instances.iter_mut() {
            let group = groups
                .iter()
                .find(|g| !g.tracking_weight && g.instances.contains(&spec.name));
            let reason = match group {
                Some(group) => format!("this instance is in sync group {:?}", group.name),
                None if spec.priority == 255 => {
                    "this instance is the address owner (priority 255)".to_owned()
                }
                None => continue,
            };
            let key = key_path("instance", &spec.name, "track_file");
            // Entries match the draft's one to one: an instance with a bad entry has no
            // spec.
            let mut kept = Vec::new();
            for (tracked, written) in spec.track_files.drain(..).zip(&draft.track_file) {
                let weight = tracked.weight.unwrap_or_else(|| {
                    file_weights
                        .get(tracked.name.as_str())
                        .copied()
                        .unwrap_or(defaults::TRACK_FILE_WEIGHT)
                });
                let at = written.weight.as_ref().map_or(written.name.at, |w| w.at);
                match weight {
                    0 => kept.push(tracked),
                    1 => {
                        self.warn(
                            at,
                            &key,
                            WarningKind::TrackerWeightZeroed {
                                name: tracked.name.clone(),
                                reason: reason.clone(),
                            },
                        );
                        kept.push(TrackedFile {
                            name: tracked.name,
                            weight: Some(0),
                        });
                    }
                    weight => self.warn(
                        at,
                        &key,
                        WarningKind::TrackerIgnored {
                            tracker: "track_file",
                            name: tracked.name,
                            weight,
                            reason: reason.clone(),
                        },
                    ),
                }
            }
            spec.track_files = kept;
            if group.is_none() {
                continue;
            }
            let key = key_path("instance", &spec.name, "track_script");
            let mut kept = Vec::new();
            for (tracked, written) in spec.track_scripts.drain(..).zip(&draft.track_script) {
                if tracked.weight == 0 {
                    kept.push(tracked);
                    continue;
                }
                let at = written.weight.as_ref().map_or(written.name.at, |w| w.at);
                self.warn(
                    at,
                    &key,
                    WarningKind::TrackerIgnored {
                        tracker: "track_script",
                        name: tracked.name,
                        weight: i32::from(tracked.weight),
                        reason: reason.clone(),
                    },
                );
            }
            spec.track_scripts = kept;
            let key = key_path("instance", &spec.name, "track_interface");
            for (tracked, written) in spec.track_interfaces.iter_mut().zip(&draft.track_interface) {
                if tracked.weight == 0 {
                    continue;
                }
                let at = written.weight.as_ref().map_or(written.name.at, |w| w.at);
                self.warn(
                    at,
                    &key,
                    WarningKind::InterfaceWeightZeroed {
                        name: tracked.name.clone(),
                        weight: tracked.weight,
                        reason: reason.clone(),
                    },
                );
                tracked.weight = 0;
            }
        }
    }

    fn optional_command(
        &mut self,
        value: Option<&Sourced<DraftCommand>>,
        key: &str,
    ) -> Option<Command> {
        value.and_then(|command| self.command(command, key))
    }

    /// Rules between instances: unique (interface, VRID, family) and no VIP in two
    /// instances.
    fn cross_instance(&mut self, instances: &[(InstanceSpec, &DraftInstance)]) {
        let mut vrids: HashMap<(&str, u8, AddressFamily), &str> = HashMap::new();
        let mut vips: HashMap<IpAddr, &str> = HashMap::new();
        for (spec, draft) in instances {
            let slot = (spec.interface.as_str(), spec.virtual_router_id, spec.family);
            if let Some(other) = vrids.insert(slot, &spec.name) {
                self.error(
                    draft.virtual_router_id.as_ref().and_then(|v| v.at),
                    &key_path("instance", &spec.name, "virtual_router_id"),
                    ErrorKind::DuplicateVrid {
                        interface: spec.interface.clone(),
                        vrid: spec.virtual_router_id,
                        family: spec.family,
                        other: other.to_owned(),
                    },
                );
                vrids.insert(slot, other);
            }
            let vip_locations = draft
                .virtual_ipaddress
                .as_ref()
                .map(|list| list.value.iter().map(|v| v.address.at).collect::<Vec<_>>())
                .unwrap_or_default();
            for (index, vip) in spec.virtual_addresses.iter().enumerate() {
                if let Some(other) = vips.get(&vip.address) {
                    let other = (*other).to_owned();
                    self.error(
                        vip_locations.get(index).copied().flatten(),
                        &key_path("instance", &spec.name, "virtual_ipaddress"),
                        ErrorKind::AddressInTwoInstances {
                            address: vip.address,
                            other,
                        },
                    );
                } else {
                    vips.insert(vip.address, &spec.name);
                }
            }
        }
    }
}

/// Splits a command line the way keepalived does, without a shell: whitespace separates
/// words, `'...'` and `"..."` group, and a backslash escapes the next character (outside
/// single quotes). `None` on an unterminated quote.
pub fn split_command_line(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => word.push(chars.next()?),
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

// ---- BFD (bfd_instance, track_bfd) ----

impl Checker {
    /// The BFD sessions, and each instance's `track_bfd` resolved against them.
    fn bfd(
        &mut self,
        sessions: &[DraftBfd],
        instances: &mut [(InstanceSpec, &DraftInstance)],
    ) -> Option<Vec<BfdInstance>> {
        let errors_before = self.errors.len();
        let mut out: Vec<BfdInstance> = Vec::new();
        let mut seen = HashSet::new();
        for draft in sessions {
            let name = &draft.name.value;
            let key = |k: &str| key_path("bfd", name, k);
            if !seen.insert(name.as_str()) {
                self.error(
                    draft.name.at,
                    &key(""),
                    ErrorKind::DuplicateName { name: name.clone() },
                );
            }
            if let Some(session) = self.bfd_instance(draft, &key)
                && !out.iter().any(|o| o.name == session.name)
            {
                if let Some(other) = out.iter().find(|o| o.neighbor == session.neighbor) {
                    self.error(
                        draft.neighbor_ip.as_ref().and_then(|n| n.at),
                        &key("neighbor_ip"),
                        ErrorKind::BfdDuplicateNeighbor {
                            neighbor: session.neighbor,
                            other: other.name.clone(),
                        },
                    );
                }
                out.push(session);
            }
        }
        // Weights of sessions that failed validation were reported; 0 keeps this total.
        let default_weights: HashMap<&str, i16> = sessions
            .iter()
            .map(|s| {
                let weight = s
                    .weight
                    .as_ref()
                    .and_then(|w| i16::try_from(w.value).ok())
                    .unwrap_or(0);
                (s.name.value.as_str(), weight)
            })
            .collect();
        for (spec, draft) in instances.iter_mut() {
            let key = key_path("instance", &draft.name.value, "track_bfd");
            for tracked in &draft.track_bfd {
                let name = &tracked.name.value;
                let Some(&default_weight) = default_weights.get(name.as_str()) else {
                    self.error(
                        tracked.name.at,
                        &key,
                        ErrorKind::UnknownBfd { name: name.clone() },
                    );
                    continue;
                };
                let peer = tracked.peer.as_ref().is_some_and(|p| p.value);
                if peer && let Some(weight) = &tracked.weight {
                    self.error(weight.at, &key, ErrorKind::BfdPeerWithWeight);
                    continue;
                }
                let weight = if peer {
                    Some(0)
                } else {
                    self.int(
                        tracked.weight.as_ref(),
                        &format!("{key}.weight"),
                        (-253, 253),
                        Some(default_weight),
                    )
                };
                if let Some(weight) = weight {
                    spec.track_bfd.push(TrackedBfd {
                        name: name.clone(),
                        weight,
                        peer,
                    });
                }
            }
        }
        (self.errors.len() == errors_before).then_some(out)
    }

    fn bfd_instance(
        &mut self,
        draft: &DraftBfd,
        key: &dyn Fn(&str) -> String,
    ) -> Option<BfdInstance> {
        let errors_before = self.errors.len();
        let neighbor = match &draft.neighbor_ip {
            Some(text) => self.address(text, &key("neighbor_ip")),
            None => {
                self.error(
                    draft.name.at,
                    &key(""),
                    ErrorKind::Missing { key: "neighbor_ip" },
                );
                None
            }
        };
        let source = match &draft.source_ip {
            Some(text) => self.address(text, &key("source_ip")),
            None => None,
        };
        if let (Some(neighbor), Some(source_ip), Some(text)) = (neighbor, source, &draft.source_ip)
            && neighbor.is_ipv4() != source_ip.is_ipv4()
        {
            self.error(
                text.at,
                &key("source_ip"),
                ErrorKind::BfdSourceFamily {
                    source_ip,
                    neighbor,
                },
            );
        }
        let min_rx = self.bfd_interval(draft.min_rx.as_ref(), &key("min_rx"), bfd_defaults::MIN_RX);
        let min_tx = self.bfd_interval(draft.min_tx.as_ref(), &key("min_tx"), bfd_defaults::MIN_TX);
        let idle_tx = self.bfd_interval(
            draft.idle_tx.as_ref(),
            &key("idle_tx"),
            bfd_defaults::IDLE_TX,
        );
        let multiplier = self.int(
            draft.multiplier.as_ref(),
            &key("multiplier"),
            (1, 255),
            Some(bfd_defaults::MULTIPLIER),
        );
        let ttl = self.int(
            draft.ttl.as_ref(),
            &key("ttl"),
            (1, 255),
            Some(bfd_defaults::TTL),
        );
        let max_hops = self.int(
            draft.max_hops.as_ref(),
            &key("max_hops"),
            (0, 254),
            Some(bfd_defaults::MAX_HOPS),
        );
        let weight = self.int(draft.weight.as_ref(), &key("weight"), (-253, 253), Some(0));
        if self.errors.len() != errors_before {
            return None;
        }
        Some(BfdInstance {
            name: draft.name.value.clone(),
            neighbor: neighbor?,
            source,
            min_rx: min_rx?,
            min_tx: min_tx?,
            idle_tx: idle_tx?,
            multiplier: multiplier?,
            passive: draft.passive.as_ref().is_some_and(|p| p.value),
            ttl: ttl?,
            max_hops: max_hops?,
            weight: weight?,
        })
    }

    /// A BFD interval in [`bfd_defaults::MIN_INTERVAL`]..=[`bfd_defaults::MAX_INTERVAL`].
    fn bfd_interval(
        &mut self,
        value: Option<&Sourced<String>>,
        key: &str,
        default: Duration,
    ) -> Option<Duration> {
        let parsed = self.duration(value, key, bfd_defaults::MAX_INTERVAL, default)?;
        if parsed < bfd_defaults::MIN_INTERVAL {
            self.error(
                value.and_then(|v| v.at),
                key,
                ErrorKind::BfdInterval {
                    value: duration::format(parsed),
                    min: duration::format(bfd_defaults::MIN_INTERVAL),
                    max: duration::format(bfd_defaults::MAX_INTERVAL),
                },
            );
            return None;
        }
        Some(parsed)
    }
}
