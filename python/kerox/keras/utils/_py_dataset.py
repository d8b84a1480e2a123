"""`keras.utils.PyDataset` (and its Keras 2 name, `Sequence`): batches by index."""

from __future__ import annotations

from typing import Any

__all__ = ["PyDataset", "Sequence"]


class PyDataset:
    """Base class for a dataset read batch by batch (Keras 3 ``keras.utils.PyDataset``).

    Subclasses implement ``__getitem__(index)``, returning the batch at ``index`` as ``(x, y)``
    or ``(x, y, sample_weight)``, and ``__len__`` (or the ``num_batches`` property). ``fit``
    calls ``on_epoch_begin`` / ``on_epoch_end`` around every epoch.

    Args:
        workers, use_multiprocessing, max_queue_size: accepted as in Keras and recorded; kerox
            reads the batches in the training thread, in order.
    """

    def __init__(
        self, workers: int = 1, use_multiprocessing: bool = False, max_queue_size: int = 10
    ) -> None:
        for name, value in (("workers", workers), ("max_queue_size", max_queue_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
        self._workers = workers
        self._use_multiprocessing = bool(use_multiprocessing)
        self._max_queue_size = max_queue_size

    @property
    def workers(self) -> int:
        """Worker count requested (kerox reads batches in one thread)."""
        return self.__dict__.get("_workers", 1)

    @workers.setter
    def workers(self, value: int) -> None:
        self._workers = value

    @property
    def use_multiprocessing(self) -> bool:
        """Whether multiprocessing was requested (accepted, not used)."""
        return self.__dict__.get("_use_multiprocessing", False)

    @use_multiprocessing.setter
    def use_multiprocessing(self, value: bool) -> None:
        self._use_multiprocessing = bool(value)

    @property
    def max_queue_size(self) -> int:
        """Prefetch queue size requested (accepted, not used)."""
        return self.__dict__.get("_max_queue_size", 10)

    @max_queue_size.setter
    def max_queue_size(self, value: int) -> None:
        self._max_queue_size = value

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(
            f"{type(self).__name__} must implement `__getitem__(index)` returning a batch."
        )

    def __len__(self) -> int:
        raise NotImplementedError(
            f"{type(self).__name__} must implement `__len__` (or the `num_batches` property)."
        )

    @property
    def num_batches(self) -> int | None:
        """Number of batches in an epoch (``len(self)``); None for an endless dataset."""
        if type(self).__len__ is not PyDataset.__len__:
            return len(self)
        return None

    def on_epoch_begin(self) -> None:
        """Called at the start of every epoch."""

    def on_epoch_end(self) -> None:
        """Called at the end of every epoch (shuffle your indices here)."""


#: Keras 2's name, kept as an alias in Keras 3.
Sequence = PyDataset
