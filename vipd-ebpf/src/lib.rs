//! Library target so `vipd` can name this crate as a build dependency (cache invalidation,
//! as in aya-template); the program itself is the `vipd` binary target in `main.rs`.
#![no_std]
