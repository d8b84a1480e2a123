//! Mean absolute error (Keras 3 `MeanAbsoluteError`): per sample, the mean over columns of |y − a|.

use super::sign;
use super::{mean_over_cols, Batch, LossFn};
use crate::dispatch::Level;
use crate::error::Result;
use crate::settings::Settings;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MeanAbsoluteError;

impl LossFn for MeanAbsoluteError {
    fn from_settings(_: &dyn Settings) -> Result<Self> {
        Ok(MeanAbsoluteError)
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
        mae(
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
    let term = |a: f32, y: f32| (y - a).abs();
    let deriv = |a: f32, y: f32| sign(a - y);
    mean_over_cols(a, rows, cols, y, grad, scale, weights, 1.0, term, deriv)
}

multiversion! {
    /// Mean absolute error: per-sample mean over cols of |y−a|; grad = scale·sign(a−y)/cols (0 where a = y, as JAX differentiates |x|).
    /// With `weights` (one per row, Keras's `sample_weight`) it returns Σ w_r·loss_r and
    /// scales row r's gradient by `scale·w_r`; `None` weighs every row 1.
    #[allow(clippy::too_many_arguments)]
    pub fn mae(
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
            a.iter().zip(y).map(|(a, y)| (y - a).abs()).sum::<f64>() / a.len() as f64
        };
        check(&Case {
            loss: MeanAbsoluteError.into(),
            reference: &reference,
            outputs: &|rng, n| rng.vec(n, -3.0, 3.0),
            targets: &|rng, n| rng.vec(n, -3.0, 3.0),
            rtol: 1e-5,
        });
    }
}
