//! Sparse categorical crossentropy (Keras 3 `SparseCategoricalCrossentropy`): the
//! categorical crossentropy of integer class labels, one per row, computed by
//! `categorical_crossentropy.rs`'s kernels without building one-hot rows.

use super::categorical_crossentropy::{ce_from_probs, softmax_ce_from_logits};
use super::{Batch, LossFn};
use crate::dispatch::Level;
use crate::error::Result;
use crate::kernels::Activation;
use crate::settings::Settings;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SparseCategoricalCrossentropy {
    pub from_logits: bool,
}

impl LossFn for SparseCategoricalCrossentropy {
    fn from_settings(s: &dyn Settings) -> Result<Self> {
        Ok(SparseCategoricalCrossentropy {
            from_logits: s.flag("from_logits")?,
        })
    }

    fn sparse_targets(&self) -> bool {
        true
    }

    fn fuses(&self) -> Option<Activation> {
        (!self.from_logits).then_some(Activation::Softmax)
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
        if fused || self.from_logits {
            softmax_ce_from_logits(
                level, b.out, b.rows, b.cols, b.targets, 0.0, probs, grad, scale, b.weights,
            )
        } else {
            ce_from_probs(
                level, b.out, b.rows, b.cols, b.targets, 0.0, grad, scale, b.weights,
            )
        }
    }
}
