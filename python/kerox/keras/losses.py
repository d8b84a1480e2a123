"""Losses (`keras.losses`) with Keras 3's formulas and defaults.

Inside ``fit``/``evaluate`` the engine computes them (a softmax or sigmoid output followed by a
crossentropy is computed from the logits, fused and stable, as Keras does on the TensorFlow
backend). The NumPy versions here serve standalone calls such as
``keras.losses.CategoricalCrossentropy()(y_true, y_pred)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "Loss",
    "MeanSquaredError",
    "SparseCategoricalCrossentropy",
    "binary_crossentropy",
    "categorical_crossentropy",
    "get",
    "mean_squared_error",
    "mse",
    "sparse_categorical_crossentropy",
]

EPSILON = 1e-7
_REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)


def _f32(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def _log_softmax(z: np.ndarray, axis: int) -> np.ndarray:
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def categorical_crossentropy(
    y_true: Any,
    y_pred: Any,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> np.ndarray:
    """Per-sample categorical crossentropy (probabilities are renormalised and clipped to
    [1e-7, 1 − 1e-7], as in Keras)."""
    y, p = _f32(y_true), _f32(y_pred)
    if y.shape != p.shape:
        raise ValueError(
            "Arguments `target` and `output` must have the same shape. "
            f"Received: target.shape={y.shape}, output.shape={p.shape}"
        )
    if label_smoothing:
        y = y * (1 - label_smoothing) + label_smoothing / y.shape[axis]
    if from_logits:
        return -(y * _log_softmax(p, axis)).sum(axis=axis)
    p = p / p.sum(axis=axis, keepdims=True)
    p = np.clip(p, EPSILON, 1 - EPSILON)
    return -(y * np.log(p)).sum(axis=axis)


def sparse_categorical_crossentropy(
    y_true: Any,
    y_pred: Any,
    from_logits: bool = False,
    ignore_class: int | None = None,
    axis: int = -1,
) -> np.ndarray:
    """Per-sample crossentropy with integer labels."""
    p = _f32(y_pred)
    y = np.asarray(y_true)
    if y.ndim == p.ndim and y.shape[-1] == 1:
        y = y[..., 0]
    y = y.astype(np.int64)
    onehot = np.zeros_like(p)
    np.put_along_axis(onehot, y[..., None], 1.0, axis=-1)
    return categorical_crossentropy(onehot, p, from_logits=from_logits, axis=axis)


def binary_crossentropy(
    y_true: Any,
    y_pred: Any,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> np.ndarray:
    """Per-sample binary crossentropy, averaged over the last axis."""
    y, p = _f32(y_true), _f32(y_pred)
    if label_smoothing:
        y = y * (1 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        per = np.maximum(p, 0) - p * y + np.log1p(np.exp(-np.abs(p)))
    else:
        p = np.clip(p, EPSILON, 1 - EPSILON)
        per = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    return per.mean(axis=axis)


def mean_squared_error(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample mean of squared errors over the last axis."""
    y, p = _f32(y_true), _f32(y_pred)
    return ((y - p) ** 2).mean(axis=-1)


mse = MSE = mean_squared_error


class Loss:
    """Base loss: per-sample values reduced by ``reduction`` (default: mean over samples)."""

    _fn: Callable[..., np.ndarray]
    _kind: str

    def __init__(
        self,
        name: str | None = None,
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        if reduction not in _REDUCTIONS:
            raise ValueError(
                "Invalid value for argument `reduction`. Expected one of "
                f"{_REDUCTIONS[:-1]}. Received: reduction={reduction}"
            )
        self.name = name
        self.reduction = reduction

    def _per_sample(self, y_true: Any, y_pred: Any) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        """The reduced loss (a float32 scalar) for a batch."""
        values = self._per_sample(y_true, y_pred)
        if sample_weight is not None:
            values = values * _f32(sample_weight).reshape(values.shape)
        if self.reduction in ("none", None):
            return values
        if self.reduction == "sum":
            return np.float32(values.sum())
        if self.reduction == "mean_with_sample_weight" and sample_weight is not None:
            return np.float32(values.sum() / _f32(sample_weight).sum())
        return np.float32(values.mean()) if values.size else np.float32(0.0)

    def _engine_spec(self) -> dict[str, Any]:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """Keras-style configuration."""
        return {"name": self.name, "reduction": self.reduction}


class _SmoothedCrossentropy(Loss):
    """Shared body of the categorical and binary crossentropies (both smooth their labels)."""

    _kind: str
    _fn: Any

    def __init__(
        self,
        from_logits: bool,
        label_smoothing: float,
        axis: int,
        reduction: str | None,
        name: str,
    ) -> None:
        super().__init__(name=name, reduction=reduction)
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)
        self.axis = axis

    def _per_sample(self, y_true: Any, y_pred: Any) -> np.ndarray:
        return type(self)._fn(y_true, y_pred, self.from_logits, self.label_smoothing, self.axis)

    def _engine_spec(self) -> dict[str, Any]:
        return {
            "kind": self._kind,
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
        }

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg.update(
            {
                "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing,
                "axis": self.axis,
            }
        )
        return cfg


class CategoricalCrossentropy(_SmoothedCrossentropy):
    """Crossentropy between one-hot labels and predicted probabilities (or logits)."""

    _kind = "categorical_crossentropy"
    _fn = staticmethod(categorical_crossentropy)

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: str | None = "sum_over_batch_size",
        name: str = "categorical_crossentropy",
        dtype: Any = None,
    ) -> None:
        super().__init__(from_logits, label_smoothing, axis, reduction, name)


class SparseCategoricalCrossentropy(Loss):
    """Crossentropy between integer labels and predicted probabilities (or logits)."""

    def __init__(
        self,
        from_logits: bool = False,
        ignore_class: int | None = None,
        reduction: str | None = "sum_over_batch_size",
        name: str = "sparse_categorical_crossentropy",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction)
        if ignore_class is not None:
            raise ValueError("kerox does not support `ignore_class` yet.")
        self.from_logits = bool(from_logits)
        self.ignore_class = None

    def _per_sample(self, y_true: Any, y_pred: Any) -> np.ndarray:
        return sparse_categorical_crossentropy(y_true, y_pred, self.from_logits)

    def _engine_spec(self) -> dict[str, Any]:
        return {"kind": "sparse_categorical_crossentropy", "from_logits": self.from_logits}

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg.update({"from_logits": self.from_logits, "ignore_class": None})
        return cfg


class BinaryCrossentropy(_SmoothedCrossentropy):
    """Binary crossentropy, averaged over the last axis (multi-label friendly)."""

    _kind = "binary_crossentropy"
    _fn = staticmethod(binary_crossentropy)

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: str | None = "sum_over_batch_size",
        name: str = "binary_crossentropy",
        dtype: Any = None,
    ) -> None:
        super().__init__(from_logits, label_smoothing, axis, reduction, name)


class MeanSquaredError(Loss):
    """Mean of squared errors over the last axis."""

    def __init__(
        self,
        reduction: str | None = "sum_over_batch_size",
        name: str = "mean_squared_error",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction)

    def _per_sample(self, y_true: Any, y_pred: Any) -> np.ndarray:
        return mean_squared_error(y_true, y_pred)

    def _engine_spec(self) -> dict[str, Any]:
        return {"kind": "mean_squared_error"}


_BY_NAME: dict[str, Callable[[], Loss]] = {
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "MSE": MeanSquaredError,
}
_BY_FUNCTION: dict[Callable[..., np.ndarray], Callable[[], Loss]] = {
    categorical_crossentropy: CategoricalCrossentropy,
    sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
    binary_crossentropy: BinaryCrossentropy,
    mean_squared_error: MeanSquaredError,
}
_CLASSES = {
    c.__name__: c
    for c in (
        CategoricalCrossentropy,
        SparseCategoricalCrossentropy,
        BinaryCrossentropy,
        MeanSquaredError,
    )
}


def get(identifier: Any) -> Loss:
    """Resolves a loss name, function, class, instance or ``{"class_name", "config"}`` dict."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        factory = _BY_NAME.get(identifier) or _CLASSES.get(identifier)
        if factory is not None:
            return factory()
    elif isinstance(identifier, dict):
        cls = _CLASSES.get(identifier.get("class_name", ""))
        if cls is not None:
            cfg = dict(identifier.get("config") or {})
            cfg.pop("reduction", None)
            return cls(**cfg)
    elif isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    elif callable(identifier) and identifier in _BY_FUNCTION:
        return _BY_FUNCTION[identifier]()
    raise ValueError(f"Could not interpret loss identifier: {identifier}")


def serialize(loss: Loss) -> dict[str, Any]:
    """Keras 3 serialized form."""
    return {
        "module": "keras.losses",
        "class_name": type(loss).__name__,
        "config": loss.get_config(),
        "registered_name": None,
    }
