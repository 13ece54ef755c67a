//! The native front end: TOML text → [`Draft`] → [`validate`](super::validate::validate).
//!
//! serde with `deny_unknown_fields` on every table, so a misspelt key is an error, not a
//! silently ignored setting. Every value is read as `Spanned` so that semantic errors
//! found later still point at `file:line:col`.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IntoDeserializer as _, MapAccess, SeqAccess, Visitor};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::draft::{
    Draft, DraftAnnounce, DraftAuthentication, DraftBfd, DraftChecker, DraftCommand, DraftEndpoint,
    DraftGlobal, DraftInitFile, DraftInstance, DraftRealServer, DraftScript, DraftSyncGroup,
    DraftTrackFile, DraftTrackedBfd, DraftTrackedScript, DraftUrl, DraftVip, DraftVirtualServer,
    DraftVsGroup, DraftVsTarget, Sourced,
};
use super::{ConfigError, ConfigErrors, ErrorKind, LineIndex, Loaded, Location};

/// Parses and validates native TOML configuration text. `file_name` is used in messages
/// only.
///
/// A TOML syntax error stops there (the document has no shape to check). Otherwise each
/// table (`[global]`, every `[instance.NAME]`, `[script.NAME]`, …) is read on its own,
/// so a wrong type or unknown key in one does not hide the errors of the others, and the
/// tables that could be read are validated: one run reports every error.
pub fn parse_toml(text: &str, file_name: &str) -> Result<Loaded, ConfigErrors> {
    let (draft, read) = read_draft(text, file_name)?;
    if read.errors.is_empty() {
        return super::validate::validate(&draft);
    }
    let (warnings, validated) = match super::validate::validate(&draft) {
        Ok(loaded) => (loaded.warnings, Vec::new()),
        Err(invalid) => (invalid.warnings, invalid.errors),
    };
    let mut errors = read.errors.clone();
    errors.extend(validated.into_iter().filter(|e| !read.explains(e)));
    errors.sort_by_key(|e| e.location);
    Err(ConfigErrors { errors, warnings })
}

/// Parses TOML text into a draft without semantic checks (for front-end tests and
/// `vipd convert`).
pub fn to_draft(text: &str, file_name: &str) -> Result<Draft, ConfigErrors> {
    let (draft, read) = read_draft(text, file_name)?;
    if read.errors.is_empty() {
        Ok(draft)
    } else {
        Err(ConfigErrors {
            errors: read.errors,
            warnings: Vec::new(),
        })
    }
}

/// Tables that could not be read (wrong type, unknown key), with their errors: the
/// draft lacks them, so validation errors that only say so are echoes.
#[derive(Default)]
struct ReadErrors {
    errors: Vec<ConfigError>,
    instances: Vec<String>,
    scripts: Vec<String>,
    track_files: Vec<String>,
    /// A whole `instance` section was unreadable (not a table of tables).
    all_instances: bool,
    /// `[bfd.NAME]` tables that could not be read.
    bfd: Vec<String>,
}

impl ReadErrors {
    /// Whether validation error `e` only echoes a table that could not be read.
    fn explains(&self, e: &ConfigError) -> bool {
        match &e.kind {
            ErrorKind::NoInstances => self.all_instances || !self.instances.is_empty(),
            ErrorKind::UnknownGroupMember { name } => self.instances.contains(name),
            ErrorKind::UnknownScript { name } => self.scripts.contains(name),
            ErrorKind::UnknownTrackFile { name } => self.track_files.contains(name),
            ErrorKind::UnknownBfd { name } => self.bfd.contains(name),
            _ => false,
        }
    }
}

/// Top-level tables of the file, the documented sections.
const SECTIONS: &[&str] = &[
    "global",
    "script",
    "track_file",
    "instance",
    "sync_group",
    "bfd",
    "virtual_server",
    "virtual_server_group",
];

/// The draft of every table that could be read, and the errors of those that could not.
/// `Err` only for a TOML syntax error.
fn read_draft(text: &str, file_name: &str) -> Result<(Draft, ReadErrors), ConfigErrors> {
    let root = DeTable::parse(text).map_err(|err| ConfigErrors {
        errors: vec![syntax_error(text, file_name, &err)],
        warnings: Vec::new(),
    })?;
    let lines = LineIndex::new(text);
    let at = |span: std::ops::Range<usize>| Some(lines.locate(span.start));
    let conv = Converter { at: &at };
    let mut read = ReadErrors::default();
    let mut fail = |err: toml::de::Error| syntax_error(text, file_name, &err);
    let mut global = None;
    let mut scripts = Vec::new();
    let mut instances = Vec::new();
    let mut track_files = Vec::new();
    let mut sync_groups = Vec::new();
    let mut bfd_instances = Vec::new();
    let mut virtual_servers = Vec::new();
    let mut virtual_server_groups = Vec::new();
    for (key, value) in root.into_inner() {
        let section = key.get_ref().as_ref();
        match section {
            "global" => match RawGlobal::deserialize(value.into_deserializer()) {
                Ok(raw) => global = Some(conv.global(raw)),
                Err(err) => read.errors.push(fail(err)),
            },
            "script" => {
                let failed = entries(value, &mut read.errors, &mut fail, |name, raw| {
                    scripts.push(conv.script(name, raw));
                });
                read.scripts.extend(failed.unwrap_or_default());
            }
            "track_file" => {
                let failed = entries(value, &mut read.errors, &mut fail, |name, raw| {
                    track_files.push(conv.track_file(name, raw));
                });
                read.track_files.extend(failed.unwrap_or_default());
            }
            "instance" => {
                let failed = entries(value, &mut read.errors, &mut fail, |name, raw| {
                    instances.push(conv.instance(name, raw));
                });
                match failed {
                    Some(names) => read.instances.extend(names),
                    None => read.all_instances = true,
                }
            }
            "sync_group" => {
                entries(value, &mut read.errors, &mut fail, |name, raw| {
                    sync_groups.push(conv.sync_group(name, raw));
                });
            }
            "bfd" => {
                let failed = entries(value, &mut read.errors, &mut fail, |name, raw| {
                    bfd_instances.push(conv.bfd(name, raw));
                });
                read.bfd.extend(failed.unwrap_or_default());
            }
            "virtual_server_group" => {
                entries(value, &mut read.errors, &mut fail, |name, raw| {
                    virtual_server_groups.push(conv.vs_group(name, raw));
                });
            }
            "virtual_server" => {
                let array = match value.into_inner() {
                    DeValue::Array(array) => array,
                    other => {
                        let err = Vec::<RawVirtualServer>::deserialize(
                            Spanned::new(key.span(), other).into_deserializer(),
                        );
                        if let Err(err) = err {
                            read.errors.push(fail(err));
                        }
                        continue;
                    }
                };
                for element in array {
                    let span = element.span();
                    match RawVirtualServer::deserialize(element.into_deserializer()) {
                        Ok(raw) => virtual_servers.push(conv.virtual_server(raw, span)),
                        Err(err) => read.errors.push(fail(err)),
                    }
                }
            }
            other => {
                let err = <toml::de::Error as de::Error>::unknown_field(other, SECTIONS);
                read.errors.push(ConfigError {
                    file: file_name.to_owned(),
                    location: Some(lines.locate(key.span().start)),
                    key: String::new(),
                    kind: ErrorKind::Syntax {
                        message: err.message().trim_end().replace('`', "\""),
                    },
                });
            }
        }
    }
    scripts.sort_by_key(|s: &DraftScript| s.name.at);
    instances.sort_by_key(|i: &DraftInstance| i.name.at);
    track_files.sort_by_key(|f: &DraftTrackFile| f.name.at);
    sync_groups.sort_by_key(|g: &DraftSyncGroup| g.name.at);
    bfd_instances.sort_by_key(|b: &DraftBfd| b.name.at);
    read.errors.sort_by_key(|e| e.location);
    let draft = Draft {
        file: file_name.to_owned(),
        global: global.unwrap_or_default(),
        scripts,
        track_files,
        instances,
        sync_groups,
        bfd_instances,
        virtual_servers,
        virtual_server_groups,
        end: Some(lines.locate(text.len())),
    };
    Ok((draft, read))
}

/// Reads each `NAME = { … }` entry of a section table on its own, handing the good ones
/// to `keep` and reporting the others; returns the names that failed, or `None` when
/// the section itself is not a table.
fn entries<'de, T: Deserialize<'de>>(
    section: Spanned<DeValue<'de>>,
    errors: &mut Vec<ConfigError>,
    fail: &mut impl FnMut(toml::de::Error) -> ConfigError,
    mut keep: impl FnMut(Spanned<String>, T),
) -> Option<Vec<String>> {
    if !section.get_ref().is_table() {
        // Let serde say what was expected instead.
        if let Err(err) = BTreeMap::<String, T>::deserialize(section.into_deserializer()) {
            errors.push(fail(err));
        }
        return None;
    }
    let DeValue::Table(table) = section.into_inner() else {
        return None;
    };
    let mut failed = Vec::new();
    for (name, value) in table {
        let name = Spanned::new(name.span(), name.into_inner().into_owned());
        match T::deserialize(value.into_deserializer()) {
            Ok(raw) => keep(name, raw),
            Err(err) => {
                errors.push(fail(err));
                failed.push(name.into_inner());
            }
        }
    }
    Some(failed)
}

/// A serde/TOML error as a located [`ConfigError`] naming the table or key it is in.
fn syntax_error(text: &str, file_name: &str, err: &toml::de::Error) -> ConfigError {
    let span = err.span();
    let (location, key) = match &span {
        Some(span) => (
            Some(Location::from_offset(text, span.start)),
            key_path_at(text, span.start),
        ),
        None => (None, String::new()),
    };
    ConfigError {
        file: file_name.to_owned(),
        location,
        key,
        kind: ErrorKind::Syntax {
            message: err.message().trim_end().replace('`', "\""),
        },
    }
}

/// The dotted path of the table holding byte `offset` (when it falls on a key) or of the
/// value at `offset`. Best effort: works on a partially parsed document.
fn key_path_at(text: &str, offset: usize) -> String {
    let (root, _errors) = DeTable::parse_recoverable(text);
    let mut path = Vec::new();
    walk_table(root.get_ref(), offset, &mut path);
    path.join(".")
}

fn walk_table(table: &DeTable<'_>, offset: usize, path: &mut Vec<String>) -> bool {
    for (key, value) in table {
        if key.span().contains(&offset) {
            // On a key itself: report the table that holds it.
            return true;
        }
        if value.span().contains(&offset) || contains_offset(value.get_ref(), offset) {
            path.push(bare_or_quoted(key.get_ref()));
            walk_value(value.get_ref(), offset, path);
            return true;
        }
    }
    false
}

fn walk_value(value: &DeValue<'_>, offset: usize, path: &mut Vec<String>) {
    match value {
        DeValue::Table(table) => {
            walk_table(table, offset, path);
        }
        DeValue::Array(array) => {
            for element in array {
                if element.span().contains(&offset) || contains_offset(element.get_ref(), offset) {
                    walk_value(element.get_ref(), offset, path);
                    return;
                }
            }
        }
        _ => {}
    }
}

/// Whether any key or value nested in `value` covers `offset` (header tables such as
/// `[instance.VI_1]` have spans that do not cover their body).
fn contains_offset(value: &DeValue<'_>, offset: usize) -> bool {
    match value {
        DeValue::Table(table) => table.iter().any(|(k, v)| {
            k.span().contains(&offset)
                || v.span().contains(&offset)
                || contains_offset(v.get_ref(), offset)
        }),
        DeValue::Array(array) => array
            .iter()
            .any(|v| v.span().contains(&offset) || contains_offset(v.get_ref(), offset)),
        _ => false,
    }
}

fn bare_or_quoted(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}

/// Turns spans into locations while moving raw values into the draft.
struct Converter<'a> {
    at: &'a dyn Fn(std::ops::Range<usize>) -> Option<Location>,
}

impl Converter<'_> {
    fn src<T>(&self, value: Spanned<T>) -> Sourced<T> {
        let span = value.span();
        Sourced::new(value.into_inner(), (self.at)(span))
    }

    fn opt<T>(&self, value: Option<Spanned<T>>) -> Option<Sourced<T>> {
        value.map(|v| self.src(v))
    }

    fn list<T>(&self, values: Option<Vec<Spanned<T>>>) -> Vec<Sourced<T>> {
        values
            .unwrap_or_default()
            .into_iter()
            .map(|v| self.src(v))
            .collect()
    }

    fn duration(&self, value: Option<Spanned<RawDuration>>) -> Option<Sourced<String>> {
        value.map(|v| {
            let sourced = self.src(v);
            Sourced::new(sourced.value.0, sourced.at)
        })
    }

    fn command(&self, value: Option<Spanned<RawCommand>>) -> Option<Sourced<DraftCommand>> {
        value.map(|v| {
            let sourced = self.src(v);
            Sourced::new(sourced.value.0, sourced.at)
        })
    }

    fn global(&self, raw: RawGlobal) -> DraftGlobal {
        DraftGlobal {
            router_id: self.opt(raw.router_id),
            control_socket: self.opt(raw.control_socket),
            notification_email: self.list(raw.notification_email),
            notification_email_from: self.opt(raw.notification_email_from),
            smtp_server: self.opt(raw.smtp_server),
            smtp_port: self.opt(raw.smtp_port),
            smtp_connect_timeout: self.duration(raw.smtp_connect_timeout),
            realtime_priority: self.opt(raw.realtime_priority),
            notify_shutdown_timeout: self.duration(raw.notify_shutdown_timeout),
            smtp_alert: self.opt(raw.smtp_alert),
        }
    }

    fn script(&self, name: Spanned<String>, raw: RawScript) -> DraftScript {
        DraftScript {
            name: self.src(name),
            script: self.command(raw.script),
            interval: self.duration(raw.interval),
            timeout: self.duration(raw.timeout),
            weight: self.opt(raw.weight),
            rise: self.opt(raw.rise),
            fall: self.opt(raw.fall),
        }
    }

    fn track_file(&self, name: Spanned<String>, raw: RawTrackFile) -> DraftTrackFile {
        let init_file = raw.init_file.map(|init| {
            let span = init.span();
            let at = (self.at)(span);
            let init = match init.into_inner() {
                RawInitFile::Value(value) => DraftInitFile {
                    value: Some(Sourced::new(value, at)),
                    overwrite: None,
                },
                RawInitFile::Table(table) => DraftInitFile {
                    value: self.opt(table.value),
                    overwrite: self.opt(table.overwrite),
                },
            };
            Sourced::new(init, at)
        });
        DraftTrackFile {
            name: self.src(name),
            file: self.opt(raw.file),
            weight: self.opt(raw.weight),
            init_file,
        }
    }

    fn sync_group(&self, name: Spanned<String>, raw: RawSyncGroup) -> DraftSyncGroup {
        DraftSyncGroup {
            name: self.src(name),
            group: raw.group.map(|list| {
                let list = self.src(list);
                let members = list.value.into_iter().map(|m| self.src(m)).collect();
                Sourced::new(members, list.at)
            }),
            notify_master: self.command(raw.notify_master),
            notify_backup: self.command(raw.notify_backup),
            notify_fault: self.command(raw.notify_fault),
            notify_stop: self.command(raw.notify_stop),
            notify: self.command(raw.notify),
            tracking_weight: self.opt(raw.tracking_weight),
            smtp_alert: self.opt(raw.smtp_alert),
        }
    }

    fn tracked(&self, entries: Option<Vec<Spanned<RawTrackedScript>>>) -> Vec<DraftTrackedScript> {
        entries
            .unwrap_or_default()
            .into_iter()
            .map(|entry| {
                let span = entry.span();
                match entry.into_inner() {
                    RawTrackedScript::Name(name) => DraftTrackedScript {
                        name: Sourced::new(name, (self.at)(span)),
                        weight: None,
                    },
                    RawTrackedScript::Table(table) => DraftTrackedScript {
                        name: self.src(table.name),
                        weight: self.opt(table.weight),
                    },
                }
            })
            .collect()
    }

    fn instance(&self, name: Spanned<String>, raw: RawInstance) -> DraftInstance {
        let authentication = raw.authentication.map(|auth| {
            let auth = self.src(auth);
            Sourced::new(
                DraftAuthentication {
                    auth_type: self.opt(auth.value.auth_type),
                    auth_pass: self.opt(auth.value.auth_pass),
                },
                auth.at,
            )
        });
        let virtual_ipaddress = raw.virtual_ipaddress.map(|list| {
            let list = self.src(list);
            let vips = list.value.into_iter().map(|vip| self.vip(vip)).collect();
            Sourced::new(vips, list.at)
        });
        let track_script = self.tracked(raw.track_script);
        let track_file = self.tracked(raw.track_file);
        DraftInstance {
            name: self.src(name),
            interface: self.opt(raw.interface),
            virtual_router_id: self.opt(raw.virtual_router_id),
            priority: self.opt(raw.priority),
            advert_int: self.duration(raw.advert_int),
            version: self.opt(raw.version),
            state: self.opt(raw.state),
            preempt: self.opt(raw.preempt),
            nopreempt: self.opt(raw.nopreempt),
            preempt_delay: self.duration(raw.preempt_delay),
            accept_mode: self.opt(raw.accept_mode),
            authentication,
            virtual_ipaddress,
            unicast_src_ip: self.opt(raw.unicast_src_ip),
            unicast_peer: self.list(raw.unicast_peer),
            garp_master_delay: self.duration(raw.garp_master_delay),
            garp_master_repeat: self.opt(raw.garp_master_repeat),
            garp_interval: self.duration(raw.garp_interval),
            garp_master_refresh: self.duration(raw.garp_master_refresh),
            garp_gateways: self.list(raw.garp_gateways),
            garp_gateway_count: self.opt(raw.garp_gateway_count),
            track_script,
            track_file,
            track_interface: self.tracked(raw.track_interface),
            notify_master: self.command(raw.notify_master),
            notify_backup: self.command(raw.notify_backup),
            notify_fault: self.command(raw.notify_fault),
            notify_stop: self.command(raw.notify_stop),
            notify: self.command(raw.notify),
            smtp_alert: self.opt(raw.smtp_alert),
            xdp: self.opt(raw.xdp),
            track_bfd: self.tracked_bfd(raw.track_bfd),
            v3_checksum: self.opt(raw.v3_checksum),
            use_vmac: self.opt(raw.use_vmac),
            vmac_name: self.opt(raw.vmac_name),
            vmac_xmit_base: self.opt(raw.vmac_xmit_base),
            announce: self.announce(
                raw.announce,
                raw.announce_mode,
                raw.announce_standby_med,
                raw.announce_standby_prepend,
                raw.announce_communities,
            ),
        }
    }

    fn announce(
        &self,
        announce: Option<Spanned<String>>,
        mode: Option<Spanned<String>>,
        standby_med: Option<Spanned<i64>>,
        standby_prepend: Option<Spanned<i64>>,
        communities: Option<Vec<Spanned<String>>>,
    ) -> DraftAnnounce {
        DraftAnnounce {
            announce: self.opt(announce),
            mode: self.opt(mode),
            standby_med: self.opt(standby_med),
            standby_prepend: self.opt(standby_prepend),
            communities: self.list(communities),
        }
    }

    fn endpoint(&self, raw: RawEndpoint) -> DraftEndpoint {
        DraftEndpoint {
            address: self.src(raw.address),
            port: self.opt(raw.port),
        }
    }

    fn vs_group(&self, name: Spanned<String>, raw: RawVsGroup) -> DraftVsGroup {
        DraftVsGroup {
            name: self.src(name),
            members: raw.members.into_iter().map(|m| self.endpoint(m)).collect(),
        }
    }

    fn virtual_server(
        &self,
        raw: RawVirtualServer,
        table: std::ops::Range<usize>,
    ) -> DraftVirtualServer {
        // Where errors about the table as a whole point: its address, else its group,
        // else the table.
        let span = raw
            .address
            .as_ref()
            .or(raw.group.as_ref())
            .map_or(table, Spanned::span);
        let at = (self.at)(span);
        let target = match (raw.address, raw.group) {
            (Some(address), None) => Some(DraftVsTarget::Endpoint(DraftEndpoint {
                address: self.src(address),
                port: self.opt(raw.port),
            })),
            (None, Some(group)) if raw.port.is_none() => {
                Some(DraftVsTarget::Group(self.src(group)))
            }
            // Validation says what is missing or too much.
            _ => None,
        };
        let mut vs = DraftVirtualServer::new(at, target);
        vs.delay_loop = self.duration(raw.delay_loop);
        vs.lb_algo = self.opt(raw.lb_algo);
        vs.lb_kind = self.opt(raw.lb_kind);
        vs.persistence_timeout = self.duration(raw.persistence_timeout);
        vs.persistence_granularity = raw.persistence_granularity.map(|v| {
            let v = self.src(v);
            Sourced::new(v.value.0, v.at)
        });
        vs.protocol = self.opt(raw.protocol);
        vs.sorry_server = raw.sorry_server.map(|e| self.endpoint(e));
        vs.sorry_server_inhibit = self.opt(raw.sorry_server_inhibit);
        vs.alpha = self.opt(raw.alpha);
        vs.omega = self.opt(raw.omega);
        vs.quorum = self.opt(raw.quorum);
        vs.hysteresis = self.opt(raw.hysteresis);
        vs.quorum_up = self.command(raw.quorum_up);
        vs.quorum_down = self.command(raw.quorum_down);
        vs.virtualhost = self.opt(raw.virtualhost);
        vs.hash_port = self.opt(raw.hash_port);
        vs.hash_fallback = self.opt(raw.hash_fallback);
        vs.interface = self.opt(raw.interface);
        vs.announce = self.announce(
            raw.announce,
            raw.announce_mode,
            raw.announce_standby_med,
            raw.announce_standby_prepend,
            raw.announce_communities,
        );
        vs.real_servers = raw
            .real_server
            .unwrap_or_default()
            .into_iter()
            .map(|r| self.real_server(r))
            .collect();
        vs
    }

    fn real_server(&self, raw: RawRealServer) -> DraftRealServer {
        DraftRealServer {
            endpoint: DraftEndpoint {
                address: self.src(raw.address),
                port: self.opt(raw.port),
            },
            weight: self.opt(raw.weight),
            inhibit_on_failure: self.opt(raw.inhibit_on_failure),
            notify_up: self.command(raw.notify_up),
            notify_down: self.command(raw.notify_down),
            checkers: raw
                .check
                .unwrap_or_default()
                .into_iter()
                .map(|c| self.checker(c))
                .collect(),
        }
    }

    fn checker(&self, raw: RawChecker) -> DraftChecker {
        let mut checker = DraftChecker::new(self.src(raw.kind));
        checker.connect_ip = self.opt(raw.connect_ip);
        checker.connect_port = self.opt(raw.connect_port);
        checker.bindto = self.opt(raw.bindto);
        checker.connect_timeout = self.duration(raw.connect_timeout);
        checker.retry = self.opt(raw.retry);
        checker.delay_before_retry = self.duration(raw.delay_before_retry);
        checker.delay_loop = self.duration(raw.delay_loop);
        checker.warmup = self.duration(raw.warmup);
        checker.virtualhost = self.opt(raw.virtualhost);
        checker.urls = raw
            .url
            .unwrap_or_default()
            .into_iter()
            .map(|url| {
                let span = url.span();
                let url = url.into_inner();
                DraftUrl {
                    at: (self.at)(span),
                    path: self.opt(url.path),
                    status_codes: url
                        .status_code
                        .unwrap_or_default()
                        .into_iter()
                        .map(|c| {
                            let c = self.src(c);
                            Sourced::new(c.value.0, c.at)
                        })
                        .collect(),
                    digest: self.opt(url.digest),
                    virtualhost: self.opt(url.virtualhost),
                }
            })
            .collect();
        checker.misc_path = self.command(raw.misc_path);
        checker.misc_timeout = self.duration(raw.misc_timeout);
        checker.misc_dynamic = self.opt(raw.misc_dynamic);
        checker.payload = self.opt(raw.payload);
        checker.require_reply = self.opt(raw.require_reply);
        checker.reply = self.opt(raw.reply);
        checker.min_reply_length = self.opt(raw.min_reply_length);
        checker.max_reply_length = self.opt(raw.max_reply_length);
        checker.query_type = self.opt(raw.query_type);
        checker.query_name = self.opt(raw.query_name);
        checker.helo_name = self.opt(raw.helo_name);
        checker.track_file = self.opt(raw.track_file);
        checker.file_weight = self.opt(raw.weight);
        checker.file_reverse = self.opt(raw.reverse);
        checker.bfd = self.opt(raw.bfd);
        checker
    }

    fn vip(&self, vip: Spanned<RawVip>) -> DraftVip {
        let span = vip.span();
        match vip.into_inner() {
            RawVip::Address(address) => DraftVip {
                address: Sourced::new(address, (self.at)(span)),
                dev: None,
                label: None,
            },
            RawVip::Table(table) => DraftVip {
                address: self.src(table.address),
                dev: self.opt(table.dev),
                label: self.opt(table.label),
            },
        }
    }
}

// ---- serde shapes of the file; field names are the documented keys ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrackFile {
    file: Option<Spanned<String>>,
    weight: Option<Spanned<i64>>,
    init_file: Option<Spanned<RawInitFile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInitFileTable {
    value: Option<Spanned<i64>>,
    overwrite: Option<Spanned<bool>>,
}

/// `0` or `{ value = 0, overwrite = true }`.
enum RawInitFile {
    Value(i64),
    Table(RawInitFileTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSyncGroup {
    group: Option<Spanned<Vec<Spanned<String>>>>,
    notify_master: Option<Spanned<RawCommand>>,
    notify_backup: Option<Spanned<RawCommand>>,
    notify_fault: Option<Spanned<RawCommand>>,
    notify_stop: Option<Spanned<RawCommand>>,
    notify: Option<Spanned<RawCommand>>,
    tracking_weight: Option<Spanned<bool>>,
    smtp_alert: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGlobal {
    router_id: Option<Spanned<String>>,
    control_socket: Option<Spanned<String>>,
    notification_email: Option<Vec<Spanned<String>>>,
    notification_email_from: Option<Spanned<String>>,
    smtp_server: Option<Spanned<String>>,
    smtp_port: Option<Spanned<i64>>,
    smtp_connect_timeout: Option<Spanned<RawDuration>>,
    realtime_priority: Option<Spanned<i64>>,
    notify_shutdown_timeout: Option<Spanned<RawDuration>>,
    smtp_alert: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScript {
    script: Option<Spanned<RawCommand>>,
    interval: Option<Spanned<RawDuration>>,
    timeout: Option<Spanned<RawDuration>>,
    weight: Option<Spanned<i64>>,
    rise: Option<Spanned<i64>>,
    fall: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInstance {
    interface: Option<Spanned<String>>,
    virtual_router_id: Option<Spanned<i64>>,
    priority: Option<Spanned<i64>>,
    advert_int: Option<Spanned<RawDuration>>,
    version: Option<Spanned<i64>>,
    state: Option<Spanned<String>>,
    preempt: Option<Spanned<bool>>,
    nopreempt: Option<Spanned<bool>>,
    preempt_delay: Option<Spanned<RawDuration>>,
    accept_mode: Option<Spanned<bool>>,
    authentication: Option<Spanned<RawAuthentication>>,
    virtual_ipaddress: Option<Spanned<Vec<Spanned<RawVip>>>>,
    unicast_src_ip: Option<Spanned<String>>,
    unicast_peer: Option<Vec<Spanned<String>>>,
    garp_master_delay: Option<Spanned<RawDuration>>,
    garp_master_repeat: Option<Spanned<i64>>,
    garp_interval: Option<Spanned<RawDuration>>,
    garp_master_refresh: Option<Spanned<RawDuration>>,
    garp_gateways: Option<Vec<Spanned<String>>>,
    garp_gateway_count: Option<Spanned<i64>>,
    track_script: Option<Vec<Spanned<RawTrackedScript>>>,
    track_file: Option<Vec<Spanned<RawTrackedScript>>>,
    track_interface: Option<Vec<Spanned<RawTrackedScript>>>,
    track_bfd: Option<Vec<Spanned<RawTrackedBfd>>>,
    announce: Option<Spanned<String>>,
    announce_mode: Option<Spanned<String>>,
    announce_standby_med: Option<Spanned<i64>>,
    announce_standby_prepend: Option<Spanned<i64>>,
    announce_communities: Option<Vec<Spanned<String>>>,
    notify_master: Option<Spanned<RawCommand>>,
    notify_backup: Option<Spanned<RawCommand>>,
    notify_fault: Option<Spanned<RawCommand>>,
    notify_stop: Option<Spanned<RawCommand>>,
    notify: Option<Spanned<RawCommand>>,
    smtp_alert: Option<Spanned<bool>>,
    xdp: Option<Spanned<String>>,
    v3_checksum: Option<Spanned<String>>,
    use_vmac: Option<Spanned<bool>>,
    vmac_name: Option<Spanned<String>>,
    vmac_xmit_base: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    address: Spanned<String>,
    port: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVsGroup {
    members: Vec<RawEndpoint>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVirtualServer {
    address: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
    group: Option<Spanned<String>>,
    protocol: Option<Spanned<String>>,
    lb_algo: Option<Spanned<String>>,
    lb_kind: Option<Spanned<String>>,
    delay_loop: Option<Spanned<RawDuration>>,
    persistence_timeout: Option<Spanned<RawDuration>>,
    persistence_granularity: Option<Spanned<RawText>>,
    sorry_server: Option<RawEndpoint>,
    sorry_server_inhibit: Option<Spanned<bool>>,
    alpha: Option<Spanned<bool>>,
    omega: Option<Spanned<bool>>,
    quorum: Option<Spanned<i64>>,
    hysteresis: Option<Spanned<i64>>,
    quorum_up: Option<Spanned<RawCommand>>,
    quorum_down: Option<Spanned<RawCommand>>,
    virtualhost: Option<Spanned<String>>,
    hash_port: Option<Spanned<bool>>,
    hash_fallback: Option<Spanned<bool>>,
    interface: Option<Spanned<String>>,
    announce: Option<Spanned<String>>,
    announce_mode: Option<Spanned<String>>,
    announce_standby_med: Option<Spanned<i64>>,
    announce_standby_prepend: Option<Spanned<i64>>,
    announce_communities: Option<Vec<Spanned<String>>>,
    real_server: Option<Vec<RawRealServer>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRealServer {
    address: Spanned<String>,
    port: Option<Spanned<i64>>,
    weight: Option<Spanned<i64>>,
    inhibit_on_failure: Option<Spanned<bool>>,
    notify_up: Option<Spanned<RawCommand>>,
    notify_down: Option<Spanned<RawCommand>>,
    check: Option<Vec<RawChecker>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChecker {
    #[serde(rename = "type")]
    kind: Spanned<String>,
    connect_ip: Option<Spanned<String>>,
    connect_port: Option<Spanned<i64>>,
    bindto: Option<Spanned<String>>,
    connect_timeout: Option<Spanned<RawDuration>>,
    retry: Option<Spanned<i64>>,
    delay_before_retry: Option<Spanned<RawDuration>>,
    delay_loop: Option<Spanned<RawDuration>>,
    warmup: Option<Spanned<RawDuration>>,
    virtualhost: Option<Spanned<String>>,
    url: Option<Vec<Spanned<RawUrl>>>,
    misc_path: Option<Spanned<RawCommand>>,
    misc_timeout: Option<Spanned<RawDuration>>,
    misc_dynamic: Option<Spanned<bool>>,
    payload: Option<Spanned<String>>,
    require_reply: Option<Spanned<bool>>,
    reply: Option<Spanned<String>>,
    min_reply_length: Option<Spanned<i64>>,
    max_reply_length: Option<Spanned<i64>>,
    query_type: Option<Spanned<String>>,
    query_name: Option<Spanned<String>>,
    helo_name: Option<Spanned<String>>,
    track_file: Option<Spanned<String>>,
    weight: Option<Spanned<i64>>,
    reverse: Option<Spanned<bool>>,
    bfd: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUrl {
    path: Option<Spanned<String>>,
    status_code: Option<Vec<Spanned<RawText>>>,
    digest: Option<Spanned<String>>,
    virtualhost: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthentication {
    auth_type: Option<Spanned<String>>,
    auth_pass: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVipTable {
    address: Spanned<String>,
    dev: Option<Spanned<String>>,
    label: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrackedScriptTable {
    name: Spanned<String>,
    weight: Option<Spanned<i64>>,
}

/// `"192.0.2.1/24"` or `{ address = "192.0.2.1/24", dev = "eth0", label = "eth0:a" }`.
enum RawVip {
    Address(String),
    Table(RawVipTable),
}

/// `"chk_down"` or `{ name = "chk_down", weight = -10 }`.
enum RawTrackedScript {
    Name(String),
    Table(RawTrackedScriptTable),
}

/// A duration as text: `"1.5s"`, `"10ms"`, or a bare number of seconds (`1`, `0.5`).
struct RawDuration(String);

/// `"/bin/foo arg"` or `["/bin/foo", "arg"]`.
struct RawCommand(DraftCommand);

/// An integer or a string, as text: a status code (`200`) or range (`"200-299"`), a
/// prefix length (`24`) or netmask (`"255.255.255.0"`).
struct RawText(String);

/// A scalar (string, integer, and with `floats` a finite float) read as its text; what
/// `expecting` says when it is anything else. Shared by [`RawText`] and [`RawDuration`],
/// whose own parsers then read the text with locations intact.
struct ScalarText {
    expecting: &'static str,
    floats: bool,
}

impl Visitor<'_> for ScalarText {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }
    fn visit_str<E: de::Error>(self, value: &str) -> Result<String, E> {
        Ok(value.to_owned())
    }
    fn visit_i64<E: de::Error>(self, value: i64) -> Result<String, E> {
        Ok(value.to_string())
    }
    fn visit_u64<E: de::Error>(self, value: u64) -> Result<String, E> {
        Ok(value.to_string())
    }
    fn visit_f64<E: de::Error>(self, value: f64) -> Result<String, E> {
        if !self.floats {
            return Err(E::invalid_type(de::Unexpected::Float(value), &self));
        }
        // `Display` for f64 prints the shortest text that reads back as the same
        // number ("0.01", not "0.01000000000000000020816681711721685"), which the
        // exact decimal parser then takes as written.
        if value.is_finite() {
            Ok(value.to_string())
        } else {
            Err(E::custom("a duration must be a finite number"))
        }
    }
}

impl<'de> Deserialize<'de> for RawText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(ScalarText {
                expecting: "an integer or a string",
                floats: false,
            })
            .map(RawText)
    }
}

/// Implements `Deserialize` for a "string or table" shape via a visitor.
macro_rules! string_or_table {
    ($ty:ident, $string:ident, $table:ident, $expecting:literal) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, value: &str) -> Result<$ty, E> {
                        Ok($ty::$string(value.to_owned()))
                    }
                    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<$ty, M::Error> {
                        Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))
                            .map($ty::$table)
                    }
                }
                deserializer.deserialize_any(V)
            }
        }
    };
}

string_or_table!(
    RawVip,
    Address,
    Table,
    "an address string like \"192.0.2.100/24\" or a table { address, dev, label }"
);
string_or_table!(
    RawTrackedScript,
    Name,
    Table,
    "a name or a table { name, weight }"
);

impl<'de> Deserialize<'de> for RawInitFile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawInitFile;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a table { value, overwrite }")
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<RawInitFile, E> {
                Ok(RawInitFile::Value(value))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<RawInitFile, E> {
                i64::try_from(value)
                    .map(RawInitFile::Value)
                    .map_err(|_| E::custom("integer too large"))
            }
            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<RawInitFile, M::Error> {
                Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawInitFile::Table)
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RawDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(ScalarText {
                expecting: "a duration like \"1s\", \"100ms\" or a number of seconds",
                floats: true,
            })
            .map(RawDuration)
    }
}

impl<'de> Deserialize<'de> for RawCommand {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawCommand;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a command line string or an array of strings (argv)")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<RawCommand, E> {
                Ok(RawCommand(DraftCommand::Line(value.to_owned())))
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<RawCommand, S::Error> {
                let mut argv = Vec::new();
                while let Some(word) = seq.next_element::<String>()? {
                    argv.push(word);
                }
                Ok(RawCommand(DraftCommand::Argv(argv)))
            }
        }
        deserializer.deserialize_any(V)
    }
}

// ---- BFD ([bfd.NAME], track_bfd) ----

impl Converter<'_> {
    fn bfd(&self, name: Spanned<String>, raw: RawBfd) -> DraftBfd {
        DraftBfd {
            name: self.src(name),
            neighbor_ip: self.opt(raw.neighbor_ip),
            source_ip: self.opt(raw.source_ip),
            min_rx: self.duration(raw.min_rx),
            min_tx: self.duration(raw.min_tx),
            idle_tx: self.duration(raw.idle_tx),
            multiplier: self.opt(raw.multiplier),
            passive: self.opt(raw.passive),
            ttl: self.opt(raw.ttl),
            max_hops: self.opt(raw.max_hops),
            weight: self.opt(raw.weight),
        }
    }

    fn tracked_bfd(&self, entries: Option<Vec<Spanned<RawTrackedBfd>>>) -> Vec<DraftTrackedBfd> {
        entries
            .unwrap_or_default()
            .into_iter()
            .map(|entry| {
                let span = entry.span();
                match entry.into_inner() {
                    RawTrackedBfd::Name(name) => DraftTrackedBfd {
                        name: Sourced::new(name, (self.at)(span)),
                        weight: None,
                        peer: None,
                    },
                    RawTrackedBfd::Table(table) => DraftTrackedBfd {
                        name: self.src(table.name),
                        weight: self.opt(table.weight),
                        peer: self.opt(table.peer),
                    },
                }
            })
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBfd {
    neighbor_ip: Option<Spanned<String>>,
    source_ip: Option<Spanned<String>>,
    min_rx: Option<Spanned<RawDuration>>,
    min_tx: Option<Spanned<RawDuration>>,
    idle_tx: Option<Spanned<RawDuration>>,
    multiplier: Option<Spanned<i64>>,
    passive: Option<Spanned<bool>>,
    ttl: Option<Spanned<i64>>,
    max_hops: Option<Spanned<i64>>,
    weight: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrackedBfdTable {
    name: Spanned<String>,
    weight: Option<Spanned<i64>>,
    peer: Option<Spanned<bool>>,
}

/// `"to_gw"` or `{ name = "to_peer", peer = true }` / `{ name = "to_gw", weight = -20 }`.
enum RawTrackedBfd {
    Name(String),
    Table(RawTrackedBfdTable),
}

string_or_table!(
    RawTrackedBfd,
    Name,
    Table,
    "a name or a table { name, weight, peer }"
);
