//! The checks every loss file runs on its loss (test builds only): the batch sum against a
//! float64 reference of the per-sample loss, the gradient against central finite differences
//! of that reference, every dispatch level against the scalar one bit for bit, and sample
//! weights row by row.

use super::{Batch, LossFn, LossSpec, Targets};
use crate::dispatch::Level;
use crate::kernels::testutil::*;

/// One loss to check on outputs that it reads directly (not fused with an activation).
pub(crate) struct Case<'a> {
    pub loss: LossSpec,
    /// The per-sample loss in f64 from one row of outputs and one row of targets.
    pub reference: &'a dyn Fn(&[f64], &[f64]) -> f64,
    /// Draws `n` outputs.
    pub outputs: &'a dyn Fn(&mut Rng, usize) -> Vec<f32>,
    /// Draws `n` targets.
    pub targets: &'a dyn Fn(&mut Rng, usize) -> Vec<f32>,
    /// Relative tolerance of the loss and its gradient.
    pub rtol: f64,
}

fn run(
    loss: LossSpec,
    level: Level,
    a: &[f32],
    y: &[f32],
    rows: usize,
    weights: Option<&[f32]>,
    scale: f32,
) -> (f64, Vec<f32>) {
    let n = a.len();
    let cols = n / rows.max(1);
    let (mut probs, mut grad) = (vec![0.0; n], vec![0.0; n]);
    let b = Batch {
        out: a,
        rows,
        cols,
        targets: Targets::Dense(y),
        weights,
    };
    let sum = loss.sum(level, b, false, &mut probs, Some(&mut grad), scale);
    let without = loss.sum(level, b, false, &mut probs, None, scale);
    assert_eq!(
        sum.to_bits(),
        without.to_bits(),
        "{loss:?}: the sum depends on the gradient"
    );
    (sum, grad)
}

/// Runs every check of `case`.
pub(crate) fn check(case: &Case<'_>) {
    let mut rng = Rng::new(0x1055);
    let loss = case.loss;
    for &rows in &ROWS {
        for &cols in &COLS {
            let n = rows * cols;
            let a = (case.outputs)(&mut rng, n);
            let y = (case.targets)(&mut rng, n);
            let (ad, yd) = (to_f64(&a), to_f64(&y));
            let total = |a: &[f64]| -> f64 {
                a.chunks(cols)
                    .zip(yd.chunks(cols))
                    .map(|(ar, yr)| (case.reference)(ar, yr))
                    .sum()
            };
            let scale = 1.0 / rows as f32;
            let (sum, grad) = run(loss, Level::Scalar, &a, &y, rows, None, scale);
            let ctx = format!("{loss:?} {rows}x{cols}");
            assert_close1(sum, total(&ad), case.rtol, 1e-9, &ctx);
            let h = 1e-6;
            let want: Vec<f64> = (0..n)
                .map(|i| scale as f64 * central_diff(&total, &ad, i, h * ad[i].abs().max(1.0)))
                .collect();
            let gmax = want.iter().fold(0.0f64, |m, g| m.max(g.abs()));
            assert_close(
                &grad,
                &want,
                case.rtol.max(1e-4),
                1e-6 * gmax,
                &format!("{ctx} grad"),
            );
            for level in levels() {
                let (s, g) = run(loss, level, &a, &y, rows, None, scale);
                assert_eq!(s.to_bits(), sum.to_bits(), "{ctx} {level:?}: sum");
                assert!(
                    g.iter().zip(&grad).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{ctx} {level:?}: gradient bits"
                );
            }
            // Weights: Σ w_r·l_r, row r's gradient times w_r; weights of 1 change no bit.
            let w: Vec<f32> = (0..rows).map(|_| rng.below(5) as f32 * 0.75).collect();
            let (ws, wg) = run(loss, Level::Scalar, &a, &y, rows, Some(&w), scale);
            let want_sum: f64 = ad
                .chunks(cols)
                .zip(yd.chunks(cols))
                .zip(&w)
                .map(|((ar, yr), &wr)| wr as f64 * (case.reference)(ar, yr))
                .sum();
            assert_close1(ws, want_sum, case.rtol, 1e-9, &format!("{ctx} weighted"));
            for (r, &wr) in w.iter().enumerate() {
                let s = r * cols..(r + 1) * cols;
                let (_, one) = run(
                    loss,
                    Level::Scalar,
                    &a[s.clone()],
                    &y[s.clone()],
                    1,
                    None,
                    scale * wr,
                );
                assert!(
                    one.iter()
                        .zip(&wg[s])
                        .all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{ctx}: weighted gradient of row {r}"
                );
            }
            let ones = vec![1.0f32; rows];
            let (os, og) = run(loss, Level::Scalar, &a, &y, rows, Some(&ones), scale);
            assert_eq!(os.to_bits(), sum.to_bits(), "{ctx}: weights of 1");
            assert!(og
                .iter()
                .zip(&grad)
                .all(|(x, y)| x.to_bits() == y.to_bits()));
        }
    }
}
