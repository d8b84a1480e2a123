//! `gemm::matmul` must not heap-allocate once its scratch was reserved: checked with a
//! counting global allocator that counts only on tracked threads (the test thread and the
//! workers of the test's rayon pool), so the test harness's own threads don't interfere.

use kerox_core::dispatch::Level;
use kerox_core::gemm::{matmul, GemmScratch, MatMut, MatRef};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);
/// Serializes the tests of this binary so one's allocations don't count in another's window.
static SERIAL: Mutex<()> = Mutex::new(());

thread_local! {
    static TRACKED: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if TRACKED.with(Cell::get) {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
    }
}

// SAFETY: every method forwards its arguments unchanged to `System` (a correct allocator),
// so blocks are allocated, resized and freed by `System` alone; counting touches only atomics
// and a `const` thread-local (no allocation, no reentrancy).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: `layout` has a non-zero size (our caller's contract, passed on
        // unchanged to `System`, whose contract is the same).
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: `layout` has a non-zero size (our caller's contract, passed on
        // unchanged to `System`, whose contract is the same).
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: `ptr` came from `System` with `layout`, and `new_size` is non-zero and
        // valid for its alignment (our caller's contract, passed on unchanged).
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with this `layout`
        // (our caller's contract, passed on unchanged).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The three dense-layer patterns (forward, weight grad, input grad) at several sizes, run
/// `reps` times with `threads` tasks; returns the allocations counted during the calls.
fn allocations_during_calls(scratch: &mut GemmScratch, threads: usize) -> usize {
    let (batch, fan_in, fan_out) = (300, 784, 256);
    let x = vec![0.5f32; batch * fan_in];
    let w = vec![0.25f32; fan_in * fan_out];
    let dy = vec![1.0f32; batch * fan_out];
    let mut y = vec![0.0f32; batch * fan_out];
    let mut dw = vec![0.0f32; fan_in * fan_out];
    let mut dx = vec![0.0f32; batch * fan_in];
    let levels = Level::available();
    let before = ALLOCS.load(Ordering::SeqCst);
    for &level in &levels {
        for b in [batch, 1, 17] {
            let xs = MatRef::row_major(&x[..b * fan_in], b, fan_in);
            let dys = MatRef::row_major(&dy[..b * fan_out], b, fan_out);
            let wm = MatRef::row_major(&w, fan_in, fan_out);
            let yv = MatMut::row_major(&mut y[..b * fan_out], b, fan_out);
            matmul(level, yv, xs, wm, false, scratch, threads);
            let dwv = MatMut::row_major(&mut dw, fan_in, fan_out);
            matmul(level, dwv, xs.t(), dys, true, scratch, threads);
            let dxv = MatMut::row_major(&mut dx[..b * fan_in], b, fan_in);
            matmul(level, dxv, dys, wm.t(), false, scratch, threads);
        }
    }
    ALLOCS.load(Ordering::SeqCst) - before
}

#[test]
fn matmul_does_not_allocate_after_reserve() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    TRACKED.with(|t| t.set(true));
    let mut scratch = GemmScratch::new();
    scratch.reserve(784, 784, 784, 2);

    assert_eq!(
        allocations_during_calls(&mut scratch, 1),
        0,
        "threads=1 allocated"
    );

    // threads=2 forks with rayon::join inside the pool: join pushes a stack-allocated job on
    // the worker's deque (pre-allocated by rayon) and wakes a sleeping worker, none of which
    // heap-allocates, so even the first parallel call allocates nothing.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .start_handler(|_| TRACKED.with(|t| t.set(true)))
        .build()
        .unwrap();
    // Each worker allocates once, on its own first look for work (crossbeam-epoch registers
    // the thread); wait until both have started so that start-up is not counted (it used to
    // land inside the measured window when a worker started late, failing the test at random).
    pool.broadcast(|_| ());
    pool.install(|| {
        for round in 0..2 {
            let n = allocations_during_calls(&mut scratch, 2);
            assert_eq!(n, 0, "threads=2 allocated (round {round})");
        }
    });
}

#[test]
fn empty_scratch_grows_by_itself() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut scratch = GemmScratch::new();
    let a = vec![1.0f32; 40 * 30];
    let b = vec![1.0f32; 30 * 20];
    let mut c = vec![f32::NAN; 40 * 20];
    let level = Level::current();
    let (av, bv) = (MatRef::row_major(&a, 40, 30), MatRef::row_major(&b, 30, 20));
    matmul(
        level,
        MatMut::row_major(&mut c, 40, 20),
        av,
        bv,
        false,
        &mut scratch,
        1,
    );
    assert!(c.iter().all(|v| *v == 30.0));
}
