//! Gratuitous ARP and directed gateway ARP for IPv4 VIPs, unsolicited neighbour
//! advertisements and directed gateway neighbour solicitations for IPv6 VIPs, sent over
//! AF_PACKET.
//!
//! Frames are built with `pnet_packet`. The AF_PACKET socket is opened with protocol 0,
//! so it never receives anything (pnet's datalink channel listens to every frame on the
//! link, which under a flood is pure cost for a socket that only sends).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};

use pnet_base::MacAddr;
use pnet_packet::MutablePacket as _;
use pnet_packet::arp::{ArpHardwareTypes, ArpOperations, MutableArpPacket};
use pnet_packet::ethernet::{EtherTypes, MutableEthernetPacket};
use pnet_packet::icmpv6::ndp::{
    Icmpv6Codes, MutableNeighborAdvertPacket, MutableNeighborSolicitPacket, NdpOption,
    NdpOptionTypes, NeighborAdvertFlags,
};
use pnet_packet::icmpv6::{self, Icmpv6Types, MutableIcmpv6Packet};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv6::MutableIpv6Packet;

const FRAME_LEN: usize = 42;
const BROADCAST: [u8; 6] = [0xff; 6];

/// Ethernet (14) + IPv6 (40) + neighbour advertisement (24) + target link-layer address
/// option (8).
pub const NA_FRAME_LEN: usize = 86;
/// The neighbour advertisement and its option: the IPv6 payload length.
const NA_LEN: u16 = 32;
/// All-nodes link-local multicast (RFC 4291 §2.7.1), where unsolicited NAs go.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// Its MAC address (RFC 2464 §7: 33:33 and the group's low 32 bits).
const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
/// RFC 4861 §7.1.2: a receiver drops neighbour discovery with any other hop limit.
const ND_HOP_LIMIT: u8 = 255;

/// An Ethernet frame of `N` bytes from `source` to `destination`, whose payload
/// `fill_payload` writes.
fn ethernet_frame<const N: usize>(
    destination: [u8; 6],
    source: [u8; 6],
    ethertype: pnet_packet::ethernet::EtherType,
    fill_payload: impl FnOnce(&mut [u8]),
) -> [u8; N] {
    let mut frame = [0u8; N];
    // Every N used here holds the 14-byte header, so the view exists.
    if let Some(mut eth) = MutableEthernetPacket::new(&mut frame) {
        eth.set_destination(MacAddr::from(destination));
        eth.set_source(MacAddr::from(source));
        eth.set_ethertype(ethertype);
        fill_payload(eth.payload_mut());
    }
    frame
}

/// An Ethernet frame carrying one IPv6 datagram to a multicast `group` (RFC 2464 §7:
/// destination 33:33 and the group's last four bytes) from `source`, hop limit 255:
/// a VRRP advert leaving from a virtual MAC with the parent's link-local address, which
/// no socket can send (the kernel wants a link-local source on the sending interface).
pub fn ipv6_multicast_frame(
    ethernet_source: [u8; 6],
    source: Ipv6Addr,
    group: Ipv6Addr,
    next_header: u8,
    payload: &[u8],
) -> Vec<u8> {
    let octets = group.octets();
    let destination = [0x33, 0x33, octets[12], octets[13], octets[14], octets[15]];
    let mut frame = vec![0u8; 14 + 40 + payload.len()];
    if let Some(mut eth) = MutableEthernetPacket::new(&mut frame) {
        eth.set_destination(MacAddr::from(destination));
        eth.set_source(MacAddr::from(ethernet_source));
        eth.set_ethertype(EtherTypes::Ipv6);
        if let Some(mut ip) = MutableIpv6Packet::new(eth.payload_mut()) {
            ip.set_version(6);
            // Internetwork control, as the kernel marks VRRP from vipd's sockets.
            ip.set_traffic_class(0xc0);
            ip.set_payload_length(u16::try_from(payload.len()).unwrap_or(u16::MAX));
            ip.set_next_header(pnet_packet::ip::IpNextHeaderProtocol(next_header));
            ip.set_hop_limit(255);
            ip.set_source(source);
            ip.set_destination(group);
            ip.set_payload(payload);
        }
    }
    frame
}

/// Builds an ARP request frame from `sender_mac`/`sender_ip` asking for `target_ip`,
/// broadcast. With `target_ip == sender_ip` it is a gratuitous ARP announcement
/// (RFC 5227 §2.3: target hardware address zero).
pub fn arp_request_frame(
    sender_mac: [u8; 6],
    sender_ip: Ipv4Addr,
    target_ip: Ipv4Addr,
) -> [u8; FRAME_LEN] {
    arp_request_frame_from(sender_mac, sender_mac, sender_ip, target_ip)
}

/// [`arp_request_frame`] sent from `ethernet_source` (the interface it leaves from)
/// while its sender fields name `sender_mac`: how one router tells neighbours that an
/// address is at another router's MAC. Receivers take the mapping from the ARP sender
/// fields (RFC 826); the Ethernet source stays ours, so switches keep learning true
/// port locations.
pub fn arp_request_frame_from(
    ethernet_source: [u8; 6],
    sender_mac: [u8; 6],
    sender_ip: Ipv4Addr,
    target_ip: Ipv4Addr,
) -> [u8; FRAME_LEN] {
    // The frame is exactly an Ethernet header plus an ARP body, so the view exists.
    ethernet_frame(BROADCAST, ethernet_source, EtherTypes::Arp, |payload| {
        if let Some(mut arp) = MutableArpPacket::new(payload) {
            arp.set_hardware_type(ArpHardwareTypes::Ethernet);
            arp.set_protocol_type(EtherTypes::Ipv4);
            arp.set_hw_addr_len(6);
            arp.set_proto_addr_len(4);
            arp.set_operation(ArpOperations::Request);
            arp.set_sender_hw_addr(MacAddr::from(sender_mac));
            arp.set_sender_proto_addr(sender_ip);
            arp.set_target_hw_addr(MacAddr::zero());
            arp.set_target_proto_addr(target_ip);
        }
    })
}

/// Builds an unsolicited neighbour advertisement (RFC 4861 §7.2.6) announcing that
/// `target` is at `sender_mac`: from `source` (the interface's link-local address) to
/// all-nodes, hop limit 255, Router and Override set, Solicited clear, with a Target
/// Link-Layer Address option, ICMPv6 checksum filled in. Router: RFC 9568 §6.4.2 (a
/// new Active Router's advertisements set it; a host that cached the VIP as a router
/// must not demote it, RFC 4861 §7.2.5).
pub fn neighbour_advert_frame(
    sender_mac: [u8; 6],
    source: Ipv6Addr,
    target: Ipv6Addr,
) -> [u8; NA_FRAME_LEN] {
    neighbour_advert_frame_from(sender_mac, sender_mac, source, target)
}

/// [`neighbour_advert_frame`] sent from `ethernet_source` while its Target Link-Layer
/// Address option names `sender_mac` (see [`arp_request_frame_from`]).
pub fn neighbour_advert_frame_from(
    ethernet_source: [u8; 6],
    sender_mac: [u8; 6],
    source: Ipv6Addr,
    target: Ipv6Addr,
) -> [u8; NA_FRAME_LEN] {
    // The frame is exactly the four headers, so every view below exists.
    ethernet_frame(
        ALL_NODES_MAC,
        ethernet_source,
        EtherTypes::Ipv6,
        |payload| {
            let Some(mut ip) = MutableIpv6Packet::new(payload) else {
                return;
            };
            ip.set_version(6);
            ip.set_payload_length(NA_LEN);
            ip.set_next_header(IpNextHeaderProtocols::Icmpv6);
            ip.set_hop_limit(ND_HOP_LIMIT);
            ip.set_source(source);
            ip.set_destination(ALL_NODES);
            if let Some(mut na) = MutableNeighborAdvertPacket::new(ip.payload_mut()) {
                na.set_icmpv6_type(Icmpv6Types::NeighborAdvert);
                na.set_icmpv6_code(Icmpv6Codes::NoCode);
                na.set_flags(NeighborAdvertFlags::Router | NeighborAdvertFlags::Override);
                na.set_target_addr(target);
                na.set_options(&[NdpOption {
                    option_type: NdpOptionTypes::TargetLLAddr,
                    // In units of 8 bytes, type and length included.
                    length: 1,
                    data: sender_mac.to_vec(),
                }]);
            }
            if let Some(mut icmp) = MutableIcmpv6Packet::new(ip.payload_mut()) {
                let checksum = icmpv6::checksum(&icmp.to_immutable(), &source, &ALL_NODES);
                icmp.set_checksum(checksum);
            }
        },
    )
}

/// Ethernet (14) + IPv6 (40) + neighbour solicitation (24) + source link-layer address
/// option (8).
pub const NS_FRAME_LEN: usize = 86;
/// The neighbour solicitation and its option: the IPv6 payload length.
const NS_LEN: u16 = 32;

/// Builds a neighbour solicitation (RFC 4861 §4.3) from `vip` asking for `gateway`, to
/// the gateway's solicited-node group, with a Source Link-Layer Address option naming
/// `sender_mac`: the IPv6 "who-has GW tell VIP". A gateway that ignores unsolicited
/// advertisements still updates its entry for the VIP from it (RFC 4861 §7.2.3).
pub fn neighbour_solicitation_frame(
    sender_mac: [u8; 6],
    vip: Ipv6Addr,
    gateway: Ipv6Addr,
) -> [u8; NS_FRAME_LEN] {
    // RFC 4291 §2.7.1: ff02::1:ff00:0/104 and the gateway's low 24 bits; its MAC per
    // RFC 2464 §7.
    let low = gateway.octets();
    let group = Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(low[13]),
        u16::from_be_bytes([low[14], low[15]]),
    );
    let group_mac = [0x33, 0x33, 0xff, low[13], low[14], low[15]];
    // The frame is exactly the four headers, so every view below exists.
    ethernet_frame(group_mac, sender_mac, EtherTypes::Ipv6, |payload| {
        let Some(mut ip) = MutableIpv6Packet::new(payload) else {
            return;
        };
        ip.set_version(6);
        ip.set_payload_length(NS_LEN);
        ip.set_next_header(IpNextHeaderProtocols::Icmpv6);
        ip.set_hop_limit(ND_HOP_LIMIT);
        ip.set_source(vip);
        ip.set_destination(group);
        if let Some(mut ns) = MutableNeighborSolicitPacket::new(ip.payload_mut()) {
            ns.set_icmpv6_type(Icmpv6Types::NeighborSolicit);
            ns.set_icmpv6_code(Icmpv6Codes::NoCode);
            ns.set_target_addr(gateway);
            ns.set_options(&[NdpOption {
                option_type: NdpOptionTypes::SourceLLAddr,
                length: 1,
                data: sender_mac.to_vec(),
            }]);
        }
        if let Some(mut icmp) = MutableIcmpv6Packet::new(ip.payload_mut()) {
            let checksum = icmpv6::checksum(&icmp.to_immutable(), &vip, &group);
            icmp.set_checksum(checksum);
        }
    })
}

/// A send-only AF_PACKET socket on one interface.
#[derive(Debug)]
pub struct ArpSender {
    fd: OwnedFd,
    mac: [u8; 6],
    /// The interface's IPv6 link-local address, the source of neighbour advertisements
    /// (set when an IPv6 VIP lives on the interface).
    link_local: Option<Ipv6Addr>,
}

impl ArpSender {
    /// Opens the socket on interface `ifindex`, sending as `mac`.
    pub fn open(ifindex: u32, mac: [u8; 6]) -> io::Result<Self> {
        // SAFETY: plain socket(2); the fd is owned right after.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh, valid descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: all-zero is a valid sockaddr_ll.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = 0; // receive nothing
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: addr is a valid sockaddr_ll of the length passed.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            fd,
            mac,
            link_local: None,
        })
    }

    /// Sets the interface's link-local address, the source of neighbour advertisements.
    pub fn set_link_local(&mut self, link_local: Ipv6Addr) {
        self.link_local = Some(link_local);
    }

    /// The MAC address frames are sent as.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Sends a gratuitous ARP for `vip`.
    pub fn gratuitous(&self, vip: Ipv4Addr) -> io::Result<()> {
        self.send(&arp_request_frame(self.mac, vip, vip))
    }

    /// Sends a gratuitous ARP saying `vip` is at `owner_mac` (another router's).
    pub fn gratuitous_for(&self, vip: Ipv4Addr, owner_mac: [u8; 6]) -> io::Result<()> {
        self.send(&arp_request_frame_from(self.mac, owner_mac, vip, vip))
    }

    /// Sends an unsolicited neighbour advertisement saying `vip` is at `owner_mac`.
    pub fn neighbour_advert_for(&self, vip: Ipv6Addr, owner_mac: [u8; 6]) -> io::Result<()> {
        let source = self.link_local.ok_or_else(|| {
            io::Error::other("the interface has no IPv6 link-local address to send from")
        })?;
        self.send(&neighbour_advert_frame_from(
            self.mac, owner_mac, source, vip,
        ))
    }

    /// Sends "who-has `gateway` tell `vip`", so a gateway that ignores gratuitous ARP
    /// still learns the VIP's new MAC from the request's sender fields (RFC 826 merge).
    pub fn directed(&self, vip: Ipv4Addr, gateway: Ipv4Addr) -> io::Result<()> {
        self.send(&arp_request_frame(self.mac, vip, gateway))
    }

    /// Sends "who is `gateway`? I am `vip` at our MAC" (the IPv6 counterpart of
    /// [`ArpSender::directed`]).
    pub fn directed_solicitation(&self, vip: Ipv6Addr, gateway: Ipv6Addr) -> io::Result<()> {
        self.send(&neighbour_solicitation_frame(self.mac, vip, gateway))
    }

    /// Sends `payload` (protocol `next_header`) to the IPv6 multicast `group` from
    /// `source`, with this sender's MAC as the Ethernet source.
    pub fn ipv6_multicast(
        &self,
        source: Ipv6Addr,
        group: Ipv6Addr,
        next_header: u8,
        payload: &[u8],
    ) -> io::Result<()> {
        self.send(&ipv6_multicast_frame(
            self.mac,
            source,
            group,
            next_header,
            payload,
        ))
    }

    /// Sends an unsolicited neighbour advertisement for `vip` (the IPv6 counterpart of
    /// [`ArpSender::gratuitous`]).
    pub fn neighbour_advert(&self, vip: Ipv6Addr) -> io::Result<()> {
        let source = self.link_local.ok_or_else(|| {
            io::Error::other("the interface has no IPv6 link-local address to send from")
        })?;
        self.send(&neighbour_advert_frame(self.mac, source, vip))
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: valid fd and buffer.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VRRP advert from a VMAC: 33:33 + the group's last four bytes, the virtual MAC
    /// as source, IPv6 with hop limit 255, protocol 112 and the payload as given.
    #[test]
    fn ipv6_multicast_frame_carries_the_advert_from_the_virtual_mac() {
        let vmac = [0x00, 0x00, 0x5e, 0x00, 0x02, 0x07];
        let source: Ipv6Addr = "fe80::1".parse().expect("literal");
        let group: Ipv6Addr = "ff02::12".parse().expect("literal");
        let payload = [0x31, 7, 200, 1, 0, 100, 0xab, 0xcd];
        let frame = ipv6_multicast_frame(vmac, source, group, 112, &payload);
        assert_eq!(frame.len(), 14 + 40 + payload.len());
        assert_eq!(frame[0..6], [0x33, 0x33, 0, 0, 0, 0x12]);
        assert_eq!(frame[6..12], vmac);
        assert_eq!(frame[12..14], [0x86, 0xdd]);
        assert_eq!(frame[14] >> 4, 6);
        assert_eq!(
            u16::from_be_bytes([frame[18], frame[19]]),
            payload.len() as u16
        );
        assert_eq!((frame[20], frame[21]), (112, 255), "next header, hop limit");
        assert_eq!(frame[22..38], source.octets());
        assert_eq!(frame[38..54], group.octets());
        assert_eq!(frame[54..], payload);
    }

    #[test]
    fn gratuitous_arp_frame_bytes() {
        let mac = [0x02, 0, 0x5e, 0, 1, 7];
        let vip = Ipv4Addr::new(192, 0, 2, 100);
        let frame = arp_request_frame(mac, vip, vip);
        let expected: [u8; FRAME_LEN] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0x5e, 0, 1, 7, 0x08, 0x06, // eth
            0, 1, 0x08, 0, 6, 4, 0, 1, // htype, ptype, hlen, plen, request
            0x02, 0, 0x5e, 0, 1, 7, 192, 0, 2, 100, // sender
            0, 0, 0, 0, 0, 0, 192, 0, 2, 100, // target
        ];
        assert_eq!(frame, expected);
    }

    #[test]
    fn gratuitous_arp_for_another_router_keeps_our_ethernet_source() {
        let ours = [0x02, 0, 0, 0, 0, 1];
        let winner = [0x02, 0, 0, 0, 0, 2];
        let vip = Ipv4Addr::new(192, 0, 2, 100);
        let frame = arp_request_frame_from(ours, winner, vip, vip);
        assert_eq!(frame[6..12], ours);
        assert_eq!(frame[22..28], winner, "ARP sender hardware address");
        // Apart from the Ethernet source, the winner's own announcement.
        let own = arp_request_frame(winner, vip, vip);
        assert_eq!(frame[12..], own[12..]);
    }

    #[test]
    fn neighbour_advert_for_another_router_names_it_in_the_option() {
        let ours = [0x02, 0, 0, 0, 0, 1];
        let winner = [0x02, 0, 0, 0, 0, 2];
        let source = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
        let vip = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
        let frame = neighbour_advert_frame_from(ours, winner, source, vip);
        assert_eq!(frame[6..12], ours);
        assert_eq!(
            frame[NA_FRAME_LEN - 6..],
            winner,
            "target link-layer address"
        );
        let own = neighbour_advert_frame(winner, source, vip);
        assert_eq!(frame[12..], own[12..]);
    }

    /// RFC 1071 over the IPv6 pseudo-header (RFC 8200 §8.1) and an ICMPv6 message,
    /// independent of pnet.
    fn icmpv6_sum(src: Ipv6Addr, dst: Ipv6Addr, message: &[u8]) -> u16 {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&src.octets());
        bytes.extend_from_slice(&dst.octets());
        bytes.extend_from_slice(&(message.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&[0, 0, 0, 58]);
        bytes.extend_from_slice(message);
        let mut total: u32 = bytes
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
            .sum();
        while total > 0xffff {
            total = (total & 0xffff) + (total >> 16);
        }
        !(total as u16)
    }

    #[test]
    fn neighbour_advert_frame_bytes() {
        let mac = [0x02, 0, 0x5e, 0, 1, 7];
        let source = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0x5eff, 0xfe00, 0x0107);
        let vip = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
        let frame = neighbour_advert_frame(mac, source, vip);
        let mut expected: Vec<u8> = vec![
            0x33, 0x33, 0, 0, 0, 1, 0x02, 0, 0x5e, 0, 1, 7, 0x86, 0xdd, // eth
            0x60, 0, 0, 0, 0, 32, 58, 255, // version, class, flow, length, ICMPv6, hops
        ];
        expected.extend_from_slice(&source.octets());
        expected.extend_from_slice(&ALL_NODES.octets());
        expected.extend_from_slice(&[136, 0, 0, 0]); // NA, code 0, checksum (below)
        expected.extend_from_slice(&[0xa0, 0, 0, 0]); // R=1 S=0 O=1, reserved
        expected.extend_from_slice(&vip.octets());
        expected.extend_from_slice(&[2, 1, 0x02, 0, 0x5e, 0, 1, 7]); // target LL option
        let checksum = icmpv6_sum(source, ALL_NODES, &expected[54..]);
        expected[56..58].copy_from_slice(&checksum.to_be_bytes());
        assert_eq!(frame.as_slice(), expected.as_slice());
        // And the receiver's check: the whole message sums to zero.
        assert_eq!(icmpv6_sum(source, ALL_NODES, &frame[54..]), 0);
    }

    #[test]
    fn neighbour_advert_parses_back() {
        use pnet_packet::Packet as _;
        use pnet_packet::ethernet::EthernetPacket;
        use pnet_packet::icmpv6::Icmpv6Packet;
        use pnet_packet::icmpv6::ndp::NeighborAdvertPacket;
        use pnet_packet::ipv6::Ipv6Packet;

        let mac = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
        let source = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x11, 0x22ff, 0xfe33, 0x4455);
        let vip = Ipv6Addr::new(0x2001, 0xdb8, 0, 7, 0, 0, 0, 1);
        let frame = neighbour_advert_frame(mac, source, vip);
        let eth = EthernetPacket::new(&frame).expect("ethernet");
        assert_eq!(eth.get_destination(), MacAddr::from(ALL_NODES_MAC));
        assert_eq!(eth.get_source(), MacAddr::from(mac));
        assert_eq!(eth.get_ethertype(), EtherTypes::Ipv6);
        let ip = Ipv6Packet::new(eth.payload()).expect("ipv6");
        assert_eq!(ip.get_version(), 6);
        assert_eq!(ip.get_hop_limit(), 255);
        assert_eq!(ip.get_next_header(), IpNextHeaderProtocols::Icmpv6);
        assert_eq!(ip.get_source(), source);
        assert_eq!(ip.get_destination(), ALL_NODES);
        assert_eq!(usize::from(ip.get_payload_length()), ip.payload().len());
        let icmp = Icmpv6Packet::new(ip.payload()).expect("icmpv6");
        assert_eq!(
            icmp.get_checksum(),
            icmpv6::checksum(&icmp, &source, &ALL_NODES)
        );
        let na = NeighborAdvertPacket::new(ip.payload()).expect("NA");
        assert_eq!(na.get_icmpv6_type(), Icmpv6Types::NeighborAdvert);
        assert_eq!(
            na.get_flags(),
            NeighborAdvertFlags::Router | NeighborAdvertFlags::Override
        );
        assert_eq!(na.get_target_addr(), vip);
        let options = na.get_options();
        assert_eq!(options.len(), 1);
        assert_eq!(options[0].option_type, NdpOptionTypes::TargetLLAddr);
        assert_eq!(options[0].length, 1);
        assert_eq!(options[0].data, mac.to_vec());
    }

    #[test]
    fn directed_arp_asks_for_the_gateway_as_the_vip() {
        let mac = [0x02, 0, 0x5e, 0, 1, 7];
        let vip = Ipv4Addr::new(192, 0, 2, 100);
        let gw = Ipv4Addr::new(192, 0, 2, 254);
        let frame = arp_request_frame(mac, vip, gw);
        assert_eq!(&frame[28..32], &vip.octets(), "sender IP is the VIP");
        assert_eq!(&frame[38..42], &gw.octets(), "target IP is the gateway");
        assert_eq!(&frame[20..22], &[0, 1], "a request");
    }

    #[test]
    fn directed_solicitation_asks_for_the_gateway_from_the_vip() {
        let mac = [0x02, 0, 0x5e, 0, 2, 7];
        let vip = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
        let gw = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0x12, 0x3456);
        let frame = neighbour_solicitation_frame(mac, vip, gw);
        let group = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff12, 0x3456);
        let mut expected: Vec<u8> = vec![
            0x33, 0x33, 0xff, 0x12, 0x34, 0x56, 0x02, 0, 0x5e, 0, 2, 7, 0x86, 0xdd, // eth
            0x60, 0, 0, 0, 0, 32, 58, 255, // version, class, flow, length, ICMPv6, hops
        ];
        expected.extend_from_slice(&vip.octets());
        expected.extend_from_slice(&group.octets());
        expected.extend_from_slice(&[135, 0, 0, 0, 0, 0, 0, 0]); // NS, checksum below
        expected.extend_from_slice(&gw.octets());
        expected.extend_from_slice(&[1, 1, 0x02, 0, 0x5e, 0, 2, 7]); // source LL option
        let checksum = icmpv6_sum(vip, group, &expected[54..]);
        expected[56..58].copy_from_slice(&checksum.to_be_bytes());
        assert_eq!(frame.as_slice(), expected.as_slice());
        assert_eq!(icmpv6_sum(vip, group, &frame[54..]), 0);
    }
}
