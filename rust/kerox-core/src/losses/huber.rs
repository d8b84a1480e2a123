//! Huber (Keras 3 `Huber`): per sample, the mean over columns of ½e² where |e| ≤ δ and
//! δ·|e| − ½δ² beyond, with e = a − y.

use super::{abs_slope, mean_over_cols, Batch, LossFn};
use crate::dispatch::Level;
use crate::error::{Error, Result};
use crate::settings::Settings;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Huber {
    pub delta: f32,
}

impl Default for Huber {
    fn default() -> Self {
        Huber { delta: 1.0 }
    }
}

impl LossFn for Huber {
    fn from_settings(s: &dyn Settings) -> Result<Self> {
        Ok(Huber {
            delta: s.f64("delta")? as f32,
        })
    }

    fn validate(&self) -> Result<()> {
        // Keras accepts any delta; a non-positive one makes every error "beyond" with a
        // negative or zero slope, which is never what a user meant.
        if !(self.delta > 0.0 && self.delta.is_finite()) {
            return Err(Error::Value(format!(
                "`delta` must be a positive finite number. Received: delta={}",
                self.delta
            )));
        }
        Ok(())
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
        huber(
            level, b.out, b.rows, b.cols, y, self.delta, grad, scale, b.weights,
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
    delta: f32,
    grad: Option<&mut [f32]>,
    scale: f32,
    weights: Option<&[f32]>,
) -> f64 {
    let term = |a: f32, y: f32| {
        let e = a - y;
        if e.abs() <= delta {
            0.5 * (e * e)
        } else {
            delta * e.abs() - 0.5 * (delta * delta)
        }
    };
    let deriv = |a: f32, y: f32| {
        let e = a - y;
        if e.abs() <= delta {
            e
        } else {
            delta * abs_slope(e)
        }
    };
    mean_over_cols(a, rows, cols, y, grad, scale, weights, 1.0, term, deriv)
}

multiversion! {
    /// Huber: per-sample mean over cols of ½e² (|e| ≤ δ) or δ|e| − ½δ², e = a − y;
    /// grad = scale·(e or δ·sign(e))/cols.
    /// With `weights` (one per row, Keras's `sample_weight`) it returns Σ w_r·loss_r and
    /// scales row r's gradient by `scale·w_r`; `None` weighs every row 1.
    #[allow(clippy::too_many_arguments)]
    pub fn huber(
        a: &[f32],
        rows: usize,
        cols: usize,
        y: &[f32],
        delta: f32,
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
            let d = 0.7f32 as f64;
            a.iter()
                .zip(y)
                .map(|(a, y)| {
                    let e = (a - y).abs();
                    if e <= d {
                        0.5 * e * e
                    } else {
                        d * e - 0.5 * d * d
                    }
                })
                .sum::<f64>()
                / a.len() as f64
        };
        check(&Case {
            loss: Huber { delta: 0.7 }.into(),
            reference: &reference,
            outputs: &|rng, n| rng.vec(n, -3.0, 3.0),
            targets: &|rng, n| rng.vec(n, -3.0, 3.0),
            rtol: 1e-5,
        });
    }

    #[test]
    fn refuses_a_delta_that_is_not_positive() {
        for delta in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            let err = Huber { delta }.validate().unwrap_err().to_string();
            assert!(err.contains("delta"), "{err}");
        }
        assert!(Huber::default().validate().is_ok());
    }
}
