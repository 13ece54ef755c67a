//! The RFC 5798 §6 state machine for one virtual router: one (interface, VRID, address
//! family).
//!
//! No I/O, no clock. Every input carries `now` as a value; every output is an [`Action`]
//! value; the only timing state is a [`TimerTable`] of deadlines derived from those `now`s.
//! Nothing here calls `Instant::now()`.
//!
//! # Driving an instance
//!
//! 1. Build it with [`Instance::new`] from a validated [`InstanceConfig`].
//! 2. Feed it [`Input::Startup`] once the interface is ready.
//! 3. Whenever something happens, call [`Instance::handle`] with the current time and
//!    perform the returned actions in order:
//!    - a received advert that passed `proto::validate` (RFC 5798 §7.1) →
//!      [`Input::Advert`];
//!    - the deadline from [`Instance::poll_timeout`] passed → [`Input::Timeout`] (calling
//!      it early is harmless: nothing fires);
//!    - trackers changed their summed weight → [`Input::PriorityOffset`];
//!    - link down / tracker failed → [`Input::Fault`], and back → [`Input::FaultCleared`];
//!    - SIGTERM → [`Input::Shutdown`].
//! 4. After every `handle`, re-read [`Instance::poll_timeout`] and sleep until then.
//!
//! # BFD
//!
//! Not in RFC 5798. A Backup learns that its master died only when Master_Down_Interval
//! passes without an advert: at least three advert intervals. A BFD session (RFC 5880)
//! to the master detects the same thing in its Detection Time, which can be a few
//! milliseconds. When the driver reports such a session Down ([`Input::PeerDown`]) and
//! its neighbour is the master this Backup follows, the Backup acts as if
//! Master_Down_Timer had fired (§6.4.2), after [`bfd_skew_time`]: Skew_Time's formula on a
//! 2 ms base instead of the advert interval, so that among backups the highest priority
//! still takes over first and the others, hearing its advert, stay Backup. A session
//! whose neighbour is not the current master (or a Master, or an instance in Fault)
//! changes nothing here; tracking a session for priority or FAULT is `health`'s job.
//!
//! # Choices the RFC leaves open
//!
//! - **Fault** is a fourth state. Entering it from Master sends a priority-0 advert (so the
//!   backups take over after Skew_Time rather than Master_Down_Interval, when the link
//!   still carries it) and releases the addresses. Leaving it re-runs the §6.4.1 startup
//!   rules, ignoring the initial state hint.
//! - **Initial state hint** ([`InitialState::Master`]): on `Startup` a non-owner goes
//!   straight to Master exactly as an owner does (§6.4.1: advert, announce, Adver_Timer),
//!   with reason [`Reason::InitialStateHint`]. It then obeys §6.4.3 like any master: the
//!   first advert from a better master sends it back to Backup, so a wrong hint costs at
//!   most one advert interval of two masters. [`InitialState::Backup`] is plain RFC.
//! - **preempt_delay** (keepalived's meaning, made exact): a backup with preempt on keeps
//!   accepting adverts from a lower-priority master — resetting Master_Down_Timer as if
//!   the master were better — until `preempt_delay` has passed since the *first* such
//!   lower-priority advert it heard. The hold starts afresh whenever the instance
//!   (re-)enters Backup and whenever it accepts an advert of priority ≥ its own. Once the
//!   hold has run out it discards lower-priority adverts (§6.4.2) and therefore takes
//!   over one Master_Down_Interval after the last advert it accepted. So preemption
//!   happens no earlier than `preempt_delay` after it first saw that master, and no later
//!   than `preempt_delay + Master_Down_Interval` after it. A priority-0 advert or a
//!   silent master are not preemption and are never delayed.
//! - **Priority changes** (tracker weights) apply to the next advert sent and the next
//!   Master_Down_Interval computed; no advert is sent just because priority changed.
//! - **Yielding** to a better master ([`Reason::HigherPriorityAdvert`]) also returns
//!   [`Action::AnnounceFor`] the winner. Two masters at once (a partition, a lost advert)
//!   both announced the addresses, so some neighbours send their traffic to the one
//!   that yields. RFC 5798 leaves them to the winner, who re-announces when it hears a
//!   lower-priority master (see [`Counters::reassertions`]); but whether it ever hears
//!   one depends on the order in which the two sides of a partition heal: if the loser
//!   hears the winner first, it yields and goes silent as a Backup, and the winner,
//!   still deaf then, never learns there was anyone to correct. The loser is the only
//!   router that knows, and it can always reach the neighbours it misled, so it corrects
//!   them itself, with the winner's link-layer address. (In an ordinary preemption
//!   the winner has just announced itself; the second announcement says the same.)
//! - **Failures as master.** A master that cannot hold its addresses or cannot be heard
//!   is worse than none: neighbours follow its announcements into a black hole, and
//!   backups it silences (or that hear it intermittently) do not take over. So the
//!   driver reports what became of the actions it performed — [`Input::VipsAdded`]
//!   after the add of an [`Action::AcquireVips`], [`Input::AdvertSent`] after every
//!   advert of non-zero priority — and a master goes to Fault
//!   ([`FaultReason::VipAdd`], [`FaultReason::Send`]) as for any fault: priority 0 (if
//!   it can still be sent, the backups take over after Skew_Time) and the addresses
//!   released (those that were added). Sending fails [`SEND_FAILURES_TO_FAULT`] times
//!   in a row before it counts, so one transient error (ENOBUFS under a burst) does
//!   not. The instance leaves that Fault by itself after a retry delay, through the
//!   §6.4.1 startup rules to Backup: Master_Down_Interval after the first failure,
//!   doubling with each further failure, at most [`MAX_FAILURE_RETRY`] (or one
//!   Master_Down_Interval if that is longer). Until it has been master for a whole
//!   Master_Down_Interval without failing, it does not preempt: a working master of
//!   lower priority keeps the addresses, and this router takes over only when that
//!   one stops or falls silent (so a permanent failure, such as an address the kernel
//!   refuses, costs the peer no more than the first handover). An external fault
//!   ([`Input::Fault`]) in the meantime is kept apart: [`Input::FaultCleared`] does not
//!   end the failure's Fault, nor its retry an external one.

use std::net::IpAddr;
use std::time::{Duration, Instant};

pub use super::action::{Action, FaultReason, Reason, State};
use super::timer::{self, Timer, TimerTable};
use super::wire::{AdvertRepr, Auth, Centiseconds, Version};

/// The priority of the address owner (RFC 5798 §5.2.4).
pub const PRIORITY_OWNER: u8 = 255;

/// The listed-address limits live with the XDP program's length check they bound.
pub use vipd_common::{MAX_LISTED_IPV4, MAX_LISTED_IPV6};

/// How many of an instance's VIPs its adverts list, by the family of `first`.
pub fn max_listed_addresses(first: Option<&IpAddr>) -> usize {
    match first {
        Some(IpAddr::V6(_)) => MAX_LISTED_IPV6,
        _ => MAX_LISTED_IPV4,
    }
}
/// RFC 9568 §5.2.9 (as RFC 5798 §5.2.9): in an IPv6 advert, "the first address MUST be
/// the IPv6 link-local address associated with the Virtual Router". Moves the first
/// configured link-local VIP to the front, keeping the others in order (and so inside
/// the listed part, however many VIPs follow). With none configured the list is left
/// as it is: vipd does not invent a link-local VIP, since peers that count the
/// addresses (keepalived) would discard adverts listing one they do not have.
pub fn link_local_first(addresses: &mut [IpAddr]) {
    let first_link_local = addresses
        .iter()
        .position(|a| matches!(a, IpAddr::V6(v6) if v6.is_unicast_link_local()));
    if let Some(position) = first_link_local {
        addresses[..=position].rotate_right(1);
    }
}

/// Consecutive adverts that must fail to send before a master goes to Fault (see the
/// module doc): one failure is often a transient ENOBUFS; three intervals without a
/// single advert out is a master its backups will soon declare dead anyway.
pub const SEND_FAILURES_TO_FAULT: u32 = 3;
/// Longest wait before an instance that failed as master tries again (unless one
/// Master_Down_Interval is longer).
pub const MAX_FAILURE_RETRY: Duration = Duration::from_secs(60);

/// How long a former master keeps its addresses after its successor answers for them
/// ([`Input::SuccessorHolds`]): the time its and the successor's announcements take to
/// reach the neighbours and be acted on. Until then a neighbour still sends to the old
/// MAC, and an old master that had already let go would drop it (a lost request). On
/// a quiet LAN that is well under a millisecond; a neighbour whose CPU is busy or, on
/// a virtual machine, taken away for a few milliseconds acts on it later. Never beyond
/// the guard's own deadline (a Master_Down_Interval after the successor's first advert).
pub const SUCCESSOR_LINGER: Duration = Duration::from_millis(20);

/// The priority a stopping master advertises (RFC 5798 §5.2.4).
pub const PRIORITY_STOP: u8 = 0;
/// Largest advertisement interval the 12-bit v3 field can carry (RFC 5798 §5.2.7).
pub const MAX_ADVERT_INTERVAL: Centiseconds = Centiseconds(4095);
/// Largest accepted preempt delay, as keepalived (0..=1000 s).
pub const MAX_PREEMPT_DELAY: Duration = Duration::from_secs(1000);

/// What to do on [`Input::Startup`] when not the owner; keepalived's `state MASTER|BACKUP`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum InitialState {
    /// RFC 5798 §6.4.1: start as Backup and wait Master_Down_Interval for a master.
    #[default]
    Backup,
    /// Start as Master at once (advert, announce), yielding to a better master as usual.
    Master,
}

/// Configuration of one instance. Plain data; defaults (from [`InstanceConfig::new`])
/// follow keepalived and the RFC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceConfig {
    /// Virtual Router Identifier, 1..=255.
    pub vrid: u8,
    /// VRRP version. Default v3. v2 is IPv4 only and its interval is whole seconds.
    pub version: Version,
    /// Configured priority, 1..=255; 255 means address owner. Default 100.
    pub priority: u8,
    /// Advertisement_Interval, 1..=4095 cs. Default 100 cs (1 s).
    pub advert_interval: Centiseconds,
    /// Preempt_Mode (RFC 5798 §6.1). Default true.
    pub preempt: bool,
    /// How long a backup holds off preempting a lower-priority master (see the module
    /// doc for the exact rule). Default zero.
    pub preempt_delay: Duration,
    /// Accept_Mode (RFC 5798 §6.1): whether a non-owner master accepts packets addressed
    /// to the virtual addresses. Default false. The owner always accepts.
    pub accept_mode: bool,
    /// Our primary address on the interface: the advert source and the tie-breaker
    /// (RFC 5798 §6.4.3). For IPv6 it must be link-local. Its family is the instance's.
    pub primary_address: IpAddr,
    /// The virtual addresses, all of the primary address's family; at least one.
    pub virtual_addresses: Vec<IpAddr>,
    /// Startup hint for a non-owner. Default [`InitialState::Backup`].
    pub initial_state: InitialState,
    /// v2 authentication to put in sent adverts. Default none; must be none for v3.
    pub auth: Auth,
}

impl InstanceConfig {
    /// A config with the default for every field but the identity ones.
    pub fn new(vrid: u8, primary_address: IpAddr, virtual_addresses: Vec<IpAddr>) -> Self {
        InstanceConfig {
            vrid,
            version: Version::V3,
            priority: 100,
            advert_interval: Centiseconds(100),
            preempt: true,
            preempt_delay: Duration::ZERO,
            accept_mode: false,
            primary_address,
            virtual_addresses,
            initial_state: InitialState::Backup,
            auth: Auth::None,
        }
    }

    /// True for the address owner, priority 255 (RFC 5798 §6.4.1).
    pub fn is_owner(&self) -> bool {
        self.priority == PRIORITY_OWNER
    }

    /// Checks the rules the state machine relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.vrid == 0 {
            return Err(ConfigError::VridZero);
        }
        if self.priority == PRIORITY_STOP {
            return Err(ConfigError::PriorityZero);
        }
        let interval = self.advert_interval;
        if interval.0 == 0 {
            return Err(ConfigError::AdvertIntervalZero);
        }
        if interval > MAX_ADVERT_INTERVAL {
            return Err(ConfigError::AdvertIntervalTooLong { interval });
        }
        match self.version {
            Version::V2 => {
                if self.primary_address.is_ipv6() {
                    return Err(ConfigError::V2WithIpv6);
                }
                if !interval.0.is_multiple_of(100) {
                    return Err(ConfigError::V2IntervalNotWholeSeconds { interval });
                }
            }
            Version::V3 => {
                if self.auth != Auth::None {
                    return Err(ConfigError::V3WithAuth);
                }
            }
        }
        if self.primary_address.is_unspecified() {
            return Err(ConfigError::PrimaryAddressUnspecified);
        }
        if let IpAddr::V6(address) = self.primary_address
            && !address.is_unicast_link_local()
        {
            return Err(ConfigError::Ipv6PrimaryNotLinkLocal { address });
        }
        if self.virtual_addresses.is_empty() {
            return Err(ConfigError::NoVirtualAddresses);
        }
        if let Some(&address) = self
            .virtual_addresses
            .iter()
            .find(|vip| vip.is_ipv4() != self.primary_address.is_ipv4())
        {
            return Err(ConfigError::VirtualAddressFamily { address });
        }
        if self.preempt_delay > MAX_PREEMPT_DELAY {
            return Err(ConfigError::PreemptDelayTooLong {
                delay: self.preempt_delay,
            });
        }
        Ok(())
    }
}

/// Why an [`InstanceConfig`] was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// VRID 0 is reserved.
    #[error("virtual router id must be 1..=255, not 0")]
    VridZero,
    /// Priority 0 is reserved for a stopping master.
    #[error("priority must be 1..=255; 0 is reserved for a master that is stopping")]
    PriorityZero,
    /// An interval of zero would advertise continuously.
    #[error("advert interval must be at least 1 centisecond")]
    AdvertIntervalZero,
    /// The v3 field has 12 bits.
    #[error("advert interval {} cs is longer than the maximum 4095 cs", interval.0)]
    AdvertIntervalTooLong {
        /// The configured interval.
        interval: Centiseconds,
    },
    /// VRRP v2 (RFC 3768) is IPv4 only.
    #[error("VRRP version 2 supports IPv4 only; use version 3 for IPv6")]
    V2WithIpv6,
    /// The v2 field counts whole seconds.
    #[error("VRRP version 2 advert interval must be whole seconds, got {} cs", interval.0)]
    V2IntervalNotWholeSeconds {
        /// The configured interval.
        interval: Centiseconds,
    },
    /// v3 removed authentication (RFC 5798 §9).
    #[error("VRRP version 3 has no authentication; remove it or use version 2")]
    V3WithAuth,
    /// The primary address is the advert source and must be a real address.
    #[error("primary address must not be unspecified")]
    PrimaryAddressUnspecified,
    /// RFC 5798 §5.1.2.1: IPv6 adverts come from the link-local address.
    #[error("IPv6 primary address {address} must be link-local (fe80::/10)")]
    Ipv6PrimaryNotLinkLocal {
        /// The configured primary address.
        address: std::net::Ipv6Addr,
    },
    /// An instance protects at least one address.
    #[error("at least one virtual address is required")]
    NoVirtualAddresses,
    /// One instance is one address family.
    #[error("virtual address {address} is not of the primary address's family")]
    VirtualAddressFamily {
        /// The offending virtual address.
        address: IpAddr,
    },
    /// keepalived's bound.
    #[error("preempt delay {delay:?} is longer than the maximum 1000 s")]
    PreemptDelayTooLong {
        /// The configured delay.
        delay: Duration,
    },
}

/// Something that happened, for [`Instance::handle`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// The interface is ready; leave Initialize (RFC 5798 §6.4.1). Ignored unless in
    /// Initialize.
    Startup,
    /// Stop: a master sends priority 0 and releases the addresses (RFC 5798 §6.4.3).
    Shutdown,
    /// An advert that passed the RFC 5798 §7.1 checks in `proto::validate`.
    Advert {
        /// The IP source address: the sender's primary address.
        src: IpAddr,
        /// The decoded advert.
        advert: AdvertRepr,
    },
    /// The deadline from [`Instance::poll_timeout`] has passed.
    Timeout,
    /// The sum of tracker weights. Effective priority = clamp(base + offset, 1, 254); an
    /// owner's 255 never changes.
    PriorityOffset(i32),
    /// A fault source failed. The driver aggregates sources; repeated `Fault`s only
    /// update the reason.
    Fault {
        /// What failed.
        reason: FaultReason,
    },
    /// Every fault source is fine again. Ends a Fault entered through [`Input::Fault`];
    /// one entered through a failure as master ends by its retry timer.
    FaultCleared,
    /// The addresses of the last [`Action::AcquireVips`] were added (`ok`), or at least
    /// one of them could not be. Only a Master acts on it (see the module doc): with
    /// them in place it announces them now (never before, so no neighbour is pointed at
    /// a host that cannot answer yet); without, it goes to Fault.
    VipsAdded {
        /// Every address was added.
        ok: bool,
    },
    /// The router this instance handed its addresses to ([`Action::AnnounceFor`])
    /// answers for them now: the driver resolved who holds them and it was `master`. A
    /// former master keeping them for it ([`Instance::release_deadline`]) lets go
    /// [`SUCCESSOR_LINGER`] later, on the Timeout of its new deadline.
    SuccessorHolds {
        /// The successor's primary address, as in the `AnnounceFor`.
        master: IpAddr,
    },
    /// An advert of non-zero priority was sent to at least one destination (`ok`), or to
    /// none. Only a Master acts on it (see the module doc).
    AdvertSent {
        /// The advert left.
        ok: bool,
    },
    /// A sync group member changed state and this instance must follow (keepalived's
    /// `vrrp_sync_group`; not in the RFC). The driver decides when; the instance only
    /// moves between Backup and Master, never out of Fault or Initialize.
    Follow(Follow),
    /// A BFD session (RFC 5880) to `peer` went down: that router is unreachable. Not in
    /// RFC 5798 (see the module doc, "BFD"): a Backup whose master is `peer` treats it
    /// as "Master_Down_Timer fires" (§6.4.2) after [`bfd_skew_time`]. Ignored in every
    /// other case.
    PeerDown {
        /// The neighbour of the session: compared with the master's primary address.
        peer: IpAddr,
    },
}

/// Base of the skew a Backup waits after [`Input::PeerDown`] before it takes over:
/// short against a BFD Detection Time of a few milliseconds, long enough that a backup
/// of priority 100 (1.2 ms) hears the advert of one of priority 200 (0.4 ms) first.
pub const BFD_SKEW_BASE: Duration = Duration::from_millis(2);

/// The wait after [`Input::PeerDown`]: `(256 - priority) / 256` of [`BFD_SKEW_BASE`], the
/// RFC 5798 §6.1 Skew_Time formula on a shorter base, so that of several backups that
/// all lose the master at once, the highest takes over first and the others hear its
/// advert before their own wait ends (and stay Backup, §6.4.2).
pub fn bfd_skew_time(priority: u8) -> Duration {
    BFD_SKEW_BASE * (256 - u32::from(priority)) / 256
}

/// Where a sync group takes its members.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Follow {
    /// A member became Master: a Backup becomes Master at once.
    Master,
    /// A member fell back to Backup: a Master yields (releases its addresses) and
    /// waits a Master_Down_Interval as any Backup.
    Backup,
}

/// The last state change, for status output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// State before.
    pub from: State,
    /// State after.
    pub to: State,
    /// Why.
    pub reason: Reason,
    /// When (the `now` of the input that caused it).
    pub at: Instant,
}

/// Event counters, for status and metrics. They only ever grow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Adverts emitted as [`Action::SendAdvert`], priority 0 included.
    pub adverts_sent: u64,
    /// Adverts handed in through [`Input::Advert`].
    pub adverts_received: u64,
    /// Adverts discarded by the §6.4.2 / §6.4.3 rules (lower priority).
    pub adverts_discarded: u64,
    /// Priority-0 adverts sent.
    pub priority_zero_sent: u64,
    /// Priority-0 adverts received.
    pub priority_zero_received: u64,
    /// State transitions.
    pub transitions: u64,
    /// Transitions into Master.
    pub became_master: u64,
    /// Times a Master re-announced its addresses after hearing a lower-priority router
    /// advertise as master (once per episode; keepalived's garp_lower_prio_repeat).
    pub reassertions: u64,
    /// Adverts a Master sent at once in answer to a lower-priority advert (RFC 9568
    /// §6.4.3), at most one per half Advertisement_Interval.
    pub assert_adverts: u64,
}

/// One VRRP virtual router. See the module doc for how to drive it.
#[derive(Clone, Debug)]
pub struct Instance {
    config: InstanceConfig,
    state: State,
    priority_offset: i32,
    effective_priority: u8,
    /// Master_Adver_Interval: ours in Master, the master's in Backup (v3 learns it).
    master_adver_interval: Centiseconds,
    master_address: Option<IpAddr>,
    timers: TimerTable,
    /// Set when Master_Down_Timer was shortened to Skew_Time by a priority-0 advert, so
    /// its expiry is reported as [`Reason::PriorityZeroReceived`].
    master_stopping: bool,
    /// Set when Master_Down_Timer was shortened by [`Input::PeerDown`], so its expiry is
    /// reported as [`Reason::PeerDown`].
    master_unreachable: bool,
    /// End of the preempt_delay hold, once a lower-priority master has been seen.
    preempt_hold_until: Option<Instant>,
    /// When, as Master, we last re-asserted against a lower-priority router that also
    /// claimed master (see [`Instance::on_advert_master`]).
    last_reassert: Option<Instant>,
    /// When, as Master, we last answered a lower-priority advert with one of ours
    /// (RFC 9568 §6.4.3).
    last_assert_advert: Option<Instant>,
    fault: Option<FaultReason>,
    /// The failure as master that holds the instance in Fault until
    /// [`Timer::FailureRetry`] fires (see the module doc).
    failure: Option<FaultReason>,
    /// Failures as master since the instance was last master for a whole
    /// Master_Down_Interval: sets the retry delay, and while non-zero the instance does
    /// not preempt.
    failures_in_row: u32,
    /// Adverts in a row that could not be sent, in the current mastership.
    send_failures: u32,
    /// When the current mastership began.
    master_since: Option<Instant>,
    last_transition: Option<Transition>,
    counters: Counters,
    /// Where the addresses stand, as far as the driver has reported.
    vips: VipHolding,
    /// A master asked to announce while its addresses were still being added.
    announce_when_added: bool,
    /// Set while a former master keeps its addresses for a successor (make-before-break).
    release_guard: Option<ReleaseGuard>,
}

/// The addresses, as the core last asked for them and the driver reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum VipHolding {
    /// Not held (or released).
    Released,
    /// [`Action::AcquireVips`] emitted, [`Input::VipsAdded`] not yet received.
    Adding,
    /// On the interface.
    Held,
}

/// A former master holding its addresses until its successor has announced them.
///
/// Beyond the RFC, which releases the addresses on leaving Master (§6.4.3): if the old
/// master lets go when it first hears the new one, clients are answered by nobody until
/// the new master has added the addresses and its gratuitous ARP has reached them. So the
/// old master keeps answering until the new one answers for the addresses itself: on the
/// successor's first advert it asks the driver ([`Action::AnnounceFor`]) to find out
/// who answers for them and to point neighbours there, and lets go
/// [`SUCCESSOR_LINGER`] after [`Input::SuccessorHolds`] (requests already on their way
/// to it are still answered). At most a Master_Down_Interval after the successor's first
/// advert (the time a backup would have waited for a silent master anyway); a stopping
/// master that hears no successor within an interval and a quarter (every backup's
/// Skew_Time is shorter than an interval) has none and lets go then.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ReleaseGuard {
    /// Release no later than this.
    deadline: Instant,
    /// The successor, once heard (its primary address).
    successor: Option<IpAddr>,
    /// The successor answers for the addresses: the deadline is now at most
    /// [`SUCCESSOR_LINGER`] away.
    successor_holds: bool,
}

impl Instance {
    /// A stopped instance in Initialize. Nothing happens until [`Input::Startup`].
    pub fn new(mut config: InstanceConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        link_local_first(&mut config.virtual_addresses);
        Ok(Instance {
            state: State::Initialize,
            priority_offset: 0,
            effective_priority: config.priority,
            master_adver_interval: config.advert_interval,
            master_address: None,
            timers: TimerTable::default(),
            master_stopping: false,
            master_unreachable: false,
            preempt_hold_until: None,
            last_reassert: None,
            last_assert_advert: None,
            fault: None,
            failure: None,
            failures_in_row: 0,
            send_failures: 0,
            master_since: None,
            last_transition: None,
            counters: Counters::default(),
            vips: VipHolding::Released,
            announce_when_added: false,
            release_guard: None,
            config,
        })
    }

    /// Feeds one input at time `now`; returns what the driver must do, in order.
    #[must_use = "the returned actions must be performed"]
    pub fn handle(&mut self, now: Instant, input: Input) -> Vec<Action> {
        let mut actions = Vec::new();
        match input {
            Input::Startup => self.on_startup(now, &mut actions),
            Input::Shutdown => self.on_shutdown(now, &mut actions),
            Input::Advert { src, advert } => self.on_advert(now, src, &advert, &mut actions),
            Input::Timeout => self.on_timeout(now, &mut actions),
            Input::PriorityOffset(offset) => self.on_priority_offset(offset),
            Input::Fault { reason } => self.on_fault(now, reason, &mut actions),
            Input::FaultCleared => self.on_fault_cleared(now, &mut actions),
            Input::VipsAdded { ok: true } => self.on_vips_added(&mut actions),
            Input::VipsAdded { ok: false } => {
                if self.state == State::Master {
                    self.fail(now, FaultReason::VipAdd, &mut actions);
                }
            }
            Input::AdvertSent { ok } => self.on_advert_sent(now, ok, &mut actions),
            Input::SuccessorHolds { master } => {
                if let Some(guard) = self.release_guard.as_mut()
                    && guard.successor == Some(master)
                    && !guard.successor_holds
                {
                    // Released on the Timeout at the new deadline (see SUCCESSOR_LINGER).
                    guard.successor_holds = true;
                    guard.deadline = guard.deadline.min(now + SUCCESSOR_LINGER);
                }
            }
            Input::Follow(Follow::Master) if self.state == State::Backup => {
                self.become_master(now, Reason::SyncGroup, &mut actions);
            }
            Input::Follow(Follow::Backup) if self.state == State::Master => {
                self.become_backup(now, Reason::SyncGroup, None, &mut actions);
            }
            Input::Follow(_) => {}
            Input::PeerDown { peer } => self.on_peer_down(now, peer),
        }
        actions
    }

    /// When the driver must next call `handle(now, Input::Timeout)`; `None` when no timer
    /// runs (Initialize, Fault).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let guard = self.release_guard.map(|g| g.deadline);
        self.timers.next_timeout().into_iter().chain(guard).min()
    }

    /// Whether the addresses of the last [`Action::AcquireVips`] are still being added
    /// (no [`Input::VipsAdded`] yet): a new master has not announced them.
    pub fn awaiting_vips(&self) -> bool {
        self.vips == VipHolding::Adding
    }

    /// Until when a former master keeps its addresses for its successor, if it does (see
    /// [`Instance`]'s handover rule). The driver keeps answering for them (kernel address
    /// and ARP lease) until then, or until the core emits [`Action::ReleaseVips`].
    pub fn release_deadline(&self) -> Option<Instant> {
        self.release_guard.map(|g| g.deadline)
    }

    /// Whether a former master's successor answers for the addresses (it lingers with
    /// them for [`SUCCESSOR_LINGER`]): the driver stops answering ARP and neighbour
    /// solicitations for them (the successor does now), but still takes their traffic.
    pub fn successor_answers(&self) -> bool {
        self.release_guard.is_some_and(|g| g.successor_holds)
    }

    /// The advert this instance sends with `priority`, ready for `wire` to emit.
    pub fn advert_repr(&self, priority: u8) -> AdvertRepr {
        AdvertRepr {
            version: self.config.version,
            vrid: self.config.vrid,
            priority,
            max_advert_interval: self.config.advert_interval,
            auth: self.config.auth,
            addresses: self.listed_addresses().to_vec(),
        }
    }

    /// The addresses this instance's adverts list, and so the list a peer's adverts are
    /// compared with (RFC 5798 §7.1): the first [`max_listed_addresses`] VIPs. The rest
    /// are held, not listed.
    pub fn listed_addresses(&self) -> &[IpAddr] {
        let all = &self.config.virtual_addresses;
        &all[..all.len().min(max_listed_addresses(all.first()))]
    }

    /// The configuration.
    pub fn config(&self) -> &InstanceConfig {
        &self.config
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The configured (base) priority.
    pub fn priority(&self) -> u8 {
        self.config.priority
    }

    /// The priority in effect after tracker offsets; the one advertised and used in
    /// Skew_Time.
    pub fn effective_priority(&self) -> u8 {
        self.effective_priority
    }

    /// The last [`Input::PriorityOffset`] received.
    pub fn priority_offset(&self) -> i32 {
        self.priority_offset
    }

    /// Accept_Mode in effect: configured, or always for the owner (RFC 5798 §6.1).
    pub fn accept_mode(&self) -> bool {
        self.config.accept_mode || self.config.is_owner()
    }

    /// The current master's primary address: ours in Master, the sender of the last
    /// advert in Backup, unknown otherwise or after the master sent priority 0.
    pub fn master_address(&self) -> Option<IpAddr> {
        self.master_address
    }

    /// Master_Adver_Interval: ours in Master, learned from the master in a v3 Backup.
    pub fn master_adver_interval(&self) -> Centiseconds {
        self.master_adver_interval
    }

    /// Skew_Time for the effective priority and current Master_Adver_Interval.
    pub fn skew_time(&self) -> Duration {
        timer::skew_time(
            self.config.version,
            self.effective_priority,
            self.master_adver_interval,
        )
    }

    /// Master_Down_Interval for the effective priority and current Master_Adver_Interval.
    pub fn master_down_interval(&self) -> Duration {
        timer::master_down_interval(
            self.config.version,
            self.effective_priority,
            self.master_adver_interval,
        )
    }

    /// When the preempt_delay hold ends, if one is running.
    pub fn preempt_hold_until(&self) -> Option<Instant> {
        self.preempt_hold_until
    }

    /// The fault currently reported through [`Input::Fault`], if any.
    pub fn fault(&self) -> Option<&FaultReason> {
        self.fault.as_ref()
    }

    /// The failure as master holding the instance in Fault, if any (see the module doc).
    pub fn failure(&self) -> Option<&FaultReason> {
        self.failure.as_ref()
    }

    /// The last state change.
    pub fn last_transition(&self) -> Option<&Transition> {
        self.last_transition.as_ref()
    }

    /// Event counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    fn on_startup(&mut self, now: Instant, actions: &mut Vec<Action>) {
        if self.state != State::Initialize {
            return;
        }
        if let Some(reason) = self.fault.clone() {
            self.transition(now, State::Fault, Reason::Fault(reason), actions);
            return;
        }
        self.start(now, false, actions);
    }

    /// RFC 5798 §6.4.1, shared by startup and leaving Fault.
    fn start(&mut self, now: Instant, fault_cleared: bool, actions: &mut Vec<Action>) {
        let reason = |normal| {
            if fault_cleared {
                Reason::FaultCleared
            } else {
                normal
            }
        };
        if self.config.is_owner() {
            // RFC 5798 §6.4.1: "If the Priority = 255 ... Send an ADVERTISEMENT; Broadcast
            // a gratuitous ARP / send Unsolicited Neighbor Advertisements; Set the
            // Adver_Timer to Advertisement_Interval; Transition to the {Master} state".
            self.become_master(now, reason(Reason::Owner), actions);
        } else if self.config.initial_state == InitialState::Master && !fault_cleared {
            // Not RFC: the configured hint makes a non-owner take the owner's path; §6.4.3
            // sends it back to Backup on the first advert from a better master.
            self.become_master(now, Reason::InitialStateHint, actions);
        } else {
            // RFC 5798 §6.4.1: "Set Master_Adver_Interval to Advertisement_Interval; Set
            // the Master_Down_Timer to Master_Down_Interval; Transition to the {Backup}
            // state".
            self.master_adver_interval = self.config.advert_interval;
            self.become_backup(now, reason(Reason::Startup), None, actions);
        }
    }

    fn on_shutdown(&mut self, now: Instant, actions: &mut Vec<Action>) {
        match self.state {
            State::Initialize => return,
            // RFC 5798 §6.4.2: "If a Shutdown event is received, then: Cancel the
            // Master_Down_Timer; Transition to the {Initialize} state".
            State::Backup | State::Fault => {}
            // RFC 5798 §6.4.3: "If a Shutdown event is received, then: Cancel the
            // Adver_Timer; Send an ADVERTISEMENT with Priority = 0; Transition to the
            // {Initialize} state". The addresses stay until the successor has announced
            // them (see `ReleaseGuard`).
            State::Master => {
                self.send_advert(PRIORITY_STOP, actions);
                self.hold_for_successor(now, None);
            }
        }
        self.timers.stop_all();
        self.master_address = None;
        self.failure = None;
        self.transition(now, State::Initialize, Reason::Shutdown, actions);
    }

    fn on_advert(
        &mut self,
        now: Instant,
        src: IpAddr,
        advert: &AdvertRepr,
        actions: &mut Vec<Action>,
    ) {
        self.counters.adverts_received += 1;
        if advert.priority == PRIORITY_STOP {
            self.counters.priority_zero_received += 1;
        } else if let Some(guard) = self.release_guard.as_mut()
            && guard.successor.is_none()
        {
            // A stopping master hears its successor (any advert with priority > 0 is it,
            // or a better one): it has a Master_Down_Interval to take the addresses up,
            // and the driver finds out when it answers for them.
            guard.successor = Some(src);
            guard.deadline = now
                + timer::master_down_interval(
                    self.config.version,
                    self.effective_priority,
                    self.master_adver_interval,
                );
            actions.push(Action::AnnounceFor { master: src });
        }
        match self.state {
            State::Backup => self.on_advert_backup(now, src, advert),
            State::Master => self.on_advert_master(now, src, advert, actions),
            // Initialize and Fault do not take part in the election.
            State::Initialize | State::Fault => {}
        }
    }

    fn on_advert_backup(&mut self, now: Instant, src: IpAddr, advert: &AdvertRepr) {
        if advert.priority == PRIORITY_STOP {
            // RFC 5798 §6.4.2: "If the Priority in the ADVERTISEMENT is zero, then: Set
            // the Master_Down_Timer to Skew_Time". The master is leaving; the backup with
            // the highest priority has the shortest skew and takes over first.
            self.master_address = None;
            self.master_stopping = true;
            self.master_unreachable = false;
            self.timers.set(Timer::MasterDown, now + self.skew_time());
            return;
        }
        self.master_address = Some(src);
        let lower = advert.priority < self.effective_priority;
        // Not RFC: after failing as master, do not preempt a working master (module doc).
        let may_preempt = self.config.preempt && self.failures_in_row == 0;
        if may_preempt && lower && !self.preempt_delay_holds(now) {
            // RFC 5798 §6.4.2: "Else [Preempt_Mode is True and the Priority in the
            // ADVERTISEMENT is less than the local Priority]: Discard the ADVERTISEMENT".
            // Master_Down_Timer keeps running, so we preempt when it fires.
            self.counters.adverts_discarded += 1;
            return;
        }
        // RFC 5798 §6.4.2: "If Preempt_Mode is False, or if the Priority in the
        // ADVERTISEMENT is greater than or equal to the local Priority, then: Set
        // Master_Adver_Interval to Adver Interval contained in the ADVERTISEMENT;
        // Recompute the Master_Down_Interval; Reset the Master_Down_Timer to
        // Master_Down_Interval". Also reached while preempt_delay holds.
        if !lower {
            self.preempt_hold_until = None;
        }
        self.learn_master_adver_interval(advert);
        self.master_stopping = false;
        self.master_unreachable = false;
        self.timers
            .set(Timer::MasterDown, now + self.master_down_interval());
    }

    fn on_advert_master(
        &mut self,
        now: Instant,
        src: IpAddr,
        advert: &AdvertRepr,
        actions: &mut Vec<Action>,
    ) {
        if advert.priority == PRIORITY_STOP {
            // RFC 5798 §6.4.3: "If the Priority in the ADVERTISEMENT is zero, then: Send
            // an ADVERTISEMENT; Reset the Adver_Timer to Advertisement_Interval". Another
            // master is stopping; tell the backups at once that we are here.
            self.send_advert(self.effective_priority, actions);
            self.timers.set(
                Timer::Advert,
                now + self.config.advert_interval.as_duration(),
            );
            return;
        }
        let ours = self.effective_priority;
        let better = advert.priority > ours
            || (advert.priority == ours
                && address_as_unsigned(src) > address_as_unsigned(self.config.primary_address));
        if !better {
            // RFC 9568 §6.4.3: "else // new Active Router logic: Discard the
            // ADVERTISEMENT; Send an ADVERTISEMENT immediately to assert the Active state
            // to the sending VRRP Router and to update any learning bridges with the
            // correct Active VRRP Router path." (RFC 5798 only discarded it: the other
            // router yielded at our next scheduled advert.) The Adver_Timer keeps its
            // schedule, as the RFC does not say to reset it.
            self.counters.adverts_discarded += 1;
            // Not RFC: at most one such advert per half Advertisement_Interval, so a
            // flood of lower-priority adverts (forged on the link, or from a router that
            // cannot verify ours) is not echoed back at its own rate.
            let assert_due = self.last_assert_advert.is_none_or(|last| {
                now.saturating_duration_since(last) >= self.config.advert_interval.as_duration() / 2
            });
            if assert_due {
                self.last_assert_advert = Some(now);
                self.counters.assert_adverts += 1;
                self.send_advert(self.effective_priority, actions);
            }
            // Beyond the RFC (keepalived's garp_lower_prio_repeat): a lower-priority
            // router advertising means it believes it is master, and it will have
            // announced the VIPs with its own MAC; neighbours that listened now send our
            // traffic to it, and it stops answering as soon as it yields. Announce again
            // so neighbours come back. Once per episode: not again until the other has
            // been quiet for a Master_Down_Interval.
            let fresh = self.last_reassert.is_none_or(|last| {
                now.saturating_duration_since(last) >= self.master_down_interval()
            });
            self.last_reassert = Some(now);
            if fresh {
                self.counters.reassertions += 1;
                self.announce(actions);
            }
            return;
        }
        // RFC 5798 §6.4.3: "If the Priority in the ADVERTISEMENT is greater than the local
        // Priority or the Priority in the ADVERTISEMENT is equal to the local Priority and
        // the primary IPvX Address of the sender is greater than the local primary IPvX
        // Address (based on an unsigned integer comparison of the IPvX addresses in network
        // byte order), then: Cancel Adver_Timer; Set Master_Adver_Interval to Adver
        // Interval contained in the ADVERTISEMENT; Recompute the Skew_Time; Recompute the
        // Master_Down_Interval; Set Master_Down_Timer to Master_Down_Interval; Transition
        // to the {Backup} state".
        //
        // Beyond the RFC: one last advert at our priority as we yield. Neighbours may
        // still send the addresses' traffic to us (after a partition heals, say, our
        // gratuitous ARPs are their latest news); the winner answers a lower-priority
        // advert by announcing again (above), so the traffic comes back to it at once.
        self.send_advert(self.effective_priority, actions);
        self.learn_master_adver_interval(advert);
        // The winner is our successor: the addresses stay until it answers for them.
        self.become_backup(now, Reason::HigherPriorityAdvert, Some(src), actions);
        self.master_address = Some(src);
        // Not RFC (module doc, "Yielding"): neighbours that heard our announcements send
        // the addresses' traffic to us; point them at the winner, who may never hear us.
        actions.push(Action::AnnounceFor { master: src });
    }

    fn on_timeout(&mut self, now: Instant, actions: &mut Vec<Action>) {
        self.fire_protocol_timers(now, actions);
        // After the protocol timers: a former master whose Master_Down_Timer fires at the
        // same moment takes over with its VIPs in place instead of dropping them first.
        if self.release_guard.is_some_and(|g| g.deadline <= now) {
            // The successor answers and the linger is over, or none announced within a
            // Master_Down_Interval: let go.
            self.release_vips(actions);
        }
    }

    fn fire_protocol_timers(&mut self, now: Instant, actions: &mut Vec<Action>) {
        while let Some((timer, deadline)) = self.timers.pop_expired(now) {
            match (timer, self.state) {
                (Timer::Advert, State::Master) => {
                    // RFC 5798 §6.4.3: "If the Adver_Timer fires, then: Send an
                    // ADVERTISEMENT; Reset the Adver_Timer to Advertisement_Interval".
                    if self.master_since.is_some_and(|since| {
                        now.saturating_duration_since(since) >= self.master_down_interval()
                    }) {
                        // A whole Master_Down_Interval as master without failing.
                        self.failures_in_row = 0;
                    }
                    // Measured from the deadline that fired, so the driver's lateness
                    // does not add up (`timer` module doc, "Adver_Timer runs on a grid").
                    self.send_advert(self.effective_priority, actions);
                    self.timers.set(
                        Timer::Advert,
                        timer::next_advert_deadline(
                            deadline,
                            now,
                            self.config.advert_interval.as_duration(),
                        ),
                    );
                }
                (Timer::MasterDown, State::Backup) => {
                    // RFC 5798 §6.4.2: "If the Master_Down_Timer fires, then: Send an
                    // ADVERTISEMENT; Broadcast a gratuitous ARP / send Unsolicited Neighbor
                    // Advertisements; Set the Adver_Timer to Advertisement_Interval;
                    // Transition to the {Master} state".
                    let reason = if self.master_stopping {
                        Reason::PriorityZeroReceived
                    } else if self.master_unreachable {
                        Reason::PeerDown
                    } else {
                        Reason::MasterDown
                    };
                    self.become_master(now, reason, actions);
                }
                (Timer::FailureRetry, State::Fault) => {
                    // Not RFC (module doc): try again, unless an external fault holds.
                    self.failure = None;
                    if self.fault.is_none() {
                        self.start(now, true, actions);
                    }
                }
                // Every transition stops the timers of the state it leaves, so a timer
                // never outlives its state; nothing to do if one somehow did.
                _ => {}
            }
        }
    }

    /// Module doc, "BFD": the master is unreachable; take over after the short skew.
    fn on_peer_down(&mut self, now: Instant, peer: IpAddr) {
        if self.state != State::Backup || self.master_address != Some(peer) {
            return;
        }
        // Beyond RFC 5798: BFD saw the master die within its Detection Time, which is
        // what Master_Down_Interval waits for (§6.4.2 "If the Master_Down_Timer fires").
        // Never later than the timer already running.
        let deadline = now + bfd_skew_time(self.effective_priority);
        if self
            .timers
            .get(Timer::MasterDown)
            .is_none_or(|d| d > deadline)
        {
            self.timers.set(Timer::MasterDown, deadline);
            self.master_unreachable = true;
        }
    }

    fn on_priority_offset(&mut self, offset: i32) {
        self.priority_offset = offset;
        self.effective_priority = if self.config.is_owner() {
            // The owner's 255 is what makes it the owner; trackers cannot change it.
            PRIORITY_OWNER
        } else {
            let sum = i64::from(self.config.priority) + i64::from(offset);
            // Clamped to 1..=254: 0 would announce a shutdown, 255 would claim ownership.
            u8::try_from(sum.clamp(1, 254)).unwrap_or(1)
        };
    }

    fn on_fault(&mut self, now: Instant, reason: FaultReason, actions: &mut Vec<Action>) {
        self.fault = Some(reason.clone());
        self.enter_fault(now, reason, actions);
    }

    /// Goes to Fault from wherever the instance is (no-op in Initialize and Fault).
    fn enter_fault(&mut self, now: Instant, reason: FaultReason, actions: &mut Vec<Action>) {
        match self.state {
            // Remembered; Startup will go to Fault. Already in Fault: reason updated.
            State::Initialize | State::Fault => return,
            State::Backup => {}
            State::Master => {
                // Like a shutdown (RFC 5798 §6.4.3): priority 0 lets the backups take over
                // after Skew_Time instead of Master_Down_Interval if the link still works.
                // A faulty host cannot serve: the addresses go at once.
                self.send_advert(PRIORITY_STOP, actions);
                self.release_vips(actions);
            }
        }
        if self.release_guard.is_some() {
            self.release_vips(actions);
        }
        self.timers.stop_all();
        self.master_address = None;
        self.transition(now, State::Fault, Reason::Fault(reason), actions);
    }

    fn on_fault_cleared(&mut self, now: Instant, actions: &mut Vec<Action>) {
        self.fault = None;
        // A failure as master ends by its own retry timer.
        if self.state == State::Fault && self.failure.is_none() {
            // Leave Fault as if starting up (RFC 5798 §6.4.1), without the state hint: a
            // link that flaps must not make two masters.
            self.start(now, true, actions);
        }
    }

    /// The driver's report on an advert of ours (module doc, "Failures as master").
    fn on_advert_sent(&mut self, now: Instant, ok: bool, actions: &mut Vec<Action>) {
        if self.state != State::Master {
            return;
        }
        if ok {
            self.send_failures = 0;
            return;
        }
        self.send_failures += 1;
        if self.send_failures >= SEND_FAILURES_TO_FAULT {
            let failures = self.send_failures;
            self.fail(now, FaultReason::Send { failures }, actions);
        }
    }

    /// A master could not do what a master must: Fault, and try again later (module doc).
    fn fail(&mut self, now: Instant, reason: FaultReason, actions: &mut Vec<Action>) {
        self.failures_in_row = self.failures_in_row.saturating_add(1);
        let master_down_interval = self.master_down_interval();
        let doublings = self.failures_in_row.saturating_sub(1).min(16);
        let retry = master_down_interval
            .saturating_mul(1 << doublings)
            .min(MAX_FAILURE_RETRY.max(master_down_interval));
        self.failure = Some(reason.clone());
        self.enter_fault(now, reason, actions);
        self.timers.set(Timer::FailureRetry, now + retry);
    }

    fn become_master(&mut self, now: Instant, reason: Reason, actions: &mut Vec<Action>) {
        // Taking over from our own handover: the addresses never left.
        self.release_guard = None;
        actions.push(Action::AcquireVips {
            accept: self.accept_mode(),
        });
        if self.vips == VipHolding::Released {
            self.vips = VipHolding::Adding;
        }
        self.send_advert(self.effective_priority, actions);
        // RFC 5798 §6.4.1 / §6.4.2: announce — once the addresses are in place.
        self.announce(actions);
        self.master_adver_interval = self.config.advert_interval;
        self.master_address = Some(self.config.primary_address);
        self.master_stopping = false;
        self.master_unreachable = false;
        self.preempt_hold_until = None;
        self.master_since = Some(now);
        self.send_failures = 0;
        self.timers.stop_all();
        self.timers.set(
            Timer::Advert,
            now + self.config.advert_interval.as_duration(),
        );
        self.transition(now, State::Master, reason, actions);
    }

    /// Enter Backup with Master_Down_Timer = Master_Down_Interval (RFC 5798 §6.4.1,
    /// §6.4.3). The caller has set Master_Adver_Interval.
    /// `successor`: the router we yield to, when known (a better advert).
    fn become_backup(
        &mut self,
        now: Instant,
        reason: Reason,
        successor: Option<IpAddr>,
        actions: &mut Vec<Action>,
    ) {
        if self.state == State::Master {
            self.hold_for_successor(now, successor);
        }
        self.master_address = None;
        self.master_stopping = false;
        self.master_unreachable = false;
        self.preempt_hold_until = None;
        self.timers.stop_all();
        self.timers
            .set(Timer::MasterDown, now + self.master_down_interval());
        self.transition(now, State::Backup, reason, actions);
    }

    fn transition(&mut self, now: Instant, to: State, reason: Reason, actions: &mut Vec<Action>) {
        let from = self.state;
        self.state = to;
        self.counters.transitions += 1;
        if to == State::Master {
            self.counters.became_master += 1;
        }
        self.last_transition = Some(Transition {
            from,
            to,
            reason: reason.clone(),
            at: now,
        });
        actions.push(Action::StateChanged { from, to, reason });
    }

    fn on_vips_added(&mut self, actions: &mut Vec<Action>) {
        if self.vips != VipHolding::Adding {
            // Released meanwhile (the driver drops completions of superseded adds).
            return;
        }
        self.vips = VipHolding::Held;
        if std::mem::take(&mut self.announce_when_added) && self.state == State::Master {
            actions.push(Action::Announce);
        }
    }

    /// Announce the addresses now if they are on the interface, else as soon as the
    /// driver reports them added.
    fn announce(&mut self, actions: &mut Vec<Action>) {
        match self.vips {
            VipHolding::Held => actions.push(Action::Announce),
            VipHolding::Adding => self.announce_when_added = true,
            VipHolding::Released => {}
        }
    }

    /// Leaving Master without a fault: keep the addresses until the successor has
    /// announced them, at most a Master_Down_Interval (see [`ReleaseGuard`]).
    fn hold_for_successor(&mut self, now: Instant, successor: Option<IpAddr>) {
        self.announce_when_added = false;
        let deadline = match successor {
            Some(_) => now + self.master_down_interval(),
            None => now + self.master_adver_interval.as_duration() * 5 / 4,
        };
        self.release_guard = Some(ReleaseGuard {
            deadline,
            successor,
            successor_holds: false,
        });
    }

    fn release_vips(&mut self, actions: &mut Vec<Action>) {
        actions.push(Action::ReleaseVips);
        self.vips = VipHolding::Released;
        self.announce_when_added = false;
        self.release_guard = None;
    }

    fn send_advert(&mut self, priority: u8, actions: &mut Vec<Action>) {
        self.counters.adverts_sent += 1;
        if priority == PRIORITY_STOP {
            self.counters.priority_zero_sent += 1;
        }
        actions.push(Action::SendAdvert(self.advert_repr(priority)));
    }

    /// RFC 5798 §6.4.2 / §6.4.3: a v3 backup adopts the master's interval. RFC 3768 has
    /// no such rule (`validate` drops v2 adverts whose interval differs from ours). A zero
    /// interval would make Master_Down_Interval a bare Skew_Time and let a broken sender
    /// trigger takeovers; it is not learned.
    fn learn_master_adver_interval(&mut self, advert: &AdvertRepr) {
        if self.config.version == Version::V3 && advert.max_advert_interval.0 != 0 {
            self.master_adver_interval = advert.max_advert_interval.min(MAX_ADVERT_INTERVAL);
        }
    }

    /// Whether the preempt_delay hold still applies; starts it on first use. See the
    /// module doc for the rule.
    fn preempt_delay_holds(&mut self, now: Instant) -> bool {
        if self.config.preempt_delay.is_zero() {
            return false;
        }
        let until = *self
            .preempt_hold_until
            .get_or_insert(now + self.config.preempt_delay);
        now < until
    }
}

/// An address as the unsigned integer of its network-byte-order bytes (RFC 5798 §6.4.3).
fn address_as_unsigned(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

#[cfg(test)]
#[path = "instance_tests.rs"]
mod tests;
