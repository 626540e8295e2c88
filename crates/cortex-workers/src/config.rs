//! Pool settings: a serde struct a config file can declare, and the
//! builder that validates it.

use std::num::NonZeroUsize;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::WorkersError;
use crate::pool::WorkerPool;

/// How many queued jobs each worker may have waiting by default: with 4
/// per worker a job accepted at a full queue starts after about four job
/// durations, and a caller past that is told `QueueFull` (so it can shed
/// load) instead of waiting ever longer. piscina's `'auto'` (workers²)
/// grows that wait with the pool size.
pub const DEFAULT_QUEUE_PER_WORKER: usize = 4;

/// How long a timed-out or cancelled-by-shutdown job has to return before
/// its thread is declared a zombie and replaced.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(1);

/// Pool settings; every field has a default, so `{}` is a valid config.
///
/// ```
/// use std::time::Duration;
/// use cortex_workers::WorkerPoolConfig;
///
/// let config: WorkerPoolConfig = serde_json::from_str(
///     r#"{ "workers": 2, "queue_capacity": 64, "queue_ttl": "500ms", "run_timeout": "2s" }"#,
/// ).unwrap();
/// assert_eq!(config.run_timeout, Some(Duration::from_secs(2)));
/// assert_eq!(config.grace, Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerPoolConfig {
    /// Worker threads; `None` = the machine's available parallelism (CPU
    /// work gains nothing from more threads than cores).
    pub workers: Option<usize>,
    /// Jobs that may wait for a worker; `None` = 4 per worker
    /// ([`DEFAULT_QUEUE_PER_WORKER`]).
    pub queue_capacity: Option<usize>,
    /// A job not started this long after it was accepted is dropped unrun
    /// with `Expired`. `None`: no limit.
    #[serde(with = "humantime_serde::option")]
    pub queue_ttl: Option<Duration>,
    /// A job still running this long after it started answers `TimedOut`
    /// and its token fires. `None`: no limit.
    #[serde(with = "humantime_serde::option")]
    pub run_timeout: Option<Duration>,
    /// After a run timeout, how long the job has to return before its
    /// thread is detached as a zombie and replaced. 1 s.
    #[serde(with = "humantime_serde")]
    pub grace: Duration,
    /// Zombie threads allowed at once; past it, timed-out threads are not
    /// replaced and the pool runs smaller (and reports Down once no worker
    /// is left). `None` = as many as `workers`.
    pub max_zombies: Option<usize>,
    /// Worker threads are named `<thread_name>-<n>`. `cortex-worker`.
    pub thread_name: String,
    /// Stack size of each worker thread in bytes; `None` = Rust's default
    /// (2 MiB).
    pub stack_size: Option<usize>,
}

impl Default for WorkerPoolConfig {
    fn default() -> Self {
        Self {
            workers: None,
            queue_capacity: None,
            queue_ttl: None,
            run_timeout: None,
            grace: DEFAULT_GRACE,
            max_zombies: None,
            thread_name: "cortex-worker".to_owned(),
            stack_size: None,
        }
    }
}

/// Settings with every default applied.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) workers: usize,
    pub(crate) queue_capacity: usize,
    pub(crate) queue_ttl: Option<Duration>,
    pub(crate) run_timeout: Option<Duration>,
    pub(crate) grace: Duration,
    pub(crate) max_zombies: usize,
    pub(crate) thread_name: String,
    pub(crate) stack_size: Option<usize>,
}

impl WorkerPoolConfig {
    /// Checks every field of the pool named `name` and applies defaults.
    pub(crate) fn resolve(&self, name: &str) -> Result<Settings, WorkersError> {
        let workers = match self.workers {
            Some(0) => return Err(WorkersError::config(name, "workers", "must be at least 1")),
            Some(workers) => workers,
            None => std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
        };
        let queue_capacity = match self.queue_capacity {
            // A zero-capacity crossbeam channel is a rendezvous: a job would
            // be taken only by an idle worker at that instant, so
            // `try_submit` would fail while workers are between jobs.
            Some(0) => {
                return Err(WorkersError::config(
                    name,
                    "queue_capacity",
                    "must be at least 1",
                ));
            }
            Some(capacity) => capacity,
            None => workers.saturating_mul(DEFAULT_QUEUE_PER_WORKER),
        };
        if self.queue_ttl.is_some_and(|ttl| ttl.is_zero()) {
            return Err(WorkersError::config(name, "queue_ttl", "must be positive"));
        }
        if self.run_timeout.is_some_and(|timeout| timeout.is_zero()) {
            return Err(WorkersError::config(
                name,
                "run_timeout",
                "must be positive",
            ));
        }
        if self.thread_name.is_empty() || self.thread_name.contains('\0') {
            return Err(WorkersError::config(
                name,
                "thread_name",
                "must be non-empty and free of NUL bytes",
            ));
        }
        Ok(Settings {
            workers,
            queue_capacity,
            queue_ttl: self.queue_ttl,
            run_timeout: self.run_timeout,
            grace: self.grace,
            max_zombies: self.max_zombies.unwrap_or(workers),
            thread_name: self.thread_name.clone(),
            stack_size: self.stack_size,
        })
    }
}

/// Builds a [`WorkerPool`]; from [`WorkerPool::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct WorkerPoolBuilder {
    name: String,
    config: WorkerPoolConfig,
}

impl WorkerPoolBuilder {
    pub(crate) fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            config: WorkerPoolConfig::default(),
        }
    }

    /// Replaces every setting with `config` (from a config file).
    pub fn config(mut self, config: WorkerPoolConfig) -> Self {
        self.config = config;
        self
    }

    /// See [`WorkerPoolConfig::workers`].
    pub fn workers(mut self, workers: usize) -> Self {
        self.config.workers = Some(workers);
        self
    }

    /// See [`WorkerPoolConfig::queue_capacity`].
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.config.queue_capacity = Some(capacity);
        self
    }

    /// See [`WorkerPoolConfig::queue_ttl`].
    pub fn queue_ttl(mut self, ttl: Duration) -> Self {
        self.config.queue_ttl = Some(ttl);
        self
    }

    /// See [`WorkerPoolConfig::run_timeout`].
    pub fn run_timeout(mut self, timeout: Duration) -> Self {
        self.config.run_timeout = Some(timeout);
        self
    }

    /// See [`WorkerPoolConfig::grace`].
    pub fn grace(mut self, grace: Duration) -> Self {
        self.config.grace = grace;
        self
    }

    /// See [`WorkerPoolConfig::max_zombies`].
    pub fn max_zombies(mut self, max: usize) -> Self {
        self.config.max_zombies = Some(max);
        self
    }

    /// See [`WorkerPoolConfig::thread_name`].
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.config.thread_name = name.into();
        self
    }

    /// See [`WorkerPoolConfig::stack_size`].
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.config.stack_size = Some(bytes);
        self
    }

    /// Validates the settings and starts the threads.
    pub fn build(self) -> Result<WorkerPool, WorkersError> {
        let settings = self.config.resolve(&self.name)?;
        WorkerPool::start(self.name, settings)
    }
}
