//! The checks every loss file runs on its loss (test builds only): the batch sum against a
//! float64 reference of the per-sample loss, the gradient against central finite differences
//! of that reference, every dispatch level against the scalar one bit for bit, and sample
//! weights row by row; and the helpers of the loss files' own kernel tests.

use std::ops::Range;

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
            // Each row's loss depends on its own outputs only: differentiate row by row.
            let h = 1e-6;
            let mut want = Vec::with_capacity(n);
            for (ar, yr) in ad.chunks(cols).zip(yd.chunks(cols)) {
                let f = |a: &[f64]| (case.reference)(a, yr);
                for i in 0..cols {
                    let d = central_diff(&f, ar, i, h * ar[i].abs().max(1.0));
                    want.push(scale as f64 * d);
                }
            }
            let gmax = want.iter().fold(0.0f64, |m, g| m.max(g.abs()));
            let atol = (1e-6 * gmax).max(1e-12);
            assert_close(
                &grad,
                &want,
                case.rtol.max(1e-4),
                atol,
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

// ---- Helpers of the kernel tests in the loss files ----

/// Owned targets.
pub(crate) enum Tg {
    Dense(Vec<f32>),
    Sparse(Vec<i64>),
}

impl Tg {
    pub(crate) fn as_targets(&self) -> Targets<'_> {
        match self {
            Tg::Dense(y) => Targets::Dense(y),
            Tg::Sparse(l) => Targets::Sparse(l),
        }
    }

    /// Dense f64 targets after smoothing (sparse → one-hot, unsmoothed).
    pub(crate) fn smoothed(&self, rows: usize, cols: usize, ls: f64) -> Vec<f64> {
        match self {
            Tg::Dense(y) => y
                .iter()
                .map(|&v| v as f64 * (1.0 - ls) + ls / cols as f64)
                .collect(),
            Tg::Sparse(l) => {
                let mut y = vec![0.0; rows * cols];
                for (r, &c) in l.iter().enumerate() {
                    y[r * cols + c as usize] = 1.0;
                }
                y
            }
        }
    }
}

/// Classification targets: class indices (`sparse`), soft labels whose rows sum to 1
/// (`soft`), or one-hot rows.
pub(crate) fn targets(rng: &mut Rng, rows: usize, cols: usize, sparse: bool, soft: bool) -> Tg {
    if sparse {
        Tg::Sparse((0..rows).map(|_| rng.below(cols) as i64).collect())
    } else if soft {
        // soft labels (rows sum to 1)
        let mut y = rng.vec(rows * cols, 0.0, 1.0);
        for row in y.chunks_mut(cols) {
            let s: f32 = row.iter().sum();
            row.iter_mut().for_each(|v| *v /= s);
        }
        Tg::Dense(y)
    } else {
        let mut y = vec![0.0; rows * cols];
        for r in 0..rows {
            y[r * cols + rng.below(cols)] = 1.0;
        }
        Tg::Dense(y)
    }
}

/// Binary targets smoothed towards 0.5, in f64.
pub(crate) fn smooth_binary(y: &[f32], ls: f64) -> Vec<f64> {
    y.iter()
        .map(|&v| v as f64 * (1.0 - ls) + 0.5 * ls)
        .collect()
}

/// `scale` times the gradient of `f` at `x` by central finite differences of step `h`.
pub(crate) fn fd_grad(f: &dyn Fn(&[f64]) -> f64, x: &[f32], scale: f64, h: f64) -> Vec<f64> {
    let xd = to_f64(x);
    (0..x.len())
        .map(|i| scale * central_diff(f, &xd, i, h))
        .collect()
}

/// One batch for the tests that run several kernels of a loss on it: logits `z`,
/// probabilities `a`, targets `y` in [0, 1] and class `labels`, `rows × cols`.
pub(crate) struct Inputs {
    pub rows: usize,
    pub cols: usize,
    pub z: Vec<f32>,
    pub a: Vec<f32>,
    pub y: Vec<f32>,
    pub labels: Vec<i64>,
}

impl Inputs {
    /// Logits in ±`zmax`, probabilities in `a_range`, targets in [0, 1], labels in [0, cols).
    fn draw(rng: &mut Rng, rows: usize, cols: usize, zmax: f32, a_range: (f32, f32)) -> Inputs {
        let n = rows * cols;
        Inputs {
            rows,
            cols,
            z: rng.vec(n, -zmax, zmax),
            a: rng.vec(n, a_range.0, a_range.1),
            y: rng.vec(n, 0.0, 1.0),
            labels: (0..rows).map(|_| rng.below(cols) as i64).collect(),
        }
    }

    /// Rows `r`: `(z, a, y, labels)`.
    pub(crate) fn rows(&self, r: Range<usize>) -> (&[f32], &[f32], &[f32], &[i64]) {
        let span = r.start * self.cols..r.end * self.cols;
        (
            &self.z[span.clone()],
            &self.a[span.clone()],
            &self.y[span],
            &self.labels[r],
        )
    }
}

/// Every dispatch level's results (the losses, gradients and outputs that `run` returns for
/// one batch of 9×100) are deterministic and agree with the scalar level's to 1e-6.
pub(crate) fn check_levels_agree(run: fn(Level, &Inputs) -> Vec<f64>) {
    let mut rng = Rng::new(14);
    let inputs = Inputs::draw(&mut rng, 9, 100, 8.0, (0.0, 1.0));
    let base = run(Level::Scalar, &inputs);
    for level in levels() {
        let got = run(level, &inputs);
        assert_eq!(got, run(level, &inputs), "{level:?} not deterministic");
        for (i, (&x, &b)) in got.iter().zip(&base).enumerate() {
            assert!(
                (x - b).abs() <= 1e-6 * b.abs() + 1e-9,
                "{level:?} item {i}: {x} vs {b}"
            );
        }
    }
}

/// A loss kernel on rows `r` of a batch with gradient scale `s` and row weights `w` (one per
/// row of `r`, or None), writing its outputs to `p` (if it has any) and its gradient to `g`.
pub(crate) type Kernel =
    fn(Level, &Inputs, Range<usize>, f32, Option<&[f32]>, &mut [f32], &mut [f32]) -> f64;

/// Each named kernel, on every level and shape: weighted, it returns Σ w_r·loss_r of its
/// unweighted rows and row r's gradient is the unweighted one at `scale·w_r`, bit for bit;
/// weights of 1 give the bits of None.
pub(crate) fn check_row_weights(kernels: &[(&str, Kernel)]) {
    let mut rng = Rng::new(41);
    for level in levels() {
        for &rows in &ROWS {
            for &cols in &COLS {
                let n = rows * cols;
                let b = Inputs::draw(&mut rng, rows, cols, 3.0, (0.01, 0.99));
                let w: Vec<f32> = (0..rows).map(|r| [0.0, 0.5, 2.0, 1.0][r % 4]).collect();
                let scale = 1.0 / rows as f32;
                let (mut p, mut g) = (vec![0.0f32; n], vec![0.0f32; n]);
                let (mut pr, mut gr) = (vec![0.0f32; cols], vec![0.0f32; cols]);
                for &(name, kernel) in kernels {
                    let ctx = format!("{name} {level:?} {rows}x{cols}");
                    let total = kernel(level, &b, 0..rows, scale, Some(&w), &mut p, &mut g);
                    let mut want = 0.0f64;
                    for (r, &wr) in w.iter().enumerate() {
                        let l = kernel(level, &b, r..r + 1, scale * wr, None, &mut pr, &mut gr);
                        want += wr as f64 * l;
                        // Row r's gradient is the unweighted one at scale·w_r, bit for bit.
                        assert!(g[r * cols..(r + 1) * cols] == gr[..], "{ctx}: row {r}");
                    }
                    assert!(
                        (total - want).abs() <= 1e-12 * want.abs().max(1.0),
                        "{ctx}: {total} vs {want}"
                    );
                    // Weights of 1 give the bits of `None`.
                    let ones = vec![1.0f32; rows];
                    let l1 = kernel(level, &b, 0..rows, scale, Some(&ones), &mut p, &mut g);
                    let g1 = g.clone();
                    let l2 = kernel(level, &b, 0..rows, scale, None, &mut p, &mut g);
                    assert!(
                        l1.to_bits() == l2.to_bits() && g1 == g,
                        "{ctx}: weights of 1"
                    );
                }
            }
        }
    }
}
