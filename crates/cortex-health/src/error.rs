//! The error type of registry operations.

/// Why a registry operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HealthError {
    /// A check with this name is already registered.
    #[error("a health check named {name:?} is already registered")]
    Duplicate {
        /// The name.
        name: String,
    },
    /// No check with this name is registered.
    #[error("no health check named {name:?}")]
    Unknown {
        /// The name.
        name: String,
    },
    /// Check names must be non-empty, at most 128 characters, and made of
    /// `[A-Za-z0-9_.:-]`, since they appear in JSON keys and metric labels.
    #[error("invalid health check name {name:?}: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}
