//! The checks' HTTP client: `ureq` (blocking, HTTP/1.1), configured so a
//! [`Reply`] is the exchange as it was on the wire.
//!
//! - No automatic decompression: ureq is built without its `gzip` and
//!   `brotli` features, so it sends no `Accept-Encoding` of its own, keeps
//!   `Content-Encoding` and `Content-Length`, and hands over the raw body.
//!   The compression checks depend on this.
//! - 4xx and 5xx are replies, not errors; redirects are not followed; no
//!   proxy is taken from the environment (the Hub is on loopback).

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use ureq::Agent;
use ureq::http::{HeaderMap, Method, Request, Response, StatusCode};

/// The largest body a check reads (the Hub's biggest is about 1 MiB).
const BODY_LIMIT: u64 = 64 * 1024 * 1024;

/// A client bound to one server's address.
#[derive(Debug)]
pub(crate) struct Client {
    agent: Agent,
    base: String,
}

impl Client {
    /// A client for `http://{addr}`.
    pub(crate) fn new(addr: SocketAddr) -> Self {
        let agent = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            // Only what a check sets: no `Accept` or `Accept-Encoding`
            // unless asked (a scrape without `Accept` must get 0.0.4).
            .accept("")
            .accept_encoding("")
            .allow_non_standard_methods(true)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .new_agent();
        Self {
            agent,
            base: format!("http://{addr}"),
        }
    }

    /// The absolute URL of `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET path`.
    pub(crate) fn get(&self, path: &str) -> Result<Reply, String> {
        self.send("GET", path, &[], None)
    }

    /// `GET path` with extra request headers.
    pub(crate) fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Result<Reply, String> {
        self.send("GET", path, headers, None)
    }

    /// `POST path` with a JSON body.
    pub(crate) fn post_json(&self, path: &str, body: &str) -> Result<Reply, String> {
        self.send(
            "POST",
            path,
            &[("content-type", "application/json")],
            Some(body.as_bytes()),
        )
    }

    /// One exchange: `method path`, `headers`, and `body` if any.
    pub(crate) fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Reply, String> {
        let request = format!("{method} {path}");
        let method =
            Method::from_bytes(method.as_bytes()).map_err(|e| format!("{request}: {e}"))?;
        let mut builder = Request::builder().method(method).uri(self.url(path));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let response = match body {
            Some(body) => builder.body(body).map(|r| self.agent.run(r)),
            None => builder.body(()).map(|r| self.agent.run(r)),
        }
        .map_err(|e| format!("{request}: {e}"))?
        .map_err(|e| format!("{request}: {e}"))?;
        Reply::read(request, response)
    }
}

/// A whole response: status, headers and the body exactly as sent.
#[derive(Debug)]
pub(crate) struct Reply {
    /// `METHOD path`, for messages.
    request: String,
    /// The status code.
    pub(crate) status: StatusCode,
    /// Every response header, as received.
    pub(crate) headers: HeaderMap,
    /// The body as received (still encoded if `Content-Encoding` says so).
    pub(crate) body: Vec<u8>,
}

impl Reply {
    fn read(request: String, response: Response<ureq::Body>) -> Result<Self, String> {
        let (parts, mut body) = response.into_parts();
        let body = body
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_vec()
            .map_err(|e| format!("{request}: reading the body: {e}"))?;
        Ok(Self {
            request,
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// The value of header `name` (first of several), if present and text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `Ok(self)` if the status is `expected`, else an error naming the
    /// request and showing the reply.
    pub(crate) fn expect_status(&self, expected: u16) -> Result<&Self, String> {
        if self.status.as_u16() == expected {
            Ok(self)
        } else {
            Err(format!("expected {expected}, got {self}"))
        }
    }

    /// The body parsed as JSON.
    pub(crate) fn json(&self) -> Result<Value, String> {
        serde_json::from_slice(&self.body)
            .map_err(|e| format!("{}: invalid JSON ({e}): {}", self.request, self.preview()))
    }

    /// The start of the body, for messages.
    fn preview(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        match text.char_indices().nth(500) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text.into_owned(),
        }
    }
}

/// `GET /x -> 503 Service Unavailable`, then the headers and the start of
/// the body.
impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} -> {}", self.request, self.status)?;
        for (name, value) in &self.headers {
            writeln!(f, "  {name}: {}", String::from_utf8_lossy(value.as_bytes()))?;
        }
        write!(f, "  body: {}", self.preview())
    }
}
