//! Fuzzes the advert codec and the receive checks with whole IP datagrams, the form the
//! seed corpus (keepalived captures, `vipd/tests/fixtures/*.bin`) is stored in.
//!
//! Run: `AYA_BUILD_SKIP=1 cargo +nightly fuzz run advert_parse` from `vipd/`.
//!
//! Beyond "never panics", every advert that parses must emit back to the bytes it came
//! from, up to the fields the RFCs say receivers ignore.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use vipd::proto::validate::{self, Expected, RxMeta};
use vipd::proto::wire::{AddressFamily, AdvertRepr, Auth, Ipv4Datagram, Packet, Version};

/// Splits an IPv4 datagram with the library helper, or reads the fixed IPv6 header the way
/// the kernel does before a raw IPv6 socket sees the payload.
fn split(datagram: &[u8]) -> Option<(RxMeta, &[u8])> {
    match datagram.first()? >> 4 {
        4 => {
            let ipv4 = Ipv4Datagram::split(datagram).ok()?;
            Some((RxMeta::from(&ipv4), ipv4.payload))
        }
        6 => {
            let header = datagram.get(..40)?;
            let src: [u8; 16] = header[8..24].try_into().ok()?;
            let dst: [u8; 16] = header[24..40].try_into().ok()?;
            let meta = RxMeta {
                src: IpAddr::from(src),
                dst: IpAddr::from(dst),
                ttl_or_hop_limit: header[7],
            };
            Some((meta, &datagram[40..]))
        }
        _ => None,
    }
}

fuzz_target!(|datagram: &[u8]| {
    let Some((meta, payload)) = split(datagram) else {
        return;
    };
    let family = AddressFamily::of(meta.src);

    if let Ok(packet) = Packet::new_checked(payload, family) {
        // After new_checked no accessor may panic.
        let _ = (
            packet.version_number(),
            packet.message_type(),
            packet.vrid(),
        );
        let _ = (
            packet.priority(),
            packet.v2_auth_type(),
            packet.v2_advert_interval_secs(),
        );
        let _ = (
            packet.v3_reserved(),
            packet.v3_max_advert_interval(),
            packet.checksum(),
        );
        let _ = (
            packet.addresses().count(),
            packet.v2_auth_data(),
            packet.total_len(),
        );

        if let Ok(advert) = AdvertRepr::parse(&packet, meta.src, meta.dst) {
            let mut emitted = vec![0xa5; advert.buffer_len()];
            advert
                .emit(
                    &mut Packet::new_unchecked(&mut emitted[..], family),
                    meta.src,
                    meta.dst,
                )
                .expect("a parsed advert emits");
            let mut normalized = payload.to_vec();
            match advert.version {
                // RFC 5798 §5.2.6: reserved bits are ignored on reception, sent as zero.
                Version::V3 => normalized[4] &= 0x0f,
                // RFC 3768 §5.3.6.1: with auth type 0 the data is ignored, sent as zero.
                Version::V2 if advert.auth == Auth::None => {
                    let start = normalized.len() - 8;
                    normalized[start..].fill(0);
                }
                Version::V2 => {}
            }
            // The ignored bits were covered by the received checksum; the normalized
            // message needs its own (equal to the received one when nothing changed).
            Packet::new_unchecked(&mut normalized[..], family).fill_checksum(meta.src, meta.dst);
            assert_eq!(emitted, normalized, "parse → emit changed the advert");
        }
    }

    // The receive checks, with a backup configured from the advert's own header bytes so
    // the fuzzer can reach the late checks as well as the early ones.
    let vrid = validate::peek_vrid(payload).unwrap_or(0);
    let version = match payload.first().map(|first| first >> 4) {
        Some(2) => Version::V2,
        _ => Version::V3,
    };
    let virtual_addresses = [meta.dst];
    let expected = Expected {
        version,
        vrid,
        auth: Auth::SimpleText(*b"vipd-pw\0"),
        advert_interval: vipd::proto::wire::Centiseconds(100),
        virtual_addresses: &virtual_addresses,
    };
    let result = validate::validate(&meta, payload, &[], |_| Some(expected));
    let mut counters = validate::RxCounters::default();
    counters.record(&result);
});
