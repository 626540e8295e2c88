//! [`WasmInstance`]: one guest with its own store and memory; calls run
//! under the engine's limits, and their failures become [`WasmError`]s.

use std::time::Instant;

use serde::Serialize;
use serde::de::DeserializeOwned;
use wasmer::sys::vm::TrapCode;
use wasmer::{
    Function, Imports, Instance, Memory, RuntimeError, Store, TypedFunction, Value, WasmTypeList,
};
use wasmer_middlewares::metering::{MeteringPoints, get_remaining_points, set_remaining_points};

use crate::deadline::Interrupter;
use crate::error::WasmError;
use crate::memory::{
    AllocationTable, AllocatorKind, GuestAllocator, HostHeap, MemoryStats, PAGE, aligned,
    check_memory,
};
use crate::module::{WasmModule, describe};

/// One instance of a [`WasmModule`]: its store, its exports, the memory
/// manager over its linear memory, and the engine's limits on every call.
///
/// Not `Send`: wasmer's store stays on the thread that created it (a
/// [`WasmPool`](crate::WasmPool) keeps one instance per worker thread).
///
/// A call that traps, runs out of fuel, passes its deadline or hits the
/// memory cap **poisons** the instance: its state may be half updated, so
/// later calls get [`WasmError::Poisoned`]; make a new instance.
///
/// ```
/// use cortex_wasm::WasmEngine;
///
/// let module = WasmEngine::new().compile(r#"(module (memory (export "memory") 1)
///     (func (export "sum") (param i32 i32) (result i32) (local $s i32)
///       (block $done (loop $next
///         (br_if $done (i32.eqz (local.get 1)))
///         (local.set $s (i32.add (local.get $s) (i32.load8_u (local.get 0))))
///         (local.set 0 (i32.add (local.get 0) (i32.const 1)))
///         (local.set 1 (i32.sub (local.get 1) (i32.const 1)))
///         (br $next)))
///       (local.get $s)))"#)?;
/// let mut instance = module.instantiate()?;
/// // No allocator exported: the host manages pages it grows itself.
/// let ptr = instance.alloc(3)?;
/// instance.write(ptr, &[1, 2, 3])?;
/// let sum = instance.typed_function::<(i32, i32), i32>("sum")?;
/// assert_eq!(instance.call_with(|store| sum.call(store, ptr as i32, 3))?, 6);
/// assert_eq!(instance.read(ptr, 3)?, [1, 2, 3]);
/// instance.free(ptr)?;
/// assert!(instance.free(ptr).is_err()); // a double free is an error, not UB
/// # Ok::<(), cortex_wasm::WasmError>(())
/// ```
pub struct WasmInstance {
    store: Store,
    instance: Instance,
    memory: Option<Memory>,
    module: WasmModule,
    allocator: Option<GuestAllocator>,
    heap: HostHeap,
    table: AllocationTable,
    interrupter: Option<Interrupter>,
    poisoned: bool,
}

impl std::fmt::Debug for WasmInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmInstance")
            .field("module", &self.module.hash())
            .field("allocator", &self.allocator_kind())
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl WasmInstance {
    pub(crate) fn new(module: WasmModule) -> Result<Self, WasmError> {
        let mut store = Store::new(module.inner.engine.clone());
        let instance = Instance::new(&mut store, &module.inner.module, &Imports::new())
            .map_err(|error| WasmError::Instantiate(error.to_string()))?;
        let memory = instance.exports.get_memory("memory").ok().cloned();
        let allocator = GuestAllocator::detect(&store, &instance.exports);
        #[cfg(all(unix, feature = "interrupt"))]
        let interrupter = module
            .inner
            .shared
            .config
            .deadline
            .map(|_| store.interrupter());
        #[cfg(not(all(unix, feature = "interrupt")))]
        let interrupter = None;
        Ok(Self {
            store,
            instance,
            memory,
            module,
            allocator,
            heap: HostHeap::default(),
            table: AllocationTable::default(),
            interrupter,
            poisoned: false,
        })
    }

    /// The module this is an instance of.
    pub fn module(&self) -> &WasmModule {
        &self.module
    }

    /// Whether an earlier failure poisoned the instance.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// The allocator found in the guest's exports (or the host's).
    pub fn allocator_kind(&self) -> AllocatorKind {
        self.allocator
            .as_ref()
            .map_or(AllocatorKind::Host, GuestAllocator::kind)
    }

    /// The exported function `name` with the given signature.
    pub fn typed_function<Args: WasmTypeList, Rets: WasmTypeList>(
        &self,
        name: &str,
    ) -> Result<TypedFunction<Args, Rets>, WasmError> {
        let function = self.function(name)?;
        function
            .typed(&self.store)
            .map_err(|_| WasmError::ExportType {
                name: name.to_owned(),
                expected: format!("func {:?} -> {:?}", Args::wasm_types(), Rets::wasm_types()),
                found: describe(&wasmer::ExternType::Function(function.ty(&self.store))),
            })
    }

    fn function(&self, name: &str) -> Result<Function, WasmError> {
        self.instance
            .exports
            .get_function(name)
            .cloned()
            .map_err(|_| WasmError::MissingExport {
                name: name.to_owned(),
                kind: "function",
            })
    }

    /// Calls the exported function `name` with untyped values.
    pub fn call(&mut self, name: &str, args: &[Value]) -> Result<Box<[Value]>, WasmError> {
        let _span = tracing::debug_span!("wasm.call", function = name).entered();
        let function = self.function(name)?;
        self.call_with(|store| function.call(store, args))
    }

    /// Runs `call` (a wasmer call on this instance's store, typically a
    /// [`TypedFunction::call`] from [`typed_function`](Self::typed_function))
    /// under the engine's limits: the fuel budget is reset, the deadline
    /// watched, and a failure classified (and the instance poisoned when
    /// its state may be broken).
    pub fn call_with<R>(
        &mut self,
        call: impl FnOnce(&mut Store) -> Result<R, RuntimeError>,
    ) -> Result<R, WasmError> {
        if self.poisoned {
            return Err(WasmError::Poisoned);
        }
        let shared = &self.module.inner.shared;
        if let Some(fuel) = shared.config.fuel {
            set_remaining_points(&mut self.store, &self.instance, fuel);
        }
        let watch = match (shared.config.deadline, &self.interrupter) {
            (Some(deadline), Some(interrupter)) => Some(
                shared
                    .deadlines
                    .watch(Instant::now() + deadline, interrupter),
            ),
            _ => None,
        };
        let result = call(&mut self.store);
        drop(watch);
        result.map_err(|error| {
            let error = self.classify(error);
            if error.poisons() {
                self.poisoned = true;
            }
            error
        })
    }

    /// What a failed call means.
    fn classify(&mut self, error: RuntimeError) -> WasmError {
        let config = &self.module.inner.shared.config;
        let message = error.message();
        match error.clone().to_trap() {
            Some(TrapCode::HostInterrupt) => WasmError::TimedOut {
                deadline: config.deadline.unwrap_or_default(),
            },
            Some(TrapCode::UnreachableCodeReached)
                if config.fuel.is_some()
                    && get_remaining_points(&mut self.store, &self.instance)
                        == MeteringPoints::Exhausted =>
            {
                WasmError::Exhausted {
                    points: config.fuel.unwrap_or_default(),
                }
            }
            Some(code) if self.memory_at_cap() => {
                let _ = code;
                WasmError::MemoryLimitExceeded {
                    cap_bytes: self.cap_bytes(),
                }
            }
            Some(code) => WasmError::GuestTrap {
                code: Some(code.to_string()),
                message,
            },
            None => WasmError::Host(message),
        }
    }

    fn cap_bytes(&self) -> u64 {
        u64::from(self.module.inner.shared.max_pages.0) * PAGE
    }

    /// A trap with the memory at its cap: the guest ran out of memory
    /// (its `memory.grow` failed and it aborted).
    fn memory_at_cap(&self) -> bool {
        self.memory
            .as_ref()
            .is_some_and(|memory| memory.view(&self.store).data_size() >= self.cap_bytes())
    }

    fn memory(&self) -> Result<&Memory, WasmError> {
        self.memory.as_ref().ok_or(WasmError::MissingExport {
            name: "memory".to_owned(),
            kind: "memory",
        })
    }

    /// Allocates `size` bytes in guest memory (through the guest's own
    /// allocator, or the host-managed region) and records the allocation.
    pub fn alloc(&mut self, size: u32) -> Result<u32, WasmError> {
        self.memory()?;
        let ptr = match self.allocator.clone() {
            Some(allocator) => self.guest_alloc(&allocator, size)?,
            None => self.host_alloc(size)?,
        };
        self.table.insert(ptr, size);
        Ok(ptr)
    }

    fn guest_alloc(&mut self, allocator: &GuestAllocator, size: u32) -> Result<u32, WasmError> {
        // The guest sees sizes as i32: larger requests cannot be expressed.
        let request = i32::try_from(size).map_err(|_| WasmError::MemoryLimitExceeded {
            cap_bytes: self.cap_bytes(),
        })?;
        let ptr = match allocator {
            GuestAllocator::CabiRealloc(realloc) => {
                self.call_with(|store| realloc.call(store, 0, 0, 8, request))?
            }
            GuestAllocator::AllocDealloc(alloc, _)
            | GuestAllocator::AllocFreeSized(alloc, _)
            | GuestAllocator::AllocFree(alloc, _) => {
                self.call_with(|store| alloc.call(store, request))?
            }
            GuestAllocator::Wbindgen(malloc, _) => {
                self.call_with(|store| malloc.call(store, request, 8))?
            }
        };
        // A guest allocator signals failure with 0 (a zero-size request may
        // get any dangling pointer); whatever it returns must lie inside
        // memory before the host writes there.
        let ptr = u32::from_ne_bytes(ptr.to_ne_bytes());
        if ptr == 0 && size > 0 {
            return Err(WasmError::MemoryLimitExceeded {
                cap_bytes: self.cap_bytes(),
            });
        }
        check_memory(self.memory()?, &self.store, u64::from(ptr), u64::from(size))?;
        Ok(ptr)
    }

    fn host_alloc(&mut self, size: u32) -> Result<u32, WasmError> {
        let size = aligned(size).ok_or(WasmError::MemoryLimitExceeded {
            cap_bytes: self.cap_bytes(),
        })?;
        if let Some(ptr) = self.heap.take(size) {
            return Ok(ptr);
        }
        // Grow the memory by enough pages and add them to the region.
        let memory = self.memory()?.clone();
        let start = memory.view(&self.store).data_size();
        let pages = u64::from(size).div_ceil(PAGE);
        let pages = u32::try_from(pages).map_err(|_| WasmError::MemoryLimitExceeded {
            cap_bytes: self.cap_bytes(),
        })?;
        memory
            .grow(&mut self.store, pages)
            .map_err(|_| WasmError::MemoryLimitExceeded {
                cap_bytes: self.cap_bytes(),
            })?;
        let start = u32::try_from(start).map_err(|_| WasmError::MemoryLimitExceeded {
            cap_bytes: self.cap_bytes(),
        })?;
        let grown = u32::try_from(u64::from(pages) * PAGE).unwrap_or(u32::MAX);
        self.heap.give(start, grown);
        self.heap.take(size).ok_or(WasmError::MemoryLimitExceeded {
            cap_bytes: self.cap_bytes(),
        })
    }

    /// Frees an allocation made by [`alloc`](Self::alloc). A pointer not
    /// allocated here is [`WasmError::UnknownPointer`], one already freed
    /// [`WasmError::DoubleFree`].
    pub fn free(&mut self, ptr: u32) -> Result<(), WasmError> {
        let size = self.table.remove(ptr)?;
        match self.allocator.clone() {
            Some(allocator) => self.guest_free(&allocator, ptr, size),
            None => {
                self.heap.give(ptr, aligned(size).unwrap_or(size));
                Ok(())
            }
        }
    }

    fn guest_free(
        &mut self,
        allocator: &GuestAllocator,
        ptr: u32,
        size: u32,
    ) -> Result<(), WasmError> {
        let ptr = i32::from_ne_bytes(ptr.to_ne_bytes());
        let size = i32::try_from(size).unwrap_or(i32::MAX);
        match allocator {
            // The component model has no free: the block is forgotten.
            GuestAllocator::CabiRealloc(_) => Ok(()),
            GuestAllocator::AllocDealloc(_, dealloc) => {
                self.call_with(|store| dealloc.call(store, ptr, size))
            }
            GuestAllocator::AllocFreeSized(_, free) => {
                self.call_with(|store| free.call(store, ptr, size))
            }
            GuestAllocator::AllocFree(_, free) => self.call_with(|store| free.call(store, ptr)),
            GuestAllocator::Wbindgen(_, free) => {
                self.call_with(|store| free.call(store, ptr, size, 8))
            }
        }
    }

    /// Writes `data` at `ptr`, which must lie inside one allocation.
    pub fn write(&mut self, ptr: u32, data: &[u8]) -> Result<(), WasmError> {
        let len = u64::try_from(data.len()).unwrap_or(u64::MAX);
        self.table.check(ptr, len)?;
        let memory = self.memory()?;
        check_memory(memory, &self.store, u64::from(ptr), len)?;
        memory
            .view(&self.store)
            .write(u64::from(ptr), data)
            .map_err(|error| WasmError::OutOfBounds {
                ptr: u64::from(ptr),
                len,
                bound: error.to_string(),
            })
    }

    /// Reads `len` bytes at `ptr`, which must lie inside one allocation.
    pub fn read(&self, ptr: u32, len: u32) -> Result<Vec<u8>, WasmError> {
        self.table.check(ptr, u64::from(len))?;
        self.read_guest(u64::from(ptr), u64::from(len))
    }

    /// Reads a range the guest handed back (not allocated through this
    /// manager): checked against the memory's size only.
    pub fn read_guest(&self, ptr: u64, len: u64) -> Result<Vec<u8>, WasmError> {
        let memory = self.memory()?;
        check_memory(memory, &self.store, ptr, len)?;
        let size = usize::try_from(len).map_err(|_| WasmError::OutOfBounds {
            ptr,
            len,
            bound: "the host's address space".to_owned(),
        })?;
        let mut buffer = vec![0; size];
        memory
            .view(&self.store)
            .read(ptr, &mut buffer)
            .map_err(|error| WasmError::OutOfBounds {
                ptr,
                len,
                bound: error.to_string(),
            })?;
        Ok(buffer)
    }

    /// The size of the allocation starting at `ptr`, if there is one.
    pub fn allocation_size(&self, ptr: u32) -> Option<u32> {
        self.table.size_of(ptr)
    }

    /// A snapshot of the memory and the allocations.
    pub fn memory_stats(&self) -> MemoryStats {
        MemoryStats {
            total_bytes: self
                .memory
                .as_ref()
                .map_or(0, |memory| memory.view(&self.store).data_size()),
            allocated_bytes: self.table.allocated_bytes(),
            free_bytes: self.heap.free_bytes(),
            allocations: self.table.len(),
            free_blocks: self.heap.free_blocks(),
            allocator: self.allocator_kind(),
        }
    }

    /// Bytes in, bytes out: copies `input` into a guest allocation, calls
    /// `name(ptr: i32, len: i32) -> i64`, reads the `(ptr << 32) | len` the
    /// guest returns, frees the guest's output through its allocator and
    /// the input. A result outside memory is [`WasmError::OutOfBounds`].
    pub fn call_bytes(&mut self, name: &str, input: &[u8]) -> Result<Vec<u8>, WasmError> {
        let _span = tracing::debug_span!("wasm.call", function = name).entered();
        let function: TypedFunction<(i32, i32), i64> = self.typed_function(name)?;
        self.bytes_call(input, |instance, ptr, len| {
            instance.call_with(|store| function.call(store, ptr, len))
        })
    }

    /// [`call_bytes`](Self::call_bytes) for a function that takes more
    /// `i32` arguments after `(ptr, len)`: `name(ptr, len, extra...) -> i64`
    /// (an image's width, a radius…).
    pub fn call_bytes_with(
        &mut self,
        name: &str,
        input: &[u8],
        extra: &[i32],
    ) -> Result<Vec<u8>, WasmError> {
        let _span = tracing::debug_span!("wasm.call", function = name).entered();
        let function = self.function(name)?;
        let ty = function.ty(&self.store);
        let expected_params = vec![wasmer::Type::I32; 2 + extra.len()];
        if ty.params() != expected_params.as_slice() || ty.results() != [wasmer::Type::I64] {
            return Err(WasmError::ExportType {
                name: name.to_owned(),
                expected: format!("func {expected_params:?} -> [I64]"),
                found: describe(&wasmer::ExternType::Function(ty)),
            });
        }
        self.bytes_call(input, |instance, ptr, len| {
            let mut args = vec![Value::I32(ptr), Value::I32(len)];
            args.extend(extra.iter().map(|&value| Value::I32(value)));
            let results = instance.call_with(|store| function.call(store, &args))?;
            match *results {
                [Value::I64(packed)] => Ok(packed),
                _ => Err(WasmError::Abi(format!(
                    "{name} returned {results:?}, not one i64"
                ))),
            }
        })
    }

    /// The bytes convention around `call`, which gets the input's guest
    /// `(ptr, len)` and returns the packed result.
    fn bytes_call(
        &mut self,
        input: &[u8],
        call: impl FnOnce(&mut Self, i32, i32) -> Result<i64, WasmError>,
    ) -> Result<Vec<u8>, WasmError> {
        let len = u32::try_from(input.len()).map_err(|_| WasmError::OutOfBounds {
            ptr: 0,
            len: u64::try_from(input.len()).unwrap_or(u64::MAX),
            bound: "the guest's 32-bit address space".to_owned(),
        })?;
        let ptr = self.alloc(len)?;
        let result = self.write(ptr, input).and_then(|()| {
            let packed = call(
                self,
                i32::from_ne_bytes(ptr.to_ne_bytes()),
                i32::from_ne_bytes(len.to_ne_bytes()),
            )?;
            let packed = u64::from_ne_bytes(packed.to_ne_bytes());
            let (out_ptr, out_len) = ((packed >> 32) as u32, (packed & 0xFFFF_FFFF) as u32);
            let output = self.read_guest(u64::from(out_ptr), u64::from(out_len))?;
            if let Some(allocator) = self.allocator.clone() {
                self.guest_free(&allocator, out_ptr, out_len)?;
            }
            Ok(output)
        });
        // The input goes back whatever happened (unless the instance is
        // poisoned: then no more guest calls).
        if !self.poisoned {
            let _ = self.free(ptr);
        }
        result
    }

    /// JSON in, JSON out over [`call_bytes`](Self::call_bytes).
    pub fn call_json<I: Serialize + ?Sized, O: DeserializeOwned>(
        &mut self,
        name: &str,
        input: &I,
    ) -> Result<O, WasmError> {
        let bytes =
            serde_json::to_vec(input).map_err(|error| WasmError::Json(error.to_string()))?;
        let output = self.call_bytes(name, &bytes)?;
        serde_json::from_slice(&output).map_err(|error| WasmError::Json(error.to_string()))
    }
}
