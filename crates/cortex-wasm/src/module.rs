//! [`WasmModule`]: compiled code, cheap to clone and to share between
//! threads; each instance gets its own store.

use std::fmt::Write as _;
use std::sync::Arc;

use wasmer::{Engine, ExternType, Module};

use crate::engine::EngineShared;
use crate::error::WasmError;
use crate::instance::WasmInstance;

/// A compiled module. `Send + Sync` and cheap to clone: a pool hands it to
/// each worker thread, which instantiates it there (a wasmer `Store` never
/// leaves the thread that made it).
#[derive(Debug, Clone)]
pub struct WasmModule {
    pub(crate) inner: Arc<ModuleInner>,
}

#[derive(Debug)]
pub(crate) struct ModuleInner {
    /// The engine that compiled the module. Its code lives there, so it is
    /// kept as long as the module, and every store is built from it.
    pub(crate) engine: Engine,
    pub(crate) module: Module,
    pub(crate) hash: [u8; 32],
    pub(crate) shared: Arc<EngineShared>,
}

impl WasmModule {
    pub(crate) fn new(
        engine: Engine,
        module: Module,
        hash: [u8; 32],
        shared: Arc<EngineShared>,
    ) -> Self {
        Self {
            inner: Arc::new(ModuleInner {
                engine,
                module,
                hash,
                shared,
            }),
        }
    }

    /// The blake3 hash of the module's bytes, in hex: its cache key.
    pub fn hash(&self) -> String {
        let mut text = String::with_capacity(64);
        for byte in self.inner.hash {
            let _ = write!(text, "{byte:02x}");
        }
        text
    }

    /// The module's exports as `(name, type)`, e.g. `("add", "func (i32, i32) -> i32")`.
    pub fn exports(&self) -> Vec<(String, String)> {
        self.inner
            .module
            .exports()
            .map(|export| (export.name().to_owned(), describe(export.ty())))
            .collect()
    }

    /// A new instance with its own store and memory.
    pub fn instantiate(&self) -> Result<WasmInstance, WasmError> {
        WasmInstance::new(self.clone())
    }
}

/// An extern type as text.
pub(crate) fn describe(ty: &ExternType) -> String {
    match ty {
        ExternType::Function(function) => {
            format!("func {:?} -> {:?}", function.params(), function.results())
        }
        ExternType::Memory(memory) => format!("memory {memory:?}"),
        ExternType::Global(global) => format!("global {global:?}"),
        ExternType::Table(table) => format!("table {table:?}"),
        tag @ ExternType::Tag(_) => format!("{tag:?}"),
    }
}
