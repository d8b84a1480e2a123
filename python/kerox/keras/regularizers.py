"""Weight regularizers (``keras.regularizers``): Keras 3's names, defaults, configs and values.

A regularizer on a layer's variable (``Dense(kernel_regularizer=L2(1e-4))``) adds its penalty
to the training and evaluation loss, as Keras adds ``model.losses``; the engine computes it
(and its gradient) each step from the variable's values before the step. Like Keras, only the
trainable variables count: a frozen layer's regularizers add nothing.

The engine runs :class:`L1`, :class:`L2` and :class:`L1L2` (``l1·Σ|w| + l2·Σw²``).
:class:`OrthogonalRegularizer` can be called on an array but not put on a layer yet, and
neither can a custom regularizer (the engine cannot call Python each step). kerox also
refuses factors that are not finite numbers ``>= 0``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = [
    "L1",
    "L1L2",
    "L2",
    "OrthogonalRegularizer",
    "Regularizer",
    "deserialize",
    "get",
    "l1",
    "l1_l2",
    "l2",
    "orthogonal_regularizer",
    "serialize",
]


def validate_float_arg(value: Any, name: str) -> float:
    """``value`` as a float if it is a finite real number ``>= 0``; else a ValueError naming
    the argument."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(float(value))
        or float(value) < 0
    ):
        raise ValueError(
            f"Invalid value for argument {name}: expected a non-negative float. "
            f"Received: {name}={value!r}"
        )
    return float(value)


def _as_float32(x: Any) -> np.ndarray:
    return np.asarray(getattr(x, "numpy", lambda: x)(), dtype=np.float32)


class Regularizer:
    """Base class of regularizers: ``regularizer(x)`` is a penalty on the array ``x``.

    The base class's penalty is 0. Subclasses implement ``__call__`` and ``get_config``; kerox
    layers accept only :class:`L1`, :class:`L2` and :class:`L1L2`.
    """

    def __call__(self, x: Any) -> np.float32:
        """The penalty of ``x`` (a float32 scalar)."""
        return np.float32(0.0)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Regularizer:
        """Creates a regularizer from :meth:`get_config` output."""
        return cls(**config)

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, as a JSON-serializable dict."""
        raise NotImplementedError(f"{self} does not implement get_config()")


class L1L2(Regularizer):
    """``l1·Σ|x| + l2·Σx²``.

    Args:
        l1: L1 factor (``None`` means 0).
        l2: L2 factor (``None`` means 0).
    """

    def __init__(self, l1: float | None = 0.0, l2: float | None = 0.0) -> None:
        self.l1 = validate_float_arg(0.0 if l1 is None else l1, name="l1")
        self.l2 = validate_float_arg(0.0 if l2 is None else l2, name="l2")

    def __call__(self, x: Any) -> np.float32:
        """The penalty of ``x`` (float32; the sums are taken in float64, then rounded)."""
        return _penalty(_as_float32(x), self.l1, self.l2)

    def get_config(self) -> dict[str, Any]:
        """``{"l1": ..., "l2": ...}``."""
        return {"l1": self.l1, "l2": self.l2}


class L1(Regularizer):
    """``l1·Σ|x|``. Like Keras, the factor is kept in float32 (``get_config`` shows it so).

    Args:
        l1: L1 factor (``None`` means 0.01).
    """

    def __init__(self, l1: float | None = 0.01) -> None:
        value = validate_float_arg(0.01 if l1 is None else l1, name="l1")
        self.l1 = float(np.float32(value))

    def __call__(self, x: Any) -> np.float32:
        """The penalty of ``x`` (a float32 scalar)."""
        return _penalty(_as_float32(x), self.l1, 0.0)

    def get_config(self) -> dict[str, Any]:
        """``{"l1": ...}``."""
        return {"l1": self.l1}


class L2(Regularizer):
    """``l2·Σx²``.

    Args:
        l2: L2 factor (``None`` means 0.01).
    """

    def __init__(self, l2: float | None = 0.01) -> None:
        self.l2 = validate_float_arg(0.01 if l2 is None else l2, name="l2")

    def __call__(self, x: Any) -> np.float32:
        """The penalty of ``x`` (a float32 scalar)."""
        return _penalty(_as_float32(x), 0.0, self.l2)

    def get_config(self) -> dict[str, Any]:
        """``{"l2": ...}``."""
        return {"l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """Pushes the rows (``mode="rows"``) or columns of a 2-D array towards orthogonality:
    ``factor · 0.5 · Σ|offdiag(N Nᵀ)| / (n(n−1)/2)`` with ``N`` the L2-normalized rows.

    kerox computes it on arrays only: a layer given one refuses it (the engine has no
    orthogonal penalty yet).
    """

    def __init__(self, factor: float = 0.01, mode: str = "rows") -> None:
        self.factor = float(np.float32(validate_float_arg(factor, name="factor")))
        if mode not in {"rows", "columns"}:
            raise ValueError(
                'Invalid value for argument `mode`. Expected one of {"rows", "columns"}. '
                f"Received: mode={mode}"
            )
        self.mode = mode

    def __call__(self, inputs: Any) -> np.float32:
        """The penalty of a 2-D array."""
        x = _as_float32(inputs).astype(np.float64)
        if x.ndim != 2:
            raise ValueError(
                "Inputs to OrthogonalRegularizer must have rank 2. "
                f"Received: inputs.shape={x.shape}"
            )
        if self.mode == "columns":
            x = x.T
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        norm[norm == 0] = 1.0
        x = x / norm
        product = x @ x.T
        size = x.shape[0]
        off = np.abs(product * (1.0 - np.eye(size))).sum()
        num_pairs = size * (size - 1.0) / 2.0
        return np.float32(self.factor * 0.5 * off / num_pairs)

    def get_config(self) -> dict[str, Any]:
        """``{"factor": ..., "mode": ...}``."""
        return {"factor": self.factor, "mode": self.mode}


def _penalty(x: np.ndarray, l1: float, l2: float) -> np.float32:
    # Keras casts each factor to the array's dtype (float32) and sums in float32; the sums
    # here are in float64 (as the engine's), so the result is the float32 rounding of the
    # float32-factor penalty.
    total = 0.0
    if l1 != 0.0:
        total += float(np.float32(l1)) * float(np.abs(x, dtype=np.float64).sum())
    if l2 != 0.0:
        total += float(np.float32(l2)) * float(np.square(x, dtype=np.float64).sum())
    return np.float32(total)


#: Aliases, as ``keras.regularizers`` exports them (``l1_l2`` is the ``L1L2`` class).
l1 = L1
l2 = L2
l1_l2 = L1L2
orthogonal_regularizer = OrthogonalRegularizer

_CLASSES: tuple[type[Regularizer], ...] = (Regularizer, L1, L2, L1L2, OrthogonalRegularizer)
#: The names ``get``/``deserialize`` accept: Keras's class names and their snake case
#: (``"l1l2"``, not ``"l1_l2"``, exactly as Keras's ``get``).
_BY_NAME: dict[str, type[Regularizer]] = {cls.__name__: cls for cls in _CLASSES}
_BY_NAME.update(
    {
        "regularizer": Regularizer,
        "l1": L1,
        "l2": L2,
        "l1l2": L1L2,
        "orthogonal_regularizer": OrthogonalRegularizer,
    }
)
_MODULES = (None, "keras.regularizers", "keras.src.regularizers", "keras")


def serialize(regularizer: Regularizer | None) -> dict[str, Any] | None:
    """Keras 3's serialized form ``{"module": "keras.regularizers", "class_name": ...,
    "config": ..., "registered_name": None}`` (``None`` for ``None``)."""
    if regularizer is None:
        return None
    if not isinstance(regularizer, Regularizer) or type(regularizer) not in _CLASSES:
        raise ValueError(
            f"kerox can serialize its built-in regularizers only. Received: {regularizer!r}"
        )
    return {
        "module": "keras.regularizers",
        "class_name": type(regularizer).__name__,
        "config": regularizer.get_config(),
        "registered_name": None,
    }


def deserialize(
    config: dict[str, Any] | str, custom_objects: Mapping[str, Any] | None = None
) -> Regularizer:
    """Rebuilds a regularizer from :func:`serialize` output (or a name).

    Raises:
        ValueError: the config does not name a known regularizer, or its factors are invalid.
    """
    if isinstance(config, str):
        found = (custom_objects or {}).get(config) or _BY_NAME.get(config)
        if found is None:
            raise ValueError(f"Could not interpret regularizer identifier: {config}")
        return found() if isinstance(found, type) else found
    if not isinstance(config, dict):
        raise ValueError(f"Could not interpret regularizer identifier: {config!r}")
    name = config.get("class_name")
    module = config.get("module")
    cls: Any = None
    if isinstance(name, str):
        if custom_objects and name in custom_objects:
            cls = custom_objects[name]
        elif module in _MODULES:
            cls = _BY_NAME.get(name)
    if cls is None:
        raise ValueError(f"Could not interpret regularizer identifier: {config}")
    inner = config.get("config") or {}
    if not isinstance(inner, dict):
        raise ValueError(f"Invalid regularizer config for '{name}': {inner!r}")
    try:
        return cls.from_config(dict(inner))
    except TypeError as e:
        raise ValueError(f"Invalid regularizer config for '{name}': {e}") from None


def get(identifier: Any) -> Regularizer | Callable[..., Any] | None:
    """A regularizer from ``identifier``: ``None``, a name (``"l1"``, ``"L2"``, ``"l1l2"``,
    ...; defaults as the class's), a serialized dict, a class, or an instance/callable
    (returned as is).

    Raises:
        ValueError: ``Could not interpret regularizer identifier: <identifier>``.
    """
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        obj: Any = deserialize(identifier)
    elif isinstance(identifier, str):
        obj = _BY_NAME.get(identifier)
    else:
        obj = identifier
    if isinstance(obj, type):
        return obj()
    if callable(obj):
        return obj
    raise ValueError(f"Could not interpret regularizer identifier: {identifier}")


def engine_factors(regularizer: Any, where: str) -> tuple[float, float]:
    """``(l1, l2)`` of a regularizer the engine runs; ValueError for any other (``where``
    names the layer argument)."""
    if type(regularizer) is L1:
        return (regularizer.l1, 0.0)
    if type(regularizer) is L2:
        return (0.0, regularizer.l2)
    if type(regularizer) is L1L2:
        return (regularizer.l1, regularizer.l2)
    if type(regularizer) is OrthogonalRegularizer:
        raise ValueError(
            f"kerox does not support OrthogonalRegularizer on a layer yet ({where}); use "
            "L1, L2 or L1L2."
        )
    raise ValueError(
        f"kerox runs the built-in L1, L2 and L1L2 regularizers only ({where}); custom "
        f"regularizers are not supported. Received: {regularizer!r}"
    )
