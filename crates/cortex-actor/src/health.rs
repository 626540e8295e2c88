//! A cortex-health check for an [`ActorSystem`].
//!
//! ```
//! use cortex_actor::ActorSystem;
//! use cortex_health::{HealthCheck, HealthStatus};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let system = ActorSystem::new("app");
//! let check = system.health_check();
//! assert_eq!(check.check().await.status, HealthStatus::Up);
//! # }
//! ```

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use cortex_health::{HealthCheck, HealthCheckResult};
use serde_json::json;

use crate::system::ActorSystem;

/// Degraded while some actor has exhausted its restarts since the last
/// check, or while an actor's mailbox is full at two checks in a row;
/// `Down` once the system is shutting down. Details carry the counters.
#[derive(Debug)]
pub struct ActorHealthCheck {
    system: ActorSystem,
    /// Exhaustions seen at the previous check.
    seen_exhausted: Mutex<u64>,
    /// Actors whose mailbox was full at the previous check.
    full_before: Mutex<HashSet<u64>>,
}

impl ActorSystem {
    /// A health check for this system; see [`ActorHealthCheck`].
    pub fn health_check(&self) -> ActorHealthCheck {
        ActorHealthCheck {
            system: self.clone(),
            seen_exhausted: Mutex::new(0),
            full_before: Mutex::new(HashSet::new()),
        }
    }
}

impl HealthCheck for ActorHealthCheck {
    async fn check(&self) -> HealthCheckResult {
        let stats = self.system.stats();
        let inner = self.system.inner();
        let exhausted: u64 = inner
            .kinds()
            .iter()
            .map(|kind| kind.exhausted.load(Ordering::Relaxed))
            .sum();
        let full_now: HashSet<u64> = inner
            .lock_live()
            .iter()
            .filter(|(_, actor)| actor.control.mailbox_full())
            .map(|(id, _)| *id)
            .collect();
        let newly_exhausted = {
            let mut seen = self
                .seen_exhausted
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let new = exhausted - (*seen).min(exhausted);
            *seen = exhausted;
            new
        };
        let stuck = {
            let mut before = self
                .full_before
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let stuck = full_now.intersection(&before).count();
            *before = full_now.clone();
            stuck
        };
        let details = json!({
            "actors": stats.actors,
            "messages": stats.messages,
            "failures": stats.failures,
            "restarts": stats.restarts,
            "restarts_exhausted": exhausted,
            "dead_letters": stats.dead_letters,
            "full_mailboxes": full_now.len(),
        });
        let result = if self.system.is_shutting_down() {
            HealthCheckResult::down("the actor system is shutting down")
        } else if newly_exhausted > 0 {
            HealthCheckResult::degraded(format!(
                "{newly_exhausted} actor(s) exhausted their restarts since the last check"
            ))
        } else if stuck > 0 {
            HealthCheckResult::degraded(format!("{stuck} mailbox(es) full at two checks in a row"))
        } else {
            HealthCheckResult::up()
        };
        result.with_details(details)
    }
}
