"""``Dataset``: a ``tf.data.Dataset`` over numpy, in pure Python.

A dataset is an immutable node of a pipeline graph. Iterating it builds a fresh chain of
Python iterators. Array-backed stretches of a pipeline (``from_tensor_slices`` followed by
``shuffle`` / ``repeat`` / ``cache`` / ``prefetch`` and at most one ``batch``) iterate through
the index machinery of :mod:`._plan` instead, which is what ``_array_plan()`` hands to ``fit``.
"""

from __future__ import annotations

import contextvars
import functools
import itertools
import math
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .. import _random
from ._plan import ArrayPlan, IndexSource, buffer_shuffle, plan_batches, shuffle_indices
from ._structure import (
    TensorShape,
    TensorSpec,
    as_dtype,
    conform,
    flatten,
    is_namedtuple,
    map_structure,
    normalize_data,
    normalize_output,
    pack_like,
    same_structure,
    spec_of,
)

__all__ = ["Dataset", "Options", "AUTOTUNE", "INFINITE_CARDINALITY", "UNKNOWN_CARDINALITY"]

#: ``tf.data.AUTOTUNE``: accepted wherever a parallelism or buffer size is.
AUTOTUNE = -1
#: ``cardinality()`` of an infinite dataset.
INFINITE_CARDINALITY = -1
#: ``cardinality()`` of a dataset whose size is not known without iterating it.
UNKNOWN_CARDINALITY = -2

# Set while a dataset is iterated only to discover its element_spec: shuffles then neither
# advance their per-iteration seed nor do caches fill, so peeking changes no later order.
_PEEKING: contextvars.ContextVar[bool] = contextvars.ContextVar("kerox_data_peeking", default=False)


class _Cardinality(int):
    """An ``int`` that also answers ``.numpy()``, as scripts call on TF's scalar tensor."""

    def numpy(self) -> np.int64:
        return np.int64(self)


# --------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _int_arg(value: Any, name: str, minimum: int, expected: str) -> int:
    if not _is_int(value) or value < minimum:
        raise ValueError(f"Expected `{name}` to be {expected}. Received: {name}={value!r}")
    return int(value)


def _parallel_arg(value: Any, name: str = "num_parallel_calls") -> None:
    if value is not None and (not _is_int(value) or (value < 1 and value != AUTOTUNE)):
        raise ValueError(
            f"Expected `{name}` to be None, a positive integer or tf.data.AUTOTUNE (-1). "
            f"Received: {name}={value!r}"
        )


def _callable_arg(fn: Any, name: str) -> None:
    if not callable(fn):
        raise TypeError(f"Expected `{name}` to be callable. Received: {name}={fn!r}")


def _dataset_arg(value: Any, name: str) -> Dataset:
    if not isinstance(value, Dataset):
        raise TypeError(
            f"Expected `{name}` to be a tf.data.Dataset. Received: {type(value).__name__}"
        )
    return value


def _call_unpacked(fn: Callable[..., Any], element: Any) -> Any:
    """Call ``fn`` as tf.data does: a plain tuple element is unpacked into arguments."""
    return fn(*element) if type(element) is tuple else fn(element)


def _gather(arrays: Any, index: Any) -> Any:
    return map_structure(lambda a: a[index], arrays)


class _hybridmethod:
    """``Dataset.zip(a, b)`` as a static method, and ``a.zip(b)`` meaning ``zip((a, b))``."""

    def __init__(self, static: Callable[..., Any], bound: Callable[..., Any]) -> None:
        self._static, self._bound = static, bound
        functools.update_wrapper(self, static)

    def __get__(self, obj: Any, objtype: Any = None) -> Callable[..., Any]:
        return self._static if obj is None else functools.partial(self._bound, obj)


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------


class _OptionsGroup:
    """A permissive group of options: any attribute can be set; unknown ones read as a group."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        group = _OptionsGroup()
        object.__setattr__(self, name, group)
        return group

    def __repr__(self) -> str:
        return f"{type(self).__name__}({vars(self)!r})"


class Options(_OptionsGroup):
    """``tf.data.Options``: accepted and kept (e.g. ``options.experimental_distribute
    .auto_shard_policy = ...``, ``options.deterministic = False``); they change nothing here."""


# --------------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------------


class _Iterator:
    """What ``iter(dataset)`` returns: a Python iterator with TF's ``get_next()``."""

    def __init__(self, dataset: Dataset) -> None:
        self._it = dataset._iterator()
        self.element_spec = dataset.element_spec if dataset._static_spec() else None

    def __iter__(self) -> _Iterator:
        return self

    def __next__(self) -> Any:
        return next(self._it)

    def get_next(self) -> Any:
        """The next element (``StopIteration`` at the end)."""
        return next(self._it)


class Dataset:
    """A ``tf.data.Dataset``: a pipeline of numpy elements (arrays / numpy scalars, or tuples
    and dicts of them).

    Build one with a static constructor (:meth:`from_tensor_slices`, :meth:`from_tensors`,
    :meth:`from_generator`, :meth:`range`, :meth:`zip`) and chain transformations; each returns
    a new dataset. Iterate it with ``for element in dataset`` or :meth:`as_numpy_iterator`.
    """

    #: Whether computing ``element_spec`` of this node runs no user code (see ``_static_spec``).
    _own_static_spec = True

    def __init__(self, inputs: tuple[Dataset, ...] = ()) -> None:
        self._inputs = inputs
        self._spec_cache: Any = None
        self._options = Options()
        for parent in inputs:
            self._options = parent._options

    # ---- to be provided by each node -------------------------------------------------------

    def _compute_spec(self) -> Any:
        raise NotImplementedError

    def _compute_cardinality(self) -> int:
        raise NotImplementedError

    def _generic_iter(self) -> Iterator[Any]:
        raise NotImplementedError

    def _index_source(self) -> IndexSource | None:
        """The unbatched array-backed description of this node, if it has one."""
        return None

    def _plan(self) -> ArrayPlan | None:
        """The batched array-backed description of this node, if it has one."""
        return None

    # ---- iteration -------------------------------------------------------------------------

    def _iterator(self) -> Iterator[Any]:
        src = self._index_source()
        if src is not None:
            return _iterate_index_source(src)
        plan = self._plan()
        if plan is not None:
            return _iterate_plan(plan)
        return self._generic_iter()

    def __iter__(self) -> _Iterator:
        """A fresh iterator over the elements (a new epoch: shuffles draw a new order)."""
        return _Iterator(self)

    def as_numpy_iterator(self) -> Iterator[Any]:
        """An iterator over the elements as numpy values (they already are)."""
        return iter(self._iterator())

    def _array_plan(self) -> ArrayPlan | None:
        """The :class:`ArrayPlan` of an array-backed pipeline with exactly one ``batch``, or
        ``None`` when the pipeline cannot be expressed as indices into in-memory arrays."""
        return self._plan()

    # ---- introspection ---------------------------------------------------------------------

    def _static_spec(self) -> bool:
        return self._own_static_spec and all(p._static_spec() for p in self._inputs)

    @property
    def element_spec(self) -> Any:
        """The structure of :class:`TensorSpec` (``shape``, ``dtype``) of one element; a
        dimension is ``None`` where it varies or is unknown (e.g. the batch dimension)."""
        if self._spec_cache is None:
            self._spec_cache = self._compute_spec()
        return self._spec_cache

    def cardinality(self) -> int:
        """The number of elements; ``INFINITE_CARDINALITY`` (-1) or ``UNKNOWN_CARDINALITY`` (-2)
        when infinite or not known without iterating."""
        return _Cardinality(self._compute_cardinality())

    def __len__(self) -> int:
        card = self._compute_cardinality()
        if card == INFINITE_CARDINALITY:
            raise TypeError("The dataset is infinite.")
        if card == UNKNOWN_CARDINALITY:
            raise TypeError("The dataset length is unknown.")
        return card

    def __bool__(self) -> bool:
        # Needed because __len__ is defined (and raises for infinite datasets), as in TF.
        return True

    def __repr__(self) -> str:
        spec = f" element_spec={self.element_spec!r}" if self._static_spec() else ""
        return f"<{type(self).__name__}{spec}>"

    def options(self) -> Options:
        """The :class:`Options` attached with :meth:`with_options` (they change nothing here)."""
        return self._options

    def with_options(self, options: Options, name: str | None = None) -> Dataset:
        """This dataset with ``options`` attached (accepted for compatibility; no effect)."""
        ds = _PassthroughDataset(self)
        ds._options = options
        return ds

    # ---- sources ---------------------------------------------------------------------------

    @staticmethod
    def from_tensor_slices(tensors: Any, name: str | None = None) -> Dataset:
        """A dataset whose elements are the rows (slices along axis 0) of ``tensors``.

        Args:
            tensors: An array-like, or a tuple / dict (nested) of them, all with the same first
                dimension. A list is one array (as in TF), not a structure.
            name: Ignored.

        Raises:
            ValueError: if a component is a scalar or the first dimensions differ.
        """
        arrays = normalize_data(tensors, "`tensors`")
        leaves = flatten(arrays)
        for leaf in leaves:
            if np.ndim(leaf) == 0:
                raise ValueError(
                    "Expected every component of `tensors` to have at least one dimension (rows "
                    f"to slice). Received: a scalar {leaf!r}"
                )
        sizes = [leaf.shape[0] for leaf in leaves]
        if len(set(sizes)) > 1:
            shapes = [tuple(leaf.shape) for leaf in leaves]
            raise ValueError(
                "Expected all components of `tensors` to have the same size in their first "
                f"dimension. Received: shapes {shapes}"
            )
        arrays = map_structure(np.asarray, arrays)
        return _TensorSlicesDataset(arrays, sizes[0] if sizes else 0)

    @staticmethod
    def from_tensors(tensors: Any, name: str | None = None) -> Dataset:
        """A dataset with ``tensors`` (an array-like or a tuple / dict of them) as its single
        element."""
        return _TensorsDataset(map_structure(np.asarray, normalize_data(tensors, "`tensors`")))

    @staticmethod
    def from_generator(
        generator: Callable[..., Any],
        output_types: Any = None,
        output_shapes: Any = None,
        args: tuple[Any, ...] | None = None,
        output_signature: Any = None,
        name: str | None = None,
    ) -> Dataset:
        """A dataset whose elements are yielded by ``generator(*args)`` (called anew for each
        iteration).

        Args:
            generator: A callable returning an iterable (e.g. a generator function).
            output_types: Deprecated TF form: a structure of dtypes.
            output_shapes: Deprecated TF form: a structure of shapes matching ``output_types``.
            args: Arguments for ``generator``, passed as numpy values.
            output_signature: A structure of :class:`TensorSpec`; each yielded element is
                checked against it and converted to its dtypes. Without it (or
                ``output_types``) the structure is taken from the first element.
            name: Ignored.
        """
        _callable_arg(generator, "generator")
        if output_signature is not None and (output_types is not None or output_shapes is not None):
            raise TypeError(
                "`output_types` and `output_shapes` cannot be used together with "
                "`output_signature`."
            )
        if output_types is None and output_shapes is not None:
            raise TypeError("`output_shapes` needs `output_types`.")
        signature = None
        if output_signature is not None:
            signature = _normalize_signature(output_signature)
        elif output_types is not None:
            types = _normalize_signature(output_types, leaf=lambda t: TensorSpec(None, t))
            if output_shapes is None:
                signature = types
            else:
                shapes = _shape_structure(output_shapes, types)
                signature = map_structure(lambda t, s: TensorSpec(s, t.dtype), types, shapes)
        if args is not None and not isinstance(args, (tuple, list)):
            raise TypeError(f"Expected `args` to be a tuple. Received: args={args!r}")
        np_args = tuple(np.asarray(a) for a in (args or ()))
        return _GeneratorDataset(generator, np_args, signature)

    @staticmethod
    def range(*args: int, output_type: Any = np.int64, name: str | None = None) -> Dataset:
        """``range(stop)`` / ``range(start, stop[, step])`` as a dataset of int64 scalars."""
        if not 1 <= len(args) <= 3 or not all(_is_int(a) for a in args):
            raise ValueError(
                f"Expected 1 to 3 integer arguments (start, stop, step). Received: {args!r}"
            )
        r = range(*(int(a) for a in args))  # raises ValueError for step 0, as TF does
        return _RangeDataset(r, as_dtype(output_type))

    @staticmethod
    def _zip_static(*args: Any, datasets: Any = None, name: str | None = None) -> Dataset:
        if datasets is not None and args:
            raise TypeError("Both `*args` and `datasets` were given to zip(); pass one.")
        if datasets is None:
            if not args:
                raise TypeError("zip() needs at least one dataset.")
            datasets = args[0] if len(args) == 1 else tuple(args)
        if isinstance(datasets, list):
            datasets = tuple(datasets)
        if isinstance(datasets, Dataset):
            return datasets
        if not isinstance(datasets, (tuple, dict)) or not flatten(datasets):
            raise TypeError(
                "Expected `datasets` to be a (nested) tuple or dict of datasets. "
                f"Received: {datasets!r}"
            )
        for d in flatten(datasets):
            _dataset_arg(d, "datasets")
        return _ZipDataset(datasets)

    def _zip_bound(self, *others: Any, name: str | None = None) -> Dataset:
        return Dataset._zip_static((self, *others))

    zip = _hybridmethod(_zip_static.__func__, _zip_bound)  # type: ignore[attr-defined]
    zip.__doc__ = """Zip datasets into a dataset of tuples (or dicts) of their elements.

    ``Dataset.zip((a, b))``, ``Dataset.zip(a, b)``, ``Dataset.zip({"x": a, "y": b})`` or
    ``Dataset.zip(datasets=...)``; called on an instance, ``a.zip(b)`` is ``zip((a, b))``. It
    ends with the shortest input."""

    # ---- transformations -------------------------------------------------------------------

    def concatenate(self, dataset: Dataset, name: str | None = None) -> Dataset:
        """The elements of this dataset followed by those of ``dataset`` (same structure and
        dtypes).

        Raises:
            TypeError: if the element structures or dtypes differ.
        """
        _dataset_arg(dataset, "dataset")
        return _ConcatenateDataset(self, dataset)

    def shuffle(
        self,
        buffer_size: int,
        seed: int | None = None,
        reshuffle_each_iteration: bool | None = True,
        name: str | None = None,
    ) -> Dataset:
        """Randomly shuffle with a buffer of ``buffer_size`` elements, as tf.data does.

        A buffer at least as large as the dataset gives a uniform permutation; a smaller one
        only mixes nearby elements. An unseeded shuffle draws its seed from kerox's global seed
        (``tf.random.set_seed`` makes it reproducible).

        Args:
            buffer_size: Positive number of elements in the buffer.
            seed: Optional integer seed.
            reshuffle_each_iteration: If true (or ``None``, TF's default), each iteration
                (epoch) gets a new order; otherwise every iteration repeats the same order.
            name: Ignored.
        """
        buffer_size = _int_arg(buffer_size, "buffer_size", 1, "a positive integer")
        if seed is not None:
            seed = _int_arg(seed, "seed", 0, "None or a non-negative integer")
        return _ShuffleDataset(
            self,
            buffer_size,
            seed,
            reshuffle_each_iteration is None or bool(reshuffle_each_iteration),
        )

    def repeat(self, count: int | None = None, name: str | None = None) -> Dataset:
        """Repeat the dataset ``count`` times (``None`` or -1: forever). Each repetition is a
        new iteration of the input, so an upstream shuffle draws a new order."""
        if count is not None:
            count = _int_arg(count, "count", -1, "None, -1 (forever) or a non-negative integer")
        return _RepeatDataset(self, None if count in (None, -1) else count)

    def batch(
        self,
        batch_size: int,
        drop_remainder: bool = False,
        num_parallel_calls: int | None = None,
        deterministic: bool | None = None,
        name: str | None = None,
    ) -> Dataset:
        """Stack ``batch_size`` consecutive elements into arrays along a new axis 0 (the
        structure kept). The last batch is smaller unless ``drop_remainder``.

        Raises:
            ValueError: if ``batch_size`` is not a positive integer, or (when iterated) the
                elements of a batch have different shapes.
        """
        batch_size = _int_arg(batch_size, "batch_size", 1, "a positive integer")
        _parallel_arg(num_parallel_calls)
        return _BatchDataset(self, batch_size, bool(drop_remainder))

    def unbatch(self, name: str | None = None) -> Dataset:
        """Split each element along axis 0 into its rows (inverse of :meth:`batch`)."""
        return _UnbatchDataset(self)

    def map(
        self,
        map_func: Callable[..., Any],
        num_parallel_calls: int | None = None,
        deterministic: bool | None = None,
        name: str | None = None,
    ) -> Dataset:
        """Apply ``map_func`` to each element. A tuple element is unpacked into arguments
        (``map_func(x, y)``); the function receives and may return numpy values (a returned
        list is read as a tuple). Runs sequentially; ``num_parallel_calls`` is accepted."""
        _callable_arg(map_func, "map_func")
        _parallel_arg(num_parallel_calls)
        return _MapDataset(self, map_func)

    def filter(self, predicate: Callable[..., Any], name: str | None = None) -> Dataset:
        """Keep the elements for which ``predicate`` (called like :meth:`map`'s function)
        returns true."""
        _callable_arg(predicate, "predicate")
        return _FilterDataset(self, predicate)

    def flat_map(self, map_func: Callable[..., Any], name: str | None = None) -> Dataset:
        """Map each element to a dataset and concatenate those datasets."""
        _callable_arg(map_func, "map_func")
        return _FlatMapDataset(self, map_func)

    def take(self, count: int, name: str | None = None) -> Dataset:
        """The first ``count`` elements (-1: all)."""
        count = _int_arg(count, "count", -1, "-1 (all) or a non-negative integer")
        return _TakeDataset(self, count)

    def skip(self, count: int, name: str | None = None) -> Dataset:
        """All but the first ``count`` elements (-1: skip everything)."""
        count = _int_arg(count, "count", -1, "-1 (all) or a non-negative integer")
        return _SkipDataset(self, count)

    def shard(self, num_shards: int, index: int, name: str | None = None) -> Dataset:
        """Every ``num_shards``-th element, starting at ``index``."""
        num_shards = _int_arg(num_shards, "num_shards", 1, "a positive integer")
        if not _is_int(index) or not 0 <= index < num_shards:
            raise ValueError(
                f"Expected `index` to be an integer in [0, num_shards={num_shards}). "
                f"Received: index={index!r}"
            )
        return _ShardDataset(self, num_shards, int(index))

    def enumerate(self, start: int = 0, name: str | None = None) -> Dataset:
        """Pairs ``(i, element)`` with an int64 counter ``i`` from ``start``."""
        start = _int_arg(start, "start", -sys.maxsize, "an integer")
        return Dataset.zip((Dataset.range(start, sys.maxsize), self))

    def cache(self, filename: str = "", name: str | None = None) -> Dataset:
        """Remember the elements of the first complete iteration and replay them afterwards
        (so a shuffle *before* the cache is frozen). ``filename`` is accepted; the cache is
        always kept in memory."""
        if not isinstance(filename, (str, bytes)) and not hasattr(filename, "__fspath__"):
            raise TypeError(f"Expected `filename` to be a string. Received: filename={filename!r}")
        return _CacheDataset(self)

    def prefetch(self, buffer_size: int, name: str | None = None) -> Dataset:
        """Accepted for compatibility (elements are produced on demand): no effect."""
        _int_arg(buffer_size, "buffer_size", -1, "a non-negative integer or tf.data.AUTOTUNE")
        return _PassthroughDataset(self)

    def apply(self, transformation_func: Callable[[Dataset], Dataset]) -> Dataset:
        """``transformation_func(self)``, which must return a dataset."""
        _callable_arg(transformation_func, "transformation_func")
        return _dataset_arg(transformation_func(self), "the result of transformation_func")

    def reduce(self, initial_state: Any, reduce_func: Callable[[Any, Any], Any]) -> Any:
        """Fold the elements: ``state = reduce_func(state, element)`` from ``initial_state``."""
        _callable_arg(reduce_func, "reduce_func")
        state = normalize_output(initial_state, "`initial_state`")
        for element in self._iterator():
            state = normalize_output(reduce_func(state, element), "the result of reduce_func")
        return state

    def get_single_element(self, name: str | None = None) -> Any:
        """The only element of a one-element dataset.

        Raises:
            ValueError: if the dataset is empty or has more than one element.
        """
        it = self._iterator()
        first = next(it, _END)
        if first is _END:
            raise ValueError("get_single_element(): the dataset is empty.")
        if next(it, _END) is not _END:
            raise ValueError("get_single_element(): the dataset has more than one element.")
        return first


_END = object()


def _normalize_signature(sig: Any, leaf: Callable[[Any], TensorSpec] | None = None) -> Any:
    """A signature structure with lists read as tuples and leaves as TensorSpec."""
    if isinstance(sig, list):
        sig = tuple(sig)
    if isinstance(sig, tuple):
        parts = [_normalize_signature(s, leaf) for s in sig]
        return type(sig)(*parts) if is_namedtuple(sig) else tuple(parts)
    if isinstance(sig, dict):
        return {k: _normalize_signature(v, leaf) for k, v in sig.items()}
    if leaf is not None:
        return leaf(sig)
    if not isinstance(sig, TensorSpec):
        if hasattr(sig, "shape") and hasattr(sig, "dtype"):  # another library's TensorSpec
            shape = sig.shape
            dims = None if getattr(shape, "rank", 0) is None else list(shape)
            return TensorSpec(dims, sig.dtype)
        raise TypeError(
            "Expected `output_signature` to be a (nested) structure of tf.TensorSpec. "
            f"Received: {sig!r}"
        )
    return sig


def _shape_structure(shapes: Any, types: Any) -> Any:
    """Match ``output_shapes`` to the structure of ``output_types`` (a shape is a leaf)."""
    if isinstance(types, tuple):
        if not isinstance(shapes, (tuple, list)) or len(shapes) != len(types):
            raise TypeError(
                f"`output_shapes` {shapes!r} does not match the structure of `output_types`."
            )
        return tuple(_shape_structure(s, t) for s, t in zip(shapes, types))
    if isinstance(types, dict):
        if not isinstance(shapes, dict) or set(shapes) != set(types):
            raise TypeError(
                f"`output_shapes` {shapes!r} does not match the structure of `output_types`."
            )
        return {k: _shape_structure(shapes[k], t) for k, t in types.items()}
    return shapes


def _iterate_index_source(src: IndexSource) -> Iterator[Any]:
    arrays = src.arrays
    for idx in src.make_passes():
        for i in idx.tolist():
            yield _gather(arrays, i)


def _iterate_plan(plan: ArrayPlan) -> Iterator[Any]:
    for idx in plan_batches(plan):
        yield _gather(plan.arrays, idx)


def _peek(dataset: Dataset) -> Any:
    """The first element of ``dataset`` without advancing shuffles or filling caches."""
    token = _PEEKING.set(True)
    try:
        return next(dataset._iterator(), _END)
    finally:
        _PEEKING.reset(token)


def _repeat_passes(
    make: Callable[[], Iterator[np.ndarray]], count: int | None
) -> Iterator[np.ndarray]:
    """``count`` iterations of ``make`` back to back (``None``: forever, but stop if an
    iteration is empty, as TF's repeat of an empty dataset ends)."""
    r = 0
    while count is None or r < count:
        total = 0
        for idx in make():
            total += len(idx)
            yield idx
        if total == 0:
            return
        r += 1


def _cache_passes(
    node: _CacheDataset, make: Callable[[], Iterator[np.ndarray]], finite: bool
) -> Iterator[np.ndarray]:
    """Replay the passes of the first complete iteration, recording them on the way."""
    if node._memo is not None:
        yield from node._memo
        return
    record = finite and not _PEEKING.get()
    seen: list[np.ndarray] = []
    for idx in make():
        if record:
            seen.append(idx)
        yield idx
    if record:
        node._memo = seen


# --------------------------------------------------------------------------------------------
# Nodes
# --------------------------------------------------------------------------------------------


def _mul_card(a: int, count: int | None) -> int:
    if count == 0 or a == 0:
        return 0
    if a == UNKNOWN_CARDINALITY:
        return UNKNOWN_CARDINALITY
    if a == INFINITE_CARDINALITY or count is None:
        return INFINITE_CARDINALITY
    return a * count


class _TensorSlicesDataset(Dataset):
    def __init__(self, arrays: Any, n: int) -> None:
        super().__init__()
        self._arrays, self._n = arrays, n

    def _compute_spec(self) -> Any:
        return map_structure(lambda a: TensorSpec(a.shape[1:], a.dtype), self._arrays)

    def _compute_cardinality(self) -> int:
        return self._n

    def _index_source(self) -> IndexSource:
        n = self._n
        return IndexSource(self._arrays, n, 1, lambda: iter([np.arange(n, dtype=np.int64)]))


class _TensorsDataset(Dataset):
    def __init__(self, element: Any) -> None:
        super().__init__()
        self._element = element

    def _compute_spec(self) -> Any:
        return spec_of(self._element)

    def _compute_cardinality(self) -> int:
        return 1

    def _generic_iter(self) -> Iterator[Any]:
        yield self._element


class _RangeDataset(Dataset):
    def __init__(self, r: range, dtype: np.dtype) -> None:
        super().__init__()
        self._range, self._dtype = r, dtype

    def _compute_spec(self) -> Any:
        return TensorSpec((), self._dtype)

    def _compute_cardinality(self) -> int:
        return len(self._range)

    def _generic_iter(self) -> Iterator[Any]:
        scalar = self._dtype.type
        for v in self._range:
            yield scalar(v)


class _GeneratorDataset(Dataset):
    def __init__(self, generator: Callable[..., Any], args: tuple[Any, ...], signature: Any):
        super().__init__()
        self._generator, self._args, self._signature = generator, args, signature

    def _static_spec(self) -> bool:
        return self._signature is not None

    def _compute_spec(self) -> Any:
        if self._signature is not None:
            return self._signature
        first = _peek(self)
        if first is _END:
            raise ValueError(
                "Cannot infer the element_spec of an empty from_generator() dataset without "
                "`output_signature`."
            )
        return spec_of(first)

    def _compute_cardinality(self) -> int:
        return UNKNOWN_CARDINALITY

    def _generic_iter(self) -> Iterator[Any]:
        what = "An element yielded by the generator of from_generator()"
        for value in self._generator(*self._args):
            if self._signature is None:
                yield normalize_output(value, what)
            else:
                yield conform(value, self._signature, what)


class _ZipDataset(Dataset):
    def __init__(self, datasets: Any) -> None:
        super().__init__(tuple(flatten(datasets)))
        self._structure = datasets

    def _compute_spec(self) -> Any:
        return pack_like(self._structure, [d.element_spec for d in self._inputs])

    def _compute_cardinality(self) -> int:
        cards = [d._compute_cardinality() for d in self._inputs]
        finite = [c for c in cards if c >= 0]
        if finite:
            # A known finite input bounds the zip even when another is unknown... unless the
            # unknown one might be shorter: then the result is unknown, as in TF.
            return UNKNOWN_CARDINALITY if UNKNOWN_CARDINALITY in cards else min(finite)
        return UNKNOWN_CARDINALITY if UNKNOWN_CARDINALITY in cards else INFINITE_CARDINALITY

    def _generic_iter(self) -> Iterator[Any]:
        its = [d._iterator() for d in self._inputs]
        while True:
            parts = []
            for it in its:
                part = next(it, _END)
                if part is _END:
                    return
                parts.append(part)
            yield pack_like(self._structure, parts)


class _ConcatenateDataset(Dataset):
    def __init__(self, first: Dataset, second: Dataset) -> None:
        super().__init__((first, second))
        a, b = first.element_spec, second.element_spec
        if not same_structure(a, b):
            raise TypeError(
                "Incompatible dataset elements for concatenate(): structures differ. "
                f"Received: {a!r} and {b!r}"
            )
        for sa, sb in zip(flatten(a), flatten(b)):
            if sa.dtype != sb.dtype:
                raise TypeError(
                    "Incompatible dataset elements for concatenate(): dtypes differ. "
                    f"Received: {a!r} and {b!r}"
                )

    def _compute_spec(self) -> Any:
        a, b = (d.element_spec for d in self._inputs)
        return map_structure(lambda x, y: TensorSpec(_merge_shape(x.shape, y.shape), x.dtype), a, b)

    def _compute_cardinality(self) -> int:
        cards = [d._compute_cardinality() for d in self._inputs]
        if INFINITE_CARDINALITY in cards:
            return INFINITE_CARDINALITY
        if UNKNOWN_CARDINALITY in cards:
            return UNKNOWN_CARDINALITY
        return sum(cards)

    def _generic_iter(self) -> Iterator[Any]:
        for d in self._inputs:
            yield from d._iterator()


def _merge_shape(a: TensorShape, b: TensorShape) -> Any:
    merged = a.most_specific_compatible_shape(b)
    return None if merged.rank is None else tuple(merged)


class _UnaryDataset(Dataset):
    """A transformation of one input whose element_spec and cardinality default to its
    input's."""

    def __init__(self, parent: Dataset) -> None:
        super().__init__((parent,))
        self._parent = parent

    def _compute_spec(self) -> Any:
        return self._parent.element_spec

    def _compute_cardinality(self) -> int:
        return self._parent._compute_cardinality()


class _PassthroughDataset(_UnaryDataset):
    """``prefetch`` / ``with_options``: the input unchanged."""

    def _index_source(self) -> IndexSource | None:
        return self._parent._index_source()

    def _plan(self) -> ArrayPlan | None:
        return self._parent._plan()

    def _generic_iter(self) -> Iterator[Any]:
        return self._parent._iterator()


class _ShuffleDataset(_UnaryDataset):
    def __init__(self, parent: Dataset, buffer_size: int, seed: int | None, reshuffle: bool):
        super().__init__(parent)
        self._buffer_size = buffer_size
        # The seed is fixed at construction (from the global seed source when not given), so
        # rebuilding a pipeline after tf.random.set_seed gives the same orders.
        self._seed = _random.draw_seed() if seed is None else seed
        self._reshuffle = reshuffle
        self._iterations = 0
        self._lock = threading.Lock()

    def _next_rng(self) -> np.random.Generator:
        """The generator of one iteration: a new stream per iteration when reshuffling."""
        if not self._reshuffle or _PEEKING.get():
            return np.random.default_rng([self._seed, 0])
        with self._lock:
            i = self._iterations
            self._iterations += 1
        return np.random.default_rng([self._seed, i])

    def _index_source(self) -> IndexSource | None:
        src = self._parent._index_source()
        if src is None or src.passes_per_iter != 1:
            # A shuffle across repeated passes is one long stream, not a per-pass order.
            return None

        def make() -> Iterator[np.ndarray]:
            rng = self._next_rng()
            for idx in src.make_passes():
                yield shuffle_indices(idx, self._buffer_size, rng)

        return IndexSource(src.arrays, src.n, 1, make)

    def _generic_iter(self) -> Iterator[Any]:
        rng = self._next_rng()
        return buffer_shuffle(self._parent._iterator(), self._buffer_size, rng)


class _RepeatDataset(_UnaryDataset):
    def __init__(self, parent: Dataset, count: int | None) -> None:
        super().__init__(parent)
        self._count = count

    def _compute_cardinality(self) -> int:
        return _mul_card(self._parent._compute_cardinality(), self._count)

    def _index_source(self) -> IndexSource | None:
        src = self._parent._index_source()
        if src is None:
            return None
        count, ppi = self._count, src.passes_per_iter
        total = 0 if 0 in (count, ppi) else (None if None in (count, ppi) else count * ppi)
        return IndexSource(src.arrays, src.n, total, lambda: _repeat_passes(src.make_passes, count))

    def _plan(self) -> ArrayPlan | None:
        plan = self._parent._plan()
        if plan is None:
            return None
        if plan.batch_after_repeat:
            # Batches already span passes; a further repeat is only expressible when the
            # inner stream never ends (then this repeat never starts a second round).
            return plan if plan.repeat is None and self._count != 0 else None
        count, reps = self._count, plan.repeat
        total = 0 if 0 in (count, reps) else (None if None in (count, reps) else count * reps)
        inner = plan._make_passes
        return ArrayPlan(
            plan.arrays,
            plan.n,
            plan.batch_size,
            plan.drop_remainder,
            False,
            total,
            lambda: _repeat_passes(inner, count),
        )

    def _generic_iter(self) -> Iterator[Any]:
        r = 0
        while self._count is None or r < self._count:
            empty = True
            for element in self._parent._iterator():
                empty = False
                yield element
            if empty:
                return
            r += 1


class _CacheDataset(_UnaryDataset):
    def __init__(self, parent: Dataset) -> None:
        super().__init__(parent)
        self._memo: list[Any] | None = None

    def _index_source(self) -> IndexSource | None:
        src = self._parent._index_source()
        if src is None:
            return None
        finite = src.passes_per_iter is not None
        return IndexSource(
            src.arrays,
            src.n,
            src.passes_per_iter,
            lambda: _cache_passes(self, src.make_passes, finite),
        )

    def _plan(self) -> ArrayPlan | None:
        plan = self._parent._plan()
        if plan is None:
            return None
        finite = plan.repeat is not None
        inner = plan._make_passes
        return ArrayPlan(
            plan.arrays,
            plan.n,
            plan.batch_size,
            plan.drop_remainder,
            plan.batch_after_repeat,
            plan.repeat,
            lambda: _cache_passes(self, inner, finite),
        )

    def _generic_iter(self) -> Iterator[Any]:
        if self._memo is not None:
            yield from self._memo
            return
        record = not _PEEKING.get() and self._compute_cardinality() != INFINITE_CARDINALITY
        seen: list[Any] = []
        for element in self._parent._iterator():
            if record:
                seen.append(element)
            yield element
        if record:
            self._memo = seen


class _BatchDataset(_UnaryDataset):
    def __init__(self, parent: Dataset, batch_size: int, drop_remainder: bool) -> None:
        super().__init__(parent)
        self._batch_size, self._drop = batch_size, drop_remainder

    def _compute_spec(self) -> Any:
        lead = self._batch_size if self._drop else None
        return map_structure(
            lambda s: TensorSpec(None if s.shape.rank is None else (lead, *s.shape), s.dtype),
            self._parent.element_spec,
        )

    def _compute_cardinality(self) -> int:
        card = self._parent._compute_cardinality()
        if card < 0:
            return card
        return card // self._batch_size if self._drop else math.ceil(card / self._batch_size)

    def _plan(self) -> ArrayPlan | None:
        src = self._parent._index_source()
        if src is None:
            return None
        return ArrayPlan(
            src.arrays,
            src.n,
            self._batch_size,
            self._drop,
            src.passes_per_iter != 1,
            src.passes_per_iter,
            src.make_passes,
        )

    def _generic_iter(self) -> Iterator[Any]:
        it = self._parent._iterator()
        while True:
            chunk = list(itertools.islice(it, self._batch_size))
            if not chunk or (self._drop and len(chunk) < self._batch_size):
                return
            yield _stack(chunk)


def _stack(elements: list[Any]) -> Any:
    first = elements[0]
    for e in elements[1:]:
        if not same_structure(first, e):
            raise ValueError(
                f"Cannot batch elements with different structures: {first!r:.200} and {e!r:.200}"
            )
    columns = zip(*(flatten(e) for e in elements))
    leaves = []
    for col in columns:
        shapes = {np.shape(v) for v in col}
        if len(shapes) > 1:
            raise ValueError(
                "Cannot batch elements with different shapes in one component: received "
                f"shapes {sorted(shapes)}. Use padded shapes or make them equal in map()."
            )
        leaves.append(np.stack(col))
    return pack_like(first, leaves)


class _UnbatchDataset(_UnaryDataset):
    def _compute_spec(self) -> Any:
        def drop_lead(s: TensorSpec) -> TensorSpec:
            if s.shape.rank == 0:
                raise ValueError("Cannot unbatch a dataset with a scalar component.")
            return TensorSpec(None if s.shape.rank is None else s.shape[1:], s.dtype)

        return map_structure(drop_lead, self._parent.element_spec)

    def _compute_cardinality(self) -> int:
        card = self._parent._compute_cardinality()
        return card if card == INFINITE_CARDINALITY else UNKNOWN_CARDINALITY

    def _generic_iter(self) -> Iterator[Any]:
        for element in self._parent._iterator():
            leaves = flatten(element)
            sizes = {np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in leaves}
            if None in sizes or len(sizes) != 1:
                raise ValueError(
                    "Cannot unbatch an element whose components are scalars or differ in "
                    f"their first dimension: shapes {[np.shape(v) for v in leaves]}"
                )
            for i in range(sizes.pop()):
                yield pack_like(element, [leaf[i] for leaf in leaves])


class _MapDataset(_UnaryDataset):
    _own_static_spec = False

    def __init__(self, parent: Dataset, fn: Callable[..., Any]) -> None:
        super().__init__(parent)
        self._fn = fn

    def _apply(self, element: Any) -> Any:
        return normalize_output(_call_unpacked(self._fn, element), "the result of map_func")

    def _compute_spec(self) -> Any:
        first = _peek(self._parent)
        if first is _END:
            # No data to trace with: run the function on zeros shaped like the input spec.
            first = map_structure(
                lambda s: np.zeros([1 if d is None else d for d in s.shape], s.dtype),
                self._parent.element_spec,
            )
            return spec_of(self._apply(first))
        out_spec = spec_of(self._apply(first))
        # Keep the input's unknown batch dimension unknown in the output.
        in_spec = self._parent.element_spec
        batch = {
            np.shape(v)[0]
            for s, v in zip(flatten(in_spec), flatten(first))
            if s.shape.rank and s.shape[0] is None
        }
        if len(batch) != 1:
            return out_spec
        b = batch.pop()
        return map_structure(
            lambda s: (
                TensorSpec((None, *s.shape[1:]), s.dtype) if s.shape.rank and s.shape[0] == b else s
            ),
            out_spec,
        )

    def _generic_iter(self) -> Iterator[Any]:
        for element in self._parent._iterator():
            yield self._apply(element)


class _FilterDataset(_UnaryDataset):
    def __init__(self, parent: Dataset, predicate: Callable[..., Any]) -> None:
        super().__init__(parent)
        self._predicate = predicate

    def _compute_cardinality(self) -> int:
        card = self._parent._compute_cardinality()
        return card if card in (0, INFINITE_CARDINALITY) else UNKNOWN_CARDINALITY

    def _generic_iter(self) -> Iterator[Any]:
        for element in self._parent._iterator():
            keep = np.asarray(_call_unpacked(self._predicate, element))
            if keep.size != 1:
                raise ValueError(
                    "Expected `predicate` to return a scalar boolean. Received: a value of "
                    f"shape {keep.shape}"
                )
            if bool(keep.reshape(())):
                yield element


class _FlatMapDataset(_UnaryDataset):
    _own_static_spec = False

    def __init__(self, parent: Dataset, fn: Callable[..., Any]) -> None:
        super().__init__(parent)
        self._fn = fn

    def _inner(self, element: Any) -> Dataset:
        return _dataset_arg(_call_unpacked(self._fn, element), "the result of map_func")

    def _compute_spec(self) -> Any:
        first = _peek(self._parent)
        if first is _END:
            raise ValueError("Cannot infer the element_spec of flat_map() over an empty dataset.")
        return self._inner(first).element_spec

    def _compute_cardinality(self) -> int:
        card = self._parent._compute_cardinality()
        return 0 if card == 0 else UNKNOWN_CARDINALITY

    def _generic_iter(self) -> Iterator[Any]:
        for element in self._parent._iterator():
            yield from self._inner(element)._iterator()


class _TakeDataset(_UnaryDataset):
    def __init__(self, parent: Dataset, count: int) -> None:
        super().__init__(parent)
        self._count = count

    def _compute_cardinality(self) -> int:
        card = self._parent._compute_cardinality()
        if self._count == -1:
            return card
        if card == UNKNOWN_CARDINALITY:
            return 0 if self._count == 0 else UNKNOWN_CARDINALITY
        return self._count if card == INFINITE_CARDINALITY else min(card, self._count)

    def _generic_iter(self) -> Iterator[Any]:
        it = self._parent._iterator()
        return it if self._count == -1 else itertools.islice(it, self._count)


class _SkipDataset(_UnaryDataset):
    def __init__(self, parent: Dataset, count: int) -> None:
        super().__init__(parent)
        self._count = count

    def _compute_cardinality(self) -> int:
        card = self._parent._compute_cardinality()
        if card < 0:
            return card
        return 0 if self._count == -1 else max(card - self._count, 0)

    def _generic_iter(self) -> Iterator[Any]:
        it = self._parent._iterator()
        if self._count == -1:
            for _ in it:
                pass
            return iter(())
        return itertools.islice(it, self._count, None)


class _ShardDataset(_UnaryDataset):
    def __init__(self, parent: Dataset, num_shards: int, index: int) -> None:
        super().__init__(parent)
        self._num, self._index = num_shards, index

    def _compute_cardinality(self) -> int:
        card = self._parent._compute_cardinality()
        if card < 0:
            return card
        return len(range(self._index, card, self._num))

    def _generic_iter(self) -> Iterator[Any]:
        return itertools.islice(self._parent._iterator(), self._index, None, self._num)
