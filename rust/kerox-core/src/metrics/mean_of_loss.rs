//! A loss as a metric (Keras 3's `MeanMetricWrapper` of a loss function: `"mae"`,
//! `MeanSquaredError()`, `KLDivergence()`, `CategoricalCrossentropy()` as metrics…): the
//! mean over samples of the loss's per-sample value, computed by the loss's own kernel.

use super::{add_to_mean, MetricFn};
use crate::dispatch::Level;
use crate::error::Result;
use crate::losses::{Batch, LossFn, LossSpec};
use crate::settings::Settings;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeanOfLoss {
    pub loss: LossSpec,
}

impl MetricFn for MeanOfLoss {
    /// `loss`: the loss's name; the loss reads its own settings from the same source.
    fn from_settings(s: &dyn Settings) -> Result<Self> {
        Ok(MeanOfLoss {
            loss: LossSpec::from_name(&s.text("loss")?, s)?,
        })
    }

    fn validate(&self) -> Result<()> {
        self.loss.validate()
    }

    fn sparse_targets(&self) -> bool {
        self.loss.sparse_targets()
    }

    fn update(&self, level: Level, b: Batch<'_>, scratch: &mut [f32], state: &mut [f64]) {
        let sum = self.loss.sum(level, b, false, scratch, None, 1.0);
        add_to_mean(level, &b, sum, state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testutil::*;
    use crate::losses::{Huber, Targets};

    /// Two batches, weighted and not: the accumulators against a float64 reference of the
    /// per-sample Huber loss, and the result their quotient.
    #[test]
    fn accumulates_the_weighted_mean_of_the_per_sample_loss() {
        let mut rng = Rng::new(5);
        let (rows, cols) = (7, 3);
        let m = MeanOfLoss {
            loss: Huber { delta: 0.5 }.into(),
        };
        let reference = |a: &[f32], y: &[f32]| -> f64 {
            let terms = a.iter().zip(y).map(|(&a, &y)| {
                let e = (a as f64 - y as f64).abs();
                if e <= 0.5 {
                    0.5 * e * e
                } else {
                    0.5 * e - 0.125
                }
            });
            terms.sum::<f64>() / cols as f64
        };
        for level in levels() {
            let mut state = vec![0.0; m.state_len()];
            let (mut num, mut den) = (0.0f64, 0.0f64);
            for weighted in [false, true] {
                let a = rng.vec(rows * cols, -2.0, 2.0);
                let y = rng.vec(rows * cols, -2.0, 2.0);
                let w: Vec<f32> = (0..rows).map(|_| rng.uniform(0.0, 2.0)).collect();
                let mut scratch = vec![0.0; rows * cols];
                let b = Batch {
                    out: &a,
                    rows,
                    cols,
                    targets: Targets::Dense(&y),
                    weights: weighted.then_some(&w[..]),
                };
                m.update(level, b, &mut scratch, &mut state);
                for (r, &wr) in w.iter().enumerate() {
                    let wr = if weighted { wr as f64 } else { 1.0 };
                    let s = r * cols..(r + 1) * cols;
                    num += wr * reference(&a[s.clone()], &y[s]);
                    den += wr;
                }
            }
            assert_close1(state[0], num, 1e-6, 1e-9, &format!("{level:?} sum"));
            assert_close1(state[1], den, 1e-12, 1e-12, &format!("{level:?} weights"));
            assert_close1(
                m.result(&state),
                num / den,
                1e-6,
                1e-9,
                &format!("{level:?}"),
            );
        }
        assert_eq!(m.result(&[0.0, 0.0]), 0.0);
    }
}
