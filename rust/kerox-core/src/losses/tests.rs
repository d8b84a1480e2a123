//! The four original losses' kernels against f64 references, finite differences, Keras's
//! values and each other across dispatch levels.

use super::*;
use crate::dispatch::Level;
use crate::kernels::testutil::*;

/// Owned targets for the tests.
enum Tg {
    Dense(Vec<f32>),
    Sparse(Vec<i64>),
}
impl Tg {
    fn as_targets(&self) -> Targets<'_> {
        match self {
            Tg::Dense(y) => Targets::Dense(y),
            Tg::Sparse(l) => Targets::Sparse(l),
        }
    }
    /// Dense f64 targets after smoothing (sparse → one-hot, unsmoothed).
    fn smoothed(&self, rows: usize, cols: usize, ls: f64) -> Vec<f64> {
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

fn targets(rng: &mut Rng, rows: usize, cols: usize, sparse: bool, soft: bool) -> Tg {
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

// ---- f64 references (independent of the kernels) ----

fn softmax_ce64(z: &[f64], y: &[f64], cols: usize) -> f64 {
    z.chunks(cols)
        .zip(y.chunks(cols))
        .map(|(zr, yr)| {
            let m = zr.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = m + zr.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
            zr.iter().zip(yr).map(|(z, y)| y * (lse - z)).sum::<f64>()
        })
        .sum()
}

fn ce_probs64(a: &[f64], y: &[f64], cols: usize) -> f64 {
    let eps = EPSILON as f64;
    a.chunks(cols)
        .zip(y.chunks(cols))
        .map(|(ar, yr)| {
            let s: f64 = ar.iter().sum();
            -ar.iter()
                .zip(yr)
                .map(|(a, y)| y * (a / s).clamp(eps, 1.0 - eps).ln())
                .sum::<f64>()
        })
        .sum()
}

fn sigmoid_bce64(z: &[f64], y: &[f64], cols: usize) -> f64 {
    z.chunks(cols)
        .zip(y.chunks(cols))
        .map(|(zr, yr)| {
            zr.iter()
                .zip(yr)
                .map(|(&z, &y)| z.max(0.0) - z * y + (-z.abs()).exp().ln_1p())
                .sum::<f64>()
                / cols as f64
        })
        .sum()
}

fn bce_probs64(a: &[f64], y: &[f64], cols: usize) -> f64 {
    let eps = EPSILON as f64;
    a.chunks(cols)
        .zip(y.chunks(cols))
        .map(|(ar, yr)| {
            ar.iter()
                .zip(yr)
                .map(|(&a, &y)| {
                    let p = a.clamp(eps, 1.0 - eps);
                    -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
                })
                .sum::<f64>()
                / cols as f64
        })
        .sum()
}

fn mse64(a: &[f64], y: &[f64], cols: usize) -> f64 {
    a.chunks(cols)
        .zip(y.chunks(cols))
        .map(|(ar, yr)| {
            ar.iter()
                .zip(yr)
                .map(|(a, y)| (y - a) * (y - a))
                .sum::<f64>()
                / cols as f64
        })
        .sum()
}

fn smooth_binary(y: &[f32], ls: f64) -> Vec<f64> {
    y.iter()
        .map(|&v| v as f64 * (1.0 - ls) + 0.5 * ls)
        .collect()
}

fn fd_grad(f: &dyn Fn(&[f64]) -> f64, x: &[f32], scale: f64, h: f64) -> Vec<f64> {
    let xd = to_f64(x);
    (0..x.len())
        .map(|i| scale * central_diff(f, &xd, i, h))
        .collect()
}

#[test]
fn softmax_ce_matches_reference() {
    let mut rng = Rng::new(10);
    for level in levels() {
        for &rows in &ROWS {
            for &cols in &COLS {
                for (sparse, ls) in [(false, 0.0f32), (false, 0.1), (true, 0.0), (true, 0.2)] {
                    let n = rows * cols;
                    let z = rng.vec(n, -6.0, 6.0);
                    let t = targets(&mut rng, rows, cols, sparse, rows % 2 == 0);
                    let scale = 1.0 / rows as f32;
                    let mut probs = vec![0.0; n];
                    let mut grad = vec![0.0; n];
                    let loss = softmax_ce_from_logits(
                        level,
                        &z,
                        rows,
                        cols,
                        t.as_targets(),
                        ls,
                        &mut probs,
                        Some(&mut grad),
                        scale,
                        None,
                    );
                    let ys = t.smoothed(rows, cols, if sparse { 0.0 } else { ls as f64 });
                    let zd = to_f64(&z);
                    let ctx = format!("{level:?} {rows}x{cols} sparse={sparse} ls={ls}");
                    assert_close1(loss, softmax_ce64(&zd, &ys, cols), 1e-5, 1e-6, &ctx);
                    // probs and analytic gradient
                    let mut p64 = Vec::new();
                    for zr in zd.chunks(cols) {
                        let m = zr.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                        let s: f64 = zr.iter().map(|v| (v - m).exp()).sum();
                        p64.extend(zr.iter().map(|v| (v - m).exp() / s));
                    }
                    assert_close(&probs, &p64, 1e-5, 1e-7, &ctx);
                    let g64: Vec<f64> = p64
                        .iter()
                        .zip(&ys)
                        .map(|(p, y)| scale as f64 * (p - y))
                        .collect();
                    assert_close(&grad, &g64, 1e-5, 1e-7, &ctx);
                    // loss without grad is the same number
                    let l2 = softmax_ce_from_logits(
                        level,
                        &z,
                        rows,
                        cols,
                        t.as_targets(),
                        ls,
                        &mut probs,
                        None,
                        scale,
                        None,
                    );
                    assert_eq!(loss, l2);
                }
            }
        }
    }
}

#[test]
fn ce_from_probs_matches_reference() {
    let mut rng = Rng::new(11);
    for level in levels() {
        for &rows in &ROWS {
            for &cols in &COLS {
                for (sparse, ls) in [(false, 0.0f32), (false, 0.1), (true, 0.0)] {
                    let n = rows * cols;
                    // positive outputs, not normalised (exercises the renormalisation)
                    let a = rng.vec(n, 0.05, 1.5);
                    let t = targets(&mut rng, rows, cols, sparse, false);
                    let scale = 0.25f32;
                    let mut grad = vec![0.0; n];
                    let loss = ce_from_probs(
                        level,
                        &a,
                        rows,
                        cols,
                        t.as_targets(),
                        ls,
                        Some(&mut grad),
                        scale,
                        None,
                    );
                    let ys = t.smoothed(rows, cols, ls as f64);
                    let ad = to_f64(&a);
                    let ctx = format!("{level:?} {rows}x{cols} sparse={sparse} ls={ls}");
                    assert_close1(loss, ce_probs64(&ad, &ys, cols), 1e-5, 1e-6, &ctx);
                    // analytic gradient through p = a/Σa (clip inactive when cols > 1)
                    let mut g64 = vec![0.0; n];
                    for r in 0..rows {
                        let o = r * cols;
                        let s: f64 = ad[o..o + cols].iter().sum();
                        let eps = EPSILON as f64;
                        let mut u = 0.0;
                        let mut q = vec![0.0; cols];
                        for j in 0..cols {
                            let p = ad[o + j] / s;
                            if (eps..=1.0 - eps).contains(&p) {
                                q[j] = -ys[o + j] / p;
                                u += ys[o + j];
                            }
                        }
                        for j in 0..cols {
                            g64[o + j] = scale as f64 * (q[j] + u) / s;
                        }
                    }
                    assert_close(&grad, &g64, 2e-5, 1e-6, &ctx);
                }
            }
        }
    }
}

#[test]
fn sigmoid_bce_and_bce_probs_and_mse_match_reference() {
    let mut rng = Rng::new(12);
    for level in levels() {
        for &rows in &ROWS {
            for &cols in &COLS {
                let n = rows * cols;
                let scale = 1.0 / rows as f32;
                for ls in [0.0f32, 0.1] {
                    let ctx = format!("{level:?} {rows}x{cols} ls={ls}");
                    let y: Vec<f32> = (0..n).map(|_| (rng.next_u64() & 1) as f32).collect();
                    let ys = smooth_binary(&y, ls as f64);
                    // sigmoid BCE from logits
                    let z = rng.vec(n, -20.0, 20.0);
                    let (mut probs, mut grad) = (vec![0.0; n], vec![0.0; n]);
                    let loss = sigmoid_bce_from_logits(
                        level,
                        &z,
                        rows,
                        cols,
                        &y,
                        ls,
                        &mut probs,
                        Some(&mut grad),
                        scale,
                        None,
                    );
                    let zd = to_f64(&z);
                    assert_close1(loss, sigmoid_bce64(&zd, &ys, cols), 1e-5, 1e-6, &ctx);
                    let p64: Vec<f64> = zd.iter().map(|&v| 1.0 / (1.0 + (-v).exp())).collect();
                    assert_close(&probs, &p64, 4e-6, 1e-30, &ctx);
                    let g64: Vec<f64> = p64
                        .iter()
                        .zip(&ys)
                        .map(|(p, y)| scale as f64 * (p - y) / cols as f64)
                        .collect();
                    // p − y cancels when p rounds near 1 in f32: absolute error ~ ulp(1)
                    let atol = 1.2e-7 * scale as f64 / cols as f64;
                    assert_close(&grad, &g64, 1e-5, atol, &ctx);
                    // BCE on probabilities
                    let a = rng.vec(n, 0.01, 0.99);
                    let loss =
                        bce_from_probs(level, &a, rows, cols, &y, ls, Some(&mut grad), scale, None);
                    let ad = to_f64(&a);
                    assert_close1(loss, bce_probs64(&ad, &ys, cols), 1e-5, 1e-6, &ctx);
                    // smoothed targets as f32 (what Keras and the kernel compute): the
                    // gradient cancels near p ≈ y, so its reference must use the same y
                    let ys32: Vec<f64> = y
                        .iter()
                        .map(|&v| (v * (1.0 - ls) + 0.5 * ls) as f64)
                        .collect();
                    let g64: Vec<f64> = ad
                        .iter()
                        .zip(&ys32)
                        .map(|(&p, &y)| {
                            scale as f64 * (-y / p + (1.0 - y) / (1.0 - p)) / cols as f64
                        })
                        .collect();
                    assert_close(&grad, &g64, 1e-5, 1e-9, &ctx);
                }
                // MSE
                let a = rng.vec(n, -3.0, 3.0);
                let y = rng.vec(n, -3.0, 3.0);
                let mut grad = vec![0.0; n];
                let loss = mse(level, &a, rows, cols, &y, Some(&mut grad), scale, None);
                let (ad, yd) = (to_f64(&a), to_f64(&y));
                let ctx = format!("{level:?} {rows}x{cols} mse");
                assert_close1(loss, mse64(&ad, &yd, cols), 1e-5, 1e-6, &ctx);
                let g64: Vec<f64> = ad
                    .iter()
                    .zip(&yd)
                    .map(|(a, y)| scale as f64 * 2.0 * (a - y) / cols as f64)
                    .collect();
                assert_close(&grad, &g64, 1e-5, 1e-9, &ctx);
            }
        }
    }
}

/// Every loss gradient against central finite differences of the f64 reference
/// (both target kinds, with and without label smoothing).
#[test]
fn gradients_match_finite_differences() {
    let mut rng = Rng::new(13);
    let h = 1e-6;
    for level in levels() {
        for &(rows, cols) in &[(1usize, 2usize), (2, 3), (3, 7), (2, 17)] {
            let n = rows * cols;
            let scale = 1.0 / rows as f32;
            let s64 = scale as f64;
            for (sparse, ls) in [(false, 0.0f32), (false, 0.1), (true, 0.0)] {
                let ctx = format!("{level:?} {rows}x{cols} sparse={sparse} ls={ls}");
                let t = targets(&mut rng, rows, cols, sparse, !sparse && rows == 2);
                let ys = t.smoothed(rows, cols, ls as f64);
                // softmax CE from logits
                let z = rng.vec(n, -3.0, 3.0);
                let (mut probs, mut grad) = (vec![0.0; n], vec![0.0; n]);
                softmax_ce_from_logits(
                    level,
                    &z,
                    rows,
                    cols,
                    t.as_targets(),
                    ls,
                    &mut probs,
                    Some(&mut grad),
                    scale,
                    None,
                );
                let want = fd_grad(&|zz| softmax_ce64(zz, &ys, cols), &z, s64, h);
                assert_close(&grad, &want, 1e-4, 1e-6, &format!("{ctx} softmax_ce"));
                // CE on probabilities (a away from the clip bounds)
                let a = rng.vec(n, 0.2, 1.0);
                ce_from_probs(
                    level,
                    &a,
                    rows,
                    cols,
                    t.as_targets(),
                    ls,
                    Some(&mut grad),
                    scale,
                    None,
                );
                let want = fd_grad(&|aa| ce_probs64(aa, &ys, cols), &a, s64, h);
                assert_close(&grad, &want, 1e-4, 1e-6, &format!("{ctx} ce_probs"));
            }
            for ls in [0.0f32, 0.2] {
                let ctx = format!("{level:?} {rows}x{cols} ls={ls}");
                let y = rng.vec(n, 0.0, 1.0); // soft binary targets
                let ys = smooth_binary(&y, ls as f64);
                let z = rng.vec(n, -4.0, 4.0);
                let (mut probs, mut grad) = (vec![0.0; n], vec![0.0; n]);
                sigmoid_bce_from_logits(
                    level,
                    &z,
                    rows,
                    cols,
                    &y,
                    ls,
                    &mut probs,
                    Some(&mut grad),
                    scale,
                    None,
                );
                let want = fd_grad(&|zz| sigmoid_bce64(zz, &ys, cols), &z, s64, h);
                assert_close(&grad, &want, 1e-4, 1e-7, &format!("{ctx} sigmoid_bce"));
                let a = rng.vec(n, 0.05, 0.95);
                bce_from_probs(level, &a, rows, cols, &y, ls, Some(&mut grad), scale, None);
                let want = fd_grad(&|aa| bce_probs64(aa, &ys, cols), &a, s64, h);
                assert_close(&grad, &want, 1e-4, 1e-7, &format!("{ctx} bce_probs"));
            }
            let a = rng.vec(n, -2.0, 2.0);
            let y = rng.vec(n, -2.0, 2.0);
            let yd = to_f64(&y);
            let mut grad = vec![0.0; n];
            mse(level, &a, rows, cols, &y, Some(&mut grad), scale, None);
            let want = fd_grad(&|aa| mse64(aa, &yd, cols), &a, s64, h);
            assert_close(
                &grad,
                &want,
                1e-4,
                1e-7,
                &format!("{level:?} {rows}x{cols} mse"),
            );
        }
    }
}

#[test]
fn keras_reference_values() {
    for level in levels() {
        // Label smoothing example (spec §5.3): 0.46330.
        let a = [0.2f32, 0.7, 0.1];
        let y = [0.0f32, 1.0, 0.0];
        let l = ce_from_probs(level, &a, 1, 3, Targets::Dense(&y), 0.1, None, 1.0, None);
        assert!((l - 0.46330).abs() < 5e-5, "{level:?}: {l}");
        // Hard zero probability on the true class: −ln(1e−7) = 16.1181, and no gradient.
        let a = [0.0f32, 1.0, 0.0];
        let mut g = [9.0f32; 3];
        let l = ce_from_probs(
            level,
            &a,
            1,
            3,
            Targets::Sparse(&[0]),
            0.0,
            Some(&mut g),
            1.0,
            None,
        );
        assert!((l - 16.1181).abs() < 1e-4, "{level:?}: {l}");
        assert_eq!(g, [0.0; 3]);
        let l = ce_from_probs(
            level,
            &a,
            1,
            3,
            Targets::Dense(&[1.0, 0.0, 0.0]),
            0.0,
            None,
            1.0,
            None,
        );
        assert!((l - 16.1181).abs() < 1e-4, "{level:?}: {l}");
        // Keras JAX: logits [20, 0, 0] true class 1 → 20.0 from logits.
        let mut probs = [0.0f32; 3];
        let l = softmax_ce_from_logits(
            level,
            &[20.0, 0.0, 0.0],
            1,
            3,
            Targets::Sparse(&[1]),
            0.0,
            &mut probs,
            None,
            1.0,
            None,
        );
        assert!((l - 20.0).abs() < 1e-5, "{level:?}: {l}");
        // BCE worst cases: (y=0, p=1) → 15.9424 (1−1e−7 rounds in f32), (y=1, p=0) → 16.1181.
        let l = bce_from_probs(level, &[1.0], 1, 1, &[0.0], 0.0, None, 1.0, None);
        assert!((l - 15.9424).abs() < 1e-4, "{level:?}: {l}");
        let mut g = [9.0f32];
        let l = bce_from_probs(level, &[0.0], 1, 1, &[1.0], 0.0, Some(&mut g), 1.0, None);
        assert!((l - 16.1181).abs() < 1e-4, "{level:?}: {l}");
        assert_eq!(g, [0.0]);
        // MSE (spec §5.2): targets [[1,2],[3,4]] vs zeros → mean 7.5, i.e. sum 15.
        let l = mse(
            level,
            &[0.0; 4],
            2,
            2,
            &[1.0, 2.0, 3.0, 4.0],
            None,
            1.0,
            None,
        );
        assert_eq!(l, 15.0);
        // Sigmoid BCE from logits at z = ±100 stays finite and exact.
        let mut p = [0.0f32; 2];
        let l = sigmoid_bce_from_logits(
            level,
            &[100.0, -100.0],
            1,
            2,
            &[0.0, 0.0],
            0.0,
            &mut p,
            None,
            1.0,
            None,
        );
        assert!((l - 50.0).abs() < 1e-5, "{level:?}: {l}");
    }
}

#[test]
fn levels_agree_with_scalar() {
    let mut rng = Rng::new(14);
    let (rows, cols) = (9, 100);
    let n = rows * cols;
    let z = rng.vec(n, -8.0, 8.0);
    let a = rng.vec(n, 0.0, 1.0);
    let y = rng.vec(n, 0.0, 1.0);
    let lab: Vec<i64> = (0..rows).map(|_| rng.below(cols) as i64).collect();
    let run = |level: Level| {
        let mut out = Vec::new();
        let (mut p, mut g) = (vec![0.0; n], vec![0.0; n]);
        let push = |l: f64, g: &[f32], out: &mut Vec<f64>| {
            out.push(l);
            out.extend(g.iter().map(|&v| v as f64));
        };
        let l = softmax_ce_from_logits(
            level,
            &z,
            rows,
            cols,
            Targets::Dense(&y),
            0.1,
            &mut p,
            Some(&mut g),
            0.1,
            None,
        );
        push(l, &g, &mut out);
        push(0.0, &p, &mut out);
        let l = softmax_ce_from_logits(
            level,
            &z,
            rows,
            cols,
            Targets::Sparse(&lab),
            0.0,
            &mut p,
            Some(&mut g),
            0.1,
            None,
        );
        push(l, &g, &mut out);
        let l = ce_from_probs(
            level,
            &a,
            rows,
            cols,
            Targets::Dense(&y),
            0.1,
            Some(&mut g),
            0.1,
            None,
        );
        push(l, &g, &mut out);
        let l = ce_from_probs(
            level,
            &a,
            rows,
            cols,
            Targets::Sparse(&lab),
            0.0,
            Some(&mut g),
            0.1,
            None,
        );
        push(l, &g, &mut out);
        let l = sigmoid_bce_from_logits(
            level,
            &z,
            rows,
            cols,
            &y,
            0.1,
            &mut p,
            Some(&mut g),
            0.1,
            None,
        );
        push(l, &g, &mut out);
        push(0.0, &p, &mut out);
        let l = bce_from_probs(level, &a, rows, cols, &y, 0.1, Some(&mut g), 0.1, None);
        push(l, &g, &mut out);
        let l = mse(level, &a, rows, cols, &y, Some(&mut g), 0.1, None);
        push(l, &g, &mut out);
        out
    };
    let base = run(Level::Scalar);
    for level in levels() {
        let got = run(level);
        assert_eq!(got, run(level), "{level:?} not deterministic");
        for (i, (&x, &b)) in got.iter().zip(&base).enumerate() {
            assert!(
                (x - b).abs() <= 1e-6 * b.abs() + 1e-9,
                "{level:?} item {i}: {x} vs {b}"
            );
        }
    }
}

/// Inputs of [`run_kernel`]: logits `z`, probabilities `a`, targets `y` and `labels`.
struct Batch {
    cols: usize,
    z: Vec<f32>,
    a: Vec<f32>,
    y: Vec<f32>,
    labels: Vec<i64>,
}

const KERNELS: [&str; 6] = [
    "softmax_ce_sparse",
    "softmax_ce_dense",
    "ce_from_probs",
    "sigmoid_bce",
    "bce_from_probs",
    "mse",
];

/// Loss kernel `name` on rows `r` of `b` with gradient scale `s` and row weights `w` (one
/// per row of `r`, or `None`).
#[allow(clippy::too_many_arguments)]
fn run_kernel(
    name: &str,
    level: Level,
    b: &Batch,
    r: std::ops::Range<usize>,
    s: f32,
    w: Option<&[f32]>,
    p: &mut [f32],
    g: &mut [f32],
) -> f64 {
    let (c, rows) = (b.cols, r.len());
    let span = r.start * c..r.end * c;
    let (z, a, y) = (&b.z[span.clone()], &b.a[span.clone()], &b.y[span]);
    let g = Some(g);
    let dense = Targets::Dense(y);
    match name {
        "softmax_ce_sparse" => {
            let sparse = Targets::Sparse(&b.labels[r]);
            softmax_ce_from_logits(level, z, rows, c, sparse, 0.0, p, g, s, w)
        }
        "softmax_ce_dense" => softmax_ce_from_logits(level, z, rows, c, dense, 0.1, p, g, s, w),
        "ce_from_probs" => ce_from_probs(level, a, rows, c, dense, 0.1, g, s, w),
        "sigmoid_bce" => sigmoid_bce_from_logits(level, z, rows, c, y, 0.1, p, g, s, w),
        "bce_from_probs" => bce_from_probs(level, a, rows, c, y, 0.1, g, s, w),
        "mse" => mse(level, a, rows, c, y, g, s, w),
        _ => unreachable!("{name}"),
    }
}

#[test]
fn weights_scale_the_unweighted_loss_row_by_row() {
    let mut rng = Rng::new(41);
    for level in levels() {
        for &rows in &ROWS {
            for &cols in &COLS {
                let n = rows * cols;
                let b = Batch {
                    cols,
                    z: rng.vec(n, -3.0, 3.0),
                    a: rng.vec(n, 0.01, 0.99),
                    y: rng.vec(n, 0.0, 1.0),
                    labels: (0..rows).map(|_| rng.below(cols) as i64).collect(),
                };
                let w: Vec<f32> = (0..rows).map(|r| [0.0, 0.5, 2.0, 1.0][r % 4]).collect();
                let scale = 1.0 / rows as f32;
                let (mut p, mut g) = (vec![0.0f32; n], vec![0.0f32; n]);
                let (mut pr, mut gr) = (vec![0.0f32; cols], vec![0.0f32; cols]);
                for name in KERNELS {
                    let ctx = format!("{name} {level:?} {rows}x{cols}");
                    let total =
                        run_kernel(name, level, &b, 0..rows, scale, Some(&w), &mut p, &mut g);
                    let mut want = 0.0f64;
                    for (r, &wr) in w.iter().enumerate() {
                        let l = run_kernel(
                            name,
                            level,
                            &b,
                            r..r + 1,
                            scale * wr,
                            None,
                            &mut pr,
                            &mut gr,
                        );
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
                    let l1 =
                        run_kernel(name, level, &b, 0..rows, scale, Some(&ones), &mut p, &mut g);
                    let g1 = g.clone();
                    let l2 = run_kernel(name, level, &b, 0..rows, scale, None, &mut p, &mut g);
                    assert!(
                        l1.to_bits() == l2.to_bits() && g1 == g,
                        "{ctx}: weights of 1"
                    );
                }
            }
        }
    }
}
