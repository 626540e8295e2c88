//! `/api/compute` on a real loopback socket: deterministic answers, input
//! refused as problem+json before anything is queued, backpressure as 429
//! problem+json with `Retry-After` (never a lost or failed request), the
//! pool's exact accounting, its series in `/metrics` and its check in
//! `/health`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cortex::workers::WorkerPoolConfig;
use cortex_hub::compute::{ComputeConfig, MAX_HASH_WORK, MAX_ROUNDS};
use cortex_hub::{Hub, HubConfig};
use reqwest::{Client, Response, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};

const PROBLEM_JSON: &str = "application/problem+json";

/// A served Hub: its handles and a client bound to its address.
struct Served {
    hub: Hub,
    addr: SocketAddr,
    client: Client,
}

impl Served {
    async fn start(config: HubConfig) -> Self {
        let hub = Hub::new(config).expect("the hub starts");
        let router = hub.router().expect("the hub builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self {
            hub,
            addr,
            client: Client::new(),
        }
    }

    /// A Hub whose compute pool has `workers` threads and `queue` places.
    async fn with_pool(workers: usize, queue: usize) -> Self {
        Self::start(HubConfig {
            compute: ComputeConfig {
                pool: WorkerPoolConfig {
                    workers: Some(workers),
                    queue_capacity: Some(queue),
                    ..ComputeConfig::default().pool
                },
                ..ComputeConfig::default()
            },
            ..HubConfig::default()
        })
        .await
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn get_json(&self, path: &str) -> Value {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.unwrap()
    }

    async fn hash(&self, query: &str, body: impl Into<reqwest::Body>) -> Response {
        self.client
            .post(self.url(&format!("/api/compute/hash{query}")))
            .body(body)
            .send()
            .await
            .unwrap()
    }

    async fn blur(&self, request: &Value) -> Response {
        self.client
            .post(self.url("/api/compute/blur"))
            .json(request)
            .send()
            .await
            .unwrap()
    }
}

#[derive(Debug, Deserialize)]
struct Hashed {
    algorithm: String,
    rounds: u64,
    bytes: usize,
    digest: String,
}

/// An RFC 9457 problem as the compute routes send it.
#[derive(Debug, Deserialize)]
struct Problem {
    r#type: String,
    title: String,
    status: u16,
    detail: String,
    #[serde(default)]
    errors: Vec<FieldError>,
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct FieldError {
    field: String,
}

/// The response is problem+json with `status`; returns the problem.
async fn problem(response: Response, status: StatusCode) -> Problem {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    let problem: Problem = response.json().await.unwrap();
    assert_eq!(problem.status, status.as_u16(), "{problem:?}");
    assert!(!problem.title.is_empty(), "{problem:?}");
    assert!(!problem.detail.is_empty(), "{problem:?}");
    problem
}

/// FNV-1a 64, written out here so the test does not trust the Hub's.
fn fnv1a_64(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[tokio::test]
async fn hash_answers_the_fnv1a_digest_of_the_body_repeated() {
    let hub = Served::start(HubConfig::default()).await;
    let response = hub.hash("", "a").await;
    assert_eq!(response.status(), StatusCode::OK);
    let hashed: Hashed = response.json().await.unwrap();
    assert_eq!(hashed.algorithm, "fnv1a-64");
    assert_eq!((hashed.rounds, hashed.bytes), (1, 1));
    // The published FNV-1a 64 test vector.
    assert_eq!(hashed.digest, "af63dc4c8601ec8c");

    let hashed: Hashed = hub.hash("?rounds=3", "foobar").await.json().await.unwrap();
    assert_eq!(hashed.digest, fnv1a_64(b"foobarfoobarfoobar"));
    // Same input, same answer.
    let again: Hashed = hub.hash("?rounds=3", "foobar").await.json().await.unwrap();
    assert_eq!(again.digest, hashed.digest);

    let body = vec![7_u8; 64 * 1024];
    let hashed: Hashed = hub
        .hash("?rounds=16", body.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(hashed.digest, fnv1a_64(&body.repeat(16)));
}

#[tokio::test]
async fn blur_answers_deterministic_images() {
    let hub = Served::start(HubConfig::default()).await;
    let response = hub
        .blur(&json!({ "width": 5, "height": 1, "pixels": [0, 0, 90, 0, 0] }))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let blurred: Value = response.json().await.unwrap();
    assert_eq!(blurred["pixels"], json!([0, 30, 30, 30, 0]), "{blurred}");
    assert_eq!(blurred["sum"], 90);
    assert_eq!(blurred["checksum"], fnv1a_64(&[0, 30, 30, 30, 0]));

    let request = json!({ "width": 256, "height": 128, "radius": 4, "passes": 3, "seed": 42 });
    let first: Value = hub.blur(&request).await.json().await.unwrap();
    let second: Value = hub.blur(&request).await.json().await.unwrap();
    assert_eq!(first, second);
    assert!(first.get("pixels").is_none(), "{first}");
    let other: Value = hub
        .blur(&json!({ "width": 256, "height": 128, "radius": 4, "passes": 3, "seed": 43 }))
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(first["checksum"], other["checksum"]);
    // Noise blurred three times is close to flat mid-grey.
    let mean = first["sum"].as_u64().unwrap() / (256 * 128);
    assert!((100..=155).contains(&mean), "{first}");
}

#[tokio::test]
async fn bad_input_is_refused_as_problem_json_before_it_is_queued() {
    let hub = Served::start(HubConfig::default()).await;
    let cases = [
        ("?rounds=0", StatusCode::UNPROCESSABLE_ENTITY),
        ("?rounds=1000001", StatusCode::UNPROCESSABLE_ENTITY),
        ("?rounds=abc", StatusCode::BAD_REQUEST),
        ("?rounds=-1", StatusCode::BAD_REQUEST),
    ];
    for (query, status) in cases {
        let refused = problem(hub.hash(query, "x").await, status).await;
        if status == StatusCode::UNPROCESSABLE_ENTITY {
            assert_eq!(refused.r#type, "/problems/invalid-compute-request");
            assert_eq!(refused.errors[0].field, "rounds", "{refused:?}");
            assert!(refused.detail.contains(&MAX_ROUNDS.to_string()));
        }
    }
    // More work than allowed: rounds × body bytes over the cap.
    let body = vec![0_u8; 1024 * 1024];
    let rounds = MAX_HASH_WORK / 1024 / 1024 + 1;
    let refused = problem(
        hub.hash(&format!("?rounds={rounds}"), body.clone()).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(refused.errors[0].field, "rounds");
    // A body over the limit.
    let refused = problem(
        hub.hash("", vec![0_u8; 1024 * 1024 + 1]).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    assert_eq!(refused.r#type, "/problems/compute-request-too-large");

    let invalid_blurs = [
        (json!({ "width": 0, "height": 1, "seed": 1 }), "width"),
        (json!({ "width": 1, "height": 5000, "seed": 1 }), "height"),
        (json!({ "width": 4096, "height": 4096, "seed": 1 }), "width"),
        (
            json!({ "width": 1, "height": 1, "radius": 0, "seed": 1 }),
            "radius",
        ),
        (
            json!({ "width": 1, "height": 1, "passes": 9, "seed": 1 }),
            "passes",
        ),
        (json!({ "width": 2, "height": 1 }), "pixels"),
        (
            json!({ "width": 2, "height": 1, "seed": 1, "pixels": [1, 2] }),
            "pixels",
        ),
        (
            json!({ "width": 2, "height": 2, "pixels": [1, 2, 3] }),
            "pixels",
        ),
    ];
    for (request, field) in invalid_blurs {
        let refused = problem(hub.blur(&request).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(
            refused.errors.iter().any(|error| error.field == field),
            "{request}: {refused:?}"
        );
    }
    // The JSON extractor's own refusals, as problems too.
    for (request, status) in [
        (
            json!({ "width": 1, "height": 1, "pixels": [300] }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "width": 1, "height": 1, "seed": 1, "colour": true }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "height": 1, "seed": 1 }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let refused = problem(hub.blur(&request).await, status).await;
        assert_eq!(refused.r#type, "/problems/unreadable-compute-request");
    }
    let malformed = hub
        .client
        .post(hub.url("/api/compute/blur"))
        .header(header::CONTENT_TYPE, "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    problem(malformed, StatusCode::BAD_REQUEST).await;
    let untyped = hub
        .client
        .post(hub.url("/api/compute/blur"))
        .body(r#"{"width":1,"height":1,"seed":1}"#)
        .send()
        .await
        .unwrap();
    problem(untyped, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;

    // Nothing above reached the pool.
    let stats = hub.get_json("/api/compute/stats").await;
    assert_eq!(stats["submitted"], 0, "{stats}");
}

#[tokio::test]
async fn a_full_queue_answers_429_with_retry_after_and_loses_nothing() {
    const REQUESTS: usize = 24;
    let hub = Served::with_pool(1, 1).await;
    // Slow jobs: 64 KiB hashed 1024 times (64 MiB of work) each.
    let body = vec![0x5a_u8; 64 * 1024];
    let expected = fnv1a_64(&body.repeat(1024));
    let requests = (0..REQUESTS).map(|_| {
        let client = hub.client.clone();
        let url = hub.url("/api/compute/hash?rounds=1024");
        let body = body.clone();
        tokio::spawn(async move { client.post(url).body(body).send().await.unwrap() })
    });
    let responses = futures_join(requests.collect()).await;
    let (mut completed, mut refused) = (0_u64, 0_u64);
    for response in responses {
        match response.status() {
            StatusCode::OK => {
                let hashed: Hashed = response.json().await.unwrap();
                assert_eq!(hashed.digest, expected);
                completed += 1;
            }
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(response.headers()[header::RETRY_AFTER], "1");
                let refusal = problem(response, StatusCode::TOO_MANY_REQUESTS).await;
                assert_eq!(refusal.reason.as_deref(), Some("queue_full"), "{refusal:?}");
                refused += 1;
            }
            other => panic!("a compute request got {other}"),
        }
    }
    assert!(completed >= 1, "none of {REQUESTS} requests ran");
    assert!(refused >= 1, "none of {REQUESTS} requests met a full queue");

    // Every request accounted for, exactly once.
    let stats = hub.get_json("/api/compute/stats").await;
    let count = |key: &str| {
        stats[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key}: {stats}"))
    };
    assert_eq!(count("submitted"), REQUESTS as u64, "{stats}");
    assert_eq!(count("completed"), completed, "{stats}");
    assert_eq!(count("rejected"), refused, "{stats}");
    assert_eq!(
        count("submitted"),
        count("completed")
            + count("panicked")
            + count("timed_out")
            + count("expired")
            + count("cancelled")
            + count("rejected"),
        "{stats}"
    );
    assert_eq!((count("workers"), count("queue_capacity")), (1, 1));
}

/// Awaits every spawned request, in order.
async fn futures_join(tasks: Vec<tokio::task::JoinHandle<Response>>) -> Vec<Response> {
    let mut responses = Vec::with_capacity(tasks.len());
    for task in tasks {
        responses.push(task.await.unwrap());
    }
    responses
}

#[tokio::test]
async fn the_pool_is_in_metrics_and_health() {
    let hub = Served::start(HubConfig::default()).await;
    assert_eq!(hub.hash("", "a").await.status(), StatusCode::OK);
    let metrics = hub
        .client
        .get(hub.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for expected in [
        r#"cortex_worker_jobs_total{pool="compute",outcome="completed"} 1"#,
        r#"cortex_worker_jobs_total{pool="compute",outcome="rejected"} 0"#,
        r#"cortex_worker_submitted_total{pool="compute"} 1"#,
        // Observed just after the caller is answered: 0 or 1 here.
        r#"cortex_worker_run_seconds_count{pool="compute"} "#,
        r#"cortex_worker_queue_capacity{pool="compute"} "#,
        r#"http_server_request_duration_seconds_count{http_request_method="POST",http_route="/api/compute/hash",http_response_status_code="200",url_scheme="http"} 1"#,
    ] {
        assert!(metrics.contains(expected), "missing {expected}\n{metrics}");
    }
    let health = hub.get_json("/health?verbose").await;
    let check = &health["checks"]["workers:compute"][0];
    assert_eq!(check["status"], "pass", "{health}");
    assert_eq!(check["details"]["queue_len"], 0, "{health}");
    // A pool that shuts down fails readiness; liveness does not depend on it.
    hub.hub.compute.shutdown_now();
    let ready = hub
        .client
        .get(hub.url("/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let live = hub
        .client
        .get(hub.url("/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_pool_that_shut_down_answers_503_with_retry_after() {
    let hub = Served::start(HubConfig::default()).await;
    let report = hub
        .hub
        .compute
        .shutdown(cortex::workers::Shutdown::Graceful {
            timeout: Duration::from_secs(5),
        })
        .await;
    assert!(report.drained, "{report:?}");
    let response = hub.hash("", "a").await;
    assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    let refusal = problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(refusal.reason.as_deref(), Some("shutting_down"));
    let stats = hub.get_json("/api/compute/stats").await;
    assert_eq!(
        (stats["submitted"].as_u64(), stats["rejected"].as_u64()),
        (Some(1), Some(1))
    );
}

#[tokio::test]
async fn a_client_that_hangs_up_cancels_its_queued_job() {
    let hub = Served::with_pool(1, 4).await;
    let body = vec![1_u8; 256 * 1024];
    // Busy the only worker for a while (256 KiB × 1024: 256 MiB).
    let busy = {
        let client = hub.client.clone();
        let url = hub.url("/api/compute/hash?rounds=1024");
        let body = body.clone();
        tokio::spawn(async move { client.post(url).body(body).send().await.unwrap().status() })
    };
    wait_for(&hub, |stats| stats["busy"] == 1).await;
    // Queue a second job, then hang up before it can run.
    let impatient = hub
        .client
        .post(hub.url("/api/compute/hash?rounds=1"))
        .body(body)
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    assert!(impatient.is_err(), "{impatient:?}");
    assert_eq!(busy.await.unwrap(), StatusCode::OK);
    let stats = wait_for(&hub, |stats| stats["cancelled"] == 1).await;
    assert_eq!(stats["completed"], 1, "{stats}");
    assert_eq!(stats["submitted"], 2, "{stats}");
}

/// Polls `/api/compute/stats` until `done` holds (10 s at most).
async fn wait_for(hub: &Served, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = hub.get_json("/api/compute/stats").await;
        if done(&stats) {
            return stats;
        }
        assert!(Instant::now() < deadline, "stats never got there: {stats}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
