//! Kullback-Leibler divergence (Keras 3 `KLDivergence`): per sample, the SUM over columns
//! of y·ln(y / a), with y and a clipped to [ε, 1].

use super::EPSILON;
use super::{over_cols, Batch, LossFn};
use crate::dispatch::Level;
use crate::error::Result;
use crate::kernels::math;
use crate::settings::Settings;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct KlDivergence;

impl LossFn for KlDivergence {
    fn from_settings(_: &dyn Settings) -> Result<Self> {
        Ok(KlDivergence)
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
        kl_divergence(
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
    let clip = |v: f32| v.clamp(EPSILON, 1.0);
    let term = |a: f32, y: f32| {
        let y = clip(y);
        y * math::ln(y / clip(a))
    };
    // d/da clip(a, ε, 1) is 1 inside, 0 outside and ½ on a bound (JAX's clip splits ties).
    let deriv = |a: f32, y: f32| {
        let through = if a > EPSILON && a < 1.0 {
            1.0
        } else if a == EPSILON || a == 1.0 {
            0.5
        } else {
            0.0
        };
        through * -(clip(y) / clip(a))
    };
    over_cols::<false, _, _>(a, rows, cols, y, grad, scale, weights, 1.0, term, deriv)
}

multiversion! {
    /// KL divergence: per-sample Σ over cols of clip(y)·ln(clip(y)/clip(a)); grad = −scale·clip(y)/clip(a) inside the clip.
    /// With `weights` (one per row, Keras's `sample_weight`) it returns Σ w_r·loss_r and
    /// scales row r's gradient by `scale·w_r`; `None` weighs every row 1.
    #[allow(clippy::too_many_arguments)]
    pub fn kl_divergence(
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
            let c = |v: f64| v.clamp(EPSILON as f64, 1.0);
            a.iter()
                .zip(y)
                .map(|(&a, &y)| c(y) * (c(y) / c(a)).ln())
                .sum::<f64>()
        };
        check(&Case {
            loss: KlDivergence.into(),
            reference: &reference,
            outputs: &|rng, n| rng.vec(n, 0.01, 0.99),
            targets: &|rng, n| rng.vec(n, 0.0, 1.0),
            rtol: 1e-5,
        });
    }
}
