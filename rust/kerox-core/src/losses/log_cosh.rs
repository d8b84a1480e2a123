//! Log-cosh (Keras 3 `LogCosh`): per sample, the mean over columns of ln cosh(a − y),
//! computed as Keras does, x + softplus(−2x) − ln 2.

use crate::kernels::math;

elementwise_loss! {
    /// Log-cosh: per-sample mean over cols of x + softplus(−2x) − ln 2, x = a − y;
    /// grad = scale·(1 − 2·sigmoid(−2x))/cols, the autodiff of that form (= tanh x).
    LogCosh,
    log_cosh,
    mean = true,
    c = 1.0,
    term = |a: f32, y: f32| {
        let x = a - y;
        x + math::softplus(x * -2.0) - std::f32::consts::LN_2
    },
    deriv = |a: f32, y: f32| 1.0 - 2.0 * math::sigmoid((a - y) * -2.0),
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
