"""Activation functions (``keras.activations``), as NumPy reference implementations.

The Rust engine runs the activations named in :data:`SUPPORTED` natively; the functions here
define the same maths on NumPy arrays (used for checks, tiny inputs and user code). Formulas
follow Keras 3 (``keras/src/activations/activations.py`` and the JAX backend's ``nn.py``).

Every function takes an array-like and returns an array of the same shape. Integer or boolean
input is converted to ``float32``; floating input keeps its dtype. The maths is evaluated in
``float64`` and rounded once, so results are within one float32 ulp of the exact value.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "SUPPORTED",
    "relu",
    "softmax",
    "sigmoid",
    "tanh",
    "linear",
    "elu",
    "selu",
    "gelu",
    "softplus",
    "silu",
    "swish",
    "get",
    "serialize",
    "deserialize",
    "engine_name",
]

#: Activations the Rust engine runs natively (``swish`` is an alias of ``silu``).
SUPPORTED: tuple[str, ...] = (
    "linear",
    "relu",
    "sigmoid",
    "tanh",
    "softmax",
    "elu",
    "selu",
    "gelu",
    "softplus",
    "silu",
)

# SELU constants (Klambauer et al., 2017), as in jax.nn.selu.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946

_erfc = np.frompyfunc(math.erfc, 1, 1)


def _prepare(x: Any) -> tuple[np.ndarray, np.dtype]:
    """Return (x as float64, output dtype)."""
    arr = np.asarray(x)
    out_dtype = arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.dtype(np.float32)
    return arr.astype(np.float64, copy=False), out_dtype


def relu(
    x: Any, negative_slope: float = 0.0, max_value: float | None = None, threshold: float = 0.0
) -> np.ndarray:
    """Rectified linear unit: ``max(x, 0)`` with Keras 3's optional extras.

    With the defaults this is ``max(x, 0)``. Otherwise: values ``>= max_value`` are clipped to
    ``max_value``, values ``<= threshold`` become ``negative_slope * (x - threshold)``.

    Args:
        x: Input array.
        negative_slope: Slope below ``threshold``.
        max_value: Saturation value (``None`` for none).
        threshold: Threshold below which values are damped.
    """
    x64, dtype = _prepare(x)
    if negative_slope == 0.0 and max_value is None and threshold == 0.0:
        return np.maximum(x64, 0.0).astype(dtype)
    if threshold != 0.0:
        pos = np.where(x64 > threshold, x64, 0.0)
    else:
        pos = np.maximum(x64, 0.0)
    if max_value is not None:
        pos = np.clip(pos, 0.0, max_value)
    if negative_slope != 0.0:
        pos = pos - negative_slope * np.maximum(threshold - x64, 0.0)
    return pos.astype(dtype)


def softmax(x: Any, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis``: ``exp(x - max(x)) / sum(exp(x - max(x)))``."""
    x64, dtype = _prepare(x)
    e = np.exp(x64 - np.max(x64, axis=axis, keepdims=True))
    return (e / np.sum(e, axis=axis, keepdims=True)).astype(dtype)


def sigmoid(x: Any) -> np.ndarray:
    """Logistic sigmoid ``1 / (1 + exp(-x))``, computed without overflow."""
    x64, dtype = _prepare(x)
    z = np.exp(-np.abs(x64))
    out = np.where(x64 >= 0, 1.0 / (1.0 + z), z / (1.0 + z))
    return out.astype(dtype)


def tanh(x: Any) -> np.ndarray:
    """Hyperbolic tangent."""
    x64, dtype = _prepare(x)
    return np.tanh(x64).astype(dtype)


def linear(x: Any) -> np.ndarray:
    """Identity: returns ``x`` unchanged (as an array)."""
    x64, dtype = _prepare(x)
    return x64.astype(dtype)


def elu(x: Any, alpha: float = 1.0) -> np.ndarray:
    """Exponential linear unit: ``x`` if ``x > 0`` else ``alpha * (exp(x) - 1)``."""
    x64, dtype = _prepare(x)
    return np.where(x64 > 0, x64, alpha * np.expm1(np.minimum(x64, 0.0))).astype(dtype)


def selu(x: Any) -> np.ndarray:
    """Scaled ELU: ``scale * elu(x, alpha)`` with the fixed SELU constants."""
    x64, dtype = _prepare(x)
    neg = _SELU_ALPHA * np.expm1(np.minimum(x64, 0.0))
    return (_SELU_SCALE * np.where(x64 > 0, x64, neg)).astype(dtype)


def gelu(x: Any, approximate: bool = False) -> np.ndarray:
    """Gaussian error linear unit.

    Exact form (default): ``x * Phi(x) = 0.5 * x * erfc(-x / sqrt(2))``.
    ``approximate=True``: ``0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x**3)))``.
    """
    x64, dtype = _prepare(x)
    if approximate:
        inner = math.sqrt(2.0 / math.pi) * (x64 + 0.044715 * x64**3)
        return (0.5 * x64 * (1.0 + np.tanh(inner))).astype(dtype)
    # erfc keeps full relative precision for large negative x, where 1 + erf(x) cancels.
    cdf = 0.5 * _erfc(-x64 / math.sqrt(2.0)).astype(np.float64)
    return (x64 * cdf).astype(dtype)


def softplus(x: Any) -> np.ndarray:
    """Softplus ``log(1 + exp(x))``, computed as ``logaddexp(x, 0)``."""
    x64, dtype = _prepare(x)
    return np.logaddexp(x64, 0.0).astype(dtype)


def silu(x: Any) -> np.ndarray:
    """Sigmoid linear unit (swish): ``x * sigmoid(x)``."""
    x64, dtype = _prepare(x)
    z = np.exp(-np.abs(x64))
    sig = np.where(x64 >= 0, 1.0 / (1.0 + z), z / (1.0 + z))
    return (x64 * sig).astype(dtype)


swish = silu

_BY_NAME: dict[str, Callable[..., np.ndarray]] = {
    "linear": linear,
    "relu": relu,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "softmax": softmax,
    "elu": elu,
    "selu": selu,
    "gelu": gelu,
    "softplus": softplus,
    "silu": silu,
    "swish": silu,
}
# Canonical name of each builtin function (swish -> "silu", as Keras 3 serializes it).
_NAME_OF: dict[Callable[..., np.ndarray], str] = {fn: name for name, fn in _BY_NAME.items()}
_NAME_OF[silu] = "silu"


def get(identifier: str | Callable[..., Any] | dict | None) -> Callable[..., Any]:
    """Return the activation function for ``identifier``.

    Args:
        identifier: ``None`` (-> :func:`linear`), a name such as ``"relu"``, a callable
            (returned unchanged), or a Keras 3 serialized dict whose ``config`` is a name.

    Raises:
        ValueError: ``Could not interpret activation function identifier: <identifier>``.
    """
    if identifier is None:
        return linear
    obj: Any = identifier
    if isinstance(identifier, dict):
        config = identifier.get("config")
        obj = _BY_NAME.get(config) if isinstance(config, str) else None
    elif isinstance(identifier, str):
        obj = _BY_NAME.get(identifier)
    if callable(obj):
        return obj
    raise ValueError(f"Could not interpret activation function identifier: {identifier}")


def serialize(activation: Callable[..., Any]) -> str:
    """Return the name of an activation function (``"relu"``, ``"silu"`` for swish, ...).

    Builtins return their Keras name. Other callables return their ``__name__``; use
    :func:`engine_name` to know whether the engine can run a given function natively.

    Raises:
        ValueError: if ``activation`` is neither a builtin nor a named callable.
    """
    name = engine_name(activation) if callable(activation) else None
    if name is not None:
        return name
    name = getattr(activation, "__name__", None)
    if callable(activation) and isinstance(name, str):
        return name
    raise ValueError(f"Unknown activation function '{activation}' cannot be serialized.")


def deserialize(config: str | dict) -> Callable[..., Any]:
    """Inverse of :func:`serialize` for builtin activations (same as :func:`get`)."""
    return get(config)


def engine_name(activation: Callable[..., Any] | str | None) -> str | None:
    """Return the :data:`SUPPORTED` name the engine runs for ``activation``, else ``None``.

    Only the builtin functions of this module (or their names) map to an engine name; a user
    function that happens to be called ``relu`` does not.
    """
    if activation is None:
        return "linear"
    if isinstance(activation, str):
        fn = _BY_NAME.get(activation)
        return _NAME_OF[fn] if fn is not None else None
    try:
        return _NAME_OF.get(activation)  # type: ignore[call-overload]
    except TypeError:  # unhashable callable
        return None
