//! Sparse categorical accuracy (Keras 3 `SparseCategoricalAccuracy`): categorical accuracy
//! against integer class labels, one per row.

use super::categorical_accuracy::categorical_hits;
use super::{add_to_mean, MetricFn};
use crate::dispatch::Level;
use crate::error::Result;
use crate::losses::Batch;
use crate::settings::Settings;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SparseCategoricalAccuracy;

impl MetricFn for SparseCategoricalAccuracy {
    fn from_settings(_: &dyn Settings) -> Result<Self> {
        Ok(SparseCategoricalAccuracy)
    }

    fn sparse_targets(&self) -> bool {
        true
    }

    fn update(&self, level: Level, b: Batch<'_>, _scratch: &mut [f32], state: &mut [f64]) {
        let hits = categorical_hits(level, b.out, b.rows, b.cols, b.targets, b.weights);
        add_to_mean(level, &b, hits, state);
    }
}
