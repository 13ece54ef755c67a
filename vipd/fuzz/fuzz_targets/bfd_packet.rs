//! Fuzzes the BFD control packet codec (RFC 5880 §4.1, §6.8.6) with UDP payloads, the
//! form a BFD socket hands to the daemon. Seed corpus: FRR bfdd packets and the unit
//! tests' packets (`corpus/bfd_packet/`).
//!
//! Run: `cargo xtask fuzz --target bfd_packet`.
//!
//! Beyond "never panics": the view and the decoder agree; a packet that decodes emits
//! back to the bytes it came from (up to the Length field, which vipd always writes as
//! 24, and anything past it) and decodes again to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vipd::proto::bfd::wire::{ControlRepr, HEADER_LEN, Packet};

fuzz_target!(|payload: &[u8]| {
    let decoded = ControlRepr::parse_bytes(payload);
    let Ok(packet) = Packet::new_checked(payload) else {
        assert!(decoded.is_err(), "decoded a packet the view refuses");
        return;
    };
    // After new_checked no accessor may panic.
    let _ = (
        packet.diagnostic(),
        packet.state(),
        packet.poll(),
        packet.final_(),
    );
    let _ = (
        packet.control_plane_independent(),
        packet.demand(),
        packet.auth_type(),
    );
    let _ = (packet.desired_min_tx(), packet.required_min_rx());
    let _ = packet.required_min_echo_rx();
    let Ok(repr) = decoded else {
        return;
    };
    assert_eq!(
        repr,
        ControlRepr::parse(&packet).expect("same bytes, same verdict")
    );
    let emitted = repr.to_bytes();
    let mut expected = [0u8; HEADER_LEN];
    expected.copy_from_slice(&payload[..HEADER_LEN]);
    expected[3] = HEADER_LEN as u8;
    assert_eq!(emitted, expected, "parse → emit changed the packet");
    // RFC 5880 §6.8.6: with the A bit the minimum length is 26, so a 24-byte emit of an
    // authenticated packet is (rightly) refused; vipd never sends one (it does not
    // authenticate, §6.7).
    if !repr.flags.auth_present {
        assert_eq!(ControlRepr::parse_bytes(&emitted), Ok(repr), "emit → parse");
    }
});
