//! Tests of the model, the TOML front end and every validation rule. Each rule has a test
//! that fails if the rule is removed.

use std::net::IpAddr;
use std::time::Duration;

use super::*;

const FILE: &str = "vipd.toml";

/// The smallest valid instance; tests append keys to it.
const BASE: &str = r#"[instance.VI_1]
interface = "eth0"
virtual_router_id = 7
virtual_ipaddress = ["192.0.2.100"]
"#;

fn with(extra: &str) -> String {
    format!("{BASE}{extra}\n")
}

fn ok(text: &str) -> Loaded {
    match parse_toml(text, FILE) {
        Ok(loaded) => loaded,
        Err(errors) => panic!("expected OK, got:\n{errors}\n--- in ---\n{text}"),
    }
}

fn errors(text: &str) -> ConfigErrors {
    match parse_toml(text, FILE) {
        Ok(loaded) => panic!("expected errors, got {loaded:#?}\n--- in ---\n{text}"),
        Err(errors) => errors,
    }
}

/// Asserts exactly one error, matching `check`, and returns it.
fn one_error(text: &str, check: impl Fn(&ErrorKind) -> bool) -> ConfigError {
    let found = errors(text);
    assert_eq!(found.errors.len(), 1, "expected one error, got:\n{found}");
    let error = found.errors[0].clone();
    assert!(check(&error.kind), "unexpected error: {error}");
    error
}

fn warnings(text: &str) -> Vec<ConfigWarning> {
    ok(text).warnings
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn at(line: usize, column: usize) -> Option<Location> {
    Some(Location { line, column })
}

// ---- defaults and the model ----

#[test]
fn minimal_instance_gets_documented_defaults() {
    let loaded = ok(BASE);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let config = loaded.config;
    assert_eq!(config.global.router_id, None);
    assert_eq!(
        config.global.control_socket,
        PathBuf::from("/run/vipd/vipd.sock")
    );
    assert_eq!(config.global.mail, None);
    assert_eq!(config.global.realtime_priority, 10);
    assert_eq!(
        config.global.notify_shutdown_timeout,
        Duration::from_secs(10)
    );
    let [instance] = config.instances.as_slice() else {
        panic!("one instance expected");
    };
    assert_eq!(instance.name, "VI_1");
    assert_eq!(instance.interface, "eth0");
    assert_eq!(instance.virtual_router_id, 7);
    assert_eq!(instance.priority, 100);
    assert_eq!(instance.advert_interval, Duration::from_secs(1));
    assert_eq!(instance.version, VrrpVersion::V3);
    assert_eq!(instance.initial_state, InitialState::Backup);
    assert!(instance.preempt);
    assert_eq!(instance.preempt_delay, Duration::ZERO);
    assert!(!instance.accept_mode);
    assert_eq!(instance.authentication, None);
    assert_eq!(instance.family, AddressFamily::V4);
    assert_eq!(
        instance.virtual_addresses,
        vec![VirtualAddress {
            address: ip("192.0.2.100"),
            prefix_len: 32,
            dev: "eth0".into(),
            label: None,
        }]
    );
    assert_eq!(instance.unicast_src_ip, None);
    assert!(instance.unicast_peers.is_empty());
    assert_eq!(
        instance.garp,
        GarpSettings {
            master_delay: Duration::from_secs(5),
            master_repeat: 5,
            interval: Duration::ZERO,
            master_refresh: Duration::ZERO,
            gateways: vec![],
            gateway_count: 3,
        }
    );
    assert!(instance.track_scripts.is_empty());
    assert!(instance.track_interfaces.is_empty());
    assert_eq!(instance.notify, NotifyCommands::default());
    assert_eq!(instance.xdp, XdpMode::Auto);
}

#[test]
fn every_key_is_read_into_the_model() {
    let text = r#"
[global]
router_id = "node1"
control_socket = "/run/x.sock"
notification_email = ["root@localhost", "ops@example.com"]
notification_email_from = "vipd@node1"
smtp_server = "127.0.0.1"
smtp_port = 2525
smtp_connect_timeout = "10s"
realtime_priority = 0
notify_shutdown_timeout = "2.5s"

[script.chk]
script = "/usr/bin/test ! -e '/etc/vipd/down file'"
interval = 2
timeout = "500ms"
weight = -2
rise = 3
fall = 2

[instance.VI_1]
interface = "eth0"
virtual_router_id = 7
priority = 150
advert_int = 2
version = 2
state = "master"
nopreempt = true
accept_mode = true
authentication = { auth_type = "pass", auth_pass = "1111" }
virtual_ipaddress = ["192.0.2.100/24", { address = "192.0.2.101/25", dev = "eth1", label = "eth1:vip1" }]
unicast_src_ip = "192.0.2.1"
unicast_peer = ["192.0.2.2", "192.0.2.3"]
garp_master_delay = "0s"
garp_master_repeat = 2
garp_interval = "10ms"
garp_master_refresh = "1m"
garp_gateways = ["192.0.2.254"]
garp_gateway_count = 4
track_script = ["chk", { name = "chk", weight = -20 }]
track_interface = ["eth1", { name = "eth2", weight = -30 }]
notify_master = ["/etc/vipd/notify.sh", "master"]
notify_backup = "/etc/vipd/notify.sh backup"
notify_fault = "/etc/vipd/notify.sh fault"
notify_stop = "/etc/vipd/notify.sh stop"
notify = "/etc/vipd/notify-any.sh"
xdp = "Generic"
"#;
    let loaded = ok(text);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let config = loaded.config;
    assert_eq!(config.global.router_id.as_deref(), Some("node1"));
    assert_eq!(config.global.control_socket, PathBuf::from("/run/x.sock"));
    assert_eq!(config.global.realtime_priority, 0);
    assert_eq!(
        config.global.notify_shutdown_timeout,
        Duration::from_millis(2500)
    );
    assert_eq!(
        config.global.mail,
        Some(MailSettings {
            to: vec!["root@localhost".into(), "ops@example.com".into()],
            from: "vipd@node1".into(),
            smtp_server: "127.0.0.1".into(),
            smtp_port: 2525,
            smtp_connect_timeout: Duration::from_secs(10),
        })
    );
    assert_eq!(
        config.scripts,
        vec![TrackScript {
            name: "chk".into(),
            command: Command {
                argv: ["/usr/bin/test", "!", "-e", "/etc/vipd/down file"]
                    .map(String::from)
                    .to_vec(),
            },
            interval: Duration::from_secs(2),
            timeout: Duration::from_millis(500),
            weight: -2,
            rise: 3,
            fall: 2,
        }]
    );
    let instance = &config.instances[0];
    assert_eq!(instance.priority, 150);
    assert_eq!(instance.advert_interval, Duration::from_secs(2));
    assert_eq!(instance.version, VrrpVersion::V2);
    assert_eq!(instance.initial_state, InitialState::Master);
    assert!(!instance.preempt);
    assert!(instance.accept_mode);
    assert_eq!(
        instance.authentication,
        Some(Authentication::Pass {
            password: b"1111".to_vec()
        })
    );
    assert_eq!(
        instance.virtual_addresses,
        vec![
            VirtualAddress {
                address: ip("192.0.2.100"),
                prefix_len: 24,
                dev: "eth0".into(),
                label: None,
            },
            VirtualAddress {
                address: ip("192.0.2.101"),
                prefix_len: 25,
                dev: "eth1".into(),
                label: Some("eth1:vip1".into()),
            },
        ]
    );
    assert_eq!(instance.unicast_src_ip, Some(ip("192.0.2.1")));
    assert_eq!(
        instance.unicast_peers,
        vec![ip("192.0.2.2"), ip("192.0.2.3")]
    );
    assert_eq!(
        instance.garp,
        GarpSettings {
            master_delay: Duration::ZERO,
            master_repeat: 2,
            interval: Duration::from_millis(10),
            master_refresh: Duration::from_secs(60),
            gateways: vec![ip("192.0.2.254")],
            gateway_count: 4,
        }
    );
    assert_eq!(
        instance.track_scripts,
        vec![
            TrackedScript {
                name: "chk".into(),
                weight: -2
            },
            TrackedScript {
                name: "chk".into(),
                weight: -20
            },
        ]
    );
    assert_eq!(
        instance.track_interfaces,
        [
            TrackedInterface {
                name: "eth1".into(),
                weight: 0
            },
            TrackedInterface {
                name: "eth2".into(),
                weight: -30
            },
        ]
    );
    let argv = |c: &Option<Command>| c.as_ref().map(|c| c.argv.join(" "));
    assert_eq!(
        argv(&instance.notify.master).as_deref(),
        Some("/etc/vipd/notify.sh master")
    );
    assert_eq!(
        argv(&instance.notify.backup).as_deref(),
        Some("/etc/vipd/notify.sh backup")
    );
    assert_eq!(
        argv(&instance.notify.fault).as_deref(),
        Some("/etc/vipd/notify.sh fault")
    );
    assert_eq!(
        argv(&instance.notify.stop).as_deref(),
        Some("/etc/vipd/notify.sh stop")
    );
    assert_eq!(
        argv(&instance.notify.any).as_deref(),
        Some("/etc/vipd/notify-any.sh")
    );
    assert_eq!(instance.xdp, XdpMode::Generic);
}

#[test]
fn instances_keep_file_order() {
    let text = r#"
[instance.zeta]
interface = "eth0"
virtual_router_id = 1
virtual_ipaddress = ["192.0.2.1"]

[instance.alpha]
interface = "eth0"
virtual_router_id = 2
virtual_ipaddress = ["192.0.2.2"]
"#;
    let names: Vec<String> = ok(text)
        .config
        .instances
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, ["zeta", "alpha"]);
}

#[test]
fn ipv6_instance_defaults_to_128() {
    let text = r#"
[instance.V6]
interface = "eth0"
virtual_router_id = 7
virtual_ipaddress = ["2001:db8::1", "2001:db8::2/64"]
advert_int = "10ms"
"#;
    let instance = &ok(text).config.instances[0];
    assert_eq!(instance.family, AddressFamily::V6);
    assert_eq!(instance.virtual_addresses[0].prefix_len, 128);
    assert_eq!(instance.virtual_addresses[1].prefix_len, 64);
    assert_eq!(instance.advert_interval, Duration::from_millis(10));
}

#[test]
fn shipped_examples_parse_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let loaded = load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(
                loaded.warnings.is_empty(),
                "{}: {:?}",
                path.display(),
                loaded.warnings
            );
            assert!(!loaded.config.instances.is_empty());
            checked += 1;
        }
    }
    assert!(
        checked >= 2,
        "expected the two-node example in {}",
        dir.display()
    );
}

#[test]
fn two_node_example_pairs_up() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let node1 = load(&dir.join("vipd-node1.toml")).unwrap().config;
    let node2 = load(&dir.join("vipd-node2.toml")).unwrap().config;
    let (a, b) = (&node1.instances[0], &node2.instances[0]);
    assert_eq!(a.virtual_router_id, b.virtual_router_id);
    assert_eq!(a.virtual_addresses, b.virtual_addresses);
    assert_eq!(a.advert_interval, b.advert_interval);
    assert!(a.priority > b.priority);
    assert_eq!(a.initial_state, InitialState::Master);
    assert_eq!(b.initial_state, InitialState::Backup);
}

#[test]
fn vmac_and_v3_checksum_are_read_and_checked() {
    let loaded = ok(&with(
        "use_vmac = true\nvmac_name = \"vip7\"\nv3_checksum = \"message_only\"",
    ));
    let instance = &loaded.config.instances[0];
    assert_eq!(
        instance.vmac,
        Some(Vmac {
            name: "vip7".into(),
            xmit_base: false
        })
    );
    assert_eq!(instance.virtual_addresses[0].dev, "vip7");
    assert_eq!(instance.v3_checksum, Ipv4Checksum::MessageOnly);
    // Defaults: no VMAC, the RFC 5798 (keepalived, FRR) checksum.
    let plain = &ok(BASE).config.instances[0];
    assert_eq!(plain.vmac, None);
    assert_eq!(plain.v3_checksum, Ipv4Checksum::PseudoHeader);
    assert_eq!(
        ok(&with("use_vmac = true")).config.instances[0]
            .vmac
            .as_ref()
            .map(|v| v.name.as_str()),
        Some("vrrp.7")
    );

    one_error(&with("v3_checksum = \"cisco\""), |k| {
        matches!(k, ErrorKind::NotOneOf { .. })
    });
    one_error(
        &with("use_vmac = true\nunicast_src_ip = \"192.0.2.1\"\nunicast_peer = [\"192.0.2.2\"]"),
        |k| matches!(k, ErrorKind::VmacUnicastNeedsXmitBase),
    );
    one_error(&with("use_vmac = true\nvmac_name = \"a/b\""), |k| {
        matches!(k, ErrorKind::BadInterfaceName { .. })
    });
    let v6 = "[instance.V6]\ninterface = \"eth0\"\nvirtual_router_id = 7\n\
              virtual_ipaddress = [\"2001:db8::1\"]\nuse_vmac = true\n";
    assert_eq!(
        ok(v6).config.instances[0]
            .vmac
            .as_ref()
            .map(|v| v.name.as_str()),
        Some("vrrp6.7")
    );

    let ignored = warnings(&with(
        "vmac_xmit_base = true\nversion = 2\nv3_checksum = \"message_only\"\nadvert_int = \"1s\"",
    ));
    let kinds: Vec<&WarningKind> = ignored.iter().map(|w| &w.kind).collect();
    assert!(
        kinds.contains(&&WarningKind::VmacSettingWithoutVmac),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&&WarningKind::V3ChecksumIgnored),
        "{kinds:?}"
    );
}

#[test]
fn documentation_mentions_every_key() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md"),
    )
    .unwrap();
    let keys = [
        "router_id",
        "control_socket",
        "notification_email",
        "notification_email_from",
        "smtp_server",
        "smtp_port",
        "smtp_connect_timeout",
        "realtime_priority",
        "notify_shutdown_timeout",
        "smtp_alert",
        "script",
        "interval",
        "timeout",
        "weight",
        "rise",
        "fall",
        "interface",
        "virtual_router_id",
        "priority",
        "advert_int",
        "version",
        "state",
        "preempt",
        "nopreempt",
        "preempt_delay",
        "accept_mode",
        "authentication",
        "auth_type",
        "auth_pass",
        "virtual_ipaddress",
        "dev",
        "label",
        "unicast_src_ip",
        "unicast_peer",
        "garp_master_delay",
        "garp_master_repeat",
        "garp_interval",
        "garp_master_refresh",
        "garp_gateways",
        "garp_gateway_count",
        "track_script",
        "track_file",
        "file",
        "init_file",
        "value",
        "overwrite",
        "group",
        "tracking_weight",
        "track_interface",
        "notify_master",
        "notify_backup",
        "notify_fault",
        "notify_stop",
        "notify",
        "xdp",
        "v3_checksum",
        "use_vmac",
        "vmac_name",
        "vmac_xmit_base",
    ];
    for key in keys {
        assert!(
            doc.contains(&format!("`{key}`")),
            "docs/configuration.md lacks `{key}`"
        );
    }
}

// ---- the TOML front end: syntax, unknown keys, locations ----

#[test]
fn unknown_instance_key_names_table_key_and_place() {
    let text = with("prioirty = 100");
    let error = one_error(&text, |k| matches!(k, ErrorKind::Syntax { .. }));
    assert_eq!(error.location, at(5, 1));
    assert_eq!(error.key, "instance.VI_1");
    let line = error.to_string();
    assert!(
        line.starts_with(
            "vipd.toml:5:1: instance.VI_1: unknown field \"prioirty\", expected one of"
        ),
        "{line}"
    );
    assert!(line.contains("\"priority\""), "{line}");
}

#[test]
fn unknown_keys_are_rejected_everywhere() {
    // Each beside a valid instance: a file without one has that error too.
    let cases = [
        (&format!("[global]\nrouterid = \"x\"\n{BASE}"), "global"),
        (&format!("[globals]\n{BASE}"), ""),
        (
            &format!("[script.a]\nscript = \"/bin/true\"\nintervall = 1\n{BASE}"),
            "script.a",
        ),
        (
            &with("authentication = { auth_type = \"PASS\", auth_pas = \"1\" }"),
            "instance.VI_1.authentication",
        ),
        (
            &with("virtual_ipaddress = [{ address = \"192.0.2.1\", device = \"eth0\" }]")
                .replace("virtual_ipaddress = [\"192.0.2.100\"]\n", ""),
            "instance.VI_1.virtual_ipaddress",
        ),
        (
            &with("track_script = [{ name = \"a\", wieght = 1 }]"),
            "instance.VI_1.track_script",
        ),
    ];
    for (text, key) in cases {
        let error = one_error(text, |k| matches!(k, ErrorKind::Syntax { .. }));
        assert!(
            error.to_string().contains("unknown field"),
            "{text}: {error}"
        );
        assert_eq!(error.key, key, "{text}: {error}");
        assert!(error.location.is_some(), "{text}: {error}");
    }
}

#[test]
fn toml_syntax_error_has_location() {
    let text = "[instance.VI_1]\ninterface = \"eth0\"\nvirtual_router_id = = 7\n";
    let error = one_error(text, |k| matches!(k, ErrorKind::Syntax { .. }));
    assert_eq!(error.location.map(|l| l.line), Some(3));
    assert!(error.to_string().starts_with("vipd.toml:3:"), "{error}");
}

#[test]
fn wrong_type_names_the_key() {
    let text = with("priority = \"high\"");
    let error = one_error(&text, |k| matches!(k, ErrorKind::Syntax { .. }));
    assert_eq!(error.location, at(5, 12));
    assert_eq!(error.key, "instance.VI_1.priority");
    assert!(error.to_string().contains("invalid type"), "{error}");
}

#[test]
fn semantic_errors_point_at_the_value() {
    let text = with("priority = 300");
    let error = one_error(&text, |k| {
        matches!(
            k,
            ErrorKind::OutOfRange {
                value: 300,
                min: 1,
                max: 255
            }
        )
    });
    assert_eq!(error.location, at(5, 12));
    assert_eq!(
        error.to_string(),
        "vipd.toml:5:12: instance.VI_1.priority: 300 is out of range 1..=255"
    );
}

#[test]
fn vip_errors_point_at_the_entry() {
    let text = "[instance.VI_1]\ninterface = \"eth0\"\nvirtual_router_id = 7\nvirtual_ipaddress = [\"192.0.2.1\", \"nope\"]\n";
    let error = one_error(text, |k| matches!(k, ErrorKind::BadAddress { .. }));
    assert_eq!(error.location, at(4, 35));
    let text = "[instance.VI_1]\ninterface = \"eth0\"\nvirtual_router_id = 7\nvirtual_ipaddress = [\n  { address = \"192.0.2.1\", label = \"eth1:x\" },\n]\n";
    let error = one_error(text, |k| matches!(k, ErrorKind::BadLabel { .. }));
    assert_eq!(error.location, at(5, 36));
}

#[test]
fn missing_keys_point_at_the_instance_name() {
    let text = "\n[instance.VI_1]\nvirtual_ipaddress = [\"192.0.2.1\"]\n";
    let found = errors(text);
    let kinds: Vec<&ErrorKind> = found.errors.iter().map(|e| &e.kind).collect();
    assert_eq!(
        kinds,
        [
            &ErrorKind::Missing { key: "interface" },
            &ErrorKind::Missing {
                key: "virtual_router_id"
            },
        ]
    );
    assert!(found.errors.iter().all(|e| e.location == at(2, 11)));
}

#[test]
fn every_error_is_reported_in_file_order() {
    let text = r#"
[instance.A]
interface = "eth0"
virtual_router_id = 0
priority = 0
advert_int = "15ms"
virtual_ipaddress = ["192.0.2.1", "2001:db8::1"]

[instance.B]
interface = "this-name-is-too-long"
virtual_router_id = 300
virtual_ipaddress = []
xdp = "sometimes"
"#;
    let found = errors(text);
    let lines: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
    assert_eq!(found.errors.len(), 8, "{lines:#?}");
    let positions: Vec<usize> = found
        .errors
        .iter()
        .map(|e| e.location.unwrap().line)
        .collect();
    assert_eq!(positions, [4, 5, 6, 7, 10, 11, 12, 13], "{lines:#?}");
    // Display is one error per line, nothing else.
    assert_eq!(found.to_string().lines().count(), 8);
}

#[test]
fn every_table_is_read_on_its_own() {
    // A wrong type (line 4), a range error in another instance (9) and an unknown key in
    // a script (14): serde would stop at the first; each table is read on its own, and
    // what could be read is validated. Instance A could not be read, so the group's
    // reference to it is not reported on top.
    let text = r#"[instance.A]
interface = "eth0"
virtual_router_id = 7
priority = "high"
virtual_ipaddress = ["192.0.2.1"]

[instance.B]
interface = "eth0"
virtual_router_id = 300
virtual_ipaddress = ["192.0.2.2"]

[script.chk]
script = "/bin/true"
intervall = 1

[sync_group.G]
group = ["A", "B"]
"#;
    let found = errors(text);
    let shown: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 3, "{shown:#?}");
    let lines: Vec<usize> = found
        .errors
        .iter()
        .map(|e| e.location.expect("located").line)
        .collect();
    assert_eq!(lines, [4, 9, 14], "{shown:#?}");
    assert!(
        shown[0].starts_with("vipd.toml:4:12: instance.A.priority: invalid type"),
        "{shown:#?}"
    );
    assert_eq!(
        shown[1],
        "vipd.toml:9:21: instance.B.virtual_router_id: 300 is out of range 1..=255"
    );
    assert!(
        shown[2].starts_with("vipd.toml:14:1: script.chk: unknown field \"intervall\""),
        "{shown:#?}"
    );
    // A file with one unreadable instance and no other is not also "without instances";
    // a sync group naming a missing instance that was never written still is an error.
    let found = errors(&with(
        "priority = \"high\"\n[sync_group.G]\ngroup = [\"VI_1\", \"VI_9\"]",
    ));
    let kinds: Vec<&ErrorKind> = found.errors.iter().map(|e| &e.kind).collect();
    assert!(matches!(kinds[0], ErrorKind::Syntax { .. }), "{found}");
    assert!(
        matches!(kinds[1..], [ErrorKind::UnknownGroupMember { name }] if name == "VI_9"),
        "{found}"
    );
}

#[test]
fn location_counts_characters_not_bytes() {
    let text = "# é\nx";
    assert_eq!(
        Location::from_offset(text, 0),
        Location { line: 1, column: 1 }
    );
    assert_eq!(
        Location::from_offset(text, 3),
        Location { line: 1, column: 3 }
    );
    assert_eq!(
        Location::from_offset(text, 5),
        Location { line: 2, column: 1 }
    );
    assert_eq!(
        Location::from_offset(text, 99),
        Location { line: 2, column: 2 }
    );
    // Inside a multi-byte character: clamped back to its start.
    assert_eq!(
        Location::from_offset(text, 3),
        Location::from_offset(text, 3)
    );
}

/// The line index agrees with counting from the start, at every offset (line breaks at
/// both ends, empty lines, multi-byte characters, offsets past the end).
#[test]
fn line_index_agrees_with_scanning() {
    fn scan(text: &str, offset: usize) -> Location {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Location {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
    for text in ["", "\n", "a", "\n\nab\n", "# é\nx", "ü\n\nπ=1\n[x]\n"] {
        let index = LineIndex::new(text);
        for offset in 0..=text.len() + 2 {
            assert_eq!(
                index.locate(offset),
                scan(text, offset),
                "{text:?} @ {offset}"
            );
        }
    }
}

#[test]
fn empty_file_has_no_instances() {
    let error = one_error("", |k| matches!(k, ErrorKind::NoInstances));
    assert_eq!(error.location, at(1, 1));
    one_error("[global]\n", |k| matches!(k, ErrorKind::NoInstances));
}

// ---- one test per validation rule ----

#[test]
fn vrid_range() {
    for bad in [0, 256, -1] {
        one_error(&BASE.replace("= 7", &format!("= {bad}")), |k| {
            matches!(
                k,
                ErrorKind::OutOfRange {
                    min: 1,
                    max: 255,
                    ..
                }
            )
        });
    }
    for good in [1, 255] {
        let config = ok(&BASE.replace("= 7", &format!("= {good}"))).config;
        assert_eq!(i64::from(config.instances[0].virtual_router_id), good);
    }
}

#[test]
fn priority_range() {
    for bad in [0, 256] {
        one_error(&with(&format!("priority = {bad}")), |k| {
            matches!(
                k,
                ErrorKind::OutOfRange {
                    min: 1,
                    max: 255,
                    ..
                }
            )
        });
    }
    assert_eq!(
        ok(&with("priority = 255")).config.instances[0].priority,
        255
    );
}

#[test]
fn version_is_2_or_3() {
    for bad in [1, 4] {
        one_error(&with(&format!("version = {bad}")), |k| {
            matches!(k, ErrorKind::OutOfRange { min: 2, max: 3, .. })
        });
    }
}

#[test]
fn advert_int_v3_rules() {
    let cases: &[(&str, Option<Duration>)] = &[
        ("\"10ms\"", Some(Duration::from_millis(10))),
        ("\"100ms\"", Some(Duration::from_millis(100))),
        ("\"1.5s\"", Some(Duration::from_millis(1500))),
        ("0.01", Some(Duration::from_millis(10))),
        ("1", Some(Duration::from_secs(1))),
        ("\"40.95s\"", Some(Duration::from_millis(40950))),
        ("\"15ms\"", None),
        ("\"1.005s\"", None),
        ("\"40.96s\"", None),
        ("0", None),
        ("\"0ms\"", None),
    ];
    for (value, want) in cases {
        let text = with(&format!("advert_int = {value}"));
        match want {
            Some(want) => assert_eq!(ok(&text).config.instances[0].advert_interval, *want),
            None => {
                one_error(&text, |k| {
                    matches!(
                        k,
                        ErrorKind::IntervalNotCentiseconds { .. }
                            | ErrorKind::IntervalTooLongV3 { .. }
                            | ErrorKind::ZeroInterval
                    )
                });
            }
        }
    }
    let error = one_error(&with("advert_int = \"15ms\""), |k| {
        matches!(k, ErrorKind::IntervalNotCentiseconds { .. })
    });
    assert!(error.to_string().contains("centiseconds"), "{error}");
}

#[test]
fn advert_int_v2_rules() {
    let ok_v2 = with("version = 2\nadvert_int = 255");
    assert_eq!(
        ok(&ok_v2).config.instances[0].advert_interval,
        Duration::from_secs(255)
    );
    one_error(&with("version = 2\nadvert_int = \"1.5s\""), |k| {
        matches!(k, ErrorKind::IntervalNotSeconds { .. })
    });
    one_error(&with("version = 2\nadvert_int = 256"), |k| {
        matches!(k, ErrorKind::IntervalTooLongV2 { .. })
    });
    one_error(&with("version = 2\nadvert_int = 0"), |k| {
        matches!(k, ErrorKind::ZeroInterval)
    });
}

#[test]
fn advert_int_syntax() {
    let error = one_error(&with("advert_int = \"1 sec\""), |k| {
        matches!(
            k,
            ErrorKind::Duration(duration::DurationError::UnknownUnit { .. })
        )
    });
    assert_eq!(error.key, "instance.VI_1.advert_int");
    one_error(&with("advert_int = -1"), |k| {
        matches!(
            k,
            ErrorKind::Duration(duration::DurationError::Negative { .. })
        )
    });
    one_error(&with("advert_int = true"), |k| {
        matches!(k, ErrorKind::Syntax { .. })
    });
}

#[test]
fn state_words() {
    for (word, want) in [
        ("MASTER", InitialState::Master),
        ("master", InitialState::Master),
        ("Backup", InitialState::Backup),
    ] {
        let text = with(&format!("state = \"{word}\""));
        assert_eq!(ok(&text).config.instances[0].initial_state, want);
    }
    one_error(&with("state = \"FAULT\""), |k| {
        matches!(k, ErrorKind::NotOneOf { .. })
    });
}

#[test]
fn preempt_and_nopreempt() {
    let preempt = |extra: &str| ok(&with(extra)).config.instances[0].preempt;
    assert!(preempt(""));
    assert!(!preempt("preempt = false"));
    assert!(!preempt("nopreempt = true"));
    assert!(preempt("nopreempt = false"));
    assert!(!preempt("preempt = false\nnopreempt = true"));
    assert!(preempt("preempt = true\nnopreempt = false"));
    for conflict in [
        "preempt = true\nnopreempt = true",
        "preempt = false\nnopreempt = false",
    ] {
        one_error(&with(conflict), |k| {
            matches!(k, ErrorKind::PreemptConflict { .. })
        });
    }
}

#[test]
fn preempt_delay_limits_and_warning() {
    assert_eq!(
        ok(&with("preempt_delay = \"30s\"")).config.instances[0].preempt_delay,
        Duration::from_secs(30)
    );
    one_error(&with("preempt_delay = \"1001s\""), |k| {
        matches!(k, ErrorKind::DurationTooLong { .. })
    });
    let found = warnings(&with("preempt = false\npreempt_delay = \"5s\""));
    assert!(matches!(
        found.as_slice(),
        [ConfigWarning {
            kind: WarningKind::PreemptDelayWithoutPreempt,
            ..
        }]
    ));
}

#[test]
fn authentication_rules() {
    one_error(
        &with("authentication = { auth_type = \"PASS\", auth_pass = \"1111\" }"),
        |k| matches!(k, ErrorKind::AuthenticationWithV3),
    );
    one_error(
        &with("version = 2\nauthentication = { auth_type = \"AH\", auth_pass = \"1111\" }"),
        |k| matches!(k, ErrorKind::AhNotSupported),
    );
    one_error(
        &with("version = 2\nauthentication = { auth_type = \"MD5\", auth_pass = \"1111\" }"),
        |k| matches!(k, ErrorKind::NotOneOf { .. }),
    );
    one_error(
        &with("version = 2\nauthentication = { auth_pass = \"\" }"),
        |k| matches!(k, ErrorKind::EmptyPassword),
    );
    one_error(
        &with("version = 2\nauthentication = { auth_type = \"PASS\" }"),
        |k| matches!(k, ErrorKind::Missing { key: "auth_pass" }),
    );
    // auth_type defaults to PASS.
    let loaded = ok(&with(
        "version = 2\nauthentication = { auth_pass = \"secret\" }",
    ));
    assert_eq!(
        loaded.config.instances[0].authentication,
        Some(Authentication::Pass {
            password: b"secret".to_vec()
        })
    );
}

#[test]
fn long_password_is_truncated_with_a_warning() {
    let loaded = ok(&with(
        "version = 2\nauthentication = { auth_type = \"PASS\", auth_pass = \"0123456789\" }",
    ));
    assert_eq!(
        loaded.config.instances[0].authentication,
        Some(Authentication::Pass {
            password: b"01234567".to_vec()
        })
    );
    assert!(matches!(
        loaded.warnings.as_slice(),
        [ConfigWarning {
            kind: WarningKind::PasswordTruncated { len: 10, .. },
            ..
        }]
    ));
    assert!(loaded.warnings[0].to_string().contains("warning:"));
}

#[test]
fn virtual_ipaddress_required_and_non_empty() {
    let without = BASE.replace("virtual_ipaddress = [\"192.0.2.100\"]\n", "");
    one_error(&without, |k| {
        matches!(
            k,
            ErrorKind::Missing {
                key: "virtual_ipaddress"
            }
        )
    });
    let empty = BASE.replace("[\"192.0.2.100\"]", "[]");
    one_error(&empty, |k| matches!(k, ErrorKind::NoVirtualAddresses));
}

#[test]
fn virtual_ipaddress_count_limit() {
    let vips = |n: usize| -> String {
        let list: Vec<String> = (0..n)
            .map(|i| format!("\"10.{}.{}.{}\"", i / 65536, (i / 256) % 256, i % 256))
            .collect();
        BASE.replace("[\"192.0.2.100\"]", &format!("[{}]", list.join(",")))
    };
    // Beyond 255 (the advert's count field): held, with a warning.
    let loaded = parse_toml(&vips(256), "vipd.toml").expect("256 VIPs are fine");
    assert_eq!(loaded.config.instances[0].virtual_addresses.len(), 256);
    assert!(loaded.warnings.iter().any(|w| matches!(
        w.kind,
        WarningKind::AddressesBeyondAdvert {
            count: 256,
            listed: 255
        }
    )));
    let no_warning = parse_toml(&vips(255), "vipd.toml").expect("255 VIPs are fine");
    assert!(no_warning.warnings.is_empty(), "{:?}", no_warning.warnings);
    // IPv6 adverts list 64 (an unfragmented advert that XDP checks).
    let v6 = |n: usize| -> String {
        let list: Vec<String> = (0..n)
            .map(|i| format!("\"2001:db8::{:x}\"", i + 1))
            .collect();
        BASE.replace("[\"192.0.2.100\"]", &format!("[{}]", list.join(",")))
    };
    assert!(
        parse_toml(&v6(64), "vipd.toml")
            .unwrap()
            .warnings
            .is_empty()
    );
    let loaded = parse_toml(&v6(65), "vipd.toml").expect("65 IPv6 VIPs are fine");
    assert!(loaded.warnings.iter().any(|w| matches!(
        w.kind,
        WarningKind::AddressesBeyondAdvert {
            count: 65,
            listed: 64
        }
    )));
    // Beyond what the XDP lease map holds: an error.
    one_error(
        &vips(MAX_VIRTUAL_ADDRESSES + 1),
        |k| matches!(k, ErrorKind::TooManyAddresses { count, .. } if *count == MAX_VIRTUAL_ADDRESSES + 1),
    );
}

#[test]
fn vip_syntax_and_prefix() {
    for bad in ["192.0.2", "eth0", "192.0.2.1/"] {
        let text = BASE.replace("192.0.2.100", bad);
        one_error(&text, |k| {
            matches!(
                k,
                ErrorKind::BadAddress { .. } | ErrorKind::BadPrefix { .. }
            )
        });
    }
    one_error(&BASE.replace("192.0.2.100", "192.0.2.100/33"), |k| {
        matches!(k, ErrorKind::BadPrefix { max: 32, .. })
    });
    one_error(&BASE.replace("192.0.2.100", "2001:db8::1/129"), |k| {
        matches!(k, ErrorKind::BadPrefix { max: 128, .. })
    });
}

#[test]
fn mixed_families_rejected() {
    let text = BASE.replace("[\"192.0.2.100\"]", "[\"192.0.2.100\", \"2001:db8::1\"]");
    one_error(&text, |k| {
        matches!(
            k,
            ErrorKind::MixedFamilies {
                found: AddressFamily::V6,
                expected: AddressFamily::V4,
                ..
            }
        )
    });
}

#[test]
fn ipv6_needs_v3() {
    let text = BASE.replace("192.0.2.100", "2001:db8::1") + "version = 2\n";
    one_error(&text, |k| matches!(k, ErrorKind::Ipv6WithV2 { .. }));
}

#[test]
fn duplicate_vip_in_one_instance() {
    let text = BASE.replace("[\"192.0.2.100\"]", "[\"192.0.2.100\", \"192.0.2.100/24\"]");
    one_error(&text, |k| matches!(k, ErrorKind::DuplicateAddress { .. }));
}

#[test]
fn vip_dev_and_label_rules() {
    let entry = |fields: &str| {
        BASE.replace(
            "[\"192.0.2.100\"]",
            &format!("[{{ address = \"192.0.2.100\", {fields} }}]"),
        )
    };
    // Label defaults its device to the instance interface.
    let loaded = ok(&entry("label = \"eth0:vip\""));
    assert_eq!(
        loaded.config.instances[0].virtual_addresses[0]
            .label
            .as_deref(),
        Some("eth0:vip")
    );
    for bad in ["eth1:vip", "eth0", "eth0:", "eth0vip", "eth0:0123456789a"] {
        one_error(&entry(&format!("label = \"{bad}\"")), |k| {
            matches!(k, ErrorKind::BadLabel { .. })
        });
    }
    ok(&entry("dev = \"eth1\", label = \"eth1:a\""));
    one_error(&entry("dev = \"eth1\", label = \"eth0:a\""), |k| {
        matches!(k, ErrorKind::BadLabel { .. })
    });
    one_error(&entry("dev = \"bad/dev\""), |k| {
        matches!(k, ErrorKind::BadInterfaceName { .. })
    });
    let v6 = BASE.replace(
        "[\"192.0.2.100\"]",
        "[{ address = \"2001:db8::1\", label = \"eth0:v6\" }]",
    );
    one_error(&v6, |k| matches!(k, ErrorKind::BadLabel { .. }));
}

#[test]
fn interface_name_rules() {
    for bad in ["", "0123456789abcdef", ".", "..", "eth0:1", "a/b", "a b"] {
        one_error(&BASE.replace("\"eth0\"", &format!("\"{bad}\"")), |k| {
            matches!(k, ErrorKind::BadInterfaceName { .. })
        });
    }
    ok(&BASE.replace("\"eth0\"", "\"0123456789abcde\""));
    one_error(&with("track_interface = [\"a/b\"]"), |k| {
        matches!(k, ErrorKind::BadInterfaceName { .. })
    });
}

#[test]
fn duplicate_vrid_per_interface_and_family() {
    let second = |interface: &str, vrid: u8, vip: &str| {
        format!(
            "{BASE}\n[instance.VI_2]\ninterface = \"{interface}\"\nvirtual_router_id = {vrid}\nvirtual_ipaddress = [\"{vip}\"]\n"
        )
    };
    let error = one_error(&second("eth0", 7, "192.0.2.200"), |k| {
        matches!(k, ErrorKind::DuplicateVrid { vrid: 7, .. })
    });
    assert_eq!(error.key, "instance.VI_2.virtual_router_id");
    assert_eq!(error.location, at(8, 21));
    // Same VRID on another interface, or in the other family, is fine (RFC 5798 §7.3).
    ok(&second("eth1", 7, "192.0.2.200"));
    ok(&second("eth0", 7, "2001:db8::1"));
    ok(&second("eth0", 8, "192.0.2.200"));
}

#[test]
fn vip_in_two_instances() {
    let text = format!(
        "{BASE}\n[instance.VI_2]\ninterface = \"eth1\"\nvirtual_router_id = 8\nvirtual_ipaddress = [\"192.0.2.100/24\"]\n"
    );
    one_error(
        &text,
        |k| matches!(k, ErrorKind::AddressInTwoInstances { other, .. } if other == "VI_1"),
    );
}

#[test]
fn unicast_rules() {
    one_error(
        &with("unicast_src_ip = \"2001:db8::1\"\nunicast_peer = [\"192.0.2.2\"]"),
        |k| matches!(k, ErrorKind::FamilyMismatch { .. }),
    );
    one_error(&with("unicast_peer = [\"2001:db8::2\"]"), |k| {
        matches!(k, ErrorKind::FamilyMismatch { .. })
    });
    one_error(&with("unicast_peer = [\"not-an-ip\"]"), |k| {
        matches!(k, ErrorKind::BadAddress { .. })
    });
    one_error(
        &with("unicast_src_ip = \"192.0.2.1\"\nunicast_peer = [\"192.0.2.1\"]"),
        |k| matches!(k, ErrorKind::PeerIsSelf { .. }),
    );
    let loaded = ok(&with("unicast_peer = [\"192.0.2.2\", \"192.0.2.2\"]"));
    assert_eq!(
        loaded.config.instances[0].unicast_peers,
        vec![ip("192.0.2.2")]
    );
    assert!(matches!(
        loaded.warnings.as_slice(),
        [ConfigWarning {
            kind: WarningKind::DuplicatePeer { .. },
            ..
        }]
    ));
    assert!(matches!(
        warnings(&with("unicast_src_ip = \"192.0.2.1\"")).as_slice(),
        [ConfigWarning {
            kind: WarningKind::UnicastSrcWithoutPeers,
            ..
        }]
    ));
}

#[test]
fn garp_rules() {
    for bad in [
        "garp_master_repeat = 0",
        "garp_gateway_count = 0",
        "garp_gateway_count = 256",
    ] {
        one_error(
            &with(&format!("{bad}\ngarp_gateways = [\"192.0.2.254\"]")),
            |k| matches!(k, ErrorKind::OutOfRange { .. }),
        );
    }
    for bad in [
        "garp_master_delay = \"2h\"",
        "garp_interval = \"2h\"",
        "garp_master_refresh = \"2h\"",
    ] {
        one_error(&with(bad), |k| {
            matches!(k, ErrorKind::DurationTooLong { .. })
        });
    }
    one_error(&with("garp_gateways = [\"2001:db8::ff\"]"), |k| {
        matches!(k, ErrorKind::FamilyMismatch { .. })
    });
    assert!(matches!(
        warnings(&with("garp_gateway_count = 2")).as_slice(),
        [ConfigWarning {
            kind: WarningKind::GatewayCountWithoutGateways,
            ..
        }]
    ));
}

#[test]
fn xdp_modes() {
    for (word, want) in [
        ("auto", XdpMode::Auto),
        ("native", XdpMode::Native),
        ("GENERIC", XdpMode::Generic),
        ("off", XdpMode::Off),
    ] {
        assert_eq!(
            ok(&with(&format!("xdp = \"{word}\""))).config.instances[0].xdp,
            want
        );
    }
    one_error(&with("xdp = \"skb\""), |k| {
        matches!(k, ErrorKind::NotOneOf { .. })
    });
}

#[test]
fn owner_with_backup_state_warns() {
    assert!(matches!(
        warnings(&with("priority = 255\nstate = \"BACKUP\"")).as_slice(),
        [ConfigWarning {
            kind: WarningKind::OwnerStartsAsMaster,
            ..
        }]
    ));
    assert!(warnings(&with("priority = 255\nstate = \"MASTER\"")).is_empty());
}

#[test]
fn script_rules() {
    let script = |body: &str| format!("[script.chk]\n{body}\n\n{BASE}track_script = [\"chk\"]\n");
    ok(&script("script = \"/bin/true\""));
    one_error(&script("interval = 1"), |k| {
        matches!(k, ErrorKind::Missing { key: "script" })
    });
    one_error(&script("script = \"\""), |k| matches!(k, ErrorKind::Empty));
    one_error(&script("script = []"), |k| matches!(k, ErrorKind::Empty));
    one_error(&script("script = \"/bin/echo 'unterminated\""), |k| {
        matches!(k, ErrorKind::UnterminatedQuote { .. })
    });
    one_error(&script("script = \"/bin/true\"\ninterval = 0"), |k| {
        matches!(k, ErrorKind::ZeroDuration)
    });
    one_error(&script("script = \"/bin/true\"\ntimeout = \"0s\""), |k| {
        matches!(k, ErrorKind::ZeroDuration)
    });
    one_error(&script("script = \"/bin/true\"\nweight = 254"), |k| {
        matches!(k, ErrorKind::OutOfRange { .. })
    });
    one_error(&script("script = \"/bin/true\"\nrise = 0"), |k| {
        matches!(k, ErrorKind::OutOfRange { .. })
    });
    one_error(&script("script = \"/bin/true\"\nfall = 0"), |k| {
        matches!(k, ErrorKind::OutOfRange { .. })
    });
    // Timeout defaults to the interval.
    let loaded = ok(&script("script = \"/bin/true\"\ninterval = \"3s\""));
    assert_eq!(loaded.config.scripts[0].timeout, Duration::from_secs(3));
    // Relative programs work but are flagged.
    assert!(matches!(
        warnings(&script("script = \"true\"")).as_slice(),
        [ConfigWarning {
            kind: WarningKind::RelativeProgram { .. },
            ..
        }]
    ));
}

#[test]
fn track_script_must_exist_and_unused_scripts_warn() {
    let error = one_error(
        &with("track_script = [\"nope\"]"),
        |k| matches!(k, ErrorKind::UnknownScript { name } if name == "nope"),
    );
    assert_eq!(error.location, at(5, 17));
    one_error(
        &format!(
            "[script.chk]\nscript = \"/bin/true\"\n{BASE}track_script = [{{ name = \"chk\", weight = 300 }}]\n"
        ),
        |k| matches!(k, ErrorKind::OutOfRange { .. }),
    );
    let found = warnings(&format!("[script.chk]\nscript = \"/bin/true\"\n\n{BASE}"));
    assert!(matches!(
        found.as_slice(),
        [ConfigWarning {
            kind: WarningKind::UnusedScript { .. },
            ..
        }]
    ));
}

#[test]
fn notify_commands() {
    one_error(&with("notify_master = \"\""), |k| {
        matches!(k, ErrorKind::Empty)
    });
    one_error(&with("notify_fault = \"/x \\\"unterminated\""), |k| {
        matches!(k, ErrorKind::UnterminatedQuote { .. })
    });
}

#[test]
fn global_rules() {
    one_error(&format!("[global]\nrouter_id = \" \"\n{BASE}"), |k| {
        matches!(k, ErrorKind::Empty)
    });
    one_error(
        &format!("[global]\ncontrol_socket = \"vipd.sock\"\n{BASE}"),
        |k| matches!(k, ErrorKind::RelativePath { .. }),
    );
    one_error(
        &format!(
            "[global]\nnotification_email = [\"a@b\"]\nsmtp_server = \"h\"\nsmtp_port = 0\n{BASE}"
        ),
        |k| matches!(k, ErrorKind::OutOfRange { .. }),
    );
    one_error(
        &format!("[global]\nnotify_shutdown_timeout = \"2h\"\n{BASE}"),
        |k| matches!(k, ErrorKind::DurationTooLong { .. }),
    );
    for out_of_range in [-1, 100] {
        one_error(
            &format!("[global]\nrealtime_priority = {out_of_range}\n{BASE}"),
            |k| {
                matches!(
                    k,
                    ErrorKind::OutOfRange {
                        min: 0,
                        max: 99,
                        ..
                    }
                )
            },
        );
    }
    one_error(
        &format!("[global]\nsmtp_connect_timeout = 0\n{BASE}"),
        |k| matches!(k, ErrorKind::ZeroDuration),
    );
    one_error(
        &format!("[global]\nnotification_email = [\"\"]\n{BASE}"),
        |k| matches!(k, ErrorKind::Empty),
    );
    let loaded = ok(&format!("[global]\nnotification_email = [\"a@b\"]\n{BASE}"));
    assert_eq!(loaded.config.global.mail, None);
    assert!(matches!(
        loaded.warnings.as_slice(),
        [ConfigWarning {
            kind: WarningKind::MailWithoutSmtpServer,
            ..
        }]
    ));
    let loaded = ok(&format!(
        "[global]\nnotification_email = [\"a@b\"]\nsmtp_server = \"127.0.0.1\"\n{BASE}"
    ));
    let mail = loaded.config.global.mail.unwrap();
    assert_eq!(mail.from, "vipd@localhost");
    assert_eq!(mail.smtp_port, 25);
    assert_eq!(mail.smtp_connect_timeout, Duration::from_secs(30));
}

#[test]
fn duplicate_names_from_other_front_ends() {
    // TOML itself rejects a repeated table; keepalived.conf can repeat a name, so the
    // validator checks too.
    let mut draft = toml::to_draft(BASE, FILE).unwrap();
    let copy = draft.instances[0].clone();
    draft.instances.push(copy);
    let found = validate::validate(&draft).unwrap_err();
    assert!(
        found
            .errors
            .iter()
            .any(|e| matches!(&e.kind, ErrorKind::DuplicateName { name } if name == "VI_1")),
        "{found}"
    );
    let error = one_error(&format!("{BASE}[instance.VI_1]\n"), |k| {
        matches!(k, ErrorKind::Syntax { .. })
    });
    assert_eq!(error.location.map(|l| l.line), Some(5));
}

#[test]
fn command_line_splitting() {
    let split = validate::split_command_line;
    let words = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(split("/a b  c"), words(&["/a", "b", "c"]));
    assert_eq!(
        split("/a 'b c' \"d \\\" e\""),
        words(&["/a", "b c", "d \" e"])
    );
    assert_eq!(split("/a b\\ c"), words(&["/a", "b c"]));
    assert_eq!(split("/a ''"), words(&["/a", ""]));
    assert_eq!(split("  "), words(&[]));
    assert_eq!(split("/a 'b"), None);
    assert_eq!(split("/a \"b"), None);
}

#[test]
fn load_reports_unreadable_files() {
    let err = load(Path::new("/nonexistent/vipd.toml")).unwrap_err();
    assert!(matches!(err, LoadError::Read { .. }));
    assert!(err.to_string().contains("/nonexistent/vipd.toml"), "{err}");
}

#[test]
fn one_bad_key_does_not_hide_others() {
    // A bad interface name must not hide the label rule, and a bad VIP must not hide the
    // unicast family rule.
    let text = r#"[instance.VI_1]
interface = "eth0:x"
virtual_router_id = 7
virtual_ipaddress = ["2001:db8::1", "nope", { address = "2001:db8::2", label = "eth0:x:a" }]
unicast_src_ip = "192.0.2.1"
unicast_peer = ["192.0.2.2"]
"#;
    let found = errors(text);
    let has = |check: fn(&ErrorKind) -> bool| found.errors.iter().any(|e| check(&e.kind));
    assert!(
        has(|k| matches!(k, ErrorKind::BadInterfaceName { .. })),
        "{found}"
    );
    assert!(
        has(|k| matches!(k, ErrorKind::BadAddress { .. })),
        "{found}"
    );
    assert!(has(|k| matches!(k, ErrorKind::BadLabel { .. })), "{found}");
    assert!(
        has(|k| matches!(k, ErrorKind::FamilyMismatch { .. })),
        "{found}"
    );
}

// ---- track files ----

/// Two instances on eth0 (VIDs 7 and 8) after `extra`, for group and track-file tests.
fn two_instances(extra: &str, vi1: &str, vi2: &str) -> String {
    format!(
        "{extra}\n[instance.VI_1]\ninterface = \"eth0\"\nvirtual_router_id = 7\n\
         virtual_ipaddress = [\"192.0.2.100\"]\n{vi1}\n\n[instance.VI_2]\n\
         interface = \"eth0\"\nvirtual_router_id = 8\nvirtual_ipaddress = [\"192.0.2.101\"]\n{vi2}\n"
    )
}

#[test]
fn track_files_are_read_with_defaults() {
    let text = "[track_file.maint]\nfile = \"/run/vipd/maint\"\n\n\
                [track_file.load]\nfile = \"/run/vipd/load\"\nweight = -10\n\
                init_file = { value = 5, overwrite = true }\n\n\
                [track_file.flag]\nfile = \"/run/vipd/flag\"\nweight = 0\ninit_file = 0\n\n"
        .to_owned()
        + &with("track_file = [\"maint\", { name = \"load\", weight = 3 }, \"flag\"]");
    let loaded = ok(&text);
    assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
    let c = &loaded.config;
    assert_eq!(
        c.track_files,
        [
            TrackFile {
                name: "maint".into(),
                path: "/run/vipd/maint".into(),
                weight: 1,
                init: None,
            },
            TrackFile {
                name: "load".into(),
                path: "/run/vipd/load".into(),
                weight: -10,
                init: Some(TrackFileInit {
                    value: 5,
                    overwrite: true
                }),
            },
            TrackFile {
                name: "flag".into(),
                path: "/run/vipd/flag".into(),
                weight: 0,
                init: Some(TrackFileInit {
                    value: 0,
                    overwrite: false
                }),
            },
        ]
    );
    let tracked = &c.instances[0].track_files;
    assert_eq!(
        tracked,
        &[
            TrackedFile {
                name: "maint".into(),
                weight: None
            },
            TrackedFile {
                name: "load".into(),
                weight: Some(3)
            },
            TrackedFile {
                name: "flag".into(),
                weight: None
            },
        ]
    );
    let load = c.track_file("load").unwrap();
    assert_eq!(tracked[1].weight_with(load), 3);
    assert_eq!(tracked[0].weight_with(c.track_file("maint").unwrap()), 1);
    assert!(c.track_file("nope").is_none());
    assert!(c.sync_groups.is_empty());
}

#[test]
fn track_file_rules() {
    let decl = |body: &str| format!("[track_file.tf]\n{body}\n\n{BASE}track_file = [\"tf\"]\n");
    let error = one_error(&decl("weight = 2"), |k| {
        matches!(k, ErrorKind::Missing { key: "file" })
    });
    assert_eq!(error.location, at(1, 13));
    assert_eq!(error.key, "track_file.tf");
    let error = one_error(&decl("file = \"run/x\""), |k| {
        matches!(k, ErrorKind::RelativePath { .. })
    });
    assert_eq!(error.location, at(2, 8));
    assert_eq!(error.key, "track_file.tf.file");
    one_error(&decl("file = \"\""), |k| matches!(k, ErrorKind::Empty));
    for (weight, good) in [(-254, true), (254, true), (-255, false), (255, false)] {
        let text = decl(&format!("file = \"/x\"\nweight = {weight}"));
        if good {
            ok(&text);
        } else {
            let error = one_error(&text, |k| {
                matches!(
                    k,
                    ErrorKind::OutOfRange {
                        min: -254,
                        max: 254,
                        ..
                    }
                )
            });
            assert_eq!(error.location, at(3, 10));
            assert_eq!(error.key, "track_file.tf.weight");
        }
    }
    one_error(&decl("file = \"/x\"\ninit_file = 2147483648"), |k| {
        matches!(k, ErrorKind::OutOfRange { .. })
    });
    let found = warnings(&decl("file = \"/x\"\ninit_file = { value = 300 }"));
    assert!(
        matches!(
            found.as_slice(),
            [ConfigWarning {
                kind: WarningKind::InitValueNotSensible { value: 300 },
                ..
            }]
        ),
        "{found:#?}"
    );
    one_error(&decl("file = \"/x\"\nreverse = true"), |k| {
        matches!(k, ErrorKind::Syntax { .. })
    });
}

#[test]
fn tracked_files_must_exist_once_within_range() {
    let decl = "[track_file.tf]\nfile = \"/x\"\n\n";
    let error = one_error(
        &format!("{decl}{BASE}track_file = [\"nope\"]\n"),
        |k| matches!(k, ErrorKind::UnknownTrackFile { name } if name == "nope"),
    );
    assert_eq!(error.location, at(8, 15));
    assert_eq!(error.key, "instance.VI_1.track_file");
    let error = one_error(
        &format!("{decl}{BASE}track_file = [\"tf\", \"tf\"]\n"),
        |k| matches!(k, ErrorKind::ListedTwice { name } if name == "tf"),
    );
    assert_eq!(error.location, at(8, 21));
    let error = one_error(
        &format!("{decl}{BASE}track_file = [{{ name = \"tf\", weight = -300 }}]\n"),
        |k| matches!(k, ErrorKind::OutOfRange { value: -300, .. }),
    );
    assert_eq!(error.key, "instance.VI_1.track_file.weight");
    ok(&format!(
        "{decl}{BASE}track_file = [{{ name = \"tf\", weight = -254 }}]\n"
    ));
    let found = warnings(&format!("{decl}{BASE}"));
    assert!(
        matches!(
            found.as_slice(),
            [ConfigWarning {
                kind: WarningKind::UnusedTrackFile { .. },
                location: Some(Location {
                    line: 1,
                    column: 13
                }),
                ..
            }]
        ),
        "{found:#?}"
    );
}

#[test]
fn owner_track_files_lose_their_weight() {
    let text = "[track_file.a]\nfile = \"/a\"\n\n[track_file.b]\nfile = \"/b\"\n\
                weight = 5\n\n[track_file.c]\nfile = \"/c\"\nweight = 0\n\n"
        .to_owned()
        + &with("priority = 255\ntrack_file = [\"a\", \"b\", \"c\"]");
    let loaded = ok(&text);
    assert_eq!(
        loaded.config.instances[0].track_files,
        [
            TrackedFile {
                name: "a".into(),
                weight: Some(0)
            },
            TrackedFile {
                name: "c".into(),
                weight: None
            },
        ]
    );
    let kinds: Vec<&WarningKind> = loaded.warnings.iter().map(|w| &w.kind).collect();
    assert!(
        matches!(
            kinds.as_slice(),
            [
                WarningKind::TrackerWeightZeroed { name: a, .. },
                WarningKind::TrackerIgnored { tracker: "track_file", name: b, weight: 5, .. },
            ] if a == "a" && b == "b"
        ),
        "{kinds:#?}"
    );
    assert!(loaded.warnings[0].to_string().contains("address owner"));
    // Converting keeps the resolved weights; the result loads quietly.
    let back = parse_toml(&render::to_toml(&loaded.config, &[], &[]), FILE).unwrap();
    assert_eq!(back.config, loaded.config);
}

#[test]
fn track_file_effect_follows_keepalived() {
    use TrackFileEffect::{Fault, Offset};
    // Weight 0: a health flag.
    assert_eq!(track_file_effect(0, 0), Offset(0));
    assert_eq!(track_file_effect(1, 0), Fault);
    assert_eq!(track_file_effect(-7, 0), Fault);
    // Otherwise value × weight, FAULT at -254 and below, capped at 253.
    assert_eq!(track_file_effect(0, 1), Offset(0));
    assert_eq!(track_file_effect(10, -5), Offset(-50));
    assert_eq!(track_file_effect(-253, 1), Offset(-253));
    assert_eq!(track_file_effect(-254, 1), Fault);
    assert_eq!(track_file_effect(-127, 2), Fault);
    assert_eq!(track_file_effect(1000, 1), Offset(253));
    assert_eq!(track_file_effect(i64::from(i32::MAX) + 1, 254), Offset(253));
    assert_eq!(track_file_effect(i64::from(i32::MIN), 254), Fault);
}

#[test]
fn track_file_values_parse_like_strtol() {
    let parse = TrackFile::parse_value;
    assert_eq!(parse(b""), Some(0));
    assert_eq!(parse(b"42\n"), Some(42));
    assert_eq!(parse(b"  -17 trailing"), Some(-17));
    assert_eq!(parse(b"+5"), Some(5));
    assert_eq!(parse(b"0x1F"), Some(31));
    assert_eq!(parse(b"010"), Some(8));
    assert_eq!(parse(b"08"), Some(0));
    assert_eq!(parse(b"0x"), Some(0));
    assert_eq!(parse(b"maintenance"), Some(0));
    assert_eq!(parse(b"-"), Some(0));
    assert_eq!(parse(b"2147483648"), Some(2_147_483_648));
    assert_eq!(parse(b"-2147483648"), Some(-2_147_483_648));
    assert_eq!(parse(b"2147483649"), None);
    assert_eq!(parse(b"-2147483649"), None);
    assert_eq!(parse(b"99999999999999999999999"), None);
    // Only the first 127 bytes count.
    let mut long = vec![b' '; 127];
    long.extend_from_slice(b"5");
    assert_eq!(parse(&long), Some(0));
}

// ---- sync groups ----

#[test]
fn sync_groups_are_read() {
    let text = two_instances(
        "",
        "",
        "\n[sync_group.G1]\ngroup = [\"VI_2\", \"VI_1\"]\nnotify_master = \"/bin/up G1\"\n\
         notify = [\"/bin/any\"]\ntracking_weight = true",
    );
    let loaded = ok(&text);
    assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
    let c = &loaded.config;
    assert_eq!(
        c.sync_groups,
        [SyncGroup {
            name: "G1".into(),
            instances: vec!["VI_2".into(), "VI_1".into()],
            notify: NotifyCommands {
                master: Some(Command {
                    argv: vec!["/bin/up".into(), "G1".into()]
                }),
                any: Some(Command {
                    argv: vec!["/bin/any".into()]
                }),
                ..NotifyCommands::default()
            },
            tracking_weight: true,
            smtp_alert: false,
        }]
    );
    assert_eq!(c.sync_group_of("VI_1").map(|g| g.name.as_str()), Some("G1"));
    let back = parse_toml(&render::to_toml(c, &[], &[]), FILE).unwrap();
    assert_eq!(&back.config, c);
}

#[test]
fn sync_group_rules() {
    let group = |body: &str| two_instances(&format!("[sync_group.G]\n{body}\n"), "", "");
    let error = one_error(
        &group("group = [\"VI_1\", \"VI_9\"]"),
        |k| matches!(k, ErrorKind::UnknownGroupMember { name } if name == "VI_9"),
    );
    assert_eq!(error.location, at(2, 18));
    assert_eq!(error.key, "sync_group.G.group");
    let error = one_error(
        &group("group = [\"VI_1\", \"VI_1\"]"),
        |k| matches!(k, ErrorKind::ListedTwice { name } if name == "VI_1"),
    );
    assert_eq!(error.location, at(2, 18));
    let error = one_error(&group("group = []"), |k| matches!(k, ErrorKind::EmptyGroup));
    assert_eq!(error.location, at(2, 9));
    let error = one_error(&group("notify = \"/bin/x\""), |k| {
        matches!(k, ErrorKind::Missing { key: "group" })
    });
    assert_eq!(error.location, at(1, 13));
    one_error(&group("group = [\"VI_1\"]\nnotify_fault = \"\""), |k| {
        matches!(k, ErrorKind::Empty)
    });
    one_error(&group("group = [\"VI_1\"]\ntrack_script = []"), |k| {
        matches!(k, ErrorKind::Syntax { .. })
    });
    let found = warnings(&group("group = [\"VI_1\"]"));
    assert!(
        matches!(
            found.as_slice(),
            [ConfigWarning {
                kind: WarningKind::SingleMemberGroup { .. },
                location: Some(Location { line: 2, column: 9 }),
                ..
            }]
        ),
        "{found:#?}"
    );
    // One group per instance.
    let text = two_instances(
        "[sync_group.A]\ngroup = [\"VI_1\", \"VI_2\"]\n\n[sync_group.B]\ngroup = [\"VI_2\"]\n",
        "",
        "",
    );
    let error = one_error(&text, |k| {
        matches!(k, ErrorKind::InstanceInTwoGroups { instance, other }
            if instance == "VI_2" && other == "A")
    });
    assert_eq!(error.location, at(5, 10));
    assert_eq!(error.key, "sync_group.B.group");
}

#[test]
fn duplicate_track_file_and_group_names_from_other_front_ends() {
    let text = two_instances(
        "[track_file.tf]\nfile = \"/x\"\n\n[sync_group.G]\ngroup = [\"VI_1\", \"VI_2\"]\n",
        "track_file = [{ name = \"tf\", weight = 0 }]",
        "",
    );
    let mut draft = toml::to_draft(&text, FILE).unwrap();
    draft.track_files.push(draft.track_files[0].clone());
    draft.sync_groups.push(draft::DraftSyncGroup::named(
        draft.sync_groups[0].name.clone(),
    ));
    let found = validate::validate(&draft).unwrap_err();
    let names: Vec<(&str, &str)> = found
        .errors
        .iter()
        .filter_map(|e| match &e.kind {
            ErrorKind::DuplicateName { name } => Some((e.key.as_str(), name.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        names,
        [("track_file.tf", "tf"), ("sync_group.G", "G")],
        "{found}"
    );
}

#[test]
fn sync_group_members_keep_a_fixed_priority() {
    let text = two_instances(
        "[script.chk]\nscript = \"/bin/true\"\nweight = 10\n\n\
         [script.alive]\nscript = \"/bin/true\"\n\n\
         [track_file.a]\nfile = \"/a\"\n\n[track_file.b]\nfile = \"/b\"\nweight = 0\n\n\
         [sync_group.G]\ngroup = [\"VI_1\", \"VI_2\"]\n",
        "track_script = [\"chk\", \"alive\"]\ntrack_file = [\"a\", { name = \"b\", weight = -20 }]",
        "track_file = [{ name = \"a\", weight = 1 }, \"b\"]",
    );
    let loaded = ok(&text);
    let vi1 = &loaded.config.instances[0];
    assert_eq!(vi1.track_scripts.len(), 1);
    assert_eq!(vi1.track_scripts[0].name, "alive");
    assert_eq!(
        vi1.track_files,
        [TrackedFile {
            name: "a".into(),
            weight: Some(0)
        }]
    );
    let vi2 = &loaded.config.instances[1];
    assert_eq!(
        vi2.track_files,
        [
            TrackedFile {
                name: "a".into(),
                weight: Some(0)
            },
            TrackedFile {
                name: "b".into(),
                weight: None
            },
        ]
    );
    let got: Vec<(usize, String)> = loaded
        .warnings
        .iter()
        .map(|w| (w.location.map_or(0, |l| l.line), w.kind.to_string()))
        .collect();
    assert_eq!(
        got,
        [
            (
                23,
                "weight 1 of track_file \"a\" is treated as 0 (a non-zero value means FAULT) \
                 because this instance is in sync group \"G\"; write weight 0"
                    .to_owned()
            ),
            (
                23,
                "track_file \"b\" with weight -20 is ignored because this instance is in sync \
                 group \"G\""
                    .to_owned()
            ),
            (
                22,
                "track_script \"chk\" with weight 10 is ignored because this instance is in \
                 sync group \"G\""
                    .to_owned()
            ),
            (
                29,
                "weight 1 of track_file \"a\" is treated as 0 (a non-zero value means FAULT) \
                 because this instance is in sync group \"G\"; write weight 0"
                    .to_owned()
            ),
        ]
    );
    // With tracking_weight the weights stay.
    let kept = ok(&text.replace(
        "group = [\"VI_1\", \"VI_2\"]",
        "group = [\"VI_1\", \"VI_2\"]\ntracking_weight = true",
    ));
    assert!(kept.warnings.is_empty(), "{:#?}", kept.warnings);
    assert_eq!(kept.config.instances[0].track_scripts.len(), 2);
    assert_eq!(kept.config.instances[0].track_files.len(), 2);
}

#[test]
fn track_interface_weights_are_checked() {
    let loaded = ok(&with(
        "track_interface = [\"eth1\", { name = \"eth2\", weight = 253 }, { name = \"eth3\", weight = -253 }]",
    ));
    let weights: Vec<(&str, i16)> = loaded.config.instances[0]
        .track_interfaces
        .iter()
        .map(|t| (t.name.as_str(), t.weight))
        .collect();
    assert_eq!(weights, [("eth1", 0), ("eth2", 253), ("eth3", -253)]);
    one_error(
        &with("track_interface = [{ name = \"eth1\", weight = 254 }]"),
        |k| matches!(k, ErrorKind::OutOfRange { value: 254, .. }),
    );
    one_error(
        &with("track_interface = [{ name = \"a/b\", weight = 5 }]"),
        |k| matches!(k, ErrorKind::BadInterfaceName { .. }),
    );
    // Converting keeps the weights.
    let back = parse_toml(&render::to_toml(&loaded.config, &[], &[]), FILE).unwrap();
    assert_eq!(back.config, loaded.config);
}

#[test]
fn sync_group_members_track_interfaces_without_weight() {
    let text = two_instances(
        "[sync_group.G]\ngroup = [\"VI_1\", \"VI_2\"]\n",
        "track_interface = [{ name = \"eth1\", weight = -20 }, \"eth2\"]",
        "",
    );
    let loaded = ok(&text);
    assert_eq!(
        loaded.config.instances[0].track_interfaces,
        [
            TrackedInterface {
                name: "eth1".into(),
                weight: 0
            },
            TrackedInterface {
                name: "eth2".into(),
                weight: 0
            },
        ]
    );
    let messages: Vec<String> = loaded.warnings.iter().map(|w| w.kind.to_string()).collect();
    assert_eq!(
        messages,
        [
            "weight -20 of track_interface \"eth1\" is ignored because this instance is in sync \
          group \"G\": the link going down puts the instance into FAULT"
        ]
    );
    // With tracking_weight, or for an owner outside a group, the weight stays.
    let kept = ok(&text.replace(
        "group = [\"VI_1\", \"VI_2\"]",
        "group = [\"VI_1\", \"VI_2\"]\ntracking_weight = true",
    ));
    assert!(kept.warnings.is_empty(), "{:#?}", kept.warnings);
    assert_eq!(kept.config.instances[0].track_interfaces[0].weight, -20);
    let owner = ok(&with(
        "priority = 255\ntrack_interface = [{ name = \"eth1\", weight = -20 }]",
    ));
    assert_eq!(owner.config.instances[0].track_interfaces[0].weight, -20);
}
