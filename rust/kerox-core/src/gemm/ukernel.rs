//! Register-tile microkernels, one family per dispatch level.
//!
//! A microkernel computes an `mr × nr` tile `acc = Σ_p a[p, :] ⊗ b[p, :]` over `kc` steps from
//! packed panels and writes it to C, overwriting (`overwrite = true`, C is never read) or adding
//! (`C = C + acc`). Every accumulator lane runs the same chain: `acc = 0; acc = fma(a, b, acc)`
//! for p = 0, 1, .. kc-1 (plain `acc + a*b` at the scalar level), then at most one add into C.
//! Hence a C element's value does not depend on which tile shape or which task computed it,
//! which is what makes results bit-identical for any thread count.
//!
//! Panel layouts (built by `pack.rs`):
//! * A panel: `kc` groups of `mr` floats, `a[p*mr + i]` = A(i, p).
//! * B panel: `kc` groups of `w` floats, `b[p*w + j]` = B(p, j), where `w` is `nr` rounded up to
//!   the level's vector width (zero padded), at most the level's `NR`.

use crate::dispatch::Level;

/// The operands of one microkernel call.
#[derive(Clone, Copy)]
pub(crate) struct Tile {
    /// Depth.
    pub kc: usize,
    /// A(i, p) is `*a.add(i*rs_a + p*cs_a)`: a packed panel (`rs_a = 1`, `cs_a = mr`) or,
    /// when A has a unit stride, the source matrix itself.
    pub a: *const f32,
    pub rs_a: usize,
    pub cs_a: usize,
    /// B(p, j) is `*b.add(p*rs_b + j)`, `w` floats per k step: a packed panel (`rs_b = w`)
    /// or, for full-width panels of a row-major B, the source matrix itself.
    pub b: *const f32,
    pub rs_b: usize,
    /// C(i, j) is `*c.add(i*rs_c + j)`.
    pub c: *mut f32,
    pub rs_c: usize,
    /// Valid columns, `1..=w`.
    pub n_valid: usize,
    /// Store the tile instead of adding it to C (C is then never read).
    pub overwrite: bool,
}

/// Microkernel entry point.
///
/// # Safety
/// A must be readable for `mr` rows × `kc` columns at its strides, B for `kc` rows of `w`
/// floats (stride `rs_b`), C must be valid for reads and writes of `mr` rows of `n_valid`
/// columns (stride `rs_c`) that no other thread accesses during the call; the CPU must
/// support the kernel's level.
pub(crate) type KernelFn = unsafe fn(&Tile);

/// Blocking parameters of one level.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Params {
    /// Rows of the register tile (broadcast operand A).
    pub mr: usize,
    /// Columns of the register tile (vector operand B).
    pub nr: usize,
    /// Vector width in floats: B panels are padded to a multiple of it.
    pub vw: usize,
    /// Depth of one packed block.
    pub kc: usize,
    /// Rows of one packed A block.
    pub mc: usize,
    /// Columns of one packed B block.
    pub nc: usize,
}

/// K block depth: a 256×32 B micro-panel (32 KiB) is reused from L1/L2 by every A micro-panel
/// of the block; 256 is also a common layer width (k ≤ 256 runs as a single block).
const KC: usize = 256;
/// Rows of A packed at once: 240×256×4 B = 240 KiB, a quarter of the 1 MiB per-core L2.
const MC: usize = 240;
/// Columns of B packed at once: 256×1024×4 B = 1 MiB, lives in L2/L3 and is reused by every
/// A block of the task.
const NC: usize = 1024;

/// AVX2 tile 6×16: 12 ymm accumulators + 2 B vectors + 1 broadcast of the 16 ymm registers.
const AVX2_MR: usize = 6;
/// AVX-512 tile 12×32: 24 zmm accumulators + 2 B vectors + broadcasts of the 32 zmm registers.
const AVX512_MR: usize = 12;

impl Params {
    pub(crate) fn of(level: Level) -> Params {
        match level {
            Level::Scalar => Params {
                mr: 4,
                nr: scalar::NR,
                vw: scalar::NR,
                kc: KC,
                mc: MC,
                nc: NC,
            },
            Level::Avx2 => Params {
                mr: AVX2_MR,
                nr: 16,
                vw: 8,
                kc: KC,
                mc: MC,
                nc: NC,
            },
            Level::Avx512 => Params {
                mr: AVX512_MR,
                nr: 32,
                vw: 16,
                kc: KC,
                mc: MC,
                nc: NC,
            },
        }
    }

    /// The kernel for an `mr × w` tile (`mr <= self.mr`, `w` a multiple of `vw`, `<= nr`).
    pub(crate) fn kernel(level: Level, mr: usize, w: usize) -> KernelFn {
        match level {
            Level::Scalar => {
                debug_assert_eq!(w, scalar::NR);
                scalar::KERNELS[mr - 1]
            }
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => avx2::KERNELS[mr - 1][w / 8 - 1],
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => avx512::KERNELS[mr - 1][w / 16 - 1],
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("SIMD level on a non-x86_64 target"),
        }
    }
}

mod scalar {
    use super::{KernelFn, Tile};

    pub(super) const NR: usize = 4;

    pub(super) const KERNELS: [KernelFn; 4] = [kern::<1>, kern::<2>, kern::<3>, kern::<4>];

    /// # Safety
    /// See [`KernelFn`].
    unsafe fn kern<const MR: usize>(t: &Tile) {
        let mut acc = [[0.0f32; NR]; MR];
        for p in 0..t.kc {
            // SAFETY: p < kc, so A column p and B row p are inside the regions the caller
            // guarantees readable (see `KernelFn`): the offsets stay in their allocations.
            let (ap, bp) = unsafe { (t.a.add(p * t.cs_a), t.b.add(p * t.rs_b)) };
            for (i, row) in acc.iter_mut().enumerate() {
                // SAFETY: A(i, p) with i < MR, p < kc is readable (caller).
                let ai = unsafe { *ap.add(i * t.rs_a) };
                for (j, x) in row.iter_mut().enumerate() {
                    // SAFETY: j < NR = w, within B row p's w readable floats (caller).
                    *x += ai * unsafe { *bp.add(j) };
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            for (j, x) in row.iter().take(t.n_valid).enumerate() {
                // SAFETY: i < MR rows, j < n_valid columns at stride rs_c are valid for writes
                // and not accessed by anyone else during the call (caller, see `KernelFn`).
                let dst = unsafe { &mut *t.c.add(i * t.rs_c + j) };
                *dst = if t.overwrite { *x } else { *dst + *x };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{KernelFn, Tile};
    use std::arch::x86_64::*;

    const MR: usize = super::AVX2_MR;
    const NV_MAX: usize = 2;

    macro_rules! row {
        ($mr:literal) => {
            [kern::<$mr, 1>, kern::<$mr, 2>]
        };
    }
    pub(super) const KERNELS: [[KernelFn; NV_MAX]; MR] =
        [row!(1), row!(2), row!(3), row!(4), row!(5), row!(6)];

    /// # Safety
    /// See [`KernelFn`]; requires AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn kern<const MR: usize, const NV: usize>(t: &Tile) {
        let Tile {
            kc,
            a,
            rs_a,
            cs_a,
            b,
            rs_b,
            c,
            rs_c,
            n_valid,
            overwrite,
        } = *t;
        let mut acc = [[_mm256_setzero_ps(); NV]; MR];
        let mut ap = a;
        let mut bp = b;
        for _ in 0..kc {
            let mut bv = [_mm256_setzero_ps(); NV];
            for (v, x) in bv.iter_mut().enumerate() {
                // SAFETY: B row p holds w = NV*8 readable floats (caller).
                *x = unsafe { _mm256_loadu_ps(bp.add(v * 8)) };
            }
            for (i, row) in acc.iter_mut().enumerate() {
                // SAFETY: A(i, p) with i < MR, p < kc is readable (caller).
                let ai = _mm256_set1_ps(unsafe { *ap.add(i * rs_a) });
                for (x, bx) in row.iter_mut().zip(bv.iter()) {
                    *x = _mm256_fmadd_ps(ai, *bx, *x);
                }
            }
            // Wrapping: after the last step `ap` may point past A (never dereferenced).
            ap = ap.wrapping_add(cs_a);
            // Wrapping: after the last step `bp` may point past B (never dereferenced).
            bp = bp.wrapping_add(rs_b);
        }
        if n_valid == NV * 8 {
            for (i, row) in acc.iter().enumerate() {
                for (v, x) in row.iter().enumerate() {
                    // SAFETY: row i < MR, columns v*8..v*8+8 <= n_valid: inside the C tile.
                    unsafe {
                        let p = c.add(i * rs_c + v * 8);
                        let val = if overwrite {
                            *x
                        } else {
                            _mm256_add_ps(_mm256_loadu_ps(p), *x)
                        };
                        _mm256_storeu_ps(p, val);
                    }
                }
            }
        } else {
            let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            for (i, row) in acc.iter().enumerate() {
                for (v, x) in row.iter().enumerate() {
                    let left = n_valid.saturating_sub(v * 8).min(8) as i32;
                    let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(left), lanes);
                    // SAFETY: masked lanes are the columns < n_valid of row i < MR; the masked
                    // load/store never touches the other lanes' memory.
                    unsafe {
                        let p = c.add(i * rs_c + v * 8);
                        let val = if overwrite {
                            *x
                        } else {
                            _mm256_add_ps(_mm256_maskload_ps(p, mask), *x)
                        };
                        _mm256_maskstore_ps(p, mask, val);
                    }
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{KernelFn, Tile};
    use std::arch::x86_64::*;

    const MR: usize = super::AVX512_MR;
    const NV_MAX: usize = 2;

    macro_rules! row {
        ($mr:literal) => {
            [kern::<$mr, 1>, kern::<$mr, 2>]
        };
    }
    pub(super) const KERNELS: [[KernelFn; NV_MAX]; MR] = [
        row!(1),
        row!(2),
        row!(3),
        row!(4),
        row!(5),
        row!(6),
        row!(7),
        row!(8),
        row!(9),
        row!(10),
        row!(11),
        row!(12),
    ];

    /// # Safety
    /// See [`KernelFn`]; requires AVX-512F/VL, AVX2 and FMA.
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    unsafe fn kern<const MR: usize, const NV: usize>(t: &Tile) {
        let Tile {
            kc,
            a,
            rs_a,
            cs_a,
            b,
            rs_b,
            c,
            rs_c,
            n_valid,
            overwrite,
        } = *t;
        let mut acc = [[_mm512_setzero_ps(); NV]; MR];
        let mut ap = a;
        let mut bp = b;
        for _ in 0..kc {
            let mut bv = [_mm512_setzero_ps(); NV];
            for (v, x) in bv.iter_mut().enumerate() {
                // SAFETY: B row p holds w = NV*16 readable floats (caller).
                *x = unsafe { _mm512_loadu_ps(bp.add(v * 16)) };
            }
            for (i, row) in acc.iter_mut().enumerate() {
                // SAFETY: A(i, p) with i < MR, p < kc is readable (caller).
                let ai = _mm512_set1_ps(unsafe { *ap.add(i * rs_a) });
                for (x, bx) in row.iter_mut().zip(bv.iter()) {
                    *x = _mm512_fmadd_ps(ai, *bx, *x);
                }
            }
            // Wrapping: after the last step `ap` may point past A (never dereferenced).
            ap = ap.wrapping_add(cs_a);
            // Wrapping: after the last step `bp` may point past B (never dereferenced).
            bp = bp.wrapping_add(rs_b);
        }
        for (i, row) in acc.iter().enumerate() {
            for (v, x) in row.iter().enumerate() {
                let left = n_valid.saturating_sub(v * 16).min(16);
                let mask: __mmask16 = ((1u32 << left) - 1) as __mmask16;
                // SAFETY: masked lanes are the columns < n_valid of row i < MR; masked-off
                // lanes are neither loaded nor stored (AVX-512 masked memory ops don't fault).
                unsafe {
                    let p = c.add(i * rs_c + v * 16);
                    let val = if overwrite {
                        *x
                    } else {
                        _mm512_add_ps(_mm512_maskz_loadu_ps(mask, p), *x)
                    };
                    _mm512_mask_storeu_ps(p, mask, val);
                }
            }
        }
    }
}
