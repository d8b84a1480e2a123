//! Single-precision GEMM with runtime dispatch: `c = a·b` or `c += a·b` on strided views.
//!
//! BLIS-style: operands are packed (B into `KC×NR` column panels, A into `MR×KC` row panels)
//! into buffers owned by a [`GemmScratch`], so the register-tile microkernels (`ukernel.rs`)
//! read unit-stride data whatever the input strides. Two shortcuts skip packing where it only
//! costs: A is read in place when one of its strides is 1 (the broadcast operand needs no
//! layout change), and a row-major B is read in place when A has few rows (see [`b_direct`]).
//! Loop nest per task: `jc` (NC columns) → `pc` (KC depth, B block packed) → `ic` (MC rows, A
//! block packed) → `jr` (NR) → `ir` (MR) → microkernel.
//!
//! Threading splits the output over rows/columns only (one rectangle per part of a
//! [`Team`] job, no heap allocation), each task packing into its own scratch slot. The depth blocking depends on `k`
//! alone, and every microkernel lane runs the same FMA chain over k, so each output element is
//! computed by the same operations whatever `threads` is: results are bit-identical for every
//! thread count.

mod pack;
mod ukernel;

use crate::dispatch::Level;
use crate::team::{self, Disjoint, Team};
use std::ops::Range;
use ukernel::{Params, Tile};

/// Read-only strided matrix view: element (r, c) is `data[r*row_stride + c*col_stride]`.
#[derive(Clone, Copy)]
pub struct MatRef<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

/// Mutable row-major view (column stride 1): element (r, c) is `data[r*row_stride + c]`.
pub struct MatMut<'a> {
    pub data: &'a mut [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
}

impl<'a> MatRef<'a> {
    /// Dense row-major `rows × cols` view.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// Transposed view (no copy).
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }
}

impl<'a> MatMut<'a> {
    /// Dense row-major `rows × cols` view.
    pub fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        MatMut {
            data,
            rows,
            cols,
            row_stride: cols,
        }
    }
}

/// Below this many multiply-adds (m·n·k) a product runs as one task even on a larger team.
/// A team hands out a part in well under a microsecond (its helpers spin), so the floor is
/// low: 256K multiply-adds is ~6 µs of one core. (With a `rayon::join` per product, which
/// wakes a sleeping worker each time, the break-even on the seed model was 8M.)
/// `KEROX_PAR_MIN_FMAS` overrides it (read once; for tuning measurements).
const PAR_MIN_FMAS: usize = 1 << 18;

static PAR_MIN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

pub(crate) fn par_min_fmas() -> usize {
    use std::sync::atomic::Ordering::Relaxed;
    match PAR_MIN.load(Relaxed) {
        0 => {
            let v = std::env::var("KEROX_PAR_MIN_FMAS")
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .filter(|&v: &usize| v > 0)
                .unwrap_or(PAR_MIN_FMAS);
            PAR_MIN.store(v, Relaxed);
            v
        }
        v => v,
    }
}

/// Sets the split threshold (tests use 1 to split even tiny products; the result of a
/// product never depends on it).
#[cfg(test)]
pub(crate) fn set_par_min_fmas(v: usize) {
    PAR_MIN.store(v.max(1), std::sync::atomic::Ordering::Relaxed);
}

/// Row-major B is read in place (not packed) when A has at most this many rows: measured at
/// 784→256, B=32 that is +10% (AVX-512) / +9% (AVX2); at B=128 it is a wash.
const B_DIRECT_MAX_M: usize = 48;

/// Extra floats per buffer so panels can start on a 64-byte boundary.
const ALIGN_PAD: usize = 16;

/// Packing buffers of one task.
#[derive(Default)]
struct TaskBuf {
    a: Vec<f32>,
    b: Vec<f32>,
}

/// Packing buffers, allocated up front. `matmul` never allocates when the scratch was reserved
/// for at least the (m, n, k, threads) it is called with (it may grow itself otherwise).
#[derive(Default)]
pub struct GemmScratch {
    tasks: Vec<TaskBuf>,
}

/// Buffer lengths (A pack, B pack) one task needs for an m×n×k product at any level.
fn pack_lens(m: usize, n: usize, k: usize) -> (usize, usize) {
    let mut lens = (0, 0);
    for level in Level::ALL {
        let p = Params::of(level);
        let kc = k.min(p.kc);
        let a = m.min(p.mc) * kc;
        let b = n.min(p.nc).div_ceil(p.nr) * p.nr * kc;
        lens = (lens.0.max(a), lens.1.max(b));
    }
    (lens.0 + ALIGN_PAD, lens.1 + ALIGN_PAD)
}

/// Grows `v` to at least `len` elements (never shrinks).
fn grow(v: &mut Vec<f32>, len: usize) {
    if v.len() < len {
        v.resize(len, 0.0);
    }
}

/// The 64-byte-aligned part of a buffer grown by [`grow`] with `ALIGN_PAD` slack.
fn aligned(v: &mut [f32]) -> &mut [f32] {
    let off = v.as_ptr().align_offset(64).min(ALIGN_PAD);
    &mut v[off..]
}

impl GemmScratch {
    /// Empty scratch, no allocation.
    pub fn new() -> Self {
        GemmScratch { tasks: Vec::new() }
    }

    /// Grows the buffers so `matmul` on products up to `max_m × max_k · max_k × max_n` with up
    /// to `threads` tasks never allocates (grow-only).
    pub fn reserve(&mut self, max_m: usize, max_n: usize, max_k: usize, threads: usize) {
        self.ensure(max_m, max_n, max_k, threads.max(1));
    }

    fn ensure(&mut self, m: usize, n: usize, k: usize, tasks: usize) {
        if self.tasks.len() < tasks {
            self.tasks.resize_with(tasks, TaskBuf::default);
        }
        let (la, lb) = pack_lens(m, n, k);
        for t in &mut self.tasks[..tasks] {
            grow(&mut t.a, la);
            grow(&mut t.b, lb);
        }
    }
}

/// `c = a·b` when `accumulate` is false, `c += a·b` when true. a: m×k, b: k×n, c: m×n.
///
/// Panics (assert!) on inconsistent shapes/strides, too-short slices or a `level` the CPU
/// lacks. `threads` is the number of parallel tasks (1 = the calling thread, no rayon call);
/// with `threads > 1` it runs on a [`Team`] of the current rayon pool (see [`matmul_on`]).
/// The result is bit-identical for every `threads` value. `accumulate = false` never reads `c`.
pub fn matmul(
    level: Level,
    c: MatMut<'_>,
    a: MatRef<'_>,
    b: MatRef<'_>,
    accumulate: bool,
    scratch: &mut GemmScratch,
    threads: usize,
) {
    team::scoped(threads, |t| {
        matmul_on(level, c, a, b, accumulate, scratch, t, false)
    });
}

/// [`matmul`] on an existing team: products of at least `par_min_fmas` multiply-adds are split
/// into up to `team.size()` output rectangles, one per part. With `rows_first`, a split over
/// rows wins near-ties (within 1/8 of the estimated cost) so each part owns whole rows of C
/// (contiguous memory, which a following pass split by flat ranges finds in the same core's
/// cache); otherwise the cheaper split wins. The result does not depend on the team's size,
/// on `rows_first` or on which thread runs which part.
#[allow(clippy::too_many_arguments)]
pub fn matmul_on(
    level: Level,
    c: MatMut<'_>,
    a: MatRef<'_>,
    b: MatRef<'_>,
    accumulate: bool,
    scratch: &mut GemmScratch,
    team: &Team,
    rows_first: bool,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "gemm: a is {m}×{k} but b has {} rows", b.rows);
    assert!(
        c.rows == m && c.cols == n,
        "gemm: c is {}×{}, expected {m}×{n}",
        c.rows,
        c.cols
    );
    assert!(
        m <= 1 || c.row_stride >= n,
        "gemm: c.row_stride {} < cols {n}",
        c.row_stride
    );
    check_ref(&a, "a");
    check_ref(&b, "b");
    if m > 0 && n > 0 {
        let end = (m - 1)
            .checked_mul(c.row_stride)
            .and_then(|r| r.checked_add(n))
            .expect("gemm: c extent overflows usize");
        assert!(
            end <= c.data.len(),
            "gemm: c slice too short ({} < {end})",
            c.data.len()
        );
    }
    assert!(
        level <= Level::detected(),
        "gemm: level {level:?} not supported by this CPU"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                c.data[r * c.row_stride..r * c.row_stride + n].fill(0.0);
            }
        }
        return;
    }

    let prm = Params::of(level);
    let tiles = m.div_ceil(prm.mr) * n.div_ceil(prm.nr);
    let tasks = if team.size() <= 1 || m.saturating_mul(n).saturating_mul(k) < par_min_fmas() {
        1
    } else {
        team.size().min(tiles)
    };
    scratch.ensure(m, n, k, tasks);
    let ctx = Ctx {
        level,
        prm,
        a,
        b,
        c: CPtr(c.data.as_mut_ptr()),
        rs_c: c.row_stride,
        k,
        kc: k.div_ceil(k.div_ceil(prm.kc)),
        accumulate,
        a_direct: a_direct(&a),
        b_direct: b_direct(&b, m),
        rows_first,
    };
    if tasks == 1 {
        block(&ctx, &mut scratch.tasks[0], 0..m, 0..n);
        return;
    }
    let bufs = Disjoint::new(&mut scratch.tasks[..tasks]);
    team.for_each(tasks, &|t| {
        // A copy on this thread's stack: the caller keeps writing its own stack while the
        // parts run, and a part reading `ctx` from a line the caller writes would stall.
        #[allow(clippy::redundant_locals)]
        let ctx = ctx;
        let (rows, cols) = rect(&ctx, tasks, t, 0..m, 0..n);
        // SAFETY: `for_each` calls each part `t` exactly once, and part `t` takes only buffer
        // `t`, so no two live references overlap.
        let buf = unsafe { &mut bufs.range(t..t + 1)[0] };
        block(&ctx, buf, rows, cols);
    });
}

/// Asserts that every element of a non-empty view is inside its slice.
fn check_ref(x: &MatRef<'_>, name: &str) {
    if x.rows > 0 && x.cols > 0 {
        let last = (x.rows - 1)
            .checked_mul(x.row_stride)
            .and_then(|r| {
                (x.cols - 1)
                    .checked_mul(x.col_stride)
                    .and_then(|c| r.checked_add(c))
            })
            .expect("gemm: view extent overflows usize");
        assert!(
            last < x.data.len(),
            "gemm: {name} slice too short ({} elements, view reaches index {last})",
            x.data.len()
        );
    }
}

/// Pointer to the output, shared by tasks that write disjoint rectangles of it.
#[derive(Clone, Copy)]
struct CPtr(*mut f32);
// SAFETY: the pointer comes from the `&mut [f32]` that `matmul` takes by value (so nothing
// else can reach C during the call), and tasks on other threads only write through it inside
// their own (row range × column range) rectangle of C; `run` splits the output into
// non-overlapping rectangles, so no two threads ever touch the same element.
unsafe impl Send for CPtr {}
// SAFETY: as for `Send`: shared `&CPtr` across tasks only ever yields writes to disjoint
// rectangles, never overlapping references.
unsafe impl Sync for CPtr {}

/// Everything a task needs besides its buffers and its output rectangle.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    level: Level,
    prm: Params,
    a: MatRef<'a>,
    b: MatRef<'a>,
    c: CPtr,
    rs_c: usize,
    k: usize,
    /// Depth of every k block but the last (depends on k and the level only).
    kc: usize,
    accumulate: bool,
    /// A is read in place by the microkernels (see [`a_direct`]).
    a_direct: bool,
    /// Full-width B panels are read in place (see [`b_direct`]).
    b_direct: bool,
    /// Split over rows on near-ties (see [`matmul_on`]).
    rows_first: bool,
}

/// Relative cost, in multiply-adds, of packing one element (drives the split heuristic).
const PACK_COST: usize = 8;

/// The output rectangle of task `tid` when `t` tasks share `rows × cols`: the task set and the
/// rectangle are halved recursively (over m or n, whichever leaves the larger half cheaper),
/// and task `tid` follows its half. A task left without tiles gets an empty rectangle.
fn rect(
    ctx: &Ctx<'_>,
    t: usize,
    tid: usize,
    rows: Range<usize>,
    cols: Range<usize>,
) -> (Range<usize>, Range<usize>) {
    let (mr, nr) = (ctx.prm.mr, ctx.prm.nr);
    let (mt, nt) = (rows.len().div_ceil(mr), cols.len().div_ceil(nr));
    if t == 1 || (mt < 2 && nt < 2) {
        if tid == 0 {
            return (rows, cols);
        }
        return (rows.start..rows.start, cols.start..cols.start);
    }
    let t_lo = t / 2;
    // Per-task cost (in multiply-adds) of the larger half if split over m or over n: its
    // share of the product, plus packing; each task packs the B columns it covers (all of them
    // when splitting m) and, unless A is read in place, the A rows it covers (all of them when
    // splitting n).
    let (m, n, k, th) = (rows.len(), cols.len(), ctx.k, t - t_lo);
    let a_pack = if ctx.a_direct { 0 } else { PACK_COST * k };
    let b_pack = if ctx.b_direct { 0 } else { PACK_COST * k };
    let part = |tiles: usize, tile: usize, len: usize| ((tiles - tiles * t_lo / t) * tile).min(len);
    let cost_m = if mt >= 2 {
        let pm = part(mt, mr, m);
        pm * n * k / th + b_pack * n + a_pack * pm / th
    } else {
        usize::MAX
    };
    let cost_n = if nt >= 2 {
        let pn = part(nt, nr, n);
        m * pn * k / th + b_pack * pn / th + a_pack * m
    } else {
        usize::MAX
    };
    let pref = if ctx.rows_first { cost_m / 8 } else { 0 };
    let (lo, hi) = if cost_m.saturating_sub(pref) <= cost_n {
        let mid = rows.start + ((mt * t_lo / t).max(1) * mr).min(rows.len());
        ((rows.start..mid, cols.clone()), (mid..rows.end, cols))
    } else {
        let mid = cols.start + ((nt * t_lo / t).max(1) * nr).min(cols.len());
        ((rows.clone(), cols.start..mid), (rows, mid..cols.end))
    };
    if tid < t_lo {
        rect(ctx, t_lo, tid, lo.0, lo.1)
    } else {
        rect(ctx, t - t_lo, tid - t_lo, hi.0, hi.1)
    }
}

/// Whether the microkernels can read A in place (no packing): one of its strides is 1, and
/// the other is not a multiple of 512 floats (2 KiB), which would map the rows/columns of a
/// micro-panel onto a few cache sets.
fn a_direct(a: &MatRef<'_>) -> bool {
    (a.col_stride == 1 && !a.row_stride.is_multiple_of(512))
        || (a.row_stride == 1 && !a.col_stride.is_multiple_of(512))
}

/// Whether full-width B panels are read in place instead of packed: B is row-major, A has
/// few rows (so each B panel serves only a few microkernel calls and packing it would cost a
/// sizeable share of the product), and B's rows are not 2 KiB-aligned (which would map a panel
/// onto a few cache sets; packed panels are contiguous).
fn b_direct(b: &MatRef<'_>, m: usize) -> bool {
    b.col_stride == 1 && !b.row_stride.is_multiple_of(512) && m <= B_DIRECT_MAX_M
}

/// One task: the full blocked product for the output rectangle `rows × cols`.
fn block(ctx: &Ctx<'_>, buf: &mut TaskBuf, rows: Range<usize>, cols: Range<usize>) {
    let Params {
        mr, nr, vw, mc, nc, ..
    } = ctx.prm;
    let apack = aligned(&mut buf.a);
    let bpack = aligned(&mut buf.b);
    let direct = ctx.a_direct;
    for jc in cols.clone().step_by(nc) {
        let ncur = nc.min(cols.end - jc);
        for pc in (0..ctx.k).step_by(ctx.kc) {
            let kc = ctx.kc.min(ctx.k - pc);
            if !ctx.b_direct {
                // SAFETY: the block B[pc..pc+kc, jc..jc+ncur] lies inside the k×n view, whose
                // every element `check_ref` proved inside `b.data`; `level` is supported by
                // the CPU (asserted in `matmul`); `bpack` (past its alignment offset, at most
                // ALIGN_PAD of the pad) holds round_up(min(n, NC), NR) × min(k, KC) >=
                // round_up(ncur, vw) × kc floats (`pack_lens`, `ensure`).
                unsafe { pack::pack_b(ctx.level, bpack, &ctx.b, pc, kc, jc, ncur, nr, vw) };
            } else if !ncur.is_multiple_of(vw) {
                // Only the last, partial panel needs zero padding: pack it alone.
                let jt = ncur / nr * nr;
                // SAFETY: as for the full block above: columns jc+jt..jc+ncur are a sub-block
                // of it, and round_up(ncur - jt, vw) × kc <= NR × kc floats fit in `bpack`.
                unsafe {
                    pack::pack_b(ctx.level, bpack, &ctx.b, pc, kc, jc + jt, ncur - jt, nr, vw)
                };
            }
            let overwrite = pc == 0 && !ctx.accumulate;
            for ic in rows.clone().step_by(mc) {
                let mcur = mc.min(rows.end - ic);
                if !direct {
                    // SAFETY: A[ic..ic+mcur, pc..pc+kc] lies inside the m×k view, whose every
                    // element `check_ref` proved inside `a.data`; `apack` (past its alignment
                    // offset) holds min(m, MC) × min(k, KC) >= mcur × kc floats.
                    unsafe { pack::pack_a(apack, &ctx.a, ic, mcur, pc, kc, mr) };
                }
                for jr in (0..ncur).step_by(nr) {
                    let cnt = nr.min(ncur - jr);
                    let w = cnt.div_ceil(vw) * vw;
                    let (bp, rs_b) = if !ctx.b_direct {
                        (bpack[jr * kc..].as_ptr(), w)
                    } else if cnt == w {
                        let off = pc * ctx.b.row_stride + jc + jr;
                        (ctx.b.data[off..].as_ptr(), ctx.b.row_stride)
                    } else {
                        (bpack.as_ptr(), w)
                    };
                    for ir in (0..mcur).step_by(mr) {
                        let h = mr.min(mcur - ir);
                        let kern = Params::kernel(ctx.level, h, w);
                        let (ap, rs_a, cs_a) = if direct {
                            let off = (ic + ir) * ctx.a.row_stride + pc * ctx.a.col_stride;
                            (
                                ctx.a.data[off..].as_ptr(),
                                ctx.a.row_stride,
                                ctx.a.col_stride,
                            )
                        } else {
                            (apack[ir * kc..].as_ptr(), 1, h)
                        };
                        let tile = Tile {
                            kc,
                            a: ap,
                            rs_a,
                            cs_a,
                            b: bp,
                            rs_b,
                            // SAFETY: row ic+ir < m and column jc+jr < n, so the offset is at
                            // most (m-1)·rs_c + n-1 < c.data.len() (checked in `matmul`).
                            c: unsafe { ctx.c.0.add((ic + ir) * ctx.rs_c + jc + jr) },
                            rs_c: ctx.rs_c,
                            n_valid: cnt,
                            overwrite,
                        };
                        // SAFETY: A rows ic+ir..+h, columns pc..pc+kc are inside `a` (checked
                        // by `matmul`) or in the packed panel (kc*h floats); B rows pc..pc+kc
                        // hold w readable floats (packed panel, or full-width columns of `b`
                        // when read in place); the C tile rows ic+ir..+h, columns jc+jr..+cnt are
                        // inside C and inside this task's rectangle, which no other task
                        // touches; `level` is supported by the CPU (asserted in `matmul`).
                        unsafe { kern(&tile) };
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
