//! Cache: an HTTP response cache ([`ResponseCache`], a tower layer) and a
//! memoizer for plain async calls ([`Memoizer`]), over one bounded store
//! (Polly's and resilience4j's cache strategy). Feature `cache`, on by
//! default.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use axum::{Router, body::Body, routing::get};
//! use cortex_resilience::ResponseCache;
//! use http::Request;
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let renders = Arc::new(AtomicUsize::new(0));
//! let counted = Arc::clone(&renders);
//! let cache = ResponseCache::builder("pages").build().unwrap();
//! let app: Router = Router::new()
//!     .route("/report", get(move || async move {
//!         counted.fetch_add(1, Ordering::SeqCst);
//!         ([("cache-control", "public, max-age=60")], "slow report")
//!     }))
//!     .layer(cache.layer());
//!
//! let get = || Request::get("/report").body(Body::empty()).unwrap();
//! let first = app.clone().oneshot(get()).await.unwrap();
//! assert_eq!(first.headers()["x-cache"], "MISS");
//! let second = app.clone().oneshot(get()).await.unwrap();
//! assert_eq!(second.headers()["x-cache"], "HIT");
//! assert_eq!(second.headers()["age"], "0");
//! assert_eq!(renders.load(Ordering::SeqCst), 1);
//! # }
//! ```
//!
//! # HTTP rules
//!
//! Storability, freshness, `Age` and `Vary` matching are
//! [http-cache-semantics](https://docs.rs/http-cache-semantics)' reading
//! of RFC 9111; the cache adds the rest:
//!
//! - Only GET is cached. HEAD, POST and every other method, range
//!   requests, upgrades (WebSocket) and requests with
//!   `Cache-Control: no-store` go straight to the service
//!   (`X-Cache: BYPASS`).
//! - A response is stored when RFC 9111 allows (a cacheable status, no
//!   `no-store`, no `private` in a shared cache, no `Authorization` on the
//!   request unless `public`/`s-maxage`/`must-revalidate`, no
//!   `Set-Cookie` unless `public`) and it has freshness: `s-maxage`
//!   (shared), `max-age`, `Expires`, the `Last-Modified` heuristic
//!   (10 % of its age), else [`ResponseCacheConfig::default_ttl`], which
//!   is zero by default: a response that says nothing is not stored.
//!   `no-cache` responses are not stored (there is no revalidation with
//!   `If-None-Match`: an expired entry is fetched again in full).
//! - **Shared by default.** A cache in front of handlers answers every
//!   user from one store, which is what RFC 9111 calls a shared cache;
//!   `.shared(false)` is for a cache that serves one user only.
//! - `Vary`: the key is the request's `Host` and URI plus, for a target
//!   whose responses vary, the request's values of the named headers;
//!   `Vary: *` is never stored.
//! - Hits carry the stored headers (hop-by-hop ones removed), `Age`
//!   (seconds since the upstream answered, plus the upstream's own
//!   `Age`), and `X-Cache`. Response extensions are not stored.
//! - Request directives are honoured: `no-cache`, `max-age`, `min-fresh`
//!   go upstream, `max-stale` accepts a stale entry.
//!
//! | `X-Cache` | meaning |
//! |---|---|
//! | `HIT` | a fresh entry answered, including a request that waited for a concurrent miss of the same key (counted as `coalesced`) |
//! | `MISS` | the service answered and the response was stored |
//! | `STALE` | a stale entry answered: stale-while-revalidate, or stale-if-error after an error or a 5xx |
//! | `BYPASS` | the service answered, nothing stored: an ineligible request, or a response that may not be stored, is too large, failed, or carried trailers |
//!
//! # Coalescing
//!
//! Concurrent misses of one key make one upstream call: the first request
//! leads, the others wait and are answered from the stored result. If the
//! leader's future is dropped (its client went away), the waiters start
//! over and one of them leads; none hangs. If the result cannot be shared
//! (not storable, too large, an error without a stale entry), each waiter
//! makes its own call, in parallel, and the target is remembered for
//! [`ResponseCacheConfig::pass_duration`] so that later requests to it go
//! straight upstream instead of queueing (Varnish's hit-for-pass).
//!
//! # Stale content (RFC 5861)
//!
//! `stale-while-revalidate=N` in the response (else the configured
//! default): for N seconds after going stale, the entry answers at once
//! (`X-Cache: STALE`) and the request that found it is sent upstream in
//! the background, one refresh per key at a time. `stale-if-error=N`: for
//! N seconds after going stale, an upstream error or 5xx is answered with
//! the entry instead. `must-revalidate`, `proxy-revalidate` (shared) and
//! `no-cache` forbid both.
//!
//! # Bounds
//!
//! One moka store per cache, bounded by total bytes (body, headers, key,
//! and the policy's copies of them) through a weigher, and by entry count:
//! every entry weighs at least `max_bytes / max_entries`, so keeping the
//! weight within `max_bytes` keeps the count within `max_entries`.
//! moka's TinyLFU admission may refuse a new entry when full (counted as
//! an eviction). Bodies over `max_entry_bytes` stream through uncached.
//! moka applies the bounds lazily; `run_pending_tasks` does it now.
//!
//! # Time
//!
//! Freshness is measured with the builder's [`Clock`](crate::Clock), so
//! tests under paused tokio time give `.clock(Clock::tokio())` and move
//! time with `tokio::time::advance`. moka's own clock only drops entries
//! whose last stale window has passed, to free memory.
//!
//! `policy` holds [`ResponseCache`] and its builder, `memoizer` the
//! [`Memoizer`], `config` the settings, stats and events; `store` the
//! bounded moka store both use, `flight` the coalescing, `response` the
//! HTTP rules, `lookup` one request's path; the tower front end is
//! `layer` ([`ResponseCacheLayer`]), `service` ([`ResponseCacheService`]),
//! `future` ([`ResponseFuture`]) and `body` ([`CacheBody`]).

mod body;
mod config;
mod flight;
mod future;
mod layer;
mod lookup;
mod memoizer;
mod policy;
mod response;
mod service;
mod store;

pub use body::CacheBody;
pub use config::{CacheEvent, CacheStats, MemoizerConfig, ResponseCacheConfig};
pub use future::ResponseFuture;
pub use layer::ResponseCacheLayer;
pub use memoizer::{Memoizer, MemoizerBuilder};
pub use policy::{ResponseCache, ResponseCacheBuilder};
pub use service::ResponseCacheService;
