//! The guest side of the cortex-wasm ABI, shared by every guest crate
//! (`#[path]`-included): buffers are `(ptr: i32, len: i32)` in this
//! module's linear memory, allocated with align 1 by the global allocator;
//! a bytes-out function returns `(ptr << 32) | len` packed in an `i64`.
//! See `../README.md`.

use std::alloc::{Layout, handle_alloc_error};

/// Aborts the instance: on wasm32 an `unreachable` trap, with no panic
/// message machinery behind it.
pub(crate) fn trap() -> ! {
    std::process::abort()
}

/// `value` as a size; a negative one traps.
pub(crate) fn size(value: i32) -> usize {
    usize::try_from(value).unwrap_or_else(|_| trap())
}

/// A buffer of `size` bytes (align 1) for the host; `alloc(0)` is the
/// dangling, never-dereferenced address 1.
pub(crate) fn allocate(size_in: i32) -> i32 {
    let size = size(size_in);
    if size == 0 {
        return 1;
    }
    let layout = Layout::from_size_align(size, 1).unwrap_or_else(|_| trap());
    // SAFETY: `layout` has a non-zero size.
    let ptr = unsafe { std::alloc::alloc(layout) };
    if ptr.is_null() {
        handle_alloc_error(layout);
    }
    ptr as usize as i32
}

/// Frees a buffer that [`allocate`] (or [`output`]) handed out with this
/// `size`; size 0 is a no-op.
///
/// # Safety
/// `(ptr, size)` is exactly such a live buffer.
pub(crate) unsafe fn release(ptr: i32, size_in: i32) {
    let size = size(size_in);
    if size == 0 {
        return;
    }
    let layout = Layout::from_size_align(size, 1).unwrap_or_else(|_| trap());
    // SAFETY: the caller's contract: allocated with this layout.
    unsafe { std::alloc::dealloc(ptr as usize as *mut u8, layout) }
}

/// The input buffer `(ptr, len)`, borrowed: the host frees it after the
/// call, so the guest never does.
///
/// # Safety
/// `(ptr, len)` is a live buffer in this memory for the whole call.
pub(crate) unsafe fn input<'a>(ptr: i32, len: i32) -> &'a [u8] {
    let len = size(len);
    if len == 0 {
        return &[];
    }
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts(ptr as usize as *const u8, len) }
}

/// Hands `bytes` to the host as a packed `(ptr << 32) | len`; the host
/// frees it with the guest's free function and that same `len`.
pub(crate) fn output(bytes: Vec<u8>) -> i64 {
    // A boxed slice's allocation is exactly `len` bytes, align 1: what
    // `release(ptr, len)` frees.
    let bytes = Box::into_raw(bytes.into_boxed_slice());
    let len = bytes.len() as u32;
    let ptr = bytes.cast::<u8>() as usize as u32;
    ((u64::from(ptr) << 32) | u64::from(len)) as i64
}
