"""kerox: Keras for dense networks, with a Rust engine underneath.

``import kerox as tf`` then ``tf.keras.Sequential(...)``, or ``from kerox import keras``.

The top level is shaped like TensorFlow's for what scripts do around a model: ``tf.keras``,
``tf.data``, ``tf.config`` (kerox's threads and CPU dispatch), ``tf.random.set_seed``,
``tf.version.VERSION`` and NumPy helpers such as ``tf.constant`` and ``tf.reduce_mean`` (see
:mod:`kerox._tf`; they return NumPy arrays). Any other name raises an ``AttributeError`` that
lists what is provided.
"""

from __future__ import annotations

import importlib as _importlib
import os as _os
from typing import Any as _Any

from . import _core, config, keras
from ._tf import *  # noqa: F403 - the NumPy helpers listed in _tf.__all__
from ._tf import Namespace as _Namespace
from ._tf import __all__ as _helpers
from ._tf import math, random
from ._tf import unsupported_message as _unsupported_message

__version__ = _core.version()

version = _Namespace(
    "kerox.version",
    "kerox's version: ``tf.version.VERSION`` (the same as ``tf.__version__``).",
    {"VERSION": __version__},
)

# Subpackages imported on first access (``tf.data``), so importing kerox stays light.
_LAZY = ("data",)
# Names that live in a lazy subpackage: ``tf.TensorSpec`` is ``tf.data.TensorSpec``.
_FROM_DATA = ("TensorSpec",)

__all__ = ["__version__", "config", "keras", "math", "random", "version"]
__all__ += [*_LAZY, *_FROM_DATA, *_helpers]
__all__.sort()


def __getattr__(name: str) -> _Any:
    if name in _LAZY:
        # import_module also binds the submodule on this package, so this runs once.
        return _importlib.import_module(f"{__name__}.{name}")
    if name in _FROM_DATA:
        return getattr(_importlib.import_module(f"{__name__}.data"), name)
    raise AttributeError(_unsupported_message(__name__, name, __all__))


def __dir__() -> list[str]:
    return list(__all__)


if hasattr(_os, "register_at_fork"):
    # The child of a fork has none of the parent's worker threads: start a fresh pool there.
    _os.register_at_fork(after_in_child=_core._after_fork_in_child)
