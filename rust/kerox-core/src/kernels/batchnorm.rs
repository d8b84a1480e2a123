//! Batch normalisation over rows (features = cols), Keras 3 formulas (spec §3).
//!
//! Column statistics are accumulated in f64 on the stack, one block of `B` columns at a
//! time (each row segment is a contiguous, vectorisable map); the normalisation itself is the
//! Keras expression `y = x·inv + (beta − mean·inv)` with `inv = inv_std·gamma`.

// Columns per block (`by_col_block!`; f64 accumulators and per-column coefficients live on
// the stack). Narrow layers use small blocks (cheap stack init); wide ones use blocks of 1024
// so each row segment is a long contiguous stream — 64-column blocks walked down the rows
// with a power-of-two row stride (e.g. 1024 floats = 4 KiB) thrash a few L1 sets.

#[inline(always)]
fn opt_at(v: Option<&[f32]>, i: usize, default: f32) -> f32 {
    match v {
        Some(s) => s[i],
        None => default,
    }
}

#[inline(always)]
fn check_opt(v: Option<&[f32]>, cols: usize, what: &str) {
    if let Some(s) = v {
        assert_eq!(s.len(), cols, "{what} length");
    }
}

/// y[r, c0..c0+w] = x·inv + shift for every row.
#[inline(always)]
fn apply_affine(
    x: &[f32],
    y: &mut [f32],
    rows: usize,
    cols: usize,
    c0: usize,
    inv: &[f32],
    shift: &[f32],
) {
    let w = inv.len();
    for r in 0..rows {
        let xr = &x[r * cols + c0..r * cols + c0 + w];
        let yr = &mut y[r * cols + c0..r * cols + c0 + w];
        for (((yv, &xv), &iv), &sv) in yr.iter_mut().zip(xr).zip(inv).zip(shift) {
            *yv = xv * iv + sv;
        }
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn forward_train_blk<const B: usize>(
    x: &[f32],
    rows: usize,
    cols: usize,
    gamma: Option<&[f32]>,
    beta: Option<&[f32]>,
    eps: f32,
    batch_mean: &mut [f32],
    batch_var: &mut [f32],
    inv_std: &mut [f32],
    y: &mut [f32],
) {
    assert_eq!(x.len(), rows * cols, "x length");
    assert_eq!(y.len(), rows * cols, "y length");
    assert_eq!(batch_mean.len(), cols, "batch_mean length");
    assert_eq!(batch_var.len(), cols, "batch_var length");
    assert_eq!(inv_std.len(), cols, "inv_std length");
    check_opt(gamma, cols, "gamma");
    check_opt(beta, cols, "beta");
    let n = rows as f64;
    let mut c0 = 0;
    while c0 < cols {
        let w = (cols - c0).min(B);
        // pass 1: mean
        let mut acc = [0.0f64; B];
        let acc = &mut acc[..w];
        for r in 0..rows {
            for (a, &v) in acc.iter_mut().zip(&x[r * cols + c0..r * cols + c0 + w]) {
                *a += v as f64;
            }
        }
        let mean = &mut batch_mean[c0..c0 + w];
        for (m, &a) in mean.iter_mut().zip(acc.iter()) {
            *m = (a / n) as f32;
        }
        // pass 2: biased variance = mean of squared deviations
        acc.fill(0.0);
        for r in 0..rows {
            for ((a, &v), &m) in acc
                .iter_mut()
                .zip(&x[r * cols + c0..r * cols + c0 + w])
                .zip(mean.iter())
            {
                let d = (v - m) as f64;
                *a += d * d;
            }
        }
        let mut inv = [0.0f32; B];
        let mut shift = [0.0f32; B];
        for j in 0..w {
            let c = c0 + j;
            let var = (acc[j] / n) as f32;
            batch_var[c] = var;
            let is = 1.0 / (var + eps).sqrt();
            inv_std[c] = is;
            let iv = is * opt_at(gamma, c, 1.0);
            inv[j] = iv;
            shift[j] = opt_at(beta, c, 0.0) - mean[j] * iv;
        }
        apply_affine(x, y, rows, cols, c0, &inv[..w], &shift[..w]);
        c0 += w;
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn forward_train_body(
    x: &[f32],
    rows: usize,
    cols: usize,
    gamma: Option<&[f32]>,
    beta: Option<&[f32]>,
    eps: f32,
    batch_mean: &mut [f32],
    batch_var: &mut [f32],
    inv_std: &mut [f32],
    y: &mut [f32],
) {
    by_col_block!(
        cols,
        forward_train_blk(x, rows, cols, gamma, beta, eps, batch_mean, batch_var, inv_std, y)
    )
}

multiversion! {
    /// Training forward: per column mean and BIASED variance (two-pass: mean, then mean of
    /// squared deviations), inv_std = 1/sqrt(var+eps); with inv = inv_std·gamma (gamma = 1 if
    /// None), y = x·inv + (beta − mean·inv) (beta = 0 if None). Writes batch_mean, batch_var,
    /// inv_std (len cols each) and y.
    #[allow(clippy::too_many_arguments)]
    pub fn bn_forward_train(
        x: &[f32],
        rows: usize,
        cols: usize,
        gamma: Option<&[f32]>,
        beta: Option<&[f32]>,
        eps: f32,
        batch_mean: &mut [f32],
        batch_var: &mut [f32],
        inv_std: &mut [f32],
        y: &mut [f32],
    ) => forward_train_body;
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn forward_infer_blk<const B: usize>(
    x: &[f32],
    rows: usize,
    cols: usize,
    gamma: Option<&[f32]>,
    beta: Option<&[f32]>,
    moving_mean: &[f32],
    moving_var: &[f32],
    eps: f32,
    y: &mut [f32],
) {
    assert_eq!(x.len(), rows * cols, "x length");
    assert_eq!(y.len(), rows * cols, "y length");
    assert_eq!(moving_mean.len(), cols, "moving_mean length");
    assert_eq!(moving_var.len(), cols, "moving_var length");
    check_opt(gamma, cols, "gamma");
    check_opt(beta, cols, "beta");
    let mut c0 = 0;
    while c0 < cols {
        let w = (cols - c0).min(B);
        let mut inv = [0.0f32; B];
        let mut shift = [0.0f32; B];
        for j in 0..w {
            let c = c0 + j;
            let iv = (1.0 / (moving_var[c] + eps).sqrt()) * opt_at(gamma, c, 1.0);
            inv[j] = iv;
            shift[j] = opt_at(beta, c, 0.0) - moving_mean[c] * iv;
        }
        apply_affine(x, y, rows, cols, c0, &inv[..w], &shift[..w]);
        c0 += w;
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn forward_infer_body(
    x: &[f32],
    rows: usize,
    cols: usize,
    gamma: Option<&[f32]>,
    beta: Option<&[f32]>,
    moving_mean: &[f32],
    moving_var: &[f32],
    eps: f32,
    y: &mut [f32],
) {
    by_col_block!(
        cols,
        forward_infer_blk(x, rows, cols, gamma, beta, moving_mean, moving_var, eps, y)
    )
}

multiversion! {
    /// Inference forward with the moving statistics, same expression form.
    #[allow(clippy::too_many_arguments)]
    pub fn bn_forward_infer(
        x: &[f32],
        rows: usize,
        cols: usize,
        gamma: Option<&[f32]>,
        beta: Option<&[f32]>,
        moving_mean: &[f32],
        moving_var: &[f32],
        eps: f32,
        y: &mut [f32],
    ) => forward_infer_body;
}

#[inline(always)]
fn update_moving_body(
    moving_mean: &mut [f32],
    moving_var: &mut [f32],
    batch_mean: &[f32],
    batch_var: &[f32],
    momentum: f32,
) {
    let cols = moving_mean.len();
    assert_eq!(moving_var.len(), cols, "moving_var length");
    assert_eq!(batch_mean.len(), cols, "batch_mean length");
    assert_eq!(batch_var.len(), cols, "batch_var length");
    let k = 1.0 - momentum;
    for (m, &b) in moving_mean.iter_mut().zip(batch_mean) {
        *m = *m * momentum + b * k;
    }
    for (m, &b) in moving_var.iter_mut().zip(batch_var) {
        *m = *m * momentum + b * k;
    }
}

multiversion! {
    /// moving ← moving·momentum + batch·(1 − momentum), for mean and variance.
    pub fn bn_update_moving(
        moving_mean: &mut [f32],
        moving_var: &mut [f32],
        batch_mean: &[f32],
        batch_var: &[f32],
        momentum: f32,
    ) => update_moving_body;
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_train_blk<const B: usize>(
    dy: &[f32],
    x: &[f32],
    rows: usize,
    cols: usize,
    batch_mean: &[f32],
    inv_std: &[f32],
    gamma: Option<&[f32]>,
    dx: &mut [f32],
    mut dgamma: Option<&mut [f32]>,
    mut dbeta: Option<&mut [f32]>,
) {
    assert_eq!(dy.len(), rows * cols, "dy length");
    assert_eq!(x.len(), rows * cols, "x length");
    assert_eq!(dx.len(), rows * cols, "dx length");
    assert_eq!(batch_mean.len(), cols, "batch_mean length");
    assert_eq!(inv_std.len(), cols, "inv_std length");
    check_opt(gamma, cols, "gamma");
    if let Some(d) = dgamma.as_deref() {
        assert_eq!(d.len(), cols, "dgamma length");
    }
    if let Some(d) = dbeta.as_deref() {
        assert_eq!(d.len(), cols, "dbeta length");
    }
    let n = rows as f64;
    let mut c0 = 0;
    while c0 < cols {
        let w = (cols - c0).min(B);
        let mean = &batch_mean[c0..c0 + w];
        let istd = &inv_std[c0..c0 + w];
        let mut sdy = [0.0f64; B];
        let mut sdyx = [0.0f64; B];
        let (sdy, sdyx) = (&mut sdy[..w], &mut sdyx[..w]);
        for r in 0..rows {
            let o = r * cols + c0;
            let dyr = &dy[o..o + w];
            let xr = &x[o..o + w];
            for j in 0..w {
                let xh = (xr[j] - mean[j]) * istd[j];
                sdy[j] += dyr[j] as f64;
                sdyx[j] += dyr[j] as f64 * xh as f64;
            }
        }
        let mut k = [0.0f32; B];
        let mut mdy = [0.0f32; B];
        let mut mdyx = [0.0f32; B];
        for j in 0..w {
            let c = c0 + j;
            if let Some(d) = dbeta.as_deref_mut() {
                d[c] = sdy[j] as f32;
            }
            if let Some(d) = dgamma.as_deref_mut() {
                d[c] = sdyx[j] as f32;
            }
            k[j] = opt_at(gamma, c, 1.0) * istd[j];
            mdy[j] = (sdy[j] / n) as f32;
            mdyx[j] = (sdyx[j] / n) as f32;
        }
        let (k, mdy, mdyx) = (&k[..w], &mdy[..w], &mdyx[..w]);
        for r in 0..rows {
            let o = r * cols + c0;
            let dxr = &mut dx[o..o + w];
            let dyr = &dy[o..o + w];
            let xr = &x[o..o + w];
            for j in 0..w {
                let xh = (xr[j] - mean[j]) * istd[j];
                dxr[j] = k[j] * (dyr[j] - mdy[j] - xh * mdyx[j]);
            }
        }
        c0 += w;
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_train_body(
    dy: &[f32],
    x: &[f32],
    rows: usize,
    cols: usize,
    batch_mean: &[f32],
    inv_std: &[f32],
    gamma: Option<&[f32]>,
    dx: &mut [f32],
    dgamma: Option<&mut [f32]>,
    dbeta: Option<&mut [f32]>,
) {
    by_col_block!(
        cols,
        backward_train_blk(dy, x, rows, cols, batch_mean, inv_std, gamma, dx, dgamma, dbeta)
    )
}

multiversion! {
    /// Training backward (gradient flows through the batch mean and biased variance):
    /// x̂ = (x−mean)·inv_std; dbeta = Σ dy; dgamma = Σ dy·x̂;
    /// dx = gamma·inv_std·(dy − mean(dy) − x̂·mean(dy·x̂)). dgamma/dbeta written only if Some.
    #[allow(clippy::too_many_arguments)]
    pub fn bn_backward_train(
        dy: &[f32],
        x: &[f32],
        rows: usize,
        cols: usize,
        batch_mean: &[f32],
        inv_std: &[f32],
        gamma: Option<&[f32]>,
        dx: &mut [f32],
        dgamma: Option<&mut [f32]>,
        dbeta: Option<&mut [f32]>,
    ) => backward_train_body;
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_infer_blk<const B: usize>(
    dy: &[f32],
    rows: usize,
    cols: usize,
    gamma: Option<&[f32]>,
    moving_var: &[f32],
    eps: f32,
    dx: &mut [f32],
) {
    assert_eq!(dy.len(), rows * cols, "dy length");
    assert_eq!(dx.len(), rows * cols, "dx length");
    assert_eq!(moving_var.len(), cols, "moving_var length");
    check_opt(gamma, cols, "gamma");
    let mut c0 = 0;
    while c0 < cols {
        let w = (cols - c0).min(B);
        let mut k = [0.0f32; B];
        for (j, kv) in k[..w].iter_mut().enumerate() {
            let c = c0 + j;
            *kv = (1.0 / (moving_var[c] + eps).sqrt()) * opt_at(gamma, c, 1.0);
        }
        let k = &k[..w];
        for r in 0..rows {
            let o = r * cols + c0;
            for ((d, &g), &kv) in dx[o..o + w].iter_mut().zip(&dy[o..o + w]).zip(k) {
                *d = g * kv;
            }
        }
        c0 += w;
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_infer_body(
    dy: &[f32],
    rows: usize,
    cols: usize,
    gamma: Option<&[f32]>,
    moving_var: &[f32],
    eps: f32,
    dx: &mut [f32],
) {
    by_col_block!(
        cols,
        backward_infer_blk(dy, rows, cols, gamma, moving_var, eps, dx)
    )
}

multiversion! {
    /// Inference-mode backward (frozen BN): dx = dy·gamma/sqrt(moving_var+eps)
    /// (as dy·inv with the forward's inv = inv_std·gamma).
    #[allow(clippy::too_many_arguments)]
    pub fn bn_backward_infer(
        dy: &[f32],
        rows: usize,
        cols: usize,
        gamma: Option<&[f32]>,
        moving_var: &[f32],
        eps: f32,
        dx: &mut [f32],
    ) => backward_infer_body;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::Level;
    use crate::kernels::testutil::*;

    const EPS: f32 = 1e-3;
    /// Wider than one large block (1024 columns): exercises the multi-block path.
    const WIDE: [usize; 1] = [2100];

    struct Ref {
        mean: Vec<f64>,
        var: Vec<f64>,
        y: Vec<f64>,
    }

    /// f64 reference of the training forward: y = γ(x−μ)/√(σ²+ε) + β, biased σ².
    fn forward64(
        x: &[f64],
        rows: usize,
        cols: usize,
        gamma: &[f64],
        beta: &[f64],
        eps: f64,
    ) -> Ref {
        let n = rows as f64;
        let mean: Vec<f64> = (0..cols)
            .map(|c| (0..rows).map(|r| x[r * cols + c]).sum::<f64>() / n)
            .collect();
        let var: Vec<f64> = (0..cols)
            .map(|c| {
                (0..rows)
                    .map(|r| (x[r * cols + c] - mean[c]).powi(2))
                    .sum::<f64>()
                    / n
            })
            .collect();
        let y = (0..rows * cols)
            .map(|i| {
                let c = i % cols;
                gamma[c] * (x[i] - mean[c]) / (var[c] + eps).sqrt() + beta[c]
            })
            .collect();
        Ref { mean, var, y }
    }

    struct Case {
        x: Vec<f32>,
        gamma: Vec<f32>,
        beta: Vec<f32>,
    }

    fn case(rng: &mut Rng, rows: usize, cols: usize) -> Case {
        let shift = rng.vec(cols, -2.0, 2.0);
        let mut x = rng.vec(rows * cols, -1.5, 1.5);
        for (i, v) in x.iter_mut().enumerate() {
            *v += shift[i % cols];
        }
        Case {
            x,
            gamma: rng.vec(cols, 0.5, 2.0),
            beta: rng.vec(cols, -1.0, 1.0),
        }
    }

    fn train(level: Level, c: &Case, rows: usize, cols: usize, affine: bool) -> [Vec<f32>; 4] {
        let (mut m, mut v, mut s) = (vec![0.0; cols], vec![0.0; cols], vec![0.0; cols]);
        let mut y = vec![0.0; rows * cols];
        let (g, b) = if affine {
            (Some(&c.gamma[..]), Some(&c.beta[..]))
        } else {
            (None, None)
        };
        bn_forward_train(
            level, &c.x, rows, cols, g, b, EPS, &mut m, &mut v, &mut s, &mut y,
        );
        [m, v, s, y]
    }

    #[test]
    fn forward_train_matches_reference() {
        let mut rng = Rng::new(40);
        for level in levels() {
            for &rows in &ROWS {
                for &cols in COLS.iter().chain(&WIDE) {
                    let c = case(&mut rng, rows, cols);
                    for affine in [false, true] {
                        let [m, v, s, y] = train(level, &c, rows, cols, affine);
                        let (g64, b64) = if affine {
                            (to_f64(&c.gamma), to_f64(&c.beta))
                        } else {
                            (vec![1.0; cols], vec![0.0; cols])
                        };
                        let r = forward64(&to_f64(&c.x), rows, cols, &g64, &b64, EPS as f64);
                        let ctx = format!("{level:?} {rows}x{cols} affine={affine}");
                        assert_close(&m, &r.mean, 1e-6, 1e-6, &ctx);
                        assert_close(&v, &r.var, 1e-5, 1e-6, &ctx);
                        let is: Vec<f64> = r
                            .var
                            .iter()
                            .map(|v| 1.0 / (v + EPS as f64).sqrt())
                            .collect();
                        assert_close(&s, &is, 1e-5, 0.0, &ctx);
                        // Keras' form x·inv + (β − μ·inv) cancels: the error scales with |x·inv|
                        for i in 0..rows * cols {
                            let xi = (c.x[i] as f64 * is[i % cols] * g64[i % cols]).abs();
                            let tol = 1e-6 + 3.0 * f32::EPSILON as f64 * (xi + b64[i % cols].abs());
                            let err = (y[i] as f64 - r.y[i]).abs();
                            assert!(
                                err <= tol,
                                "{ctx}: y[{i}] = {} vs {} (err {err:e})",
                                y[i],
                                r.y[i]
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn forward_train_invariants() {
        let mut rng = Rng::new(41);
        for level in levels() {
            for &cols in &COLS {
                let rows = 32;
                let c = case(&mut rng, rows, cols);
                let [_, v, _, y] = train(level, &c, rows, cols, true);
                for j in 0..cols {
                    let col: Vec<f64> = (0..rows).map(|r| y[r * cols + j] as f64).collect();
                    let mean = col.iter().sum::<f64>() / rows as f64;
                    let var = col.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / rows as f64;
                    let b = c.beta[j] as f64;
                    let g2 = (c.gamma[j] as f64).powi(2);
                    let vb = v[j] as f64;
                    assert!(
                        (mean - b).abs() < 1e-5,
                        "{level:?} col {j}: mean {mean} vs beta {b}"
                    );
                    let want = g2 * vb / (vb + EPS as f64); // up to eps
                    assert!(
                        (var - want).abs() < 1e-5 * (1.0 + want),
                        "{level:?} col {j}: {var} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn single_row_batch_gives_beta() {
        let mut rng = Rng::new(42);
        for level in levels() {
            for &cols in &COLS {
                let c = case(&mut rng, 1, cols);
                // Without beta: x·inv + (0 − mean·inv) with mean == x is exactly 0.
                let [m, v, s, y] = train(level, &c, 1, cols, false);
                assert_eq!(m, c.x);
                assert!(v.iter().all(|&t| t == 0.0));
                assert!(s.iter().all(|&t| t == 1.0 / EPS.sqrt()));
                assert!(y.iter().all(|&t| t == 0.0), "{level:?}: {y:?}");
                // With gamma/beta: beta up to the rounding of Keras' expression order
                // x·inv + (beta − mean·inv) (exact when beta = 0, see above).
                let [_, _, s, y] = train(level, &c, 1, cols, true);
                for j in 0..cols {
                    let p = (c.x[j] * s[j] * c.gamma[j]).abs();
                    let tol = f32::EPSILON * (p + c.beta[j].abs());
                    assert!(
                        (y[j] - c.beta[j]).abs() <= tol,
                        "{level:?}: {} vs {}",
                        y[j],
                        c.beta[j]
                    );
                }
            }
            // gamma given, beta = None: exactly 0
            let x = [3.7f32, -12.25];
            let (mut m, mut v, mut s, mut y) = ([0.0; 2], [0.0; 2], [0.0; 2], [9.0; 2]);
            bn_forward_train(
                level,
                &x,
                1,
                2,
                Some(&[2.5, 0.3]),
                None,
                EPS,
                &mut m,
                &mut v,
                &mut s,
                &mut y,
            );
            assert_eq!(y, [0.0, 0.0]);
        }
    }

    #[test]
    fn forward_infer_and_update_match_reference() {
        let mut rng = Rng::new(43);
        for level in levels() {
            for &rows in &ROWS {
                for &cols in COLS.iter().chain(&WIDE) {
                    let c = case(&mut rng, rows, cols);
                    let mm = rng.vec(cols, -1.0, 1.0);
                    let mv = rng.vec(cols, 0.1, 3.0);
                    let mut y = vec![0.0; rows * cols];
                    bn_forward_infer(
                        level,
                        &c.x,
                        rows,
                        cols,
                        Some(&c.gamma),
                        Some(&c.beta),
                        &mm,
                        &mv,
                        EPS,
                        &mut y,
                    );
                    let want: Vec<f64> = (0..rows * cols)
                        .map(|i| {
                            let j = i % cols;
                            c.gamma[j] as f64 * (c.x[i] as f64 - mm[j] as f64)
                                / (mv[j] as f64 + EPS as f64).sqrt()
                                + c.beta[j] as f64
                        })
                        .collect();
                    let ctx = format!("{level:?} {rows}x{cols} infer");
                    assert_close(&y, &want, 1e-5, 1e-5, &ctx);
                    bn_forward_infer(level, &c.x, rows, cols, None, None, &mm, &mv, EPS, &mut y);
                    let want: Vec<f64> = (0..rows * cols)
                        .map(|i| {
                            let j = i % cols;
                            (c.x[i] as f64 - mm[j] as f64) / (mv[j] as f64 + EPS as f64).sqrt()
                        })
                        .collect();
                    assert_close(&y, &want, 1e-5, 1e-5, &ctx);
                    // inference backward: dx = dy·γ/√(mv+ε)
                    let dy = rng.vec(rows * cols, -1.0, 1.0);
                    let mut dx = vec![0.0; rows * cols];
                    bn_backward_infer(level, &dy, rows, cols, Some(&c.gamma), &mv, EPS, &mut dx);
                    let want: Vec<f64> = (0..rows * cols)
                        .map(|i| {
                            let j = i % cols;
                            dy[i] as f64 * c.gamma[j] as f64 / (mv[j] as f64 + EPS as f64).sqrt()
                        })
                        .collect();
                    assert_close(&dx, &want, 1e-6, 1e-7, &ctx);
                    // moving statistics
                    let (bm, bv) = (rng.vec(cols, -1.0, 1.0), rng.vec(cols, 0.0, 2.0));
                    let (mut m2, mut v2) = (mm.clone(), mv.clone());
                    bn_update_moving(level, &mut m2, &mut v2, &bm, &bv, 0.99);
                    let wm: Vec<f64> = (0..cols)
                        .map(|j| mm[j] as f64 * 0.99 + bm[j] as f64 * 0.01)
                        .collect();
                    let wv: Vec<f64> = (0..cols)
                        .map(|j| mv[j] as f64 * 0.99 + bv[j] as f64 * 0.01)
                        .collect();
                    assert_close(&m2, &wm, 1e-6, 1e-7, &ctx);
                    assert_close(&v2, &wv, 1e-6, 1e-7, &ctx);
                    // momentum 0 copies the batch statistics exactly
                    bn_update_moving(level, &mut m2, &mut v2, &bm, &bv, 0.0);
                    assert_eq!((m2, v2), (bm, bv));
                }
            }
        }
    }

    /// Analytic f64 backward on the full shape grid.
    #[test]
    fn backward_train_matches_reference() {
        let mut rng = Rng::new(44);
        for level in levels() {
            for &rows in &ROWS {
                for &cols in COLS.iter().chain(&WIDE) {
                    let c = case(&mut rng, rows, cols);
                    let [m, _, s, _] = train(level, &c, rows, cols, true);
                    let dy = rng.vec(rows * cols, -1.0, 1.0);
                    let mut dx = vec![f32::NAN; rows * cols];
                    let (mut dg, mut db) = (vec![f32::NAN; cols], vec![f32::NAN; cols]);
                    bn_backward_train(
                        level,
                        &dy,
                        &c.x,
                        rows,
                        cols,
                        &m,
                        &s,
                        Some(&c.gamma),
                        &mut dx,
                        Some(&mut dg),
                        Some(&mut db),
                    );
                    let n = rows as f64;
                    let mut wdx = vec![0.0; rows * cols];
                    let (mut wdg, mut wdb) = (vec![0.0; cols], vec![0.0; cols]);
                    for j in 0..cols {
                        let xh: Vec<f64> = (0..rows)
                            .map(|r| (c.x[r * cols + j] as f64 - m[j] as f64) * s[j] as f64)
                            .collect();
                        let d: Vec<f64> = (0..rows).map(|r| dy[r * cols + j] as f64).collect();
                        wdb[j] = d.iter().sum();
                        wdg[j] = d.iter().zip(&xh).map(|(a, b)| a * b).sum();
                        for r in 0..rows {
                            wdx[r * cols + j] = c.gamma[j] as f64
                                * s[j] as f64
                                * (d[r] - wdb[j] / n - xh[r] * wdg[j] / n);
                        }
                    }
                    let ctx = format!("{level:?} {rows}x{cols} backward");
                    assert_close(&db, &wdb, 1e-6, 1e-6, &ctx);
                    assert_close(&dg, &wdg, 1e-5, 1e-5, &ctx);
                    assert_close(&dx, &wdx, 1e-4, 2e-5, &ctx);
                    // Optional outputs and gamma = None
                    let mut dx2 = vec![0.0; rows * cols];
                    bn_backward_train(
                        level, &dy, &c.x, rows, cols, &m, &s, None, &mut dx2, None, None,
                    );
                    let w2: Vec<f64> = wdx
                        .iter()
                        .enumerate()
                        .map(|(i, v)| v / c.gamma[i % cols] as f64)
                        .collect();
                    assert_close(&dx2, &w2, 1e-4, 2e-5, &ctx);
                }
            }
        }
    }

    /// dL/dx, dL/dγ, dL/dβ for L = Σ w·y(x, γ, β) against central finite differences of the
    /// f64 reference forward (gradient flows through the batch mean and biased variance).
    #[test]
    fn backward_train_matches_finite_differences() {
        let mut rng = Rng::new(45);
        let h = 1e-5;
        for level in levels() {
            for &(rows, cols) in &[(2usize, 1usize), (3, 3), (5, 7), (8, 17)] {
                let c = case(&mut rng, rows, cols);
                let w = rng.vec(rows * cols, -1.0, 1.0);
                let wd = to_f64(&w);
                let [m, _, s, _] = train(level, &c, rows, cols, true);
                let mut dx = vec![0.0; rows * cols];
                let (mut dg, mut db) = (vec![0.0; cols], vec![0.0; cols]);
                bn_backward_train(
                    level,
                    &w,
                    &c.x,
                    rows,
                    cols,
                    &m,
                    &s,
                    Some(&c.gamma),
                    &mut dx,
                    Some(&mut dg),
                    Some(&mut db),
                );
                let (x64, g64, b64) = (to_f64(&c.x), to_f64(&c.gamma), to_f64(&c.beta));
                let dot = |y: &[f64]| y.iter().zip(&wd).map(|(a, b)| a * b).sum::<f64>();
                let eps = EPS as f64;
                let lx = |xx: &[f64]| dot(&forward64(xx, rows, cols, &g64, &b64, eps).y);
                let lg = |gg: &[f64]| dot(&forward64(&x64, rows, cols, gg, &b64, eps).y);
                let lb = |bb: &[f64]| dot(&forward64(&x64, rows, cols, &g64, bb, eps).y);
                let fx: Vec<f64> = (0..rows * cols)
                    .map(|i| central_diff(&lx, &x64, i, h))
                    .collect();
                let fg: Vec<f64> = (0..cols).map(|i| central_diff(&lg, &g64, i, h)).collect();
                let fb: Vec<f64> = (0..cols).map(|i| central_diff(&lb, &b64, i, h)).collect();
                let ctx = format!("{level:?} {rows}x{cols} fd");
                assert_close(&dx, &fx, 1e-4, 5e-5, &format!("{ctx} dx"));
                assert_close(&dg, &fg, 1e-4, 1e-5, &format!("{ctx} dgamma"));
                assert_close(&db, &fb, 1e-4, 1e-5, &format!("{ctx} dbeta"));
            }
        }
    }

    #[test]
    fn levels_agree_with_scalar_and_are_deterministic() {
        let mut rng = Rng::new(46);
        let (rows, cols) = (32, 257);
        let c = case(&mut rng, rows, cols);
        let dy = rng.vec(rows * cols, -1.0, 1.0);
        let run = |level: Level| {
            let [m, v, s, y] = train(level, &c, rows, cols, true);
            let mut dx = vec![0.0; rows * cols];
            let (mut dg, mut db) = (vec![0.0; cols], vec![0.0; cols]);
            bn_backward_train(
                level,
                &dy,
                &c.x,
                rows,
                cols,
                &m,
                &s,
                Some(&c.gamma),
                &mut dx,
                Some(&mut dg),
                Some(&mut db),
            );
            [m, v, s, y, dx, dg, db].concat()
        };
        let base = run(Level::Scalar);
        for level in levels() {
            let got = run(level);
            assert_eq!(got, run(level), "{level:?} not deterministic");
            assert_close(
                &got,
                &to_f64(&base),
                1e-6,
                1e-7,
                &format!("{level:?} vs scalar"),
            );
        }
    }
}
