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

/// Most addresses an IPv4 advert lists: the 8-bit count (RFC 5798 §5.2.5). 1 020 bytes
/// of addresses, so the advert still fits a 1 500-byte frame.
pub const MAX_LISTED_IPV4: usize = 255;
/// Most addresses an IPv6 advert lists: 255 would make a 4 KB advert that the kernel
/// fragments and peers (and vipd's XDP checks, which look at adverts up to
/// `MAX_CHECKED_ADVERT_LEN` = 1 036 bytes) cannot take whole. 64 × 16 + 8 = 1 032 bytes:
/// unfragmented on any IPv6 link (minimum MTU 1 280) and checked by XDP.
pub const MAX_LISTED_IPV6: usize = 64;

/// How many of an instance's VIPs its adverts list, by the family of `first`.
pub fn max_listed_addresses(first: Option<&IpAddr>) -> usize {
    match first {
        Some(IpAddr::V6(_)) => MAX_LISTED_IPV6,
        _ => MAX_LISTED_IPV4,
    }
}
/// Consecutive adverts that must fail to send before a master goes to Fault (see the
/// module doc): one failure is often a transient ENOBUFS; three intervals without a
/// single advert out is a master its backups will soon declare dead anyway.
pub const SEND_FAILURES_TO_FAULT: u32 = 3;
/// Longest wait before an instance that failed as master tries again (unless one
/// Master_Down_Interval is longer).
pub const MAX_FAILURE_RETRY: Duration = Duration::from_secs(60);

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
    /// Times a Master re-asserted itself (immediate advert + announce) after hearing a
    /// lower-priority router advertise as master.
    pub reassertions: u64,
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
    /// End of the preempt_delay hold, once a lower-priority master has been seen.
    preempt_hold_until: Option<Instant>,
    /// When, as Master, we last re-asserted against a lower-priority router that also
    /// claimed master (see [`Instance::on_advert_master`]).
    last_reassert: Option<Instant>,
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
/// old master keeps answering until the new one has sent its next periodic advert (by
/// then it has added the addresses and announced them: a master announces as soon as
/// its add completes, see [`Input::VipsAdded`]), and at most a Master_Down_Interval
/// after its first advert, the time a backup would have waited for a silent master
/// anyway. A stopping master that hears no successor within an interval and a quarter
/// (every backup's Skew_Time is shorter than an interval) has none and lets go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ReleaseGuard {
    /// Release no later than this.
    deadline: Instant,
    /// When the successor's first advert (priority > 0) was heard.
    successor_seen: Option<Instant>,
}

impl Instance {
    /// A stopped instance in Initialize. Nothing happens until [`Input::Startup`].
    pub fn new(config: InstanceConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Instance {
            state: State::Initialize,
            priority_offset: 0,
            effective_priority: config.priority,
            master_adver_interval: config.advert_interval,
            master_address: None,
            timers: TimerTable::default(),
            master_stopping: false,
            preempt_hold_until: None,
            last_reassert: None,
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
            Input::Follow(Follow::Master) if self.state == State::Backup => {
                self.become_master(now, Reason::SyncGroup, &mut actions);
            }
            Input::Follow(Follow::Backup) if self.state == State::Master => {
                self.become_backup(now, Reason::SyncGroup, &mut actions);
            }
            Input::Follow(_) => {}
        }
        actions
    }

    /// When the driver must next call `handle(now, Input::Timeout)`; `None` when no timer
    /// runs (Initialize, Fault).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let guard = self.release_guard.map(|g| g.deadline);
        self.timers.next_timeout().into_iter().chain(guard).min()
    }

    /// Until when a former master keeps its addresses for its successor, if it does (see
    /// [`Instance`]'s handover rule). The driver keeps answering for them (kernel address
    /// and ARP lease) until then, or until the core emits [`Action::ReleaseVips`].
    pub fn release_deadline(&self) -> Option<Instant> {
        self.release_guard.map(|g| g.deadline)
    }

    /// The advert this instance sends with `priority`, ready for `wire` to emit.
    pub fn advert_repr(&self, priority: u8) -> AdvertRepr {
        AdvertRepr {
            version: self.config.version,
            vrid: self.config.vrid,
            priority,
            max_advert_interval: self.config.advert_interval,
            auth: self.config.auth,
            // The rest are held, not listed (see `max_listed_addresses`).
            addresses: self
                .config
                .virtual_addresses
                .iter()
                .take(max_listed_addresses(self.config.virtual_addresses.first()))
                .copied()
                .collect(),
        }
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
            self.become_backup(now, reason(Reason::Startup), actions);
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
        } else if let Some(guard) = self.release_guard.as_mut() {
            let master_down_interval = timer::master_down_interval(
                self.config.version,
                self.effective_priority,
                self.master_adver_interval,
            );
            // A former master waiting for its successor (any advert with priority > 0 is
            // it, or a better one). Its periodic advert after the first one is the sign
            // that it has announced; an immediate one (its answer to our yielding
            // advert) may come before its add completed, so it must come at least half
            // an interval after the first.
            let half_interval = advert.max_advert_interval.as_duration() / 2;
            match guard.successor_seen {
                None => {
                    guard.successor_seen = Some(now);
                    guard.deadline = now + master_down_interval;
                }
                Some(first) if now.saturating_duration_since(first) >= half_interval => {
                    self.release_vips(actions);
                }
                Some(_) => {}
            }
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
            // RFC 5798 §6.4.3: "Else (i.e., the received ADVERTISEMENT Priority is less
            // than the local Priority, or ... equal ... and the primary IPvX Address of the
            // sender is less than the local primary IPvX Address), then: Discard the
            // ADVERTISEMENT". Our next advert makes the other one yield.
            self.counters.adverts_discarded += 1;
            // Beyond the RFC (keepalived's garp_lower_prio_repeat): a lower-priority
            // router advertising means it believes it is master, and it will have
            // announced the VIPs with its own MAC; neighbours that listened now send our
            // traffic to it, and it stops answering as soon as it yields. Advertise at
            // once so it yields now, and announce again so neighbours come back. Once
            // per episode: not again until the other has been quiet for a
            // Master_Down_Interval.
            let fresh = self.last_reassert.is_none_or(|last| {
                now.saturating_duration_since(last) >= self.master_down_interval()
            });
            self.last_reassert = Some(now);
            if fresh {
                self.counters.reassertions += 1;
                self.send_advert(self.effective_priority, actions);
                self.timers.set(
                    Timer::Advert,
                    now + self.config.advert_interval.as_duration(),
                );
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
        self.become_backup(now, Reason::HigherPriorityAdvert, actions);
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
            // No successor announced within a Master_Down_Interval: let go anyway.
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
    fn become_backup(&mut self, now: Instant, reason: Reason, actions: &mut Vec<Action>) {
        if self.state == State::Master {
            // The advert that made us yield is the successor's first.
            let heard = (reason == Reason::HigherPriorityAdvert).then_some(now);
            self.hold_for_successor(now, heard);
        }
        self.master_address = None;
        self.master_stopping = false;
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
    fn hold_for_successor(&mut self, now: Instant, successor_seen: Option<Instant>) {
        self.announce_when_added = false;
        let deadline = match successor_seen {
            Some(_) => now + self.master_down_interval(),
            None => now + self.master_adver_interval.as_duration() * 5 / 4,
        };
        self.release_guard = Some(ReleaseGuard {
            deadline,
            successor_seen,
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
mod tests {
    //! One scenario per rule, on a fake clock: `base` is the only real instant; every
    //! other time is `base + Duration`.

    use super::*;

    const SECOND: Duration = Duration::from_secs(1);
    const NANO: Duration = Duration::from_nanos(1);
    const VRID: u8 = 7;
    const MASTER_ADDRESS: &str = "192.0.2.20";

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test literal")
    }

    fn config(priority: u8) -> InstanceConfig {
        let mut config = InstanceConfig::new(
            VRID,
            ip("192.0.2.10"),
            vec![ip("192.0.2.1"), ip("192.0.2.2")],
        );
        config.priority = priority;
        config
    }

    fn instance(config: InstanceConfig) -> Instance {
        Instance::new(config).expect("valid test config")
    }

    /// Adverts list at most 255 IPv4 or 64 IPv6 addresses, and the VRRP message stays
    /// within what the XDP program checks (so it is never passed unchecked).
    #[test]
    fn adverts_list_what_fits_and_hold_the_rest() {
        for (count, v6, listed) in [
            (300, false, 255),
            (255, false, 255),
            (100, true, 64),
            (64, true, 64),
            (3, true, 3),
        ] {
            let addresses: Vec<IpAddr> = (0..count)
                .map(|i: u32| {
                    if v6 {
                        IpAddr::V6(std::net::Ipv6Addr::new(
                            0x2001,
                            0xdb8,
                            0,
                            0,
                            0,
                            0,
                            0,
                            i as u16 + 1,
                        ))
                    } else {
                        IpAddr::V4(std::net::Ipv4Addr::from(0xc612_0000 + i))
                    }
                })
                .collect();
            let primary = if v6 { ip("fe80::1") } else { ip("192.0.2.10") };
            let instance = instance(InstanceConfig::new(VRID, primary, addresses.clone()));
            let advert = instance.advert_repr(100);
            assert_eq!(
                advert.addresses,
                addresses[..listed],
                "{count} addresses, v6 {v6}"
            );
            assert!(
                advert.buffer_len() <= vipd_common::MAX_CHECKED_ADVERT_LEN as usize,
                "{count} addresses: {} bytes",
                advert.buffer_len()
            );
        }
    }

    /// An instance after `Startup` at `base`, and the startup actions.
    /// Starts an instance; one that became master is told its VIPs were added, as the
    /// driver does, so the returned actions end with that input's `Announce`.
    fn started(config: InstanceConfig, base: Instant) -> (Instance, Vec<Action>) {
        let mut instance = instance(config);
        let mut actions = instance.handle(base, Input::Startup);
        if instance.state() == State::Master {
            actions.extend(instance.handle(base, Input::VipsAdded { ok: true }));
        }
        (instance, actions)
    }

    fn advert_from(src: &str, priority: u8, interval: Centiseconds) -> Input {
        Input::Advert {
            src: ip(src),
            advert: AdvertRepr {
                version: Version::V3,
                vrid: VRID,
                priority,
                max_advert_interval: interval,
                auth: Auth::None,
                addresses: vec![ip("192.0.2.1"), ip("192.0.2.2")],
            },
        }
    }

    fn advert(priority: u8) -> Input {
        advert_from(MASTER_ADDRESS, priority, Centiseconds(100))
    }

    fn sent_priorities(actions: &[Action]) -> Vec<u8> {
        actions
            .iter()
            .filter_map(|action| match action {
                Action::SendAdvert(advert) => Some(advert.priority),
                _ => None,
            })
            .collect()
    }

    fn changes(actions: &[Action]) -> Vec<(State, State, Reason)> {
        actions
            .iter()
            .filter_map(|action| match action {
                Action::StateChanged { from, to, reason } => Some((*from, *to, reason.clone())),
                _ => None,
            })
            .collect()
    }

    /// The actions that make a master, in order: addresses, advert, announce, state.
    /// Acquire, advert, state change; no announcement before the VIPs are added.
    fn assert_became_master(actions: &[Action], priority: u8, accept: bool, reason: Reason) {
        assert_eq!(actions.len(), 3, "{actions:?}");
        assert_eq!(actions[0], Action::AcquireVips { accept });
        assert_eq!(sent_priorities(&actions[1..2]), vec![priority]);
        assert!(
            matches!(&actions[2], Action::StateChanged { to: State::Master, reason: why, .. } if *why == reason),
            "{actions:?}"
        );
    }

    #[test]
    fn config_defaults_follow_keepalived_and_rfc() {
        let config = config(100);
        let defaults = InstanceConfig::new(VRID, config.primary_address, vec![ip("192.0.2.1")]);
        assert_eq!(defaults.version, Version::V3);
        assert_eq!(defaults.priority, 100);
        assert_eq!(defaults.advert_interval, Centiseconds(100));
        assert!(defaults.preempt);
        assert_eq!(defaults.preempt_delay, Duration::ZERO);
        assert!(!defaults.accept_mode);
        assert_eq!(defaults.initial_state, InitialState::Backup);
        assert_eq!(defaults.auth, Auth::None);
        assert!(defaults.validate().is_ok());
    }

    #[test]
    fn config_validation_rejects_each_bad_field() {
        type Breaker = fn(&mut InstanceConfig);
        let cases: Vec<(Breaker, ConfigError)> = vec![
            (|c| c.vrid = 0, ConfigError::VridZero),
            (|c| c.priority = 0, ConfigError::PriorityZero),
            (
                |c| c.advert_interval = Centiseconds(0),
                ConfigError::AdvertIntervalZero,
            ),
            (
                |c| c.advert_interval = Centiseconds(4096),
                ConfigError::AdvertIntervalTooLong {
                    interval: Centiseconds(4096),
                },
            ),
            (
                |c| {
                    c.version = Version::V2;
                    c.primary_address = ip("fe80::1");
                    c.virtual_addresses = vec![ip("2001:db8::1")];
                },
                ConfigError::V2WithIpv6,
            ),
            (
                |c| {
                    c.version = Version::V2;
                    c.advert_interval = Centiseconds(150);
                },
                ConfigError::V2IntervalNotWholeSeconds {
                    interval: Centiseconds(150),
                },
            ),
            (
                |c| c.auth = Auth::SimpleText(*b"secret\0\0"),
                ConfigError::V3WithAuth,
            ),
            (
                |c| c.primary_address = ip("0.0.0.0"),
                ConfigError::PrimaryAddressUnspecified,
            ),
            (
                |c| {
                    c.primary_address = ip("2001:db8::10");
                    c.virtual_addresses = vec![ip("2001:db8::1")];
                },
                ConfigError::Ipv6PrimaryNotLinkLocal {
                    address: "2001:db8::10".parse().expect("literal"),
                },
            ),
            (
                |c| c.virtual_addresses.clear(),
                ConfigError::NoVirtualAddresses,
            ),
            (
                |c| c.virtual_addresses.push(ip("2001:db8::1")),
                ConfigError::VirtualAddressFamily {
                    address: ip("2001:db8::1"),
                },
            ),
            (
                |c| c.preempt_delay = Duration::from_secs(1001),
                ConfigError::PreemptDelayTooLong {
                    delay: Duration::from_secs(1001),
                },
            ),
        ];
        for (break_it, expected) in cases {
            let mut config = config(100);
            break_it(&mut config);
            assert_eq!(Instance::new(config).err(), Some(expected.clone()));
            assert!(!expected.to_string().is_empty());
        }
        // The edges that are fine.
        let mut config = config(255);
        config.advert_interval = MAX_ADVERT_INTERVAL;
        config.preempt_delay = MAX_PREEMPT_DELAY;
        assert!(config.validate().is_ok());
        let mut v2 = self::config(100);
        v2.version = Version::V2;
        v2.auth = Auth::SimpleText(*b"secret\0\0");
        assert!(v2.validate().is_ok());
        let mut v6 = self::config(100);
        v6.primary_address = ip("fe80::10");
        v6.virtual_addresses = vec![ip("2001:db8::1")];
        assert!(v6.validate().is_ok());
    }

    #[test]
    fn rfc5798_6_4_1_non_owner_starts_as_backup_with_master_down_interval() {
        let base = Instant::now();
        let (instance, actions) = started(config(100), base);
        assert_eq!(
            changes(&actions),
            vec![(State::Initialize, State::Backup, Reason::Startup)]
        );
        assert_eq!(
            actions.len(),
            1,
            "a backup sends and acquires nothing: {actions:?}"
        );
        assert_eq!(instance.state(), State::Backup);
        assert_eq!(instance.master_adver_interval(), Centiseconds(100));
        // 3 × 1 s + (256 − 100) × 1 s / 256.
        assert_eq!(
            instance.poll_timeout(),
            Some(base + Duration::from_nanos(3_609_375_000))
        );
        assert_eq!(instance.master_address(), None);
    }

    #[test]
    fn rfc5798_6_4_1_owner_goes_master_at_once_with_advert_and_announce() {
        let base = Instant::now();
        let (instance, actions) = started(config(255), base);
        assert_eq!(actions[0], Action::AcquireVips { accept: true });
        assert_eq!(sent_priorities(&actions), vec![255]);
        assert_eq!(actions.last(), Some(&Action::Announce));
        assert_eq!(
            changes(&actions),
            vec![(State::Initialize, State::Master, Reason::Owner)]
        );
        assert_eq!(instance.state(), State::Master);
        assert_eq!(instance.poll_timeout(), Some(base + SECOND));
        assert_eq!(instance.master_address(), Some(ip("192.0.2.10")));
        // The advert carries our VIPs, VRID and interval.
        let Action::SendAdvert(sent) = &actions[1] else {
            panic!("second action is the advert: {actions:?}");
        };
        assert_eq!(sent, &instance.advert_repr(255));
        assert_eq!(sent.addresses, instance.config().virtual_addresses);
        assert_eq!(sent.vrid, VRID);
    }

    #[test]
    fn rfc5798_6_4_1_startup_is_ignored_once_running() {
        let base = Instant::now();
        let (mut instance, _) = started(config(100), base);
        assert!(instance.handle(base + SECOND, Input::Startup).is_empty());
        assert_eq!(instance.counters().transitions, 1);
    }

    #[test]
    fn rfc5798_6_4_2_master_down_timer_expiry_takes_over() {
        let base = Instant::now();
        let (mut instance, _) = started(config(100), base);
        let deadline = instance.poll_timeout().expect("master down timer");
        // Early timeouts fire nothing.
        assert!(
            instance
                .handle(deadline - Duration::from_nanos(1), Input::Timeout)
                .is_empty()
        );
        let actions = instance.handle(deadline, Input::Timeout);
        assert_became_master(&actions, 100, false, Reason::MasterDown);
        assert_eq!(instance.state(), State::Master);
        assert_eq!(instance.poll_timeout(), Some(deadline + SECOND));
        let last = instance.last_transition().expect("transition");
        assert_eq!(
            (last.from, last.to, last.at),
            (State::Backup, State::Master, deadline)
        );
    }

    #[test]
    fn rfc5798_6_4_2_backup_resets_master_down_timer_on_each_advert() {
        let base = Instant::now();
        let (mut instance, _) = started(config(100), base);
        let mdi = instance.master_down_interval();
        for second in 1..=10 {
            let now = base + SECOND * second;
            assert!(instance.handle(now, advert(150)).is_empty());
            assert_eq!(instance.poll_timeout(), Some(now + mdi));
            assert!(instance.handle(now, Input::Timeout).is_empty());
        }
        assert_eq!(instance.state(), State::Backup);
        assert_eq!(instance.master_address(), Some(ip(MASTER_ADDRESS)));
        assert_eq!(instance.counters().adverts_received, 10);
    }

    #[test]
    fn rfc5798_6_4_2_v3_backup_learns_master_adver_interval() {
        let base = Instant::now();
        let (mut instance, _) = started(config(100), base);
        let now = base + SECOND;
        let _ = instance.handle(now, advert_from(MASTER_ADDRESS, 150, Centiseconds(20)));
        assert_eq!(instance.master_adver_interval(), Centiseconds(20));
        // 3 × 200 ms + 156/256 × 200 ms = 600 ms + 121.875 ms.
        assert_eq!(
            instance.poll_timeout(),
            Some(now + Duration::from_nanos(721_875_000))
        );
        // A zero interval is not learned (it would make Master_Down_Interval a bare skew).
        let _ = instance.handle(now, advert_from(MASTER_ADDRESS, 150, Centiseconds(0)));
        assert_eq!(instance.master_adver_interval(), Centiseconds(20));
        // Becoming master goes back to our own Advertisement_Interval.
        let deadline = instance.poll_timeout().expect("timer");
        let _ = instance.handle(deadline, Input::Timeout);
        assert_eq!(instance.master_adver_interval(), Centiseconds(100));
    }

    #[test]
    fn rfc5798_6_4_2_priority_zero_takes_over_after_skew_time() {
        let base = Instant::now();
        let (mut instance, _) = started(config(100), base);
        let _ = instance.handle(base + SECOND, advert(150));
        let now = base + SECOND * 2;
        assert!(instance.handle(now, advert(0)).is_empty());
        let skew = Duration::from_nanos(609_375_000);
        assert_eq!(instance.skew_time(), skew);
        assert_eq!(instance.poll_timeout(), Some(now + skew));
        assert_eq!(instance.master_address(), None);
        let actions = instance.handle(now + skew, Input::Timeout);
        assert_became_master(&actions, 100, false, Reason::PriorityZeroReceived);
        assert_eq!(instance.counters().priority_zero_received, 1);
    }

    #[test]
    fn rfc5798_6_4_2_preempt_backup_discards_lower_priority_and_takes_over() {
        let base = Instant::now();
        let (mut instance, _) = started(config(200), base);
        let first_deadline = instance.poll_timeout().expect("timer");
        // A lower-priority master keeps advertising; none of it resets the timer.
        let mut now = base;
        while now + SECOND < first_deadline {
            now += SECOND;
            assert!(instance.handle(now, advert(100)).is_empty());
            assert_eq!(instance.poll_timeout(), Some(first_deadline));
        }
        assert_eq!(instance.counters().adverts_discarded, 3);
        let actions = instance.handle(first_deadline, Input::Timeout);
        assert_became_master(&actions, 200, false, Reason::MasterDown);
    }

    #[test]
    fn rfc5798_6_4_2_equal_priority_master_is_accepted_by_backup() {
        let base = Instant::now();
        let (mut instance, _) = started(config(100), base);
        // Even with a lower address than ours: §6.4.2 compares priorities only.
        let now = base + SECOND;
        let _ = instance.handle(now, advert_from("192.0.2.5", 100, Centiseconds(100)));
        assert_eq!(
            instance.poll_timeout(),
            Some(now + instance.master_down_interval())
        );
    }

    #[test]
    fn rfc5798_6_4_2_nopreempt_backup_accepts_lower_priority_master() {
        let base = Instant::now();
        let mut config = config(200);
        config.preempt = false;
        let (mut instance, _) = started(config, base);
        for second in 1..=30 {
            let now = base + SECOND * second;
            let _ = instance.handle(now, advert(100));
            assert!(instance.handle(now, Input::Timeout).is_empty());
            assert_eq!(
                instance.poll_timeout(),
                Some(now + instance.master_down_interval())
            );
        }
        assert_eq!(instance.state(), State::Backup);
        assert_eq!(instance.counters().adverts_discarded, 0);
    }

    #[test]
    fn preempt_delay_holds_preemption_for_the_delay_after_first_seeing_the_master() {
        let base = Instant::now();
        let mut config = config(200);
        config.preempt_delay = Duration::from_secs(10);
        let (mut instance, _) = started(config, base);
        // The lower master is first heard 2 s after startup: the hold runs to 12 s.
        let mut now = base + SECOND * 2;
        let _ = instance.handle(now, advert(100));
        assert_eq!(instance.preempt_hold_until(), Some(base + SECOND * 12));
        // Adverts every 1 s keep resetting the timer during the hold...
        let mut last_accepted = now;
        while now < base + SECOND * 20 {
            now += SECOND;
            if let Some(deadline) = instance.poll_timeout()
                && deadline <= now
            {
                break;
            }
            let _ = instance.handle(now, advert(100));
            if now < base + SECOND * 12 {
                last_accepted = now;
                assert_eq!(
                    instance.poll_timeout(),
                    Some(now + instance.master_down_interval())
                );
            }
        }
        // ...and from 12 s they are discarded, so we take over one Master_Down_Interval
        // after the last one accepted (at 11 s).
        assert_eq!(last_accepted, base + SECOND * 11);
        let takeover = instance.poll_timeout().expect("timer");
        assert_eq!(takeover, last_accepted + instance.master_down_interval());
        assert!(takeover >= base + SECOND * 12);
        let actions = instance.handle(takeover, Input::Timeout);
        assert_became_master(&actions, 200, false, Reason::MasterDown);
        assert_eq!(instance.preempt_hold_until(), None);
    }

    #[test]
    fn preempt_delay_restarts_after_hearing_a_master_at_least_as_good() {
        let base = Instant::now();
        let mut config = config(200);
        config.preempt_delay = Duration::from_secs(10);
        let (mut instance, _) = started(config, base);
        let _ = instance.handle(base + SECOND, advert(100));
        assert_eq!(instance.preempt_hold_until(), Some(base + SECOND * 11));
        let _ = instance.handle(
            base + SECOND * 2,
            advert_from("192.0.2.30", 250, Centiseconds(100)),
        );
        assert_eq!(instance.preempt_hold_until(), None);
        let _ = instance.handle(base + SECOND * 3, advert(100));
        assert_eq!(instance.preempt_hold_until(), Some(base + SECOND * 13));
    }

    #[test]
    fn preempt_delay_does_not_delay_takeover_from_a_silent_master() {
        let base = Instant::now();
        let mut config = config(200);
        config.preempt_delay = Duration::from_secs(100);
        let (mut instance, _) = started(config, base);
        let _ = instance.handle(base + SECOND, advert(100));
        let deadline = instance.poll_timeout().expect("timer");
        assert_eq!(deadline, base + SECOND + instance.master_down_interval());
        let actions = instance.handle(deadline, Input::Timeout);
        assert_eq!(instance.state(), State::Master, "{actions:?}");
    }

    #[test]
    fn rfc5798_6_4_3_master_sends_advert_every_advertisement_interval() {
        let base = Instant::now();
        let mut config = config(255);
        config.advert_interval = Centiseconds(1);
        let (mut instance, _) = started(config, base);
        let mut now = base;
        for _ in 0..100 {
            now = instance.poll_timeout().expect("adver timer");
            let actions = instance.handle(now, Input::Timeout);
            assert_eq!(actions, vec![Action::SendAdvert(instance.advert_repr(255))]);
        }
        assert_eq!(now, base + Duration::from_millis(10) * 100);
        assert_eq!(instance.counters().adverts_sent, 101);
        // A late driver gets one advert, not a burst.
        let late = now + SECOND;
        assert_eq!(
            sent_priorities(&instance.handle(late, Input::Timeout)),
            vec![255]
        );
        assert_eq!(
            instance.poll_timeout(),
            Some(late + Duration::from_millis(10))
        );
    }

    /// Issue 13: a driver that is always a little late (timer rounding, scheduling) must
    /// not slow the advert rate down. Adverts stay on the 10 ms grid.
    #[test]
    fn rfc5798_6_4_3_adver_timer_keeps_its_grid_when_the_driver_is_late() {
        let base = Instant::now();
        let interval = Duration::from_millis(10);
        let lateness = Duration::from_micros(900);
        let mut config = config(255);
        config.advert_interval = Centiseconds(1);
        let (mut instance, _) = started(config, base);
        let end = base + SECOND * 10;
        let mut adverts = 0u32;
        while let Some(deadline) = instance.poll_timeout().filter(|&d| d <= end) {
            assert_eq!(deadline, base + interval * (adverts + 1), "off the grid");
            let actions = instance.handle(deadline + lateness, Input::Timeout);
            assert_eq!(sent_priorities(&actions), vec![255], "at {adverts}");
            adverts += 1;
        }
        // Re-armed from `now`, 10.9 ms apart, it would have been 917.
        assert_eq!(adverts, 1000);
    }

    /// Issue 13: a master stalled past a whole interval sends one advert when it wakes,
    /// then advertises every interval from there: no burst to catch up.
    #[test]
    fn rfc5798_6_4_3_a_stalled_master_sends_one_advert_then_resumes_without_a_burst() {
        let base = Instant::now();
        let ms = Duration::from_millis;
        let mut config = config(255);
        config.advert_interval = Centiseconds(1);
        let (mut instance, _) = started(config, base);
        for k in 1..=2 {
            assert_eq!(instance.poll_timeout(), Some(base + ms(10 * k)));
            let _ = instance.handle(base + ms(10 * k), Input::Timeout);
        }
        // Due at 30 ms; the driver wakes 35 ms later.
        assert_eq!(instance.poll_timeout(), Some(base + ms(30)));
        let wake = base + ms(65);
        let sent = instance.counters().adverts_sent;
        assert_eq!(
            sent_priorities(&instance.handle(wake, Input::Timeout)),
            vec![255]
        );
        assert_eq!(instance.counters().adverts_sent, sent + 1);
        assert!(instance.handle(wake, Input::Timeout).is_empty());
        // The schedule goes on one interval after the advert just sent.
        for k in 1..=5 {
            let deadline = instance.poll_timeout().expect("adver timer");
            assert_eq!(deadline, wake + ms(10 * k));
            assert!(instance.handle(deadline - ms(1), Input::Timeout).is_empty());
            assert_eq!(
                sent_priorities(&instance.handle(deadline, Input::Timeout)),
                vec![255]
            );
        }
        assert_eq!(instance.counters().adverts_sent, sent + 6);
    }

    #[test]
    fn rfc5798_6_4_3_master_answers_priority_zero_with_an_advert_at_once() {
        let base = Instant::now();
        let (mut instance, _) = started(config(255), base);
        let now = base + Duration::from_millis(300);
        let actions = instance.handle(now, advert(0));
        assert_eq!(sent_priorities(&actions), vec![255]);
        assert_eq!(actions.len(), 1);
        assert_eq!(
            instance.poll_timeout(),
            Some(now + SECOND),
            "Adver_Timer reset"
        );
        assert_eq!(instance.state(), State::Master);
    }

    #[test]
    fn rfc5798_6_4_3_master_yields_to_higher_priority() {
        let base = Instant::now();
        let mut config = config(150);
        config.initial_state = InitialState::Master;
        let (mut instance, _) = started(config, base);
        assert_eq!(instance.state(), State::Master);
        let now = base + SECOND / 2;
        let actions = instance.handle(now, advert_from(MASTER_ADDRESS, 200, Centiseconds(50)));
        // One last advert at our priority (beyond the RFC: the winner re-announces on
        // hearing it), then Backup; the VIPs stay until the winner's next advert.
        assert_eq!(
            actions,
            vec![
                Action::SendAdvert(instance.advert_repr(150)),
                Action::StateChanged {
                    from: State::Master,
                    to: State::Backup,
                    reason: Reason::HigherPriorityAdvert,
                },
                Action::AnnounceFor {
                    master: ip(MASTER_ADDRESS)
                },
            ]
        );
        assert!(instance.release_deadline().is_some());
        // Learned the new master's interval and armed Master_Down_Timer with it.
        assert_eq!(instance.master_adver_interval(), Centiseconds(50));
        assert_eq!(
            instance.poll_timeout(),
            Some(now + timer::master_down_interval(Version::V3, 150, Centiseconds(50)))
        );
        assert_eq!(instance.master_address(), Some(ip(MASTER_ADDRESS)));
        let next = now + Duration::from_millis(500);
        assert_eq!(
            instance.handle(next, advert_from(MASTER_ADDRESS, 200, Centiseconds(50))),
            vec![Action::ReleaseVips]
        );
    }

    fn announced_for(actions: &[Action]) -> Vec<IpAddr> {
        actions
            .iter()
            .filter_map(|action| match action {
                Action::AnnounceFor { master } => Some(*master),
                _ => None,
            })
            .collect()
    }

    /// A partition that heals on the loser's side first: the winner (200) never hears
    /// the loser (100) as master, so it never re-announces; the loser, yielding, points
    /// the neighbours it misled at the winner.
    #[test]
    fn beyond_rfc_yielding_master_announces_for_the_winner_whatever_the_heal_order() {
        let base = Instant::now();
        let (mut winner, _) = started(config(200), base);
        let mut loser_config = config(100);
        loser_config.primary_address = ip(MASTER_ADDRESS);
        let (mut loser, _) = started(loser_config, base);
        let deadline = winner.poll_timeout().expect("master down timer");
        let _ = winner.handle(deadline, Input::Timeout);
        assert_eq!(winner.state(), State::Master);
        // Partitioned: the loser hears nothing and takes over (announcing itself).
        let deadline = loser.poll_timeout().expect("master down timer");
        let _ = loser.handle(deadline, Input::Timeout);
        let actions = loser.handle(deadline, Input::VipsAdded { ok: true });
        assert!(actions.contains(&Action::Announce));
        // The loser's side heals first: it hears the winner and yields.
        let now = deadline + SECOND;
        let winner_advert = Input::Advert {
            src: ip("192.0.2.10"),
            advert: winner.advert_repr(winner.effective_priority()),
        };
        let actions = loser.handle(now, winner_advert);
        assert_eq!(loser.state(), State::Backup);
        assert_eq!(announced_for(&actions), vec![ip("192.0.2.10")]);
        // Then the winner's side: it hears nothing (a backup is silent) and, by itself,
        // would never announce again.
        let mut at = now;
        for _ in 0..10 {
            at = winner.poll_timeout().expect("advert timer");
            let actions = winner.handle(at, Input::Timeout);
            assert!(!actions.contains(&Action::Announce), "{actions:?}");
        }
        assert!(at > now);
    }

    #[test]
    fn yielding_other_than_to_a_better_master_announces_for_nobody() {
        let base = Instant::now();
        let (mut master, _) = started(config(255), base);
        let actions = master.handle(base + SECOND, Input::Follow(Follow::Backup));
        assert!(announced_for(&actions).is_empty());
        let (mut master, _) = started(config(255), base);
        let actions = master.handle(
            base + SECOND,
            Input::Fault {
                reason: FaultReason::LinkDown,
            },
        );
        assert!(announced_for(&actions).is_empty());
        let (mut master, _) = started(config(255), base);
        assert!(announced_for(&master.handle(base + SECOND, Input::Shutdown)).is_empty());
        // A backup hearing a new master did not announce anything to correct.
        let (mut backup, _) = started(config(100), base);
        assert!(announced_for(&backup.handle(base, advert(200))).is_empty());
    }

    #[test]
    fn rfc5798_6_4_3_master_discards_lower_priority() {
        let base = Instant::now();
        let mut config = config(150);
        config.initial_state = InitialState::Master;
        let (mut instance, _) = started(config, base);
        // The first one of an episode is discarded for the election but re-asserted
        // against (tested below); later ones are plainly discarded.
        let _ = instance.handle(base, advert(149));
        let later = base + Duration::from_millis(10);
        assert!(instance.handle(later, advert(149)).is_empty());
        assert_eq!(instance.state(), State::Master);
        assert_eq!(instance.counters().adverts_discarded, 2);
        assert_eq!(instance.poll_timeout(), Some(base + SECOND));
    }

    #[test]
    fn beyond_rfc_sync_group_follow_moves_between_backup_and_master_only() {
        let base = Instant::now();
        let (mut instance, _) = started(config(100), base);
        assert_eq!(instance.state(), State::Backup);
        // Follow a member to Master: at once, with the usual master actions.
        let actions = instance.handle(base, Input::Follow(Follow::Master));
        assert_became_master(&actions, 100, false, Reason::SyncGroup);
        // Following again is a no-op.
        assert!(
            instance
                .handle(base, Input::Follow(Follow::Master))
                .is_empty()
        );
        // Follow a member back to Backup: wait like a Backup, holding the VIPs for a
        // successor that speaks within an interval and a quarter.
        let later = base + SECOND;
        let actions = instance.handle(later, Input::Follow(Follow::Backup));
        assert!(!actions.contains(&Action::ReleaseVips));
        assert_eq!(instance.release_deadline(), Some(later + SECOND * 5 / 4));
        assert_eq!(
            changes(&actions),
            vec![(State::Master, State::Backup, Reason::SyncGroup)]
        );
        // The release deadline comes first, then Master_Down_Timer as any Backup's.
        assert_eq!(instance.poll_timeout(), Some(later + SECOND * 5 / 4));
        assert_eq!(
            instance.handle(later + SECOND * 5 / 4, Input::Timeout),
            vec![Action::ReleaseVips]
        );
        assert_eq!(
            instance.poll_timeout(),
            Some(later + instance.master_down_interval())
        );
        // Never out of Fault.
        let _ = instance.handle(
            later,
            Input::Fault {
                reason: FaultReason::LinkDown,
            },
        );
        assert!(
            instance
                .handle(later, Input::Follow(Follow::Master))
                .is_empty()
        );
        assert_eq!(instance.state(), State::Fault);
    }

    #[test]
    fn beyond_rfc_master_reasserts_once_per_episode_against_a_lower_priority_master() {
        let base = Instant::now();
        let mut config = config(150);
        config.initial_state = InitialState::Master;
        let (mut instance, _) = started(config, base);
        // A lower-priority router advertising thinks it is master: advertise at once (it
        // yields on hearing us) and announce the VIPs again (its GARP stole them).
        let actions = instance.handle(base, advert(149));
        assert!(
            matches!(&actions[..], [Action::SendAdvert(a), Action::Announce] if a.priority == 150)
        );
        assert_eq!(
            instance.poll_timeout(),
            Some(base + SECOND),
            "Adver_Timer reset"
        );
        assert_eq!(instance.counters().reassertions, 1);
        // More adverts of the same episode: no storm.
        for ms in [10, 20, 3000] {
            let at = base + Duration::from_millis(ms);
            let actions = instance.handle(at, advert(149));
            assert!(actions.is_empty(), "at {ms} ms: {actions:?}");
        }
        // After a quiet Master_Down_Interval (3 s + skew at 1 s adverts), a new episode.
        let quiet = base + Duration::from_millis(3000) + instance.master_down_interval();
        let actions = instance.handle(quiet, advert(149));
        assert!(actions.contains(&Action::Announce));
        assert_eq!(instance.counters().reassertions, 2);
        assert_eq!(instance.state(), State::Master);
    }

    #[test]
    fn rfc5798_6_4_3_equal_priority_higher_primary_address_wins_ipv4() {
        let base = Instant::now();
        // Ours is 192.0.2.10. As text "192.0.2.9" > "192.0.2.10"; as integers it is less.
        let mut config = config(100);
        config.initial_state = InitialState::Master;
        let (mut instance, _) = started(config.clone(), base);
        assert!(
            changes(&instance.handle(base, advert_from("192.0.2.9", 100, Centiseconds(100))))
                .is_empty()
        );
        assert_eq!(instance.state(), State::Master);
        let actions = instance.handle(base, advert_from("192.0.2.11", 100, Centiseconds(100)));
        assert_eq!(
            changes(&actions),
            vec![(State::Master, State::Backup, Reason::HigherPriorityAdvert)]
        );
        // Our own address does not beat us.
        let (mut instance, _) = started(config, base);
        assert!(
            changes(&instance.handle(base, advert_from("192.0.2.10", 100, Centiseconds(100))))
                .is_empty()
        );
    }

    #[test]
    fn rfc5798_6_4_3_equal_priority_higher_primary_address_wins_ipv6() {
        let base = Instant::now();
        let mut config = config(100);
        config.primary_address = ip("fe80::1:0");
        config.virtual_addresses = vec![ip("2001:db8::1")];
        config.initial_state = InitialState::Master;
        let (mut instance, _) = started(config, base);
        // fe80::ffff < fe80::1:0 as a 128-bit integer.
        assert!(
            changes(&instance.handle(base, advert_from("fe80::ffff", 100, Centiseconds(100))))
                .is_empty()
        );
        assert_eq!(instance.state(), State::Master);
        let _ = instance.handle(base, advert_from("fe80::1:1", 100, Centiseconds(100)));
        assert_eq!(instance.state(), State::Backup);
    }

    #[test]
    fn rfc5798_6_4_3_master_shutdown_sends_priority_zero_and_releases() {
        let base = Instant::now();
        let (mut instance, _) = started(config(255), base);
        let now = base + SECOND * 5;
        let actions = instance.handle(now, Input::Shutdown);
        assert_eq!(sent_priorities(&actions), vec![0]);
        assert_eq!(
            changes(&actions),
            vec![(State::Master, State::Initialize, Reason::Shutdown)]
        );
        // The VIPs stay for a successor (make-before-break); one that has not spoken
        // within an interval and a quarter does not exist. No protocol timer runs.
        assert!(!actions.contains(&Action::ReleaseVips));
        let guard = now + SECOND * 5 / 4;
        assert_eq!(instance.release_deadline(), Some(guard));
        assert_eq!(instance.poll_timeout(), Some(guard));
        assert_eq!(instance.counters().priority_zero_sent, 1);
        // Stopped: repeated shutdowns do nothing; no successor: released at the bound.
        assert!(instance.handle(now, Input::Shutdown).is_empty());
        assert!(instance.handle(guard - NANO, Input::Timeout).is_empty());
        assert_eq!(
            instance.handle(guard, Input::Timeout),
            vec![Action::ReleaseVips]
        );
        assert_eq!(instance.poll_timeout(), None);
        assert!(instance.handle(guard, advert(200)).is_empty());
        assert_eq!(instance.state(), State::Initialize);
    }

    #[test]
    fn beyond_rfc_stopping_master_releases_after_its_successors_second_advert() {
        let base = Instant::now();
        let mut config = config(200);
        config.initial_state = InitialState::Master;
        let (mut instance, _) = started(config, base);
        let _ = instance.handle(base, Input::Shutdown);
        // The successor's first advert: it may not have added and announced the VIPs
        // yet, so we go on answering for them.
        let first = base + Duration::from_millis(7);
        assert!(instance.handle(first, advert(100)).is_empty());
        // From its first advert, it has a Master_Down_Interval to announce.
        assert_eq!(
            instance.release_deadline(),
            Some(first + instance.master_down_interval())
        );
        // An immediate extra advert (say, its answer to another router) is no sign.
        assert!(instance.handle(first + SECOND / 4, advert(100)).is_empty());
        // Its second: it has (it announces as soon as its add completes).
        let second = first + SECOND;
        assert_eq!(
            instance.handle(second, advert(100)),
            vec![Action::ReleaseVips]
        );
        assert_eq!(instance.release_deadline(), None);
        assert_eq!(instance.poll_timeout(), None);
    }

    #[test]
    fn beyond_rfc_a_master_announces_only_once_its_vips_are_added() {
        let base = Instant::now();
        let (mut instance, _) = started(config(100), base);
        let deadline = instance.poll_timeout().expect("Master_Down_Timer");
        let actions = instance.handle(deadline, Input::Timeout);
        assert_became_master(&actions, 100, false, Reason::MasterDown);
        // A lower-priority router claims master before our add completed: we advertise
        // at once but still announce only with the VIPs in place.
        let actions = instance.handle(deadline, advert(99));
        assert_eq!(sent_priorities(&actions), vec![100]);
        assert!(!actions.contains(&Action::Announce));
        assert_eq!(
            instance.handle(deadline, Input::VipsAdded { ok: true }),
            vec![Action::Announce]
        );
        // A duplicate completion announces nothing more.
        assert!(
            instance
                .handle(deadline, Input::VipsAdded { ok: true })
                .is_empty()
        );
        // A completion after the VIPs were released again (a stale add) is ignored.
        let _ = instance.handle(
            deadline,
            Input::Fault {
                reason: FaultReason::LinkDown,
            },
        );
        assert!(
            instance
                .handle(deadline, Input::VipsAdded { ok: true })
                .is_empty()
        );
    }

    #[test]
    fn beyond_rfc_taking_over_again_during_a_handover_keeps_the_vips() {
        let base = Instant::now();
        let mut config = config(150);
        config.initial_state = InitialState::Master;
        let (mut instance, _) = started(config, base);
        // A better master appears; we yield but hold the VIPs for it...
        let actions = instance.handle(base, advert(200));
        assert!(!actions.contains(&Action::ReleaseVips));
        // ...and it dies at once: we take over with the VIPs never gone, and announce
        // straight away (they are on the interface).
        let deadline = instance.poll_timeout().expect("timer");
        let actions = instance.handle(deadline, Input::Timeout);
        assert!(!actions.contains(&Action::ReleaseVips), "{actions:?}");
        assert!(actions.contains(&Action::Announce), "{actions:?}");
        assert_eq!(instance.state(), State::Master);
        assert_eq!(instance.release_deadline(), None);
    }

    #[test]
    fn beyond_rfc_a_fault_during_a_handover_releases_at_once() {
        let base = Instant::now();
        let mut config = config(150);
        config.initial_state = InitialState::Master;
        let (mut instance, _) = started(config, base);
        let _ = instance.handle(base, advert(200));
        let actions = instance.handle(
            base,
            Input::Fault {
                reason: FaultReason::LinkDown,
            },
        );
        assert_eq!(actions[0], Action::ReleaseVips);
        assert_eq!(instance.release_deadline(), None);
    }

    #[test]
    fn rfc5798_6_4_2_backup_shutdown_stops_silently() {
        let base = Instant::now();
        let (mut instance, _) = started(config(100), base);
        let actions = instance.handle(base + SECOND, Input::Shutdown);
        assert_eq!(
            actions,
            vec![Action::StateChanged {
                from: State::Backup,
                to: State::Initialize,
                reason: Reason::Shutdown,
            }]
        );
        assert_eq!(instance.poll_timeout(), None);
        // And it can start again.
        let _ = instance.handle(base + SECOND * 2, Input::Startup);
        assert_eq!(instance.state(), State::Backup);
    }

    #[test]
    fn priority_offset_is_clamped_and_never_touches_the_owner() {
        let base = Instant::now();
        let (mut instance, _) = started(config(100), base);
        let _ = instance.handle(base, Input::PriorityOffset(-30));
        assert_eq!(
            (instance.priority(), instance.effective_priority()),
            (100, 70)
        );
        assert_eq!(instance.priority_offset(), -30);
        assert_eq!(
            instance.skew_time(),
            timer::skew_time(Version::V3, 70, Centiseconds(100))
        );
        let _ = instance.handle(base, Input::PriorityOffset(-500));
        assert_eq!(instance.effective_priority(), 1);
        let _ = instance.handle(base, Input::PriorityOffset(i32::MAX));
        assert_eq!(instance.effective_priority(), 254);
        let _ = instance.handle(base, Input::PriorityOffset(i32::MIN));
        assert_eq!(instance.effective_priority(), 1);

        let (mut owner, _) = started(config(255), base);
        let _ = owner.handle(base, Input::PriorityOffset(-50));
        assert_eq!(owner.effective_priority(), 255);
    }

    #[test]
    fn priority_offset_changes_the_advertised_priority_and_the_election() {
        let base = Instant::now();
        let (mut instance, _) = started(config(100), base);
        let _ = instance.handle(base, Input::PriorityOffset(60));
        // Now 160: a 150 master is lower, so (preempt) it is discarded and we take over.
        let _ = instance.handle(base + SECOND, advert(150));
        assert_eq!(instance.counters().adverts_discarded, 1);
        let deadline = instance.poll_timeout().expect("timer");
        let actions = instance.handle(deadline, Input::Timeout);
        assert_eq!(sent_priorities(&actions), vec![160]);
        let _ = instance.handle(deadline, Input::PriorityOffset(-20));
        let next = instance.poll_timeout().expect("timer");
        assert_eq!(
            sent_priorities(&instance.handle(next, Input::Timeout)),
            vec![80]
        );
    }

    #[test]
    fn rfc5798_6_1_accept_mode_is_surfaced_and_always_on_for_the_owner() {
        let base = Instant::now();
        for (priority, configured, expected) in
            [(100, false, false), (100, true, true), (255, false, true)]
        {
            let mut config = config(priority);
            config.accept_mode = configured;
            config.initial_state = InitialState::Master;
            let (instance, actions) = started(config, base);
            assert_eq!(actions[0], Action::AcquireVips { accept: expected });
            assert_eq!(instance.accept_mode(), expected);
        }
    }

    #[test]
    fn initial_state_master_hint_goes_master_at_once_then_yields() {
        let base = Instant::now();
        let mut config = config(100);
        config.initial_state = InitialState::Master;
        let (mut instance, actions) = started(config, base);
        assert_eq!(actions[0], Action::AcquireVips { accept: false });
        assert_eq!(sent_priorities(&actions), vec![100]);
        assert_eq!(actions.last(), Some(&Action::Announce));
        assert_eq!(
            changes(&actions),
            vec![(State::Initialize, State::Master, Reason::InitialStateHint)]
        );
        let _ = instance.handle(base + SECOND / 10, advert(101));
        assert_eq!(instance.state(), State::Backup);
    }

    #[test]
    fn fault_from_backup_stops_timers_and_clears_to_backup() {
        let base = Instant::now();
        let mut config = config(100);
        config.initial_state = InitialState::Master;
        let mut instance = instance(config);
        let _ = instance.handle(base, Input::Startup);
        let _ = instance.handle(base, advert(200));
        assert_eq!(instance.state(), State::Backup);
        let reason = FaultReason::Tracker {
            name: "chk_haproxy".into(),
        };
        let actions = instance.handle(
            base + SECOND,
            Input::Fault {
                reason: reason.clone(),
            },
        );
        // It had yielded to that master moments ago and still held the VIPs for it.
        assert_eq!(actions[0], Action::ReleaseVips);
        assert_eq!(
            changes(&actions),
            vec![(State::Backup, State::Fault, Reason::Fault(reason.clone()))]
        );
        assert_eq!(actions.len(), 2);
        assert_eq!(instance.poll_timeout(), None);
        assert_eq!(instance.fault(), Some(&reason));
        // In Fault adverts are ignored and further faults only update the reason.
        assert!(instance.handle(base + SECOND, advert(0)).is_empty());
        let link = FaultReason::LinkDown;
        assert!(
            instance
                .handle(
                    base + SECOND,
                    Input::Fault {
                        reason: link.clone()
                    }
                )
                .is_empty()
        );
        assert_eq!(instance.fault(), Some(&link));
        // Clearing re-runs §6.4.1 without the MASTER hint: Backup.
        let now = base + SECOND * 2;
        let actions = instance.handle(now, Input::FaultCleared);
        assert_eq!(
            changes(&actions),
            vec![(State::Fault, State::Backup, Reason::FaultCleared)]
        );
        assert_eq!(
            instance.poll_timeout(),
            Some(now + instance.master_down_interval())
        );
        assert_eq!(instance.fault(), None);
        // Clearing again is a no-op.
        assert!(instance.handle(now, Input::FaultCleared).is_empty());
    }

    #[test]
    fn fault_from_master_sends_priority_zero_and_releases() {
        let base = Instant::now();
        let (mut instance, _) = started(config(255), base);
        let actions = instance.handle(
            base + SECOND,
            Input::Fault {
                reason: FaultReason::LinkDown,
            },
        );
        assert_eq!(sent_priorities(&actions), vec![0]);
        assert_eq!(actions[1], Action::ReleaseVips);
        assert_eq!(instance.state(), State::Fault);
        // The owner comes back as master.
        let actions = instance.handle(base + SECOND * 2, Input::FaultCleared);
        assert_eq!(
            changes(&actions),
            vec![(State::Fault, State::Master, Reason::FaultCleared)]
        );
        assert_eq!(actions[0], Action::AcquireVips { accept: true });
    }

    /// A backup at priority 200 that has just become master at `base` by MasterDown.
    fn fresh_master(base: Instant) -> (Instance, Instant) {
        let (mut instance, _) = started(config(200), base);
        let deadline = instance.poll_timeout().expect("master down timer");
        let actions = instance.handle(deadline, Input::Timeout);
        assert_eq!(instance.state(), State::Master, "{actions:?}");
        (instance, deadline)
    }

    #[test]
    fn failure_vip_add_as_master_faults_releases_and_sends_priority_zero() {
        let base = Instant::now();
        let (mut instance, at) = fresh_master(base);
        let failed_at = at + Duration::from_millis(5);
        let actions = instance.handle(failed_at, Input::VipsAdded { ok: false });
        assert_eq!(sent_priorities(&actions), vec![0]);
        assert!(actions.contains(&Action::ReleaseVips), "{actions:?}");
        assert_eq!(
            changes(&actions),
            vec![(
                State::Master,
                State::Fault,
                Reason::Fault(FaultReason::VipAdd)
            )]
        );
        assert_eq!(instance.failure(), Some(&FaultReason::VipAdd));
        assert_eq!(instance.fault(), None);
        // Retry after one Master_Down_Interval, to Backup by the §6.4.1 rules.
        let retry = instance.poll_timeout().expect("retry timer");
        assert_eq!(retry, failed_at + instance.master_down_interval());
        assert!(
            instance
                .handle(retry - Duration::from_nanos(1), Input::Timeout)
                .is_empty()
        );
        let actions = instance.handle(retry, Input::Timeout);
        assert_eq!(
            changes(&actions),
            vec![(State::Fault, State::Backup, Reason::FaultCleared)]
        );
        assert_eq!(instance.failure(), None);
    }

    #[test]
    fn failure_reports_outside_master_are_ignored() {
        let base = Instant::now();
        let (mut instance, _) = started(config(100), base);
        assert!(
            instance
                .handle(base, Input::VipsAdded { ok: false })
                .is_empty()
        );
        for _ in 0..SEND_FAILURES_TO_FAULT {
            assert!(
                instance
                    .handle(base, Input::AdvertSent { ok: false })
                    .is_empty()
            );
        }
        assert_eq!(instance.state(), State::Backup);
        let (mut master, at) = fresh_master(base);
        // A successful add only lets the master announce.
        assert_eq!(
            master.handle(at, Input::VipsAdded { ok: true }),
            vec![Action::Announce]
        );
        assert_eq!(master.state(), State::Master);
    }

    #[test]
    fn failure_send_needs_consecutive_failures() {
        let base = Instant::now();
        let (mut instance, at) = fresh_master(base);
        // A success in between starts the count again: transient errors never fault.
        for round in 0..4 {
            for _ in 1..SEND_FAILURES_TO_FAULT {
                let actions = instance.handle(at, Input::AdvertSent { ok: false });
                assert!(actions.is_empty(), "round {round}: {actions:?}");
            }
            assert!(
                instance
                    .handle(at, Input::AdvertSent { ok: true })
                    .is_empty()
            );
        }
        assert_eq!(instance.state(), State::Master);
        for _ in 1..SEND_FAILURES_TO_FAULT {
            let _ = instance.handle(at, Input::AdvertSent { ok: false });
        }
        let actions = instance.handle(at, Input::AdvertSent { ok: false });
        assert_eq!(
            changes(&actions),
            vec![(
                State::Master,
                State::Fault,
                Reason::Fault(FaultReason::Send {
                    failures: SEND_FAILURES_TO_FAULT
                })
            )]
        );
        assert!(actions.contains(&Action::ReleaseVips));
    }

    #[test]
    fn failure_retry_doubles_until_a_whole_master_down_interval_as_master() {
        let base = Instant::now();
        let (mut instance, mut now) = fresh_master(base);
        let master_down_interval = instance.master_down_interval();
        let mut delays = Vec::new();
        for _ in 0..10 {
            let _ = instance.handle(now, Input::VipsAdded { ok: false });
            let retry = instance.poll_timeout().expect("retry timer");
            delays.push(retry - now);
            let _ = instance.handle(retry, Input::Timeout);
            // Nobody else: master again one Master_Down_Interval later.
            let deadline = instance.poll_timeout().expect("master down timer");
            let _ = instance.handle(deadline, Input::Timeout);
            assert_eq!(instance.state(), State::Master);
            now = deadline;
        }
        let expected: Vec<Duration> = (0..10)
            .map(|n| (master_down_interval * (1 << n)).min(MAX_FAILURE_RETRY))
            .collect();
        assert_eq!(delays, expected);
        // Master for a whole Master_Down_Interval: the next failure starts over.
        let mut advert_at = now;
        while advert_at < now + master_down_interval {
            advert_at = instance.poll_timeout().expect("advert timer");
            let _ = instance.handle(advert_at, Input::Timeout);
            let _ = instance.handle(advert_at, Input::AdvertSent { ok: true });
        }
        let _ = instance.handle(advert_at, Input::VipsAdded { ok: false });
        assert_eq!(
            instance.poll_timeout(),
            Some(advert_at + master_down_interval)
        );
    }

    #[test]
    fn failure_after_retry_does_not_preempt_a_working_lower_master() {
        let base = Instant::now();
        let (mut instance, at) = fresh_master(base);
        let _ = instance.handle(at, Input::VipsAdded { ok: false });
        let retry = instance.poll_timeout().expect("retry timer");
        let _ = instance.handle(retry, Input::Timeout);
        assert_eq!(instance.state(), State::Backup);
        // The peer (priority 100) took over and advertises: we keep following it.
        let mut now = retry;
        for _ in 0..20 {
            now += SECOND;
            assert!(instance.handle(now, advert(100)).is_empty());
            assert_eq!(
                instance.poll_timeout(),
                Some(now + instance.master_down_interval())
            );
        }
        assert_eq!(instance.state(), State::Backup);
        // It stops: we take over after Master_Down_Interval as any backup.
        let deadline = instance.poll_timeout().expect("master down timer");
        let actions = instance.handle(deadline, Input::Timeout);
        assert_became_master(&actions, 200, false, Reason::MasterDown);
    }

    #[test]
    fn failure_fault_and_external_fault_end_separately() {
        let base = Instant::now();
        let (mut instance, at) = fresh_master(base);
        let _ = instance.handle(at, Input::VipsAdded { ok: false });
        let retry = instance.poll_timeout().expect("retry timer");
        // The driver's aggregation has no fault: FaultCleared must not end this one.
        assert!(instance.handle(at, Input::FaultCleared).is_empty());
        assert_eq!(instance.state(), State::Fault);
        // A link goes down meanwhile; the retry then leaves the instance in Fault...
        let link_down = Input::Fault {
            reason: FaultReason::LinkDown,
        };
        assert!(instance.handle(at, link_down).is_empty());
        assert!(instance.handle(retry, Input::Timeout).is_empty());
        assert_eq!(instance.state(), State::Fault);
        assert_eq!(instance.poll_timeout(), None);
        // ...until the link is back.
        let actions = instance.handle(retry + SECOND, Input::FaultCleared);
        assert_eq!(
            changes(&actions),
            vec![(State::Fault, State::Backup, Reason::FaultCleared)]
        );
    }

    #[test]
    fn fault_before_startup_starts_in_fault_and_survives_shutdown() {
        let base = Instant::now();
        let mut instance = instance(config(100));
        assert!(
            instance
                .handle(
                    base,
                    Input::Fault {
                        reason: FaultReason::LinkDown
                    }
                )
                .is_empty()
        );
        let actions = instance.handle(base, Input::Startup);
        assert_eq!(
            changes(&actions),
            vec![(
                State::Initialize,
                State::Fault,
                Reason::Fault(FaultReason::LinkDown)
            )]
        );
        let _ = instance.handle(base, Input::Shutdown);
        assert_eq!(instance.state(), State::Initialize);
        let _ = instance.handle(base, Input::Startup);
        assert_eq!(instance.state(), State::Fault);
        // A fault cleared while stopped is remembered too.
        let _ = instance.handle(base, Input::Shutdown);
        assert!(instance.handle(base, Input::FaultCleared).is_empty());
        let _ = instance.handle(base, Input::Startup);
        assert_eq!(instance.state(), State::Backup);
    }

    #[test]
    fn rfc3768_v2_uses_whole_second_timers_and_never_learns_the_interval() {
        let base = Instant::now();
        let mut config = config(100);
        config.version = Version::V2;
        config.advert_interval = Centiseconds(300);
        config.auth = Auth::SimpleText(*b"secret\0\0");
        let (mut instance, _) = started(config, base);
        // 3 × 3 s + (256 − 100) / 256 s.
        let mdi = Duration::from_secs(9) + Duration::from_nanos(609_375_000);
        assert_eq!(instance.master_down_interval(), mdi);
        let now = base + SECOND;
        let _ = instance.handle(now, advert_from(MASTER_ADDRESS, 150, Centiseconds(100)));
        assert_eq!(instance.master_adver_interval(), Centiseconds(300));
        assert_eq!(instance.poll_timeout(), Some(now + mdi));
        let _ = instance.handle(now, advert(0));
        assert_eq!(
            instance.poll_timeout(),
            Some(now + Duration::from_nanos(609_375_000))
        );
        let actions = instance.handle(now + SECOND, Input::Timeout);
        let Action::SendAdvert(sent) = &actions[1] else {
            panic!("advert expected: {actions:?}");
        };
        assert_eq!(sent.version, Version::V2);
        assert_eq!(sent.auth, Auth::SimpleText(*b"secret\0\0"));
        assert_eq!(sent.max_advert_interval, Centiseconds(300));
    }

    #[test]
    fn counters_and_last_transition_track_history() {
        let base = Instant::now();
        let mut instance = instance(config(100));
        assert_eq!(instance.last_transition(), None);
        let _ = instance.handle(base, Input::Startup);
        let deadline = instance.poll_timeout().expect("timer");
        let _ = instance.handle(deadline, Input::Timeout);
        let _ = instance.handle(deadline, advert(200));
        let counters = *instance.counters();
        assert_eq!(counters.transitions, 3);
        assert_eq!(counters.became_master, 1);
        // The takeover's advert and the one sent while yielding.
        assert_eq!(counters.adverts_sent, 2);
        assert_eq!(counters.adverts_received, 1);
        let last = instance.last_transition().expect("transition");
        assert_eq!(last.reason, Reason::HigherPriorityAdvert);
        assert_eq!(last.at, deadline);
    }

    #[test]
    fn display_names_states_and_reasons() {
        let states: Vec<String> = [
            State::Initialize,
            State::Backup,
            State::Master,
            State::Fault,
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(states, ["INIT", "BACKUP", "MASTER", "FAULT"]);
        let reasons = [
            Reason::Startup,
            Reason::Owner,
            Reason::InitialStateHint,
            Reason::MasterDown,
            Reason::PriorityZeroReceived,
            Reason::HigherPriorityAdvert,
            Reason::Shutdown,
            Reason::Fault(FaultReason::LinkDown),
            Reason::Fault(FaultReason::Tracker { name: "chk".into() }),
            Reason::FaultCleared,
        ];
        let texts: std::collections::HashSet<String> =
            reasons.iter().map(ToString::to_string).collect();
        assert_eq!(texts.len(), reasons.len(), "each reason reads differently");
        assert!(texts.contains("fault: tracker chk"));
    }
}
