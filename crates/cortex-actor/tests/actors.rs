//! Behaviour of actors, mailboxes, supervision, the registry and shutdown.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cortex_actor::{
    Actor, ActorError, ActorSystem, AskError, Context, DeadLetterReason, Handler, MailboxConfig,
    Message, OnExhausted, Overflow, RestartPolicy, SendError, SpawnError,
};

/// Records what it sees; its journal survives restarts.
struct Probe {
    journal: Arc<Mutex<Vec<String>>>,
    state: u64,
}

impl Probe {
    fn factory(journal: &Arc<Mutex<Vec<String>>>) -> impl FnMut() -> Self + Send + 'static {
        let journal = Arc::clone(journal);
        move || Probe {
            journal: Arc::clone(&journal),
            state: 0,
        }
    }

    fn log(&self, entry: impl Into<String>) {
        self.journal.lock().unwrap().push(entry.into());
    }
}

impl Actor for Probe {
    async fn pre_start(&mut self, _: &mut Context<Self>) -> Result<(), ActorError> {
        self.log("pre_start");
        Ok(())
    }

    async fn post_stop(&mut self, _: &mut Context<Self>) {
        self.log("post_stop");
    }

    async fn pre_restart(&mut self, error: &ActorError, message: Option<&'static str>) {
        let message = message.map(|m| m.rsplit("::").next().unwrap_or(m));
        self.log(format!(
            "pre_restart({error}, {message:?}, state={})",
            self.state
        ));
    }

    async fn post_restart(&mut self, error: &ActorError) {
        self.log(format!("post_restart({error}, state={})", self.state));
    }
}

/// Adds to the state and answers the total.
struct Add(u64);
impl Message for Add {
    type Reply = u64;
}

impl Handler<Add> for Probe {
    async fn handle(&mut self, Add(n): Add, _: &mut Context<Self>) -> Result<u64, ActorError> {
        self.state += n;
        Ok(self.state)
    }
}

/// Fails (or panics) on purpose.
struct Fail {
    panic: bool,
}
impl Message for Fail {
    type Reply = ();
}

impl Handler<Fail> for Probe {
    async fn handle(&mut self, fail: Fail, _: &mut Context<Self>) -> Result<(), ActorError> {
        if fail.panic {
            panic!("boom");
        }
        Err(std::io::Error::other("broken").into())
    }
}

/// Sleeps, then records that it finished.
struct Work(Duration, &'static str);
impl Message for Work {
    type Reply = ();
}

impl Handler<Work> for Probe {
    async fn handle(
        &mut self,
        Work(pause, tag): Work,
        _: &mut Context<Self>,
    ) -> Result<(), ActorError> {
        tokio::time::sleep(pause).await;
        self.log(tag);
        Ok(())
    }
}

/// Stops the actor from inside.
struct StopSelf;
impl Message for StopSelf {
    type Reply = ();
}

impl Handler<StopSelf> for Probe {
    async fn handle(&mut self, _: StopSelf, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        ctx.stop();
        Ok(())
    }
}

/// Schedules an `Add(1)` every 10 ms.
struct Tick;
impl Message for Tick {
    type Reply = ();
}

impl Handler<Tick> for Probe {
    async fn handle(&mut self, _: Tick, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        ctx.send_interval(Duration::from_millis(10), || Add(1));
        Ok(())
    }
}

fn journal() -> Arc<Mutex<Vec<String>>> {
    Arc::new(Mutex::new(Vec::new()))
}

fn entries(journal: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    journal.lock().unwrap().clone()
}

#[tokio::test]
async fn tell_and_ask_in_order_per_sender() {
    let system = ActorSystem::new("t");
    let log = journal();
    let probe = system.spawn(Probe::factory(&log)).unwrap();
    for n in 1..=100 {
        probe.tell(Add(n)).await.unwrap();
    }
    assert_eq!(probe.ask(Add(0)).await, Ok(5050));
    let report = system.shutdown(Duration::from_secs(1)).await;
    assert_eq!(report.drained, 1);
    assert_eq!(entries(&log), ["pre_start", "post_stop"]);
}

#[tokio::test]
async fn failures_restart_with_fresh_state_up_to_the_limit_then_stop() {
    let system = ActorSystem::new("t");
    let log = journal();
    let probe = system.spawn(Probe::factory(&log)).unwrap();
    assert_eq!(probe.ask(Add(7)).await, Ok(7));
    let failed = probe.ask(Fail { panic: false }).await;
    assert_eq!(failed, Err(AskError::HandlerFailed("broken".to_owned())));
    // Fresh state after the restart, same mailbox.
    assert_eq!(probe.ask(Add(1)).await, Ok(1));
    // A panic is caught like an error; the asker learns there is no reply.
    assert_eq!(
        probe.ask(Fail { panic: true }).await,
        Err(AskError::NoReply)
    );
    probe.tell(Fail { panic: false }).await.unwrap();
    assert_eq!(probe.ask(Add(2)).await, Ok(2));
    // The fourth failure exhausts the default three restarts.
    probe.tell(Fail { panic: false }).await.unwrap();
    probe.wait_for_stop().await;
    assert_eq!(system.stats().restarts, 3);
    assert_eq!(system.stats().failures, 4);
    let log = entries(&log);
    assert_eq!(log[0], "pre_start");
    assert_eq!(log[1], "pre_restart(broken, Some(\"Fail\"), state=7)");
    assert_eq!(log[2], "post_restart(broken, state=0)");
    assert_eq!(
        log[3],
        "pre_restart(panicked: boom, Some(\"Fail\"), state=1)"
    );
    assert_eq!(log.last().unwrap(), "post_stop");
    assert_eq!(
        probe
            .tell(Add(1))
            .await
            .map_err(|e| matches!(e, SendError::ActorStopped(Add(1)))),
        Err(true)
    );
}

#[tokio::test(start_paused = true)]
async fn restart_window_forgets_old_restarts_and_escalation_is_counted() {
    let system = ActorSystem::new("t");
    let log = journal();
    let policy = RestartPolicy::default()
        .max_restarts(1)
        .within(Duration::from_secs(10))
        .on_exhausted(OnExhausted::Escalate);
    let probe = system
        .actor(Probe::factory(&log))
        .restart_policy(policy)
        .spawn()
        .unwrap();
    probe.tell(Fail { panic: false }).await.unwrap();
    assert_eq!(probe.ask(Add(1)).await, Ok(1));
    tokio::time::advance(Duration::from_secs(11)).await;
    // The first restart left the window: one more is allowed.
    probe.tell(Fail { panic: false }).await.unwrap();
    assert_eq!(probe.ask(Add(1)).await, Ok(1));
    probe.tell(Fail { panic: false }).await.unwrap();
    probe.wait_for_stop().await;
    let stats = system.stats();
    assert_eq!((stats.restarts, stats.escalations), (2, 1));
}

#[tokio::test]
async fn temporary_actors_stop_on_first_failure_and_permanent_ones_restart_after_stopping_themselves()
 {
    let system = ActorSystem::new("t");
    let log = journal();
    let temporary = system
        .actor(Probe::factory(&log))
        .restart_policy(RestartPolicy::never())
        .spawn()
        .unwrap();
    temporary.tell(Fail { panic: false }).await.unwrap();
    temporary.wait_for_stop().await;
    assert_eq!(system.stats().restarts, 0);

    let permanent = system
        .actor(Probe::factory(&log))
        .restart_policy(RestartPolicy::default().restart(cortex_actor::RestartType::Permanent))
        .spawn()
        .unwrap();
    permanent.ask(Add(5)).await.unwrap();
    permanent.tell(StopSelf).await.unwrap();
    assert_eq!(permanent.ask(Add(1)).await, Ok(1));
    assert!(permanent.is_alive());
    assert_eq!(system.stats().restarts, 1);
    system.shutdown(Duration::from_secs(1)).await;
}

/// Waits until `probe` took its first message off the mailbox (and so is
/// busy handling it), however slow the machine.
async fn until_busy(probe: &cortex_actor::ActorRef<Probe>) {
    while probe.mailbox_len() > 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test]
async fn overflow_policies() {
    let system = ActorSystem::new("t");
    let letters = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&letters);
    system.on_undelivered(move |letter| seen.lock().unwrap().push(letter.reason));
    let log = journal();
    let spawn = |overflow| {
        system
            .actor(Probe::factory(&log))
            .mailbox(MailboxConfig::bounded(2).overflow(overflow))
            .spawn()
            .unwrap()
    };

    // The actor is busy with the first message; two more fill the mailbox.
    let fail_fast = spawn(Overflow::FailFast);
    fail_fast
        .tell(Work(Duration::from_millis(1000), "w"))
        .await
        .unwrap();
    until_busy(&fail_fast).await;
    fail_fast.tell(Add(1)).await.unwrap();
    fail_fast.tell(Add(2)).await.unwrap();
    assert!(matches!(
        fail_fast.tell(Add(3)).await,
        Err(SendError::MailboxFull(Add(3)))
    ));
    assert_eq!(fail_fast.ask(Add(0)).await, Err(AskError::MailboxFull));
    assert_eq!(fail_fast.mailbox_len(), 2);

    let drop_oldest = spawn(Overflow::DropOldest);
    drop_oldest
        .tell(Work(Duration::from_millis(300), "w"))
        .await
        .unwrap();
    until_busy(&drop_oldest).await;
    for n in [1, 10, 100] {
        drop_oldest.tell(Add(n)).await.unwrap();
    }
    assert_eq!(drop_oldest.mailbox_len(), 2);
    // The ask evicts Add(10) in turn: only Add(100) is left before it.
    assert_eq!(drop_oldest.ask(Add(0)).await, Ok(100));

    let drop_newest = spawn(Overflow::DropNewest);
    drop_newest
        .tell(Work(Duration::from_millis(1000), "w"))
        .await
        .unwrap();
    until_busy(&drop_newest).await;
    for n in [1, 10, 100] {
        drop_newest.tell(Add(n)).await.unwrap();
    }
    assert_eq!(drop_newest.mailbox_len(), 2);

    let backpressure = spawn(Overflow::Backpressure);
    backpressure
        .tell(Work(Duration::from_millis(100), "w"))
        .await
        .unwrap();
    until_busy(&backpressure).await;
    backpressure.tell(Add(1)).await.unwrap();
    backpressure.tell(Add(2)).await.unwrap();
    assert!(matches!(
        backpressure.try_tell(Add(3)),
        Err(SendError::MailboxFull(_))
    ));
    // `tell` waits for the busy actor instead of failing.
    backpressure.tell(Add(3)).await.unwrap();
    assert_eq!(backpressure.ask(Add(0)).await, Ok(6));

    // A full DropNewest mailbox refuses a question (nobody would answer).
    assert_eq!(drop_newest.ask(Add(0)).await.ok(), None);
    while drop_newest.mailbox_len() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(drop_newest.ask(Add(0)).await, Ok(11), "100 was dropped");
    let reasons = letters.lock().unwrap().clone();
    assert!(
        reasons
            .iter()
            .all(|r| *r == DeadLetterReason::MailboxOverflow),
        "{reasons:?}"
    );
    // DropOldest: Add(1) evicted by Add(100), then Add(10) by the ask;
    // DropNewest: Add(100) and the refused question.
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    system.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn ask_has_a_mailbox_timeout_and_a_reply_timeout() {
    let system = ActorSystem::new("t");
    let log = journal();
    let probe = system
        .actor(Probe::factory(&log))
        .mailbox(MailboxConfig::bounded(1))
        .spawn()
        .unwrap();
    probe
        .tell(Work(Duration::from_secs(10), "slow"))
        .await
        .unwrap();
    tokio::task::yield_now().await;
    // The queue holds one; the handler is busy for 10 s.
    probe.tell(Add(1)).await.unwrap();
    let full = probe
        .ask_timeout(Add(1), Duration::from_millis(50), Duration::from_secs(60))
        .await;
    assert_eq!(full, Err(AskError::MailboxTimeout));
    let mut letters = system.dead_letters();
    // Waits for space (the slow message ends at 10 s), is queued, but its
    // one-second handling outlasts the 50 ms reply timeout.
    let slow_reply = probe.ask_timeout(
        Work(Duration::from_secs(1), "late"),
        Duration::from_secs(60),
        Duration::from_millis(50),
    );
    assert_eq!(slow_reply.await, Err(AskError::ReplyTimeout));
    // The timed-out question is still handled later.
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert!(entries(&log).contains(&"late".to_owned()));
    assert!(
        letters.try_recv().is_none(),
        "a reply timeout is not a dead letter"
    );
    assert_eq!(system.stats().dead_letters, 1);
    system.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn stop_lets_the_handler_finish_and_kill_interrupts_it() {
    let system = ActorSystem::new("t");
    let log = journal();
    let stopped = system.spawn(Probe::factory(&log)).unwrap();
    stopped
        .tell(Work(Duration::from_millis(300), "finished"))
        .await
        .unwrap();
    until_busy(&stopped).await;
    stopped.tell(Work(Duration::ZERO, "queued")).await.unwrap();
    stopped.stop();
    stopped.wait_for_stop().await;
    assert_eq!(entries(&log), ["pre_start", "finished", "post_stop"]);
    assert_eq!(system.stats().dead_letters, 1, "the queued message");
    assert_eq!(stopped.ask(Add(1)).await, Err(AskError::ActorStopped));
    assert_eq!(system.stats().dead_letters, 2);

    let log = journal();
    let killed = system.spawn(Probe::factory(&log)).unwrap();
    killed
        .tell(Work(Duration::from_secs(60), "never"))
        .await
        .unwrap();
    until_busy(&killed).await;
    killed.kill();
    killed.wait_for_stop().await;
    assert_eq!(entries(&log), ["pre_start"], "no post_stop after kill");
}

#[tokio::test]
async fn names_are_unique_while_alive_and_freed_on_stop() {
    let system = ActorSystem::new("t");
    let log = journal();
    let first = system
        .actor(Probe::factory(&log))
        .name("orders")
        .spawn()
        .unwrap();
    let again = system.actor(Probe::factory(&log)).name("orders").spawn();
    assert_eq!(
        again.unwrap_err(),
        SpawnError::NameTaken("orders".to_owned())
    );
    assert_eq!(system.lookup::<Probe>("orders"), Some(first.clone()));
    assert_eq!(system.registered_names(), ["orders"]);
    assert_eq!(first.name(), "orders");
    first.stop();
    first.wait_for_stop().await;
    assert_eq!(system.lookup::<Probe>("orders"), None);
    assert!(system.registered_names().is_empty());
    let second = system
        .actor(Probe::factory(&log))
        .name("orders")
        .spawn()
        .unwrap();
    assert_ne!(second.id(), first.id());
    let zero = system
        .actor(Probe::factory(&log))
        .mailbox(MailboxConfig::bounded(0))
        .spawn();
    assert_eq!(zero.unwrap_err(), SpawnError::ZeroCapacity);
    system.shutdown(Duration::from_secs(1)).await;
    assert_eq!(
        system.spawn(Probe::factory(&log)).unwrap_err(),
        SpawnError::ShuttingDown
    );
}

#[tokio::test]
async fn shutdown_drains_then_stops_and_reports_the_rest_as_dead_letters() {
    let system = ActorSystem::new("t");
    let log = journal();
    let quick = system.spawn(Probe::factory(&log)).unwrap();
    for n in 0..50 {
        quick.tell(Add(n)).await.unwrap();
    }
    let slow_log = journal();
    let slow = system.spawn(Probe::factory(&slow_log)).unwrap();
    slow.tell(Work(Duration::from_millis(300), "first"))
        .await
        .unwrap();
    slow.tell(Work(Duration::from_millis(300), "second"))
        .await
        .unwrap();
    slow.tell(Work(Duration::from_millis(300), "third"))
        .await
        .unwrap();
    let report = system.shutdown(Duration::from_millis(400)).await;
    assert_eq!(report.drained, 1);
    assert_eq!(report.stopped_late + report.killed, 1);
    assert!(!quick.is_alive() && !slow.is_alive());
    assert_eq!(system.stats().actors, 0);
    assert!(system.stats().dead_letters >= 1);
    assert_eq!(entries(&log).last().unwrap(), "post_stop");
}

#[tokio::test(start_paused = true)]
async fn timers_fire_until_the_actor_stops() {
    let system = ActorSystem::new("t");
    let log = journal();
    let probe = system.spawn(Probe::factory(&log)).unwrap();
    probe.tell(Tick).await.unwrap();
    tokio::time::sleep(Duration::from_millis(55)).await;
    let ticks = probe.ask(Add(0)).await.unwrap();
    assert!((4..=5).contains(&ticks), "{ticks}");
    probe.stop();
    probe.wait_for_stop().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        system.stats().dead_letters,
        0,
        "the interval was cancelled, not refused"
    );
}

/// Many senders into a small backpressured mailbox: every message is
/// handled exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stress_many_senders_bounded_mailbox_nothing_lost_or_duplicated() {
    const SENDERS: u64 = 16;
    const EACH: u64 = 2_000;
    let system = ActorSystem::new("t");
    let log = journal();
    let probe = system
        .actor(Probe::factory(&log))
        .mailbox(MailboxConfig::bounded(8))
        .spawn()
        .unwrap();
    let mut senders = Vec::new();
    for sender in 0..SENDERS {
        let probe = probe.clone();
        senders.push(tokio::spawn(async move {
            for i in 0..EACH {
                probe.tell(Add(sender * EACH + i)).await.unwrap();
            }
        }));
    }
    for sender in senders {
        sender.await.unwrap();
    }
    let total = probe.ask(Add(0)).await.unwrap();
    let n = SENDERS * EACH;
    assert_eq!(total, n * (n - 1) / 2);
    assert_eq!(system.stats().dead_letters, 0);
    system.shutdown(Duration::from_secs(1)).await;
}

/// Senders racing a stop: each message is handled or reported, never both
/// and never neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stress_stop_races_senders_every_message_accounted_for() {
    for round in 0..20 {
        let system = ActorSystem::new("t");
        let log = journal();
        let probe = system
            .actor(Probe::factory(&log))
            .mailbox(MailboxConfig::bounded(4))
            .spawn()
            .unwrap();
        let refused = Arc::new(AtomicUsize::new(0));
        let mut senders = Vec::new();
        for _ in 0..4 {
            let probe = probe.clone();
            let refused = Arc::clone(&refused);
            senders.push(tokio::spawn(async move {
                for _ in 0..200 {
                    if probe.tell(Add(1)).await.is_err() {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_micros(200 * round)).await;
        let _ = probe.ask(Add(0)).await;
        probe.stop();
        for sender in senders {
            sender.await.unwrap();
        }
        probe.wait_for_stop().await;
        let stats = system.stats();
        // 800 tells + 1 ask = messages handled + dead letters.
        let handled_total = stats.messages;
        assert_eq!(
            handled_total + stats.dead_letters,
            801,
            "round {round}: {stats:?}, refused {}",
            refused.load(Ordering::Relaxed)
        );
    }
}
