"""Nested element structures, numpy conversion and ``TensorSpec`` for :mod:`kerox.data`.

An element is a leaf (a numpy array or numpy scalar) or a nest of tuples (namedtuples kept)
and dicts over leaves. Lists are not structures: as in ``tf.data``, a list given as data is
converted to one array, and a list returned by a ``map`` function is read as a tuple.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

__all__ = ["TensorShape", "TensorSpec"]

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


# --------------------------------------------------------------------------------------------
# Structures
# --------------------------------------------------------------------------------------------


def is_namedtuple(x: Any) -> bool:
    """Whether ``x`` is a namedtuple instance (rebuilt with its own type, not ``tuple``)."""
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def _rebuild_tuple(template: tuple, values: Iterable[Any]) -> tuple:
    values = list(values)
    return type(template)(*values) if is_namedtuple(template) else tuple(values)


def map_structure(fn: Callable[..., Any], first: Any, *rest: Any) -> Any:
    """Apply ``fn`` leaf-wise over one or more structures shaped like ``first``."""
    if isinstance(first, tuple):
        return _rebuild_tuple(
            first, (map_structure(fn, *parts) for parts in zip(first, *rest, strict=True))
        )
    if isinstance(first, dict):
        return {k: map_structure(fn, v, *(r[k] for r in rest)) for k, v in first.items()}
    return fn(first, *rest)


def flatten(struct: Any) -> list[Any]:
    """The leaves of ``struct`` in order (dicts in insertion order)."""
    if isinstance(struct, tuple):
        return [leaf for part in struct for leaf in flatten(part)]
    if isinstance(struct, dict):
        return [leaf for part in struct.values() for leaf in flatten(part)]
    return [struct]


def pack_like(template: Any, leaves: Iterable[Any]) -> Any:
    """Rebuild ``template``'s structure with ``leaves`` (as produced by :func:`flatten`)."""
    it: Iterator[Any] = iter(leaves)

    def build(t: Any) -> Any:
        if isinstance(t, tuple):
            return _rebuild_tuple(t, (build(p) for p in t))
        if isinstance(t, dict):
            return {k: build(v) for k, v in t.items()}
        return next(it)

    return build(template)


def same_structure(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` nest tuples/dicts the same way (leaves not compared)."""
    if isinstance(a, tuple) or isinstance(b, tuple):
        return (
            isinstance(a, tuple)
            and isinstance(b, tuple)
            and len(a) == len(b)
            and all(same_structure(x, y) for x, y in zip(a, b))
        )
    if isinstance(a, dict) or isinstance(b, dict):
        return (
            isinstance(a, dict)
            and isinstance(b, dict)
            and set(a) == set(b)
            and all(same_structure(a[k], b[k]) for k in a)
        )
    return True


# --------------------------------------------------------------------------------------------
# Conversion of user values to numpy
# --------------------------------------------------------------------------------------------


def _first_python_leaf(value: Any) -> Any:
    """The first scalar inside nested Python lists (to tell Python data from numpy data)."""
    while isinstance(value, (list, tuple)) and value:
        value = value[0]
    return value


def to_array(value: Any, what: str) -> np.ndarray | np.generic:
    """Convert one leaf to numpy the way ``tf.convert_to_tensor`` types it.

    numpy arrays are returned as they are (no copy). Python floats become float32 and Python
    ints int32 (int64 when they do not fit), as TensorFlow does; numpy data keeps its dtype.
    """
    if isinstance(value, np.ndarray) and value.dtype != object:
        return value
    if isinstance(value, np.generic):
        return value
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"Could not convert {what} to a numpy array (a ragged or mixed nested list?). "
            f"Received: {type(value).__name__} ({e})"
        ) from None
    if arr.dtype == object and arr.size:
        # Text in an object array (e.g. a pandas string column): TF makes a string tensor.
        flat = arr.ravel().tolist()
        if all(isinstance(v, str) for v in flat):
            arr = arr.astype(str)
        elif all(isinstance(v, bytes) for v in flat):
            arr = arr.astype(bytes)
    if arr.dtype == object:
        raise TypeError(
            f"Expected {what} to be a numpy array, a number or a (nested) list of numbers. "
            f"Received: an object of type {type(value).__name__}"
        )
    leaf = _first_python_leaf(value)
    python_data = isinstance(value, (bool, int, float, list, tuple)) and isinstance(
        leaf, (bool, int, float)
    )
    if python_data and arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    elif python_data and arr.dtype == np.int64:
        if arr.size == 0 or (arr.min() >= _INT32_MIN and arr.max() <= _INT32_MAX):
            arr = arr.astype(np.int32)
    return arr


def normalize_data(value: Any, what: str) -> Any:
    """Convert a user data structure: tuples and dicts are structure, anything else a leaf."""
    if isinstance(value, tuple):
        return _rebuild_tuple(
            value, (normalize_data(v, f"{what}[{i}]") for i, v in enumerate(value))
        )
    if isinstance(value, dict):
        return {k: normalize_data(v, f"{what}[{k!r}]") for k, v in value.items()}
    return to_array(value, what)


def normalize_output(value: Any, what: str) -> Any:
    """Convert a value returned by a user function: a top-level list is read as a tuple."""
    if isinstance(value, list):
        value = tuple(value)
    return normalize_data(value, what)


# --------------------------------------------------------------------------------------------
# TensorShape / TensorSpec
# --------------------------------------------------------------------------------------------


def as_dtype(dtype: Any) -> np.dtype:
    """A numpy dtype from a numpy/Python type, a name, or a TensorFlow-like dtype object."""
    for candidate in (dtype, getattr(dtype, "as_numpy_dtype", None), getattr(dtype, "name", None)):
        if candidate is None:
            continue
        if candidate == "string":
            return np.dtype(object)
        try:
            return np.dtype(candidate)
        except TypeError:
            continue
    raise TypeError(f"Expected a dtype (e.g. 'float32' or np.int64). Received: dtype={dtype!r}")


class TensorShape(tuple):
    """A static shape: a tuple of ``int`` (known) or ``None`` (unknown) dimensions.

    ``TensorShape(None)`` has an unknown rank: ``rank`` is ``None`` and it holds no dims.
    """

    _unknown_rank: bool

    def __new__(cls, dims: Iterable[int | None] | None) -> TensorShape:
        if dims is None:
            obj = super().__new__(cls, ())
            obj._unknown_rank = True
            return obj
        if isinstance(dims, (int, np.integer)):
            dims = (dims,)
        parsed = []
        for d in dims:
            d = getattr(d, "value", d)  # a TF Dimension object
            if d is not None and (isinstance(d, bool) or not isinstance(d, (int, np.integer))):
                raise TypeError(f"Expected shape dimensions to be int or None. Received: {dims!r}")
            parsed.append(None if d is None or d < 0 else int(d))
        obj = super().__new__(cls, parsed)
        obj._unknown_rank = False
        return obj

    @property
    def rank(self) -> int | None:
        """Number of dimensions, or ``None`` when unknown."""
        return None if self._unknown_rank else len(self)

    ndims = rank

    def as_list(self) -> list[int | None]:
        """The dimensions as a list (``ValueError`` for an unknown rank, as TensorFlow)."""
        if self._unknown_rank:
            raise ValueError("as_list() is not defined on an unknown TensorShape.")
        return list(self)

    def is_compatible_with(self, other: Iterable[int | None] | None) -> bool:
        """Whether a value of shape ``other`` fits this shape (``None`` matches anything)."""
        other = other if isinstance(other, TensorShape) else TensorShape(other)
        if self._unknown_rank or other._unknown_rank:
            return True
        return len(self) == len(other) and all(
            a is None or b is None or a == b for a, b in zip(self, other)
        )

    def most_specific_compatible_shape(self, other: TensorShape) -> TensorShape:
        """The shape both fit: differing dims become ``None``; differing ranks unknown."""
        if self._unknown_rank or other._unknown_rank or len(self) != len(other):
            return TensorShape(None)
        return TensorShape(a if a == b else None for a, b in zip(self, other))

    def __repr__(self) -> str:
        return "TensorShape(None)" if self._unknown_rank else f"TensorShape({list(self)})"


class TensorSpec:
    """The type of one leaf of a dataset element: a static ``shape`` and a numpy ``dtype``.

    Args:
        shape: Dimensions (``None`` for an unknown one), or ``None`` for an unknown rank.
        dtype: Anything :func:`numpy.dtype` accepts, or a TensorFlow-style dtype object.
        name: Optional name, kept for display.
    """

    __slots__ = ("shape", "dtype", "name")

    def __init__(
        self, shape: Iterable[int | None] | None, dtype: Any = np.float32, name: str | None = None
    ) -> None:
        self.shape = TensorShape(shape)
        self.dtype = as_dtype(dtype)
        self.name = name

    @classmethod
    def from_value(cls, value: Any) -> TensorSpec:
        """The spec of a concrete numpy value."""
        arr = np.asarray(value)
        return cls(arr.shape, arr.dtype)

    def is_compatible_with(self, value: Any) -> bool:
        """Whether ``value`` (a spec or an array) has a fitting dtype and shape."""
        if isinstance(value, TensorSpec):
            return self.dtype == value.dtype and self.shape.is_compatible_with(value.shape)
        arr = np.asarray(value)
        return self.dtype == arr.dtype and self.shape.is_compatible_with(arr.shape)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, TensorSpec)
            and self.dtype == other.dtype
            and self.shape == other.shape
            and self.shape.rank == other.shape.rank
        )

    def __hash__(self) -> int:
        return hash((tuple(self.shape), self.shape.rank, self.dtype))

    def __repr__(self) -> str:
        shape = None if self.shape.rank is None else tuple(self.shape)
        return f"TensorSpec(shape={shape}, dtype={self.dtype.name}, name={self.name!r})"


def spec_of(element: Any) -> Any:
    """The ``TensorSpec`` structure of a concrete element."""
    return map_structure(TensorSpec.from_value, element)


def conform(value: Any, spec: Any, what: str) -> Any:
    """Check ``value`` against a spec structure and convert its leaves to the spec dtypes."""
    if isinstance(spec, tuple):
        if not isinstance(value, (tuple, list)) or len(value) != len(spec):
            raise TypeError(
                f"{what} did not match the expected structure: expected a tuple of "
                f"{len(spec)} components, received {type(value).__name__} {value!r:.200}"
            )
        return _rebuild_tuple(
            spec, (conform(v, s, f"{what}[{i}]") for i, (v, s) in enumerate(zip(value, spec)))
        )
    if isinstance(spec, dict):
        if not isinstance(value, dict) or set(value) != set(spec):
            got = sorted(value) if isinstance(value, dict) else type(value).__name__
            raise TypeError(
                f"{what} did not match the expected structure: expected a dict with keys "
                f"{sorted(spec)}, received {got}"
            )
        return {k: conform(value[k], s, f"{what}[{k!r}]") for k, s in spec.items()}
    try:
        arr = np.asarray(value, dtype=spec.dtype)
    except (ValueError, TypeError) as e:
        raise TypeError(
            f"{what} could not be converted to the expected dtype {spec.dtype.name}: {e}"
        ) from None
    if not spec.shape.is_compatible_with(arr.shape):
        raise ValueError(
            f"{what} has shape {arr.shape}, which is incompatible with the expected shape "
            f"{None if spec.shape.rank is None else tuple(spec.shape)}"
        )
    return arr[()] if arr.ndim == 0 else arr
