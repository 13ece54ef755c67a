//! The receive checks of RFC 5798 §7.1 (and RFC 3768 §7.1 for v2), as one ordered checklist.
//!
//! Sans-IO: no tokio, libc, netlink or aya, and no clock. The driver hands in what the
//! socket delivered ([`RxMeta`] and the VRRP payload) plus what is configured; out comes
//! either an [`Accepted`] advert for the state machine or the [`Discard`] reason, which
//! [`RxCounters::record`] counts for status and metrics.
//!
//! The order, which is the order of [`Discard`]'s variants and of [`DiscardReason::ALL`]:
//!
//! 0. our own advert looped back (not an RFC step: it is neither a peer nor an error, so it
//!    goes first and is counted apart);
//! 1. IPv4 TTL / IPv6 Hop Limit is 255;
//! 2. the version is the configured one;
//! 3. the message is complete (header, address list, v2 auth data) and the checksum
//!    verifies; structural faults the RFC does not list are [`Discard::Malformed`];
//! 4. the type is Advertisement;
//! 5. the VRID is configured on the receiving interface (RFC 9568 §7.1; the address
//!    owner no longer discards, see erratum 8298 at the check);
//! 6. v2: the auth type and data match;
//! 7. v2: the advert interval matches (v3 has no such check: the backup learns it);
//! 8. the address list matches the configured VIPs; a mismatch is accepted and flagged.
//!
//! A packet that fails several checks reports the first.
//!
//! Adverts the XDP program recorded (ring-buffer events, and the record a backup reads
//! when its Master_Down_Timer is due) go through [`validate_observed`]: the program ran
//! the checks it can afford, and the rest (0, 2 again, the zero interval of 3, 5 and 7)
//! run here through the same code, with the same [`Discard`] reasons and counters, so an
//! advert reaches the state machine by either path only if the socket path would have
//! accepted it.

use std::net::IpAddr;

use super::wire::{
    self, AddressFamily, AdvertRepr, Auth, Centiseconds, Ipv4Datagram, Packet, Version,
};

/// What the socket layer knows about a received advert besides its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxMeta {
    /// IP source address (for IPv6, the sender's link-local address).
    pub src: IpAddr,
    /// IP destination address (the VRRP multicast group, or ours for unicast peers).
    pub dst: IpAddr,
    /// IPv4 TTL, or the IPv6 Hop Limit from `IPV6_RECVHOPLIMIT`.
    pub ttl_or_hop_limit: u8,
}

impl From<&Ipv4Datagram<'_>> for RxMeta {
    fn from(datagram: &Ipv4Datagram<'_>) -> RxMeta {
        RxMeta {
            src: datagram.src.into(),
            dst: datagram.dst.into(),
            ttl_or_hop_limit: datagram.ttl,
        }
    }
}

/// What is configured for the virtual router an advert's VRID names on the receiving
/// interface and address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expected<'a> {
    /// The configured protocol version.
    pub version: Version,
    /// The configured VRID; a lookup that returns a router with another VRID is treated
    /// as no router at all.
    pub vrid: u8,
    /// v2: the configured authentication. Ignored for v3.
    pub auth: Auth,
    /// v2: the configured advert interval. Ignored for v3.
    pub advert_interval: Centiseconds,
    /// The configured virtual addresses, in any order.
    pub virtual_addresses: &'a [IpAddr],
}

/// An advert that passed every discard check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The decoded advert.
    pub advert: AdvertRepr,
    /// The sender's address, which RFC 5798 §6.4.3 compares when priorities tie.
    pub sender: IpAddr,
    /// The address list differs from the configured VIPs. RFC 5798 §7.1 lets a router
    /// drop such adverts; we log and count instead, so a VIP edit rolled out to one node
    /// before the other cannot split the brain.
    pub address_list_mismatch: bool,
    /// The checksum form the advert verified with; `None` for an advert the XDP program
    /// recorded (it checked the checksum, in either form, but keeps no form).
    pub checksum: Option<wire::ChecksumForm>,
}

/// Why a received advert was discarded, one variant per check, in the order they run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Discard {
    /// Our own advert came back to us (the source is one of our addresses).
    #[error("own advert looped back from {src}")]
    OwnAdvert {
        /// Source address, one of ours.
        src: IpAddr,
    },
    /// Step 1: the TTL / Hop Limit is not 255, so the sender is not on this link.
    #[error("TTL/hop limit {received}, must be 255")]
    TtlNot255 {
        /// The TTL or hop limit received.
        received: u8,
    },
    /// Step 2: the version is not the configured one (or, with no router configured for
    /// the VRID, not one vipd speaks).
    #[error("VRRP version {received}, expected {}", match expected {
        Some(version) => version.number().to_string(),
        None => "2 or 3".to_string(),
    })]
    VersionMismatch {
        /// The configured version, `None` when no router is configured for the VRID.
        expected: Option<Version>,
        /// The 4-bit version field (absent in an empty payload: then step 3 fails).
        received: u8,
    },
    /// Step 3: shorter than the fixed header.
    #[error("VRRP message truncated to {len} bytes")]
    Truncated {
        /// Bytes received.
        len: usize,
    },
    /// Step 3: the length does not match the address count.
    #[error("{address_count} addresses need {expected_len} bytes, got {actual_len}")]
    AddressCountMismatch {
        /// The Count IPvX Addr field.
        address_count: u8,
        /// Bytes the count calls for.
        expected_len: usize,
        /// Bytes received.
        actual_len: usize,
    },
    /// Step 3: the checksum does not verify.
    #[error("checksum {received:#06x}, computed {computed:#06x}")]
    BadChecksum {
        /// The checksum field.
        received: u16,
        /// What the message sums to.
        computed: u16,
    },
    /// Step 3 (beyond the RFC's list): structurally invalid in another way: source and
    /// destination families disagree, VRRPv2 over IPv6 (both found before the checksum),
    /// or a zero interval (found after the type).
    #[error("malformed advert: {0}")]
    Malformed(wire::Error),
    /// Step 4: the type is not Advertisement.
    #[error("VRRP type {type_code} is not an advertisement")]
    NotAdvertisement {
        /// The 4-bit type field.
        type_code: u8,
    },
    /// Step 5: no virtual router with this VRID on the receiving interface.
    #[error("VRID {vrid} is not configured here")]
    VridNotConfigured {
        /// The VRID received.
        vrid: u8,
    },
    /// Step 6 (v2): the auth type differs from the configured one.
    #[error("auth type {received}, configured {expected}")]
    AuthTypeMismatch {
        /// The configured auth type.
        expected: u8,
        /// The auth type received.
        received: u8,
    },
    /// Step 6 (v2): the authentication data (password) differs.
    #[error("authentication data does not match")]
    AuthDataMismatch,
    /// Step 7 (v2): the advert interval differs from the configured one.
    #[error("advert interval {received}, configured {expected}")]
    IntervalMismatch {
        /// The configured interval.
        expected: Centiseconds,
        /// The interval received.
        received: Centiseconds,
    },
}

/// A [`Discard`] without its details: what a counter is kept per.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DiscardReason {
    /// [`Discard::OwnAdvert`].
    OwnAdvert,
    /// [`Discard::TtlNot255`].
    TtlNot255,
    /// [`Discard::VersionMismatch`].
    VersionMismatch,
    /// [`Discard::Truncated`].
    Truncated,
    /// [`Discard::AddressCountMismatch`].
    AddressCountMismatch,
    /// [`Discard::BadChecksum`].
    BadChecksum,
    /// [`Discard::Malformed`].
    Malformed,
    /// [`Discard::NotAdvertisement`].
    NotAdvertisement,
    /// [`Discard::VridNotConfigured`].
    VridNotConfigured,
    /// [`Discard::AuthTypeMismatch`].
    AuthTypeMismatch,
    /// [`Discard::AuthDataMismatch`].
    AuthDataMismatch,
    /// [`Discard::IntervalMismatch`].
    IntervalMismatch,
}

impl DiscardReason {
    /// Every reason, in check order.
    pub const ALL: [DiscardReason; 12] = [
        DiscardReason::OwnAdvert,
        DiscardReason::TtlNot255,
        DiscardReason::VersionMismatch,
        DiscardReason::Truncated,
        DiscardReason::AddressCountMismatch,
        DiscardReason::BadChecksum,
        DiscardReason::Malformed,
        DiscardReason::NotAdvertisement,
        DiscardReason::VridNotConfigured,
        DiscardReason::AuthTypeMismatch,
        DiscardReason::AuthDataMismatch,
        DiscardReason::IntervalMismatch,
    ];

    /// Whether a discard for this reason is worth a (rate-limited) warning. RFC 9568 §7.1
    /// says a receiver "SHOULD log the event (subject to rate-limiting)" for a failed
    /// check. Two are not events: our own advert coming back, and a VRID we do not run
    /// (other virtual routers on a shared segment send those all day). They are counted
    /// like the others.
    pub const fn worth_logging(self) -> bool {
        !matches!(
            self,
            DiscardReason::OwnAdvert | DiscardReason::VridNotConfigured
        )
    }

    /// A stable snake_case name for status output and metrics; do not rename.
    pub const fn name(self) -> &'static str {
        match self {
            DiscardReason::OwnAdvert => "own_advert",
            DiscardReason::TtlNot255 => "ttl_not_255",
            DiscardReason::VersionMismatch => "version_mismatch",
            DiscardReason::Truncated => "truncated",
            DiscardReason::AddressCountMismatch => "address_count_mismatch",
            DiscardReason::BadChecksum => "bad_checksum",
            DiscardReason::Malformed => "malformed",
            DiscardReason::NotAdvertisement => "not_advertisement",
            DiscardReason::VridNotConfigured => "vrid_not_configured",
            DiscardReason::AuthTypeMismatch => "auth_type_mismatch",
            DiscardReason::AuthDataMismatch => "auth_data_mismatch",
            DiscardReason::IntervalMismatch => "interval_mismatch",
        }
    }

    // Position in ALL, which the match keeps in step with the enum.
    const fn index(self) -> usize {
        self as usize
    }
}

impl Discard {
    /// The counter this discard is recorded under.
    pub const fn reason(&self) -> DiscardReason {
        match self {
            Discard::OwnAdvert { .. } => DiscardReason::OwnAdvert,
            Discard::TtlNot255 { .. } => DiscardReason::TtlNot255,
            Discard::VersionMismatch { .. } => DiscardReason::VersionMismatch,
            Discard::Truncated { .. } => DiscardReason::Truncated,
            Discard::AddressCountMismatch { .. } => DiscardReason::AddressCountMismatch,
            Discard::BadChecksum { .. } => DiscardReason::BadChecksum,
            Discard::Malformed(_) => DiscardReason::Malformed,
            Discard::NotAdvertisement { .. } => DiscardReason::NotAdvertisement,
            Discard::VridNotConfigured { .. } => DiscardReason::VridNotConfigured,
            Discard::AuthTypeMismatch { .. } => DiscardReason::AuthTypeMismatch,
            Discard::AuthDataMismatch => DiscardReason::AuthDataMismatch,
            Discard::IntervalMismatch { .. } => DiscardReason::IntervalMismatch,
        }
    }
}

impl From<wire::Error> for Discard {
    fn from(error: wire::Error) -> Discard {
        match error {
            wire::Error::Truncated { len } => Discard::Truncated { len },
            wire::Error::LengthMismatch {
                address_count,
                expected_len,
                actual_len,
                ..
            } => Discard::AddressCountMismatch {
                address_count,
                expected_len,
                actual_len,
            },
            wire::Error::BadChecksum { received, computed } => {
                Discard::BadChecksum { received, computed }
            }
            wire::Error::NotAdvertisement { type_code } => Discard::NotAdvertisement { type_code },
            other => Discard::Malformed(other),
        }
    }
}

/// The VRID of a received payload, for finding the configured router before the checks
/// run; `None` if the payload is too short to have one.
pub fn peek_vrid(payload: &[u8]) -> Option<u8> {
    payload.get(1).copied()
}

/// Runs the receive checks on one advert.
///
/// `local_addresses` are the receiving host's addresses on the interface (adverts from
/// them are our own). `configured` finds the virtual router configured for a VRID on the
/// receiving interface and address family; it is asked at most once, with the VRID byte,
/// and `None` means there is none (discarded at step 5, after the checks that need no
/// configuration).
pub fn validate<'a>(
    meta: &RxMeta,
    payload: &[u8],
    local_addresses: &[IpAddr],
    configured: impl FnOnce(u8) -> Option<Expected<'a>>,
) -> Result<Accepted, Discard> {
    // Not an RFC step. Multicast loopback is off on our sockets, but the XDP path and
    // unicast-to-self configurations still see our own adverts; one of ours is never a
    // peer, and at priority < 255 it would pass every check below.
    if local_addresses.contains(&meta.src) {
        return Err(Discard::OwnAdvert { src: meta.src });
    }

    // RFC 5798 §7.1: "MUST verify that the IPv4 TTL/IPv6 Hop Limit is 255" (RFC 3768
    // §7.1 likewise): a router off-link cannot forge adverts (RFC 5798 §9.2).
    if meta.ttl_or_hop_limit != wire::TTL {
        return Err(Discard::TtlNot255 {
            received: meta.ttl_or_hop_limit,
        });
    }

    let expected = peek_vrid(payload)
        .and_then(configured)
        .filter(|expected| Some(expected.vrid) == peek_vrid(payload));

    // RFC 5798 §7.1: "MUST verify that the VRRP version is 3"; RFC 3768 §7.1: "is 2".
    // An empty payload has no version field; step 3 reports it as truncated.
    if let Some(&first) = payload.first() {
        let received = first >> 4;
        let version_ok = match expected {
            Some(expected) => received == expected.version.number(),
            None => Version::from_number(received).is_some(),
        };
        if !version_ok {
            return Err(Discard::VersionMismatch {
                expected: expected.map(|expected| expected.version),
                received,
            });
        }
    }

    // RFC 5798 §7.1: "MUST verify that the received packet contains the complete VRRP
    // packet (including fixed fields, and IPvX address(es))", "MUST verify the VRRP
    // checksum", "MUST verify that length of the packet is greater than or equal to the
    // VRRP header". Then RFC 5798 §5.2.2: an unknown type MUST be discarded. The wire
    // parser runs these in this order.
    let family = AddressFamily::of(meta.src);
    let packet = Packet::new_checked(payload, family)?;
    let advert = AdvertRepr::parse(&packet, meta.src, meta.dst)?;

    let expected = check_configured(
        advert.vrid,
        advert.version,
        Some(advert.auth),
        advert.max_advert_interval,
        expected,
    )?;

    // RFC 5798 §7.1: "MAY verify that 'Count IPvX Addrs' and the list of IPvX address(es)
    // match the IPvX address(es) configured for the VRID. If the packet was not generated
    // by the address owner (Priority does not equal 255 (decimal)), the receiver MUST
    // drop the packet, otherwise continue processing." We continue in both cases and
    // flag it (see [`Accepted::address_list_mismatch`]).
    let address_list_mismatch = !same_addresses(&advert.addresses, expected.virtual_addresses);

    Ok(Accepted {
        advert,
        sender: meta.src,
        address_list_mismatch,
        checksum: packet.checksum_form(meta.src, meta.dst),
    })
}

/// Steps 5 to 7 on what an advert says, shared by [`validate`] (socket) and
/// [`validate_observed`] (XDP record): the checks that need the configuration. `auth` is
/// `None` when the XDP program already compared it (it has the configured password).
fn check_configured<'a>(
    vrid: u8,
    version: Version,
    auth: Option<Auth>,
    interval: Centiseconds,
    expected: Option<Expected<'a>>,
) -> Result<Expected<'a>, Discard> {
    // RFC 9568 §7.1 (erratum 8298 against RFC 5798): "MUST verify that the VRID is
    // configured on the receiving interface". RFC 5798 also discarded every advert at
    // the address owner, so two routers both configured as owner (priority 255) never
    // heard each other and stayed Active together; now the owner's state machine sees
    // them and §6.4.3 breaks the tie by primary address. RFC 3768 has the same check
    // and the same flaw; v2 follows the erratum too.
    let Some(expected) = expected.filter(|expected| expected.vrid == vrid) else {
        return Err(Discard::VridNotConfigured { vrid });
    };

    if version == Version::V2 {
        if let Some(auth) = auth {
            // RFC 3768 §7.1: "MUST verify that the Auth Type matches the locally
            // configured authentication method for the virtual router".
            if auth.type_code() != expected.auth.type_code() {
                return Err(Discard::AuthTypeMismatch {
                    expected: expected.auth.type_code(),
                    received: auth.type_code(),
                });
            }
            // RFC 3768 §7.1: "MUST perform the authentication specified by Auth Type";
            // for type 0 the data is ignored (§5.3.6.1), otherwise it must equal ours.
            if expected.auth != Auth::None && !constant_time_eq(&auth.data(), &expected.auth.data())
            {
                return Err(Discard::AuthDataMismatch);
            }
        }
        // RFC 3768 §7.1: "MUST verify that the Adver Interval in the packet is the same as
        // the locally configured for this virtual router". RFC 5798 dropped this check:
        // a v3 backup learns the master's interval (§6.4.2).
        if interval != expected.advert_interval {
            return Err(Discard::IntervalMismatch {
                expected: expected.advert_interval,
                received: interval,
            });
        }
    }
    Ok(expected)
}

/// What the XDP program recorded of an advert that passed its own checks (TTL / Hop
/// Limit 255, complete message, configured version, type, v2 auth type and password,
/// checksum): the fields the election needs, without the address list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObservedAdvert {
    /// IP source address.
    pub src: IpAddr,
    /// The VRID it was recorded under.
    pub vrid: u8,
    /// The version, when the record carries it (a ring-buffer event does not: the
    /// program compared it with the configured one already).
    pub version: Option<Version>,
    /// The advert's priority.
    pub priority: u8,
    /// The advert's interval (v2 seconds converted to centiseconds).
    pub max_advert_interval: Centiseconds,
}

/// Runs the receive checks on an advert the XDP program recorded, so it reaches the
/// state machine only if [`validate`] would have accepted the datagram: the checks the
/// program cannot make (our own advert, the address owner, the v2 interval, a zero
/// interval) run here, in the same order and with the same [`Discard`] reasons, and the
/// program's version is checked again in case the configuration changed since it was
/// told. The address list is not recorded, so the accepted advert lists the configured
/// one (`address_list_mismatch` is never set).
pub fn validate_observed(
    observed: &ObservedAdvert,
    local_addresses: &[IpAddr],
    expected: Option<Expected<'_>>,
) -> Result<Accepted, Discard> {
    // Not an RFC step; see `validate`.
    if local_addresses.contains(&observed.src) {
        return Err(Discard::OwnAdvert { src: observed.src });
    }
    // Step 1 (TTL / Hop Limit) ran in the program.
    // RFC 5798 §7.1 / RFC 3768 §7.1: the version is the configured one.
    if let (Some(received), Some(expected)) = (observed.version, expected)
        && received != expected.version
    {
        return Err(Discard::VersionMismatch {
            expected: Some(expected.version),
            received: received.number(),
        });
    }
    // Step 3 beyond the RFC list, as the wire parser has it: a zero interval.
    if observed.max_advert_interval.0 == 0 {
        return Err(Discard::Malformed(wire::Error::ZeroInterval));
    }
    // Step 4 (type) ran in the program; steps 5 to 7 as for the socket.
    let expected = check_configured(
        observed.vrid,
        expected.map_or(Version::V3, |expected| expected.version),
        None,
        observed.max_advert_interval,
        expected,
    )?;
    Ok(Accepted {
        advert: AdvertRepr {
            version: expected.version,
            vrid: expected.vrid,
            priority: observed.priority,
            max_advert_interval: observed.max_advert_interval,
            auth: expected.auth,
            addresses: expected.virtual_addresses.to_vec(),
        },
        sender: observed.src,
        address_list_mismatch: false,
        checksum: None,
    })
}

/// Whether two address lists hold the same addresses with the same multiplicity, in any
/// order (keepalived sends them in configuration order, which peers need not share).
fn same_addresses(received: &[IpAddr], configured: &[IpAddr]) -> bool {
    if received.len() != configured.len() {
        return false;
    }
    let mut received = received.to_vec();
    let mut configured = configured.to_vec();
    received.sort_unstable();
    configured.sort_unstable();
    received == configured
}

/// Compares without an early exit, so response timing does not reveal how many leading
/// bytes of a guessed password were right.
fn constant_time_eq(a: &[u8; 8], b: &[u8; 8]) -> bool {
    let difference = a
        .iter()
        .zip(b)
        .fold(0u8, |difference, (x, y)| difference | (x ^ y));
    std::hint::black_box(difference) == 0
}

/// Counters of receive outcomes: one per [`DiscardReason`], accepted adverts, and accepted
/// adverts whose address list differed from the configured VIPs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RxCounters {
    accepted: u64,
    address_list_mismatch: u64,
    /// Accepted v3 IPv4 adverts by checksum form: pseudo-header, message only, either.
    checksum_forms: [u64; 3],
    discarded: [u64; DiscardReason::ALL.len()],
}

impl RxCounters {
    /// Name of the accepted-advert counter in [`RxCounters::iter`].
    pub const ACCEPTED: &'static str = "accepted";
    /// Name of the address-list-mismatch counter in [`RxCounters::iter`].
    pub const ADDRESS_LIST_MISMATCH: &'static str = "address_list_mismatch";
    /// Names of the accepted-advert counters by v3 IPv4 checksum form in
    /// [`RxCounters::iter`]: RFC 5798 pseudo-header, RFC 9568 message only, and adverts
    /// whose two forms coincide (see [`wire::ChecksumForm`]).
    pub const CHECKSUM_FORMS: [&'static str; 3] = [
        "checksum_ipv4_pseudo_header",
        "checksum_ipv4_message_only",
        "checksum_ipv4_either",
    ];

    /// Whether `name` (from [`RxCounters::iter`]) counts accepted adverts rather than a
    /// discard reason.
    pub fn counts_accepted(name: &str) -> bool {
        name == Self::ACCEPTED
            || name == Self::ADDRESS_LIST_MISMATCH
            || Self::CHECKSUM_FORMS.contains(&name)
    }

    /// Counts one outcome of [`validate`].
    pub fn record(&mut self, result: &Result<Accepted, Discard>) {
        match result {
            Ok(accepted) => {
                self.accepted = self.accepted.saturating_add(1);
                if accepted.address_list_mismatch {
                    self.address_list_mismatch = self.address_list_mismatch.saturating_add(1);
                }
                let form = match accepted.checksum {
                    Some(wire::ChecksumForm::Ipv4PseudoHeader) => Some(0),
                    Some(wire::ChecksumForm::Ipv4MessageOnly) => Some(1),
                    Some(wire::ChecksumForm::Ipv4Either) => Some(2),
                    Some(wire::ChecksumForm::Only) | None => None,
                };
                if let Some(counter) = form.and_then(|i| self.checksum_forms.get_mut(i)) {
                    *counter = counter.saturating_add(1);
                }
            }
            Err(discard) => {
                let counter = &mut self.discarded[discard.reason().index()];
                *counter = counter.saturating_add(1);
            }
        }
    }

    /// Adverts accepted.
    pub const fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Accepted adverts whose address list differed from the configured VIPs.
    pub const fn address_list_mismatch(&self) -> u64 {
        self.address_list_mismatch
    }

    /// Accepted v3 IPv4 adverts whose checksum verified in `form` only (or, for
    /// [`wire::ChecksumForm::Ipv4Either`], in both); 0 for [`wire::ChecksumForm::Only`].
    pub fn checksum_form(&self, form: wire::ChecksumForm) -> u64 {
        match form {
            wire::ChecksumForm::Ipv4PseudoHeader => self.checksum_forms[0],
            wire::ChecksumForm::Ipv4MessageOnly => self.checksum_forms[1],
            wire::ChecksumForm::Ipv4Either => self.checksum_forms[2],
            wire::ChecksumForm::Only => 0,
        }
    }

    /// Adverts discarded for `reason`.
    pub const fn discarded(&self, reason: DiscardReason) -> u64 {
        self.discarded[reason.index()]
    }

    /// Every counter as (stable snake_case name, value): accepted, address-list
    /// mismatches, accepted by checksum form, then each discard reason in check order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        [
            (Self::ACCEPTED, self.accepted),
            (Self::ADDRESS_LIST_MISMATCH, self.address_list_mismatch),
        ]
        .into_iter()
        .chain(Self::CHECKSUM_FORMS.into_iter().zip(self.checksum_forms))
        .chain(
            DiscardReason::ALL
                .iter()
                .map(|reason| (reason.name(), self.discarded(*reason))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::wire::fixtures::{self, Received};
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// Our own interface addresses in these tests (keepalived is the peer).
    const OUR_IPV4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
    const OUR_IPV6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2));
    const LOCAL_ADDRESSES: &[IpAddr] = &[OUR_IPV4, OUR_IPV6];

    /// One receive: what the socket gave us and what is configured, all owned so a test
    /// can mutate any part of it.
    #[derive(Clone)]
    struct Case {
        meta: RxMeta,
        payload: Vec<u8>,
        local_addresses: Vec<IpAddr>,
        /// `None`: no router configured for the VRID.
        version: Option<Version>,
        vrid: u8,
        auth: Auth,
        advert_interval: Centiseconds,
        virtual_addresses: Vec<IpAddr>,
    }

    impl Case {
        /// A fixture received by a backup configured exactly like keepalived.
        fn matching(datagram: &[u8], expected: &AdvertRepr) -> Case {
            let Received {
                src,
                dst,
                ttl_or_hop_limit,
                payload,
                ..
            } = fixtures::split(datagram);
            Case {
                meta: RxMeta {
                    src,
                    dst,
                    ttl_or_hop_limit,
                },
                payload: payload.to_vec(),
                local_addresses: LOCAL_ADDRESSES.to_vec(),
                version: Some(expected.version),
                vrid: expected.vrid,
                auth: expected.auth,
                advert_interval: expected.max_advert_interval,
                virtual_addresses: expected.addresses.clone(),
            }
        }

        fn v2() -> Case {
            Case::matching(fixtures::V2_IPV4_PASS, &fixtures::v2_ipv4_pass_repr())
        }

        fn v3_ipv4() -> Case {
            Case::matching(fixtures::V3_IPV4, &fixtures::v3_ipv4_repr())
        }

        fn v3_ipv6() -> Case {
            Case::matching(fixtures::V3_IPV6, &fixtures::v3_ipv6_repr())
        }

        /// What the case's instance expects, if it runs one.
        fn expected(&self) -> Option<Expected<'_>> {
            self.version.map(|version| Expected {
                version,
                vrid: self.vrid,
                auth: self.auth,
                advert_interval: self.advert_interval,
                virtual_addresses: &self.virtual_addresses,
            })
        }

        fn run(&self) -> Result<Accepted, Discard> {
            let expected = self.expected();
            validate(&self.meta, &self.payload, &self.local_addresses, |_vrid| {
                expected
            })
        }

        fn reason(&self) -> Option<DiscardReason> {
            self.run().err().map(|discard| discard.reason())
        }

        /// Rewrites the checksum after a payload edit, so the edit reaches the checks
        /// after step 3.
        fn refill_checksum(&mut self) {
            let family = AddressFamily::of(self.meta.src);
            Packet::new_unchecked(&mut self.payload[..], family)
                .fill_checksum(self.meta.src, self.meta.dst);
        }
    }

    #[test]
    fn every_keepalived_fixture_is_accepted_by_a_matching_backup() {
        for (name, datagram, expected) in fixtures::all() {
            let case = Case::matching(datagram, &expected);
            assert_eq!(
                case.run(),
                Ok(Accepted {
                    // keepalived sums the RFC 5798 IPv4 pseudo-header into v3 adverts.
                    checksum: Some(
                        if expected.version == Version::V3
                            && AddressFamily::of(case.meta.src) == AddressFamily::Ipv4
                        {
                            wire::ChecksumForm::Ipv4PseudoHeader
                        } else {
                            wire::ChecksumForm::Only
                        }
                    ),
                    advert: expected,
                    sender: case.meta.src,
                    address_list_mismatch: false,
                }),
                "{name}"
            );
        }
    }

    // --- one test per check, each a fixture changed to fail exactly that check ---

    #[test]
    fn own_advert_looped_back() {
        let mut case = Case::v3_ipv4();
        case.local_addresses.push(case.meta.src);
        assert_eq!(case.run(), Err(Discard::OwnAdvert { src: case.meta.src }));
    }

    #[test]
    fn step1_ttl_must_be_255() {
        for mut case in [Case::v2(), Case::v3_ipv4(), Case::v3_ipv6()] {
            case.meta.ttl_or_hop_limit = 254;
            assert_eq!(case.run(), Err(Discard::TtlNot255 { received: 254 }));
        }
    }

    #[test]
    fn step2_version_must_match_the_configured_one() {
        let mut case = Case::v2();
        case.version = Some(Version::V3);
        assert_eq!(
            case.run(),
            Err(Discard::VersionMismatch {
                expected: Some(Version::V3),
                received: 2
            })
        );
        let mut case = Case::v3_ipv6();
        case.version = Some(Version::V2);
        assert_eq!(
            case.run(),
            Err(Discard::VersionMismatch {
                expected: Some(Version::V2),
                received: 3
            })
        );
    }

    #[test]
    fn step2_without_a_configured_router_the_version_must_still_be_known() {
        let mut case = Case::v3_ipv4();
        case.version = None;
        case.payload[0] = 0x41;
        assert_eq!(
            case.run(),
            Err(Discard::VersionMismatch {
                expected: None,
                received: 4
            })
        );
    }

    #[test]
    fn step3_shorter_than_the_header() {
        for len in 0..wire::HEADER_LEN {
            let mut case = Case::v3_ipv4();
            case.payload.truncate(len);
            assert_eq!(case.run(), Err(Discard::Truncated { len }), "{len} bytes");
        }
    }

    #[test]
    fn step3_address_count_must_fit_the_length() {
        let mut case = Case::v3_ipv6();
        case.payload[3] = 1;
        assert_eq!(
            case.run(),
            Err(Discard::AddressCountMismatch {
                address_count: 1,
                expected_len: 24,
                actual_len: 40
            })
        );
    }

    #[test]
    fn step3_checksum_must_verify() {
        let mut case = Case::v3_ipv4();
        case.payload[8] ^= 0x80;
        assert_eq!(case.reason(), Some(DiscardReason::BadChecksum));
    }

    #[test]
    fn step3_malformed_beyond_the_rfc_list() {
        // Families disagree: a driver bug, but never a panic or an accepted advert.
        let mut case = Case::v3_ipv4();
        case.meta.dst = IpAddr::V6(wire::IPV6_MULTICAST);
        assert!(matches!(
            case.run(),
            Err(Discard::Malformed(wire::Error::FamilyMismatch { .. }))
        ));
        // A zero interval.
        let mut case = Case::v3_ipv4();
        case.payload[4..6].copy_from_slice(&[0, 0]);
        case.refill_checksum();
        assert_eq!(
            case.run(),
            Err(Discard::Malformed(wire::Error::ZeroInterval))
        );
    }

    #[test]
    fn step4_type_must_be_advertisement() {
        let mut case = Case::v2();
        case.payload[0] = 0x2f;
        case.refill_checksum();
        assert_eq!(case.run(), Err(Discard::NotAdvertisement { type_code: 15 }));
    }

    #[test]
    fn step5_vrid_must_be_configured() {
        let mut case = Case::v3_ipv6();
        case.version = None;
        assert_eq!(case.run(), Err(Discard::VridNotConfigured { vrid: 53 }));
        // A lookup that hands back another VRID's router is no match either.
        let mut case = Case::v3_ipv6();
        case.vrid = 54;
        assert_eq!(
            case.run().err().map(|discard| discard.reason()),
            // Without a router, the version check is the generic one, which passes.
            Some(DiscardReason::VridNotConfigured)
        );
    }

    #[test]
    fn step6_v2_auth_type_must_match() {
        let mut case = Case::v2();
        case.auth = Auth::None;
        assert_eq!(
            case.run(),
            Err(Discard::AuthTypeMismatch {
                expected: 0,
                received: 1
            })
        );
    }

    #[test]
    fn step6_v2_password_must_match() {
        let mut case = Case::v2();
        case.auth = Auth::simple_text(b"vipd-pW").unwrap();
        assert_eq!(case.run(), Err(Discard::AuthDataMismatch));
        // Padding counts: "vipd-pw" and "vipd-pw!" are different passwords.
        let mut case = Case::v2();
        case.auth = Auth::simple_text(b"vipd-pw!").unwrap();
        assert_eq!(case.run(), Err(Discard::AuthDataMismatch));
    }

    #[test]
    fn step6_v2_auth_none_ignores_the_data() {
        // RFC 3768 §5.3.6.1.
        let mut case = Case::v2();
        case.payload[4] = 0;
        case.refill_checksum();
        case.auth = Auth::None;
        assert!(case.run().is_ok());
    }

    #[test]
    fn step7_v2_interval_must_match() {
        let mut case = Case::v2();
        case.advert_interval = Centiseconds(200);
        assert_eq!(
            case.run(),
            Err(Discard::IntervalMismatch {
                expected: Centiseconds(200),
                received: Centiseconds(100)
            })
        );
    }

    #[test]
    fn step7_v3_learns_the_interval_instead() {
        for mut case in [Case::v3_ipv4(), Case::v3_ipv6()] {
            case.advert_interval = Centiseconds(7);
            let accepted = case.run().unwrap();
            assert_ne!(accepted.advert.max_advert_interval, Centiseconds(7));
        }
    }

    #[test]
    fn step7_v3_auth_configuration_is_ignored() {
        let mut case = Case::v3_ipv4();
        case.auth = Auth::simple_text(b"x").unwrap();
        assert!(case.run().is_ok());
    }

    #[test]
    fn step8_address_list_mismatch_is_accepted_and_flagged() {
        let mut case = Case::v3_ipv4();
        case.virtual_addresses.pop();
        let accepted = case.run().unwrap();
        assert!(accepted.address_list_mismatch);
        let mut case = Case::v2();
        case.virtual_addresses[0] = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 99));
        assert!(case.run().unwrap().address_list_mismatch);
    }

    #[test]
    fn step8_address_order_does_not_matter() {
        let mut case = Case::v3_ipv6();
        case.virtual_addresses.reverse();
        assert!(!case.run().unwrap().address_list_mismatch);
    }

    // --- order ---

    /// Changes a passing case so that it fails one check.
    type Breaker = fn(&mut Case);

    /// One change per check, listed in check order; each makes a fresh case fail exactly
    /// that check (asserted below), and only touches what that check reads, so several
    /// can be stacked. Post-checksum payload edits refill the checksum.
    fn breakers() -> Vec<(DiscardReason, Breaker)> {
        vec![
            (DiscardReason::OwnAdvert, |case| {
                case.local_addresses.push(case.meta.src)
            }),
            (DiscardReason::TtlNot255, |case| {
                case.meta.ttl_or_hop_limit = 64
            }),
            // A version nobody speaks, so it fails with or without a configured router
            // (without one, step 2 can only check that the version is 2 or 3).
            (DiscardReason::VersionMismatch, |case| {
                if let Some(first) = case.payload.first_mut() {
                    *first = (*first & 0x0f) | 0x40;
                }
            }),
            (DiscardReason::Truncated, |case| case.payload.truncate(7)),
            (DiscardReason::AddressCountMismatch, |case| {
                if let Some(count) = case.payload.get_mut(3) {
                    *count = 9;
                }
            }),
            (DiscardReason::BadChecksum, |case| {
                if let Some(checksum) = case.payload.get_mut(6) {
                    *checksum ^= 0x40;
                }
            }),
            (DiscardReason::NotAdvertisement, |case| {
                case.payload[0] = 0x27;
                case.refill_checksum();
            }),
            (DiscardReason::Malformed, |case| {
                case.payload[5] = 0;
                case.refill_checksum();
            }),
            (DiscardReason::VridNotConfigured, |case| case.vrid = 1),
            (DiscardReason::AuthTypeMismatch, |case| {
                case.payload[4] = 2;
                case.refill_checksum();
            }),
            (DiscardReason::AuthDataMismatch, |case| {
                let last = case.payload.len() - 1;
                case.payload[last] = b'!';
                case.refill_checksum();
            }),
            (DiscardReason::IntervalMismatch, |case| {
                case.advert_interval = Centiseconds(300)
            }),
        ]
    }

    #[test]
    fn each_breaker_fails_exactly_its_own_check() {
        for (reason, break_it) in breakers() {
            let mut case = Case::v2();
            break_it(&mut case);
            assert_eq!(case.reason(), Some(reason));
        }
    }

    #[test]
    fn a_packet_failing_two_checks_reports_the_earlier() {
        let breakers = breakers();
        for (earlier_index, (earlier, break_earlier)) in breakers.iter().enumerate() {
            for (later, break_later) in &breakers[earlier_index + 1..] {
                let mut case = Case::v2();
                // Later first, so an earlier check's payload edit is not undone.
                break_later(&mut case);
                break_earlier(&mut case);
                assert_eq!(case.reason(), Some(*earlier), "{earlier:?} + {later:?}");
            }
        }
    }

    #[test]
    fn the_checklist_covers_every_reason_in_declared_order() {
        let listed: Vec<DiscardReason> = breakers().iter().map(|(reason, _)| *reason).collect();
        // Malformed's zero-interval case is found after the type check; every other
        // reason runs in the order DiscardReason::ALL declares.
        let mut declared = DiscardReason::ALL.to_vec();
        let malformed = declared.remove(6);
        declared.insert(7, malformed);
        assert_eq!(listed, declared);
        for (index, reason) in DiscardReason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), index);
        }
    }

    // --- adverts observed by XDP ---

    impl Case {
        /// What the XDP program would have recorded of this case's advert.
        fn observed(&self) -> ObservedAdvert {
            let family = AddressFamily::of(self.meta.src);
            let packet = Packet::new_checked(&self.payload[..], family).unwrap();
            let advert = AdvertRepr::parse(&packet, self.meta.src, self.meta.dst).unwrap();
            ObservedAdvert {
                src: self.meta.src,
                vrid: advert.vrid,
                version: Some(advert.version),
                priority: advert.priority,
                max_advert_interval: advert.max_advert_interval,
            }
        }

        fn run_observed(&self, observed: &ObservedAdvert) -> Result<Accepted, Discard> {
            let expected = self.expected();
            validate_observed(observed, &self.local_addresses, expected)
        }
    }

    #[test]
    fn observed_adverts_of_every_fixture_are_accepted_as_from_the_socket() {
        for (name, datagram, expected) in fixtures::all() {
            let case = Case::matching(datagram, &expected);
            let from_socket = case.run().unwrap();
            assert!(from_socket.checksum.is_some(), "{name}");
            // The record keeps no checksum form; everything else is the same.
            assert_eq!(
                case.run_observed(&case.observed()),
                Ok(Accepted {
                    checksum: None,
                    ..from_socket
                }),
                "{name}"
            );
            // A ring-buffer event carries no version: the program checked it.
            let event = ObservedAdvert {
                version: None,
                ..case.observed()
            };
            assert!(case.run_observed(&event).is_ok(), "{name}");
        }
    }

    #[test]
    fn observed_own_advert() {
        let mut case = Case::v3_ipv4();
        case.local_addresses.push(case.meta.src);
        assert_eq!(
            case.run_observed(&case.observed()),
            Err(Discard::OwnAdvert { src: case.meta.src })
        );
    }

    #[test]
    fn observed_version_must_match_the_configured_one() {
        let mut case = Case::v2();
        case.version = Some(Version::V3);
        assert_eq!(
            case.run_observed(&case.observed()),
            Err(Discard::VersionMismatch {
                expected: Some(Version::V3),
                received: 2
            })
        );
    }

    #[test]
    fn observed_zero_interval_is_malformed() {
        let case = Case::v3_ipv4();
        let observed = ObservedAdvert {
            max_advert_interval: Centiseconds(0),
            ..case.observed()
        };
        assert_eq!(
            case.run_observed(&observed),
            Err(Discard::Malformed(wire::Error::ZeroInterval))
        );
    }

    #[test]
    fn observed_vrid_must_be_configured() {
        let mut case = Case::v3_ipv6();
        case.version = None;
        assert_eq!(
            case.run_observed(&case.observed()),
            Err(Discard::VridNotConfigured { vrid: 53 })
        );
        let mut case = Case::v3_ipv6();
        case.vrid = 54;
        assert_eq!(
            case.run_observed(&case.observed()),
            Err(Discard::VridNotConfigured { vrid: 53 })
        );
    }

    #[test]
    fn observed_v2_interval_must_match() {
        let mut case = Case::v2();
        case.advert_interval = Centiseconds(200);
        assert_eq!(
            case.run_observed(&case.observed()),
            Err(Discard::IntervalMismatch {
                expected: Centiseconds(200),
                received: Centiseconds(100)
            })
        );
    }

    #[test]
    fn observed_v3_learns_the_interval_instead() {
        let mut case = Case::v3_ipv4();
        case.advert_interval = Centiseconds(7);
        let accepted = case.run_observed(&case.observed()).unwrap();
        assert_eq!(
            accepted.advert.max_advert_interval,
            case.observed().max_advert_interval
        );
    }

    /// Every check both paths run gives the same reason on both, so the counters agree.
    #[test]
    fn observed_and_socket_paths_discard_for_the_same_reasons() {
        let shared = [
            DiscardReason::OwnAdvert,
            DiscardReason::VridNotConfigured,
            DiscardReason::IntervalMismatch,
        ];
        let mut socket = RxCounters::default();
        let mut observed = RxCounters::default();
        for (reason, break_it) in breakers() {
            if !shared.contains(&reason) {
                continue;
            }
            let clean = Case::v2();
            let mut case = clean.clone();
            break_it(&mut case);
            let from_socket = case.run();
            // The record is of the unbroken datagram; the breakers above only change
            // what is configured or local, not what was sent.
            let from_xdp = case.run_observed(&clean.observed());
            assert_eq!(
                from_xdp.as_ref().err().map(Discard::reason),
                Some(reason),
                "{reason:?}"
            );
            socket.record(&from_socket);
            observed.record(&from_xdp);
        }
        assert_eq!(socket, observed);
    }

    // --- logging ---

    #[test]
    fn every_failed_check_is_logged_but_own_adverts_and_foreign_vrids() {
        // RFC 9568 §7.1: "SHOULD log the event (subject to rate-limiting)"; the daemon
        // logs each reason that says so through its rate limiter.
        let logged: Vec<DiscardReason> = DiscardReason::ALL
            .iter()
            .copied()
            .filter(|reason| reason.worth_logging())
            .collect();
        assert_eq!(logged.len(), DiscardReason::ALL.len() - 2);
        assert!(!DiscardReason::OwnAdvert.worth_logging());
        assert!(!DiscardReason::VridNotConfigured.worth_logging());
        for reason in [
            DiscardReason::TtlNot255,
            DiscardReason::BadChecksum,
            DiscardReason::Truncated,
            DiscardReason::Malformed,
            DiscardReason::AuthDataMismatch,
        ] {
            assert!(reason.worth_logging(), "{reason:?}");
        }
    }

    // --- counters ---

    #[test]
    fn counters_count_every_outcome_under_its_own_name() {
        let mut counters = RxCounters::default();
        for (reason, break_it) in breakers() {
            let mut case = Case::v2();
            break_it(&mut case);
            counters.record(&case.run());
            assert_eq!(counters.discarded(reason), 1, "{reason:?}");
        }
        counters.record(&Case::v3_ipv4().run());
        let mut mismatched = Case::v3_ipv6();
        mismatched.virtual_addresses.clear();
        counters.record(&mismatched.run());

        // The v3 IPv4 fixture again, its checksum rewritten in the RFC 9568 form.
        let mut message_only = Case::v3_ipv4();
        Packet::new_unchecked(&mut message_only.payload[..], AddressFamily::Ipv4).fill_checksum_as(
            message_only.meta.src,
            message_only.meta.dst,
            wire::Ipv4Checksum::MessageOnly,
        );
        counters.record(&message_only.run());
        assert_eq!(counters.accepted(), 3);
        assert_eq!(counters.address_list_mismatch(), 1);
        assert_eq!(
            counters.checksum_form(wire::ChecksumForm::Ipv4PseudoHeader),
            1
        );
        assert_eq!(
            counters.checksum_form(wire::ChecksumForm::Ipv4MessageOnly),
            1
        );
        assert_eq!(counters.checksum_form(wire::ChecksumForm::Ipv4Either), 0);

        let named: Vec<(&str, u64)> = counters.iter().collect();
        assert_eq!(named.len(), 5 + DiscardReason::ALL.len());
        assert_eq!(named[0], ("accepted", 3));
        assert_eq!(named[1], ("address_list_mismatch", 1));
        assert_eq!(named[2], ("checksum_ipv4_pseudo_header", 1));
        assert_eq!(named[3], ("checksum_ipv4_message_only", 1));
        assert_eq!(named[4], ("checksum_ipv4_either", 0));
        assert!(named[5..].iter().all(|(_, value)| *value == 1));
        assert!(
            named
                .iter()
                .all(|(name, _)| RxCounters::counts_accepted(name)
                    == (named[..5].iter().any(|(n, _)| n == name)))
        );
        let mut names: Vec<&str> = named.iter().map(|(name, _)| *name).collect();
        assert!(names.iter().all(|name| {
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        }));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), named.len(), "names are unique");
    }

    #[test]
    fn discard_messages_read_well() {
        let discard = Discard::VersionMismatch {
            expected: None,
            received: 4,
        };
        assert_eq!(discard.to_string(), "VRRP version 4, expected 2 or 3");
        let discard = Discard::Malformed(wire::Error::ZeroInterval);
        assert_eq!(
            discard.to_string(),
            "malformed advert: VRRP advert interval is zero"
        );
    }

    #[test]
    fn constant_time_eq_compares_every_byte() {
        let password = *b"vipd-pw\0";
        assert!(constant_time_eq(&password, &password));
        for index in 0..8 {
            let mut other = password;
            other[index] ^= 1;
            assert!(!constant_time_eq(&password, &other));
        }
    }

    #[test]
    fn rx_meta_from_an_ipv4_datagram() {
        let datagram = Ipv4Datagram::split(fixtures::V3_IPV4).unwrap();
        assert_eq!(
            RxMeta::from(&datagram),
            RxMeta {
                src: fixtures::KEEPALIVED_IPV4,
                dst: IpAddr::V4(wire::IPV4_MULTICAST),
                ttl_or_hop_limit: 255
            }
        );
    }

    fn any_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u8; 16]>().prop_map(IpAddr::from)
        ]
    }

    proptest! {
        #[test]
        fn validate_never_panics(
            payload in prop::collection::vec(any::<u8>(), 0..300),
            src in any_ip(),
            dst in any_ip(),
            ttl_or_hop_limit in any::<u8>(),
            configured in any::<bool>(),
            v3 in any::<bool>(),
            auth_type in any::<u8>(),
            auth_data in any::<[u8; 8]>(),
            interval in any::<u16>(),
            virtual_addresses in prop::collection::vec(any_ip(), 0..4),
        ) {
            let meta = RxMeta { src, dst, ttl_or_hop_limit };
            let expected = Expected {
                version: if v3 { Version::V3 } else { Version::V2 },
                vrid: peek_vrid(&payload).unwrap_or(0),
                auth: Auth::from_fields(auth_type, auth_data),
                advert_interval: Centiseconds(interval),
                virtual_addresses: &virtual_addresses,
            };
            let result = validate(&meta, &payload, LOCAL_ADDRESSES, |_| configured.then_some(expected));
            RxCounters::default().record(&result);
        }

        #[test]
        fn validate_never_panics_on_mutated_fixtures(
            fixture in 0usize..3,
            index in any::<prop::sample::Index>(),
            value in any::<u8>(),
            cut in any::<prop::sample::Index>(),
            refill in any::<bool>(),
        ) {
            let mut case = [Case::v2(), Case::v3_ipv4(), Case::v3_ipv6()][fixture].clone();
            let at = index.index(case.payload.len());
            case.payload[at] = value;
            if refill {
                case.refill_checksum();
            }
            let keep = cut.index(case.payload.len() + 1);
            case.payload.truncate(keep);
            let _ = case.run();
        }
    }
}
