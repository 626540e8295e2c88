//! [`OrderActor`]: one order, from pending to final.
//!
//! The actor lives only while its order is in flight. When the order
//! becomes final it records itself in the finished-order store, frees its
//! slot under the in-flight cap and stops; `GET /api/orders/{id}` then
//! answers from the store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cortex::actor::{Actor, ActorError, Context, EventBus, Handler, Message};
use serde::{Deserialize, Serialize};

use super::capacity::Reservation;
use super::finished::FinishedOrders;
use super::payments::{Charge, Payments};

/// Where an order is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderState {
    /// Accepted, not yet worked on (or waiting for the payments breaker to
    /// close).
    Pending,
    /// Paying.
    Processing,
    /// Paid.
    Completed,
    /// The payment was declined, or could not be made before the order's
    /// deadline.
    Failed,
}

impl OrderState {
    /// Whether the order is done.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
    }
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
    pub(super) id: u64,
    item: String,
    quantity: u32,
    state: OrderState,
    payment_attempts: u32,
    error: Option<String>,
}

/// The request body of `POST /api/orders`.
#[derive(Debug, Clone, Deserialize)]
pub struct NewOrder {
    pub(super) item: String,
    #[serde(default = "one")]
    pub(super) quantity: u32,
    /// Make the simulated provider decline the payment (to watch the
    /// `failed` state; a decline is final and not retried).
    #[serde(default)]
    pub(super) fail_payment: bool,
}

fn one() -> u32 {
    1
}

/// One order.
#[derive(Debug)]
pub struct OrderActor {
    id: u64,
    order: NewOrder,
    state: OrderState,
    payment_attempts: u32,
    error: Option<String>,
    processing_announced: bool,
    deadline: Instant,
    order_deadline: Duration,
    bus: EventBus,
    payments: Payments,
    finished: Arc<FinishedOrders>,
    /// Held until the order is final (or the actor dies).
    reservation: Option<Reservation>,
}

/// What an [`OrderActor`] is made of.
pub(super) struct OrderParts {
    pub(super) id: u64,
    pub(super) order: NewOrder,
    pub(super) order_deadline: Duration,
    pub(super) bus: EventBus,
    pub(super) payments: Payments,
    pub(super) finished: Arc<FinishedOrders>,
    pub(super) reservation: Option<Reservation>,
}

impl OrderActor {
    pub(super) fn new(parts: OrderParts) -> Self {
        Self {
            id: parts.id,
            order: parts.order,
            state: OrderState::Pending,
            payment_attempts: 0,
            error: None,
            processing_announced: false,
            deadline: Instant::now() + parts.order_deadline,
            order_deadline: parts.order_deadline,
            bus: parts.bus,
            payments: parts.payments,
            finished: parts.finished,
            reservation: parts.reservation,
        }
    }

    async fn publish(&mut self, state: OrderState) {
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

    fn view(&self) -> OrderView {
        OrderView {
            id: self.id,
            item: self.order.item.clone(),
            quantity: self.order.quantity,
            state: self.state,
            payment_attempts: self.payment_attempts,
            error: self.error.clone(),
        }
    }

    /// Makes the order final: announced, kept in the store, its slot
    /// freed, its actor stopped.
    async fn finish(&mut self, state: OrderState, error: Option<String>, ctx: &mut Context<Self>) {
        self.state = state;
        self.error = error;
        self.publish(state).await;
        self.finished.insert(self.view());
        self.reservation = None;
        ctx.stop();
    }
}

impl Actor for OrderActor {
    async fn pre_start(&mut self, _: &mut Context<Self>) -> Result<(), ActorError> {
        self.publish(OrderState::Pending).await;
        Ok(())
    }
}

/// Pay for the order (again, after the breaker's `Retry-After`).
pub(super) struct Process;
impl Message for Process {
    type Reply = ();
}

impl Handler<Process> for OrderActor {
    async fn handle(&mut self, _: Process, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        if self.state.is_final() {
            return Ok(());
        }
        self.state = OrderState::Processing;
        // One `order.processing` per order, however often it waits.
        if !self.processing_announced {
            self.processing_announced = true;
            self.publish(OrderState::Processing).await;
        }
        let (charge, attempts) = self.payments.charge(self.order.fail_payment).await;
        self.payment_attempts = self.payment_attempts.saturating_add(attempts);
        match charge {
            Charge::Paid => self.finish(OrderState::Completed, None, ctx).await,
            Charge::Declined => {
                tracing::info!(order = self.id, "payment declined");
                let reason = "payment declined".to_owned();
                self.finish(OrderState::Failed, Some(reason), ctx).await;
            }
            Charge::BreakerOpen { retry_after } => {
                let left = self.deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    let reason = format!(
                        "payment provider unavailable: the payments circuit breaker was still open at the order's {}s deadline; not charged",
                        self.order_deadline.as_secs()
                    );
                    tracing::info!(order = self.id, %reason, "order failed");
                    self.finish(OrderState::Failed, Some(reason), ctx).await;
                } else {
                    // Not charged: wait for the breaker, at most until the
                    // deadline, where one last attempt decides.
                    self.state = OrderState::Pending;
                    ctx.send_after(Process, retry_after.min(left));
                }
            }
            Charge::Fault(reason) => {
                tracing::info!(order = self.id, %reason, "payment failed");
                self.finish(OrderState::Failed, Some(reason), ctx).await;
            }
        }
        Ok(())
    }
}

/// Read the order.
pub(super) struct GetOrder;
impl Message for GetOrder {
    type Reply = OrderView;
}

impl Handler<GetOrder> for OrderActor {
    async fn handle(
        &mut self,
        _: GetOrder,
        _: &mut Context<Self>,
    ) -> Result<OrderView, ActorError> {
        Ok(self.view())
    }
}
