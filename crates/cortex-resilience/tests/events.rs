//! Events of the retry and the bulkhead reach both kinds of listener:
//! broadcast subscribers and registered callbacks, in the order they
//! happened.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cortex_resilience::{Backoff, Bulkhead, BulkheadEvent, ResilienceError, Retry, RetryEvent};
use tokio::sync::broadcast::error::TryRecvError;

fn drain<T: Clone>(receiver: &mut tokio::sync::broadcast::Receiver<T>) -> Vec<T> {
    let mut events = Vec::new();
    loop {
        match receiver.try_recv() {
            Ok(event) => events.push(event),
            Err(TryRecvError::Empty) => return events,
            Err(error) => panic!("{error}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn retry_events_tell_each_retry_and_how_the_call_ended() {
    let retry = Retry::builder("fetch")
        .max_attempts(2)
        .backoff(Backoff::Fixed {
            delay: Duration::from_millis(5),
        })
        .budget(None)
        .build()
        .unwrap();
    let mut subscriber = retry.subscribe();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    retry.on_event(move |event| log.lock().unwrap().push(event.clone()));

    let ok = retry.execute(|| async { Ok::<_, ()>(1) }).await;
    assert_eq!(ok, Ok(1));
    let failed = retry.execute(|| async { Err::<(), _>("down") }).await;
    assert_eq!(failed, Err(ResilienceError::Inner("down")));

    let expected = vec![
        RetryEvent::Success { attempts: 1 },
        RetryEvent::Retry {
            attempt: 1,
            delay: Duration::from_millis(5),
        },
        RetryEvent::Error { attempts: 2 },
    ];
    assert_eq!(drain(&mut subscriber), expected);
    assert_eq!(*seen.lock().unwrap(), expected);
    let stats = retry.stats();
    assert_eq!(
        (stats.successful_without_retry, stats.failed_with_retry),
        (1, 1)
    );
}

#[tokio::test]
async fn bulkhead_events_tell_permitted_rejected_and_finished_calls() {
    let bulkhead = Bulkhead::builder("db")
        .max_concurrent_calls(1)
        .build()
        .unwrap();
    let mut subscriber = bulkhead.subscribe();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    bulkhead.on_event(move |event| log.lock().unwrap().push(*event));

    let permit = bulkhead.try_acquire().unwrap();
    assert!(bulkhead.try_acquire().is_err());
    drop(permit);

    let expected = vec![
        BulkheadEvent::CallPermitted,
        BulkheadEvent::CallRejected,
        BulkheadEvent::CallFinished,
    ];
    assert_eq!(drain(&mut subscriber), expected);
    assert_eq!(*seen.lock().unwrap(), expected);
}
