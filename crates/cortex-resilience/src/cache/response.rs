//! What the response cache stores, under which key, and whether a
//! response may be stored at all (http-cache-semantics' RFC 9111 rules,
//! plus RFC 5861's stale directives, which it does not read).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_cache_semantics::{CacheOptions, CachePolicy};

use super::body::CacheBody;
use super::config::ResponseCacheConfig;

/// The response header that tells how a response was answered.
pub(crate) const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// Headers that describe one connection, never stored (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// What a stored entry costs beyond its bytes: the entry, the policy and
/// the maps' own overhead, roughly.
const ENTRY_OVERHEAD: u64 = 256;

/// A cache key: the request's host and target, and for a response that
/// varies, the request's values of the headers it varies on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct HttpKey {
    target: Arc<str>,
    variant: Option<Arc<[Option<HeaderValue>]>>,
}

impl HttpKey {
    /// The key of a request, before any `Vary`: `Host` plus the URI as
    /// received (origin form on a server, absolute form through a proxy).
    pub(crate) fn primary<B>(request: &Request<B>) -> Self {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .unwrap_or_default();
        Self {
            target: format!("{host} {}", request.uri()).into(),
            variant: None,
        }
    }

    /// The same target, for the variant that `headers` select among
    /// `names`.
    pub(crate) fn variant(&self, names: &[HeaderName], headers: &HeaderMap) -> Self {
        Self {
            target: Arc::clone(&self.target),
            variant: Some(
                names
                    .iter()
                    .map(|name| headers.get(name).cloned())
                    .collect(),
            ),
        }
    }

    /// The key without its variant.
    pub(crate) fn primary_of(&self) -> Self {
        Self {
            target: Arc::clone(&self.target),
            variant: None,
        }
    }

    fn bytes(&self) -> u64 {
        let variant: usize = self
            .variant
            .iter()
            .flat_map(|values| values.iter())
            .map(|value| value.as_ref().map_or(0, HeaderValue::len))
            .sum();
        (self.target.len() + variant) as u64
    }
}

/// One stored value of the response cache.
#[derive(Debug)]
pub(crate) enum Stored {
    /// A response (boxed: markers are far smaller).
    Response(Box<CachedResponse>),
    /// The target's responses vary on these headers: its entries are
    /// under variant keys.
    Vary(Arc<[HeaderName]>),
    /// The target's last response could not be stored: skip coalescing.
    Pass,
}

/// A stored response: its head, its body, and its policy for reuse.
#[derive(Debug)]
pub(crate) struct CachedResponse {
    pub(crate) policy: CachePolicy,
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
}

impl CachedResponse {
    /// The response to send, with `Age` as of `now` and `X-Cache`.
    pub(crate) fn respond<B>(
        &self,
        now: SystemTime,
        x_cache: &'static str,
    ) -> Response<CacheBody<B>>
    where
        B: http_body::Body,
    {
        let mut response = Response::new(CacheBody::full(self.body.clone()));
        *response.status_mut() = self.status;
        *response.version_mut() = self.version;
        let headers = response.headers_mut();
        headers.clone_from(&self.headers);
        headers.insert(
            header::AGE,
            HeaderValue::from(self.policy.age(now).as_secs()),
        );
        headers.insert(X_CACHE, HeaderValue::from_static(x_cache));
        response
    }

    /// Whether the response may answer `request` at `now` without going
    /// upstream (same target, matching `Vary`, fresh enough for the
    /// request's own directives).
    pub(crate) fn satisfies<B>(&self, request: &Request<B>, now: SystemTime) -> bool {
        self.policy
            .before_request(request, now)
            .satisfies_without_revalidation()
    }

    /// Whether it is the same resource for `request` (target, `Host` and
    /// `Vary` match), fresh or not.
    pub(crate) fn matches<B>(&self, request: &Request<B>, now: SystemTime) -> bool {
        match self.policy.before_request(request, now) {
            http_cache_semantics::BeforeRequest::Fresh(_) => true,
            http_cache_semantics::BeforeRequest::Stale { matches, .. } => matches,
        }
    }
}

/// Whether a request is one the cache stays out of: any method but GET
/// (HEAD, POST... are not served from nor stored in the cache), a range
/// request, a protocol upgrade (WebSocket), or `Cache-Control: no-store`.
pub(crate) fn bypasses<B>(request: &Request<B>) -> bool {
    let headers = request.headers();
    request.method() != Method::GET
        || headers.contains_key(header::RANGE)
        || headers.contains_key(header::UPGRADE)
        || directives(headers).any(|(name, _)| name.eq_ignore_ascii_case("no-store"))
}

/// Whether a request sets its own freshness terms (`no-cache`,
/// `max-age`, `min-fresh`, `Pragma: no-cache`): such a request is not
/// answered stale-while-revalidate.
pub(crate) fn is_picky<B>(request: &Request<B>) -> bool {
    let headers = request.headers();
    directives(headers).any(|(name, _)| {
        ["no-cache", "max-age", "min-fresh"]
            .iter()
            .any(|picky| name.eq_ignore_ascii_case(picky))
    }) || headers
        .get_all(header::PRAGMA)
        .iter()
        .any(|value| value.to_str().is_ok_and(|value| value.contains("no-cache")))
}

/// The `Cache-Control` directives of `headers`, as (name, value).
fn directives(headers: &HeaderMap) -> impl Iterator<Item = (&str, Option<&str>)> {
    headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|directive| {
            let mut parts = directive.splitn(2, '=');
            let name = parts.next()?.trim();
            let value = parts.next().map(|value| value.trim().trim_matches('"'));
            (!name.is_empty()).then_some((name, value))
        })
}

/// A directive's delta-seconds value, if present and valid.
fn seconds(headers: &HeaderMap, wanted: &str) -> Option<Duration> {
    directives(headers)
        .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
        .and_then(|(_, value)| value?.parse().ok())
        .map(Duration::from_secs)
}

fn has(headers: &HeaderMap, wanted: &str) -> bool {
    directives(headers).any(|(name, _)| name.eq_ignore_ascii_case(wanted))
}

/// The `Vary` header names, lower-case, sorted and deduplicated; `None`
/// for `Vary: *` (a response that matches no later request).
fn vary(headers: &HeaderMap) -> Option<Vec<HeaderName>> {
    let mut names = Vec::new();
    for value in headers.get_all(header::VARY) {
        for name in value.to_str().ok()?.split(',') {
            let name = name.trim();
            if name == "*" {
                return None;
            }
            if !name.is_empty() {
                names.push(HeaderName::from_bytes(name.as_bytes()).ok()?);
            }
        }
    }
    names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    names.dedup();
    Some(names)
}

/// A response that may be stored, and how long.
#[derive(Debug)]
pub(crate) struct Admission {
    pub(crate) policy: CachePolicy,
    /// Freshness left, `Age` and `Date` accounted for.
    pub(crate) ttl: Duration,
    pub(crate) stale_while_revalidate: Duration,
    pub(crate) stale_if_error: Duration,
    /// The request headers it varies on.
    pub(crate) vary: Vec<HeaderName>,
}

/// Whether the response `head` to `request` may be stored at `now`, by
/// RFC 9111 as http-cache-semantics reads it: a storable method, status
/// and directives (`no-store`; `private` and `Authorization` for a shared
/// cache), and some freshness (`s-maxage`, `max-age`, `Expires`, the
/// `Last-Modified` heuristic, or else `default_ttl`). The stale windows
/// come from the response's RFC 5861 directives, else the configured
/// defaults; `must-revalidate`, `proxy-revalidate` (shared) and
/// `no-cache` forbid serving it stale.
pub(crate) fn admit(
    request: &Request<()>,
    head: &http::response::Parts,
    now: SystemTime,
    config: &ResponseCacheConfig,
) -> Option<Admission> {
    let options = CacheOptions {
        shared: config.shared,
        ..CacheOptions::default()
    };
    let headers = &head.headers;
    let mut policy = CachePolicy::new_options(request, head, now, options);
    if !policy.is_storable() {
        return None;
    }
    let vary = vary(headers)?;
    let mut ttl = policy.time_to_live(now);
    let explicit = has(headers, "max-age")
        || (config.shared && has(headers, "s-maxage"))
        || headers.contains_key(header::EXPIRES);
    let no_cache = has(headers, "no-cache");
    if ttl.is_zero() && !explicit && !no_cache && !config.default_ttl.is_zero() {
        // RFC 9111 §4.2.2 heuristic freshness as a fixed lifetime: the
        // policy judges the response as if it said `max-age`, so `Age`,
        // `Set-Cookie` in a shared cache and the rest still apply. Only
        // the policy sees it; clients get the headers as sent.
        let mut heuristic = head.clone();
        heuristic.headers.append(
            header::CACHE_CONTROL,
            HeaderValue::from_str(&format!("max-age={}", config.default_ttl.as_secs().max(1)))
                .ok()?,
        );
        policy = CachePolicy::new_options(request, &heuristic, now, options);
        ttl = policy.time_to_live(now);
    }
    if ttl.is_zero() {
        return None;
    }
    let forbids_stale = no_cache
        || has(headers, "must-revalidate")
        || (config.shared && has(headers, "proxy-revalidate"));
    let window = |directive, default| {
        if forbids_stale {
            Duration::ZERO
        } else {
            seconds(headers, directive).unwrap_or(default)
        }
    };
    Some(Admission {
        policy,
        ttl,
        stale_while_revalidate: window("stale-while-revalidate", config.stale_while_revalidate),
        stale_if_error: window("stale-if-error", config.stale_if_error),
        vary,
    })
}

/// The request head a policy keeps (no body, no extensions).
pub(crate) fn request_head<B>(request: &Request<B>) -> Request<()> {
    let mut head = Request::new(());
    *head.method_mut() = request.method().clone();
    *head.uri_mut() = request.uri().clone();
    *head.version_mut() = request.version();
    head.headers_mut().clone_from(request.headers());
    head
}

impl CachedResponse {
    /// A response to store, its hop-by-hop headers removed, with what it
    /// costs in bytes under `key`.
    pub(crate) fn new(
        policy: CachePolicy,
        request: &Request<()>,
        head: http::response::Parts,
        body: Bytes,
        key: &HttpKey,
    ) -> (Self, u64) {
        let mut headers = head.headers;
        let listed: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .collect();
        for name in HOP_BY_HOP.iter().chain(&listed) {
            headers.remove(name);
        }
        let header_bytes = |headers: &HeaderMap| -> u64 {
            headers
                .iter()
                .map(|(name, value)| (name.as_str().len() + value.len()) as u64)
                .sum()
        };
        // The policy keeps copies of the request's and the response's
        // headers too.
        let bytes = body.len() as u64
            + 2 * header_bytes(&headers)
            + header_bytes(request.headers())
            + 2 * key.bytes()
            + ENTRY_OVERHEAD;
        let response = Self {
            policy,
            status: head.status,
            version: head.version,
            headers,
            body,
        };
        (response, bytes)
    }
}

/// What a marker entry (`Vary`, pass) costs.
pub(crate) fn marker_bytes(key: &HttpKey, names: &[HeaderName]) -> u64 {
    let names: usize = names.iter().map(|name| name.as_str().len()).sum();
    key.bytes() + names as u64 + ENTRY_OVERHEAD
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(cache_control: &str) -> http::response::Parts {
        let mut response = Response::new(());
        if !cache_control.is_empty() {
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_str(cache_control).unwrap(),
            );
        }
        response.into_parts().0
    }

    fn admit_with(cache_control: &str, config: &ResponseCacheConfig) -> Option<Admission> {
        let request = request_head(&Request::get("/x").body(()).unwrap());
        admit(&request, &head(cache_control), SystemTime::now(), config)
    }

    #[test]
    fn freshness_and_stale_windows_come_from_the_response_first() {
        let config = ResponseCacheConfig {
            stale_if_error: Duration::from_secs(7),
            ..ResponseCacheConfig::default()
        };
        let admission = admit_with("max-age=60, stale-while-revalidate=30", &config).unwrap();
        assert_eq!(admission.ttl, Duration::from_secs(60));
        assert_eq!(admission.stale_while_revalidate, Duration::from_secs(30));
        assert_eq!(admission.stale_if_error, Duration::from_secs(7));
        let strict = admit_with("max-age=60, must-revalidate, stale-if-error=99", &config).unwrap();
        assert_eq!(strict.stale_if_error, Duration::ZERO);
        // A shared cache prefers s-maxage.
        let shared = admit_with("max-age=60, s-maxage=5", &config).unwrap();
        assert_eq!(shared.ttl, Duration::from_secs(5));
    }

    #[test]
    fn no_store_private_and_unstated_freshness_are_not_admitted() {
        let config = ResponseCacheConfig::default();
        assert!(admit_with("no-store, max-age=60", &config).is_none());
        assert!(admit_with("private, max-age=60", &config).is_none());
        assert!(admit_with("no-cache", &config).is_none());
        assert!(admit_with("", &config).is_none());
        let private_cache = ResponseCacheConfig {
            shared: false,
            ..ResponseCacheConfig::default()
        };
        assert!(admit_with("private, max-age=60", &private_cache).is_some());
        let heuristic = ResponseCacheConfig {
            default_ttl: Duration::from_secs(3),
            ..ResponseCacheConfig::default()
        };
        assert_eq!(
            admit_with("", &heuristic).unwrap().ttl,
            Duration::from_secs(3)
        );
        assert!(admit_with("no-cache", &heuristic).is_none());
        assert!(admit_with("max-age=0", &heuristic).is_none());
    }

    #[test]
    fn vary_names_are_normalised_and_star_is_refused() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::VARY,
            HeaderValue::from_static("Accept-Language, accept"),
        );
        headers.append(header::VARY, HeaderValue::from_static("accept"));
        assert_eq!(
            vary(&headers).unwrap(),
            vec![header::ACCEPT, header::ACCEPT_LANGUAGE]
        );
        headers.insert(header::VARY, HeaderValue::from_static("*"));
        assert_eq!(vary(&headers), None);
    }
}
