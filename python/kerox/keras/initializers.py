"""Weight initializers (``keras.initializers``), Keras 3 names, defaults and configs.

Sampling uses NumPy's ``default_rng(seed)``; distributions, fan computation and the
truncated-normal convention follow Keras 3 (``keras/src/initializers/random_initializers.py``):
values are drawn from a unit normal, re-drawn while ``|z| > 2``, then scaled. The values are
*not* bit-identical to Keras's (each backend has its own RNG), only identically distributed.
``Orthogonal`` follows Keras's algorithm (QR of a normal matrix, sign-corrected by ``diag(R)``)
with NumPy's QR in float64, so its output is orthogonal to float32 rounding.

Seeding (Keras 3 semantics): a random initializer returns the same values on every call. If
``seed`` is ``None`` a seed is drawn from :mod:`kerox._random` when the object is constructed,
so two unseeded objects differ, and ``keras.utils.set_random_seed`` makes them reproducible.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from kerox import _random

__all__ = [
    "Initializer",
    "Zeros",
    "Ones",
    "Constant",
    "RandomNormal",
    "RandomUniform",
    "TruncatedNormal",
    "VarianceScaling",
    "GlorotUniform",
    "GlorotNormal",
    "HeUniform",
    "HeNormal",
    "LecunUniform",
    "LecunNormal",
    "Orthogonal",
    "Identity",
    "OrthogonalInitializer",
    "IdentityInitializer",
    "constant",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "identity",
    "lecun_normal",
    "lecun_uniform",
    "ones",
    "orthogonal",
    "random_normal",
    "random_uniform",
    "truncated_normal",
    "variance_scaling",
    "zeros",
    "compute_fans",
    "get",
    "serialize",
    "deserialize",
]

Shape = int | Sequence[int]

#: Standard deviation of a unit normal truncated to [-2, 2] (Keras's constant).
TRUNCATED_STD = 0.87962566103423978


def _standardize_shape(shape: Shape) -> tuple[int, ...]:
    if isinstance(shape, numbers.Integral):
        shape = (shape,)
    out = tuple(int(d) for d in shape)
    if any(d < 0 for d in out):
        raise ValueError(f"Negative dimensions are not allowed. Received: shape={shape}")
    return out


def _float_dtype(dtype: Any) -> np.dtype:
    dt = np.dtype("float32" if dtype is None else dtype)
    if not np.issubdtype(dt, np.floating):
        raise ValueError(f"Expected a floating dtype for a random initializer. Received: {dt}")
    return dt


def compute_fans(
    shape: Shape,
    input_axes: Sequence[int] | None = None,
    output_axes: Sequence[int] | None = None,
) -> tuple[int, int]:
    """Return ``(fan_in, fan_out)`` for a weight shape, as Keras 3 does.

    Rank 0: (1, 1); rank 1: (n, n); rank 2: (rows, cols); rank >= 3 (conv kernels):
    ``receptive = prod(shape[:-2])``, ``fan_in = shape[-2] * receptive``,
    ``fan_out = shape[-1] * receptive``. If both axis lists are given, the fans are the
    products of the dimensions on those axes.
    """
    shape = _standardize_shape(shape)
    if input_axes is not None and output_axes is not None:
        fan_in = math.prod(shape[a] for a in input_axes)
        fan_out = math.prod(shape[a] for a in output_axes)
        return int(fan_in), int(fan_out)
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _truncated_unit_normal(rng: np.random.Generator, size: int) -> np.ndarray:
    """Unit normal samples, each redrawn until it lies in [-2, 2]."""
    z = rng.standard_normal(size)
    bad = np.flatnonzero(np.abs(z) > 2.0)
    while bad.size:
        z[bad] = rng.standard_normal(bad.size)
        bad = bad[np.abs(z[bad]) > 2.0]
    return z


class Initializer:
    """Base class of all initializers.

    Subclasses implement ``__call__(shape, dtype=None)`` returning a NumPy array and
    ``get_config()`` returning the constructor arguments.
    """

    def __call__(self, shape: Shape, dtype: Any = "float32") -> np.ndarray:
        """Return an array of ``shape`` and ``dtype`` initialized as specified."""
        raise NotImplementedError("Initializer subclasses must implement the `__call__()` method.")

    def get_config(self) -> dict[str, Any]:
        """Return the JSON-serializable configuration (the constructor arguments)."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Initializer:
        """Instantiate an initializer from :meth:`get_config` output."""
        return cls(**config)

    def clone(self) -> Initializer:
        """Return a new initializer with the same configuration."""
        return self.__class__.from_config(self.get_config())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Zeros(Initializer):
    """Initializer that generates arrays of zeros."""

    def __call__(self, shape: Shape, dtype: Any = "float32") -> np.ndarray:
        """Return zeros of ``shape`` (``float32`` unless ``dtype`` says otherwise)."""
        return np.zeros(_standardize_shape(shape), dtype=np.dtype(dtype or "float32"))


class Ones(Initializer):
    """Initializer that generates arrays of ones."""

    def __call__(self, shape: Shape, dtype: Any = "float32") -> np.ndarray:
        """Return ones of ``shape`` (``float32`` unless ``dtype`` says otherwise)."""
        return np.ones(_standardize_shape(shape), dtype=np.dtype(dtype or "float32"))


class Constant(Initializer):
    """Initializer that fills arrays with a scalar constant.

    Args:
        value: A Python scalar.
    """

    def __init__(self, value: float = 0.0) -> None:
        self.value = value

    def __call__(self, shape: Shape, dtype: Any = "float32") -> np.ndarray:
        """Return ``value`` broadcast to ``shape``."""
        return np.full(_standardize_shape(shape), self.value, dtype=np.dtype(dtype or "float32"))

    def get_config(self) -> dict[str, Any]:
        """Return ``{"value": value}``."""
        return {"value": self.value}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Constant:
        """Instantiate from a config (``value`` defaults to 0.0 if absent)."""
        value = config.get("value", 0.0)
        if isinstance(value, dict):  # a serialized scalar, e.g. {"config": {"value": 3}}
            value = value.get("config", {}).get("value", value)
        return cls(value)


class RandomInitializer(Initializer):
    """Base class of the seeded initializers.

    Args:
        seed: ``None`` (draw a seed from :mod:`kerox._random` now) or a Python integer.
    """

    def __init__(self, seed: int | None = None) -> None:
        self._init_seed = seed
        if seed is None:
            seed = _random.draw_seed()
        elif isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise ValueError(
                "`seed` argument should be an instance of `keras.random.SeedGenerator()` or "
                f"an integer. Received: seed={seed}"
            )
        self.seed = int(seed)

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)

    def get_config(self) -> dict[str, Any]:
        """Return ``{"seed": <seed given at construction, or None>}``."""
        return {"seed": self._init_seed}


class RandomNormal(RandomInitializer):
    """Draws from a normal distribution ``N(mean, stddev**2)``.

    Args:
        mean: Mean of the values.
        stddev: Standard deviation of the values.
        seed: Optional integer seed.
    """

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None) -> None:
        self.mean = mean
        self.stddev = stddev
        super().__init__(seed=seed)

    def __call__(self, shape: Shape, dtype: Any = "float32") -> np.ndarray:
        """Return samples of ``shape``; the same values on every call."""
        shape, dt = _standardize_shape(shape), _float_dtype(dtype)
        z = self._rng().standard_normal(math.prod(shape))
        return (self.mean + self.stddev * z).reshape(shape).astype(dt)

    def get_config(self) -> dict[str, Any]:
        """Return ``{"seed", "mean", "stddev"}``."""
        return {**super().get_config(), "mean": self.mean, "stddev": self.stddev}


class TruncatedNormal(RandomInitializer):
    """Draws from a normal distribution truncated at two standard deviations.

    Samples beyond ``mean +- 2 * stddev`` are re-drawn, so the actual standard deviation is
    about ``0.8796 * stddev``.

    Args:
        mean: Mean of the values.
        stddev: Standard deviation of the untruncated normal.
        seed: Optional integer seed.
    """

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None) -> None:
        self.mean = mean
        self.stddev = stddev
        super().__init__(seed=seed)

    def __call__(self, shape: Shape, dtype: Any = "float32") -> np.ndarray:
        """Return samples of ``shape``; the same values on every call."""
        shape, dt = _standardize_shape(shape), _float_dtype(dtype)
        z = _truncated_unit_normal(self._rng(), math.prod(shape))
        return (self.mean + self.stddev * z).reshape(shape).astype(dt)

    def get_config(self) -> dict[str, Any]:
        """Return ``{"seed", "mean", "stddev"}``."""
        return {**super().get_config(), "mean": self.mean, "stddev": self.stddev}


class RandomUniform(RandomInitializer):
    """Draws from a uniform distribution on ``[minval, maxval)``.

    Args:
        minval: Lower bound (inclusive).
        maxval: Upper bound (exclusive).
        seed: Optional integer seed.
    """

    def __init__(
        self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None
    ) -> None:
        self.minval = minval
        self.maxval = maxval
        super().__init__(seed=seed)

    def __call__(self, shape: Shape, dtype: Any = "float32") -> np.ndarray:
        """Return samples of ``shape``; the same values on every call."""
        shape, dt = _standardize_shape(shape), _float_dtype(dtype)
        u = self._rng().random(math.prod(shape))
        return _uniform(u, self.minval, self.maxval, dt).reshape(shape)

    def get_config(self) -> dict[str, Any]:
        """Return ``{"seed", "minval", "maxval"}``."""
        return {**super().get_config(), "minval": self.minval, "maxval": self.maxval}


def _uniform(u: np.ndarray, lo: float, hi: float, dt: np.dtype) -> np.ndarray:
    out = (lo + (hi - lo) * u).astype(dt)
    if hi > lo:
        # Rounding to a narrower dtype may land exactly on `hi`; keep the bound exclusive.
        np.minimum(out, np.nextafter(dt.type(hi), dt.type(lo)), out=out)
    return out


class VarianceScaling(RandomInitializer):
    """Initializer whose scale adapts to the shape of the weights.

    With ``n`` = ``fan_in``, ``fan_out`` or ``(fan_in + fan_out) / 2`` (per ``mode``, at least
    1) and ``s = scale / n``:

    - ``"truncated_normal"``: normal truncated at +-2 stddev with
      ``stddev = sqrt(s) / 0.87962566103423978`` (so the result has std ``sqrt(s)``);
    - ``"untruncated_normal"``: ``N(0, s)``;
    - ``"uniform"``: ``U(-sqrt(3 s), sqrt(3 s))``.

    Args:
        scale: Positive scaling factor.
        mode: One of ``"fan_in"``, ``"fan_out"``, ``"fan_avg"``.
        distribution: One of ``"truncated_normal"`` (alias ``"normal"``),
            ``"untruncated_normal"``, ``"uniform"``.
        seed: Optional integer seed.
        input_axes: Optional axes whose product is ``fan_in`` (with ``output_axes``).
        output_axes: Optional axes whose product is ``fan_out`` (with ``input_axes``).

    Raises:
        ValueError: for a non-positive scale, or an unknown mode or distribution.
    """

    def __init__(
        self,
        scale: float = 1.0,
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
        seed: int | None = None,
        input_axes: Sequence[int] | None = None,
        output_axes: Sequence[int] | None = None,
    ) -> None:
        if scale <= 0.0:
            raise ValueError(f"Argument `scale` must be positive float. Received: scale={scale}")
        allowed_modes = {"fan_in", "fan_out", "fan_avg"}
        if mode not in allowed_modes:
            raise ValueError(f"Invalid `mode` argument: {mode}. Please use one of {allowed_modes}")
        distribution = distribution.lower()
        if distribution == "normal":
            distribution = "truncated_normal"
        allowed_distributions = {"uniform", "truncated_normal", "untruncated_normal"}
        if distribution not in allowed_distributions:
            raise ValueError(
                f"Invalid `distribution` argument: {distribution}."
                f"Please use one of {allowed_distributions}"
            )
        self.scale = scale
        self.mode = mode
        self.distribution = distribution
        self.input_axes = input_axes
        self.output_axes = output_axes
        super().__init__(seed=seed)

    def __call__(self, shape: Shape, dtype: Any = "float32") -> np.ndarray:
        """Return samples of ``shape``; the same values on every call."""
        shape, dt = _standardize_shape(shape), _float_dtype(dtype)
        fan_in, fan_out = compute_fans(shape, self.input_axes, self.output_axes)
        if self.mode == "fan_in":
            s = self.scale / max(1.0, fan_in)
        elif self.mode == "fan_out":
            s = self.scale / max(1.0, fan_out)
        else:
            s = self.scale / max(1.0, (fan_in + fan_out) / 2.0)
        rng, size = self._rng(), math.prod(shape)
        if self.distribution == "truncated_normal":
            stddev = math.sqrt(s) / TRUNCATED_STD
            out = (stddev * _truncated_unit_normal(rng, size)).astype(dt)
        elif self.distribution == "untruncated_normal":
            out = (math.sqrt(s) * rng.standard_normal(size)).astype(dt)
        else:
            limit = math.sqrt(3.0 * s)
            out = _uniform(rng.random(size), -limit, limit, dt)
        return out.reshape(shape)

    def get_config(self) -> dict[str, Any]:
        """Return ``{"seed", "scale", "mode", "distribution", "input_axes", "output_axes"}``."""
        return {
            **super().get_config(),
            "scale": self.scale,
            "mode": self.mode,
            "distribution": self.distribution,
            "input_axes": self.input_axes,
            "output_axes": self.output_axes,
        }


class _FixedVarianceScaling(VarianceScaling):
    """A VarianceScaling preset; its config is only ``seed`` and the axes (Keras 3)."""

    _preset: tuple[float, str, str] = (1.0, "fan_in", "truncated_normal")

    def __init__(
        self,
        seed: int | None = None,
        input_axes: Sequence[int] | None = None,
        output_axes: Sequence[int] | None = None,
    ) -> None:
        scale, mode, distribution = self._preset
        super().__init__(
            scale=scale,
            mode=mode,
            distribution=distribution,
            seed=seed,
            input_axes=input_axes,
            output_axes=output_axes,
        )

    def get_config(self) -> dict[str, Any]:
        """Return ``{"seed", "input_axes", "output_axes"}``."""
        return {
            "seed": self._init_seed,
            "input_axes": self.input_axes,
            "output_axes": self.output_axes,
        }


class GlorotUniform(_FixedVarianceScaling):
    """Glorot (Xavier) uniform: ``U(-limit, limit)``, ``limit = sqrt(6 / (fan_in + fan_out))``.

    Args:
        seed: Optional integer seed.
    """

    _preset = (1.0, "fan_avg", "uniform")


class GlorotNormal(_FixedVarianceScaling):
    """Glorot (Xavier) normal: truncated normal with std ``sqrt(2 / (fan_in + fan_out))``.

    Args:
        seed: Optional integer seed.
    """

    _preset = (1.0, "fan_avg", "truncated_normal")


class HeUniform(_FixedVarianceScaling):
    """He uniform: ``U(-limit, limit)``, ``limit = sqrt(6 / fan_in)``.

    Args:
        seed: Optional integer seed.
    """

    _preset = (2.0, "fan_in", "uniform")


class HeNormal(_FixedVarianceScaling):
    """He normal: truncated normal with std ``sqrt(2 / fan_in)``.

    Args:
        seed: Optional integer seed.
    """

    _preset = (2.0, "fan_in", "truncated_normal")


class LecunUniform(_FixedVarianceScaling):
    """LeCun uniform: ``U(-limit, limit)``, ``limit = sqrt(3 / fan_in)``.

    Args:
        seed: Optional integer seed.
    """

    _preset = (1.0, "fan_in", "uniform")


class LecunNormal(_FixedVarianceScaling):
    """LeCun normal: truncated normal with std ``sqrt(1 / fan_in)``.

    Args:
        seed: Optional integer seed.
    """

    _preset = (1.0, "fan_in", "truncated_normal")


def _check_gain(gain: float) -> None:
    if isinstance(gain, bool) or not isinstance(gain, numbers.Real) or not math.isfinite(gain):
        raise ValueError(f"Argument `gain` must be a finite real number. Received: gain={gain!r}")


class Orthogonal(RandomInitializer):
    """Initializer that generates an orthogonal matrix (Saxe et al., 2014), as Keras 3 does.

    The shape is flattened to ``(rows, cols) = (prod(shape[:-1]), shape[-1])``. A standard
    normal matrix of shape ``(max(rows, cols), min(rows, cols))`` is QR-factorized, the
    columns of ``Q`` are multiplied by the signs of ``diag(R)`` (so ``Q`` is Haar-distributed),
    ``Q`` is transposed if ``rows < cols``, reshaped to ``shape`` and multiplied by ``gain``.
    The result has orthonormal columns (``rows >= cols``) or rows (``rows < cols``), scaled by
    ``gain``.

    Args:
        gain: Multiplicative factor applied to the orthogonal matrix (a finite real number).
        seed: Optional integer seed.

    Raises:
        ValueError: if ``gain`` is not a finite real number, or (when called) if the shape has
            rank < 2.
    """

    def __init__(self, gain: float = 1.0, seed: int | None = None) -> None:
        _check_gain(gain)
        self.gain = gain
        super().__init__(seed=seed)

    def __call__(self, shape: Shape, dtype: Any = "float32") -> np.ndarray:
        """Return a (gain-scaled) orthogonal array of ``shape``; the same on every call.

        Raises:
            ValueError: if ``shape`` has fewer than two dimensions, or ``dtype`` is not a
                floating dtype.
        """
        dims, dt = _standardize_shape(shape), _float_dtype(dtype)
        if len(dims) < 2:
            raise ValueError(
                "The tensor to initialize must be at least two-dimensional. "
                f"Received: shape={shape} of rank {len(dims)}."
            )
        num_rows, num_cols = math.prod(dims[:-1]), dims[-1]
        if num_rows == 0 or num_cols == 0:
            return np.zeros(dims, dtype=dt)
        flat_shape = (max(num_rows, num_cols), min(num_rows, num_cols))
        a = self._rng().standard_normal(flat_shape)
        q, r = np.linalg.qr(a)  # reduced: q is (max, min) with orthonormal columns
        q = q * np.sign(np.diag(r))
        if num_rows < num_cols:
            q = q.T
        return (self.gain * q.reshape(dims)).astype(dt)

    def get_config(self) -> dict[str, Any]:
        """Return ``{"seed", "gain"}``."""
        return {**super().get_config(), "gain": self.gain}


class Identity(Initializer):
    """Initializer that generates ``gain`` times the identity matrix (2-D shapes only).

    Rectangular shapes give ``gain`` on the main diagonal and zeros elsewhere (``np.eye``).

    Args:
        gain: Multiplicative factor applied to the identity matrix (a finite real number).

    Raises:
        ValueError: if ``gain`` is not a finite real number, or (when called) if the shape is
            not two-dimensional.
    """

    def __init__(self, gain: float = 1.0) -> None:
        _check_gain(gain)
        self.gain = gain

    def __call__(self, shape: Shape, dtype: Any = "float32") -> np.ndarray:
        """Return ``gain * eye(rows, cols)`` (``float32`` unless ``dtype`` says otherwise).

        Raises:
            ValueError: if ``shape`` is not two-dimensional.
        """
        dims = _standardize_shape(shape)
        if len(dims) != 2:
            raise ValueError(
                "Identity matrix initializer can only be used for 2D matrices. "
                f"Received: shape={shape} of rank {len(dims)}."
            )
        return (self.gain * np.eye(*dims)).astype(np.dtype(dtype or "float32"))

    def get_config(self) -> dict[str, Any]:
        """Return ``{"gain": gain}``.

        Keras 3 (<= 3.15) defines no ``get_config`` for ``Identity`` and returns ``{}``, which
        loses a non-default gain; kerox keeps it (Keras's ``from_config`` accepts it).
        """
        return {"gain": self.gain}


#: Keras 3's compatibility names and module-level lowercase aliases (all are the classes).
OrthogonalInitializer = Orthogonal
IdentityInitializer = Identity
constant = Constant
glorot_normal = GlorotNormal
glorot_uniform = GlorotUniform
he_normal = HeNormal
he_uniform = HeUniform
identity = Identity
lecun_normal = LecunNormal
lecun_uniform = LecunUniform
ones = Ones
orthogonal = Orthogonal
random_normal = RandomNormal
random_uniform = RandomUniform
truncated_normal = TruncatedNormal
variance_scaling = VarianceScaling
zeros = Zeros


_CLASSES: tuple[type[Initializer], ...] = (
    Initializer,
    Zeros,
    Ones,
    Constant,
    RandomNormal,
    RandomUniform,
    TruncatedNormal,
    VarianceScaling,
    GlorotUniform,
    GlorotNormal,
    HeUniform,
    HeNormal,
    LecunUniform,
    LecunNormal,
    Orthogonal,
    Identity,
)


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


_BY_NAME: dict[str, type[Initializer]] = {cls.__name__: cls for cls in _CLASSES}
_BY_NAME.update({_snake(cls.__name__): cls for cls in _CLASSES})
_BY_NAME.update(
    {
        "IdentityInitializer": Identity,
        "OrthogonalInitializer": Orthogonal,
        "normal": RandomNormal,
        "uniform": RandomUniform,
        "zero": Zeros,
        "one": Ones,
    }
)


def serialize(initializer: Initializer) -> dict[str, Any]:
    """Return the Keras 3 serialized form of an initializer.

    ``{"module": "keras.initializers", "class_name": ..., "config": ...,
    "registered_name": None}``.
    """
    return {
        "module": "keras.initializers",
        "class_name": type(initializer).__name__,
        "config": initializer.get_config(),
        "registered_name": None,
    }


def deserialize(config: dict[str, Any]) -> Initializer:
    """Rebuild an initializer from a ``{"class_name": ..., "config": ...}`` dict.

    Raises:
        ValueError: if the dict does not name a known initializer.
    """
    name = config.get("class_name") if isinstance(config, dict) else None
    cls = _BY_NAME.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"Could not interpret initializer identifier: {config}")
    return cls.from_config(dict(config.get("config") or {}))


def get(identifier: Any) -> Initializer | Callable[..., Any] | None:
    """Return an initializer for ``identifier``.

    Args:
        identifier: ``None`` (returns ``None``), a name (``"glorot_uniform"``,
            ``"GlorotUniform"``, ``"zeros"``, ``"normal"``, ...; each call gives a new object,
            hence a new seed), a Keras 3 dict ``{"class_name": ..., "config": ...}``, an
            :class:`Initializer` instance or class, a callable ``f(shape, dtype=None)``, or a
            NumPy array (returned by an initializer that checks the requested shape).

    Raises:
        ValueError: ``Could not interpret initializer identifier: <identifier>``.
    """
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier)
        if cls is None:
            raise ValueError(f"Could not interpret initializer identifier: {identifier}")
        return cls()
    if isinstance(identifier, (np.ndarray, np.generic)):
        value = np.asarray(identifier)

        def initialize_fn(shape: Shape, dtype: Any = "float32") -> np.ndarray:
            if _standardize_shape(shape) != value.shape:
                raise ValueError(
                    f"Expected `shape` to be {value.shape} for direct tensor as initializer. "
                    f"Received shape={shape}"
                )
            return value.astype(np.dtype(dtype or "float32"))

        return initialize_fn
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret initializer identifier: {identifier}")
