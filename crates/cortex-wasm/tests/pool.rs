//! The instance pool: an instance per worker thread, replaced after a
//! failure, 1 000 concurrent calls on 4 threads answered one by one.

use cortex_wasm::wasmer::Value;
use cortex_wasm::{WasmEngine, WasmError, WasmPool};
use cortex_workers::WorkerPool;

const HOSTILE: &str = include_str!("../guests/wat/hostile.wat");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_calls_on_four_threads_each_get_a_typed_answer() {
    let engine = WasmEngine::builder().fuel(200_000).build().unwrap();
    let module = engine.compile(HOSTILE).unwrap();
    let pool = WasmPool::new(
        module,
        WorkerPool::builder("wasm-test")
            .workers(4)
            .queue_capacity(1_000),
    )
    .unwrap();
    pool.warm().unwrap();
    assert_eq!(pool.stats().instances_created, 4, "one instance per thread");
    let calls: Vec<_> = (0..1_000_i32)
        .map(|n| {
            let pool = pool.clone();
            tokio::spawn(async move {
                if n % 50 == 0 {
                    // Every 50th call is an endless loop: it runs out of fuel
                    // and its instance is replaced.
                    pool.call(|instance| instance.call("spin", &[]))
                        .await
                        .map(|_| None)
                } else {
                    pool.call(move |instance| instance.call("add", &[Value::I32(n), Value::I32(1)]))
                        .await
                        .map(|values| Some(values.to_vec()))
                }
                .map(|answer| (n, answer))
            })
        })
        .collect();
    let (mut added, mut exhausted) = (0, 0);
    for call in calls {
        match call.await.unwrap() {
            Ok((n, Some(values))) => {
                assert_eq!(values, [Value::I32(n + 1)]);
                added += 1;
            }
            Err(WasmError::Exhausted { .. }) => exhausted += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!((added, exhausted), (980, 20));
    let stats = pool.stats();
    assert_eq!(stats.calls, 1_000);
    assert_eq!(stats.failures.get("exhausted"), Some(&20));
    assert_eq!(
        stats.instances_replaced, 20,
        "a failed instance is never reused"
    );
    // Each replaced instance is made again when its thread gets the next
    // call: at most one per replacement, and at least the 4 warm ones plus
    // every replacement that was followed by a call on that thread.
    assert!((20..=24).contains(&stats.instances_created), "{stats:#?}");
    assert_eq!(
        stats.workers.completed, 1_004,
        "the calls and the 4 warm-up jobs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_overloaded_not_a_wait() {
    let engine = WasmEngine::builder().fuel(50_000_000).build().unwrap();
    let module = engine.compile(HOSTILE).unwrap();
    let pool = WasmPool::new(
        module,
        WorkerPool::builder("wasm-full")
            .workers(1)
            .queue_capacity(1),
    )
    .unwrap();
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.call(|instance| instance.call("spin", &[])).await })
        })
        .collect();
    let mut overloaded = 0;
    for call in calls {
        match call.await.unwrap() {
            Err(WasmError::Overloaded) => overloaded += 1,
            Err(WasmError::Exhausted { .. }) => {}
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert!(
        overloaded > 0,
        "16 calls cannot all fit one worker and one queue place"
    );
    let stats = pool.stats();
    assert_eq!(stats.workers.rejected, overloaded);
    assert_eq!(stats.calls + overloaded, 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_call_is_cancelled_and_never_runs() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let engine = WasmEngine::builder().fuel(2_000_000_000).build().unwrap();
    let pool = WasmPool::new(
        engine.compile(HOSTILE).unwrap(),
        WorkerPool::builder("wasm-drop").workers(1),
    )
    .unwrap();
    // Occupy the only worker until released.
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let release = Arc::new(AtomicBool::new(false));
    let hold = Arc::clone(&release);
    let busy = tokio::spawn({
        let pool = pool.clone();
        async move {
            pool.call(move |_| {
                started_tx.send(()).unwrap();
                while !hold.load(Ordering::SeqCst) {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Ok(())
            })
            .await
        }
    });
    tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
        .await
        .unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&ran);
    let queued = pool.call(move |_| {
        flag.store(true, Ordering::SeqCst);
        Ok(())
    });
    // Poll once so the call is queued, then drop it (a client hanging up).
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(20), queued)
            .await
            .is_err()
    );
    release.store(true, Ordering::SeqCst);
    busy.await.unwrap().unwrap();
    pool.workers()
        .shutdown(cortex_workers::Shutdown::Graceful {
            timeout: std::time::Duration::from_secs(5),
        })
        .await;
    assert!(!ran.load(Ordering::SeqCst), "the dropped call never ran");
    assert_eq!(pool.workers().stats().cancelled, 1);
}

#[cfg(all(unix, feature = "interrupt"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_stops_an_endless_loop_on_a_pool_thread() {
    let engine = WasmEngine::builder()
        .deadline(std::time::Duration::from_millis(100))
        .fuel(20_000_000_000)
        .build()
        .unwrap();
    let pool = WasmPool::new(
        engine.compile(HOSTILE).unwrap(),
        WorkerPool::builder("wasm-deadline").workers(1),
    )
    .unwrap();
    for _ in 0..3 {
        let answer = pool.call(|instance| instance.call("spin", &[])).await;
        assert!(
            matches!(answer, Err(WasmError::TimedOut { .. })),
            "{answer:?}"
        );
    }
}
