//! Metrics: one file per Keras metric (its settings with Keras's names and defaults, its
//! kernel and its tests), and one registry ([`registry!`] below) naming them.
//!
//! A metric keeps f64 accumulators over an epoch (or an evaluation), as Keras's metric
//! variables: a mean (Keras's `MeanMetricWrapper`) keeps Σ w·value and Σ w, where w is the
//! sample's weight for one of compile's `weighted_metrics` and 1 otherwise. The engine adds
//! each batch in its step (no Python per batch) and Python reads [`MetricFn::result`].
//!
//! Adding a metric: its file, plus one line in [`registry!`] and its class in the Python
//! registry (`kerox.keras.metrics`).

use std::fmt::Debug;

use crate::dispatch::Level;
use crate::error::{Error, Result};
use crate::kernels;
use crate::losses::Batch;
use crate::settings::Settings;

mod binary_accuracy;
mod categorical_accuracy;
mod cosine_similarity;
mod mean_of_loss;
mod root_mean_squared_error;
mod sparse_categorical_accuracy;

pub use binary_accuracy::{binary_accuracy_sum, BinaryAccuracy};
pub use categorical_accuracy::{categorical_hits, CategoricalAccuracy};
pub use cosine_similarity::CosineSimilarity;
pub use mean_of_loss::MeanOfLoss;
pub use root_mean_squared_error::RootMeanSquaredError;
pub use sparse_categorical_accuracy::SparseCategoricalAccuracy;

/// One metric: its settings, accumulators and kernel.
pub trait MetricFn: Copy + Debug + PartialEq {
    /// Reads the metric's settings (Keras's argument names).
    fn from_settings(s: &dyn Settings) -> Result<Self>;
    /// Checks the settings, naming the argument at fault (a ValueError in Python).
    fn validate(&self) -> Result<()> {
        Ok(())
    }
    /// Whether the metric reads class indices (one per row) instead of rows like the
    /// output. The engine gathers targets once per step, in the loss's form, so the two must
    /// agree.
    fn sparse_targets(&self) -> bool {
        false
    }
    /// How many f64 accumulators the metric keeps (a mean: Σ w·value and Σ w).
    fn state_len(&self) -> usize {
        2
    }
    /// Adds a batch (the model's output; `b.weights` is None for an unweighted metric).
    /// `scratch` holds as many floats as the output, for a loss on logits to write its
    /// probabilities.
    fn update(&self, level: Level, b: Batch<'_>, scratch: &mut [f32], state: &mut [f64]);
    /// The metric's value from its accumulators (0 before any sample, as Keras reports).
    fn result(&self, state: &[f64]) -> f64 {
        mean(state)
    }
}

/// A mean's update: adds Σ w·value (`value_sum`) and the batch's Σ w (its rows, unweighted).
pub(super) fn add_to_mean(level: Level, b: &Batch<'_>, value_sum: f64, state: &mut [f64]) {
    state[0] += value_sum;
    state[1] += b
        .weights
        .map_or(b.rows as f64, |w| kernels::sum_f64(level, w));
}

/// A mean's result: Σ w·value / Σ w, or 0 before any sample.
pub(super) fn mean(state: &[f64]) -> f64 {
    if state[1] != 0.0 {
        state[0] / state[1]
    } else {
        0.0
    }
}

/// Row `r`'s weight: `weights[r]`, or 1 unweighted.
#[inline(always)]
pub(super) fn row_weight(weights: Option<&[f32]>, r: usize) -> f64 {
    weights.map_or(1.0, |w| w[r] as f64)
}

/// Asserts the lengths of `preds` and `weights`; false when there is nothing to count.
#[inline(always)]
pub(super) fn check_lengths(
    preds: &[f32],
    rows: usize,
    cols: usize,
    weights: Option<&[f32]>,
) -> bool {
    assert_eq!(preds.len(), rows * cols, "preds length");
    if let Some(w) = weights {
        assert_eq!(w.len(), rows, "weights length");
    }
    rows * cols != 0
}

/// The metrics kerox has, each under its Keras name: `enum MetricSpec` and its [`MetricFn`]
/// impl, forwarding to the variant's metric.
macro_rules! registry {
    ($($variant:ident = $name:literal),* $(,)?) => {
        /// A metric with its settings.
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub enum MetricSpec {
            $($variant($variant)),*
        }

        $(impl From<$variant> for MetricSpec {
            fn from(m: $variant) -> MetricSpec {
                MetricSpec::$variant(m)
            }
        })*

        impl MetricSpec {
            /// The metric's Keras name, as Python's registry passes it.
            pub fn name(&self) -> &'static str {
                match self {
                    $(MetricSpec::$variant(_) => $name),*
                }
            }

            /// Names the metrics kerox has.
            pub const NAMES: &'static [&'static str] = &[$($name),*];

            /// The metric called `name`, with its settings read from `s`.
            pub fn from_name(name: &str, s: &dyn Settings) -> Result<MetricSpec> {
                match name {
                    $($name => Ok(MetricSpec::$variant(<$variant as MetricFn>::from_settings(s)?)),)*
                    other => Err(Error::Value(format!(
                        "unknown metric {other:?}; kerox has {:?}",
                        MetricSpec::NAMES
                    ))),
                }
            }

            /// This metric as one of compile's `weighted_metrics`.
            pub fn weighted(self) -> Metric {
                Metric {
                    spec: self,
                    weighted: true,
                }
            }
        }

        impl MetricFn for MetricSpec {
            fn from_settings(_: &dyn Settings) -> Result<Self> {
                Err(Error::Value("a metric is named: use MetricSpec::from_name".into()))
            }
            fn validate(&self) -> Result<()> {
                match self { $(MetricSpec::$variant(m) => m.validate()),* }
            }
            fn sparse_targets(&self) -> bool {
                match self { $(MetricSpec::$variant(m) => m.sparse_targets()),* }
            }
            fn state_len(&self) -> usize {
                match self { $(MetricSpec::$variant(m) => m.state_len()),* }
            }
            fn update(&self, level: Level, b: Batch<'_>, scratch: &mut [f32], state: &mut [f64]) {
                match self { $(MetricSpec::$variant(m) => m.update(level, b, scratch, state)),* }
            }
            fn result(&self, state: &[f64]) -> f64 {
                match self { $(MetricSpec::$variant(m) => m.result(state)),* }
            }
        }
    };
}

registry! {
    CategoricalAccuracy = "categorical_accuracy",
    SparseCategoricalAccuracy = "sparse_categorical_accuracy",
    BinaryAccuracy = "binary_accuracy",
    MeanOfLoss = "mean_of_loss",
    RootMeanSquaredError = "root_mean_squared_error",
    CosineSimilarity = "cosine_similarity",
}

/// A metric as compiled: with `weighted`, a mean weighted by the samples' `sample_weight`
/// (compile's `weighted_metrics`), else a plain mean over samples (`metrics`). The same spec
/// may be compiled both ways.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metric {
    pub spec: MetricSpec,
    pub weighted: bool,
}

impl<M: Into<MetricSpec>> From<M> for Metric {
    fn from(spec: M) -> Metric {
        Metric {
            spec: spec.into(),
            weighted: false,
        }
    }
}
