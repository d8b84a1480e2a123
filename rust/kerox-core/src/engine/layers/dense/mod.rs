//! `Dense`: `y = act(x·kernel + bias)`, kernel `(in, units)` (Keras's `layers.Dense`).
//!
//! The forward product is a GEMM, or on a first layer whose batch is mostly exact zeros the
//! sparse-input path (`sparse.rs`, Dense's own), which then also computes the weight gradient
//! (and may apply a plain-SGD update with it); bias and activation follow in one pass over
//! blocks of rows that stay in L1.
//!
//! The engine knows nothing of that path: as the first layer, Dense lists the batch's
//! nonzeros while the engine loads it ([`Op::load_input`]), keeps whether its kernel is
//! finite ([`Op::vars_written`], [`Op::apply_update`]), and serves the optimizer step from
//! what the listing tells (the kernel rows whose gradient is zero, its Σ g², a fused update).

mod sparse;

use std::ops::Range;

use crate::error::{Error, Result};
use crate::gemm::{matmul_on, MatMut, MatRef};
use crate::kernels::{self, Activation};
use crate::optim::{Clip, ClipElem, OptimizerSpec};
use crate::settings::Settings;
use crate::team::{Disjoint, Team};

use super::{
    add_var, all_finite, by_rows, slice, slice_mut, update_parts, Backward, Ctx, Dims, Forward, Op,
    RowSink,
};
use crate::dispatch::Level;
use crate::engine::VarInfo;
use sparse::{SparseCols, SparseRows};

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
    /// The sparse-input path's state, when this first layer may take it.
    sparse: Option<Box<SparseInput>>,
    /// The last weight gradient took the sparse-input path.
    grad_sparse: bool,
    /// The sparse-input weight gradient also sums its squares (for norm clipping).
    grad_squares: bool,
    /// The sparse-input weight gradient may leave the rows of untouched features unwritten
    /// (their gradient is zero and the update skips them).
    grad_skip_untouched: bool,
}

/// What the sparse-input path keeps between calls.
struct SparseInput {
    /// The nonzeros of the batch loaded last, listed by row while it was loaded.
    rows: SparseRows,
    /// Column-wise nonzero lists for the weight gradient.
    cols: SparseCols,
    /// Whether the kernel is all finite (else the forward product stays dense: 0·∞ is NaN).
    kernel_finite: bool,
}

impl SparseInput {
    /// The state of a layer of `units` units allowed (`on`) the path, if wide enough.
    fn new(on: bool, units: usize) -> Option<Box<SparseInput>> {
        (on && units >= 16).then(|| {
            Box::new(SparseInput {
                rows: SparseRows::default(),
                cols: SparseCols::default(),
                kernel_finite: true,
            })
        })
    }
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

impl DenseSpec {
    /// Reads Keras's `units`, `activation`, `use_bias` and `trainable`.
    pub(in crate::engine) fn from_settings(s: &dyn Settings) -> Result<DenseSpec> {
        Ok(DenseSpec {
            units: usize::try_from(s.uint("units")?)
                .map_err(|_| Error::Value("`units` does not fit in memory".into()))?,
            activation: super::activation_setting(s)?,
            use_bias: s.flag("use_bias")?,
            trainable: s.flag("trainable")?,
        })
    }
}

impl Dense {
    /// Layer `index` over `in_dim` inputs; its kernel (and bias) are added to `infos`. The
    /// first layer (index 0) takes the sparse-input path unless `KEROX_SPARSE_INPUT=0`.
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
            sparse: SparseInput::new(index == 0 && sparse::enabled_by_env(), units),
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
        if let Some(s) = &mut self.sparse {
            s.cols.reserve(rows, dims.input, dims.output);
            s.rows.reserve(rows, dims.input);
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
        let on_path = |s: &&mut SparseInput| s.rows.active() && s.kernel_finite;
        if let Some(s) = self.sparse.as_deref_mut().filter(on_path) {
            let halves = ctx.training && rows <= sparse::HALVES_MAX_ROWS;
            let scratch = halves.then_some(&mut s.cols);
            sparse::forward(ctx.level, ctx.team, &s.rows, w, o_d, z, scratch);
            hi = halves.then(|| &s.cols.z_hi[..n]);
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
            match self.sparse.as_deref_mut().filter(|s| s.rows.active()) {
                Some(s) if all_finite(ctx.level, ctx.team, g, o_d) => {
                    let SparseInput {
                        rows: x,
                        cols,
                        kernel_finite,
                    } = s;
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
                    let mut fused = match (fused, norm) {
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
                        fused.as_deref_mut(),
                    );
                    if let Some(f) = fused.filter(|f| f.applied) {
                        // Rows not updated kept their values, finite or not.
                        *kernel_finite &= f.finite;
                    }
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

    fn set_input_fast_path(&mut self, on: bool, dims: Dims) {
        self.sparse = SparseInput::new(on, dims.output);
    }

    fn load_input(
        &mut self,
        team: &Team,
        rows: usize,
        step: bool,
        dims: Dims,
        load: &mut dyn FnMut(Option<&dyn RowSink>),
    ) {
        let Some(s) = self.sparse.as_deref_mut() else {
            return load(None);
        };
        if step {
            // Where the step's column listing will cut the features, for the load to count
            // each row's entries there.
            let planned = s.cols.plan(team, rows, dims.input);
            s.rows.set_cuts(planned.listing_cuts());
        }
        load(Some(&s.rows.writer()));
        s.rows.decide(rows);
    }

    #[cfg(test)]
    fn input_fast_path_taken(&self) -> bool {
        self.sparse.as_ref().is_some_and(|s| s.rows.active())
    }

    fn vars_written(&mut self, level: Level, vars: &[f32], infos: &[VarInfo], var: Option<usize>) {
        if let Some(s) = self.sparse.as_deref_mut() {
            if var.is_none_or(|v| v == self.kernel) {
                s.kernel_finite = kernels::all_finite(level, slice(vars, infos, self.kernel));
            }
        }
    }

    fn set_optimizer(&mut self, opt: &OptimizerSpec, penalized: &[bool]) {
        // A regularized kernel's gradient gains the penalty's after the backward pass, so
        // every row of it is written and its squares are summed then.
        let plain = !penalized.get(self.kernel).copied().unwrap_or(false);
        // The sparse-input weight gradient also sums its squares for norm clipping; under
        // gradient accumulation the clipped gradient is (g + acc)/k, whose squares it cannot
        // sum.
        self.grad_squares = plain
            && matches!(opt.clip, Clip::Norm(_) | Clip::GlobalNorm(_))
            && opt.accumulate.is_none();
        // `apply_update` skips untouched kernel rows where a zero gradient is a no-op (a NaN
        // clip scale makes every update NaN whatever the gradient, so stale rows do no harm
        // there), so their zero gradient need not be written.
        self.grad_skip_untouched = plain && opt.zero_grad_is_noop();
    }

    fn fusable_var(&self, rows: usize, norm_clip: bool, dims: Dims) -> Option<usize> {
        let s = self.sparse.as_deref()?;
        // Norm clipping measures the gradient's norm from the batch's pair products
        // ([`sparse::GramOf`]) where that costs less than storing the gradient and reading it
        // back.
        let pays = || sparse::gram_pays(rows, dims.input, dims.output, s.rows.nonzeros());
        (!norm_clip || pays()).then_some(self.kernel)
    }

    fn grad_sum_squares(&self, level: Level, var: usize) -> Option<f64> {
        if var != self.kernel || !self.grad_sparse {
            return None;
        }
        self.sparse.as_ref()?.cols.sum_squares(level)
    }

    fn apply_update(
        &mut self,
        team: &Team,
        var: usize,
        len: usize,
        zero_is_noop: bool,
        update: &(dyn Fn(Range<usize>) -> bool + Sync),
    ) -> bool {
        let Some(s) = self.sparse.as_deref_mut().filter(|_| var == self.kernel) else {
            return false;
        };
        // Where a zero gradient changes nothing, kernel rows that no input of the batch
        // touched are skipped on the sparse-input path; rows not updated kept their values,
        // finite or not.
        if zero_is_noop && self.grad_sparse {
            s.kernel_finite &= sparse::update_touched(team, len, &s.cols, update);
        } else {
            s.kernel_finite = update_parts(team, len, update);
        }
        true
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
