//! No thread outlives its pool: counted in `/proc/self/task` (Linux).
//! One test in this binary, so no other test's threads are counted.

#![cfg(target_os = "linux")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cortex_workers::{JobError, Shutdown, WorkerPool};

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// Threads end a moment after they are joined or leave on their own.
fn settle_to(expected: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while threads() != expected {
        assert!(
            Instant::now() < deadline,
            "{} threads, expected {expected}",
            threads()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn no_thread_outlives_its_pool() {
    let baseline = threads();

    // Panics, a cooperative timeout, a graceful drain.
    // (The timeout leaves room for the panic hook's backtrace.)
    let pool = WorkerPool::builder("leak-1")
        .workers(3)
        .run_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    assert_eq!(threads(), baseline + 4, "3 workers and the watchdog");
    let panicked = pool.try_submit(|| -> u8 { panic!("x") }).unwrap();
    let looping = pool
        .try_submit(|| {
            while !cortex_workers::is_cancelled() {
                std::thread::sleep(Duration::from_millis(1));
            }
        })
        .unwrap();
    assert!(matches!(panicked.wait(), Err(JobError::Panicked(_))));
    assert!(matches!(looping.wait(), Err(JobError::TimedOut { .. })));
    let report = pool.shutdown_blocking(Shutdown::Graceful {
        timeout: Duration::from_secs(10),
    });
    assert_eq!(report.detached_threads, 0);
    assert_eq!(threads(), baseline, "joined before the report");

    // A zombie and its replacement: once the stuck job returns, both end.
    let release = Arc::new(AtomicBool::new(false));
    let pool = WorkerPool::builder("leak-2")
        .workers(1)
        .run_timeout(Duration::from_millis(10))
        .grace(Duration::from_millis(10))
        .build()
        .unwrap();
    let hold = Arc::clone(&release);
    let stuck = pool
        .try_submit(move || {
            while !hold.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
        })
        .unwrap();
    assert!(matches!(stuck.wait(), Err(JobError::TimedOut { .. })));
    let deadline = Instant::now() + Duration::from_secs(10);
    while pool.stats().replaced == 0 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(threads(), baseline + 3, "worker, zombie and watchdog");
    let report = pool.shutdown_now();
    assert_eq!(
        report.detached_threads, 1,
        "the zombie is reported, not hidden"
    );
    release.store(true, Ordering::SeqCst);
    settle_to(baseline);

    // shutdown_now with cooperative running jobs and a queue.
    let pool = WorkerPool::builder("leak-3").workers(2).build().unwrap();
    let running: Vec<_> = (0..2)
        .map(|_| {
            pool.try_submit(|| {
                while !cortex_workers::is_cancelled() {
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
            .unwrap()
        })
        .collect();
    let queued: Vec<_> = (0..4)
        .map(|n| pool.try_submit(move || n).unwrap())
        .collect();
    // Both workers are inside the looping jobs before shutting down.
    let deadline = Instant::now() + Duration::from_secs(10);
    while pool.stats().busy < 2 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(1));
    }
    let report = pool.shutdown_now();
    assert_eq!((report.cancelled_running, report.cancelled_queued), (2, 4));
    assert_eq!(report.detached_threads, 0);
    assert_eq!(threads(), baseline);
    for handle in running {
        assert_eq!(handle.wait(), Err(JobError::ShuttingDown));
    }
    for handle in queued {
        assert_eq!(handle.wait(), Err(JobError::ShuttingDown));
    }

    // Dropped without shutdown: the queue drains and the threads end.
    let pool = WorkerPool::builder("leak-4").workers(2).build().unwrap();
    let handles: Vec<_> = (0..8_u64)
        .map(|n| pool.try_submit(move || n * 2).unwrap())
        .collect();
    drop(pool);
    for (n, handle) in (0..).zip(handles) {
        assert_eq!(
            handle.wait(),
            Ok(n * 2),
            "dropping the pool finishes its queue"
        );
    }
    settle_to(baseline);
}
