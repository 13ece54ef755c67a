//! Unit tests of the RFC 5798 §6 state machine, one (or more) per rule, on a fake clock.

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
        // A peer configured alike is checked against the same list it sends
        // (RFC 5798 §7.1), so a backup with 100 IPv6 VIPs does not see a mismatch.
        assert_eq!(instance.listed_addresses(), &advert.addresses[..]);
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
    // Its next advert is no sign; its answering for the VIPs is.
    let next = now + Duration::from_millis(500);
    assert!(
        instance
            .handle(next, advert_from(MASTER_ADDRESS, 200, Centiseconds(50)))
            .is_empty()
    );
    let holds = Input::SuccessorHolds {
        master: ip(MASTER_ADDRESS),
    };
    assert!(instance.handle(next, holds).is_empty());
    let linger = next + SUCCESSOR_LINGER;
    assert_eq!(instance.poll_timeout(), Some(linger));
    assert_eq!(
        instance.handle(linger, Input::Timeout),
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
fn rfc9568_6_4_3_master_answers_lower_priority_with_an_advert_at_once() {
    let base = Instant::now();
    let mut config = config(150);
    config.initial_state = InitialState::Master;
    let (mut instance, _) = started(config, base);
    // "Discard the ADVERTISEMENT; Send an ADVERTISEMENT immediately": the election
    // ignores it, and our advert goes out now, not at the next Adver_Timer.
    let first = base + Duration::from_millis(400);
    let actions = instance.handle(first, advert(149));
    assert_eq!(sent_priorities(&actions), vec![150]);
    assert_eq!(instance.state(), State::Master);
    // The RFC does not reset the Adver_Timer: the regular advert stays due at 1 s.
    assert_eq!(instance.poll_timeout(), Some(base + SECOND));
    // Not RFC: a second lower advert within half an interval is not echoed...
    let soon = first + Duration::from_millis(10);
    assert!(instance.handle(soon, advert(149)).is_empty());
    // ...but one half an interval later is, without a second announce.
    let later = first + SECOND / 2;
    let actions = instance.handle(later, advert(149));
    assert_eq!(sent_priorities(&actions), vec![150]);
    assert!(!actions.contains(&Action::Announce));
    assert_eq!(instance.counters().adverts_discarded, 3);
    assert_eq!(instance.counters().assert_adverts, 2);
    // The same address at equal priority is no better than us either.
    let tie_lower = advert_from("192.0.2.9", 150, Centiseconds(100));
    let actions = instance.handle(later + SECOND, tie_lower);
    assert_eq!(sent_priorities(&actions), vec![150]);
    assert_eq!(instance.state(), State::Master);
}

/// Erratum 8298 (folded into RFC 9568 §7.1): the address owner no longer discards
/// adverts, so two routers both configured with priority 255 hear each other and the
/// §6.4.3 tie-break by primary address leaves one Active.
#[test]
fn rfc9568_erratum_8298_duplicate_owners_tie_break_by_primary_address() {
    let base = Instant::now();
    let mut low_config = config(255);
    low_config.primary_address = ip("192.0.2.10");
    let mut high_config = config(255);
    high_config.primary_address = ip("192.0.2.30");
    let (mut low, _) = started(low_config, base);
    let (mut high, _) = started(high_config, base);
    // §6.4.1: both owners start as Active.
    assert_eq!((low.state(), high.state()), (State::Master, State::Master));

    let from_low = Input::Advert {
        src: ip("192.0.2.10"),
        advert: low.advert_repr(255),
    };
    let from_high = Input::Advert {
        src: ip("192.0.2.30"),
        advert: high.advert_repr(255),
    };
    let heard = base + Duration::from_millis(1);
    // The higher address keeps Active and asserts it at once.
    let actions = high.handle(heard, from_low.clone());
    assert_eq!(sent_priorities(&actions), vec![255]);
    assert_eq!(high.state(), State::Master);
    // The lower address yields to it.
    let actions = low.handle(heard, from_high.clone());
    assert_eq!(
        changes(&actions),
        vec![(State::Master, State::Backup, Reason::HigherPriorityAdvert)]
    );
    assert_eq!(low.master_address(), Some(ip("192.0.2.30")));
    // As a Backup it follows the other owner (priority equal to its own: §6.4.2 resets
    // the Master_Down_Timer) and takes over when that one falls silent.
    let next = heard + SECOND;
    assert!(changes(&low.handle(next, from_high)).is_empty());
    let due = next + low.master_down_interval();
    // Before that only the hand-over of its addresses (make-before-break) falls due.
    while let Some(at) = low.poll_timeout().filter(|at| *at < due) {
        assert!(changes(&low.handle(at, Input::Timeout)).is_empty());
    }
    assert_eq!(low.poll_timeout(), Some(due));
    let actions = low.handle(due, Input::Timeout);
    assert_eq!(changes(&actions)[0].1, State::Master);
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
    assert!(matches!(&actions[..], [Action::SendAdvert(a), Action::Announce] if a.priority == 150));
    assert_eq!(instance.counters().reassertions, 1);
    // More adverts of the same episode: no announce storm (adverts per RFC 9568 §6.4.3,
    // at most one per half interval).
    for ms in [10, 20, 3000] {
        let at = base + Duration::from_millis(ms);
        let actions = instance.handle(at, advert(149));
        assert!(
            !actions.contains(&Action::Announce),
            "at {ms} ms: {actions:?}"
        );
        assert_eq!(sent_priorities(&actions).len(), usize::from(ms == 3000));
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

/// A master (priority 200, by the initial state hint) that has just been told to stop.
fn stopping_master(base: Instant) -> Instance {
    let mut config = config(200);
    config.initial_state = InitialState::Master;
    let (mut instance, _) = started(config, base);
    let _ = instance.handle(base, Input::Shutdown);
    instance
}

#[test]
fn beyond_rfc_stopping_master_releases_once_its_successor_answers_for_the_vips() {
    let base = Instant::now();
    let mut instance = stopping_master(base);
    // The successor's first advert: it may not have added the VIPs yet, so we go on
    // answering for them and ask the driver to find out when it answers.
    let first = base + Duration::from_millis(7);
    assert_eq!(
        instance.handle(first, advert(100)),
        vec![Action::AnnounceFor {
            master: ip(MASTER_ADDRESS)
        }]
    );
    // From its first advert, it has a Master_Down_Interval to take them up.
    assert_eq!(
        instance.release_deadline(),
        Some(first + instance.master_down_interval())
    );
    // More adverts are no sign (its add may take longer than an interval).
    assert!(instance.handle(first + SECOND, advert(100)).is_empty());
    // Another router answering is not the successor.
    let stranger = Input::SuccessorHolds {
        master: ip("192.0.2.99"),
    };
    assert!(instance.handle(first + SECOND, stranger).is_empty());
    let holds = Input::SuccessorHolds {
        master: ip(MASTER_ADDRESS),
    };
    // It answers: we still answer what neighbours sent before they heard, for
    // SUCCESSOR_LINGER, then let go.
    let answers = first + SECOND;
    assert!(instance.handle(answers, holds.clone()).is_empty());
    let linger = answers + SUCCESSOR_LINGER;
    assert_eq!(instance.release_deadline(), Some(linger));
    assert_eq!(instance.poll_timeout(), Some(linger));
    // Hearing it again does not move the deadline.
    assert!(
        instance
            .handle(answers + SUCCESSOR_LINGER / 2, holds.clone())
            .is_empty()
    );
    assert_eq!(instance.release_deadline(), Some(linger));
    assert!(
        instance
            .handle(linger - Duration::from_micros(1), Input::Timeout)
            .is_empty(),
        "not before the linger is over"
    );
    assert_eq!(
        instance.handle(linger, Input::Timeout),
        vec![Action::ReleaseVips]
    );
    assert_eq!(instance.release_deadline(), None);
    assert_eq!(instance.poll_timeout(), None);
    assert!(instance.handle(linger, holds).is_empty());
}

/// The linger never outlasts the guard: a successor that answers just before the
/// Master_Down_Interval ends does not keep the old master's addresses beyond it.
#[test]
fn beyond_rfc_the_linger_after_the_successor_answers_stays_within_the_guard() {
    let base = Instant::now();
    let mut instance = stopping_master(base);
    let first = base + Duration::from_millis(7);
    let _ = instance.handle(first, advert(100));
    let guard = instance.release_deadline().expect("guard");
    let late = guard - SUCCESSOR_LINGER / 4;
    let holds = Input::SuccessorHolds {
        master: ip(MASTER_ADDRESS),
    };
    assert!(instance.handle(late, holds).is_empty());
    assert_eq!(instance.release_deadline(), Some(guard));
    assert_eq!(
        instance.handle(guard, Input::Timeout),
        vec![Action::ReleaseVips]
    );
}

#[test]
fn beyond_rfc_a_master_announces_only_once_its_vips_are_added() {
    let base = Instant::now();
    let (mut instance, _) = started(config(100), base);
    let deadline = instance.poll_timeout().expect("Master_Down_Timer");
    let actions = instance.handle(deadline, Input::Timeout);
    assert_became_master(&actions, 100, false, Reason::MasterDown);
    assert!(instance.awaiting_vips());
    // A lower-priority router claims master before our add completed: we advertise
    // at once but still announce only with the VIPs in place.
    let actions = instance.handle(deadline, advert(99));
    assert_eq!(sent_priorities(&actions), vec![100]);
    assert!(!actions.contains(&Action::Announce));
    assert_eq!(
        instance.handle(deadline, Input::VipsAdded { ok: true }),
        vec![Action::Announce]
    );
    assert!(!instance.awaiting_vips());
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

/// Module doc, "BFD": a Backup whose master's BFD session goes down takes over after
/// the short BFD skew instead of Master_Down_Interval (as if §6.4.2's timer fired).
#[test]
fn bfd_peer_down_of_the_master_takes_over_after_the_short_skew() {
    let base = Instant::now();
    let (mut backup, _) = started(config(100), base);
    let heard = base + SECOND;
    let _ = backup.handle(heard, advert(200));
    let down = heard + Duration::from_millis(30);
    assert!(
        backup
            .handle(
                down,
                Input::PeerDown {
                    peer: ip(MASTER_ADDRESS)
                }
            )
            .is_empty()
    );
    let skew = bfd_skew_time(100);
    assert_eq!(skew, Duration::from_nanos(1_218_750));
    assert_eq!(backup.poll_timeout(), Some(down + skew));
    assert!(backup.handle(down + skew - NANO, Input::Timeout).is_empty());
    let actions = backup.handle(down + skew, Input::Timeout);
    assert_became_master(&actions, 100, false, Reason::PeerDown);
}

/// A session to another router than the master, or reported to a Master, changes
/// nothing; a later advert from the master (a flap) restores Master_Down_Interval.
#[test]
fn bfd_peer_down_of_another_router_or_as_master_is_ignored() {
    let base = Instant::now();
    let (mut backup, _) = started(config(100), base);
    let _ = backup.handle(base, advert(200));
    let timer = backup.poll_timeout();
    let _ = backup.handle(
        base,
        Input::PeerDown {
            peer: ip("192.0.2.99"),
        },
    );
    assert_eq!(backup.poll_timeout(), timer);
    // The session flaps but the master still advertises: its advert restores the timer.
    let _ = backup.handle(
        base,
        Input::PeerDown {
            peer: ip(MASTER_ADDRESS),
        },
    );
    let later = base + Duration::from_micros(500);
    let _ = backup.handle(later, advert(200));
    assert_eq!(
        backup.poll_timeout(),
        Some(later + backup.master_down_interval())
    );

    let mut owner = config(255);
    owner.primary_address = ip("192.0.2.30");
    let (mut master, _) = started(owner, base);
    let timer = master.poll_timeout();
    assert!(
        master
            .handle(
                base,
                Input::PeerDown {
                    peer: ip(MASTER_ADDRESS)
                }
            )
            .is_empty()
    );
    assert_eq!(master.poll_timeout(), timer);
    assert_eq!(master.state(), State::Master);
}

/// Two backups lose the master at once: the higher priority takes over first, and the
/// lower one hears its advert before its own skew ends and stays Backup.
#[test]
fn bfd_peer_down_two_backups_never_both_take_over() {
    let base = Instant::now();
    let high_config = {
        let mut c = config(200);
        c.primary_address = ip("192.0.2.11");
        c
    };
    let (mut high, _) = started(high_config, base);
    let (mut low, _) = started(config(100), base);
    let _ = high.handle(base, advert(250));
    let _ = low.handle(base, advert(250));
    let down = base + Duration::from_millis(10);
    let peer = Input::PeerDown {
        peer: ip(MASTER_ADDRESS),
    };
    let _ = high.handle(down, peer.clone());
    let _ = low.handle(down, peer);
    let high_due = high.poll_timeout().expect("armed");
    let low_due = low.poll_timeout().expect("armed");
    assert!(high_due < low_due);
    let actions = high.handle(high_due, Input::Timeout);
    assert_eq!(high.state(), State::Master);
    // The new master's advert reaches the other backup 200 µs later, before its skew.
    let arrival = high_due + Duration::from_micros(200);
    assert!(arrival < low_due);
    let new_master_advert = sent_priorities(&actions);
    assert_eq!(new_master_advert, vec![200]);
    let _ = low.handle(arrival, advert_from("192.0.2.11", 200, Centiseconds(100)));
    assert!(low.handle(low_due, Input::Timeout).is_empty());
    assert_eq!(low.state(), State::Backup);
    assert_eq!(low.master_address(), Some(ip("192.0.2.11")));
}

/// RFC 9568 §5.2.9: an IPv6 advert lists the virtual router's link-local address first,
/// wherever it was configured (even past the listed limit); other orders are kept.
#[test]
fn ipv6_adverts_list_the_link_local_vip_first() {
    let vips = vec![
        ip("2001:db8::1"),
        ip("2001:db8::2"),
        ip("fe80::1"),
        ip("fe80::2"),
    ];
    let core = instance(InstanceConfig::new(VRID, ip("fe80::10"), vips));
    assert_eq!(
        core.listed_addresses(),
        [
            ip("fe80::1"),
            ip("2001:db8::1"),
            ip("2001:db8::2"),
            ip("fe80::2")
        ]
    );
    let mut many: Vec<IpAddr> = (1..=100u16)
        .map(|i| IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i)))
        .collect();
    many.push(ip("fe80::1"));
    let core = instance(InstanceConfig::new(VRID, ip("fe80::10"), many));
    assert_eq!(core.listed_addresses().len(), MAX_LISTED_IPV6);
    assert_eq!(core.listed_addresses()[0], ip("fe80::1"));
    assert_eq!(core.listed_addresses()[1], ip("2001:db8::1"));
    let global_only = vec![ip("2001:db8::2"), ip("2001:db8::1")];
    let core = instance(InstanceConfig::new(
        VRID,
        ip("fe80::10"),
        global_only.clone(),
    ));
    assert_eq!(core.listed_addresses(), global_only.as_slice());
}
