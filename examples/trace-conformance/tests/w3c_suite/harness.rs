//! The harness side of w3c/trace-context `test/test.py`, in Rust: it POSTs
//! `/test` to the conformance service with the case's headers exactly as
//! written (raw socket: names keep their case, repeated headers stay
//! repeated), asks for `count` callbacks to a local callback server, and
//! reads back the headers the service sent with each callback.
//!
//! The reading side mirrors the suite's own `tracecontext` package
//! (`Traceparent.from_string`, `Tracestate.from_string`), written here
//! independently of cortex-trace: what the service emits is judged by the
//! suite's rules, not by the parser under test.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::post;
use http::HeaderMap;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The headers of one callback, in arrival order, names lowercased.
pub(crate) type Headers = Vec<(String, String)>;

type Callbacks = Arc<Mutex<HashMap<String, Headers>>>;

/// A conformance service and a callback server, both on loopback.
pub(crate) struct Harness {
    service: SocketAddr,
    callback: SocketAddr,
    callbacks: Callbacks,
    _provider: SdkTracerProvider,
}

async fn spawn(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

impl Harness {
    /// Starts `trace_conformance::app` the way `main` does (the SDK's
    /// default provider: parent-based always-on sampling, random ids).
    pub(crate) async fn start() -> Self {
        let provider = SdkTracerProvider::builder().build();
        let service = spawn(trace_conformance::app(&provider)).await;
        let callbacks: Callbacks = Arc::default();
        let app =
            Router::new()
                .route(
                    "/callback/{id}",
                    post(
                        |State(seen): State<Callbacks>,
                         Path(id): Path<String>,
                         headers: HeaderMap| async move {
                            let headers = headers
                                .iter()
                                .map(|(name, value)| {
                                    (
                                        name.as_str().to_owned(),
                                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                                    )
                                })
                                .collect();
                            seen.lock().unwrap().insert(id, headers);
                            "ok"
                        },
                    ),
                )
                .with_state(Arc::clone(&callbacks));
        let callback = spawn(app).await;
        Self {
            service,
            callback,
            callbacks,
            _provider: provider,
        }
    }

    /// test.py `make_request(headers, count)`: the headers of each of the
    /// `count` callbacks, failing if one is missing.
    pub(crate) async fn make_request(
        &self,
        headers: &[(&str, &str)],
        count: usize,
    ) -> Vec<Headers> {
        static SCOPE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let scope = SCOPE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let steps: Vec<String> = (0..count)
            .map(|idx| {
                format!(
                    r#"{{"url": "http://{}/callback/{scope}.{idx}", "arguments": []}}"#,
                    self.callback
                )
            })
            .collect();
        let body = format!("[{}]", steps.join(", "));
        let mut request = format!(
            "POST /test HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\n",
            self.service
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        let mut stream = tokio::net::TcpStream::connect(self.service).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(
            response.starts_with("HTTP/1.1 200"),
            "the service answered {response:?} to {headers:?}"
        );
        let mut seen = self.callbacks.lock().unwrap();
        (0..count)
            .map(|idx| {
                seen.remove(&format!("{scope}.{idx}")).unwrap_or_else(|| {
                    panic!("your test service failed to make a callback to the test harness ({headers:?})")
                })
            })
            .collect()
    }

    /// test.py `make_single_request_and_get_tracecontext(headers)`.
    pub(crate) async fn make_single_request_and_get_tracecontext(
        &self,
        headers: &[(&str, &str)],
    ) -> (Traceparent, Tracestate) {
        let callback = self.make_request(headers, 1).await.remove(0);
        (get_traceparent(&callback), get_tracestate(&callback))
    }
}

/// A `traceparent` as the suite's `Traceparent.from_string` accepts it:
/// version 00, four fields, lowercase hex, no all-zero id.
#[derive(Debug)]
pub(crate) struct Traceparent {
    pub(crate) trace_id: String,
    pub(crate) parent_id: String,
    pub(crate) trace_flags: u8,
}

fn lower_hex(field: &str, len: usize) -> bool {
    field.len() == len
        && field
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// test.py `get_traceparent`: exactly one `traceparent`, valid.
pub(crate) fn get_traceparent(headers: &Headers) -> Traceparent {
    let values: Vec<&str> = headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("traceparent"))
        .map(|(_, value)| value.as_str())
        .collect();
    assert_eq!(
        values.len(),
        1,
        "expect one traceparent header, got {values:?}"
    );
    let fields: Vec<&str> = values[0].split('-').collect();
    assert_eq!(fields.len(), 4, "{values:?}");
    assert_eq!(fields[0], "00", "unsupported version in {values:?}");
    assert!(lower_hex(fields[1], 32) && lower_hex(fields[2], 16) && lower_hex(fields[3], 2));
    assert_ne!(
        fields[1],
        "0".repeat(32),
        "all zero trace_id is not allowed"
    );
    assert_ne!(
        fields[2],
        "0".repeat(16),
        "all zero parent_id is not allowed"
    );
    Traceparent {
        trace_id: fields[1].to_owned(),
        parent_id: fields[2].to_owned(),
        trace_flags: u8::from_str_radix(fields[3], 16).unwrap(),
    }
}

/// A `tracestate` as the suite's `Tracestate` reads it: an ordered map,
/// the first of duplicated keys kept, a malformed member an error.
#[derive(Debug, Default)]
pub(crate) struct Tracestate(Vec<(String, String)>);

impl Tracestate {
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Tracestate.from_string(value)`: adds one header value's members.
    fn extend_from_header(&mut self, value: &str) {
        for member in split_members(value) {
            if member.is_empty() {
                continue;
            }
            let (key, value) = member
                .split_once('=')
                .filter(|(k, v)| valid_key(k) && valid_value(v))
                .unwrap_or_else(|| panic!("illegal key-value format {member:?}"));
            if !self.contains(key) {
                self.0.push((key.to_owned(), value.to_owned()));
            }
        }
    }
}

/// `str(tracestate)`.
impl fmt::Display for Tracestate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (key, value)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{key}={value}")?;
        }
        Ok(())
    }
}

/// `re.split('[ \t]*,[ \t]*', value)`: the blanks around each comma go
/// with it; those at the two ends of the value stay.
fn split_members(value: &str) -> Vec<&str> {
    let parts: Vec<&str> = value.split(',').collect();
    let last = parts.len() - 1;
    parts
        .into_iter()
        .enumerate()
        .map(|(i, mut part)| {
            if i > 0 {
                part = part.trim_start_matches([' ', '\t']);
            }
            if i < last {
                part = part.trim_end_matches([' ', '\t']);
            }
            part
        })
        .collect()
}

/// The Level 2 key: `( lcalpha / DIGIT ) 0*255 ( keychar )`.
fn valid_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 256
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|&b| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || matches!(b, b'_' | b'-' | b'*' | b'/' | b'@')
        })
}

/// `[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]`.
fn valid_value(value: &str) -> bool {
    let chr = |b: u8| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=';
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 256
        && bytes.iter().all(|&b| chr(b))
        && bytes.last().is_some_and(|&b| b != b' ')
}

/// test.py `get_tracestate`: every `tracestate` header, in order, into one.
pub(crate) fn get_tracestate(headers: &Headers) -> Tracestate {
    let mut tracestate = Tracestate::default();
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("tracestate") {
            tracestate.extend_from_header(value);
        }
    }
    tracestate
}

/// The trace id every case sends.
pub(crate) const TRACE_ID: &str = "12345678901234567890123456789012";
