//! Log-cosh (Keras 3 `LogCosh`): per sample, the mean over columns of ln cosh(a − y),
//! computed as Keras does, x + softplus(−2x) − ln 2.

use super::{mean_over_cols, Batch, LossFn};
use crate::dispatch::Level;
use crate::error::Result;
use crate::kernels::math;
use crate::settings::Settings;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LogCosh;

impl LossFn for LogCosh {
    fn from_settings(_: &dyn Settings) -> Result<Self> {
        Ok(LogCosh)
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
        log_cosh(
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
    let term = |a: f32, y: f32| {
        let x = a - y;
        x + math::softplus(x * -2.0) - std::f32::consts::LN_2
    };
    // d/dx (x + softplus(−2x)) = 1 − 2·sigmoid(−2x) (= tanh x), as autodiff of that form.
    let deriv = |a: f32, y: f32| 1.0 - 2.0 * math::sigmoid((a - y) * -2.0);
    mean_over_cols(a, rows, cols, y, grad, scale, weights, 1.0, term, deriv)
}

multiversion! {
    /// Log-cosh: per-sample mean over cols of x + softplus(−2x) − ln 2, x = a − y;
    /// grad = scale·(1 − 2·sigmoid(−2x))/cols.
    /// With `weights` (one per row, Keras's `sample_weight`) it returns Σ w_r·loss_r and
    /// scales row r's gradient by `scale·w_r`; `None` weighs every row 1.
    #[allow(clippy::too_many_arguments)]
    pub fn log_cosh(
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
            a.iter()
                .zip(y)
                .map(|(a, y)| (a - y).cosh().ln())
                .sum::<f64>()
                / a.len() as f64
        };
        check(&Case {
            loss: LogCosh.into(),
            reference: &reference,
            outputs: &|rng, n| rng.vec(n, -3.0, 3.0),
            targets: &|rng, n| rng.vec(n, -3.0, 3.0),
            rtol: 1e-5,
        });
    }
}
