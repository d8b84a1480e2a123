//! Products whose left operand is mostly zeros: the input batch of a first Dense layer on data
//! like MNIST (about four pixels in five are exactly 0).
//!
//! A row's nonzeros are listed once ([`compress`]), and then every output row is a sum of
//! scaled rows of the right operand, one per nonzero ([`combine_rows`]): zeros cost nothing.
//! The forward product (`x·W`: one input row's nonzeros pick rows of `W`) runs as
//! [`combine_many`], many rows at once; the weight gradient (`xᵀ·g`: one input *column*'s
//! nonzeros pick rows of `g`) as [`combine_many_grad`], or [`combine_many_sgd`] with the SGD
//! update fused in. Each computes any column range of its output ([`Rect`]), so a team can
//! split the work by rows or by columns. Terms are added in the order they are listed
//! (increasing index) whatever the block width, so each output element is the same sum
//! whichever thread computes it, at every dispatch level.

use std::ops::Range;

use super::rect::Rect;
use crate::dispatch::Level;
use crate::optim::{ClipElem, SgdStep};

/// Column blocks whose accumulators stay in registers across the whole list of terms: the
/// widest block of each level ([`WIDE_V4`] on AVX-512, [`WIDE`] elsewhere), then [`WIDE`],
/// [`NARROW`] and single columns for what is left. Every block adds each column's terms in
/// the same order, so the width changes the speed only, never a bit of the result.
const WIDE: usize = 64;
const NARROW: usize = 16;
/// AVX-512's block: 256 floats in sixteen zmm accumulators (half the register file). With
/// four, the add chains were the limit; sixteen independent chains hide the latency (the
/// seed model's 784→256 forward: 1.35 µs per MNIST row instead of 1.65, 1 thread).
const WIDE_V4: usize = 256;

/// Calls `$f::<CB>(args)` for the column blocks of columns `$c0..$c1`: as many `$wb`-wide
/// blocks as fit, then 128, [`WIDE`], 32, [`NARROW`] and 1 wide (widths above `$wb` never run);
/// `$j` is the block's first column.
macro_rules! col_blocks {
    ($c0:expr, $c1:expr, $wb:ident, $j:ident, $f:ident $args:tt) => {{
        let end = $c1;
        let mut $j = $c0;
        col_blocks!(@widths end, $j, $f $args; $wb, 128, WIDE, 32, NARROW, 1);
    }};
    (@widths $end:ident, $j:ident, $f:ident $args:tt; $($w:tt),*) => {
        $(
            // (`$j + 1 <= end` for the last width: the same form as the others.)
            #[allow(clippy::int_plus_one)]
            while $j + $w <= $end {
                $f::<$w> $args;
                $j += $w;
            }
        )*
    };
}

/// Entries a [`compress`] destination needs beyond the source length (the SIMD paths store
/// whole vectors).
pub const COMPRESS_PAD: usize = 16;

/// Values per chunk of [`compress`]'s chunk bits: bit `c` of word `c / 64` is set iff
/// `src[16c..16c + 16]` has an entry that is not exactly zero.
pub const MARK_CHUNK: usize = 16;

/// Words of chunk bits [`compress`] writes for a row of `len` values.
pub const fn chunk_words(len: usize) -> usize {
    len.div_ceil(MARK_CHUNK * 64)
}

/// Lists the entries of `src` that are not exactly zero (NaN included), in increasing index
/// order: `idx[..n]` their positions, `val[..n]` their values. Returns `n`. `idx` and `val`
/// must hold `src.len() + COMPRESS_PAD` entries (what lies past `n` is unspecified). Also
/// marks which [`MARK_CHUNK`]s of `src` have such an entry, in `chunks`
/// ([`chunk_words`]`(src.len())` words, overwritten).
pub fn compress(
    level: Level,
    src: &[f32],
    idx: &mut [u32],
    val: &mut [f32],
    chunks: &mut [u64],
) -> usize {
    let chunks = &mut chunks[..chunk_words(src.len())];
    chunks.fill(0);
    let need = src.len() + COMPRESS_PAD;
    assert!(
        idx.len() >= need && val.len() >= need,
        "compress: destination too short"
    );
    assert!(
        src.len() <= u32::MAX as usize - 16,
        "compress: row too long"
    );
    #[cfg(target_arch = "x86_64")]
    match super::simd::resolve(level) {
        // SAFETY: `resolve` returns a level only when the CPU has its features; the
        // destinations hold src.len() + 16 entries (asserted), what the vector stores need.
        Level::Avx512 => return unsafe { x86::compress_avx512(src, idx, val, chunks) },
        // SAFETY: as above, for AVX2.
        Level::Avx2 => return unsafe { x86::compress_avx2(src, idx, val, chunks) },
        Level::Scalar => {}
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = level;
    compress_scalar(src, idx, val, chunks, 0, 0)
}

/// Lists the nonzeros of `src[start..]` from slot `n` on; returns the new count.
fn compress_scalar(
    src: &[f32],
    idx: &mut [u32],
    val: &mut [f32],
    chunks: &mut [u64],
    start: usize,
    mut n: usize,
) -> usize {
    for (j, &v) in src.iter().enumerate().skip(start) {
        // `!=` is also true for NaN, which must propagate.
        if v != 0.0 {
            idx[n] = j as u32;
            val[n] = v;
            n += 1;
            mark(chunks, j / MARK_CHUNK);
        }
    }
    n
}

/// Sets chunk `c`'s bit.
#[inline(always)]
fn mark(chunks: &mut [u64], c: usize) {
    chunks[c / 64] |= 1 << (c % 64);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// # Safety
    /// Needs AVX-512F; `idx` and `val` hold at least `src.len() + 16` entries.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn compress_avx512(
        src: &[f32],
        idx: &mut [u32],
        val: &mut [f32],
        marks: &mut [u64],
    ) -> usize {
        let chunks = src.len() / 16;
        let zero = _mm512_setzero_ps();
        let mut pos = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let step = _mm512_set1_epi32(16);
        let mut n = 0usize;
        for c in 0..chunks {
            // SAFETY: c·16 + 16 <= src.len(); n <= c·16, so n + 16 <= src.len() + 16 fits both
            // destinations (caller).
            unsafe {
                let v = _mm512_loadu_ps(src.as_ptr().add(c * 16));
                // Unordered-or-unequal: NaN counts as nonzero.
                let m = _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(v, zero);
                if m != 0 {
                    _mm512_storeu_ps(val.as_mut_ptr().add(n), _mm512_maskz_compress_ps(m, v));
                    _mm512_storeu_si512(
                        idx.as_mut_ptr().add(n).cast(),
                        _mm512_maskz_compress_epi32(m, pos),
                    );
                    n += m.count_ones() as usize;
                    super::mark(marks, c);
                }
            }
            pos = _mm512_add_epi32(pos, step);
        }
        super::compress_scalar(src, idx, val, marks, chunks * 16, n)
    }

    /// # Safety
    /// Needs AVX2; `idx` and `val` hold at least `src.len()` entries.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn compress_avx2(
        src: &[f32],
        idx: &mut [u32],
        val: &mut [f32],
        marks: &mut [u64],
    ) -> usize {
        let chunks = src.len() / 16;
        let zero = _mm256_setzero_ps();
        let mut n = 0usize;
        for c in 0..chunks {
            let base = c * 16;
            // SAFETY: base + 16 <= src.len().
            let (lo, hi) = unsafe {
                (
                    _mm256_loadu_ps(src.as_ptr().add(base)),
                    _mm256_loadu_ps(src.as_ptr().add(base + 8)),
                )
            };
            let mut m = (_mm256_movemask_ps(_mm256_cmp_ps::<_CMP_NEQ_UQ>(lo, zero)) as u32)
                | ((_mm256_movemask_ps(_mm256_cmp_ps::<_CMP_NEQ_UQ>(hi, zero)) as u32) << 8);
            if m != 0 {
                super::mark(marks, c);
            }
            while m != 0 {
                let q = m.trailing_zeros() as usize;
                idx[n] = (base + q) as u32;
                val[n] = src[base + q];
                n += 1;
                m &= m - 1;
            }
        }
        super::compress_scalar(src, idx, val, marks, chunks * 16, n)
    }
}

/// `out[..CB] = Σ_t val[t] · b[idx[t]·n + j ..][..CB]`, the accumulators in registers.
#[inline(always)]
fn block<const CB: usize>(
    idx: &[u32],
    val: &[f32],
    b: &[f32],
    n: usize,
    j: usize,
    out: &mut [f32],
) {
    let mut acc = [0.0f32; CB];
    for (&k, &v) in idx.iter().zip(val) {
        let row = &b[k as usize * n + j..][..CB];
        for q in 0..CB {
            acc[q] += v * row[q];
        }
    }
    out[..CB].copy_from_slice(&acc);
}

/// Panics unless `idx` and `val` pair up and every listed row of `b` (rows of `n`) exists.
#[inline(always)]
fn check_lists(what: &str, idx: &[u32], val: &[f32], b: &[f32], n: usize) {
    assert_eq!(idx.len(), val.len(), "{what}: idx/val lengths");
    if let Some(&max) = idx.iter().max() {
        assert!(
            (max as usize + 1) * n <= b.len(),
            "{what}: index {max} out of range for {} rows of {n}",
            b.len() / n.max(1)
        );
    }
}

#[inline(always)]
fn combine_rows_body<const WB: usize>(
    idx: &[u32],
    val: &[f32],
    b: &[f32],
    n: usize,
    out: &mut [f32],
) {
    check_lists("combine_rows", idx, val, b, n);
    assert_eq!(out.len(), n, "combine_rows: out length");
    col_blocks!(0, n, WB, j, block(idx, val, b, n, j, &mut out[j..]));
}

multiversion! {
    /// `out[c] = Σ_t val[t] · b[idx[t], c]` for the `n` columns of row-major `b`, terms added
    /// in the order listed (each as a product, then a sum: no fused multiply-add), from +0.
    /// One row at a time; [`combine_many`] computes the same sums for many rows at once.
    pub fn combine_rows(idx: &[u32], val: &[f32], b: &[f32], n: usize, out: &mut [f32])
        => combine_rows_body::<{ WIDE_V4 }>, combine_rows_body::<{ WIDE }>,
        combine_rows_body::<{ WIDE }>;
}

/// The term lists of several output rows: row `r`'s terms are the positions
/// `idx[start[r]..][..len[r]]` (increasing) with the values at the same places of `val`.
#[derive(Clone, Copy)]
pub struct Lists<'a> {
    pub start: &'a [usize],
    pub len: &'a [u32],
    pub idx: &'a [u32],
    pub val: &'a [f32],
}

impl<'a> Lists<'a> {
    /// Output rows listed.
    pub fn rows(&self) -> usize {
        self.len.len()
    }

    /// The lists of rows `r` only.
    pub fn sub(&self, r: Range<usize>) -> Lists<'a> {
        Lists {
            start: &self.start[r.clone()],
            len: &self.len[r],
            ..*self
        }
    }

    /// (positions, values) of row `r`'s terms.
    #[inline(always)]
    pub fn row(&self, r: usize) -> (&'a [u32], &'a [f32]) {
        let (s, n) = (self.start[r], self.len[r] as usize);
        (&self.idx[s..s + n], &self.val[s..s + n])
    }
}

/// Owned term lists, what [`Lists`] borrows (for tests and benchmarks).
#[derive(Clone, Debug, Default)]
pub struct ListsBuf {
    pub start: Vec<usize>,
    pub len: Vec<u32>,
    pub idx: Vec<u32>,
    pub val: Vec<f32>,
}

impl ListsBuf {
    /// The lists, borrowed.
    pub fn lists(&self) -> Lists<'_> {
        Lists {
            start: &self.start,
            len: &self.len,
            idx: &self.idx,
            val: &self.val,
        }
    }
}

/// What the many-row kernels compute: output row `r` is `Σ_t val[t] · b[idx[t], cols]` over
/// row `r`'s list in `lists`, `b` row-major with `n` columns (of which only `cols`).
#[derive(Clone)]
pub struct Product<'a> {
    pub lists: Lists<'a>,
    pub b: &'a [f32],
    pub n: usize,
    pub cols: Range<usize>,
}

impl Product<'_> {
    /// Panics unless `out` has one row per list and one column per column of `cols` and
    /// `cols` is inside `b`'s rows (and, in debug builds, unless every listed row of `b`
    /// exists; release builds panic where a missing one is read).
    fn check(&self, out: &Rect<'_>) {
        let Product { lists, b, n, cols } = self;
        assert!(
            cols.start <= cols.end && cols.end <= *n,
            "combine_many: columns {cols:?} of {n}"
        );
        assert_eq!(out.rows(), lists.rows(), "combine_many: output rows");
        assert_eq!(out.cols(), cols.len(), "combine_many: output columns");
        // Every listed row of `b` is sliced with bounds checks where it is read; scanning the
        // lists for the largest index here as well cost ~3 µs per weight gradient at batch 32
        // (784 short lists), so only debug builds do.
        if cfg!(debug_assertions) {
            for r in 0..lists.rows() {
                let (idx, val) = lists.row(r);
                check_lists("combine_many", idx, val, b, *n);
            }
        }
    }
}

/// Width of the column blocks whose squares [`combine_many_grad`] sums separately (the
/// blocks are the same for any split of the columns into parts aligned to it).
pub const SQ_BLOCK: usize = 64;

/// Output rows combined together by [`combine_many`], `b`'s rows taken [`CHUNK`] at a time:
/// a chunk's column block (`CHUNK × CB` floats) is read from L2 once and then from L1 by every
/// row of the group that lists one of its rows. (The seed model's 784→256 forward, AVX-512, 1
/// thread: 1.0 µs per MNIST row with chunks of 64, against 1.35 row by row; 16–32 and 96–512
/// were slower.)
const GROUP: usize = 32;
const CHUNK: usize = 64;

/// Columns `j..j + CB` of output rows `r0..r0 + g` (`out`'s columns start at `c0`): each
/// row's sums (as [`block`] adds them: listed order, from +0) are kept in its output row
/// between chunks of `b`'s rows (f32 in, f32 out, so exactly).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn block_many<const CB: usize>(
    lists: &Lists<'_>,
    r0: usize,
    g: usize,
    b: &[f32],
    n: usize,
    j: usize,
    c0: usize,
    out: &mut Rect<'_>,
) {
    let mut cur = [0usize; GROUP];
    let mut last = 0usize;
    for r in 0..g {
        out.row(r0 + r)[j - c0..][..CB].fill(0.0);
        if let Some(&k) = lists.row(r0 + r).0.last() {
            last = last.max(k as usize);
        }
    }
    // Chunks start at multiples of CHUNK from the first listed row's chunk (lists of the
    // kernel's upper half start there).
    let first = (0..g)
        .filter_map(|r| lists.row(r0 + r).0.first())
        .min()
        .map_or(0, |&k| k as usize);
    let mut k1 = first / CHUNK * CHUNK;
    while k1 <= last {
        k1 += CHUNK;
        for (r, c) in cur.iter_mut().enumerate().take(g) {
            let (idx, val) = lists.row(r0 + r);
            let mut t = *c;
            if t >= idx.len() || idx[t] as usize >= k1 {
                continue;
            }
            let o = &mut out.row(r0 + r)[j - c0..][..CB];
            let mut acc = [0.0f32; CB];
            acc.copy_from_slice(o);
            while t < idx.len() && (idx[t] as usize) < k1 {
                let (k, v) = (idx[t] as usize, val[t]);
                let row = &b[k * n + j..][..CB];
                for q in 0..CB {
                    acc[q] += v * row[q];
                }
                t += 1;
            }
            o.copy_from_slice(&acc);
            *c = t;
        }
    }
}

#[inline(always)]
fn combine_many_body<const WB: usize>(p: Product<'_>, out: &mut Rect<'_>) {
    p.check(out);
    let Product { lists, b, n, cols } = p;
    let rows = lists.rows();
    let mut r0 = 0;
    while r0 < rows {
        let g = (rows - r0).min(GROUP);
        col_blocks!(
            cols.start,
            cols.end,
            WB,
            j,
            block_many(&lists, r0, g, b, n, j, cols.start, out)
        );
        r0 += g;
    }
}

multiversion! {
    /// The [`Product`] `p` into `out` (one row per list, `p.cols.len()` columns), each row
    /// bit for bit as [`combine_rows`] computes it, but in groups of rows that reuse each chunk
    /// of `b`'s rows from L1 (the forward product `x·W` of a sparse input).
    pub fn combine_many(p: Product<'_>, out: &mut Rect<'_>) => combine_many_body::<{ WIDE_V4 }>, combine_many_body::<{ WIDE }>,
        combine_many_body::<{ WIDE }>;
}

#[inline(always)]
fn add_into_body(dst: &mut [f32], src: &[f32]) {
    assert_eq!(dst.len(), src.len(), "add_into: lengths");
    for (d, &v) in dst.iter_mut().zip(src) {
        *d += v;
    }
}

multiversion! {
    /// `dst += src` element-wise (the sparse forward's two half sums; see `combine_many`).
    pub fn add_into(dst: &mut [f32], src: &[f32]) => add_into_body;
}

/// Σ x² over 16 lanes folded pairwise (`x` at most one [`SQ_BLOCK`]).
#[inline(always)]
fn squares16(x: &[f32]) -> f32 {
    let mut sq = [0.0f32; 16];
    let chunks = x.chunks_exact(16);
    let tail = chunks.remainder();
    for ch in chunks {
        for q in 0..16 {
            sq[q] += ch[q] * ch[q];
        }
    }
    for (q, &v) in tail.iter().enumerate() {
        sq[q] += v * v;
    }
    super::simd::fold16(sq)
}

#[inline(always)]
fn combine_many_grad_body<const WB: usize>(
    p: Product<'_>,
    out: &mut Rect<'_>,
    skip_empty: bool,
    mut sq: Option<&mut Rect<'_>>,
) {
    p.check(out);
    let Product { lists, b, n, cols } = p;
    if let Some(sq) = &sq {
        assert!(
            cols.start.is_multiple_of(SQ_BLOCK),
            "combine_many_grad: squares need block-aligned columns"
        );
        assert_eq!(sq.rows(), lists.rows(), "combine_many_grad: square rows");
        assert_eq!(
            sq.cols(),
            cols.len().div_ceil(SQ_BLOCK),
            "combine_many_grad: square blocks"
        );
    }
    let c0 = cols.start;
    for r in 0..lists.rows() {
        let (idx, val) = lists.row(r);
        if idx.is_empty() {
            if !skip_empty {
                out.row(r).fill(0.0);
            }
            if let Some(sq) = sq.as_deref_mut() {
                sq.row(r).fill(0.0);
            }
            continue;
        }
        // Row by row, the sums in registers for the whole list (the weight gradient's lists
        // are short: chunking them as `combine_many` does measured slower).
        let o = out.row(r);
        col_blocks!(
            c0,
            cols.end,
            WB,
            j,
            block(idx, val, b, n, j, &mut o[j - c0..])
        );
        if let Some(sq) = sq.as_deref_mut() {
            for (v, c) in sq.row(r).iter_mut().zip(o.chunks(SQ_BLOCK)) {
                *v = squares16(c);
            }
        }
    }
}

multiversion! {
    /// The [`Product`] `p` into `out` row by row, as [`combine_rows`] computes each row (for a
    /// weight gradient): rows without terms are left as they are with `skip_empty` (their
    /// gradient is exactly zero), and with `sq`, element `q` of row `r` of `sq` receives Σ out²
    /// of row `r`'s columns `p.cols.start + q·SQ_BLOCK ..` (one [`SQ_BLOCK`]; 0 for rows
    /// without terms), for gradient norms that do not depend on how the columns were split
    /// (`p.cols.start` must be a multiple of [`SQ_BLOCK`] then).
    pub fn combine_many_grad(
        p: Product<'_>,
        out: &mut Rect<'_>,
        skip_empty: bool,
        sq: Option<&mut Rect<'_>>
    ) => combine_many_grad_body::<{ WIDE_V4 }>, combine_many_grad_body::<{ WIDE }>,
        combine_many_grad_body::<{ WIDE }>;
}

/// [`block`], then the plain-SGD update `w ← w − clip(d)·lr` of `w[..CB]` with the result
/// `d` as its gradient (the expression `sgd_update` evaluates with momentum 0 and no weight
/// decay); ORs the bits of `w − w` (zero iff finite) of the updated weights into `bits`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn block_sgd<const CB: usize>(
    idx: &[u32],
    val: &[f32],
    b: &[f32],
    n: usize,
    j: usize,
    w: &mut [f32],
    lr: f32,
    clip: &impl Fn(f32) -> f32,
    bits: &mut u32,
) {
    let mut acc = [0.0f32; CB];
    block::<CB>(idx, val, b, n, j, &mut acc);
    for (wv, &d) in w[..CB].iter_mut().zip(&acc) {
        *wv -= clip(d) * lr;
    }
    *bits = crate::optim::nonfinite_bits(*bits, &w[..CB]);
}

/// [`combine_many_sgd`] with the clip as a closure (one instantiation per kind of clip).
#[inline(always)]
fn sgd_rows<const WB: usize, C: Fn(f32) -> f32>(
    p: Product<'_>,
    w: &mut Rect<'_>,
    lr: f32,
    clip: C,
) -> bool {
    let Product { lists, b, n, cols } = p;
    let c0 = cols.start;
    let mut bits = 0u32;
    for r in 0..lists.rows() {
        let (idx, val) = lists.row(r);
        if idx.is_empty() {
            continue;
        }
        let wr = w.row(r);
        col_blocks!(
            c0,
            cols.end,
            WB,
            j,
            block_sgd(idx, val, b, n, j, &mut wr[j - c0..], lr, &clip, &mut bits)
        );
    }
    bits == 0
}

#[inline(always)]
fn combine_many_sgd_body<const WB: usize>(
    p: Product<'_>,
    w: &mut Rect<'_>,
    clip: ClipElem,
    step: &SgdStep,
) -> bool {
    p.check(w);
    assert!(
        step.momentum == 0.0 && step.weight_decay.is_none(),
        "combine_many_sgd: plain SGD only"
    );
    let lr = step.lr;
    match clip {
        ClipElem::None => sgd_rows::<WB, _>(p, w, lr, |x| x),
        ClipElem::Scale(s) => sgd_rows::<WB, _>(p, w, lr, move |x| x * s),
        ClipElem::Value(v) => sgd_rows::<WB, _>(p, w, lr, move |x| crate::optim::clamp(x, v)),
    }
}

multiversion! {
    /// Plain SGD on weight rows with gradient rows computed in registers and never stored:
    /// with `d` the row [`combine_many_grad`] would compute for the [`Product`] `p`,
    /// `w[c] ← w[c] − clip(d[c])·lr` (as [`crate::optim::sgd_update`] computes it, momentum 0 and no
    /// weight decay, asserted); rows without terms are left as they are. Returns whether every
    /// updated weight is finite.
    pub fn combine_many_sgd(p: Product<'_>, w: &mut Rect<'_>, clip: ClipElem, step: &SgdStep)
        -> bool => combine_many_sgd_body::<{ WIDE_V4 }>, combine_many_sgd_body::<{ WIDE }>,
        combine_many_sgd_body::<{ WIDE }>;
}

#[inline(always)]
fn all_finite_body(x: &[f32]) -> bool {
    crate::optim::nonfinite_bits(0, x) == 0
}

multiversion! {
    /// Whether every element of `x` is finite.
    pub fn all_finite(x: &[f32]) -> bool => all_finite_body;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testutil::*;
    use crate::optim::sgd_update;

    fn dense_rows(rows: usize, cols: usize, density: f64, seed: u64) -> Vec<f32> {
        let mut r = Rng::new(seed);
        (0..rows * cols)
            .map(|_| {
                if r.unit() < density {
                    r.uniform(-2.0, 2.0)
                } else {
                    0.0
                }
            })
            .collect()
    }

    #[test]
    fn compress_lists_nonzeros_in_order_with_nan_and_negative_zero() {
        for level in levels() {
            for len in [0usize, 1, 15, 16, 17, 33, 784] {
                let mut src = dense_rows(1, len, 0.3, len as u64);
                if len > 3 {
                    src[1] = f32::NAN;
                    src[2] = -0.0;
                }
                let mut idx = vec![u32::MAX; len + COMPRESS_PAD];
                let mut val = vec![f32::NAN; len + COMPRESS_PAD];
                let mut chunks = vec![u64::MAX; chunk_words(len)];
                let n = compress(level, &src, &mut idx, &mut val, &mut chunks);
                for c in 0..len.div_ceil(MARK_CHUNK) {
                    let part = &src[c * MARK_CHUNK..((c + 1) * MARK_CHUNK).min(len)];
                    let any = part.iter().any(|&v| v != 0.0);
                    assert_eq!(
                        chunks[c / 64] >> (c % 64) & 1 == 1,
                        any,
                        "{level:?} chunk {c}"
                    );
                }
                let want: Vec<(u32, f32)> = src
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| **v != 0.0 || v.is_nan())
                    .map(|(j, &v)| (j as u32, v))
                    .collect();
                assert_eq!(n, want.len(), "{level:?} len {len}");
                for (t, &(j, v)) in want.iter().enumerate() {
                    assert_eq!(idx[t], j);
                    assert_eq!(val[t].to_bits(), v.to_bits());
                }
            }
        }
    }

    #[test]
    fn combine_rows_matches_a_naive_sum_in_listed_order() {
        for level in levels() {
            for n in [1usize, 10, 16, 63, 64, 65, 100, 256] {
                let rows_b = 37;
                let b: Vec<f32> = dense_rows(rows_b, n, 1.0, 3 + n as u64);
                let idx: Vec<u32> = vec![0, 3, 4, 17, 36, 36, 5];
                let val: Vec<f32> = vec![0.5, -1.25, 3.0, 1e-3, 2.0, -0.5, 7.0];
                let mut out = vec![f32::NAN; n];
                combine_rows(level, &idx, &val, &b, n, &mut out);
                for c in 0..n {
                    let mut s = 0.0f32;
                    for (&k, &v) in idx.iter().zip(&val) {
                        s += v * b[k as usize * n + c];
                    }
                    assert_eq!(out[c].to_bits(), s.to_bits(), "{level:?} n {n} c {c}");
                }
                // No terms: +0 everywhere.
                combine_rows(level, &[], &[], &b, n, &mut out);
                assert!(out.iter().all(|v| v.to_bits() == 0));
            }
        }
    }

    /// Plain SGD (no momentum, no weight decay) at learning rate `lr`.
    fn plain_sgd(lr: f32) -> SgdStep {
        SgdStep {
            lr,
            momentum: 0.0,
            nesterov: false,
            weight_decay: None,
        }
    }

    type TestLists = ListsBuf;

    impl ListsBuf {
        /// Columns `cols` of the product of these lists with `b` (rows of `n`).
        fn product<'a>(&'a self, b: &'a [f32], n: usize, cols: Range<usize>) -> Product<'a> {
            Product {
                lists: self.lists(),
                b,
                n,
                cols,
            }
        }
    }

    /// `rows` term lists over `b_rows` rows of `b`, increasing positions; every fourth list
    /// is empty.
    fn random_lists(rows: usize, b_rows: usize, seed: u64) -> TestLists {
        random_lists_from(rows, 0, b_rows, seed)
    }

    /// As [`random_lists`], with every listed row of `b` at least `first`.
    fn random_lists_from(rows: usize, first: usize, b_rows: usize, seed: u64) -> TestLists {
        let mut r = Rng::new(seed);
        let (mut start, mut len, mut idx, mut val) = (vec![], vec![], vec![], vec![]);
        for i in 0..rows {
            // Leave gaps between lists, as the fixed slots of a compressed batch do.
            idx.extend([u32::MAX; 3]);
            val.extend([f32::NAN; 3]);
            start.push(idx.len());
            let mut n = 0;
            for k in first..b_rows {
                if i % 4 != 3 && r.unit() < 0.3 {
                    idx.push(k as u32);
                    val.push(r.uniform(-2.0, 2.0));
                    n += 1;
                }
            }
            len.push(n);
        }
        TestLists {
            start,
            len,
            idx,
            val,
        }
    }

    /// Σ x² as `squares16` must compute it: lane q sums the squares of elements q, q+16, ...
    /// in order, then the 16 lanes are added pairwise (8 pairs, 4, 2, 1).
    fn naive_squares(x: &[f32]) -> f32 {
        let mut lanes = [0.0f32; 16];
        for (c, &v) in x.iter().enumerate() {
            lanes[c % 16] += v * v;
        }
        let mut w = 8;
        while w > 0 {
            for i in 0..w {
                lanes[i] += lanes[i + w];
            }
            w /= 2;
        }
        lanes[0]
    }

    /// Column ranges that cover `0..n` in parts aligned to `SQ_BLOCK` (one part, and two or
    /// three where `n` allows), as a team splits them.
    fn column_splits(n: usize) -> Vec<Vec<Range<usize>>> {
        let mut splits = vec![vec![0..n]];
        if n > SQ_BLOCK {
            splits.push(vec![0..SQ_BLOCK, SQ_BLOCK..n]);
        }
        if n > 2 * SQ_BLOCK {
            splits.push(vec![0..SQ_BLOCK, SQ_BLOCK..2 * SQ_BLOCK, 2 * SQ_BLOCK..n]);
        }
        splits
    }

    #[test]
    fn combine_many_is_combine_rows_for_every_row_and_column_split() {
        for level in levels() {
            for (rows, n) in [(1, 1), (5, 16), (33, 65), (32, 256), (70, 200), (3, 300)] {
                let b_rows = 150;
                let b = dense_rows(b_rows, n, 1.0, 60 + n as u64);
                let tl = random_lists(rows, b_rows, 70 + rows as u64);
                let (lists, len) = (tl.lists(), &tl.len);
                let product = |cols| tl.product(&b, n, cols);
                let mut want = vec![0f32; rows * n];
                for (r, o) in want.chunks_exact_mut(n).enumerate() {
                    let (i, v) = lists.row(r);
                    combine_rows(level, i, v, &b, n, o);
                }
                let nb = n.div_ceil(SQ_BLOCK);
                for split in column_splits(n) {
                    let mut got = vec![f32::NAN; rows * n];
                    for cols in &split {
                        let mut out = Rect::new(&mut got, n, cols.clone());
                        combine_many(level, product(cols.clone()), &mut out);
                    }
                    assert!(
                        got.iter()
                            .zip(&want)
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{level:?} rows {rows} n {n} split {split:?}"
                    );
                    // The weight-gradient form: rows without terms untouched, and the squares
                    // of every column block, whichever part computed it.
                    let mut grad = vec![f32::NAN; rows * n];
                    let mut sq = vec![f32::NAN; rows * nb];
                    for cols in &split {
                        let mut out = Rect::new(&mut grad, n, cols.clone());
                        let blocks = cols.start / SQ_BLOCK..cols.end.div_ceil(SQ_BLOCK);
                        let mut sqr = Rect::new(&mut sq, nb, blocks);
                        let p = product(cols.clone());
                        combine_many_grad(level, p, &mut out, true, Some(&mut sqr));
                    }
                    for r in 0..rows {
                        let (g, w) = (&grad[r * n..][..n], &want[r * n..][..n]);
                        if len[r] == 0 {
                            assert!(g.iter().all(|v| v.is_nan()), "row {r} was written");
                        } else {
                            assert!(g.iter().zip(w).all(|(a, b)| a.to_bits() == b.to_bits()));
                        }
                        for q in 0..nb {
                            let block = &w[q * SQ_BLOCK..((q + 1) * SQ_BLOCK).min(n)];
                            let expect = if len[r] == 0 {
                                0.0
                            } else {
                                naive_squares(block)
                            };
                            assert_eq!(
                                sq[r * nb + q].to_bits(),
                                expect.to_bits(),
                                "{level:?} n {n} row {r} block {q}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn combine_many_of_lists_starting_past_the_first_chunks_is_combine_rows() {
        // The upper half of a kernel's rows (the training forward's second sum) lists no row
        // below the split: the chunks before the first listed one are skipped.
        for level in levels() {
            for first in [1, CHUNK - 1, CHUNK, 2 * CHUNK + 5] {
                let (rows, n, b_rows) = (33, 40, 2 * CHUNK + 40);
                let b = dense_rows(b_rows, n, 1.0, 90 + first as u64);
                let tl = random_lists_from(rows, first, b_rows, 91 + first as u64);
                let lists = tl.lists();
                let mut want = vec![0f32; rows * n];
                for (r, o) in want.chunks_exact_mut(n).enumerate() {
                    let (i, v) = lists.row(r);
                    assert!(i.iter().all(|&k| k as usize >= first));
                    combine_rows(level, i, v, &b, n, o);
                }
                let mut got = vec![f32::NAN; rows * n];
                combine_many(
                    level,
                    tl.product(&b, n, 0..n),
                    &mut Rect::new(&mut got, n, 0..n),
                );
                assert!(
                    got.iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{level:?} first {first}"
                );
            }
        }
    }

    #[test]
    fn add_into_adds_element_wise() {
        for level in levels() {
            for len in [0, 1, 15, 16, 17, 100, 4099] {
                let a = dense_rows(1, len, 1.0, 5);
                let b = dense_rows(1, len, 3.0, 6);
                let mut got = a.clone();
                add_into(level, &mut got, &b);
                for i in 0..len {
                    assert_eq!(got[i].to_bits(), (a[i] + b[i]).to_bits(), "{level:?} {len}");
                }
            }
        }
    }

    #[test]
    fn combine_many_sgd_is_combine_then_sgd_update_bit_for_bit() {
        let step = plain_sgd(0.03);
        for level in levels() {
            for (rows, n) in [(6, 1), (40, 100), (9, 256)] {
                let b = dense_rows(60, n, 1.0, 40 + n as u64);
                let tl = random_lists(rows, 60, 80 + n as u64);
                let (lists, len) = (tl.lists(), &tl.len);
                let product = |cols| tl.product(&b, n, cols);
                let w0 = dense_rows(rows, n, 1.0, 50 + n as u64);
                for clip in [ClipElem::None, ClipElem::Value(0.5)] {
                    let mut want = w0.clone();
                    for (r, wr) in want.chunks_exact_mut(n).enumerate() {
                        if len[r] > 0 {
                            let mut d = vec![0.0f32; n];
                            let (i, v) = lists.row(r);
                            combine_rows(level, i, v, &b, n, &mut d);
                            sgd_update(level, wr, &d, None, clip, &step);
                        }
                    }
                    for split in column_splits(n) {
                        let mut got = w0.clone();
                        for cols in &split {
                            let mut w = Rect::new(&mut got, n, cols.clone());
                            let ok =
                                combine_many_sgd(level, product(cols.clone()), &mut w, clip, &step);
                            assert!(ok);
                        }
                        assert!(
                            got.iter()
                                .zip(&want)
                                .all(|(a, b)| a.to_bits() == b.to_bits()),
                            "{level:?} n {n} {clip:?} {split:?}"
                        );
                    }
                    // A non-finite weight in a row with terms is reported; one in a row
                    // without terms is not touched, so not reported.
                    for (row, expect) in [(0, false), (3, true)] {
                        let mut bad = w0.clone();
                        bad[row * n + n - 1] = f32::INFINITY;
                        let mut w = Rect::new(&mut bad, n, 0..n);
                        let ok = combine_many_sgd(level, product(0..n), &mut w, clip, &step);
                        assert_eq!(ok, expect, "{level:?} n {n} row {row}");
                    }
                }
            }
        }
    }

    #[test]
    fn combine_rows_of_compressed_rows_is_the_dense_product() {
        // Against a naive f64 product: only rounding may differ.
        let (m, k, n) = (9, 50, 70);
        let a = dense_rows(m, k, 0.2, 11);
        let b = dense_rows(k, n, 1.0, 12);
        for level in levels() {
            let mut idx = vec![0u32; k + COMPRESS_PAD];
            let mut val = vec![0f32; k + COMPRESS_PAD];
            for i in 0..m {
                let mut chunks = [0u64; chunk_words(50)];
                let nz = compress(
                    level,
                    &a[i * k..(i + 1) * k],
                    &mut idx,
                    &mut val,
                    &mut chunks,
                );
                let mut out = vec![0f32; n];
                combine_rows(level, &idx[..nz], &val[..nz], &b, n, &mut out);
                for c in 0..n {
                    let want: f64 = (0..k)
                        .map(|p| a[i * k + p] as f64 * b[p * n + c] as f64)
                        .sum();
                    assert!((out[c] as f64 - want).abs() <= 1e-5 * (1.0 + want.abs()));
                }
            }
        }
    }

    #[test]
    fn all_finite_finds_any_nan_or_infinity() {
        for level in levels() {
            for len in [0usize, 5, 16, 40, 1000] {
                let x = dense_rows(1, len, 1.0, 5);
                assert!(all_finite(level, &x));
                for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                    for pos in [0, len / 2, len.saturating_sub(1)] {
                        if len == 0 {
                            continue;
                        }
                        let mut y = x.clone();
                        y[pos] = bad;
                        assert!(!all_finite(level, &y), "{level:?} {len} {pos} {bad}");
                    }
                }
            }
        }
    }
}
