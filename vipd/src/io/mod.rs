//! Everything that touches the kernel. The protocol core never calls in here; the daemon
//! performs the core's actions through these modules and feeds results back as inputs.
//!
//! - [`bpf`]: the XDP program: load, attach (pinned, with takeover), VIP leases, advert
//!   watches, observed adverts, advert events, counters, logs.
//! - [`socket`]: raw IP protocol 112 sockets for adverts.
//! - [`bfd`]: UDP sockets for BFD control packets (RFC 5881).
//! - [`netlink`]: VIP add/remove, link kind and MAC, link watching (rtnetlink).
//! - [`lock`]: lock files that keep two vipd processes off one interface.
//! - [`arp`]: gratuitous and directed ARP over AF_PACKET.
//! - [`l3`]: L3 mode's TAP devices whose host addresses FRR announces over BGP.
//! - [`sched`]: real-time scheduling for the daemon's thread.
//! - [`vmac`]: virtual MAC interfaces (macvlans carrying the VIPs) and their sysctls.
pub mod arp;
pub mod bfd;
pub mod bpf;
pub mod l3;
pub mod lock;
pub mod netlink;
pub mod sched;
pub mod socket;
pub mod vmac;
