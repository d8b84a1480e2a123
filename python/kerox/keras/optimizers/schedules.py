"""Learning-rate schedules (`keras.optimizers.schedules`).

A schedule maps the optimizer's step counter (0 for the first update) to a learning rate. The six
built-in schedules compute Keras 3's formulas in float32 with the same operations in the same
order as Keras's JAX backend, so that ``schedule(step)`` equals
``keras.optimizers.schedules.<Name>(...)(step)`` (on the CPU, bit for bit). Users may subclass
:class:`LearningRateSchedule` and implement ``__call__(step)``.

The training loop asks a schedule for many steps at once through the private
``_values(first_step, count)``: built-in schedules compute it vectorised (bit for bit the values
their ``__call__`` gives), user schedules are called once per step, and any value that is not a
finite number >= 0 is an error naming the step.

Unlike Keras, the built-in schedules refuse arguments that cannot give a usable learning rate
(NaN or negative rates, non-positive or non-finite step counts, ...) when they are constructed,
and always compute in float32 (Keras computes in int32 when ``initial_learning_rate`` is a
Python int, which truncates the decay rate and so the learning rate to 0).
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "CosineDecay",
    "CosineDecayRestarts",
    "ExponentialDecay",
    "InverseTimeDecay",
    "LearningRateSchedule",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "deserialize",
    "serialize",
]

_F32 = np.float32
_ONE = np.float32(1.0)
_HALF = np.float32(0.5)
_PI = np.float32(math.pi)
_TINY = np.finfo(np.float32).tiny
_MODULE = "keras.optimizers.schedules"


# --------------------------------------------------------------------------------------------
# float32 arithmetic as Keras's JAX backend does it on the CPU
# --------------------------------------------------------------------------------------------
# Keras evaluates a schedule with one XLA float32 op per `keras.ops` call. Basic arithmetic,
# floor/ceil and `pow` (glibc's powf, which numpy's float32 power also calls) agree with numpy
# float32 bit for bit, except that XLA flushes subnormal results to zero. `cos` and `log` do
# not: XLA calls glibc's cosf, and inlines its own Cephes-style logf. Both are re-derived below
# in numpy (checked against jax.numpy on every float32 in [0, 4) for cos and in [2^-8, 2^26)
# for log). They matter: near the end of a cosine period `1 + cos(x)` cancels, so one ulp of
# cos becomes a relative error of up to 1e-4, and `floor(log(a) / log(t_mul))` in
# CosineDecayRestarts jumps a whole period when log's last bit differs at a restart step.


def _ftz(x: np.ndarray) -> np.ndarray:
    """Flush subnormal results to (signed) zero, as XLA does on the CPU."""
    return np.where(np.abs(x) < _TINY, x * _F32(0.0), x)


def _pow(base: Any, exponent: Any) -> np.ndarray:
    return _ftz(np.power(base, exponent))


def _fma(a: Any, b: Any, c: Any) -> np.ndarray:
    """float32 fused multiply-add (exact product in float64, one rounding of the sum)."""
    exact = np.asarray(a, np.float64) * np.asarray(b, np.float64) + np.asarray(c, np.float64)
    return exact.astype(np.float32)


# glibc's cosf (sysdeps/ieee754/flt-32/s_cosf.c): the argument is reduced by a multiple n of
# pi/2 in double precision, then a degree-8 polynomial in double gives cos (n even) or sin (n
# odd) of the remainder, rounded once to float32.
_HALF_PI = float.fromhex("0x1.921fb54442d18p0")
_TWO_OVER_PI_2_24 = float.fromhex("0x1.45f306dc9c883p+23")  # 2/pi * 2**24
_COS_POLY = (
    1.0,
    float.fromhex("-0x1.ffffffd0c621cp-2"),
    float.fromhex("0x1.55553e1068f19p-5"),
    float.fromhex("-0x1.6c087e89a359dp-10"),
    float.fromhex("0x1.99343027bf8c3p-16"),
)
_SIN_POLY = (
    float.fromhex("-0x1.555545995a603p-3"),
    float.fromhex("0x1.1107605230bc4p-7"),
    float.fromhex("-0x1.994eb3774cf24p-13"),
)


def _top12(x: np.ndarray) -> np.ndarray:
    return (np.abs(x).view(np.uint32) >> 20) & 0x7FF


def _cos(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32)
    x = y.astype(np.float64)
    top = _top12(y)
    # Quadrant n: 0 below ~pi/4 (the test compares exponent and 3 mantissa bits only).
    n = (np.trunc(x * _TWO_OVER_PI_2_24).astype(np.int64) + 0x800000) >> 24
    n = np.where(top < _top12(np.float32(math.pi / 4)), 0, n)
    r = x - n * _HALF_PI
    r2 = r * r
    c0, c1, c2, c3, c4 = _COS_POLY
    r4 = r2 * r2
    cos_r = (c0 + r2 * c1 + r4 * c2) + (r4 * r2) * (c3 + r2 * c4)
    cos_r = np.where(n & 2, -cos_r, cos_r)  # quadrants 2 and 3 negate the cosine
    s1, s2, s3 = _SIN_POLY
    rs = np.where((n & 3) == 1, -r, r)  # sin(-r) in quadrant 1, sin(r) in quadrant 3
    r3 = rs * r2
    sin_r = (rs + r3 * s1) + (r3 * r2) * (s2 + r2 * s3)
    out = np.where(n & 1, sin_r, cos_r).astype(np.float32)
    out = np.where(top < _top12(np.float32(2.0**-12)), _ONE, out)
    # Not reached by the schedules (|argument| <= pi); keep any input well-defined.
    return np.where(top >= _top12(np.float32(120.0)), np.cos(x).astype(np.float32), out)


# XLA's float32 log (Cephes logf, with the multiply-adds fused): x = 2**e * m, m in
# [sqrt(1/2), sqrt(2)), log(m) from a degree-8 polynomial in m - 1, e * log(2) added in two
# parts.
_LOG_POLY = tuple(
    np.float32(c)
    for c in (
        7.0376836292e-2,
        -1.1514610310e-1,
        1.1676998740e-1,
        -1.2420140846e-1,
        1.4249322787e-1,
        -1.6668057665e-1,
        2.0000714765e-1,
        -2.4999993993e-1,
        3.3333331174e-1,
    )
)
_LN2_LOW = np.float32(-2.12194440e-4)
_LN2_HIGH = np.float32(0.693359375)
_SQRT_HALF = np.float32(0.707106781186547524)


def _log(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    bits = np.maximum(x, _TINY).view(np.uint32)
    e = _ONE + ((bits >> 23).astype(np.int32) - 127).astype(np.float32)
    m = ((bits & np.uint32(0x807FFFFF)) | np.uint32(0x3F000000)).view(np.float32)  # [0.5, 1)
    low = m < _SQRT_HALF
    e = e - low.astype(np.float32)
    m = (m - _ONE) + np.where(low, m, _F32(0.0))
    m2 = m * m
    m3 = m2 * m
    p0, p1, p2, p3, p4, p5, p6, p7, p8 = _LOG_POLY
    y = _fma(_fma(m, p0, p1), m, p2)
    y1 = _fma(_fma(m, p3, p4), m, p5)
    y2 = _fma(_fma(m, p6, p7), m, p8)
    y = _fma(_fma(y, m3, y1), m3, y2)
    y = _fma(y, m3, _LN2_LOW * e)
    out = _fma(_F32(-0.5), m2, m) + y
    out = _fma(_LN2_HIGH, e, out)
    out = np.where(x == 0, -np.inf, out)
    out = np.where(x == np.inf, np.inf, out)
    return np.where((x < 0) | np.isnan(x), np.nan, out).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Argument validation
# --------------------------------------------------------------------------------------------


def _real(name: str, value: Any) -> float:
    """``value`` as a float; TypeError unless it is a real number (bools are not)."""
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
        return float(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"Argument `{name}` must be a real number. Received: {name}={value!r}")
    return float(value)


def _reals(name: str, items: Any) -> list[float]:
    """The elements of ``items`` as floats; TypeError unless all are real numbers."""
    try:
        return [_real(name, item) for item in items]
    except TypeError:
        raise TypeError(
            f"Argument `{name}` must hold real numbers. Received: {name}={items!r}"
        ) from None


def _non_negative(name: str, value: Any) -> None:
    v = _real(name, value)
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(
            f"Argument `{name}` must be a finite number >= 0. Received: {name}={value}"
        )


def _positive_steps(name: str, value: Any) -> None:
    v = _real(name, value)
    if v <= 0:  # Keras's own check and message
        raise ValueError(f"Argument `{name}` must be > 0. Received: {name}={value}")
    if not math.isfinite(v):
        raise ValueError(f"Argument `{name}` must be a finite number > 0. Received: {name}={value}")


def _check_name(name: Any) -> None:
    # Keras accepts any name here but fails on the schedule's first call with this message.
    if not isinstance(name, str) or "/" in name:
        raise ValueError(
            "Argument `name` must be a string and cannot contain character `/`. "
            f"Received: name={name}"
        )


def _step_array(step: Any) -> np.ndarray:
    """A scalar step as a one-element int64 or float array."""
    arr = np.asarray(step)
    if arr.ndim != 0 or arr.dtype.kind not in "iuf":
        raise TypeError(f"A learning-rate schedule takes a scalar step number. Received: {step!r}")
    return arr.reshape(1).astype(np.int64 if arr.dtype.kind in "iu" else np.float64)


def _window(first_step: Any, count: Any) -> tuple[int, int]:
    try:
        first, n = operator.index(first_step), operator.index(count)
    except TypeError:
        raise TypeError(
            f"`first_step` and `count` must be integers. Received: first_step={first_step!r}, "
            f"count={count!r}"
        ) from None
    if first < 0 or n < 0:
        raise ValueError(
            f"`first_step` and `count` must be >= 0. Received: first_step={first}, count={n}"
        )
    return first, n


def _bad_value(schedule: object, value: Any, step: int) -> ValueError:
    return ValueError(
        f"the learning-rate schedule {type(schedule).__name__} returned {value} at step {step}; "
        "it must return a finite non-negative float"
    )


# --------------------------------------------------------------------------------------------
# The base class
# --------------------------------------------------------------------------------------------


class LearningRateSchedule:
    """Base class of learning-rate schedules.

    Pass an instance as an optimizer's ``learning_rate``; the optimizer evaluates it at every
    update with the current step (0 for the first update). A custom schedule implements
    ``__call__(self, step)`` returning a non-negative float and, to be serializable,
    ``get_config()``::

        class InverseStep(LearningRateSchedule):
            def __init__(self, initial_learning_rate):
                self.initial_learning_rate = initial_learning_rate

            def __call__(self, step):
                return self.initial_learning_rate / (step + 1)

            def get_config(self):
                return {"initial_learning_rate": self.initial_learning_rate}
    """

    def __call__(self, step: Any) -> Any:
        raise NotImplementedError(
            f"Learning rate schedule '{self.__class__.__name__}' "
            "must override `__call__(self, step)`."
        )

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments as a dict (``cls(**config)`` rebuilds the schedule)."""
        raise NotImplementedError(
            f"Learning rate schedule '{self.__class__.__name__}' "
            "must override `get_config()` in order to be serializable."
        )

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LearningRateSchedule:
        """Build a schedule from the output of :meth:`get_config`."""
        return cls(**config)

    def _values(self, first_step: int, count: int) -> np.ndarray:
        """The learning rates at steps ``first_step .. first_step + count - 1`` (float32).

        Calls ``self(step)`` once per step; every value must be a finite number >= 0.
        """
        first, n = _window(first_step, count)
        out = np.empty(n, dtype=np.float32)
        for i in range(n):
            step = first + i
            value = self(step)
            try:
                arr = np.asarray(value)
                if arr.size != 1 or arr.dtype.kind not in "iuf":
                    raise TypeError
                arr = arr.reshape(())
            except (TypeError, ValueError):
                raise _bad_value(self, repr(value), step) from None
            with np.errstate(over="ignore"):
                v = np.float32(arr)
            if not (np.isfinite(v) and v >= 0):
                raise _bad_value(self, arr[()], step)
            out[i] = v
        return out


class _BuiltinSchedule(LearningRateSchedule):
    """A schedule whose values come from the vectorised float32 ``_curve``."""

    _CONFIG_KEYS: ClassVar[tuple[str, ...]] = ()

    def _curve(self, steps: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, step: Any) -> np.float32:
        """The learning rate at ``step`` (a numpy float32 scalar)."""
        with np.errstate(all="ignore"):
            return self._curve(_step_array(step))[0]

    def _values(self, first_step: int, count: int) -> np.ndarray:
        if type(self).__call__ is not _BuiltinSchedule.__call__:
            # A subclass with its own __call__: ask it step by step.
            return super()._values(first_step, count)
        first, n = _window(first_step, count)
        with np.errstate(all="ignore"):
            values = self._curve(np.arange(first, first + n, dtype=np.int64))
        values = np.ascontiguousarray(values, dtype=np.float32)
        bad = ~(np.isfinite(values) & (values >= 0))
        if bad.any():
            i = int(np.argmax(bad))
            raise _bad_value(self, values[i], first + i)
        return values

    def get_config(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self._CONFIG_KEYS}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _as_f32(steps: np.ndarray) -> np.ndarray:
    """``ops.cast(step, float32)``."""
    return steps.astype(np.float32)


# --------------------------------------------------------------------------------------------
# Built-in schedules
# --------------------------------------------------------------------------------------------


class _RateDecay(_BuiltinSchedule):
    """The arguments ExponentialDecay and InverseTimeDecay share, and their progress
    ``step / decay_steps`` (floored with ``staircase``)."""

    _CONFIG_KEYS = ("initial_learning_rate", "decay_steps", "decay_rate", "staircase", "name")

    def _set(
        self,
        initial_learning_rate: float,
        decay_steps: float,
        decay_rate: float,
        staircase: bool,
        name: str,
    ) -> None:
        _positive_steps("decay_steps", decay_steps)
        _non_negative("initial_learning_rate", initial_learning_rate)
        _non_negative("decay_rate", decay_rate)
        _check_name(name)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate
        self.staircase = staircase
        self.name = name

    def _progress(self, steps: np.ndarray) -> np.ndarray:
        p = _as_f32(steps) / _F32(self.decay_steps)
        return np.floor(p) if self.staircase else p


class ExponentialDecay(_RateDecay):
    """Exponential decay: ``initial_learning_rate * decay_rate ** (step / decay_steps)``.

    With ``staircase=True`` the exponent is ``floor(step / decay_steps)``, so the rate drops at
    discrete intervals.

    Args:
        initial_learning_rate: The learning rate at step 0 (finite, >= 0).
        decay_steps: The number of steps per factor of ``decay_rate`` (> 0).
        decay_rate: The decay factor (finite, >= 0).
        staircase: Decay at discrete intervals.
        name: The schedule's name.
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: float,
        decay_rate: float,
        staircase: bool = False,
        name: str = "ExponentialDecay",
    ) -> None:
        self._set(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def _curve(self, steps: np.ndarray) -> np.ndarray:
        lr = _F32(self.initial_learning_rate)
        return _ftz(lr * _pow(_F32(self.decay_rate), self._progress(steps)))


class PiecewiseConstantDecay(_BuiltinSchedule):
    """A constant learning rate per interval of steps.

    The rate is ``values[0]`` while ``step <= boundaries[0]``, ``values[i]`` while
    ``boundaries[i-1] < step <= boundaries[i]``, and ``values[-1]`` once
    ``step > boundaries[-1]``.

    Args:
        boundaries: Strictly increasing step numbers (at least one).
        values: The learning rates (finite, >= 0), one more than ``boundaries``.
        name: The schedule's name.
    """

    _CONFIG_KEYS = ("boundaries", "values", "name")

    def __init__(
        self,
        boundaries: list[float],
        values: list[float],
        name: str = "PiecewiseConstant",
    ) -> None:
        if len(boundaries) != len(values) - 1:
            raise ValueError(
                "The length of boundaries should be 1 less than the length of values. "
                f"Received: boundaries={boundaries} of length {len(boundaries)}, "
                f"and values={values} of length {len(values)}."
            )
        if len(boundaries) == 0:
            raise ValueError(
                "Argument `boundaries` must hold at least one step number. Received: "
                f"boundaries={boundaries}"
            )
        bounds = _reals("boundaries", boundaries)
        rates = _reals("values", values)
        if not all(math.isfinite(b) for b in bounds) or any(
            low >= high for low, high in zip(bounds, bounds[1:])
        ):
            raise ValueError(
                "Argument `boundaries` must be finite and strictly increasing. "
                f"Received: boundaries={boundaries}"
            )
        if not all(math.isfinite(v) and v >= 0 for v in rates):
            raise ValueError(
                f"Argument `values` must hold finite numbers >= 0. Received: values={values}"
            )
        _check_name(name)
        self.boundaries = boundaries
        self.values = values
        self.name = name

    def _curve(self, steps: np.ndarray) -> np.ndarray:
        # Keras casts each boundary to the step's dtype: int32 steps truncate float boundaries
        # (after their conversion to float32); float steps compare in float32.
        if steps.dtype.kind == "f":
            s = _as_f32(steps)
            bounds = [_F32(b) for b in self.boundaries]
        else:
            s = steps
            bounds = [
                int(b) if np.asarray(b).dtype.kind in "iu" else int(np.trunc(_F32(b)))
                for b in self.boundaries
            ]
        vals = [_F32(v) for v in self.values]
        result = np.zeros(s.shape, dtype=np.float32)
        result += (s <= bounds[0]).astype(np.float32) * vals[0]
        result += (s > bounds[-1]).astype(np.float32) * vals[-1]
        for low, high, v in zip(bounds[:-1], bounds[1:], vals[1:-1]):
            result += ((s > low) & (s <= high)).astype(np.float32) * v
        return result


class PolynomialDecay(_BuiltinSchedule):
    """Polynomial decay from ``initial_learning_rate`` to ``end_learning_rate``.

    ``(initial - end) * (1 - step / decay_steps) ** power + end`` with ``step`` capped at
    ``decay_steps``; with ``cycle=True`` the decay restarts, ``decay_steps`` becoming the first
    multiple of itself that is >= ``step``.

    Args:
        initial_learning_rate: The learning rate at step 0 (finite, >= 0).
        decay_steps: The number of steps to decay over (> 0).
        end_learning_rate: The final learning rate (finite, >= 0).
        power: The power of the polynomial (finite, >= 0).
        cycle: Restart the decay after ``decay_steps``.
        name: The schedule's name.
    """

    _CONFIG_KEYS = (
        "initial_learning_rate",
        "decay_steps",
        "end_learning_rate",
        "power",
        "cycle",
        "name",
    )

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: float,
        end_learning_rate: float = 0.0001,
        power: float = 1.0,
        cycle: bool = False,
        name: str = "PolynomialDecay",
    ) -> None:
        _positive_steps("decay_steps", decay_steps)
        _non_negative("initial_learning_rate", initial_learning_rate)
        _non_negative("end_learning_rate", end_learning_rate)
        _non_negative("power", power)
        _check_name(name)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.end_learning_rate = end_learning_rate
        self.power = power
        self.cycle = cycle
        self.name = name

    def _curve(self, steps: np.ndarray) -> np.ndarray:
        lr = _F32(self.initial_learning_rate)
        end = _F32(self.end_learning_rate)
        s = _as_f32(steps)
        decay_steps = _F32(self.decay_steps)
        if self.cycle:
            multiplier = np.where(s == 0, _ONE, np.ceil(s / decay_steps))
            decay_steps = decay_steps * multiplier
        else:
            s = np.minimum(s, decay_steps)
        p = s / decay_steps
        return (lr - end) * _pow(_ONE - p, _F32(self.power)) + end


class InverseTimeDecay(_RateDecay):
    """Inverse time decay: ``initial_learning_rate / (1 + decay_rate * step / decay_steps)``.

    With ``staircase=True``, ``step / decay_steps`` is floored.

    Args:
        initial_learning_rate: The learning rate at step 0 (finite, >= 0).
        decay_steps: How often to apply the decay (> 0).
        decay_rate: The decay rate (finite, >= 0).
        staircase: Decay at discrete intervals.
        name: The schedule's name.
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: float,
        decay_rate: float,
        staircase: bool = False,
        name: str = "InverseTimeDecay",
    ) -> None:
        self._set(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def _curve(self, steps: np.ndarray) -> np.ndarray:
        lr = _F32(self.initial_learning_rate)
        return lr / (_ONE + _F32(self.decay_rate) * self._progress(steps))


class CosineDecay(_BuiltinSchedule):
    """Cosine decay, optionally after a linear warmup.

    Without ``warmup_target`` the rate is ``initial_learning_rate * ((1 - alpha) * c + alpha)``
    with ``c = 0.5 * (1 + cos(pi * min(step, decay_steps) / decay_steps))``. With it, the rate
    first rises linearly from ``initial_learning_rate`` to ``warmup_target`` over
    ``warmup_steps`` steps, then decays from ``warmup_target`` the same way over
    ``decay_steps`` steps.

    Args:
        initial_learning_rate: The learning rate at step 0 (finite, >= 0).
        decay_steps: The number of steps to decay over (> 0).
        alpha: The final rate as a fraction of the decay's starting rate (finite, >= 0).
        name: The schedule's name.
        warmup_target: The rate reached at the end of the warmup (finite, >= 0), or None for
            no warmup.
        warmup_steps: The number of warmup steps (finite, >= 0).
    """

    _CONFIG_KEYS = (
        "initial_learning_rate",
        "decay_steps",
        "alpha",
        "name",
        "warmup_target",
        "warmup_steps",
    )

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: float,
        alpha: float = 0.0,
        name: str = "CosineDecay",
        warmup_target: float | None = None,
        warmup_steps: float = 0,
    ) -> None:
        _positive_steps("decay_steps", decay_steps)
        _non_negative("initial_learning_rate", initial_learning_rate)
        _non_negative("alpha", alpha)
        if warmup_target is not None:
            _non_negative("warmup_target", warmup_target)
        _non_negative("warmup_steps", warmup_steps)
        _check_name(name)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.alpha = alpha
        self.name = name
        self.warmup_steps = warmup_steps
        self.warmup_target = warmup_target

    def _curve(self, steps: np.ndarray) -> np.ndarray:
        lr = _F32(self.initial_learning_rate)
        decay_steps = _F32(self.decay_steps)
        s = _as_f32(steps)
        # Keras rounds `1 - alpha` (computed in Python) and `alpha` to float32.
        one_minus_alpha, alpha = _F32(1 - self.alpha), _F32(self.alpha)
        if self.warmup_target is None:
            # One eager XLA op per step of the formula.
            s = np.minimum(s, decay_steps)
            cosine = _HALF * (_ONE + _cos(_PI * (s / decay_steps)))
            return lr * (one_minus_alpha * cosine + alpha)
        # With a warmup, Keras picks the branch with `ops.cond`: XLA compiles each branch as
        # one fused kernel, folding `0.5 * (1 - alpha)` into one constant and fusing each
        # multiply-add into an FMA.
        target = _F32(self.warmup_target)
        warmup_steps = _F32(self.warmup_steps)
        s = np.minimum(s, decay_steps + warmup_steps)
        warm = _fma(target - lr, s / warmup_steps, lr)
        cosine = _cos(((s - warmup_steps) / decay_steps) * _PI) + _ONE
        decay = target * _fma(cosine, _HALF * one_minus_alpha, alpha)
        return np.where(s < warmup_steps, warm, decay)


class CosineDecayRestarts(_BuiltinSchedule):
    """Cosine decay with warm restarts (SGDR).

    The rate decays along a cosine from ``initial_learning_rate`` to
    ``alpha * initial_learning_rate`` over ``first_decay_steps`` steps, then restarts; each
    period lasts ``t_mul`` times longer than the one before and starts ``m_mul`` times lower.

    Args:
        initial_learning_rate: The learning rate at step 0 (finite, >= 0).
        first_decay_steps: The length of the first period in steps (> 0).
        t_mul: The growth factor of the period length (finite, > 0).
        m_mul: The factor of the starting rate of each period (finite, >= 0).
        alpha: The final rate of a period as a fraction of its start (finite, >= 0).
        name: The schedule's name.
    """

    _CONFIG_KEYS = ("initial_learning_rate", "first_decay_steps", "t_mul", "m_mul", "alpha", "name")

    def __init__(
        self,
        initial_learning_rate: float,
        first_decay_steps: float,
        t_mul: float = 2.0,
        m_mul: float = 1.0,
        alpha: float = 0.0,
        name: str = "SGDRDecay",
    ) -> None:
        _positive_steps("first_decay_steps", first_decay_steps)
        _non_negative("initial_learning_rate", initial_learning_rate)
        if not (math.isfinite(_real("t_mul", t_mul)) and t_mul > 0):
            raise ValueError(
                f"Argument `t_mul` must be a finite number > 0. Received: t_mul={t_mul}"
            )
        _non_negative("m_mul", m_mul)
        _non_negative("alpha", alpha)
        _check_name(name)
        self.initial_learning_rate = initial_learning_rate
        self.first_decay_steps = first_decay_steps
        self._t_mul = t_mul
        self._m_mul = m_mul
        self.alpha = alpha
        self.name = name

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "first_decay_steps": self.first_decay_steps,
            "t_mul": self._t_mul,
            "m_mul": self._m_mul,
            "alpha": self.alpha,
            "name": self.name,
        }

    def _curve(self, steps: np.ndarray) -> np.ndarray:
        lr = _F32(self.initial_learning_rate)
        alpha = _F32(self.alpha)
        t_mul = _F32(self._t_mul)
        m_mul = _F32(self._m_mul)
        fraction = _as_f32(steps) / _F32(self.first_decay_steps)
        if t_mul == _ONE:
            restart = np.floor(fraction)
            fraction = fraction - restart
        else:
            # Inside Keras's `ops.cond`, compiled by XLA as one kernel: the multiply-subtract
            # is fused, and the division by t_mul**restart becomes a product with
            # t_mul**-restart.
            restart = np.floor(_log(_fma(-fraction, _ONE - t_mul, _ONE)) / _log(t_mul))
            done = (_ONE - _pow(t_mul, restart)) / (_ONE - t_mul)
            fraction = (fraction - done) * _pow(t_mul, -restart)
        # Back in eager ops, one XLA op each.
        cosine = _HALF * _pow(m_mul, restart) * (_ONE + _cos(_PI * fraction))
        return lr * ((_ONE - alpha) * cosine + alpha)


# --------------------------------------------------------------------------------------------
# Serialization
# --------------------------------------------------------------------------------------------

_BUILTINS: dict[str, type[LearningRateSchedule]] = {
    cls.__name__: cls
    for cls in (
        CosineDecay,
        CosineDecayRestarts,
        ExponentialDecay,
        InverseTimeDecay,
        PiecewiseConstantDecay,
        PolynomialDecay,
    )
}


def _plain(value: Any) -> Any:
    """A config value in the JSON-friendly form Keras's serializer gives it."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        items = [_plain(v) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray) and value.ndim > 0:
        return {
            "class_name": "__numpy__",
            "config": {"value": value.tolist(), "dtype": value.dtype.name},
        }
    if isinstance(value, (np.generic, np.ndarray)):
        return value.item()
    raise TypeError(f"Cannot serialize the config value {value!r} of type {type(value)}.")


def serialize(learning_rate_schedule: LearningRateSchedule) -> dict[str, Any]:
    """A JSON-friendly dict describing ``learning_rate_schedule``, in Keras's format.

    ``{"module": "keras.optimizers.schedules", "class_name": ..., "config": ...,
    "registered_name": None}`` for the built-in schedules; a custom schedule gets its own
    module (None for ``__main__``) and its class name as ``registered_name``, as in Keras.
    """
    cls = type(learning_rate_schedule)
    if not isinstance(learning_rate_schedule, LearningRateSchedule):
        raise TypeError(
            "`serialize` expects a LearningRateSchedule. Received: "
            f"{learning_rate_schedule!r} of type {cls}"
        )
    config = learning_rate_schedule.get_config()
    if not isinstance(config, dict):
        raise TypeError(
            f"The `get_config()` method of {learning_rate_schedule} should return a dict. "
            f"It returned: {config}"
        )
    builtin = _BUILTINS.get(cls.__name__) is cls
    module = _MODULE if builtin else cls.__module__
    return {
        "module": None if module == "__main__" else module,
        "class_name": cls.__name__,
        "config": _plain(config),
        "registered_name": None if builtin else cls.__name__,
    }


def _unplain(value: Any) -> Any:
    if isinstance(value, dict) and value.get("class_name") == "__numpy__":
        inner = value.get("config") or {}
        return np.asarray(inner.get("value"), dtype=np.dtype(inner.get("dtype", "float32")))
    return value


def deserialize(config: dict[str, Any]) -> LearningRateSchedule:
    """Rebuild a built-in schedule from the output of :func:`serialize`.

    Only the six built-in schedules are known; nothing named in ``config`` is imported or run.

    Raises:
        TypeError: ``config`` is not a dict of the serialized form.
        ValueError: ``config`` names a schedule other than the built-in ones.
    """
    if not isinstance(config, Mapping) or "class_name" not in config:
        raise TypeError(
            "`deserialize` expects a dict of the form {'class_name': ..., 'config': {...}}. "
            f"Received: {config!r}"
        )
    class_name = config["class_name"]
    module = config.get("module")
    cls = _BUILTINS.get(class_name) if isinstance(class_name, str) else None
    if cls is None or module not in (None, _MODULE):
        where = "" if module in (None, _MODULE) else f" from module {module!r}"
        raise ValueError(
            f"Unknown learning-rate schedule {class_name!r}{where}. kerox can deserialize "
            f"only the built-in schedules: {', '.join(sorted(_BUILTINS))}."
        )
    inner = config.get("config")
    if not isinstance(inner, Mapping):
        raise TypeError(
            f"The config of {class_name} must be a dict of its arguments. Received: {inner!r}"
        )
    return cls.from_config({k: _unplain(v) for k, v in inner.items()})
