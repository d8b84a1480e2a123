//! `Dropout`: inverted dropout in training, the identity in inference (Keras's
//! `layers.Dropout`); the mask comes from a counter-based stream of the layer's seed and the
//! step (`kernels::dropout`), so it is the same for any thread count.

use crate::error::{Error, Result};
use crate::kernels;
use crate::settings::Settings;

use super::{Backward, Ctx, Dims, Forward, Op};

pub(super) struct Dropout {
    rate: f32,
    seed: u64,
    y: Vec<f32>,
    mask: Vec<f32>,
}

/// Dropout's settings: Keras's `rate` and `seed`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DropoutSpec {
    pub rate: f32,
    pub seed: u64,
}

impl DropoutSpec {
    /// Reads Keras's `rate` and `seed`.
    pub(in crate::engine) fn from_settings(s: &dyn Settings) -> Result<DropoutSpec> {
        Ok(DropoutSpec {
            rate: s.f64("rate")? as f32,
            seed: s.uint("seed")?,
        })
    }
}

impl Dropout {
    /// Layer `index`'s dropout.
    pub(super) fn new(index: usize, spec: &DropoutSpec) -> Result<Dropout> {
        let DropoutSpec { rate, seed } = *spec;
        if !(0.0..=1.0).contains(&rate) {
            return Err(Error::Value(format!(
                "Invalid value received for argument `rate`. Expected a float value between 0 and 1. Received: rate={rate}"
            )));
        }
        // Mix the layer index in so two Dropout layers with one seed still differ.
        let seed = seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Ok(Dropout {
            rate,
            seed,
            y: Vec::new(),
            mask: Vec::new(),
        })
    }
}

impl Op for Dropout {
    fn reserve(&mut self, rows: usize, dims: Dims) {
        let n = rows * dims.output;
        self.y.resize(n, 0.0);
        self.mask.resize(n, 0.0);
    }

    fn output(&self, n: usize) -> &[f32] {
        &self.y[..n]
    }

    fn forward(&mut self, ctx: &Ctx<'_>, dims: Dims, io: Forward<'_>) {
        let Forward { input, .. } = io;
        let n = ctx.rows * dims.output;
        let y = &mut self.y[..n];
        y.copy_from_slice(input);
        if ctx.training && self.rate > 0.0 {
            kernels::dropout_forward(
                ctx.level,
                y,
                &mut self.mask[..n],
                self.rate,
                self.seed,
                ctx.step,
            );
        }
    }

    fn backward(&mut self, ctx: &Ctx<'_>, dims: Dims, io: Backward<'_, '_>) -> bool {
        let Backward { g, .. } = io;
        let n = ctx.rows * dims.output;
        if self.rate > 0.0 {
            kernels::dropout_backward(ctx.level, g, &self.mask[..n]);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::super::check::finite_differences;
    use super::*;
    use crate::engine::LayerSpec;

    #[test]
    fn backward_matches_finite_differences_with_the_same_mask() {
        for rate in [0.0, 0.3, 0.7] {
            let spec = LayerSpec::Dropout(DropoutSpec { rate, seed: 5 });
            finite_differences(&spec, 9, 4, 1e-2, 1e-3);
        }
    }

    #[test]
    fn a_rate_outside_zero_one_is_an_error() {
        for rate in [-0.1, 1.5, f32::NAN] {
            assert!(
                Dropout::new(0, &DropoutSpec { rate, seed: 1 }).is_err(),
                "{rate}"
            );
        }
    }
}
