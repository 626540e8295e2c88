//! Side-by-side benchmarks of Cortex against peer crates; see `benches/`
//! and `cargo xtask bench`, which writes `docs/benchmarks.md`.
//!
//! Benchmark ids follow `<group>/<implementation>` where implementation is
//! `cortex` or a peer crate's name, so the report can pair them up.
