//! The training engine: a Sequential stack of dense-network layers, its loss, metrics and
//! optimizer, run step after step with no Python and no allocation per step.
//!
//! Layout: every variable (trainable or not) lives in one flat `vars` buffer, in Keras's
//! weight order (Dense `[kernel, bias]`, BatchNormalization `[gamma, beta, moving_mean,
//! moving_variance]`), with gradients and momentum slots in buffers of the same layout.
//! Activations are row-major `batch × features`. All per-step buffers are sized once for the
//! largest batch (`ensure_capacity`), so a step only reads and writes preallocated memory.
//!
//! One step follows Keras 3 exactly (`keras-spec.md` §12): forward in training mode, the mean
//! batch loss (softmax/sigmoid outputs with a crossentropy loss are computed from the logits,
//! fused, as Keras's TensorFlow backend does), backward, then the optimizer (`crate::optim`):
//! gradient accumulation, clip → decoupled weight decay → the rule's update per variable, the
//! weights' moving average, and `iterations += 1`.
//!
//! Per-sample weights (`sample_weight`, Keras's default `sum_over_batch_size` reduction): the
//! batch loss is `Σ w_i·l_i / rows`, so row i's output gradient is scaled by `w_i / rows`; the
//! loss tracker sums `w_i·l_i` over samples and divides by the samples seen. Metrics compiled
//! as weighted (`weighted_metrics`) are `Σ w_i·m_i / Σ w_i`, the others ignore the weights.
//! Batch normalization's statistics ignore them, as in Keras.

pub mod input;
mod layers;

use rayon::ThreadPool;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::dispatch::Level;
use crate::error::{Error, Result};
use crate::gemm::GemmScratch;
use crate::kernels::{self, Activation};
use crate::losses::{Batch, LossFn, LossSpec, Targets};
use crate::metrics::{Metric, MetricFn};
use crate::optim::{self, Clip, ClipElem, OptimizerSpec, SgdStep, Step, UpdateRule, MAX_SLOTS};
use crate::regularizers::L1L2;
use crate::team::{self, Disjoint, Team};
use crate::tune::WidthTuner;
pub use input::{DType, View2};
pub use layers::{BatchNormSpec, DenseSpec, DropoutSpec, NormalizationSpec, RescalingSpec};
use layers::{FusedSgd, Layer, RowSink, Workspace};
use std::time::Instant;

/// One layer of the stack, as configured from Python: each kind's settings are defined in
/// its file under `layers/`.
#[derive(Clone, Debug, PartialEq)]
pub enum LayerSpec {
    Dense(DenseSpec),
    BatchNorm(BatchNormSpec),
    /// A standalone activation.
    Activation(Activation),
    Dropout(DropoutSpec),
    Normalization(NormalizationSpec),
    Rescaling(RescalingSpec),
}

/// Shape and role of one variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VarInfo {
    pub shape: Vec<usize>,
    pub offset: usize,
    pub len: usize,
    /// Updated by the optimizer.
    pub trainable: bool,
}

/// Running sums of one epoch (or one evaluation), as Keras's `Mean` trackers keep them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Σ over batches of `batch_size · batch_loss` (Σ over samples of `w_i·l_i`).
    pub loss_sum: f64,
    /// Samples seen.
    pub count: u64,
    /// Each compiled metric's accumulators ([`MetricFn::state_len`] of them; a mean's are
    /// Σ w·value and Σ w, with w the sample weight for a weighted metric, else 1).
    pub metric_states: Vec<Vec<f64>>,
}

/// Gradient-health counters since the engine was compiled (Keras has no equivalent).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClipStats {
    /// Optimizer steps taken.
    pub steps: u64,
    /// Per trainable variable (in `vars` order): steps in which norm clipping scaled it down.
    pub fired: Vec<u64>,
    /// Per trainable variable: L2 norm of its gradient at the last step (computed when a
    /// norm-based clip is active, else NaN).
    pub last_norms: Vec<f64>,
}

#[derive(Clone, Debug)]
struct Compiled {
    loss: LossSpec,
    metrics: Vec<Metric>,
    opt: OptimizerSpec,
}

/// Zeroed f32 storage whose first element sits on a 64-byte boundary, so that a split by
/// 16-float-aligned ranges or columns never puts two threads' elements in one cache line.
struct AlignedBuf {
    raw: Vec<f32>,
    off: usize,
    len: usize,
}

impl AlignedBuf {
    fn zeros(len: usize) -> Self {
        Self::filled(len, 0.0)
    }

    fn filled(len: usize, value: f32) -> Self {
        let raw = vec![value; len + 16];
        let off = raw.as_ptr().align_offset(64).min(16);
        AlignedBuf { raw, off, len }
    }
}

impl std::ops::Deref for AlignedBuf {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.raw[self.off..self.off + self.len]
    }
}

impl std::ops::DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.raw[self.off..self.off + self.len]
    }
}

/// A Sequential model's numbers and the buffers to train it.
pub struct Engine {
    level: Level,
    input_dim: usize,
    layers: Vec<Layer>,
    vars: AlignedBuf,
    grads: AlignedBuf,
    /// The optimizer's slot buffers (the base's, then the rule's; see `OptimizerSpec::slots`),
    /// each in the layout of `vars` (only trainable variables' ranges are used).
    slots: Vec<AlignedBuf>,
    /// The rule's optimizer-wide scalar (`UpdateRule::begin_step`).
    rule_state: f32,
    infos: Vec<VarInfo>,
    /// Per variable, the index of the layer it belongs to.
    owner: Vec<usize>,
    compiled: Option<Compiled>,
    iterations: u64,
    stats: Stats,
    clip_stats: ClipStats,
    /// Per trainable variable, Σ g² of the step's gradient, when norm clipping took them
    /// before a fused kernel update (`backward_fused`; `apply_gradients` reuses them). f64
    /// bits, in atomics because a helper thread may write them (one job, then read after).
    kept_squares: Vec<AtomicU64>,
    kept_squares_set: AtomicBool,
    /// Weight regularizers, by variable index, and which variables have one.
    regularizers: Vec<(usize, L1L2)>,
    penalized: Vec<bool>,
    ws: Workspace,
    gemm: GemmScratch,
    /// Index of the first layer whose parameters need gradients (backward stops there).
    first_trainable: usize,
    /// Whether the last layer's activation is folded into the loss (logits path).
    fused_output: bool,
    /// How many of the pool's threads training steps use (see `tune.rs`); kept across calls.
    tuner: Option<WidthTuner>,
    /// Whether `tuner` picks the width (else steps use every thread).
    adaptive: bool,
    /// Whether plain SGD may be fused into a layer's weight gradient (tests compare).
    fuse_sgd: bool,
    /// Tests: whether norm-clipped updates are fused (else the layer decides by their cost).
    fuse_norm_clip: Option<bool>,
    /// The last step's update of a variable was fused into its weight gradient.
    last_fused: bool,
    /// `forward_training` calls so far: each draws its dropout masks from its own stream.
    training_calls: u64,
}

impl Engine {
    /// Builds the stack for inputs of `input_dim` features, with variables initialised to
    /// zero (the caller sets them with [`Engine::set_var`]).
    pub fn new(input_dim: usize, specs: &[LayerSpec]) -> Result<Engine> {
        if input_dim == 0 {
            return Err(Error::Value(
                "the input must have at least one feature".into(),
            ));
        }
        let mut layers = Vec::with_capacity(specs.len());
        let mut infos = Vec::new();
        let mut owner = Vec::new();
        let mut offset = 0usize;
        let mut width = input_dim;
        for (i, spec) in specs.iter().enumerate() {
            let l = Layer::new(i, spec, width, &mut infos, &mut offset)?;
            owner.resize(infos.len(), i);
            width = l.out_dim();
            layers.push(l);
        }
        let first_trainable = layers
            .iter()
            .position(|l| l.has_trainable(&infos))
            .unwrap_or(layers.len());
        let n_vars = infos.len();
        Ok(Engine {
            level: Level::current(),
            input_dim,
            layers,
            vars: AlignedBuf::zeros(offset),
            grads: AlignedBuf::zeros(offset),
            slots: Vec::new(),
            rule_state: 0.0,
            infos,
            owner,
            compiled: None,
            iterations: 0,
            stats: Stats::default(),
            clip_stats: ClipStats::default(),
            kept_squares: Vec::new(),
            kept_squares_set: AtomicBool::new(false),
            penalized: vec![false; n_vars],
            regularizers: Vec::new(),
            ws: Workspace::default(),
            gemm: GemmScratch::new(),
            first_trainable,
            fused_output: false,
            tuner: None,
            adaptive: adaptive_by_env(),
            fuse_sgd: true,
            fuse_norm_clip: None,
            last_fused: false,
            training_calls: 0,
        })
    }

    /// Features per input row.
    pub fn input_dim(&self) -> usize {
        self.input_dim
    }

    /// Features per output row.
    pub fn output_dim(&self) -> usize {
        self.layers.last().map_or(self.input_dim, |l| l.out_dim())
    }

    /// Every variable, in Keras's `model.weights` order.
    pub fn variables(&self) -> &[VarInfo] {
        &self.infos
    }

    /// Values of variable `i` (row-major).
    pub fn var(&self, i: usize) -> Result<&[f32]> {
        let info = self.info(i)?;
        Ok(&self.vars[info.offset..info.offset + info.len])
    }

    /// Overwrites variable `i`.
    pub fn set_var(&mut self, i: usize, values: &[f32]) -> Result<()> {
        let info = self.info(i)?.clone();
        if values.len() != info.len {
            return Err(Error::Shape(format!(
                "variable {i} has shape {:?} ({} values); received {} values",
                info.shape,
                info.len,
                values.len()
            )));
        }
        self.vars[info.offset..info.offset + info.len].copy_from_slice(values);
        let (level, vars, infos) = (self.level, &self.vars, &self.infos);
        self.layers[self.owner[i]].vars_written(level, vars, infos, Some(i));
        Ok(())
    }

    /// Optimizer slot buffers per trainable variable (see [`OptimizerSpec::slots`]).
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// Slot `k` of trainable variable `i`.
    pub fn slot(&self, i: usize, k: usize) -> Result<&[f32]> {
        let info = self.slot_info(i, k)?;
        Ok(&self.slots[k][info.offset..info.offset + info.len])
    }

    /// Overwrites slot `k` of trainable variable `i`.
    pub fn set_slot(&mut self, i: usize, k: usize, values: &[f32]) -> Result<()> {
        let info = self.slot_info(i, k)?.clone();
        if values.len() != info.len {
            return Err(Error::Shape(format!(
                "optimizer slot {k} of variable {i} has shape {:?} ({} values); received {} values",
                info.shape,
                info.len,
                values.len()
            )));
        }
        self.slots[k][info.offset..info.offset + info.len].copy_from_slice(values);
        Ok(())
    }

    fn slot_info(&self, i: usize, k: usize) -> Result<&VarInfo> {
        let info = self.info(i)?;
        if !info.trainable {
            return Err(Error::Value(format!(
                "variable {i} is not trainable, so it has no optimizer slots"
            )));
        }
        if k >= self.slots.len() {
            return Err(Error::Value(format!(
                "slot index {k} out of range (the optimizer keeps {} slots per variable)",
                self.slots.len()
            )));
        }
        Ok(info)
    }

    /// The rule's optimizer-wide scalar (Nadam's `u_product`), None for rules without one.
    pub fn rule_state(&self) -> Option<f32> {
        let c = self.compiled.as_ref()?;
        c.opt.rule.state_init().map(|_| self.rule_state)
    }

    /// Restores that scalar (from a saved optimizer).
    pub fn set_rule_state(&mut self, value: f32) -> Result<()> {
        let c = self.compiled_mut()?;
        if c.opt.rule.state_init().is_none() {
            return Err(Error::Value(format!(
                "the {} rule keeps no optimizer-wide state",
                c.opt.rule.name()
            )));
        }
        if !value.is_finite() {
            return Err(Error::Value(format!(
                "the optimizer state must be finite. Received: {value}"
            )));
        }
        self.rule_state = value;
        Ok(())
    }

    /// The moving averages become the weights (Keras's `finalize_variable_values` with
    /// `use_ema=True`, at the end of `fit`); no-op without EMA.
    pub fn finalize_ema(&mut self) {
        let Some(c) = self.compiled.as_ref() else {
            return;
        };
        if c.opt.ema.is_none() {
            return;
        }
        for v in self.infos.iter().filter(|v| v.trainable) {
            let r = v.offset..v.offset + v.len;
            self.vars[r.clone()].copy_from_slice(&self.slots[0][r]);
        }
        self.vars_written();
    }

    /// Tells every layer that any of its variables may have been overwritten.
    fn vars_written(&mut self) {
        for l in &mut self.layers {
            l.vars_written(self.level, &self.vars, &self.infos, None);
        }
    }

    fn info(&self, i: usize) -> Result<&VarInfo> {
        self.infos.get(i).ok_or_else(|| {
            Error::Value(format!(
                "variable index {i} out of range (the model has {} variables)",
                self.infos.len()
            ))
        })
    }

    /// Sets the loss, metrics (a metric spec is an unweighted [`Metric`]) and optimizer.
    /// Keeps the iteration count and resets the optimizer's slots.
    pub fn compile<M: Into<Metric>>(
        &mut self,
        loss: LossSpec,
        metrics: Vec<M>,
        opt: OptimizerSpec,
    ) -> Result<()> {
        let metrics: Vec<Metric> = metrics.into_iter().map(Into::into).collect();
        opt.validate()?;
        loss.validate()?;
        for m in &metrics {
            m.spec.validate()?;
        }
        // Targets are gathered once per step in the loss's form (labels or rows), so every
        // metric must read that same form.
        let form = |sparse: bool| if sparse { "integer-label" } else { "one-hot" };
        for Metric { spec: m, .. } in &metrics {
            let sparse = m.sparse_targets();
            if sparse != loss.sparse_targets() {
                return Err(Error::Value(format!(
                    "metric {} needs {} targets but loss {} takes {} targets",
                    m.name(),
                    form(sparse),
                    loss.name(),
                    form(loss.sparse_targets())
                )));
            }
        }
        self.fused_output = self.layers.last().is_some_and(|last| {
            last.output_activation().is_some() && last.output_activation() == loss.fuses()
        });
        let base = opt.base_slots();
        self.slots = (0..opt.slots())
            .map(|k| {
                let init = k.checked_sub(base).map_or(0.0, |r| opt.rule.slot_init(r));
                AlignedBuf::filled(self.vars.len(), init)
            })
            .collect();
        self.rule_state = opt.rule.state_init().unwrap_or(0.0);
        let n_train = self.infos.iter().filter(|v| v.trainable).count();
        self.kept_squares = (0..n_train).map(|_| AtomicU64::new(0)).collect();
        self.kept_squares_set.store(false, Ordering::Relaxed);
        self.clip_stats = ClipStats {
            steps: 0,
            fired: vec![0; n_train],
            last_norms: vec![f64::NAN; n_train],
        };
        self.stats = Stats {
            metric_states: metrics
                .iter()
                .map(|m| vec![0.0; m.spec.state_len()])
                .collect(),
            ..Stats::default()
        };
        for l in &mut self.layers {
            l.set_optimizer(&opt, &self.penalized);
        }
        self.compiled = Some(Compiled { loss, metrics, opt });
        Ok(())
    }

    /// Sets the weight regularizers: `(variable index, penalty)` pairs (Keras's
    /// `kernel_regularizer`, `bias_regularizer`, …), replacing any set before.
    pub fn set_regularizers(&mut self, regularizers: Vec<(usize, L1L2)>) -> Result<()> {
        let mut penalized = vec![false; self.infos.len()];
        for (i, r) in &regularizers {
            self.info(*i)?;
            r.validate()?;
            if std::mem::replace(&mut penalized[*i], true) {
                return Err(Error::Value(format!("variable {i} has two regularizers")));
            }
        }
        self.regularizers = regularizers;
        self.penalized = penalized;
        if let Some(c) = &self.compiled {
            let opt = c.opt;
            for l in &mut self.layers {
                l.set_optimizer(&opt, &self.penalized);
            }
        }
        Ok(())
    }

    /// The regularizers' penalty at the current weights; with `grad`, also adds each
    /// trainable regularized variable's penalty gradient to its gradient.
    fn regularize(&mut self, grad: bool) -> f64 {
        let level = self.level;
        let mut total = 0.0;
        for (i, r) in &self.regularizers {
            let v = &self.infos[*i];
            let range = v.offset..v.offset + v.len;
            let w = &self.vars[range.clone()];
            total += if grad && v.trainable {
                r.apply(level, w, &mut self.grads[range])
            } else {
                r.penalty(level, w)
            };
        }
        total
    }

    /// Changes the learning rate (callbacks such as `ReduceLROnPlateau` do this).
    pub fn set_learning_rate(&mut self, lr: f32) -> Result<()> {
        let c = self.compiled_mut()?;
        optim::check_learning_rate(lr)?;
        c.opt.learning_rate = lr;
        Ok(())
    }

    /// Optimizer steps taken so far (`optimizer.iterations`).
    pub fn iterations(&self) -> u64 {
        self.iterations
    }

    /// Sets the optimizer step counter (restoring a saved optimizer).
    pub fn set_iterations(&mut self, it: u64) {
        self.iterations = it;
    }

    /// Running sums since the last [`Engine::reset_stats`].
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Each compiled metric's value from the running sums (0 before any sample, or when
    /// not compiled).
    pub fn metric_results(&self) -> Vec<f64> {
        let Some(c) = &self.compiled else {
            return Vec::new();
        };
        c.metrics
            .iter()
            .zip(&self.stats.metric_states)
            .map(|(m, state)| m.spec.result(state))
            .collect()
    }

    /// Clears the running sums (start of an epoch or an evaluation).
    pub fn reset_stats(&mut self) {
        self.stats.loss_sum = 0.0;
        self.stats.count = 0;
        for state in &mut self.stats.metric_states {
            state.fill(0.0);
        }
    }

    /// Gradient-health counters.
    /// Training steps run on one thread and on all of the pool's threads since the engine was
    /// made, as chosen by the width tuner (`[0, 0]` when it never ran: one thread, or
    /// `KEROX_ADAPTIVE_THREADS=0`).
    pub fn thread_width_counts(&self) -> [u64; 2] {
        self.tuner.as_ref().map_or([0, 0], |t| t.counts())
    }

    pub fn clip_stats(&self) -> &ClipStats {
        &self.clip_stats
    }

    /// The dispatch level the kernels run at.
    pub fn level(&self) -> Level {
        self.level
    }

    /// Overrides the dispatch level (capped at what the CPU has).
    pub fn set_level(&mut self, level: Level) {
        self.level = level.min(Level::detected());
    }

    /// Allows (the default, unless `KEROX_SPARSE_INPUT=0`) or forbids the first Dense layer's
    /// sparse-input path (see `layers/dense/sparse.rs`); the numbers differ by float rounding
    /// only.
    pub fn set_sparse_input(&mut self, on: bool) {
        let Some(first) = self.layers.first_mut() else {
            return;
        };
        first.set_input_fast_path(on);
        first.vars_written(self.level, &self.vars, &self.infos, None);
        if self.ws.capacity > 0 {
            first.reserve(self.ws.capacity);
        }
    }

    fn compiled_mut(&mut self) -> Result<&mut Compiled> {
        self.compiled
            .as_mut()
            .ok_or_else(|| Error::State("You must call `compile()` before using the model.".into()))
    }

    /// Grows every per-step buffer to hold `batch` rows (no-op when large enough).
    pub fn ensure_capacity(&mut self, batch: usize) {
        let threads = rayon::current_num_threads().max(1);
        let max_width = self
            .layers
            .iter()
            .map(|l| l.out_dim())
            .chain(std::iter::once(self.input_dim))
            .max()
            .unwrap_or(1);
        if batch > self.ws.capacity {
            for l in &mut self.layers {
                l.reserve(batch);
            }
            self.ws
                .reserve(batch, self.input_dim, self.output_dim(), max_width);
        }
        for l in &self.layers {
            let (m, n, k) = l.gemm_dims(batch);
            self.gemm.reserve(m, n, k, threads);
            // Weight-gradient and input-gradient products have transposed shapes.
            self.gemm.reserve(k, n, m, threads);
            self.gemm.reserve(m, k, n, threads);
        }
    }

    fn check_x(&self, x: &View2<'_>) -> Result<()> {
        if x.cols() != self.input_dim {
            return Err(Error::Shape(format!(
                "Input has {} features per sample, but the model expects {} (expected shape (None, {}), received (…, {}))",
                x.cols(),
                self.input_dim,
                self.input_dim,
                x.cols()
            )));
        }
        Ok(())
    }

    fn check_y(&self, x: &View2<'_>, y: &View2<'_>, loss: LossSpec) -> Result<()> {
        if y.rows() != x.rows() {
            return Err(Error::Shape(format!(
                "x and y must have the same number of samples. Received: x has {} samples, y has {}",
                x.rows(),
                y.rows()
            )));
        }
        let out = self.output_dim();
        if loss.sparse_targets() {
            if y.cols() != 1 {
                return Err(Error::Shape(format!(
                    "sparse_categorical_crossentropy expects integer labels of shape (N,) or (N, 1); received targets with {} columns",
                    y.cols()
                )));
            }
        } else if y.cols() != out {
            return Err(Error::Shape(format!(
                "Arguments `target` and `output` must have the same shape. Received: target.shape=(None, {}), output.shape=(None, {})",
                y.cols(),
                out
            )));
        }
        Ok(())
    }

    /// Checks `sample_weight` against `x`: one finite, non-negative weight per sample.
    fn check_sample_weight(x: &View2<'_>, sample_weight: Option<&[f32]>) -> Result<()> {
        let Some(sw) = sample_weight else {
            return Ok(());
        };
        if sw.len() != x.rows() {
            return Err(Error::Value(format!(
                "sample_weight must hold one weight per sample of x: expected {} values, received {} (x has {} samples)",
                x.rows(),
                sw.len(),
                x.rows()
            )));
        }
        if let Some((i, w)) = sw
            .iter()
            .enumerate()
            .find(|(_, w)| !(w.is_finite() && **w >= 0.0))
        {
            return Err(Error::Value(format!(
                "sample_weight must hold finite, non-negative weights; received sample_weight[{i}] = {w}"
            )));
        }
        Ok(())
    }

    /// Runs up to `n_batches` training steps over the samples `order[b·bs .. (b+1)·bs]`
    /// (or consecutive samples when `order` is None), starting at batch `first_batch`.
    /// `lrs`, when given, holds each step's learning rate (a schedule's values, in order);
    /// else every step uses the compiled one. `sample_weight`, when given, holds one weight
    /// per sample (row of `x`, indexed as `x` through `order`). Stops right after a step
    /// whose loss is not finite. Returns the steps taken.
    #[allow(clippy::too_many_arguments)]
    pub fn train_steps(
        &mut self,
        pool: &ThreadPool,
        x: &View2<'_>,
        y: &View2<'_>,
        order: Option<&[usize]>,
        batch_size: usize,
        first_batch: usize,
        n_batches: usize,
        lrs: Option<&[f32]>,
        sample_weight: Option<&[f32]>,
    ) -> Result<usize> {
        let loss = self.compiled_mut()?.loss;
        self.check_x(x)?;
        self.check_y(x, y, loss)?;
        Self::check_sample_weight(x, sample_weight)?;
        let n = x.rows();
        if let Some(o) = order {
            if o.len() != n || o.iter().any(|&i| i >= n) {
                return Err(Error::Value(format!(
                    "order must be a permutation of 0..{n}"
                )));
            }
        }
        if batch_size == 0 {
            return Err(Error::Value("batch_size must be a positive integer".into()));
        }
        let steps = n.div_ceil(batch_size);
        let last = (first_batch + n_batches).min(steps);
        if let Some(lrs) = lrs {
            let need = last.saturating_sub(first_batch);
            if lrs.len() < need {
                return Err(Error::Value(format!(
                    "{need} steps need {need} learning rates; received {}",
                    lrs.len()
                )));
            }
            if let Some((k, lr)) = lrs[..need]
                .iter()
                .enumerate()
                .find(|(_, l)| optim::check_learning_rate(**l).is_err())
            {
                return Err(Error::Value(format!(
                    "the learning rate of step {} (iteration {}) is {lr}; it must be a finite non-negative float",
                    k,
                    self.iterations + k as u64
                )));
            }
        }
        let threads = pool.current_num_threads();
        let adaptive = self.adaptive && threads > 1;
        if adaptive && self.tuner.as_ref().map(|t| t.full()) != Some(threads) {
            self.tuner = Some(WidthTuner::new(threads));
        }
        pool.install(|| {
            team::scoped(threads, |team| {
                self.ensure_capacity(batch_size.min(n.max(1)));
                let mut done = 0;
                for b in first_batch..last {
                    let start = b * batch_size;
                    let rows = batch_size.min(n - start);
                    let tuner = self.tuner.as_ref().filter(|_| adaptive);
                    if let Some(t) = tuner {
                        team.set_width(t.width());
                    }
                    let t0 = tuner.map(|_| Instant::now());
                    self.load_batch(team, x, y, order, sample_weight, start, rows, loss, true)?;
                    let lr = lrs.map(|l| l[b - first_batch]);
                    let batch_loss = self.train_step(rows, team, lr)?;
                    if let (Some(t0), Some(t)) = (t0, self.tuner.as_mut()) {
                        t.record(t0.elapsed().as_secs_f64());
                    }
                    done += 1;
                    if !batch_loss.is_finite() {
                        break;
                    }
                }
                Ok(done)
            })
        })
    }

    /// Runs up to `n_batches` evaluation batches (inference mode) and accumulates the loss
    /// and metrics into the running sums, with `sample_weight` (one weight per row of `x`)
    /// when given. Returns the batches processed.
    #[allow(clippy::too_many_arguments)]
    pub fn test_steps(
        &mut self,
        pool: &ThreadPool,
        x: &View2<'_>,
        y: &View2<'_>,
        batch_size: usize,
        first_batch: usize,
        n_batches: usize,
        sample_weight: Option<&[f32]>,
    ) -> Result<usize> {
        let loss = self.compiled_mut()?.loss;
        self.check_x(x)?;
        self.check_y(x, y, loss)?;
        Self::check_sample_weight(x, sample_weight)?;
        if batch_size == 0 {
            return Err(Error::Value("batch_size must be a positive integer".into()));
        }
        let n = x.rows();
        let steps = n.div_ceil(batch_size);
        let last = (first_batch + n_batches).min(steps);
        let threads = pool.current_num_threads();
        pool.install(|| {
            team::scoped(threads, |team| {
                self.ensure_capacity(batch_size.min(n.max(1)));
                // The weights do not change while evaluating: one penalty for every batch.
                let penalty = self.regularize(false);
                for b in first_batch..last {
                    let start = b * batch_size;
                    let rows = batch_size.min(n - start);
                    self.load_batch(team, x, y, None, sample_weight, start, rows, loss, false)?;
                    self.forward(rows, false, self.fused_output, team);
                    let sum = self.loss_and_grad(rows, false, team);
                    self.accumulate(rows, sum + rows as f64 * penalty);
                }
                Ok(last.saturating_sub(first_batch))
            })
        })
    }

    /// Inference-mode outputs for rows `start .. start + out.len()/output_dim` of `x`,
    /// computed `chunk` rows at a time, written into `out` (row-major).
    pub fn predict(
        &mut self,
        pool: &ThreadPool,
        x: &View2<'_>,
        start: usize,
        chunk: usize,
        out: &mut [f32],
    ) -> Result<()> {
        self.check_x(x)?;
        let od = self.output_dim();
        if od == 0 || !out.len().is_multiple_of(od) {
            return Err(Error::Shape(
                "output buffer size is not a multiple of the output width".into(),
            ));
        }
        let rows_total = out.len() / od;
        if start + rows_total > x.rows() {
            return Err(Error::Shape(format!(
                "rows {start}..{} are out of range for an input of {} samples",
                start + rows_total,
                x.rows()
            )));
        }
        let chunk = chunk.max(1);
        let threads = pool.current_num_threads();
        pool.install(|| {
            team::scoped(threads, |team| {
                self.ensure_capacity(chunk.min(rows_total.max(1)));
                let mut r = 0;
                while r < rows_total {
                    let rows = chunk.min(rows_total - r);
                    self.ws.index.clear();
                    self.ws.index.extend(start + r..start + r + rows);
                    self.gather_batch(team, x, false);
                    self.forward(rows, false, false, team);
                    let src = self.output(rows);
                    out[r * od..(r + rows) * od].copy_from_slice(src);
                    r += rows;
                }
                Ok(())
            })
        })
    }

    /// Training-mode forward over all rows of `x` as one batch (what `model(x, training=True)`
    /// does in Keras: batch statistics, dropout, and the moving statistics updated once).
    /// Every call draws fresh dropout masks (Monte-Carlo dropout), from a stream of its own
    /// that training steps never use, so these calls leave training's masks unchanged.
    pub fn forward_training(
        &mut self,
        pool: &ThreadPool,
        x: &View2<'_>,
        out: &mut [f32],
    ) -> Result<()> {
        self.check_x(x)?;
        let rows = x.rows();
        let od = self.output_dim();
        if out.len() != rows * od {
            return Err(Error::Shape(format!(
                "output buffer holds {} values; {rows} rows of {od} outputs need {}",
                out.len(),
                rows * od
            )));
        }
        if rows == 0 {
            return Ok(());
        }
        let threads = pool.current_num_threads();
        pool.install(|| {
            team::scoped(threads, |team| {
                self.ensure_capacity(rows);
                self.ws.index.clear();
                self.ws.index.extend(0..rows);
                self.gather_batch(team, x, false);
                let stream = TRAINING_CALL_STREAM | self.training_calls;
                self.training_calls = (self.training_calls + 1) & !TRAINING_CALL_STREAM;
                self.forward_with(rows, true, false, team, stream);
                out.copy_from_slice(self.output(rows));
                Ok(())
            })
        })
    }

    /// Gathers the rows `ws.index` of `x` into the workspace, through the first layer, which
    /// may note what it needs of them as they are loaded ([`Layer::load_input`]; `step`: the
    /// batch of a training step).
    fn gather_batch(&mut self, team: &Team, x: &View2<'_>, step: bool) {
        let rows = self.ws.index.len();
        let level = self.level;
        let (index, dst) = (&self.ws.index, &mut self.ws.x[..rows * self.input_dim]);
        let mut load = |sink: Option<&dyn RowSink>| gather(team, level, x, index, dst, sink);
        match self.layers.first_mut() {
            Some(first) => first.load_input(team, rows, step, &mut load),
            None => load(None),
        }
    }

    /// Loads the batch of samples `order[start..start + rows]` (or `start..start + rows`):
    /// inputs, targets and, when given, their sample weights (checked by the caller). `step`:
    /// the batch of a training step.
    #[allow(clippy::too_many_arguments)]
    fn load_batch(
        &mut self,
        team: &Team,
        x: &View2<'_>,
        y: &View2<'_>,
        order: Option<&[usize]>,
        sample_weight: Option<&[f32]>,
        start: usize,
        rows: usize,
        loss: LossSpec,
        step: bool,
    ) -> Result<()> {
        self.ws.index.clear();
        match order {
            Some(o) => self.ws.index.extend_from_slice(&o[start..start + rows]),
            None => self.ws.index.extend(start..start + rows),
        }
        self.gather_batch(team, x, step);
        self.ws.weighted = sample_weight.is_some();
        if let Some(sw) = sample_weight {
            for (w, &i) in self.ws.w[..rows].iter_mut().zip(&self.ws.index) {
                *w = sw[i];
            }
        }
        if loss.sparse_targets() {
            y.gather_labels(&self.ws.index, &mut self.ws.labels[..rows]);
            let classes = self.output_dim() as i64;
            if let Some((i, &bad)) = self.ws.labels[..rows]
                .iter()
                .enumerate()
                .find(|(_, &l)| l < 0 || l >= classes)
            {
                return Err(Error::Value(format!(
                    "Received a label value of {bad} (sample {}) which is outside the valid range of [0, {classes})",
                    self.ws.index[i]
                )));
            }
        } else {
            let od = self.output_dim();
            y.gather_f32(&self.ws.index, &mut self.ws.y[..rows * od]);
        }
        Ok(())
    }

    /// Forward pass over the `rows` rows loaded in the workspace; with `logits_only`, the last
    /// layer stops at its logits (the loss applies its activation: `fused_output`). Dropout
    /// draws the masks of the current optimizer step.
    fn forward(&mut self, rows: usize, training: bool, logits_only: bool, team: &Team) {
        self.forward_with(rows, training, logits_only, team, self.iterations);
    }

    /// [`Engine::forward`] with dropout masks from stream `step` of each layer's seed.
    fn forward_with(
        &mut self,
        rows: usize,
        training: bool,
        logits_only: bool,
        team: &Team,
        step: u64,
    ) {
        let ctx = layers::Ctx {
            level: self.level,
            team,
            rows,
            training,
            step,
            logits_only: false,
        };
        for i in 0..self.layers.len() {
            let (before, rest) = self.layers.split_at_mut(i);
            let input = match before.last() {
                Some(prev) => prev.output(rows),
                None => &self.ws.x[..rows * self.input_dim],
            };
            let last = layers::Ctx {
                logits_only: logits_only && rest.len() == 1,
                ..ctx
            };
            let io = layers::Forward {
                input,
                vars: &mut self.vars,
                infos: &self.infos,
                gemm: &mut self.gemm,
            };
            rest[0].forward(&last, io);
        }
    }

    fn output(&self, rows: usize) -> &[f32] {
        match self.layers.last() {
            Some(l) => l.output(rows),
            None => &self.ws.x[..rows * self.input_dim],
        }
    }

    /// Sum over the batch of the per-sample loss (weighted by the batch's sample weights when
    /// it has some). With `grad`, writes dL/d(output) — or dL/d(logits) on the fused
    /// softmax/sigmoid path — scaled by 1/rows (by `w_i`/rows for row i) into `ws.g[0]`.
    ///
    /// The loss kernels run on fixed chunks of [`LOSS_CHUNK`] rows, whose sums are added in
    /// order, so the total is the same however the chunks are split over the team (batches
    /// of at least two parts of [`LOSS_MIN_CHUNKS`] chunks split: ~36 µs per step at batch
    /// 512 was serial).
    fn loss_and_grad(&mut self, rows: usize, grad: bool, team: &Team) -> f64 {
        let loss = self.compiled.as_ref().expect("compiled").loss;
        let level = self.level;
        let od = self.output_dim();
        let n = rows * od;
        let scale = 1.0 / rows as f32;
        let Workspace {
            x,
            y,
            labels,
            probs,
            g,
            loss_sums,
            w,
            weighted,
            ..
        } = &mut self.ws;
        let x = &x[..rows * self.input_dim];
        let dense = &y[..n];
        let sparse = &labels[..rows];
        let weights = weighted.then_some(&w[..rows]);
        let [g0, _] = g;
        let fused = self.fused_output;
        // Logits (fused: the last layer's, whose output the loss writes) or the output.
        let (out, p): (&[f32], &mut [f32]) = if fused {
            let li = self.layers.len() - 1;
            let (before, rest) = self.layers.split_at_mut(li);
            let prev_out = before.last().map_or(x, |p| p.output(rows));
            rest[0].logits_and_output(rows, prev_out)
        } else {
            let out = self.layers.last().map_or(x, |l| l.output(rows));
            (out, &mut probs[..n])
        };
        let chunk_loss = |r: std::ops::Range<usize>, p: &mut [f32], g: Option<&mut [f32]>| -> f64 {
            let (rows, span) = (r.len(), r.start * od..r.end * od);
            let w = weights.map(|w| &w[r.clone()]);
            let out = &out[span.clone()];
            let dense = &dense[span];
            let targets = if loss.sparse_targets() {
                Targets::Sparse(&sparse[r])
            } else {
                Targets::Dense(dense)
            };
            let b = Batch {
                out,
                rows,
                cols: od,
                targets,
                weights: w,
            };
            loss.sum(level, b, fused, p, g, scale)
        };
        let chunks = rows.div_ceil(LOSS_CHUNK);
        let sums = &mut loss_sums[..chunks];
        let pd = Disjoint::new(&mut p[..n]);
        let gd = grad.then(|| Disjoint::new(&mut g0[..n]));
        let sd = Disjoint::new(&mut *sums);
        team.for_ranges(chunks, LOSS_MIN_CHUNKS, 1, &|cs| {
            for c in cs {
                let r = c * LOSS_CHUNK..((c + 1) * LOSS_CHUNK).min(rows);
                let span = r.start * od..r.end * od;
                // SAFETY: every part takes its own chunks, hence its own rows of `p` and `g`
                // and its own chunk sums.
                let (p, g, sum) = unsafe {
                    (
                        pd.range(span.clone()),
                        gd.as_ref().map(|g| g.range(span)),
                        sd.range(c..c + 1),
                    )
                };
                sum[0] = chunk_loss(r, p, g);
            }
        });
        sums.iter().sum()
    }

    /// Adds this batch's loss and metrics to the running sums.
    fn accumulate(&mut self, rows: usize, loss_sum: f64) {
        let c = self.compiled.as_ref().expect("compiled");
        let level = self.level;
        let od = self.output_dim();
        let n = rows * od;
        let Workspace {
            x,
            y,
            labels,
            w,
            weighted,
            probs,
            ..
        } = &mut self.ws;
        let out = match self.layers.last() {
            Some(l) => l.output(rows),
            None => &x[..n],
        };
        // Keras adds `batch_loss · batch_size` where batch_loss = Σ/rows: the same sum.
        self.stats.loss_sum += loss_sum;
        self.stats.count += rows as u64;
        let (dense, labels) = (&y[..n], &labels[..rows]);
        let weights = weighted.then_some(&w[..rows]);
        // The loss's probabilities are spent by now: metrics on logits may write there.
        let scratch = &mut probs[..n];
        for (m, state) in c.metrics.iter().zip(&mut self.stats.metric_states) {
            let targets = if m.spec.sparse_targets() {
                Targets::Sparse(labels)
            } else {
                Targets::Dense(dense)
            };
            let b = Batch {
                out,
                rows,
                cols: od,
                targets,
                weights: weights.filter(|_| m.weighted),
            };
            m.spec.update(level, b, scratch, state);
        }
    }

    /// One optimizer step on the batch loaded in the workspace, at learning rate `lr` (else
    /// the compiled one). Returns the batch loss.
    fn train_step(&mut self, rows: usize, team: &Team, lr: Option<f32>) -> Result<f64> {
        let lr = lr.unwrap_or(self.compiled_mut()?.opt.learning_rate);
        self.forward(rows, true, self.fused_output, team);
        let sum = self.loss_and_grad(rows, true, team);
        self.accumulate(rows, sum);
        let fuse = self.fusable_update(rows, lr);
        let applied = self.backward_fused(rows, team, fuse);
        let fused = fuse.filter(|_| applied).map(|(var, ..)| var);
        self.last_fused = fused.is_some();
        // Keras adds the regularizers' penalties (at the weights before the update) to the
        // batch loss, and so to the loss History reports.
        let penalty = self.regularize(true);
        self.stats.loss_sum += rows as f64 * penalty;
        self.apply_gradients(team, fused, lr);
        self.iterations += 1;
        Ok(sum / rows as f64 + penalty)
    }

    /// The update the first layer's weight gradient may apply itself (plain SGD: no momentum,
    /// no weight decay), for a batch of `rows`: which variable ([`Layer::fusable_var`]), and
    /// `clip`, `None` for norm clipping, whose scale the layer finds first from the
    /// gradient's norm, where measuring that costs less than storing the gradient.
    fn fusable_update(&self, rows: usize, lr: f32) -> Option<Fuse> {
        let opt = self.compiled.as_ref()?.opt;
        // A regularizer's gradient is added after the backward pass, to stored gradients.
        let step = opt
            .plain_sgd(lr)
            .filter(|_| self.fuse_sgd && self.regularizers.is_empty())?;
        let first = self.layers.first()?;
        let (clip, norm_clip) = match opt.clip {
            Clip::None => (Some(ClipElem::None), false),
            Clip::Value(v) => (Some(ClipElem::Value(v)), false),
            Clip::Norm(_) | Clip::GlobalNorm(_) => (None, true),
        };
        let var = match (norm_clip, self.fuse_norm_clip) {
            (true, Some(fuse)) => first.fusable_var(rows, false).filter(|_| fuse),
            _ => first.fusable_var(rows, norm_clip),
        }?;
        Some((var, clip, step))
    }

    #[cfg(test)]
    fn backward(&mut self, rows: usize, team: &Team) {
        self.backward_fused(rows, team, None);
    }

    /// Backward pass; with `fuse`, the first layer may apply that update of its variable
    /// with its weight gradient. Returns whether it did (that variable's gradient is then not
    /// stored).
    fn backward_fused(&mut self, rows: usize, team: &Team, fuse: Option<Fuse>) -> bool {
        let mut applied = false;
        let (level, infos) = (self.level, &self.infos);
        let fused_var = fuse.map(|(var, ..)| var);
        let clip = self.compiled.as_ref().map_or(Clip::None, |c| c.opt.clip);
        // Norm clipping's scale from the fused variable's gradient Σ g² (and, global, the other
        // gradients' sums, taken while the layer measures that one's), as `apply_gradients`
        // computes it: the same sums in the same order.
        let (kept, kept_set) = (&self.kept_squares, &self.kept_squares_set);
        let trainable = || {
            infos
                .iter()
                .enumerate()
                .filter(|(_, v)| v.trainable)
                .zip(kept)
        };
        let others = |grads: &[f32]| {
            for ((_, v), k) in trainable().filter(|((i, _), _)| Some(*i) != fused_var) {
                let s = kernels::sum_squares(level, &grads[v.offset..v.offset + v.len]);
                k.store(s.to_bits(), Ordering::Relaxed);
            }
        };
        let scale = |sq: f64| {
            let mut total = 0.0f64;
            for ((i, _), k) in trainable() {
                if Some(i) == fused_var {
                    k.store(sq.to_bits(), Ordering::Relaxed);
                }
                total += f64::from_bits(k.load(Ordering::Relaxed));
            }
            kept_set.store(true, Ordering::Relaxed);
            match clip {
                Clip::GlobalNorm(_) => optim::norm_clip_scale(clip, total),
                _ => optim::norm_clip_scale(clip, sq),
            }
        };
        let norm = layers::NormClip {
            others: &others,
            scale: &scale,
        };
        let ctx = layers::Ctx {
            level: self.level,
            team,
            rows,
            training: true,
            step: self.iterations,
            logits_only: false,
        };
        let n_layers = self.layers.len();
        let mut cur = 0usize; // which of ws.g holds dL/d(output of layer i)
        for i in (self.first_trainable..n_layers).rev() {
            let skip_act = self.fused_output && i + 1 == n_layers;
            let need_input_grad = i > self.first_trainable;
            let (before, rest) = self.layers.split_at_mut(i);
            let input = match before.last() {
                Some(prev) => prev.output(rows),
                None => &self.ws.x[..rows * self.input_dim],
            };
            let [ga, gb] = &mut self.ws.g;
            let (g, g_in) = if cur == 0 { (ga, gb) } else { (gb, ga) };
            let (vars, mut fused): (&[f32], _) = match (i, fuse) {
                // The first layer needs no input gradient, so no variables to read: the
                // variable it may update is lent to the fused update instead.
                (0, Some((k, clip, step))) if !need_input_grad => (
                    &[],
                    Some(FusedSgd {
                        w: &mut self.vars[infos[k].offset..infos[k].offset + infos[k].len],
                        clip: clip.unwrap_or(ClipElem::None),
                        step,
                        norm: clip.is_none().then_some(norm),
                        norm_sq: None,
                        applied: false,
                        finite: true,
                    }),
                ),
                _ => (&self.vars, None),
            };
            let io = layers::Backward {
                input,
                g,
                g_in,
                skip_act,
                need_input_grad,
                vars,
                grads: &mut self.grads,
                infos: &self.infos,
                gemm: &mut self.gemm,
                fused: fused.as_mut(),
            };
            let swapped = rest[0].backward(&ctx, io);
            applied |= fused.is_some_and(|f| f.applied);
            if swapped {
                cur ^= 1;
            }
        }
        applied
    }

    /// The optimizer step for every trainable variable at learning rate `lr`, in Keras's
    /// order (`BaseOptimizer.apply`, JAX backend): gradient accumulation, clip, decoupled
    /// weight decay, the rule's update, the weights' moving average. `fused` is the variable
    /// that its weight gradient already updated, if any.
    fn apply_gradients(&mut self, team: &Team, fused: Option<usize>, lr: f32) {
        let c = self.compiled.as_ref().expect("compiled");
        let opt = c.opt;
        let level = self.level;
        // Keras's `optimizer.iterations`: steps taken, or updates made when accumulating.
        let iteration = opt
            .accumulate
            .map_or(self.iterations, |k| self.iterations / k);
        if let Some(k) = opt.accumulate {
            // Between updates the gradient is only added to its accumulator; on every k-th
            // step the update uses (g + acc)/k and the accumulator restarts from zero.
            let update = (self.iterations + 1).is_multiple_of(k);
            let acc = &mut self.slots[usize::from(opt.ema.is_some())];
            for v in self.infos.iter().filter(|v| v.trainable) {
                let r = v.offset..v.offset + v.len;
                let (g, a) = (&mut self.grads[r.clone()], &mut acc[r]);
                if update {
                    optim::take_accumulated(level, g, a, k as f32);
                } else {
                    optim::accumulate(level, a, g);
                }
            }
            if !update {
                self.ema_step(team, iteration);
                return;
            }
        }
        self.rule_state = opt.rule.begin_step(self.rule_state, iteration);
        let step = Step {
            lr,
            iteration,
            weight_decay: opt.weight_decay,
            state: self.rule_state,
        };
        let (owner, penalized) = (&self.owner, &self.penalized);
        // Σ g² of variable `i`; its layer's backward may have summed it already, row by row
        // while the rows were in cache.
        let sum_squares = |layers: &[Layer], i: usize, g: &[f32]| {
            Some(i)
                .filter(|&i| opt.accumulate.is_none() && !penalized[i])
                .and_then(|i| layers[owner[i]].grad_sum_squares(level, i))
                .unwrap_or_else(|| kernels::sum_squares(level, g))
        };
        // Taken already for the fused update (the same sums).
        let kept = self.kept_squares_set.swap(false, Ordering::Relaxed) && fused.is_some();
        let kept_sq = |k: usize| f64::from_bits(self.kept_squares[k].load(Ordering::Relaxed));
        let global_scale = if let Clip::GlobalNorm(cn) = opt.clip {
            let mut sq = 0.0f64;
            let trainable = self.infos.iter().enumerate().filter(|(_, v)| v.trainable);
            for (k, (i, v)) in trainable.enumerate() {
                let s = match kept {
                    true => kept_sq(k),
                    false => sum_squares(&self.layers, i, &self.grads[v.offset..v.offset + v.len]),
                };
                self.clip_stats.last_norms[k] = s.sqrt();
                sq += s;
            }
            if sq.sqrt() as f32 > cn {
                self.clip_stats.fired.iter_mut().for_each(|f| *f += 1);
            }
            Some(optim::norm_clip_scale(opt.clip, sq))
        } else {
            None
        };
        let (base, n_slots) = (opt.base_slots(), opt.slots());
        let trainable = self.infos.iter().enumerate().filter(|(_, v)| v.trainable);
        for (k, (i, v)) in trainable.enumerate() {
            let range = v.offset..v.offset + v.len;
            let g = &self.grads[range.clone()];
            let clip = match opt.clip {
                Clip::None => ClipElem::None,
                Clip::Value(cv) => ClipElem::Value(cv),
                Clip::GlobalNorm(_) => ClipElem::Scale(global_scale.unwrap_or(1.0)),
                Clip::Norm(cn) => {
                    let sq = match kept {
                        true => kept_sq(k),
                        false => sum_squares(&self.layers, i, g),
                    };
                    self.clip_stats.last_norms[k] = sq.sqrt();
                    if sq.sqrt() as f32 > cn {
                        self.clip_stats.fired[k] += 1;
                    }
                    ClipElem::Scale(optim::norm_clip_scale(opt.clip, sq))
                }
            };
            if fused == Some(i) {
                // Applied with its weight gradient (with the scale above, under norm
                // clipping).
                continue;
            }
            let w = Disjoint::new(&mut self.vars[range.clone()]);
            let mut rule_slots = self.slots[base..n_slots].iter_mut();
            let slots: [Option<Disjoint<'_, f32>>; MAX_SLOTS] = std::array::from_fn(|_| {
                rule_slots
                    .next()
                    .map(|s| Disjoint::new(&mut s[range.clone()]))
            });
            // The rule's update of the flat range `r` of this variable; with `check`, returns
            // whether the weights it wrote are finite.
            let update = |r: std::ops::Range<usize>, check: bool| {
                // SAFETY: callers hand every part its own range of the variable, so the
                // weight and slot sub-slices of different parts never overlap.
                let w = unsafe { w.range(r.clone()) };
                let mut s: [&mut [f32]; MAX_SLOTS] = Default::default();
                for (dst, src) in s.iter_mut().zip(slots.iter().flatten()) {
                    // SAFETY: as above.
                    *dst = unsafe { src.range(r.clone()) };
                }
                let s = &mut s[..n_slots - base];
                opt.rule.update(level, w, &g[r], s, clip, &step, check)
            };
            // A clip maps 0 to 0 unless its scale is NaN.
            let zero_is_noop = opt.zero_grad_is_noop()
                && !self.penalized[i]
                && !matches!(clip, ClipElem::Scale(s) if !s.is_finite());
            // The variable's layer may apply the update itself (checking what it wrote).
            let layer = &mut self.layers[self.owner[i]];
            if !layer.apply_update(team, i, v.len, zero_is_noop, &|r| update(r, true)) {
                layers::update_parts(team, v.len, &|r| update(r, false));
            }
        }
        self.clip_stats.steps += 1;
        self.ema_step(team, iteration);
    }

    /// Keras's moving average of the weights after a step at `iteration` (`use_ema`):
    /// `avg ← m·avg + (1 − m)·w` with `m = 0` at the first step, and the weights overwritten
    /// by their averages every `ema_overwrite_frequency` steps.
    fn ema_step(&mut self, team: &Team, iteration: u64) {
        let Some(ema) = self.compiled.as_ref().and_then(|c| c.opt.ema) else {
            return;
        };
        let m = if iteration != 0 { ema.momentum } else { 0.0 };
        let overwrite = ema
            .overwrite_frequency
            .is_some_and(|f| (iteration + 1).is_multiple_of(f));
        let level = self.level;
        for v in self.infos.iter().filter(|v| v.trainable) {
            let range = v.offset..v.offset + v.len;
            let w = Disjoint::new(&mut self.vars[range.clone()]);
            let avg = Disjoint::new(&mut self.slots[0][range]);
            team.for_ranges(v.len, UPDATE_MIN_PART, 16, &|r| {
                // SAFETY: every part takes its own range of the variable and its average.
                let (w, avg) = unsafe { (w.range(r.clone()), avg.range(r)) };
                optim::ema_update(level, avg, w, m, overwrite);
            });
        }
        if overwrite {
            self.vars_written();
        }
    }
}

/// An update a layer may apply with its weight gradient: the variable, its clip (`None` for
/// norm clipping, see [`FusedSgd::norm`]) and the plain-SGD step.
type Fuse = (usize, Option<ClipElem>, SgdStep);

/// Whether `KEROX_ADAPTIVE_THREADS` lets training steps pick their width (anything but `0`;
/// read once).
fn adaptive_by_env() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("KEROX_ADAPTIVE_THREADS").map_or(true, |v| v.trim() != "0"))
}

/// Fewest input values one thread gathers alone (rows of a batch come from anywhere in the
/// input, mostly from memory, so two threads fetch them about twice as fast).
const GATHER_MIN_PART: usize = 1 << 12;

/// Gathers rows `index` of `x` (converted to f32) into `dst`, split by rows over the team,
/// handing each part's rows to `sink` (if any) while they are in cache.
fn gather(
    team: &Team,
    level: Level,
    x: &View2<'_>,
    index: &[usize],
    dst: &mut [f32],
    sink: Option<&dyn RowSink>,
) {
    let cols = x.cols();
    let d = Disjoint::new(dst);
    team.for_ranges(index.len(), GATHER_MIN_PART / cols.max(1), 1, &|r| {
        // SAFETY: `for_ranges` gives every part its own rows, so the parts' slices of `dst`
        // (whole rows) never overlap.
        let out = unsafe { d.range(r.start * cols..r.end * cols) };
        x.gather_f32(&index[r.clone()], out);
        if let Some(s) = sink {
            // SAFETY: as above, rows `r` are this part's alone.
            unsafe { s.rows(level, r.start, out) };
        }
    });
}

/// Rows per loss chunk (see `Engine::loss_and_grad`), and fewest chunks per part.
const LOSS_CHUNK: usize = 64;
const LOSS_MIN_CHUNKS: usize = 2;

/// The top bit of the dropout stream counter marks `forward_training` calls (whose count is
/// the other bits), so they never draw the masks of an optimizer step.
const TRAINING_CALL_STREAM: u64 = 1 << 63;

/// Fewest elements of a variable one thread updates alone (~2 µs of the SGD update).
const UPDATE_MIN_PART: usize = 1 << 14;

#[cfg(test)]
mod tests;
