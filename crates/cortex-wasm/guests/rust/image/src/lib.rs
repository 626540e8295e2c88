//! cortex-wasm test guest: filters over RGBA images (4 bytes a pixel, row
//! by row) and a trivial `add` for call-overhead benchmarks. Invalid
//! arguments trap. ABI: `../../README.md`.

#[path = "../../abi.rs"]
mod abi;

use abi::trap;

/// A buffer of `size` bytes (align 1) for the host to write an input into.
#[unsafe(no_mangle)]
pub extern "C" fn alloc(size: i32) -> i32 {
    abi::allocate(size)
}

/// Frees a buffer from [`alloc`] or an output, given its size.
///
/// # Safety
/// `(ptr, size)` is a live buffer this guest allocated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dealloc(ptr: i32, size: i32) {
    // SAFETY: the caller's contract.
    unsafe { abi::release(ptr, size) }
}

/// `a + b`, wrapping.
#[unsafe(no_mangle)]
pub extern "C" fn add(a: i32, b: i32) -> i32 {
    a.wrapping_add(b)
}

/// The RGBA pixels of `(ptr, len)` (`len` a multiple of 4).
///
/// # Safety
/// `(ptr, len)` is a live buffer.
unsafe fn pixels<'a>(ptr: i32, len: i32) -> &'a [[u8; 4]] {
    // SAFETY: the caller's contract.
    let (pixels, rest) = unsafe { abi::input(ptr, len) }.as_chunks::<4>();
    if !rest.is_empty() {
        trap();
    }
    pixels
}

/// Each pixel's r, g and b set to its luma `(77 r + 150 g + 29 b) >> 8`;
/// alpha kept. A new buffer of the same length.
///
/// # Safety
/// `(ptr, len)` is a live buffer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn grayscale(ptr: i32, len: i32) -> i64 {
    // SAFETY: the caller's contract.
    let pixels = unsafe { pixels(ptr, len) };
    let mut out = vec![0_u8; pixels.len() * 4];
    for (o, &[r, g, b, a]) in out.as_chunks_mut::<4>().0.iter_mut().zip(pixels) {
        let luma = (77 * u32::from(r) + 150 * u32::from(g) + 29 * u32::from(b)) >> 8;
        let luma = luma as u8; // at most (256 × 255) >> 8 = 255
        *o = [luma, luma, luma, a];
    }
    abi::output(out)
}

/// Each pixel's r, g and b set to `255 - c`; alpha kept.
///
/// # Safety
/// `(ptr, len)` is a live buffer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn invert(ptr: i32, len: i32) -> i64 {
    // SAFETY: the caller's contract.
    let pixels = unsafe { pixels(ptr, len) };
    let mut out = vec![0_u8; pixels.len() * 4];
    for (o, &[r, g, b, a]) in out.as_chunks_mut::<4>().0.iter_mut().zip(pixels) {
        *o = [255 - r, 255 - g, 255 - b, a];
    }
    abi::output(out)
}

/// One box-blur pass of the RGBA image `(ptr, len)`, `width` pixels a row
/// (`height = len / 4 / width`), each of the four channels (alpha too)
/// blurred on its own: every row, then every column, with a window of
/// `2 × radius + 1` pixels; past an edge the edge pixel repeats; each mean
/// rounds half up and the row pass's result is stored as bytes before the
/// column pass. Per channel, the same bytes as one pass of the Hub's
/// grayscale blur. Traps unless `width > 0`, `len % (4 × width) == 0` and
/// `0 <= radius <= 64`.
///
/// # Safety
/// `(ptr, len)` is a live buffer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn blur(ptr: i32, len: i32, width: i32, radius: i32) -> i64 {
    // SAFETY: the caller's contract.
    let image = unsafe { abi::input(ptr, len) };
    if width <= 0 || !(0..=64).contains(&radius) {
        trap();
    }
    let (width, radius) = (width as usize, radius as usize);
    let stride = width * 4;
    if image.len() % stride != 0 {
        trap();
    }
    let height = image.len() / stride;
    if height == 0 {
        return abi::output(Vec::new());
    }
    let mut rows = vec![0_u8; image.len()];
    for y in 0..height {
        for channel in 0..4 {
            let run = Run {
                start: y * stride + channel,
                step: 4,
                count: width,
            };
            run.blur(image, &mut rows, radius);
        }
    }
    let mut out = vec![0_u8; image.len()];
    for x in 0..width {
        for channel in 0..4 {
            let run = Run {
                start: x * 4 + channel,
                step: stride,
                count: height,
            };
            run.blur(&rows, &mut out, radius);
        }
    }
    abi::output(out)
}

/// One row or column of one channel: `count` bytes `step` apart from
/// `start`.
struct Run {
    start: usize,
    step: usize,
    count: usize,
}

impl Run {
    /// `dst[i]` is the rounded mean of `src[i - radius ..= i + radius]`
    /// along the run, indices clamped to it; a sliding window, one add
    /// and one subtract per byte whatever the radius.
    fn blur(&self, src: &[u8], dst: &mut [u8], radius: usize) {
        let last = self.count - 1;
        let at = |i: usize| u32::from(src[self.start + i.min(last) * self.step]);
        let window = 2 * radius as u32 + 1;
        let mut sum = radius as u32 * at(0) + (0..=radius).map(at).sum::<u32>();
        for i in 0..self.count {
            // The mean of at most 129 bytes: at most 255.
            dst[self.start + i * self.step] = ((sum + window / 2) / window) as u8;
            sum = sum + at(i + radius + 1) - at(i.saturating_sub(radius));
        }
    }
}
