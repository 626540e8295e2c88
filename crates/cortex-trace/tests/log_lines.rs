//! `TraceIdFormat` as a user installs it: JSON log lines keep each field's
//! type, so log pipelines can filter on numbers and booleans.

use std::io;
use std::sync::{Arc, Mutex};

use cortex_trace::{LogFormat, TraceIdFormat};
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn json_line(f: impl FnOnce()) -> serde_json::Value {
    let out = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .event_format(TraceIdFormat::new(LogFormat::Json))
        .with_writer(out.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    serde_json::from_str(text.trim()).unwrap()
}

#[test]
fn json_lines_keep_numbers_booleans_and_strings_typed() {
    let line = json_line(|| {
        let route: &str = "/orders";
        tracing::warn!(
            attempts = 3_u64,
            delta = -2_i64,
            ratio = 0.25_f64,
            retried = true,
            route,
            "upstream slow"
        );
    });
    assert_eq!(line["attempts"], 3);
    assert_eq!(line["delta"], -2);
    assert_eq!(line["ratio"], 0.25);
    assert_eq!(line["retried"], true);
    assert_eq!(line["route"], "/orders");
    assert_eq!(line["message"], "upstream slow");
    assert_eq!(line["level"], "WARN");
    assert_eq!(line["target"], "log_lines");
    // Outside a traced request there is no trace to name.
    assert!(line.get("trace_id").is_none(), "{line}");
    assert!(line.get("span_id").is_none(), "{line}");
}

#[test]
fn debug_formatted_fields_become_strings() {
    #[derive(Debug)]
    #[allow(dead_code)]
    struct Order {
        id: u32,
    }
    let line = json_line(|| tracing::info!(order = ?Order { id: 7 }, "paid"));
    assert_eq!(line["order"], "Order { id: 7 }");
}
