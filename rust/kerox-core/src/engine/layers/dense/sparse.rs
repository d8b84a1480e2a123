//! The sparse-input path of a first Dense layer (Dense's own: the engine drives it only
//! through Dense's generic layer capabilities, see `dense/mod.rs`).
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
//!
//! The forward product splits the batch by rows over the team (a training step's small batch
//! is summed in two halves of the kernel's rows instead, [`forward`]), the weight
//! gradient and the kernel's update split the kernel by rows, as the batch's column listing
//! did (above [`HALVES_MAX_ROWS`] rows into parts of equal nonzeros as the previous batch had
//! them, [`SparseCols::plan`]); a batch too small to split by rows splits the output columns
//! instead ([`split`]).

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::dispatch::Level;
use crate::kernels;
use crate::kernels::sparse::{chunk_words, Lists, Product, SQ_BLOCK};
use crate::team::{Disjoint, Team};

use super::super::{FusedSgd, RowSink};

/// The sparse path is taken when nonzeros ≤ `NUM/DEN` of the batch's values.
const NUM: usize = 1;
const DEN: usize = 3;

/// Fewest rows one thread combines alone in the forward product (split by rows).
const FWD_MIN_ROWS: usize = 4;
/// Fewest kernel rows one thread lists (and, split by rows, computes) in the weight gradient.
const GRAD_MIN_ROWS: usize = 64;

/// Runs `f(rows, cols)` over the parts of a product with `rows` output rows of `n` columns:
/// split by rows (parts of at least `min_rows`), or by columns (parts of whole
/// [`SQ_BLOCK`]s) where the rows make fewer parts than the columns (a small batch).
///
/// Rows first: on the 2-core build machine a split by columns ran the seed model's epoch 3 %
/// (batch 32) to 11 % (batch 512) slower, though each thread then only touches its own half
/// of the kernel: narrower column blocks do fewer multiply-adds per term they read.
fn split(
    team: &Team,
    rows: usize,
    n: usize,
    min_rows: usize,
    f: &(dyn Fn(Range<usize>, Range<usize>) + Sync),
) {
    if team.parts_for(rows, min_rows, 1) < team.parts_for(n, SQ_BLOCK, SQ_BLOCK) {
        team.for_ranges(n, SQ_BLOCK, SQ_BLOCK, &|c| f(0..rows, c));
    } else {
        team.for_ranges(rows, min_rows, 1, &|r| f(r, 0..n));
    }
}

/// [`split`] for a product whose `rows` are the kernel rows of a listing made with `bounds`
/// ([`SparseCols::bounds`]): where `split` would cut those rows into as many parts, the parts
/// take the listing's features (each thread then reads the lists it has just written).
fn split_kernel(
    team: &Team,
    bounds: &[usize],
    rows: usize,
    n: usize,
    f: &(dyn Fn(Range<usize>, Range<usize>) + Sync),
) {
    let parts = bounds.len().saturating_sub(1);
    let by_rows = team.parts_for(rows, GRAD_MIN_ROWS, 1);
    if parts > 1 && parts == by_rows && by_rows >= team.parts_for(n, SQ_BLOCK, SQ_BLOCK) {
        debug_assert_eq!(bounds[parts], rows, "bounds of another listing");
        team.for_each(parts, &|p| f(bounds[p]..bounds[p + 1], 0..n));
    } else {
        split(team, rows, n, GRAD_MIN_ROWS, f);
    }
}

/// Rows `rows`, columns `cols` of the product of `lists` with `b` (rows of `n`): one part of a
/// [`split`].
fn part<'a>(
    lists: Lists<'a>,
    b: &'a [f32],
    n: usize,
    rows: Range<usize>,
    cols: Range<usize>,
) -> Product<'a> {
    Product {
        lists: lists.sub(rows),
        b,
        n,
        cols,
    }
}

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
    /// Row `r`'s slot: `r · stride`.
    start: Vec<usize>,
    nnz: Vec<u32>,
    idx: Vec<u32>,
    val: Vec<f32>,
    /// Per row, [`chunk_words`] words: which chunks of 16 values have a nonzero.
    chunks: Vec<u64>,
    /// Features at which the next column listing cuts the rows ([`SparseCols::plan`]), and
    /// per row how many of its entries lie below each (found while the row is in cache;
    /// [`list_columns`] otherwise searches each row once per cut, ~10–25 µs of a part at
    /// batch 512 on 2 threads, the rows then coming from the other core half of the time).
    cuts: Vec<usize>,
    n_cuts: usize,
    below: Vec<u32>,
    /// The current batch was listed and is sparse enough for the sparse path.
    active: bool,
    /// Its nonzeros.
    total: usize,
}

/// Lists rows of a batch from the parts of a team job (each part its own rows).
pub(super) struct RowsWriter<'a> {
    cols: usize,
    stride: usize,
    cuts: &'a [usize],
    below: Disjoint<'a, u32>,
    nnz: Disjoint<'a, u32>,
    idx: Disjoint<'a, u32>,
    val: Disjoint<'a, f32>,
    chunks: Disjoint<'a, u64>,
}

impl RowsWriter<'_> {
    /// Lists the nonzeros of `dense` (whole rows of `cols`), the rows from `first` on.
    ///
    /// # Safety
    /// No other part may list rows in `first .. first + dense.len() / cols` concurrently.
    pub unsafe fn write(&self, level: Level, first: usize, dense: &[f32]) {
        let (cols, stride, words) = (self.cols, self.stride, chunk_words(self.cols));
        let rows = dense.len() / cols;
        let nc = self.cuts.len();
        // SAFETY: the rows are this part's alone (caller), and their slots are disjoint.
        let (nnz, idx, val, chunks, below) = unsafe {
            (
                self.nnz.range(first..first + rows),
                self.idx.range(first * stride..(first + rows) * stride),
                self.val.range(first * stride..(first + rows) * stride),
                self.chunks.range(first * words..(first + rows) * words),
                self.below.range(first * nc..(first + rows) * nc),
            )
        };
        for (r, n) in nnz.iter_mut().enumerate() {
            let src = &dense[r * cols..(r + 1) * cols];
            let slot = r * stride..(r + 1) * stride;
            let marks = &mut chunks[r * words..(r + 1) * words];
            *n = kernels::compress(
                level,
                src,
                &mut idx[slot.clone()],
                &mut val[slot.clone()],
                marks,
            ) as u32;
            let listed = &idx[slot.start..slot.start + *n as usize];
            for (b, &k) in below[r * nc..(r + 1) * nc].iter_mut().zip(self.cuts) {
                *b = listed.partition_point(|&j| (j as usize) < k) as u32;
            }
        }
    }
}

impl RowSink for RowsWriter<'_> {
    unsafe fn rows(&self, level: Level, first: usize, rows: &[f32]) {
        // SAFETY: the caller's promise is `write`'s.
        unsafe { self.write(level, first, rows) }
    }
}

impl SparseRows {
    /// Room for `rows` rows of `cols` values.
    pub fn reserve(&mut self, rows: usize, cols: usize) {
        self.cols = cols;
        self.stride = cols + kernels::sparse::COMPRESS_PAD;
        self.start.clear();
        self.start.extend((0..rows).map(|r| r * self.stride));
        self.nnz.resize(rows, 0);
        self.idx.resize(rows * self.stride, 0);
        self.val.resize(rows * self.stride, 0.0);
        self.chunks.resize(rows * chunk_words(cols), 0);
        let most_cuts = cols.div_ceil(GRAD_MIN_ROWS);
        self.cuts.resize(most_cuts, 0);
        self.n_cuts = 0;
        self.below.resize(rows * most_cuts, 0);
        self.active = false;
        self.total = 0;
    }

    pub fn writer(&mut self) -> RowsWriter<'_> {
        let nc = self.n_cuts;
        RowsWriter {
            cols: self.cols,
            stride: self.stride,
            cuts: &self.cuts[..nc],
            below: Disjoint::new(&mut self.below),
            nnz: Disjoint::new(&mut self.nnz),
            idx: Disjoint::new(&mut self.idx),
            val: Disjoint::new(&mut self.val),
            chunks: Disjoint::new(&mut self.chunks),
        }
    }

    /// Which chunks of 16 values of the first `rows` rows have a nonzero
    /// ([`kernels::compress`]'s marks, [`chunk_words`] words per row).
    pub fn chunks(&self, rows: usize) -> &[u64] {
        &self.chunks[..rows * chunk_words(self.cols)]
    }

    /// After the first `rows` rows were listed: takes the sparse path for this batch iff it is
    /// sparse enough.
    pub fn decide(&mut self, rows: usize) {
        let total: usize = self.nnz[..rows].iter().map(|&n| n as usize).sum();
        self.active = rows > 0 && total * DEN <= rows * self.cols * NUM;
        self.total = if self.active { total } else { 0 };
    }

    pub fn active(&self) -> bool {
        self.active
    }

    /// The nonzeros of the batch last listed, if it takes the sparse path (else 0).
    pub fn nonzeros(&self) -> usize {
        self.total
    }

    /// The lists of the first `rows` rows.
    fn lists(&self, rows: usize) -> Lists<'_> {
        Lists {
            start: &self.start[..rows],
            len: &self.nnz[..rows],
            idx: &self.idx,
            val: &self.val,
        }
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

    /// [`SparseRows::before`] for `k`, the `j`-th cut of the listing: counted when the row was
    /// written if `k` was that cut then.
    fn before_cut(&self, i: usize, j: usize, k: usize) -> usize {
        if j < self.n_cuts && self.cuts[j] == k {
            self.below[i * self.n_cuts + j] as usize
        } else {
            self.before(i, k)
        }
    }

    /// The cuts ([`SparseCols::listing_cuts`] of a plan) to count in each row written next.
    pub fn set_cuts(&mut self, cuts: impl Iterator<Item = usize>) {
        let mut n = 0;
        for (c, k) in self.cuts.iter_mut().zip(cuts) {
            *c = k;
            n += 1;
        }
        self.n_cuts = n;
    }

    /// The most nonzeros a batch of `rows` rows on the sparse path can have.
    fn max_nonzeros(rows: usize, cols: usize) -> usize {
        rows * cols * NUM / DEN
    }
}

/// Column-wise lists of the current batch's nonzeros (per input feature: which rows, which
/// values), for the weight gradient.
#[derive(Default)]
pub(super) struct SparseCols {
    /// Per feature: where its list starts in `row`/`val`, and its length.
    start: Vec<usize>,
    len: Vec<u32>,
    row: Vec<u32>,
    val: Vec<f32>,
    /// Per feature: whether any row of the last weight gradient's batch has it nonzero (else
    /// that kernel row's gradient is exactly zero).
    touched: Vec<bool>,
    /// Kernel rows × column blocks: Σ of the last weight gradient's squares in each
    /// [`SQ_BLOCK`] of each kernel row (f32, from the rows just written), when asked for.
    block_sq: Vec<f32>,
    /// What is known of the last weight gradient's Σ g².
    squares: Squares,
    /// [`GramOf`]: per row of the batch, its pair products' share of Σ g², and
    /// `‖x_i‖·‖g_i‖` ([`kernels::gram_rows`]).
    gram: Vec<[f64; 2]>,
    /// Rows of the batch whose columns were last listed.
    listed: usize,
    /// [`forward`] with halves: per row, how many of its entries are features below the split,
    /// where its entries above it start and how many there are; the sums over the kernel's
    /// upper rows.
    lo_len: Vec<u32>,
    hi_start: Vec<usize>,
    hi_len: Vec<u32>,
    pub z_hi: Vec<f32>,
    /// [`list_columns`]: per part, per row, where the part's features start and end in the
    /// row's entries.
    cuts: Vec<u32>,
    /// The features (kernel rows) each part of the last listing took, `parts + 1` bounds
    /// (see [`SparseCols::set_bounds`]); the weight gradient and the update split the same way.
    bounds: Vec<usize>,
    parts: usize,
    /// `bounds` were set by [`SparseCols::plan`] for the batch to be listed next.
    planned: bool,
}

impl SparseCols {
    /// Per kernel row: whether the last weight gradient has a nonzero input behind it.
    pub fn touched(&self) -> &[bool] {
        &self.touched
    }

    /// The bounds of the features each part of the last listing took (`parts + 1` values).
    pub fn bounds(&self) -> &[usize] {
        &self.bounds[..self.parts + 1]
    }

    /// The features where the planned listing's parts meet (its inner bounds).
    pub fn listing_cuts(&self) -> impl Iterator<Item = usize> + '_ {
        (1..self.parts).map(|p| self.bounds[p])
    }

    /// Before a training batch of `rows` rows of `cols` features is loaded: the bounds its
    /// column listing will take (for a listing without pair products), so that loading it
    /// can count each row's entries below them ([`SparseRows::set_cuts`]).
    pub fn plan(&mut self, team: &Team, rows: usize, cols: usize) -> &SparseCols {
        let parts = team.parts_for(cols, GRAD_MIN_ROWS, 1);
        let balanced = self.listed > 0 && rows > HALVES_MAX_ROWS;
        self.set_bounds(cols, parts, balanced);
        self.planned = true;
        self
    }

    /// Cuts `cols` features into `parts` for a listing: equal counts, or with `balanced`, equal
    /// shares of the previous listing's entries (plus one per feature it had), so that each
    /// part lists, multiplies and updates about as much. (MNIST's upper half of the pixels
    /// holds 47 % of the nonzeros: with equal counts one of two cores did 5 % more of the
    /// weight gradient, the step's largest job.) The cuts change no result: each feature's
    /// list and kernel row are computed whole by one part, the same way in every part.
    fn set_bounds(&mut self, cols: usize, parts: usize, balanced: bool) {
        let b = &mut self.bounds[..parts + 1];
        let len = &self.len[..cols];
        let cost = |k: usize| len[k] as usize + usize::from(len[k] > 0);
        if balanced {
            let total: usize = (0..cols).map(cost).sum();
            let (mut k, mut acc) = (0, 0);
            for (p, cut) in b.iter_mut().enumerate().take(parts).skip(1) {
                let target = total * p / parts;
                while k < cols && acc + cost(k) <= target {
                    acc += cost(k);
                    k += 1;
                }
                *cut = k;
            }
        } else {
            for (p, cut) in b.iter_mut().enumerate().take(parts).skip(1) {
                *cut = Team::range(cols, parts, 1, p).start;
            }
        }
        (b[0], b[parts]) = (0, cols);
        self.parts = parts;
    }

    /// Feature `k`'s listed (row, value) pairs.
    #[cfg(test)]
    pub fn column(&self, k: usize) -> Vec<(u32, f32)> {
        let r = self.start[k]..self.start[k] + self.len[k] as usize;
        self.row[r.clone()]
            .iter()
            .copied()
            .zip(self.val[r].iter().copied())
            .collect()
    }

    /// Σ of the last weight gradient's squares, if it was asked to sum them: the blocks' sums
    /// (the blocks are the same for any thread count) added in a fixed order by
    /// [`kernels::sum_f64`] (a serial sum of the seed model's 3,136 blocks took ~4 µs, a chain
    /// of dependent adds). Computed by each part of the team on the rows it has just written,
    /// this saves a pass over the whole gradient at every norm-clipped step.
    /// Under norm clipping at small batches, the sum came from the batch's pair products
    /// instead ([`GramOf`]), and the gradient itself was never stored.
    pub fn sum_squares(&self, level: Level) -> Option<f64> {
        match self.squares {
            Squares::Unknown => None,
            Squares::Blocks => Some(kernels::sum_f64(level, &self.block_sq)),
            Squares::Total(sq) => Some(sq),
        }
    }

    /// Room for the lists of `rows` rows of `cols` features, and the squares of a `cols × n`
    /// kernel's gradient.
    pub fn reserve(&mut self, rows: usize, cols: usize, n: usize) {
        let cap = SparseRows::max_nonzeros(rows, cols);
        self.start.resize(cols, 0);
        self.len.resize(cols, 0);
        self.touched.resize(cols, false);
        self.block_sq.resize(cols * n.div_ceil(SQ_BLOCK), 0.0);
        let halves = rows.min(HALVES_MAX_ROWS);
        self.lo_len.resize(halves, 0);
        self.hi_start.resize(halves, 0);
        self.hi_len.resize(halves, 0);
        self.z_hi.resize(halves * n, 0.0);
        self.cuts.resize(cols.div_ceil(GRAD_MIN_ROWS) * 2 * rows, 0);
        self.bounds.resize(cols.div_ceil(GRAD_MIN_ROWS) + 1, 0);
        self.parts = 0;
        self.planned = false;
        let gram = rows.min(kernels::GRAM_MAX_ROWS);
        self.gram.resize(gram, [0.0; 2]);
        self.squares = Squares::Unknown;
        self.row.resize(cap, 0);
        self.val.resize(cap, 0.0);
    }
}

/// What [`SparseCols::sum_squares`] knows of the last weight gradient's Σ g².
#[derive(Clone, Copy, Default)]
enum Squares {
    #[default]
    Unknown,
    /// Summed by blocks in `block_sq` as the gradient was written.
    Blocks,
    /// Measured before a fused update ([`GramOf`]).
    Total(f64),
}

/// Largest batch whose training forward sums two halves of the kernel's rows ([`forward`]
/// with `halves`; a function of the batch alone, so results do not depend on the thread
/// count). Seed model, 2 threads, epochs alternated in one process: batch 32 5.4 % faster
/// than the row split, 64 the same, 128 and 512 0.3–3 % slower (each core then writes a
/// whole batch of half sums that the other core's rows of the bias + activation pass read).
pub(super) const HALVES_MAX_ROWS: usize = 48;

/// `x·w` for the `rows` listed rows (`w` is `cols × n`, `z` is `rows × n`).
///
/// Without `halves` (inference, and training batches above [`HALVES_MAX_ROWS`]): `z = x·w`,
/// the batch's rows split over the team.
///
/// With `halves` (a training step on a small batch), in two parts: the sums over the
/// kernel's rows below a fixed split (`cols / 2`) into `z`, those over the rows above it into
/// its `z_hi` (`rows × n`); the caller adds them ([`kernels::add_into`]), the same for any
/// thread count. Two threads each compute one half for the whole batch, so each only ever
/// reads the half of the kernel that its part of the weight gradient and of the update writes
/// (the halves' boundary is [`split`]'s for the kernel's rows), and no line of the kernel
/// moves between the cores' caches: at batch 32 the kernel is 25 times the batch's output.
/// (Inference keeps the row split: with no update to own, the halves only add a buffer to
/// write and read; `predict` measured 13 % slower with them.)
pub(super) fn forward(
    level: Level,
    team: &Team,
    x: &SparseRows,
    w: &[f32],
    n: usize,
    z: &mut [f32],
    halves: Option<&mut SparseCols>,
) {
    let rows = z.len() / n.max(1);
    let Some(scratch) = halves else {
        let lists = x.lists(rows);
        let zd = Disjoint::new(z);
        split(team, rows, n, FWD_MIN_ROWS, &|r, c| {
            // SAFETY: the parts' (rows, columns) rectangles of `z` do not overlap.
            let mut out = unsafe { zd.rect(r.clone(), n, c.clone()) };
            kernels::combine_many(level, part(lists, w, n, r, c), &mut out);
        });
        return;
    };
    assert!(
        rows <= HALVES_MAX_ROWS,
        "sparse forward halves: {rows} rows"
    );
    let mid = x.cols / 2;
    let s = &mut *scratch;
    for i in 0..rows {
        let m = x.before(i, mid);
        s.lo_len[i] = m as u32;
        s.hi_start[i] = x.start[i] + m;
        s.hi_len[i] = x.nnz[i] - m as u32;
    }
    let lists = x.lists(rows);
    let halves = [
        Lists {
            len: &s.lo_len[..rows],
            ..lists
        },
        Lists {
            start: &s.hi_start[..rows],
            len: &s.hi_len[..rows],
            ..lists
        },
    ];
    let groups = (team.size() / 2).clamp(1, (rows / FWD_MIN_ROWS).max(1));
    let zd = Disjoint::new(z);
    let hd = Disjoint::new(&mut s.z_hi[..rows * n]);
    // Part 0 (the caller's) takes the lower half, as part 0 of the weight gradient does.
    team.for_each(2 * groups, &|i| {
        let (h, r) = (i % 2, Team::range(rows, groups, 1, i / 2));
        let out = if h == 0 { &zd } else { &hd };
        // SAFETY: the parts' (half, rows) pairs differ, so their row ranges of `z` (lower
        // half) and `z_hi` (upper half) do not overlap.
        let mut out = unsafe { out.rect(r.clone(), n, 0..n) };
        kernels::combine_many(level, part(halves[h], w, n, r, 0..n), &mut out);
    });
}

/// `dw = xᵀ·g` for the `rows` listed rows (`g` is `rows × n`, `dw` is `cols × n`), from the
/// batch's column lists ([`list_columns`], first), kernel rows split as [`split`] does. With
/// `squares`, also sums the squares of `dw` by blocks (see [`SparseCols::sum_squares`]).
/// With `skip_untouched`, the rows of
/// `dw` whose feature no row of the batch has nonzero (gradient exactly zero) are left as they
/// were, for an update that skips them (see [`SparseCols::touched`]). With `fused`, applies
/// the update to its kernel instead of writing `dw` (which is then left as it was): rows no
/// input touched are skipped.
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
    fused: Option<&mut FusedSgd<'_>>,
) {
    let rows = g.len() / n.max(1);
    let cols = x.cols;
    assert_eq!(dw.len(), cols * n, "weight gradient shape");
    debug_assert_eq!(
        scratch.listed, rows,
        "weight_grad: the batch's columns are not listed"
    );
    let lists = Lists {
        start: &scratch.start[..cols],
        len: &scratch.len[..cols],
        idx: &scratch.row,
        val: &scratch.val,
    };
    if let Some(f) = fused {
        assert_eq!(f.w.len(), cols * n, "fused update: kernel shape");
        let nonfinite = AtomicBool::new(false);
        let (clip, step) = (f.clip, f.step);
        let wd = Disjoint::new(&mut *f.w);
        split_kernel(team, scratch.bounds(), cols, n, &|ks, c| {
            // SAFETY: the parts' (kernel rows, columns) rectangles do not overlap.
            let mut w = unsafe { wd.rect(ks.clone(), n, c.clone()) };
            let p = part(lists, g, n, ks, c);
            if !kernels::combine_many_sgd(level, p, &mut w, clip, &step) {
                nonfinite.store(true, Ordering::Relaxed);
            }
        });
        f.applied = true;
        f.finite = !nonfinite.into_inner();
        scratch.squares = f.norm_sq.map_or(Squares::Unknown, Squares::Total);
        return;
    }
    let nb = n.div_ceil(SQ_BLOCK);
    let dwd = Disjoint::new(dw);
    let bounds = &scratch.bounds[..scratch.parts + 1];
    let sqd = Disjoint::new(&mut scratch.block_sq[..cols * nb]);
    split_kernel(team, bounds, cols, n, &|ks, c| {
        let blocks = c.start / SQ_BLOCK..c.end.div_ceil(SQ_BLOCK);
        // SAFETY: the parts' (kernel rows, columns) rectangles of `dw` do not overlap, nor do
        // their (kernel rows, column blocks) rectangles of the squares (parts' columns are
        // whole blocks when split by columns).
        let (mut out, mut sq) = unsafe {
            (
                dwd.rect(ks.clone(), n, c.clone()),
                squares.then(|| sqd.rect(ks.clone(), nb, blocks)),
            )
        };
        let p = part(lists, g, n, ks, c);
        kernels::combine_many_grad(level, p, &mut out, skip_untouched, sq.as_mut());
    });
    scratch.squares = if squares {
        Squares::Blocks
    } else {
        Squares::Unknown
    };
}

/// Whether a norm-clipped step on `rows` rows of `d` features with `nonzeros` nonzeros,
/// into `n` units, measures the kernel's gradient norm from the batch's pair products
/// ([`GramOf`]: `rows·(rows+1)/2·(d + n)` multiply-adds) rather than storing the gradient's
/// touched rows and reading them back (at most `min(d, nonzeros)·n` values, each costing
/// several multiply-adds: [`GRAM_COST`]).
pub(super) fn gram_pays(rows: usize, d: usize, n: usize, nonzeros: usize) -> bool {
    rows <= kernels::GRAM_MAX_ROWS
        && rows * (rows + 1) / 2 * (d + n) <= GRAM_COST * d.min(nonzeros) * n
}

/// See [`gram_pays`]: how many of the pair products' multiply-adds one stored-and-reread
/// gradient value is worth, kept below the measured ratio for a margin.
const GRAM_COST: usize = 4;

/// Rows per tile of [`list_columns`]'s pair products (a multiple of every level's tile).
const GRAM_TILE: usize = 4;

/// How much larger than the norm² the bound `(Σ_i ‖x_i‖·‖g_i‖)²` on its terms may be for
/// [`gram_sum`] to answer. Each f32 dot is off by ~`1e-7·‖x_i‖·‖x_j‖` (resp. of `g`),
/// so the sum by ~`1e-7·κ` of itself where `κ` is that ratio: at most ~`1e-5` here (an
/// upper bound rarely approached: the errors are as often positive as negative). On the
/// seed model's MNIST batches of 32, `κ` ranged 11–33 over two epochs.
const GRAM_KAPPA: f64 = 100.0;

/// The operands of a weight gradient `xᵀ·g` whose Σ g² [`list_columns`] is to measure
/// without computing it: `x`, the batch's rows of `d` (dense), and `g`, its output
/// gradient (rows of `n`).
#[derive(Clone, Copy)]
pub(super) struct GramOf<'a> {
    /// Runs too, in the job's first listing part (which has time to spare on 2 cores).
    pub also: &'a (dyn Fn() + Sync),
    pub x: &'a [f32],
    /// Which chunks of `x`'s rows have a nonzero ([`SparseRows::chunks`]).
    pub x_chunks: &'a [u64],
    pub d: usize,
    pub g: &'a [f32],
    pub n: usize,
}

/// The Σ g² of [`GramOf`] from the pair products that [`list_columns`] left in `scratch`:
/// `Σ_ij (x_i·x_j)(g_i·g_j)` over the rows (each row's share summed in order: the same for
/// any thread count). `None` where that is not to be trusted: non-finite, or a cancellation
/// large enough for f32 rounding to matter (see [`GRAM_KAPPA`]).
fn gram_sum(scratch: &SparseCols, rows: usize) -> Option<f64> {
    let t: f64 = scratch.gram[..rows].iter().map(|p| p[0]).sum();
    let s: f64 = scratch.gram[..rows].iter().map(|p| p[1]).sum();
    let trusted = s == 0.0 || (t.is_finite() && s * s <= GRAM_KAPPA * t);
    trusted.then_some(t.max(0.0))
}

/// Lists the first `rows` rows' nonzeros column-wise into `scratch`: per feature, the rows
/// that have it nonzero (increasing) and their values; also which features any row has.
/// Split over the team by features: a part's entries follow those of all earlier features.
/// Each part finds where its features start and end in each row once (a binary search,
/// none at the first and last feature) and keeps them for both passes: at batch 32 the six
/// searches per row and part it made before cost as much as the counting sort itself.
///
/// With `gram`, the same job also measures the Σ g² of that weight gradient from the batch's
/// pair products ([`kernels::gram_rows`]: `rows²·(d + n)/2` multiply-adds, fewer than the
/// product's for small batches), returned if it can be trusted (see [`gram_sum`]): parts of
/// their own claim the rows by tiles of [`GRAM_TILE`], and the listing parts join them when
/// done. (One job for both: a second one cost about a microsecond more on 2 cores.) Also
/// runs [`GramOf::also`] in the first listing part.
pub(super) fn list_columns(
    level: Level,
    team: &Team,
    x: &SparseRows,
    scratch: &mut SparseCols,
    rows: usize,
    gram: Option<GramOf<'_>>,
) -> Option<f64> {
    let cols = x.cols;
    let gram = gram.filter(|_| rows <= scratch.gram.len());
    let tiles = rows.div_ceil(GRAM_TILE);
    let (size, most) = (team.size(), team.parts_for(cols, GRAD_MIN_ROWS, 1));
    // The pair products get parts of their own: on 2 cores one core lists, the other
    // multiplies (dealing both to both, each core read half of its rows from the other's
    // cache: seed model, batch 32, clipnorm epochs +10 % over plain SGD, against +4 %).
    let (parts, gram_parts) = match gram {
        None => (most, 0),
        Some(_) if size == 1 => (most, 1),
        Some(_) => {
            let parts = (size / 2).clamp(1, most);
            (parts, (size - parts).clamp(1, (tiles / 2).max(1)))
        }
    };
    // Balanced by the last batch's lists (the batch's own are what this job makes) where the
    // forward does not rely on the halves (see `forward`).
    let balanced = scratch.listed > 0 && rows > HALVES_MAX_ROWS;
    if !(scratch.planned && scratch.parts == parts) {
        scratch.set_bounds(cols, parts, balanced);
    }
    scratch.planned = false;
    scratch.listed = rows;
    let bounds = &scratch.bounds[..parts + 1];
    let held = rows.min(scratch.gram.len());
    let gd = Disjoint::new(&mut scratch.gram[..held]);
    // Tiles claimed one at a time, the costliest first (a row pairs with every row before
    // it): the pair products' parts start on them, and the listing parts join when done.
    let next = AtomicUsize::new(0);
    let pairs = |gr: &GramOf<'_>| loop {
        let k = next.fetch_add(1, Ordering::Relaxed);
        if k >= tiles {
            break;
        }
        let t = tiles - 1 - k;
        let r = t * GRAM_TILE..((t + 1) * GRAM_TILE).min(rows);
        // SAFETY: every tile is claimed once, so the parts' ranges never overlap.
        let out = unsafe { gd.range(r.clone()) };
        kernels::gram_rows(level, gr.x, gr.d, gr.x_chunks, gr.g, gr.n, r, out);
    };
    let starts = Disjoint::new(&mut scratch.start[..cols]);
    let lens = Disjoint::new(&mut scratch.len[..cols]);
    let touched = Disjoint::new(&mut scratch.touched[..cols]);
    let ent_row = Disjoint::new(&mut scratch.row);
    let ent_val = Disjoint::new(&mut scratch.val);
    let cuts = Disjoint::new(&mut scratch.cuts[..parts * 2 * rows]);
    // Row `i`'s entries before bound `p` (feature `k`).
    let at = |i: usize, p: usize, k: usize| match k {
        0 => 0,
        k if k == cols => x.nnz[i] as usize,
        k => x.before_cut(i, p.wrapping_sub(1), k),
    };
    let list = |p: usize| {
        let (k0, k1) = (bounds[p], bounds[p + 1]);
        // SAFETY: part `p` alone uses its `2 · rows` cuts.
        let cut = unsafe { cuts.range(p * 2 * rows..(p + 1) * 2 * rows) };
        for i in 0..rows {
            cut[2 * i] = at(i, p, k0) as u32;
            cut[2 * i + 1] = at(i, p + 1, k1) as u32;
        }
        let span = |i: usize| cut[2 * i] as usize..cut[2 * i + 1] as usize;
        let base: usize = (0..rows).map(|i| cut[2 * i] as usize).sum();
        let len: usize = (0..rows).map(|i| span(i).len()).sum();
        // SAFETY: parts have disjoint feature ranges, hence disjoint ranges of the per-feature
        // arrays and disjoint entry regions (features < k0 come first, features ≥ k1 after).
        let (start, count, touched, er, ev) = unsafe {
            (
                starts.range(k0..k1),
                lens.range(k0..k1),
                touched.range(k0..k1),
                ent_row.range(base..base + len),
                ent_val.range(base..base + len),
            )
        };
        // Counting sort by feature, rows in increasing order within each feature.
        count.fill(0);
        for i in 0..rows {
            let (idx, _) = x.row(i);
            for &k in &idx[span(i)] {
                count[k as usize - k0] += 1;
            }
        }
        let mut at = base;
        for ((s, c), t) in start
            .iter_mut()
            .zip(count.iter_mut())
            .zip(touched.iter_mut())
        {
            *s = at;
            at += *c as usize;
            *t = *c > 0;
            *c = 0;
        }
        // `count` is each feature's fill level while the entries are placed, its length after.
        for i in 0..rows {
            let (idx, val) = x.row(i);
            let r = span(i);
            for (&k, &v) in idx[r.clone()].iter().zip(&val[r]) {
                let kk = k as usize - k0;
                let slot = start[kk] + count[kk] as usize - base;
                er[slot] = i as u32;
                ev[slot] = v;
                count[kk] += 1;
            }
        }
    };
    team.for_each(parts + gram_parts, &|p| {
        if p < parts {
            list(p);
        }
        if let Some(gr) = &gram {
            if p == 0 {
                (gr.also)();
            }
            pairs(gr);
        }
    });
    gram.and_then(|_| gram_sum(scratch, rows))
}

/// The update of the sparse-input kernel (`features × n`, `len` values) on the rows `lists`
/// (the weight gradient's) touched only, for a rule to which a zero gradient is a no-op:
/// `update(r)` updates the flat range `r` of the kernel and returns whether the weights it
/// wrote are finite. Split as the weight gradient was (so each thread updates what it has
/// just computed); returns whether every updated weight is finite.
pub(super) fn update_touched(
    team: &Team,
    len: usize,
    lists: &SparseCols,
    update: &(dyn Fn(Range<usize>) -> bool + Sync),
) -> bool {
    let touched = lists.touched();
    let k = touched.len();
    assert!(k > 0 && len.is_multiple_of(k), "kernel shape");
    let n = len / k;
    let nonfinite = AtomicBool::new(false);
    split_kernel(team, lists.bounds(), k, n, &|ks, c| {
        // Last rows first: the weight gradient has just written them in increasing order.
        for r in ks.rev().filter(|&r| touched[r]) {
            if !update(r * n + c.start..r * n + c.end) {
                nonfinite.store(true, Ordering::Relaxed);
            }
        }
    });
    !nonfinite.into_inner()
}

/// The listing's own checks (the path's results against the dense path are in the engine's
/// tests).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::tests::{mostly_zeros, pool_of, Rng};

    /// The nonzeros of `rows` rows of `cols` features of `x`, listed as the gather lists them
    /// (sparse enough for the sparse path).
    fn listed(x: &[f32], rows: usize, cols: usize) -> SparseRows {
        let mut sx = SparseRows::default();
        sx.reserve(rows, cols);
        // SAFETY: one writer lists every row.
        unsafe { sx.writer().write(crate::dispatch::Level::detected(), 0, x) };
        sx.decide(rows);
        assert!(sx.active());
        sx
    }

    /// The columns of the rows `sx` lists (`x`, dense), with the Σ g² of `xᵀ·g` (`g`: rows of
    /// `n`) measured in the same job.
    fn list_with_norm(
        team: &crate::team::Team,
        sx: &SparseRows,
        x: &[f32],
        g: &[f32],
        n: usize,
    ) -> (SparseCols, Option<f64>) {
        let (rows, cols) = (g.len() / n, x.len() / (g.len() / n));
        let mut sc = SparseCols::default();
        sc.reserve(rows, cols, n);
        let gram = GramOf {
            also: &|| {},
            x,
            x_chunks: sx.chunks(rows),
            d: cols,
            g,
            n,
        };
        let level = crate::dispatch::Level::detected();
        let sq = list_columns(level, team, sx, &mut sc, rows, Some(gram));
        (sc, sq)
    }

    /// Feature `k`'s (row, value) pairs in `x` (rows of `cols`), scanned naively.
    fn naive_column(x: &[f32], cols: usize, k: usize) -> Vec<(u32, f32)> {
        (0..x.len() / cols)
            .filter(|&i| x[i * cols + k] != 0.0)
            .map(|i| (i as u32, x[i * cols + k]))
            .collect()
    }

    #[test]
    fn column_lists_are_the_naive_column_scan_for_any_split() {
        // 300 features: with 3 and 4 threads the middle parts start and end inside rows.
        let (rows, cols, n) = (37, 300, 16);
        let mut rng = Rng(47);
        let x = mostly_zeros(&mut rng, rows, cols, 0.25);
        let g: Vec<f32> = (0..rows * n).map(|_| rng.next()).collect();
        // Σ of the squares of xᵀ·g, in f64 from the product.
        let mut want_sq = 0.0f64;
        for k in 0..cols {
            for c in 0..n {
                let v: f64 = (0..rows)
                    .map(|i| x[i * cols + k] as f64 * g[i * n + c] as f64)
                    .sum();
                want_sq += v * v;
            }
        }
        let sx = listed(&x, rows, cols);
        let mut first_sq = None;
        for threads in [1, 2, 3, 4] {
            let pool = pool_of(threads);
            let (sc, sq) = pool.install(|| {
                crate::team::scoped(threads, |team| list_with_norm(team, &sx, &x, &g, n))
            });
            for k in 0..cols {
                let want = naive_column(&x, cols, k);
                assert_eq!(sc.column(k), want, "{threads} threads, feature {k}");
                assert_eq!(sc.touched()[k], !want.is_empty());
            }
            // The same job measured the gradient's Σ g², the same bits for any thread count.
            let sq = sq.expect("no cancellation in random data");
            assert!(
                (sq - want_sq).abs() <= 1e-5 * want_sq,
                "{threads} threads: {sq} vs {want_sq}"
            );
            assert_eq!(
                sq.to_bits(),
                first_sq.get_or_insert(sq).to_bits(),
                "{threads}"
            );
        }
    }

    #[test]
    fn large_batches_list_columns_in_balanced_parts_with_cuts_counted_while_loading() {
        // Nonzeros 5 times denser in the last 100 of 300 features: equal feature counts would give
        // the last part most entries. Above `HALVES_MAX_ROWS` each listing cuts where the previous
        // one's entries split evenly, and the gather counts every row's entries below those cuts
        // (planned before it loads); the lists must still be the naive column scan.
        let (rows, cols) = (100, 300);
        let mut rng = Rng(59);
        let mut x = mostly_zeros(&mut rng, rows, cols, 0.06);
        let dense_tail = mostly_zeros(&mut rng, rows, cols, 0.3);
        for i in 0..rows {
            let r = i * cols + 200..(i + 1) * cols;
            x[r.clone()].copy_from_slice(&dense_tail[r]);
        }
        let level = crate::dispatch::Level::detected();
        for threads in [1, 2, 3, 4] {
            let pool = pool_of(threads);
            pool.install(|| {
                crate::team::scoped(threads, |team| {
                    let mut sc = SparseCols::default();
                    sc.reserve(rows, cols, 16);
                    let mut sx = SparseRows::default();
                    sx.reserve(rows, cols);
                    for round in 0..3 {
                        // Round 0 lists with equal feature counts, round 1 with balanced parts
                        // searched in the rows, round 2 balanced with the cuts counted on loading.
                        if round == 2 {
                            sx.set_cuts(sc.plan(team, rows, cols).listing_cuts());
                        }
                        // SAFETY: one writer lists every row.
                        unsafe { sx.writer().write(level, 0, &x) };
                        sx.decide(rows);
                        assert!(sx.active());
                        list_columns(level, team, &sx, &mut sc, rows, None);
                        for k in 0..cols {
                            let want = naive_column(&x, cols, k);
                            assert_eq!(sc.column(k), want, "{threads} threads, round {round}, {k}");
                        }
                        let b = sc.bounds().to_vec();
                        let parts = b.len() - 1;
                        assert_eq!(parts, team.parts_for(cols, 64, 1));
                        // A part's work: its entries, plus one per feature it has (a kernel row).
                        let cost = |k: usize| sc.column(k).len() + usize::from(sc.touched()[k]);
                        let work = |p: usize| -> usize { (b[p]..b[p + 1]).map(cost).sum() };
                        let total: usize = (0..parts).map(work).sum();
                        let widest = (0..cols).map(cost).max().unwrap();
                        for p in 0..parts {
                            let share = work(p);
                            if round == 0 {
                                assert_eq!(
                                    b[p + 1],
                                    crate::team::Team::range(cols, parts, 1, p).end
                                );
                            } else {
                                assert!(
                                    share.abs_diff(total / parts) <= widest + parts,
                                    "{threads} threads, round {round}: part {p}: {share} of {total}"
                                );
                            }
                        }
                    }
                })
            });
        }
    }

    #[test]
    fn pair_products_are_not_trusted_where_the_rows_cancel() {
        // Rows 0 and 1 the same input with opposite output gradients: their terms of xᵀ·g cancel
        // exactly, so its norm² is a tiny remainder of large pair products (the stored gradient
        // is used instead); with row 1's gradient not negated the same batch is trusted.
        let (rows, cols, n) = (6, 40, 8);
        let mut rng = Rng(53);
        let mut x = mostly_zeros(&mut rng, rows, cols, 0.3);
        let row0 = x[..cols].to_vec();
        x[cols..2 * cols].copy_from_slice(&row0);
        let mut g = vec![0f32; rows * n];
        for v in g[..n].iter_mut() {
            *v = rng.next() + 2.0;
        }
        let sx = listed(&x, rows, cols);
        let sq = |g: &[f32]| crate::team::scoped(1, |team| list_with_norm(team, &sx, &x, g, n).1);
        let same = {
            let mut g = g.clone();
            g.copy_within(..n, n);
            g
        };
        let opposite = {
            let mut g = g.clone();
            for c in 0..n {
                g[n + c] = -g[c];
            }
            g
        };
        assert!(sq(&same).is_some_and(|s| s > 1.0));
        assert_eq!(sq(&opposite), None);
    }

    #[test]
    fn small_batches_split_by_columns() {
        // Too few rows (and kernel rows) to split by rows: with 2 threads the products and the
        // update split the 200 columns instead.
        let pool = crate::pool::pool().unwrap();
        pool.install(|| {
            crate::team::scoped(2, |team| {
                for (rows, n, by_cols) in [(5, 200, true), (100, 200, true), (128, 200, false)] {
                    let seen = std::sync::Mutex::new(Vec::new());
                    split(team, rows, n, 64, &|r, c| seen.lock().unwrap().push((r, c)));
                    let seen = seen.into_inner().unwrap();
                    let cols_split = seen.iter().all(|(r, c)| *r == (0..rows) && c.len() < n);
                    assert_eq!(cols_split, by_cols, "{rows} x {n}: {seen:?}");
                }
            })
        });
    }
}
