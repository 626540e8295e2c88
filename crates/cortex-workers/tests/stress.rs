//! A bounded multi-thread stress test with exact accounting: submitters
//! race `try_submit`, `submit_blocking` and `cancel` against jobs that
//! complete, panic, overrun the run timeout (cooperatively) and expire in
//! the queue, while a shutdown lands in the middle. Every handle must
//! resolve, and the pool's counters must equal what the callers saw,
//! outcome by outcome.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use cortex_workers::{JobError, Shutdown, SubmitError, WorkerPool};

/// What the callers saw.
#[derive(Debug, Default)]
struct Seen {
    completed: AtomicU64,
    panicked: AtomicU64,
    timed_out: AtomicU64,
    expired: AtomicU64,
    cancelled: AtomicU64,
    rejected: AtomicU64,
}

/// xorshift64*: a deterministic mix of operations per seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn run_round(seed: u64) {
    let pool = WorkerPool::builder("stress")
        .workers(3)
        .queue_capacity(8)
        .queue_ttl(Duration::from_millis(15))
        .run_timeout(Duration::from_millis(5))
        .grace(Duration::from_secs(10))
        .build()
        .unwrap();
    let seen = Arc::new(Seen::default());
    let submitters = 8;
    let start = Arc::new(Barrier::new(submitters + 1));
    let threads: Vec<_> = (0..submitters as u64)
        .map(|submitter| {
            let (pool, seen, start) = (pool.clone(), Arc::clone(&seen), Arc::clone(&start));
            std::thread::spawn(move || {
                let mut rng = Rng(seed * 31 + submitter + 1);
                start.wait();
                let mut handles = Vec::new();
                for _ in 0..150 {
                    let kind = rng.next() % 10;
                    let job = move || -> u64 {
                        match kind {
                            // Panics.
                            0 => panic!("stress panic"),
                            // Overruns the run timeout but watches its token.
                            1 => {
                                while !cortex_workers::is_cancelled() {
                                    std::thread::sleep(Duration::from_micros(200));
                                }
                                1
                            }
                            // A little work.
                            2..=4 => {
                                std::thread::sleep(Duration::from_micros(300));
                                2
                            }
                            _ => 3,
                        }
                    };
                    let submitted = if rng.next().is_multiple_of(3) {
                        pool.submit_blocking(job, Some(Duration::from_millis(2)))
                    } else {
                        pool.try_submit(job)
                    };
                    match submitted {
                        Ok(handle) => {
                            if rng.next().is_multiple_of(8) {
                                handle.cancel();
                            }
                            handles.push(handle);
                        }
                        Err(
                            SubmitError::QueueFull(_)
                            | SubmitError::TimedOut(_)
                            | SubmitError::ShuttingDown(_),
                        ) => {
                            seen.rejected.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(other) => panic!("unknown refusal {other:?}"),
                    }
                }
                for handle in handles {
                    let counter = match handle.wait() {
                        Ok(_) => &seen.completed,
                        Err(JobError::Panicked(_)) => &seen.panicked,
                        Err(JobError::TimedOut { .. }) => &seen.timed_out,
                        Err(JobError::Expired) => &seen.expired,
                        Err(JobError::Cancelled | JobError::ShuttingDown) => &seen.cancelled,
                        Err(other) => panic!("unknown outcome {other:?}"),
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    start.wait();
    // Shut down while the submitters are mid-stream (seed-dependent).
    std::thread::sleep(Duration::from_millis(5 + seed % 20));
    let report = pool.shutdown_blocking(Shutdown::Graceful {
        timeout: Duration::from_millis(20),
    });
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(
        report.detached_threads, 0,
        "every job here returns: {report:?}"
    );
    let stats = pool.stats();
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    assert_eq!(stats.submitted, submitters as u64 * 150, "seed {seed}");
    assert_eq!(
        stats.completed,
        load(&seen.completed),
        "seed {seed}: {stats:#?}"
    );
    assert_eq!(
        stats.panicked,
        load(&seen.panicked),
        "seed {seed}: {stats:#?}"
    );
    assert_eq!(
        stats.timed_out,
        load(&seen.timed_out),
        "seed {seed}: {stats:#?}"
    );
    assert_eq!(
        stats.expired,
        load(&seen.expired),
        "seed {seed}: {stats:#?}"
    );
    assert_eq!(
        stats.cancelled,
        load(&seen.cancelled),
        "seed {seed}: {stats:#?}"
    );
    assert_eq!(
        stats.rejected,
        load(&seen.rejected),
        "seed {seed}: {stats:#?}"
    );
    assert_eq!(
        (stats.workers, stats.zombies, stats.queue_len),
        (0, 0, 0),
        "seed {seed}"
    );
}

#[test]
fn racing_submitters_cancels_timeouts_expiries_and_shutdown_account_exactly() {
    for seed in 0..12 {
        run_round(seed);
    }
}

/// Jobs that ignore their token overrun a tiny run timeout and grace, so
/// threads turn zombie, get replaced, return and rejoin or exit while
/// submitters keep the queue full. Throughout, threads stay within
/// `workers + max_zombies`; at the end every outcome is accounted for and
/// no thread is left.
#[test]
fn zombie_replacement_racing_returning_jobs_keeps_the_thread_bound() {
    for seed in 0..4_u64 {
        let pool = WorkerPool::builder("zombies")
            .workers(2)
            .max_zombies(1)
            .queue_capacity(4)
            .run_timeout(Duration::from_millis(2))
            .grace(Duration::from_millis(1))
            .build()
            .unwrap();
        let seen = Arc::new(Seen::default());
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let monitor = {
            let (pool, done) = (pool.clone(), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut peak = 0;
                while !done.load(Ordering::SeqCst) {
                    let stats = pool.stats();
                    peak = peak.max(stats.workers + stats.zombies);
                    assert!(stats.workers <= 2, "{stats:#?}");
                    std::thread::sleep(Duration::from_micros(200));
                }
                peak
            })
        };
        let submitters: Vec<_> = (0..4_u64)
            .map(|submitter| {
                let (pool, seen) = (pool.clone(), Arc::clone(&seen));
                std::thread::spawn(move || {
                    let mut rng = Rng(seed * 101 + submitter + 7);
                    let handles: Vec<_> = (0..60)
                        .map(|_| {
                            let sleep = Duration::from_micros(rng.next() % 6_000);
                            pool.submit_blocking(move || std::thread::sleep(sleep), None)
                                .expect("blocking submission waits for room")
                        })
                        .collect();
                    for handle in handles {
                        let counter = match handle.wait() {
                            Ok(()) => &seen.completed,
                            Err(JobError::TimedOut { .. }) => &seen.timed_out,
                            Err(other) => panic!("unexpected outcome {other:?}"),
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for submitter in submitters {
            submitter.join().unwrap();
        }
        // Every job is finite: the zombies return and the pool heals.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while pool.stats().zombies > 0 || pool.stats().workers < 2 {
            assert!(std::time::Instant::now() < deadline, "{:#?}", pool.stats());
            std::thread::sleep(Duration::from_millis(1));
        }
        done.store(true, Ordering::SeqCst);
        let peak = monitor.join().unwrap();
        assert!(
            peak <= 3,
            "threads peaked at {peak}, over workers + max_zombies"
        );
        let report = pool.shutdown_blocking(Shutdown::Graceful {
            timeout: Duration::from_secs(10),
        });
        assert!(report.drained && report.detached_threads == 0, "{report:?}");
        let stats = pool.stats();
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        assert_eq!(stats.submitted, 240);
        assert!(
            stats.replaced > 0,
            "the race under test happened: {stats:#?}"
        );
        assert_eq!(
            stats.completed,
            load(&seen.completed),
            "seed {seed}: {stats:#?}"
        );
        assert_eq!(
            stats.timed_out,
            load(&seen.timed_out),
            "seed {seed}: {stats:#?}"
        );
        assert_eq!(
            stats.submitted,
            stats.completed + stats.timed_out,
            "seed {seed}: {stats:#?}"
        );
    }
}
