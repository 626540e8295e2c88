//! The blur job: a box blur of an 8-bit grayscale image, `passes` times
//! (three passes approach a Gaussian blur).
//!
//! Each pass blurs every row, then every column, with a window of
//! `2 × radius + 1` pixels that slides (one add and one subtract per
//! pixel, whatever the radius); pixels past an edge repeat the edge pixel;
//! each average rounds half up. Integer arithmetic only, so every platform
//! computes the same bytes.

use cortex::workers::CancellationToken;

/// A grayscale image, one byte per pixel, row by row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Pixels per row (at least 1).
    pub width: usize,
    /// Rows (at least 1).
    pub height: usize,
    /// `width × height` bytes.
    pub pixels: Vec<u8>,
}

impl Image {
    /// A deterministic noise image: pixel `i` is the top byte of the
    /// `i`-th output of SplitMix64 seeded with `seed`.
    pub fn noise(width: usize, height: usize, seed: u64) -> Self {
        let mut state = seed;
        let pixels = (0..width * height)
            .map(|_| {
                state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^= z >> 31;
                z.to_be_bytes()[0]
            })
            .collect();
        Self {
            width,
            height,
            pixels,
        }
    }

    /// The image blurred `passes` times with `radius`; `None` if `token`
    /// fired first.
    pub fn box_blur(&self, radius: usize, passes: u32, token: &CancellationToken) -> Option<Self> {
        let (width, height) = (self.width, self.height);
        let mut image = self.pixels.clone();
        let mut scratch = vec![0_u8; image.len()];
        let mut line = Vec::with_capacity(width.max(height));
        let mut out = Vec::with_capacity(width.max(height));
        for _ in 0..passes {
            for y in 0..height {
                if token.is_cancelled() {
                    return None;
                }
                line.clear();
                line.extend_from_slice(&image[y * width..(y + 1) * width]);
                blur_line(&line, radius, &mut out);
                scratch[y * width..(y + 1) * width].copy_from_slice(&out);
            }
            for x in 0..width {
                if token.is_cancelled() {
                    return None;
                }
                line.clear();
                line.extend((0..height).map(|y| scratch[y * width + x]));
                blur_line(&line, radius, &mut out);
                for (y, value) in out.iter().enumerate() {
                    image[y * width + x] = *value;
                }
            }
        }
        Some(Self {
            width,
            height,
            pixels: image,
        })
    }
}

/// One row or column: `out[i]` is the rounded mean of `line[i - radius
/// ..= i + radius]`, indices clamped to the line.
fn blur_line(line: &[u8], radius: usize, out: &mut Vec<u8>) {
    out.clear();
    let last = line.len() - 1;
    // Past either end, the end pixel (an index below 0 saturates to 0).
    let at = |index: usize| u64::from(line[index.min(last)]);
    let window = 2 * radius as u64 + 1;
    let mut sum = radius as u64 * at(0) + (0..=radius).map(at).sum::<u64>();
    for i in 0..line.len() {
        let mean = (sum + window / 2) / window;
        out.push(u8::try_from(mean).unwrap_or(u8::MAX));
        sum = sum + at(i + radius + 1) - at(i.saturating_sub(radius));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blur(width: usize, pixels: &[u8], radius: usize, passes: u32) -> Vec<u8> {
        let image = Image {
            width,
            height: pixels.len() / width,
            pixels: pixels.to_vec(),
        };
        image
            .box_blur(radius, passes, &cortex::workers::cancellation_token())
            .unwrap()
            .pixels
    }

    #[test]
    fn a_spike_spreads_over_its_window_with_edges_repeated() {
        assert_eq!(blur(3, &[0, 90, 0], 1, 1), [30, 30, 30]);
        assert_eq!(blur(5, &[0, 0, 90, 0, 0], 1, 1), [0, 30, 30, 30, 0]);
        // Columns too: the same spike, standing up.
        assert_eq!(blur(1, &[0, 0, 90, 0, 0], 1, 1), [0, 30, 30, 30, 0]);
    }

    #[test]
    fn a_flat_image_stays_flat_and_means_round_half_up() {
        assert_eq!(blur(4, &[7; 12], 3, 5), [7; 12]);
        // (0 + 0 + 1) / 3 = 0.33 -> 0; (0 + 1 + 1) / 3 = 0.67 -> 1.
        assert_eq!(blur(3, &[0, 0, 1], 1, 1), [0, 0, 1]);
    }

    #[test]
    fn noise_is_deterministic_and_seeded() {
        assert_eq!(Image::noise(8, 8, 7), Image::noise(8, 8, 7));
        assert_ne!(Image::noise(8, 8, 7), Image::noise(8, 8, 8));
    }

    #[test]
    fn a_radius_wider_than_the_image_is_the_clamped_mean() {
        // Windows of 5 over [10, 20], edges repeated:
        // 10 10 [10] 20 20 -> 14, and 10 10 [20] 20 20 -> 16.
        assert_eq!(blur(2, &[10, 20], 2, 1), [14, 16]);
    }
}
