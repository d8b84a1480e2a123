//! Cosine similarity (Keras 3 `CosineSimilarity`, axis −1): per sample, −Σ ŷ·â, where
//! x̂ = x·min(1/‖x‖, 1/ε) is the row scaled to unit length as `ops.normalize` does. The
//! metric of the same name reports +Σ ŷ·â (`metrics/cosine_similarity.rs`).

use super::{check_weights, row_weight, Batch, LossFn, EPSILON};
use crate::dispatch::Level;
use crate::error::Result;
use crate::settings::Settings;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CosineSimilarity;

impl LossFn for CosineSimilarity {
    fn from_settings(_: &dyn Settings) -> Result<Self> {
        Ok(CosineSimilarity)
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
        cosine_similarity(level, b.out, b.rows, b.cols, y, grad, scale, b.weights)
    }
}

/// min(1/‖x‖, 1/ε) from Σ x², and whether the bound held (a row too short to scale).
#[inline(always)]
fn inv_norm(sum_squares: f64) -> (f64, bool) {
    let bound = 1.0 / EPSILON as f64;
    let inv = 1.0 / sum_squares.sqrt();
    if inv < bound {
        (inv, false)
    } else {
        (bound, true)
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
        let (mut saa, mut syy, mut say) = (0.0f64, 0.0f64, 0.0f64);
        for (&av, &yv) in ar.iter().zip(yr) {
            let (av, yv) = (av as f64, yv as f64);
            saa += av * av;
            syy += yv * yv;
            say += av * yv;
        }
        let (ia, bounded) = inv_norm(saa);
        let (iy, _) = inv_norm(syy);
        let cos = say * ia * iy;
        total -= w * cos;
        if let Some(g) = grad.as_deref_mut() {
            // d(−Σ ŷ·a·ia)/da_j = −ia·(ŷ_j − cos·â_j); with ia at its bound, −ia·ŷ_j.
            let gr = &mut g[r * cols..(r + 1) * cols];
            for ((gv, &av), &yv) in gr.iter_mut().zip(ar).zip(yr) {
                let yh = yv as f64 * iy;
                let d = if bounded {
                    yh
                } else {
                    yh - cos * (av as f64 * ia)
                };
                *gv = (-(k as f64) * ia * d) as f32;
            }
        }
    }
    total
}

multiversion! {
    /// Cosine similarity loss: per-sample −Σ ŷ·â (rows scaled to unit length, at most by
    /// 1/ε); grad = −scale·(ŷ − cos·â)/‖a‖.
    /// With `weights` (one per row, Keras's `sample_weight`) it returns Σ w_r·loss_r and
    /// scales row r's gradient by `scale·w_r`; `None` weighs every row 1.
    #[allow(clippy::too_many_arguments)]
    pub fn cosine_similarity(
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
            let n = |x: &[f64]| x.iter().map(|v| v * v).sum::<f64>().sqrt();
            -a.iter().zip(y).map(|(a, y)| a * y).sum::<f64>() / (n(a) * n(y))
        };
        check(&Case {
            loss: CosineSimilarity.into(),
            reference: &reference,
            outputs: &|rng, n| rng.vec(n, -2.0, 2.0),
            targets: &|rng, n| rng.vec_away(n, 0.1, 2.0),
            rtol: 1e-5,
        });
    }
}
