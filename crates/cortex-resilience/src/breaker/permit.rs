//! Permits: a call's admission, carried until its outcome is recorded.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use super::machine::Shared;
use super::state::state_of;
use crate::Outcome;

/// Permission for one call, from
/// [`CircuitBreaker::try_acquire_permission`](super::CircuitBreaker::try_acquire_permission).
/// Report the call's outcome with [`record`](Self::record); dropping the
/// permit unreported frees a half-open probe slot and records nothing (a
/// drop while panicking counts as a failure).
pub struct CallPermit {
    pub(super) permit: Permit<Arc<Shared>>,
}

impl fmt::Debug for CallPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallPermit")
            .field("admitted_in", &state_of(self.permit.raw.word))
            .finish_non_exhaustive()
    }
}

impl CallPermit {
    /// Records the call's outcome, consuming the permit.
    pub fn record(self, outcome: Outcome) {
        self.permit.record(outcome);
    }
}

/// A permit borrowing (`execute`) or owning (layer futures) the state.
pub(crate) struct Permit<B: Borrow<Shared>> {
    shared: B,
    raw: RawPermit,
    done: bool,
}

#[derive(Clone, Copy)]
pub(super) struct RawPermit {
    /// The state word when admitted.
    pub(super) word: u64,
    /// Nanoseconds since origin at admission.
    pub(super) start: u64,
}

impl<B: Borrow<Shared>> Permit<B> {
    pub(super) const fn new(shared: B, raw: RawPermit) -> Self {
        Self {
            shared,
            raw,
            done: false,
        }
    }

    pub(crate) fn record(mut self, outcome: Outcome) {
        self.done = true;
        self.shared.borrow().complete(self.raw, outcome);
    }
}

impl<B: Borrow<Shared>> Drop for Permit<B> {
    fn drop(&mut self) {
        if !self.done {
            let shared = self.shared.borrow();
            if std::thread::panicking() {
                shared.complete(self.raw, Outcome::Failure);
            } else {
                shared.release(self.raw);
            }
        }
    }
}
