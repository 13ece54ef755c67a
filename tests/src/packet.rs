//! Raw Ethernet frames from a test: an AF_PACKET socket and ARP frame building.
//!
//! Open the socket inside a namespace with [`crate::in_netns`]; it stays bound to that
//! namespace's interface and can then be used from the test thread.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// EtherType of ARP.
pub const ETH_P_ARP: u16 = 0x0806;
/// Length of an Ethernet/IPv4 ARP frame without padding: 14 + 28.
pub const ARP_FRAME_LEN: usize = 42;
/// ARP operation: request.
pub const ARP_REQUEST: u16 = 1;
/// ARP operation: reply.
pub const ARP_REPLY: u16 = 2;

/// An AF_PACKET socket bound to one interface and one EtherType.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: u32,
}

impl PacketSocket {
    /// Opens a raw packet socket on `ifname` for frames of `ethertype`, in the calling
    /// thread's network namespace (so call it inside [`crate::in_netns`]).
    pub fn open(ifname: &str, ethertype: u16) -> anyhow::Result<PacketSocket> {
        let c_name = std::ffi::CString::new(ifname)?;
        // SAFETY: a valid NUL-terminated string.
        let ifindex = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
        if ifindex == 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("no interface {ifname} here"));
        }
        let protocol = ethertype.to_be();
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                i32::from(protocol),
            )
        };
        if raw < 0 {
            return Err(std::io::Error::last_os_error()).context("socket(AF_PACKET)");
        }
        // SAFETY: `raw` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let addr = sockaddr_ll(ifindex, protocol, [0; 6]);
        // SAFETY: `addr` is a valid sockaddr_ll and its exact size is passed.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("bind AF_PACKET to {ifname}"));
        }
        Ok(PacketSocket { fd, ifindex })
    }

    /// Sends one complete Ethernet frame (header included).
    pub fn send(&self, frame: &[u8]) -> anyhow::Result<()> {
        // SAFETY: the buffer is valid for `frame.len()` bytes; a bound packet socket
        // needs no destination address for SOCK_RAW sends.
        let sent =
            unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if sent < 0 {
            return Err(std::io::Error::last_os_error()).context("send on packet socket");
        }
        if sent as usize != frame.len() {
            bail!("short send: {sent} of {} bytes", frame.len());
        }
        Ok(())
    }

    /// Receives the next frame that arrived on the interface (frames this host sent are
    /// skipped) before `deadline`; `None` if none did.
    pub fn recv_until(&self, deadline: Instant) -> anyhow::Result<Option<Vec<u8>>> {
        let mut buf = vec![0u8; 2048];
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let wait_ms = (deadline - now).as_millis().clamp(1, i32::MAX as u128) as i32;
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let ready = unsafe { libc::poll(&raw mut pfd, 1, wait_ms) };
            if ready < 0 {
                let err = std::io::Error::last_os_error();
                if err.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err).context("poll on packet socket");
            }
            if ready == 0 {
                continue; // the loop head sees the deadline
            }
            let mut from = sockaddr_ll(0, 0, [0; 6]);
            let mut from_len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: buffer and address are valid for the lengths given.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    (&raw mut from).cast(),
                    &raw mut from_len,
                )
            };
            if n < 0 {
                let err = std::io::Error::last_os_error();
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) {
                    continue;
                }
                return Err(err).context("recvfrom on packet socket");
            }
            if from.sll_pkttype == libc::PACKET_OUTGOING || from.sll_ifindex as u32 != self.ifindex
            {
                continue;
            }
            return Ok(Some(buf[..n as usize].to_vec()));
        }
    }

    /// Collects every frame arriving before `deadline` for which `keep` holds.
    pub fn collect_until(
        &self,
        deadline: Instant,
        keep: impl Fn(&[u8]) -> bool,
    ) -> anyhow::Result<Vec<Vec<u8>>> {
        let mut frames = Vec::new();
        while let Some(frame) = self.recv_until(deadline)? {
            if keep(&frame) {
                frames.push(frame);
            }
        }
        Ok(frames)
    }

    /// Waits at most `timeout` for the first frame for which `keep` holds.
    pub fn recv_matching(
        &self,
        timeout: Duration,
        keep: impl Fn(&[u8]) -> bool,
    ) -> anyhow::Result<Option<Vec<u8>>> {
        let deadline = Instant::now() + timeout;
        while let Some(frame) = self.recv_until(deadline)? {
            if keep(&frame) {
                return Ok(Some(frame));
            }
        }
        Ok(None)
    }
}

fn sockaddr_ll(ifindex: u32, protocol_be: u16, mac: [u8; 6]) -> libc::sockaddr_ll {
    let mut addr = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: protocol_be,
        sll_ifindex: ifindex as i32,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 6,
        sll_addr: [0; 8],
    };
    addr.sll_addr[..6].copy_from_slice(&mac);
    addr
}

/// An Ethernet/IPv4 ARP frame (RFC 826), as fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpFrame {
    /// Ethernet destination.
    pub eth_dst: [u8; 6],
    /// Ethernet source.
    pub eth_src: [u8; 6],
    /// Operation: [`ARP_REQUEST`] or [`ARP_REPLY`].
    pub oper: u16,
    /// Sender hardware address.
    pub sha: [u8; 6],
    /// Sender protocol address.
    pub spa: Ipv4Addr,
    /// Target hardware address.
    pub tha: [u8; 6],
    /// Target protocol address.
    pub tpa: Ipv4Addr,
}

impl ArpFrame {
    /// A broadcast who-has `target` from `(mac, ip)`, as `arping` sends it.
    pub fn request(mac: [u8; 6], ip: Ipv4Addr, target: Ipv4Addr) -> ArpFrame {
        ArpFrame {
            eth_dst: [0xff; 6],
            eth_src: mac,
            oper: ARP_REQUEST,
            sha: mac,
            spa: ip,
            tha: [0; 6],
            tpa: target,
        }
    }

    /// The 42 bytes on the wire (no padding).
    pub fn to_bytes(&self) -> [u8; ARP_FRAME_LEN] {
        let mut b = [0u8; ARP_FRAME_LEN];
        b[0..6].copy_from_slice(&self.eth_dst);
        b[6..12].copy_from_slice(&self.eth_src);
        b[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
        b[14..16].copy_from_slice(&1u16.to_be_bytes()); // htype: Ethernet
        b[16..18].copy_from_slice(&0x0800u16.to_be_bytes()); // ptype: IPv4
        b[18] = 6; // hlen
        b[19] = 4; // plen
        b[20..22].copy_from_slice(&self.oper.to_be_bytes());
        b[22..28].copy_from_slice(&self.sha);
        b[28..32].copy_from_slice(&self.spa.octets());
        b[32..38].copy_from_slice(&self.tha);
        b[38..42].copy_from_slice(&self.tpa.octets());
        b
    }

    /// Parses an Ethernet/IPv4 ARP frame; `None` for anything else (or too short).
    /// Bytes after the first 42 (padding) are ignored.
    pub fn parse(b: &[u8]) -> Option<ArpFrame> {
        if b.len() < ARP_FRAME_LEN
            || b[12..14] != ETH_P_ARP.to_be_bytes()
            || b[14..16] != 1u16.to_be_bytes()
            || b[16..18] != 0x0800u16.to_be_bytes()
            || b[18] != 6
            || b[19] != 4
        {
            return None;
        }
        let mac = |r: std::ops::Range<usize>| -> [u8; 6] { b[r].try_into().unwrap_or([0; 6]) };
        let ip = |at: usize| Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]);
        Some(ArpFrame {
            eth_dst: mac(0..6),
            eth_src: mac(6..12),
            oper: u16::from_be_bytes([b[20], b[21]]),
            sha: mac(22..28),
            spa: ip(28),
            tha: mac(32..38),
            tpa: ip(38),
        })
    }
}

/// EtherType of IPv4.
pub const ETH_P_IP: u16 = 0x0800;
/// IP protocol number of VRRP.
pub const IPPROTO_VRRP: u8 = 112;
/// The VRRP IPv4 multicast group, 224.0.0.18.
pub const VRRP_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

/// A complete Ethernet frame holding a VRRPv3 advertisement (RFC 5798 §5) from `src_ip`
/// to 224.0.0.18 with TTL 255 and correct IPv4 and VRRP checksums: what a router of
/// another VRRP cluster on the same LAN sends. `interval_cs` is in centiseconds.
pub fn vrrp_v3_advert_frame(
    src_mac: [u8; 6],
    src_ip: Ipv4Addr,
    vrid: u8,
    priority: u8,
    interval_cs: u16,
    addresses: &[Ipv4Addr],
) -> Vec<u8> {
    let octets: Vec<u8> = addresses.iter().flat_map(|a| a.octets()).collect();
    let mut vrrp = vrrp_v3_message(vrid, priority, interval_cs, addresses.len(), &octets);
    // RFC 5798 §5.2.8: over the IPv4 pseudo-header and the VRRP message.
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&src_ip.octets());
    pseudo.extend_from_slice(&VRRP_GROUP_V4.octets());
    pseudo.extend_from_slice(&[0, IPPROTO_VRRP]);
    pseudo.extend_from_slice(&(vrrp.len() as u16).to_be_bytes());
    set_checksum(&mut vrrp, &pseudo);

    ipv4_multicast_frame(src_mac, src_ip, &vrrp)
}

/// The VRRP IPv6 multicast group, ff02::12.
pub const VRRP_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// [`vrrp_v3_advert_frame`] over IPv6 (RFC 5798 §5.1.2): from `src_ip` (a link-local
/// address) to ff02::12 (33:33:00:00:00:12) with hop limit 255 and a correct checksum
/// over the RFC 8200 §8.1 pseudo-header.
pub fn vrrp_v3_ipv6_advert_frame(
    src_mac: [u8; 6],
    src_ip: Ipv6Addr,
    vrid: u8,
    priority: u8,
    interval_cs: u16,
    addresses: &[Ipv6Addr],
) -> Vec<u8> {
    let octets: Vec<u8> = addresses.iter().flat_map(|a| a.octets()).collect();
    let mut vrrp = vrrp_v3_message(vrid, priority, interval_cs, addresses.len(), &octets);
    let vrrp_len = vrrp.len();
    let mut pseudo = Vec::with_capacity(40);
    pseudo.extend_from_slice(&src_ip.octets());
    pseudo.extend_from_slice(&VRRP_GROUP_V6.octets());
    pseudo.extend_from_slice(&(vrrp_len as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, IPPROTO_VRRP]);
    set_checksum(&mut vrrp, &pseudo);

    let mut frame = Vec::with_capacity(54 + vrrp_len);
    frame.extend_from_slice(&[0x33, 0x33, 0, 0, 0, 0x12]);
    frame.extend_from_slice(&src_mac);
    frame.extend_from_slice(&ETH_P_IPV6.to_be_bytes());
    frame.extend_from_slice(&[0x60, 0, 0, 0]);
    frame.extend_from_slice(&(vrrp_len as u16).to_be_bytes());
    frame.extend_from_slice(&[IPPROTO_VRRP, 255]);
    frame.extend_from_slice(&src_ip.octets());
    frame.extend_from_slice(&VRRP_GROUP_V6.octets());
    frame.extend_from_slice(&vrrp);
    frame
}

/// A complete Ethernet frame holding a VRRPv2 advertisement (RFC 3768 §5.1) from
/// `src_ip` to 224.0.0.18 with TTL 255, no authentication and correct checksums.
/// `interval_s` is in whole seconds, as v2 has it.
pub fn vrrp_v2_advert_frame(
    src_mac: [u8; 6],
    src_ip: Ipv4Addr,
    vrid: u8,
    priority: u8,
    interval_s: u8,
    addresses: &[Ipv4Addr],
) -> Vec<u8> {
    let mut vrrp = vec![
        0x21,
        vrid,
        priority,
        addresses.len() as u8,
        0,
        interval_s,
        0,
        0,
    ];
    for a in addresses {
        vrrp.extend_from_slice(&a.octets());
    }
    vrrp.extend_from_slice(&[0; 8]); // authentication data
    // RFC 3768 §5.3.8: over the VRRP message only.
    set_checksum(&mut vrrp, &[]);
    ipv4_multicast_frame(src_mac, src_ip, &vrrp)
}

/// A VRRPv3 message (RFC 5798 §5.2) for `count` addresses whose octets are
/// `addresses`, its checksum zero (see [`set_checksum`]).
fn vrrp_v3_message(
    vrid: u8,
    priority: u8,
    interval_cs: u16,
    count: usize,
    addresses: &[u8],
) -> Vec<u8> {
    let mut vrrp = Vec::with_capacity(8 + addresses.len());
    vrrp.extend_from_slice(&[0x31, vrid, priority, count as u8]);
    vrrp.extend_from_slice(&(interval_cs & 0x0fff).to_be_bytes());
    vrrp.extend_from_slice(&[0, 0]);
    vrrp.extend_from_slice(addresses);
    vrrp
}

/// Sets the checksum of the VRRP message `vrrp` (bytes 6..8, zero on entry): RFC 1071
/// over `pseudo` (the pseudo-header, empty for v2) and the message.
fn set_checksum(vrrp: &mut [u8], pseudo: &[u8]) {
    let mut covered = Vec::with_capacity(pseudo.len() + vrrp.len());
    covered.extend_from_slice(pseudo);
    covered.extend_from_slice(vrrp);
    let checksum = internet_checksum(&covered);
    vrrp[6..8].copy_from_slice(&checksum.to_be_bytes());
}

/// `vrrp` in an IPv4 datagram (TTL 255, protocol 112) to 224.0.0.18, in an Ethernet
/// frame to its multicast MAC.
fn ipv4_multicast_frame(src_mac: [u8; 6], src_ip: Ipv4Addr, vrrp: &[u8]) -> Vec<u8> {
    let total_len = (20 + vrrp.len()) as u16;
    let mut ip = vec![0x45, 0xc0];
    ip.extend_from_slice(&total_len.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0, 0, 255, IPPROTO_VRRP, 0, 0]);
    ip.extend_from_slice(&src_ip.octets());
    ip.extend_from_slice(&VRRP_GROUP_V4.octets());
    let checksum = internet_checksum(&ip);
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());

    let mut frame = Vec::with_capacity(14 + ip.len() + vrrp.len());
    frame.extend_from_slice(&[0x01, 0x00, 0x5e, 0x00, 0x00, 0x12]); // 224.0.0.18
    frame.extend_from_slice(&src_mac);
    frame.extend_from_slice(&ETH_P_IP.to_be_bytes());
    frame.extend_from_slice(&ip);
    frame.extend_from_slice(vrrp);
    frame
}

/// EtherType of IPv6.
pub const ETH_P_IPV6: u16 = 0x86dd;

/// The ICMPv6 checksum (RFC 4443 §2.3) of `message` from `src` to `dst`: RFC 1071 over
/// the RFC 8200 §8.1 pseudo-header and the message (its checksum field as it is).
pub fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, message: &[u8]) -> u16 {
    let mut bytes = Vec::with_capacity(40 + message.len());
    bytes.extend_from_slice(&src.octets());
    bytes.extend_from_slice(&dst.octets());
    bytes.extend_from_slice(&(message.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&[0, 0, 0, 58]);
    bytes.extend_from_slice(message);
    internet_checksum(&bytes)
}

/// A neighbour solicitation (RFC 4861 §4.3) from `mac`/`src` for `target`, to the
/// target's solicited-node group, with a source link-layer address option.
pub fn neighbour_solicitation_frame(mac: [u8; 6], src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let t = target.octets();
    let group = Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, t[13], t[14], t[15],
    ]);
    let mut icmp = vec![135, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&t);
    icmp.extend_from_slice(&[1, 1]);
    icmp.extend_from_slice(&mac);
    let sum = icmpv6_checksum(src, group, &icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut frame = Vec::with_capacity(14 + 40 + icmp.len());
    frame.extend_from_slice(&[0x33, 0x33, 0xff, t[13], t[14], t[15]]);
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&ETH_P_IPV6.to_be_bytes());
    frame.extend_from_slice(&[0x60, 0, 0, 0]);
    frame.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    frame.extend_from_slice(&[58, 255]);
    frame.extend_from_slice(&src.octets());
    frame.extend_from_slice(&group.octets());
    frame.extend_from_slice(&icmp);
    frame
}

/// A neighbour advertisement (RFC 4861 §4.4) as received, with the fields tests look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighbourAdvert {
    /// Ethernet source.
    pub eth_src: [u8; 6],
    /// IPv6 source.
    pub src: Ipv6Addr,
    /// The target address.
    pub target: Ipv6Addr,
    /// Router flag.
    pub router: bool,
    /// Solicited flag.
    pub solicited: bool,
    /// Override flag.
    pub override_flag: bool,
    /// The target link-layer address option, if present.
    pub target_mac: Option<[u8; 6]>,
    /// Whether the ICMPv6 checksum verifies.
    pub checksum_ok: bool,
}

impl NeighbourAdvert {
    /// Parses an Ethernet frame holding an IPv6 neighbour advertisement with no
    /// extension headers; `None` for anything else.
    pub fn parse(b: &[u8]) -> Option<NeighbourAdvert> {
        let ip = b.get(14..54)?;
        if b.get(12..14)? != ETH_P_IPV6.to_be_bytes() || ip[6] != 58 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
        let icmp = b.get(54..54 + len)?;
        if icmp.len() < 24 || icmp[0] != 136 {
            return None;
        }
        let src = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).ok()?);
        let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).ok()?);
        let target_mac = icmp
            .get(24..32)
            .filter(|o| o[0] == 2 && o[1] == 1)
            .and_then(|o| <[u8; 6]>::try_from(&o[2..8]).ok());
        Some(NeighbourAdvert {
            eth_src: b.get(6..12)?.try_into().ok()?,
            src,
            target: Ipv6Addr::from(<[u8; 16]>::try_from(&icmp[8..24]).ok()?),
            router: icmp[4] & 0x80 != 0,
            solicited: icmp[4] & 0x40 != 0,
            override_flag: icmp[4] & 0x20 != 0,
            target_mac,
            checksum_ok: icmpv6_checksum(src, dst, icmp) == 0,
        })
    }
}

/// The Internet checksum (RFC 1071) of `bytes`.
pub fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vrrp_advert_frame_checksums_verify() {
        let frame = vrrp_v3_advert_frame(
            [2, 0, 0, 0, 0, 0x32],
            Ipv4Addr::new(192, 0, 2, 50),
            200,
            100,
            10,
            &[Ipv4Addr::new(192, 0, 2, 200)],
        );
        assert_eq!(frame.len(), 14 + 20 + 12);
        assert_eq!(&frame[12..14], &[0x08, 0x00]);
        // A correct checksum makes the sum over the covered bytes fold to zero.
        assert_eq!(internet_checksum(&frame[14..34]), 0);
        let mut pseudo = frame[26..34].to_vec();
        pseudo.extend_from_slice(&[0, IPPROTO_VRRP, 0, 12]);
        pseudo.extend_from_slice(&frame[34..]);
        assert_eq!(internet_checksum(&pseudo), 0);
        assert_eq!(&frame[34..38], &[0x31, 200, 100, 1]);
    }

    #[test]
    fn ipv6_and_v2_advert_checksums_verify() {
        let src = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x32);
        let vip = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
        let frame = vrrp_v3_ipv6_advert_frame([2, 0, 0, 0, 0, 0x32], src, 7, 150, 100, &[vip]);
        assert_eq!(frame.len(), 14 + 40 + 8 + 16);
        let mut pseudo = frame[22..54].to_vec();
        pseudo.extend_from_slice(&[0, 0, 0, 24, 0, 0, 0, IPPROTO_VRRP]);
        pseudo.extend_from_slice(&frame[54..]);
        assert_eq!(internet_checksum(&pseudo), 0);
        assert_eq!(&frame[54..58], &[0x31, 7, 150, 1]);

        let v2 = vrrp_v2_advert_frame(
            [2, 0, 0, 0, 0, 0x32],
            Ipv4Addr::new(192, 0, 2, 50),
            7,
            150,
            1,
            &[Ipv4Addr::new(192, 0, 2, 200)],
        );
        assert_eq!(internet_checksum(&v2[34..]), 0);
        assert_eq!(&v2[34..38], &[0x21, 7, 150, 1]);
    }

    #[test]
    fn arp_request_bytes_and_roundtrip() {
        let req = ArpFrame::request(
            [2, 0, 0, 0, 0, 0x0a],
            Ipv4Addr::new(192, 0, 2, 10),
            Ipv4Addr::new(192, 0, 2, 100),
        );
        let bytes = req.to_bytes();
        #[rustfmt::skip]
        let expected: [u8; 42] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff,  2, 0, 0, 0, 0, 0x0a,  0x08, 0x06,
            0x00, 0x01,  0x08, 0x00,  6, 4,  0x00, 0x01,
            2, 0, 0, 0, 0, 0x0a,  192, 0, 2, 10,
            0, 0, 0, 0, 0, 0,  192, 0, 2, 100,
        ];
        assert_eq!(bytes, expected);
        assert_eq!(ArpFrame::parse(&bytes), Some(req));
        let mut padded = bytes.to_vec();
        padded.resize(60, 0);
        assert_eq!(ArpFrame::parse(&padded), Some(req));
        assert_eq!(ArpFrame::parse(&bytes[..41]), None);
        assert_eq!(format_mac(req.sha), "02:00:00:00:00:0a");
    }
}
