//! One test per rule of [`super`], on a fake clock.

use std::time::{Duration, Instant, SystemTime};

use super::*;
use crate::config::lb::{HashFlags, LbAlgo, LbKind, LbProtocol, MiscCheck};

const DELAY_LOOP: Duration = Duration::from_secs(6);
const RETRY_DELAY: Duration = Duration::from_secs(1);

fn command(word: &str) -> Option<Command> {
    Some(Command {
        argv: vec![format!("/bin/{word}")],
    })
}

fn checker(retry: u32) -> Checker {
    Checker {
        kind: CheckKind::Tcp,
        connect_ip: None,
        connect_port: None,
        bind_to: None,
        connect_timeout: Duration::from_secs(3),
        retry,
        delay_before_retry: RETRY_DELAY,
        delay_loop: None,
        warmup: None,
    }
}

fn real(last_octet: u8, weight: u32) -> RealServer {
    RealServer {
        address: SocketAddr::from(([192, 0, 2, last_octet], 80)),
        weight,
        inhibit_on_failure: false,
        notify_up: command(&format!("up{last_octet}")),
        notify_down: command(&format!("down{last_octet}")),
        checkers: vec![checker(2)],
    }
}

fn service(reals: Vec<RealServer>) -> VirtualServer {
    VirtualServer {
        name: "192.0.2.100:80/tcp".into(),
        addresses: vec![SocketAddr::from(([192, 0, 2, 100], 80))],
        protocol: LbProtocol::Tcp,
        algo: LbAlgo::Rr,
        hash: HashFlags::default(),
        kind: LbKind::Dr,
        delay_loop: DELAY_LOOP,
        persistence_timeout: None,
        persistence_prefix: None,
        sorry_server: None,
        sorry_server_inhibit: false,
        alpha: false,
        omega: false,
        quorum: 1,
        hysteresis: 0,
        quorum_up: command("qup"),
        quorum_down: command("qdown"),
        virtualhost: None,
        interface: None,
        announce: None,
        real_servers: reals,
    }
}

fn no_warmup(_: Duration) -> Duration {
    panic!("no checker has a warmup")
}

fn result(ok: bool) -> CheckResult {
    CheckResult {
        ok,
        reason: if ok { "ok".into() } else { "refused".into() },
        weight: None,
        at: SystemTime::UNIX_EPOCH,
    }
}

/// Runs every due check at `now` with `outcome(service, real)`; returns the actions.
fn run(
    health: &mut Health,
    now: Instant,
    outcome: &dyn Fn(usize, usize) -> CheckResult,
) -> Vec<LbAction> {
    let due = health.poll_due(now);
    let mut actions = Vec::new();
    for check in due {
        actions.extend(health.handle_result(now, check.id, outcome(check.service, check.real)));
    }
    actions
}

fn states(health: &Health) -> Vec<RealServerState> {
    health.snapshot().services[0]
        .real_servers
        .iter()
        .map(|r| r.state)
        .collect()
}

fn commands(actions: &[LbAction]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            LbAction::RealServerChanged { command, .. }
            | LbAction::QuorumChanged { command, .. } => {
                command.as_ref().map(|c| c.argv[0].clone())
            }
        })
        .collect()
}

#[test]
fn checks_start_at_once_and_repeat_every_delay_loop() {
    let t0 = Instant::now();
    let mut health = Health::new(vec![service(vec![real(11, 1)])], t0, &mut no_warmup);
    assert_eq!(health.poll_timeout(), Some(t0));
    let due = health.poll_due(t0);
    assert_eq!(due.len(), 1);
    // In flight: no deadline until the result.
    assert_eq!(health.poll_timeout(), None);
    let t1 = t0 + Duration::from_millis(30);
    let actions = health.handle_result(t1, due[0].id, result(true));
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(health.poll_timeout(), Some(t1 + DELAY_LOOP));
    assert!(
        health
            .poll_due(t1 + DELAY_LOOP - Duration::from_millis(1))
            .is_empty()
    );
}

#[test]
fn a_server_fails_after_retry_plus_one_failures_in_a_row() {
    let t0 = Instant::now();
    let mut health = Health::new(
        vec![service(vec![real(11, 1), real(12, 1)])],
        t0,
        &mut no_warmup,
    );
    let fail_11 = |_: usize, r: usize| result(r != 0);
    let mut now = t0;
    // retry 2: the first two failures are retried after delay_before_retry.
    for _ in 0..2 {
        assert!(run(&mut health, now, &fail_11).is_empty());
        assert_eq!(states(&health)[0], RealServerState::Alive);
        assert_eq!(
            health.snapshot().services[0].real_servers[0]
                .last_check
                .as_ref()
                .map(|c| c.ok),
            Some(false)
        );
        now += RETRY_DELAY;
    }
    let actions = run(&mut health, now, &fail_11);
    assert_eq!(
        states(&health),
        [RealServerState::Failed, RealServerState::Alive]
    );
    let [
        LbAction::RealServerChanged {
            state,
            reason,
            command,
            ..
        },
    ] = actions.as_slice()
    else {
        panic!("one transition: {actions:?}");
    };
    assert_eq!(*state, RealServerState::Failed);
    assert_eq!(reason, "3 failed attempts in a row, last: refused");
    assert_eq!(command, &command_of("down11"));
    let pool = &health.pools()[0];
    assert_eq!(
        pool.members,
        [
            PoolMember {
                in_pool: false,
                weight: 0
            },
            PoolMember {
                in_pool: true,
                weight: 1
            }
        ]
    );
    // A failed checker is not retried: the next attempt is a delay_loop later.
    let next: Vec<Instant> = health.checks().filter_map(|(_, c)| c.deadline).collect();
    assert!(next.contains(&(now + DELAY_LOOP)), "{next:?}");
}

fn command_of(word: &str) -> Option<Command> {
    command(word)
}

#[test]
fn a_success_brings_a_failed_server_back_at_once() {
    let t0 = Instant::now();
    let mut reals = vec![real(11, 1)];
    reals[0].checkers[0].retry = 0;
    let mut health = Health::new(vec![service(reals)], t0, &mut no_warmup);
    let actions = run(&mut health, t0, &|_, _| result(false));
    // retry 0 and the only server: down and the quorum with it.
    assert_eq!(commands(&actions), ["/bin/down11", "/bin/qdown"]);
    let actions = run(&mut health, t0 + DELAY_LOOP, &|_, _| result(true));
    assert_eq!(commands(&actions), ["/bin/up11", "/bin/qup"]);
    assert_eq!(states(&health), [RealServerState::Alive]);
}

#[test]
fn a_success_between_failures_resets_the_count() {
    let t0 = Instant::now();
    let mut health = Health::new(vec![service(vec![real(11, 1)])], t0, &mut no_warmup);
    let mut now = t0;
    for ok in [false, false, true, false, false] {
        assert!(run(&mut health, now, &|_, _| result(ok)).is_empty());
        now = health.poll_timeout().unwrap();
    }
    assert_eq!(states(&health), [RealServerState::Alive]);
    assert_eq!(
        commands(&run(&mut health, now, &|_, _| result(false))),
        ["/bin/down11", "/bin/qdown"]
    );
}

#[test]
fn alpha_starts_failed_and_joins_after_the_first_success() {
    let t0 = Instant::now();
    let mut vs = service(vec![real(11, 1)]);
    vs.alpha = true;
    vs.sorry_server = Some(SocketAddr::from(([192, 0, 2, 50], 80)));
    let mut health = Health::new(vec![vs], t0, &mut no_warmup);
    assert_eq!(states(&health), [RealServerState::Failed]);
    let snapshot = health.snapshot();
    assert!(!snapshot.services[0].quorum_up);
    assert!(snapshot.services[0].pool.use_sorry);
    // A failure of a server that never passed changes nothing and is not retried.
    assert!(run(&mut health, t0, &|_, _| result(false)).is_empty());
    assert_eq!(health.poll_timeout(), Some(t0 + DELAY_LOOP));
    let actions = run(&mut health, t0 + DELAY_LOOP, &|_, _| result(true));
    assert_eq!(commands(&actions), ["/bin/up11", "/bin/qup"]);
    assert!(!health.pools()[0].use_sorry);
}

#[test]
fn warmup_offsets_the_first_check_by_the_callers_random_value() {
    let t0 = Instant::now();
    let mut reals = vec![real(11, 1)];
    reals[0].checkers[0].warmup = Some(Duration::from_secs(10));
    let mut asked = Vec::new();
    let mut random = |max: Duration| {
        asked.push(max);
        max / 4
    };
    let health = Health::new(vec![service(reals)], t0, &mut random);
    assert_eq!(asked, [Duration::from_secs(10)]);
    assert_eq!(
        health.poll_timeout(),
        Some(t0 + Duration::from_millis(2500))
    );
}

#[test]
fn a_checkers_own_delay_loop_wins() {
    let t0 = Instant::now();
    let mut reals = vec![real(11, 1)];
    reals[0].checkers[0].delay_loop = Some(Duration::from_secs(2));
    let mut health = Health::new(vec![service(reals)], t0, &mut no_warmup);
    let _ = run(&mut health, t0, &|_, _| result(true));
    assert_eq!(health.poll_timeout(), Some(t0 + Duration::from_secs(2)));
}

#[test]
fn inhibit_on_failure_keeps_the_server_at_weight_zero() {
    let t0 = Instant::now();
    let mut reals = vec![real(11, 3), real(12, 1)];
    reals[0].inhibit_on_failure = true;
    reals[0].checkers[0].retry = 0;
    let mut health = Health::new(vec![service(reals)], t0, &mut no_warmup);
    let actions = run(&mut health, t0, &|_, r| result(r != 0));
    assert_eq!(commands(&actions), ["/bin/down11"]);
    assert_eq!(
        states(&health),
        [RealServerState::Inhibited, RealServerState::Alive]
    );
    assert_eq!(
        health.pools()[0].members[0],
        PoolMember {
            in_pool: true,
            weight: 0
        }
    );
}

#[test]
fn all_checkers_must_pass() {
    let t0 = Instant::now();
    let mut reals = vec![real(11, 1)];
    reals[0].checkers = vec![checker(0), checker(0)];
    let mut health = Health::new(vec![service(reals)], t0, &mut no_warmup);
    let due = health.poll_due(t0);
    assert_eq!(due.len(), 2);
    assert!(health.handle_result(t0, due[0].id, result(true)).is_empty());
    let actions = health.handle_result(t0, due[1].id, result(false));
    assert_eq!(commands(&actions), ["/bin/down11", "/bin/qdown"]);
}

#[test]
fn misc_dynamic_sets_the_weight_until_changed() {
    assert_eq!(misc_exit_status(Some(0), true), (true, None));
    assert_eq!(misc_exit_status(Some(1), true), (false, None));
    assert_eq!(misc_exit_status(Some(7), true), (true, Some(5)));
    assert_eq!(misc_exit_status(Some(7), false), (false, None));
    assert_eq!(misc_exit_status(None, true), (false, None));

    let t0 = Instant::now();
    let mut reals = vec![real(11, 1)];
    reals[0].checkers[0].kind = CheckKind::Misc(MiscCheck {
        command: Command {
            argv: vec!["/bin/true".into()],
        },
        timeout: Duration::from_secs(1),
        dynamic: true,
    });
    let mut health = Health::new(vec![service(reals)], t0, &mut no_warmup);
    let weighted = |weight| {
        move |_: usize, _: usize| {
            let (ok, weight) = misc_exit_status(Some(weight), true);
            CheckResult {
                ok,
                reason: String::new(),
                weight,
                at: SystemTime::UNIX_EPOCH,
            }
        }
    };
    let _ = run(&mut health, t0, &weighted(12));
    assert_eq!(health.pools()[0].members[0].weight, 10);
    let now = health.poll_timeout().unwrap();
    let _ = run(&mut health, now, &weighted(0));
    assert_eq!(
        health.pools()[0].members[0].weight,
        10,
        "status 0 keeps the weight"
    );
    // Weight 0 from the script: alive but drained, and below the quorum of 1.
    let now = health.poll_timeout().unwrap();
    let actions = run(&mut health, now, &weighted(2));
    assert_eq!(commands(&actions), ["/bin/qdown"]);
    assert_eq!(states(&health), [RealServerState::Alive]);
    assert_eq!(
        health.pools()[0].members[0],
        PoolMember {
            in_pool: true,
            weight: 0
        }
    );
}

#[test]
fn quorum_with_hysteresis_follows_keepalived() {
    let t0 = Instant::now();
    let mut reals: Vec<RealServer> = (11..=14).map(|o| real(o, 1)).collect();
    for r in &mut reals {
        r.checkers[0].retry = 0;
    }
    let mut vs = service(reals);
    vs.quorum = 3;
    vs.hysteresis = 1;
    let mut health = Health::new(vec![vs], t0, &mut no_warmup);
    assert!(health.snapshot().services[0].quorum_up);
    // Alive weight 4 → 2: still ≥ quorum - hysteresis = 2.
    let down = |n: usize| move |_: usize, r: usize| result(r >= n);
    assert!(
        commands(&run(&mut health, t0, &down(2)))
            .iter()
            .all(|c| c.starts_with("/bin/down"))
    );
    assert!(health.snapshot().services[0].quorum_up);
    // 1 < 2: lost.
    let now = health.poll_timeout().unwrap();
    let actions = run(&mut health, now, &down(3));
    assert_eq!(commands(&actions), ["/bin/down13", "/bin/qdown"]);
    // Back to 3: not yet quorum + hysteresis = 4.
    let now = health.poll_timeout().unwrap();
    let actions = run(&mut health, now, &down(1));
    assert_eq!(commands(&actions), ["/bin/up12", "/bin/up13"]);
    assert!(!health.snapshot().services[0].quorum_up);
    let now = health.poll_timeout().unwrap();
    let actions = run(&mut health, now, &down(0));
    assert_eq!(commands(&actions), ["/bin/up11", "/bin/qup"]);
}

#[test]
fn the_sorry_server_takes_over_when_nothing_is_alive_or_quorum_is_lost() {
    let t0 = Instant::now();
    let mut reals = vec![real(11, 1), real(12, 1)];
    for r in &mut reals {
        r.checkers[0].retry = 0;
    }
    let mut vs = service(reals);
    vs.sorry_server = Some(SocketAddr::from(([192, 0, 2, 50], 80)));
    vs.quorum = 2;
    let mut health = Health::new(vec![vs.clone()], t0, &mut no_warmup);
    assert!(!health.pools()[0].use_sorry);
    let _ = run(&mut health, t0, &|_, r| result(r == 0));
    // One server alive, but the quorum of 2 is lost: everything to the sorry server.
    let pool = &health.pools()[0];
    assert!(pool.use_sorry && pool.has_capacity());
    // Without a sorry server, the alive one serves on.
    vs.sorry_server = None;
    let mut health = Health::new(vec![vs], t0, &mut no_warmup);
    let _ = run(&mut health, t0, &|_, r| result(r == 0));
    assert!(!health.pools()[0].use_sorry);
    assert_eq!(
        health.pools()[0].members[0],
        PoolMember {
            in_pool: true,
            weight: 1
        }
    );
}

#[test]
fn omega_runs_the_downs_at_shutdown() {
    let t0 = Instant::now();
    let mut vs = service(vec![real(11, 1), real(12, 1)]);
    let mut health = Health::new(vec![vs.clone()], t0, &mut no_warmup);
    assert!(health.shutdown().is_empty(), "no omega, no commands");
    vs.omega = true;
    let mut health = Health::new(vec![vs], t0, &mut no_warmup);
    assert_eq!(
        commands(&health.shutdown()),
        ["/bin/down11", "/bin/down12", "/bin/qdown"]
    );
    assert_eq!(health.poll_timeout(), None, "no more checks");
}

#[test]
fn reload_keeps_unchanged_real_servers_and_restarts_changed_ones() {
    let t0 = Instant::now();
    let mut reals = vec![real(11, 1), real(12, 1)];
    for r in &mut reals {
        r.checkers[0].retry = 0;
    }
    let mut vs = service(reals);
    vs.alpha = true;
    vs.omega = true;
    let mut other = service(vec![real(21, 1)]);
    other.name = "192.0.2.101:80/tcp".into();
    other.omega = true;
    let mut health = Health::new(vec![vs.clone(), other], t0, &mut no_warmup);
    let _ = run(&mut health, t0, &|_, _| result(true));
    assert_eq!(
        states(&health),
        [RealServerState::Alive, RealServerState::Alive]
    );
    // .12 changes weight, .13 is new, the second service is removed.
    let mut changed = vs.clone();
    changed.real_servers[1].weight = 5;
    changed.real_servers.push(real(13, 1));
    let t1 = t0 + Duration::from_secs(1);
    let actions = health.reload(vec![changed], t1, &mut no_warmup);
    // The removed service's omega downs, and .12's (it restarts failed under alpha).
    assert_eq!(
        commands(&actions),
        ["/bin/down12", "/bin/down21", "/bin/qdown"]
    );
    assert_eq!(
        states(&health),
        [
            RealServerState::Alive,
            RealServerState::Failed,
            RealServerState::Failed
        ]
    );
    // .11 keeps its schedule; the fresh ones are due now.
    let due = health.poll_due(t1);
    assert_eq!(due.iter().map(|d| d.real).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(health.poll_timeout(), Some(t0 + DELAY_LOOP));
    // A result for a check that no longer exists is ignored.
    assert!(health.snapshot().services.len() == 1);
}

#[test]
fn a_result_for_a_removed_check_is_ignored() {
    let t0 = Instant::now();
    let mut health = Health::new(vec![service(vec![real(11, 1)])], t0, &mut no_warmup);
    let due = health.poll_due(t0);
    let _ = health.reload(vec![service(vec![real(12, 1)])], t0, &mut no_warmup);
    assert!(
        health
            .handle_result(t0, due[0].id, result(false))
            .is_empty()
    );
    assert_eq!(states(&health), [RealServerState::Alive]);
    assert!(health.check_config(due[0].id).is_none());
}

#[test]
fn due_now_brings_matching_checks_forward_but_not_those_in_flight() {
    let t0 = Instant::now();
    let mut bfd = real(12, 1);
    bfd.checkers[0].kind = CheckKind::Bfd("rs12".into());
    let mut health = Health::new(
        vec![service(vec![real(11, 1), bfd, real(13, 1)])],
        t0,
        &mut no_warmup,
    );
    run(&mut health, t0, &|_, _| result(true));
    assert_eq!(health.poll_timeout(), Some(t0 + DELAY_LOOP));
    // A session changed: the BFD check alone is due now, the others keep their loop.
    let t1 = t0 + Duration::from_millis(20);
    health.due_now(t1, |c| matches!(c.kind, CheckKind::Bfd(_)));
    let due = health.poll_due(t1);
    assert_eq!(due.iter().map(|d| d.real).collect::<Vec<_>>(), vec![1]);
    // In flight, it is not made due again: its result comes first.
    health.due_now(t1, |c| matches!(c.kind, CheckKind::Bfd(_)));
    assert!(health.poll_due(t1).is_empty());
    // The BFD check has retry 0 in a real configuration: one failure takes it out.
    let mut failing = checker(0);
    failing.kind = CheckKind::Bfd("rs12".into());
    let mut health = Health::new(
        vec![service(vec![RealServer {
            checkers: vec![failing],
            ..real(12, 1)
        }])],
        t0,
        &mut no_warmup,
    );
    run(&mut health, t0, &|_, _| result(true));
    health.due_now(t1, |c| matches!(c.kind, CheckKind::Bfd(_)));
    let actions = run(&mut health, t1, &|_, _| result(false));
    assert_eq!(states(&health), vec![RealServerState::Failed]);
    assert_eq!(commands(&actions), vec!["/bin/down12", "/bin/qdown"]);
}
