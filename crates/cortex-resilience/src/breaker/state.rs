//! The breaker's state, and the one `AtomicU64` word it lives in with a
//! transition epoch and the free half-open probe slots.
//!
//! Bits 0..3 hold the [`CircuitState`], bits 3..32 the epoch (bumped by
//! every transition, so an outcome can tell whether the state it was
//! admitted in is still current), bits 32..64 the probe slots left in
//! half-open. Closed-state admission is one load of this word; a probe
//! takes its slot with one compare-and-swap.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    /// Calls flow; outcomes are recorded.
    Closed,
    /// Calls are rejected until the wait duration passes.
    Open,
    /// A limited number of probe calls decide between closed and open.
    HalfOpen,
    /// Calls flow, nothing is recorded, the state never changes.
    Disabled,
    /// Every call is rejected until a manual transition.
    ForcedOpen,
    /// Calls flow and are recorded, events fire, the state never changes.
    MetricsOnly,
}

impl CircuitState {
    #[cfg_attr(not(any(feature = "metrics", test)), allow(dead_code))]
    pub(crate) const ALL: [Self; 6] = [
        Self::Closed,
        Self::Open,
        Self::HalfOpen,
        Self::Disabled,
        Self::ForcedOpen,
        Self::MetricsOnly,
    ];

    /// The resilience4j name in snake case (`half_open`...), as used in
    /// metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
            Self::Disabled => "disabled",
            Self::ForcedOpen => "forced_open",
            Self::MetricsOnly => "metrics_only",
        }
    }

    #[inline]
    fn to_bits(self) -> u64 {
        match self {
            Self::Closed => 0,
            Self::Open => 1,
            Self::HalfOpen => 2,
            Self::Disabled => 3,
            Self::ForcedOpen => 4,
            Self::MetricsOnly => 5,
        }
    }

    #[inline]
    fn from_bits(bits: u64) -> Self {
        match bits & 0b111 {
            0 => Self::Closed,
            1 => Self::Open,
            2 => Self::HalfOpen,
            3 => Self::Disabled,
            4 => Self::ForcedOpen,
            _ => Self::MetricsOnly,
        }
    }
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const EPOCH_SHIFT: u32 = 3;
const EPOCH_MASK: u64 = (1 << 29) - 1;
const SLOTS_SHIFT: u32 = 32;

/// One half-open probe slot, to subtract from or add to a word.
pub(super) const ONE_SLOT: u64 = 1 << SLOTS_SHIFT;

/// The word for `state` in `epoch` with `slots` free probe slots.
#[inline]
pub(super) fn pack(state: CircuitState, epoch: u64, slots: u32) -> u64 {
    state.to_bits() | ((epoch & EPOCH_MASK) << EPOCH_SHIFT) | (u64::from(slots) << SLOTS_SHIFT)
}

#[inline]
pub(super) fn state_of(word: u64) -> CircuitState {
    CircuitState::from_bits(word)
}

/// The transition count (modulo 2^29) of `word`.
#[inline]
pub(super) fn epoch_of(word: u64) -> u64 {
    (word >> EPOCH_SHIFT) & EPOCH_MASK
}

/// State and epoch, without the slots: what identifies "the same state".
#[inline]
pub(super) fn era_of(word: u64) -> u64 {
    word & (ONE_SLOT - 1)
}

#[inline]
pub(super) fn slots_of(word: u64) -> u32 {
    // The top 32 bits.
    #[allow(clippy::cast_possible_truncation)]
    let slots = (word >> SLOTS_SHIFT) as u32;
    slots
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_round_trips_every_state_epoch_and_slot_count() {
        for state in CircuitState::ALL {
            for (epoch, slots) in [(0, 0), (1, 10), (EPOCH_MASK, u32::MAX)] {
                let word = pack(state, epoch, slots);
                assert_eq!(state_of(word), state);
                assert_eq!(epoch_of(word), epoch);
                assert_eq!(slots_of(word), slots);
                assert_eq!(era_of(word - u64::from(slots) * ONE_SLOT), era_of(word));
            }
        }
        // The epoch wraps instead of spilling into the slots.
        assert_eq!(epoch_of(pack(CircuitState::Open, EPOCH_MASK + 1, 3)), 0);
        assert_eq!(slots_of(pack(CircuitState::Open, EPOCH_MASK + 1, 3)), 3);
    }
}
