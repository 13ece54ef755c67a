//! The load balancer's XDP program timed with BPF_PROG_TEST_RUN, for `cargo xtask bench
//! lb`: ns per packet of an established flow to a balanced service (`lb_algo mh`, three
//! real servers) and per packet not to a service. Prints one JSON object.
//!
//! An example of this crate rather than code in xtask: xtask must build before `cargo
//! xtask setup` has installed what vipd's build script needs (nightly rust-src,
//! bpf-linker), so xtask does not link vipd; the bench builds and runs this instead.
//!
//! Usage: `lb_xdp_time VIP RS…` (IPv4 addresses; needs CAP_BPF).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use anyhow::{Context as _, bail};
use vipd::config::lb::{LbAlgo, VirtualServer};
use vipd::io::bpf::{LoadOptions, LoadedXdp};
use vipd::lb::HealthSnapshot;
use vipd::lb::dataplane::{NextHop, plan};

const REPEAT: u32 = 1_000_000;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((vip, servers)) = args.split_first() else {
        bail!("usage: lb_xdp_time VIP RS…");
    };
    let vip: Ipv4Addr = vip.parse().with_context(|| format!("VIP {vip:?}"))?;
    let servers = servers
        .iter()
        .map(|rs| {
            rs.parse::<Ipv4Addr>()
                .with_context(|| format!("real server {rs:?}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if servers.is_empty() {
        bail!("no real servers given");
    }

    let mut xdp = LoadedXdp::load_with(&LoadOptions {
        lb: true,
        ..LoadOptions::default()
    })?;
    let mut maps = xdp.take_lb_maps()?;
    let ports = servers
        .iter()
        .map(|rs| format!("{rs}:80").parse())
        .collect::<Result<Vec<_>, _>>()?;
    let service = VirtualServer::direct_routing(format!("{vip}:80").parse()?, LbAlgo::Mh, &ports);
    let hops: HashMap<IpAddr, NextHop> = servers
        .iter()
        .zip(0u8..)
        .map(|(rs, i)| {
            (
                IpAddr::V4(*rs),
                NextHop {
                    ifindex: 1,
                    mac: [2, 0, 0, 0, 1, i],
                    src_mac: [2, 0, 0, 0, 0, 1],
                },
            )
        })
        .collect();
    maps.apply(&plan(&[service], &HealthSnapshot::default(), &hops))?;

    // Ethernet + IPv4 (TCP, from 203.0.113.7) + TCP to port 80 with the given flags.
    let frame = |dst: Ipv4Addr, flags: u8| {
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
        f.extend_from_slice(&[0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 203, 0, 113, 7]);
        f.extend_from_slice(&dst.octets());
        f.extend_from_slice(&[
            0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff,
        ]);
        f.extend_from_slice(&[0, 0, 0, 0]);
        f
    };
    let elsewhere = Ipv4Addr::new(198, 51, 100, 9);
    let (syn_action, _) = xdp.time_run(&frame(vip, 0x02), 1)?;
    let (flow_action, flow) = xdp.time_run(&frame(vip, 0x10), REPEAT)?;
    let (pass_action, pass) = xdp.time_run(&frame(elsewhere, 0x10), REPEAT)?;
    // XDP_TX (3) for the service's packets, XDP_PASS (2) for the other.
    if (syn_action, flow_action, pass_action) != (3, 3, 2) {
        bail!("unexpected verdicts: SYN {syn_action}, flow {flow_action}, other {pass_action}");
    }
    println!(
        "{}",
        serde_json::json!({
            "established_flow_ns": flow.as_nanos() as u64,
            "not_a_service_ns": pass.as_nanos() as u64,
            "repeat": REPEAT,
        })
    );
    Ok(())
}
