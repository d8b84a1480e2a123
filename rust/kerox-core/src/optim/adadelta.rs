//! Adadelta (Keras 3 `optimizers.Adadelta`). Per element, with `rms(x) = √(x + ε)`:
//! `E[g²] ← ρE[g²] + (1 − ρ)g²`, `Δ = −rms(E[Δ²])·g/rms(E[g²])` (the new `E[g²]`, the old
//! `E[Δ²]`), `E[Δ²] ← ρE[Δ²] + (1 − ρ)Δ²`, `w ← w + lr·Δ`.

use super::UpdateRule;
use super::{check_positive, check_unit, elementwise, ClipElem, Settings, Step};
use crate::error::Result;

/// Adadelta's settings (Keras defaults: ρ 0.95, ε 1e-7).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adadelta {
    pub rho: f64,
    pub epsilon: f64,
}

impl Default for Adadelta {
    fn default() -> Self {
        Adadelta {
            rho: 0.95,
            epsilon: 1e-7,
        }
    }
}

impl UpdateRule for Adadelta {
    fn from_settings(s: &dyn Settings) -> Result<Self> {
        Ok(Adadelta {
            rho: s.f64("rho")?,
            epsilon: s.f64("epsilon")?,
        })
    }

    fn validate(&self) -> Result<()> {
        check_unit("rho", self.rho as f32)?;
        check_positive("epsilon", self.epsilon as f32)
    }

    fn slots(&self) -> &'static [&'static str] {
        &["accumulated_grad", "accumulated_delta_var"]
    }

    update_by!(Adadelta, body);
}

#[inline(always)]
fn body(
    w: &mut [f32],
    g: &[f32],
    slots: &mut [&mut [f32]],
    clip: ClipElem,
    step: &Step,
    rule: &Adadelta,
    check: bool,
) -> bool {
    let lr = step.lr;
    let (rho, c, eps) = (
        rule.rho as f32,
        (1.0 - rule.rho) as f32,
        rule.epsilon as f32,
    );
    elementwise::<2, _>(w, g, slots, clip, step, check, move |w, g, [eg, ed]| {
        *eg = rho * *eg + c * (g * g);
        let delta = -((*ed + eps).sqrt() * g / (*eg + eps).sqrt());
        *ed = rho * *ed + c * (delta * delta);
        w + lr * delta
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::testing::check_rule;

    #[test]
    fn matches_f64_reference() {
        for rule in [
            Adadelta::default(),
            Adadelta {
                rho: 0.5,
                epsilon: 1e-3,
            },
        ] {
            let (rho, eps) = (rule.rho, rule.epsilon);
            check_rule(
                rule,
                &move |w, g, s, step| {
                    s[0] = rho * s[0] + (1.0 - rho) * g * g;
                    let delta = -((s[1] + eps).sqrt() * g / (s[0] + eps).sqrt());
                    s[1] = rho * s[1] + (1.0 - rho) * delta * delta;
                    w + step.lr as f64 * delta
                },
                2e-5,
            );
        }
    }
}
