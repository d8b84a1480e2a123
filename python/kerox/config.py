"""Engine settings: thread count and CPU dispatch level.

The thread count is read, in order, from :func:`set_num_threads`, the ``KEROX_NUM_THREADS``
variable, ``RAYON_NUM_THREADS``, then the number of cores. Results are bit-identical for any
thread count.
"""

from __future__ import annotations

from . import _core

__all__ = [
    "cpu_level",
    "dispatch_level",
    "get_num_threads",
    "set_dispatch_level",
    "set_num_threads",
]


def set_num_threads(n: int) -> None:
    """Sets the number of threads kerox trains and predicts with (n ≥ 1)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"`n` must be a positive integer. Received: {n!r}")
    if n < 1:
        raise ValueError(f"`n` must be a positive integer. Received: {n}")
    _core.set_num_threads(n)


def get_num_threads() -> int:
    """Number of threads kerox uses."""
    return int(_core.get_num_threads())


def cpu_level() -> str:
    """The widest instruction set this CPU offers to kerox: 'avx512', 'avx2' or 'scalar'."""
    return str(_core.cpu_level())


def dispatch_level() -> str:
    """The instruction set new models use (``KEROX_DISPATCH`` may lower it)."""
    return str(_core.default_level())


def set_dispatch_level(level: str | None) -> None:
    """Caps the instruction set of models built afterwards ('scalar', 'avx2', 'avx512');
    None restores the default."""
    _core.set_default_level(level)
