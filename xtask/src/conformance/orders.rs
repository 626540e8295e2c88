//! `/api/orders`: an order placed over HTTP becomes an actor that moves
//! pending → processing → completed, or → failed on a declined payment
//! (an answer, not retried); bad input is refused with a typed error, an unknown
//! order is a 404, and the bus subscriber's counts add up.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::client::{Client, Reply};
use super::json::{field, str_field, u64_field};

/// How long an order may take to finish (the payment retries take tens of
/// milliseconds; an actor that never answers fails the check).
const FINISH_WITHIN: Duration = Duration::from_secs(5);

pub(crate) fn check(client: &Client) -> Result<(), String> {
    let before = summary_events(client)?;

    let paid = place(client, r#"{"item":"conformance","quantity":1}"#)?;
    let order = finished(client, paid)?;
    for (key, expected) in [
        ("id", Value::from(paid)),
        ("item", Value::from("conformance")),
        ("quantity", Value::from(1)),
        ("state", Value::from("completed")),
        ("payment_attempts", Value::from(1)),
        ("error", Value::Null),
    ] {
        if field(&order, key)? != &expected {
            return Err(format!("order {paid}: {key} should be {expected}: {order}"));
        }
    }

    let declined = place(client, r#"{"item":"declined","fail_payment":true}"#)?;
    let order = finished(client, declined)?;
    if str_field(&order, "state")? != "failed"
        || u64_field(&order, "payment_attempts")? != 1
        || !str_field(&order, "error")?.contains("payment declined")
    {
        return Err(format!(
            "order {declined}: expected failed after 1 payment attempt (a decline is not retried): {order}"
        ));
    }

    expect_error(client.get("/api/orders/987654321")?, 404)?;
    client.get("/api/orders/not-a-number")?.expect_status(400)?;
    expect_error(client.post_json("/api/orders", r#"{"item":""}"#)?, 422)?;
    expect_error(
        client.post_json("/api/orders", r#"{"item":"x","quantity":0}"#)?,
        422,
    )?;
    client.post_json("/api/orders", "{")?.expect_status(400)?;

    // Two orders, each created and processed; one completed, one failed.
    let deadline = Instant::now() + FINISH_WITHIN;
    loop {
        let after = summary_events(client)?;
        let delta = |event: &str| {
            let count = |events: &Value| events.get(event).and_then(Value::as_u64).unwrap_or(0);
            count(&after).saturating_sub(count(&before))
        };
        let deltas = [
            delta("created"),
            delta("processing"),
            delta("completed"),
            delta("failed"),
        ];
        if deltas == [2, 2, 1, 1] {
            break;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "GET /api/orders: order.* events created/processing/completed/failed grew by {deltas:?}, expected [2, 2, 1, 1]: {after}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "orders: one order actor completed, one declined after 1 payment attempt; bad input 422/400, unknown order 404; events counted"
    );
    Ok(())
}

/// `POST /api/orders`: 202 with the new order's id, `pending`, and its
/// location.
pub(super) fn place(client: &Client, body: &str) -> Result<u64, String> {
    let reply = client.post_json("/api/orders", body)?;
    reply.expect_status(202)?;
    let created = reply.json()?;
    let id = u64_field(&created, "id")?;
    if str_field(&created, "state")? != "pending"
        || str_field(&created, "location")? != format!("/api/orders/{id}")
    {
        return Err(format!("POST /api/orders {body}: {created}"));
    }
    Ok(id)
}

/// Polls order `id` until it is completed or failed. A 404 counts as not
/// readable yet, so this check does not race the Hub; whether a placed
/// order is readable the moment `POST` answers is
/// [`showcase`](super::showcase)'s to check.
pub(super) fn finished(client: &Client, id: u64) -> Result<Value, String> {
    let deadline = Instant::now() + FINISH_WITHIN;
    loop {
        let reply = client.get(&format!("/api/orders/{id}"))?;
        if reply.status == 404 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        reply.expect_status(200)?;
        let order = reply.json()?;
        let state = str_field(&order, "state")?;
        if matches!(state, "completed" | "failed") {
            return Ok(order);
        }
        if !matches!(state, "pending" | "processing") {
            return Err(format!("order {id} is in an unknown state: {order}"));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "order {id} did not finish within {FINISH_WITHIN:?}: {order}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A refusal: `status` with a JSON `{"error": "..."}` that says why.
fn expect_error(reply: Reply, status: u16) -> Result<(), String> {
    reply.expect_status(status)?;
    super::hostile::expect_problem(&reply)?;
    if str_field(&reply.json()?, "detail")?.trim().is_empty() {
        return Err(format!("a refusal without a reason: {reply}"));
    }
    Ok(())
}

/// `GET /api/orders`: its `events` counts.
fn summary_events(client: &Client) -> Result<Value, String> {
    let reply = client.get("/api/orders")?;
    reply.expect_status(200)?;
    Ok(field(&reply.json()?, "events")?.clone())
}
