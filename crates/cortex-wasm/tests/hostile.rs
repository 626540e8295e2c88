//! Bad input and hostile guests: each ends in a typed error, the host's
//! memory stays bounded, nothing panics.

use std::time::Duration;

use cortex_wasm::wasmer::Value;
use cortex_wasm::{WasmEngine, WasmError, WasmInstance};

const HOSTILE: &str = include_str!("../guests/wat/hostile.wat");

fn hostile(engine: &WasmEngine) -> WasmInstance {
    engine.compile(HOSTILE).unwrap().instantiate().unwrap()
}

#[test]
fn invalid_bytes_and_wat_are_compile_errors() {
    let engine = WasmEngine::new();
    for bad in [
        &b"\0asm\x01\0\0\0\x99"[..],
        b"not wasm at all",
        b"(module (func (export \"f\") (result i32)))",
    ] {
        assert!(
            matches!(engine.compile(bad), Err(WasmError::Compile(_))),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert!(matches!(
        engine.compile_file("/nonexistent/guest.wasm"),
        Err(WasmError::Io { .. })
    ));
}

#[test]
fn missing_and_mistyped_exports_are_named() {
    let engine = WasmEngine::new();
    let mut instance = hostile(&engine);
    assert_eq!(
        instance.call("nope", &[]),
        Err(WasmError::MissingExport {
            name: "nope".to_owned(),
            kind: "function"
        })
    );
    assert!(matches!(
        instance.typed_function::<i64, i64>("add"),
        Err(WasmError::ExportType { name, .. }) if name == "add"
    ));
    assert!(matches!(
        instance.call_bytes("add", b"x"),
        Err(WasmError::ExportType { .. })
    ));
    // Wrong arguments to an untyped call are the guest's error, typed.
    assert!(instance.call("add", &[Value::I32(1)]).is_err());
}

#[test]
fn a_module_without_memory_cannot_take_allocations() {
    let engine = WasmEngine::new();
    let mut instance = engine
        .compile(r#"(module (func (export "f")))"#)
        .unwrap()
        .instantiate()
        .unwrap();
    assert!(matches!(
        instance.alloc(8),
        Err(WasmError::MissingExport { kind: "memory", .. })
    ));
    assert!(matches!(
        instance.read_guest(0, 1),
        Err(WasmError::MissingExport { .. })
    ));
    assert_eq!(instance.memory_stats().total_bytes, 0);
    instance.call("f", &[]).unwrap();
}

#[test]
fn an_endless_loop_runs_out_of_fuel() {
    let engine = WasmEngine::builder().fuel(1_000_000).build().unwrap();
    let mut instance = hostile(&engine);
    assert_eq!(
        instance.call("spin", &[]),
        Err(WasmError::Exhausted { points: 1_000_000 })
    );
    assert!(instance.is_poisoned());
    assert_eq!(
        instance.call("add", &[Value::I32(1), Value::I32(2)]),
        Err(WasmError::Poisoned)
    );
}

#[test]
fn fuel_is_per_call() {
    let engine = WasmEngine::builder().fuel(10_000).build().unwrap();
    let mut instance = hostile(&engine);
    // Many cheap calls: each starts with a full budget.
    for _ in 0..10_000 {
        let sum = instance
            .call("add", &[Value::I32(2), Value::I32(3)])
            .unwrap();
        assert_eq!(&*sum, &[Value::I32(5)]);
    }
}

#[cfg(all(unix, feature = "interrupt"))]
#[test]
fn an_endless_loop_is_stopped_at_its_deadline() {
    let engine = WasmEngine::builder()
        .deadline(Duration::from_millis(50))
        .build()
        .unwrap();
    let mut instance = hostile(&engine);
    assert_eq!(
        instance.call("spin", &[]),
        Err(WasmError::TimedOut {
            deadline: Duration::from_millis(50)
        })
    );
    assert!(instance.is_poisoned());
    // The process and the engine are fine: a new instance works.
    let mut fresh = hostile(&engine);
    assert_eq!(
        &*fresh.call("add", &[Value::I32(1), Value::I32(1)]).unwrap(),
        &[Value::I32(2)]
    );
}

#[cfg(all(unix, feature = "interrupt"))]
#[test]
fn deadlines_on_many_threads_stop_only_their_own_calls() {
    let engine = WasmEngine::builder()
        .deadline(Duration::from_millis(30))
        .build()
        .unwrap();
    std::thread::scope(|scope| {
        let spinners: Vec<_> = (0..3)
            .map(|_| {
                let engine = engine.clone();
                scope.spawn(move || hostile(&engine).call("spin", &[]))
            })
            .collect();
        // Meanwhile short calls on another thread finish normally.
        let engine = engine.clone();
        let quick = scope.spawn(move || {
            let mut instance = hostile(&engine);
            (0..1_000).all(|n| {
                instance
                    .call("add", &[Value::I32(n), Value::I32(1)])
                    .ok()
                    .as_deref()
                    == Some(&[Value::I32(n + 1)][..])
            })
        });
        for spinner in spinners {
            assert!(matches!(
                spinner.join().unwrap(),
                Err(WasmError::TimedOut { .. })
            ));
        }
        assert!(quick.join().unwrap());
    });
}

#[test]
fn a_memory_hog_stops_at_the_cap() {
    let cap = 2 * 1024 * 1024;
    let engine = WasmEngine::builder().max_memory_bytes(cap).build().unwrap();
    let mut instance = hostile(&engine);
    assert_eq!(
        instance.call("hog", &[]),
        Err(WasmError::MemoryLimitExceeded { cap_bytes: cap })
    );
    assert_eq!(
        instance.memory_stats().total_bytes,
        cap,
        "never past the cap"
    );
}

#[test]
fn a_module_whose_initial_memory_is_above_the_cap_does_not_instantiate() {
    let engine = WasmEngine::builder()
        .max_memory_bytes(128 * 1024)
        .build()
        .unwrap();
    let module = engine
        .compile(r#"(module (memory (export "memory") 4))"#)
        .unwrap();
    assert!(matches!(
        module.instantiate(),
        Err(WasmError::Instantiate(_))
    ));
}

#[test]
fn traps_are_typed_and_poison_the_instance() {
    let engine = WasmEngine::new();
    let mut instance = hostile(&engine);
    assert!(matches!(
        instance.call("trap", &[]),
        Err(WasmError::GuestTrap { code: Some(code), .. }) if code == "unreachable"
    ));
    let mut instance = hostile(&engine);
    assert!(matches!(
        instance.call("div", &[Value::I32(1), Value::I32(0)]),
        Err(WasmError::GuestTrap { .. })
    ));
    let mut instance = hostile(&engine);
    assert!(matches!(
        instance.call("recurse", &[]),
        Err(WasmError::GuestTrap { .. })
    ));
    assert_eq!(instance.call("trap", &[]), Err(WasmError::Poisoned));
}

#[test]
fn results_outside_memory_are_out_of_bounds() {
    let engine = WasmEngine::new();
    let mut instance = hostile(&engine);
    assert!(matches!(
        instance.call_bytes("oob_result", b"abc"),
        Err(WasmError::OutOfBounds {
            ptr: 0xFFFF_0000,
            len: 16,
            ..
        })
    ));
    assert!(matches!(
        instance.call_bytes("past_end", b"abc"),
        Err(WasmError::OutOfBounds { len: 1024, .. })
    ));
    // Neither poisoned the instance (the guest ran fine; its answer was
    // refused), and the inputs were freed.
    assert!(!instance.is_poisoned());
    assert_eq!(instance.memory_stats().allocations, 0);
    assert_eq!(instance.call_bytes("reverse", b"abc").unwrap(), b"cba");
}

#[test]
fn reads_and_writes_that_overflow_are_refused() {
    let engine = WasmEngine::new();
    let mut instance = hostile(&engine);
    let ptr = instance.alloc(16).unwrap();
    for (at, len) in [
        (ptr, 17_u32),
        (ptr + 8, 9),
        (ptr, u32::MAX),
        (u32::MAX, 1),
        (u32::MAX - 1, u32::MAX),
        (0, 1),
    ] {
        assert!(instance.read(at, len).is_err(), "read {at:#x}+{len}");
    }
    assert!(
        instance.read_guest(u64::MAX, 2).is_err(),
        "ptr + len overflows u64"
    );
    assert!(instance.read_guest(u64::from(u32::MAX), u64::MAX).is_err());
    assert!(matches!(
        instance.write(ptr + 10, &[0; 7]),
        Err(WasmError::OutOfBounds { .. })
    ));
    assert!(matches!(
        instance.write(ptr + 16, &[0]),
        Err(WasmError::UnknownPointer(_))
    ));
    instance.write(ptr + 8, &[7; 8]).unwrap();
    assert_eq!(instance.read(ptr + 8, 8).unwrap(), [7; 8]);
}

#[test]
fn double_frees_and_foreign_pointers_are_refused() {
    let engine = WasmEngine::new();
    let mut instance = hostile(&engine);
    let ptr = instance.alloc(32).unwrap();
    instance.free(ptr).unwrap();
    assert_eq!(instance.free(ptr), Err(WasmError::DoubleFree(ptr)));
    assert_eq!(
        instance.free(12_345),
        Err(WasmError::UnknownPointer(12_345))
    );
    assert_eq!(
        instance.free(ptr + 8),
        Err(WasmError::UnknownPointer(ptr + 8))
    );
    assert!(matches!(
        instance.read(ptr, 1),
        Err(WasmError::UnknownPointer(_))
    ));
}

#[test]
fn a_guest_that_grows_memory_between_two_reads_is_read_through_a_fresh_view() {
    let engine = WasmEngine::new();
    let mut instance = hostile(&engine);
    let ptr = instance.alloc(4).unwrap();
    instance.write(ptr, b"wasm").unwrap();
    let before = instance.memory_stats().total_bytes;
    let grown = instance.call("grow", &[Value::I32(16)]).unwrap();
    assert!(matches!(&*grown, [Value::I32(pages)] if *pages > 0));
    assert_eq!(instance.memory_stats().total_bytes, before + 16 * 65_536);
    assert_eq!(instance.read(ptr, 4).unwrap(), b"wasm");
    // The new pages are readable at once.
    let end = instance.memory_stats().total_bytes;
    assert_eq!(instance.read_guest(end - 4, 4).unwrap(), [0; 4]);
    assert!(instance.read_guest(end - 3, 4).is_err());
}

#[test]
fn the_host_region_reuses_and_merges_free_blocks() {
    let engine = WasmEngine::new();
    let mut instance = hostile(&engine);
    let blocks: Vec<u32> = (0..64).map(|_| instance.alloc(1000).unwrap()).collect();
    let grown = instance.memory_stats().total_bytes;
    for &block in blocks.iter().step_by(2) {
        instance.free(block).unwrap();
    }
    let stats = instance.memory_stats();
    assert_eq!(stats.allocations, 32);
    assert!(stats.free_blocks >= 32, "{stats:?}");
    // Freed blocks are reused before the memory grows again.
    let again: Vec<u32> = (0..32).map(|_| instance.alloc(1000).unwrap()).collect();
    assert_eq!(instance.memory_stats().total_bytes, grown);
    for block in blocks.iter().skip(1).step_by(2).chain(&again) {
        instance.free(*block).unwrap();
    }
    let stats = instance.memory_stats();
    assert_eq!(
        (stats.allocations, stats.allocated_bytes, stats.free_blocks),
        (0, 0, 1),
        "{stats:?}"
    );
    assert_eq!(
        stats.free_bytes + 65_536,
        stats.total_bytes,
        "one region, fully free"
    );
}

#[test]
fn allocations_past_the_cap_are_refused() {
    let cap = 1024 * 1024;
    let engine = WasmEngine::builder().max_memory_bytes(cap).build().unwrap();
    let mut instance = hostile(&engine);
    assert_eq!(
        instance.alloc(2 * 1024 * 1024),
        Err(WasmError::MemoryLimitExceeded { cap_bytes: cap })
    );
    assert_eq!(
        instance.alloc(u32::MAX),
        Err(WasmError::MemoryLimitExceeded { cap_bytes: cap })
    );
    // A failed allocation does not poison: smaller ones still work.
    let ptr = instance.alloc(1024).unwrap();
    instance.free(ptr).unwrap();
}

/// The modules of `allocators.wat`, split at its section lines (each
/// section's first line is its title comment).
fn allocator_guests() -> Vec<String> {
    include_str!("../guests/wat/allocators.wat")
        .split("\n;; ---- ")
        .skip(1)
        .map(|section| {
            section
                .split_once('\n')
                .map_or("", |(_, body)| body)
                .to_owned()
        })
        .collect()
}

#[test]
fn guest_allocators_are_detected_and_used() {
    use cortex_wasm::AllocatorKind;
    let engine = WasmEngine::new();
    let guests = allocator_guests();
    for (source, kind) in guests
        .iter()
        .zip([AllocatorKind::CabiRealloc, AllocatorKind::Wbindgen])
    {
        let mut instance = engine.compile(source).unwrap().instantiate().unwrap();
        assert_eq!(instance.allocator_kind(), kind);
        assert_eq!(
            instance.call_bytes("echo", b"hello guest").unwrap(),
            b"hello guest"
        );
        let ptr = instance.alloc(8).unwrap();
        assert!(ptr >= 65_536, "the guest's allocator chose {ptr:#x}");
        instance.write(ptr, b"12345678").unwrap();
        assert_eq!(instance.read(ptr, 8).unwrap(), b"12345678");
        instance.free(ptr).unwrap();
        assert_eq!(instance.free(ptr), Err(WasmError::DoubleFree(ptr)));
    }
}

#[test]
fn a_guest_allocator_returning_pointers_outside_memory_is_caught() {
    let engine = WasmEngine::new();
    let mut instance = engine
        .compile(&allocator_guests()[2])
        .unwrap()
        .instantiate()
        .unwrap();
    assert!(matches!(
        instance.alloc(64),
        Err(WasmError::OutOfBounds {
            ptr: 0x7FFF_FFF0,
            ..
        })
    ));
    assert!(instance.call_bytes("echo", b"x").is_err());
}

#[cfg(all(unix, feature = "interrupt"))]
#[test]
fn with_fuel_to_spare_the_deadline_stops_the_loop() {
    let engine = WasmEngine::builder()
        .deadline(Duration::from_millis(50))
        .fuel(20_000_000_000)
        .build()
        .unwrap();
    for _ in 0..3 {
        let mut instance = hostile(&engine);
        assert_eq!(
            instance.call("spin", &[]),
            Err(WasmError::TimedOut {
                deadline: Duration::from_millis(50)
            })
        );
    }
}

/// The watchdog sleeps up to a second when no call runs; a call that
/// starts then must wake it, or its deadline would slip to that second.
#[cfg(all(unix, feature = "interrupt"))]
#[test]
fn a_call_after_a_quiet_spell_still_stops_at_its_deadline() {
    let engine = WasmEngine::builder()
        .deadline(Duration::from_millis(50))
        .build()
        .unwrap();
    let mut quick = hostile(&engine);
    for round in 0..3 {
        quick.call("add", &[Value::I32(1), Value::I32(2)]).unwrap();
        // The watchdog has gone back to its idle sleep.
        std::thread::sleep(Duration::from_millis(30));
        let started = std::time::Instant::now();
        assert!(matches!(
            hostile(&engine).call("spin", &[]),
            Err(WasmError::TimedOut { .. })
        ));
        // Far more than 50 ms, far less than the watchdog's 1 s idle sleep.
        assert!(
            started.elapsed() < Duration::from_millis(700),
            "round {round}: {:?}",
            started.elapsed()
        );
    }
}
