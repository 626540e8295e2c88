//! A WebAssembly host on wasmer 7 for running plug-in or untrusted code
//! inside a server, with the controls wasmer leaves to the embedder.
//!
//! - [`WasmEngine`] compiles modules (binary or WAT) with Cranelift, or
//!   singlepass (feature) for untrusted code, and caches them by the
//!   blake3 hash of their bytes.
//! - [`WasmInstance`] owns a store and a **guest memory manager**:
//!   allocations go through the guest's own allocator when it exports one
//!   (`cabi_realloc`, `alloc` + `dealloc`/`free`, wasm-bindgen's), else
//!   through a host-managed region with free-block reuse and merging; a
//!   host-side table rejects unknown pointers and double frees; every
//!   read and write is checked against its allocation and against
//!   `ptr + len <= memory size` with a fresh view.
//! - **Calls**: untyped ([`WasmInstance::call`]), typed
//!   ([`WasmInstance::typed_function`] + [`WasmInstance::call_with`]),
//!   bytes in/out and JSON in/out over one convention (input copied into a
//!   guest allocation, `f(ptr, len) -> (ptr << 32) | len`, output freed
//!   through the guest's allocator).
//! - **Limits per call**: CPU by metering points (`fuel`, a configurable
//!   cost per operator), a wall-clock `deadline` (feature `interrupt`: an
//!   endless loop is stopped, the process lives), and a linear-memory cap
//!   (`memory.grow` past it fails inside the guest). A call that traps or
//!   hits a limit poisons its instance: it is never called again.
//! - [`WasmPool`]: an instance per worker thread of a cortex-workers pool,
//!   replaced after a failure, so guests never block the async runtime
//!   and callers get the pool's backpressure, timeouts and stats.
//!
//! Every failure is a [`WasmError`], never a panic, whatever the guest
//! does or returns.
//!
//! ```
//! use cortex_wasm::{WasmEngine, WasmError};
//!
//! let engine = WasmEngine::builder().fuel(100_000).build()?;
//! let module = engine.compile(r#"(module
//!     (func (export "spin") (loop $l (br $l))))"#)?;
//! let mut instance = module.instantiate()?;
//! // An endless loop ends when its fuel runs out.
//! assert!(matches!(instance.call("spin", &[]), Err(WasmError::Exhausted { .. })));
//! // The instance may be half updated: it takes no more calls.
//! assert_eq!(instance.call("spin", &[]), Err(WasmError::Poisoned));
//! # Ok::<(), WasmError>(())
//! ```
//!
//! # Feature flags
//!
//! | feature | default | enables |
//! |---|---|---|
//! | `interrupt` | yes | wall-clock deadlines through wasmer's `experimental-host-interrupt` (SIGUSR1 to the thread running the guest; Unix only; nothing else in the process may use SIGUSR1) |
//! | `singlepass` | no | [`Compiler::Singlepass`] |
//! | `metrics` | no | `cortex_metrics::RegisterMetrics` for [`WasmPool`] |
//! | `health` | no | `WasmPool::health_check` |
//! | `axum` | no | `IntoResponse` for [`WasmError`] as RFC 9457 problem+json |
//!
//! # Minimum supported Rust version
//!
//! 1.95, wasmer 7.4's (the rest of the workspace builds with 1.88).

mod deadline;
mod engine;
mod error;
mod instance;
mod memory;
#[cfg(feature = "metrics")]
mod metrics;
mod module;
mod pool;
mod tunables;

pub use engine::{
    Compiler, CostFunction, EngineStats, WasmConfig, WasmEngine, WasmEngineBuilder, default_cost,
};
pub use error::WasmError;
pub use instance::WasmInstance;
pub use memory::{AllocatorKind, MemoryStats};
pub use module::WasmModule;
pub use pool::{WasmPool, WasmPoolStats};
/// The wasmer version this crate is built on, for [`WasmInstance::call_with`]
/// and [`WasmInstance::typed_function`]'s types.
pub use wasmer;

/// Compiles the code blocks of `docs/wasm.md` as doctests, so the guide stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/wasm.md")]
pub struct WasmGuideDoctests;
