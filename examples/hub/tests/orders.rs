//! `/api/orders` against a hostile client: bounded bodies and fields, an
//! exact in-flight cap, a bounded store of finished orders, and a payments
//! breaker that declined orders cannot open. Each test serves the routes
//! on `127.0.0.1:0` and reads the answers as typed JSON.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use cortex::actor::ActorSystem;
use cortex::resilience::{CircuitState, PolicyRegistry};
use cortex_hub::orders::{self, OrderActor, OrdersConfig, PAYMENTS};
use cortex_hub::{Hub, HubConfig};
use reqwest::{Client, Response, StatusCode, header};
use serde::Deserialize;
use serde_json::json;

/// An RFC 9457 problem as the order routes send it.
#[derive(Debug, Deserialize)]
struct Problem {
    r#type: String,
    title: String,
    status: u16,
    detail: String,
    #[serde(default)]
    errors: Vec<FieldError>,
    retry_after: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct FieldError {
    field: String,
    message: String,
}

#[derive(Debug, Deserialize)]
struct Created {
    id: u64,
    state: String,
}

#[derive(Debug, Deserialize)]
struct Order {
    id: u64,
    state: String,
    payment_attempts: u32,
    error: Option<String>,
}

/// The routes on a loopback socket, with what they were built from.
struct Served {
    addr: SocketAddr,
    client: Client,
    actors: ActorSystem,
    policies: PolicyRegistry,
}

impl Served {
    /// The whole Hub, with its default bounds.
    async fn hub() -> Self {
        let hub = Hub::new(HubConfig::default()).expect("the hub starts");
        let router = hub.router().expect("the hub builds");
        Self::serve(router, hub.actors.clone(), hub.policies.clone()).await
    }

    /// The order routes alone, bounded by `config`.
    async fn orders(config: OrdersConfig) -> Self {
        let actors = ActorSystem::new("orders-test");
        let policies = PolicyRegistry::new();
        let router = orders::router(config, &actors, &policies).expect("the routes build");
        Self::serve(router, actors, policies).await
    }

    async fn serve(router: Router, actors: ActorSystem, policies: PolicyRegistry) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self {
            addr,
            client: Client::new(),
            actors,
            policies,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn post(&self, body: &serde_json::Value) -> Response {
        self.client
            .post(self.url("/api/orders"))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn place(&self, body: &serde_json::Value) -> u64 {
        let response = self.post(body).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let created: Created = response.json().await.unwrap();
        assert_eq!(created.state, "pending");
        created.id
    }

    async fn order(&self, id: u64) -> Response {
        self.client
            .get(self.url(&format!("/api/orders/{id}")))
            .send()
            .await
            .unwrap()
    }

    /// Polls order `id` until it is final (bounded: 5 s).
    async fn finished(&self, id: u64) -> Order {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let order: Order = self.order(id).await.json().await.unwrap();
            if order.state == "completed" || order.state == "failed" {
                return order;
            }
            assert!(Instant::now() < deadline, "order {id} never finished");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn payments_breaker(&self) -> cortex::resilience::CircuitBreaker {
        self.policies.circuit_breaker(PAYMENTS).unwrap()
    }
}

/// A refusal: its status, a problem+json content type, and the problem.
async fn problem(response: Response, status: StatusCode) -> (Problem, Option<String>) {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .map(|value| value.to_str().unwrap().to_owned());
    let problem: Problem = response.json().await.unwrap();
    assert_eq!(problem.status, status.as_u16(), "{problem:?}");
    assert!(problem.r#type.starts_with("/problems/"), "{problem:?}");
    assert!(!problem.title.is_empty() && !problem.detail.is_empty());
    (problem, retry_after)
}

#[tokio::test]
async fn an_order_body_over_the_limit_is_413_problem_json() {
    let hub = Served::hub().await;
    // 8 KiB of item: twice the body limit.
    let response = hub
        .post(&json!({ "item": "x".repeat(8 * 1024), "quantity": 1 }))
        .await;
    let (problem, _) = problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(problem.r#type, "/problems/order-too-large");
}

#[tokio::test]
async fn a_long_item_is_422_naming_the_field() {
    let hub = Served::hub().await;
    let response = hub.post(&json!({ "item": "x".repeat(201) })).await;
    let (problem, _) = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem.errors.len(), 1, "{problem:?}");
    assert_eq!(problem.errors[0].field, "item");
    assert!(problem.errors[0].message.contains("200"), "{problem:?}");

    // At the limit (in characters, not bytes) it is accepted.
    let id = hub.place(&json!({ "item": "é".repeat(200) })).await;
    assert_eq!(hub.finished(id).await.state, "completed");
}

#[tokio::test]
async fn the_in_flight_cap_is_exact_under_concurrent_posts() {
    let served = Served::orders(OrdersConfig {
        max_in_flight: 5,
        ..OrdersConfig::default()
    })
    .await;
    // Orders wait (pending) while the breaker is open, so they stay in
    // flight.
    served.payments_breaker().transition_to_forced_open();
    let mut posts = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let post = served
            .client
            .post(served.url("/api/orders"))
            .json(&json!({ "item": "book" }));
        posts.spawn(async move { post.send().await.unwrap() });
    }
    let responses = posts.join_all().await;
    let accepted = responses
        .iter()
        .filter(|response| response.status() == StatusCode::ACCEPTED)
        .count();
    assert_eq!(accepted, 5);
    for response in responses {
        if response.status() != StatusCode::ACCEPTED {
            let (problem, retry_after) = problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
            assert_eq!(retry_after.as_deref(), Some("1"));
            assert_eq!(problem.retry_after, Some(1));
        }
    }

    // Once the orders finish, their slots are free again.
    served.payments_breaker().transition_to_closed();
    for id in 1..=5 {
        assert_eq!(served.finished(id).await.state, "completed");
    }
    let id = served.place(&json!({ "item": "lamp" })).await;
    assert_eq!(served.finished(id).await.state, "completed");
}

#[tokio::test]
async fn finished_orders_are_readable_after_their_actor_stopped_and_evicted_past_the_bound() {
    let served = Served::orders(OrdersConfig {
        keep_finished: 2,
        ..OrdersConfig::default()
    })
    .await;
    let mut ids = Vec::new();
    for item in ["a", "b", "c"] {
        let id = served.place(&json!({ "item": item })).await;
        served.finished(id).await;
        ids.push(id);
    }
    // Each order's actor has stopped ...
    let deadline = Instant::now() + Duration::from_secs(2);
    while ids.iter().any(|id| {
        served
            .actors
            .lookup::<OrderActor>(&format!("order-{id}"))
            .is_some()
    }) {
        assert!(Instant::now() < deadline, "order actors still live");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // ... the last two are read from the store, the oldest is evicted.
    for &id in &ids[1..] {
        let order: Order = served.order(id).await.json().await.unwrap();
        assert_eq!((order.id, order.state.as_str()), (id, "completed"));
    }
    problem(served.order(ids[0]).await, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn finished_orders_expire_after_their_age_bound() {
    let served = Served::orders(OrdersConfig {
        keep_finished_for: Duration::from_millis(300),
        ..OrdersConfig::default()
    })
    .await;
    let id = served.place(&json!({ "item": "a" })).await;
    served.finished(id).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    problem(served.order(id).await, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn declined_payments_do_not_open_the_breaker() {
    let hub = Served::hub().await;
    for _ in 0..30 {
        let id = hub
            .place(&json!({ "item": "lamp", "fail_payment": true }))
            .await;
        let order = hub.finished(id).await;
        assert_eq!(order.state, "failed");
        // A decline is an answer: not retried.
        assert_eq!(order.payment_attempts, 1, "{order:?}");
        assert_eq!(order.error.as_deref(), Some("payment declined"));
    }
    for _ in 0..20 {
        let id = hub.place(&json!({ "item": "book" })).await;
        let order = hub.finished(id).await;
        assert_eq!(order.state, "completed", "{order:?}");
    }
    assert_eq!(hub.payments_breaker().state(), CircuitState::Closed);
    hub.actors.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn an_order_waits_for_an_open_breaker_then_pays() {
    let served = Served::orders(OrdersConfig::default()).await;
    served.payments_breaker().transition_to_forced_open();
    let id = served.place(&json!({ "item": "book" })).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let order: Order = served.order(id).await.json().await.unwrap();
    assert_eq!(order.state, "pending", "{order:?}");
    served.payments_breaker().transition_to_closed();
    let order = served.finished(id).await;
    assert_eq!(order.state, "completed", "{order:?}");
}

#[tokio::test]
async fn an_order_fails_at_its_deadline_if_the_breaker_stays_open() {
    let served = Served::orders(OrdersConfig {
        order_deadline: Duration::from_millis(1500),
        ..OrdersConfig::default()
    })
    .await;
    served.payments_breaker().transition_to_forced_open();
    let started = Instant::now();
    let id = served.place(&json!({ "item": "book" })).await;
    let order = served.finished(id).await;
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert_eq!(order.state, "failed", "{order:?}");
    assert_eq!(order.payment_attempts, 0, "never charged: {order:?}");
    assert!(
        order.error.as_deref().unwrap().contains("circuit breaker"),
        "{order:?}"
    );
}

#[tokio::test]
async fn a_live_orders_actor_answers_for_itself_and_a_final_order_has_none() {
    let served = Served::hub().await;
    served.payments_breaker().transition_to_forced_open();
    let id = served.place(&json!({ "item": "book" })).await;
    let live: serde_json::Value = served
        .client
        .get(served.url(&format!("/api/orders/{id}/actor")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // On one machine the node is the default name; the view is the actor's
    // own, the same fold the journal gives.
    assert_eq!(live["node"], "hub");
    assert_eq!(live["order"]["id"], id);
    assert_eq!(live["order"]["state"], "pending");
    served.payments_breaker().transition_to_closed();
    assert_eq!(served.finished(id).await.state, "completed");
    // The actor stops right after the final event; a moment for that.
    let deadline = Instant::now() + Duration::from_secs(5);
    let gone = loop {
        let response = served
            .client
            .get(served.url(&format!("/api/orders/{id}/actor")))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::NOT_FOUND || Instant::now() > deadline {
            break response;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let (refusal, _) = problem(gone, StatusCode::NOT_FOUND).await;
    assert_eq!(refusal.r#type, "/problems/no-live-order-actor");
    assert!(refusal.detail.contains("final or unknown"), "{refusal:?}");
    // Unknown orders too.
    let response = served
        .client
        .get(served.url("/api/orders/999999/actor"))
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::NOT_FOUND).await;
    // Not clustered: `/api/cluster` says so.
    let cluster: serde_json::Value = served
        .client
        .get(served.url("/api/cluster"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cluster, json!({ "node": "hub", "clustered": false }));
}
