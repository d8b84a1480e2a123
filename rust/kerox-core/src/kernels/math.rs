//! Branch-free f32 transcendentals that LLVM can vectorise (every branch is a select on
//! values computed for all lanes), plus an accurate f64 `erfc` for the exact GELU.
//!
//! Accuracy (checked in the tests against f64 `std`): `exp`, `expm1`, `sigmoid`, `tanh`,
//! `log1p` within a few ulp over their whole domain.

// The Cephes / Numerical Recipes coefficients are kept exactly as published.
#![allow(clippy::excessive_precision)]

/// e^x. Cephes `expf` polynomial with Cody–Waite range reduction; 2^n applied in two halves
/// so the whole range down to the subnormals stays finite. Overflows to +∞ above
/// ln(f32::MAX), flushes to +0 below −104, propagates NaN.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4; // 355/512: n·LN2_HI is exact for |n| ≤ 2^15
    const LN2_LO: f32 = -2.121_944_4e-4;
    const MAGIC: f32 = 12_582_912.0; // 1.5·2^23: adding it rounds to an integer
    const HI: f32 = 88.722_84;
    const LO: f32 = -104.0;
    let xc = x.clamp(LO, HI); // NaN stays NaN
    let t = xc * LOG2E + MAGIC;
    let n = t - MAGIC;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 5.000_000_1e-1;
    let e = p * (r * r) + r + 1.0;
    // n = round(xc·log2 e) ∈ [−150, 128], read from the integer bits of `t`.
    let ni = (t.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    let n1 = ni >> 1;
    let n2 = ni - n1;
    let s1 = f32::from_bits(((n1 + 127) << 23) as u32);
    let s2 = f32::from_bits(((n2 + 127) << 23) as u32);
    let y = e * s1 * s2;
    if x > HI {
        f32::INFINITY
    } else if x < LO {
        0.0
    } else {
        y
    }
}

/// e^x − 1 without cancellation near 0 (Taylor polynomial for |x| < 0.7).
#[inline(always)]
pub(crate) fn expm1(x: f32) -> f32 {
    let big = exp(x) - 1.0;
    let mut p = 1.0 / 39_916_800.0; // 1/11!
    p = p * x + 1.0 / 3_628_800.0;
    p = p * x + 1.0 / 362_880.0;
    p = p * x + 1.0 / 40_320.0;
    p = p * x + 1.0 / 5_040.0;
    p = p * x + 1.0 / 720.0;
    p = p * x + 1.0 / 120.0;
    p = p * x + 1.0 / 24.0;
    p = p * x + 1.0 / 6.0;
    p = p * x + 0.5;
    let small = p * x * x + x;
    if x.abs() < 0.7 {
        small
    } else {
        big
    }
}

/// Natural log for positive normal finite x (Cephes `logf`). Callers guarantee the domain.
#[inline(always)]
fn ln_normal(x: f32) -> f32 {
    const SQRTHF: f32 = std::f32::consts::FRAC_1_SQRT_2;
    let bits = x.to_bits() as i32;
    let e = ((bits >> 23) & 0xff) - 126;
    let m = f32::from_bits(((bits & 0x007f_ffff) | 0x3f00_0000) as u32); // [0.5, 1)
    let lt = m < SQRTHF;
    let e = if lt { e - 1 } else { e };
    let m = if lt { m + m - 1.0 } else { m - 1.0 };
    let z = m * m;
    let p = (((((((7.037_683_6e-2 * m - 1.151_461e-1) * m + 1.167_699_9e-1) * m
        - 1.242_014_1e-1)
        * m
        + 1.424_932_3e-1)
        * m
        - 1.666_805_8e-1)
        * m
        + 2.000_071_4e-1)
        * m
        - 2.499_999_4e-1)
        * m
        + 3.333_333_1e-1;
    let ef = e as f32;
    let y = p * m * z + -2.121_944_4e-4 * ef + -0.5 * z;
    m + y + 0.693_359_4 * ef
}

/// Natural log for any f32: subnormals are rescaled, and 0 → −∞, negative/NaN → NaN, +∞ → +∞.
#[inline(always)]
pub(crate) fn ln(x: f32) -> f32 {
    let sub = x < f32::MIN_POSITIVE;
    let xs = if sub { x * 8_388_608.0 } else { x }; // ·2^23
    let r = ln_normal(xs)
        - if sub {
            23.0 * std::f32::consts::LN_2
        } else {
            0.0
        };
    if x == 0.0 {
        f32::NEG_INFINITY
    } else if x < 0.0 || x.is_nan() {
        f32::NAN
    } else if x == f32::INFINITY {
        f32::INFINITY
    } else {
        r
    }
}

/// ln(1 + u) for u ∈ [0, 1] (Goldberg's correction: ln(w)·u/(w−1) with w = 1+u).
#[inline(always)]
pub(crate) fn log1p_unit(u: f32) -> f32 {
    let w = 1.0 + u;
    let d = w - 1.0;
    let r = ln_normal(w) * (u / if d == 0.0 { 1.0 } else { d });
    if d == 0.0 {
        u
    } else {
        r
    }
}

/// Logistic sigmoid, stable for large |x| (never forms e^{+|x|}).
#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    let e = exp(-x.abs());
    let d = 1.0 + e;
    if x >= 0.0 {
        1.0 / d
    } else {
        e / d
    }
}

/// Softplus ln(1+e^x) = max(x,0) + log1p(e^{−|x|}).
#[inline(always)]
pub(crate) fn softplus(x: f32) -> f32 {
    let m = if x > 0.0 { x } else { 0.0 };
    let l = log1p_unit(exp(-x.abs()));
    if x.is_nan() {
        x
    } else {
        m + l
    }
}

/// tanh: Cephes odd polynomial for |x| < 0.625, else (1−e)/(1+e) with e = e^{−2|x|}.
#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    let ax = x.abs();
    let z = x * x;
    let small =
        ((((-5.704_988_7e-3 * z + 2.063_908_9e-2) * z - 5.373_971_6e-2) * z + 1.333_144_2e-1) * z
            - 3.333_328_2e-1)
            * z
            * x
            + x;
    let e = exp(-2.0 * ax);
    let big = ((1.0 - e) / (1.0 + e)).copysign(x);
    if ax < 0.625 {
        small
    } else {
        big
    }
}

/// e^x in f64, branch-free (vectorises): Cody–Waite reduction by ln 2 (fdlibm split) and a
/// degree-11 Taylor polynomial on |r| ≤ ln2/2 (relative error < 1e-14). The argument is
/// clamped to [−700, 700], which only matters where callers multiply the result by ~0.
#[inline(always)]
fn exp_f64(x: f64) -> f64 {
    const LN2_HI: f64 = 6.931_471_803_691_238_164_90e-1; // low 32 bits zero: n·LN2_HI exact
    const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5·2^52
    let xc = x.clamp(-700.0, 700.0);
    let t = xc * std::f64::consts::LOG2_E + MAGIC;
    let n = t - MAGIC;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let mut p = 1.0 / 39_916_800.0;
    p = p * r + 1.0 / 3_628_800.0;
    p = p * r + 1.0 / 362_880.0;
    p = p * r + 1.0 / 40_320.0;
    p = p * r + 1.0 / 5_040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    let ni = (t.to_bits() as i64).wrapping_sub(MAGIC.to_bits() as i64);
    p * f64::from_bits(((ni + 1023) << 52) as u64)
}

/// Chebyshev coefficients of Numerical Recipes 3rd ed. `Erf::erfccheb` (checked against
/// mpmath), truncated to the first 16: relative error of `erfc` < 2e-10 for z ≥ 0, far below
/// f32 resolution.
const ERFC_COF: [f64; 16] = [
    -1.302_653_719_781_709_4,
    6.419_697_923_564_902_6e-1,
    1.947_647_320_481_583_6e-2,
    -9.561_514_786_808_631e-3,
    -9.465_953_444_820_36e-4,
    3.668_394_978_527_61e-4,
    4.252_332_480_690_7e-5,
    -2.027_857_811_253_4e-5,
    -1.624_290_004_647e-6,
    1.303_655_835_580e-6,
    1.562_644_172_2e-8,
    -8.523_809_591_5e-8,
    6.529_054_439e-9,
    5.059_343_495e-9,
    -9.913_641_56e-10,
    -2.273_651_22e-10,
];

/// erfc(z) for z ≥ 0 (f64, branch-free): t·exp(−z² + Σ' c_j T_j(4t−2)), t = 2/(2+z).
#[inline(always)]
fn erfc_pos(z: f64) -> f64 {
    let t = 2.0 / (2.0 + z);
    let ty = 4.0 * t - 2.0;
    let (mut d, mut dd) = (0.0f64, 0.0f64);
    for &c in ERFC_COF[1..].iter().rev() {
        let tmp = d;
        d = ty * d - dd + c;
        dd = tmp;
    }
    t * exp_f64(-z * z + 0.5 * (ERFC_COF[0] + ty * d) - dd)
}

/// Complementary error function in f64 (relative error < 2e-10; NaN propagates).
#[inline(always)]
pub(crate) fn erfc(x: f64) -> f64 {
    let e = erfc_pos(x.abs());
    if x >= 0.0 {
        e
    } else {
        2.0 - e
    }
}

/// Exact GELU 0.5·x·(1 + erf(x/√2)) = 0.5·x·erfc(−x/√2), evaluated in f64 (vectorises).
#[inline(always)]
pub(crate) fn gelu(x: f32) -> f32 {
    let xd = x as f64;
    (0.5 * xd * erfc(-xd * std::f64::consts::FRAC_1_SQRT_2)) as f32
}

/// d/dx GELU = Φ(x) + x·φ(x), in f64.
#[inline(always)]
pub(crate) fn gelu_grad(x: f32) -> f32 {
    let xd = x as f64;
    let cdf = 0.5 * erfc(-xd * std::f64::consts::FRAC_1_SQRT_2);
    // 1/√(2π)
    const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_677_94;
    let pdf = exp_f64(-0.5 * xd * xd) * INV_SQRT_2PI;
    (cdf + xd * pdf) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testutil::Rng;

    fn ulp_err(got: f32, want: f64) -> f64 {
        let w = want as f32;
        if w == 0.0 || !w.is_normal() {
            return (got as f64 - want).abs() / f32::MIN_POSITIVE as f64;
        }
        let ulp = (w.abs().to_bits() + 1) as f64;
        let ulp = f32::from_bits(ulp as u32) as f64 - w.abs() as f64;
        (got as f64 - want).abs() / ulp
    }

    fn check(
        name: &str,
        f: impl Fn(f32) -> f32,
        r: impl Fn(f64) -> f64,
        lo: f32,
        hi: f32,
        max_ulp: f64,
    ) {
        let mut rng = Rng::new(7);
        let mut worst = (0.0, 0.0f32);
        for i in 0..200_000 {
            let x = if i < 1000 {
                lo + (hi - lo) * i as f32 / 1000.0
            } else {
                rng.uniform(lo, hi)
            };
            let e = ulp_err(f(x), r(x as f64));
            if e > worst.0 {
                worst = (e, x);
            }
        }
        assert!(
            worst.0 <= max_ulp,
            "{name}: {} ulp at x={}",
            worst.0,
            worst.1
        );
    }

    #[test]
    fn exp_accuracy() {
        check("exp", exp, f64::exp, -87.0, 88.5, 2.0);
        check("exp small", exp, f64::exp, -1.0, 1.0, 2.0);
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(100.0), f32::INFINITY);
        assert_eq!(exp(-200.0), 0.0);
        assert!(exp(f32::NAN).is_nan());
        // subnormal results stay close
        let v = exp(-100.0) as f64;
        assert!((v - (-100.0f64).exp()).abs() < 2e-45);
    }

    #[test]
    fn expm1_accuracy() {
        check("expm1", expm1, f64::exp_m1, -20.0, 20.0, 3.0);
        check("expm1 small", expm1, f64::exp_m1, -1e-3, 1e-3, 2.0);
    }

    #[test]
    fn tanh_sigmoid_softplus_accuracy() {
        check("tanh", tanh, f64::tanh, -12.0, 12.0, 3.0);
        check("tanh small", tanh, f64::tanh, -0.01, 0.01, 2.0);
        let sig = |x: f64| {
            if x >= 0.0 {
                1.0 / (1.0 + (-x).exp())
            } else {
                x.exp() / (1.0 + x.exp())
            }
        };
        check("sigmoid", sigmoid, sig, -80.0, 40.0, 4.0);
        let sp = |x: f64| x.max(0.0) + (-x.abs()).exp().ln_1p();
        check("softplus", softplus, sp, -80.0, 80.0, 4.0);
        check("log1p", log1p_unit, f64::ln_1p, 0.0, 1.0, 3.0);
        check("log1p tiny", log1p_unit, f64::ln_1p, 0.0, 1e-5, 3.0);
        check("ln", ln, f64::ln, 1e-7, 1.0, 2.0);
        check("ln wide", ln, f64::ln, 0.5, 1e30, 2.0);
        assert_eq!(ln(0.0), f32::NEG_INFINITY);
        assert!(ln(-1.0).is_nan() && ln(f32::NAN).is_nan());
        assert_eq!(ln(f32::INFINITY), f32::INFINITY);
        assert!((ln(1e-40) as f64 - (1e-40f32 as f64).ln()).abs() < 1e-5);
        assert_eq!(tanh(30.0), 1.0);
        assert_eq!(tanh(-30.0), -1.0);
    }

    #[test]
    fn erfc_against_series() {
        // Independent reference: erf via the all-positive series
        // erf(x) = 2/√π e^{−x²} Σ 2^n x^{2n+1}/(1·3···(2n+1)) (no cancellation).
        for i in -400..=400 {
            let x = i as f64 * 0.01;
            let mut term = x;
            let mut sum = x;
            let mut n = 0.0;
            while term.abs() > 1e-18 * sum.abs() {
                n += 1.0;
                term *= 2.0 * x * x / (2.0 * n + 1.0);
                sum += term;
            }
            let erf = std::f64::consts::FRAC_2_SQRT_PI * (-x * x).exp() * sum;
            let got = 1.0 - erfc(x);
            assert!((got - erf).abs() <= 2e-10, "x={x}: {got} vs {erf}");
            // relative accuracy of the tail erfc(|x|) = 1 − erf(|x|)
            let tail = 1.0 - erf.abs();
            let e = erfc(x.abs());
            assert!(
                (e - tail).abs() <= 2e-10 * tail + 1e-15,
                "x={x}: {e} vs {tail}"
            );
        }
        // Known tail values (mpmath).
        assert!((erfc(5.0) / 1.537_459_794_428_034_8e-12 - 1.0).abs() < 2e-10);
        assert!((erfc(10.0) / 2.088_487_583_762_544_8e-45 - 1.0).abs() < 2e-10);
        assert!((erfc(-3.0) - (2.0 - 2.209_049_699_858_544e-5)).abs() < 1e-14);
        assert!(erfc(f64::NAN).is_nan());
        // f64 exp
        for i in -7000..=7000 {
            let x = i as f64 * 0.1;
            assert!((exp_f64(x) / x.exp() - 1.0).abs() < 1e-14, "exp_f64({x})");
        }
    }
}
