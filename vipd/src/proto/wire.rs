//! VRRP advertisement wire format: RFC 3768 (v2) and RFC 5798 (v3), over IPv4 and IPv6.
//!
//! Sans-IO: bytes in, values out.

use std::net::IpAddr;
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
}

/// An advertisement interval in centiseconds, the unit of the v3 12-bit field
/// (RFC 5798 §5.2.7). A v2 interval of S seconds is `Centiseconds(S * 100)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Centiseconds(pub u16);

impl Centiseconds {
    /// The interval as a `Duration`.
    pub const fn as_duration(self) -> Duration {
        Duration::from_millis(self.0 as u64 * 10)
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
