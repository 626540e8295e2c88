//! `/api/compute/image` and `/api/compute/hostile` on a real loopback
//! socket: the image guest's bytes against references computed here,
//! input refused as problem+json before anything runs, hostile guests
//! stopped and answered as problem+json with the Hub (and the pools)
//! healthy afterwards, the pools' series in `/metrics` and checks in
//! `/health`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cortex::wasm::WasmConfig;
use cortex::workers::WorkerPoolConfig;
use cortex_hub::compute::ComputeConfig;
use cortex_hub::compute::wasm::{HOSTILE_POOL, IMAGE_POOL, MAX_IMAGE_BYTES};
use cortex_hub::{Hub, HubConfig};
use reqwest::{Client, Response, StatusCode, header};
use serde::Deserialize;
use serde_json::Value;

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

    /// A Hub whose compute settings are `compute`.
    async fn with_compute(compute: ComputeConfig) -> Self {
        Self::start(HubConfig {
            compute,
            ..HubConfig::default()
        })
        .await
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.unwrap()
    }

    async fn image(&self, query: &str, body: Vec<u8>) -> Response {
        self.client
            .post(self.url(&format!("/api/compute/image{query}")))
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// A 200 image answer's bytes.
    async fn filtered(&self, query: &str, body: Vec<u8>) -> Vec<u8> {
        let response = self.image(query, body).await;
        assert_eq!(response.status(), StatusCode::OK, "{query}");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/octet-stream"
        );
        response.bytes().await.unwrap().to_vec()
    }

    async fn hostile(&self, kind: &str) -> Response {
        self.client
            .post(self.url(&format!("/api/compute/hostile?kind={kind}")))
            .send()
            .await
            .unwrap()
    }

    async fn status(&self, path: &str) -> StatusCode {
        self.get(path).await.status()
    }
}

/// An RFC 9457 problem as the compute routes and cortex-wasm send it.
#[derive(Debug, Deserialize)]
struct Problem {
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
    if response.status() != status {
        panic!(
            "expected {status}, got {}: {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
    }
    assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    let problem: Problem = response.json().await.unwrap();
    assert_eq!(problem.status, status.as_u16(), "{problem:?}");
    assert!(!problem.title.is_empty(), "{problem:?}");
    assert!(!problem.detail.is_empty(), "{problem:?}");
    problem
}

/// A deterministic RGBA image, `width × height` pixels.
fn image(width: usize, height: usize) -> Vec<u8> {
    (0..width * height * 4)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect()
}

/// Grayscale, written out here so the test does not trust the guest:
/// r, g, b ← (77 r + 150 g + 29 b) >> 8, alpha kept.
fn grayscale(rgba: &[u8]) -> Vec<u8> {
    rgba.chunks(4)
        .flat_map(|p| {
            let luma =
                ((77 * u32::from(p[0]) + 150 * u32::from(p[1]) + 29 * u32::from(p[2])) >> 8) as u8;
            [luma, luma, luma, p[3]]
        })
        .collect()
}

/// One box-blur pass per channel (alpha too): rows, then columns, a
/// window of `2 × radius + 1` with the edge pixel repeated, each mean
/// rounded half up; naive on purpose.
fn blur(rgba: &[u8], width: usize, radius: usize) -> Vec<u8> {
    let height = rgba.len() / 4 / width;
    let window = 2 * radius as u32 + 1;
    let mean = |values: &mut dyn Iterator<Item = u8>| {
        let sum: u32 = values.map(u32::from).sum();
        ((sum + window / 2) / window) as u8
    };
    let clamp = |i: isize, len: usize| i.clamp(0, len as isize - 1) as usize;
    let r = radius as isize;
    let mut rows = vec![0_u8; rgba.len()];
    for y in 0..height {
        for x in 0..width {
            for c in 0..4 {
                rows[(y * width + x) * 4 + c] = mean(
                    &mut (-r..=r).map(|d| rgba[(y * width + clamp(x as isize + d, width)) * 4 + c]),
                );
            }
        }
    }
    let mut out = vec![0_u8; rgba.len()];
    for y in 0..height {
        for x in 0..width {
            for c in 0..4 {
                out[(y * width + x) * 4 + c] = mean(
                    &mut (-r..=r)
                        .map(|d| rows[(clamp(y as isize + d, height) * width + x) * 4 + c]),
                );
            }
        }
    }
    out
}

#[tokio::test]
async fn image_filters_answer_the_reference_bytes() {
    let hub = Served::start(HubConfig::default()).await;
    // Two pixels by hand: pure red with alpha 7, and (10, 20, 30, 255).
    let gray = hub
        .filtered("?filter=grayscale", vec![255, 0, 0, 7, 10, 20, 30, 255])
        .await;
    assert_eq!(gray, [76, 76, 76, 7, 18, 18, 18, 255]);
    let inverted = hub.filtered("?filter=invert", vec![0, 100, 255, 9]).await;
    assert_eq!(inverted, [255, 155, 0, 9]);

    let (width, height) = (13, 7);
    let rgba = image(width, height);
    assert_eq!(
        hub.filtered("?filter=grayscale", rgba.clone()).await,
        grayscale(&rgba)
    );
    let inverted = hub.filtered("?filter=invert", rgba.clone()).await;
    let expected: Vec<u8> = rgba
        .chunks(4)
        .flat_map(|p| [255 - p[0], 255 - p[1], 255 - p[2], p[3]])
        .collect();
    assert_eq!(inverted, expected);
    for radius in [1, 2, 5, 20] {
        let blurred = hub
            .filtered(
                &format!("?filter=blur&width={width}&radius={radius}"),
                rgba.clone(),
            )
            .await;
        assert_eq!(blurred, blur(&rgba, width, radius), "radius {radius}");
    }
    // The radius defaults to 1; a spike spreads over its window.
    let mut spike = vec![0_u8; 5 * 4];
    spike[2 * 4..3 * 4].copy_from_slice(&[90, 90, 90, 90]);
    let blurred = hub.filtered("?filter=blur&width=5", spike).await;
    assert_eq!(
        blurred.chunks(4).map(|p| p[0]).collect::<Vec<_>>(),
        [0, 30, 30, 30, 0]
    );

    // The largest image the route takes goes through.
    let big = image(1024, MAX_IMAGE_BYTES / 4 / 1024);
    let gray = hub.filtered("?filter=grayscale", big.clone()).await;
    assert_eq!(gray, grayscale(&big));

    let stats = hub.get_json("/api/compute/wasm/stats").await;
    assert_eq!(stats["image"]["calls"], 10, "{stats}");
    assert_eq!(stats["image"]["failures"], serde_json::json!({}), "{stats}");
}

#[tokio::test]
async fn bad_image_requests_are_refused_as_problem_json_before_they_run() {
    let hub = Served::start(HubConfig::default()).await;
    let cases: [(&str, Vec<u8>, StatusCode, Option<&str>); 13] = [
        (
            "",
            vec![0; 4],
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("filter"),
        ),
        (
            "?filter=sepia",
            vec![0; 4],
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("filter"),
        ),
        (
            "?filter=grayscale",
            vec![],
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("body"),
        ),
        (
            "?filter=invert",
            vec![0; 6],
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("body"),
        ),
        (
            "?filter=blur",
            vec![0; 8],
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("width"),
        ),
        (
            "?filter=blur&width=0",
            vec![0; 8],
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("width"),
        ),
        (
            "?filter=blur&width=3",
            vec![0; 8],
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("width"),
        ),
        (
            "?filter=blur&width=5000",
            vec![0; 8],
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("width"),
        ),
        (
            "?filter=blur&width=2&radius=0",
            vec![0; 8],
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("radius"),
        ),
        (
            "?filter=blur&width=2&radius=65",
            vec![0; 8],
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("radius"),
        ),
        (
            "?filter=blur&width=wide",
            vec![0; 8],
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            "?filter=blur&width=2&radius=-1",
            vec![0; 8],
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            "?filter=grayscale",
            vec![0; MAX_IMAGE_BYTES + 4],
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
        ),
    ];
    for (query, body, status, field) in cases {
        let refused = problem(hub.image(query, body).await, status).await;
        if let Some(field) = field {
            assert!(
                refused.errors.iter().any(|error| error.field == field),
                "{query}: {refused:?}"
            );
        }
    }
    // Nothing above reached the pool.
    let stats = hub.get_json("/api/compute/wasm/stats").await;
    assert_eq!(stats["image"]["calls"], 0, "{stats}");
    assert_eq!(stats["image"]["workers"]["submitted"], 0, "{stats}");
}

/// The expected answer of each hostile guest with the default limits.
const HOSTILE: [(&str, StatusCode, &str); 3] = [
    ("loop", StatusCode::GATEWAY_TIMEOUT, "timed_out"),
    ("hog", StatusCode::UNPROCESSABLE_ENTITY, "memory_limit"),
    ("trap", StatusCode::UNPROCESSABLE_ENTITY, "trap"),
];

#[tokio::test]
async fn hostile_guests_are_stopped_and_the_hub_stays_healthy() {
    let hub = Served::start(HubConfig::default()).await;
    for round in 0..2 {
        for (kind, status, reason) in HOSTILE {
            let started = Instant::now();
            let refused = problem(hub.hostile(kind).await, status).await;
            assert_eq!(
                refused.reason.as_deref(),
                Some(reason),
                "{kind}: {refused:?}"
            );
            // The loop is stopped at its 100 ms deadline, not later.
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "{kind} took {:?}",
                started.elapsed()
            );
            if kind == "hog" {
                assert!(refused.detail.contains("1048576"), "{refused:?}");
            }
            assert_eq!(
                hub.status("/health/live").await,
                StatusCode::OK,
                "round {round}, after {kind}"
            );
        }
    }
    let refused = problem(
        hub.hostile("fork-bomb").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(refused.errors[0].field, "kind");
    let missing = hub
        .client
        .post(hub.url("/api/compute/hostile"))
        .send()
        .await
        .unwrap();
    problem(missing, StatusCode::UNPROCESSABLE_ENTITY).await;

    // Every failed instance was replaced: the pools and the Hub are fine.
    let health = hub.get_json("/health?verbose").await;
    for check in ["wasm:image", "wasm:hostile"] {
        assert_eq!(health["checks"][check][0]["status"], "pass", "{health}");
    }
    assert_eq!(hub.status("/health/ready").await, StatusCode::OK);
    let stats = hub.get_json("/api/compute/wasm/stats").await;
    let hostile = &stats["hostile"];
    assert_eq!(hostile["calls"], 6, "{stats}");
    assert_eq!(hostile["instances_replaced"], 6, "{stats}");
    for (_, _, reason) in HOSTILE {
        assert_eq!(hostile["failures"][reason], 2, "{stats}");
    }
    assert_eq!(hostile["workers"]["zombies"], 0, "{stats}");
    assert_eq!(hostile["workers"]["workers"], 1, "{stats}");
    // And a normal image call still works.
    assert_eq!(
        hub.filtered("?filter=invert", vec![1, 2, 3, 4]).await,
        [254, 253, 252, 4]
    );
}

/// Without a deadline the endless loop ends when its fuel runs out: 422.
#[tokio::test]
async fn a_loop_without_a_deadline_runs_out_of_fuel() {
    let hub = Served::with_compute(ComputeConfig {
        hostile: WasmConfig {
            deadline: None,
            fuel: Some(100_000_000),
            ..ComputeConfig::default().hostile
        },
        ..ComputeConfig::default()
    })
    .await;
    let refused = problem(hub.hostile("loop").await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(refused.reason.as_deref(), Some("exhausted"), "{refused:?}");
    assert!(refused.detail.contains("100000000"), "{refused:?}");
    assert_eq!(hub.status("/health/live").await, StatusCode::OK);
}

/// A guest that cannot finish in its budget is stopped too: a blur with
/// far too little fuel is 422 `exhausted`, and the next call gets a fresh
/// instance.
#[tokio::test]
async fn an_image_past_its_fuel_is_422_exhausted() {
    let hub = Served::with_compute(ComputeConfig {
        wasm: WasmConfig {
            fuel: Some(1_000_000),
            ..ComputeConfig::default().wasm
        },
        ..ComputeConfig::default()
    })
    .await;
    let big = image(1024, 256);
    let refused = problem(
        hub.image("?filter=blur&width=1024&radius=8", big).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(refused.reason.as_deref(), Some("exhausted"), "{refused:?}");
    assert!(refused.detail.contains("1000000"), "{refused:?}");
    assert_eq!(
        hub.filtered("?filter=invert", vec![1, 2, 3, 4]).await,
        [254, 253, 252, 4]
    );
    let stats = hub.get_json("/api/compute/wasm/stats").await;
    assert_eq!(stats["image"]["instances_replaced"], 1, "{stats}");
}

/// 12 concurrent 1 MiB images against 1 worker and 1 queue place: each
/// answer the right bytes (200) or 429 problem+json with `Retry-After`.
#[tokio::test]
async fn a_full_image_queue_answers_429_with_retry_after() {
    let hub = Served::with_compute(ComputeConfig {
        wasm_pool: WorkerPoolConfig {
            workers: Some(1),
            queue_capacity: Some(1),
            ..ComputeConfig::default().wasm_pool
        },
        ..ComputeConfig::default()
    })
    .await;
    let big = image(1024, 256);
    let expected = grayscale(&big);
    let requests: Vec<_> = (0..12)
        .map(|_| {
            let client = hub.client.clone();
            let url = hub.url("/api/compute/image?filter=grayscale");
            let body = big.clone();
            tokio::spawn(async move { client.post(url).body(body).send().await.unwrap() })
        })
        .collect();
    let (mut ok, mut shed) = (0, 0);
    for request in requests {
        let response = request.await.unwrap();
        match response.status() {
            StatusCode::OK => {
                assert!(response.bytes().await.unwrap() == expected);
                ok += 1;
            }
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(response.headers()[header::RETRY_AFTER], "1");
                let refused = problem(response, StatusCode::TOO_MANY_REQUESTS).await;
                assert_eq!(refused.reason.as_deref(), Some("overloaded"));
                shed += 1;
            }
            other => panic!("an image request got {other}"),
        }
    }
    assert!(ok >= 1 && shed >= 1, "{ok} ran, {shed} shed");
    let stats = hub.get_json("/api/compute/wasm/stats").await;
    assert_eq!(stats["image"]["workers"]["rejected"], shed, "{stats}");
}

#[tokio::test]
async fn the_wasm_pools_are_in_metrics_health_and_the_index() {
    let hub = Served::start(HubConfig::default()).await;
    assert_eq!(
        hub.filtered("?filter=grayscale", vec![0, 0, 0, 0]).await,
        [0, 0, 0, 0]
    );
    problem(hub.hostile("trap").await, StatusCode::UNPROCESSABLE_ENTITY).await;
    // (A check's status series appears once the check has run.)
    let health = hub.get_json("/health?verbose").await;
    for check in ["wasm:image", "wasm:hostile", "workers:compute"] {
        assert_eq!(health["checks"][check][0]["status"], "pass", "{health}");
    }
    let metrics = hub.get("/metrics").await.text().await.unwrap();
    for expected in [
        format!(r#"cortex_wasm_calls_total{{pool="{IMAGE_POOL}"}} 1"#),
        format!(r#"cortex_wasm_calls_total{{pool="{HOSTILE_POOL}"}} 1"#),
        format!(r#"cortex_wasm_failures_total{{pool="{HOSTILE_POOL}",kind="trap"}} 1"#),
        format!(r#"cortex_wasm_instances_replaced_total{{pool="{HOSTILE_POOL}"}} 1"#),
        format!(r#"cortex_wasm_instances_created_total{{pool="{IMAGE_POOL}"}} 1"#),
        format!(r#"cortex_worker_workers{{pool="{HOSTILE_POOL}"}} 1"#),
        format!(r#"cortex_worker_jobs_total{{pool="{IMAGE_POOL}",outcome="completed"}} 1"#),
        r#"cortex_health_check_status{check="wasm:image"} 1"#.to_owned(),
        r#"cortex_health_check_status{check="wasm:hostile"} 1"#.to_owned(),
        r#"http_server_request_duration_seconds_count{http_request_method="POST",http_route="/api/compute/image",http_response_status_code="200",url_scheme="http"} 1"#.to_owned(),
        r#"http_server_request_duration_seconds_count{http_request_method="POST",http_route="/api/compute/hostile",http_response_status_code="422",url_scheme="http"} 1"#.to_owned(),
    ] {
        assert!(metrics.contains(&expected), "missing {expected}\n{metrics}");
    }
    let index = hub.get_json("/api").await;
    for path in [
        "/api/compute/image",
        "/api/compute/hostile",
        "/api/compute/wasm/stats",
    ] {
        assert!(
            index["routes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|route| route["path"] == path),
            "{path} missing from {index}"
        );
    }
    // A wasm pool that shuts down fails readiness; liveness stays.
    hub.hub.images.workers().shutdown_now();
    assert_eq!(
        hub.status("/health/ready").await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(hub.status("/health/live").await, StatusCode::OK);
    let refused = problem(
        hub.image("?filter=invert", vec![0; 4]).await,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert_eq!(refused.reason.as_deref(), Some("pool"), "{refused:?}");
}
