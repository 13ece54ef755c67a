//! L3 mode: announcing an instance's or a virtual server's addresses as host routes over
//! BGP (through FRR) instead of holding them on a shared L2 segment. docs/l3.md has the
//! mechanism and why; [`crate::proto::l3`] decides what is announced when.

use std::fmt;

/// How an instance's (or virtual server's) addresses are announced into the routing
/// fabric (`announce = "bgp"` with `announce_mode`, `announce_standby_med`,
/// `announce_standby_prepend`, `announce_communities`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    /// Every healthy node announces, or only the master does.
    pub mode: AnnounceMode,
    /// In active-standby, what a backup announces (a worse path the fabric falls back
    /// to as soon as the master's is withdrawn); `None`: a backup announces nothing.
    pub standby: Option<StandbyPath>,
    /// BGP communities (RFC 1997) attached to the routes.
    pub communities: Vec<Community>,
}

/// Who announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnnounceMode {
    /// Every node announces while healthy: the fabric spreads flows over all of them
    /// (ECMP anycast). The VRRP election is not consulted.
    ActiveActive,
    /// Only the VRRP master announces (a backup announces [`Announce::standby`], if
    /// set).
    ActiveStandby,
}

impl AnnounceMode {
    /// The configuration word.
    pub const fn name(self) -> &'static str {
        match self {
            Self::ActiveActive => "active-active",
            Self::ActiveStandby => "active-standby",
        }
    }
}

/// The less preferred path a backup announces in active-standby.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StandbyPath {
    /// MULTI_EXIT_DISC (RFC 4271 §5.1.4): lower is preferred; compared only between
    /// paths from the same neighbouring AS unless the upstream says
    /// `bgp always-compare-med`.
    pub med: u32,
    /// How many times this node's AS is prepended to the AS_PATH (a longer path loses,
    /// RFC 4271 §9.1.2.2 step a), whatever the neighbouring AS.
    pub prepend: u8,
}

/// A BGP community `ASN:VALUE` (RFC 1997).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Community {
    /// High 16 bits: the AS that defines it.
    pub asn: u16,
    /// Low 16 bits.
    pub value: u16,
}

impl Community {
    /// Parses `ASN:VALUE` (both 0..=65535).
    pub fn parse(text: &str) -> Option<Self> {
        let (asn, value) = text.trim().split_once(':')?;
        Some(Self {
            asn: asn.parse().ok()?,
            value: value.parse().ok()?,
        })
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.asn, self.value)
    }
}

/// Most times the AS may be prepended (a longer AS_PATH is not more convincing, and
/// some routers drop paths longer than a few dozen hops).
pub const MAX_PREPEND: u8 = 10;

#[cfg(test)]
mod tests {
    use super::super::keepalived::Includes;
    use super::super::{ConfigErrors, ErrorKind, Loaded, parse_keepalived, parse_toml};
    use super::*;

    const INSTANCE: &str = "[instance.web]\ninterface = \"eth0\"\nvirtual_router_id = 1\n\
                            virtual_ipaddress = [\"203.0.113.10\"]\n";

    fn toml(extra: &str) -> Result<Loaded, ConfigErrors> {
        parse_toml(&format!("{INSTANCE}{extra}"), "t.toml")
    }

    fn errors(extra: &str) -> Vec<ErrorKind> {
        match toml(extra) {
            Ok(_) => Vec::new(),
            Err(e) => e.errors.into_iter().map(|e| e.kind).collect(),
        }
    }

    #[test]
    fn toml_keys_make_the_announcement() {
        let loaded = toml(
            "announce = \"bgp\"\nannounce_mode = \"active-standby\"\n\
             announce_standby_prepend = 3\nannounce_communities = [\"64512:1\", \"64512:1\", \"1:2\"]\n",
        )
        .expect("valid");
        let announce = loaded.config.instances[0]
            .announce
            .clone()
            .expect("announced");
        assert_eq!(announce.mode, AnnounceMode::ActiveStandby);
        assert_eq!(announce.standby, Some(StandbyPath { med: 0, prepend: 3 }));
        assert_eq!(
            announce.communities,
            vec![
                Community {
                    asn: 64512,
                    value: 1
                },
                Community { asn: 1, value: 2 }
            ]
        );
        let plain = toml("").expect("valid");
        assert_eq!(plain.config.instances[0].announce, None);
        let default_mode = toml("announce = \"bgp\"\n").expect("valid");
        let announce = default_mode.config.instances[0].announce.clone();
        assert_eq!(
            announce.map(|a| (a.mode, a.standby)),
            Some((AnnounceMode::ActiveActive, None))
        );
    }

    #[test]
    fn announce_rules_are_checked() {
        assert_eq!(
            errors("announce_mode = \"active-active\"\n"),
            vec![ErrorKind::AnnounceKeyWithoutAnnounce {
                key: "announce_mode"
            }]
        );
        assert_eq!(
            errors("announce = \"bgp\"\nannounce_standby_med = 5\n"),
            vec![ErrorKind::StandbyPathNotActiveStandby {
                key: "announce_standby_med"
            }]
        );
        assert_eq!(
            errors("announce = \"bgp\"\nannounce_communities = [\"64512\"]\n"),
            vec![ErrorKind::BadCommunity {
                text: "64512".into()
            }]
        );
        assert!(matches!(
            errors("announce = \"ospf\"\n").as_slice(),
            [ErrorKind::NotOneOf { .. }]
        ));
        assert!(matches!(
            errors("announce = \"bgp\"\nannounce_mode = \"active-standby\"\nannounce_standby_prepend = 11\n")
                .as_slice(),
            [ErrorKind::OutOfRange { max: 10, .. }]
        ));
    }

    #[test]
    fn virtual_server_announces_active_active_only() {
        let vs = "[[virtual_server]]\naddress = \"203.0.113.20\"\nport = 80\nannounce = \"bgp\"\n\
                  [[virtual_server.real_server]]\naddress = \"198.51.100.21\"\nport = 80\n";
        let loaded = toml(vs).expect("valid");
        let announce = loaded.config.virtual_servers[0].announce.clone();
        assert_eq!(announce.map(|a| a.mode), Some(AnnounceMode::ActiveActive));
        let standby = vs.replace(
            "announce = \"bgp\"\n",
            "announce = \"bgp\"\nannounce_mode = \"active-standby\"\n",
        );
        assert_eq!(
            errors(&standby),
            vec![ErrorKind::VirtualServerActiveStandby]
        );
    }

    #[test]
    fn keepalived_extension_matches_toml_and_round_trips() {
        let text = "vrrp_instance web {\n  interface eth0\n  virtual_router_id 1\n  \
                    virtual_ipaddress {\n    203.0.113.10\n  }\n  announce bgp\n  \
                    announce_mode active-standby\n  announce_standby_med 200\n  \
                    announce_standby_prepend 2\n  announce_communities 64500:10 64500:20\n}\n";
        let loaded = parse_keepalived(text, "k.conf", Includes::Refuse).expect("valid");
        let expected = Announce {
            mode: AnnounceMode::ActiveStandby,
            standby: Some(StandbyPath {
                med: 200,
                prepend: 2,
            }),
            communities: vec![
                Community {
                    asn: 64500,
                    value: 10,
                },
                Community {
                    asn: 64500,
                    value: 20,
                },
            ],
        };
        assert_eq!(loaded.config.instances[0].announce, Some(expected));
        // vipd convert writes the keys back; the TOML reads to the same model.
        let rendered = super::super::render::to_toml(&loaded.config, &[], &[]);
        let again = parse_toml(&rendered, "r.toml").expect("rendered TOML is valid");
        assert_eq!(
            again.config.instances[0].announce,
            loaded.config.instances[0].announce
        );
    }

    #[test]
    fn community_parses_and_prints() {
        let c = Community::parse(" 64512:100 ").expect("valid");
        assert_eq!(
            c,
            Community {
                asn: 64512,
                value: 100
            }
        );
        assert_eq!(c.to_string(), "64512:100");
        assert_eq!(Community::parse("64512"), None);
        assert_eq!(Community::parse("65536:1"), None);
        assert_eq!(Community::parse("1:-1"), None);
    }
}
