//! Wall-clock deadlines: one watchdog thread per engine interrupts calls
//! that outlive theirs.
//!
//! wasmer 7's interrupt (`experimental-host-interrupt`) signals the thread
//! running the guest and is best effort: it does nothing if the guest is
//! between calls or in a host function at that instant. So the watchdog
//! interrupts an overdue call every millisecond until the call ends and
//! deregisters. The call path pays one lock to register and one to
//! deregister, and only when a deadline is configured; it wakes the
//! watchdog only when its deadline comes before the watchdog's own
//! wake-up (the first call of a quiet spell).

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

/// How often an overdue call is interrupted again until it ends.
const RETRY: Duration = Duration::from_millis(1);

#[cfg(all(unix, feature = "interrupt"))]
pub(crate) type Interrupter = wasmer::Interrupter;

/// Without the `interrupt` feature no deadline can be configured, so no
/// entry is ever registered.
#[cfg(not(all(unix, feature = "interrupt")))]
#[derive(Debug, Clone)]
pub(crate) struct Interrupter;

#[cfg(not(all(unix, feature = "interrupt")))]
impl Interrupter {
    /// Stands in for wasmer's `Interrupter::interrupt`, same signature.
    #[allow(clippy::unused_self)]
    fn interrupt(&self) {}
}

struct Entry {
    deadline: Instant,
    interrupter: Interrupter,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct State {
    entries: BTreeMap<u64, Entry>,
    next_id: u64,
    watchdog_started: bool,
    /// When the sleeping watchdog will wake on its own (`None`: awake).
    /// A call whose deadline is later needs no wake-up: with one deadline
    /// per engine, that is every call but the first of a quiet spell.
    sleeping_until: Option<Instant>,
}

/// The calls with a deadline now running on one engine's instances.
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    state: Mutex<State>,
    changed: Condvar,
}

impl Deadlines {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Watches a call until the returned guard drops.
    pub(crate) fn watch(self: &Arc<Self>, deadline: Instant, interrupter: &Interrupter) -> Watch {
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        state.entries.insert(
            id,
            Entry {
                deadline,
                interrupter: interrupter.clone(),
            },
        );
        if !state.watchdog_started {
            let weak = Arc::downgrade(self);
            let started = std::thread::Builder::new()
                .name("cortex-wasm-deadline".to_owned())
                .spawn(move || watchdog(&weak))
                .is_ok();
            state.watchdog_started = started;
            if !started {
                tracing::error!(
                    "cannot start the wasm deadline watchdog; deadlines are not enforced"
                );
            }
        }
        let wake = state
            .sleeping_until
            .is_some_and(|sleeping_until| deadline < sleeping_until);
        drop(state);
        if wake {
            self.changed.notify_one();
        }
        Watch {
            deadlines: Arc::clone(self),
            id,
        }
    }
}

/// Deregisters a call when it ends.
#[derive(Debug)]
pub(crate) struct Watch {
    deadlines: Arc<Deadlines>,
    id: u64,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.deadlines.lock().entries.remove(&self.id);
    }
}

/// Sleeps until the earliest deadline, then interrupts every overdue call
/// (again each millisecond while it runs). Exits once the engine is gone.
fn watchdog(deadlines: &Weak<Deadlines>) {
    loop {
        let Some(deadlines) = deadlines.upgrade() else {
            return;
        };
        let mut state = deadlines.lock();
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        for entry in state.entries.values() {
            if entry.deadline <= now {
                entry.interrupter.interrupt();
                next = Some(next.map_or(now + RETRY, |next| next.min(now + RETRY)));
            } else {
                next = Some(next.map_or(entry.deadline, |next| next.min(entry.deadline)));
            }
        }
        // Wake at least once a second to notice a dropped engine.
        let wait = next.map_or(Duration::from_secs(1), |next| {
            next.saturating_duration_since(now)
                .min(Duration::from_secs(1))
        });
        // Calls with an earlier deadline than this wake us (`watch`).
        state.sleeping_until = Some(now + wait);
        state = deadlines
            .changed
            .wait_timeout(state, wait)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
        state.sleeping_until = None;
        drop(state);
    }
}
