//! `TracingGuard::install_subscriber`: the process-wide subscriber is
//! installed once; a bad filter and a second install are typed errors.
//! (Its own test binary: the global subscriber cannot be uninstalled.)

use cortex_trace::{Exporter, LogFormat, MemoryExporter, TraceError, TracingBuilder};

#[test]
fn the_subscriber_installs_once_and_rejects_bad_filters() {
    let exporter = MemoryExporter::new();
    let bad = TracingBuilder::from_env(|_| None)
        .log_filter("info,[unclosed")
        .build()
        .unwrap();
    let error = bad.install_subscriber().unwrap_err();
    assert!(matches!(error, TraceError::Filter(_)), "{error:?}");
    assert!(
        error.to_string().starts_with("invalid log filter"),
        "{error}"
    );

    let guard = TracingBuilder::from_env(|_| None)
        .service_name("subscriber-test")
        .log_format(LogFormat::Json)
        .log_filter("debug")
        .exporter(Exporter::Memory(exporter.clone()))
        .build()
        .unwrap();
    guard.install_subscriber().unwrap();

    // `tracing` spans now become OpenTelemetry spans of the guard's provider.
    tracing::info_span!("reconcile").in_scope(|| tracing::info!("inside"));
    let names: Vec<String> = exporter
        .spans()
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(names, ["reconcile"]);

    let again = guard.install_subscriber().unwrap_err();
    assert!(
        matches!(again, TraceError::SubscriberAlreadySet),
        "{again:?}"
    );
}
