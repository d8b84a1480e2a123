//! Activations (Keras 3 semantics): fused bias-add + activation forward, and backward.
//!
//! Maps are written branch-free on top of `math.rs`, so every activation except the exact
//! GELU (f64 `erfc`, scalar) vectorises at the AVX2/AVX-512 levels; softmax uses lane
//! reductions for its row max/sum.

use super::math;
use super::simd::{lane_dot, lane_max, lane_sum};

/// Element-wise (or, for softmax, row-wise) activation of a Dense layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activation {
    Linear,
    Relu,
    Sigmoid,
    Tanh,
    Softmax,
    Elu,
    Selu,
    Gelu,
    Softplus,
    Silu,
}

impl Activation {
    /// Parses a Keras activation identifier (`"swish"` is an alias of `"silu"`).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "linear" => Activation::Linear,
            "relu" => Activation::Relu,
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "softmax" => Activation::Softmax,
            "elu" => Activation::Elu,
            "selu" => Activation::Selu,
            "gelu" => Activation::Gelu,
            "softplus" => Activation::Softplus,
            "silu" | "swish" => Activation::Silu,
            _ => return None,
        })
    }

    /// Canonical Keras name.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softmax => "softmax",
            Activation::Elu => "elu",
            Activation::Selu => "selu",
            Activation::Gelu => "gelu",
            Activation::Softplus => "softplus",
            Activation::Silu => "silu",
        }
    }
}

/// SELU constants (Keras 3 / JAX), as published.
#[allow(clippy::excessive_precision)]
const SELU_SCALE: f32 = 1.050_700_987_355_480_5;
#[allow(clippy::excessive_precision)]
const SELU_ALPHA: f32 = 1.673_263_242_354_377_2;
const SELU_SCALE_ALPHA: f32 = SELU_SCALE * SELU_ALPHA;

// ---- element-wise forward functions --------------------------------------------------------

#[inline(always)]
fn f_linear(x: f32) -> f32 {
    x
}
#[inline(always)]
fn f_relu(x: f32) -> f32 {
    // NaN propagates (like max(x, 0) in XLA). `x + 0.0` (not foldable: −0 + 0 = +0) keeps
    // LLVM from turning the in-place select into a masked store (`vmaskmovps`, very slow on
    // AMD Zen) at the AVX2 level.
    if x < 0.0 {
        0.0
    } else {
        x + 0.0
    }
}
#[inline(always)]
fn f_elu(x: f32) -> f32 {
    let n = math::expm1(x);
    if x > 0.0 {
        x
    } else {
        n
    }
}
#[inline(always)]
fn f_selu(x: f32) -> f32 {
    let n = SELU_ALPHA * math::expm1(x);
    SELU_SCALE * if x > 0.0 { x } else { n }
}
#[inline(always)]
fn f_silu(x: f32) -> f32 {
    x * math::sigmoid(x)
}

/// Expands `$m!(args..., f)` with `f` the path of the element-wise forward function of `$act`
/// (a direct call, so `#[inline(always)]` holds inside the `target_feature` wrappers; passing
/// the function as a generic `Fn` value would go through a shim LLVM may leave out of line).
/// Softmax is excluded.
macro_rules! with_forward_fn {
    ($act:expr, $m:ident!($($arg:expr),*)) => {
        match $act {
            Activation::Linear => $m!($($arg),*, f_linear),
            Activation::Relu => $m!($($arg),*, f_relu),
            Activation::Sigmoid => $m!($($arg),*, math::sigmoid),
            Activation::Tanh => $m!($($arg),*, math::tanh),
            Activation::Elu => $m!($($arg),*, f_elu),
            Activation::Selu => $m!($($arg),*, f_selu),
            Activation::Gelu => $m!($($arg),*, math::gelu),
            Activation::Softplus => $m!($($arg),*, math::softplus),
            Activation::Silu => $m!($($arg),*, f_silu),
            Activation::Softmax => unreachable!("softmax is row-wise"),
        }
    };
}

// ---- element-wise backward functions: (g, z, a) -> dL/dz ------------------------------------

#[inline(always)]
fn b_linear(g: f32, _z: f32, _a: f32) -> f32 {
    g
}
#[inline(always)]
fn b_relu(g: f32, z: f32, _a: f32) -> f32 {
    // `g + 0.0`: see `f_relu` (avoids a masked store at the AVX2 level).
    if z > 0.0 {
        g + 0.0
    } else {
        0.0
    }
}
#[inline(always)]
fn b_sigmoid(g: f32, _z: f32, a: f32) -> f32 {
    g * (a * (1.0 - a))
}
#[inline(always)]
fn b_tanh(g: f32, _z: f32, a: f32) -> f32 {
    g * (1.0 - a * a)
}
#[inline(always)]
fn b_elu(g: f32, z: f32, _a: f32) -> f32 {
    let n = g * math::exp(z);
    if z > 0.0 {
        g
    } else {
        n
    }
}
#[inline(always)]
fn b_selu(g: f32, z: f32, _a: f32) -> f32 {
    let n = g * (SELU_SCALE_ALPHA * math::exp(z));
    if z > 0.0 {
        g * SELU_SCALE
    } else {
        n
    }
}
#[inline(always)]
fn b_gelu(g: f32, z: f32, _a: f32) -> f32 {
    g * math::gelu_grad(z)
}
#[inline(always)]
fn b_softplus(g: f32, z: f32, _a: f32) -> f32 {
    g * math::sigmoid(z)
}
#[inline(always)]
fn b_silu(g: f32, z: f32, _a: f32) -> f32 {
    let s = math::sigmoid(z);
    g * (s * (1.0 + z * (1.0 - s)))
}

// ---- bodies ---------------------------------------------------------------------------------

#[inline(always)]
fn check_bias(bias: Option<&[f32]>, cols: usize) {
    if let Some(b) = bias {
        assert_eq!(b.len(), cols, "bias length must equal cols");
    }
}

/// Softmax of `x` written to `out` (row-wise, max-shifted; `exp(x−max)/Σ`).
#[inline(always)]
fn softmax_row(x: &[f32], out: &mut [f32]) {
    let m = lane_max(x);
    for (o, &v) in out.iter_mut().zip(x) {
        *o = math::exp(v - m);
    }
    let s = lane_sum(out);
    for o in out.iter_mut() {
        *o /= s;
    }
}

#[inline(always)]
fn softmax_row_inplace(x: &mut [f32]) {
    let m = lane_max(x);
    for v in x.iter_mut() {
        *v = math::exp(*v - m);
    }
    let s = lane_sum(x);
    for v in x.iter_mut() {
        *v /= s;
    }
}

#[inline(always)]
fn add_bias(row: &mut [f32], bias: &[f32]) {
    for (v, &b) in row.iter_mut().zip(bias) {
        *v += b;
    }
}

/// Row loop of the fused bias + activation forward (`$f` is called directly).
macro_rules! forward_rows {
    ($z:expr, $a:expr, $cols:expr, $bias:expr, $f:path) => {
        for (zr, ar) in $z.chunks_exact_mut($cols).zip($a.chunks_exact_mut($cols)) {
            match $bias {
                Some(b) => {
                    for ((zv, av), &bv) in zr.iter_mut().zip(ar.iter_mut()).zip(b) {
                        let v = *zv + bv;
                        *zv = v;
                        *av = $f(v);
                    }
                }
                None => {
                    for (zv, av) in zr.iter().zip(ar.iter_mut()) {
                        *av = $f(*zv);
                    }
                }
            }
        }
    };
}

#[inline(always)]
fn forward_body(
    z: &mut [f32],
    a: &mut [f32],
    rows: usize,
    cols: usize,
    bias: Option<&[f32]>,
    act: Activation,
) {
    assert_eq!(z.len(), rows * cols, "z length");
    assert_eq!(a.len(), rows * cols, "a length");
    check_bias(bias, cols);
    if rows * cols == 0 {
        return;
    }
    if act == Activation::Softmax {
        for (zr, ar) in z.chunks_exact_mut(cols).zip(a.chunks_exact_mut(cols)) {
            if let Some(b) = bias {
                add_bias(zr, b);
            }
            softmax_row(zr, ar);
        }
        return;
    }
    with_forward_fn!(act, forward_rows!(z, a, cols, bias))
}

/// In-place row loop of bias + activation (`$f` is called directly).
macro_rules! inplace_rows {
    ($x:expr, $cols:expr, $bias:expr, $f:path) => {
        match $bias {
            Some(b) => {
                for xr in $x.chunks_exact_mut($cols) {
                    for (v, &bv) in xr.iter_mut().zip(b) {
                        *v = $f(*v + bv);
                    }
                }
            }
            None => {
                for v in $x.iter_mut() {
                    *v = $f(*v);
                }
            }
        }
    };
}

#[inline(always)]
fn inplace_body(x: &mut [f32], rows: usize, cols: usize, bias: Option<&[f32]>, act: Activation) {
    assert_eq!(x.len(), rows * cols, "x length");
    check_bias(bias, cols);
    if rows * cols == 0 {
        return;
    }
    match act {
        Activation::Softmax => {
            for xr in x.chunks_exact_mut(cols) {
                if let Some(b) = bias {
                    add_bias(xr, b);
                }
                softmax_row_inplace(xr);
            }
        }
        Activation::Linear => {
            if let Some(b) = bias {
                for xr in x.chunks_exact_mut(cols) {
                    add_bias(xr, b);
                }
            }
        }
        _ => with_forward_fn!(act, inplace_rows!(x, cols, bias)),
    }
}

/// g ← f(g, z, a) element-wise (`$f` is called directly).
macro_rules! backward_map {
    ($g:expr, $z:expr, $a:expr, $f:path) => {
        for ((gv, &zv), &av) in $g.iter_mut().zip($z).zip($a) {
            *gv = $f(*gv, zv, av);
        }
    };
}

#[inline(always)]
fn backward_body(g: &mut [f32], z: &[f32], a: &[f32], rows: usize, cols: usize, act: Activation) {
    let n = rows * cols;
    assert_eq!(g.len(), n, "g length");
    assert_eq!(z.len(), n, "z length");
    assert_eq!(a.len(), n, "a length");
    if n == 0 {
        return;
    }
    match act {
        Activation::Linear => backward_map!(g, z, a, b_linear),
        Activation::Relu => backward_map!(g, z, a, b_relu),
        Activation::Sigmoid => backward_map!(g, z, a, b_sigmoid),
        Activation::Tanh => backward_map!(g, z, a, b_tanh),
        Activation::Elu => backward_map!(g, z, a, b_elu),
        Activation::Selu => backward_map!(g, z, a, b_selu),
        Activation::Gelu => backward_map!(g, z, a, b_gelu),
        Activation::Softplus => backward_map!(g, z, a, b_softplus),
        Activation::Silu => backward_map!(g, z, a, b_silu),
        Activation::Softmax => {
            for (gr, ar) in g.chunks_exact_mut(cols).zip(a.chunks_exact(cols)) {
                let d = lane_dot(gr, ar);
                for (gv, &av) in gr.iter_mut().zip(ar) {
                    *gv = av * (*gv - d);
                }
            }
        }
    }
}

multiversion! {
    /// Forward a = act(z + bias), bias broadcast over rows (None = no bias). Adds the bias into
    /// `z` in place (z keeps the pre-activation for backward) and writes `a`. Softmax is
    /// row-wise, max-shifted.
    pub fn bias_act_forward(
        z: &mut [f32],
        a: &mut [f32],
        rows: usize,
        cols: usize,
        bias: Option<&[f32]>,
        act: Activation,
    ) => forward_body;
}

multiversion! {
    /// In-place variant x ← act(x + bias) (inference, or Linear where a = z).
    pub fn bias_act_inplace(
        x: &mut [f32],
        rows: usize,
        cols: usize,
        bias: Option<&[f32]>,
        act: Activation,
    ) => inplace_body;
}

multiversion! {
    /// Backward: `g` holds dL/da on entry and dL/dz on exit; z = pre-activation, a = output,
    /// as from [`bias_act_forward`]. Linear is the identity.
    pub fn act_backward(
        g: &mut [f32],
        z: &[f32],
        a: &[f32],
        rows: usize,
        cols: usize,
        act: Activation,
    ) => backward_body;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::Level;
    use crate::kernels::testutil::*;

    const ALL: [Activation; 10] = [
        Activation::Linear,
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Softmax,
        Activation::Elu,
        Activation::Selu,
        Activation::Gelu,
        Activation::Softplus,
        Activation::Silu,
    ];
    const SCALE: f64 = 1.050_700_987_355_480_5;
    const ALPHA: f64 = 1.673_263_242_354_377_2;

    fn sig64(x: f64) -> f64 {
        if x >= 0.0 {
            1.0 / (1.0 + (-x).exp())
        } else {
            x.exp() / (1.0 + x.exp())
        }
    }

    /// Independent f64 reference of the element-wise activations.
    fn act64(act: Activation, x: f64) -> f64 {
        match act {
            Activation::Linear => x,
            Activation::Relu => x.max(0.0),
            Activation::Sigmoid => sig64(x),
            Activation::Tanh => x.tanh(),
            Activation::Elu => {
                if x > 0.0 {
                    x
                } else {
                    x.exp_m1()
                }
            }
            Activation::Selu => SCALE * if x > 0.0 { x } else { ALPHA * x.exp_m1() },
            Activation::Gelu => 0.5 * x * (1.0 + erf_ref(x / std::f64::consts::SQRT_2)),
            Activation::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
            Activation::Silu => x * sig64(x),
            Activation::Softmax => unreachable!(),
        }
    }

    /// f64 forward of a whole row-major matrix.
    fn forward64(act: Activation, z: &[f64], cols: usize) -> Vec<f64> {
        if act == Activation::Softmax {
            let mut out = Vec::with_capacity(z.len());
            for row in z.chunks(cols) {
                let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = row.iter().map(|&v| (v - m).exp()).collect();
                let s: f64 = e.iter().sum();
                out.extend(e.iter().map(|v| v / s));
            }
            out
        } else {
            z.iter().map(|&v| act64(act, v)).collect()
        }
    }

    fn inputs(act: Activation, rng: &mut Rng, n: usize) -> Vec<f32> {
        match act {
            // keep away from the kink at 0
            Activation::Relu | Activation::Elu | Activation::Selu => rng.vec_away(n, 0.05, 5.0),
            _ => rng.vec(n, -8.0, 8.0),
        }
    }

    #[test]
    fn names_round_trip() {
        for a in ALL {
            assert_eq!(Activation::from_name(a.name()), Some(a));
        }
        assert_eq!(Activation::from_name("swish"), Some(Activation::Silu));
        assert_eq!(Activation::from_name("foo"), None);
        assert_eq!(Activation::from_name("Relu"), None);
    }

    #[test]
    fn forward_matches_f64_reference() {
        let mut rng = Rng::new(1);
        for level in levels() {
            for act in ALL {
                for &rows in &ROWS {
                    for &cols in &COLS {
                        let n = rows * cols;
                        let z0 = inputs(act, &mut rng, n);
                        let bias = rng.vec(cols, -0.5, 0.5);
                        for use_bias in [false, true] {
                            let b = use_bias.then_some(&bias[..]);
                            let mut z = z0.clone();
                            let mut a = vec![f32::NAN; n];
                            bias_act_forward(level, &mut z, &mut a, rows, cols, b, act);
                            // z holds z0 + bias (one f32 add)
                            let want_z: Vec<f32> = z0
                                .iter()
                                .enumerate()
                                .map(|(i, &v)| if use_bias { v + bias[i % cols] } else { v })
                                .collect();
                            assert_eq!(z, want_z, "{level:?} {act:?} z");
                            let want = forward64(act, &to_f64(&want_z), cols);
                            let ctx = format!("{level:?} {act:?} {rows}x{cols} bias={use_bias}");
                            assert_close(&a, &want, 4e-6, 1e-7, &ctx);
                            // in-place variant gives the same bits
                            let mut x = z0.clone();
                            bias_act_inplace(level, &mut x, rows, cols, b, act);
                            assert_eq!(
                                x.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                                a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                                "{ctx} inplace"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn forward_extreme_inputs() {
        let xs = [
            -1e4f32, -200.0, -88.0, -20.0, -1e-6, 0.0, 1e-6, 20.0, 88.0, 200.0, 1e4,
        ];
        for level in levels() {
            for act in ALL {
                if act == Activation::Softmax {
                    continue;
                }
                let mut z = xs.to_vec();
                let mut a = vec![0.0; xs.len()];
                bias_act_forward(level, &mut z, &mut a, 1, xs.len(), None, act);
                let want: Vec<f64> = xs.iter().map(|&v| act64(act, v as f64)).collect();
                assert_close(
                    &a,
                    &want,
                    4e-6,
                    1e-30,
                    &format!("{level:?} {act:?} extreme"),
                );
                let mut g = vec![1.0; xs.len()];
                act_backward(level, &mut g, &z, &a, 1, xs.len(), act);
                assert!(g.iter().all(|v| v.is_finite()), "{level:?} {act:?}: {g:?}");
            }
            // NaN propagates
            for act in ALL {
                let mut x = vec![f32::NAN, 1.0];
                bias_act_inplace(level, &mut x, 1, 2, None, act);
                assert!(x[0].is_nan(), "{level:?} {act:?} NaN");
            }
        }
    }

    #[test]
    fn softmax_rows_sum_to_one_and_are_stable() {
        let mut rng = Rng::new(2);
        for level in levels() {
            for &cols in &COLS {
                let rows = 5;
                let mut z = rng.vec(rows * cols, -50.0, 50.0);
                z[0] = 1000.0; // would overflow without the max shift
                let mut a = vec![0.0; rows * cols];
                bias_act_forward(level, &mut z, &mut a, rows, cols, None, Activation::Softmax);
                for row in a.chunks(cols) {
                    let s: f64 = row.iter().map(|&v| v as f64).sum();
                    assert!((s - 1.0).abs() < 2e-6, "{level:?} cols={cols}: sum {s}");
                    assert!(row.iter().all(|v| (0.0..=1.0).contains(v)));
                }
            }
        }
    }

    /// Analytic backward on the full shape grid vs the f64 derivative.
    #[test]
    fn backward_matches_f64_derivative() {
        let mut rng = Rng::new(3);
        for level in levels() {
            for act in ALL {
                for &rows in &ROWS {
                    for &cols in &COLS {
                        let n = rows * cols;
                        let mut z = inputs(act, &mut rng, n);
                        let mut a = vec![0.0; n];
                        bias_act_forward(level, &mut z, &mut a, rows, cols, None, act);
                        let g0 = rng.vec(n, -1.0, 1.0);
                        let mut g = g0.clone();
                        act_backward(level, &mut g, &z, &a, rows, cols, act);
                        let zd = to_f64(&z);
                        let want: Vec<f64> = if act == Activation::Softmax {
                            let p = forward64(act, &zd, cols);
                            let mut out = vec![0.0; n];
                            for r in 0..rows {
                                let o = r * cols;
                                let dot: f64 = (0..cols).map(|j| g0[o + j] as f64 * p[o + j]).sum();
                                for j in 0..cols {
                                    out[o + j] = p[o + j] * (g0[o + j] as f64 - dot);
                                }
                            }
                            out
                        } else {
                            // derivative by a tiny central difference of the f64 reference
                            zd.iter()
                                .zip(&g0)
                                .map(|(&x, &gv)| {
                                    let h = 1e-6 * (1.0 + x.abs());
                                    gv as f64 * (act64(act, x + h) - act64(act, x - h)) / (2.0 * h)
                                })
                                .collect()
                        };
                        let ctx = format!("{level:?} {act:?} {rows}x{cols} backward");
                        assert_close(&g, &want, 2e-5, 2e-6, &ctx);
                    }
                }
            }
        }
    }

    /// dL/dz for L = Σ w·act(z) against central finite differences of the f64 reference,
    /// including the row coupling of softmax.
    #[test]
    fn backward_matches_finite_differences() {
        let mut rng = Rng::new(4);
        for level in levels() {
            for act in ALL {
                for &(rows, cols) in &[(1usize, 1usize), (2, 3), (3, 7), (2, 17)] {
                    let n = rows * cols;
                    let mut z = inputs(act, &mut rng, n);
                    for v in z.iter_mut() {
                        *v *= 0.5; // moderate range: well-conditioned differences
                    }
                    let w = rng.vec(n, -1.0, 1.0);
                    let mut a = vec![0.0; n];
                    bias_act_forward(level, &mut z, &mut a, rows, cols, None, act);
                    let mut g = w.clone();
                    act_backward(level, &mut g, &z, &a, rows, cols, act);
                    let wd = to_f64(&w);
                    let loss = |zz: &[f64]| -> f64 {
                        forward64(act, zz, cols)
                            .iter()
                            .zip(&wd)
                            .map(|(a, w)| a * w)
                            .sum()
                    };
                    let zd = to_f64(&z);
                    let want: Vec<f64> =
                        (0..n).map(|i| central_diff(&loss, &zd, i, 1e-5)).collect();
                    let ctx = format!("{level:?} {act:?} {rows}x{cols} fd");
                    assert_close(&g, &want, 1e-4, 1e-5, &ctx);
                }
            }
        }
    }

    #[test]
    fn relu_gradient_is_zero_at_and_below_zero() {
        for level in levels() {
            let z = [-1.0f32, 0.0, 2.0];
            let a = [0.0f32, 0.0, 2.0];
            let mut g = [5.0f32; 3];
            act_backward(level, &mut g, &z, &a, 1, 3, Activation::Relu);
            assert_eq!(g, [0.0, 0.0, 5.0]);
            let mut g = [5.0f32; 3];
            act_backward(level, &mut g, &z, &a, 1, 3, Activation::Linear);
            assert_eq!(g, [5.0; 3]);
        }
    }

    #[test]
    fn levels_agree_with_scalar_and_are_deterministic() {
        let mut rng = Rng::new(5);
        let (rows, cols) = (7, 257);
        let n = rows * cols;
        for act in ALL {
            let z0 = rng.vec(n, -10.0, 10.0);
            let bias = rng.vec(cols, -1.0, 1.0);
            let g0 = rng.vec(n, -1.0, 1.0);
            let run = |level: Level| {
                let mut z = z0.clone();
                let mut a = vec![0.0; n];
                bias_act_forward(level, &mut z, &mut a, rows, cols, Some(&bias), act);
                let mut g = g0.clone();
                act_backward(level, &mut g, &z, &a, rows, cols, act);
                (a, g)
            };
            let (a_ref, g_ref) = run(Level::Scalar);
            for level in levels() {
                let (a, g) = run(level);
                let (a2, g2) = run(level);
                assert_eq!(a, a2, "{level:?} {act:?} forward not deterministic");
                assert_eq!(g, g2, "{level:?} {act:?} backward not deterministic");
                let ctx = format!("{level:?} {act:?} vs scalar");
                assert_close(&a, &to_f64(&a_ref), 1e-6, 1e-7, &ctx);
                assert_close(&g, &to_f64(&g_ref), 1e-6, 1e-7, &ctx);
            }
        }
    }

    #[test]
    fn empty_inputs_are_fine() {
        for level in levels() {
            for act in ALL {
                bias_act_forward(level, &mut [], &mut [], 0, 5, Some(&[0.0; 5]), act);
                bias_act_inplace(level, &mut [], 3, 0, None, act);
                act_backward(level, &mut [], &[], &[], 0, 0, act);
            }
        }
    }
}
