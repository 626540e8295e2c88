//! The attacks and the shutdown the runner exists for, on real sockets.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::{get, post};
use cortex_serve::{Server, ShutdownReport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server: its address, the trigger of its shutdown, and the
/// report it returns.
struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: JoinHandle<ShutdownReport>,
}

impl Running {
    async fn start(server: Server, router: Router) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(server.serve(listener, router, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            done,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn shut_down(&mut self) {
        let _ = self.stop.take().map(|stop| stop.send(()));
    }
}

fn app() -> Router {
    Router::new()
        .route(
            "/who",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "done"
            }),
        )
        .route(
            "/upload",
            post(|body: String| async move { body.len().to_string() }),
        )
}

/// Reads until the peer closes; `None` if it is still open at `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(within, read_all).await.ok()?;
    Some(seen)
}

#[tokio::test]
async fn serves_http1_with_the_peer_address() {
    let mut running = Running::start(Server::new(), app()).await;
    let client = reqwest::Client::new();
    let response = client.get(running.url("/who")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let peer: SocketAddr = response.text().await.unwrap().parse().unwrap();
    assert!(peer.ip().is_loopback());
    running.shut_down();
    running.done.await.unwrap();
}

#[tokio::test]
async fn a_slowloris_client_is_disconnected_after_the_header_read_timeout() {
    let running = Running::start(
        Server::new().header_read_timeout(Duration::from_millis(300)),
        app(),
    )
    .await;
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    // One byte every 100 ms: the headers never complete in time.
    let trickle = async {
        for byte in b"GET /who HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaa" {
            if stream.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), trickle).await;
    assert!(
        closed_within(&mut stream, Duration::from_secs(2))
            .await
            .is_some(),
        "the slow client still holds its connection"
    );
}

#[tokio::test]
async fn a_silent_socket_is_disconnected_after_the_header_read_timeout() {
    let running = Running::start(
        Server::new().header_read_timeout(Duration::from_millis(200)),
        app(),
    )
    .await;
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    assert!(
        closed_within(&mut stream, Duration::from_secs(3))
            .await
            .is_some()
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let running = Running::start(
        Server::new()
            .header_read_timeout(Duration::from_secs(30))
            .idle_timeout(Duration::from_millis(300)),
        app(),
    )
    .await;
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    stream
        .write_all(b"GET /who HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let seen = closed_within(&mut stream, Duration::from_secs(3))
        .await
        .expect("the idle connection stays open");
    assert!(
        seen.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
}

#[tokio::test]
async fn at_the_cap_idle_sockets_make_room_for_a_probe() {
    let running = Running::start(
        Server::new()
            .max_connections(4)
            .header_read_timeout(Duration::from_secs(30))
            .idle_timeout(Duration::from_secs(30)),
        app(),
    )
    .await;
    // More idle sockets than the cap: without eviction the probe would
    // wait 30 s behind them.
    let mut idle = Vec::new();
    for _ in 0..6 {
        idle.push(TcpStream::connect(running.addr).await.unwrap());
    }
    // Only connections idle for a second may be evicted.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let client = reqwest::Client::new();
    let probe = tokio::time::timeout(
        Duration::from_secs(5),
        client.get(running.url("/who")).send(),
    )
    .await
    .expect("the probe was locked out by idle sockets")
    .unwrap();
    assert_eq!(probe.status(), 200);
    drop(idle);
}

#[tokio::test]
async fn at_the_cap_a_busy_connection_is_not_evicted() {
    let running = Running::start(Server::new().max_connections(1), app()).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let slow = tokio::spawn({
        let request = client.get(running.url("/slow")).send();
        async move { request.await.unwrap().text().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let other = client.get(running.url("/who")).send().await.unwrap();
    assert_eq!(other.status(), 200);
    assert_eq!(slow.await.unwrap(), "done", "the busy request was cut off");
}

#[tokio::test]
async fn an_in_flight_request_finishes_during_shutdown() {
    let mut running = Running::start(
        Server::new()
            .drain_delay(Duration::ZERO)
            .shutdown_timeout(Duration::from_secs(5)),
        app(),
    )
    .await;
    let client = reqwest::Client::new();
    let slow = tokio::spawn(client.get(running.url("/slow")).send());
    tokio::time::sleep(Duration::from_millis(50)).await;
    running.shut_down();
    let response = slow.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "done");
    let report = running.done.await.unwrap();
    assert_eq!(report.aborted, 0, "{report:?}");
    assert!(report.drained >= 1, "{report:?}");
}

#[tokio::test]
async fn shutdown_aborts_a_half_sent_request_at_the_deadline() {
    let mut running = Running::start(
        Server::new()
            .drain_delay(Duration::from_millis(100))
            .shutdown_timeout(Duration::from_millis(300)),
        app(),
    )
    .await;
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten b")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = std::time::Instant::now();
    running.shut_down();
    let report = tokio::time::timeout(Duration::from_secs(5), running.done)
        .await
        .expect("shutdown hung on a half-sent request")
        .unwrap();
    assert_eq!(report.aborted, 1, "{report:?}");
    // Drain delay + shutdown timeout, plus scheduling slack.
    assert!(started.elapsed() < Duration::from_secs(2), "{report:?}");
    assert!(
        closed_within(&mut stream, Duration::from_secs(1))
            .await
            .is_some()
    );
}

#[tokio::test]
async fn after_the_drain_delay_new_connections_are_refused() {
    let mut running = Running::start(
        Server::new()
            .drain_delay(Duration::from_millis(100))
            .shutdown_timeout(Duration::from_millis(100)),
        app(),
    )
    .await;
    let addr = running.addr;
    running.shut_down();
    running.done.await.unwrap();
    assert!(TcpStream::connect(addr).await.is_err());
}

#[cfg(feature = "health")]
#[tokio::test]
async fn readiness_fails_during_the_drain_delay_while_serving_goes_on() {
    let health = cortex_health::HealthRegistry::new();
    let mut running = Running::start(
        Server::new()
            .health(health.clone())
            .drain_delay(Duration::from_millis(800))
            .shutdown_timeout(Duration::from_millis(200)),
        app().merge(health.router()),
    )
    .await;
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(running.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    running.shut_down();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Still accepting, on new connections too, but no longer ready.
    let fresh = reqwest::Client::new();
    let ready = fresh.get(running.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(
        fresh
            .get(running.url("/who"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    running.done.await.unwrap();
}

#[cfg(feature = "metrics")]
#[tokio::test]
async fn connections_and_their_endings_are_counted() {
    use cortex_metrics::{Format, MetricsRegistry, RegisterMetrics};
    let metrics = MetricsRegistry::new();
    let server = Server::new()
        .max_connections(2)
        .header_read_timeout(Duration::from_secs(30))
        .idle_timeout(Duration::from_secs(30));
    server.register_metrics(&metrics).unwrap();
    server.register_metrics(&metrics).unwrap();
    let mut running = Running::start(server, app()).await;
    let first = TcpStream::connect(running.addr).await.unwrap();
    let second = TcpStream::connect(running.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(running.url("/who"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    running.shut_down();
    running.done.await.unwrap();
    drop((first, second));
    let text = metrics.encode(Format::Prometheus);
    assert!(text.contains("cortex_server_max_connections 2\n"), "{text}");
    assert!(
        text.contains("cortex_server_connections_closed_total{reason=\"evicted\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("cortex_server_connections 0\n"), "{text}");
}

/// Many short connections through a small cap: every one is served and
/// every one is accounted for exactly once.
#[cfg(feature = "metrics")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_through_a_small_cap_is_served_and_counted_once() {
    use cortex_metrics::{Format, MetricsRegistry, RegisterMetrics};
    const CLIENTS: usize = 16;
    const REQUESTS_EACH: usize = 10;
    let metrics = MetricsRegistry::new();
    let server = Server::new().max_connections(3);
    server.register_metrics(&metrics).unwrap();
    let mut running = Running::start(server, app()).await;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let url = running.url("/who");
        clients.push(tokio::spawn(async move {
            // No pooling: a new connection per request.
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap();
            for _ in 0..REQUESTS_EACH {
                let response = client.get(&url).send().await.unwrap();
                assert_eq!(response.status(), 200);
                response.text().await.unwrap();
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    running.shut_down();
    running.done.await.unwrap();
    let text = metrics.encode(Format::Prometheus);
    let closed: u64 = text
        .lines()
        .filter(|line| line.starts_with("cortex_server_connections_closed_total{"))
        .map(|line| line.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(closed, (CLIENTS * REQUESTS_EACH) as u64, "{text}");
    assert!(text.contains("cortex_server_connections 0\n"), "{text}");
}

#[test]
fn the_default_connection_cap_leaves_descriptors_free() {
    let soft_limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .map_or(u64::MAX, |limit| limit);
    let cap = Server::default().connection_limit() as u64;
    assert!(cap >= 1);
    assert!(
        cap < soft_limit,
        "the cap {cap} leaves no descriptor free of {soft_limit}"
    );
    // An explicit cap wins, and is at least one connection.
    assert_eq!(Server::new().max_connections(7).connection_limit(), 7);
    assert_eq!(Server::new().max_connections(0).connection_limit(), 1);
}

#[tokio::test]
async fn a_request_longer_than_the_idle_timeout_is_not_cut_off() {
    let running = Running::start(
        Server::new().idle_timeout(Duration::from_millis(100)),
        app(),
    )
    .await;
    // /slow moves no bytes for 300 ms: busy, not idle.
    let response = reqwest::get(running.url("/slow")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "done");
}
