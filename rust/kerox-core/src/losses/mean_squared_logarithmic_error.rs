//! Mean squared logarithmic error (Keras 3 `MeanSquaredLogarithmicError`): per sample,
//! the mean over columns of (ln(max(a, ε) + 1) − ln(max(y, ε) + 1))².

use super::EPSILON;
use super::{mean_over_cols, Batch, LossFn};
use crate::dispatch::Level;
use crate::error::Result;
use crate::kernels::math;
use crate::settings::Settings;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MeanSquaredLogarithmicError;

impl LossFn for MeanSquaredLogarithmicError {
    fn from_settings(_: &dyn Settings) -> Result<Self> {
        Ok(MeanSquaredLogarithmicError)
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
        msle(
            level,
            b.out,
            b.rows,
            b.cols,
            b.dense_targets(),
            grad,
            scale,
            b.weights,
        )
    }
}

#[inline(always)]
fn body(
    a: &[f32],
    rows: usize,
    cols: usize,
    y: &[f32],
    grad: Option<&mut [f32]>,
    scale: f32,
    weights: Option<&[f32]>,
) -> f64 {
    let log1 = |v: f32| math::ln(if v > EPSILON { v } else { EPSILON } + 1.0);
    let term = |a: f32, y: f32| {
        let d = log1(a) - log1(y);
        d * d
    };
    // d/da max(a, ε) is 1 above ε, 0 below and ½ at ε (JAX's maximum splits ties).
    let deriv = |a: f32, y: f32| {
        let through = if a > EPSILON {
            1.0
        } else if a == EPSILON {
            0.5
        } else {
            0.0
        };
        through * (log1(a) - log1(y)) / (if a > EPSILON { a } else { EPSILON } + 1.0)
    };
    mean_over_cols(a, rows, cols, y, grad, scale, weights, 2.0, term, deriv)
}

multiversion! {
    /// MSLE: per-sample mean over cols of (ln(max(a,ε)+1) − ln(max(y,ε)+1))²; grad through max(a, ε).
    /// With `weights` (one per row, Keras's `sample_weight`) it returns Σ w_r·loss_r and
    /// scales row r's gradient by `scale·w_r`; `None` weighs every row 1.
    #[allow(clippy::too_many_arguments)]
    pub fn msle(
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
        use super::super::EPSILON;
        let reference = |a: &[f64], y: &[f64]| -> f64 {
            let eps = EPSILON as f64;
            let l = |v: f64| (v.max(eps) + 1.0).ln();
            a.iter()
                .zip(y)
                .map(|(&a, &y)| (l(a) - l(y)).powi(2))
                .sum::<f64>()
                / a.len() as f64
        };
        check(&Case {
            loss: MeanSquaredLogarithmicError.into(),
            reference: &reference,
            outputs: &|rng, n| rng.vec(n, 0.01, 5.0),
            targets: &|rng, n| rng.vec(n, 0.0, 5.0),
            rtol: 1e-5,
        });
    }
}
