"""The TensorFlow-shaped top level of ``import kerox as tf``: NumPy helpers scripts use around a
model (``tf.constant``, ``tf.reduce_mean``, ``tf.random.set_seed``, ...).

Every function returns a NumPy array (or NumPy scalar array). Dtype defaults follow TensorFlow,
not NumPy: Python floats become ``float32`` and Python ints ``int32`` (``int64`` if they do not
fit), while NumPy arrays keep their dtype. Only helpers whose meaning is the same in TensorFlow
and NumPy are provided; anything else raises an :class:`AttributeError` that lists what is.
"""

from __future__ import annotations

import builtins
import types
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _random

__all__ = [
    "abs",
    "argmax",
    "argmin",
    "bool",
    "cast",
    "concat",
    "constant",
    "convert_to_tensor",
    "exp",
    "expand_dims",
    "float16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "linspace",
    "log",
    "matmul",
    "maximum",
    "minimum",
    "newaxis",
    "one_hot",
    "ones",
    "ones_like",
    "range",
    "reduce_max",
    "reduce_mean",
    "reduce_min",
    "reduce_sum",
    "reshape",
    "shape",
    "sqrt",
    "square",
    "squeeze",
    "stack",
    "uint8",
    "zeros",
    "zeros_like",
]

# Dtypes are NumPy's scalar types, so ``tf.float32`` works wherever NumPy takes a dtype.
float16 = np.float16
float32 = np.float32
float64 = np.float64
int8 = np.int8
int16 = np.int16
int32 = np.int32
int64 = np.int64
uint8 = np.uint8
bool = np.bool_  # noqa: A001 - the public name is tf.bool
newaxis = None

_INT32 = np.iinfo(np.int32)


# -- conversion -------------------------------------------------------------------------------
def _to_array(value: Any, dtype: Any = None) -> np.ndarray:
    """``value`` as an array with TensorFlow's dtype inference (see the module docstring)."""
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        # kerox Variables and optimizer variables (and anything tensor-like with .numpy()).
        value = value.numpy()
    if dtype is not None:
        return np.asarray(value, dtype=np.dtype(dtype))
    if isinstance(value, (np.ndarray, np.generic)):
        return np.asarray(value)
    arr = np.asarray(value)
    if arr.dtype == np.float64:
        return arr.astype(np.float32)
    if arr.dtype == np.int64 and (
        arr.size == 0 or (arr.min() >= _INT32.min and arr.max() <= _INT32.max)
    ):
        return arr.astype(np.int32)
    return arr


def _to_float(x: Any) -> np.ndarray:
    """Like :func:`_to_array`, but integer and bool inputs become ``float32`` (for sqrt, exp, log:
    TensorFlow rejects integers there; kerox computes them in float32 instead)."""
    arr = _to_array(x)
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32)
    return arr


def constant(value: Any, dtype: Any = None, shape: Sequence[int] | None = None) -> np.ndarray:
    """An array from ``value``: ``tf.constant(1.0)`` is float32, ``tf.constant(1)`` int32.

    Args:
        value: A number, nested list or array.
        dtype: Result dtype; inferred as TensorFlow does when ``None``.
        shape: Optional result shape: a scalar ``value`` is filled to it, otherwise the values
            are reshaped to it (the element counts must match).
    """
    arr = _to_array(value, dtype)
    if shape is not None:
        shape = tuple(int(d) for d in shape)
        if arr.ndim == 0:
            arr = np.full(shape, arr.reshape(()), dtype=arr.dtype)
        else:
            try:
                arr = arr.reshape(shape)
            except ValueError:
                raise ValueError(
                    f"`shape` {shape} does not match the {arr.size} elements of `value`."
                ) from None
    return np.array(arr)


def convert_to_tensor(value: Any, dtype: Any = None) -> np.ndarray:
    """``value`` as an array (TensorFlow's dtype inference; arrays keep their dtype)."""
    return _to_array(value, dtype)


def cast(x: Any, dtype: Any) -> np.ndarray:
    """``x`` converted to ``dtype`` (floats to ints truncate toward zero, as in TensorFlow)."""
    return np.asarray(_to_array(x).astype(np.dtype(dtype)))


# -- creation ---------------------------------------------------------------------------------
def _shape_tuple(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(d) for d in np.asarray(shape).reshape(-1))


def ones(shape: Any, dtype: Any = np.float32) -> np.ndarray:
    """An array of ones (float32 by default)."""
    return np.ones(_shape_tuple(shape), dtype=np.dtype(dtype))


def zeros(shape: Any, dtype: Any = np.float32) -> np.ndarray:
    """An array of zeros (float32 by default)."""
    return np.zeros(_shape_tuple(shape), dtype=np.dtype(dtype))


def ones_like(input: Any, dtype: Any = None) -> np.ndarray:  # noqa: A002 - TF's name
    """Ones with the shape (and, unless ``dtype`` is given, the dtype) of ``input``."""
    arr = _to_array(input)
    return np.ones(arr.shape, dtype=arr.dtype if dtype is None else np.dtype(dtype))


def zeros_like(input: Any, dtype: Any = None) -> np.ndarray:  # noqa: A002 - TF's name
    """Zeros with the shape (and, unless ``dtype`` is given, the dtype) of ``input``."""
    arr = _to_array(input)
    return np.zeros(arr.shape, dtype=arr.dtype if dtype is None else np.dtype(dtype))


def linspace(start: Any, stop: Any, num: int, axis: int = 0) -> np.ndarray:
    """``num`` evenly spaced values from ``start`` to ``stop`` inclusive.

    Float inputs give float32 (TensorFlow's default); integer inputs give float64.
    """
    a, b = _to_array(start), _to_array(stop)
    dtype = np.result_type(a, b)
    if not np.issubdtype(dtype, np.floating):
        dtype = np.dtype(np.float64)
    return np.linspace(a, b, int(num), axis=axis, dtype=dtype)


def range(  # noqa: A001 - the public name is tf.range
    start: Any, limit: Any = None, delta: Any = 1, dtype: Any = None
) -> np.ndarray:
    """``[start, start + delta, ...)`` below ``limit`` (``range(n)`` counts from 0).

    int32 for integer arguments, float32 if any is a float, unless ``dtype`` is given.
    """
    if limit is None:
        start, limit = 0, start
    args = [_to_array(v) for v in (start, limit, delta)]
    if dtype is None:
        dtype = np.result_type(*args)
        if np.issubdtype(dtype, np.floating) and not any(
            isinstance(v, (np.ndarray, np.generic)) and v.dtype == np.float64
            for v in (start, limit, delta)
        ):
            dtype = np.dtype(np.float32)
    return np.arange(*(a[()] for a in args), dtype=np.dtype(dtype))


def one_hot(
    indices: Any,
    depth: int,
    on_value: Any = None,
    off_value: Any = None,
    axis: int | None = None,
    dtype: Any = None,
) -> np.ndarray:
    """One-hot encoding of integer ``indices`` along a new axis of size ``depth``.

    As in TensorFlow, indices outside ``[0, depth)`` (negative ones included) give an all-off
    row, the new axis is last unless ``axis`` says otherwise, and the dtype is float32 unless
    ``dtype`` or ``on_value``/``off_value`` set it.
    """
    idx = _to_array(indices)
    if not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"`indices` must be integers. Received dtype: {idx.dtype}")
    depth = int(depth)
    if dtype is None:
        given = [_to_array(v) for v in (on_value, off_value) if v is not None]
        dtype = given[0].dtype if given else np.dtype(np.float32)
    dtype = np.dtype(dtype)
    on = np.asarray(1 if on_value is None else on_value, dtype=dtype)
    off = np.asarray(0 if off_value is None else off_value, dtype=dtype)
    hot = idx[..., None] == np.arange(depth)
    out = np.where(hot, on, off).astype(dtype)
    if axis is not None and axis != -1:
        out = np.moveaxis(out, -1, axis)
    return out


# -- shape manipulation -----------------------------------------------------------------------
def shape(input: Any) -> np.ndarray:  # noqa: A002 - TF's name
    """The shape of ``input`` as an int32 vector."""
    return np.asarray(_to_array(input).shape, dtype=np.int32)


def reshape(tensor: Any, shape: Any) -> np.ndarray:
    """``tensor`` with a new shape (one dimension may be -1)."""
    return np.reshape(_to_array(tensor), _shape_tuple(shape))


def expand_dims(input: Any, axis: int) -> np.ndarray:  # noqa: A002 - TF's name
    """``input`` with a new axis of size 1 inserted at ``axis``."""
    return np.expand_dims(_to_array(input), int(axis))


def squeeze(input: Any, axis: int | Sequence[int] | None = None) -> np.ndarray:  # noqa: A002
    """``input`` without its size-1 axes (or only those listed in ``axis``)."""
    if isinstance(axis, list):
        axis = tuple(axis)
    return np.squeeze(_to_array(input), axis=axis)


def concat(values: Sequence[Any], axis: int) -> np.ndarray:
    """The arrays in ``values`` joined along the existing ``axis``."""
    return np.concatenate([_to_array(v) for v in values], axis=int(axis))


def stack(values: Sequence[Any], axis: int = 0) -> np.ndarray:
    """The arrays in ``values`` (all the same shape) stacked along a new ``axis``."""
    return np.stack([_to_array(v) for v in values], axis=int(axis))


# -- reductions -------------------------------------------------------------------------------
def _axis(axis: Any) -> Any:
    if isinstance(axis, (list, np.ndarray)):
        return tuple(int(a) for a in np.asarray(axis).reshape(-1))
    return axis


def reduce_sum(input_tensor: Any, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    """Sum over ``axis`` (all axes if ``None``); integer inputs keep their dtype as in TF."""
    arr = _to_array(input_tensor)
    dtype = arr.dtype if np.issubdtype(arr.dtype, np.integer) else None
    return np.asarray(np.sum(arr, axis=_axis(axis), keepdims=keepdims, dtype=dtype))


def reduce_mean(input_tensor: Any, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    """Mean over ``axis`` (all axes if ``None``).

    Integer inputs give an integer mean truncated toward zero, as in TensorFlow
    (``reduce_mean([1, 0, 1, 0]) == 0``): cast to float first for a fractional mean.
    """
    arr = _to_array(input_tensor)
    out = np.mean(arr, axis=_axis(axis), keepdims=keepdims)
    if np.issubdtype(arr.dtype, np.integer):
        out = np.trunc(out).astype(arr.dtype)
    return np.asarray(out)


def reduce_max(input_tensor: Any, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    """Maximum over ``axis`` (all axes if ``None``)."""
    return np.asarray(np.max(_to_array(input_tensor), axis=_axis(axis), keepdims=keepdims))


def reduce_min(input_tensor: Any, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    """Minimum over ``axis`` (all axes if ``None``)."""
    return np.asarray(np.min(_to_array(input_tensor), axis=_axis(axis), keepdims=keepdims))


def argmax(input: Any, axis: int | None = None, output_type: Any = np.int64) -> np.ndarray:  # noqa: A002
    """Index of the largest value along ``axis`` (axis 0 when ``None``, as in TensorFlow)."""
    out = np.argmax(_to_array(input), axis=0 if axis is None else int(axis))
    return np.asarray(out, dtype=np.dtype(output_type))


def argmin(input: Any, axis: int | None = None, output_type: Any = np.int64) -> np.ndarray:  # noqa: A002
    """Index of the smallest value along ``axis`` (axis 0 when ``None``, as in TensorFlow)."""
    out = np.argmin(_to_array(input), axis=0 if axis is None else int(axis))
    return np.asarray(out, dtype=np.dtype(output_type))


# -- element-wise -----------------------------------------------------------------------------
def square(x: Any) -> np.ndarray:
    """``x * x`` element-wise."""
    return np.asarray(np.square(_to_array(x)))


def sqrt(x: Any) -> np.ndarray:
    """Square root element-wise (integer inputs are computed in float32)."""
    return np.asarray(np.sqrt(_to_float(x)))


def exp(x: Any) -> np.ndarray:
    """``e ** x`` element-wise (integer inputs are computed in float32)."""
    return np.asarray(np.exp(_to_float(x)))


def log(x: Any) -> np.ndarray:
    """Natural logarithm element-wise (integer inputs are computed in float32)."""
    return np.asarray(np.log(_to_float(x)))


def abs(x: Any) -> np.ndarray:  # noqa: A001 - the public name is tf.abs
    """Absolute value element-wise."""
    return np.asarray(np.abs(_to_array(x)))


def maximum(x: Any, y: Any) -> np.ndarray:
    """Element-wise maximum of ``x`` and ``y`` (broadcast)."""
    return np.asarray(np.maximum(_to_array(x), _to_array(y)))


def minimum(x: Any, y: Any) -> np.ndarray:
    """Element-wise minimum of ``x`` and ``y`` (broadcast)."""
    return np.asarray(np.minimum(_to_array(x), _to_array(y)))


def matmul(a: Any, b: Any, transpose_a: bool = False, transpose_b: bool = False) -> np.ndarray:
    """Matrix product ``a @ b`` (over the last two axes), optionally transposing either."""
    x, y = _to_array(a), _to_array(b)
    if transpose_a:
        x = np.swapaxes(x, -1, -2)
    if transpose_b:
        y = np.swapaxes(y, -1, -2)
    return np.asarray(np.matmul(x, y))


# -- random -----------------------------------------------------------------------------------
def set_seed(seed: int) -> None:
    """Seed everything random in kerox (initializers, dropout, shuffling), NumPy's global RNG
    and Python's ``random``: the same as ``keras.utils.set_random_seed(seed)``."""
    from .keras.utils import set_random_seed

    if isinstance(seed, np.integer):
        seed = int(seed)
    set_random_seed(seed)


def _rng(seed: int | None) -> np.random.Generator:
    # A given op seed is reproducible on its own; without one the draw follows the global seed.
    if seed is not None and (isinstance(seed, builtins.bool) or not isinstance(seed, int)):
        raise ValueError(f"`seed` must be an integer or None. Received: seed={seed!r}")
    return _random.make_rng(seed)


def uniform(
    shape: Any,
    minval: Any = 0,
    maxval: Any = None,
    dtype: Any = np.float32,
    seed: int | None = None,
) -> np.ndarray:
    """Values drawn uniformly from ``[minval, maxval)`` (``maxval`` defaults to 1 for floats;
    integer dtypes need it)."""
    dtype = np.dtype(dtype)
    rng = _rng(seed)
    size = _shape_tuple(shape)
    if np.issubdtype(dtype, np.integer):
        if maxval is None:
            raise ValueError("`maxval` must be given for an integer `dtype`.")
        return rng.integers(int(minval), int(maxval), size=size).astype(dtype)
    high = 1.0 if maxval is None else float(maxval)
    return rng.uniform(float(minval), high, size=size).astype(dtype)


def normal(
    shape: Any, mean: Any = 0.0, stddev: Any = 1.0, dtype: Any = np.float32, seed: int | None = None
) -> np.ndarray:
    """Values drawn from a normal distribution with the given ``mean`` and ``stddev``."""
    rng = _rng(seed)
    out = rng.normal(float(mean), float(stddev), size=_shape_tuple(shape))
    return out.astype(np.dtype(dtype))


# -- namespaces -------------------------------------------------------------------------------
class Namespace(types.ModuleType):
    """A module-like namespace (``tf.math``, ``tf.random``) whose unknown attributes raise an
    :class:`AttributeError` naming what kerox provides there."""

    def __init__(self, name: str, doc: str, members: dict[str, Any]) -> None:
        super().__init__(name, doc)
        self.__dict__.update(members)
        self.__all__ = sorted(members)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(unsupported_message(self.__name__, name, self.__all__))

    def __dir__(self) -> list[str]:
        return list(self.__all__)


def unsupported_message(where: str, name: str, provided: Sequence[str]) -> str:
    """The message of the AttributeError for ``where.name`` that kerox does not provide."""
    return (
        f"module '{where}' has no attribute '{name}'. kerox covers the Keras API for dense "
        f"networks, plus NumPy helpers scripts use around a model; '{where}' provides: "
        f"{', '.join(sorted(provided))}."
    )


# tf.math's share of the helpers (TensorFlow spells matmul tf.linalg.matmul; same meaning here).
_MATH_NAMES = [
    "abs",
    "argmax",
    "argmin",
    "exp",
    "log",
    "matmul",
    "maximum",
    "minimum",
    "reduce_max",
    "reduce_mean",
    "reduce_min",
    "reduce_sum",
    "sqrt",
    "square",
]

math = Namespace(
    "kerox.math",
    "Element-wise and reduction helpers (``tf.math``), returning NumPy arrays.",
    {n: globals()[n] for n in _MATH_NAMES},
)

random = Namespace(
    "kerox.random",
    "Random numbers (``tf.random``) from kerox's seed source: ``set_seed`` makes them, and "
    "every kerox initializer, dropout and shuffle, reproducible.",
    {"set_seed": set_seed, "uniform": uniform, "normal": normal},
)
