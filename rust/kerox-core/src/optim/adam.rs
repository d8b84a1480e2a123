//! Adam (Keras 3 `optimizers.Adam`, spec §4.5; AdamW is Adam with decoupled weight decay,
//! which the base applies). With `t = iterations + 1`, per element:
//! `α = lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ)`, `m ← m + (g − m)(1 − β₁)`, `v ← v + (g² − v)(1 − β₂)`,
//! amsgrad: `v̂ ← max(v̂, v)` used for `v`; `w ← w − m·α/(√v + ε)` (the bias correction is
//! in α, so ε is added to the uncorrected √v: Keras's "epsilon hat"). `1 − β` is Python's
//! float rounded to f32, as Keras multiplies it.

use super::UpdateRule;
use super::{check_positive, check_unit, elementwise, powf_step, ClipElem, Settings, Step};
use crate::error::Result;

/// Adam's settings (Keras defaults: β₁ 0.9, β₂ 0.999, ε 1e-7, no amsgrad).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adam {
    pub beta_1: f64,
    pub beta_2: f64,
    pub epsilon: f64,
    pub amsgrad: bool,
}

impl Default for Adam {
    fn default() -> Self {
        Adam {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            amsgrad: false,
        }
    }
}

impl UpdateRule for Adam {
    fn from_settings(s: &dyn Settings) -> Result<Self> {
        Ok(Adam {
            beta_1: s.f64("beta_1")?,
            beta_2: s.f64("beta_2")?,
            epsilon: s.f64("epsilon")?,
            amsgrad: s.flag("amsgrad")?,
        })
    }

    fn validate(&self) -> Result<()> {
        check_unit("beta_1", self.beta_1 as f32)?;
        check_unit("beta_2", self.beta_2 as f32)?;
        check_positive("epsilon", self.epsilon as f32)
    }

    fn slots(&self) -> &'static [&'static str] {
        if self.amsgrad {
            &["momentum", "velocity", "velocity_hat"]
        } else {
            &["momentum", "velocity"]
        }
    }

    update_by!(Adam, body);
}

#[inline(always)]
fn body(
    w: &mut [f32],
    g: &[f32],
    slots: &mut [&mut [f32]],
    clip: ClipElem,
    step: &Step,
    rule: &Adam,
    check: bool,
) -> bool {
    let t = step.iteration + 1;
    let b1p = powf_step(rule.beta_1 as f32, t);
    let b2p = powf_step(rule.beta_2 as f32, t);
    let alpha = step.lr * (1.0 - b2p).sqrt() / (1.0 - b1p);
    let (c1, c2) = ((1.0 - rule.beta_1) as f32, (1.0 - rule.beta_2) as f32);
    let eps = rule.epsilon as f32;
    if rule.amsgrad {
        elementwise::<3, _>(w, g, slots, clip, step, check, move |w, g, [m, v, vh]| {
            *m += (g - *m) * c1;
            *v += (g * g - *v) * c2;
            *vh = vh.max(*v);
            w - *m * alpha / (vh.sqrt() + eps)
        })
    } else {
        elementwise::<2, _>(w, g, slots, clip, step, check, move |w, g, [m, v]| {
            *m += (g - *m) * c1;
            *v += (g * g - *v) * c2;
            w - *m * alpha / (v.sqrt() + eps)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::Level;
    use crate::optim::testing::{check_rule, f32_of};

    fn reference(rule: Adam) -> impl Fn(f64, f64, &mut [f64], &Step) -> f64 {
        move |w, g, s, step| {
            let t = (step.iteration + 1) as i32;
            // Keras raises the betas cast to f32 to the power t; `1 − β` from Python's float.
            let (b1, b2) = (f32_of(rule.beta_1), f32_of(rule.beta_2));
            let alpha = step.lr as f64 * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
            s[0] += (g - s[0]) * (1.0 - rule.beta_1);
            s[1] += (g * g - s[1]) * (1.0 - rule.beta_2);
            let v = if rule.amsgrad {
                s[2] = s[2].max(s[1]);
                s[2]
            } else {
                s[1]
            };
            w - s[0] * alpha / (v.sqrt() + rule.epsilon)
        }
    }

    #[test]
    fn matches_f64_reference() {
        for amsgrad in [false, true] {
            let rule = Adam {
                amsgrad,
                ..Adam::default()
            };
            check_rule(rule, &reference(rule), 1e-5);
        }
        let rule = Adam {
            beta_1: 0.5,
            beta_2: 0.75,
            epsilon: 1e-3,
            amsgrad: true,
        };
        check_rule(rule, &reference(rule), 1e-5);
    }

    #[test]
    fn first_step_moves_each_weight_by_about_lr() {
        // With m = v = 0, step 1 gives m = (1 − β₁)g, v = (1 − β₂)g², α = lr·√(1 − β₂)/(1 − β₁):
        // the step is lr·g/(|g| + ε/√(1 − β₂)) ≈ lr·sign(g), up to the f32 rounding of
        // 1 − β₂ (0.999 is 0.99900001 in f32: 5e-5 relative in α).
        let rule = Adam::default();
        let step = Step {
            lr: 0.1,
            iteration: 0,
            weight_decay: None,
            state: 0.0,
        };
        let mut w = [1.0f32, 1.0];
        let (mut m, mut v) = ([0.0f32; 2], [0.0f32; 2]);
        rule.update(
            Level::Scalar,
            &mut w,
            &[3.0, -0.5],
            &mut [&mut m, &mut v],
            ClipElem::None,
            &step,
            false,
        );
        assert!(
            (w[0] - 0.9).abs() < 1e-5 && (w[1] - 1.1).abs() < 1e-5,
            "{w:?}"
        );
    }

    #[test]
    fn refuses_bad_settings() {
        for bad in [
            Adam {
                beta_1: 1.0,
                ..Adam::default()
            },
            Adam {
                beta_2: -0.1,
                ..Adam::default()
            },
            Adam {
                beta_1: f64::NAN,
                ..Adam::default()
            },
            Adam {
                epsilon: 0.0,
                ..Adam::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        assert!(Adam::default().validate().is_ok());
    }
}
