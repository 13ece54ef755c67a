//! Fuzzes the load balancer's configuration: keepalived `virtual_server` /
//! `virtual_server_group` blocks and TOML `[[virtual_server]]` tables, after a fixed
//! preamble of VRRP instances that own the test VIPs, so that the fuzzer spends its time
//! in the LB keywords, their validation and the conversion, not in getting an instance
//! right. The first byte picks the front end (even: keepalived.conf, odd: TOML). Seed
//! corpus: the LB fixtures and tests (`corpus/virtual_server/`).
//!
//! Run: `cargo xtask fuzz --target virtual_server`.
//!
//! Beyond "never panics": every file that loads converts (`vipd convert`) to TOML that
//! loads back to an equal configuration, and the data plane's tables build from it
//! (each virtual server's configured weights through every scheduler).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vipd::config::keepalived::{Includes, parse_keepalived};
use vipd::config::{parse_toml, render};
use vipd::proto::lb::table::{self, Member};
use vipd_common::lb::LB_TABLE_SIZE;

/// Instances for the VIPs the seeds use (one address family per instance).
const KEEPALIVED_PREAMBLE: &str = "vrrp_instance VI_1 {\n  interface eth0\n  \
     virtual_router_id 7\n  virtual_ipaddress {\n    192.0.2.100\n    192.0.2.10\n  }\n}\n\
     vrrp_instance VI_6 {\n  interface eth0\n  virtual_router_id 8\n  \
     virtual_ipaddress {\n    2001:db8::100\n  }\n}\n";
const TOML_PREAMBLE: &str = "[instance.VI_1]\ninterface = \"eth0\"\nvirtual_router_id = 7\n\
     virtual_ipaddress = [\"192.0.2.100\", \"192.0.2.10\"]\n\n[instance.VI_6]\n\
     interface = \"eth0\"\nvirtual_router_id = 8\nvirtual_ipaddress = [\"2001:db8::100\"]\n\n";

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let loaded = if selector % 2 == 0 {
        parse_keepalived(
            &format!("{KEEPALIVED_PREAMBLE}{text}"),
            "fuzz.conf",
            Includes::Refuse,
        )
    } else {
        parse_toml(&format!("{TOML_PREAMBLE}{text}"), "fuzz.toml")
    };
    let Ok(loaded) = loaded else {
        return;
    };
    let toml = render::to_toml(&loaded.config, &[], &loaded.warnings);
    match parse_toml(&toml, "converted.toml") {
        Ok(back) => assert_eq!(back.config, loaded.config, "\n{toml}"),
        Err(errors) => panic!("converted TOML does not load:\n{errors}\n---\n{toml}"),
    }
    let size = LB_TABLE_SIZE as usize;
    for vs in &loaded.config.virtual_servers {
        let names: Vec<String> = vs
            .real_servers
            .iter()
            .map(|rs| rs.address.to_string())
            .collect();
        let members: Vec<Member<'_>> = vs
            .real_servers
            .iter()
            .zip(&names)
            .map(|(rs, name)| Member {
                name,
                weight: rs.weight,
            })
            .collect();
        for t in [
            table::sequence(&members, true, size),
            table::source_hash(&members, size),
            table::maglev(&members, size),
        ] {
            assert!(t.iter().all(|&i| members[i as usize].weight > 0), "{vs:?}");
            // At most LB_BACKENDS_PER_SERVICE members, far fewer than the table size:
            // every real server with a weight must get flows.
            for (index, member) in members.iter().enumerate() {
                assert!(
                    member.weight == 0 || t.contains(&(index as u32)),
                    "real server {} (weight {}) has no entry",
                    member.name,
                    member.weight
                );
            }
        }
    }
});
