//! The limits a decompression layer, its services and bodies share.

/// The default maximum decompressed request body: 16 MiB.
pub const DEFAULT_MAX_SIZE: u64 = 16 * 1024 * 1024;
/// The default maximum expansion ratio (decompressed / compressed).
pub const DEFAULT_MAX_RATIO: u64 = 100;

/// The limits every service and body of one layer checks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_size: u64,
    pub(crate) max_ratio: u64,
}
