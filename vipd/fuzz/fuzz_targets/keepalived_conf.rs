//! Fuzzes the keepalived.conf front end: tokenizer, block parser, mapper and validation.
//! Includes are refused so the target never touches the filesystem. Seed corpus: the
//! project's keepalived fixtures (`corpus/keepalived_conf/`).
//!
//! Run: `AYA_BUILD_SKIP=1 cargo +nightly fuzz run keepalived_conf` from `vipd/`.
//!
//! Beyond "never panics", every file that loads must convert to TOML (`vipd convert`)
//! that loads back to an equal configuration.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vipd::config::keepalived::{Includes, parse_keepalived};
use vipd::config::{parse_toml, render};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(loaded) = parse_keepalived(text, "fuzz.conf", Includes::Refuse) else {
        return;
    };
    let toml = render::to_toml(&loaded.config, &[], &loaded.warnings);
    match parse_toml(&toml, "converted.toml") {
        Ok(back) => assert_eq!(back.config, loaded.config, "\n{toml}"),
        Err(errors) => panic!("converted TOML does not load:\n{errors}\n---\n{toml}"),
    }
});
