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
