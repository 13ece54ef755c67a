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
    /// Every fault source is fine again.
    FaultCleared,
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
    last_transition: Option<Transition>,
    counters: Counters,
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
            last_transition: None,
            counters: Counters::default(),
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
        self.timers.next_timeout()
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

    /// The fault currently reported, if any.
    pub fn fault(&self) -> Option<&FaultReason> {
        self.fault.as_ref()
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
            // {Initialize} state". Releasing the addresses goes with leaving Master.
            State::Master => {
                self.send_advert(PRIORITY_STOP, actions);
                actions.push(Action::ReleaseVips);
            }
        }
        self.timers.stop_all();
        self.master_address = None;
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
        if self.config.preempt && lower && !self.preempt_delay_holds(now) {
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
                actions.push(Action::Announce);
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
        self.learn_master_adver_interval(advert);
        self.become_backup(now, Reason::HigherPriorityAdvert, actions);
        self.master_address = Some(src);
    }

    fn on_timeout(&mut self, now: Instant, actions: &mut Vec<Action>) {
        while let Some(timer) = self.timers.pop_expired(now) {
            match (timer, self.state) {
                (Timer::Advert, State::Master) => {
                    // RFC 5798 §6.4.3: "If the Adver_Timer fires, then: Send an
                    // ADVERTISEMENT; Reset the Adver_Timer to Advertisement_Interval".
                    self.send_advert(self.effective_priority, actions);
                    self.timers.set(
                        Timer::Advert,
                        now + self.config.advert_interval.as_duration(),
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
        match self.state {
            // Remembered; Startup will go to Fault. Already in Fault: reason updated.
            State::Initialize | State::Fault => return,
            State::Backup => {}
            State::Master => {
                // Like a shutdown (RFC 5798 §6.4.3): priority 0 lets the backups take over
                // after Skew_Time instead of Master_Down_Interval if the link still works.
                self.send_advert(PRIORITY_STOP, actions);
                actions.push(Action::ReleaseVips);
            }
        }
        self.timers.stop_all();
        self.master_address = None;
        self.transition(now, State::Fault, Reason::Fault(reason), actions);
    }

    fn on_fault_cleared(&mut self, now: Instant, actions: &mut Vec<Action>) {
        self.fault = None;
        if self.state == State::Fault {
            // Leave Fault as if starting up (RFC 5798 §6.4.1), without the state hint: a
            // link that flaps must not make two masters.
            self.start(now, true, actions);
        }
    }

    fn become_master(&mut self, now: Instant, reason: Reason, actions: &mut Vec<Action>) {
        actions.push(Action::AcquireVips {
            accept: self.accept_mode(),
        });
        self.send_advert(self.effective_priority, actions);
        actions.push(Action::Announce);
        self.master_adver_interval = self.config.advert_interval;
        self.master_address = Some(self.config.primary_address);
        self.master_stopping = false;
        self.preempt_hold_until = None;
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
            actions.push(Action::ReleaseVips);
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
            // A peer configured alike is checked against the same list it sends
            // (RFC 5798 §7.1), so a backup with 100 IPv6 VIPs does not see a mismatch.
            assert_eq!(instance.listed_addresses(), &advert.addresses[..]);
        }
    }

    /// An instance after `Startup` at `base`, and the startup actions.
    fn started(config: InstanceConfig, base: Instant) -> (Instance, Vec<Action>) {
        let mut instance = instance(config);
        let actions = instance.handle(base, Input::Startup);
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
    fn assert_became_master(actions: &[Action], priority: u8, accept: bool, reason: Reason) {
        assert_eq!(actions.len(), 4, "{actions:?}");
        assert_eq!(actions[0], Action::AcquireVips { accept });
        assert_eq!(sent_priorities(&actions[1..2]), vec![priority]);
        assert_eq!(actions[2], Action::Announce);
        assert!(
            matches!(&actions[3], Action::StateChanged { to: State::Master, reason: why, .. } if *why == reason),
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
        assert_eq!(actions[2], Action::Announce);
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
        assert_eq!(
            actions,
            vec![
                Action::ReleaseVips,
                Action::StateChanged {
                    from: State::Master,
                    to: State::Backup,
                    reason: Reason::HigherPriorityAdvert,
                },
            ]
        );
        // Learned the new master's interval and armed Master_Down_Timer with it.
        assert_eq!(instance.master_adver_interval(), Centiseconds(50));
        assert_eq!(
            instance.poll_timeout(),
            Some(now + timer::master_down_interval(Version::V3, 150, Centiseconds(50)))
        );
        assert_eq!(instance.master_address(), Some(ip(MASTER_ADDRESS)));
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
        // Follow a member back to Backup: release and wait like a Backup.
        let later = base + SECOND;
        let actions = instance.handle(later, Input::Follow(Follow::Backup));
        assert!(actions.contains(&Action::ReleaseVips));
        assert_eq!(
            changes(&actions),
            vec![(State::Master, State::Backup, Reason::SyncGroup)]
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
        assert_eq!(actions[1], Action::ReleaseVips);
        assert_eq!(
            changes(&actions),
            vec![(State::Master, State::Initialize, Reason::Shutdown)]
        );
        assert_eq!(instance.poll_timeout(), None);
        assert_eq!(instance.counters().priority_zero_sent, 1);
        // Stopped: adverts and repeated shutdowns do nothing.
        assert!(instance.handle(now, advert(200)).is_empty());
        assert!(instance.handle(now, Input::Shutdown).is_empty());
        assert_eq!(instance.state(), State::Initialize);
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
        assert_eq!(actions[2], Action::Announce);
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
        assert_eq!(
            changes(&actions),
            vec![(State::Backup, State::Fault, Reason::Fault(reason.clone()))]
        );
        assert_eq!(actions.len(), 1);
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
        assert_eq!(counters.adverts_sent, 1);
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
