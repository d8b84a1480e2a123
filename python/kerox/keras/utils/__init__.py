"""Utilities (``keras.utils``): to_categorical, set_random_seed, normalize, Progbar."""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from kerox import _random
from kerox._progbar import Progbar

from ._py_dataset import PyDataset, Sequence

__all__ = ["PyDataset", "Progbar", "Sequence", "normalize", "set_random_seed", "to_categorical"]


def to_categorical(x: Any, num_classes: int | None = None) -> np.ndarray:
    """Convert a class vector (integers) to a one-hot matrix (``float64``, as Keras returns).

    Follows Keras 3: ``x`` is cast to ``int64`` (floats are truncated); a trailing axis of size
    1 is dropped (``(n, 1)`` -> ``(n, num_classes)``); the class axis is appended last;
    ``num_classes`` defaults to ``max(x) + 1``; negative labels index from the end as in NumPy.
    The engine reads float64 targets in place, converting each batch as it is used.

    Args:
        x: Array-like of class indices in ``[0, num_classes)``.
        num_classes: Total number of classes; ``None`` (or 0) to infer ``max(x) + 1``.

    Returns:
        An array of shape ``x.shape (+ squeeze) + (num_classes,)``.

    Raises:
        IndexError: if a label is ``>= num_classes``.
        ValueError: if ``x`` is empty and ``num_classes`` is not given.
    """
    x = np.array(x, dtype="int64")
    input_shape = x.shape
    if input_shape and input_shape[-1] == 1 and len(input_shape) > 1:
        input_shape = tuple(input_shape[:-1])
    x = x.reshape(-1)
    if not num_classes:
        num_classes = int(np.max(x)) + 1
    categorical = np.zeros((x.shape[0], num_classes), dtype=np.float64)
    categorical[np.arange(x.shape[0]), x] = 1
    return categorical.reshape(input_shape + (num_classes,))


def set_random_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global RNG and kerox's seed source.

    After this call, unseeded initializers, shuffling and every other kerox random draw are
    reproducible.

    Args:
        seed: A Python integer.

    Raises:
        ValueError: if ``seed`` is not a Python ``int`` (same message as Keras).
    """
    if not isinstance(seed, int):
        raise ValueError(
            "Expected `seed` argument to be an integer. "
            f"Received: seed={seed} (of type {type(seed)})"
        )
    random.seed(seed)
    np.random.seed(seed)
    _random.set_seed(int(seed))


def normalize(x: Any, axis: int = -1, order: int = 2) -> np.ndarray:
    """Normalize an array to unit ``order``-norm along ``axis`` (zero vectors unchanged).

    Args:
        x: Array to normalize.
        axis: Axis along which to normalize.
        order: Norm order (``2`` for L2).
    """
    x = np.asarray(x)
    norm = np.atleast_1d(np.linalg.norm(x, order, axis))
    norm[norm == 0] = 1
    axis = axis or -1
    return x / np.expand_dims(norm, axis)
