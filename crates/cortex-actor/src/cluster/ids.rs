//! Ids unique across the cluster, handed out in blocks.
//!
//! A node takes a block of ids at a time from one JetStream KV key with a
//! compare-and-set on its revision, so two nodes never get the same block,
//! then hands the block out from memory: one NATS round trip per block,
//! none per id, and the next block is taken while half of the current one
//! is left. Ids a node took and never used (it stopped) are skipped,
//! never reused.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use tokio::sync::Mutex;

use super::placement::bucket;
use super::{Cluster, ClusterError, check_name};

/// Hands out ids no other node of the namespace gets; from
/// [`Cluster::ids`]. Cheap to clone; clones share the block.
#[derive(Clone)]
pub struct IdAllocator {
    store: kv::Store,
    key: Arc<str>,
    block: u64,
    blocks: Arc<Mutex<Blocks>>,
}

/// The block ids are handed out from, and the next one, taken ahead of
/// time so a short NATS outage does not stop ids.
#[derive(Debug, Default)]
struct Blocks {
    /// The next id and the end of the block (exclusive).
    current: (u64, u64),
    next: Option<(u64, u64)>,
    fetching: bool,
}

impl std::fmt::Debug for IdAllocator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdAllocator")
            .field("key", &self.key)
            .field("block", &self.block)
            .finish_non_exhaustive()
    }
}

fn kv_error(error: impl std::fmt::Display) -> ClusterError {
    ClusterError::JetStream(error.to_string())
}

impl Cluster {
    /// Ids for `name` (`orders`), starting at 1, taken `block` at a time.
    pub async fn ids(&self, name: &str, block: u64) -> Result<IdAllocator, ClusterError> {
        check_name("id sequence", name)?;
        let jetstream = self.jetstream()?;
        let namespace = &self.inner.namespace;
        let store = bucket(jetstream, format!("cortex_{namespace}_ids"), Duration::ZERO).await?;
        Ok(IdAllocator {
            store,
            key: Arc::from(name),
            block: block.max(1),
            blocks: Arc::default(),
        })
    }
}

impl IdAllocator {
    /// The next id: from this node's block. When half of it is used, the
    /// next block is taken in the background; only if that has not
    /// arrived when the block runs out does `next` wait for NATS.
    pub async fn next(&self) -> Result<u64, ClusterError> {
        let mut blocks = self.blocks.lock().await;
        if blocks.current.0 >= blocks.current.1 {
            blocks.current = match blocks.next.take() {
                Some(next) => next,
                None => {
                    let start = self.take_block().await?;
                    (start, start + self.block)
                }
            };
        }
        let id = blocks.current.0;
        blocks.current.0 += 1;
        let left = blocks.current.1 - blocks.current.0;
        if left < self.block / 2 && blocks.next.is_none() && !blocks.fetching {
            blocks.fetching = true;
            let ids = self.clone();
            tokio::spawn(async move {
                let taken = ids.take_block().await;
                let mut blocks = ids.blocks.lock().await;
                blocks.fetching = false;
                // A block taken meanwhile by `next` itself (the current one
                // ran out first) is newer: this one is skipped, so ids on
                // one node only grow.
                if let Ok(start) = taken
                    && start >= blocks.current.1
                {
                    blocks.next = Some((start, start + ids.block));
                }
            });
        }
        Ok(id)
    }

    /// Moves the shared counter on by one block; returns the block's first
    /// id.
    async fn take_block(&self) -> Result<u64, ClusterError> {
        loop {
            let entry = self.store.entry(&*self.key).await.map_err(kv_error)?;
            let (start, revision) = match &entry {
                Some(entry) if entry.operation == kv::Operation::Put => (
                    std::str::from_utf8(&entry.value)
                        .ok()
                        .and_then(|text| text.parse::<u64>().ok())
                        .ok_or_else(|| {
                            kv_error(format!("id counter {:?} is not a number", self.key))
                        })?,
                    Some(entry.revision),
                ),
                _ => (1, None),
            };
            let end = Bytes::from((start + self.block).to_string());
            let taken = match revision {
                Some(revision) => self
                    .store
                    .update(&*self.key, end, revision)
                    .await
                    .map(|_| true)
                    .or_else(|error| match error.kind() {
                        kv::UpdateErrorKind::WrongLastRevision => Ok(false),
                        _ => Err(kv_error(error)),
                    })?,
                None => self
                    .store
                    .create(&*self.key, end)
                    .await
                    .map(|_| true)
                    .or_else(|error| match error.kind() {
                        kv::CreateErrorKind::AlreadyExists => Ok(false),
                        _ => Err(kv_error(error)),
                    })?,
            };
            if taken {
                return Ok(start);
            }
        }
    }
}
