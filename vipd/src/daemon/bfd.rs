//! BFD sessions in the driver: which sessions exist, and what a session's state means
//! for the VRRP instances that track it. The sessions themselves (sockets, timers,
//! packets) run on the BFD thread (`bfd_engine`); the session logic is `proto::bfd`;
//! the rules for instances are `proto::health::add_bfd` (weight / FAULT) and
//! `Input::PeerDown` (a peer's session Down is Master_Down).

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasher as _, Hasher as _};

use super::bfd_engine::{BfdEngine, BfdEvent, NewSession};
use super::*;
use crate::io::bfd::{BfdRxSocket, BfdTxSocket};
use crate::proto::bfd::{self as core_bfd, SessionKey, SessionState};

/// The BFD side of the daemon.
pub(super) struct BfdRuntime {
    engine: BfdEngine,
    /// The configured sessions, in the engine's order.
    specs: Vec<config::BfdInstance>,
    keys: Vec<SessionKey>,
    /// Which sessions the engine last reported Up (by name); emptied when the sessions
    /// are replaced, so a tracking instance waits for the new session.
    up: HashSet<String>,
    /// The last state the engine reported for each session, Up (true) or no longer Up
    /// (false), by name; absent: never reported. Published to the load balancer's
    /// BFD_CHECKs. A replacement keeps the entries of the names that remain: a real
    /// server whose session was down must not rejoin the pool because a reload
    /// recreated the session (a dead server's new session never reports anything).
    published: tokio::sync::watch::Sender<BTreeMap<String, bool>>,
    /// Bumped on every replacement; events of older sessions are ignored.
    generation: u64,
    /// Families with a receive socket (false: IPv4, true: IPv6).
    receiving: HashSet<bool>,
}

/// A random u64 from std's per-process hasher keys (not for secrets: discriminators
/// and jitter need only differ between sessions and restarts).
fn random_u64(salt: u64) -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(salt);
    hasher.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}

impl BfdRuntime {
    /// `published` carries each session's last reported state to the load balancer.
    pub(super) fn new(
        engine: BfdEngine,
        published: tokio::sync::watch::Sender<BTreeMap<String, bool>>,
    ) -> Self {
        BfdRuntime {
            engine,
            specs: Vec::new(),
            keys: Vec::new(),
            up: HashSet::new(),
            published,
            generation: 0,
            receiving: HashSet::new(),
        }
    }

    /// Replaces every session by those of `sessions`, after telling the old ones'
    /// neighbours AdminDown (a reload that changed them). The receive sockets stay.
    pub(super) fn restart(
        &mut self,
        sessions: &[config::BfdInstance],
        now: Instant,
    ) -> Result<(), DaemonError> {
        self.replace(sessions, now, true)
    }

    /// The configured sessions, for a reload to compare with.
    pub(super) fn specs(&self) -> Vec<config::BfdInstance> {
        self.specs.clone()
    }

    /// Opens sockets and creates a session for every `bfd_instance`, and hands them to
    /// the BFD thread. A session whose socket cannot be opened is an error: tracking it
    /// would fault the instance forever.
    pub(super) fn start(
        &mut self,
        sessions: &[config::BfdInstance],
        now: Instant,
    ) -> Result<(), DaemonError> {
        self.replace(sessions, now, false)
    }

    fn replace(
        &mut self,
        sessions: &[config::BfdInstance],
        now: Instant,
        admin_down_old: bool,
    ) -> Result<(), DaemonError> {
        let socket_error = |name: &str, what: &str, source| DaemonError::Socket {
            instance: format!("bfd {name}"),
            what: what.to_owned(),
            source,
        };
        let mut rx = Vec::new();
        let mut receiving = self.receiving.clone();
        let mut prepared: Vec<NewSession> = Vec::new();
        for spec in sessions {
            let v6 = spec.neighbor.is_ipv6();
            if !receiving.contains(&v6) {
                rx.push(
                    BfdRxSocket::open(v6).map_err(|e| {
                        socket_error(&spec.name, "binding UDP port 3784 for BFD", e)
                    })?,
                );
                receiving.insert(v6);
            }
            let random = random_u64(prepared.len() as u64);
            // Nonzero and distinct among ours (RFC 5880 §6.8.1).
            let mut discriminator = (random as u32).max(1);
            while prepared
                .iter()
                .any(|p| p.key.local_discriminator == discriminator)
            {
                discriminator = discriminator.wrapping_add(1).max(1);
            }
            let preferred_port = 49152 + (random >> 32) as u16 % 16384;
            let tx = BfdTxSocket::open(spec.neighbor, spec.source, spec.ttl, preferred_port)
                .map_err(|e| socket_error(&spec.name, "opening the BFD send socket", e))?;
            let session_config = core_bfd::SessionConfig {
                local_discriminator: discriminator,
                desired_min_tx: spec.min_tx,
                required_min_rx: spec.min_rx,
                detect_mult: spec.multiplier,
                idle_tx: spec.idle_tx,
                passive: spec.passive,
            };
            let session = core_bfd::Session::new(session_config, now, random).map_err(|e| {
                DaemonError::Setup {
                    instance: format!("bfd {}", spec.name),
                    message: e.to_string(),
                }
            })?;
            tracing::info!(bfd = %spec.name, neighbor = %spec.neighbor, discriminator, source_port = tx.port(), "BFD session created");
            prepared.push(NewSession {
                spec: spec.clone(),
                session,
                key: SessionKey {
                    local_discriminator: discriminator,
                    neighbor: spec.neighbor,
                    min_ttl: 255u8.saturating_sub(spec.max_hops),
                },
                tx,
            });
        }
        self.receiving = receiving;
        self.generation += 1;
        self.specs = sessions.to_vec();
        self.keys = prepared.iter().map(|p| p.key).collect();
        self.up.clear();
        self.published.send_if_modified(|states| {
            let before = states.len();
            states.retain(|name, _| sessions.iter().any(|s| &s.name == name));
            states.len() != before
        });
        self.engine
            .replace(self.generation, admin_down_old, prepared, rx);
        Ok(())
    }

    /// Whether `name`'s session is Up.
    pub(super) fn is_up(&self, name: &str) -> bool {
        self.up.contains(name)
    }

    /// Status lines for `vipd status` and the daemon-wide BFD counters.
    pub(super) fn status(&self) -> (Vec<control::BfdStatus>, Vec<(String, u64)>) {
        let snapshot = self.engine.snapshot();
        let counters = snapshot
            .discards
            .iter()
            .map(|(reason, n)| (format!("bfd_discarded_{reason}"), *n))
            .chain([
                ("bfd_rx_errors".to_owned(), snapshot.rx_errors),
                (
                    "bfd_thread_wake_late_max_us".to_owned(),
                    snapshot.wake_late_max_us,
                ),
                ("bfd_thread_turn_max_us".to_owned(), snapshot.turn_max_us),
            ])
            .collect();
        (snapshot.sessions, counters)
    }

    /// Every session to AdminDown (shutdown); the thread keeps sending until dropped.
    pub(super) fn admin_down(&mut self) {
        self.engine.admin_down();
    }
}

impl Daemon {
    /// A session went Up or left Up on the BFD thread.
    pub(super) async fn on_bfd_event(&mut self, now: Instant, event: BfdEvent) {
        if event.generation != self.bfd.generation {
            return;
        }
        let up = event.to == SessionState::Up;
        if up {
            self.bfd.up.insert(event.name.clone());
        } else {
            self.bfd.up.remove(&event.name);
        }
        self.bfd
            .published
            .send_if_modified(|states| states.insert(event.name.clone(), up) != Some(up));
        // RFC 5882 §3.2: a neighbour that took the session administratively down (a
        // reload, a stop that also sends priority 0) has not failed.
        let failed = event.to != SessionState::Up && !event.remote_admin_down;
        self.bfd_changed(now, &event.name, event.neighbor, failed)
            .await;
    }

    /// Registers every session with every XDP attachment, so the program records the
    /// neighbours' packets (see `vipd-ebpf/src/bfd.rs`). Called after sessions or
    /// attachments change.
    pub(super) fn bfd_watch_xdp(&mut self) {
        for attachment in self.xdp.values_mut() {
            let interface = attachment.interface().to_owned();
            let result = attachment.unwatch_all_bfd().and_then(|()| {
                self.bfd.keys.iter().try_for_each(|key| {
                    attachment.watch_bfd(key.local_discriminator, key.neighbor, key.min_ttl)
                })
            });
            if let Err(e) = result {
                tracing::warn!(%interface, error = %e, "registering BFD sessions with XDP failed; a full socket queue may then cause a false Down");
            }
        }
        let records = self
            .xdp
            .values()
            .filter_map(|a| match a.bfd_records() {
                Ok(records) => Some(records),
                Err(e) => {
                    tracing::warn!(interface = %a.interface(), error = %e, "the BFD thread cannot read this interface's XDP records");
                    None
                }
            })
            .collect();
        self.bfd.engine.records(records);
    }

    /// A session went Up or left Up: instances tracking it recompute their health, and
    /// a Backup whose peer session failed takes over (`Input::PeerDown`).
    /// `failed`: it left Up because the neighbour failed, not because it said AdminDown.
    async fn bfd_changed(&mut self, now: Instant, name: &str, neighbor: IpAddr, failed: bool) {
        for index in 0..self.slots.len() {
            if self.slots[index].retired {
                continue;
            }
            let Some(tracked) = self.slots[index]
                .spec
                .track_bfd
                .iter()
                .find(|t| t.name == name)
                .cloned()
            else {
                continue;
            };
            if tracked.peer {
                if failed {
                    let actions = self.slots[index].handle(now, Input::PeerDown { peer: neighbor });
                    self.perform(index, now, actions).await;
                }
            } else {
                self.refresh_health(index, now).await;
            }
        }
    }

    /// The instance's tracked (non-peer) BFD sessions, for [`health::add_bfd`].
    pub(super) fn bfd_health(&self, index: usize, health: &mut Health) {
        let statuses: Vec<health::BfdStatus> = self.slots[index]
            .spec
            .track_bfd
            .iter()
            .filter(|t| !t.peer)
            .map(|t| health::BfdStatus {
                name: &t.name,
                up: self.bfd.is_up(&t.name),
                weight: i32::from(t.weight),
            })
            .collect();
        health::add_bfd(health, &statuses);
    }
}
