//! Categorical crossentropy (Keras 3 `CategoricalCrossentropy`): on probabilities, on logits
//! (`from_logits=True`), or fused with a softmax output (computed from its logits, as Keras's
//! TensorFlow backend does), with `label_smoothing`. Its kernels also serve the sparse
//! variant (`sparse_categorical_crossentropy.rs`), which passes class indices.

use super::{
    check_label_smoothing, check_targets, check_weights, clip_prob, row_weight, unclipped, Batch,
    LossFn, Targets, BLK,
};
use crate::dispatch::Level;
use crate::error::Result;
use crate::kernels::math;
use crate::kernels::simd::{lane_max, lane_sum, lane_sum_f64};
use crate::kernels::Activation;
use crate::settings::Settings;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CategoricalCrossentropy {
    pub from_logits: bool,
    pub label_smoothing: f32,
}

impl Default for CategoricalCrossentropy {
    fn default() -> Self {
        CategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        }
    }
}

impl LossFn for CategoricalCrossentropy {
    fn from_settings(s: &dyn Settings) -> Result<Self> {
        Ok(CategoricalCrossentropy {
            from_logits: s.flag("from_logits")?,
            label_smoothing: s.f64("label_smoothing")? as f32,
        })
    }

    fn validate(&self) -> Result<()> {
        check_label_smoothing(self.label_smoothing)
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
        let ls = self.label_smoothing;
        if fused || self.from_logits {
            softmax_ce_from_logits(
                level, b.out, b.rows, b.cols, b.targets, ls, probs, grad, scale, b.weights,
            )
        } else {
            ce_from_probs(
                level, b.out, b.rows, b.cols, b.targets, ls, grad, scale, b.weights,
            )
        }
    }
}

// ---- softmax + categorical CE from logits ---------------------------------------------------

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn softmax_ce_body(
    z: &[f32],
    rows: usize,
    cols: usize,
    targets: Targets<'_>,
    label_smoothing: f32,
    probs: &mut [f32],
    mut grad: Option<&mut [f32]>,
    scale: f32,
    weights: Option<&[f32]>,
) -> f64 {
    let n = rows * cols;
    assert_eq!(z.len(), n, "z length");
    assert_eq!(probs.len(), n, "probs length");
    if let Some(g) = grad.as_deref() {
        assert_eq!(g.len(), n, "grad length");
    }
    check_targets(&targets, rows, cols);
    check_weights(weights, rows);
    if n == 0 {
        return 0.0;
    }
    let ls = label_smoothing;
    let keep = 1.0 - ls;
    let off = ls / cols as f32;
    let mut total = 0.0f64;
    for r in 0..rows {
        let (scale, w) = row_weight(weights, r, scale);
        let zr = &z[r * cols..(r + 1) * cols];
        let pr = &mut probs[r * cols..(r + 1) * cols];
        let m = lane_max(zr);
        for (p, &v) in pr.iter_mut().zip(zr) {
            *p = math::exp(v - m);
        }
        let s = lane_sum(pr);
        let lns = s.ln();
        for p in pr.iter_mut() {
            *p /= s;
        }
        // loss = Σ y_i·(ln s − (z_i − m))
        match targets {
            Targets::Dense(y) => {
                let yr = &y[r * cols..(r + 1) * cols];
                let mut buf = [0.0f32; BLK];
                for (zc, yc) in zr.chunks(BLK).zip(yr.chunks(BLK)) {
                    let out = &mut buf[..zc.len()];
                    for ((o, &zv), &yv) in out.iter_mut().zip(zc).zip(yc) {
                        let ys = yv * keep + off;
                        *o = ys * (lns - (zv - m));
                    }
                    total += w * lane_sum_f64(out);
                }
                if let Some(g) = grad.as_deref_mut() {
                    let gr = &mut g[r * cols..(r + 1) * cols];
                    for ((gv, &pv), &yv) in gr.iter_mut().zip(pr.iter()).zip(yr) {
                        let ys = yv * keep + off;
                        *gv = scale * (pv - ys);
                    }
                }
            }
            Targets::Sparse(l) => {
                let c = l[r] as usize;
                total += w * (lns - (zr[c] - m)) as f64;
                if let Some(g) = grad.as_deref_mut() {
                    let gr = &mut g[r * cols..(r + 1) * cols];
                    for (gv, &pv) in gr.iter_mut().zip(pr.iter()) {
                        *gv = scale * pv;
                    }
                    gr[c] = scale * (pr[c] - 1.0);
                }
            }
        }
    }
    total
}

multiversion! {
    /// Softmax + categorical CE from logits z, fused and stable (log-sum-exp). Writes
    /// probs = softmax(z). Dense targets are label-smoothed: y·(1−ls) + ls/cols (ls ignored for
    /// Sparse). grad (w.r.t. z) = scale·(probs − y_smoothed).
    /// With `weights` (one per row, Keras's `sample_weight`) it returns Σ w_r·loss_r and
    /// scales row r's gradient by `scale·w_r`; `None` weighs every row 1.
    #[allow(clippy::too_many_arguments)]
    pub fn softmax_ce_from_logits(
        z: &[f32],
        rows: usize,
        cols: usize,
        targets: Targets<'_>,
        label_smoothing: f32,
        probs: &mut [f32],
        grad: Option<&mut [f32]>,
        scale: f32,
        weights: Option<&[f32]>,
    ) -> f64 => softmax_ce_body;
}

// ---- categorical CE on probabilities --------------------------------------------------------

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn ce_probs_body(
    a: &[f32],
    rows: usize,
    cols: usize,
    targets: Targets<'_>,
    label_smoothing: f32,
    mut grad: Option<&mut [f32]>,
    scale: f32,
    weights: Option<&[f32]>,
) -> f64 {
    let n = rows * cols;
    assert_eq!(a.len(), n, "a length");
    if let Some(g) = grad.as_deref() {
        assert_eq!(g.len(), n, "grad length");
    }
    check_targets(&targets, rows, cols);
    check_weights(weights, rows);
    if n == 0 {
        return 0.0;
    }
    let keep = 1.0 - label_smoothing;
    let off = label_smoothing / cols as f32;
    let mut total = 0.0f64;
    for r in 0..rows {
        let (scale, w) = row_weight(weights, r, scale);
        let ar = &a[r * cols..(r + 1) * cols];
        let s = lane_sum(ar);
        match targets {
            Targets::Dense(y) => {
                let yr = &y[r * cols..(r + 1) * cols];
                // loss = −Σ ys·ln clip(a/s)
                let mut buf = [0.0f32; BLK];
                for (ac, yc) in ar.chunks(BLK).zip(yr.chunks(BLK)) {
                    let out = &mut buf[..ac.len()];
                    for ((o, &av), &yv) in out.iter_mut().zip(ac).zip(yc) {
                        let ys = yv * keep + off;
                        *o = ys * math::ln(clip_prob(av / s));
                    }
                    total -= w * lane_sum_f64(out);
                }
                if let Some(g) = grad.as_deref_mut() {
                    // dL/da_i = (q_i + U)/s, q_i = −ys_i/p_i (0 where clipped),
                    // U = Σ_{j unclipped} ys_j.
                    let mut u = 0.0f64;
                    for (ac, yc) in ar.chunks(BLK).zip(yr.chunks(BLK)) {
                        let out = &mut buf[..ac.len()];
                        for ((o, &av), &yv) in out.iter_mut().zip(ac).zip(yc) {
                            let ys = yv * keep + off;
                            *o = if unclipped(av / s) { ys } else { 0.0 };
                        }
                        u += lane_sum_f64(out);
                    }
                    let u = u as f32;
                    let gr = &mut g[r * cols..(r + 1) * cols];
                    for ((gv, &av), &yv) in gr.iter_mut().zip(ar).zip(yr) {
                        let ys = yv * keep + off;
                        let p = av / s;
                        let q = if unclipped(p) { -ys / p } else { 0.0 };
                        *gv = scale * ((q + u) / s);
                    }
                }
            }
            Targets::Sparse(l) => {
                let c = l[r] as usize;
                let p = ar[c] / s;
                total -= w * math::ln(clip_prob(p)) as f64;
                if let Some(g) = grad.as_deref_mut() {
                    let gr = &mut g[r * cols..(r + 1) * cols];
                    let (q, u) = if unclipped(p) {
                        (-1.0 / p, 1.0)
                    } else {
                        (0.0, 0.0)
                    };
                    let rest = scale * (u / s);
                    gr.fill(rest);
                    gr[c] = scale * ((q + u) / s);
                }
            }
        }
    }
    total
}

multiversion! {
    /// Keras probability path for categorical CE on outputs a: p = a/Σa (per row), clip to
    /// [EPSILON, 1−EPSILON], −Σ y·log p. grad w.r.t. a, through the renormalisation, with zero
    /// derivative where the clip is active.
    /// With `weights` (one per row, Keras's `sample_weight`) it returns Σ w_r·loss_r and
    /// scales row r's gradient by `scale·w_r`; `None` weighs every row 1.
    #[allow(clippy::too_many_arguments)]
    pub fn ce_from_probs(
        a: &[f32],
        rows: usize,
        cols: usize,
        targets: Targets<'_>,
        label_smoothing: f32,
        grad: Option<&mut [f32]>,
        scale: f32,
        weights: Option<&[f32]>,
    ) -> f64 => ce_probs_body;
}

#[cfg(test)]
mod tests {
    use std::ops::Range;

    use super::super::testing::{check_levels_agree, check_row_weights, fd_grad, targets, Inputs};
    use super::super::EPSILON;
    use super::*;
    use crate::kernels::testutil::*;

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

    /// Loss, softmax and analytic gradient from logits against the f64 reference, dense
    /// (one-hot or soft, with and without label smoothing) and sparse targets.
    #[test]
    fn softmax_from_logits_matches_reference() {
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

    /// Loss and analytic gradient (through the renormalisation a/Σa) on probabilities against
    /// the f64 reference, dense targets with and without label smoothing and sparse targets.
    #[test]
    fn on_probabilities_matches_reference() {
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

    /// Both kernels' gradients against central finite differences of the f64 references
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
            }
        }
    }

    #[test]
    fn matches_keras_reference_values() {
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
        }
    }

    /// Both kernels with dense (smoothed) and sparse targets: losses, gradients and softmax.
    fn run_all(level: Level, b: &Inputs) -> Vec<f64> {
        let (rows, cols) = (b.rows, b.cols);
        let n = rows * cols;
        let mut out = Vec::new();
        let (mut p, mut g) = (vec![0.0; n], vec![0.0; n]);
        let push = |l: f64, g: &[f32], out: &mut Vec<f64>| {
            out.push(l);
            out.extend(g.iter().map(|&v| v as f64));
        };
        let (z, a, y, lab) = (&b.z, &b.a, &b.y, &b.labels);
        let l = softmax_ce_from_logits(
            level,
            z,
            rows,
            cols,
            Targets::Dense(y),
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
            z,
            rows,
            cols,
            Targets::Sparse(lab),
            0.0,
            &mut p,
            Some(&mut g),
            0.1,
            None,
        );
        push(l, &g, &mut out);
        let l = ce_from_probs(
            level,
            a,
            rows,
            cols,
            Targets::Dense(y),
            0.1,
            Some(&mut g),
            0.1,
            None,
        );
        push(l, &g, &mut out);
        let l = ce_from_probs(
            level,
            a,
            rows,
            cols,
            Targets::Sparse(lab),
            0.0,
            Some(&mut g),
            0.1,
            None,
        );
        push(l, &g, &mut out);
        out
    }

    #[test]
    fn dispatch_levels_agree_with_scalar() {
        check_levels_agree(run_all);
    }

    fn from_logits_sparse(
        level: Level,
        b: &Inputs,
        r: Range<usize>,
        s: f32,
        w: Option<&[f32]>,
        p: &mut [f32],
        g: &mut [f32],
    ) -> f64 {
        let (z, _, _, labels) = b.rows(r.clone());
        let t = Targets::Sparse(labels);
        softmax_ce_from_logits(level, z, r.len(), b.cols, t, 0.0, p, Some(g), s, w)
    }

    fn from_logits_dense(
        level: Level,
        b: &Inputs,
        r: Range<usize>,
        s: f32,
        w: Option<&[f32]>,
        p: &mut [f32],
        g: &mut [f32],
    ) -> f64 {
        let (z, _, y, _) = b.rows(r.clone());
        let t = Targets::Dense(y);
        softmax_ce_from_logits(level, z, r.len(), b.cols, t, 0.1, p, Some(g), s, w)
    }

    fn on_probabilities_dense(
        level: Level,
        b: &Inputs,
        r: Range<usize>,
        s: f32,
        w: Option<&[f32]>,
        _: &mut [f32],
        g: &mut [f32],
    ) -> f64 {
        let (_, a, y, _) = b.rows(r.clone());
        let t = Targets::Dense(y);
        ce_from_probs(level, a, r.len(), b.cols, t, 0.1, Some(g), s, w)
    }

    #[test]
    fn weights_scale_the_unweighted_loss_row_by_row() {
        check_row_weights(&[
            ("softmax_ce_sparse", from_logits_sparse),
            ("softmax_ce_dense", from_logits_dense),
            ("ce_from_probs", on_probabilities_dense),
        ]);
    }
}
