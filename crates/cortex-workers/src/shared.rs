//! The state every worker thread, the watchdog and every pool handle share:
//! the queue, the intake gate, the worker table and the counters.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::config::Settings;
use crate::error::{JobError, WorkersError};
use crate::job::{JobControl, Task, lock};

/// What travels on the queue.
pub(crate) enum Message {
    Job(Box<dyn Task>),
    /// One worker exits (graceful shutdown: sent after the last job).
    Stop,
    /// Wakes an idle worker to look at the front slot (see `sweep`).
    Nudge,
}

/// The intake gate's closed bit; the bits below count submitters inside
/// `enqueue`.
const CLOSED: usize = 1 << (usize::BITS - 1);

/// Why `enqueue` refused.
pub(crate) enum Refusal {
    Full,
    Closed,
}

/// A job a worker thread runs now, as the watchdog and shutdown see it.
#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) control: Arc<dyn JobControl>,
    pub(crate) deadline: Option<Instant>,
    /// When the watchdog or shutdown answered the caller without it.
    pub(crate) abandoned_at: Option<Instant>,
}

/// Per-thread outcome counters: written by one worker only, so the job path
/// touches no shared cache line; summed under the state lock.
#[derive(Debug, Default)]
pub(crate) struct SlotCounts {
    pub(crate) completed: AtomicU64,
    pub(crate) panicked: AtomicU64,
    pub(crate) expired: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    pub(crate) wait_nanos: AtomicU64,
    pub(crate) run_nanos: AtomicU64,
}

/// One worker thread's place in the table.
#[derive(Debug)]
pub(crate) struct WorkerSlot {
    pub(crate) running: Mutex<Option<Running>>,
    /// The running job's deadline in nanoseconds since the pool started,
    /// 0 for none: what the watchdog re-reads before it parks.
    pub(crate) deadline_nanos: AtomicU64,
    /// Detached: its job outlived the grace period and a replacement runs.
    pub(crate) zombie: AtomicBool,
    /// The thread has left the table and is about to end (joinable).
    pub(crate) exited: AtomicBool,
    pub(crate) counts: SlotCounts,
}

/// Totals of counters that are not per thread.
#[derive(Debug, Default)]
pub(crate) struct PoolCounts {
    pub(crate) submitted: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) timed_out: AtomicU64,
    /// Expired by the watchdog's sweep (the workers count their own).
    pub(crate) expired: AtomicU64,
    /// Cancelled by shutdown (the workers count the callers' cancels).
    pub(crate) cancelled: AtomicU64,
    /// Zombies replaced by a new thread.
    pub(crate) replaced: AtomicU64,
}

/// The worker table, under one lock.
#[derive(Debug, Default)]
pub(crate) struct PoolState {
    /// Every thread still running: live workers and zombies.
    pub(crate) slots: Vec<Arc<WorkerSlot>>,
    /// Every worker thread not joined yet, with its slot.
    pub(crate) threads: Vec<(Arc<WorkerSlot>, JoinHandle<()>)>,
    pub(crate) watchdog: Option<JoinHandle<()>>,
    pub(crate) next_thread: usize,
    /// Workers taking jobs.
    pub(crate) live: usize,
    pub(crate) zombies: usize,
    /// Workers lost to zombies past the cap, restored when a zombie returns.
    pub(crate) deficit: usize,
    pub(crate) stopping: bool,
    /// Counters of threads that have exited.
    pub(crate) retired: RetiredCounts,
}

/// Plain totals of exited threads' [`SlotCounts`].
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RetiredCounts {
    pub(crate) completed: u64,
    pub(crate) panicked: u64,
    pub(crate) expired: u64,
    pub(crate) cancelled: u64,
    pub(crate) wait_nanos: u64,
    pub(crate) run_nanos: u64,
}

impl RetiredCounts {
    pub(crate) fn add(&mut self, counts: &SlotCounts) {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        self.completed += load(&counts.completed);
        self.panicked += load(&counts.panicked);
        self.expired += load(&counts.expired);
        self.cancelled += load(&counts.cancelled);
        self.wait_nanos += load(&counts.wait_nanos);
        self.run_nanos += load(&counts.run_nanos);
    }
}

#[cfg(feature = "metrics")]
#[derive(Debug)]
pub(crate) struct Histograms {
    pub(crate) wait: cortex_metrics::Histogram,
    pub(crate) run: cortex_metrics::Histogram,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) name: Arc<str>,
    pub(crate) settings: Settings,
    pub(crate) started_at: Instant,
    pub(crate) tx: Sender<Message>,
    pub(crate) rx: Receiver<Message>,
    /// `CLOSED` | submitters inside `enqueue`.
    intake: AtomicUsize,
    pub(crate) counts: PoolCounts,
    /// Async submitters waiting for room.
    pub(crate) async_waiters: AtomicUsize,
    pub(crate) async_room: tokio::sync::Notify,
    /// Blocking submitters waiting for room.
    pub(crate) blocking_waiters: AtomicUsize,
    pub(crate) blocking_room: (Mutex<()>, Condvar),
    /// A job the TTL sweep took off the queue's head unexpired: it runs
    /// before anything still in the queue.
    pub(crate) front: Mutex<Option<Box<dyn Task>>>,
    pub(crate) front_full: AtomicBool,
    pub(crate) state: Mutex<PoolState>,
    /// Signalled whenever a thread exits.
    pub(crate) exited: Condvar,
    /// Set by `shutdown_now` and after a graceful deadline: workers exit
    /// after their current job instead of taking another.
    pub(crate) stop_now: AtomicBool,
    pub(crate) watchdog: OnceLock<Thread>,
    /// When the parked watchdog wakes, in nanoseconds since `started_at`
    /// (`u64::MAX` = only when unparked, 0 = awake).
    pub(crate) watchdog_until: AtomicU64,
    pub(crate) watchdog_stop: AtomicBool,
    /// The first shutdown's report, handed to later calls.
    pub(crate) shutdown_report: Mutex<Option<crate::shutdown::ShutdownReport>>,
    #[cfg(feature = "metrics")]
    pub(crate) histograms: OnceLock<Histograms>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Job(_) => "Job",
            Self::Stop => "Stop",
            Self::Nudge => "Nudge",
        })
    }
}

impl std::fmt::Debug for dyn Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("enqueued_at", &self.enqueued_at())
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(name: String, settings: Settings) -> Self {
        let (tx, rx) = crossbeam_channel::bounded(settings.queue_capacity);
        Self {
            name: name.into(),
            settings,
            started_at: Instant::now(),
            tx,
            rx,
            intake: AtomicUsize::new(0),
            counts: PoolCounts::default(),
            async_waiters: AtomicUsize::new(0),
            async_room: tokio::sync::Notify::new(),
            blocking_waiters: AtomicUsize::new(0),
            blocking_room: (Mutex::new(()), Condvar::new()),
            front: Mutex::new(None),
            front_full: AtomicBool::new(false),
            state: Mutex::new(PoolState::default()),
            exited: Condvar::new(),
            stop_now: AtomicBool::new(false),
            watchdog: OnceLock::new(),
            watchdog_until: AtomicU64::new(0),
            watchdog_stop: AtomicBool::new(false),
            shutdown_report: Mutex::new(None),
            #[cfg(feature = "metrics")]
            histograms: OnceLock::new(),
        }
    }

    /// Puts `task` on the queue unless it is full or intake is closed.
    pub(crate) fn enqueue(&self, task: Box<dyn Task>) -> Result<(), (Box<dyn Task>, Refusal)> {
        // Entering the gate and checking it closed is one atomic step;
        // `close_intake` waits for the count to reach zero, so no job can
        // land in the queue after shutdown's final drain.
        if self.intake.fetch_add(1, Ordering::SeqCst) & CLOSED != 0 {
            self.intake.fetch_sub(1, Ordering::SeqCst);
            return Err((task, Refusal::Closed));
        }
        let sent = self.tx.try_send(Message::Job(task));
        self.intake.fetch_sub(1, Ordering::SeqCst);
        match sent {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(Message::Job(task))) => Err((task, Refusal::Full)),
            Err(TrySendError::Disconnected(Message::Job(task))) => Err((task, Refusal::Closed)),
            Err(_) => unreachable!("try_send returns the message it was given"),
        }
    }

    /// Closes intake and waits out submitters already inside `enqueue`
    /// (a few instructions each); then wakes every waiting submitter so it
    /// sees the gate closed.
    pub(crate) fn close_intake(&self) {
        self.intake.fetch_or(CLOSED, Ordering::SeqCst);
        while self.intake.load(Ordering::SeqCst) != CLOSED {
            std::thread::yield_now();
        }
        self.async_room.notify_waiters();
        let _guard = lock(&self.blocking_room.0);
        self.blocking_room.1.notify_all();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.intake.load(Ordering::SeqCst) & CLOSED != 0
    }

    /// A worker took a message: wake a submitter waiting for room.
    pub(crate) fn room_freed(&self) {
        // Pairs with the fence a waiting submitter issues between counting
        // itself and retrying: either it sees the room, or we see it.
        fence(Ordering::SeqCst);
        if self.async_waiters.load(Ordering::Relaxed) > 0 {
            self.async_room.notify_one();
        }
        if self.blocking_waiters.load(Ordering::Relaxed) > 0 {
            let _guard = lock(&self.blocking_room.0);
            self.blocking_room.1.notify_all();
        }
    }

    /// The next message for a worker: the front slot first, else the queue.
    pub(crate) fn take(&self) -> Option<Message> {
        if self.front_full.load(Ordering::Acquire)
            && let Some(task) = lock(&self.front).take()
        {
            self.front_full.store(false, Ordering::Release);
            return Some(Message::Job(task));
        }
        self.rx.recv().ok()
    }

    /// Jobs waiting: the queue (less `Stop`/`Nudge` markers, which are
    /// rare) plus the front slot.
    pub(crate) fn queue_len(&self) -> usize {
        self.rx.len() + usize::from(self.front_full.load(Ordering::Acquire))
    }

    pub(crate) fn nanos_since_start(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.started_at).as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Starts one worker thread (under the state lock the caller holds).
    pub(crate) fn spawn_worker(
        self: &Arc<Self>,
        state: &mut PoolState,
    ) -> Result<(), WorkersError> {
        let slot = Arc::new(WorkerSlot {
            running: Mutex::new(None),
            deadline_nanos: AtomicU64::new(0),
            zombie: AtomicBool::new(false),
            exited: AtomicBool::new(false),
            counts: SlotCounts::default(),
        });
        state.next_thread += 1;
        let mut builder = std::thread::Builder::new().name(format!(
            "{}-{}",
            self.settings.thread_name, state.next_thread
        ));
        if let Some(bytes) = self.settings.stack_size {
            builder = builder.stack_size(bytes);
        }
        let shared = Arc::clone(self);
        let thread_slot = Arc::clone(&slot);
        let thread = builder
            .spawn(move || crate::worker::run(&shared, &thread_slot))
            .map_err(|source| WorkersError::Spawn {
                pool: self.name.to_string(),
                source,
            })?;
        state.slots.push(Arc::clone(&slot));
        state.threads.push((slot, thread));
        state.live += 1;
        Ok(())
    }

    /// Wakes the watchdog if it sleeps past `deadline`.
    pub(crate) fn watch_deadline(&self, slot: &WorkerSlot, deadline: Instant) {
        let nanos = self.nanos_since_start(deadline);
        slot.deadline_nanos.store(nanos, Ordering::SeqCst);
        // Pairs with the watchdog's store-then-recheck: either it sees this
        // deadline before parking, or we see when it wakes and unpark it.
        if nanos < self.watchdog_until.load(Ordering::SeqCst)
            && let Some(watchdog) = self.watchdog.get()
        {
            watchdog.unpark();
        }
    }

    /// Answers every running job with `error` (counted as cancelled),
    /// fires its token and starts its grace period (shutdown).
    pub(crate) fn abandon_running(&self, error: &JobError) -> u64 {
        let slots = lock(&self.state).slots.clone();
        let now = Instant::now();
        let mut answered = 0;
        for slot in slots {
            if let Some(running) = lock(&slot.running).as_mut() {
                running.control.cancel();
                if running.control.fail(error.clone(), &self.counts.cancelled) {
                    answered += 1;
                }
                running.abandoned_at.get_or_insert(now);
            }
        }
        answered
    }

    /// Answers every queued job with `ShuttingDown` and counts it (and
    /// any its caller had cancelled) as cancelled; returns how many it
    /// answered.
    pub(crate) fn drain_queue(&self) -> u64 {
        let mut answered = 0;
        let mut drop_task = |task: Box<dyn Task>| {
            if task.drop_with(JobError::ShuttingDown, &self.counts.cancelled) {
                answered += 1;
            } else {
                // Its caller had cancelled it.
                self.counts.cancelled.fetch_add(1, Ordering::Relaxed);
            }
        };
        if let Some(task) = lock(&self.front).take() {
            self.front_full.store(false, Ordering::Release);
            drop_task(task);
        }
        while let Ok(message) = self.rx.try_recv() {
            if let Message::Job(task) = message {
                drop_task(task);
            }
        }
        answered
    }

    /// How long the watchdog's TTL sweep waits between looks at the head
    /// of a non-empty queue: a quarter of the TTL, 1 ms to 1 s.
    pub(crate) fn sweep_period(ttl: Duration) -> Duration {
        (ttl / 4).clamp(Duration::from_millis(1), Duration::from_secs(1))
    }
}
