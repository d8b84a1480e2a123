"""Metrics (`keras.metrics`): accuracies and the `Mean` tracker, with Keras 3 semantics.

During ``fit``/``evaluate`` the engine accumulates them per sample; these classes also work on
their own (``update_state`` / ``result`` / ``reset_state``) with NumPy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "Mean",
    "Metric",
    "SparseCategoricalAccuracy",
    "binary_accuracy",
    "categorical_accuracy",
    "get",
    "sparse_categorical_accuracy",
]


def categorical_accuracy(y_true: Any, y_pred: Any) -> np.ndarray:
    """1.0 where ``argmax(y_true) == argmax(y_pred)`` (first maximum wins)."""
    y, p = np.asarray(y_true), np.asarray(y_pred)
    return (np.argmax(y, axis=-1) == np.argmax(p, axis=-1)).astype(np.float32)


def sparse_categorical_accuracy(y_true: Any, y_pred: Any) -> np.ndarray:
    """1.0 where the integer label equals ``argmax(y_pred)``."""
    y, p = np.asarray(y_true), np.asarray(y_pred)
    if y.ndim == p.ndim and y.shape[-1] == 1:
        y = y[..., 0]
    return (y.astype(np.int64) == np.argmax(p, axis=-1)).astype(np.float32)


def binary_accuracy(y_true: Any, y_pred: Any, threshold: float = 0.5) -> np.ndarray:
    """Mean over the last axis of ``y_true == (y_pred > threshold)``."""
    y, p = np.asarray(y_true, dtype=np.float32), np.asarray(y_pred, dtype=np.float32)
    if y.ndim == p.ndim - 1:
        y = y[..., None]
    return (y == (p > threshold).astype(np.float32)).astype(np.float32).mean(axis=-1)


class Metric:
    """Base metric with float32 ``total``/``count`` state."""

    def __init__(self, name: str | None = None, dtype: Any = None) -> None:
        self.name = name or type(self).__name__.lower()
        self.reset_state()

    def reset_state(self) -> None:
        """Clears the accumulated state."""
        self.total = np.float32(0.0)
        self.count = np.float32(0.0)

    def result(self) -> np.float32:
        """``total / count`` (0 when empty)."""
        return np.float32(self.total / self.count) if self.count else np.float32(0.0)

    def get_config(self) -> dict[str, Any]:
        """Keras-style configuration."""
        return {"name": self.name, "dtype": "float32"}


class Mean(Metric):
    """Weighted mean of the values it is given."""

    def __init__(self, name: str = "mean", dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        """Adds values (optionally weighted)."""
        v = np.asarray(values, dtype=np.float32)
        if sample_weight is None:
            self.total += np.float32(v.sum())
            self.count += np.float32(v.size)
        else:
            w = np.broadcast_to(np.asarray(sample_weight, dtype=np.float32), v.shape)
            self.total += np.float32((v * w).sum())
            self.count += np.float32(w.sum())


class _MeanWrapper(Mean):
    _fn: Any
    _kind: str

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Accumulates the per-sample metric of one batch."""
        super().update_state(type(self)._fn(y_true, y_pred), sample_weight)

    #: Whether this metric is one of compile's ``weighted_metrics`` (uses sample weights).
    _weighted = False

    def _engine_spec(self) -> dict[str, Any]:
        return {"kind": self._kind, "weighted": self._weighted}


class CategoricalAccuracy(_MeanWrapper):
    """How often the argmax of predictions matches the argmax of one-hot labels."""

    _fn = staticmethod(categorical_accuracy)
    _kind = "categorical_accuracy"

    def __init__(self, name: str = "categorical_accuracy", dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)


class SparseCategoricalAccuracy(_MeanWrapper):
    """How often the argmax of predictions matches integer labels."""

    _fn = staticmethod(sparse_categorical_accuracy)
    _kind = "sparse_categorical_accuracy"

    def __init__(self, name: str = "sparse_categorical_accuracy", dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)


class BinaryAccuracy(_MeanWrapper):
    """How often ``y_pred > threshold`` matches binary labels."""

    _kind = "binary_accuracy"

    def __init__(
        self, name: str = "binary_accuracy", dtype: Any = None, threshold: float = 0.5
    ) -> None:
        self.threshold = float(threshold)
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Accumulates the per-sample metric of one batch."""
        Mean.update_state(self, binary_accuracy(y_true, y_pred, self.threshold), sample_weight)

    def _engine_spec(self) -> dict[str, Any]:
        return {"kind": "binary_accuracy", "threshold": self.threshold, "weighted": self._weighted}


_ACCURACY_NAMES = ("accuracy", "acc")
_BY_NAME: dict[str, type[_MeanWrapper]] = {
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "binary_accuracy": BinaryAccuracy,
    "CategoricalAccuracy": CategoricalAccuracy,
    "SparseCategoricalAccuracy": SparseCategoricalAccuracy,
    "BinaryAccuracy": BinaryAccuracy,
}


def get(identifier: Any) -> Metric | str:
    """Resolves a metric name or instance. ``"accuracy"``/``"acc"`` stay strings until the
    shapes of the data are known (Keras 3 resolves them from ``y_true``/``y_pred`` shapes)."""
    if isinstance(identifier, _MeanWrapper):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, _MeanWrapper):
        return identifier()
    if isinstance(identifier, str):
        if identifier.lower() in _ACCURACY_NAMES:
            return identifier
        cls = _BY_NAME.get(identifier)
        if cls is not None:
            return cls()
    if identifier is categorical_accuracy:
        return CategoricalAccuracy()
    if identifier is sparse_categorical_accuracy:
        return SparseCategoricalAccuracy()
    if identifier is binary_accuracy:
        return BinaryAccuracy()
    raise ValueError(
        f"Could not interpret metric identifier: {identifier}. kerox supports 'accuracy', "
        "'categorical_accuracy', 'sparse_categorical_accuracy' and 'binary_accuracy'."
    )


def resolve_accuracy(name: str, y_ndim: int, y_last: int, out_dim: int) -> _MeanWrapper:
    """Keras 3's shape rule for ``"accuracy"``: binary if the output has one unit; sparse if
    the labels have lower rank or one column against several outputs; else categorical."""
    if out_dim == 1:
        m: _MeanWrapper = BinaryAccuracy(name=name)
    elif y_ndim < 2 or (y_last == 1 and out_dim > 1):
        m = SparseCategoricalAccuracy(name=name)
    else:
        m = CategoricalAccuracy(name=name)
    return m
