//! A team of threads that stay awake for the length of one engine call.
//!
//! Splitting one product of a training step with `rayon::join` costs a wake-up of a sleeping
//! worker (tens of µs on a VM) every time, which at batch 32 is as long as the half product it
//! saves. A [`Team`] instead enlists the pool's other threads once per engine call: they spin
//! on one atomic word while the calling thread runs the step, and [`Team::for_each`] hands
//! them parts of a job in well under a microsecond. Parts are claimed dynamically, so a job
//! never waits for a thread that has not turned up yet (the caller runs unclaimed parts
//! itself); callers therefore make the result of a job independent of which thread ran
//! which part (every part is a disjoint slice of the output, computed the same way).
//!
//! Nothing here allocates: the team lives on the caller's stack and its helpers are started
//! with nested `rayon::join`, which does not heap-allocate.

use std::any::Any;
use std::cell::UnsafeCell;
use std::ops::Range;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::kernels::Rect;

/// The most parts one job may have (the part counter is 16 bits of the state word).
const MAX_PARTS: usize = (1 << 16) - 1;

/// Idle polls a helper spins before it starts yielding its core between polls.
const SPIN_POLLS: u32 = 1 << 14;

type Job<'a> = &'a (dyn Fn(usize) + Sync);

/// Keeps a value on cache lines of its own (128 bytes: a line pair, which adjacent-line
/// prefetchers move together), so a thread polling it is never slowed by writes to neighbours.
#[repr(align(128))]
struct Padded<T>(T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Threads cooperating on one engine call; see the module documentation.
///
/// The words helpers poll (`state`, `quit`) and the word the caller polls (`done`) sit on
/// separate cache lines, apart from everything else on the caller's stack: a spinning reader
/// that shares a line with data the other thread writes costs both of them a line transfer
/// per write (measured: half the 2-thread speed at batch 32, depending on stack alignment).
pub struct Team {
    /// `epoch << 32 | parts << 16 | next`: the current job's number, its part count and the
    /// next part nobody has claimed. Parts are claimed by compare-exchange on the whole word.
    state: Padded<AtomicU64>,
    /// Parts of the current job that have finished.
    done: Padded<AtomicUsize>,
    /// The current job; written by the caller only while no part is claimed or running.
    job: Padded<UnsafeCell<Option<Job<'static>>>>,
    quit: Padded<AtomicBool>,
    /// Threads enlisted (the caller included).
    size: usize,
    /// Threads jobs are split over now (`1..=size`; see [`Team::set_width`]).
    width: AtomicUsize,
    /// The first panic of the current job, re-raised on the calling thread.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    /// A split job is being handed out: a second `for_each` (from a part, or from another
    /// thread holding `&Team`) must not overwrite `job`, so it panics instead.
    busy: AtomicBool,
}

// SAFETY: every field but `job` is a sync primitive. `job` is written only inside `for_each`,
// by one thread at a time (the `busy` flag makes a second concurrent or nested call panic
// before it touches `job`), and only before it publishes a new job with a Release
// store of `state` and after every part of the previous job has finished (`done == parts`
// observed with Acquire). Helpers read `job` only after claiming a part with a successful
// compare-exchange (Acquire) on the `state` value that published it, and finish with that
// read before they increment `done` (Release). So the write and the reads never overlap, and
// every read happens-after the write it sees.
unsafe impl Sync for Team {}

impl Team {
    fn new(size: usize) -> Team {
        Team {
            state: Padded(AtomicU64::new(0)),
            done: Padded(AtomicUsize::new(0)),
            job: Padded(UnsafeCell::new(None)),
            quit: Padded(AtomicBool::new(false)),
            size: size.max(1),
            width: AtomicUsize::new(size.max(1)),
            panic: Mutex::new(None),
            busy: AtomicBool::new(false),
        }
    }

    /// A team of one: `for_each` runs every part on the calling thread.
    pub fn solo() -> Team {
        Team::new(1)
    }

    /// Threads jobs are split over now (the caller included); jobs are usually split this
    /// many ways.
    pub fn size(&self) -> usize {
        self.width.load(Ordering::Relaxed)
    }

    /// Threads enlisted for this call (the most [`Team::set_width`] accepts).
    pub fn enlisted(&self) -> usize {
        self.size
    }

    /// Splits the following jobs over `width` threads (clamped to `1..=enlisted`); with 1, the
    /// caller runs every part and the helpers idle. Results do not depend on it: every job's
    /// output is the same whichever threads ran its parts.
    pub fn set_width(&self, width: usize) {
        self.width
            .store(width.clamp(1, self.size), Ordering::Relaxed);
    }

    /// Calls `f(i)` once for every `i` in `0..parts`, spread over the team, and returns when
    /// all calls have returned. A panic in any call is re-raised here after the others end.
    pub fn for_each(&self, parts: usize, f: &(dyn Fn(usize) + Sync)) {
        if self.size() == 1 || parts <= 1 {
            (0..parts).for_each(f);
            return;
        }
        assert!(parts <= MAX_PARTS, "team: {parts} parts (max {MAX_PARTS})");
        assert!(
            !self.busy.swap(true, Ordering::Acquire),
            "team: for_each called while another split job of the same team is running"
        );
        // SAFETY: the lifetime is erased only for the span of this call: the pointer is read
        // by a thread only after it claims a part of this job, and this function does not
        // return before every part has finished (the `done` wait below, which a panicking part
        // cannot skip because parts run under `catch_unwind`).
        let job: Job<'static> = unsafe { std::mem::transmute::<Job<'_>, Job<'static>>(f) };
        // SAFETY: no part of the previous job is claimed or running (the previous `for_each`
        // waited for all of them, and its `state` value has no parts left to claim), so no
        // thread reads `job` now; see the `Sync` impl.
        unsafe { *self.job.get() = Some(job) };
        self.done.store(0, Ordering::Relaxed);
        let epoch = ((self.state.load(Ordering::Relaxed) >> 32) + 1) & 0xFFFF_FFFF;
        // Part 0 is the caller's own (helpers claim from 1): with one helper, each thread
        // then gets the same part of every job, so data a job splits the same way as the
        // previous one stays in the cache of the core that wrote it.
        self.state
            .store(epoch << 32 | (parts as u64) << 16 | 1, Ordering::Release);
        self.run_part(f, 0);
        self.work();
        let mut polls = 0u32;
        while self.done.load(Ordering::Acquire) < parts {
            polls = polls.saturating_add(1);
            pause(polls);
        }
        let payload = self.panic.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.busy.store(false, Ordering::Release);
        if let Some(p) = payload {
            resume_unwind(p);
        }
    }

    /// Part `i` of `parts` of `0..len` as [`Team::for_ranges`] cuts it (also for callers that
    /// lay out their own parts the same way).
    pub fn range(len: usize, parts: usize, align: usize, i: usize) -> Range<usize> {
        range(len, parts, align, i)
    }

    /// How many parts [`Team::for_ranges`] would make of `len` elements.
    pub fn parts_for(&self, len: usize, min_len: usize, align: usize) -> usize {
        ranges(len, self.size(), min_len, align)
    }

    /// Splits `0..len` into up to `size` ranges of at least `min_len` elements whose starts
    /// are multiples of `align`, and calls `f` on each (see [`Team::for_each`]).
    pub fn for_ranges(
        &self,
        len: usize,
        min_len: usize,
        align: usize,
        f: &(dyn Fn(Range<usize>) + Sync),
    ) {
        let parts = ranges(len, self.size(), min_len, align);
        if parts <= 1 {
            f(0..len);
            return;
        }
        self.for_each(parts, &|i| f(range(len, parts, align, i)));
    }

    /// Claims and runs parts of the current job until none is left. Returns whether it ran any.
    fn work(&self) -> bool {
        let mut ran = false;
        loop {
            let s = self.state.load(Ordering::Acquire);
            let (parts, next) = ((s >> 16) & 0xFFFF, s & 0xFFFF);
            if next >= parts {
                return ran;
            }
            if self
                .state
                .compare_exchange_weak(s, s + 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            // SAFETY: this thread has just claimed part `next` of the job published with
            // state `s`; the owner does not rewrite `job` until this part has finished (see
            // the `Sync` impl), and the Acquire on the claim makes the published write visible.
            let job = unsafe { *self.job.get() };
            if let Some(f) = job {
                self.run_part(f, next as usize);
            } else {
                self.done.fetch_add(1, Ordering::Release);
            }
            ran = true;
        }
    }

    /// Runs part `i` of `f`, keeps its panic (the first of the job) and counts it done.
    fn run_part(&self, f: Job<'_>, i: usize) {
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| f(i))) {
            let mut slot = self.panic.lock().unwrap_or_else(|e| e.into_inner());
            slot.get_or_insert(p);
        }
        self.done.fetch_add(1, Ordering::Release);
    }

    /// A helper's life: run parts as they are published until the owner says quit.
    fn serve(&self) {
        let mut polls = 0u32;
        loop {
            if self.work() {
                polls = 0;
                continue;
            }
            if self.quit.load(Ordering::Acquire) {
                return;
            }
            polls = polls.saturating_add(1);
            pause(polls);
        }
    }
}

/// Spins briefly, then yields the core (so an oversubscribed machine still makes progress).
fn pause(polls: u32) {
    if polls < SPIN_POLLS {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// How many parts [`Team::for_ranges`] makes of `len` elements.
fn ranges(len: usize, size: usize, min_len: usize, align: usize) -> usize {
    let align = align.max(1);
    let by_len = len / min_len.max(1);
    let by_align = len.div_ceil(align);
    size.min(by_len).min(by_align).max(1)
}

/// Part `i` of `parts` of `0..len`, boundaries rounded down to multiples of `align`.
fn range(len: usize, parts: usize, align: usize, i: usize) -> Range<usize> {
    let align = align.max(1);
    let cut = |j: usize| {
        if j >= parts {
            len
        } else {
            (len * j / parts) / align * align
        }
    };
    cut(i)..cut(i + 1)
}

/// Runs `f` with a team of `threads` threads of the current rayon pool (the caller plus up to
/// `threads - 1` helpers, which join as they get scheduled). Helpers stop when `f` returns or
/// panics.
pub fn scoped<R: Send>(threads: usize, f: impl FnOnce(&Team) -> R + Send) -> R {
    let team = Team::new(threads);
    if team.size == 1 {
        return f(&team);
    }
    /// Tells the helpers to stop, also when `f` panics.
    struct Quit<'a>(&'a AtomicBool);
    impl Drop for Quit<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Release);
        }
    }
    fn enlist<R: Send>(team: &Team, helpers: usize, f: impl FnOnce() -> R + Send) -> R {
        if helpers == 0 {
            return f();
        }
        rayon::join(|| enlist(team, helpers - 1, f), || team.serve()).0
    }
    enlist(&team, team.size - 1, || {
        let _quit = Quit(&team.quit.0);
        f(&team)
    })
}

/// A mutable slice that the parts of one team job write in disjoint ranges.
pub struct Disjoint<'a, T> {
    ptr: *mut T,
    len: usize,
    _borrow: std::marker::PhantomData<&'a mut [T]>,
}

// SAFETY: a `Disjoint` only hands out sub-slices through the unsafe `range`, whose callers
// promise that concurrently used ranges do not overlap; `T: Send` lets the elements be
// written from another thread.
unsafe impl<T: Send> Sync for Disjoint<'_, T> {}

impl<'a, T> Disjoint<'a, T> {
    /// Wraps `data` for the length of its borrow.
    pub fn new(data: &'a mut [T]) -> Self {
        Disjoint {
            ptr: data.as_mut_ptr(),
            len: data.len(),
            _borrow: std::marker::PhantomData,
        }
    }

    /// The elements `r` of the wrapped slice.
    ///
    /// # Safety
    /// No other live reference obtained from this `Disjoint` may overlap `r` (for example:
    /// each part of a [`Team::for_ranges`] job takes only its own range).
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn range(&self, r: Range<usize>) -> &'a mut [T] {
        assert!(
            r.start <= r.end && r.end <= self.len,
            "Disjoint: range out of bounds"
        );
        // SAFETY: `r` is inside the wrapped slice (asserted), which is borrowed mutably for
        // 'a; the caller guarantees no overlapping reference from this wrapper is alive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(r.start), r.len()) }
    }
}

impl<'a> Disjoint<'a, f32> {
    /// Columns `cols` of rows `rows` of the wrapped matrix (rows of `stride` values).
    ///
    /// # Safety
    /// No other live reference obtained from this `Disjoint` may overlap those elements (for
    /// example: the parts of a job split by columns each take their own columns).
    pub unsafe fn rect(&self, rows: Range<usize>, stride: usize, cols: Range<usize>) -> Rect<'a> {
        assert!(
            rows.start <= rows.end
                && rows.end.saturating_mul(stride) <= self.len
                && cols.start <= cols.end
                && cols.end <= stride,
            "Disjoint: rectangle out of bounds"
        );
        // SAFETY: rows·stride elements from row `rows.start` are inside the wrapped slice
        // (asserted), borrowed mutably for 'a; cols.end <= stride (asserted); the caller
        // guarantees no overlapping reference from this wrapper is alive.
        unsafe { Rect::from_raw_parts(self.ptr.add(rows.start * stride), rows.len(), stride, cols) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
    }

    #[test]
    fn every_part_runs_once() {
        for threads in [1, 2, 3, 5] {
            let p = pool(threads);
            p.install(|| {
                scoped(threads, |team| {
                    for parts in [0, 1, 2, 3, 7, 64] {
                        let hits: Vec<AtomicUsize> =
                            (0..parts).map(|_| AtomicUsize::new(0)).collect();
                        for _ in 0..200 {
                            team.for_each(parts, &|i| {
                                hits[i].fetch_add(1, Ordering::Relaxed);
                            });
                        }
                        assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 200));
                    }
                })
            });
        }
    }

    #[test]
    fn ranges_cover_exactly() {
        for len in [0, 1, 15, 16, 17, 1000, 4099] {
            for size in 1..6 {
                for align in [1, 16] {
                    let parts = ranges(len, size, 8, align);
                    let mut next = 0;
                    for i in 0..parts {
                        let r = range(len, parts, align, i);
                        assert_eq!(r.start, next);
                        assert!(r.start.is_multiple_of(align) || r.is_empty());
                        next = r.end;
                    }
                    assert_eq!(next, len, "len {len} size {size} align {align}");
                }
            }
        }
    }

    #[test]
    fn disjoint_ranges_fill_a_slice() {
        let p = pool(3);
        let mut v = vec![0u32; 10_000];
        p.install(|| {
            scoped(3, |team| {
                let d = Disjoint::new(&mut v);
                team.for_ranges(10_000, 100, 16, &|r| {
                    let start = r.start;
                    // SAFETY: for_ranges hands every part its own range.
                    let s = unsafe { d.range(r) };
                    for (k, x) in s.iter_mut().enumerate() {
                        *x = (start + k) as u32;
                    }
                });
            })
        });
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as u32));
    }

    #[test]
    fn a_panicking_part_reaches_the_caller_and_the_team_lives_on() {
        let p = pool(2);
        p.install(|| {
            scoped(2, |team| {
                for _ in 0..20 {
                    let r = catch_unwind(AssertUnwindSafe(|| {
                        team.for_each(4, &|i| {
                            if i == 3 {
                                panic!("part 3");
                            }
                        })
                    }));
                    assert!(r.is_err());
                    let n = AtomicUsize::new(0);
                    team.for_each(4, &|_| {
                        n.fetch_add(1, Ordering::Relaxed);
                    });
                    assert_eq!(n.load(Ordering::Relaxed), 4);
                }
            })
        });
    }

    #[test]
    fn a_nested_split_job_panics_instead_of_racing() {
        let p = pool(2);
        p.install(|| {
            scoped(2, |team| {
                let r = catch_unwind(AssertUnwindSafe(|| {
                    team.for_each(2, &|_| team.for_each(2, &|_| {}));
                }));
                assert!(r.is_err());
                // The team is usable afterwards.
                let n = AtomicUsize::new(0);
                team.for_each(3, &|_| {
                    n.fetch_add(1, Ordering::Relaxed);
                });
                assert_eq!(n.load(Ordering::Relaxed), 3);
            })
        });
    }

    #[test]
    fn a_team_larger_than_its_pool_still_finishes() {
        // Helpers that never get a thread must not block a job: the caller runs their parts.
        let p = pool(1);
        let n = AtomicUsize::new(0);
        p.install(|| {
            scoped(4, |team| {
                team.for_each(8, &|_| {
                    n.fetch_add(1, Ordering::Relaxed);
                })
            })
        });
        assert_eq!(n.load(Ordering::Relaxed), 8);
    }
}
