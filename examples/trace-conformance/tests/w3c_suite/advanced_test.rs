//! `class AdvancedTest(TestBase)` of w3c/trace-context `test/test.py`
//! (Level 2): the service is asked to call back three times per request.

use std::collections::HashSet;

use crate::harness::{Harness, TRACE_ID, get_traceparent};

/// Sends `headers` asking for three callbacks; the trace and parent ids
/// the callbacks carried.
async fn three_callbacks(headers: &[(&str, &str)]) -> (HashSet<String>, HashSet<String>) {
    let harness = Harness::start().await;
    let mut trace_ids = HashSet::new();
    let mut parent_ids = HashSet::new();
    for callback in harness.make_request(headers, 3).await {
        let traceparent = get_traceparent(&callback);
        trace_ids.insert(traceparent.trace_id);
        parent_ids.insert(traceparent.parent_id);
    }
    (trace_ids, parent_ids)
}

/// "harness sends a valid traceparent and asks vendor service to callback
/// multiple times; expects the trace_id to be inherited by all the callbacks"
#[tokio::test]
async fn test_multiple_requests_with_valid_traceparent() {
    let (trace_ids, parent_ids) = three_callbacks(&[(
        "traceparent",
        "00-12345678901234567890123456789012-1234567890123456-01",
    )])
    .await;
    assert_eq!(trace_ids.len(), 1);
    assert!(trace_ids.contains(TRACE_ID));
    assert_eq!(parent_ids.len(), 3);
}

/// "harness asks vendor service to callback multiple times; expects a
/// different parent_id each time"
#[tokio::test]
async fn test_multiple_requests_without_traceparent() {
    let (_, parent_ids) = three_callbacks(&[]).await;
    assert_eq!(parent_ids.len(), 3);
}

/// "harness sends an invalid traceparent and asks vendor service to
/// callback multiple times; expects new trace_id(s) generated"
#[tokio::test]
async fn test_multiple_requests_with_illegal_traceparent() {
    let (trace_ids, parent_ids) = three_callbacks(&[(
        "traceparent",
        "00-00000000000000000000000000000000-1234567890123456-01",
    )])
    .await;
    assert!(!trace_ids.contains("00000000000000000000000000000000"));
    assert_eq!(parent_ids.len(), 3);
}
