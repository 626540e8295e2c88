//! `GET /openapi.json`: the Hub's OpenAPI 3.1 document describes exactly
//! the routes it serves (the index at `GET /api`), every documented method
//! is served, and the schemas match the JSON the Hub really sends. Served
//! on a real loopback socket, spoken to by a real HTTP client.
//!
//! The document is not validated against the OpenAPI 3.1 meta-schema here
//! (no JSON Schema crate is in the tree); `openapi-spec-validator` (Python)
//! accepts it.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use cortex_hub::{Hub, HubConfig};
use reqwest::{Client, Method, Response, StatusCode, header};
use serde_json::{Map, Value, json};

/// A served Hub and a client bound to its address.
struct Served {
    addr: SocketAddr,
    client: Client,
}

impl Served {
    async fn start(config: HubConfig) -> Self {
        let hub = Hub::new(config).expect("the hub starts");
        let router = hub.router().expect("the hub builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self {
            addr,
            client: Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let response = self.get(path).await;
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    async fn document(&self) -> Value {
        let response = self.get("/openapi.json").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/json",
            "{response:?}"
        );
        response.json().await.unwrap()
    }
}

/// A path template with its parameters filled in.
fn concrete(path: &str) -> String {
    path.replace("{id}", "1")
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

#[tokio::test]
async fn the_document_describes_exactly_the_indexed_routes() {
    let hub = Served::start(HubConfig::default()).await;
    let document = hub.document().await;
    let version = document["openapi"].as_str().unwrap();
    assert!(version.starts_with("3.1"), "{version}");
    assert_eq!(document["info"]["title"], "Cortex Hub");
    assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(document["info"]["description"].is_string());

    let (status, index) = hub.get_json("/api").await;
    assert_eq!(status, StatusCode::OK);
    let indexed: BTreeSet<&str> = index["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|route| route["path"].as_str().unwrap())
        .collect();
    let paths = document["paths"].as_object().unwrap();
    let documented: BTreeSet<&str> = paths.keys().map(String::as_str).collect();
    assert!(indexed.contains("/openapi.json"), "{indexed:?}");
    assert_eq!(
        documented.difference(&indexed).collect::<Vec<_>>(),
        Vec::<&&str>::new(),
        "documented but not routed"
    );
    assert_eq!(
        indexed.difference(&documented).collect::<Vec<_>>(),
        Vec::<&&str>::new(),
        "routed but not documented"
    );

    let mut operation_ids = BTreeSet::new();
    for (path, item) in paths {
        let item = item.as_object().unwrap();
        let methods: Vec<&str> = METHODS
            .into_iter()
            .filter(|method| item.contains_key(*method))
            .collect();
        assert!(!methods.is_empty(), "{path} has no operation");
        for method in methods {
            let operation = &item[method];
            let id = operation["operationId"].as_str().unwrap();
            assert!(operation_ids.insert(id), "operationId {id} is not unique");
            // Every path parameter of the template is declared.
            for parameter in path.split('/').filter(|s| s.starts_with('{')) {
                let name = parameter.trim_matches(['{', '}']);
                assert!(
                    operation["parameters"]
                        .as_array()
                        .is_some_and(|parameters| parameters
                            .iter()
                            .any(|p| p["name"] == name && p["in"] == "path")),
                    "{method} {path}: no path parameter {name}"
                );
            }
            assert!(
                operation["responses"]
                    .as_object()
                    .is_some_and(|r| !r.is_empty()),
                "{method} {path}: no responses"
            );
            // The documented method is served: the handler answers, even if
            // only to refuse the empty request, never the 405 fallback.
            let response = hub
                .client
                .request(
                    Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                    hub.url(&concrete(path)),
                )
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .unwrap();
            assert_ne!(
                response.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is documented but not served"
            );
            // Streams never end: dropping the response closes them.
            drop(response);
        }
    }
}

#[tokio::test]
async fn errors_are_problems_and_every_reference_resolves() {
    let hub = Served::start(HubConfig::default()).await;
    let document = hub.document().await;
    let schemas = document["components"]["schemas"].as_object().unwrap();
    let problem = &schemas["Problem"];
    for member in ["type", "title", "status", "detail"] {
        assert!(
            problem["required"]
                .as_array()
                .unwrap()
                .contains(&json!(member)),
            "{problem}"
        );
    }
    for member in ["errors", "retry_after", "reason", "policy"] {
        assert!(problem["properties"].get(member).is_some(), "{problem}");
    }
    // Every `$ref` names a schema that is there.
    let mut refs = Vec::new();
    collect_refs(&document, &mut refs);
    assert!(!refs.is_empty());
    for reference in refs {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{reference} is not a local schema"));
        assert!(schemas.contains_key(name), "{reference} does not resolve");
    }
    // A problem+json answer is always a `Problem`.
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                if let Some(content) = response["content"].get("application/problem+json") {
                    assert_eq!(
                        content["schema"]["$ref"], "#/components/schemas/Problem",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn the_order_schemas_match_what_the_hub_sends() {
    let hub = Served::start(HubConfig::default()).await;
    let document = hub.document().await;
    let post = |body: &'static str| {
        hub.client
            .post(hub.url("/api/orders"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
    };

    let accepted = post(r#"{"item":"book","quantity":2}"#).await.unwrap();
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    matches(&document, "OrderAccepted", &accepted.json().await.unwrap());
    let declined = post(r#"{"item":"lamp","fail_payment":true}"#)
        .await
        .unwrap();
    assert_eq!(declined.status(), StatusCode::ACCEPTED);
    for id in [1, 2] {
        let mut order = Value::Null;
        for _ in 0..200 {
            order = hub.get_json(&format!("/api/orders/{id}")).await.1;
            if order["state"] == "completed" || order["state"] == "failed" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        matches(&document, "OrderView", &order);
        let (status, log) = hub.get_json(&format!("/api/orders/{id}/events")).await;
        assert_eq!(status, StatusCode::OK);
        matches(&document, "OrderLog", &log);
        let events = log["events"].as_array().unwrap();
        assert!(events.len() >= 4, "{log}");
        for event in events {
            matches(&document, "OrderEvent", event);
        }
    }

    // Refusals: a field error and an unknown order.
    let invalid = post(r#"{"item":"","quantity":0}"#).await.unwrap();
    assert_eq!(invalid.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let invalid: Value = invalid.json().await.unwrap();
    assert_eq!(invalid["errors"].as_array().unwrap().len(), 2, "{invalid}");
    matches(&document, "Problem", &invalid);
    let (status, missing) = hub.get_json("/api/orders/999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    matches(&document, "Problem", &missing);
}

fn collect_refs<'a>(value: &'a Value, refs: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                refs.push(reference);
            }
            map.values().for_each(|value| collect_refs(value, refs));
        }
        Value::Array(values) => values.iter().for_each(|value| collect_refs(value, refs)),
        _ => {}
    }
}

/// Panics unless `value` matches the component schema `name` exactly: the
/// keywords the Hub's schemas use, and no member that the schema (with its
/// `allOf` parts and its matching `oneOf` branch) does not declare.
fn matches(document: &Value, name: &str, value: &Value) {
    let schema = json!({ "$ref": format!("#/components/schemas/{name}") });
    if let Err(error) = check(document, &schema, value, true) {
        panic!("{value} is not a {name}: {error}");
    }
}

fn resolve<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.strip_prefix("#/components/schemas/").unwrap();
            &document["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// The members `schema` declares for `value`, or where `value` fails it.
/// `whole`: the schema describes the whole value (not an `allOf` part or a
/// `oneOf` branch), so an object may have no other member.
fn check(
    document: &Value,
    schema: &Value,
    value: &Value,
    whole: bool,
) -> Result<BTreeSet<String>, String> {
    let schema = resolve(document, schema);
    let mut declared = BTreeSet::new();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        declared.extend(check(document, part, value, false)?);
    }
    if let Some(branches) = schema["oneOf"].as_array() {
        let matching: Vec<BTreeSet<String>> = branches
            .iter()
            .filter_map(|branch| check(document, branch, value, false).ok())
            .collect();
        match matching.as_slice() {
            [one] => declared.extend(one.iter().cloned()),
            _ => return Err(format!("{} oneOf branches match", matching.len())),
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(one) => vec![one],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let actual = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(number) if number.is_u64() || number.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let integer_as_number = actual == "integer" && types.contains(&"number");
    if !types.is_empty() && !types.contains(&actual) && !integer_as_number {
        return Err(format!("{value} is a {actual}, not {types:?}"));
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        return Err(format!("{value} is not one of {allowed:?}"));
    }
    if let (Some(minimum), Some(number)) = (schema["minimum"].as_f64(), value.as_f64())
        && number < minimum
    {
        return Err(format!("{value} is below {minimum}"));
    }
    if let (Some(items), Value::Array(values)) = (schema.get("items"), value) {
        for item in values {
            check(document, items, item, true)?;
        }
    }
    if let Value::Object(members) = value {
        for required in schema["required"].as_array().into_iter().flatten() {
            let required = required.as_str().unwrap();
            if !members.contains_key(required) {
                return Err(format!("{required} is missing"));
            }
        }
        let empty = Map::new();
        for (member, property) in schema["properties"].as_object().unwrap_or(&empty) {
            if let Some(member_value) = members.get(member) {
                check(document, property, member_value, true)
                    .map_err(|error| format!("{member}: {error}"))?;
            }
            declared.insert(member.clone());
        }
        // A free-form object (no members declared) may hold anything.
        if whole && !declared.is_empty() {
            let undeclared: Vec<&String> = members
                .keys()
                .filter(|member| !declared.contains(*member))
                .collect();
            if !undeclared.is_empty() {
                return Err(format!("undeclared members {undeclared:?}"));
            }
        }
    }
    Ok(declared)
}
