//! The engine's layers: one file per layer kind, each with its settings, buffers, forward and
//! backward side by side (`dense/`, `batchnorm.rs`, `activation.rs`, `dropout.rs`,
//! `normalization.rs`, `rescaling.rs`).
//!
//! A layer kind implements [`Op`] over preallocated buffers; [`Layer`] holds one with its
//! input and output widths and is what the engine drives. Adding a kind: its file (with its
//! spec's `from_settings`), its `LayerSpec` variant, and one arm each in
//! [`LayerSpec::from_name`] and [`Layer::new`].
//!
//! Beyond forward and backward, a kind may serve two parties through generic capabilities
//! (Dense is the one that does, for its sparse-input fast path, `dense/sparse.rs`): the first
//! layer may note what it needs of the model's input batch while the engine loads it
//! ([`Op::load_input`]), and a kind may compute its weight gradients so as to serve the
//! optimizer step ([`Op::set_optimizer`], [`Op::fusable_var`] with [`FusedSgd`],
//! [`Op::grad_sum_squares`], [`Op::apply_update`]).

mod activation;
mod batchnorm;
mod dense;
mod dropout;
mod normalization;
mod rescaling;

pub use batchnorm::BatchNormSpec;
pub use dense::DenseSpec;
pub use dropout::DropoutSpec;
pub use normalization::NormalizationSpec;
pub use rescaling::RescalingSpec;

use activation::activation_setting;

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::dispatch::Level;
use crate::error::{Error, Result};
use crate::gemm::GemmScratch;
use crate::kernels::{self, Activation};
use crate::optim::{ClipElem, OptimizerSpec, SgdStep};
use crate::settings::Settings;
use crate::team::Team;

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

/// A layer's input and output widths (values per row).
#[derive(Clone, Copy, Debug)]
struct Dims {
    pub input: usize,
    pub output: usize,
}

/// What a forward pass reads and writes besides the layer's own buffers.
pub(super) struct Forward<'a> {
    pub input: &'a [f32],
    /// Every variable (a training BatchNormalization updates its moving statistics here).
    pub vars: &'a mut [f32],
    pub infos: &'a [VarInfo],
    pub gemm: &'a mut GemmScratch,
}

/// What a backward pass reads and writes (see [`Layer::backward`]).
pub(super) struct Backward<'a, 'f> {
    pub input: &'a [f32],
    /// dL/d(output), or dL/d(logits) with `skip_act`, at least `rows × output`: in-place
    /// kinds leave dL/d(input) here.
    pub g: &'a mut [f32],
    pub g_in: &'a mut [f32],
    pub skip_act: bool,
    pub need_input_grad: bool,
    pub vars: &'a [f32],
    /// Parameter gradients go here.
    pub grads: &'a mut [f32],
    pub infos: &'a [VarInfo],
    pub gemm: &'a mut GemmScratch,
    /// A plain-SGD update of the variable [`Op::fusable_var`] named, which the layer may apply
    /// in place of storing that variable's gradient (see [`FusedSgd`]).
    pub fused: Option<&'a mut FusedSgd<'f>>,
}

/// A plain-SGD update of one variable that a layer may apply as it computes that variable's
/// gradient, which is then never stored (the engine offers it, for the variable that
/// [`Op::fusable_var`] names, when the optimizer is plain SGD; see `Engine::train_step`).
pub(super) struct FusedSgd<'a> {
    /// The variable's values (lent: the layer reads no variables itself then).
    pub w: &'a mut [f32],
    pub clip: ClipElem,
    pub step: SgdStep,
    /// Norm clipping: the layer measures the gradient's Σ g² first and sets `clip` and
    /// `norm_sq` from it, or stores the gradient as usual where it cannot.
    pub norm: Option<NormClip<'a>>,
    /// The Σ g² the norm clipping scale was computed from.
    pub norm_sq: Option<f64>,
    /// Set when the layer applied the update (else the gradient was stored and the engine
    /// updates the variable as usual).
    pub applied: bool,
    /// Whether every weight the update wrote is finite.
    pub finite: bool,
}

/// How the engine turns a variable gradient's Σ g² into the scale of its norm-clipped update.
#[derive(Clone, Copy)]
pub(super) struct NormClip<'a> {
    /// Takes Σ g² of every other variable's gradient (from the engine's whole gradient
    /// buffer; all computed by then), while the layer measures this one's.
    pub others: &'a (dyn Fn(&[f32]) + Sync),
    /// The scale, from the variable gradient's Σ g² (after `others`).
    pub scale: &'a dyn Fn(f64) -> f32,
}

/// Takes the rows of the model's input batch as they are loaded (see [`Op::load_input`]).
pub(super) trait RowSink: Sync {
    /// Rows `first ..` of the batch (whole rows), just written by one part of the loading job.
    ///
    /// # Safety
    /// No other call may be given any of these rows concurrently.
    unsafe fn rows(&self, level: Level, first: usize, rows: &[f32]);
}

/// What a layer kind does, over buffers it owns and sizes in [`Op::reserve`]. Variables live
/// in the engine's flat `vars` / `grads`, found through the indices into `infos` a kind got
/// from [`add_var`] when built.
trait Op: Send + Sync {
    /// Whether the optimizer updates any of its variables.
    fn has_trainable(&self, _infos: &[VarInfo]) -> bool {
        false
    }

    /// The activation it applies last, if the loss may fold it in.
    fn output_activation(&self) -> Option<Activation> {
        None
    }

    /// (m, n, k) of its forward matrix product at `rows` rows, (0, 0, 0) without one.
    fn gemm_dims(&self, _rows: usize, _dims: Dims) -> (usize, usize, usize) {
        (0, 0, 0)
    }

    /// Grows its buffers to `rows` rows.
    fn reserve(&mut self, rows: usize, dims: Dims);

    /// Its output for the first `n` values (`rows × output`).
    fn output(&self, n: usize) -> &[f32];

    /// (pre-activation logits, output buffer), for a layer whose
    /// [`Op::output_activation`] the loss folds in.
    fn logits_and_output<'a>(
        &'a mut self,
        _n: usize,
        _input: &'a [f32],
    ) -> (&'a [f32], &'a mut [f32]) {
        unreachable!("only layers with an output activation end in a foldable activation")
    }

    fn forward(&mut self, ctx: &Ctx<'_>, dims: Dims, io: Forward<'_>);

    /// See [`Layer::backward`].
    fn backward(&mut self, ctx: &Ctx<'_>, dims: Dims, io: Backward<'_, '_>) -> bool;

    // The model's input: the first layer (built at index 0) reads the batch the engine loads
    // for it, and may note what it needs of it while the rows are in cache, to take a faster
    // path on it (Dense: the sparse-input path).

    /// Allows or forbids the fast paths this kind takes on the model's input (when it is the
    /// first layer; a kind picks its default when built).
    fn set_input_fast_path(&mut self, _on: bool, _dims: Dims) {}

    /// Loads the next input batch, of `rows` rows, through `load`: a team job that gathers
    /// the rows into the engine's input buffer and hands each part's rows, while in cache, to
    /// the sink it is given, if any. `step`: the batch of a training step (its backward
    /// follows). Called on the first layer only.
    fn load_input(
        &mut self,
        _team: &Team,
        _rows: usize,
        _step: bool,
        _dims: Dims,
        load: &mut dyn FnMut(Option<&dyn RowSink>),
    ) {
        load(None)
    }

    /// Tests: whether the input batch loaded last takes this kind's input fast path.
    #[cfg(test)]
    fn input_fast_path_taken(&self) -> bool {
        false
    }

    /// Its variables were written from outside a training step (`var` alone, else any of
    /// them): a kind that keeps something derived from their values refreshes it.
    fn vars_written(
        &mut self,
        _level: Level,
        _vars: &[f32],
        _infos: &[VarInfo],
        _var: Option<usize>,
    ) {
    }

    // The optimizer step: a kind may compute its weight gradients so as to serve it.

    /// The optimizer the engine was compiled with, which will update its variables, and
    /// which variables carry a regularizer (`penalized[i]`: the engine adds the penalty's
    /// gradient to variable i's after the backward pass, so every element of it is written).
    fn set_optimizer(&mut self, _opt: &OptimizerSpec, _penalized: &[bool]) {}

    /// The variable whose plain-SGD update ([`FusedSgd`]) this kind can apply with its next
    /// gradient, for a batch of `rows` rows (as the first layer: its input gradient is not
    /// needed, so it reads no variables); with `norm_clip`, only where it can also measure
    /// that gradient's norm first for less than storing the gradient costs.
    fn fusable_var(&self, _rows: usize, _norm_clip: bool, _dims: Dims) -> Option<usize> {
        None
    }

    /// Σ of the squares of variable `var`'s last gradient, where its backward summed them.
    fn grad_sum_squares(&self, _level: Level, _var: usize) -> Option<f64> {
        None
    }

    /// Applies the optimizer's update of its variable `var` (`len` values) itself, where it
    /// knows more than a split of the whole variable does (which parts its gradient left
    /// zero, whether the weights stay finite): `update(r)` updates the flat range `r` and
    /// returns whether the weights it wrote are finite; with `zero_is_noop`, a zero gradient
    /// leaves a weight as it is. Returns false to leave the update to the engine.
    fn apply_update(
        &mut self,
        _team: &Team,
        _var: usize,
        _len: usize,
        _zero_is_noop: bool,
        _update: &(dyn Fn(Range<usize>) -> bool + Sync),
    ) -> bool {
        false
    }
}

/// One layer: a kind with its input and output widths.
pub(super) struct Layer {
    dims: Dims,
    op: Box<dyn Op>,
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

/// Runs a variable's update `update(r)` (see [`Op::apply_update`]) over its `len` values in
/// flat ranges split by the team, i.e. by rows of a kernel, as its weight-gradient product
/// splits it (`rows_first`), so each core updates what it has just computed rather than
/// values another core's cache holds. Returns whether every weight written is finite.
pub(super) fn update_parts(
    team: &Team,
    len: usize,
    update: &(dyn Fn(Range<usize>) -> bool + Sync),
) -> bool {
    let nonfinite = AtomicBool::new(false);
    team.for_ranges(len, super::UPDATE_MIN_PART, 16, &|r| {
        if !update(r) {
            nonfinite.store(true, Ordering::Relaxed);
        }
    });
    !nonfinite.into_inner()
}

fn slice<'a>(vars: &'a [f32], infos: &[VarInfo], i: usize) -> &'a [f32] {
    let v = &infos[i];
    &vars[v.offset..v.offset + v.len]
}

fn slice_mut<'a>(vars: &'a mut [f32], infos: &[VarInfo], i: usize) -> &'a mut [f32] {
    let v = &infos[i];
    &mut vars[v.offset..v.offset + v.len]
}

impl LayerSpec {
    /// Names the layer kinds the engine has, as the Python front passes them.
    pub const NAMES: &'static [&'static str] = &[
        "dense",
        "batch_norm",
        "activation",
        "dropout",
        "normalization",
    ];

    /// The layer kind called `kind`, with its settings read from `s` by the kind's own file.
    pub fn from_name(kind: &str, s: &dyn Settings) -> Result<LayerSpec> {
        Ok(match kind {
            "dense" => LayerSpec::Dense(DenseSpec::from_settings(s)?),
            "batch_norm" => LayerSpec::BatchNorm(BatchNormSpec::from_settings(s)?),
            "activation" => LayerSpec::Activation(activation_setting(s)?),
            "dropout" => LayerSpec::Dropout(DropoutSpec::from_settings(s)?),
            "normalization" => LayerSpec::Normalization(NormalizationSpec::from_settings(s)?),
            "rescaling" => LayerSpec::Rescaling(RescalingSpec::from_settings(s)?),
            other => {
                return Err(Error::Value(format!(
                    "unknown layer kind {other:?}; the engine has {:?}",
                    LayerSpec::NAMES
                )))
            }
        })
    }
}

impl Layer {
    /// The layer `spec` at position `index`, reading `in_dim` values per row; its variables
    /// are appended to `infos` from `offset` on.
    pub fn new(
        index: usize,
        spec: &LayerSpec,
        in_dim: usize,
        infos: &mut Vec<VarInfo>,
        offset: &mut usize,
    ) -> Result<Layer> {
        let (output, op): (usize, Box<dyn Op>) = match spec {
            LayerSpec::Dense(spec) => (
                spec.units,
                Box::new(dense::Dense::new(index, in_dim, spec, infos, offset)?),
            ),
            LayerSpec::BatchNorm(spec) => (
                in_dim,
                Box::new(batchnorm::BatchNorm::new(in_dim, spec, infos, offset)?),
            ),
            LayerSpec::Activation(act) => (in_dim, Box::new(activation::Act::new(*act))),
            LayerSpec::Dropout(spec) => (in_dim, Box::new(dropout::Dropout::new(index, spec)?)),
            LayerSpec::Normalization(spec) => (
                in_dim,
                Box::new(normalization::Normalization::new(
                    in_dim, spec, infos, offset,
                )?),
            ),
            LayerSpec::Rescaling(spec) => (in_dim, Box::new(rescaling::Rescaling::new(spec)?)),
        };
        Ok(Layer {
            dims: Dims {
                input: in_dim,
                output,
            },
            op,
        })
    }

    pub fn out_dim(&self) -> usize {
        self.dims.output
    }

    /// Whether any variable of this layer is updated by the optimizer.
    pub fn has_trainable(&self, infos: &[VarInfo]) -> bool {
        self.op.has_trainable(infos)
    }

    /// The activation applied last by this layer, if it can be folded into the loss.
    pub fn output_activation(&self) -> Option<Activation> {
        self.op.output_activation()
    }

    /// See [`Op::set_input_fast_path`].
    pub fn set_input_fast_path(&mut self, on: bool) {
        self.op.set_input_fast_path(on, self.dims)
    }

    /// See [`Op::load_input`].
    pub fn load_input(
        &mut self,
        team: &Team,
        rows: usize,
        step: bool,
        load: &mut dyn FnMut(Option<&dyn RowSink>),
    ) {
        self.op.load_input(team, rows, step, self.dims, load)
    }

    /// See [`Op::input_fast_path_taken`].
    #[cfg(test)]
    pub fn input_fast_path_taken(&self) -> bool {
        self.op.input_fast_path_taken()
    }

    /// See [`Op::vars_written`].
    pub fn vars_written(
        &mut self,
        level: Level,
        vars: &[f32],
        infos: &[VarInfo],
        var: Option<usize>,
    ) {
        self.op.vars_written(level, vars, infos, var)
    }

    /// See [`Op::set_optimizer`].
    pub fn set_optimizer(&mut self, opt: &OptimizerSpec, penalized: &[bool]) {
        self.op.set_optimizer(opt, penalized)
    }

    /// See [`Op::fusable_var`].
    pub fn fusable_var(&self, rows: usize, norm_clip: bool) -> Option<usize> {
        self.op.fusable_var(rows, norm_clip, self.dims)
    }

    /// See [`Op::grad_sum_squares`].
    pub fn grad_sum_squares(&self, level: Level, var: usize) -> Option<f64> {
        self.op.grad_sum_squares(level, var)
    }

    /// See [`Op::apply_update`].
    pub fn apply_update(
        &mut self,
        team: &Team,
        var: usize,
        len: usize,
        zero_is_noop: bool,
        update: &(dyn Fn(Range<usize>) -> bool + Sync),
    ) -> bool {
        self.op.apply_update(team, var, len, zero_is_noop, update)
    }

    /// (m, n, k) of this layer's forward product at `rows` rows.
    pub fn gemm_dims(&self, rows: usize) -> (usize, usize, usize) {
        self.op.gemm_dims(rows, self.dims)
    }

    /// Grows the output buffers to `rows` rows.
    pub fn reserve(&mut self, rows: usize) {
        self.op.reserve(rows, self.dims)
    }

    /// This layer's output for the current `rows` rows.
    pub fn output(&self, rows: usize) -> &[f32] {
        self.op.output(rows * self.dims.output)
    }

    /// (pre-activation logits, output buffer) of a layer whose activation the loss folds in.
    pub fn logits_and_output<'a>(
        &'a mut self,
        rows: usize,
        input: &'a [f32],
    ) -> (&'a [f32], &'a mut [f32]) {
        self.op.logits_and_output(rows * self.dims.output, input)
    }

    pub fn forward(&mut self, ctx: &Ctx<'_>, io: Forward<'_>) {
        self.op.forward(ctx, self.dims, io)
    }

    /// Backward through this layer. Returns true when dL/d(input) was written to `io.g_in`,
    /// false when it was left in `io.g` (in-place layers) or not needed.
    pub fn backward(&mut self, ctx: &Ctx<'_>, mut io: Backward<'_, '_>) -> bool {
        io.g = &mut std::mem::take(&mut io.g)[..ctx.rows * self.dims.output];
        self.op.backward(ctx, self.dims, io)
    }
}

/// A layer on its own against central finite differences, at every dispatch level the CPU
/// has: each kind's file runs [`check::finite_differences`] on its specs.
#[cfg(test)]
mod check {
    /// The layer `spec`'s inference output for `x` (rows of `in_dim`), its variables zero.
    pub(super) fn forward_once(spec: &LayerSpec, x: &[f32], in_dim: usize) -> Vec<f32> {
        let rows = x.len() / in_dim;
        let (mut infos, mut offset) = (Vec::new(), 0);
        let mut layer = Layer::new(0, spec, in_dim, &mut infos, &mut offset).unwrap();
        layer.reserve(rows);
        let mut vars = vec![0.0f32; offset];
        let mut gemm = GemmScratch::new();
        let team = Team::solo();
        let ctx = Ctx {
            level: Level::current(),
            team: &team,
            rows,
            training: false,
            step: 0,
            logits_only: false,
        };
        let io = Forward {
            input: x,
            vars: &mut vars,
            infos: &infos,
            gemm: &mut gemm,
        };
        layer.forward(&ctx, io);
        layer.output(rows).to_vec()
    }

    use super::*;
    use crate::kernels::testutil::{levels, Rng};

    /// Builds `spec` over `in_dim` inputs and, for the loss `L = Σ c·y` (`y` the training
    /// forward's output of `rows` random rows, `c` fixed random weights), compares the
    /// backward's dL/d(input) and dL/d(trainable variables) with `(L(θ+h) − L(θ−h)) / 2h` of
    /// the forward, summed in f64: within `tol` (absolute + relative) for every input and a
    /// spread of each variable's elements. Non-trainable variables (moving statistics) start
    /// positive.
    pub(super) fn finite_differences(
        spec: &LayerSpec,
        in_dim: usize,
        rows: usize,
        h: f32,
        tol: f64,
    ) {
        for level in levels() {
            let mut infos = Vec::new();
            let mut offset = 0;
            let mut layer = Layer::new(0, spec, in_dim, &mut infos, &mut offset).unwrap();
            let out = layer.out_dim();
            let mut rng = Rng::new((in_dim * 31 + rows) as u64);
            // The point: the input, then every variable (non-trainable ones, the moving
            // statistics, positive).
            let nx = rows * in_dim;
            let mut p = rng.vec(nx + offset, -0.5, 0.5);
            p[..nx].iter_mut().for_each(|v| *v *= 2.0);
            for v in infos.iter().filter(|v| !v.trainable) {
                for w in &mut p[nx + v.offset..nx + v.offset + v.len] {
                    *w = w.abs() + 0.5;
                }
            }
            let c = rng.vec(rows * out, -1.0, 1.0);
            layer.reserve(rows);
            let mut gemm = GemmScratch::new();
            let (m, n, k) = layer.gemm_dims(rows);
            for (m, n, k) in [(m, n, k), (k, n, m), (m, k, n)] {
                gemm.reserve(m, n, k, 1);
            }
            let team = Team::solo();
            let ctx = Ctx {
                level,
                team: &team,
                rows,
                training: true,
                step: 7,
                logits_only: false,
            };
            let mut loss = |p: &mut [f32], gemm: &mut GemmScratch| -> f64 {
                let (input, vars) = p.split_at_mut(nx);
                let infos = &infos;
                layer.forward(
                    &ctx,
                    Forward {
                        input,
                        vars,
                        infos,
                        gemm,
                    },
                );
                let y = layer.output(rows);
                y.iter().zip(&c).map(|(&y, &c)| y as f64 * c as f64).sum()
            };
            // Finite differences first (each forward call overwrites the layer's buffers):
            // every input, and a spread of each trainable variable's elements.
            let mut at = (0..nx).collect::<Vec<_>>();
            for v in infos.iter().filter(|v| v.trainable) {
                at.extend([0, v.len / 3, v.len / 2, v.len - 1].map(|j| nx + v.offset + j));
            }
            at.dedup();
            let fd: Vec<f64> = at
                .iter()
                .map(|&i| {
                    let orig = p[i];
                    p[i] = orig + h;
                    let lp = loss(&mut p, &mut gemm);
                    p[i] = orig - h;
                    let lm = loss(&mut p, &mut gemm);
                    p[i] = orig;
                    (lp - lm) / (2.0 * h as f64)
                })
                .collect();
            // The analytic gradients, from the forward at the unperturbed point.
            loss(&mut p, &mut gemm);
            let (x, vars) = p.split_at(nx);
            let mut g = vec![0.0f32; rows * in_dim.max(out)];
            g[..rows * out].copy_from_slice(&c);
            let mut g_in = vec![0.0f32; nx];
            let mut grads = vec![0.0f32; offset];
            let io = Backward {
                input: x,
                g: &mut g,
                g_in: &mut g_in,
                skip_act: false,
                need_input_grad: true,
                vars,
                grads: &mut grads,
                infos: &infos,
                gemm: &mut gemm,
                fused: None,
            };
            let wrote = layer.backward(&ctx, io);
            let dx = if wrote { &g_in[..] } else { &g[..nx] };
            let analytic = |i: usize| if i < nx { dx[i] } else { grads[i - nx] };
            let close = |fd: f64, an: f32| (fd - an as f64).abs() <= tol + tol * fd.abs();
            for (&i, &fd) in at.iter().zip(&fd) {
                let (an, what) = (analytic(i), if i < nx { "x" } else { "var" });
                let j = if i < nx { i } else { i - nx };
                assert!(
                    close(fd, an),
                    "{spec:?} {level:?}: dL/d{what}[{j}] {an} vs {fd}"
                );
            }
        }
    }
}
