//! Nadam (Keras 3 `optimizers.Nadam`): Adam with Nesterov momentum and Dozat's momentum
//! schedule `μ_t = β₁(1 − ½·0.96ᵗ)`. The optimizer-wide `u_product = Π μ_t` is this rule's
//! state, advanced once per step before any variable is updated (Keras's
//! `_backend_update_step`). With `t = iterations + 1`, per element:
//! `m ← m + (g − m)(1 − β₁)`, `v ← v + (g² − v)(1 − β₂)`,
//! `m̂ = μ_{t+1}·m/(1 − u_product·μ_{t+1}) + (1 − μ_t)·g/(1 − u_product)`,
//! `v̂ = v/(1 − β₂ᵗ)`, `w ← w − m̂·lr/(√v̂ + ε)`. Unlike Adam, `1 − β` is taken in f32.

use super::UpdateRule;
use super::{check_positive, check_unit, elementwise, powf_step, ClipElem, Settings, Step};
use crate::error::Result;

/// Nadam's settings (Keras defaults: β₁ 0.9, β₂ 0.999, ε 1e-7).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Nadam {
    pub beta_1: f64,
    pub beta_2: f64,
    pub epsilon: f64,
}

impl Default for Nadam {
    fn default() -> Self {
        Nadam {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
        }
    }
}

/// Dozat's momentum at step `t`: `β₁(1 − ½·0.96ᵗ)`, in f32 as Keras.
fn mu(beta_1: f32, t: u64) -> f32 {
    beta_1 * (1.0 - 0.5 * powf_step(0.96, t))
}

impl UpdateRule for Nadam {
    fn from_settings(s: &dyn Settings) -> Result<Self> {
        Ok(Nadam {
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
        &["momentum", "velocity"]
    }

    fn state_init(&self) -> Option<f32> {
        Some(1.0)
    }

    fn begin_step(&self, state: f32, iteration: u64) -> f32 {
        // Keras: u_product · β₁ · (1 − 0.5·0.96^(t)), left to right, β₁ as f32.
        state * self.beta_1 as f32 * (1.0 - 0.5 * powf_step(0.96, iteration + 1))
    }

    update_by!(Nadam, body);
}

#[inline(always)]
fn body(
    w: &mut [f32],
    g: &[f32],
    slots: &mut [&mut [f32]],
    clip: ClipElem,
    step: &Step,
    rule: &Nadam,
    check: bool,
) -> bool {
    let t = step.iteration + 1;
    let (b1, b2) = (rule.beta_1 as f32, rule.beta_2 as f32);
    let (u_t, u_t1) = (mu(b1, t), mu(b1, t + 1));
    let u_prod = step.state;
    let u_prod1 = u_prod * u_t1;
    let b2p = powf_step(b2, t);
    let (c1, c2) = (1.0 - b1, 1.0 - b2);
    let (lr, eps) = (step.lr, rule.epsilon as f32);
    let (d1, d0, k) = (1.0 - u_prod1, 1.0 - u_prod, 1.0 - u_t);
    let dv = 1.0 - b2p;
    elementwise::<2, _>(w, g, slots, clip, step, check, move |w, g, [m, v]| {
        *m += (g - *m) * c1;
        *v += (g * g - *v) * c2;
        let m_hat = u_t1 * *m / d1 + k * g / d0;
        let v_hat = *v / dv;
        w - m_hat * lr / (v_hat.sqrt() + eps)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::testing::{check_rule, f32_of};

    #[test]
    fn matches_f64_reference() {
        for rule in [
            Nadam::default(),
            Nadam {
                beta_1: 0.5,
                beta_2: 0.8,
                epsilon: 1e-3,
            },
        ] {
            // Keras takes β₁, β₂ and 0.96 as f32 here, and 1 − β in f32.
            let (b1, b2) = (f32_of(rule.beta_1), f32_of(rule.beta_2));
            let mu = move |t: u64| b1 * (1.0 - 0.5 * f32_of(0.96).powi(t as i32));
            check_rule(
                rule,
                &move |w, g, s, step| {
                    let t = step.iteration + 1;
                    // u_product in f64 from scratch: Π_{i ≤ t} μ_i.
                    let u_prod: f64 = (1..=t).map(mu).product();
                    let u_prod1 = u_prod * mu(t + 1);
                    s[0] += (g - s[0]) * f32_of(1.0 - b1);
                    s[1] += (g * g - s[1]) * f32_of(1.0 - b2);
                    let m_hat =
                        mu(t + 1) * s[0] / (1.0 - u_prod1) + (1.0 - mu(t)) * g / (1.0 - u_prod);
                    let v_hat = s[1] / (1.0 - b2.powi(t as i32));
                    w - m_hat * step.lr as f64 / (v_hat.sqrt() + rule.epsilon)
                },
                2e-5,
            );
        }
    }

    #[test]
    fn u_product_follows_the_momentum_schedule() {
        let rule = Nadam::default();
        let mut u = rule.state_init().unwrap();
        let mut want = 1.0f64;
        for it in 0..50u64 {
            u = rule.begin_step(u, it);
            want *= f32_of(0.9) * (1.0 - 0.5 * f32_of(0.96).powi(it as i32 + 1));
            assert!(
                ((u as f64) - want).abs() < 1e-5 * want,
                "step {it}: {u} vs {want}"
            );
        }
    }
}
