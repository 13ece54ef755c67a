//! vipd: a VRRP (RFC 5798 v3, RFC 3768 v2) failover agent for Linux with an XDP fast path.
//!
//! The folders are the architecture (see docs/architecture.md):
//! - [`proto`]: the sans-IO protocol core (wire codec, receive checks, state machine).
//! - [`io`]: everything that touches the kernel (XDP/BPF maps, sockets, netlink, ARP).
//! - [`config`]: the configuration model, its validation and the TOML front end.
//! - [`cli`]: the command line; [`tools`]: stand-alone tools such as the ARP responder.
pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod io;
pub mod lb;
pub mod log_limit;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod proto;
pub mod tools;
pub mod track;
