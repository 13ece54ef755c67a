//! Tests of the load balancer's configuration: both front ends, validation rules and
//! warnings, and the round trip through `vipd convert`.

use std::net::SocketAddr;
use std::time::Duration;

use super::keepalived::{Includes, parse_keepalived};
use super::lb::{CheckKind, LbAlgo, LbKind, LbProtocol, VirtualServer};
use super::validate::{LbError, LbWarning};
use super::{ConfigErrors, ErrorKind, Loaded, WarningKind, parse_toml, render};

const FILE: &str = "keepalived.conf";

/// One VRRP instance holding 192.0.2.100 and 2001:db8::100 is not possible (one family
/// per instance), so two.
const INSTANCES: &str = "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 7\n  \
                         virtual_ipaddress {\n    192.0.2.100\n    192.0.2.10\n  }\n}\n\
                         vrrp_instance VI_6 {\n  interface eth0\n  virtual_router_id 8\n  \
                         virtual_ipaddress {\n    2001:db8::100\n  }\n}\n";

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

/// The errors of `INSTANCES` + `text`, as `line:col: message`, lines counted in `text`.
fn lb_errors(text: &str) -> Vec<String> {
    let offset = INSTANCES.lines().count();
    errors(&format!("{INSTANCES}{text}"))
        .errors
        .iter()
        .map(|e| {
            let at = e.location.expect("a location");
            format!("{}:{}: {}", at.line - offset, at.column, e.kind)
        })
        .collect()
}

fn lb_warnings(loaded: &Loaded) -> Vec<LbWarning> {
    loaded
        .warnings
        .iter()
        .filter_map(|w| match &w.kind {
            WarningKind::Lb(w) => Some(w.clone()),
            _ => None,
        })
        .collect()
}

fn round_trip(loaded: &Loaded) -> String {
    let toml = render::to_toml(&loaded.config, &[], &loaded.warnings);
    let back = parse_toml(&toml, "converted.toml")
        .unwrap_or_else(|e| panic!("converted TOML does not load:\n{e}\n---\n{toml}"));
    assert_eq!(back.config, loaded.config, "\n{toml}");
    toml
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

const FULL: &str = r#"
virtual_server_group web {
    192.0.2.10-12 443
    192.0.2.100 8443
    fwmark 7
}
virtual_server group web {
    delay_loop 2.5
    lvs_sched mh
    lvs_method DR
    mh-port
    mh-fallback
    persistence_timeout 300
    persistence_granularity 255.255.255.0
    protocol TCP
    sorry_server 192.0.2.50 0
    sorry_server_inhibit
    alpha
    omega
    quorum 3
    hysteresis 1
    quorum_up "/usr/bin/logger up"
    quorum_down /usr/bin/logger down
    virtualhost www.example.com
    real_server 192.0.2.21 0 {
        weight 5
        inhibit_on_failure
        notify_up "/usr/bin/logger rs up"
        notify_down "/usr/bin/logger rs down"
        SSL_GET {
            url {
                path /health
                digest 9B2F2B5B1D5C1A5F0F7A3A2E4C9A8B7D
                status_code 200 301-302
                virtualhost health.example.com
            }
            url {
                path /
            }
            connect_port 443
            connect_ip 198.51.100.21
            bindto 192.0.2.2
            connect_timeout 2
            nb_get_retry 4
            delay_before_retry 500ms
            delay_loop 10
            warmup 3
        }
        TCP_CHECK {
            connect_port 22
            retry 2
        }
        MISC_CHECK {
            misc_path "/usr/local/bin/check --fast"
            misc_timeout 4
            misc_dynamic
        }
        SMTP_CHECK {
            helo_name x
        }
    }
    real_server 192.0.2.22 0
}
virtual_server 2001:db8::100 53 {
    protocol UDP
    lb_algo sh
    sh-port
    real_server 2001:db8::21 53 {
        MISC_CHECK {
            misc_path /usr/bin/true
        }
    }
}
"#;

#[test]
fn every_lb_keyword_is_read_and_round_trips() {
    let loaded = ok(&format!("{INSTANCES}{FULL}"));
    let [web, dns] = loaded.config.virtual_servers.as_slice() else {
        panic!("two virtual servers: {:#?}", loaded.config.virtual_servers);
    };
    assert_eq!(web.name, "group web");
    assert_eq!(
        web.addresses,
        [
            addr("192.0.2.10:443"),
            addr("192.0.2.11:443"),
            addr("192.0.2.12:443"),
            addr("192.0.2.100:8443")
        ]
    );
    assert_eq!(web.algo, LbAlgo::Mh);
    assert_eq!(web.kind, LbKind::Dr);
    assert!(web.hash.port && web.hash.fallback);
    assert_eq!(web.delay_loop, Duration::from_millis(2500));
    assert_eq!(web.persistence_timeout, Some(Duration::from_secs(300)));
    assert_eq!(web.persistence_prefix, Some(24));
    assert_eq!(web.sorry_server, Some(addr("192.0.2.50:0")));
    assert!(web.sorry_server_inhibit && web.alpha && web.omega);
    assert_eq!((web.quorum, web.hysteresis), (3, 1));
    assert_eq!(
        web.quorum_up.as_ref().map(|c| c.argv.clone()),
        Some(vec!["/usr/bin/logger".to_owned(), "up".to_owned()])
    );
    assert!(web.quorum_down.is_some());
    assert_eq!(web.virtualhost.as_deref(), Some("www.example.com"));
    let [rs1, rs2] = web.real_servers.as_slice() else {
        panic!("two real servers");
    };
    assert_eq!(rs1.address, addr("192.0.2.21:0"));
    assert_eq!(rs1.weight, 5);
    assert!(rs1.inhibit_on_failure);
    assert!(rs1.notify_up.is_some() && rs1.notify_down.is_some());
    let [ssl, tcp, misc, smtp] = rs1.checkers.as_slice() else {
        panic!("four checkers: {:#?}", rs1.checkers);
    };
    assert_eq!(
        smtp.kind,
        CheckKind::Smtp(super::lb::SmtpCheck {
            helo_name: "x".into()
        })
    );
    let CheckKind::Http(http) = &ssl.kind else {
        panic!("SSL_GET is an HTTP check");
    };
    assert!(http.tls);
    assert_eq!(http.urls.len(), 2);
    assert_eq!(http.urls[0].path, "/health");
    assert_eq!(http.urls[0].status_codes, [200, 301, 302]);
    assert_eq!(
        http.urls[0].digest.as_deref(),
        Some("9b2f2b5b1d5c1a5f0f7a3a2e4c9a8b7d")
    );
    assert_eq!(
        http.urls[0].virtualhost.as_deref(),
        Some("health.example.com")
    );
    assert!(http.urls[1].status_codes.is_empty());
    assert_eq!(ssl.connect_port, Some(443));
    assert_eq!(ssl.connect_ip, Some("198.51.100.21".parse().unwrap()));
    assert_eq!(ssl.bind_to, Some("192.0.2.2".parse().unwrap()));
    assert_eq!(ssl.connect_timeout, Duration::from_secs(2));
    assert_eq!(ssl.retry, 4);
    assert_eq!(ssl.delay_before_retry, Duration::from_millis(500));
    assert_eq!(ssl.delay_loop, Some(Duration::from_secs(10)));
    assert_eq!(ssl.warmup, Some(Duration::from_secs(3)));
    assert_eq!(tcp.kind, CheckKind::Tcp);
    assert_eq!((tcp.connect_port, tcp.retry), (Some(22), 2));
    assert_eq!(tcp.connect_timeout, Duration::from_secs(5));
    let CheckKind::Misc(m) = &misc.kind else {
        panic!("MISC_CHECK");
    };
    assert_eq!(m.command.argv, ["/usr/local/bin/check", "--fast"]);
    assert_eq!(m.timeout, Duration::from_secs(4));
    assert!(m.dynamic);
    assert_eq!(misc.retry, 0, "MISC_CHECK's keepalived default");
    assert!(rs2.checkers.is_empty());

    assert_eq!(dns.name, "[2001:db8::100]:53/udp");
    assert_eq!(dns.protocol, LbProtocol::Udp);
    assert_eq!((dns.algo, dns.kind), (LbAlgo::Sh, LbKind::Dr));
    assert!(dns.hash.port && !dns.hash.fallback);
    assert_eq!(dns.delay_loop, Duration::from_secs(60));
    let CheckKind::Misc(m) = &dns.real_servers[0].checkers[0].kind else {
        panic!("MISC_CHECK");
    };
    // misc_timeout defaults to the delay_loop in force, as in keepalived.
    assert_eq!(m.timeout, Duration::from_secs(60));

    // The fwmark group entry is warned about; 192.0.2.11 and .12 are not VIPs of this
    // node.
    let texts: Vec<String> = loaded.warnings.iter().map(|w| w.kind.to_string()).collect();
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("`fwmark 7` is not implemented")),
        "{texts:#?}"
    );
    assert_eq!(
        lb_warnings(&loaded),
        [
            LbWarning::VipNotOwned {
                address: "192.0.2.11".parse().unwrap()
            },
            LbWarning::VipNotOwned {
                address: "192.0.2.12".parse().unwrap()
            },
        ]
    );

    let toml = round_trip(&loaded);
    assert!(toml.contains("[virtual_server_group.web]"), "{toml}");
    assert!(toml.contains("status_code = [200, \"301-302\"]"), "{toml}");
}

#[test]
fn native_toml_reads_the_documented_shape() {
    let text = r#"
[instance.VI_1]
interface = "eth0"
virtual_router_id = 7
virtual_ipaddress = ["192.0.2.100"]

[[virtual_server]]
address = "192.0.2.100"
port = 80
lb_algo = "wrr"
delay_loop = "6s"

[[virtual_server.real_server]]
address = "192.0.2.11"
port = 80
weight = 2

[[virtual_server.real_server.check]]
type = "HTTP_GET"
connect_timeout = "3s"
retry = 3
url = [{ path = "/", status_code = [200] }]

[[virtual_server.real_server]]
address = "192.0.2.12"
port = 80
"#;
    let loaded = parse_toml(text, "vipd.toml").unwrap_or_else(|e| panic!("{e}"));
    let [vs] = loaded.config.virtual_servers.as_slice() else {
        panic!("one virtual server");
    };
    assert_eq!(vs.name, "192.0.2.100:80/tcp");
    assert_eq!(vs.algo, LbAlgo::Wrr);
    assert_eq!(vs.real_servers.len(), 2);
    assert_eq!(vs.real_servers[0].weight, 2);
    assert_eq!(vs.real_servers[0].checkers[0].retry, 3);
    assert!(lb_warnings(&loaded).is_empty(), "{:#?}", loaded.warnings);
    round_trip(&loaded);

    // A misspelt key is an error with its place.
    let bad = text.replace("weight = 2", "wieght = 2");
    let errors = parse_toml(&bad, "vipd.toml").expect_err("unknown key");
    let e = &errors.errors[0];
    assert!(e.to_string().contains("wieght"), "{e}");
    assert_eq!(e.location.map(|l| l.line), Some(16));
}

#[test]
fn what_a_dr_balancer_cannot_do_is_an_error_with_its_place() {
    let text = "virtual_server 192.0.2.100 80 {\n  lb_kind NAT\n  lb_algo lblc\n  \
                protocol SCTP\n}\n";
    let got = lb_errors(text);
    assert_eq!(got.len(), 3, "{got:#?}");
    assert!(
        got[0].starts_with("2:11: lb_kind NAT is not supported: a direct-routing"),
        "{got:#?}"
    );
    assert_eq!(
        got[1],
        "3:11: lb_algo \"lblc\" is not supported; vipd schedules with rr, wrr, lc, wlc, sh or mh"
    );
    assert_eq!(
        got[2],
        "4:12: protocol SCTP is not supported; use TCP or UDP"
    );
    let got = lb_errors("virtual_server 192.0.2.100 80 {\n  lb_kind TUN\n}\n");
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(
        got[0].starts_with("2:11: lb_kind TUN is not supported yet"),
        "{got:#?}"
    );
}

#[test]
fn ports_families_and_duplicates_are_checked() {
    let text = "virtual_server 192.0.2.100 80 {\n  real_server 192.0.2.11 8080 {\n  }\n  \
                real_server 2001:db8::11 80\n  real_server 192.0.2.12 80\n  \
                real_server 192.0.2.12 80\n  sorry_server 192.0.2.13 81\n}\n\
                virtual_server 192.0.2.100 80 {\n  real_server 192.0.2.14 80 {\n    \
                weight 70000\n  }\n}\nvirtual_server group nope {\n}\n\
                virtual_server 192.0.2.100 0 {\n}\n\
                virtual_server 192.0.2.100 81 {\n}\nvirtual_server 192.0.2.100 81 {\n}\n";
    let got = lb_errors(text);
    let expected = [
        "2:26: port 8080 differs from the virtual server's port 80",
        "4:15: 2001:db8::11 is IPv6 but the virtual server is IPv4",
        "6:15: real server 192.0.2.12:80 is listed twice",
        "7:27: port 81 differs from the virtual server's port 80",
        "11:12: 70000 is out of range 0..=65535",
        "14:22: no virtual_server_group named \"nope\"",
        "16:1: port 0 (every port) needs persistence_timeout, as in IPVS",
        "20:1: 192.0.2.100:81 TCP is also balanced by virtual_server 192.0.2.100:81/tcp",
    ];
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    for (got, expected) in got.iter().zip(expected) {
        assert!(
            got.starts_with(expected),
            "{got}\n  should start with\n{expected}"
        );
    }
}

#[test]
fn checker_errors_point_at_their_keys() {
    let text = "virtual_server 192.0.2.100 80 {\n  real_server 192.0.2.11 80 {\n    \
                HTTP_GET {\n      url {\n        path health\n        digest abc\n        \
                status_code 200-99\n      }\n    }\n    TCP_CHECK {\n      url {\n        \
                path /\n      }\n    }\n    MISC_CHECK {\n    }\n    SSL_GET {\n    }\n  }\n}\n";
    let got = lb_errors(text);
    let expected = [
        "5:14: \"health\" must start with /",
        "6:16: \"abc\" is not an MD5 digest",
        "7:21: \"200-99\" is not an HTTP status code",
        "10:5: `url` does not apply to TCP_CHECK",
        "15:5: missing required key `misc_path`",
        "17:5: SSL_GET needs at least one url",
    ];
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    for (got, expected) in got.iter().zip(expected) {
        assert!(
            got.starts_with(expected),
            "{got}\n  should start with\n{expected}"
        );
    }
}

#[test]
fn dr_pitfalls_are_warned_about() {
    let text = format!(
        "{INSTANCES}virtual_server 198.51.100.1 80 {{\n  lb_algo mh\n  \
         persistence_timeout 60\n  real_server 192.0.2.10 80\n}}\n\
         virtual_server 192.0.2.100 80 {{\n  sh-port\n  quorum 2\n  hysteresis 2\n}}\n"
    );
    let loaded = ok(&text);
    assert_eq!(
        lb_warnings(&loaded),
        [
            LbWarning::PersistenceWithMh,
            LbWarning::HashFlagsUnused,
            LbWarning::HysteresisTooLarge {
                hysteresis: 2,
                quorum: 2
            },
            LbWarning::NoRealServers,
            // The rules between virtual servers and instances come last.
            LbWarning::VipNotOwned {
                address: "198.51.100.1".parse().unwrap()
            },
            LbWarning::RealServerIsVip {
                address: "192.0.2.10".parse().unwrap(),
                instance: "VI_1".into()
            },
        ]
    );
}

#[test]
fn group_ranges_expand_and_bad_ones_are_errors() {
    let text = "virtual_server_group g {\n  2001:db8::100-102 80\n  192.0.2.9-8 80\n}\n\
                virtual_server group g {\n}\n";
    let got = lb_errors(text);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(
        got[0].starts_with("3:3: \"192.0.2.9-8\" is not an address range"),
        "{got:#?}"
    );

    let loaded = ok(&format!(
        "{INSTANCES}virtual_server_group g {{\n  2001:db8::fe-101 80\n}}\n\
         virtual_server group g {{\n  real_server 2001:db8::21 80\n}}\n"
    ));
    let vs: &VirtualServer = &loaded.config.virtual_servers[0];
    let expected: Vec<SocketAddr> = ["fe", "ff", "100", "101"]
        .iter()
        .map(|h| addr(&format!("[2001:db8::{h}]:80")))
        .collect();
    assert_eq!(vs.addresses, expected);
}

#[test]
fn too_many_real_servers_is_an_error() {
    let mut text = String::from("virtual_server 192.0.2.100 80 {\n");
    for i in 0..64 {
        text.push_str(&format!("  real_server 198.51.100.{i} 80\n"));
    }
    text.push_str("}\n");
    let found = errors(&format!("{INSTANCES}{text}"));
    assert!(
        found.errors.iter().any(|e| matches!(
            e.kind,
            ErrorKind::Lb(LbError::TooManyRealServers { count: 64, max: 63 })
        )),
        "{found}"
    );
}

#[test]
fn a_toml_virtual_server_needs_an_address_or_a_group() {
    let text = "[instance.VI_1]\ninterface = \"eth0\"\nvirtual_router_id = 7\n\
                virtual_ipaddress = [\"192.0.2.100\"]\n\n[[virtual_server]]\n\
                address = \"192.0.2.100\"\nport = 80\ngroup = \"g\"\n\n[[virtual_server]]\n\
                lb_algo = \"rr\"\n";
    let errors = parse_toml(text, "vipd.toml").expect_err("no target");
    let got: Vec<(Option<usize>, String)> = errors
        .errors
        .iter()
        .map(|e| (e.location.map(|l| l.line), e.kind.to_string()))
        .collect();
    let message = LbError::NoTarget.to_string();
    assert_eq!(got, [(Some(7), message.clone()), (Some(11), message)]);
}

#[test]
fn a_virtual_server_needs_xdp_where_its_traffic_arrives() {
    let instance = |xdp: &str| {
        format!(
            "[instance.VI_1]\ninterface = \"eth0\"\nvirtual_router_id = 7\nxdp = \"{xdp}\"\n\
             virtual_ipaddress = [\"192.0.2.100\"]\n\n"
        )
    };
    let service =
        |extra: &str| format!("[[virtual_server]]\naddress = \"192.0.2.100\"\nport = 80\n{extra}");
    let kinds = |text: &str| -> Vec<String> {
        parse_toml(text, "vipd.toml")
            .expect_err("refused")
            .errors
            .iter()
            .map(|e| e.kind.to_string())
            .collect()
    };
    assert_eq!(
        kinds(&format!("{}{}", instance("off"), service(""))),
        [LbError::NoXdp.to_string()]
    );
    // A named interface gets the program for the balancer, whatever the instances do.
    for xdp in ["off", "auto"] {
        let loaded = parse_toml(
            &format!("{}{}", instance(xdp), service("interface = \"eth1\"\n")),
            "vipd.toml",
        )
        .expect("XDP for the balancer on eth1");
        assert_eq!(
            loaded.config.virtual_servers[0].interface.as_deref(),
            Some("eth1")
        );
    }
    let loaded = parse_toml(
        &format!(
            "{}{}",
            instance("generic"),
            service("interface = \"eth0\"\n")
        ),
        "vipd.toml",
    )
    .expect("XDP on eth0");
    assert_eq!(
        loaded.config.virtual_servers[0].interface.as_deref(),
        Some("eth0")
    );
}

/// keepalived's LVS-only director: virtual servers and no vrrp_instance. The addresses
/// reach it by routing, so not owning them is no warning; a file with neither is still
/// "no instance".
#[test]
fn a_director_without_vrrp_needs_no_instance() {
    let loaded = ok("global_defs {\n    router_id lvs1\n}\n\
         virtual_server 192.0.2.100 80 {\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n    \
         real_server 192.0.2.11 80 {\n        TCP_CHECK {\n            connect_timeout 3\n        }\n    }\n}\n");
    assert!(loaded.config.instances.is_empty());
    assert_eq!(loaded.config.virtual_servers.len(), 1);
    assert!(lb_warnings(&loaded).is_empty(), "{:#?}", loaded.warnings);
    round_trip(&loaded);

    let none = errors("global_defs {\n    router_id lvs1\n}\n");
    assert!(
        none.errors.iter().any(|e| e.kind == ErrorKind::NoInstances),
        "{none:#?}"
    );
}

/// UDP_CHECK, PING_CHECK, DNS_CHECK and SMTP_CHECK with every keyword keepalived gives
/// them, their defaults, and the round trip through `vipd convert`.
#[test]
fn udp_ping_dns_and_smtp_checks_are_read_with_keepalived_defaults() {
    use super::lb::{DnsType, HexPattern};
    let text = format!(
        "{INSTANCES}virtual_server 192.0.2.100 53 {{\n  protocol UDP\n  \
         real_server 192.0.2.11 53 {{\n    \
         UDP_CHECK {{\n      payload 00 01 0a\n      require_reply 0001 xa\n      \
         min_reply_length 2\n      max_reply_length 512\n      connect_timeout 2\n    }}\n    \
         UDP_CHECK {{\n    }}\n    \
         PING_CHECK {{\n      bindto 192.0.2.2\n    }}\n    \
         DNS_CHECK {{\n      type aaaa\n      name www.example.com.\n    }}\n    \
         DNS_CHECK {{\n    }}\n    \
         SMTP_CHECK {{\n      helo_name lb1.example.com\n      connect_port 25\n    }}\n    \
         SMTP_CHECK {{\n    }}\n  }}\n}}\n"
    );
    let loaded = ok(&text);
    let checkers = &loaded.config.virtual_servers[0].real_servers[0].checkers;
    let CheckKind::Udp(udp) = &checkers[0].kind else {
        panic!("UDP_CHECK: {:?}", checkers[0].kind);
    };
    assert_eq!(udp.payload, [0x00, 0x01, 0x0a]);
    assert!(udp.require_reply);
    let reply = udp.reply.as_ref().expect("reply data");
    assert_eq!(reply.render(), "0001xa");
    assert!(reply.matches(&[0x00, 0x01, 0x5a, 0xff]) && !reply.matches(&[0x00, 0x02]));
    assert_eq!((udp.min_reply_length, udp.max_reply_length), (2, 512));
    let CheckKind::Udp(plain) = &checkers[1].kind else {
        panic!("UDP_CHECK: {:?}", checkers[1].kind);
    };
    assert!(plain.payload.is_empty() && !plain.require_reply && plain.reply.is_none());
    assert_eq!((plain.min_reply_length, plain.max_reply_length), (0, 255));
    assert_eq!(checkers[2].kind, CheckKind::Ping);
    assert_eq!(checkers[2].bind_to, Some("192.0.2.2".parse().unwrap()));
    let CheckKind::Dns(dns) = &checkers[3].kind else {
        panic!("DNS_CHECK: {:?}", checkers[3].kind);
    };
    assert_eq!(
        (dns.query_type, dns.name.as_str()),
        (DnsType::Aaaa, "www.example.com.")
    );
    let CheckKind::Dns(default) = &checkers[4].kind else {
        panic!("DNS_CHECK: {:?}", checkers[4].kind);
    };
    assert_eq!(
        (default.query_type, default.name.as_str()),
        (DnsType::Soa, ".")
    );
    assert_eq!(checkers[4].retry, 3, "DNS_CHECK's keepalived default");
    assert_eq!(checkers[1].retry, 1);
    let helo = |i: usize| match &checkers[i].kind {
        CheckKind::Smtp(smtp) => smtp.helo_name.clone(),
        other => panic!("SMTP_CHECK: {other:?}"),
    };
    assert_eq!(
        (helo(5).as_str(), helo(6).as_str()),
        ("lb1.example.com", "localhost")
    );
    assert_eq!(checkers[5].connect_port, Some(25));
    assert!(lb_warnings(&loaded).is_empty(), "{:#?}", loaded.warnings);
    let toml = round_trip(&loaded);
    assert!(toml.contains("query_type = \"AAAA\""), "{toml}");

    // keepalived's hex format: a lone digit before a space is a byte.
    let lone = HexPattern::parse("1 23 4", false).expect("hex");
    assert_eq!(lone.bytes, [0x01, 0x23, 0x04]);
    assert!(HexPattern::parse("0x", false).is_err(), "x only in a reply");
}

#[test]
fn bad_udp_and_dns_check_values_are_errors_with_their_place() {
    let text = "virtual_server 192.0.2.100 53 {\n  real_server 192.0.2.11 53 {\n    \
                UDP_CHECK {\n      payload 0g\n      min_reply_length 9\n      \
                max_reply_length 4\n    }\n    DNS_CHECK {\n      type PTR\n      \
                name a..b\n      payload 00\n    }\n    TCP_CHECK {\n      type A\n    }\n  }\n}\n";
    // Another kind's keys are warned about in keepalived.conf (keepalived ignores them),
    // and errors in TOML.
    let got = lb_errors(text);
    let want = [
        "4:15: \"0g\" is not a hex string ('g' is not a hex digit)",
        "5:24: min_reply_length 9 is above max_reply_length 4: no reply could pass",
        "9:12: DNS query type \"PTR\" is not one of A, NS, CNAME, SOA, MX, TXT, AAAA",
        "10:12: \"a..b\" is not a DNS name: each label (between dots) is 1 to 63 characters",
    ];
    for line in want {
        assert!(
            got.iter().any(|g| g == line),
            "missing {line:?} in {got:#?}"
        );
    }
    assert_eq!(got.len(), want.len(), "{got:#?}");
    let toml = "[[virtual_server]]\naddress = \"192.0.2.100\"\nport = 53\n\
                [[virtual_server.real_server]]\naddress = \"192.0.2.11\"\nport = 53\n\
                [[virtual_server.real_server.check]]\ntype = \"TCP_CHECK\"\npayload = \"00\"\n";
    let errors = parse_toml(toml, "vipd.toml").expect_err("payload in a TCP_CHECK");
    assert!(
        errors
            .errors
            .iter()
            .any(|e| e.kind.to_string() == "`payload` does not apply to TCP_CHECK"),
        "{errors}"
    );
}

/// FILE_CHECK: its track_file block by name (counted as used), the weight and reverse
/// flag, keepalived's effect of a value, and the errors for a missing or unknown file.
#[test]
fn file_check_follows_a_track_file_with_keepalived_weights() {
    let text = format!(
        "{INSTANCES}track_file maint {{\n  file /run/vipd-test/maint\n  weight 0\n}}\n\
         track_file load {{\n  file /run/vipd-test/load\n}}\n\
         virtual_server 192.0.2.100 80 {{\n  real_server 192.0.2.11 80 {{\n    weight 10\n    \
         FILE_CHECK {{\n      track_file maint\n    }}\n    \
         FILE_CHECK {{\n      track_file load\n      weight 2 reverse\n    }}\n  }}\n}}\n"
    );
    let loaded = ok(&text);
    let checkers = &loaded.config.virtual_servers[0].real_servers[0].checkers;
    let file = |i: usize| match &checkers[i].kind {
        CheckKind::File(file) => file.clone(),
        other => panic!("FILE_CHECK: {other:?}"),
    };
    let (maint, load) = (file(0), file(1));
    assert_eq!(
        (maint.name.as_str(), maint.weight, maint.reverse),
        ("maint", 0, false)
    );
    assert_eq!(maint.path, std::path::Path::new("/run/vipd-test/maint"));
    assert_eq!((load.weight, load.reverse), (2, true));
    assert_eq!(checkers[0].delay_loop, Some(Duration::from_secs(1)));
    assert_eq!(checkers[0].retry, 0);
    // Weight 0: any non-zero value fails the server. A weight: value × weight off the
    // server's weight (reverse), within 0..=65535.
    assert_eq!(maint.effect(0, 10), (true, None));
    assert_eq!(maint.effect(-3, 10), (false, None));
    assert_eq!(load.effect(3, 10), (true, Some(4)));
    assert_eq!(load.effect(9, 10), (true, Some(0)));
    assert_eq!(load.effect(-40_000, 10), (true, Some(65535)));
    let texts: Vec<String> = loaded.warnings.iter().map(|w| w.kind.to_string()).collect();
    assert!(
        !texts
            .iter()
            .any(|t| t.contains("maint") || t.contains("load")),
        "the FILE_CHECKs use both track files: {texts:#?}"
    );
    round_trip(&loaded);

    let got = lb_errors(
        "virtual_server 192.0.2.100 80 {\n  real_server 192.0.2.11 80 {\n    \
         FILE_CHECK {\n      track_file nowhere\n    }\n    FILE_CHECK {\n    }\n  }\n}\n",
    );
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(
        got[0].starts_with("4:18: ") && got[0].contains("nowhere"),
        "{got:#?}"
    );
    assert!(
        got[1].contains("missing required key `track_file`"),
        "{got:#?}"
    );
}

/// BFD_CHECK: a bfd_instance by name (keepalived `name`, TOML `bfd`), event-driven
/// defaults (retry 0, a 1 s re-read), and the errors for a missing or unknown session.
#[test]
fn bfd_check_names_a_bfd_session() {
    let text = format!(
        "{INSTANCES}bfd_instance rs11 {{\n  neighbor_ip 192.0.2.11\n}}\n\
         virtual_server 192.0.2.100 80 {{\n  real_server 192.0.2.11 80 {{\n    \
         BFD_CHECK {{\n      name rs11\n    }}\n    \
         BFD_CHECK {{\n      name rs11\n      retry 2\n      delay_loop 30\n    }}\n  }}\n}}\n"
    );
    let loaded = ok(&text);
    let checkers = &loaded.config.virtual_servers[0].real_servers[0].checkers;
    assert_eq!(checkers[0].kind, CheckKind::Bfd("rs11".into()));
    assert_eq!(
        (checkers[0].retry, checkers[0].delay_loop),
        (0, Some(Duration::from_secs(1)))
    );
    assert_eq!(
        (checkers[1].retry, checkers[1].delay_loop),
        (2, Some(Duration::from_secs(30)))
    );
    assert!(
        !loaded
            .warnings
            .iter()
            .any(|w| w.kind.to_string().contains("BFD_CHECK")),
        "BFD_CHECK is no longer skipped: {:#?}",
        loaded.warnings
    );
    let toml = round_trip(&loaded);
    assert!(toml.contains("bfd = \"rs11\""), "{toml}");

    let got = lb_errors(
        "virtual_server 192.0.2.100 80 {\n  real_server 192.0.2.11 80 {\n    \
         BFD_CHECK {\n      name nowhere\n    }\n    BFD_CHECK {\n    }\n  }\n}\n",
    );
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(
        got[0].starts_with("4:12: ") && got[0].contains("no BFD session named \"nowhere\""),
        "{got:#?}"
    );
    assert!(
        got[1].starts_with("6:5: ") && got[1].contains("add `name NAME`"),
        "{got:#?}"
    );
    let toml = "[bfd.rs11]\nneighbor_ip = \"192.0.2.11\"\n\
                [[virtual_server]]\naddress = \"192.0.2.100\"\nport = 80\n\
                [[virtual_server.real_server]]\naddress = \"192.0.2.11\"\nport = 80\n\
                [[virtual_server.real_server.check]]\ntype = \"TCP_CHECK\"\nbfd = \"rs11\"\n";
    let errors = parse_toml(toml, "vipd.toml").expect_err("bfd in a TCP_CHECK");
    assert!(
        errors
            .errors
            .iter()
            .any(|e| e.kind.to_string() == "`bfd` does not apply to TCP_CHECK"),
        "{errors}"
    );
}
