//! The compression part of `cargo xtask conformance`: real clients against
//! the running Hub.
//!
//! - `curl --compressed` for br, gzip and zstd: the decoded body equals the
//!   uncompressed one, and the raw bytes decode with the `brotli`, `gzip`
//!   and `zstd` command-line tools.
//! - HEAD, 204, 304, 206, pre-encoded and tiny responses stay uncompressed.
//! - Server-sent events arrive through `curl --compressed`.
//! - Headless Chromium loads `/demo`, which fetches the compressed JSON and
//!   the event stream, and reports PASS in the DOM.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use crate::conformance::ensure_packages;

pub(crate) fn check(addr: SocketAddr, out_dir: &Path) -> Result<(), String> {
    ensure_packages(&[
        ("curl", "curl"),
        ("gzip", "gzip"),
        ("brotli", "brotli"),
        ("zstd", "zstd"),
        ("chromium", "chromium"),
    ])?;
    let base = format!("http://{addr}");
    let reference = curl(&[&format!("{base}/api/big.json")])?;
    if reference.len() < 500_000 {
        return Err(format!("/api/big.json is only {} bytes", reference.len()));
    }
    for (coding, tool) in [("br", "brotli"), ("gzip", "gzip"), ("zstd", "zstd")] {
        let url = format!("{base}/api/big.json");
        let accept = format!("Accept-Encoding: {coding}");
        let headers = curl(&["-s", "-D", "-", "-o", "/dev/null", "-H", &accept, &url])?;
        let headers = String::from_utf8_lossy(&headers).to_ascii_lowercase();
        if !headers.contains(&format!("content-encoding: {coding}")) {
            return Err(format!("{coding}: not compressed:\n{headers}"));
        }
        let decoded = curl(&["--compressed", "-H", &accept, &url])?;
        if decoded != reference {
            return Err(format!(
                "{coding}: curl --compressed body differs from the original"
            ));
        }
        let raw_path = out_dir.join(format!("big.json.{coding}"));
        let raw_path = raw_path.to_string_lossy().into_owned();
        curl(&["-H", &accept, "-o", &raw_path, &url])?;
        let cli = Command::new(tool)
            .args(["-d", "-c", &raw_path])
            .output()
            .map_err(|e| format!("cannot run {tool}: {e}"))?;
        if !cli.status.success() || cli.stdout != reference {
            return Err(format!(
                "{coding}: `{tool} -dc` did not reproduce the body ({}): {}",
                cli.status,
                String::from_utf8_lossy(&cli.stderr)
            ));
        }
        let compressed = std::fs::metadata(&raw_path)
            .map_err(|e| e.to_string())?
            .len();
        eprintln!(
            "compression {coding}: {} -> {compressed} bytes, decoded by curl and `{tool} -dc`",
            reference.len()
        );
    }
    check_uncompressed(&base)?;
    let events = curl(&[
        "-N",
        "--compressed",
        "--max-time",
        "10",
        "-H",
        "Accept-Encoding: gzip",
        &format!("{base}/api/events"),
    ])?;
    let events = String::from_utf8_lossy(&events);
    if !(events.contains("tick 0") && events.contains("tick 2")) {
        return Err(format!("server-sent events through gzip: {events:?}"));
    }
    eprintln!("compression: server-sent events arrive through gzip");
    check_browser(&base, out_dir)
}

/// Responses that must go out as they are, even to a client accepting gzip.
fn check_uncompressed(base: &str) -> Result<(), String> {
    let cases: [(&[&str], &str, &str); 6] = [
        (&["-I"], "/api/big.json", "HEAD"),
        (&[], "/api/empty", "204"),
        (&[], "/api/not-modified", "304"),
        (&[], "/api/partial", "206 with Content-Range"),
        (&[], "/", "a tiny body"),
        (&[], "/api/precompressed", "an already gzip-encoded body"),
    ];
    for (extra, path, what) in cases {
        let url = format!("{base}{path}");
        let mut args: Vec<&str> = vec![
            "-s",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-H",
            "Accept-Encoding: br, gzip, zstd",
        ];
        args.extend_from_slice(extra);
        args.push(&url);
        let headers = String::from_utf8_lossy(&curl(&args)?).to_ascii_lowercase();
        let encoding = headers
            .lines()
            .find_map(|line| line.strip_prefix("content-encoding:"))
            .map(str::trim);
        let expected = if path == "/api/precompressed" {
            Some("gzip")
        } else {
            None
        };
        if encoding != expected {
            return Err(format!(
                "{what}: expected Content-Encoding {expected:?}, got {encoding:?}"
            ));
        }
    }
    eprintln!("compression: HEAD, 204, 304, 206, tiny and pre-encoded responses pass untouched");
    Ok(())
}

fn check_browser(base: &str, out_dir: &Path) -> Result<(), String> {
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
        .args(["--dump-dom", &format!("{base}/demo")])
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

fn curl(args: &[&str]) -> Result<Vec<u8>, String> {
    let mut command = Command::new("curl");
    if !args.contains(&"-s") {
        command.arg("-s");
    }
    let output = command
        .args(["--fail-with-body", "--max-time", "30"])
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
