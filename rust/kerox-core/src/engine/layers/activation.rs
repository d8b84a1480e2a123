//! `Activation`: a standalone activation (Keras's `layers.Activation`).

use crate::error::{Error, Result};
use crate::kernels::{self, Activation};
use crate::settings::Settings;

use super::{Backward, Ctx, Dims, Forward, Op};

/// The `activation` setting: a built-in activation's Keras name.
pub(super) fn activation_setting(s: &dyn Settings) -> Result<Activation> {
    let name = s.text("activation")?;
    Activation::from_name(&name).ok_or_else(|| {
        Error::Value(format!(
            "Could not interpret activation function identifier: {name}"
        ))
    })
}

pub(super) struct Act {
    act: Activation,
    a: Vec<f32>,
}

impl Act {
    pub(super) fn new(act: Activation) -> Act {
        Act { act, a: Vec::new() }
    }
}

impl Op for Act {
    fn output_activation(&self) -> Option<Activation> {
        Some(self.act)
    }

    fn reserve(&mut self, rows: usize, dims: Dims) {
        self.a.resize(rows * dims.output, 0.0);
    }

    fn output(&self, n: usize) -> &[f32] {
        &self.a[..n]
    }

    fn logits_and_output<'a>(
        &'a mut self,
        n: usize,
        input: &'a [f32],
    ) -> (&'a [f32], &'a mut [f32]) {
        (input, &mut self.a[..n])
    }

    fn forward(&mut self, ctx: &Ctx<'_>, dims: Dims, io: Forward<'_>) {
        let Forward { input, .. } = io;
        // Folded into the loss: the logits are the input.
        if ctx.logits_only {
            return;
        }
        let rows = ctx.rows;
        let o_d = dims.output;
        let n = rows * o_d;
        let out = &mut self.a[..n];
        out.copy_from_slice(input);
        kernels::bias_act_inplace(ctx.level, out, rows, o_d, None, self.act);
    }

    fn backward(&mut self, ctx: &Ctx<'_>, dims: Dims, io: Backward<'_, '_>) -> bool {
        let Backward {
            input, g, skip_act, ..
        } = io;
        let rows = ctx.rows;
        let o_d = dims.output;
        let n = rows * o_d;
        if !skip_act {
            kernels::act_backward(ctx.level, g, input, &self.a[..n], rows, o_d, self.act);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::super::check::finite_differences;
    use crate::engine::LayerSpec;
    use crate::kernels::Activation;

    #[test]
    fn backward_matches_finite_differences() {
        for act in [
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::Gelu,
            Activation::Softplus,
            Activation::Silu,
            Activation::Softmax,
            Activation::Linear,
        ] {
            finite_differences(&LayerSpec::Activation(act), 6, 3, 1e-2, 2e-3);
        }
    }
}
