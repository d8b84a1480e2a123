//! Categorical hinge (Keras 3 `CategoricalHinge`): per sample, max(neg − pos + 1, 0) with
//! pos = Σ y·a and neg = max over columns of (1 − y)·a.

use super::{check_weights, row_weight, Batch, LossFn};
use crate::dispatch::Level;
use crate::error::Result;
use crate::settings::Settings;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CategoricalHinge;

impl LossFn for CategoricalHinge {
    fn from_settings(_: &dyn Settings) -> Result<Self> {
        Ok(CategoricalHinge)
    }

    fn sum(
        &self,
        level: Level,
        b: Batch<'_>,
        _fused: bool,
        _probs: &mut [f32],
        grad: Option<&mut [f32]>,
        scale: f32,
    ) -> f64 {
        let y = b.dense_targets();
        categorical_hinge(level, b.out, b.rows, b.cols, y, grad, scale, b.weights)
    }
}

#[inline(always)]
fn body(
    a: &[f32],
    rows: usize,
    cols: usize,
    y: &[f32],
    mut grad: Option<&mut [f32]>,
    scale: f32,
    weights: Option<&[f32]>,
) -> f64 {
    let n = rows * cols;
    assert_eq!(a.len(), n, "a length");
    assert_eq!(y.len(), n, "y length");
    check_weights(weights, rows);
    if let Some(g) = grad.as_deref() {
        assert_eq!(g.len(), n, "grad length");
    }
    let mut total = 0.0f64;
    for r in 0..rows {
        let (k, w) = row_weight(weights, r, scale);
        let ar = &a[r * cols..(r + 1) * cols];
        let yr = &y[r * cols..(r + 1) * cols];
        let mut pos = 0.0f64;
        let mut neg = f32::NEG_INFINITY;
        for (&av, &yv) in ar.iter().zip(yr) {
            pos += (yv * av) as f64;
            let v = (1.0 - yv) * av;
            if v > neg {
                neg = v;
            }
        }
        let m = neg as f64 - pos + 1.0;
        total += w * if m > 0.0 { m } else { 0.0 };
        if let Some(g) = grad.as_deref_mut() {
            // d/dm max(m, 0) is ½ at m = 0, and the max over columns shares its gradient
            // equally among tied columns, as JAX differentiates them.
            let through = if m > 0.0 {
                1.0
            } else if m == 0.0 {
                0.5
            } else {
                0.0
            };
            let ties = ar
                .iter()
                .zip(yr)
                .filter(|&(&av, &yv)| (1.0 - yv) * av == neg)
                .count()
                .max(1) as f32;
            let gr = &mut g[r * cols..(r + 1) * cols];
            for ((gv, &av), &yv) in gr.iter_mut().zip(ar).zip(yr) {
                let at_max = if (1.0 - yv) * av == neg {
                    (1.0 - yv) / ties
                } else {
                    0.0
                };
                *gv = k * (through * (at_max - yv));
            }
        }
    }
    total
}

multiversion! {
    /// Categorical hinge: per-sample max(neg − pos + 1, 0), pos = Σ y·a, neg = max (1−y)·a;
    /// grad = scale·((1 − y)·[column of the max] − y) where the hinge is active.
    /// With `weights` (one per row, Keras's `sample_weight`) it returns Σ w_r·loss_r and
    /// scales row r's gradient by `scale·w_r`; `None` weighs every row 1.
    #[allow(clippy::too_many_arguments)]
    pub fn categorical_hinge(
        a: &[f32],
        rows: usize,
        cols: usize,
        y: &[f32],
        grad: Option<&mut [f32]>,
        scale: f32,
        weights: Option<&[f32]>,
    ) -> f64 => body;
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check, Case};
    use super::*;

    #[test]
    fn matches_reference_gradient_levels_and_weights() {
        let reference = |a: &[f64], y: &[f64]| -> f64 {
            let pos: f64 = a.iter().zip(y).map(|(a, y)| a * y).sum();
            let neg = a
                .iter()
                .zip(y)
                .map(|(a, y)| (1.0 - y) * a)
                .fold(f64::NEG_INFINITY, f64::max);
            (neg - pos + 1.0).max(0.0)
        };
        check(&Case {
            loss: CategoricalHinge.into(),
            reference: &reference,
            outputs: &|rng, n| rng.vec(n, -2.0, 2.0),
            targets: &|_, n| {
                let mut y = vec![0.0; n];
                for v in y.iter_mut().step_by(3) {
                    *v = 1.0;
                }
                y
            },
            rtol: 1e-5,
        });
    }
}
