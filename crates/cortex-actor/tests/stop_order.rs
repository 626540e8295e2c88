//! Stop order, as OTP's supervisor stops its children.
//!
//! Erlang/OTP `supervisor` (Design Principles, "Stopping"; the
//! `supervisor` manual, child specification `shutdown`): "When the
//! supervisor terminates, it terminates all child processes in reverse
//! start order" — one at a time, waiting for each exit before the next,
//! and a child that does not exit within its `shutdown` time is killed
//! (`exit(Child, kill)`, as `brutal_kill` does at once). An application
//! stops the same way: its top supervisor terminates its children, so
//! the system's top-level actors go newest first too.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cortex_actor::{Actor, ActorError, ActorRef, ActorSystem, Context, Handler, Message};
use tokio::time::Instant;

type Journal = Arc<Mutex<Vec<String>>>;

fn journal() -> Journal {
    Arc::new(Mutex::new(Vec::new()))
}

fn entries(journal: &Journal) -> Vec<String> {
    journal.lock().unwrap().clone()
}

/// An actor whose `post_stop` takes a while and, while it runs, still
/// uses the sibling started before it (as a worker uses a pool).
struct Worker {
    tag: &'static str,
    older: Option<ActorRef<Worker>>,
    journal: Journal,
}

struct Ping;
impl Message for Ping {
    type Reply = &'static str;
}

impl Handler<Ping> for Worker {
    async fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> Result<&'static str, ActorError> {
        Ok(self.tag)
    }
}

/// Handles forever (past any shutdown timeout).
struct Hang;
impl Message for Hang {
    type Reply = ();
}

impl Handler<Hang> for Worker {
    async fn handle(&mut self, _: Hang, _: &mut Context<Self>) -> Result<(), ActorError> {
        std::future::pending::<()>().await;
        Ok(())
    }
}

impl Actor for Worker {
    async fn post_stop(&mut self, _: &mut Context<Self>) {
        let log = |line: String| self.journal.lock().unwrap().push(line);
        log(format!("{} stopping", self.tag));
        // Give a concurrent stop every chance to overlap.
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Some(older) = &self.older {
            let answer = older.ask(Ping).await;
            log(format!("{} asked {:?}", self.tag, answer));
        }
        log(format!("{} stopped", self.tag));
    }
}

fn worker(
    tag: &'static str,
    older: Option<&ActorRef<Worker>>,
    log: &Journal,
) -> impl FnMut() -> Worker + Send + 'static {
    let older = older.cloned();
    let log = Arc::clone(log);
    move || Worker {
        tag,
        older: older.clone(),
        journal: Arc::clone(&log),
    }
}

/// Starts children `a`, `b`, `c` in that order, each knowing the one before.
struct Parent {
    journal: Journal,
    children: Vec<ActorRef<Worker>>,
    /// The shutdown timeout given to child `b`, if any.
    b_timeout: Option<Duration>,
}

impl Actor for Parent {
    async fn pre_start(&mut self, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        for tag in ["a", "b", "c"] {
            let mut spawn = ctx.spawn_child(worker(tag, self.children.last(), &self.journal));
            if let (Some(timeout), "b") = (self.b_timeout, tag) {
                spawn = spawn.shutdown_timeout(timeout);
            }
            self.children.push(spawn.spawn()?);
        }
        Ok(())
    }

    async fn post_stop(&mut self, _: &mut Context<Self>) {
        self.journal
            .lock()
            .unwrap()
            .push("parent stopped".to_owned());
    }
}

struct Children;
impl Message for Children {
    type Reply = Vec<ActorRef<Worker>>;
}

impl Handler<Children> for Parent {
    async fn handle(
        &mut self,
        _: Children,
        _: &mut Context<Self>,
    ) -> Result<Vec<ActorRef<Worker>>, ActorError> {
        Ok(self.children.clone())
    }
}

/// Fails instead of hanging when a stop never completes.
async fn within_a_minute<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), future)
        .await
        .expect("the stop completed")
}

async fn parent(
    system: &ActorSystem,
    b_timeout: Option<Duration>,
) -> (Journal, ActorRef<Parent>, Vec<ActorRef<Worker>>) {
    let log = journal();
    let for_parent = Arc::clone(&log);
    let parent = system
        .spawn(move || Parent {
            journal: Arc::clone(&for_parent),
            children: Vec::new(),
            b_timeout,
        })
        .unwrap();
    let children = parent.ask(Children).await.unwrap();
    (log, parent, children)
}

#[tokio::test(start_paused = true)]
async fn a_parent_stops_its_children_one_at_a_time_newest_first() {
    let system = ActorSystem::new("t");
    let (log, parent, children) = parent(&system, None).await;
    parent.stop();
    within_a_minute(parent.wait_for_stop()).await;
    assert_eq!(
        entries(&log),
        [
            "c stopping",
            r#"c asked Ok("b")"#,
            "c stopped",
            "b stopping",
            r#"b asked Ok("a")"#,
            "b stopped",
            "a stopping",
            "a stopped",
            "parent stopped",
        ]
    );
    assert!(children.iter().all(|child| !child.is_alive()));
    assert_eq!(system.stats().actors, 0);
}

#[tokio::test(start_paused = true)]
async fn a_child_past_its_shutdown_timeout_is_killed_and_the_next_one_stops() {
    // Asks give up after 100 ms, so c's question to the stuck b ends.
    let system = ActorSystem::builder("t")
        .ask_timeouts(Duration::from_secs(1), Some(Duration::from_millis(100)))
        .build();
    let (log, parent, children) = parent(&system, Some(Duration::from_millis(200))).await;
    // `b` is stuck in a handler when the stop comes.
    children[1].tell(Hang).await.unwrap();
    tokio::task::yield_now().await;
    let started = Instant::now();
    parent.stop();
    within_a_minute(parent.wait_for_stop()).await;
    assert_eq!(
        entries(&log),
        [
            "c stopping",
            "c asked Err(ReplyTimeout)",
            "c stopped",
            // b: 200 ms, then killed (no post_stop); a is next.
            "a stopping",
            "a stopped",
            "parent stopped",
        ]
    );
    // c: 50 ms + a 100 ms ask; b: its 200 ms; a: 50 ms.
    assert_eq!(started.elapsed(), Duration::from_millis(400));
    assert!(children.iter().all(|child| !child.is_alive()));
}

#[tokio::test(start_paused = true)]
async fn a_zero_shutdown_timeout_kills_at_once_as_brutal_kill() {
    let system = ActorSystem::new("t");
    let (log, parent, _children) = parent(&system, Some(Duration::ZERO)).await;
    parent.stop();
    within_a_minute(parent.wait_for_stop()).await;
    let log = entries(&log);
    assert!(
        !log.iter().any(|line| line.starts_with("b stop")),
        "{log:?}"
    );
    assert_eq!(log.last().unwrap(), "parent stopped", "{log:?}");
    assert!(log.contains(&"a stopped".to_owned()), "{log:?}");
}

#[tokio::test(start_paused = true)]
async fn system_shutdown_stops_top_level_actors_newest_first() {
    let system = ActorSystem::new("t");
    let log = journal();
    let a = system.spawn(worker("a", None, &log)).unwrap();
    let b = system.spawn(worker("b", Some(&a), &log)).unwrap();
    let _c = system.spawn(worker("c", Some(&b), &log)).unwrap();
    let report = within_a_minute(system.shutdown(Duration::from_secs(5))).await;
    assert_eq!(
        entries(&log),
        [
            "c stopping",
            r#"c asked Ok("b")"#,
            "c stopped",
            "b stopping",
            r#"b asked Ok("a")"#,
            "b stopped",
            "a stopping",
            "a stopped",
        ]
    );
    assert_eq!(report.drained, 3, "{report:?}");
    assert_eq!(system.stats().actors, 0);
}

#[tokio::test(start_paused = true)]
async fn shutdown_stays_within_its_timeout_and_stuck_actors_do_not_starve_older_ones() {
    let system = ActorSystem::new("t");
    let log = journal();
    let pool = system.spawn(worker("pool", None, &log)).unwrap();
    let mut stuck = Vec::new();
    for tag in ["x", "y", "z"] {
        let actor = system.spawn(worker(tag, None, &log)).unwrap();
        actor.tell(Hang).await.unwrap();
        stuck.push(actor);
    }
    for _ in 0..50 {
        pool.tell(Ping).await.unwrap();
    }
    let started = Instant::now();
    let timeout = Duration::from_secs(1);
    let report = within_a_minute(system.shutdown(timeout)).await;
    // Each stuck actor got a part of the budget, a grace, and was killed;
    // the pool, started first, still drained and ran its `post_stop`.
    assert_eq!(
        (report.drained, report.stopped_late, report.killed),
        (1, 0, 3),
        "{report:?}"
    );
    assert_eq!(entries(&log), ["pool stopping", "pool stopped"]);
    assert!(
        started.elapsed() <= timeout + Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
    assert!(!pool.is_alive() && stuck.iter().all(|actor| !actor.is_alive()));
    assert_eq!(system.stats().actors, 0);
}

/// A top-level actor with children: shutdown drains it, then its
/// children newest first (they drain too), then runs its `post_stop`.
#[tokio::test(start_paused = true)]
async fn shutdown_stops_each_parent_after_its_children_newest_first() {
    let system = ActorSystem::new("t");
    let (log, _parent, children) = parent(&system, None).await;
    for child in &children {
        child.tell(Ping).await.unwrap();
    }
    let report = within_a_minute(system.shutdown(Duration::from_secs(5))).await;
    assert_eq!(report.drained, 1, "{report:?}");
    assert_eq!(
        entries(&log),
        [
            "c stopping",
            r#"c asked Ok("b")"#,
            "c stopped",
            "b stopping",
            r#"b asked Ok("a")"#,
            "b stopped",
            "a stopping",
            "a stopped",
            "parent stopped",
        ]
    );
    assert_eq!(system.stats().actors, 0);
}
