//! The sparse-input path of a first Dense layer.
//!
//! On inputs that are mostly exact zeros (MNIST: ~81 % of pixels), the first layer's two big
//! products — the forward `x·W` and the weight gradient `xᵀ·g`, ~88 % of a step's arithmetic
//! on the seed model — are computed from the batch's nonzeros only. The gather lists each
//! row's nonzeros while the row is in cache ([`SparseRows`]); when at most a third of the
//! batch's values are nonzero, the layer takes this path, else the dense GEMM.
//!
//! The sums are the same sums minus terms that are exactly ±0, so the numbers differ from the
//! dense path by rounding only. Two cases where a skipped `0·v` would not be 0 are kept on the
//! dense path: a non-finite kernel (forward; `0·∞` is NaN) and a non-finite output gradient
//! (weight gradient). Every output element is computed by one thread in a fixed order, so
//! results stay bit-identical for any thread count. `KEROX_SPARSE_INPUT=0` turns it off.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::dispatch::Level;
use crate::kernels::{self, ClipElem, SgdStep};
use crate::team::{Disjoint, Team};

/// The sparse path is taken when nonzeros ≤ `NUM/DEN` of the batch's values.
const NUM: usize = 1;
const DEN: usize = 3;

/// Fewest rows one thread combines alone in the forward product.
const FWD_MIN_ROWS: usize = 4;
/// Fewest kernel rows one thread computes alone in the weight gradient.
const GRAD_MIN_ROWS: usize = 64;

/// Whether `KEROX_SPARSE_INPUT` allows the sparse path (anything but `0`; read once).
pub(super) fn enabled_by_env() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("KEROX_SPARSE_INPUT").map_or(true, |v| v.trim() != "0"))
}

/// The nonzeros of each row of the current batch, in fixed slots of `stride` entries per row.
#[derive(Default)]
pub(super) struct SparseRows {
    cols: usize,
    /// `cols` plus the room `compress` needs past a row's length.
    stride: usize,
    nnz: Vec<u32>,
    idx: Vec<u32>,
    val: Vec<f32>,
    /// The current batch was listed and is sparse enough for the sparse path.
    active: bool,
}

/// Lists rows of a batch from the parts of a team job (each part its own rows).
pub(super) struct RowsWriter<'a> {
    cols: usize,
    stride: usize,
    nnz: Disjoint<'a, u32>,
    idx: Disjoint<'a, u32>,
    val: Disjoint<'a, f32>,
}

impl RowsWriter<'_> {
    /// Lists the nonzeros of `dense` (whole rows of `cols`), the rows from `first` on.
    ///
    /// # Safety
    /// No other part may list rows in `first .. first + dense.len() / cols` concurrently.
    pub unsafe fn write(&self, level: Level, first: usize, dense: &[f32]) {
        let (cols, stride) = (self.cols, self.stride);
        let rows = dense.len() / cols;
        // SAFETY: the rows are this part's alone (caller), and their slots are disjoint.
        let (nnz, idx, val) = unsafe {
            (
                self.nnz.range(first..first + rows),
                self.idx.range(first * stride..(first + rows) * stride),
                self.val.range(first * stride..(first + rows) * stride),
            )
        };
        for (r, n) in nnz.iter_mut().enumerate() {
            let src = &dense[r * cols..(r + 1) * cols];
            let slot = r * stride..(r + 1) * stride;
            *n = kernels::compress(level, src, &mut idx[slot.clone()], &mut val[slot]) as u32;
        }
    }
}

impl SparseRows {
    /// Room for `rows` rows of `cols` values.
    pub fn reserve(&mut self, rows: usize, cols: usize) {
        self.cols = cols;
        self.stride = cols + kernels::sparse::COMPRESS_PAD;
        self.nnz.resize(rows, 0);
        self.idx.resize(rows * self.stride, 0);
        self.val.resize(rows * self.stride, 0.0);
        self.active = false;
    }

    pub fn writer(&mut self) -> RowsWriter<'_> {
        RowsWriter {
            cols: self.cols,
            stride: self.stride,
            nnz: Disjoint::new(&mut self.nnz),
            idx: Disjoint::new(&mut self.idx),
            val: Disjoint::new(&mut self.val),
        }
    }

    /// After the first `rows` rows were listed: takes the sparse path for this batch iff it is
    /// sparse enough.
    pub fn decide(&mut self, rows: usize) {
        let total: usize = self.nnz[..rows].iter().map(|&n| n as usize).sum();
        self.active = rows > 0 && total * DEN <= rows * self.cols * NUM;
    }

    pub fn active(&self) -> bool {
        self.active
    }

    /// (positions, values) of row `i`'s nonzeros.
    fn row(&self, i: usize) -> (&[u32], &[f32]) {
        let s = i * self.stride;
        let n = self.nnz[i] as usize;
        (&self.idx[s..s + n], &self.val[s..s + n])
    }

    /// How many of row `i`'s nonzeros sit before column `k`.
    fn before(&self, i: usize, k: usize) -> usize {
        self.row(i).0.partition_point(|&j| (j as usize) < k)
    }

    /// The most nonzeros a batch of `rows` rows on the sparse path can have.
    fn max_nonzeros(rows: usize, cols: usize) -> usize {
        rows * cols * NUM / DEN
    }
}

/// Column-wise lists of the current batch's nonzeros (per input feature: which rows, which
/// values), built per weight-gradient part.
#[derive(Default)]
pub(super) struct SparseCols {
    /// Per feature: end of its list (relative to its part's region).
    end: Vec<u32>,
    row: Vec<u32>,
    val: Vec<f32>,
    /// Per feature: whether any row of the last weight gradient's batch has it nonzero (else
    /// that kernel row's gradient is exactly zero).
    touched: Vec<bool>,
    /// Per kernel row: Σ of the last weight gradient's squares in that row (f32, from the
    /// registers the row was summed in), when asked for.
    row_sq: Vec<f64>,
    /// `row_sq` belongs to the last weight gradient.
    sq_valid: bool,
}

impl SparseCols {
    /// Per kernel row: whether the last weight gradient has a nonzero input behind it.
    pub fn touched(&self) -> &[bool] {
        &self.touched
    }

    /// Σ of the last weight gradient's squares, if it was asked to sum them: the kernel rows'
    /// sums added in row order (so the same for any thread count). Computed by each part of
    /// the team on the rows it has just written, this saves a pass over the whole gradient
    /// from one thread (half of it in the other core's cache) at every norm-clipped step.
    pub fn sum_squares(&self) -> Option<f64> {
        self.sq_valid.then(|| self.row_sq.iter().sum())
    }

    pub fn reserve(&mut self, rows: usize, cols: usize) {
        let cap = SparseRows::max_nonzeros(rows, cols);
        self.end.resize(cols, 0);
        self.touched.resize(cols, false);
        self.row_sq.resize(cols, 0.0);
        self.sq_valid = false;
        self.row.resize(cap, 0);
        self.val.resize(cap, 0.0);
    }
}

/// `z = x·w` for the `rows` listed rows (`w` is `cols × n`, `z` is `rows × n`).
pub(super) fn forward(
    level: Level,
    team: &Team,
    x: &SparseRows,
    w: &[f32],
    n: usize,
    z: &mut [f32],
) {
    let rows = z.len() / n;
    let zd = Disjoint::new(z);
    team.for_ranges(rows, FWD_MIN_ROWS, 1, &|r| {
        // SAFETY: each part writes only the output rows of its own range.
        let out = unsafe { zd.range(r.start * n..r.end * n) };
        for (i, o) in r.zip(out.chunks_exact_mut(n)) {
            let (idx, val) = x.row(i);
            kernels::combine_rows(level, idx, val, w, n, o);
        }
    });
}

/// A plain-SGD update of the kernel fused into its sparse-input weight gradient: each kernel
/// row's gradient is computed in registers and applied at once, never stored (the engine
/// uses it when the optimizer is plain SGD without norm clipping; see `Engine::train_step`).
pub(super) struct FusedSgd<'a> {
    pub w: &'a mut [f32],
    pub clip: ClipElem,
    pub step: SgdStep,
    /// Set when the weight gradient took the sparse path and so applied the update (else the
    /// gradient was stored and the engine updates the kernel as usual).
    pub applied: bool,
    /// Whether every weight the update wrote is finite.
    pub finite: bool,
}

/// `dw = xᵀ·g` for the `rows` listed rows (`g` is `rows × n`, `dw` is `cols × n`), split over
/// the team by kernel rows; each part lists its features' nonzeros column-wise first. With
/// `squares`, also sums the squares of each kernel row of `dw` (see
/// [`SparseCols::sum_squares`]). With `skip_untouched`, the rows of `dw` whose feature no
/// row of the batch has nonzero (gradient exactly zero) are left as they were, for an update
/// that skips them (see [`SparseCols::touched`]). With `fused`, applies the update to its
/// kernel instead of writing `dw` (which is then left as it was): rows no input touched are
/// skipped.
#[allow(clippy::too_many_arguments)]
pub(super) fn weight_grad(
    level: Level,
    team: &Team,
    x: &SparseRows,
    scratch: &mut SparseCols,
    g: &[f32],
    n: usize,
    dw: &mut [f32],
    squares: bool,
    skip_untouched: bool,
    mut fused: Option<&mut FusedSgd<'_>>,
) {
    let rows = g.len() / n;
    let cols = x.cols;
    assert_eq!(dw.len(), cols * n, "weight gradient shape");
    let update = fused.as_deref_mut().map(|f| {
        assert_eq!(f.w.len(), cols * n, "fused update: kernel shape");
        (Disjoint::new(&mut *f.w), f.clip, f.step)
    });
    let nonfinite = AtomicBool::new(false);
    let update_was_none = update.is_none();
    let ends = Disjoint::new(&mut scratch.end[..cols]);
    let ent_row = Disjoint::new(&mut scratch.row);
    let ent_val = Disjoint::new(&mut scratch.val);
    let touched = Disjoint::new(&mut scratch.touched[..cols]);
    let row_sq = Disjoint::new(&mut scratch.row_sq[..cols]);
    let dwd = Disjoint::new(dw);
    team.for_ranges(cols, GRAD_MIN_ROWS, 1, &|ks| {
        let (k0, k1) = (ks.start, ks.end);
        // This part's entries follow those of all features before k0.
        let base: usize = (0..rows).map(|i| x.before(i, k0)).sum();
        let len: usize = (0..rows).map(|i| x.before(i, k1)).sum::<usize>() - base;
        // SAFETY: parts have disjoint feature ranges, hence disjoint `end` ranges, disjoint
        // entry regions (features < k0 come first, features ≥ k1 after) and disjoint
        // kernel rows of `dw` and of the kernel.
        let (end, touched, row_sq, er, ev) = unsafe {
            (
                ends.range(k0..k1),
                touched.range(k0..k1),
                row_sq.range(k0..k1),
                ent_row.range(base..base + len),
                ent_val.range(base..base + len),
            )
        };
        // Counting sort by feature, rows in increasing order within each feature.
        end.fill(0);
        for i in 0..rows {
            let (idx, _) = x.row(i);
            for &k in &idx[x.before(i, k0)..x.before(i, k1)] {
                end[k as usize - k0] += 1;
            }
        }
        let mut acc = 0u32;
        for e in end.iter_mut() {
            let c = *e;
            *e = acc;
            acc += c;
        }
        for i in 0..rows {
            let (idx, val) = x.row(i);
            let (lo, hi) = (x.before(i, k0), x.before(i, k1));
            for (&k, &v) in idx[lo..hi].iter().zip(&val[lo..hi]) {
                let slot = &mut end[k as usize - k0];
                er[*slot as usize] = i as u32;
                ev[*slot as usize] = v;
                *slot += 1;
            }
        }
        // Each `end[kk]` is now the end of feature k0+kk's list, the start of the next one.
        let mut start = 0usize;
        if let Some((wd, clip, step)) = &update {
            for (kk, &e) in end.iter().enumerate() {
                let e = e as usize;
                touched[kk] = e > start;
                if e > start {
                    let k = k0 + kk;
                    // SAFETY: as above.
                    let w = unsafe { wd.range(k * n..(k + 1) * n) };
                    let (er, ev) = (&er[start..e], &ev[start..e]);
                    if !kernels::combine_rows_sgd(level, er, ev, g, n, w, *clip, step) {
                        nonfinite.store(true, Ordering::Relaxed);
                    }
                }
                start = e;
            }
            return;
        }
        // SAFETY: as above.
        let out = unsafe { dwd.range(k0 * n..k1 * n) };
        for (kk, o) in out.chunks_exact_mut(n).enumerate() {
            let e = end[kk] as usize;
            if e == start && skip_untouched {
                touched[kk] = false;
                row_sq[kk] = 0.0;
                continue;
            }
            let (er, ev) = (&er[start..e], &ev[start..e]);
            if squares {
                row_sq[kk] = f64::from(kernels::combine_rows_sq(level, er, ev, g, n, o));
            } else {
                kernels::combine_rows(level, er, ev, g, n, o);
            }
            touched[kk] = e > start;
            start = e;
        }
    });
    if let Some(f) = fused {
        f.applied = true;
        f.finite = !nonfinite.into_inner();
    }
    scratch.sq_valid = squares && update_was_none;
}
