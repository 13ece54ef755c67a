//! BFD configuration: both front ends, validation errors with line:col, `vipd convert`.

use std::time::Duration;

use super::super::keepalived::{Includes, parse_keepalived};
use super::super::{Loaded, Location, parse_toml, render};
use super::*;

const KEEPALIVED: &str = "bfd_instance to_peer {
  neighbor_ip 192.0.2.2
  source_ip 192.0.2.1
  min_rx 3.3
  min_tx 3.3
  idle_tx 1000
  multiplier 3
}
bfd_instance to_gw {
  neighbor_ip 2001:db8::1
  passive
  weight -20
  max_hops 1
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 7
  priority 100
  version 3
  advert_int 0.1
  virtual_ipaddress {
    192.0.2.100
  }
  track_bfd {
    to_peer peer
    to_gw
  }
}
";

fn keepalived(text: &str) -> Result<Loaded, super::super::ConfigErrors> {
    parse_keepalived(text, "keepalived.conf", Includes::Refuse)
}

#[test]
fn keepalived_bfd_instance_and_track_bfd_are_read() {
    let loaded = keepalived(KEEPALIVED).unwrap_or_else(|e| panic!("{e}"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let sessions = &loaded.config.bfd_instances;
    assert_eq!(
        sessions[0],
        BfdInstance {
            name: "to_peer".into(),
            neighbor: "192.0.2.2".parse().expect("address"),
            source: Some("192.0.2.1".parse().expect("address")),
            min_rx: Duration::from_micros(3300),
            min_tx: Duration::from_micros(3300),
            idle_tx: Duration::from_secs(1),
            multiplier: 3,
            passive: false,
            ttl: 255,
            max_hops: 0,
            weight: 0,
        }
    );
    assert!(sessions[1].passive);
    assert_eq!(sessions[1].min_rx, defaults::MIN_RX);
    assert_eq!(sessions[1].multiplier, defaults::MULTIPLIER);
    assert!(sessions[1].accepts_ttl(254));
    assert!(!sessions[0].accepts_ttl(254));
    assert_eq!(
        loaded.config.instances[0].track_bfd,
        vec![
            TrackedBfd {
                name: "to_peer".into(),
                weight: 0,
                peer: true
            },
            // The session's weight is the default.
            TrackedBfd {
                name: "to_gw".into(),
                weight: -20,
                peer: false
            },
        ]
    );
}

/// `vipd convert`: keepalived.conf → TOML → the same model.
#[test]
fn bfd_round_trips_through_toml() {
    let loaded = keepalived(KEEPALIVED).unwrap_or_else(|e| panic!("{e}"));
    let toml = render::to_toml(&loaded.config, &[], &loaded.warnings);
    assert!(toml.contains("[bfd.to_peer]"), "{toml}");
    assert!(toml.contains("min_tx = \"0.0033s\""), "{toml}");
    let back = parse_toml(&toml, "converted.toml").unwrap_or_else(|e| panic!("{e}\n{toml}"));
    assert_eq!(back.config, loaded.config, "\n{toml}");
}

const TOML_BASE: &str = r#"[instance.VI_1]
interface = "eth0"
virtual_router_id = 7
virtual_ipaddress = ["192.0.2.100"]
"#;

#[test]
fn toml_bfd_sections_and_track_bfd() {
    let text = format!(
        "{TOML_BASE}track_bfd = [\"gw\", {{ name = \"peer\", peer = true }}, {{ name = \"gw2\", weight = 10 }}]\n\
         [bfd.gw]\nneighbor_ip = \"192.0.2.254\"\nweight = -5\n\
         [bfd.gw2]\nneighbor_ip = \"192.0.2.253\"\n\
         [bfd.peer]\nneighbor_ip = \"192.0.2.2\"\nmin_tx = \"3ms\"\nmin_rx = \"3ms\"\nmultiplier = 3\n"
    );
    let loaded = parse_toml(&text, "vipd.toml").unwrap_or_else(|e| panic!("{e}"));
    let tracked = &loaded.config.instances[0].track_bfd;
    assert_eq!(tracked[0].weight, -5);
    assert!(tracked[1].peer);
    assert_eq!(tracked[2].weight, 10);
    assert_eq!(
        loaded.config.bfd_instances[2].min_tx,
        Duration::from_millis(3)
    );
}

fn located(text: &str) -> Vec<(usize, usize, String)> {
    let errors = parse_toml(text, "vipd.toml").expect_err("errors expected");
    errors
        .errors
        .iter()
        .map(|e| {
            let Location { line, column } = e.location.expect("located");
            (line, column, e.kind.to_string())
        })
        .collect()
}

/// Each rule reports at the value that breaks it.
#[test]
fn bfd_errors_are_located() {
    let text = format!(
        "{TOML_BASE}track_bfd = [\"nope\", {{ name = \"a\", peer = true, weight = 3 }}]\n\
         [bfd.a]\nneighbor_ip = \"192.0.2.1\"\nsource_ip = \"2001:db8::1\"\nmin_rx = \"0.01ms\"\n\
         [bfd.b]\nmultiplier = 0\n\
         [bfd.c]\nneighbor_ip = \"192.0.2.9\"\n[bfd.d]\nneighbor_ip = \"192.0.2.8\"\nmin_tx = \"0.05ms\"\n[bfd.e]\nneighbor_ip = \"192.0.2.9\"\n"
    );
    let got = located(&text);
    let kinds: Vec<&str> = got.iter().map(|(_, _, k)| k.as_str()).collect();
    assert!(
        got.iter()
            .any(|(l, c, k)| *l == 5 && *c == 14 && k.contains("no BFD session named \"nope\"")),
        "{got:#?}"
    );
    assert!(
        kinds.iter().any(|k| k.contains("peer BFD session")),
        "{kinds:?}"
    );
    assert!(
        got.iter()
            .any(|(l, _, k)| *l == 8 && k.contains("not of neighbor_ip")),
        "{got:#?}"
    );
    assert!(got.iter().any(|(l, _, _)| *l == 9), "min_rx: {got:#?}");
    assert!(
        got.iter()
            .any(|(l, _, k)| *l == 10 && k.contains("neighbor_ip")),
        "missing neighbor_ip at the table name: {got:#?}"
    );
    assert!(
        got.iter()
            .any(|(l, _, k)| *l == 11 && k.contains("out of range"))
    );
    assert!(
        got.iter()
            .any(|(l, _, k)| *l == 18 && k.contains("already defined as \"c\"")),
        "{got:#?}"
    );
    assert!(
        got.iter()
            .any(|(l, _, k)| *l == 16 && k.contains("outside")),
        "{got:#?}"
    );
}

#[test]
fn keepalived_bfd_errors_are_located() {
    let text = KEEPALIVED
        .replace("multiplier 3", "multiplier x")
        .replace("to_gw\n  }", "to_gw weight\n  }");
    let errors = keepalived(&text).expect_err("errors expected");
    let got: Vec<(usize, String)> = errors
        .errors
        .iter()
        .map(|e| (e.location.expect("located").line, e.kind.to_string()))
        .collect();
    assert!(got.iter().any(|(l, _)| *l == 7), "{got:#?}");
    assert!(
        got.iter().any(|(l, k)| *l == 26 && k.contains("weight")),
        "{got:#?}"
    );
}

/// docs/configuration.md documents every BFD key (as `tests.rs` checks the others).
#[test]
fn documentation_mentions_every_bfd_key() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md"),
    )
    .expect("docs/configuration.md");
    for key in [
        "[bfd.NAME]",
        "neighbor_ip",
        "source_ip",
        "min_rx",
        "min_tx",
        "idle_tx",
        "multiplier",
        "passive",
        "ttl",
        "max_hops",
        "track_bfd",
        "{ name = \"…\", peer = true }",
    ] {
        assert!(
            doc.contains(&format!("`{key}")),
            "docs/configuration.md lacks {key}"
        );
    }
}
