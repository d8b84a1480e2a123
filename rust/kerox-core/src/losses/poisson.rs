//! Poisson (Keras 3 `Poisson`): per sample, the mean over columns of a − y·ln(a + ε).

use super::EPSILON;
use super::{mean_over_cols, Batch, LossFn};
use crate::dispatch::Level;
use crate::error::Result;
use crate::kernels::math;
use crate::settings::Settings;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Poisson;

impl LossFn for Poisson {
    fn from_settings(_: &dyn Settings) -> Result<Self> {
        Ok(Poisson)
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
        poisson(
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
    let term = |a: f32, y: f32| a - y * math::ln(a + EPSILON);
    let deriv = |a: f32, y: f32| 1.0 - y / (a + EPSILON);
    mean_over_cols(a, rows, cols, y, grad, scale, weights, 1.0, term, deriv)
}

multiversion! {
    /// Poisson: per-sample mean over cols of a − y·ln(a + ε); grad = scale·(1 − y/(a + ε))/cols.
    /// With `weights` (one per row, Keras's `sample_weight`) it returns Σ w_r·loss_r and
    /// scales row r's gradient by `scale·w_r`; `None` weighs every row 1.
    #[allow(clippy::too_many_arguments)]
    pub fn poisson(
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
            a.iter()
                .zip(y)
                .map(|(&a, &y)| a - y * (a + eps).ln())
                .sum::<f64>()
                / a.len() as f64
        };
        check(&Case {
            loss: Poisson.into(),
            reference: &reference,
            outputs: &|rng, n| rng.vec(n, 0.05, 4.0),
            targets: &|rng, n| rng.vec(n, 0.0, 4.0),
            rtol: 1e-5,
        });
    }
}
