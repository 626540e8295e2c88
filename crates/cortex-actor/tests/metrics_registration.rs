//! Registering an actor system's series where a name is already taken.

use std::time::Duration;

use cortex_actor::{Actor, ActorError, ActorSystem, Context, Handler, Message};
use cortex_metrics::{Format, MetricsError, MetricsRegistry, RegisterMetrics};

struct Echo;
impl Actor for Echo {}

struct Ping;
impl Message for Ping {
    type Reply = ();
}
impl Handler<Ping> for Echo {
    async fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> Result<(), ActorError> {
        Ok(())
    }
}

#[tokio::test]
async fn a_taken_histogram_name_is_a_conflict_and_leaves_the_system_free_to_register_elsewhere() {
    let system = ActorSystem::new("t");
    let echo = system.spawn(|| Echo).unwrap();

    let taken = MetricsRegistry::new();
    taken
        .counter("cortex_actor_handler_duration_seconds", "Something else.")
        .unwrap();
    let error = system.register_metrics(&taken).unwrap_err();
    assert!(
        matches!(&error, MetricsError::Conflict { name, .. } if name == "cortex_actor_handler_duration_seconds"),
        "{error}"
    );

    // The failed attempt bound nothing: a good registry gets the histogram.
    let registry = MetricsRegistry::new();
    system.register_metrics(&registry).unwrap();
    echo.ask(Ping).await.unwrap();
    let text = registry.encode(Format::Prometheus);
    assert!(
        text.contains(r#"cortex_actor_handler_duration_seconds_count{actor="Echo"} 1"#),
        "{text}"
    );
    system.shutdown(Duration::from_secs(1)).await;
}
