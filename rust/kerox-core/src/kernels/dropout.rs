//! Inverted dropout with a counter-based RNG: the keep decision for element `i` is a pure
//! function of `(seed, counter, i)`, so masks are reproducible and independent of level,
//! chunking or threading. The per-element hash uses only 32-bit integer ops, so it
//! vectorises at every SIMD level.

/// SplitMix64 finaliser.
#[inline(always)]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// MurmurHash3 32-bit finaliser (a bijection with full avalanche).
#[inline(always)]
fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85EB_CA6B);
    h ^= h >> 13;
    h = h.wrapping_mul(0xC2B2_AE35);
    h ^ (h >> 16)
}

/// Two 32-bit keys for the 2^32-element block `hi` of stream (seed, counter).
#[inline(always)]
fn keys(seed: u64, counter: u64, hi: u64) -> (u32, u32) {
    let k = mix64(
        mix64(seed ^ 0x6A09_E667_F3BC_C908)
            .wrapping_add(counter)
            .wrapping_add(hi.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
    );
    let k = mix64(k);
    (k as u32, (k >> 32) as u32)
}

/// Uniform in [0, 1) with 24 random bits, from the low 32 index bits and the block keys.
#[inline(always)]
fn uniform(k0: u32, k1: u32, lo: u32) -> f32 {
    let h = fmix32(fmix32(lo.wrapping_mul(0x9E37_79B9) ^ k0) ^ k1);
    (h >> 8) as i32 as f32 * (1.0 / 16_777_216.0)
}

/// The uniform draw for element `i` of stream (seed, counter) (used by the tests).
#[cfg(test)]
pub(crate) fn uniform_at(seed: u64, counter: u64, i: u64) -> f32 {
    let (k0, k1) = keys(seed, counter, i >> 32);
    uniform(k0, k1, i as u32)
}

#[inline(always)]
fn forward_body(x: &mut [f32], mask: &mut [f32], rate: f32, seed: u64, counter: u64) {
    assert_eq!(x.len(), mask.len(), "x/mask length");
    let scale = if rate < 1.0 { 1.0 / (1.0 - rate) } else { 0.0 };
    const BLOCK: usize = 1 << 32;
    let mut start = 0usize;
    let mut hi = 0u64;
    while start < x.len() {
        let len = (x.len() - start).min(BLOCK);
        let (k0, k1) = keys(seed, counter, hi);
        let xs = &mut x[start..start + len];
        let ms = &mut mask[start..start + len];
        for (i, (xv, mv)) in xs.iter_mut().zip(ms.iter_mut()).enumerate() {
            let u = uniform(k0, k1, i as u32);
            let mk = if u >= rate { scale } else { 0.0 };
            *mv = mk;
            *xv *= mk;
        }
        start += len;
        hi += 1;
    }
}

multiversion! {
    /// Training dropout: element i kept iff uniform_f32(seed, counter, i) >= rate; kept values
    /// scaled by 1/(1−rate) (as x·mask). Writes mask[i] = 0 or 1/(1−rate). Same
    /// (seed, counter) ⇒ same mask regardless of anything else.
    pub fn dropout_forward(x: &mut [f32], mask: &mut [f32], rate: f32, seed: u64, counter: u64)
        => forward_body;
}

#[inline(always)]
fn backward_body(g: &mut [f32], mask: &[f32]) {
    assert_eq!(g.len(), mask.len(), "g/mask length");
    for (gv, &m) in g.iter_mut().zip(mask) {
        *gv *= m;
    }
}

multiversion! {
    /// g ← g·mask.
    pub fn dropout_backward(g: &mut [f32], mask: &[f32]) => backward_body;
}
