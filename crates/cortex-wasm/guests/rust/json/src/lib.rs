//! cortex-wasm test guest: a JSON transform and `echo`. Invalid JSON is
//! an answer (`{"error": ...}`), not a trap. ABI: `../../README.md`.

#[path = "../../abi.rs"]
mod abi;

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

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
pub unsafe extern "C" fn free(ptr: i32, size: i32) {
    // SAFETY: the caller's contract.
    unsafe { abi::release(ptr, size) }
}

/// A copy of the input bytes.
///
/// # Safety
/// `(ptr, len)` is a live buffer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn echo(ptr: i32, len: i32) -> i64 {
    // SAFETY: the caller's contract.
    abi::output(unsafe { abi::input(ptr, len) }.to_vec())
}

/// Parses the JSON document `(ptr, len)` and answers
/// `{"keys":K,"strings":S,"upper":DOC}`: K object keys (all depths,
/// duplicates included), S string values (keys are not values), and the
/// document re-serialized compactly with every string value upper-cased
/// (keys as they were, in their order; numbers re-printed by serde_json).
/// Invalid JSON answers `{"error":"<serde_json's message>"}`.
///
/// # Safety
/// `(ptr, len)` is a live buffer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn transform(ptr: i32, len: i32) -> i64 {
    // SAFETY: the caller's contract.
    let input = unsafe { abi::input(ptr, len) };
    abi::output(transform_bytes(input))
}

fn transform_bytes(input: &[u8]) -> Vec<u8> {
    let mut upper = Vec::with_capacity(input.len());
    let mut counts = Counts::default();
    let mut deserializer = serde_json::Deserializer::from_slice(input);
    let parsed = Upper {
        out: &mut upper,
        counts: &mut counts,
    }
    .deserialize(&mut deserializer)
    .and_then(|()| deserializer.end());
    match parsed {
        Ok(()) => {
            let head = format!(
                "{{\"keys\":{},\"strings\":{},\"upper\":",
                counts.keys, counts.strings
            );
            let mut out = Vec::with_capacity(head.len() + upper.len() + 1);
            out.extend_from_slice(head.as_bytes());
            out.extend_from_slice(&upper);
            out.push(b'}');
            out
        }
        Err(error) => {
            let mut out = b"{\"error\":".to_vec();
            json(&mut out, &error.to_string()).unwrap_or_else(|()| abi::trap());
            out.push(b'}');
            out
        }
    }
}

#[derive(Default)]
struct Counts {
    keys: u64,
    strings: u64,
}

/// Appends `value` as JSON.
fn json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), ()> {
    serde_json::to_writer(out, value).map_err(|_| ())
}

/// Appends `value` as JSON, with a deserializer's error type.
fn emit<T: serde::Serialize + ?Sized, E: de::Error>(out: &mut Vec<u8>, value: &T) -> Result<(), E> {
    json(out, value).map_err(|()| E::custom("cannot serialize"))
}

/// Transcodes one JSON value into `out` as it is parsed (no tree), string
/// values upper-cased.
struct Upper<'a> {
    out: &'a mut Vec<u8>,
    counts: &'a mut Counts,
}

impl Upper<'_> {
    fn nested(&mut self) -> Upper<'_> {
        Upper {
            out: &mut *self.out,
            counts: &mut *self.counts,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Upper<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Upper<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        emit(self.out, &v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        emit(self.out, &v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        emit(self.out, &v)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        emit(self.out, &v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.counts.strings += 1;
        emit(self.out, &v.to_uppercase())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.out.push(b'[');
        let mut first = true;
        loop {
            // The comma goes in before we know whether an element follows;
            // the end of the array takes it back out.
            let mark = self.out.len();
            if !first {
                self.out.push(b',');
            }
            if seq.next_element_seed(self.nested())?.is_none() {
                self.out.truncate(mark);
                break;
            }
            first = false;
        }
        self.out.push(b']');
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.out.push(b'{');
        let mut first = true;
        loop {
            let mark = self.out.len();
            if !first {
                self.out.push(b',');
            }
            if map.next_key_seed(Key(&mut *self.out))?.is_none() {
                self.out.truncate(mark);
                break;
            }
            self.counts.keys += 1;
            self.out.push(b':');
            map.next_value_seed(self.nested())?;
            first = false;
        }
        self.out.push(b'}');
        Ok(())
    }
}

/// Transcodes an object key as it was.
struct Key<'a>(&'a mut Vec<u8>);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        emit(self.0, v)
    }
}
