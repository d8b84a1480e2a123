//! Mean absolute percentage error (Keras 3 `MeanAbsolutePercentageError`): per sample,
//! 100 times the mean over columns of |(y − a) / max(|y|, ε)|.

use super::{mean_over_cols, Batch, LossFn};
use super::{sign, EPSILON};
use crate::dispatch::Level;
use crate::error::Result;
use crate::settings::Settings;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MeanAbsolutePercentageError;

impl LossFn for MeanAbsolutePercentageError {
    fn from_settings(_: &dyn Settings) -> Result<Self> {
        Ok(MeanAbsolutePercentageError)
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
        mape(
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
    let term = |a: f32, y: f32| 100.0 * ((y - a) / y.abs().max(EPSILON)).abs();
    let deriv = |a: f32, y: f32| sign(a - y) / y.abs().max(EPSILON);
    mean_over_cols(a, rows, cols, y, grad, scale, weights, 100.0, term, deriv)
}

multiversion! {
    /// MAPE: per-sample 100·mean over cols of |(y−a)/max(|y|, ε)|; grad = scale·100·sign(a−y)/(max(|y|, ε)·cols).
    /// With `weights` (one per row, Keras's `sample_weight`) it returns Σ w_r·loss_r and
    /// scales row r's gradient by `scale·w_r`; `None` weighs every row 1.
    #[allow(clippy::too_many_arguments)]
    pub fn mape(
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
            100.0
                * a.iter()
                    .zip(y)
                    .map(|(a, y)| ((y - a) / y.abs().max(eps)).abs())
                    .sum::<f64>()
                / a.len() as f64
        };
        check(&Case {
            loss: MeanAbsolutePercentageError.into(),
            reference: &reference,
            outputs: &|rng, n| rng.vec(n, -3.0, 3.0),
            targets: &|rng, n| rng.vec_away(n, 0.1, 3.0),
            rtol: 1e-5,
        });
    }
}
