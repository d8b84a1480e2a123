//! Reductions: column sums (bias gradients) and sums of squares (gradient norms).

// Column sums use the shared column blocks (`by_col_block!`, see `batchnorm.rs`).

use std::ops::Range;

#[inline(always)]
fn col_sums_body(g: &[f32], rows: usize, cols: usize, out: &mut [f32]) {
    assert_eq!(g.len(), rows * cols, "g length");
    assert_eq!(out.len(), cols, "out length");
    by_col_block!(cols, col_sums_blk(g, rows, cols, out))
}

#[inline(always)]
fn col_sums_blk<const B: usize>(g: &[f32], rows: usize, cols: usize, out: &mut [f32]) {
    let mut c0 = 0;
    while c0 < cols {
        let w = (cols - c0).min(B);
        let mut acc = [0.0f64; B];
        let acc = &mut acc[..w];
        for r in 0..rows {
            let gr = &g[r * cols + c0..r * cols + c0 + w];
            for (a, &v) in acc.iter_mut().zip(gr) {
                *a += v as f64;
            }
        }
        for (o, &a) in out[c0..c0 + w].iter_mut().zip(acc.iter()) {
            *o = a as f32;
        }
        c0 += w;
    }
}

multiversion! {
    /// out[c] = Σ_r g[r, c] (overwrites out), accumulated in f64. Used for bias gradients.
    pub fn col_sums(g: &[f32], rows: usize, cols: usize, out: &mut [f32]) => col_sums_body;
}

/// Independent f64 accumulators for Σ x²: 64 = eight 512-bit registers, enough to hide the
/// add latency (16 left one dependency chain per register pair and ran at ~1.6 values/cycle).
const SQ_LANES: usize = 64;

/// Σ f(x) over [`SQ_LANES`] f64 lanes (value `i` to lane `i mod SQ_LANES`), the lanes added
/// pairwise, then the tail in order: a fixed order for any input.
#[inline(always)]
fn lane_sum_body(x: &[f32], f: impl Fn(f64) -> f64) -> f64 {
    let mut acc = [0.0f64; SQ_LANES];
    let chunks = x.chunks_exact(SQ_LANES);
    let tail = chunks.remainder();
    for ch in chunks {
        for i in 0..SQ_LANES {
            acc[i] += f(ch[i] as f64);
        }
    }
    let mut w = SQ_LANES / 2;
    while w > 0 {
        for i in 0..w {
            acc[i] += acc[i + w];
        }
        w /= 2;
    }
    let mut s = acc[0];
    for &v in tail {
        s += f(v as f64);
    }
    s
}

#[inline(always)]
fn sum_squares_body(x: &[f32]) -> f64 {
    lane_sum_body(x, |v| v * v)
}

#[inline(always)]
fn sum_f64_body(x: &[f32]) -> f64 {
    lane_sum_body(x, |v| v)
}

multiversion! {
    /// Σ x² (for gradient norms), squared and accumulated in f64 over 64 lanes.
    pub fn sum_squares(x: &[f32]) -> f64 => sum_squares_body;
}

multiversion! {
    /// Σ x accumulated in f64 over 64 lanes, as [`sum_squares`] adds (e.g. partial sums of
    /// squares computed elsewhere).
    pub fn sum_f64(x: &[f32]) -> f64 => sum_f64_body;
}

/// Most rows [`gram_rows`] pairs up (its per-tile products are kept on the stack).
pub const GRAM_MAX_ROWS: usize = 64;

/// `x_i · x_j` for the `R × R` rows `i0 + a`, `j0 + b` of `x` (rows of `d`), row indices past
/// `last` clamped to it (their entries are not used). Each entry is [`LANES`] f32 lanes over
/// the columns (a product, then an add: no FMA), folded pairwise ([`fold16`]), then the
/// columns past the last whole chunk added in order, exactly as
/// [`lane_dot`](super::simd::lane_dot): the same value for any tile shape, so the SIMD tiles
/// ([`x86`]) change no bit.
///
/// `marks` ([`compress`](super::sparse::compress)'s chunk bits of `x`'s rows, or empty) may
/// let a SIMD tile skip the chunks where all of its `i` rows or all of its `j` rows are zero:
/// those products are all ±0, which leave every lane sum as it was (a lane sum is never −0),
/// so the result is the same bits. (NaN and ±∞ count as nonzero.) This tile ignores them.
#[inline(always)]
fn dot_tile<const R: usize>(
    x: &[f32],
    d: usize,
    i0: usize,
    j0: usize,
    last: usize,
    _marks: &[u64],
) -> [[f32; R]; R] {
    let row = |i: usize| {
        let i = i.min(last);
        &x[i * d..(i + 1) * d]
    };
    std::array::from_fn(|a| {
        std::array::from_fn(|b| super::simd::lane_dot(row(i0 + a), row(j0 + b)))
    })
}

/// [`gram_rows`] with the tiles of `R × R` dots computed by `tile` (as [`dot_tile`] does).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gram_rows_with<const R: usize>(
    tile: impl Fn(&[f32], usize, usize, usize, usize, &[u64]) -> [[f32; R]; R],
    x: &[f32],
    dx: usize,
    x_marks: &[u64],
    g: &[f32],
    dg: usize,
    rows: Range<usize>,
    out: &mut [[f64; 2]],
) {
    assert!(
        rows.end <= GRAM_MAX_ROWS,
        "gram_rows: at most {GRAM_MAX_ROWS} rows"
    );
    assert!(
        x.len() >= rows.end * dx && g.len() >= rows.end * dg,
        "gram_rows: shapes"
    );
    let words = super::sparse::chunk_words(dx);
    assert!(
        x_marks.is_empty() || x_marks.len() >= rows.end * words,
        "gram_rows: chunk marks"
    );
    assert!(out.len() == rows.len(), "gram_rows: outputs");
    // Per row of the tile: (x_i·x_j)(g_i·g_j) for j ≤ i, and the diagonal's two dots.
    let mut m = [[0.0f64; GRAM_MAX_ROWS]; R];
    let mut diag = [(0.0f32, 0.0f32); R];
    let mut i0 = rows.start;
    while i0 < rows.end {
        let ilast = (i0 + R).min(rows.end) - 1;
        let mut j0 = 0;
        while j0 <= ilast {
            let a = tile(x, dx, i0, j0, ilast, x_marks);
            let b = tile(g, dg, i0, j0, ilast, &[]);
            for p in 0..=ilast - i0 {
                for q in 0..R {
                    let (i, j) = (i0 + p, j0 + q);
                    if j <= i {
                        m[p][j] = a[p][q] as f64 * b[p][q] as f64;
                    }
                    if j == i {
                        diag[p] = (a[p][q], b[p][q]);
                    }
                }
            }
            j0 += R;
        }
        for p in 0..=ilast - i0 {
            let i = i0 + p;
            let below: f64 = m[p][..i].iter().sum();
            out[i - rows.start] = [
                m[p][i] + 2.0 * below,
                (diag[p].0 as f64 * diag[p].1 as f64).sqrt(),
            ];
        }
        i0 += R;
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gram_rows_body(
    x: &[f32],
    dx: usize,
    x_marks: &[u64],
    g: &[f32],
    dg: usize,
    rows: Range<usize>,
    out: &mut [[f64; 2]],
) {
    gram_rows_with::<2>(dot_tile::<2>, x, dx, x_marks, g, dg, rows, out);
}

/// Defines `$name`, [`gram_rows`] at a SIMD level whose `$r × $r` tiles `x86::$tile`
/// computes in registers.
macro_rules! gram_rows_at {
    ($name:ident, $r:literal, $tile:ident) => {
        #[cfg(target_arch = "x86_64")]
        #[inline(always)]
        #[allow(clippy::too_many_arguments)]
        fn $name(
            x: &[f32],
            dx: usize,
            x_marks: &[u64],
            g: &[f32],
            dg: usize,
            rows: Range<usize>,
            out: &mut [[f64; 2]],
        ) {
            // SAFETY: only instantiated in `gram_rows`'s wrapper for the tile's level (the
            // CPU has its features); `gram_rows_with` checks that rows up to its `last` lie in
            // `x` / `g`, as the tile needs.
            let tile = |x: &[f32], d, i0, j0, last, marks: &[u64]| unsafe {
                x86::$tile(x, d, i0, j0, last, marks)
            };
            gram_rows_with::<$r>(tile, x, dx, x_marks, g, dg, rows, out);
        }
    };
}

gram_rows_at!(gram_rows_avx512, 4, dot_tile_avx512);
gram_rows_at!(gram_rows_avx2, 2, dot_tile_avx2);

/// Register tiles of [`dot_tile`]: LLVM keeps a generic tile's accumulators on the stack
/// (a store and a reload per chunk, ~10x slower at 4 × 4), so the SIMD levels hold them in
/// registers explicitly, 16 lanes as one zmm (AVX-512, 4 × 4 rows) or two ymm (AVX2, 2 × 2).
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::super::simd::{fold16, LANES};
    use super::super::sparse::chunk_words;

    /// The offsets of the whole chunks of [`LANES`] values of rows of `d` that some of the
    /// rows `ri` and some of the rows `rj` mark (every whole chunk if `marks` is empty), in
    /// increasing order (see `dot_tile`).
    struct Chunks<'a, const R: usize> {
        marks: &'a [u64],
        words: usize,
        ri: [usize; R],
        rj: [usize; R],
        /// Whole chunks per row, the next word, and the bits left of the current one.
        whole: usize,
        w: usize,
        bits: u64,
        /// Without marks: the next chunk.
        next: usize,
    }

    impl<'a, const R: usize> Chunks<'a, R> {
        #[inline(always)]
        fn new(marks: &'a [u64], d: usize, ri: [usize; R], rj: [usize; R]) -> Self {
            Chunks {
                marks,
                words: chunk_words(d),
                ri,
                rj,
                whole: d / LANES,
                w: 0,
                bits: 0,
                next: 0,
            }
        }
    }

    impl<const R: usize> Iterator for Chunks<'_, R> {
        type Item = usize;

        #[inline(always)]
        fn next(&mut self) -> Option<usize> {
            if self.marks.is_empty() {
                let c = self.next;
                self.next += 1;
                return (c < self.whole).then_some(c * LANES);
            }
            while self.bits == 0 {
                if self.w == self.words {
                    return None;
                }
                let (m, w, at) = (self.marks, self.words, self.w);
                let any = |rows: &[usize; R]| rows.iter().fold(0, |a, &r| a | m[r * w + at]);
                self.bits = any(&self.ri) & any(&self.rj);
                self.w += 1;
            }
            let c = (self.w - 1) * 64 + self.bits.trailing_zeros() as usize;
            self.bits &= self.bits - 1;
            if c >= self.whole {
                // The partial last chunk: the tail, added in order after the fold.
                self.bits = 0;
                self.w = self.words;
                return None;
            }
            Some(c * LANES)
        }
    }

    /// A tile's rows `i0 + a` and `j0 + b` (`a, b < R`), clamped to `last`, and where they
    /// start in `x` (rows of `d`).
    #[inline(always)]
    #[allow(clippy::type_complexity)]
    fn tile_rows<const R: usize>(
        x: &[f32],
        d: usize,
        i0: usize,
        j0: usize,
        last: usize,
    ) -> ([usize; R], [usize; R], [*const f32; R], [*const f32; R]) {
        assert!(x.len() >= (last + 1) * d, "dot tile: rows");
        let ri: [usize; R] = std::array::from_fn(|a| (i0 + a).min(last));
        let rj: [usize; R] = std::array::from_fn(|b| (j0 + b).min(last));
        let start = |r: usize| x[r * d..].as_ptr();
        (ri, rj, ri.map(start), rj.map(start))
    }

    /// The columns past the last whole chunk, added in order to the folded lanes.
    ///
    /// # Safety
    /// `pa` and `pb` point at rows of at least `d` floats.
    #[inline(always)]
    unsafe fn finish(lanes: [f32; LANES], pa: *const f32, pb: *const f32, d: usize) -> f32 {
        let mut s = fold16(lanes);
        for k in d - d % LANES..d {
            // SAFETY: k < d (caller).
            s += unsafe { *pa.add(k) * *pb.add(k) };
        }
        s
    }

    /// [`dot_tile`](super::dot_tile) with `R = 4`.
    ///
    /// # Safety
    /// Needs AVX-512F (the rows are checked).
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub(super) unsafe fn dot_tile_avx512(
        x: &[f32],
        d: usize,
        i0: usize,
        j0: usize,
        last: usize,
        marks: &[u64],
    ) -> [[f32; 4]; 4] {
        let (ri, rj, pi, pj) = tile_rows::<4>(x, d, i0, j0, last);
        let mut acc = [[_mm512_setzero_ps(); 4]; 4];
        for o in Chunks::new(marks, d, ri, rj) {
            // SAFETY: o + 16 ≤ d, inside each row.
            let xi: [__m512; 4] = std::array::from_fn(|a| unsafe { _mm512_loadu_ps(pi[a].add(o)) });
            // SAFETY: o + 16 ≤ d, inside each row.
            let xj: [__m512; 4] = std::array::from_fn(|b| unsafe { _mm512_loadu_ps(pj[b].add(o)) });
            for (acc, &xa) in acc.iter_mut().zip(&xi) {
                for (v, &xb) in acc.iter_mut().zip(&xj) {
                    *v = _mm512_add_ps(*v, _mm512_mul_ps(xa, xb));
                }
            }
        }
        let o = d - d % LANES;
        // All 16 folds at once: each step adds, for every accumulator, the same pairs of
        // lanes as `fold16` (l + (l+8), then + 4, + 2, + 1), while shuffles pack the halves of
        // two accumulators per step; after four steps lane `4b + a` holds entry (a, b).
        let v: [__m512; 16] = std::array::from_fn(|e| acc[e / 4][e % 4]);
        let t: [__m512; 8] = std::array::from_fn(|m| {
            let (x, y) = (v[2 * m], v[2 * m + 1]);
            _mm512_add_ps(
                _mm512_shuffle_f32x4::<0b01_00_01_00>(x, y),
                _mm512_shuffle_f32x4::<0b11_10_11_10>(x, y),
            )
        });
        let u: [__m512; 4] = std::array::from_fn(|m| {
            let (x, y) = (t[2 * m], t[2 * m + 1]);
            _mm512_add_ps(
                _mm512_shuffle_f32x4::<0b10_00_10_00>(x, y),
                _mm512_shuffle_f32x4::<0b11_01_11_01>(x, y),
            )
        });
        let w: [__m512; 2] = std::array::from_fn(|m| {
            let (x, y) = (u[2 * m], u[2 * m + 1]);
            _mm512_add_ps(
                _mm512_shuffle_ps::<0b01_00_01_00>(x, y),
                _mm512_shuffle_ps::<0b11_10_11_10>(x, y),
            )
        });
        let r = _mm512_add_ps(
            _mm512_shuffle_ps::<0b10_00_10_00>(w[0], w[1]),
            _mm512_shuffle_ps::<0b11_01_11_01>(w[0], w[1]),
        );
        let mut sums = [0.0f32; LANES];
        // SAFETY: 16 floats to a 16-float array.
        unsafe { _mm512_storeu_ps(sums.as_mut_ptr(), r) };
        std::array::from_fn(|a| {
            std::array::from_fn(|b| {
                let mut s = sums[4 * b + a];
                for k in o..d {
                    // SAFETY: k < d, inside both rows (caller).
                    s += unsafe { *pi[a].add(k) * *pj[b].add(k) };
                }
                s
            })
        })
    }

    /// [`dot_tile`](super::dot_tile) with `R = 2`, 16 lanes as two ymm.
    ///
    /// # Safety
    /// Needs AVX2 (the rows are checked).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot_tile_avx2(
        x: &[f32],
        d: usize,
        i0: usize,
        j0: usize,
        last: usize,
        marks: &[u64],
    ) -> [[f32; 2]; 2] {
        let (ri, rj, pi, pj) = tile_rows::<2>(x, d, i0, j0, last);
        let mut acc = [[[_mm256_setzero_ps(); 2]; 2]; 2];
        for o in Chunks::new(marks, d, ri, rj) {
            for h in 0..2 {
                // SAFETY: o + 16 ≤ d, inside each row.
                let xi: [__m256; 2] =
                    std::array::from_fn(|a| unsafe { _mm256_loadu_ps(pi[a].add(o + 8 * h)) });
                let xj: [__m256; 2] =
                    // SAFETY: o + 16 ≤ d, inside each row.
                    std::array::from_fn(|b| unsafe { _mm256_loadu_ps(pj[b].add(o + 8 * h)) });
                for (acc, &xa) in acc.iter_mut().zip(&xi) {
                    for (v, &xb) in acc.iter_mut().zip(&xj) {
                        v[h] = _mm256_add_ps(v[h], _mm256_mul_ps(xa, xb));
                    }
                }
            }
        }
        std::array::from_fn(|a| {
            std::array::from_fn(|b| {
                let mut lanes = [0.0f32; LANES];
                // SAFETY: 2 × 8 floats to a 16-float array; rows of `d` floats (caller).
                unsafe {
                    _mm256_storeu_ps(lanes.as_mut_ptr(), acc[a][b][0]);
                    _mm256_storeu_ps(lanes.as_mut_ptr().add(8), acc[a][b][1]);
                    finish(lanes, pi[a], pj[b], d)
                }
            })
        })
    }
}

multiversion! {
    /// Pair products of rows for the squared norm of `xᵀ·g` (Frobenius), which is
    /// `Σ_ij (x_i·x_j)(g_i·g_j)` over the rows: per row `i` in `rows`,
    /// `out[i] = [t, s]` with `t = (x_i·x_i)(g_i·g_i) + 2 Σ_{j<i} (x_i·x_j)(g_i·g_j)` (so the
    /// `t` add up to the norm²) and `s = ‖x_i‖·‖g_i‖` (the `s` add up to a bound on its
    /// square root, and on the rounding of every dot). `x_marks`: which chunks of 16 of `x`'s
    /// rows have a nonzero ([`compress`](super::sparse::compress)'s marks), or empty; chunks
    /// zero in every row of a tile are skipped, which changes no bit (see `dot_tile`).
    /// `x` has rows of `dx`, `g` rows of `dg`, at least `rows.end` of each, and `rows.end`
    /// is at most [`GRAM_MAX_ROWS`]. Dots in f32 lanes as [`lane_dot`](super::simd::lane_dot),
    /// products and sums over `j` in f64, in order: `out` is the same for any split
    /// of the rows and at every level (tiles of 4 × 4 rows at AVX-512, 2 × 2 below).
    #[allow(clippy::too_many_arguments)]
    pub fn gram_rows(
        x: &[f32],
        dx: usize,
        x_marks: &[u64],
        g: &[f32],
        dg: usize,
        rows: Range<usize>,
        out: &mut [[f64; 2]],
    ) => gram_rows_avx512, gram_rows_avx2, gram_rows_body;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::Level;
    use crate::kernels::testutil::*;

    #[test]
    fn col_sums_match_reference() {
        let mut rng = Rng::new(30);
        for level in levels() {
            for &rows in &ROWS {
                // 2100 > one large block of 1024 columns: exercises the multi-block path
                for &cols in COLS.iter().chain(&[2100]) {
                    let g = rng.vec(rows * cols, -1.0, 1.0);
                    let mut out = vec![f32::NAN; cols];
                    col_sums(level, &g, rows, cols, &mut out);
                    let want: Vec<f64> = (0..cols)
                        .map(|c| (0..rows).map(|r| g[r * cols + c] as f64).sum())
                        .collect();
                    // f64 accumulation: only the final rounding to f32
                    assert_close(
                        &out,
                        &want,
                        6e-8,
                        1e-12,
                        &format!("{level:?} {rows}x{cols}"),
                    );
                }
            }
            let mut out = [1.0f32; 3];
            col_sums(level, &[], 0, 3, &mut out);
            assert_eq!(out, [0.0; 3]);
        }
    }

    #[test]
    fn sum_f64_matches_a_naive_f64_sum() {
        let mut rng = Rng::new(31);
        for level in levels() {
            for len in [0usize, 1, 63, 64, 65, 1000, 3136] {
                let x = rng.vec(len, -1e3, 1e3);
                let want: f64 = x.iter().map(|&v| v as f64).sum();
                let got = sum_f64(level, &x);
                assert!(
                    (got - want).abs() <= 1e-9 * (1.0 + want.abs()),
                    "{level:?} {len}"
                );
                // The same lanes and order as `sum_squares`: on integers (whose squares are
                // exact in f32), Σ of the squares is its value bit for bit.
                let ints: Vec<f32> = x.iter().map(|v| v.round()).collect();
                let sq: Vec<f32> = ints.iter().map(|&v| v * v).collect();
                assert_eq!(
                    sum_f64(level, &sq).to_bits(),
                    sum_squares(level, &ints).to_bits()
                );
            }
        }
    }

    #[test]
    fn sum_squares_matches_reference() {
        let mut rng = Rng::new(31);
        for level in levels() {
            for n in [0usize, 1, 3, 15, 16, 17, 31, 33, 257, 100_003] {
                let x = rng.vec(n, -2.0, 2.0);
                let want: f64 = x.iter().map(|&v| (v as f64) * (v as f64)).sum();
                let got = sum_squares(level, &x);
                assert_close1(got, want, 1e-13, 0.0, &format!("{level:?} n={n}"));
            }
            // large dynamic range stays accurate (f64 accumulation)
            let mut x = vec![1e-3f32; 1 << 20];
            x[7] = 1e4;
            let want = 1e8 + (x.len() - 1) as f64 * (1e-3f32 as f64).powi(2);
            assert_close1(sum_squares(level, &x), want, 1e-11, 0.0, "range");
        }
    }

    /// ‖xᵀ·g‖² in f64 from the product itself, and Σ_i ‖x_i‖·‖g_i‖.
    fn naive_norm_sq(x: &[f32], dx: usize, g: &[f32], dg: usize, rows: usize) -> (f64, f64) {
        let mut sq = 0.0;
        for k in 0..dx {
            for c in 0..dg {
                let v: f64 = (0..rows)
                    .map(|i| x[i * dx + k] as f64 * g[i * dg + c] as f64)
                    .sum();
                sq += v * v;
            }
        }
        let norm = |v: &[f32], i: usize, d: usize| {
            v[i * d..(i + 1) * d]
                .iter()
                .map(|&a| a as f64 * a as f64)
                .sum::<f64>()
                .sqrt()
        };
        let s = (0..rows).map(|i| norm(x, i, dx) * norm(g, i, dg)).sum();
        (sq, s)
    }

    #[test]
    fn gram_rows_give_the_norm_of_the_product_for_any_split_and_level() {
        let mut rng = Rng::new(33);
        for (rows, dx, dg) in [
            (1, 5, 3),
            (7, 33, 17),
            (32, 130, 48),
            (37, 16, 16),
            (64, 70, 9),
        ] {
            let mut x = rng.vec(rows * dx, -1.0, 1.0);
            // Mostly zeros, as on the sparse-input path, with chunks of 16 features that are
            // zero in whole tiles of rows (each group of 8 rows has its own chunks).
            for (p, v) in x.iter_mut().enumerate() {
                let (i, k) = (p / dx, p % dx);
                let keep = (k / 16 + i / 8) % 3 == 0 && p % 2 == 0;
                *v *= keep as u8 as f32;
            }
            let g = rng.vec(rows * dg, -1.0, 1.0);
            let (want, want_s) = naive_norm_sq(&x, dx, &g, dg, rows);
            // The rows' chunk marks, as the gather lists them.
            let words = crate::kernels::sparse::chunk_words(dx);
            let mut marks = vec![0u64; rows * words];
            let (mut idx, mut val) = (vec![0u32; dx + 16], vec![0f32; dx + 16]);
            for i in 0..rows {
                let m = &mut marks[i * words..(i + 1) * words];
                crate::kernels::compress(Level::Scalar, &x[i * dx..][..dx], &mut idx, &mut val, m);
            }
            let whole = |level, marks: &[u64]| {
                let mut out = vec![[f64::NAN; 2]; rows];
                gram_rows(level, &x, dx, marks, &g, dg, 0..rows, &mut out);
                bits(&out)
            };
            let base = whole(Level::Scalar, &[]);
            let got: f64 = base.iter().map(|p| f64::from_bits(p[0])).sum();
            // f32 dots: each off by ~1e-7 of ‖x_i‖‖x_j‖ (resp. of g), hence the bound in s.
            let s_sum: f64 = base.iter().map(|p| f64::from_bits(p[1])).sum();
            assert!(
                (got - want).abs() <= 1e-5 * s_sum * s_sum,
                "{rows}x{dx}x{dg}: {got} vs {want}"
            );
            assert!((s_sum - want_s).abs() <= 1e-6 * want_s, "{rows}: s");
            for level in levels() {
                // Skipping the chunks the marks show zero changes no bit either.
                for m in [&[][..], &marks] {
                    assert_eq!(whole(level, m), base, "{level:?} {rows}: levels differ");
                }
                // Any split of the rows (tile-aligned or not) gives each row the same bits.
                for cut in [1, 3, 4, rows / 2] {
                    let cut = cut.min(rows);
                    let mut out = vec![[f64::NAN; 2]; rows];
                    let (a, b) = out.split_at_mut(cut);
                    gram_rows(level, &x, dx, &marks, &g, dg, 0..cut, a);
                    gram_rows(level, &x, dx, &marks, &g, dg, cut..rows, b);
                    assert_eq!(bits(&out), base, "{level:?} {rows} cut {cut}");
                }
            }
        }
    }

    fn bits(v: &[[f64; 2]]) -> Vec<[u64; 2]> {
        v.iter().map(|p| p.map(f64::to_bits)).collect()
    }

    #[test]
    fn levels_agree_with_scalar() {
        let mut rng = Rng::new(32);
        let (rows, cols) = (33, 257);
        let g = rng.vec(rows * cols, -1.0, 1.0);
        let mut base = vec![0.0; cols];
        col_sums(Level::Scalar, &g, rows, cols, &mut base);
        let ss = sum_squares(Level::Scalar, &g);
        for level in levels() {
            let mut out = vec![0.0; cols];
            col_sums(level, &g, rows, cols, &mut out);
            assert_close(&out, &to_f64(&base), 1e-6, 1e-9, &format!("{level:?}"));
            assert_close1(
                sum_squares(level, &g),
                ss,
                1e-14,
                0.0,
                &format!("{level:?}"),
            );
        }
    }
}
