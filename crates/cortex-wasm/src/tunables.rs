//! The linear-memory cap: wasmer's `LimitingTunables` pattern, ported to
//! wasmer 7. Every memory gets a maximum of at most the cap; a guest's
//! `memory.grow` past it returns -1 inside the guest (no trap), and a
//! module whose initial memory is above the cap fails to instantiate.

use std::ptr::NonNull;

use wasmer::sys::vm::{
    MemoryError, MemoryStyle, TableStyle, VMConfig, VMMemory, VMMemoryDefinition, VMTable,
    VMTableDefinition,
};
use wasmer::sys::{BaseTunables, Tunables};
use wasmer::{MemoryType, Pages, TableType};

/// [`BaseTunables`] with every memory's maximum clamped to `limit`.
pub(crate) struct LimitingTunables {
    limit: Pages,
    base: BaseTunables,
}

impl std::fmt::Debug for LimitingTunables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LimitingTunables")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl LimitingTunables {
    pub(crate) fn new(limit: Pages) -> Self {
        Self {
            limit,
            base: BaseTunables::new(),
        }
    }

    /// The requested type with a maximum no higher than the cap.
    fn adjust(&self, requested: &MemoryType) -> MemoryType {
        let mut adjusted = *requested;
        adjusted.maximum = Some(match requested.maximum {
            Some(maximum) if maximum < self.limit => maximum,
            _ => self.limit,
        });
        adjusted
    }

    fn validate(&self, ty: &MemoryType) -> Result<(), MemoryError> {
        if ty.minimum > self.limit {
            return Err(MemoryError::Generic(format!(
                "the module's initial memory of {} pages exceeds the cap of {} pages",
                ty.minimum.0, self.limit.0
            )));
        }
        Ok(())
    }
}

impl Tunables for LimitingTunables {
    fn memory_style(&self, memory: &MemoryType) -> MemoryStyle {
        self.base.memory_style(&self.adjust(memory))
    }

    fn table_style(&self, table: &TableType) -> TableStyle {
        self.base.table_style(table)
    }

    fn create_host_memory(
        &self,
        ty: &MemoryType,
        style: &MemoryStyle,
    ) -> Result<VMMemory, MemoryError> {
        let adjusted = self.adjust(ty);
        self.validate(&adjusted)?;
        self.base.create_host_memory(&adjusted, style)
    }

    // SAFETY: the trait method is unsafe because `vm_definition_location`
    // must point at the instance's memory definition; we pass the caller's
    // pointer through unchanged to `BaseTunables`, which has the same
    // contract, and only change the memory type's maximum.
    #[allow(unsafe_code)]
    unsafe fn create_vm_memory(
        &self,
        ty: &MemoryType,
        style: &MemoryStyle,
        vm_definition_location: NonNull<VMMemoryDefinition>,
    ) -> Result<VMMemory, MemoryError> {
        let adjusted = self.adjust(ty);
        self.validate(&adjusted)?;
        // SAFETY: forwarded with the caller's guarantee (see above).
        unsafe {
            self.base
                .create_vm_memory(&adjusted, style, vm_definition_location)
        }
    }

    fn create_host_table(&self, ty: &TableType, style: &TableStyle) -> Result<VMTable, String> {
        self.base.create_host_table(ty, style)
    }

    // SAFETY: as for `create_vm_memory`: the caller's pointer goes to
    // `BaseTunables` unchanged, with the same contract.
    #[allow(unsafe_code)]
    unsafe fn create_vm_table(
        &self,
        ty: &TableType,
        style: &TableStyle,
        vm_definition_location: NonNull<VMTableDefinition>,
    ) -> Result<VMTable, String> {
        // SAFETY: forwarded with the caller's guarantee (see above).
        unsafe { self.base.create_vm_table(ty, style, vm_definition_location) }
    }

    fn vmconfig(&self) -> &VMConfig {
        self.base.vmconfig()
    }
}
