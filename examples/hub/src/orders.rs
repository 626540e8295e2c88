//! `/api/orders`: an order service built on actors.
//!
//! Each order is an [`OrderActor`] named `order-{id}`, whose state moves
//! pending → processing → completed | failed. Every step is published on
//! the actor system's event bus as `order.created`, `order.processing`,
//! `order.completed` or `order.failed`; a bus subscriber keeps the counts
//! `GET /api/orders` reports. The payment call is simulated and protected
//! by a resilience pipeline (timeout → retry → circuit breaker), registered
//! as `payments` so it shows in `/resilience` and `/metrics`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use cortex::actor::{
    Actor, ActorError, ActorSystem, AskError, Context, EventBus, Handler, Message, RestartPolicy,
};
use cortex::resilience::{
    Backoff, CircuitBreaker, Pipeline, PolicyRegistry, RegistryError, ResilienceError, Retry,
    SlidingWindow, Timeout,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::routes::IndexedRouter;

/// The payment policies' name in the registry.
pub const PAYMENTS: &str = "payments";

/// Orders kept in memory at most; more are refused with 503.
const MAX_LIVE_ORDERS: usize = 10_000;

/// How long a finished order stays readable.
const KEEP_FINISHED: Duration = Duration::from_secs(600);

/// Where an order is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderState {
    /// Accepted, not yet worked on.
    Pending,
    /// Paying.
    Processing,
    /// Paid.
    Completed,
    /// The payment failed.
    Failed,
}

/// What the bus carries for every step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderEvent {
    /// The order.
    pub id: u64,
    /// Its new state.
    pub state: OrderState,
}

/// An order as `GET /api/orders/{id}` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct OrderView {
    id: u64,
    item: String,
    quantity: u32,
    state: OrderState,
    payment_attempts: u32,
    error: Option<String>,
}

/// The request body of `POST /api/orders`.
#[derive(Debug, Clone, Deserialize)]
pub struct NewOrder {
    item: String,
    #[serde(default = "one")]
    quantity: u32,
    /// Make the simulated payment fail (to watch retries, the `failed`
    /// state and the payments breaker).
    #[serde(default)]
    fail_payment: bool,
}

fn one() -> u32 {
    1
}

/// The simulated payment provider and the policies around it.
#[derive(Debug, Clone)]
struct Payments {
    pipeline: Pipeline,
    calls: Arc<AtomicU64>,
}

/// The simulated provider's refusal.
#[derive(Debug)]
struct PaymentDeclined;

impl std::fmt::Display for PaymentDeclined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("payment declined")
    }
}

impl std::error::Error for PaymentDeclined {}

impl Payments {
    /// Charges for an order through the pipeline: the outcome and how many
    /// attempts it took.
    async fn charge(&self, fail: bool) -> (Result<(), String>, u32) {
        let attempts = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&attempts);
        let calls = Arc::clone(&self.calls);
        let result = self
            .pipeline
            .execute(|| {
                let counter = Arc::clone(&counter);
                let calls = Arc::clone(&calls);
                async move {
                    counter.fetch_add(1, Ordering::Relaxed);
                    calls.fetch_add(1, Ordering::Relaxed);
                    // The provider takes a moment.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    if fail { Err(PaymentDeclined) } else { Ok(()) }
                }
            })
            .await;
        let attempts = u32::try_from(attempts.load(Ordering::Relaxed)).unwrap_or(u32::MAX);
        let result = result.map_err(|error| match error {
            ResilienceError::Inner(declined) => declined.to_string(),
            other => other.to_string(),
        });
        (result, attempts)
    }
}

/// One order.
#[derive(Debug)]
pub struct OrderActor {
    id: u64,
    order: NewOrder,
    state: OrderState,
    payment_attempts: u32,
    error: Option<String>,
    bus: EventBus,
    payments: Payments,
}

impl OrderActor {
    async fn enter(&mut self, state: OrderState) {
        self.state = state;
        let topic = match state {
            OrderState::Pending => "order.created",
            OrderState::Processing => "order.processing",
            OrderState::Completed => "order.completed",
            OrderState::Failed => "order.failed",
        };
        // Guaranteed subscribers may make this wait; none of the Hub's do.
        let _ = self
            .bus
            .publish(topic, OrderEvent { id: self.id, state })
            .await;
    }
}

impl Actor for OrderActor {
    async fn pre_start(&mut self, _: &mut Context<Self>) -> Result<(), ActorError> {
        self.enter(OrderState::Pending).await;
        Ok(())
    }
}

/// Pay for the order.
struct Process;
impl Message for Process {
    type Reply = ();
}

impl Handler<Process> for OrderActor {
    async fn handle(&mut self, _: Process, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        if self.state != OrderState::Pending {
            return Ok(());
        }
        self.enter(OrderState::Processing).await;
        let (result, attempts) = self.payments.charge(self.order.fail_payment).await;
        self.payment_attempts = attempts;
        match result {
            Ok(()) => self.enter(OrderState::Completed).await,
            Err(error) => {
                tracing::info!(order = self.id, %error, "payment failed");
                self.error = Some(error);
                self.enter(OrderState::Failed).await;
            }
        }
        ctx.send_after(Expire, KEEP_FINISHED);
        Ok(())
    }
}

/// Read the order.
struct GetOrder;
impl Message for GetOrder {
    type Reply = OrderView;
}

impl Handler<GetOrder> for OrderActor {
    async fn handle(
        &mut self,
        _: GetOrder,
        _: &mut Context<Self>,
    ) -> Result<OrderView, ActorError> {
        Ok(OrderView {
            id: self.id,
            item: self.order.item.clone(),
            quantity: self.order.quantity,
            state: self.state,
            payment_attempts: self.payment_attempts,
            error: self.error.clone(),
        })
    }
}

/// Forget a finished order.
struct Expire;
impl Message for Expire {
    type Reply = ();
}

impl Handler<Expire> for OrderActor {
    async fn handle(&mut self, _: Expire, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        ctx.stop();
        Ok(())
    }
}

/// Orders seen per state, kept by a bus subscription.
#[derive(Default)]
struct Counts {
    created: AtomicU64,
    processing: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
}

#[derive(Clone)]
struct OrdersState {
    system: ActorSystem,
    payments: Payments,
    next_id: Arc<AtomicU64>,
    counts: Arc<Counts>,
}

/// Registers the payment policies and returns the order routes.
pub(crate) fn routes(
    system: &ActorSystem,
    policies: &PolicyRegistry,
) -> Result<IndexedRouter, RegistryError> {
    let breaker = CircuitBreaker::builder(PAYMENTS)
        .sliding_window(SlidingWindow::CountBased { size: 20 })
        .minimum_number_of_calls(10)
        .wait_duration_in_open_state(Duration::from_secs(5))
        .build()?;
    let retry = Retry::builder(PAYMENTS)
        .max_attempts(3)
        .backoff(Backoff::Fixed {
            delay: Duration::from_millis(20),
        })
        .build()?;
    let total = Timeout::builder("payments-total")
        .timeout_duration(Duration::from_secs(2))
        .build()?;
    let attempt = Timeout::builder("payments-attempt")
        .timeout_duration(Duration::from_millis(500))
        .build()?;
    policies.register_circuit_breaker(breaker.clone())?;
    policies.register_retry(retry.clone())?;
    policies.register_timeout(total.clone())?;
    policies.register_timeout(attempt.clone())?;
    let pipeline = Pipeline::builder()
        .timeout(total)
        .retry(retry)
        .circuit_breaker(breaker)
        .attempt_timeout(attempt)
        .build();
    let counts = Arc::new(Counts::default());
    let seen = Arc::clone(&counts);
    let subscribed = system
        .events()
        .subscribe_fn::<OrderEvent, _>("order.*", move |_, event| {
            let counter = match event.state {
                OrderState::Pending => &seen.created,
                OrderState::Processing => &seen.processing,
                OrderState::Completed => &seen.completed,
                OrderState::Failed => &seen.failed,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        });
    if let Err(error) = subscribed {
        // Only a malformed pattern fails, and this one is a constant.
        tracing::error!(%error, "order counts will stay at zero");
    }
    let state = OrdersState {
        system: system.clone(),
        payments: Payments {
            pipeline,
            calls: Arc::new(AtomicU64::new(0)),
        },
        next_id: Arc::new(AtomicU64::new(1)),
        counts,
    };
    Ok(IndexedRouter::new()
        .route(
            "/api/orders",
            "POST {\"item\", \"quantity\", \"fail_payment\"}: an order actor; GET: order.* event counts and actor stats",
            get(summary).post(create),
        )
        .route(
            "/api/orders/{id}",
            "the order's state, asked of its actor",
            get(read),
        )
        .map(|router| router.with_state(state)))
}

fn error(status: StatusCode, message: impl Into<String>) -> (StatusCode, Json<Value>) {
    (status, Json(json!({ "error": message.into() })))
}

async fn create(
    State(state): State<OrdersState>,
    Json(order): Json<NewOrder>,
) -> (StatusCode, Json<Value>) {
    if order.item.trim().is_empty() || order.quantity == 0 {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "an order needs an item and a quantity of at least 1",
        );
    }
    if state.system.stats().actors >= MAX_LIVE_ORDERS {
        return error(StatusCode::SERVICE_UNAVAILABLE, "too many orders in flight");
    }
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    let bus = state.system.events().clone();
    let payments = state.payments.clone();
    let spawned = state
        .system
        .actor(move || OrderActor {
            id,
            order: order.clone(),
            state: OrderState::Pending,
            payment_attempts: 0,
            error: None,
            bus: bus.clone(),
            payments: payments.clone(),
        })
        .name(format!("order-{id}"))
        // A crashed order must not be re-created and paid twice.
        .restart_policy(RestartPolicy::never())
        .spawn();
    let actor = match spawned {
        Ok(actor) => actor,
        Err(spawn_error) => return error(StatusCode::SERVICE_UNAVAILABLE, spawn_error.to_string()),
    };
    if let Err(send_error) = actor.tell(Process).await {
        return error(StatusCode::SERVICE_UNAVAILABLE, send_error.to_string());
    }
    (
        StatusCode::ACCEPTED,
        Json(
            json!({ "id": id, "state": OrderState::Pending, "location": format!("/api/orders/{id}") }),
        ),
    )
}

async fn read(
    State(state): State<OrdersState>,
    Path(id): Path<u64>,
) -> Result<Json<OrderView>, (StatusCode, Json<Value>)> {
    let Some(actor) = state.system.lookup::<OrderActor>(&format!("order-{id}")) else {
        return Err(error(StatusCode::NOT_FOUND, format!("no order {id}")));
    };
    match actor
        .ask_timeout(GetOrder, Duration::from_secs(1), Duration::from_secs(5))
        .await
    {
        Ok(view) => Ok(Json(view)),
        Err(AskError::ActorStopped | AskError::NoReply) => {
            Err(error(StatusCode::NOT_FOUND, format!("no order {id}")))
        }
        Err(ask_error) => Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            ask_error.to_string(),
        )),
    }
}

async fn summary(State(state): State<OrdersState>) -> Json<Value> {
    let counts = &state.counts;
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let system = state.system.stats();
    Json(json!({
        "events": {
            "created": load(&counts.created),
            "processing": load(&counts.processing),
            "completed": load(&counts.completed),
            "failed": load(&counts.failed),
        },
        "payment_calls": load(&state.payments.calls),
        "live_orders": system.actors,
        "subscribers": state.system.events().subscriber_count("order.created").unwrap_or(0),
        "actors": {
            "messages": system.messages,
            "failures": system.failures,
            "restarts": system.restarts,
            "dead_letters": system.dead_letters,
        },
    }))
}
