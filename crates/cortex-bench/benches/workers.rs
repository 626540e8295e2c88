//! cortex-workers against the `threadpool` crate, rayon's `ThreadPool`,
//! tokio's `spawn_blocking` and a raw baseline (std threads reading a
//! `crossbeam_channel::bounded` queue, the queue cortex-workers is built
//! on), every contender on 2 threads, same run.
//!
//! Every contender returns each job's result to its submitter through a
//! one-result slot of its own: cortex's `JobHandle`, a tokio `JoinHandle`,
//! and for the others a fresh one-slot channel per job (std `sync_channel`
//! for threadpool and rayon, `crossbeam_channel::bounded(1)` for the
//! baseline). So each row compares the pools' queues and wake-ups, not one
//! pool's handle against another's shared reply channel.
//!
//! - `workers_dispatch`: one trivial job at a time from one submitting
//!   thread: submit, then wait for its result. cortex: `try_submit` +
//!   `wait()`; `cortex-async`: `submit().await` + `.await` on a
//!   current-thread tokio runtime, as tokio's row runs.
//! - `workers_batch_100k`: 100 000 trivial jobs submitted, then every
//!   result waited for, in submission order.
//! - `workers_cpu_1k_x_1ms`: 1 000 jobs of about 1 ms of CPU each (one
//!   deterministic multiply-rotate chain, calibrated once per run, the same
//!   rounds for every contender); on 2 threads the ideal is about 0.5 s.
//! - `workers_timeouts`: cortex with `run_timeout(60 s)` + `queue_ttl(60 s)`
//!   (`on`: a watchdog thread, a deadline per running job, the TTL check at
//!   each start) against the same pool without (`off`), where no job ever
//!   times out.
//!
//! The calibrated rounds and the time of one job go to
//! `target/workers-spin.json` for the report.

use std::hint::black_box;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cortex_workers::{JobHandle, WorkerPool};
use criterion::{
    BenchmarkGroup, Criterion, SamplingMode, criterion_group, criterion_main, measurement::WallTime,
};

/// Threads of every pool.
const THREADS: usize = 2;
/// Jobs of the trivial batch.
const BATCH: usize = 100_000;
/// Jobs of the CPU batch.
const CPU_JOBS: usize = 1_000;
/// The run timeout and queue TTL of the `on` rows: never reached.
const NEVER: Duration = Duration::from_secs(60);

/// The CPU work: a serial multiply-rotate chain the compiler can neither
/// fold (`rounds` is opaque) nor vectorise (each step needs the last).
fn spin(rounds: u64) -> u64 {
    let mut x = 0x9E37_79B9_7F4A_7C15_u64;
    for i in 0..black_box(rounds) {
        x = (x ^ i).wrapping_mul(0x0000_0100_0000_01B3).rotate_left(5);
    }
    x
}

/// Rounds of [`spin`] that take about 1 ms on one thread of this machine
/// (the fastest of a few tries, so a busy moment does not inflate it), and
/// the measured time of one job of that many rounds.
fn calibrate() -> (u64, Duration) {
    let probe = 200_000;
    let fastest = |rounds: u64| {
        (0..7)
            .map(|_| {
                let start = Instant::now();
                black_box(spin(rounds));
                start.elapsed()
            })
            .min()
            .expect("seven tries")
    };
    let per_round = fastest(probe).as_secs_f64() / probe as f64;
    let rounds = ((1e-3 / per_round) as u64).max(1);
    (rounds, fastest(rounds))
}

/// A pool seen from one submitting thread: hand it a job, later wait for
/// that job's result.
trait Contender {
    type Pending;
    fn submit<F: FnOnce() -> u64 + Send + 'static>(&self, job: F) -> Self::Pending;
    fn wait(pending: Self::Pending) -> u64;
}

/// How the cortex rows submit.
#[derive(Clone, Copy)]
enum Submit {
    /// `try_submit`, panicking on a refusal: the pool's queue must hold the
    /// whole batch, so a refusal would be a broken bench, not a result.
    Try,
    /// `submit_blocking(job, None)`: waits for room in the queue.
    Blocking,
}

struct Cortex {
    pool: WorkerPool,
    submit: Submit,
}

impl Cortex {
    fn new(capacity: usize, timeouts: bool, submit: Submit) -> Self {
        let mut builder = WorkerPool::builder("bench")
            .workers(THREADS)
            .queue_capacity(capacity);
        if timeouts {
            builder = builder.run_timeout(NEVER).queue_ttl(NEVER);
        }
        Self {
            pool: builder.build().expect("cortex pool"),
            submit,
        }
    }
}

impl Drop for Cortex {
    fn drop(&mut self) {
        let _ = self.pool.shutdown_now();
    }
}

impl Contender for Cortex {
    type Pending = JobHandle<u64>;

    fn submit<F: FnOnce() -> u64 + Send + 'static>(&self, job: F) -> JobHandle<u64> {
        match self.submit {
            Submit::Try => self.pool.try_submit(job).expect("cortex took the job"),
            Submit::Blocking => self
                .pool
                .submit_blocking(job, None)
                .expect("cortex took the job"),
        }
    }

    fn wait(pending: JobHandle<u64>) -> u64 {
        pending.wait().expect("cortex job result")
    }
}

/// The `threadpool` crate: `execute`, the result back on a one-slot std
/// channel.
struct ThreadPoolCrate(threadpool::ThreadPool);

impl Contender for ThreadPoolCrate {
    type Pending = mpsc::Receiver<u64>;

    fn submit<F: FnOnce() -> u64 + Send + 'static>(&self, job: F) -> mpsc::Receiver<u64> {
        let (reply, result) = mpsc::sync_channel(1);
        self.0.execute(move || {
            let _ = reply.send(job());
        });
        result
    }

    fn wait(pending: mpsc::Receiver<u64>) -> u64 {
        pending.recv().expect("threadpool job result")
    }
}

/// rayon's `ThreadPool::spawn`, the result back on a one-slot std channel.
struct Rayon(rayon::ThreadPool);

impl Contender for Rayon {
    type Pending = mpsc::Receiver<u64>;

    fn submit<F: FnOnce() -> u64 + Send + 'static>(&self, job: F) -> mpsc::Receiver<u64> {
        let (reply, result) = mpsc::sync_channel(1);
        self.0.spawn(move || {
            let _ = reply.send(job());
        });
        result
    }

    fn wait(pending: mpsc::Receiver<u64>) -> u64 {
        pending.recv().expect("rayon job result")
    }
}

type RawJob = Box<dyn FnOnce() + Send>;

/// The floor: `THREADS` std threads reading boxed closures off a
/// `crossbeam_channel::bounded` queue (capacity `BATCH`, so a send never
/// waits), each result back on a `crossbeam_channel::bounded(1)`. No
/// timestamps, counters, panic catching, spans or shutdown protocol.
struct Baseline {
    queue: Option<crossbeam_channel::Sender<RawJob>>,
    threads: Vec<JoinHandle<()>>,
}

impl Baseline {
    fn new() -> Self {
        let (queue, jobs) = crossbeam_channel::bounded::<RawJob>(BATCH);
        let threads = (0..THREADS)
            .map(|_| {
                let jobs = jobs.clone();
                std::thread::spawn(move || {
                    for job in jobs {
                        job();
                    }
                })
            })
            .collect();
        Self {
            queue: Some(queue),
            threads,
        }
    }
}

impl Drop for Baseline {
    fn drop(&mut self) {
        self.queue = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Contender for Baseline {
    type Pending = crossbeam_channel::Receiver<u64>;

    fn submit<F: FnOnce() -> u64 + Send + 'static>(
        &self,
        job: F,
    ) -> crossbeam_channel::Receiver<u64> {
        let (reply, result) = crossbeam_channel::bounded(1);
        self.queue
            .as_ref()
            .expect("baseline queue")
            .send(Box::new(move || {
                let _ = reply.send(job());
            }))
            .expect("baseline threads alive");
        result
    }

    fn wait(pending: crossbeam_channel::Receiver<u64>) -> u64 {
        pending.recv().expect("baseline job result")
    }
}

fn threadpool_crate() -> ThreadPoolCrate {
    ThreadPoolCrate(threadpool::ThreadPool::new(THREADS))
}

fn rayon_pool() -> Rayon {
    Rayon(
        rayon::ThreadPoolBuilder::new()
            .num_threads(THREADS)
            .build()
            .expect("rayon pool"),
    )
}

/// The runtime of the tokio rows (and of `cortex-async`): the submitting
/// thread drives it with `block_on`; `spawn_blocking` runs on at most
/// `THREADS` blocking threads.
fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(THREADS)
        .build()
        .expect("tokio runtime")
}

/// One job at a time: submit, wait, repeat.
fn dispatch<C: Contender>(group: &mut BenchmarkGroup<'_, WallTime>, id: &str, pool: &C) {
    group.bench_function(id, |b| {
        b.iter(|| black_box(C::wait(pool.submit(|| black_box(1_u64)))))
    });
}

/// `jobs` jobs submitted back to back, then every result waited for; the
/// handle vector is allocated (and freed) outside the timed part.
fn batch<C, F>(pool: &C, jobs: usize, make: impl Fn() -> F) -> Duration
where
    C: Contender,
    F: FnOnce() -> u64 + Send + 'static,
{
    let mut pending = Vec::with_capacity(jobs);
    let start = Instant::now();
    for _ in 0..jobs {
        pending.push(pool.submit(make()));
    }
    for handle in pending.drain(..) {
        black_box(C::wait(handle));
    }
    let elapsed = start.elapsed();
    drop(pending);
    elapsed
}

/// [`batch`] for `spawn_blocking`, inside one `block_on`.
fn tokio_batch<F>(rt: &tokio::runtime::Runtime, jobs: usize, make: impl Fn() -> F) -> Duration
where
    F: FnOnce() -> u64 + Send + 'static,
{
    let mut pending = Vec::with_capacity(jobs);
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..jobs {
            pending.push(tokio::task::spawn_blocking(make()));
        }
        for handle in pending.drain(..) {
            black_box(handle.await.expect("spawn_blocking result"));
        }
        start.elapsed()
    })
}

/// Each criterion iteration is one whole batch.
fn each_batch(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    mut run: impl FnMut() -> Duration,
) {
    group.bench_function(id, |b| {
        b.iter_custom(|iters| (0..iters).map(|_| run()).sum())
    });
}

/// Settings of the groups whose iteration is a whole batch (tens to
/// hundreds of milliseconds): ten equal samples.
fn batch_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group
}

fn dispatch_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group.sample_size(50);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group
}

fn trivial() -> impl FnOnce() -> u64 + Send + 'static {
    || black_box(1_u64)
}

fn workers(c: &mut Criterion) {
    let (rounds, one_job) = calibrate();
    eprintln!(
        "workers: 1 ms of CPU = {rounds} spin rounds ({:.3} ms measured)",
        one_job.as_secs_f64() * 1e3
    );
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/workers-spin.json");
    let _ = std::fs::write(
        path,
        serde_json::json!({ "rounds": rounds, "job_ns": one_job.as_nanos() as u64 }).to_string(),
    );
    let rt = tokio_runtime();

    // Dispatch. The cortex pool has the default queue (4 per worker): one
    // job at a time never fills it.
    {
        let mut group = dispatch_group(c, "workers_dispatch");
        let cortex = Cortex::new(THREADS * 4, false, Submit::Try);
        dispatch(&mut group, "cortex", &cortex);
        group.bench_function("cortex-async", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let handle = cortex.pool.submit(trivial()).await.expect("submitted");
                        black_box(handle.await.expect("cortex job result"));
                    }
                    start.elapsed()
                })
            })
        });
        drop(cortex);
        dispatch(&mut group, "threadpool", &threadpool_crate());
        dispatch(&mut group, "rayon", &rayon_pool());
        group.bench_function("tokio-spawn-blocking", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let result = tokio::task::spawn_blocking(trivial()).await;
                        black_box(result.expect("spawn_blocking result"));
                    }
                    start.elapsed()
                })
            })
        });
        dispatch(&mut group, "crossbeam-baseline", &Baseline::new());
        group.finish();
    }

    // Throughput of trivial jobs. `cortex`: a queue of `BATCH` and
    // `try_submit` (panicking on a refusal), so the whole batch is queued
    // as in the peers' unbounded queues and the row measures throughput,
    // not rejections. `cortex-submit-blocking`: the default queue (8) and
    // `submit_blocking`, so the submitter waits for room: the cost of
    // backpressure, no peer equivalent.
    {
        let mut group = batch_group(c, "workers_batch_100k");
        let cortex = Cortex::new(BATCH, false, Submit::Try);
        each_batch(&mut group, "cortex", || batch(&cortex, BATCH, trivial));
        drop(cortex);
        let blocking = Cortex::new(THREADS * 4, false, Submit::Blocking);
        each_batch(&mut group, "cortex-submit-blocking", || {
            batch(&blocking, BATCH, trivial)
        });
        drop(blocking);
        let pool = threadpool_crate();
        each_batch(&mut group, "threadpool", || batch(&pool, BATCH, trivial));
        drop(pool);
        let pool = rayon_pool();
        each_batch(&mut group, "rayon", || batch(&pool, BATCH, trivial));
        drop(pool);
        each_batch(&mut group, "tokio-spawn-blocking", || {
            tokio_batch(&rt, BATCH, trivial)
        });
        let pool = Baseline::new();
        each_batch(&mut group, "crossbeam-baseline", || {
            batch(&pool, BATCH, trivial)
        });
        drop(pool);
        group.finish();
    }

    // Throughput of ~1 ms CPU jobs; every queue holds all 1 000 (cortex:
    // capacity `CPU_JOBS` and `try_submit`). An iteration is about 0.5 s,
    // so 10 flat samples take about 5 s per contender.
    {
        let mut group = batch_group(c, "workers_cpu_1k_x_1ms");
        group.measurement_time(Duration::from_secs(5));
        let work = move || move || spin(rounds);
        let cortex = Cortex::new(CPU_JOBS, false, Submit::Try);
        each_batch(&mut group, "cortex", || batch(&cortex, CPU_JOBS, work));
        drop(cortex);
        let pool = threadpool_crate();
        each_batch(&mut group, "threadpool", || batch(&pool, CPU_JOBS, work));
        drop(pool);
        let pool = rayon_pool();
        each_batch(&mut group, "rayon", || batch(&pool, CPU_JOBS, work));
        drop(pool);
        each_batch(&mut group, "tokio-spawn-blocking", || {
            tokio_batch(&rt, CPU_JOBS, work)
        });
        let pool = Baseline::new();
        each_batch(&mut group, "crossbeam-baseline", || {
            batch(&pool, CPU_JOBS, work)
        });
        drop(pool);
        group.finish();
    }

    // The timeout machinery when nothing times out: the same pool with and
    // without `run_timeout` + `queue_ttl`, measured back to back.
    {
        let mut group = dispatch_group(c, "workers_timeouts");
        for (id, timeouts) in [("dispatch/off", false), ("dispatch/on", true)] {
            let cortex = Cortex::new(THREADS * 4, timeouts, Submit::Try);
            dispatch(&mut group, id, &cortex);
        }
        group.sampling_mode(SamplingMode::Flat);
        group.sample_size(10);
        for (id, timeouts) in [("batch_100k/off", false), ("batch_100k/on", true)] {
            let cortex = Cortex::new(BATCH, timeouts, Submit::Try);
            each_batch(&mut group, id, || batch(&cortex, BATCH, trivial));
        }
        group.finish();
    }
}

criterion_group!(benches, workers);
criterion_main!(benches);
