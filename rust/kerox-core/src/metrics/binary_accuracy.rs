//! Binary accuracy (Keras 3 `BinaryAccuracy`): per row, the fraction of elements whose
//! thresholded prediction (`p > threshold`) equals the target.

use super::{add_to_mean, check_lengths, row_weight, MetricFn};
use crate::dispatch::Level;
use crate::error::{Error, Result};
use crate::losses::Batch;
use crate::settings::Settings;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BinaryAccuracy {
    pub threshold: f32,
}

impl Default for BinaryAccuracy {
    fn default() -> Self {
        BinaryAccuracy { threshold: 0.5 }
    }
}

impl MetricFn for BinaryAccuracy {
    fn from_settings(s: &dyn Settings) -> Result<Self> {
        Ok(BinaryAccuracy {
            threshold: s.f64("threshold")? as f32,
        })
    }

    fn validate(&self) -> Result<()> {
        if self.threshold.is_nan() {
            return Err(Error::Value(
                "`threshold` must be a number. Received: threshold=nan".into(),
            ));
        }
        Ok(())
    }

    fn update(&self, level: Level, b: Batch<'_>, _scratch: &mut [f32], state: &mut [f64]) {
        let y = b.dense_targets();
        let sum = binary_accuracy_sum(level, b.out, b.rows, b.cols, y, self.threshold, b.weights);
        add_to_mean(level, &b, sum, state);
    }
}

#[inline(always)]
fn binary_acc_body(
    preds: &[f32],
    rows: usize,
    cols: usize,
    y: &[f32],
    threshold: f32,
    weights: Option<&[f32]>,
) -> f64 {
    assert_eq!(y.len(), rows * cols, "y length");
    if !check_lengths(preds, rows, cols, weights) {
        return 0.0;
    }
    let mut total = 0.0f64;
    for (r, (pr, yr)) in preds
        .chunks_exact(cols)
        .zip(y.chunks_exact(cols))
        .enumerate()
    {
        let mut count = 0u32;
        for (&p, &t) in pr.iter().zip(yr) {
            let pred = if p > threshold { 1.0f32 } else { 0.0 };
            count += (t == pred) as u32;
        }
        total += row_weight(weights, r) * (count as f64 / cols as f64);
    }
    total
}

multiversion! {
    /// Σ over rows of `weights[r]` (1 with `None`) times the mean over cols of
    /// [y == (p > threshold) as f32] (Keras BinaryAccuracy).
    pub fn binary_accuracy_sum(
        preds: &[f32],
        rows: usize,
        cols: usize,
        y: &[f32],
        threshold: f32,
        weights: Option<&[f32]>,
    ) -> f64 => binary_acc_body;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testutil::*;

    #[test]
    fn binary_accuracy_matches_reference() {
        let mut rng = Rng::new(21);
        for level in levels() {
            for &rows in &ROWS {
                for &cols in &COLS {
                    let n = rows * cols;
                    let mut p = rng.vec(n, 0.0, 1.0);
                    p[0] = 0.5; // exactly at the threshold → predicted 0
                    let y: Vec<f32> = (0..n).map(|_| (rng.next_u64() & 1) as f32).collect();
                    let mut want = 0.0f64;
                    for r in 0..rows {
                        let mut c = 0;
                        for j in 0..cols {
                            let i = r * cols + j;
                            let pred = if p[i] > 0.5 { 1.0 } else { 0.0 };
                            c += (y[i] == pred) as usize;
                        }
                        want += c as f64 / cols as f64;
                    }
                    let got = binary_accuracy_sum(level, &p, rows, cols, &y, 0.5, None);
                    assert!(
                        (got - want).abs() < 1e-12,
                        "{level:?} {rows}x{cols}: {got} vs {want}"
                    );
                }
            }
            // strict threshold, and non-0/1 targets never match
            let got =
                binary_accuracy_sum(level, &[0.5, 0.6, 0.9], 1, 3, &[0.0, 1.0, 0.7], 0.5, None);
            assert!((got - 2.0 / 3.0).abs() < 1e-12);
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
                    let w: Vec<f32> = (0..rows).map(|_| rng.below(5) as f32 * 0.75).collect();
                    let mut binary = 0.0f64;
                    for r in 0..rows {
                        let (pr, yr) = (&p[r * cols..(r + 1) * cols], &y[r * cols..(r + 1) * cols]);
                        binary +=
                            w[r] as f64 * binary_accuracy_sum(level, pr, 1, cols, yr, 1.5, None);
                    }
                    let got = binary_accuracy_sum(level, &p, rows, cols, &y, 1.5, Some(&w));
                    assert!((got - binary).abs() < 1e-12, "{level:?} {rows}x{cols}");
                    // Weights of 1: the plain sums.
                    let ones = vec![1.0f32; rows];
                    assert_eq!(
                        binary_accuracy_sum(level, &p, rows, cols, &y, 1.5, Some(&ones)),
                        binary_accuracy_sum(level, &p, rows, cols, &y, 1.5, None)
                    );
                }
            }
        }
    }
}
