//! `cargo xtask conformance`: the Hub checked from the outside, by real
//! tools and a real HTTP client instead of our own parsers.
//!
//! 1. Installs what is missing ([`tools`]): promtool, Python's
//!    `prometheus_client`, curl, the gzip/brotli/zstd CLIs, Chromium.
//! 2. Checks `cortex-metrics`' `exposition` example with promtool and both
//!    Python parsers ([`metrics`]).
//! 3. Builds and starts the Hub on a free loopback port
//!    ([`HubProcess`]), then, in this order, since later checks read what
//!    earlier traffic left:
//!    - [`routes`]: the index at `GET /`, the echo and work handlers, a
//!      404 and a non-standard method;
//!    - [`resilience`]: `/api/flaky` until its breaker opens, `/resilience`;
//!    - [`orders`]: order actors that complete and fail;
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
//!      problem+json, and `/metrics` counting every guest call.
//! 4. Stops the Hub with SIGTERM and expects a clean exit.
//! 5. [`compute`]: a Hub with a compute pool of 1 worker and 2 queue
//!    places flooded with 200 hash jobs from 16 clients: every answer the
//!    right digest or 429 problem+json with `Retry-After`, and the pool's
//!    stats (and `/metrics`) account for every job exactly once.
//! 6. [`serving`]: another Hub with short timeouts and `ulimit -n 1024`
//!    under slowloris, silent and idle sockets, 1100 idle connections, and
//!    a SIGTERM with half-sent requests held open.
//!
//! Every exchange goes through [`client::Client`] (ureq), which shows
//! status, headers and bodies exactly as sent; JSON answers are checked
//! field by field. Files the tools read are kept in `target/conformance/`.

mod client;
mod compression;
mod compute;
mod deploy;
mod exposition;
mod health;
mod hostile;
mod json;
mod metrics;
mod orders;
mod resilience;
mod routes;
mod serving;
mod tools;
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
    resilience::check(&client)?;
    orders::check(&client)?;
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
    eprintln!("conformance: all checks passed");
    Ok(())
}

/// `target/conformance/`, created if needed.
fn out_dir() -> Result<PathBuf, String> {
    let dir = root().join("target").join("conformance");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}
