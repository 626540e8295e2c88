//! The fault list: panics, endless loops (cooperative and not), run
//! timeouts, queue TTLs, submission after shutdown, a full queue under 16
//! racing submitters, shutdown while jobs run and while submitters wait.
//! Every case ends with the exact accounting identity.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use cortex_workers::{JobError, Shutdown, SubmitError, WorkerPool, WorkerPoolStats};

/// `submitted == completed + panicked + timed_out + expired + cancelled + rejected`.
fn assert_accounted(stats: &WorkerPoolStats) {
    assert_eq!(
        stats.submitted,
        stats.completed
            + stats.panicked
            + stats.timed_out
            + stats.expired
            + stats.cancelled
            + stats.rejected,
        "every submission has exactly one outcome: {stats:#?}"
    );
}

/// Polls `condition` for up to 10 s (the pool's threads run on their own).
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A job that holds its worker until the returned gate opens.
fn gate() -> (Arc<Barrier>, Arc<Barrier>) {
    (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)))
}

#[test]
fn a_panicking_job_answers_panicked_and_the_thread_survives() {
    let pool = WorkerPool::builder("panics").workers(1).build().unwrap();
    let thread_of = || {
        pool.try_submit(|| std::thread::current().id())
            .unwrap()
            .wait()
            .unwrap()
    };
    let before = thread_of();
    let failed = pool
        .try_submit(|| -> u8 { panic!("boom {}", 42) })
        .unwrap()
        .wait();
    assert_eq!(failed, Err(JobError::Panicked("boom 42".to_owned())));
    let static_message = pool
        .try_submit(|| -> u8 { std::panic::panic_any(7_u32) })
        .unwrap()
        .wait();
    assert!(matches!(static_message, Err(JobError::Panicked(_))));
    assert_eq!(thread_of(), before, "the same thread serves after a panic");
    let stats = pool.stats();
    assert_eq!((stats.completed, stats.panicked), (2, 2));
    assert_eq!(stats.workers, 1);
    assert_accounted(&stats);
}

#[test]
fn a_cooperative_endless_loop_times_out_and_keeps_its_thread() {
    let pool = WorkerPool::builder("cooperative")
        .workers(1)
        .run_timeout(Duration::from_millis(30))
        .grace(Duration::from_secs(5))
        .build()
        .unwrap();
    let stopped = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&stopped);
    let handle = pool
        .try_submit(move || {
            while !cortex_workers::is_cancelled() {
                std::hint::spin_loop();
            }
            seen.store(true, Ordering::SeqCst);
        })
        .unwrap();
    assert_eq!(
        handle.wait(),
        Err(JobError::TimedOut {
            after: Duration::from_millis(30)
        })
    );
    eventually("the job sees its token and returns", || {
        stopped.load(Ordering::SeqCst) && pool.stats().busy == 0
    });
    // The thread came back: no zombie, no replacement, and it serves.
    assert_eq!(pool.try_submit(|| 5).unwrap().wait(), Ok(5));
    let stats = pool.stats();
    assert_eq!((stats.zombies, stats.replaced, stats.workers), (0, 0, 1));
    assert_eq!((stats.timed_out, stats.completed), (1, 1));
    assert_accounted(&stats);
}

#[test]
fn a_stuck_job_becomes_a_zombie_and_a_replacement_restores_capacity() {
    let pool = WorkerPool::builder("stuck")
        .workers(1)
        .run_timeout(Duration::from_millis(20))
        .grace(Duration::from_millis(20))
        .build()
        .unwrap();
    let release = Arc::new(AtomicBool::new(false));
    let hold = Arc::clone(&release);
    // Ignores its token: only `release` ends it.
    let stuck = pool
        .try_submit(move || {
            while !hold.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            "late"
        })
        .unwrap();
    assert!(matches!(stuck.wait(), Err(JobError::TimedOut { .. })));
    eventually("the stuck thread is replaced", || {
        pool.stats().replaced == 1
    });
    // Capacity is back while the zombie still runs.
    assert_eq!(pool.try_submit(|| 9).unwrap().wait(), Ok(9));
    let stats = pool.stats();
    assert_eq!((stats.workers, stats.zombies), (1, 1));
    // The zombie's job returns: its thread exits (the pool is full).
    release.store(true, Ordering::SeqCst);
    eventually("the zombie exits", || pool.stats().zombies == 0);
    let stats = pool.stats();
    assert_eq!(stats.workers, 1);
    assert_eq!(
        (stats.timed_out, stats.completed),
        (1, 1),
        "the late result is dropped, not counted"
    );
    assert_accounted(&stats);
    let report = pool.shutdown_now();
    assert_eq!(report.detached_threads, 0);
}

#[test]
fn past_the_zombie_cap_the_pool_runs_smaller_and_a_returning_zombie_rejoins() {
    let pool = WorkerPool::builder("capped")
        .workers(1)
        .max_zombies(0)
        .run_timeout(Duration::from_millis(20))
        .grace(Duration::from_millis(10))
        .build()
        .unwrap();
    let release = Arc::new(AtomicBool::new(false));
    let hold = Arc::clone(&release);
    let stuck = pool
        .try_submit(move || {
            while !hold.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
        })
        .unwrap();
    assert!(matches!(stuck.wait(), Err(JobError::TimedOut { .. })));
    eventually("the thread is a zombie", || pool.stats().zombies == 1);
    let stats = pool.stats();
    assert_eq!(
        (stats.workers, stats.replaced),
        (0, 0),
        "no replacement past the cap"
    );
    // Jobs wait for a worker; the zombie takes its place back on return.
    let queued = pool.try_submit(|| "ran").unwrap();
    release.store(true, Ordering::SeqCst);
    assert_eq!(queued.wait(), Ok("ran"));
    let stats = pool.stats();
    assert_eq!((stats.workers, stats.zombies), (1, 0));
    assert_accounted(&stats);
}

#[test]
fn a_job_past_its_queue_ttl_expires_unrun_and_its_caller_hears_promptly() {
    let pool = WorkerPool::builder("ttl")
        .workers(1)
        .queue_ttl(Duration::from_millis(40))
        .build()
        .unwrap();
    let (started, release) = gate();
    let (s, r) = (Arc::clone(&started), Arc::clone(&release));
    let busy = pool
        .try_submit(move || {
            s.wait();
            r.wait();
        })
        .unwrap();
    started.wait();
    let ran = Arc::new(AtomicUsize::new(0));
    let waiting: Vec<_> = (0..3)
        .map(|_| {
            let ran = Arc::clone(&ran);
            pool.try_submit(move || ran.fetch_add(1, Ordering::SeqCst))
                .unwrap()
        })
        .collect();
    // The worker is still busy: the sweep, not the worker, answers them.
    for handle in waiting {
        assert_eq!(handle.wait(), Err(JobError::Expired));
    }
    release.wait();
    busy.wait().unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 0, "an expired job never runs");
    let stats = pool.stats();
    assert_eq!((stats.expired, stats.completed), (3, 1));
    assert_accounted(&stats);
}

#[test]
fn a_full_queue_hands_the_job_back() {
    let pool = WorkerPool::builder("full")
        .workers(1)
        .queue_capacity(2)
        .build()
        .unwrap();
    let (started, release) = gate();
    let (s, r) = (Arc::clone(&started), Arc::clone(&release));
    let busy = pool
        .try_submit(move || {
            s.wait();
            r.wait();
            0
        })
        .unwrap();
    started.wait();
    let queued: Vec<_> = (1..=2)
        .map(|n| pool.try_submit(move || n).unwrap())
        .collect();
    let refused = pool.try_submit(|| 3).unwrap_err();
    assert!(refused.is_full());
    assert_eq!(
        refused.into_job()(),
        3,
        "the refused closure comes back intact"
    );
    release.wait();
    assert_eq!(busy.wait(), Ok(0));
    for (n, handle) in (1..).zip(queued) {
        assert_eq!(handle.wait(), Ok(n));
    }
    let stats = pool.stats();
    assert_eq!(
        (stats.submitted, stats.completed, stats.rejected),
        (4, 3, 1)
    );
    assert_accounted(&stats);
}

#[test]
fn sixteen_submitters_racing_for_a_full_queue_lose_nothing() {
    let pool = WorkerPool::builder("race")
        .workers(2)
        .queue_capacity(4)
        .build()
        .unwrap();
    let start = Arc::new(Barrier::new(16));
    let results: Vec<(usize, usize, u64)> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..16_u64)
            .map(|submitter| {
                let (pool, start) = (pool.clone(), Arc::clone(&start));
                scope.spawn(move || {
                    start.wait();
                    let (mut accepted, mut refused, mut sum) = (0, 0, 0);
                    let mut handles = Vec::new();
                    for job in 0..500_u64 {
                        let value = submitter * 1_000 + job;
                        match pool.try_submit(move || value) {
                            Ok(handle) => {
                                accepted += 1;
                                handles.push((value, handle));
                            }
                            Err(SubmitError::QueueFull(job)) => {
                                refused += 1;
                                assert_eq!(job(), value, "the job handed back is this one");
                            }
                            Err(other) => panic!("unexpected refusal {other:?}"),
                        }
                    }
                    for (value, handle) in handles {
                        assert_eq!(handle.wait(), Ok(value));
                        sum += value;
                    }
                    (accepted, refused, sum)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let accepted: usize = results.iter().map(|r| r.0).sum();
    let refused: usize = results.iter().map(|r| r.1).sum();
    assert_eq!(accepted + refused, 16 * 500);
    let stats = pool.stats();
    assert_eq!(stats.submitted, 16 * 500);
    assert_eq!(stats.completed, accepted as u64);
    assert_eq!(stats.rejected, refused as u64);
    assert_accounted(&stats);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_submitters_wait_for_room_and_all_get_in() {
    let pool = WorkerPool::builder("backpressure")
        .workers(2)
        .queue_capacity(2)
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..64_u64)
        .map(|n| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let handle = pool
                    .submit(move || {
                        std::thread::sleep(Duration::from_micros(200));
                        n
                    })
                    .await
                    .expect("submit waits for room instead of refusing");
                handle.await.unwrap()
            })
        })
        .collect();
    let mut sum = 0;
    for task in tasks {
        sum += task.await.unwrap();
    }
    assert_eq!(sum, (0..64).sum::<u64>());
    let stats = pool.stats();
    assert_eq!(
        (stats.submitted, stats.completed, stats.rejected),
        (64, 64, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_timeout_gives_the_job_back_when_no_room_comes() {
    let pool = WorkerPool::builder("submit-timeout")
        .workers(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let (started, release) = gate();
    let (s, r) = (Arc::clone(&started), Arc::clone(&release));
    let busy = pool.try_submit(move || {
        s.wait();
        r.wait();
    });
    let busy = busy.unwrap();
    tokio::task::spawn_blocking(move || started.wait())
        .await
        .unwrap();
    let queued = pool.try_submit(|| 1).unwrap();
    match pool.submit_timeout(|| 2, Duration::from_millis(30)).await {
        Err(SubmitError::TimedOut(job)) => assert_eq!(job(), 2),
        other => panic!("expected a timed-out submission, got {other:?}"),
    }
    // Blocking submitters too.
    match pool.submit_blocking(|| 3, Some(Duration::from_millis(30))) {
        Err(SubmitError::TimedOut(job)) => assert_eq!(job(), 3),
        other => panic!("expected a timed-out submission, got {other:?}"),
    }
    tokio::task::spawn_blocking(move || release.wait())
        .await
        .unwrap();
    busy.await.unwrap();
    assert_eq!(queued.await, Ok(1));
    let stats = pool.stats();
    assert_eq!((stats.rejected, stats.completed), (2, 2));
    assert_accounted(&stats);
}

#[test]
fn submitting_after_shutdown_hands_the_job_back() {
    let pool = WorkerPool::builder("closed").workers(1).build().unwrap();
    let report = pool.shutdown_now();
    assert!(report.drained || report.cancelled_queued == 0);
    match pool.try_submit(|| 1) {
        Err(SubmitError::ShuttingDown(job)) => assert_eq!(job(), 1),
        other => panic!("expected ShuttingDown, got {other:?}"),
    }
    match pool.submit_blocking(|| 2, None) {
        Err(SubmitError::ShuttingDown(job)) => assert_eq!(job(), 2),
        other => panic!("expected ShuttingDown, got {other:?}"),
    }
    let stats = pool.stats();
    assert_eq!((stats.submitted, stats.rejected, stats.workers), (2, 2, 0));
    assert_accounted(&stats);
    assert_eq!(
        pool.shutdown_now(),
        report,
        "a second shutdown returns the first report"
    );
}

#[test]
fn graceful_shutdown_finishes_queued_and_running_jobs() {
    let pool = WorkerPool::builder("graceful")
        .workers(2)
        .queue_capacity(64)
        .build()
        .unwrap();
    let handles: Vec<_> = (0..40_u64)
        .map(|n| {
            pool.try_submit(move || {
                std::thread::sleep(Duration::from_millis(1));
                n
            })
            .unwrap()
        })
        .collect();
    let report = pool.shutdown_blocking(Shutdown::Graceful {
        timeout: Duration::from_secs(30),
    });
    assert!(report.drained, "{report:?}");
    assert_eq!(
        (
            report.cancelled_queued,
            report.cancelled_running,
            report.detached_threads
        ),
        (0, 0, 0)
    );
    for (n, handle) in (0..).zip(handles) {
        assert_eq!(handle.wait(), Ok(n));
    }
    let stats = pool.stats();
    assert_eq!((stats.completed, stats.workers), (40, 0));
    assert_accounted(&stats);
}

#[test]
fn a_graceful_shutdown_past_its_deadline_cancels_what_is_left() {
    let pool = WorkerPool::builder("deadline")
        .workers(1)
        .queue_capacity(8)
        .grace(Duration::from_secs(5))
        .build()
        .unwrap();
    let (started, _) = gate();
    let s = Arc::clone(&started);
    // Cooperative, but longer than the shutdown's timeout.
    let running = pool
        .try_submit(move || {
            s.wait();
            while !cortex_workers::is_cancelled() {
                std::thread::sleep(Duration::from_millis(1));
            }
        })
        .unwrap();
    started.wait();
    let queued: Vec<_> = (0..5)
        .map(|n| pool.try_submit(move || n).unwrap())
        .collect();
    let report = pool.shutdown_blocking(Shutdown::Graceful {
        timeout: Duration::from_millis(50),
    });
    assert!(!report.drained);
    assert_eq!((report.cancelled_queued, report.cancelled_running), (5, 1));
    assert_eq!(
        report.detached_threads, 0,
        "the cooperative job returned within the grace"
    );
    assert_eq!(running.wait(), Err(JobError::ShuttingDown));
    for handle in queued {
        assert_eq!(handle.wait(), Err(JobError::ShuttingDown));
    }
    let stats = pool.stats();
    assert_eq!(stats.cancelled, 6);
    assert_accounted(&stats);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_releases_submitters_waiting_for_room() {
    let pool = WorkerPool::builder("waiters")
        .workers(1)
        .queue_capacity(1)
        .grace(Duration::from_secs(5))
        .build()
        .unwrap();
    let started = Arc::new(Barrier::new(2));
    let s = Arc::clone(&started);
    let busy = pool
        .try_submit(move || {
            s.wait();
            while !cortex_workers::is_cancelled() {
                std::thread::sleep(Duration::from_millis(1));
            }
        })
        .unwrap();
    tokio::task::spawn_blocking(move || started.wait())
        .await
        .unwrap();
    let queued = pool.try_submit(|| ()).unwrap();
    let waiters: Vec<_> = (0..8)
        .map(|n| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.submit(move || n).await.map(drop) })
        })
        .collect();
    let blocked = {
        let pool = pool.clone();
        std::thread::spawn(move || pool.submit_blocking(|| 99, None).map(drop))
    };
    // Let every submitter reach its wait.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let report = pool.shutdown(Shutdown::Now).await;
    assert_eq!((report.cancelled_queued, report.cancelled_running), (1, 1));
    for waiter in waiters {
        assert!(matches!(
            waiter.await.unwrap(),
            Err(SubmitError::ShuttingDown(_))
        ));
    }
    assert!(matches!(
        blocked.join().unwrap(),
        Err(SubmitError::ShuttingDown(_))
    ));
    assert_eq!(busy.await, Err(JobError::ShuttingDown));
    assert_eq!(queued.await, Err(JobError::ShuttingDown));
    let stats = pool.stats();
    assert_eq!((stats.rejected, stats.cancelled), (9, 2));
    assert_accounted(&stats);
}

#[test]
fn a_caller_cancels_a_queued_job_and_it_never_runs() {
    let pool = WorkerPool::builder("cancel").workers(1).build().unwrap();
    let (started, release) = gate();
    let (s, r) = (Arc::clone(&started), Arc::clone(&release));
    let busy = pool
        .try_submit(move || {
            s.wait();
            r.wait();
        })
        .unwrap();
    started.wait();
    let ran = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&ran);
    let queued = pool
        .try_submit(move || flag.store(true, Ordering::SeqCst))
        .unwrap();
    assert!(queued.cancel());
    assert!(queued.is_finished());
    release.wait();
    busy.wait().unwrap();
    assert_eq!(queued.wait(), Err(JobError::Cancelled));
    eventually("the worker meets the cancelled job", || {
        pool.stats().cancelled == 1
    });
    assert!(!ran.load(Ordering::SeqCst));
    assert_accounted(&pool.stats());
}

#[test]
fn wait_timeout_returns_the_handle() {
    let pool = WorkerPool::builder("wait-timeout")
        .workers(1)
        .build()
        .unwrap();
    let (started, release) = gate();
    let (s, r) = (Arc::clone(&started), Arc::clone(&release));
    let handle = pool
        .try_submit(move || {
            s.wait();
            r.wait();
            7
        })
        .unwrap();
    started.wait();
    let handle = handle
        .wait_timeout(Duration::from_millis(10))
        .expect_err("not finished yet");
    release.wait();
    assert_eq!(handle.wait(), Ok(7));
}

#[test]
fn bad_settings_are_refused_with_the_pool_named() {
    for (builder, field) in [
        (WorkerPool::builder("bad").workers(0), "workers"),
        (
            WorkerPool::builder("bad").queue_capacity(0),
            "queue_capacity",
        ),
        (
            WorkerPool::builder("bad").run_timeout(Duration::ZERO),
            "run_timeout",
        ),
        (
            WorkerPool::builder("bad").queue_ttl(Duration::ZERO),
            "queue_ttl",
        ),
        (WorkerPool::builder("bad").thread_name(""), "thread_name"),
    ] {
        let error = builder.build().unwrap_err().to_string();
        assert!(
            error.contains("\"bad\"") && error.contains(field),
            "{error}"
        );
    }
}

#[test]
fn a_caller_with_its_result_sees_the_worker_idle_and_the_job_counted() {
    let pool = WorkerPool::builder("settled").workers(1).build().unwrap();
    for n in 1..=200_u64 {
        assert_eq!(pool.try_submit(move || n).unwrap().wait(), Ok(n));
        let stats = pool.stats();
        assert_eq!((stats.busy, stats.completed), (0, n), "{stats:#?}");
        assert!(stats.run_seconds_total > 0.0);
    }
}
