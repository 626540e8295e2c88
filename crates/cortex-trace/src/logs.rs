//! Log lines that carry the current trace: `trace_id` and `span_id` on
//! every event written inside a traced request.

use std::fmt::{self, Write as _};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::TraceContextExt;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// `2026-11-22T09:30:00.123Z  INFO target: message k=v trace_id=… span_id=…`
    #[default]
    Pretty,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message`,
    /// the event's fields, `trace_id`, `span_id`.
    Json,
}

/// The event formatter behind [`LogFormat`]; reads the trace from the
/// current OpenTelemetry context, which `HttpTraceLayer` makes current while
/// a request is handled.
#[derive(Debug, Clone, Copy)]
pub struct TraceIdFormat {
    format: LogFormat,
}

impl TraceIdFormat {
    /// A formatter in `format`.
    pub fn new(format: LogFormat) -> Self {
        Self { format }
    }
}

impl<S, N> FormatEvent<S, N> for TraceIdFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let cx = opentelemetry::Context::current();
        let span = cx.span();
        let context = span.span_context();
        let ids = context
            .is_valid()
            .then(|| (context.trace_id(), context.span_id()));
        let metadata = event.metadata();
        let timestamp = Timestamp(SystemTime::now());
        match self.format {
            LogFormat::Pretty => {
                // Written straight into the subscriber's line buffer: no
                // string is made for the time or the ids (this runs once
                // per access-log line, so once per request).
                write!(
                    writer,
                    "{timestamp} {:>5} {}: ",
                    metadata.level(),
                    metadata.target()
                )?;
                // The fields as tracing-subscriber's `DefaultFields` writes
                // them without colour (`message k=v k2="text"`), by a visitor
                // of our own: `DefaultFields` styles every name and `=`
                // through nu-ansi-term even when colour is off, which was a
                // tenth of an access-log line's cost.
                let mut fields = PlainFields {
                    writer: writer.by_ref(),
                    first: true,
                    result: Ok(()),
                };
                event.record(&mut fields);
                fields.result?;
                if let Some((trace_id, span_id)) = ids {
                    write!(writer, " trace_id={trace_id} span_id={span_id}")?;
                }
                writeln!(writer)
            }
            LogFormat::Json => {
                let mut fields = JsonFields(Map::new());
                event.record(&mut fields);
                let mut line = Map::new();
                line.insert("timestamp".into(), timestamp.to_string().into());
                line.insert("level".into(), metadata.level().as_str().into());
                line.insert("target".into(), metadata.target().into());
                for (key, value) in fields.0 {
                    line.insert(key, value);
                }
                if let Some((trace_id, span_id)) = ids {
                    line.insert("trace_id".into(), trace_id.to_string().into());
                    line.insert("span_id".into(), span_id.to_string().into());
                }
                writeln!(writer, "{}", Value::Object(line))
            }
        }
    }
}

/// `message k=v …`, as `DefaultFields` writes without colour.
struct PlainFields<'w> {
    writer: Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Visit for PlainFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // As `DefaultFields`: the error, then its chain of sources.
        match value.source() {
            Some(source) => {
                let mut sources = Vec::new();
                let mut next = Some(source);
                while let Some(error) = next {
                    sources.push(Escaped(error));
                    next = error.source();
                }
                self.record_debug(
                    field,
                    &format_args!(
                        "{} {}.sources={:?}",
                        Escaped(value),
                        field.name(),
                        DisplayList(&sources)
                    ),
                );
            }
            None => self.record_debug(field, &format_args!("{}", Escaped(value))),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        let name = field.name();
        // Fields tracing-log adds from `log` records' metadata, already
        // written as the line's target.
        if name.starts_with("log.") {
            return;
        }
        if !std::mem::take(&mut self.first) {
            self.result = self.writer.write_char(' ');
        }
        self.result = self.result.and_then(|()| match name {
            // Escaped, as `DefaultFields` does: a message built from
            // client input must not carry terminal escape sequences into
            // a log viewer.
            "message" => write!(self.writer, "{:?}", Escaped(value)),
            name => {
                let name = name.strip_prefix("r#").unwrap_or(name);
                write!(self.writer, "{name}={value:?}")
            }
        });
    }
}

/// Formats `T` with the C0 control characters terminals act on (ESC, BEL,
/// BS, FF, DEL) and the C1 range written as escapes, as tracing-subscriber
/// does for messages and errors.
struct Escaped<T>(T);

impl<T: fmt::Debug> fmt::Debug for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(EscapingWriter(f), "{:?}", self.0)
    }
}

impl<T: fmt::Display> fmt::Display for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(EscapingWriter(f), "{}", self.0)
    }
}

/// `[a, b]` of Display values, as `DefaultFields` lists error sources.
struct DisplayList<'a, T>(&'a [T]);

impl<T: fmt::Display> fmt::Debug for DisplayList<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for item in self.0 {
            list.entry(&format_args!("{item}"));
        }
        list.finish()
    }
}

struct EscapingWriter<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl fmt::Write for EscapingWriter<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for ch in s.chars() {
            match ch {
                '\x1b' => self.0.write_str("\\x1b")?,
                '\x07' => self.0.write_str("\\x07")?,
                '\x08' => self.0.write_str("\\x08")?,
                '\x0c' => self.0.write_str("\\x0c")?,
                '\x7f' => self.0.write_str("\\x7f")?,
                '\u{80}'..='\u{9f}' => write!(self.0, "\\u{{{:x}}}", ch as u32)?,
                _ => self.0.write_char(ch)?,
            }
        }
        Ok(())
    }
}

struct JsonFields(Map<String, Value>);

impl Visit for JsonFields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), format!("{value:?}").into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC) when displayed. Times outside
/// 1970..=9999, which humantime refuses to format, are clamped: logging
/// never panics on a badly set clock.
struct Timestamp(SystemTime);

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = UNIX_EPOCH + Duration::from_secs(253_402_300_799);
        fmt::Display::fmt(
            &humantime::format_rfc3339_millis(self.0.clamp(UNIX_EPOCH, last)),
            f,
        )
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

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

    fn capture(format: LogFormat, f: impl FnOnce()) -> String {
        let out = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .event_format(TraceIdFormat::new(format))
            .with_writer(out.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    fn traced(f: impl FnOnce()) {
        let span = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            true,
            TraceState::NONE,
        );
        let _attached = opentelemetry::Context::new()
            .with_remote_span_context(span)
            .attach();
        f();
    }

    #[test]
    fn json_lines_carry_the_trace() {
        let out = capture(LogFormat::Json, || {
            traced(|| tracing::info!(order = 42, "paid \"in full\""));
        });
        let line: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(line["message"], "paid \"in full\"");
        assert_eq!(line["order"], 42);
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(line["span_id"], "00f067aa0ba902b7");
    }

    #[test]
    fn pretty_lines_carry_the_trace_and_untraced_lines_do_not() {
        let out = capture(LogFormat::Pretty, || {
            traced(|| tracing::warn!(retry = 2, "slow upstream"));
            tracing::info!("outside any request");
        });
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].contains("WARN"), "{out}");
        assert!(lines[0].contains("slow upstream retry=2"), "{out}");
        assert!(
            lines[0]
                .ends_with("trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7"),
            "{out}"
        );
        assert!(!lines[1].contains("trace_id"), "{out}");
    }

    /// The pretty format writes fields exactly as tracing-subscriber's
    /// `DefaultFields` does without colour: the same text after the
    /// target, for a message, numbers, a quoted string, a `%` Display value,
    /// a raw identifier and a bool.
    #[test]
    fn pretty_fields_match_tracing_subscribers_default_fields() {
        #[derive(Debug)]
        struct Failure(&'static str, Option<Box<Failure>>);
        impl fmt::Display for Failure {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for Failure {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|e| e as _)
            }
        }
        fn emit() {
            let r#type = "order";
            let error = Failure(
                "upstream \x1b[31mdown",
                Some(Box::new(Failure("refused", None))),
            );
            tracing::info!(
                target: "t",
                status = 200,
                route = %"/api/echo/{id}",
                agent = "curl 8",
                r#type,
                ok = true,
                ratio = 0.5,
                error = &error as &(dyn std::error::Error + 'static),
                "request from \x1b[2J{}\u{9b}",
                "evil"
            );
        }
        let ours = capture(LogFormat::Pretty, emit);
        let out = Captured::default();
        let reference = tracing_subscriber::fmt()
            .with_ansi(false)
            .without_time()
            .with_level(false)
            .with_target(false)
            .with_writer(out.clone())
            .finish();
        tracing::subscriber::with_default(reference, emit);
        let theirs = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let ours_fields = ours.trim_end().split_once(" t: ").unwrap().1;
        assert_eq!(ours_fields, theirs.trim());
        assert_eq!(
            ours_fields,
            r#"request from \x1b[2Jevil\u{9b} status=200 route=/api/echo/{id} agent="curl 8" type="order" ok=true ratio=0.5 error=upstream \x1b[31mdown error.sources=[refused]"#
        );
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_millis() {
        let t = UNIX_EPOCH + Duration::from_millis(951_782_400_123);
        assert_eq!(Timestamp(t).to_string(), "2000-02-29T00:00:00.123Z");
        assert_eq!(
            Timestamp(UNIX_EPOCH).to_string(),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn timestamps_clamp_instead_of_panicking_outside_their_range() {
        let before_epoch = UNIX_EPOCH - Duration::from_millis(1);
        assert_eq!(
            Timestamp(before_epoch).to_string(),
            "1970-01-01T00:00:00.000Z"
        );
        let year_10000 = UNIX_EPOCH + Duration::from_secs(253_402_300_800);
        assert_eq!(
            Timestamp(year_10000).to_string(),
            "9999-12-31T23:59:59.000Z"
        );
    }
}
