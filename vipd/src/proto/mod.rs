//! The VRRP protocol core, sans-IO.
//!
//! Nothing in this module performs I/O or reads a clock: no tokio, libc, netlink or aya,
//! and never `Instant::now()`. Every input carries `now` as a value and every output is a
//! value ([`action::Action`]) that the driver in `daemon`/`io` performs. That is what makes
//! each RFC rule unit-testable with a fake clock.
//!
//! - [`wire`]: zero-copy views over VRRP v2/v3 adverts, typed accessors, checksum, emit.
//! - [`validate`]: the RFC 5798 §7.1 receive checks, in order, one error per check.
//! - [`instance`]: the RFC 5798 §6 state machine for one virtual router.
//! - [`health`]: what an instance's tracked links, scripts and files add up to
//!   (priority offset, fault).
//! - [`sync_group`]: keepalived's sync groups: who follows whom, FAULT wins, the group's
//!   state for its notify commands.
//! - [`timer`]: timers as data (`enum Timer` + a deadline table) and the §6.1 formulas
//!   (Skew_Time, Master_Down_Interval).
//! - [`bfd`]: BFD (RFC 5880/5881): control packet codec and the session state machine.
//! - [`l3`]: L3 mode: which addresses a node announces over BGP, given states and health.
//! - [`action`]: the values the state machine returns: actions, states, reasons.
pub mod action;
pub mod announce;
pub mod bfd;
pub mod health;
pub mod instance;
pub mod l3;
pub mod lb;
#[cfg(test)]
mod sim;
pub mod sync_group;
pub mod timer;
pub mod validate;
pub mod wire;
