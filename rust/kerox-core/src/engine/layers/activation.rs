//! `Activation`: a standalone activation (Keras's `layers.Activation`).

use crate::gemm::GemmScratch;
use crate::kernels::{self, Activation};

use super::super::sparse::FusedSgd;
use super::{Ctx, Dims, Op};
use crate::engine::VarInfo;

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

    fn forward(
        &mut self,
        ctx: &Ctx<'_>,
        dims: Dims,
        input: &[f32],
        _vars: &mut [f32],
        _infos: &[VarInfo],
        _gemm: &mut GemmScratch,
    ) {
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

    fn backward(
        &mut self,
        ctx: &Ctx<'_>,
        dims: Dims,
        input: &[f32],
        g: &mut [f32],
        _g_in: &mut [f32],
        skip_act: bool,
        _need_input_grad: bool,
        _vars: &[f32],
        _grads: &mut [f32],
        _infos: &[VarInfo],
        _gemm: &mut GemmScratch,
        _fused: Option<&mut FusedSgd<'_>>,
    ) -> bool {
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
