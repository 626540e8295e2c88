//! Prints an exposition that exercises every metric type, the escaping
//! rules and the cardinality guard: `cargo run -p cortex-metrics --example
//! exposition -- [text|openmetrics]`.
//!
//! `cargo xtask conformance` feeds its output to promtool and to Python's
//! parsers and checks that the tricky label value survives the round trip.

use cortex_metrics::{Buckets, Format, MetricsError, MetricsRegistry, ProcessCollector};

/// A label value with every character the grammar reserves, plus non-ASCII.
pub const TRICKY_VALUE: &str = "say \"hi\" \\ C:\\path\nnext line ✓";

fn main() -> Result<(), MetricsError> {
    let format = match std::env::args().nth(1).as_deref() {
        Some("openmetrics") => Format::OpenMetrics,
        Some("text") | None => Format::Prometheus,
        Some(other) => {
            eprintln!("unknown format {other:?}; use text or openmetrics");
            std::process::exit(2);
        }
    };
    let registry = MetricsRegistry::builder().max_series_per_family(5).build();
    registry.register_collector(ProcessCollector::new());

    let escaped = registry.counter_family(
        "demo_escaping",
        "Help with \"quotes\", a \\ backslash\nand a newline.",
        ["value"],
    )?;
    escaped.with_labels([TRICKY_VALUE]).inc();
    escaped.with_labels([""]).inc_by(2);

    let temperature = registry.gauge_f64("demo_temperature_celsius", "A float gauge.")?;
    temperature.set(-12.5);
    let queue = registry.gauge("demo_queue_depth", "An integer gauge.")?;
    queue.set(-3);
    let special =
        registry.gauge_f64_family("demo_special_values", "Non-finite values.", ["kind"])?;
    special.with_labels(["nan"]).set(f64::NAN);
    special.with_labels(["inf"]).set(f64::INFINITY);
    special.with_labels(["neg_inf"]).set(f64::NEG_INFINITY);

    let sizes = registry.histogram_family(
        "demo_payload_bytes",
        "A histogram with custom buckets.",
        ["route"],
        Buckets::exponential(64.0, 4.0, 6)?.bounds(),
    )?;
    for (i, size) in [10.0, 100.0, 5_000.0, 1e9, f64::NAN]
        .into_iter()
        .enumerate()
    {
        sizes
            .with_labels([if i % 2 == 0 { "/a" } else { "/b/{id}" }])
            .observe(size);
    }

    // Past the cap of 5: these fold into the overflow series.
    let users =
        registry.counter_family("demo_requests_by_user", "Unbounded on purpose.", ["user"])?;
    for user in 0..50 {
        users.with_labels([&format!("user-{user}")]).inc();
    }

    print!("{}", registry.encode(format));
    Ok(())
}
