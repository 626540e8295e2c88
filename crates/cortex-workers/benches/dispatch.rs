//! cortex-workers' own dispatch costs (peer comparisons live in
//! `crates/cortex-bench`, bench `workers`): `cargo bench -p cortex-workers`.
//!
//! - `try_submit_wait`: one trivial job at a time from one thread,
//!   `try_submit` then `wait()`, on 2 workers with the default queue.
//! - `submit_blocking_batch_10k`: 10 000 trivial jobs through
//!   `submit_blocking` into the default queue (8 slots), so the submitter
//!   waits for room as a saturated caller does, then every result.

use std::hint::black_box;
use std::time::{Duration, Instant};

use cortex_workers::WorkerPool;
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};

const WORKERS: usize = 2;
const BATCH: usize = 10_000;

fn dispatch(c: &mut Criterion) {
    let pool = WorkerPool::builder("bench")
        .workers(WORKERS)
        .build()
        .expect("pool");

    let mut group = c.benchmark_group("dispatch");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("try_submit_wait", |b| {
        b.iter(|| {
            let handle = pool
                .try_submit(|| black_box(1_u64))
                .expect("one job at a time never fills the queue");
            black_box(handle.wait().expect("job result"))
        })
    });

    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.bench_function("submit_blocking_batch_10k", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // Allocated outside the timed part.
                let mut handles = Vec::with_capacity(BATCH);
                let start = Instant::now();
                for _ in 0..BATCH {
                    let handle = pool
                        .submit_blocking(|| black_box(1_u64), None)
                        .expect("the pool is open");
                    handles.push(handle);
                }
                for handle in handles.drain(..) {
                    black_box(handle.wait().expect("job result"));
                }
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();
    let _ = pool.shutdown_now();
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
