//! `cargo xtask conformance`: the Hub checked from the outside, by real
//! tools and a real HTTP client instead of our own parsers.
//!
//! 1. Installs what is missing ([`tools`]): promtool, Python's
//!    `prometheus_client`, curl, the gzip/brotli/zstd CLIs, Chromium.
//! 2. Checks `cortex-metrics`' `exposition` example with promtool and both
//!    Python parsers ([`metrics`]), and the operations kit in
//!    `docs/deploy/` with promtool, the Kubernetes schemas and the
//!    Dockerfile's rules ([`deploy`]'s static half).
//! 3. Builds and starts the Hub on a free loopback port
//!    ([`HubProcess`]), then, in this order, since later checks read what
//!    earlier traffic left:
//!    - [`routes`]: the JSON index at `GET /api` (and at `GET /` for a
//!      client asking for JSON; the status page, HTML, for a browser), the
//!      echo and work handlers, a 404 and a non-standard method;
//!    - [`openapi`]: `GET /openapi.json` valid OpenAPI 3.1 for Python's
//!      `openapi-spec-validator` (0 errors), its paths exactly the index's;
//!    - [`resilience`]: `/api/flaky` until its breaker opens, `/resilience`;
//!    - [`orders`]: order actors that complete and fail;
//!    - [`showcase`]: an order's event log and its fold, `/api/analytics`
//!      and `/api/status`; a real WebSocket client getting its orders'
//!      events in order; 20 slow consumers flooded until each is dropped
//!      (close 1008, counted, RSS bounded); headless Chromium on the live
//!      status page (values filled in, orders shown, nothing on the
//!      console, no CSP violation), whose screenshot becomes
//!      `docs/status-page.png`. After [`resilience`], so the page shows
//!      the breaker it left open; before [`hostile`], whose order floods
//!      would bury these orders' events and blur the RSS figure; and
//!      before [`metrics`], which finds this traffic among the index's
//!      route templates;
//!    - [`health`]: every probe as `application/health+json`;
//!    - [`metrics`]: `/metrics` in both formats, through promtool and
//!      Python, with the values the traffic above must have left;
//!    - [`compression`]: curl, the compression CLIs and headless Chromium;
//!    - [`hostile`]: 200 orders of 2 MB (413, RSS bounded), a burst of
//!      orders (every accepted one final, accepting again after), and every
//!      kind of error as `application/problem+json`;
//!    - [`wasm`]: the image guest's bytes for small RGBA images, the
//!      hostile guests (an endless loop answered 504 problem+json near its
//!      deadline, a memory hog and a trap 422) with `/health/live` 200
//!      after, 100 concurrent blurs each the right bytes or 429
//!      problem+json, and `/metrics` counting every guest call;
//!    - [`deploy`]'s live half, last, so every series the rules and the
//!      dashboard query has been made by then: every probe path 200, every
//!      queried metric in `/metrics`, a real Prometheus scraping the Hub
//!      and evaluating every alert rule and dashboard query.
//! 4. Stops the Hub with SIGTERM and expects a clean exit.
//! 5. [`compute`]: a Hub with a compute pool of 1 worker and 2 queue
//!    places flooded with 200 hash jobs from 16 clients: every answer the
//!    right digest or 429 problem+json with `Retry-After`, and the pool's
//!    stats (and `/metrics`) account for every job exactly once.
//! 6. [`serving`]: another Hub with short timeouts and `ulimit -n 1024`
//!    under slowloris, silent and idle sockets, 1100 idle connections, and
//!    a SIGTERM with half-sent requests held open.
//! 7. [`otlp`]: a Hub exporting its spans over OTLP/HTTP (configured by
//!    the `OTEL_*` variables) to a real receiver built on the official
//!    `opentelemetry-proto` bindings: a traced `POST /api/orders` yields
//!    its server span, `order.process`, `payments.charge` and
//!    `payments.attempt`, parent to child under the `traceparent`, with
//!    the incoming trace id and the configured `service.name`.
//! 8. [`showcase`]'s own Hub, logging JSON at `info` to a file: log lines
//!    join traces (an order's access-log line, its events and its actor's
//!    log lines carry the `traceparent`'s trace id), and an order is found
//!    at its `location` the moment `POST` answered. Last, and both run
//!    whatever the other finds, so a defect here leaves every other
//!    verdict in the log.
//!
//! Every exchange goes through [`client::Client`] (ureq), which shows
//! status, headers and bodies exactly as sent; JSON answers are checked
//! field by field; the WebSocket and DevTools ones through tungstenite
//! ([`cdp`] drives Chromium). Files the tools read are kept in
//! `target/conformance/`.

mod cdp;
pub(crate) mod client;
mod compression;
mod compute;
mod deploy;
mod exposition;
mod health;
mod hostile;
mod json;
mod metrics;
mod openapi;
mod orders;
mod otlp;
mod resilience;
mod routes;
mod serving;
pub(crate) mod showcase;
pub(crate) mod tools;
mod wasm;

use std::path::PathBuf;

use crate::hub::HubProcess;
use crate::root;
use client::Client;

pub(crate) fn run() -> Result<(), String> {
    let out_dir = out_dir()?;
    tools::ensure_promtool()?;
    tools::ensure_python_client()?;
    metrics::check_example(&out_dir)?;
    deploy::check_static(&out_dir)?;

    HubProcess::build()?;
    let hub = HubProcess::start()?;
    let client = Client::new(hub.addr());
    let routes = routes::check(&client)?;
    openapi::check(&client, &routes, &out_dir)?;
    resilience::check(&client)?;
    orders::check(&client)?;
    showcase::check(&client, hub.addr(), hub.pid(), &out_dir)?;
    health::check(&client)?;
    metrics::check_hub(&client, &routes, &out_dir)?;
    compression::check(&client, &out_dir)?;
    hostile::check(&client, hub.addr(), hub.pid())?;
    wasm::check(&client, hub.addr())?;
    deploy::check_live(&client, hub.addr(), &out_dir)?;
    // Close the client's pooled connections before asking the Hub to
    // drain, so the clean exit is not a race with them.
    drop(client);
    hub.stop()?;
    compute::check()?;
    serving::check()?;
    otlp::check(&out_dir)?;
    showcase::check_own_hub(&out_dir)?;
    eprintln!("conformance: all checks passed");
    Ok(())
}

/// `target/conformance/`, created if needed.
fn out_dir() -> Result<PathBuf, String> {
    let dir = root().join("target").join("conformance");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}
