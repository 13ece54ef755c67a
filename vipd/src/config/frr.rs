//! The FRR side of L3 mode: the bgpd configuration (`vipd frr-config`) that announces
//! the addresses vipd puts on its announcement devices, with each source's standby path
//! and communities (docs/l3.md).
//!
//! vipd decides *which* addresses are announced, at run time, by adding and removing
//! them on the devices; this static route-map decides *how*: routes on the primary
//! device as they are (plus communities), routes on the standby device with the MED and
//! AS-path prepending of their source. A route-map is evaluated by bgpd for every route
//! it redistributes, so nothing here changes while vipd runs.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::Config;
use super::announce::Announce;
use crate::proto::l3::{PRIMARY_DEVICE, STANDBY_DEVICE};

/// Name of the route-map `redistribute connected` uses.
pub const ROUTE_MAP: &str = "vipd";

/// One announcing source's addresses and policy, with a name for its prefix-lists.
struct Source<'a> {
    name: String,
    addresses: Vec<IpAddr>,
    announce: &'a Announce,
}

fn sources(config: &Config) -> Vec<Source<'_>> {
    let instances = config.instances.iter().filter_map(|i| {
        Some(Source {
            name: format!("vipd-{}", sanitize(&i.name)),
            addresses: i.virtual_addresses.iter().map(|v| v.address).collect(),
            announce: i.announce.as_ref()?,
        })
    });
    let services = config
        .virtual_servers
        .iter()
        .enumerate()
        .filter_map(|(n, vs)| {
            let mut addresses: Vec<IpAddr> = vs.addresses.iter().map(|a| a.ip()).collect();
            addresses.sort();
            addresses.dedup();
            Some(Source {
                name: format!("vipd-vs{}", n + 1),
                addresses,
                announce: vs.announce.as_ref()?,
            })
        });
    instances.chain(services).collect()
}

/// Prefix-list names allow letters, digits, `-` and `_`.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The bgpd configuration for a node in AS `asn`: prefix-lists of each source that
/// needs its own attributes, the route-map, and the `redistribute` lines of `router bgp
/// ASN` (neighbours and timers are the operator's).
pub fn bgpd_config(config: &Config, asn: u32) -> String {
    let mut out = String::new();
    let mut entries = String::new();
    let mut seq = 10;
    for source in sources(config) {
        let announce = source.announce;
        let communities: Vec<String> = announce
            .communities
            .iter()
            .map(ToString::to_string)
            .collect();
        let standby = announce.standby;
        if communities.is_empty() && standby.is_none() {
            continue; // The catch-all entries announce it as it is.
        }
        for (family, suffix, keyword, host) in [(true, "4", "ip", 32), (false, "6", "ipv6", 128)] {
            let addresses: Vec<&IpAddr> = source
                .addresses
                .iter()
                .filter(|a| a.is_ipv4() == family)
                .collect();
            if addresses.is_empty() {
                continue;
            }
            let list = format!("{}-{suffix}", source.name);
            for (n, address) in addresses.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{keyword} prefix-list {list} seq {} permit {address}/{host}",
                    (n + 1) * 5
                );
            }
            if !communities.is_empty() {
                let _ = writeln!(
                    entries,
                    "route-map {ROUTE_MAP} permit {seq}\n match interface {PRIMARY_DEVICE}\n \
                     match {keyword} address prefix-list {list}\n set community {}\n!",
                    communities.join(" ")
                );
                seq += 10;
            }
            if let Some(standby) = standby {
                let _ = write!(
                    entries,
                    "route-map {ROUTE_MAP} permit {seq}\n match interface {STANDBY_DEVICE}\n \
                     match {keyword} address prefix-list {list}\n set metric {}\n",
                    standby.med
                );
                if standby.prepend > 0 {
                    let path = vec![asn.to_string(); usize::from(standby.prepend)];
                    let _ = writeln!(entries, " set as-path prepend {}", path.join(" "));
                }
                if !communities.is_empty() {
                    let _ = writeln!(entries, " set community {}", communities.join(" "));
                }
                entries.push_str("!\n");
                seq += 10;
            }
        }
    }
    if !out.is_empty() {
        out.push_str("!\n");
    }
    out.push_str(&entries);
    // Whatever else is on the devices goes out as it is; nothing else is redistributed
    // (the route-map's implicit deny ends it).
    let _ = writeln!(
        out,
        "route-map {ROUTE_MAP} permit 65000\n match interface {PRIMARY_DEVICE}\n!\n\
         route-map {ROUTE_MAP} permit 65010\n match interface {STANDBY_DEVICE}\n!\n\
         router bgp {asn}\n address-family ipv4 unicast\n  redistribute connected route-map \
         {ROUTE_MAP}\n exit-address-family\n address-family ipv6 unicast\n  redistribute \
         connected route-map {ROUTE_MAP}\n exit-address-family\n!"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        match super::super::parse_toml(text, "test.toml") {
            Ok(loaded) => loaded.config,
            Err(e) => panic!("{e:?}"),
        }
    }

    const BASE: &str = r#"
[instance.web]
interface = "eth0"
virtual_router_id = 1
virtual_ipaddress = ["203.0.113.10", "203.0.113.11"]
announce = "bgp"
"#;

    #[test]
    fn plain_announcement_needs_only_the_catch_all() {
        let text = bgpd_config(&config(BASE), 64601);
        assert!(!text.contains("prefix-list"), "{text}");
        assert!(text.contains("route-map vipd permit 65000\n match interface vipd-l3\n"));
        assert!(text.contains("router bgp 64601\n"));
        assert!(text.contains("redistribute connected route-map vipd"));
    }

    #[test]
    fn standby_path_and_communities_per_source() {
        let toml = format!(
            "{BASE}announce_mode = \"active-standby\"\nannounce_standby_med = 200\n\
             announce_standby_prepend = 2\nannounce_communities = [\"64512:7\"]\n"
        );
        let text = bgpd_config(&config(&toml), 64601);
        assert!(
            text.contains(
                "ip prefix-list vipd-web-4 seq 5 permit 203.0.113.10/32\n\
                 ip prefix-list vipd-web-4 seq 10 permit 203.0.113.11/32\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "route-map vipd permit 20\n match interface vipd-l3-standby\n \
                 match ip address prefix-list vipd-web-4\n set metric 200\n \
                 set as-path prepend 64601 64601\n set community 64512:7\n!"
            ),
            "{text}"
        );
        assert!(text.contains(
            "route-map vipd permit 10\n match interface vipd-l3\n \
             match ip address prefix-list vipd-web-4\n set community 64512:7\n!"
        ));
        assert!(!text.contains("ipv6 prefix-list"), "{text}");
    }
}
