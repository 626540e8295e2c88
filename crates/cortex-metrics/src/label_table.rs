//! The label-values → value table under every family: insertion-ordered,
//! capped, and probed with borrowed `&str`s so a hit allocates nothing.

use std::hash::{BuildHasher, Hasher};
use std::sync::{PoisonError, RwLock};

use hashbrown::HashTable;

/// A capped map from `N` label values to a `V`.
pub(crate) struct LabelTable<V, const N: usize> {
    hasher: foldhash::fast::RandomState,
    max_entries: usize,
    entries: RwLock<Entries<V, N>>,
}

/// Values in insertion order (stable exposition), plus a hash index into
/// them.
struct Entries<V, const N: usize> {
    index: HashTable<usize>,
    ordered: Vec<Entry<V, N>>,
}

struct Entry<V, const N: usize> {
    values: [Box<str>; N],
    value: V,
}

impl<V, const N: usize> LabelTable<V, N> {
    pub(crate) fn new(max_entries: usize) -> Self {
        Self {
            hasher: foldhash::fast::RandomState::default(),
            max_entries,
            entries: RwLock::new(Entries {
                index: HashTable::new(),
                ordered: Vec::new(),
            }),
        }
    }

    /// Runs `f` on the value for `values`, creating it with `create` on a
    /// miss. `None` when the key is new and the table is full.
    ///
    /// A hit takes the shared lock only; `f` runs under it, so callers can
    /// use the value without cloning it out.
    #[inline]
    pub(crate) fn with<R>(
        &self,
        values: [&str; N],
        create: impl FnOnce() -> V,
        f: impl FnOnce(&V) -> R,
    ) -> Option<R> {
        let hash = hash_values(&self.hasher, &values);
        {
            let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(&slot) = entries
                .index
                .find(hash, |&slot| entries.ordered[slot].matches(&values))
            {
                return Some(f(&entries.ordered[slot].value));
            }
            if entries.ordered.len() >= self.max_entries {
                return None;
            }
        }
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        let Entries { index, ordered } = &mut *entries;
        if let Some(&slot) = index.find(hash, |&slot| ordered[slot].matches(&values)) {
            return Some(f(&ordered[slot].value));
        }
        if ordered.len() >= self.max_entries {
            return None;
        }
        ordered.push(Entry {
            values: values.map(Box::from),
            value: create(),
        });
        let slot = ordered.len() - 1;
        index.insert_unique(hash, slot, |&slot| {
            hash_values(&self.hasher, &ordered[slot].values)
        });
        Some(f(&ordered[slot].value))
    }

    /// Removes the entry for `values`; returns whether it existed.
    pub(crate) fn remove(&self, values: [&str; N]) -> bool {
        let hash = hash_values(&self.hasher, &values);
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        let Entries { index, ordered } = &mut *entries;
        let Ok(found) = index.find_entry(hash, |&slot| ordered[slot].matches(&values)) else {
            return false;
        };
        let (removed, _) = found.remove();
        let last = ordered.len() - 1;
        if removed != last {
            // `swap_remove` moves the last entry into the hole: repoint it.
            let moved_hash = hash_values(&self.hasher, &ordered[last].values);
            if let Some(slot) = index.find_mut(moved_hash, |&slot| slot == last) {
                *slot = removed;
            }
        }
        ordered.swap_remove(removed);
        true
    }

    /// Removes every entry.
    pub(crate) fn clear(&self) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        entries.index.clear();
        entries.ordered.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .ordered
            .len()
    }

    pub(crate) fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// Visits every entry in insertion order, under the shared lock.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&[Box<str>; N], &V)) {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        for entry in &entries.ordered {
            f(&entry.values, &entry.value);
        }
    }
}

impl<V, const N: usize> Entry<V, N> {
    #[inline]
    fn matches(&self, values: &[&str; N]) -> bool {
        self.values
            .iter()
            .zip(values)
            .all(|(a, b)| short_str_eq(a, b))
    }
}

/// String equality that stays inline for the short values labels usually
/// hold; a `memcmp` call costs more than the comparison itself there.
#[inline]
fn short_str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    if a.len() > 64 {
        return a == b;
    }
    let len = a.len();
    if len < 8 {
        return a.iter().zip(b).fold(true, |equal, (x, y)| equal & (x == y));
    }
    // Whole words, then the last eight bytes (overlapping the final word
    // when the length is not a multiple of eight) instead of a byte loop.
    let word = |chunk: &[u8]| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&chunk[..8]);
        u64::from_ne_bytes(bytes)
    };
    let words_equal = a
        .chunks_exact(8)
        .zip(b.chunks_exact(8))
        .fold(true, |equal, (x, y)| equal & (word(x) == word(y)));
    words_equal & (word(&a[len - 8..]) == word(&b[len - 8..]))
}

/// Hashes label values the same way for borrowed and stored values: each
/// value's bytes and a terminator, so `["ab", "c"]` and `["a", "bc"]` differ.
#[inline]
fn hash_values<S: AsRef<str>>(state: &foldhash::fast::RandomState, values: &[S]) -> u64 {
    let mut hasher = state.build_hasher();
    for value in values {
        hasher.write(value.as_ref().as_bytes());
        hasher.write_u8(0xff);
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_str_eq_agrees_with_str_eq() {
        let samples = [
            "",
            "a",
            "b",
            "ab",
            "abcdefgh",
            "abcdefgi",
            "abcdefghi",
            "abcdefghj",
            "/api/users/{id}",
            "/api/users/{ix}",
            "ü",
            "u\u{308}",
        ];
        let long_a = "x".repeat(100);
        let long_b = format!("{}y", "x".repeat(99));
        for a in samples
            .iter()
            .copied()
            .chain([long_a.as_str(), long_b.as_str()])
        {
            for b in samples
                .iter()
                .copied()
                .chain([long_a.as_str(), long_b.as_str()])
            {
                assert_eq!(short_str_eq(a, b), a == b, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn a_full_table_refuses_new_keys_but_serves_old_ones() {
        let table: LabelTable<u32, 2> = LabelTable::new(2);
        assert_eq!(table.with(["a", "b"], || 1, |v| *v), Some(1));
        assert_eq!(table.with(["ab", ""], || 2, |v| *v), Some(2));
        assert_eq!(table.with(["a", "bc"], || 3, |v| *v), None);
        assert_eq!(table.with(["a", "b"], || 9, |v| *v), Some(1));
        assert_eq!(table.len(), 2);
    }
}
