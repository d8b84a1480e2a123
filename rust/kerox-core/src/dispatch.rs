//! Runtime CPU dispatch level shared by every kernel.
//!
//! Kernels take a [`Level`] argument instead of probing the CPU themselves, so tests can run
//! each kernel at every level the machine has and the engine picks one level per process.
//! `KEROX_DISPATCH=scalar|avx2|avx512` caps the level (it can only lower it: asking for a level
//! the CPU lacks falls back to the best one it has).

use std::sync::atomic::{AtomicU8, Ordering};

/// An instruction-set level, ordered from the most portable to the widest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Plain Rust, no explicit SIMD (the compiler may still use SSE2 on x86-64).
    Scalar,
    /// AVX2 + FMA (x86-64-v3).
    Avx2,
    /// AVX-512 F/VL on top of AVX2 + FMA (x86-64-v4).
    Avx512,
}

impl Level {
    /// Every level, lowest first.
    pub const ALL: [Level; 3] = [Level::Scalar, Level::Avx2, Level::Avx512];

    /// Lower-case name, as accepted by `KEROX_DISPATCH`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Scalar => "scalar",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    /// Parses a `KEROX_DISPATCH` value.
    pub fn parse(s: &str) -> Option<Level> {
        match s.trim().to_ascii_lowercase().as_str() {
            "scalar" | "none" | "generic" => Some(Level::Scalar),
            "avx2" | "fma" | "x86-64-v3" => Some(Level::Avx2),
            "avx512" | "avx512f" | "x86-64-v4" => Some(Level::Avx512),
            _ => None,
        }
    }

    /// The best level this CPU supports (detected once: every kernel call asks).
    pub fn detected() -> Level {
        static DETECTED: std::sync::OnceLock<Level> = std::sync::OnceLock::new();
        *DETECTED.get_or_init(Level::detect)
    }

    fn detect() -> Level {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma");
            let avx512 = avx2
                && std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl");
            if avx512 {
                Level::Avx512
            } else if avx2 {
                Level::Avx2
            } else {
                Level::Scalar
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Level::Scalar
        }
    }

    /// Every level this CPU can run, lowest first (what tests iterate over).
    pub fn available() -> Vec<Level> {
        let best = Level::detected();
        Level::ALL.into_iter().filter(|l| *l <= best).collect()
    }

    /// The level the engine uses: the detected one, capped by `KEROX_DISPATCH` (read once)
    /// and by [`set_max_level`].
    pub fn current() -> Level {
        let cached = CURRENT.load(Ordering::Relaxed);
        if cached != UNSET {
            return Level::ALL[cached as usize];
        }
        let mut level = Level::detected();
        if let Ok(v) = std::env::var("KEROX_DISPATCH") {
            if let Some(cap) = Level::parse(&v) {
                level = level.min(cap);
            }
        }
        CURRENT.store(level as u8, Ordering::Relaxed);
        level
    }
}

const UNSET: u8 = u8::MAX;
static CURRENT: AtomicU8 = AtomicU8::new(UNSET);

/// Caps the process-wide level (never raises it above what the CPU has). `None` resets to
/// the detected level capped by `KEROX_DISPATCH`.
pub fn set_max_level(cap: Option<Level>) {
    CURRENT.store(UNSET, Ordering::Relaxed);
    if let Some(cap) = cap {
        let level = Level::current().min(cap);
        CURRENT.store(level as u8, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trips_names() {
        for l in Level::ALL {
            assert_eq!(Level::parse(l.name()), Some(l));
        }
        assert_eq!(Level::parse("sse9"), None);
    }

    #[test]
    fn available_is_sorted_and_ends_at_detected() {
        let av = Level::available();
        assert_eq!(av[0], Level::Scalar);
        assert_eq!(*av.last().unwrap(), Level::detected());
        assert!(av.windows(2).all(|w| w[0] < w[1]));
    }
}
