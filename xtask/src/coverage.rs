//! `cargo xtask coverage`: line coverage of each library crate, measured
//! with cargo-llvm-cov and written to `docs/coverage.md`.
//!
//! The library crates are the workspace members under `crates/` with a
//! library target (from `cargo metadata`, so a new crate is measured
//! without editing this file). Their own tests are the drivers (unit and
//! integration, every feature on), each passed with `-p`. The Hub
//! (`examples/hub`), `trace-conformance` and xtask are left out as drivers:
//! the Hub's tests assert what the Hub answers, not what a library
//! promises, so lines they reach would count as covered without any test
//! pinning their behaviour. A crate's number is what its own tests (and
//! its sibling libraries' tests) vouch for.
//!
//! Not part of `.ci/run`: it needs the `llvm-tools-preview` rustup
//! component and cargo-llvm-cov, neither of which a fresh CI image can be
//! relied on to have. This task installs both when missing.
//!
//! Only the table between the `<!-- coverage:begin -->` and
//! `<!-- coverage:end -->` markers of `docs/coverage.md` is rewritten; the
//! prose around it is kept, so notes written by hand survive a re-run.
//! `cargo xtask coverage --report-only` rewrites the table from the last
//! run's data (`cargo llvm-cov report`) without building or testing.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime};

use serde_json::Value;

use crate::{cargo, exec, root};

/// The line coverage a library crate is held to.
const TARGET_PERCENT: f64 = 90.0;

/// How many of the least-covered files the page lists.
const WORST_FILES: usize = 12;

/// Where llvm-cov's JSON summary goes, relative to the root.
const JSON: &str = "target/llvm-cov/coverage.json";

const BEGIN: &str = "<!-- coverage:begin -->";
const END: &str = "<!-- coverage:end -->";

/// Lines instrumented and lines run, for a file or a crate.
#[derive(Debug, Default, Clone, Copy)]
struct Lines {
    covered: u64,
    total: u64,
}

impl Lines {
    fn add(&mut self, other: Self) {
        self.covered += other.covered;
        self.total += other.total;
    }

    fn percent(self) -> f64 {
        if self.total == 0 {
            100.0
        } else {
            self.covered as f64 * 100.0 / self.total as f64
        }
    }
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let report_only = match args {
        [] => false,
        [flag] if flag == "--report-only" => true,
        _ => return Err("usage: cargo xtask coverage [--report-only]".to_owned()),
    };
    let started = Instant::now();
    let cargo = cargo();
    ensure_tools(&cargo)?;

    let json = root().join(JSON);
    if let Some(dir) = json.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let json_arg = json.to_string_lossy().into_owned();
    let crates = library_crates(&cargo)?;
    let mut args = vec!["llvm-cov"];
    if report_only {
        args.push("report");
    }
    for krate in &crates {
        args.extend(["-p", krate.name.as_str()]);
    }
    if !report_only {
        args.push("--all-features");
    }
    args.extend(["--json", "--summary-only", "--output-path", &json_arg]);
    exec(&cargo, &args)?;

    let export =
        std::fs::read_to_string(&json).map_err(|e| format!("reading {}: {e}", json.display()))?;
    let export: Value =
        serde_json::from_str(&export).map_err(|e| format!("parsing {}: {e}", json.display()))?;
    let files = per_file(&export, &crates, &root())?;

    // The measuring command as run, with the output path relative to the
    // root; a re-rendered report names the run it read.
    let shown: Vec<&str> = args[..args.len() - 1]
        .iter()
        .copied()
        .filter(|a| *a != "report")
        .collect();
    let command = format!("cargo {} {JSON}", shown.join(" "));
    let how = if report_only {
        "`cargo xtask coverage --report-only`, re-read from the last run's data".to_owned()
    } else {
        let secs = started.elapsed().as_secs_f64();
        format!(
            "`cargo xtask coverage`, {:.0} min {:02.0} s on this machine",
            (secs / 60.0).floor(),
            secs % 60.0
        )
    };
    let table = table(&crates, &files, &command, &how);
    print!("{table}");

    let page = root().join("docs/coverage.md");
    let existing = std::fs::read_to_string(&page).unwrap_or_default();
    std::fs::write(&page, splice(&existing, &table))
        .map_err(|e| format!("writing {}: {e}", page.display()))?;
    eprintln!("wrote {} ({how})", page.display());
    Ok(())
}

/// A library crate: its package name and its `src/` directory.
#[derive(Debug)]
struct Library {
    name: String,
    src: PathBuf,
}

/// Workspace members under `crates/` with a library target, by name.
fn library_crates(cargo: &str) -> Result<Vec<Library>, String> {
    let mut crates: Vec<Library> = Vec::new();
    for package in crate::library_packages(cargo)? {
        let manifest = Path::new(package["manifest_path"].as_str().unwrap_or_default());
        if let (Some(dir), Some(name)) = (manifest.parent(), package["name"].as_str()) {
            crates.push(Library {
                name: name.to_owned(),
                src: dir.join("src"),
            });
        }
    }
    if crates.is_empty() {
        return Err("cargo metadata lists no library crate under crates/".to_owned());
    }
    Ok(crates)
}

/// Installs cargo-llvm-cov and the LLVM tools it drives, when missing.
fn ensure_tools(cargo: &str) -> Result<(), String> {
    let installed = Command::new(cargo)
        .args(["llvm-cov", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        exec(cargo, &["install", "--locked", "cargo-llvm-cov"])?;
    }
    // cargo-llvm-cov finds llvm-cov and llvm-profdata through rustup; a
    // toolchain without rustup can point LLVM_COV / LLVM_PROFDATA at them.
    let has_env = std::env::var_os("LLVM_COV").is_some();
    if !has_env {
        exec("rustup", &["component", "add", "llvm-tools-preview"]).map_err(|e| {
            format!("{e}; without rustup, set LLVM_COV and LLVM_PROFDATA to LLVM's tools")
        })?;
    }
    Ok(())
}

/// Each library source file's line counts, keyed by crate name then by
/// path relative to the repository root. Files outside the libraries'
/// `src/` (tests, examples, dependencies) are dropped.
fn per_file(
    export: &Value,
    crates: &[Library],
    root: &Path,
) -> Result<BTreeMap<String, BTreeMap<String, Lines>>, String> {
    let files = export
        .pointer("/data/0/files")
        .and_then(Value::as_array)
        .ok_or("the llvm-cov export has no data[0].files")?;
    let mut out: BTreeMap<String, BTreeMap<String, Lines>> = BTreeMap::new();
    for file in files {
        let Some(name) = file.get("filename").and_then(Value::as_str) else {
            continue;
        };
        let path = Path::new(name);
        let Some(krate) = crates.iter().find(|c| path.starts_with(&c.src)) else {
            continue;
        };
        let summary = file.pointer("/summary/lines");
        let count = |key: &str| summary.and_then(|s| s.get(key)).and_then(Value::as_u64);
        let (Some(total), Some(covered)) = (count("count"), count("covered")) else {
            return Err(format!("no line summary for {name}"));
        };
        let shown = path.strip_prefix(root).unwrap_or(path);
        out.entry(krate.name.clone()).or_default().insert(
            shown.to_string_lossy().into_owned(),
            Lines { covered, total },
        );
    }
    Ok(out)
}

/// The generated part of the page: the per-crate table, the least-covered
/// files, and how it was measured.
fn table(
    crates: &[Library],
    files: &BTreeMap<String, BTreeMap<String, Lines>>,
    command: &str,
    how: &str,
) -> String {
    let mut out = String::new();
    let date = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let date = date.get(..10).unwrap_or(&date);
    let _ = writeln!(out, "Measured {date} with\n\n```sh\n{command}\n```\n");
    let _ = writeln!(out, "({how}).\n");
    let _ = writeln!(out, "| crate | lines covered | lines | line coverage |");
    let _ = writeln!(out, "|---|---:|---:|---:|");
    let mut all = Lines::default();
    for Library { name: krate, .. } in crates {
        let mut lines = Lines::default();
        for file in files.get(krate).into_iter().flat_map(BTreeMap::values) {
            lines.add(*file);
        }
        all.add(lines);
        let flag = if lines.percent() < TARGET_PERCENT {
            format!(" (below {TARGET_PERCENT}%)")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "| {krate} | {} | {} | {:.1}%{flag} |",
            lines.covered,
            lines.total,
            lines.percent()
        );
    }
    let _ = writeln!(
        out,
        "| **all library crates** | {} | {} | {:.1}% |\n",
        all.covered,
        all.total,
        all.percent()
    );

    let mut worst: Vec<(String, Lines)> = files
        .values()
        .flat_map(|files| files.iter().map(|(path, lines)| (path.clone(), *lines)))
        .filter(|(_, lines)| lines.covered < lines.total)
        .collect();
    worst.sort_by(|a, b| {
        let missed = |l: &Lines| l.total - l.covered;
        missed(&b.1).cmp(&missed(&a.1)).then_with(|| a.0.cmp(&b.0))
    });
    let _ = writeln!(
        out,
        "The {WORST_FILES} files with the most lines no test runs:\n"
    );
    let _ = writeln!(out, "| file | lines not run | line coverage |");
    let _ = writeln!(out, "|---|---:|---:|");
    for (path, lines) in worst.iter().take(WORST_FILES) {
        let _ = writeln!(
            out,
            "| `{path}` | {} | {:.1}% |",
            lines.total - lines.covered,
            lines.percent()
        );
    }
    out
}

/// `existing` with the text between the markers replaced by `table`; a
/// page without markers is replaced by the default page.
fn splice(existing: &str, table: &str) -> String {
    if let (Some(begin), Some(end)) = (existing.find(BEGIN), existing.find(END))
        && begin < end
    {
        return format!(
            "{}{BEGIN}\n{table}\n{}",
            &existing[..begin],
            &existing[end..]
        );
    }
    format!("{HEADER}{BEGIN}\n{table}\n{END}\n{FOOTER}")
}

/// The page's prose for a first run; edits to it in `docs/coverage.md`
/// are kept by later runs.
const HEADER: &str = "# Line coverage\n\n\
Written by `cargo xtask coverage` (xtask/src/coverage.rs); the table between \
the markers is regenerated, the rest of this page is kept.\n\n";

const FOOTER: &str = "\n\
Each library crate is held to 90% line coverage by tests of behaviour.\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn library(root: &Path, name: &str) -> Library {
        Library {
            name: name.to_owned(),
            src: root.join("crates").join(name).join("src"),
        }
    }

    fn file(path: &str, covered: u64, count: u64) -> Value {
        serde_json::json!({
            "filename": path,
            "summary": { "lines": { "count": count, "covered": covered } }
        })
    }

    #[test]
    fn only_library_sources_count_and_lines_add_up_per_crate() {
        let root = Path::new("/repo");
        let crates = [library(root, "cortex"), library(root, "cortex-trace")];
        let export = serde_json::json!({ "data": [{ "files": [
            file("/repo/crates/cortex/src/lib.rs", 9, 10),
            file("/repo/crates/cortex-trace/src/a.rs", 5, 10),
            file("/repo/crates/cortex-trace/src/http/b.rs", 10, 10),
            // Tests, examples and other crates are not library code here.
            file("/repo/crates/cortex-trace/tests/c.rs", 0, 50),
            file("/repo/examples/hub/src/main.rs", 0, 50),
            file("/repo/crates/cortex-serve/src/lib.rs", 0, 50),
            file("/home/u/.cargo/registry/src/x/lib.rs", 0, 50),
        ]}]});
        let files = per_file(&export, &crates, root).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(
            files["cortex-trace"].keys().collect::<Vec<_>>(),
            [
                "crates/cortex-trace/src/a.rs",
                "crates/cortex-trace/src/http/b.rs"
            ]
        );
        let table = table(&crates, &files, "cargo llvm-cov", "test");
        assert!(table.contains("| cortex | 9 | 10 | 90.0% |"), "{table}");
        assert!(
            table.contains("| cortex-trace | 15 | 20 | 75.0% (below 90%) |"),
            "{table}"
        );
        assert!(
            table.contains("| **all library crates** | 24 | 30 | 80.0% |"),
            "{table}"
        );
        // Least covered first; fully covered files are not listed.
        let worst = table.find("cortex-trace/src/a.rs").unwrap();
        assert!(worst < table.find("cortex/src/lib.rs").unwrap(), "{table}");
        assert!(!table.contains("http/b.rs"), "{table}");
    }

    #[test]
    fn an_export_without_line_summaries_is_an_error_not_a_zero() {
        let root = Path::new("/repo");
        let crates = [library(root, "cortex")];
        let export = serde_json::json!({ "data": [{ "files": [
            { "filename": "/repo/crates/cortex/src/lib.rs", "summary": {} }
        ]}]});
        assert!(per_file(&export, &crates, root).is_err());
        assert!(per_file(&serde_json::json!({}), &crates, root).is_err());
    }

    #[test]
    fn a_rerun_replaces_only_the_text_between_the_markers() {
        let page = format!("# Title\n\nprose\n{BEGIN}\nold table\n{END}\nmore prose\n");
        let once = splice(&page, "new table\n");
        assert_eq!(
            once,
            format!("# Title\n\nprose\n{BEGIN}\nnew table\n\n{END}\nmore prose\n")
        );
        assert_eq!(splice(&once, "new table\n"), once, "idempotent");
        // No page yet (or no markers): the default page around the table.
        let fresh = splice("", "t\n");
        assert!(fresh.starts_with(HEADER) && fresh.contains(&format!("{BEGIN}\nt\n")));
    }

    #[test]
    fn library_crates_are_the_members_under_crates_with_a_lib_target() {
        let names: Vec<String> = library_crates(&cargo())
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
        for library in ["cortex", "cortex-metrics", "cortex-trace", "cortex-actor"] {
            assert!(names.iter().any(|n| n == library), "{names:?}");
        }
        for not_library in ["xtask", "cortex-hub", "trace-conformance", "cortex-bench"] {
            assert!(!names.iter().any(|n| n == not_library), "{names:?}");
        }
    }
}
