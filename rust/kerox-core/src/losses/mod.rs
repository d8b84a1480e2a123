//! Losses: one file per Keras loss (its settings with Keras's names and defaults, its
//! kernels and its tests), and one registry ([`registry!`] below) naming them.
//!
//! A loss returns the SUM over rows of the per-sample loss in f64 (the engine divides by
//! the batch size, Keras's `sum_over_batch_size`) and, if a gradient buffer is given, writes
//! the gradient of `scale·Σ` with respect to the model's output (or, fused, its logits).
//!
//! Every loss takes the batch's `sample_weight` (one weight per row): with weights it returns
//! Σ w_r·loss_r and scales row r's gradient by `scale·w_r`. Without, every row weighs 1, and
//! every weight 1 gives the same bits as none.
//!
//! Element terms are computed in f32 with the vectorisable `kernels::math` functions (into a
//! small stack block) and summed with f64 lanes; `multiversion!` compiles each kernel for
//! every dispatch level, all computing the same expression tree.
//!
//! Adding a loss: its file, plus one line in [`registry!`] and its class in the Python
//! registry (`kerox.keras.losses`).

use std::fmt::Debug;

use crate::dispatch::Level;
use crate::error::{Error, Result};
use crate::kernels::simd::lane_sum_f64;
use crate::kernels::Activation;
use crate::settings::Settings;

/// Defines a loss without settings that is the mean (`mean = true`) or the sum over columns
/// of an element term `term(a, y)` whose derivative in `a` is `c·deriv(a, y)`: the unit
/// struct, its [`LossFn`] impl, and its kernel (see [`over_cols`]) compiled for every
/// dispatch level. Used inside the loss's own file.
macro_rules! elementwise_loss {
    (
        $(#[$doc:meta])*
        $loss:ident, $kernel:ident,
        mean = $mean:literal, c = $c:expr, term = $term:expr, deriv = $deriv:expr $(,)?
    ) => {
        #[derive(Clone, Copy, Debug, Default, PartialEq)]
        pub struct $loss;

        impl $crate::losses::LossFn for $loss {
            fn from_settings(
                _: &dyn $crate::settings::Settings,
            ) -> $crate::error::Result<Self> {
                Ok($loss)
            }

            fn sum(
                &self,
                level: $crate::dispatch::Level,
                b: $crate::losses::Batch<'_>,
                _fused: bool,
                _probs: &mut [f32],
                grad: Option<&mut [f32]>,
                scale: f32,
            ) -> f64 {
                let y = b.dense_targets();
                $kernel(level, b.out, b.rows, b.cols, y, grad, scale, b.weights)
            }
        }

        #[inline(always)]
        fn body(
            a: &[f32],
            rows: usize,
            cols: usize,
            y: &[f32],
            grad: Option<&mut [f32]>,
            scale: f32,
            weights: Option<&[f32]>,
        ) -> f64 {
            $crate::losses::over_cols::<$mean, _, _>(
                a, rows, cols, y, grad, scale, weights, $c, $term, $deriv,
            )
        }

        multiversion! {
            $(#[$doc])*
            /// With `weights` (one per row, Keras's `sample_weight`) it returns Σ w_r·loss_r
            /// and scales row r's gradient by `scale·w_r`; `None` weighs every row 1.
            #[allow(clippy::too_many_arguments)]
            pub fn $kernel(
                a: &[f32],
                rows: usize,
                cols: usize,
                y: &[f32],
                grad: Option<&mut [f32]>,
                scale: f32,
                weights: Option<&[f32]>,
            ) -> f64 => body;
        }
    };
}

mod binary_crossentropy;
mod categorical_crossentropy;
mod categorical_hinge;
mod cosine_similarity;
mod hinge;
mod huber;
mod kl_divergence;
mod log_cosh;
mod mean_absolute_error;
mod mean_absolute_percentage_error;
mod mean_squared_error;
mod mean_squared_logarithmic_error;
mod poisson;
mod sparse_categorical_crossentropy;
mod squared_hinge;

pub use binary_crossentropy::{bce_from_probs, sigmoid_bce_from_logits, BinaryCrossentropy};
pub use categorical_crossentropy::{
    ce_from_probs, softmax_ce_from_logits, CategoricalCrossentropy,
};
pub use categorical_hinge::{categorical_hinge, CategoricalHinge};
pub use cosine_similarity::{cosine_similarity, CosineSimilarity};
pub use hinge::{hinge, hinge_labels, Hinge};
pub use huber::{huber, Huber};
pub use kl_divergence::{kl_divergence, KlDivergence};
pub use log_cosh::{log_cosh, LogCosh};
pub use mean_absolute_error::{mae, MeanAbsoluteError};
pub use mean_absolute_percentage_error::{mape, MeanAbsolutePercentageError};
pub use mean_squared_error::{mse, MeanSquaredError};
pub use mean_squared_logarithmic_error::{msle, MeanSquaredLogarithmicError};
pub use poisson::{poisson, Poisson};
pub use sparse_categorical_crossentropy::SparseCategoricalCrossentropy;
pub use squared_hinge::{squared_hinge, SquaredHinge};

/// Targets of a classification loss.
#[derive(Clone, Copy)]
pub enum Targets<'a> {
    /// `rows × cols` (one-hot or soft labels).
    Dense(&'a [f32]),
    /// `rows` class indices, each in `[0, cols)` (validated by the caller).
    Sparse(&'a [i64]),
}

/// `keras.config.epsilon()`.
pub const EPSILON: f32 = 1e-7;

/// Stack block for element terms (computed by a vectorisable map, then summed with f64
/// lanes; no closures, so everything inlines into the `target_feature` wrappers).
pub(super) const BLK: usize = 256;

#[inline(always)]
pub(super) fn check_targets(targets: &Targets<'_>, rows: usize, cols: usize) {
    match targets {
        Targets::Dense(y) => assert_eq!(y.len(), rows * cols, "dense targets length"),
        Targets::Sparse(l) => {
            assert_eq!(l.len(), rows, "sparse targets length");
            debug_assert!(
                l.iter().all(|&c| c >= 0 && (c as usize) < cols),
                "label out of range"
            );
        }
    }
}

#[inline(always)]
pub(super) fn check_weights(weights: Option<&[f32]>, rows: usize) {
    if let Some(w) = weights {
        assert_eq!(w.len(), rows, "weights length");
    }
}

/// Row `r`'s gradient scale and loss weight: `(scale·w_r, w_r)`, or `(scale, 1)` unweighted.
#[inline(always)]
pub(super) fn row_weight(weights: Option<&[f32]>, r: usize, scale: f32) -> (f32, f64) {
    match weights {
        Some(w) => (scale * w[r], w[r] as f64),
        None => (scale, 1.0),
    }
}

#[inline(always)]
pub(super) fn clip_prob(p: f32) -> f32 {
    const HI: f32 = 1.0 - EPSILON;
    p.clamp(EPSILON, HI) // NaN stays NaN
}

#[inline(always)]
pub(super) fn unclipped(p: f32) -> bool {
    (EPSILON..=1.0 - EPSILON).contains(&p)
}

/// A batch as a loss (or a metric) reads it.
#[derive(Clone, Copy)]
pub struct Batch<'a> {
    /// `rows × cols`: the model's output, or for a fused loss its last layer's logits.
    pub out: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    /// In the form the loss asks for ([`LossFn::sparse_targets`]).
    pub targets: Targets<'a>,
    /// One weight per row (`sample_weight`), or None: every row weighs 1.
    pub weights: Option<&'a [f32]>,
}

impl<'a> Batch<'a> {
    /// The targets as rows like the output (a loss whose targets are never sparse).
    pub fn dense_targets(&self) -> &'a [f32] {
        match self.targets {
            Targets::Dense(y) => y,
            Targets::Sparse(_) => panic!("this loss takes targets shaped like the output"),
        }
    }
}

/// One loss: its settings and its kernel.
pub trait LossFn: Copy + Debug + PartialEq {
    /// Reads the loss's settings (Keras's argument names).
    fn from_settings(s: &dyn Settings) -> Result<Self>;
    /// Checks the settings, naming the argument at fault (a ValueError in Python).
    fn validate(&self) -> Result<()> {
        Ok(())
    }
    /// Whether the targets are class indices (one per row) instead of rows like the output.
    fn sparse_targets(&self) -> bool {
        false
    }
    /// The output activation this loss computes itself from the logits when the model ends
    /// in it, as Keras's TensorFlow backend does (a crossentropy on probabilities), if any.
    fn fuses(&self) -> Option<Activation> {
        None
    }
    /// Σ_r w_r·loss_r over the batch; with `grad`, writes the gradient of `scale·Σ` with
    /// respect to `b.out`. `fused`: `b.out` holds the logits of the activation
    /// [`LossFn::fuses`] names, whose output the loss writes to `probs` (which a loss on
    /// logits may also use as scratch).
    fn sum(
        &self,
        level: Level,
        b: Batch<'_>,
        fused: bool,
        probs: &mut [f32],
        grad: Option<&mut [f32]>,
        scale: f32,
    ) -> f64;
}

/// The losses kerox has, each under its Keras name: `enum LossSpec` and its [`LossFn`] impl,
/// forwarding to the variant's loss.
macro_rules! registry {
    ($($variant:ident = $name:literal),* $(,)?) => {
        /// A loss with its settings.
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub enum LossSpec {
            $($variant($variant)),*
        }

        $(impl From<$variant> for LossSpec {
            fn from(l: $variant) -> LossSpec {
                LossSpec::$variant(l)
            }
        })*

        impl LossSpec {
            /// The loss's Keras name, as Python's registry passes it.
            pub fn name(&self) -> &'static str {
                match self {
                    $(LossSpec::$variant(_) => $name),*
                }
            }

            /// Names the losses kerox has.
            pub const NAMES: &'static [&'static str] = &[$($name),*];

            /// The loss called `name`, with its settings read from `s`.
            pub fn from_name(name: &str, s: &dyn Settings) -> Result<LossSpec> {
                match name {
                    $($name => Ok(LossSpec::$variant(<$variant as LossFn>::from_settings(s)?)),)*
                    other => Err(Error::Value(format!(
                        "unknown loss {other:?}; kerox has {:?}",
                        LossSpec::NAMES
                    ))),
                }
            }
        }

        impl LossFn for LossSpec {
            fn from_settings(_: &dyn Settings) -> Result<Self> {
                Err(Error::Value("a loss is named: use LossSpec::from_name".into()))
            }
            fn validate(&self) -> Result<()> {
                match self { $(LossSpec::$variant(l) => l.validate()),* }
            }
            fn sparse_targets(&self) -> bool {
                match self { $(LossSpec::$variant(l) => l.sparse_targets()),* }
            }
            fn fuses(&self) -> Option<Activation> {
                match self { $(LossSpec::$variant(l) => l.fuses()),* }
            }
            fn sum(
                &self,
                level: Level,
                b: Batch<'_>,
                fused: bool,
                probs: &mut [f32],
                grad: Option<&mut [f32]>,
                scale: f32,
            ) -> f64 {
                match self {
                    $(LossSpec::$variant(l) => l.sum(level, b, fused, probs, grad, scale)),*
                }
            }
        }
    };
}

registry! {
    CategoricalCrossentropy = "categorical_crossentropy",
    SparseCategoricalCrossentropy = "sparse_categorical_crossentropy",
    BinaryCrossentropy = "binary_crossentropy",
    MeanSquaredError = "mean_squared_error",
    MeanAbsoluteError = "mean_absolute_error",
    MeanAbsolutePercentageError = "mean_absolute_percentage_error",
    MeanSquaredLogarithmicError = "mean_squared_logarithmic_error",
    Huber = "huber",
    LogCosh = "log_cosh",
    Hinge = "hinge",
    SquaredHinge = "squared_hinge",
    CategoricalHinge = "categorical_hinge",
    KlDivergence = "kl_divergence",
    Poisson = "poisson",
    CosineSimilarity = "cosine_similarity",
}

/// `label_smoothing` in [0, 1], as Keras's crossentropies require.
pub(super) fn check_label_smoothing(label_smoothing: f32) -> Result<()> {
    if !(0.0..=1.0).contains(&label_smoothing) {
        return Err(Error::Value(format!(
            "label_smoothing must be in [0, 1]. Received: label_smoothing={label_smoothing}"
        )));
    }
    Ok(())
}

/// The body of a loss that is the mean (`MEAN`) or the sum over columns of an element term
/// `term(a, y)` whose derivative in `a` is `c·deriv(a, y)`: returns Σ_r w_r·(mean or sum)_j
/// term, and writes `grad = (c·scale·w_r / cols)·deriv(a, y)` (without `/ cols` for a sum;
/// `c·scale/cols` unweighted). Inlined into each such loss's `multiversion!` body.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn over_cols<const MEAN: bool, T, D>(
    a: &[f32],
    rows: usize,
    cols: usize,
    y: &[f32],
    grad: Option<&mut [f32]>,
    scale: f32,
    weights: Option<&[f32]>,
    c: f32,
    term: T,
    deriv: D,
) -> f64
where
    T: Fn(f32, f32) -> f32 + Copy,
    D: Fn(f32, f32) -> f32 + Copy,
{
    let n = rows * cols;
    assert_eq!(a.len(), n, "a length");
    assert_eq!(y.len(), n, "y length");
    check_weights(weights, rows);
    if n == 0 {
        return 0.0;
    }
    let scaled = |g: &mut [f32], a: &[f32], y: &[f32], k: f32| {
        for ((gv, &av), &yv) in g.iter_mut().zip(a).zip(y) {
            *gv = k * deriv(av, yv);
        }
    };
    let per_row = |k: f32| if MEAN { k / cols as f32 } else { k };
    if let Some(g) = grad {
        assert_eq!(g.len(), n, "grad length");
        match weights {
            None => scaled(g, a, y, per_row(c * scale)),
            Some(w) => {
                for (r, &wr) in w.iter().enumerate() {
                    let s = r * cols..(r + 1) * cols;
                    let k = per_row(c * (scale * wr));
                    scaled(&mut g[s.clone()], &a[s.clone()], &y[s], k);
                }
            }
        }
    }
    let mut buf = [0.0f32; BLK];
    let mut total = 0.0f64;
    for r in 0..rows {
        let (_, w) = row_weight(weights, r, scale);
        let ar = &a[r * cols..(r + 1) * cols];
        let yr = &y[r * cols..(r + 1) * cols];
        let mut row = 0.0f64;
        for (ac, yc) in ar.chunks(BLK).zip(yr.chunks(BLK)) {
            let out = &mut buf[..ac.len()];
            for ((o, &av), &yv) in out.iter_mut().zip(ac).zip(yc) {
                *o = term(av, yv);
            }
            row += lane_sum_f64(out);
        }
        total += w * if MEAN { row / cols as f64 } else { row };
    }
    total
}

/// [`over_cols`] for a mean over columns.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn mean_over_cols<T, D>(
    a: &[f32],
    rows: usize,
    cols: usize,
    y: &[f32],
    grad: Option<&mut [f32]>,
    scale: f32,
    weights: Option<&[f32]>,
    c: f32,
    term: T,
    deriv: D,
) -> f64
where
    T: Fn(f32, f32) -> f32 + Copy,
    D: Fn(f32, f32) -> f32 + Copy,
{
    over_cols::<true, T, D>(a, rows, cols, y, grad, scale, weights, c, term, deriv)
}

/// d|x|/dx as JAX takes it: 1 where x ≥ 0 (±0 included), else −1.
#[inline(always)]
pub(super) fn abs_slope(x: f32) -> f32 {
    if x >= 0.0 {
        1.0
    } else {
        -1.0
    }
}

/// max(x, 0) that keeps NaN (as `ops.maximum` does).
#[inline(always)]
pub(super) fn relu(x: f32) -> f32 {
    if x < 0.0 {
        0.0
    } else {
        x
    }
}

#[cfg(test)]
pub(crate) mod testing;
