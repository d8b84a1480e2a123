"""What ``fit`` / ``evaluate`` / ``predict`` accept as data, turned into work for the engine.

Two kinds of work come out:

- a :class:`Run`: consecutive batches over in-memory arrays (rows picked by an order), which
  the engine trains on in one call with no Python per batch. Arrays, and ``tf.data``
  pipelines that are arrays + shuffle + batch (+ repeat), give runs.
- a :class:`Batch`: one batch produced by Python (a generator, a ``PyDataset``, any other
  ``tf.data`` pipeline), converted and checked, then handed to the engine on its own.

:class:`Feed` cuts a source into epochs as Keras 3's ``EpochIterator`` does: without
``steps_per_epoch`` an epoch is one pass; with it, the iterator carries over from one epoch to
the next and is restarted only once the data is used up.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Batch", "Feed", "Run", "class_weights", "sample_weights", "split_element"]


@dataclass
class Run:
    """``count`` batches of ``batch_size`` rows (the last may be short) of ``x``/``y``/``sw``,
    starting at batch ``first`` of ``order`` (None: rows in storage order)."""

    x: np.ndarray
    y: np.ndarray
    sw: np.ndarray | None
    order: np.ndarray | None
    batch_size: int
    first: int
    count: int


@dataclass
class Batch:
    """One batch made by Python, already checked: rows ``x``, targets ``y``, weights ``sw``."""

    x: np.ndarray
    y: np.ndarray | None
    sw: np.ndarray | None


class Source:
    """Where batches come from: ``units()`` makes a fresh iterator over one pass of
    :class:`Run` and :class:`Batch` items; ``num_batches`` counts the batches of a pass
    (None when unknown, ``math.inf`` for an endless source)."""

    num_batches: float | None = None

    def units(self) -> Iterator[Run | Batch]:
        raise NotImplementedError

    def on_epoch_begin(self) -> None:
        """Called before every epoch."""

    def on_epoch_end(self) -> None:
        """Called after every epoch."""


class ArraySource(Source):
    """In-memory rows, shuffled per pass as Keras shuffles arrays (``shuffle`` True, False or
    ``"batch"``)."""

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        sw: np.ndarray | None,
        batch_size: int,
        order_for: Callable[[], np.ndarray | None],
    ) -> None:
        self.x, self.y, self.sw, self.batch_size = x, y, sw, batch_size
        self._order_for = order_for
        self.num_batches = math.ceil(x.shape[0] / batch_size)

    def units(self) -> Iterator[Run | Batch]:
        order = self._order_for()
        yield Run(self.x, self.y, self.sw, order, self.batch_size, 0, int(self.num_batches))


class PlanSource(Source):
    """An array-backed ``tf.data`` pipeline: the dataset's own index order per pass, cut into
    batches as the pipeline batches them (across passes when ``repeat`` precedes ``batch``)."""

    def __init__(self, plan: Any, x: np.ndarray, y: np.ndarray, sw: np.ndarray | None) -> None:
        self.plan, self.x, self.y, self.sw = plan, x, y, sw
        bs, n, reps = plan.batch_size, plan.n, plan.repeat
        if reps is None:
            self.num_batches = math.inf
        elif plan.batch_after_repeat:
            total = n * reps
            self.num_batches = total // bs if plan.drop_remainder else math.ceil(total / bs)
        else:
            per = n // bs if plan.drop_remainder else math.ceil(n / bs)
            self.num_batches = per * reps

    def _run(self, order: np.ndarray, count: int) -> Run:
        order = np.ascontiguousarray(order, dtype=np.uintp)
        return Run(self.x, self.y, self.sw, order, self.plan.batch_size, 0, count)

    def _gathered(self, idx: np.ndarray) -> Batch:
        """The rows ``idx`` as one batch (a batch spanning two passes may repeat a row)."""
        sw = None if self.sw is None else self.sw[idx]
        return Batch(self.x[idx], self.y[idx], sw)

    def units(self) -> Iterator[Run | Batch]:
        plan, bs = self.plan, self.plan.batch_size
        if not plan.batch_after_repeat:
            for idx in plan.passes():
                count = len(idx) // bs if plan.drop_remainder else math.ceil(len(idx) / bs)
                if count:
                    yield self._run(idx, count)
            return
        # Batches run on across passes: the batch that straddles two passes is gathered in
        # Python (one per pass); the whole batches inside a pass run from its order, rotated so
        # they start at a multiple of the batch size (the engine reads a full-length order).
        carry = np.empty(0, dtype=np.int64)
        for idx in plan.passes():
            idx = np.asarray(idx, dtype=np.int64)
            k = 0
            if len(carry):
                k = bs - len(carry)
                yield self._gathered(np.concatenate([carry, idx[:k]]))
            whole = (len(idx) - k) // bs
            if whole:
                yield self._run(np.roll(idx, -k), whole)
            carry = idx[k + whole * bs :]
        if len(carry) and not plan.drop_remainder:
            yield self._gathered(carry)


class PySource(Source):
    """Batches made by Python: ``make()`` gives a fresh iterator of raw elements, each turned
    into a :class:`Batch` by ``convert``."""

    def __init__(
        self,
        make: Callable[[], Iterator[Any]],
        convert: Callable[[Any], Batch],
        num_batches: float | None,
        begin: Callable[[], None] | None = None,
        end: Callable[[], None] | None = None,
        first: Any = None,
    ) -> None:
        self._make, self._convert = make, convert
        self.num_batches = num_batches
        self._begin, self._end = begin, end
        # An element already read (to build the model) that the first pass must still yield.
        self._first = first

    def units(self) -> Iterator[Run | Batch]:
        it = self._make()
        if self._first is not None:
            first, self._first = self._first, None
            yield self._convert(first)
        for element in it:
            yield self._convert(element)

    def on_epoch_begin(self) -> None:
        if self._begin is not None:
            self._begin()

    def on_epoch_end(self) -> None:
        if self._end is not None:
            self._end()


class Feed:
    """Cuts a :class:`Source` into epochs of ``steps`` batches (Keras 3 ``EpochIterator``).

    ``take(limit)`` returns the next piece of work of at most ``limit`` batches (None at the
    end of the epoch); ``advance(done)`` records how many of its batches the engine ran.
    """

    def __init__(self, source: Source, steps_per_epoch: int | None, what: str = "x") -> None:
        self.source = source
        self.steps_per_epoch = steps_per_epoch
        self.what = what
        nb = source.num_batches
        if steps_per_epoch is None and nb == math.inf:
            raise ValueError(
                f"`{what}` is an endless dataset (it repeats forever): pass `steps_per_epoch` "
                "(or `steps` / `validation_steps`) to say how many batches make an epoch."
            )
        #: Batches per epoch, None when only running out of data ends an epoch.
        self.steps: int | None = (
            steps_per_epoch if steps_per_epoch is not None else (None if nb is None else int(nb))
        )
        self._it: Iterator[Run | Batch] | None = None
        self._pending: Run | Batch | None = None
        self._taken_of_pending = 0
        self._seen = 0
        self._step = 0
        self.ran_out = False

    def reset(self) -> None:
        """Starts the next epoch from a fresh pass (Keras's ``EpochIterator.reset``, which
        ``evaluate`` calls every time; a one-shot generator still continues where it was)."""
        self._it = None

    def begin_epoch(self) -> None:
        """Starts an epoch: a fresh pass unless ``steps_per_epoch`` carries the last one on."""
        self.source.on_epoch_begin()
        if self._it is None or self.steps_per_epoch is None:
            self._it, self._pending, self._seen = self.source.units(), None, 0
        self._step = 0
        self.ran_out = False

    def end_epoch(self) -> None:
        """Ends an epoch; a pass used up is restarted at the next one."""
        nb = self.source.num_batches
        if self.ran_out or (nb is not None and nb != math.inf and self._seen >= nb):
            self._it = None
        self.source.on_epoch_end()

    @property
    def step(self) -> int:
        """Batches run in the current epoch."""
        return self._step

    def take(self, limit: int) -> Run | Batch | None:
        """The next piece of work, at most ``limit`` batches; None when the epoch is over."""
        if self.steps is not None and self._step >= self.steps:
            return None
        if self._pending is None:
            assert self._it is not None
            self._pending = next(self._it, None)
            self._taken_of_pending = 0
            if self._pending is None:
                self.ran_out = True
                if self.steps_per_epoch is not None:
                    warnings.warn(
                        f"Your input ran out of data; interrupting epoch after {self._step} of "
                        f"{self.steps_per_epoch} steps (`{self.what}` has fewer batches than "
                        "`steps_per_epoch` asks for). Use `.repeat()` on a dataset, or pass "
                        "fewer steps.",
                        stacklevel=4,
                    )
                return None
        unit = self._pending
        if isinstance(unit, Batch):
            return unit
        left = unit.count - self._taken_of_pending
        if self.steps is not None:
            left = min(left, self.steps - self._step)
        k = max(1, min(limit, left))
        return Run(
            unit.x,
            unit.y,
            unit.sw,
            unit.order,
            unit.batch_size,
            unit.first + self._taken_of_pending,
            k,
        )

    def advance(self, done: int) -> None:
        """Records that the engine ran ``done`` batches of the piece ``take`` returned."""
        unit = self._pending
        assert unit is not None
        if isinstance(unit, Batch):
            self._pending = None
        else:
            self._taken_of_pending += done
            if self._taken_of_pending >= unit.count:
                self._pending = None
        self._step += done
        self._seen += done


def split_element(element: Any, what: str) -> tuple[Any, Any, Any]:
    """``(x, y, sample_weight)`` of one element a generator or dataset produced: ``(x, y)``,
    ``(x, y, sw)``, ``(x,)`` or a bare ``x`` (Keras's ``unpack_x_y_sample_weight``)."""
    if isinstance(element, list):
        element = tuple(element)
    if not isinstance(element, tuple):
        return element, None, None
    if len(element) == 1:
        return element[0], None, None
    if len(element) == 2:
        return element[0], element[1], None
    if len(element) == 3:
        return element
    raise ValueError(
        f"Each element of `{what}` must be `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)`; "
        f"received a tuple of {len(element)} items."
    )


def is_python_source(x: Any) -> bool:
    """Whether ``x`` is data Python must batch (a dataset, PyDataset, generator, iterator)."""
    from .utils._py_dataset import PyDataset

    if isinstance(x, np.ndarray):
        return False
    if is_dataset(x) or isinstance(x, PyDataset) or inspect.isgenerator(x):
        return True
    return hasattr(x, "__next__") and hasattr(x, "__iter__") and not hasattr(x, "shape")


def is_dataset(x: Any) -> bool:
    """Whether ``x`` is a ``kerox.data.Dataset`` (without importing that package)."""
    return hasattr(type(x), "_array_plan") and hasattr(x, "cardinality")


def sample_weights(sw: Any, n: int, what: str = "sample_weight") -> np.ndarray | None:
    """``sample_weight`` as float32 of shape (n,): shape (n,) or (n, 1), finite, ≥ 0."""
    if sw is None:
        return None
    if hasattr(sw, "to_numpy"):
        sw = sw.to_numpy()
    try:
        arr = np.asarray(sw)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"`{what}` must be an array of numbers: {exc}") from None
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"`{what}` must hold numbers; received an array of dtype {arr.dtype}.")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(
            f"`{what}` must have shape ({n},) (one weight per sample); received shape {arr.shape}."
        )
    out = np.ascontiguousarray(arr, dtype=np.float32)
    if n and not np.isfinite(out).all():
        bad = int(np.flatnonzero(~np.isfinite(out))[0])
        raise ValueError(
            f"`{what}` must be finite; element {bad} is {arr[bad]}. Sample weights are "
            "non-negative finite numbers."
        )
    if n and (out < 0).any():
        bad = int(np.flatnonzero(out < 0)[0])
        raise ValueError(
            f"`{what}` must be non-negative; element {bad} is {arr[bad]}. A negative weight "
            "would turn descent into ascent on that sample."
        )
    return out


def check_class_weight(class_weight: Any, classes: int) -> dict[int, float]:
    """``class_weight`` as ``{class index: weight}``, each index in ``[0, classes)`` and each
    weight finite and ≥ 0."""
    if not isinstance(class_weight, dict):
        raise TypeError(
            "`class_weight` must be a dict mapping class indices (integers) to weights; "
            f"received {type(class_weight).__name__}."
        )
    out: dict[int, float] = {}
    for k, w in class_weight.items():
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise ValueError(
                f"`class_weight` keys must be integer class indices; received key {k!r}."
            )
        if not 0 <= k < classes:
            raise ValueError(
                f"`class_weight` has key {k}, but the model's targets have classes 0 to "
                f"{classes - 1}: every key must be a class the labels can hold."
            )
        try:
            wf = float(w)
        except (TypeError, ValueError):
            raise ValueError(f"`class_weight[{k}]` must be a number; received {w!r}.") from None
        if not math.isfinite(wf) or wf < 0:
            raise ValueError(
                f"`class_weight[{k}]` must be a finite non-negative number; received {w!r}."
            )
        out[int(k)] = wf
    return out


def class_weights(y: np.ndarray, class_weight: dict[int, float]) -> np.ndarray:
    """Per-sample weights from ``class_weight`` (Keras's ``class_weight_to_sample_weights``):
    the class of a one-hot row is its argmax, of a label its rounded value; classes without
    an entry weigh 1."""
    labels = y
    if labels.ndim > 1:
        labels = np.argmax(labels, axis=-1) if labels.shape[-1] != 1 else labels[:, 0]
    labels = np.round(labels).astype(np.int64)
    top = max(class_weight, default=-1)
    table = np.ones(max(top + 1, int(labels.max(initial=0)) + 1), dtype=np.float32)
    for k, w in class_weight.items():
        table[k] = w
    return table[labels]
