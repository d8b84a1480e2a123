"""``kerox.data``: the ``tf.data`` API over numpy, in pure Python.

``import kerox as tf`` then ``tf.data.Dataset.from_tensor_slices((x, y)).shuffle(1024)
.batch(32).prefetch(tf.data.AUTOTUNE)``. Elements are numpy arrays / numpy scalars, or tuples
and dicts of them.

Pipelines over in-memory arrays (``from_tensor_slices`` then ``shuffle`` / ``repeat`` /
``cache`` / ``prefetch`` and one ``batch``) also describe themselves as row indices
(``Dataset._array_plan()``, see :mod:`kerox.data._plan`) so ``Model.fit`` can train on them
without Python per batch.
"""

from __future__ import annotations

from . import experimental
from ._dataset import AUTOTUNE, INFINITE_CARDINALITY, UNKNOWN_CARDINALITY, Dataset, Options

# Not public API; re-exported for ``Model.fit`` and tests.
from ._plan import ArrayPlan as ArrayPlan
from ._plan import plan_batches as plan_batches
from ._structure import TensorShape, TensorSpec

__all__ = [
    "AUTOTUNE",
    "INFINITE_CARDINALITY",
    "UNKNOWN_CARDINALITY",
    "Dataset",
    "Options",
    "TensorShape",
    "TensorSpec",
    "experimental",
]
