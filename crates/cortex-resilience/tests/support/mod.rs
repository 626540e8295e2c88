//! Test support shared by the distributed rate limiter's test files.

#![allow(dead_code, unreachable_pub)] // each test file uses a part

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};

use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Counts this crate's warn and info events: the log is asserted by
/// expectation (how many of which level), not by matching text.
#[derive(Clone, Default)]
pub struct LogCount {
    counts: Arc<[AtomicUsize; 2]>,
}

thread_local! {
    /// The counter of the test running on this thread, if it wants one.
    static CURRENT: RefCell<Option<LogCount>> = const { RefCell::new(None) };
}

/// Counting stops when this drops.
pub struct LogGuard;

impl Drop for LogGuard {
    fn drop(&mut self) {
        CURRENT.set(None);
    }
}

impl LogCount {
    /// Counts the events of the current thread until the guard drops
    /// (a current-thread runtime runs every task on it).
    ///
    /// One global subscriber forwards to the thread's counter, rather than
    /// a scoped `set_default` per test: a callsite first hit on another
    /// test's thread while a scoped subscriber is being installed can
    /// cache "never" and lose events.
    pub fn install(&self) -> LogGuard {
        static GLOBAL: Once = Once::new();
        GLOBAL.call_once(|| {
            tracing::subscriber::set_global_default(Forward)
                .expect("no other global subscriber in this test binary");
        });
        CURRENT.set(Some(self.clone()));
        LogGuard
    }

    pub fn warnings(&self) -> usize {
        self.counts[0].load(Ordering::Relaxed)
    }

    pub fn infos(&self) -> usize {
        self.counts[1].load(Ordering::Relaxed)
    }

    fn count(&self, event: &Event<'_>) {
        let metadata = event.metadata();
        if !metadata.target().starts_with("cortex_resilience") {
            return;
        }
        let index = match *metadata.level() {
            Level::WARN => 0,
            Level::INFO => 1,
            _ => return,
        };
        self.counts[index].fetch_add(1, Ordering::Relaxed);
    }
}

/// The global subscriber: hands each event to its thread's counter.
struct Forward;

impl Subscriber for Forward {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        CURRENT.with_borrow(|current| {
            if let Some(logs) = current {
                logs.count(event);
            }
        });
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// A `redis://` URL of a loopback port nothing listens on: bound, then
/// released.
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("redis://{address}")
}
