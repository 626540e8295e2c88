//! Delays between attempts.

use std::cell::Cell;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The delay before retry number `n`, before jitter.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Backoff {
    /// The same delay every time.
    Fixed {
        /// The delay.
        #[serde(with = "crate::duration")]
        delay: Duration,
    },
    /// `initial * multiplier^(n-1)`, capped at `max`.
    Exponential {
        /// The first delay.
        #[serde(with = "crate::duration")]
        initial: Duration,
        /// Growth per retry (at least 1).
        multiplier: f64,
        /// The cap.
        #[serde(with = "crate::duration")]
        max: Duration,
    },
}

impl Default for Backoff {
    /// resilience4j's default: a fixed 500 ms.
    fn default() -> Self {
        Self::Fixed {
            delay: Duration::from_millis(500),
        }
    }
}

/// Randomisation of the backoff, so that clients that failed together do
/// not retry together. See the AWS Architecture Blog's "Exponential
/// Backoff and Jitter" for the first three.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Jitter {
    /// The computed delay as is.
    #[default]
    None,
    /// Uniform in `[0, delay]`.
    Full,
    /// Uniform in `[delay/2, delay]`.
    Equal,
    /// Uniform in `[base, previous * 3]`, capped at the backoff's maximum
    /// (`base` is the fixed or initial delay).
    Decorrelated,
    /// Uniform in `[delay * (1 - factor), delay * (1 + factor)]`
    /// (resilience4j's `randomizationFactor`, the spec's ±jitterFactor).
    Proportional {
        /// Between 0 and 1.
        factor: f64,
    },
}

impl Backoff {
    fn base(&self) -> Duration {
        match *self {
            Self::Fixed { delay } => delay,
            Self::Exponential { initial, .. } => initial,
        }
    }

    fn cap(&self) -> Duration {
        match *self {
            Self::Fixed { delay } => delay,
            Self::Exponential { max, .. } => max,
        }
    }

    /// The delay before retry `retry` (1 for the first retry), given the
    /// previous delay (for decorrelated jitter).
    pub fn delay(&self, retry: u32, previous: Duration, jitter: Jitter) -> Duration {
        let computed = match *self {
            Self::Fixed { delay } => delay,
            Self::Exponential {
                initial,
                multiplier,
                max,
            } => {
                let exponent = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
                let seconds = initial.as_secs_f64() * multiplier.powi(exponent);
                Duration::try_from_secs_f64(seconds).map_or(max, |delay| delay.min(max))
            }
        };
        let scale = |duration: Duration, factor: f64| {
            Duration::try_from_secs_f64(duration.as_secs_f64() * factor).unwrap_or(duration)
        };
        match jitter {
            Jitter::None => computed,
            Jitter::Full => scale(computed, random_unit()),
            Jitter::Equal => scale(computed, 0.5 + random_unit() / 2.0),
            Jitter::Decorrelated => {
                let base = self.base();
                let high = previous.max(base).saturating_mul(3);
                let spread = high.saturating_sub(base);
                (base + scale(spread, random_unit())).min(self.cap().max(base))
            }
            Jitter::Proportional { factor } => scale(
                computed,
                (2.0 * factor).mul_add(random_unit(), 1.0 - factor),
            ),
        }
    }
}

thread_local! {
    static RNG: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // The standard library's per-process random hasher keys make a fine
    // seed; jitter needs spread, not cryptographic strength.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0x9e37_79b9_7f4a_7c15);
    hasher.finish() | 1
}

/// A uniform float in `[0, 1)` from a thread-local xorshift64*.
pub(crate) fn random_unit() -> f64 {
    RNG.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        let bits = x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        #[allow(clippy::cast_precision_loss)] // 53 bits fit an f64 exactly
        let unit = bits as f64 / (1u64 << 53) as f64;
        unit
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn exponential_grows_and_caps() {
        let backoff = Backoff::Exponential {
            initial: 100 * MS,
            multiplier: 2.0,
            max: 1000 * MS,
        };
        let delays: Vec<_> = (1..=6)
            .map(|n| backoff.delay(n, Duration::ZERO, Jitter::None))
            .collect();
        assert_eq!(
            delays,
            [100 * MS, 200 * MS, 400 * MS, 800 * MS, 1000 * MS, 1000 * MS]
        );
        // Huge exponents saturate at the cap instead of overflowing.
        assert_eq!(
            backoff.delay(u32::MAX, Duration::ZERO, Jitter::None),
            1000 * MS
        );
    }

    #[test]
    fn jitters_stay_in_their_ranges() {
        let backoff = Backoff::Fixed { delay: 1000 * MS };
        for _ in 0..1000 {
            let full = backoff.delay(1, Duration::ZERO, Jitter::Full);
            assert!(full <= 1000 * MS);
            let equal = backoff.delay(1, Duration::ZERO, Jitter::Equal);
            assert!(equal >= 500 * MS && equal <= 1000 * MS);
            let proportional =
                backoff.delay(1, Duration::ZERO, Jitter::Proportional { factor: 0.2 });
            assert!(proportional >= 800 * MS && proportional <= 1200 * MS);
        }
        let exponential = Backoff::Exponential {
            initial: 100 * MS,
            multiplier: 2.0,
            max: 2000 * MS,
        };
        let mut previous = 100 * MS;
        for n in 1..50 {
            let delay = exponential.delay(n, previous, Jitter::Decorrelated);
            assert!(delay >= 100 * MS && delay <= 2000 * MS && delay <= previous * 3);
            previous = delay;
        }
    }

    #[test]
    fn random_unit_is_spread_over_the_interval() {
        let samples: Vec<f64> = (0..10_000).map(|_| random_unit()).collect();
        assert!(samples.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
    }
}
