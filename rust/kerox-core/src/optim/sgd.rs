//! SGD (Keras 3 `optimizers.SGD`, spec §4.3): plain, with momentum, or Nesterov.
//!
//! Per element, after the base's clip and decoupled weight decay (`w'`, `g'`):
//! momentum == 0: `w ← w' − lr·g'`; else `m ← μ·m − lr·g'` (computed as `−g'·lr + m·μ`) and
//! `w ← w' + m`; Nesterov: `w ← w' + (−g'·lr + m_new·μ)`. One slot (`momentum`) only when
//! momentum ≠ 0, as Keras builds it.

use super::{elementwise, ClipElem, Settings, Step, UpdateRule};
use crate::dispatch::Level;
use crate::error::{Error, Result};

/// SGD's settings (Keras defaults: momentum 0, nesterov false).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd {
    pub momentum: f32,
    pub nesterov: bool,
}

impl Default for Sgd {
    fn default() -> Self {
        Sgd {
            momentum: 0.0,
            nesterov: false,
        }
    }
}

impl UpdateRule for Sgd {
    fn from_settings(s: &dyn Settings) -> Result<Self> {
        Ok(Sgd {
            momentum: s.f64("momentum")? as f32,
            nesterov: s.flag("nesterov")?,
        })
    }

    fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.momentum) {
            return Err(Error::Value(
                "`momentum` must be a float between [0, 1].".into(),
            ));
        }
        Ok(())
    }

    fn slots(&self) -> &'static [&'static str] {
        if self.momentum != 0.0 {
            &["momentum"]
        } else {
            &[]
        }
    }

    fn zero_grad_is_noop(&self) -> bool {
        self.momentum == 0.0
    }

    fn update(
        &self,
        level: Level,
        w: &mut [f32],
        g: &[f32],
        slots: &mut [&mut [f32]],
        clip: ClipElem,
        step: &Step,
        check: bool,
    ) -> bool {
        let s = SgdStep {
            lr: step.lr,
            momentum: self.momentum,
            nesterov: self.nesterov,
            weight_decay: step.weight_decay,
        };
        sgd_rule(level, w, g, slots, clip, &s, check)
    }
}

/// Hyper-parameters of one SGD step (also what the sparse-input kernels fuse).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdStep {
    pub lr: f32,
    pub momentum: f32,
    pub nesterov: bool,
    pub weight_decay: Option<f32>,
}

#[inline(always)]
fn body(
    w: &mut [f32],
    g: &[f32],
    slots: &mut [&mut [f32]],
    clip: ClipElem,
    step: &SgdStep,
    check: bool,
) -> bool {
    assert_eq!(
        slots.len(),
        usize::from(step.momentum != 0.0),
        "sgd_update: the momentum slot must be given iff momentum != 0"
    );
    let (lr, mu) = (step.lr, step.momentum);
    let s = Step {
        lr,
        iteration: 0,
        weight_decay: step.weight_decay,
        state: 0.0,
    };
    if step.momentum == 0.0 {
        elementwise::<0, _>(w, g, slots, clip, &s, check, move |w, g, _| w - g * lr)
    } else if step.nesterov {
        elementwise::<1, _>(w, g, slots, clip, &s, check, move |w, g, [m]| {
            let mn = -g * lr + *m * mu;
            *m = mn;
            w + (-g * lr + mn * mu)
        })
    } else {
        elementwise::<1, _>(w, g, slots, clip, &s, check, move |w, g, [m]| {
            let mn = -g * lr + *m * mu;
            *m = mn;
            w + mn
        })
    }
}

multiversion! {
    /// One SGD step on `w` (and its momentum slot, given iff momentum != 0); with `check`,
    /// whether every updated weight is finite.
    fn sgd_rule(
        w: &mut [f32],
        g: &[f32],
        slots: &mut [&mut [f32]],
        clip: ClipElem,
        step: &SgdStep,
        check: bool
    ) -> bool => body;
}

/// g' = clip(g); if weight_decay: w ← w − w·wd·lr; then momentum == 0: w ← w − lr·g';
/// else m ← μ·m − lr·g', w ← w + m; nesterov: w ← w + (−g'·lr + m_new·μ). `m` is Some iff
/// momentum != 0 (asserted).
pub fn sgd_update(
    level: Level,
    w: &mut [f32],
    g: &[f32],
    m: Option<&mut [f32]>,
    clip: ClipElem,
    step: &SgdStep,
) {
    match m {
        Some(m) => sgd_rule(level, w, g, &mut [m], clip, step, false),
        None => sgd_rule(level, w, g, &mut [], clip, step, false),
    };
}

/// [`sgd_update`], then whether every updated weight is finite (checked while each chunk
/// of `w` is still in cache).
#[cfg(test)]
fn sgd_update_finite(
    level: Level,
    w: &mut [f32],
    g: &[f32],
    m: Option<&mut [f32]>,
    clip: ClipElem,
    step: &SgdStep,
) -> bool {
    match m {
        Some(m) => sgd_rule(level, w, g, &mut [m], clip, step, true),
        None => sgd_rule(level, w, g, &mut [], clip, step, true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::Level;
    use crate::kernels::reduce::sum_squares;
    use crate::kernels::testutil::*;
    use crate::optim::ClipElem;

    /// Clip scale for clipnorm = c, as the caller computes it: c / max(‖g‖, c).
    fn clipnorm_scale(level: Level, g: &[f32], c: f32) -> f32 {
        let norm = sum_squares(level, g).sqrt() as f32;
        c / norm.max(c)
    }

    #[test]
    fn keras_clipnorm_momentum_weight_decay_example() {
        // SGD(lr=0.1, momentum=0.9, weight_decay=0.01, clipnorm=1), w=[3,4], g=[30,40]
        for level in levels() {
            let step = SgdStep {
                lr: 0.1,
                momentum: 0.9,
                nesterov: false,
                weight_decay: Some(0.01),
            };
            let mut w = [3.0f32, 4.0];
            let mut m = [0.0f32; 2];
            let g = [30.0f32, 40.0];
            let want = [[2.937, 3.916], [2.82006, 3.76008]];
            for want in want {
                let s = clipnorm_scale(level, &g, 1.0);
                sgd_update(level, &mut w, &g, Some(&mut m), ClipElem::Scale(s), &step);
                assert!(
                    (w[0] - want[0]).abs() < 2e-5 && (w[1] - want[1]).abs() < 2e-5,
                    "{level:?}: {w:?}"
                );
            }
        }
    }

    #[test]
    fn sgd_update_finite_is_sgd_update_plus_the_check() {
        let mut rng = Rng::new(77);
        for level in levels() {
            for n in [0usize, 1, 255, 256, 257, 1000] {
                for momentum in [0.0f32, 0.9] {
                    let step = SgdStep {
                        lr: 0.1,
                        momentum,
                        nesterov: false,
                        weight_decay: Some(0.01),
                    };
                    let w0 = rng.vec(n, -1.0, 1.0);
                    let g = rng.vec(n, -1.0, 1.0);
                    let m0 = rng.vec(n, -1.0, 1.0);
                    let (mut w1, mut m1) = (w0.clone(), m0.clone());
                    let (mut w2, mut m2) = (w0.clone(), m0.clone());
                    fn slot(m: &mut [f32], on: bool) -> Option<&mut [f32]> {
                        on.then_some(m)
                    }
                    let on = momentum != 0.0;
                    sgd_update(
                        level,
                        &mut w1,
                        &g,
                        slot(&mut m1, on),
                        ClipElem::Value(0.5),
                        &step,
                    );
                    let ok = sgd_update_finite(
                        level,
                        &mut w2,
                        &g,
                        slot(&mut m2, on),
                        ClipElem::Value(0.5),
                        &step,
                    );
                    assert!(ok);
                    assert!(w1.iter().zip(&w2).all(|(a, b)| a.to_bits() == b.to_bits()));
                    assert!(m1.iter().zip(&m2).all(|(a, b)| a.to_bits() == b.to_bits()));
                    if n > 0 {
                        let mut w3 = w0.clone();
                        w3[n - 1] = f32::INFINITY;
                        let ok = sgd_update_finite(
                            level,
                            &mut w3,
                            &g,
                            slot(&mut m0.clone(), on),
                            ClipElem::None,
                            &step,
                        );
                        assert!(!ok, "{level:?} n={n}");
                    }
                }
            }
        }
    }

    #[test]
    fn keras_nesterov_example() {
        for level in levels() {
            let step = SgdStep {
                lr: 0.1,
                momentum: 0.9,
                nesterov: true,
                weight_decay: None,
            };
            let mut w = [1.0f32];
            let mut m = [0.0f32];
            for _ in 0..2 {
                sgd_update(level, &mut w, &[1.0], Some(&mut m), ClipElem::None, &step);
            }
            assert!((w[0] - 0.539).abs() < 1e-6, "{level:?}: {w:?}");
        }
    }

    /// f64 reference of one step.
    fn step64(w: &mut [f64], g: &[f32], m: Option<&mut [f64]>, clip: ClipElem, s: &SgdStep) {
        let (lr, mu) = (s.lr as f64, s.momentum as f64);
        let gc: Vec<f64> = g
            .iter()
            .map(|&v| match clip {
                ClipElem::None => v as f64,
                ClipElem::Scale(k) => v as f64 * k as f64,
                ClipElem::Value(c) => (v as f64).clamp(-c as f64, c as f64),
            })
            .collect();
        if let Some(wd) = s.weight_decay {
            w.iter_mut().for_each(|x| *x -= *x * wd as f64 * lr);
        }
        match m {
            None => w.iter_mut().zip(&gc).for_each(|(x, g)| *x -= lr * g),
            Some(m) => {
                for ((x, mv), g) in w.iter_mut().zip(m.iter_mut()).zip(&gc) {
                    *mv = mu * *mv - lr * g;
                    *x += if s.nesterov { mu * *mv - lr * g } else { *mv };
                }
            }
        }
    }

    #[test]
    fn matches_f64_reference_over_several_steps() {
        let mut rng = Rng::new(50);
        for level in levels() {
            for &rows in &ROWS {
                for &cols in &COLS {
                    let n = rows * cols;
                    for (momentum, nesterov) in [(0.0f32, false), (0.9, false), (0.8, true)] {
                        for wd in [None, Some(0.01f32)] {
                            for clip_kind in 0..3 {
                                let step = SgdStep {
                                    lr: 0.05,
                                    momentum,
                                    nesterov,
                                    weight_decay: wd,
                                };
                                let mut w = rng.vec(n, -1.0, 1.0);
                                let mut w64 = to_f64(&w);
                                let mut m = vec![0.0f32; n];
                                let mut m64 = vec![0.0f64; n];
                                for _ in 0..3 {
                                    let g = rng.vec(n, -2.0, 2.0);
                                    let clip = match clip_kind {
                                        0 => ClipElem::None,
                                        1 => ClipElem::Scale(clipnorm_scale(level, &g, 1.0)),
                                        _ => ClipElem::Value(0.5),
                                    };
                                    let ms = (momentum != 0.0).then_some(&mut m[..]);
                                    sgd_update(level, &mut w, &g, ms, clip, &step);
                                    let ms = (momentum != 0.0).then_some(&mut m64[..]);
                                    step64(&mut w64, &g, ms, clip, &step);
                                }
                                let ctx = format!("{level:?} n={n} {step:?} clip={clip_kind}");
                                assert_close(&w, &w64, 1e-6, 1e-6, &ctx);
                                assert_close(&m, &m64, 1e-5, 1e-6, &ctx);
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn clip_scale_bounds_step_and_keeps_direction() {
        let mut rng = Rng::new(51);
        for level in levels() {
            for &n in &COLS {
                let g = rng.vec(n * 3, -5.0, 5.0);
                let (c, lr) = (0.5f32, 0.1f32);
                let s = clipnorm_scale(level, &g, c);
                let w0 = rng.vec(g.len(), -1.0, 1.0);
                let mut w = w0.clone();
                let step = SgdStep {
                    lr,
                    momentum: 0.0,
                    nesterov: false,
                    weight_decay: None,
                };
                sgd_update(level, &mut w, &g, None, ClipElem::Scale(s), &step);
                let d: Vec<f64> = w
                    .iter()
                    .zip(&w0)
                    .map(|(a, b)| *a as f64 - *b as f64)
                    .collect();
                let dn = d.iter().map(|v| v * v).sum::<f64>().sqrt();
                let gn = g.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
                assert!(
                    dn <= (lr * c) as f64 * (1.0 + 1e-5),
                    "{level:?} n={n}: |step| {dn}"
                );
                let cos = -d.iter().zip(&g).map(|(a, &b)| a * b as f64).sum::<f64>() / (dn * gn);
                assert!(cos > 1.0 - 1e-6, "{level:?} n={n}: cos {cos}");
            }
        }
    }

    #[test]
    fn clip_value_bounds_every_element() {
        let mut rng = Rng::new(52);
        for level in levels() {
            let g = rng.vec(1000, -10.0, 10.0);
            let mut w = vec![0.0f32; g.len()];
            let step = SgdStep {
                lr: 1.0,
                momentum: 0.0,
                nesterov: false,
                weight_decay: None,
            };
            sgd_update(level, &mut w, &g, None, ClipElem::Value(0.25), &step);
            for (wv, gv) in w.iter().zip(&g) {
                assert!(wv.abs() <= 0.25, "{level:?}");
                if gv.abs() < 0.25 {
                    assert_eq!(*wv, -gv);
                }
            }
            // NaN gradients pass through the clamp (as jnp.clip does)
            let mut w = [0.0f32];
            sgd_update(
                level,
                &mut w,
                &[f32::NAN],
                None,
                ClipElem::Value(1.0),
                &step,
            );
            assert!(w[0].is_nan());
        }
    }

    #[test]
    fn levels_agree_with_scalar() {
        let mut rng = Rng::new(53);
        let n = 1037;
        let g = rng.vec(n, -1.0, 1.0);
        let w0 = rng.vec(n, -1.0, 1.0);
        let step = SgdStep {
            lr: 0.01,
            momentum: 0.9,
            nesterov: true,
            weight_decay: Some(0.004),
        };
        let run = |level: Level| {
            let (mut w, mut m) = (w0.clone(), vec![0.1f32; n]);
            sgd_update(level, &mut w, &g, Some(&mut m), ClipElem::Value(0.3), &step);
            [w, m].concat()
        };
        let base = run(Level::Scalar);
        for level in levels() {
            assert_eq!(run(level), run(level));
            assert_close(
                &run(level),
                &to_f64(&base),
                1e-6,
                1e-7,
                &format!("{level:?}"),
            );
        }
    }

    #[test]
    #[should_panic(expected = "momentum slot")]
    fn momentum_slot_is_required() {
        let step = SgdStep {
            lr: 0.1,
            momentum: 0.9,
            nesterov: false,
            weight_decay: None,
        };
        sgd_update(
            Level::Scalar,
            &mut [1.0],
            &[1.0],
            None,
            ClipElem::None,
            &step,
        );
    }
}
