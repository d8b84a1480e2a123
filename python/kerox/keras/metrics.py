"""Metrics (`keras.metrics`) with Keras 3 semantics: accuracies, the losses as metrics (the
mean over samples of a loss's per-sample value, Keras's ``MeanMetricWrapper`` of a loss
function), ``RootMeanSquaredError``, ``CosineSimilarity`` and the `Mean` tracker.

During ``fit``/``evaluate`` the engine accumulates them per sample; these classes also work on
their own (``update_state`` / ``result`` / ``reset_state``) with NumPy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import losses as _losses
from .layers import _snake_case
from .losses import (
    binary_crossentropy,
    categorical_crossentropy,
    categorical_hinge,
    hinge,
    huber,
    kl_divergence,
    log_cosh,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
    poisson,
    sparse_categorical_crossentropy,
    squared_hinge,
)

__all__ = [
    "BinaryAccuracy",
    "BinaryCrossentropy",
    "CategoricalAccuracy",
    "CategoricalCrossentropy",
    "CategoricalHinge",
    "CosineSimilarity",
    "Hinge",
    "KLDivergence",
    "LogCoshError",
    "Mean",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "Metric",
    "Poisson",
    "RootMeanSquaredError",
    "SparseCategoricalAccuracy",
    "SparseCategoricalCrossentropy",
    "SquaredHinge",
    "binary_accuracy",
    "binary_crossentropy",
    "categorical_accuracy",
    "categorical_crossentropy",
    "categorical_hinge",
    "get",
    "hinge",
    "huber",
    "kl_divergence",
    "log_cosh",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "mean_squared_logarithmic_error",
    "poisson",
    "serialize",
    "sparse_categorical_accuracy",
    "sparse_categorical_crossentropy",
    "squared_hinge",
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


def _cosine_similarity(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample cosine similarity along the last axis (the metric's sign: 1 is best)."""
    return -_losses.cosine_similarity(y_true, y_pred)


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
            w = np.asarray(sample_weight, dtype=np.float32)
            if w.ndim == v.ndim + 1 and w.shape[-1] == 1:  # (N, 1) weights of (N,) values
                w = w[..., 0]
            w = np.broadcast_to(w, v.shape)
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


class _LossMean(_MeanWrapper):
    """The (weighted) mean over samples of a loss's per-sample value: Keras's
    ``MeanMetricWrapper`` of a loss function. The engine computes it with the loss's kernel
    (``"mean_of_loss"``); standalone it uses the loss's NumPy function."""

    def __init__(self, loss: _losses.Loss, name: str, dtype: Any = None) -> None:
        self._loss = loss
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Accumulates the per-sample loss values of one batch."""
        Mean.update_state(self, self._loss._per_sample(y_true, y_pred), sample_weight)

    def _engine_spec(self) -> dict[str, Any]:
        spec = self._loss._engine_spec()
        loss_kind = spec.pop("kind")
        return {"kind": "mean_of_loss", "loss": loss_kind, **spec, "weighted": self._weighted}


class MeanSquaredError(_LossMean):
    """Mean over samples of the mean squared error."""

    def __init__(self, name: str = "mean_squared_error", dtype: Any = None) -> None:
        super().__init__(_losses.MeanSquaredError(), name=name, dtype=dtype)


class MeanAbsoluteError(_LossMean):
    """Mean over samples of the mean absolute error."""

    def __init__(self, name: str = "mean_absolute_error", dtype: Any = None) -> None:
        super().__init__(_losses.MeanAbsoluteError(), name=name, dtype=dtype)


class MeanAbsolutePercentageError(_LossMean):
    """Mean over samples of the mean absolute percentage error."""

    def __init__(self, name: str = "mean_absolute_percentage_error", dtype: Any = None) -> None:
        super().__init__(_losses.MeanAbsolutePercentageError(), name=name, dtype=dtype)


class MeanSquaredLogarithmicError(_LossMean):
    """Mean over samples of the mean squared logarithmic error."""

    def __init__(self, name: str = "mean_squared_logarithmic_error", dtype: Any = None) -> None:
        super().__init__(_losses.MeanSquaredLogarithmicError(), name=name, dtype=dtype)


class LogCoshError(_LossMean):
    """Mean over samples of the log-cosh error (named ``"logcosh"``, as in Keras)."""

    def __init__(self, name: str = "logcosh", dtype: Any = None) -> None:
        super().__init__(_losses.LogCosh(), name=name, dtype=dtype)


class KLDivergence(_LossMean):
    """Mean over samples of the Kullback-Leibler divergence."""

    def __init__(self, name: str = "kl_divergence", dtype: Any = None) -> None:
        super().__init__(_losses.KLDivergence(), name=name, dtype=dtype)


class Poisson(_LossMean):
    """Mean over samples of the Poisson loss."""

    def __init__(self, name: str = "poisson", dtype: Any = None) -> None:
        super().__init__(_losses.Poisson(), name=name, dtype=dtype)


class Hinge(_LossMean):
    """Mean over samples of the hinge loss ({0, 1} labels are taken as {-1, 1})."""

    def __init__(self, name: str = "hinge", dtype: Any = None) -> None:
        super().__init__(_losses.Hinge(), name=name, dtype=dtype)


class SquaredHinge(_LossMean):
    """Mean over samples of the squared hinge loss ({0, 1} labels are taken as {-1, 1})."""

    def __init__(self, name: str = "squared_hinge", dtype: Any = None) -> None:
        super().__init__(_losses.SquaredHinge(), name=name, dtype=dtype)


class CategoricalHinge(_LossMean):
    """Mean over samples of the categorical hinge loss."""

    def __init__(self, name: str = "categorical_hinge", dtype: Any = None) -> None:
        super().__init__(_losses.CategoricalHinge(), name=name, dtype=dtype)


class BinaryCrossentropy(_LossMean):
    """Mean over samples of the binary crossentropy."""

    def __init__(
        self,
        name: str = "binary_crossentropy",
        dtype: Any = None,
        from_logits: bool = False,
        label_smoothing: float = 0,
    ) -> None:
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        loss = _losses.BinaryCrossentropy(from_logits=from_logits, label_smoothing=label_smoothing)
        super().__init__(loss, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        """Keras-style configuration."""
        return {
            **super().get_config(),
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
        }


class CategoricalCrossentropy(_LossMean):
    """Mean over samples of the categorical crossentropy (one-hot labels)."""

    def __init__(
        self,
        name: str = "categorical_crossentropy",
        dtype: Any = None,
        from_logits: bool = False,
        label_smoothing: float = 0,
        axis: int = -1,
    ) -> None:
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = _losses._last_axis_only(axis, type(self).__name__)
        loss = _losses.CategoricalCrossentropy(
            from_logits=from_logits, label_smoothing=label_smoothing
        )
        super().__init__(loss, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        """Keras-style configuration."""
        return {
            **super().get_config(),
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
            "axis": self.axis,
        }


class SparseCategoricalCrossentropy(_LossMean):
    """Mean over samples of the sparse categorical crossentropy (integer labels; the loss
    must then be sparse too, as the engine reads the targets once per step)."""

    def __init__(
        self,
        name: str = "sparse_categorical_crossentropy",
        dtype: Any = None,
        from_logits: bool = False,
        ignore_class: int | None = None,
        axis: int = -1,
    ) -> None:
        self.from_logits = from_logits
        self.axis = _losses._last_axis_only(axis, type(self).__name__)
        loss = _losses.SparseCategoricalCrossentropy(
            from_logits=from_logits, ignore_class=ignore_class
        )
        self.ignore_class = None
        super().__init__(loss, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        """Keras-style configuration."""
        return {
            **super().get_config(),
            "from_logits": self.from_logits,
            "ignore_class": self.ignore_class,
            "axis": self.axis,
        }


class RootMeanSquaredError(_MeanWrapper):
    """Square root of the (weighted) mean over samples of the mean squared error."""

    _fn = staticmethod(mean_squared_error)
    _kind = "root_mean_squared_error"

    def __init__(self, name: str = "root_mean_squared_error", dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)

    def result(self) -> np.float32:
        """``sqrt(total / count)`` (0 when empty)."""
        return np.float32(np.sqrt(super().result()))


class CosineSimilarity(_MeanWrapper):
    """Mean over samples of the cosine similarity of ``y_true`` and ``y_pred`` along the last
    axis (1 is best, unlike the loss of the same name)."""

    _fn = staticmethod(_cosine_similarity)
    _kind = "cosine_similarity"

    def __init__(self, name: str = "cosine_similarity", dtype: Any = None, axis: int = -1) -> None:
        self.axis = _losses._last_axis_only(axis, type(self).__name__)
        super().__init__(name=name, dtype=dtype)


_ACCURACY_NAMES = ("accuracy", "acc")
_CLASS_LIST: tuple[type[_MeanWrapper], ...] = (
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    BinaryAccuracy,
    MeanSquaredError,
    RootMeanSquaredError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError,
    CosineSimilarity,
    LogCoshError,
    Hinge,
    SquaredHinge,
    CategoricalHinge,
    KLDivergence,
    Poisson,
    BinaryCrossentropy,
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
)
#: The strings Keras 3's ``metrics.get`` takes: class names, their snake_case forms (so
#: ``"log_cosh_error"``, not ``"logcosh"``; ``"kl_divergence"``, not ``"kld"``) and a few
#: short aliases. ``compile`` names such a metric by the string itself (``"mae"``).
_BY_NAME: dict[str, type[_MeanWrapper]] = {
    **{c.__name__: c for c in _CLASS_LIST},
    **{_snake_case(c.__name__): c for c in _CLASS_LIST},
    "bce": BinaryCrossentropy,
    "BCE": BinaryCrossentropy,
    "mse": MeanSquaredError,
    "MSE": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "MAE": MeanAbsoluteError,
    "mape": MeanAbsolutePercentageError,
    "MAPE": MeanAbsolutePercentageError,
    "msle": MeanSquaredLogarithmicError,
    "MSLE": MeanSquaredLogarithmicError,
}
_BY_FUNCTION: dict[Any, type[_MeanWrapper]] = {
    categorical_accuracy: CategoricalAccuracy,
    sparse_categorical_accuracy: SparseCategoricalAccuracy,
    binary_accuracy: BinaryAccuracy,
}


def _supported() -> str:
    names = sorted(n for n in _BY_NAME if n == n.lower())
    return ", ".join(repr(n) for n in ["accuracy", "acc", *names])


def get(identifier: Any) -> Metric | str:
    """Resolves a metric name, class, instance, function or ``{"class_name", "config"}`` dict.
    ``"accuracy"``/``"acc"`` stay strings until the shapes of the data are known (Keras 3
    resolves them from ``y_true``/``y_pred`` shapes). A loss function (``keras.losses.huber``)
    becomes the mean of that loss over samples, named after the function."""
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
    elif isinstance(identifier, dict):
        cls = _BY_NAME.get(identifier.get("class_name", ""))
        if cls is not None:
            return cls(**dict(identifier.get("config") or {}))
    elif callable(identifier):
        if identifier in _BY_FUNCTION:
            return _BY_FUNCTION[identifier]()
        if identifier in _losses._BY_FUNCTION:
            loss = _losses._BY_FUNCTION[identifier]()
            return _LossMean(loss, name=_snake_case(identifier.__name__))
    raise ValueError(
        f"Could not interpret metric identifier: {identifier}. kerox supports the metric "
        f"classes of keras.metrics it has, the loss functions of keras.losses, and the "
        f"strings {_supported()}."
    )


def resolve_for_compile(identifier: Any) -> Metric | str:
    """A metric as ``compile`` takes it: :func:`get`, named by the string when it was given
    as one (Keras 3 names ``metrics=["mae"]`` ``"mae"`` in the logs, while
    ``metrics.get("mae").name`` is ``"mean_absolute_error"``)."""
    metric = get(identifier)
    if isinstance(identifier, str) and isinstance(metric, Metric):
        metric.name = identifier
    return metric


def serialize(metric: Metric) -> dict[str, Any]:
    """Keras 3 serialized form."""
    return {
        "module": "keras.metrics",
        "class_name": type(metric).__name__,
        "config": metric.get_config(),
        "registered_name": None,
    }


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
