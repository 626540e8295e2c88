;; Three guests that export an allocator under the conventions the host
;; detects, each a bump allocator over the memory past 64 KiB, and a
;; bytes function `echo(ptr, len) -> (ptr << 32) | len` that copies its
;; input into a new allocation. The tests split this file into its three
;; modules at the section lines below.

;; ---- cabi_realloc (component model)
(module
  (memory (export "memory") 2)
  (global $next (mut i32) (i32.const 65536))
  (func $alloc (param $size i32) (result i32) (local $ptr i32)
    (local.set $ptr (i32.and (i32.add (global.get $next) (i32.const 7)) (i32.const -8)))
    (global.set $next (i32.add (local.get $ptr) (local.get $size)))
    (if (i32.gt_u (global.get $next) (i32.mul (memory.size) (i32.const 65536)))
      (then (if (i32.eq (memory.grow (i32.add (i32.div_u (local.get $size) (i32.const 65536)) (i32.const 1))) (i32.const -1))
        (then (return (i32.const 0))))))
    (local.get $ptr))
  (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $new_size i32) (result i32)
    (call $alloc (local.get $new_size)))
  (func (export "echo") (param $ptr i32) (param $len i32) (result i64) (local $out i32)
    (local.set $out (call $alloc (local.get $len)))
    (memory.copy (local.get $out) (local.get $ptr) (local.get $len))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32)) (i64.extend_i32_u (local.get $len)))))

;; ---- wasm-bindgen
(module
  (memory (export "memory") 2)
  (global $next (mut i32) (i32.const 65536))
  (global (export "frees") (mut i32) (i32.const 0))
  (func $alloc (param $size i32) (result i32) (local $ptr i32)
    (local.set $ptr (i32.and (i32.add (global.get $next) (i32.const 7)) (i32.const -8)))
    (global.set $next (i32.add (local.get $ptr) (local.get $size)))
    (local.get $ptr))
  (func (export "__wbindgen_malloc") (param $size i32) (param $align i32) (result i32)
    (call $alloc (local.get $size)))
  (func (export "__wbindgen_free") (param $ptr i32) (param $size i32) (param $align i32)
    (global.set 1 (i32.add (global.get 1) (i32.const 1))))
  (func (export "echo") (param $ptr i32) (param $len i32) (result i64) (local $out i32)
    (local.set $out (call $alloc (local.get $len)))
    (memory.copy (local.get $out) (local.get $ptr) (local.get $len))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32)) (i64.extend_i32_u (local.get $len)))))

;; ---- an allocator that returns pointers outside memory
(module
  (memory (export "memory") 1)
  (func (export "alloc") (param $size i32) (result i32) (i32.const 0x7FFFFFF0))
  (func (export "dealloc") (param i32 i32)))
