//! `BatchNormalization` over the feature axis (Keras's `layers.BatchNormalization`): batch
//! statistics and the moving averages' update in training, the moving statistics in
//! inference; `trainable == false` (frozen) runs in inference mode even while training and
//! freezes gamma and beta, as Keras 3 does.

use crate::error::{Error, Result};
use crate::kernels;
use crate::settings::Settings;

use super::{add_var, slice, slice_mut, Backward, Ctx, Dims, Forward, Op};
use crate::engine::VarInfo;

pub(super) struct BatchNorm {
    momentum: f32,
    eps: f32,
    /// False = frozen: inference mode even in training (Keras 3).
    trainable: bool,
    gamma: Option<usize>,
    beta: Option<usize>,
    moving_mean: usize,
    moving_var: usize,
    y: Vec<f32>,
    mean: Vec<f32>,
    var: Vec<f32>,
    inv_std: Vec<f32>,
}

/// BatchNormalization's settings: Keras's `momentum`, `epsilon`, `center`, `scale` and the
/// layer's `trainable` (false: frozen, inference mode even while training).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormSpec {
    pub momentum: f32,
    pub epsilon: f32,
    pub center: bool,
    pub scale: bool,
    pub trainable: bool,
}

impl BatchNormSpec {
    /// Reads Keras's `momentum`, `epsilon`, `center`, `scale` and `trainable`.
    pub(in crate::engine) fn from_settings(s: &dyn Settings) -> Result<BatchNormSpec> {
        Ok(BatchNormSpec {
            momentum: s.f64("momentum")? as f32,
            epsilon: s.f64("epsilon")? as f32,
            center: s.flag("center")?,
            scale: s.flag("scale")?,
            trainable: s.flag("trainable")?,
        })
    }
}

impl BatchNorm {
    /// Normalization over `width` features; gamma (`scale`), beta (`center`) and the two
    /// moving statistics are added to `infos`, in Keras's order.
    pub(super) fn new(
        width: usize,
        spec: &BatchNormSpec,
        infos: &mut Vec<VarInfo>,
        offset: &mut usize,
    ) -> Result<BatchNorm> {
        let BatchNormSpec {
            momentum,
            epsilon,
            center,
            scale,
            trainable,
        } = *spec;
        if !momentum.is_finite() || !epsilon.is_finite() || epsilon < 0.0 {
            return Err(Error::Value(format!(
                "BatchNormalization needs a finite momentum and a non-negative epsilon. Received: momentum={momentum}, epsilon={epsilon}"
            )));
        }
        let gamma = scale.then(|| add_var(infos, offset, vec![width], trainable));
        let beta = center.then(|| add_var(infos, offset, vec![width], trainable));
        let moving_mean = add_var(infos, offset, vec![width], false);
        let moving_var = add_var(infos, offset, vec![width], false);
        Ok(BatchNorm {
            momentum,
            eps: epsilon,
            trainable,
            gamma,
            beta,
            moving_mean,
            moving_var,
            y: Vec::new(),
            mean: vec![0.0; width],
            var: vec![0.0; width],
            inv_std: vec![0.0; width],
        })
    }
}

impl Op for BatchNorm {
    fn has_trainable(&self, infos: &[VarInfo]) -> bool {
        let t = |i: usize| infos[i].trainable;
        self.gamma.is_some_and(t) || self.beta.is_some_and(t)
    }

    fn reserve(&mut self, rows: usize, dims: Dims) {
        self.y.resize(rows * dims.output, 0.0);
    }

    fn output(&self, n: usize) -> &[f32] {
        &self.y[..n]
    }

    fn forward(&mut self, ctx: &Ctx<'_>, dims: Dims, io: Forward<'_>) {
        let Forward {
            input, vars, infos, ..
        } = io;
        let rows = ctx.rows;
        let o_d = dims.output;
        let n = rows * o_d;
        let y = &mut self.y[..n];
        if ctx.training && self.trainable {
            {
                let v: &[f32] = vars;
                let gamma = self.gamma.map(|i| slice(v, infos, i));
                let beta = self.beta.map(|i| slice(v, infos, i));
                kernels::bn_forward_train(
                    ctx.level,
                    input,
                    rows,
                    o_d,
                    gamma,
                    beta,
                    self.eps,
                    &mut self.mean,
                    &mut self.var,
                    &mut self.inv_std,
                    y,
                );
            }
            let mm_off = infos[self.moving_mean].offset;
            debug_assert_eq!(infos[self.moving_var].offset, mm_off + o_d);
            let (mm, mv) = vars[mm_off..mm_off + 2 * o_d].split_at_mut(o_d);
            kernels::bn_update_moving(ctx.level, mm, mv, &self.mean, &self.var, self.momentum);
        } else {
            let v: &[f32] = vars;
            kernels::bn_forward_infer(
                ctx.level,
                input,
                rows,
                o_d,
                self.gamma.map(|i| slice(v, infos, i)),
                self.beta.map(|i| slice(v, infos, i)),
                slice(v, infos, self.moving_mean),
                slice(v, infos, self.moving_var),
                self.eps,
                y,
            );
        }
    }

    fn backward(&mut self, ctx: &Ctx<'_>, dims: Dims, io: Backward<'_, '_>) -> bool {
        let Backward {
            input,
            g,
            g_in,
            need_input_grad,
            vars,
            grads,
            infos,
            ..
        } = io;
        let rows = ctx.rows;
        let (i_d, o_d) = (dims.input, dims.output);
        let dx = &mut g_in[..rows * i_d];
        if self.trainable {
            let gamma = self.gamma.map(|i| slice(vars, infos, i));
            // gamma and beta are adjacent variables: split their gradient slices.
            let (dgamma, dbeta) = match (self.gamma, self.beta) {
                (Some(gi), Some(bi)) => {
                    let off = infos[gi].offset;
                    debug_assert_eq!(infos[bi].offset, off + o_d);
                    let (dg, db) = grads[off..off + 2 * o_d].split_at_mut(o_d);
                    (Some(dg), Some(db))
                }
                (Some(gi), None) => (Some(slice_mut(grads, infos, gi)), None),
                (None, Some(bi)) => (None, Some(slice_mut(grads, infos, bi))),
                (None, None) => (None, None),
            };
            kernels::bn_backward_train(
                ctx.level,
                g,
                input,
                rows,
                o_d,
                &self.mean,
                &self.inv_std,
                gamma,
                dx,
                dgamma,
                dbeta,
            );
            true
        } else if need_input_grad {
            kernels::bn_backward_infer(
                ctx.level,
                g,
                rows,
                o_d,
                self.gamma.map(|i| slice(vars, infos, i)),
                slice(vars, infos, self.moving_var),
                self.eps,
                dx,
            );
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::check::finite_differences;
    use super::*;
    use crate::engine::LayerSpec;

    #[test]
    fn backward_matches_finite_differences_in_training_and_frozen() {
        for (center, scale, trainable) in [
            (true, true, true),
            (false, true, true),
            (true, false, true),
            (true, true, false),
        ] {
            let spec = LayerSpec::BatchNorm(BatchNormSpec {
                momentum: 0.99,
                epsilon: 1e-3,
                center,
                scale,
                trainable,
            });
            finite_differences(&spec, 4, 6, 1e-2, 3e-3);
        }
    }

    #[test]
    fn nan_momentum_and_negative_epsilon_are_errors() {
        for (momentum, epsilon) in [(f32::NAN, 1e-3), (0.9, -1.0)] {
            let spec = BatchNormSpec {
                momentum,
                epsilon,
                center: true,
                scale: true,
                trainable: true,
            };
            assert!(BatchNorm::new(3, &spec, &mut Vec::new(), &mut 0).is_err());
        }
    }
}
