//! `shutdown_signal` resolves on SIGTERM (what Kubernetes and systemd
//! send). Its own test binary: the signal goes to this whole process.

use std::time::Duration;

#[tokio::test]
async fn sigterm_resolves_the_shutdown_signal() {
    let signal = tokio::spawn(cortex_serve::shutdown_signal());
    // Let the task install its handlers before the signal is sent.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!signal.is_finished(), "resolved without a signal");
    rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::TERM)
        .expect("signal this process");
    tokio::time::timeout(Duration::from_secs(5), signal)
        .await
        .expect("SIGTERM did not resolve shutdown_signal")
        .unwrap();
}
