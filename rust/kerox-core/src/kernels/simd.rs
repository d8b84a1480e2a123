//! Dispatch plumbing and lane-parallel reductions shared by the kernels.
//!
//! `multiversion!` turns an `#[inline(always)]` body into a public kernel taking a
//! [`Level`] first: on x86-64 the body is instantiated inside `#[target_feature]` wrappers for
//! AVX2+FMA and AVX-512, so LLVM vectorises it for that ISA. Nothing here uses fast-math, so no
//! level reassociates or contracts (`a*b+c` stays two roundings): every level evaluates the
//! exact same expression tree, and results are deterministic per level.

use crate::dispatch::Level;

/// Clamps a requested level to what the running CPU supports, so that a caller passing a
/// level the CPU lacks gets a slower, correct path instead of undefined behaviour.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
#[inline]
pub(crate) fn resolve(level: Level) -> Level {
    level.min(Level::detected())
}

/// Column blocks of per-column f64 accumulators kept on the stack: small for narrow matrices
/// (cheap to zero), long for wide ones (contiguous row segments).
pub(crate) const COL_BLOCK_SMALL: usize = 64;
pub(crate) const COL_BLOCK_LARGE: usize = 1024;

/// `$f::<COL_BLOCK_SMALL>(args)` when `$cols` fits one small block, else
/// `$f::<COL_BLOCK_LARGE>(args)`.
macro_rules! by_col_block {
    ($cols:expr, $f:ident($($arg:expr),* $(,)?)) => {
        if $cols <= $crate::kernels::simd::COL_BLOCK_SMALL {
            $f::<{ $crate::kernels::simd::COL_BLOCK_SMALL }>($($arg),*)
        } else {
            $f::<{ $crate::kernels::simd::COL_BLOCK_LARGE }>($($arg),*)
        }
    };
}

/// Defines `$vis fn $name(level: Level, args...) -> ret` dispatching to `$body(args...)`.
/// The form `=> $v4, $v3, $v0;` names one body per level (AVX-512, AVX2, scalar), e.g. the
/// same generic body with a block width that fits each level's register file.
macro_rules! multiversion {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? => $body:path;
    ) => {
        multiversion! {
            $(#[$meta])*
            $vis fn $name($($arg: $ty),*) $(-> $ret)? => $body, $body, $body;
        }
    };
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)?
            => $v4:path, $v3:path, $v0:path;
    ) => {
        $(#[$meta])*
        $vis fn $name(level: $crate::dispatch::Level, $($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                fn v4($($arg: $ty),*) $(-> $ret)? {
                    $v4($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn v3($($arg: $ty),*) $(-> $ret)? {
                    $v3($($arg),*)
                }
                match $crate::kernels::simd::resolve(level) {
                    $crate::dispatch::Level::Avx512 => {
                        // SAFETY: `resolve` only returns Avx512 when the running CPU reports
                        // avx512f, avx512vl, avx2 and fma, the features `v4` is compiled for.
                        return unsafe { v4($($arg),*) };
                    }
                    $crate::dispatch::Level::Avx2 => {
                        // SAFETY: `resolve` only returns Avx2 (or higher) when the running CPU
                        // reports avx2 and fma, the features `v3` is compiled for.
                        return unsafe { v3($($arg),*) };
                    }
                    $crate::dispatch::Level::Scalar => {}
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _ = level;
            $v0($($arg),*)
        }
    };
}

/// Number of independent accumulators in lane reductions (one zmm / two ymm of f32).
pub(crate) const LANES: usize = 16;

/// Folds 16 lanes pairwise (fixed tree, so deterministic).
#[inline(always)]
pub(crate) fn fold16(mut acc: [f32; LANES]) -> f32 {
    let mut w = LANES / 2;
    while w > 0 {
        for i in 0..w {
            acc[i] += acc[i + w];
        }
        w /= 2;
    }
    acc[0]
}

/// Σ x with 16 f32 lanes.
#[inline(always)]
pub(crate) fn lane_sum(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for ch in chunks {
        for i in 0..LANES {
            acc[i] += ch[i];
        }
    }
    let mut s = fold16(acc);
    for &v in tail {
        s += v;
    }
    s
}

/// Σ a·b with 16 f32 lanes.
#[inline(always)]
pub(crate) fn lane_dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; LANES];
    let ca = a.chunks_exact(LANES);
    let cb = b.chunks_exact(LANES);
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s = fold16(acc);
    for (&x, &y) in ta.iter().zip(tb) {
        s += x * y;
    }
    s
}

/// max x (NaNs are skipped; −∞ for an empty slice).
#[inline(always)]
pub(crate) fn lane_max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for ch in chunks {
        for i in 0..LANES {
            acc[i] = if ch[i] > acc[i] { ch[i] } else { acc[i] };
        }
    }
    let mut m = f32::NEG_INFINITY;
    for v in acc.into_iter().chain(tail.iter().copied()) {
        m = if v > m { v } else { m };
    }
    m
}

/// Σ x with each f32 term widened and accumulated in 16 f64 lanes (fixed fold order);
/// used by the loss kernels for per-row sums.
#[inline(always)]
pub(crate) fn lane_sum_f64(x: &[f32]) -> f64 {
    let mut acc = [0.0f64; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for ch in chunks {
        for i in 0..LANES {
            acc[i] += ch[i] as f64;
        }
    }
    let mut w = LANES / 2;
    while w > 0 {
        for i in 0..w {
            acc[i] += acc[i + w];
        }
        w /= 2;
    }
    let mut s = acc[0];
    for &v in tail {
        s += v as f64;
    }
    s
}
