//! Products whose left operand is mostly zeros: the input batch of a first Dense layer on data
//! like MNIST (about four pixels in five are exactly 0).
//!
//! A row's nonzeros are listed once ([`compress`]), and then every output row is a sum of
//! scaled rows of the right operand, one per nonzero ([`combine_rows`]): zeros cost nothing.
//! The same kernel computes the forward product (`x·W`: one input row's nonzeros pick rows of
//! `W`) and the weight gradient (`xᵀ·g`: one input *column*'s nonzeros pick rows of `g`).
//! Terms are added in the order they are listed (increasing index), so each output element is
//! computed the same way whichever thread computes it.

use super::optim::{ClipElem, SgdStep};
use crate::dispatch::Level;

/// Column blocks whose accumulators stay in registers across the whole list of terms
/// (64 floats: four zmm or eight ymm registers).
const WIDE: usize = 64;
const NARROW: usize = 16;

/// Entries a [`compress`] destination needs beyond the source length (the SIMD paths store
/// whole vectors).
pub const COMPRESS_PAD: usize = 16;

/// Lists the entries of `src` that are not exactly zero (NaN included), in increasing index
/// order: `idx[..n]` their positions, `val[..n]` their values. Returns `n`. `idx` and `val`
/// must hold `src.len() + COMPRESS_PAD` entries (what lies past `n` is unspecified).
pub fn compress(level: Level, src: &[f32], idx: &mut [u32], val: &mut [f32]) -> usize {
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
        Level::Avx512 => return unsafe { x86::compress_avx512(src, idx, val) },
        // SAFETY: as above, for AVX2.
        Level::Avx2 => return unsafe { x86::compress_avx2(src, idx, val) },
        Level::Scalar => {}
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = level;
    compress_scalar(src, idx, val, 0, 0)
}

/// Lists the nonzeros of `src[start..]` from slot `n` on; returns the new count.
fn compress_scalar(
    src: &[f32],
    idx: &mut [u32],
    val: &mut [f32],
    start: usize,
    mut n: usize,
) -> usize {
    for (j, &v) in src.iter().enumerate().skip(start) {
        // `!=` is also true for NaN, which must propagate.
        if v != 0.0 {
            idx[n] = j as u32;
            val[n] = v;
            n += 1;
        }
    }
    n
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// # Safety
    /// Needs AVX-512F; `idx` and `val` hold at least `src.len() + 16` entries.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn compress_avx512(src: &[f32], idx: &mut [u32], val: &mut [f32]) -> usize {
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
                }
            }
            pos = _mm512_add_epi32(pos, step);
        }
        super::compress_scalar(src, idx, val, chunks * 16, n)
    }

    /// # Safety
    /// Needs AVX2; `idx` and `val` hold at least `src.len()` entries.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn compress_avx2(src: &[f32], idx: &mut [u32], val: &mut [f32]) -> usize {
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
            while m != 0 {
                let q = m.trailing_zeros() as usize;
                idx[n] = (base + q) as u32;
                val[n] = src[base + q];
                n += 1;
                m &= m - 1;
            }
        }
        super::compress_scalar(src, idx, val, chunks * 16, n)
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
fn combine_body<const SQ: bool>(
    idx: &[u32],
    val: &[f32],
    b: &[f32],
    n: usize,
    out: &mut [f32],
) -> f32 {
    check_lists("combine_rows", idx, val, b, n);
    assert_eq!(out.len(), n, "combine_rows: out length");
    let mut j = 0;
    while j + WIDE <= n {
        block::<WIDE>(idx, val, b, n, j, &mut out[j..]);
        j += WIDE;
    }
    while j + NARROW <= n {
        block::<NARROW>(idx, val, b, n, j, &mut out[j..]);
        j += NARROW;
    }
    while j < n {
        block::<1>(idx, val, b, n, j, &mut out[j..]);
        j += 1;
    }
    if !SQ {
        return 0.0;
    }
    // Σ out² from the row just written (in L1), over 16 lanes folded pairwise (`fold16`).
    let mut sq = [0.0f32; 16];
    let chunks = out.chunks_exact(16);
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
fn combine_rows_body(idx: &[u32], val: &[f32], b: &[f32], n: usize, out: &mut [f32]) {
    combine_body::<false>(idx, val, b, n, out);
}

#[inline(always)]
fn combine_rows_sq_body(idx: &[u32], val: &[f32], b: &[f32], n: usize, out: &mut [f32]) -> f32 {
    combine_body::<true>(idx, val, b, n, out)
}

/// [`block`], then the plain-SGD update of `w[j..][..CB]` with the result as its gradient;
/// ORs the bits of `w − w` (zero iff finite) of the updated weights into `bits`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn block_sgd<const CB: usize>(
    idx: &[u32],
    val: &[f32],
    b: &[f32],
    n: usize,
    j: usize,
    w: &mut [f32],
    clip: ClipElem,
    step: &SgdStep,
    bits: &mut u32,
) {
    let mut acc = [0.0f32; CB];
    block::<CB>(idx, val, b, n, j, &mut acc);
    let w = &mut w[j..][..CB];
    super::optim::sgd_body(w, &acc, None, clip, step);
    for v in w.iter() {
        #[allow(clippy::eq_op)]
        {
            *bits |= (*v - *v).to_bits();
        }
    }
}

#[inline(always)]
fn combine_rows_sgd_body(
    idx: &[u32],
    val: &[f32],
    b: &[f32],
    n: usize,
    w: &mut [f32],
    clip: ClipElem,
    step: &SgdStep,
) -> bool {
    check_lists("combine_rows_sgd", idx, val, b, n);
    assert_eq!(w.len(), n, "combine_rows_sgd: weight row length");
    assert!(
        step.momentum == 0.0 && step.weight_decay.is_none(),
        "combine_rows_sgd: plain SGD only"
    );
    let mut bits = 0u32;
    let mut j = 0;
    while j + WIDE <= n {
        block_sgd::<WIDE>(idx, val, b, n, j, w, clip, step, &mut bits);
        j += WIDE;
    }
    while j + NARROW <= n {
        block_sgd::<NARROW>(idx, val, b, n, j, w, clip, step, &mut bits);
        j += NARROW;
    }
    while j < n {
        block_sgd::<1>(idx, val, b, n, j, w, clip, step, &mut bits);
        j += 1;
    }
    bits == 0
}

multiversion! {
    /// Plain SGD on one weight row with a gradient row it computes in registers: with
    /// `d[c] = Σ_t val[t] · b[idx[t], c]` (as [`combine_rows`] computes it),
    /// `w[c] ← w[c] − clip(d[c])·lr` (as [`super::sgd_update`] computes it, momentum 0 and
    /// no weight decay, asserted). The gradient row is never stored. Returns whether every
    /// updated weight is finite.
    #[allow(clippy::too_many_arguments)]
    pub fn combine_rows_sgd(
        idx: &[u32],
        val: &[f32],
        b: &[f32],
        n: usize,
        w: &mut [f32],
        clip: ClipElem,
        step: &SgdStep
    ) -> bool => combine_rows_sgd_body;
}

multiversion! {
    /// `out[c] = Σ_t val[t] · b[idx[t], c]` for the `n` columns of row-major `b`, terms added
    /// in the order listed (each as a product, then a sum: no fused multiply-add), from +0.
    pub fn combine_rows(idx: &[u32], val: &[f32], b: &[f32], n: usize, out: &mut [f32])
        => combine_rows_body;
}

multiversion! {
    /// [`combine_rows`], also returning Σ_c out[c]² (in f32, over 16 lanes added pairwise:
    /// the same for the same inputs on any thread; for gradient norms).
    pub fn combine_rows_sq(idx: &[u32], val: &[f32], b: &[f32], n: usize, out: &mut [f32]) -> f32
        => combine_rows_sq_body;
}

#[inline(always)]
fn all_finite_body(x: &[f32]) -> bool {
    // v − v is +0 (all bits clear) for finite v and NaN for ±∞ and NaN: OR the bits (an
    // integer reduction, which the compiler may reorder and vectorise).
    #[allow(clippy::eq_op)]
    let bits = x.iter().fold(0u32, |acc, &v| acc | (v - v).to_bits());
    bits == 0
}

multiversion! {
    /// Whether every element of `x` is finite.
    pub fn all_finite(x: &[f32]) -> bool => all_finite_body;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::optim::sgd_update;
    use crate::kernels::testutil::*;

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
                let n = compress(level, &src, &mut idx, &mut val);
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
                // With the sum of squares: the same outputs, and Σ out² to f32 rounding.
                let mut out2 = vec![f32::NAN; n];
                let sq = combine_rows_sq(level, &idx, &val, &b, n, &mut out2);
                assert!(out
                    .iter()
                    .zip(&out2)
                    .all(|(a, b)| a.to_bits() == b.to_bits()));
                let want: f64 = out.iter().map(|&v| v as f64 * v as f64).sum();
                assert!(
                    (sq as f64 - want).abs() <= 1e-6 * want,
                    "{level:?} n {n}: {sq} vs {want}"
                );
                // No terms: +0 everywhere.
                combine_rows(level, &[], &[], &b, n, &mut out);
                assert!(out.iter().all(|v| v.to_bits() == 0));
            }
        }
    }

    #[test]
    fn combine_rows_sgd_is_combine_then_sgd_update_bit_for_bit() {
        for level in levels() {
            for n in [1usize, 16, 63, 64, 100, 256] {
                let b: Vec<f32> = dense_rows(20, n, 1.0, 40 + n as u64);
                let idx: Vec<u32> = vec![1, 2, 7, 19];
                let val: Vec<f32> = vec![0.25, -3.0, 1.5, 40.0];
                let w0 = dense_rows(1, n, 1.0, 50 + n as u64);
                for clip in [ClipElem::None, ClipElem::Value(0.5)] {
                    let step = SgdStep {
                        lr: 0.03,
                        momentum: 0.0,
                        nesterov: false,
                        weight_decay: None,
                    };
                    let mut d = vec![0.0f32; n];
                    combine_rows(level, &idx, &val, &b, n, &mut d);
                    let mut want = w0.clone();
                    sgd_update(level, &mut want, &d, None, clip, &step);
                    let mut got = w0.clone();
                    assert!(combine_rows_sgd(
                        level, &idx, &val, &b, n, &mut got, clip, &step
                    ));
                    for c in 0..n {
                        assert_eq!(
                            got[c].to_bits(),
                            want[c].to_bits(),
                            "{level:?} n {n} {clip:?} c {c}"
                        );
                    }
                    // A non-finite weight anywhere in the row is reported.
                    let mut inf = w0.clone();
                    inf[n - 1] = f32::INFINITY;
                    assert!(!combine_rows_sgd(
                        level, &idx, &val, &b, n, &mut inf, clip, &step
                    ));
                    let mut nan = w0.clone();
                    nan[0] = f32::NAN;
                    assert!(!combine_rows_sgd(
                        level, &idx, &val, &b, n, &mut nan, clip, &step
                    ));
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
                let nz = compress(level, &a[i * k..(i + 1) * k], &mut idx, &mut val);
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
