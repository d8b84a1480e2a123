//! RMSprop (Keras 3 `optimizers.RMSprop`, spec §4.6). Per element:
//! `v ← ρv + (1 − ρ)g²`; centered: `a ← ρa + (1 − ρ)g`, `den = v − a² + ε`, else
//! `den = v + ε` (ε inside the root); `inc = lr·g/√den`; momentum > 0: `mom ← μ·mom + inc`,
//! `w ← w − mom`; else `w ← w − inc`. Slots in Keras's order: velocity, then momentum (when
//! momentum > 0), then the average gradient (when centered).

use super::UpdateRule;
use super::{check_positive, check_unit, elementwise, ClipElem, Settings, Step};
use crate::error::{Error, Result};

/// RMSprop's settings (Keras defaults: ρ 0.9, momentum 0, ε 1e-7, not centered).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rmsprop {
    pub rho: f64,
    pub momentum: f64,
    pub epsilon: f64,
    pub centered: bool,
}

impl Default for Rmsprop {
    fn default() -> Self {
        Rmsprop {
            rho: 0.9,
            momentum: 0.0,
            epsilon: 1e-7,
            centered: false,
        }
    }
}

impl UpdateRule for Rmsprop {
    fn from_settings(s: &dyn Settings) -> Result<Self> {
        Ok(Rmsprop {
            rho: s.f64("rho")?,
            momentum: s.f64("momentum")?,
            epsilon: s.f64("epsilon")?,
            centered: s.flag("centered")?,
        })
    }

    fn validate(&self) -> Result<()> {
        check_unit("rho", self.rho as f32)?;
        if !(0.0..=1.0).contains(&self.momentum) {
            return Err(Error::Value(format!(
                "`momentum` must be a float in [0, 1]. Received: momentum={}",
                self.momentum
            )));
        }
        check_positive("epsilon", self.epsilon as f32)
    }

    fn slots(&self) -> &'static [&'static str] {
        match (self.momentum > 0.0, self.centered) {
            (false, false) => &["velocity"],
            (true, false) => &["velocity", "momentum"],
            (false, true) => &["velocity", "average_gradient"],
            (true, true) => &["velocity", "momentum", "average_gradient"],
        }
    }

    update_by!(Rmsprop, body);
}

#[inline(always)]
fn body(
    w: &mut [f32],
    g: &[f32],
    slots: &mut [&mut [f32]],
    clip: ClipElem,
    step: &Step,
    rule: &Rmsprop,
    check: bool,
) -> bool {
    let lr = step.lr;
    let (rho, c) = (rule.rho as f32, (1.0 - rule.rho) as f32);
    let (mu, eps) = (rule.momentum as f32, rule.epsilon as f32);
    let velocity = move |v: &mut f32, g: f32| *v = rho * *v + c * (g * g);
    let average = move |a: &mut f32, g: f32| *a = rho * *a + c * g;
    let inc = move |g: f32, den: f32| lr * g / den.sqrt();
    match (rule.momentum > 0.0, rule.centered) {
        (false, false) => elementwise::<1, _>(w, g, slots, clip, step, check, move |w, g, [v]| {
            velocity(v, g);
            w - inc(g, *v + eps)
        }),
        (true, false) => {
            elementwise::<2, _>(w, g, slots, clip, step, check, move |w, g, [v, m]| {
                velocity(v, g);
                *m = mu * *m + inc(g, *v + eps);
                w - *m
            })
        }
        (false, true) => {
            elementwise::<2, _>(w, g, slots, clip, step, check, move |w, g, [v, a]| {
                velocity(v, g);
                average(a, g);
                w - inc(g, *v - *a * *a + eps)
            })
        }
        (true, true) => {
            elementwise::<3, _>(w, g, slots, clip, step, check, move |w, g, [v, m, a]| {
                velocity(v, g);
                average(a, g);
                *m = mu * *m + inc(g, *v - *a * *a + eps);
                w - *m
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::testing::check_rule;

    fn reference(rule: Rmsprop) -> impl Fn(f64, f64, &mut [f64], &Step) -> f64 {
        move |w, g, s, step| {
            let rho = rule.rho;
            s[0] = rho * s[0] + (1.0 - rho) * g * g;
            let mom = rule.momentum > 0.0;
            let den = if rule.centered {
                let a = if mom { 2 } else { 1 };
                s[a] = rho * s[a] + (1.0 - rho) * g;
                s[0] - s[a] * s[a] + rule.epsilon
            } else {
                s[0] + rule.epsilon
            };
            let inc = step.lr as f64 * g / den.sqrt();
            if mom {
                s[1] = rule.momentum * s[1] + inc;
                w - s[1]
            } else {
                w - inc
            }
        }
    }

    #[test]
    fn matches_f64_reference() {
        for momentum in [0.0, 0.9] {
            for centered in [false, true] {
                let rule = Rmsprop {
                    momentum,
                    centered,
                    ..Rmsprop::default()
                };
                check_rule(rule, &reference(rule), 2e-5);
            }
        }
    }

    #[test]
    fn refuses_bad_settings() {
        for bad in [
            Rmsprop {
                rho: 1.0,
                ..Rmsprop::default()
            },
            Rmsprop {
                momentum: 1.5,
                ..Rmsprop::default()
            },
            Rmsprop {
                epsilon: -1e-7,
                ..Rmsprop::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
