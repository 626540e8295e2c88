//! Headless Chromium driven over the Chrome DevTools Protocol, with the
//! blocking WebSocket client: enough to load a page, read its live DOM in
//! real time, and take a screenshot, while keeping every console message,
//! exception and log entry the page produced.
//!
//! Why not `chromium --headless --virtual-time-budget=N --dump-dom` (what
//! the compression check uses for `/demo`): virtual time stands still while
//! a fetch is pending, and a page that keeps an endless event stream or a
//! WebSocket open (the status page keeps both) has one pending for ever, so
//! the budget never runs out and Chromium never dumps (tried by hand: it
//! hangs; without the budget it dumps at `load`, before any event came).
//!
//! Chromium runs with `--remote-debugging-port=0` and writes the port it
//! chose to `DevToolsActivePort` in its profile; `/json/list` names the
//! page's debugger socket. `--enable-logging=stderr --v=0` also copies
//! every console message (CSP violations included, as "… violates the
//! following Content Security Policy directive …") to stderr as
//! `:CONSOLE(` lines, a second witness kept in a file.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

use super::client::Client;
use super::json::str_field;

/// How long Chromium may take to start and open its debugging port.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one protocol command may take (a screenshot is the slowest).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// A headless Chromium with one page under remote control; killed on drop.
#[derive(Debug)]
pub(crate) struct Browser {
    child: Child,
    page: WebSocket<TcpStream>,
    next_id: u64,
    /// Every protocol event received so far (`{"method", "params"}`).
    events: Vec<Value>,
    stderr: PathBuf,
}

impl Browser {
    /// Starts Chromium on `about:blank` with a fresh profile in `profile`,
    /// a viewport of `width`×`height` (the screenshot's size) and its stderr
    /// in the file `stderr`, and connects to the page.
    pub(crate) fn launch(
        profile: &Path,
        stderr: &Path,
        (width, height): (u32, u32),
    ) -> Result<Self, String> {
        let _ = std::fs::remove_dir_all(profile);
        let log = File::create(stderr).map_err(|e| format!("{}: {e}", stderr.display()))?;
        let child = Command::new("chromium")
            .args([
                "--headless",
                // Root in a container: no user namespaces for the sandbox.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--enable-logging=stderr",
                "--v=0",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--window-size={width},{height}"))
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run chromium: {e}"))?;
        let mut browser = Self {
            child,
            page: connect_page(profile)?,
            next_id: 0,
            events: Vec::new(),
            stderr: stderr.to_owned(),
        };
        // `--window-size` includes the (invisible) browser frame: the
        // viewport, what a screenshot shows, is set exactly here.
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false }),
        )?;
        browser.call("Page.enable", json!({}))?;
        browser.call("Runtime.enable", json!({}))?;
        browser.call("Log.enable", json!({}))?;
        Ok(browser)
    }

    /// Sends `method` with `params` and waits for its result, keeping the
    /// events that arrive meanwhile.
    pub(crate) fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let command = json!({ "id": id, "method": method, "params": params });
        self.page
            .send(Message::text(command.to_string()))
            .map_err(|e| format!("DevTools {method}: {e}"))?;
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            if Instant::now() >= deadline {
                return Err(format!(
                    "DevTools {method}: no answer within {COMMAND_TIMEOUT:?}"
                ));
            }
            let text = match self.page.read() {
                Ok(Message::Text(text)) => text,
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(format!("DevTools {method}: {e}")),
            };
            let message: Value = serde_json::from_str(text.as_str())
                .map_err(|e| format!("DevTools {method}: not JSON ({e}): {text}"))?;
            if message.get("id").and_then(Value::as_u64) != Some(id) {
                if message.get("method").is_some() {
                    self.events.push(message);
                }
                continue;
            }
            if let Some(error) = message.get("error") {
                return Err(format!("DevTools {method} failed: {error}"));
            }
            return Ok(message.get("result").cloned().unwrap_or(Value::Null));
        }
    }

    /// Navigates to `url` (the load goes on in the background).
    pub(crate) fn navigate(&mut self, url: &str) -> Result<(), String> {
        let result = self.call("Page.navigate", json!({ "url": url }))?;
        if let Some(error) = result.get("errorText") {
            return Err(format!("Chromium could not load {url}: {error}"));
        }
        Ok(())
    }

    /// The value of the JavaScript `expression` in the page (JSON-able).
    pub(crate) fn evaluate(&mut self, expression: &str) -> Result<Value, String> {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true }),
        )?;
        if let Some(exception) = result.get("exceptionDetails") {
            return Err(format!("evaluating {expression:?} threw: {exception}"));
        }
        Ok(result
            .get("result")
            .and_then(|r| r.get("value"))
            .cloned()
            .unwrap_or(Value::Null))
    }

    /// A PNG of the viewport.
    pub(crate) fn screenshot(&mut self) -> Result<Vec<u8>, String> {
        let result = self.call("Page.captureScreenshot", json!({ "format": "png" }))?;
        base64_decode(str_field(&result, "data")?)
    }

    /// What the page wrote to the console, threw, or had logged against it
    /// (a CSP violation, a failed load), as lines; empty if nothing.
    /// `console.log`/`info`/`debug` count too: the page has no business
    /// writing to the console at all.
    pub(crate) fn complaints(&mut self) -> Result<Vec<String>, String> {
        // A round trip, so every event sent before it has been read.
        self.call("Runtime.evaluate", json!({ "expression": "0" }))?;
        let mut complaints = Vec::new();
        for event in &self.events {
            let params = &event["params"];
            match event["method"].as_str() {
                Some("Runtime.consoleAPICalled") => {
                    let args: Vec<String> = params["args"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|arg| {
                            arg.get("value")
                                .map_or_else(|| arg["description"].to_string(), Value::to_string)
                        })
                        .collect();
                    complaints.push(format!("console.{}: {}", params["type"], args.join(" ")));
                }
                Some("Runtime.exceptionThrown") => {
                    let details = &params["exceptionDetails"];
                    complaints.push(format!(
                        "uncaught: {} {}",
                        details["text"], details["exception"]["description"]
                    ));
                }
                Some("Log.entryAdded") => {
                    let entry = &params["entry"];
                    complaints.push(format!(
                        "log {} ({}): {} {}",
                        entry["level"], entry["source"], entry["text"], entry["url"]
                    ));
                }
                _ => {}
            }
        }
        let stderr = std::fs::read_to_string(&self.stderr)
            .map_err(|e| format!("{}: {e}", self.stderr.display()))?;
        complaints.extend(
            stderr
                .lines()
                .filter(|line| line.contains(":CONSOLE"))
                .map(|line| format!("stderr: {line}")),
        );
        Ok(complaints)
    }
}

impl Drop for Browser {
    /// Asks Chromium to close (its helper processes exit with it), then
    /// kills it if it has not within a few seconds.
    fn drop(&mut self) {
        let close = json!({ "id": 0, "method": "Browser.close", "params": {} });
        let _ = self.page.send(Message::text(close.to_string()));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for Chromium's `DevToolsActivePort`, finds the page in
/// `/json/list`, and opens its debugger socket.
fn connect_page(profile: &Path) -> Result<WebSocket<TcpStream>, String> {
    let port_file = profile.join("DevToolsActivePort");
    let deadline = Instant::now() + START_TIMEOUT;
    let port: u16 = loop {
        let port = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|text| text.lines().next()?.trim().parse().ok());
        if let Some(port) = port {
            break port;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "Chromium wrote no {} within {START_TIMEOUT:?}",
                port_file.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let devtools = SocketAddr::from(([127, 0, 0, 1], port));
    let list = Client::new(devtools).get("/json/list")?;
    list.expect_status(200)?;
    let targets = list.json()?;
    let page = targets
        .as_array()
        .into_iter()
        .flatten()
        .find(|target| target["type"] == "page" && target["url"] == "about:blank")
        .ok_or_else(|| format!("no about:blank page in Chromium's /json/list: {targets}"))?;
    let url = str_field(page, "webSocketDebuggerUrl")?;
    let stream = TcpStream::connect(devtools).map_err(|e| format!("{devtools}: {e}"))?;
    // Reads wake up now and then, so a command's deadline is noticed.
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .map_err(|e| e.to_string())?;
    let (socket, _) =
        tungstenite::client(url, stream).map_err(|e| format!("DevTools socket {url}: {e}"))?;
    Ok(socket)
}

/// Standard base64 (with padding), as DevTools sends binary data.
fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::with_capacity(text.len() / 4 * 3);
    let mut buffer = 0_u32;
    let mut bits = 0;
    for c in text.bytes().filter(|c| *c != b'=') {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("not base64: byte {c:#x}")),
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Ok(bytes)
}

/// `(width, height)` of a PNG, from its `IHDR` chunk.
pub(crate) fn png_size(png: &[u8]) -> Result<(u32, u32), String> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if png.len() < 24 || !png.starts_with(SIGNATURE) || &png[12..16] != b"IHDR" {
        return Err(format!("not a PNG ({} bytes)", png.len()));
    }
    let be = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    Ok((be(16), be(20)))
}
