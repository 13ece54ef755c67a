//! VRRP advertisement wire format: RFC 3768 (v2) and RFC 5798 (v3), over IPv4 and IPv6.
//!
//! Sans-IO: bytes in, values out. No tokio, libc, netlink or aya, and no clock.
//!
//! Follows smoltcp's `src/wire/` split:
//! - [`Packet`] is a zero-copy view over a VRRP message. Untrusted bytes enter only through
//!   [`Packet::new_checked`], after which no accessor can panic. Setters exist only where
//!   the buffer is `AsMut<[u8]>`.
//! - [`AdvertRepr`] is the decoded, owned form: [`AdvertRepr::parse`] checks a packet
//!   against the IP header it arrived in, [`AdvertRepr::emit`] writes one (checksum
//!   included) into a buffer of [`AdvertRepr::buffer_len`] bytes.
//!
//! The address family is not in the VRRP message; it comes from the IP header, so a
//! [`Packet`] is built with the [`AddressFamily`] of the datagram that carried it.
//!
//! Linux raw IPv4 sockets deliver the IP header in front of the VRRP message, raw IPv6
//! sockets only the payload (the hop limit comes from `IPV6_RECVHOPLIMIT`). For the IPv4
//! case [`Ipv4Datagram::split`] reads the few header fields the receive checks need.
//!
//! Receive-side policy (TTL, configured VRID, authentication, ...) is not decided here; see
//! [`super::validate`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// VRRP protocol version (RFC 5798 §5.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// RFC 3768: IPv4 only, interval in seconds, optional simple-text authentication.
    V2,
    /// RFC 5798: IPv4 and IPv6, interval in centiseconds, checksum over a pseudo-header.
    V3,
}

impl Version {
    /// The value of the 4-bit version field.
    pub const fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }

    /// The version with this 4-bit field value, if vipd speaks it.
    pub const fn from_number(number: u8) -> Option<Version> {
        match number {
            2 => Some(Version::V2),
            3 => Some(Version::V3),
            _ => None,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VRRPv{}", self.number())
    }
}

/// The virtual router MAC address of `vrid` (RFC 9568 §7.3): 00-00-5E-00-01-{VRID} for
/// IPv4, 00-00-5E-00-02-{VRID} for IPv6.
pub const fn virtual_router_mac(family: AddressFamily, vrid: u8) -> [u8; 6] {
    let family_octet = match family {
        AddressFamily::Ipv4 => 0x01,
        AddressFamily::Ipv6 => 0x02,
    };
    [0x00, 0x00, 0x5e, 0x00, family_octet, vrid]
}

/// How a VRRPv3 advert over IPv4 sums its checksum. The two RFCs disagree, and so does
/// the installed base:
/// - RFC 5798 §5.2.8 sums "the entire VRRP message ... and a pseudo-header as defined in
///   Section 8.1 of [RFC2460]"; keepalived (unless `v3_checksum_as_v2`) and FRR (unless
///   `no vrrp N checksum-with-ipv4-pseudoheader`) read that as an IPv4 pseudo-header too.
/// - RFC 9568 §5.2.8: "For the IPv4 address family, the checksum calculation only
///   includes the VRRP message"; Cisco and Juniper sum it that way.
///
/// VRRPv2 (RFC 3768 §5.3.8, message only) and IPv6 (pseudo-header, both RFCs) have one
/// form each and ignore this setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Ipv4Checksum {
    /// RFC 5798 as keepalived and FRR read it: an IPv4 pseudo-header is summed too.
    #[default]
    PseudoHeader,
    /// RFC 9568 §5.2.8: the VRRP message only.
    MessageOnly,
}

/// The checksum form a received advert verified with, for the counters that show which
/// form a peer sends (see [`Packet::checksum_form`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChecksumForm {
    /// VRRPv2, or VRRPv3 over IPv6: only one form exists.
    Only,
    /// VRRPv3 over IPv4 with the IPv4 pseudo-header (RFC 5798, keepalived, FRR).
    Ipv4PseudoHeader,
    /// VRRPv3 over IPv4, the message only (RFC 9568).
    Ipv4MessageOnly,
    /// VRRPv3 over IPv4 where the pseudo-header sums to zero (one's complement), so both
    /// forms give the same checksum and the advert does not say which one its sender
    /// uses.
    Ipv4Either,
}

/// An advertisement interval in centiseconds, the unit of the v3 12-bit field
/// (RFC 5798 §5.2.7). A v2 interval of S seconds is `Centiseconds(S * 100)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Centiseconds(pub u16);

impl Centiseconds {
    /// The largest interval the v3 12-bit Max Adver Int field can carry (40.95 s).
    pub const V3_MAX: Centiseconds = Centiseconds(0x0fff);

    /// The interval as a `Duration`.
    pub const fn as_duration(self) -> Duration {
        Duration::from_millis(self.0 as u64 * 10)
    }

    /// A v2 interval given in whole seconds (RFC 3768 §5.3.7).
    pub const fn from_secs(seconds: u8) -> Centiseconds {
        Centiseconds(seconds as u16 * 100)
    }

    /// The interval in whole seconds, if it is one that the v2 8-bit field can carry.
    pub const fn as_v2_secs(self) -> Option<u8> {
        if self.0.is_multiple_of(100) && self.0 / 100 <= u8::MAX as u16 {
            Some((self.0 / 100) as u8)
        } else {
            None
        }
    }
}

impl fmt::Display for Centiseconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} cs", self.0)
    }
}

/// v2 authentication (RFC 3768 §5.3.6). v3 adverts carry none and always decode as
/// [`Auth::None`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Auth {
    /// Auth type 0.
    None,
    /// Auth type 1: up to 8 bytes of password, zero-padded.
    SimpleText([u8; 8]),
    /// Any other auth type (2 was IP AH, deprecated), with its 8 bytes of data.
    Other {
        /// The auth type field.
        auth_type: u8,
        /// The authentication data field.
        data: [u8; 8],
    },
}

impl Auth {
    /// RFC 3768 §5.3.6 auth type 0.
    pub const TYPE_NONE: u8 = 0;
    /// RFC 3768 §5.3.6 auth type 1.
    pub const TYPE_SIMPLE_TEXT: u8 = 1;

    /// Decodes the v2 auth type and data fields; unknown types are kept, not rejected.
    pub const fn from_fields(auth_type: u8, data: [u8; 8]) -> Auth {
        match auth_type {
            // RFC 3768 §5.3.6.1: with no authentication the data is ignored on reception,
            // so it is not kept either; emit writes zeros as that section requires.
            Auth::TYPE_NONE => Auth::None,
            Auth::TYPE_SIMPLE_TEXT => Auth::SimpleText(data),
            auth_type => Auth::Other { auth_type, data },
        }
    }

    /// A simple-text password as keepalived's `auth_pass` takes it: at most 8 bytes, the
    /// rest zero-padded. `None` if the password is longer than the field.
    pub fn simple_text(password: &[u8]) -> Option<Auth> {
        let mut data = [0; AUTH_DATA_LEN];
        data.get_mut(..password.len())?.copy_from_slice(password);
        Some(Auth::SimpleText(data))
    }

    /// The value of the v2 auth type field.
    pub const fn type_code(&self) -> u8 {
        match self {
            Auth::None => Auth::TYPE_NONE,
            Auth::SimpleText(_) => Auth::TYPE_SIMPLE_TEXT,
            Auth::Other { auth_type, .. } => *auth_type,
        }
    }

    /// The value of the v2 authentication data field.
    pub const fn data(&self) -> [u8; 8] {
        match self {
            Auth::None => [0; AUTH_DATA_LEN],
            Auth::SimpleText(data) | Auth::Other { data, .. } => *data,
        }
    }
}

/// An advertisement decoded into owned, typed fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdvertRepr {
    /// Protocol version.
    pub version: Version,
    /// Virtual router identifier, 1..=255.
    pub vrid: u8,
    /// Sender's priority: 0 = master is stopping, 255 = address owner.
    pub priority: u8,
    /// Max_Advert_Interval in centiseconds (v2: seconds × 100).
    pub max_advert_interval: Centiseconds,
    /// v2 authentication; always [`Auth::None`] for v3.
    pub auth: Auth,
    /// The virtual addresses, all of the IP header's family.
    pub addresses: Vec<IpAddr>,
}

/// IP protocol number of VRRP, used in the v3 pseudo-header (RFC 5798 §5.1.1.4).
pub const IP_PROTOCOL: u8 = 112;
/// TTL / hop limit every advert is sent with and must arrive with (RFC 5798 §5.1.1.3).
pub const TTL: u8 = 255;
/// The IPv4 multicast group adverts are sent to (RFC 5798 §5.1.1.2).
pub const IPV4_MULTICAST: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 multicast group adverts are sent to (RFC 5798 §5.1.2.2).
pub const IPV6_MULTICAST: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// Length of the fixed VRRP header, before the address list (RFC 5798 §5.1).
pub const HEADER_LEN: usize = field::ADDRESSES_START;
/// Length of the v2 authentication data that follows the address list (RFC 3768 §5.1).
pub const AUTH_DATA_LEN: usize = 8;
/// Most addresses one advert can list: the count field is 8 bits.
pub const MAX_ADDRESSES: usize = u8::MAX as usize;

/// The address family of the IP header that carries an advert; it decides the length of
/// each entry in the address list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    /// IPv4: 4-byte addresses.
    Ipv4,
    /// IPv6: 16-byte addresses.
    Ipv6,
}

impl AddressFamily {
    /// The family of an address.
    pub const fn of(address: IpAddr) -> AddressFamily {
        match address {
            IpAddr::V4(_) => AddressFamily::Ipv4,
            IpAddr::V6(_) => AddressFamily::Ipv6,
        }
    }

    /// Bytes per entry in the address list.
    pub const fn address_len(self) -> usize {
        match self {
            AddressFamily::Ipv4 => 4,
            AddressFamily::Ipv6 => 16,
        }
    }
}

impl fmt::Display for AddressFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressFamily::Ipv4 => "IPv4",
            AddressFamily::Ipv6 => "IPv6",
        })
    }
}

/// The 4-bit VRRP type field (RFC 5798 §5.2.2). Codes other than 1 are kept as values so a
/// view over them never fails; [`AdvertRepr::parse`] is where they are rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// Type 1, the only type either RFC defines.
    Advertisement,
    /// Any other 4-bit value.
    Unknown(u8),
}

impl From<u8> for MessageType {
    fn from(code: u8) -> MessageType {
        match code {
            1 => MessageType::Advertisement,
            code => MessageType::Unknown(code),
        }
    }
}

impl From<MessageType> for u8 {
    fn from(message_type: MessageType) -> u8 {
        match message_type {
            MessageType::Advertisement => 1,
            MessageType::Unknown(code) => code,
        }
    }
}

/// Why bytes could not be read as, or a [`AdvertRepr`] could not be written as, an advert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Fewer bytes than the fixed 8-byte VRRP header.
    #[error("VRRP message truncated: {len} bytes, the header alone is {HEADER_LEN}")]
    Truncated {
        /// Bytes received.
        len: usize,
    },
    /// The length does not match the address count (RFC 5798 §7.1: the packet must contain
    /// the complete VRRP message, including the address list).
    #[error(
        "VRRP message is {actual_len} bytes but {address_count} {family} addresses need {expected_len}"
    )]
    LengthMismatch {
        /// The Count IPvX Addr field.
        address_count: u8,
        /// The family of the carrying IP header.
        family: AddressFamily,
        /// Bytes the header, address list and (v2) authentication data need.
        expected_len: usize,
        /// Bytes received.
        actual_len: usize,
    },
    /// The version field is neither 2 nor 3.
    #[error("unknown VRRP version {version}")]
    UnknownVersion {
        /// The 4-bit version field.
        version: u8,
    },
    /// A type other than Advertisement (RFC 5798 §5.2.2: unknown types MUST be discarded).
    #[error("VRRP type {type_code} is not an advertisement (1)")]
    NotAdvertisement {
        /// The 4-bit type field.
        type_code: u8,
    },
    /// The checksum does not verify (RFC 5798 §5.2.8, RFC 3768 §5.3.8).
    #[error("VRRP checksum is {received:#06x}, the message sums to {computed:#06x}")]
    BadChecksum {
        /// The checksum field.
        received: u16,
        /// The checksum the message and (v3) pseudo-header call for.
        computed: u16,
    },
    /// The advert interval is zero, which no timer can run on.
    #[error("VRRP advert interval is zero")]
    ZeroInterval,
    /// Source, destination and VRRP message are not all of one address family.
    #[error("address families disagree: source {src}, destination {dst}, VRRP message {family}")]
    FamilyMismatch {
        /// IP source address.
        src: IpAddr,
        /// IP destination address.
        dst: IpAddr,
        /// The family the [`Packet`] was built for.
        family: AddressFamily,
    },
    /// VRRPv2 over IPv6: RFC 3768 defines VRRP for IPv4 only; IPv6 arrived with v3
    /// (RFC 5798 §1, §8.4 on v2/v3 interoperation is IPv4 only).
    #[error("VRRPv2 is IPv4 only, got it over IPv6")]
    V2OverIpv6,
    /// Emit: the buffer is not exactly [`AdvertRepr::buffer_len`] bytes.
    #[error("buffer is {actual_len} bytes, the advert needs exactly {expected_len}")]
    BufferLength {
        /// [`AdvertRepr::buffer_len`].
        expected_len: usize,
        /// The buffer's length.
        actual_len: usize,
    },
    /// Emit: the interval does not fit the version's field (v2: whole seconds up to 255;
    /// v3: up to 4095 cs).
    #[error("{version} cannot carry an advert interval of {interval}")]
    IntervalOutOfRange {
        /// The version being emitted.
        version: Version,
        /// The interval asked for.
        interval: Centiseconds,
    },
    /// Emit: more addresses than the 8-bit count field can carry.
    #[error("{count} addresses, an advert carries at most {MAX_ADDRESSES}")]
    TooManyAddresses {
        /// Addresses asked for.
        count: usize,
    },
    /// Emit: a virtual address is not of the carrying IP header's family (RFC 5798 §5.2.9).
    #[error("virtual address {address} is not {family}")]
    AddressFamilyMixed {
        /// The offending address.
        address: IpAddr,
        /// The family of the IP header.
        family: AddressFamily,
    },
    /// Emit: v3 has no authentication (RFC 5798 §9 removed it).
    #[error("VRRPv3 carries no authentication")]
    AuthOnV3,
}

/// Byte ranges of the VRRP header (RFC 5798 §5.1, RFC 3768 §5.1).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// v3: |(rsvd) |     Max Adver Int     |          Checksum             |
/// v2: |   Auth Type   |   Adver Int   |          Checksum             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                  IPvX Address(es), Count × 4 or 16 bytes      |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// v2 only: |           Authentication Data, 8 bytes                 |
/// ```
mod field {
    pub type Field = core::ops::Range<usize>;

    /// Version (high nibble) and type (low nibble).
    pub const VER_TYPE: usize = 0;
    pub const VRID: usize = 1;
    pub const PRIORITY: usize = 2;
    pub const ADDRESS_COUNT: usize = 3;
    /// v2 only.
    pub const V2_AUTH_TYPE: usize = 4;
    /// v2 only: advert interval in seconds.
    pub const V2_ADVER_INT: usize = 5;
    /// v3 only: 4 reserved bits then the 12-bit Max Adver Int in centiseconds.
    pub const V3_RSVD_MAX_ADVER_INT: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
    pub const ADDRESSES_START: usize = 8;
}

/// A zero-copy view over a VRRP message (the IP payload), for the given address family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
    family: AddressFamily,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it. Accessors may panic on a short buffer: use this
    /// only for buffers you sized yourself (emit), and [`Packet::new_checked`] for
    /// received bytes.
    pub const fn new_unchecked(buffer: T, family: AddressFamily) -> Packet<T> {
        Packet { buffer, family }
    }

    /// Wraps received bytes, after [`Packet::check_len`]; then no accessor can panic.
    pub fn new_checked(buffer: T, family: AddressFamily) -> Result<Packet<T>, Error> {
        let packet = Packet::new_unchecked(buffer, family);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the buffer is exactly as long as the header, the address list the
    /// count announces and, when the version field says 2, the authentication data.
    ///
    /// Trailing bytes are an error too: the IP layer already trimmed the datagram to its
    /// length, so anything left over means the count is wrong (RFC 5798 §7.1: the count
    /// must be consistent with the packet).
    pub fn check_len(&self) -> Result<(), Error> {
        let actual_len = self.buffer.as_ref().len();
        if actual_len < HEADER_LEN {
            return Err(Error::Truncated { len: actual_len });
        }
        let expected_len = self.total_len();
        if actual_len != expected_len {
            return Err(Error::LengthMismatch {
                address_count: self.address_count(),
                family: self.family,
                expected_len,
                actual_len,
            });
        }
        Ok(())
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The family of the IP header this message travels in.
    pub const fn family(&self) -> AddressFamily {
        self.family
    }

    /// The 4-bit version field.
    pub fn version_number(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] >> 4
    }

    /// The 4-bit type field.
    pub fn message_type(&self) -> MessageType {
        MessageType::from(self.buffer.as_ref()[field::VER_TYPE] & 0x0f)
    }

    /// The Virtual Rtr ID field.
    pub fn vrid(&self) -> u8 {
        self.buffer.as_ref()[field::VRID]
    }

    /// The priority field.
    pub fn priority(&self) -> u8 {
        self.buffer.as_ref()[field::PRIORITY]
    }

    /// The Count IPvX Addr field.
    pub fn address_count(&self) -> u8 {
        self.buffer.as_ref()[field::ADDRESS_COUNT]
    }

    /// v2: the auth type field (RFC 3768 §5.3.6). In a v3 message these bits are the
    /// reserved bits and the top of the interval.
    pub fn v2_auth_type(&self) -> u8 {
        self.buffer.as_ref()[field::V2_AUTH_TYPE]
    }

    /// v2: the Adver Int field, in seconds (RFC 3768 §5.3.7).
    pub fn v2_advert_interval_secs(&self) -> u8 {
        self.buffer.as_ref()[field::V2_ADVER_INT]
    }

    /// v3: the 4 reserved bits (RFC 5798 §5.2.6: sent as zero, ignored on reception).
    pub fn v3_reserved(&self) -> u8 {
        self.buffer.as_ref()[field::V3_RSVD_MAX_ADVER_INT.start] >> 4
    }

    /// v3: the 12-bit Max Adver Int field (RFC 5798 §5.2.7).
    pub fn v3_max_advert_interval(&self) -> Centiseconds {
        let data = self.buffer.as_ref();
        let start = field::V3_RSVD_MAX_ADVER_INT.start;
        let raw = u16::from_be_bytes([data[start], data[start + 1]]);
        Centiseconds(raw & 0x0fff)
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        let data = self.buffer.as_ref();
        u16::from_be_bytes([data[field::CHECKSUM.start], data[field::CHECKSUM.start + 1]])
    }

    /// The `index`th virtual address, `None` past the count.
    pub fn address(&self, index: usize) -> Option<IpAddr> {
        if index >= usize::from(self.address_count()) {
            return None;
        }
        let start = HEADER_LEN + index * self.family.address_len();
        let data = self.buffer.as_ref();
        match self.family {
            AddressFamily::Ipv4 => {
                let octets: [u8; 4] = data.get(start..start + 4)?.try_into().ok()?;
                Some(IpAddr::from(octets))
            }
            AddressFamily::Ipv6 => {
                let octets: [u8; 16] = data.get(start..start + 16)?.try_into().ok()?;
                Some(IpAddr::from(octets))
            }
        }
    }

    /// The virtual addresses, in wire order.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        (0..usize::from(self.address_count())).filter_map(|index| self.address(index))
    }

    /// v2: the authentication data after the address list (RFC 3768 §5.3.10); `None`
    /// when the version field is not 2, since only v2 has the field.
    pub fn v2_auth_data(&self) -> Option<[u8; AUTH_DATA_LEN]> {
        if self.version_number() != Version::V2.number() {
            return None;
        }
        let start = self.auth_data_start();
        self.buffer
            .as_ref()
            .get(start..start + AUTH_DATA_LEN)?
            .try_into()
            .ok()
    }

    /// The length the fields announce: header, address list, and for v2 the
    /// authentication data.
    pub fn total_len(&self) -> usize {
        let trailer = if self.version_number() == Version::V2.number() {
            AUTH_DATA_LEN
        } else {
            0
        };
        self.auth_data_start() + trailer
    }

    fn auth_data_start(&self) -> usize {
        HEADER_LEN + usize::from(self.address_count()) * self.family.address_len()
    }

    /// The checksum the message calls for, computed with the checksum field taken as zero:
    /// v2 over the VRRP message only (RFC 3768 §5.3.8), v3 also over the IPv4 or IPv6
    /// pseudo-header (RFC 5798 §5.2.8). A version other than 2 is summed as v3. For the
    /// RFC 9568 IPv4 form see [`Packet::compute_checksum_as`].
    pub fn compute_checksum(&self, src: IpAddr, dst: IpAddr) -> u16 {
        self.compute_checksum_as(src, dst, Ipv4Checksum::PseudoHeader)
    }

    /// [`Packet::compute_checksum`], with `ipv4` deciding the form of a v3 advert over
    /// IPv4 (see [`Ipv4Checksum`]).
    pub fn compute_checksum_as(&self, src: IpAddr, dst: IpAddr, ipv4: Ipv4Checksum) -> u16 {
        let data = self.buffer.as_ref();
        let message = data.get(..self.total_len()).unwrap_or(data);
        let mut sum = checksum::Sum::default();
        let v3 = self.version_number() != Version::V2.number();
        // RFC 9568 §5.2.8: "For the IPv4 address family, the checksum calculation only
        // includes the VRRP message"; RFC 5798 §5.2.8 was read to include a pseudo-header.
        let message_only = self.family == AddressFamily::Ipv4 && ipv4 == Ipv4Checksum::MessageOnly;
        if v3 && !message_only {
            // RFC 5798 §5.2.8 / RFC 9568 §5.2.8 (IPv6): "a 'pseudo-header' as defined in
            // Section 8.1 of [RFC8200]" with the VRRP message as upper-layer payload.
            sum.add_pseudo_header(src, dst, message.len());
        }
        sum.add_bytes(message.get(..field::CHECKSUM.start).unwrap_or_default());
        sum.add_bytes(message.get(field::CHECKSUM.end..).unwrap_or_default());
        sum.finish()
    }

    /// Whether the checksum field verifies for this source and destination, in either
    /// form for v3 over IPv4 (see [`Packet::checksum_form`]).
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        self.checksum_form(src, dst).is_some()
    }

    /// The form the checksum field verifies in, `None` if it verifies in none. A v3
    /// advert over IPv4 may use either form (see [`Ipv4Checksum`]): accepting both costs
    /// nothing in safety, since the two sums differ by the pseudo-header's addresses
    /// only, and lets vipd hear keepalived, FRR, Cisco and Juniper whatever they send.
    pub fn checksum_form(&self, src: IpAddr, dst: IpAddr) -> Option<ChecksumForm> {
        let received = self.checksum();
        let pseudo_header = self.compute_checksum_as(src, dst, Ipv4Checksum::PseudoHeader);
        let v3_ipv4 =
            self.family == AddressFamily::Ipv4 && self.version_number() != Version::V2.number();
        if !v3_ipv4 {
            return (received == pseudo_header).then_some(ChecksumForm::Only);
        }
        let message_only = self.compute_checksum_as(src, dst, Ipv4Checksum::MessageOnly);
        match (received == pseudo_header, received == message_only) {
            (true, true) => Some(ChecksumForm::Ipv4Either),
            (true, false) => Some(ChecksumForm::Ipv4PseudoHeader),
            (false, true) => Some(ChecksumForm::Ipv4MessageOnly),
            (false, false) => None,
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the version and type nibbles.
    pub fn set_version_and_type(&mut self, version: u8, message_type: MessageType) {
        self.buffer.as_mut()[field::VER_TYPE] = (version << 4) | (u8::from(message_type) & 0x0f);
    }

    /// Sets the Virtual Rtr ID field.
    pub fn set_vrid(&mut self, vrid: u8) {
        self.buffer.as_mut()[field::VRID] = vrid;
    }

    /// Sets the priority field.
    pub fn set_priority(&mut self, priority: u8) {
        self.buffer.as_mut()[field::PRIORITY] = priority;
    }

    /// Sets the Count IPvX Addr field; it moves the v2 authentication data.
    pub fn set_address_count(&mut self, count: u8) {
        self.buffer.as_mut()[field::ADDRESS_COUNT] = count;
    }

    /// v2: sets the auth type field.
    pub fn set_v2_auth_type(&mut self, auth_type: u8) {
        self.buffer.as_mut()[field::V2_AUTH_TYPE] = auth_type;
    }

    /// v2: sets the Adver Int field, in seconds.
    pub fn set_v2_advert_interval_secs(&mut self, seconds: u8) {
        self.buffer.as_mut()[field::V2_ADVER_INT] = seconds;
    }

    /// v3: sets the reserved bits to zero and the 12-bit Max Adver Int; higher bits of
    /// `interval` are dropped (RFC 5798 §5.2.6: reserved MUST be zero on transmission).
    pub fn set_v3_max_advert_interval(&mut self, interval: Centiseconds) {
        let raw = (interval.0 & 0x0fff).to_be_bytes();
        self.buffer.as_mut()[field::V3_RSVD_MAX_ADVER_INT].copy_from_slice(&raw);
    }

    /// Sets the checksum field as given.
    pub fn set_checksum(&mut self, checksum: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&checksum.to_be_bytes());
    }

    /// Writes the `index`th virtual address; panics past the buffer, like every setter.
    /// An address of the other family is written in that family's length, so callers keep
    /// families consistent ([`AdvertRepr::emit`] checks).
    pub fn set_address(&mut self, index: usize, address: IpAddr) {
        let start = HEADER_LEN + index * self.family.address_len();
        let data = self.buffer.as_mut();
        match address {
            IpAddr::V4(v4) => data[start..start + 4].copy_from_slice(&v4.octets()),
            IpAddr::V6(v6) => data[start..start + 16].copy_from_slice(&v6.octets()),
        }
    }

    /// v2: writes the authentication data after the address list; set the version and
    /// address count first, they decide where it goes.
    pub fn set_v2_auth_data(&mut self, data: [u8; AUTH_DATA_LEN]) {
        let start = self.auth_data_start();
        self.buffer.as_mut()[start..start + AUTH_DATA_LEN].copy_from_slice(&data);
    }

    /// Computes and writes the checksum for this source and destination (RFC 5798 form).
    pub fn fill_checksum(&mut self, src: IpAddr, dst: IpAddr) {
        self.fill_checksum_as(src, dst, Ipv4Checksum::PseudoHeader);
    }

    /// Computes and writes the checksum, in form `ipv4` for v3 over IPv4.
    pub fn fill_checksum_as(&mut self, src: IpAddr, dst: IpAddr, ipv4: Ipv4Checksum) {
        let checksum = self.compute_checksum_as(src, dst, ipv4);
        self.set_checksum(checksum);
    }
}

impl AdvertRepr {
    /// Decodes a checked packet that arrived from `src` to `dst`.
    ///
    /// Checks, in the order RFC 5798 §7.1 lists the ones that concern the message itself:
    /// families agree, the version is known (and v2 travels over IPv4), the checksum
    /// verifies, the type is Advertisement, the interval is not zero. The length was
    /// checked by [`Packet::new_checked`].
    pub fn parse<T: AsRef<[u8]>>(
        packet: &Packet<T>,
        src: IpAddr,
        dst: IpAddr,
    ) -> Result<AdvertRepr, Error> {
        let family = packet.family();
        if AddressFamily::of(src) != family || AddressFamily::of(dst) != family {
            return Err(Error::FamilyMismatch { src, dst, family });
        }
        // RFC 5798 §5.2.1 / RFC 3768 §5.3.1: the version decides the layout.
        let version_number = packet.version_number();
        let version = Version::from_number(version_number).ok_or(Error::UnknownVersion {
            version: version_number,
        })?;
        // RFC 3768 defines VRRPv2 for IPv4 only; IPv6 needs v3 (RFC 5798 §1).
        if version == Version::V2 && family == AddressFamily::Ipv6 {
            return Err(Error::V2OverIpv6);
        }
        // RFC 9568 §7.1 / RFC 3768 §7.1: "MUST verify the VRRP checksum", in either
        // IPv4 form (see `Packet::checksum_form`).
        if packet.checksum_form(src, dst).is_none() {
            return Err(Error::BadChecksum {
                received: packet.checksum(),
                computed: packet.compute_checksum(src, dst),
            });
        }
        // RFC 5798 §5.2.2: "A packet with unknown type MUST be discarded."
        if let MessageType::Unknown(type_code) = packet.message_type() {
            return Err(Error::NotAdvertisement { type_code });
        }
        let (max_advert_interval, auth) = match version {
            // RFC 3768 §5.3.6-7: auth type, then the interval in whole seconds.
            Version::V2 => (
                Centiseconds::from_secs(packet.v2_advert_interval_secs()),
                Auth::from_fields(
                    packet.v2_auth_type(),
                    packet.v2_auth_data().unwrap_or_default(),
                ),
            ),
            // RFC 5798 §5.2.6-7: reserved bits ignored, 12-bit interval in centiseconds.
            Version::V3 => (packet.v3_max_advert_interval(), Auth::None),
        };
        // A zero interval would make the backup's Master_Down_Interval just its skew
        // (RFC 5798 §6.1): a hair trigger, never a working configuration.
        if max_advert_interval.0 == 0 {
            return Err(Error::ZeroInterval);
        }
        Ok(AdvertRepr {
            version,
            vrid: packet.vrid(),
            priority: packet.priority(),
            max_advert_interval,
            auth,
            addresses: packet.addresses().collect(),
        })
    }

    /// Bytes [`AdvertRepr::emit`] writes: header, address list, v2 authentication data.
    pub fn buffer_len(&self) -> usize {
        let addresses: usize = self
            .addresses
            .iter()
            .map(|address| AddressFamily::of(*address).address_len())
            .sum();
        let trailer = match self.version {
            Version::V2 => AUTH_DATA_LEN,
            Version::V3 => 0,
        };
        HEADER_LEN + addresses + trailer
    }

    /// Writes the advert into `packet` (exactly [`AdvertRepr::buffer_len`] bytes) with the
    /// checksum for `src` → `dst` (RFC 5798 form; see [`AdvertRepr::emit_as`]). Every
    /// byte is written, whatever the buffer held.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        src: IpAddr,
        dst: IpAddr,
    ) -> Result<(), Error> {
        self.emit_as(packet, src, dst, Ipv4Checksum::PseudoHeader)
    }

    /// [`AdvertRepr::emit`] with the checksum of a v3 advert over IPv4 in form `ipv4`.
    pub fn emit_as<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        src: IpAddr,
        dst: IpAddr,
        ipv4: Ipv4Checksum,
    ) -> Result<(), Error> {
        let family = packet.family();
        if AddressFamily::of(src) != family || AddressFamily::of(dst) != family {
            return Err(Error::FamilyMismatch { src, dst, family });
        }
        // RFC 5798 §5.2.9: the addresses are of the family the advert travels in.
        if let Some(&address) = self
            .addresses
            .iter()
            .find(|address| AddressFamily::of(**address) != family)
        {
            return Err(Error::AddressFamilyMixed { address, family });
        }
        let address_count =
            u8::try_from(self.addresses.len()).map_err(|_| Error::TooManyAddresses {
                count: self.addresses.len(),
            })?;
        let expected_len = self.buffer_len();
        let actual_len = packet.buffer.as_ref().len();
        if actual_len != expected_len {
            return Err(Error::BufferLength {
                expected_len,
                actual_len,
            });
        }
        // Every refusal comes before the first write, so a refused advert leaves the
        // buffer as it was.
        let v2_seconds = match self.version {
            Version::V2 => {
                // RFC 3768 is IPv4 only (see Error::V2OverIpv6).
                if family == AddressFamily::Ipv6 {
                    return Err(Error::V2OverIpv6);
                }
                // RFC 3768 §5.3.7: the interval is in whole seconds, 8 bits.
                let seconds =
                    self.max_advert_interval
                        .as_v2_secs()
                        .ok_or(Error::IntervalOutOfRange {
                            version: self.version,
                            interval: self.max_advert_interval,
                        })?;
                Some(seconds)
            }
            Version::V3 => {
                // RFC 5798 §9: v3 has no authentication; silently dropping a configured
                // password would hide a configuration error.
                if self.auth != Auth::None {
                    return Err(Error::AuthOnV3);
                }
                // RFC 5798 §5.2.7: 12 bits of centiseconds.
                if self.max_advert_interval > Centiseconds::V3_MAX {
                    return Err(Error::IntervalOutOfRange {
                        version: self.version,
                        interval: self.max_advert_interval,
                    });
                }
                None
            }
        };
        if self.max_advert_interval.0 == 0 {
            return Err(Error::ZeroInterval);
        }

        packet.set_version_and_type(self.version.number(), MessageType::Advertisement);
        packet.set_vrid(self.vrid);
        packet.set_priority(self.priority);
        packet.set_address_count(address_count);
        match v2_seconds {
            Some(seconds) => {
                packet.set_v2_auth_type(self.auth.type_code());
                packet.set_v2_advert_interval_secs(seconds);
                packet.set_v2_auth_data(self.auth.data());
            }
            None => packet.set_v3_max_advert_interval(self.max_advert_interval),
        }
        for (index, address) in self.addresses.iter().enumerate() {
            packet.set_address(index, *address);
        }
        packet.fill_checksum_as(src, dst, ipv4);
        Ok(())
    }
}

/// The Internet checksum (RFC 1071): one's-complement sum of big-endian 16-bit words.
mod checksum {
    use std::net::IpAddr;

    #[derive(Default)]
    pub(super) struct Sum {
        // u64 so no realistic input can overflow before the final fold.
        total: u64,
    }

    impl Sum {
        pub(super) fn add_bytes(&mut self, bytes: &[u8]) {
            let mut words = bytes.chunks_exact(2);
            for word in &mut words {
                self.total += u64::from(u16::from_be_bytes([word[0], word[1]]));
            }
            // An odd trailing byte is padded with zero on the right (RFC 1071 §4.1).
            if let [last] = words.remainder() {
                self.total += u64::from(u16::from_be_bytes([*last, 0]));
            }
        }

        /// The IPv4 (RFC 768) or IPv6 (RFC 8200 §8.1) pseudo-header for protocol 112.
        pub(super) fn add_pseudo_header(&mut self, src: IpAddr, dst: IpAddr, len: usize) {
            match (src, dst) {
                (IpAddr::V4(src), IpAddr::V4(dst)) => {
                    self.add_bytes(&src.octets());
                    self.add_bytes(&dst.octets());
                    self.add_bytes(&[0, super::IP_PROTOCOL]);
                    self.add_bytes(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
                }
                // Mixed families are rejected before any caller trusts a checksum; summing
                // them as IPv6 keeps this function total.
                (src, dst) => {
                    self.add_bytes(&to_v6(src).octets());
                    self.add_bytes(&to_v6(dst).octets());
                    self.add_bytes(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
                    self.add_bytes(&[0, 0, 0, super::IP_PROTOCOL]);
                }
            }
        }

        pub(super) fn finish(self) -> u16 {
            let mut total = self.total;
            while total > 0xffff {
                total = (total & 0xffff) + (total >> 16);
            }
            // Truncation is exact: the loop above left at most 16 bits.
            !(total as u16)
        }
    }

    fn to_v6(address: IpAddr) -> std::net::Ipv6Addr {
        match address {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        }
    }
}

/// The fields of a received IPv4 datagram that VRRP needs, and its payload.
///
/// Linux raw IPv4 sockets (`socket(AF_INET, SOCK_RAW, 112)`) hand over the whole datagram,
/// header included, while raw IPv6 sockets hand over only the payload. Reading six header
/// fields is done by hand rather than pulling in a packet crate: the format is fixed
/// (RFC 791 §3.1) and the checks below are all the parser needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Datagram<'a> {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Time to live as received (RFC 5798 §7.1 wants 255).
    pub ttl: u8,
    /// Protocol number (112 for VRRP).
    pub protocol: u8,
    /// The payload, trimmed to the header's total length.
    pub payload: &'a [u8],
}

/// Why bytes are not a usable IPv4 datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Ipv4Error {
    /// Shorter than the minimal 20-byte header.
    #[error("IPv4 datagram truncated: {len} bytes, the header alone is 20")]
    Truncated {
        /// Bytes received.
        len: usize,
    },
    /// The version nibble is not 4.
    #[error("IP version {version} is not 4")]
    NotIpv4 {
        /// The version nibble.
        version: u8,
    },
    /// The header length field is below 5 words or beyond the buffer.
    #[error("IPv4 header length {header_len} bytes does not fit a {len}-byte datagram")]
    BadHeaderLength {
        /// IHL × 4.
        header_len: usize,
        /// Bytes received.
        len: usize,
    },
    /// The total length field is shorter than the header or longer than the buffer.
    #[error("IPv4 total length {total_len} does not fit a {len}-byte datagram")]
    BadTotalLength {
        /// The total length field.
        total_len: usize,
        /// Bytes received.
        len: usize,
    },
    /// A fragment; adverts are never fragmented and the kernel reassembles before raw
    /// delivery, so a fragment here is not an advert.
    #[error("IPv4 fragment (offset {offset}, more fragments: {more_fragments})")]
    Fragment {
        /// Fragment offset in 8-byte units.
        offset: u16,
        /// The MF flag.
        more_fragments: bool,
    },
    /// The header checksum does not verify.
    #[error("IPv4 header checksum does not verify")]
    BadHeaderChecksum,
}

impl<'a> Ipv4Datagram<'a> {
    /// Splits a received IPv4 datagram into the fields VRRP needs and its payload.
    pub fn split(datagram: &'a [u8]) -> Result<Ipv4Datagram<'a>, Ipv4Error> {
        const MIN_HEADER_LEN: usize = 20;
        let len = datagram.len();
        let header: &[u8; MIN_HEADER_LEN] = datagram
            .get(..MIN_HEADER_LEN)
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(Ipv4Error::Truncated { len })?;
        let version = header[0] >> 4;
        if version != 4 {
            return Err(Ipv4Error::NotIpv4 { version });
        }
        let header_len = usize::from(header[0] & 0x0f) * 4;
        let Some(full_header) = datagram.get(..header_len).filter(|_| header_len >= 20) else {
            return Err(Ipv4Error::BadHeaderLength { header_len, len });
        };
        let total_len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        if total_len < header_len || total_len > len {
            return Err(Ipv4Error::BadTotalLength { total_len, len });
        }
        let flags_fragment = u16::from_be_bytes([header[6], header[7]]);
        let more_fragments = flags_fragment & 0x2000 != 0;
        let offset = flags_fragment & 0x1fff;
        if more_fragments || offset != 0 {
            return Err(Ipv4Error::Fragment {
                offset,
                more_fragments,
            });
        }
        // A header that sums (checksum included) to all ones verifies, i.e. the
        // complement of its sum is zero (RFC 1071).
        let mut sum = checksum::Sum::default();
        sum.add_bytes(full_header);
        if sum.finish() != 0 {
            return Err(Ipv4Error::BadHeaderChecksum);
        }
        Ok(Ipv4Datagram {
            src: Ipv4Addr::new(header[12], header[13], header[14], header[15]),
            dst: Ipv4Addr::new(header[16], header[17], header[18], header[19]),
            ttl: header[8],
            protocol: header[9],
            payload: datagram.get(header_len..total_len).unwrap_or_default(),
        })
    }
}

/// Golden adverts captured from keepalived 2.2.7 by `vipd/tests/fixtures/capture-keepalived.sh`
/// (configuration: `vipd/tests/fixtures/keepalived.conf`; tshark's independent decode:
/// `capture.txt`). Each file is a whole IP datagram as it arrived on the wire.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// VRID 51, VRRPv2 over IPv4, priority 100, 1 s, PASS "vipd-pw", two VIPs.
    pub(crate) const V2_IPV4_PASS: &[u8] = include_bytes!("../../tests/fixtures/v2_ipv4_pass.bin");
    /// The same router's priority-0 advert sent when keepalived stopped.
    pub(crate) const V2_IPV4_PASS_SHUTDOWN: &[u8] =
        include_bytes!("../../tests/fixtures/v2_ipv4_pass_shutdown.bin");
    /// VRID 52, VRRPv3 over IPv4, priority 150, 50 cs, three VIPs.
    pub(crate) const V3_IPV4: &[u8] = include_bytes!("../../tests/fixtures/v3_ipv4.bin");
    /// The same router's priority-0 advert sent when keepalived stopped.
    pub(crate) const V3_IPV4_SHUTDOWN: &[u8] =
        include_bytes!("../../tests/fixtures/v3_ipv4_shutdown.bin");
    /// VRID 53, VRRPv3 over IPv6 from a link-local source, priority 200, 100 cs, two VIPs.
    pub(crate) const V3_IPV6: &[u8] = include_bytes!("../../tests/fixtures/v3_ipv6.bin");
    /// The same router's priority-0 advert sent when keepalived stopped.
    pub(crate) const V3_IPV6_SHUTDOWN: &[u8] =
        include_bytes!("../../tests/fixtures/v3_ipv6_shutdown.bin");

    /// keepalived's interface addresses in the capture namespace.
    pub(crate) const KEEPALIVED_IPV4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    /// EUI-64 link-local address from the capture's fixed MAC 02:00:5e:00:53:01.
    pub(crate) const KEEPALIVED_IPV6_LINK_LOCAL: IpAddr =
        IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0x5eff, 0xfe00, 0x5301));

    /// A received advert as the socket layer sees it.
    pub(crate) struct Received<'a> {
        pub(crate) src: IpAddr,
        pub(crate) dst: IpAddr,
        pub(crate) ttl_or_hop_limit: u8,
        pub(crate) family: AddressFamily,
        pub(crate) payload: &'a [u8],
    }

    /// Splits a captured datagram like the receive path does: IPv4 through
    /// [`Ipv4Datagram::split`]; IPv6 by reading the fixed 40-byte header here, since the
    /// kernel strips it before a raw IPv6 socket sees the payload.
    pub(crate) fn split(datagram: &[u8]) -> Received<'_> {
        if datagram[0] >> 4 == 4 {
            let ipv4 = Ipv4Datagram::split(datagram).expect("fixture is a valid IPv4 datagram");
            return Received {
                src: ipv4.src.into(),
                dst: ipv4.dst.into(),
                ttl_or_hop_limit: ipv4.ttl,
                family: AddressFamily::Ipv4,
                payload: ipv4.payload,
            };
        }
        assert_eq!(datagram[6], IP_PROTOCOL, "fixture has no extension headers");
        let address = |start: usize| -> IpAddr {
            let octets: [u8; 16] = datagram[start..start + 16].try_into().unwrap();
            IpAddr::from(octets)
        };
        Received {
            src: address(8),
            dst: address(24),
            ttl_or_hop_limit: datagram[7],
            family: AddressFamily::Ipv6,
            payload: &datagram[40..],
        }
    }

    fn v4(d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, d))
    }

    fn v6(last: u16) -> IpAddr {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last))
    }

    /// What [`V2_IPV4_PASS`] decodes to, written from keepalived.conf, not from the bytes.
    pub(crate) fn v2_ipv4_pass_repr() -> AdvertRepr {
        AdvertRepr {
            version: Version::V2,
            vrid: 51,
            priority: 100,
            max_advert_interval: Centiseconds(100),
            auth: Auth::SimpleText(*b"vipd-pw\0"),
            addresses: vec![v4(100), v4(101)],
        }
    }

    /// What [`V3_IPV4`] decodes to.
    pub(crate) fn v3_ipv4_repr() -> AdvertRepr {
        AdvertRepr {
            version: Version::V3,
            vrid: 52,
            priority: 150,
            max_advert_interval: Centiseconds(50),
            auth: Auth::None,
            addresses: vec![v4(110), v4(111), v4(112)],
        }
    }

    /// What [`V3_IPV6`] decodes to.
    pub(crate) fn v3_ipv6_repr() -> AdvertRepr {
        AdvertRepr {
            version: Version::V3,
            vrid: 53,
            priority: 200,
            max_advert_interval: Centiseconds(100),
            auth: Auth::None,
            addresses: vec![v6(0x100), v6(0x101)],
        }
    }

    /// Every fixture with its expected decoding.
    pub(crate) fn all() -> Vec<(&'static str, &'static [u8], AdvertRepr)> {
        let stopping = |repr: AdvertRepr| AdvertRepr {
            priority: 0,
            ..repr
        };
        vec![
            ("v2_ipv4_pass", V2_IPV4_PASS, v2_ipv4_pass_repr()),
            (
                "v2_ipv4_pass_shutdown",
                V2_IPV4_PASS_SHUTDOWN,
                stopping(v2_ipv4_pass_repr()),
            ),
            ("v3_ipv4", V3_IPV4, v3_ipv4_repr()),
            (
                "v3_ipv4_shutdown",
                V3_IPV4_SHUTDOWN,
                stopping(v3_ipv4_repr()),
            ),
            ("v3_ipv6", V3_IPV6, v3_ipv6_repr()),
            (
                "v3_ipv6_shutdown",
                V3_IPV6_SHUTDOWN,
                stopping(v3_ipv6_repr()),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use proptest::prelude::*;

    const MULTICAST_V4: IpAddr = IpAddr::V4(IPV4_MULTICAST);
    const MULTICAST_V6: IpAddr = IpAddr::V6(IPV6_MULTICAST);

    fn v4(d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, d))
    }

    fn v6(last: u16) -> IpAddr {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last))
    }

    /// Parses bytes (already split from their IP header) the way the receive path does.
    fn parse(
        payload: &[u8],
        family: AddressFamily,
        src: IpAddr,
        dst: IpAddr,
    ) -> Result<AdvertRepr, Error> {
        AdvertRepr::parse(&Packet::new_checked(payload, family)?, src, dst)
    }

    /// Writes a fresh checksum into a mutated v3/v2 payload so a test reaches the check
    /// after the checksum.
    fn refill_checksum(payload: &mut [u8], family: AddressFamily, src: IpAddr, dst: IpAddr) {
        Packet::new_unchecked(payload, family).fill_checksum(src, dst);
    }

    fn emit_prefilled(
        repr: &AdvertRepr,
        family: AddressFamily,
        src: IpAddr,
        dst: IpAddr,
    ) -> Vec<u8> {
        // 0xa5 so a byte emit forgets to write shows up in the comparison.
        let mut bytes = vec![0xa5; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut bytes[..], family), src, dst)
            .expect("emit");
        bytes
    }

    // --- VRRPv2 over IPv4, PASS auth (RFC 3768) ---

    #[test]
    fn v2_ipv4_pass_deconstruct() {
        let rx = split(V2_IPV4_PASS);
        assert_eq!(
            (rx.src, rx.dst, rx.ttl_or_hop_limit),
            (KEEPALIVED_IPV4, MULTICAST_V4, 255)
        );
        let packet = Packet::new_checked(rx.payload, AddressFamily::Ipv4).unwrap();
        assert_eq!(packet.version_number(), 2);
        assert_eq!(packet.message_type(), MessageType::Advertisement);
        assert_eq!(packet.vrid(), 51);
        assert_eq!(packet.priority(), 100);
        assert_eq!(packet.address_count(), 2);
        assert_eq!(packet.v2_auth_type(), Auth::TYPE_SIMPLE_TEXT);
        assert_eq!(packet.v2_advert_interval_secs(), 1);
        assert_eq!(packet.checksum(), 0x69c0);
        assert_eq!(packet.addresses().collect::<Vec<_>>(), [v4(100), v4(101)]);
        assert_eq!(packet.address(2), None);
        assert_eq!(packet.v2_auth_data(), Some(*b"vipd-pw\0"));
        assert_eq!(packet.total_len(), 8 + 2 * 4 + 8);
        assert!(packet.verify_checksum(rx.src, rx.dst));
    }

    #[test]
    fn v2_ipv4_pass_construct() {
        let rx = split(V2_IPV4_PASS);
        let mut bytes = vec![0xa5; rx.payload.len()];
        let mut packet = Packet::new_unchecked(&mut bytes[..], AddressFamily::Ipv4);
        packet.set_version_and_type(2, MessageType::Advertisement);
        packet.set_vrid(51);
        packet.set_priority(100);
        packet.set_address_count(2);
        packet.set_v2_auth_type(Auth::TYPE_SIMPLE_TEXT);
        packet.set_v2_advert_interval_secs(1);
        packet.set_address(0, v4(100));
        packet.set_address(1, v4(101));
        packet.set_v2_auth_data(*b"vipd-pw\0");
        packet.fill_checksum(rx.src, rx.dst);
        assert_eq!(bytes, rx.payload);
    }

    #[test]
    fn v2_ipv4_pass_parse() {
        let rx = split(V2_IPV4_PASS);
        assert_eq!(
            parse(rx.payload, rx.family, rx.src, rx.dst),
            Ok(v2_ipv4_pass_repr())
        );
    }

    #[test]
    fn v2_ipv4_pass_emit() {
        let rx = split(V2_IPV4_PASS);
        let bytes = emit_prefilled(&v2_ipv4_pass_repr(), AddressFamily::Ipv4, rx.src, rx.dst);
        assert_eq!(bytes, rx.payload);
    }

    // --- VRRPv3 over IPv4 (RFC 5798) ---

    #[test]
    fn v3_ipv4_deconstruct() {
        let rx = split(V3_IPV4);
        assert_eq!(
            (rx.src, rx.dst, rx.ttl_or_hop_limit),
            (KEEPALIVED_IPV4, MULTICAST_V4, 255)
        );
        let packet = Packet::new_checked(rx.payload, AddressFamily::Ipv4).unwrap();
        assert_eq!(packet.version_number(), 3);
        assert_eq!(packet.message_type(), MessageType::Advertisement);
        assert_eq!(packet.vrid(), 52);
        assert_eq!(packet.priority(), 150);
        assert_eq!(packet.address_count(), 3);
        assert_eq!(packet.v3_reserved(), 0);
        assert_eq!(packet.v3_max_advert_interval(), Centiseconds(50));
        assert_eq!(packet.checksum(), 0x4eae);
        assert_eq!(
            packet.addresses().collect::<Vec<_>>(),
            [v4(110), v4(111), v4(112)]
        );
        assert_eq!(packet.v2_auth_data(), None);
        assert_eq!(packet.total_len(), 8 + 3 * 4);
        assert!(packet.verify_checksum(rx.src, rx.dst));
    }

    #[test]
    fn v3_ipv4_construct() {
        let rx = split(V3_IPV4);
        let mut bytes = vec![0xa5; rx.payload.len()];
        let mut packet = Packet::new_unchecked(&mut bytes[..], AddressFamily::Ipv4);
        packet.set_version_and_type(3, MessageType::Advertisement);
        packet.set_vrid(52);
        packet.set_priority(150);
        packet.set_address_count(3);
        packet.set_v3_max_advert_interval(Centiseconds(50));
        packet.set_address(0, v4(110));
        packet.set_address(1, v4(111));
        packet.set_address(2, v4(112));
        packet.fill_checksum(rx.src, rx.dst);
        assert_eq!(bytes, rx.payload);
    }

    #[test]
    fn v3_ipv4_parse() {
        let rx = split(V3_IPV4);
        assert_eq!(
            parse(rx.payload, rx.family, rx.src, rx.dst),
            Ok(v3_ipv4_repr())
        );
    }

    #[test]
    fn v3_ipv4_emit() {
        let rx = split(V3_IPV4);
        let bytes = emit_prefilled(&v3_ipv4_repr(), AddressFamily::Ipv4, rx.src, rx.dst);
        assert_eq!(bytes, rx.payload);
    }

    #[test]
    fn virtual_router_mac_follows_rfc_9568_7_3() {
        assert_eq!(
            virtual_router_mac(AddressFamily::Ipv4, 51),
            [0x00, 0x00, 0x5e, 0x00, 0x01, 0x33]
        );
        assert_eq!(
            virtual_router_mac(AddressFamily::Ipv6, 255),
            [0x00, 0x00, 0x5e, 0x00, 0x02, 0xff]
        );
    }

    // --- VRRPv3 over IPv4, the two checksum forms (RFC 5798 / RFC 9568 §5.2.8) ---

    /// RFC 1071 verification, written out apart from `checksum::Sum`: the 16-bit words of
    /// the message, checksum included, fold to all ones.
    fn message_alone_verifies(message: &[u8]) -> bool {
        let mut total: u32 = message
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
            .sum();
        while total > 0xffff {
            total = (total & 0xffff) + (total >> 16);
        }
        total == 0xffff
    }

    #[test]
    fn v3_ipv4_keepalived_capture_is_the_pseudo_header_form() {
        let rx = split(V3_IPV4);
        let packet = Packet::new_checked(rx.payload, AddressFamily::Ipv4).unwrap();
        assert_eq!(
            packet.checksum_form(rx.src, rx.dst),
            Some(ChecksumForm::Ipv4PseudoHeader)
        );
        assert!(!message_alone_verifies(rx.payload));
    }

    #[test]
    fn v3_ipv4_message_only_emit_sums_the_message_alone() {
        let rx = split(V3_IPV4);
        let mut bytes = vec![0xa5; v3_ipv4_repr().buffer_len()];
        v3_ipv4_repr()
            .emit_as(
                &mut Packet::new_unchecked(&mut bytes[..], AddressFamily::Ipv4),
                rx.src,
                rx.dst,
                Ipv4Checksum::MessageOnly,
            )
            .unwrap();
        // Only the checksum differs from keepalived's pseudo-header form.
        assert_eq!(bytes[..6], rx.payload[..6]);
        assert_eq!(bytes[8..], rx.payload[8..]);
        assert_ne!(bytes[6..8], rx.payload[6..8]);
        assert!(message_alone_verifies(&bytes));
        let packet = Packet::new_checked(&bytes[..], AddressFamily::Ipv4).unwrap();
        assert_eq!(
            packet.checksum_form(rx.src, rx.dst),
            Some(ChecksumForm::Ipv4MessageOnly)
        );
        // RFC 9568 §7.1: either form is a verified checksum.
        assert_eq!(
            parse(&bytes, AddressFamily::Ipv4, rx.src, rx.dst),
            Ok(v3_ipv4_repr())
        );
    }

    #[test]
    fn v3_ipv4_checksum_in_neither_form_is_refused() {
        let rx = split(V3_IPV4);
        let mut bytes = rx.payload.to_vec();
        bytes[7] ^= 0x01;
        let packet = Packet::new_checked(&bytes[..], AddressFamily::Ipv4).unwrap();
        assert_eq!(packet.checksum_form(rx.src, rx.dst), None);
        assert!(matches!(
            parse(&bytes, AddressFamily::Ipv4, rx.src, rx.dst),
            Err(Error::BadChecksum { .. })
        ));
    }

    #[test]
    fn v3_ipv4_pseudo_header_summing_to_zero_leaves_the_form_unknown() {
        // 192.0.2.200 → 203.0.113.178, protocol 112, 20 bytes: the pseudo-header's words
        // sum to 0xffff (one's-complement zero), so both forms give one checksum.
        let (src, dst): (IpAddr, IpAddr) = (
            Ipv4Addr::new(192, 0, 2, 200).into(),
            Ipv4Addr::new(203, 0, 113, 178).into(),
        );
        let mut bytes = split(V3_IPV4).payload.to_vec();
        refill_checksum(&mut bytes, AddressFamily::Ipv4, src, dst);
        let packet = Packet::new_checked(&bytes[..], AddressFamily::Ipv4).unwrap();
        assert_eq!(
            packet.checksum_form(src, dst),
            Some(ChecksumForm::Ipv4Either)
        );
        // Another source breaks the tie.
        let other: IpAddr = Ipv4Addr::new(192, 0, 2, 201).into();
        assert_eq!(
            packet.checksum_form(other, dst),
            Some(ChecksumForm::Ipv4MessageOnly)
        );
    }

    #[test]
    fn v2_and_ipv6_have_one_form_whatever_the_setting() {
        let rx = split(V2_IPV4_PASS);
        let packet = Packet::new_checked(rx.payload, AddressFamily::Ipv4).unwrap();
        assert_eq!(
            packet.checksum_form(rx.src, rx.dst),
            Some(ChecksumForm::Only)
        );
        assert_eq!(
            packet.compute_checksum_as(rx.src, rx.dst, Ipv4Checksum::MessageOnly),
            packet.compute_checksum_as(rx.src, rx.dst, Ipv4Checksum::PseudoHeader)
        );
        let rx = split(V3_IPV6);
        let packet = Packet::new_checked(rx.payload, AddressFamily::Ipv6).unwrap();
        assert_eq!(
            packet.checksum_form(rx.src, rx.dst),
            Some(ChecksumForm::Only)
        );
        // RFC 9568 §5.2.8: IPv6 keeps its pseudo-header whatever the IPv4 setting.
        assert_eq!(
            packet.compute_checksum_as(rx.src, rx.dst, Ipv4Checksum::MessageOnly),
            packet.checksum()
        );
    }

    // --- VRRPv3 over IPv6 (RFC 5798) ---

    #[test]
    fn v3_ipv6_deconstruct() {
        let rx = split(V3_IPV6);
        assert_eq!(
            (rx.src, rx.dst, rx.ttl_or_hop_limit),
            (KEEPALIVED_IPV6_LINK_LOCAL, MULTICAST_V6, 255)
        );
        let packet = Packet::new_checked(rx.payload, AddressFamily::Ipv6).unwrap();
        assert_eq!(packet.version_number(), 3);
        assert_eq!(packet.message_type(), MessageType::Advertisement);
        assert_eq!(packet.vrid(), 53);
        assert_eq!(packet.priority(), 200);
        assert_eq!(packet.address_count(), 2);
        assert_eq!(packet.v3_reserved(), 0);
        assert_eq!(packet.v3_max_advert_interval(), Centiseconds(100));
        assert_eq!(packet.checksum(), 0xfac0);
        assert_eq!(
            packet.addresses().collect::<Vec<_>>(),
            [v6(0x100), v6(0x101)]
        );
        assert_eq!(packet.total_len(), 8 + 2 * 16);
        assert!(packet.verify_checksum(rx.src, rx.dst));
    }

    #[test]
    fn v3_ipv6_construct() {
        let rx = split(V3_IPV6);
        let mut bytes = vec![0xa5; rx.payload.len()];
        let mut packet = Packet::new_unchecked(&mut bytes[..], AddressFamily::Ipv6);
        packet.set_version_and_type(3, MessageType::Advertisement);
        packet.set_vrid(53);
        packet.set_priority(200);
        packet.set_address_count(2);
        packet.set_v3_max_advert_interval(Centiseconds(100));
        packet.set_address(0, v6(0x100));
        packet.set_address(1, v6(0x101));
        packet.fill_checksum(rx.src, rx.dst);
        assert_eq!(bytes, rx.payload);
    }

    #[test]
    fn v3_ipv6_parse() {
        let rx = split(V3_IPV6);
        assert_eq!(
            parse(rx.payload, rx.family, rx.src, rx.dst),
            Ok(v3_ipv6_repr())
        );
    }

    #[test]
    fn v3_ipv6_emit() {
        let rx = split(V3_IPV6);
        let bytes = emit_prefilled(&v3_ipv6_repr(), AddressFamily::Ipv6, rx.src, rx.dst);
        assert_eq!(bytes, rx.payload);
    }

    // --- every fixture, including keepalived's priority-0 shutdown adverts ---

    #[test]
    fn every_fixture_parses_and_emit_reproduces_keepalived_bytes() {
        for (name, datagram, expected) in all() {
            let rx = split(datagram);
            assert_eq!(rx.ttl_or_hop_limit, TTL, "{name}");
            let parsed = parse(rx.payload, rx.family, rx.src, rx.dst);
            assert_eq!(parsed.as_ref(), Ok(&expected), "{name}");
            assert_eq!(
                emit_prefilled(&expected, rx.family, rx.src, rx.dst),
                rx.payload,
                "{name}"
            );
        }
    }

    // --- checksum coverage (RFC 5798 §5.2.8, RFC 3768 §5.3.8) ---

    #[test]
    fn v3_checksum_covers_the_pseudo_header() {
        for datagram in [V3_IPV4, V3_IPV6] {
            let rx = split(datagram);
            let other_src = match rx.src {
                IpAddr::V4(_) => v4(9),
                IpAddr::V6(_) => v6(9),
            };
            assert!(matches!(
                parse(rx.payload, rx.family, other_src, rx.dst),
                Err(Error::BadChecksum { received, .. }) if received == Packet::new_unchecked(rx.payload, rx.family).checksum()
            ));
        }
    }

    #[test]
    fn v2_checksum_covers_only_the_vrrp_message() {
        let rx = split(V2_IPV4_PASS);
        assert_eq!(
            parse(rx.payload, rx.family, v4(9), v4(10)),
            Ok(v2_ipv4_pass_repr())
        );
    }

    #[test]
    fn checksum_covers_every_byte_of_the_message() {
        for (name, datagram, _) in all() {
            let rx = split(datagram);
            for index in 0..rx.payload.len() {
                if field::CHECKSUM.contains(&index) {
                    continue;
                }
                let mut bytes = rx.payload.to_vec();
                bytes[index] ^= 0x01;
                let packet = Packet::new_unchecked(&bytes[..], rx.family);
                assert!(
                    !packet.verify_checksum(rx.src, rx.dst),
                    "{name} byte {index}"
                );
            }
        }
    }

    // --- malformed input: each error ---

    #[test]
    fn shorter_than_header_is_truncated() {
        let rx = split(V3_IPV4);
        for len in 0..HEADER_LEN {
            assert_eq!(
                Packet::new_checked(&rx.payload[..len], rx.family).err(),
                Some(Error::Truncated { len })
            );
        }
    }

    #[test]
    fn address_count_must_match_length() {
        let rx = split(V2_IPV4_PASS);
        let mut one_more = rx.payload.to_vec();
        one_more[field::ADDRESS_COUNT] = 3;
        assert_eq!(
            Packet::new_checked(&one_more[..], rx.family).err(),
            Some(Error::LengthMismatch {
                address_count: 3,
                family: AddressFamily::Ipv4,
                expected_len: 28,
                actual_len: 24,
            })
        );
        let mut trailing = rx.payload.to_vec();
        trailing.push(0);
        assert!(matches!(
            Packet::new_checked(&trailing[..], rx.family),
            Err(Error::LengthMismatch {
                expected_len: 24,
                actual_len: 25,
                ..
            })
        ));
        // The family decides the address length: IPv4 bytes read as IPv6 do not fit.
        let v3 = split(V3_IPV4);
        assert!(matches!(
            Packet::new_checked(v3.payload, AddressFamily::Ipv6),
            Err(Error::LengthMismatch {
                expected_len: 56,
                actual_len: 20,
                ..
            })
        ));
    }

    #[test]
    fn unknown_version_is_rejected() {
        let rx = split(V3_IPV4);
        for version in [0u8, 1, 4, 15] {
            let mut bytes = rx.payload.to_vec();
            bytes[0] = (version << 4) | 1;
            refill_checksum(&mut bytes, rx.family, rx.src, rx.dst);
            assert_eq!(
                parse(&bytes, rx.family, rx.src, rx.dst),
                Err(Error::UnknownVersion { version })
            );
        }
    }

    #[test]
    fn unknown_type_is_kept_by_the_view_and_rejected_by_parse() {
        let rx = split(V3_IPV6);
        let mut bytes = rx.payload.to_vec();
        bytes[0] = 0x32;
        refill_checksum(&mut bytes, rx.family, rx.src, rx.dst);
        let packet = Packet::new_checked(&bytes[..], rx.family).unwrap();
        assert_eq!(packet.message_type(), MessageType::Unknown(2));
        assert_eq!(u8::from(packet.message_type()), 2);
        assert_eq!(
            AdvertRepr::parse(&packet, rx.src, rx.dst),
            Err(Error::NotAdvertisement { type_code: 2 })
        );
    }

    #[test]
    fn bad_checksum_is_rejected() {
        let rx = split(V2_IPV4_PASS);
        let mut bytes = rx.payload.to_vec();
        bytes[field::CHECKSUM.start] ^= 0xff;
        assert_eq!(
            parse(&bytes, rx.family, rx.src, rx.dst),
            Err(Error::BadChecksum {
                received: 0x96c0,
                computed: 0x69c0
            })
        );
    }

    #[test]
    fn zero_interval_is_rejected_in_both_versions() {
        let v3 = split(V3_IPV4);
        let mut bytes = v3.payload.to_vec();
        bytes[4] = 0;
        bytes[5] = 0;
        refill_checksum(&mut bytes, v3.family, v3.src, v3.dst);
        assert_eq!(
            parse(&bytes, v3.family, v3.src, v3.dst),
            Err(Error::ZeroInterval)
        );

        let v2 = split(V2_IPV4_PASS);
        let mut bytes = v2.payload.to_vec();
        bytes[field::V2_ADVER_INT] = 0;
        refill_checksum(&mut bytes, v2.family, v2.src, v2.dst);
        assert_eq!(
            parse(&bytes, v2.family, v2.src, v2.dst),
            Err(Error::ZeroInterval)
        );
    }

    #[test]
    fn v3_reserved_bits_are_ignored_on_reception() {
        // RFC 5798 §5.2.6.
        let rx = split(V3_IPV4);
        let mut bytes = rx.payload.to_vec();
        bytes[4] |= 0xf0;
        refill_checksum(&mut bytes, rx.family, rx.src, rx.dst);
        assert_eq!(
            Packet::new_unchecked(&bytes[..], rx.family).v3_reserved(),
            0xf
        );
        assert_eq!(parse(&bytes, rx.family, rx.src, rx.dst), Ok(v3_ipv4_repr()));
    }

    #[test]
    fn v2_auth_none_ignores_its_data_and_unknown_types_are_kept() {
        let rx = split(V2_IPV4_PASS);
        for (auth_type, expected) in [
            (0, Auth::None),
            (
                2,
                Auth::Other {
                    auth_type: 2,
                    data: *b"vipd-pw\0",
                },
            ),
            (
                0xff,
                Auth::Other {
                    auth_type: 0xff,
                    data: *b"vipd-pw\0",
                },
            ),
        ] {
            let mut bytes = rx.payload.to_vec();
            bytes[field::V2_AUTH_TYPE] = auth_type;
            refill_checksum(&mut bytes, rx.family, rx.src, rx.dst);
            let parsed = parse(&bytes, rx.family, rx.src, rx.dst).unwrap();
            assert_eq!(parsed.auth, expected);
        }
    }

    #[test]
    fn families_must_agree() {
        let rx = split(V3_IPV4);
        assert_eq!(
            parse(rx.payload, rx.family, rx.src, MULTICAST_V6),
            Err(Error::FamilyMismatch {
                src: rx.src,
                dst: MULTICAST_V6,
                family: AddressFamily::Ipv4
            })
        );
        let rx6 = split(V3_IPV6);
        assert!(matches!(
            parse(rx6.payload, rx6.family, KEEPALIVED_IPV4, MULTICAST_V4),
            Err(Error::FamilyMismatch { .. })
        ));
    }

    #[test]
    fn v2_over_ipv6_is_rejected() {
        let repr = AdvertRepr {
            addresses: vec![v6(1)],
            ..v2_ipv4_pass_repr()
        };
        let mut bytes = vec![0; repr.buffer_len()];
        assert_eq!(bytes.len(), 8 + 16 + 8);
        let mut packet = Packet::new_unchecked(&mut bytes[..], AddressFamily::Ipv6);
        assert_eq!(
            repr.emit(&mut packet, KEEPALIVED_IPV6_LINK_LOCAL, MULTICAST_V6),
            Err(Error::V2OverIpv6)
        );
        // Build it by hand to see parse refuse it too.
        bytes[0] = 0x21;
        bytes[3] = 1;
        bytes[5] = 1;
        refill_checksum(
            &mut bytes,
            AddressFamily::Ipv6,
            KEEPALIVED_IPV6_LINK_LOCAL,
            MULTICAST_V6,
        );
        assert_eq!(
            parse(
                &bytes,
                AddressFamily::Ipv6,
                KEEPALIVED_IPV6_LINK_LOCAL,
                MULTICAST_V6
            ),
            Err(Error::V2OverIpv6)
        );
    }

    #[test]
    fn emit_refuses_what_the_wire_cannot_carry() {
        let src = KEEPALIVED_IPV4;
        let dst = MULTICAST_V4;
        let try_emit = |repr: &AdvertRepr| {
            let mut bytes = vec![0xa5; repr.buffer_len()];
            let mut packet = Packet::new_unchecked(&mut bytes[..], AddressFamily::Ipv4);
            let result = repr.emit(&mut packet, src, dst);
            if result.is_err() {
                assert!(
                    bytes.iter().all(|byte| *byte == 0xa5),
                    "a refused emit wrote"
                );
            }
            result
        };
        let v2 = v2_ipv4_pass_repr();
        let v3 = v3_ipv4_repr();
        for interval in [Centiseconds(150), Centiseconds(25_600)] {
            let repr = AdvertRepr {
                max_advert_interval: interval,
                ..v2.clone()
            };
            assert_eq!(
                try_emit(&repr),
                Err(Error::IntervalOutOfRange {
                    version: Version::V2,
                    interval
                })
            );
        }
        let repr = AdvertRepr {
            max_advert_interval: Centiseconds(4096),
            ..v3.clone()
        };
        assert_eq!(
            try_emit(&repr),
            Err(Error::IntervalOutOfRange {
                version: Version::V3,
                interval: Centiseconds(4096)
            })
        );
        for repr in [
            AdvertRepr {
                max_advert_interval: Centiseconds(0),
                ..v2.clone()
            },
            AdvertRepr {
                max_advert_interval: Centiseconds(0),
                ..v3.clone()
            },
        ] {
            assert_eq!(try_emit(&repr), Err(Error::ZeroInterval));
        }
        let repr = AdvertRepr {
            addresses: vec![v4(1); 256],
            ..v3.clone()
        };
        assert_eq!(try_emit(&repr), Err(Error::TooManyAddresses { count: 256 }));
        let repr = AdvertRepr {
            addresses: vec![v4(1), v6(1)],
            ..v3.clone()
        };
        assert_eq!(
            try_emit(&repr),
            Err(Error::AddressFamilyMixed {
                address: v6(1),
                family: AddressFamily::Ipv4
            })
        );
        let repr = AdvertRepr {
            auth: Auth::SimpleText(*b"password"),
            ..v3.clone()
        };
        assert_eq!(try_emit(&repr), Err(Error::AuthOnV3));
        let mut short = vec![0; v3.buffer_len() - 1];
        assert_eq!(
            v3.emit(
                &mut Packet::new_unchecked(&mut short[..], AddressFamily::Ipv4),
                src,
                dst
            ),
            Err(Error::BufferLength {
                expected_len: 20,
                actual_len: 19
            })
        );
        assert_eq!(
            v3.emit(
                &mut Packet::new_unchecked(&mut [0; 20][..], AddressFamily::Ipv4),
                src,
                MULTICAST_V6
            ),
            Err(Error::FamilyMismatch {
                src,
                dst: MULTICAST_V6,
                family: AddressFamily::Ipv4
            })
        );
    }

    #[test]
    fn small_helpers() {
        assert_eq!(Version::from_number(2), Some(Version::V2));
        assert_eq!(Version::from_number(3), Some(Version::V3));
        assert_eq!(Version::from_number(4), None);
        assert_eq!(Centiseconds::from_secs(255), Centiseconds(25_500));
        assert_eq!(Centiseconds(300).as_v2_secs(), Some(3));
        assert_eq!(Centiseconds(350).as_v2_secs(), None);
        assert_eq!(Centiseconds(50).as_duration(), Duration::from_millis(500));
        assert_eq!(
            Auth::simple_text(b"vipd-pw"),
            Some(Auth::SimpleText(*b"vipd-pw\0"))
        );
        assert_eq!(Auth::simple_text(b"123456789"), None);
        assert_eq!(Auth::None.data(), [0; 8]);
    }

    // --- IPv4 datagram split ---

    #[test]
    fn ipv4_split_reads_the_header_fields() {
        let datagram = Ipv4Datagram::split(V2_IPV4_PASS).unwrap();
        assert_eq!(datagram.src, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(datagram.dst, IPV4_MULTICAST);
        assert_eq!(datagram.ttl, 255);
        assert_eq!(datagram.protocol, IP_PROTOCOL);
        assert_eq!(datagram.payload, &V2_IPV4_PASS[20..]);
        // Link-layer padding after the total length is not payload.
        let mut padded = V2_IPV4_PASS.to_vec();
        padded.extend([0, 0]);
        assert_eq!(
            Ipv4Datagram::split(&padded).unwrap().payload,
            &V2_IPV4_PASS[20..]
        );
    }

    #[test]
    fn ipv4_split_errors() {
        let good = V3_IPV4;
        let with = |index: usize, value: u8| {
            let mut bytes = good.to_vec();
            bytes[index] = value;
            bytes
        };
        assert_eq!(
            Ipv4Datagram::split(&good[..19]),
            Err(Ipv4Error::Truncated { len: 19 })
        );
        assert_eq!(
            Ipv4Datagram::split(&with(0, 0x65)),
            Err(Ipv4Error::NotIpv4 { version: 6 })
        );
        assert_eq!(
            Ipv4Datagram::split(&with(0, 0x44)),
            Err(Ipv4Error::BadHeaderLength {
                header_len: 16,
                len: 40
            })
        );
        assert_eq!(
            Ipv4Datagram::split(&with(0, 0x4f)),
            Err(Ipv4Error::BadHeaderLength {
                header_len: 60,
                len: 40
            })
        );
        assert_eq!(
            Ipv4Datagram::split(&with(3, 41)),
            Err(Ipv4Error::BadTotalLength {
                total_len: 41,
                len: 40
            })
        );
        assert_eq!(
            Ipv4Datagram::split(&with(3, 19)),
            Err(Ipv4Error::BadTotalLength {
                total_len: 19,
                len: 40
            })
        );
        assert_eq!(
            Ipv4Datagram::split(&with(6, 0x20)),
            Err(Ipv4Error::Fragment {
                offset: 0,
                more_fragments: true
            })
        );
        assert_eq!(
            Ipv4Datagram::split(&with(7, 0x01)),
            Err(Ipv4Error::Fragment {
                offset: 1,
                more_fragments: false
            })
        );
        assert_eq!(
            Ipv4Datagram::split(&with(8, 254)),
            Err(Ipv4Error::BadHeaderChecksum)
        );
    }

    // --- properties ---

    fn ipv4() -> impl Strategy<Value = IpAddr> {
        any::<[u8; 4]>().prop_map(IpAddr::from)
    }

    fn ipv6() -> impl Strategy<Value = IpAddr> {
        any::<[u8; 16]>().prop_map(IpAddr::from)
    }

    fn any_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![ipv4(), ipv6()]
    }

    fn v2_auth() -> impl Strategy<Value = Auth> {
        prop_oneof![
            Just(Auth::None),
            any::<[u8; 8]>().prop_map(Auth::SimpleText),
            (2u8.., any::<[u8; 8]>()).prop_map(|(auth_type, data)| Auth::Other { auth_type, data }),
        ]
    }

    /// (repr, family, src, dst) for every version × family the RFCs define.
    fn valid_advert() -> impl Strategy<Value = (AdvertRepr, AddressFamily, IpAddr, IpAddr)> {
        let v2_ipv4 = (
            any::<u8>(),
            any::<u8>(),
            1u8..,
            v2_auth(),
            prop::collection::vec(ipv4(), 0..=20),
            ipv4(),
            ipv4(),
        )
            .prop_map(|(vrid, priority, seconds, auth, addresses, src, dst)| {
                let repr = AdvertRepr {
                    version: Version::V2,
                    vrid,
                    priority,
                    max_advert_interval: Centiseconds::from_secs(seconds),
                    auth,
                    addresses,
                };
                (repr, AddressFamily::Ipv4, src, dst)
            });
        let v3 = |family: AddressFamily, address: BoxedStrategy<IpAddr>| {
            (
                any::<u8>(),
                any::<u8>(),
                1..=Centiseconds::V3_MAX.0,
                prop::collection::vec(address.clone(), 0..=20),
                address.clone(),
                address,
            )
                .prop_map(move |(vrid, priority, interval, addresses, src, dst)| {
                    let repr = AdvertRepr {
                        version: Version::V3,
                        vrid,
                        priority,
                        max_advert_interval: Centiseconds(interval),
                        auth: Auth::None,
                        addresses,
                    };
                    (repr, family, src, dst)
                })
        };
        prop_oneof![
            v2_ipv4,
            v3(AddressFamily::Ipv4, ipv4().boxed()),
            v3(AddressFamily::Ipv6, ipv6().boxed()),
        ]
    }

    proptest! {
        #[test]
        fn emit_then_parse_round_trips((repr, family, src, dst) in valid_advert()) {
            let mut bytes = vec![0xa5; repr.buffer_len()];
            repr.emit(&mut Packet::new_unchecked(&mut bytes[..], family), src, dst).unwrap();
            prop_assert_eq!(parse(&bytes, family, src, dst), Ok(repr));
        }

        #[test]
        fn parse_never_panics(
            bytes in prop::collection::vec(any::<u8>(), 0..600),
            v6_view in any::<bool>(),
            src in any_ip(),
            dst in any_ip(),
        ) {
            let family = if v6_view { AddressFamily::Ipv6 } else { AddressFamily::Ipv4 };
            if let Ok(packet) = Packet::new_checked(&bytes[..], family) {
                // After new_checked no accessor may panic, whatever the version says.
                let _ = (packet.version_number(), packet.message_type(), packet.vrid());
                let _ = (packet.priority(), packet.v2_auth_type(), packet.v2_advert_interval_secs());
                let _ = (packet.v3_reserved(), packet.v3_max_advert_interval(), packet.checksum());
                let _ = (packet.addresses().count(), packet.v2_auth_data());
                let _ = packet.address(usize::MAX);
                let _ = packet.compute_checksum(src, dst);
                let _ = AdvertRepr::parse(&packet, src, dst);
            }
        }

        #[test]
        fn parse_never_panics_on_mutated_fixtures(
            fixture in 0usize..6,
            index in any::<prop::sample::Index>(),
            value in any::<u8>(),
            cut in any::<prop::sample::Index>(),
        ) {
            // Random bytes rarely get past the length check; mutating real adverts does.
            let (_, datagram, _) = &all()[fixture];
            let rx = split(datagram);
            let mut bytes = rx.payload.to_vec();
            let at = index.index(bytes.len());
            bytes[at] = value;
            let keep = cut.index(bytes.len() + 1);
            bytes.truncate(keep);
            let _ = parse(&bytes, rx.family, rx.src, rx.dst);
        }

        #[test]
        fn ipv4_split_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..100)) {
            if let Ok(datagram) = Ipv4Datagram::split(&bytes) {
                prop_assert!(datagram.payload.len() + 20 <= bytes.len());
            }
        }
    }
}
