//! The guest memory manager: allocations through the guest's own allocator
//! (or a host-managed region when it has none), a host-side allocation
//! table, and bounds-checked reads and writes.
//!
//! Every read and write is checked twice: against the allocation it names
//! and against `ptr + len <= memory size` (with `checked_add`, so a length
//! that overflows is an error, not a wrap). Each operation takes a fresh
//! view of the memory: a guest call or a grow may move or resize it.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;
use wasmer::{Function, Memory, Store, Type, TypedFunction, WASM_PAGE_SIZE};

use crate::error::WasmError;

/// How many freed pointers are remembered to tell a double free from a
/// pointer that was never allocated.
const FREED_MEMORY: usize = 1024;

/// Host allocations are 8-byte aligned, like the guests' own allocators.
const ALIGN: u32 = 8;

/// The allocator the instance uses, detected from its exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AllocatorKind {
    /// The component model's `cabi_realloc(old_ptr, old_size, align, new_size)`;
    /// it has no free, so freed blocks are only forgotten (the guest
    /// reclaims nothing until the instance is replaced).
    CabiRealloc,
    /// `alloc(size)` and `dealloc(ptr, size)`.
    AllocDealloc,
    /// `alloc(size)` and `free(ptr, size)`.
    AllocFreeSized,
    /// `alloc(size)` and `free(ptr)`.
    AllocFree,
    /// wasm-bindgen's `__wbindgen_malloc(size, align)` and
    /// `__wbindgen_free(ptr, size, align)`.
    Wbindgen,
    /// No allocator exported: the host grows the memory and manages the
    /// new pages itself, reusing and merging freed blocks.
    Host,
}

/// A snapshot of an instance's memory, as the seed's `stats()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct MemoryStats {
    /// The linear memory's size in bytes.
    pub total_bytes: u64,
    /// Bytes in live allocations made through this manager.
    pub allocated_bytes: u64,
    /// Free bytes in the host-managed region (0 with a guest allocator).
    pub free_bytes: u64,
    /// Live allocations.
    pub allocations: usize,
    /// Free blocks in the host-managed region.
    pub free_blocks: usize,
    /// The allocator in use.
    pub allocator: AllocatorKind,
}

/// The guest's allocator functions.
#[derive(Debug, Clone)]
pub(crate) enum GuestAllocator {
    CabiRealloc(TypedFunction<(i32, i32, i32, i32), i32>),
    AllocDealloc(TypedFunction<i32, i32>, TypedFunction<(i32, i32), ()>),
    AllocFreeSized(TypedFunction<i32, i32>, TypedFunction<(i32, i32), ()>),
    AllocFree(TypedFunction<i32, i32>, TypedFunction<i32, ()>),
    Wbindgen(
        TypedFunction<(i32, i32), i32>,
        TypedFunction<(i32, i32, i32), ()>,
    ),
}

impl GuestAllocator {
    /// Detects the allocator in `exports`, in the order the conventions
    /// are tried: `cabi_realloc`, `alloc` + `dealloc`/`free`, wasm-bindgen.
    pub(crate) fn detect(store: &Store, exports: &wasmer::Exports) -> Option<Self> {
        let typed = |name: &str, params: &[Type], results: &[Type]| -> Option<Function> {
            let function = exports.get_function(name).ok()?;
            let ty = function.ty(store);
            (ty.params() == params && ty.results() == results).then(|| function.clone())
        };
        use Type::I32;
        if let Some(realloc) = typed("cabi_realloc", &[I32, I32, I32, I32], &[I32]) {
            return realloc.typed(store).ok().map(Self::CabiRealloc);
        }
        if let Some(alloc) = typed("alloc", &[I32], &[I32]) {
            let alloc: TypedFunction<i32, i32> = alloc.typed(store).ok()?;
            if let Some(dealloc) = typed("dealloc", &[I32, I32], &[]) {
                return dealloc
                    .typed(store)
                    .ok()
                    .map(|d| Self::AllocDealloc(alloc, d));
            }
            if let Some(free) = typed("free", &[I32, I32], &[]) {
                return free
                    .typed(store)
                    .ok()
                    .map(|f| Self::AllocFreeSized(alloc, f));
            }
            if let Some(free) = typed("free", &[I32], &[]) {
                return free.typed(store).ok().map(|f| Self::AllocFree(alloc, f));
            }
        }
        let malloc = typed("__wbindgen_malloc", &[I32, I32], &[I32])?;
        let free = typed("__wbindgen_free", &[I32, I32, I32], &[])?;
        Some(Self::Wbindgen(
            malloc.typed(store).ok()?,
            free.typed(store).ok()?,
        ))
    }

    pub(crate) fn kind(&self) -> AllocatorKind {
        match self {
            Self::CabiRealloc(_) => AllocatorKind::CabiRealloc,
            Self::AllocDealloc(..) => AllocatorKind::AllocDealloc,
            Self::AllocFreeSized(..) => AllocatorKind::AllocFreeSized,
            Self::AllocFree(..) => AllocatorKind::AllocFree,
            Self::Wbindgen(..) => AllocatorKind::Wbindgen,
        }
    }
}

/// The host-managed region of a guest without an allocator: pages the host
/// grew at the end of memory, with a first-fit free list whose neighbours
/// merge.
#[derive(Debug, Default)]
pub(crate) struct HostHeap {
    /// Free blocks by start, never adjacent (merged on free).
    free: BTreeMap<u32, u32>,
}

impl HostHeap {
    /// A free block of `size` bytes (a multiple of `ALIGN`), if one fits.
    pub(crate) fn take(&mut self, size: u32) -> Option<u32> {
        let (&start, &len) = self.free.iter().find(|&(_, &len)| len >= size)?;
        self.free.remove(&start);
        if len > size {
            self.free.insert(start + size, len - size);
        }
        Some(start)
    }

    /// Returns a block, merging it with free neighbours.
    pub(crate) fn give(&mut self, start: u32, size: u32) {
        let mut start = start;
        let mut size = size;
        if let Some((&before, &before_len)) = self.free.range(..start).next_back()
            && before + before_len == start
        {
            self.free.remove(&before);
            start = before;
            size += before_len;
        }
        if let Some(&after_len) = self.free.get(&(start + size)) {
            self.free.remove(&(start + size));
            size += after_len;
        }
        self.free.insert(start, size);
    }

    pub(crate) fn free_bytes(&self) -> u64 {
        self.free.values().map(|&len| u64::from(len)).sum()
    }

    pub(crate) fn free_blocks(&self) -> usize {
        self.free.len()
    }
}

/// The host's record of allocations made through the manager.
#[derive(Debug, Default)]
pub(crate) struct AllocationTable {
    /// Live allocations: start → size.
    live: BTreeMap<u32, u32>,
    /// Recently freed starts, to report a double free as such.
    freed: VecDeque<u32>,
}

impl AllocationTable {
    pub(crate) fn insert(&mut self, ptr: u32, size: u32) {
        self.live.insert(ptr, size);
        self.freed.retain(|&freed| freed != ptr);
    }

    /// Removes the allocation starting at `ptr`, returning its size.
    pub(crate) fn remove(&mut self, ptr: u32) -> Result<u32, WasmError> {
        match self.live.remove(&ptr) {
            Some(size) => {
                if self.freed.len() == FREED_MEMORY {
                    self.freed.pop_front();
                }
                self.freed.push_back(ptr);
                Ok(size)
            }
            None if self.freed.contains(&ptr) => Err(WasmError::DoubleFree(ptr)),
            None => Err(WasmError::UnknownPointer(ptr)),
        }
    }

    /// Checks that `[ptr, ptr + len)` lies inside one live allocation.
    pub(crate) fn check(&self, ptr: u32, len: u64) -> Result<(), WasmError> {
        let stop = u64::from(ptr)
            .checked_add(len)
            .ok_or_else(|| WasmError::OutOfBounds {
                ptr: u64::from(ptr),
                len,
                bound: "the address space (ptr + len overflows)".to_owned(),
            })?;
        match self.live.range(..=ptr).next_back() {
            Some((&start, &size)) if ptr - start < size.max(1) => {
                let end = u64::from(start) + u64::from(size);
                if stop <= end {
                    Ok(())
                } else {
                    Err(WasmError::OutOfBounds {
                        ptr: u64::from(ptr),
                        len,
                        bound: format!("the allocation of {size} bytes at {start:#x}"),
                    })
                }
            }
            _ => Err(WasmError::UnknownPointer(ptr)),
        }
    }

    pub(crate) fn allocated_bytes(&self) -> u64 {
        self.live.values().map(|&size| u64::from(size)).sum()
    }

    pub(crate) fn len(&self) -> usize {
        self.live.len()
    }

    pub(crate) fn size_of(&self, ptr: u32) -> Option<u32> {
        self.live.get(&ptr).copied()
    }
}

/// Rounds `size` up to the host heap's alignment; `None` past `u32`.
pub(crate) fn aligned(size: u32) -> Option<u32> {
    size.max(1)
        .checked_add(ALIGN - 1)
        .map(|size| size & !(ALIGN - 1))
}

/// Checks `[ptr, ptr + len)` against the memory's current size.
pub(crate) fn check_memory(
    memory: &Memory,
    store: &Store,
    ptr: u64,
    len: u64,
) -> Result<(), WasmError> {
    let size = memory.view(store).data_size();
    match ptr.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        Some(_) => Err(WasmError::OutOfBounds {
            ptr,
            len,
            bound: format!("the guest's memory of {size} bytes"),
        }),
        None => Err(WasmError::OutOfBounds {
            ptr,
            len,
            bound: "the address space (ptr + len overflows)".to_owned(),
        }),
    }
}

/// Bytes in a WebAssembly page.
pub(crate) const PAGE: u64 = WASM_PAGE_SIZE as u64;
