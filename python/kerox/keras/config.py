"""Global Keras settings (``keras.config``), as far as dense networks on kerox's engine use them.

kerox computes in float32, clips probabilities with a fixed fuzz factor of 1e-7 and lays data
out channels-last, so the setters accept exactly those values and raise a ``ValueError`` naming
what kerox supports for anything else: a script that asked for float64 or another epsilon would
otherwise train silently with different numbers.

Not to be confused with ``kerox.config`` (``tf.config`` after ``import kerox as tf``), which
sets the engine's threads and CPU dispatch.
"""

from __future__ import annotations

from typing import Any

from .utils import set_random_seed

__all__ = [
    "backend",
    "disable_interactive_logging",
    "enable_interactive_logging",
    "enable_unsafe_deserialization",
    "epsilon",
    "floatx",
    "image_data_format",
    "is_interactive_logging_enabled",
    "set_epsilon",
    "set_floatx",
    "set_image_data_format",
    "set_random_seed",
]

#: The name :func:`backend` returns. Keras returns "tensorflow", "jax", "torch" or "numpy";
#: kerox is none of them, and a script testing ``backend() == "tensorflow"`` to reach for
#: TensorFlow-only functions should take its portable branch.
BACKEND = "kerox"

#: The only float type kerox computes in.
FLOATX = "float32"

#: The fuzz factor kerox's losses and metrics use (Keras's default, fixed in the engine).
EPSILON = 1e-7

#: The only image layout kerox uses (Flatten reads channels-last inputs).
IMAGE_DATA_FORMAT = "channels_last"

_interactive_logging = True


def backend() -> str:
    """The backend name: ``"kerox"`` (see :data:`BACKEND` for why not ``"tensorflow"``)."""
    return BACKEND


def floatx() -> str:
    """The default float type: always ``"float32"``."""
    return FLOATX


def set_floatx(value: str) -> None:
    """Set the default float type; kerox accepts only ``"float32"``.

    Raises:
        ValueError: for any other value, a non-string included.
    """
    if not isinstance(value, str) or value != FLOATX:
        raise ValueError(
            f"Unknown `floatx` value: {value!r}. kerox computes in float32 only; the one "
            f"supported value is {FLOATX!r}."
        )


def epsilon() -> float:
    """The fuzz factor used in numeric expressions: ``1e-07``."""
    return EPSILON


def set_epsilon(value: float) -> None:
    """Set the fuzz factor; kerox accepts only its fixed ``1e-07``.

    Raises:
        ValueError: for any other value (or a non-number).
    """
    try:
        ok = not isinstance(value, bool) and float(value) == EPSILON
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(
            f"Unsupported `epsilon` value: {value!r}. kerox's losses and metrics use a fixed "
            f"fuzz factor; the one supported value is {EPSILON!r}."
        )


def image_data_format() -> str:
    """The image layout convention: always ``"channels_last"``."""
    return IMAGE_DATA_FORMAT


def set_image_data_format(data_format: str) -> None:
    """Set the image layout convention; kerox accepts only ``"channels_last"``.

    Raises:
        ValueError: for ``"channels_first"`` or any other value.
    """
    if not isinstance(data_format, str) or data_format.lower() != IMAGE_DATA_FORMAT:
        raise ValueError(
            "The `data_format` argument must be 'channels_last': kerox's layers read "
            "channels-last inputs only (transpose 'channels_first' data with NumPy first). "
            f"Received: data_format={data_format!r}"
        )


def enable_unsafe_deserialization() -> None:
    """Accepted for compatibility: kerox never deserializes Python code (lambdas), so there is
    nothing unsafe to enable."""


def enable_interactive_logging() -> None:
    """Turn interactive logging (progress bars on stdout) on; the default."""
    global _interactive_logging
    _interactive_logging = True


def disable_interactive_logging() -> None:
    """Turn interactive logging off. Accepted for compatibility and recorded in
    :func:`is_interactive_logging_enabled`; kerox's progress output follows ``verbose``."""
    global _interactive_logging
    _interactive_logging = False


def is_interactive_logging_enabled() -> bool:
    """Whether interactive logging is enabled."""
    return _interactive_logging


def __getattr__(name: str) -> Any:
    from kerox._tf import unsupported_message

    raise AttributeError(unsupported_message(__name__, name, __all__))


def __dir__() -> list[str]:
    return list(__all__)
