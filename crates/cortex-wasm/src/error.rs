//! [`WasmError`]: everything a host call into a guest can end in. Whatever
//! the guest does or returns, the host gets one of these, never a panic.

use std::time::Duration;

/// A failed compile, instantiation, memory operation or guest call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WasmError {
    /// The bytes are neither a valid module nor valid WAT.
    #[error("invalid module: {0}")]
    Compile(String),
    /// Reading a module file failed.
    #[error("cannot read module {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        message: String,
    },
    /// Instantiation failed: an unsatisfied import, a start function that
    /// trapped, or an initial memory above the cap.
    #[error("cannot instantiate: {0}")]
    Instantiate(String),
    /// The module does not export `name`.
    #[error("the module exports no {kind} {name:?}")]
    MissingExport {
        /// The export's name.
        name: String,
        /// What was looked for: `function` or `memory`.
        kind: &'static str,
    },
    /// The export exists with another signature.
    #[error("export {name:?} has type {found}, expected {expected}")]
    ExportType {
        /// The export's name.
        name: String,
        /// The signature wanted.
        expected: String,
        /// The signature found.
        found: String,
    },
    /// A range outside the guest's memory or outside the allocation it
    /// names (including `ptr + len` overflowing).
    #[error("{len} bytes at {ptr:#x} are out of bounds ({bound})")]
    OutOfBounds {
        /// The start.
        ptr: u64,
        /// The length.
        len: u64,
        /// What it overran: the allocation or the memory.
        bound: String,
    },
    /// `free`, `read` or `write` of a pointer no allocation starts at.
    #[error("{0:#x} is not an allocation of this instance")]
    UnknownPointer(u32),
    /// `free` of a pointer already freed.
    #[error("{0:#x} was already freed")]
    DoubleFree(u32),
    /// The guest's memory would exceed the cap (an allocation, or a guest
    /// that trapped with its memory at the cap).
    #[error("the guest's memory would exceed its cap of {cap_bytes} bytes")]
    MemoryLimitExceeded {
        /// The cap.
        cap_bytes: u64,
    },
    /// The guest trapped (`unreachable`, a panic, out-of-bounds access,
    /// division by zero, stack overflow…).
    #[error("the guest trapped: {message}")]
    GuestTrap {
        /// The trap code (`unreachable`, `heap_access_out_of_bounds`…), if
        /// the trap has one.
        code: Option<String>,
        /// wasmer's message.
        message: String,
    },
    /// The call used up its CPU budget (metering points).
    #[error("the guest used up its budget of {points} metering points")]
    Exhausted {
        /// The budget per call.
        points: u64,
    },
    /// The call ran past its wall-clock deadline and was interrupted.
    #[error("the guest ran past its deadline of {}", humanize(*deadline))]
    TimedOut {
        /// The deadline per call.
        deadline: Duration,
    },
    /// The guest broke the calling convention (a result that is not a
    /// valid `(ptr, len)`, output that is not the expected JSON…).
    #[error("the guest broke the calling convention: {0}")]
    Abi(String),
    /// The input could not be encoded, or the output decoded, as JSON.
    #[error("JSON: {0}")]
    Json(String),
    /// A host function failed or panicked inside the call.
    #[error("a host function failed: {0}")]
    Host(String),
    /// The instance trapped, timed out or hit a limit before: its state may
    /// be half updated, so it takes no more calls.
    #[error("the instance is poisoned by an earlier failure; instantiate a new one")]
    Poisoned,
    /// The pool's queue is full: shed the call (429) or retry later.
    #[error("the wasm pool's queue is full")]
    Overloaded,
    /// The pool refused the call (shutting down) or its job failed
    /// (expired, cancelled).
    #[error("worker pool: {0}")]
    Pool(String),
}

fn humanize(duration: Duration) -> String {
    format!("{duration:?}")
}

impl WasmError {
    /// Whether the instance that returned this must not be called again.
    pub(crate) fn poisons(&self) -> bool {
        matches!(
            self,
            Self::GuestTrap { .. }
                | Self::Exhausted { .. }
                | Self::TimedOut { .. }
                | Self::MemoryLimitExceeded { .. }
                | Self::Host(_)
        )
    }

    /// A short label for metrics: `trap`, `exhausted`, `timed_out`…
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Compile(_) => "compile",
            Self::Io { .. } => "io",
            Self::Instantiate(_) => "instantiate",
            Self::MissingExport { .. } => "missing_export",
            Self::ExportType { .. } => "export_type",
            Self::OutOfBounds { .. } => "out_of_bounds",
            Self::UnknownPointer(_) => "unknown_pointer",
            Self::DoubleFree(_) => "double_free",
            Self::MemoryLimitExceeded { .. } => "memory_limit",
            Self::GuestTrap { .. } => "trap",
            Self::Exhausted { .. } => "exhausted",
            Self::TimedOut { .. } => "timed_out",
            Self::Abi(_) => "abi",
            Self::Json(_) => "json",
            Self::Host(_) => "host",
            Self::Poisoned => "poisoned",
            Self::Overloaded => "overloaded",
            Self::Pool(_) => "pool",
        }
    }
}

#[cfg(feature = "axum")]
mod response {
    //! Guest failures as RFC 9457 problem+json.

    use axum::response::{IntoResponse, Response};
    use http::StatusCode;
    use problem_details::{JsonProblemDetails, ProblemDetails, ProblemType};
    use serde::Serialize;

    use super::WasmError;

    #[derive(Serialize)]
    struct Members {
        reason: &'static str,
    }

    /// `429` with `Retry-After: 1` for `Overloaded`, `504` for `TimedOut`, `422` for `Exhausted`, `MemoryLimitExceeded`,
    /// `GuestTrap` and the guest's ABI or JSON faults (the input made the
    /// guest fail), `503` for a refused pool call, `500` for the rest; a
    /// problem+json body whose `reason` is [`WasmError::kind`].
    impl IntoResponse for WasmError {
        fn into_response(self) -> Response {
            let status = match &self {
                Self::TimedOut { .. } => StatusCode::GATEWAY_TIMEOUT,
                Self::Exhausted { .. }
                | Self::MemoryLimitExceeded { .. }
                | Self::GuestTrap { .. }
                | Self::Abi(_)
                | Self::Json(_) => StatusCode::UNPROCESSABLE_ENTITY,
                Self::Pool(_) => StatusCode::SERVICE_UNAVAILABLE,
                Self::Overloaded => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let details = ProblemDetails::from_status_code(status)
                .with_type(ProblemType::default())
                .with_detail(self.to_string())
                .with_extensions(Members {
                    reason: self.kind(),
                });
            let mut response = JsonProblemDetails::from(details).into_response();
            if status == StatusCode::TOO_MANY_REQUESTS {
                response.headers_mut().insert(
                    http::header::RETRY_AFTER,
                    http::HeaderValue::from_static("1"),
                );
            }
            response
        }
    }
}
