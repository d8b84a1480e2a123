//! Kullback-Leibler divergence (Keras 3 `KLDivergence`): per sample, the SUM over columns
//! of y·ln(y / a), with y and a clipped to [ε, 1].

use super::EPSILON;
use crate::kernels::math;

#[inline(always)]
fn clip(v: f32) -> f32 {
    v.clamp(EPSILON, 1.0)
}

/// d/da clip(a, ε, 1): 1 inside, 0 outside and ½ on a bound (JAX's clip splits ties).
#[inline(always)]
fn through(a: f32) -> f32 {
    if a > EPSILON && a < 1.0 {
        1.0
    } else if a == EPSILON || a == 1.0 {
        0.5
    } else {
        0.0
    }
}

elementwise_loss! {
    /// KL divergence: per-sample Σ over cols of clip(y)·ln(clip(y)/clip(a));
    /// grad = −scale·clip(y)/clip(a) inside the clip.
    KlDivergence,
    kl_divergence,
    mean = false,
    c = 1.0,
    term = |a: f32, y: f32| clip(y) * math::ln(clip(y) / clip(a)),
    deriv = |a: f32, y: f32| -through(a) * (clip(y) / clip(a)),
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
