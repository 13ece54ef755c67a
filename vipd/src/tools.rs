//! Stand-alone tools built on vipd's pieces (no VRRP election).

use anyhow::Context as _;
use serde_json::json;
use tokio::signal::unix::{SignalKind, signal};
use vipd_common::LEASE_FOREVER;

use crate::cli::{ArpResponderArgs, format_mac};
use crate::io::bpf::XdpAttachment;
use crate::io::netlink::Netlink;

/// `vipd arp-responder`: attach, answer ARP for static VIPs until SIGTERM/SIGINT, then
/// detach and print the counters as one JSON line.
pub async fn arp_responder(args: ArpResponderArgs) -> anyhow::Result<()> {
    let mut sigterm = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;

    let mut xdp = XdpAttachment::attach(&args.interface, args.xdp_mode.into())
        .with_context(|| format!("cannot start the ARP responder on {}", args.interface))?;
    let mac = match args.mac {
        Some(mac) => mac,
        None => Netlink::connect()?
            .link_mac(&args.interface)
            .await
            .with_context(|| {
                format!(
                    "reading the MAC address of {} (or pass --mac)",
                    args.interface
                )
            })?,
    };
    for vip in &args.vips {
        xdp.set_vip_lease(*vip, mac, LEASE_FOREVER)
            .with_context(|| format!("adding VIP {vip} to the XDP map"))?;
    }
    let vips: Vec<String> = args.vips.iter().map(|v| v.to_string()).collect();
    tracing::info!(interface = %args.interface, mode = %xdp.mode(), mac = %format_mac(mac), vips = ?vips, "XDP ARP responder attached");
    println!(
        "ready interface={} ifindex={} mode={} mac={} vips={}",
        args.interface,
        xdp.ifindex(),
        xdp.mode(),
        format_mac(mac),
        vips.join(",")
    );

    tokio::select! {
        _ = sigterm.recv() => {}
        _ = sigint.recv() => {}
    }

    let stats = xdp.stats().context("reading XDP counters")?;
    let summary = json!({
        "interface": args.interface,
        "ifindex": xdp.ifindex(),
        "mode": xdp.mode(),
        "stats": stats,
    });
    drop(xdp); // detaches the program
    println!("{summary}");
    Ok(())
}
