//! The order journal: every order's event log, live and finished.
//!
//! Live orders are bounded by the in-flight cap. Finished orders are
//! bounded twice: at most `max_finished` of them, none finished longer ago
//! than `max_age` (whichever bound is hit first evicts the oldest, in the
//! order they finished). One order's log is bounded too: past
//! [`MAX_EVENTS_PER_ORDER`] only its final event is still recorded (an
//! order that waits on an open breaker adds one `payment_unavailable` per
//! retry). Every operation is O(1) amortised, plus the copy of one log.
//!
//! An event is appended once, in its place by `seq`: one whose `seq` the
//! log has is a copy (the bus subscription that feeds the journal sees
//! the events this node's actors appended themselves, and, in a cluster,
//! a redelivered event) and is dropped; one that arrives late (a retried
//! publish stored after a later event) goes before the events it
//! precedes. An order has one final event: a second one, or anything
//! after it, is dropped. The counts of `GET /api/orders` move only when
//! an event is appended, so they count each event once whichever way it
//! came.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::event::{OrderEvent, OrderEventKind, OrderView};

/// The longest log kept for one order.
pub const MAX_EVENTS_PER_ORDER: usize = 256;

/// Every order's event log.
#[derive(Debug)]
pub(super) struct OrderJournal {
    logs: Mutex<Logs>,
    max_finished: usize,
    max_age: Duration,
    counts: Counts,
}

/// Events appended, by kind.
#[derive(Debug, Default)]
pub(super) struct Counts {
    pub(super) created: AtomicU64,
    pub(super) processing: AtomicU64,
    pub(super) completed: AtomicU64,
    pub(super) failed: AtomicU64,
}

impl Counts {
    fn add(&self, kind: &OrderEventKind) {
        let counter = match kind {
            OrderEventKind::Created { .. } => &self.created,
            OrderEventKind::Processing => &self.processing,
            OrderEventKind::Completed => &self.completed,
            OrderEventKind::Failed { .. } => &self.failed,
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Debug, Default)]
struct Logs {
    by_id: HashMap<u64, Vec<OrderEvent>>,
    /// Finished orders' ids with the moment they finished, oldest first.
    finished: VecDeque<(Instant, u64)>,
}

impl OrderJournal {
    pub(super) fn new(max_finished: usize, max_age: Duration) -> Self {
        Self {
            logs: Mutex::default(),
            max_finished,
            max_age,
            counts: Counts::default(),
        }
    }

    /// Adds `event` to its order's log, in `seq` order, unless the log
    /// has it already (that `seq`), or it would be a second final event,
    /// or it comes after the final one; a final event queues the order
    /// for eviction. Whether it was new.
    pub(super) fn append(&self, event: OrderEvent) -> bool {
        let mut logs = self.lock();
        self.append_locked(&mut logs, event)
    }

    /// Ends order `id` with the event `end` makes from its log, if the
    /// order is known and not final: checked and appended in one step, so
    /// a final event arriving meanwhile cannot make two. The event, if
    /// appended.
    pub(super) fn end_if_open(
        &self,
        id: u64,
        end: impl FnOnce(&[OrderEvent]) -> Option<OrderEvent>,
    ) -> Option<OrderEvent> {
        let mut logs = self.lock();
        let log = logs.by_id.get(&id)?;
        if log.last().is_some_and(|last| last.kind.is_final()) {
            return None;
        }
        let event = end(log)?;
        self.append_locked(&mut logs, event.clone())
            .then_some(event)
    }

    fn append_locked(&self, logs: &mut Logs, event: OrderEvent) -> bool {
        let now = Instant::now();
        let id = event.order_id;
        let is_final = event.kind.is_final();
        let log = logs.by_id.entry(id).or_default();
        // Sorted by `seq`; a final event, once there, is the last.
        let Err(at) = log.binary_search_by_key(&event.seq, |logged| logged.seq) else {
            return false;
        };
        if log
            .last()
            .is_some_and(|last| last.kind.is_final() && (is_final || event.seq > last.seq))
        {
            return false;
        }
        self.counts.add(&event.kind);
        if log.len() < MAX_EVENTS_PER_ORDER || is_final {
            log.insert(at, event);
        }
        if is_final {
            logs.finished.push_back((now, id));
        }
        self.evict(logs, now);
        true
    }

    /// Events appended so far, by kind.
    pub(super) fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Order `id`'s events, oldest first, while it is kept.
    pub(super) fn events(&self, id: u64) -> Option<Vec<OrderEvent>> {
        let mut logs = self.lock();
        self.evict(&mut logs, Instant::now());
        logs.by_id.get(&id).cloned()
    }

    /// Order `id` as its events make it, while it is kept.
    pub(super) fn view(&self, id: u64) -> Option<OrderView> {
        let mut logs = self.lock();
        self.evict(&mut logs, Instant::now());
        logs.by_id
            .get(&id)
            .map(|events| OrderView::replay(id, events))
    }

    /// How many finished orders are kept now.
    pub(super) fn finished_len(&self) -> usize {
        let mut logs = self.lock();
        self.evict(&mut logs, Instant::now());
        logs.finished.len()
    }

    fn evict(&self, logs: &mut Logs, now: Instant) {
        while let Some(&(finished, id)) = logs.finished.front() {
            let too_many = logs.finished.len() > self.max_finished;
            let too_old = now.saturating_duration_since(finished) >= self.max_age;
            if !too_many && !too_old {
                break;
            }
            logs.finished.pop_front();
            logs.by_id.remove(&id);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Logs> {
        // The logs stay consistent whatever panicked while holding them.
        self.logs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::event::{FailureKind, OrderEventKind, OrderState};

    fn event(order_id: u64, seq: u32, kind: OrderEventKind) -> OrderEvent {
        OrderEvent {
            order_id,
            seq,
            at_ms: 0,
            trace_id: None,
            kind,
        }
    }

    fn created(order_id: u64) -> OrderEvent {
        event(
            order_id,
            1,
            OrderEventKind::Created {
                item: "x".into(),
                quantity: 1,
            },
        )
    }

    #[test]
    fn a_long_wait_keeps_the_log_bounded_and_the_final_event() {
        let journal = OrderJournal::new(10, Duration::from_secs(60));
        journal.append(created(1));
        for seq in 2..1_000 {
            journal.append(event(
                1,
                seq,
                OrderEventKind::PaymentUnavailable { retry_after_ms: 1 },
            ));
        }
        journal.append(event(
            1,
            1_000,
            OrderEventKind::Failed {
                kind: FailureKind::Unavailable,
                reason: "breaker open".into(),
            },
        ));
        let events = journal.events(1).unwrap();
        assert_eq!(events.len(), MAX_EVENTS_PER_ORDER + 1);
        assert_eq!(journal.view(1).unwrap().state, OrderState::Failed);
    }

    #[test]
    fn an_event_is_appended_and_counted_once() {
        let journal = OrderJournal::new(10, Duration::from_secs(60));
        assert!(journal.append(created(1)));
        assert!(!journal.append(created(1)));
        assert!(journal.append(event(1, 2, OrderEventKind::Processing)));
        assert!(!journal.append(created(1)));
        assert!(journal.append(event(1, 4, OrderEventKind::Completed)));
        // Nothing after the final event, and no second final event.
        assert!(!journal.append(event(1, 5, OrderEventKind::Processing)));
        assert!(!journal.append(event(
            1,
            5,
            OrderEventKind::Failed {
                kind: FailureKind::Abandoned,
                reason: "late".into()
            }
        )));
        // A late event before the final one goes in its place.
        assert!(journal.append(event(
            1,
            3,
            OrderEventKind::PaymentSucceeded { attempts: 1 }
        )));
        let seqs: Vec<u32> = journal.events(1).unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4]);
        // Ending an order that is final does nothing.
        assert_eq!(journal.end_if_open(1, |_| unreachable!()), None);
        let counts = journal.counts();
        assert_eq!(counts.completed.load(Ordering::Relaxed), 1);
        assert_eq!(counts.failed.load(Ordering::Relaxed), 0);
        assert_eq!(counts.created.load(Ordering::Relaxed), 1);
        assert_eq!(counts.processing.load(Ordering::Relaxed), 1);
        assert_eq!(counts.completed.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn finished_orders_are_evicted_oldest_first_and_live_ones_never() {
        let journal = OrderJournal::new(2, Duration::from_secs(60));
        journal.append(created(99));
        for id in 1..=3 {
            journal.append(created(id));
            journal.append(event(id, 2, OrderEventKind::Completed));
        }
        assert!(journal.events(1).is_none());
        assert_eq!(journal.view(2).unwrap().state, OrderState::Completed);
        assert_eq!(journal.finished_len(), 2);
        assert_eq!(journal.view(99).unwrap().state, OrderState::Pending);
    }
}
