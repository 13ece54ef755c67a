//! Real-server health, sans-IO: keepalived's checker rules (retry, delay_before_retry,
//! delay_loop, warmup, alpha, omega, inhibit_on_failure, misc_dynamic, quorum with
//! hysteresis, sorry server, notify commands) as a state machine on a fake clock.
//!
//! No I/O, no clock: every input carries `now`; outputs are deadlines, [`DueCheck`]s to
//! run, [`LbAction`]s to perform and the [`ServicePool`]s / [`HealthSnapshot`] to
//! publish. Random warmup offsets come from the caller too.
//!
//! # Driving it
//!
//! 1. [`Health::new`] from the validated virtual servers.
//! 2. Sleep until [`Health::poll_timeout`], then take [`Health::poll_due`]: run each
//!    check (its configuration is [`Health::check_config`]) and, when it finishes, feed
//!    [`Health::handle_result`] and perform the returned actions in order. A check is
//!    "in flight" between the two: it has no deadline until its result comes back.
//! 3. After every call that may change health, publish [`Health::snapshot`].
//! 4. On reload, [`Health::reload`]; on shutdown, [`Health::shutdown`] (omega).
//!
//! # Rules (keepalived's, made exact)
//!
//! - A checker is *passing* or *failing*; a real server is alive while every checker
//!   passes. Checkers start passing, or failing with `alpha`.
//! - A passing checker's failed attempt is retried after `delay_before_retry`, up to
//!   `retry` times; the next failure in a row makes it fail (so `retry 3` means four
//!   failed attempts, as in keepalived). A failing checker is not retried: its next
//!   attempt is one `delay_loop` later. A success makes it pass at once.
//! - After a success, or once the checker has failed, the next attempt is `delay_loop`
//!   later (the checker's own, else the virtual server's). The first attempt is after a
//!   random offset in `[0, warmup]` (0 without warmup).
//! - `misc_dynamic`: a passing MISC_CHECK may set the real server's weight
//!   ([`misc_exit_status`]); it keeps it until another result changes it.
//! - A failed real server leaves the pool; with `inhibit_on_failure` it stays at weight 0
//!   (existing flows go on). `notify_up` / `notify_down` run on each transition.
//! - Quorum: the sum of the alive real servers' weights. It is lost when it falls below
//!   `quorum - hysteresis` and regained at `quorum + hysteresis` (`quorum_down` /
//!   `quorum_up` run then). Its initial state is computed without running either.
//! - Sorry server: when the quorum is lost, or no alive real server has a weight above
//!   0, a configured sorry server takes all traffic (keepalived removes the real servers
//!   then, which [`ServicePool::use_sorry`] means).
//! - `omega`: at shutdown or when a service is removed by a reload, `notify_down` runs
//!   for every alive real server and `quorum_down` if the quorum was up.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use super::{PoolMember, ServicePool};
use crate::config::Command;
use crate::config::lb::{CheckKind, Checker, RealServer, VirtualServer};
use crate::lb::{CheckOutcome, HealthSnapshot, RealServerHealth, RealServerState, ServiceHealth};

/// Identifies one checker of one real server across reloads; a result for an id that no
/// longer exists (its server was removed or changed) is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckId(u64);

/// A check to run now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueCheck {
    /// Feed the result back with this id.
    pub id: CheckId,
    /// Index of the virtual server (config order).
    pub service: usize,
    /// Index of the real server in it.
    pub real: usize,
    /// Index of the checker in the real server.
    pub checker: usize,
}

/// The result of one check attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// Passed.
    pub ok: bool,
    /// Why, for people (`HTTP 200`, `connect timeout after 3s`, …).
    pub reason: String,
    /// `misc_dynamic`: the weight the check asked for; `None` keeps the current one.
    pub weight: Option<u32>,
    /// Wall-clock time it finished (shown in status only; never used for timing).
    pub at: SystemTime,
}

/// What the driver must do after a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LbAction {
    /// A real server went up or down: log it, run `command` (notify_up / notify_down).
    RealServerChanged {
        /// The virtual server's name.
        service: String,
        /// The real server.
        address: SocketAddr,
        /// Its new state.
        state: RealServerState,
        /// Why, for the log line.
        reason: String,
        /// The notify command to run, if configured.
        command: Option<Command>,
    },
    /// A virtual server's quorum was gained or lost: log it, run `command`.
    QuorumChanged {
        /// The virtual server's name.
        service: String,
        /// Gained (`true`) or lost.
        up: bool,
        /// The alive weight that decided it.
        alive_weight: u64,
        /// The quorum_up / quorum_down command, if configured.
        command: Option<Command>,
    },
}

/// keepalived's MISC_CHECK exit status rules: `(ok, weight)`. Without `misc_dynamic`,
/// 0 passes and anything else fails. With it, 0 passes keeping the weight, 1 fails, and
/// 2..=255 pass with weight `status - 2`. `None` (killed, timed out) fails.
pub fn misc_exit_status(status: Option<i32>, dynamic: bool) -> (bool, Option<u32>) {
    match (status, dynamic) {
        (Some(0), _) => (true, None),
        (Some(code @ 2..=255), true) => (true, u32::try_from(code - 2).ok()),
        _ => (false, None),
    }
}

/// One checker's schedule and state.
#[derive(Debug, Clone)]
struct CheckState {
    id: CheckId,
    /// `None` while an attempt is in flight.
    deadline: Option<Instant>,
    passing: bool,
    /// Failed attempts in a row.
    failures: u32,
}

#[derive(Debug, Clone)]
struct RealState {
    config: RealServer,
    checks: Vec<CheckState>,
    /// `misc_dynamic` weight, once a check set one.
    dynamic_weight: Option<u32>,
    last_check: Option<CheckOutcome>,
}

impl RealState {
    fn alive(&self) -> bool {
        self.checks.iter().all(|c| c.passing)
    }

    fn weight(&self) -> u32 {
        self.dynamic_weight.unwrap_or(self.config.weight)
    }

    fn state(&self) -> RealServerState {
        match (self.alive(), self.config.inhibit_on_failure) {
            (true, _) => RealServerState::Alive,
            (false, true) => RealServerState::Inhibited,
            (false, false) => RealServerState::Failed,
        }
    }

    fn member(&self) -> PoolMember {
        match self.state() {
            RealServerState::Alive => PoolMember {
                in_pool: true,
                weight: self.weight(),
            },
            RealServerState::Inhibited => PoolMember {
                in_pool: true,
                weight: 0,
            },
            RealServerState::Failed => PoolMember {
                in_pool: false,
                weight: 0,
            },
        }
    }
}

#[derive(Debug, Clone)]
struct ServiceState {
    config: VirtualServer,
    reals: Vec<RealState>,
    quorum_up: bool,
}

impl ServiceState {
    fn alive_weight(&self) -> u64 {
        self.reals
            .iter()
            .filter(|r| r.alive())
            .map(|r| u64::from(r.weight()))
            .sum()
    }

    fn pool(&self) -> ServicePool {
        let members: Vec<PoolMember> = self.reals.iter().map(RealState::member).collect();
        let capacity = members.iter().any(|m| m.in_pool && m.weight > 0);
        ServicePool {
            members,
            use_sorry: self.config.sorry_server.is_some() && (!self.quorum_up || !capacity),
        }
    }

    /// Re-evaluates the quorum with hysteresis; returns the action when it changed.
    fn update_quorum(&mut self) -> Option<LbAction> {
        let alive_weight = self.alive_weight();
        let quorum = u64::from(self.config.quorum);
        let hysteresis = u64::from(self.config.hysteresis);
        let up = if self.quorum_up {
            alive_weight >= quorum.saturating_sub(hysteresis)
        } else {
            alive_weight >= quorum + hysteresis
        };
        if up == self.quorum_up {
            return None;
        }
        self.quorum_up = up;
        Some(LbAction::QuorumChanged {
            service: self.config.name.clone(),
            up,
            alive_weight,
            command: if up {
                self.config.quorum_up.clone()
            } else {
                self.config.quorum_down.clone()
            },
        })
    }

    /// omega's actions: notify_down for each alive real server, quorum_down if up.
    fn omega_downs(&self) -> Vec<LbAction> {
        if !self.config.omega {
            return Vec::new();
        }
        let mut actions: Vec<LbAction> = self
            .reals
            .iter()
            .filter(|r| r.alive())
            .map(|r| LbAction::RealServerChanged {
                service: self.config.name.clone(),
                address: r.config.address,
                state: RealServerState::Failed,
                reason: "vipd stops checking it (omega)".into(),
                command: r.config.notify_down.clone(),
            })
            .collect();
        if self.quorum_up {
            actions.push(LbAction::QuorumChanged {
                service: self.config.name.clone(),
                up: false,
                alive_weight: self.alive_weight(),
                command: self.config.quorum_down.clone(),
            });
        }
        actions
    }
}

/// The health of every virtual server's real servers.
#[derive(Debug, Clone)]
pub struct Health {
    services: Vec<ServiceState>,
    /// CheckId → (service, real, checker).
    index: HashMap<CheckId, (usize, usize, usize)>,
    next_id: u64,
}

/// The delay between two attempts of `checker` under `service`.
fn delay_loop(service: &VirtualServer, checker: &Checker) -> Duration {
    checker.delay_loop.unwrap_or(service.delay_loop)
}

impl Health {
    /// Health for `services`, every checker scheduled for its first attempt at
    /// `now + warmup(max)` (`warmup` returns a random duration in `[0, max]`; it is only
    /// called for checkers with a `warmup`).
    pub fn new(
        services: Vec<VirtualServer>,
        now: Instant,
        warmup: &mut dyn FnMut(Duration) -> Duration,
    ) -> Self {
        let mut health = Self {
            services: Vec::new(),
            index: HashMap::new(),
            next_id: 0,
        };
        health.services = services
            .into_iter()
            .map(|config| health.fresh_service(config, now, warmup))
            .collect();
        health.reindex();
        health
    }

    fn fresh_real(
        &mut self,
        config: RealServer,
        alpha: bool,
        now: Instant,
        warmup: &mut dyn FnMut(Duration) -> Duration,
    ) -> RealState {
        let checks = config
            .checkers
            .iter()
            .map(|checker| {
                self.next_id += 1;
                CheckState {
                    id: CheckId(self.next_id),
                    deadline: Some(now + checker.warmup.map_or(Duration::ZERO, &mut *warmup)),
                    passing: !alpha,
                    failures: 0,
                }
            })
            .collect();
        RealState {
            config,
            checks,
            dynamic_weight: None,
            last_check: None,
        }
    }

    fn fresh_service(
        &mut self,
        config: VirtualServer,
        now: Instant,
        warmup: &mut dyn FnMut(Duration) -> Duration,
    ) -> ServiceState {
        let reals = config
            .real_servers
            .iter()
            .map(|real| self.fresh_real(real.clone(), config.alpha, now, warmup))
            .collect();
        let mut service = ServiceState {
            config,
            reals,
            quorum_up: false,
        };
        service.quorum_up = service.alive_weight() >= u64::from(service.config.quorum);
        service
    }

    fn reindex(&mut self) {
        self.index.clear();
        for (s, service) in self.services.iter().enumerate() {
            for (r, real) in service.reals.iter().enumerate() {
                for (c, check) in real.checks.iter().enumerate() {
                    self.index.insert(check.id, (s, r, c));
                }
            }
        }
    }

    /// The earliest deadline of a check not in flight.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.checks().filter_map(|(_, c)| c.deadline).min()
    }

    fn checks(&self) -> impl Iterator<Item = ((usize, usize, usize), &CheckState)> {
        self.services.iter().enumerate().flat_map(|(s, service)| {
            service.reals.iter().enumerate().flat_map(move |(r, real)| {
                real.checks
                    .iter()
                    .enumerate()
                    .map(move |(c, check)| ((s, r, c), check))
            })
        })
    }

    /// The checks due at `now`, now in flight (no deadline until their result).
    #[must_use = "the due checks must be run"]
    pub fn poll_due(&mut self, now: Instant) -> Vec<DueCheck> {
        let mut due = Vec::new();
        for (s, service) in self.services.iter_mut().enumerate() {
            for (r, real) in service.reals.iter_mut().enumerate() {
                for (c, check) in real.checks.iter_mut().enumerate() {
                    if check.deadline.is_some_and(|d| d <= now) {
                        check.deadline = None;
                        due.push(DueCheck {
                            id: check.id,
                            service: s,
                            real: r,
                            checker: c,
                        });
                    }
                }
            }
        }
        due
    }

    /// Makes every check whose checker matches `which` due at `now`, unless it is in
    /// flight (BFD_CHECKs when a session changes: their state is news, not a poll).
    pub fn due_now(&mut self, now: Instant, which: impl Fn(&Checker) -> bool) {
        for service in &mut self.services {
            for real in &mut service.reals {
                for (check, checker) in real.checks.iter_mut().zip(&real.config.checkers) {
                    if check.deadline.is_some() && which(checker) {
                        check.deadline = Some(now);
                    }
                }
            }
        }
    }

    /// What a check runs against: its virtual server, real server and checker.
    pub fn check_config(&self, id: CheckId) -> Option<(&VirtualServer, &RealServer, &Checker)> {
        let &(s, r, c) = self.index.get(&id)?;
        let service = self.services.get(s)?;
        let real = service.reals.get(r)?;
        Some((&service.config, &real.config, real.config.checkers.get(c)?))
    }

    /// Feeds one attempt's result; returns what to do (transitions, in order).
    #[must_use = "the returned actions must be performed"]
    pub fn handle_result(
        &mut self,
        now: Instant,
        id: CheckId,
        result: CheckResult,
    ) -> Vec<LbAction> {
        let Some(&(s, r, c)) = self.index.get(&id) else {
            return Vec::new();
        };
        let Some(service) = self.services.get_mut(s) else {
            return Vec::new();
        };
        let loop_delay = service
            .config
            .real_servers
            .get(r)
            .and_then(|real| real.checkers.get(c))
            .map_or(service.config.delay_loop, |checker| {
                delay_loop(&service.config, checker)
            });
        let Some(real) = service.reals.get_mut(r) else {
            return Vec::new();
        };
        let Some(checker) = real.config.checkers.get(c).cloned() else {
            return Vec::new();
        };
        let was_alive = real.alive();
        let was_weight = real.weight();
        let Some(check) = real.checks.get_mut(c) else {
            return Vec::new();
        };
        let mut transition_reason = result.reason.clone();
        if result.ok {
            check.failures = 0;
            check.passing = true;
            check.deadline = Some(now + loop_delay);
            if let CheckKind::Misc(misc) = &checker.kind
                && misc.dynamic
                && let Some(weight) = result.weight
            {
                real.dynamic_weight = Some(weight);
            }
        } else {
            check.failures = check.failures.saturating_add(1);
            if check.passing && check.failures <= checker.retry {
                // Not failed yet: retry sooner.
                check.deadline = Some(now + checker.delay_before_retry);
            } else {
                if check.passing {
                    transition_reason = format!(
                        "{} failed attempt{} in a row, last: {}",
                        check.failures,
                        if check.failures == 1 { "" } else { "s" },
                        result.reason
                    );
                }
                check.passing = false;
                check.deadline = Some(now + loop_delay);
            }
        }
        real.last_check = Some(CheckOutcome {
            ok: result.ok,
            reason: result.reason,
            at: result.at,
        });
        let mut actions = Vec::new();
        let alive = real.alive();
        if alive != was_alive {
            actions.push(LbAction::RealServerChanged {
                service: service.config.name.clone(),
                address: real.config.address,
                state: real.state(),
                reason: transition_reason,
                command: if alive {
                    real.config.notify_up.clone()
                } else {
                    real.config.notify_down.clone()
                },
            });
        }
        if alive != was_alive || real.weight() != was_weight {
            actions.extend(service.update_quorum());
        }
        actions
    }

    /// Each virtual server's pool, in config order.
    pub fn pools(&self) -> Vec<ServicePool> {
        self.services.iter().map(ServiceState::pool).collect()
    }

    /// Everything, for status and the data plane.
    pub fn snapshot(&self) -> HealthSnapshot {
        HealthSnapshot {
            services: self
                .services
                .iter()
                .map(|service| ServiceHealth {
                    name: service.config.name.clone(),
                    pool: service.pool(),
                    quorum_up: service.quorum_up,
                    real_servers: service
                        .reals
                        .iter()
                        .map(|real| RealServerHealth {
                            address: real.config.address,
                            state: real.state(),
                            weight: real.member().weight,
                            last_check: real.last_check.clone(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// The virtual servers in force.
    pub fn services(&self) -> impl Iterator<Item = &VirtualServer> {
        self.services.iter().map(|s| &s.config)
    }

    /// vipd stops: omega's downs for every service (none for services without omega).
    /// Checks stop being scheduled.
    #[must_use = "the returned actions must be performed"]
    pub fn shutdown(&mut self) -> Vec<LbAction> {
        let actions = self
            .services
            .iter()
            .flat_map(ServiceState::omega_downs)
            .collect();
        for check in self
            .services
            .iter_mut()
            .flat_map(|s| s.reals.iter_mut())
            .flat_map(|r| r.checks.iter_mut())
        {
            check.deadline = None;
        }
        actions
    }

    /// A new configuration. A virtual server keeps its quorum state when one of the same
    /// name remains; a real server keeps its state, schedule and in-flight check when
    /// the same address with an identical configuration remains in it. Removed services
    /// run omega's downs; new and changed real servers start afresh (alpha applies).
    #[must_use = "the returned actions must be performed"]
    pub fn reload(
        &mut self,
        services: Vec<VirtualServer>,
        now: Instant,
        warmup: &mut dyn FnMut(Duration) -> Duration,
    ) -> Vec<LbAction> {
        let mut old: Vec<Option<ServiceState>> = std::mem::take(&mut self.services)
            .into_iter()
            .map(Some)
            .collect();
        let mut actions = Vec::new();
        let mut next = Vec::new();
        for config in services {
            let previous = old
                .iter_mut()
                .find(|s| s.as_ref().is_some_and(|s| s.config.name == config.name))
                .and_then(Option::take);
            let Some(mut previous) = previous else {
                next.push(self.fresh_service(config, now, warmup));
                continue;
            };
            let mut reals = Vec::new();
            for real in &config.real_servers {
                let kept = previous
                    .reals
                    .iter()
                    .position(|r| r.config == *real)
                    .map(|i| previous.reals.remove(i));
                match kept {
                    Some(kept) => reals.push(kept),
                    None => reals.push(self.fresh_real(real.clone(), config.alpha, now, warmup)),
                }
            }
            // Real servers that left an omega service: their notify_down.
            if previous.config.omega {
                actions.extend(previous.reals.iter().filter(|r| r.alive()).map(|r| {
                    LbAction::RealServerChanged {
                        service: config.name.clone(),
                        address: r.config.address,
                        state: RealServerState::Failed,
                        reason: "removed from the configuration (omega)".into(),
                        command: r.config.notify_down.clone(),
                    }
                }));
            }
            let mut service = ServiceState {
                config,
                reals,
                quorum_up: previous.quorum_up,
            };
            actions.extend(service.update_quorum());
            next.push(service);
        }
        for removed in old.into_iter().flatten() {
            actions.extend(removed.omega_downs());
        }
        self.services = next;
        self.reindex();
        actions
    }
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
