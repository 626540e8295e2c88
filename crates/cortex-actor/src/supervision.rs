//! What happens when an actor fails: restart (with intensity limits and
//! backoff, like OTP's `intensity`/`period`), stop, or escalate.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// When a failed or finished actor is restarted (OTP's child restart types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartType {
    /// Restarted after a failure and also when it stops itself
    /// (`ctx.stop()`); never after an outside `stop`, `kill` or shutdown.
    Permanent,
    /// Restarted after a failure only. The default.
    #[default]
    Transient,
    /// Never restarted.
    Temporary,
}

/// What to do once the restarts allowed are used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnExhausted {
    /// Stop the actor (`post_stop` runs). The default.
    #[default]
    Stop,
    /// Stop the actor and report the failure upwards: to the system, which
    /// logs it and counts it in `SystemStats::escalations`.
    Escalate,
}

/// Delay before each restart: `min · 2^(n-1)` capped at `max`, optionally
/// jittered down to half of that so restarts of many actors spread out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartBackoff {
    /// The first delay.
    pub min: Duration,
    /// The longest delay.
    pub max: Duration,
    /// Randomise each delay within `[d/2, d]`.
    pub jitter: bool,
}

impl Default for RestartBackoff {
    /// No delay: restart at once.
    fn default() -> Self {
        Self {
            min: Duration::ZERO,
            max: Duration::ZERO,
            jitter: false,
        }
    }
}

impl RestartBackoff {
    /// The delay before restart number `n` (1-based).
    fn delay(&self, n: u32, seed: u64) -> Duration {
        if self.min.is_zero() {
            return Duration::ZERO;
        }
        let factor = 1u32
            .checked_shl(n.saturating_sub(1).min(31))
            .unwrap_or(u32::MAX);
        let delay = self.min.saturating_mul(factor).min(self.max.max(self.min));
        if !self.jitter {
            return delay;
        }
        let half = delay / 2;
        let spread = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(if spread == 0 { 0 } else { seed % spread })
    }
}

/// How an actor is supervised. The default restarts a failing actor up to
/// 3 times (ever), then stops it.
///
/// ```
/// use std::time::Duration;
/// use cortex_actor::{OnExhausted, RestartBackoff, RestartPolicy};
///
/// // OTP-style: at most 5 restarts in any 10 s, 100 ms..5 s backoff,
/// // then tell the system.
/// let policy = RestartPolicy::default()
///     .max_restarts(5)
///     .within(Duration::from_secs(10))
///     .backoff(RestartBackoff {
///         min: Duration::from_millis(100),
///         max: Duration::from_secs(5),
///         jitter: true,
///     })
///     .on_exhausted(OnExhausted::Escalate);
/// # drop(policy);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Restarts allowed (in `within`, if set; else over the actor's life).
    pub max_restarts: u32,
    /// The sliding window the restarts are counted in.
    pub within: Option<Duration>,
    /// Delay before each restart.
    pub backoff: RestartBackoff,
    /// What happens past `max_restarts`.
    pub on_exhausted: OnExhausted,
    /// Which exits restart at all.
    pub restart: RestartType,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            max_restarts: 3,
            within: None,
            backoff: RestartBackoff::default(),
            on_exhausted: OnExhausted::Stop,
            restart: RestartType::Transient,
        }
    }
}

impl RestartPolicy {
    /// Never restart: the first failure stops the actor.
    pub fn never() -> Self {
        Self {
            restart: RestartType::Temporary,
            ..Self::default()
        }
    }

    /// Sets `max_restarts`.
    pub fn max_restarts(mut self, max: u32) -> Self {
        self.max_restarts = max;
        self
    }

    /// Counts restarts in a sliding window of `period`.
    pub fn within(mut self, period: Duration) -> Self {
        self.within = Some(period);
        self
    }

    /// Sets the backoff.
    pub fn backoff(mut self, backoff: RestartBackoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets what happens when restarts run out.
    pub fn on_exhausted(mut self, on_exhausted: OnExhausted) -> Self {
        self.on_exhausted = on_exhausted;
        self
    }

    /// Sets the restart type.
    pub fn restart(mut self, restart: RestartType) -> Self {
        self.restart = restart;
        self
    }
}

/// The supervisor's verdict on one exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Restart(Duration),
    Stop,
    Escalate,
}

/// Restart bookkeeping of one actor.
#[derive(Debug)]
pub(crate) struct Supervisor {
    policy: RestartPolicy,
    restarts: VecDeque<Instant>,
    total: u32,
    seed: u64,
}

impl Supervisor {
    pub(crate) fn new(policy: RestartPolicy, seed: u64) -> Self {
        Self {
            policy,
            restarts: VecDeque::new(),
            total: 0,
            seed: seed | 1,
        }
    }

    /// The verdict on an exit: `failed` for an error or panic, else the
    /// actor stopped itself.
    pub(crate) fn on_exit(&mut self, failed: bool) -> Verdict {
        let restarts = match self.policy.restart {
            RestartType::Permanent => true,
            RestartType::Transient => failed,
            RestartType::Temporary => false,
        };
        if !restarts {
            return if failed {
                self.exhausted()
            } else {
                Verdict::Stop
            };
        }
        let now = Instant::now();
        if let Some(window) = self.policy.within {
            while self
                .restarts
                .front()
                .is_some_and(|at| now.saturating_duration_since(*at) >= window)
            {
                self.restarts.pop_front();
            }
        }
        let used = match self.policy.within {
            Some(_) => u32::try_from(self.restarts.len()).unwrap_or(u32::MAX),
            None => self.total,
        };
        if used >= self.policy.max_restarts {
            return self.exhausted();
        }
        self.restarts.push_back(now);
        self.total = self.total.saturating_add(1);
        // xorshift: jitter needs spread, not quality.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let attempt = u32::try_from(self.restarts.len())
            .unwrap_or(u32::MAX)
            .max(1);
        Verdict::Restart(self.policy.backoff.delay(attempt, self.seed))
    }

    fn exhausted(&self) -> Verdict {
        match self.policy.on_exhausted {
            OnExhausted::Stop => Verdict::Stop,
            OnExhausted::Escalate => Verdict::Escalate,
        }
    }
}

/// How a parent's children affect each other when one restarts (OTP's
/// supervisor strategies). Each child's own [`RestartPolicy`] decides
/// whether *it* restarts; the strategy decides who restarts with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SupervisionStrategy {
    /// Only the failed child restarts. The default.
    #[default]
    OneForOne,
    /// Every sibling restarts with it.
    OneForAll,
    /// The siblings started after it restart with it.
    RestForOne,
}

impl SupervisionStrategy {
    /// The positions of the siblings that restart with the child at `at`,
    /// among `count` children in start order (never `at` itself: its own
    /// policy restarted it).
    pub(crate) fn restarts_with(self, at: usize, count: usize) -> impl Iterator<Item = usize> {
        let spread = match self {
            Self::OneForOne => 0..0,
            Self::OneForAll => 0..count,
            Self::RestForOne => at + 1..count,
        };
        spread.filter(move |&sibling| sibling != at)
    }
}

/// Why an actor ended, as told to those watching it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// It stopped: `stop`, `ctx.stop()`, shutdown, or its mailbox closed.
    Stopped,
    /// It failed and was not restarted (restarts exhausted, temporary,
    /// escalated, or its start hook failed), with the last error.
    Failed(String),
    /// It was killed (or its task aborted) mid-way.
    Killed,
}

/// The message a watcher gets when a watched (or linked) actor ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminated {
    /// The actor that ended.
    pub id: u64,
    /// Its name (or type name).
    pub name: std::sync::Arc<str>,
    /// Why.
    pub reason: ExitReason,
}

impl crate::Message for Terminated {
    type Reply = ();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn restarts_are_counted_in_the_window() {
        let policy = RestartPolicy::default()
            .max_restarts(2)
            .within(Duration::from_secs(10));
        let mut supervisor = Supervisor::new(policy, 7);
        assert_eq!(supervisor.on_exit(true), Verdict::Restart(Duration::ZERO));
        assert_eq!(supervisor.on_exit(true), Verdict::Restart(Duration::ZERO));
        assert_eq!(supervisor.on_exit(true), Verdict::Stop);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(supervisor.on_exit(true), Verdict::Restart(Duration::ZERO));
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_window_the_limit_is_for_life() {
        let mut supervisor = Supervisor::new(RestartPolicy::default(), 7);
        for _ in 0..3 {
            assert!(matches!(supervisor.on_exit(true), Verdict::Restart(_)));
        }
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(supervisor.on_exit(true), Verdict::Stop);
    }

    #[test]
    fn restart_types() {
        let temporary = RestartPolicy::never().on_exhausted(OnExhausted::Escalate);
        assert_eq!(
            Supervisor::new(temporary, 1).on_exit(true),
            Verdict::Escalate
        );
        assert_eq!(Supervisor::new(temporary, 1).on_exit(false), Verdict::Stop);
        let transient = RestartPolicy::default();
        assert_eq!(Supervisor::new(transient, 1).on_exit(false), Verdict::Stop);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitter_stays_within_half() {
        let backoff = RestartBackoff {
            min: Duration::from_millis(100),
            max: Duration::from_millis(500),
            jitter: false,
        };
        let delays: Vec<_> = (1..=5).map(|n| backoff.delay(n, 0).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
        let jittered = RestartBackoff {
            jitter: true,
            ..backoff
        };
        for seed in [1, 99, 12_345_678, u64::MAX] {
            let delay = jittered.delay(3, seed);
            assert!(delay >= Duration::from_millis(200) && delay <= Duration::from_millis(400));
        }
    }

    /// OTP's supervisor docs (design principles, "Restart Strategy"):
    /// one_for_one affects only the child that terminated; one_for_all
    /// restarts all the others too; rest_for_one restarts those after it in
    /// the start order.
    #[test]
    fn strategies_pick_the_siblings_that_restart_with_a_child() {
        let with = |strategy: SupervisionStrategy, at| -> Vec<usize> {
            strategy.restarts_with(at, 4).collect()
        };
        assert_eq!(with(SupervisionStrategy::OneForOne, 1), [0usize; 0]);
        assert_eq!(with(SupervisionStrategy::OneForAll, 1), [0, 2, 3]);
        assert_eq!(with(SupervisionStrategy::RestForOne, 1), [2, 3]);
        assert_eq!(with(SupervisionStrategy::RestForOne, 3), [0usize; 0]);
        assert_eq!(with(SupervisionStrategy::OneForAll, 0), [1, 2, 3]);
    }
}
