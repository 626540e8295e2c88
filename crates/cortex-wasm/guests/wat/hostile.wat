;; Hostile and faulty guest behaviour, one export each. No allocator: the
;; host manages the memory it grows for its own allocations.
(module
  (memory (export "memory") 1)

  ;; An endless loop with no calls in it.
  (func (export "spin")
    (loop $forever (br $forever)))

  ;; Grows memory a page at a time until a grow fails, then aborts (what
  ;; an allocator that runs out of memory does).
  (func (export "hog")
    (loop $more
      (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1))
        (then unreachable))
      (br $more)))

  ;; A plain trap.
  (func (export "trap") unreachable)

  ;; Division, to divide by zero.
  (func (export "div") (param i32 i32) (result i32)
    (i32.div_s (local.get 0) (local.get 1)))

  ;; Unbounded recursion: a stack overflow.
  (func $recurse (export "recurse") (result i32)
    (i32.add (call $recurse) (i32.const 1)))

  ;; A bytes function whose result points far outside memory.
  (func (export "oob_result") (param i32 i32) (result i64)
    (i64.or (i64.shl (i64.const 0xFFFF0000) (i64.const 32)) (i64.const 16)))

  ;; A result that starts inside memory and runs past its end.
  (func (export "past_end") (param i32 i32) (result i64)
    (i64.or
      (i64.shl (i64.extend_i32_u (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 8)))
               (i64.const 32))
      (i64.const 1024)))

  ;; Grows memory by $pages, returning the old size in pages (or -1).
  (func (export "grow") (param $pages i32) (result i32)
    (memory.grow (local.get $pages)))

  ;; Reverses the input in place and returns it: a bytes function for a
  ;; guest without an allocator.
  (func (export "reverse") (param $ptr i32) (param $len i32) (result i64)
    (local $i i32) (local $j i32) (local $t i32)
    (local.set $i (local.get $ptr))
    (local.set $j (i32.sub (i32.add (local.get $ptr) (local.get $len)) (i32.const 1)))
    (block $done
      (loop $swap
        (br_if $done (i32.ge_s (local.get $i) (local.get $j)))
        (local.set $t (i32.load8_u (local.get $i)))
        (i32.store8 (local.get $i) (i32.load8_u (local.get $j)))
        (i32.store8 (local.get $j) (local.get $t))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (local.set $j (i32.sub (local.get $j) (i32.const 1)))
        (br $swap)))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
            (i64.extend_i32_u (local.get $len))))

  ;; An add for call-overhead measurements.
  (func (export "add") (param i32 i32) (result i32)
    (i32.add (local.get 0) (local.get 1))))
