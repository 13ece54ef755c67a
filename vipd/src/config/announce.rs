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
    use super::*;

    #[test]
    fn community_parses_and_prints() {
        let c = Community::parse(" 64512:100 ").expect("valid");
        assert_eq!(c, Community { asn: 64512, value: 100 });
        assert_eq!(c.to_string(), "64512:100");
        assert_eq!(Community::parse("64512"), None);
        assert_eq!(Community::parse("65536:1"), None);
        assert_eq!(Community::parse("1:-1"), None);
    }
}
