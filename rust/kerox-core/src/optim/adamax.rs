//! Adamax (Keras 3 `optimizers.Adamax`). With `t = iterations + 1`, per element:
//! `m ← m + (g − m)(1 − β₁)`, `u ← max(β₂u, |g|)`, `w ← w − lr·m/((1 − β₁ᵗ)(u + ε))`.

use super::UpdateRule;
use super::{check_positive, check_unit, elementwise, powf_step, ClipElem, Settings, Step};
use crate::error::Result;

/// Adamax's settings (Keras defaults: β₁ 0.9, β₂ 0.999, ε 1e-7).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adamax {
    pub beta_1: f64,
    pub beta_2: f64,
    pub epsilon: f64,
}

impl Default for Adamax {
    fn default() -> Self {
        Adamax {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
        }
    }
}

impl UpdateRule for Adamax {
    fn from_settings(s: &dyn Settings) -> Result<Self> {
        Ok(Adamax {
            beta_1: s.f64("beta_1")?,
            beta_2: s.f64("beta_2")?,
            epsilon: s.f64("epsilon")?,
        })
    }

    fn validate(&self) -> Result<()> {
        check_unit("beta_1", self.beta_1 as f32)?;
        check_unit("beta_2", self.beta_2 as f32)?;
        check_positive("epsilon", self.epsilon as f32)
    }

    fn slots(&self) -> &'static [&'static str] {
        &["momentum", "norm"]
    }

    update_by!(Adamax, body);
}

#[inline(always)]
fn body(
    w: &mut [f32],
    g: &[f32],
    slots: &mut [&mut [f32]],
    clip: ClipElem,
    step: &Step,
    rule: &Adamax,
    check: bool,
) -> bool {
    let lr = step.lr;
    let corr = 1.0 - powf_step(rule.beta_1 as f32, step.iteration + 1);
    let (c1, b2, eps) = (
        (1.0 - rule.beta_1) as f32,
        rule.beta_2 as f32,
        rule.epsilon as f32,
    );
    elementwise::<2, _>(w, g, slots, clip, step, check, move |w, g, [m, u]| {
        *m += (g - *m) * c1;
        *u = (b2 * *u).max(g.abs());
        w - lr * *m / (corr * (*u + eps))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::testing::{check_rule, f32_of};

    #[test]
    fn matches_f64_reference() {
        for rule in [
            Adamax::default(),
            Adamax {
                beta_1: 0.5,
                beta_2: 0.8,
                epsilon: 1e-3,
            },
        ] {
            check_rule(
                rule,
                &move |w, g, s, step| {
                    let corr = 1.0 - f32_of(rule.beta_1).powi(step.iteration as i32 + 1);
                    s[0] += (g - s[0]) * (1.0 - rule.beta_1);
                    s[1] = (rule.beta_2 * s[1]).max(g.abs());
                    w - step.lr as f64 * s[0] / (corr * (s[1] + rule.epsilon))
                },
                1e-5,
            );
        }
    }
}
