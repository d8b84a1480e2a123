//! Mean squared error (Keras 3 `MeanSquaredError`): per sample, the mean over columns of
//! (y − a)².

elementwise_loss! {
    /// Mean squared error: per-sample mean over cols of (y−a)²; grad = scale·2(a−y)/cols.
    MeanSquaredError,
    mse,
    mean = true,
    c = 2.0,
    term = |a: f32, y: f32| {
        let d = y - a;
        d * d
    },
    deriv = |a: f32, y: f32| a - y,
}

#[cfg(test)]
mod tests {
    use std::ops::Range;

    use crate::dispatch::Level;

    use super::super::testing::{
        check, check_levels_agree, check_row_weights, fd_grad, Case, Inputs,
    };
    use super::*;
    use crate::kernels::testutil::*;

    #[test]
    fn matches_reference_gradient_levels_and_weights() {
        let reference = |a: &[f64], y: &[f64]| {
            a.iter().zip(y).map(|(a, y)| (y - a) * (y - a)).sum::<f64>() / a.len() as f64
        };
        check(&Case {
            loss: MeanSquaredError.into(),
            reference: &reference,
            outputs: &|rng, n| rng.vec(n, -3.0, 3.0),
            targets: &|rng, n| rng.vec(n, -3.0, 3.0),
            rtol: 1e-5,
        });
    }

    // ---- the kernel on its own (also run by the harness above, with other data and checks) ----

    fn mse64(a: &[f64], y: &[f64], cols: usize) -> f64 {
        a.chunks(cols)
            .zip(y.chunks(cols))
            .map(|(ar, yr)| {
                ar.iter()
                    .zip(yr)
                    .map(|(a, y)| (y - a) * (y - a))
                    .sum::<f64>()
                    / cols as f64
            })
            .sum()
    }

    /// Loss and analytic gradient against the f64 reference on every level.
    #[test]
    fn kernel_matches_reference_and_analytic_gradient() {
        let mut rng = Rng::new(12);
        for level in levels() {
            for &rows in &ROWS {
                for &cols in &COLS {
                    let n = rows * cols;
                    let scale = 1.0 / rows as f32;
                    let a = rng.vec(n, -3.0, 3.0);
                    let y = rng.vec(n, -3.0, 3.0);
                    let mut grad = vec![0.0; n];
                    let loss = mse(level, &a, rows, cols, &y, Some(&mut grad), scale, None);
                    let (ad, yd) = (to_f64(&a), to_f64(&y));
                    let ctx = format!("{level:?} {rows}x{cols} mse");
                    assert_close1(loss, mse64(&ad, &yd, cols), 1e-5, 1e-6, &ctx);
                    let g64: Vec<f64> = ad
                        .iter()
                        .zip(&yd)
                        .map(|(a, y)| scale as f64 * 2.0 * (a - y) / cols as f64)
                        .collect();
                    assert_close(&grad, &g64, 1e-5, 1e-9, &ctx);
                }
            }
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let mut rng = Rng::new(13);
        let h = 1e-6;
        for level in levels() {
            for &(rows, cols) in &[(1usize, 2usize), (2, 3), (3, 7), (2, 17)] {
                let n = rows * cols;
                let scale = 1.0 / rows as f32;
                let a = rng.vec(n, -2.0, 2.0);
                let y = rng.vec(n, -2.0, 2.0);
                let yd = to_f64(&y);
                let mut grad = vec![0.0; n];
                mse(level, &a, rows, cols, &y, Some(&mut grad), scale, None);
                let want = fd_grad(&|aa| mse64(aa, &yd, cols), &a, scale as f64, h);
                assert_close(
                    &grad,
                    &want,
                    1e-4,
                    1e-7,
                    &format!("{level:?} {rows}x{cols} mse"),
                );
            }
        }
    }

    #[test]
    fn matches_keras_reference_value() {
        for level in levels() {
            // Spec §5.2: targets [[1,2],[3,4]] vs zeros → mean 7.5, i.e. sum 15.
            let l = mse(
                level,
                &[0.0; 4],
                2,
                2,
                &[1.0, 2.0, 3.0, 4.0],
                None,
                1.0,
                None,
            );
            assert_eq!(l, 15.0);
        }
    }

    fn run_all(level: Level, b: &Inputs) -> Vec<f64> {
        let mut g = vec![0.0; b.rows * b.cols];
        let l = mse(level, &b.a, b.rows, b.cols, &b.y, Some(&mut g), 0.1, None);
        std::iter::once(l)
            .chain(g.iter().map(|&v| v as f64))
            .collect()
    }

    #[test]
    fn dispatch_levels_agree_with_scalar() {
        check_levels_agree(run_all);
    }

    fn kernel(
        level: Level,
        b: &Inputs,
        r: Range<usize>,
        s: f32,
        w: Option<&[f32]>,
        _: &mut [f32],
        g: &mut [f32],
    ) -> f64 {
        let (_, a, y, _) = b.rows(r.clone());
        mse(level, a, r.len(), b.cols, y, Some(g), s, w)
    }

    #[test]
    fn weights_scale_the_unweighted_loss_row_by_row() {
        check_row_weights(&[("mse", kernel)]);
    }
}
