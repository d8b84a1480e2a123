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
