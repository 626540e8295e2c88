//! Which budget an HTTP request draws from: [`KeyExtractor`] and the
//! extractors that come with the crate.

use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, MatchedPath};
use http::{HeaderName, Request};

/// Picks the key an HTTP request is limited by.
pub trait KeyExtractor: Clone + Send + Sync + 'static {
    /// The key type.
    type Key: Hash + Eq + Clone + Send + Sync + 'static;

    /// The key of `request`, or `None` to use the shared overflow budget.
    fn extract<B>(&self, request: &Request<B>) -> Option<Self::Key>;
}

/// One budget for all requests.
#[derive(Debug, Clone, Copy, Default)]
pub struct GlobalKey;

impl KeyExtractor for GlobalKey {
    type Key = ();

    fn extract<B>(&self, _request: &Request<B>) -> Option<()> {
        Some(())
    }
}

/// The client's IP address: the peer address from axum's `ConnectInfo`
/// (serve with `into_make_service_with_connect_info::<SocketAddr>()`), or,
/// behind `trusted_proxies` reverse proxies, the address those proxies
/// recorded in `X-Forwarded-For`. IPv6 clients are keyed by their /64
/// prefix by default, since one host usually owns a whole /64.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp {
    trusted_proxies: usize,
    ipv6_prefix: u8,
}

impl Default for ClientIp {
    fn default() -> Self {
        Self {
            trusted_proxies: 0,
            ipv6_prefix: 64,
        }
    }
}

impl ClientIp {
    /// The peer address; `X-Forwarded-For` is ignored (it can be forged).
    pub fn new() -> Self {
        Self::default()
    }

    /// Trust `proxies` reverse proxies in front of the service: the client
    /// is the `proxies`-th address from the right of `X-Forwarded-For`.
    #[must_use]
    pub fn trusted_proxies(mut self, proxies: usize) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    /// Key IPv6 clients by this prefix length (0–128). Default 64.
    #[must_use]
    pub fn ipv6_prefix(mut self, bits: u8) -> Self {
        self.ipv6_prefix = bits.min(128);
        self
    }

    fn normalise(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V6(v6) => {
                if let Some(v4) = v6.to_ipv4_mapped() {
                    return IpAddr::V4(v4);
                }
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.ipv6_prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
            v4 @ IpAddr::V4(_) => v4,
        }
    }
}

impl KeyExtractor for ClientIp {
    type Key = IpAddr;

    fn extract<B>(&self, request: &Request<B>) -> Option<IpAddr> {
        let forwarded = (self.trusted_proxies > 0)
            .then(|| {
                let header = request.headers().get_all("x-forwarded-for");
                let hops: Vec<&str> = header
                    .iter()
                    .filter_map(|value| value.to_str().ok())
                    .flat_map(|value| value.split(','))
                    .map(str::trim)
                    .collect();
                let index = hops.len().checked_sub(self.trusted_proxies)?;
                hops.get(index)?.parse::<IpAddr>().ok()
            })
            .flatten();
        let ip = forwarded.or_else(|| {
            request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(address)| address.ip())
        })?;
        Some(self.normalise(ip))
    }
}

/// The matched route template (`/api/users/{id}`), one budget per route.
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteKey;

impl KeyExtractor for RouteKey {
    type Key = Arc<str>;

    fn extract<B>(&self, request: &Request<B>) -> Option<Arc<str>> {
        let path = request.extensions().get::<MatchedPath>()?;
        Some(Arc::from(path.as_str()))
    }
}

/// A header's value, e.g. an API key. Requests without it share the
/// overflow budget.
#[derive(Debug, Clone)]
pub struct HeaderKey {
    name: HeaderName,
}

impl HeaderKey {
    /// Keys by header `name`.
    pub fn new(name: HeaderName) -> Self {
        Self { name }
    }
}

impl KeyExtractor for HeaderKey {
    type Key = Vec<u8>;

    fn extract<B>(&self, request: &Request<B>) -> Option<Vec<u8>> {
        Some(request.headers().get(&self.name)?.as_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ip_reads_connect_info_and_trusted_forwarded_for() {
        let peer: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        let mut request = Request::new(());
        request.extensions_mut().insert(ConnectInfo(peer));
        request
            .headers_mut()
            .insert("x-forwarded-for", "1.1.1.1, 203.0.113.9".parse().unwrap());
        assert_eq!(ClientIp::new().extract(&request), Some(peer.ip()));
        assert_eq!(
            ClientIp::new().trusted_proxies(1).extract(&request),
            Some("203.0.113.9".parse().unwrap())
        );
        assert_eq!(
            ClientIp::new().trusted_proxies(2).extract(&request),
            Some("1.1.1.1".parse().unwrap())
        );
        // More trusted proxies than hops: fall back to the peer.
        assert_eq!(
            ClientIp::new().trusted_proxies(3).extract(&request),
            Some(peer.ip())
        );
        let v6: SocketAddr = "[2001:db8:1:2:3:4:5:6]:1".parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(v6));
        assert_eq!(
            ClientIp::new().extract(&request),
            Some("2001:db8:1:2::".parse().unwrap())
        );
    }
}
