//! A job runs in a `cortex_worker.job` span whose parent is the span that
//! was current where it was submitted, so the trace continues on the
//! worker thread.

use std::sync::{Arc, Mutex};

use cortex_workers::WorkerPool;
use tracing::Subscriber;
use tracing::span::{Attributes, Id};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A span's name and its parent's.
type Edge = (String, Option<String>);

/// Records every new span's edge.
#[derive(Clone, Default)]
struct Parents(Arc<Mutex<Vec<Edge>>>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Parents {
    fn on_new_span(&self, _: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let span = ctx.span(id).expect("a new span is registered");
        let parent = span.parent().map(|parent| parent.name().to_owned());
        self.0
            .lock()
            .unwrap()
            .push((span.name().to_owned(), parent));
    }
}

#[test]
fn a_job_span_continues_the_submitters_span() {
    let parents = Parents::default();
    let subscriber = tracing_subscriber::registry().with(parents.clone());
    // Global: the span is created on the worker thread.
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let pool = WorkerPool::builder("traced").workers(1).build().unwrap();
    let request = tracing::info_span!("request");
    let inner = request.in_scope(|| {
        pool.try_submit(|| {
            // The job's own spans nest under it too.
            tracing::info_span!("inside").in_scope(|| ());
            tracing::Span::current().metadata().map(|meta| meta.name())
        })
        .unwrap()
    });
    assert_eq!(inner.wait(), Ok(Some("cortex_worker.job")));
    let seen = parents.0.lock().unwrap().clone();
    assert!(
        seen.contains(&("cortex_worker.job".to_owned(), Some("request".to_owned()))),
        "{seen:?}"
    );
    assert!(
        seen.contains(&("inside".to_owned(), Some("cortex_worker.job".to_owned()))),
        "{seen:?}"
    );
}
