//! The outside tools the checks are measured against, installed when
//! missing: Debian packages (promtool, curl, the compression CLIs,
//! Chromium) through apt-get, Python's `prometheus_client` through pip.

use std::process::Command;

use crate::exec;

/// Installs the Debian packages whose commands are missing, given as
/// `(command, package)` pairs.
pub(crate) fn ensure_packages(commands_and_packages: &[(&str, &str)]) -> Result<(), String> {
    let missing: Vec<&str> = commands_and_packages
        .iter()
        .filter(|(command, _)| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {command}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("installing Debian packages: {}", missing.join(" "));
    let update = Command::new("apt-get")
        .args(["update", "-qq"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if !update.success() {
        return Err(format!("apt-get update failed with {update}"));
    }
    let install = Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if install.success() {
        Ok(())
    } else {
        Err(format!(
            "apt-get install {} failed with {install}",
            missing.join(" ")
        ))
    }
}

/// `promtool`, from Debian's `prometheus` package.
pub(crate) fn ensure_promtool() -> Result<(), String> {
    ensure_packages(&[("promtool", "prometheus")])
}

/// Python's `prometheus_client`, whose parsers read both exposition
/// formats.
pub(crate) fn ensure_python_client() -> Result<(), String> {
    let present = Command::new("python3")
        .args(["-c", "import prometheus_client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    let install = ["-m", "pip", "install", "--quiet", "prometheus_client"];
    exec("python3", &install).or_else(|_| {
        // A Debian-managed Python refuses plain installs (PEP 668).
        exec(
            "python3",
            &[&install[..], &["--break-system-packages"]].concat(),
        )
    })
}

/// The Prometheus server, from the same Debian package as promtool.
pub(crate) fn ensure_prometheus() -> Result<(), String> {
    ensure_packages(&[("promtool", "prometheus"), ("prometheus", "prometheus")])
}

/// Python's `kubernetes-validate`, which bundles the Kubernetes JSON
/// schemas (no download when it runs), and PyYAML with it.
pub(crate) fn ensure_kubernetes_validate() -> Result<(), String> {
    let present = Command::new("python3")
        .args(["-c", "import kubernetes_validate, yaml"])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    let install = ["-m", "pip", "install", "--quiet", "kubernetes-validate"];
    exec("python3", &install).or_else(|_| {
        // A Debian-managed Python refuses plain installs (PEP 668).
        exec(
            "python3",
            &[&install[..], &["--break-system-packages"]].concat(),
        )
    })
}

/// The official OpenTelemetry protobuf bindings (`opentelemetry-proto`,
/// which brings `protobuf`), for the OTLP receiver the trace export is
/// checked against.
pub(crate) fn ensure_otlp_proto() -> Result<(), String> {
    ensure_python_module(
        "opentelemetry.proto.collector.trace.v1.trace_service_pb2",
        "opentelemetry-proto",
    )
}

/// Python's `openapi-spec-validator`, which checks a document against the
/// OpenAPI 3.0/3.1 specifications.
pub(crate) fn ensure_openapi_spec_validator() -> Result<(), String> {
    ensure_python_module("openapi_spec_validator", "openapi-spec-validator")
}

/// Installs the PyPI `package` with pip unless `module` imports already.
fn ensure_python_module(module: &str, package: &str) -> Result<(), String> {
    let present = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    let install = ["-m", "pip", "install", "--quiet", package];
    exec("python3", &install).or_else(|_| {
        // A Debian-managed Python refuses plain installs (PEP 668).
        exec(
            "python3",
            &[&install[..], &["--break-system-packages"]].concat(),
        )
    })
}
