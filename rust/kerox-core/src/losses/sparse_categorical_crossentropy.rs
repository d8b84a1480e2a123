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

#[cfg(test)]
mod tests {
    use super::super::testing::{targets, Tg};
    use super::super::Targets;
    use super::*;
    use crate::kernels::testutil::*;

    /// `sum` on class labels — from logits, fused with a softmax, and on probabilities —
    /// equals the categorical kernel on the labels' one-hot rows (to float rounding): the
    /// loss, its gradient and the softmax it writes, with and without sample weights.
    #[test]
    fn sum_equals_categorical_kernel_on_one_hot_rows() {
        let mut rng = Rng::new(20);
        for level in levels() {
            for &rows in &ROWS {
                for &cols in &COLS {
                    let n = rows * cols;
                    let t = targets(&mut rng, rows, cols, true, false);
                    let Tg::Sparse(labels) = &t else {
                        unreachable!("sparse targets")
                    };
                    let one_hot: Vec<f32> = t
                        .smoothed(rows, cols, 0.0)
                        .iter()
                        .map(|&v| v as f32)
                        .collect();
                    let z = rng.vec(n, -6.0, 6.0);
                    let a = rng.vec(n, 0.05, 1.5);
                    let w: Vec<f32> = (0..rows).map(|r| [0.0, 0.5, 2.0, 1.0][r % 4]).collect();
                    let scale = 1.0 / rows as f32;
                    for weights in [None, Some(&w[..])] {
                        for (from_logits, fused) in [(true, false), (false, true), (false, false)] {
                            let loss = SparseCategoricalCrossentropy { from_logits };
                            assert!(loss.sparse_targets());
                            let logits = from_logits || fused;
                            let out = if logits { &z } else { &a };
                            let b = Batch {
                                out,
                                rows,
                                cols,
                                targets: Targets::Sparse(labels),
                                weights,
                            };
                            let (mut p, mut g) = (vec![0.0; n], vec![0.0; n]);
                            let sum = loss.sum(level, b, fused, &mut p, Some(&mut g), scale);
                            let (mut pw, mut gw) = (vec![0.0; n], vec![0.0; n]);
                            let dense = Targets::Dense(&one_hot);
                            let want = if logits {
                                softmax_ce_from_logits(
                                    level,
                                    out,
                                    rows,
                                    cols,
                                    dense,
                                    0.0,
                                    &mut pw,
                                    Some(&mut gw),
                                    scale,
                                    weights,
                                )
                            } else {
                                ce_from_probs(
                                    level,
                                    out,
                                    rows,
                                    cols,
                                    dense,
                                    0.0,
                                    Some(&mut gw),
                                    scale,
                                    weights,
                                )
                            };
                            let ctx = format!(
                                "{level:?} {rows}x{cols} from_logits={from_logits} \
                                 fused={fused} weighted={}",
                                weights.is_some()
                            );
                            assert_close1(sum, want, 1e-6, 0.0, &ctx);
                            assert_close(&g, &to_f64(&gw), 1e-6, 0.0, &format!("{ctx} grad"));
                            if logits {
                                assert_close(&p, &to_f64(&pw), 1e-6, 0.0, &format!("{ctx} probs"));
                            }
                        }
                    }
                }
            }
        }
    }
}
