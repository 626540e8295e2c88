//! Supervision trees: strategies, children-first stop, escalation, links.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cortex_actor::{
    Actor, ActorError, ActorRef, ActorSystem, Context, ExitReason, Handler, Message, OnExhausted,
    RestartPolicy, SupervisionStrategy, Terminated,
};

type Journal = Arc<Mutex<Vec<String>>>;

fn journal() -> Journal {
    Arc::new(Mutex::new(Vec::new()))
}

fn entries(journal: &Journal) -> Vec<String> {
    journal.lock().unwrap().clone()
}

/// A child that logs its lifecycle under its tag.
struct Child {
    tag: &'static str,
    journal: Journal,
}

impl Actor for Child {
    async fn pre_start(&mut self, _: &mut Context<Self>) -> Result<(), ActorError> {
        self.journal
            .lock()
            .unwrap()
            .push(format!("{} start", self.tag));
        Ok(())
    }

    async fn post_stop(&mut self, _: &mut Context<Self>) {
        self.journal
            .lock()
            .unwrap()
            .push(format!("{} stop", self.tag));
    }

    async fn post_restart(&mut self, _: &ActorError) {
        self.journal
            .lock()
            .unwrap()
            .push(format!("{} restart", self.tag));
    }
}

struct Fail;
impl Message for Fail {
    type Reply = ();
}

impl Handler<Fail> for Child {
    async fn handle(&mut self, _: Fail, _: &mut Context<Self>) -> Result<(), ActorError> {
        Err(ActorError::msg(format!("{} failed", self.tag)))
    }
}

struct Ping;
impl Message for Ping {
    type Reply = &'static str;
}

impl Handler<Ping> for Child {
    async fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> Result<&'static str, ActorError> {
        Ok(self.tag)
    }
}

/// A parent that starts three children and hands out their refs.
struct Parent {
    journal: Journal,
    children: Vec<ActorRef<Child>>,
    child_policy: RestartPolicy,
}

impl Actor for Parent {
    async fn pre_start(&mut self, ctx: &mut Context<Self>) -> Result<(), ActorError> {
        for tag in ["a", "b", "c"] {
            let journal = Arc::clone(&self.journal);
            let child = ctx
                .spawn_child(move || Child {
                    tag,
                    journal: Arc::clone(&journal),
                })
                .restart_policy(self.child_policy)
                .spawn()?;
            self.children.push(child);
        }
        Ok(())
    }

    async fn post_stop(&mut self, _: &mut Context<Self>) {
        self.journal.lock().unwrap().push("parent stop".to_owned());
    }

    async fn post_restart(&mut self, error: &ActorError) {
        self.journal
            .lock()
            .unwrap()
            .push(format!("parent restart: {error}"));
    }
}

struct Children;
impl Message for Children {
    type Reply = Vec<ActorRef<Child>>;
}

impl Handler<Children> for Parent {
    async fn handle(
        &mut self,
        _: Children,
        _: &mut Context<Self>,
    ) -> Result<Vec<ActorRef<Child>>, ActorError> {
        Ok(self.children.clone())
    }
}

async fn tree(
    system: &ActorSystem,
    strategy: SupervisionStrategy,
    child_policy: RestartPolicy,
    parent_policy: RestartPolicy,
) -> (Journal, ActorRef<Parent>, Vec<ActorRef<Child>>) {
    let log = journal();
    let for_parent = Arc::clone(&log);
    let parent = system
        .actor(move || Parent {
            journal: Arc::clone(&for_parent),
            children: Vec::new(),
            child_policy,
        })
        .strategy(strategy)
        .restart_policy(parent_policy)
        .spawn()
        .unwrap();
    let children = parent.ask(Children).await.unwrap();
    for child in &children {
        child.ask(Ping).await.unwrap();
    }
    log.lock().unwrap().clear();
    (log, parent, children)
}

/// Waits until restarts have spread: a child answers only after its own
/// restart (which signals its siblings first), and a signalled sibling
/// restarts before it answers; two rounds cover both.
async fn settle(children: &[ActorRef<Child>]) {
    for _ in 0..2 {
        for child in children {
            let _ = child.ask(Ping).await;
        }
    }
}

fn sorted(mut entries: Vec<String>) -> Vec<String> {
    entries.sort();
    entries
}

#[tokio::test]
async fn one_for_one_restarts_only_the_failed_child() {
    let system = ActorSystem::new("t");
    let (log, _parent, children) = tree(
        &system,
        SupervisionStrategy::OneForOne,
        RestartPolicy::default(),
        RestartPolicy::default(),
    )
    .await;
    children[1].tell(Fail).await.unwrap();
    settle(&children).await;
    assert_eq!(entries(&log), ["b restart"]);
    system.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn one_for_all_restarts_every_sibling() {
    let system = ActorSystem::new("t");
    let (log, _parent, children) = tree(
        &system,
        SupervisionStrategy::OneForAll,
        RestartPolicy::default(),
        RestartPolicy::default(),
    )
    .await;
    children[1].tell(Fail).await.unwrap();
    settle(&children).await;
    assert_eq!(
        sorted(entries(&log)),
        ["a restart", "b restart", "c restart"]
    );
    system.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn rest_for_one_restarts_the_younger_siblings() {
    let system = ActorSystem::new("t");
    let (log, _parent, children) = tree(
        &system,
        SupervisionStrategy::RestForOne,
        RestartPolicy::default(),
        RestartPolicy::default(),
    )
    .await;
    children[1].tell(Fail).await.unwrap();
    settle(&children).await;
    assert_eq!(sorted(entries(&log)), ["b restart", "c restart"]);
    system.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn stopping_a_parent_stops_its_children_first() {
    let system = ActorSystem::new("t");
    let (log, parent, children) = tree(
        &system,
        SupervisionStrategy::OneForOne,
        RestartPolicy::default(),
        RestartPolicy::default(),
    )
    .await;
    parent.stop();
    parent.wait_for_stop().await;
    let log = entries(&log);
    assert_eq!(log.last().unwrap(), "parent stop", "{log:?}");
    // Newest child first.
    assert_eq!(&log[..3], ["c stop", "b stop", "a stop"]);
    assert!(children.iter().all(|child| !child.is_alive()));
    assert_eq!(system.stats().actors, 0);
}

#[tokio::test]
async fn exhausted_children_escalate_to_their_parent() {
    let system = ActorSystem::new("t");
    let (log, parent, children) = tree(
        &system,
        SupervisionStrategy::OneForOne,
        RestartPolicy::never().on_exhausted(OnExhausted::Escalate),
        RestartPolicy::default(),
    )
    .await;
    children[0].tell(Fail).await.unwrap();
    children[0].wait_for_stop().await;
    // The escalation is a signal ahead of this question: once answered,
    // the parent has restarted.
    parent.ask(Children).await.unwrap();
    assert!(
        entries(&log)
            .iter()
            .any(|entry| entry.starts_with("parent restart: child Child escalated: a failed")),
        "{:?}",
        entries(&log)
    );
    assert!(parent.is_alive(), "the parent restarted, it did not stop");
    // Its restart restarted the children still alive, with fresh state.
    settle(&children[1..]).await;
    let seen = entries(&log);
    assert!(seen.contains(&"b restart".to_owned()), "{seen:?}");
    assert!(seen.contains(&"c restart".to_owned()), "{seen:?}");
    assert_eq!(system.stats().escalations, 0, "handled by the parent");
    system.shutdown(Duration::from_secs(1)).await;
}

/// Records `Terminated` notices and tells them when asked.
#[derive(Default)]
struct Watcher(Vec<Terminated>);

impl Actor for Watcher {}

impl Handler<Terminated> for Watcher {
    async fn handle(
        &mut self,
        terminated: Terminated,
        _: &mut Context<Self>,
    ) -> Result<(), ActorError> {
        self.0.push(terminated);
        Ok(())
    }
}

/// The notices a [`Watcher`] has handled. A mailbox is first in, first
/// out, so the answer covers every notice queued before the question.
struct Notices;
impl Message for Notices {
    type Reply = Vec<(String, ExitReason)>;
}

impl Handler<Notices> for Watcher {
    async fn handle(
        &mut self,
        _: Notices,
        _: &mut Context<Self>,
    ) -> Result<Vec<(String, ExitReason)>, ActorError> {
        Ok(self
            .0
            .iter()
            .map(|t| (t.name.to_string(), t.reason.clone()))
            .collect())
    }
}

impl Handler<Terminated> for Child {
    async fn handle(
        &mut self,
        terminated: Terminated,
        _: &mut Context<Self>,
    ) -> Result<(), ActorError> {
        self.journal.lock().unwrap().push(format!(
            "{} saw {} end: {:?}",
            self.tag, terminated.name, terminated.reason
        ));
        Ok(())
    }
}

#[tokio::test]
async fn watchers_and_links_learn_why_a_peer_ended() {
    let system = ActorSystem::new("t");
    let watcher = system.spawn(Watcher::default).unwrap();
    let log = journal();
    let make = |tag: &'static str| {
        let log = Arc::clone(&log);
        move || Child {
            tag,
            journal: Arc::clone(&log),
        }
    };
    let failing = system
        .actor(make("x"))
        .name("x")
        .restart_policy(RestartPolicy::never())
        .spawn()
        .unwrap();
    let stopping = system.actor(make("y")).name("y").spawn().unwrap();
    let killed = system.actor(make("z")).name("z").spawn().unwrap();
    failing.watch_by(&watcher);
    stopping.watch_by(&watcher);
    killed.watch_by(&watcher);
    failing.link(&stopping);

    // An ending actor's task tells its watchers as it ends; on this
    // one-thread runtime that is done before `wait_for_stop` returns, so
    // each notice below is queued ahead of the next question asked.
    failing.tell(Fail).await.unwrap();
    failing.wait_for_stop().await;
    // `stop` jumps the queue: y answers once it has handled x's notice.
    stopping.ask(Ping).await.unwrap();
    stopping.stop();
    stopping.wait_for_stop().await;
    killed.kill();
    killed.wait_for_stop().await;

    assert_eq!(
        watcher.ask(Notices).await.unwrap(),
        [
            ("x".to_owned(), ExitReason::Failed("x failed".to_owned())),
            ("y".to_owned(), ExitReason::Stopped),
            ("z".to_owned(), ExitReason::Killed),
        ]
    );
    assert!(
        entries(&log).contains(&r#"y saw x end: Failed("x failed")"#.to_owned()),
        "{:?}",
        entries(&log)
    );
    // Watching an actor that already ended answers at once.
    failing.watch_by(&watcher);
    let notices = watcher.ask(Notices).await.unwrap();
    assert_eq!(notices.len(), 4, "{notices:?}");
    assert_eq!(
        notices.last().unwrap(),
        &("x".to_owned(), ExitReason::Failed("x failed".to_owned()))
    );
    system.shutdown(Duration::from_secs(1)).await;
}
