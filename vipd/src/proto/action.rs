//! What the state machine asks the driver to do, and why it changed state.
//!
//! No I/O, no clock: these are plain values returned by
//! [`Instance::handle`](super::instance::Instance::handle). The driver performs them in
//! the order given; a failure to perform one (say, a send error) is logged by the driver
//! and, where it matters, fed back as an input (a link that went down becomes
//! [`Input::Fault`](super::instance::Input::Fault)).

use std::fmt;
use std::net::IpAddr;

use super::wire::AdvertRepr;

/// The state of one VRRP instance (RFC 5798 §6.4, plus Fault).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Not running: before `Startup` or after `Shutdown` (RFC 5798 §6.4.1).
    Initialize,
    /// Monitoring the master, ready to take over (RFC 5798 §6.4.2).
    Backup,
    /// Forwarding for the virtual addresses and advertising (RFC 5798 §6.4.3).
    Master,
    /// Not in RFC 5798: the link is down or a tracker failed. Like Initialize, the
    /// instance neither advertises nor watches for a master; it leaves Fault through the
    /// §6.4.1 startup rules when the fault clears.
    Fault,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Initialize => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        })
    }
}

/// Why the instance is in Fault. The driver aggregates its sources (link state, trackers)
/// and reports the first that failed through `Input::Fault`; the last two come from the
/// instance itself, when the driver reports that it could not perform what a master
/// must (see the `instance` module doc, "Failures as master").
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FaultReason {
    /// The interface lost carrier or was set down.
    LinkDown,
    /// A tracked script, file or interface reported failure.
    Tracker {
        /// The tracker's configured name.
        name: String,
    },
    /// As master, adding the virtual addresses failed (`Input::VipsAdded { ok: false }`).
    VipAdd,
    /// A tracked BFD session (weight 0) is not Up.
    Bfd {
        /// The session's configured name.
        name: String,
    },
    /// As master, sending adverts failed this many times in a row
    /// (`Input::AdvertSent { ok: false }`).
    Send {
        /// Consecutive failed adverts.
        failures: u32,
    },
}

/// Why a state transition happened; carried by [`Action::StateChanged`] and kept as the
/// last transition for status output.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Startup as a non-owner: Initialize → Backup (RFC 5798 §6.4.1).
    Startup,
    /// Startup as the address owner, priority 255: Initialize → Master (RFC 5798 §6.4.1).
    Owner,
    /// Startup with the configured initial state hint `Master` (not in the RFC).
    InitialStateHint,
    /// Master_Down_Timer fired in Backup (RFC 5798 §6.4.2).
    MasterDown,
    /// Master_Down_Timer fired early because the master sent priority 0 (RFC 5798 §6.4.2).
    PriorityZeroReceived,
    /// Master_Down_Timer fired early because a BFD session to the master went down
    /// (not in RFC 5798; see the `instance` module doc, "BFD").
    PeerDown,
    /// A master heard a better master and yielded (RFC 5798 §6.4.3).
    HigherPriorityAdvert,
    /// `Shutdown` input (RFC 5798 §6.4.2, §6.4.3).
    Shutdown,
    /// A fault was reported.
    Fault(FaultReason),
    /// The fault cleared; the instance restarted through §6.4.1.
    FaultCleared,
    /// Another member of the instance's sync group changed state (not in the RFC;
    /// keepalived's `vrrp_sync_group`).
    SyncGroup,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Startup => f.write_str("startup"),
            Reason::Owner => f.write_str("address owner"),
            Reason::SyncGroup => f.write_str("sync group"),
            Reason::InitialStateHint => f.write_str("initial state MASTER"),
            Reason::MasterDown => f.write_str("master down timer expired"),
            Reason::PriorityZeroReceived => f.write_str("master sent priority 0"),
            Reason::PeerDown => f.write_str("BFD to the master went down"),
            Reason::HigherPriorityAdvert => f.write_str("higher priority advert"),
            Reason::Shutdown => f.write_str("shutdown"),
            Reason::Fault(FaultReason::LinkDown) => f.write_str("fault: link down"),
            Reason::Fault(FaultReason::Tracker { name }) => write!(f, "fault: tracker {name}"),
            Reason::Fault(FaultReason::VipAdd) => f.write_str("fault: adding the VIPs failed"),
            Reason::Fault(FaultReason::Bfd { name }) => write!(f, "fault: BFD session {name} down"),
            Reason::Fault(FaultReason::Send { failures }) => {
                write!(f, "fault: {failures} adverts in a row could not be sent")
            }
            Reason::FaultCleared => f.write_str("fault cleared"),
        }
    }
}

/// One thing for the driver to do. Perform them in the order returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this advertisement to the VRRP multicast group (or unicast peers) with TTL /
    /// hop limit 255 from the primary address. Priority 0 means "master stopping".
    SendAdvert(AdvertRepr),
    /// Add every virtual address to the interface and start forwarding for them. With
    /// `accept` false the driver installs a rule dropping packets addressed to the
    /// virtual addresses (RFC 5798 §6.4.3, Accept_Mode); the owner always accepts.
    AcquireVips {
        /// Accept_Mode in effect: `true` for the owner or when configured.
        accept: bool,
    },
    /// Remove every virtual address and any drop rule installed with them.
    ReleaseVips,
    /// Announce the virtual addresses: gratuitous ARP for IPv4, unsolicited Neighbor
    /// Advertisements for IPv6 (RFC 5798 §6.4.1, §6.4.2). Repeats and refreshes are the
    /// driver's schedule.
    Announce,
    /// Announce the virtual addresses as being at `master`'s link-layer address, which
    /// the driver resolves on the instance's interface (gratuitous ARP / unsolicited NA
    /// carrying that address; the frame itself leaves from ours). Not RFC: a master that
    /// yields to a better one had announced the addresses as its own, so neighbours send
    /// it their traffic; the winner re-announces only if it hears us, which after a
    /// partition it may never do (see the `instance` module doc).
    AnnounceFor {
        /// The primary address of the master we yielded to.
        master: IpAddr,
    },
    /// The instance moved from `from` to `to`. For logs, notify scripts and metrics.
    StateChanged {
        /// State before.
        from: State,
        /// State after.
        to: State,
        /// Why.
        reason: Reason,
    },
}
