//! Shared helpers for the kernel tests: a tiny deterministic PRNG, the shape grid, and
//! tolerance checks against f64 references.

use crate::dispatch::Level;

/// Column counts that hit every SIMD tail (4/8/16 lanes, ±1, multi-block).
pub(crate) const COLS: [usize; 11] = [1, 3, 7, 15, 16, 17, 31, 33, 64, 100, 257];
/// Row counts.
pub(crate) const ROWS: [usize; 4] = [1, 2, 5, 32];

/// Every level this CPU can run.
pub(crate) fn levels() -> Vec<Level> {
    Level::available()
}

/// SplitMix64.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1) as f64.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    pub(crate) fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        (lo as f64 + (hi as f64 - lo as f64) * self.unit()) as f32
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub(crate) fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(lo, hi)).collect()
    }
    /// Values in ±[lo, hi] (bounded away from 0, for kinks at 0).
    pub(crate) fn vec_away(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n)
            .map(|_| {
                let v = self.uniform(lo, hi);
                if self.next_u64() & 1 == 0 {
                    v
                } else {
                    -v
                }
            })
            .collect()
    }
}

/// |got − want| ≤ atol + rtol·|want| elementwise.
#[track_caller]
pub(crate) fn assert_close(got: &[f32], want: &[f64], rtol: f64, atol: f64, ctx: &str) {
    assert_eq!(got.len(), want.len(), "{ctx}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g as f64 - w).abs();
        assert!(
            err <= atol + rtol * w.abs() || (g.is_nan() && w.is_nan()),
            "{ctx}: element {i}: got {g}, want {w} (err {err:e})"
        );
    }
}

/// Scalar version of [`assert_close`].
#[track_caller]
pub(crate) fn assert_close1(got: f64, want: f64, rtol: f64, atol: f64, ctx: &str) {
    let err = (got - want).abs();
    assert!(
        err <= atol + rtol * want.abs(),
        "{ctx}: got {got}, want {want} (err {err:e})"
    );
}

pub(crate) fn to_f64(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

/// erf in f64 from the all-positive series erf(x) = 2/√π·e^{−x²}·Σ 2ⁿx^{2n+1}/(2n+1)!!
/// (no cancellation; converges for every x, slowly for large |x|). Test reference only.
pub(crate) fn erf_ref(x: f64) -> f64 {
    if x.abs() > 6.0 {
        return x.signum();
    }
    let mut term = x;
    let mut sum = x;
    let mut n = 0.0;
    while term.abs() > 1e-18 * sum.abs() {
        n += 1.0;
        term *= 2.0 * x * x / (2.0 * n + 1.0);
        sum += term;
    }
    std::f64::consts::FRAC_2_SQRT_PI * (-x * x).exp() * sum
}

/// Central finite difference of `f` at `x` along coordinate `i`.
pub(crate) fn central_diff(f: &dyn Fn(&[f64]) -> f64, x: &[f64], i: usize, h: f64) -> f64 {
    let mut xp = x.to_vec();
    xp[i] = x[i] + h;
    let fp = f(&xp);
    xp[i] = x[i] - h;
    let fm = f(&xp);
    (fp - fm) / (2.0 * h)
}
