//! Response compression, judged by real clients and decoders.
//!
//! - For br, gzip and zstd: the response is encoded as asked, says
//!   `Vary: Accept-Encoding`, and its raw bytes (read undecoded through the
//!   [`Client`]) decode with the `brotli`, `gzip` and `zstd` command-line
//!   tools to the uncompressed body; `curl --compressed` decodes it too.
//! - HEAD, 204, 304, 206, pre-encoded and tiny responses go out as they
//!   are, even to a client that accepts every coding.
//! - Server-sent events arrive through `curl --compressed`.
//! - Headless Chromium loads `/demo`, which fetches the compressed JSON and
//!   the event stream, and reports PASS in the DOM.

use std::path::Path;
use std::process::Command;

use super::client::{Client, Reply};
use super::json::array_field;
use super::tools::ensure_packages;

const BIG_JSON: &str = "/api/big.json";
/// The Hub compresses bodies from 1 KiB up.
const MIN_COMPRESSED_SIZE: usize = 1024;
const ACCEPT_ALL: (&str, &str) = ("accept-encoding", "br, gzip, zstd");

pub(crate) fn check(client: &Client, out_dir: &Path) -> Result<(), String> {
    ensure_packages(&[
        ("curl", "curl"),
        ("gzip", "gzip"),
        ("brotli", "brotli"),
        ("zstd", "zstd"),
        ("chromium", "chromium"),
    ])?;
    let plain = client.get(BIG_JSON)?;
    plain.expect_status(200)?;
    expect_encoding(&plain, None)?;
    let reference = &plain.body;
    if reference.len() < 500_000 || array_field(&plain.json()?, "items")?.is_empty() {
        return Err(format!(
            "{BIG_JSON} is not about 1 MiB of items ({} bytes)",
            reference.len()
        ));
    }
    let url = client.url(BIG_JSON);
    for (coding, tool) in [("br", "brotli"), ("gzip", "gzip"), ("zstd", "zstd")] {
        let reply = client.get_with(BIG_JSON, &[("accept-encoding", coding)])?;
        reply.expect_status(200)?;
        expect_encoding(&reply, Some(coding))?;
        let varies = reply
            .header("vary")
            .unwrap_or_default()
            .split(',')
            .any(|v| v.trim().eq_ignore_ascii_case("accept-encoding"));
        if !varies {
            return Err(format!("{coding}: no `Vary: Accept-Encoding`:\n{reply}"));
        }
        if let Some(length) = reply.header("content-length")
            && length != reply.body.len().to_string()
        {
            return Err(format!(
                "{coding}: Content-Length {length} but {} bytes on the wire",
                reply.body.len()
            ));
        }
        if reply.body.len() >= reference.len() {
            return Err(format!(
                "{coding}: {} bytes encoded from {}",
                reply.body.len(),
                reference.len()
            ));
        }
        let raw_path = out_dir.join(format!("big.json.{coding}"));
        std::fs::write(&raw_path, &reply.body).map_err(|e| e.to_string())?;
        if decode_with(tool, &raw_path)? != *reference {
            return Err(format!("{coding}: `{tool} -dc` did not reproduce the body"));
        }
        let accept = format!("Accept-Encoding: {coding}");
        if curl(&["--compressed", "-H", &accept, &url])? != *reference {
            return Err(format!(
                "{coding}: curl --compressed body differs from the original"
            ));
        }
        eprintln!(
            "compression {coding}: {} -> {} bytes, decoded by `{tool} -dc` and curl",
            reference.len(),
            reply.body.len()
        );
    }
    check_uncompressed(client, out_dir)?;
    let events = curl(&[
        "-N",
        "--compressed",
        "--max-time",
        "10",
        "-H",
        "Accept-Encoding: gzip",
        &client.url("/api/events"),
    ])?;
    let events = String::from_utf8_lossy(&events);
    if !(events.contains("tick 0") && events.contains("tick 2")) {
        return Err(format!("server-sent events through gzip: {events:?}"));
    }
    eprintln!("compression: server-sent events arrive through gzip");
    check_browser(&client.url("/demo"), out_dir)
}

/// Responses that must go out as they are, even to a client accepting
/// every coding.
fn check_uncompressed(client: &Client, out_dir: &Path) -> Result<(), String> {
    let head = client.send("HEAD", BIG_JSON, &[ACCEPT_ALL], None)?;
    head.expect_status(200)?;
    expect_encoding(&head, None)?;
    if !head.body.is_empty() {
        return Err(format!("HEAD answered with a body:\n{head}"));
    }
    for (path, status) in [("/api/empty", 204), ("/api/not-modified", 304)] {
        let reply = client.get_with(path, &[ACCEPT_ALL])?;
        reply.expect_status(status)?;
        expect_encoding(&reply, None)?;
    }
    let partial = client.get_with("/api/partial", &[ACCEPT_ALL])?;
    partial.expect_status(206)?;
    expect_encoding(&partial, None)?;
    if partial.header("content-range") != Some("bytes 0-2047/4096") || partial.body.len() != 2048 {
        return Err(format!("206: the range was altered:\n{partial}"));
    }
    let tiny = client.get_with("/api/work?ms=0", &[ACCEPT_ALL])?;
    tiny.expect_status(200)?;
    expect_encoding(&tiny, None)?;
    if tiny.body.len() >= MIN_COMPRESSED_SIZE {
        return Err(format!(
            "the tiny response is {} bytes: pick a smaller one",
            tiny.body.len()
        ));
    }
    // Encoded by the handler: passed on byte for byte, one encoding only.
    let pre = client.get_with("/api/precompressed", &[ACCEPT_ALL])?;
    pre.expect_status(200)?;
    expect_encoding(&pre, Some("gzip"))?;
    let pre_path = out_dir.join("precompressed.gz");
    std::fs::write(&pre_path, &pre.body).map_err(|e| e.to_string())?;
    if decode_with("gzip", &pre_path)? != "hello\n".repeat(100).as_bytes() {
        return Err(format!(
            "the pre-encoded body was altered: `gzip -dc` does not give the handler's text:\n{pre}"
        ));
    }
    eprintln!("compression: HEAD, 204, 304, 206, tiny and pre-encoded responses pass untouched");
    Ok(())
}

/// `Content-Encoding` is exactly `expected` (one header, or none).
fn expect_encoding(reply: &Reply, expected: Option<&str>) -> Result<(), String> {
    let encodings: Vec<&str> = reply
        .headers
        .get_all("content-encoding")
        .iter()
        .map(|v| v.to_str().unwrap_or("<not text>"))
        .collect();
    if encodings != expected.into_iter().collect::<Vec<_>>() {
        return Err(format!(
            "expected Content-Encoding {expected:?}, got {encodings:?}:\n{reply}"
        ));
    }
    Ok(())
}

/// `tool -d -c path`: the decoded bytes.
fn decode_with(tool: &str, path: &Path) -> Result<Vec<u8>, String> {
    let output = Command::new(tool)
        .args(["-d", "-c"])
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run {tool}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`{tool} -dc {}` failed ({}): {}",
            path.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(output.stdout)
}

fn check_browser(demo_url: &str, out_dir: &Path) -> Result<(), String> {
    let profile = out_dir.join("chromium-profile");
    let _ = std::fs::remove_dir_all(&profile);
    let output = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=20000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--dump-dom", demo_url])
        .output()
        .map_err(|e| format!("cannot run chromium: {e}"))?;
    let dom = String::from_utf8_lossy(&output.stdout);
    if !dom.contains(r#"<p id="status">PASS</p>"#) {
        return Err(format!(
            "headless Chromium did not report PASS ({}):\n{dom}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    eprintln!("compression: headless Chromium loaded the compressed JSON and event stream (PASS)");
    Ok(())
}

/// `curl -s --fail-with-body --max-time 30 args`: its stdout.
fn curl(args: &[&str]) -> Result<Vec<u8>, String> {
    let output = Command::new("curl")
        .args(["-s", "--fail-with-body", "--max-time", "30"])
        .args(args)
        .output()
        .map_err(|e| format!("cannot run curl: {e}"))?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(format!(
            "curl {} failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
