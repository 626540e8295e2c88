//! `cargo xtask wasm-guests [--check]`: builds the Rust guest modules of
//! cortex-wasm's tests and benchmarks (`crates/cortex-wasm/guests/rust`,
//! a workspace of its own) for `wasm32-unknown-unknown` and copies each to
//! `crates/cortex-wasm/guests/<name>.wasm`, where they are committed.
//!
//! The build is reproducible: `--locked` against the committed
//! `Cargo.lock`, the guest workspace's release profile, and rustflags that
//! remap the checkout's, the cargo home's and the target directory's paths
//! (the only machine-specific strings that reach the modules, in panic
//! locations) to fixed ones, so the bytes depend on the sources and the
//! compiler only. `--check` builds into a temporary directory and fails,
//! naming the file, if any byte differs from the committed modules (CI
//! runs it). A different rustc may produce different bytes: the guests'
//! README records the version the committed modules were built with, and
//! a failing check names both.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::{cargo, root};

/// Where the committed modules and the README live, from the root.
const GUESTS_DIR: &str = "crates/cortex-wasm/guests";
/// The guest cargo workspace, from the root.
const WORKSPACE_DIR: &str = "crates/cortex-wasm/guests/rust";
const TARGET: &str = "wasm32-unknown-unknown";
/// Each guest: the file stem cargo gives its cdylib, and the name it is
/// committed under (`<name>.wasm`).
const GUESTS: &[(&str, &str)] = &[("guest_image", "image"), ("guest_json", "json")];
/// The README line that records the compiler: this prefix, the output of
/// `rustc --version`, then a closing backtick.
const RUSTC_LINE: &str = "Built with `";

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let check = match args {
        [] => false,
        [flag] if flag == "--check" => true,
        _ => return Err("usage: cargo xtask wasm-guests [--check]".to_owned()),
    };
    let started = Instant::now();
    let root = root();
    let guests = root.join(GUESTS_DIR);
    let readme_path = guests.join("README.md");
    let rustc = rustc_version()?;
    ensure_target()?;
    if check {
        let target_dir =
            std::env::temp_dir().join(format!("cortex-wasm-guests-check-{}", std::process::id()));
        let result = build(&root, &target_dir).and_then(|built| {
            let readme = std::fs::read_to_string(&readme_path)
                .map_err(|e| format!("cannot read {}: {e}", readme_path.display()))?;
            compare(&built, &guests, recorded_rustc(&readme), &rustc)
        });
        // Best effort: a temp dir left behind is not worth failing over.
        let _ = std::fs::remove_dir_all(&target_dir);
        result?;
        eprintln!(
            "wasm guests: the committed modules are byte-identical to a fresh build ({rustc}, {:.1}s)",
            started.elapsed().as_secs_f64()
        );
    } else {
        let built = build(&root, &root.join("target").join("wasm-guests"))?;
        for (path, name) in &built {
            let to = guests.join(format!("{name}.wasm"));
            std::fs::copy(path, &to)
                .map_err(|e| format!("cannot copy {} to {}: {e}", path.display(), to.display()))?;
            let size = std::fs::metadata(&to).map(|m| m.len()).unwrap_or(0);
            eprintln!("wrote {GUESTS_DIR}/{name}.wasm ({size} bytes)");
        }
        let readme = std::fs::read_to_string(&readme_path)
            .map_err(|e| format!("cannot read {}: {e}", readme_path.display()))?;
        let updated = with_rustc(&readme, &rustc).ok_or_else(|| {
            format!(
                "{} has no line starting with {RUSTC_LINE:?} to record the compiler in",
                readme_path.display()
            )
        })?;
        if updated != readme {
            std::fs::write(&readme_path, updated)
                .map_err(|e| format!("cannot write {}: {e}", readme_path.display()))?;
            eprintln!("recorded {rustc} in {GUESTS_DIR}/README.md");
        }
    }
    Ok(())
}

/// `rustc --version` of the compiler cargo will use.
fn rustc_version() -> Result<String, String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| OsString::from("rustc"));
    let output = Command::new(&rustc)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", rustc.to_string_lossy()))?;
    if !output.status.success() {
        return Err(format!("`rustc --version` failed with {}", output.status));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Installs the wasm target's standard library (`rustup target add`)
/// unless the sysroot has it.
fn ensure_target() -> Result<(), String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| OsString::from("rustc"));
    let libdir = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let installed = libdir
        .and_then(|dir| std::fs::read_dir(dir).ok())
        .is_some_and(|mut entries| {
            entries.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("libstd-")))
        });
    if installed {
        return Ok(());
    }
    crate::exec("rustup", &["target", "add", TARGET])
}

/// Builds every guest into `target_dir`; each built module's path and
/// committed name.
fn build(root: &Path, target_dir: &Path) -> Result<Vec<(PathBuf, &'static str)>, String> {
    let workspace = root.join(WORKSPACE_DIR);
    let rustflags = encoded_rustflags(&workspace, &cargo_home()?, target_dir);
    let args = ["build", "--release", "--locked", "--target", TARGET];
    let cargo = cargo();
    eprintln!(
        "$ (cd {WORKSPACE_DIR} && CARGO_TARGET_DIR={} CARGO_ENCODED_RUSTFLAGS={:?} {cargo} {})",
        target_dir.display(),
        rustflags.replace('\u{1f}', " "),
        args.join(" ")
    );
    let started = Instant::now();
    let mut command = Command::new(&cargo);
    command.args(args).current_dir(&workspace);
    // Nothing of the caller's environment may change the bytes: its
    // rustflags, build settings or profile overrides.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if is_build_setting(&key) {
            command.env_remove(&*key);
        }
    }
    let status = command
        .env("CARGO_TARGET_DIR", target_dir)
        .env("CARGO_ENCODED_RUSTFLAGS", &rustflags)
        .status()
        .map_err(|e| format!("cannot start {cargo}: {e}"))?;
    eprintln!("  ({:.1}s)", started.elapsed().as_secs_f64());
    if !status.success() {
        return Err(format!("building the wasm guests failed with {status}"));
    }
    let release = target_dir.join(TARGET).join("release");
    Ok(GUESTS
        .iter()
        .map(|(stem, name)| (release.join(format!("{stem}.wasm")), *name))
        .collect())
}

/// The cargo home cargo uses: `$CARGO_HOME`, else `~/.cargo`.
fn cargo_home() -> Result<PathBuf, String> {
    let home = match std::env::var_os("CARGO_HOME").filter(|h| !h.is_empty()) {
        Some(home) => PathBuf::from(home),
        None => std::env::var_os("HOME")
            .map(|home| PathBuf::from(home).join(".cargo"))
            .ok_or("neither CARGO_HOME nor HOME is set")?,
    };
    std::path::absolute(&home).map_err(|e| format!("cannot resolve {}: {e}", home.display()))
}

/// Environment variables that would change what cargo builds, dropped
/// from the guest build's environment.
fn is_build_setting(key: &str) -> bool {
    key == "RUSTFLAGS"
        || key == "CARGO_ENCODED_RUSTFLAGS"
        || key == "CARGO_INCREMENTAL"
        || key.starts_with("CARGO_BUILD_")
        || key.starts_with("CARGO_PROFILE_")
        || (key.starts_with("CARGO_TARGET_") && key != "CARGO_TARGET_DIR")
}

/// The guest build's rustflags, `\x1f`-separated as
/// `CARGO_ENCODED_RUSTFLAGS` wants them (so paths may hold spaces): each
/// machine-specific directory remapped to a fixed name, and the MVP CPU.
/// A path whose canonical form differs (a symlink) is remapped in both
/// forms.
fn encoded_rustflags(workspace: &Path, cargo_home: &Path, target_dir: &Path) -> String {
    let mut flags = Vec::new();
    for (from, to) in [
        (cargo_home, "/cargo"),
        (target_dir, "/target"),
        (workspace, "/guests"),
    ] {
        let mut forms = vec![from.to_path_buf()];
        if let Ok(canonical) = from.canonicalize()
            && canonical != from
        {
            forms.push(canonical);
        }
        for form in forms {
            flags.push(format!("--remap-path-prefix={}={to}", form.display()));
        }
    }
    flags.push("-Ctarget-cpu=mvp".to_owned());
    flags.join("\u{1f}")
}

/// Compares each freshly built module with the committed one; the error
/// names every file that differs or is missing.
fn compare(
    built: &[(PathBuf, &str)],
    guests: &Path,
    recorded: Option<&str>,
    rustc: &str,
) -> Result<(), String> {
    let mut problems = Vec::new();
    for (path, name) in built {
        let fresh =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let file = format!("{GUESTS_DIR}/{name}.wasm");
        match std::fs::read(guests.join(format!("{name}.wasm"))) {
            Err(e) => problems.push(format!("{file}: cannot read the committed module: {e}")),
            Ok(committed) => {
                if let Some(at) = first_difference(&committed, &fresh) {
                    problems.push(format!(
                        "{file} differs from a fresh build: {} committed bytes, {} built, first difference at byte {at}",
                        committed.len(),
                        fresh.len()
                    ));
                } else {
                    eprintln!("{file}: identical ({} bytes)", fresh.len());
                }
            }
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let compiler = match recorded {
        Some(recorded) if recorded == rustc => format!(
            "this build used the rustc the committed modules were built with ({rustc}): the sources, Cargo.lock or build settings changed since"
        ),
        Some(recorded) => format!(
            "the committed modules were built with {recorded} and this build used {rustc}: a different rustc may produce different bytes from the same sources"
        ),
        None => format!(
            "{GUESTS_DIR}/README.md records no compiler; this build used {rustc} (a different rustc may produce different bytes)"
        ),
    };
    Err(format!(
        "{}\n{compiler}.\nRebuild with `cargo xtask wasm-guests` and commit the modules and {GUESTS_DIR}/README.md.",
        problems.join("\n")
    ))
}

/// The index of the first byte where `a` and `b` differ (the shorter
/// one's length if one is a prefix of the other); `None` if equal.
fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(at) => Some(at),
        None if a.len() == b.len() => None,
        None => Some(a.len().min(b.len())),
    }
}

/// The compiler the README records: the text between [`RUSTC_LINE`] and
/// the next backtick on the first line that starts with it.
fn recorded_rustc(readme: &str) -> Option<&str> {
    readme
        .lines()
        .find_map(|line| line.strip_prefix(RUSTC_LINE))
        .and_then(|rest| rest.split_once('`'))
        .map(|(version, _)| version)
}

/// `readme` with its recorded compiler set to `rustc`; `None` if it has no
/// such line.
fn with_rustc(readme: &str, rustc: &str) -> Option<String> {
    let old = recorded_rustc(readme)?;
    let line = readme.lines().find(|line| line.starts_with(RUSTC_LINE))?;
    let new_line = line.replacen(
        &format!("{RUSTC_LINE}{old}`"),
        &format!("{RUSTC_LINE}{rustc}`"),
        1,
    );
    Some(readme.replacen(line, &new_line, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_difference_finds_changed_and_truncated_bytes() {
        assert_eq!(first_difference(b"abc", b"abc"), None);
        assert_eq!(first_difference(b"", b""), None);
        assert_eq!(first_difference(b"abc", b"abd"), Some(2));
        assert_eq!(first_difference(b"abc", b"ab"), Some(2));
        assert_eq!(first_difference(b"", b"x"), Some(0));
    }

    #[test]
    fn the_readme_line_records_the_compiler_and_is_rewritten_in_place() {
        let readme = "# Guests\n\nBuilt with `rustc 1.95.0 (59807616e 2026-04-14)`.\n\nMore.\n";
        assert_eq!(
            recorded_rustc(readme),
            Some("rustc 1.95.0 (59807616e 2026-04-14)")
        );
        let updated = with_rustc(readme, "rustc 1.96.0 (0123456789 2026-05-28)").unwrap();
        assert_eq!(
            updated,
            "# Guests\n\nBuilt with `rustc 1.96.0 (0123456789 2026-05-28)`.\n\nMore.\n"
        );
        assert_eq!(
            with_rustc(&updated, "rustc 1.96.0 (0123456789 2026-05-28)").unwrap(),
            updated
        );
        assert_eq!(recorded_rustc("no such line"), None);
        assert_eq!(with_rustc("no such line", "rustc 1"), None);
    }

    #[test]
    fn the_committed_readme_records_a_compiler() {
        let readme = std::fs::read_to_string(root().join(GUESTS_DIR).join("README.md")).unwrap();
        assert!(recorded_rustc(&readme).is_some_and(|v| v.starts_with("rustc ")));
    }

    #[test]
    fn rustflags_remap_every_machine_specific_directory() {
        let flags = encoded_rustflags(
            Path::new("/no/such/guests dir"),
            Path::new("/no/such/cargo"),
            Path::new("/no/such/target"),
        );
        assert_eq!(
            flags.split('\u{1f}').collect::<Vec<_>>(),
            [
                "--remap-path-prefix=/no/such/cargo=/cargo",
                "--remap-path-prefix=/no/such/target=/target",
                "--remap-path-prefix=/no/such/guests dir=/guests",
                "-Ctarget-cpu=mvp",
            ]
        );
    }

    #[test]
    fn only_build_settings_are_dropped_from_the_environment() {
        for key in [
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_INCREMENTAL",
            "CARGO_BUILD_TARGET",
            "CARGO_PROFILE_RELEASE_DEBUG",
            "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS",
        ] {
            assert!(is_build_setting(key), "{key}");
        }
        for key in ["CARGO_TARGET_DIR", "CARGO_HOME", "PATH", "RUSTUP_TOOLCHAIN"] {
            assert!(!is_build_setting(key), "{key}");
        }
    }
}
