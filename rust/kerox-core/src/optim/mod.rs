//! The optimizer: one base, as Keras 3's `BaseOptimizer`, and one file per update rule.
//!
//! The base holds what every Keras optimizer shares and applies it in Keras's order for one
//! step (`keras-spec.md` §4.2): gradient accumulation, clipping (exactly one of clipnorm /
//! global_clipnorm / clipvalue), decoupled weight decay, the rule's update, the moving average
//! of the weights (EMA) and the iteration counter (the engine drives these per variable; this
//! module gives it the pieces). A rule (`sgd.rs`, `adam.rs`, …) only says what its settings
//! are (Keras's names and defaults, validated), which slot buffers it keeps per variable, and
//! how one element is updated; [`elementwise`] runs that over a variable with the clip and the
//! decay folded into the same pass, and `multiversion!` compiles it for every dispatch level.
//!
//! Adding a rule: its file, plus one line in [`registry!`] below and one in the Python
//! registry (`kerox.keras.optimizers`).

use crate::dispatch::Level;
use crate::error::{Error, Result};

/// Implements [`UpdateRule::update`] (inside a rule's `impl UpdateRule`) by `$body`, an
/// `#[inline(always)] fn(w, g, slots, clip, step, rule: &$rule, check) -> bool` (most use
/// [`elementwise`]), compiled for every dispatch level by `multiversion!`.
macro_rules! update_by {
    ($rule:ty, $body:path) => {
        fn update(
            &self,
            level: $crate::dispatch::Level,
            w: &mut [f32],
            g: &[f32],
            slots: &mut [&mut [f32]],
            clip: $crate::optim::ClipElem,
            step: &$crate::optim::Step,
            check: bool,
        ) -> bool {
            multiversion! {
                #[allow(clippy::too_many_arguments)]
                fn kernel(
                    w: &mut [f32],
                    g: &[f32],
                    slots: &mut [&mut [f32]],
                    clip: $crate::optim::ClipElem,
                    step: &$crate::optim::Step,
                    rule: &$rule,
                    check: bool
                ) -> bool => $body;
            }
            kernel(level, w, g, slots, clip, step, self, check)
        }
    };
}

mod adadelta;
mod adagrad;
mod adam;
mod adamax;
mod lion;
mod nadam;
mod rmsprop;
mod sgd;

pub use adadelta::Adadelta;
pub use adagrad::Adagrad;
pub use adam::Adam;
pub use adamax::Adamax;
pub use lion::Lion;
pub use nadam::Nadam;
pub use rmsprop::Rmsprop;
pub use sgd::{sgd_update, Sgd, SgdStep};

/// Gradient clipping, exactly one kind (Keras 3 rejects combinations).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Clip {
    None,
    /// Per variable: `g·c / max(‖g‖, c)`.
    Norm(f32),
    /// All variables: `g·c·min(1/G, 1/c)` with `G` the global norm.
    GlobalNorm(f32),
    /// Element-wise clamp to `[-v, v]`.
    Value(f32),
}

/// Per-element gradient transform applied before the update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ClipElem {
    None,
    /// g·s, for clipnorm / global_clipnorm (the caller computes s from the norm).
    Scale(f32),
    /// clamp(g, −v, v) (NaN passes through).
    Value(f32),
}

/// Keras's moving average of the weights (`use_ema=True`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ema {
    pub momentum: f32,
    /// Every this many steps the weights are overwritten by their averages.
    pub overwrite_frequency: Option<u64>,
}

/// Everything `compile` hands the engine about the optimizer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OptimizerSpec {
    pub rule: Rule,
    /// The learning rate while no per-step schedule values are given.
    pub learning_rate: f32,
    pub weight_decay: Option<f32>,
    pub clip: Clip,
    pub ema: Option<Ema>,
    /// `gradient_accumulation_steps` (≥ 2), or None.
    pub accumulate: Option<u64>,
}

impl OptimizerSpec {
    /// `rule` with Keras's base defaults (no clipping, decay, EMA or accumulation).
    pub fn new(rule: impl Into<Rule>, learning_rate: f32) -> Self {
        OptimizerSpec {
            rule: rule.into(),
            learning_rate,
            weight_decay: None,
            clip: Clip::None,
            ema: None,
            accumulate: None,
        }
    }

    /// Checks every setting, naming the argument at fault.
    pub fn validate(&self) -> Result<()> {
        check_learning_rate(self.learning_rate)?;
        if let Some(wd) = self.weight_decay {
            if !(wd.is_finite() && wd >= 0.0) {
                return Err(Error::Value(format!(
                    "`weight_decay` must be a finite non-negative float. Received: weight_decay={wd}"
                )));
            }
        }
        match self.clip {
            Clip::Norm(v) | Clip::GlobalNorm(v) | Clip::Value(v) if !(v > 0.0 && v.is_finite()) => {
                return Err(Error::Value(format!(
                    "clipping thresholds must be positive and finite. Received: {v}"
                )))
            }
            _ => {}
        }
        if let Some(e) = self.ema {
            if !(0.0..=1.0).contains(&e.momentum) {
                return Err(Error::Value(format!(
                    "`ema_momentum` must be in the range [0, 1]. Received: ema_momentum={}",
                    e.momentum
                )));
            }
            if e.overwrite_frequency == Some(0) {
                return Err(Error::Value(
                    "`ema_overwrite_frequency` must be a positive integer or None".into(),
                ));
            }
        }
        if let Some(k) = self.accumulate {
            if k < 2 {
                return Err(Error::Value(format!(
                    "`gradient_accumulation_steps` must be an integer >= 2. Received: gradient_accumulation_steps={k}"
                )));
            }
        }
        self.rule.validate()
    }

    /// The base's own slots per trainable variable, before the rule's, in Keras's order
    /// (`BaseOptimizer.build`: the EMA average, then the gradient accumulator).
    pub fn base_slots(&self) -> usize {
        usize::from(self.ema.is_some()) + usize::from(self.accumulate.is_some())
    }

    /// Slot buffers per trainable variable (the base's, then the rule's).
    pub fn slots(&self) -> usize {
        self.base_slots() + self.rule.slots().len()
    }

    /// Whether a step leaves a weight whose gradient is exactly zero (and its slots)
    /// unchanged, so the sparse-input path may skip kernel rows no input touched. Under
    /// gradient accumulation the gradient is added to its accumulator, so every row is read.
    pub fn zero_grad_is_noop(&self) -> bool {
        self.weight_decay.is_none() && self.accumulate.is_none() && self.rule.zero_grad_is_noop()
    }

    /// The plain-SGD step (no momentum, no weight decay, no accumulation) that a
    /// sparse-input weight gradient may apply itself as it computes each kernel row.
    pub fn plain_sgd(&self, lr: f32) -> Option<SgdStep> {
        match self.rule {
            Rule::Sgd(s) if s.momentum == 0.0 && self.zero_grad_is_noop() => Some(SgdStep {
                lr,
                momentum: 0.0,
                nesterov: s.nesterov,
                weight_decay: None,
            }),
            _ => None,
        }
    }
}

/// A learning rate the engine accepts: finite and not negative.
pub fn check_learning_rate(lr: f32) -> Result<()> {
    if !lr.is_finite() || lr < 0.0 {
        return Err(Error::Value(format!(
            "learning_rate must be a finite non-negative float. Received: learning_rate={lr}"
        )));
    }
    Ok(())
}

/// One step's scalars for one variable.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    /// The learning rate of this step (a schedule's value at this step).
    pub lr: f32,
    /// Keras's `optimizer.iterations` before this step (0 at the first update).
    pub iteration: u64,
    /// Decoupled weight decay `w ← w − w·wd·lr`, None when off.
    pub weight_decay: Option<f32>,
    /// The rule's optimizer-wide scalar for this step (see [`UpdateRule::begin_step`]).
    pub state: f32,
}

pub use crate::settings::Settings;

/// One update rule: its settings, slots and element-wise update.
pub trait UpdateRule: Copy + std::fmt::Debug + PartialEq {
    /// Reads the rule's settings (Keras's argument names).
    fn from_settings(s: &dyn Settings) -> Result<Self>;
    /// Checks the settings, naming the argument at fault (a ValueError in Python).
    fn validate(&self) -> Result<()>;
    /// Keras's names of the slot buffers the rule keeps per variable, in the order
    /// [`UpdateRule::update`] takes them.
    fn slots(&self) -> &'static [&'static str];
    /// The value slot `k` starts at.
    fn slot_init(&self, _k: usize) -> f32 {
        0.0
    }
    /// Whether a zero gradient leaves a weight and its slots exactly as they were.
    fn zero_grad_is_noop(&self) -> bool {
        false
    }
    /// The rule's optimizer-wide scalar before the first step (Nadam's `u_product`), if any.
    fn state_init(&self) -> Option<f32> {
        None
    }
    /// That scalar for the step taken at `iteration`, from its value after the last step.
    fn begin_step(&self, state: f32, _iteration: u64) -> f32 {
        state
    }
    /// One step on `w` from its raw gradient `g` (clipped by `clip` element by element, weight
    /// decay from `step` applied first), with the rule's slots for the same elements. With
    /// `check`, returns whether every updated weight is finite (checked while in cache).
    #[allow(clippy::too_many_arguments)]
    fn update(
        &self,
        level: Level,
        w: &mut [f32],
        g: &[f32],
        slots: &mut [&mut [f32]],
        clip: ClipElem,
        step: &Step,
        check: bool,
    ) -> bool;
}

/// The rules kerox has, each under its Keras name: `enum Rule` and its [`UpdateRule`] impl,
/// forwarding to the variant's rule.
macro_rules! registry {
    ($($variant:ident($ty:ty) = $name:literal),* $(,)?) => {
        /// An update rule with its settings.
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub enum Rule {
            $($variant($ty)),*
        }

        $(impl From<$ty> for Rule {
            fn from(r: $ty) -> Rule {
                Rule::$variant(r)
            }
        })*

        impl Rule {
            /// The rule's name as Python's registry passes it.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Rule::$variant(_) => $name),*
                }
            }

            /// Names the rules kerox has.
            pub const NAMES: &'static [&'static str] = &[$($name),*];

            /// The rule called `name`, with its settings read from `s`.
            pub fn from_name(name: &str, s: &dyn Settings) -> Result<Rule> {
                match name {
                    $($name => Ok(Rule::$variant(<$ty as UpdateRule>::from_settings(s)?)),)*
                    other => Err(Error::Value(format!(
                        "unknown optimizer rule {other:?}; kerox has {:?}",
                        Rule::NAMES
                    ))),
                }
            }
        }

        impl UpdateRule for Rule {
            fn from_settings(_: &dyn Settings) -> Result<Self> {
                Err(Error::Value("a rule is named: use Rule::from_name".into()))
            }
            fn validate(&self) -> Result<()> {
                match self { $(Rule::$variant(r) => r.validate()),* }
            }
            fn slots(&self) -> &'static [&'static str] {
                match self { $(Rule::$variant(r) => r.slots()),* }
            }
            fn slot_init(&self, k: usize) -> f32 {
                match self { $(Rule::$variant(r) => r.slot_init(k)),* }
            }
            fn zero_grad_is_noop(&self) -> bool {
                match self { $(Rule::$variant(r) => r.zero_grad_is_noop()),* }
            }
            fn state_init(&self) -> Option<f32> {
                match self { $(Rule::$variant(r) => r.state_init()),* }
            }
            fn begin_step(&self, state: f32, iteration: u64) -> f32 {
                match self { $(Rule::$variant(r) => r.begin_step(state, iteration)),* }
            }
            fn update(
                &self,
                level: Level,
                w: &mut [f32],
                g: &[f32],
                slots: &mut [&mut [f32]],
                clip: ClipElem,
                step: &Step,
                check: bool,
            ) -> bool {
                match self {
                    $(Rule::$variant(r) => r.update(level, w, g, slots, clip, step, check)),*
                }
            }
        }
    };
}

registry! {
    Sgd(Sgd) = "sgd",
    Adam(Adam) = "adam",
    Rmsprop(Rmsprop) = "rmsprop",
    Adagrad(Adagrad) = "adagrad",
    Adadelta(Adadelta) = "adadelta",
    Adamax(Adamax) = "adamax",
    Nadam(Nadam) = "nadam",
    Lion(Lion) = "lion",
}

/// The most slot buffers any rule keeps per variable, plus the base's two.
pub const MAX_SLOTS: usize = 5;

/// Elements updated before the updated weights are checked (stays in L1).
const CHECK_CHUNK: usize = 256;

/// Runs `f(w', g', slots)` over every element, where `g'` is the clipped gradient and `w'`
/// the weight after decoupled weight decay (`w − w·wd·lr`, skipped exactly when off);
/// `f` updates the element's `N` slot values in place and returns the new weight. With
/// `check`, returns whether every new weight is finite (checked chunk by chunk while in
/// cache); else true. Inlined into each rule's `multiversion!` body, so the clip and decay
/// cost no extra pass and the loop is vectorised for the level.
#[inline(always)]
pub(crate) fn elementwise<const N: usize, F>(
    w: &mut [f32],
    g: &[f32],
    slots: &mut [&mut [f32]],
    clip: ClipElem,
    step: &Step,
    check: bool,
    f: F,
) -> bool
where
    F: Fn(f32, f32, &mut [f32; N]) -> f32 + Copy,
{
    match clip {
        ClipElem::None => by_chunks::<N, _, _>(w, g, slots, step, check, |x| x, f),
        ClipElem::Scale(s) => by_chunks::<N, _, _>(w, g, slots, step, check, move |x| x * s, f),
        ClipElem::Value(v) => {
            by_chunks::<N, _, _>(w, g, slots, step, check, move |x| clamp(x, v), f)
        }
    }
}

#[inline(always)]
fn by_chunks<const N: usize, C, F>(
    w: &mut [f32],
    g: &[f32],
    slots: &mut [&mut [f32]],
    step: &Step,
    check: bool,
    clip: C,
    f: F,
) -> bool
where
    C: Fn(f32) -> f32 + Copy,
    F: Fn(f32, f32, &mut [f32; N]) -> f32 + Copy,
{
    let n = w.len();
    assert_eq!(g.len(), n, "w/g length");
    assert_eq!(slots.len(), N, "slot count");
    let mut s: [&mut [f32]; N] = std::array::from_fn(|_| <&mut [f32]>::default());
    for (k, slot) in slots.iter_mut().enumerate() {
        assert_eq!(slot.len(), n, "slot {k} length");
        s[k] = &mut slot[..];
    }
    if !check {
        run::<N, _, _>(w, g, &mut s, step, clip, f);
        return true;
    }
    let mut bits = 0u32;
    let mut start = 0;
    while start < n {
        let end = (start + CHECK_CHUNK).min(n);
        let mut sc: [&mut [f32]; N] = std::array::from_fn(|_| <&mut [f32]>::default());
        for (k, slot) in s.iter_mut().enumerate() {
            sc[k] = &mut slot[start..end];
        }
        let wc = &mut w[start..end];
        run::<N, _, _>(wc, &g[start..end], &mut sc, step, clip, f);
        bits = nonfinite_bits(bits, wc);
        start = end;
    }
    bits == 0
}

#[inline(always)]
fn run<const N: usize, C, F>(
    w: &mut [f32],
    g: &[f32],
    s: &mut [&mut [f32]; N],
    step: &Step,
    clip: C,
    f: F,
) where
    C: Fn(f32) -> f32,
    F: Fn(f32, f32, &mut [f32; N]) -> f32,
{
    let n = w.len();
    let g = &g[..n];
    for slot in s.iter_mut() {
        let _ = &slot[..n];
    }
    let lr = step.lr;
    let (decay, wd) = match step.weight_decay {
        Some(wd) => (true, wd),
        None => (false, 0.0),
    };
    for i in 0..n {
        let mut v: [f32; N] = std::array::from_fn(|k| s[k][i]);
        let gc = clip(g[i]);
        let wv = w[i];
        // Keras: variable − variable·wd·lr.
        let wv = if decay { wv - wv * wd * lr } else { wv };
        w[i] = f(wv, gc, &mut v);
        for k in 0..N {
            s[k][i] = v[k];
        }
    }
}

/// `acc` ORed with the bits of `v − v` for every `v` of `x`: that is +0 (all bits clear) for
/// finite `v` and NaN for ±∞ and NaN, so the result is 0 iff `acc` was and every value is
/// finite (an integer reduction, which the compiler may reorder and vectorise).
#[inline(always)]
pub(crate) fn nonfinite_bits(acc: u32, x: &[f32]) -> u32 {
    #[allow(clippy::eq_op)]
    x.iter().fold(acc, |a, &v| a | (v - v).to_bits())
}

/// clamp(x, −v, v), NaN passing through (`clipvalue`).
#[inline(always)]
pub(crate) fn clamp(x: f32, v: f32) -> f32 {
    if x < -v {
        -v
    } else if x > v {
        v
    } else {
        x
    }
}

/// Keras's scale for norm clipping, from Σ g² of one variable (`Clip::Norm(c)`:
/// `c / max(‖g‖, c)`) or of all (`Clip::GlobalNorm(c)`: `c·min(1/G, 1/c) + (G − G)`, so a
/// non-finite G poisons every step); 1 for the other clips.
pub fn norm_clip_scale(clip: Clip, sq: f64) -> f32 {
    let norm = sq.sqrt() as f32;
    match clip {
        Clip::Norm(c) => c / norm.max(c),
        #[allow(clippy::eq_op)]
        Clip::GlobalNorm(c) => c * (1.0 / norm).min(1.0 / c) + (norm - norm),
        Clip::None | Clip::Value(_) => 1.0,
    }
}

#[inline(always)]
fn accumulate_body(acc: &mut [f32], g: &[f32]) {
    assert_eq!(acc.len(), g.len(), "accumulator length");
    for (a, &g) in acc.iter_mut().zip(g) {
        *a += g;
    }
}

multiversion! {
    /// `acc ← acc + g` (gradient accumulation between updates).
    pub(crate) fn accumulate(acc: &mut [f32], g: &[f32]) => accumulate_body;
}

#[inline(always)]
fn take_accumulated_body(g: &mut [f32], acc: &mut [f32], steps: f32) {
    assert_eq!(acc.len(), g.len(), "accumulator length");
    for (g, a) in g.iter_mut().zip(acc.iter_mut()) {
        *g = (*g + *a) / steps;
        *a = 0.0;
    }
}

multiversion! {
    /// `g ← (g + acc)/steps`, `acc ← 0` (the update step of gradient accumulation).
    pub(crate) fn take_accumulated(g: &mut [f32], acc: &mut [f32], steps: f32)
        => take_accumulated_body;
}

#[inline(always)]
fn ema_update_body(avg: &mut [f32], w: &mut [f32], momentum: f32, overwrite: bool) {
    assert_eq!(avg.len(), w.len(), "average length");
    let k = 1.0 - momentum;
    for (a, &wv) in avg.iter_mut().zip(w.iter()) {
        *a = momentum * *a + k * wv;
    }
    if overwrite {
        // As Keras's JAX backend writes it: avg·1 + w·0.
        for (wv, &a) in w.iter_mut().zip(avg.iter()) {
            *wv = a * 1.0 + *wv * 0.0;
        }
    }
}

multiversion! {
    /// `avg ← m·avg + (1 − m)·w`; with `overwrite`, then `w ← avg` (EMA of the weights).
    pub(crate) fn ema_update(avg: &mut [f32], w: &mut [f32], momentum: f32, overwrite: bool)
        => ema_update_body;
}

/// Keras's `x ** t` for a rule's decay factor in float32 (`ops.power` of two f32 tensors).
#[inline]
pub(crate) fn powf_step(x: f32, t: u64) -> f32 {
    x.powf(t as f32)
}

/// Checks that `value` lies in `[0, 1)` (`beta_1`, `rho`, …), naming `name`.
pub(crate) fn check_unit(name: &str, value: f32) -> Result<()> {
    if !(0.0..1.0).contains(&value) {
        return Err(Error::Value(format!(
            "`{name}` must be a float in [0, 1). Received: {name}={value}"
        )));
    }
    Ok(())
}

/// Checks that `epsilon` (or another positive constant) is a finite number above 0.
pub(crate) fn check_positive(name: &str, value: f32) -> Result<()> {
    if !(value > 0.0 && value.is_finite()) {
        return Err(Error::Value(format!(
            "`{name}` must be a finite float above 0. Received: {name}={value}"
        )));
    }
    Ok(())
}

/// Runs `rule` through the engine's entry point: the update of `w` with `slots` taken as
/// the rule's (no base slots). Tests of every rule share it.
#[cfg(test)]
pub(crate) mod testing;
