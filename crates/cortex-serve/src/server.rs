//! [`Server`]: the settings, the accept loop and the shutdown sequence.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::connection::{self, CloseReason, Connections};
use crate::limits;
use crate::report::ShutdownReport;
use crate::state::ServerState;

/// How often a client waiting at the cap looks again for an evictable
/// idle connection.
const EVICTION_RETRY: Duration = Duration::from_millis(100);

/// Default [`Server::header_read_timeout`]: 10 s.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`Server::idle_timeout`]: 60 s.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default [`Server::drain_delay`]: 5 s.
pub const DEFAULT_DRAIN_DELAY: Duration = Duration::from_secs(5);
/// Default [`Server::shutdown_timeout`]: 20 s. With the drain delay that is
/// 25 s, inside Kubernetes' default `terminationGracePeriodSeconds` (30 s)
/// with time left for the application's own shutdown (actors, traces).
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);

/// A production server runner for an axum [`Router`]: what `axum::serve`
/// leaves out. See the [crate docs](crate) for what each setting defends
/// against.
///
/// All settings have production defaults; a `Server` is a value you
/// configure and then [`serve`](Server::serve) with.
#[derive(Debug, Clone)]
#[must_use]
pub struct Server {
    header_read_timeout: Duration,
    idle_timeout: Duration,
    max_connections: Option<usize>,
    drain_delay: Duration,
    shutdown_timeout: Duration,
    pub(crate) state: Arc<ServerState>,
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

impl Server {
    /// A server with the defaults: 10 s header read, 60 s idle, a
    /// connection cap from `RLIMIT_NOFILE`, 5 s drain, 20 s shutdown.
    pub fn new() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: None,
            drain_delay: DEFAULT_DRAIN_DELAY,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            state: Arc::default(),
        }
    }

    /// How long a client may take to send a request's headers (HTTP/1).
    /// hyper also counts the wait for the next request on a keep-alive
    /// connection against it, so it bounds HTTP/1 idle time as well.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// How long a connection may stay open with no request in progress and
    /// no bytes moving, HTTP/1 or HTTP/2.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// The most connections open at once (default: the soft
    /// `RLIMIT_NOFILE` minus a tenth, at least 64 descriptors, kept for
    /// files, pipes and outgoing connections). At the cap the least
    /// recently active connection idle for at least a second is closed to
    /// admit a new one; when every connection is busy, new ones wait in the
    /// listen backlog.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = Some(max.max(1));
        self
    }

    /// How long to keep serving after the shutdown signal, with readiness
    /// failing, before the listener closes: long enough for load balancers
    /// to see the 503 and stop routing here.
    pub fn drain_delay(mut self, delay: Duration) -> Self {
        self.drain_delay = delay;
        self
    }

    /// How long, once the listener is closed, in-flight requests may take
    /// to finish; what is left is aborted.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Marks `health` draining the moment shutdown starts, so
    /// `/health/ready` answers 503 during the drain delay.
    #[cfg(feature = "health")]
    pub fn health(self, health: cortex_health::HealthRegistry) -> Self {
        let _ = self.state.health.set(health);
        self
    }

    /// The connection cap this server will use.
    pub fn connection_limit(&self) -> usize {
        self.max_connections
            .unwrap_or_else(limits::default_max_connections)
    }

    /// Serves `router` on `listener` until `shutdown` resolves, then shuts
    /// down gracefully and says how that went:
    ///
    /// 1. readiness is marked draining and serving goes on for the drain
    ///    delay;
    /// 2. the listener closes;
    /// 3. every connection is asked to close once its in-flight requests
    ///    are done (HTTP/1 keep-alive ends, HTTP/2 sends GOAWAY), for up to
    ///    the shutdown timeout;
    /// 4. what is still running is aborted.
    ///
    /// Request handlers see `ConnectInfo<SocketAddr>` as with
    /// `into_make_service_with_connect_info`.
    pub async fn serve(
        self,
        listener: TcpListener,
        router: Router,
        shutdown: impl Future<Output = ()> + Send,
    ) -> ShutdownReport {
        let max_connections = self.connection_limit();
        self.state.set_max_connections(max_connections);
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout);
        builder.http2().timer(TokioTimer::new());
        let mut accept = Acceptor {
            listener,
            router,
            builder: Arc::new(builder),
            permits: Arc::new(Semaphore::new(max_connections)),
            connections: Arc::new(Connections::default()),
            tasks: JoinSet::new(),
            idle_timeout: self.idle_timeout,
            first_bytes_timeout: self.header_read_timeout,
            epoch: Instant::now(),
            state: Arc::clone(&self.state),
            backoff: Duration::ZERO,
        };

        accept.run_until(shutdown).await;
        let started = Instant::now();
        tracing::info!(
            drain_delay = ?self.drain_delay,
            "shutdown: readiness draining, still serving"
        );
        self.state.start_draining();
        accept.run_until(tokio::time::sleep(self.drain_delay)).await;

        let Acceptor {
            listener,
            connections,
            mut tasks,
            ..
        } = accept;
        drop(listener);
        let open = tasks.len();
        tracing::info!(
            open,
            timeout = ?self.shutdown_timeout,
            "shutdown: listener closed, finishing in-flight requests"
        );
        connections.close_all(CloseReason::Shutdown);
        let deadline = Instant::now() + self.shutdown_timeout;
        let mut drained = 0;
        while let Ok(Some(_)) = tokio::time::timeout_at(deadline, tasks.join_next()).await {
            drained += 1;
        }
        let aborted = tasks.len();
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        for _ in 0..aborted {
            self.state.closed_aborted();
        }
        let report = ShutdownReport {
            drained,
            aborted,
            elapsed: started.elapsed(),
        };
        tracing::info!(?report, "shutdown: server stopped");
        report
    }
}

/// The accept loop's state, kept across the serving and draining phases.
struct Acceptor {
    listener: TcpListener,
    router: Router,
    builder: Arc<auto::Builder<TokioExecutor>>,
    permits: Arc<Semaphore>,
    connections: Arc<Connections>,
    tasks: JoinSet<()>,
    idle_timeout: Duration,
    /// How long a new connection may stay silent: hyper's header-read timer
    /// only starts once its protocol detection has read the first bytes.
    first_bytes_timeout: Duration,
    epoch: Instant,
    state: Arc<ServerState>,
    backoff: Duration,
}

impl Acceptor {
    /// Accepts and serves connections until `stop` resolves.
    async fn run_until(&mut self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            // Reap finished tasks so the set does not grow without bound.
            while self.tasks.try_join_next().is_some() {}
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                () = &mut stop => return,
            };
            let (stream, remote) = match accepted {
                Ok(accepted) => {
                    self.backoff = Duration::ZERO;
                    accepted
                }
                Err(error) => {
                    self.accept_failed(&error).await;
                    continue;
                }
            };
            let permit = match Arc::clone(&self.permits).try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => {
                    // At the cap with a client waiting: make room by
                    // closing the least recently active idle connection
                    // (busy ones are never cut off), then admit it as soon
                    // as any connection ends. Accepting stops meanwhile,
                    // so later clients wait in the listen backlog. Until a
                    // connection has idled long enough to be evicted, look
                    // again every so often.
                    loop {
                        self.connections.evict_one();
                        tokio::select! {
                            permit = Arc::clone(&self.permits).acquire_owned() => match permit {
                                Ok(permit) => break permit,
                                Err(_) => return,
                            },
                            () = tokio::time::sleep(EVICTION_RETRY) => {}
                            () = &mut stop => return,
                        }
                    }
                }
            };
            self.spawn(stream, remote, permit);
        }
    }

    fn spawn(
        &mut self,
        stream: TcpStream,
        remote: SocketAddr,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) {
        // Responses are small and latency matters more than packet count.
        let _ = stream.set_nodelay(true);
        let conn = self.connections.open(self.epoch);
        let connections = Arc::clone(&self.connections);
        let state = Arc::clone(&self.state);
        let router = self.router.clone();
        let builder = Arc::clone(&self.builder);
        let timeouts = connection::Timeouts {
            idle: self.idle_timeout,
            first_bytes: self.first_bytes_timeout,
        };
        state.opened();
        self.tasks.spawn(async move {
            let reason =
                connection::serve(stream, remote, router, builder, Arc::clone(&conn), timeouts)
                    .await;
            connections.remove(&conn);
            state.closed(reason);
            drop(permit);
        });
    }

    /// Logs and counts an accept error; backs off when the process is out
    /// of file descriptors (retrying at once would spin the CPU).
    async fn accept_failed(&mut self, error: &io::Error) {
        let fd_limit = limits::is_fd_exhaustion(error);
        self.state.accept_error(fd_limit);
        if fd_limit {
            self.backoff =
                (self.backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
            tracing::warn!(
                %error,
                backoff = ?self.backoff,
                "accept failed: out of file descriptors; closing an idle connection and backing off"
            );
            self.connections.evict_one();
            tokio::time::sleep(self.backoff).await;
        } else {
            // ECONNABORTED and friends: one client's problem, not ours.
            tracing::debug!(%error, "accept failed");
        }
    }
}
