//! Mean squared logarithmic error (Keras 3 `MeanSquaredLogarithmicError`): per sample,
//! the mean over columns of (ln(max(a, ε) + 1) − ln(max(y, ε) + 1))².

use super::EPSILON;
use crate::kernels::math;

#[inline(always)]
fn at_least_eps(v: f32) -> f32 {
    if v > EPSILON {
        v
    } else {
        EPSILON
    }
}

#[inline(always)]
fn log1(v: f32) -> f32 {
    math::ln(at_least_eps(v) + 1.0)
}

/// d/da max(a, ε): 1 above ε, 0 below and ½ at ε (JAX's maximum splits ties).
#[inline(always)]
fn through(a: f32) -> f32 {
    if a > EPSILON {
        1.0
    } else if a == EPSILON {
        0.5
    } else {
        0.0
    }
}

elementwise_loss! {
    /// MSLE: per-sample mean over cols of (ln(max(a,ε)+1) − ln(max(y,ε)+1))²; grad through
    /// max(a, ε).
    MeanSquaredLogarithmicError,
    msle,
    mean = true,
    c = 2.0,
    term = |a: f32, y: f32| {
        let d = log1(a) - log1(y);
        d * d
    },
    deriv = |a: f32, y: f32| through(a) * (log1(a) - log1(y)) / (at_least_eps(a) + 1.0),
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
            let l = |v: f64| (v.max(eps) + 1.0).ln();
            a.iter()
                .zip(y)
                .map(|(&a, &y)| (l(a) - l(y)).powi(2))
                .sum::<f64>()
                / a.len() as f64
        };
        check(&Case {
            loss: MeanSquaredLogarithmicError.into(),
            reference: &reference,
            outputs: &|rng, n| rng.vec(n, 0.01, 5.0),
            targets: &|rng, n| rng.vec(n, 0.0, 5.0),
            rtol: 1e-5,
        });
    }
}
