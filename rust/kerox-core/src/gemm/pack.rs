//! Packing of strided operands into the contiguous panels the microkernels read
//! (layouts documented in `ukernel.rs`). Packing absorbs every stride pattern, so the
//! microkernels only ever see unit-stride panels.

use super::MatRef;
use crate::dispatch::Level;

/// Packs the block A[i0..i0+mc, p0..p0+kc] into row panels of `mr` rows; the last panel has
/// its exact height `h = mc % mr` (stride `h`), and panel `q` starts at `q*mr*kc`.
///
/// # Safety
/// `a` must be valid for every element of the block (checked once by `matmul`), and
/// `dst` must hold `mc*kc` floats.
pub(super) unsafe fn pack_a(
    dst: &mut [f32],
    a: &MatRef<'_>,
    i0: usize,
    mc: usize,
    p0: usize,
    kc: usize,
    mr: usize,
) {
    debug_assert!(dst.len() >= mc * kc);
    let (rs, cs) = (a.row_stride, a.col_stride);
    let src = a.data.as_ptr();
    let out = dst.as_mut_ptr();
    for ii in (0..mc).step_by(mr) {
        let h = mr.min(mc - ii);
        // SAFETY: panel `ii` occupies dst[ii*kc .. ii*kc + h*kc] ⊆ dst[..mc*kc].
        let panel = unsafe { out.add(ii * kc) };
        let base = (i0 + ii) * rs + p0 * cs;
        if rs == 1 {
            // Column-major A (e.g. `X.t()`): each k step is a contiguous run of h floats.
            for p in 0..kc {
                // SAFETY: A(i0+ii+i, p0+p) for i < h is in bounds (caller); the destination
                // group p of the panel holds h floats.
                unsafe {
                    std::ptr::copy_nonoverlapping(src.add(base + p * cs), panel.add(p * h), h)
                };
            }
        } else {
            for i in 0..h {
                for p in 0..kc {
                    // SAFETY: A(i0+ii+i, p0+p) is in bounds (caller); p*h+i < h*kc.
                    unsafe { *panel.add(p * h + i) = *src.add(base + i * rs + p * cs) };
                }
            }
        }
    }
}

/// Packs the block B[p0..p0+kc, j0..j0+nc] into column panels of `nr` columns; the last panel
/// holds `nc % nr` columns zero-padded to a multiple of `vw`. Panel `q` starts at `q*nr*kc`.
///
/// # Safety
/// `b` must be valid for every element of the block (checked once by `matmul`), and `dst`
/// must hold `round_up(nc, vw)*kc` floats (at most `round_up(nc, nr)*kc`).
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn pack_b(
    level: Level,
    dst: &mut [f32],
    b: &MatRef<'_>,
    p0: usize,
    kc: usize,
    j0: usize,
    nc: usize,
    nr: usize,
    vw: usize,
) {
    debug_assert!(dst.len() >= nc.div_ceil(vw) * vw * kc);
    let (rs, cs) = (b.row_stride, b.col_stride);
    let src = b.data.as_ptr();
    let out = dst.as_mut_ptr();
    for jj in (0..nc).step_by(nr) {
        let cnt = nr.min(nc - jj);
        let w = cnt.div_ceil(vw) * vw;
        // SAFETY: panel `jj` occupies dst[jj*kc .. jj*kc + w*kc], inside dst (see above).
        let panel = unsafe { out.add(jj * kc) };
        let base = p0 * rs + (j0 + jj) * cs;
        if cs == 1 {
            // Row-major B: each k step is a contiguous run of cnt floats.
            // SAFETY: B(p0+p, j0+jj+j) for p < kc, j < cnt is in bounds (caller); the panel
            // holds kc groups of w >= cnt floats.
            unsafe {
                match (cnt, w) {
                    (32, 32) => copy_rows::<32>(src.add(base), rs, panel, kc),
                    (16, 16) => copy_rows::<16>(src.add(base), rs, panel, kc),
                    (4, 4) => copy_rows::<4>(src.add(base), rs, panel, kc),
                    _ => {
                        for p in 0..kc {
                            let d = panel.add(p * w);
                            std::ptr::copy_nonoverlapping(src.add(base + p * rs), d, cnt);
                            std::ptr::write_bytes(d.add(cnt), 0, w - cnt);
                        }
                    }
                }
            }
        } else if rs == 1 {
            // Column-major B (e.g. `W.t()`): column j is a contiguous run of kc floats.
            #[cfg(target_arch = "x86_64")]
            if level >= Level::Avx2 {
                // SAFETY: columns j < cnt of kc floats are in bounds (caller), the panel holds
                // kc*w floats, and AVX2 is available at this level (asserted by `matmul`).
                unsafe { transpose_panel_avx2(src.add(base), cs, panel, kc, cnt, w) };
                continue;
            }
            let _ = level;
            for j in 0..w {
                for p in 0..kc {
                    // SAFETY: for j < cnt, B(p0+p, j0+jj+j) is in bounds (caller);
                    // p*w+j < w*kc.
                    unsafe {
                        *panel.add(p * w + j) = if j < cnt {
                            *src.add(base + j * cs + p)
                        } else {
                            0.0
                        };
                    }
                }
            }
        } else {
            for p in 0..kc {
                for j in 0..w {
                    // SAFETY: for j < cnt, B(p0+p, j0+jj+j) is in bounds (caller);
                    // p*w+j < w*kc.
                    unsafe {
                        *panel.add(p * w + j) = if j < cnt {
                            *src.add(base + p * rs + j * cs)
                        } else {
                            0.0
                        };
                    }
                }
            }
        }
    }
}

/// Copies `kc` rows of `N` floats (source row stride `rs`) into a dense `kc × N` panel.
///
/// # Safety
/// Source rows and the `kc*N` destination floats must be valid.
#[inline(always)]
unsafe fn copy_rows<const N: usize>(src: *const f32, rs: usize, dst: *mut f32, kc: usize) {
    for p in 0..kc {
        // SAFETY: row p of the source holds N floats; destination group p holds N floats.
        unsafe { std::ptr::copy_nonoverlapping(src.add(p * rs), dst.add(p * N), N) };
    }
}

/// Packs a column-major block (column j is `kc` contiguous floats at `src + j*cs`) of `cnt`
/// columns into `kc` groups of `w` floats, zero-padding columns `cnt..w`.
///
/// # Safety
/// Columns `0..cnt` of `kc` floats must be readable; `dst` must hold `kc*w` floats; the CPU
/// must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn transpose_panel_avx2(
    src: *const f32,
    cs: usize,
    dst: *mut f32,
    kc: usize,
    cnt: usize,
    w: usize,
) {
    use std::arch::x86_64::*;
    let full_j = cnt / 8 * 8;
    let full_p = kc / 8 * 8;
    for j in (0..full_j).step_by(8) {
        for p in (0..full_p).step_by(8) {
            // SAFETY: columns j..j+8 < cnt, rows p..p+8 <= kc: all loads are in the block; the
            // stores write groups p..p+8, floats j..j+8 < w of the panel.
            unsafe {
                let s = src.add(j * cs + p);
                let r0 = _mm256_loadu_ps(s);
                let r1 = _mm256_loadu_ps(s.add(cs));
                let r2 = _mm256_loadu_ps(s.add(2 * cs));
                let r3 = _mm256_loadu_ps(s.add(3 * cs));
                let r4 = _mm256_loadu_ps(s.add(4 * cs));
                let r5 = _mm256_loadu_ps(s.add(5 * cs));
                let r6 = _mm256_loadu_ps(s.add(6 * cs));
                let r7 = _mm256_loadu_ps(s.add(7 * cs));
                let t0 = _mm256_unpacklo_ps(r0, r1);
                let t1 = _mm256_unpackhi_ps(r0, r1);
                let t2 = _mm256_unpacklo_ps(r2, r3);
                let t3 = _mm256_unpackhi_ps(r2, r3);
                let t4 = _mm256_unpacklo_ps(r4, r5);
                let t5 = _mm256_unpackhi_ps(r4, r5);
                let t6 = _mm256_unpacklo_ps(r6, r7);
                let t7 = _mm256_unpackhi_ps(r6, r7);
                let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
                let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
                let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
                let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
                let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
                let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
                let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
                let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
                let d = dst.add(p * w + j);
                _mm256_storeu_ps(d, _mm256_permute2f128_ps::<0x20>(u0, u4));
                _mm256_storeu_ps(d.add(w), _mm256_permute2f128_ps::<0x20>(u1, u5));
                _mm256_storeu_ps(d.add(2 * w), _mm256_permute2f128_ps::<0x20>(u2, u6));
                _mm256_storeu_ps(d.add(3 * w), _mm256_permute2f128_ps::<0x20>(u3, u7));
                _mm256_storeu_ps(d.add(4 * w), _mm256_permute2f128_ps::<0x31>(u0, u4));
                _mm256_storeu_ps(d.add(5 * w), _mm256_permute2f128_ps::<0x31>(u1, u5));
                _mm256_storeu_ps(d.add(6 * w), _mm256_permute2f128_ps::<0x31>(u2, u6));
                _mm256_storeu_ps(d.add(7 * w), _mm256_permute2f128_ps::<0x31>(u3, u7));
            }
        }
        for p in full_p..kc {
            for jj in j..j + 8 {
                // SAFETY: column jj < cnt, row p < kc; destination p*w+jj < kc*w.
                unsafe { *dst.add(p * w + jj) = *src.add(jj * cs + p) };
            }
        }
    }
    for jj in full_j..w {
        for p in 0..kc {
            // SAFETY: column jj < cnt is readable; destination p*w+jj < kc*w.
            unsafe { *dst.add(p * w + jj) = if jj < cnt { *src.add(jj * cs + p) } else { 0.0 } };
        }
    }
}
