//! cortex-wasm's own call costs (the comparison with raw wasmer lives in
//! `crates/cortex-bench`, bench `wasm`): `cargo bench -p cortex-wasm`.
//!
//! - `typed_add`: `add(i32, i32) -> i32` of the committed image guest,
//!   `typed_function` resolved once, then `call_with` per call, on the
//!   default engine (no metering, no deadline).
//! - `bytes_invert_16KiB`: `call_bytes("invert", ..)` on a 64×64 RGBA
//!   image: alloc, write, call, read and both frees through the guest's
//!   allocator, on the same instance each time.

use std::hint::black_box;
use std::time::Duration;

use cortex_wasm::WasmEngine;
use criterion::{Criterion, criterion_group, criterion_main};

const IMAGE_WASM: &[u8] = include_bytes!("../guests/image.wasm");

fn calls(c: &mut Criterion) {
    let module = WasmEngine::new().compile(IMAGE_WASM).expect("compiles");
    let mut instance = module.instantiate().expect("instantiates");
    let add = instance
        .typed_function::<(i32, i32), i32>("add")
        .expect("add");
    let image: Vec<u8> = (0..64 * 64 * 4).map(|i: u32| (i * 31) as u8).collect();

    let mut group = c.benchmark_group("calls");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("typed_add", |b| {
        b.iter(|| {
            let (x, y) = (black_box(2), black_box(3));
            black_box(
                instance
                    .call_with(|store| add.call(store, x, y))
                    .expect("add"),
            )
        })
    });
    group.bench_function("bytes_invert_16KiB", |b| {
        b.iter(|| {
            black_box(
                instance
                    .call_bytes("invert", black_box(&image))
                    .expect("invert"),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, calls);
criterion_main!(benches);
