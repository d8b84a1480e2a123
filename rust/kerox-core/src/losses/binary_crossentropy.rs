//! Binary crossentropy (Keras 3 `BinaryCrossentropy`), the mean over columns of each
//! element's crossentropy: on probabilities, on logits (`from_logits=True`), or fused with a
//! sigmoid output (computed from its logits), with `label_smoothing` towards 0.5.

use super::{
    check_label_smoothing, check_weights, clip_prob, row_weight, unclipped, Batch, LossFn, BLK,
};
use crate::dispatch::Level;
use crate::error::Result;
use crate::kernels::math;
use crate::kernels::simd::lane_sum_f64;
use crate::kernels::Activation;
use crate::settings::Settings;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BinaryCrossentropy {
    pub from_logits: bool,
    pub label_smoothing: f32,
}

impl Default for BinaryCrossentropy {
    fn default() -> Self {
        BinaryCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        }
    }
}

impl LossFn for BinaryCrossentropy {
    fn from_settings(s: &dyn Settings) -> Result<Self> {
        Ok(BinaryCrossentropy {
            from_logits: s.flag("from_logits")?,
            label_smoothing: s.f64("label_smoothing")? as f32,
        })
    }

    fn validate(&self) -> Result<()> {
        check_label_smoothing(self.label_smoothing)
    }

    fn fuses(&self) -> Option<Activation> {
        (!self.from_logits).then_some(Activation::Sigmoid)
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
        let (y, ls) = (b.dense_targets(), self.label_smoothing);
        if fused || self.from_logits {
            sigmoid_bce_from_logits(
                level, b.out, b.rows, b.cols, y, ls, probs, grad, scale, b.weights,
            )
        } else {
            bce_from_probs(level, b.out, b.rows, b.cols, y, ls, grad, scale, b.weights)
        }
    }
}

// ---- sigmoid + binary CE from logits --------------------------------------------------------

#[inline(always)]
fn sigmoid_bce_grad(g: &mut [f32], probs: &[f32], y: &[f32], k: f32, keep: f32, off: f32) {
    for ((gv, &pv), &yv) in g.iter_mut().zip(probs).zip(y) {
        let ys = yv * keep + off;
        *gv = k * (pv - ys);
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn sigmoid_bce_body(
    z: &[f32],
    rows: usize,
    cols: usize,
    y: &[f32],
    label_smoothing: f32,
    probs: &mut [f32],
    grad: Option<&mut [f32]>,
    scale: f32,
    weights: Option<&[f32]>,
) -> f64 {
    let n = rows * cols;
    assert_eq!(z.len(), n, "z length");
    assert_eq!(y.len(), n, "y length");
    assert_eq!(probs.len(), n, "probs length");
    check_weights(weights, rows);
    if n == 0 {
        return 0.0;
    }
    let keep = 1.0 - label_smoothing;
    let off = 0.5 * label_smoothing;
    for (p, &zv) in probs.iter_mut().zip(z) {
        *p = math::sigmoid(zv);
    }
    if let Some(g) = grad {
        assert_eq!(g.len(), n, "grad length");
        match weights {
            None => sigmoid_bce_grad(g, probs, y, scale / cols as f32, keep, off),
            Some(w) => {
                for (r, &wr) in w.iter().enumerate() {
                    let s = r * cols..(r + 1) * cols;
                    let k = scale * wr / cols as f32;
                    sigmoid_bce_grad(&mut g[s.clone()], &probs[s.clone()], &y[s], k, keep, off);
                }
            }
        }
    }
    let mut buf = [0.0f32; BLK];
    let mut total = 0.0f64;
    for r in 0..rows {
        let (_, w) = row_weight(weights, r, scale);
        let zr = &z[r * cols..(r + 1) * cols];
        let yr = &y[r * cols..(r + 1) * cols];
        let mut row = 0.0f64;
        for (zc, yc) in zr.chunks(BLK).zip(yr.chunks(BLK)) {
            let out = &mut buf[..zc.len()];
            for ((o, &zv), &yv) in out.iter_mut().zip(zc).zip(yc) {
                let ys = yv * keep + off;
                let m = if zv > 0.0 { zv } else { 0.0 };
                *o = m - zv * ys + math::log1p_unit(math::exp(-zv.abs()));
            }
            row += lane_sum_f64(out);
        }
        total += w * (row / cols as f64);
    }
    total
}

multiversion! {
    /// Sigmoid + binary CE from logits, fused/stable: per element
    /// max(z,0) − z·y + log1p(exp(−|z|)), per-sample = mean over cols. y label-smoothed
    /// towards 0.5: y·(1−ls) + 0.5·ls. Writes probs = sigmoid(z).
    /// grad = scale·(sigmoid(z) − y_s)/cols.
    /// With `weights` (one per row, Keras's `sample_weight`) it returns Σ w_r·loss_r and
    /// scales row r's gradient by `scale·w_r`; `None` weighs every row 1.
    #[allow(clippy::too_many_arguments)]
    pub fn sigmoid_bce_from_logits(
        z: &[f32],
        rows: usize,
        cols: usize,
        y: &[f32],
        label_smoothing: f32,
        probs: &mut [f32],
        grad: Option<&mut [f32]>,
        scale: f32,
        weights: Option<&[f32]>,
    ) -> f64 => sigmoid_bce_body;
}

// ---- binary CE on probabilities -------------------------------------------------------------

#[inline(always)]
fn bce_probs_grad(g: &mut [f32], a: &[f32], y: &[f32], k: f32, keep: f32, off: f32) {
    for ((gv, &av), &yv) in g.iter_mut().zip(a).zip(y) {
        let ys = yv * keep + off;
        // = −ys/p + (1−ys)/(1−p), in the form without cancellation
        let d = (av - ys) / (av * (1.0 - av));
        *gv = if unclipped(av) { k * d } else { 0.0 };
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn bce_probs_body(
    a: &[f32],
    rows: usize,
    cols: usize,
    y: &[f32],
    label_smoothing: f32,
    grad: Option<&mut [f32]>,
    scale: f32,
    weights: Option<&[f32]>,
) -> f64 {
    let n = rows * cols;
    assert_eq!(a.len(), n, "a length");
    assert_eq!(y.len(), n, "y length");
    check_weights(weights, rows);
    if n == 0 {
        return 0.0;
    }
    let keep = 1.0 - label_smoothing;
    let off = 0.5 * label_smoothing;
    if let Some(g) = grad {
        assert_eq!(g.len(), n, "grad length");
        match weights {
            None => bce_probs_grad(g, a, y, scale / cols as f32, keep, off),
            Some(w) => {
                for (r, &wr) in w.iter().enumerate() {
                    let s = r * cols..(r + 1) * cols;
                    let k = scale * wr / cols as f32;
                    bce_probs_grad(&mut g[s.clone()], &a[s.clone()], &y[s], k, keep, off);
                }
            }
        }
    }
    let mut buf = [0.0f32; BLK];
    let mut total = 0.0f64;
    for r in 0..rows {
        let (_, w) = row_weight(weights, r, scale);
        let ar = &a[r * cols..(r + 1) * cols];
        let yr = &y[r * cols..(r + 1) * cols];
        let mut row = 0.0f64;
        for (ac, yc) in ar.chunks(BLK).zip(yr.chunks(BLK)) {
            let out = &mut buf[..ac.len()];
            for ((o, &av), &yv) in out.iter_mut().zip(ac).zip(yc) {
                let ys = yv * keep + off;
                let p = clip_prob(av);
                *o = -(ys * math::ln(p) + (1.0 - ys) * math::ln(1.0 - p));
            }
            row += lane_sum_f64(out);
        }
        total += w * (row / cols as f64);
    }
    total
}

multiversion! {
    /// Binary CE on probabilities (Keras 3): p = clip(a, EPSILON, 1−EPSILON);
    /// −[y·log p + (1−y)·log(1−p)], mean over cols. grad w.r.t. a (zero where clipped).
    /// With `weights` (one per row, Keras's `sample_weight`) it returns Σ w_r·loss_r and
    /// scales row r's gradient by `scale·w_r`; `None` weighs every row 1.
    #[allow(clippy::too_many_arguments)]
    pub fn bce_from_probs(
        a: &[f32],
        rows: usize,
        cols: usize,
        y: &[f32],
        label_smoothing: f32,
        grad: Option<&mut [f32]>,
        scale: f32,
        weights: Option<&[f32]>,
    ) -> f64 => bce_probs_body;
}

#[cfg(test)]
mod tests {
    use std::ops::Range;

    use super::super::testing::{
        check_levels_agree, check_row_weights, fd_grad, smooth_binary, Inputs,
    };
    use super::super::EPSILON;
    use super::*;
    use crate::kernels::testutil::*;

    // ---- f64 references (independent of the kernels) ----

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

    /// Loss, sigmoid and analytic gradient from logits against the f64 reference, with and
    /// without label smoothing.
    #[test]
    fn sigmoid_from_logits_matches_reference() {
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
                    }
                }
            }
        }
    }

    /// Loss and analytic gradient on probabilities against the f64 reference, with and without
    /// label smoothing.
    #[test]
    fn on_probabilities_matches_reference() {
        let mut rng = Rng::new(16);
        for level in levels() {
            for &rows in &ROWS {
                for &cols in &COLS {
                    let n = rows * cols;
                    let scale = 1.0 / rows as f32;
                    for ls in [0.0f32, 0.1] {
                        let ctx = format!("{level:?} {rows}x{cols} ls={ls}");
                        let y: Vec<f32> = (0..n).map(|_| (rng.next_u64() & 1) as f32).collect();
                        let ys = smooth_binary(&y, ls as f64);
                        let a = rng.vec(n, 0.01, 0.99);
                        let mut grad = vec![0.0; n];
                        let loss = bce_from_probs(
                            level,
                            &a,
                            rows,
                            cols,
                            &y,
                            ls,
                            Some(&mut grad),
                            scale,
                            None,
                        );
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
                }
            }
        }
    }

    /// Both kernels' gradients against central finite differences of the f64 references (soft
    /// targets, with and without label smoothing).
    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = Rng::new(13);
        let h = 1e-6;
        for level in levels() {
            for &(rows, cols) in &[(1usize, 2usize), (2, 3), (3, 7), (2, 17)] {
                let n = rows * cols;
                let scale = 1.0 / rows as f32;
                let s64 = scale as f64;
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
            }
        }
    }

    #[test]
    fn matches_keras_reference_values() {
        for level in levels() {
            // Worst cases: (y=0, p=1) → 15.9424 (1−1e−7 rounds in f32), (y=1, p=0) → 16.1181.
            let l = bce_from_probs(level, &[1.0], 1, 1, &[0.0], 0.0, None, 1.0, None);
            assert!((l - 15.9424).abs() < 1e-4, "{level:?}: {l}");
            let mut g = [9.0f32];
            let l = bce_from_probs(level, &[0.0], 1, 1, &[1.0], 0.0, Some(&mut g), 1.0, None);
            assert!((l - 16.1181).abs() < 1e-4, "{level:?}: {l}");
            assert_eq!(g, [0.0]);
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

    /// Both kernels with smoothed targets: losses, gradients and sigmoid.
    fn run_all(level: Level, b: &Inputs) -> Vec<f64> {
        let (rows, cols) = (b.rows, b.cols);
        let n = rows * cols;
        let mut out = Vec::new();
        let (mut p, mut g) = (vec![0.0; n], vec![0.0; n]);
        let push = |l: f64, g: &[f32], out: &mut Vec<f64>| {
            out.push(l);
            out.extend(g.iter().map(|&v| v as f64));
        };
        let (z, a, y) = (&b.z, &b.a, &b.y);
        let l = sigmoid_bce_from_logits(
            level,
            z,
            rows,
            cols,
            y,
            0.1,
            &mut p,
            Some(&mut g),
            0.1,
            None,
        );
        push(l, &g, &mut out);
        push(0.0, &p, &mut out);
        let l = bce_from_probs(level, a, rows, cols, y, 0.1, Some(&mut g), 0.1, None);
        push(l, &g, &mut out);
        out
    }

    #[test]
    fn dispatch_levels_agree_with_scalar() {
        check_levels_agree(run_all);
    }

    fn from_logits(
        level: Level,
        b: &Inputs,
        r: Range<usize>,
        s: f32,
        w: Option<&[f32]>,
        p: &mut [f32],
        g: &mut [f32],
    ) -> f64 {
        let (z, _, y, _) = b.rows(r.clone());
        sigmoid_bce_from_logits(level, z, r.len(), b.cols, y, 0.1, p, Some(g), s, w)
    }

    fn on_probabilities(
        level: Level,
        b: &Inputs,
        r: Range<usize>,
        s: f32,
        w: Option<&[f32]>,
        _: &mut [f32],
        g: &mut [f32],
    ) -> f64 {
        let (_, a, y, _) = b.rows(r.clone());
        bce_from_probs(level, a, r.len(), b.cols, y, 0.1, Some(g), s, w)
    }

    #[test]
    fn weights_scale_the_unweighted_loss_row_by_row() {
        check_row_weights(&[
            ("sigmoid_bce", from_logits),
            ("bce_from_probs", on_probabilities),
        ]);
    }
}
