//! `Dense`: `y = act(x·kernel + bias)`, kernel `(in, units)` (Keras's `layers.Dense`).
//!
//! The forward product is a GEMM, or on a first layer whose batch is mostly exact zeros the
//! sparse-input path (`engine/sparse.rs`), which then also computes the weight gradient (and
//! may apply a plain-SGD update with it); bias and activation follow in one pass over blocks
//! of rows that stay in L1.

use crate::error::{Error, Result};
use crate::gemm::{matmul_on, MatMut, MatRef};
use crate::kernels::{self, Activation};
use crate::optim::ClipElem;
use crate::team::{Disjoint, Team};

use super::super::sparse::{self, SparseCols};
use super::{add_var, all_finite, by_rows, slice, slice_mut, Backward, Ctx, Dims, Forward, Op};
use crate::dispatch::Level;
use crate::engine::VarInfo;

/// Values of `z` per block of the Dense forward's bias + activation pass (rows that also
/// receive the sparse forward's upper sums first, while in L1).
const ADD_BLOCK: usize = 4096;

pub(super) struct Dense {
    act: Activation,
    use_bias: bool,
    kernel: usize,
    bias: Option<usize>,
    trainable: bool,
    /// Pre-activation (bias included).
    z: Vec<f32>,
    /// Activation output (unused when the activation is linear: the output is `z`).
    a: Vec<f32>,
    /// Column-wise nonzero lists for the sparse-input weight gradient (first layer only).
    sparse_cols: Option<Box<SparseCols>>,
    /// The last weight gradient took the sparse-input path.
    grad_sparse: bool,
    /// The sparse-input weight gradient also sums its squares (for norm clipping).
    grad_squares: bool,
    /// The sparse-input weight gradient may leave the rows of untouched features unwritten
    /// (their gradient is zero and the update skips them).
    grad_skip_untouched: bool,
}

/// Dense's settings: Keras's `layers.Dense(units, activation, use_bias)` and the layer's
/// `trainable`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DenseSpec {
    pub units: usize,
    pub activation: Activation,
    pub use_bias: bool,
    pub trainable: bool,
}

impl Dense {
    /// Layer `index` over `in_dim` inputs; its kernel (and bias) are added to `infos`.
    pub(super) fn new(
        index: usize,
        in_dim: usize,
        spec: &DenseSpec,
        infos: &mut Vec<VarInfo>,
        offset: &mut usize,
    ) -> Result<Dense> {
        let DenseSpec {
            units,
            activation,
            use_bias,
            trainable,
        } = *spec;
        if units == 0 {
            return Err(Error::Value(format!(
                "Received an invalid value for `units`, expected a positive integer. Received: units={units} (layer {index})"
            )));
        }
        let kernel = add_var(infos, offset, vec![in_dim, units], trainable);
        let bias = use_bias.then(|| add_var(infos, offset, vec![units], trainable));
        Ok(Dense {
            act: activation,
            use_bias,
            kernel,
            bias,
            trainable,
            z: Vec::new(),
            a: Vec::new(),
            sparse_cols: None,
            grad_sparse: false,
            grad_squares: false,
            grad_skip_untouched: false,
        })
    }
}

impl Op for Dense {
    fn has_trainable(&self, infos: &[VarInfo]) -> bool {
        let t = |i: usize| infos[i].trainable;
        t(self.kernel) || self.bias.is_some_and(t)
    }

    fn output_activation(&self) -> Option<Activation> {
        Some(self.act)
    }

    fn gemm_dims(&self, rows: usize, dims: Dims) -> (usize, usize, usize) {
        (rows, dims.output, dims.input)
    }

    fn reserve(&mut self, rows: usize, dims: Dims) {
        let n = rows * dims.output;
        self.z.resize(n, 0.0);
        if self.act != Activation::Linear {
            self.a.resize(n, 0.0);
        }
        if let Some(c) = &mut self.sparse_cols {
            c.reserve(rows, dims.input, dims.output);
        }
    }

    fn output(&self, n: usize) -> &[f32] {
        if self.act == Activation::Linear {
            &self.z[..n]
        } else {
            &self.a[..n]
        }
    }

    fn logits_and_output<'a>(
        &'a mut self,
        n: usize,
        _input: &'a [f32],
    ) -> (&'a [f32], &'a mut [f32]) {
        (&self.z[..n], &mut self.a[..n])
    }

    fn forward(&mut self, ctx: &Ctx<'_>, dims: Dims, io: Forward<'_>) {
        let Forward {
            input,
            vars,
            infos,
            gemm,
        } = io;
        let rows = ctx.rows;
        let (i_d, o_d) = (dims.input, dims.output);
        let n = rows * o_d;
        let vars: &[f32] = vars;
        let w = slice(vars, infos, self.kernel);
        let z = &mut self.z[..n];
        // The sparse forward's sums over the kernel's upper rows, added to `z` below.
        let mut hi = None;
        if let (Some(x), Some(cols)) = (ctx.sparse, &mut self.sparse_cols) {
            let halves = ctx.training && rows <= sparse::HALVES_MAX_ROWS;
            let scratch = halves.then_some(&mut **cols);
            sparse::forward(ctx.level, ctx.team, x, w, o_d, z, scratch);
            hi = halves.then(|| &cols.z_hi[..n]);
        } else {
            matmul_on(
                ctx.level,
                MatMut::row_major(z, rows, o_d),
                MatRef::row_major(input, rows, i_d),
                MatRef::row_major(w, i_d, o_d),
                false,
                gemm,
                ctx.team,
                false,
            );
        }
        let bias = self.bias.map(|b| slice(vars, infos, b));
        debug_assert_eq!(bias.is_some(), self.use_bias);
        let act = if ctx.logits_only {
            Activation::Linear
        } else {
            self.act
        };
        let level = ctx.level;
        let zd = Disjoint::new(z);
        // A linear layer's output is `z` itself (`a` holds nothing).
        let a_len = if act == Activation::Linear { 0 } else { n };
        let ad = Disjoint::new(&mut self.a[..a_len]);
        by_rows(ctx.team, rows, o_d, &|r| {
            // Blocks of rows small enough to stay in L1 between the two passes.
            let step = (ADD_BLOCK / o_d.max(1)).max(1);
            for b0 in r.clone().step_by(step) {
                let b = b0..(b0 + step).min(r.end);
                let span = b.start * o_d..b.end * o_d;
                // SAFETY: every part takes its own rows of `z` and `a`.
                let z = unsafe { zd.range(span.clone()) };
                if let Some(hi) = hi {
                    kernels::add_into(level, z, &hi[span.clone()]);
                }
                if act == Activation::Linear {
                    kernels::bias_act_inplace(level, z, b.len(), o_d, bias, act);
                } else {
                    // SAFETY: as above, for `a`.
                    let a = unsafe { ad.range(span) };
                    kernels::bias_act_forward(level, z, a, b.len(), o_d, bias, act);
                }
            }
        });
    }

    fn backward(&mut self, ctx: &Ctx<'_>, dims: Dims, io: Backward<'_, '_>) -> bool {
        let Backward {
            input,
            g,
            g_in,
            skip_act,
            need_input_grad,
            vars,
            grads,
            infos,
            gemm,
            fused,
        } = io;
        let rows = ctx.rows;
        let (i_d, o_d) = (dims.input, dims.output);
        let n = rows * o_d;
        if !skip_act && self.act != Activation::Linear {
            let (level, act, z, a) = (ctx.level, self.act, &self.z[..n], &self.a[..n]);
            let gd = Disjoint::new(&mut *g);
            by_rows(ctx.team, rows, o_d, &|r| {
                let span = r.start * o_d..r.end * o_d;
                // SAFETY: every part takes its own rows of `g`.
                let g = unsafe { gd.range(span.clone()) };
                kernels::act_backward(level, g, &z[span.clone()], &a[span], r.len(), o_d, act);
            });
        }
        if self.trainable {
            if let Some(b) = self.bias {
                kernels::col_sums(ctx.level, g, rows, o_d, slice_mut(grads, infos, b));
            }
            self.grad_sparse = false;
            // A non-finite g must reach every kernel row (0·NaN is NaN): dense path.
            match (ctx.sparse, &mut self.sparse_cols) {
                (Some(x), Some(cols)) if all_finite(ctx.level, ctx.team, g, o_d) => {
                    // Norm clipping: the scale first, from the gradient's norm measured
                    // without the gradient; where that fails, the gradient is stored.
                    let norm = fused.as_ref().and_then(|f| f.norm);
                    let grads_now: &[f32] = grads;
                    let others_of = norm.map(|n| n.others);
                    let others = || others_of.map_or((), |f| f(grads_now));
                    let gram = norm.map(|_| sparse::GramOf {
                        also: &others,
                        x: input,
                        x_chunks: x.chunks(rows),
                        d: i_d,
                        g,
                        n: o_d,
                    });
                    let sq = sparse::list_columns(ctx.level, ctx.team, x, cols, rows, gram);
                    let fused = match (fused, norm) {
                        (Some(f), Some(norm)) => sq
                            .map(|sq| (sq, (norm.scale)(sq)))
                            .filter(|&(_, c)| c.is_finite())
                            .map(|(sq, c)| {
                                f.clip = ClipElem::Scale(c);
                                f.norm_sq = Some(sq);
                                f
                            }),
                        (f, _) => f,
                    };
                    let dw = slice_mut(grads, infos, self.kernel);
                    sparse::weight_grad(
                        ctx.level,
                        ctx.team,
                        x,
                        cols,
                        g,
                        o_d,
                        dw,
                        self.grad_squares,
                        self.grad_skip_untouched,
                        fused,
                    );
                    self.grad_sparse = true;
                }
                _ => matmul_on(
                    ctx.level,
                    MatMut::row_major(slice_mut(grads, infos, self.kernel), i_d, o_d),
                    MatRef::row_major(input, rows, i_d).t(),
                    MatRef::row_major(g, rows, o_d),
                    false,
                    gemm,
                    ctx.team,
                    true,
                ),
            }
        }
        if need_input_grad {
            let w = slice(vars, infos, self.kernel);
            matmul_on(
                ctx.level,
                MatMut::row_major(&mut g_in[..rows * i_d], rows, i_d),
                MatRef::row_major(g, rows, o_d),
                MatRef::row_major(w, i_d, o_d).t(),
                false,
                gemm,
                ctx.team,
                false,
            );
            return true;
        }
        false
    }

    fn enable_sparse_input(&mut self, dims: Dims) -> Option<usize> {
        if dims.output < 16 {
            return None;
        }
        self.sparse_cols = Some(Box::default());
        Some(self.kernel)
    }

    fn sparse_lists(&self) -> Option<&SparseCols> {
        self.sparse_cols.as_deref().filter(|_| self.grad_sparse)
    }

    fn plan_sparse_listing(&mut self, team: &Team, rows: usize, dims: Dims) -> Option<&SparseCols> {
        Some(self.sparse_cols.as_mut()?.plan(team, rows, dims.input))
    }

    fn set_sparse_grad_use(&mut self, squares: bool, skip_untouched: bool) {
        self.grad_squares = squares;
        self.grad_skip_untouched = skip_untouched;
    }

    fn sparse_sum_squares(&self, level: Level) -> Option<f64> {
        if !self.grad_sparse {
            return None;
        }
        self.sparse_cols.as_ref()?.sum_squares(level)
    }
}

#[cfg(test)]
mod tests {
    use super::super::check::finite_differences;
    use super::*;
    use crate::engine::LayerSpec;

    #[test]
    fn backward_matches_finite_differences() {
        for act in [
            Activation::Linear,
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::Gelu,
            Activation::Softplus,
            Activation::Softmax,
        ] {
            for use_bias in [true, false] {
                let spec = LayerSpec::Dense(DenseSpec {
                    units: 7,
                    activation: act,
                    use_bias,
                    trainable: true,
                });
                finite_differences(&spec, 5, 3, 1e-2, 2e-3);
            }
        }
    }

    #[test]
    fn zero_units_is_an_error_naming_them() {
        let spec = DenseSpec {
            units: 0,
            activation: Activation::Linear,
            use_bias: true,
            trainable: true,
        };
        let err = Dense::new(2, 4, &spec, &mut Vec::new(), &mut 0)
            .err()
            .unwrap();
        assert!(err.to_string().contains("units=0"), "{err}");
    }
}
