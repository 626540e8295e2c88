//! Body plumbing both directions share.

use bytes::{Buf, Bytes};
use http_body::Frame;

/// Errors of this crate's bodies: the inner body's, or the codec's.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Any body's frame as a `Bytes` frame with a boxed error: what the
/// pass-through paths of this crate's bodies yield.
pub(crate) fn bytes_frame<D: Buf, E: Into<BoxError>>(
    frame: Option<Result<Frame<D>, E>>,
) -> Option<Result<Frame<Bytes>, BoxError>> {
    frame.map(|frame| {
        frame
            .map(|frame| {
                frame.map_data(|mut data| {
                    let len = data.remaining();
                    data.copy_to_bytes(len)
                })
            })
            .map_err(Into::into)
    })
}
