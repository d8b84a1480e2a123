"""Losses (`keras.losses`) with Keras 3's formulas and defaults.

Inside ``fit``/``evaluate`` the engine computes them (a softmax or sigmoid output followed by a
crossentropy is computed from the logits, fused and stable, as Keras does on the TensorFlow
backend). The NumPy versions here serve standalone calls such as
``keras.losses.CategoricalCrossentropy()(y_true, y_pred)`` and follow Keras's formulas step by
step: the same ``1e-7`` clips, hinge's conversion of {0, 1} labels to {-1, 1} (decided over the
whole batch), Huber's ``delta``, log-cosh as ``x + softplus(-2x) - log 2`` and cosine
similarity's l2-normalisation ``x * min(1/||x||, 1e7)``.

Training supports Keras's default reduction only (``"sum_over_batch_size"``, the mean of the
per-sample values over the batch; ``"mean"`` is the same for kerox's unmasked outputs).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "KLD",
    "MAE",
    "MAPE",
    "MSE",
    "MSLE",
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "CategoricalHinge",
    "CosineSimilarity",
    "Hinge",
    "Huber",
    "KLDivergence",
    "LogCosh",
    "Loss",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "Poisson",
    "SparseCategoricalCrossentropy",
    "SquaredHinge",
    "binary_crossentropy",
    "categorical_crossentropy",
    "categorical_hinge",
    "cosine_similarity",
    "get",
    "hinge",
    "huber",
    "kl_divergence",
    "kld",
    "log_cosh",
    "logcosh",
    "mae",
    "mape",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "mean_squared_logarithmic_error",
    "mse",
    "msle",
    "poisson",
    "serialize",
    "sparse_categorical_crossentropy",
    "squared_hinge",
]

EPSILON = 1e-7
_REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)


def _f32(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def _same_rank(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keras's ``squeeze_or_expand_to_same_rank``: a trailing axis of 1 on the higher-rank side
    is dropped, or added to a rank-1 other side."""
    if a.ndim == b.ndim + 1 and a.shape[-1] == 1:
        if b.ndim == 1:
            b = b[..., None]
        else:
            a = a[..., 0]
    elif b.ndim == a.ndim + 1 and b.shape[-1] == 1:
        if a.ndim == 1:
            a = a[..., None]
        else:
            b = b[..., 0]
    return a, b


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    """``y_true`` and ``y_pred`` as float32 arrays of the same rank."""
    return _same_rank(_f32(y_true), _f32(y_pred))


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
    y, p = _pair(y_true, y_pred)
    return np.square(y - p).mean(axis=-1)


def mean_absolute_error(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample mean of absolute errors over the last axis."""
    y, p = _pair(y_true, y_pred)
    return np.abs(y - p).mean(axis=-1)


def mean_absolute_percentage_error(y_true: Any, y_pred: Any) -> np.ndarray:
    """``100 * mean(|y_true - y_pred| / max(|y_true|, 1e-7))`` over the last axis."""
    y, p = _pair(y_true, y_pred)
    diff = np.abs((y - p) / np.maximum(np.abs(y), np.float32(EPSILON)))
    return np.float32(100.0) * diff.mean(axis=-1)


def mean_squared_logarithmic_error(y_true: Any, y_pred: Any) -> np.ndarray:
    """``mean((log(max(y_pred, 1e-7) + 1) - log(max(y_true, 1e-7) + 1))**2)`` over the last
    axis."""
    y, p = _pair(y_true, y_pred)
    eps = np.float32(EPSILON)
    first = np.log(np.maximum(p, eps) + np.float32(1.0))
    second = np.log(np.maximum(y, eps) + np.float32(1.0))
    return np.square(first - second).mean(axis=-1)


def _l2_normalize(x: np.ndarray, axis: int) -> np.ndarray:
    """Keras's ``normalize(x, order=2)``: ``x * min(rsqrt(sum(x**2)), 1 / 1e-7)``."""
    square_sum = np.square(x).sum(axis=axis, keepdims=True)
    with np.errstate(divide="ignore"):
        inv_norm = np.float32(1.0) / np.sqrt(square_sum)
    return x * np.minimum(inv_norm, np.float32(1.0 / EPSILON))


def cosine_similarity(y_true: Any, y_pred: Any, axis: int = -1) -> np.ndarray:
    """Per-sample negative cosine similarity, ``-sum(l2_norm(y_true) * l2_norm(y_pred))``
    (0 where either vector is zero)."""
    y, p = _pair(y_true, y_pred)
    return -(_l2_normalize(y, axis) * _l2_normalize(p, axis)).sum(axis=axis)


def huber(y_true: Any, y_pred: Any, delta: float = 1.0) -> np.ndarray:
    """Per-sample Huber loss: ``0.5 * e**2`` where ``|e| <= delta``, else
    ``delta * |e| - 0.5 * delta**2``, averaged over the last axis (``e = y_pred - y_true``)."""
    y, p = _pair(y_true, y_pred)
    d = np.float32(delta)
    half = np.float32(0.5)
    error = p - y
    abs_error = np.abs(error)
    values = np.where(abs_error <= d, half * np.square(error), d * abs_error - half * d * d)
    return values.mean(axis=-1)


def log_cosh(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample mean of ``log(cosh(y_pred - y_true))``, computed as Keras does:
    ``x + softplus(-2x) - log(2)`` (stable for large errors)."""
    y, p = _pair(y_true, y_pred)
    x = p - y
    softplus = np.logaddexp(x * np.float32(-2.0), np.float32(0.0))
    return (x + softplus - np.float32(math.log(2.0))).mean(axis=-1)


def _hinge_labels(y: np.ndarray) -> np.ndarray:
    """Keras's rule: labels that are all 0 or 1 (over the whole batch) become -1 or 1."""
    if np.all((y == 0) | (y == 1)):
        return np.float32(2.0) * y - np.float32(1.0)
    return y


def hinge(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample mean of ``max(1 - y_true * y_pred, 0)``; {0, 1} labels count as {-1, 1}."""
    y, p = _pair(y_true, y_pred)
    return np.maximum(np.float32(1.0) - _hinge_labels(y) * p, np.float32(0.0)).mean(axis=-1)


def squared_hinge(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample mean of ``max(1 - y_true * y_pred, 0)**2``; {0, 1} labels count as
    {-1, 1}."""
    y, p = _pair(y_true, y_pred)
    margin = np.maximum(np.float32(1.0) - _hinge_labels(y) * p, np.float32(0.0))
    return np.square(margin).mean(axis=-1)


def categorical_hinge(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample ``max(neg - pos + 1, 0)`` with ``pos = sum(y_true * y_pred)`` and
    ``neg = max((1 - y_true) * y_pred)`` over the last axis."""
    y, p = _pair(y_true, y_pred)
    pos = (y * p).sum(axis=-1)
    neg = ((np.float32(1.0) - y) * p).max(axis=-1)
    return np.maximum(neg - pos + np.float32(1.0), np.float32(0.0))


def kl_divergence(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample ``sum(y_true * log(y_true / y_pred))`` with both clipped to [1e-7, 1]."""
    y, p = _pair(y_true, y_pred)
    y = np.clip(y, np.float32(EPSILON), np.float32(1.0))
    p = np.clip(p, np.float32(EPSILON), np.float32(1.0))
    return (y * np.log(y / p)).sum(axis=-1)


def poisson(y_true: Any, y_pred: Any) -> np.ndarray:
    """Per-sample mean of ``y_pred - y_true * log(y_pred + 1e-7)``."""
    y, p = _pair(y_true, y_pred)
    return (p - y * np.log(p + np.float32(EPSILON))).mean(axis=-1)


# Keras's short names (the upper-case ones are its legacy aliases, resolved by `get` as well).
mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
kld = KLD = kl_divergence
logcosh = log_cosh


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


class _FunctionLoss(Loss):
    """A loss that is one per-sample function without settings (Keras's
    ``LossFunctionWrapper`` subclasses)."""

    def _per_sample(self, y_true: Any, y_pred: Any) -> np.ndarray:
        return type(self)._fn(y_true, y_pred)

    def _engine_spec(self) -> dict[str, Any]:
        return {"kind": self._kind}


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


class MeanSquaredError(_FunctionLoss):
    """Mean of squared errors over the last axis."""

    _kind = "mean_squared_error"
    _fn = staticmethod(mean_squared_error)

    def __init__(
        self,
        reduction: str | None = "sum_over_batch_size",
        name: str = "mean_squared_error",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction)


class MeanAbsoluteError(_FunctionLoss):
    """Mean of absolute errors over the last axis."""

    _kind = "mean_absolute_error"
    _fn = staticmethod(mean_absolute_error)

    def __init__(
        self,
        reduction: str | None = "sum_over_batch_size",
        name: str = "mean_absolute_error",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction)


class MeanAbsolutePercentageError(_FunctionLoss):
    """``100 * mean(|y_true - y_pred| / max(|y_true|, 1e-7))`` over the last axis."""

    _kind = "mean_absolute_percentage_error"
    _fn = staticmethod(mean_absolute_percentage_error)

    def __init__(
        self,
        reduction: str | None = "sum_over_batch_size",
        name: str = "mean_absolute_percentage_error",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction)


class MeanSquaredLogarithmicError(_FunctionLoss):
    """Mean of squared differences of ``log(max(x, 1e-7) + 1)`` over the last axis."""

    _kind = "mean_squared_logarithmic_error"
    _fn = staticmethod(mean_squared_logarithmic_error)

    def __init__(
        self,
        reduction: str | None = "sum_over_batch_size",
        name: str = "mean_squared_logarithmic_error",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction)


class CosineSimilarity(_FunctionLoss):
    """Negative cosine similarity between ``y_true`` and ``y_pred`` (-1 is best)."""

    _kind = "cosine_similarity"

    def __init__(
        self,
        axis: int = -1,
        reduction: str | None = "sum_over_batch_size",
        name: str = "cosine_similarity",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction)
        self.axis = _last_axis_only(axis, type(self).__name__)

    def _per_sample(self, y_true: Any, y_pred: Any) -> np.ndarray:
        return cosine_similarity(y_true, y_pred, axis=self.axis)


class Huber(_FunctionLoss):
    """Huber loss: quadratic for errors up to ``delta``, linear beyond, averaged over the last
    axis.

    Keras's ``get_config`` leaves ``delta`` out (a Keras model saved with ``Huber(delta=2.0)``
    reloads with ``delta=1.0``); kerox adds it whenever it is not the default, so the setting
    survives saving and Keras's ``Huber(**config)`` still accepts the config.
    """

    _kind = "huber"

    def __init__(
        self,
        delta: float = 1.0,
        reduction: str | None = "sum_over_batch_size",
        name: str = "huber_loss",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction)
        self.delta = _check_delta(delta)

    def _per_sample(self, y_true: Any, y_pred: Any) -> np.ndarray:
        return huber(y_true, y_pred, self.delta)

    def _engine_spec(self) -> dict[str, Any]:
        return {"kind": "huber", "delta": self.delta}

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        if self.delta != 1.0:
            cfg["delta"] = self.delta
        return cfg


class LogCosh(_FunctionLoss):
    """Mean of ``log(cosh(y_pred - y_true))`` over the last axis."""

    _kind = "log_cosh"
    _fn = staticmethod(log_cosh)

    def __init__(
        self,
        reduction: str | None = "sum_over_batch_size",
        name: str = "log_cosh",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction)


class Hinge(_FunctionLoss):
    """Mean of ``max(1 - y_true * y_pred, 0)``; labels in {0, 1} are taken as {-1, 1}."""

    _kind = "hinge"
    _fn = staticmethod(hinge)

    def __init__(
        self,
        reduction: str | None = "sum_over_batch_size",
        name: str = "hinge",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction)


class SquaredHinge(_FunctionLoss):
    """Mean of ``max(1 - y_true * y_pred, 0)**2``; labels in {0, 1} are taken as {-1, 1}."""

    _kind = "squared_hinge"
    _fn = staticmethod(squared_hinge)

    def __init__(
        self,
        reduction: str | None = "sum_over_batch_size",
        name: str = "squared_hinge",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction)


class CategoricalHinge(_FunctionLoss):
    """``max(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)`` per sample."""

    _kind = "categorical_hinge"
    _fn = staticmethod(categorical_hinge)

    def __init__(
        self,
        reduction: str | None = "sum_over_batch_size",
        name: str = "categorical_hinge",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction)


class KLDivergence(_FunctionLoss):
    """Kullback-Leibler divergence ``sum(y_true * log(y_true / y_pred))``, both clipped to
    [1e-7, 1]."""

    _kind = "kl_divergence"
    _fn = staticmethod(kl_divergence)

    def __init__(
        self,
        reduction: str | None = "sum_over_batch_size",
        name: str = "kl_divergence",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction)


class Poisson(_FunctionLoss):
    """Mean of ``y_pred - y_true * log(y_pred + 1e-7)`` over the last axis."""

    _kind = "poisson"
    _fn = staticmethod(poisson)

    def __init__(
        self,
        reduction: str | None = "sum_over_batch_size",
        name: str = "poisson",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction)


def _check_delta(delta: Any) -> float:
    """``delta`` as a float, or a ValueError unless it is a positive finite number (in float32,
    which the loss computes in)."""
    ok = isinstance(delta, (int, float, np.integer, np.floating)) and not isinstance(delta, bool)
    value = float(delta) if ok else math.nan
    if not (ok and 0 < value <= float(np.finfo(np.float32).max) and np.float32(value) > 0):
        raise ValueError(
            "Argument `delta` of Huber must be a positive finite number (where the loss turns "
            f"from quadratic to linear). Received: delta={delta!r}"
        )
    return value


def _last_axis_only(axis: Any, owner: str) -> int:
    """``axis`` where it is -1; kerox computes these along the features (last) axis only."""
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or axis != -1:
        raise ValueError(
            f"kerox supports {owner} with axis=-1 only (the features axis). Received: axis={axis!r}"
        )
    return -1


_CLASS_LIST: tuple[type[Loss], ...] = (
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
    BinaryCrossentropy,
    MeanSquaredError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError,
    CosineSimilarity,
    Huber,
    LogCosh,
    Hinge,
    SquaredHinge,
    CategoricalHinge,
    KLDivergence,
    Poisson,
)
_CLASSES: dict[str, type[Loss]] = {c.__name__: c for c in _CLASS_LIST}
#: Loss functions and the class that computes each in the engine (Keras's defaults).
_BY_FUNCTION: dict[Callable[..., np.ndarray], Callable[[], Loss]] = {
    categorical_crossentropy: CategoricalCrossentropy,
    sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
    binary_crossentropy: BinaryCrossentropy,
    mean_squared_error: MeanSquaredError,
    mean_absolute_error: MeanAbsoluteError,
    mean_absolute_percentage_error: MeanAbsolutePercentageError,
    mean_squared_logarithmic_error: MeanSquaredLogarithmicError,
    cosine_similarity: CosineSimilarity,
    huber: Huber,
    log_cosh: LogCosh,
    hinge: Hinge,
    squared_hinge: SquaredHinge,
    categorical_hinge: CategoricalHinge,
    kl_divergence: KLDivergence,
    poisson: Poisson,
}
#: The strings Keras 3's ``losses.get`` takes: function names and its short aliases (Keras 3
#: does not take "logcosh"), besides the class names.
_BY_NAME: dict[str, Callable[[], Loss]] = {
    **{fn.__name__: cls for fn, cls in _BY_FUNCTION.items()},
    "bce": BinaryCrossentropy,
    "BCE": BinaryCrossentropy,
    "kld": KLDivergence,
    "KLD": KLDivergence,
    "mae": MeanAbsoluteError,
    "MAE": MeanAbsoluteError,
    "mse": MeanSquaredError,
    "MSE": MeanSquaredError,
    "mape": MeanAbsolutePercentageError,
    "MAPE": MeanAbsolutePercentageError,
    "msle": MeanSquaredLogarithmicError,
    "MSLE": MeanSquaredLogarithmicError,
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
            if cfg.get("reduction") == "auto":  # Keras 2: the batch mean, as today's default
                cfg["reduction"] = "sum_over_batch_size"
            return cls(**cfg)
    elif isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    elif callable(identifier) and identifier in _BY_FUNCTION:
        return _BY_FUNCTION[identifier]()
    raise ValueError(f"Could not interpret loss identifier: {identifier}")


#: The reductions training implements: Keras's default, the mean of the per-sample (weighted)
#: losses over the batch ("mean" divides by the same count when no output is masked).
_TRAINING_REDUCTIONS = ("sum_over_batch_size", "mean")


def resolve_for_training(identifier: Any) -> Loss:
    """The loss ``compile`` trains with: :func:`get`, refusing a reduction the engine does not
    implement (it would otherwise train with a different loss than Keras)."""
    loss = get(identifier)
    if loss.reduction not in _TRAINING_REDUCTIONS:
        raise ValueError(
            f"kerox trains with reduction='sum_over_batch_size' (Keras's default) only; "
            f"received {type(loss).__name__}(reduction={loss.reduction!r}). Keep the default "
            "reduction for `compile`; other reductions work in standalone loss calls."
        )
    return loss


def serialize(loss: Loss) -> dict[str, Any]:
    """Keras 3 serialized form."""
    return {
        "module": "keras.losses",
        "class_name": type(loss).__name__,
        "config": loss.get_config(),
        "registered_name": None,
    }
