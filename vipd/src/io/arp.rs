//! Gratuitous ARP and directed gateway ARP, sent over AF_PACKET.
//!
//! Frames are built with `pnet_packet`. The AF_PACKET socket is opened with protocol 0,
//! so it never receives anything (pnet's datalink channel listens to every frame on the
//! link, which under a flood is pure cost for a socket that only sends).

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};

use pnet_base::MacAddr;
use pnet_packet::MutablePacket as _;
use pnet_packet::arp::{ArpHardwareTypes, ArpOperations, MutableArpPacket};
use pnet_packet::ethernet::{EtherTypes, MutableEthernetPacket};

const FRAME_LEN: usize = 42;
const BROADCAST: [u8; 6] = [0xff; 6];

/// Builds an ARP request frame from `sender_mac`/`sender_ip` asking for `target_ip`,
/// broadcast. With `target_ip == sender_ip` it is a gratuitous ARP announcement
/// (RFC 5227 §2.3: target hardware address zero).
pub fn arp_request_frame(
    sender_mac: [u8; 6],
    sender_ip: Ipv4Addr,
    target_ip: Ipv4Addr,
) -> [u8; FRAME_LEN] {
    let mut frame = [0u8; FRAME_LEN];
    // The buffer is exactly an Ethernet header plus an ARP body, so both views exist.
    if let Some(mut eth) = MutableEthernetPacket::new(&mut frame) {
        eth.set_destination(MacAddr::from(BROADCAST));
        eth.set_source(MacAddr::from(sender_mac));
        eth.set_ethertype(EtherTypes::Arp);
        if let Some(mut arp) = MutableArpPacket::new(eth.payload_mut()) {
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
    }
    frame
}

/// A send-only AF_PACKET socket on one interface.
#[derive(Debug)]
pub struct ArpSender {
    fd: OwnedFd,
    mac: [u8; 6],
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
        Ok(Self { fd, mac })
    }

    /// The MAC address frames are sent as.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Sends a gratuitous ARP for `vip`.
    pub fn gratuitous(&self, vip: Ipv4Addr) -> io::Result<()> {
        self.send(&arp_request_frame(self.mac, vip, vip))
    }

    /// Sends "who-has `gateway` tell `vip`", so a gateway that ignores gratuitous ARP
    /// still learns the VIP's new MAC from the request's sender fields (RFC 826 merge).
    pub fn directed(&self, vip: Ipv4Addr, gateway: Ipv4Addr) -> io::Result<()> {
        self.send(&arp_request_frame(self.mac, vip, gateway))
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
    fn directed_arp_asks_for_the_gateway_as_the_vip() {
        let mac = [0x02, 0, 0x5e, 0, 1, 7];
        let vip = Ipv4Addr::new(192, 0, 2, 100);
        let gw = Ipv4Addr::new(192, 0, 2, 254);
        let frame = arp_request_frame(mac, vip, gw);
        assert_eq!(&frame[28..32], &vip.octets(), "sender IP is the VIP");
        assert_eq!(&frame[38..42], &gw.octets(), "target IP is the gateway");
        assert_eq!(&frame[20..22], &[0, 1], "a request");
    }
}
