//! `Rescaling`: `x·scale + offset` with scalar `scale` and `offset` (Keras's
//! `layers.Rescaling`, e.g. pixels to [0, 1] with `scale=1/255`).

use crate::error::{Error, Result};
use crate::settings::Settings;

use super::{Backward, Ctx, Dims, Forward, Op};

/// Rescaling's settings: Keras's `scale` and `offset` (scalars).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RescalingSpec {
    pub scale: f32,
    pub offset: f32,
}

impl RescalingSpec {
    /// Reads Keras's `scale` and `offset`.
    pub(in crate::engine) fn from_settings(s: &dyn Settings) -> Result<RescalingSpec> {
        Ok(RescalingSpec {
            scale: s.f64("scale")? as f32,
            offset: s.f64("offset")? as f32,
        })
    }
}

pub(super) struct Rescaling {
    spec: RescalingSpec,
    y: Vec<f32>,
}

impl Rescaling {
    pub(super) fn new(spec: &RescalingSpec) -> Result<Rescaling> {
        if !(spec.scale.is_finite() && spec.offset.is_finite()) {
            return Err(Error::Value(format!(
                "Rescaling: `scale` and `offset` must be finite numbers. Received: scale={}, offset={}",
                spec.scale, spec.offset
            )));
        }
        Ok(Rescaling {
            spec: *spec,
            y: Vec::new(),
        })
    }
}

impl Op for Rescaling {
    fn reserve(&mut self, rows: usize, dims: Dims) {
        self.y.resize(rows * dims.output, 0.0);
    }

    fn output(&self, n: usize) -> &[f32] {
        &self.y[..n]
    }

    fn forward(&mut self, ctx: &Ctx<'_>, dims: Dims, io: Forward<'_>) {
        let RescalingSpec { scale, offset } = self.spec;
        let y = &mut self.y[..ctx.rows * dims.output];
        for (y, &x) in y.iter_mut().zip(io.input) {
            *y = x * scale + offset;
        }
    }

    fn backward(&mut self, ctx: &Ctx<'_>, dims: Dims, io: Backward<'_, '_>) -> bool {
        let scale = self.spec.scale;
        for g in &mut io.g[..ctx.rows * dims.output] {
            *g *= scale;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::super::check::{finite_differences, forward_once};
    use super::*;
    use crate::engine::LayerSpec;

    #[test]
    fn backward_matches_finite_differences() {
        let spec = RescalingSpec {
            scale: -0.7,
            offset: 0.25,
        };
        finite_differences(&LayerSpec::Rescaling(spec), 4, 3, 1e-2, 1e-3);
    }

    #[test]
    fn forward_is_x_times_scale_plus_offset() {
        let spec = RescalingSpec {
            scale: 1.0 / 255.0,
            offset: -1.0,
        };
        let x = [0.0f32, 127.5, 255.0, 3.0];
        let y = forward_once(&LayerSpec::Rescaling(spec), &x, 2);
        for (&y, &x) in y.iter().zip(&x) {
            let want = x as f64 * (1.0f64 / 255.0) - 1.0;
            assert!((y as f64 - want).abs() < 1e-6, "{y} vs {want}");
        }
        let bad = RescalingSpec {
            scale: f32::NAN,
            offset: 0.0,
        };
        assert!(Rescaling::new(&bad).is_err());
    }
}
