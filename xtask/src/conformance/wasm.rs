//! The Hub's WebAssembly routes from the outside, against the running Hub
//! (its default limits):
//!
//! - `POST /api/compute/image` answers, for small RGBA images, exactly
//!   the bytes computed here (grayscale `(77 r + 150 g + 29 b) >> 8` with
//!   alpha kept, invert, one box-blur pass), as
//!   `application/octet-stream`; a bad query is 422 or 400 problem+json;
//! - `POST /api/compute/hostile`: the endless loop answers 504
//!   problem+json (`reason: timed_out`) within a small multiple of its
//!   100 ms deadline, the memory hog and the trap 422 (`memory_limit`,
//!   `trap`); afterwards `/health/live` is 200, the `wasm:*` checks pass
//!   and an image call still works;
//! - 100 blurs from 8 threads at once: each the right bytes (200) or 429
//!   problem+json with `Retry-After`;
//! - `/metrics` counts exactly the guest calls the clients saw.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::client::{Client, Reply};
use super::compute::sample;
use super::hostile::expect_problem;
use super::json::{field, str_field};

/// The flood: requests in all, and the threads sending them.
const REQUESTS: usize = 100;
const THREADS: usize = 8;
/// The flood's image: 64 × 64 RGBA (16 KiB), blurred with radius 3.
const FLOOD_WIDTH: usize = 64;
const FLOOD_RADIUS: usize = 3;
/// The hostile loop's deadline is 100 ms; the answer may take this long
/// (a debug build on a busy machine), not seconds more.
const LOOP_ANSWER_WITHIN: Duration = Duration::from_secs(2);

pub(crate) fn check(client: &Client, addr: SocketAddr) -> Result<(), String> {
    let mut image_calls = known_images(client)?;
    hostile_guests(client)?;
    image_calls += 1;
    let (completed, refused) = flood(addr)?;
    image_calls += completed;
    series(client, image_calls)?;
    eprintln!(
        "wasm: {REQUESTS} blurs from {THREADS} threads: {completed} answered the right bytes, {refused} refused with 429 problem+json; /metrics counts {image_calls} image calls and the 3 hostile ones"
    );
    Ok(())
}

/// A deterministic RGBA image, `width × height` pixels.
fn image(width: usize, height: usize, seed: usize) -> Vec<u8> {
    (0..width * height * 4)
        .map(|i| ((i + seed).wrapping_mul(2_654_435_761) >> 9) as u8)
        .collect()
}

/// r, g, b ← (77 r + 150 g + 29 b) >> 8, alpha kept.
fn grayscale(rgba: &[u8]) -> Vec<u8> {
    rgba.chunks(4)
        .flat_map(|p| {
            let luma =
                ((77 * u32::from(p[0]) + 150 * u32::from(p[1]) + 29 * u32::from(p[2])) >> 8) as u8;
            [luma, luma, luma, p[3]]
        })
        .collect()
}

/// r, g, b ← 255 - c, alpha kept.
fn invert(rgba: &[u8]) -> Vec<u8> {
    rgba.chunks(4)
        .flat_map(|p| [255 - p[0], 255 - p[1], 255 - p[2], p[3]])
        .collect()
}

/// One box-blur pass per channel (alpha too): rows, then columns, a
/// window of `2 × radius + 1` with the edge pixel repeated, each mean
/// rounded half up. Naive on purpose.
fn blur(rgba: &[u8], width: usize, radius: usize) -> Vec<u8> {
    let height = rgba.len() / 4 / width;
    let window = 2 * radius as u32 + 1;
    let mean = |values: &mut dyn Iterator<Item = u8>| {
        let sum: u32 = values.map(u32::from).sum();
        ((sum + window / 2) / window) as u8
    };
    let clamp = |i: isize, len: usize| i.clamp(0, len as isize - 1) as usize;
    let r = radius as isize;
    let mut rows = vec![0_u8; rgba.len()];
    for y in 0..height {
        for x in 0..width {
            for c in 0..4 {
                rows[(y * width + x) * 4 + c] = mean(
                    &mut (-r..=r).map(|d| rgba[(y * width + clamp(x as isize + d, width)) * 4 + c]),
                );
            }
        }
    }
    let mut out = vec![0_u8; rgba.len()];
    for y in 0..height {
        for x in 0..width {
            for c in 0..4 {
                out[(y * width + x) * 4 + c] = mean(
                    &mut (-r..=r)
                        .map(|d| rows[(clamp(y as isize + d, height) * width + x) * 4 + c]),
                );
            }
        }
    }
    out
}

/// `POST /api/compute/image{query}` with `body`.
fn post_image(client: &Client, query: &str, body: &[u8]) -> Result<Reply, String> {
    client.send(
        "POST",
        &format!("/api/compute/image{query}"),
        &[("content-type", "application/octet-stream")],
        Some(body),
    )
}

/// A 200 `application/octet-stream` answer whose bytes are `expected`.
fn expect_bytes(reply: &Reply, expected: &[u8]) -> Result<(), String> {
    reply.expect_status(200)?;
    let content_type = reply.header("content-type").unwrap_or_default();
    if content_type != "application/octet-stream" {
        return Err(format!(
            "an image answer that is not octet-stream:\n{reply}"
        ));
    }
    if reply.body != expected {
        return Err(format!(
            "wrong image bytes: expected {:?}…, got {:?}…\n{reply}",
            &expected[..expected.len().min(16)],
            &reply.body[..reply.body.len().min(16)]
        ));
    }
    Ok(())
}

/// The filters against references computed here, and refused queries.
/// Returns how many guest calls it made.
fn known_images(client: &Client) -> Result<u64, String> {
    // Pure red with alpha 7, and (10, 20, 30, 255), by hand.
    let reply = post_image(
        client,
        "?filter=grayscale",
        &[255, 0, 0, 7, 10, 20, 30, 255],
    )?;
    expect_bytes(&reply, &[76, 76, 76, 7, 18, 18, 18, 255])?;
    let (width, height) = (7, 5);
    let rgba = image(width, height, 1);
    expect_bytes(
        &post_image(client, "?filter=grayscale", &rgba)?,
        &grayscale(&rgba),
    )?;
    expect_bytes(
        &post_image(client, "?filter=invert", &rgba)?,
        &invert(&rgba),
    )?;
    for radius in [1, 4] {
        let reply = post_image(
            client,
            &format!("?filter=blur&width={width}&radius={radius}"),
            &rgba,
        )?;
        expect_bytes(&reply, &blur(&rgba, width, radius))?;
    }

    let unknown = post_image(client, "?filter=sepia", &rgba)?;
    unknown.expect_status(422)?;
    expect_problem(&unknown)?;
    let errors = field(&unknown.json()?, "errors")?.clone();
    if errors.get(0).and_then(|e| e.get("field")) != Some(&serde_json::Value::from("filter")) {
        return Err(format!("a 422 that does not name `filter`:\n{unknown}"));
    }
    let ragged = post_image(client, "?filter=blur&width=3", &rgba)?;
    ragged.expect_status(422)?;
    expect_problem(&ragged)?;
    let unreadable = post_image(client, "?filter=blur&width=wide", &rgba)?;
    unreadable.expect_status(400)?;
    expect_problem(&unreadable)?;
    Ok(5)
}

/// Each hostile guest answers its problem; the Hub stays healthy.
fn hostile_guests(client: &Client) -> Result<(), String> {
    for (kind, status, reason) in [
        ("loop", 504, "timed_out"),
        ("hog", 422, "memory_limit"),
        ("trap", 422, "trap"),
    ] {
        let started = Instant::now();
        let reply = client.send(
            "POST",
            &format!("/api/compute/hostile?kind={kind}"),
            &[],
            None,
        )?;
        let took = started.elapsed();
        reply.expect_status(status)?;
        expect_problem(&reply)?;
        if str_field(&reply.json()?, "reason")? != reason {
            return Err(format!(
                "the hostile {kind} should answer reason {reason:?}:\n{reply}"
            ));
        }
        if took > LOOP_ANSWER_WITHIN {
            return Err(format!(
                "the hostile {kind} took {took:?} to answer (deadline 100 ms, allowed {LOOP_ANSWER_WITHIN:?})"
            ));
        }
        client.get("/health/live")?.expect_status(200)?;
        if kind == "loop" {
            eprintln!(
                "wasm: an endless loop in a guest answered 504 problem+json after {took:.1?} (deadline 100 ms); /health/live 200"
            );
        }
    }
    let health = client.get("/health?verbose")?;
    let report = health.json()?;
    for check in ["wasm:image", "wasm:hostile"] {
        let status = field(field(&report, "checks")?, check)?
            .get(0)
            .and_then(|entry| entry.get("status"))
            .and_then(serde_json::Value::as_str);
        if status != Some("pass") {
            return Err(format!(
                "after the hostile guests, {check} should pass:\n{health}"
            ));
        }
    }
    // A normal call still works.
    expect_bytes(
        &post_image(client, "?filter=invert", &[1, 2, 3, 4])?,
        &[254, 253, 252, 4],
    )
}

/// [`REQUESTS`] blurs from [`THREADS`] threads at once; returns how many
/// were answered 200 and how many 429.
fn flood(addr: SocketAddr) -> Result<(u64, u64), String> {
    let rgba = image(FLOOD_WIDTH, FLOOD_WIDTH, 2);
    let expected = blur(&rgba, FLOOD_WIDTH, FLOOD_RADIUS);
    let query = format!("?filter=blur&width={FLOOD_WIDTH}&radius={FLOOD_RADIUS}");
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let (rgba, expected, query) = (rgba.clone(), expected.clone(), query.clone());
            std::thread::spawn(move || -> Result<(u64, u64), String> {
                let client = Client::new(addr);
                let (mut completed, mut refused) = (0, 0);
                for _ in (thread..REQUESTS).step_by(THREADS) {
                    let reply = post_image(&client, &query, &rgba)?;
                    match reply.status.as_u16() {
                        200 => {
                            expect_bytes(&reply, &expected)?;
                            completed += 1;
                        }
                        429 => {
                            expect_problem(&reply)?;
                            let retry_after = reply.header("retry-after").unwrap_or_default();
                            if !retry_after.parse::<u64>().is_ok_and(|s| s >= 1) {
                                return Err(format!(
                                    "a 429 without a Retry-After of whole seconds:\n{reply}"
                                ));
                            }
                            refused += 1;
                        }
                        _ => {
                            return Err(format!(
                                "a concurrent image request got neither 200 nor 429:\n{reply}"
                            ));
                        }
                    }
                }
                Ok((completed, refused))
            })
        })
        .collect();
    let (mut completed, mut refused) = (0, 0);
    for thread in threads {
        let (ok, no) = thread
            .join()
            .map_err(|_| "an image flood thread panicked".to_owned())??;
        completed += ok;
        refused += no;
    }
    if completed + refused != REQUESTS as u64 || completed == 0 {
        return Err(format!(
            "{REQUESTS} image requests sent: {completed} answered 200, {refused} 429"
        ));
    }
    Ok((completed, refused))
}

/// `/metrics` counts every guest call the clients saw, and the hostile
/// failures by kind.
fn series(client: &Client, image_calls: u64) -> Result<(), String> {
    let metrics = client.get("/metrics")?;
    metrics.expect_status(200)?;
    let text = String::from_utf8_lossy(&metrics.body);
    let expected = [
        (
            r#"cortex_wasm_calls_total{pool="image"}"#.to_owned(),
            image_calls,
        ),
        (r#"cortex_wasm_calls_total{pool="hostile"}"#.to_owned(), 3),
        (
            r#"cortex_wasm_instances_replaced_total{pool="hostile"}"#.to_owned(),
            3,
        ),
        (
            r#"cortex_wasm_instances_replaced_total{pool="image"}"#.to_owned(),
            0,
        ),
    ]
    .into_iter()
    .chain(["timed_out", "memory_limit", "trap"].map(|kind| {
        (
            format!(r#"cortex_wasm_failures_total{{pool="hostile",kind="{kind}"}}"#),
            1,
        )
    }));
    for (series, value) in expected {
        let found = sample(&text, &series).ok_or_else(|| format!("/metrics has no {series}"))?;
        if found != value as f64 {
            return Err(format!(
                "/metrics: {series} is {found}, the clients saw {value}"
            ));
        }
    }
    Ok(())
}
