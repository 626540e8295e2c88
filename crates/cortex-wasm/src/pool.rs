//! [`WasmPool`]: instances of one module on the threads of a cortex-workers
//! pool, so guests never block the async runtime.
//!
//! wasmer's `Store` cannot leave the thread that made it, so each worker
//! thread keeps its own instance (made on first use, or by
//! [`WasmPool::warm`]). An instance whose call trapped, ran out of fuel,
//! passed its deadline or hit the memory cap is dropped and the thread
//! makes a fresh one for its next call: a failed instance is never
//! reused. The worker pool bounds the queue (a full queue is
//! [`WasmError::Overloaded`]), and brings its wait-time and utilisation
//! stats, series and health check.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex, PoisonError};
use std::time::Instant;

use cortex_workers::{
    JobError, Shutdown, ShutdownReport, SubmitError, WorkerPool, WorkerPoolBuilder, WorkerPoolStats,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::WasmError;
use crate::instance::WasmInstance;
use crate::module::WasmModule;

thread_local! {
    /// This worker thread's instance of each pool's module, by pool id.
    static INSTANCES: RefCell<HashMap<u64, WasmInstance>> = RefCell::new(HashMap::new());
}

/// Pool ids: thread-local instances are keyed by them.
static NEXT_POOL: AtomicU64 = AtomicU64::new(1);

/// A module's instances on N worker threads.
///
/// ```
/// use cortex_wasm::{WasmEngine, WasmPool};
/// use cortex_workers::WorkerPool;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), cortex_wasm::WasmError> {
/// let module = WasmEngine::builder().fuel(1_000_000).build()?.compile(
///     r#"(module (func (export "double") (param i32) (result i32)
///         local.get 0 i32.const 2 i32.mul))"#,
/// )?;
/// let pool = WasmPool::new(module, WorkerPool::builder("plugins").workers(2))?;
/// let doubled = pool
///     .call(|instance| {
///         let double = instance.typed_function::<i32, i32>("double")?;
///         instance.call_with(|store| double.call(store, 21))
///     })
///     .await?;
/// assert_eq!(doubled, 42);
/// assert_eq!(pool.stats().calls, 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct WasmPool {
    inner: Arc<PoolInner>,
}

#[derive(Debug)]
struct PoolInner {
    id: u64,
    module: WasmModule,
    workers: WorkerPool,
    counts: Counts,
}

#[derive(Debug, Default)]
struct Counts {
    calls: AtomicU64,
    instances_created: AtomicU64,
    instances_replaced: AtomicU64,
    call_nanos: AtomicU64,
    failures: Mutex<BTreeMap<&'static str, u64>>,
}

/// Counters of a [`WasmPool`] and its worker pool.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct WasmPoolStats {
    /// Calls that ran on an instance (succeeded or failed).
    pub calls: u64,
    /// Failed calls by [`WasmError::kind`].
    pub failures: BTreeMap<&'static str, u64>,
    /// Instances made.
    pub instances_created: u64,
    /// Instances dropped after a failure that poisoned them.
    pub instances_replaced: u64,
    /// Seconds spent in calls, summed.
    pub call_seconds_total: f64,
    /// The worker pool: queue, wait and run times, utilisation.
    pub workers: WorkerPoolStats,
}

impl WasmPool {
    /// Starts the worker pool `workers` describes; each of its threads
    /// instantiates `module` on first use.
    pub fn new(module: WasmModule, workers: WorkerPoolBuilder) -> Result<Self, WasmError> {
        let workers = workers
            .build()
            .map_err(|error| WasmError::Pool(error.to_string()))?;
        Ok(Self {
            inner: Arc::new(PoolInner {
                id: NEXT_POOL.fetch_add(1, Ordering::Relaxed),
                module,
                workers,
                counts: Counts::default(),
            }),
        })
    }

    /// The worker pool (stats, series, health check, shutdown).
    pub fn workers(&self) -> &WorkerPool {
        &self.inner.workers
    }

    /// Whether `other` is a clone of this pool.
    pub fn same_as(&self, other: &WasmPool) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// A health check: the worker pool's (Degraded while its queue stays
    /// full or zombies run, Down when it shuts down).
    #[cfg(feature = "health")]
    pub fn health_check(&self) -> cortex_workers::WorkerPoolHealthCheck {
        self.inner.workers.health_check()
    }

    /// The module the instances run.
    pub fn module(&self) -> &WasmModule {
        &self.inner.module
    }

    /// Runs `work` on a worker thread with that thread's instance. A full
    /// queue is [`WasmError::Overloaded`] at once (nothing waits), a pool
    /// that shuts down [`WasmError::Pool`]. Dropping the future cancels the
    /// call (a queued call never runs).
    pub async fn call<T, F>(&self, work: F) -> Result<T, WasmError>
    where
        F: FnOnce(&mut WasmInstance) -> Result<T, WasmError> + Send + 'static,
        T: Send + std::fmt::Debug + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let job = move || inner.run(work);
        let handle = self
            .inner
            .workers
            .try_submit(job)
            .map_err(|error| match error {
                SubmitError::QueueFull(_) | SubmitError::TimedOut(_) => WasmError::Overloaded,
                other => WasmError::Pool(other.to_string()),
            })?;
        // A caller that stops waiting (a client that hung up) cancels the
        // call: queued, it never runs; running, its token fires.
        match handle.cancel_on_drop().await {
            Ok(result) => result,
            Err(JobError::TimedOut { after }) => Err(WasmError::TimedOut { deadline: after }),
            Err(other) => Err(WasmError::Pool(other.to_string())),
        }
    }

    /// [`WasmInstance::call_bytes`] on a worker thread.
    pub async fn call_bytes(&self, function: &str, input: Vec<u8>) -> Result<Vec<u8>, WasmError> {
        let function = function.to_owned();
        self.call(move |instance| instance.call_bytes(&function, &input))
            .await
    }

    /// [`WasmInstance::call_bytes_with`] on a worker thread.
    pub async fn call_bytes_with(
        &self,
        function: &str,
        input: Vec<u8>,
        extra: Vec<i32>,
    ) -> Result<Vec<u8>, WasmError> {
        let function = function.to_owned();
        self.call(move |instance| instance.call_bytes_with(&function, &input, &extra))
            .await
    }

    /// [`WasmInstance::call_json`] on a worker thread: the input is encoded
    /// here, the output decoded here.
    pub async fn call_json<I: Serialize + ?Sized, O: DeserializeOwned>(
        &self,
        function: &str,
        input: &I,
    ) -> Result<O, WasmError> {
        let bytes =
            serde_json::to_vec(input).map_err(|error| WasmError::Json(error.to_string()))?;
        let output = self.call_bytes(function, bytes).await?;
        serde_json::from_slice(&output).map_err(|error| WasmError::Json(error.to_string()))
    }

    /// Instantiates the module on every worker thread now, so the first
    /// calls do not pay for it. Blocks this thread until done: call it at
    /// start-up (or from `spawn_blocking`).
    pub fn warm(&self) -> Result<(), WasmError> {
        let threads = self.inner.workers.stats().workers;
        // Every job waits for all the others, so each thread gets one.
        let barrier = Arc::new(Barrier::new(threads));
        let handles = (0..threads)
            .map(|_| {
                let (inner, barrier) = (Arc::clone(&self.inner), Arc::clone(&barrier));
                self.inner
                    .workers
                    .submit_blocking(
                        move || {
                            let made = inner.run(|_| Ok(()));
                            barrier.wait();
                            made
                        },
                        None,
                    )
                    .map_err(|error| WasmError::Pool(error.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        for handle in handles {
            handle
                .wait()
                .map_err(|error| WasmError::Pool(error.to_string()))??;
        }
        // Warming is not a call.
        self.inner
            .counts
            .calls
            .fetch_sub(threads as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Counters, with the worker pool's.
    pub fn stats(&self) -> WasmPoolStats {
        let counts = &self.inner.counts;
        WasmPoolStats {
            calls: counts.calls.load(Ordering::Relaxed),
            failures: counts
                .failures
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            instances_created: counts.instances_created.load(Ordering::Relaxed),
            instances_replaced: counts.instances_replaced.load(Ordering::Relaxed),
            call_seconds_total: std::time::Duration::from_nanos(
                counts.call_nanos.load(Ordering::Relaxed),
            )
            .as_secs_f64(),
            workers: self.inner.workers.stats(),
        }
    }

    /// Shuts the worker pool down; the threads drop their instances.
    pub async fn shutdown(&self, mode: Shutdown) -> ShutdownReport {
        self.inner.workers.shutdown(mode).await
    }
}

impl PoolInner {
    /// Runs `work` on this thread's instance, making it first if needed and
    /// dropping it if the call poisoned it.
    fn run<T>(
        &self,
        work: impl FnOnce(&mut WasmInstance) -> Result<T, WasmError>,
    ) -> Result<T, WasmError> {
        let started = Instant::now();
        let result = INSTANCES.with(|instances| {
            let mut instances = instances.borrow_mut();
            let instance = match instances.entry(self.id) {
                std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::hash_map::Entry::Vacant(entry) => {
                    let instance = self.module.instantiate()?;
                    self.counts
                        .instances_created
                        .fetch_add(1, Ordering::Relaxed);
                    entry.insert(instance)
                }
            };
            let result = work(instance);
            if instance.is_poisoned() {
                instances.remove(&self.id);
                self.counts
                    .instances_replaced
                    .fetch_add(1, Ordering::Relaxed);
            }
            result
        });
        let counts = &self.counts;
        counts.calls.fetch_add(1, Ordering::Relaxed);
        counts.call_nanos.fetch_add(
            u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        if let Err(error) = &result {
            *counts
                .failures
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(error.kind())
                .or_default() += 1;
        }
        result
    }
}
