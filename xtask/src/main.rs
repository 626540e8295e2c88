//! Project automation, run as `cargo xtask <task>` (alias in
//! `.cargo/config.toml`). Plain std so it builds in seconds.
//!
//! | task | what it does |
//! |---|---|
//! | `ci` | exactly what `.ci/run` does: fmt, clippy, features, docs, tests, wasm guests check, conformance, cluster |
//! | `features` | clippy on each library crate with no default features, each feature alone, and its defaults |
//! | `docs` | `cargo doc` as docs.rs builds it: all features, warnings denied |
//! | `conformance` | checks the Hub with real tools: promtool and Python's parsers on `/metrics`, curl and the gzip/brotli/zstd CLIs and headless Chromium on compression |
//! | `bench [--only <bench>] [--report-only] [args]` | runs `crates/cortex-bench` (or only the named benches) and writes `docs/benchmarks.md` |
//! | `loadtest [--quick] [--rounds N] [--seconds S] [--only a,b] [--no-report] [--instructions]` | serves one route under each Cortex layer, the facade's and the Hub's stacks, bare axum and tower-http's layers, drives them with wrk (and oha at a fixed rate), and writes the loadtest section of `docs/benchmarks.md` and `docs/loadtest.json`; `--instructions` counts each variant's instructions per request with callgrind instead |
//! | `cluster` | Cortex across processes on real engines: installs and starts `redis-server` on loopback, runs cortex-resilience's Redis tests against it, then three Hubs sharing one rate limit through it, with Redis stopped and restarted mid-run |
//! | `deny` | installs and runs cargo-deny against `deny.toml` |
//! | `wasm-guests [--check]` | rebuilds cortex-wasm's committed Rust guest modules reproducibly (`--check`: fails if a rebuild differs from a committed `.wasm`) |

mod bench;
mod cluster;
mod cluster_nats;
mod conformance;
mod coverage;
mod features;
mod hub;
mod loadtest;
mod process;
mod wasm_guests;

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Instant;

const USAGE: &str = "usage: cargo xtask <ci | features | docs | conformance | bench [--only <bench>] [--report-only] [criterion args] | loadtest [--quick] [--instructions] | cluster [--only redis|nats] | deny | wasm-guests [--check]>";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let result = match task.as_str() {
        "ci" => ci(),
        "features" => features::run(),
        "docs" => docs(),
        "conformance" => conformance::run(),
        "coverage" => coverage::run(&rest),
        "bench" => bench::run(&rest),
        "loadtest" => loadtest::run(&rest),
        "cluster" => cluster::run(&rest),
        "deny" => deny(),
        "wasm-guests" => wasm_guests::run(&rest),
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask {task}: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The repository root (the parent of `xtask/`).
pub(crate) fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// Runs `program args` from the root, streaming its output; fails on a
/// non-zero exit.
pub(crate) fn exec(program: &str, args: &[&str]) -> Result<(), String> {
    exec_with_env(&[], program, args)
}

/// [`exec`] with extra environment variables.
pub(crate) fn exec_with_env(
    env: &[(&str, &str)],
    program: &str,
    args: &[&str],
) -> Result<(), String> {
    let started = Instant::now();
    let shown_env: String = env.iter().map(|(k, v)| format!("{k}=\"{v}\" ")).collect();
    eprintln!("$ {shown_env}{program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(root())
        .status()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    eprintln!("  ({:.1}s)", started.elapsed().as_secs_f64());
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{program} {}` failed with {status}",
            args.join(" ")
        ))
    }
}

pub(crate) fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// The same sequence as `.ci/run` (which also sets `CARGO_INCREMENTAL=0`
/// so CI's target dir holds each artifact once).
fn ci() -> Result<(), String> {
    let cargo = cargo();
    exec(&cargo, &["fmt", "--all", "--check"])?;
    exec(
        &cargo,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    features::run()?;
    docs()?;
    // The README's test command, verbatim. Its doctests include the README
    // and every guide in docs/ (`#[doc = include_str!]` in each lib.rs).
    exec(&cargo, &["test", "--workspace"])?;
    // The committed wasm guests are what their sources build to.
    wasm_guests::run(&["--check".to_owned()])?;
    conformance::run()?;
    // Several processes on real engines (installs redis-server).
    cluster::run(&[])
}

/// The docs as docs.rs builds them: every feature on, warnings (broken
/// intra-doc links included) are errors. `--keep-going` so one run lists
/// every crate's failures, not the first crate's.
fn docs() -> Result<(), String> {
    exec_with_env(
        &[("RUSTDOCFLAGS", "-D warnings")],
        &cargo(),
        &[
            "doc",
            "--no-deps",
            "--workspace",
            "--all-features",
            "--keep-going",
        ],
    )
}

fn deny() -> Result<(), String> {
    let cargo = cargo();
    let installed = Command::new(&cargo)
        .args(["deny", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        exec(&cargo, &["install", "--locked", "cargo-deny"])?;
    }
    exec(
        &cargo,
        &[
            "deny",
            "--workspace",
            "check",
            "bans",
            "licenses",
            "sources",
        ],
    )?;
    // The advisory database is cloned from GitHub; where that is out of
    // reach (an offline builder), say so instead of failing the policy run.
    let advisories = Command::new(&cargo)
        .args(["deny", "--workspace", "check", "advisories"])
        .current_dir(root())
        .output()
        .map_err(|e| format!("cannot run cargo deny: {e}"))?;
    let stderr = String::from_utf8_lossy(&advisories.stderr);
    if advisories.status.success() {
        eprintln!("advisories ok");
        Ok(())
    } else if stderr.contains("failed to fetch advisory database") {
        eprintln!("advisories SKIPPED: the RustSec database (github.com) is unreachable from here");
        Ok(())
    } else {
        Err(format!("cargo deny check advisories failed:\n{stderr}"))
    }
}

/// `cargo metadata`'s package objects of the workspace members under
/// `crates/` that have a library target: the library crates every
/// per-crate task (features, coverage) walks, so a new crate is picked up
/// without editing a task. Sorted by name.
pub(crate) fn library_packages(cargo: &str) -> Result<Vec<serde_json::Value>, String> {
    let output = Command::new(cargo)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(root())
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("cargo metadata printed invalid JSON: {e}"))?;
    let crates_dir = root().join("crates");
    let mut packages: Vec<serde_json::Value> = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|package| {
            let manifest =
                std::path::Path::new(package["manifest_path"].as_str().unwrap_or_default());
            let is_lib = package["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|t| {
                    t["kind"]
                        .as_array()
                        .is_some_and(|kinds| kinds.iter().any(|k| k == "lib"))
                });
            is_lib && manifest.starts_with(&crates_dir)
        })
        .cloned()
        .collect();
    packages.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(packages)
}
