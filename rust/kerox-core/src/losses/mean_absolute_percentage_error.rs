//! Mean absolute percentage error (Keras 3 `MeanAbsolutePercentageError`): per sample,
//! 100 times the mean over columns of |(y − a) / max(|y|, ε)|.

use super::{abs_slope, EPSILON};

elementwise_loss! {
    /// MAPE: per-sample 100·mean over cols of |(y−a)/max(|y|, ε)|;
    /// grad = −scale·100·d|u|/du/(max(|y|, ε)·cols), u = (y − a)/max(|y|, ε).
    MeanAbsolutePercentageError,
    mape,
    mean = true,
    c = 100.0,
    term = |a: f32, y: f32| 100.0 * ((y - a) / y.abs().max(EPSILON)).abs(),
    deriv = |a: f32, y: f32| {
        let m = y.abs().max(EPSILON);
        -abs_slope((y - a) / m) / m
    },
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
            100.0
                * a.iter()
                    .zip(y)
                    .map(|(a, y)| ((y - a) / y.abs().max(eps)).abs())
                    .sum::<f64>()
                / a.len() as f64
        };
        check(&Case {
            loss: MeanAbsolutePercentageError.into(),
            reference: &reference,
            outputs: &|rng, n| rng.vec(n, -3.0, 3.0),
            targets: &|rng, n| rng.vec_away(n, 0.1, 3.0),
            rtol: 1e-5,
        });
    }
}
