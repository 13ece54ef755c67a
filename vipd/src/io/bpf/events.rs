//! What the program reports besides its maps: the advert event ring buffer
//! ([`AdvertEvents`], changes the election must act on at once) and the aya-log ring
//! buffer ([`XdpLogger`], forwarded to `tracing` under target `vipd::xdp`).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aya::maps::{MapData, RingBuf};
use tokio::io::unix::AsyncFd;
use vipd_common::{AdvertEvent as RawAdvertEvent, AdvertEventKind, map_names};

use super::{BpfError, IpFamily, LoadedXdp};
use crate::proto::wire::Centiseconds;

/// Something the election must act on, pushed by the program when it records an advert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdvertEvent {
    /// What changed.
    pub kind: AdvertEventKind,
    /// Interface the advert arrived on.
    pub ifindex: u32,
    /// Virtual router identifier.
    pub vrid: u8,
    /// Address family of the virtual router.
    pub family: IpFamily,
    /// The advert's source address.
    pub source: IpAddr,
    /// The advert's priority.
    pub priority: u8,
    /// The advert's interval.
    pub interval: Centiseconds,
    /// When the advert arrived, CLOCK_MONOTONIC ns.
    pub seen_ns: u64,
    /// The master recorded before this advert; `None` on first sight.
    pub previous: Option<PreviousAdvert>,
}

/// The record an [`AdvertEvent`] replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreviousAdvert {
    /// Its source address.
    pub source: IpAddr,
    /// Its priority.
    pub priority: u8,
    /// Its interval.
    pub interval: Centiseconds,
    /// Time between it and the advert of the event.
    pub gap: Duration,
}

impl AdvertEvent {
    fn from_raw(raw: &RawAdvertEvent) -> Option<Self> {
        let family = IpFamily::from_raw(raw.family)?;
        Some(AdvertEvent {
            kind: AdvertEventKind::from_u32(raw.kind)?,
            ifindex: raw.ifindex,
            vrid: raw.vrid,
            family,
            source: family.address(raw.src_addr),
            priority: raw.priority,
            interval: Centiseconds(raw.interval_cs),
            seen_ns: raw.seen_ns,
            previous: (raw.has_previous != 0).then(|| PreviousAdvert {
                source: family.address(raw.prev_src_addr),
                priority: raw.prev_priority,
                interval: Centiseconds(raw.prev_interval_cs),
                gap: Duration::from_nanos(raw.gap_ns),
            }),
        })
    }
}

impl LoadedXdp {
    /// Takes the reader of the program's advert event ring buffer. One per program;
    /// must be called inside a tokio runtime (the reader registers with its reactor).
    pub fn take_events(&mut self) -> Result<AdvertEvents, BpfError> {
        let name = map_names::ADVERT_EVENTS;
        let map = self
            .ebpf
            .take_map(name)
            .ok_or(BpfError::AlreadyTaken("advert event"))?;
        let ring = RingBuf::try_from(map).map_err(|source| BpfError::Map { name, source })?;
        let ring = register_readable(ring).map_err(|source| BpfError::Reader {
            what: "advert events",
            source,
        })?;
        Ok(AdvertEvents { ring })
    }

    /// Takes the reader of the program's aya-log ring buffer, which forwards records to
    /// `tracing` (target `vipd::xdp`). Records only appear when the program was loaded
    /// with [`LoadOptions::log`](super::LoadOptions::log). One per program.
    pub fn take_logger(&mut self) -> Result<XdpLogger, BpfError> {
        if self.ebpf.map("AYA_LOGS").is_none() {
            return Err(BpfError::AlreadyTaken("log"));
        }
        let forwarded = Arc::new(AtomicU64::new(0));
        let logger = aya_log::EbpfLogger::init_with_logger(
            &mut self.ebpf,
            TracingLog {
                forwarded: Arc::clone(&forwarded),
            },
        )
        .map_err(|source| BpfError::Logger { source })?;
        Ok(XdpLogger { logger, forwarded })
    }
}

/// Reader of the program's advert events ([`LoadedXdp::take_events`]), for a tokio
/// `select!` next to the VRRP socket.
pub struct AdvertEvents {
    ring: AsyncFd<RingBuf<MapData>>,
}

impl std::fmt::Debug for AdvertEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdvertEvents").finish_non_exhaustive()
    }
}

impl AdvertEvents {
    /// The next event already in the ring, without waiting.
    pub fn try_next(&mut self) -> Option<AdvertEvent> {
        next_event(self.ring.get_mut())
    }

    /// Waits for the next event. Cancel-safe: an event is only consumed when returned.
    pub async fn next(&mut self) -> Result<AdvertEvent, BpfError> {
        loop {
            if let Some(event) = next_event(self.ring.get_mut()) {
                return Ok(event);
            }
            let mut guard = self
                .ring
                .readable_mut()
                .await
                .map_err(|source| BpfError::Reader {
                    what: "advert events",
                    source,
                })?;
            match next_event(guard.get_inner_mut()) {
                Some(event) => return Ok(event),
                None => guard.clear_ready(),
            }
        }
    }
}

/// Pops records until one decodes; records of the wrong size or with unknown fields
/// (impossible unless the object and this build disagree) are skipped with a warning.
fn next_event(ring: &mut RingBuf<MapData>) -> Option<AdvertEvent> {
    loop {
        let item = ring.next()?;
        let bytes: &[u8] = &item;
        if bytes.len() != size_of::<RawAdvertEvent>() {
            tracing::warn!(
                len = bytes.len(),
                "skipping XDP advert event of unexpected size"
            );
            continue;
        }
        // SAFETY: the length matches, RawAdvertEvent is plain integers (every bit
        // pattern valid), and read_unaligned makes no alignment assumption.
        let raw: RawAdvertEvent = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
        drop(item);
        match AdvertEvent::from_raw(&raw) {
            Some(event) => return Some(event),
            None => tracing::warn!(
                kind = raw.kind,
                family = raw.family,
                "skipping unknown XDP advert event"
            ),
        }
    }
}

/// Registers a ring buffer reader with the current tokio reactor, for readability.
fn register_readable<T: std::os::fd::AsRawFd>(reader: T) -> std::io::Result<AsyncFd<T>> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(std::io::Error::other(
            "must be called inside a tokio runtime",
        ));
    }
    // SAFETY: `reader` (a RingBuf or EbpfLogger) owns its map fd for its whole life and
    // always returns that same fd; the AsyncFd owns the reader.
    unsafe { AsyncFd::register_with_interest(reader, tokio::io::Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}

/// Forwards aya-log records from the program to `tracing`, counting them.
struct TracingLog {
    forwarded: Arc<AtomicU64>,
}

impl log::Log for TracingLog {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        self.forwarded.fetch_add(1, Ordering::Relaxed);
        let message = record.args();
        match record.level() {
            log::Level::Error => tracing::error!(target: "vipd::xdp", "{message}"),
            log::Level::Warn => tracing::warn!(target: "vipd::xdp", "{message}"),
            log::Level::Info => tracing::info!(target: "vipd::xdp", "{message}"),
            log::Level::Debug => tracing::debug!(target: "vipd::xdp", "{message}"),
            log::Level::Trace => tracing::trace!(target: "vipd::xdp", "{message}"),
        }
    }

    fn flush(&self) {}
}

/// Reader of the program's aya-log output ([`LoadedXdp::take_logger`]).
pub struct XdpLogger {
    logger: aya_log::EbpfLogger<TracingLog>,
    forwarded: Arc<AtomicU64>,
}

impl std::fmt::Debug for XdpLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpLogger")
            .field("forwarded", &self.forwarded.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl XdpLogger {
    /// Forwards every pending record to `tracing`; returns how many there were.
    pub fn flush(&mut self) -> u64 {
        let before = self.forwarded.load(Ordering::Relaxed);
        self.logger.flush();
        self.forwarded.load(Ordering::Relaxed) - before
    }

    /// Forwards records as they arrive, until an error. Spawn it on the runtime.
    pub async fn run(self) -> Result<(), BpfError> {
        let mut fd = register_readable(self.logger).map_err(|source| BpfError::Reader {
            what: "log",
            source,
        })?;
        loop {
            let mut guard = fd.readable_mut().await.map_err(|source| BpfError::Reader {
                what: "log",
                source,
            })?;
            guard.get_inner_mut().flush();
            guard.clear_ready();
        }
    }
}
