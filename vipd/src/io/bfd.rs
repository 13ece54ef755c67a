//! UDP sockets for BFD control packets (RFC 5881 single hop), IPv4 and IPv6.
//!
//! - One receive socket per family, bound to UDP port 3784 on every address, reports
//!   each datagram's source and TTL / hop limit (`IP_RECVTTL`, `IPV6_RECVHOPLIMIT`) so
//!   the core can apply the RFC 5881 §5 check (GTSM).
//! - One send socket per session, bound to a source port in 49152..=65535 that stays the
//!   session's for its life (RFC 5881 §4: "The same UDP source port number MUST be used
//!   for all BFD Control packets associated with a particular session"), with TTL / hop
//!   limit 255 (§5) and TOS "internetwork control" (as FRR's bfdd). Sending is a
//!   non-blocking `send_to` from the BFD thread (`daemon/bfd_engine.rs`, real-time when
//!   the daemon is).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::proto::bfd::wire;

/// IPTOS_PREC_INTERNETCONTROL (TOS, or IPv6 traffic class), as bfdd sends.
const TOS_INTERNET_CONTROL: u32 = 0xc0;

/// One received datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BfdDatagram {
    /// IP source and UDP source port.
    pub src: SocketAddr,
    /// TTL / hop limit; `None` when the kernel did not say (then the check fails).
    pub ttl: Option<u8>,
    /// The UDP payload.
    pub payload: Vec<u8>,
}

/// Receives every BFD control packet of one family sent to this host. Non-blocking: the
/// BFD thread polls its fd and drains it with [`BfdRxSocket::try_recv`].
#[derive(Debug)]
pub struct BfdRxSocket {
    socket: Socket,
}

impl BfdRxSocket {
    /// Binds UDP 3784 on every address of the family (`v6`: IPv6 only, so an IPv4
    /// socket can be bound beside it).
    pub fn open(v6: bool) -> io::Result<Self> {
        let socket = if v6 {
            let socket = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
            socket.set_only_v6(true)?;
            socket.set_recv_hoplimit_v6(true)?;
            socket.bind(&SockAddr::from(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                wire::CONTROL_PORT,
            )))?;
            socket
        } else {
            let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
            setsockopt(&socket, sockopt::Ipv4RecvTtl, &true)?;
            socket.bind(&SockAddr::from(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                wire::CONTROL_PORT,
            )))?;
            socket
        };
        socket.set_nonblocking(true)?;
        // Room for bursts: at 3 ms per session the queue must outlast a busy loop turn.
        let _ = socket.set_recv_buffer_size(1 << 20);
        Ok(Self { socket })
    }

    /// The next queued datagram (longer than `buf` is cut), or `None` when the queue is
    /// empty.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<Option<BfdDatagram>> {
        match recv_with_ttl(&self.socket, buf) {
            Ok(datagram) => Ok(Some(datagram)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl AsRawFd for BfdRxSocket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.socket.as_raw_fd()
    }
}

fn recv_with_ttl(socket: &Socket, buf: &mut [u8]) -> io::Result<BfdDatagram> {
    let mut control = nix::cmsg_space!(libc::c_int);
    let mut iov = [io::IoSliceMut::new(buf)];
    let message = recvmsg::<SockaddrStorage>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut control),
        MsgFlags::empty(),
    )?;
    let src = message
        .address
        .and_then(|from| {
            if let Some(v4) = from.as_sockaddr_in() {
                Some(SocketAddr::new(IpAddr::V4(v4.ip()), v4.port()))
            } else {
                from.as_sockaddr_in6()
                    .map(|v6| SocketAddr::new(IpAddr::V6(v6.ip()), v6.port()))
            }
        })
        .ok_or_else(|| io::Error::other("recvmsg gave no source address"))?;
    let mut ttl = None;
    if let Ok(messages) = message.cmsgs() {
        for cmsg in messages {
            match cmsg {
                ControlMessageOwned::Ipv4Ttl(value) | ControlMessageOwned::Ipv6HopLimit(value) => {
                    ttl = u8::try_from(value).ok();
                }
                _ => {}
            }
        }
    }
    let len = message.bytes;
    Ok(BfdDatagram {
        src,
        ttl,
        payload: buf[..len.min(buf.len())].to_vec(),
    })
}

/// Sends one session's control packets to its neighbour.
#[derive(Debug)]
pub struct BfdTxSocket {
    socket: Socket,
    neighbor: SockAddr,
    port: u16,
}

impl BfdTxSocket {
    /// Opens the socket for a session to `neighbor`, from `source` when given, with
    /// TTL / hop limit `ttl`. The source port is the first free one from
    /// `preferred_port` on, within 49152..=65535 (RFC 5881 §4).
    pub fn open(
        neighbor: IpAddr,
        source: Option<IpAddr>,
        ttl: u8,
        preferred_port: u16,
    ) -> io::Result<Self> {
        let (domain, unspecified) = match neighbor {
            IpAddr::V4(_) => (Domain::IPV4, IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            IpAddr::V6(_) => (Domain::IPV6, IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        };
        let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
        match neighbor {
            IpAddr::V4(_) => {
                socket.set_ttl_v4(u32::from(ttl))?;
                let _ = socket.set_tos_v4(TOS_INTERNET_CONTROL);
            }
            IpAddr::V6(_) => {
                socket.set_only_v6(true)?;
                socket.set_unicast_hops_v6(u32::from(ttl))?;
                let _ = socket.set_tclass_v6(TOS_INTERNET_CONTROL);
            }
        }
        socket.set_nonblocking(true)?;
        let local = source.unwrap_or(unspecified);
        let ports = wire::SOURCE_PORTS;
        let span = u32::from(*ports.end() - *ports.start()) + 1;
        let first = u32::from(preferred_port.clamp(*ports.start(), *ports.end()) - *ports.start());
        let mut last_error = None;
        for step in 0..64 {
            let port = *ports.start() + u16::try_from((first + step) % span).unwrap_or(0);
            match socket.bind(&SockAddr::from(SocketAddr::new(local, port))) {
                Ok(()) => {
                    return Ok(Self {
                        socket,
                        neighbor: SockAddr::from(SocketAddr::new(neighbor, wire::CONTROL_PORT)),
                        port,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("no free BFD source port")))
    }

    /// The session's source port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Sends one packet (non-blocking; a full queue is an error, counted by the caller).
    pub fn send(&self, packet: &[u8]) -> io::Result<()> {
        self.socket.send_to(packet, &self.neighbor).map(|_| ())
    }
}
