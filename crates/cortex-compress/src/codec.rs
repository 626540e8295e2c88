//! One streaming compressor over async-compression's codecs, driven frame
//! by frame so the body can flush whenever its source waits.

use std::io;

#[allow(unused_imports)] // which codecs are used depends on the features
use async_compression::Level;
use async_compression::codecs::EncodeV2;
use async_compression::core::util::{PartialBuffer, WriteBuffer};
use bytes::{Bytes, BytesMut};

use crate::Encoding;

/// Compression levels per coding. Defaults: brotli 4, gzip 4, deflate 4,
/// zstd 3 (with its window capped at 2^23 bytes so browsers can decode).
/// gzip and deflate at 4, not zlib's usual 6: on zlib-rs, the backend this
/// crate uses, level 4 gives JSON within 0.3% of level 6's size at about
/// 2.4 times its speed (the gzip table in `docs/benchmarks.md`), the better
/// trade for bodies compressed on every request. Against miniz_oxide at 6
/// (the default before zlib-rs) the output is about 7% larger and comes 5
/// times faster; set `gzip: 9` for miniz_oxide's size at zlib-rs's level 9
/// speed (50 MiB/s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Levels {
    /// Brotli quality, 0–11.
    pub brotli: u32,
    /// gzip level, 0–9.
    pub gzip: u32,
    /// deflate (zlib) level, 0–9.
    pub deflate: u32,
    /// zstd level, 1–22.
    pub zstd: i32,
}

impl Default for Levels {
    fn default() -> Self {
        Self {
            brotli: 4,
            gzip: 4,
            deflate: 4,
            zstd: 3,
        }
    }
}

/// Browsers refuse zstd frames that need a larger window than 8 MiB.
#[cfg(feature = "zstd")]
const ZSTD_WINDOW_LOG: u32 = 23;

/// Output is produced in chunks of this size.
const CHUNK: usize = 16 * 1024;

pub(crate) struct Compressor {
    encoder: Box<dyn EncodeV2 + Send>,
    buffer: Vec<u8>,
}

impl Compressor {
    /// `None` when the coding's cargo feature is off.
    #[allow(unused_variables, unreachable_code)]
    pub(crate) fn new(encoding: Encoding, levels: Levels) -> Option<Self> {
        #[allow(unused_imports)] // unused when every codec feature is off
        use async_compression::codecs;
        let encoder: Box<dyn EncodeV2 + Send> = match encoding {
            #[cfg(feature = "br")]
            Encoding::Brotli => Box::new(codecs::BrotliEncoder::new(
                codecs::brotli::params::EncoderParams::default()
                    .quality(Level::Precise(levels.brotli.min(11) as i32)),
            )),
            #[cfg(feature = "gzip")]
            Encoding::Gzip => Box::new(codecs::GzipEncoder::new(
                codecs::flate::params::FlateEncoderParams::from(Level::Precise(
                    levels.gzip.min(9) as i32
                )),
            )),
            #[cfg(feature = "deflate")]
            Encoding::Deflate => Box::new(codecs::ZlibEncoder::new(
                codecs::flate::params::FlateEncoderParams::from(Level::Precise(
                    levels.deflate.min(9) as i32,
                )),
            )),
            #[cfg(feature = "zstd")]
            Encoding::Zstd => Box::new(codecs::ZstdEncoder::new_with_params(
                levels.zstd.clamp(1, 22),
                &[codecs::zstd::params::CParameter::window_log(
                    ZSTD_WINDOW_LOG,
                )],
            )),
            #[allow(unreachable_patterns)]
            _ => return None,
        };
        Some(Self {
            encoder,
            buffer: vec![0; CHUNK],
        })
    }

    /// Compresses `input`; returns whatever output is ready (maybe none).
    pub(crate) fn encode(&mut self, input: &[u8]) -> io::Result<Bytes> {
        let mut out = BytesMut::new();
        let mut input = PartialBuffer::new(input);
        while !input.unwritten().is_empty() {
            let mut output = WriteBuffer::new_initialized(&mut self.buffer);
            self.encoder.encode(&mut input, &mut output)?;
            out.extend_from_slice(output.written());
        }
        Ok(out.freeze())
    }

    /// Emits everything buffered so far as a decodable prefix.
    pub(crate) fn flush(&mut self) -> io::Result<Bytes> {
        self.drain(|encoder, output| encoder.flush(output))
    }

    /// Ends the stream (trailer, checksum).
    pub(crate) fn finish(&mut self) -> io::Result<Bytes> {
        self.drain(|encoder, output| encoder.finish(output))
    }

    fn drain(
        &mut self,
        mut step: impl FnMut(&mut (dyn EncodeV2 + Send), &mut WriteBuffer<'_>) -> io::Result<bool>,
    ) -> io::Result<Bytes> {
        let mut out = BytesMut::new();
        loop {
            let mut output = WriteBuffer::new_initialized(&mut self.buffer);
            let done = step(&mut *self.encoder, &mut output)?;
            out.extend_from_slice(output.written());
            if done {
                return Ok(out.freeze());
            }
        }
    }
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressor").finish_non_exhaustive()
    }
}
