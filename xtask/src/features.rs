//! `cargo xtask features`: every library crate compiled as its users build
//! it, one feature set at a time.
//!
//! `cargo test --workspace` unifies features across the workspace (the Hub
//! turns on `cortex/full`), so a crate's non-default feature sets are never
//! compiled there. This task runs clippy on each library crate under
//! `crates/` with `--no-default-features`, with each feature alone, and
//! with its defaults, each as a separate `cargo clippy -p <crate> --lib`
//! (so only that crate's own features are resolved, and dev-dependencies,
//! which often turn every feature on, stay out). Defaults that equal a set
//! already checked (an empty `default`, or `default = ["otlp"]`) run once.
//!
//! The list comes from `cargo metadata`, so a new crate or feature is
//! checked without editing this file. It is cargo-hack's `--each-feature
//! --no-dev-deps` without installing cargo-hack.

use std::collections::{BTreeMap, BTreeSet};

use std::time::Instant;

use crate::{cargo, exec};

/// One library crate and the feature sets to compile it with.
#[derive(Debug)]
struct Crate {
    name: String,
    /// Each entry is the `--features` list passed with
    /// `--no-default-features`; `None` means the crate's defaults.
    sets: Vec<Option<String>>,
}

pub(crate) fn run() -> Result<(), String> {
    let started = Instant::now();
    let crates = library_crates()?;
    let total: usize = crates.iter().map(|c| c.sets.len()).sum();
    eprintln!("feature check: {total} builds over {} crates", crates.len());
    let cargo = cargo();
    // Every set runs even after a failure, so one CI run shows them all.
    let mut failed = Vec::new();
    for krate in &crates {
        for set in &krate.sets {
            let mut args = vec!["clippy", "--quiet", "-p", &krate.name, "--lib"];
            if let Some(features) = set {
                args.push("--no-default-features");
                if !features.is_empty() {
                    args.extend(["--features", features]);
                }
            }
            args.extend(["--", "-D", "warnings"]);
            if exec(&cargo, &args).is_err() {
                failed.push(match set {
                    None => format!("{} (default features)", krate.name),
                    Some(f) if f.is_empty() => format!("{} --no-default-features", krate.name),
                    Some(f) => format!("{} --no-default-features --features {f}", krate.name),
                });
            }
        }
    }
    eprintln!(
        "feature check: {total} builds in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("failed: {}", failed.join("; ")))
    }
}

/// Workspace members under `crates/` that have a library target.
fn library_crates() -> Result<Vec<Crate>, String> {
    let mut crates = Vec::new();
    for package in crate::library_packages(&cargo())? {
        let name = package["name"].as_str().unwrap_or_default().to_owned();
        let features: BTreeMap<String, Vec<String>> = package["features"]
            .as_object()
            .map(|map| {
                map.iter()
                    .map(|(feature, enables)| {
                        let enables = enables
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|e| e.as_str().map(str::to_owned))
                            .collect();
                        (feature.clone(), enables)
                    })
                    .collect()
            })
            .unwrap_or_default();
        crates.push(Crate {
            sets: feature_sets(&features),
            name,
        });
    }
    Ok(crates)
}

/// `--no-default-features`, each feature alone, and the defaults, minus
/// the ones whose expansion is a set already listed.
fn feature_sets(features: &BTreeMap<String, Vec<String>>) -> Vec<Option<String>> {
    let mut seen = BTreeSet::new();
    let mut sets = Vec::new();
    let mut push = |set: Option<String>, expanded: BTreeSet<String>| {
        if seen.insert(expanded) {
            sets.push(set);
        }
    };
    push(Some(String::new()), BTreeSet::new());
    for feature in features.keys().filter(|f| *f != "default") {
        push(Some(feature.clone()), expand(features, feature));
    }
    push(None, expand(features, "default"));
    sets
}

/// The crate's own features that `feature` turns on, itself included (an
/// entry such as `dep:x` or `other-crate/f` names no feature of this crate).
fn expand(features: &BTreeMap<String, Vec<String>>, feature: &str) -> BTreeSet<String> {
    let mut on = BTreeSet::new();
    let mut todo = vec![feature.to_owned()];
    while let Some(next) = todo.pop() {
        if let Some(enables) = features.get(&next) {
            if next != "default" {
                on.insert(next.clone());
            }
            todo.extend(enables.iter().filter(|e| !on.contains(*e)).cloned());
        }
    }
    on
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(list: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        list.iter()
            .map(|(f, e)| ((*f).to_owned(), e.iter().map(|s| (*s).to_owned()).collect()))
            .collect()
    }

    #[test]
    fn a_crate_without_features_is_built_once() {
        assert_eq!(feature_sets(&features(&[])), vec![Some(String::new())]);
        let empty_default = features(&[("default", &[])]);
        assert_eq!(feature_sets(&empty_default), vec![Some(String::new())]);
    }

    #[test]
    fn each_feature_alone_then_the_defaults() {
        let f = features(&[
            ("default", &["br", "gzip"]),
            ("br", &["async-compression/brotli"]),
            ("gzip", &["async-compression/gzip"]),
            ("metrics", &["dep:cortex-metrics"]),
        ]);
        let sets = feature_sets(&f);
        assert_eq!(
            sets,
            vec![
                Some(String::new()),
                Some("br".to_owned()),
                Some("gzip".to_owned()),
                Some("metrics".to_owned()),
                None,
            ]
        );
    }

    #[test]
    fn defaults_already_listed_run_once() {
        let f = features(&[("default", &["a"]), ("a", &[]), ("b", &["a"])]);
        // The defaults are `a` alone; `b` turns `a` on but is a set of its own.
        assert_eq!(
            feature_sets(&f),
            vec![
                Some(String::new()),
                Some("a".to_owned()),
                Some("b".to_owned())
            ]
        );
    }
}
