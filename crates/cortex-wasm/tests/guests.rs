//! The committed Rust guests (`guests/rust`, built by `cargo xtask
//! wasm-guests`) through the host: images, JSON, their allocators, and
//! memory that stays flat across calls.

use cortex_wasm::{AllocatorKind, WasmEngine, WasmError, WasmPool};
use cortex_workers::WorkerPool;
use serde_json::{Value as Json, json};

const IMAGE: &[u8] = include_bytes!("../guests/image.wasm");
const JSON: &[u8] = include_bytes!("../guests/json.wasm");

/// An RGBA test image: a gradient with a varying alpha.
fn gradient(width: usize, height: usize) -> Vec<u8> {
    (0..width * height)
        .flat_map(|i| {
            let (x, y) = (i % width, i / width);
            [
                (x * 7) as u8,
                (y * 13) as u8,
                ((x + y) * 3) as u8,
                (255 - i % 256) as u8,
            ]
        })
        .collect()
}

#[test]
fn grayscale_and_invert_match_a_reference() {
    let engine = WasmEngine::builder().fuel(50_000_000).build().unwrap();
    let mut instance = engine.compile(IMAGE).unwrap().instantiate().unwrap();
    assert_eq!(instance.allocator_kind(), AllocatorKind::AllocDealloc);
    let image = gradient(37, 23);
    let gray = instance.call_bytes("grayscale", &image).unwrap();
    let expected: Vec<u8> = image
        .chunks(4)
        .flat_map(|p| {
            let luma =
                ((77 * u32::from(p[0]) + 150 * u32::from(p[1]) + 29 * u32::from(p[2])) >> 8) as u8;
            [luma, luma, luma, p[3]]
        })
        .collect();
    assert_eq!(gray, expected);
    let inverted = instance.call_bytes("invert", &image).unwrap();
    let expected: Vec<u8> = image
        .chunks(4)
        .flat_map(|p| [255 - p[0], 255 - p[1], 255 - p[2], p[3]])
        .collect();
    assert_eq!(inverted, expected);
    assert_eq!(
        instance.call_bytes("grayscale", &[]).unwrap(),
        Vec::<u8>::new()
    );
}

#[test]
fn blur_keeps_a_flat_image_flat_and_refuses_bad_geometry() {
    let engine = WasmEngine::builder().fuel(100_000_000).build().unwrap();
    let module = engine.compile(IMAGE).unwrap();
    let mut instance = module.instantiate().unwrap();
    let flat = vec![90_u8; 16 * 8 * 4];
    assert_eq!(
        instance.call_bytes_with("blur", &flat, &[16, 3]).unwrap(),
        flat
    );
    // One row [0, 90, 0] of gray pixels, radius 1: every mean is 30.
    let row: Vec<u8> = [0_u8, 90, 0].iter().flat_map(|&v| [v, v, v, v]).collect();
    let blurred = instance.call_bytes_with("blur", &row, &[3, 1]).unwrap();
    assert_eq!(blurred, vec![30; 12]);
    // A length that is not whole rows traps (and poisons the instance).
    assert!(matches!(
        instance.call_bytes_with("blur", &[0; 12], &[2, 1]),
        Err(WasmError::GuestTrap { .. })
    ));
    assert_eq!(
        instance.call_bytes("grayscale", &[0; 4]),
        Err(WasmError::Poisoned)
    );
    let mut instance = module.instantiate().unwrap();
    assert!(matches!(
        instance.call_bytes_with("blur", &[0; 16], &[4, 65]),
        Err(WasmError::GuestTrap { .. })
    ));
    assert!(matches!(
        instance.call_bytes_with("blur", &[0; 16], &[4]),
        Err(WasmError::ExportType { .. })
    ));
}

#[test]
fn json_round_trips_through_the_guest() {
    let engine = WasmEngine::builder().fuel(100_000_000).build().unwrap();
    let mut instance = engine.compile(JSON).unwrap().instantiate().unwrap();
    assert_eq!(instance.allocator_kind(), AllocatorKind::AllocFreeSized);
    let input = json!({"name": "cortex", "tags": ["wasm", "host"], "nested": {"ok": true, "n": 3}});
    let output: Json = instance.call_json("transform", &input).unwrap();
    assert_eq!(
        output,
        json!({
            "keys": 5,
            "strings": 3,
            "upper": {"name": "CORTEX", "tags": ["WASM", "HOST"], "nested": {"ok": true, "n": 3}}
        })
    );
    // Invalid JSON is the guest's answer, not a trap.
    let error = instance.call_bytes("transform", b"{\"a\":").unwrap();
    let error: Json = serde_json::from_slice(&error).unwrap();
    assert!(error["error"].is_string(), "{error}");
    assert_eq!(instance.call_bytes("echo", b"bytes").unwrap(), b"bytes");
}

#[test]
fn memory_stays_flat_across_many_calls() {
    let engine = WasmEngine::builder().fuel(100_000_000).build().unwrap();
    let mut image = engine.compile(IMAGE).unwrap().instantiate().unwrap();
    let mut json = engine.compile(JSON).unwrap().instantiate().unwrap();
    let picture = gradient(128, 128);
    let document = json!({"items": (0..50).map(|n| json!({"id": n, "label": format!("item {n}")})).collect::<Vec<_>>()});
    // Warm up: the guests' allocators take their pages on first use.
    image.call_bytes("grayscale", &picture).unwrap();
    let _: Json = json.call_json("transform", &document).unwrap();
    let (image_bytes, json_bytes) = (
        image.memory_stats().total_bytes,
        json.memory_stats().total_bytes,
    );
    for _ in 0..200 {
        image.call_bytes("grayscale", &picture).unwrap();
        let _: Json = json.call_json("transform", &document).unwrap();
    }
    assert_eq!(image.memory_stats().total_bytes, image_bytes);
    assert_eq!(json.memory_stats().total_bytes, json_bytes);
    assert_eq!(
        (
            image.memory_stats().allocations,
            json.memory_stats().allocations
        ),
        (0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_runs_the_image_filter_off_the_runtime() {
    let engine = WasmEngine::builder().fuel(100_000_000).build().unwrap();
    let pool = WasmPool::new(
        engine.compile(IMAGE).unwrap(),
        WorkerPool::builder("images").workers(2).queue_capacity(32),
    )
    .unwrap();
    let picture = gradient(64, 64);
    let calls: Vec<_> = (0..32)
        .map(|_| {
            let (pool, picture) = (pool.clone(), picture.clone());
            tokio::spawn(async move { pool.call_bytes("invert", picture).await })
        })
        .collect();
    for call in calls {
        let inverted = call.await.unwrap().unwrap();
        assert_eq!(inverted[0], 255 - picture[0]);
        assert_eq!(inverted.len(), picture.len());
    }
    let json: Json = {
        let engine = engine.clone();
        let pool = WasmPool::new(
            engine.compile(JSON).unwrap(),
            WorkerPool::builder("json").workers(1),
        )
        .unwrap();
        pool.call_json("transform", &json!({"a": "b"}))
            .await
            .unwrap()
    };
    assert_eq!(json["upper"]["a"], "B");
}
