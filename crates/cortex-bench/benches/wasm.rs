//! cortex-wasm against raw wasmer 7.4 (the same wasmer, the same
//! Cranelift compiler, the same committed guests of
//! `crates/cortex-wasm/guests/`), every row in the same run.
//!
//! The raw peer is what a hand-written embedder does with a plain `Store`:
//! typed functions resolved once, then `TypedFunction::call`, memory
//! written and read through a view, the guest's allocator called by hand;
//! no metering, no deadline, no memory cap, no bounds or allocation
//! bookkeeping, no poisoning.
//!
//! - `wasm_call_add`: one call of `add(i32, i32) -> i32` (image.wasm).
//!   `cortex`: `typed_function` once, then `call_with(|store|
//!   add.call(store, ..))` per call on the default engine (no fuel, no
//!   deadline); `wasmer`: `TypedFunction::call` on the plain store.
//!   `cortex-untyped`: `call("add", &[Value])`. `cortex-fuel` and
//!   `cortex-deadline`: the typed call on an engine with metering or a
//!   wall-clock deadline on (neither ever reached).
//! - `wasm_json_1KiB`: a 1 KiB JSON document through json.wasm's
//!   `transform`. `cortex`: `call_json` (serde in and out on the host);
//!   `wasmer`: the same serde calls around alloc / write / call / read /
//!   free by hand. `cortex-bytes` / `wasmer-bytes`: the same, with the
//!   document's bytes encoded once outside the loop and the answer left as
//!   bytes (the ABI's cost alone).
//! - `wasm_request_invert_64x64`: one request of `invert` on a 64×64 RGBA
//!   image (16 KiB). `cortex-pool`: `WasmPool::call_bytes` on 2 workers,
//!   their instances made once and reused, awaited on a current-thread
//!   runtime (the request's body is a fresh `Vec` each time, as a server's
//!   would be). `cortex-instance` / `wasmer-instance`: one instance reused
//!   on the calling thread. `cortex-instantiate`: `module.instantiate()` +
//!   `call_bytes` per request (compiled once); `wasmer-instantiate`: a new
//!   `Store` + `Instance::new` + the hand-written call per request.
//! - `wasm_limits_grayscale_1MiB`: `grayscale` over a 1 MiB RGBA image,
//!   the cost of the limits on a CPU-heavy guest: `cortex` (limits off),
//!   `cortex-fuel` (metering on), `cortex-deadline` (deadline on),
//!   `cortex-fuel-deadline` (both) and `wasmer`.
//!
//! Every contender's output is checked against the others' once, before
//! anything is measured.
//!
//! Not here: extism. Its `Plugin::call` runs only exports of its own ABI
//! (`() -> i32`, input and output through the extism kernel's
//! `extism:host/env` imports), so it cannot run these guests' plain
//! `(ptr, len) -> i64` exports; comparing it would mean PDK builds of
//! other guests, and a second runtime (wasmtime) in this workspace.

use std::hint::black_box;
use std::time::{Duration, Instant};

use cortex_wasm::{WasmEngine, WasmInstance, WasmModule, WasmPool};
use cortex_workers::WorkerPool;
use criterion::{
    BenchmarkGroup, Criterion, SamplingMode, criterion_group, criterion_main, measurement::WallTime,
};
use wasmer::{
    Engine, Imports, Instance, Memory, Module, Store, TypedFunction, Value, sys::Cranelift,
};

const IMAGE_WASM: &[u8] = include_bytes!("../../cortex-wasm/guests/image.wasm");
const JSON_WASM: &[u8] = include_bytes!("../../cortex-wasm/guests/json.wasm");

/// Metering points per call: far more than any call here uses.
const FUEL: u64 = 1_000_000_000;
/// The deadline of the `deadline` rows: never reached.
const DEADLINE: Duration = Duration::from_secs(10);
/// Worker threads of the pool.
const WORKERS: usize = 2;

/// The engines of the cortex rows.
struct Engines {
    plain: WasmEngine,
    fuel: WasmEngine,
    deadline: WasmEngine,
    both: WasmEngine,
}

impl Engines {
    fn new() -> Self {
        let build = |builder: cortex_wasm::WasmEngineBuilder| builder.build().expect("engine");
        Self {
            plain: build(WasmEngine::builder()),
            fuel: build(WasmEngine::builder().fuel(FUEL)),
            deadline: build(WasmEngine::builder().deadline(DEADLINE)),
            both: build(WasmEngine::builder().fuel(FUEL).deadline(DEADLINE)),
        }
    }
}

fn instance(engine: &WasmEngine, wasm: &[u8]) -> WasmInstance {
    engine
        .compile(wasm)
        .expect("compiles")
        .instantiate()
        .expect("instantiates")
}

/// The raw peer's engine: Cranelift with wasmer's default tunables.
fn raw_engine() -> Engine {
    Cranelift::default().into()
}

/// A raw wasmer instance with the functions of the bytes convention
/// resolved once, as a hand-written embedder keeps them.
struct Raw {
    store: Store,
    memory: Memory,
    alloc: TypedFunction<i32, i32>,
    free: TypedFunction<(i32, i32), ()>,
    instance: Instance,
}

impl Raw {
    /// `free` is the guest's free function: `dealloc` (image) or `free`
    /// (json).
    fn new(engine: &Engine, module: &Module, free: &str) -> Self {
        let mut store = Store::new(engine.clone());
        let instance = Instance::new(&mut store, module, &Imports::new()).expect("instantiates");
        let exports = &instance.exports;
        Self {
            memory: exports.get_memory("memory").expect("memory").clone(),
            alloc: exports.get_typed_function(&store, "alloc").expect("alloc"),
            free: exports.get_typed_function(&store, free).expect("free"),
            store,
            instance,
        }
    }

    fn function<Args, Rets>(&self, name: &str) -> TypedFunction<Args, Rets>
    where
        Args: wasmer::WasmTypeList,
        Rets: wasmer::WasmTypeList,
    {
        self.instance
            .exports
            .get_typed_function(&self.store, name)
            .expect("export")
    }

    /// The bytes convention by hand: alloc, write, call, read, free both.
    fn call_bytes(&mut self, function: &TypedFunction<(i32, i32), i64>, input: &[u8]) -> Vec<u8> {
        let len = i32::try_from(input.len()).expect("fits the guest");
        let ptr = self.alloc.call(&mut self.store, len).expect("alloc");
        self.memory
            .view(&self.store)
            .write(ptr as u32 as u64, input)
            .expect("write");
        let packed = function.call(&mut self.store, ptr, len).expect("call") as u64;
        let (out_ptr, out_len) = (packed >> 32, packed & 0xFFFF_FFFF);
        let mut output = vec![0; out_len as usize];
        self.memory
            .view(&self.store)
            .read(out_ptr, &mut output)
            .expect("read");
        self.free
            .call(&mut self.store, out_ptr as i32, out_len as i32)
            .expect("free output");
        self.free
            .call(&mut self.store, ptr, len)
            .expect("free input");
        output
    }
}

/// A JSON document of exactly 1 KiB encoded: nested objects and arrays
/// of strings, numbers and booleans, padded by a `note` string.
fn document() -> serde_json::Value {
    let size = |doc: &serde_json::Value| serde_json::to_vec(doc).expect("encodes").len();
    let build = |items: usize, note: usize| {
        let items: Vec<serde_json::Value> = (0..items)
            .map(|i| {
                serde_json::json!({
                    "id": i,
                    "name": format!("item-{i}"),
                    "tags": ["alpha", "beta"],
                    "price": i as f64 * 1.25,
                    "active": i % 2 == 0,
                })
            })
            .collect();
        serde_json::json!({
            "user": { "name": "ada lovelace", "email": "ada@example.com" },
            "items": items,
            "note": "n".repeat(note),
        })
    };
    let items = (1..)
        .find(|&items| size(&build(items + 1, 0)) > 1024)
        .expect("some count passes 1 KiB");
    let doc = build(items, 1024 - size(&build(items, 0)));
    assert_eq!(size(&doc), 1024);
    doc
}

/// An RGBA image of `bytes` bytes with varied pixels.
fn image(bytes: usize) -> Vec<u8> {
    (0..bytes)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 7)) as u8)
        .collect()
}

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group
}

fn call_overhead(c: &mut Criterion, engines: &Engines) {
    let typed = |engine: &WasmEngine| {
        let instance = instance(engine, IMAGE_WASM);
        let add = instance
            .typed_function::<(i32, i32), i32>("add")
            .expect("add");
        (instance, add)
    };
    let engine = raw_engine();
    let module = Module::new(&engine, IMAGE_WASM).expect("compiles");
    let mut raw = Raw::new(&engine, &module, "dealloc");
    let raw_add: TypedFunction<(i32, i32), i32> = raw.function("add");
    assert_eq!(raw_add.call(&mut raw.store, 2, 3).expect("add"), 5);

    let mut group = group(c, "wasm_call_add");
    for (id, engine) in [
        ("cortex", &engines.plain),
        ("cortex-fuel", &engines.fuel),
        ("cortex-deadline", &engines.deadline),
    ] {
        let (mut instance, add) = typed(engine);
        assert_eq!(instance.call_with(|store| add.call(store, 2, 3)), Ok(5));
        group.bench_function(id, |b| {
            b.iter(|| {
                let (x, y) = (black_box(2), black_box(3));
                black_box(
                    instance
                        .call_with(|store| add.call(store, x, y))
                        .expect("add"),
                )
            })
        });
    }
    group.bench_function("wasmer", |b| {
        b.iter(|| {
            let (x, y) = (black_box(2), black_box(3));
            black_box(raw_add.call(&mut raw.store, x, y).expect("add"))
        })
    });
    let mut untyped = instance(&engines.plain, IMAGE_WASM);
    group.bench_function("cortex-untyped", |b| {
        b.iter(|| {
            let args = [Value::I32(black_box(2)), Value::I32(black_box(3))];
            black_box(untyped.call("add", &args).expect("add"))
        })
    });
    group.finish();
}

fn json_round_trip(c: &mut Criterion, engines: &Engines) {
    let doc = document();
    let bytes = serde_json::to_vec(&doc).expect("encodes");
    let mut cortex = instance(&engines.plain, JSON_WASM);
    let engine = raw_engine();
    let module = Module::new(&engine, JSON_WASM).expect("compiles");
    let mut raw = Raw::new(&engine, &module, "free");
    let transform: TypedFunction<(i32, i32), i64> = raw.function("transform");
    let raw_json = |raw: &mut Raw, doc: &serde_json::Value| -> serde_json::Value {
        let input = serde_json::to_vec(doc).expect("encodes");
        let output = raw.call_bytes(&transform, &input);
        serde_json::from_slice(&output).expect("decodes")
    };
    let expected: serde_json::Value = cortex.call_json("transform", &doc).expect("transform");
    assert!(expected["upper"].is_object(), "{expected}");
    assert_eq!(raw_json(&mut raw, &doc), expected);
    assert_eq!(
        cortex.call_bytes("transform", &bytes).expect("transform"),
        raw.call_bytes(&transform, &bytes)
    );

    let mut group = group(c, "wasm_json_1KiB");
    group.bench_function("cortex", |b| {
        b.iter(|| {
            let out: serde_json::Value = cortex
                .call_json("transform", black_box(&doc))
                .expect("transform");
            black_box(out)
        })
    });
    group.bench_function("wasmer", |b| {
        b.iter(|| black_box(raw_json(&mut raw, black_box(&doc))))
    });
    group.bench_function("cortex-bytes", |b| {
        b.iter(|| {
            black_box(
                cortex
                    .call_bytes("transform", black_box(&bytes))
                    .expect("transform"),
            )
        })
    });
    group.bench_function("wasmer-bytes", |b| {
        b.iter(|| black_box(raw.call_bytes(&transform, black_box(&bytes))))
    });
    group.finish();
}

fn per_request(c: &mut Criterion, engines: &Engines) {
    let input = image(64 * 64 * 4);
    let module: WasmModule = engines.plain.compile(IMAGE_WASM).expect("compiles");
    let pool = WasmPool::new(
        module.clone(),
        WorkerPool::builder("wasm-bench").workers(WORKERS),
    )
    .expect("pool");
    pool.warm().expect("instances on every worker");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut reused = module.instantiate().expect("instantiates");
    let engine = raw_engine();
    let raw_module = Module::new(&engine, IMAGE_WASM).expect("compiles");
    let mut raw = Raw::new(&engine, &raw_module, "dealloc");
    let invert: TypedFunction<(i32, i32), i64> = raw.function("invert");
    let raw_per_request = |input: &[u8]| {
        let mut raw = Raw::new(&engine, &raw_module, "dealloc");
        let invert: TypedFunction<(i32, i32), i64> = raw.function("invert");
        raw.call_bytes(&invert, input)
    };
    let expected = reused.call_bytes("invert", &input).expect("invert");
    assert_eq!(
        rt.block_on(pool.call_bytes("invert", input.clone()))
            .expect("invert"),
        expected
    );
    assert_eq!(raw.call_bytes(&invert, &input), expected);
    assert_eq!(raw_per_request(&input), expected);

    let mut group = group(c, "wasm_request_invert_64x64");
    group.bench_function("cortex-pool", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let body = input.clone();
                    black_box(pool.call_bytes("invert", body).await.expect("invert"));
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("cortex-instance", |b| {
        b.iter(|| {
            black_box(
                reused
                    .call_bytes("invert", black_box(&input))
                    .expect("invert"),
            )
        })
    });
    group.bench_function("wasmer-instance", |b| {
        b.iter(|| black_box(raw.call_bytes(&invert, black_box(&input))))
    });
    group.bench_function("cortex-instantiate", |b| {
        b.iter(|| {
            let mut instance = module.instantiate().expect("instantiates");
            black_box(
                instance
                    .call_bytes("invert", black_box(&input))
                    .expect("invert"),
            )
        })
    });
    group.bench_function("wasmer-instantiate", |b| {
        b.iter(|| black_box(raw_per_request(black_box(&input))))
    });
    group.finish();
    drop(pool);
}

fn limits(c: &mut Criterion, engines: &Engines) {
    let input = image(1024 * 1024);
    let engine = raw_engine();
    let module = Module::new(&engine, IMAGE_WASM).expect("compiles");
    let mut raw = Raw::new(&engine, &module, "dealloc");
    let grayscale: TypedFunction<(i32, i32), i64> = raw.function("grayscale");
    let expected = raw.call_bytes(&grayscale, &input);

    // An iteration is about a millisecond: ten flat samples.
    let mut group = group(c, "wasm_limits_grayscale_1MiB");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    for (id, engine) in [
        ("cortex", &engines.plain),
        ("cortex-fuel", &engines.fuel),
        ("cortex-deadline", &engines.deadline),
        ("cortex-fuel-deadline", &engines.both),
    ] {
        let mut instance = instance(engine, IMAGE_WASM);
        assert_eq!(
            instance.call_bytes("grayscale", &input).expect("grayscale"),
            expected,
            "{id}"
        );
        group.bench_function(id, |b| {
            b.iter(|| {
                black_box(
                    instance
                        .call_bytes("grayscale", black_box(&input))
                        .expect("grayscale"),
                )
            })
        });
    }
    group.bench_function("wasmer", |b| {
        b.iter(|| black_box(raw.call_bytes(&grayscale, black_box(&input))))
    });
    group.finish();
}

fn wasm(c: &mut Criterion) {
    let engines = Engines::new();
    call_overhead(c, &engines);
    json_round_trip(c, &engines);
    per_request(c, &engines);
    limits(c, &engines);
}

criterion_group!(benches, wasm);
criterion_main!(benches);
