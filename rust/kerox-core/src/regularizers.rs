//! Weight regularizers (Keras 3 `keras.regularizers.L1`, `L2`, `L1L2`): a penalty on a
//! variable's values, `l1·Σ|w| + l2·Σw²`, added to the loss of every step (training and
//! evaluation, as Keras adds `model.losses`), and its gradient `l1·sign(w) + 2·l2·w` added
//! to the variable's gradient before the optimizer clips and applies it.

use crate::dispatch::Level;
use crate::error::{Error, Result};
use crate::kernels::simd::lane_sum_f64;

/// `L1L2(l1, l2)`; `L1` and `L2` are the cases with one factor 0.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct L1L2 {
    pub l1: f32,
    pub l2: f32,
}

/// Stack block of element terms (summed with f64 lanes).
const BLK: usize = 256;

impl L1L2 {
    /// Factors must be finite and not negative (Keras accepts a negative one, which rewards
    /// large weights).
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [("l1", self.l1), ("l2", self.l2)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::Value(format!(
                    "Regularization factor `{name}` must be a finite number >= 0. Received: {name}={v}"
                )));
            }
        }
        Ok(())
    }

    /// The penalty of `w`.
    pub fn penalty(&self, level: Level, w: &[f32]) -> f64 {
        penalty(level, w, self.l1, self.l2)
    }

    /// Adds the penalty's gradient to `g` (the gradient of `w`) and returns the penalty.
    pub fn apply(&self, level: Level, w: &[f32], g: &mut [f32]) -> f64 {
        add_gradient(level, w, g, self.l1, self.l2);
        self.penalty(level, w)
    }
}

#[inline(always)]
fn penalty_body(w: &[f32], l1: f32, l2: f32) -> f64 {
    let (mut abs, mut sq) = (0.0f64, 0.0f64);
    let mut buf = [0.0f32; BLK];
    for chunk in w.chunks(BLK) {
        let out = &mut buf[..chunk.len()];
        if l1 != 0.0 {
            for (o, &v) in out.iter_mut().zip(chunk) {
                *o = v.abs();
            }
            abs += lane_sum_f64(out);
        }
        if l2 != 0.0 {
            for (o, &v) in out.iter_mut().zip(chunk) {
                *o = v * v;
            }
            sq += lane_sum_f64(out);
        }
    }
    l1 as f64 * abs + l2 as f64 * sq
}

#[inline(always)]
fn add_gradient_body(w: &[f32], g: &mut [f32], l1: f32, l2: f32) {
    assert_eq!(w.len(), g.len(), "w/g length");
    let two_l2 = 2.0 * l2;
    for (gv, &v) in g.iter_mut().zip(w) {
        // d|w|/dw is 1 at w = ±0, as JAX differentiates |w| (a zero-initialized bias
        // under L1 moves at the first step).
        let sign = if v >= 0.0 { 1.0 } else { -1.0 };
        *gv += l1 * sign + two_l2 * v;
    }
}

multiversion! {
    /// `l1·Σ|w| + l2·Σw²`, the sums in f64.
    fn penalty(w: &[f32], l1: f32, l2: f32) -> f64 => penalty_body;
}

multiversion! {
    /// `g += l1·sign(w) + 2·l2·w`.
    fn add_gradient(w: &[f32], g: &mut [f32], l1: f32, l2: f32) => add_gradient_body;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testutil::*;

    #[test]
    fn penalty_and_gradient_match_float64_and_finite_differences() {
        let mut rng = Rng::new(3);
        for &(l1, l2) in &[(0.01f32, 0.0f32), (0.0, 0.02), (0.003, 0.5)] {
            let reg = L1L2 { l1, l2 };
            for &n in &COLS {
                let w = rng.vec_away(n, 0.05, 2.0);
                let base = rng.vec(n, -1.0, 1.0);
                let f = |w: &[f64]| -> f64 {
                    w.iter()
                        .map(|&v| l1 as f64 * v.abs() + l2 as f64 * v * v)
                        .sum()
                };
                let wd = to_f64(&w);
                let fd: Vec<f64> = (0..n)
                    .map(|i| base[i] as f64 + central_diff(&f, &wd, i, 1e-6))
                    .collect();
                let mut first = None;
                for level in levels() {
                    let mut g = base.clone();
                    let p = reg.apply(level, &w, &mut g);
                    let ctx = format!("{reg:?} n={n} {level:?}");
                    assert_close1(p, f(&wd), 1e-6, 1e-12, &ctx);
                    assert_close(&g, &fd, 1e-5, 1e-6, &ctx);
                    assert_eq!(p, reg.penalty(level, &w));
                    let bits: Vec<u32> = g.iter().map(|v| v.to_bits()).collect();
                    assert_eq!(*first.get_or_insert(bits.clone()), bits, "{ctx}: levels");
                }
            }
        }
    }

    #[test]
    fn zero_weights_get_jaxs_l1_slope_and_bad_factors_are_refused() {
        let reg = L1L2 { l1: 0.5, l2: 0.0 };
        let mut g = [1.0f32; 4];
        reg.apply(Level::Scalar, &[0.0, -0.0, 2.0, -3.0], &mut g);
        assert_eq!(g, [1.5, 1.5, 1.5, 0.5]);
        for (l1, l2) in [(-0.1, 0.0), (0.0, f32::NAN), (f32::INFINITY, 0.0)] {
            let err = L1L2 { l1, l2 }.validate().unwrap_err().to_string();
            assert!(err.contains("Regularization factor"), "{err}");
        }
    }
}
