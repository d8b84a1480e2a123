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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::Level;
    use crate::kernels::testutil::*;

    #[test]
    fn mask_matches_definition_and_scales() {
        let mut rng = Rng::new(60);
        for level in levels() {
            for &rows in &ROWS {
                for &cols in &COLS {
                    let n = rows * cols;
                    for rate in [0.0f32, 0.1, 0.5, 0.9] {
                        let x0 = rng.vec(n, -1.0, 1.0);
                        let mut x = x0.clone();
                        let mut mask = vec![f32::NAN; n];
                        dropout_forward(level, &mut x, &mut mask, rate, 1234, 7);
                        let scale = 1.0 / (1.0 - rate);
                        for i in 0..n {
                            let keep = uniform_at(1234, 7, i as u64) >= rate;
                            assert_eq!(mask[i], if keep { scale } else { 0.0 }, "{level:?} i={i}");
                            assert_eq!(x[i], x0[i] * mask[i]);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn same_seed_and_counter_give_same_mask_everywhere() {
        let n = 10_007;
        let run = |level: Level, seed: u64, counter: u64, len: usize| {
            let mut x = vec![1.0f32; len];
            let mut mask = vec![0.0f32; len];
            dropout_forward(level, &mut x, &mut mask, 0.3, seed, counter);
            mask
        };
        let base = run(Level::Scalar, 42, 3, n);
        for level in levels() {
            assert_eq!(run(level, 42, 3, n), base, "{level:?}");
            // a prefix of the stream is the same regardless of the slice length
            assert_eq!(run(level, 42, 3, 100)[..], base[..100]);
        }
        // other counters / seeds give different masks
        assert_ne!(run(Level::Scalar, 42, 4, n), base);
        assert_ne!(run(Level::Scalar, 43, 3, n), base);
    }

    #[test]
    fn keep_rate_and_uniformity() {
        let n = 1 << 20;
        for rate in [0.1f32, 0.5, 0.8] {
            let mut x = vec![1.0f32; n];
            let mut mask = vec![0.0f32; n];
            dropout_forward(Level::detected(), &mut x, &mut mask, rate, 9, 1);
            let kept = mask.iter().filter(|&&m| m != 0.0).count() as f64 / n as f64;
            let sd = ((rate * (1.0 - rate)) as f64 / n as f64).sqrt();
            assert!(
                (kept - (1.0 - rate as f64)).abs() < 5.0 * sd,
                "rate {rate}: kept {kept}"
            );
            // E[x·mask] = x
            let mean: f64 = x.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
            assert!((mean - 1.0).abs() < 0.01, "rate {rate}: mean {mean}");
        }
        // uniform draws cover [0, 1) evenly (16 bins, chi-square-ish bound)
        let mut bins = [0usize; 16];
        for i in 0..(1u64 << 18) {
            let u = uniform_at(5, 6, i);
            assert!((0.0..1.0).contains(&u));
            bins[(u * 16.0) as usize] += 1;
        }
        let e = (1u64 << 18) as f64 / 16.0;
        let chi2: f64 = bins.iter().map(|&b| (b as f64 - e).powi(2) / e).sum();
        assert!(chi2 < 50.0, "chi2 {chi2}");
    }

    #[test]
    fn edge_rates_and_backward() {
        for level in levels() {
            let mut x = vec![2.0f32; 37];
            let mut mask = vec![9.0f32; 37];
            dropout_forward(level, &mut x, &mut mask, 0.0, 1, 2);
            assert!(x.iter().all(|&v| v == 2.0) && mask.iter().all(|&m| m == 1.0));
            dropout_forward(level, &mut x, &mut mask, 1.0, 1, 2);
            assert!(x.iter().all(|&v| v == 0.0) && mask.iter().all(|&m| m == 0.0));
            let mask: Vec<f32> = (0..37)
                .map(|i| if i % 3 == 0 { 0.0 } else { 2.0 })
                .collect();
            let mut g: Vec<f32> = (0..37).map(|i| i as f32).collect();
            dropout_backward(level, &mut g, &mask);
            for (i, v) in g.iter().enumerate() {
                assert_eq!(*v, i as f32 * mask[i]);
            }
        }
    }
}
