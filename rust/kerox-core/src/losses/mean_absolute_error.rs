//! Mean absolute error (Keras 3 `MeanAbsoluteError`): per sample, the mean over columns of |y − a|.

use super::abs_slope;

elementwise_loss! {
    /// Mean absolute error: per-sample mean over cols of |y−a|; grad = −scale·d|u|/du/cols, u = y − a
    /// (d|u|/du is 1 at u = 0, as JAX differentiates |x|).
    MeanAbsoluteError,
    mae,
    mean = true,
    c = 1.0,
    term = |a: f32, y: f32| (y - a).abs(),
    deriv = |a: f32, y: f32| -abs_slope(y - a),
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

    /// Where a = y, JAX's d|u|/du is 1, so the gradient is −scale/cols (not 0).
    #[test]
    fn gradient_at_equal_values_is_jaxs() {
        let (a, y) = ([1.5f32, -2.0], [1.5f32, 0.0]);
        let mut g = [0.0f32; 2];
        mae(
            crate::dispatch::Level::Scalar,
            &a,
            1,
            2,
            &y,
            Some(&mut g),
            1.0,
            None,
        );
        assert_eq!(g, [-0.5, -0.5]);
    }
}
