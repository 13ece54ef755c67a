//! Fuzzes the native TOML front end and validation. Seed corpus: the shipped examples
//! (`corpus/toml_config/`).
//!
//! Run: `cargo xtask fuzz --target toml_config` (or `AYA_BUILD_SKIP=1 cargo +nightly fuzz
//! run toml_config` from `vipd/`).
//!
//! Beyond "never panics", every file that loads must render back (`vipd convert`) to
//! TOML that loads to an equal configuration.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vipd::config::{parse_toml, render};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(loaded) = parse_toml(text, "fuzz.toml") else {
        return;
    };
    let toml = render::to_toml(&loaded.config, &[], &loaded.warnings);
    match parse_toml(&toml, "rendered.toml") {
        Ok(back) => assert_eq!(back.config, loaded.config, "\n{toml}"),
        Err(errors) => panic!("rendered TOML does not load:\n{errors}\n---\n{toml}"),
    }
});
