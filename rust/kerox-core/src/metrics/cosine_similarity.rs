//! Cosine similarity (Keras 3 `keras.metrics.CosineSimilarity`, axis −1): the mean over
//! samples of Σ ŷ·â, the negated cosine similarity loss (`losses/cosine_similarity.rs`).

use super::{add_to_mean, MetricFn};
use crate::dispatch::Level;
use crate::error::Result;
use crate::losses::{cosine_similarity, Batch};
use crate::settings::Settings;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CosineSimilarity;

impl MetricFn for CosineSimilarity {
    fn from_settings(_: &dyn Settings) -> Result<Self> {
        Ok(CosineSimilarity)
    }

    fn update(&self, level: Level, b: Batch<'_>, _scratch: &mut [f32], state: &mut [f64]) {
        let y = b.dense_targets();
        let loss = cosine_similarity(level, b.out, b.rows, b.cols, y, None, 1.0, b.weights);
        add_to_mean(level, &b, -loss, state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testutil::*;
    use crate::losses::Targets;

    #[test]
    fn is_the_mean_cosine_of_the_rows() {
        let mut rng = Rng::new(8);
        let (rows, cols) = (6, 5);
        let a = rng.vec(rows * cols, -2.0, 2.0);
        let y = rng.vec(rows * cols, -2.0, 2.0);
        let norm = |v: &[f32]| v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
        let want: f64 = (0..rows)
            .map(|r| {
                let s = r * cols..(r + 1) * cols;
                let (ar, yr) = (&a[s.clone()], &y[s]);
                let dot: f64 = ar.iter().zip(yr).map(|(&p, &q)| p as f64 * q as f64).sum();
                dot / (norm(ar) * norm(yr))
            })
            .sum::<f64>()
            / rows as f64;
        for level in levels() {
            let mut state = vec![0.0; 2];
            let b = Batch {
                out: &a,
                rows,
                cols,
                targets: Targets::Dense(&y),
                weights: None,
            };
            CosineSimilarity.update(level, b, &mut [], &mut state);
            let got = CosineSimilarity.result(&state);
            assert_close1(got, want, 1e-6, 1e-9, &format!("{level:?}"));
        }
    }
}
