//! The Hub's index and demo routes: `GET /api` lists every route as
//! `{"service","version","routes":[{"path","about"}]}`, and so does `GET /`
//! for a client that asks for `application/json` (a browser gets the
//! status page there: HTML); the echo and work handlers answer their JSON;
//! an unknown path is a 404 and a non-standard method a 405. This traffic
//! is what the metrics check later finds in `/metrics`.
//!
//! Only the index is read here, never every route it lists: two of them
//! (`/api/status/stream`, `/api/notifications/sse`) are endless streams.

use super::client::Client;
use super::json::{array_field, str_field};

/// Routes the index must list: one of each kind the Hub serves.
const EXPECTED_ROUTES: &[&str] = &[
    "/",
    "/api",
    "/status.js",
    "/status.css",
    "/api/status",
    "/api/status/stream",
    "/api/echo/{id}",
    "/api/work",
    "/api/flaky",
    "/api/orders",
    "/api/orders/{id}",
    "/api/orders/{id}/events",
    "/api/analytics",
    "/api/notifications/ws",
    "/api/notifications/sse",
    "/api/big.json",
    "/api/compute/hash",
    "/api/compute/blur",
    "/api/compute/stats",
    "/api/compute/image",
    "/api/compute/hostile",
    "/api/compute/wasm/stats",
    "/demo",
    "/metrics",
    "/health",
    "/readyz",
    "/livez",
    "/resilience",
];

/// Checks the index and the demo routes; returns the index's paths.
pub(crate) fn check(client: &Client) -> Result<Vec<String>, String> {
    let routes = check_index(client)?;

    let echo = |path: &str, id: &str| -> Result<(), String> {
        let reply = client.get(path)?;
        reply.expect_status(200)?;
        let json = reply.json()?;
        if json != serde_json::json!({ "id": id }) {
            return Err(format!(
                "GET {path}: expected {{\"id\": {id:?}}}, got {json}"
            ));
        }
        Ok(())
    };
    echo("/api/echo/42", "42")?;
    echo("/api/echo/hello%20world", "hello world")?;

    let work = client.get("/api/work?ms=5")?;
    work.expect_status(200)?;
    let slept = work.json()?;
    if slept != serde_json::json!({ "slept_ms": 5 }) {
        return Err(format!("GET /api/work?ms=5: {slept}"));
    }

    client.get("/does/not/exist")?.expect_status(404)?;
    let purge = client.send("PURGE", "/api/echo/1", &[], None)?;
    purge.expect_status(405)?;
    let allow = purge.header("allow").unwrap_or_default();
    if !allow.split(',').any(|method| method.trim() == "GET") {
        return Err(format!("405 without `Allow: GET`:\n{purge}"));
    }
    eprintln!(
        "routes: the index lists {} routes; echo, work, 404 and 405 answer as documented",
        routes.len()
    );
    Ok(routes)
}

/// `GET /api`: the service, its version, and a documented entry per
/// route; `GET /` the same for a client asking for JSON, the status page
/// otherwise.
fn check_index(client: &Client) -> Result<Vec<String>, String> {
    let reply = client.get("/api")?;
    reply.expect_status(200)?;
    if reply.header("content-type") != Some("application/json") {
        return Err(format!("GET /api is not JSON:\n{reply}"));
    }
    let index = reply.json()?;
    if str_field(&index, "service")? != "cortex-hub" {
        return Err(format!("GET /api: not the Hub's index: {index}"));
    }
    if str_field(&index, "version")?.is_empty() {
        return Err(format!("GET /api: an empty version: {index}"));
    }
    let mut paths = Vec::new();
    for route in array_field(&index, "routes")? {
        let path = str_field(route, "path")?;
        let about = str_field(route, "about")?;
        if !path.starts_with('/') || about.trim().is_empty() {
            return Err(format!("GET /api: a malformed route entry {route}"));
        }
        if paths.iter().any(|p| p == path) {
            return Err(format!("GET /api: {path} is listed twice"));
        }
        paths.push(path.to_owned());
    }
    for expected in EXPECTED_ROUTES {
        if !paths.iter().any(|p| p == expected) {
            return Err(format!(
                "GET /api: {expected} is not in the index {paths:?}"
            ));
        }
    }

    let json = client.get_with("/", &[("accept", "application/json")])?;
    json.expect_status(200)?;
    if json.header("content-type") != Some("application/json") || json.json()? != index {
        return Err(format!(
            "GET / with `Accept: application/json` is not the index of GET /api:\n{json}"
        ));
    }
    let page = client.get_with("/", &[("accept", "text/html,*/*;q=0.8")])?;
    page.expect_status(200)?;
    let plain = client.get("/")?;
    plain.expect_status(200)?;
    for reply in [&page, &plain] {
        let html = reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/html"));
        let vary = reply
            .headers
            .get_all("vary")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|v| v.trim().eq_ignore_ascii_case("accept"));
        if !html || !vary || !String::from_utf8_lossy(&reply.body).contains("/status.js") {
            return Err(format!(
                "GET / for a browser: expected the status page (text/html, `Vary: Accept`, loading /status.js):\n{reply}"
            ));
        }
    }
    Ok(paths)
}
