//! The pool's errors: building it ([`WorkersError`]), handing it a job
//! ([`SubmitError`], which gives the job back) and a job's outcome
//! ([`JobError`]).

use std::fmt;
use std::time::Duration;

/// Building a pool failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkersError {
    /// A setting is out of range.
    #[error("worker pool {pool:?}: {field} {reason}")]
    Config {
        /// The pool's name.
        pool: String,
        /// The setting.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The operating system refused a thread.
    #[error("worker pool {pool:?}: cannot start a worker thread: {source}")]
    Spawn {
        /// The pool's name.
        pool: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl WorkersError {
    pub(crate) fn config(pool: &str, field: &'static str, reason: &'static str) -> Self {
        Self::Config {
            pool: pool.to_owned(),
            field,
            reason,
        }
    }
}

/// The pool did not take the job; the job comes back untouched, so nothing
/// is lost: retry it, run it inline, or answer 429/503.
///
/// ```
/// use cortex_workers::{SubmitError, WorkerPool};
///
/// let pool = WorkerPool::builder("doc").workers(1).queue_capacity(1).build()?;
/// let (started, release) = (std::sync::Barrier::new(2), std::sync::Arc::new(std::sync::Barrier::new(2)));
/// # let started = std::sync::Arc::new(started);
/// let (s, r) = (started.clone(), release.clone());
/// let busy = pool.try_submit(move || { s.wait(); r.wait(); }).unwrap();
/// started.wait(); // the worker is busy
/// let queued = pool.try_submit(|| 1).unwrap(); // the one queue slot
/// match pool.try_submit(|| 2) {
///     Err(SubmitError::QueueFull(job)) => assert_eq!(job(), 2), // handed back
///     other => panic!("expected a full queue, got {other:?}"),
/// }
/// release.wait();
/// busy.wait()?;
/// assert_eq!(queued.wait()?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[non_exhaustive]
pub enum SubmitError<F> {
    /// The queue is at capacity.
    QueueFull(F),
    /// `submit_timeout`: the queue stayed full for the whole wait.
    TimedOut(F),
    /// The pool is shutting down or shut down.
    ShuttingDown(F),
}

impl<F> SubmitError<F> {
    /// The job that was not taken.
    pub fn into_job(self) -> F {
        match self {
            Self::QueueFull(job) | Self::TimedOut(job) | Self::ShuttingDown(job) => job,
        }
    }

    /// Whether the pool refused because it is full (rather than closing).
    pub fn is_full(&self) -> bool {
        matches!(self, Self::QueueFull(_) | Self::TimedOut(_))
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::QueueFull(_) => "QueueFull",
            Self::TimedOut(_) => "TimedOut",
            Self::ShuttingDown(_) => "ShuttingDown",
        }
    }
}

impl<F> fmt::Debug for SubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The job is a closure: show which refusal it was, not the closure.
        write!(f, "{}(..)", self.kind())
    }
}

impl<F> fmt::Display for SubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::QueueFull(_) => "the worker pool's queue is full",
            Self::TimedOut(_) => "the worker pool's queue stayed full for the whole wait",
            Self::ShuttingDown(_) => "the worker pool is shutting down",
        })
    }
}

impl<F> std::error::Error for SubmitError<F> {}

/// Why a job has no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// Not started within the pool's queue TTL; it never ran.
    #[error("the job waited in the queue longer than its TTL and was dropped unrun")]
    Expired,
    /// Still running at the pool's run timeout (counted from its start);
    /// its cancellation token fired.
    #[error("the job ran longer than the run timeout of {}", humantime::format_duration(*after))]
    TimedOut {
        /// The run timeout.
        after: Duration,
    },
    /// The job panicked; the worker thread survived.
    #[error("the job panicked: {0}")]
    Panicked(String),
    /// [`JobHandle::cancel`](crate::JobHandle::cancel) decided it.
    #[error("the job was cancelled")]
    Cancelled,
    /// The pool shut down before the job could finish.
    #[error("the worker pool shut down before the job finished")]
    ShuttingDown,
}

#[cfg(feature = "axum")]
mod response {
    //! Submission refusals and job failures as RFC 9457 problem+json.

    use axum::response::{IntoResponse, Response};
    use http::{HeaderValue, StatusCode, header};
    use problem_details::{JsonProblemDetails, ProblemDetails, ProblemType};
    use serde::Serialize;

    use super::{JobError, SubmitError};

    /// The extension member naming the refusal, for clients that branch.
    #[derive(Serialize)]
    struct Members {
        reason: &'static str,
    }

    fn problem(status: StatusCode, reason: &'static str, detail: String) -> Response {
        let details = ProblemDetails::from_status_code(status)
            .with_type(ProblemType::default())
            .with_detail(detail)
            .with_extensions(Members { reason });
        let mut response = JsonProblemDetails::from(details).into_response();
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
            // A full queue drains in about one job's time; a client that
            // backs off a second finds room.
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }

    /// `429 Too Many Requests` for a full queue, `503 Service Unavailable`
    /// while shutting down, both with `Retry-After: 1` and a problem+json
    /// body whose `reason` is `queue_full`, `queue_timeout` or
    /// `shutting_down`. The job is dropped: take it back with
    /// [`SubmitError::into_job`] first if you want to keep it.
    impl<F> IntoResponse for SubmitError<F> {
        fn into_response(self) -> Response {
            let (status, reason) = match &self {
                Self::QueueFull(_) => (StatusCode::TOO_MANY_REQUESTS, "queue_full"),
                Self::TimedOut(_) => (StatusCode::TOO_MANY_REQUESTS, "queue_timeout"),
                Self::ShuttingDown(_) => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
            };
            problem(status, reason, self.to_string())
        }
    }

    /// `504` for `TimedOut` and `Expired`, `500` for `Panicked` (the panic
    /// text stays in the log, not the body), `503` for `ShuttingDown` and
    /// `Cancelled`; problem+json with a `reason`.
    impl IntoResponse for JobError {
        fn into_response(self) -> Response {
            let (status, reason) = match &self {
                Self::Expired => (StatusCode::GATEWAY_TIMEOUT, "expired"),
                Self::TimedOut { .. } => (StatusCode::GATEWAY_TIMEOUT, "timed_out"),
                Self::Panicked(_) => (StatusCode::INTERNAL_SERVER_ERROR, "panicked"),
                Self::Cancelled => (StatusCode::SERVICE_UNAVAILABLE, "cancelled"),
                Self::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
            };
            let detail = match &self {
                Self::Panicked(_) => "the job failed".to_owned(),
                other => other.to_string(),
            };
            problem(status, reason, detail)
        }
    }
}
