//! `/api/orders`: an order service built on actors, bounded against
//! hostile clients.
//!
//! Each order in flight is an [`OrderActor`] named `order-{id}`, whose
//! state moves pending → processing → completed | failed. The order is
//! event-sourced: the actor changes it only by recording an
//! [`OrderEvent`] (`created`, `processing`, `payment_succeeded`,
//! `payment_declined`, `payment_unavailable`, `payment_failed`,
//! `completed`, `failed`), which is applied, kept in the journal and
//! published on the actor system's event bus as `order.<type>`. What
//! anyone reads is the fold of that log ([`OrderView::replay`]):
//! `GET /api/orders/{id}` the order, `GET /api/orders/{id}/events` the log
//! itself; analytics and notifications consume the same events from the
//! bus, and the journal counts the events it appends for `GET /api/orders`
//! (in a cluster it also appends the other nodes' events from the bus).
//! The payment call
//! is simulated and protected by a resilience pipeline (timeout → retry →
//! circuit breaker), registered as `payments` so it shows in `/resilience`
//! and `/metrics`.
//!
//! The bounds, all in [`OrdersConfig`]:
//!
//! - a request body is at most [`OrdersConfig::max_body_bytes`] (413), and
//!   `item` at most [`OrdersConfig::max_item_chars`] (422, naming the
//!   field); refusals are `application/problem+json`;
//! - at most [`OrdersConfig::max_in_flight`] orders are pending or
//!   processing: a slot is reserved atomically before the actor spawns and
//!   freed when the order is final (or its actor dies); past the cap, 503
//!   with `Retry-After`;
//! - a final order's actor stops; the order and its log stay readable from
//!   the journal, which keeps the last [`OrdersConfig::keep_finished`]
//!   finished orders, none finished longer ago than
//!   [`OrdersConfig::keep_finished_for`], and at most
//!   [`MAX_EVENTS_PER_ORDER`] events of one order;
//! - a declined payment is final and counts as a *success* for the
//!   breaker (the provider answered); an order that meets an open breaker
//!   stays pending and tries again after the breaker's `Retry-After`, and
//!   fails at [`OrdersConfig::order_deadline`] if it still cannot pay.
//!
//! Nothing on a request path scans: the counts are counters, the store
//! and the cap are O(1).

mod actor;
mod capacity;
mod event;
mod journal;
mod payments;
mod problem;
mod recover;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use cortex::actor::cluster::{Placement, RemoteError};
use cortex::actor::{ActorRef, ActorSystem, AskError, RestartPolicy};
use cortex::resilience::{PolicyRegistry, RegistryError};
use serde_json::{Value, json};

pub use actor::{ActorView, Inspect, NewOrder, OrderActor};
pub use event::{FailureKind, OrderEvent, OrderEventKind, OrderState, OrderView};
pub use journal::MAX_EVENTS_PER_ORDER;
pub use payments::PAYMENTS;
pub use problem::FieldError;

use actor::{OrderParts, Process};
use capacity::InFlight;
use journal::OrderJournal;
use payments::Payments;
use problem::Problem;

use crate::cluster::HubCluster;
use crate::routes::IndexedRouter;

/// The bounds of the order service. The defaults are the Hub's.
#[derive(Debug, Clone)]
pub struct OrdersConfig {
    /// The largest `POST /api/orders` body, in bytes (default 4 KiB);
    /// larger ones get 413 before they are read in full.
    pub max_body_bytes: usize,
    /// The longest `item`, in characters (default 200); longer ones get
    /// 422 naming the field.
    pub max_item_chars: usize,
    /// Orders pending or processing at once (default 10 000); past it,
    /// `POST` gets 503 with `Retry-After`.
    pub max_in_flight: usize,
    /// What `Retry-After` says when the cap is hit (default 1 s).
    pub retry_after: Duration,
    /// Finished orders kept readable (default 10 000) ...
    pub keep_finished: usize,
    /// ... and for how long at most (default 10 min).
    pub keep_finished_for: Duration,
    /// How long an order may wait for the payments breaker to close before
    /// it fails (default 30 s).
    pub order_deadline: Duration,
}

impl Default for OrdersConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 4 * 1024,
            max_item_chars: 200,
            max_in_flight: 10_000,
            retry_after: Duration::from_secs(1),
            keep_finished: 10_000,
            keep_finished_for: Duration::from_secs(600),
            order_deadline: Duration::from_secs(30),
        }
    }
}

#[derive(Clone)]
struct OrdersState {
    config: Arc<OrdersConfig>,
    system: ActorSystem,
    payments: Payments,
    next_id: Arc<AtomicU64>,
    in_flight: Arc<InFlight>,
    journal: Arc<OrderJournal>,
    /// In a cluster of Hubs: ids, placement and remote actors.
    cluster: Option<HubCluster>,
    node: Arc<str>,
}

/// The order routes alone, with `config`: registers the `payments`
/// policies in `policies` and spawns orders in `system`. The Hub mounts
/// the same routes with [`OrdersConfig::default`].
pub fn router(
    config: OrdersConfig,
    system: &ActorSystem,
    policies: &PolicyRegistry,
) -> Result<Router, RegistryError> {
    Ok(routes_with(config, system, policies, None, "hub")?
        .into_parts()
        .0)
}

/// Registers the payment policies and returns the order routes bounded
/// by `config`.
pub(crate) fn routes_with(
    config: OrdersConfig,
    system: &ActorSystem,
    policies: &PolicyRegistry,
    cluster: Option<&HubCluster>,
    node: &str,
) -> Result<IndexedRouter, RegistryError> {
    let payments = Payments::register(policies)?;
    let journal = Arc::new(OrderJournal::new(
        config.keep_finished,
        config.keep_finished_for,
    ));
    if let Some(cluster) = cluster {
        // In a cluster the journal also hears every order event on the
        // bus: the other nodes' (and this node's own, which its actors
        // appended already and the journal drops as copies). On one node
        // the actors' own appends are all there is, and nothing listens.
        let feed = Arc::clone(&journal);
        let subscribed =
            system
                .events()
                .subscribe_fn::<OrderEvent, _>("order.*", move |_, event| {
                    feed.append(event.clone());
                });
        if let Err(error) = subscribed {
            // Only a malformed pattern fails, and this one is a constant.
            tracing::error!(%error, "the journal will only see this node's orders");
        }
        tokio::spawn(recover::take_over_orphans(
            cluster.clone(),
            Arc::clone(&journal),
            system.events().clone(),
        ));
    }
    let body_limit = DefaultBodyLimit::max(config.max_body_bytes);
    let state = OrdersState {
        system: system.clone(),
        payments,
        next_id: Arc::new(AtomicU64::new(1)),
        in_flight: InFlight::new(config.max_in_flight),
        journal,
        config: Arc::new(config),
        cluster: cluster.cloned(),
        node: Arc::from(node),
    };
    Ok(IndexedRouter::new()
        .route(
            "/api/orders",
            "POST {\"item\", \"quantity\", \"fail_payment\"}: an order actor; GET: order.* event counts and actor stats",
            get(summary).post(create).layer(body_limit),
        )
        .route(
            "/api/orders/{id}",
            "the order's state: the fold of its event log",
            get(read),
        )
        .route(
            "/api/orders/{id}/actor",
            "the order's live actor, asked wherever it runs (any node of a cluster): its view and its node; 404 once the order is final",
            get(actor_view),
        )
        .route(
            "/api/orders/{id}/events",
            "the order's event log (created, processing, payment_*, completed | failed), oldest first",
            get(events),
        )
        .map(|router| router.with_state(state)))
}

/// The fields of `order` out of `config`'s bounds.
fn field_errors(order: &NewOrder, config: &OrdersConfig) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if order.item.trim().is_empty() {
        errors.push(FieldError {
            field: "item",
            message: "must not be empty".to_owned(),
        });
    } else if order.item.chars().count() > config.max_item_chars {
        errors.push(FieldError {
            field: "item",
            message: format!("must be at most {} characters", config.max_item_chars),
        });
    }
    if order.quantity == 0 {
        errors.push(FieldError {
            field: "quantity",
            message: "must be at least 1".to_owned(),
        });
    }
    errors
}

/// Places an order: an order actor that goes pending → processing →
/// completed | failed.
#[utoipa::path(
    post,
    path = "/api/orders",
    tag = "orders",
    request_body(content = NewOrder, description = "at most 4 KiB"),
    responses(
        (status = 202, description = "accepted: the order is pending", body = crate::openapi::OrderAccepted),
        (status = 400, description = "the body is not JSON", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 413, description = "the body is over 4 KiB", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 415, description = "no `Content-Type: application/json`", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 422, description = "a missing or mistyped field, or fields out of bounds (`errors`)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 503, description = "too many orders in flight (`retry_after`), or the actor system cannot take it", body = crate::openapi::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "seconds, when too many orders are in flight"))),
    ),
)]
async fn create(
    State(state): State<OrdersState>,
    order: Result<Json<NewOrder>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    let Json(order) = order.map_err(|rejection| Problem::unreadable_order(&rejection))?;
    let errors = field_errors(&order, &state.config);
    if !errors.is_empty() {
        return Err(Problem::invalid_order(errors));
    }
    let Some(reservation) = state.in_flight.try_reserve() else {
        return Err(Problem::too_many_orders(
            state.in_flight.max(),
            state.config.retry_after,
        ));
    };
    let id = match &state.cluster {
        Some(cluster) => cluster.order_ids.next().await.map_err(|error| {
            Problem::unavailable(format!("no order id from the cluster: {error}"))
        })?,
        None => state.next_id.fetch_add(1, Ordering::Relaxed),
    };
    let name = format!("order-{id}");
    let placement = match &state.cluster {
        Some(cluster) => claim(cluster, &name).await,
        None => None,
    };
    // The `created` event is journaled here, before the answer, so the
    // `location` answered below is readable at once (the actor is built in
    // its own task, which may run after this handler answers).
    let created = OrderEvent {
        order_id: id,
        seq: 1,
        at_ms: event::now_ms(),
        trace_id: sampled_trace_id(),
        kind: OrderEventKind::Created {
            item: order.item.clone(),
            quantity: order.quantity,
        },
    };
    state.journal.append(created.clone());
    // Published here, in the request's trace context, before the actor
    // exists: every event of the order follows it on the bus.
    let _ = state
        .system
        .events()
        .publish(created.topic(), created.clone())
        .await;
    // The factory runs once (orders are never restarted); if the spawn
    // fails, the reservation drops with it and the order is abandoned.
    let mut parts = Some(OrderParts {
        created,
        fail_payment: order.fail_payment,
        // The request's trace context: the actor handles the order in it,
        // so its spans and log lines join the request's trace.
        trace: opentelemetry::Context::current(),
        order_deadline: state.config.order_deadline,
        bus: state.system.events().clone(),
        payments: state.payments.clone(),
        journal: Arc::clone(&state.journal),
        reservation: Some(reservation),
        placement,
        node: Arc::clone(&state.node),
    });
    let spawned = state
        .system
        .actor(move || {
            let parts = parts.take().expect("an order actor is made once");
            OrderActor::new(parts)
        })
        .name(name.clone())
        // A crashed order must not be re-created and paid twice.
        .restart_policy(RestartPolicy::never())
        .spawn();
    let actor = match spawned {
        Ok(actor) => actor,
        Err(error) => {
            let failed = OrderEvent {
                order_id: id,
                seq: 2,
                at_ms: event::now_ms(),
                trace_id: None,
                kind: OrderEventKind::Failed {
                    kind: FailureKind::Abandoned,
                    reason: format!("the order's actor could not start: {error}"),
                },
            };
            state.journal.append(failed.clone());
            let _ = state.system.events().publish(failed.topic(), failed).await;
            if let Some(cluster) = &state.cluster {
                let _ = cluster
                    .placement
                    .release_when_stored(&name, STORED_WITHIN)
                    .await;
            }
            return Err(Problem::unavailable(error.to_string()));
        }
    };
    if let Some(cluster) = &state.cluster {
        serve(cluster, &name, &actor).await;
    }
    actor
        .tell(Process)
        .await
        .map_err(|error| Problem::unavailable(error.to_string()))?;
    let mut accepted =
        json!({ "id": id, "state": OrderState::Pending, "location": format!("/api/orders/{id}") });
    if let Some(cluster) = &state.cluster {
        // In a cluster, the answer says whether the order is in the
        // stream, so it survives this node: every node will see it.
        accepted["stored"] = cluster.cluster.wait_stored(STORED_WITHIN).await.into();
    }
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// How long `POST /api/orders` waits, in a cluster, for the order's
/// `created` event to be stored in the stream before it answers anyway
/// (with `"stored": false`: NATS is away, the order runs here).
const STORED_WITHIN: Duration = Duration::from_secs(1);

/// Claims the order's name for this node; `None` (and counted) when NATS
/// is away, so placing orders does not wait for it.
async fn claim(cluster: &HubCluster, name: &str) -> Option<Placement> {
    if !cluster.cluster.is_connected() {
        cluster.count_unplaced();
        return None;
    }
    match cluster.placement.claim(name).await {
        Ok(claim) if claim.is_mine() => Some(cluster.placement.clone()),
        Ok(claim) => {
            // Ids are unique across the cluster, so this is a bug.
            tracing::error!(
                order = name,
                ?claim,
                "an order id is claimed by another node"
            );
            cluster.count_unplaced();
            None
        }
        Err(error) => {
            tracing::warn!(order = name, %error, "cannot claim the order's name; it runs here unplaced");
            cluster.count_unplaced();
            None
        }
    }
}

/// Makes the order's actor reachable from every node until it stops.
async fn serve(cluster: &HubCluster, name: &str, actor: &ActorRef<OrderActor>) {
    if !cluster.cluster.is_connected() {
        return;
    }
    let served = cluster
        .cluster
        .serve(name, actor)
        .message::<Inspect>()
        .start()
        .await;
    if let Err(error) = served {
        tracing::warn!(order = name, %error, "the order's actor is reachable from this node only");
    }
}

/// The order's live actor, wherever it runs.
#[utoipa::path(
    get,
    path = "/api/orders/{id}/actor",
    tag = "orders",
    operation_id = "order_actor",
    params(("id" = u64, Path, description = "the order's id")),
    responses(
        (status = 200, description = "the actor's own view of the order, and its node", body = ActorView),
        (status = 400, description = "the id is not a number (axum's plain-text rejection)", body = String, content_type = "text/plain"),
        (status = 404, description = "no live actor: the order is final, or unknown", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 503, description = "the actor's node did not answer", body = crate::openapi::Problem, content_type = "application/problem+json"),
    ),
)]
async fn actor_view(
    State(state): State<OrdersState>,
    Path(id): Path<u64>,
) -> Result<Json<ActorView>, Problem> {
    let name = format!("order-{id}");
    let answer = match (state.system.lookup::<OrderActor>(&name), &state.cluster) {
        (Some(actor), _) => actor.ask(Inspect).await.map_err(RemoteError::from),
        (None, Some(cluster)) => {
            cluster
                .cluster
                .remote::<OrderActor>(&name)
                .with_timeout(Duration::from_secs(2))
                .ask(Inspect)
                .await
        }
        (None, None) => Err(RemoteError::Ask(AskError::ActorStopped)),
    };
    match answer {
        Ok(view) => Ok(Json(view)),
        Err(RemoteError::Ask(AskError::ActorStopped | AskError::NoReply)) => {
            Err(Problem::no_live_actor(id))
        }
        Err(error) => Err(Problem::unavailable(format!(
            "the order's actor did not answer: {error}"
        ))),
    }
}

/// The trace id of the current request's span, when it is sampled.
fn sampled_trace_id() -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    let cx = opentelemetry::Context::current();
    let span = cx.span();
    let context = span.span_context();
    context.is_sampled().then(|| context.trace_id().to_string())
}

/// The order's state: the fold of its event log.
#[utoipa::path(
    get,
    path = "/api/orders/{id}",
    tag = "orders",
    params(("id" = u64, Path, description = "the order's id")),
    responses(
        (status = 200, description = "the order", body = OrderView),
        (status = 400, description = "the id is not a number (axum's plain-text rejection)", body = String, content_type = "text/plain"),
        (status = 404, description = "no such order, or it finished too long ago to be kept", body = crate::openapi::Problem, content_type = "application/problem+json"),
    ),
)]
async fn read(
    State(state): State<OrdersState>,
    Path(id): Path<u64>,
) -> Result<Json<OrderView>, Problem> {
    state
        .journal
        .view(id)
        .map(Json)
        .ok_or_else(|| Problem::no_order(id))
}

/// The order's event log, oldest first, with the order it folds to.
#[utoipa::path(
    get,
    path = "/api/orders/{id}/events",
    tag = "orders",
    operation_id = "order_events",
    params(("id" = u64, Path, description = "the order's id")),
    responses(
        (status = 200, description = "the log and its fold", body = crate::openapi::OrderLog),
        (status = 400, description = "the id is not a number (axum's plain-text rejection)", body = String, content_type = "text/plain"),
        (status = 404, description = "no such order, or it finished too long ago to be kept", body = crate::openapi::Problem, content_type = "application/problem+json"),
    ),
)]
async fn events(
    State(state): State<OrdersState>,
    Path(id): Path<u64>,
) -> Result<Json<Value>, Problem> {
    let events = state
        .journal
        .events(id)
        .ok_or_else(|| Problem::no_order(id))?;
    let order = OrderView::replay(id, &events);
    Ok(Json(json!({ "order": order, "events": events })))
}

/// Counts of `order.*` events and actor-system stats.
#[utoipa::path(
    get,
    path = "/api/orders",
    tag = "orders",
    operation_id = "order_summary",
    responses((
        status = 200,
        description = "`{\"events\": {\"created\", \"processing\", \"completed\", \"failed\"}, \"payment_calls\", \"in_flight\", \"max_in_flight\", \"finished_kept\", \"live_orders\", \"subscribers\", \"actors\"}`",
        body = Object,
    )),
)]
async fn summary(State(state): State<OrdersState>) -> Json<Value> {
    let counts = state.journal.counts();
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let system = state.system.stats();
    Json(json!({
        "events": {
            "created": load(&counts.created),
            "processing": load(&counts.processing),
            "completed": load(&counts.completed),
            "failed": load(&counts.failed),
        },
        "payment_calls": state.payments.calls(),
        "in_flight": state.in_flight.current(),
        "max_in_flight": state.in_flight.max(),
        "finished_kept": state.journal.finished_len(),
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
