//! `GET /openapi.json`: the Hub's OpenAPI document, validated by a tool
//! that is not ours. Python's `openapi-spec-validator` checks it against
//! the OpenAPI 3.1 specification (its JSON Schema and the rules a schema
//! cannot say, such as path parameters declared once and `$ref`s that
//! resolve); every error it reports is listed, and there must be none.
//! The Hub's own tests compare the document with the served routes but
//! cannot validate it (no JSON Schema crate is in the tree): this is where
//! a client generator's view of it is checked.
//!
//! Also, as the Hub's tests do, from outside: the document's paths are
//! exactly the route index's at `GET /api`. The document is kept as
//! `target/conformance/openapi.json`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::client::Client;
use super::json::{field, str_field};
use super::tools::ensure_openapi_spec_validator;

/// Validates the file named by its argument as OpenAPI 3.1; prints one
/// `location: message` line per error on stdout, exits 1 if any.
const PYTHON_VALIDATE: &str = r#"
import json, sys
from openapi_spec_validator import OpenAPIV31SpecValidator
with open(sys.argv[1], encoding="utf-8") as f:
    spec = json.load(f)
errors = list(OpenAPIV31SpecValidator(spec).iter_errors())
for error in errors:
    where = "/".join(str(p) for p in error.absolute_path) or "(document)"
    print(f"{where}: {error.message}")
sys.exit(1 if errors else 0)
"#;

/// `routes` are the paths of the index at `GET /api`.
pub(crate) fn check(client: &Client, routes: &[String], out_dir: &Path) -> Result<(), String> {
    ensure_openapi_spec_validator()?;
    let reply = client.get("/openapi.json")?;
    reply.expect_status(200)?;
    if reply.header("content-type") != Some("application/json") {
        return Err(format!("GET /openapi.json is not JSON:\n{reply}"));
    }
    let document = reply.json()?;
    let version = str_field(&document, "openapi")?;
    if !version.starts_with("3.1.") {
        return Err(format!(
            "GET /openapi.json: OpenAPI {version}, expected 3.1.x"
        ));
    }
    let path = out_dir.join("openapi.json");
    std::fs::write(&path, &reply.body).map_err(|e| format!("{}: {e}", path.display()))?;

    eprintln!("$ python3 -c <OpenAPIV31SpecValidator> {}", path.display());
    let output = Command::new("python3")
        .args(["-c", PYTHON_VALIDATE])
        .arg(&path)
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !output.status.success() {
        let errors = String::from_utf8_lossy(&output.stdout);
        return Err(format!(
            "openapi-spec-validator rejected GET /openapi.json ({}, {} errors):\n{errors}{}",
            path.display(),
            errors.lines().count(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }

    let documented: BTreeSet<&str> = field(&document, "paths")?
        .as_object()
        .ok_or_else(|| format!("GET /openapi.json: `paths` is not an object: {document}"))?
        .keys()
        .map(String::as_str)
        .collect();
    let indexed: BTreeSet<&str> = routes.iter().map(String::as_str).collect();
    if documented != indexed {
        return Err(format!(
            "GET /openapi.json and GET /api disagree: documented but not in the index {:?}; in the index but not documented {:?}",
            documented.difference(&indexed).collect::<Vec<_>>(),
            indexed.difference(&documented).collect::<Vec<_>>()
        ));
    }
    let operations: usize = document["paths"]
        .as_object()
        .into_iter()
        .flat_map(|paths| paths.values())
        .filter_map(Value::as_object)
        .map(|item| {
            item.keys()
                .filter(|k| {
                    [
                        "get", "put", "post", "delete", "options", "head", "patch", "trace",
                    ]
                    .contains(&k.as_str())
                })
                .count()
        })
        .sum();
    eprintln!(
        "openapi: GET /openapi.json is valid OpenAPI {version} for openapi-spec-validator (0 errors); its {} paths ({operations} operations) are exactly the index's",
        documented.len()
    );
    Ok(())
}
