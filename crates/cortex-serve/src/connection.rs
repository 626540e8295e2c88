//! One accepted connection: its activity, its in-flight requests, and the
//! task that serves it until the client leaves, it idles out, it is
//! evicted to make room, or the server shuts down.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;
use tower_service::Service;

/// Why a connection ended; also the `reason` label of
/// `cortex_server_connections_closed_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum CloseReason {
    /// The client closed it, or the connection ended by protocol (an h1
    /// `Connection: close`, hyper's header-read timeout).
    Client,
    /// No request in progress and no bytes moved for the idle timeout.
    Idle,
    /// Closed (gracefully) to admit a new connection at the cap.
    Evicted,
    /// Closed gracefully by the server's shutdown.
    Shutdown,
    /// A protocol or I/O error.
    Error,
}

// The names are for the metrics' labels.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
impl CloseReason {
    pub(crate) const ALL: [CloseReason; 5] = [
        CloseReason::Client,
        CloseReason::Idle,
        CloseReason::Evicted,
        CloseReason::Shutdown,
        CloseReason::Error,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CloseReason::Client => "client",
            CloseReason::Idle => "idle",
            CloseReason::Evicted => "evicted",
            CloseReason::Shutdown => "shutdown",
            CloseReason::Error => "error",
        }
    }
}

/// What the accept loop and the connection task share about one connection.
#[derive(Debug)]
pub(crate) struct ConnState {
    id: u64,
    /// Milliseconds since the server's epoch when bytes last moved.
    last_activity_ms: AtomicU64,
    in_flight: AtomicUsize,
    /// Whether the client has sent anything yet.
    spoke: AtomicBool,
    /// Set once a close was asked for; the reason is in `close_reason`.
    closing: AtomicBool,
    close_reason: Mutex<Option<CloseReason>>,
    close: Notify,
    epoch: Instant,
}

impl ConnState {
    fn new(id: u64, epoch: Instant) -> Self {
        let state = Self {
            id,
            last_activity_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            spoke: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            close_reason: Mutex::new(None),
            close: Notify::new(),
            epoch,
        };
        state.touch();
        state
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn touch(&self) {
        self.last_activity_ms
            .store(self.now_ms(), Ordering::Relaxed);
    }

    fn last_activity(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last_activity_ms.load(Ordering::Relaxed))
    }

    fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    /// Asks the connection to close gracefully (the first reason wins).
    pub(crate) fn request_close(&self, reason: CloseReason) {
        if !self.closing.swap(true, Ordering::AcqRel) {
            *self
                .close_reason
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(reason);
            // `notify_one` stores a permit, so a task not yet waiting sees it.
            self.close.notify_one();
        }
    }

    fn requested_reason(&self) -> Option<CloseReason> {
        *self
            .close_reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// How long a connection must have been idle before it may be evicted. A
/// younger "idle" connection may have its request in the socket buffer,
/// not yet parsed (closing it would reset the client), or be between two
/// requests of a keep-alive client.
pub(crate) const EVICTABLE_AFTER: Duration = Duration::from_secs(1);

/// Every open connection, for eviction and shutdown.
#[derive(Debug, Default)]
pub(crate) struct Connections {
    open: Mutex<HashMap<u64, Arc<ConnState>>>,
    next_id: AtomicU64,
}

impl Connections {
    pub(crate) fn open(&self, epoch: Instant) -> Arc<ConnState> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnState::new(id, epoch));
        self.lock().insert(id, Arc::clone(&state));
        state
    }

    pub(crate) fn remove(&self, state: &ConnState) {
        self.lock().remove(&state.id);
    }

    /// Asks the least recently active connection that has been idle for at
    /// least [`EVICTABLE_AFTER`] to close; false when there is none.
    pub(crate) fn evict_one(&self) -> bool {
        let open = self.lock();
        let victim = open
            .values()
            .filter(|state| {
                state.is_idle()
                    && !state.closing.load(Ordering::Acquire)
                    && state.last_activity().elapsed() >= EVICTABLE_AFTER
            })
            .min_by_key(|state| state.last_activity_ms.load(Ordering::Relaxed));
        match victim {
            Some(victim) => {
                victim.request_close(CloseReason::Evicted);
                true
            }
            None => false,
        }
    }

    pub(crate) fn close_all(&self, reason: CloseReason) {
        for state in self.lock().values() {
            state.request_close(reason);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ConnState>>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The socket, recording when bytes move (the idle clock).
struct ActivityStream {
    inner: TcpStream,
    state: Arc<ConnState>,
}

impl AsyncRead for ActivityStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.touch();
            self.state.spoke.store(true, Ordering::Relaxed);
        }
        poll
    }
}

impl AsyncWrite for ActivityStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.state.touch();
        }
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.state.touch();
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Counts a request from the call until its response head is ready; after
/// that the body's bytes keep the connection active.
struct InFlight(Arc<ConnState>);

impl InFlight {
    fn start(state: &Arc<ConnState>) -> Self {
        state.in_flight.fetch_add(1, Ordering::AcqRel);
        state.touch();
        Self(Arc::clone(state))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.touch();
    }
}

/// How long a connection may go without activity.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    /// With no request in progress and no bytes moving.
    pub(crate) idle: Duration,
    /// Before the client's first byte (the header-read timeout: hyper's own
    /// timer starts only after protocol detection has read something).
    pub(crate) first_bytes: Duration,
}

/// Serves one connection to its end and says why it ended.
pub(crate) async fn serve(
    stream: TcpStream,
    remote: SocketAddr,
    router: Router,
    builder: Arc<auto::Builder<TokioExecutor>>,
    state: Arc<ConnState>,
    timeouts: Timeouts,
) -> CloseReason {
    let io = TokioIo::new(ActivityStream {
        inner: stream,
        state: Arc::clone(&state),
    });
    let request_state = Arc::clone(&state);
    let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
        let mut request = request.map(axum::body::Body::new);
        // What `into_make_service_with_connect_info` would provide, so
        // `ConnectInfo<SocketAddr>` extractors and the trace layer work.
        request.extensions_mut().insert(ConnectInfo(remote));
        let in_flight = InFlight::start(&request_state);
        let mut router = router.clone();
        async move {
            let response = router.call(request).await;
            drop(in_flight);
            response
        }
    });
    let connection = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(connection);
    let mut closing = false;
    let limit = |state: &ConnState| {
        if state.spoke.load(Ordering::Relaxed) {
            timeouts.idle
        } else {
            timeouts.first_bytes.min(timeouts.idle)
        }
    };
    let mut idle_deadline = state.last_activity() + limit(&state);
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                return match (result, state.requested_reason()) {
                    (_, Some(reason)) => reason,
                    (Ok(()), None) => CloseReason::Client,
                    (Err(error), None) => {
                        tracing::debug!(%remote, %error, "connection ended with an error");
                        CloseReason::Error
                    }
                };
            }
            () = state.close.notified(), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep_until(idle_deadline), if !closing => {
                // Bytes may have moved since the deadline was computed.
                let now = Instant::now();
                let expires = state.last_activity() + limit(&state);
                if !state.is_idle() {
                    // A request in progress (a long poll, a slow handler)
                    // is not idle: look again a whole limit from now rather
                    // than at a deadline already past, which would spin.
                    idle_deadline = now + limit(&state);
                } else if expires <= now {
                    state.request_close(CloseReason::Idle);
                } else {
                    idle_deadline = expires;
                }
            }
        }
    }
}
