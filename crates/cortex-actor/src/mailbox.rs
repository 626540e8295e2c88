//! A bounded multi-producer mailbox with an explicit overflow policy.
//!
//! One mutex-guarded `VecDeque` of boxed envelopes: the lock is held for a
//! push or a pop only. The actor, the only receiver, waits on an
//! `AtomicWaker` (no lock to wake it); senders waiting for space wait on a
//! `Notify`, which a pop touches only when someone waits. Every send path
//! goes through [`Mailbox::push`], so none bypasses the capacity.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::Poll;

use atomic_waker::AtomicWaker;
use tokio::sync::Notify;

use crate::envelope::BoxEnvelope;

/// What a full mailbox does with one more message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// `tell` and `ask` wait for space (`try_tell` fails fast). The
    /// default.
    #[default]
    Backpressure,
    /// Every send fails at once with `MailboxFull`.
    FailFast,
    /// The oldest queued message becomes a dead letter to make room.
    DropOldest,
    /// The new message becomes a dead letter; the send reports success.
    DropNewest,
}

/// Capacity and overflow policy of an actor's mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxConfig {
    /// Messages held at most; `None` is unbounded (opt-in).
    pub capacity: Option<usize>,
    /// What happens when it is full.
    pub overflow: Overflow,
}

impl Default for MailboxConfig {
    fn default() -> Self {
        Self {
            capacity: Some(1024),
            overflow: Overflow::Backpressure,
        }
    }
}

impl MailboxConfig {
    /// A bounded mailbox with the default (backpressure) policy.
    pub fn bounded(capacity: usize) -> Self {
        Self {
            capacity: Some(capacity),
            ..Self::default()
        }
    }

    /// An unbounded mailbox: senders never wait, memory is the limit.
    pub fn unbounded() -> Self {
        Self {
            capacity: None,
            overflow: Overflow::Backpressure,
        }
    }

    /// The same capacity with another overflow policy.
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }
}

/// A system message other than stop, delivered ahead of the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Restart now (a sibling restarted under one-for-all/rest-for-one).
    Restart(String),
    /// A child escalated: a failure of this actor.
    Failure(String),
}

/// What the actor does next.
pub(crate) enum Next<A> {
    Message(BoxEnvelope<A>),
    Signal(Signal),
    Stop,
}

/// The result of offering one envelope.
pub(crate) enum Push<A> {
    /// Queued; with the envelope evicted to make room, if any.
    Queued(Option<BoxEnvelope<A>>),
    /// Not queued because the mailbox is full; the envelope comes back.
    Full(BoxEnvelope<A>),
    /// Not queued because the mailbox no longer accepts messages.
    Closed(BoxEnvelope<A>),
}

pub(crate) struct Mailbox<A> {
    queue: Mutex<VecDeque<BoxEnvelope<A>>>,
    capacity: usize,
    overflow: Overflow,
    /// No new messages (the actor is stopping or the system draining).
    closed: AtomicBool,
    /// Stop after the current message: a system message that jumps the
    /// queue.
    stop: AtomicBool,
    /// A pending [`Signal`]; the flag saves a lock per message.
    signalled: AtomicBool,
    signal: Mutex<Option<Signal>>,
    len: AtomicUsize,
    /// The actor's task, when it waits for a message.
    receiver: AtomicWaker,
    /// Senders waiting for space, and how many there are.
    space: Notify,
    waiting_senders: AtomicUsize,
}

impl<A> Mailbox<A> {
    pub(crate) fn new(config: MailboxConfig) -> Self {
        let capacity = config.capacity.unwrap_or(usize::MAX);
        Self {
            queue: Mutex::new(VecDeque::with_capacity(capacity.min(64))),
            capacity,
            overflow: config.overflow,
            closed: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            signalled: AtomicBool::new(false),
            signal: Mutex::new(None),
            len: AtomicUsize::new(0),
            receiver: AtomicWaker::new(),
            space: Notify::new(),
            waiting_senders: AtomicUsize::new(0),
        }
    }

    pub(crate) fn overflow(&self) -> Overflow {
        self.overflow
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    // Read only by the health check.
    #[cfg_attr(not(feature = "health"), allow(dead_code))]
    pub(crate) fn is_full(&self) -> bool {
        self.len() >= self.capacity
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<BoxEnvelope<A>>> {
        // A panic never happens while the queue is locked (pushes and pops
        // only), so a poisoned lock still holds a consistent queue.
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Offers `envelope` under the mailbox's policy, never waiting.
    /// `Backpressure` and `FailFast` answer `Full` when full.
    pub(crate) fn push(&self, envelope: BoxEnvelope<A>) -> Push<A> {
        let mut queue = self.lock();
        if self.is_closed() {
            return Push::Closed(envelope);
        }
        let mut evicted = None;
        if queue.len() >= self.capacity {
            match self.overflow {
                Overflow::Backpressure | Overflow::FailFast | Overflow::DropNewest => {
                    return Push::Full(envelope);
                }
                Overflow::DropOldest => evicted = queue.pop_front(),
            }
        }
        queue.push_back(envelope);
        self.len.store(queue.len(), Ordering::Relaxed);
        drop(queue);
        self.receiver.wake();
        Push::Queued(evicted)
    }

    /// Pushes, waiting for space while full (backpressure).
    pub(crate) async fn push_waiting(&self, envelope: BoxEnvelope<A>) -> Push<A> {
        let envelope = match self.push(envelope) {
            Push::Full(back) => back,
            done => return done,
        };
        // Counted before looking again, so a pop after the look sees us.
        self.waiting_senders.fetch_add(1, Ordering::SeqCst);
        let _waiting = WaitingSender(&self.waiting_senders);
        let mut envelope = envelope;
        loop {
            let space = self.space.notified();
            tokio::pin!(space);
            // Registered before looking, so a pop between the look and the
            // wait is not missed.
            space.as_mut().enable();
            match self.push(envelope) {
                Push::Full(back) => envelope = back,
                done => return done,
            }
            space.await;
        }
    }

    /// The next message, or `None` once a stop was requested or the
    /// mailbox is closed and empty.
    pub(crate) async fn recv(&self) -> Next<A> {
        poll_fn(|cx| {
            if let Some(next) = self.try_recv() {
                return Poll::Ready(next);
            }
            self.receiver.register(cx.waker());
            // A push between the look and the registration woke nobody:
            // look again.
            match self.try_recv() {
                Some(next) => Poll::Ready(next),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// `Some(next)` when there is something to do now.
    fn try_recv(&self) -> Option<Next<A>> {
        if self.stop.load(Ordering::Acquire) {
            return Some(Next::Stop);
        }
        if self.signalled.swap(false, Ordering::AcqRel) {
            let signal = self
                .signal
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            if let Some(signal) = signal {
                return Some(Next::Signal(signal));
            }
        }
        let popped = {
            let mut queue = self.lock();
            let popped = queue.pop_front();
            self.len.store(queue.len(), Ordering::Relaxed);
            popped
        };
        if let Some(envelope) = popped {
            if self.waiting_senders.load(Ordering::SeqCst) > 0 {
                self.space.notify_one();
            }
            return Some(Next::Message(envelope));
        }
        self.is_closed().then_some(Next::Stop)
    }

    /// Delivers `signal` ahead of queued messages; a failure outranks a
    /// pending restart.
    pub(crate) fn signal(&self, signal: Signal) {
        {
            let mut pending = self
                .signal
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !matches!(*pending, Some(Signal::Failure(_))) {
                *pending = Some(signal);
            }
        }
        self.signalled.store(true, Ordering::Release);
        self.receiver.wake();
    }

    /// Takes no new messages; queued ones are still delivered.
    pub(crate) fn close(&self) {
        {
            let _queue = self.lock();
            self.closed.store(true, Ordering::Release);
        }
        self.receiver.wake();
        // Wake every blocked sender so it sees the closed mailbox.
        self.space.notify_waiters();
    }

    /// Whether a stop was requested (as opposed to only closing).
    pub(crate) fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Stops after the current message; queued ones become dead letters.
    pub(crate) fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.close();
    }

    /// Everything still queued, for dead-letter reporting.
    pub(crate) fn drain(&self) -> Vec<BoxEnvelope<A>> {
        let mut queue = self.lock();
        self.closed.store(true, Ordering::Release);
        self.len.store(0, Ordering::Relaxed);
        let drained = queue.drain(..).collect();
        drop(queue);
        self.space.notify_waiters();
        drained
    }
}

/// Uncounts a waiting sender however its wait ends (pushed, or dropped by
/// a timeout).
struct WaitingSender<'a>(&'a AtomicUsize);

impl Drop for WaitingSender<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
