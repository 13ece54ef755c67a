//! vipd's XDP program.
//!
//! ARP responder: an ARP request for a VIP present in `VIP_LEASES` for the receiving
//! interface is rewritten in place into the reply and bounced out with XDP_TX while the
//! lease is live; once the lease has expired the request is dropped, so neither we nor
//! the kernel (which may still hold the address after a daemon crash) claim the VIP.
//! Everything else goes on to the kernel with XDP_PASS.
//!
//! Every read is bounds-checked against `data_end` before it happens (the verifier
//! insists, and untrusted frames deserve it anyway).
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action,
    helpers::bpf_ktime_get_ns,
    macros::{map, xdp},
    maps::{HashMap, PerCpuArray},
    programs::XdpContext,
};
use vipd_common::{MAX_VIPS, Stat, VipKey, VipLease};

#[map(name = "VIP_LEASES")]
static VIP_LEASES: HashMap<VipKey, VipLease> = HashMap::with_max_entries(MAX_VIPS, 0);

#[map(name = "STATS")]
static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(Stat::COUNT, 0);

const ETH_HLEN: usize = 14;
const ETH_P_ARP: u16 = 0x0806;
const ARP_HLEN: usize = 28;

/// Byte offsets inside the ARP header (RFC 826, Ethernet/IPv4 only).
mod arp {
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const SHA: usize = 8;
    pub const SPA: usize = 14;
    pub const THA: usize = 18;
    pub const TPA: usize = 24;
    pub const OP_REQUEST: u16 = 1;
    pub const OP_REPLY: u16 = 2;
}

#[xdp]
pub fn vipd_xdp(ctx: XdpContext) -> u32 {
    bump(Stat::Packets);
    try_vipd_xdp(&ctx).unwrap_or(xdp_action::XDP_PASS)
}

#[inline(always)]
fn bump(stat: Stat) {
    if let Some(counter) = STATS.get_ptr_mut(stat as u32) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe { *counter += 1 };
    }
}

/// Pointer to `len` bytes at `offset`, or `None` when the frame is shorter.
#[inline(always)]
fn bytes_at(ctx: &XdpContext, offset: usize, len: usize) -> Option<*mut u8> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + offset + len > end {
        return None;
    }
    Some((start + offset) as *mut u8)
}

#[inline(always)]
fn read_u16(p: *const u8) -> u16 {
    // SAFETY: callers pass pointers inside a range checked by `bytes_at`.
    unsafe { u16::from_be_bytes([*p, *p.add(1)]) }
}

#[inline(always)]
fn read<const N: usize>(p: *const u8) -> [u8; N] {
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        // SAFETY: as in `read_u16`.
        out[i] = unsafe { *p.add(i) };
        i += 1;
    }
    out
}

#[inline(always)]
fn write<const N: usize>(p: *mut u8, bytes: [u8; N]) {
    let mut i = 0;
    while i < N {
        // SAFETY: as in `read_u16`.
        unsafe { *p.add(i) = bytes[i] };
        i += 1;
    }
}

fn try_vipd_xdp(ctx: &XdpContext) -> Option<u32> {
    let eth = bytes_at(ctx, 0, ETH_HLEN)?;
    // SAFETY: inside the checked Ethernet header.
    let ethertype = read_u16(unsafe { eth.add(12) });
    if ethertype != ETH_P_ARP {
        return Some(xdp_action::XDP_PASS);
    }
    Some(handle_arp(ctx, eth))
}

fn handle_arp(ctx: &XdpContext, eth: *mut u8) -> u32 {
    let Some(hdr) = bytes_at(ctx, ETH_HLEN, ARP_HLEN) else {
        bump(Stat::ArpMalformed);
        return xdp_action::XDP_PASS;
    };
    // SAFETY (all `hdr.add`): offsets < ARP_HLEN, checked above.
    let well_formed = unsafe {
        read_u16(hdr.add(arp::HTYPE)) == 1
            && read_u16(hdr.add(arp::PTYPE)) == 0x0800
            && *hdr.add(arp::HLEN) == 6
            && *hdr.add(arp::PLEN) == 4
    };
    if !well_formed {
        bump(Stat::ArpMalformed);
        return xdp_action::XDP_PASS;
    }
    let oper = read_u16(unsafe { hdr.add(arp::OPER) });
    let sender_ip: [u8; 4] = read(unsafe { hdr.add(arp::SPA) });
    let target_ip: [u8; 4] = read(unsafe { hdr.add(arp::TPA) });
    let key = VipKey {
        ifindex: ctx.ingress_ifindex() as u32,
        addr_be: target_ip,
    };
    // SAFETY: the value is copied out at once; a concurrent update can at worst give us
    // the old or the new lease, both valid.
    let Some(lease) = (unsafe { VIP_LEASES.get(&key) }).copied() else {
        bump(Stat::ArpPassed);
        return xdp_action::XDP_PASS;
    };
    if oper != arp::OP_REQUEST {
        bump(Stat::ArpPassed);
        return xdp_action::XDP_PASS;
    }
    if sender_ip == target_ip {
        // Someone announcing the VIP (a gratuitous ARP from another router taking over):
        // the kernel must see it to update its neighbour table; never answer it.
        bump(Stat::ArpGratuitousPassed);
        return xdp_action::XDP_PASS;
    }
    // SAFETY: a BPF helper with no arguments.
    let now_ns = unsafe { bpf_ktime_get_ns() };
    if now_ns >= lease.lease_expires_ns {
        // Managed but not renewed: the daemon is gone or no longer master. Drop, so
        // the kernel's own copy of the address cannot answer either.
        bump(Stat::ArpDroppedExpired);
        return xdp_action::XDP_DROP;
    }

    // Rewrite the request into the reply in place (RFC 826 "swap fields").
    let requester_mac: [u8; 6] = read(unsafe { hdr.add(arp::SHA) });
    write(eth, requester_mac);
    write(unsafe { eth.add(6) }, lease.owner_mac);
    write(unsafe { hdr.add(arp::OPER) }, arp::OP_REPLY.to_be_bytes());
    write(unsafe { hdr.add(arp::SHA) }, lease.owner_mac);
    write(unsafe { hdr.add(arp::SPA) }, target_ip);
    write(unsafe { hdr.add(arp::THA) }, requester_mac);
    write(unsafe { hdr.add(arp::TPA) }, sender_ip);
    bump(Stat::ArpReplies);
    xdp_action::XDP_TX
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
