//! BFD Control packet wire format (RFC 5880 §4.1), carried in UDP (RFC 5881).
//!
//! Sans-IO: bytes in, values out. Follows the split of [`crate::proto::wire`]:
//! - [`Packet`] is a zero-copy view; untrusted bytes enter only through
//!   [`Packet::new_checked`], after which no accessor can panic.
//! - [`ControlRepr`] is the decoded form: [`ControlRepr::parse`] runs the packet-level
//!   reception checks of RFC 5880 §6.8.6 (those that need no session), in the RFC's
//!   order, one [`Error`] variant each; [`ControlRepr::emit`] writes a packet of
//!   [`ControlRepr::buffer_len`] bytes.
//!
//! The session-level checks (discriminator demultiplexing, authentication in use) are in
//! [`super::session`] and [`super::demux`].

use std::fmt;
use std::time::Duration;

/// The only BFD version (RFC 5880 §4.1).
pub const VERSION: u8 = 1;
/// Length of the mandatory section (RFC 5880 §4.1).
pub const HEADER_LEN: usize = 24;
/// With the A bit, at least the Auth Type and Auth Len bytes follow (RFC 5880 §6.8.6).
pub const MIN_LEN_WITH_AUTH: usize = 26;
/// UDP destination port of single-hop control packets (RFC 5881 §4).
pub const CONTROL_PORT: u16 = 3784;
/// Source ports a single-hop sender must use (RFC 5881 §4).
pub const SOURCE_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;
/// TTL / hop limit of single-hop packets, sent and required on receipt (RFC 5881 §5).
pub const TTL: u8 = 255;

/// Session state (RFC 5880 §4.1 "State (Sta)", §6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// 0: administratively held down.
    AdminDown,
    /// 1: down, or just created.
    Down,
    /// 2: the remote system is communicating; this one is not yet known to hear it.
    Init,
    /// 3: both sides hear each other.
    Up,
}

impl SessionState {
    /// The 2-bit field value.
    pub const fn bits(self) -> u8 {
        match self {
            SessionState::AdminDown => 0,
            SessionState::Down => 1,
            SessionState::Init => 2,
            SessionState::Up => 3,
        }
    }

    /// The state of a 2-bit field value (every value is defined).
    pub const fn from_bits(bits: u8) -> SessionState {
        match bits & 0b11 {
            0 => SessionState::AdminDown,
            1 => SessionState::Down,
            2 => SessionState::Init,
            _ => SessionState::Up,
        }
    }
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SessionState::AdminDown => "AdminDown",
            SessionState::Down => "Down",
            SessionState::Init => "Init",
            SessionState::Up => "Up",
        })
    }
}

/// Diagnostic code (RFC 5880 §4.1 "Diagnostic (Diag)"). Unknown codes are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Diagnostic {
    /// 0
    None,
    /// 1
    ControlDetectionTimeExpired,
    /// 2
    EchoFunctionFailed,
    /// 3
    NeighborSignaledSessionDown,
    /// 4
    ForwardingPlaneReset,
    /// 5
    PathDown,
    /// 6
    ConcatenatedPathDown,
    /// 7
    AdministrativelyDown,
    /// 8
    ReverseConcatenatedPathDown,
    /// 9..=31: reserved.
    Unknown(u8),
}

impl Diagnostic {
    /// The 5-bit field value.
    pub const fn code(self) -> u8 {
        match self {
            Diagnostic::None => 0,
            Diagnostic::ControlDetectionTimeExpired => 1,
            Diagnostic::EchoFunctionFailed => 2,
            Diagnostic::NeighborSignaledSessionDown => 3,
            Diagnostic::ForwardingPlaneReset => 4,
            Diagnostic::PathDown => 5,
            Diagnostic::ConcatenatedPathDown => 6,
            Diagnostic::AdministrativelyDown => 7,
            Diagnostic::ReverseConcatenatedPathDown => 8,
            Diagnostic::Unknown(code) => code & 0x1f,
        }
    }

    /// The diagnostic of a 5-bit field value.
    pub const fn from_code(code: u8) -> Diagnostic {
        match code & 0x1f {
            0 => Diagnostic::None,
            1 => Diagnostic::ControlDetectionTimeExpired,
            2 => Diagnostic::EchoFunctionFailed,
            3 => Diagnostic::NeighborSignaledSessionDown,
            4 => Diagnostic::ForwardingPlaneReset,
            5 => Diagnostic::PathDown,
            6 => Diagnostic::ConcatenatedPathDown,
            7 => Diagnostic::AdministrativelyDown,
            8 => Diagnostic::ReverseConcatenatedPathDown,
            other => Diagnostic::Unknown(other),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diagnostic::None => f.write_str("no diagnostic"),
            Diagnostic::ControlDetectionTimeExpired => {
                f.write_str("control detection time expired")
            }
            Diagnostic::EchoFunctionFailed => f.write_str("echo function failed"),
            Diagnostic::NeighborSignaledSessionDown => {
                f.write_str("neighbor signaled session down")
            }
            Diagnostic::ForwardingPlaneReset => f.write_str("forwarding plane reset"),
            Diagnostic::PathDown => f.write_str("path down"),
            Diagnostic::ConcatenatedPathDown => f.write_str("concatenated path down"),
            Diagnostic::AdministrativelyDown => f.write_str("administratively down"),
            Diagnostic::ReverseConcatenatedPathDown => {
                f.write_str("reverse concatenated path down")
            }
            Diagnostic::Unknown(code) => write!(f, "diagnostic {code}"),
        }
    }
}

/// Why a received packet was discarded before any session saw it (RFC 5880 §6.8.6, in
/// the RFC's order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Fewer bytes than the mandatory section.
    #[error("{len} bytes, shorter than the 24-byte mandatory section")]
    Truncated {
        /// Bytes received.
        len: usize,
    },
    /// RFC 5880 §6.8.6: "If the version number is not correct (1), the packet MUST be
    /// discarded."
    #[error("version {version}, not 1")]
    Version {
        /// The field value.
        version: u8,
    },
    /// RFC 5880 §6.8.6: "If the Length field is less than the minimum correct value (24 if
    /// the A bit is clear, or 26 if the A bit is set), the packet MUST be discarded."
    #[error("length field {length} below the minimum {minimum}")]
    LengthTooShort {
        /// The Length field.
        length: u8,
        /// 24, or 26 with the A bit.
        minimum: usize,
    },
    /// RFC 5880 §6.8.6: "If the Length field is greater than the payload of the
    /// encapsulating protocol, the packet MUST be discarded."
    #[error("length field {length} exceeds the {payload}-byte payload")]
    LengthExceedsPayload {
        /// The Length field.
        length: u8,
        /// Bytes received.
        payload: usize,
    },
    /// RFC 5880 §6.8.6: "If the Detect Mult field is zero, the packet MUST be discarded."
    #[error("detect multiplier 0")]
    DetectMultZero,
    /// RFC 5880 §6.8.6: "If the Multipoint (M) bit is nonzero, the packet MUST be
    /// discarded."
    #[error("multipoint bit set")]
    Multipoint,
    /// RFC 5880 §6.8.6: "If the My Discriminator field is zero, the packet MUST be
    /// discarded."
    #[error("my discriminator 0")]
    MyDiscriminatorZero,
    /// RFC 5880 §6.8.6: "If the Your Discriminator field is zero and the State field is not
    /// Down or AdminDown, the packet MUST be discarded."
    #[error("your discriminator 0 in state {state}")]
    YourDiscriminatorZero {
        /// The State field.
        state: SessionState,
    },
}

mod field {
    pub type Field = core::ops::Range<usize>;

    /// Version (3 bits) and Diagnostic (5 bits).
    pub const VERS_DIAG: usize = 0;
    /// State (2 bits) and the P F C A D M flags.
    pub const STA_FLAGS: usize = 1;
    pub const DETECT_MULT: usize = 2;
    pub const LENGTH: usize = 3;
    pub const MY_DISCRIMINATOR: Field = 4..8;
    pub const YOUR_DISCRIMINATOR: Field = 8..12;
    pub const DESIRED_MIN_TX: Field = 12..16;
    pub const REQUIRED_MIN_RX: Field = 16..20;
    pub const REQUIRED_MIN_ECHO_RX: Field = 20..24;
    pub const AUTH_TYPE: usize = 24;
}

mod flag {
    pub const POLL: u8 = 0x20;
    pub const FINAL: u8 = 0x10;
    pub const CONTROL_PLANE_INDEPENDENT: u8 = 0x08;
    pub const AUTH: u8 = 0x04;
    pub const DEMAND: u8 = 0x02;
    pub const MULTIPOINT: u8 = 0x01;
}

/// A zero-copy view over a BFD Control packet (the UDP payload).
#[derive(Clone, Copy, Debug)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A view without checks; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// A view over untrusted bytes: at least the mandatory section, and as long as the
    /// Length field says (RFC 5880 §6.8.6, the length checks).
    pub fn new_checked(buffer: T) -> Result<Packet<T>, Error> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// The length checks of RFC 5880 §6.8.6, after the version check (which comes first
    /// there and needs only one byte).
    pub fn check_len(&self) -> Result<(), Error> {
        let data = self.buffer.as_ref();
        let payload = data.len();
        if payload < HEADER_LEN {
            return Err(Error::Truncated { len: payload });
        }
        if self.version() != VERSION {
            return Err(Error::Version {
                version: self.version(),
            });
        }
        let length = data[field::LENGTH];
        let minimum = if self.auth_present() {
            MIN_LEN_WITH_AUTH
        } else {
            HEADER_LEN
        };
        if usize::from(length) < minimum {
            return Err(Error::LengthTooShort { length, minimum });
        }
        if usize::from(length) > payload {
            return Err(Error::LengthExceedsPayload { length, payload });
        }
        Ok(())
    }

    fn data(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn u32_at(&self, range: field::Field) -> u32 {
        let mut bytes = [0; 4];
        bytes.copy_from_slice(&self.data()[range]);
        u32::from_be_bytes(bytes)
    }

    /// The Version field.
    pub fn version(&self) -> u8 {
        self.data()[field::VERS_DIAG] >> 5
    }
    /// The Diagnostic field.
    pub fn diagnostic(&self) -> Diagnostic {
        Diagnostic::from_code(self.data()[field::VERS_DIAG])
    }
    /// The State field.
    pub fn state(&self) -> SessionState {
        SessionState::from_bits(self.data()[field::STA_FLAGS] >> 6)
    }
    fn flag(&self, mask: u8) -> bool {
        self.data()[field::STA_FLAGS] & mask != 0
    }
    /// Poll (P).
    pub fn poll(&self) -> bool {
        self.flag(flag::POLL)
    }
    /// Final (F).
    pub fn final_(&self) -> bool {
        self.flag(flag::FINAL)
    }
    /// Control Plane Independent (C).
    pub fn control_plane_independent(&self) -> bool {
        self.flag(flag::CONTROL_PLANE_INDEPENDENT)
    }
    /// Authentication Present (A).
    pub fn auth_present(&self) -> bool {
        self.flag(flag::AUTH)
    }
    /// Demand (D).
    pub fn demand(&self) -> bool {
        self.flag(flag::DEMAND)
    }
    /// Multipoint (M).
    pub fn multipoint(&self) -> bool {
        self.flag(flag::MULTIPOINT)
    }
    /// Detect Mult.
    pub fn detect_mult(&self) -> u8 {
        self.data()[field::DETECT_MULT]
    }
    /// Length.
    pub fn length(&self) -> u8 {
        self.data()[field::LENGTH]
    }
    /// My Discriminator.
    pub fn my_discriminator(&self) -> u32 {
        self.u32_at(field::MY_DISCRIMINATOR)
    }
    /// Your Discriminator.
    pub fn your_discriminator(&self) -> u32 {
        self.u32_at(field::YOUR_DISCRIMINATOR)
    }
    /// Desired Min TX Interval, microseconds.
    pub fn desired_min_tx(&self) -> u32 {
        self.u32_at(field::DESIRED_MIN_TX)
    }
    /// Required Min RX Interval, microseconds.
    pub fn required_min_rx(&self) -> u32 {
        self.u32_at(field::REQUIRED_MIN_RX)
    }
    /// Required Min Echo RX Interval, microseconds.
    pub fn required_min_echo_rx(&self) -> u32 {
        self.u32_at(field::REQUIRED_MIN_ECHO_RX)
    }
    /// The Auth Type byte, when the A bit is set (the length check guarantees it).
    pub fn auth_type(&self) -> Option<u8> {
        self.auth_present()
            .then(|| self.data().get(field::AUTH_TYPE).copied())
            .flatten()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn data_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }
    fn set_u32(&mut self, range: field::Field, value: u32) {
        self.data_mut()[range].copy_from_slice(&value.to_be_bytes());
    }
    /// Sets Version and Diagnostic.
    pub fn set_version_diagnostic(&mut self, version: u8, diagnostic: Diagnostic) {
        self.data_mut()[field::VERS_DIAG] = (version << 5) | diagnostic.code();
    }
    /// Sets State and every flag (P F C A D M, in that order).
    pub fn set_state_flags(&mut self, state: SessionState, flags: Flags) {
        let mut byte = state.bits() << 6;
        for (on, mask) in [
            (flags.poll, flag::POLL),
            (flags.final_, flag::FINAL),
            (
                flags.control_plane_independent,
                flag::CONTROL_PLANE_INDEPENDENT,
            ),
            (flags.auth_present, flag::AUTH),
            (flags.demand, flag::DEMAND),
            (flags.multipoint, flag::MULTIPOINT),
        ] {
            if on {
                byte |= mask;
            }
        }
        self.data_mut()[field::STA_FLAGS] = byte;
    }
    /// Sets Detect Mult.
    pub fn set_detect_mult(&mut self, value: u8) {
        self.data_mut()[field::DETECT_MULT] = value;
    }
    /// Sets Length.
    pub fn set_length(&mut self, value: u8) {
        self.data_mut()[field::LENGTH] = value;
    }
    /// Sets My Discriminator.
    pub fn set_my_discriminator(&mut self, value: u32) {
        self.set_u32(field::MY_DISCRIMINATOR, value);
    }
    /// Sets Your Discriminator.
    pub fn set_your_discriminator(&mut self, value: u32) {
        self.set_u32(field::YOUR_DISCRIMINATOR, value);
    }
    /// Sets Desired Min TX Interval (µs).
    pub fn set_desired_min_tx(&mut self, value: u32) {
        self.set_u32(field::DESIRED_MIN_TX, value);
    }
    /// Sets Required Min RX Interval (µs).
    pub fn set_required_min_rx(&mut self, value: u32) {
        self.set_u32(field::REQUIRED_MIN_RX, value);
    }
    /// Sets Required Min Echo RX Interval (µs).
    pub fn set_required_min_echo_rx(&mut self, value: u32) {
        self.set_u32(field::REQUIRED_MIN_ECHO_RX, value);
    }
}

/// The flag bits of a control packet (RFC 5880 §4.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flags {
    /// P: the sender asks for verification (§6.5).
    pub poll: bool,
    /// F: the answer to a Poll.
    pub final_: bool,
    /// C: the sender's BFD does not share fate with its control plane.
    pub control_plane_independent: bool,
    /// A: an authentication section follows.
    pub auth_present: bool,
    /// D: the sender wishes to run Demand mode.
    pub demand: bool,
    /// M: reserved for multipoint; must be zero.
    pub multipoint: bool,
}

/// A decoded control packet (without an authentication section: vipd does not
/// authenticate, and a packet with the A bit is refused by the session, §6.8.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ControlRepr {
    /// Diag.
    pub diagnostic: Diagnostic,
    /// Sta.
    pub state: SessionState,
    /// P F C A D M.
    pub flags: Flags,
    /// Detect Mult.
    pub detect_mult: u8,
    /// My Discriminator.
    pub my_discriminator: u32,
    /// Your Discriminator.
    pub your_discriminator: u32,
    /// Desired Min TX Interval, µs.
    pub desired_min_tx: u32,
    /// Required Min RX Interval, µs.
    pub required_min_rx: u32,
    /// Required Min Echo RX Interval, µs.
    pub required_min_echo_rx: u32,
}

impl ControlRepr {
    /// Decodes a checked packet, running the remaining session-independent checks of
    /// RFC 5880 §6.8.6 in order.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<ControlRepr, Error> {
        packet.check_len()?;
        if packet.detect_mult() == 0 {
            return Err(Error::DetectMultZero);
        }
        if packet.multipoint() {
            return Err(Error::Multipoint);
        }
        if packet.my_discriminator() == 0 {
            return Err(Error::MyDiscriminatorZero);
        }
        let state = packet.state();
        if packet.your_discriminator() == 0
            && !matches!(state, SessionState::Down | SessionState::AdminDown)
        {
            return Err(Error::YourDiscriminatorZero { state });
        }
        Ok(ControlRepr {
            diagnostic: packet.diagnostic(),
            state,
            flags: Flags {
                poll: packet.poll(),
                final_: packet.final_(),
                control_plane_independent: packet.control_plane_independent(),
                auth_present: packet.auth_present(),
                demand: packet.demand(),
                multipoint: false,
            },
            detect_mult: packet.detect_mult(),
            my_discriminator: packet.my_discriminator(),
            your_discriminator: packet.your_discriminator(),
            desired_min_tx: packet.desired_min_tx(),
            required_min_rx: packet.required_min_rx(),
            required_min_echo_rx: packet.required_min_echo_rx(),
        })
    }

    /// Decodes untrusted bytes: [`Packet::new_checked`] then [`ControlRepr::parse`].
    pub fn parse_bytes(bytes: &[u8]) -> Result<ControlRepr, Error> {
        ControlRepr::parse(&Packet::new_checked(bytes)?)
    }

    /// Bytes [`ControlRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the packet into `packet`, whose buffer holds at least
    /// [`ControlRepr::buffer_len`] bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_version_diagnostic(VERSION, self.diagnostic);
        packet.set_state_flags(self.state, self.flags);
        packet.set_detect_mult(self.detect_mult);
        packet.set_length(HEADER_LEN as u8);
        packet.set_my_discriminator(self.my_discriminator);
        packet.set_your_discriminator(self.your_discriminator);
        packet.set_desired_min_tx(self.desired_min_tx);
        packet.set_required_min_rx(self.required_min_rx);
        packet.set_required_min_echo_rx(self.required_min_echo_rx);
    }

    /// The packet as bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut bytes = [0; HEADER_LEN];
        self.emit(&mut Packet::new_unchecked(&mut bytes[..]));
        bytes
    }
}

/// An interval field (µs) as a duration.
pub fn micros(value: u32) -> Duration {
    Duration::from_micros(u64::from(value))
}

/// A duration as an interval field (µs), saturating.
pub fn to_micros(duration: Duration) -> u32 {
    u32::try_from(duration.as_micros()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An FRR 8.4 bfdd packet in Init (P clear), 300 ms timers, multiplier 3: the shape
    /// of the fixtures below, written out by hand from RFC 5880 §4.1.
    static PACKET_BYTES: [u8; 24] = [
        0x20, // version 1, diag 0
        0x80, // state Init (2), no flags
        0x03, // detect mult
        0x18, // length 24
        0x00, 0x00, 0x00, 0x2a, // my discriminator 42
        0x00, 0x00, 0x00, 0x07, // your discriminator 7
        0x00, 0x04, 0x93, 0xe0, // desired min tx 300000 µs
        0x00, 0x04, 0x93, 0xe0, // required min rx 300000 µs
        0x00, 0x00, 0xc3, 0x50, // required min echo rx 50000 µs
    ];

    fn packet_repr() -> ControlRepr {
        ControlRepr {
            diagnostic: Diagnostic::None,
            state: SessionState::Init,
            flags: Flags::default(),
            detect_mult: 3,
            my_discriminator: 42,
            your_discriminator: 7,
            desired_min_tx: 300_000,
            required_min_rx: 300_000,
            required_min_echo_rx: 50_000,
        }
    }

    #[test]
    fn deconstruct() {
        let packet = Packet::new_checked(&PACKET_BYTES[..]).expect("valid fixture");
        assert_eq!(packet.version(), 1);
        assert_eq!(packet.diagnostic(), Diagnostic::None);
        assert_eq!(packet.state(), SessionState::Init);
        assert!(!packet.poll() && !packet.final_() && !packet.auth_present());
        assert_eq!(packet.detect_mult(), 3);
        assert_eq!(packet.length(), 24);
        assert_eq!(packet.my_discriminator(), 42);
        assert_eq!(packet.your_discriminator(), 7);
        assert_eq!(packet.desired_min_tx(), 300_000);
        assert_eq!(packet.required_min_rx(), 300_000);
        assert_eq!(packet.required_min_echo_rx(), 50_000);
    }

    #[test]
    fn construct() {
        let mut bytes = [0xa5; 24];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_version_diagnostic(1, Diagnostic::None);
        packet.set_state_flags(SessionState::Init, Flags::default());
        packet.set_detect_mult(3);
        packet.set_length(24);
        packet.set_my_discriminator(42);
        packet.set_your_discriminator(7);
        packet.set_desired_min_tx(300_000);
        packet.set_required_min_rx(300_000);
        packet.set_required_min_echo_rx(50_000);
        assert_eq!(bytes, PACKET_BYTES);
    }

    #[test]
    fn parse() {
        assert_eq!(ControlRepr::parse_bytes(&PACKET_BYTES), Ok(packet_repr()));
    }

    #[test]
    fn emit() {
        let mut bytes = [0xa5; 24];
        packet_repr().emit(&mut Packet::new_unchecked(&mut bytes[..]));
        assert_eq!(bytes, PACKET_BYTES);
        assert_eq!(packet_repr().to_bytes(), PACKET_BYTES);
    }

    #[test]
    fn flags_and_diagnostics_round_trip() {
        let mut repr = packet_repr();
        repr.flags.poll = true;
        repr.flags.demand = true;
        repr.flags.control_plane_independent = true;
        repr.diagnostic = Diagnostic::Unknown(17);
        repr.state = SessionState::Up;
        assert_eq!(ControlRepr::parse_bytes(&repr.to_bytes()), Ok(repr));
        repr.flags = Flags {
            final_: true,
            ..Flags::default()
        };
        repr.diagnostic = Diagnostic::AdministrativelyDown;
        assert_eq!(ControlRepr::parse_bytes(&repr.to_bytes()), Ok(repr));
    }

    /// RFC 5880 §6.8.6: each packet-level check, in order, with its own error.
    #[test]
    fn reception_checks_6_8_6() {
        let with = |edit: fn(&mut [u8; 24])| {
            let mut bytes = PACKET_BYTES;
            edit(&mut bytes);
            ControlRepr::parse_bytes(&bytes)
        };
        assert_eq!(
            ControlRepr::parse_bytes(&PACKET_BYTES[..23]),
            Err(Error::Truncated { len: 23 })
        );
        assert_eq!(with(|b| b[0] = 0x40), Err(Error::Version { version: 2 }));
        assert_eq!(
            with(|b| b[3] = 20),
            Err(Error::LengthTooShort {
                length: 20,
                minimum: 24
            })
        );
        // The A bit raises the minimum to 26.
        assert_eq!(
            with(|b| b[1] |= 0x04),
            Err(Error::LengthTooShort {
                length: 24,
                minimum: 26
            })
        );
        assert_eq!(
            with(|b| b[3] = 28),
            Err(Error::LengthExceedsPayload {
                length: 28,
                payload: 24
            })
        );
        assert_eq!(with(|b| b[2] = 0), Err(Error::DetectMultZero));
        assert_eq!(with(|b| b[1] |= 0x01), Err(Error::Multipoint));
        assert_eq!(with(|b| b[4..8].fill(0)), Err(Error::MyDiscriminatorZero));
        assert_eq!(
            with(|b| b[8..12].fill(0)),
            Err(Error::YourDiscriminatorZero {
                state: SessionState::Init
            })
        );
        // Your Discriminator 0 is fine while the sender is Down (it does not know ours).
        let down = with(|b| {
            b[8..12].fill(0);
            b[1] = 0x40;
        });
        assert_eq!(down.map(|r| r.state), Ok(SessionState::Down));
        // Trailing bytes beyond Length (a UDP payload longer than the packet) are allowed.
        let mut long = PACKET_BYTES.to_vec();
        long.extend_from_slice(&[0; 8]);
        assert_eq!(ControlRepr::parse_bytes(&long), Ok(packet_repr()));
    }
}
