//! Categorical accuracy (Keras 3 `CategoricalAccuracy`): the fraction of rows whose
//! predicted class (first maximum) is the target row's. Its kernel also serves
//! `sparse_categorical_accuracy.rs`, which passes class indices.

use super::{add_to_mean, check_lengths, row_weight, MetricFn};
use crate::dispatch::Level;
use crate::error::Result;
use crate::losses::{Batch, Targets};
use crate::settings::Settings;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CategoricalAccuracy;

impl MetricFn for CategoricalAccuracy {
    fn from_settings(_: &dyn Settings) -> Result<Self> {
        Ok(CategoricalAccuracy)
    }

    fn update(&self, level: Level, b: Batch<'_>, _scratch: &mut [f32], state: &mut [f64]) {
        let hits = categorical_hits(level, b.out, b.rows, b.cols, b.targets, b.weights);
        add_to_mean(level, &b, hits, state);
    }
}

/// Index of the first maximum (NaNs never win; 0 for an all-NaN row).
#[inline(always)]
fn argmax_first(x: &[f32]) -> usize {
    let mut best = 0;
    let mut bv = f32::NEG_INFINITY;
    for (i, &v) in x.iter().enumerate() {
        if v > bv {
            bv = v;
            best = i;
        }
    }
    best
}

#[inline(always)]
fn hits_body(
    preds: &[f32],
    rows: usize,
    cols: usize,
    targets: Targets<'_>,
    weights: Option<&[f32]>,
) -> f64 {
    if !check_lengths(preds, rows, cols, weights) {
        return 0.0;
    }
    let mut total = 0.0f64;
    match targets {
        Targets::Dense(y) => {
            assert_eq!(y.len(), rows * cols, "targets length");
            let rows = preds.chunks_exact(cols).zip(y.chunks_exact(cols));
            for (r, (pr, yr)) in rows.enumerate() {
                if argmax_first(pr) == argmax_first(yr) {
                    total += row_weight(weights, r);
                }
            }
        }
        Targets::Sparse(l) => {
            assert_eq!(l.len(), rows, "labels length");
            for (r, (pr, &c)) in preds.chunks_exact(cols).zip(l).enumerate() {
                if argmax_first(pr) as i64 == c {
                    total += row_weight(weights, r);
                }
            }
        }
    }
    total
}

multiversion! {
    /// Σ of `weights[r]` (1 with `None`, i.e. the count, exact as f64) over the rows where
    /// argmax(preds row) == argmax(target row) (Dense) or == label (Sparse). First max wins
    /// on ties.
    pub fn categorical_hits(
        preds: &[f32],
        rows: usize,
        cols: usize,
        targets: Targets<'_>,
        weights: Option<&[f32]>,
    ) -> f64 => hits_body;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testutil::*;

    fn argmax_ref(x: &[f32]) -> usize {
        let mut best = 0;
        for i in 1..x.len() {
            if x[i] > x[best] {
                best = i;
            }
        }
        best
    }

    #[test]
    fn categorical_hits_match_reference() {
        let mut rng = Rng::new(20);
        for level in levels() {
            for &rows in &ROWS {
                for &cols in &COLS {
                    // coarse values so ties happen
                    let p: Vec<f32> = (0..rows * cols).map(|_| rng.below(4) as f32).collect();
                    let y: Vec<f32> = (0..rows * cols).map(|_| rng.below(3) as f32).collect();
                    let lab: Vec<i64> = (0..rows).map(|_| rng.below(cols) as i64).collect();
                    let mut want_d = 0.0;
                    let mut want_s = 0.0;
                    for r in 0..rows {
                        let pr = &p[r * cols..(r + 1) * cols];
                        let am = argmax_ref(pr);
                        want_d += f64::from(am == argmax_ref(&y[r * cols..(r + 1) * cols]));
                        want_s += f64::from(am as i64 == lab[r]);
                    }
                    assert_eq!(
                        categorical_hits(level, &p, rows, cols, Targets::Dense(&y), None),
                        want_d
                    );
                    assert_eq!(
                        categorical_hits(level, &p, rows, cols, Targets::Sparse(&lab), None),
                        want_s
                    );
                }
            }
        }
    }

    #[test]
    fn first_max_wins_on_ties() {
        for level in levels() {
            let p = [0.5f32, 0.5, 0.1, 0.2, 0.7, 0.7];
            assert_eq!(
                categorical_hits(level, &p, 2, 3, Targets::Sparse(&[0, 1]), None),
                2.0
            );
            assert_eq!(
                categorical_hits(level, &p, 2, 3, Targets::Sparse(&[1, 2]), None),
                0.0
            );
            let y = [0.0f32, 1.0, 0.0, 0.0, 1.0, 0.0];
            assert_eq!(
                categorical_hits(level, &p, 2, 3, Targets::Dense(&y), None),
                1.0
            );
            // works on logits too
            let z = [-3.0f32, -1.0, -2.0];
            assert_eq!(
                categorical_hits(level, &z, 1, 3, Targets::Sparse(&[1]), None),
                1.0
            );
        }
    }

    #[test]
    fn weighted_sums_weigh_each_row() {
        let mut rng = Rng::new(22);
        for level in levels() {
            for &rows in &ROWS {
                for &cols in &COLS {
                    let n = rows * cols;
                    let p: Vec<f32> = (0..n).map(|_| rng.below(4) as f32).collect();
                    let y: Vec<f32> = (0..n).map(|_| rng.below(2) as f32).collect();
                    let lab: Vec<i64> = (0..rows).map(|_| rng.below(cols) as i64).collect();
                    let w: Vec<f32> = (0..rows).map(|_| rng.below(5) as f32 * 0.75).collect();
                    let (mut dense, mut sparse) = (0.0f64, 0.0f64);
                    for r in 0..rows {
                        let (pr, yr) = (&p[r * cols..(r + 1) * cols], &y[r * cols..(r + 1) * cols]);
                        let wr = w[r] as f64;
                        let one = |t: Targets<'_>| categorical_hits(level, pr, 1, cols, t, None);
                        dense += wr * one(Targets::Dense(yr));
                        sparse += wr * one(Targets::Sparse(&lab[r..r + 1]));
                    }
                    let got = categorical_hits(level, &p, rows, cols, Targets::Dense(&y), Some(&w));
                    assert_eq!(got, dense, "{level:?} {rows}x{cols}");
                    let t = Targets::Sparse(&lab);
                    assert_eq!(categorical_hits(level, &p, rows, cols, t, Some(&w)), sparse);
                }
            }
        }
    }
}
