"""Global seed source for kerox.

Every unseeded random object in kerox (initializers, shuffling, dropout-like engine state)
asks this module for a seed once, at construction. After :func:`set_seed` the sequence of
seeds handed out is deterministic, so ``keras.utils.set_random_seed(1)`` makes a whole program
reproducible; before it, seeds come from OS entropy (``np.random.SeedSequence()``).

This mirrors Keras 3, where ``keras.random.make_default_seed()`` draws from Python's ``random``
module, which ``keras.utils.set_random_seed`` seeds.
"""

from __future__ import annotations

import threading

import numpy as np

__all__ = ["set_seed", "draw_seed", "make_rng", "SEED_MAX"]

#: Seeds are drawn from ``[0, SEED_MAX)`` so they fit a signed 32-bit integer on every side of
#: the Python/Rust boundary.
SEED_MAX = 2**31 - 1

_lock = threading.Lock()
_rng: np.random.Generator | None = None


def set_seed(seed: int) -> None:
    """Make the sequence of seeds returned by :func:`draw_seed` deterministic.

    Args:
        seed: A non-negative Python integer.

    Raises:
        ValueError: if ``seed`` is not an integer or is negative.
    """
    global _rng
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"Expected `seed` argument to be an integer. Received: seed={seed!r}")
    if seed < 0:
        raise ValueError(f"Expected `seed` argument to be non-negative. Received: seed={seed}")
    with _lock:
        _rng = np.random.default_rng(int(seed))


def draw_seed() -> int:
    """Return a fresh seed in ``[0, SEED_MAX)``.

    Deterministic (the same sequence every time) after :func:`set_seed`; drawn from OS entropy
    otherwise.
    """
    with _lock:
        if _rng is not None:
            return int(_rng.integers(0, SEED_MAX))
    # SeedSequence() with no argument pulls 128 bits of entropy from the OS.
    return int(np.random.SeedSequence().generate_state(1, dtype=np.uint32)[0]) % SEED_MAX


def make_rng(seed: int | None = None) -> np.random.Generator:
    """Return a NumPy generator seeded with ``seed``, or with :func:`draw_seed` if ``None``."""
    return np.random.default_rng(draw_seed() if seed is None else int(seed))


def _reset() -> None:
    """Forget any seed set with :func:`set_seed` (back to OS entropy). For tests."""
    global _rng
    with _lock:
        _rng = None
