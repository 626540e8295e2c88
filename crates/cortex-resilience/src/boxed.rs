//! The boxed error and future types the layers share.

use std::future::Future;
use std::pin::Pin;

/// A request body's error, as `http-body` bodies box theirs.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response future that had to be boxed (queued or retried calls).
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
