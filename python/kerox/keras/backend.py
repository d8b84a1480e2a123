"""``keras.backend``: session reset, variable values and the global settings of
:mod:`kerox.keras.config`.

Besides Keras 3's ``keras.backend`` functions this offers ``get_value``, ``set_value`` and
``count_params`` from ``tf.keras.backend``, which scripts use to read and change
``model.optimizer.learning_rate`` during training.
"""

from __future__ import annotations

import gc
import math
from typing import Any

import numpy as np

from .config import (
    backend,
    epsilon,
    floatx,
    image_data_format,
    set_epsilon,
    set_floatx,
    set_image_data_format,
)
from .layers import _NAME_UIDS, KerasTensor, _snake_case

__all__ = [
    "backend",
    "clear_session",
    "count_params",
    "epsilon",
    "floatx",
    "get_uid",
    "get_value",
    "image_data_format",
    "is_keras_tensor",
    "set_epsilon",
    "set_floatx",
    "set_image_data_format",
    "set_value",
]


def clear_session(free_memory: bool = True) -> None:
    """Reset Keras's global state: automatic names start over (the next ``Dense`` is named
    ``dense`` again).

    kerox keeps no other global state: each model owns its engine, which is freed with the
    model. With ``free_memory`` (the default) a garbage collection runs so models that are no
    longer referenced release their engines now.

    Args:
        free_memory: Whether to run the garbage collector.
    """
    _NAME_UIDS.clear()
    if free_memory:
        gc.collect()


def get_uid(prefix: str = "") -> int:
    """A per-prefix counter starting at 1, shared with layer auto-naming (``get_uid("dense")``
    after one ``Dense()`` returns 2)."""
    key = _snake_case(prefix)
    _NAME_UIDS[key] = _NAME_UIDS.get(key, 0) + 1
    return _NAME_UIDS[key]


def get_value(x: Any) -> np.ndarray:
    """The NumPy value of ``x``: a model variable, an optimizer variable (such as
    ``model.optimizer.learning_rate``), an array or a number.

    Raises:
        TypeError: if ``x`` is a symbolic tensor from ``keras.Input`` (it has no value).
    """
    if isinstance(x, KerasTensor):
        raise TypeError(
            "`get_value` needs a variable or an array; `x` is a symbolic tensor from "
            f"`keras.Input` (shape {x.shape}) and has no value."
        )
    if hasattr(x, "numpy"):
        return np.asarray(x.numpy())
    return np.asarray(x)


def set_value(x: Any, value: Any) -> None:
    """Assign ``value`` to the variable ``x`` (a model variable, or an optimizer variable such
    as ``model.optimizer.learning_rate``; the change applies from the next training step).

    Raises:
        TypeError: if ``x`` is not an assignable variable.
        ValueError: if ``value`` is not numeric, has another shape than ``x``, or is not an
            integer for an integer variable.
    """
    if not (hasattr(x, "assign") and hasattr(x, "shape") and hasattr(x, "dtype")):
        raise TypeError(
            "`set_value` needs a variable as `x` (a layer weight or an optimizer variable such "
            f"as `model.optimizer.learning_rate`). Received: x of type {type(x).__name__}"
            + (
                " (a learning rate driven by a schedule cannot be set)"
                if isinstance(x, (float, np.floating))
                else ""
            )
        )
    arr = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ValueError(
            f"`value` must be numeric to assign to '{x.path}'. Received: value={value!r}"
        )
    shape = tuple(x.shape)
    if arr.shape != shape:
        raise ValueError(
            f"`value` must have the shape of `x` ('{x.path}', shape {shape}). "
            f"Received: value.shape={arr.shape}"
        )
    dtype = np.dtype(x.dtype)
    if np.issubdtype(dtype, np.integer) and not np.array_equal(arr, np.trunc(arr)):
        raise ValueError(
            f"`value` must hold integers for the {dtype} variable '{x.path}'. "
            f"Received: value={value!r}"
        )
    x.assign(arr.astype(dtype))


def count_params(x: Any) -> int:
    """The number of scalars in ``x``: a variable or array, or a built layer or model."""
    if hasattr(x, "count_params"):
        return int(x.count_params())
    return int(math.prod(np.shape(x) if not hasattr(x, "shape") else tuple(x.shape)))


def is_keras_tensor(x: Any) -> bool:
    """Whether ``x`` is a symbolic tensor returned by ``keras.Input``."""
    return isinstance(x, KerasTensor)


def __getattr__(name: str) -> Any:
    from kerox._tf import unsupported_message

    raise AttributeError(unsupported_message(__name__, name, __all__))


def __dir__() -> list[str]:
    return list(__all__)
