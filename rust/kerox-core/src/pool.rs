//! The one thread pool kerox runs on.
//!
//! A dedicated rayon pool (not the global one, so we never fight other Rust extensions in the
//! same interpreter). Callers enter it once per engine call with [`install`]; kernels inside
//! then split work with rayon at sub-microsecond cost instead of ~10 µs per entry from outside.
//! Size: `set_num_threads` > `KEROX_NUM_THREADS` > `RAYON_NUM_THREADS` > available cores.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::error::{Error, Result};

static POOL: OnceLock<RwLock<Option<Arc<ThreadPool>>>> = OnceLock::new();
/// The count given to [`set_num_threads`] (0: none), so a pool rebuilt after `fork` keeps it.
static REQUESTED: AtomicUsize = AtomicUsize::new(0);

fn slot() -> &'static RwLock<Option<Arc<ThreadPool>>> {
    POOL.get_or_init(|| RwLock::new(None))
}

fn env_threads(name: &str) -> Option<usize> {
    std::env::var(name)
        .ok()?
        .trim()
        .parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
}

/// The thread count a fresh pool gets when none was set explicitly.
pub fn default_num_threads() -> usize {
    env_threads("KEROX_NUM_THREADS")
        .or_else(|| env_threads("RAYON_NUM_THREADS"))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn build(n: usize) -> Result<Arc<ThreadPool>> {
    ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("kerox-{i}"))
        .build()
        .map(Arc::new)
        .map_err(|e| Error::State(format!("could not start {n} worker threads: {e}")))
}

/// The current pool, created on first use.
pub fn pool() -> Result<Arc<ThreadPool>> {
    if let Some(p) = slot().read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return Ok(Arc::clone(p));
    }
    let mut guard = slot().write().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = guard.as_ref() {
        return Ok(Arc::clone(p));
    }
    let n = match REQUESTED.load(Ordering::Relaxed) {
        0 => default_num_threads(),
        n => n,
    };
    let p = build(n)?;
    *guard = Some(Arc::clone(&p));
    Ok(p)
}

/// Replaces the pool with one of `n` threads (`n` ≥ 1). Engines pick it up on their next call.
pub fn set_num_threads(n: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::Value(
            "num_threads must be a positive integer. Received: 0".into(),
        ));
    }
    let p = build(n)?;
    *slot().write().unwrap_or_else(|e| e.into_inner()) = Some(p);
    REQUESTED.store(n, Ordering::Relaxed);
    Ok(())
}

/// Threads in the current pool.
pub fn num_threads() -> usize {
    pool().map_or(1, |p| p.current_num_threads())
}

/// Forgets the pool without joining its threads: used in a child after `fork`, where the
/// parent's worker threads do not exist. The next call builds a fresh pool of the same size
/// if the size was set with [`set_num_threads`].
pub fn forget_after_fork() {
    if let Some(lock) = POOL.get() {
        let mut guard = lock.write().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = guard.take() {
            // The worker threads were not copied into the child; dropping the handle would
            // try to signal them, so leak it instead.
            std::mem::forget(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_and_read_thread_count() {
        set_num_threads(3).unwrap();
        assert_eq!(num_threads(), 3);
        assert!(set_num_threads(0).is_err());
        set_num_threads(1).unwrap();
        assert_eq!(pool().unwrap().install(rayon::current_num_threads), 1);
    }
}
