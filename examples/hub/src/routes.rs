//! A router that remembers what it serves, so the index at `/` is derived
//! from the routes themselves instead of a list kept by hand beside them.

use axum::Router;
use axum::routing::MethodRouter;
use serde::Serialize;

/// One entry of the Hub's route index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteInfo {
    /// The path template, as axum matches it (`/api/orders/{id}`).
    pub path: String,
    /// What the route shows, in one line.
    pub about: String,
}

/// An axum [`Router`] plus the [`RouteInfo`] of every route added through it.
#[derive(Debug)]
pub(crate) struct IndexedRouter<S = ()> {
    router: Router<S>,
    index: Vec<RouteInfo>,
}

impl<S> IndexedRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    pub(crate) fn new() -> Self {
        Self {
            router: Router::new(),
            index: Vec::new(),
        }
    }

    /// Adds a route and its index entry in one step, so neither can be
    /// added without the other.
    pub(crate) fn route(mut self, path: &str, about: &str, handler: MethodRouter<S>) -> Self {
        self.router = self.router.route(path, handler);
        self.index.push(RouteInfo {
            path: path.to_owned(),
            about: about.to_owned(),
        });
        self
    }

    /// Merges `other`'s routes and index entries.
    pub(crate) fn merge(mut self, other: IndexedRouter<S>) -> Self {
        self.router = self.router.merge(other.router);
        self.index.extend(other.index);
        self
    }

    /// Transforms the router (state, layers) and keeps the index.
    pub(crate) fn map<S2>(self, f: impl FnOnce(Router<S>) -> Router<S2>) -> IndexedRouter<S2> {
        IndexedRouter {
            router: f(self.router),
            index: self.index,
        }
    }

    /// The router and its index.
    pub(crate) fn into_parts(self) -> (Router<S>, Vec<RouteInfo>) {
        (self.router, self.index)
    }
}
