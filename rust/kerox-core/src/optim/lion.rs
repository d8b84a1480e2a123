//! Lion (Keras 3 `optimizers.Lion`, Chen et al. 2023). Per element:
//! `w ← w − lr·sign(β₁m + (1 − β₁)g)`, then `m ← β₂m + (1 − β₂)g` (in f32, as Keras).

use super::UpdateRule;
use super::{check_unit, elementwise, ClipElem, Settings, Step};
use crate::error::{Error, Result};

/// Lion's settings (Keras defaults: β₁ 0.9, β₂ 0.99).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lion {
    pub beta_1: f64,
    pub beta_2: f64,
}

impl Default for Lion {
    fn default() -> Self {
        Lion {
            beta_1: 0.9,
            beta_2: 0.99,
        }
    }
}

/// `jnp.sign`: ±1, and 0 (of either sign) and NaN as they are.
#[inline(always)]
fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        x
    }
}

impl UpdateRule for Lion {
    fn from_settings(s: &dyn Settings) -> Result<Self> {
        Ok(Lion {
            beta_1: s.f64("beta_1")?,
            beta_2: s.f64("beta_2")?,
        })
    }

    fn validate(&self) -> Result<()> {
        // Keras: β₁ in (0, 1] (0 degenerates to SignSGD).
        if !(self.beta_1 > 0.0 && self.beta_1 <= 1.0) {
            return Err(Error::Value(format!(
                "Argument `beta_1` must be in the [0, 1] range. Otherwise, the optimizer degenerates to SignSGD. Received: beta_1={}.",
                self.beta_1
            )));
        }
        check_unit("beta_2", self.beta_2 as f32)
    }

    fn slots(&self) -> &'static [&'static str] {
        &["momentum"]
    }

    update_by!(Lion, body);
}

#[inline(always)]
fn body(
    w: &mut [f32],
    g: &[f32],
    slots: &mut [&mut [f32]],
    clip: ClipElem,
    step: &Step,
    rule: &Lion,
    check: bool,
) -> bool {
    let lr = step.lr;
    let (b1, b2) = (rule.beta_1 as f32, rule.beta_2 as f32);
    let (c1, c2) = (1.0 - b1, 1.0 - b2);
    elementwise::<1, _>(w, g, slots, clip, step, check, move |w, g, [m]| {
        let w = w - lr * sign(*m * b1 + g * c1);
        *m = *m * b2 + g * c2;
        w
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::testing::{check_rule, f32_of};

    #[test]
    fn matches_f64_reference() {
        for rule in [
            Lion::default(),
            Lion {
                beta_1: 0.5,
                beta_2: 0.8,
            },
        ] {
            let (b1, b2) = (f32_of(rule.beta_1), f32_of(rule.beta_2));
            check_rule(
                rule,
                &move |w, g, s, step| {
                    let x = s[0] * b1 + g * f32_of(1.0 - b1);
                    let w = w - step.lr as f64 * x.signum();
                    s[0] = s[0] * b2 + g * f32_of(1.0 - b2);
                    w
                },
                1e-5,
            );
        }
    }

    #[test]
    fn refuses_bad_settings() {
        for bad in [
            Lion {
                beta_1: 0.0,
                ..Lion::default()
            },
            Lion {
                beta_1: 1.5,
                ..Lion::default()
            },
            Lion {
                beta_2: 1.0,
                ..Lion::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
