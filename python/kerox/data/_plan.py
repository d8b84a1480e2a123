"""Index machinery shared by array-backed iteration and ``Model.fit``'s fast path.

A pipeline ``from_tensor_slices(arrays)`` followed by ``shuffle`` / ``repeat`` / ``cache`` /
``prefetch`` is fully described by the row indices each pass visits; with one ``batch`` on top
(and more ``repeat`` / ``cache`` / ``prefetch``) it is an :class:`ArrayPlan`. Dataset iteration
of such pipelines is implemented *on top of* these objects (gathering rows by index), so the
plan and the iteration give the same batches by construction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

__all__ = ["ArrayPlan", "IndexSource", "plan_batches", "buffer_shuffle", "shuffle_indices"]

T = TypeVar("T")

#: Uniform draws are taken from the generator in blocks of this size (same protocol for the
#: element-stream and the index-array versions of the shuffle, so both give the same order).
_DRAW_BLOCK = 1024


@dataclass
class IndexSource:
    """An unbatched array-backed pipeline.

    Attributes:
        arrays: The nested structure of numpy arrays given to ``from_tensor_slices``.
        n: Number of rows.
        passes_per_iter: Passes one iteration makes (``None``: infinitely many).
        make_passes: Starts one iteration; yields one int64 index array per pass.
    """

    arrays: Any
    n: int
    passes_per_iter: int | None
    make_passes: Callable[[], Iterator[np.ndarray]]


@dataclass
class ArrayPlan:
    """A batched array-backed pipeline, for training without Python per batch.

    Attributes:
        arrays: The nested structure (tuple / dict / array) of the original numpy arrays given
            to ``from_tensor_slices`` (not copies).
        n: Number of rows of those arrays.
        batch_size: Rows per batch.
        drop_remainder: Whether a final short batch is dropped.
        batch_after_repeat: ``True`` when ``repeat`` comes before ``batch``, so batches span pass
            boundaries; ``False`` when each pass is batched on its own.
        repeat: Passes one iteration of the dataset makes (``None``: infinite; 1: no repeat).
    """

    arrays: Any
    n: int
    batch_size: int
    drop_remainder: bool
    batch_after_repeat: bool
    repeat: int | None
    _make_passes: Callable[[], Iterator[np.ndarray]] = field(repr=False)

    def passes(self) -> Iterator[np.ndarray]:
        """Start one iteration of the dataset: yield, per pass, the 1-D int64 row indices in
        the order that pass visits them (each call is a new iteration: a new shuffle order
        when the pipeline reshuffles each iteration)."""
        return self._make_passes()


def plan_batches(plan: ArrayPlan) -> Iterator[np.ndarray]:
    """Yield the row indices of each batch of one iteration of ``plan``, exactly as iterating
    the dataset batches them."""
    bs = plan.batch_size
    if not plan.batch_after_repeat:
        for idx in plan.passes():
            stop = len(idx) - len(idx) % bs if plan.drop_remainder else len(idx)
            for start in range(0, stop, bs):
                yield idx[start : start + bs]
        return
    # Batches run across pass boundaries: carry the tail of one pass into the next.
    carry = np.empty(0, dtype=np.int64)
    for idx in plan.passes():
        stream = np.concatenate([carry, idx]) if len(carry) else idx
        whole = len(stream) - len(stream) % bs
        for start in range(0, whole, bs):
            yield stream[start : start + bs]
        carry = stream[whole:]
    if len(carry) and not plan.drop_remainder:
        yield carry


def buffer_shuffle(items: Iterable[T], buffer_size: int, rng: np.random.Generator) -> Iterator[T]:
    """``tf.data``'s buffered shuffle of a stream.

    The first ``buffer_size`` items fill a buffer; then, for each further input item, a
    uniformly chosen buffer slot is emitted and refilled with that item; once the input is
    exhausted the remaining buffer is emitted in a uniformly random order. An item at input
    position ``i`` is therefore never emitted before output position ``i - buffer_size + 1``;
    when the whole input fits in the buffer the result is a uniform permutation.
    """
    it = iter(items)
    buf: list[T] = []
    for item in it:
        buf.append(item)
        if len(buf) == buffer_size:
            break
    k = 0
    draws = np.empty(0)
    for item in it:
        if k % _DRAW_BLOCK == 0:
            draws = rng.random(_DRAW_BLOCK)
        j = int(draws[k % _DRAW_BLOCK] * buffer_size)
        k += 1
        yield buf[j]
        buf[j] = item
    for j in rng.permutation(len(buf)).tolist():
        yield buf[j]


def shuffle_indices(idx: np.ndarray, buffer_size: int, rng: np.random.Generator) -> np.ndarray:
    """:func:`buffer_shuffle` of an index array (same draws, so the same order)."""
    if len(idx) <= buffer_size:
        # buffer_shuffle draws nothing but this permutation when the input fits the buffer.
        return idx[rng.permutation(len(idx))]
    out = np.fromiter(buffer_shuffle(idx.tolist(), buffer_size, rng), np.int64, count=len(idx))
    return out
