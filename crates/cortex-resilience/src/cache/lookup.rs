//! One request through the response cache: find, coalesce, fetch, store.

use std::future::poll_fn;
use std::sync::Arc;

use bytes::Bytes;
use http::header::HeaderName;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::Body;
use tokio::time::Instant;
use tower_service::Service;

use super::body::{Buffered, CacheBody, buffer};
use super::config::CacheEvent;
use super::flight::{self, Landing, Leader, Role};
use super::policy::ResponseCache;
use super::response::{
    Admission, CachedResponse, HttpKey, Stored, X_CACHE, admit, is_picky, marker_bytes,
    request_head,
};
use super::store::{Entry, State};

/// Rounds of find-and-join before a request gives up on coalescing (a
/// waiter whose leader's response was another `Vary` variant, or whose
/// leader was cancelled, starts over).
const MAX_ROUNDS: usize = 4;

/// How a found entry may answer a request.
enum Use {
    /// Fresh for this request.
    Hit,
    /// Stale, inside stale-while-revalidate: answer it, refresh behind.
    Revalidate,
    /// Not usable now, but may answer if the upstream fails.
    OnError,
    /// Not usable.
    Miss,
}

type Found = Option<Arc<Entry<Stored>>>;

/// Sets `X-Cache` on a response.
fn tag<B>(mut response: Response<B>, value: &'static str) -> Response<B> {
    response
        .headers_mut()
        .insert(X_CACHE, HeaderValue::from_static(value));
    response
}

fn land(leader: Option<Leader<HttpKey, Arc<Entry<Stored>>>>, landing: Landing<Arc<Entry<Stored>>>) {
    if let Some(leader) = leader {
        leader.land(landing);
    }
}

impl ResponseCache {
    /// Answers `request`, from the cache or through `service`.
    pub(super) async fn serve<S, B, RB>(
        self,
        service: S,
        request: Request<B>,
    ) -> Result<Response<CacheBody<RB>>, S::Error>
    where
        S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
        S::Future: Send,
        S::Error: Send + 'static,
        B: Send + 'static,
        RB: Body<Data = Bytes> + Send + 'static,
        RB::Error: Send + 'static,
    {
        let store = &self.shared.store;
        let primary = HttpKey::primary(&request);
        for _ in 0..MAX_ROUNDS {
            let now = store.now();
            let (key, found) = self.find(&primary, request.headers(), now).await;
            let mut stale = None;
            if let Some(entry) = found {
                match &entry.value {
                    Stored::Response(response) => {
                        match self.classify(&entry, response, &request, now) {
                            Use::Hit => {
                                store.count(CacheEvent::Hit);
                                return Ok(response.respond(store.system_time(now), "HIT"));
                            }
                            Use::Revalidate => {
                                store.count(CacheEvent::Stale);
                                let answer = response.respond(store.system_time(now), "STALE");
                                self.refresh(service, request, key, Arc::clone(&entry));
                                return Ok(answer);
                            }
                            Use::OnError => stale = Some(Arc::clone(&entry)),
                            Use::Miss => {}
                        }
                    }
                    // A URL known to be uncacheable: straight upstream.
                    Stored::Pass => {
                        return self.fetch(service, request, key, None, None, true).await;
                    }
                    Stored::Vary(_) => {}
                }
            }
            match store.flights.join(&key) {
                Role::Follower(receiver) => match flight::wait(receiver).await {
                    Landing::Value(entry) => {
                        let now = store.system_time(store.now());
                        if let Stored::Response(response) = &entry.value
                            && response.satisfies(&request, now)
                        {
                            store.count(CacheEvent::Coalesced);
                            return Ok(response.respond(now, "HIT"));
                        }
                        // Another variant, or stale already: start over.
                    }
                    Landing::Stale(entry) => {
                        let now = store.system_time(store.now());
                        if let Stored::Response(response) = &entry.value
                            && response.matches(&request, now)
                        {
                            store.count(CacheEvent::Stale);
                            return Ok(response.respond(now, "STALE"));
                        }
                    }
                    Landing::Pass => {
                        return self.fetch(service, request, key, None, stale, true).await;
                    }
                    Landing::Abandoned | Landing::Pending => {}
                },
                Role::Leader(leader) => {
                    // The previous leader may have stored its result between
                    // our look-up and our joining.
                    let now = store.now();
                    if let (_, Some(entry)) = self.find(&primary, request.headers(), now).await
                        && let Stored::Response(response) = &entry.value
                        && response.satisfies(&request, store.system_time(now))
                    {
                        store.count(CacheEvent::Hit);
                        let answer = response.respond(store.system_time(now), "HIT");
                        leader.land(Landing::Value(entry));
                        return Ok(answer);
                    }
                    return self
                        .fetch(service, request, key, Some(leader), stale, true)
                        .await;
                }
            }
        }
        self.fetch(service, request, primary, None, None, true)
            .await
    }

    /// The entry for a request: under its primary key, or, when the
    /// target's responses vary, under the variant its headers select.
    /// Markers past their time count as absent.
    async fn find(&self, primary: &HttpKey, headers: &HeaderMap, now: Instant) -> (HttpKey, Found) {
        let store = &self.shared.store;
        let mut key = primary.clone();
        let mut found = store.get(primary).await;
        if let Some(entry) = &found
            && let Stored::Vary(names) = &entry.value
        {
            if entry.state(now) != State::Fresh {
                return (key, None);
            }
            key = primary.variant(names, headers);
            found = store.get(&key).await;
        }
        let found = found.filter(|entry| match entry.value {
            Stored::Response(_) => true,
            Stored::Pass => entry.state(now) == State::Fresh,
            Stored::Vary(_) => false,
        });
        (key, found)
    }

    /// How `entry` may answer `request` at `now`.
    fn classify<B>(
        &self,
        entry: &Entry<Stored>,
        response: &CachedResponse,
        request: &Request<B>,
        now: Instant,
    ) -> Use {
        let system = self.shared.store.system_time(now);
        match response.policy.before_request(request, system) {
            http_cache_semantics::BeforeRequest::Fresh(_) => Use::Hit,
            http_cache_semantics::BeforeRequest::Stale { matches: false, .. } => Use::Miss,
            http_cache_semantics::BeforeRequest::Stale { matches: true, .. } => {
                let state = entry.state(now);
                // Fresh, yet refused by the request's own directives; or a
                // request that wants nothing stale: go upstream.
                if state == State::Fresh || is_picky(request) {
                    return if entry.usable_on_error(now) {
                        Use::OnError
                    } else {
                        Use::Miss
                    };
                }
                match state {
                    State::Stale {
                        revalidate: true, ..
                    } => Use::Revalidate,
                    State::Stale { on_error: true, .. } => Use::OnError,
                    _ => Use::Miss,
                }
            }
        }
    }

    /// Starts one background refresh of `key` with `request` (already
    /// answered stale), unless one is in flight or there is no runtime.
    fn refresh<S, B, RB>(
        &self,
        service: S,
        request: Request<B>,
        key: HttpKey,
        entry: Arc<Entry<Stored>>,
    ) where
        S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
        S::Future: Send,
        S::Error: Send + 'static,
        B: Send + 'static,
        RB: Body<Data = Bytes> + Send + 'static,
        RB::Error: Send + 'static,
    {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Role::Leader(leader) = self.shared.store.flights.join(&key) else {
            return;
        };
        self.shared.store.count(CacheEvent::Refresh);
        tracing::debug!(cache = %self.name(), uri = %request.uri(), "stale-while-revalidate refresh");
        let cache = self.clone();
        runtime.spawn(async move {
            let _ = cache
                .fetch(service, request, key, Some(leader), Some(entry), false)
                .await;
        });
    }

    /// Sends `request` upstream and stores what may be stored. `leader`,
    /// if any, lands after the store; `stale` answers an error or a 5xx
    /// inside its stale-if-error window; `counted` is false for background
    /// refreshes, which answer no client.
    async fn fetch<S, B, RB>(
        &self,
        mut service: S,
        request: Request<B>,
        key: HttpKey,
        leader: Option<Leader<HttpKey, Arc<Entry<Stored>>>>,
        stale: Found,
        counted: bool,
    ) -> Result<Response<CacheBody<RB>>, S::Error>
    where
        S: Service<Request<B>, Response = Response<RB>>,
        RB: Body<Data = Bytes>,
    {
        let store = &self.shared.store;
        let count = |event| {
            if counted {
                store.count(event);
            }
        };
        let head = request_head(&request);
        let result = match poll_fn(|cx| service.poll_ready(cx)).await {
            Ok(()) => service.call(request).await,
            Err(error) => Err(error),
        };
        let now = store.now();
        let system = store.system_time(now);
        let response = match result {
            Ok(response) if !response.status().is_server_error() => response,
            failed => {
                if let Some(entry) = stale.filter(|entry| entry.usable_on_error(now))
                    && let Stored::Response(response) = &entry.value
                {
                    tracing::debug!(
                        cache = %self.name(),
                        uri = %head.uri(),
                        status = failed.as_ref().ok().map(|r| r.status().as_u16()),
                        "upstream failed: serving stale (stale-if-error)"
                    );
                    count(CacheEvent::Stale);
                    let answer = response.respond(system, "STALE");
                    land(leader, Landing::Stale(Arc::clone(&entry)));
                    return Ok(answer);
                }
                land(leader, Landing::Pass);
                count(CacheEvent::Bypass);
                return failed.map(|response| tag(response.map(CacheBody::inner), "BYPASS"));
            }
        };
        let (parts, body) = response.into_parts();
        let Some(admission) = admit(&head, &parts, system, &self.shared.config) else {
            self.remember_pass(&key, now).await;
            land(leader, Landing::Pass);
            count(CacheEvent::Bypass);
            return Ok(tag(
                Response::from_parts(parts, CacheBody::inner(body)),
                "BYPASS",
            ));
        };
        match buffer(body, self.shared.config.max_entry_bytes).await {
            Buffered::Partial { body, too_large } => {
                if too_large {
                    self.remember_pass(&key, now).await;
                }
                land(leader, Landing::Pass);
                count(CacheEvent::Bypass);
                Ok(tag(Response::from_parts(parts, body), "BYPASS"))
            }
            Buffered::Complete(bytes) => {
                let entry = self
                    .store_response(&key, &head, parts, bytes, admission, now)
                    .await;
                count(CacheEvent::Miss);
                let Stored::Response(response) = &entry.value else {
                    unreachable!("store_response stores a response");
                };
                let answer = response.respond(system, "MISS");
                land(leader, Landing::Value(entry));
                Ok(answer)
            }
        }
    }

    /// Stores a response (and, if it varies, the target's `Vary` marker,
    /// kept at least as long as the variant).
    async fn store_response(
        &self,
        key: &HttpKey,
        head: &Request<()>,
        parts: http::response::Parts,
        body: Bytes,
        admission: Admission,
        now: Instant,
    ) -> Arc<Entry<Stored>> {
        let store = &self.shared.store;
        let primary = key.primary_of();
        let Admission {
            policy,
            ttl,
            stale_while_revalidate,
            stale_if_error,
            vary,
        } = admission;
        let store_key = if vary.is_empty() {
            primary.clone()
        } else {
            primary.variant(&vary, head.headers())
        };
        let (response, bytes) = CachedResponse::new(policy, head, parts, body, &store_key);
        let fresh_until = now + ttl;
        if !vary.is_empty() {
            let names: Arc<[HeaderName]> = vary.into();
            let mut until = fresh_until + stale_while_revalidate.max(stale_if_error);
            if let Some(marker) = store.get(&primary).await
                && let Stored::Vary(known) = &marker.value
                && *known == names
            {
                until = until.max(marker.fresh_until);
            }
            let marker = Entry {
                stored_at: now,
                fresh_until: until,
                stale_while_revalidate: std::time::Duration::ZERO,
                stale_if_error: std::time::Duration::ZERO,
                bytes: marker_bytes(&primary, &names),
                value: Stored::Vary(names),
            };
            store.insert(primary, marker).await;
        }
        let entry = Entry {
            value: Stored::Response(Box::new(response)),
            stored_at: now,
            fresh_until,
            stale_while_revalidate,
            stale_if_error,
            bytes,
        };
        store.insert(store_key, entry).await
    }

    /// Remembers that `key`'s response could not be stored, so requests
    /// to it skip coalescing for `pass_duration`.
    async fn remember_pass(&self, key: &HttpKey, now: Instant) {
        let duration = self.shared.config.pass_duration;
        if duration.is_zero() {
            return;
        }
        let marker = Entry {
            value: Stored::Pass,
            stored_at: now,
            fresh_until: now + duration,
            stale_while_revalidate: std::time::Duration::ZERO,
            stale_if_error: std::time::Duration::ZERO,
            bytes: marker_bytes(key, &[]),
        };
        self.shared.store.insert(key.clone(), marker).await;
    }
}
