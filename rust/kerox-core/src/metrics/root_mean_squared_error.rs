//! Root mean squared error (Keras 3 `RootMeanSquaredError`): the square root of the mean
//! over samples of the per-sample mean squared error.

use super::{add_to_mean, mean, MetricFn};
use crate::dispatch::Level;
use crate::error::Result;
use crate::losses::{mse, Batch};
use crate::settings::Settings;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RootMeanSquaredError;

impl MetricFn for RootMeanSquaredError {
    fn from_settings(_: &dyn Settings) -> Result<Self> {
        Ok(RootMeanSquaredError)
    }

    fn update(&self, level: Level, b: Batch<'_>, _scratch: &mut [f32], state: &mut [f64]) {
        let y = b.dense_targets();
        let sum = mse(level, b.out, b.rows, b.cols, y, None, 1.0, b.weights);
        add_to_mean(level, &b, sum, state);
    }

    fn result(&self, state: &[f64]) -> f64 {
        mean(state).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testutil::*;
    use crate::losses::Targets;

    #[test]
    fn is_the_root_of_the_weighted_mean_squared_error() {
        let mut rng = Rng::new(6);
        let (rows, cols) = (9, 4);
        let a = rng.vec(rows * cols, -2.0, 2.0);
        let y = rng.vec(rows * cols, -2.0, 2.0);
        let w: Vec<f32> = (0..rows).map(|_| rng.uniform(0.0, 2.0)).collect();
        let (mut num, mut den) = (0.0f64, 0.0f64);
        for (r, &wr) in w.iter().enumerate() {
            let s = r * cols..(r + 1) * cols;
            let mse: f64 = a[s.clone()]
                .iter()
                .zip(&y[s])
                .map(|(&a, &y)| (a as f64 - y as f64).powi(2))
                .sum::<f64>()
                / cols as f64;
            num += wr as f64 * mse;
            den += wr as f64;
        }
        for level in levels() {
            let mut state = vec![0.0; 2];
            let b = Batch {
                out: &a,
                rows,
                cols,
                targets: Targets::Dense(&y),
                weights: Some(&w),
            };
            RootMeanSquaredError.update(level, b, &mut [], &mut state);
            let got = RootMeanSquaredError.result(&state);
            assert_close1(got, (num / den).sqrt(), 1e-6, 1e-9, &format!("{level:?}"));
        }
    }
}
