//! Reductions: column sums (bias gradients) and sums of squares (gradient norms).

// Column sums use the shared column blocks (`by_col_block!`, see `batchnorm.rs`).

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
