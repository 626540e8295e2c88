//! `class TraceContext2Test(TestBase)` of w3c/trace-context `test/test.py`,
//! run when `SPEC_LEVEL >= 2` (added by w3c/trace-context#500).

use crate::harness::{Harness, TRACE_ID};

/// "harness sends a request with a traceparent with the random flag set;
/// expects a valid traceparent from the output header, with the random
/// flag set"
#[tokio::test]
async fn test_propagates_random_flag() {
    let harness = Harness::start().await;
    let (traceparent, _) = harness
        .make_single_request_and_get_tracecontext(&[(
            "traceparent",
            "00-12345678901234567890123456789012-1234567890123456-02",
        )])
        .await;
    assert_eq!(traceparent.trace_id, TRACE_ID);
    assert_ne!(traceparent.parent_id, "1234567890123456");
    assert_eq!(
        traceparent.trace_flags & 0x02,
        0x02,
        "random flag lost: flags {:02x}",
        traceparent.trace_flags
    );
}
