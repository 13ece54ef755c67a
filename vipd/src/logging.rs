//! Log output that never blocks a daemon thread.
//!
//! vipd logs from its real-time threads (a state change, a reload, a tracked priority).
//! A plain `write(2)` to stderr there waits whenever the reader is slow: a full pipe, a
//! journal stream socket that journald has not drained, a log file whose filesystem is
//! committing its journal. Each such wait is an advert sent late, and at 10 ms adverts
//! a 36 ms wait is a false takeover by the backup. So the formatter hands each line to a
//! bounded queue and a thread of ordinary priority (`vipd-log`) writes it; when the
//! queue is full the line is dropped and counted (`log_lines_dropped` in `vipd status`
//! and the metrics), never waited for.
//!
//! Hand-written rather than `tracing-appender`'s non-blocking writer: that crate brings
//! `time` and a rolling-file appender vipd does not use, for what is one bounded channel
//! and one thread here.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

/// Lines the queue holds before new ones are dropped: minutes of a busy daemon's log
/// (a reload of 16 instances logs a handful), so only a reader stuck for good loses any.
pub const QUEUED_LINES: usize = 8192;

/// How long the exit waits for the queue to be written out.
const FLUSH_AT_EXIT: Duration = Duration::from_secs(2);

enum Message {
    Line(Vec<u8>),
    Stop,
}

/// The writer handed to the formatter: queues each line for the `vipd-log` thread.
#[derive(Clone)]
pub struct LogSink {
    tx: SyncSender<Message>,
    dropped: Arc<AtomicU64>,
}

impl LogSink {
    /// Lines dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Write for &LogSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.tx.try_send(Message::Line(buf.to_vec())) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            // The writer thread has stopped (the process is exiting): nothing to do.
            Err(TrySendError::Disconnected(_)) => {}
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogSink {
    type Writer = &'a LogSink;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

/// Writes what is queued when dropped (waiting at most [`FLUSH_AT_EXIT`]), then stops
/// the writer thread. Hold it for as long as the process logs.
pub struct FlushGuard {
    tx: SyncSender<Message>,
    thread: Option<JoinHandle<()>>,
    done: Receiver<()>,
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        // A full queue behind a stuck reader must not hang the exit either.
        let deadline = std::time::Instant::now() + FLUSH_AT_EXIT;
        let mut message = Message::Stop;
        loop {
            match self.tx.try_send(message) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if std::time::Instant::now() < deadline => {
                    message = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(_) => return,
            }
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if self.done.recv_timeout(left).is_ok()
            && let Some(thread) = self.thread.take()
        {
            let _ = thread.join();
        }
    }
}

/// The daemon's sink, for its counters.
static DAEMON_SINK: OnceLock<LogSink> = OnceLock::new();

/// Starts the writer thread for `out` with a queue of `capacity` lines.
pub fn spawn<W: Write + Send + 'static>(
    out: W,
    capacity: usize,
) -> io::Result<(LogSink, FlushGuard)> {
    let (tx, rx) = mpsc::sync_channel::<Message>(capacity);
    let (done_tx, done) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("vipd-log".into())
        .spawn(move || {
            write_out(out, &rx);
            let _ = done_tx.send(());
        })?;
    let sink = LogSink {
        tx: tx.clone(),
        dropped: Arc::new(AtomicU64::new(0)),
    };
    Ok((
        sink,
        FlushGuard {
            tx,
            thread: Some(thread),
            done,
        },
    ))
}

/// The writer thread: what has queued up goes out in one write, in order.
fn write_out<W: Write>(mut out: W, rx: &Receiver<Message>) {
    let mut batch = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut stop = false;
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Line(line) => batch.extend_from_slice(&line),
                Message::Stop => {
                    stop = true;
                    break;
                }
            }
            if batch.len() < 64 * 1024 {
                next = rx.try_recv().ok();
            }
        }
        // A failed write (a closed stderr) loses these lines; there is nowhere to say so.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
        if stop {
            return;
        }
    }
}

/// [`spawn`] for stderr with [`QUEUED_LINES`], registered as the daemon's sink.
pub fn stderr() -> io::Result<(LogSink, FlushGuard)> {
    let (sink, guard) = spawn(io::stderr(), QUEUED_LINES)?;
    let _ = DAEMON_SINK.set(sink.clone());
    Ok((sink, guard))
}

/// Lines the daemon's log dropped because its reader did not keep up.
pub fn dropped_lines() -> u64 {
    DAEMON_SINK.get().map_or(0, LogSink::dropped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A writer that appends to shared memory, optionally held shut until released.
    #[derive(Clone)]
    struct Shared {
        bytes: Arc<Mutex<Vec<u8>>>,
        gate: Arc<(Mutex<bool>, std::sync::Condvar)>,
    }

    impl Shared {
        fn new(open: bool) -> Self {
            Shared {
                bytes: Arc::default(),
                gate: Arc::new((Mutex::new(open), std::sync::Condvar::new())),
            }
        }

        fn open(&self) {
            let (lock, cv) = &*self.gate;
            *lock.lock().expect("gate") = true;
            cv.notify_all();
        }

        fn text(&self) -> String {
            String::from_utf8(self.bytes.lock().expect("bytes").clone()).expect("utf-8")
        }
    }

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let (lock, cv) = &*self.gate;
            let mut open = lock.lock().expect("gate");
            while !*open {
                open = cv.wait(open).expect("gate");
            }
            self.bytes.lock().expect("bytes").extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_arrive_whole_and_in_order_by_the_time_the_guard_is_dropped() {
        let out = Shared::new(true);
        let (sink, guard) = spawn(out.clone(), 16).expect("spawn");
        for i in 0..10 {
            (&sink)
                .write_all(format!("line {i}\n").as_bytes())
                .expect("write");
        }
        drop(guard);
        let want: String = (0..10).map(|i| format!("line {i}\n")).collect();
        assert_eq!(out.text(), want);
        assert_eq!(sink.dropped(), 0);
    }

    /// The point of the module: a reader that does not read never holds up a logging
    /// thread; what does not fit is counted, and what did fit comes out once it reads.
    #[test]
    fn a_stuck_reader_costs_dropped_lines_not_a_blocked_thread() {
        let out = Shared::new(false);
        let (sink, guard) = spawn(out.clone(), 4).expect("spawn");
        let writer = {
            let sink = sink.clone();
            std::thread::spawn(move || {
                for i in 0..100 {
                    (&sink)
                        .write_all(format!("line {i}\n").as_bytes())
                        .expect("write");
                }
            })
        };
        // Joining would hang here if a write waited for the reader.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(writer.join().is_ok());
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok(true));
        // At most what the writer thread holds (one batch: at most the queue and the
        // line it took first) and the queue again got through.
        assert!(
            sink.dropped() >= 100 - 2 * 4 - 1,
            "dropped {}",
            sink.dropped()
        );
        out.open();
        drop(guard);
        let written = out.text();
        let lines: Vec<&str> = written.lines().collect();
        assert_eq!(lines.len() as u64 + sink.dropped(), 100);
        assert_eq!(lines.first(), Some(&"line 0"));
    }
}
