//! Raw IP protocol 112 sockets for VRRP adverts (IPv4).
//!
//! One receive socket per interface, bound to it and joined to 224.0.0.18, hands every
//! VRRP datagram on that link (multicast or unicast to us) to the daemon with its IP
//! header, which validation needs (TTL, source, destination for the v3 checksum).
//!
//! One send socket per (interface, source address): the kernel builds the IP header with
//! TTL 255 (RFC 5798 §5.1.1.3) and TOS "internetwork control" like keepalived. A raw
//! socket would also queue every matching incoming datagram, so the send socket carries
//! a classic BPF filter that accepts nothing: under a flood it cannot fill up.

use std::io;
use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::num::NonZeroU32;

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, SockFilter, Socket, Type};
use tokio::io::unix::AsyncFd;

/// IP protocol number of VRRP (RFC 5798 §5.1.1.4).
pub const IPPROTO_VRRP: i32 = 112;
/// The VRRP IPv4 multicast group (RFC 5798 §5.1.1.2).
pub const VRRP_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// TTL / hop limit on every advert (RFC 5798 §5.1.1.3).
pub const VRRP_TTL: u32 = 255;
/// IPTOS_PREC_INTERNETCONTROL, as keepalived and FRR send.
const TOS_INTERNET_CONTROL: u32 = 0xc0;

fn raw_v4() -> io::Result<Socket> {
    let socket = Socket::new(
        Domain::IPV4,
        Type::RAW.cloexec(),
        Some(Protocol::from(IPPROTO_VRRP)),
    )?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// Receives every VRRP datagram arriving on one interface.
#[derive(Debug)]
pub struct RxSocketV4 {
    fd: AsyncFd<Socket>,
}

impl RxSocketV4 {
    /// Opens the socket on `interface` (index `ifindex`) and joins 224.0.0.18 there.
    pub fn open(interface: &str, ifindex: u32) -> io::Result<Self> {
        let socket = raw_v4()?;
        socket.bind_device(Some(interface.as_bytes()))?;
        // Only the groups this socket joined, not every group any socket joined.
        socket.set_multicast_all_v4(false)?;
        socket.join_multicast_v4_n(&VRRP_GROUP_V4, &InterfaceIndexOrAddress::Index(ifindex))?;
        // Room for bursts; the XDP fast path is what makes a full queue harmless.
        let _ = socket.set_recv_buffer_size(1 << 20);
        // SAFETY: the socket is owned by the AsyncFd from here on, so its fd stays open
        // and the same for the AsyncFd's whole life.
        let fd = unsafe { AsyncFd::register(socket) }?;
        Ok(Self { fd })
    }

    /// Waits for the next datagram; returns its length (IPv4 header included).
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| {
                // SAFETY: recv only writes initialised bytes into the buffer, and we only
                // read back the `n` bytes it reports.
                let uninit = unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) };
                fd.get_ref().recv(uninit)
            }) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }
}

/// Sends adverts from one source address out of one interface.
#[derive(Debug)]
pub struct TxSocketV4 {
    socket: Socket,
    source: Ipv4Addr,
}

impl TxSocketV4 {
    /// Opens a send socket on `interface` with source address `source`.
    pub fn open(interface: &str, ifindex: u32, source: Ipv4Addr) -> io::Result<Self> {
        let socket = raw_v4()?;
        // BPF_RET|BPF_K 0: accept no incoming datagram on this socket.
        socket.attach_filter(&[SockFilter::new(0x06, 0, 0, 0)])?;
        socket.bind_device(Some(interface.as_bytes()))?;
        socket.bind(&SockAddr::from(SocketAddrV4::new(source, 0)))?;
        socket.set_multicast_ttl_v4(VRRP_TTL)?;
        socket.set_ttl_v4(VRRP_TTL)?;
        socket.set_tos_v4(TOS_INTERNET_CONTROL)?;
        socket.set_multicast_loop_v4(false)?;
        socket.set_multicast_if_v4(&source)?;
        if let Some(index) = NonZeroU32::new(ifindex) {
            socket.bind_device_by_index_v4(Some(index))?;
        }
        Ok(Self { socket, source })
    }

    /// The source address adverts leave with.
    pub fn source(&self) -> Ipv4Addr {
        self.source
    }

    /// Sends one VRRP message (no IP header) to `destination`.
    pub fn send(&self, payload: &[u8], destination: Ipv4Addr) -> io::Result<()> {
        let sent = self
            .socket
            .send_to(payload, &SockAddr::from(SocketAddrV4::new(destination, 0)))?;
        if sent != payload.len() {
            return Err(io::Error::other(format!(
                "short send: {sent} of {} bytes",
                payload.len()
            )));
        }
        Ok(())
    }
}
