//! Adagrad (Keras 3 `optimizers.Adagrad`). Per element: `acc ← acc + g²`,
//! `w ← w − lr·g/√(acc + ε)`; the accumulator starts at `initial_accumulator_value`.
//! A zero gradient changes nothing (`acc + 0`, `w − 0`), so the sparse-input path may skip
//! kernel rows no input touched.

use super::UpdateRule;
use super::{check_positive, elementwise, ClipElem, Settings, Step};
use crate::error::{Error, Result};

/// Adagrad's settings (Keras defaults: initial accumulator 0.1, ε 1e-7).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adagrad {
    pub initial_accumulator_value: f64,
    pub epsilon: f64,
}

impl Default for Adagrad {
    fn default() -> Self {
        Adagrad {
            initial_accumulator_value: 0.1,
            epsilon: 1e-7,
        }
    }
}

impl UpdateRule for Adagrad {
    fn from_settings(s: &dyn Settings) -> Result<Self> {
        Ok(Adagrad {
            initial_accumulator_value: s.f64("initial_accumulator_value")?,
            epsilon: s.f64("epsilon")?,
        })
    }

    fn validate(&self) -> Result<()> {
        let v = self.initial_accumulator_value;
        if !(v.is_finite() && v >= 0.0) {
            return Err(Error::Value(format!(
                "`initial_accumulator_value` must be a finite float >= 0. Received: initial_accumulator_value={v}"
            )));
        }
        check_positive("epsilon", self.epsilon as f32)
    }

    fn slots(&self) -> &'static [&'static str] {
        &["accumulator"]
    }

    fn slot_init(&self, _k: usize) -> f32 {
        self.initial_accumulator_value as f32
    }

    fn zero_grad_is_noop(&self) -> bool {
        true
    }

    update_by!(Adagrad, body);
}

#[inline(always)]
fn body(
    w: &mut [f32],
    g: &[f32],
    slots: &mut [&mut [f32]],
    clip: ClipElem,
    step: &Step,
    rule: &Adagrad,
    check: bool,
) -> bool {
    let (lr, eps) = (step.lr, rule.epsilon as f32);
    elementwise::<1, _>(w, g, slots, clip, step, check, move |w, g, [acc]| {
        *acc += g * g;
        w - lr * g / (*acc + eps).sqrt()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::Level;
    use crate::optim::testing::check_rule;

    #[test]
    fn matches_f64_reference() {
        for initial_accumulator_value in [0.1, 0.0] {
            let rule = Adagrad {
                initial_accumulator_value,
                ..Adagrad::default()
            };
            let eps = rule.epsilon;
            check_rule(
                rule,
                &move |w, g, s, step| {
                    s[0] += g * g;
                    w - step.lr as f64 * g / (s[0] + eps).sqrt()
                },
                1e-5,
            );
        }
    }

    #[test]
    fn zero_gradient_changes_nothing() {
        let rule = Adagrad::default();
        let step = Step {
            lr: 0.5,
            iteration: 3,
            weight_decay: None,
            state: 0.0,
        };
        let w0 = [0.25f32, -3.0, 0.0, -0.0];
        let (mut w, mut acc) = (w0, [0.1f32, 2.0, 0.0, 7.0]);
        let acc0 = acc;
        rule.update(
            Level::Scalar,
            &mut w,
            &[0.0; 4],
            &mut [&mut acc],
            ClipElem::None,
            &step,
            false,
        );
        let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&w), bits(&w0));
        assert_eq!(bits(&acc), bits(&acc0));
    }
}
