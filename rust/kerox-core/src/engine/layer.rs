//! The layers of the engine: forward and backward over preallocated buffers.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::dispatch::Level;
use crate::error::{Error, Result};
use crate::gemm::{matmul_on, GemmScratch, MatMut, MatRef};
use crate::kernels::{self, Activation};
use crate::optim::ClipElem;
use crate::team::{Disjoint, Team};

use super::sparse::{self, FusedSgd, SparseCols, SparseRows};
use super::{LayerSpec, VarInfo};

/// What every layer call needs to know about the current step.
#[derive(Clone, Copy)]
pub(super) struct Ctx<'t> {
    pub level: Level,
    /// The threads of this engine call.
    pub team: &'t Team,
    pub rows: usize,
    pub training: bool,
    /// The dropout masks' stream: the optimizer step in training steps, a stream of its own
    /// per `forward_training` call.
    pub step: u64,
    /// The batch's nonzeros, when this layer reads the input batch and may take the
    /// sparse-input path (see `sparse.rs`).
    pub sparse: Option<&'t SparseRows>,
    /// The loss applies this layer's activation (a training step whose output activation is
    /// folded into the loss, see `Engine::loss_and_grad`): the forward computes the logits
    /// only, and the loss writes the activation's output itself.
    pub logits_only: bool,
}

/// Buffers shared by the whole stack, sized for `capacity` rows.
#[derive(Default)]
pub(super) struct Workspace {
    pub capacity: usize,
    /// The gathered input batch, `capacity × input_dim`.
    pub x: Vec<f32>,
    /// Dense targets, `capacity × output_dim`.
    pub y: Vec<f32>,
    /// Sparse targets.
    pub labels: Vec<i64>,
    /// Scratch probabilities for losses on logits outputs.
    pub probs: Vec<f32>,
    /// Ping-pong gradient buffers, `capacity × widest layer`.
    pub g: [Vec<f32>; 2],
    /// Sample indices of the current batch.
    pub index: Vec<usize>,
    /// The batch's nonzeros, listed when the first layer can take the sparse-input path.
    pub sparse: SparseRows,
    /// The loss's sums over chunks of rows (see `Engine::loss_and_grad`).
    pub loss_sums: Vec<f64>,
    /// The batch's sample weights, `capacity` (valid when `weighted`).
    pub w: Vec<f32>,
    /// Whether the loaded batch has sample weights.
    pub weighted: bool,
}

impl Workspace {
    pub fn reserve(&mut self, rows: usize, input_dim: usize, output_dim: usize, width: usize) {
        if rows <= self.capacity {
            return;
        }
        self.capacity = rows;
        self.x.resize(rows * input_dim, 0.0);
        self.y.resize(rows * output_dim, 0.0);
        self.labels.resize(rows, 0);
        self.w.resize(rows, 0.0);
        self.probs.resize(rows * output_dim, 0.0);
        self.loss_sums.resize(rows.div_ceil(super::LOSS_CHUNK), 0.0);
        for g in &mut self.g {
            g.resize(rows * width, 0.0);
        }
        self.index
            .reserve(rows.saturating_sub(self.index.capacity()));
    }
}

struct Dense {
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

struct BatchNorm {
    momentum: f32,
    eps: f32,
    /// False = frozen: inference mode even in training (Keras 3).
    trainable: bool,
    gamma: Option<usize>,
    beta: Option<usize>,
    moving_mean: usize,
    moving_var: usize,
    y: Vec<f32>,
    mean: Vec<f32>,
    var: Vec<f32>,
    inv_std: Vec<f32>,
}

struct Act {
    act: Activation,
    a: Vec<f32>,
}

struct Dropout {
    rate: f32,
    seed: u64,
    y: Vec<f32>,
    mask: Vec<f32>,
}

enum Kind {
    Dense(Dense),
    BatchNorm(BatchNorm),
    Act(Act),
    Dropout(Dropout),
}

/// One layer with its own output buffers.
pub(super) struct Layer {
    in_dim: usize,
    out_dim: usize,
    kind: Kind,
}

fn add_var(
    infos: &mut Vec<VarInfo>,
    offset: &mut usize,
    shape: Vec<usize>,
    trainable: bool,
) -> usize {
    let len = shape.iter().product();
    infos.push(VarInfo {
        shape,
        offset: *offset,
        len,
        trainable,
    });
    *offset += len;
    infos.len() - 1
}

/// Values of `z` per block of the Dense forward's bias + activation pass (rows that also
/// receive the sparse forward's upper sums first, while in L1).
const ADD_BLOCK: usize = 4096;

/// Runs `f` over the team's parts of `rows` rows of `cols` values, for element-wise passes
/// over a layer's activations: at least 1/16 of the GEMM's split threshold per part (16K
/// values by default: a batch of 32 rows of 256 stays on one thread, 512 rows split; tests
/// that lower the threshold split everything).
fn by_rows(team: &Team, rows: usize, cols: usize, f: &(dyn Fn(Range<usize>) + Sync)) {
    let min_part = crate::gemm::par_min_fmas() / 16;
    team.for_ranges(rows, (min_part / cols.max(1)).max(1), 1, f);
}

/// Whether every value of `g` (rows of `cols`) is finite, checked by the team's parts.
fn all_finite(level: Level, team: &Team, g: &[f32], cols: usize) -> bool {
    let bad = AtomicBool::new(false);
    by_rows(team, g.len() / cols.max(1), cols, &|r| {
        if !kernels::all_finite(level, &g[r.start * cols..r.end * cols]) {
            bad.store(true, Ordering::Relaxed);
        }
    });
    !bad.into_inner()
}

fn slice<'a>(vars: &'a [f32], infos: &[VarInfo], i: usize) -> &'a [f32] {
    let v = &infos[i];
    &vars[v.offset..v.offset + v.len]
}

fn slice_mut<'a>(vars: &'a mut [f32], infos: &[VarInfo], i: usize) -> &'a mut [f32] {
    let v = &infos[i];
    &mut vars[v.offset..v.offset + v.len]
}

impl Layer {
    pub fn new(
        index: usize,
        spec: &LayerSpec,
        in_dim: usize,
        infos: &mut Vec<VarInfo>,
        offset: &mut usize,
    ) -> Result<Layer> {
        let (out_dim, kind) = match *spec {
            LayerSpec::Dense {
                units,
                activation,
                use_bias,
                trainable,
            } => {
                if units == 0 {
                    return Err(Error::Value(format!(
                        "Received an invalid value for `units`, expected a positive integer. Received: units={units} (layer {index})"
                    )));
                }
                let kernel = add_var(infos, offset, vec![in_dim, units], trainable);
                let bias = use_bias.then(|| add_var(infos, offset, vec![units], trainable));
                (
                    units,
                    Kind::Dense(Dense {
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
                    }),
                )
            }
            LayerSpec::BatchNorm {
                momentum,
                epsilon,
                center,
                scale,
                trainable,
            } => {
                if !momentum.is_finite() || !epsilon.is_finite() || epsilon < 0.0 {
                    return Err(Error::Value(format!(
                        "BatchNormalization needs a finite momentum and a non-negative epsilon. Received: momentum={momentum}, epsilon={epsilon}"
                    )));
                }
                let gamma = scale.then(|| add_var(infos, offset, vec![in_dim], trainable));
                let beta = center.then(|| add_var(infos, offset, vec![in_dim], trainable));
                let moving_mean = add_var(infos, offset, vec![in_dim], false);
                let moving_var = add_var(infos, offset, vec![in_dim], false);
                (
                    in_dim,
                    Kind::BatchNorm(BatchNorm {
                        momentum,
                        eps: epsilon,
                        trainable,
                        gamma,
                        beta,
                        moving_mean,
                        moving_var,
                        y: Vec::new(),
                        mean: vec![0.0; in_dim],
                        var: vec![0.0; in_dim],
                        inv_std: vec![0.0; in_dim],
                    }),
                )
            }
            LayerSpec::Activation(act) => (in_dim, Kind::Act(Act { act, a: Vec::new() })),
            LayerSpec::Dropout { rate, seed } => {
                if !(0.0..=1.0).contains(&rate) {
                    return Err(Error::Value(format!(
                        "Invalid value received for argument `rate`. Expected a float value between 0 and 1. Received: rate={rate}"
                    )));
                }
                // Mix the layer index in so two Dropout layers with one seed still differ.
                let seed = seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                (
                    in_dim,
                    Kind::Dropout(Dropout {
                        rate,
                        seed,
                        y: Vec::new(),
                        mask: Vec::new(),
                    }),
                )
            }
        };
        Ok(Layer {
            in_dim,
            out_dim,
            kind,
        })
    }

    pub fn out_dim(&self) -> usize {
        self.out_dim
    }

    /// Whether any variable of this layer is updated by the optimizer.
    pub fn has_trainable(&self, infos: &[VarInfo]) -> bool {
        let t = |i: usize| infos[i].trainable;
        match &self.kind {
            Kind::Dense(d) => t(d.kernel) || d.bias.is_some_and(t),
            Kind::BatchNorm(b) => b.gamma.is_some_and(t) || b.beta.is_some_and(t),
            Kind::Act(_) | Kind::Dropout(_) => false,
        }
    }

    /// The activation applied last by this layer, if it can be folded into the loss.
    pub fn output_activation(&self) -> Option<Activation> {
        match &self.kind {
            Kind::Dense(d) => Some(d.act),
            Kind::Act(a) => Some(a.act),
            _ => None,
        }
    }

    /// The kernel's variable index of a Dense layer wide enough for the sparse-input path,
    /// which this call enables for it (the engine does so for the first layer only).
    pub fn enable_sparse_input(&mut self) -> Option<usize> {
        match &mut self.kind {
            Kind::Dense(d) if self.out_dim >= 16 => {
                d.sparse_cols = Some(Box::default());
                Some(d.kernel)
            }
            _ => None,
        }
    }

    /// After a sparse-input weight gradient: its batch's column lists, which tell per kernel
    /// row whether its gradient may be nonzero (rows not touched are exactly zero).
    pub fn sparse_lists(&self) -> Option<&SparseCols> {
        match &self.kind {
            Kind::Dense(d) if d.grad_sparse => d.sparse_cols.as_deref(),
            _ => None,
        }
    }

    /// [`SparseCols::plan`] for the next training batch of `rows` rows, if sparse-input.
    pub fn plan_sparse_listing(&mut self, team: &Team, rows: usize) -> Option<&SparseCols> {
        let cols = self.in_dim;
        match &mut self.kind {
            Kind::Dense(d) => Some(d.sparse_cols.as_mut()?.plan(team, rows, cols)),
            _ => None,
        }
    }

    /// How the sparse-input weight gradient is used: whether it also sums its squares (for
    /// norm clipping), and whether the update skips the kernel rows no input touched (plain
    /// SGD), so their zero gradient need not be written.
    pub fn set_sparse_grad_use(&mut self, squares: bool, skip_untouched: bool) {
        if let Kind::Dense(d) = &mut self.kind {
            d.grad_squares = squares;
            d.grad_skip_untouched = skip_untouched;
        }
    }

    /// Σ of the last weight gradient's squares, when the sparse-input path computed it.
    pub fn sparse_sum_squares(&self, level: Level) -> Option<f64> {
        match &self.kind {
            Kind::Dense(d) if d.grad_sparse => d.sparse_cols.as_ref()?.sum_squares(level),
            _ => None,
        }
    }

    /// (m, n, k) of this layer's forward product at `rows` rows.
    pub fn gemm_dims(&self, rows: usize) -> (usize, usize, usize) {
        match self.kind {
            Kind::Dense(_) => (rows, self.out_dim, self.in_dim),
            _ => (0, 0, 0),
        }
    }

    /// Grows the output buffers to `rows` rows.
    pub fn reserve(&mut self, rows: usize) {
        let n = rows * self.out_dim;
        match &mut self.kind {
            Kind::Dense(d) => {
                d.z.resize(n, 0.0);
                if d.act != Activation::Linear {
                    d.a.resize(n, 0.0);
                }
                if let Some(c) = &mut d.sparse_cols {
                    c.reserve(rows, self.in_dim, self.out_dim);
                }
            }
            Kind::BatchNorm(b) => b.y.resize(n, 0.0),
            Kind::Act(a) => a.a.resize(n, 0.0),
            Kind::Dropout(d) => {
                d.y.resize(n, 0.0);
                d.mask.resize(n, 0.0);
            }
        }
    }

    /// This layer's output for the current `rows` rows.
    pub fn output(&self, rows: usize) -> &[f32] {
        let n = rows * self.out_dim;
        match &self.kind {
            Kind::Dense(d) if d.act == Activation::Linear => &d.z[..n],
            Kind::Dense(d) => &d.a[..n],
            Kind::BatchNorm(b) => &b.y[..n],
            Kind::Act(a) => &a.a[..n],
            Kind::Dropout(d) => &d.y[..n],
        }
    }

    /// (pre-activation logits, output buffer) of a layer whose activation the loss folds in.
    pub fn logits_and_output<'a>(
        &'a mut self,
        rows: usize,
        input: &'a [f32],
    ) -> (&'a [f32], &'a mut [f32]) {
        let n = rows * self.out_dim;
        match &mut self.kind {
            Kind::Dense(d) => (&d.z[..n], &mut d.a[..n]),
            Kind::Act(a) => (input, &mut a.a[..n]),
            _ => unreachable!("only Dense and Activation layers end in a foldable activation"),
        }
    }

    pub fn forward(
        &mut self,
        ctx: &Ctx<'_>,
        input: &[f32],
        vars: &mut [f32],
        infos: &[VarInfo],
        gemm: &mut GemmScratch,
    ) {
        let rows = ctx.rows;
        let (i_d, o_d) = (self.in_dim, self.out_dim);
        let n = rows * o_d;
        match &mut self.kind {
            Kind::Dense(d) => {
                let vars: &[f32] = vars;
                let w = slice(vars, infos, d.kernel);
                let z = &mut d.z[..n];
                // The sparse forward's sums over the kernel's upper rows, added to `z` below.
                let mut hi = None;
                if let (Some(x), Some(cols)) = (ctx.sparse, &mut d.sparse_cols) {
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
                let bias = d.bias.map(|b| slice(vars, infos, b));
                debug_assert_eq!(bias.is_some(), d.use_bias);
                let act = if ctx.logits_only {
                    Activation::Linear
                } else {
                    d.act
                };
                let level = ctx.level;
                let zd = Disjoint::new(z);
                // A linear layer's output is `z` itself (`a` holds nothing).
                let a_len = if act == Activation::Linear { 0 } else { n };
                let ad = Disjoint::new(&mut d.a[..a_len]);
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
            Kind::BatchNorm(b) => {
                let y = &mut b.y[..n];
                if ctx.training && b.trainable {
                    {
                        let v: &[f32] = vars;
                        let gamma = b.gamma.map(|i| slice(v, infos, i));
                        let beta = b.beta.map(|i| slice(v, infos, i));
                        kernels::bn_forward_train(
                            ctx.level,
                            input,
                            rows,
                            o_d,
                            gamma,
                            beta,
                            b.eps,
                            &mut b.mean,
                            &mut b.var,
                            &mut b.inv_std,
                            y,
                        );
                    }
                    let mm_off = infos[b.moving_mean].offset;
                    debug_assert_eq!(infos[b.moving_var].offset, mm_off + o_d);
                    let (mm, mv) = vars[mm_off..mm_off + 2 * o_d].split_at_mut(o_d);
                    kernels::bn_update_moving(ctx.level, mm, mv, &b.mean, &b.var, b.momentum);
                } else {
                    let v: &[f32] = vars;
                    kernels::bn_forward_infer(
                        ctx.level,
                        input,
                        rows,
                        o_d,
                        b.gamma.map(|i| slice(v, infos, i)),
                        b.beta.map(|i| slice(v, infos, i)),
                        slice(v, infos, b.moving_mean),
                        slice(v, infos, b.moving_var),
                        b.eps,
                        y,
                    );
                }
            }
            // The logits are the input.
            Kind::Act(_) if ctx.logits_only => {}
            Kind::Act(a) => {
                let out = &mut a.a[..n];
                out.copy_from_slice(input);
                kernels::bias_act_inplace(ctx.level, out, rows, o_d, None, a.act);
            }
            Kind::Dropout(d) => {
                let y = &mut d.y[..n];
                y.copy_from_slice(input);
                if ctx.training && d.rate > 0.0 {
                    kernels::dropout_forward(
                        ctx.level,
                        y,
                        &mut d.mask[..n],
                        d.rate,
                        d.seed,
                        ctx.step,
                    );
                }
            }
        }
    }

    /// Backward through this layer. `g` holds dL/d(output) (or dL/d(logits) when
    /// `skip_act`); parameter gradients go to `grads`. Returns true when dL/d(input) was
    /// written to `g_in`, false when it was left in `g` (in-place layers) or not needed.
    /// `fused` (a Dense layer on the sparse-input path only) applies a plain-SGD update to the
    /// kernel in place of storing its gradient, when that path is taken (see [`FusedSgd`]).
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &mut self,
        ctx: &Ctx<'_>,
        input: &[f32],
        g: &mut [f32],
        g_in: &mut [f32],
        skip_act: bool,
        need_input_grad: bool,
        vars: &[f32],
        grads: &mut [f32],
        infos: &[VarInfo],
        gemm: &mut GemmScratch,
        fused: Option<&mut FusedSgd<'_>>,
    ) -> bool {
        let rows = ctx.rows;
        let (i_d, o_d) = (self.in_dim, self.out_dim);
        let n = rows * o_d;
        let g = &mut g[..n];
        match &mut self.kind {
            Kind::Dense(d) => {
                if !skip_act && d.act != Activation::Linear {
                    let (level, act, z, a) = (ctx.level, d.act, &d.z[..n], &d.a[..n]);
                    let gd = Disjoint::new(&mut *g);
                    by_rows(ctx.team, rows, o_d, &|r| {
                        let span = r.start * o_d..r.end * o_d;
                        // SAFETY: every part takes its own rows of `g`.
                        let g = unsafe { gd.range(span.clone()) };
                        kernels::act_backward(
                            level,
                            g,
                            &z[span.clone()],
                            &a[span],
                            r.len(),
                            o_d,
                            act,
                        );
                    });
                }
                if d.trainable {
                    if let Some(b) = d.bias {
                        kernels::col_sums(ctx.level, g, rows, o_d, slice_mut(grads, infos, b));
                    }
                    d.grad_sparse = false;
                    // A non-finite g must reach every kernel row (0·NaN is NaN): dense path.
                    match (ctx.sparse, &mut d.sparse_cols) {
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
                            let dw = slice_mut(grads, infos, d.kernel);
                            sparse::weight_grad(
                                ctx.level,
                                ctx.team,
                                x,
                                cols,
                                g,
                                o_d,
                                dw,
                                d.grad_squares,
                                d.grad_skip_untouched,
                                fused,
                            );
                            d.grad_sparse = true;
                        }
                        _ => matmul_on(
                            ctx.level,
                            MatMut::row_major(slice_mut(grads, infos, d.kernel), i_d, o_d),
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
                    let w = slice(vars, infos, d.kernel);
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
            Kind::BatchNorm(b) => {
                let dx = &mut g_in[..rows * i_d];
                if b.trainable {
                    let gamma = b.gamma.map(|i| slice(vars, infos, i));
                    // gamma and beta are adjacent variables: split their gradient slices.
                    let (dgamma, dbeta) = match (b.gamma, b.beta) {
                        (Some(gi), Some(bi)) => {
                            let off = infos[gi].offset;
                            debug_assert_eq!(infos[bi].offset, off + o_d);
                            let (dg, db) = grads[off..off + 2 * o_d].split_at_mut(o_d);
                            (Some(dg), Some(db))
                        }
                        (Some(gi), None) => (Some(slice_mut(grads, infos, gi)), None),
                        (None, Some(bi)) => (None, Some(slice_mut(grads, infos, bi))),
                        (None, None) => (None, None),
                    };
                    kernels::bn_backward_train(
                        ctx.level, g, input, rows, o_d, &b.mean, &b.inv_std, gamma, dx, dgamma,
                        dbeta,
                    );
                    true
                } else if need_input_grad {
                    kernels::bn_backward_infer(
                        ctx.level,
                        g,
                        rows,
                        o_d,
                        b.gamma.map(|i| slice(vars, infos, i)),
                        slice(vars, infos, b.moving_var),
                        b.eps,
                        dx,
                    );
                    true
                } else {
                    false
                }
            }
            Kind::Act(a) => {
                if !skip_act {
                    kernels::act_backward(ctx.level, g, input, &a.a[..n], rows, o_d, a.act);
                }
                false
            }
            Kind::Dropout(d) => {
                if d.rate > 0.0 {
                    kernels::dropout_backward(ctx.level, g, &d.mask[..n]);
                }
                false
            }
        }
    }
}
