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
                if interval.0 % 100 != 0 {
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
            addresses: self.config.virtual_addresses.clone(),
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
