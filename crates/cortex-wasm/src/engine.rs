//! [`WasmEngine`]: settings every module it compiles shares (compiler,
//! limits) and the compiled-module cache.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wasmer::sys::{CompilerConfig, NativeEngineExt};
use wasmer::wasmparser::Operator;
use wasmer::{Engine, Module, Pages, WASM_PAGE_SIZE};
use wasmer_middlewares::Metering;

use crate::deadline::Deadlines;
use crate::error::WasmError;
use crate::module::WasmModule;
use crate::tunables::LimitingTunables;

/// Which compiler turns WebAssembly into machine code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Compiler {
    /// Optimizing: slower to compile, faster code. The default.
    #[default]
    Cranelift,
    /// Linear-time compilation (feature `singlepass`): for untrusted
    /// modules submitted at run time, where a crafted module must not make
    /// compilation itself expensive.
    Singlepass,
}

/// Limits and compiler settings; every field has a default, so `{}` is a
/// valid config.
///
/// ```
/// use std::time::Duration;
/// use cortex_wasm::WasmConfig;
///
/// let config: WasmConfig = serde_json::from_str(
///     r#"{ "fuel": 10000000, "deadline": "250ms", "max_memory_bytes": 16777216 }"#,
/// ).unwrap();
/// assert_eq!(config.deadline, Some(Duration::from_millis(250)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WasmConfig {
    /// The compiler. Cranelift.
    pub compiler: Compiler,
    /// Metering points each call may use (one per operator, ten per branch
    /// or call by default; see [`WasmEngineBuilder::cost_function`]);
    /// `None` turns metering off (no per-operator cost at all).
    pub fuel: Option<u64>,
    /// Wall-clock limit per call (feature `interrupt`); `None`: no limit.
    #[serde(with = "humantime_serde::option")]
    pub deadline: Option<Duration>,
    /// The most linear memory an instance may have. 64 MiB.
    pub max_memory_bytes: u64,
    /// Compiled modules kept by hash. 64.
    pub cache_capacity: usize,
}

impl Default for WasmConfig {
    fn default() -> Self {
        Self {
            compiler: Compiler::Cranelift,
            fuel: None,
            deadline: None,
            max_memory_bytes: 64 * 1024 * 1024,
            cache_capacity: 64,
        }
    }
}

/// The cost of one operator in metering points.
pub type CostFunction = Arc<dyn Fn(&Operator<'_>) -> u64 + Send + Sync>;

/// One point per operator, ten for operators that end a metered block
/// (branches, calls, returns): loops pay per iteration.
pub fn default_cost(operator: &Operator<'_>) -> u64 {
    if wasmer_middlewares::metering::is_accounting(operator) {
        10
    } else {
        1
    }
}

/// What every module and instance of one engine shares.
pub(crate) struct EngineShared {
    pub(crate) config: WasmConfig,
    pub(crate) max_pages: Pages,
    pub(crate) cost: CostFunction,
    pub(crate) deadlines: Arc<Deadlines>,
    cache: Mutex<Cache>,
    pub(crate) compiled: AtomicU64,
    pub(crate) cache_hits: AtomicU64,
}

impl std::fmt::Debug for EngineShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineShared")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Compiled modules by the blake3 hash of their bytes, oldest evicted
/// first.
#[derive(Default)]
struct Cache {
    modules: HashMap<[u8; 32], WasmModule>,
    order: VecDeque<[u8; 32]>,
}

/// Compiles modules with one set of settings and caches them.
///
/// Cheap to clone. Each module gets its own wasmer engine: metering is
/// compiled into the code, and wasmer's metering middleware serves one
/// module.
///
/// ```
/// use cortex_wasm::WasmEngine;
///
/// let engine = WasmEngine::builder().fuel(1_000_000).build()?;
/// let module = engine.compile(r#"(module (func (export "add") (param i32 i32) (result i32)
///     local.get 0 local.get 1 i32.add))"#)?;
/// let mut instance = module.instantiate()?;
/// let add = instance.typed_function::<(i32, i32), i32>("add")?;
/// assert_eq!(instance.call_with(|store| add.call(store, 2, 3))?, 5);
/// // The same bytes again come from the cache.
/// let again = engine.compile(r#"(module (func (export "add") (param i32 i32) (result i32)
///     local.get 0 local.get 1 i32.add))"#)?;
/// assert_eq!(module.hash(), again.hash());
/// assert_eq!(engine.stats().cache_hits, 1);
/// # Ok::<(), cortex_wasm::WasmError>(())
/// ```
#[derive(Debug, Clone)]
pub struct WasmEngine {
    shared: Arc<EngineShared>,
}

/// Compile and cache counters of a [`WasmEngine`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct EngineStats {
    /// Modules compiled.
    pub compiled: u64,
    /// Compiles answered from the cache.
    pub cache_hits: u64,
    /// Modules in the cache.
    pub cached: usize,
}

impl WasmEngine {
    /// Starts configuring an engine.
    pub fn builder() -> WasmEngineBuilder {
        WasmEngineBuilder {
            config: WasmConfig::default(),
            cost: Arc::new(default_cost),
        }
    }

    /// An engine with the default settings (no metering, no deadline,
    /// 64 MiB memory cap).
    pub fn new() -> Self {
        Self::builder()
            .build()
            .expect("the default settings are valid")
    }

    /// The settings.
    pub fn config(&self) -> &WasmConfig {
        &self.shared.config
    }

    /// Compiles a module from its binary or WAT text, or returns the cached
    /// module with the same bytes.
    pub fn compile(&self, bytes: impl AsRef<[u8]>) -> Result<WasmModule, WasmError> {
        let bytes = bytes.as_ref();
        let hash: [u8; 32] = blake3::hash(bytes).into();
        if let Some(module) = self.cache().modules.get(&hash) {
            self.shared.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(module.clone());
        }
        let engine = self.wasmer_engine()?;
        let module =
            Module::new(&engine, bytes).map_err(|error| WasmError::Compile(error.to_string()))?;
        self.shared.compiled.fetch_add(1, Ordering::Relaxed);
        let module = WasmModule::new(engine, module, hash, Arc::clone(&self.shared));
        let mut cache = self.cache();
        if self.shared.config.cache_capacity > 0 && !cache.modules.contains_key(&hash) {
            while cache.modules.len() >= self.shared.config.cache_capacity {
                let Some(oldest) = cache.order.pop_front() else {
                    break;
                };
                cache.modules.remove(&oldest);
            }
            cache.modules.insert(hash, module.clone());
            cache.order.push_back(hash);
        }
        Ok(module)
    }

    /// Compiles the module in the file at `path` (binary or WAT).
    pub fn compile_file(&self, path: impl AsRef<std::path::Path>) -> Result<WasmModule, WasmError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|error| WasmError::Io {
            path: path.display().to_string(),
            message: error.to_string(),
        })?;
        self.compile(bytes)
    }

    /// Compile and cache counters.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            compiled: self.shared.compiled.load(Ordering::Relaxed),
            cache_hits: self.shared.cache_hits.load(Ordering::Relaxed),
            cached: self.cache().modules.len(),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.shared
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A wasmer engine for one module: the compiler, metering (a fresh
    /// middleware: one serves one module) and the memory cap.
    fn wasmer_engine(&self) -> Result<Engine, WasmError> {
        let config = &self.shared.config;
        let metering = config.fuel.map(|fuel| {
            let cost = Arc::clone(&self.shared.cost);
            Arc::new(Metering::new(fuel, move |operator: &Operator<'_>| {
                cost(operator)
            }))
        });
        let mut engine: Engine = match config.compiler {
            Compiler::Cranelift => {
                let mut compiler = wasmer::sys::Cranelift::default();
                if let Some(metering) = metering {
                    compiler.push_middleware(metering);
                }
                compiler.into()
            }
            #[cfg(feature = "singlepass")]
            Compiler::Singlepass => {
                let mut compiler = wasmer::sys::Singlepass::default();
                if let Some(metering) = metering {
                    compiler.push_middleware(metering);
                }
                wasmer::sys::EngineBuilder::new(compiler).engine().into()
            }
            #[cfg(not(feature = "singlepass"))]
            Compiler::Singlepass => {
                return Err(WasmError::Compile(
                    "the singlepass compiler needs cortex-wasm's `singlepass` feature".to_owned(),
                ));
            }
        };
        engine.set_tunables(LimitingTunables::new(self.shared.max_pages));
        Ok(engine)
    }
}

impl Default for WasmEngine {
    fn default() -> Self {
        Self::new()
    }
}

/// Builds a [`WasmEngine`]; from [`WasmEngine::builder`].
#[must_use = "a builder does nothing until `build` is called"]
pub struct WasmEngineBuilder {
    config: WasmConfig,
    cost: CostFunction,
}

impl std::fmt::Debug for WasmEngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmEngineBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl WasmEngineBuilder {
    /// Replaces every setting with `config`.
    pub fn config(mut self, config: WasmConfig) -> Self {
        self.config = config;
        self
    }

    /// See [`WasmConfig::compiler`].
    pub fn compiler(mut self, compiler: Compiler) -> Self {
        self.config.compiler = compiler;
        self
    }

    /// See [`WasmConfig::fuel`].
    pub fn fuel(mut self, points: u64) -> Self {
        self.config.fuel = Some(points);
        self
    }

    /// The metering cost of each operator (default [`default_cost`]).
    pub fn cost_function(
        mut self,
        cost: impl Fn(&Operator<'_>) -> u64 + Send + Sync + 'static,
    ) -> Self {
        self.cost = Arc::new(cost);
        self
    }

    /// See [`WasmConfig::deadline`].
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.config.deadline = Some(deadline);
        self
    }

    /// See [`WasmConfig::max_memory_bytes`].
    pub fn max_memory_bytes(mut self, bytes: u64) -> Self {
        self.config.max_memory_bytes = bytes;
        self
    }

    /// See [`WasmConfig::cache_capacity`].
    pub fn cache_capacity(mut self, modules: usize) -> Self {
        self.config.cache_capacity = modules;
        self
    }

    /// Validates the settings.
    pub fn build(self) -> Result<WasmEngine, WasmError> {
        let config = self.config;
        let page = u64::from(WASM_PAGE_SIZE as u32);
        let pages = config.max_memory_bytes / page;
        if pages == 0 || pages > 65_536 {
            return Err(WasmError::Compile(format!(
                "max_memory_bytes must be between one page (64 KiB) and 4 GiB, not {}",
                config.max_memory_bytes
            )));
        }
        if config.fuel == Some(0) {
            return Err(WasmError::Compile("fuel must be positive".to_owned()));
        }
        if config.deadline.is_some_and(|deadline| deadline.is_zero()) {
            return Err(WasmError::Compile("deadline must be positive".to_owned()));
        }
        #[cfg(not(all(unix, feature = "interrupt")))]
        if config.deadline.is_some() {
            return Err(WasmError::Compile(
                "a deadline needs cortex-wasm's `interrupt` feature (Unix)".to_owned(),
            ));
        }
        let max_pages = Pages(u32::try_from(pages).unwrap_or(u32::MAX));
        Ok(WasmEngine {
            shared: Arc::new(EngineShared {
                config,
                max_pages,
                cost: self.cost,
                deadlines: Deadlines::new(),
                cache: Mutex::new(Cache::default()),
                compiled: AtomicU64::new(0),
                cache_hits: AtomicU64::new(0),
            }),
        })
    }
}
