//! Squared hinge (Keras 3 `SquaredHinge`): per sample, the mean over columns of
//! max(1 − y·a, 0)².
//! Labels in {0, 1} are taken as {−1, 1}, as Keras does when every label of the batch is 0
//! or 1 (see [`super::hinge::hinge_labels`]).

use super::hinge::hinge_labels;
use super::{mean_over_cols, relu, Batch, LossFn};
use crate::dispatch::Level;
use crate::error::Result;
use crate::settings::Settings;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SquaredHinge;

impl LossFn for SquaredHinge {
    fn from_settings(_: &dyn Settings) -> Result<Self> {
        Ok(SquaredHinge)
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
        let binary = hinge_labels(y);
        squared_hinge(
            level, b.out, b.rows, b.cols, y, binary, grad, scale, b.weights,
        )
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn body(
    a: &[f32],
    rows: usize,
    cols: usize,
    y: &[f32],
    binary: bool,
    grad: Option<&mut [f32]>,
    scale: f32,
    weights: Option<&[f32]>,
) -> f64 {
    let label = |y: f32| if binary { 2.0 * y - 1.0 } else { y };
    let term = |a: f32, y: f32| {
        let t = label(y);
        let m = relu(1.0 - t * a);
        m * m
    };
    let deriv = |a: f32, y: f32| {
        let t = label(y);
        -t * relu(1.0 - t * a)
    };
    mean_over_cols(a, rows, cols, y, grad, scale, weights, 2.0, term, deriv)
}

multiversion! {
    /// SquaredHinge: per-sample mean over cols, with labels y (2y − 1 when `binary`);
    /// grad = −scale·2y·max(1 − y·a, 0)/cols.
    /// With `weights` (one per row, Keras's `sample_weight`) it returns Σ w_r·loss_r and
    /// scales row r's gradient by `scale·w_r`; `None` weighs every row 1.
    #[allow(clippy::too_many_arguments)]
    pub fn squared_hinge(
        a: &[f32],
        rows: usize,
        cols: usize,
        y: &[f32],
        binary: bool,
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
                .map(|(a, y)| (1.0 - y * a).max(0.0).powi(2))
                .sum::<f64>()
                / a.len() as f64
        };
        check(&Case {
            loss: SquaredHinge.into(),
            reference: &reference,
            outputs: &|rng, n| rng.vec(n, -2.0, 2.0),
            targets: &|rng, n| {
                (0..n)
                    .map(|_| if rng.below(2) == 0 { -1.0 } else { 1.0 })
                    .collect()
            },
            rtol: 1e-5,
        });
    }

    /// Labels in {0, 1} are taken as {−1, 1}: the same numbers as the converted labels.
    #[test]
    fn binary_labels_count_as_plus_minus_one() {
        let mut rng = crate::kernels::testutil::Rng::new(7);
        let (rows, cols) = (5, 3);
        let a = rng.vec(rows * cols, -2.0, 2.0);
        let y01: Vec<f32> = (0..rows * cols).map(|_| rng.below(2) as f32).collect();
        let ypm: Vec<f32> = y01.iter().map(|&v| 2.0 * v - 1.0).collect();
        let level = Level::Scalar;
        let run = |y: &[f32], binary: bool| {
            let mut g = vec![0.0; rows * cols];
            let s = squared_hinge(level, &a, rows, cols, y, binary, Some(&mut g), 0.2, None);
            (s, g)
        };
        assert!(hinge_labels(&y01) && !hinge_labels(&ypm));
        assert_eq!(run(&y01, true), run(&ypm, false));
    }
}
