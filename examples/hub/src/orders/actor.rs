//! [`OrderActor`]: one order, from pending to final, event-sourced.
//!
//! The actor lives only while its order is in flight. It changes its order
//! only by recording an event ([`OrderActor::record`]): the event is
//! applied to the actor's view, appended to the journal and published on
//! the bus, in that order. When the order becomes final the actor frees its
//! slot under the in-flight cap and stops; `GET /api/orders/{id}` reads the
//! journal, live or finished.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cortex::actor::cluster::{Placement, RemoteActor, RemoteMessage};
use cortex::actor::{Actor, ActorError, Context, EventBus, Handler, Message};
use opentelemetry::context::FutureExt as _;
use serde::{Deserialize, Serialize};
use tracing::Instrument as _;

use super::capacity::Reservation;
use super::event::{FailureKind, OrderEvent, OrderEventKind, OrderView, now_ms};
use super::journal::OrderJournal;
use super::payments::{Charge, Payments};

/// The request body of `POST /api/orders`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct NewOrder {
    /// What to order: not blank, at most 200 characters by default.
    #[schema(min_length = 1)]
    pub(super) item: String,
    /// How many (default 1).
    #[serde(default = "one")]
    #[schema(default = 1, minimum = 1)]
    pub(super) quantity: u32,
    /// Make the simulated provider decline the payment (to watch the
    /// `failed` state; a decline is final and not retried).
    #[serde(default)]
    #[schema(default = false)]
    pub(super) fail_payment: bool,
}

fn one() -> u32 {
    1
}

/// How long an order's name release waits, per try, for its final event
/// to be stored.
const RELEASE_WAIT: Duration = Duration::from_secs(30);

/// One order.
#[derive(Debug)]
pub struct OrderActor {
    /// The fold of the events recorded so far.
    view: OrderView,
    fail_payment: bool,
    trace_id: Option<String>,
    /// The placing request's trace context, current while the actor works
    /// on the order.
    trace: opentelemetry::Context,
    processing_announced: bool,
    deadline: Instant,
    order_deadline: Duration,
    bus: EventBus,
    payments: Payments,
    journal: Arc<OrderJournal>,
    /// Held until the order is final (or the actor dies).
    reservation: Option<Reservation>,
    /// In a cluster: where the order's name is claimed, to give it up
    /// when the order is final.
    placement: Option<Placement>,
    /// The node the actor runs on.
    node: Arc<str>,
}

/// What an [`OrderActor`] is made of.
pub(super) struct OrderParts {
    /// The order's first event, already journaled and published.
    pub(super) created: OrderEvent,
    pub(super) fail_payment: bool,
    pub(super) trace: opentelemetry::Context,
    pub(super) order_deadline: Duration,
    pub(super) bus: EventBus,
    pub(super) payments: Payments,
    pub(super) journal: Arc<OrderJournal>,
    pub(super) reservation: Option<Reservation>,
    pub(super) placement: Option<Placement>,
    pub(super) node: Arc<str>,
}

impl OrderActor {
    pub(super) fn new(parts: OrderParts) -> Self {
        let created = parts.created;
        Self {
            view: OrderView::replay(created.order_id, [&created]),
            trace_id: created.trace_id.clone(),
            fail_payment: parts.fail_payment,
            trace: parts.trace,
            processing_announced: false,
            deadline: Instant::now() + parts.order_deadline,
            order_deadline: parts.order_deadline,
            bus: parts.bus,
            payments: parts.payments,
            journal: parts.journal,
            reservation: parts.reservation,
            placement: parts.placement,
            node: parts.node,
        }
    }

    /// Gives the order's name up in the cluster (in the background: the
    /// order is final, nothing waits for this).
    fn release_name(&mut self) {
        let Some(placement) = self.placement.take() else {
            return;
        };
        let name = format!("order-{}", self.view.id);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            // Only once the final event is stored: a name found free must
            // never hide an order whose end was lost. While NATS is away
            // the claim stays (a survivor takes it over if this node dies).
            runtime.spawn(async move {
                for _ in 0..10 {
                    match placement.release_when_stored(&name, RELEASE_WAIT).await {
                        Ok(true) => return,
                        Ok(false) => {}
                        Err(error) => {
                            tracing::debug!(order = name, %error, "cannot release the order's name yet");
                            tokio::time::sleep(RELEASE_WAIT).await;
                        }
                    }
                }
            });
        }
    }

    /// Applies `kind` as the next event and appends it to the journal;
    /// returns the event for the bus.
    fn apply_and_journal(&mut self, kind: OrderEventKind) -> OrderEvent {
        let event = OrderEvent {
            order_id: self.view.id,
            seq: self.view.events.saturating_add(1),
            at_ms: now_ms(),
            trace_id: self.trace_id.clone(),
            kind,
        };
        self.view.apply(&event);
        self.journal.append(event.clone());
        event
    }

    /// Records `kind`: applied, journaled, published.
    async fn record(&mut self, kind: OrderEventKind) {
        let event = self.apply_and_journal(kind);
        // Guaranteed subscribers may make this wait; none of the Hub's do.
        let _ = self.bus.publish(event.topic(), event).await;
    }

    /// Makes the order final: recorded, its slot freed, its actor stopped.
    async fn finish(&mut self, kind: OrderEventKind, ctx: &mut Context<Self>) {
        self.record(kind).await;
        self.reservation = None;
        self.release_name();
        ctx.stop();
    }

    async fn fail(&mut self, kind: FailureKind, reason: String, ctx: &mut Context<Self>) {
        tracing::info!(order = self.view.id, %reason, "order failed");
        self.finish(OrderEventKind::Failed { kind, reason }, ctx)
            .await;
    }
}

/// The `created` event is journaled and published by the request that
/// placed the order (in a cluster, stored before the answer), so the actor
/// starts with nothing to announce.
impl Actor for OrderActor {}

impl Drop for OrderActor {
    /// An actor that goes before its order is final (a panic, a kill, a
    /// shutdown) records the order as abandoned, so the log ends and the
    /// journal can evict it.
    fn drop(&mut self) {
        if !self.view.state.is_final() {
            let event = self.apply_and_journal(OrderEventKind::Failed {
                kind: FailureKind::Abandoned,
                reason: "the order's actor stopped before the order was final".to_owned(),
            });
            let _ = self.bus.try_publish(event.topic(), event);
        }
        self.release_name();
    }
}

impl RemoteActor for OrderActor {
    const TYPE: &'static str = "order";
}

/// What the live actor of an order says: its own view and where it runs
/// (`GET /api/orders/{id}/actor`, answered from any node).
#[derive(Debug, Serialize, Deserialize)]
pub struct Inspect;

/// The answer to [`Inspect`].
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ActorView {
    /// The node the actor runs on.
    pub node: String,
    /// The order as the actor holds it.
    pub order: OrderView,
}

impl Message for Inspect {
    type Reply = ActorView;
}

impl RemoteMessage for Inspect {
    const NAME: &'static str = "hub-order-inspect";
}

impl Handler<Inspect> for OrderActor {
    async fn handle(&mut self, _: Inspect, _: &mut Context<Self>) -> Result<ActorView, ActorError> {
        Ok(ActorView {
            node: self.node.to_string(),
            order: self.view.clone(),
        })
    }
}

/// Pay for the order (again, after the breaker's `Retry-After`).
pub(super) struct Process;
impl Message for Process {
    type Reply = ();
}

impl Handler<Process> for OrderActor {
    async fn handle(&mut self, _: Process, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        let trace = self.trace.clone();
        self.process(ctx).with_context(trace).await
    }
}

impl OrderActor {
    /// One attempt at paying, in the placing request's trace context and
    /// an `order.process` span (exported as a child of the request's
    /// server span: the trace continues into the actor).
    async fn process(&mut self, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        let span = tracing::info_span!("order.process", order = self.view.id);
        self.process_in_span(ctx).instrument(span).await
    }

    async fn process_in_span(&mut self, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        if self.view.state.is_final() {
            return Ok(());
        }
        // One `processing` event per order, however often it waits.
        if !self.processing_announced {
            self.processing_announced = true;
            self.record(OrderEventKind::Processing).await;
        }
        let (charge, attempts) = self.payments.charge(self.fail_payment).await;
        match charge {
            Charge::Paid => {
                self.record(OrderEventKind::PaymentSucceeded { attempts })
                    .await;
                self.finish(OrderEventKind::Completed, ctx).await;
            }
            Charge::Declined => {
                self.record(OrderEventKind::PaymentDeclined { attempts })
                    .await;
                self.fail(FailureKind::Declined, "payment declined".to_owned(), ctx)
                    .await;
            }
            Charge::BreakerOpen { retry_after } => {
                let left = self.deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    let reason = format!(
                        "payment provider unavailable: the payments circuit breaker was still open at the order's {}s deadline; not charged",
                        self.order_deadline.as_secs()
                    );
                    self.fail(FailureKind::Unavailable, reason, ctx).await;
                } else {
                    // Not charged: wait for the breaker, at most until the
                    // deadline, where one last attempt decides.
                    let wait = retry_after.min(left);
                    self.record(OrderEventKind::PaymentUnavailable {
                        retry_after_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    })
                    .await;
                    ctx.send_after(Process, wait);
                }
            }
            Charge::Fault(reason) => {
                self.record(OrderEventKind::PaymentFailed {
                    attempts,
                    reason: reason.clone(),
                })
                .await;
                self.fail(FailureKind::Fault, reason, ctx).await;
            }
        }
        Ok(())
    }
}
