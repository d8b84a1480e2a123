//! Poisson (Keras 3 `Poisson`): per sample, the mean over columns of a − y·ln(a + ε).

use super::EPSILON;
use crate::kernels::math;

elementwise_loss! {
    /// Poisson: per-sample mean over cols of a − y·ln(a + ε); grad = scale·(1 − y/(a + ε))/cols.
    Poisson,
    poisson,
    mean = true,
    c = 1.0,
    term = |a: f32, y: f32| a - y * math::ln(a + EPSILON),
    deriv = |a: f32, y: f32| 1.0 - y / (a + EPSILON),
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
