//! The response cache and the memoizer: HTTP freshness, `Vary`, `Age`,
//! coalescing (exact upstream call counts), cancelled leaders, RFC 5861
//! stale content, the byte bound, and pass-through of what may not be
//! stored. Time is tokio's, paused, read through `Clock::tokio()`.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use cortex_metrics::{Format, MetricsRegistry, RegisterMetrics};
use cortex_resilience::{
    CacheEvent, Clock, ConfigError, Memoizer, PolicyRegistry, RegistryConfig, ResilienceError,
    ResponseCache, ResponseCacheBuilder,
};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use tower::util::BoxCloneService;
use tower::{Layer, ServiceExt, service_fn};

type Reply = Result<Response<Full<Bytes>>, io::Error>;
type Upstream = BoxCloneService<Request<Full<Bytes>>, Response<Full<Bytes>>, io::Error>;

/// A counted upstream: `answer(n, request)` answers its `n`th call (from 0).
fn upstream<F, Fut>(calls: &Arc<AtomicUsize>, answer: F) -> Upstream
where
    F: Fn(usize, Request<Full<Bytes>>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    let calls = Arc::clone(calls);
    BoxCloneService::new(service_fn(move |request| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        answer(n, request)
    }))
}

fn ok(cache_control: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    if !cache_control.is_empty() {
        response.headers_mut().insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_str(cache_control).unwrap(),
        );
    }
    response
}

fn request(method: Method, uri: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(Full::default())
        .unwrap()
}

fn get(uri: &str) -> Request<Full<Bytes>> {
    request(Method::GET, uri)
}

fn cache(name: &str) -> ResponseCacheBuilder {
    ResponseCache::builder(name).clock(Clock::tokio())
}

/// Status, `X-Cache`, `Age` and body of a response.
async fn read<B>(response: Response<B>) -> (StatusCode, String, Option<String>, Bytes)
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let status = response.status();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|value| value.to_str().unwrap().to_owned())
    };
    let x_cache = header("x-cache").expect("every answer says X-Cache");
    let age = header("age");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, x_cache, age, body)
}

#[tokio::test(start_paused = true)]
async fn a_fresh_response_is_answered_from_the_cache() {
    let calls = Arc::new(AtomicUsize::new(0));
    let cache = cache("pages").build().unwrap();
    let service = cache.layer().layer(upstream(&calls, |n, _| async move {
        Ok(ok("max-age=60", format!("render {n}")))
    }));
    let (status, x_cache, age, body) =
        read(service.clone().oneshot(get("/a")).await.unwrap()).await;
    assert_eq!(
        (status, x_cache.as_str(), body.as_ref()),
        (StatusCode::OK, "MISS", &b"render 0"[..])
    );
    assert_eq!(age.as_deref(), Some("0"));
    let (_, x_cache, _, body) = read(service.clone().oneshot(get("/a")).await.unwrap()).await;
    assert_eq!((x_cache.as_str(), body.as_ref()), ("HIT", &b"render 0"[..]));
    // Another target is another entry.
    let (_, x_cache, _, body) =
        read(service.clone().oneshot(get("/a?page=2")).await.unwrap()).await;
    assert_eq!(
        (x_cache.as_str(), body.as_ref()),
        ("MISS", &b"render 1"[..])
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.bypassed), (1, 2, 0));
}

#[tokio::test(start_paused = true)]
async fn max_age_expires_and_age_counts_the_seconds_held() {
    let calls = Arc::new(AtomicUsize::new(0));
    let service =
        cache("pages")
            .build()
            .unwrap()
            .layer()
            .layer(upstream(&calls, |n, _| async move {
                let mut response = ok("max-age=10", format!("v{n}"));
                // The upstream's own Age counts against max-age and adds to ours.
                response
                    .headers_mut()
                    .insert("age", HeaderValue::from_static("2"));
                Ok(response)
            }));
    let (_, x_cache, age, _) = read(service.clone().oneshot(get("/x")).await.unwrap()).await;
    assert_eq!((x_cache.as_str(), age.as_deref()), ("MISS", Some("2")));
    tokio::time::advance(Duration::from_secs(5)).await;
    let (_, x_cache, age, body) = read(service.clone().oneshot(get("/x")).await.unwrap()).await;
    assert_eq!(
        (x_cache.as_str(), age.as_deref(), body.as_ref()),
        ("HIT", Some("7"), &b"v0"[..])
    );
    // 2 + 8 = 10 s old: no longer fresh.
    tokio::time::advance(Duration::from_secs(3)).await;
    let (_, x_cache, age, body) = read(service.clone().oneshot(get("/x")).await.unwrap()).await;
    assert_eq!(
        (x_cache.as_str(), age.as_deref(), body.as_ref()),
        ("MISS", Some("2"), &b"v1"[..])
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn no_store_private_and_no_freshness_are_not_stored() {
    for cache_control in [
        "no-store, max-age=60",
        "private, max-age=60",
        "no-cache",
        "",
    ] {
        let calls = Arc::new(AtomicUsize::new(0));
        let cache = cache("pages").build().unwrap();
        let service = cache
            .layer()
            .layer(upstream(&calls, move |_, _| async move {
                Ok(ok(cache_control, "fresh"))
            }));
        for _ in 0..3 {
            let (status, x_cache, _, body) =
                read(service.clone().oneshot(get("/p")).await.unwrap()).await;
            assert_eq!(
                (status, x_cache.as_str(), body.as_ref()),
                (StatusCode::OK, "BYPASS", &b"fresh"[..]),
                "{cache_control}"
            );
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3, "{cache_control}");
        assert_eq!(cache.stats().bypassed, 3);
    }
}

#[tokio::test(start_paused = true)]
async fn a_private_cache_stores_private_responses() {
    let calls = Arc::new(AtomicUsize::new(0));
    let service = cache("mine")
        .shared(false)
        .build()
        .unwrap()
        .layer()
        .layer(upstream(&calls, |_, _| async {
            Ok(ok("private, max-age=60", "mine"))
        }));
    service.clone().oneshot(get("/me")).await.unwrap();
    let (_, x_cache, _, _) = read(service.clone().oneshot(get("/me")).await.unwrap()).await;
    assert_eq!(x_cache, "HIT");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn default_ttl_gives_unstated_freshness() {
    let calls = Arc::new(AtomicUsize::new(0));
    let service = cache("pages")
        .default_ttl(Duration::from_secs(5))
        .build()
        .unwrap()
        .layer()
        .layer(upstream(&calls, |_, _| async { Ok(ok("", "plain")) }));
    let (_, first, _, _) = read(service.clone().oneshot(get("/d")).await.unwrap()).await;
    let (_, second, _, _) = read(service.clone().oneshot(get("/d")).await.unwrap()).await;
    tokio::time::advance(Duration::from_secs(5)).await;
    let (_, third, _, _) = read(service.clone().oneshot(get("/d")).await.unwrap()).await;
    assert_eq!([first, second, third], ["MISS", "HIT", "MISS"]);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn vary_keeps_one_entry_per_variant() {
    let calls = Arc::new(AtomicUsize::new(0));
    let service =
        cache("pages")
            .build()
            .unwrap()
            .layer()
            .layer(upstream(&calls, |_, request| async move {
                let language = request.headers().get("accept-language").cloned();
                let mut response = ok(
                    "max-age=60",
                    match &language {
                        Some(language) => format!("hello in {}", language.to_str().unwrap()),
                        None => "hello".to_owned(),
                    },
                );
                response
                    .headers_mut()
                    .insert("vary", HeaderValue::from_static("Accept-Language"));
                Ok(response)
            }));
    let in_language = |language: Option<&'static str>| {
        let mut request = get("/greeting");
        if let Some(language) = language {
            request
                .headers_mut()
                .insert("accept-language", HeaderValue::from_static(language));
        }
        request
    };
    let mut seen = Vec::new();
    for language in [Some("en"), Some("fr"), Some("en"), None, Some("fr"), None] {
        let (_, x_cache, _, body) = read(
            service
                .clone()
                .oneshot(in_language(language))
                .await
                .unwrap(),
        )
        .await;
        seen.push((x_cache, String::from_utf8(body.to_vec()).unwrap()));
    }
    let expected = [
        ("MISS", "hello in en"),
        ("MISS", "hello in fr"),
        ("HIT", "hello in en"),
        ("MISS", "hello"),
        ("HIT", "hello in fr"),
        ("HIT", "hello"),
    ];
    let seen: Vec<(&str, &str)> = seen.iter().map(|(x, b)| (x.as_str(), b.as_str())).collect();
    assert_eq!(seen, expected);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn fifty_concurrent_misses_make_one_upstream_call() {
    let calls = Arc::new(AtomicUsize::new(0));
    let cache = cache("pages").build().unwrap();
    let service = cache.layer().layer(upstream(&calls, |n, _| async move {
        // Paused time moves only once every request is waiting.
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(ok("max-age=60", format!("render {n}")))
    }));
    let tasks: Vec<_> = (0..50)
        .map(|_| tokio::spawn(service.clone().oneshot(get("/slow"))))
        .collect();
    let mut x_caches = Vec::new();
    for task in tasks {
        let (status, x_cache, _, body) = read(task.await.unwrap().unwrap()).await;
        assert_eq!((status, body.as_ref()), (StatusCode::OK, &b"render 0"[..]));
        x_caches.push(x_cache);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(x_caches.iter().filter(|x| *x == "MISS").count(), 1);
    assert_eq!(x_caches.iter().filter(|x| *x == "HIT").count(), 49);
    let stats = cache.stats();
    assert_eq!((stats.misses, stats.coalesced, stats.hits), (1, 49, 0));
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_leader_hands_the_call_to_a_waiter() {
    let calls = Arc::new(AtomicUsize::new(0));
    let cache = cache("pages").build().unwrap();
    let service = cache.layer().layer(upstream(&calls, |n, _| async move {
        if n == 0 {
            // The first caller's upstream never answers; its client leaves.
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(ok("max-age=60", format!("render {n}")))
    }));
    let leader = tokio::spawn(service.clone().oneshot(get("/slow")));
    // Until every task waits: the leader in the upstream.
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let waiters: Vec<_> = (0..10)
        .map(|_| tokio::spawn(service.clone().oneshot(get("/slow"))))
        .collect();
    tokio::time::sleep(Duration::from_millis(1)).await;
    // Nobody else went upstream: they all wait for the leader.
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    let mut x_caches = Vec::new();
    for waiter in waiters {
        let (status, x_cache, _, body) = read(waiter.await.unwrap().unwrap()).await;
        assert_eq!((status, body.as_ref()), (StatusCode::OK, &b"render 1"[..]));
        x_caches.push(x_cache);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    x_caches.sort();
    assert_eq!(x_caches.first().map(String::as_str), Some("HIT"));
    assert_eq!(x_caches.iter().filter(|x| *x == "MISS").count(), 1);
    assert_eq!(cache.stats().coalesced, 9);
}

#[tokio::test(start_paused = true)]
async fn stale_if_error_answers_5xx_and_errors_with_the_stale_entry() {
    let calls = Arc::new(AtomicUsize::new(0));
    let service =
        cache("pages")
            .build()
            .unwrap()
            .layer()
            .layer(upstream(&calls, |n, _| async move {
                match n {
                    0 => Ok(ok("max-age=1, stale-if-error=60", "good")),
                    1 | 3 => {
                        let mut response = ok("", "upstream broke");
                        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                        Ok(response)
                    }
                    _ => Err(io::Error::other("connection refused")),
                }
            }));
    service.clone().oneshot(get("/s")).await.unwrap();
    tokio::time::advance(Duration::from_secs(2)).await;
    // A 503: the stale entry answers, with its age.
    let (status, x_cache, age, body) =
        read(service.clone().oneshot(get("/s")).await.unwrap()).await;
    assert_eq!(
        (status, x_cache.as_str(), age.as_deref(), body.as_ref()),
        (StatusCode::OK, "STALE", Some("2"), &b"good"[..])
    );
    // An error: the same.
    let (status, x_cache, _, body) = read(service.clone().oneshot(get("/s")).await.unwrap()).await;
    assert_eq!(
        (status, x_cache.as_str(), body.as_ref()),
        (StatusCode::OK, "STALE", &b"good"[..])
    );
    // Past 1 + 60 s the window is closed: failures pass through.
    tokio::time::advance(Duration::from_secs(60)).await;
    let (status, x_cache, _, body) = read(service.clone().oneshot(get("/s")).await.unwrap()).await;
    assert_eq!(
        (status, x_cache.as_str(), body.as_ref()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "BYPASS",
            &b"upstream broke"[..]
        )
    );
    let error = service.clone().oneshot(get("/s")).await.unwrap_err();
    assert_eq!(error.to_string(), "connection refused");
    assert_eq!(calls.load(Ordering::SeqCst), 5);
}

#[tokio::test(start_paused = true)]
async fn configured_stale_if_error_applies_when_the_response_says_nothing() {
    let calls = Arc::new(AtomicUsize::new(0));
    let service = cache("pages")
        .stale_if_error(Duration::from_secs(30))
        .build()
        .unwrap()
        .layer()
        .layer(upstream(&calls, |n, _| async move {
            if n == 0 {
                Ok(ok("max-age=1", "good"))
            } else {
                Err(io::Error::other("down"))
            }
        }));
    service.clone().oneshot(get("/c")).await.unwrap();
    tokio::time::advance(Duration::from_secs(10)).await;
    let (_, x_cache, _, body) = read(service.clone().oneshot(get("/c")).await.unwrap()).await;
    assert_eq!((x_cache.as_str(), body.as_ref()), ("STALE", &b"good"[..]));
}

#[tokio::test(start_paused = true)]
async fn must_revalidate_forbids_stale_answers() {
    let calls = Arc::new(AtomicUsize::new(0));
    let service = cache("pages")
        .stale_if_error(Duration::from_secs(30))
        .build()
        .unwrap()
        .layer()
        .layer(upstream(&calls, |n, _| async move {
            if n == 0 {
                Ok(ok("max-age=1, must-revalidate, stale-if-error=30", "good"))
            } else {
                Err(io::Error::other("down"))
            }
        }));
    service.clone().oneshot(get("/m")).await.unwrap();
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(service.clone().oneshot(get("/m")).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn stale_while_revalidate_answers_at_once_and_refreshes_once() {
    let calls = Arc::new(AtomicUsize::new(0));
    let cache = cache("pages").build().unwrap();
    let service = cache.layer().layer(upstream(&calls, |n, _| async move {
        if n > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Ok(ok("max-age=1, stale-while-revalidate=30", format!("v{n}")))
    }));
    service.clone().oneshot(get("/w")).await.unwrap();
    tokio::time::advance(Duration::from_secs(2)).await;
    for _ in 0..5 {
        // No sleep elapses: each answer is immediate, and stale.
        let started = tokio::time::Instant::now();
        let (_, x_cache, _, body) = read(service.clone().oneshot(get("/w")).await.unwrap()).await;
        assert_eq!((x_cache.as_str(), body.as_ref()), ("STALE", &b"v0"[..]));
        assert_eq!(started.elapsed(), Duration::ZERO);
    }
    // Let the background task run (it then sleeps in the upstream): one
    // refresh for the five stale answers.
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(cache.stats().refreshes, 1);
    // The refresh lands 1 s later, fresh for 1 s.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, x_cache, _, body) = read(service.clone().oneshot(get("/w")).await.unwrap()).await;
    assert_eq!((x_cache.as_str(), body.as_ref()), ("HIT", &b"v1"[..]));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let stats = cache.stats();
    assert_eq!((stats.misses, stats.stale, stats.hits), (1, 5, 1));
}

#[tokio::test(start_paused = true)]
async fn the_byte_bound_evicts_and_holds() {
    let calls = Arc::new(AtomicUsize::new(0));
    let max_bytes = 64 * 1024;
    let cache = cache("pages")
        .max_bytes(max_bytes)
        .max_entry_bytes(8 * 1024)
        .build()
        .unwrap();
    let service = cache.layer().layer(upstream(&calls, |_, _| async {
        Ok(ok("max-age=600", vec![b'x'; 4096]))
    }));
    for page in 0..64 {
        let (_, x_cache, _, body) = read(
            service
                .clone()
                .oneshot(get(&format!("/page/{page}")))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((x_cache.as_str(), body.len()), ("MISS", 4096));
    }
    cache.run_pending_tasks().await;
    let stats = cache.stats();
    assert!(stats.evictions_size > 0, "{stats:?}");
    assert!(stats.size_bytes <= max_bytes, "{stats:?}");
    assert!(stats.size_bytes > 4096, "{stats:?}");
    // 64 entries of over 4 KiB cannot all fit in 64 KiB.
    assert!(stats.entries < 16, "{stats:?}");
    let metrics = MetricsRegistry::new();
    cache.register_metrics(&metrics).unwrap();
    let text = metrics.encode(Format::Prometheus);
    let evictions = format!(
        "cortex_cache_evictions_total{{name=\"pages\",cause=\"size\"}} {}",
        stats.evictions_size
    );
    assert!(text.contains(&evictions), "{text}");
    assert!(text.contains(&format!(
        "cortex_cache_size_bytes{{name=\"pages\"}} {}",
        stats.size_bytes
    )));
    assert!(text.contains(&format!(
        "cortex_cache_max_size_bytes{{name=\"pages\"}} {max_bytes}"
    )));
}

#[tokio::test(start_paused = true)]
async fn the_entry_bound_holds() {
    let calls = Arc::new(AtomicUsize::new(0));
    let cache = cache("pages").max_entries(4).build().unwrap();
    let service = cache.layer().layer(upstream(&calls, |_, _| async {
        Ok(ok("max-age=600", "tiny"))
    }));
    for page in 0..20 {
        service
            .clone()
            .oneshot(get(&format!("/{page}")))
            .await
            .unwrap();
    }
    cache.run_pending_tasks().await;
    let stats = cache.stats();
    assert!(stats.entries <= 4, "{stats:?}");
    assert_eq!(stats.evictions_size, 20 - stats.entries, "{stats:?}");
}

/// A body of `chunks` chunks of `size` bytes, of unknown length.
struct Chunks {
    left: usize,
    size: usize,
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        self.left -= 1;
        let byte = b'a' + (self.left % 26) as u8;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![byte; self.size])))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::new()
    }
}

#[tokio::test(start_paused = true)]
async fn a_body_over_max_entry_bytes_streams_through_intact() {
    let calls = Arc::new(AtomicUsize::new(0));
    let cache = cache("pages").max_entry_bytes(1024).build().unwrap();
    let counted = Arc::clone(&calls);
    let service = cache
        .layer()
        .layer(service_fn(move |_: Request<Full<Bytes>>| {
            counted.fetch_add(1, Ordering::SeqCst);
            let mut response = Response::new(Chunks {
                left: 10,
                size: 300,
            });
            response
                .headers_mut()
                .insert("cache-control", HeaderValue::from_static("max-age=60"));
            async move { Ok::<_, Infallible>(response) }
        }));
    let expected: Vec<u8> = (0..10usize)
        .rev()
        .flat_map(|left| vec![b'a' + (left % 26) as u8; 300])
        .collect();
    for _ in 0..2 {
        let (status, x_cache, _, body) =
            read(service.clone().oneshot(get("/big")).await.unwrap()).await;
        assert_eq!((status, x_cache.as_str()), (StatusCode::OK, "BYPASS"));
        assert_eq!(body.as_ref(), expected.as_slice());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // A body that says it is too large is not read before it is sent.
    let calls = Arc::new(AtomicUsize::new(0));
    let service = cache.layer().layer(upstream(&calls, |_, _| async {
        Ok(ok("max-age=60", vec![7u8; 4096]))
    }));
    let (_, x_cache, _, body) =
        read(service.clone().oneshot(get("/big-known")).await.unwrap()).await;
    assert_eq!(
        (x_cache.as_str(), body.as_ref()),
        ("BYPASS", &[7u8; 4096][..])
    );
}

#[tokio::test(start_paused = true)]
async fn head_post_and_ranges_are_not_cached() {
    let calls = Arc::new(AtomicUsize::new(0));
    let cache = cache("pages").build().unwrap();
    let service = cache.layer().layer(upstream(&calls, |_, _| async {
        Ok(ok("max-age=60", "body"))
    }));
    for method in [Method::HEAD, Method::POST, Method::HEAD, Method::POST] {
        let (_, x_cache, _, _) = read(
            service
                .clone()
                .oneshot(request(method, "/r"))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(x_cache, "BYPASS");
    }
    let mut range = get("/r");
    range
        .headers_mut()
        .insert("range", HeaderValue::from_static("bytes=0-1"));
    let (_, x_cache, _, _) = read(service.clone().oneshot(range).await.unwrap()).await;
    assert_eq!(x_cache, "BYPASS");
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    // Nothing was stored: the first GET is a miss.
    let (_, x_cache, _, _) = read(service.clone().oneshot(get("/r")).await.unwrap()).await;
    assert_eq!(x_cache, "MISS");
    assert_eq!(cache.stats().bypassed, 5);
}

#[tokio::test(start_paused = true)]
async fn a_request_that_asks_for_no_cache_goes_upstream_and_refreshes() {
    let calls = Arc::new(AtomicUsize::new(0));
    let service = cache("pages")
        .build()
        .unwrap()
        .layer()
        .layer(upstream(&calls, |n, _| async move {
            Ok(ok("max-age=60", format!("v{n}")))
        }));
    service.clone().oneshot(get("/n")).await.unwrap();
    let mut no_cache = get("/n");
    no_cache
        .headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-cache"));
    let (_, x_cache, _, body) = read(service.clone().oneshot(no_cache).await.unwrap()).await;
    assert_eq!((x_cache.as_str(), body.as_ref()), ("MISS", &b"v1"[..]));
    let (_, x_cache, _, body) = read(service.clone().oneshot(get("/n")).await.unwrap()).await;
    assert_eq!((x_cache.as_str(), body.as_ref()), ("HIT", &b"v1"[..]));
}

#[tokio::test(start_paused = true)]
async fn an_uncacheable_target_is_not_coalesced_again() {
    let calls = Arc::new(AtomicUsize::new(0));
    let cache = cache("pages").build().unwrap();
    let service = cache.layer().layer(upstream(&calls, |_, _| async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(ok("no-store", "personal"))
    }));
    service.clone().oneshot(get("/me")).await.unwrap();
    // Remembered as uncacheable: ten concurrent requests all go upstream
    // at once, none waits for another.
    let started = tokio::time::Instant::now();
    let tasks: Vec<_> = (0..10)
        .map(|_| tokio::spawn(service.clone().oneshot(get("/me"))))
        .collect();
    for task in tasks {
        let (_, x_cache, _, _) = read(task.await.unwrap().unwrap()).await;
        assert_eq!(x_cache, "BYPASS");
    }
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    assert_eq!(calls.load(Ordering::SeqCst), 11);
    assert_eq!(cache.stats().coalesced, 0);
}

#[tokio::test]
async fn the_layer_serves_an_axum_router() {
    use axum::{Router, body::Body, routing::get as route};

    let renders = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&renders);
    let cache = ResponseCache::builder("api").build().unwrap();
    let app: Router = Router::new()
        .route(
            "/report",
            route(move || async move {
                counted.fetch_add(1, Ordering::SeqCst);
                ([("cache-control", "public, max-age=60")], "report")
            }),
        )
        .layer(cache.layer());
    for expected in ["MISS", "HIT", "HIT"] {
        let response = app
            .clone()
            .oneshot(Request::get("/report").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.headers()["x-cache"], expected);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body.as_ref(), b"report");
    }
    assert_eq!(renders.load(Ordering::SeqCst), 1);

    // On one route only, through its method router.
    let only_slow: Router = Router::new()
        .route(
            "/slow",
            route(|| async { ([("cache-control", "max-age=5")], "slow") }).layer(cache.layer()),
        )
        .route("/fast", route(|| async { "fast" }));
    for (uri, expected) in [
        ("/slow", Some("MISS")),
        ("/slow", Some("HIT")),
        ("/fast", None),
    ] {
        let response = only_slow
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let x_cache = response
            .headers()
            .get("x-cache")
            .map(|v| v.to_str().unwrap());
        assert_eq!(x_cache, expected, "{uri}");
    }
}

#[tokio::test]
async fn caches_are_registered_declared_and_exported() {
    let config: RegistryConfig = serde_json::from_str(
        r#"{ "caches": { "pages": { "max_bytes": 1048576, "stale_if_error": "1m" } } }"#,
    )
    .unwrap();
    let policies = PolicyRegistry::from_config(&config).unwrap();
    let pages = policies.response_cache("pages").unwrap();
    assert_eq!(pages.config().stale_if_error, Duration::from_secs(60));
    let prices: Memoizer<u32, u32> = Memoizer::builder("prices").build().unwrap();
    policies.register_memoizer(prices.clone()).unwrap();
    let error = policies
        .register_response_cache(ResponseCache::builder("prices").build().unwrap())
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "a cache named \"prices\" is already registered"
    );

    let calls = Arc::new(AtomicUsize::new(0));
    let service = pages
        .layer()
        .layer(upstream(&calls, |_, _| async { Ok(ok("max-age=60", "p")) }));
    service.clone().oneshot(get("/p")).await.unwrap();
    service.clone().oneshot(get("/p")).await.unwrap();
    prices
        .execute(1, || async { Ok::<_, ()>(10) })
        .await
        .unwrap();

    let metrics = MetricsRegistry::new();
    policies.register_metrics(&metrics).unwrap();
    let text = metrics.encode(Format::Prometheus);
    for line in [
        r#"cortex_cache_requests_total{name="pages",kind="hit"} 1"#,
        r#"cortex_cache_requests_total{name="pages",kind="miss"} 1"#,
        r#"cortex_cache_requests_total{name="pages",kind="coalesced"} 0"#,
        r#"cortex_cache_requests_total{name="prices",kind="miss"} 1"#,
        r#"cortex_cache_max_entries{name="pages"} 10000"#,
        r#"cortex_cache_max_size_bytes{name="pages"} 1048576"#,
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
    // `prices` has no byte bound: no max_size_bytes sample.
    assert!(!text.contains(r#"cortex_cache_max_size_bytes{name="prices"}"#));

    let stats = serde_json::to_value(policies.all_stats()).unwrap();
    assert_eq!(stats["caches"][0]["name"], "pages");
    assert_eq!(stats["caches"][0]["kind"], "http");
    assert_eq!(stats["caches"][0]["hits"], 1);
    assert_eq!(stats["caches"][1]["kind"], "memoizer");
    // Without caches, `/resilience` keeps its shape.
    let empty = serde_json::to_value(PolicyRegistry::new().all_stats()).unwrap();
    assert!(empty.get("caches").is_none());
}

#[test]
fn bad_settings_name_the_cache() {
    let error = ResponseCache::builder("pages")
        .max_bytes(1024)
        .max_entry_bytes(4096)
        .build()
        .unwrap_err();
    assert_eq!(
        error,
        ConfigError {
            policy: "ResponseCache",
            name: "pages".to_owned(),
            field: "max_entry_bytes",
            reason: "must not exceed max_bytes",
        }
    );
    let error = Memoizer::<u8, u8>::builder("m")
        .max_bytes(10)
        .build()
        .unwrap_err();
    assert_eq!(
        (error.field, error.reason),
        ("max_bytes", "needs a weigher")
    );
    let error = Memoizer::<u8, u8>::builder("m")
        .ttl(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!((error.field, error.reason), ("ttl", "must be positive"));
}

fn memoizer(name: &str) -> cortex_resilience::MemoizerBuilder<&'static str, String> {
    Memoizer::builder(name).clock(Clock::tokio())
}

#[tokio::test(start_paused = true)]
async fn memoizer_coalesces_fifty_concurrent_misses() {
    let calls = Arc::new(AtomicUsize::new(0));
    let memo = memoizer("m").build().unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let memo = memo.clone();
            let calls = Arc::clone(&calls);
            tokio::spawn(async move {
                memo.execute("k", move || async move {
                    let n = calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    Ok::<_, io::Error>(format!("value {n}"))
                })
                .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), "value 0");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let stats = memo.stats();
    assert_eq!((stats.misses, stats.coalesced), (1, 49));
}

#[tokio::test(start_paused = true)]
async fn memoizer_waiters_take_over_from_a_cancelled_caller() {
    let calls = Arc::new(AtomicUsize::new(0));
    let memo = memoizer("m").build().unwrap();
    let call = |calls: Arc<AtomicUsize>| {
        move || async move {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                std::future::pending::<()>().await;
            }
            Ok::<_, io::Error>("late".to_owned())
        }
    };
    let first = {
        let memo = memo.clone();
        let call = call(Arc::clone(&calls));
        tokio::spawn(async move { memo.execute("k", call).await })
    };
    tokio::time::sleep(Duration::from_millis(1)).await;
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let memo = memo.clone();
            let call = call(Arc::clone(&calls));
            tokio::spawn(async move { memo.execute("k", call).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1)).await;
    first.abort();
    for waiter in waiters {
        assert_eq!(waiter.await.unwrap().unwrap(), "late");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn memoizer_stale_if_error_and_errors_otherwise() {
    let memo = memoizer("m")
        .ttl(Duration::from_secs(10))
        .stale_if_error(Duration::from_secs(20))
        .build()
        .unwrap();
    assert_eq!(
        memo.execute("k", || async { Ok::<_, &str>("v".to_owned()) })
            .await,
        Ok("v".to_owned())
    );
    tokio::time::advance(Duration::from_secs(15)).await;
    assert_eq!(
        memo.execute("k", || async { Err("down") }).await,
        Ok("v".to_owned())
    );
    tokio::time::advance(Duration::from_secs(20)).await;
    assert_eq!(
        memo.execute("k", || async { Err("down") }).await,
        Err(ResilienceError::Inner("down"))
    );
    let stats = memo.stats();
    assert_eq!((stats.misses, stats.stale, stats.bypassed), (1, 1, 1));
}

#[tokio::test(start_paused = true)]
async fn memoizer_stale_while_revalidate_refreshes_once() {
    let calls = Arc::new(AtomicUsize::new(0));
    let memo = memoizer("m")
        .ttl(Duration::from_secs(1))
        .stale_while_revalidate(Duration::from_secs(30))
        .build()
        .unwrap();
    let events = Arc::new(AtomicUsize::new(0));
    let refreshes = Arc::clone(&events);
    memo.on_event(move |event| {
        if *event == CacheEvent::Refresh {
            refreshes.fetch_add(1, Ordering::SeqCst);
        }
    });
    let call = |calls: &Arc<AtomicUsize>| {
        let calls = Arc::clone(calls);
        move || async move {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            if n > 0 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Ok::<_, io::Error>(format!("v{n}"))
        }
    };
    assert_eq!(memo.execute("k", call(&calls)).await.unwrap(), "v0");
    tokio::time::advance(Duration::from_secs(2)).await;
    for _ in 0..5 {
        assert_eq!(memo.execute("k", call(&calls)).await.unwrap(), "v0");
    }
    // The background refresh runs once the test yields: one for five.
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // The refresh lands 1 s later, fresh for 1 s.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(memo.execute("k", call(&calls)).await.unwrap(), "v1");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(events.load(Ordering::SeqCst), 1);
    assert_eq!(memo.stats().refreshes, 1);
}

#[tokio::test]
async fn memoizer_byte_bound_uses_the_weigher() {
    let memo: Memoizer<u32, Vec<u8>> = Memoizer::builder("blobs")
        .max_bytes(10_000)
        .weigher(|_, value: &Vec<u8>| u32::try_from(value.len()).unwrap())
        .build()
        .unwrap();
    for key in 0..50 {
        memo.insert(key, vec![0; 1000]).await;
    }
    memo.run_pending_tasks().await;
    let stats = memo.stats();
    assert!(stats.size_bytes <= 10_000, "{stats:?}");
    assert_eq!(stats.size_bytes, stats.entries * 1000, "{stats:?}");
    assert_eq!(stats.evictions_size, 50 - stats.entries, "{stats:?}");
}
