//! BFD (RFC 5880, single-hop RFC 5881), sans-IO like the VRRP core: no tokio, libc,
//! netlink or aya, and never `Instant::now()`.
//!
//! - [`wire`]: the control packet (§4.1): zero-copy view, `ControlRepr` parse / emit,
//!   the packet-level reception checks of §6.8.6.
//! - [`session`]: one session's state machine, timers, Poll / Final, jitter.
//! - [`receive`]: what a datagram must satisfy before a session sees it: the RFC 5881
//!   TTL check, the wire checks, and the §6.8.6 demultiplexing by Your Discriminator or,
//!   when that is zero, by source address.

pub mod session;
pub mod wire;

use std::net::IpAddr;

pub use session::{Action, Input, Session, SessionConfig};
pub use wire::{ControlRepr, Diagnostic, SessionState};

/// What the driver knows of a session for demultiplexing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionKey {
    /// bfd.LocalDiscr.
    pub local_discriminator: u32,
    /// The neighbour's address (keepalived's `neighbor_ip`).
    pub neighbor: IpAddr,
    /// Lowest TTL / hop limit accepted: 255 for single hop (RFC 5881 §5), less with
    /// keepalived's `max_hops`.
    pub min_ttl: u8,
}

/// Why a received datagram reached no session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Discard {
    /// RFC 5881 §5: "the TTL or Hop Limit ... MUST be 255" (GTSM): the packet came from
    /// beyond the link.
    #[error("TTL/hop limit {ttl}, below {min_ttl}")]
    Ttl {
        /// The received TTL or hop limit (0 when the kernel did not report it).
        ttl: u8,
        /// The session's minimum.
        min_ttl: u8,
    },
    /// RFC 5881 §4: the source port must be in 49152..=65535.
    #[error("source port {port} outside 49152..=65535")]
    SourcePort {
        /// The UDP source port.
        port: u16,
    },
    /// A packet-level check of RFC 5880 §6.8.6.
    #[error(transparent)]
    Wire(#[from] wire::Error),
    /// RFC 5880 §6.8.6: "If the Your Discriminator field is nonzero, it MUST be used to
    /// select the session with which this BFD packet is associated. If no session is
    /// found, the packet MUST be discarded."
    #[error("no session with discriminator {your_discriminator}")]
    NoSession {
        /// The Your Discriminator field.
        your_discriminator: u32,
    },
    /// RFC 5880 §6.8.6: "If the Your Discriminator field is zero, the session MUST be
    /// selected based on some combination of other fields, possibly including source
    /// addressing information": RFC 5881 §3 single-hop uses the source address.
    #[error("no session with neighbor {src}")]
    UnknownNeighbor {
        /// The IP source.
        src: IpAddr,
    },
}

/// RFC 5880 §6.8.6 / RFC 5881: checks a received datagram and finds its session among
/// `sessions`. Returns the index and the decoded packet.
///
/// The TTL check (RFC 5881 §5) comes last because its bound is the session's
/// (`max_hops`); the packet checks before it are cheap and allocate nothing.
pub fn receive(
    sessions: &[SessionKey],
    src: IpAddr,
    source_port: u16,
    ttl: Option<u8>,
    payload: &[u8],
) -> Result<(usize, ControlRepr), Discard> {
    if !wire::SOURCE_PORTS.contains(&source_port) {
        return Err(Discard::SourcePort { port: source_port });
    }
    let packet = ControlRepr::parse_bytes(payload)?;
    let index = select_session(sessions, &packet, src)?;
    let min_ttl = sessions.get(index).map_or(wire::TTL, |s| s.min_ttl);
    // RFC 5881 §5: "If BFD authentication is not in use on a session, all BFD Control
    // packets for the session MUST be sent with a Time to Live (TTL) or Hop Limit value
    // of 255. All received BFD Control packets that are demultiplexed to the session MUST
    // be discarded if the received TTL or Hop Limit is not equal to 255."
    match ttl {
        Some(ttl) if ttl >= min_ttl => Ok((index, packet)),
        other => Err(Discard::Ttl {
            ttl: other.unwrap_or(0),
            min_ttl,
        }),
    }
}

/// The §6.8.6 session selection: by Your Discriminator when nonzero (and the source
/// must still be that session's neighbour: RFC 5881 §3 single-hop sessions are bound to
/// an address pair), else by source address.
pub fn select_session(
    sessions: &[SessionKey],
    packet: &ControlRepr,
    src: IpAddr,
) -> Result<usize, Discard> {
    let src = canonical(src);
    if packet.your_discriminator != 0 {
        return sessions
            .iter()
            .position(|s| {
                s.local_discriminator == packet.your_discriminator && canonical(s.neighbor) == src
            })
            .ok_or(Discard::NoSession {
                your_discriminator: packet.your_discriminator,
            });
    }
    sessions
        .iter()
        .position(|s| canonical(s.neighbor) == src)
        .ok_or(Discard::UnknownNeighbor { src })
}

/// IPv4-mapped IPv6 addresses (a dual-stack socket's view of IPv4) as IPv4.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::Flags;

    fn packet(your: u32, state: SessionState) -> ControlRepr {
        ControlRepr {
            diagnostic: Diagnostic::None,
            state,
            flags: Flags::default(),
            detect_mult: 3,
            my_discriminator: 99,
            your_discriminator: your,
            desired_min_tx: 10_000,
            required_min_rx: 10_000,
            required_min_echo_rx: 0,
        }
    }

    fn keys() -> Vec<SessionKey> {
        vec![
            SessionKey {
                local_discriminator: 1,
                neighbor: "192.0.2.1".parse().expect("address"),
                min_ttl: 255,
            },
            SessionKey {
                local_discriminator: 2,
                neighbor: "2001:db8::1".parse().expect("address"),
                min_ttl: 254,
            },
        ]
    }

    /// RFC 5880 §6.8.6 demultiplexing: Your Discriminator first, else the source.
    #[test]
    fn demux_by_discriminator_then_source_6_8_6() {
        let v4: IpAddr = "192.0.2.1".parse().expect("address");
        let v6: IpAddr = "2001:db8::1".parse().expect("address");
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("address");
        assert_eq!(
            select_session(&keys(), &packet(2, SessionState::Up), v6),
            Ok(1)
        );
        assert_eq!(
            select_session(&keys(), &packet(0, SessionState::Down), mapped),
            Ok(0)
        );
        assert_eq!(
            select_session(&keys(), &packet(7, SessionState::Up), v4),
            Err(Discard::NoSession {
                your_discriminator: 7
            })
        );
        // A known discriminator from the wrong neighbour is not that session's.
        assert_eq!(
            select_session(&keys(), &packet(1, SessionState::Up), v6),
            Err(Discard::NoSession {
                your_discriminator: 1
            })
        );
        let stranger: IpAddr = "198.51.100.9".parse().expect("address");
        assert_eq!(
            select_session(&keys(), &packet(0, SessionState::Down), stranger),
            Err(Discard::UnknownNeighbor { src: stranger })
        );
    }

    /// RFC 5881 §5 (TTL 255) and §4 (source port) come before parsing.
    #[test]
    fn gtsm_and_source_port_rfc5881() {
        let v4: IpAddr = "192.0.2.1".parse().expect("address");
        let bytes = packet(1, SessionState::Up).to_bytes();
        assert_eq!(
            receive(&keys(), v4, 49152, Some(254), &bytes),
            Err(Discard::Ttl {
                ttl: 254,
                min_ttl: 255
            })
        );
        assert_eq!(
            receive(&keys(), v4, 49152, None, &bytes),
            Err(Discard::Ttl {
                ttl: 0,
                min_ttl: 255
            })
        );
        assert_eq!(
            receive(&keys(), v4, 3784, Some(255), &bytes),
            Err(Discard::SourcePort { port: 3784 })
        );
        assert_eq!(
            receive(&keys(), v4, 65535, Some(255), &bytes[..20]),
            Err(Discard::Wire(wire::Error::Truncated { len: 20 }))
        );
        assert_eq!(
            receive(&keys(), v4, 49152, Some(255), &bytes).map(|(i, _)| i),
            Ok(0)
        );
        // A session with max_hops 1 takes 254.
        let v6: IpAddr = "2001:db8::1".parse().expect("address");
        let bytes = packet(2, SessionState::Up).to_bytes();
        assert_eq!(
            receive(&keys(), v6, 49152, Some(254), &bytes).map(|(i, _)| i),
            Ok(1)
        );
    }
}
