//! [`Config`] → native TOML (`vipd convert`).
//!
//! Every value is written explicitly, defaults included, so the output does not depend on
//! which front end's defaults were in force (keepalived's VRRP version 2, say) and loading
//! it yields an equal [`Config`]. Commands are written as argv arrays, which the TOML
//! front end takes verbatim.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::Ipv4Checksum;
use super::lb::{CheckKind, HexPattern, LbAlgo, LbKind, RealServer, UrlCheck, VirtualServer};
use super::validate::protocol_name;
use super::{
    Authentication, Command, Config, ConfigWarning, InitialState, NotifyCommands, SyncGroup,
    TrackFile, TrackScript, VrrpVersion, XdpMode, duration,
};

/// Renders `config` as TOML. `header` lines are written first as `#` comments, then each
/// warning as a comment.
pub fn to_toml(config: &Config, header: &[String], warnings: &[ConfigWarning]) -> String {
    let mut out = String::new();
    for line in header {
        comment(&mut out, line);
    }
    for warning in warnings {
        comment(&mut out, &warning.to_string());
    }
    if !header.is_empty() || !warnings.is_empty() {
        out.push('\n');
    }
    let global = &config.global;
    out.push_str("[global]\n");
    if let Some(router_id) = &global.router_id {
        kv(&mut out, "router_id", &string(router_id));
    }
    kv(
        &mut out,
        "control_socket",
        &string(&global.control_socket.to_string_lossy()),
    );
    kv(
        &mut out,
        "realtime_priority",
        &global.realtime_priority.to_string(),
    );
    kv(&mut out, "smtp_alert", &global.smtp_alert.to_string());
    kv(
        &mut out,
        "notify_shutdown_timeout",
        &dur(global.notify_shutdown_timeout),
    );
    if let Some(mail) = &global.mail {
        kv(&mut out, "notification_email", &strings(&mail.to));
        kv(&mut out, "notification_email_from", &string(&mail.from));
        kv(&mut out, "smtp_server", &string(&mail.smtp_server));
        kv(&mut out, "smtp_port", &mail.smtp_port.to_string());
        kv(
            &mut out,
            "smtp_connect_timeout",
            &dur(mail.smtp_connect_timeout),
        );
    }
    for script in &config.scripts {
        render_script(&mut out, script);
    }
    for file in &config.track_files {
        render_track_file(&mut out, file);
    }
    for instance in &config.instances {
        let _ = writeln!(out, "\n[instance.{}]", key(&instance.name));
        kv(&mut out, "interface", &string(&instance.interface));
        kv(
            &mut out,
            "virtual_router_id",
            &instance.virtual_router_id.to_string(),
        );
        kv(&mut out, "priority", &instance.priority.to_string());
        let version = match instance.version {
            VrrpVersion::V2 => "2",
            VrrpVersion::V3 => "3",
        };
        kv(&mut out, "version", version);
        kv(&mut out, "advert_int", &dur(instance.advert_interval));
        let state = match instance.initial_state {
            InitialState::Backup => "BACKUP",
            InitialState::Master => "MASTER",
        };
        kv(&mut out, "state", &string(state));
        kv(&mut out, "preempt", &instance.preempt.to_string());
        kv(&mut out, "preempt_delay", &dur(instance.preempt_delay));
        kv(&mut out, "accept_mode", &instance.accept_mode.to_string());
        if let Some(Authentication::Pass { password }) = &instance.authentication {
            let password = String::from_utf8_lossy(password);
            kv(
                &mut out,
                "authentication",
                &format!(
                    "{{ auth_type = \"PASS\", auth_pass = {} }}",
                    string(&password)
                ),
            );
        }
        out.push_str("virtual_ipaddress = [\n");
        for vip in &instance.virtual_addresses {
            let address = format!("{}/{}", vip.address, vip.prefix_len);
            let _ = write!(
                out,
                "    {{ address = {}, dev = {}",
                string(&address),
                string(&vip.dev)
            );
            if let Some(label) = &vip.label {
                let _ = write!(out, ", label = {}", string(label));
            }
            out.push_str(" },\n");
        }
        out.push_str("]\n");
        if let Some(src) = instance.unicast_src_ip {
            kv(&mut out, "unicast_src_ip", &string(&src.to_string()));
        }
        if !instance.unicast_peers.is_empty() {
            kv(
                &mut out,
                "unicast_peer",
                &addresses(&instance.unicast_peers),
            );
        }
        let garp = &instance.garp;
        kv(&mut out, "garp_master_delay", &dur(garp.master_delay));
        kv(
            &mut out,
            "garp_master_repeat",
            &garp.master_repeat.to_string(),
        );
        kv(&mut out, "garp_interval", &dur(garp.interval));
        kv(&mut out, "garp_master_refresh", &dur(garp.master_refresh));
        if !garp.gateways.is_empty() {
            kv(&mut out, "garp_gateways", &addresses(&garp.gateways));
        }
        kv(
            &mut out,
            "garp_gateway_count",
            &garp.gateway_count.to_string(),
        );
        if !instance.track_scripts.is_empty() {
            let entries: Vec<String> = instance
                .track_scripts
                .iter()
                .map(|t| format!("{{ name = {}, weight = {} }}", string(&t.name), t.weight))
                .collect();
            kv(
                &mut out,
                "track_script",
                &format!("[{}]", entries.join(", ")),
            );
        }
        if !instance.track_files.is_empty() {
            let entries: Vec<String> = instance
                .track_files
                .iter()
                .map(|t| match t.weight {
                    Some(weight) => {
                        format!("{{ name = {}, weight = {weight} }}", string(&t.name))
                    }
                    None => string(&t.name),
                })
                .collect();
            kv(&mut out, "track_file", &format!("[{}]", entries.join(", ")));
        }
        if !instance.track_interfaces.is_empty() {
            let entries: Vec<String> = instance
                .track_interfaces
                .iter()
                .map(|t| match t.weight {
                    0 => string(&t.name),
                    weight => format!("{{ name = {}, weight = {weight} }}", string(&t.name)),
                })
                .collect();
            kv(
                &mut out,
                "track_interface",
                &format!("[{}]", entries.join(", ")),
            );
        }
        render_track_bfd(&mut out, &instance.track_bfd);
        render_notify(&mut out, &instance.notify);
        kv(&mut out, "smtp_alert", &instance.smtp_alert.to_string());
        let xdp = match instance.xdp {
            XdpMode::Auto => "auto",
            XdpMode::Native => "native",
            XdpMode::Generic => "generic",
            XdpMode::Off => "off",
        };
        kv(&mut out, "xdp", &string(xdp));
        render_announce(&mut out, instance.announce.as_ref());
        let v3_checksum = match instance.v3_checksum {
            Ipv4Checksum::PseudoHeader => "pseudo_header",
            Ipv4Checksum::MessageOnly => "message_only",
        };
        kv(&mut out, "v3_checksum", &string(v3_checksum));
        if let Some(vmac) = &instance.vmac {
            kv(&mut out, "use_vmac", "true");
            kv(&mut out, "vmac_name", &string(&vmac.name));
            kv(&mut out, "vmac_xmit_base", &vmac.xmit_base.to_string());
        }
    }
    for group in &config.sync_groups {
        render_sync_group(&mut out, group);
    }
    for vs in &config.virtual_servers {
        render_virtual_server(&mut out, vs);
    }
    for bfd in &config.bfd_instances {
        render_bfd(&mut out, bfd);
    }
    out
}

/// `[[virtual_server]]` with its real servers and checkers; a group's addresses become a
/// `[virtual_server_group.NAME]` table first.
fn render_virtual_server(out: &mut String, vs: &VirtualServer) {
    let group = vs.name.strip_prefix("group ");
    if let Some(group) = group {
        let _ = writeln!(out, "\n[virtual_server_group.{}]", key(group));
        out.push_str("members = [\n");
        for address in &vs.addresses {
            let _ = writeln!(out, "    {},", endpoint(*address));
        }
        out.push_str("]\n");
    }
    out.push_str("\n[[virtual_server]]\n");
    match (group, vs.addresses.first()) {
        (Some(group), _) => kv(out, "group", &string(group)),
        (None, Some(address)) => {
            kv(out, "address", &string(&address.ip().to_string()));
            kv(out, "port", &address.port().to_string());
        }
        (None, None) => {}
    }
    kv(out, "protocol", &string(protocol_name(vs.protocol)));
    let algo = match vs.algo {
        LbAlgo::Rr => "rr",
        LbAlgo::Wrr => "wrr",
        LbAlgo::Lc => "lc",
        LbAlgo::Wlc => "wlc",
        LbAlgo::Sh => "sh",
        LbAlgo::Mh => "mh",
    };
    kv(out, "lb_algo", &string(algo));
    let kind = match vs.kind {
        LbKind::Dr => "DR",
        LbKind::Tun => "TUN",
    };
    kv(out, "lb_kind", &string(kind));
    kv(out, "delay_loop", &dur(vs.delay_loop));
    kv(
        out,
        "persistence_timeout",
        &dur(vs.persistence_timeout.unwrap_or_default()),
    );
    if let Some(prefix) = vs.persistence_prefix {
        kv(out, "persistence_granularity", &prefix.to_string());
    }
    kv(out, "hash_port", &vs.hash.port.to_string());
    kv(out, "hash_fallback", &vs.hash.fallback.to_string());
    if let Some(sorry) = vs.sorry_server {
        kv(out, "sorry_server", &endpoint(sorry));
    }
    kv(
        out,
        "sorry_server_inhibit",
        &vs.sorry_server_inhibit.to_string(),
    );
    kv(out, "alpha", &vs.alpha.to_string());
    kv(out, "omega", &vs.omega.to_string());
    kv(out, "quorum", &vs.quorum.to_string());
    kv(out, "hysteresis", &vs.hysteresis.to_string());
    if let Some(command) = &vs.quorum_up {
        kv(out, "quorum_up", &argv(command));
    }
    if let Some(command) = &vs.quorum_down {
        kv(out, "quorum_down", &argv(command));
    }
    if let Some(host) = &vs.virtualhost {
        kv(out, "virtualhost", &string(host));
    }
    if let Some(interface) = &vs.interface {
        kv(out, "interface", &string(interface));
    }
    render_announce(out, vs.announce.as_ref());
    for real in &vs.real_servers {
        render_real_server(out, real);
    }
}

fn render_announce(out: &mut String, announce: Option<&super::announce::Announce>) {
    let Some(announce) = announce else {
        return;
    };
    kv(out, "announce", &string("bgp"));
    kv(out, "announce_mode", &string(announce.mode.name()));
    if let Some(standby) = announce.standby {
        kv(out, "announce_standby_med", &standby.med.to_string());
        kv(
            out,
            "announce_standby_prepend",
            &standby.prepend.to_string(),
        );
    }
    if !announce.communities.is_empty() {
        let list: Vec<String> = announce
            .communities
            .iter()
            .map(|c| string(&c.to_string()))
            .collect();
        kv(
            out,
            "announce_communities",
            &format!("[{}]", list.join(", ")),
        );
    }
}

fn render_real_server(out: &mut String, real: &RealServer) {
    out.push_str("\n[[virtual_server.real_server]]\n");
    kv(out, "address", &string(&real.address.ip().to_string()));
    kv(out, "port", &real.address.port().to_string());
    kv(out, "weight", &real.weight.to_string());
    kv(
        out,
        "inhibit_on_failure",
        &real.inhibit_on_failure.to_string(),
    );
    if let Some(command) = &real.notify_up {
        kv(out, "notify_up", &argv(command));
    }
    if let Some(command) = &real.notify_down {
        kv(out, "notify_down", &argv(command));
    }
    for checker in &real.checkers {
        out.push_str("\n[[virtual_server.real_server.check]]\n");
        let name = match &checker.kind {
            CheckKind::Http(http) if http.tls => "SSL_GET",
            CheckKind::Http(_) => "HTTP_GET",
            CheckKind::Tcp => "TCP_CHECK",
            CheckKind::Misc(_) => "MISC_CHECK",
            CheckKind::Udp(_) => "UDP_CHECK",
            CheckKind::Ping => "PING_CHECK",
            CheckKind::Dns(_) => "DNS_CHECK",
            CheckKind::Smtp(_) => "SMTP_CHECK",
            CheckKind::File(_) => "FILE_CHECK",
            CheckKind::Bfd(_) => "BFD_CHECK",
        };
        kv(out, "type", &string(name));
        if let Some(ip) = checker.connect_ip {
            kv(out, "connect_ip", &string(&ip.to_string()));
        }
        if let Some(port) = checker.connect_port {
            kv(out, "connect_port", &port.to_string());
        }
        if let Some(ip) = checker.bind_to {
            kv(out, "bindto", &string(&ip.to_string()));
        }
        kv(out, "connect_timeout", &dur(checker.connect_timeout));
        kv(out, "retry", &checker.retry.to_string());
        kv(out, "delay_before_retry", &dur(checker.delay_before_retry));
        if let Some(delay_loop) = checker.delay_loop {
            kv(out, "delay_loop", &dur(delay_loop));
        }
        if let Some(warmup) = checker.warmup {
            kv(out, "warmup", &dur(warmup));
        }
        match &checker.kind {
            CheckKind::Http(http) => {
                if let Some(host) = &http.virtualhost {
                    kv(out, "virtualhost", &string(host));
                }
                out.push_str("url = [\n");
                for url in &http.urls {
                    render_url(out, url);
                }
                out.push_str("]\n");
            }
            CheckKind::Tcp | CheckKind::Ping => {}
            CheckKind::Misc(misc) => {
                kv(out, "misc_path", &argv(&misc.command));
                kv(out, "misc_timeout", &dur(misc.timeout));
                kv(out, "misc_dynamic", &misc.dynamic.to_string());
            }
            CheckKind::Udp(udp) => {
                if !udp.payload.is_empty() {
                    let payload = HexPattern {
                        bytes: udp.payload.clone(),
                        wildcard: vec![0; udp.payload.len()],
                    };
                    kv(out, "payload", &string(&payload.render()));
                }
                kv(out, "require_reply", &udp.require_reply.to_string());
                if let Some(reply) = &udp.reply {
                    kv(out, "reply", &string(&reply.render()));
                }
                kv(out, "min_reply_length", &udp.min_reply_length.to_string());
                kv(out, "max_reply_length", &udp.max_reply_length.to_string());
            }
            CheckKind::Dns(dns) => {
                kv(out, "query_type", &string(dns.query_type.name()));
                kv(out, "query_name", &string(&dns.name));
            }
            CheckKind::Smtp(smtp) => kv(out, "helo_name", &string(&smtp.helo_name)),
            CheckKind::File(file) => {
                kv(out, "track_file", &string(&file.name));
                kv(out, "weight", &file.weight.to_string());
                kv(out, "reverse", &file.reverse.to_string());
            }
            CheckKind::Bfd(name) => kv(out, "bfd", &string(name)),
        }
    }
}

/// `    { path = "/", status_code = [200, "301-302"], … },`: runs of consecutive codes
/// as ranges.
fn render_url(out: &mut String, url: &UrlCheck) {
    let mut codes: Vec<String> = Vec::new();
    let mut run: Option<(u16, u16)> = None;
    for &code in &url.status_codes {
        run = match run {
            Some((first, last)) if last.checked_add(1) == Some(code) => Some((first, code)),
            Some(done) => {
                codes.push(code_run(done));
                Some((code, code))
            }
            None => Some((code, code)),
        };
    }
    if let Some(done) = run {
        codes.push(code_run(done));
    }
    let _ = write!(
        out,
        "    {{ path = {}, status_code = [{}]",
        string(&url.path),
        codes.join(", ")
    );
    if let Some(digest) = &url.digest {
        let _ = write!(out, ", digest = {}", string(digest));
    }
    if let Some(host) = &url.virtualhost {
        let _ = write!(out, ", virtualhost = {}", string(host));
    }
    out.push_str(" },\n");
}

fn code_run((first, last): (u16, u16)) -> String {
    if first == last {
        first.to_string()
    } else {
        string(&format!("{first}-{last}"))
    }
}

fn endpoint(address: SocketAddr) -> String {
    format!(
        "{{ address = {}, port = {} }}",
        string(&address.ip().to_string()),
        address.port()
    )
}

fn render_notify(out: &mut String, notify: &NotifyCommands) {
    for (name, command) in [
        ("notify_master", &notify.master),
        ("notify_backup", &notify.backup),
        ("notify_fault", &notify.fault),
        ("notify_stop", &notify.stop),
        ("notify", &notify.any),
    ] {
        if let Some(command) = command {
            kv(out, name, &argv(command));
        }
    }
}

fn render_track_file(out: &mut String, file: &TrackFile) {
    let _ = writeln!(out, "\n[track_file.{}]", key(&file.name));
    kv(out, "file", &string(&file.path.to_string_lossy()));
    kv(out, "weight", &file.weight.to_string());
    if let Some(init) = &file.init {
        kv(
            out,
            "init_file",
            &format!(
                "{{ value = {}, overwrite = {} }}",
                init.value, init.overwrite
            ),
        );
    }
}

fn render_sync_group(out: &mut String, group: &SyncGroup) {
    let _ = writeln!(out, "\n[sync_group.{}]", key(&group.name));
    kv(out, "group", &strings(&group.instances));
    render_notify(out, &group.notify);
    kv(out, "smtp_alert", &group.smtp_alert.to_string());
    kv(out, "tracking_weight", &group.tracking_weight.to_string());
}

fn render_script(out: &mut String, script: &TrackScript) {
    let _ = writeln!(out, "\n[script.{}]", key(&script.name));
    kv(out, "script", &argv(&script.command));
    kv(out, "interval", &dur(script.interval));
    kv(out, "timeout", &dur(script.timeout));
    kv(out, "weight", &script.weight.to_string());
    kv(out, "rise", &script.rise.to_string());
    kv(out, "fall", &script.fall.to_string());
}

/// `# text`, one comment per line; control characters (which TOML forbids in comments,
/// and which keyword text from a broken file may hold) are escaped.
fn comment(out: &mut String, text: &str) {
    for line in text.lines() {
        out.push_str("# ");
        for c in line.chars() {
            if c.is_control() && c != '\t' {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
        out.push('\n');
    }
}

fn kv(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(out, "{key} = {value}");
}

fn dur(duration: Duration) -> String {
    string(&duration::format(duration))
}

fn argv(command: &Command) -> String {
    strings(&command.argv)
}

fn strings(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| string(v)).collect();
    format!("[{}]", quoted.join(", "))
}

fn addresses(values: &[IpAddr]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| string(&v.to_string())).collect();
    format!("[{}]", quoted.join(", "))
}

/// A bare key when TOML allows one, else a quoted key.
fn key(name: &str) -> String {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        name.to_owned()
    } else {
        string(name)
    }
}

/// A TOML basic string.
pub fn string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---- BFD ([bfd.NAME], track_bfd) ----

fn render_bfd(out: &mut String, bfd: &super::BfdInstance) {
    let _ = writeln!(out, "\n[bfd.{}]", key(&bfd.name));
    kv(out, "neighbor_ip", &string(&bfd.neighbor.to_string()));
    if let Some(source) = bfd.source {
        kv(out, "source_ip", &string(&source.to_string()));
    }
    kv(out, "min_rx", &dur(bfd.min_rx));
    kv(out, "min_tx", &dur(bfd.min_tx));
    kv(out, "idle_tx", &dur(bfd.idle_tx));
    kv(out, "multiplier", &bfd.multiplier.to_string());
    kv(out, "passive", &bfd.passive.to_string());
    kv(out, "ttl", &bfd.ttl.to_string());
    kv(out, "max_hops", &bfd.max_hops.to_string());
    kv(out, "weight", &bfd.weight.to_string());
}

/// Every entry with its weight in force written out, so the output does not depend on
/// the session's default weight.
fn render_track_bfd(out: &mut String, tracked: &[super::TrackedBfd]) {
    if tracked.is_empty() {
        return;
    }
    let entries: Vec<String> = tracked
        .iter()
        .map(|t| {
            if t.peer {
                format!("{{ name = {}, peer = true }}", string(&t.name))
            } else {
                format!("{{ name = {}, weight = {} }}", string(&t.name), t.weight)
            }
        })
        .collect();
    kv(out, "track_bfd", &format!("[{}]", entries.join(", ")));
}
