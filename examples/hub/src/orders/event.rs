//! An order's events and the fold that makes its state.
//!
//! The event log is the truth: an [`OrderActor`](super::OrderActor)
//! changes its order only by recording an event, and the order anyone reads
//! — the actor's own state, `GET /api/orders/{id}`, the finished-order
//! store — is [`OrderView::replay`] of that log. The same events go out on
//! the actor system's bus as `order.<type>` (`order.created`,
//! `order.payment_declined`, …), where analytics and notifications read
//! them.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Where an order is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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

/// Why an order failed, as a bounded set (a metric label, an analytics
/// key); the event's `reason` has the words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The provider said no.
    Declined,
    /// The payments breaker stayed open until the order's deadline.
    Unavailable,
    /// The provider failed after the retries.
    Fault,
    /// The order's actor stopped before the order was final.
    Abandoned,
}

impl FailureKind {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Declined => "declined",
            Self::Unavailable => "unavailable",
            Self::Fault => "fault",
            Self::Abandoned => "abandoned",
        }
    }
}

/// What happened to an order, one step of its log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OrderEventKind {
    /// The order was accepted.
    Created {
        /// What was ordered.
        item: String,
        /// How many.
        quantity: u32,
    },
    /// Work on the order started (once per order).
    Processing,
    /// The payment went through after `attempts` calls to the provider.
    PaymentSucceeded {
        /// Calls that reached the provider for this charge.
        attempts: u32,
    },
    /// The provider declined the payment (final, not retried).
    PaymentDeclined {
        /// Calls that reached the provider for this charge.
        attempts: u32,
    },
    /// The payments breaker was open: not charged, tried again after
    /// `retry_after_ms`.
    PaymentUnavailable {
        /// When the order tries again.
        retry_after_ms: u64,
    },
    /// The provider failed (after the retries).
    PaymentFailed {
        /// Calls that reached the provider for this charge.
        attempts: u32,
        /// The provider's fault.
        reason: String,
    },
    /// The order is paid: final.
    Completed,
    /// The order failed: final.
    Failed {
        /// The kind of failure.
        kind: FailureKind,
        /// What happened, in words.
        reason: String,
    },
}

impl OrderEventKind {
    /// The event's type, the last word of its bus topic.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Created { .. } => "created",
            Self::Processing => "processing",
            Self::PaymentSucceeded { .. } => "payment_succeeded",
            Self::PaymentDeclined { .. } => "payment_declined",
            Self::PaymentUnavailable { .. } => "payment_unavailable",
            Self::PaymentFailed { .. } => "payment_failed",
            Self::Completed => "completed",
            Self::Failed { .. } => "failed",
        }
    }

    /// The bus topic the event is published on.
    pub fn topic(&self) -> &'static str {
        match self {
            Self::Created { .. } => "order.created",
            Self::Processing => "order.processing",
            Self::PaymentSucceeded { .. } => "order.payment_succeeded",
            Self::PaymentDeclined { .. } => "order.payment_declined",
            Self::PaymentUnavailable { .. } => "order.payment_unavailable",
            Self::PaymentFailed { .. } => "order.payment_failed",
            Self::Completed => "order.completed",
            Self::Failed { .. } => "order.failed",
        }
    }

    /// Whether the event ends the order.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Completed | Self::Failed { .. })
    }
}

/// One recorded event: the step, which order, its place in the order's
/// log, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderEvent {
    /// The order.
    pub order_id: u64,
    /// 1 for `created`, then one more per event.
    pub seq: u32,
    /// When it was recorded, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The trace of the request that placed the order (32 hex digits),
    /// when it was sampled: joins the event to the request's spans and log
    /// lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, pattern = "^[0-9a-f]{32}$")]
    pub trace_id: Option<String>,
    /// What happened.
    #[serde(flatten)]
    pub kind: OrderEventKind,
}

impl OrderEvent {
    /// The bus topic the event is published on.
    pub fn topic(&self) -> &'static str {
        self.kind.topic()
    }
}

/// Milliseconds since the Unix epoch, now.
pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// An order as `GET /api/orders/{id}` shows it: the fold of its events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderView {
    /// The order.
    pub id: u64,
    /// What was ordered.
    pub item: String,
    /// How many.
    pub quantity: u32,
    /// Where it is.
    #[serde(with = "state_serde")]
    pub state: OrderState,
    /// Calls that reached the payment provider, over every charge.
    pub payment_attempts: u32,
    /// Why it failed (`null` unless it did).
    #[schema(required = true)]
    pub error: Option<String>,
    /// How many events its log has.
    pub events: u32,
}

impl OrderView {
    /// The order before any event.
    fn empty(id: u64) -> Self {
        Self {
            id,
            item: String::new(),
            quantity: 0,
            state: OrderState::Pending,
            payment_attempts: 0,
            error: None,
            events: 0,
        }
    }

    /// The order after `event`.
    pub fn apply(&mut self, event: &OrderEvent) {
        self.events = event.seq;
        match &event.kind {
            OrderEventKind::Created { item, quantity } => {
                item.clone_into(&mut self.item);
                self.quantity = *quantity;
                self.state = OrderState::Pending;
            }
            OrderEventKind::Processing => self.state = OrderState::Processing,
            OrderEventKind::PaymentSucceeded { attempts }
            | OrderEventKind::PaymentDeclined { attempts }
            | OrderEventKind::PaymentFailed { attempts, .. } => {
                // A charge was made: the order is being worked on, whatever
                // it waited for before.
                self.state = OrderState::Processing;
                self.payment_attempts = self.payment_attempts.saturating_add(*attempts);
            }
            // Not charged: back to waiting until the breaker lets it try.
            OrderEventKind::PaymentUnavailable { .. } => self.state = OrderState::Pending,
            OrderEventKind::Completed => self.state = OrderState::Completed,
            OrderEventKind::Failed { reason, .. } => {
                self.state = OrderState::Failed;
                self.error = Some(reason.clone());
            }
        }
    }

    /// The order `id` rebuilt from its log.
    pub fn replay<'a>(id: u64, events: impl IntoIterator<Item = &'a OrderEvent>) -> Self {
        let mut view = Self::empty(id);
        for event in events {
            view.apply(event);
        }
        view
    }
}

/// `OrderState` reads back from its lowercase name (tests and clients
/// deserialize views).
mod state_serde {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::OrderState;

    pub(super) fn serialize<S: Serializer>(
        state: &OrderState,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        state.serialize(serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<OrderState, D::Error> {
        match String::deserialize(deserializer)?.as_str() {
            "pending" => Ok(OrderState::Pending),
            "processing" => Ok(OrderState::Processing),
            "completed" => Ok(OrderState::Completed),
            "failed" => Ok(OrderState::Failed),
            other => Err(serde::de::Error::unknown_variant(
                other,
                &["pending", "processing", "completed", "failed"],
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u32, kind: OrderEventKind) -> OrderEvent {
        OrderEvent {
            order_id: 7,
            seq,
            at_ms: 0,
            trace_id: None,
            kind,
        }
    }

    #[test]
    fn the_fold_of_a_paid_order_is_completed_with_its_attempts() {
        let log = [
            event(
                1,
                OrderEventKind::Created {
                    item: "book".into(),
                    quantity: 2,
                },
            ),
            event(2, OrderEventKind::Processing),
            event(3, OrderEventKind::PaymentUnavailable { retry_after_ms: 5 }),
            event(4, OrderEventKind::PaymentSucceeded { attempts: 2 }),
            event(5, OrderEventKind::Completed),
        ];
        let view = OrderView::replay(7, &log);
        assert_eq!(
            view,
            OrderView {
                id: 7,
                item: "book".into(),
                quantity: 2,
                state: OrderState::Completed,
                payment_attempts: 2,
                error: None,
                events: 5,
            }
        );
        // Each prefix is a state the order was in.
        let states: Vec<OrderState> = (1..=log.len())
            .map(|n| OrderView::replay(7, &log[..n]).state)
            .collect();
        assert_eq!(
            states,
            [
                OrderState::Pending,
                OrderState::Processing,
                OrderState::Pending,
                OrderState::Processing,
                OrderState::Completed
            ]
        );
    }

    #[test]
    fn events_serialize_flat_with_their_type() {
        let failed = event(
            3,
            OrderEventKind::Failed {
                kind: FailureKind::Declined,
                reason: "payment declined".into(),
            },
        );
        assert_eq!(
            serde_json::to_value(&failed).unwrap(),
            serde_json::json!({
                "order_id": 7, "seq": 3, "at_ms": 0, "type": "failed",
                "kind": "declined", "reason": "payment declined",
            })
        );
        assert_eq!(failed.topic(), "order.failed");
    }
}
