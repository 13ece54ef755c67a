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
//!   `IPV6_HOPLIMIT` control messages (read with nix's `recvmsg`).
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

use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrIn6, recvmsg, setsockopt, sockopt};
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
                setsockopt(&socket, sockopt::Ipv6RecvPacketInfo, &true)?;
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

/// Reads one datagram from an IPv6 socket with `IPV6_RECVPKTINFO` and
/// `IPV6_RECVHOPLIMIT` on.
fn recv_v6(socket: &Socket, buf: &mut [u8]) -> io::Result<Datagram> {
    let mut control = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int);
    let mut iov = [io::IoSliceMut::new(buf)];
    let message = recvmsg::<SockaddrIn6>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut control),
        MsgFlags::empty(),
    )?;
    let src = message
        .address
        .map(|from| from.ip())
        .ok_or_else(|| io::Error::other("recvmsg gave no IPv6 source address"))?;
    // A truncated control buffer (MSG_CTRUNC, which nix reports as an error) leaves the
    // destination and hop limit unknown: `Datagram::split` then refuses the datagram.
    let ancillary = message
        .cmsgs()
        .map(Ipv6Ancillary::from_messages)
        .unwrap_or_default();
    let len = message.bytes.min(buf.len());
    Ok(Datagram::V6 {
        src,
        dst: ancillary.dst,
        hop_limit: ancillary.hop_limit,
        payload: buf[..len].to_vec(),
    })
}

/// What the IPv6 control messages of one datagram say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Ipv6Ancillary {
    dst: Option<Ipv6Addr>,
    hop_limit: Option<u8>,
}

impl Ipv6Ancillary {
    /// Picks the destination (`IPV6_PKTINFO`) and hop limit (`IPV6_HOPLIMIT`) out of the
    /// control messages; others are ignored, and a hop limit outside 0..=255 is absent.
    fn from_messages(messages: impl IntoIterator<Item = ControlMessageOwned>) -> Self {
        let mut out = Ipv6Ancillary::default();
        for message in messages {
            match message {
                ControlMessageOwned::Ipv6HopLimit(hop_limit) => {
                    out.hop_limit = u8::try_from(hop_limit).ok();
                }
                ControlMessageOwned::Ipv6PacketInfo(info) => {
                    out.dst = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr));
                }
                _ => {}
            }
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

/// IP_MULTICAST_IF by interface index and source address (`struct ip_mreqn`). By
/// address alone the kernel picks the interface holding it, which is not the bound
/// one when adverts leave from a VMAC with the parent's address: EINVAL.
fn set_multicast_if_v4(socket: &Socket, ifindex: u32, source: Ipv4Addr) -> io::Result<()> {
    let request = libc::ip_mreqn {
        imr_multiaddr: libc::in_addr { s_addr: 0 },
        imr_address: libc::in_addr {
            s_addr: u32::from_ne_bytes(source.octets()),
        },
        imr_ifindex: i32::try_from(ifindex)
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?,
    };
    // SAFETY: `request` is a valid ip_mreqn that outlives the call, and the length
    // passed is its size.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_IF,
            (&raw const request).cast(),
            std::mem::size_of::<libc::ip_mreqn>() as libc::socklen_t,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
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
                set_multicast_if_v4(&socket, ifindex, v4)?;
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

    fn pktinfo(addr: Ipv6Addr, ifindex: u32) -> ControlMessageOwned {
        ControlMessageOwned::Ipv6PacketInfo(libc::in6_pktinfo {
            ipi6_addr: libc::in6_addr {
                s6_addr: addr.octets(),
            },
            ipi6_ifindex: ifindex,
        })
    }

    #[test]
    fn control_messages_give_destination_and_hop_limit() {
        let messages = [
            pktinfo(VRRP_GROUP_V6, 3),
            ControlMessageOwned::Ipv6HopLimit(255),
        ];
        assert_eq!(
            Ipv6Ancillary::from_messages(messages),
            Ipv6Ancillary {
                dst: Some(VRRP_GROUP_V6),
                hop_limit: Some(255),
            }
        );
    }

    #[test]
    fn control_messages_of_other_kinds_are_ignored() {
        assert_eq!(Ipv6Ancillary::from_messages([]), Ipv6Ancillary::default());
        let messages = [
            ControlMessageOwned::Ipv4Ttl(1),
            ControlMessageOwned::Ipv6HopLimit(64),
        ];
        assert_eq!(
            Ipv6Ancillary::from_messages(messages),
            Ipv6Ancillary {
                dst: None,
                hop_limit: Some(64),
            }
        );
    }

    #[test]
    fn hop_limit_out_of_range_is_absent() {
        for bad in [-1, 256] {
            let messages = [ControlMessageOwned::Ipv6HopLimit(bad)];
            assert_eq!(Ipv6Ancillary::from_messages(messages).hop_limit, None);
        }
    }

    /// The whole receive path against the kernel: a UDP datagram over ::1 carries the
    /// same control messages as a VRRP one on a raw socket (which needs root).
    #[test]
    fn recv_v6_reads_source_destination_and_hop_limit_from_the_kernel() {
        let udp = || Socket::new(Domain::IPV6, Type::DGRAM, None).expect("UDP socket");
        let rx = udp();
        rx.bind(&SockAddr::from(SocketAddrV6::new(
            Ipv6Addr::LOCALHOST,
            0,
            0,
            0,
        )))
        .expect("bind [::1]:0");
        rx.set_recv_hoplimit_v6(true).expect("IPV6_RECVHOPLIMIT");
        setsockopt(&rx, sockopt::Ipv6RecvPacketInfo, &true).expect("IPV6_RECVPKTINFO");
        let tx = udp();
        tx.set_unicast_hops_v6(7).expect("hop limit");
        let to = rx.local_addr().expect("local address");
        tx.send_to(&[0x31, 0x2a], &to).expect("send");

        let mut buf = [0u8; 64];
        assert_eq!(
            recv_v6(&rx, &mut buf).expect("recv"),
            Datagram::V6 {
                src: Ipv6Addr::LOCALHOST,
                dst: Some(Ipv6Addr::LOCALHOST),
                hop_limit: Some(7),
                payload: vec![0x31, 0x2a],
            }
        );
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
