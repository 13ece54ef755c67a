//! Checks of a valid configuration against the host it is about to run on: findings that
//! depend on kernel settings rather than on the file, printed by `vipd check` and logged
//! by `vipd run`.
//!
//! The sysctl reader is a parameter so the rules are tested without touching `/proc`.

use super::Config;

/// Why the configuration looks like services on this host bind the VIPs.
fn service_evidence(config: &Config, v6: bool) -> Option<String> {
    // A virtual_server binds nothing: XDP forwards its traffic, and the real servers
    // hold the VIP on lo. Services that bind the VIP show up as notify commands.
    // Notify commands are how keepalived setups start and stop a service by state (the
    // seed's notify.sh starts nginx on MASTER): such a service binds the VIP, and a
    // reload or a race with the address add makes it fail where the VIP is absent.
    config
        .instances
        .iter()
        .filter(|i| {
            i.virtual_addresses
                .iter()
                .any(|vip| vip.address.is_ipv6() == v6)
        })
        .find(|i| {
            let n = &i.notify;
            n.master.is_some() || n.backup.is_some() || n.fault.is_some() || n.any.is_some()
        })
        .map(|i| {
            format!(
                "instance {} starts services by state (notify commands)",
                i.name
            )
        })
}

/// The `ip_nonlocal_bind` warnings for `config`: one per address family whose sysctl is
/// 0 while the configuration suggests services bind its VIPs. `sysctl` reads a key such
/// as `net/ipv4/ip_nonlocal_bind` (as under `/proc/sys`), `None` when unreadable (then
/// nothing is said: a container may hide it).
pub fn nonlocal_bind_warnings(
    config: &Config,
    sysctl: &dyn Fn(&str) -> Option<String>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (family, v6) in [("ipv4", false), ("ipv6", true)] {
        let key = format!("net/{family}/ip_nonlocal_bind");
        let Some(evidence) = service_evidence(config, v6) else {
            continue;
        };
        if sysctl(&key).is_some_and(|value| value.trim() == "0") {
            let dotted = key.replace('/', ".");
            out.push(format!(
                "warning: {dotted} is 0 and {evidence}: a service that binds a VIP fails to start on a node that does not hold it (a backup, or a master before the address is added); set it to 1: sysctl -w {dotted}=1, and persist it in /etc/sysctl.d/"
            ));
        }
    }
    out
}

/// Reads a sysctl from `/proc/sys` (`key` like `net/ipv4/ip_nonlocal_bind`).
pub fn read_proc_sysctl(key: &str) -> Option<String> {
    std::fs::read_to_string(std::path::Path::new("/proc/sys").join(key)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        crate::config::parse_toml(text, "test.toml")
            .map(|loaded| loaded.config)
            .unwrap_or_else(|e| panic!("{e:?}"))
    }

    const NOTIFY: &str = r#"
[instance.VI_1]
interface = "eth0"
virtual_router_id = 7
priority = 100
virtual_ipaddress = ["192.0.2.100"]
notify_master = "/etc/vipd/notify.sh master"
"#;

    const PLAIN: &str = r#"
[instance.VI_1]
interface = "eth0"
virtual_router_id = 7
priority = 100
virtual_ipaddress = ["192.0.2.100"]
"#;

    fn sysctl(v4: &'static str, v6: &'static str) -> impl Fn(&str) -> Option<String> {
        move |key: &str| match key {
            "net/ipv4/ip_nonlocal_bind" => Some(format!("{v4}\n")),
            "net/ipv6/ip_nonlocal_bind" => Some(format!("{v6}\n")),
            _ => None,
        }
    }

    #[test]
    fn notify_commands_with_nonlocal_bind_off_warn_for_their_family() {
        let warnings = nonlocal_bind_warnings(&config(NOTIFY), &sysctl("0", "0"));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("net.ipv4.ip_nonlocal_bind is 0")
                && warnings[0].contains("instance VI_1")
                && warnings[0].contains("sysctl -w net.ipv4.ip_nonlocal_bind=1"),
            "{warnings:?}"
        );
    }

    #[test]
    fn no_warning_when_the_sysctl_is_on_or_unreadable() {
        assert!(nonlocal_bind_warnings(&config(NOTIFY), &sysctl("1", "0")).is_empty());
        assert!(nonlocal_bind_warnings(&config(NOTIFY), &|_: &str| None).is_empty());
    }

    #[test]
    fn no_warning_without_services_on_the_vips() {
        assert!(nonlocal_bind_warnings(&config(PLAIN), &sysctl("0", "0")).is_empty());
    }
}
