//! Raw Ethernet frames from a test: an AF_PACKET socket and ARP frame building.
//!
//! Open the socket inside a namespace with [`crate::in_netns`]; it stays bound to that
//! namespace's interface and can then be used from the test thread.

use std::net::Ipv4Addr;
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
