//! `Normalization`: each feature shifted and scaled by a fixed mean and variance (Keras's
//! `layers.Normalization` on the last axis), `(x − mean) / max(√variance, ε)`, or with
//! `invert` back again, `mean + x·max(√variance, ε)`. The mean and variance are the layer's
//! non-trainable variables (set by `adapt` or loaded), or constants given to the layer.

use crate::error::{Error, Result};
use crate::settings::Settings;

use super::{add_var, slice, Backward, Ctx, Dims, Forward, Op, VarInfo};

/// Normalization's settings: Keras's `invert`, and `mean`/`variance` when given to the layer
/// (else they are its variables `[mean, variance, count]`, in Keras's order).
#[derive(Clone, Debug, PartialEq)]
pub struct NormalizationSpec {
    pub invert: bool,
    pub constants: Option<(Vec<f32>, Vec<f32>)>,
}

impl NormalizationSpec {
    /// Reads Keras's `invert`, and `mean` and `variance` (None: the layer's variables).
    pub(in crate::engine) fn from_settings(s: &dyn Settings) -> Result<NormalizationSpec> {
        let constants = match (s.floats("mean")?, s.floats("variance")?) {
            (Some(mean), Some(variance)) => Some((mean, variance)),
            (None, None) => None,
            _ => {
                return Err(Error::Value(
                    "Normalization: `mean` and `variance` must be given together".into(),
                ))
            }
        };
        Ok(NormalizationSpec {
            invert: s.flag("invert")?,
            constants,
        })
    }
}

pub(super) struct Normalization {
    invert: bool,
    /// The variables `mean` and `variance`, or the constants.
    source: Source,
    /// max(√variance, ε) per feature, refreshed each forward.
    den: Vec<f32>,
    y: Vec<f32>,
}

enum Source {
    Vars { mean: usize, variance: usize },
    Constants { mean: Vec<f32>, variance: Vec<f32> },
}

/// `keras.config.epsilon()`.
const EPSILON: f32 = 1e-7;

impl Normalization {
    pub(super) fn new(
        in_dim: usize,
        spec: &NormalizationSpec,
        infos: &mut Vec<VarInfo>,
        offset: &mut usize,
    ) -> Result<Normalization> {
        let source = match &spec.constants {
            Some((mean, variance)) => {
                for (name, v) in [("mean", mean), ("variance", variance)] {
                    if v.len() != in_dim && v.len() != 1 {
                        return Err(Error::Value(format!(
                            "Normalization: `{name}` must hold one value or one per feature ({in_dim}); received {} values",
                            v.len()
                        )));
                    }
                }
                let per_feature = |v: &Vec<f32>| {
                    if v.len() == 1 {
                        vec![v[0]; in_dim]
                    } else {
                        v.clone()
                    }
                };
                Source::Constants {
                    mean: per_feature(mean),
                    variance: per_feature(variance),
                }
            }
            None => {
                let mean = add_var(infos, offset, vec![in_dim], false);
                let variance = add_var(infos, offset, vec![in_dim], false);
                // Keras keeps an unused `count` for old files.
                add_var(infos, offset, vec![], false);
                Source::Vars { mean, variance }
            }
        };
        Ok(Normalization {
            invert: spec.invert,
            source,
            den: vec![0.0; in_dim],
            y: Vec::new(),
        })
    }
}

impl Op for Normalization {
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
        let (mean, variance) = match &self.source {
            Source::Vars { mean, variance } => {
                (slice(vars, infos, *mean), slice(vars, infos, *variance))
            }
            Source::Constants { mean, variance } => (&mean[..], &variance[..]),
        };
        for (d, &v) in self.den.iter_mut().zip(variance) {
            let s = v.sqrt();
            *d = if s > EPSILON { s } else { EPSILON };
        }
        let cols = dims.output;
        let y = &mut self.y[..ctx.rows * cols];
        for (yr, xr) in y.chunks_exact_mut(cols).zip(input.chunks_exact(cols)) {
            let terms = yr.iter_mut().zip(xr).zip(mean).zip(&self.den);
            if self.invert {
                terms.for_each(|(((y, &x), &m), &d)| *y = m + x * d);
            } else {
                terms.for_each(|(((y, &x), &m), &d)| *y = (x - m) / d);
            }
        }
    }

    fn backward(&mut self, ctx: &Ctx<'_>, dims: Dims, io: Backward<'_, '_>) -> bool {
        let Backward { g, .. } = io;
        let cols = dims.output;
        for gr in g[..ctx.rows * cols].chunks_exact_mut(cols) {
            let terms = gr.iter_mut().zip(&self.den);
            if self.invert {
                terms.for_each(|(g, &d)| *g *= d);
            } else {
                terms.for_each(|(g, &d)| *g /= d);
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::super::check::finite_differences;
    use super::*;
    use crate::engine::LayerSpec;

    #[test]
    fn backward_matches_finite_differences() {
        for invert in [false, true] {
            let spec = NormalizationSpec {
                invert,
                constants: None,
            };
            finite_differences(&LayerSpec::Normalization(spec), 5, 3, 1e-2, 1e-3);
            let constants = Some((vec![0.3, -1.0, 2.0], vec![4.0, 0.25, 0.0]));
            let spec = NormalizationSpec { invert, constants };
            finite_differences(&LayerSpec::Normalization(spec), 3, 4, 1e-2, 1e-3);
        }
    }

    /// The forward pass against a float64 reference of Keras's formula, a variance of 0
    /// included (divided by ε, as Keras does).
    #[test]
    fn forward_matches_reference() {
        let (mean, variance) = (vec![0.5f32, -2.0, 1.0], vec![2.0f32, 0.0, 0.09]);
        for invert in [false, true] {
            let spec = NormalizationSpec {
                invert,
                constants: Some((mean.clone(), variance.clone())),
            };
            let x = [1.0f32, 2.0, 3.0, -0.5, 0.0, 0.7];
            let y = super::super::check::forward_once(&LayerSpec::Normalization(spec), &x, 3);
            for (i, (&yv, &xv)) in y.iter().zip(&x).enumerate() {
                let (m, v) = (mean[i % 3] as f64, variance[i % 3] as f64);
                let d = v.sqrt().max(1e-7);
                let want = if invert {
                    m + xv as f64 * d
                } else {
                    (xv as f64 - m) / d
                };
                assert!(
                    (yv as f64 - want).abs() <= 1e-6 * want.abs().max(1.0),
                    "invert={invert} element {i}: {yv} vs {want}"
                );
            }
        }
    }

    #[test]
    fn refuses_constants_of_the_wrong_length() {
        let spec = NormalizationSpec {
            invert: false,
            constants: Some((vec![0.0; 2], vec![1.0; 2])),
        };
        let (mut infos, mut offset) = (Vec::new(), 0);
        let err = Normalization::new(3, &spec, &mut infos, &mut offset)
            .err()
            .unwrap();
        assert!(err.to_string().contains("mean"), "{err}");
    }
}
