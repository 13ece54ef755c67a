//! Tests of the keepalived.conf front end: the seed configs, syntax, includes, warnings,
//! and the round trip through `vipd convert`'s TOML.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::super::lb::{
    CheckKind, Checker, HashFlags, HttpCheck, LbAlgo, LbKind, LbProtocol, RealServer, UrlCheck,
    VirtualServer,
};
use super::super::{
    Authentication, Command, ConfigErrors, ConfigWarning, InitialState, Loaded, Location,
    TrackFile, TrackFileInit, TrackedFile, VrrpVersion, WarningKind, parse_toml, render,
};
use super::*;

const FILE: &str = "keepalived.conf";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keepalived")
        .join(name)
}

fn ok(text: &str) -> Loaded {
    match parse_keepalived(text, FILE, Includes::Refuse) {
        Ok(loaded) => loaded,
        Err(errors) => panic!("expected OK, got:\n{errors}\n--- in ---\n{text}"),
    }
}

fn errors(text: &str) -> ConfigErrors {
    match parse_keepalived(text, FILE, Includes::Refuse) {
        Ok(loaded) => panic!("expected errors, got {loaded:#?}\n--- in ---\n{text}"),
        Err(errors) => errors,
    }
}

/// The one error of `text`, as `line:col: message`.
fn one_error(text: &str) -> String {
    let found = errors(text);
    assert_eq!(found.errors.len(), 1, "expected one error, got:\n{found}");
    let e = &found.errors[0];
    let at = e.location.expect("a location");
    format!("{}:{}: {}", at.line, at.column, e.kind)
}

fn at(line: usize, column: usize) -> Option<Location> {
    Some(Location { line, column })
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn argv(words: &[&str]) -> Command {
    Command {
        argv: words.iter().map(|w| (*w).to_owned()).collect(),
    }
}

/// A minimal instance; tests put keys around or inside it.
fn instance(body: &str) -> String {
    format!(
        "vrrp_instance VI_1 {{\n  interface eth0\n  virtual_router_id 7\n  \
         virtual_ipaddress {{\n    192.0.2.100\n  }}\n{body}\n}}\n"
    )
}

fn keepalived_warnings(warnings: &[ConfigWarning]) -> Vec<&KeepalivedWarning> {
    warnings
        .iter()
        .filter_map(|w| match &w.kind {
            WarningKind::Keepalived(k) => Some(k),
            _ => None,
        })
        .collect()
}

// ---- the seed configs ----

fn seed(name: &str) -> Loaded {
    let path = fixture(name);
    let text = std::fs::read_to_string(&path).unwrap();
    parse_keepalived(&text, &path.display().to_string(), Includes::Follow)
        .unwrap_or_else(|e| panic!("{name}:\n{e}"))
}

#[test]
fn seed_node1_is_read_exactly() {
    let loaded = seed("node1-keepalived.conf");
    let config = &loaded.config;
    assert_eq!(config.global.router_id.as_deref(), Some("LVS_DEVEL"));
    let mail = config.global.mail.as_ref().expect("mail settings");
    assert_eq!(mail.to, ["root@localhost"]);
    assert_eq!(mail.from, "kaadmin@localhost");
    assert_eq!(mail.smtp_server, "127.0.0.1");
    assert_eq!(mail.smtp_port, 25);
    assert_eq!(mail.smtp_connect_timeout, Duration::from_secs(30));

    let [script] = config.scripts.as_slice() else {
        panic!("one script expected: {:?}", config.scripts);
    };
    assert_eq!(script.name, "chk_mantaince_down");
    assert_eq!(
        script.command,
        argv(&[
            "/bin/bash",
            "-c",
            "[[ -f /etc/keepalived/down ]] && exit 1 || exit 0"
        ])
    );
    assert_eq!(script.interval, Duration::from_secs(1));
    assert_eq!(script.timeout, Duration::from_secs(1));
    assert_eq!(script.weight, -2);

    let [vi] = config.instances.as_slice() else {
        panic!("one instance expected");
    };
    assert_eq!(vi.name, "VI_1");
    assert_eq!(vi.initial_state, InitialState::Master);
    assert_eq!(vi.interface, "eth0");
    assert_eq!(vi.virtual_router_id, 7);
    assert_eq!(vi.priority, 100);
    assert_eq!(vi.advert_interval, Duration::from_secs(1));
    // keepalived's default version, which PASS authentication needs.
    assert_eq!(vi.version, VrrpVersion::V2);
    assert_eq!(
        vi.authentication,
        Some(Authentication::Pass {
            password: b"1111".to_vec()
        })
    );
    assert_eq!(vi.virtual_addresses.len(), 1);
    assert_eq!(vi.virtual_addresses[0].address, ip("192.0.2.100"));
    assert_eq!(vi.virtual_addresses[0].prefix_len, 32);
    assert_eq!(vi.virtual_addresses[0].dev, "eth0");
    assert_eq!(vi.track_scripts.len(), 1);
    assert_eq!(vi.track_scripts[0].name, "chk_mantaince_down");
    assert_eq!(vi.track_scripts[0].weight, -2);
    assert_eq!(
        vi.notify.master,
        Some(argv(&["/etc/keepalived/notify.sh", "master"]))
    );
    assert_eq!(
        vi.notify.backup,
        Some(argv(&["/etc/keepalived/notify.sh", "backup"]))
    );
    assert_eq!(
        vi.notify.fault,
        Some(argv(&["/etc/keepalived/notify.sh", "fault"]))
    );
    assert_eq!(vi.notify.stop, None);
    assert!(vi.preempt);

    // The load balancer, exactly as written.
    let [vs] = config.virtual_servers.as_slice() else {
        panic!("one virtual_server expected: {:?}", config.virtual_servers);
    };
    let real = |address: &str| RealServer {
        address: address.parse().unwrap(),
        weight: 1,
        inhibit_on_failure: false,
        notify_up: None,
        notify_down: None,
        checkers: vec![Checker {
            kind: CheckKind::Http(HttpCheck {
                tls: false,
                virtualhost: None,
                urls: vec![UrlCheck {
                    path: "/".into(),
                    status_codes: vec![200],
                    digest: None,
                    virtualhost: None,
                }],
            }),
            connect_ip: None,
            connect_port: None,
            bind_to: None,
            connect_timeout: Duration::from_secs(3),
            retry: 3,
            delay_before_retry: Duration::from_secs(3),
            delay_loop: None,
            warmup: None,
        }],
    };
    let expected = VirtualServer {
        name: "192.0.2.100:80/tcp".into(),
        addresses: vec!["192.0.2.100:80".parse().unwrap()],
        protocol: LbProtocol::Tcp,
        algo: LbAlgo::Rr,
        hash: HashFlags::default(),
        kind: LbKind::Dr,
        delay_loop: Duration::from_secs(6),
        persistence_timeout: None,
        persistence_prefix: None,
        sorry_server: None,
        sorry_server_inhibit: false,
        alpha: false,
        omega: false,
        quorum: 1,
        hysteresis: 0,
        quorum_up: None,
        quorum_down: None,
        virtualhost: None,
        interface: None,
        announce: None,
        real_servers: vec![real("192.0.2.11:80"), real("192.0.2.12:80")],
    };
    assert_eq!(*vs, expected);

    // Exactly two warnings: the shell script, and `nat_mask`, which only NAT uses.
    let warnings = &loaded.warnings;
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert_eq!(warnings[0].location, at(14, 11));
    assert!(matches!(
        warnings[0].kind,
        WarningKind::Keepalived(KeepalivedWarning::ShellCommand)
    ));
    assert_eq!(warnings[1].location, at(44, 5));
    let text = warnings[1].to_string();
    assert!(
        text.contains("node1-keepalived.conf:44:5: virtual_server 192.0.2.100 80.nat_mask: warning: `nat_mask` is not implemented by vipd yet; ignored; it only matters to lb_kind NAT"),
        "{text}"
    );
}

#[test]
fn seed_node2_differs_only_in_state_and_priority() {
    let node1 = seed("node1-keepalived.conf");
    let node2 = seed("node2-keepalived.conf");
    let vi = &node2.config.instances[0];
    assert_eq!(vi.initial_state, InitialState::Backup);
    assert_eq!(vi.priority, 99);
    let mut expected = node1.config.clone();
    expected.instances[0].initial_state = InitialState::Backup;
    expected.instances[0].priority = 99;
    assert_eq!(node2.config, expected);
    assert_eq!(node2.warnings.len(), 2);
}

// ---- round trip through the TOML renderer ----

fn round_trip(loaded: &Loaded) {
    let toml = render::to_toml(&loaded.config, &["header".into()], &loaded.warnings);
    let back = parse_toml(&toml, "converted.toml")
        .unwrap_or_else(|e| panic!("converted TOML does not load:\n{e}\n---\n{toml}"));
    assert_eq!(back.config, loaded.config, "\n{toml}");
}

#[test]
fn seeds_round_trip_through_toml() {
    round_trip(&seed("node1-keepalived.conf"));
    round_trip(&seed("node2-keepalived.conf"));
}

#[test]
fn every_supported_key_round_trips() {
    let text = r#"
global_defs {
  router_id "node 1"
  notification_email {
    root@localhost
    ops@example.com
  }
  notification_email_from vipd@node1
  smtp_server mail.example.com 2525
  smtp_connect_timeout 10
  vrrp_version 3
  vrrp_garp_master_delay 2
  vrrp_garp_master_repeat 3
  vrrp_garp_master_refresh 60
  vrrp_garp_interval 0.01
  vrrp_rt_priority 30
}
vrrp_script chk {
  script "/usr/bin/test -e '/etc/a b'"
  interval 2
  timeout 1
  weight 10
  rise 2
  fall 3
}
vrrp_instance "VI 6" {
  state BACKUP
  interface eth1
  virtual_router_id 60
  priority 150
  advert_int 0.01
  nopreempt
  accept
  virtual_ipaddress {
    2001:db8::10/64 dev eth1
    2001:db8::11
  }
  unicast_src_ip 2001:db8::1
  unicast_peer {
    2001:db8::2
  }
  track_interface {
    eth2
    eth3 weight -30
  }
  track_script {
    chk weight -20
  }
  garp_master_delay 1
  notify_master /usr/local/bin/up
  notify "/usr/local/bin/any --x"
  notify_stop "/usr/local/bin/stop"
}
vrrp_instance VI_2 {
  version 2
  interface eth0
  virtual_router_id 9
  virtual_ipaddress {
    192.0.2.50/24 dev eth0 label eth0:vip scope global
  }
  authentication {
    auth_type PASS
    auth_pass secret
  }
  preempt_delay 30
  track_script {
    chk
  }
}
"#;
    let loaded = ok(text);
    let c = &loaded.config;
    assert_eq!(c.global.router_id.as_deref(), Some("node 1"));
    let mail = c.global.mail.as_ref().unwrap();
    assert_eq!(mail.smtp_port, 2525);
    assert_eq!(mail.to.len(), 2);
    assert_eq!(c.global.realtime_priority, 30);
    assert_eq!(
        c.scripts[0].command,
        argv(&["/usr/bin/test", "-e", "/etc/a b"])
    );
    let v6 = &c.instances[0];
    assert_eq!(v6.name, "VI 6");
    assert_eq!(v6.version, VrrpVersion::V3);
    assert_eq!(v6.advert_interval, Duration::from_millis(10));
    assert!(!v6.preempt);
    assert!(v6.accept_mode);
    assert_eq!(v6.virtual_addresses[0].prefix_len, 64);
    assert_eq!(v6.unicast_peers, [ip("2001:db8::2")]);
    let tracked: Vec<(&str, i16)> = v6
        .track_interfaces
        .iter()
        .map(|t| (t.name.as_str(), t.weight))
        .collect();
    assert_eq!(tracked, [("eth2", 0), ("eth3", -30)]);
    assert_eq!(v6.track_scripts[0].weight, -20);
    // Instance value wins over the global default; the other globals apply.
    assert_eq!(v6.garp.master_delay, Duration::from_secs(1));
    assert_eq!(v6.garp.master_repeat, 3);
    assert_eq!(v6.garp.master_refresh, Duration::from_secs(60));
    assert_eq!(v6.garp.interval, Duration::from_millis(10));
    assert_eq!(v6.notify.any, Some(argv(&["/usr/local/bin/any", "--x"])));
    let v2 = &c.instances[1];
    assert_eq!(v2.version, VrrpVersion::V2);
    assert_eq!(v2.virtual_addresses[0].label.as_deref(), Some("eth0:vip"));
    assert_eq!(v2.preempt_delay, Duration::from_secs(30));
    assert_eq!(v2.track_scripts[0].weight, 10);
    assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
    round_trip(&loaded);
}

// ---- lexical syntax ----

#[test]
fn comments_quotes_and_layout() {
    let text = r#"! a comment
# another
vrrp_script chk { # trailing comment
  script "/bin/echo # not a comment ! either"   ! but this is
  interval 1#glued comment
}
vrrp_instance VI_1
{
  interface eth0 ; virtual_router_id 7
  virtual_ipaddress { 192.0.2.100 }
  track_script { chk }
  notify_master "/usr/bin/logger \"quoted\"" 
  notify_backup "/usr/bin/x"y
  notify_fault /usr/bin/a\
}
"#;
    // `interface eth0 ; virtual_router_id 7` is one line: a malformed `interface`.
    assert_eq!(one_error(text), "9:3: `interface` takes one value, found 4");
    let fixed = text.replace(" ; virtual_router_id 7", "\n virtual_router_id 7");
    let loaded = ok(&fixed);
    let c = &loaded.config;
    assert_eq!(
        c.scripts[0].command,
        argv(&["/bin/echo", "#", "not", "a", "comment", "!", "either"])
    );
    assert_eq!(c.scripts[0].interval, Duration::from_secs(1));
    let vi = &c.instances[0];
    assert_eq!(vi.virtual_addresses[0].address, ip("192.0.2.100"));
    assert_eq!(vi.notify.master, Some(argv(&["/usr/bin/logger", "quoted"])));
    // `"…"y`: a quoted part glues onto adjacent text, as in keepalived.
    assert_eq!(vi.notify.backup, Some(argv(&["/usr/bin/xy"])));
    // A backslash at the end of a line continues it.
    assert_eq!(vi.notify.fault, Some(argv(&["/usr/bin/a"])));
}

#[test]
fn syntax_errors_point_at_line_and_column() {
    let cases: &[(&str, &str)] = &[
        (
            "global_defs {\n  router_id \"abc\n}\n",
            "2:13: unterminated quoted string (a quoted string ends on the line it starts)",
        ),
        (
            "global_defs {\n}\n  }\n",
            "3:3: unexpected `}`: no block is open here",
        ),
        (
            "global_defs {\n  router_id x\n",
            "1:1: block `global_defs` opened here is never closed (missing `}`)",
        ),
        (
            "vrrp_instance VI_1 {\n  interface eth0\n  virtual_ipaddress {\n    192.0.2.1\n}\n",
            "1:1: block `vrrp_instance` opened here is never closed (missing `}`)",
        ),
        ("{\n}\n", "1:1: `{` without a keyword before it"),
        (
            &instance("  priority high"),
            "7:12: `priority`: \"high\" is not an integer",
        ),
        (
            &instance("  priority 100 200"),
            "7:3: `priority` takes one integer, found 2",
        ),
        (
            &instance("  priority"),
            "7:3: `priority` takes one integer, found 0",
        ),
        (
            &instance("  authentication PASS"),
            "7:3: `authentication` needs a block: authentication { … }",
        ),
        (
            &instance("  state { MASTER }"),
            "7:3: `state` takes a value, not a block",
        ),
        (
            &instance("  nopreempt maybe"),
            "7:13: `nopreempt`: \"maybe\" is not one of on, off, true, false, yes, no",
        ),
        (
            "vrrp_instance {\n}\n",
            "1:1: `vrrp_instance` takes one name, found 0",
        ),
        (
            &instance("  virtual_ipaddress {\n    192.0.2.1 dev\n  }"),
            "8:15: `dev` needs a value",
        ),
        ("include\n", "1:1: `include` needs a file name or pattern"),
        (
            "include other.conf\n",
            "1:1: `include` is not available when parsing text without a file",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(one_error(text), *expected, "in:\n{text}");
    }
}

#[test]
fn validation_errors_keep_keepalived_locations() {
    let found = errors(&instance("  priority 300\n  advert_int 0.5"));
    let shown: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "keepalived.conf:7:12: instance.VI_1.priority: 300 is out of range 1..=255",
            "keepalived.conf:8:14: instance.VI_1.advert_int: 500ms is not a whole number of \
             seconds, which VRRPv2 requires; use version = 3 for sub-second intervals",
        ]
    );
}

#[test]
fn no_instance_is_an_error_at_the_end_of_the_file() {
    let found = errors("global_defs {\n  router_id x\n}\n");
    assert_eq!(found.errors.len(), 1);
    assert_eq!(found.errors[0].location, at(4, 1));
}

// ---- keepalived defaults ----

#[test]
fn use_vmac_puts_the_vips_on_the_vmac() {
    use super::super::{Ipv4Checksum, Vmac};
    let plain = ok(&instance("  use_vmac"));
    let vi = &plain.config.instances[0];
    assert_eq!(
        vi.vmac,
        Some(Vmac {
            name: "vrrp.7".into(),
            xmit_base: false
        })
    );
    assert_eq!(vi.virtual_addresses[0].dev, "vrrp.7");
    assert_eq!(vi.interface, "eth0");
    // A name, vmac_xmit_base, and a VIP with its own dev (which keeps it).
    let named = ok(
        "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 7\n  \
         use_vmac vip7 00:00:5e:00:01:07\n  vmac_xmit_base\n  \
         virtual_ipaddress {\n    192.0.2.100\n    192.0.2.101 dev eth1\n  }\n}\n",
    );
    let vi = &named.config.instances[0];
    assert_eq!(
        vi.vmac,
        Some(Vmac {
            name: "vip7".into(),
            xmit_base: true
        })
    );
    assert_eq!(vi.virtual_addresses[0].dev, "vip7");
    assert_eq!(vi.virtual_addresses[1].dev, "eth1");
    // The MAC argument is warned: vipd always uses the RFC's.
    assert!(matches!(
        keepalived_warnings(&named.warnings)[..],
        [KeepalivedWarning::NotImplemented { keyword, .. }] if keyword.contains("00:00:5e")
    ));
    round_trip(&named);
    assert_eq!(vi.v3_checksum, Ipv4Checksum::PseudoHeader);
}

#[test]
fn use_vmac_with_unicast_peers_needs_vmac_xmit_base() {
    assert_eq!(
        one_error(&instance(
            "  use_vmac\n  unicast_src_ip 192.0.2.1\n  unicast_peer {\n    192.0.2.2\n  }"
        )),
        "7:3: use_vmac with unicast_peer needs vmac_xmit_base = true"
    );
    let with_base = ok(&instance(
        "  use_vmac\n  vmac_xmit_base\n  unicast_src_ip 192.0.2.1\n  unicast_peer {\n    192.0.2.2\n  }",
    ));
    assert!(with_base.config.instances[0].vmac.is_some());
}

#[test]
fn v3_checksum_as_v2_in_global_defs_and_instances() {
    use super::super::Ipv4Checksum;
    let global = ok(&format!(
        "global_defs {{\n v3_checksum_as_v2\n}}\n{}",
        instance("  version 3")
    ));
    assert_eq!(
        global.config.instances[0].v3_checksum,
        Ipv4Checksum::MessageOnly
    );
    // The instance's own setting wins over global_defs.
    let own = ok(&format!(
        "global_defs {{\n v3_checksum_as_v2\n}}\n{}",
        instance("  version 3\n  v3_checksum_as_v2 false")
    ));
    assert_eq!(
        own.config.instances[0].v3_checksum,
        Ipv4Checksum::PseudoHeader
    );
    round_trip(&global);
}

#[test]
fn version_defaults_follow_keepalived() {
    let v2 = ok(&instance(""));
    assert_eq!(v2.config.instances[0].version, VrrpVersion::V2);
    let global = ok(&format!(
        "global_defs {{\n vrrp_version 3\n}}\n{}",
        instance("  advert_int 0.01")
    ));
    assert_eq!(global.config.instances[0].version, VrrpVersion::V3);
    assert_eq!(
        global.config.instances[0].advert_interval,
        Duration::from_millis(10)
    );
    let v6 = ok(
        "vrrp_instance V6 {\n interface eth0\n virtual_router_id 1\n \
         virtual_ipaddress {\n  2001:db8::1\n }\n}\n",
    );
    assert_eq!(v6.config.instances[0].version, VrrpVersion::V3);
}

#[test]
fn control_characters_in_warnings_stay_valid_toml() {
    let loaded = ok(&instance("  bad\u{1}key\r\u{7f} 1"));
    assert_eq!(loaded.warnings.len(), 1);
    round_trip(&loaded);
}

#[test]
fn shell_notify_passes_keepalived_arguments_on() {
    let loaded = ok(&instance("  notify \"/usr/bin/logger -t vrrp | cat\""));
    assert_eq!(
        loaded.config.instances[0].notify.any,
        Some(argv(&[
            "/bin/bash",
            "-c",
            "/usr/bin/logger -t vrrp | cat \"$@\"",
            "vipd-notify"
        ]))
    );
    assert!(uses_shell_syntax("[[ -f x ]]"));
    assert!(uses_shell_syntax("a && b"));
    assert!(!uses_shell_syntax("/etc/keepalived/notify.sh master"));
}

// ---- warnings for what vipd ignores ----

#[test]
fn unknown_and_unimplemented_keys_warn_once_each() {
    let text = format!(
        "global_defs {{\n  vrrp_strict\n  enable_script_security\n  lvs_id x\n}}\n\
         static_ipaddress {{\n  192.0.2.9 dev eth0\n  192.0.2.10 dev eth0\n}}\n\
         vrrp_sync_group G1 {{\n  group {{\n    VI_1\n  }}\n  smtp_alert\n}}\n\
         vrrp_track_file tf {{\n  file /run/x\n  weight 0 reverse\n}}\n\
         vrrp_track_process b {{\n  process x\n}}\n\
         mystery_block {{\n  a b\n}}\n{}",
        instance(
            "  prioirty 100\n  track_file {\n    tf reverse\n  }\n  \
             track_interface {\n    eth1 weight 10\n  }\n  dont_track_primary\n  \
             virtual_ipaddress_excluded {\n    192.0.2.200\n  }\n  notify_master /bin/true root"
        )
    );
    let loaded = ok(&text);
    let got: Vec<(usize, String)> = loaded
        .warnings
        .iter()
        .map(|w| (w.location.unwrap().line, w.kind.to_string()))
        .collect();
    let expected: Vec<(usize, &str)> = vec![
        (
            2,
            "`vrrp_strict` is not implemented by vipd yet; ignored; vipd does not enforce strict RFC mode",
        ),
        (
            3,
            "`enable_script_security` is not implemented by vipd yet; ignored; scripts run as vipd's user",
        ),
        (4, "`lvs_id` is not implemented by vipd yet; ignored"),
        (
            6,
            "`static_ipaddress` (lines 6-9) is not implemented by vipd yet; ignored; the addresses are NOT added",
        ),
        (
            18,
            "`reverse` is not implemented by vipd yet; ignored; the weight applies as written",
        ),
        (
            20,
            "`vrrp_track_process b` (lines 20-22) is not implemented by vipd yet; ignored",
        ),
        (23, "unknown keyword `mystery_block`; ignored"),
        (32, "unknown keyword `prioirty`; ignored"),
        (34, "`reverse` is not implemented by vipd yet; ignored"),
        (
            39,
            "`dont_track_primary` is not implemented by vipd yet; ignored; the instance's own interface is still watched",
        ),
        (
            40,
            "`virtual_ipaddress_excluded` is not implemented by vipd yet; ignored; these addresses are NOT added",
        ),
        (
            43,
            "`run-as user` is not implemented by vipd yet; ignored; \"/bin/true\" runs as vipd's user",
        ),
        // Validation's own warnings come after the front end's.
        (
            11,
            "sync group \"G1\" has only one instance; this probably isn't what you want",
        ),
        // The weight is read; a sync-group member's is zeroed as keepalived does.
        (
            37,
            "weight 10 of track_interface \"eth1\" is ignored because this instance is in sync group \"G1\": the link going down puts the instance into FAULT",
        ),
    ];
    let expected: Vec<(usize, String)> = expected
        .into_iter()
        .map(|(l, m)| (l, m.to_owned()))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(
        keepalived_warnings(&loaded.warnings).len(),
        expected.len() - 2
    );
    assert_eq!(loaded.warnings[7].key, "vrrp_instance.VI_1.prioirty");
}

#[test]
fn vip_options_vipd_lacks_are_warned() {
    let loaded = ok(
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 7\n virtual_ipaddress {\n  \
         192.0.2.1/24 brd 192.0.2.255 dev eth0 scope link no_track\n }\n}\n",
    );
    let got: Vec<String> = loaded.warnings.iter().map(|w| w.kind.to_string()).collect();
    assert_eq!(
        got,
        [
            "`brd 192.0.2.255` is not implemented by vipd yet; ignored",
            "`scope link` is not implemented by vipd yet; ignored",
            "`no_track` is not implemented by vipd yet; ignored",
        ]
    );
    assert_eq!(
        loaded.config.instances[0].virtual_addresses[0].prefix_len,
        24
    );
}

// ---- includes ----

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("vipd-kconf-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn load_file(path: &Path) -> Result<Loaded, ConfigErrors> {
    let text = std::fs::read_to_string(path).unwrap();
    parse_keepalived(&text, &path.display().to_string(), Includes::Follow)
}

#[test]
fn include_globs_are_relative_sorted_and_located() {
    let dir = TempDir::new("glob");
    let main = dir.write(
        "keepalived.conf",
        "global_defs {\n  router_id main\n}\ninclude conf.d/*.conf\ninclude empty.d/*.conf\n",
    );
    dir.write(
        "conf.d/b.conf",
        "vrrp_instance VI_B {\n interface eth0\n virtual_router_id 2\n \
         virtual_ipaddress {\n  192.0.2.2\n }\n native_ipv6\n}\n",
    );
    dir.write(
        "conf.d/a.conf",
        "! first by name\ninclude ../scripts/chk.inc\nvrrp_instance VI_A {\n interface eth0\n \
         virtual_router_id 1\n virtual_ipaddress {\n  192.0.2.1\n }\n track_script {\n  chk\n }\n}\n",
    );
    dir.write(
        "scripts/chk.inc",
        "vrrp_script chk {\n  script /bin/true\n}\n",
    );
    dir.write("conf.d/ignored.txt", "garbage {");
    let loaded = load_file(&main).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = loaded
        .config
        .instances
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    assert_eq!(names, ["VI_A", "VI_B"]);
    assert_eq!(loaded.config.scripts[0].name, "chk");
    let shown: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    let b = dir.0.join("conf.d/b.conf");
    assert_eq!(
        shown,
        [
            format!(
                "{}:5:1: include: warning: include pattern \"empty.d/*.conf\" matches no file",
                main.display()
            ),
            format!(
                "{}:7:2: vrrp_instance.VI_B.native_ipv6: warning: `native_ipv6` is not \
                 implemented by vipd yet; ignored",
                b.display()
            ),
        ]
    );
}

#[test]
fn errors_in_included_files_name_that_file() {
    let dir = TempDir::new("located");
    let main = dir.write("main.conf", "\n\ninclude inc.conf\n");
    let inc = dir.write(
        "inc.conf",
        "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 700\n \
         virtual_ipaddress {\n  192.0.2.1\n }\n}\n",
    );
    let found = load_file(&main).unwrap_err();
    assert_eq!(
        found.errors[0].to_string(),
        format!(
            "{}:3:20: instance.VI_1.virtual_router_id: 700 is out of range 1..=255",
            inc.display()
        )
    );
}

#[test]
fn include_cycles_and_missing_files_are_errors() {
    let dir = TempDir::new("cycle");
    let a = dir.write("a.conf", "include b.conf\n");
    dir.write("b.conf", "\ninclude a.conf\n");
    let found = load_file(&a).unwrap_err();
    assert_eq!(found.errors.len(), 1);
    let e = &found.errors[0];
    assert_eq!(e.file, dir.0.join("b.conf").display().to_string());
    assert_eq!(e.location, at(2, 1));
    let message = e.kind.to_string();
    assert!(message.starts_with("include cycle: "), "{message}");
    assert!(
        message.contains("a.conf -> ") && message.ends_with("a.conf"),
        "{message}"
    );

    let missing = dir.write("m.conf", "include nothere.conf\n");
    let found = load_file(&missing).unwrap_err();
    let message = found.errors[0].to_string();
    assert!(
        message.contains("m.conf:1:1: cannot read included file")
            && message.contains("nothere.conf"),
        "{message}"
    );
}

// ---- detection ----

#[test]
fn format_detection() {
    let toml = Path::new("/etc/vipd/vipd.toml");
    assert!(looks_like_keepalived(
        Path::new("/etc/keepalived/keepalived.conf"),
        ""
    ));
    assert!(looks_like_keepalived(
        toml,
        "! x\nvrrp_instance VI_1 {\n}\n"
    ));
    assert!(looks_like_keepalived(toml, "global_defs {\n}\n"));
    assert!(!looks_like_keepalived(
        toml,
        "[instance.VI_1]\ninterface = \"eth0\"\n"
    ));
    assert!(!looks_like_keepalived(toml, "global_defs = 1\n"));
}

// ---- robustness ----

mod never_panics {
    use proptest::prelude::*;

    use super::*;

    /// Text built from keepalived's own vocabulary finds more paths than random bytes.
    fn keepalived_like() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("{".to_owned()),
            Just("}".to_owned()),
            Just("\n".to_owned()),
            Just(" ".to_owned()),
            Just("\"".to_owned()),
            Just("\\".to_owned()),
            Just("!".to_owned()),
            Just("vrrp_instance".to_owned()),
            Just("vrrp_script".to_owned()),
            Just("global_defs".to_owned()),
            Just("virtual_ipaddress".to_owned()),
            Just("track_script".to_owned()),
            Just("authentication".to_owned()),
            Just("include".to_owned()),
            Just("192.0.2.1/24".to_owned()),
            Just("dev".to_owned()),
            Just("weight".to_owned()),
            "[a-z_]{1,12}",
            "-?[0-9]{1,5}",
            any::<String>(),
        ];
        proptest::collection::vec(piece, 0..60).prop_map(|p| p.concat())
    }

    proptest! {
        #[test]
        fn on_arbitrary_text(text in any::<String>()) {
            let _ = parse_keepalived(&text, "fuzz.conf", Includes::Refuse);
        }

        #[test]
        fn on_keepalived_like_text(text in keepalived_like()) {
            let _ = parse_keepalived(&text, "fuzz.conf", Includes::Refuse);
        }
    }

    #[test]
    fn on_deep_nesting() {
        let text = "a {\n".repeat(10_000);
        let _ = parse_keepalived(&text, "deep.conf", Includes::Refuse);
    }
}

// ---- sync groups and track files ----

#[test]
fn sync_groups_and_track_files_are_read_and_round_trip() {
    let text = r#"
track_file maint {
  file "/run/vipd/maint"
  weight 0
  init_file overwrite
}
vrrp_track_file load {
  file /run/vipd/load
  weight -10
  init_file 3
}
vrrp_sync_group G1 {
  group {
    VI_1
    VI_2
  }
  notify_master "/usr/local/bin/group up"
  notify_backup /usr/local/bin/down
  notify_fault /usr/local/bin/fault
  notify_stop /usr/local/bin/stop
  notify /usr/local/bin/any
}
vrrp_sync_group G2 {
  group { VI_3 VI_4 }
  global_tracking
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 1
  virtual_ipaddress {
    192.0.2.1
  }
  track_file {
    maint
  }
}
vrrp_instance VI_2 {
  interface eth0
  virtual_router_id 2
  virtual_ipaddress {
    192.0.2.2
  }
  track_file {
    maint weight 0 noreverse
  }
}
vrrp_instance VI_3 {
  interface eth0
  virtual_router_id 3
  virtual_ipaddress {
    192.0.2.3
  }
  track_file {
    load weight 2
  }
}
vrrp_instance VI_4 {
  interface eth0
  virtual_router_id 4
  virtual_ipaddress {
    192.0.2.4
  }
  track_file {
    load
  }
}
"#;
    let loaded = ok(text);
    assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
    let c = &loaded.config;
    assert_eq!(
        c.track_files,
        [
            TrackFile {
                name: "maint".into(),
                path: "/run/vipd/maint".into(),
                weight: 0,
                init: Some(TrackFileInit {
                    value: 0,
                    overwrite: true
                }),
            },
            TrackFile {
                name: "load".into(),
                path: "/run/vipd/load".into(),
                weight: -10,
                init: Some(TrackFileInit {
                    value: 3,
                    overwrite: false
                }),
            },
        ]
    );
    assert_eq!(c.sync_groups.len(), 2);
    let g1 = &c.sync_groups[0];
    assert_eq!(g1.name, "G1");
    assert_eq!(g1.instances, ["VI_1", "VI_2"]);
    assert_eq!(
        g1.notify.master,
        Some(argv(&["/usr/local/bin/group", "up"]))
    );
    assert_eq!(g1.notify.backup, Some(argv(&["/usr/local/bin/down"])));
    assert_eq!(g1.notify.fault, Some(argv(&["/usr/local/bin/fault"])));
    assert_eq!(g1.notify.stop, Some(argv(&["/usr/local/bin/stop"])));
    assert_eq!(g1.notify.any, Some(argv(&["/usr/local/bin/any"])));
    assert!(!g1.tracking_weight);
    let g2 = &c.sync_groups[1];
    assert_eq!(g2.instances, ["VI_3", "VI_4"]);
    assert!(g2.tracking_weight);
    assert_eq!(
        c.instances[1].track_files,
        [TrackedFile {
            name: "maint".into(),
            weight: Some(0)
        }]
    );
    assert_eq!(c.instances[2].track_files[0].weight, Some(2));
    assert_eq!(c.instances[3].track_files[0].weight, None);
    round_trip(&loaded);
}

#[test]
fn sync_group_and_track_file_errors_keep_keepalived_locations() {
    let text = format!(
        "vrrp_sync_group G {{\n  group {{\n    VI_1\n    VI_9\n  }}\n}}\n{}",
        instance("  track_file {\n    nope\n  }")
    );
    let found = errors(&text);
    let got: Vec<(Option<Location>, String)> = found
        .errors
        .iter()
        .map(|e| (e.location, e.kind.to_string()))
        .collect();
    assert_eq!(
        got,
        [
            (
                at(4, 5),
                "no instance named \"VI_9\"; a sync group's `group` lists instance names".into()
            ),
            (
                at(14, 5),
                "no track file named \"nope\"; define it as [track_file.nope]".into()
            ),
        ]
    );
    let error = one_error(&format!(
        "track_file tf {{\n  file /x\n  weight 255\n}}\n{}",
        instance("")
    ));
    assert_eq!(error, "3:10: 255 is out of range -254..=254");
}

#[test]
fn smtp_alert_follows_keepalived_precedence() {
    // (global_defs lines, instance line, group line) → (instance, group).
    let cases: &[(&str, &str, &str, (bool, bool))] = &[
        ("", "", "", (false, false)),
        ("  smtp_alert", "", "", (true, true)),
        ("  smtp_alert off", "  smtp_alert", "", (true, false)),
        (
            "  smtp_alert on",
            "  smtp_alert no",
            "  smtp_alert off",
            (false, false),
        ),
        ("", "", "  smtp_alert", (false, true)),
        // smtp_alert_vrrp wins over smtp_alert for VRRP, written before or after it.
        (
            "  smtp_alert_vrrp off\n  smtp_alert on",
            "",
            "",
            (false, false),
        ),
        ("  smtp_alert off\n  smtp_alert_vrrp", "", "", (true, true)),
    ];
    for (global, inst, group, (inst_alert, group_alert)) in cases {
        let text = format!(
            "global_defs {{\n{global}\n}}\n\
             vrrp_sync_group G {{\n  group {{\n    VI_1\n    VI_2\n  }}\n{group}\n}}\n{}\
             vrrp_instance VI_2 {{\n  interface eth0\n  virtual_router_id 8\n  \
             virtual_ipaddress {{\n    192.0.2.101\n  }}\n}}\n",
            instance(inst)
        );
        let loaded = ok(&text);
        assert!(
            keepalived_warnings(&loaded.warnings).is_empty(),
            "{:?}",
            loaded.warnings
        );
        let config = &loaded.config;
        assert_eq!(config.instances[0].smtp_alert, *inst_alert, "in:\n{text}");
        assert_eq!(
            config.sync_groups[0].smtp_alert, *group_alert,
            "in:\n{text}"
        );
        // `vipd convert` keeps the resolved values.
        let toml = render::to_toml(config, &[], &[]);
        let back = parse_toml(&toml, "converted.toml").unwrap_or_else(|e| panic!("{e}\n{toml}"));
        assert_eq!(back.config.instances, config.instances, "{toml}");
        assert_eq!(back.config.sync_groups, config.sync_groups, "{toml}");
    }
}

#[test]
fn sync_group_and_track_file_options_vipd_lacks_are_warned() {
    let text = format!(
        "vrrp_sync_group G {{\n  group {{\n    VI_1\n  }}\n  track_script {{\n    chk\n  }}\n}}\n\
         track_file tf {{\n  file /x\n  init_file 1 sometimes\n}}\n{}",
        instance("  track_file {\n    tf weight 0 reverse\n  }")
    );
    let loaded = ok(&text);
    let got: Vec<(usize, String)> = loaded
        .warnings
        .iter()
        .map(|w| (w.location.map_or(0, |l| l.line), w.kind.to_string()))
        .collect();
    assert_eq!(
        got,
        [
            (
                5,
                "`track_script` is not implemented by vipd yet; ignored; track it in each member \
                 instance instead (a member's FAULT faults the group)"
                    .to_owned()
            ),
            (11, "unknown keyword `sometimes`; ignored".to_owned()),
            (
                20,
                "`reverse` is not implemented by vipd yet; ignored".to_owned()
            ),
            (
                2,
                "sync group \"G\" has only one instance; this probably isn't what you want"
                    .to_owned()
            ),
        ]
    );
}

// ---- every error in one run ----

#[test]
fn every_error_is_reported_from_every_stage() {
    // One mistake per stage, each in its own block: a value the front end cannot read
    // (line 4), a rule validation checks (11), an unterminated quote (17) and a stray
    // brace (20). The quote leaves chk without a script; that "missing" echo is not
    // reported on top.
    let text = "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 7\n  priority high\n  \
                virtual_ipaddress {\n    192.0.2.100\n  }\n}\n\
                vrrp_instance VI_2 {\n  interface eth0\n  virtual_router_id 300\n  \
                virtual_ipaddress {\n    192.0.2.101\n  }\n}\n\
                vrrp_script chk {\n  script \"/bin/true\n  interval 1\n}\n}\n";
    let found = errors(text);
    let shown: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "keepalived.conf:4:12: `priority`: \"high\" is not an integer",
            "keepalived.conf:11:21: instance.VI_2.virtual_router_id: 300 is out of range 1..=255",
            "keepalived.conf:17:10: unterminated quoted string (a quoted string ends on the line it starts)",
            "keepalived.conf:20:1: unexpected `}`: no block is open here",
        ]
    );
}

#[test]
fn a_broken_instance_block_does_not_add_echo_errors() {
    // An instance whose name is missing is one error, not also "no instance defined".
    assert_eq!(
        one_error("vrrp_instance {\n  interface eth0\n}\n"),
        "1:1: `vrrp_instance` takes one name, found 0"
    );
    // A value error inside a block does not also make its key "missing".
    assert_eq!(
        one_error(&instance("  virtual_router_id x").replace("  virtual_router_id 7\n", "")),
        "6:21: `virtual_router_id`: \"x\" is not an integer"
    );
    // But a block without errors still gets its own "missing" errors beside another
    // block's error.
    let text = format!(
        "{}vrrp_instance VI_2 {{\n  virtual_router_id 8\n  virtual_ipaddress {{\n    192.0.2.9\n  }}\n}}\n",
        instance("  priority high")
    );
    let found = errors(&text);
    let shown: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "keepalived.conf:7:12: `priority`: \"high\" is not an integer",
            "keepalived.conf:9:15: instance.VI_2: missing required key `interface`",
        ]
    );
}
