"""``tf.data.experimental``: the constants and helpers scripts still reach for there."""

from __future__ import annotations

import enum

from ._dataset import AUTOTUNE, INFINITE_CARDINALITY, UNKNOWN_CARDINALITY, Dataset

__all__ = [
    "AUTOTUNE",
    "INFINITE_CARDINALITY",
    "UNKNOWN_CARDINALITY",
    "AutoShardPolicy",
    "cardinality",
]


class AutoShardPolicy(enum.IntEnum):
    """``tf.data.experimental.AutoShardPolicy``; accepted in options, no effect here."""

    OFF = -1
    AUTO = 0
    FILE = 1
    DATA = 2
    HINT = 3


def cardinality(dataset: Dataset) -> int:
    """``dataset.cardinality()``: the number of elements, or ``INFINITE_CARDINALITY`` (-1) /
    ``UNKNOWN_CARDINALITY`` (-2)."""
    if not isinstance(dataset, Dataset):
        raise TypeError(
            f"Expected `dataset` to be a tf.data.Dataset. Received: {type(dataset).__name__}"
        )
    return dataset.cardinality()
