//! Raw IP protocol 112 sockets for VRRP adverts, IPv4 and IPv6.
//!
//! One receive socket per (interface, family), bound to the interface and joined to
//! 224.0.0.18 / ff02::12 there, hands every VRRP datagram on that link (multicast or
//! unicast to us) to the daemon with what validation needs from the IP header (TTL or
//! hop limit, source, destination for the v3 checksum):
//! - IPv4 raw sockets deliver the header in front of the VRRP message, which
//!   [`wire::Ipv4Datagram::split`] reads;
//! - IPv6 raw sockets deliver only the payload, so the source comes from `recvmsg`'s
//!   address, the destination from `IPV6_PKTINFO` and the hop limit from
//!   `IPV6_HOPLIMIT` control messages.
//!
//! One send socket per (interface, source address): the kernel builds the IP header with
//! TTL / hop limit 255 (RFC 5798 §5.1.1.3, §5.1.2.3) and TOS / traffic class "internetwork
//! control" like keepalived. The VRRP checksum is the one [`wire::AdvertRepr::emit`]
//! computed over the pseudo-header of this very source and destination, so the kernel is
//! not asked to compute one (`IPV6_CHECKSUM` stays off, as it is by default for raw
//! sockets of protocols other than ICMPv6). A raw socket would also queue every matching
//! incoming datagram, so the send socket carries a classic BPF filter that accepts
//! nothing: under a flood it cannot fill up.
//!
//! IPv6 adverts leave from the interface's link-local address (RFC 5798 §5.1.2.1), or
//! from `unicast_src_ip` when one is set.

use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::num::NonZeroU32;
use std::os::fd::AsRawFd as _;

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, SockFilter, Socket, Type};
use tokio::io::unix::AsyncFd;

use crate::proto::validate::RxMeta;
use crate::proto::wire::{self, AddressFamily, Ipv4Datagram, Ipv4Error};

/// IP protocol number of VRRP (RFC 5798 §5.1.1.4).
pub const IPPROTO_VRRP: i32 = 112;
/// The VRRP IPv4 multicast group (RFC 5798 §5.1.1.2).
pub const VRRP_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The VRRP IPv6 multicast group (RFC 5798 §5.1.2.2).
pub const VRRP_GROUP_V6: Ipv6Addr = wire::IPV6_MULTICAST;
/// TTL / hop limit on every advert (RFC 5798 §5.1.1.3, §5.1.2.3).
pub const VRRP_TTL: u32 = 255;
/// IPTOS_PREC_INTERNETCONTROL, as keepalived and FRR send (TOS, or IPv6 traffic class).
const TOS_INTERNET_CONTROL: u32 = 0xc0;

/// The VRRP multicast group of `family`.
pub fn vrrp_group(family: AddressFamily) -> IpAddr {
    match family {
        AddressFamily::Ipv4 => IpAddr::V4(VRRP_GROUP_V4),
        AddressFamily::Ipv6 => IpAddr::V6(VRRP_GROUP_V6),
    }
}

fn raw(family: AddressFamily) -> io::Result<Socket> {
    let domain = match family {
        AddressFamily::Ipv4 => Domain::IPV4,
        AddressFamily::Ipv6 => Domain::IPV6,
    };
    let socket = Socket::new(
        domain,
        Type::RAW.cloexec(),
        Some(Protocol::from(IPPROTO_VRRP)),
    )?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// `setsockopt(fd, level, name, &1)` for the options socket2 does not wrap.
fn enable(socket: &Socket, level: i32, name: i32) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: a valid fd and a c_int option value of the length passed.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// One VRRP datagram as a receive socket delivered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Datagram {
    /// IPv4: the whole datagram, header included.
    V4(Vec<u8>),
    /// IPv6: the VRRP message, and the header fields recovered from `recvmsg`.
    V6 {
        /// The sender (from the socket address).
        src: Ipv6Addr,
        /// The destination (`IPV6_PKTINFO`), absent if the kernel gave none.
        dst: Option<Ipv6Addr>,
        /// The hop limit (`IPV6_HOPLIMIT`), absent if the kernel gave none.
        hop_limit: Option<u8>,
        /// The VRRP message.
        payload: Vec<u8>,
    },
}

/// Why a received datagram cannot be validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DatagramError {
    /// The IPv4 header does not parse.
    #[error(transparent)]
    Ipv4(#[from] Ipv4Error),
    /// The kernel did not hand over the IPv6 destination or hop limit.
    #[error("IPv6 datagram without its destination or hop limit control message")]
    MissingIpv6Control,
}

impl Datagram {
    /// The address family the datagram arrived in.
    pub fn family(&self) -> AddressFamily {
        match self {
            Datagram::V4(_) => AddressFamily::Ipv4,
            Datagram::V6 { .. } => AddressFamily::Ipv6,
        }
    }

    /// What validation needs from the IP header, and the VRRP message.
    pub fn split(&self) -> Result<(RxMeta, &[u8]), DatagramError> {
        match self {
            Datagram::V4(bytes) => {
                let datagram = Ipv4Datagram::split(bytes)?;
                Ok((RxMeta::from(&datagram), datagram.payload))
            }
            Datagram::V6 {
                src,
                dst: Some(dst),
                hop_limit: Some(hop_limit),
                payload,
            } => Ok((
                RxMeta {
                    src: IpAddr::V6(*src),
                    dst: IpAddr::V6(*dst),
                    ttl_or_hop_limit: *hop_limit,
                },
                payload,
            )),
            Datagram::V6 { .. } => Err(DatagramError::MissingIpv6Control),
        }
    }
}

/// Receives every VRRP datagram of one family arriving on one interface.
#[derive(Debug)]
pub struct RxSocket {
    fd: AsyncFd<Socket>,
    family: AddressFamily,
}

impl RxSocket {
    /// Opens the socket on `interface` (index `ifindex`) and joins the VRRP group of
    /// `family` there.
    pub fn open(interface: &str, ifindex: u32, family: AddressFamily) -> io::Result<Self> {
        let socket = raw(family)?;
        socket.bind_device(Some(interface.as_bytes()))?;
        match family {
            AddressFamily::Ipv4 => {
                // Only the groups this socket joined, not every group any socket joined.
                socket.set_multicast_all_v4(false)?;
                socket.join_multicast_v4_n(
                    &VRRP_GROUP_V4,
                    &InterfaceIndexOrAddress::Index(ifindex),
                )?;
            }
            AddressFamily::Ipv6 => {
                // IPV6_MULTICAST_ALL is Linux 4.20+; older kernels deliver more, which
                // validation discards anyway.
                let _ = socket.set_multicast_all_v6(false);
                socket.join_multicast_v6(&VRRP_GROUP_V6, ifindex)?;
                socket.set_recv_hoplimit_v6(true)?;
                enable(&socket, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO)?;
            }
        }
        // Room for bursts; the XDP fast path is what makes a full queue harmless.
        let _ = socket.set_recv_buffer_size(1 << 20);
        // SAFETY: the socket is owned by the AsyncFd from here on, so its fd stays open
        // and the same for the AsyncFd's whole life.
        let fd = unsafe { AsyncFd::register(socket) }?;
        Ok(Self { fd, family })
    }

    /// Waits for the next datagram, read through `buf` (longer datagrams are cut).
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Datagram> {
        loop {
            let mut guard = self.fd.readable().await?;
            let result = guard.try_io(|fd| match self.family {
                AddressFamily::Ipv4 => {
                    // SAFETY: recv only writes initialised bytes into the buffer, and we
                    // only read back the `n` bytes it reports.
                    let uninit = unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) };
                    let n = fd.get_ref().recv(uninit)?;
                    Ok(Datagram::V4(buf[..n.min(buf.len())].to_vec()))
                }
                AddressFamily::Ipv6 => recv_v6(fd.get_ref(), buf),
            });
            match result {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }
}

/// Room for IPV6_PKTINFO and IPV6_HOPLIMIT (32 + 24 bytes on 64-bit) and then some;
/// u64 so the buffer has cmsghdr's alignment.
const CONTROL_WORDS: usize = 16;

fn recv_v6(socket: &Socket, buf: &mut [u8]) -> io::Result<Datagram> {
    // SAFETY: all-zero is a valid sockaddr_in6 and a valid control buffer.
    let mut from: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    let mut control = [0u64; CONTROL_WORDS];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: all-zero is a valid msghdr; the pointers set below outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut from as *mut libc::sockaddr_in6).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: a valid fd and a msghdr whose buffers are live and of the lengths given.
    let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let len = (n as usize).min(buf.len());
    let src = ipv6_source(&from, msg.msg_namelen as usize)
        .ok_or_else(|| io::Error::other("recvmsg gave no IPv6 source address"))?;
    let control_len = (msg.msg_controllen as usize).min(std::mem::size_of_val(&control));
    // SAFETY: the u64 array is plain bytes; the view covers only its own memory.
    let control_bytes = unsafe {
        std::slice::from_raw_parts(
            control.as_ptr().cast::<u8>(),
            std::mem::size_of_val(&control),
        )
    };
    let ancillary = Ipv6Ancillary::parse(&control_bytes[..control_len]);
    Ok(Datagram::V6 {
        src,
        dst: ancillary.dst,
        hop_limit: ancillary.hop_limit,
        payload: buf[..len].to_vec(),
    })
}

/// The address of a `sockaddr_in6` that `recvmsg` filled `len` bytes of.
fn ipv6_source(addr: &libc::sockaddr_in6, len: usize) -> Option<Ipv6Addr> {
    (len >= std::mem::size_of::<libc::sockaddr_in6>()
        && i32::from(addr.sin6_family) == libc::AF_INET6)
        .then(|| Ipv6Addr::from(addr.sin6_addr.s6_addr))
}

/// What the IPv6 control messages of one datagram say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Ipv6Ancillary {
    dst: Option<Ipv6Addr>,
    hop_limit: Option<u8>,
}

impl Ipv6Ancillary {
    /// Walks the control messages (`struct cmsghdr` then data, each aligned to the
    /// native word, as CMSG_FIRSTHDR / CMSG_NXTHDR do) without trusting a length: a
    /// message that runs past the buffer ends the walk. Hand-written because socket2
    /// has no ancillary-data API and these two fixed-layout messages do not justify
    /// pulling in nix for its `recvmsg`.
    fn parse(control: &[u8]) -> Ipv6Ancillary {
        const WORD: usize = std::mem::size_of::<usize>();
        let align = |n: usize| n.div_ceil(WORD) * WORD;
        let header_len = align(std::mem::size_of::<libc::cmsghdr>());
        let mut out = Ipv6Ancillary::default();
        let mut offset = 0;
        while let Some(header) = control.get(offset..offset + header_len) {
            let mut len_bytes = [0u8; WORD];
            len_bytes.copy_from_slice(&header[..WORD]);
            let cmsg_len = usize::from_ne_bytes(len_bytes);
            let int_at = |at: usize| {
                let mut b = [0u8; 4];
                b.copy_from_slice(&header[at..at + 4]);
                i32::from_ne_bytes(b)
            };
            let (level, kind) = (int_at(WORD), int_at(WORD + 4));
            let start = offset + header_len;
            let Some(data) = cmsg_len
                .checked_sub(header_len)
                .and_then(|data_len| start.checked_add(data_len))
                .and_then(|end| control.get(start..end))
            else {
                break;
            };
            match (level, kind) {
                (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => {
                    if let Some(value) = data.get(..4) {
                        let value = i32::from_ne_bytes([value[0], value[1], value[2], value[3]]);
                        out.hop_limit = u8::try_from(value).ok();
                    }
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                    // struct in6_pktinfo { struct in6_addr ipi6_addr; int ipi6_ifindex; }
                    if let Some(addr) = data.get(..16).and_then(|a| <[u8; 16]>::try_from(a).ok()) {
                        out.dst = Some(Ipv6Addr::from(addr));
                    }
                }
                _ => {}
            }
            // `cmsg_len` fit in the buffer (checked above), so this cannot overflow.
            offset += align(cmsg_len).max(header_len);
        }
        out
    }
}

/// Sends adverts from one source address out of one interface.
#[derive(Debug)]
pub struct TxSocket {
    socket: Socket,
    source: IpAddr,
    ifindex: u32,
}

impl TxSocket {
    /// Opens a send socket on `interface` with source address `source` (IPv4 or IPv6;
    /// an IPv6 link-local source is bound with `ifindex` as its scope).
    pub fn open(interface: &str, ifindex: u32, source: IpAddr) -> io::Result<Self> {
        let socket = raw(AddressFamily::of(source))?;
        // BPF_RET|BPF_K 0: accept no incoming datagram on this socket.
        socket.attach_filter(&[SockFilter::new(0x06, 0, 0, 0)])?;
        socket.bind_device(Some(interface.as_bytes()))?;
        let index = NonZeroU32::new(ifindex);
        match source {
            IpAddr::V4(v4) => {
                socket.bind(&SockAddr::from(SocketAddrV4::new(v4, 0)))?;
                socket.set_multicast_ttl_v4(VRRP_TTL)?;
                socket.set_ttl_v4(VRRP_TTL)?;
                socket.set_tos_v4(TOS_INTERNET_CONTROL)?;
                socket.set_multicast_loop_v4(false)?;
                socket.set_multicast_if_v4(&v4)?;
                if index.is_some() {
                    socket.bind_device_by_index_v4(index)?;
                }
            }
            IpAddr::V6(v6) => {
                // A link-local address that is still tentative (DAD running after the
                // link came up) cannot be bound otherwise; adverts sent meanwhile still
                // carry it, which is the address the router will have. (IPV6_FREEBIND
                // is Linux 4.15+; without it such a bind fails with EADDRNOTAVAIL.)
                let _ = socket.set_freebind_v6(true);
                socket.bind(&SockAddr::from(SocketAddrV6::new(
                    v6,
                    0,
                    0,
                    scope(v6, ifindex),
                )))?;
                socket.set_multicast_hops_v6(VRRP_TTL)?;
                socket.set_unicast_hops_v6(VRRP_TTL)?;
                socket.set_tclass_v6(TOS_INTERNET_CONTROL)?;
                socket.set_multicast_loop_v6(false)?;
                socket.set_multicast_if_v6(ifindex)?;
                if index.is_some() {
                    socket.bind_device_by_index_v6(index)?;
                }
            }
        }
        Ok(Self {
            socket,
            source,
            ifindex,
        })
    }

    /// The source address adverts leave with.
    pub fn source(&self) -> IpAddr {
        self.source
    }

    /// Sends one VRRP message (no IP header) to `destination`, which must be of the
    /// source's family.
    pub fn send(&self, payload: &[u8], destination: IpAddr) -> io::Result<()> {
        let to = match destination {
            IpAddr::V4(v4) => SocketAddr::V4(SocketAddrV4::new(v4, 0)),
            IpAddr::V6(v6) => SocketAddr::V6(SocketAddrV6::new(v6, 0, 0, scope(v6, self.ifindex))),
        };
        let sent = self.socket.send_to(payload, &SockAddr::from(to))?;
        if sent != payload.len() {
            return Err(io::Error::other(format!(
                "short send: {sent} of {} bytes",
                payload.len()
            )));
        }
        Ok(())
    }
}

/// The scope id an IPv6 address needs on interface `ifindex`: the interface for
/// link-local unicast and link-scope multicast, none otherwise.
fn scope(address: Ipv6Addr, ifindex: u32) -> u32 {
    if address.is_unicast_link_local()
        || address.is_multicast() && address.segments()[0] & 0x000f == 2
    {
        ifindex
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One control message as the kernel lays it out (header, data, padding to a word).
    fn cmsg(level: i32, kind: i32, data: &[u8]) -> Vec<u8> {
        const WORD: usize = std::mem::size_of::<usize>();
        let header_len = std::mem::size_of::<libc::cmsghdr>().div_ceil(WORD) * WORD;
        let mut out = Vec::new();
        out.extend_from_slice(&(header_len + data.len()).to_ne_bytes());
        out.extend_from_slice(&level.to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.resize(header_len, 0);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(WORD) * WORD, 0);
        out
    }

    fn pktinfo(addr: Ipv6Addr, ifindex: i32) -> Vec<u8> {
        let mut data = addr.octets().to_vec();
        data.extend_from_slice(&ifindex.to_ne_bytes());
        data
    }

    #[test]
    fn control_messages_give_destination_and_hop_limit() {
        let mut control = cmsg(
            libc::IPPROTO_IPV6,
            libc::IPV6_PKTINFO,
            &pktinfo(VRRP_GROUP_V6, 3),
        );
        control.extend(cmsg(
            libc::IPPROTO_IPV6,
            libc::IPV6_HOPLIMIT,
            &255i32.to_ne_bytes(),
        ));
        assert_eq!(
            Ipv6Ancillary::parse(&control),
            Ipv6Ancillary {
                dst: Some(VRRP_GROUP_V6),
                hop_limit: Some(255),
            }
        );
    }

    #[test]
    fn control_messages_other_kinds_and_garbage_are_ignored() {
        assert_eq!(Ipv6Ancillary::parse(&[]), Ipv6Ancillary::default());
        // An unrelated message first, then the hop limit.
        let mut control = cmsg(libc::SOL_SOCKET, libc::SO_TIMESTAMP, &[0u8; 16]);
        control.extend(cmsg(
            libc::IPPROTO_IPV6,
            libc::IPV6_HOPLIMIT,
            &64i32.to_ne_bytes(),
        ));
        assert_eq!(Ipv6Ancillary::parse(&control).hop_limit, Some(64));
        for cut in 0..control.len() {
            let _ = Ipv6Ancillary::parse(&control[..cut]);
        }
        // A length running past the buffer ends the walk, and a zero length does not
        // loop forever.
        for bad_len in [1000usize, 0, usize::MAX, usize::MAX - 7] {
            let mut bad = cmsg(
                libc::IPPROTO_IPV6,
                libc::IPV6_HOPLIMIT,
                &255i32.to_ne_bytes(),
            );
            bad[..std::mem::size_of::<usize>()].copy_from_slice(&bad_len.to_ne_bytes());
            assert_eq!(Ipv6Ancillary::parse(&bad), Ipv6Ancillary::default());
        }
    }

    #[test]
    fn hop_limit_out_of_range_is_absent() {
        let control = cmsg(
            libc::IPPROTO_IPV6,
            libc::IPV6_HOPLIMIT,
            &(-1i32).to_ne_bytes(),
        );
        assert_eq!(Ipv6Ancillary::parse(&control).hop_limit, None);
    }

    #[test]
    fn source_address_needs_a_full_ipv6_sockaddr() {
        // SAFETY: all-zero is a valid sockaddr_in6.
        let mut addr: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
        let ll = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
        addr.sin6_family = libc::AF_INET6 as libc::sa_family_t;
        addr.sin6_addr.s6_addr = ll.octets();
        let full = std::mem::size_of::<libc::sockaddr_in6>();
        assert_eq!(ipv6_source(&addr, full), Some(ll));
        assert_eq!(ipv6_source(&addr, full - 1), None);
        addr.sin6_family = libc::AF_INET as libc::sa_family_t;
        assert_eq!(ipv6_source(&addr, full), None);
    }

    #[test]
    fn ipv6_datagram_without_control_is_refused() {
        let datagram = |dst| Datagram::V6 {
            src: Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
            dst,
            hop_limit: Some(255),
            payload: vec![0x31],
        };
        assert_eq!(
            datagram(None).split(),
            Err(DatagramError::MissingIpv6Control)
        );
        let complete = datagram(Some(VRRP_GROUP_V6));
        let (meta, payload) = complete.split().expect("complete");
        assert_eq!(meta.dst, IpAddr::V6(VRRP_GROUP_V6));
        assert_eq!(meta.ttl_or_hop_limit, 255);
        assert_eq!(payload, &[0x31]);
    }

    #[test]
    fn scopes() {
        let ll = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
        assert_eq!(scope(ll, 7), 7);
        assert_eq!(scope(VRRP_GROUP_V6, 7), 7);
        assert_eq!(scope(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 7), 0);
        assert_eq!(scope(Ipv6Addr::new(0xff05, 0, 0, 0, 0, 0, 0, 0x12), 7), 0);
    }
}
