//! Mean absolute error (Keras 3 `MeanAbsoluteError`): per sample, the mean over columns of |y − a|.

use super::sign;

elementwise_loss! {
    /// Mean absolute error: per-sample mean over cols of |y−a|; grad = scale·sign(a−y)/cols
    /// (0 where a = y, as JAX differentiates |x|).
    MeanAbsoluteError,
    mae,
    mean = true,
    c = 1.0,
    term = |a: f32, y: f32| (y - a).abs(),
    deriv = |a: f32, y: f32| sign(a - y),
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
