//! The log sink: worker threads never write to stderr themselves. Each formatted line (a session
//! record, a refusal, a warning) goes into a bounded queue; one writer thread owns stderr, drains
//! the queue in batches and flushes when it runs dry, so a burst of records costs one `write` per
//! batch, and a slow reader of stderr (journald restarting, a full pipe) stalls that thread only.
//!
//! When the queue is full the line is dropped and counted rather than blocking the data path;
//! the writer says how many were dropped as soon as it catches up. [`LogGuard`] drains what is
//! queued when wsgate exits (bounded, so a stuck stderr cannot hold the exit).
//!
//! What this does not do: choose what is logged (the `tracing` filter in `logging`) or format
//! lines (tracing-subscriber's `fmt` layer does, on the calling thread, into a per-line buffer).

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Lines the queue holds before new ones are dropped (about 4 MiB of typical records).
pub const QUEUE_LINES: usize = 16 * 1024;
/// How long the exit waits for queued lines to reach stderr.
const DRAIN_AT_EXIT: Duration = Duration::from_secs(2);

enum Item {
    Line(Vec<u8>),
    /// Everything queued before it is written and flushed; then the sender is told.
    Barrier(SyncSender<()>),
}

/// The `MakeWriter` handed to the fmt layer: cheap to call per event.
#[derive(Clone)]
pub struct QueueWriter {
    tx: SyncSender<Item>,
    dropped: Arc<AtomicU64>,
}

/// Drains the queue when dropped (at the end of `main`).
pub struct LogGuard {
    tx: SyncSender<Item>,
}

/// Start the writer thread on `out` (stderr in the product, a pipe in tests).
pub fn spawn<W: Write + Send + 'static>(
    out: W,
    queue: usize,
) -> io::Result<(QueueWriter, LogGuard)> {
    let (tx, rx) = mpsc::sync_channel(queue);
    let dropped = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&dropped);
    std::thread::Builder::new()
        .name("wsgate-log".into())
        .spawn(move || write_loop(rx, out, &counter))?;
    Ok((
        QueueWriter {
            tx: tx.clone(),
            dropped,
        },
        LogGuard { tx },
    ))
}

fn write_loop<W: Write>(rx: Receiver<Item>, out: W, dropped: &AtomicU64) {
    let mut out = io::BufWriter::with_capacity(64 * 1024, out);
    // Errors writing to stderr have nowhere to go: the line is lost, the loop goes on.
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(item) = next {
            match item {
                Item::Line(line) => {
                    let _ = out.write_all(&line);
                }
                Item::Barrier(done) => {
                    note_dropped(&mut out, dropped);
                    let _ = out.flush();
                    let _ = done.send(());
                }
            }
            next = rx.try_recv().ok();
        }
        note_dropped(&mut out, dropped);
        let _ = out.flush();
    }
}

fn note_dropped(out: &mut impl Write, dropped: &AtomicU64) {
    let lost = dropped.swap(0, Ordering::Relaxed);
    if lost > 0 {
        let _ = writeln!(
            out,
            "wsgate: {lost} log lines dropped: stderr could not keep up"
        );
    }
}

impl QueueWriter {
    fn send(&self, line: Vec<u8>) {
        match self.tx.try_send(Item::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            // The writer thread is gone (it never ends before the process): nothing to do.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

/// One event's formatted bytes; queued whole when the fmt layer is done with it.
pub struct Line<'a> {
    buf: Vec<u8>,
    sink: &'a QueueWriter,
}

impl<'a> MakeWriter<'a> for QueueWriter {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line {
            buf: Vec::with_capacity(256),
            sink: self,
        }
    }
}

impl Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Line<'_> {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.sink.send(std::mem::take(&mut self.buf));
        }
    }
}

impl LogGuard {
    /// Wait (bounded) until every line queued so far is written and flushed.
    pub fn drain(&self) {
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        // Unlike a line, the barrier waits for room: the exit is not the data path.
        if send_bounded(&self.tx, Item::Barrier(done_tx)) {
            match done_rx.recv_timeout(DRAIN_AT_EXIT) {
                Ok(()) | Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
            }
        }
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.drain();
    }
}

/// `SyncSender::send` blocks without bound and the exit must not: retry `try_send` for a while.
fn send_bounded(tx: &SyncSender<Item>, mut item: Item) -> bool {
    let deadline = std::time::Instant::now() + DRAIN_AT_EXIT;
    loop {
        match tx.try_send(item) {
            Ok(()) => return true,
            Err(TrySendError::Disconnected(_)) => return false,
            Err(TrySendError::Full(back)) => {
                if std::time::Instant::now() >= deadline {
                    return false;
                }
                item = back;
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A Write that keeps what it got, shared with the test.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn text(sink: &Sink) -> String {
        String::from_utf8(sink.0.lock().expect("not poisoned").clone()).expect("utf-8")
    }

    #[test]
    fn lines_arrive_whole_and_in_order_after_drain() {
        let sink = Sink::default();
        let (writer, guard) = spawn(sink.clone(), 64).expect("thread");
        for i in 0..50 {
            let mut line = writer.make_writer();
            write!(line, "line {i}").expect("buffer");
            writeln!(line, " end").expect("buffer");
        }
        guard.drain();
        let expected: String = (0..50).map(|i| format!("line {i} end\n")).collect();
        assert_eq!(text(&sink), expected);
    }

    /// stderr that does not drain: each write says it started, then waits until released.
    struct Stuck {
        entered: mpsc::Sender<()>,
        gate: Receiver<()>,
        sink: Sink,
    }

    impl Write for Stuck {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            let _ = self.entered.send(());
            let _ = self.gate.recv();
            self.sink.write(b)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_stderr_drops_and_counts_instead_of_blocking() {
        let (release, gate) = mpsc::channel();
        let (entered, writing) = mpsc::channel();
        let sink = Sink::default();
        let stuck = Stuck {
            entered,
            gate,
            sink: sink.clone(),
        };
        let (writer, guard) = spawn(stuck, 4).expect("thread");
        writeln!(writer.make_writer(), "0").expect("buffer");
        writing
            .recv_timeout(Duration::from_secs(10))
            .expect("the writer thread reached stderr");
        // The writer is stuck: far more lines than the queue holds, and none of these may block.
        for i in 1..10_000 {
            writeln!(writer.make_writer(), "{i}").expect("buffer");
        }
        assert!(writer.dropped.load(Ordering::Relaxed) >= 9_995);
        drop(release);
        guard.drain();
        let out = text(&sink);
        assert!(out.starts_with("0\n1\n2\n3\n4\n"), "{out}");
        assert!(out.contains("log lines dropped"), "{out}");
    }
}
