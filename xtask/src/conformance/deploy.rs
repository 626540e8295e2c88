//! The operations kit in `docs/deploy/`, checked by the tools that read it
//! in production and against the live Hub, so a config that looks right
//! but queries a series the Hub never exposes, or probes a path it does
//! not serve, fails here rather than in a cluster.
//!
//! Before the Hub starts, [`check_static`]:
//! - promtool: `check config` on `prometheus.yml` (and the rule file it
//!   loads), `check rules` on `alerts.yml`, `test rules` on
//!   `alerts_test.yml`. Every alert has a `for:`, a `severity`, a summary,
//!   a description and a runbook link to its section of
//!   `docs/operations.md`, and unit tests where it fires and where it
//!   does not.
//! - The Grafana dashboard: every query on the `${datasource}` variable,
//!   and every query parsed by promtool (written out as recording rules,
//!   the dashboard's variables replaced).
//! - The Kubernetes manifests against the Kubernetes schemas that
//!   `kubernetes-validate --strict` bundles (unknown fields are errors).
//!   The ServiceMonitor is a CRD those schemas do not cover: its fields are
//!   checked here instead (it selects the Service and scrapes a named port
//!   of it at `/metrics`), as are the links between the manifests
//!   (selectors, ports, the Hub listening on every interface, the security
//!   context).
//! - The Dockerfile (Docker cannot run here): multi-stage, a Rust image at
//!   least the Hub's `rust-version`, a non-root user, `EXPOSE 3000`,
//!   `--addr 0.0.0.0:3000`.
//!
//! While the Hub runs, after the traffic checks, [`check_live`]:
//! - every probe path of the Deployment answers 200;
//! - every metric name the alert rules and the dashboard query is in the
//!   Hub's `/metrics` (as a sample, or as a `# TYPE` line of a family that
//!   has no series yet);
//! - a real Prometheus server (Debian's `prometheus`) runs `prometheus.yml`
//!   with the target rewritten to the Hub and 1 s intervals: `up` is 1,
//!   the request rate is above 0, breaker and actor series are stored,
//!   every alert rule is loaded and evaluates without error, and so does
//!   every dashboard query. It is stopped on every path.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::client::Client;
use super::tools;
use crate::process::free_loopback_addr;
use crate::{exec, root};

/// Where the kit lives, relative to the repository root.
const DEPLOY: &str = "docs/deploy";
/// The scrape job the rules and the dashboard select.
const JOB: &str = "cortex-hub";
/// The port the Hub listens on in a container.
const PORT: u64 = 3000;
/// The ServiceMonitor: a CRD, so not schema-validated.
const SERVICE_MONITOR: &str = "servicemonitor.yaml";
/// How long the Prometheus check may take in all.
const PROMETHEUS_TIMEOUT: Duration = Duration::from_secs(60);
/// How long Prometheus gets to exit after SIGTERM before SIGKILL.
const PROMETHEUS_STOP: Duration = Duration::from_secs(5);
/// Series Prometheus makes itself: never in a scrape.
const SYNTHETIC: &[&str] = &[
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
    "ALERTS",
    "ALERTS_FOR_STATE",
];

/// Turns each YAML document of `argv[1]` into JSON (PyYAML comes with
/// kubernetes-validate).
const PYTHON_YAML: &str = r#"
import json, sys, yaml
with open(sys.argv[1], encoding="utf-8") as f:
    json.dump([d for d in yaml.safe_load_all(f) if d is not None], sys.stdout)
"#;

/// A PromQL expression and where it comes from, for messages.
#[derive(Debug)]
struct Query {
    /// `alert CortexHubDown` or `panel "Request rate" query A`.
    source: String,
    expr: String,
}

/// The file checks: promtool, the dashboard, the manifests, the
/// Dockerfile.
pub(crate) fn check_static(out_dir: &Path) -> Result<(), String> {
    tools::ensure_kubernetes_validate()?;
    let alerts = check_prometheus_files()?;
    let queries = check_dashboard(out_dir)?;
    check_kubernetes()?;
    check_dockerfile()?;
    eprintln!(
        "deploy: prometheus.yml, {} alerts each tested firing and quiet, {} dashboard queries, the manifests and the Dockerfile are valid",
        alerts.len(),
        queries.len()
    );
    Ok(())
}

/// The live checks: probe paths, metric names, a real Prometheus.
pub(crate) fn check_live(client: &Client, hub: SocketAddr, out_dir: &Path) -> Result<(), String> {
    check_probes(client)?;
    let queries: Vec<Query> = alert_queries()?
        .into_iter()
        .chain(dashboard_queries(&dashboard()?)?)
        .collect();
    check_metric_names(client, &queries)?;
    tools::ensure_prometheus()?;
    check_prometheus(client, hub, out_dir, &queries)
}

// ---------------------------------------------------------------------
// Prometheus files

/// promtool on the three files, then the alerts' own conventions. Returns
/// the alert names.
fn check_prometheus_files() -> Result<Vec<String>, String> {
    let config = format!("{DEPLOY}/prometheus.yml");
    let rules = format!("{DEPLOY}/alerts.yml");
    let tests = format!("{DEPLOY}/alerts_test.yml");
    exec("promtool", &["check", "config", &config])?;
    exec("promtool", &["check", "rules", &rules])?;
    exec("promtool", &["test", "rules", &tests])?;

    let config_doc = yaml_document(&deploy_path("prometheus.yml"))?;
    scrape_job(&config_doc)?;
    let loads_rules = config_doc["rule_files"]
        .as_array()
        .is_some_and(|files| files.iter().any(|f| f == "alerts.yml"));
    if !loads_rules {
        return Err(format!("{config}: rule_files does not list alerts.yml"));
    }

    let guide = std::fs::read_to_string(root().join("docs/operations.md"))
        .map_err(|e| format!("docs/operations.md: {e}"))?;
    let mut names = Vec::new();
    for rule in alert_rules()? {
        let name = str_at(&rule, "alert", &rules)?;
        let context = format!("{rules}: alert {name}");
        if rule["for"].as_str().is_none_or(str::is_empty) {
            return Err(format!("{context}: no `for:` duration"));
        }
        let severity = rule["labels"]["severity"].as_str().unwrap_or_default();
        if !["critical", "warning", "info"].contains(&severity) {
            return Err(format!(
                "{context}: severity {severity:?} is not critical, warning or info"
            ));
        }
        for annotation in ["summary", "description", "runbook"] {
            if rule["annotations"][annotation]
                .as_str()
                .is_none_or(str::is_empty)
            {
                return Err(format!("{context}: no {annotation} annotation"));
            }
        }
        let runbook = format!("docs/operations.md#{}", name.to_lowercase());
        if rule["annotations"]["runbook"] != runbook.as_str() {
            return Err(format!(
                "{context}: the runbook annotation is not {runbook}"
            ));
        }
        if !guide
            .lines()
            .any(|line| line.trim() == format!("### {name}"))
        {
            return Err(format!(
                "{context}: docs/operations.md has no `### {name}` runbook section"
            ));
        }
        names.push(name.to_owned());
    }
    check_alert_tests(&names, &tests)?;
    Ok(names)
}

/// Every alert has a test case where it fires and one where it does not.
fn check_alert_tests(names: &[String], tests_path: &str) -> Result<(), String> {
    let tests = yaml_document(&deploy_path("alerts_test.yml"))?;
    let mut fires = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for case in tests["tests"].as_array().into_iter().flatten() {
        for test in case["alert_rule_test"].as_array().into_iter().flatten() {
            let name = test["alertname"].as_str().unwrap_or_default().to_owned();
            match test["exp_alerts"].as_array() {
                Some(expected) if !expected.is_empty() => fires.insert(name),
                _ => quiet.insert(name),
            };
        }
    }
    for name in names {
        if !fires.contains(name) {
            return Err(format!("{tests_path}: no test where {name} fires"));
        }
        if !quiet.contains(name) {
            return Err(format!("{tests_path}: no test where {name} stays quiet"));
        }
    }
    Ok(())
}

/// The rules of `alerts.yml` that are alerts.
fn alert_rules() -> Result<Vec<Value>, String> {
    let doc = yaml_document(&deploy_path("alerts.yml"))?;
    let rules: Vec<Value> = doc["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|group| group["rules"].as_array().cloned().unwrap_or_default())
        .filter(|rule| rule.get("alert").is_some())
        .collect();
    if rules.is_empty() {
        return Err(format!("{DEPLOY}/alerts.yml: no alert rules"));
    }
    Ok(rules)
}

fn alert_queries() -> Result<Vec<Query>, String> {
    alert_rules()?
        .iter()
        .map(|rule| {
            let name = str_at(rule, "alert", "alerts.yml")?;
            Ok(Query {
                source: format!("alert {name}"),
                expr: str_at(rule, "expr", name)?.to_owned(),
            })
        })
        .collect()
}

/// The `cortex-hub` job of a Prometheus config.
fn scrape_job(config: &Value) -> Result<&Value, String> {
    config["scrape_configs"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|job| job["job_name"] == JOB)
        .ok_or_else(|| format!("{DEPLOY}/prometheus.yml: no scrape job {JOB:?}"))
}

// ---------------------------------------------------------------------
// The dashboard

fn dashboard() -> Result<Value, String> {
    let path = deploy_path("grafana-dashboard.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{DEPLOY}/grafana-dashboard.json: {e}"))
}

/// Structure, the datasource variable, and every query through promtool.
fn check_dashboard(out_dir: &Path) -> Result<Vec<Query>, String> {
    let file = format!("{DEPLOY}/grafana-dashboard.json");
    let dashboard = dashboard()?;
    let schema = dashboard["schemaVersion"].as_u64().unwrap_or_default();
    if schema < 36 {
        return Err(format!(
            "{file}: schemaVersion {schema} (expected 36 or later)"
        ));
    }
    let variables = dashboard["templating"]["list"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let datasource = variables.iter().any(|v| {
        v["name"] == "datasource" && v["type"] == "datasource" && v["query"] == "prometheus"
    });
    if !datasource {
        return Err(format!(
            "{file}: no `datasource` variable of type datasource for prometheus"
        ));
    }
    let mut ids = BTreeSet::new();
    for panel in panels(&dashboard) {
        let title = panel["title"].as_str().unwrap_or_default();
        if !ids.insert(panel["id"].as_u64().unwrap_or_default()) {
            return Err(format!(
                "{file}: panel {title:?}: duplicate id {}",
                panel["id"]
            ));
        }
        if panel["gridPos"].is_null() {
            return Err(format!("{file}: panel {title:?} has no gridPos"));
        }
        let targets = panel["targets"].as_array().cloned().unwrap_or_default();
        let uses_variable = |v: &Value| v["uid"] == "${datasource}" && v["type"] == "prometheus";
        if !targets.is_empty()
            && (!uses_variable(&panel["datasource"])
                || !targets.iter().all(|t| uses_variable(&t["datasource"])))
        {
            return Err(format!(
                "{file}: panel {title:?} does not query the ${{datasource}} variable"
            ));
        }
    }
    let queries = dashboard_queries(&dashboard)?;
    // promtool parses each query as a recording rule.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, query) in queries.iter().enumerate() {
        let expr = substitute_variables(query)?;
        // A JSON string is a YAML double-quoted scalar.
        rules.push_str(&format!(
            "      - record: dashboard:query_{i}\n        expr: {}\n",
            Value::from(expr)
        ));
    }
    let rules_path = out_dir.join("dashboard_rules.yml");
    std::fs::write(&rules_path, rules).map_err(|e| format!("{}: {e}", rules_path.display()))?;
    exec(
        "promtool",
        &["check", "rules", &rules_path.display().to_string()],
    )
    .map_err(|e| {
        format!(
            "{file}: a query does not parse ({} lists them in order): {e}",
            rules_path.display()
        )
    })?;
    Ok(queries)
}

/// Every panel, the ones inside collapsed rows too.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        all.push(panel);
        all.extend(panel["panels"].as_array().into_iter().flatten());
    }
    all
}

fn dashboard_queries(dashboard: &Value) -> Result<Vec<Query>, String> {
    let mut queries = Vec::new();
    for panel in panels(dashboard) {
        let title = panel["title"].as_str().unwrap_or_default();
        for target in panel["targets"].as_array().into_iter().flatten() {
            let id = target["refId"].as_str().unwrap_or("?");
            let source = format!("panel {title:?} query {id}");
            match target["expr"].as_str() {
                Some(expr) if !expr.trim().is_empty() => queries.push(Query {
                    source,
                    expr: expr.to_owned(),
                }),
                _ => {
                    return Err(format!(
                        "{DEPLOY}/grafana-dashboard.json: {source} has no expr"
                    ));
                }
            }
        }
    }
    if queries.is_empty() {
        return Err(format!("{DEPLOY}/grafana-dashboard.json: no queries"));
    }
    Ok(queries)
}

/// The query with the dashboard's variables as Grafana would fill them in
/// for the `cortex-hub` job, every instance, a 1 m rate window.
fn substitute_variables(query: &Query) -> Result<String, String> {
    let mut expr = query.expr.clone();
    for (variable, value) in [
        ("__rate_interval", "1m"),
        ("__interval", "1m"),
        ("__range", "1m"),
        ("job", JOB),
        ("instance", ".*"),
    ] {
        expr = expr
            .replace(&format!("${{{variable}}}"), value)
            .replace(&format!("${variable}"), value);
    }
    if expr.contains('$') {
        return Err(format!(
            "{DEPLOY}/grafana-dashboard.json: {} uses an unknown variable: {}",
            query.source, query.expr
        ));
    }
    Ok(expr)
}

// ---------------------------------------------------------------------
// Kubernetes

/// The manifests against the Kubernetes schemas, then what ties them
/// together.
fn check_kubernetes() -> Result<(), String> {
    let dir = deploy_path("k8s");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml") || name.ends_with(".yml"))
        .collect();
    files.sort();
    let validated: Vec<String> = files
        .iter()
        .filter(|name| *name != SERVICE_MONITOR)
        .map(|name| format!("{DEPLOY}/k8s/{name}"))
        .collect();
    let mut args = vec!["-m", "kubernetes_validate", "--strict"];
    args.extend(validated.iter().map(String::as_str));
    eprintln!("$ python3 {}", args.join(" "));
    let output = Command::new("python3")
        .args(&args)
        .current_dir(root())
        .output()
        .map_err(|e| format!("cannot run kubernetes_validate: {e}"))?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprint!("{said}");
    // A kind without a schema is only a warning (exit 0): here, an error.
    if !output.status.success() || said.contains("WARN") || said.contains("ERROR") {
        return Err(format!(
            "kubernetes-validate rejected the manifests:\n{said}"
        ));
    }

    let mut objects = BTreeMap::new();
    for name in &files {
        for doc in yaml_documents(&dir.join(name))? {
            let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
            if objects.insert(kind.clone(), doc).is_some() {
                return Err(format!("{DEPLOY}/k8s: two {kind} objects"));
            }
        }
    }
    let get = |kind: &str| {
        objects
            .get(kind)
            .ok_or_else(|| format!("{DEPLOY}/k8s: no {kind}"))
    };
    let deployment = get("Deployment")?;
    let service = get("Service")?;
    let monitor = get("ServiceMonitor")?;
    check_deployment(deployment)?;
    let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];

    // The Service selects the pods and targets the container's port.
    if !labels_match(&service["spec"]["selector"], pod_labels) {
        return Err("Service: its selector does not match the Deployment's pods".to_owned());
    }
    let service_ports = service["spec"]["ports"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for port in &service_ports {
        if !container_has_port(container, &port["targetPort"]) {
            return Err(format!(
                "Service: targetPort {} is not a port of the container",
                port["targetPort"]
            ));
        }
    }
    if let Ok(pdb) = get("PodDisruptionBudget")
        && !labels_match(&pdb["spec"]["selector"]["matchLabels"], pod_labels)
    {
        return Err("PodDisruptionBudget: its selector does not match the pods".to_owned());
    }
    if let Ok(hpa) = get("HorizontalPodAutoscaler")
        && hpa["spec"]["scaleTargetRef"]["name"] != deployment["metadata"]["name"]
    {
        return Err("HorizontalPodAutoscaler: it does not scale the Deployment".to_owned());
    }

    // The ServiceMonitor (no schema): its fields one by one.
    let context = format!("{DEPLOY}/k8s/{SERVICE_MONITOR}");
    if monitor["apiVersion"] != "monitoring.coreos.com/v1" {
        return Err(format!(
            "{context}: apiVersion is not monitoring.coreos.com/v1"
        ));
    }
    if monitor["metadata"]["name"]
        .as_str()
        .is_none_or(str::is_empty)
    {
        return Err(format!("{context}: no metadata.name"));
    }
    let selector = &monitor["spec"]["selector"]["matchLabels"];
    if !labels_match(selector, &service["metadata"]["labels"]) {
        return Err(format!(
            "{context}: spec.selector.matchLabels does not select the Service"
        ));
    }
    let endpoints = monitor["spec"]["endpoints"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if endpoints.is_empty() {
        return Err(format!("{context}: no spec.endpoints"));
    }
    for endpoint in &endpoints {
        let port = endpoint["port"].as_str().unwrap_or_default();
        if !service_ports.iter().any(|p| p["name"] == port) {
            return Err(format!(
                "{context}: endpoint port {port:?} is not a named port of the Service"
            ));
        }
        if endpoint["path"].as_str().unwrap_or("/metrics") != "/metrics" {
            return Err(format!("{context}: endpoint path is not /metrics"));
        }
        for field in ["interval", "scrapeTimeout"] {
            if let Some(value) = endpoint[field].as_str() {
                humantime::parse_duration(value)
                    .map_err(|e| format!("{context}: {field} {value:?}: {e}"))?;
            }
        }
        let known = [
            "port",
            "path",
            "interval",
            "scrapeTimeout",
            "scheme",
            "honorLabels",
            "relabelings",
            "metricRelabelings",
            "authorization",
            "bearerTokenSecret",
        ];
        if let Some(unknown) = endpoint
            .as_object()
            .into_iter()
            .flat_map(|o| o.keys())
            .find(|k| !known.contains(&k.as_str()))
        {
            return Err(format!("{context}: unexpected endpoint field {unknown:?}"));
        }
    }
    Ok(())
}

/// The Hub listens on every interface at [`PORT`], has all three probes
/// on that port, resources, and the restricted security context.
fn check_deployment(deployment: &Value) -> Result<(), String> {
    let context = format!("{DEPLOY}/k8s Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let containers = pod["containers"].as_array().cloned().unwrap_or_default();
    let [container] = &containers[..] else {
        return Err(format!("{context}: expected one container"));
    };
    if !labels_match(
        &deployment["spec"]["selector"]["matchLabels"],
        &deployment["spec"]["template"]["metadata"]["labels"],
    ) {
        return Err(format!(
            "{context}: the selector does not match the pod template"
        ));
    }
    let args: Vec<&str> = container["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let everywhere = format!("0.0.0.0:{PORT}");
    let by_flag = args
        .windows(2)
        .any(|w| w == ["--addr", everywhere.as_str()])
        || args.contains(&format!("--addr={everywhere}").as_str());
    let by_env = container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| e["name"] == "CORTEX_ADDR" && e["value"] == everywhere.as_str());
    if !by_flag && !by_env {
        return Err(format!(
            "{context}: the Hub binds 127.0.0.1 unless given --addr {everywhere} or CORTEX_ADDR"
        ));
    }
    if !container_has_port(container, &json!(PORT)) {
        return Err(format!("{context}: no containerPort {PORT}"));
    }
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        let get = &container[probe]["httpGet"];
        if get["path"].as_str().is_none() || !container_has_port(container, &get["port"]) {
            return Err(format!(
                "{context}: {probe} is not an httpGet on the container's port"
            ));
        }
    }
    for field in ["requests", "limits"] {
        if container["resources"][field]["memory"].is_null() {
            return Err(format!("{context}: no resources.{field}.memory"));
        }
    }
    let security = &container["securityContext"];
    let pod_security = &pod["securityContext"];
    let either = |field: &str| {
        if security[field].is_null() {
            pod_security[field].clone()
        } else {
            security[field].clone()
        }
    };
    let drops_all = security["capabilities"]["drop"]
        .as_array()
        .is_some_and(|d| d.iter().any(|c| c == "ALL"));
    for (ok, what) in [
        (either("runAsNonRoot") == true, "runAsNonRoot: true"),
        (
            security["readOnlyRootFilesystem"] == true,
            "readOnlyRootFilesystem: true",
        ),
        (
            security["allowPrivilegeEscalation"] == false,
            "allowPrivilegeEscalation: false",
        ),
        (drops_all, "capabilities.drop: [ALL]"),
        (
            either("seccompProfile")["type"] == "RuntimeDefault",
            "seccompProfile RuntimeDefault",
        ),
    ] {
        if !ok {
            return Err(format!("{context}: the container lacks {what}"));
        }
    }
    Ok(())
}

/// Every label of `selector` is in `labels` with the same value.
fn labels_match(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| &labels[k] == v))
}

/// `port` (a number or a name) is one of the container's ports.
fn container_has_port(container: &Value, port: &Value) -> bool {
    container["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|p| {
            (port.is_number() && p["containerPort"] == *port)
                || (port.is_string() && p["name"] == *port)
        })
}

/// The probe paths of the Deployment.
fn probe_paths() -> Result<Vec<String>, String> {
    let deployment = yaml_document(&deploy_path("k8s/deployment.yaml"))?;
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    ["startupProbe", "livenessProbe", "readinessProbe"]
        .iter()
        .map(|probe| {
            container[probe]["httpGet"]["path"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("{DEPLOY}/k8s/deployment.yaml: {probe} has no path"))
        })
        .collect()
}

// ---------------------------------------------------------------------
// The Dockerfile

/// What can be checked without Docker: the stages, the toolchain, the
/// user, the port and the listen address.
fn check_dockerfile() -> Result<(), String> {
    let file = format!("{DEPLOY}/Dockerfile");
    let text =
        std::fs::read_to_string(deploy_path("Dockerfile")).map_err(|e| format!("{file}: {e}"))?;
    let instructions: Vec<(String, String)> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let (op, rest) = line.split_once(char::is_whitespace)?;
            Some((op.to_uppercase(), rest.trim().to_owned()))
        })
        .collect();
    let froms: Vec<&str> = instructions
        .iter()
        .filter(|(op, _)| op == "FROM")
        .map(|(_, rest)| rest.as_str())
        .collect();
    if froms.len() < 2 {
        return Err(format!("{file}: not a multi-stage build"));
    }
    let rust_tag = froms[0]
        .strip_prefix("rust:")
        .ok_or_else(|| format!("{file}: the first stage is not a rust image"))?;
    let needed = hub_rust_version()?;
    let tag_version = |tag: &str| -> Vec<u64> {
        tag.split(['-', ' '])
            .next()
            .unwrap_or_default()
            .split('.')
            .map_while(|n| n.parse().ok())
            .collect()
    };
    if tag_version(rust_tag) < tag_version(&needed) {
        return Err(format!(
            "{file}: rust:{rust_tag} is older than the Hub's rust-version {needed}"
        ));
    }
    if !text.contains("cargo build --release") || !text.contains("-p cortex-hub") {
        return Err(format!("{file}: no `cargo build --release -p cortex-hub`"));
    }
    // The last stage's instructions.
    let last_stage = instructions
        .iter()
        .rposition(|(op, _)| op == "FROM")
        .map_or(&instructions[..], |i| &instructions[i..]);
    let user = last_stage
        .iter()
        .rev()
        .find(|(op, _)| op == "USER")
        .map(|(_, user)| user.as_str())
        .ok_or_else(|| format!("{file}: the runtime stage sets no USER"))?;
    let user_name = user.split(':').next().unwrap_or_default();
    if user_name == "root" || user_name == "0" {
        return Err(format!("{file}: the runtime stage runs as root"));
    }
    if !last_stage.iter().any(|(op, rest)| {
        op == "EXPOSE"
            && rest
                .split_whitespace()
                .any(|p| p == "3000" || p == "3000/tcp")
    }) {
        return Err(format!("{file}: no EXPOSE 3000"));
    }
    if !last_stage.iter().any(|(op, rest)| {
        (op == "CMD" || op == "ENTRYPOINT") && rest.contains("\"--addr\", \"0.0.0.0:3000\"")
    }) {
        return Err(format!(
            "{file}: the command does not pass --addr 0.0.0.0:3000"
        ));
    }
    Ok(())
}

/// `rust-version` of `examples/hub/Cargo.toml`.
fn hub_rust_version() -> Result<String, String> {
    let manifest = std::fs::read_to_string(root().join("examples/hub/Cargo.toml"))
        .map_err(|e| format!("examples/hub/Cargo.toml: {e}"))?;
    manifest
        .lines()
        .find_map(|line| {
            let value = line.trim().strip_prefix("rust-version")?.trim();
            Some(value.strip_prefix('=')?.trim().trim_matches('"').to_owned())
        })
        .ok_or_else(|| "examples/hub/Cargo.toml: no rust-version".to_owned())
}

// ---------------------------------------------------------------------
// Live: probes and metric names

/// Every probe path of the Deployment answers 200 on the live Hub.
fn check_probes(client: &Client) -> Result<(), String> {
    let paths = probe_paths()?;
    for path in &paths {
        client
            .get(path)?
            .expect_status(200)
            .map_err(|e| format!("{DEPLOY}/k8s/deployment.yaml probes {path}: {e}"))?;
    }
    eprintln!(
        "deploy: the Deployment's probes {} answer 200",
        paths.join(", ")
    );
    Ok(())
}

/// The names a scrape shows: sample names and `# TYPE` lines (with their
/// type).
#[derive(Debug, Default)]
struct Scraped {
    samples: BTreeSet<String>,
    types: BTreeMap<String, String>,
}

impl Scraped {
    fn parse(text: &str) -> Self {
        let mut scraped = Self::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut words = rest.split_whitespace();
                if let (Some(name), Some(kind)) = (words.next(), words.next()) {
                    scraped.types.insert(name.to_owned(), kind.to_owned());
                }
            } else if !line.starts_with('#') && !line.trim().is_empty() {
                let end = line.find(['{', ' ']).unwrap_or(line.len());
                scraped.samples.insert(line[..end].to_owned());
            }
        }
        scraped
    }

    /// `name` is a sample, a family, or a histogram's (or summary's)
    /// `_bucket`/`_count`/`_sum` whose family has no series yet.
    fn has(&self, name: &str) -> bool {
        if self.samples.contains(name) || self.types.contains_key(name) {
            return true;
        }
        ["_bucket", "_count", "_sum"].iter().any(|suffix| {
            name.strip_suffix(suffix).is_some_and(|stem| {
                self.types
                    .get(stem)
                    .is_some_and(|kind| kind == "histogram" || kind == "summary")
            })
        })
    }
}

/// Every metric name of every query is in the Hub's `/metrics`.
fn check_metric_names(client: &Client, queries: &[Query]) -> Result<(), String> {
    let reply = client.get("/metrics")?;
    reply.expect_status(200)?;
    let scraped = Scraped::parse(&String::from_utf8_lossy(&reply.body));
    let mut missing: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let mut checked = BTreeSet::new();
    for query in queries {
        let names = metric_names(&query.expr);
        if names.is_empty() {
            return Err(format!(
                "{}: no metric name found in {}",
                query.source, query.expr
            ));
        }
        for name in names {
            if SYNTHETIC.contains(&name.as_str()) {
                continue;
            }
            if !scraped.has(&name) {
                missing.entry(name.clone()).or_default().push(&query.source);
            }
            checked.insert(name);
        }
    }
    if !missing.is_empty() {
        let list: Vec<String> = missing
            .iter()
            .map(|(name, sources)| format!("  {name} (in {})", sources.join(", ")))
            .collect();
        return Err(format!(
            "the alert rules and the dashboard query series the Hub's /metrics does not have:\n{}",
            list.join("\n")
        ));
    }
    eprintln!(
        "deploy: all {} metric names of the alert rules and the dashboard are in the Hub's /metrics",
        checked.len()
    );
    Ok(())
}

/// PromQL keywords and aggregation operators, lower case (both are
/// case-insensitive; an aggregation may be followed by `by (...)` rather
/// than its `(`).
const PROMQL_KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "inf",
    "nan",
    "atan2",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];
/// Keywords followed by a parenthesised list of label names.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names a PromQL expression selects, crudely: identifiers
/// outside strings, label matchers (`{...}`), ranges (`[...]`), comments
/// and label lists (`by (...)`), that are not a keyword and not followed
/// by `(` (a function or an aggregation).
fn metric_names(expr: &str) -> Vec<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    // Index past the bracket matching the opener at `start`.
    let skip_group = |start: usize, open: char, close: char| -> usize {
        let mut depth = 0;
        let mut j = start;
        while j < chars.len() {
            match chars[j] {
                '"' | '\'' | '`' => j = skip_string(&chars, j) - 1,
                c if c == open => depth += 1,
                c if c == close => {
                    depth -= 1;
                    if depth == 0 {
                        return j + 1;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        chars.len()
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => i = skip_string(&chars, i),
            '{' => i = skip_group(i, '{', '}'),
            '[' => i = skip_group(i, '[', ']'),
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '$' => {
                i += 1;
                if chars.get(i) == Some(&'{') {
                    i = skip_group(i, '{', '}');
                } else {
                    while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                        i += 1;
                    }
                }
            }
            c if c.is_ascii_digit() || c == '.' => {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let ident: String = chars[start..i].iter().collect();
                let mut next = i;
                while next < chars.len() && chars[next].is_whitespace() {
                    next += 1;
                }
                let lower = ident.to_ascii_lowercase();
                if LABEL_LISTS.contains(&lower.as_str()) {
                    if chars.get(next) == Some(&'(') {
                        i = skip_group(next, '(', ')');
                    }
                } else if PROMQL_KEYWORDS.contains(&lower.as_str()) || chars.get(next) == Some(&'(')
                {
                    // A keyword, a function or an aggregation.
                } else if !names.contains(&ident) {
                    names.push(ident);
                }
            }
            _ => i += 1,
        }
    }
    names
}

/// Index past the string literal that starts at `start` (backslash escapes
/// except in backquoted raw strings).
fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut j = start + 1;
    while j < chars.len() {
        match chars[j] {
            '\\' if quote != '`' => j += 2,
            c if c == quote => return j + 1,
            _ => j += 1,
        }
    }
    chars.len()
}

// ---------------------------------------------------------------------
// Live: a real Prometheus

/// Debian's Prometheus as a child process; stopped (SIGTERM, then
/// SIGKILL) when dropped, so every path out of the check stops it.
#[derive(Debug)]
struct PrometheusProcess {
    child: Child,
    log: PathBuf,
}

impl PrometheusProcess {
    /// The end of its log, for messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Fails if Prometheus has exited.
    fn still_running(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "prometheus exited with {status}; its log ({}):\n{}",
                self.log.display(),
                self.log_tail()
            )),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Drop for PrometheusProcess {
    fn drop(&mut self) {
        crate::process::stop_by_pid(&mut self.child, PROMETHEUS_STOP);
    }
}

/// A Prometheus with `prometheus.yml` pointed at the Hub scrapes it,
/// stores what the checks need, and loads and evaluates every alert rule
/// and dashboard query without error.
fn check_prometheus(
    hub_client: &Client,
    hub: SocketAddr,
    out_dir: &Path,
    queries: &[Query],
) -> Result<(), String> {
    let started = Instant::now();
    let deadline = started + PROMETHEUS_TIMEOUT;
    let dir = out_dir.join("prometheus");
    let data = dir.join("data");
    if data.exists() {
        std::fs::remove_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    }
    std::fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    let config = dir.join("prometheus.yml");
    write_live_config(&config, hub)?;

    let addr = free_loopback_addr()?;
    let log = dir.join("prometheus.log");
    let log_file = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let log_err = log_file.try_clone().map_err(|e| e.to_string())?;
    let args = [
        format!("--config.file={}", config.display()),
        format!("--web.listen-address={addr}"),
        format!("--storage.tsdb.path={}", data.display()),
        "--log.level=warn".to_owned(),
    ];
    eprintln!("$ prometheus {}", args.join(" "));
    let child = Command::new("prometheus")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("cannot start prometheus: {e}"))?;
    let mut prometheus = PrometheusProcess { child, log };
    let api = Client::new(addr);

    // Ready: the TSDB is open and the config (and rules) loaded.
    loop {
        prometheus.still_running()?;
        if api.get("/-/ready").is_ok_and(|r| r.status.as_u16() == 200) {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "prometheus was not ready within {PROMETHEUS_TIMEOUT:?}; its log:\n{}",
                prometheus.log_tail()
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    let alert_names: BTreeSet<String> = alert_rules()?
        .iter()
        .filter_map(|rule| rule["alert"].as_str().map(str::to_owned))
        .collect();
    let selector = format!("job=\"{JOB}\"");
    let conditions: [(&str, String); 4] = [
        ("the Hub's up is 1", format!("up{{{selector}}} == 1")),
        (
            "a request rate above 0",
            format!("sum(rate(http_server_request_duration_seconds_count{{{selector}}}[1m])) > 0"),
        ),
        (
            "a circuit breaker state series",
            format!("cortex_circuitbreaker_state{{{selector}}}"),
        ),
        (
            "an actor series",
            format!("{{{selector}, __name__=~\"cortex_actor_.+\"}}"),
        ),
    ];
    loop {
        prometheus.still_running()?;
        // A little traffic each round keeps the request rate up.
        hub_client.get("/livez")?.expect_status(200)?;
        let mut waiting = None;
        for (what, query) in &conditions {
            let result = instant_query(&api, query)?;
            if result.as_array().is_none_or(Vec::is_empty) {
                waiting = Some(format!("{what} (`{query}` is empty)"));
                break;
            }
        }
        if waiting.is_none() {
            waiting = rules_waiting(&api, &alert_names)?;
        }
        match waiting {
            None => break,
            Some(what) if Instant::now() > deadline => {
                return Err(format!(
                    "prometheus: after {PROMETHEUS_TIMEOUT:?} still no {what}; its log:\n{}",
                    prometheus.log_tail()
                ));
            }
            Some(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }

    // Every dashboard query evaluates (an empty result is fine: some
    // series appear only with traffic this check does not make).
    for query in queries.iter().filter(|q| q.source.starts_with("panel")) {
        instant_query(&api, &substitute_variables(query)?)
            .map_err(|e| format!("{DEPLOY}/grafana-dashboard.json: {}: {e}", query.source))?;
    }
    drop(prometheus);
    eprintln!(
        "deploy: prometheus scraped the Hub (up 1, request rate > 0, breaker and actor series), loaded and evaluated {} alert rules and {} dashboard queries, in {:.1}s",
        alert_names.len(),
        queries
            .iter()
            .filter(|q| q.source.starts_with("panel"))
            .count(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `prometheus.yml` with the `cortex-hub` job pointed at `hub`, 1 s
/// intervals, and the rule file by absolute path. Written as JSON, which
/// YAML reads.
fn write_live_config(path: &Path, hub: SocketAddr) -> Result<(), String> {
    let mut config = yaml_document(&deploy_path("prometheus.yml"))?;
    scrape_job(&config)?;
    config["global"]["scrape_interval"] = json!("1s");
    config["global"]["scrape_timeout"] = json!("1s");
    config["global"]["evaluation_interval"] = json!("1s");
    config["rule_files"] = json!([deploy_path("alerts.yml").display().to_string()]);
    let jobs = config["scrape_configs"]
        .as_array_mut()
        .ok_or("prometheus.yml: no scrape_configs")?;
    jobs.retain(|job| job["job_name"] == JOB);
    for job in jobs {
        if let Some(job) = job.as_object_mut() {
            job.remove("scrape_interval");
            job.remove("scrape_timeout");
            job.insert(
                "static_configs".to_owned(),
                json!([{ "targets": [hub.to_string()] }]),
            );
        }
    }
    let text = serde_json::to_string_pretty(&config).map_err(|e| e.to_string())?;
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// `GET /api/v1/query`: the `data.result` of a successful answer.
fn instant_query(api: &Client, query: &str) -> Result<Value, String> {
    let reply = api.get(&format!("/api/v1/query?query={}", percent_encode(query)))?;
    let body = reply.json()?;
    if reply.status.as_u16() != 200 || body["status"] != "success" {
        return Err(format!("prometheus rejected `{query}`: {reply}"));
    }
    Ok(body["data"]["result"].clone())
}

/// What is still missing from `/api/v1/rules`: an alert not loaded, or
/// not yet evaluated (`health` ok), or one that failed to evaluate (an
/// error at once).
fn rules_waiting(api: &Client, alerts: &BTreeSet<String>) -> Result<Option<String>, String> {
    let reply = api.get("/api/v1/rules?type=alert")?;
    reply.expect_status(200)?;
    let body = reply.json()?;
    let mut healthy = BTreeSet::new();
    for group in body["data"]["groups"].as_array().into_iter().flatten() {
        for rule in group["rules"].as_array().into_iter().flatten() {
            let name = rule["name"].as_str().unwrap_or_default();
            let error = rule["lastError"].as_str().unwrap_or_default();
            if rule["health"] == "err" || !error.is_empty() {
                return Err(format!(
                    "prometheus: alert {name} failed to evaluate: {error}"
                ));
            }
            if rule["health"] == "ok" {
                healthy.insert(name.to_owned());
            }
        }
    }
    Ok(alerts
        .difference(&healthy)
        .next()
        .map(|name| format!("alert rule {name} loaded and evaluated")))
}

// ---------------------------------------------------------------------
// Helpers

fn deploy_path(relative: &str) -> PathBuf {
    root().join(DEPLOY).join(relative)
}

/// Every YAML document of a file, as JSON values.
fn yaml_documents(path: &Path) -> Result<Vec<Value>, String> {
    let output = Command::new("python3")
        .args(["-c", PYTHON_YAML])
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{}: not YAML: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    match serde_json::from_slice(&output.stdout) {
        Ok(Value::Array(docs)) => Ok(docs),
        Ok(other) => Err(format!("{}: unexpected {other}", path.display())),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// The one YAML document of a file.
fn yaml_document(path: &Path) -> Result<Value, String> {
    let mut docs = yaml_documents(path)?;
    match docs.len() {
        1 => Ok(docs.remove(0)),
        n => Err(format!(
            "{}: {n} YAML documents, expected 1",
            path.display()
        )),
    }
}

/// The string at `key`, or an error naming `context`.
fn str_at<'a>(value: &'a Value, key: &str, context: &str) -> Result<&'a str, String> {
    value[key]
        .as_str()
        .ok_or_else(|| format!("{context}: no {key}"))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_skip_functions_labels_ranges_and_keywords() {
        let expr = r#"histogram_quantile(0.99, sum by (job, le) (rate(http_server_request_duration_seconds_bucket{job="a", route=~"x|{y}"}[$__rate_interval])))
            / on (job) group_left (pool) cortex_worker_workers > bool 0.5 or absent(up{job="b"}) unless x:recorded offset 5m"#;
        assert_eq!(
            metric_names(expr),
            [
                "http_server_request_duration_seconds_bucket",
                "cortex_worker_workers",
                "up",
                "x:recorded"
            ]
        );
        assert_eq!(
            metric_names("max by (name) (cortex_circuitbreaker_state{state=\"open\"}) * 2"),
            ["cortex_circuitbreaker_state"]
        );
    }

    #[test]
    fn a_histogram_family_without_series_counts() {
        let scraped = Scraped::parse(
            "# HELP h_seconds x\n# TYPE h_seconds histogram\n# TYPE c_total counter\nc_total{a=\"1\"} 3\ng 1\n",
        );
        for name in ["h_seconds_bucket", "h_seconds_count", "c_total", "g"] {
            assert!(scraped.has(name), "{name}");
        }
        for name in ["c", "g_bucket", "h_seconds_total"] {
            assert!(!scraped.has(name), "{name}");
        }
    }
}
